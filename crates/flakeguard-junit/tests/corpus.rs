//! Every third-party report in `shared/fixtures` is read: JUnit files with the counts their
//! content holds (as listed in the fixtures' MANIFEST.md), other formats and malformed files
//! refused with a located, named error.

mod support;

use std::collections::BTreeMap;

use support::{fixture, fixtures, summarize_file};

/// Counts from MANIFEST.md's note column: testcases, failure, error, skipped *elements*.
fn manifest_counts() -> BTreeMap<String, (Option<[u64; 4]>, String)> {
    let text =
        std::fs::read_to_string(fixtures().join("MANIFEST.md")).expect("MANIFEST.md is readable");
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("| `") else {
            continue;
        };
        let Some((path, _)) = rest.split_once('`') else {
            continue;
        };
        let note = line
            .trim_end()
            .trim_end_matches('|')
            .rsplit('|')
            .next()
            .unwrap_or("")
            .trim()
            .to_owned();
        let counts = note.find(" testcases, ").and_then(|at| {
            let start = note[..at]
                .rfind(|c: char| !c.is_ascii_digit())
                .map_or(0, |i| i + 1);
            let nums: Vec<u64> = note[start..]
                .split([',', ';'])
                .take(4)
                .filter_map(|part| part.split_whitespace().next()?.parse().ok())
                .collect();
            (nums.len() == 4).then(|| [nums[0], nums[1], nums[2], nums[3]])
        });
        out.insert(path.to_owned(), (counts, note));
    }
    out
}

/// Files whose final-status counts differ from the MANIFEST's element counts, with ours and why.
/// (passed is implied.) Every entry here is a deliberate reading, asserted exactly.
const STATUS_EXCEPTIONS: &[(&str, [u64; 3], &str)] = &[
    // One testcase can carry several result elements; the final status counts once, error
    // winning over failure over skipped.
    (
        "junit/edge-cases/enricomi-putra__junit.multiresult.xml",
        [1, 1, 1],
        "several results per testcase",
    ),
    (
        "junit/edge-cases/xunit-viewer__multi_cases.xml",
        [1, 1, 1],
        "several results per testcase",
    ),
    (
        "junit/edge-cases/xunit-viewer__multi_error_test_with_system_out.xml",
        [0, 1, 0],
        "failure and error on one testcase",
    ),
    (
        "junit/edge-cases/xunit-viewer__data__test.xml",
        [1, 2, 1],
        "several results per testcase",
    ),
    (
        "junit/generic/mikepenz-ajr__test_multiple_errors.xml",
        [0, 2, 0],
        "several errors on one testcase",
    ),
    (
        "junit/generic/mikepenz-ajr__test_multiple_failures.xml",
        [2, 0, 1],
        "several failures on one testcase",
    ),
    // `status="disabled"` with no result element: the test did not run, so it is skipped.
    (
        "junit/generic/enricomi-putra__disabled.xml",
        [19, 1, 5],
        "status=disabled testcases are skipped",
    ),
    (
        "junit/generic/mikepenz-ajr__testDisabled.xml",
        [4, 2, 10],
        "status=disabled testcases are skipped",
    ),
    // Result elements directly on a <testsuite> belong to no testcase; noted as an issue.
    (
        "junit/edge-cases/codecov-trp__error.xml",
        [0, 0, 0],
        "suite-level skipped",
    ),
    (
        "junit/generic/jenkins-junit-plugin__junit-report-6700.xml",
        [0, 0, 0],
        "suite-level error",
    ),
    (
        "junit/generic/jenkins-junit-plugin__junit-report-nested-testsuites.xml",
        [0, 0, 0],
        "suite-level error",
    ),
    (
        "junit/perl-tap-junit/launchable-cli__prove__report.xml",
        [2, 0, 0],
        "suite-level error",
    ),
];

/// Malformed-folder files read leniently, with the issue that says what was odd.
const LENIENT: &[(&str, &str)] = &[
    (
        "junit/malformed/codecov-trp__with-eval-properties-junit.xml",
        "decl-not-first",
    ),
    ("junit/malformed/xunit-viewer__utf-16.xml", ""),
];

fn all_report_files() -> Vec<String> {
    fn walk(dir: &std::path::Path, root: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("fixtures dir is readable") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, root, out);
            } else {
                out.push(
                    path.strip_prefix(root)
                        .expect("under root")
                        .to_string_lossy()
                        .replace('\\', "/"),
                );
            }
        }
    }
    let root = fixtures();
    let mut out = Vec::new();
    walk(&root.join("junit"), &root, &mut out);
    walk(&root.join("non-junit"), &root, &mut out);
    out.sort();
    out
}

#[test]
fn every_junit_fixture_parses_with_the_counts_its_content_holds() {
    let manifest = manifest_counts();
    let mut checked = 0;
    let mut failures = Vec::new();
    for rel in all_report_files()
        .iter()
        .filter(|r| r.starts_with("junit/") && !r.starts_with("junit/malformed/"))
    {
        let (counts, note) = manifest.get(rel).cloned().unwrap_or((None, String::new()));
        let result = summarize_file(rel);
        let Ok((summary, _, _)) = result else {
            failures.push(format!("{rel}: {}", result.unwrap_err()));
            continue;
        };
        let Some([testcases, failure, error, skipped]) = counts else {
            failures.push(format!("{rel}: no counts in MANIFEST ({note})"));
            continue;
        };
        if summary.testcases != testcases {
            failures.push(format!(
                "{rel}: {} testcases, MANIFEST says {testcases}",
                summary.testcases
            ));
        }
        let expected = match STATUS_EXCEPTIONS.iter().find(|(p, _, _)| p == rel) {
            Some((_, e, _)) => *e,
            None => [failure, error, skipped],
        };
        let got = [summary.failed, summary.errors, summary.skipped];
        if got != expected {
            failures.push(format!(
                "{rel}: failed/errors/skipped {got:?}, expected {expected:?}"
            ));
        }
        if summary.passed + summary.failed + summary.errors + summary.skipped != summary.testcases {
            failures.push(format!("{rel}: statuses do not add up to testcases"));
        }
        checked += 1;
    }
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        checked >= 250,
        "only {checked} files checked: are the fixtures in place?"
    );
}

#[test]
fn malformed_fixtures_fail_with_a_located_error_or_are_read_leniently() {
    for rel in all_report_files()
        .iter()
        .filter(|r| r.starts_with("junit/malformed/"))
    {
        let result = summarize_file(rel);
        match LENIENT.iter().find(|(p, _)| p == rel) {
            Some((_, issue)) => {
                let (summary, issues, _) =
                    result.unwrap_or_else(|e| panic!("{rel} should be read leniently: {e}"));
                assert!(summary.testcases > 0, "{rel}");
                assert!(
                    issue.is_empty() || issues.has(issue),
                    "{rel}: expected issue {issue}, got {:?}",
                    issues.lines()
                );
            }
            None => {
                let err = result
                    .err()
                    .unwrap_or_else(|| panic!("{rel} must be refused"));
                let line = err.to_string();
                assert!(
                    line.contains("(byte "),
                    "{rel}: error without location: {line}"
                );
                assert!(
                    !line.contains('\n'),
                    "{rel}: error must be one line: {line}"
                );
            }
        }
    }
}

#[test]
fn other_formats_are_recognised_and_named() {
    for rel in all_report_files()
        .iter()
        .filter(|r| r.starts_with("non-junit/"))
    {
        let result = summarize_file(rel);
        if rel.ends_with("launchable-cli__xctest__junit.xml") {
            // Ordinary JUnit XML filed under non-junit/: classify by content.
            let (summary, _, _) = result.expect("xctest junit.xml is JUnit");
            assert_eq!((summary.testcases, summary.failed), (9, 2));
            continue;
        }
        let err = result
            .err()
            .unwrap_or_else(|| panic!("{rel} is not JUnit and must be refused"));
        let line = err.to_string();
        let folder = rel.split('/').nth(1).unwrap_or_default();
        let expected_format = match folder {
            "trx" => "trx",
            "nunit" | "nunit-malformed-or-xxe" if line.contains("TRX") => "trx",
            "nunit" => "nunit",
            "xunit-net" => "xunit",
            _ => "",
        };
        if !expected_format.is_empty() && !line.contains("entity") {
            assert_eq!(err.format().as_str(), expected_format, "{rel}: {line}");
        }
        let named = [
            "TRX",
            "NUnit",
            "xUnit.net",
            "Robot",
            "CTest",
            "Android CTS",
            "JSON",
            "go test",
            "entity",
        ];
        assert!(
            named.iter().any(|n| line.contains(n)),
            "{rel}: the error must name the format: {line}"
        );
    }
}

#[test]
fn xxe_probes_are_refused_without_resolving_anything() {
    for rel in [
        "junit/malformed/jenkins-junit-plugin__testXxe-oob.xml",
        "non-junit/nunit-malformed-or-xxe/enricomi-putra__NUnit-sec1752-file.xml",
        "non-junit/nunit-malformed-or-xxe/enricomi-putra__NUnit-sec1752-https.xml",
    ] {
        let err = summarize_file(rel).expect_err(rel);
        assert!(
            err.to_string().contains("entity declarations"),
            "{rel}: {err}"
        );
    }
    // The other XXE probe also declares an unsupported encoding; either refusal is fine,
    // what matters is that it is refused before any entity could be used.
    assert!(summarize_file("junit/malformed/jenkins-junit-plugin__testXxe-xxe.xml").is_err());
}

#[test]
fn retry_fixtures_keep_every_attempt() {
    // Surefire: test passed after two flaky failures.
    let (s, _, _) =
        summarize_file("junit/surefire/jenkins-junit-plugin__TEST-io.olamy.FlakyTest.xml").unwrap();
    assert_eq!(
        (s.testcases, s.passed, s.flaky, s.retry_elements),
        (1, 1, 1, 2)
    );
    // Surefire: failed every rerun.
    let (s, _, _) =
        summarize_file("junit/surefire/jenkins-junit-plugin__TEST-io.olamy.AlwaysFailTest.xml")
            .unwrap();
    assert_eq!(
        (s.testcases, s.failed, s.flaky, s.retry_elements),
        (1, 1, 0, 3)
    );
    // nextest: one flaky (flakyFailure then pass), one failing every attempt.
    let (s, _, dialect) =
        summarize_file("junit/nextest/nextest__fixture-project-junit.xml").unwrap();
    assert_eq!(dialect, "nextest");
    assert_eq!(
        (s.testcases, s.failed, s.flaky, s.retry_elements),
        (3, 1, 1, 5)
    );
    // pytest-rerunfailures style: repeated testcases, all attempts fail.
    let (s, _, _) = summarize_file("junit/pytest/mikepenz-ajr__flaky_all_failures.xml").unwrap();
    assert_eq!((s.testcases, s.tests, s.flaky), (3, 1, 0));
    // Android marathon flakyFailure.
    let (s, _, _) =
        summarize_file("junit/android-marathon/mikepenz-ajr__marathon_junit_report.xml").unwrap();
    assert_eq!(s.flaky, 1);
    // The huge surefire report: one testcase with two flakyFailures, three rerunFailures, among 7,580.
    let (s, _, _) =
        summarize_file("junit/surefire/jenkins-junit-plugin__junit-report-huge.xml").unwrap();
    assert_eq!((s.testcases, s.flaky, s.retry_elements), (7580, 1, 5));
}

#[test]
fn repeats_that_are_not_retries_stay_distinct_tests() {
    // Playwright writes each test once per browser project (the suite's hostname).
    let (s, _, dialect) =
        summarize_file("junit/playwright/launchable-cli__playwright__report.xml").unwrap();
    assert_eq!(dialect, "playwright");
    assert_eq!((s.testcases, s.tests, s.flaky), (93, 93, 0));
    // nextest stress runs: one suite per iteration; the iterations are executions of one test.
    let (s, _, _) = summarize_file("junit/nextest/nextest__stress-test-junit.xml").unwrap();
    assert_eq!((s.testcases, s.tests), (4, 2));
}

#[test]
fn fixture_directory_is_where_the_tests_expect_it() {
    assert!(
        fixture("MANIFEST.md").exists(),
        "set FLAKEGUARD_FIXTURES to shared/fixtures"
    );
}
