//! Retention of raw failure output: old executions lose their failure message and keep
//! everything else, the failure signature included (signatures still group).
//!
//! The prune goes in batches of [`PRUNE_BATCH`] executions, each its own write transaction:
//! SQLite has one writer, and one transaction clearing millions of messages would hold every
//! ingest back until it ended. Between batches, waiting writes go first. The executions that
//! still have a message are found through the partial index `executions_with_message`, so a
//! batch reads no passing execution and a prune with nothing left to do reads nothing.

use flakeguard_store::Result;
use time::OffsetDateTime;

use crate::SqliteStore;
use crate::error::map;
use crate::timestamp::to_micros;

/// Executions cleared per write transaction.
pub(crate) const PRUNE_BATCH: u32 = 10_000;

/// Clears the message of up to ?2 executions of runs started before ?1 (by primary key,
/// through the partial index).
const PRUNE_SQL: &str = "
    UPDATE executions SET message = NULL
    WHERE (run_id, test_case_id, attempt) IN (
        SELECT e.run_id, e.test_case_id, e.attempt
        FROM executions e JOIN runs r ON r.id = e.run_id
        WHERE r.started_at < ?1 AND e.message IS NOT NULL
        LIMIT ?2)";

impl SqliteStore {
    pub(crate) async fn prune_failure_text_impl(&self, before: OffsetDateTime) -> Result<u64> {
        let before = to_micros(before);
        let mut cleared = 0;
        loop {
            let mut tx = self.write().await?;
            let done = sqlx::query(PRUNE_SQL)
                .bind(before)
                .bind(PRUNE_BATCH)
                .execute(&mut *tx)
                .await
                .map_err(map("clear old failure messages"))?
                .rows_affected();
            tx.commit()
                .await
                .map_err(map("commit the cleared failure messages"))?;
            cleared += done;
            if done < u64::from(PRUNE_BATCH) {
                return Ok(cleared);
            }
        }
    }
}
