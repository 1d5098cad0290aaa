//! Bayesian model comparison: how well "stable", "flaky" and "broken" explain a test's clean
//! executions, and the posterior probability of "flaky" with a confidence.
//!
//! - **Stable**: failures are unexplained noise at a tiny rate ε.
//! - **Flaky**: each execution fails independently with an unknown rate p ~ Beta(a, b).
//! - **Broken**: the result is a function of the code. Per branch, a two-state (pass/fail)
//!   hidden Markov chain over the commits in the order they first ran: a commit changes the
//!   state with probability ρ, and each execution disagrees with its commit's state with
//!   probability ε. A branch other than the default one starts from the default branch's state
//!   at the time (a pull request inherits its base) or, with equal weight, from a passing state
//!   (its base may predate a breakage), then may change with probability ρ.
//!
//! The marginal likelihoods are exact: the Beta-Binomial integral in closed form, the chain by
//! the forward algorithm.

use super::evidence::{self, Obs};
use super::runs::RunTable;

/// Rate of failures that neither flakiness, nor the code, nor detected infrastructure
/// explain: the stable model's failures, and the broken model's disagreements with the code's
/// state. Small, because the infrastructure guards have already removed the usual cause.
pub(crate) const EPSILON: f64 = 0.0001;
/// Probability that a given commit changes a given test's result.
pub(crate) const RHO: f64 = 0.005;
/// Weight of "a branch starts from the default branch's current state".
pub(crate) const INHERIT: f64 = 0.5;
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

/// The executions of one code state (one commit, or one CI run without commit) on one branch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cell {
    pub(crate) branch: u32,
    pub(crate) code: u32,
    pub(crate) first_rank: u32,
    pub(crate) fails: u32,
    pub(crate) passes: u32,
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

pub(crate) fn judge(clean: &[Obs], table: &RunTable, cells: &mut Vec<Cell>) -> Judgement {
    let n = clean.len() as f64;
    let k = clean.iter().filter(|o| o.fail()).count() as f64;
    evidence::cells(table, clean, cells);
    let log_evidence = [
        log_stable(n, k),
        log_flaky(n, k),
        log_broken(cells, table.default_branch),
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

pub(crate) fn log_flaky(n: f64, k: f64) -> f64 {
    ln_beta(k + BETA_A, n - k + BETA_B) - ln_beta(BETA_A, BETA_B)
}

/// Forward algorithm over each branch's cells; the default branch first, so other branches can
/// start from its state at the time they began.
pub(crate) fn log_broken(cells: &[Cell], default_branch: Option<u32>) -> f64 {
    let (stay, change) = ((-RHO).ln_1p(), RHO.ln());
    let (agree, disagree) = ((-EPSILON).ln_1p(), EPSILON.ln());
    // (first rank, P(failing)) after each commit of the default branch.
    let mut default_trace: Vec<(u32, f64)> = Vec::new();
    let mut total = 0.0;
    for branch in cells.chunk_by(|a, b| a.branch == b.branch) {
        let is_default = Some(branch[0].branch) == default_branch;
        let start_failing = if is_default || default_trace.is_empty() {
            0.5
        } else {
            match default_trace.partition_point(|&(rank, _)| rank < branch[0].first_rank) {
                0 => 0.5,
                i => {
                    // Half the weight on "based on the default branch as it is now", half on
                    // "based on an older, passing default branch": a pull request opened
                    // before a breakage keeps passing while the default branch fails.
                    let q = default_trace[i - 1].1;
                    let current = q * (1.0 - RHO) + (1.0 - q) * RHO;
                    INHERIT * current + (1.0 - INHERIT) * RHO
                }
            }
        };
        let (mut fail, mut pass) = (start_failing.ln(), (1.0 - start_failing).ln());
        for (i, cell) in branch.iter().enumerate() {
            let (f, p) = (f64::from(cell.fails), f64::from(cell.passes));
            if i > 0 {
                (fail, pass) = (
                    log_sum_exp(fail + stay, pass + change),
                    log_sum_exp(pass + stay, fail + change),
                );
            }
            fail += f * agree + p * disagree;
            pass += p * agree + f * disagree;
            if is_default {
                default_trace.push((cell.first_rank, (fail - log_sum_exp(fail, pass)).exp()));
            }
        }
        total += log_sum_exp(fail, pass);
    }
    total
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
    fn posterior_sums_to_one() {
        let j = from_evidence([-3.0, -4.0, -10.0]);
        assert!((j.posterior.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((0.0..=1.0).contains(&j.confidence));
    }

    #[test]
    fn a_failure_at_the_same_commit_as_a_pass_is_expensive_for_the_broken_model() {
        let cell = |code, fails, passes| Cell {
            branch: 0,
            code,
            first_rank: code,
            fails,
            passes,
        };
        let consistent = log_broken(&[cell(0, 0, 1), cell(1, 1, 0)], Some(0));
        let disagreeing = log_broken(&[cell(0, 1, 1)], Some(0));
        assert!(disagreeing < consistent - 1.0);
    }
}
