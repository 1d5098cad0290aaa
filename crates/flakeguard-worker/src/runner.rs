//! The job loop.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flakeguard_app::jobs::{self, Job, JobContext, JobError, JobKind};
use flakeguard_queue::{JobQueue, Lease};
use futures_util::FutureExt;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::{WorkerConfig, schedule, sweeper};

/// What a worker did before it stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerSummary {
    pub completed: u64,
    pub retried: u64,
    pub dead: u64,
    /// Handed back at shutdown, unfinished.
    pub handed_back: u64,
    /// Taken over by another worker after this one's lease ran out.
    pub lost: u64,
}

/// How one job ended, for the summary and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Completed,
    Retried,
    Dead,
    HandedBack,
    Lost,
}

impl Ending {
    fn as_str(self) -> &'static str {
        match self {
            Ending::Completed => "completed",
            Ending::Retried => "retried",
            Ending::Dead => "dead",
            Ending::HandedBack => "handed_back",
            Ending::Lost => "lease_lost",
        }
    }
}

/// Runs jobs until `shutdown` resolves, then drains. The sweeper and the maintenance
/// schedule run alongside and stop with it.
pub async fn run(
    queue: Arc<dyn JobQueue>,
    ctx: JobContext,
    config: WorkerConfig,
    shutdown: impl Future<Output = ()>,
) -> WorkerSummary {
    let concurrency = config.concurrency.max(1);
    let slots = Arc::new(Semaphore::new(concurrency));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut background = JoinSet::new();
    background.spawn(sweeper::run(
        Arc::clone(&ctx.store),
        Arc::clone(&queue),
        config.clone(),
        stop_rx.clone(),
    ));
    background.spawn(schedule::run(
        Arc::clone(&queue),
        config.clone(),
        stop_rx.clone(),
    ));
    let (hand_back_tx, hand_back_rx) = watch::channel(false);
    let mut running: JoinSet<Ending> = JoinSet::new();
    let mut summary = WorkerSummary::default();
    let mut rotation = 0usize;
    let mut unavailable = false;
    tracing::info!(concurrency, backend = queue.backend(), "worker started");
    tokio::pin!(shutdown);
    loop {
        while let Some(done) = running.try_join_next() {
            count(&mut summary, done);
        }
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        // Each turn starts at the next queue, so a busy queue cannot starve the others.
        let mut order = JobKind::QUEUES;
        let len = order.len();
        order.rotate_left(rotation % len);
        rotation = rotation.wrapping_add(1);
        let idle = match queue.reserve(&order, config.lease).await {
            Ok(Some(lease)) => {
                if unavailable {
                    tracing::info!("queue reachable again");
                    unavailable = false;
                }
                let (queue, ctx, hand_back) =
                    (Arc::clone(&queue), ctx.clone(), hand_back_rx.clone());
                let lease_for = config.lease;
                running.spawn(async move {
                    let ending = run_one(&*queue, &ctx, &lease, lease_for, hand_back).await;
                    drop(permit);
                    ending
                });
                continue;
            }
            Ok(None) => config.poll,
            Err(e) => {
                if !unavailable {
                    tracing::warn!(error = %e, "cannot reserve jobs; retrying every second");
                    unavailable = true;
                }
                Duration::from_secs(1).max(config.poll)
            }
        };
        drop(permit);
        tokio::select! {
            () = tokio::time::sleep(idle) => {}
            () = &mut shutdown => break,
        }
    }
    let _ = stop_tx.send(true);
    tracing::info!(
        running = running.len(),
        drain_secs = config.drain.as_secs(),
        "worker stopping: finishing running jobs"
    );
    let deadline = tokio::time::sleep(config.drain);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            done = running.join_next() => match done {
                Some(done) => count(&mut summary, done),
                None => break,
            },
            () = &mut deadline => {
                tracing::warn!(running = running.len(), "drain time over: handing running jobs back");
                let _ = hand_back_tx.send(true);
                while let Some(done) = running.join_next().await {
                    count(&mut summary, done);
                }
                break;
            }
        }
    }
    while background.join_next().await.is_some() {}
    tracing::info!(?summary, "worker stopped");
    summary
}

fn count(summary: &mut WorkerSummary, done: Result<Ending, tokio::task::JoinError>) {
    match done {
        Ok(Ending::Completed) => summary.completed += 1,
        Ok(Ending::Retried) => summary.retried += 1,
        Ok(Ending::Dead) => summary.dead += 1,
        Ok(Ending::HandedBack) => summary.handed_back += 1,
        Ok(Ending::Lost) => summary.lost += 1,
        // run_one catches handler panics; this would be a bug in the loop itself. The lease
        // runs out and the job comes back.
        Err(e) => tracing::error!(error = %e, "job task failed"),
    }
}

/// Runs one leased job to its end, extending the lease while it runs.
async fn run_one(
    queue: &dyn JobQueue,
    ctx: &JobContext,
    lease: &Lease,
    lease_for: Duration,
    mut hand_back: watch::Receiver<bool>,
) -> Ending {
    let started = Instant::now();
    let span =
        tracing::info_span!("job", queue = %lease.queue, id = %lease.id, attempt = lease.attempt);
    let _enter = span.enter();
    drop(_enter);
    let result = match Job::from_lease(lease) {
        Err(e) => Some(Err(e)),
        Ok(job) => {
            let work = AssertUnwindSafe(jobs::handle(ctx, &job)).catch_unwind();
            tokio::pin!(work);
            // The first beat is one period away: starting with `interval`'s immediate tick
            // would cost every job a timer round-trip before its handler even starts.
            let period = (lease_for / 3).max(Duration::from_millis(50));
            let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            loop {
                tokio::select! {
                    done = &mut work => break Some(match done {
                        Ok(result) => result,
                        Err(_) => Err(JobError::Permanent("the handler panicked".to_owned())),
                    }),
                    _ = beat.tick() => match queue.extend(lease, lease_for).await {
                        Ok(true) => {}
                        Ok(false) => break None,
                        Err(e) => tracing::warn!(parent: &span, error = %e, "cannot extend the lease"),
                    },
                    changed = hand_back.changed() => {
                        if changed.is_err() || *hand_back.borrow() {
                            return finish(queue, lease, Ending::HandedBack, started, &span, None).await;
                        }
                    }
                }
            }
        }
    };
    match result {
        None => finish(queue, lease, Ending::Lost, started, &span, None).await,
        Some(Ok(summary)) => {
            tracing::info!(parent: &span, elapsed_ms = started.elapsed().as_millis() as u64, "{summary}");
            finish(queue, lease, Ending::Completed, started, &span, None).await
        }
        Some(Err(JobError::Retry(error))) if lease.attempt < lease.max_attempts => {
            let delay = jobs::backoff(lease.attempt);
            tracing::warn!(parent: &span, %error, retry_in_ms = delay.as_millis() as u64, "job failed; will retry");
            finish(
                queue,
                lease,
                Ending::Retried,
                started,
                &span,
                Some((error, Some(delay))),
            )
            .await
        }
        Some(Err(JobError::Retry(error) | JobError::Permanent(error))) => {
            tracing::error!(parent: &span, %error, "job failed for good: moved to the dead set");
            finish(
                queue,
                lease,
                Ending::Dead,
                started,
                &span,
                Some((error, None)),
            )
            .await
        }
    }
}

/// Tells the queue how the job ended and records it.
async fn finish(
    queue: &dyn JobQueue,
    lease: &Lease,
    ending: Ending,
    started: Instant,
    span: &tracing::Span,
    failure: Option<(String, Option<Duration>)>,
) -> Ending {
    let told = match (&ending, failure) {
        (Ending::Completed, _) => queue.complete(lease).await,
        (Ending::HandedBack, _) => queue.release(lease).await,
        (Ending::Lost, _) => Ok(false),
        (_, Some((error, retry_in))) => queue.fail(lease, &error, retry_in).await,
        (_, None) => Ok(false),
    };
    let ending = match told {
        Ok(true) => ending,
        Ok(false) if ending == Ending::Lost => ending,
        Ok(false) => {
            tracing::warn!(parent: span, "the lease ran out before the job ended; another worker has it");
            Ending::Lost
        }
        Err(e) => {
            // The queue is away: the lease runs out and the job comes back by itself.
            tracing::warn!(parent: span, error = %e, "cannot record how the job ended");
            ending
        }
    };
    metrics::counter!("flakeguard_jobs_total", "queue" => lease.queue.clone(), "outcome" => ending.as_str())
        .increment(1);
    metrics::histogram!("flakeguard_job_duration_seconds", "queue" => lease.queue.clone())
        .record(started.elapsed().as_secs_f64());
    ending
}
