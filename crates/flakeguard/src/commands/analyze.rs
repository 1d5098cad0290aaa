//! `flakeguard analyze`: judge flakiness offline from a folder of past runs.

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::AnalyzeArgs;

pub(crate) fn run(_args: &AnalyzeArgs) -> Result<ExitCode> {
    anyhow::bail!("analyze is being built")
}
