//! The earlier product's weighted flakiness score (`FlakinessScorer.computeFlakeScore`),
//! reproduced so its users can compare. It is secondary output: no verdict depends on it.
//!
//! Steps, on the test's executions (all attempts, skipped and infrastructure failures
//! included, as the original had neither guard):
//!
//! 1. Window: the most recent `rolling_window_size` executions.
//! 2. Features: failure ratio; rerun pass rate (per CI run id, the share of attempts after the
//!    first that passed); intermittency (flips between failing and not failing over consecutive
//!    non-skipped pairs); failure clustering (failures less than 2 h apart form a cluster of 2+,
//!    density = failures per minute, `min(1, clusters · var(density) / (mean size · failures))`);
//!    message variance (distinct signatures / failures with a signature, 0 under 2 failures);
//!    longest and trailing failure streaks.
//! 3. `s = 0.30·intermittency + 0.25·rerun + 0.15·clustering + 0.10·variance + 0.10·ratio`.
//! 4. `s *= 1 − 0.10·longest/N` when `longest ≥ 0.8·N`; `s *= 1.2` when `rerun > 0.3` and
//!    `intermittency > 0.4`; `s *= 0.8` when `trailing ≥ min(5, 0.6·N)`; clamp to [0, 1],
//!    NaN becomes 0. N ≤ 1 or no failure scores 0.
//!
//! Two deliberate readings of the inventory, both checked against its verified outputs:
//!
//! - The trailing-streak penalty (×0.8) applies only when the longest-streak penalty did not.
//!   Applying both would give 0.105 · 0.9 · 0.8 = 0.0756 for 20 failures in a row, but the
//!   original produced 0.095 = 0.105 · 0.9 (rounded from 0.0945): only one of the two fired.
//! - A cluster whose failures share one timestamp (retries inside one run) lasts one minute
//!   for its density, where the original divided by zero and turned the whole score to 0.
//!
//! The message is represented by its signature (the hash of the normalized message).

use super::evidence::Obs;
use super::runs::RunTable;

const TWO_HOURS_MS: i64 = 2 * 60 * 60 * 1000;
const MINUTE_MS: f64 = 60_000.0;

#[derive(Debug, Default)]
pub(crate) struct Scratch {
    by_run: Vec<(u32, u32, u32, bool)>,
    sigs: Vec<u64>,
    densities: Vec<(f64, f64)>,
}

/// The original's features, for tests and explanations.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Features {
    pub(crate) fail_ratio: f64,
    pub(crate) rerun_pass_rate: f64,
    pub(crate) intermittency: f64,
    pub(crate) clustering: f64,
    pub(crate) message_variance: f64,
    pub(crate) longest_streak: u32,
    pub(crate) trailing_streak: u32,
}

/// `all` is every execution of the test in time order.
pub(crate) fn score(all: &[Obs], table: &RunTable, window: usize, scratch: &mut Scratch) -> f64 {
    let w = &all[all.len().saturating_sub(window)..];
    let Some(f) = features(w, table, scratch) else {
        return 0.0;
    };
    let n = w.len() as f64;
    let mut s = 0.30 * f.intermittency
        + 0.25 * f.rerun_pass_rate
        + 0.15 * f.clustering
        + 0.10 * f.message_variance
        + 0.10 * f.fail_ratio;
    let long_streak = f64::from(f.longest_streak) >= 0.8 * n;
    if long_streak {
        s *= 1.0 - 0.10 * f64::from(f.longest_streak) / n;
    }
    if f.rerun_pass_rate > 0.3 && f.intermittency > 0.4 {
        s *= 1.2;
    }
    if !long_streak && f64::from(f.trailing_streak) >= (0.6 * n).min(5.0) {
        s *= 0.8;
    }
    if s.is_nan() { 0.0 } else { s.clamp(0.0, 1.0) }
}

/// `None` when the original scores 0 outright: one execution or less, or no failure.
pub(crate) fn features(w: &[Obs], table: &RunTable, scratch: &mut Scratch) -> Option<Features> {
    let n = w.len();
    let failures = w.iter().filter(|o| o.fail()).count();
    if n <= 1 || failures == 0 {
        return None;
    }
    let mut f = Features {
        fail_ratio: failures as f64 / n as f64,
        ..Features::default()
    };

    // Every attempt after the first of a CI run (its in-run retries and its re-runs).
    let by_run = &mut scratch.by_run;
    by_run.clear();
    by_run.extend(w.iter().map(|o| {
        (
            table.group[o.run as usize],
            o.rank,
            o.attempt,
            o.outcome == crate::model::Outcome::Passed,
        )
    }));
    by_run.sort_unstable();
    let (mut later, mut later_passed) = (0u32, 0u32);
    for group in by_run.chunk_by(|a, b| a.0 == b.0) {
        later += group.len() as u32 - 1;
        later_passed += group[1..].iter().filter(|k| k.3).count() as u32;
    }
    if later > 0 {
        f.rerun_pass_rate = f64::from(later_passed) / f64::from(later);
    }

    let skipped = |o: &Obs| o.outcome == crate::model::Outcome::Skipped;
    let (mut pairs, mut flips) = (0u32, 0u32);
    for pair in w.windows(2) {
        if skipped(&pair[0]) || skipped(&pair[1]) {
            continue;
        }
        pairs += 1;
        flips += u32::from(pair[0].fail() != pair[1].fail());
    }
    if pairs > 0 {
        f.intermittency = f64::from(flips) / f64::from(pairs);
    }

    f.clustering = clustering(w, table, failures, &mut scratch.densities);

    let sigs = &mut scratch.sigs;
    sigs.clear();
    sigs.extend(w.iter().filter(|o| o.fail()).filter_map(|o| o.sig));
    if failures >= 2 && !sigs.is_empty() {
        let messages = sigs.len() as f64;
        sigs.sort_unstable();
        sigs.dedup();
        f.message_variance = sigs.len() as f64 / messages;
    }

    let mut current = 0u32;
    for o in w {
        current = if o.fail() { current + 1 } else { 0 };
        f.longest_streak = f.longest_streak.max(current);
    }
    f.trailing_streak = current;
    Some(f)
}

fn clustering(
    w: &[Obs],
    table: &RunTable,
    failures: usize,
    densities: &mut Vec<(f64, f64)>,
) -> f64 {
    // (size, density) of each cluster of two or more failures.
    densities.clear();
    let mut close = |first: i64, last: i64, size: u32| {
        if size >= 2 {
            let minutes = (last - first) as f64 / MINUTE_MS;
            let minutes = if minutes > 0.0 { minutes } else { 1.0 };
            densities.push((f64::from(size), f64::from(size) / minutes));
        }
    };
    let mut times = w
        .iter()
        .filter(|o| o.fail())
        .map(|o| table.time_ms[o.run as usize]);
    let Some(t0) = times.next() else {
        return 0.0;
    };
    let (mut first, mut last, mut size) = (t0, t0, 1u32);
    for t in times {
        if t - last <= TWO_HOURS_MS {
            size += 1;
        } else {
            close(first, last, size);
            (first, size) = (t, 1);
        }
        last = t;
    }
    close(first, last, size);
    if densities.is_empty() {
        return 0.0;
    }
    let clusters = densities.len() as f64;
    let mean_size = densities.iter().map(|d| d.0).sum::<f64>() / clusters;
    let mean_density = densities.iter().map(|d| d.1).sum::<f64>() / clusters;
    let variance = densities
        .iter()
        .map(|d| (d.1 - mean_density).powi(2))
        .sum::<f64>()
        / clusters;
    (clusters * variance / (mean_size * failures as f64)).min(1.0)
}
