//! `flakeguard run [upload options] [--junit GLOB]... -- COMMAND...`: run a test command with
//! its output streamed, upload the JUnit reports it wrote (as `flakeguard upload` does), and
//! let it pass when every failing test is quarantined.
//!
//! The exit status:
//! - the command succeeded: 0 (with `--fail-closed`, 1 when the upload failed);
//! - it failed, its reports show failing tests, and every one of them has a quarantine that
//!   applies (active, not expired): 0, listing the ignored failures;
//! - otherwise the command's own code: a failure that is not quarantined, no report, a report
//!   that cannot be read, no failing test in the reports (the command failed for another
//!   reason), or a quarantine list that cannot be had (the server is unreachable).
//!
//! A failing test is recognised by the identity ingestion gives it
//! ([`flakeguard_app::report_verdict`]), compared with the quarantined tests' stored keys.
//! FlakeGuard's own messages go to stderr, prefixed `flakeguard:`; stdout is the command's.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use flakeguard_app::{ReportFile, ReportVerdict};
use flakeguard_core::TestKey;
use time::OffsetDateTime;

use crate::cli::RunArgs;
use crate::commands::upload::send::Retry;
use crate::commands::upload::target::Target;
use crate::commands::upload::{self, plural};
use crate::files;
use crate::quarantine_list::{self, Entry};

/// Where reports are looked for without `--junit`: the names JUnit reporters write by default
/// (jest-junit's `junit.xml`, nextest's `target/nextest/<profile>/junit.xml`, pytest's and
/// Go tools' `*junit*.xml` by convention) and Surefire, Failsafe, Gradle and Ant's `TEST-*.xml`.
pub(crate) const DEFAULT_JUNIT: &[&str] = &["**/*junit*.xml", "**/TEST-*.xml"];

/// Reports last modified this long before the command started still count as its own: file
/// systems store coarse times, and containers' clocks drift.
const MTIME_SLACK: Duration = Duration::from_secs(2);

/// Where the quarantine list comes from.
#[derive(Debug)]
enum Source {
    Server(Box<Target>),
    File(Vec<Entry>),
}

fn say(message: impl std::fmt::Display) {
    eprintln!("flakeguard: {message}");
}

pub(crate) fn run(args: &RunArgs) -> Result<ExitCode> {
    // Everything wrong with the invocation is found before the tests run.
    let source = match &args.quarantine_file {
        Some(path) => match quarantine_list::load(path) {
            Ok(entries) => Source::File(entries),
            Err(e) => return usage(e),
        },
        None => match Target::resolve(&args.upload, |n| std::env::var(n).ok()) {
            Ok(target) => Source::Server(Box::new(target)),
            Err(e) => return usage(e),
        },
    };
    let patterns: Vec<String> = if args.junit.is_empty() {
        DEFAULT_JUNIT.iter().map(|p| (*p).to_owned()).collect()
    } else {
        args.junit.clone()
    };
    for pattern in &patterns {
        if pattern.trim().is_empty() {
            return usage(anyhow::anyhow!("--junit: the pattern is empty"));
        }
        if files::is_pattern(Path::new(pattern))
            && let Err(e) = glob::Pattern::new(pattern)
        {
            return usage(anyhow::anyhow!(
                "--junit {pattern:?}: invalid pattern: {} at character {}",
                e.msg,
                e.pos + 1
            ));
        }
    }

    let started = SystemTime::now();
    let code = match execute(&args.command) {
        Ok(code) => code,
        Err((code, message)) => {
            say(message);
            return Ok(ExitCode::from(code));
        }
    };
    let code = conclude(args, &source, &patterns, started, code)?;
    Ok(ExitCode::from(code))
}

fn usage(e: anyhow::Error) -> Result<ExitCode> {
    eprintln!("error: {e:#}");
    Ok(ExitCode::from(2))
}

/// Runs the command with the terminal's stdin, stdout and stderr; its exit code, 128 + the
/// signal's number when a signal ended it, or (126/127, why) when it could not start.
fn execute(command: &[OsString]) -> Result<u8, (u8, String)> {
    let Some((program, arguments)) = command.split_first() else {
        return Err((2, "no command given after --".to_owned()));
    };
    match Command::new(program).args(arguments).status() {
        Ok(status) => Ok(exit_code(status)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err((
            127,
            format!(
                "cannot run {}: command not found",
                program.to_string_lossy()
            ),
        )),
        Err(e) => Err((
            126,
            format!("cannot run {}: {e}", program.to_string_lossy()),
        )),
    }
}

fn exit_code(status: ExitStatus) -> u8 {
    if let Some(code) = status.code() {
        return u8::try_from(code).unwrap_or(1);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return u8::try_from(128 + signal).unwrap_or(255);
        }
    }
    1
}

/// What happens after the command: the exit code, with FlakeGuard's reasons on stderr.
fn conclude(
    args: &RunArgs,
    source: &Source,
    patterns: &[String],
    started: SystemTime,
    code: u8,
) -> Result<u8> {
    let found = find_reports(patterns, started);
    for problem in &found.problems {
        say(format!("warning: {problem}"));
    }
    if found.stale > 0 {
        say(format!(
            "ignored {} older than this run",
            plural(found.stale, "matching report file")
        ));
    }
    let wanted = patterns.join(", ");
    let target = match source {
        Source::File(entries) => {
            if code == 0 {
                return Ok(0);
            }
            if found.reports.is_empty() {
                say(format!(
                    "the command failed (exit {code}) and wrote no JUnit report matching {wanted}; exiting {code}"
                ));
                return Ok(code);
            }
            return Ok(match read_verdict(&found.reports) {
                Ok(verdict) => judge(&verdict, entries, code, None),
                Err(e) => {
                    say(format!(
                        "cannot read the reports ({e:#}), so the failures cannot be checked against the quarantine list; exiting {code}"
                    ));
                    code
                }
            });
        }
        Source::Server(target) => target,
    };

    if found.reports.is_empty() {
        if code == 0 {
            say(format!(
                "no JUnit report matched {wanted}; nothing uploaded"
            ));
        } else {
            say(format!(
                "the command failed (exit {code}) and wrote no JUnit report matching {wanted}; exiting {code}"
            ));
        }
        return Ok(code);
    }
    let verdict = match read_verdict(&found.reports) {
        Ok(verdict) => verdict,
        Err(e) => {
            say(format!(
                "cannot read the reports ({e:#}); nothing uploaded (the server refuses a run with an unreadable report)"
            ));
            if code != 0 {
                say(format!(
                    "the failures cannot be checked against the quarantine list; exiting {code}"
                ));
            }
            return Ok(code);
        }
    };

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let retry = Retry::from_args(&args.upload.server);
    let upload_failed = match runtime.block_on(upload::upload(target, retry, found.reports)) {
        Ok(uploaded) => {
            let mut err = std::io::stderr().lock();
            uploaded.write_summary(&mut err, std::io::stderr().is_terminal())?;
            false
        }
        Err(e) => {
            say(format!("the upload failed: {e:#}"));
            true
        }
    };
    let refuse =
        (upload_failed && args.fail_closed).then_some("the upload failed and --fail-closed is set");
    if code == 0 {
        if let Some(reason) = refuse {
            say(format!("the tests passed, but {reason}; exiting 1"));
            return Ok(1);
        }
        return Ok(0);
    }
    if verdict.failing.is_empty() {
        say(format!(
            "the command failed (exit {code}), but no test failed in its reports: the failure is not a test's to excuse; exiting {code}"
        ));
        return Ok(code);
    }
    let entries = match runtime.block_on(quarantine_list::fetch(&target.endpoint, retry)) {
        Ok(entries) => entries,
        Err(e) => {
            say(format!(
                "cannot fetch the quarantine list: {e:#}; falling back to the command's exit code {code}"
            ));
            return Ok(code);
        }
    };
    Ok(judge(&verdict, &entries, code, refuse))
}

/// The reports found, and what was passed over.
#[derive(Debug, Default)]
struct Found {
    reports: Vec<PathBuf>,
    /// Matching files last modified before the command started.
    stale: usize,
    problems: Vec<String>,
}

/// The files `patterns` name (a pattern, a file or a directory of `*.xml`), once each, keeping
/// those modified since `since` (less [`MTIME_SLACK`]). Hidden directories (`.git`, …) are not
/// searched by patterns.
fn find_reports(patterns: &[String], since: SystemTime) -> Found {
    let mut found = Found::default();
    let mut seen = HashSet::new();
    let cutoff = since.checked_sub(MTIME_SLACK).unwrap_or(since);
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    for pattern in patterns {
        let path = Path::new(pattern);
        let mut candidates = Vec::new();
        if files::is_pattern(path) {
            match glob::glob_with(pattern, options) {
                Ok(matches) => {
                    for entry in matches {
                        match entry {
                            Ok(p) if p.is_dir() => match files::report_files(&p) {
                                Ok(inner) => candidates.extend(inner),
                                Err(e) => found
                                    .problems
                                    .push(format!("cannot read {}: {e}", p.display())),
                            },
                            Ok(p) => candidates.push(p),
                            // Unreadable directories on the way are passed over quietly:
                            // `**` meets many that are not the project's.
                            Err(_) => {}
                        }
                    }
                }
                Err(e) => found
                    .problems
                    .push(format!("invalid pattern {pattern:?}: {}", e.msg)),
            }
        } else if path.exists() {
            match files::report_files(path) {
                Ok(inner) => candidates.extend(inner),
                Err(e) => found
                    .problems
                    .push(format!("cannot read {}: {e}", path.display())),
            }
        }
        for file in candidates {
            if !seen.insert(file.clone()) {
                continue;
            }
            let fresh = std::fs::metadata(&file)
                .and_then(|m| m.modified())
                .map(|modified| modified >= cutoff)
                .unwrap_or(true);
            if fresh {
                found.reports.push(file);
            } else {
                found.stale += 1;
            }
        }
    }
    found
}

/// Which tests failed in the reports, as ingestion judges them.
fn read_verdict(reports: &[PathBuf]) -> Result<ReportVerdict> {
    let files = reports
        .iter()
        .map(|path| {
            Ok(ReportFile {
                name: path.display().to_string(),
                bytes: std::fs::read(path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(flakeguard_app::report_verdict(&files)?)
}

/// The failing tests split by whether a quarantine applies to them.
#[derive(Debug, PartialEq)]
struct Decision<'a> {
    ignored: Vec<(&'a TestKey, &'a Entry)>,
    blocking: Vec<&'a TestKey>,
}

fn decide<'a>(
    failing: &'a [(TestKey, Option<String>)],
    entries: &'a [Entry],
    now: OffsetDateTime,
) -> Decision<'a> {
    let quarantined: HashMap<TestKey, &Entry> = entries
        .iter()
        .filter(|e| e.applies(now))
        .map(|e| (e.test_key(), e))
        .collect();
    let mut decision = Decision {
        ignored: Vec::new(),
        blocking: Vec::new(),
    };
    for (key, _) in failing {
        match quarantined.get(key) {
            Some(entry) => decision.ignored.push((key, entry)),
            None => decision.blocking.push(key),
        }
    }
    decision
}

/// The exit code for a failed command whose reports show failing tests: 0 when every one is
/// quarantined (and nothing `refuse`s ignoring them), else the command's code.
fn judge(verdict: &ReportVerdict, entries: &[Entry], code: u8, refuse: Option<&str>) -> u8 {
    let decision = decide(&verdict.failing, entries, OffsetDateTime::now_utc());
    let list_ignored = |decision: &Decision<'_>| {
        for (key, entry) in &decision.ignored {
            eprintln!("  {key}  ({})", entry.describe());
        }
    };
    if decision.blocking.is_empty() {
        let n = decision.ignored.len();
        if let Some(reason) = refuse {
            say(format!(
                "every failing test is quarantined, but {reason}; exiting {code}:"
            ));
            list_ignored(&decision);
            return code;
        }
        say(format!(
            "the command failed (exit {code}), but {} quarantined; exiting 0. Ignored {}:",
            if n == 1 {
                "its only failing test is".to_owned()
            } else {
                format!("all {n} failing tests are")
            },
            if n == 1 { "failure" } else { "failures" }
        ));
        list_ignored(&decision);
        return 0;
    }
    say(format!(
        "{} not quarantined; exiting {code} (the command's exit code):",
        plural(decision.blocking.len(), "failing test")
    ));
    for key in &decision.blocking {
        eprintln!("  {key}");
    }
    if !decision.ignored.is_empty() {
        say(format!(
            "{} quarantined (not blocking on its own):",
            plural(decision.ignored.len(), "other failing test")
        ));
        list_ignored(&decision);
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(
        scope: &str,
        classname: &str,
        name: &str,
        state: &str,
        expires: Option<&str>,
    ) -> Entry {
        serde_json::from_value(serde_json::json!({
            "scope": scope, "classname": classname, "name": name, "state": state,
            "expires_at": expires,
        }))
        .unwrap()
    }

    fn failing(parts: &[(&str, &str)]) -> Vec<(TestKey, Option<String>)> {
        parts
            .iter()
            .map(|(class, name)| (TestKey::from_parts(None, "suite", Some(class), name), None))
            .collect()
    }

    #[test]
    fn only_active_unexpired_quarantines_of_the_same_identity_excuse_a_failure() {
        let now = OffsetDateTime::parse(
            "2026-11-20T00:00:00Z",
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        let entries = [
            entry("suite", "shop.Cart", "total", "active", None),
            entry("suite", "shop.Cart", "tax", "proposed", None),
            entry(
                "suite",
                "shop.Cart",
                "old",
                "active",
                Some("2026-11-01T00:00:00Z"),
            ),
            entry(
                "suite",
                "shop.Cart",
                "param",
                "active",
                Some("2026-12-01T00:00:00Z"),
            ),
        ];
        let f = failing(&[
            ("shop.Cart", "total"),
            ("shop.Cart", "tax"),
            ("shop.Cart", "old"),
            ("shop.Cart", "param[1]"),
            ("shop.Other", "total"),
        ]);
        let d = decide(&f, &entries, now);
        let ignored: Vec<&str> = d.ignored.iter().map(|(k, _)| k.name.as_str()).collect();
        assert_eq!(ignored, vec!["total"]);
        let blocking: Vec<String> = d.blocking.iter().map(|k| k.to_string()).collect();
        assert_eq!(
            blocking,
            vec![
                "suite › shop.Cart › tax",
                "suite › shop.Cart › old",
                "suite › shop.Cart › param[1]",
                "suite › shop.Other › total",
            ],
            "proposed, expired, another variant and another class all still block"
        );
    }

    #[test]
    fn judging_exits_0_only_when_nothing_blocks() {
        let entries = [entry("suite", "c", "t", "active", None)];
        let all = ReportVerdict {
            testcases: 3,
            failing: failing(&[("c", "t")]),
        };
        assert_eq!(judge(&all, &entries, 3, None), 0);
        assert_eq!(judge(&all, &entries, 3, Some("the upload failed")), 3);
        let mixed = ReportVerdict {
            testcases: 3,
            failing: failing(&[("c", "t"), ("c", "u")]),
        };
        assert_eq!(judge(&mixed, &entries, 3, None), 3);
    }

    #[test]
    fn exit_codes_follow_the_shell() {
        let status = Command::new("sh").args(["-c", "exit 7"]).status().unwrap();
        assert_eq!(exit_code(status), 7);
        let status = Command::new("sh")
            .args(["-c", "kill -TERM $$"])
            .status()
            .unwrap();
        assert_eq!(exit_code(status), 128 + 15);
        assert_eq!(
            execute(&["flakeguard-no-such-command".into()])
                .unwrap_err()
                .0,
            127
        );
    }

    #[test]
    fn stale_reports_are_passed_over() {
        let dir = std::env::temp_dir().join(format!("fg-run-find-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("out/.hidden")).unwrap();
        std::fs::create_dir_all(dir.join("old")).unwrap();
        std::fs::write(dir.join("old/junit.xml"), "<testsuite/>").unwrap();
        let old = std::fs::File::options()
            .write(true)
            .open(dir.join("old/junit.xml"))
            .unwrap();
        old.set_modified(SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
        std::fs::write(dir.join("out/junit.xml"), "<testsuite/>").unwrap();
        std::fs::write(dir.join("out/.hidden/junit.xml"), "<testsuite/>").unwrap();
        let base = dir.to_string_lossy();
        let found = find_reports(
            &[
                format!("{base}/**/*junit*.xml"),
                format!("{base}/out/junit.xml"),
                format!("{base}/missing.xml"),
            ],
            SystemTime::now() - Duration::from_secs(60),
        );
        assert_eq!(found.reports, vec![dir.join("out/junit.xml")]);
        assert_eq!(found.stale, 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
