//! Retention of raw failure output: old executions lose their failure message and keep
//! everything else, the failure signature included (signatures still group).
//!
//! The prune goes in batches of [`PRUNE_BATCH`] executions, each one statement committed on
//! its own: one transaction over millions of rows would hold their row locks and keep every
//! row version it replaced from being vacuumed until it ended, and would lose everything on
//! an interruption. The executions that still have a message are found through the partial
//! index `executions_with_message`, so a batch reads no passing execution and a prune with
//! nothing left to do reads nothing. Cleared rows leave that index, so each batch finds the
//! next ones without an offset.

use flakeguard_store::StoreError;
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::error::map;

/// Executions cleared per statement (and transaction).
pub(crate) const PRUNE_BATCH: u32 = 10_000;

/// Clears the message of up to $2 executions of runs started before $1. The batch's rows are
/// picked by their physical address (`ctid`) and updated by it (a TID scan): joining them back
/// on the primary key let PostgreSQL hash every execution that still has a message, for
/// every batch (1.6 s instead of 0.3 s a batch with 100k messages stored). The outer
/// `message IS NOT NULL` is checked again on a row a concurrent prune changed meanwhile, so
/// each cleared message is counted once.
const PRUNE: &str = "UPDATE executions SET message = NULL
    WHERE ctid = ANY(ARRAY(
        SELECT e.ctid FROM executions e JOIN runs r ON r.id = e.run_id
        WHERE r.started_at < $1 AND e.message IS NOT NULL
        LIMIT $2))
      AND message IS NOT NULL";

pub(crate) async fn prune_failure_text(
    pool: &PgPool,
    before: OffsetDateTime,
) -> Result<u64, StoreError> {
    let mut cleared = 0;
    loop {
        let done = sqlx::query(PRUNE)
            .bind(before)
            .bind(i64::from(PRUNE_BATCH))
            .execute(pool)
            .await
            .map_err(map)?
            .rows_affected();
        cleared += done;
        // A short batch means nothing was left (a concurrent prune may have taken some of
        // this batch's rows; what it took, it counts).
        if done < u64::from(PRUNE_BATCH) {
            return Ok(cleared);
        }
    }
}
