//! Choosing the job queue: `REDIS_URL` set → Redis (keys under `flakeguard:`), else the
//! embedded queue, a SQLite file beside the database (`data/flakeguard-queue.db` by default).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use flakeguard_app::Settings;
use flakeguard_queue::{JobQueue, RedisQueue, SqliteQueue};

use crate::database::Database;

/// Redis keys are all under this prefix.
pub(crate) const REDIS_PREFIX: &str = "flakeguard";

/// Opens the configured queue. Redis is connected on first use, so a process starts while
/// Redis is away (uploads still work: the outbox keeps their jobs until it returns).
pub(crate) async fn open(settings: &Settings, database: &Database) -> Result<Arc<dyn JobQueue>> {
    if let Some(url) = &settings.redis_url {
        let queue = RedisQueue::lazy(url.expose(), REDIS_PREFIX).context("REDIS_URL")?;
        return Ok(Arc::new(queue));
    }
    let path = embedded_path(settings, database);
    if matches!(database, Database::Postgres(_)) {
        tracing::warn!(
            path = %path.display(),
            "no REDIS_URL: jobs use the embedded queue file, so every worker must run on this machine"
        );
    }
    let queue = SqliteQueue::open(&path)
        .await
        .with_context(|| format!("cannot open the job queue {}", path.display()))?;
    Ok(Arc::new(queue))
}

/// `<database stem>-queue.db` beside an SQLite database; in the data directory otherwise.
pub(crate) fn embedded_path(settings: &Settings, database: &Database) -> PathBuf {
    match database {
        Database::Sqlite(db) => {
            let stem = db
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "flakeguard".to_owned());
            db.with_file_name(format!("{stem}-queue.db"))
        }
        Database::Postgres(_) => settings.data_dir.join("flakeguard-queue.db"),
    }
}

/// What the queue is, for logs (never the Redis password).
pub(crate) fn describe(settings: &Settings, database: &Database) -> String {
    match &settings.redis_url {
        Some(_) => "redis (REDIS_URL)".to_owned(),
        None => format!("embedded ({})", embedded_path(settings, database).display()),
    }
}
