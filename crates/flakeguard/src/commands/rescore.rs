//! `flakeguard rescore --repo o/r`: recompute every test's derived state from the stored
//! history (history is append-only; derived state can always be rebuilt from it), under the
//! repository's stored policy, or the settings of `--policy FILE` in its place.

use std::process::ExitCode;

use anyhow::{Result, bail};
use flakeguard_store::RepoSlug;
use time::OffsetDateTime;

use crate::cli::RescoreArgs;

pub(crate) fn run(args: &RescoreArgs) -> Result<ExitCode> {
    let slug = RepoSlug::parse(&args.repo).map_err(|e| anyhow::anyhow!("--repo: {e}"))?;
    let config = match &args.policy {
        Some(path) => Some(super::analyze::load_config(path)?),
        None => None,
    };
    crate::database::with_store(async |database, store| {
        let Some(repo) = store.find_repository(&slug).await? else {
            bail!("repository {slug} not found in {}", database.describe());
        };
        // The repository's stored policy, or the given file's settings in its place.
        let mut policy = flakeguard_app::RepoPolicy::load(&*store, repo.id).await?;
        if let Some(config) = config {
            policy = policy.with_config(config);
        }
        let done =
            flakeguard_app::rescore_with(&*store, repo.id, &policy, OffsetDateTime::now_utc())
                .await?;
        println!(
            "rescored {} tests of {slug} over {} runs: {} flaky, {} broken",
            done.tests, done.runs, done.flaky, done.broken
        );
        Ok(ExitCode::SUCCESS)
    })
}
