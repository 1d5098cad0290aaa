//! Scoring throughput (divan): `score_all` over a synthetic history of 100,000 tests × 50 runs
//! on main, a few percent of them flaky (with in-run retries), some broken, one outage run and
//! one run where a job loses its database, so the infrastructure guards have work to do.
//! Also the signature of a typical failure message, which ingestion computes per failure.
//!
//! Run: `cargo bench -p flakeguard-core --bench scoring`. Figures: docs/performance.md.

use std::sync::LazyLock;

use divan::Bencher;
use divan::counter::ItemsCount;
use flakeguard_core::{
    Execution, Outcome, Policy, Run, TestHistory, TestKey, score_all, signature,
};
use time::{Duration, OffsetDateTime, macros::datetime};

const TESTS: usize = 100_000;
const RUNS: usize = 50;
const START: OffsetDateTime = datetime!(2026-06-01 00:00 UTC);

fn main() {
    LazyLock::force(&HISTORY);
    divan::main();
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

static HISTORY: LazyLock<(Vec<Run>, Vec<TestHistory>)> = LazyLock::new(|| history(TESTS, RUNS));

fn history(tests: usize, runs: usize) -> (Vec<Run>, Vec<TestHistory>) {
    let mut rng = Rng(42);
    let run_list: Vec<Run> = (0..runs)
        .map(|r| Run {
            run_id: format!("{}", 5_000_000 + r),
            attempt: 1,
            commit: Some(format!("{:040x}", (r as u64 + 1) * 0x9e37_79b9)),
            branch: Some("main".to_owned()),
            job: Some("test".to_owned()),
            started_at: START + Duration::hours(3 * r as i64),
        })
        .collect();
    let outage_run = runs / 3;
    let lost_database_run = 2 * runs / 3;
    let outage_sig = signature("The runner has received a shutdown signal");
    let refused_sig = signature("connect ECONNREFUSED 10.0.0.7:5432");
    let histories = (0..tests)
        .map(|t| {
            let kind = rng.next() % 100;
            let flaky_rate = match kind {
                0..=2 => 0.1,
                3 => 0.02,
                _ => 0.0,
            };
            let broken_from = (kind == 4).then_some(runs - 10);
            let integration = kind == 5 || kind == 6;
            let own_sig = (t as u64).wrapping_mul(0x2545_f491_4f6c_dd1d);
            let mut executions = Vec::with_capacity(runs + 2);
            for r in 0..runs {
                let run = r as u32;
                let infra = if r == outage_run && !rng.chance(0.1) {
                    Some(outage_sig)
                } else if r == lost_database_run && integration {
                    Some(refused_sig)
                } else {
                    None
                };
                let broken = broken_from.is_some_and(|from| r >= from);
                let failed = infra.is_some() || broken || rng.chance(flaky_rate);
                executions.push(Execution {
                    run,
                    attempt: 1,
                    outcome: if failed {
                        Outcome::Failed
                    } else {
                        Outcome::Passed
                    },
                    duration_ms: Some(12),
                    signature: failed.then(|| infra.unwrap_or(own_sig)),
                });
                // Flaky failures are retried once, in the run, and usually pass.
                if failed && infra.is_none() && !broken {
                    let again = rng.chance(flaky_rate);
                    executions.push(Execution {
                        run,
                        attempt: 2,
                        outcome: if again {
                            Outcome::Failed
                        } else {
                            Outcome::Passed
                        },
                        duration_ms: Some(12),
                        signature: again.then_some(own_sig),
                    });
                }
            }
            TestHistory {
                key: TestKey::from_parts(None, "suite", Some("Class"), &format!("test_{t}")),
                file: None,
                executions,
            }
        })
        .collect();
    (run_list, histories)
}

#[divan::bench(sample_count = 10, sample_size = 1)]
fn score_100k_tests_x_50_runs(bencher: Bencher) {
    let (runs, tests) = &*HISTORY;
    let policy = Policy::default();
    let now = START + Duration::hours(3 * RUNS as i64);
    let executions: usize = tests.iter().map(|t| t.executions.len()).sum();
    bencher.counter(ItemsCount::new(executions)).bench(|| {
        score_all(
            divan::black_box(runs),
            divan::black_box(tests),
            &policy,
            now,
        )
    });
}

#[divan::bench]
fn signature_of_a_typical_failure(bencher: Bencher) {
    let message = "AssertionError: expected 200 but got 503 from http://localhost:8080/api/v1/orders/42 \
                   after 1534ms at 2026-05-01T10:22:03.123Z (request 123e4567-e89b-12d3-a456-426614174000) \
                   in /home/runner/work/shop/shop/tests/test_orders.py:118";
    bencher
        .counter(divan::counter::BytesCount::of_str(message))
        .bench(|| signature(divan::black_box(message)));
}
