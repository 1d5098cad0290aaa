//! Ingestion throughput of the PostgreSQL store: ONE run of 100,000 testcases (about 5%
//! failing with a message and a signature, half of those retried and passing, 2% skipped)
//! into a fresh, migrated database — first with every test case new, then a second run of
//! the same tests (the test cases exist and only `last_seen_at` moves). Reported as
//! results (executions) per second.
//!
//! The `small_*` benchmarks time single small runs (200 test cases, 205 executions), about
//! one CI job, one after another in one database: their latency is dominated by round trips
//! and the network stack, not by the rows.
//!
//! Needs the PostgreSQL server named by `TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); each sample gets a database of its own,
//! created before and dropped after the timed part.
//!
//! `CARGO_TARGET_DIR=/work/target-postgres cargo bench -p flakeguard-store-postgres --bench ingest`

use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use divan::Bencher;
use divan::counter::ItemsCount;
use flakeguard_core::{Outcome, TestKey};
use flakeguard_store::{NewExecution, NewRun, NewTestCase, RepoId, RepoSlug, Source, Store};
use flakeguard_store_postgres::PostgresStore;
use sqlx::{Connection, PgConnection};
use time::OffsetDateTime;
use time::macros::datetime;
use tokio::runtime::Runtime;

const TESTS: usize = 100_000;
/// Test cases in a small run.
const SMALL: usize = 200;
/// Test cases in a run of 2% of the repository's (`run_history_of_100k_tests`).
const MID: usize = 2_000;
const T0: OffsetDateTime = datetime!(2026-11-01 09:00 UTC);

fn main() {
    divan::main();
}

fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[after_scheme..].find('/') {
        Some(slash) => &base[..after_scheme + slash],
        None => base,
    };
    if query.is_empty() {
        format!("{base}/{database}")
    } else {
        format!("{base}/{database}?{query}")
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

static COUNTER: AtomicU64 = AtomicU64::new(0);
static CREATED: Mutex<Vec<String>> = Mutex::new(Vec::new());

async fn admin() -> PgConnection {
    PgConnection::connect(&admin_url())
        .await
        .expect("the benchmark needs PostgreSQL at TEST_DATABASE_URL")
}

/// A fresh, migrated database with one repository (the previous sample's database is
/// dropped first, so that finished samples do not pile up on the server).
async fn fresh_store() -> (PostgresStore, RepoId) {
    drop_created().await;
    let name = format!(
        "flakeguard_bench_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let mut admin = admin().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut admin)
        .await
        .expect("create database");
    CREATED.lock().unwrap().push(name.clone());
    let store = PostgresStore::connect(&with_database(&admin_url(), &name), 4)
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    let (org, _) = store.ensure_organization("acme", "Acme").await.unwrap();
    let (repo, _) = store
        .ensure_repository(org.id, &RepoSlug::parse("acme/big").unwrap())
        .await
        .unwrap();
    (store, repo.id)
}

async fn drop_created() {
    let names = std::mem::take(&mut *CREATED.lock().unwrap());
    let mut admin = admin().await;
    for name in names {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await
        .expect("drop database");
    }
}

struct Report {
    tests: Vec<NewTestCase>,
    executions: Vec<NewExecution>,
}

/// `count` test cases (named with `prefix`, so that reports with different prefixes share no
/// test) and their executions.
fn report(count: usize, prefix: &str) -> Report {
    let tests = (0..count)
        .map(|i| {
            let module = i / 100;
            let file = format!("src/module_{module}/tests.rs");
            let name = if i % 20 == 0 {
                format!("{prefix}handles_case_{i}[param-{}]", i % 7)
            } else {
                format!("{prefix}handles_case_{i}")
            };
            NewTestCase {
                key: TestKey::from_parts(
                    Some(&file),
                    "suite",
                    Some(&format!("module_{module}::tests")),
                    &name,
                ),
                file: Some(file),
            }
        })
        .collect();
    let mut executions = Vec::with_capacity(count + count / 20);
    for i in 0..count {
        let failed = i % 20 == 3; // 5%
        let skipped = i % 50 == 7; // 2%
        let outcome = if failed {
            Outcome::Failed
        } else if skipped {
            Outcome::Skipped
        } else {
            Outcome::Passed
        };
        executions.push(NewExecution {
            test: i,
            attempt: 1,
            outcome,
            duration_ms: Some((i % 997) as u64),
            signature: failed.then_some(0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(i as u64 % 13)),
            message: failed.then(|| {
                format!(
                    "assertion `left == right` failed\n  left: {i}\n right: {}\n\tat src/module_{}/tests.rs:{}:9 \\ retry with RUST_BACKTRACE=1 — ünïcödé",
                    i + 1,
                    i / 100,
                    40 + i % 300
                )
            }),
        });
        if failed && i % 40 == 3 {
            // Half of the failures are retried and pass.
            executions.push(NewExecution {
                test: i,
                attempt: 2,
                outcome: Outcome::Passed,
                duration_ms: Some((i % 997) as u64),
                signature: None,
                message: None,
            });
        }
    }
    Report { tests, executions }
}

fn run(run_id: &str, minutes: i64) -> NewRun {
    NewRun {
        commit: Some(format!("{minutes:040x}")),
        branch: Some("main".into()),
        pr_number: None,
        run_id: run_id.into(),
        attempt: 1,
        job: "test".into(),
        source: Source::Upload,
        started_at: T0 + time::Duration::minutes(minutes),
        received_at: T0 + time::Duration::minutes(minutes + 5),
        report_digest: format!("digest-{run_id}"),
    }
}

/// Every test case is new.
#[divan::bench(sample_count = 20, sample_size = 1)]
fn first_ingest_100k_testcases(bencher: Bencher) {
    let rt = runtime();
    let report = report(TESTS, "");
    bencher
        .counter(ItemsCount::new(report.executions.len()))
        .with_inputs(|| rt.block_on(fresh_store()))
        .bench_local_values(|(store, repo)| {
            let ingested = rt
                .block_on(store.ingest(repo, &run("1", 0), &report.tests, &report.executions))
                .expect("ingest");
            assert!(ingested.created);
            store
        });
    rt.block_on(drop_created());
}

/// The same tests a second time: the test cases exist.
#[divan::bench(sample_count = 20, sample_size = 1)]
fn second_ingest_100k_testcases(bencher: Bencher) {
    let rt = runtime();
    let report = report(TESTS, "");
    bencher
        .counter(ItemsCount::new(report.executions.len()))
        .with_inputs(|| {
            rt.block_on(async {
                let (store, repo) = fresh_store().await;
                store
                    .ingest(repo, &run("1", 0), &report.tests, &report.executions)
                    .await
                    .expect("first ingest");
                (store, repo)
            })
        })
        .bench_local_values(|(store, repo)| {
            let ingested = rt
                .block_on(store.ingest(repo, &run("2", 10), &report.tests, &report.executions))
                .expect("ingest");
            assert!(ingested.created);
            store
        });
    rt.block_on(drop_created());
}

/// `load_history` of 10 such runs (1,025,000 executions).
#[divan::bench(sample_count = 10, sample_size = 1)]
fn load_history_10_runs(bencher: Bencher) {
    let rt = runtime();
    let report = report(TESTS, "");
    let (store, repo) = rt.block_on(async {
        let (store, repo) = fresh_store().await;
        for i in 0..10 {
            store
                .ingest(
                    repo,
                    &run(&i.to_string(), i64::from(i) * 10),
                    &report.tests,
                    &report.executions,
                )
                .await
                .expect("ingest");
        }
        (store, repo)
    });
    bencher
        .counter(ItemsCount::new(report.executions.len() * 10))
        .bench_local(|| {
            let history = rt.block_on(store.load_history(repo, 50)).expect("load");
            assert_eq!(history.runs.len(), 10);
            history
        });
    rt.block_on(store.close());
    rt.block_on(drop_created());
}

/// A small run whose tests the repository already knows (the usual case: one CI job after
/// another).
#[divan::bench(sample_count = 200, sample_size = 1)]
fn small_ingest_200_known_testcases(bencher: Bencher) {
    let rt = runtime();
    let report = report(SMALL, "");
    let (store, repo) = rt.block_on(async {
        let (store, repo) = fresh_store().await;
        store
            .ingest(repo, &run("0", 0), &report.tests, &report.executions)
            .await
            .expect("first ingest");
        (store, repo)
    });
    let next = Cell::new(1i64);
    bencher
        .counter(ItemsCount::new(report.executions.len()))
        .with_inputs(|| {
            let i = next.replace(next.get() + 1);
            run(&i.to_string(), i)
        })
        .bench_local_refs(|run| {
            let ingested = rt
                .block_on(store.ingest(repo, run, &report.tests, &report.executions))
                .expect("ingest");
            assert!(ingested.created);
        });
    rt.block_on(store.close());
    rt.block_on(drop_created());
}

/// A small run of tests the repository has never seen (in a repository that has others).
#[divan::bench(sample_count = 200, sample_size = 1)]
fn small_ingest_200_new_testcases(bencher: Bencher) {
    let rt = runtime();
    let (store, repo) = rt.block_on(async {
        let (store, repo) = fresh_store().await;
        let first = report(SMALL, "r0_");
        store
            .ingest(repo, &run("0", 0), &first.tests, &first.executions)
            .await
            .expect("first ingest");
        (store, repo)
    });
    let next = Cell::new(1i64);
    bencher
        .counter(ItemsCount::new(report(SMALL, "").executions.len()))
        .with_inputs(|| {
            let i = next.replace(next.get() + 1);
            (run(&i.to_string(), i), report(SMALL, &format!("r{i}_")))
        })
        .bench_local_refs(|(run, report)| {
            let ingested = rt
                .block_on(store.ingest(repo, run, &report.tests, &report.executions))
                .expect("ingest");
            assert!(ingested.created);
        });
    rt.block_on(store.close());
    rt.block_on(drop_created());
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
    let full_report = report(TESTS, "");
    let small_report = report(SMALL, "");
    let mid_report = report(MID, "");
    let (store, repo, full, small_run, mid_run) = rt.block_on(async {
        let (store, repo) = fresh_store().await;
        let mut full = None;
        for i in 0..10 {
            let ingested = store
                .ingest(
                    repo,
                    &run(&i.to_string(), i64::from(i) * 10),
                    &full_report.tests,
                    &full_report.executions,
                )
                .await
                .expect("ingest");
            full = Some(ingested.run);
        }
        let small_run = store
            .ingest(
                repo,
                &run("small", 100),
                &small_report.tests,
                &small_report.executions,
            )
            .await
            .expect("ingest")
            .run;
        let mid_run = store
            .ingest(
                repo,
                &run("mid", 110),
                &mid_report.tests,
                &mid_report.executions,
            )
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
            "small_run" => SMALL,
            "mid_run" => MID,
            _ => TESTS,
        };
        assert_eq!(history.tests.len(), expected);
        history
    });
    rt.block_on(store.close());
    rt.block_on(drop_created());
}
