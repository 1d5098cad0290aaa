//! A real FlakeGuard server for black-box tests: the three roles on 127.0.0.1 port 0 over a
//! fresh SQLite file or a PostgreSQL database of their own (created on `TEST_DATABASE_URL`,
//! default `postgres://postgres@127.0.0.1:5432/postgres`, dropped by `finish`), seeded with
//! two organizations and tokens of every kind, and a worker running the jobs: on the
//! embedded queue with SQLite, on Redis (`TEST_REDIS_URL`, a key prefix per app) with
//! PostgreSQL — the two deployments.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use flakeguard_api::{AppState, Listeners};
use flakeguard_app::jobs::JobContext;
use flakeguard_app::{Settings, tokens};
use flakeguard_queue::{JobQueue, RedisQueue, SqliteQueue};
use flakeguard_store::{NewToken, OrgId, RepoId, RepoSlug, Scope, Store};
use flakeguard_store_postgres::PostgresStore;
use flakeguard_store_sqlite::SqliteStore;
use flakeguard_worker::WorkerConfig;
use sqlx::{Connection, PgConnection};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub const API_KEY: &str = "operator-key-0123456789";
pub const PG_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Secrets of the seeded tokens.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    /// acme: ingest, read, admin.
    pub acme: String,
    /// acme: read only.
    pub acme_read: String,
    /// acme: ingest only.
    pub acme_ingest: String,
    /// acme, limited to acme/shop: ingest, read.
    pub acme_shop_only: String,
    /// globex (may create repositories on upload): ingest, read.
    pub globex: String,
    /// acme, revoked.
    pub revoked: String,
}

#[derive(Debug)]
pub struct TestApp {
    pub api: String,
    pub worker: String,
    pub web: String,
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn JobQueue>,
    pub tokens: Tokens,
    pub http: reqwest::Client,
    pub acme: OrgId,
    pub shop: RepoId,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    jobs: Option<(
        tokio::sync::watch::Sender<bool>,
        tokio::task::JoinHandle<flakeguard_worker::WorkerSummary>,
    )>,
    cleanup: Cleanup,
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned())
}

#[derive(Debug)]
enum Cleanup {
    Dir(PathBuf),
    Database(String),
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn pg_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| PG_DEFAULT.to_owned())
}

fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[after..].find('/') {
        Some(slash) => &base[..after + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

async fn pg_admin(sql: String) {
    let mut conn = PgConnection::connect(&pg_admin_url()).await.unwrap_or_else(|e| {
        panic!("cannot reach the test PostgreSQL server (TEST_DATABASE_URL, default {PG_DEFAULT}): {e}")
    });
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut conn)
        .await
        .expect("admin statement");
    let _ = conn.close().await;
}

/// Settings for tests: loopback, ephemeral ports, the operator key set.
pub fn test_settings() -> Settings {
    Settings {
        host: [127, 0, 0, 1].into(),
        port: 0,
        worker_port: 0,
        web_port: 0,
        api_key: Some(flakeguard_app::Secret::new(API_KEY)),
        ..Settings::default()
    }
}

impl TestApp {
    pub async fn start(backend: Backend) -> TestApp {
        Self::start_with(backend, test_settings()).await
    }

    pub async fn start_with(backend: Backend, settings: Settings) -> TestApp {
        Self::start_custom(backend, settings, None).await
    }

    /// With `queue` instead of the backend's usual one (outage tests).
    pub async fn start_custom(
        backend: Backend,
        settings: Settings,
        queue_override: Option<Arc<dyn JobQueue>>,
    ) -> TestApp {
        Self::start_full(backend, settings, queue_override, None).await
    }

    /// With the worker acting on GitHub through `github` (a fake GitHub's App).
    pub async fn start_full(
        backend: Backend,
        settings: Settings,
        queue_override: Option<Arc<dyn JobQueue>>,
        github: Option<Arc<flakeguard_app::github::GitHub>>,
    ) -> TestApp {
        let (store, queue, cleanup): (Arc<dyn Store>, Arc<dyn JobQueue>, Cleanup) = match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(unique("fg-api"));
                std::fs::create_dir_all(&dir).unwrap();
                let store = SqliteStore::open(&dir.join("flakeguard.db")).await.unwrap();
                let queue = SqliteQueue::open(&dir.join("queue.db")).await.unwrap();
                (Arc::new(store), Arc::new(queue), Cleanup::Dir(dir))
            }
            Backend::Postgres => {
                let name = unique("flakeguard_api_test");
                pg_admin(format!("CREATE DATABASE \"{name}\"")).await;
                let url = with_database(&pg_admin_url(), &name);
                let store = PostgresStore::connect(&url, 5).await.unwrap();
                let queue = RedisQueue::connect(&redis_url(), &name)
                    .await
                    .unwrap_or_else(|e| panic!("Redis must run for these tests: {e}"));
                (Arc::new(store), Arc::new(queue), Cleanup::Database(name))
            }
        };
        let queue = queue_override.unwrap_or(queue);
        store.migrate().await.unwrap();
        let (tokens, acme, shop) = seed(&*store).await;
        let bind = || TcpListener::bind("127.0.0.1:0");
        let (api, worker, web) = (
            bind().await.unwrap(),
            bind().await.unwrap(),
            bind().await.unwrap(),
        );
        let url = |l: &TcpListener| format!("http://{}", l.local_addr().unwrap());
        let (api_url, worker_url, web_url) = (url(&api), url(&worker), url(&web));
        flakeguard_api::metrics::install();
        let state = AppState::new(store.clone(), queue.clone(), settings);
        let (stop_worker, stopped) = tokio::sync::watch::channel(false);
        let mut ctx = JobContext::new(store.clone(), flakeguard_core::Policy::default());
        ctx.github = github;
        let jobs = tokio::spawn(flakeguard_worker::run(
            queue.clone(),
            ctx,
            WorkerConfig {
                poll: std::time::Duration::from_millis(20),
                sweep_every: std::time::Duration::from_millis(500),
                sweep_grace: std::time::Duration::from_millis(200),
                drain: std::time::Duration::from_secs(5),
                ..WorkerConfig::default()
            },
            async move {
                let mut stopped = stopped;
                let _ = stopped.wait_for(|s| *s).await;
            },
        ));
        let (tx, rx) = oneshot::channel();
        let server = tokio::spawn(flakeguard_api::serve(
            state,
            Listeners {
                api: Some(api),
                worker: Some(worker),
                web: Some(web),
            },
            async move {
                let _ = rx.await;
            },
        ));
        TestApp {
            api: api_url,
            worker: worker_url,
            web: web_url,
            store,
            queue,
            tokens,
            http: reqwest::Client::new(),
            acme,
            shop,
            shutdown: Some(tx),
            server: Some(server),
            jobs: Some((stop_worker, jobs)),
            cleanup,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api)
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn get_json(&self, path: &str, token: &str) -> (u16, serde_json::Value) {
        let response = self.get(path, token).await;
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// Sends `body` as JSON with `method`; returns the status and the JSON answer (`null`
    /// when there is none).
    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut request = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let value = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
        };
        (status, value)
    }

    /// Uploads one XML report; returns the status and JSON answer. After a success it waits
    /// for the worker to score the run, so the next step sees the scores.
    pub async fn ingest(&self, query: &str, token: &str, xml: &str) -> (u16, serde_json::Value) {
        let response = self
            .http
            .post(self.url(&format!("/api/v1/ingest?{query}")))
            .bearer_auth(token)
            .header("content-type", "application/xml")
            .body(xml.to_owned())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap();
        if status == 200 || status == 201 {
            self.settle().await;
        }
        (status, body)
    }

    /// Waits until every stored run has been scored by the worker (at most 60 s).
    pub async fn settle(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let far = OffsetDateTime::now_utc() + time::Duration::days(1);
            let left = self.store.unscored_runs(far, 10).await.unwrap();
            if left.is_empty() {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "runs still unscored after 60 s: {left:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Drops the PostgreSQL database under the running server (outage tests).
    pub async fn drop_database(&self) {
        let Cleanup::Database(name) = &self.cleanup else {
            panic!("drop_database is for PostgreSQL apps");
        };
        pg_admin(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await;
    }

    /// Stops the server (draining) and removes its database.
    pub async fn finish(mut self) {
        if let Some((stop, jobs)) = self.jobs.take() {
            let _ = stop.send(true);
            jobs.await.unwrap();
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
        match &self.cleanup {
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Database(name) => {
                pg_admin(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await;
            }
        }
    }
}

async fn token(
    store: &dyn Store,
    org: OrgId,
    repo: Option<RepoId>,
    name: &str,
    scopes: &[Scope],
) -> String {
    let secret = tokens::generate().unwrap();
    store
        .create_token(&NewToken {
            org,
            repo,
            name: name.to_owned(),
            hash: tokens::hash(&secret),
            prefix: tokens::display_prefix(&secret),
            scopes: scopes.to_vec(),
            created_at: OffsetDateTime::now_utc(),
        })
        .await
        .unwrap();
    secret
}

async fn seed(store: &dyn Store) -> (Tokens, OrgId, RepoId) {
    let (acme, _) = store.ensure_organization("acme", "Acme").await.unwrap();
    let (globex, _) = store.ensure_organization("globex", "Globex").await.unwrap();
    store
        .set_repository_creation(globex.id, true)
        .await
        .unwrap();
    let slug = |s: &str| RepoSlug::parse(s).unwrap();
    let (shop, _) = store
        .ensure_repository(acme.id, &slug("acme/shop"))
        .await
        .unwrap();
    store
        .ensure_repository(acme.id, &slug("acme/api"))
        .await
        .unwrap();
    store
        .ensure_repository(globex.id, &slug("globex/secret"))
        .await
        .unwrap();
    use Scope::*;
    let tokens = Tokens {
        acme: token(store, acme.id, None, "acme admin", &[Ingest, Read, Admin]).await,
        acme_read: token(store, acme.id, None, "acme read", &[Read]).await,
        acme_ingest: token(store, acme.id, None, "acme ci", &[Ingest]).await,
        acme_shop_only: token(store, acme.id, Some(shop.id), "shop ci", &[Ingest, Read]).await,
        globex: token(store, globex.id, None, "globex", &[Ingest, Read]).await,
        revoked: token(store, acme.id, None, "old", &[Ingest, Read]).await,
    };
    let listed = store.list_tokens(acme.id).await.unwrap();
    let old = listed.iter().find(|t| t.name == "old").unwrap();
    assert!(
        store
            .revoke_token(acme.id, old.id, OffsetDateTime::now_utc())
            .await
            .unwrap()
    );
    (tokens, acme.id, shop.id)
}

/// A JUnit report: `(classname, name, outcome)` where outcome is `pass`, `fail` or `flaky`
/// (failed, then passed on retry).
pub fn junit(cases: &[(&str, &str, &str)]) -> String {
    let mut xml = String::from("<?xml version=\"1.0\"?>\n<testsuite name=\"suite\">\n");
    for (class, name, outcome) in cases {
        let body = match *outcome {
            "fail" => "<failure message=\"expected 200, got 503\">at shop.rs:10</failure>",
            "flaky" => "<flakyFailure message=\"timed out after 5000 ms\"/>",
            _ => "",
        };
        xml.push_str(&format!(
            "  <testcase classname=\"{class}\" name=\"{name}\" time=\"0.25\">{body}</testcase>\n"
        ));
    }
    xml.push_str("</testsuite>\n");
    xml
}

pub fn fixture(path: &str) -> Vec<u8> {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures")
        .join(path);
    std::fs::read(&full).unwrap_or_else(|e| panic!("fixture {}: {e}", full.display()))
}
