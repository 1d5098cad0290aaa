//! Reading a repository's recent history back as the scoring engine wants it: the last
//! `max_runs` runs (oldest first) and, grouped by test, every execution in them — of every
//! test (`load_history`), or only of the tests of one run (`load_run_history`, what scoring a
//! new run needs). A small run's tests are read pair by pair (window run, test) through the
//! primary key, leaving the rest of the repository alone; a large run's, like
//! `load_history`, by reading the window and keeping them, which is cheaper when they are
//! most of it ([`RUN_PAIRS_MAX`]).
//!
//! All queries run in one read transaction, so they see one snapshot even while an ingest
//! commits beside them.
//!
//! A rescore reads millions of executions, and sqlx hands every row across a channel from its
//! SQLite worker thread (a few µs a row), so rows are packed: one row per run holding all its
//! executions as text, and one row per chunk of tests holding their length-prefixed columns.
//! SQLite builds those strings and Rust splits them far faster than it moves rows.

use flakeguard_core::{Execution, Run, TestHistory, TestKey};
use flakeguard_store::{
    RepoId, Result, StoreError, StoredHistory, StoredRunId, TestCaseId, outcome_from_code,
};
use sqlx::{AssertSqlSafe, SqliteConnection};

use crate::SqliteStore;
use crate::error::{corrupt, map};
use crate::timestamp::from_micros;

/// Test rows fetched per query (one bound id each).
const TEST_IDS_PER_QUERY: usize = 1_000;

/// The most (window run, test) pairs `load_run_history` looks up one by one. A look-up costs
/// a few µs, an execution read with the whole window about 1 µs: in a 100k-test repository
/// with 11 runs in the window, looking up a 200-test run's pairs took 9 ms where reading the
/// window took 1.0 s, but looking up a full run's took 2.2 s (see `docs/performance.md`). Up
/// to this many pairs (well under a second) the run's tests are looked up; beyond, the run
/// is most of the window, which is read whole and the run's tests kept.
const RUN_PAIRS_MAX: u64 = 100_000;

/// Which tests' executions [`load`] reads.
#[derive(Debug, Clone, Copy)]
enum Tests {
    /// Every test's.
    All,
    /// Those of one run (its id and how many distinct tests it has).
    OfRun(StoredRunId, u64),
}

type RunRow = (
    i64,
    String,
    i64,
    Option<String>,
    Option<String>,
    String,
    i64,
);

fn unsigned<T: TryFrom<i64>>(value: i64, what: &str) -> Result<T> {
    T::try_from(value).map_err(|_| corrupt(format_args!("{what} {value}")))
}

/// One execution as packed by [`EXECUTIONS_SQL`]: `test,attempt,outcome,duration,signature`
/// (the last two empty when NULL).
fn unpack_execution(run: u32, packed: &str) -> Result<(i64, Execution)> {
    let bad = || corrupt(format_args!("packed execution {packed:?}"));
    let mut fields = packed.split(',');
    let mut next = || fields.next().ok_or_else(bad);
    let int = |s: &str| s.parse::<i64>().map_err(|_| bad());
    let opt = |s: &str| (!s.is_empty()).then(|| int(s)).transpose();
    let test_id = int(next()?)?;
    let attempt = unsigned(int(next()?)?, "attempt")?;
    let code = int(next()?)?;
    let outcome = i16::try_from(code)
        .ok()
        .and_then(outcome_from_code)
        .ok_or_else(|| corrupt(format_args!("outcome {code}")))?;
    let duration_ms = opt(next()?)?.map(|d| unsigned(d, "duration")).transpose()?;
    // Stored bitwise.
    let signature = opt(next()?)?.map(|s| s as u64);
    Ok((
        test_id,
        Execution {
            run,
            attempt,
            outcome,
            duration_ms,
            signature,
        },
    ))
}

/// Every execution of the window's runs, one row per run: `run_id`, then the executions as
/// `test,attempt,outcome,duration,signature` joined by `;` (?1 repo, ?2 limit).
const EXECUTIONS_SQL: &str = "
    WITH w (id) AS (SELECT id FROM runs WHERE repo_id = ?1 ORDER BY started_at DESC, id DESC LIMIT ?2)
    SELECT run_id, group_concat(test_case_id || ',' || attempt || ',' || outcome || ','
                                || coalesce(duration_ms, '') || ',' || coalesce(failure_signature, ''),
                                ';')
    FROM executions WHERE run_id IN (SELECT id FROM w) GROUP BY run_id";

/// [`EXECUTIONS_SQL`] for the tests of run ?3 only, for a small run: both `IN` lists are
/// small (the window's runs, the run's tests), and SQLite seeks each (run, test) pair in the
/// primary key instead of reading the window's every execution.
const RUN_EXECUTIONS_SQL: &str = "
    WITH w (id) AS (SELECT id FROM runs WHERE repo_id = ?1 ORDER BY started_at DESC, id DESC LIMIT ?2),
         t (id) AS (SELECT DISTINCT test_case_id FROM executions WHERE run_id = ?3)
    SELECT run_id, group_concat(test_case_id || ',' || attempt || ',' || outcome || ','
                                || coalesce(duration_ms, '') || ',' || coalesce(failure_signature, ''),
                                ';')
    FROM executions
    WHERE run_id IN (SELECT id FROM w) AND test_case_id IN (SELECT id FROM t)
    GROUP BY run_id";

/// Test rows packed into one string: per test `id:` then scope, classname, name, variant and
/// file, each as `byte length:bytes` (length -1 for NULL). Length prefixes make any content
/// safe, separators included. Followed by `(?,?,…)`: the repository, then the ids. (`+repo_id`
/// keeps SQLite from scanning the repository's tests through the `(repo_id, key_hash)` index
/// instead of looking the ids up: 10× slower.)
const TESTS_HEAD: &str = "
    SELECT group_concat(
        id || ':'
        || octet_length(scope) || ':' || scope
        || octet_length(classname) || ':' || classname
        || octet_length(name) || ':' || name
        || coalesce(octet_length(variant), -1) || ':' || coalesce(variant, '')
        || coalesce(octet_length(file), -1) || ':' || coalesce(file, ''),
        '')
    FROM test_cases WHERE +repo_id = ? AND id IN ";

fn tests_sql(ids: usize) -> String {
    let mut sql = String::with_capacity(TESTS_HEAD.len() + 2 * ids + 2);
    sql.push_str(TESTS_HEAD);
    sql.push('(');
    for i in 0..ids {
        if i > 0 {
            sql.push(',');
        }
        sql.push('?');
    }
    sql.push(')');
    sql
}

/// Reads [`TESTS_HEAD`]'s packing.
struct TestReader<'a> {
    packed: &'a str,
    at: usize,
}

impl<'a> TestReader<'a> {
    fn bad(&self) -> StoreError {
        corrupt(format_args!("packed test case at byte {}", self.at))
    }

    /// An integer up to the next `:`.
    fn int(&mut self) -> Result<i64> {
        let rest = &self.packed[self.at..];
        let end = rest.find(':').ok_or_else(|| self.bad())?;
        let value = rest[..end].parse().map_err(|_| self.bad())?;
        self.at += end + 1;
        Ok(value)
    }

    fn text(&mut self) -> Result<Option<&'a str>> {
        let len = self.int()?;
        if len < 0 {
            return Ok(None);
        }
        let end = self.at + usize::try_from(len).map_err(|_| self.bad())?;
        let text = self.packed.get(self.at..end).ok_or_else(|| self.bad())?;
        self.at = end;
        Ok(Some(text))
    }

    fn required(&mut self) -> Result<String> {
        self.text()?.map(str::to_owned).ok_or_else(|| self.bad())
    }

    fn next_test(&mut self) -> Result<Option<(i64, TestHistory)>> {
        if self.at >= self.packed.len() {
            return Ok(None);
        }
        let id = self.int()?;
        let key = TestKey {
            scope: self.required()?,
            classname: self.required()?,
            name: self.required()?,
            variant: self.text()?.map(str::to_owned),
        };
        let file = self.text()?.map(str::to_owned);
        Ok(Some((
            id,
            TestHistory {
                key,
                file,
                executions: Vec::new(),
            },
        )))
    }
}

impl SqliteStore {
    pub(crate) async fn load_history_impl(
        &self,
        repo: RepoId,
        max_runs: u32,
    ) -> Result<StoredHistory> {
        let mut tx = self.read().await?;
        let history = load(&mut tx, repo, max_runs, Tests::All).await?;
        tx.rollback().await.map_err(map("end the read"))?;
        Ok(history)
    }

    pub(crate) async fn load_run_history_impl(
        &self,
        repo: RepoId,
        run: StoredRunId,
        max_runs: u32,
    ) -> Result<StoredHistory> {
        let mut tx = self.read().await?;
        // The run's test count, and whether it is the repository's at all.
        let tests: Option<i64> = sqlx::query_scalar(
            "SELECT (SELECT count(DISTINCT test_case_id) FROM executions WHERE run_id = runs.id)
             FROM runs WHERE id = ? AND repo_id = ?",
        )
        .bind(run.0)
        .bind(repo.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map("read the run"))?;
        let Some(tests) = tests else {
            return Err(StoreError::NotFound(format!("run {run}")));
        };
        let tests = unsigned(tests, "test count")?;
        let history = load(&mut tx, repo, max_runs, Tests::OfRun(run, tests)).await?;
        tx.rollback().await.map_err(map("end the read"))?;
        Ok(history)
    }
}

/// The window's runs and the executions in them of `tests`, read in the caller's transaction
/// (one snapshot).
async fn load(
    tx: &mut SqliteConnection,
    repo: RepoId,
    max_runs: u32,
    tests: Tests,
) -> Result<StoredHistory> {
    let limit = i64::from(max_runs);
    let mut run_rows: Vec<RunRow> = sqlx::query_as(
        "SELECT id, workflow_run_id, run_attempt, commit_sha, branch, job, started_at
         FROM runs WHERE repo_id = ?1 ORDER BY started_at DESC, id DESC LIMIT ?2",
    )
    .bind(repo.0)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await
    .map_err(map("read the runs"))?;
    run_rows.reverse();
    let mut history = StoredHistory::default();
    for (id, run_id, attempt, commit, branch, job, started_at) in run_rows {
        history.run_ids.push(StoredRunId(id));
        history.runs.push(Run {
            run_id,
            attempt: unsigned(attempt, "run attempt")?,
            commit,
            branch,
            job: (!job.is_empty()).then_some(job),
            started_at: from_micros(started_at)?,
        });
    }
    if history.runs.is_empty() {
        return Ok(history);
    }

    // A small run's tests pair by pair; otherwise the whole window, keeping the run's tests.
    let (executions_query, keep_run) = match tests {
        Tests::OfRun(run, count)
            if count.saturating_mul(history.runs.len() as u64) <= RUN_PAIRS_MAX =>
        {
            let query = sqlx::query_as(RUN_EXECUTIONS_SQL)
                .bind(repo.0)
                .bind(limit)
                .bind(run.0);
            (query, None)
        }
        Tests::OfRun(run, _) => (
            sqlx::query_as(EXECUTIONS_SQL).bind(repo.0).bind(limit),
            Some(run),
        ),
        Tests::All => (
            sqlx::query_as(EXECUTIONS_SQL).bind(repo.0).bind(limit),
            None,
        ),
    };
    let packed_runs: Vec<(i64, String)> = executions_query
        .fetch_all(&mut *tx)
        .await
        .map_err(map("read the executions"))?;
    let mut executions: Vec<(i64, Execution)> =
        Vec::with_capacity(packed_runs.iter().map(|(_, p)| p.len() / 16).sum());
    for (run_id, packed) in &packed_runs {
        let Some(run) = history.run_ids.iter().position(|r| r.0 == *run_id) else {
            continue;
        };
        let run = unsigned(run as i64, "run index")?;
        for one in packed.split(';') {
            executions.push(unpack_execution(run, one)?);
        }
    }
    drop(packed_runs);
    if let Some(run) = keep_run {
        let mut keep: Vec<i64> = Vec::new();
        let packed: Option<String> = sqlx::query_scalar(
            "SELECT group_concat(test_case_id)
             FROM (SELECT DISTINCT test_case_id FROM executions WHERE run_id = ?)",
        )
        .bind(run.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(map("read the run's tests"))?;
        for id in packed.as_deref().unwrap_or_default().split(',') {
            if !id.is_empty() {
                keep.push(
                    id.parse()
                        .map_err(|_| corrupt(format_args!("test id {id:?}")))?,
                );
            }
        }
        keep.sort_unstable();
        executions.retain(|(test, _)| keep.binary_search(test).is_ok());
    }
    executions.sort_unstable_by_key(|(test, e)| (*test, e.run, e.attempt));

    // The tests, in id order, each with its executions.
    let mut test_ids: Vec<i64> = executions.iter().map(|(test, _)| *test).collect();
    test_ids.dedup();
    let mut found: Vec<(i64, TestHistory)> = Vec::with_capacity(test_ids.len());
    for chunk in test_ids.chunks(TEST_IDS_PER_QUERY) {
        let mut query =
            sqlx::query_scalar::<_, Option<String>>(AssertSqlSafe(tests_sql(chunk.len())))
                .bind(repo.0);
        for id in chunk {
            query = query.bind(*id);
        }
        let packed = query
            .fetch_one(&mut *tx)
            .await
            .map_err(map("read the test cases"))?
            .unwrap_or_default();
        let mut reader = TestReader {
            packed: &packed,
            at: 0,
        };
        while let Some(test) = reader.next_test()? {
            found.push(test);
        }
    }
    found.sort_unstable_by_key(|(id, _)| *id);

    // Both lists are sorted by test id: merge. Executions of tests outside the repository
    // (which ingest never writes) are dropped with them.
    let mut executions = executions.into_iter().peekable();
    for (id, mut test) in found {
        while executions.next_if(|(test, _)| *test < id).is_some() {}
        while let Some((_, execution)) = executions.next_if(|(test, _)| *test == id) {
            test.executions.push(execution);
        }
        history.test_ids.push(TestCaseId(id));
        history.tests.push(test);
    }
    Ok(history)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_tests_are_read_by_length() {
        let packed = "7:3:a:b0:4:na:e-1:2:;,12:0:1:c3:x\u{e9}-1:-1:";
        let mut reader = TestReader { packed, at: 0 };
        let (id, test) = reader.next_test().unwrap().unwrap();
        assert_eq!(id, 7);
        assert_eq!(
            test.key,
            TestKey {
                scope: "a:b".to_owned(),
                classname: String::new(),
                name: "na:e".to_owned(),
                variant: None,
            }
        );
        assert_eq!(test.file.as_deref(), Some(";,"));
        let (id, test) = reader.next_test().unwrap().unwrap();
        assert_eq!((id, test.key.scope.as_str()), (12, ""));
        assert_eq!(
            (test.key.classname.as_str(), test.key.name.as_str()),
            ("c", "x\u{e9}")
        );
        assert_eq!(test.file, None);
        assert!(reader.next_test().unwrap().is_none());

        for broken in ["7:3:ab", "x:", "7:2:\u{e9}", "7:1:a0:0:-1:"] {
            let mut reader = TestReader {
                packed: broken,
                at: 0,
            };
            assert!(reader.next_test().is_err(), "{broken}");
        }
    }

    #[test]
    fn packed_executions_are_read() {
        let (test, e) = unpack_execution(2, "5,1,1,12,-3").unwrap();
        assert_eq!(test, 5);
        assert_eq!(
            (e.run, e.attempt, e.outcome, e.duration_ms, e.signature),
            (
                2,
                1,
                flakeguard_core::Outcome::Failed,
                Some(12),
                Some(u64::MAX - 2)
            )
        );
        let (_, e) = unpack_execution(0, "5,2,0,,").unwrap();
        assert_eq!((e.duration_ms, e.signature), (None, None));
        assert!(unpack_execution(0, "5,2,9,,").is_err());
        assert!(unpack_execution(0, "5,2").is_err());
    }
}
