//! Ingesting uploaded reports: parse every file, record them as one run (idempotent on the
//! run's identity and the reports' digest) and say what each failure means — new, known flaky,
//! or quarantined — so a CI step can decide. Scoring happens afterwards, in the worker: the
//! stored run is its own outbox entry (`scored_at` is unset until the `score_tests` job ends).

use std::collections::HashMap;

use flakeguard_core::signature::signature;
use flakeguard_core::{Outcome, TestKey};
use flakeguard_junit::{JunitReader, Limits, ParseError};
use flakeguard_store::{
    NewExecution, NewRun, NewTestCase, RepoSlug, Repository, Source, Store, StoreError,
    StoredRunId, TestCaseId,
};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// Failure messages are stored up to this many bytes (the signature is computed first, from
/// the whole message).
pub const MESSAGE_CAP: usize = 4096;

/// At most this many failures are listed in an answer (the counts are always complete).
pub const FAILURES_LISTED: usize = 1000;

/// One uploaded report.
#[derive(Debug, Clone)]
pub struct ReportFile {
    /// The file name the client gave, for error messages.
    pub name: String,
    pub bytes: Vec<u8>,
}

/// What the client says about the run (query parameters of the upload).
#[derive(Debug, Clone)]
pub struct RunMeta {
    pub repo: RepoSlug,
    pub commit: Option<String>,
    pub branch: Option<String>,
    /// The CI's run id; `None` → derived from the reports' digest.
    pub run_id: Option<String>,
    pub attempt: u32,
    pub job: String,
    pub pr: Option<i64>,
    pub started_at: Option<OffsetDateTime>,
    pub source: Source,
}

/// What a failure in this run means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureStatus {
    /// Not known to be flaky and not quarantined: a real failure until shown otherwise.
    New,
    /// The test was already judged flaky before this run.
    KnownFlaky,
    /// The test has a live quarantine: its failure should not block anyone.
    Quarantined,
}

impl FailureStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureStatus::New => "new",
            FailureStatus::KnownFlaky => "known_flaky",
            FailureStatus::Quarantined => "quarantined",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureVerdict {
    pub test: TestCaseId,
    pub key: String,
    pub status: FailureStatus,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestResult {
    pub run: StoredRunId,
    /// False when this exact report of this run was already stored.
    pub created: bool,
    /// Distinct tests in the reports.
    pub testcases: u64,
    /// Tests whose final attempt failed or errored.
    pub failed: u64,
    /// The failures with their meaning, at most [`FAILURES_LISTED`].
    pub failures: Vec<FailureVerdict>,
    pub failures_truncated: bool,
    /// Where the time went (for the request log).
    pub timings: Timings,
}

/// How long each stage of an ingest took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    pub parse: std::time::Duration,
    pub store: std::time::Duration,
    pub classify: std::time::Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("no report in the request")]
    NoReports,
    /// A report could not be read: nothing of the upload is stored.
    #[error("{file}: {error}")]
    Report { file: String, error: ParseError },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The rows of one run, read from its reports.
#[derive(Debug, Default)]
struct Rows {
    tests: Vec<NewTestCase>,
    executions: Vec<NewExecution>,
    /// Per test: did its final attempt fail?
    final_failed: Vec<bool>,
}

/// Parses, records and classifies (against the tests' state before this run).
pub async fn ingest_reports(
    store: &dyn Store,
    repo: &Repository,
    meta: &RunMeta,
    files: &[ReportFile],
    now: OffsetDateTime,
) -> Result<IngestResult, IngestError> {
    if files.is_empty() {
        return Err(IngestError::NoReports);
    }
    let mut timings = Timings::default();
    let clock = std::time::Instant::now();
    let rows = read_rows(files)?;
    let digest = digest(files);
    timings.parse = clock.elapsed();
    let run = NewRun {
        commit: meta.commit.clone(),
        branch: meta.branch.clone(),
        pr_number: meta.pr,
        run_id: meta
            .run_id
            .clone()
            .unwrap_or_else(|| format!("upload-{}", &digest[..12])),
        attempt: meta.attempt,
        job: meta.job.clone(),
        source: meta.source,
        started_at: meta.started_at.unwrap_or(now),
        received_at: now,
        report_digest: digest,
    };
    let clock = std::time::Instant::now();
    let ingested = store
        .ingest(repo.id, &run, &rows.tests, &rows.executions)
        .await?;
    timings.store = clock.elapsed();
    let clock = std::time::Instant::now();

    // Failed tests' ids: from the ingest when new, from the stored run when a repeat.
    let failing: Vec<&TestKey> = rows
        .tests
        .iter()
        .zip(&rows.final_failed)
        .filter(|(_, failed)| **failed)
        .map(|(t, _)| &t.key)
        .collect();
    let ids: HashMap<&TestKey, TestCaseId> = if ingested.created {
        rows.tests
            .iter()
            .zip(&ingested.test_ids)
            .map(|(t, id)| (&t.key, *id))
            .collect()
    } else {
        let stored = store.run_failures(repo.id, ingested.run).await?;
        let by_key: HashMap<TestKey, TestCaseId> =
            stored.into_iter().map(|f| (f.key, f.test)).collect();
        failing
            .iter()
            .filter_map(|k| by_key.get(*k).map(|id| (*k, *id)))
            .collect()
    };
    let failing_ids: Vec<TestCaseId> = failing.iter().filter_map(|k| ids.get(k).copied()).collect();
    // The tests' state as it was before this run is scored.
    let known: HashMap<TestCaseId, (bool, bool)> = store
        .find_tests(repo.id, &failing_ids)
        .await?
        .into_iter()
        .map(|t| (t.id, (t.quarantined, t.status == "flaky")))
        .collect();
    let mut failures: Vec<FailureVerdict> = failing
        .iter()
        .filter_map(|key| {
            let id = *ids.get(key)?;
            let status = match known.get(&id) {
                Some((true, _)) => FailureStatus::Quarantined,
                Some((false, true)) => FailureStatus::KnownFlaky,
                _ => FailureStatus::New,
            };
            Some(FailureVerdict {
                test: id,
                key: key.to_string(),
                status,
            })
        })
        .collect();
    // New failures first: they are the ones that need a person.
    failures.sort_by_key(|f| (f.status != FailureStatus::New, f.key.clone()));
    let failures_truncated = failures.len() > FAILURES_LISTED;
    failures.truncate(FAILURES_LISTED);

    timings.classify = clock.elapsed();
    Ok(IngestResult {
        run: ingested.run,
        created: ingested.created,
        testcases: rows.tests.len() as u64,
        failed: failing.len() as u64,
        failures,
        failures_truncated,
        timings,
    })
}

/// What a set of reports says, judged exactly as [`ingest_reports`] judges an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportVerdict {
    /// Distinct tests in the reports.
    pub testcases: u64,
    /// Tests whose final attempt failed or errored (a test that passed on retry did not
    /// fail), with the file the report names for them, in report order.
    pub failing: Vec<(TestKey, Option<String>)>,
}

/// Which tests of these reports failed, by the same identity and the same "last attempt
/// decides" rule ingestion uses: what `flakeguard run` compares with the quarantine list.
pub fn report_verdict(files: &[ReportFile]) -> Result<ReportVerdict, IngestError> {
    if files.is_empty() {
        return Err(IngestError::NoReports);
    }
    let rows = read_rows(files)?;
    let testcases = rows.tests.len() as u64;
    let failing = rows
        .tests
        .into_iter()
        .zip(rows.final_failed)
        .filter(|(_, failed)| *failed)
        .map(|(t, _)| (t.key, t.file))
        .collect();
    Ok(ReportVerdict { testcases, failing })
}

/// Reads every report before anything is stored: one unreadable file refuses the upload.
fn read_rows(files: &[ReportFile]) -> Result<Rows, IngestError> {
    let mut rows = Rows::default();
    let mut index: HashMap<TestKey, usize> = HashMap::new();
    let mut attempts: Vec<u32> = Vec::new();
    for file in files {
        let report_error = |error| IngestError::Report {
            file: file.name.clone(),
            error,
        };
        let mut reader =
            JunitReader::new(&file.bytes[..], Limits::default()).map_err(report_error)?;
        while let Some(case) = reader.next_case().map_err(report_error)? {
            let test = *index.entry(case.key.clone()).or_insert_with(|| {
                rows.tests.push(NewTestCase {
                    key: case.key.clone(),
                    file: case.file.clone(),
                });
                rows.final_failed.push(false);
                attempts.push(0);
                rows.tests.len() - 1
            });
            let mut last = None;
            for attempt in case.attempts() {
                attempts[test] += 1;
                last = Some(attempt.outcome);
                let (signature, message) = match attempt.failure {
                    Some(f) => (
                        Some(signature(&f.signature_text())),
                        Some(cap(f.summary(), MESSAGE_CAP)),
                    ),
                    None => (None, None),
                };
                rows.executions.push(NewExecution {
                    test,
                    attempt: attempts[test],
                    outcome: attempt.outcome,
                    duration_ms: attempt
                        .time
                        .filter(|t| t.is_finite() && *t >= 0.0)
                        .map(|t| (t * 1000.0).round() as u64),
                    signature,
                    message,
                });
            }
            // A test repeated in several elements or files: its last element decides.
            if let Some(outcome) = last {
                rows.final_failed[test] = matches!(outcome, Outcome::Failed | Outcome::Error);
            }
        }
    }
    Ok(rows)
}

/// SHA-256 (hex) over the reports in order, each prefixed by its length.
pub fn digest(files: &[ReportFile]) -> String {
    let mut hasher = Sha256::new();
    for file in files {
        hasher.update((file.bytes.len() as u64).to_le_bytes());
        hasher.update(&file.bytes);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `text` cut to at most `max` bytes on a character boundary.
fn cap(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, xml: &str) -> ReportFile {
        ReportFile {
            name: name.to_owned(),
            bytes: xml.as_bytes().to_vec(),
        }
    }

    #[test]
    fn retries_are_attempts_and_the_last_one_decides() {
        let rows = read_rows(&[file(
            "a.xml",
            r#"<testsuite name="s"><testcase classname="c" name="flaky"><flakyFailure message="timeout"/></testcase>
               <testcase classname="c" name="broken"><failure message="boom"/></testcase>
               <testcase classname="c" name="ok"/></testsuite>"#,
        )])
        .unwrap();
        assert_eq!(rows.tests.len(), 3);
        assert_eq!(rows.final_failed, vec![false, true, false]);
        let flaky: Vec<_> = rows.executions.iter().filter(|e| e.test == 0).collect();
        assert_eq!(flaky.len(), 2);
        assert_eq!((flaky[0].attempt, flaky[0].outcome), (1, Outcome::Failed));
        assert_eq!(flaky[0].message.as_deref(), Some("timeout"));
        assert_eq!((flaky[1].attempt, flaky[1].outcome), (2, Outcome::Passed));
    }

    #[test]
    fn a_test_in_two_files_continues_its_attempts() {
        let xml = r#"<testsuite name="s"><testcase classname="c" name="t"><failure message="x"/></testcase></testsuite>"#;
        let pass = r#"<testsuite name="s"><testcase classname="c" name="t"/></testsuite>"#;
        let rows = read_rows(&[file("1.xml", xml), file("2.xml", pass)]).unwrap();
        assert_eq!(rows.tests.len(), 1);
        assert_eq!(
            rows.executions
                .iter()
                .map(|e| e.attempt)
                .collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(rows.final_failed, vec![false]);
    }

    #[test]
    fn the_verdict_lists_final_failures_with_their_files() {
        let xml = r#"<testsuite name="s"><testcase classname="c" name="flaky"><flakyFailure message="x"/></testcase>
               <testcase classname="c" name="broken" file="./tests/b.py"><failure message="boom"/></testcase>
               <testcase classname="c" name="gone"><error message="crash"/></testcase>
               <testcase classname="c" name="ok"/></testsuite>"#;
        let verdict = report_verdict(&[file("a.xml", xml)]).unwrap();
        assert_eq!(verdict.testcases, 4);
        let failing: Vec<(&str, Option<&str>)> = verdict
            .failing
            .iter()
            .map(|(k, f)| (k.name.as_str(), f.as_deref()))
            .collect();
        assert_eq!(
            failing,
            vec![("broken", Some("./tests/b.py")), ("gone", None)]
        );
        assert_eq!(
            verdict.failing[0].0,
            TestKey::from_parts(Some("tests/b.py"), "s", Some("c"), "broken"),
            "the same identity ingestion stores"
        );
        assert!(matches!(report_verdict(&[]), Err(IngestError::NoReports)));
    }

    #[test]
    fn a_broken_file_names_itself_and_where() {
        let err = read_rows(&[
            file("good.xml", "<testsuite name=\"s\"/>"),
            file("bad.xml", "<testsuite name=\"s\"><testcase name=\"x\">"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("bad.xml: "), "{err}");
        assert!(err.contains("byte"), "{err}");
    }

    #[test]
    fn messages_are_capped_on_a_character_boundary() {
        let long = "é".repeat(3000);
        let capped = cap(&long, MESSAGE_CAP);
        assert!(capped.len() <= MESSAGE_CAP && capped.len() >= MESSAGE_CAP - 1);
        assert!(long.starts_with(&capped));
    }

    #[test]
    fn digest_depends_on_content_and_boundaries() {
        let a = digest(&[file("a", "ab"), file("b", "c")]);
        let b = digest(&[file("a", "a"), file("b", "bc")]);
        assert_ne!(a, b);
        assert_eq!(a, digest(&[file("x", "ab"), file("y", "c")]));
        assert_eq!(a.len(), 64);
    }
}
