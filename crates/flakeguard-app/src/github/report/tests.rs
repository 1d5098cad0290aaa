use time::macros::datetime;

use super::*;

fn key(name: &str) -> TestKey {
    TestKey::from_parts(Some("tests/cart.rs"), "cart", Some("cart::checkout"), name)
}

fn failing(id: i64, name: &str, classification: Classification) -> FailingTest {
    FailingTest {
        id: TestCaseId(id),
        key: key(name),
        file: Some("tests/cart.rs".to_owned()),
        classification,
    }
}

fn typical() -> CommitReport {
    CommitReport {
        repo: RepoSlug::parse("acme/shop").unwrap(),
        head_sha: "3484a3fb816e0859fd6e1cea078d76385ff50625".to_owned(),
        default_branch: "main".to_owned(),
        totals: Totals {
            tests: 120,
            passed: 114,
            failed: 3,
            skipped: 3,
        },
        failures: vec![
            failing(11, "applies_discount", Classification::New),
            failing(
                12,
                "retries_payment",
                Classification::KnownFlaky { probability: 0.42 },
            ),
            failing(
                13,
                "sends_receipt",
                Classification::Quarantined {
                    until: Some(datetime!(2026-12-27 00:00 UTC)),
                    owner: Some("@acme/payments".to_owned()),
                },
            ),
        ],
        newly_flaky: vec![NewlyFlaky {
            id: TestCaseId(14),
            key: key("reserves_stock"),
            file: Some("tests/cart.rs".to_owned()),
            probability: 0.31,
            evidence: "failed 3 of 20 runs on main, passed on retry 2 times".to_owned(),
        }],
        dashboard_url: Some("https://flakeguard.example.com/".to_owned()),
        quarantine_actions_enabled: true,
    }
}

fn passing() -> CommitReport {
    CommitReport {
        totals: Totals {
            tests: 120,
            passed: 117,
            failed: 0,
            skipped: 3,
        },
        failures: vec![],
        newly_flaky: vec![],
        dashboard_url: None,
        ..typical()
    }
}

#[test]
fn a_run_with_a_new_failure_fails_with_every_section() {
    let report = check_run_report(&typical());
    assert_eq!(report.conclusion, "failure");
    assert_eq!(report.title, "1 new failure, 1 known flaky, 1 quarantined");
    insta::assert_snapshot!("typical_summary", report.summary);
    insta::assert_snapshot!("typical_text", report.text.unwrap());
    let identifiers: Vec<&str> = report.actions.iter().map(|a| a.identifier).collect();
    assert_eq!(
        identifiers,
        [ACTION_QUARANTINE, ACTION_OPEN_ISSUES, ACTION_RERUN_FAILED]
    );
}

#[test]
fn failures_that_are_all_known_flaky_or_quarantined_succeed() {
    let mut input = typical();
    input.failures.remove(0);
    input.newly_flaky.clear();
    input.quarantine_actions_enabled = false;
    let report = check_run_report(&input);
    assert_eq!(report.conclusion, "success");
    assert_eq!(report.title, "2 failures, all known flaky or quarantined");
    let identifiers: Vec<&str> = report.actions.iter().map(|a| a.identifier).collect();
    assert_eq!(identifiers, [ACTION_OPEN_ISSUES, ACTION_RERUN_FAILED]);

    // Only quarantined failures: nothing flaky to act on, only the re-run.
    input.failures.remove(0);
    let report = check_run_report(&input);
    assert_eq!(report.conclusion, "success");
    let identifiers: Vec<&str> = report.actions.iter().map(|a| a.identifier).collect();
    assert_eq!(identifiers, [ACTION_RERUN_FAILED]);
}

#[test]
fn a_green_run_succeeds_and_no_tests_is_neutral() {
    let report = check_run_report(&passing());
    assert_eq!(report.conclusion, "success");
    assert_eq!(report.title, "All 120 tests passed");
    assert_eq!(report.text, None);
    assert!(report.actions.is_empty());
    insta::assert_snapshot!("passing_summary", report.summary);

    let empty = CommitReport {
        totals: Totals::default(),
        ..passing()
    };
    let report = check_run_report(&empty);
    assert_eq!(report.conclusion, "neutral");
    assert_eq!(report.title, "No test results");
    assert!(report.actions.is_empty());
}

#[test]
fn actions_stay_within_githubs_limits() {
    for enabled in [false, true] {
        for input in [typical(), passing()] {
            let report = check_run_report(&CommitReport {
                quarantine_actions_enabled: enabled,
                ..input
            });
            assert!(report.actions.len() <= MAX_ACTIONS);
            for action in &report.actions {
                assert!(
                    action.label.chars().count() <= MAX_ACTION_LABEL,
                    "{action:?}"
                );
                assert!(
                    action.description.chars().count() <= MAX_ACTION_DESCRIPTION,
                    "{action:?}"
                );
                assert!(
                    action.identifier.chars().count() <= MAX_ACTION_IDENTIFIER,
                    "{action:?}"
                );
            }
            assert_eq!(
                report
                    .actions
                    .iter()
                    .any(|a| a.identifier == ACTION_QUARANTINE),
                enabled && !report.actions.is_empty(),
                "quarantine is offered only when enabled and there are flaky tests"
            );
        }
    }
}

#[test]
fn the_pr_comment_is_marked_and_splits_new_from_known_flaky() {
    let body = pr_comment_body(&typical(), Some("https://github.com/acme/shop/runs/4000"));
    assert!(body.starts_with(PR_COMMENT_MARKER));
    insta::assert_snapshot!("pr_comment", body);
    let green = pr_comment_body(&passing(), None);
    assert!(green.starts_with(PR_COMMENT_MARKER));
    assert!(green.contains("No test failed (120 tests)."), "{green}");
}

#[test]
fn flaky_issues_have_a_stable_title_and_the_label() {
    let input = typical();
    let issue = flaky_issue(
        &input.repo,
        &input.newly_flaky[0],
        input.dashboard_url.as_deref(),
    );
    assert_eq!(
        issue.title,
        "Flaky test: tests/cart.rs › cart::checkout › reserves_stock"
    );
    assert_eq!(issue.labels, [FLAKY_ISSUE_LABEL]);
    insta::assert_snapshot!("flaky_issue_body", issue.body);
    assert_eq!(
        flaky_issue_search_query(&input.repo, &input.newly_flaky[0].key),
        "repo:acme/shop is:issue label:flaky-test in:title \
         \"Flaky test: tests/cart.rs › cart::checkout › reserves_stock\""
    );
    let long = TestKey::from_parts(None, "s", None, &"é".repeat(1_000));
    let title = flaky_issue_title(&long);
    assert_eq!(title.chars().count(), 256);
    assert_eq!(title, flaky_issue_title(&long), "stable");
}

#[test]
fn test_names_cannot_break_tables_or_inject_html() {
    let hostile = "a|b`c` <script>alert(1)</script> [x](y) **bold**\nnext_line";
    let input = CommitReport {
        failures: vec![FailingTest {
            id: TestCaseId(1),
            key: TestKey {
                scope: "s".to_owned(),
                classname: String::new(),
                name: hostile.to_owned(),
                variant: None,
            },
            file: Some("x|y.rs".to_owned()),
            classification: Classification::New,
        }],
        newly_flaky: vec![],
        dashboard_url: None,
        ..typical()
    };
    let summary = check_run_report(&input).summary;
    assert!(!summary.contains("<script"), "{summary}");
    assert!(summary.contains("&lt;script&gt;"), "{summary}");
    assert!(summary.contains(r"a\|b\`c\`"), "{summary}");
    assert!(summary.contains(r"x\|y.rs"), "{summary}");
    let row = summary
        .lines()
        .find(|l| l.contains("script"))
        .expect("the row is there, on one line");
    assert_eq!(unescaped_pipes(row), 3, "two cells: {row}");
    let body = pr_comment_body(&input, None);
    assert!(!body.contains("<script"), "{body}");
}

fn unescaped_pipes(line: &str) -> usize {
    let mut count = 0;
    let mut escaped = false;
    for c in line.chars() {
        match c {
            '\\' if !escaped => escaped = true,
            '|' if !escaped => count += 1,
            _ => escaped = false,
        }
    }
    count
}

/// A deterministic stream of numbers (no randomness in tests).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

fn generated(failures: usize, newly: usize, name_len: usize, seed: u64) -> CommitReport {
    let mut lcg = Lcg(seed);
    // Multi-byte characters and characters that need escaping, so every cut is tested.
    let alphabet = ['a', 'é', '漢', '🦀', '|', '<', '`', 'z', '_'];
    let mut name = |i: usize| -> String {
        let len = name_len / 2 + lcg.next(name_len as u64 + 1) as usize;
        let body: String = (0..len)
            .map(|j| alphabet[(i * 7 + j * 13) % alphabet.len()])
            .collect();
        format!("test_{i}_{body}")
    };
    let mut classes = Lcg(seed ^ 0x5eed);
    CommitReport {
        totals: Totals {
            tests: (failures * 2) as u64,
            passed: failures as u64,
            failed: failures as u64,
            skipped: 0,
        },
        failures: (0..failures)
            .map(|i| FailingTest {
                id: TestCaseId(i as i64),
                key: TestKey::from_parts(None, "suite", Some("Class"), &name(i)),
                file: Some(format!("tests/{}.rs", "deep/".repeat(i % 5))),
                classification: match classes.next(3) {
                    0 => Classification::New,
                    1 => Classification::KnownFlaky { probability: 0.5 },
                    _ => Classification::Quarantined {
                        until: None,
                        owner: Some("@team".to_owned()),
                    },
                },
            })
            .collect(),
        newly_flaky: (0..newly)
            .map(|i| NewlyFlaky {
                id: TestCaseId(1_000_000 + i as i64),
                key: TestKey::from_parts(None, "suite", None, &format!("new_{i}")),
                file: None,
                probability: 0.7,
                evidence: "failed 3 of 20 runs on main, passed on retry 2 times".to_owned(),
            })
            .collect(),
        ..typical()
    }
}

/// The body is under the cap, every table row is whole, and each section's rows written
/// plus its "… and N more" add up to its size.
fn assert_capped(body: &str, input: &CommitReport) {
    assert!(body.len() <= BODY_LIMIT, "{} bytes", body.len());
    assert!(body.chars().count() < 65_535);
    let expected = [
        input.new_failures(),
        input.known_flaky(),
        input.quarantined(),
        input.newly_flaky.len(),
    ];
    let mut sections = Vec::new();
    let mut lines = body.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(heading) = line.strip_prefix("### ") else {
            continue;
        };
        let Some(total) = heading
            .rsplit_once(" (")
            .and_then(|(_, n)| n.strip_suffix(')'))
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        let mut rows = 0;
        let mut more = 0;
        while let Some(next) = lines.peek() {
            if next.starts_with("### ") {
                break;
            }
            let next = lines.next().unwrap();
            if next.starts_with("| ") && !next.starts_with("| Test") && !next.starts_with("| ---") {
                assert!(next.ends_with(" |"), "a cut row: {next}");
                rows += 1;
            } else if let Some(n) = next.strip_prefix("… and ") {
                more = n.strip_suffix(" more").unwrap().parse::<usize>().unwrap();
            }
        }
        assert_eq!(rows + more, total, "{heading}");
        sections.push(total);
    }
    let present: Vec<usize> = expected.into_iter().filter(|n| *n > 0).collect();
    assert_eq!(sections, present);
}

#[test]
fn fifty_thousand_long_failures_stay_under_githubs_limit() {
    let input = generated(50_000, 2_000, 400, 1);
    let report = check_run_report(&input);
    assert_capped(&report.summary, &input);
    assert!(report.summary.contains("… and "), "rows were left out");
    assert_eq!(report.conclusion, "failure");
    assert_capped(&pr_comment_body(&input, Some("https://x/runs/1")), &input);
}

#[test]
fn bodies_stay_capped_and_whole_for_any_size() {
    for (seed, (failures, newly, name_len)) in [
        (0, 0, 10),
        (1, 0, 10),
        (0, 1, 10),
        (10, 10, 5),
        (100, 3, 2_000),
        (1_000, 0, 50),
        (3_000, 500, 120),
        (10_000, 10, 1),
        (20_000, 20_000, 300),
    ]
    .into_iter()
    .enumerate()
    {
        let input = generated(failures, newly, name_len, seed as u64 + 7);
        assert_capped(&check_run_report(&input).summary, &input);
        assert_capped(&pr_comment_body(&input, None), &input);
    }
}

#[test]
fn shortening_never_cuts_a_character() {
    for text in [
        "🦀".repeat(400),
        "é".repeat(301),
        "a".repeat(300),
        String::new(),
    ] {
        let short = shorten(&text, 300);
        assert!(short.chars().count() <= 300);
        if text.chars().count() <= 300 {
            assert_eq!(short, text);
        } else {
            assert!(short.ends_with('…'));
        }
    }
    assert_eq!(escape_cell("a\u{0}b\r\nc"), "a b  c");
}
