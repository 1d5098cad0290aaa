//! Bayesian model comparison: how well "stable", "flaky" and "broken" explain a test's clean
//! executions, and the posterior probability of "flaky" with a confidence.
//!
//! - **Stable**: failures are unexplained noise at a tiny rate ε.
//! - **Flaky**: each execution fails independently with an unknown rate p ~ Beta(a, b),
//!   truncated to p ≤ 0.8 (a test that nearly always fails is broken, not flaky).
//! - **Broken**: the result is a function of the code. Per branch, a two-state (pass/fail)
//!   hidden Markov chain over the commits in the order they first ran: a commit changes the
//!   state with probability ρ, and each execution disagrees with its commit's state with
//!   probability ε. The default branch starts failing with probability 0.2; another branch
//!   starts from the default branch's state when the branch began (a pull request inherits its
//!   base), drifting towards passing with probability δ (its base may predate a breakage), and
//!   its own first commit may change it (ρ).
//!
//! The marginal likelihoods are exact: the truncated Beta-Binomial integral by the incomplete
//! Beta function, the chain by the forward algorithm. `docs/scoring.md` explains the choices.

use std::sync::LazyLock;

use super::evidence::{self, Obs};
use super::runs::RunTable;

/// Rate of failures that neither flakiness, nor the code, nor detected infrastructure
/// explain: the stable model's failures, and the broken model's disagreements with the code's
/// state. Small, because the infrastructure guards have already removed the usual cause.
pub(crate) const EPSILON: f64 = 0.001;
/// Probability that a given commit breaks a given passing test.
pub(crate) const RHO: f64 = 0.02;
/// Probability that a commit fixes a failing test: higher than breaking one, because people
/// work on failures.
pub(crate) const RHO_FIX: f64 = 0.05;
/// Probability that a branch's base differs from the default branch's latest state when the
/// branch first ran (its base is older and the default branch changed since).
pub(crate) const BASE_DRIFT: f64 = 0.05;
/// Probability that a test is failing where its history (on a branch with nothing to inherit
/// from) begins.
pub(crate) const START_FAILING: f64 = 0.2;
/// The flaky model's failure rate is at most this: a test that fails nearly always is broken
/// (perhaps with the odd lucky pass), not flaky.
pub(crate) const MAX_FLAKE_RATE: f64 = 0.8;
/// Beta prior of a flaky test's failure rate: mean a / (a + b) = 0.2, with most mass on low
/// rates, where flaky tests live.
pub(crate) const BETA_A: f64 = 0.5;
pub(crate) const BETA_B: f64 = 2.0;
/// Prior probabilities of the three explanations.
pub(crate) const PRIOR_STABLE: f64 = 0.8;
pub(crate) const PRIOR_FLAKY: f64 = 0.1;
pub(crate) const PRIOR_BROKEN: f64 = 0.1;
/// Posterior probability at and above which the status is flaky.
pub(crate) const FLAKY_CUT: f64 = 0.5;

/// The executions of one code state (one commit, or one CI run without commit) in one chain: a
/// branch, or a branch and a job.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cell {
    pub(crate) branch: u32,
    /// `u32::MAX` when jobs are not told apart.
    pub(crate) job: u32,
    pub(crate) code: u32,
    pub(crate) first_rank: u32,
    pub(crate) fails: u32,
    pub(crate) passes: u32,
}

impl Cell {
    pub(crate) fn same_chain(&self, other: &Cell) -> bool {
        (self.branch, self.job) == (other.branch, other.job)
    }
}

/// The comparison's outcome for one test.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Judgement {
    /// Posterior probabilities of stable, flaky and broken.
    pub(crate) posterior: [f64; 3],
    pub(crate) probability: f64,
    pub(crate) confidence: f64,
}

impl Judgement {
    pub(crate) fn broken_is_best(&self) -> bool {
        let [stable, flaky, broken] = self.posterior;
        broken > stable && broken > flaky
    }
}

pub(crate) fn judge(
    clean: &[Obs],
    table: &RunTable,
    cells: &mut Vec<Cell>,
    trace: &mut Vec<(u32, u32, f64)>,
) -> Judgement {
    let n = clean.len() as f64;
    let k = clean.iter().filter(|o| o.fail()).count() as f64;
    let log_evidence = [
        log_stable(n, k),
        log_flaky(n, k),
        log_broken_any(clean, table, cells, trace),
    ];
    from_evidence(log_evidence)
}

pub(crate) fn from_evidence(log_evidence: [f64; 3]) -> Judgement {
    let priors = [PRIOR_STABLE, PRIOR_FLAKY, PRIOR_BROKEN];
    let joint: [f64; 3] = std::array::from_fn(|i| priors[i].ln() + log_evidence[i]);
    let total = log_sum_exp(log_sum_exp(joint[0], joint[1]), joint[2]);
    let posterior = joint.map(|j| (j - total).exp());
    let probability = posterior[1].clamp(0.0, 1.0);
    // Bayes factor of flaky against the prior-weighted mixture of the other two: what the
    // data say, before the priors.
    let not_flaky = log_sum_exp(joint[0], joint[2]) - (PRIOR_STABLE + PRIOR_BROKEN).ln();
    let log_factor = log_evidence[1] - not_flaky;
    let toward_verdict = if probability >= FLAKY_CUT {
        log_factor
    } else {
        -log_factor
    };
    let confidence = if toward_verdict > 0.0 {
        1.0 - (-toward_verdict).exp()
    } else {
        0.0
    };
    Judgement {
        posterior,
        probability,
        confidence: confidence.clamp(0.0, 1.0),
    }
}

pub(crate) fn log_stable(n: f64, k: f64) -> f64 {
    k * EPSILON.ln() + (n - k) * (-EPSILON).ln_1p()
}

/// The Beta-Binomial marginal likelihood with the Beta prior truncated to
/// `[0, MAX_FLAKE_RATE]`: `B_x(k + a, n − k + b) / B_x(a, b)` with incomplete Beta functions.
pub(crate) fn log_flaky(n: f64, k: f64) -> f64 {
    static PRIOR_MASS: LazyLock<f64> =
        LazyLock::new(|| ln_incomplete_beta(MAX_FLAKE_RATE, BETA_A, BETA_B));
    ln_incomplete_beta(MAX_FLAKE_RATE, k + BETA_A, n - k + BETA_B) - *PRIOR_MASS
}

/// ln B_x(a, b) = ln ∫₀ˣ t^(a−1) (1−t)^(b−1) dt, by the continued fraction for the
/// regularized incomplete Beta function (Lentz's method), on the side where it converges fast.
pub(crate) fn ln_incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x >= 1.0 {
        return ln_beta(a, b);
    }
    if x <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if x < (a + 1.0) / (a + b + 2.0) {
        a * x.ln() + b * (-x).ln_1p() - a.ln() + beta_continued_fraction(x, a, b).ln()
    } else {
        // B_x(a, b) = B(a, b) − B_{1−x}(b, a)
        let rest =
            b * (1.0 - x).ln() + a * x.ln() - b.ln() + beta_continued_fraction(1.0 - x, b, a).ln();
        let full = ln_beta(a, b);
        full + (-(rest - full).exp()).ln_1p()
    }
}

fn beta_continued_fraction(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let guard = |v: f64| if v.abs() < TINY { TINY } else { v };
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 / guard(1.0 - qab * x / qap);
    let mut h = d;
    for m in 1..=300 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 / guard(1.0 + aa * d);
        c = guard(1.0 + aa / c);
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 / guard(1.0 + aa * d);
        c = guard(1.0 + aa / c);
        let step = d * c;
        h *= step;
        if (step - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// The broken model when the test runs in several jobs (a matrix): a commit may change the
/// result on every job at once (one chain per branch) or on one job only (one chain per branch
/// and job), with equal prior weight. Charging each job's chain for one breakage that hit them
/// all would make a matrix breakage look like flakiness; one chain for all jobs would make a
/// platform-specific one look like flakiness.
fn log_broken_any(
    clean: &[Obs],
    table: &RunTable,
    cells: &mut Vec<Cell>,
    trace: &mut Vec<(u32, u32, f64)>,
) -> f64 {
    let start = &table.branch_start;
    evidence::cells(table, clean, false, cells);
    let together = log_broken(cells, table.default_branch, start, trace);
    let first_job = clean.first().map(|o| table.job[o.run as usize]);
    if clean
        .iter()
        .all(|o| Some(table.job[o.run as usize]) == first_job)
    {
        return together;
    }
    evidence::cells(table, clean, true, cells);
    let per_job = log_broken(cells, table.default_branch, start, trace);
    log_sum_exp(together, per_job) - std::f64::consts::LN_2
}

/// Forward algorithm over each chain's cells; the default branch's chains first, so the chains
/// of other branches can start from the default branch's state (in the same job) at the time
/// they began.
///
/// It runs in probability space, renormalized after every commit, with the scale kept in a
/// running product: the emission ratios are powers of ε/(1−ε), so a commit costs no
/// logarithm or exponential (this is the hot loop when scoring 100k tests).
pub(crate) fn log_broken(
    cells: &[Cell],
    default_branch: Option<u32>,
    branch_start: &[u32],
    trace: &mut Vec<(u32, u32, f64)>,
) -> f64 {
    let (agree, disagree) = ((-EPSILON).ln_1p(), EPSILON.ln());
    let ratio = EPSILON / (1.0 - EPSILON);
    // (job, first rank, P(failing)) after each commit of the default branch's lanes.
    trace.clear();
    let mut trace_sorted = false;
    let mut log_scale = 0.0;
    let mut scale = 1.0f64;
    for chain in cells.chunk_by(Cell::same_chain) {
        let (branch, job) = (chain[0].branch, chain[0].job);
        let is_default = Some(branch) == default_branch;
        if !is_default && !trace_sorted {
            trace.sort_by_key(|&(job, rank, _)| (job, rank));
            trace_sorted = true;
        }
        // The same job's trace on the default branch.
        let same_job = if is_default {
            &trace[..0]
        } else {
            let from = trace.partition_point(|t| t.0 < job);
            let to = trace.partition_point(|t| t.0 <= job);
            &trace[from..to]
        };
        let start_failing = if same_job.is_empty() {
            START_FAILING
        } else {
            // A branch inherits the default branch's state as of when the branch began (its
            // base): its last commit before then; a branch older than the window inherits the
            // state the window starts with.
            let began = branch_start
                .get(branch as usize)
                .copied()
                .unwrap_or(chain[0].first_rank);
            let i = same_job.partition_point(|t| t.1 < began).max(1);
            // The base had that state, unless the base is older and the state changed since
            // (δ, towards passing: a branch opened before a breakage); then the branch's own
            // first commit may change it (ρ to break, ρ_fix to fix).
            let base = same_job[i - 1].2 * (1.0 - BASE_DRIFT);
            base * (1.0 - RHO_FIX) + (1.0 - base) * RHO
        };
        let (mut fail, mut pass) = (start_failing, 1.0 - start_failing);
        for (i, cell) in chain.iter().enumerate() {
            if i > 0 {
                (fail, pass) = (
                    fail * (1.0 - RHO_FIX) + pass * RHO,
                    pass * (1.0 - RHO) + fail * RHO_FIX,
                );
            }
            // The likelier state's emission is factored out into the log scale; the other
            // state's is relative to it.
            let (f, p) = (cell.fails, cell.passes);
            let (major, minor) = (f.max(p), f.min(p));
            log_scale += f64::from(major) * agree + f64::from(minor) * disagree;
            let relative = ratio.powi(i32::try_from(major - minor).unwrap_or(i32::MAX));
            if f >= p {
                pass *= relative;
            } else {
                fail *= relative;
            }
            let sum = fail + pass;
            (fail, pass) = (fail / sum, pass / sum);
            scale *= sum;
            if scale < 1e-250 {
                log_scale += scale.ln();
                scale = 1.0;
            }
            if is_default {
                trace.push((job, cell.first_rank, fail));
            }
        }
    }
    log_scale + scale.ln()
}

pub(crate) fn log_sum_exp(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + ((a - m).exp() + (b - m).exp()).ln()
}

pub(crate) fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// ln Γ(x) for x > 0 by the Lanczos approximation (g = 7, 9 terms; relative error ≈ 1e-15).
pub(crate) fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEFFICIENTS: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1−x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin().abs()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = COEFFICIENTS[0];
    for (i, &c) in COEFFICIENTS.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_gamma_matches_known_values() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-10 * b.abs().max(1.0);
        assert!(close(ln_gamma(1.0), 0.0));
        assert!(close(ln_gamma(2.0), 0.0));
        assert!(close(ln_gamma(0.5), std::f64::consts::PI.sqrt().ln()));
        assert!(close(ln_gamma(10.0), 362_880f64.ln()));
        // ln(100!) = ln Γ(101)
        assert!(close(ln_gamma(101.0), 363.739_375_555_563_5));
        assert!(close(ln_gamma(0.1), 2.252_712_651_734_206));
    }

    #[test]
    fn ln_beta_is_symmetric_and_exact_for_integers() {
        // B(2, 3) = 1! 2! / 4! = 1/12
        assert!((ln_beta(2.0, 3.0) - (1.0f64 / 12.0).ln()).abs() < 1e-12);
        assert!((ln_beta(2.5, 7.0) - ln_beta(7.0, 2.5)).abs() < 1e-12);
    }

    #[test]
    fn incomplete_beta_matches_closed_forms() {
        // B_x(1, 1) = x; B_x(2, 1) = x²/2; B_x(1, 3) = (1 − (1−x)³)/3
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(ln_incomplete_beta(0.3, 1.0, 1.0), 0.3f64.ln()));
        assert!(close(
            ln_incomplete_beta(0.9, 2.0, 1.0),
            (0.81f64 / 2.0).ln()
        ));
        assert!(close(
            ln_incomplete_beta(0.9, 1.0, 3.0),
            ((1.0 - 0.001f64) / 3.0).ln()
        ));
        assert!(close(ln_incomplete_beta(1.0, 2.5, 7.0), ln_beta(2.5, 7.0)));
        // Large arguments stay finite and below the complete function.
        let big = ln_incomplete_beta(0.9, 480.5, 2.0);
        assert!(big.is_finite() && big < ln_beta(480.5, 2.0));
    }

    #[test]
    fn a_test_that_always_fails_is_poorly_explained_as_flaky() {
        // Truncating the rate at 0.8 makes 40 failures in a row about e^6 less likely.
        assert!(log_flaky(40.0, 40.0) < ln_beta(40.5, 2.0) - ln_beta(0.5, 2.0) - 6.0);
    }

    #[test]
    fn posterior_sums_to_one() {
        let j = from_evidence([-3.0, -4.0, -10.0]);
        assert!((j.posterior.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((0.0..=1.0).contains(&j.confidence));
    }

    #[test]
    fn a_failure_at_the_same_commit_as_a_pass_is_expensive_for_the_broken_model() {
        let cell = |code, fails, passes| Cell {
            branch: 0,
            job: 0,
            code,
            first_rank: code,
            fails,
            passes,
        };
        let trace = &mut Vec::new();
        let consistent = log_broken(&[cell(0, 0, 1), cell(1, 1, 0)], Some(0), &[0], trace);
        let disagreeing = log_broken(&[cell(0, 1, 1)], Some(0), &[0], trace);
        assert!(disagreeing < consistent - 1.0);
    }

    /// One commit per run on main: passes, then `pattern` (true = failure), then passes.
    fn main_history(before: usize, pattern: &[bool], after: usize) -> (f64, f64, Vec<Cell>) {
        let outcomes: Vec<bool> = std::iter::repeat_n(false, before)
            .chain(pattern.iter().copied())
            .chain(std::iter::repeat_n(false, after))
            .collect();
        let cells = outcomes
            .iter()
            .enumerate()
            .map(|(i, &failed)| Cell {
                branch: 0,
                job: 0,
                code: i as u32,
                first_rank: i as u32,
                fails: u32::from(failed),
                passes: u32::from(!failed),
            })
            .collect();
        let k = outcomes.iter().filter(|&&f| f).count();
        (outcomes.len() as f64, k as f64, cells)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 0.005
    }

    #[test]
    fn worked_example_two_failures_three_runs_apart() {
        // docs/scoring.md, "Two failures, three runs apart".
        let (n, k, cells) = main_history(20, &[true, false, false, true], 20);
        let e = [
            log_stable(n, k),
            log_flaky(n, k),
            log_broken(&cells, Some(0), &[0], &mut Vec::new()),
        ];
        assert!(
            close(e[0], -13.86) && close(e[1], -9.49) && close(e[2], -13.52),
            "{e:?}"
        );
        let j = from_evidence(e);
        assert!(
            close(j.posterior[0], 0.09) && close(j.posterior[2], 0.02),
            "{j:?}"
        );
        assert!(
            close(j.probability, 0.89) && close(j.confidence, 0.99),
            "{j:?}"
        );
    }

    #[test]
    fn worked_example_two_adjacent_failures() {
        // docs/scoring.md, "Two failures in a row".
        let (n, k, cells) = main_history(20, &[true, true], 20);
        let e = [
            log_stable(n, k),
            log_flaky(n, k),
            log_broken(&cells, Some(0), &[0], &mut Vec::new()),
        ];
        assert!(
            close(e[0], -13.86) && close(e[1], -9.37) && close(e[2], -7.99),
            "{e:?}"
        );
        let j = from_evidence(e);
        assert!(
            close(j.posterior[2], 0.79) && close(j.probability, 0.20),
            "{j:?}"
        );
        assert_eq!(j.confidence, 0.0);
    }
}
