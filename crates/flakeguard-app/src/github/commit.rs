//! What FlakeGuard says about one commit: every stored run on it (the latest attempt of each
//! workflow run's artifact), the tests whose final attempt failed, and what each failure
//! means now — quarantined, known flaky, or new.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use flakeguard_core::{Outcome, TestKey};
use flakeguard_store::{Repository, StoredRun, TestCaseId};
use time::OffsetDateTime;

use super::report::{Classification, NewlyFlaky};
use crate::ingest::{FailureStatus, FailureVerdict};
use crate::jobs::{JobContext, JobError};

/// A test whose final attempt failed on the commit, and what that failure means now.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub test: TestCaseId,
    pub key: TestKey,
    pub file: Option<String>,
    pub classification: Classification,
    /// The scoring's one-line reason for the test's status.
    pub reason: String,
}

impl Failure {
    pub fn is_known_flaky(&self) -> bool {
        matches!(self.classification, Classification::KnownFlaky { .. })
    }

    /// The failure of a flaky test, as the report and its issue describe it.
    pub fn as_flaky(&self) -> Option<NewlyFlaky> {
        match self.classification {
            Classification::KnownFlaky { probability } => Some(NewlyFlaky {
                id: self.test,
                key: self.key.clone(),
                file: self.file.clone(),
                probability,
                evidence: self.reason.clone(),
            }),
            _ => None,
        }
    }
}

/// The commit's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitView {
    pub head_sha: String,
    /// The stored runs counted (latest attempt per workflow run and artifact).
    pub runs: Vec<StoredRun>,
    /// Test results in those runs by final outcome (a test run by two jobs counts twice).
    pub tests: u64,
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Failures, new ones first, then by name.
    pub failures: Vec<Failure>,
    /// Tests of this delivery's runs that failed as new and are judged flaky now that the
    /// runs are scored: detected by this run.
    pub newly_flaky: Vec<TestCaseId>,
}

impl CommitView {
    pub fn count(&self, pick: fn(&Classification) -> bool) -> usize {
        self.failures
            .iter()
            .filter(|f| pick(&f.classification))
            .count()
    }
}

/// Builds the commit's view after its runs are stored and scored. `fresh` are the verdicts
/// given at ingestion of the runs this delivery brought (against the state before them).
pub async fn view(
    ctx: &JobContext,
    repo: &Repository,
    head_sha: &str,
    fresh: &[FailureVerdict],
) -> Result<CommitView, JobError> {
    let store = &*ctx.store;
    let all = store.runs_for_commit(repo.id, head_sha).await?;
    // A re-run attempt replaces the earlier attempt of the same workflow run and artifact.
    let mut latest: BTreeMap<(&str, &str), &StoredRun> = BTreeMap::new();
    for run in &all {
        let slot = latest
            .entry((run.workflow_run_id.as_str(), run.job.as_str()))
            .or_insert(run);
        if (run.attempt, run.id.0) > (slot.attempt, slot.id.0) {
            *slot = run;
        }
    }
    let runs: Vec<StoredRun> = latest.values().map(|r| (*r).clone()).collect();
    // A test failing in several artifacts is one failure of the commit.
    let mut failing: BTreeSet<TestCaseId> = BTreeSet::new();
    let (mut tests, mut passed, mut failed, mut skipped) = (0u64, 0u64, 0u64, 0u64);
    for run in &runs {
        let outcomes = store.run_final_outcomes(repo.id, run.id).await?;
        tests += outcomes.len() as u64;
        for (_, outcome) in &outcomes {
            match outcome {
                Outcome::Passed => passed += 1,
                Outcome::Skipped => skipped += 1,
                Outcome::Failed | Outcome::Error => failed += 1,
            }
        }
        failing.extend(
            outcomes
                .into_iter()
                .filter(|(_, o)| o.is_failure())
                .map(|(id, _)| id),
        );
    }
    let ids: Vec<TestCaseId> = failing.into_iter().collect();
    let found = store.find_tests(repo.id, &ids).await?;
    let quarantines: HashMap<TestCaseId, (Option<OffsetDateTime>, Option<String>)> = store
        .live_quarantines(repo.id)
        .await?
        .into_iter()
        .map(|(q, _)| (q.test, (q.expires_at, q.owner)))
        .collect();
    let mut failures: Vec<Failure> = found
        .into_iter()
        .map(|t| {
            let classification = match quarantines.get(&t.id) {
                Some((until, owner)) => Classification::Quarantined {
                    until: *until,
                    owner: owner.clone(),
                },
                None if t.status == "flaky" => Classification::KnownFlaky {
                    probability: t.probability,
                },
                None => Classification::New,
            };
            Failure {
                test: t.id,
                key: t.key,
                file: t.file,
                classification,
                reason: t.reason,
            }
        })
        .collect();
    failures.sort_by(|a, b| {
        (a.classification != Classification::New)
            .cmp(&(b.classification != Classification::New))
            .then_with(|| a.key.cmp(&b.key))
    });
    let was_new: HashSet<TestCaseId> = fresh
        .iter()
        .filter(|v| v.status == FailureStatus::New)
        .map(|v| v.test)
        .collect();
    let newly_flaky = failures
        .iter()
        .filter(|f| f.is_known_flaky() && was_new.contains(&f.test))
        .map(|f| f.test)
        .collect();
    Ok(CommitView {
        head_sha: head_sha.to_owned(),
        tests,
        passed,
        failed,
        skipped,
        runs,
        failures,
        newly_flaky,
    })
}
