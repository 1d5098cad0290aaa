//! Command-line definitions (clap). Each command's behaviour lives in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// FlakeGuard finds flaky tests in your CI, explains the evidence, and quarantines them
/// without code changes.
#[derive(Debug, Parser)]
#[command(name = "flakeguard", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Parse test reports and show what was understood and what is odd.
    #[command(
        after_help = "Examples:\n  flakeguard validate target/nextest/ci/junit.xml\n  flakeguard validate --format json reports/ > summary.jsonl\n\nExit status: 0 when every file is a readable JUnit report, 1 when any is not, 2 on usage errors."
    )]
    Validate(ValidateArgs),
    /// Judge flakiness offline from a folder of past runs' reports.
    #[command(
        after_help = "Each PATH is one run: a directory with that run's report files (and optionally a\nflakeguard-run.json with {\"commit\",\"branch\",\"run_id\",\"attempt\",\"started_at\"}), or a single\nXML file. Runs sharing a run_id with different attempts are re-runs of one run.\n\nExamples:\n  flakeguard analyze examples/history/*\n  flakeguard analyze --format markdown ci-history/* >> \"$GITHUB_STEP_SUMMARY\"\n  flakeguard analyze --policy .flakeguard.yml --format json runs/*"
    )]
    Analyze(AnalyzeArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ValidateFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// Output format: a readable table, or one JSON object per file per line.
    #[arg(long, value_enum, default_value_t = ValidateFormat::Text)]
    pub(crate) format: ValidateFormat,
    /// Report files, or directories searched recursively for `*.xml`.
    #[arg(required = true, value_name = "PATH")]
    pub(crate) paths: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum AnalyzeFormat {
    Table,
    Json,
    Markdown,
}

#[derive(Debug, Args)]
pub(crate) struct AnalyzeArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = AnalyzeFormat::Table)]
    pub(crate) format: AnalyzeFormat,
    /// A policy file (`.flakeguard.yml` keys: flaky_threshold, warn_threshold, min_occurrences, …).
    #[arg(long, value_name = "FILE")]
    pub(crate) policy: Option<PathBuf>,
    /// Judge as of this time (RFC 3339) instead of now; makes output reproducible.
    #[arg(long, value_name = "TIME", env = "FLAKEGUARD_NOW")]
    pub(crate) now: Option<String>,
    /// Runs: directories of report files, or single report files.
    #[arg(required = true, value_name = "PATH")]
    pub(crate) paths: Vec<PathBuf>,
}
