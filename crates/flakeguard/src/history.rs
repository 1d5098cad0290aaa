//! Loading a local report history for `flakeguard analyze`: each path is one run (a directory
//! of report files with an optional `flakeguard-run.json`, or a single report file), turned
//! into the core model's runs and per-test executions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use flakeguard_core::signature::signature;
use flakeguard_core::{Execution, Run, RunId, TestHistory, TestKey};
use flakeguard_junit::{Limits, TestCase};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::files::report_files;

/// The optional `flakeguard-run.json` beside a run's reports.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunMetadata {
    commit: Option<String>,
    branch: Option<String>,
    run_id: Option<String>,
    attempt: Option<u32>,
    job: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    started_at: Option<OffsetDateTime>,
}

pub(crate) const RUN_METADATA_FILE: &str = "flakeguard-run.json";

/// Per-test facts the report shows besides the executions.
#[derive(Debug, Clone)]
pub(crate) struct TestInfo {
    pub(crate) suite: String,
    pub(crate) classname: Option<String>,
    pub(crate) name: String,
}

/// A loaded history, ready to score.
#[derive(Debug, Default)]
pub(crate) struct History {
    pub(crate) runs: Vec<Run>,
    pub(crate) tests: Vec<TestHistory>,
    pub(crate) info: Vec<TestInfo>,
    /// Files (or runs) that could not be read, with the reason.
    pub(crate) skipped: Vec<(PathBuf, String)>,
    pub(crate) files_read: usize,
    /// The report files read for each run (parallel to `runs`).
    pub(crate) run_files: Vec<Vec<PathBuf>>,
}

impl History {
    /// A history read back from a store: the report facts not stored (suite names as written)
    /// are rebuilt from the test keys.
    pub(crate) fn from_stored(stored: flakeguard_store::StoredHistory) -> Self {
        let info = stored
            .tests
            .iter()
            .map(|t| TestInfo {
                suite: t.key.scope.clone(),
                classname: (!t.key.classname.is_empty()).then(|| t.key.classname.clone()),
                name: match &t.key.variant {
                    Some(v) => format!("{}[{v}]", t.key.name),
                    None => t.key.name.clone(),
                },
            })
            .collect();
        History {
            runs: stored.runs,
            tests: stored.tests,
            info,
            ..History::default()
        }
    }

    /// How a run is named in evidence: its run id, plus the attempt for re-runs.
    pub(crate) fn run_label(&self, run: RunId) -> String {
        let run = &self.runs[run as usize];
        if run.attempt > 1 {
            format!("{}#{}", run.run_id, run.attempt)
        } else {
            run.run_id.clone()
        }
    }
}

/// One run's location and metadata, before its reports are read.
#[derive(Debug)]
struct RunSource {
    run: Run,
    files: Vec<PathBuf>,
}

/// Reads every run. Unreadable files are skipped (and listed); a bad `flakeguard-run.json`
/// or a path that does not exist is an error, because the user named it explicitly.
/// `on_file` is called before each file is read, with the total number of files.
pub(crate) fn load(paths: &[PathBuf], on_file: &mut dyn FnMut(&Path, usize)) -> Result<History> {
    let mut sources = Vec::with_capacity(paths.len());
    for path in paths {
        sources.push(run_source(path)?);
    }
    // Time order makes run indices chronological, which keeps output stable.
    sources.sort_by(|a, b| {
        (a.run.started_at, &a.run.run_id, a.run.attempt).cmp(&(
            b.run.started_at,
            &b.run.run_id,
            b.run.attempt,
        ))
    });

    let total_files = sources.iter().map(|s| s.files.len()).sum();
    let mut history = History::default();
    let mut index: HashMap<TestKey, usize> = HashMap::new();
    for source in sources {
        if source.files.is_empty() {
            history.skipped.push((
                PathBuf::from(&source.run.run_id),
                "no report files (*.xml) in this run".to_owned(),
            ));
            continue;
        }
        let run_id = history.runs.len() as RunId;
        let mut attempts: HashMap<usize, u32> = HashMap::new();
        let mut read_files = Vec::new();
        for file in &source.files {
            on_file(file, total_files);
            // Read the whole file before keeping anything, so a file that breaks halfway
            // contributes nothing rather than half its tests.
            let cases = match read_cases(file) {
                Ok(cases) => cases,
                Err(e) => {
                    history.skipped.push((file.clone(), e));
                    continue;
                }
            };
            history.files_read += 1;
            read_files.push(file.clone());
            for case in cases {
                let test = *index.entry(case.key.clone()).or_insert_with(|| {
                    history.tests.push(TestHistory {
                        key: case.key.clone(),
                        file: case.file.clone(),
                        executions: Vec::new(),
                    });
                    history.info.push(TestInfo {
                        suite: case.suite.name().to_owned(),
                        classname: case.classname.clone(),
                        name: case.name.clone(),
                    });
                    history.tests.len() - 1
                });
                let counter = attempts.entry(test).or_insert(0);
                for attempt in case.attempts() {
                    *counter += 1;
                    history.tests[test].executions.push(Execution {
                        run: run_id,
                        attempt: *counter,
                        outcome: attempt.outcome,
                        duration_ms: attempt
                            .time
                            .filter(|t| *t >= 0.0)
                            .map(|t| (t * 1000.0).round() as u64),
                        signature: attempt.failure.map(|f| signature(&f.signature_text())),
                    });
                }
            }
        }
        if !read_files.is_empty() {
            history.runs.push(source.run);
            history.run_files.push(read_files);
        }
    }
    Ok(history)
}

fn read_cases(file: &Path) -> std::result::Result<Vec<TestCase>, String> {
    let mut reader = flakeguard_junit::open(file, Limits::default()).map_err(|e| e.to_string())?;
    let mut cases = Vec::new();
    while let Some(case) = reader.next_case().map_err(|e| e.to_string())? {
        cases.push(case);
    }
    Ok(cases)
}

fn run_source(path: &Path) -> Result<RunSource> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    let name = path
        .file_stem()
        .or(path.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let (files, metadata) = if meta.is_dir() {
        let files =
            report_files(path).with_context(|| format!("cannot list {}", path.display()))?;
        let metadata_path = path.join(RUN_METADATA_FILE);
        let metadata = if metadata_path.exists() {
            let text = std::fs::read_to_string(&metadata_path)
                .with_context(|| format!("cannot read {}", metadata_path.display()))?;
            serde_json::from_str::<RunMetadata>(&text)
                .with_context(|| format!("{}: invalid run metadata", metadata_path.display()))?
        } else {
            RunMetadata::default()
        };
        (files, metadata)
    } else {
        (vec![path.to_path_buf()], RunMetadata::default())
    };
    if metadata.attempt == Some(0) {
        bail!(
            "{}: attempt must be 1 or more",
            path.join(RUN_METADATA_FILE).display()
        );
    }
    let started_at = match metadata.started_at {
        Some(t) => t,
        None => newest_mtime(&files).unwrap_or(OffsetDateTime::UNIX_EPOCH),
    };
    Ok(RunSource {
        run: Run {
            run_id: metadata.run_id.unwrap_or(name),
            attempt: metadata.attempt.unwrap_or(1),
            commit: metadata.commit.filter(|c| !c.trim().is_empty()),
            branch: metadata.branch.filter(|b| !b.trim().is_empty()),
            job: metadata.job,
            started_at,
        },
        files,
    })
}

fn newest_mtime(files: &[PathBuf]) -> Option<OffsetDateTime> {
    files
        .iter()
        .filter_map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
        .max()
        .map(|t: SystemTime| OffsetDateTime::from(t))
}
