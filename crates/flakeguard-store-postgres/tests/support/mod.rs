//! Per-test PostgreSQL databases for the integration tests: each [`TestStore`] owns a fresh
//! database `flakeguard_test_<pid>_<counter>_<nanos>` on the server named by
//! `TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`), dropped by
//! [`TestStore::finish`] (or, if a test panics first, when the `TestStore` is dropped).
//!
//! When the server cannot be reached the tests fail with a message saying so: they never
//! pass silently without a database.
#![allow(dead_code, unreachable_pub)]

use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use flakeguard_store_postgres::PostgresStore;
use sqlx::{Connection, PgConnection};

pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The server's maintenance URL (where databases are created and dropped).
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_URL.to_owned())
}

/// `url` with its database name replaced by `database` (query parameters kept).
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[after_scheme..].find('/') {
        Some(slash) => &base[..after_scheme + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

async fn admin() -> PgConnection {
    match PgConnection::connect(&admin_url()).await {
        Ok(conn) => conn,
        Err(e) => panic!(
            "cannot reach the test PostgreSQL server (TEST_DATABASE_URL, default {DEFAULT_URL}): \
             {e}. Start it (as `.ci/run` does) or point TEST_DATABASE_URL at one."
        ),
    }
}

async fn drop_database(name: &str) {
    let mut admin = admin().await;
    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("dropping test database {name}: {e}"));
    let _ = admin.close().await;
}

/// A store on a database of its own.
#[derive(Debug)]
pub struct TestStore {
    store: Option<PostgresStore>,
    name: String,
    url: String,
}

impl TestStore {
    /// The URL of this test's database (for direct SQL in backend-specific tests).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A plain connection to this test's database.
    pub async fn connection(&self) -> PgConnection {
        PgConnection::connect(&self.url)
            .await
            .expect("connect to the test database")
    }

    /// Closes the pool and drops the database.
    pub async fn finish(mut self) {
        if let Some(store) = self.store.take() {
            store.close().await;
        }
        drop_database(&self.name).await;
    }
}

impl Deref for TestStore {
    type Target = PostgresStore;

    fn deref(&self) -> &PostgresStore {
        self.store.as_ref().expect("store used after finish")
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if self.store.is_none() {
            return;
        }
        // A test panicked before `finish`: drop the database anyway (FORCE ends the pool's
        // connections), from a thread of its own since we may be inside the runtime.
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            runtime.block_on(drop_database(&name));
        })
        .join();
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A new database name, unique across processes and runs.
pub fn database_name() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "flakeguard_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

/// Creates an empty, unmigrated database and a store on it.
pub async fn store() -> TestStore {
    let name = database_name();
    let mut admin = admin().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("creating test database {name}: {e}"));
    let _ = admin.close().await;
    let url = with_database(&admin_url(), &name);
    let store = PostgresStore::connect(&url, 5)
        .await
        .unwrap_or_else(|e| panic!("connecting to test database {name}: {e}"));
    TestStore {
        store: Some(store),
        name,
        url,
    }
}
