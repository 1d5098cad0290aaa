//! Runs, executions and per-test histories: the facts the scoring engine judges.
//!
//! History is append-only: a [`Run`] is one CI run attempt (a workflow run and its run
//! attempt, or one directory of reports), and an [`Execution`] is one attempt of one test in
//! one run. Retries inside a run are separate executions with increasing `attempt` numbers;
//! re-runs of a whole CI run are separate [`Run`]s sharing a `run_id` with a higher
//! `attempt`.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::key::TestKey;

/// Index of a [`Run`] inside the slice of runs a history refers to.
pub type RunId = u32;

/// One CI run (or one attempt of a re-run CI run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// The CI's run id; re-runs of one run share it.
    pub run_id: String,
    /// 1 for the first attempt, 2 for the first re-run, …
    pub attempt: u32,
    /// Commit SHA the run tested, when known.
    pub commit: Option<String>,
    /// Branch the run tested, when known.
    pub branch: Option<String>,
    /// Job name within the CI run, when known.
    pub job: Option<String>,
    /// When the run started.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
}

/// The final result of one execution (one attempt of one test).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Passed,
    Failed,
    Error,
    Skipped,
}

impl Outcome {
    /// Failed or errored: the test did not pass and was not skipped.
    pub fn is_failure(self) -> bool {
        matches!(self, Outcome::Failed | Outcome::Error)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Error => "error",
            Outcome::Skipped => "skipped",
        }
    }
}

/// One attempt of one test in one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    /// The run this execution belongs to (an index into the runs slice).
    pub run: RunId,
    /// Attempt of the test within its run: 1, then 2, 3 … for in-run retries.
    pub attempt: u32,
    pub outcome: Outcome,
    /// Duration in milliseconds when the producer recorded one.
    pub duration_ms: Option<u64>,
    /// Normalized failure signature (see [`crate::signature`]) for failures.
    pub signature: Option<u64>,
}

/// Everything known about one test: its identity and its executions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestHistory {
    pub key: TestKey,
    /// The test's file when a producer named one.
    pub file: Option<String>,
    /// Executions in any order; the engine orders them by run time and attempt.
    pub executions: Vec<Execution>,
}
