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
        after_help = "Idempotent: running it again creates nothing and issues no second token.\nThe database is chosen as for `migrate` (DATABASE_URL). SQLite is migrated automatically;\nPostgreSQL must be migrated first with `flakeguard migrate deploy`.\n\nExamples:\n  flakeguard seed --org acme --admin-email ops@acme.test --repo acme/shop\n  FLAKEGUARD_SEED_ORG=acme flakeguard seed\n  flakeguard seed --demo"
    )]
    Seed(SeedArgs),
    /// Run FlakeGuard: the API, the worker's health and the web role, on the embedded SQLite
    /// database unless DATABASE_URL says otherwise.
    #[command(
        after_help = "Settings come from the environment, a .env file in the working directory, <NAME>_FILE\nvariables and /run/secrets/<name> (see README.md). With no configuration at all:\n  API     http://0.0.0.0:3000   (PORT, HOST)   /health, /health/ready, /api/v1/…, /documentation\n  worker  http://0.0.0.0:3001   (WORKER_PORT)  /health, /metrics (and the jobs)\n  web     http://0.0.0.0:3002   (WEB_PORT)     /health\nSIGTERM or Ctrl-C drains in-flight requests (up to 30 s) and running jobs (up to 20 s, then hands\nthem back to the queue) and exits 0.\n\nExamples:\n  flakeguard serve\n  NODE_ENV=production DATABASE_URL=postgres://flakeguard@db/flakeguard flakeguard serve --role api"
    )]
    Serve(ServeArgs),
    /// Run the API role only (what the runbook's `api` service runs).
    #[command(
        after_help = "The same as `flakeguard serve --role api`: PORT (3000), uploads and the read API. Jobs are\nqueued on REDIS_URL (or the embedded queue) for `flakeguard worker` processes."
    )]
    Api(MigrateFlags),
    /// Run the worker role only: jobs, the outbox sweep, the maintenance schedule, and
    /// WORKER_PORT's /health and /metrics.
    #[command(
        after_help = "The same as `flakeguard serve --role worker`. Runs WORKER_CONCURRENCY jobs at once; any number\nof workers may share one REDIS_URL. SIGTERM: stop taking jobs, let running ones finish for up to\n20 s, hand the rest back to the queue, exit 0."
    )]
    Worker(MigrateFlags),
    /// Run the web role only (WEB_PORT).
    Web(MigrateFlags),
    /// Inspect the job queues and replay or purge dead jobs.
    #[command(
        after_help = "The queue is chosen as for `serve`: REDIS_URL, else the embedded queue beside the SQLite\ndatabase. Queues: score_tests, process_webhook, notify, maintenance.\n\nExamples:\n  flakeguard jobs list\n  flakeguard jobs list --state dead --queue score_tests --format json\n  flakeguard jobs retry --queue score_tests score_tests:run:42\n  flakeguard jobs retry --all\n  flakeguard jobs purge-dead --queue notify"
    )]
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Create, list and revoke API tokens.
    #[command(
        after_help = "Examples:\n  flakeguard token create --org acme --name ci --scopes ingest,read\n  flakeguard token create --org acme --name shop-ci --scopes ingest --repo acme/shop\n  flakeguard token list --org acme\n  flakeguard token revoke --org acme 7"
    )]
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Recompute every test's status and probability from the stored history.
    #[command(
        after_help = "Examples:\n  flakeguard rescore --repo acme/shop\n  flakeguard rescore --repo acme/shop --policy .flakeguard.yml"
    )]
    Rescore(RescoreArgs),
    /// Send one CI run's test reports to a FlakeGuard server.
    #[command(
        after_help = "Each PATH is a report file, a directory (every *.xml below it) or a quoted glob pattern\n(`*`, `?`, `[…]`, `**`). All files go in one request: they are one run's reports.\n\nMissing flags are taken from the environment: FLAKEGUARD_SERVER, FLAKEGUARD_TOKEN and, on\nGitHub Actions, GITHUB_REPOSITORY, GITHUB_SHA, GITHUB_HEAD_REF or GITHUB_REF_NAME, GITHUB_REF\n(refs/pull/N/merge), GITHUB_RUN_ID, GITHUB_RUN_ATTEMPT and GITHUB_JOB. Flags win.\n\nExamples:\n  flakeguard upload --server https://flakeguard.example.com target/nextest/ci/junit.xml\n  flakeguard upload --repo acme/shop --commit \"$(git rev-parse HEAD)\" 'reports/**/*.xml'\n\nExit status: 0 when the server stored the run (or already had it), 1 when it refused it or\ncould not be reached, 2 on usage errors."
    )]
    Upload(UploadArgs),
    /// Run a test command, upload its JUnit reports, and exit 0 when every failing test is
    /// quarantined (otherwise with the command's own exit code).
    #[command(
        after_help = "The command runs with its output streamed. Afterwards FlakeGuard reads the JUnit reports it\nwrote (files matching --junit, modified since the command started), uploads them as\n`flakeguard upload` does, and compares the failing tests with the repository's quarantine list\n(active quarantines only). FlakeGuard's own messages go to stderr.\n\nExit status: 0 when the command succeeded, or failed only on quarantined tests (they are\nlisted); otherwise the command's own exit code (also when it wrote no report, or when the\nserver cannot be reached: --fail-closed then exits non-zero even for a passing run);\n2 on usage errors; 126/127 when the command cannot be started.\n\nExamples:\n  flakeguard run -- cargo nextest run --profile ci\n  flakeguard run --junit 'reports/*.xml' -- pytest --junitxml=reports/junit.xml\n  flakeguard run --quarantine-file quarantine.json -- npm test"
    )]
    Run(RunArgs),
    /// Check a policy file (`.flakeguard.yml`).
    #[command(
        after_help = "Examples:\n  flakeguard policy check .flakeguard.yml\n\nExit status: 0 when the file is valid (a summary of the settings is printed), 1 when it is\nnot (every problem is listed as FILE:LINE:COLUMN: KEY: MESSAGE) or cannot be read, 2 on\nusage errors."
    )]
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Quarantine lists for test runners.
    #[command(
        after_help = "Only active quarantines that have not expired are exported.\n\nExamples:\n  flakeguard quarantine export --format pytest > deselect.txt && pytest @deselect.txt\n  cargo nextest run -E \"$(flakeguard quarantine export --format nextest)\"\n  go test -skip \"$(flakeguard quarantine export --format go)\" ./...\n  npx jest --testNamePattern \"$(flakeguard quarantine export --format jest)\"\n  mvn test \"-Dtest=$(flakeguard quarantine export --format junit5)\" -Dsurefire.failIfNoSpecifiedTests=false\n  flakeguard quarantine export --format json > quarantine.json   # for --quarantine-file\n\nExit status: 0 on success, 1 when the list cannot be read or fetched, 2 on usage errors."
    )]
    Quarantine {
        #[command(subcommand)]
        command: QuarantineCommand,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum UploadFormat {
    Text,
    Json,
}

/// Where a FlakeGuard server is and how hard to try reaching it: shared by every command
/// that talks to one (`upload`, `run`, `quarantine export`).
#[derive(Debug, Args)]
pub(crate) struct ServerArgs {
    /// The FlakeGuard server's base URL [env: FLAKEGUARD_SERVER].
    #[arg(long, value_name = "URL")]
    pub(crate) server: Option<String>,
    /// An API token: the ingest scope to upload, the read scope to read the quarantine list
    /// [env: FLAKEGUARD_TOKEN].
    #[arg(long, value_name = "TOKEN")]
    pub(crate) token: Option<Secret>,
    /// The repository, as owner/name [env: GITHUB_REPOSITORY].
    #[arg(long, value_name = "OWNER/NAME")]
    pub(crate) repo: Option<String>,
    /// How many times to retry after a failed attempt (5xx, 429, no connection, timeout).
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub(crate) retries: u32,
    /// Give up on an attempt after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) timeout: u64,
    /// The first retry's delay in milliseconds; each later one doubles it (tests shorten it).
    #[arg(long, value_name = "MS", default_value_t = 500, hide = true)]
    pub(crate) backoff_ms: u64,
}

/// The server, and which CI run the reports are from: `upload`'s options, also taken by `run`.
#[derive(Debug, Args)]
pub(crate) struct UploadOptions {
    #[command(flatten)]
    pub(crate) server: ServerArgs,
    /// The commit the tests ran on [env: GITHUB_SHA].
    #[arg(long, value_name = "SHA")]
    pub(crate) commit: Option<String>,
    /// The branch [env: GITHUB_HEAD_REF, else GITHUB_REF_NAME].
    #[arg(long, value_name = "NAME")]
    pub(crate) branch: Option<String>,
    /// The CI run's id; re-runs of one run share it [env: GITHUB_RUN_ID].
    #[arg(long, value_name = "ID")]
    pub(crate) run_id: Option<String>,
    /// Which attempt of the run this is, from 1 [env: GITHUB_RUN_ATTEMPT].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) attempt: Option<u32>,
    /// The CI job's name [env: GITHUB_JOB].
    #[arg(long, value_name = "NAME")]
    pub(crate) job: Option<String>,
    /// The pull request's number [env: GITHUB_REF when it is refs/pull/N/merge].
    #[arg(long, value_name = "N")]
    pub(crate) pr: Option<u64>,
}

#[derive(Debug, Args)]
pub(crate) struct UploadArgs {
    #[command(flatten)]
    pub(crate) options: UploadOptions,
    /// Output format: a readable summary, or the server's JSON answer.
    #[arg(long, value_enum, default_value_t = UploadFormat::Text)]
    pub(crate) format: UploadFormat,
    /// Report files, directories searched recursively for `*.xml`, or glob patterns.
    #[arg(required = true, value_name = "PATH")]
    pub(crate) paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) upload: UploadOptions,
    /// Where the command writes its JUnit reports: a glob pattern (quoted), a file or a
    /// directory; repeatable. Default: `**/*junit*.xml` and `**/TEST-*.xml`.
    #[arg(long = "junit", value_name = "GLOB")]
    pub(crate) junit: Vec<String>,
    /// Decide offline from a saved quarantine list (the JSON of GET …/quarantine, or of
    /// `flakeguard quarantine export --format json`): no server is contacted, nothing is
    /// uploaded.
    #[arg(long, value_name = "FILE")]
    pub(crate) quarantine_file: Option<PathBuf>,
    /// When the server cannot be reached (upload or quarantine list), exit non-zero even if
    /// the tests passed or every failure is quarantined.
    #[arg(long)]
    pub(crate) fail_closed: bool,
    /// The test command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub(crate) command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Check a `.flakeguard.yml`: list every problem with its line and column, or summarize
    /// the settings it gives.
    Check {
        /// The policy file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum QuarantineCommand {
    /// Print skip or deselect expressions for a test runner, from the server's quarantine
    /// list or a saved one.
    Export(ExportArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ExportFormat {
    /// `--deselect=<node id>` lines, for `pytest @FILE`.
    Pytest,
    /// A `--testNamePattern` regular expression that matches every other test.
    Jest,
    /// A `cargo nextest run -E` filterset excluding the tests.
    Nextest,
    /// A `go test -skip` regular expression.
    Go,
    /// Maven Surefire/Failsafe `-Dtest` exclusions (`!Class#method`), for JUnit 5 (and 4).
    Junit5,
    /// The list itself, as the API answers it: save it for `--quarantine-file`.
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    pub(crate) server: ServerArgs,
    /// Read a saved quarantine list instead of asking the server.
    #[arg(long, value_name = "FILE")]
    pub(crate) quarantine_file: Option<PathBuf>,
    /// Which runner's syntax to print.
    #[arg(long, value_enum)]
    pub(crate) format: ExportFormat,
}

/// A secret from the command line or the environment: usable, never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn new(secret: String) -> Self {
        Secret(secret)
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(secret: String) -> Self {
        Secret(secret)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Role {
    /// API, worker and web in one process.
    All,
    Api,
    Worker,
    Web,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Which role(s) this process runs.
    #[arg(long, value_enum, default_value_t = Role::All)]
    pub(crate) role: Role,
    #[command(flatten)]
    pub(crate) migrations: MigrateFlags,
}

#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct MigrateFlags {
    /// Apply pending migrations at start-up. The default: yes on SQLite (nothing to forget on
    /// a laptop), no on PostgreSQL (the runbook runs `flakeguard migrate deploy` first).
    #[arg(long, overrides_with = "no_migrate")]
    pub(crate) migrate: bool,
    /// Never apply migrations at start-up; refuse to start when any is pending.
    #[arg(long)]
    pub(crate) no_migrate: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum JobStateArg {
    Pending,
    Running,
    Retrying,
    Dead,
    All,
}

#[derive(Debug, Subcommand)]
pub(crate) enum JobsCommand {
    /// Counts per queue, then the jobs in the chosen state.
    List {
        /// Only this queue.
        #[arg(long, value_name = "QUEUE")]
        queue: Option<String>,
        /// Which jobs to list.
        #[arg(long, value_enum, default_value_t = JobStateArg::Dead)]
        state: JobStateArg,
        /// At most this many jobs per queue and state.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Output format.
        #[arg(long, value_enum, default_value_t = UploadFormat::Text)]
        format: UploadFormat,
    },
    /// Put dead jobs back in their queue with their attempts reset.
    Retry {
        /// The queue of the jobs named (by default read from each id's prefix, e.g.
        /// `score_tests:run:42`; with --all, the default is every queue).
        #[arg(long, value_name = "QUEUE")]
        queue: Option<String>,
        /// Every dead job (of --queue, or of every queue).
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        /// Job ids as `jobs list` shows them.
        #[arg(value_name = "ID", required_unless_present = "all")]
        ids: Vec<String>,
    },
    /// Forget dead jobs.
    PurgeDead {
        /// Only this queue (default: every queue).
        #[arg(long, value_name = "QUEUE")]
        queue: Option<String>,
        /// Only this job (needs --queue).
        #[arg(long, value_name = "ID", requires = "queue")]
        id: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Issue a token; its secret is printed once.
    Create {
        /// The organization's slug.
        #[arg(long)]
        org: String,
        /// A name to recognise the token by.
        #[arg(long)]
        name: String,
        /// What it may do: ingest, read, admin (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "ingest,read")]
        scopes: Vec<String>,
        /// Limit the token to one repository of the organization.
        #[arg(long, value_name = "OWNER/NAME")]
        repo: Option<String>,
    },
    /// List the organization's tokens (never their secrets).
    List {
        #[arg(long)]
        org: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// Revoke a token by id; it stops working at once.
    Revoke {
        #[arg(long)]
        org: String,
        /// The token's id, as `token list` shows it.
        id: i64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct RescoreArgs {
    /// The repository, as owner/name.
    #[arg(long, value_name = "OWNER/NAME")]
    pub(crate) repo: String,
    /// A policy file (`.flakeguard.yml`; its scoring keys judge the tests).
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
    /// Let uploads create repositories of the organization on first use (tokens with the
    /// ingest scope and no single-repository limit).
    #[arg(long)]
    pub(crate) create_repos_on_upload: bool,
    /// Also load a demo history: three repositories of the organization `demo` with 90 days
    /// of runs ending now, flaky, broken and quarantined tests; prints a token that reads it.
    #[arg(long)]
    pub(crate) demo: bool,
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
    /// A policy file (`.flakeguard.yml`; its scoring keys judge the tests: flaky_threshold,
    /// warn_threshold, min_occurrences, …).
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
