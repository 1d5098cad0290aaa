//! `flakeguard rescore --repo o/r`: recompute every test's derived state from the stored
//! history (history is append-only; derived state can always be rebuilt from it).

use std::process::ExitCode;

use anyhow::{Result, bail};
use flakeguard_core::{Policy, score_all};
use flakeguard_store::{DerivedState, RepoSlug};
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
            .map(|(id, s)| DerivedState {
                test: *id,
                status: s.status.as_str().to_owned(),
                probability: s.probability,
                confidence: s.confidence,
                legacy_score: s.legacy_score,
                recommendation: s.recommendation.as_str().to_owned(),
            })
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
