//! Tests' derived state: writing the result of scoring (in chunks, in one transaction), and
//! reading tests back — one, several by id, or a filtered and sorted page of a repository's.

use flakeguard_core::TestKey;
use flakeguard_store::{
    DerivedState, Page, RepoId, Result, StoreError, StoredTest, TestCaseId, TestQuery, TestSort,
};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, AssertSqlSafe, Encode, Row, Sqlite, Type};
use time::OffsetDateTime;

use crate::SqliteStore;
use crate::error::{corrupt, map};
use crate::timestamp::{from_micros, from_micros_opt, to_micros};

/// States per UPDATE statement.
const SCORE_ROWS: usize = 1_000;
/// Bound values per state (plus the repository and the time once per statement).
const SCORE_VALUES: usize = 10;
// Within SQLite's limit on bound values in one statement (`SQLITE_MAX_VARIABLE_NUMBER`).
const _: () = assert!(SCORE_ROWS * SCORE_VALUES + 2 <= 32_766);

/// Test ids per `find_tests` query (one bound value each).
const IDS_PER_QUERY: usize = 1_000;

/// `UPDATE … FROM (VALUES …)` for `rows` states; only tests of the repository are touched.
/// Parameters, in order: the time, ten per state, the repository. (Anonymous `?` only:
/// numbered ones make sqlx's binding quadratic, see `ingest`.)
fn update_sql(rows: usize) -> String {
    let mut sql = String::from(
        "UPDATE test_cases SET status = v.column2, probability = v.column3,
             confidence = v.column4, legacy_score = v.column5, recommendation = v.column6,
             executions = v.column7, failures = v.column8, reason = v.column9,
             evidence = v.column10, scored_at = ?
         FROM (VALUES ",
    );
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?,?,?,?,?,?,?,?)");
    }
    sql.push_str(") AS v WHERE test_cases.id = v.column1 AND test_cases.repo_id = ?");
    sql
}

/// The columns [`stored_test`] reads from `test_cases t`, as a literal for `concat!`. A test
/// is quarantined while it has a proposed or active quarantine.
macro_rules! test_columns {
    () => {
        "t.id, t.repo_id, t.scope, t.classname, t.name, t.variant, t.file, t.status,
         t.probability, t.confidence, t.legacy_score, t.recommendation, t.executions,
         t.failures, t.reason, t.evidence, t.first_seen_at, t.last_seen_at, t.scored_at,
         EXISTS (SELECT 1 FROM quarantines q
                 WHERE q.test_case_id = t.id AND q.state IN ('proposed', 'active'))
             AS quarantined"
    };
}

fn stored_test(row: &SqliteRow) -> Result<StoredTest> {
    let read = map("read a test");
    let count = |column: &str| -> Result<u32> {
        let n: i64 = row.try_get(column).map_err(&read)?;
        u32::try_from(n).map_err(|_| corrupt(format_args!("{column} {n}")))
    };
    Ok(StoredTest {
        id: TestCaseId(row.try_get("id").map_err(&read)?),
        repo: RepoId(row.try_get("repo_id").map_err(&read)?),
        key: TestKey {
            scope: row.try_get("scope").map_err(&read)?,
            classname: row.try_get("classname").map_err(&read)?,
            name: row.try_get("name").map_err(&read)?,
            variant: row.try_get("variant").map_err(&read)?,
        },
        file: row.try_get("file").map_err(&read)?,
        status: row.try_get("status").map_err(&read)?,
        probability: row.try_get("probability").map_err(&read)?,
        confidence: row.try_get("confidence").map_err(&read)?,
        legacy_score: row.try_get("legacy_score").map_err(&read)?,
        recommendation: row.try_get("recommendation").map_err(&read)?,
        executions: count("executions")?,
        failures: count("failures")?,
        reason: row.try_get("reason").map_err(&read)?,
        evidence: row.try_get("evidence").map_err(&read)?,
        quarantined: row.try_get("quarantined").map_err(&read)?,
        first_seen_at: from_micros(row.try_get("first_seen_at").map_err(&read)?)?,
        last_seen_at: from_micros(row.try_get("last_seen_at").map_err(&read)?)?,
        scored_at: from_micros_opt(row.try_get("scored_at").map_err(&read)?)?,
    })
}

/// Adds one bound value (encoding the values bound here cannot fail, but is not trusted to).
fn add<'t, T: Encode<'t, Sqlite> + Type<Sqlite>>(
    args: &mut SqliteArguments,
    value: T,
) -> Result<()> {
    args.add(value)
        .map_err(|e| StoreError::Database(format!("bind a query parameter: {e}")))
}

/// The `WHERE` clause of a test listing over `test_cases t`, with its bound values.
fn list_conditions(repo: RepoId, query: &TestQuery) -> Result<(String, SqliteArguments)> {
    let mut conditions = String::from("t.repo_id = ?");
    let mut args = SqliteArguments::default();
    add(&mut args, repo.0)?;
    if let Some(filter) = query.filter {
        match filter.status() {
            Some(status) => {
                conditions.push_str(" AND t.status = ?");
                add(&mut args, status)?;
            }
            // Quarantined, whatever the status.
            None => conditions.push_str(
                " AND t.id IN (SELECT test_case_id FROM quarantines
                               WHERE state IN ('proposed', 'active'))",
            ),
        }
    }
    // instr, not LIKE: '%' and '_' in the text are literal characters.
    if let Some(text) = query.text.as_deref().filter(|t| !t.is_empty()) {
        conditions.push_str(
            " AND (instr(lower(t.classname), lower(?)) > 0 OR instr(lower(t.name), lower(?)) > 0
                   OR instr(lower(coalesce(t.file, '')), lower(?)) > 0)",
        );
        for _ in 0..3 {
            add(&mut args, text)?;
        }
    }
    Ok((conditions, args))
}

fn list_order(sort: TestSort) -> &'static str {
    match sort {
        TestSort::Probability => "t.probability DESC, t.name, t.id",
        TestSort::Impact => "t.failures DESC, t.probability DESC, t.name, t.id",
        TestSort::Name => "t.scope, t.classname, t.name, t.variant NULLS FIRST, t.id",
    }
}

/// The index a page of all the repository's tests is read through. SQLite's planner (3.51)
/// sees every `(repo_id, …)` index as equally good and may take one that orders nothing,
/// then sorts 100,000 rows for a 50-row page (100 ms instead of 0.5 ms). With a status or
/// quarantine filter it chooses well (and the sort index would be the wrong choice).
fn list_index(query: &TestQuery) -> &'static str {
    match (query.filter, query.sort) {
        (None, TestSort::Probability) => " INDEXED BY test_cases_repo_probability",
        (None, TestSort::Impact) => " INDEXED BY test_cases_repo_failures",
        _ => "",
    }
}

impl SqliteStore {
    pub(crate) async fn save_scores_impl(
        &self,
        repo: RepoId,
        scores: &[DerivedState],
        at: OffsetDateTime,
    ) -> Result<()> {
        if scores.is_empty() {
            return Ok(());
        }
        let mut tx = self.write().await?;
        for chunk in scores.chunks(SCORE_ROWS) {
            let mut query = sqlx::query(AssertSqlSafe(update_sql(chunk.len()))).bind(to_micros(at));
            for state in chunk {
                query = query
                    .bind(state.test.0)
                    .bind(&state.status)
                    .bind(state.probability)
                    .bind(state.confidence)
                    .bind(state.legacy_score)
                    .bind(&state.recommendation)
                    .bind(i64::from(state.executions))
                    .bind(i64::from(state.failures))
                    .bind(&state.reason)
                    .bind(&state.evidence);
            }
            query
                .bind(repo.0)
                .execute(&mut *tx)
                .await
                .map_err(map("save the scores"))?;
        }
        tx.commit().await.map_err(map("commit the scores"))?;
        Ok(())
    }

    pub(crate) async fn find_test_impl(
        &self,
        repo: RepoId,
        id: TestCaseId,
    ) -> Result<Option<StoredTest>> {
        sqlx::query(concat!(
            "SELECT ",
            test_columns!(),
            " FROM test_cases t WHERE t.id = ? AND t.repo_id = ?"
        ))
        .bind(id.0)
        .bind(repo.0)
        .fetch_optional(&self.reader)
        .await
        .map_err(map("read the test"))?
        .as_ref()
        .map(stored_test)
        .transpose()
    }

    pub(crate) async fn find_tests_impl(
        &self,
        repo: RepoId,
        ids: &[TestCaseId],
    ) -> Result<Vec<StoredTest>> {
        let mut ids: Vec<i64> = ids.iter().map(|id| id.0).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IDS_PER_QUERY) {
            // `+t.repo_id`: look the ids up by primary key rather than scanning the
            // repository's tests through an index on repo_id.
            let mut sql = String::from(concat!(
                "SELECT ",
                test_columns!(),
                " FROM test_cases t WHERE +t.repo_id = ? AND t.id IN ("
            ));
            for i in 0..chunk.len() {
                sql.push_str(if i == 0 { "?" } else { ",?" });
            }
            sql.push_str(") ORDER BY t.id");
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(repo.0);
            for id in chunk {
                query = query.bind(*id);
            }
            let rows = query
                .fetch_all(&self.reader)
                .await
                .map_err(map("read the tests"))?;
            for row in &rows {
                found.push(stored_test(row)?);
            }
        }
        Ok(found)
    }

    pub(crate) async fn list_tests_impl(
        &self,
        repo: RepoId,
        query: &TestQuery,
    ) -> Result<Page<StoredTest>> {
        let (conditions, args) = list_conditions(repo, query)?;
        let count_sql = format!("SELECT count(*) FROM test_cases t WHERE {conditions}");
        let page_sql = format!(
            concat!(
                "SELECT ",
                test_columns!(),
                " FROM test_cases t{} WHERE {} ORDER BY {} LIMIT ? OFFSET ?"
            ),
            list_index(query),
            conditions,
            list_order(query.sort)
        );
        let mut page_args = args.clone();
        add(&mut page_args, i64::from(query.page.limit))?;
        add(
            &mut page_args,
            i64::try_from(query.page.offset).unwrap_or(i64::MAX),
        )?;

        // One snapshot: the total matches the page.
        let mut tx = self.read().await?;
        let total: i64 = sqlx::query_scalar_with(AssertSqlSafe(count_sql), args)
            .fetch_one(&mut *tx)
            .await
            .map_err(map("count the tests"))?;
        let rows = sqlx::query_with(AssertSqlSafe(page_sql), page_args)
            .fetch_all(&mut *tx)
            .await
            .map_err(map("list the tests"))?;
        tx.rollback().await.map_err(map("end the read"))?;
        Ok(Page {
            items: rows.iter().map(stored_test).collect::<Result<_>>()?,
            total: u64::try_from(total).map_err(|_| corrupt(format_args!("count {total}")))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_update_binds_every_value_of_every_state() {
        assert_eq!(update_sql(3).matches('?').count(), 3 * SCORE_VALUES + 2);
        assert_eq!(update_sql(1).matches("v.column").count(), SCORE_VALUES);
    }
}
