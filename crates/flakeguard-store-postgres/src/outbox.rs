//! The scoring outbox: runs are stored with `scored_at` NULL and marked once their tests were
//! rescored; the sweeper lists the runs still unmarked through the partial index
//! `runs_unscored`, which holds only those.

use flakeguard_store::{RepoId, StoreError, StoredRunId};
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::error::map;

const UNSCORED: &str = "SELECT repo_id, id FROM runs
    WHERE scored_at IS NULL AND received_at < $1
    ORDER BY received_at, id
    LIMIT $2";

/// Marks run $1 scored at $2 unless it already is (the first mark stays: the run left the
/// outbox then, and a repeat writes no new row version); answers whether the run exists.
/// Both parts see the statement's one snapshot.
const MARK_SCORED: &str = "WITH marked AS (
        UPDATE runs SET scored_at = $2 WHERE id = $1 AND scored_at IS NULL RETURNING id)
    SELECT EXISTS (SELECT 1 FROM runs WHERE id = $1)";

pub(crate) async fn unscored(
    pool: &PgPool,
    received_before: OffsetDateTime,
    limit: u32,
) -> Result<Vec<(RepoId, StoredRunId)>, StoreError> {
    let rows: Vec<(i64, i64)> = sqlx::query_as(UNSCORED)
        .bind(received_before)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
        .map_err(map)?;
    Ok(rows
        .into_iter()
        .map(|(repo, run)| (RepoId(repo), StoredRunId(run)))
        .collect())
}

pub(crate) async fn mark_scored(
    pool: &PgPool,
    run: StoredRunId,
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    let exists: bool = sqlx::query_scalar(MARK_SCORED)
        .bind(run.0)
        .bind(at)
        .fetch_one(pool)
        .await
        .map_err(map)?;
    if !exists {
        return Err(StoreError::NotFound(format!("run {run}")));
    }
    Ok(())
}
