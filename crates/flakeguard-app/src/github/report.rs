//! What FlakeGuard writes on GitHub, as pure functions of the run(s) of one commit: the
//! "FlakeGuard" check run ([`check_run_report`]), the pull request comment
//! ([`pr_comment_body`]) and the issue opened for a flaky test ([`flaky_issue`]).
//!
//! GitHub refuses a check run summary, a text or a comment body over 65,535 characters, so
//! every list is written within a budget ([`BODY_LIMIT`] bytes, which bounds characters
//! too): rows that do not fit are replaced by "… and N more", never cut in half. Test names
//! come from test reports, so they are escaped (a `|` would split a table cell, `<` start
//! HTML, a backtick open code) and shortened.

use std::fmt::Write as _;

use flakeguard_core::TestKey;
use flakeguard_store::{RepoSlug, TestCaseId};
use time::OffsetDateTime;

/// The most any body FlakeGuard writes may hold, in bytes (GitHub's limit is 65,535
/// characters; a character is at least one byte).
pub const BODY_LIMIT: usize = 60_000;
/// The longest rendering of a test name or file in a list.
const CELL_CHARS: usize = 300;
/// The hidden first line that finds FlakeGuard's comment on a pull request again.
pub const PR_COMMENT_MARKER: &str = "<!-- flakeguard:pr-comment -->";
/// The label of issues opened for flaky tests.
pub const FLAKY_ISSUE_LABEL: &str = "flaky-test";
/// GitHub's limits on check run actions (the client checks every request against them).
pub use flakeguard_github::{
    MAX_ACTION_DESCRIPTION, MAX_ACTION_IDENTIFIER, MAX_ACTION_LABEL, MAX_ACTIONS,
};
/// The identifiers of FlakeGuard's actions (`check_run.requested_action.identifier`).
pub const ACTION_QUARANTINE: &str = "quarantine_flaky";
pub const ACTION_OPEN_ISSUES: &str = "open_issues";
pub const ACTION_RERUN_FAILED: &str = "rerun_failed";

/// The test counts of the commit's run(s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    pub tests: u64,
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
}

/// How a failure is judged.
#[derive(Debug, Clone, PartialEq)]
pub enum Classification {
    /// Not known flaky: it blocks.
    New,
    /// Known flaky on the default branch, with its flakiness probability (0..=1).
    KnownFlaky { probability: f64 },
    /// Quarantined: its failure does not block.
    Quarantined {
        until: Option<OffsetDateTime>,
        owner: Option<String>,
    },
}

/// A test that failed in the run(s).
#[derive(Debug, Clone, PartialEq)]
pub struct FailingTest {
    pub id: TestCaseId,
    pub key: TestKey,
    pub file: Option<String>,
    pub classification: Classification,
}

/// A test this run made newly flaky.
#[derive(Debug, Clone, PartialEq)]
pub struct NewlyFlaky {
    pub id: TestCaseId,
    pub key: TestKey,
    pub file: Option<String>,
    pub probability: f64,
    /// One sentence: "failed 3 of 20 runs on main, passed on retry 2 times".
    pub evidence: String,
}

/// Everything the check run and the PR comment say about one commit.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitReport {
    pub repo: RepoSlug,
    pub head_sha: String,
    pub default_branch: String,
    pub totals: Totals,
    /// Every failing test (the conclusion is drawn from this list).
    pub failures: Vec<FailingTest>,
    pub newly_flaky: Vec<NewlyFlaky>,
    /// The dashboard's base URL; tests are linked when it is set.
    pub dashboard_url: Option<String>,
    /// `ENABLE_QUARANTINE_ACTIONS`: offer the "Quarantine flaky" button.
    pub quarantine_actions_enabled: bool,
}

/// A check run button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRunAction {
    /// ≤ 20 characters.
    pub label: &'static str,
    /// ≤ 40 characters.
    pub description: &'static str,
    /// ≤ 20 characters; comes back as `requested_action.identifier`.
    pub identifier: &'static str,
}

/// The check run's `output`, conclusion and actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRunReport {
    pub title: String,
    pub summary: String,
    pub text: Option<String>,
    /// `success`, `failure` or `neutral`.
    pub conclusion: &'static str,
    pub actions: Vec<CheckRunAction>,
}

/// An issue to open for a flaky test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlakyIssueText {
    /// `Flaky test: <key>`: stable, so a search finds it again.
    pub title: String,
    pub body: String,
    pub labels: Vec<&'static str>,
}

impl CommitReport {
    fn count(&self, pick: fn(&Classification) -> bool) -> usize {
        self.failures
            .iter()
            .filter(|f| pick(&f.classification))
            .count()
    }

    fn new_failures(&self) -> usize {
        self.count(|c| matches!(c, Classification::New))
    }

    fn known_flaky(&self) -> usize {
        self.count(|c| matches!(c, Classification::KnownFlaky { .. }))
    }

    fn quarantined(&self) -> usize {
        self.count(|c| matches!(c, Classification::Quarantined { .. }))
    }

    /// The dashboard link of a test.
    fn link(&self, id: TestCaseId) -> Option<String> {
        let base = self.dashboard_url.as_deref()?.trim_end_matches('/');
        Some(format!(
            "{base}/repos/{}/{}/tests/{id}",
            self.repo.owner(),
            self.repo.name()
        ))
    }

    fn short_sha(&self) -> &str {
        self.head_sha
            .get(..7)
            .filter(|_| self.head_sha.is_ascii())
            .unwrap_or(&self.head_sha)
    }
}

/// `success` when every failure is quarantined or known flaky, `failure` when one is new,
/// `neutral` when no test was reported.
pub fn conclusion(report: &CommitReport) -> &'static str {
    if report.totals.tests == 0 && report.failures.is_empty() {
        "neutral"
    } else if report.new_failures() > 0 {
        "failure"
    } else {
        "success"
    }
}

/// The "FlakeGuard" check run for a commit.
pub fn check_run_report(report: &CommitReport) -> CheckRunReport {
    let conclusion = conclusion(report);
    let (new, flaky, quarantined) = (
        report.new_failures(),
        report.known_flaky(),
        report.quarantined(),
    );
    let title = if conclusion == "neutral" {
        "No test results".to_owned()
    } else if report.failures.is_empty() {
        format!("All {} tests passed", report.totals.tests)
    } else if new > 0 {
        format!(
            "{new} new {}, {flaky} known flaky, {quarantined} quarantined",
            plural(new, "failure", "failures")
        )
    } else {
        format!(
            "{} {}, all known flaky or quarantined",
            report.failures.len(),
            plural(report.failures.len(), "failure", "failures")
        )
    };

    let mut summary = String::new();
    summary.push_str(&counts_line(report));
    let sections = sections(report);
    write_sections(&mut summary, &sections, BODY_LIMIT);

    let text = (!report.failures.is_empty() || !report.newly_flaky.is_empty()).then(|| {
        let mut text = String::from("### Why this conclusion\n\n");
        text.push_str(match conclusion {
            "failure" => {
                "At least one failure is new: it is not known to be flaky on the default branch \
                 and is not quarantined, so it blocks.\n"
            }
            _ => {
                "Every failure is a test known to be flaky on the default branch or a \
                 quarantined test, so none of them blocks.\n"
            }
        });
        text.push_str(
            "\nMake **FlakeGuard** a required check instead of the raw test job to merge \
             past known flaky failures.\n",
        );
        text
    });

    CheckRunReport {
        title,
        summary,
        text,
        conclusion,
        actions: actions(report),
    }
}

/// The buttons offered, within GitHub's limits.
fn actions(report: &CommitReport) -> Vec<CheckRunAction> {
    let has_flaky = report.known_flaky() > 0 || !report.newly_flaky.is_empty();
    let mut actions = Vec::with_capacity(MAX_ACTIONS);
    if has_flaky && report.quarantine_actions_enabled {
        actions.push(CheckRunAction {
            label: "Quarantine flaky",
            description: "Quarantine the flaky tests listed",
            identifier: ACTION_QUARANTINE,
        });
    }
    if has_flaky {
        actions.push(CheckRunAction {
            label: "Open issues",
            description: "Open an issue for each flaky test",
            identifier: ACTION_OPEN_ISSUES,
        });
    }
    if !report.failures.is_empty() || report.totals.failed > 0 {
        actions.push(CheckRunAction {
            label: "Re-run failed",
            description: "Re-run the failed jobs",
            identifier: ACTION_RERUN_FAILED,
        });
    }
    actions
}

fn counts_line(report: &CommitReport) -> String {
    let t = report.totals;
    format!(
        "**{}** tests: **{}** passed, **{}** failed, **{}** skipped — {} new, {} known flaky, \
         {} quarantined, {} newly flaky.\n",
        t.tests,
        t.passed,
        t.failed,
        t.skipped,
        report.new_failures(),
        report.known_flaky(),
        report.quarantined(),
        report.newly_flaky.len()
    )
}

/// A titled table whose rows are written while they fit.
struct Section {
    title: String,
    header: &'static str,
    rows: Vec<String>,
}

fn sections(report: &CommitReport) -> Vec<Section> {
    let test_cell = |id: TestCaseId, key: &TestKey| -> String {
        let name = escape_cell(&key.to_string());
        match report.link(id) {
            Some(url) => format!("[{name}]({url})"),
            None => name,
        }
    };
    let file_cell = |file: &Option<String>| {
        file.as_deref()
            .map(escape_cell)
            .unwrap_or_else(|| "—".to_owned())
    };
    let mut new = Section {
        title: "New failures".to_owned(),
        header: "| Test | File |\n| --- | --- |\n",
        rows: Vec::new(),
    };
    let mut flaky = Section {
        title: format!("Known flaky on {}", code(&report.default_branch)),
        header: "| Test | File | Flakiness |\n| --- | --- | --- |\n",
        rows: Vec::new(),
    };
    let mut quarantined = Section {
        title: "Quarantined".to_owned(),
        header: "| Test | File | Owner | Until |\n| --- | --- | --- | --- |\n",
        rows: Vec::new(),
    };
    for f in &report.failures {
        let test = test_cell(f.id, &f.key);
        let file = file_cell(&f.file);
        match &f.classification {
            Classification::New => new.rows.push(format!("| {test} | {file} |\n")),
            Classification::KnownFlaky { probability } => flaky
                .rows
                .push(format!("| {test} | {file} | {} |\n", percent(*probability))),
            Classification::Quarantined { until, owner } => quarantined.rows.push(format!(
                "| {test} | {file} | {} | {} |\n",
                owner
                    .as_deref()
                    .map(escape_cell)
                    .unwrap_or_else(|| "—".to_owned()),
                until.map(date).unwrap_or_else(|| "no expiry".to_owned())
            )),
        }
    }
    let newly = Section {
        title: "Newly detected flaky".to_owned(),
        header: "| Test | Flakiness | Evidence |\n| --- | --- | --- |\n",
        rows: report
            .newly_flaky
            .iter()
            .map(|n| {
                format!(
                    "| {} | {} | {} |\n",
                    test_cell(n.id, &n.key),
                    percent(n.probability),
                    escape_cell(&n.evidence)
                )
            })
            .collect(),
    };
    vec![new, flaky, quarantined, newly]
}

/// Writes the non-empty sections, keeping `out` within `limit` bytes. Each section gets an
/// equal share of what is left (what one does not use passes to the next); rows past its
/// share become one "… and N more" line.
fn write_sections(out: &mut String, sections: &[Section], limit: usize) {
    let present: Vec<&Section> = sections.iter().filter(|s| !s.rows.is_empty()).collect();
    // Room for every section's heading, table header and "… and N more" line.
    let overhead = |s: &Section| s.title.len() + s.header.len() + 64;
    for (i, section) in present.iter().enumerate() {
        let reserved: usize = present[i + 1..].iter().map(|s| overhead(s)).sum();
        let left = limit.saturating_sub(out.len() + reserved + overhead(section));
        let share = left / (present.len() - i);
        let _ = write!(out, "\n### {} ({})\n\n", section.title, section.rows.len());
        out.push_str(section.header);
        let mut used = 0;
        let mut written = 0;
        for row in &section.rows {
            if used + row.len() > share {
                break;
            }
            out.push_str(row);
            used += row.len();
            written += 1;
        }
        let more = section.rows.len() - written;
        if more > 0 {
            let _ = writeln!(out, "\n… and {more} more");
        }
    }
}

/// The body of FlakeGuard's comment on a pull request: which failures are known flaky on
/// the default branch and which are new, with links. Starts with [`PR_COMMENT_MARKER`].
pub fn pr_comment_body(report: &CommitReport, check_run_url: Option<&str>) -> String {
    let mut body = String::new();
    body.push_str(PR_COMMENT_MARKER);
    body.push('\n');
    let _ = writeln!(body, "### FlakeGuard on `{}`\n", report.short_sha());
    let branch = code(&report.default_branch);
    let (new, flaky, quarantined) = (
        report.new_failures(),
        report.known_flaky(),
        report.quarantined(),
    );
    if report.failures.is_empty() {
        let _ = writeln!(body, "No test failed ({} tests).", report.totals.tests);
    } else if new == 0 {
        let _ = writeln!(
            body,
            "✅ All {} failures are known flaky on {branch} or quarantined: none blocks.",
            report.failures.len()
        );
    } else {
        let _ = writeln!(
            body,
            "❌ {new} new {} (not known flaky on {branch}); {flaky} known flaky, \
             {quarantined} quarantined.",
            plural(new, "failure", "failures")
        );
    }
    let footer = check_run_url
        .map(|url| format!("\n[Details in the FlakeGuard check run]({url})\n"))
        .unwrap_or_default();
    let sections = sections(report);
    write_sections(
        &mut body,
        &sections,
        BODY_LIMIT.saturating_sub(footer.len()),
    );
    body.push_str(&footer);
    body
}

/// The issue for a flaky test ("Open issues"): title `Flaky test: <key>`, label
/// [`FLAKY_ISSUE_LABEL`].
pub fn flaky_issue(
    repo: &RepoSlug,
    test: &NewlyFlaky,
    dashboard_url: Option<&str>,
) -> FlakyIssueText {
    let title = flaky_issue_title(&test.key);
    let mut body = String::new();
    let _ = writeln!(
        body,
        "FlakeGuard found {} in {repo} to be flaky.\n",
        escape_cell(&test.key.to_string())
    );
    if let Some(file) = &test.file {
        let _ = writeln!(body, "- File: {}", code(file));
    }
    let _ = writeln!(body, "- Flakiness: {}", percent(test.probability));
    let _ = writeln!(body, "- Evidence: {}", escape_cell(&test.evidence));
    if let Some(base) = dashboard_url {
        let _ = writeln!(
            body,
            "- History: {}/repos/{}/{}/tests/{}",
            base.trim_end_matches('/'),
            repo.owner(),
            repo.name(),
            test.id
        );
    }
    body.push_str(
        "\nA flaky test fails and passes on the same code. Fix it, or quarantine it so its \
         failures stop blocking merges while it is being fixed.\n",
    );
    FlakyIssueText {
        title,
        body,
        labels: vec![FLAKY_ISSUE_LABEL],
    }
}

/// `Flaky test: <key>`, shortened to GitHub's 256-character title limit.
pub fn flaky_issue_title(key: &TestKey) -> String {
    let one_line: String = key
        .to_string()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    shorten(&format!("Flaky test: {one_line}"), 256)
}

/// A GitHub issue search that finds the issue of `key` again (`GET /search/issues?q=…`).
pub fn flaky_issue_search_query(repo: &RepoSlug, key: &TestKey) -> String {
    // Quotes end the phrase; the title is searched for as one phrase.
    let title = flaky_issue_title(key).replace('"', " ");
    format!("repo:{repo} is:issue label:{FLAKY_ISSUE_LABEL} in:title \"{title}\"")
}

/// Escapes text for a markdown table cell or inline text, on one line, shortened.
pub fn escape_cell(text: &str) -> String {
    let text = shorten(text, CELL_CHARS);
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '|' | '`' | '*' | '_' | '[' | ']' | '\\' | '#' | '~' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Text as an inline code span: code spans take no escapes, so backticks become quotes.
fn code(text: &str) -> String {
    let text: String = shorten(text, CELL_CHARS)
        .chars()
        .map(|c| match c {
            '`' => '\'',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    format!("`{text}`")
}

/// At most `max` characters, ending with `…` when shortened (never inside a character).
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max.saturating_sub(1)) {
        Some((cut, _)) if text[cut..].chars().nth(1).is_some() => {
            format!("{}…", &text[..cut])
        }
        _ => text.to_owned(),
    }
}

fn percent(p: f64) -> String {
    if p.is_finite() {
        format!("{:.0}%", (p * 100.0).clamp(0.0, 100.0))
    } else {
        "unknown".to_owned()
    }
}

fn date(t: OffsetDateTime) -> String {
    let d = t.date();
    format!("{}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

#[cfg(test)]
mod tests;
