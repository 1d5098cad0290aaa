//! Reading tests back with their derived state: one, several by id, or a filtered and sorted
//! page of a repository's.
//!
//! Names sort with `COLLATE "C"` (byte order, as SQLite does), so both backends list tests
//! in the same order whatever the database's collation.

use flakeguard_core::TestKey;
use flakeguard_store::{Page, RepoId, StoreError, StoredTest, TestCaseId, TestQuery, TestSort};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{Arguments, Encode, PgPool, Postgres, Row, Type};

use crate::error::map;

/// The columns [`stored_test`] reads from `test_cases t`. A test is quarantined while it has a
/// proposed or active quarantine.
const TEST_COLUMNS: &str = "t.id, t.repo_id, t.scope, t.classname, t.name, t.variant, t.file,
    t.status, t.probability, t.confidence, t.legacy_score, t.recommendation, t.executions,
    t.failures, t.reason, t.evidence, t.first_seen_at, t.last_seen_at, t.scored_at,
    EXISTS (SELECT 1 FROM quarantines q
            WHERE q.test_case_id = t.id AND q.state IN ('proposed', 'active')) AS quarantined";

pub(crate) fn key_from_row(row: &PgRow) -> Result<TestKey, sqlx::Error> {
    Ok(TestKey {
        scope: row.try_get("scope")?,
        classname: row.try_get("classname")?,
        name: row.try_get("name")?,
        variant: row.try_get("variant")?,
    })
}

fn count_column(row: &PgRow, column: &str) -> Result<u32, StoreError> {
    let value: i64 = row.try_get(column).map_err(map)?;
    u32::try_from(value)
        .map_err(|_| StoreError::Database(format!("stored {column} {value} is out of range")))
}

fn stored_test(row: &PgRow) -> Result<StoredTest, StoreError> {
    let executions = count_column(row, "executions")?;
    let failures = count_column(row, "failures")?;
    (|| {
        Ok::<_, sqlx::Error>(StoredTest {
            id: TestCaseId(row.try_get("id")?),
            repo: RepoId(row.try_get("repo_id")?),
            key: key_from_row(row)?,
            file: row.try_get("file")?,
            status: row.try_get("status")?,
            probability: row.try_get("probability")?,
            confidence: row.try_get("confidence")?,
            legacy_score: row.try_get("legacy_score")?,
            recommendation: row.try_get("recommendation")?,
            executions,
            failures,
            reason: row.try_get("reason")?,
            evidence: row.try_get("evidence")?,
            quarantined: row.try_get("quarantined")?,
            first_seen_at: row.try_get("first_seen_at")?,
            last_seen_at: row.try_get("last_seen_at")?,
            scored_at: row.try_get("scored_at")?,
        })
    })()
    .map_err(map)
}

pub(crate) async fn find_test(
    pool: &PgPool,
    repo: RepoId,
    id: TestCaseId,
) -> Result<Option<StoredTest>, StoreError> {
    let sql = format!("SELECT {TEST_COLUMNS} FROM test_cases t WHERE t.id = $1 AND t.repo_id = $2");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id.0)
        .bind(repo.0)
        .fetch_optional(pool)
        .await
        .map_err(map)?
        .as_ref()
        .map(stored_test)
        .transpose()
}

pub(crate) async fn find_tests(
    pool: &PgPool,
    repo: RepoId,
    ids: &[TestCaseId],
) -> Result<Vec<StoredTest>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = ids.iter().map(|id| id.0).collect();
    let sql = format!(
        "SELECT {TEST_COLUMNS} FROM test_cases t WHERE t.repo_id = $1 AND t.id = ANY($2)
         ORDER BY t.id"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(repo.0)
        .bind(&ids)
        .fetch_all(pool)
        .await
        .map_err(map)?
        .iter()
        .map(stored_test)
        .collect()
}

/// Adds one bound value (encoding the values bound here cannot fail, but is not trusted to).
fn add<'t, T: Encode<'t, Postgres> + Type<Postgres>>(
    args: &mut PgArguments,
    value: T,
) -> Result<(), StoreError> {
    args.add(value)
        .map_err(|e| StoreError::Database(format!("bind a query parameter: {e}")))
}

/// The `WHERE` clause of a test listing over `test_cases t`, with its bound values.
fn list_conditions(
    repo: RepoId,
    query: &TestQuery,
    text: Option<&str>,
) -> Result<(String, PgArguments), StoreError> {
    let mut conditions = String::from("t.repo_id = $1");
    let mut args = PgArguments::default();
    add(&mut args, repo.0)?;
    if let Some(filter) = query.filter {
        match filter.status() {
            Some(status) => {
                add(&mut args, status)?;
                conditions.push_str(&format!(" AND t.status = ${}", args.len()));
            }
            // Quarantined, whatever the status.
            None => conditions.push_str(
                " AND t.id IN (SELECT test_case_id FROM quarantines
                               WHERE state IN ('proposed', 'active'))",
            ),
        }
    }
    // strpos, not LIKE: '%' and '_' in the text are literal characters.
    if let Some(text) = text {
        add(&mut args, text)?;
        let n = args.len();
        conditions.push_str(&format!(
            " AND (strpos(lower(t.classname), lower(${n})) > 0
                   OR strpos(lower(t.name), lower(${n})) > 0
                   OR strpos(lower(coalesce(t.file, '')), lower(${n})) > 0)"
        ));
    }
    Ok((conditions, args))
}

fn list_order(sort: TestSort) -> &'static str {
    match sort {
        TestSort::Probability => r#"t.probability DESC, t.name COLLATE "C", t.id"#,
        TestSort::Impact => r#"t.failures DESC, t.probability DESC, t.name COLLATE "C", t.id"#,
        TestSort::Name => {
            r#"t.scope COLLATE "C", t.classname COLLATE "C", t.name COLLATE "C",
               t.variant COLLATE "C" NULLS FIRST, t.id"#
        }
    }
}

pub(crate) async fn list_tests(
    pool: &PgPool,
    repo: RepoId,
    query: &TestQuery,
) -> Result<Page<StoredTest>, StoreError> {
    let text = query.text.as_deref().filter(|t| !t.is_empty());
    if text.is_some_and(|t| t.contains('\0')) {
        // PostgreSQL text cannot hold NUL, so no stored name contains one.
        return Ok(Page {
            items: Vec::new(),
            total: 0,
        });
    }
    let (conditions, args) = list_conditions(repo, query, text)?;
    let count_sql = format!("SELECT count(*) FROM test_cases t WHERE {conditions}");
    let mut page_args = args.clone();
    add(&mut page_args, i64::from(query.page.limit))?;
    add(
        &mut page_args,
        i64::try_from(query.page.offset).unwrap_or(i64::MAX),
    )?;
    let page_sql = format!(
        "SELECT {TEST_COLUMNS} FROM test_cases t WHERE {conditions} ORDER BY {} LIMIT ${} OFFSET ${}",
        list_order(query.sort),
        page_args.len() - 1,
        page_args.len()
    );

    // One snapshot: the total matches the page.
    let mut tx = crate::snapshot(pool).await?;
    let total: i64 = sqlx::query_scalar_with(sqlx::AssertSqlSafe(count_sql), args)
        .fetch_one(&mut *tx)
        .await
        .map_err(map)?;
    let rows = sqlx::query_with(sqlx::AssertSqlSafe(page_sql), page_args)
        .fetch_all(&mut *tx)
        .await
        .map_err(map)?;
    tx.commit().await.map_err(map)?;
    Ok(Page {
        items: rows.iter().map(stored_test).collect::<Result<_, _>>()?,
        total: u64::try_from(total).unwrap_or(0),
    })
}
