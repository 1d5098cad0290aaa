//! Per-repository policy and CODEOWNERS (issue #6): one row per repository in
//! `repo_policies`, upserted in one statement each (the policy and the CODEOWNERS columns are
//! written independently), inserting nothing for an unknown repository.

use flakeguard_store::{NewPolicy, PolicyOrigin, RepoId, StoreError, StoredPolicy};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use time::OffsetDateTime;

use crate::error::map;

const COLUMNS: &str = "repo_id, source, origin, commit_sha, updated_at, updated_by, codeowners,
    codeowners_source, codeowners_updated_at";

fn stored(row: &PgRow) -> Result<StoredPolicy, StoreError> {
    let origin: Option<String> = row.try_get("origin").map_err(map)?;
    let origin = match origin {
        None => None,
        Some(o) => Some(PolicyOrigin::parse(&o).ok_or_else(|| {
            StoreError::Database(format!("stored policy origin {o:?} is unknown"))
        })?),
    };
    (|| {
        Ok::<_, sqlx::Error>(StoredPolicy {
            repo: RepoId(row.try_get("repo_id")?),
            source: row.try_get("source")?,
            origin,
            commit: row.try_get("commit_sha")?,
            updated_at: row.try_get("updated_at")?,
            updated_by: row.try_get("updated_by")?,
            codeowners: row.try_get("codeowners")?,
            codeowners_source: row.try_get("codeowners_source")?,
            codeowners_updated_at: row.try_get("codeowners_updated_at")?,
        })
    })()
    .map_err(map)
}

pub(crate) async fn find(pool: &PgPool, repo: RepoId) -> Result<Option<StoredPolicy>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM repo_policies WHERE repo_id = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(repo.0)
        .fetch_optional(pool)
        .await
        .map_err(map)?
        .as_ref()
        .map(stored)
        .transpose()
}

pub(crate) async fn put_policy(
    pool: &PgPool,
    repo: RepoId,
    policy: &NewPolicy,
) -> Result<StoredPolicy, StoreError> {
    let sql = format!(
        "INSERT INTO repo_policies (repo_id, source, origin, commit_sha, updated_at, updated_by)
         SELECT id, $2, $3, $4, $5, $6 FROM repositories WHERE id = $1
         ON CONFLICT (repo_id) DO UPDATE SET source = EXCLUDED.source,
             origin = EXCLUDED.origin, commit_sha = EXCLUDED.commit_sha,
             updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by
         RETURNING {COLUMNS}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(repo.0)
        .bind(&policy.source)
        .bind(policy.origin.as_str())
        .bind(policy.commit.as_deref())
        .bind(policy.updated_at)
        .bind(&policy.updated_by)
        .fetch_optional(pool)
        .await
        .map_err(map)?;
    match row {
        Some(row) => stored(&row),
        None => Err(StoreError::NotFound(format!("repository {}", repo.0))),
    }
}

pub(crate) async fn put_codeowners(
    pool: &PgPool,
    repo: RepoId,
    text: &str,
    source: &str,
    at: OffsetDateTime,
) -> Result<StoredPolicy, StoreError> {
    let sql = format!(
        "INSERT INTO repo_policies (repo_id, codeowners, codeowners_source, codeowners_updated_at)
         SELECT id, $2, $3, $4 FROM repositories WHERE id = $1
         ON CONFLICT (repo_id) DO UPDATE SET codeowners = EXCLUDED.codeowners,
             codeowners_source = EXCLUDED.codeowners_source,
             codeowners_updated_at = EXCLUDED.codeowners_updated_at
         RETURNING {COLUMNS}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(repo.0)
        .bind(text)
        .bind(source)
        .bind(at)
        .fetch_optional(pool)
        .await
        .map_err(map)?;
    match row {
        Some(row) => stored(&row),
        None => Err(StoreError::NotFound(format!("repository {}", repo.0))),
    }
}
