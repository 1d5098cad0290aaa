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
    /// Apply or list database migrations.
    #[command(
        after_help = "The database is chosen by DATABASE_URL: unset → ./data/flakeguard.db (SQLite; the folder from\nFLAKEGUARD_DATA_DIR), postgres://… or postgresql://… → PostgreSQL, sqlite:PATH → that SQLite file.\n\nExamples:\n  flakeguard migrate status\n  DATABASE_URL=postgres://flakeguard@db/flakeguard flakeguard migrate deploy\n\nExit status: `status` exits 1 when any migration is pending."
    )]
    Migrate {
        #[command(subcommand)]
        command: MigrateCommand,
    },
    /// Create the organization, its admin and a repository; print a one-time admin API token.
    #[command(
        after_help = "Idempotent: running it again creates nothing and issues no second token.\nThe database is chosen as for `migrate` (DATABASE_URL). SQLite is migrated automatically;\nPostgreSQL must be migrated first with `flakeguard migrate deploy`.\n\nExamples:\n  flakeguard seed --org acme --admin-email ops@acme.test --repo acme/shop\n  FLAKEGUARD_SEED_ORG=acme flakeguard seed"
    )]
    Seed(SeedArgs),
    /// Recompute every test's status and probability from the stored history.
    #[command(
        after_help = "Examples:\n  flakeguard rescore --repo acme/shop\n  flakeguard rescore --repo acme/shop --policy .flakeguard.yml"
    )]
    Rescore(RescoreArgs),
}

#[derive(Debug, Args)]
pub(crate) struct RescoreArgs {
    /// The repository, as owner/name.
    #[arg(long, value_name = "OWNER/NAME")]
    pub(crate) repo: String,
    /// A policy file (the scoring keys of `.flakeguard.yml`).
    #[arg(long, value_name = "FILE")]
    pub(crate) policy: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct SeedArgs {
    /// The organization's slug.
    #[arg(long, env = "FLAKEGUARD_SEED_ORG", default_value = "default")]
    pub(crate) org: String,
    /// The organization's display name (used only when it is created).
    #[arg(
        long,
        env = "FLAKEGUARD_SEED_ORG_NAME",
        default_value = "Default organization"
    )]
    pub(crate) org_name: String,
    /// The admin user's email.
    #[arg(
        long,
        env = "FLAKEGUARD_SEED_ADMIN_EMAIL",
        default_value = "admin@localhost"
    )]
    pub(crate) admin_email: String,
    /// The admin user's name (used only when it is created).
    #[arg(
        long,
        env = "FLAKEGUARD_SEED_ADMIN_NAME",
        default_value = "Administrator"
    )]
    pub(crate) admin_name: String,
    /// A repository to create in the organization, as owner/name.
    #[arg(long, env = "FLAKEGUARD_SEED_REPO", value_name = "OWNER/NAME")]
    pub(crate) repo: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub(crate) enum MigrateCommand {
    /// Apply every pending migration, in order.
    Deploy,
    /// List applied and pending migrations; exit 1 when any is pending.
    Status,
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
    /// Record the runs in this SQLite file and analyse everything recorded there so far.
    #[arg(long, value_name = "FILE")]
    pub(crate) history: Option<PathBuf>,
    /// The repository the runs belong to in the history file.
    #[arg(
        long,
        value_name = "OWNER/NAME",
        default_value = "local/project",
        requires = "history"
    )]
    pub(crate) repo: String,
    /// Runs: directories of report files, or single report files.
    #[arg(required = true, value_name = "PATH")]
    pub(crate) paths: Vec<PathBuf>,
}
