//! Bulk ingestion into SQLite: one run of a 100,000-testcase report (about 5% failures with a
//! message and a signature, half of them retried once), into a fresh migrated database file.
//!
//! - `first_run`: every test case is new (inserted);
//! - `second_run`: the same tests again in a new run (test cases updated, ids reused).
//!
//! Throughput is in results (executions) per second. Run with
//! `cargo bench -p flakeguard-store-sqlite --bench ingest`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use divan::Bencher;
use divan::counter::ItemsCount;
use flakeguard_core::{Outcome, TestKey};
use flakeguard_store::{NewExecution, NewRun, NewTestCase, RepoId, RepoSlug, Source, Store};
use flakeguard_store_sqlite::SqliteStore;
use time::macros::datetime;
use tokio::runtime::Runtime;

const TESTS: usize = 100_000;

fn main() {
    divan::main();
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A directory for this benchmark's databases, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("sqlite-ingest-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Scratch(dir)
    }

    fn next_db(&self) -> PathBuf {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        self.0
            .join(format!("{}.db", NEXT.fetch_add(1, Ordering::Relaxed)))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn report() -> (Vec<NewTestCase>, Vec<NewExecution>) {
    let tests: Vec<NewTestCase> = (0..TESTS)
        .map(|i| {
            let module = i / 200;
            let file = format!("tests/integration/module_{module}/test_feature.py");
            NewTestCase {
                key: TestKey::from_parts(
                    Some(&file),
                    "pytest",
                    Some(&format!("tests.integration.module_{module}.TestFeature")),
                    &format!("test_behaviour_{i}_is_correct[param-{}]", i % 7),
                ),
                file: Some(file),
            }
        })
        .collect();
    let mut executions = Vec::with_capacity(TESTS + TESTS / 40);
    for i in 0..TESTS {
        let failed = i % 20 == 0;
        executions.push(NewExecution {
            test: i,
            attempt: 1,
            outcome: if failed {
                Outcome::Failed
            } else if i % 50 == 1 {
                Outcome::Skipped
            } else {
                Outcome::Passed
            },
            duration_ms: Some((i % 900) as u64 + 3),
            signature: failed.then_some(0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(i as u64 % 97)),
            message: failed.then(|| {
                format!(
                    "AssertionError: expected status 200 but got 503 from http://localhost:8080/api/items/{i} \
                     after 3 retries (timeout 30s); see logs for request id 7f9c{i:08x}"
                )
            }),
        });
        if i % 40 == 0 {
            executions.push(NewExecution {
                test: i,
                attempt: 2,
                outcome: Outcome::Passed,
                duration_ms: Some(40),
                signature: None,
                message: None,
            });
        }
    }
    (tests, executions)
}

fn run(run_id: &str, minutes: i64) -> NewRun {
    NewRun {
        commit: Some(format!("{minutes:040x}")),
        branch: Some("main".to_owned()),
        pr_number: None,
        run_id: run_id.to_owned(),
        attempt: 1,
        job: "test".to_owned(),
        source: Source::Upload,
        started_at: datetime!(2026-11-01 09:00 UTC) + time::Duration::minutes(minutes),
        received_at: datetime!(2026-11-01 09:05 UTC) + time::Duration::minutes(minutes),
        report_digest: format!("{minutes:064x}"),
    }
}

async fn fresh_store(path: &Path) -> (SqliteStore, RepoId) {
    let store = SqliteStore::open(path).await.expect("open");
    store.migrate().await.expect("migrate");
    let (org, _) = store.ensure_organization("acme", "Acme").await.unwrap();
    let repo = store
        .ensure_repository(org.id, &RepoSlug::parse("acme/big").unwrap())
        .await
        .unwrap()
        .0
        .id;
    (store, repo)
}

/// All 100k test cases are new.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn first_run(bencher: Bencher) {
    let rt = runtime();
    let scratch = Scratch::new("first");
    let (tests, executions) = report();
    bencher
        .counter(ItemsCount::new(executions.len()))
        .with_inputs(|| rt.block_on(fresh_store(&scratch.next_db())))
        .bench_local_values(|(store, repo)| {
            let ingested = rt
                .block_on(store.ingest(repo, &run("1", 0), &tests, &executions))
                .expect("ingest");
            assert!(ingested.created);
            store
        });
}

/// The same 100k tests in a second run: every test case exists already.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn second_run(bencher: Bencher) {
    let rt = runtime();
    let scratch = Scratch::new("second");
    let (tests, executions) = report();
    bencher
        .counter(ItemsCount::new(executions.len()))
        .with_inputs(|| {
            rt.block_on(async {
                let (store, repo) = fresh_store(&scratch.next_db()).await;
                store
                    .ingest(repo, &run("1", 0), &tests, &executions)
                    .await
                    .expect("first ingest");
                (store, repo)
            })
        })
        .bench_local_values(|(store, repo)| {
            let ingested = rt
                .block_on(store.ingest(repo, &run("2", 10), &tests, &executions))
                .expect("ingest");
            assert!(ingested.created);
            store
        });
}

/// Reading back 10 runs of the 100k tests (about 1M executions): what a rescore loads.
#[divan::bench(sample_count = 5, sample_size = 1)]
fn load_history_10_runs(bencher: Bencher) {
    let rt = runtime();
    let scratch = Scratch::new("history");
    let (tests, executions) = report();
    let (store, repo) = rt.block_on(async {
        let (store, repo) = fresh_store(&scratch.next_db()).await;
        for i in 0..10 {
            store
                .ingest(repo, &run(&i.to_string(), i), &tests, &executions)
                .await
                .expect("ingest");
        }
        (store, repo)
    });
    bencher
        .counter(ItemsCount::new(10 * executions.len()))
        .bench_local(|| {
            let history = rt.block_on(store.load_history(repo, 10)).expect("load");
            assert_eq!(history.tests.len(), TESTS);
            history
        });
    rt.block_on(store.close());
}

/// The scoring window of one run's tests (`load_run_history`, 12 runs) in a repository of 100k
/// tests with 10 full runs and then a run of 200 of them (one CI job) and one of 2,000: for
/// those two runs, for the last full run, and `load_history` of the same window for
/// comparison.
#[divan::bench(
    sample_count = 10,
    sample_size = 1,
    args = ["small_run", "mid_run", "full_run", "load_history"]
)]
fn run_history_of_100k_tests(bencher: Bencher, what: &str) {
    let rt = runtime();
    let scratch = Scratch::new("run-history");
    let (tests, executions) = report();
    let first = |n: usize| -> Vec<NewExecution> {
        executions.iter().filter(|e| e.test < n).cloned().collect()
    };
    let (small, mid) = (first(200), first(2_000));
    let (store, repo, full, small_run, mid_run) = rt.block_on(async {
        let (store, repo) = fresh_store(&scratch.next_db()).await;
        let mut full = None;
        for i in 0..10 {
            let ingested = store
                .ingest(repo, &run(&i.to_string(), i), &tests, &executions)
                .await
                .expect("ingest");
            full = Some(ingested.run);
        }
        let small_run = store
            .ingest(repo, &run("small", 10), &tests[..200], &small)
            .await
            .expect("ingest")
            .run;
        let mid_run = store
            .ingest(repo, &run("mid", 11), &tests[..2_000], &mid)
            .await
            .expect("ingest")
            .run;
        (store, repo, full.expect("ten runs"), small_run, mid_run)
    });
    bencher.bench_local(|| {
        let history = match what {
            "small_run" => rt.block_on(store.load_run_history(repo, small_run, 50)),
            "mid_run" => rt.block_on(store.load_run_history(repo, mid_run, 50)),
            "full_run" => rt.block_on(store.load_run_history(repo, full, 50)),
            _ => rt.block_on(store.load_history(repo, 50)),
        }
        .expect("load");
        assert_eq!(history.runs.len(), 12);
        let expected = match what {
            "small_run" => 200,
            "mid_run" => 2_000,
            _ => TESTS,
        };
        assert_eq!(history.tests.len(), expected);
        history
    });
    rt.block_on(store.close());
}
