//! Measures the API end to end on loopback: uploading a 100k-testcase report (parse, store,
//! rescore, classify), the idempotent repeat, and reading the largest listing, on SQLite and,
//! when `--postgres URL` is given (a database there is created and dropped), on PostgreSQL.
//!
//! ```sh
//! cargo run --release -p flakeguard-api --example api_load
//! cargo run --release -p flakeguard-api --example api_load -- --postgres postgres://postgres@127.0.0.1:5432/postgres
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use flakeguard_api::{AppState, Listeners};
use flakeguard_app::{Secret, Settings};
use flakeguard_store::Store;
use flakeguard_store_postgres::PostgresStore;
use flakeguard_store_sqlite::SqliteStore;
use sqlx::{Connection, PgConnection};
use tokio::net::TcpListener;

const KEY: &str = "bench-operator-key-0123";
const TESTS: usize = 100_000;

fn report(tests: usize, failing_every: usize, salt: &str) -> String {
    let mut xml = String::with_capacity(tests * 110);
    xml.push_str("<?xml version=\"1.0\"?>\n<testsuites>\n");
    for suite in 0..tests / 1000 {
        xml.push_str(&format!("<testsuite name=\"suite{suite}\">\n"));
        for case in 0..1000 {
            let n = suite * 1000 + case;
            if n % failing_every == 0 {
                xml.push_str(&format!(
                    "<testcase classname=\"pkg.Class{suite}\" name=\"test_{case}\" time=\"0.01\"><failure message=\"timeout {salt}\"/></testcase>\n"
                ));
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

async fn measure(name: &str, store: Arc<dyn Store>) {
    store.migrate().await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let settings = Settings {
        api_key: Some(Secret::new(KEY)),
        rate_limit_max: 1_000_000,
        ..Settings::default()
    };
    // Uploads only enqueue their scoring; no worker runs here, so the figures are the API's
    // own (the worker benchmark measures scoring).
    let queue_dir = std::env::temp_dir().join(format!("fg-api-load-{}", std::process::id()));
    let queue = flakeguard_queue::SqliteQueue::open(&queue_dir.join("queue.db"))
        .await
        .unwrap();
    let state = AppState::new(store, Arc::new(queue), settings);
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
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .unwrap();
    let upload = async |run: usize, body: &str| {
        let started = Instant::now();
        let r = http
            .post(format!(
                "{base}/api/v1/ingest?repo=bench/big&run_id={run}&commit=c{run}"
            ))
            .bearer_auth(KEY)
            .header("content-type", "application/xml")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let _ = r.bytes().await;
        (status, started.elapsed())
    };
    println!("== {name}: {TESTS} test cases per report ==");
    for run in 1..=3 {
        let body = report(TESTS, 50, &run.to_string());
        let (status, took) = upload(run, &body).await;
        println!(
            "upload run {run}: HTTP {status} in {:.2} s ({:.0} results/s, {:.1} MB)",
            took.as_secs_f64(),
            TESTS as f64 / took.as_secs_f64(),
            body.len() as f64 / 1e6
        );
        if run == 3 {
            let (status, took) = upload(run, &body).await;
            println!(
                "repeat of run 3 (idempotent): HTTP {status} in {:.2} s",
                took.as_secs_f64()
            );
        }
    }
    for path in [
        "/api/v1/repos/bench/big/tests?sort=probability&per_page=100",
        "/api/v1/repos/bench/big/tests?status=flaky&sort=impact&per_page=100",
        "/api/v1/repos/bench/big/tests?q=class7&per_page=100",
        "/api/v1/repos/bench/big/runs",
        "/api/v1/repos/bench/big",
    ] {
        let mut times = Vec::new();
        for _ in 0..20 {
            let started = Instant::now();
            let r = http
                .get(format!("{base}{path}"))
                .bearer_auth(KEY)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{path}: {}", r.status());
            let _ = r.bytes().await;
            times.push(started.elapsed());
        }
        times.sort();
        println!(
            "GET {path}: median {:.1} ms, max {:.1} ms (20 requests)",
            times[10].as_secs_f64() * 1000.0,
            times[19].as_secs_f64() * 1000.0
        );
    }
    let _ = tx.send(());
    server.await.unwrap().unwrap();
}

#[tokio::main]
async fn main() {
    // The server's "ingested" log lines say where each upload's time went.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "flakeguard_api=info,warn",
        ))
        .with_target(false)
        .with_ansi(false)
        .init();
    let args: Vec<String> = std::env::args().collect();
    let dir = std::env::temp_dir().join(format!("fg-api-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite = SqliteStore::open(&dir.join("bench.db")).await.unwrap();
    measure("SQLite", Arc::new(sqlite)).await;
    let _ = std::fs::remove_dir_all(&dir);

    if let Some(i) = args.iter().position(|a| a == "--postgres") {
        let admin = args.get(i + 1).expect("--postgres URL").clone();
        let name = format!("flakeguard_api_load_{}", std::process::id());
        let mut conn = PgConnection::connect(&admin).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .unwrap();
        let (base, _) = admin.rsplit_once('/').unwrap();
        let store = PostgresStore::connect(&format!("{base}/{name}"), 10)
            .await
            .unwrap();
        measure("PostgreSQL", Arc::new(store)).await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE \"{name}\" WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await
        .unwrap();
    }
}
