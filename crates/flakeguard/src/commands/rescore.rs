//! `flakeguard rescore --repo o/r`: recompute every test's derived state from the stored
//! history (history is append-only; derived state can always be rebuilt from it).

use std::process::ExitCode;

use anyhow::{Result, bail};
use flakeguard_core::Policy;
use flakeguard_store::RepoSlug;
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
        let done =
            flakeguard_app::rescore(&*store, repo.id, &policy, OffsetDateTime::now_utc()).await?;
        println!(
            "rescored {} tests of {slug} over {} runs: {} flaky, {} broken",
            done.tests, done.runs, done.flaky, done.broken
        );
        Ok(ExitCode::SUCCESS)
    })
}
