//! Recording a run: the run row (idempotent on its key), an upsert of every test case it
//! names, and its executions — all in one write transaction.
//!
//! This is the bulk path (a report can hold 100,000 testcases), so rows go in as multi-row
//! `INSERT … VALUES (…), (…)` statements of [`TEST_ROWS`] / [`EXECUTION_ROWS`] rows: one
//! round trip to SQLite's worker thread per chunk instead of per row. The full-chunk statements
//! are the same text every time, so sqlx's per-connection statement cache prepares them once.
//! What was measured (100k testcases, see `docs/performance.md`):
//!
//! - Parameters are anonymous (`?`), even for the values every row shares (the repository,
//!   the run): sqlx looks each parameter up with `sqlite3_bind_parameter_name`, which scans the
//!   list of *numbered* parameters, so `?NNN` makes binding a chunk quadratic (86% of the time,
//!   10 s for 100k rows).
//! - Test ids are not taken from `RETURNING`: sqlx hands every returned row across a channel
//!   from its worker thread, which cost about 200 ms per 100k rows. Instead, after each chunk's
//!   upsert one query returns the chunk's `key_hash:id` pairs as a single `group_concat` string.
//! - Test cases go in sorted by key hash and executions by (test id, attempt), so the unique
//!   index and the executions B-tree are filled in order rather than at random places.
//! - The next chunk's arguments are built while SQLite executes the current chunk on sqlx's
//!   worker thread ([`overlapped`]): first-run ingestion went from ~125k to ~180k results/s.
//! - Row-level alternatives that lost: one `json_each` document per chunk (slower: the JSON is
//!   parsed again for every column).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::task::Poll;

use flakeguard_store::{
    Ingested, NewExecution, NewRun, NewTestCase, RepoId, Result, StoreError, StoredRunId,
    TestCaseId, outcome_code,
};
use sqlx::{AssertSqlSafe, SqliteConnection};

use crate::SqliteStore;
use crate::error::map;
use crate::timestamp::to_micros;

/// Test cases per upsert statement.
pub(crate) const TEST_ROWS: usize = 1_000;
/// Bound values per test case.
const TEST_VALUES: usize = 9;
/// Executions per insert statement.
pub(crate) const EXECUTION_ROWS: usize = 1_000;
/// Bound values per execution.
const EXECUTION_VALUES: usize = 7;

/// SQLite's limit on bound values in one statement (`SQLITE_MAX_VARIABLE_NUMBER`).
const MAX_VARIABLES: usize = 32_766;
const _: () = assert!(
    TEST_ROWS * TEST_VALUES <= MAX_VARIABLES && EXECUTION_ROWS * EXECUTION_VALUES <= MAX_VARIABLES
);

/// `head` + `rows` groups of `values` anonymous parameters + `tail`.
fn values_sql(head: &str, tail: &str, rows: usize, values: usize) -> String {
    let group = format!("({})", vec!["?"; values].join(","));
    let mut sql = String::with_capacity(head.len() + tail.len() + rows * (group.len() + 1));
    sql.push_str(head);
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(&group);
    }
    sql.push_str(tail);
    sql
}

const TESTS_HEAD: &str = "INSERT INTO test_cases \
    (repo_id, key_hash, scope, classname, name, variant, file, first_seen_at, last_seen_at) VALUES ";
const TESTS_TAIL: &str = " ON CONFLICT (repo_id, key_hash) DO UPDATE SET \
    last_seen_at = max(last_seen_at, excluded.last_seen_at), \
    file = coalesce(file, excluded.file)";

/// The ids of the test cases whose key hashes follow, as `hash:id,hash:id,…`.
const IDS_HEAD: &str =
    "SELECT group_concat(key_hash || ':' || id) FROM test_cases WHERE repo_id = ? AND key_hash IN ";

fn tests_sql(rows: usize) -> String {
    values_sql(TESTS_HEAD, TESTS_TAIL, rows, TEST_VALUES)
}

fn ids_sql(rows: usize) -> String {
    let mut sql = String::with_capacity(IDS_HEAD.len() + rows * 2 + 2);
    sql.push_str(IDS_HEAD);
    sql.push('(');
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push('?');
    }
    sql.push(')');
    sql
}

const EXECUTIONS_HEAD: &str = "INSERT INTO executions \
    (run_id, test_case_id, attempt, outcome, duration_ms, failure_signature, message) VALUES ";

fn executions_sql(rows: usize) -> String {
    values_sql(EXECUTIONS_HEAD, "", rows, EXECUTION_VALUES)
}

/// The statement for `rows` rows: the full-chunk one is built once per process.
fn chunk_sql(
    rows: usize,
    full: usize,
    cache: &OnceLock<Arc<str>>,
    build: fn(usize) -> String,
) -> Arc<str> {
    if rows == full {
        cache.get_or_init(|| build(full).into()).clone()
    } else {
        build(rows).into()
    }
}

static FULL_TESTS_SQL: OnceLock<Arc<str>> = OnceLock::new();
static FULL_IDS_SQL: OnceLock<Arc<str>> = OnceLock::new();
static FULL_EXECUTIONS_SQL: OnceLock<Arc<str>> = OnceLock::new();

/// An execution as stored, checked before anything is written.
#[derive(Debug)]
struct ExecutionRow<'a> {
    test: usize,
    attempt: i64,
    outcome: i16,
    duration_ms: Option<i64>,
    signature: Option<i64>,
    message: Option<&'a str>,
}

fn validate<'a>(
    tests: &[NewTestCase],
    executions: &'a [NewExecution],
) -> Result<Vec<ExecutionRow<'a>>> {
    executions
        .iter()
        .enumerate()
        .map(|(i, e)| {
            if e.test >= tests.len() {
                return Err(StoreError::Invalid(format!(
                    "execution {i} refers to test {} but the run names {} tests",
                    e.test,
                    tests.len()
                )));
            }
            let duration_ms = e.duration_ms.map(i64::try_from).transpose().map_err(|_| {
                StoreError::Invalid(format!("execution {i} has an impossible duration"))
            })?;
            Ok(ExecutionRow {
                test: e.test,
                attempt: i64::from(e.attempt),
                outcome: outcome_code(e.outcome),
                duration_ms,
                // A u64 stored bitwise in a signed INTEGER.
                signature: e.signature.map(|s| s as i64),
                message: e.message.as_deref(),
            })
        })
        .collect()
}

/// Starts `work` (a statement, which runs on sqlx's SQLite worker thread once polled), runs
/// `meanwhile` on this thread, then waits for `work`: building the next chunk's arguments
/// overlaps with SQLite executing this one.
async fn overlapped<F: Future, T>(work: F, meanwhile: impl FnOnce() -> T) -> (F::Output, T) {
    let mut work = std::pin::pin!(work);
    let mut early = None;
    // One poll sends the statement to the worker thread.
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = work.as_mut().poll(cx) {
            early = Some(output);
        }
        Poll::Ready(())
    })
    .await;
    let other = meanwhile();
    let output = match early {
        Some(output) => output,
        None => work.await,
    };
    (output, other)
}

/// What the transaction did.
enum Recorded {
    New(Ingested),
    Existing(StoredRunId),
}

impl SqliteStore {
    pub(crate) async fn ingest_impl(
        &self,
        repo: RepoId,
        run: &NewRun,
        tests: &[NewTestCase],
        executions: &[NewExecution],
    ) -> Result<Ingested> {
        let rows = validate(tests, executions)?;
        let mut tx = self.write().await?;
        match record(&mut tx, repo, run, tests, rows).await {
            Ok(Recorded::New(ingested)) => {
                tx.commit().await.map_err(map("commit the run"))?;
                Ok(ingested)
            }
            Ok(Recorded::Existing(run)) => {
                tx.rollback().await.map_err(map("end the transaction"))?;
                Ok(Ingested {
                    run,
                    created: false,
                    test_ids: Vec::new(),
                })
            }
            Err(err) => {
                // Best effort: dropping the transaction would roll back as well.
                let _ = tx.rollback().await;
                Err(err)
            }
        }
    }
}

async fn record(
    conn: &mut SqliteConnection,
    repo: RepoId,
    run: &NewRun,
    tests: &[NewTestCase],
    mut rows: Vec<ExecutionRow<'_>>,
) -> Result<Recorded> {
    let started_at = to_micros(run.started_at);
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO runs (repo_id, commit_sha, branch, pr_number, workflow_run_id, run_attempt,
                           job, source, started_at, received_at, report_digest)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (repo_id, workflow_run_id, run_attempt, job, report_digest) DO NOTHING
         RETURNING id",
    )
    .bind(repo.0)
    .bind(run.commit.as_deref())
    .bind(run.branch.as_deref())
    .bind(run.pr_number)
    .bind(&run.run_id)
    .bind(i64::from(run.attempt))
    .bind(&run.job)
    .bind(run.source.as_str())
    .bind(started_at)
    .bind(to_micros(run.received_at))
    .bind(&run.report_digest)
    .fetch_optional(&mut *conn)
    .await
    .map_err(map("insert the run"))?;
    let Some(run_id) = inserted else {
        let existing: i64 = sqlx::query_scalar(
            "SELECT id FROM runs WHERE repo_id = ? AND workflow_run_id = ? AND run_attempt = ?
             AND job = ? AND report_digest = ?",
        )
        .bind(repo.0)
        .bind(&run.run_id)
        .bind(i64::from(run.attempt))
        .bind(&run.job)
        .bind(&run.report_digest)
        .fetch_one(&mut *conn)
        .await
        .map_err(map("read the existing run"))?;
        return Ok(Recorded::Existing(StoredRunId(existing)));
    };

    let test_ids = upsert_tests(conn, repo, started_at, tests).await?;

    // In primary-key order: the executions B-tree is then filled from left to right.
    rows.sort_unstable_by_key(|r| (test_ids[r.test], r.attempt));
    let build = |chunk: &[ExecutionRow<'_>]| {
        let sql = chunk_sql(
            chunk.len(),
            EXECUTION_ROWS,
            &FULL_EXECUTIONS_SQL,
            executions_sql,
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for row in chunk {
            query = query
                .bind(run_id)
                .bind(test_ids[row.test])
                .bind(row.attempt)
                .bind(row.outcome)
                .bind(row.duration_ms)
                .bind(row.signature)
                .bind(row.message);
        }
        query
    };
    let mut chunks = rows.chunks(EXECUTION_ROWS);
    let mut next = chunks.next().map(build);
    while let Some(query) = next.take() {
        let (done, following) =
            overlapped(query.execute(&mut *conn), || chunks.next().map(build)).await;
        done.map_err(map("insert the executions"))?;
        next = following;
    }

    Ok(Recorded::New(Ingested {
        run: StoredRunId(run_id),
        created: true,
        test_ids: test_ids.into_iter().map(TestCaseId).collect(),
    }))
}

/// Inserts the tests that are new, refreshes the others, and returns every test's id in the
/// order of `tests`.
async fn upsert_tests(
    conn: &mut SqliteConnection,
    repo: RepoId,
    seen_at: i64,
    tests: &[NewTestCase],
) -> Result<Vec<i64>> {
    // The stable id is reinterpreted bitwise as a signed INTEGER.
    let hashes: Vec<i64> = tests.iter().map(|t| t.key.stable_id() as i64).collect();
    let mut order: Vec<usize> = (0..tests.len()).collect();
    order.sort_unstable_by_key(|&i| hashes[i]);
    let upsert = |chunk: &[usize]| {
        let sql = chunk_sql(chunk.len(), TEST_ROWS, &FULL_TESTS_SQL, tests_sql);
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for &i in chunk {
            let test = &tests[i];
            query = query
                .bind(repo.0)
                .bind(hashes[i])
                .bind(&test.key.scope)
                .bind(&test.key.classname)
                .bind(&test.key.name)
                .bind(test.key.variant.as_deref())
                .bind(test.file.as_deref())
                .bind(seen_at)
                .bind(seen_at);
        }
        query
    };
    let lookup = |chunk: &[usize]| {
        let sql = chunk_sql(chunk.len(), TEST_ROWS, &FULL_IDS_SQL, ids_sql);
        let mut query = sqlx::query_scalar::<_, Option<String>>(AssertSqlSafe(sql)).bind(repo.0);
        for &i in chunk {
            query = query.bind(hashes[i]);
        }
        query
    };
    let mut ids: HashMap<i64, i64> = HashMap::with_capacity(tests.len());
    let mut chunks = order.chunks(TEST_ROWS).peekable();
    let mut next = chunks.peek().map(|c| upsert(c));
    while let (Some(query), Some(chunk)) = (next.take(), chunks.next()) {
        // The next statement is built while SQLite runs this one.
        let (done, ids_query) = overlapped(query.execute(&mut *conn), || lookup(chunk)).await;
        done.map_err(map("record the test cases"))?;
        let (pairs, following) = overlapped(ids_query.fetch_one(&mut *conn), || {
            chunks.peek().map(|c| upsert(c))
        })
        .await;
        next = following;
        let pairs = pairs
            .map_err(map("read the test case ids"))?
            .unwrap_or_default();
        for pair in pairs.split(',').filter(|p| !p.is_empty()) {
            let parsed = pair
                .split_once(':')
                .and_then(|(hash, id)| Some((hash.parse().ok()?, id.parse().ok()?)));
            let Some((hash, id)) = parsed else {
                return Err(crate::error::corrupt(format_args!(
                    "test case id pair {pair:?}"
                )));
            };
            ids.insert(hash, id);
        }
    }
    hashes
        .iter()
        .map(|hash| {
            ids.get(hash).copied().ok_or_else(|| {
                StoreError::Database("a test case was not found after its upsert".to_owned())
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_statements_have_one_group_per_row() {
        assert_eq!(
            tests_sql(2),
            format!("{TESTS_HEAD}(?,?,?,?,?,?,?,?,?),(?,?,?,?,?,?,?,?,?){TESTS_TAIL}")
        );
        assert_eq!(
            executions_sql(2),
            format!("{EXECUTIONS_HEAD}(?,?,?,?,?,?,?),(?,?,?,?,?,?,?)")
        );
        assert_eq!(ids_sql(3), format!("{IDS_HEAD}(?,?,?)"));
        assert_eq!(
            executions_sql(EXECUTION_ROWS).matches('?').count(),
            EXECUTION_ROWS * EXECUTION_VALUES
        );
    }
}
