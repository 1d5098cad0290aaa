//! Reading runs and executions back for people: a repository's runs with their counts, one
//! run's failures, and one test's recent executions and failure signatures.
//!
//! Executions carry no repository: every query reaches them through a run or a test of the
//! repository asked about, so another tenant's rows cannot appear.

use flakeguard_core::{Outcome, TestKey};
use flakeguard_store::{
    Page, PageRequest, RepoId, Result, RunFailure, SignatureCount, Source, StoredRun, StoredRunId,
    TestCaseId, TestExecution, outcome_code, outcome_from_code,
};
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, Row};

use crate::SqliteStore;
use crate::error::{corrupt, map};
use crate::timestamp::{from_micros, from_micros_opt};

const RUN_COLUMNS: &str = "id, repo_id, commit_sha, branch, pr_number, workflow_run_id, \
    run_attempt, job, source, started_at, received_at, report_digest, scored_at";

/// The runs `page` selects (its parameters come first), with their counts; then the two
/// failing outcome codes.
fn runs_sql(page: &str) -> String {
    format!(
        "WITH page AS ({page})
         SELECT page.*, coalesce(c.testcases, 0) AS testcases,
                coalesce(c.executions, 0) AS executions, coalesce(c.failed, 0) AS failed
         FROM page LEFT JOIN (
             SELECT run_id, count(DISTINCT test_case_id) AS testcases, count(*) AS executions,
                    count(DISTINCT CASE WHEN outcome IN (?, ?) THEN test_case_id END) AS failed
             FROM executions WHERE run_id IN (SELECT id FROM page) GROUP BY run_id
         ) AS c ON c.run_id = page.id
         ORDER BY page.started_at DESC, page.id DESC"
    )
}

/// The run's failed and errored executions (run, repository, then the two outcome codes).
const RUN_FAILURES_SQL: &str = "
    SELECT e.test_case_id, t.scope, t.classname, t.name, t.variant, e.attempt, e.outcome,
           e.duration_ms, e.failure_signature, e.message
    FROM runs r
    JOIN executions e ON e.run_id = r.id
    JOIN test_cases t ON t.id = e.test_case_id
    WHERE r.id = ? AND r.repo_id = ? AND t.repo_id = r.repo_id AND e.outcome IN (?, ?)
    ORDER BY t.classname, t.name, t.id, e.attempt";

/// Each test's last attempt in a run (run, repository).
const FINAL_OUTCOMES_SQL: &str = "
    SELECT test_case_id, outcome FROM (
        SELECT e.test_case_id, e.outcome,
               row_number() OVER (PARTITION BY e.test_case_id ORDER BY e.attempt DESC) AS last
        FROM executions e JOIN runs r ON r.id = e.run_id
        WHERE r.id = ? AND r.repo_id = ?
    ) WHERE last = 1
    ORDER BY test_case_id";

/// A test's executions with their runs, newest first (test, repository, limit).
const RECENT_EXECUTIONS_SQL: &str = "
    SELECT r.id AS run_id, r.workflow_run_id, r.run_attempt, r.job, r.commit_sha, r.branch,
           r.started_at, e.attempt, e.outcome, e.duration_ms, e.failure_signature, e.message
    FROM test_cases t
    JOIN executions e ON e.test_case_id = t.id
    JOIN runs r ON r.id = e.run_id
    WHERE t.id = ? AND t.repo_id = ? AND r.repo_id = t.repo_id
    ORDER BY r.started_at DESC, r.id DESC, e.attempt DESC
    LIMIT ?";

/// A test's failure signatures, most frequent first (test, repository). The message is the
/// latest stored one with the signature.
const SIGNATURES_SQL: &str = "
    WITH f AS (
        SELECT e.failure_signature AS signature, e.message, r.started_at, r.id AS run_id,
               e.attempt
        FROM test_cases t
        JOIN executions e ON e.test_case_id = t.id
        JOIN runs r ON r.id = e.run_id
        WHERE t.id = ? AND t.repo_id = ? AND r.repo_id = t.repo_id
          AND e.failure_signature IS NOT NULL
    )
    SELECT signature, count(*) AS times, max(started_at) AS last_seen_at,
           (SELECT l.message FROM f AS l
            WHERE l.signature = f.signature AND l.message IS NOT NULL
            ORDER BY l.started_at DESC, l.run_id DESC, l.attempt DESC LIMIT 1) AS message
    FROM f GROUP BY signature
    ORDER BY times DESC, last_seen_at DESC, signature";

fn unsigned<T: TryFrom<i64>>(value: i64, what: &str) -> Result<T> {
    T::try_from(value).map_err(|_| corrupt(format_args!("{what} {value}")))
}

fn outcome(code: i64) -> Result<Outcome> {
    i16::try_from(code)
        .ok()
        .and_then(outcome_from_code)
        .ok_or_else(|| corrupt(format_args!("outcome {code}")))
}

/// The outcomes that count as failing, as stored.
fn failing() -> [i16; 2] {
    [outcome_code(Outcome::Failed), outcome_code(Outcome::Error)]
}

fn stored_run(row: &SqliteRow) -> Result<StoredRun> {
    let read = map("read a run");
    let source: String = row.try_get("source").map_err(&read)?;
    let count =
        |column: &str| -> Result<u64> { unsigned(row.try_get(column).map_err(&read)?, column) };
    Ok(StoredRun {
        id: StoredRunId(row.try_get("id").map_err(&read)?),
        repo: RepoId(row.try_get("repo_id").map_err(&read)?),
        commit: row.try_get("commit_sha").map_err(&read)?,
        branch: row.try_get("branch").map_err(&read)?,
        pr_number: row.try_get("pr_number").map_err(&read)?,
        workflow_run_id: row.try_get("workflow_run_id").map_err(&read)?,
        attempt: unsigned(row.try_get("run_attempt").map_err(&read)?, "run attempt")?,
        job: row.try_get("job").map_err(&read)?,
        source: Source::parse(&source).ok_or_else(|| corrupt(format_args!("source {source}")))?,
        started_at: from_micros(row.try_get("started_at").map_err(&read)?)?,
        received_at: from_micros(row.try_get("received_at").map_err(&read)?)?,
        report_digest: row.try_get("report_digest").map_err(&read)?,
        scored_at: from_micros_opt(row.try_get("scored_at").map_err(&read)?)?,
        testcases: count("testcases")?,
        executions: count("executions")?,
        failed: count("failed")?,
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

fn execution_fields(row: &SqliteRow) -> Result<ExecutionFields> {
    let read = map("read an execution");
    let duration: Option<i64> = row.try_get("duration_ms").map_err(&read)?;
    let signature: Option<i64> = row.try_get("failure_signature").map_err(&read)?;
    Ok(ExecutionFields {
        attempt: unsigned(row.try_get("attempt").map_err(&read)?, "attempt")?,
        outcome: outcome(row.try_get("outcome").map_err(&read)?)?,
        duration_ms: duration.map(|d| unsigned(d, "duration")).transpose()?,
        // Stored bitwise.
        signature: signature.map(|s| s as u64),
        message: row.try_get("message").map_err(&read)?,
    })
}

impl SqliteStore {
    pub(crate) async fn list_runs_impl(
        &self,
        repo: RepoId,
        page: PageRequest,
    ) -> Result<Page<StoredRun>> {
        let [failed, errored] = failing();
        let sql = runs_sql(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE repo_id = ?
             ORDER BY started_at DESC, id DESC LIMIT ? OFFSET ?"
        ));
        // One snapshot: the total matches the page.
        let mut tx = self.read().await?;
        let total: i64 = sqlx::query_scalar("SELECT count(*) FROM runs WHERE repo_id = ?")
            .bind(repo.0)
            .fetch_one(&mut *tx)
            .await
            .map_err(map("count the runs"))?;
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(repo.0)
            .bind(i64::from(page.limit))
            .bind(i64::try_from(page.offset).unwrap_or(i64::MAX))
            .bind(failed)
            .bind(errored)
            .fetch_all(&mut *tx)
            .await
            .map_err(map("list the runs"))?;
        tx.rollback().await.map_err(map("end the read"))?;
        Ok(Page {
            items: rows.iter().map(stored_run).collect::<Result<_>>()?,
            total: unsigned(total, "count")?,
        })
    }

    pub(crate) async fn find_run_impl(
        &self,
        repo: RepoId,
        run: StoredRunId,
    ) -> Result<Option<StoredRun>> {
        let [failed, errored] = failing();
        let sql = runs_sql(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE id = ? AND repo_id = ?"
        ));
        sqlx::query(AssertSqlSafe(sql))
            .bind(run.0)
            .bind(repo.0)
            .bind(failed)
            .bind(errored)
            .fetch_optional(&self.reader)
            .await
            .map_err(map("read the run"))?
            .as_ref()
            .map(stored_run)
            .transpose()
    }

    pub(crate) async fn run_final_outcomes_impl(
        &self,
        repo: RepoId,
        run: StoredRunId,
    ) -> Result<Vec<(TestCaseId, Outcome)>> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(FINAL_OUTCOMES_SQL)
            .bind(run.0)
            .bind(repo.0)
            .fetch_all(&self.reader)
            .await
            .map_err(map("read the run's final outcomes"))?;
        rows.into_iter()
            .map(|(id, code)| Ok((TestCaseId(id), outcome(code)?)))
            .collect()
    }

    pub(crate) async fn runs_for_commit_impl(
        &self,
        repo: RepoId,
        commit: &str,
    ) -> Result<Vec<StoredRun>> {
        let [failed, errored] = failing();
        let sql = runs_sql(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE repo_id = ? AND commit_sha = ?
             ORDER BY started_at, id"
        ));
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(repo.0)
            .bind(commit)
            .bind(failed)
            .bind(errored)
            .fetch_all(&self.reader)
            .await
            .map_err(map("list the commit's runs"))?;
        let mut runs = rows.iter().map(stored_run).collect::<Result<Vec<_>, _>>()?;
        // (The shared run query orders newest first.)
        runs.sort_by_key(|r| (r.started_at, r.id.0));
        Ok(runs)
    }

    pub(crate) async fn run_failures_impl(
        &self,
        repo: RepoId,
        run: StoredRunId,
    ) -> Result<Vec<RunFailure>> {
        let [failed, errored] = failing();
        let rows = sqlx::query(RUN_FAILURES_SQL)
            .bind(run.0)
            .bind(repo.0)
            .bind(failed)
            .bind(errored)
            .fetch_all(&self.reader)
            .await
            .map_err(map("read the run's failures"))?;
        rows.iter()
            .map(|row| {
                let read = map("read a failure");
                let fields = execution_fields(row)?;
                Ok(RunFailure {
                    test: TestCaseId(row.try_get("test_case_id").map_err(&read)?),
                    key: TestKey {
                        scope: row.try_get("scope").map_err(&read)?,
                        classname: row.try_get("classname").map_err(&read)?,
                        name: row.try_get("name").map_err(&read)?,
                        variant: row.try_get("variant").map_err(&read)?,
                    },
                    attempt: fields.attempt,
                    outcome: fields.outcome,
                    duration_ms: fields.duration_ms,
                    signature: fields.signature,
                    message: fields.message,
                })
            })
            .collect()
    }

    pub(crate) async fn recent_executions_impl(
        &self,
        repo: RepoId,
        test: TestCaseId,
        limit: u32,
    ) -> Result<Vec<TestExecution>> {
        let rows = sqlx::query(RECENT_EXECUTIONS_SQL)
            .bind(test.0)
            .bind(repo.0)
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await
            .map_err(map("read the test's executions"))?;
        rows.iter()
            .map(|row| {
                let read = map("read an execution");
                let fields = execution_fields(row)?;
                Ok(TestExecution {
                    run: StoredRunId(row.try_get("run_id").map_err(&read)?),
                    workflow_run_id: row.try_get("workflow_run_id").map_err(&read)?,
                    run_attempt: unsigned(
                        row.try_get("run_attempt").map_err(&read)?,
                        "run attempt",
                    )?,
                    job: row.try_get("job").map_err(&read)?,
                    commit: row.try_get("commit_sha").map_err(&read)?,
                    branch: row.try_get("branch").map_err(&read)?,
                    started_at: from_micros(row.try_get("started_at").map_err(&read)?)?,
                    attempt: fields.attempt,
                    outcome: fields.outcome,
                    duration_ms: fields.duration_ms,
                    signature: fields.signature,
                    message: fields.message,
                })
            })
            .collect()
    }

    pub(crate) async fn failure_signatures_impl(
        &self,
        repo: RepoId,
        test: TestCaseId,
    ) -> Result<Vec<SignatureCount>> {
        let rows = sqlx::query(SIGNATURES_SQL)
            .bind(test.0)
            .bind(repo.0)
            .fetch_all(&self.reader)
            .await
            .map_err(map("read the test's failure signatures"))?;
        rows.iter()
            .map(|row| {
                let read = map("read a failure signature");
                let signature: i64 = row.try_get("signature").map_err(&read)?;
                Ok(SignatureCount {
                    // Stored bitwise.
                    signature: signature as u64,
                    count: unsigned(row.try_get("times").map_err(&read)?, "count")?,
                    last_seen_at: from_micros(row.try_get("last_seen_at").map_err(&read)?)?,
                    message: row.try_get("message").map_err(&read)?,
                })
            })
            .collect()
    }
}
