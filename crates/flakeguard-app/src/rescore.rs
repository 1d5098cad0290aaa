//! Recomputing a repository's derived test state from its stored history (history is
//! append-only, so this can always be redone).

use flakeguard_core::TestScore;
use flakeguard_store::{DerivedState, RepoId, Store, StoreError, StoredRunId, TestCaseId};
use time::OffsetDateTime;

use crate::policy::RepoPolicy;

/// Runs marked scored per rescore, at most (the worker's sweeper handles any beyond).
const UNSCORED_BATCH: u32 = 100_000;

/// What a rescore did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rescored {
    pub tests: usize,
    pub runs: usize,
    pub flaky: usize,
    pub broken: usize,
}

/// Scores every test of the repository under its stored policy (see
/// [`RepoPolicy::load`]) over the policy's window and saves the result. Every run of the
/// repository is then reflected in the scores, so runs still waiting for their `score_tests`
/// job are marked scored (their jobs, if any, find nothing left to do but redo the same
/// scores).
pub async fn rescore(
    store: &dyn Store,
    repo: RepoId,
    now: OffsetDateTime,
) -> Result<Rescored, StoreError> {
    let policy = RepoPolicy::load(store, repo).await?;
    rescore_with(store, repo, &policy, now).await
}

/// [`rescore`] under the given policy (`flakeguard rescore --policy FILE`).
pub async fn rescore_with(
    store: &dyn Store,
    repo: RepoId,
    policy: &RepoPolicy,
    now: OffsetDateTime,
) -> Result<Rescored, StoreError> {
    let history = store
        .load_history(repo, policy.config.policy.rolling_window_size)
        .await?;
    let scores = policy.score(&history, now);
    let states: Vec<DerivedState> = history
        .test_ids
        .iter()
        .zip(&scores)
        .map(|(id, score)| derived_state(*id, score, &history.run_ids))
        .collect();
    store.save_scores(repo, &states, now).await?;
    let waiting = store
        .unscored_runs(now + time::Duration::seconds(1), UNSCORED_BATCH)
        .await?;
    for (_, run) in waiting.into_iter().filter(|(r, _)| *r == repo) {
        store.mark_run_scored(run, now).await?;
    }
    let count = |status: &str| {
        scores
            .iter()
            .filter(|s| s.status.as_str() == status)
            .count()
    };
    Ok(Rescored {
        tests: states.len(),
        runs: history.runs.len(),
        flaky: count("flaky"),
        broken: count("broken"),
    })
}

/// The stored form of a test's score. `run_ids` maps the scored runs' indexes to stored run
/// ids, so the stored evidence points at runs the API can show.
pub fn derived_state(test: TestCaseId, score: &TestScore, run_ids: &[StoredRunId]) -> DerivedState {
    let evidence: Vec<serde_json::Value> = score
        .evidence
        .iter()
        .map(|e| {
            let runs: Vec<i64> = e
                .runs
                .iter()
                .filter_map(|r| run_ids.get(*r as usize).map(|id| id.0))
                .collect();
            serde_json::json!({ "kind": e.kind, "runs": runs })
        })
        .collect();
    DerivedState {
        test,
        status: score.status.as_str().to_owned(),
        probability: score.probability,
        confidence: score.confidence,
        legacy_score: score.legacy_score,
        recommendation: score.recommendation.as_str().to_owned(),
        executions: u32::try_from(score.executions).unwrap_or(u32::MAX),
        failures: u32::try_from(score.failures).unwrap_or(u32::MAX),
        reason: score.reason.clone(),
        evidence: serde_json::Value::Array(evidence).to_string(),
    }
}
