//! `flakeguard policy check` as a process, and the whole `.flakeguard.yml` accepted by
//! `analyze --policy`.

mod support;

use std::path::Path;

use support::{run, scratch};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const VALID: &str = r##"# FlakeGuard policy
flaky_threshold: 0.7
exempted_tests: ["*::smoke_*"]
exclude_paths: [vendor/**]
team_overrides:
  "@acme/payments":
    paths: [services/payments/**]
    flaky_threshold: 0.9
auto_quarantine_enabled: true
quarantine_duration_days: 14
labels_required: [flaky-ok]
release_after_clean_runs: 5
team_notifications:
  slack_channels: ["#ci-flaky"]
"##;

#[test]
fn a_valid_file_is_summarized() {
    let dir = scratch("policy-valid");
    std::fs::write(dir.join(".flakeguard.yml"), VALID).unwrap();
    let out = run(&dir, &[], &["policy", "check", ".flakeguard.yml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with(".flakeguard.yml: valid."), "{text}");
    for line in [
        "  flaky_threshold            0.7 *",
        "  warn_threshold             0.3",
        "  exempted_tests             *::smoke_* *",
        "  team_overrides             @acme/payments (services/payments/**): flaky_threshold 0.9 *",
        "  auto_quarantine_enabled    true *",
        "  quarantine_duration_days   14 *",
        "  release_after_clean_runs   after 5 consecutive clean runs *",
        "  team_notifications         slack #ci-flaky; email none *",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line:?} missing from\n{text}"
        );
    }
}

#[test]
fn every_problem_is_listed_with_file_line_column_and_key() {
    let dir = scratch("policy-invalid");
    let file = dir.join("policy.yml");
    std::fs::write(
        &file,
        "flaky_threshold: 1.5\nwarn_treshold: 0.2\nteam_overrides:\n  payments:\n    min_occurrences: lots\nexclude_paths: ['src/[x']\nauto_quarantine_enabled: yes\n",
    )
    .unwrap();
    let out = run(&dir, &[], &["policy", "check", "policy.yml"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "", "problems go to stderr");
    let lines: Vec<String> = stderr(&out).lines().map(str::to_owned).collect();
    assert_eq!(
        lines,
        vec![
            "policy.yml:1:1: flaky_threshold: must be between 0 and 1, got 1.5",
            "policy.yml:2:1: warn_treshold: unknown key (did you mean `warn_threshold`?)",
            "policy.yml:5:5: team_overrides.payments.min_occurrences: expected a whole number from 0, got the string \"lots\"",
            "policy.yml:6:1: exclude_paths[0]: invalid pattern \"src/[x\": invalid range pattern at character 5",
            "policy.yml:7:1: auto_quarantine_enabled: expected true or false, got the string \"yes\"",
            "policy.yml: 5 problems; nothing in it applies until all are fixed",
        ]
    );
}

#[test]
fn unreadable_files_and_bad_usage_are_told_apart() {
    let dir = scratch("policy-usage");
    let out = run(&dir, &[], &["policy", "check", "missing.yml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("error: cannot read missing.yml: "),
        "{}",
        stderr(&out)
    );
    std::fs::write(dir.join("broken.yml"), "flaky_threshold: [0.6\n").unwrap();
    let out = run(&dir, &[], &["policy", "check", "broken.yml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("broken.yml:2:1: invalid YAML: "),
        "{}",
        stderr(&out)
    );
    let out = run(&dir, &[], &["policy", "check"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a missing FILE is a usage error"
    );
}

#[test]
fn analyze_reads_a_whole_policy_file() {
    let dir = scratch("policy-analyze");
    std::fs::write(dir.join(".flakeguard.yml"), VALID).unwrap();
    let history = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/history");
    let runs: Vec<String> = std::fs::read_dir(&history)
        .unwrap()
        .map(|e| e.unwrap().path().to_string_lossy().into_owned())
        .collect();
    let mut args = vec!["analyze", "--policy", ".flakeguard.yml", "--format", "json"];
    args.extend(runs.iter().map(String::as_str));
    let out = run(&dir, &[], &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    std::fs::write(dir.join("bad.yml"), "flaky_threshold: 2\ncolour: red\n").unwrap();
    let mut args = vec!["analyze", "--policy", "bad.yml"];
    args.extend(runs.iter().map(String::as_str));
    let out = run(&dir, &[], &args);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("bad.yml:1:1: flaky_threshold: must be between 0 and 1")
            && err.contains("bad.yml:2:1: colour: unknown key"),
        "{err}"
    );
}
