//! The scoring rules, one worked example each, on small hand-built histories.

mod support;

use flakeguard_core::scoring::{EvidenceKind, Priority, Recommendation, Status, TestScore};
use flakeguard_core::{Outcome, Policy, score_all};
use support::{Builder, judge, times};
use time::Duration;

fn evidence(score: &TestScore, kind: EvidenceKind) -> Option<Vec<u32>> {
    score
        .evidence
        .iter()
        .find(|e| e.kind == kind)
        .map(|e| e.runs.clone())
}

// ---- Evidence and status -------------------------------------------------------------------

#[test]
fn retry_pass_after_failure_on_same_commit_is_flaky() {
    let s = judge("main", "P P P FP P P P P");
    assert_eq!(s.status, Status::Flaky, "{s:?}");
    assert!(s.probability > 0.6, "{}", s.probability);
    assert_eq!(evidence(&s, EvidenceKind::Retry), Some(vec![3]));
    assert_eq!((s.executions, s.failures), (9, 1));
    assert!(s.reason.contains("same commit"), "{}", s.reason);
}

#[test]
fn rerun_of_a_failed_ci_run_that_passes_is_retry_evidence() {
    let s = judge("main", "P P P F rP P P P");
    assert_eq!(s.status, Status::Flaky);
    assert_eq!(evidence(&s, EvidenceKind::Retry), Some(vec![3, 4]));
}

#[test]
fn pass_and_fail_on_the_same_commit_in_different_runs_is_commit_evidence() {
    let s = judge("main", "P P F =P P P P");
    assert_eq!(s.status, Status::Flaky);
    assert_eq!(evidence(&s, EvidenceKind::Commit), Some(vec![2, 3]));
    assert_eq!(evidence(&s, EvidenceKind::Retry), None);
}

#[test]
fn intermittent_failures_across_commits_without_reruns_are_flaky() {
    // Three isolated failures in twenty runs, every run on a new commit: no re-run anywhere.
    let s = judge("main", "P P F P P P P F P P P P P P F P P P P P");
    assert_eq!(s.status, Status::Flaky, "{s:?}");
    assert!(s.probability > 0.9, "{}", s.probability);
    assert_eq!(evidence(&s, EvidenceKind::History), Some(vec![2, 7, 14]));
    assert_eq!(s.recommendation, Recommendation::Quarantine);
}

#[test]
fn a_single_failure_is_not_enough_to_call_a_test_flaky() {
    let s = judge("main", &format!("{} F {}", times("P", 20), times("P", 20)));
    assert_eq!(s.status, Status::Stable, "{s:?}");
    assert!(s.probability < 0.3, "{}", s.probability);
    assert_eq!(s.recommendation, Recommendation::None);
}

#[test]
fn one_retried_failure_in_a_long_history_is_noise_but_two_are_flaky() {
    // One failure in 42 executions, even retried into a pass, is within the noise a stable
    // test shows (ε); the retry evidence is still reported.
    let once = judge("main", &format!("{} FP {}", times("P", 20), times("P", 20)));
    assert_eq!(once.status, Status::Stable, "{once:?}");
    assert!(once.probability < 0.3, "{}", once.probability);
    assert_eq!(evidence(&once, EvidenceKind::Retry), Some(vec![20]));
    assert!(once.reason.contains("passed on retry"), "{}", once.reason);
    let twice = judge(
        "main",
        &format!(
            "{} FP {} FP {}",
            times("P", 10),
            times("P", 10),
            times("P", 20)
        ),
    );
    assert_eq!(twice.status, Status::Flaky, "{twice:?}");
    assert!(twice.probability > 0.85, "{}", twice.probability);
    assert_eq!(twice.recommendation, Recommendation::Quarantine);
}

#[test]
fn one_failure_across_commits_is_never_enough_to_call_a_test_flaky() {
    // In a short history the model rates a lone failure likely flaky, but a commit that broke
    // the test and the next one that fixed it tell the same story: flaky needs two failures or
    // same-commit evidence, and only flaky tests are quarantined.
    let anything = Policy {
        min_recent_failures: 0,
        ..Policy::default()
    };
    let mut b = Builder::new(1);
    b.history("main", "P P P F P P P P");
    let s = b.score(&anything).swap_remove(0);
    assert!(s.probability > 0.6, "{}", s.probability);
    assert_eq!(s.status, Status::Stable, "{s:?}");
    assert_eq!(s.recommendation, Recommendation::Warn);
}

#[test]
fn two_adjacent_failures_between_passes_look_like_a_break_and_its_fix() {
    // Without a re-run, two failures in a row on consecutive commits are as well explained by
    // a commit that broke the test and the next one that fixed it: not called flaky.
    let adjacent = judge(
        "main",
        &format!("{} F F {}", times("P", 20), times("P", 20)),
    );
    assert_eq!(adjacent.status, Status::Stable, "{adjacent:?}");
    assert!(adjacent.probability < 0.5, "{}", adjacent.probability);
    let apart = judge(
        "main",
        &format!("{} F P P F {}", times("P", 20), times("P", 20)),
    );
    assert_eq!(apart.status, Status::Flaky, "{apart:?}");
}

#[test]
fn failing_since_a_commit_on_main_is_broken_not_flaky() {
    let s = judge("main", &format!("{} {}", times("P", 12), times("F", 4)));
    assert_eq!(s.status, Status::Broken, "{s:?}");
    assert!(s.probability < 0.05, "{}", s.probability);
    assert_eq!(s.consecutive_failures, 4);
    assert!(
        s.reason
            .contains("on main in the last 4 executions since commit"),
        "{}",
        s.reason
    );
}

#[test]
fn broken_test_is_never_recommended_for_quarantine() {
    // Even with retries that fail too and a policy that would quarantine anything.
    let anything = Policy {
        warn_threshold: 0.0,
        flaky_threshold: 0.0,
        min_occurrences: 1,
        min_recent_failures: 0,
        ..Policy::default()
    };
    let mut b = Builder::new(1);
    b.history("main", &format!("{} {}", times("P", 10), times("FFF", 6)));
    let s = b.score(&anything).swap_remove(0);
    assert_eq!(s.status, Status::Broken);
    assert_eq!(s.recommendation, Recommendation::None);
    assert_eq!(s.priority, None);
}

#[test]
fn broken_then_fixed_on_main_is_stable() {
    let s = judge(
        "main",
        &format!("{} {} {}", times("P", 8), times("F", 5), times("P", 8)),
    );
    assert_eq!(s.status, Status::Stable, "{s:?}");
    assert!(s.probability < 0.3, "{}", s.probability);
    assert_eq!(s.recommendation, Recommendation::None);
    assert!(s.reason.contains("later undone"), "{}", s.reason);
}

#[test]
fn failure_streak_on_a_pr_branch_fixed_on_that_branch_is_neither_broken_nor_flaky() {
    let mut b = Builder::new(1);
    b.history("main", &times("P", 10));
    // The PR breaks the test (CI re-run fails again, retries fail too), then fixes it.
    b.history("feature/x", "FFF rFFF FFF P P");
    b.history("main", &times("P", 10));
    let s = b.score_first();
    assert_eq!(s.status, Status::Stable, "{s:?}");
    assert!(s.probability < 0.05, "{}", s.probability);
    assert_eq!(s.recommendation, Recommendation::None);
    assert!(s.evidence.is_empty(), "{:?}", s.evidence);
}

#[test]
fn failing_on_an_abandoned_pr_branch_is_not_broken() {
    let mut b = Builder::new(1);
    b.history("main", &times("P", 10));
    b.history("feature/y", "F F F");
    b.history("main", &times("P", 3));
    let s = b.score_first();
    assert_eq!(s.status, Status::Stable, "{s:?}");
    assert!(s.probability < 0.1, "{}", s.probability);
}

#[test]
fn a_pr_branched_from_a_broken_main_inherits_the_breakage() {
    // Main breaks; pull requests opened meanwhile fail from their first run; main is fixed.
    // Failing from the start of each pull request is the code's doing, not flakiness.
    let mut b = Builder::new(1);
    b.history("main", &format!("{} {}", times("P", 10), times("F", 3)));
    b.history("pr-1", "F F");
    b.history("main", "F F");
    b.history("pr-2", "F");
    b.history("pr-3", "F F");
    b.history("main", &times("P", 6));
    let s = b.score_first();
    assert_eq!(s.status, Status::Stable, "{s:?}");
    assert!(s.probability < 0.1, "{}", s.probability);
}

#[test]
fn too_few_executions_without_same_commit_evidence_is_insufficient_data() {
    let s = judge("main", "P F P");
    assert_eq!(s.status, Status::InsufficientData);
    assert_eq!(s.recommendation, Recommendation::None);
    assert!(s.reason.starts_with("Not enough data"), "{}", s.reason);
}

#[test]
fn same_commit_evidence_is_enough_even_with_few_executions() {
    let s = judge("main", "FP P");
    assert_eq!(s.status, Status::Flaky);
    // ... but the policy still wants min_occurrences before recommending anything.
    assert_eq!(s.recommendation, Recommendation::None);
    assert!(
        s.reason.contains("no recommendation before 5"),
        "{}",
        s.reason
    );
}

#[test]
fn a_test_that_always_passes_is_stable_and_confidence_grows_with_history() {
    let short = judge("main", &times("P", 5));
    let long = judge("main", &times("P", 50));
    assert_eq!(
        (short.status, long.status),
        (Status::Stable, Status::Stable)
    );
    assert!(short.probability < 0.1 && long.probability < short.probability);
    assert!(
        long.confidence > short.confidence,
        "{} {}",
        long.confidence,
        short.confidence
    );
    assert!(long.confidence > 0.75, "{}", long.confidence);
    assert_eq!(long.reason, "Stable: passed all 50 executions.");
}

#[test]
fn skipped_executions_are_not_evidence() {
    let s = judge("main", &format!("{} S S S", times("P", 6)));
    assert_eq!(s.executions, 6);
    assert_eq!(s.status, Status::Stable);
}

#[test]
fn rates_and_streaks_are_counted_over_the_window() {
    let s = judge("main", "P F P P F F");
    assert_eq!((s.executions, s.failures), (6, 3));
    assert!((s.failure_rate - 0.5).abs() < 1e-12);
    // P→F, F→P, P→F: 3 flips in 5 pairs.
    assert!((s.flip_rate - 0.6).abs() < 1e-12);
    assert_eq!(s.consecutive_failures, 2);
}

#[test]
fn the_window_keeps_the_most_recent_runs_with_all_their_attempts() {
    let policy = Policy {
        rolling_window_size: 5,
        ..Policy::default()
    };
    let mut b = Builder::new(1);
    b.history("main", "F F F F P P P FP P");
    let s = b.score(&policy).swap_remove(0);
    // The last five runs: P P P FP P, six executions.
    assert_eq!((s.executions, s.failures), (6, 1));
}

#[test]
fn runs_without_commit_or_branch_are_still_judged() {
    let mut b = Builder::new(1);
    b.history("", &times("P F P P", 5));
    for run in &mut b.runs {
        run.commit = None;
    }
    let s = b.score_first();
    assert_eq!(s.status, Status::Flaky, "{s:?}");
}

#[test]
fn failing_on_one_job_of_a_matrix_and_passing_on_another_is_broken_not_flaky() {
    // Every CI run tests the commit on Linux and on Windows; from run 10 on, the test fails on
    // Windows only. Same commit, same CI run, different outcomes: but different platforms.
    let mut b = Builder::new(1);
    for i in 0..16 {
        let windows: &[&str] = if i >= 10 { &["F"] } else { &["P"] };
        b.matrix(
            "main",
            &[("test (linux)", &["P"]), ("test (windows)", windows)],
        );
    }
    let s = b.score_first();
    assert_eq!(s.status, Status::Broken, "{s:?}");
    assert!(s.evidence.is_empty(), "{:?}", s.evidence);
    assert_eq!(s.recommendation, Recommendation::None);
}

#[test]
fn a_retry_pass_within_one_job_of_a_matrix_is_still_retry_evidence() {
    let mut b = Builder::new(1);
    for i in 0..16 {
        let linux: &[&str] = if i % 5 == 2 { &["FP"] } else { &["P"] };
        b.matrix(
            "main",
            &[("test (linux)", linux), ("test (windows)", &["P"])],
        );
    }
    let s = b.score_first();
    assert_eq!(s.status, Status::Flaky, "{s:?}");
    assert_eq!(evidence(&s, EvidenceKind::Retry).map(|r| r.len()), Some(3));
}

// ---- Infrastructure guards ------------------------------------------------------------------

#[test]
fn failures_in_an_outage_run_are_not_flake_evidence() {
    // 20 tests; in run 5, 15 of them fail (75% > 30%), then the CI run is re-run and passes.
    let mut b = Builder::new(20);
    for _ in 0..5 {
        b.run("main", "", &[]);
    }
    b.run("main", "", &["F"; 15]);
    b.run("main", "r", &[]);
    for _ in 0..5 {
        b.run("main", "", &[]);
    }
    let scores = b.score(&Policy::default());
    for s in &scores[..15] {
        assert_eq!(s.status, Status::Stable, "{s:?}");
        assert_eq!(s.infra_excluded, 1);
        assert_eq!(s.failures, 1);
        assert!(s.evidence.is_empty());
        assert!(
            s.reason.contains("1 failure discounted as infrastructure"),
            "{}",
            s.reason
        );
    }
}

#[test]
fn a_small_run_where_everything_fails_is_not_an_outage() {
    // Fewer failing tests than infra_signature_min_tests: a two-test project is not an outage.
    let mut b = Builder::new(2);
    b.run("main", "", &["F", "F"]);
    b.run("main", "r", &["P", "P"]);
    let s = b.score_first();
    assert_eq!(s.infra_excluded, 0);
    assert_eq!(s.status, Status::Flaky);
}

#[test]
fn a_signature_shared_by_many_tests_in_one_run_is_infrastructure() {
    // 100 tests; one job loses its database: 12 tests fail with "connection refused" (12%,
    // under the outage share), twice over the history.
    let mut b = Builder::new(100);
    let lost = vec!["X"; 12];
    for i in 0..30 {
        let outcomes: &[&str] = if i == 8 || i == 21 { &lost } else { &[] };
        b.run("main", "", outcomes);
    }
    let scores = b.score(&Policy::default());
    for s in &scores[..12] {
        assert_eq!(s.infra_excluded, 2, "{s:?}");
        assert_eq!(s.status, Status::Stable);
        assert!(s.probability < 0.05);
    }
    assert_eq!(scores[12].infra_excluded, 0);
}

#[test]
fn a_shared_signature_failing_every_run_since_a_commit_is_not_hidden() {
    // A shared helper breaks at run 20 and 12 tests fail with the same message in every run
    // after: concentrated in no few runs, so it stays evidence and the tests are broken.
    let mut b = Builder::new(100);
    let broken = vec!["X"; 12];
    for i in 0..30 {
        let outcomes: &[&str] = if i >= 20 { &broken } else { &[] };
        b.run("main", "", outcomes);
    }
    let scores = b.score(&Policy::default());
    for s in &scores[..12] {
        assert_eq!(s.infra_excluded, 0, "{s:?}");
        assert_eq!(s.status, Status::Broken);
    }
}

#[test]
fn a_shared_signature_is_judged_on_the_runs_of_its_own_branch() {
    // Main is broken by a shared helper for its last 8 runs; busy pull requests opened before
    // the break keep passing in between. Counted over all runs the signature would look
    // concentrated; on main's own runs it is not, so it stays evidence.
    let mut b = Builder::new(60);
    let broken = vec!["X"; 12];
    for i in 0..20 {
        b.run("main", "", &[]);
        if i >= 17 {
            b.run(&format!("pr-{i}"), "", &[]);
        }
    }
    for _ in 0..8 {
        b.run("main", "", &broken);
        for pr in 17..20 {
            b.run(&format!("pr-{pr}"), "", &[]);
        }
    }
    let scores = b.score(&Policy::default());
    assert_eq!(scores[0].infra_excluded, 0, "{:?}", scores[0]);
    assert_eq!(scores[0].status, Status::Broken);
}

// ---- Policy and recommendations ----------------------------------------------------------

#[test]
fn no_recommendation_below_min_occurrences() {
    let policy = Policy {
        min_occurrences: 40,
        ..Policy::default()
    };
    let mut b = Builder::new(1);
    b.history("main", &times("P FP", 10));
    let s = b.score(&policy).swap_remove(0);
    assert_eq!(s.status, Status::Flaky);
    assert_eq!(s.recommendation, Recommendation::None);
    assert_eq!(s.priority, None);
}

#[test]
fn no_recommendation_without_enough_recent_failures() {
    let mut b = Builder::new(1);
    b.history("main", &times("P FP", 10));
    // Twenty quiet days: the failures are older than the 7-day lookback.
    b.wait_hours(20 * 24);
    b.history("main", &times("P", 3));
    let s = b.score_first();
    assert_eq!(s.status, Status::Flaky);
    assert_eq!(s.recent_failures, 0);
    assert_eq!(s.recommendation, Recommendation::None);
    assert!(
        s.reason.contains("0 failures in the last 7 days"),
        "{}",
        s.reason
    );
}

#[test]
fn quarantine_at_or_above_the_flaky_threshold_and_warn_between_thresholds() {
    // Two failures three runs apart in 44: P(flaky) ≈ 0.90.
    let mut b = Builder::new(1);
    b.history(
        "main",
        &format!("{} F P P F {}", times("P", 20), times("P", 20)),
    );
    let quarantine = b.score(&Policy::default()).swap_remove(0);
    assert!(
        (0.85..0.93).contains(&quarantine.probability),
        "{}",
        quarantine.probability
    );
    assert_eq!(quarantine.recommendation, Recommendation::Quarantine);
    let strict = Policy {
        flaky_threshold: 0.95,
        ..Policy::default()
    };
    let warn = b.score(&strict).swap_remove(0);
    assert_eq!(warn.status, Status::Flaky);
    assert_eq!(warn.recommendation, Recommendation::Warn);
    assert!(warn.reason.ends_with("worth a warning."), "{}", warn.reason);
}

#[test]
fn confidence_threshold_holds_back_weakly_supported_recommendations() {
    let mut b = Builder::new(1);
    b.history(
        "main",
        &format!("{} F P P F {}", times("P", 20), times("P", 20)),
    );
    let relaxed = b.score(&Policy::default()).swap_remove(0);
    assert_eq!(
        relaxed.recommendation,
        Recommendation::Quarantine,
        "{relaxed:?}"
    );
    assert!(relaxed.confidence < 0.99, "{}", relaxed.confidence);
    let demanding = Policy {
        confidence_threshold: 0.99,
        ..Policy::default()
    };
    let held = b.score(&demanding).swap_remove(0);
    assert_eq!(held.recommendation, Recommendation::None);
    assert!(held.reason.contains("confidence"), "{}", held.reason);
}

#[test]
fn priority_grows_with_impact() {
    // Light: 2 failures in 60 executions. Heavy: fails every other run.
    let light = judge(
        "main",
        &format!("{} FP {} FP", times("P", 30), times("P", 27)),
    );
    let heavy = judge("main", &times("FP P", 15));
    assert_eq!(
        light.recommendation,
        Recommendation::Quarantine,
        "{light:?}"
    );
    assert_eq!(heavy.recommendation, Recommendation::Quarantine);
    assert_eq!(light.priority, Some(Priority::Medium));
    assert_eq!(heavy.priority, Some(Priority::Critical));
}

// ---- Default branch ------------------------------------------------------------------------

#[test]
fn master_is_the_default_branch_when_there_is_no_main() {
    let s = judge("master", &format!("{} {}", times("P", 10), times("F", 3)));
    assert_eq!(s.status, Status::Broken);
    assert!(s.reason.contains("on master"), "{}", s.reason);
}

#[test]
fn a_configured_default_branch_is_where_broken_is_judged() {
    let mut b = Builder::new(1);
    b.history("main", &times("P", 10));
    b.history("develop", &format!("{} {}", times("P", 5), times("F", 3)));
    let inferred = b.score_first();
    assert_eq!(inferred.status, Status::Stable, "{inferred:?}");
    let develop = Policy {
        default_branch: Some("develop".into()),
        ..Policy::default()
    };
    let configured = b.score(&develop).swap_remove(0);
    assert_eq!(configured.status, Status::Broken, "{configured:?}");
}

// ---- Determinism -------------------------------------------------------------------------

#[test]
fn the_same_input_gives_the_same_output_whatever_the_order_of_executions() {
    let mut b = Builder::new(3);
    for i in 0..20 {
        let outcomes = match i % 4 {
            0 => ["FP", "P", "F"],
            1 => ["P", "F", "F"],
            _ => ["P", "P", "P"],
        };
        b.run("main", "", &outcomes);
    }
    let first = b.score(&Policy::default());
    assert_eq!(first, b.score(&Policy::default()));
    for test in &mut b.tests {
        test.executions.reverse();
    }
    assert_eq!(first, b.score(&Policy::default()));
}

#[test]
fn executions_pointing_outside_the_runs_are_ignored() {
    let mut b = Builder::new(1);
    b.history("main", &times("P", 6));
    b.tests[0].executions.push(flakeguard_core::Execution {
        run: 999,
        attempt: 1,
        outcome: Outcome::Failed,
        duration_ms: None,
        signature: None,
    });
    assert_eq!(b.score_first().executions, 6);
}

#[test]
fn an_empty_history_scores_without_panicking() {
    let now = support::START + Duration::days(1);
    assert!(score_all(&[], &[], &Policy::default(), now).is_empty());
    let b = Builder::new(1);
    let s = b.score_first();
    assert_eq!(s.status, Status::InsufficientData);
    assert_eq!((s.probability < 0.2, s.confidence), (true, 0.0));
}

// ---- The earlier product's score ---------------------------------------------------------

#[test]
fn legacy_score_of_strict_alternation_is_about_0_360() {
    let s = judge("main", &times("P F", 10));
    assert!(
        (s.legacy_score - 0.360).abs() < 0.0005,
        "{}",
        s.legacy_score
    );
}

#[test]
fn legacy_score_of_ten_failures_passing_on_retry_is_about_0_732() {
    let s = judge("main", &times("FP", 10));
    assert!(
        (s.legacy_score - 0.732).abs() < 0.0005,
        "{}",
        s.legacy_score
    );
}

#[test]
fn legacy_score_of_a_test_that_always_fails_is_about_0_095() {
    let s = judge("main", &times("F", 20));
    assert!(
        (s.legacy_score - 0.0945).abs() < 0.0005,
        "{}",
        s.legacy_score
    );
}

#[test]
fn legacy_score_is_zero_without_failures_or_with_one_execution() {
    assert_eq!(judge("main", &times("P", 10)).legacy_score, 0.0);
    assert_eq!(judge("main", "F").legacy_score, 0.0);
}
