//! The quarantine lifecycle's automatic steps, run by the score job after it saves a run's
//! scores: automatic quarantine (when the policy enables it) and automatic release after
//! consecutive clean runs. Every change is written to the audit log and counted in
//! `flakeguard_quarantine_changes_total`, as the API's manual changes and maintenance's
//! expiries are.

use std::collections::{HashMap, HashSet};

use flakeguard_core::{Recommendation, Status, TestHistory, TestScore};
use flakeguard_store::{
    NewAuditEntry, NewQuarantine, OrgId, Quarantine, QuarantineState, RepoId, Store, StoreError,
    StoredHistory, StoredRunId, TestCaseId,
};
use time::{Duration, OffsetDateTime};

use crate::policy::{RepoPolicy, test_path};

/// `created_by` of automatic quarantines.
pub const AUTO_QUARANTINE: &str = "policy:auto";
/// The actor of automatic releases.
pub const AUTO_RELEASE: &str = "policy:auto-release";

/// Counts a quarantine lifecycle change (`created`, `released`, `expired`) in
/// `flakeguard_quarantine_changes_total`: the one place the metric is written.
pub fn count_change(change: &'static str, n: u64) {
    if n > 0 {
        metrics::counter!("flakeguard_quarantine_changes_total", "change" => change).increment(n);
    }
}

/// What the policy changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyActions {
    pub quarantined: Vec<Quarantine>,
    pub released: Vec<Quarantine>,
}

/// Applies the policy to the tests of one scored run (`history` as the score job loaded it,
/// `scores` in its order):
///
/// - **quarantine** a test when automatic quarantine is on for it (repository or team
///   setting) and `labelled` (the run's pull request carries the `labels_required`, or none
///   are required), its recommendation is quarantine, its status is not broken, it is not exempted
///   or excluded, it has no live quarantine, and it failed in `run` — new evidence: a test
///   released (by hand or after clean runs) is not quarantined again until it fails again.
///   The quarantine is active, by [`AUTO_QUARANTINE`], owned by the test's first CODEOWNERS
///   owner, expiring after `quarantine_duration_days`.
/// - **release** each live quarantine of a test whose last `release_after_clean_runs` runs
///   since the quarantine began were all clean: every attempt passed, one attempt (no retry).
///   Runs where the test was only skipped do not count.
///
/// Idempotent: what is quarantined has a live quarantine, what is released has none.
#[allow(clippy::too_many_arguments)]
pub async fn apply_policy(
    store: &dyn Store,
    repo: RepoId,
    policy: &RepoPolicy,
    history: &StoredHistory,
    scores: &[TestScore],
    run: StoredRunId,
    labelled: bool,
    now: OffsetDateTime,
) -> Result<PolicyActions, StoreError> {
    let config = &policy.config;
    let auto_possible = labelled
        && (config.auto_quarantine_enabled
            || config
                .team_overrides
                .iter()
                .any(|o| o.auto_quarantine_enabled == Some(true)));
    let release_possible = config.release_after_clean_runs > 0;
    let mut actions = PolicyActions::default();
    if history.tests.is_empty() || (!auto_possible && !release_possible) {
        return Ok(actions);
    }
    let live: HashMap<TestCaseId, Quarantine> = store
        .live_quarantines(repo)
        .await?
        .into_iter()
        .map(|(q, _)| (q.test, q))
        .collect();
    let run_index = history.run_ids.iter().position(|r| *r == run);
    let mut audit: Vec<NewAuditEntry> = Vec::new();

    if auto_possible && let Some(run_index) = run_index {
        for ((test, id), score) in history.tests.iter().zip(&history.test_ids).zip(scores) {
            if live.contains_key(id)
                || score.recommendation != Recommendation::Quarantine
                || score.status == Status::Broken
                || !failed_in(test, run_index)
            {
                continue;
            }
            let path = test_path(test.file.as_deref(), &test.key);
            let owner = policy.owner(test.file.as_deref(), &test.key);
            if !config.auto_quarantine(path.as_deref(), owner.as_deref())
                || config.exemption(&test.key).is_some()
                || config.exclusion(path.as_deref()).is_some()
            {
                continue;
            }
            let reason = auto_reason(score);
            let new = NewQuarantine {
                test: *id,
                state: QuarantineState::Active,
                reason,
                owner,
                created_by: AUTO_QUARANTINE.to_owned(),
                created_at: now,
                expires_at: Some(now + Duration::days(i64::from(config.quarantine_duration_days))),
            };
            match store.add_quarantine(repo, &new).await {
                Ok(q) => {
                    audit.push(NewAuditEntry {
                        org: None,
                        actor: AUTO_QUARANTINE.to_owned(),
                        action: "quarantine.created".to_owned(),
                        target: format!("#test:{}", id.0),
                        detail: serde_json::json!({
                            "quarantine": q.id.0,
                            "state": q.state.as_str(),
                            "reason": q.reason,
                            "owner": q.owner,
                            "probability": score.probability,
                            "expires_at": q.expires_at.map(|t| t.unix_timestamp()),
                        })
                        .to_string(),
                        at: now,
                    });
                    actions.quarantined.push(q);
                }
                // Quarantined meanwhile (by hand, or a concurrent job): nothing to add.
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }

    if release_possible {
        let wanted = config.release_after_clean_runs as usize;
        let tests: HashMap<TestCaseId, &TestHistory> = history
            .test_ids
            .iter()
            .copied()
            .zip(&history.tests)
            .collect();
        let just_added: HashSet<TestCaseId> = actions.quarantined.iter().map(|q| q.test).collect();
        for (test_id, q) in &live {
            if just_added.contains(test_id) {
                continue;
            }
            let Some(test) = tests.get(test_id) else {
                continue;
            };
            if !clean_since(history, test, q.created_at, wanted) {
                continue;
            }
            if let Some(released) = store
                .release_quarantine(repo, *test_id, now, AUTO_RELEASE)
                .await?
            {
                audit.push(NewAuditEntry {
                    org: None,
                    actor: AUTO_RELEASE.to_owned(),
                    action: "quarantine.released".to_owned(),
                    target: format!("#test:{}", test_id.0),
                    detail: serde_json::json!({
                        "quarantine": released.id.0,
                        "reason": format!("{wanted} consecutive clean runs since it was quarantined"),
                    })
                    .to_string(),
                    at: now,
                });
                actions.released.push(released);
            }
        }
        actions.released.sort_by_key(|q| q.id);
    }

    if !audit.is_empty() {
        let (org, slug) = repository_label(store, repo).await?;
        for mut entry in audit {
            entry.org = org;
            entry.target = format!("{slug}{}", entry.target);
            store.audit(&entry).await?;
        }
    }
    count_change("created", actions.quarantined.len() as u64);
    count_change("released", actions.released.len() as u64);
    Ok(actions)
}

/// The repository's organization and `owner/name` for the audit log.
async fn repository_label(
    store: &dyn Store,
    repo: RepoId,
) -> Result<(Option<OrgId>, String), StoreError> {
    Ok(store
        .list_all_repositories()
        .await?
        .into_iter()
        .find(|r| r.id == repo)
        .map(|r| (Some(r.org), r.slug.to_string()))
        .unwrap_or((None, format!("repository {}", repo.0))))
}

/// Whether the test failed (an attempt failed or errored) in the run at `run_index`.
fn failed_in(test: &TestHistory, run_index: usize) -> bool {
    test.executions
        .iter()
        .any(|e| e.run as usize == run_index && e.outcome.is_failure())
}

/// Whether the test's last `wanted` runs that started at or after `since` were all clean.
fn clean_since(
    history: &StoredHistory,
    test: &TestHistory,
    since: OffsetDateTime,
    wanted: usize,
) -> bool {
    // Per run: (started_at, run index) → (attempts that ran, any failure).
    let mut runs: HashMap<usize, (usize, bool)> = HashMap::new();
    for e in &test.executions {
        let Some(run) = history.runs.get(e.run as usize) else {
            continue;
        };
        if run.started_at < since || e.outcome == flakeguard_core::Outcome::Skipped {
            continue;
        }
        let entry = runs.entry(e.run as usize).or_insert((0, false));
        entry.0 += 1;
        entry.1 |= e.outcome.is_failure();
    }
    if runs.len() < wanted {
        return false;
    }
    let mut ordered: Vec<(OffsetDateTime, usize, (usize, bool))> = runs
        .into_iter()
        .map(|(i, v)| (history.runs[i].started_at, i, v))
        .collect();
    ordered.sort_by_key(|(at, i, _)| (*at, *i));
    ordered
        .iter()
        .rev()
        .take(wanted)
        .all(|(_, _, (attempts, failed))| *attempts == 1 && !failed)
}

/// The reason an automatic quarantine records.
fn auto_reason(score: &TestScore) -> String {
    let evidence: Vec<String> = score
        .evidence
        .iter()
        .map(|e| {
            format!(
                "{} in {} run{}",
                e.kind.as_str(),
                e.runs.len(),
                if e.runs.len() == 1 { "" } else { "s" }
            )
        })
        .collect();
    let evidence = if evidence.is_empty() {
        String::new()
    } else {
        format!("; evidence: {}", evidence.join(", "))
    };
    format!(
        "automatic: {:.0}% likely flaky ({} failures in {} executions{evidence})",
        score.probability * 100.0,
        score.failures,
        score.executions
    )
}
