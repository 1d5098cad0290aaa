//! From a verdict to what the policy says to do about it (none, warn, quarantine) with a
//! priority, and the one-sentence reason shown to people.

use crate::model::Run;
use crate::policy::Policy;

use super::bayes::Judgement;
use super::evidence::Facts;
use super::runs::RunTable;
use super::{Priority, Recommendation, Status};

/// Why there is no recommendation, or that there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gate {
    Recommended,
    Broken,
    InsufficientData,
    TooFewExecutions,
    TooFewRecentFailures,
    LowConfidence,
    BelowWarn,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Advice {
    pub(crate) recommendation: Recommendation,
    pub(crate) priority: Option<Priority>,
    pub(crate) gate: Gate,
}

/// How much a test hurts: heavy when it fails at least one execution in five or five times in
/// the lookback, moderate at one in twenty or three times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Impact {
    Light,
    Moderate,
    Heavy,
}

fn impact(facts: &Facts) -> Impact {
    let rate = facts.failure_rate();
    if rate >= 0.2 || facts.recent_failures >= 5 {
        Impact::Heavy
    } else if rate >= 0.05 || facts.recent_failures >= 3 {
        Impact::Moderate
    } else {
        Impact::Light
    }
}

pub(crate) fn recommend(
    status: Status,
    judgement: &Judgement,
    facts: &Facts,
    policy: &Policy,
) -> Advice {
    let none = |gate| Advice {
        recommendation: Recommendation::None,
        priority: None,
        gate,
    };
    let p = judgement.probability;
    // A broken test needs a fix; hiding it behind a quarantine would hide a real regression.
    if status == Status::Broken {
        return none(Gate::Broken);
    }
    if status == Status::InsufficientData {
        return none(Gate::InsufficientData);
    }
    if facts.clean_executions < policy.min_occurrences as usize {
        return none(Gate::TooFewExecutions);
    }
    if facts.recent_failures < policy.min_recent_failures {
        return none(Gate::TooFewRecentFailures);
    }
    if judgement.confidence < policy.confidence_threshold {
        return none(Gate::LowConfidence);
    }
    // Only a test judged flaky is quarantined; a stable one this suspicious is worth a warning.
    let recommendation = if p >= policy.flaky_threshold && status == Status::Flaky {
        Recommendation::Quarantine
    } else if p >= policy.warn_threshold {
        Recommendation::Warn
    } else {
        return none(Gate::BelowWarn);
    };
    let priority = match (recommendation, impact(facts)) {
        (Recommendation::Quarantine, Impact::Heavy) => Priority::Critical,
        (Recommendation::Quarantine, Impact::Moderate) => Priority::High,
        (Recommendation::Quarantine, Impact::Light) | (_, Impact::Heavy) => Priority::Medium,
        _ => Priority::Low,
    };
    Advice {
        recommendation,
        priority: Some(priority),
        gate: Gate::Recommended,
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn short_commit(runs: &[Run], run: Option<u32>) -> Option<String> {
    let commit = runs.get(run? as usize)?.commit.as_deref()?;
    Some(commit.chars().take(7).collect())
}

/// One sentence: the verdict, its main evidence, and what to do.
pub(crate) fn reason(
    runs: &[Run],
    table: &RunTable,
    status: Status,
    judgement: &Judgement,
    facts: &Facts,
    advice: &Advice,
    policy: &Policy,
) -> String {
    let p = judgement.probability;
    let n = facts.clean_executions;
    let k = facts.clean_failures;
    let mut s = match status {
        Status::Flaky if !facts.retry_runs.is_empty() => format!(
            "Flaky (P = {p:.2}): failed then passed on the same commit in {}",
            plural(facts.retry_runs.len(), "run", "runs")
        ),
        Status::Flaky if !facts.commit_runs.is_empty() => format!(
            "Flaky (P = {p:.2}): failed and passed on the same commit in different runs ({} involved)",
            plural(facts.commit_runs.len(), "run", "runs")
        ),
        Status::Flaky => format!(
            "Flaky (P = {p:.2}): failed {k} of {n} executions with {} that no code change explains",
            plural(facts.flips, "pass/fail flip", "pass/fail flips")
        ),
        Status::Broken => {
            let branch = table
                .default_branch_name
                .as_deref()
                .unwrap_or("all branches");
            let since = short_commit(runs, facts.default_streak.since)
                .map(|c| format!(" since commit {c}"))
                .unwrap_or_default();
            format!(
                "Broken: failing consistently on {branch} in the last {}{since}; fix it rather than quarantine it",
                plural(
                    facts.default_streak.failures as usize,
                    "execution",
                    "executions"
                )
            )
        }
        Status::Stable if k == 0 => format!(
            "Stable: passed all {}",
            plural(n, "execution", "executions")
        ),
        Status::Stable if judgement.broken_is_best() => format!(
            "Stable (P = {p:.2}): its {} of {n} executions are explained by code changes that were later undone",
            plural(k, "failure", "failures")
        ),
        Status::Stable if facts.has_same_commit_evidence() => format!(
            "Stable (P = {p:.2}): {} in {n} executions, passed on retry, {} too few to call it flaky yet",
            plural(k, "failure", "failures"),
            if k == 1 { "is" } else { "are" }
        ),
        Status::Stable => format!(
            "Stable (P = {p:.2}): {} in {n} executions {} too few to call it flaky",
            plural(k, "failure", "failures"),
            if k == 1 { "is" } else { "are" }
        ),
        Status::InsufficientData => format!(
            "Not enough data: {} ({} needed) and no same-commit evidence",
            plural(n, "execution", "executions"),
            policy.min_occurrences
        ),
    };
    if facts.infra_excluded > 0 {
        s.push_str(&format!(
            " ({} discounted as infrastructure)",
            plural(facts.infra_excluded, "failure", "failures")
        ));
    }
    let tail = match advice.gate {
        Gate::Recommended => match advice.recommendation {
            Recommendation::Quarantine => "; quarantine recommended".to_owned(),
            _ => "; worth a warning".to_owned(),
        },
        Gate::TooFewExecutions if status == Status::Flaky => format!(
            "; no recommendation before {} executions",
            policy.min_occurrences
        ),
        Gate::TooFewRecentFailures if p >= policy.warn_threshold => format!(
            "; no recommendation: {} in the last {} (at least {} needed)",
            plural(facts.recent_failures as usize, "failure", "failures"),
            plural(policy.lookback_days as usize, "day", "days"),
            policy.min_recent_failures
        ),
        Gate::LowConfidence if p >= policy.warn_threshold => format!(
            "; no recommendation: confidence {:.2} is below {:.2}",
            judgement.confidence, policy.confidence_threshold
        ),
        _ => String::new(),
    };
    s.push_str(&tail);
    s.push('.');
    s
}
