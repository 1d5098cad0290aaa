//! Counting what a report holds: the numbers `flakeguard validate` prints.

use std::collections::HashMap;
use std::io::BufRead;

use flakeguard_core::{Outcome, TestKey};

use crate::error::ParseError;
use crate::issues::IssueLog;
use crate::reader::JunitReader;

/// What one report holds, by element and by test identity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// `<testcase>` elements.
    pub testcases: u64,
    /// Distinct test identities.
    pub tests: u64,
    /// Testcase elements by final status.
    pub passed: u64,
    pub failed: u64,
    pub errors: u64,
    pub skipped: u64,
    /// Identities that failed and then passed within the report (flakyFailure/flakyError, or a
    /// failed `<testcase>` followed by a passing one with the same identity).
    pub flaky: u64,
    /// Failed attempts recorded as `flakyFailure`/`flakyError`/`rerunFailure`/`rerunError`.
    pub retry_elements: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    failed_before: bool,
    flaky: bool,
}

/// Accumulates a [`Summary`] one testcase at a time (memory: one small entry per identity).
#[derive(Debug, Default)]
pub struct SummaryBuilder {
    summary: Summary,
    seen: HashMap<TestKey, Seen>,
}

impl SummaryBuilder {
    pub fn add(&mut self, case: &crate::TestCase) {
        let s = &mut self.summary;
        s.testcases += 1;
        s.retry_elements += case.retries.len() as u64;
        match case.status {
            Outcome::Passed => s.passed += 1,
            Outcome::Failed => s.failed += 1,
            Outcome::Error => s.errors += 1,
            Outcome::Skipped => s.skipped += 1,
        }
        let entry = self.seen.entry(case.key.clone()).or_default();
        let mut failed_before = entry.failed_before;
        for attempt in case.attempts() {
            if attempt.outcome.is_failure() {
                failed_before = true;
            } else if attempt.outcome == Outcome::Passed && failed_before {
                entry.flaky = true;
            }
        }
        entry.failed_before = failed_before;
    }

    pub fn finish(mut self) -> Summary {
        self.summary.tests = self.seen.len() as u64;
        self.summary.flaky = self.seen.values().filter(|s| s.flaky).count() as u64;
        self.summary
    }
}

/// Reads a whole report and counts it.
pub fn summarize<R: BufRead>(
    mut reader: JunitReader<R>,
) -> Result<(Summary, IssueLog, &'static str), ParseError> {
    let mut builder = SummaryBuilder::default();
    while let Some(case) = reader.next_case()? {
        builder.add(&case);
    }
    Ok((builder.finish(), reader.issues().clone(), reader.dialect()))
}
