//! The work FlakeGuard does in the background, one queue per kind of job: what each job
//! carries, how often it may be tried and how long to wait between tries, and the handlers.
//!
//! Every handler is idempotent: delivery is at-least-once (a worker can die after doing the
//! work and before saying so), so running a job twice must leave the same result as once.
//! Job ids are derived from what the job is about, so the same work is never queued twice at
//! the same time.

mod maintenance;
mod notify;
mod score;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use flakeguard_core::Policy;
use flakeguard_queue::{JobQueue, Lease, NewJob, Pushed, QueueError};
use flakeguard_store::{DeliveryId, RepoId, Store, StoreError, StoredRunId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use maintenance::MaintenanceReport;

/// The kinds of job, each its own queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Re-score the tests one run touched, then mark the run scored.
    ScoreTests,
    /// Act on a stored GitHub webhook delivery.
    ProcessWebhook,
    /// Send one notification (a Slack-compatible incoming webhook).
    Notify,
    /// Retention and expiry, on a schedule.
    Maintenance,
}

impl JobKind {
    /// In the order a worker looks for work: people wait on scores and webhook answers.
    pub const ALL: [JobKind; 4] = [
        JobKind::ScoreTests,
        JobKind::ProcessWebhook,
        JobKind::Notify,
        JobKind::Maintenance,
    ];

    /// The queue names, in [`JobKind::ALL`]'s order.
    pub const QUEUES: [&'static str; 4] =
        ["score_tests", "process_webhook", "notify", "maintenance"];

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::ScoreTests => "score_tests",
            JobKind::ProcessWebhook => "process_webhook",
            JobKind::Notify => "notify",
            JobKind::Maintenance => "maintenance",
        }
    }

    pub fn parse(name: &str) -> Option<JobKind> {
        JobKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Reservations before the job is dead. Scoring and webhooks depend on the database
    /// and on GitHub, which may be away for minutes: with the backoff below, 10 attempts span
    /// about 17 minutes.
    pub fn max_attempts(self) -> u32 {
        match self {
            JobKind::ScoreTests | JobKind::ProcessWebhook => 10,
            JobKind::Notify => 6,
            JobKind::Maintenance => 3,
        }
    }
}

/// The first retry waits about this long; each further one twice as long.
const BACKOFF_BASE: Duration = Duration::from_secs(2);
/// No retry waits longer.
const BACKOFF_CAP: Duration = Duration::from_secs(10 * 60);

/// How long to wait before retrying after failed attempt `attempt` (from 1): exponential,
/// capped, with "equal jitter" (half fixed, half random) so that jobs failing together do
/// not come back together.
pub fn backoff(attempt: u32) -> Duration {
    let exponent = attempt.saturating_sub(1).min(20);
    let full = BACKOFF_BASE
        .saturating_mul(1u32 << exponent)
        .min(BACKOFF_CAP);
    let half = full / 2;
    let mut bytes = [0u8; 4];
    let random = match getrandom::fill(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX),
        Err(_) => 0.5,
    };
    half + half.mul_f64(random)
}

/// One job, typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Job {
    ScoreTests(ScoreTests),
    ProcessWebhook(ProcessWebhook),
    Notify(Notify),
    Maintenance(Maintenance),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreTests {
    pub repo: i64,
    pub run: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessWebhook {
    pub delivery: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// What the notification is about, unique per notification (`flaky:acme/api:123`): the
    /// job id, so the same notification is never queued twice at once.
    pub key: String,
    /// An incoming-webhook URL (Slack's, or anything that accepts `{"text": …}`).
    pub target: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Maintenance {
    /// The schedule slot (hours since the epoch) this run belongs to.
    pub slot: i64,
}

impl Job {
    pub fn score(repo: RepoId, run: StoredRunId) -> Job {
        Job::ScoreTests(ScoreTests {
            repo: repo.0,
            run: run.0,
        })
    }

    pub fn webhook(delivery: DeliveryId) -> Job {
        Job::ProcessWebhook(ProcessWebhook {
            delivery: delivery.0,
        })
    }

    pub fn kind(&self) -> JobKind {
        match self {
            Job::ScoreTests(_) => JobKind::ScoreTests,
            Job::ProcessWebhook(_) => JobKind::ProcessWebhook,
            Job::Notify(_) => JobKind::Notify,
            Job::Maintenance(_) => JobKind::Maintenance,
        }
    }

    /// The id that makes the same work one job.
    pub fn id(&self) -> String {
        match self {
            Job::ScoreTests(j) => format!("score_tests:run:{}", j.run),
            Job::ProcessWebhook(j) => format!("process_webhook:delivery:{}", j.delivery),
            Job::Notify(j) => format!("notify:{}", j.key),
            Job::Maintenance(j) => format!("maintenance:slot:{}", j.slot),
        }
    }

    pub fn to_new_job(&self) -> NewJob {
        let payload = match self {
            Job::ScoreTests(j) => serde_json::to_string(j),
            Job::ProcessWebhook(j) => serde_json::to_string(j),
            Job::Notify(j) => serde_json::to_string(j),
            Job::Maintenance(j) => serde_json::to_string(j),
        };
        NewJob {
            queue: self.kind().as_str().to_owned(),
            id: self.id(),
            // Serializing these plain structs cannot fail.
            payload: payload.unwrap_or_default(),
            max_attempts: self.kind().max_attempts(),
        }
    }

    /// Reads a reserved job back. A payload this build cannot read is a permanent failure.
    pub fn from_lease(lease: &Lease) -> Result<Job, JobError> {
        Job::parse(&lease.queue, &lease.id, &lease.payload)
    }

    /// Reads a job from its queue name and payload (`id` only names it in errors).
    pub fn parse(queue: &str, id: &str, payload: &str) -> Result<Job, JobError> {
        let kind = JobKind::parse(queue)
            .ok_or_else(|| JobError::Permanent(format!("unknown queue {queue:?}")))?;
        let bad = |e: serde_json::Error| {
            JobError::Permanent(format!(
                "job {id}: unreadable {} payload: {e}",
                kind.as_str()
            ))
        };
        Ok(match kind {
            JobKind::ScoreTests => Job::ScoreTests(serde_json::from_str(payload).map_err(bad)?),
            JobKind::ProcessWebhook => {
                Job::ProcessWebhook(serde_json::from_str(payload).map_err(bad)?)
            }
            JobKind::Notify => Job::Notify(serde_json::from_str(payload).map_err(bad)?),
            JobKind::Maintenance => Job::Maintenance(serde_json::from_str(payload).map_err(bad)?),
        })
    }
}

/// How long the API waits for the queue when it enqueues. Work is already in the database
/// (the outbox), so a slow queue must not hold up the answer: the sweeper catches up.
pub const ENQUEUE_TIMEOUT: Duration = Duration::from_secs(2);

/// Enqueues a job, giving up after [`ENQUEUE_TIMEOUT`].
pub async fn enqueue(queue: &dyn JobQueue, job: &Job) -> Result<Pushed, QueueError> {
    match tokio::time::timeout(ENQUEUE_TIMEOUT, queue.push(&job.to_new_job())).await {
        Ok(result) => result,
        Err(_) => Err(QueueError::Unavailable(format!(
            "no answer within {} s",
            ENQUEUE_TIMEOUT.as_secs()
        ))),
    }
}

/// Why a job did not finish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// Worth trying again later (the database or a remote service is away).
    #[error("{0}")]
    Retry(String),
    /// Trying again cannot help (unreadable payload, a remote refusing the request).
    #[error("{0}")]
    Permanent(String),
}

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) | StoreError::Invalid(_) => JobError::Permanent(e.to_string()),
            other => JobError::Retry(other.to_string()),
        }
    }
}

/// The clock handlers read (tests drive expiry with their own).
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// What handlers need.
#[derive(Clone)]
pub struct JobContext {
    pub store: Arc<dyn Store>,
    pub policy: Policy,
    pub http: reqwest::Client,
    /// Raw failure text older than this is cleared by maintenance (signatures are kept).
    pub failure_text_retention: Duration,
    pub clock: Clock,
    /// The GitHub App, when configured (`GITHUB_APP_ID` and its key).
    pub github: Option<Arc<crate::github::GitHub>>,
}

impl std::fmt::Debug for JobContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext")
            .field("store", &self.store)
            .field("failure_text_retention", &self.failure_text_retention)
            .finish_non_exhaustive()
    }
}

/// Failure text is kept this long by default.
pub const DEFAULT_FAILURE_TEXT_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);

impl JobContext {
    pub fn new(store: Arc<dyn Store>, policy: Policy) -> JobContext {
        JobContext {
            store,
            policy,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            failure_text_retention: DEFAULT_FAILURE_TEXT_RETENTION,
            clock: Arc::new(OffsetDateTime::now_utc),
            github: None,
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        (self.clock)()
    }
}

/// Runs a `score_tests` job's work in place (the GitHub handler scores a workflow run's
/// runs before it answers on the commit).
pub(crate) async fn score_now(
    ctx: &JobContext,
    repo: RepoId,
    run: StoredRunId,
) -> Result<String, JobError> {
    score::run(
        ctx,
        &ScoreTests {
            repo: repo.0,
            run: run.0,
        },
    )
    .await
}

/// Runs one job. `Ok` carries a one-line summary for the log.
pub async fn handle(ctx: &JobContext, job: &Job) -> Result<String, JobError> {
    match job {
        Job::ScoreTests(j) => score::run(ctx, j).await,
        Job::ProcessWebhook(j) => webhook::run(ctx, j).await,
        Job::Notify(j) => notify::run(ctx, j).await,
        Job::Maintenance(_) => maintenance::run(ctx).await.map(|r| r.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for attempt in 1..=12 {
            let full = BACKOFF_BASE
                .saturating_mul(1 << (attempt - 1))
                .min(BACKOFF_CAP);
            for _ in 0..20 {
                let d = backoff(attempt);
                assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
            }
        }
        assert!(backoff(1000) <= BACKOFF_CAP);
    }

    #[test]
    fn jobs_round_trip_through_the_queue_format() {
        let jobs = [
            Job::score(RepoId(3), StoredRunId(42)),
            Job::webhook(DeliveryId(7)),
            Job::Notify(Notify {
                key: "flaky:acme/api:1".into(),
                target: "http://hooks.example/x".into(),
                text: "hello".into(),
            }),
            Job::Maintenance(Maintenance { slot: 490_000 }),
        ];
        for job in jobs {
            let new = job.to_new_job();
            assert_eq!(new.queue, job.kind().as_str());
            assert_eq!(new.max_attempts, job.kind().max_attempts());
            assert_eq!(Job::parse(&new.queue, &new.id, &new.payload).unwrap(), job);
        }
        assert_eq!(
            Job::score(RepoId(3), StoredRunId(42)).id(),
            "score_tests:run:42"
        );
        let err = Job::parse("score_tests", "x", r#"{"repo":1}"#).unwrap_err();
        assert!(
            matches!(err, JobError::Permanent(ref m) if m.contains("run")),
            "{err}"
        );
        assert!(Job::parse("nope", "x", "{}").is_err());
    }
}
