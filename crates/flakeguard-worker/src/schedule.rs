//! The maintenance schedule. Every worker ticks; the slot (periods since the epoch) is
//! claimed on the queue backend, where exactly one claim per slot succeeds, and only the
//! claimer enqueues that slot's job (whose id is the slot, a second guard).

use std::sync::Arc;
use std::time::Duration;

use flakeguard_app::jobs::{self, Job, Maintenance};
use flakeguard_queue::{JobQueue, QueueError};
use tokio::sync::watch;

use crate::WorkerConfig;

/// The schedule's name on the backend.
pub const MAINTENANCE: &str = "maintenance";

/// The slot `unix_seconds` falls in.
pub fn slot(unix_seconds: i64, every: Duration) -> i64 {
    let period = i64::try_from(every.as_secs()).unwrap_or(i64::MAX).max(1);
    unix_seconds.div_euclid(period)
}

/// Claims the current slot and, when this caller won it, enqueues its maintenance job.
/// Returns whether it did.
pub async fn tick(
    queue: &dyn JobQueue,
    unix_seconds: i64,
    every: Duration,
) -> Result<bool, QueueError> {
    let slot = slot(unix_seconds, every);
    if !queue.claim_schedule(MAINTENANCE, slot, every * 2).await? {
        return Ok(false);
    }
    jobs::enqueue(queue, &Job::Maintenance(Maintenance { slot })).await?;
    tracing::info!(slot, "maintenance scheduled");
    Ok(true)
}

pub(crate) async fn run(
    queue: Arc<dyn JobQueue>,
    config: WorkerConfig,
    mut stop: watch::Receiver<bool>,
) {
    let every = config.maintenance_every.max(Duration::from_secs(1));
    let check = (every / 4).clamp(Duration::from_millis(100), Duration::from_secs(60));
    loop {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if let Err(e) = tick(&*queue, now, every).await {
            tracing::debug!(error = %e, "maintenance schedule: queue unavailable");
        }
        tokio::select! {
            () = tokio::time::sleep(check) => {}
            _ = stop.changed() => return,
        }
    }
}
