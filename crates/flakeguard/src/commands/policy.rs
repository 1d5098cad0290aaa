//! `flakeguard policy check FILE`: validate a `.flakeguard.yml` locally — every problem with
//! its position, or a short summary of the settings the file gives.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use flakeguard_core::config::{Glob, Problem, RepoConfig};

use crate::cli::PolicyCommand;

pub(crate) fn run(command: &PolicyCommand) -> Result<ExitCode> {
    match command {
        PolicyCommand::Check { file } => check(file),
    }
}

fn check(path: &Path) -> Result<ExitCode> {
    let text = match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                eprintln!(
                    "{}: not UTF-8 text (invalid byte at offset {})",
                    path.display(),
                    e.utf8_error().valid_up_to()
                );
                return Ok(ExitCode::from(1));
            }
        },
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", path.display());
            return Ok(ExitCode::from(1));
        }
    };
    match RepoConfig::parse(&text) {
        Ok(config) => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            summary(&mut out, &path.display().to_string(), &config)?;
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Err(problems) => {
            let file = path.display().to_string();
            for problem in &problems {
                eprintln!("{}", located(&file, problem));
            }
            let n = problems.len();
            eprintln!(
                "{file}: {n} problem{}; nothing in it applies until all are fixed",
                if n == 1 { "" } else { "s" }
            );
            Ok(ExitCode::from(1))
        }
    }
}

/// `FILE:LINE:COLUMN: KEY: MESSAGE`, leaving out what is unknown.
pub(crate) fn located(file: &str, problem: &Problem) -> String {
    if problem.line.is_some() {
        format!("{file}:{problem}")
    } else {
        format!("{file}: {problem}")
    }
}

/// The effective settings, one per line; `*` marks those that differ from the defaults.
fn summary(out: &mut impl Write, file: &str, c: &RepoConfig) -> std::io::Result<()> {
    let d = RepoConfig::default();
    writeln!(
        out,
        "{file}: valid. Effective settings (* differs from the default):"
    )?;
    let mut row = |key: &str, value: String, default: String| {
        let mark = if value == default { "" } else { " *" };
        writeln!(out, "  {key:<26} {value}{mark}")
    };
    let p = &c.policy;
    let dp = &d.policy;
    row(
        "flaky_threshold",
        num(p.flaky_threshold),
        num(dp.flaky_threshold),
    )?;
    row(
        "warn_threshold",
        num(p.warn_threshold),
        num(dp.warn_threshold),
    )?;
    row(
        "min_occurrences",
        p.min_occurrences.to_string(),
        dp.min_occurrences.to_string(),
    )?;
    row(
        "min_recent_failures",
        p.min_recent_failures.to_string(),
        dp.min_recent_failures.to_string(),
    )?;
    row(
        "lookback_days",
        p.lookback_days.to_string(),
        dp.lookback_days.to_string(),
    )?;
    row(
        "rolling_window_size",
        p.rolling_window_size.to_string(),
        dp.rolling_window_size.to_string(),
    )?;
    row(
        "confidence_threshold",
        num(p.confidence_threshold),
        num(dp.confidence_threshold),
    )?;
    row(
        "infra_failure_share",
        num(p.infra_failure_share),
        num(dp.infra_failure_share),
    )?;
    row(
        "infra_signature_min_tests",
        p.infra_signature_min_tests.to_string(),
        dp.infra_signature_min_tests.to_string(),
    )?;
    let branch = |b: &Option<String>| {
        b.clone()
            .unwrap_or_else(|| "inferred (main, then master)".to_owned())
    };
    row(
        "default_branch",
        branch(&p.default_branch),
        branch(&dp.default_branch),
    )?;
    row(
        "exempted_tests",
        globs(&c.exempted_tests),
        globs(&d.exempted_tests),
    )?;
    row(
        "exclude_paths",
        globs(&c.exclude_paths),
        globs(&d.exclude_paths),
    )?;
    let teams = if c.team_overrides.is_empty() {
        "none".to_owned()
    } else {
        c.team_overrides
            .iter()
            .map(|o| {
                let mut set = Vec::new();
                if let Some(v) = o.flaky_threshold {
                    set.push(format!("flaky_threshold {}", num(v)));
                }
                if let Some(v) = o.warn_threshold {
                    set.push(format!("warn_threshold {}", num(v)));
                }
                if let Some(v) = o.min_occurrences {
                    set.push(format!("min_occurrences {v}"));
                }
                if let Some(v) = o.min_recent_failures {
                    set.push(format!("min_recent_failures {v}"));
                }
                if let Some(v) = o.confidence_threshold {
                    set.push(format!("confidence_threshold {}", num(v)));
                }
                if let Some(v) = o.auto_quarantine_enabled {
                    set.push(format!("auto_quarantine_enabled {v}"));
                }
                let paths = if o.paths.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", globs(&o.paths))
                };
                format!("{}{paths}: {}", o.team, set.join(", "))
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    row("team_overrides", teams, "none".to_owned())?;
    row(
        "auto_quarantine_enabled",
        c.auto_quarantine_enabled.to_string(),
        d.auto_quarantine_enabled.to_string(),
    )?;
    row(
        "quarantine_duration_days",
        c.quarantine_duration_days.to_string(),
        d.quarantine_duration_days.to_string(),
    )?;
    row(
        "labels_required",
        list(&c.labels_required),
        list(&d.labels_required),
    )?;
    let release = |n: u32| {
        if n == 0 {
            "never (only at expiry)".to_owned()
        } else {
            format!("after {n} consecutive clean runs")
        }
    };
    row(
        "release_after_clean_runs",
        release(c.release_after_clean_runs),
        release(d.release_after_clean_runs),
    )?;
    row(
        "artifact_patterns",
        globs(&c.artifact_patterns),
        globs(&d.artifact_patterns),
    )?;
    let notify = |n: &flakeguard_core::config::Notifications| {
        format!(
            "slack {}; email {}",
            list(&n.slack_channels),
            list(&n.email_groups)
        )
    };
    row(
        "team_notifications",
        notify(&c.team_notifications),
        notify(&d.team_notifications),
    )?;
    Ok(())
}

fn num(v: f64) -> String {
    format!("{v}")
}

fn globs(g: &[Glob]) -> String {
    if g.is_empty() {
        "none".to_owned()
    } else {
        g.iter().map(Glob::as_str).collect::<Vec<_>>().join(", ")
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_read_file_line_column_key_message() {
        let problems = RepoConfig::parse("flaky_threshold: 2\n").unwrap_err();
        assert_eq!(
            located(".flakeguard.yml", &problems[0]),
            ".flakeguard.yml:1:1: flaky_threshold: must be between 0 and 1, got 2"
        );
        let problems = RepoConfig::parse("- a\n").unwrap_err();
        assert!(
            located("p.yml", &problems[0]).starts_with("p.yml: expected a mapping"),
            "{}",
            located("p.yml", &problems[0])
        );
    }

    #[test]
    fn the_summary_marks_what_differs_from_the_defaults() {
        let c = RepoConfig::parse(
            "flaky_threshold: 0.8\nteam_overrides:\n  payments:\n    paths: ['pay/**']\n    warn_threshold: 0.1\n",
        )
        .unwrap();
        let mut out = Vec::new();
        summary(&mut out, "f.yml", &c).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("f.yml: valid."), "{text}");
        assert!(
            text.contains("  flaky_threshold            0.8 *\n"),
            "{text}"
        );
        assert!(
            text.contains("  warn_threshold             0.3\n"),
            "{text}"
        );
        assert!(
            text.contains("  team_overrides             payments (pay/**): warn_threshold 0.1 *\n"),
            "{text}"
        );
        assert!(
            text.contains("  release_after_clean_runs   after 10 consecutive clean runs\n"),
            "{text}"
        );
    }
}
