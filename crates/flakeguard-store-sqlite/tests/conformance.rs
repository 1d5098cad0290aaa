//! The shared `Store` conformance suite against SQLite (a fresh database file per check), and
//! SQLite-specific behaviour: reopening a file, refusing tampered migrations, the outbox
//! migration's treatment of existing runs, concurrent writers.

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use flakeguard_core::{Outcome, TestKey};
use flakeguard_store::{
    DerivedState, NewExecution, NewRun, NewTestCase, RepoSlug, Source, Store, StoreError,
};
use flakeguard_store_sqlite::{MIGRATIONS, SqliteStore};
use time::macros::datetime;

/// A store on a database file of its own, in a directory removed by [`TestStore::finish`]
/// (or, if a check panics first, when it is dropped).
struct TestStore {
    store: Option<SqliteStore>,
    dir: PathBuf,
}

impl Deref for TestStore {
    type Target = SqliteStore;

    fn deref(&self) -> &SqliteStore {
        self.store.as_ref().expect("the store is open until finish")
    }
}

impl TestStore {
    async fn finish(mut self) {
        if let Some(store) = self.store.take() {
            store.close().await;
        }
        std::fs::remove_dir_all(&self.dir).expect("remove the test database");
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        // After a panic: the connections close with the pool; the files can go already.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh, unique directory under the target's temp dir.
fn unique_dir() -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "sqlite-store-{}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        time::OffsetDateTime::now_utc().unix_timestamp_nanos()
    ));
    assert!(!dir.exists());
    dir
}

async fn store() -> TestStore {
    let dir = unique_dir();
    // A nested path: open creates the missing parent directories.
    let store = SqliteStore::open(&dir.join("data").join("flakeguard.db"))
        .await
        .expect("open a fresh database");
    TestStore {
        store: Some(store),
        dir,
    }
}

flakeguard_store::conformance_tests!(store);

#[tokio::test]
async fn the_backend_is_named() {
    let store = store().await;
    assert_eq!(store.backend(), "sqlite");
    assert!(store.path().exists());
    store.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_file_keeps_its_data_and_migrations() {
    let store = store().await;
    let path = store.path().to_owned();
    store.migrate().await.unwrap();
    let (org, _) = store.ensure_organization("acme", "Acme").await.unwrap();
    let repo = store
        .ensure_repository(org.id, &RepoSlug::parse("acme/shop").unwrap())
        .await
        .unwrap()
        .0;
    let ingested = store
        .ingest(repo.id, &run("1", "d"), &tests(3), &executions(3))
        .await
        .unwrap();
    let mut store = store;
    store.store.take().unwrap().close().await;

    let reopened = SqliteStore::open(&path).await.unwrap();
    let status = reopened.migration_status().await.unwrap();
    assert_eq!(status.len(), MIGRATIONS.len());
    assert!(status.iter().all(|m| !m.is_pending()));
    assert!(reopened.migrate().await.unwrap().is_empty());
    let found = reopened
        .find_repository(&RepoSlug::parse("acme/shop").unwrap())
        .await
        .unwrap();
    assert_eq!(found, Some(repo.clone()), "timestamps round-trip exactly");
    let history = reopened.load_history(repo.id, 10).await.unwrap();
    assert_eq!(history.run_ids, vec![ingested.run]);
    let mut ids = ingested.test_ids.clone();
    ids.sort();
    assert_eq!(history.test_ids, ids, "tests come back by id");
    let again = reopened
        .ingest(repo.id, &run("1", "d"), &tests(3), &executions(3))
        .await
        .unwrap();
    assert!(!again.created);
    store.store = Some(reopened);
    store.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_migration_checksum_is_refused() {
    let store = store().await;
    store.migrate().await.unwrap();
    // What an edited migration file would look like from the database's side.
    let pool = raw_connection(&store).await;
    sqlx::query("UPDATE flakeguard_migrations SET checksum = '0000000000000000' WHERE version = 1")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let err = store.migrate().await.unwrap_err();
    assert!(matches!(err, StoreError::Migration(_)), "{err}");
    assert!(err.to_string().contains("checksum"), "{err}");
    store.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_migrated_by_a_newer_build_is_refused() {
    let store = store().await;
    store.migrate().await.unwrap();
    let pool = raw_connection(&store).await;
    sqlx::query(
        "INSERT INTO flakeguard_migrations (version, name, checksum, applied_at)
         VALUES (9999, 'from the future', 'x', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let err = store.migrate().await.unwrap_err();
    assert!(matches!(err, StoreError::Migration(_)), "{err}");
    store.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_ingests_queue_instead_of_failing() {
    let store = store().await;
    store.migrate().await.unwrap();
    let (org, _) = store.ensure_organization("acme", "Acme").await.unwrap();
    let repo = store
        .ensure_repository(org.id, &RepoSlug::parse("acme/shop").unwrap())
        .await
        .unwrap()
        .0
        .id;
    // Two stores on one file stand for two processes; each also runs two ingests at once.
    let second = SqliteStore::open(store.path()).await.unwrap();
    let (tests, executions) = (tests(3_000), executions(3_000));
    let mut tasks = Vec::new();
    for i in 0..4 {
        let target = if i % 2 == 0 {
            SqliteStore::clone(&store)
        } else {
            second.clone()
        };
        let (tests, executions) = (tests.clone(), executions.clone());
        tasks.push(tokio::spawn(async move {
            target
                .ingest(repo, &run(&i.to_string(), "d"), &tests, &executions)
                .await
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        let ingested = task.await.unwrap().expect("no SQLITE_BUSY");
        assert!(ingested.created);
        ids.push(ingested.test_ids);
    }
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "one id per test");
    let history = store.load_history(repo, 10).await.unwrap();
    assert_eq!(history.runs.len(), 4);
    assert_eq!(
        history
            .tests
            .iter()
            .map(|t| t.executions.len())
            .sum::<usize>(),
        4 * executions.len()
    );
    second.close().await;
    store.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_values_are_stored_verbatim() {
    let store = store().await;
    store.migrate().await.unwrap();
    let (org, _) = store.ensure_organization("acme", "Acme").await.unwrap();
    let repo = store
        .ensure_repository(org.id, &RepoSlug::parse("acme/shop").unwrap())
        .await
        .unwrap()
        .0
        .id;
    let key = TestKey {
        scope: "  odd scope ".to_owned(),
        classname: String::new(),
        name: "näme 'quoted' \"and\" ; DROP TABLE runs; --".to_owned(),
        variant: Some(String::new()),
    };
    let tests = vec![NewTestCase {
        key: key.clone(),
        file: None,
    }];
    let run = NewRun {
        job: String::new(),
        started_at: datetime!(2026-11-01 09:00:00.123456 UTC),
        ..run("1", "d")
    };
    let execution = NewExecution {
        test: 0,
        attempt: u32::MAX,
        outcome: Outcome::Error,
        duration_ms: Some(i64::MAX as u64),
        signature: Some(u64::MAX),
        message: Some("x".repeat(100_000)),
    };
    store
        .ingest(repo, &run, &tests, std::slice::from_ref(&execution))
        .await
        .unwrap();
    let history = store.load_history(repo, 1).await.unwrap();
    assert_eq!(history.runs[0].job, None, "an empty job is no job");
    assert_eq!(history.runs[0].started_at, run.started_at);
    assert_eq!(history.tests[0].key, key);
    let stored = &history.tests[0].executions[0];
    assert_eq!(
        (
            stored.attempt,
            stored.outcome,
            stored.duration_ms,
            stored.signature
        ),
        (
            u32::MAX,
            Outcome::Error,
            Some(i64::MAX as u64),
            Some(u64::MAX)
        )
    );
    let too_long = NewExecution {
        duration_ms: Some(u64::MAX),
        ..execution
    };
    let err = store
        .ingest(repo, &run, &tests, &[too_long])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    store.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_report_fills_a_missing_file_and_moves_last_seen() {
    let store = store().await;
    store.migrate().await.unwrap();
    let (org, _) = store.ensure_organization("acme", "Acme").await.unwrap();
    let repo = store
        .ensure_repository(org.id, &RepoSlug::parse("acme/shop").unwrap())
        .await
        .unwrap()
        .0
        .id;
    let mut without_file = tests(1);
    without_file[0].file = None;
    let late = NewRun {
        started_at: datetime!(2026-11-02 09:00 UTC),
        ..run("2", "d")
    };
    let first = store
        .ingest(repo, &late, &without_file, &executions(1))
        .await
        .unwrap();
    // An older run, received later, that knows the file.
    let early = store
        .ingest(repo, &run("1", "d"), &tests(1), &executions(1))
        .await
        .unwrap();
    assert_eq!(first.test_ids, early.test_ids);
    let test = store
        .find_test(repo, first.test_ids[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(test.file.as_deref(), Some("tests/big.rs"));
    assert_eq!(test.last_seen_at, late.started_at, "never moves back");
    assert_eq!(test.first_seen_at, late.started_at, "set on insert");
    store.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_stored_before_the_outbox_count_as_scored() {
    let store = store().await;
    // The database as the previous release left it: migrations 1 and 2.
    let pool = raw_connection(&store).await;
    sqlx::raw_sql(
        "CREATE TABLE flakeguard_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,
         checksum TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT",
    )
    .execute(&pool)
    .await
    .unwrap();
    for migration in &MIGRATIONS[..2] {
        sqlx::raw_sql(migration.sql).execute(&pool).await.unwrap();
        sqlx::query("INSERT INTO flakeguard_migrations VALUES (?, ?, ?, 0)")
            .bind(migration.version)
            .bind(migration.name)
            .bind(flakeguard_store::checksum(migration.sql))
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
    let (org, _) = store.ensure_organization("acme", "Acme").await.unwrap();
    let repo = store
        .ensure_repository(org.id, &RepoSlug::parse("acme/shop").unwrap())
        .await
        .unwrap()
        .0
        .id;
    let old = store
        .ingest(repo, &run("1", "d"), &tests(3), &executions(3))
        .await
        .unwrap()
        .run;

    let applied: Vec<i64> = store
        .migrate()
        .await
        .unwrap()
        .iter()
        .map(|m| m.version)
        .collect();
    assert_eq!(applied, [3, 4]);
    let old = store.find_run(repo, old).await.unwrap().unwrap();
    assert_eq!(
        old.scored_at,
        Some(old.received_at),
        "scored in-process when it arrived"
    );
    let later = datetime!(2030-01-01 00:00 UTC);
    assert!(store.unscored_runs(later, 10).await.unwrap().is_empty());
    let new = store
        .ingest(repo, &run("2", "d"), &tests(3), &executions(3))
        .await
        .unwrap()
        .run;
    assert_eq!(
        store.find_run(repo, new).await.unwrap().unwrap().scored_at,
        None
    );
    assert_eq!(
        store.unscored_runs(later, 10).await.unwrap(),
        vec![(repo, new)]
    );
    store.finish().await;
}

/// A second, plain connection pool on the store's file.
async fn raw_connection(store: &SqliteStore) -> sqlx::SqlitePool {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(store.path())
        .busy_timeout(std::time::Duration::from_secs(5));
    sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap()
}

fn run(run_id: &str, digest: &str) -> NewRun {
    NewRun {
        commit: Some("a".repeat(40)),
        branch: Some("main".to_owned()),
        pr_number: Some(7),
        run_id: run_id.to_owned(),
        attempt: 1,
        job: "test".to_owned(),
        source: Source::Cli,
        started_at: datetime!(2026-11-01 09:00 UTC),
        received_at: datetime!(2026-11-01 09:05 UTC),
        report_digest: digest.to_owned(),
    }
}

fn tests(n: usize) -> Vec<NewTestCase> {
    (0..n)
        .map(|i| NewTestCase {
            key: TestKey::from_parts(Some("tests/big.rs"), "big", Some("big"), &format!("t{i}")),
            file: Some("tests/big.rs".to_owned()),
        })
        .collect()
}

fn executions(n: usize) -> Vec<NewExecution> {
    (0..n)
        .map(|i| NewExecution {
            test: i,
            attempt: 1,
            outcome: if i % 20 == 0 {
                Outcome::Failed
            } else {
                Outcome::Passed
            },
            duration_ms: Some(3),
            signature: (i % 20 == 0).then_some(42),
            message: (i % 20 == 0).then(|| "assertion failed".to_owned()),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_scores_are_saved_in_chunks() {
    let store = store().await;
    store.migrate().await.unwrap();
    let (org, _) = store.ensure_organization("acme", "Acme").await.unwrap();
    let repo = store
        .ensure_repository(org.id, &RepoSlug::parse("acme/shop").unwrap())
        .await
        .unwrap()
        .0
        .id;
    let ingested = store
        .ingest(repo, &run("1", "d"), &tests(2_500), &executions(2_500))
        .await
        .unwrap();
    let states: Vec<DerivedState> = ingested
        .test_ids
        .iter()
        .enumerate()
        .map(|(i, id)| DerivedState {
            test: *id,
            status: format!("status {i}"),
            probability: i as f64 / 2_500.0,
            confidence: 0.5,
            legacy_score: 0.25,
            recommendation: "none".to_owned(),
            executions: u32::MAX - i as u32,
            failures: i as u32,
            reason: format!("reason {i}"),
            evidence: format!(r#"[{{"kind":"retry","runs":[{i}]}}]"#),
        })
        .collect();
    let at = datetime!(2026-11-03 12:00:00.000001 UTC);
    store.save_scores(repo, &states, at).await.unwrap();
    for i in [0, 999, 1_000, 2_499] {
        let test = store
            .find_test(repo, ingested.test_ids[i])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(test.status, format!("status {i}"));
        assert_eq!(test.probability, i as f64 / 2_500.0);
        assert_eq!(test.scored_at, Some(at));
        assert_eq!(
            (test.executions, test.failures, test.reason, test.evidence),
            (
                u32::MAX - i as u32,
                i as u32,
                format!("reason {i}"),
                format!(r#"[{{"kind":"retry","runs":[{i}]}}]"#)
            )
        );
    }
    store.finish().await;
}
