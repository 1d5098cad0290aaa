//! `flakeguard validate`: parse each report and say what was understood and what is odd.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use flakeguard_junit::{Format, Limits, Summary};
use serde::Serialize;

use crate::cli::{ValidateArgs, ValidateFormat};
use crate::files::report_files;
use crate::progress;

/// The outcome of reading one file.
#[derive(Debug, Serialize)]
pub(crate) struct FileReport {
    path: String,
    ok: bool,
    format: &'static str,
    dialect: &'static str,
    testcases: u64,
    tests: u64,
    passed: u64,
    failed: u64,
    errors: u64,
    skipped: u64,
    flaky: u64,
    issues: Vec<String>,
    error: Option<String>,
}

impl FileReport {
    fn unreadable(path: String, format: Format, dialect: &'static str, error: String) -> Self {
        FileReport {
            path,
            ok: false,
            format: format.as_str(),
            dialect,
            testcases: 0,
            tests: 0,
            passed: 0,
            failed: 0,
            errors: 0,
            skipped: 0,
            flaky: 0,
            issues: Vec::new(),
            error: Some(error),
        }
    }
}

pub(crate) fn validate_file(path: &Path) -> FileReport {
    let display = path.display().to_string();
    let failed = |format: Format, dialect: &'static str, error: String| {
        FileReport::unreadable(display.clone(), format, dialect, error)
    };
    let reader = match flakeguard_junit::open(path, Limits::default()) {
        Ok(r) => r,
        Err(e) => return failed(e.format(), "unknown", e.to_string()),
    };
    let dialect = reader.dialect();
    match flakeguard_junit::summarize(reader) {
        Ok((summary, issues, dialect)) => {
            let Summary {
                testcases,
                tests,
                passed,
                failed,
                errors,
                skipped,
                flaky,
                ..
            } = summary;
            FileReport {
                path: display,
                ok: true,
                format: Format::Junit.as_str(),
                dialect,
                testcases,
                tests,
                passed,
                failed,
                errors,
                skipped,
                flaky,
                issues: issues.lines(),
                error: None,
            }
        }
        Err(e) => failed(e.format(), dialect, e.to_string()),
    }
}

pub(crate) fn run(args: &ValidateArgs) -> Result<ExitCode> {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut all_ok = true;
    let mut missing = Vec::new();
    for path in &args.paths {
        match report_files(path) {
            Ok(found) => files.extend(found),
            Err(e) => {
                all_ok = false;
                missing.push(FileReport::unreadable(
                    path.display().to_string(),
                    Format::Unknown,
                    "unknown",
                    format!("cannot read: {e}"),
                ));
            }
        }
    }
    let bar = progress::bar(files.len());
    let mut reports = missing;
    for file in &files {
        bar.set_message(file.display().to_string());
        reports.push(validate_file(file));
        bar.inc(1);
    }
    bar.finish_and_clear();
    all_ok &= reports.iter().all(|r| r.ok);

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.format {
        ValidateFormat::Json => {
            for report in &reports {
                serde_json::to_writer(&mut out, report)?;
                out.write_all(b"\n")?;
            }
        }
        ValidateFormat::Text => write_table(&mut out, &reports, std::io::stdout().is_terminal())?,
    }
    out.flush()?;
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn write_table(out: &mut impl Write, reports: &[FileReport], color: bool) -> std::io::Result<()> {
    let (red, green, yellow, reset) = if color {
        ("\x1b[31m", "\x1b[32m", "\x1b[33m", "\x1b[0m")
    } else {
        ("", "", "", "")
    };
    let width = reports
        .iter()
        .map(|r| r.path.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 80);
    writeln!(
        out,
        "{:<width$}  {:<7} {:<10} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6}",
        "FILE", "FORMAT", "DIALECT", "CASES", "TESTS", "PASS", "FAIL", "ERROR", "SKIP", "FLAKY"
    )?;
    for r in reports {
        let path = truncate_left(&r.path, width);
        if r.ok {
            writeln!(
                out,
                "{path:<width$}  {:<7} {:<10} {:>6} {:>6} {green}{:>6}{reset} {}{:>6}{reset} {}{:>6}{reset} {:>6} {}{:>6}{reset}",
                r.format,
                r.dialect,
                r.testcases,
                r.tests,
                r.passed,
                if r.failed > 0 { red } else { "" },
                r.failed,
                if r.errors > 0 { red } else { "" },
                r.errors,
                r.skipped,
                if r.flaky > 0 { yellow } else { "" },
                r.flaky,
            )?;
        } else {
            writeln!(
                out,
                "{path:<width$}  {:<7} {red}unreadable{reset}",
                r.format
            )?;
        }
    }
    let ok = reports.iter().filter(|r| r.ok).count();
    writeln!(out, "\n{ok} of {} files read", reports.len())?;
    for r in reports {
        if let Some(err) = &r.error {
            writeln!(out, "{red}error{reset}: {}: {err}", r.path)?;
        }
        for issue in &r.issues {
            writeln!(out, "{yellow}note{reset}: {}: {issue}", r.path)?;
        }
    }
    Ok(())
}

fn truncate_left(s: &str, width: usize) -> String {
    let count = s.chars().count();
    if count <= width {
        return s.to_owned();
    }
    let skip = count - width + 1;
    format!("…{}", s.chars().skip(skip).collect::<String>())
}
