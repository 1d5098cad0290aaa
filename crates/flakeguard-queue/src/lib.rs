//! FlakeGuard's job queue: the [`JobQueue`] port and its two backends.
//!
//! - [`RedisQueue`] for production: any number of worker processes consume the same queues
//!   (`REDIS_URL`).
//! - [`SqliteQueue`] for zero configuration: one SQLite file beside the store, durable across
//!   restarts, shared by the processes of one machine.
//!
//! The queue is mechanism only: named queues of jobs with a unique id each, leased to one
//! worker at a time. What the jobs mean, how often they may be tried and how long to wait
//! between tries is the worker's business (`flakeguard-app`'s `jobs` module).
//!
//! Semantics, the same on both backends and pinned by [`contract`]:
//!
//! - **At-least-once.** A reserved job is *leased* until a deadline. A worker that dies
//!   leaves the lease to expire; the next reservation on that queue puts the job back
//!   (or, when its attempts are used up, in the dead set). Handlers must be idempotent.
//! - **Unique ids.** Pushing an id that is pending, running, waiting for a retry or dead does
//!   nothing, so the outbox sweeper can push everything it believes missing without creating
//!   duplicates. Once a job completes its id may be pushed again.
//! - **Attempts** are counted when a job is reserved; [`JobQueue::release`] (a worker handing a
//!   job back on shutdown) gives the attempt back.
//! - **Retries** wait in their own set until due ([`JobQueue::fail`] with a delay); a failure
//!   without a delay moves the job to the **dead** set, which can be listed, retried and purged.
//! - **Leases carry a token**: a worker whose lease expired and was taken over cannot complete
//!   or fail the job any more (the calls answer `false`).
#![forbid(unsafe_code)]

pub mod contract;
mod redis_queue;
mod sqlite_queue;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

pub use redis_queue::RedisQueue;
pub use sqlite_queue::SqliteQueue;

/// What can go wrong talking to a queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The backend cannot be reached (connection refused, timed out, file unreadable).
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    /// The backend answered with an error or with data this build does not understand.
    #[error("queue error: {0}")]
    Backend(String),
    /// The caller asked for something impossible (an empty queue name, zero attempts).
    #[error("invalid job: {0}")]
    Invalid(String),
}

pub type Result<T, E = QueueError> = std::result::Result<T, E>;

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// The queue (one per job type).
    pub queue: String,
    /// Unique while the job exists: derived from what the job is about
    /// (`score_tests:run:42`), so pushing the same work twice is harmless.
    pub id: String,
    /// JSON text, handed back to the handler unchanged.
    pub payload: String,
    /// Reservations allowed before the job is declared dead (at least 1).
    pub max_attempts: u32,
}

impl NewJob {
    pub(crate) fn check(&self) -> Result<()> {
        if self.queue.is_empty() || self.queue.contains(':') {
            return Err(QueueError::Invalid(format!(
                "queue name {:?} must be non-empty and contain no ':'",
                self.queue
            )));
        }
        if self.id.is_empty() {
            return Err(QueueError::Invalid("job id must be non-empty".to_owned()));
        }
        if self.max_attempts == 0 {
            return Err(QueueError::Invalid(format!(
                "job {}: max_attempts must be at least 1",
                self.id
            )));
        }
        Ok(())
    }
}

/// What [`JobQueue::push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// A job with this id already exists (pending, running, retrying or dead): nothing changed.
    AlreadyQueued,
}

/// A job reserved by one worker until its lease runs out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub queue: String,
    pub id: String,
    pub payload: String,
    /// This reservation's attempt number, from 1.
    pub attempt: u32,
    pub max_attempts: u32,
    /// Proves the lease is still this worker's.
    pub(crate) token: String,
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Waiting for a worker.
    Pending,
    /// Leased to a worker.
    Running,
    /// Failed, waiting for its retry to be due.
    Retrying,
    /// Out of attempts, or failed permanently: kept until retried or purged.
    Dead,
}

impl JobState {
    pub const ALL: [JobState; 4] = [
        JobState::Pending,
        JobState::Running,
        JobState::Retrying,
        JobState::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Retrying => "retrying",
            JobState::Dead => "dead",
        }
    }

    pub fn parse(text: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One queue's counts, as the worker's health reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStats {
    pub name: String,
    pub pending: u64,
    pub running: u64,
    /// Failed at least once and waiting for a retry.
    pub failed: u64,
    pub dead: u64,
}

/// A job as `flakeguard jobs list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo {
    pub queue: String,
    pub id: String,
    pub state: JobState,
    pub attempts: u32,
    pub max_attempts: u32,
    pub last_error: Option<String>,
    pub payload: String,
    /// Unix milliseconds.
    pub created_at_ms: i64,
    /// Unix milliseconds of the last change of state.
    pub updated_at_ms: i64,
}

/// The queue port. Every method is one atomic step on the backend.
#[async_trait]
pub trait JobQueue: Send + Sync + fmt::Debug + 'static {
    /// `redis` or `sqlite`.
    fn backend(&self) -> &'static str;

    /// The backend answers.
    async fn ping(&self) -> Result<()>;

    /// Enqueues a job unless one with its id exists.
    async fn push(&self, job: &NewJob) -> Result<Pushed>;

    /// Leases the oldest pending job of the first of `queues` that has one, for `lease`.
    /// Before looking, it moves due retries back to pending and takes back expired leases of
    /// those queues (to pending, or to dead when the job has no attempts left).
    async fn reserve(&self, queues: &[&str], lease: Duration) -> Result<Option<Lease>>;

    /// Pushes the lease's deadline to `lease` from now. `false` when the lease was lost.
    async fn extend(&self, lease: &Lease, by: Duration) -> Result<bool>;

    /// The job is done: it is forgotten. `false` when the lease was lost.
    async fn complete(&self, lease: &Lease) -> Result<bool>;

    /// The job failed with `error`: it is retried after `retry_in`, or moved to the dead set
    /// when `retry_in` is `None`. `false` when the lease was lost.
    async fn fail(&self, lease: &Lease, error: &str, retry_in: Option<Duration>) -> Result<bool>;

    /// Hands the job back untried (a worker shutting down): pending again, and this
    /// reservation does not count as an attempt. `false` when the lease was lost.
    async fn release(&self, lease: &Lease) -> Result<bool>;

    /// Counts per queue, in the order given.
    async fn stats(&self, queues: &[&str]) -> Result<Vec<QueueStats>>;

    /// Up to `limit` jobs of `queue` in `state`, oldest first.
    async fn list(&self, queue: &str, state: JobState, limit: u32) -> Result<Vec<JobInfo>>;

    /// Moves dead jobs of `queue` (all, or the one with `id`) back to pending with their
    /// attempts reset. Returns how many moved.
    async fn retry_dead(&self, queue: &str, id: Option<&str>) -> Result<u64>;

    /// Forgets dead jobs of `queue` (all, or the one with `id`). Returns how many.
    async fn purge_dead(&self, queue: &str, id: Option<&str>) -> Result<u64>;

    /// Claims the `slot` of the schedule `name` (e.g. the hour number of an hourly job).
    /// Exactly one caller across all workers gets `true` for a given slot; the claim is
    /// remembered for at least `keep`.
    async fn claim_schedule(&self, name: &str, slot: i64, keep: Duration) -> Result<bool>;
}

/// A random lease token (128 bits, hex).
pub(crate) fn new_token() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: fall back to time and a counter, still unique per process.
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        return format!("{t:x}-{n:x}-{}", std::process::id());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Milliseconds of a duration, saturating.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
