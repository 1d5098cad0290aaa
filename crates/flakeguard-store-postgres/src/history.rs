//! Reading a repository's history for scoring — of every test (`load`), or of the tests of one
//! run (`load_run`: what scoring a new run needs; a small run's tests are read test by test
//! without touching the rest of the repository, a large run's by reading the window as `load`
//! does, [`RUN_PAIRS_MAX`]) — and writing back each test's derived state.

use std::collections::HashMap;

use flakeguard_core::{Execution, Run, TestHistory, TestKey};
use flakeguard_store::{
    DerivedState, RepoId, StoreError, StoredHistory, StoredRunId, TestCaseId, outcome_from_code,
};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, Row, Transaction};
use time::OffsetDateTime;

use crate::error::map;

const RECENT_RUNS: &str = "SELECT id, workflow_run_id, run_attempt, commit_sha, branch, job,
        started_at
    FROM runs WHERE repo_id = $1
    ORDER BY started_at DESC, id DESC
    LIMIT $2";

/// One run's executions as one row of arrays (one message, not one per execution).
const EXECUTIONS_OF_RUN: &str = "SELECT COALESCE(array_agg(test_case_id), '{}'),
        COALESCE(array_agg(attempt), '{}'), COALESCE(array_agg(outcome), '{}'),
        COALESCE(array_agg(duration_ms), '{}'), COALESCE(array_agg(failure_signature), '{}')
    FROM executions WHERE run_id = $1";

/// How many distinct tests run $1 has, if it is repository $2's.
const RUN_TEST_COUNT: &str = "SELECT (SELECT count(DISTINCT test_case_id) FROM executions
                                     WHERE run_id = r.id)
    FROM runs r WHERE r.id = $1 AND r.repo_id = $2";

/// The distinct tests of run $1, in id order.
const RUN_TESTS: &str = "SELECT ARRAY(SELECT DISTINCT test_case_id FROM executions
                                     WHERE run_id = $1 ORDER BY 1)";

/// The most (window run, test) pairs `load_run` reads test by test
/// ([`EXECUTIONS_OF_RUN_TESTS`]). An execution found that way costs several µs (an index
/// range per test and a heap fetch per execution, wherever its run's rows are); one read
/// with its whole run, as `load` does, about 1 µs. Up to this many pairs (under a second)
/// the run's tests are read one by one; beyond, the run is most of the window, which is read
/// whole instead (see `docs/performance.md`).
const RUN_PAIRS_MAX: u64 = 100_000;

/// The executions in the window's runs ($1, the lowest of them $3) of the tests of run $2,
/// as one row of arrays (with each execution's run). Each test is one range of
/// `executions_test_run`: (test, run ≥ the window's lowest id), about a window's worth of
/// entries per test however long the history, since run ids grow with time; `run_id =
/// ANY($1)` keeps the window's. `OFFSET 0` keeps the lateral subquery from being flattened
/// into a join, which PostgreSQL may plan as a hash join over the window's every execution
/// (it did with generic plans, and on a freshly loaded database: 214 ms for a 200-test run
/// against 21 ms now); as a subquery, it is one index range per test whatever the estimates.
const EXECUTIONS_OF_RUN_TESTS: &str = "SELECT COALESCE(array_agg(e.run_id), '{}'),
        COALESCE(array_agg(e.test_case_id), '{}'), COALESCE(array_agg(e.attempt), '{}'),
        COALESCE(array_agg(e.outcome), '{}'), COALESCE(array_agg(e.duration_ms), '{}'),
        COALESCE(array_agg(e.failure_signature), '{}')
    FROM (SELECT DISTINCT test_case_id FROM executions WHERE run_id = $2) AS t
    CROSS JOIN LATERAL (
        SELECT x.run_id, x.test_case_id, x.attempt, x.outcome, x.duration_ms,
               x.failure_signature
        FROM executions x
        WHERE x.test_case_id = t.test_case_id AND x.run_id >= $3 AND x.run_id = ANY($1)
        OFFSET 0
    ) AS e";

/// Test identities as one row of arrays, for a chunk of ids.
const TESTS_BY_ID: &str = "SELECT COALESCE(array_agg(id), '{}'), COALESCE(array_agg(scope), '{}'),
        COALESCE(array_agg(classname), '{}'), COALESCE(array_agg(name), '{}'),
        COALESCE(array_agg(variant), '{}'), COALESCE(array_agg(file), '{}')
    FROM test_cases WHERE repo_id = $1 AND id = ANY($2)";

/// Test ids per `TESTS_BY_ID` query (bounds the size of one answer).
const TESTS_PER_QUERY: usize = 20_000;

const SAVE_SCORES: &str = "UPDATE test_cases AS t SET
        status = s.status, probability = s.probability, confidence = s.confidence,
        legacy_score = s.legacy_score, recommendation = s.recommendation,
        executions = s.executions, failures = s.failures, reason = s.reason,
        evidence = s.evidence, scored_at = $7
    FROM UNNEST($2::bigint[], $3::text[], $4::float8[], $5::float8[], $6::float8[], $8::text[],
                $9::bigint[], $10::bigint[], $11::text[], $12::text[])
        AS s (id, status, probability, confidence, legacy_score, recommendation, executions,
              failures, reason, evidence)
    WHERE t.id = s.id AND t.repo_id = $1";

pub(crate) fn u32_column(row: &PgRow, column: &str) -> Result<u32, StoreError> {
    let value: i32 = row.try_get(column).map_err(map)?;
    u32::try_from(value)
        .map_err(|_| StoreError::Database(format!("stored {column} {value} is negative")))
}

fn run_from_row(row: &PgRow) -> Result<(StoredRunId, Run), StoreError> {
    let job: String = row.try_get("job").map_err(map)?;
    Ok((
        StoredRunId(row.try_get("id").map_err(map)?),
        Run {
            run_id: row.try_get("workflow_run_id").map_err(map)?,
            attempt: u32_column(row, "run_attempt")?,
            commit: row.try_get("commit_sha").map_err(map)?,
            branch: row.try_get("branch").map_err(map)?,
            job: (!job.is_empty()).then_some(job),
            started_at: row.try_get("started_at").map_err(map)?,
        },
    ))
}

pub(crate) async fn load(
    pool: &PgPool,
    repo: RepoId,
    max_runs: u32,
) -> Result<StoredHistory, StoreError> {
    // One snapshot for every read, so a run committed meanwhile cannot half-appear.
    let mut tx = crate::snapshot(pool).await?;
    let history = window(&mut tx, repo, max_runs).await?;
    if history.runs.is_empty() {
        return Ok(history);
    }
    let all = window_executions(&mut tx, &history).await?;
    with_tests(tx, repo, history, all).await
}

pub(crate) async fn load_run(
    pool: &PgPool,
    repo: RepoId,
    run: StoredRunId,
    max_runs: u32,
) -> Result<StoredHistory, StoreError> {
    let mut tx = crate::snapshot(pool).await?;
    let tests: Option<i64> = sqlx::query_scalar(RUN_TEST_COUNT)
        .bind(run.0)
        .bind(repo.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map)?;
    let Some(tests) = tests else {
        return Err(StoreError::NotFound(format!("run {run}")));
    };
    let history = window(&mut tx, repo, max_runs).await?;
    if history.runs.is_empty() {
        return Ok(history);
    }
    let pairs = u64::try_from(tests)
        .unwrap_or(0)
        .saturating_mul(history.runs.len() as u64);
    if pairs > RUN_PAIRS_MAX {
        // Most of the window: read it as load_history does, keep the run's tests.
        let mut all = window_executions(&mut tx, &history).await?;
        let keep: Vec<i64> = sqlx::query_scalar(RUN_TESTS)
            .bind(run.0)
            .fetch_one(&mut *tx)
            .await
            .map_err(map)?;
        all.retain(|(test, _)| keep.binary_search(test).is_ok());
        return with_tests(tx, repo, history, all).await;
    }

    type Columns = (
        Vec<i64>,
        Vec<i64>,
        Vec<i32>,
        Vec<i16>,
        Vec<Option<i64>>,
        Vec<Option<i64>>,
    );
    let ids: Vec<i64> = history.run_ids.iter().map(|r| r.0).collect();
    let lowest = ids.iter().copied().min().unwrap_or(i64::MAX);
    // Not a prepared statement: an unnamed one is planned with its parameters' values every
    // time (the window's lowest id, how many runs), where a prepared one soon gets a generic
    // plan guessing at them.
    let (runs, tests, attempts, outcomes, durations, signatures): Columns =
        sqlx::query_as(EXECUTIONS_OF_RUN_TESTS)
            .bind(&ids)
            .bind(run.0)
            .bind(lowest)
            .persistent(false)
            .fetch_one(&mut *tx)
            .await
            .map_err(map)?;
    if runs.len() != tests.len() {
        return Err(StoreError::Database(
            "execution columns differ in length".into(),
        ));
    }
    // Each execution's run as its index in the window.
    let index: HashMap<i64, u32> = ids.iter().copied().zip(0u32..).collect();
    let mut all = Vec::with_capacity(runs.len());
    push_executions(
        &mut all,
        (tests, attempts, outcomes, durations, signatures),
        |i| {
            index.get(&runs[i]).copied().ok_or_else(|| {
                StoreError::Database(format!("run {} is not in the scoring window", runs[i]))
            })
        },
    )?;
    with_tests(tx, repo, history, all).await
}

/// Every execution of the window's runs with its test id, run by run.
async fn window_executions(
    tx: &mut Transaction<'static, Postgres>,
    history: &StoredHistory,
) -> Result<Vec<(i64, Execution)>, StoreError> {
    let mut all: Vec<(i64, Execution)> = Vec::new();
    for (run_id, run) in history.run_ids.iter().zip(0u32..) {
        let columns: ExecutionColumns = sqlx::query_as(EXECUTIONS_OF_RUN)
            .bind(run_id.0)
            .fetch_one(&mut **tx)
            .await
            .map_err(map)?;
        push_executions(&mut all, columns, |_| Ok(run))?;
    }
    Ok(all)
}

/// The repository's last `max_runs` runs, oldest first, as a history without tests.
async fn window(
    tx: &mut Transaction<'static, Postgres>,
    repo: RepoId,
    max_runs: u32,
) -> Result<StoredHistory, StoreError> {
    let rows = sqlx::query(RECENT_RUNS)
        .bind(repo.0)
        .bind(i64::from(max_runs))
        .fetch_all(&mut **tx)
        .await
        .map_err(map)?;
    let mut history = StoredHistory::default();
    for row in rows.iter().rev() {
        let (id, run) = run_from_row(row)?;
        history.run_ids.push(id);
        history.runs.push(run);
    }
    Ok(history)
}

/// Test ids, attempts, outcomes, durations and signatures of executions, one array each.
type ExecutionColumns = (
    Vec<i64>,
    Vec<i32>,
    Vec<i16>,
    Vec<Option<i64>>,
    Vec<Option<i64>>,
);

/// Appends the executions of `columns` to `all`, the i-th in the window's run `run_of(i)`.
fn push_executions(
    all: &mut Vec<(i64, Execution)>,
    columns: ExecutionColumns,
    run_of: impl Fn(usize) -> Result<u32, StoreError>,
) -> Result<(), StoreError> {
    let (tests, attempts, outcomes, durations, signatures) = columns;
    let n = tests.len();
    if [
        attempts.len(),
        outcomes.len(),
        durations.len(),
        signatures.len(),
    ] != [n; 4]
    {
        return Err(StoreError::Database(
            "execution columns differ in length".into(),
        ));
    }
    all.reserve(n);
    for i in 0..n {
        let outcome = outcomes[i];
        let execution = Execution {
            run: run_of(i)?,
            attempt: u32::try_from(attempts[i]).map_err(|_| {
                StoreError::Database(format!("stored attempt {} is negative", attempts[i]))
            })?,
            outcome: outcome_from_code(outcome).ok_or_else(|| {
                StoreError::Database(format!("stored outcome {outcome} is unknown"))
            })?,
            duration_ms: durations[i].map(|d| u64::try_from(d).unwrap_or(0)),
            // Bit-for-bit: stored as a signed BIGINT.
            signature: signatures[i].map(|s| s as u64),
        };
        all.push((tests[i], execution));
    }
    Ok(())
}

/// Completes `history` with the tests of `all` (executions with their test ids): each of
/// this repository's tests, in id order, with its executions in (run, attempt) order. Ends
/// the snapshot.
async fn with_tests(
    mut tx: Transaction<'static, Postgres>,
    repo: RepoId,
    mut history: StoredHistory,
    mut all: Vec<(i64, Execution)>,
) -> Result<StoredHistory, StoreError> {
    // Sorted, so that each test's executions are adjacent and in (run, attempt) order (no
    // hashing of a million ids).
    all.sort_unstable_by_key(|(test, e)| (*test, e.run, e.attempt));
    let mut test_ids: Vec<i64> = all.iter().map(|(test, _)| *test).collect();
    test_ids.dedup();

    // The identities of those tests (only this repository's), in id order.
    let mut identities: Vec<(i64, TestKey, Option<String>)> = Vec::with_capacity(test_ids.len());
    for chunk in test_ids.chunks(TESTS_PER_QUERY) {
        type Columns = (
            Vec<i64>,
            Vec<String>,
            Vec<String>,
            Vec<String>,
            Vec<Option<String>>,
            Vec<Option<String>>,
        );
        let (ids, scopes, classnames, names, variants, files): Columns =
            sqlx::query_as(TESTS_BY_ID)
                .bind(repo.0)
                .bind(chunk)
                .fetch_one(&mut *tx)
                .await
                .map_err(map)?;
        let n = ids.len();
        let lengths = [
            scopes.len(),
            classnames.len(),
            names.len(),
            variants.len(),
            files.len(),
        ];
        if lengths != [n; 5] {
            return Err(StoreError::Database("test columns differ in length".into()));
        }
        let rows = ids
            .into_iter()
            .zip(scopes)
            .zip(classnames)
            .zip(names)
            .zip(variants)
            .zip(files);
        for (((((id, scope), classname), name), variant), file) in rows {
            let key = TestKey {
                scope,
                classname,
                name,
                variant,
            };
            identities.push((id, key, file));
        }
    }
    tx.commit().await.map_err(map)?;
    identities.sort_unstable_by_key(|(id, _, _)| *id);

    // Both sorted by test id: walk them together.
    history.tests.reserve(identities.len());
    history.test_ids.reserve(identities.len());
    let mut executions = all.into_iter().peekable();
    for (id, key, file) in identities {
        // Skip executions of tests without an identity here (another repository's).
        while executions.next_if(|(test, _)| *test < id).is_some() {}
        let mut mine = Vec::new();
        while let Some((_, execution)) = executions.next_if(|(test, _)| *test == id) {
            mine.push(execution);
        }
        if mine.is_empty() {
            continue;
        }
        history.tests.push(TestHistory {
            key,
            file,
            executions: mine,
        });
        history.test_ids.push(TestCaseId(id));
    }
    Ok(history)
}

/// Serialises the writers of one repository's test cases (ingests and score saves) for the
/// rest of the transaction. Without it, concurrent writers lock `test_cases` rows in whatever
/// order their plans visit them (a sequential scan on a small repository, a hash join for
/// scores), and deadlock: the fault tests saw up to 40 a run, each costing PostgreSQL's 1 s
/// `deadlock_timeout` and, after four retries, a 409 — and under a burst the waiting writers
/// held every pooled connection. Different repositories still write in parallel. The first key
/// marks the lock as FlakeGuard's ('FG' in ASCII), so other users of advisory locks on the same
/// database cannot collide with it.
pub(crate) async fn lock_repository(
    conn: &mut sqlx::PgConnection,
    repo: RepoId,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(18007, ($1 % 2147483647)::int)")
        .bind(repo.0)
        .execute(conn)
        .await?;
    Ok(())
}

pub(crate) async fn save_scores(
    pool: &PgPool,
    repo: RepoId,
    scores: &[DerivedState],
    at: OffsetDateTime,
) -> Result<(), StoreError> {
    if scores.is_empty() {
        return Ok(());
    }
    // In id order, so concurrent writers lock rows in the same order.
    let mut sorted: Vec<&DerivedState> = scores.iter().collect();
    sorted.sort_by_key(|s| s.test);
    let ids: Vec<i64> = sorted.iter().map(|s| s.test.0).collect();
    let status: Vec<&str> = sorted.iter().map(|s| s.status.as_str()).collect();
    let probability: Vec<f64> = sorted.iter().map(|s| s.probability).collect();
    let confidence: Vec<f64> = sorted.iter().map(|s| s.confidence).collect();
    let legacy: Vec<f64> = sorted.iter().map(|s| s.legacy_score).collect();
    let recommendation: Vec<&str> = sorted.iter().map(|s| s.recommendation.as_str()).collect();
    let executions: Vec<i64> = sorted.iter().map(|s| i64::from(s.executions)).collect();
    let failures: Vec<i64> = sorted.iter().map(|s| i64::from(s.failures)).collect();
    let reason: Vec<&str> = sorted.iter().map(|s| s.reason.as_str()).collect();
    let evidence: Vec<&str> = sorted.iter().map(|s| s.evidence.as_str()).collect();
    let mut tx = pool.begin().await.map_err(map)?;
    lock_repository(&mut tx, repo).await.map_err(map)?;
    sqlx::query(SAVE_SCORES)
        .bind(repo.0)
        .bind(&ids)
        .bind(&status)
        .bind(&probability)
        .bind(&confidence)
        .bind(&legacy)
        .bind(at)
        .bind(&recommendation)
        .bind(&executions)
        .bind(&failures)
        .bind(&reason)
        .bind(&evidence)
        .execute(&mut *tx)
        .await
        .map_err(map)?;
    tx.commit().await.map_err(map)?;
    Ok(())
}
