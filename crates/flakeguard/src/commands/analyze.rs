//! `flakeguard analyze`: judge flakiness offline from a folder of past runs.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use flakeguard_core::RepoConfig;
use flakeguard_core::policy::Policy;
use flakeguard_core::scoring::score_all;
use flakeguard_store::Store;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cli::{AnalyzeArgs, AnalyzeFormat};
use crate::history;
use crate::progress;
use crate::report::{self, Analysis};

pub(crate) fn run(args: &AnalyzeArgs) -> Result<ExitCode> {
    let policy = match &args.policy {
        Some(path) => match load_policy(path) {
            Ok(policy) => policy,
            Err(err) => {
                eprintln!("error: {err:#}");
                return Ok(ExitCode::from(2));
            }
        },
        None => Policy::default(),
    };
    let now = match &args.now {
        Some(raw) => match OffsetDateTime::parse(raw, &Rfc3339) {
            Ok(t) => t,
            Err(e) => {
                eprintln!(
                    "error: --now {raw:?} is not an RFC 3339 time ({e}); expected e.g. 2026-11-27T12:00:00Z"
                );
                return Ok(ExitCode::from(2));
            }
        },
        None => OffsetDateTime::now_utc(),
    };

    let mut bar = None;
    let history = history::load(&args.paths, &mut |file: &Path, total: usize| {
        let bar = bar.get_or_insert_with(|| progress::bar(total));
        bar.inc(1);
        bar.set_message(file.display().to_string());
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }

    for (path, reason) in &history.skipped {
        eprintln!("warning: skipped {}: {reason}", path.display());
    }
    if !history.skipped.is_empty() {
        eprintln!(
            "warning: skipped {} unreadable file(s); {} read",
            history.skipped.len(),
            history.files_read
        );
    }
    if history.runs.is_empty() {
        bail!("no readable reports in the given paths");
    }

    let history = match &args.history {
        Some(file) => record_and_reload(file, &args.repo, &history, policy.rolling_window_size)?,
        None => history,
    };
    let scores = score_all(&history.runs, &history.tests, &policy, now);
    let analysis = Analysis::new(&history, &scores, now);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.format {
        AnalyzeFormat::Json => report::json(&mut out, &analysis)?,
        AnalyzeFormat::Markdown => report::markdown(&mut out, &analysis)?,
        AnalyzeFormat::Table => {
            report::table(&mut out, &analysis, std::io::stdout().is_terminal())?
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Records the runs just read into the SQLite history file, then reads the whole stored
/// history back: analysis then covers every run ever recorded there, not only these paths.
fn record_and_reload(
    file: &Path,
    repo: &str,
    history: &history::History,
    window: u32,
) -> Result<history::History> {
    let slug =
        flakeguard_store::RepoSlug::parse(repo).map_err(|e| anyhow::anyhow!("--repo: {e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store = flakeguard_store_sqlite::SqliteStore::open(file)
            .await
            .with_context(|| format!("cannot open history file {}", file.display()))?;
        store
            .migrate()
            .await
            .with_context(|| format!("cannot migrate history file {}", file.display()))?;
        let (org, _) = store
            .ensure_organization(slug.owner(), slug.owner())
            .await?;
        let (repository, _) = store.ensure_repository(org.id, &slug).await?;
        let recorded = crate::record::record(&store, repository.id, history).await?;
        eprintln!(
            "recorded {} new run(s) in {} ({} already there)",
            recorded.created,
            file.display(),
            recorded.existing
        );
        let stored = store.load_history(repository.id, window).await?;
        store.close().await;
        Ok(history::History::from_stored(stored))
    })
}

/// Reads a policy file (a `.flakeguard.yml`: its scoring keys are what judges) and checks all
/// of it, naming every problem with its position.
pub(crate) fn load_policy(path: &Path) -> Result<Policy> {
    load_config(path).map(|config| config.policy)
}

/// Reads and checks a whole policy file (`.flakeguard.yml`), naming every problem with its
/// position.
pub(crate) fn load_config(path: &Path) -> Result<RepoConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read policy file {}", path.display()))?;
    match RepoConfig::parse(&text) {
        Ok(config) => Ok(config),
        Err(problems) => {
            let file = path.display().to_string();
            let lines: Vec<String> = problems
                .iter()
                .map(|p| super::policy::located(&file, p))
                .collect();
            bail!("invalid policy file {file}:\n{}", lines.join("\n"))
        }
    }
}
