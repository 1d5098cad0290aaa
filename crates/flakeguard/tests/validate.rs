//! `flakeguard validate` as a user runs it: the real binary, real fixture files, exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    std::env::var("FLAKEGUARD_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
        })
}

fn flakeguard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flakeguard"))
        .args(args)
        .output()
        .expect("flakeguard runs")
}

fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn json_output_has_exactly_the_documented_fields() {
    let file = fixtures().join("junit/nextest/nextest__fixture-project-junit.xml");
    let out = flakeguard(&["validate", "--format", "json", file.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1);
    let obj = lines[0].as_object().unwrap();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "dialect",
            "error",
            "errors",
            "failed",
            "flaky",
            "format",
            "issues",
            "ok",
            "passed",
            "path",
            "skipped",
            "testcases",
            "tests"
        ]
    );
    assert_eq!(obj["ok"], true);
    assert_eq!(obj["format"], "junit");
    assert_eq!(obj["dialect"], "nextest");
    assert_eq!(
        (obj["testcases"].as_u64(), obj["tests"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(
        (
            obj["passed"].as_u64(),
            obj["failed"].as_u64(),
            obj["flaky"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
    assert!(obj["error"].is_null());
}

#[test]
fn other_formats_are_named_and_fail_the_run() {
    let trx = fixtures().join("non-junit/trx/dorny-test-reporter__dotnet-trx.trx");
    let good = fixtures().join("junit/jest/dorny-test-reporter__jest-junit.xml");
    let out = flakeguard(&[
        "validate",
        "--format",
        "json",
        good.to_str().unwrap(),
        trx.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let lines = json_lines(&out);
    assert_eq!(lines[0]["ok"], true);
    assert_eq!(lines[1]["ok"], false);
    assert_eq!(lines[1]["format"], "trx");
    assert!(
        lines[1]["error"].as_str().unwrap().contains("TRX"),
        "{}",
        lines[1]
    );
}

#[test]
fn directories_are_searched_recursively_for_xml() {
    let out = flakeguard(&[
        "validate",
        "--format",
        "json",
        fixtures().join("junit/go").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json_lines(&out).len(), 47);
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(flakeguard(&["validate"]).status.code(), Some(2));
    assert_eq!(
        flakeguard(&["validate", "--format", "yaml", "x.xml"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn a_missing_path_is_one_clear_error() {
    let out = flakeguard(&["validate", "/nonexistent/report.xml"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("error: /nonexistent/report.xml: cannot read"),
        "{stdout}"
    );
}

#[test]
fn a_thousand_bad_files_all_get_one_line_and_the_run_finishes() {
    let dir = scratch("thousand-bad");
    let bad: [&[u8]; 5] = [
        b"",
        b"not xml at all",
        b"<testsuites><testsuite name=\"s\"><testcase name=\"t\">",
        b"<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><testsuite><testcase name=\"&x;\"/></testsuite>",
        b"<testsuite><testcase name=\"\xFF\"/></testsuite>",
    ];
    for i in 0..1000 {
        std::fs::write(dir.join(format!("bad-{i:04}.xml")), bad[i % bad.len()]).unwrap();
    }
    let out = flakeguard(&["validate", "--format", "json", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1000);
    assert!(
        lines
            .iter()
            .all(|l| l["ok"] == false && l["error"].as_str().is_some_and(|e| !e.contains('\n')))
    );

    let text = flakeguard(&["validate", dir.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("error: ")).count(),
        1000
    );
    assert!(stdout.contains("0 of 1000 files read"));
}

#[test]
fn text_output_is_a_table_with_notes() {
    let file = fixtures().join("junit/edge-cases/enricomi-putra__no-attributes.xml");
    let out = flakeguard(&["validate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("FILE"), "{stdout}");
    assert!(
        stdout.contains("note: ") && stdout.contains("testcase without a name"),
        "{stdout}"
    );
}
