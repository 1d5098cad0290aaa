//! Quarantines: recorded for a test of the repository, at most one live (proposed or active)
//! per test — the partial unique index `quarantines_live` decides, so two concurrent requests
//! cannot both win — the repository's live ones listed with their tests, released on request
//! or by policy, and the expired ones ended by the maintenance job (found through the partial
//! index `quarantines_expiring`).

use flakeguard_core::TestKey;
use flakeguard_store::{
    NewQuarantine, Quarantine, QuarantineId, QuarantineState, RepoId, StoreError, TestCaseId,
};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use time::OffsetDateTime;

use crate::error::map;
use crate::test_cases::key_from_row;

/// Inserts nothing when the test is not one of the repository's ($1 test, $2 repository).
const ADD: &str = "INSERT INTO quarantines (test_case_id, state, reason, owner, created_by,
                                            created_at, expires_at)
    SELECT id, $3, $4, $5, $6, $7, $8 FROM test_cases WHERE id = $1 AND repo_id = $2
    RETURNING id, test_case_id, state, reason, owner, created_by, created_at, expires_at,
              released_at, released_by";

const LIVE: &str = "SELECT q.id, q.test_case_id, q.state, q.reason, q.owner, q.created_by,
        q.created_at, q.expires_at, q.released_at, q.released_by, t.scope, t.classname, t.name, t.variant
    FROM quarantines q JOIN test_cases t ON t.id = q.test_case_id
    WHERE t.repo_id = $1 AND q.state IN ('proposed', 'active')
    ORDER BY q.created_at, q.id";

/// Releases the live quarantine of test $1 of repository $2 at $3. One statement: of
/// concurrent releases, one changes the row and the others find it no longer live.
const RELEASE: &str = "UPDATE quarantines q SET state = 'released', released_at = $3,
        released_by = $4
    FROM test_cases t
    WHERE t.id = q.test_case_id AND q.test_case_id = $1 AND t.repo_id = $2
      AND q.state IN ('proposed', 'active')
    RETURNING q.id, q.test_case_id, q.state, q.reason, q.owner, q.created_by, q.created_at,
              q.expires_at, q.released_at, q.released_by";

/// Ends the live quarantines expired at $1, returning them (as changed) with their tests'
/// repositories. One statement: a quarantine is ended once, whoever else expires them
/// meanwhile (a concurrent expiry waits for the row and then finds it no longer live).
const EXPIRE: &str = "UPDATE quarantines q SET state = 'expired', released_at = $1
    FROM test_cases t
    WHERE t.id = q.test_case_id AND q.state IN ('proposed', 'active') AND q.expires_at <= $1
    RETURNING q.id, q.test_case_id, q.state, q.reason, q.owner, q.created_by, q.created_at,
              q.expires_at, q.released_at, q.released_by, t.repo_id";

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
            released_by: row.try_get("released_by")?,
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

pub(crate) async fn release(
    pool: &PgPool,
    repo: RepoId,
    test: TestCaseId,
    at: OffsetDateTime,
    by: &str,
) -> Result<Option<Quarantine>, StoreError> {
    sqlx::query(RELEASE)
        .bind(test.0)
        .bind(repo.0)
        .bind(at)
        .bind(by)
        .fetch_optional(pool)
        .await
        .map_err(map)?
        .as_ref()
        .map(quarantine)
        .transpose()
}

pub(crate) async fn expire(
    pool: &PgPool,
    now: OffsetDateTime,
) -> Result<Vec<(Quarantine, RepoId)>, StoreError> {
    let mut expired = sqlx::query(EXPIRE)
        .bind(now)
        .fetch_all(pool)
        .await
        .map_err(map)?
        .iter()
        .map(|row| {
            let repo = RepoId(row.try_get("repo_id").map_err(map)?);
            Ok((quarantine(row)?, repo))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    expired.sort_unstable_by_key(|(q, _)| q.id);
    Ok(expired)
}
