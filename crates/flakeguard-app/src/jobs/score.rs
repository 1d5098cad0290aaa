//! `score_tests`: re-score the tests one run touched and mark the run scored (the end of its
//! outbox entry). Scoring recomputes from the stored history, so doing it twice gives the
//! same state; marking scored happens last, so a worker that dies in between leaves the run
//! for the retry or the sweeper.

use flakeguard_core::score_all;
use flakeguard_store::{DerivedState, RepoId, StoreError, StoredRunId};

use super::{JobContext, JobError, ScoreTests};
use crate::rescore::derived_state;

pub(super) async fn run(ctx: &JobContext, job: &ScoreTests) -> Result<String, JobError> {
    let (repo, run) = (RepoId(job.repo), StoredRunId(job.run));
    let history = match ctx
        .store
        .load_run_history(repo, run, ctx.policy.rolling_window_size)
        .await
    {
        Ok(history) => history,
        // The run (or its repository) was deleted since: nothing left to score.
        Err(StoreError::NotFound(what)) => return Ok(format!("nothing to score: {what}")),
        Err(e) => return Err(e.into()),
    };
    let now = ctx.now();
    let scores = score_all(&history.runs, &history.tests, &ctx.policy, now);
    let states: Vec<DerivedState> = history
        .test_ids
        .iter()
        .zip(&scores)
        .map(|(id, score)| derived_state(*id, score, &history.run_ids))
        .collect();
    ctx.store.save_scores(repo, &states, now).await?;
    ctx.store.mark_run_scored(run, now).await?;
    let flaky = scores
        .iter()
        .filter(|s| s.status.as_str() == "flaky")
        .count();
    Ok(format!(
        "scored {} tests of run {} over {} runs ({flaky} flaky)",
        states.len(),
        run.0,
        history.runs.len()
    ))
}
