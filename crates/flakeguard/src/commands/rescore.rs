//! `flakeguard rescore --repo o/r`: recompute every test's derived state from the stored
//! history (history is append-only; derived state can always be rebuilt from it).

use std::process::ExitCode;

use anyhow::{Result, bail};
use flakeguard_core::{Policy, TestScore, score_all};
use flakeguard_store::{DerivedState, RepoSlug, StoredRunId, TestCaseId};
use time::OffsetDateTime;

use crate::cli::RescoreArgs;

pub(crate) fn run(args: &RescoreArgs) -> Result<ExitCode> {
    let slug = RepoSlug::parse(&args.repo).map_err(|e| anyhow::anyhow!("--repo: {e}"))?;
    let policy = match &args.policy {
        Some(path) => super::analyze::load_policy(path)?,
        None => Policy::default(),
    };
    crate::database::with_store(async |database, store| {
        let Some(repo) = store.find_repository(&slug).await? else {
            bail!("repository {slug} not found in {}", database.describe());
        };
        let history = store
            .load_history(repo.id, policy.rolling_window_size)
            .await?;
        let scores = score_all(
            &history.runs,
            &history.tests,
            &policy,
            OffsetDateTime::now_utc(),
        );
        let states: Vec<DerivedState> = history
            .test_ids
            .iter()
            .zip(&scores)
            .map(|(id, score)| derived_state(*id, score, &history.run_ids))
            .collect();
        store
            .save_scores(repo.id, &states, OffsetDateTime::now_utc())
            .await?;
        let flaky = scores
            .iter()
            .filter(|s| s.status.as_str() == "flaky")
            .count();
        println!(
            "rescored {} tests of {slug} over {} runs: {flaky} flaky",
            states.len(),
            history.runs.len()
        );
        Ok(ExitCode::SUCCESS)
    })
}

/// The stored form of a test's score. The evidence's runs are indexes into the scored window;
/// `run_ids` (the window's stored run ids, as `load_history` returns them) turns them into
/// stored run ids, so the evidence keeps pointing at the right runs after later ingests.
pub(crate) fn derived_state(
    test: TestCaseId,
    score: &TestScore,
    run_ids: &[StoredRunId],
) -> DerivedState {
    let evidence: Vec<serde_json::Value> = score
        .evidence
        .iter()
        .map(|e| {
            let runs: Vec<i64> = e
                .runs
                .iter()
                .filter_map(|&run| run_ids.get(run as usize).map(|id| id.0))
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

#[cfg(test)]
mod tests {
    use flakeguard_core::{Execution, Outcome, Run, TestHistory, TestKey};
    use time::macros::datetime;

    use super::*;

    fn execution(run: u32, attempt: u32, outcome: Outcome) -> Execution {
        Execution {
            run,
            attempt,
            outcome,
            duration_ms: Some(5),
            signature: outcome.is_failure().then_some(42),
        }
    }

    #[test]
    fn the_stored_state_carries_counts_reason_and_evidence_with_stored_run_ids() {
        let start = datetime!(2026-11-01 09:00 UTC);
        let runs: Vec<Run> = (0..2)
            .map(|i| Run {
                run_id: format!("{}", 100 + i),
                attempt: 1,
                commit: Some("a".repeat(40)),
                branch: Some("main".to_owned()),
                job: None,
                started_at: start + time::Duration::minutes(i64::from(i)),
            })
            .collect();
        let test = TestHistory {
            key: TestKey::from_parts(None, "suite", Some("Class"), "retried"),
            file: None,
            executions: vec![
                execution(0, 1, Outcome::Failed),
                execution(0, 2, Outcome::Passed),
                execution(1, 1, Outcome::Passed),
                execution(1, 2, Outcome::Skipped),
            ],
        };
        let scores = score_all(&runs, &[test], &Policy::default(), start);
        let stored_runs = [StoredRunId(70), StoredRunId(90)];
        let state = derived_state(TestCaseId(5), &scores[0], &stored_runs);

        assert_eq!(state.test, TestCaseId(5));
        assert_eq!((state.executions, state.failures), (3, 1), "skips left out");
        assert_eq!(state.status, scores[0].status.as_str());
        assert_eq!(state.reason, scores[0].reason);
        let evidence: serde_json::Value = serde_json::from_str(&state.evidence).unwrap();
        let items = evidence.as_array().expect("a JSON array");
        assert_eq!(items.len(), scores[0].evidence.len());
        assert!(!items.is_empty(), "a retry that passed is evidence");
        for (item, expected) in items.iter().zip(&scores[0].evidence) {
            assert_eq!(item["kind"], expected.kind.as_str());
            let runs: Vec<i64> = expected
                .runs
                .iter()
                .map(|&r| stored_runs[r as usize].0)
                .collect();
            assert_eq!(item["runs"], serde_json::json!(runs));
        }
    }
}
