//! Facts about runs, computed once per scoring pass and shared by every test: time order, the
//! code each run tested, branches and jobs, the default branch, and the two infrastructure
//! guards (outage runs, and failure signatures shared by many tests in one run).
//!
//! A *lane* is a (branch, job) pair: the sequence of runs of one CI job on one branch. A test
//! that runs in several jobs of a matrix (Linux and Windows, two runtime versions) is judged
//! per job, so failing on one platform and passing on another is not mistaken for flakiness.

use std::collections::HashMap;

use time::OffsetDateTime;

use crate::model::{Outcome, Run, RunId, TestHistory};
use crate::policy::Policy;

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// `refs/heads/main` and `main` are the same branch.
fn branch_name(raw: &str) -> &str {
    let trimmed = raw.trim();
    trimmed.strip_prefix("refs/heads/").unwrap_or(trimmed)
}

#[derive(Debug)]
pub(crate) struct RunTable {
    /// Position of each run in time order (started_at, run_id, attempt).
    pub(crate) rank: Vec<u32>,
    /// Interned `run_id`: a CI run and its re-runs share it.
    pub(crate) group: Vec<u32>,
    /// Identity of the code a run tested: its commit, or its run group when the commit is
    /// unknown (a re-run tests the same code as the run it repeats).
    pub(crate) commit_code: Vec<u32>,
    /// The same in the run's job: what a run tested, environment included.
    pub(crate) code: Vec<u32>,
    /// Whether `code` is a real commit.
    pub(crate) has_commit: Vec<bool>,
    /// Interned branch; runs without a branch share one id.
    pub(crate) branch: Vec<u32>,
    /// Interned job; runs without a job share one id.
    pub(crate) job: Vec<u32>,
    /// Interned (branch, job) of each run.
    pub(crate) lane: Vec<u32>,
    lanes: usize,
    pub(crate) time_ms: Vec<i64>,
    /// Per branch id, the rank of the branch's first run in the whole history: when it began,
    /// even if that is before a test's window.
    pub(crate) branch_start: Vec<u32>,
    /// The default branch's id; `None` judges all branches together.
    pub(crate) default_branch: Option<u32>,
    /// The default branch's name, for explanations.
    pub(crate) default_branch_name: Option<String>,
    outage: Vec<bool>,
    /// Per run, `infra_sigs[infra_start[r]..infra_start[r + 1]]` are the signatures that are
    /// infrastructure in that run, sorted.
    infra_start: Vec<u32>,
    infra_sigs: Vec<u64>,
}

impl RunTable {
    pub(crate) fn build(runs: &[Run], tests: &[TestHistory], policy: &Policy) -> RunTable {
        let n = runs.len();
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_by(|&a, &b| {
            let (ra, rb) = (&runs[a as usize], &runs[b as usize]);
            ra.started_at
                .cmp(&rb.started_at)
                .then_with(|| ra.run_id.cmp(&rb.run_id))
                .then_with(|| ra.attempt.cmp(&rb.attempt))
                .then_with(|| a.cmp(&b))
        });
        let mut rank = vec![0u32; n];
        for (position, &run) in order.iter().enumerate() {
            rank[run as usize] = position as u32;
        }

        // Ids are assigned in run-index order, so they are the same on every call.
        let mut groups: HashMap<&str, u32> = HashMap::new();
        let mut commits: HashMap<&str, u32> = HashMap::new();
        let mut branches: HashMap<Option<&str>, u32> = HashMap::new();
        let mut jobs: HashMap<Option<&str>, u32> = HashMap::new();
        let mut group = Vec::with_capacity(n);
        let mut commit = Vec::with_capacity(n);
        let mut branch = Vec::with_capacity(n);
        let mut job = Vec::with_capacity(n);
        for run in runs {
            let next = groups.len() as u32;
            group.push(*groups.entry(run.run_id.as_str()).or_insert(next));
            commit.push(
                run.commit
                    .as_deref()
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(|c| {
                        let next = commits.len() as u32;
                        *commits.entry(c).or_insert(next)
                    }),
            );
            let name = run
                .branch
                .as_deref()
                .map(branch_name)
                .filter(|b| !b.is_empty());
            let next = branches.len() as u32;
            branch.push(*branches.entry(name).or_insert(next));
            let name = run.job.as_deref().map(str::trim).filter(|j| !j.is_empty());
            let next = jobs.len() as u32;
            job.push(*jobs.entry(name).or_insert(next));
        }
        let commit_count = commits.len() as u32;
        let commit_code: Vec<u32> = (0..n)
            .map(|r| commit[r].unwrap_or(commit_count + group[r]))
            .collect();
        let mut codes: HashMap<(u32, u32), u32> = HashMap::new();
        let code = (0..n)
            .map(|r| {
                let next = codes.len() as u32;
                *codes.entry((commit_code[r], job[r])).or_insert(next)
            })
            .collect();
        let mut lanes: HashMap<(u32, u32), u32> = HashMap::new();
        let lane = (0..n)
            .map(|r| {
                let next = lanes.len() as u32;
                *lanes.entry((branch[r], job[r])).or_insert(next)
            })
            .collect();
        let has_commit = commit.iter().map(Option::is_some).collect();

        let find = |name: &str| branches.get(&Some(name)).map(|&id| (id, name.to_owned()));
        let configured = policy.default_branch.as_deref().map(branch_name);
        let default = configured
            .and_then(find)
            .or_else(|| find("main"))
            .or_else(|| find("master"));

        let mut branch_start = vec![u32::MAX; branches.len()];
        for (r, &b) in branch.iter().enumerate() {
            branch_start[b as usize] = branch_start[b as usize].min(rank[r]);
        }
        let mut table = RunTable {
            branch_start,
            rank,
            group,
            code,
            has_commit,
            branch,
            job,
            lane,
            lanes: lanes.len(),
            commit_code,
            time_ms: runs.iter().map(|r| unix_ms(r.started_at)).collect(),
            default_branch: default.as_ref().map(|(id, _)| *id),
            default_branch_name: default.map(|(_, name)| name),
            outage: vec![false; n],
            infra_start: vec![0; n + 1],
            infra_sigs: Vec::new(),
        };
        table.find_infrastructure(tests, policy, &order);
        table
    }

    fn find_infrastructure(&mut self, tests: &[TestHistory], policy: &Policy, order: &[u32]) {
        let n = self.rank.len();
        let min_tests = policy.infra_signature_min_tests.max(1);
        // Distinct tests per run (executed, and failing), counted with a "last test seen"
        // marker instead of a set per run.
        let mut seen = vec![u32::MAX; n];
        let mut failed_seen = vec![u32::MAX; n];
        let mut executed = vec![0u32; n];
        let mut failing = vec![0u32; n];
        let mut failures: Vec<(u32, u64, u32)> = Vec::new();
        for (t, test) in tests.iter().enumerate() {
            let t = t as u32;
            for e in &test.executions {
                let r = e.run as usize;
                if r >= n || e.outcome == Outcome::Skipped {
                    continue;
                }
                if seen[r] != t {
                    seen[r] = t;
                    executed[r] += 1;
                }
                if e.outcome.is_failure() {
                    if failed_seen[r] != t {
                        failed_seen[r] = t;
                        failing[r] += 1;
                    }
                    if let Some(sig) = e.signature {
                        failures.push((e.run, sig, t));
                    }
                }
            }
        }
        for r in 0..n {
            self.outage[r] = failing[r] >= min_tests
                && f64::from(failing[r]) > policy.infra_failure_share * f64::from(executed[r]);
        }

        failures.sort_unstable();
        failures.dedup();
        // (run, signature, distinct tests failing with it in that run)
        let mut spread: Vec<(u32, u64, u32)> = Vec::new();
        for &(run, sig, _) in &failures {
            match spread.last_mut() {
                Some((r, s, count)) if *r == run && *s == sig => *count += 1,
                _ => spread.push((run, sig, 1)),
            }
        }
        let mut candidates: Vec<u64> = spread
            .iter()
            .filter(|&&(_, _, count)| count >= min_tests)
            .map(|&(_, sig, _)| sig)
            .collect();
        if candidates.is_empty() {
            return;
        }
        candidates.sort_unstable();
        candidates.dedup();

        // A signature hitting many tests at once is infrastructure only if it is concentrated
        // in few runs of its lane (branch and job): a shared helper broken from some commit on
        // fails in every run after it and must stay visible.
        let mut lane_position = vec![0u32; n];
        let mut lane_len = vec![0u32; self.lanes];
        for &run in order {
            let len = &mut lane_len[self.lane[run as usize] as usize];
            lane_position[run as usize] = *len;
            *len += 1;
        }
        // The runs of each lane and commit: a signature present in one of them and absent from
        // another (a re-run of the same code) cannot be the code's doing.
        let mut same_code: Vec<(u32, u32, u32)> = (0..n as u32)
            .map(|r| (self.lane[r as usize], self.commit_code[r as usize], r))
            .collect();
        same_code.sort_unstable();
        let has = |run: u32, sig: u64| {
            spread
                .binary_search_by(|&(r, s, _)| (r, s).cmp(&(run, sig)))
                .is_ok()
        };
        let comes_and_goes = |run: u32, sig: u64| {
            let key = (self.lane[run as usize], self.commit_code[run as usize]);
            let from = same_code.partition_point(|&(l, c, _)| (l, c) < key);
            same_code[from..]
                .iter()
                .take_while(|&&(l, c, _)| (l, c) == key)
                .any(|&(_, _, other)| !has(other, sig))
        };
        let mut appearances: Vec<(u32, u64, u32, u32)> = spread
            .iter()
            .filter(|(_, sig, _)| candidates.binary_search(sig).is_ok())
            .map(|&(run, sig, _)| {
                let r = run as usize;
                (self.lane[r], sig, lane_position[r], run)
            })
            .collect();
        appearances.sort_unstable();
        let mut concentrated: HashMap<(u32, u64), bool> = HashMap::new();
        for same in appearances.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
            let (lane, sig, first, _) = same[0];
            let seen_in = same.len() as u32;
            let runs_since_first = lane_len[lane as usize] - first;
            let intermittent = seen_in == 1
                || 2 * seen_in <= runs_since_first
                || same
                    .iter()
                    .any(|&(_, sig, _, run)| comes_and_goes(run, sig));
            concentrated.insert((lane, sig), intermittent);
        }
        let mut infra: Vec<(u32, u64)> = spread
            .iter()
            .filter(|&&(run, sig, count)| {
                count >= min_tests && concentrated[&(self.lane[run as usize], sig)]
            })
            .map(|&(run, sig, _)| (run, sig))
            .collect();
        infra.sort_unstable();
        let mut next = 0;
        for r in 0..n {
            self.infra_start[r] = self.infra_sigs.len() as u32;
            while next < infra.len() && infra[next].0 as usize == r {
                self.infra_sigs.push(infra[next].1);
                next += 1;
            }
        }
        self.infra_start[n] = self.infra_sigs.len() as u32;
    }

    /// Whether a failure in `run` with `sig` is evidence about the infrastructure rather than
    /// about the test.
    pub(crate) fn is_infra(&self, run: RunId, sig: Option<u64>) -> bool {
        let r = run as usize;
        if self.outage[r] {
            return true;
        }
        let (start, end) = (
            self.infra_start[r] as usize,
            self.infra_start[r + 1] as usize,
        );
        start < end && sig.is_some_and(|s| self.infra_sigs[start..end].binary_search(&s).is_ok())
    }

    pub(crate) fn len(&self) -> usize {
        self.rank.len()
    }
}
