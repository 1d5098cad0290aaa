//! Quarantines: recorded for a test of the repository, at most one live (proposed or active)
//! per test — the partial unique index `quarantines_live` decides, so two concurrent requests
//! cannot both win — and the repository's live ones listed with their tests.

use flakeguard_core::TestKey;
use flakeguard_store::{
    NewQuarantine, Quarantine, QuarantineId, QuarantineState, RepoId, StoreError, TestCaseId,
};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

use crate::error::map;
use crate::test_cases::key_from_row;

/// Inserts nothing when the test is not one of the repository's ($1 test, $2 repository).
const ADD: &str = "INSERT INTO quarantines (test_case_id, state, reason, owner, created_by,
                                            created_at, expires_at)
    SELECT id, $3, $4, $5, $6, $7, $8 FROM test_cases WHERE id = $1 AND repo_id = $2
    RETURNING id, test_case_id, state, reason, owner, created_by, created_at, expires_at,
              released_at";

const LIVE: &str = "SELECT q.id, q.test_case_id, q.state, q.reason, q.owner, q.created_by,
        q.created_at, q.expires_at, q.released_at, t.scope, t.classname, t.name, t.variant
    FROM quarantines q JOIN test_cases t ON t.id = q.test_case_id
    WHERE t.repo_id = $1 AND q.state IN ('proposed', 'active')
    ORDER BY q.created_at, q.id";

fn quarantine(row: &PgRow) -> Result<Quarantine, StoreError> {
    let state: String = row.try_get("state").map_err(map)?;
    let state = QuarantineState::parse(&state).ok_or_else(|| {
        StoreError::Database(format!("stored quarantine state {state:?} is unknown"))
    })?;
    (|| {
        Ok::<_, sqlx::Error>(Quarantine {
            id: QuarantineId(row.try_get("id")?),
            test: TestCaseId(row.try_get("test_case_id")?),
            state,
            reason: row.try_get("reason")?,
            owner: row.try_get("owner")?,
            created_by: row.try_get("created_by")?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
            released_at: row.try_get("released_at")?,
        })
    })()
    .map_err(map)
}

pub(crate) async fn add(
    pool: &PgPool,
    repo: RepoId,
    new: &NewQuarantine,
) -> Result<Quarantine, StoreError> {
    let row = sqlx::query(ADD)
        .bind(new.test.0)
        .bind(repo.0)
        .bind(new.state.as_str())
        .bind(&new.reason)
        .bind(new.owner.as_deref())
        .bind(&new.created_by)
        .bind(new.created_at)
        .bind(new.expires_at)
        .fetch_optional(pool)
        .await
        .map_err(|e| match map(e) {
            StoreError::Conflict(_) => StoreError::Conflict(format!(
                "test {} already has a proposed or active quarantine",
                new.test
            )),
            other => other,
        })?;
    match row {
        Some(row) => quarantine(&row),
        None => Err(StoreError::NotFound(format!("test {}", new.test))),
    }
}

pub(crate) async fn live(
    pool: &PgPool,
    repo: RepoId,
) -> Result<Vec<(Quarantine, TestKey)>, StoreError> {
    sqlx::query(LIVE)
        .bind(repo.0)
        .fetch_all(pool)
        .await
        .map_err(map)?
        .iter()
        .map(|row| Ok((quarantine(row)?, key_from_row(row).map_err(map)?)))
        .collect()
}
