//! Recording a locally read history into a store (`flakeguard analyze --history FILE`): one
//! stored run per run directory, idempotent on the reports' digest, so analysing the same
//! folders again adds nothing.

use std::collections::HashMap;

use anyhow::{Context, Result};
use flakeguard_store::{NewExecution, NewRun, NewTestCase, RepoId, Source, Store};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::history::History;

/// How many runs were new and how many were already stored.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recorded {
    pub(crate) created: usize,
    pub(crate) existing: usize,
}

/// One run's tests and executions, as the store takes them.
#[derive(Debug, Default)]
struct RunRows {
    tests: Vec<NewTestCase>,
    executions: Vec<NewExecution>,
    /// Test index in the history → position in `tests`.
    positions: HashMap<usize, usize>,
}

pub(crate) async fn record(store: &dyn Store, repo: RepoId, history: &History) -> Result<Recorded> {
    let mut per_run: Vec<RunRows> = history.runs.iter().map(|_| RunRows::default()).collect();
    for (test_index, test) in history.tests.iter().enumerate() {
        for execution in &test.executions {
            let rows = &mut per_run[execution.run as usize];
            let tests = &mut rows.tests;
            let position = *rows.positions.entry(test_index).or_insert_with(|| {
                tests.push(NewTestCase {
                    key: test.key.clone(),
                    file: test.file.clone(),
                });
                tests.len() - 1
            });
            rows.executions.push(NewExecution {
                test: position,
                attempt: execution.attempt,
                outcome: execution.outcome,
                duration_ms: execution.duration_ms,
                signature: execution.signature,
                message: None,
            });
        }
    }
    let mut recorded = Recorded::default();
    for (index, (run, rows)) in history.runs.iter().zip(per_run).enumerate() {
        let digest = digest(&history.run_files[index])?;
        let new_run = NewRun {
            commit: run.commit.clone(),
            branch: run.branch.clone(),
            pr_number: None,
            run_id: run.run_id.clone(),
            attempt: run.attempt,
            job: run.job.clone().unwrap_or_default(),
            source: Source::Cli,
            started_at: run.started_at,
            received_at: OffsetDateTime::now_utc(),
            report_digest: digest,
        };
        let ingested = store
            .ingest(repo, &new_run, &rows.tests, &rows.executions)
            .await
            .with_context(|| format!("cannot record run {}", run.run_id))?;
        if ingested.created {
            recorded.created += 1;
        } else {
            recorded.existing += 1;
        }
    }
    Ok(recorded)
}

/// SHA-256 over the run's report files, in order: the same reports give the same digest.
fn digest(files: &[std::path::PathBuf]) -> Result<String> {
    let mut hasher = Sha256::new();
    for file in files {
        let bytes =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}
