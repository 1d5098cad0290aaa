//! The outbox sweeper: work is written to the database before anyone is told it was
//! accepted (a run waiting for scoring, a webhook delivery waiting to be acted on). If its job
//! went missing — the queue was down when the API tried, or Redis lost its data — the sweeper
//! pushes it again. Pushing is by job id, so work whose job still exists is not duplicated.

use std::sync::Arc;

use flakeguard_app::jobs::{self, Job};
use flakeguard_queue::{JobQueue, Pushed, QueueError};
use flakeguard_store::{Store, StoreError};
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::WorkerConfig;

/// Entries looked at per sweep and kind; the next sweep takes the rest.
const BATCH: u32 = 1000;

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Outbox entries found (runs not scored, deliveries not processed).
    pub found: usize,
    /// Of those, jobs that were missing and were queued again.
    pub requeued: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("reading the outbox: {0}")]
    Store(#[from] StoreError),
    #[error("re-enqueuing: {0}")]
    Queue(#[from] QueueError),
}

/// One sweep: every run received before `received_before` and still unscored, and every
/// delivery still unprocessed, gets its job pushed.
pub async fn sweep_once(
    store: &dyn Store,
    queue: &dyn JobQueue,
    received_before: OffsetDateTime,
) -> Result<Swept, SweepError> {
    let mut wanted: Vec<Job> = store
        .unscored_runs(received_before, BATCH)
        .await?
        .into_iter()
        .map(|(repo, run)| Job::score(repo, run))
        .collect();
    wanted.extend(
        store
            .pending_deliveries(received_before, BATCH)
            .await?
            .into_iter()
            .map(Job::webhook),
    );
    let mut swept = Swept {
        found: wanted.len(),
        requeued: 0,
    };
    for job in &wanted {
        if jobs::enqueue(queue, job).await? == Pushed::Queued {
            swept.requeued += 1;
        }
    }
    if swept.requeued > 0 {
        tracing::warn!(
            found = swept.found,
            requeued = swept.requeued,
            "outbox sweep: re-enqueued work whose job was missing"
        );
        metrics::counter!("flakeguard_outbox_requeued_total").increment(swept.requeued as u64);
    }
    Ok(swept)
}

/// Sweeps every [`WorkerConfig::sweep_every`] until stopped, the first time at once.
pub(crate) async fn run(
    store: Arc<dyn Store>,
    queue: Arc<dyn JobQueue>,
    config: WorkerConfig,
    mut stop: watch::Receiver<bool>,
) {
    let mut failing = false;
    loop {
        let before = OffsetDateTime::now_utc() - config.sweep_grace;
        match sweep_once(&*store, &*queue, before).await {
            Ok(_) if failing => {
                tracing::info!("outbox sweep works again");
                failing = false;
            }
            Ok(_) => {}
            Err(e) if !failing => {
                tracing::warn!(error = %e, "outbox sweep failed; trying again next period");
                failing = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            () = tokio::time::sleep(config.sweep_every) => {}
            _ = stop.changed() => return,
        }
    }
}
