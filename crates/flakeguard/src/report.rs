//! Rendering an analysis: JSON for machines, a table for terminals, markdown for PR comments
//! and `$GITHUB_STEP_SUMMARY`.

use std::io::{self, Write};

use flakeguard_core::scoring::{Recommendation, Status, TestScore};
use flakeguard_core::signature::signature_hex;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::history::History;

/// One test's verdict, in the shape of `analyze --format json`.
#[derive(Debug, Serialize)]
pub(crate) struct TestReport {
    key: String,
    suite: String,
    classname: String,
    name: String,
    file: Option<String>,
    executions: usize,
    failures: usize,
    status: &'static str,
    probability: f64,
    confidence: f64,
    legacy_score: f64,
    recommendation: &'static str,
    priority: Option<&'static str>,
    signatures: Vec<String>,
    evidence: Vec<EvidenceReport>,
    #[serde(skip)]
    reason: String,
}

#[derive(Debug, Serialize)]
struct EvidenceReport {
    kind: &'static str,
    runs: Vec<String>,
}

/// The whole analysis, sorted by probability (highest first, then by key).
#[derive(Debug, Serialize)]
pub(crate) struct Analysis {
    generated_at: String,
    runs: usize,
    tests: Vec<TestReport>,
}

fn round4(x: f64) -> f64 {
    if x.is_finite() {
        (x * 10_000.0).round() / 10_000.0
    } else {
        0.0
    }
}

impl Analysis {
    pub(crate) fn new(history: &History, scores: &[TestScore], now: OffsetDateTime) -> Self {
        let mut tests: Vec<TestReport> = history
            .tests
            .iter()
            .zip(&history.info)
            .zip(scores)
            .map(|((test, info), score)| TestReport {
                key: test.key.to_string(),
                suite: info.suite.clone(),
                classname: info.classname.clone().unwrap_or_default(),
                name: info.name.clone(),
                file: test.file.clone(),
                executions: score.executions,
                failures: score.failures,
                status: score.status.as_str(),
                probability: round4(score.probability),
                confidence: round4(score.confidence),
                legacy_score: round4(score.legacy_score),
                recommendation: score.recommendation.as_str(),
                priority: score.priority.map(|p| p.as_str()),
                signatures: score.signatures.iter().map(|s| signature_hex(*s)).collect(),
                evidence: score
                    .evidence
                    .iter()
                    .map(|e| EvidenceReport {
                        kind: e.kind.as_str(),
                        runs: e.runs.iter().map(|r| history.run_label(*r)).collect(),
                    })
                    .collect(),
                reason: score.reason.clone(),
            })
            .collect();
        tests.sort_by(|a, b| {
            b.probability
                .total_cmp(&a.probability)
                .then_with(|| a.key.cmp(&b.key))
        });
        Analysis {
            generated_at: now.format(&Rfc3339).unwrap_or_default(),
            runs: history.runs.len(),
            tests,
        }
    }

    fn count(&self, status: Status) -> usize {
        self.tests
            .iter()
            .filter(|t| t.status == status.as_str())
            .count()
    }

    fn headline(&self) -> String {
        format!(
            "{} tests in {} runs: {} flaky, {} broken, {} stable, {} with too little data",
            self.tests.len(),
            self.runs,
            self.count(Status::Flaky),
            self.count(Status::Broken),
            self.count(Status::Stable),
            self.count(Status::InsufficientData),
        )
    }

    /// Tests worth a line in a human report: anything not plainly stable and passing.
    fn notable(&self) -> impl Iterator<Item = &TestReport> {
        self.tests.iter().filter(|t| {
            t.status != Status::Stable.as_str()
                || t.failures > 0
                || t.recommendation != Recommendation::None.as_str()
        })
    }
}

pub(crate) fn json(out: &mut impl Write, analysis: &Analysis) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, analysis)?;
    out.write_all(b"\n")
}

pub(crate) fn table(out: &mut impl Write, analysis: &Analysis, color: bool) -> io::Result<()> {
    let paint = |status: &str| -> (&'static str, &'static str) {
        if !color {
            return ("", "");
        }
        match status {
            "flaky" => ("\x1b[33;1m", "\x1b[0m"),
            "broken" => ("\x1b[31;1m", "\x1b[0m"),
            "stable" => ("\x1b[32m", "\x1b[0m"),
            _ => ("\x1b[2m", "\x1b[0m"),
        }
    };
    writeln!(
        out,
        "{:<18} {:>7} {:>5} {:>9} {:<18} TEST",
        "STATUS", "P(FLAKY)", "CONF", "FAIL/RUN", "RECOMMENDATION"
    )?;
    let mut shown = 0;
    for t in analysis.notable() {
        shown += 1;
        let (on, off) = paint(t.status);
        let recommendation = match t.priority {
            Some(p) => format!("{} ({p})", t.recommendation),
            None => t.recommendation.to_owned(),
        };
        writeln!(
            out,
            "{on}{:<18}{off} {:>7.2} {:>5.2} {:>9} {:<18} {}",
            t.status,
            t.probability,
            t.confidence,
            format!("{}/{}", t.failures, t.executions),
            recommendation,
            t.key,
        )?;
        if !t.reason.is_empty() {
            writeln!(out, "{:<18} {}", "", t.reason)?;
        }
    }
    if shown == 0 {
        writeln!(out, "(no failures in any run)")?;
    }
    let hidden = analysis.tests.len() - shown;
    writeln!(out)?;
    writeln!(out, "{}", analysis.headline())?;
    if hidden > 0 {
        writeln!(
            out,
            "{hidden} stable tests that never failed are not listed (use --format json for all)"
        )?;
    }
    Ok(())
}

pub(crate) fn markdown(out: &mut impl Write, analysis: &Analysis) -> io::Result<()> {
    writeln!(out, "## FlakeGuard flakiness report")?;
    writeln!(out)?;
    writeln!(out, "{}.", analysis.headline())?;
    writeln!(out)?;
    let notable: Vec<&TestReport> = analysis.notable().collect();
    if notable.is_empty() {
        writeln!(out, "No test failed in any run. :white_check_mark:")?;
        return Ok(());
    }
    writeln!(
        out,
        "| Status | Test | P(flaky) | Failures | Recommendation | Evidence |"
    )?;
    writeln!(out, "|---|---|---:|---:|---|---|")?;
    for t in &notable {
        let icon = match t.status {
            "flaky" => ":warning: flaky",
            "broken" => ":x: broken",
            "stable" => ":white_check_mark: stable",
            _ => ":grey_question: too little data",
        };
        let recommendation = match t.priority {
            Some(p) => format!("{} ({p})", t.recommendation),
            None => t.recommendation.to_owned(),
        };
        let evidence = t
            .evidence
            .iter()
            .map(|e| format!("{} in {}", e.kind, abbreviate(&e.runs, 3)))
            .collect::<Vec<_>>()
            .join("; ");
        writeln!(
            out,
            "| {icon} | `{}` | {:.2} | {}/{} | {recommendation} | {} |",
            escape_md(&t.key),
            t.probability,
            t.failures,
            t.executions,
            escape_md(&evidence),
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "<sub>Generated by FlakeGuard at {}. P(flaky) is the posterior probability that the test is flaky; see docs/scoring.md.</sub>",
        analysis.generated_at
    )?;
    Ok(())
}

fn abbreviate(runs: &[String], max: usize) -> String {
    if runs.len() <= max {
        runs.join(", ")
    } else {
        format!("{} and {} more", runs[..max].join(", "), runs.len() - max)
    }
}

/// Keeps a table cell a table cell: pipes and newlines would break the row.
fn escape_md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ").replace('`', "'")
}
