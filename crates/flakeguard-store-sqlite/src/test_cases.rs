//! Tests' derived state: writing the result of scoring (in chunks, in one transaction) and
//! reading one test back.

use flakeguard_core::TestKey;
use flakeguard_store::{DerivedState, RepoId, Result, StoredTest, TestCaseId};
use sqlx::AssertSqlSafe;
use time::OffsetDateTime;

use crate::SqliteStore;
use crate::error::map;
use crate::timestamp::{from_micros, from_micros_opt, to_micros};

/// States per UPDATE statement (6 bound values each, plus the repository and the time).
const SCORE_ROWS: usize = 1_000;

/// `UPDATE … FROM (VALUES …)` for `rows` states; only tests of the repository are touched.
/// Parameters, in order: the time, six per state, the repository. (Anonymous `?` only:
/// numbered ones make sqlx's binding quadratic, see `ingest`.)
fn update_sql(rows: usize) -> String {
    let mut sql = String::from(
        "UPDATE test_cases SET status = v.column2, probability = v.column3,
             confidence = v.column4, legacy_score = v.column5, recommendation = v.column6,
             scored_at = ?
         FROM (VALUES ",
    );
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?,?,?,?)");
    }
    sql.push_str(") AS v WHERE test_cases.id = v.column1 AND test_cases.repo_id = ?");
    sql
}

type StoredTestRow = (
    i64,
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    f64,
    f64,
    f64,
    String,
    i64,
    i64,
    Option<i64>,
);

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
                    .bind(&state.recommendation);
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
        let row: Option<StoredTestRow> = sqlx::query_as(
            "SELECT id, repo_id, scope, classname, name, variant, file, status, probability,
                    confidence, legacy_score, recommendation, first_seen_at, last_seen_at,
                    scored_at
             FROM test_cases WHERE id = ? AND repo_id = ?",
        )
        .bind(id.0)
        .bind(repo.0)
        .fetch_optional(&self.reader)
        .await
        .map_err(map("read the test"))?;
        let Some((
            id,
            repo,
            scope,
            classname,
            name,
            variant,
            file,
            status,
            probability,
            confidence,
            legacy_score,
            recommendation,
            first_seen_at,
            last_seen_at,
            scored_at,
        )) = row
        else {
            return Ok(None);
        };
        Ok(Some(StoredTest {
            id: TestCaseId(id),
            repo: RepoId(repo),
            key: TestKey {
                scope,
                classname,
                name,
                variant,
            },
            file,
            status,
            probability,
            confidence,
            legacy_score,
            recommendation,
            first_seen_at: from_micros(first_seen_at)?,
            last_seen_at: from_micros(last_seen_at)?,
            scored_at: from_micros_opt(scored_at)?,
        }))
    }
}
