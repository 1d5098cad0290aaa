//! The flakiness scoring engine: per test, the evidence, a status, the probability that the
//! test is flaky with a confidence, the earlier product's score, and a recommendation under the
//! repository's [`Policy`].
//!
//! The engine compares three explanations of each test's recent history (a stable test, a
//! flaky test, a test whose result follows the code) and reports the posterior probability of
//! "flaky". `docs/scoring.md` gives the model, the reasons behind it and worked examples.
//!
//! [`score_all`] is pure and deterministic: the clock is an argument, nothing is random, and
//! the output depends only on the input.

mod bayes;
mod evidence;
mod legacy;
mod recommend;
mod runs;

use serde::Serialize;
use time::OffsetDateTime;

use crate::model::{Run, RunId, TestHistory};
use crate::policy::Policy;

use self::evidence::Scratch;
use self::runs::RunTable;

/// What the engine concludes about a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Passes and fails without a code change explaining it.
    Flaky,
    /// Failing consistently on the default branch since some commit; fix it, do not quarantine it.
    Broken,
    /// Passes (or its failures are explained by infrastructure or by code changes that were
    /// later undone).
    Stable,
    /// Too few executions and no same-commit evidence to judge.
    InsufficientData,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Flaky => "flaky",
            Status::Broken => "broken",
            Status::Stable => "stable",
            Status::InsufficientData => "insufficient_data",
        }
    }
}

/// What the policy says to do about a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Recommendation {
    None,
    Warn,
    Quarantine,
}

impl Recommendation {
    pub fn as_str(&self) -> &'static str {
        match self {
            Recommendation::None => "none",
            Recommendation::Warn => "warn",
            Recommendation::Quarantine => "quarantine",
        }
    }
}

/// How urgent a recommendation is, from the probability and the test's impact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    Medium,
    High,
    Critical,
}

impl Priority {
    pub fn as_str(&self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Medium => "medium",
            Priority::High => "high",
            Priority::Critical => "critical",
        }
    }
}

/// The kind of a piece of evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    /// Failed, then passed on the same commit within one CI run or its re-runs.
    Retry,
    /// Failed and passed on the same commit in different CI runs.
    Commit,
    /// Failures between passes across commits, with no same-commit evidence.
    History,
}

impl EvidenceKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            EvidenceKind::Retry => "retry",
            EvidenceKind::Commit => "commit",
            EvidenceKind::History => "history",
        }
    }
}

/// One kind of evidence and the runs that show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub kind: EvidenceKind,
    /// Indexes into the runs slice, sorted and deduplicated.
    pub runs: Vec<RunId>,
}

/// The verdict on one test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestScore {
    pub status: Status,
    /// Posterior probability that the test is flaky.
    pub probability: f64,
    /// How strongly the data alone (not the priors) support the flaky / not-flaky verdict:
    /// `1 − 1/K` for the Bayes factor `K ≥ 1` in the verdict's favour, 0 when the data lean the
    /// other way or are absent.
    pub confidence: f64,
    /// The earlier product's weighted score (secondary; see `docs/scoring.md`).
    pub legacy_score: f64,
    pub recommendation: Recommendation,
    /// Set when the recommendation is not `None`.
    pub priority: Option<Priority>,
    pub evidence: Vec<Evidence>,
    /// Distinct failure signatures in the window, most frequent first.
    pub signatures: Vec<u64>,
    /// Non-skipped executions in the window, all attempts.
    pub executions: usize,
    /// Failed or errored executions in the window, all attempts, infrastructure included.
    pub failures: usize,
    /// Failures per execution, leaving out the failures discounted as infrastructure.
    pub failure_rate: f64,
    /// Share of consecutive executions (in time order, infrastructure left out) whose outcome
    /// differs.
    pub flip_rate: f64,
    /// Failures at the head of the history (infrastructure left out).
    pub consecutive_failures: u32,
    /// Failures discounted as infrastructure.
    pub infra_excluded: usize,
    /// Failures (infrastructure left out) within the policy's lookback of `now`.
    pub recent_failures: u32,
    /// One sentence explaining the verdict.
    pub reason: String,
}

/// Scores every test; the result is in the same order as `tests`.
///
/// Executions that point outside `runs` are ignored. An invalid policy (see
/// [`Policy::validate`]) does not panic; out-of-range values are clamped where they would.
pub fn score_all(
    runs: &[Run],
    tests: &[TestHistory],
    policy: &Policy,
    now: OffsetDateTime,
) -> Vec<TestScore> {
    score_all_with(runs, tests, policy, &[], now)
}

/// [`score_all`] with a policy per test: test `i` is judged by `policies[i]` (the repository's
/// policy with its team's thresholds), `base` where `policies` has no entry. What concerns
/// runs rather than tests (the infrastructure guards) always comes from `base`, so splitting
/// the tests by team changes no run's verdict.
pub fn score_all_with(
    runs: &[Run],
    tests: &[TestHistory],
    base: &Policy,
    policies: &[&Policy],
    now: OffsetDateTime,
) -> Vec<TestScore> {
    let table = RunTable::build(runs, tests, base);
    let mut scratch = Scratch::default();
    let now_ms = runs::unix_ms(now);
    tests
        .iter()
        .enumerate()
        .map(|(i, test)| {
            let policy = policies.get(i).copied().unwrap_or(base);
            score_test(runs, &table, test, policy, now_ms, &mut scratch)
        })
        .collect()
}

fn score_test(
    runs: &[Run],
    table: &RunTable,
    test: &TestHistory,
    policy: &Policy,
    now_ms: i64,
    scratch: &mut Scratch,
) -> TestScore {
    let facts = evidence::gather(table, test, policy, now_ms, scratch);
    let legacy_score = legacy::score(
        &scratch.all,
        table,
        policy.rolling_window_size.max(1) as usize,
        &mut scratch.legacy,
    );
    let judgement = bayes::judge(
        &scratch.clean,
        table,
        &mut scratch.cells,
        &mut scratch.trace,
    );
    let same_commit = facts.has_same_commit_evidence();
    let status = if facts.clean_executions < policy.min_occurrences as usize && !same_commit {
        Status::InsufficientData
    } else if judgement.probability >= bayes::FLAKY_CUT
        && (facts.clean_failures >= 2 || same_commit)
    {
        // One failure across commits is an anecdote: in a short history the model can rate it
        // likely flaky, but a break fixed by the next commit tells the same story.
        Status::Flaky
    } else if judgement.broken_is_best() && facts.default_streak.failing() {
        Status::Broken
    } else {
        Status::Stable
    };
    let advice = recommend::recommend(status, &judgement, &facts, policy);
    let mut evidence_list = Vec::new();
    if !facts.retry_runs.is_empty() {
        evidence_list.push(Evidence {
            kind: EvidenceKind::Retry,
            runs: facts.retry_runs.clone(),
        });
    }
    if !facts.commit_runs.is_empty() {
        evidence_list.push(Evidence {
            kind: EvidenceKind::Commit,
            runs: facts.commit_runs.clone(),
        });
    }
    // History evidence is the explanation of last resort: shown only when it is what makes
    // the test suspicious, not for every test that ever failed.
    if !same_commit
        && facts.flips > 0
        && judgement.probability >= policy.warn_threshold
        && !facts.failing_runs.is_empty()
    {
        evidence_list.push(Evidence {
            kind: EvidenceKind::History,
            runs: facts.failing_runs.clone(),
        });
    }
    let reason = recommend::reason(runs, table, status, &judgement, &facts, &advice, policy);
    let (failure_rate, flip_rate) = (facts.failure_rate(), facts.flip_rate());
    TestScore {
        status,
        probability: judgement.probability,
        confidence: judgement.confidence,
        legacy_score,
        recommendation: advice.recommendation,
        priority: advice.priority,
        evidence: evidence_list,
        signatures: facts.signatures,
        executions: facts.executions,
        failures: facts.failures,
        failure_rate,
        flip_rate,
        consecutive_failures: facts.consecutive_failures,
        infra_excluded: facts.infra_excluded,
        recent_failures: facts.recent_failures,
        reason,
    }
}
