//! Reading runs and executions back for people: a repository's runs with their counts, one
//! run's failures, and one test's recent executions and failure signatures.
//!
//! Executions carry no repository: every query reaches them through a run or a test of the
//! repository asked about, so another tenant's rows cannot appear.

use flakeguard_core::Outcome;
use flakeguard_store::{
    Page, PageRequest, RepoId, RunFailure, SignatureCount, Source, StoreError, StoredRun,
    StoredRunId, TestCaseId, TestExecution, outcome_code, outcome_from_code,
};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

use crate::error::map;
use crate::history::u32_column;
use crate::test_cases::key_from_row;

const RUN_COLUMNS: &str = "id, repo_id, commit_sha, branch, pr_number, workflow_run_id, \
    run_attempt, job, source, started_at, received_at, report_digest, scored_at";

/// The runs `page` selects, with their counts (one index range of `executions` per run);
/// `$failing` is the parameter holding the failing outcome codes.
fn runs_sql(page: &str, failing: usize) -> String {
    format!(
        "WITH page AS ({page})
         SELECT page.*, c.testcases, c.executions, c.failed
         FROM page CROSS JOIN LATERAL (
             SELECT count(DISTINCT test_case_id) AS testcases, count(*) AS executions,
                    count(DISTINCT test_case_id) FILTER (WHERE outcome = ANY(${failing}))
                        AS failed
             FROM executions WHERE run_id = page.id
         ) AS c
         ORDER BY page.started_at DESC, page.id DESC"
    )
}

/// The run's failed and errored executions ($1 run, $2 repository, $3 failing outcomes).
const RUN_FAILURES: &str = r#"
    SELECT e.test_case_id, t.scope, t.classname, t.name, t.variant, e.attempt, e.outcome,
           e.duration_ms, e.failure_signature, e.message
    FROM runs r
    JOIN executions e ON e.run_id = r.id
    JOIN test_cases t ON t.id = e.test_case_id
    WHERE r.id = $1 AND r.repo_id = $2 AND t.repo_id = r.repo_id AND e.outcome = ANY($3)
    ORDER BY t.classname COLLATE "C", t.name COLLATE "C", t.id, e.attempt"#;

/// A test's executions with their runs, newest first ($1 test, $2 repository, $3 limit).
const RECENT_EXECUTIONS: &str = "
    SELECT r.id AS run_id, r.workflow_run_id, r.run_attempt, r.job, r.commit_sha, r.branch,
           r.started_at, e.attempt, e.outcome, e.duration_ms, e.failure_signature, e.message
    FROM test_cases t
    JOIN executions e ON e.test_case_id = t.id
    JOIN runs r ON r.id = e.run_id
    WHERE t.id = $1 AND t.repo_id = $2 AND r.repo_id = t.repo_id
    ORDER BY r.started_at DESC, r.id DESC, e.attempt DESC
    LIMIT $3";

/// A test's failure signatures, most frequent first ($1 test, $2 repository). The message is
/// the latest stored one with the signature.
const SIGNATURES: &str = "
    WITH f AS (
        SELECT e.failure_signature AS signature, e.message, r.started_at, r.id AS run_id,
               e.attempt
        FROM test_cases t
        JOIN executions e ON e.test_case_id = t.id
        JOIN runs r ON r.id = e.run_id
        WHERE t.id = $1 AND t.repo_id = $2 AND r.repo_id = t.repo_id
          AND e.failure_signature IS NOT NULL
    )
    SELECT signature, count(*) AS times, max(started_at) AS last_seen_at,
           (SELECT l.message FROM f AS l
            WHERE l.signature = f.signature AND l.message IS NOT NULL
            ORDER BY l.started_at DESC, l.run_id DESC, l.attempt DESC LIMIT 1) AS message
    FROM f GROUP BY signature
    ORDER BY times DESC, last_seen_at DESC, signature";

/// The outcomes that count as failing, as stored.
fn failing() -> Vec<i16> {
    vec![outcome_code(Outcome::Failed), outcome_code(Outcome::Error)]
}

fn count(row: &PgRow, column: &str) -> Result<u64, StoreError> {
    let value: i64 = row.try_get(column).map_err(map)?;
    u64::try_from(value).map_err(|_| StoreError::Database(format!("{column} {value} is negative")))
}

fn stored_run(row: &PgRow) -> Result<StoredRun, StoreError> {
    let source: String = row.try_get("source").map_err(map)?;
    Ok(StoredRun {
        id: StoredRunId(row.try_get("id").map_err(map)?),
        repo: RepoId(row.try_get("repo_id").map_err(map)?),
        commit: row.try_get("commit_sha").map_err(map)?,
        branch: row.try_get("branch").map_err(map)?,
        pr_number: row.try_get("pr_number").map_err(map)?,
        workflow_run_id: row.try_get("workflow_run_id").map_err(map)?,
        attempt: u32_column(row, "run_attempt")?,
        job: row.try_get("job").map_err(map)?,
        source: Source::parse(&source)
            .ok_or_else(|| StoreError::Database(format!("stored source {source:?} is unknown")))?,
        started_at: row.try_get("started_at").map_err(map)?,
        received_at: row.try_get("received_at").map_err(map)?,
        report_digest: row.try_get("report_digest").map_err(map)?,
        scored_at: row.try_get("scored_at").map_err(map)?,
        testcases: count(row, "testcases")?,
        executions: count(row, "executions")?,
        failed: count(row, "failed")?,
    })
}

/// The execution columns every query here reads the same way.
struct ExecutionFields {
    attempt: u32,
    outcome: Outcome,
    duration_ms: Option<u64>,
    signature: Option<u64>,
    message: Option<String>,
}

fn execution_fields(row: &PgRow) -> Result<ExecutionFields, StoreError> {
    let code: i16 = row.try_get("outcome").map_err(map)?;
    let duration: Option<i64> = row.try_get("duration_ms").map_err(map)?;
    let signature: Option<i64> = row.try_get("failure_signature").map_err(map)?;
    Ok(ExecutionFields {
        attempt: u32_column(row, "attempt")?,
        outcome: outcome_from_code(code)
            .ok_or_else(|| StoreError::Database(format!("stored outcome {code} is unknown")))?,
        duration_ms: duration
            .map(|d| {
                u64::try_from(d)
                    .map_err(|_| StoreError::Database(format!("stored duration {d} is negative")))
            })
            .transpose()?,
        // Bit for bit: stored as a signed BIGINT.
        signature: signature.map(|s| s as u64),
        message: row.try_get("message").map_err(map)?,
    })
}

pub(crate) async fn list_runs(
    pool: &PgPool,
    repo: RepoId,
    page: PageRequest,
) -> Result<Page<StoredRun>, StoreError> {
    let sql = runs_sql(
        &format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE repo_id = $1
             ORDER BY started_at DESC, id DESC LIMIT $2 OFFSET $3"
        ),
        4,
    );
    // One snapshot: the total matches the page.
    let mut tx = crate::snapshot(pool).await?;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM runs WHERE repo_id = $1")
        .bind(repo.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(map)?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(repo.0)
        .bind(i64::from(page.limit))
        .bind(i64::try_from(page.offset).unwrap_or(i64::MAX))
        .bind(failing())
        .fetch_all(&mut *tx)
        .await
        .map_err(map)?;
    tx.commit().await.map_err(map)?;
    Ok(Page {
        items: rows.iter().map(stored_run).collect::<Result<_, _>>()?,
        total: u64::try_from(total).unwrap_or(0),
    })
}

pub(crate) async fn find_run(
    pool: &PgPool,
    repo: RepoId,
    run: StoredRunId,
) -> Result<Option<StoredRun>, StoreError> {
    let sql = runs_sql(
        &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1 AND repo_id = $2"),
        3,
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(run.0)
        .bind(repo.0)
        .bind(failing())
        .fetch_optional(pool)
        .await
        .map_err(map)?
        .as_ref()
        .map(stored_run)
        .transpose()
}

pub(crate) async fn run_final_outcomes(
    pool: &PgPool,
    repo: RepoId,
    run: StoredRunId,
) -> Result<Vec<(TestCaseId, Outcome)>, StoreError> {
    let rows: Vec<(i64, i16)> = sqlx::query_as(
        "SELECT DISTINCT ON (e.test_case_id) e.test_case_id, e.outcome
         FROM executions e JOIN runs r ON r.id = e.run_id
         WHERE r.id = $1 AND r.repo_id = $2
         ORDER BY e.test_case_id, e.attempt DESC",
    )
    .bind(run.0)
    .bind(repo.0)
    .fetch_all(pool)
    .await
    .map_err(map)?;
    rows.into_iter()
        .map(|(id, code)| {
            outcome_from_code(code)
                .map(|o| (TestCaseId(id), o))
                .ok_or_else(|| StoreError::Database(format!("unknown outcome code {code}")))
        })
        .collect()
}

pub(crate) async fn runs_for_commit(
    pool: &PgPool,
    repo: RepoId,
    commit: &str,
) -> Result<Vec<StoredRun>, StoreError> {
    let sql = runs_sql(
        &format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE repo_id = $1 AND commit_sha = $2
             ORDER BY started_at, id"
        ),
        3,
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(repo.0)
        .bind(commit)
        .bind(failing())
        .fetch_all(pool)
        .await
        .map_err(map)?;
    let mut runs = rows.iter().map(stored_run).collect::<Result<Vec<_>, _>>()?;
    // (The shared run query orders newest first.)
    runs.sort_by_key(|r| (r.started_at, r.id.0));
    Ok(runs)
}

pub(crate) async fn run_failures(
    pool: &PgPool,
    repo: RepoId,
    run: StoredRunId,
) -> Result<Vec<RunFailure>, StoreError> {
    let rows = sqlx::query(RUN_FAILURES)
        .bind(run.0)
        .bind(repo.0)
        .bind(failing())
        .fetch_all(pool)
        .await
        .map_err(map)?;
    rows.iter()
        .map(|row| {
            let fields = execution_fields(row)?;
            Ok(RunFailure {
                test: TestCaseId(row.try_get("test_case_id").map_err(map)?),
                key: key_from_row(row).map_err(map)?,
                attempt: fields.attempt,
                outcome: fields.outcome,
                duration_ms: fields.duration_ms,
                signature: fields.signature,
                message: fields.message,
            })
        })
        .collect()
}

pub(crate) async fn recent_executions(
    pool: &PgPool,
    repo: RepoId,
    test: TestCaseId,
    limit: u32,
) -> Result<Vec<TestExecution>, StoreError> {
    let rows = sqlx::query(RECENT_EXECUTIONS)
        .bind(test.0)
        .bind(repo.0)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
        .map_err(map)?;
    rows.iter()
        .map(|row| {
            let fields = execution_fields(row)?;
            Ok(TestExecution {
                run: StoredRunId(row.try_get("run_id").map_err(map)?),
                workflow_run_id: row.try_get("workflow_run_id").map_err(map)?,
                run_attempt: u32_column(row, "run_attempt")?,
                job: row.try_get("job").map_err(map)?,
                commit: row.try_get("commit_sha").map_err(map)?,
                branch: row.try_get("branch").map_err(map)?,
                started_at: row.try_get("started_at").map_err(map)?,
                attempt: fields.attempt,
                outcome: fields.outcome,
                duration_ms: fields.duration_ms,
                signature: fields.signature,
                message: fields.message,
            })
        })
        .collect()
}

pub(crate) async fn failure_signatures(
    pool: &PgPool,
    repo: RepoId,
    test: TestCaseId,
) -> Result<Vec<SignatureCount>, StoreError> {
    let rows = sqlx::query(SIGNATURES)
        .bind(test.0)
        .bind(repo.0)
        .fetch_all(pool)
        .await
        .map_err(map)?;
    rows.iter()
        .map(|row| {
            let signature: i64 = row.try_get("signature").map_err(map)?;
            Ok(SignatureCount {
                // Bit for bit: stored as a signed BIGINT.
                signature: signature as u64,
                count: count(row, "times")?,
                last_seen_at: row.try_get("last_seen_at").map_err(map)?,
                message: row.try_get("message").map_err(map)?,
            })
        })
        .collect()
}
