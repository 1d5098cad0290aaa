//! The embedded backend: one SQLite file (by default `data/flakeguard-queue.db`, beside the
//! store's database), so `flakeguard serve` keeps its jobs across restarts with nothing to install.
//!
//! It is a separate file from the store on purpose: SQLite has one writer per file, and a
//! 100k-test ingest holds the store's write lock for most of a second; the queue's short
//! writes should not wait behind it. Several processes on one machine may share the file
//! (the roles run as separate processes): write transactions start with `BEGIN IMMEDIATE`
//! and wait up to the busy timeout for each other.
//!
//! One table holds every job; `due_at` means "enqueued at" for pending jobs, the lease
//! deadline for running ones, the retry time for retrying ones and the time of death for
//! dead ones, so every state is read from one index in time order.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};

use crate::{
    JobInfo, JobQueue, JobState, Lease, NewJob, Pushed, QueueError, QueueStats, Result, millis,
    new_token,
};

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id            TEXT PRIMARY KEY,
    queue         TEXT NOT NULL,
    payload       TEXT NOT NULL,
    state         TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    max_attempts  INTEGER NOT NULL,
    due_at        INTEGER NOT NULL,
    token         TEXT,
    last_error    TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_queue_state_due ON jobs (queue, state, due_at);
CREATE TABLE IF NOT EXISTS schedules (
    name        TEXT NOT NULL,
    slot        INTEGER NOT NULL,
    claimed_at  INTEGER NOT NULL,
    keep_until  INTEGER NOT NULL,
    PRIMARY KEY (name, slot)
);
";

/// A queue in a SQLite file. Clones share the connections.
#[derive(Debug, Clone)]
pub struct SqliteQueue {
    pool: SqlitePool,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn backend_error(e: sqlx::Error) -> QueueError {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
            QueueError::Unavailable(format!("sqlite queue: {e}"))
        }
        other => QueueError::Backend(format!("sqlite queue: {other}")),
    }
}

impl SqliteQueue {
    /// Opens (creating it and its directory when missing) the queue file at `path`.
    pub async fn open(path: &Path) -> Result<SqliteQueue> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                QueueError::Unavailable(format!(
                    "cannot create the directory {}: {e}",
                    parent.display()
                ))
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(BUSY_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| {
                QueueError::Unavailable(format!("cannot open the queue {}: {e}", path.display()))
            })?;
        sqlx::raw_sql(SCHEMA)
            .execute(&pool)
            .await
            .map_err(backend_error)?;
        Ok(SqliteQueue { pool })
    }

    /// A write transaction that holds SQLite's write lock from its first statement.
    async fn begin(&self) -> Result<Transaction<'static, Sqlite>> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend_error)
    }

    /// Changes the state of a job this lease holds; `false` when the lease was lost.
    async fn leased_update(
        &self,
        lease: &Lease,
        sql: &'static str,
        bind: LeaseBind<'_>,
    ) -> Result<bool> {
        let now = now_ms();
        let mut query = sqlx::query(sql);
        query = match bind {
            LeaseBind::Due(at) => query.bind(at),
            LeaseBind::Fail { state, due, error } => query.bind(state).bind(due).bind(error),
        };
        let done = query
            .bind(now)
            .bind(&lease.id)
            .bind(&lease.token)
            .execute(&self.pool)
            .await
            .map_err(backend_error)?;
        Ok(done.rows_affected() == 1)
    }
}

/// The extra values of a lease update, bound before `updated_at`, the id and the token.
enum LeaseBind<'a> {
    Due(i64),
    Fail {
        state: &'static str,
        due: i64,
        error: &'a str,
    },
}

/// An update of a job this lease holds: `$set`'s values are bound first, then updated_at, the
/// id and the token.
macro_rules! leased {
    ($set:literal) => {
        concat!(
            "UPDATE jobs SET ",
            $set,
            ", updated_at = ? WHERE id = ? AND token = ? AND state = 'running'"
        )
    };
}

#[async_trait]
impl JobQueue for SqliteQueue {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(backend_error)
    }

    async fn push(&self, job: &NewJob) -> Result<Pushed> {
        job.check()?;
        let now = now_ms();
        let done = sqlx::query(
            "INSERT INTO jobs (id, queue, payload, state, max_attempts, due_at, created_at, updated_at)
             VALUES (?, ?, ?, 'pending', ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&job.id)
        .bind(&job.queue)
        .bind(&job.payload)
        .bind(i64::from(job.max_attempts))
        .bind(now)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(backend_error)?;
        Ok(match done.rows_affected() {
            1 => Pushed::Queued,
            _ => Pushed::AlreadyQueued,
        })
    }

    async fn reserve(&self, queues: &[&str], lease: Duration) -> Result<Option<Lease>> {
        if queues.is_empty() {
            return Ok(None);
        }
        let now = now_ms();
        let token = new_token();
        // Each statement is atomic on its own, so no transaction is needed: first every due
        // retry and every expired lease of the queues asked about comes back (or goes to the
        // dead set when no attempt is left), then one pending job is claimed, queue by queue.
        // Another worker interleaving between the statements only finds the same jobs pending.
        // Numbered like `?1`: sqlx counts bare `?` from the first argument, not after `?1`.
        let listed = (2..queues.len() + 2)
            .map(|n| format!("?{n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let reclaim = format!(
            "UPDATE jobs SET
                state = CASE WHEN state = 'retrying' THEN 'pending'
                             WHEN attempts >= max_attempts THEN 'dead'
                             ELSE 'pending' END,
                last_error = CASE WHEN state = 'running'
                                  THEN 'lease expired during attempt ' || attempts
                                       || ' (worker stopped or stalled)'
                                  ELSE last_error END,
                due_at = CASE WHEN state = 'running' THEN ?1 ELSE due_at END,
                token = NULL, updated_at = ?1
             WHERE queue IN ({listed}) AND state IN ('retrying', 'running') AND due_at <= ?1"
        );
        // Only `?` placeholders are formatted in; the queue names are bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(reclaim)).bind(now);
        for queue in queues {
            query = query.bind(*queue);
        }
        query.execute(&self.pool).await.map_err(backend_error)?;
        for queue in queues {
            let row = sqlx::query(
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, token = ?1,
                    due_at = ?2, updated_at = ?3
                 WHERE id = (SELECT id FROM jobs WHERE queue = ?4 AND state = 'pending'
                             ORDER BY due_at, rowid LIMIT 1)
                 RETURNING id, payload, attempts, max_attempts",
            )
            .bind(&token)
            .bind(now.saturating_add(millis(lease).max(1)))
            .bind(now)
            .bind(*queue)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_error)?;
            if let Some(row) = row {
                let attempts: i64 = row.get("attempts");
                let max_attempts: i64 = row.get("max_attempts");
                return Ok(Some(Lease {
                    queue: (*queue).to_owned(),
                    id: row.get("id"),
                    payload: row.get("payload"),
                    attempt: u32::try_from(attempts).unwrap_or(u32::MAX),
                    max_attempts: u32::try_from(max_attempts).unwrap_or(u32::MAX),
                    token,
                }));
            }
        }
        Ok(None)
    }

    async fn extend(&self, lease: &Lease, by: Duration) -> Result<bool> {
        let due = now_ms().saturating_add(millis(by).max(1));
        self.leased_update(lease, leased!("due_at = ?"), LeaseBind::Due(due))
            .await
    }

    async fn complete(&self, lease: &Lease) -> Result<bool> {
        let done = sqlx::query("DELETE FROM jobs WHERE id = ? AND token = ? AND state = 'running'")
            .bind(&lease.id)
            .bind(&lease.token)
            .execute(&self.pool)
            .await
            .map_err(backend_error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn fail(&self, lease: &Lease, error: &str, retry_in: Option<Duration>) -> Result<bool> {
        let now = now_ms();
        let (state, due) = match retry_in {
            Some(delay) => ("retrying", now.saturating_add(millis(delay))),
            None => ("dead", now),
        };
        self.leased_update(
            lease,
            leased!("state = ?, due_at = ?, last_error = ?, token = NULL"),
            LeaseBind::Fail { state, due, error },
        )
        .await
    }

    async fn release(&self, lease: &Lease) -> Result<bool> {
        let now = now_ms();
        self.leased_update(
            lease,
            leased!("state = 'pending', attempts = attempts - 1, token = NULL, due_at = ?"),
            LeaseBind::Due(now),
        )
        .await
    }

    async fn stats(&self, queues: &[&str]) -> Result<Vec<QueueStats>> {
        let mut out = Vec::with_capacity(queues.len());
        for queue in queues {
            let rows =
                sqlx::query("SELECT state, COUNT(*) AS n FROM jobs WHERE queue = ? GROUP BY state")
                    .bind(queue)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(backend_error)?;
            let mut stats = QueueStats {
                name: (*queue).to_owned(),
                pending: 0,
                running: 0,
                failed: 0,
                dead: 0,
            };
            for row in rows {
                let n = u64::try_from(row.get::<i64, _>("n")).unwrap_or(0);
                match JobState::parse(row.get::<&str, _>("state")) {
                    Some(JobState::Pending) => stats.pending = n,
                    Some(JobState::Running) => stats.running = n,
                    Some(JobState::Retrying) => stats.failed = n,
                    Some(JobState::Dead) => stats.dead = n,
                    None => {}
                }
            }
            out.push(stats);
        }
        Ok(out)
    }

    async fn list(&self, queue: &str, state: JobState, limit: u32) -> Result<Vec<JobInfo>> {
        let rows = sqlx::query(
            "SELECT id, attempts, max_attempts, last_error, payload, created_at, updated_at
             FROM jobs WHERE queue = ? AND state = ? ORDER BY due_at, rowid LIMIT ?",
        )
        .bind(queue)
        .bind(state.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend_error)?;
        Ok(rows
            .into_iter()
            .map(|row| JobInfo {
                queue: queue.to_owned(),
                id: row.get("id"),
                state,
                attempts: u32::try_from(row.get::<i64, _>("attempts")).unwrap_or(0),
                max_attempts: u32::try_from(row.get::<i64, _>("max_attempts")).unwrap_or(0),
                last_error: row.get("last_error"),
                payload: row.get("payload"),
                created_at_ms: row.get("created_at"),
                updated_at_ms: row.get("updated_at"),
            })
            .collect())
    }

    async fn retry_dead(&self, queue: &str, id: Option<&str>) -> Result<u64> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE jobs SET state = 'pending', attempts = 0, due_at = ?1, updated_at = ?1
             WHERE queue = ?2 AND state = 'dead' AND (?3 IS NULL OR id = ?3)",
        )
        .bind(now)
        .bind(queue)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(backend_error)?;
        Ok(done.rows_affected())
    }

    async fn purge_dead(&self, queue: &str, id: Option<&str>) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM jobs WHERE queue = ?1 AND state = 'dead' AND (?2 IS NULL OR id = ?2)",
        )
        .bind(queue)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(backend_error)?;
        Ok(done.rows_affected())
    }

    async fn claim_schedule(&self, name: &str, slot: i64, keep: Duration) -> Result<bool> {
        let now = now_ms();
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM schedules WHERE keep_until < ?")
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(backend_error)?;
        let done = sqlx::query(
            "INSERT INTO schedules (name, slot, claimed_at, keep_until) VALUES (?, ?, ?, ?)
             ON CONFLICT (name, slot) DO NOTHING",
        )
        .bind(name)
        .bind(slot)
        .bind(now)
        .bind(now.saturating_add(millis(keep)))
        .execute(&mut *tx)
        .await
        .map_err(backend_error)?;
        tx.commit().await.map_err(backend_error)?;
        Ok(done.rows_affected() == 1)
    }
}
