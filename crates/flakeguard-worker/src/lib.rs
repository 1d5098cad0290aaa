//! FlakeGuard's worker role: [`run`] leases jobs from the [`JobQueue`] and runs them
//! `WORKER_CONCURRENCY` at a time until shutdown, while [`sweeper`] re-enqueues persisted work
//! whose job went missing and [`schedule`] enqueues maintenance exactly once per slot across
//! every worker.
//!
//! A job's lease is extended while its handler runs (a third of the lease at a time), so a
//! slow job is not taken over, and a dead worker's jobs come back after one lease. On
//! shutdown the worker stops taking jobs, lets the running ones finish for up to
//! [`WorkerConfig::drain`], then hands the rest back (they are pending again at once, the
//! attempt not counted).
#![forbid(unsafe_code)]

mod runner;
pub mod schedule;
pub mod sweeper;

use std::time::Duration;

pub use runner::{WorkerSummary, run};

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Jobs at once (`WORKER_CONCURRENCY`).
    pub concurrency: usize,
    /// How long a job is leased before another worker may take it back.
    pub lease: Duration,
    /// How long to wait before asking again when every queue is empty.
    pub poll: Duration,
    /// How often the outbox is swept.
    pub sweep_every: Duration,
    /// Outbox entries younger than this are left to the API's own enqueue.
    pub sweep_grace: Duration,
    /// How long running jobs may finish after shutdown is asked before they are handed back.
    pub drain: Duration,
    /// Maintenance runs once per this period across all workers.
    pub maintenance_every: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            concurrency: 4,
            lease: Duration::from_secs(60),
            poll: Duration::from_millis(200),
            sweep_every: Duration::from_secs(15),
            sweep_grace: Duration::from_secs(5),
            drain: Duration::from_secs(20),
            maintenance_every: Duration::from_secs(3600),
        }
    }
}
