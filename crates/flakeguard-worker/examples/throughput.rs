//! Jobs per second through each queue backend: raw queue operations, the worker with trivial
//! jobs, and the worker with real `score_tests` jobs. The figures in docs/performance.md come
//! from
//!
//! ```sh
//! cargo run --release -p flakeguard-worker --example throughput
//! ```
//!
//! It needs Redis (`TEST_REDIS_URL`, default `redis://127.0.0.1:6379`) and PostgreSQL
//! (`TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`; a scratch
//! database is created and dropped). Sizes: `JOBS` (trivial jobs per pass, 4000), `RUNS` and
//! `TESTS` (the score_tests history, 50 runs of 2000 tests). Everything it creates is removed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flakeguard_app::jobs::{self, Job, JobContext};
use flakeguard_app::{ReportFile, RunMeta, ingest_reports, rescore};
use flakeguard_core::Policy;
use flakeguard_queue::{JobQueue, NewJob, RedisQueue, SqliteQueue};
use flakeguard_store::{DeliveryId, RepoSlug, Repository, Source, Store};
use flakeguard_store_postgres::PostgresStore;
use flakeguard_store_sqlite::SqliteStore;
use flakeguard_worker::WorkerConfig;
use time::OffsetDateTime;
use tokio::sync::watch;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn postgres_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn stamp() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}-{nanos}", std::process::id())
}

#[derive(Clone, Copy, Debug)]
enum QueueKind {
    Sqlite,
    Redis,
}

impl QueueKind {
    fn name(self) -> &'static str {
        match self {
            QueueKind::Sqlite => "SQLite",
            QueueKind::Redis => "Redis",
        }
    }

    async fn open(self, dir: &Path) -> Result<Arc<dyn JobQueue>, Error> {
        Ok(match self {
            QueueKind::Sqlite => {
                Arc::new(SqliteQueue::open(&dir.join(format!("{}.db", stamp()))).await?)
            }
            QueueKind::Redis => {
                Arc::new(RedisQueue::connect(&redis_url(), &format!("fg-bench-{}", stamp())).await?)
            }
        })
    }
}

/// Everything in the queue is gone: nothing pending, running or waiting for a retry.
async fn drained(queue: &dyn JobQueue, names: &[&str]) -> Result<bool, Error> {
    let stats = queue.stats(names).await?;
    Ok(stats.iter().all(|s| s.pending + s.running + s.failed == 0))
}

/// Raw queue operations: push `jobs` jobs, then `consumers` tasks reserve and complete them
/// until the queue is empty.
async fn raw(
    kind: QueueKind,
    dir: &Path,
    jobs: usize,
    consumers: usize,
) -> Result<(f64, f64), Error> {
    let queue = kind.open(dir).await?;
    let started = Instant::now();
    for i in 0..jobs {
        queue
            .push(&NewJob {
                queue: "bench".to_owned(),
                id: format!("job-{i}"),
                payload: format!(r#"{{"n":{i}}}"#),
                max_attempts: 3,
            })
            .await?;
    }
    let push_rate = jobs as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..consumers {
        let queue = Arc::clone(&queue);
        tasks.spawn(async move {
            let mut done = 0usize;
            while let Some(lease) = queue.reserve(&["bench"], Duration::from_secs(60)).await? {
                if queue.complete(&lease).await? {
                    done += 1;
                }
            }
            Ok::<usize, Error>(done)
        });
    }
    let mut done = 0;
    while let Some(result) = tasks.join_next().await {
        done += result??;
    }
    let rate = done as f64 / started.elapsed().as_secs_f64();
    if done != jobs {
        return Err(format!("{} completed {done} of {jobs} jobs", kind.name()).into());
    }
    Ok((push_rate, rate))
}

fn worker_config(concurrency: usize) -> WorkerConfig {
    WorkerConfig {
        concurrency,
        poll: Duration::from_millis(5),
        sweep_every: Duration::from_secs(3600),
        maintenance_every: Duration::from_secs(100 * 365 * 24 * 3600),
        ..WorkerConfig::default()
    }
}

/// Runs a worker until `done` says the work is finished; the elapsed time.
async fn run_worker<F, Fut>(
    queue: Arc<dyn JobQueue>,
    ctx: JobContext,
    concurrency: usize,
    mut done: F,
) -> Result<Duration, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, Error>>,
{
    let (stop, mut stopped) = watch::channel(false);
    let started = Instant::now();
    let worker = tokio::spawn(flakeguard_worker::run(
        queue,
        ctx,
        worker_config(concurrency),
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        },
    ));
    while !done().await? {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    let _ = stop.send(true);
    let summary = worker.await?;
    if summary.dead > 0 || summary.lost > 0 {
        return Err(format!("worker summary {summary:?}").into());
    }
    Ok(elapsed)
}

async fn sqlite_store(dir: &Path) -> Result<Arc<dyn Store>, Error> {
    let store = SqliteStore::open(&dir.join(format!("store-{}.db", stamp()))).await?;
    store.migrate().await?;
    Ok(Arc::new(store))
}

/// The worker with trivial jobs: `process_webhook` for deliveries that are not stored, so
/// each job is one indexed read before it completes.
async fn trivial(
    kind: QueueKind,
    dir: &Path,
    jobs: usize,
    concurrency: usize,
) -> Result<f64, Error> {
    let queue = kind.open(dir).await?;
    let store = sqlite_store(dir).await?;
    for i in 0..jobs {
        jobs::enqueue(&*queue, &Job::webhook(DeliveryId(1_000_000 + i as i64))).await?;
    }
    let ctx = JobContext::new(store, Policy::default());
    let probe = Arc::clone(&queue);
    let elapsed = run_worker(queue, ctx, concurrency, || {
        let probe = Arc::clone(&probe);
        async move { drained(&*probe, &["process_webhook"]).await }
    })
    .await?;
    Ok(jobs as f64 / elapsed.as_secs_f64())
}

fn report(run: usize, tests: usize) -> Vec<ReportFile> {
    let mut xml = String::with_capacity(tests * 80);
    xml.push_str("<testsuite name=\"bench\">");
    for t in 0..tests {
        // One test in 40 is flaky: it fails in some runs and not others.
        let fails = t % 40 == 7 && (run * 7 + t).is_multiple_of(3);
        xml.push_str(&format!(
            "<testcase classname=\"bench.Module{}\" name=\"test_{t}\" time=\"0.01\">",
            t % 50
        ));
        if fails {
            xml.push_str("<failure message=\"assertion failed\">at bench.rs:1</failure>");
        }
        xml.push_str("</testcase>");
    }
    xml.push_str("</testsuite>");
    vec![ReportFile {
        name: "junit.xml".to_owned(),
        bytes: xml.into_bytes(),
    }]
}

async fn repository(store: &dyn Store, name: &str) -> Result<Repository, Error> {
    let (org, _) = store.ensure_organization("bench", "Bench").await?;
    let (repo, _) = store
        .ensure_repository(org.id, &RepoSlug::parse(&format!("bench/{name}"))?)
        .await?;
    Ok(repo)
}

/// Ingests `runs` runs of `tests` tests into a fresh repository (not scored).
async fn history(
    store: &dyn Store,
    runs: usize,
    tests: usize,
) -> Result<(Repository, Vec<Job>), Error> {
    let repo = repository(store, &format!("r{}", stamp())).await?;
    let now = OffsetDateTime::now_utc();
    let mut jobs = Vec::with_capacity(runs);
    for run in 0..runs {
        let meta = RunMeta {
            repo: repo.slug.clone(),
            commit: Some(format!("{run:040x}")),
            branch: Some("main".to_owned()),
            run_id: Some(format!("bench-{run}")),
            attempt: 1,
            job: "test".to_owned(),
            pr: None,
            started_at: Some(now - time::Duration::minutes((runs - run) as i64)),
            source: Source::Upload,
        };
        let ingested = ingest_reports(store, &repo, &meta, &report(run, tests), now).await?;
        jobs.push(Job::score(repo.id, ingested.run));
    }
    Ok((repo, jobs))
}

/// The worker with real `score_tests` jobs, one per run of a fresh history.
async fn scoring(
    store: Arc<dyn Store>,
    queue: Arc<dyn JobQueue>,
    runs: usize,
    tests: usize,
    concurrency: usize,
) -> Result<f64, Error> {
    let (_, jobs) = history(&*store, runs, tests).await?;
    for job in &jobs {
        jobs::enqueue(&*queue, job).await?;
    }
    let ctx = JobContext::new(Arc::clone(&store), Policy::default());
    let probe = (Arc::clone(&queue), Arc::clone(&store));
    let elapsed = run_worker(queue, ctx, concurrency, || {
        let (queue, store) = (Arc::clone(&probe.0), Arc::clone(&probe.1));
        async move {
            Ok(drained(&*queue, &["score_tests"]).await?
                && store
                    .unscored_runs(OffsetDateTime::now_utc() + time::Duration::hours(1), 1)
                    .await?
                    .is_empty())
        }
    })
    .await?;
    Ok(jobs.len() as f64 / elapsed.as_secs_f64())
}

/// One `score_tests` job against a full rescore of a repository of `tests` tests: what the
/// job saves by re-scoring only the tests of the run (here 200) instead of the whole
/// repository.
async fn one_run_vs_full(
    store: Arc<dyn Store>,
    tests: usize,
) -> Result<(Duration, Duration), Error> {
    let runs = 20;
    let (repo, _) = history(&*store, runs, tests).await?;
    let policy = Policy::default();
    let started = Instant::now();
    rescore(&*store, repo.id, OffsetDateTime::now_utc()).await?;
    let full = started.elapsed();
    let now = OffsetDateTime::now_utc();
    let meta = RunMeta {
        repo: repo.slug.clone(),
        commit: Some("f".repeat(40)),
        branch: Some("main".to_owned()),
        run_id: Some("bench-small".to_owned()),
        attempt: 1,
        job: "unit".to_owned(),
        pr: None,
        started_at: Some(now),
        source: Source::Upload,
    };
    let small = ingest_reports(&*store, &repo, &meta, &report(runs + 1, 200), now).await?;
    let ctx = JobContext::new(store, policy);
    let started = Instant::now();
    jobs::handle(&ctx, &Job::score(repo.id, small.run))
        .await
        .map_err(|e| format!("score job: {e:?}"))?;
    Ok((full, started.elapsed()))
}

struct Scratch {
    dir: PathBuf,
    database: Option<String>,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn postgres_store(scratch: &mut Scratch) -> Result<Arc<dyn Store>, Error> {
    let name = format!("fg_bench_{}", stamp().replace('-', "_"));
    admin(&format!("CREATE DATABASE \"{name}\"")).await?;
    scratch.database = Some(name.clone());
    let url = match postgres_url().rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => return Err("TEST_DATABASE_URL has no database name".into()),
    };
    let store = PostgresStore::connect(&url, 16).await?;
    store.migrate().await?;
    Ok(Arc::new(store))
}

/// One statement on the server's maintenance database (CREATE / DROP DATABASE).
async fn admin(sql: &str) -> Result<(), Error> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&postgres_url()).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await?;
    Ok(())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Error> {
    let jobs = env_number("JOBS", 4000);
    let runs = env_number("RUNS", 50);
    let tests = env_number("TESTS", 2000);
    let mut scratch = Scratch {
        dir: std::env::temp_dir().join(format!("fg-throughput-{}", stamp())),
        database: None,
    };
    std::fs::create_dir_all(&scratch.dir)?;
    let result = measure(&mut scratch, jobs, runs, tests).await;
    if let Some(name) = scratch.database.take() {
        admin(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await?;
    }
    result
}

async fn measure(
    scratch: &mut Scratch,
    jobs: usize,
    runs: usize,
    tests: usize,
) -> Result<(), Error> {
    let dir = scratch.dir.clone();
    println!("## raw queue: push {jobs} jobs, then reserve + complete until empty");
    for kind in [QueueKind::Sqlite, QueueKind::Redis] {
        for consumers in [1, 8] {
            let (push, rate) = raw(kind, &dir, jobs, consumers).await?;
            println!(
                "{:<7} consumers {consumers}: push {push:>7.0} jobs/s, reserve+complete {rate:>7.0} jobs/s",
                kind.name()
            );
        }
    }
    println!("\n## worker, trivial jobs ({jobs} process_webhook jobs for unknown deliveries)");
    for kind in [QueueKind::Sqlite, QueueKind::Redis] {
        for concurrency in [1, 4, 16] {
            let rate = trivial(kind, &dir, jobs, concurrency).await?;
            println!(
                "{:<7} concurrency {concurrency:>2}: {rate:>7.0} jobs/s",
                kind.name()
            );
        }
    }
    println!("\n## worker, score_tests jobs ({runs} runs of {tests} tests, one job per run)");
    let sqlite = sqlite_store(&dir).await?;
    let postgres = postgres_store(scratch).await?;
    for concurrency in [1, 4] {
        let queue = QueueKind::Sqlite.open(&dir).await?;
        let rate = scoring(Arc::clone(&sqlite), queue, runs, tests, concurrency).await?;
        println!(
            "SQLite store + SQLite queue, concurrency {concurrency}: {rate:>6.1} jobs/s ({:>7.0} tests scored/s)",
            rate * tests as f64
        );
        let queue = QueueKind::Redis.open(&dir).await?;
        let rate = scoring(Arc::clone(&postgres), queue, runs, tests, concurrency).await?;
        println!(
            "PostgreSQL store + Redis queue, concurrency {concurrency}: {rate:>6.1} jobs/s ({:>7.0} tests scored/s)",
            rate * tests as f64
        );
    }
    let big = env_number("BIG_TESTS", 100_000);
    println!(
        "\n## one score_tests job (a 200-test run) against a full rescore, {big} tests, 20 runs"
    );
    for (name, store) in [("SQLite", sqlite), ("PostgreSQL", postgres)] {
        let (full, one) = one_run_vs_full(store, big).await?;
        println!(
            "{name:<10}: full rescore {:>7.1} ms, one job {:>6.1} ms ({:.0}x)",
            full.as_secs_f64() * 1e3,
            one.as_secs_f64() * 1e3,
            full.as_secs_f64() / one.as_secs_f64()
        );
    }
    Ok(())
}
