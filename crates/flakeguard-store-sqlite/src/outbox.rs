//! The scoring outbox: runs are stored with `scored_at` NULL and marked once their tests were
//! rescored; the sweeper lists the runs still unmarked through the partial index
//! `runs_unscored`, which holds only those.

use flakeguard_store::{RepoId, Result, StoreError, StoredRunId};
use time::OffsetDateTime;

use crate::SqliteStore;
use crate::error::map;
use crate::timestamp::to_micros;

impl SqliteStore {
    pub(crate) async fn unscored_runs_impl(
        &self,
        received_before: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<(RepoId, StoredRunId)>> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT repo_id, id FROM runs
             WHERE scored_at IS NULL AND received_at < ?
             ORDER BY received_at, id LIMIT ?",
        )
        .bind(to_micros(received_before))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(map("list the unscored runs"))?;
        Ok(rows
            .into_iter()
            .map(|(repo, run)| (RepoId(repo), StoredRunId(run)))
            .collect())
    }

    pub(crate) async fn mark_run_scored_impl(
        &self,
        run: StoredRunId,
        at: OffsetDateTime,
    ) -> Result<()> {
        // The first mark stays: the run left the outbox then. (`coalesce` rather than
        // `WHERE scored_at IS NULL`: one statement tells a marked run from a missing one.)
        let marked = sqlx::query("UPDATE runs SET scored_at = coalesce(scored_at, ?) WHERE id = ?")
            .bind(to_micros(at))
            .bind(run.0)
            .execute(&self.writer)
            .await
            .map_err(map("mark the run scored"))?;
        if marked.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("run {run}")));
        }
        Ok(())
    }
}
