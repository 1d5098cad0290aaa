//! The worked examples of `docs/scoring.md`, checked: if a number here changes, the document
//! must change with it.

mod support;

use flakeguard_core::scoring::{Priority, Recommendation, Status};
use support::{Builder, judge, times};

struct Expected {
    history: String,
    status: Status,
    probability: f64,
    confidence: f64,
    legacy: f64,
    recommendation: Recommendation,
    priority: Option<Priority>,
}

fn check(name: &str, e: Expected) {
    let s = judge("main", &e.history);
    let close = |a: f64, b: f64| (a - b).abs() < 0.005;
    assert_eq!(s.status, e.status, "{name}: {s:?}");
    assert!(
        close(s.probability, e.probability),
        "{name}: P = {}",
        s.probability
    );
    assert!(
        close(s.confidence, e.confidence),
        "{name}: confidence = {}",
        s.confidence
    );
    assert!(
        close(s.legacy_score, e.legacy),
        "{name}: legacy = {}",
        s.legacy_score
    );
    assert_eq!(s.recommendation, e.recommendation, "{name}");
    assert_eq!(s.priority, e.priority, "{name}");
}

#[test]
fn the_table_of_worked_examples_in_the_scoring_document_holds() {
    use Recommendation::{None as NoAction, Quarantine};
    use Status::{Broken, Flaky, Stable};
    let rows = [
        (
            "one retried failure in a short history",
            "P P P FP P P P P".to_string(),
            Flaky,
            0.70,
            0.95,
            0.34,
            NoAction,
            None,
        ),
        (
            "one retried failure among 42 executions",
            format!("{} FP {}", times("P", 20), times("P", 20)),
            Stable,
            0.23,
            0.0,
            0.27,
            NoAction,
            None,
        ),
        (
            "two retried failures among 44 executions",
            format!(
                "{} FP {} FP {}",
                times("P", 10),
                times("P", 10),
                times("P", 20)
            ),
            Flaky,
            0.90,
            0.99,
            0.33,
            Quarantine,
            Some(Priority::Medium),
        ),
        (
            "one failure among 41 executions",
            format!("{} F {}", times("P", 20), times("P", 20)),
            Stable,
            0.23,
            0.0,
            0.02,
            NoAction,
            None,
        ),
        (
            "two failures three runs apart",
            format!("{} F P P F {}", times("P", 20), times("P", 20)),
            Flaky,
            0.89,
            0.99,
            0.08,
            Quarantine,
            Some(Priority::Medium),
        ),
        (
            "two failures in a row",
            format!("{} F F {}", times("P", 20), times("P", 20)),
            Stable,
            0.20,
            0.0,
            0.07,
            NoAction,
            None,
        ),
        (
            "three isolated failures in 20 runs",
            "P P F P P P P F P P P P P P F P P P P P".to_string(),
            Flaky,
            1.00,
            1.00,
            0.14,
            Quarantine,
            Some(Priority::High),
        ),
        (
            "broken for the last 4 runs",
            format!("{} {}", times("P", 12), times("F", 4)),
            Broken,
            0.00,
            0.97,
            0.07,
            NoAction,
            None,
        ),
        (
            "broken for 5 runs, then fixed",
            format!("{} {} {}", times("P", 8), times("F", 5), times("P", 8)),
            Stable,
            0.01,
            0.95,
            0.07,
            NoAction,
            None,
        ),
        (
            "strict alternation, 20 runs",
            times("P F", 10),
            Flaky,
            1.00,
            1.00,
            0.36,
            Quarantine,
            Some(Priority::Critical),
        ),
        (
            "ten failures passing on retry",
            times("FP", 10),
            Flaky,
            1.00,
            1.00,
            0.732,
            Quarantine,
            Some(Priority::Critical),
        ),
        (
            "always failing, 20 runs",
            times("F", 20),
            Broken,
            0.00,
            0.99,
            0.095,
            NoAction,
            None,
        ),
        (
            "5 passes",
            times("P", 5),
            Stable,
            0.06,
            0.46,
            0.0,
            NoAction,
            None,
        ),
        (
            "50 passes",
            times("P", 50),
            Stable,
            0.02,
            0.79,
            0.0,
            NoAction,
            None,
        ),
    ];
    for (name, history, status, probability, confidence, legacy, recommendation, priority) in rows {
        check(
            name,
            Expected {
                history,
                status,
                probability,
                confidence,
                legacy,
                recommendation,
                priority,
            },
        );
    }
}

#[test]
fn a_pr_that_breaks_a_test_and_fixes_it_before_merging_is_stable() {
    // docs/scoring.md: 9 failures on the pull request (3 attempts × 3 runs), P(flaky) ≈ 0.
    let mut b = Builder::new(1);
    b.history("main", &times("P", 10));
    b.history("feature/x", "FFF rFFF FFF P P");
    b.history("main", &times("P", 10));
    let s = b.score_first();
    assert_eq!(s.status, Status::Stable);
    assert!(s.probability < 0.005, "{}", s.probability);
    assert_eq!((s.failures, s.executions), (9, 31));
}
