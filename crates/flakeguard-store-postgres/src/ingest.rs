//! Recording a run in one transaction: the run row (idempotent on its report's key), the
//! run's test cases (known ones looked up and raised by key arrays, new ones written under ids
//! drawn in blocks), and the executions.
//!
//! New test cases and executions are written one of two ways, chosen per table by the size of
//! the batch: a large one is streamed with binary `COPY`, the cheapest way in per row; a small
//! one (at most the store's bulk threshold, [`crate::DEFAULT_BULK_THRESHOLD`] rows, and at
//! most [`INSERT_MAX_BYTES`]) goes as `INSERT … SELECT … FROM UNNEST(arrays)` statements of
//! at most [`STATEMENT_BYTES`] each, and so do the key lookups of a small run.
//!
//! Why: sqlx 0.9 does not set `TCP_NODELAY` (and offers no way to), so over TCP Nagle's
//! algorithm holds back a small write while an earlier small one is unacknowledged, and the
//! server acknowledges a lone segment only when its delayed-ACK timer fires, 40 ms on Linux.
//! Two ways in sqlx end in such a second write before it reads the answer: `COPY`, which
//! writes the data and then `CopyDone` separately; and, over TLS, any message of more than
//! one TLS record (16 KiB), since each record is its own write. For a run of a few hundred
//! tests those waits were nearly all of the ingest's time: 48 ms with the tests known, 92 ms
//! with them new, against 4 ms over a Unix socket (see `docs/performance.md`). One statement
//! whose Bind, Execute and Sync fit in one record leaves in one write and never waits. A
//! large `COPY` hides its wait behind the server's work on the rows it already has, and
//! costs less per row than the arrays, so large batches keep it. Both ways store the same
//! rows (text through `copy::storable`, timestamps truncated to microseconds alike, the same
//! order); a test checks it.
//!
//! Race safety: two ingests of the same report insert the run with `ON CONFLICT DO NOTHING`;
//! the second waits on the first's uncommitted row and then either sees it (and returns
//! `created: false`) or, if the first rolled back, inserts it itself. Known test cases are
//! locked in key order, so concurrent ingests of overlapping test sets rarely wait on each
//! other in opposite orders (a small run's lookups, split in several statements, still go in
//! key order). When two ingests insert the same new test, the loser's `COPY` or `INSERT`
//! fails on the unique key and it starts over (and then finds the test); a deadlock that
//! PostgreSQL breaks is retried the same way. Nothing of a failed attempt remains: it is one
//! transaction.
//!
//! Why not one `INSERT … ON CONFLICT DO UPDATE … RETURNING`: speculative insertion, an
//! update of every row and a result row per test cost about twice as much. Why no foreign
//! keys on `executions` and `test_cases.repo_id`: see `migrations/0001_initial.sql`. Both
//! were measured; see `docs/performance.md`, "Storage ingestion".

use flakeguard_store::{
    Ingested, NewExecution, NewRun, NewTestCase, RepoId, StoreError, StoredRunId, TestCaseId,
    outcome_code,
};
use sqlx::postgres::PgCopyIn;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;

use crate::copy::{BinaryCopy, storable};
use crate::error::map;

/// Data sent per `CopyData` message: large enough to amortize the trips through the socket,
/// small enough to keep the client's buffer modest.
const COPY_CHUNK: usize = 1 << 20;

/// How often an ingest that lost a race (or a deadlock) is tried from scratch in all.
const MAX_ATTEMPTS: usize = 4;

const INSERT_RUN: &str = "INSERT INTO runs (repo_id, commit_sha, branch, pr_number,
        workflow_run_id, run_attempt, job, source, started_at, received_at, report_digest)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
    ON CONFLICT (repo_id, workflow_run_id, run_attempt, job, report_digest) DO NOTHING
    RETURNING id";

const FIND_RUN: &str = "SELECT id FROM runs
    WHERE repo_id = $1 AND workflow_run_id = $2 AND run_attempt = $3 AND job = $4
      AND report_digest = $5";

const REPO_HAS_TESTS: &str = "SELECT EXISTS (SELECT 1 FROM test_cases WHERE repo_id = $1)";

/// Raises `last_seen_at` of the run's known tests in one pass (an index scan visits the
/// keys in sorted order, so concurrent ingests lock rows alike).
///
/// Like every statement here returning something per test, it answers with one row of
/// arrays (id, key_hash, has a file), not a row per test.
const RAISE_LAST_SEEN: &str = "WITH t AS (
        UPDATE test_cases SET last_seen_at = $3
        WHERE repo_id = $1 AND key_hash = ANY($2) AND last_seen_at < $3
        RETURNING id, key_hash, file IS NOT NULL AS has_file)
    SELECT COALESCE(array_agg(id), '{}'), COALESCE(array_agg(key_hash), '{}'),
        COALESCE(array_agg(has_file), '{}')
    FROM t";

/// Known tests that were not raised (already seen at a later time) or are new. Locked like
/// a foreign key check would, so they cannot be deleted before the executions commit.
const SELECT_KNOWN: &str = "WITH t AS (
        SELECT id, key_hash, file IS NOT NULL AS has_file
        FROM test_cases WHERE repo_id = $1 AND key_hash = ANY($2)
        ORDER BY key_hash FOR KEY SHARE)
    SELECT COALESCE(array_agg(id), '{}'), COALESCE(array_agg(key_hash), '{}'),
        COALESCE(array_agg(has_file), '{}')
    FROM t";

const FILL_FILE: &str = "UPDATE test_cases AS t SET file = s.file
    FROM UNNEST($1::bigint[], $2::text[]) AS s (id, file)
    WHERE t.id = s.id AND t.file IS NULL";

/// Draws blocks of ids for the new test cases in one round trip: the sequence increments by
/// [`ID_BLOCK`], and each value starts a block of that many ids reserved for the caller.
const RESERVE_TEST_IDS: &str =
    "SELECT array_agg(nextval('test_cases_id_seq')) FROM generate_series(1, $1)";

/// The increment of `test_cases_id_seq` (see the migration).
const ID_BLOCK: usize = 1024;

/// Plain COPY, the cheapest way in: the keys were just looked up, so only a concurrent
/// ingest can collide (on [`TEST_KEY_CONSTRAINT`]), and then the ingest starts over.
const COPY_TESTS: &str = "COPY test_cases (id, repo_id, key_hash, scope, classname, name,
    variant, file, first_seen_at, last_seen_at) FROM STDIN (FORMAT binary)";

/// The unique constraint on test_cases (repo_id, key_hash), as PostgreSQL names it.
const TEST_KEY_CONSTRAINT: &str = "test_cases_repo_id_key_hash_key";

const COPY_EXECUTIONS: &str = "COPY executions (run_id, test_case_id, attempt, outcome,
    duration_ms, failure_signature, message) FROM STDIN (FORMAT binary)";

/// [`COPY_TESTS`] for a small batch: the same rows from one array per column, in statements
/// of at most [`STATEMENT_BYTES`] (one write to the socket each, see the module's
/// documentation).
const INSERT_TESTS: &str = "INSERT INTO test_cases (id, repo_id, key_hash, scope, classname,
        name, variant, file, first_seen_at, last_seen_at)
    SELECT t.id, $1, t.key_hash, t.scope, t.classname, t.name, t.variant, t.file, $2, $2
    FROM UNNEST($3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[],
        $9::text[]) AS t (id, key_hash, scope, classname, name, variant, file)";

/// [`COPY_EXECUTIONS`] for a small batch.
const INSERT_EXECUTIONS: &str = "INSERT INTO executions (run_id, test_case_id, attempt,
        outcome, duration_ms, failure_signature, message)
    SELECT $1, e.test_case_id, e.attempt, e.outcome, e.duration_ms, e.failure_signature,
        e.message
    FROM UNNEST($2::bigint[], $3::integer[], $4::smallint[], $5::bigint[], $6::bigint[],
        $7::text[]) AS e (test_case_id, attempt, outcome, duration_ms, failure_signature,
        message)";

/// The most parameter data a batch written with `INSERT`s may carry, whatever its row
/// count (long names, long messages): about 70 statements of [`STATEMENT_BYTES`], that is 70
/// round trips. Larger batches go through `COPY`.
const INSERT_MAX_BYTES: usize = 1 << 20;

/// The most parameter data one statement of a small run carries, so that it leaves in one
/// write: over TLS, sqlx hands the socket one record (at most 16 KiB of plaintext) per
/// write, and a statement spread over two writes can wait for the delayed ACK just like
/// `COPY` (measured on loopback: 45 ms). The rest of the message (statement name, formats,
/// array headers, Execute, Close, Sync) takes well under the 1 KiB left. A larger small
/// batch takes several statements, one round trip each.
const STATEMENT_BYTES: usize = 15 * 1024;

/// Whether a batch of `rows` rows and about `bytes` bytes of parameters goes through `COPY`
/// rather than `INSERT`s.
fn by_copy(rows: usize, bytes: usize, threshold: usize) -> bool {
    rows > threshold || bytes > INSERT_MAX_BYTES
}

/// Checks everything the database would reject late (or not at all) before writing.
fn validate(
    run: &NewRun,
    tests: &[NewTestCase],
    executions: &[NewExecution],
) -> Result<(), StoreError> {
    if i32::try_from(run.attempt).is_err() {
        return Err(StoreError::Invalid(format!(
            "run attempt {} is out of range",
            run.attempt
        )));
    }
    let run_texts = [
        ("run id", Some(run.run_id.as_str())),
        ("job", Some(run.job.as_str())),
        ("report digest", Some(run.report_digest.as_str())),
        ("commit", run.commit.as_deref()),
        ("branch", run.branch.as_deref()),
    ];
    for (what, text) in run_texts {
        no_nul(what, text)?;
    }
    for test in tests {
        no_nul("test scope", Some(&test.key.scope))?;
        no_nul("test classname", Some(&test.key.classname))?;
        no_nul("test name", Some(&test.key.name))?;
        no_nul("test variant", test.key.variant.as_deref())?;
        no_nul("test file", test.file.as_deref())?;
    }
    for (i, execution) in executions.iter().enumerate() {
        if execution.test >= tests.len() {
            return Err(StoreError::Invalid(format!(
                "execution {i} refers to test {} but the run names {} tests",
                execution.test,
                tests.len()
            )));
        }
        if i32::try_from(execution.attempt).is_err() {
            return Err(StoreError::Invalid(format!(
                "execution {i} has attempt {} (out of range)",
                execution.attempt
            )));
        }
    }
    Ok(())
}

/// PostgreSQL text cannot contain NUL; identities with one are refused rather than altered
/// (messages, which are only shown, have NULs replaced instead).
fn no_nul(what: &str, text: Option<&str>) -> Result<(), StoreError> {
    match text {
        Some(t) if t.contains('\0') => Err(StoreError::Invalid(format!(
            "{what} contains a NUL character"
        ))),
        _ => Ok(()),
    }
}

/// Records a run; batches of more than `bulk_threshold` rows are written with `COPY`.
pub(crate) async fn ingest(
    pool: &PgPool,
    bulk_threshold: usize,
    repo: RepoId,
    run: &NewRun,
    tests: &[NewTestCase],
    executions: &[NewExecution],
) -> Result<Ingested, StoreError> {
    validate(run, tests, executions)?;
    let mut last = None;
    for _ in 0..MAX_ATTEMPTS {
        match ingest_once(pool, bulk_threshold, repo, run, tests, executions).await {
            Ok(done) => return Ok(done),
            Err(Failure::Retry(why)) => last = Some(why),
            Err(Failure::Store(e)) => return Err(e),
        }
    }
    Err(StoreError::Conflict(format!(
        "gave up after {MAX_ATTEMPTS} attempts: {}",
        last.unwrap_or_default()
    )))
}

/// Why one attempt failed.
enum Failure {
    /// Lost a race for a new test case, or chosen as a deadlock victim: try again.
    Retry(String),
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e {
            let lost_race = db.constraint() == Some(TEST_KEY_CONSTRAINT);
            let deadlock = db.code().as_deref() == Some("40P01");
            if lost_race || deadlock {
                return Failure::Retry(db.message().to_owned());
            }
        }
        Failure::Store(map(e))
    }
}

/// One attempt, in one transaction (rolled back when dropped on an error).
async fn ingest_once(
    pool: &PgPool,
    bulk_threshold: usize,
    repo: RepoId,
    run: &NewRun,
    tests: &[NewTestCase],
    executions: &[NewExecution],
) -> Result<Ingested, Failure> {
    let mut tx = pool.begin().await?;
    crate::history::lock_repository(&mut tx, repo).await?;
    let attempt = i32::try_from(run.attempt).unwrap_or(i32::MAX);
    let inserted: Option<i64> = sqlx::query_scalar(INSERT_RUN)
        .bind(repo.0)
        .bind(run.commit.as_deref())
        .bind(run.branch.as_deref())
        .bind(run.pr_number)
        .bind(&run.run_id)
        .bind(attempt)
        .bind(&run.job)
        .bind(run.source.as_str())
        .bind(run.started_at)
        .bind(run.received_at)
        .bind(&run.report_digest)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| match map(e) {
            StoreError::NotFound(_) => StoreError::NotFound(format!("repository {repo}")),
            other => other,
        })?;
    let Some(run_id) = inserted else {
        let existing: i64 = sqlx::query_scalar(FIND_RUN)
            .bind(repo.0)
            .bind(&run.run_id)
            .bind(attempt)
            .bind(&run.job)
            .bind(&run.report_digest)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        return Ok(Ingested {
            run: StoredRunId(existing),
            created: false,
            test_ids: Vec::new(),
        });
    };

    let plan = TestPlan::new(tests);
    // A small run sends its key arrays in statements of one write each, too (see
    // STATEMENT_BYTES); a large one keeps the single statements, which cost less per key.
    let statement_bytes = if plan.keys.len() <= bulk_threshold {
        STATEMENT_BYTES
    } else {
        usize::MAX
    };
    let mut ids = find_known(&mut tx, repo, run.started_at, &plan, statement_bytes).await?;
    let new = reserve_new(&mut tx, &mut ids).await?;
    let ids: Vec<i64> = ids
        .into_iter()
        .collect::<Option<_>>()
        .ok_or_else(|| StoreError::Database("a test case was neither found nor added".into()))?;
    let test_ids: Vec<i64> = plan.slot.iter().map(|&at| ids[at]).collect();

    let tests_bytes = new
        .iter()
        .map(|&at| test_row_bytes(&plan.distinct[at]))
        .sum();
    let tests_by_copy = by_copy(new.len(), tests_bytes, bulk_threshold);
    let executions_bytes = executions.iter().map(execution_row_bytes).sum();
    let executions_by_copy =
        !executions.is_empty() && by_copy(executions.len(), executions_bytes, bulk_threshold);
    let encode = || executions_by_copy.then(|| encode_executions(run_id, &test_ids, executions));
    let executions_data = if new.is_empty() {
        encode()
    } else if tests_by_copy {
        // The executions are encoded while the server is still busy with the test cases.
        copy_tests(&mut tx, repo, run.started_at, &plan, &new, &ids, encode).await?
    } else {
        insert_tests(&mut tx, repo, run.started_at, &plan, &new, &ids).await?;
        encode()
    };
    if let Some(data) = executions_data {
        let mut copy = tx.copy_in_raw(COPY_EXECUTIONS).await?;
        send(&mut copy, &data).await?;
        copy.finish().await?;
    } else if !executions.is_empty() {
        insert_executions(&mut tx, run_id, &test_ids, executions).await?;
    }
    tx.commit().await?;
    Ok(Ingested {
        run: StoredRunId(run_id),
        created: true,
        test_ids: test_ids.into_iter().map(TestCaseId).collect(),
    })
}

/// The run's tests, deduplicated by key.
struct TestPlan<'a> {
    /// Distinct tests in `key_hash` order.
    distinct: Vec<Distinct<'a>>,
    /// Their keys, for binary search.
    keys: Vec<i64>,
    /// For each entry of `tests`, its index in `distinct`.
    slot: Vec<usize>,
}

/// One distinct test of the run (entries of `tests` sharing a key are merged).
struct Distinct<'a> {
    key_hash: i64,
    test: &'a NewTestCase,
    /// The first file any of the merged entries names.
    file: Option<&'a str>,
}

impl<'a> TestPlan<'a> {
    fn new(tests: &'a [NewTestCase]) -> Self {
        // Bit-for-bit: the u64 id is stored as a signed BIGINT.
        let hashes: Vec<i64> = tests.iter().map(|t| t.key.stable_id() as i64).collect();
        // Stable: within a key, the first entry of `tests` comes first and names the test.
        let mut order: Vec<usize> = (0..tests.len()).collect();
        order.sort_by_key(|&i| hashes[i]);
        let mut distinct: Vec<Distinct<'a>> = Vec::with_capacity(tests.len());
        let mut slot = vec![0; tests.len()];
        for i in order {
            match distinct.last_mut() {
                Some(last) if last.key_hash == hashes[i] => {
                    last.file = last.file.or(tests[i].file.as_deref());
                }
                _ => distinct.push(Distinct {
                    key_hash: hashes[i],
                    test: &tests[i],
                    file: tests[i].file.as_deref(),
                }),
            }
            slot[i] = distinct.len() - 1;
        }
        let keys = distinct.iter().map(|d| d.key_hash).collect();
        TestPlan {
            distinct,
            keys,
            slot,
        }
    }
}

/// Looks up the run's known tests, raises their `last_seen_at` (and fills a missing file);
/// returns each distinct test's id, `None` for the new ones. Each statement's parameters
/// take about `statement_bytes` at most (more statements if needed, in key order).
async fn find_known(
    conn: &mut PgConnection,
    repo: RepoId,
    seen_at: OffsetDateTime,
    plan: &TestPlan<'_>,
    statement_bytes: usize,
) -> Result<Vec<Option<i64>>, Failure> {
    // A key is 12 bytes of an array: its length and its 8 bytes.
    let keys_per_statement = (statement_bytes / 12).max(1);
    let mut ids: Vec<Option<i64>> = vec![None; plan.keys.len()];
    if plan.keys.is_empty() {
        return Ok(ids);
    }
    // A repository's first run skips the lookups.
    let repo_has_tests: bool = sqlx::query_scalar(REPO_HAS_TESTS)
        .bind(repo.0)
        .fetch_one(&mut *conn)
        .await?;
    if !repo_has_tests {
        return Ok(ids);
    }
    // (id, key_hash, has a file). Usually every known test is raised by the first
    // statement, so the second looks up only the new ones.
    let mut known = Vec::new();
    for keys in plan.keys.chunks(keys_per_statement) {
        known.extend(columns(
            sqlx::query_as(RAISE_LAST_SEEN)
                .bind(repo.0)
                .bind(keys)
                .bind(seen_at)
                .fetch_one(&mut *conn)
                .await?,
        ));
    }
    let mut raised = vec![false; plan.keys.len()];
    for (_, key_hash, _) in &known {
        if let Ok(at) = plan.keys.binary_search(key_hash) {
            raised[at] = true;
        }
    }
    let rest: Vec<i64> = plan
        .keys
        .iter()
        .zip(&raised)
        .filter(|(_, raised)| !**raised)
        .map(|(k, _)| *k)
        .collect();
    for keys in rest.chunks(keys_per_statement) {
        known.extend(columns(
            sqlx::query_as(SELECT_KNOWN)
                .bind(repo.0)
                .bind(keys)
                .fetch_one(&mut *conn)
                .await?,
        ));
    }
    let mut fill: Vec<(i64, &str)> = Vec::new();
    for (id, key_hash, has_file) in known {
        let Ok(at) = plan.keys.binary_search(&key_hash) else {
            continue;
        };
        ids[at] = Some(id);
        if !has_file && let Some(file) = plan.distinct[at].file {
            fill.push((id, file));
        }
    }
    // Rare: a test first reported without a file now has one.
    fill.sort_unstable_by_key(|(id, _)| *id);
    let size = |(_, file): &(i64, &str)| 12 + 4 + file.len();
    for chunk in by_budget(&fill, size, statement_bytes) {
        let fill_ids: Vec<i64> = chunk.iter().map(|(id, _)| *id).collect();
        let fill_files: Vec<&str> = chunk.iter().map(|(_, f)| *f).collect();
        sqlx::query(FILL_FILE)
            .bind(&fill_ids)
            .bind(&fill_files)
            .execute(&mut *conn)
            .await?;
    }
    Ok(ids)
}

/// Rows from the columns a statement returned as arrays.
fn columns((ids, keys, has_file): (Vec<i64>, Vec<i64>, Vec<bool>)) -> Vec<(i64, i64, bool)> {
    ids.into_iter()
        .zip(keys)
        .zip(has_file)
        .map(|((id, key), has_file)| (id, key, has_file))
        .collect()
}

/// Draws ids for the tests still without one; returns their indexes in `plan.distinct`.
async fn reserve_new(
    conn: &mut PgConnection,
    ids: &mut [Option<i64>],
) -> Result<Vec<usize>, Failure> {
    let new: Vec<usize> = (0..ids.len()).filter(|&at| ids[at].is_none()).collect();
    if new.is_empty() {
        return Ok(new);
    }
    let blocks = i64::try_from(new.len().div_ceil(ID_BLOCK)).unwrap_or(i64::MAX);
    let starts: Vec<i64> = sqlx::query_scalar(RESERVE_TEST_IDS)
        .bind(blocks)
        .fetch_one(&mut *conn)
        .await?;
    let mut drawn = starts
        .iter()
        .flat_map(|start| (0..ID_BLOCK as i64).map(move |i| start + i));
    for &at in &new {
        ids[at] = Some(drawn.next().ok_or_else(|| {
            StoreError::Database(format!("asked for {} test case ids, got fewer", new.len()))
        })?);
    }
    Ok(new)
}

/// Sends `data` as `CopyData` messages of at most [`COPY_CHUNK`] bytes. (On an error the
/// dropped `PgCopyIn` tells the server the `COPY` failed, and the transaction rolls back.)
async fn send(copy: &mut PgCopyIn<&mut PgConnection>, data: &[u8]) -> Result<(), sqlx::Error> {
    for chunk in data.chunks(COPY_CHUNK) {
        copy.send(chunk).await?;
    }
    Ok(())
}

/// Streams the new test cases into the table (their ids already drawn). Returns what
/// `meanwhile` returns, computed after the last row is sent and before the server confirms,
/// that is while it is still inserting.
async fn copy_tests<T>(
    conn: &mut PgConnection,
    repo: RepoId,
    seen_at: OffsetDateTime,
    plan: &TestPlan<'_>,
    new: &[usize],
    ids: &[i64],
    meanwhile: impl FnOnce() -> T,
) -> Result<T, sqlx::Error> {
    let seen_at = timestamp_micros(seen_at)?;
    let mut copy = conn.copy_in_raw(COPY_TESTS).await?;
    let mut data = BinaryCopy::new(COPY_CHUNK + 64 * 1024);
    for &at in new {
        let test = &plan.distinct[at];
        data.row(10);
        data.int8(ids[at]);
        data.int8(repo.0);
        data.int8(test.key_hash);
        data.text(&test.test.key.scope);
        data.text(&test.test.key.classname);
        data.text(&test.test.key.name);
        data.opt_text(test.test.key.variant.as_deref());
        data.opt_text(test.file);
        data.int8(seen_at);
        data.int8(seen_at);
        if data.pending().len() >= COPY_CHUNK {
            copy.send(data.pending()).await?;
            data.clear();
        }
    }
    data.end();
    copy.send(data.pending()).await?;
    let result = meanwhile();
    copy.finish().await?;
    Ok(result)
}

/// Writes the new test cases (their ids already drawn) with `INSERT`s of at most
/// [`STATEMENT_BYTES`] each: the rows [`copy_tests`] would stream, as one array per column.
async fn insert_tests(
    conn: &mut PgConnection,
    repo: RepoId,
    seen_at: OffsetDateTime,
    plan: &TestPlan<'_>,
    new: &[usize],
    ids: &[i64],
) -> Result<(), sqlx::Error> {
    let size = |&at: &usize| test_row_bytes(&plan.distinct[at]);
    for chunk in by_budget(new, size, STATEMENT_BYTES) {
        let n = chunk.len();
        let (mut id, mut key_hash) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut scope, mut classname, mut name) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut variant, mut file) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for &at in chunk {
            let test = &plan.distinct[at];
            id.push(ids[at]);
            key_hash.push(test.key_hash);
            scope.push(storable(&test.test.key.scope));
            classname.push(storable(&test.test.key.classname));
            name.push(storable(&test.test.key.name));
            variant.push(test.test.key.variant.as_deref().map(storable));
            file.push(test.file.map(storable));
        }
        sqlx::query(INSERT_TESTS)
            .bind(repo.0)
            .bind(seen_at)
            .bind(id)
            .bind(key_hash)
            .bind(scope)
            .bind(classname)
            .bind(name)
            .bind(variant)
            .bind(file)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The bytes a test case adds to [`INSERT_TESTS`]'s parameters: each array element is its
/// 4-byte length and its value (8 for a bigint, the UTF-8 bytes for text).
fn test_row_bytes(test: &Distinct<'_>) -> usize {
    let key = &test.test.key;
    7 * 4
        + 2 * 8
        + key.scope.len()
        + key.classname.len()
        + key.name.len()
        + key.variant.as_ref().map_or(0, String::len)
        + test.file.map_or(0, str::len)
}

/// Writes the executions with `INSERT`s of at most [`STATEMENT_BYTES`] each: the rows
/// [`encode_executions`] would encode, in the same order.
async fn insert_executions(
    conn: &mut PgConnection,
    run_id: i64,
    test_ids: &[i64],
    executions: &[NewExecution],
) -> Result<(), sqlx::Error> {
    let order = in_index_order(test_ids, executions);
    let size = |e: &&NewExecution| execution_row_bytes(e);
    for chunk in by_budget(&order, size, STATEMENT_BYTES) {
        let n = chunk.len();
        let (mut test_case_id, mut attempt, mut outcome) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut duration_ms, mut signature, mut message) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for execution in chunk {
            test_case_id.push(test_ids[execution.test]);
            attempt.push(attempt_value(execution));
            outcome.push(outcome_code(execution.outcome));
            duration_ms.push(duration_value(execution));
            signature.push(signature_value(execution));
            message.push(execution.message.as_deref().map(storable));
        }
        sqlx::query(INSERT_EXECUTIONS)
            .bind(run_id)
            .bind(test_case_id)
            .bind(attempt)
            .bind(outcome)
            .bind(duration_ms)
            .bind(signature)
            .bind(message)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The bytes an execution adds to [`INSERT_EXECUTIONS`]'s parameters (at most; a NULL is
/// only its length).
fn execution_row_bytes(execution: &NewExecution) -> usize {
    6 * 4 + 8 + 4 + 2 + 8 + 8 + execution.message.as_ref().map_or(0, String::len)
}

/// Splits `items` into consecutive runs whose sizes add up to at most `budget` (an item
/// larger than that on its own makes a run of one).
fn by_budget<T>(items: &[T], size: impl Fn(&T) -> usize, budget: usize) -> Vec<&[T]> {
    let mut chunks = Vec::new();
    let (mut start, mut used) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let bytes = size(item);
        if i > start && used + bytes > budget {
            chunks.push(&items[start..i]);
            (start, used) = (i, 0);
        }
        used += bytes;
    }
    if start < items.len() {
        chunks.push(&items[start..]);
    }
    chunks
}

/// A `timestamptz` in binary form: microseconds since 2000-01-01 00:00 UTC.
fn timestamp_micros(at: OffsetDateTime) -> Result<i64, sqlx::Error> {
    const PG_EPOCH: OffsetDateTime = time::macros::datetime!(2000-01-01 0:00 UTC);
    i64::try_from((at - PG_EPOCH).whole_microseconds())
        .map_err(|_| sqlx::Error::Encode(format!("timestamp {at} is out of range").into()))
}

/// The executions as binary `COPY` data, in [`in_index_order`].
fn encode_executions(run_id: i64, test_ids: &[i64], executions: &[NewExecution]) -> Vec<u8> {
    let order = in_index_order(test_ids, executions);
    let messages: usize = executions
        .iter()
        .filter_map(|e| e.message.as_ref())
        .map(|m| m.len() + 4)
        .sum();
    let mut data = BinaryCopy::new(executions.len() * 64 + messages);
    for execution in order {
        data.row(7);
        data.int8(run_id);
        data.int8(test_ids[execution.test]);
        data.int4(attempt_value(execution));
        data.int2(outcome_code(execution.outcome));
        data.opt_int8(duration_value(execution));
        data.opt_int8(signature_value(execution));
        data.opt_text(execution.message.as_deref());
    }
    data.end();
    data.into_bytes()
}

/// The executions in the order they are written: by test id, then attempt, so that both of
/// the table's indexes grow at their end instead of all over (measured: a third faster).
fn in_index_order<'a>(test_ids: &[i64], executions: &'a [NewExecution]) -> Vec<&'a NewExecution> {
    let mut order: Vec<&NewExecution> = executions.iter().collect();
    order.sort_unstable_by_key(|e| (test_ids[e.test], e.attempt));
    order
}

/// The stored attempt (validated to fit before anything is written).
fn attempt_value(execution: &NewExecution) -> i32 {
    i32::try_from(execution.attempt).unwrap_or(i32::MAX)
}

/// The stored duration: beyond i64::MAX ms (292 million years) it is clamped.
fn duration_value(execution: &NewExecution) -> Option<i64> {
    execution
        .duration_ms
        .map(|d| i64::try_from(d).unwrap_or(i64::MAX))
}

/// The stored signature: the u64 bit for bit, like key_hash.
fn signature_value(execution: &NewExecution) -> Option<i64> {
    execution.signature.map(|s| s as i64)
}

#[cfg(test)]
mod tests {
    use flakeguard_core::{Outcome, TestKey};
    use flakeguard_store::Source;
    use time::macros::datetime;

    use super::*;

    fn run() -> NewRun {
        NewRun {
            commit: None,
            branch: None,
            pr_number: None,
            run_id: "1".into(),
            attempt: 1,
            job: String::new(),
            source: Source::Cli,
            started_at: datetime!(2026-01-01 0:00 UTC),
            received_at: datetime!(2026-01-01 0:00 UTC),
            report_digest: "d".into(),
        }
    }

    fn exec(test: usize, attempt: u32) -> NewExecution {
        NewExecution {
            test,
            attempt,
            outcome: Outcome::Passed,
            duration_ms: None,
            signature: None,
            message: None,
        }
    }

    #[test]
    fn small_batches_are_inserted_large_ones_copied() {
        assert!(!by_copy(5_000, 100_000, 5_000));
        assert!(by_copy(5_001, 100_000, 5_000));
        assert!(by_copy(10, INSERT_MAX_BYTES + 1, 5_000));
        assert!(by_copy(1, 0, 0), "a threshold of 0 copies everything");
        assert!(!by_copy(1_000_000, 1_000, usize::MAX));
    }

    #[test]
    fn batches_are_split_by_size_in_order() {
        let sizes = [4, 4, 4, 10, 1, 1, 30, 2];
        let chunks = by_budget(&sizes, |&s| s, 10);
        assert_eq!(
            chunks,
            [&[4, 4][..], &[4], &[10], &[1, 1], &[30], &[2]],
            "an item larger than the budget goes alone"
        );
        assert_eq!(by_budget(&sizes, |&s| s, usize::MAX), [&sizes[..]]);
        assert!(by_budget(&[] as &[usize], |&s| s, 10).is_empty());
    }

    #[test]
    fn validation_refuses_what_postgres_cannot_store() {
        let tests = vec![NewTestCase {
            key: TestKey::from_parts(None, "s", None, "t"),
            file: None,
        }];
        assert!(validate(&run(), &tests, &[exec(0, 1)]).is_ok());
        assert!(validate(&run(), &tests, &[exec(1, 1)]).is_err());
        assert!(validate(&run(), &tests, &[exec(0, u32::MAX)]).is_err());
        let mut nul = tests.clone();
        nul[0].key.name = "a\0b".into();
        assert!(matches!(
            validate(&run(), &nul, &[]),
            Err(StoreError::Invalid(_))
        ));
    }
}
