//! Snapshots of what the reader understands in a representative set of real reports:
//! identities, statuses, attempts and failure summaries, one line per testcase.

mod support;

use std::fmt::Write;

use flakeguard_junit::{Limits, SummaryBuilder};

fn render(rel: &str) -> String {
    let mut reader = flakeguard_junit::open(&support::fixture(rel), Limits::default()).expect(rel);
    let mut out = String::new();
    let mut summary = SummaryBuilder::default();
    let mut lines = 0;
    while let Some(case) = reader.next_case().expect(rel) {
        summary.add(&case);
        lines += 1;
        if lines > 12 {
            continue;
        }
        let attempts: Vec<&str> = case.attempts().iter().map(|a| a.outcome.as_str()).collect();
        let failure: String = case
            .final_failure()
            .map(|f| f.summary().chars().take(70).collect())
            .unwrap_or_default();
        writeln!(
            out,
            "{} | {} | {} | {}",
            case.key,
            case.status.as_str(),
            attempts.join(","),
            failure.replace('\n', " ")
        )
        .unwrap();
    }
    if lines > 12 {
        writeln!(out, "… {} more testcases", lines - 12).unwrap();
    }
    writeln!(out, "dialect: {}", reader.dialect()).unwrap();
    writeln!(out, "{:?}", summary.finish()).unwrap();
    for issue in reader.issues().lines() {
        writeln!(out, "issue: {issue}").unwrap();
    }
    out
}

macro_rules! snapshot {
    ($name:ident, $rel:expr) => {
        #[test]
        fn $name() {
            insta::assert_snapshot!(render($rel));
        }
    };
}

snapshot!(jest_junit, "junit/jest/dorny-test-reporter__jest-junit.xml");
snapshot!(
    pytest_rerun_repeats,
    "junit/pytest/mikepenz-ajr__flaky_success_first.xml"
);
snapshot!(
    surefire_flaky,
    "junit/surefire/jenkins-junit-plugin__TEST-io.olamy.FlakyTest.xml"
);
snapshot!(
    nextest_retries,
    "junit/nextest/nextest__fixture-project-junit.xml"
);
snapshot!(
    playwright_projects,
    "junit/playwright/launchable-cli__playwright__report.xml"
);
snapshot!(go_junit_report, "junit/go/go-junit-report__001-report.xml");
snapshot!(phpunit, "junit/phpunit/dorny-test-reporter__phpunit.xml");
snapshot!(
    multiresult,
    "junit/edge-cases/enricomi-putra__junit.multiresult.xml"
);
snapshot!(utf16_bom, "junit/malformed/xunit-viewer__utf-16.xml");
snapshot!(
    googletest,
    "junit/googletest/launchable-cli__fail__output.xml"
);
snapshot!(gradle, "junit/gradle/launchable-cli__reports__1.xml");
snapshot!(
    russian_unicode,
    "junit/edge-cases/xunit-viewer__russian-unicode.xml"
);
