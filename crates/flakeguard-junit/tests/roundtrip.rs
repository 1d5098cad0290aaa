//! Property test: reports written by quick-junit (nextest's serializer) read back with the
//! same testcases, statuses, messages, text and retry attempts.

mod support;

use flakeguard_core::Outcome;
use flakeguard_junit::FailureKind;
use proptest::prelude::*;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestRerun, TestSuite};

#[derive(Debug, Clone)]
enum Planned {
    Pass {
        flaky: Vec<bool>,
    },
    Fail {
        error: bool,
        message: Option<String>,
        text: Option<String>,
        reruns: Vec<bool>,
    },
    Skip {
        message: Option<String>,
    },
}

fn word() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_<>&'\"é𝄞()/.:-][a-zA-Z0-9 _<>&'\"é𝄞()/.:-]{0,24}[a-zA-Z0-9_)é]".prop_map(|s| s)
}

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 _<>&'\"é\n()/.:=-]{1,200}".prop_filter("not blank", |s| !s.trim().is_empty())
}

fn planned() -> impl Strategy<Value = Planned> {
    prop_oneof![
        prop::collection::vec(any::<bool>(), 0..3).prop_map(|flaky| Planned::Pass { flaky }),
        (
            any::<bool>(),
            prop::option::of(word()),
            prop::option::of(text()),
            prop::collection::vec(any::<bool>(), 0..3)
        )
            .prop_map(|(error, message, text, reruns)| Planned::Fail {
                error,
                message,
                text,
                reruns
            }),
        prop::option::of(word()).prop_map(|message| Planned::Skip { message }),
    ]
}

fn kind(error: bool) -> NonSuccessKind {
    if error {
        NonSuccessKind::Error
    } else {
        NonSuccessKind::Failure
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn quick_junit_reports_read_back_faithfully(
        suites in prop::collection::vec((word(), prop::collection::vec((word(), word(), planned()), 1..8)), 1..4)
    ) {
        let mut report = Report::new("roundtrip");
        for (suite_name, cases) in &suites {
            let mut suite = TestSuite::new(suite_name.as_str());
            for (i, (class, name, plan)) in cases.iter().enumerate() {
                let name = format!("{name} #{i}");
                let status = match plan {
                    Planned::Pass { flaky } => TestCaseStatus::Success {
                        flaky_runs: flaky.iter().map(|e| TestRerun::new(kind(*e))).collect(),
                    },
                    Planned::Fail { error, message, text, reruns } => {
                        let mut status = TestCaseStatus::non_success(kind(*error));
                        if let Some(m) = message { status.set_message(m.as_str()); }
                        if let Some(t) = text { status.set_description(t.as_str()); }
                        status.add_reruns(reruns.iter().map(|e| TestRerun::new(kind(*e))));
                        status
                    }
                    Planned::Skip { message } => {
                        let mut status = TestCaseStatus::skipped();
                        if let Some(m) = message { status.set_message(m.as_str()); }
                        status
                    }
                };
                let mut case = TestCase::new(name, status);
                case.set_classname(class.as_str());
                suite.add_test_case(case);
            }
            report.add_test_suite(suite);
        }
        let xml = report.to_string().expect("quick-junit serializes");
        let (read, _) = support::read_all(xml.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}\n{xml}")))?;

        let expected: Vec<(&String, &String, String, &Planned)> = suites
            .iter()
            .flat_map(|(s, cases)| cases.iter().enumerate().map(move |(i, (c, n, p))| (s, c, format!("{n} #{i}"), p)))
            .collect();
        prop_assert_eq!(read.len(), expected.len());
        for (case, (suite, class, name, plan)) in read.iter().zip(expected) {
            // Suite names are whitespace-normalized on read (they are part of test identity).
            prop_assert_eq!(case.suite.name(), flakeguard_core::key::collapse_whitespace(suite));
            prop_assert_eq!(case.classname.as_deref(), Some(class.as_str()));
            prop_assert_eq!(&case.name, &name);
            match plan {
                Planned::Pass { flaky } => {
                    prop_assert_eq!(case.status, Outcome::Passed);
                    prop_assert_eq!(case.retries.len(), flaky.len());
                    prop_assert_eq!(case.attempts().len(), flaky.len() + 1);
                    prop_assert_eq!(case.is_flaky_within(), !flaky.is_empty());
                }
                Planned::Fail { error, message, text, reruns } => {
                    prop_assert_eq!(case.status, if *error { Outcome::Error } else { Outcome::Failed });
                    let failure = case.final_failure().expect("a failing case has its failure");
                    prop_assert_eq!(failure.message.as_deref(), message.as_deref());
                    // quick-junit trims the text it writes; compare the content.
                    prop_assert_eq!(failure.text.text.trim(), text.as_deref().unwrap_or("").trim());
                    prop_assert_eq!(case.retries.len(), reruns.len());
                    prop_assert!(case.retries.iter().all(|r| r.kind.is_rerun()));
                    for (r, e) in case.retries.iter().zip(reruns) {
                        prop_assert_eq!(r.kind, if *e { FailureKind::RerunError } else { FailureKind::RerunFailure });
                    }
                    prop_assert!(case.attempts().iter().all(|a| a.outcome.is_failure()));
                }
                Planned::Skip { message } => {
                    prop_assert_eq!(case.status, Outcome::Skipped);
                    prop_assert_eq!(case.skipped_message.as_deref(), message.as_deref());
                }
            }
        }
    }
}
