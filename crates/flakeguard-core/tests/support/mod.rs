//! Hand-built histories for the scoring tests: a tiny language for one test's runs, and a
//! builder for runs with many tests.
//!
//! A history is a list of tokens, one per CI run, each run one hour after the previous one.
//! A token is the run's attempts in order: `P` passed, `F` failed, `E` errored, `S` skipped,
//! `X` failed with the shared "connection refused" signature. So `FP` is a failure retried
//! into a pass inside one run. A prefix says which code the run tested:
//!
//! - none: a new commit;
//! - `=`: the previous run's commit, in a new CI run;
//! - `r`: a re-run of the previous CI run (same run id, next attempt, same commit).
// Each test binary uses a different part of this module, so `expect` would be unfulfilled in
// some of them.
#![allow(dead_code, unreachable_pub)]

use flakeguard_core::scoring::TestScore;
use flakeguard_core::{Execution, Outcome, Policy, Run, RunId, TestHistory, TestKey, score_all};
use time::{Duration, OffsetDateTime, macros::datetime};

pub const START: OffsetDateTime = datetime!(2026-01-05 00:00 UTC);

pub fn shared_signature() -> u64 {
    flakeguard_core::signature("connect ECONNREFUSED 10.0.0.7:5432")
}

pub fn own_signature(test: usize) -> u64 {
    flakeguard_core::signature(&format!("assertion failed in test_{}", letters(test)))
}

/// A test-specific word without digits, so normalization keeps tests apart.
fn letters(mut n: usize) -> String {
    let mut s = String::new();
    loop {
        s.push(char::from(b'a' + (n % 26) as u8));
        n /= 26;
        if n == 0 {
            return s;
        }
    }
}

#[derive(Debug)]
pub struct Builder {
    pub runs: Vec<Run>,
    pub tests: Vec<TestHistory>,
    hour: i64,
    commits: usize,
    run_ids: usize,
}

impl Builder {
    pub fn new(tests: usize) -> Self {
        Builder {
            runs: Vec::new(),
            tests: (0..tests)
                .map(|t| TestHistory {
                    key: TestKey::from_parts(None, "suite", None, &format!("test_{}", letters(t))),
                    file: None,
                    executions: Vec::new(),
                })
                .collect(),
            hour: 0,
            commits: 0,
            run_ids: 0,
        }
    }

    /// Moves the clock forward (between runs).
    pub fn wait_hours(&mut self, hours: i64) {
        self.hour += hours;
    }

    /// Adds one run on `branch`; `outcomes[t]` holds test t's attempts (empty: not run; tests
    /// past the slice's end pass). `prefix` is `""`, `"="` or `"r"` as in the token language.
    pub fn run(&mut self, branch: &str, prefix: &str, outcomes: &[&str]) -> RunId {
        let previous = self.runs.last().cloned();
        let (run_id, attempt, commit) = match (prefix, previous) {
            ("r", Some(p)) => (p.run_id, p.attempt + 1, p.commit),
            ("=", Some(p)) => {
                self.run_ids += 1;
                (format!("ci-{}", self.run_ids), 1, p.commit)
            }
            _ => {
                self.run_ids += 1;
                self.commits += 1;
                (
                    format!("ci-{}", self.run_ids),
                    1,
                    Some(format!(
                        "{:040x}",
                        0xc0ffee_u64 * 1000 + self.commits as u64
                    )),
                )
            }
        };
        let id = self.runs.len() as RunId;
        self.runs.push(Run {
            run_id,
            attempt,
            commit,
            branch: (!branch.is_empty()).then(|| branch.to_owned()),
            job: None,
            started_at: START + Duration::hours(self.hour),
        });
        self.hour += 1;
        for (t, test) in self.tests.iter_mut().enumerate() {
            let attempts = outcomes.get(t).copied().unwrap_or("P");
            for (i, c) in attempts.chars().enumerate() {
                let (outcome, signature) = match c {
                    'P' => (Outcome::Passed, None),
                    'F' => (Outcome::Failed, Some(own_signature(t))),
                    'E' => (Outcome::Error, Some(own_signature(t))),
                    'S' => (Outcome::Skipped, None),
                    'X' => (Outcome::Failed, Some(shared_signature())),
                    other => panic!("unknown attempt {other:?}"),
                };
                test.executions.push(Execution {
                    run: id,
                    attempt: i as u32 + 1,
                    outcome,
                    duration_ms: Some(10),
                    signature,
                });
            }
        }
        id
    }

    /// One CI run of a job matrix: a run per job, sharing the run id and commit.
    pub fn matrix(&mut self, branch: &str, jobs: &[(&str, &[&str])]) -> Vec<RunId> {
        let mut ids = Vec::new();
        for (i, (job, outcomes)) in jobs.iter().enumerate() {
            let id = self.run(branch, if i == 0 { "" } else { "=" }, outcomes);
            if let Some(&first) = ids.first() {
                let first: &Run = &self.runs[first as usize];
                let run_id = first.run_id.clone();
                self.runs[id as usize].run_id = run_id;
            }
            self.runs[id as usize].job = Some((*job).to_owned());
            ids.push(id);
        }
        ids
    }

    /// Adds runs for test 0 (other tests pass) from the token language.
    pub fn history(&mut self, branch: &str, tokens: &str) -> Vec<RunId> {
        tokens
            .split_whitespace()
            .map(|token| {
                let (prefix, attempts) = match token.as_bytes()[0] {
                    b'=' => ("=", &token[1..]),
                    b'r' => ("r", &token[1..]),
                    _ => ("", token),
                };
                self.run(branch, prefix, &[attempts])
            })
            .collect()
    }

    /// One hour after the last run.
    pub fn now(&self) -> OffsetDateTime {
        START + Duration::hours(self.hour)
    }

    pub fn score(&self, policy: &Policy) -> Vec<TestScore> {
        score_all(&self.runs, &self.tests, policy, self.now())
    }

    pub fn score_first(&self) -> TestScore {
        self.score(&Policy::default()).swap_remove(0)
    }
}

/// Scores test 0 of a single-branch history written in the token language.
pub fn judge(branch: &str, tokens: &str) -> TestScore {
    let mut b = Builder::new(1);
    b.history(branch, tokens);
    b.score_first()
}

/// `n` copies of a token, space separated.
pub fn times(token: &str, n: usize) -> String {
    vec![token; n].join(" ")
}
