//! `score_tests`: re-score the tests one run touched under the repository's policy, apply the
//! policy's automatic quarantine and release to them, and mark the run scored (the end of its
//! outbox entry). Scoring recomputes from the stored history, so doing it twice gives the
//! same state, and the quarantine steps only act on what is still due; marking scored happens
//! last, so a worker that dies in between leaves the run for the retry or the sweeper.

use flakeguard_core::RepoConfig;
use flakeguard_store::{DerivedState, RepoId, StoreError, StoredRunId};

use super::{JobContext, JobError, ScoreTests};
use crate::policy::RepoPolicy;
use crate::quarantine::apply_policy;
use crate::rescore::derived_state;

pub(super) async fn run(ctx: &JobContext, job: &ScoreTests) -> Result<String, JobError> {
    let (repo, run) = (RepoId(job.repo), StoredRunId(job.run));
    // One policy read per job; the worker's default policy where the repository stores none.
    let fallback = RepoConfig {
        policy: ctx.policy.clone(),
        ..RepoConfig::default()
    };
    let policy = RepoPolicy::load_or(&*ctx.store, repo, &fallback).await?;
    let history = match ctx
        .store
        .load_run_history(repo, run, policy.config.policy.rolling_window_size)
        .await
    {
        Ok(history) => history,
        // The run (or its repository) was deleted since: nothing left to score.
        Err(StoreError::NotFound(what)) => return Ok(format!("nothing to score: {what}")),
        Err(e) => return Err(e.into()),
    };
    let now = ctx.now();
    let scores = policy.score(&history, now);
    let states: Vec<DerivedState> = history
        .test_ids
        .iter()
        .zip(&scores)
        .map(|(id, score)| derived_state(*id, score, &history.run_ids))
        .collect();
    ctx.store.save_scores(repo, &states, now).await?;
    let labelled = required_labels_present(ctx, repo, run, &policy.config.labels_required).await?;
    let actions = apply_policy(
        &*ctx.store,
        repo,
        &policy,
        &history,
        &scores,
        run,
        labelled,
        now,
    )
    .await?;
    ctx.store.mark_run_scored(run, now).await?;
    let flaky = scores
        .iter()
        .filter(|s| s.status.as_str() == "flaky")
        .count();
    Ok(format!(
        "scored {} tests of run {} over {} runs ({flaky} flaky; {} quarantined, {} released by policy)",
        states.len(),
        run.0,
        history.runs.len(),
        actions.quarantined.len(),
        actions.released.len()
    ))
}

/// `labels_required`: automatic quarantine acts on a run only when it belongs to a pull
/// request carrying every required label (none required: every run). A run of no pull
/// request, or of one whose labels no `pull_request` event told, carries none.
async fn required_labels_present(
    ctx: &JobContext,
    repo: RepoId,
    run: StoredRunId,
    required: &[String],
) -> Result<bool, JobError> {
    if required.is_empty() {
        return Ok(true);
    }
    let Some(pr) = ctx
        .store
        .find_run(repo, run)
        .await?
        .and_then(|r| r.pr_number)
    else {
        return Ok(false);
    };
    let labels = ctx.store.pr_labels(repo, pr).await?.unwrap_or_default();
    Ok(required
        .iter()
        .all(|want| labels.iter().any(|have| have.eq_ignore_ascii_case(want))))
}
