//! What the reader hands out: one [`TestCase`] per `<testcase>` element, with the suite it
//! sits in, its final status, its failure details and every retry attempt it carries.

use std::sync::Arc;

use flakeguard_core::{Outcome, TestKey};

/// Final status of one `<testcase>` element.
pub type Status = Outcome;

/// A `<testsuite>` element as seen when its first testcase is read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Suite {
    /// Names of the enclosing suites, outermost first, this suite last
    /// (the `<testsuites>` root is not included).
    pub path: Vec<String>,
    pub hostname: Option<String>,
    pub timestamp: Option<String>,
    /// `file` attribute written on the suite (some producers put it there, not on cases).
    pub file: Option<String>,
    pub properties: Vec<(String, String)>,
}

impl Suite {
    /// The innermost suite name ("" when the producer wrote none).
    pub fn name(&self) -> &str {
        self.path.last().map(String::as_str).unwrap_or("")
    }
}

/// Text captured from the report, cut at a configured cap.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CappedText {
    pub text: String,
    /// True when the original was longer than the cap and was cut.
    pub truncated: bool,
}

/// Which element described a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    Failure,
    Error,
    FlakyFailure,
    FlakyError,
    RerunFailure,
    RerunError,
}

impl FailureKind {
    pub(crate) fn from_element(name: &str) -> Option<Self> {
        Some(match name {
            "failure" => FailureKind::Failure,
            "error" => FailureKind::Error,
            "flakyFailure" => FailureKind::FlakyFailure,
            "flakyError" => FailureKind::FlakyError,
            "rerunFailure" => FailureKind::RerunFailure,
            "rerunError" => FailureKind::RerunError,
            _ => return None,
        })
    }

    /// The outcome of the attempt this element describes.
    pub fn outcome(self) -> Outcome {
        match self {
            FailureKind::Failure | FailureKind::FlakyFailure | FailureKind::RerunFailure => {
                Outcome::Failed
            }
            FailureKind::Error | FailureKind::FlakyError | FailureKind::RerunError => {
                Outcome::Error
            }
        }
    }

    /// `flakyFailure`/`flakyError`: a failed attempt of a test that finally passed.
    pub fn is_flaky(self) -> bool {
        matches!(self, FailureKind::FlakyFailure | FailureKind::FlakyError)
    }

    /// `rerunFailure`/`rerunError`: a further failed attempt of a test that finally failed.
    pub fn is_rerun(self) -> bool {
        matches!(self, FailureKind::RerunFailure | FailureKind::RerunError)
    }
}

/// One `<failure>`, `<error>`, `<flakyFailure>` … element.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub kind: FailureKind,
    /// The `type` attribute (exception class, "AssertionError", …).
    pub r#type: Option<String>,
    /// The `message` attribute.
    pub message: Option<String>,
    /// The element's text (stack trace, assertion output), capped.
    pub text: CappedText,
    /// Duration of this attempt when the producer wrote one (nextest, surefire reruns).
    pub time: Option<f64>,
    pub system_out: Option<CappedText>,
    pub system_err: Option<CappedText>,
}

impl Failure {
    /// The most useful one-line description: the message, else the first line of the text.
    pub fn summary(&self) -> &str {
        match self
            .message
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
        {
            Some(m) => m,
            None => self.text.text.trim().lines().next().unwrap_or(""),
        }
    }
}

impl Failure {
    /// The text a failure signature is computed from: the type and the message (or the
    /// first three lines of the text when the producer wrote no message).
    pub fn signature_text(&self) -> String {
        let summary = match self
            .message
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
        {
            Some(message) => message.to_owned(),
            None => self
                .text
                .text
                .trim()
                .lines()
                .take(3)
                .collect::<Vec<_>>()
                .join("\n"),
        };
        match &self.r#type {
            Some(t) if !t.trim().is_empty() => format!("{}: {summary}", t.trim()),
            _ => summary,
        }
    }
}

/// One attempt of a test inside one report: retries are separate attempts.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt<'a> {
    pub outcome: Outcome,
    /// Seconds, when known.
    pub time: Option<f64>,
    /// The failure that made this attempt fail, if it failed.
    pub failure: Option<&'a Failure>,
}

/// One `<testcase>` element.
#[derive(Debug, Clone, PartialEq)]
pub struct TestCase {
    pub suite: Arc<Suite>,
    pub key: TestKey,
    pub classname: Option<String>,
    pub name: String,
    /// `file` of the testcase, or of its suite.
    pub file: Option<String>,
    pub line: Option<u32>,
    /// Seconds; `None` when missing or unreadable (an issue is noted).
    pub time: Option<f64>,
    /// Final status of this element.
    pub status: Status,
    /// `<failure>`/`<error>` elements describing the final result, in document order.
    pub failures: Vec<Failure>,
    /// `flakyFailure`, `flakyError`, `rerunFailure`, `rerunError`, in document order.
    pub retries: Vec<Failure>,
    /// Message of `<skipped>`, when skipped.
    pub skipped_message: Option<String>,
    pub system_out: Option<CappedText>,
    pub system_err: Option<CappedText>,
    pub properties: Vec<(String, String)>,
    /// 1-based position among all `<testcase>` elements of the document.
    pub index: u64,
    /// Byte offset of the `<testcase>` start tag.
    pub byte_offset: u64,
}

impl TestCase {
    /// The failure that decided the final status, if the test failed or errored.
    pub fn final_failure(&self) -> Option<&Failure> {
        match self.status {
            Outcome::Error => self
                .failures
                .iter()
                .find(|f| f.kind == FailureKind::Error)
                .or(self.failures.first()),
            Outcome::Failed => self.failures.first(),
            _ => None,
        }
    }

    /// Every attempt this element records, in order.
    ///
    /// - `flakyFailure`/`flakyError` are failed attempts before the final pass;
    /// - a `<failure>`/`<error>` followed by `rerunFailure`/`rerunError` is a first failed
    ///   attempt followed by failed re-runs;
    /// - otherwise one attempt with the final status.
    pub fn attempts(&self) -> Vec<Attempt<'_>> {
        let mut attempts = Vec::with_capacity(1 + self.retries.len());
        let flaky: Vec<&Failure> = self.retries.iter().filter(|r| r.kind.is_flaky()).collect();
        let reruns: Vec<&Failure> = self.retries.iter().filter(|r| r.kind.is_rerun()).collect();
        for f in &flaky {
            attempts.push(Attempt {
                outcome: f.kind.outcome(),
                time: f.time,
                failure: Some(f),
            });
        }
        let final_failure = self.final_failure();
        attempts.push(Attempt {
            outcome: self.status,
            time: self.time,
            failure: final_failure,
        });
        if final_failure.is_some() {
            for f in &reruns {
                attempts.push(Attempt {
                    outcome: f.kind.outcome(),
                    time: f.time,
                    failure: Some(f),
                });
            }
        }
        attempts
    }

    /// True when this element alone shows a failure followed by a pass (flakyFailure/flakyError).
    pub fn is_flaky_within(&self) -> bool {
        self.status == Outcome::Passed && self.retries.iter().any(|r| r.kind.is_flaky())
    }
}
