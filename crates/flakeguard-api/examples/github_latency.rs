//! Time from a `workflow_run` `completed` delivery to the "FlakeGuard" check run posted,
//! for an artifact holding one report of 5,000 tests, against a fake GitHub on loopback
//! (issue #5's goal: under 2 s). The API, the worker and the fake run in this process; each
//! delivery is a new workflow run on a new commit of one repository, so later ones are scored
//! against a growing history.
//!
//! ```sh
//! cargo run --release -p flakeguard-api --example github_latency
//! cargo run --release -p flakeguard-api --example github_latency -- --postgres postgres://postgres@127.0.0.1:5432/postgres
//! ```
//!
//! With `--postgres` the store is a database created (and dropped) on that server and the
//! queue is Redis (`TEST_REDIS_URL`, default `redis://127.0.0.1:6379`, a key prefix of its
//! own), as the runbook deploys; without it, SQLite and the embedded queue.

use std::sync::Arc;
use std::time::{Duration, Instant};

use flakeguard_api::{AppState, Listeners};
use flakeguard_app::github::GitHub;
use flakeguard_app::jobs::JobContext;
use flakeguard_app::{GitHubSettings, Secret, Settings};
use flakeguard_github::fake::{FakeGitHub, zip_archive};
use flakeguard_github::{ClientOptions, GitHubApp};
use flakeguard_queue::{JobQueue, RedisQueue, SqliteQueue};
use flakeguard_store::Store;
use flakeguard_store_postgres::PostgresStore;
use flakeguard_store_sqlite::SqliteStore;
use flakeguard_worker::WorkerConfig;
use sqlx::{Connection, PgConnection};
use tokio::net::TcpListener;

const SECRET: &str = "latency-webhook-secret-0123456789";
const INSTALLATION: i64 = 99;
const TESTS: usize = 5_000;
const DELIVERIES: usize = 8;

fn report(tests: usize, run: usize) -> String {
    let mut xml = String::with_capacity(tests * 120);
    xml.push_str("<?xml version=\"1.0\"?>\n<testsuites>\n");
    for suite in 0..tests / 100 {
        xml.push_str(&format!("<testsuite name=\"suite{suite}\">\n"));
        for case in 0..100 {
            let n = suite * 100 + case;
            // 1% fail, a different 1% each run, and one test in 200 passes on retry now and
            // then: there are new failures and flaky tests to report.
            if (n + run * 7).is_multiple_of(100) {
                xml.push_str(&format!("<testcase classname=\"pkg.Class{suite}\" name=\"test_{case}\" time=\"0.01\"><failure message=\"expected 1, got 2\">at pkg/Class{suite}.java:{case}</failure></testcase>\n"));
            } else if n % 200 == 1 && run.is_multiple_of(2) {
                xml.push_str(&format!("<testcase classname=\"pkg.Class{suite}\" name=\"test_{case}\" time=\"0.01\"><flakyFailure message=\"timed out\"/></testcase>\n"));
            } else {
                xml.push_str(&format!(
                    "<testcase classname=\"pkg.Class{suite}\" name=\"test_{case}\" time=\"0.01\"/>\n"
                ));
            }
        }
        xml.push_str("</testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml
}

fn delivery(run: usize) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "action": "completed",
        "workflow_run": {
            "id": 1_000 + run,
            "name": "CI",
            "workflow_id": 7,
            "run_number": run,
            "run_attempt": 1,
            "head_sha": format!("{run:040x}"),
            "head_branch": "main",
            "event": "push",
            "status": "completed",
            "conclusion": "failure",
            "pull_requests": [],
            "artifacts_url": "https://api.github.com/repos/bench/app/actions/runs/1/artifacts",
        },
        "repository": { "id": 5, "full_name": "bench/app", "name": "app", "default_branch": "main" },
        "installation": { "id": INSTALLATION },
    }))
    .expect("JSON")
}

fn sign(body: &[u8]) -> String {
    flakeguard_github::sign_webhook(SECRET.as_bytes(), body)
}

async fn measure(name: &str, store: Arc<dyn Store>, queue: Arc<dyn JobQueue>) {
    store.migrate().await.expect("migrate");
    let fake = FakeGitHub::start().await;
    fake.add_installation(INSTALLATION, "bench");
    let github = GitHub {
        app: GitHubApp::new(fake.app_config(), ClientOptions::default()).expect("App key"),
        quarantine_actions: true,
        public_url: None,
        limits: Default::default(),
    };
    let settings = Settings {
        github: GitHubSettings {
            webhook_secret: Some(Secret::new(SECRET)),
            ..GitHubSettings::default()
        },
        ..Settings::default()
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let mut ctx = JobContext::new(Arc::clone(&store), flakeguard_core::Policy::default());
    ctx.github = Some(Arc::new(github));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(flakeguard_worker::run(
        Arc::clone(&queue),
        ctx,
        WorkerConfig {
            poll: Duration::from_millis(5),
            ..WorkerConfig::default()
        },
        async move {
            let mut stopped = stopped;
            let _ = stopped.wait_for(|s| *s).await;
        },
    ));
    let state = AppState::new(store, queue, settings);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(flakeguard_api::serve(
        state,
        Listeners {
            api: Some(listener),
            ..Listeners::default()
        },
        async move {
            let _ = rx.await;
        },
    ));
    let http = reqwest::Client::new();
    println!("== {name}: one artifact of {TESTS} tests per workflow run ==");
    let mut times = Vec::new();
    for run in 1..=DELIVERIES {
        let xml = report(TESTS, run);
        fake.add_artifact(
            "bench",
            "app",
            (1_000 + run) as i64,
            "test-results",
            zip_archive(&[("junit.xml", xml.as_bytes())]),
        );
        let body = delivery(run);
        let started = Instant::now();
        let answer = http
            .post(format!("{base}/api/github/webhook"))
            .header("x-github-event", "workflow_run")
            .header("x-github-delivery", format!("latency-{run}"))
            .header("x-hub-signature-256", sign(&body))
            .body(body)
            .send()
            .await
            .expect("delivery");
        let accepted = started.elapsed();
        assert_eq!(answer.status(), 202);
        loop {
            if fake.check_runs().len() == run {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "no check run after 120 s"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let took = started.elapsed();
        times.push(took);
        println!(
            "delivery {run}: 202 in {:.1} ms, check run posted after {:.0} ms",
            accepted.as_secs_f64() * 1e3,
            took.as_secs_f64() * 1e3
        );
    }
    times.sort();
    println!(
        "median {:.0} ms, slowest {:.0} ms",
        times[times.len() / 2].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3
    );
    let _ = stop.send(true);
    let _ = worker.await;
    let _ = tx.send(());
    let _ = server.await;
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let postgres = args
        .iter()
        .position(|a| a == "--postgres")
        .and_then(|i| args.get(i + 1).cloned());
    let dir = std::env::temp_dir().join(format!("fg-github-latency-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary folder");
    match postgres {
        None => {
            let store = SqliteStore::open(&dir.join("flakeguard.db"))
                .await
                .expect("SQLite");
            let queue = SqliteQueue::open(&dir.join("queue.db"))
                .await
                .expect("queue");
            measure("SQLite + embedded queue", Arc::new(store), Arc::new(queue)).await;
        }
        Some(url) => {
            let name = format!("flakeguard_github_latency_{}", std::process::id());
            let mut admin = PgConnection::connect(&url).await.expect("PostgreSQL");
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                .execute(&mut admin)
                .await
                .expect("create database");
            let db_url = match url.rsplit_once('/') {
                Some((server, _)) => format!("{server}/{name}"),
                None => url.clone(),
            };
            let store = PostgresStore::connect(&db_url, 10).await.expect("connect");
            let redis = std::env::var("TEST_REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
            let queue = RedisQueue::connect(&redis, &name).await.expect("Redis");
            measure("PostgreSQL + Redis", Arc::new(store), Arc::new(queue)).await;
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await
            .expect("drop database");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
