//! PostgreSQL-specific behaviour beyond the conformance suite: migration checksums, the
//! outbox migration's treatment of existing runs, races between concurrent ingests (through
//! `COPY` and through `INSERT`s), migrations, quarantines, webhook deliveries and prunes, the
//! same rows whichever way a batch is written, COPY's handling of awkward text, text
//! PostgreSQL cannot store, timestamp precision, and how connection failures are reported.

mod support;

use std::time::{Duration, Instant};

use flakeguard_core::{Outcome, TestKey};
use flakeguard_store::{
    NewAuditEntry, NewDelivery, NewExecution, NewQuarantine, NewRun, NewTestCase, QuarantineState,
    RepoId, RepoSlug, Source, Store, StoreError, TestCaseId,
};
use flakeguard_store_postgres::PostgresStore;
use sqlx::Row;
use time::OffsetDateTime;
use time::macros::{datetime, offset};

use support::store;

const T0: OffsetDateTime = datetime!(2026-11-01 09:00 UTC);

async fn repo(store: &dyn Store) -> RepoId {
    store.migrate().await.unwrap();
    let (org, _) = store.ensure_organization("acme", "Acme").await.unwrap();
    store
        .ensure_repository(org.id, &RepoSlug::parse("acme/shop").unwrap())
        .await
        .unwrap()
        .0
        .id
}

fn run(run_id: &str, started_at: OffsetDateTime) -> NewRun {
    NewRun {
        commit: None,
        branch: Some("main".into()),
        pr_number: Some(12),
        run_id: run_id.into(),
        attempt: 1,
        job: String::new(),
        source: Source::Cli,
        started_at,
        received_at: started_at,
        report_digest: "digest".into(),
    }
}

fn tests(n: usize) -> Vec<NewTestCase> {
    (0..n)
        .map(|i| NewTestCase {
            key: TestKey::from_parts(None, "suite", Some("Class"), &format!("case {i}")),
            file: None,
        })
        .collect()
}

fn passed(test: usize) -> NewExecution {
    NewExecution {
        test,
        attempt: 1,
        outcome: Outcome::Passed,
        duration_ms: Some(3),
        signature: None,
        message: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_migration_checksum_is_refused() {
    let store = store().await;
    store.migrate().await.unwrap();
    let mut conn = store.connection().await;
    sqlx::query("UPDATE flakeguard_migrations SET checksum = 'tampered' WHERE version = 1")
        .execute(&mut conn)
        .await
        .unwrap();
    let err = store.migrate().await.unwrap_err();
    assert!(matches!(err, StoreError::Migration(_)), "{err}");
    assert!(
        err.to_string().contains("changed after it was applied"),
        "{err}"
    );
    // The status is still readable.
    assert!(
        store
            .migration_status()
            .await
            .unwrap()
            .iter()
            .all(|m| !m.is_pending())
    );

    // A database migrated by a newer build is refused too.
    sqlx::query("UPDATE flakeguard_migrations SET checksum = $1 WHERE version = 1")
        .bind(flakeguard_store::checksum(
            flakeguard_store_postgres::MIGRATIONS[0].sql,
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    sqlx::query(
        "INSERT INTO flakeguard_migrations (version, name, checksum) VALUES (9999, 'future', 'x')",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let err = store.migrate().await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Migration(m) if m.contains("9999")),
        "{err}"
    );
    drop(conn);
    store.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_apply_each_migration_once() {
    let store = store().await;
    let other = PostgresStore::connect(store.url(), 2).await.unwrap();
    let (a, b) = tokio::join!(store.migrate(), other.migrate());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        a.len() + b.len(),
        flakeguard_store_postgres::MIGRATIONS.len()
    );
    other.close().await;
    store.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_stored_before_the_outbox_count_as_scored() {
    let store = store().await;
    // The database as the previous release left it: migrations 1 and 2.
    let mut conn = store.connection().await;
    sqlx::raw_sql(
        "CREATE TABLE flakeguard_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL,
         checksum TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    for migration in &flakeguard_store_postgres::MIGRATIONS[..2] {
        sqlx::raw_sql(migration.sql)
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO flakeguard_migrations (version, name, checksum) VALUES ($1, $2, $3)",
        )
        .bind(migration.version)
        .bind(migration.name)
        .bind(flakeguard_store::checksum(migration.sql))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    drop(conn);
    let (org, _) = store.ensure_organization("acme", "Acme").await.unwrap();
    let repo = store
        .ensure_repository(org.id, &RepoSlug::parse("acme/shop").unwrap())
        .await
        .unwrap()
        .0
        .id;
    let received = |run: NewRun| NewRun {
        received_at: run.started_at + Duration::from_secs(300),
        ..run
    };
    let old = store
        .ingest(
            repo,
            &received(run("1", T0)),
            &tests(3),
            &[passed(0), passed(1), passed(2)],
        )
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
        Some(T0 + Duration::from_secs(300)),
        "scored in-process when it arrived"
    );
    let later = T0 + Duration::from_secs(86_400);
    assert!(store.unscored_runs(later, 10).await.unwrap().is_empty());
    let new = store
        .ingest(repo, &run("2", T0), &tests(1), &[passed(0)])
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliveries_of_one_id_store_it_once() {
    let store = store().await;
    store.migrate().await.unwrap();
    let other = PostgresStore::connect(store.url(), 4).await.unwrap();
    for round in 0..20 {
        let delivery = NewDelivery {
            delivery_id: format!("guid-{round}"),
            event: "workflow_run".into(),
            action: Some("completed".into()),
            installation_id: Some(round),
            payload: format!("{{\"round\":{round}}}").into_bytes(),
            received_at: T0,
        };
        let (a, b, c, d) = tokio::join!(
            store.record_delivery(&delivery),
            other.record_delivery(&delivery),
            store.record_delivery(&delivery),
            other.record_delivery(&delivery),
        );
        let results = [a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap()];
        assert_eq!(
            results.iter().filter(|(_, created)| *created).count(),
            1,
            "round {round}: exactly one is new"
        );
        assert!(results.iter().all(|(stored, _)| *stored == results[0].0));
    }
    let mut conn = store.connection().await;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(stored, 20);
    drop(conn);
    other.close().await;
    store.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_prunes_clear_each_message_once() {
    let store = store().await;
    let repo = repo(&*store).await;
    let n = 25_000;
    let failing: Vec<NewExecution> = (0..n)
        .map(|i| NewExecution {
            outcome: Outcome::Failed,
            signature: Some(7),
            message: Some(format!("boom {i}")),
            ..passed(i)
        })
        .collect();
    store
        .ingest(repo, &run("1", T0), &tests(n), &failing)
        .await
        .unwrap();
    let other = PostgresStore::connect(store.url(), 2).await.unwrap();
    let cutoff = T0 + Duration::from_secs(60);
    let (a, b) = tokio::join!(
        store.prune_failure_text(cutoff),
        other.prune_failure_text(cutoff)
    );
    assert_eq!(
        a.unwrap() + b.unwrap(),
        n as u64,
        "each message counted once"
    );
    assert_eq!(store.prune_failure_text(cutoff).await.unwrap(), 0);
    let mut conn = store.connection().await;
    let (messages, signatures): (i64, i64) =
        sqlx::query_as("SELECT count(message), count(failure_signature) FROM executions")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!((messages, signatures), (0, n as i64));
    drop(conn);
    other.close().await;
    store.finish().await;
}

/// `tests(n)` named apart for each way of writing them.
fn tests_of_way(n: usize, way: usize) -> Vec<NewTestCase> {
    tests(n)
        .into_iter()
        .map(|mut t| {
            t.key.name = format!("{} way {way}", t.key.name);
            t
        })
        .collect()
}

/// Bulk thresholds that send every batch through `COPY`, and every one through `INSERT`s.
const BOTH_WAYS: [usize; 2] = [0, usize::MAX];

/// Two more stores on `store`'s database writing batches of more than `bulk_threshold` rows
/// with `COPY`.
async fn two_stores(store: &support::TestStore, bulk_threshold: usize) -> [PostgresStore; 2] {
    let connect = || async {
        PostgresStore::connect(store.url(), 2)
            .await
            .unwrap()
            .with_bulk_threshold(bulk_threshold)
    };
    [connect().await, connect().await]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_ingests_of_one_report_store_it_once() {
    let store = store().await;
    let repo = repo(&*store).await;
    for (way, threshold) in BOTH_WAYS.into_iter().enumerate() {
        let [one, other] = two_stores(&store, threshold).await;
        // Tests of their own each way, so that both ways race to insert them.
        let tests = tests_of_way(3_000, way);
        let executions: Vec<NewExecution> = (0..tests.len()).map(passed).collect();
        for round in 0..5 {
            let round = way as u64 * 5 + round;
            let report = run(&format!("race-{round}"), T0 + Duration::from_secs(round));
            let (a, b) = tokio::join!(
                one.ingest(repo, &report, &tests, &executions),
                other.ingest(repo, &report, &tests, &executions)
            );
            let (a, b) = (a.unwrap(), b.unwrap());
            assert_eq!(a.run, b.run, "round {round}");
            assert!(
                a.created ^ b.created,
                "exactly one creates it (round {round})"
            );
            let loser = if a.created { &b } else { &a };
            assert!(loser.test_ids.is_empty());
        }
        one.close().await;
        other.close().await;
    }
    let mut conn = store.connection().await;
    let (runs, rows): (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM executions)")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!((runs, rows), (10, 10 * 3_000));
    drop(conn);
    store.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_of_overlapping_tests_do_not_deadlock() {
    let store = store().await;
    let repo = repo(&*store).await;
    for (way, threshold) in BOTH_WAYS.into_iter().enumerate() {
        let [one, other] = two_stores(&store, threshold).await;
        let forward = tests_of_way(2_000, way);
        let backward: Vec<NewTestCase> = forward.iter().rev().cloned().collect();
        let executions: Vec<NewExecution> = (0..forward.len()).map(passed).collect();
        for round in 0..5 {
            let name = |side: &str| format!("{side}{way}-{round}");
            let (f, b) = (run(&name("f"), T0), run(&name("b"), T0));
            let (a, b) = tokio::join!(
                one.ingest(repo, &f, &forward, &executions),
                other.ingest(repo, &b, &backward, &executions)
            );
            let (a, b) = (a.unwrap(), b.unwrap());
            assert!(a.created && b.created);
            let reversed: Vec<_> = b.test_ids.iter().rev().copied().collect();
            assert_eq!(
                a.test_ids, reversed,
                "one id per test whichever run saw it first"
            );
        }
        one.close().await;
        other.close().await;
    }
    store.finish().await;
}

/// A report with everything the two ways of writing a batch could store differently:
/// awkward text in identities and messages (a NUL in a message, stored as U+FFFD), NULL
/// variants, files and messages, an empty variant and message, one test reported twice
/// (merged, its file from the later entry), durations that are clamped, signatures with the
/// high bit set, retries, every outcome; and enough tests (with long names) that `INSERT`s
/// take several statements and the key lookups too.
fn awkward_report(n: usize) -> (Vec<NewTestCase>, Vec<NewExecution>) {
    let mut tests = vec![
        NewTestCase {
            key: TestKey {
                scope: "tests/ünï\tcode.py".into(),
                classname: String::new(),
                name: "weird \\ name\nwith lines \\N 'quoted' \"too\"".into(),
                variant: Some("[x\ty]".into()),
            },
            file: Some("tests/ünï\tcode.py".into()),
        },
        NewTestCase {
            key: TestKey::from_parts(None, "s", None, "bare"),
            file: None,
        },
        NewTestCase {
            key: TestKey::from_parts(None, "s", None, "twice"),
            file: None,
        },
        NewTestCase {
            key: TestKey::from_parts(None, "s", None, "twice"),
            file: Some("later.rs".into()),
        },
        NewTestCase {
            key: TestKey {
                scope: "s".into(),
                classname: "C".into(),
                name: "empty variant 日本語 🦀".into(),
                variant: Some(String::new()),
            },
            file: Some(String::new()),
        },
    ];
    tests.extend((tests.len()..n).map(|i| NewTestCase {
        key: TestKey::from_parts(
            Some(&format!("src/module_{}/tests.rs", i / 50)),
            "suite",
            Some(&format!("module_{}::tests", i / 50)),
            &format!("a_rather_long_test_name_describing_case_{i}"),
        ),
        file: (i % 3 != 0).then(|| format!("src/module_{}/tests.rs", i / 50)),
    }));
    let messages = [
        "tab\there",
        "line one\nline two\r\nline three\r",
        r"back\slash \N \\N \t not a tab",
        "",
        "nul\0byte\0",
        "Ünïcödé — 日本語 🦀 ∑",
    ];
    let outcomes = [
        Outcome::Passed,
        Outcome::Failed,
        Outcome::Error,
        Outcome::Skipped,
    ];
    let mut executions = Vec::new();
    for i in 0..n {
        executions.push(NewExecution {
            test: i,
            attempt: if i == 3 { 2 } else { 1 },
            outcome: outcomes[i % 4],
            duration_ms: match i % 5 {
                0 => None,
                1 => Some(u64::MAX),
                _ => Some(i as u64),
            },
            signature: (i % 4 == 1).then(|| u64::MAX - i as u64),
            message: messages
                .get(i)
                .map(|m| (*m).to_owned())
                .or_else(|| (i % 10 == 1).then(|| format!("failure {i}\n\tat x.rs:{i}"))),
        });
        if i % 7 == 0 {
            executions.push(NewExecution {
                attempt: 2,
                message: None,
                ..passed(i)
            });
        }
    }
    (tests, executions)
}

/// Everything stored for a repository's test cases and executions, keyed by what identifies
/// them (the ids themselves differ between repositories; their offset in the blocks of 1,024
/// they were drawn from does not).
#[allow(clippy::type_complexity)]
async fn stored_rows(
    conn: &mut sqlx::PgConnection,
    repo: RepoId,
) -> (
    Vec<(
        i64,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        OffsetDateTime,
        OffsetDateTime,
        i64,
    )>,
    Vec<(
        String,
        i64,
        i32,
        i16,
        Option<i64>,
        Option<i64>,
        Option<String>,
    )>,
) {
    let tests = sqlx::query_as(
        "SELECT key_hash, scope, classname, name, variant, file, first_seen_at, last_seen_at,
                (id - 1) % 1024
         FROM test_cases WHERE repo_id = $1 ORDER BY key_hash",
    )
    .bind(repo.0)
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let executions = sqlx::query_as(
        "SELECT r.workflow_run_id, t.key_hash, e.attempt, e.outcome, e.duration_ms,
                e.failure_signature, e.message
         FROM executions e JOIN runs r ON r.id = e.run_id JOIN test_cases t ON t.id = e.test_case_id
         WHERE r.repo_id = $1 ORDER BY 1, 2, 3",
    )
    .bind(repo.0)
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    (tests, executions)
}

/// Asserts that COPY (`copied`) and INSERT (`inserted`) stored the same rows, naming the
/// first difference (the whole tables would be too long a message).
fn assert_same<T: PartialEq + std::fmt::Debug>(what: &str, copied: &[T], inserted: &[T]) {
    assert_eq!(copied.len(), inserted.len(), "{what} rows");
    if let Some(at) = (0..copied.len()).find(|&i| copied[i] != inserted[i]) {
        panic!(
            "{what} row {at} differs: COPY stored {:?}, INSERT {:?}",
            copied[at], inserted[at]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_and_insert_store_the_same_rows() {
    let store = store().await;
    store.migrate().await.unwrap();
    let (org, _) = store.ensure_organization("acme", "Acme").await.unwrap();
    let (tests, executions) = awkward_report(1_500);
    // A later run: every test again (those without a file now name one), and new ones.
    let (mut later_tests, mut later_executions) = awkward_report(1_520);
    for test in &mut later_tests {
        test.file.get_or_insert_with(|| "filled.rs".into());
    }
    later_executions.retain(|e| e.attempt == 1);
    let mut conn = store.connection().await;
    let mut stored = Vec::new();
    for (way, threshold) in BOTH_WAYS.into_iter().enumerate() {
        let writer = PostgresStore::connect(store.url(), 2)
            .await
            .unwrap()
            .with_bulk_threshold(threshold);
        let slug = RepoSlug::parse(&format!("acme/way-{way}")).unwrap();
        let repo = store.ensure_repository(org.id, &slug).await.unwrap().0.id;
        let reports = [
            (run("1", T0), &tests, &executions),
            (
                run("2", T0 + Duration::from_secs(3600)),
                &later_tests,
                &later_executions,
            ),
            // Recorded late: raises nothing.
            (run("0", T0 - Duration::from_secs(60)), &tests, &executions),
        ];
        for (report, tests, executions) in reports {
            let ingested = writer
                .ingest(repo, &report, tests, executions)
                .await
                .unwrap();
            assert!(ingested.created);
            // Each test gets the id of its key (the twice-reported test one id).
            let keys: std::collections::HashMap<i64, i64> =
                sqlx::query_as("SELECT id, key_hash FROM test_cases WHERE repo_id = $1")
                    .bind(repo.0)
                    .fetch_all(&mut conn)
                    .await
                    .unwrap()
                    .into_iter()
                    .collect();
            for (test, id) in tests.iter().zip(&ingested.test_ids) {
                assert_eq!(keys[&id.0], test.key.stable_id() as i64, "way {way}");
            }
            assert_eq!(ingested.test_ids[2], ingested.test_ids[3]);
        }
        stored.push(stored_rows(&mut conn, repo).await);
        writer.close().await;
    }
    let (tests_rows, executions_rows) = &stored[0];
    assert_eq!(tests_rows.len(), 1_519, "the twice-reported test is one");
    assert_eq!(
        executions_rows.len(),
        2 * executions.len() + later_executions.len()
    );
    assert_same("test case", &stored[0].0, &stored[1].0);
    assert_same("execution", &stored[0].1, &stored[1].1);
    // And what they store is right: spot checks of what each way could get wrong.
    let messages: Vec<_> = executions_rows
        .iter()
        .filter_map(|e| e.6.as_deref())
        .collect();
    assert!(messages.contains(&"nul\u{fffd}byte\u{fffd}"));
    assert!(messages.contains(&""));
    assert!(executions_rows.iter().any(|e| e.4 == Some(i64::MAX)));
    assert!(executions_rows.iter().any(|e| e.4.is_none()));
    assert!(
        executions_rows
            .iter()
            .any(|e| e.5 == Some((u64::MAX - 1) as i64))
    );
    let weird = tests_rows
        .iter()
        .find(|t| t.1 == "tests/ünï\tcode.py")
        .unwrap();
    assert_eq!(weird.4.as_deref(), Some("[x\ty]"));
    let empty = tests_rows
        .iter()
        .find(|t| t.3 == "empty variant 日本語 🦀")
        .unwrap();
    assert_eq!(
        (empty.4.as_deref(), empty.5.as_deref()),
        (Some(""), Some(""))
    );
    let twice = tests_rows.iter().find(|t| t.3 == "twice").unwrap();
    assert_eq!(twice.5.as_deref(), Some("later.rs"));
    let filled = tests_rows.iter().find(|t| t.3 == "bare").unwrap();
    assert_eq!(filled.5.as_deref(), Some("filled.rs"));
    // Every test was seen by the later run, 20 of them first.
    let later = T0 + Duration::from_secs(3600);
    assert!(tests_rows.iter().all(|t| t.7 == later));
    let first_seen_later = tests_rows.iter().filter(|t| t.6 == later).count();
    assert_eq!(first_seen_later, 20);
    assert!(tests_rows.iter().all(|t| t.6 == T0 || t.6 == later));
    drop(conn);
    store.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_with_awkward_characters_are_stored_exactly() {
    let store = store().await;
    let repo = repo(&*store).await;
    let messages = [
        "tab\there",
        "line one\nline two\r\nline three\r",
        r"back\slash \N \\N \t not a tab",
        "\\N",
        "Ünïcödé — 日本語 🦀 ∑",
        "",
        "quote ' \" and ; DROP TABLE runs; --",
        "trailing backslash \\",
    ];
    let tests = tests(messages.len() + 2);
    let mut executions: Vec<NewExecution> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| NewExecution {
            test: i,
            attempt: 1,
            outcome: Outcome::Failed,
            duration_ms: None,
            signature: Some(u64::MAX - i as u64),
            message: Some((*m).to_owned()),
        })
        .collect();
    // No message at all is NULL, not "".
    executions.push(passed(messages.len()));
    // PostgreSQL text cannot hold NUL: it is stored as U+FFFD.
    executions.push(NewExecution {
        message: Some("nul\0byte".into()),
        ..passed(messages.len() + 1)
    });
    let ingested = store
        .ingest(repo, &run("m", T0), &tests, &executions)
        .await
        .unwrap();

    let mut conn = store.connection().await;
    for (i, execution) in executions.iter().enumerate() {
        let row = sqlx::query(
            "SELECT message, failure_signature, duration_ms FROM executions
             WHERE run_id = $1 AND test_case_id = $2",
        )
        .bind(ingested.run.0)
        .bind(ingested.test_ids[execution.test].0)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        let message: Option<String> = row.get(0);
        let expected = execution
            .message
            .as_deref()
            .map(|m| m.replace('\0', "\u{fffd}"));
        assert_eq!(message, expected, "execution {i}");
        let signature: Option<i64> = row.get(1);
        assert_eq!(signature.map(|s| s as u64), execution.signature);
        let duration: Option<i64> = row.get(2);
        assert_eq!(duration.map(|d| d as u64), execution.duration_ms);
    }
    drop(conn);
    store.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identities_and_timestamps_round_trip_exactly() {
    let store = store().await;
    let repo = repo(&*store).await;
    // Microseconds survive; a non-UTC offset is the same instant.
    let started = datetime!(2026-11-01 10:11:12.123456 +02:00);
    let tests = vec![
        NewTestCase {
            key: TestKey {
                scope: "tests/ünï\tcode.py".into(),
                classname: String::new(),
                name: "weird \\ name\nwith lines".into(),
                variant: Some("[x]".into()),
            },
            file: Some("tests/ünï\tcode.py".into()),
        },
        // The same key twice in one run (two reports of one test): one test case.
        NewTestCase {
            key: TestKey::from_parts(None, "s", None, "twice"),
            file: None,
        },
        NewTestCase {
            key: TestKey::from_parts(None, "s", None, "twice"),
            file: Some("later.rs".into()),
        },
    ];
    let executions = vec![
        passed(0),
        passed(1),
        NewExecution {
            attempt: 2,
            ..passed(2)
        },
    ];
    let ingested = store
        .ingest(repo, &run("ts", started), &tests, &executions)
        .await
        .unwrap();
    assert_eq!(ingested.test_ids[1], ingested.test_ids[2]);
    let history = store.load_history(repo, 10).await.unwrap();
    assert_eq!(history.runs[0].started_at, started);
    assert_eq!(history.runs[0].job, None, "an empty job reads back as none");
    assert_eq!(history.tests.len(), 2);
    let weird = history
        .tests
        .iter()
        .find(|t| t.key == tests[0].key)
        .expect("the key is rebuilt verbatim");
    assert_eq!(weird.file, tests[0].file);
    let twice = history
        .tests
        .iter()
        .find(|t| t.key.name == "twice")
        .unwrap();
    assert_eq!(twice.executions.len(), 2);
    assert_eq!(
        twice.file.as_deref(),
        Some("later.rs"),
        "a missing file is filled"
    );

    let found = store
        .find_test(repo, ingested.test_ids[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.first_seen_at, started);
    assert_eq!(found.first_seen_at.to_offset(offset!(+2)), started);

    // A later run raises last_seen_at, an earlier one (recorded late) does not lower it.
    let later = started + time::Duration::hours(1);
    store
        .ingest(repo, &run("later", later), &tests[..1], &[passed(0)])
        .await
        .unwrap();
    store
        .ingest(repo, &run("earlier", T0), &tests[..1], &[passed(0)])
        .await
        .unwrap();
    let found = store
        .find_test(repo, ingested.test_ids[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.first_seen_at, found.last_seen_at), (started, later));

    // A test first reported without a file gets the one a later run names.
    let bare = NewTestCase {
        key: TestKey::from_parts(None, "s", None, "bare"),
        file: None,
    };
    let first = store
        .ingest(
            repo,
            &run("bare-1", T0),
            std::slice::from_ref(&bare),
            &[passed(0)],
        )
        .await
        .unwrap();
    let with_file = NewTestCase {
        file: Some("src/bare.rs".into()),
        ..bare
    };
    // Recorded late (older than what is stored): the file is filled all the same.
    let again = store
        .ingest(
            repo,
            &run("bare-0", T0 - time::Duration::hours(1)),
            &[with_file],
            &[passed(0)],
        )
        .await
        .unwrap();
    assert_eq!(again.test_ids, first.test_ids);
    let found = store
        .find_test(repo, first.test_ids[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.file.as_deref(), Some("src/bare.rs"));
    assert_eq!(found.last_seen_at, T0);
    store.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_into_an_unknown_repository_is_not_found() {
    let store = store().await;
    store.migrate().await.unwrap();
    let err = store
        .ingest(RepoId(424242), &run("x", T0), &tests(1), &[passed(0)])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    store.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_with_a_nul_character_is_invalid_input() {
    let store = store().await;
    let repo = repo(&*store).await;
    let (org, _) = store.ensure_organization("acme", "Acme").await.unwrap();
    let test = store
        .ingest(repo, &run("1", T0), &tests(1), &[passed(0)])
        .await
        .unwrap()
        .test_ids[0];
    let err = store
        .audit(&NewAuditEntry {
            org: Some(org.id),
            actor: "user:\0".into(),
            action: "token.create".into(),
            target: "acme/shop".into(),
            detail: "{}".into(),
            at: T0,
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    let err = store
        .add_quarantine(repo, &quarantine(test, "flaky\0"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert!(store.live_quarantines(repo).await.unwrap().is_empty());
    store.finish().await;
}

fn quarantine(test: TestCaseId, reason: &str) -> NewQuarantine {
    NewQuarantine {
        test,
        state: QuarantineState::Proposed,
        reason: reason.into(),
        owner: None,
        created_by: "policy:auto".into(),
        created_at: T0,
        expires_at: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_quarantines_of_one_test_leave_one_live() {
    let store = store().await;
    let repo = repo(&*store).await;
    let test = store
        .ingest(repo, &run("1", T0), &tests(1), &[passed(0)])
        .await
        .unwrap()
        .test_ids[0];
    for round in 0..5 {
        let reason = format!("round {round}");
        let q = quarantine(test, &reason);
        let (a, b, c, d) = tokio::join!(
            store.add_quarantine(repo, &q),
            store.add_quarantine(repo, &q),
            store.add_quarantine(repo, &q),
            store.add_quarantine(repo, &q),
        );
        let results = [a, b, c, d];
        let won = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1, "{results:?}");
        assert!(
            results
                .iter()
                .all(|r| r.is_ok() || matches!(r, Err(StoreError::Conflict(_)))),
            "{results:?}"
        );
        let mut conn = store.connection().await;
        sqlx::query("UPDATE quarantines SET state = 'released' WHERE test_case_id = $1")
            .bind(test.0)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    store.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_servers_fail_fast_without_echoing_the_url() {
    let started = Instant::now();
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let err = PostgresStore::connect("postgres://flake:s3cret@127.0.0.1:1/db", 2)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    assert!(!err.to_string().contains("s3cret"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));

    for bad in [
        "postgres://flake:s3cret@127.0.0.1:notaport/db",
        "mysql://flake:s3cret@127.0.0.1/db",
    ] {
        let err = PostgresStore::connect(bad, 2).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    // A database that does not exist on a reachable server.
    let url = support::with_database(&support::admin_url(), "flakeguard_no_such_database");
    let err = PostgresStore::connect(&url, 2).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_times_out() {
    // Accepts connections and never says a word, like a host behind a broken network path.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let started = Instant::now();
    let err = PostgresStore::connect(&format!("postgres://u:s3cret@127.0.0.1:{port}/db"), 2)
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    assert!(!err.to_string().contains("s3cret"), "{err}");
    assert!(
        waited < flakeguard_store_postgres::ACQUIRE_TIMEOUT + Duration::from_secs(3),
        "gave up after {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_recovers_when_its_connections_are_killed() {
    let store = store().await;
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
    let mut conn = store.connection().await;
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    drop(conn);
    // The pool notices the dead connection when handing it out and opens a new one.
    store.ping().await.unwrap();
    assert_eq!(store.counts().await.unwrap().organizations, 0);
    store.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_cascade_to_test_cases_and_executions() {
    let store = store().await;
    let repo = repo(&*store).await;
    let tests = tests(50);
    let executions: Vec<NewExecution> = (0..tests.len()).map(passed).collect();
    let first = store
        .ingest(repo, &run("1", T0), &tests, &executions)
        .await
        .unwrap();
    store
        .ingest(
            repo,
            &run("2", T0 + Duration::from_secs(60)),
            &tests,
            &executions,
        )
        .await
        .unwrap();
    let mut conn = store.connection().await;
    let all: i64 = sqlx::query_scalar("SELECT count(*) FROM executions")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(all, 100);

    // A run takes its executions with it.
    sqlx::query("DELETE FROM runs WHERE id = $1")
        .bind(first.run.0)
        .execute(&mut conn)
        .await
        .unwrap();
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM executions")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, 50);

    // A test case takes its executions with it.
    sqlx::query("DELETE FROM test_cases WHERE id = $1")
        .bind(first.test_ids[0].0)
        .execute(&mut conn)
        .await
        .unwrap();
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM executions")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, 49);

    // A repository takes everything with it.
    sqlx::query("DELETE FROM repositories WHERE id = $1")
        .bind(repo.0)
        .execute(&mut conn)
        .await
        .unwrap();
    let left: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM test_cases),
                (SELECT count(*) FROM executions)",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(left, (0, 0, 0));
    drop(conn);
    store.finish().await;
}
