//! One test's facts over its window: the executions in time order, which failures are
//! infrastructure, same-commit evidence (retry and commit flakes), flips, streaks and recent
//! failures.

use crate::model::{Outcome, RunId, TestHistory};
use crate::policy::Policy;

use super::bayes::Cell;
use super::runs::RunTable;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// One execution, with its run's time order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Obs {
    pub(crate) run: RunId,
    pub(crate) rank: u32,
    pub(crate) attempt: u32,
    pub(crate) outcome: Outcome,
    pub(crate) sig: Option<u64>,
}

impl Obs {
    pub(crate) fn fail(&self) -> bool {
        self.outcome.is_failure()
    }
}

/// Buffers reused from one test to the next, so scoring a large history does not allocate per
/// execution.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    /// Every execution of the test (skipped included), in time order.
    pub(crate) all: Vec<Obs>,
    /// The window's executions that are evidence: not skipped, not infrastructure failures.
    pub(crate) clean: Vec<Obs>,
    pub(crate) cells: Vec<Cell>,
    pub(crate) trace: Vec<(u32, u32, f64)>,
    pub(crate) legacy: super::legacy::Scratch,
    keyed: Vec<(u32, u32, u32, u32, bool, RunId)>,
    sigs: Vec<u64>,
}

/// The trailing failure streak on the default branch (or on all branches when there is none).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Streak {
    pub(crate) failures: u32,
    /// The run where the streak began.
    pub(crate) since: Option<RunId>,
}

impl Streak {
    pub(crate) fn failing(&self) -> bool {
        self.failures > 0
    }
}

#[derive(Debug, Default)]
pub(crate) struct Facts {
    pub(crate) executions: usize,
    pub(crate) failures: usize,
    pub(crate) infra_excluded: usize,
    pub(crate) clean_executions: usize,
    pub(crate) clean_failures: usize,
    pub(crate) flips: usize,
    pub(crate) consecutive_failures: u32,
    pub(crate) recent_failures: u32,
    pub(crate) default_streak: Streak,
    pub(crate) retry_runs: Vec<RunId>,
    pub(crate) commit_runs: Vec<RunId>,
    /// Runs holding a failure that is evidence.
    pub(crate) failing_runs: Vec<RunId>,
    pub(crate) signatures: Vec<u64>,
}

impl Facts {
    pub(crate) fn has_same_commit_evidence(&self) -> bool {
        !self.retry_runs.is_empty() || !self.commit_runs.is_empty()
    }

    pub(crate) fn failure_rate(&self) -> f64 {
        if self.clean_executions == 0 {
            0.0
        } else {
            self.clean_failures as f64 / self.clean_executions as f64
        }
    }

    pub(crate) fn flip_rate(&self) -> f64 {
        if self.clean_executions < 2 {
            0.0
        } else {
            self.flips as f64 / (self.clean_executions - 1) as f64
        }
    }
}

/// Fills `scratch.all` and `scratch.clean` for `test` and returns its facts.
pub(crate) fn gather(
    table: &RunTable,
    test: &TestHistory,
    policy: &Policy,
    now_ms: i64,
    scratch: &mut Scratch,
) -> Facts {
    let all = &mut scratch.all;
    all.clear();
    all.extend(
        test.executions
            .iter()
            .filter(|e| (e.run as usize) < table.len())
            .map(|e| Obs {
                run: e.run,
                rank: table.rank[e.run as usize],
                attempt: e.attempt,
                outcome: e.outcome,
                sig: e.signature,
            }),
    );
    all.sort_unstable_by_key(|o| (o.rank, o.attempt, o.outcome as u8, o.sig));

    // The window: the test's most recent `rolling_window_size` runs, every attempt in them.
    let window_runs = policy.rolling_window_size.max(1);
    let mut start = all.len();
    let mut runs_seen = 0u32;
    let mut last_rank = None;
    for (i, o) in all.iter().enumerate().rev() {
        if o.outcome == Outcome::Skipped {
            continue;
        }
        if last_rank != Some(o.rank) {
            runs_seen += 1;
            if runs_seen > window_runs {
                break;
            }
            last_rank = Some(o.rank);
        }
        start = i;
    }

    let mut facts = Facts::default();
    let clean = &mut scratch.clean;
    clean.clear();
    let sigs = &mut scratch.sigs;
    sigs.clear();
    for o in all[start..]
        .iter()
        .filter(|o| o.outcome != Outcome::Skipped)
    {
        facts.executions += 1;
        if o.fail() {
            facts.failures += 1;
            if let Some(sig) = o.sig {
                sigs.push(sig);
            }
            if table.is_infra(o.run, o.sig) {
                facts.infra_excluded += 1;
                continue;
            }
        }
        clean.push(*o);
    }
    facts.signatures = by_frequency(sigs);

    facts.clean_executions = clean.len();
    facts.clean_failures = clean.iter().filter(|o| o.fail()).count();
    facts.flips = clean
        .windows(2)
        .filter(|w| w[0].fail() != w[1].fail())
        .count();
    facts.consecutive_failures = clean.iter().rev().take_while(|o| o.fail()).count() as u32;
    let recent_since = now_ms.saturating_sub(i64::from(policy.lookback_days) * DAY_MS);
    facts.recent_failures = clean
        .iter()
        .filter(|o| o.fail() && table.time_ms[o.run as usize] >= recent_since)
        .count() as u32;
    facts.default_streak = default_streak(table, clean);
    facts.failing_runs = sorted_runs(clean.iter().filter(|o| o.fail()).map(|o| o.run));
    same_commit_evidence(table, clean, &mut scratch.keyed, &mut facts);
    facts
}

/// Distinct signatures, most frequent first; ties by value so the order is deterministic.
fn by_frequency(sigs: &mut [u64]) -> Vec<u64> {
    sigs.sort_unstable();
    let mut counted: Vec<(u32, u64)> = Vec::new();
    for &sig in sigs.iter() {
        match counted.last_mut() {
            Some((count, s)) if *s == sig => *count += 1,
            _ => counted.push((1, sig)),
        }
    }
    counted.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    counted.into_iter().map(|(_, sig)| sig).collect()
}

fn sorted_runs(runs: impl Iterator<Item = RunId>) -> Vec<RunId> {
    let mut v: Vec<RunId> = runs.collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The longest failure streak that ends a lane of the default branch: a test broken on one job
/// of a matrix is broken even if the other jobs pass. Without a default branch, all branches
/// are one, per job.
fn default_streak(table: &RunTable, clean: &[Obs]) -> Streak {
    // (lane or job, still counting, streak)
    let mut lanes: Vec<(u32, bool, Streak)> = Vec::new();
    for o in clean.iter().rev() {
        let r = o.run as usize;
        let key = match table.default_branch {
            Some(d) if table.branch[r] != d => continue,
            Some(_) => table.lane[r],
            None => table.job[r],
        };
        let i = match lanes.iter().position(|l| l.0 == key) {
            Some(i) => i,
            None => {
                lanes.push((key, true, Streak::default()));
                lanes.len() - 1
            }
        };
        let entry = &mut lanes[i];
        if !entry.1 {
            continue;
        }
        if o.fail() {
            entry.2.failures += 1;
            entry.2.since = Some(o.run);
        } else {
            entry.1 = false;
        }
    }
    lanes
        .into_iter()
        .map(|l| l.2)
        .max_by_key(|s| s.failures)
        .unwrap_or_default()
}

/// Retry flakes (failed then passed within one CI run or its re-runs) and commit flakes
/// (failed and passed on the same commit in different CI runs).
fn same_commit_evidence(
    table: &RunTable,
    clean: &[Obs],
    keyed: &mut Vec<(u32, u32, u32, u32, bool, RunId)>,
    facts: &mut Facts,
) {
    if facts.clean_failures == 0 || facts.clean_failures == clean.len() {
        return;
    }
    // (run group, job, rank, attempt, failed, run): each CI run's job in time and attempt
    // order. Another job of the same CI run is another platform, not a retry.
    keyed.clear();
    keyed.extend(clean.iter().map(|o| {
        let r = o.run as usize;
        (
            table.group[r],
            table.job[r],
            o.rank,
            o.attempt,
            o.fail(),
            o.run,
        )
    }));
    keyed.sort_unstable();
    let mut retry = Vec::new();
    for group in keyed.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
        let Some(first_failure) = group.iter().position(|k| k.4) else {
            continue;
        };
        let tail = &group[first_failure..];
        if tail.iter().any(|k| !k.4) {
            retry.extend(tail.iter().map(|k| k.5));
        }
    }
    facts.retry_runs = sorted_runs(retry.into_iter());

    // (commit in its job, run group, rank, attempt, failed, run) for runs with a known commit.
    keyed.clear();
    keyed.extend(
        clean
            .iter()
            .filter(|o| table.has_commit[o.run as usize])
            .map(|o| {
                let r = o.run as usize;
                (
                    table.code[r],
                    table.group[r],
                    o.rank,
                    o.attempt,
                    o.fail(),
                    o.run,
                )
            }),
    );
    keyed.sort_unstable();
    let mut commit = Vec::new();
    for same_code in keyed.chunk_by(|a, b| a.0 == b.0) {
        let groups_with = |failed: bool| {
            let mut groups = same_code.iter().filter(|k| k.4 == failed).map(|k| k.1);
            let first = groups.next();
            (first, first.is_some_and(|f| groups.any(|g| g != f)))
        };
        let (fail_group, fails_span_groups) = groups_with(true);
        let (pass_group, passes_span_groups) = groups_with(false);
        let (Some(f), Some(p)) = (fail_group, pass_group) else {
            continue;
        };
        if f != p || fails_span_groups || passes_span_groups {
            commit.extend(same_code.iter().map(|k| k.5));
        }
    }
    facts.commit_runs = sorted_runs(commit.into_iter());
}

/// Groups the clean executions into cells of one code state for the broken model: per branch
/// and commit, or per branch, job and commit when `by_job`. Each chain's cells are in the order
/// their code first appeared, the default branch's chains first.
pub(crate) fn cells(table: &RunTable, clean: &[Obs], by_job: bool, cells: &mut Vec<Cell>) {
    cells.clear();
    for o in clean {
        let r = o.run as usize;
        cells.push(Cell {
            branch: table.branch[r],
            job: if by_job { table.job[r] } else { u32::MAX },
            code: table.commit_code[r],
            first_rank: o.rank,
            fails: u32::from(o.fail()),
            passes: u32::from(!o.fail()),
        });
    }
    cells.sort_unstable_by_key(|c| (c.branch, c.job, c.code, c.first_rank));
    let mut merged = 0;
    for i in 0..cells.len() {
        if merged > 0
            && cells[merged - 1].same_chain(&cells[i])
            && cells[merged - 1].code == cells[i].code
        {
            cells[merged - 1].fails += cells[i].fails;
            cells[merged - 1].passes += cells[i].passes;
        } else {
            cells[merged] = cells[i];
            merged += 1;
        }
    }
    cells.truncate(merged);
    let default = table.default_branch;
    cells.sort_unstable_by_key(|c| (Some(c.branch) != default, c.branch, c.job, c.first_rank));
}
