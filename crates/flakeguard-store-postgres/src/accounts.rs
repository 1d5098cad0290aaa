//! Tenants and access: organizations (and their settings), users, memberships, repositories
//! and API tokens.
//!
//! The `ensure_*` operations insert with `ON CONFLICT DO NOTHING` and read the existing row
//! when nothing was inserted, so concurrent seeders agree on one row without errors.

use flakeguard_store::{
    ApiToken, Counts, NewToken, OrgId, Organization, RepoId, RepoSlug, Repository, Role,
    StoreError, TokenHash, TokenId, User, UserId, scopes_from_text, scopes_to_text,
};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use time::OffsetDateTime;

use crate::error::map;

fn organization(row: &PgRow) -> Result<Organization, sqlx::Error> {
    Ok(Organization {
        id: OrgId(row.try_get("id")?),
        slug: row.try_get("slug")?,
        name: row.try_get("name")?,
        creates_repositories: row.try_get("creates_repositories")?,
        created_at: row.try_get("created_at")?,
    })
}

fn user(row: &PgRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: UserId(row.try_get("id")?),
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
    })
}

fn repository(row: &PgRow) -> Result<Repository, StoreError> {
    let owner: String = row.try_get("owner").map_err(map)?;
    let name: String = row.try_get("name").map_err(map)?;
    Ok(Repository {
        id: RepoId(row.try_get("id").map_err(map)?),
        org: OrgId(row.try_get("org_id").map_err(map)?),
        slug: RepoSlug::parse(&format!("{owner}/{name}")).map_err(StoreError::Database)?,
        default_branch: row.try_get("default_branch").map_err(map)?,
        created_at: row.try_get("created_at").map_err(map)?,
    })
}

fn token(row: &PgRow) -> Result<ApiToken, sqlx::Error> {
    let scopes: String = row.try_get("scopes")?;
    Ok(ApiToken {
        id: TokenId(row.try_get("id")?),
        org: OrgId(row.try_get("org_id")?),
        repo: row.try_get::<Option<i64>, _>("repo_id")?.map(RepoId),
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        scopes: scopes_from_text(&scopes),
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

/// Runs `insert` (which returns the new row or nothing on conflict), then `select` when
/// nothing was inserted; `true` when the row is new.
async fn insert_or_select(
    pool: &PgPool,
    insert: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    select: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    what: &str,
) -> Result<(PgRow, bool), StoreError> {
    if let Some(row) = insert.fetch_optional(pool).await.map_err(map)? {
        return Ok((row, true));
    }
    match select.fetch_optional(pool).await.map_err(map)? {
        Some(row) => Ok((row, false)),
        // Deleted between the two statements.
        None => Err(StoreError::NotFound(what.to_owned())),
    }
}

const ORGANIZATION_COLUMNS: &str = "id, slug, name, creates_repositories, created_at";

pub(crate) async fn ensure_organization(
    pool: &PgPool,
    slug: &str,
    name: &str,
) -> Result<(Organization, bool), StoreError> {
    let insert = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO organizations (slug, name) VALUES ($1, $2)
         ON CONFLICT (slug) DO NOTHING RETURNING {ORGANIZATION_COLUMNS}"
    )))
    .bind(slug)
    .bind(name);
    let select = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ORGANIZATION_COLUMNS} FROM organizations WHERE slug = $1"
    )))
    .bind(slug);
    let (row, created) = insert_or_select(pool, insert, select, "organization").await?;
    Ok((organization(&row).map_err(map)?, created))
}

pub(crate) async fn find_organization(
    pool: &PgPool,
    slug: &str,
) -> Result<Option<Organization>, StoreError> {
    let sql = format!("SELECT {ORGANIZATION_COLUMNS} FROM organizations WHERE slug = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(slug)
        .fetch_optional(pool)
        .await
        .map_err(map)?
        .as_ref()
        .map(organization)
        .transpose()
        .map_err(map)
}

pub(crate) async fn organization_by_id(
    pool: &PgPool,
    id: OrgId,
) -> Result<Option<Organization>, StoreError> {
    let sql = format!("SELECT {ORGANIZATION_COLUMNS} FROM organizations WHERE id = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id.0)
        .fetch_optional(pool)
        .await
        .map_err(map)?
        .as_ref()
        .map(organization)
        .transpose()
        .map_err(map)
}

pub(crate) async fn set_repository_creation(
    pool: &PgPool,
    org: OrgId,
    allowed: bool,
) -> Result<(), StoreError> {
    let done = sqlx::query("UPDATE organizations SET creates_repositories = $2 WHERE id = $1")
        .bind(org.0)
        .bind(allowed)
        .execute(pool)
        .await
        .map_err(map)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("organization {org}")));
    }
    Ok(())
}

pub(crate) async fn ensure_user(
    pool: &PgPool,
    email: &str,
    name: &str,
) -> Result<(User, bool), StoreError> {
    let insert = sqlx::query(
        "INSERT INTO users (email, name) VALUES ($1, $2)
         ON CONFLICT (email) DO NOTHING RETURNING id, email, name, created_at",
    )
    .bind(email)
    .bind(name);
    let select =
        sqlx::query("SELECT id, email, name, created_at FROM users WHERE email = $1").bind(email);
    let (row, created) = insert_or_select(pool, insert, select, "user").await?;
    Ok((user(&row).map_err(map)?, created))
}

pub(crate) async fn ensure_membership(
    pool: &PgPool,
    org: OrgId,
    user: UserId,
    role: Role,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, $3)
         ON CONFLICT (org_id, user_id) DO NOTHING",
    )
    .bind(org.0)
    .bind(user.0)
    .bind(role.as_str())
    .execute(pool)
    .await
    .map_err(map)?;
    Ok(done.rows_affected() == 1)
}

const REPOSITORY_COLUMNS: &str = "id, org_id, owner, name, default_branch, created_at";

pub(crate) async fn ensure_repository(
    pool: &PgPool,
    org: OrgId,
    slug: &RepoSlug,
) -> Result<(Repository, bool), StoreError> {
    let insert = sqlx::query(
        "INSERT INTO repositories (org_id, owner, name) VALUES ($1, $2, $3)
         ON CONFLICT (owner, name) DO NOTHING
         RETURNING id, org_id, owner, name, default_branch, created_at",
    )
    .bind(org.0)
    .bind(slug.owner())
    .bind(slug.name());
    let select = sqlx::query(
        "SELECT id, org_id, owner, name, default_branch, created_at
         FROM repositories WHERE owner = $1 AND name = $2",
    )
    .bind(slug.owner())
    .bind(slug.name());
    let (row, created) = insert_or_select(pool, insert, select, "repository")
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => StoreError::NotFound(format!("organization {org}")),
            other => other,
        })?;
    let repo = repository(&row)?;
    if repo.org != org {
        return Err(StoreError::Conflict(format!(
            "repository {slug} belongs to another organization"
        )));
    }
    Ok((repo, created))
}

pub(crate) async fn find_repository(
    pool: &PgPool,
    slug: &RepoSlug,
) -> Result<Option<Repository>, StoreError> {
    let sql =
        format!("SELECT {REPOSITORY_COLUMNS} FROM repositories WHERE owner = $1 AND name = $2");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(slug.owner())
        .bind(slug.name())
        .fetch_optional(pool)
        .await
        .map_err(map)?
        .as_ref()
        .map(repository)
        .transpose()
}

pub(crate) async fn list_repositories(
    pool: &PgPool,
    org: OrgId,
) -> Result<Vec<Repository>, StoreError> {
    let sql = format!(
        "SELECT {REPOSITORY_COLUMNS} FROM repositories WHERE org_id = $1 ORDER BY owner, name"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.0)
        .fetch_all(pool)
        .await
        .map_err(map)?
        .iter()
        .map(repository)
        .collect()
}

pub(crate) async fn list_all_repositories(pool: &PgPool) -> Result<Vec<Repository>, StoreError> {
    let sql = format!("SELECT {REPOSITORY_COLUMNS} FROM repositories ORDER BY owner, name");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool)
        .await
        .map_err(map)?
        .iter()
        .map(repository)
        .collect()
}

const TOKEN_COLUMNS: &str = "id, org_id, repo_id, name, prefix, scopes, created_at, revoked_at";

pub(crate) async fn create_token(pool: &PgPool, new: &NewToken) -> Result<ApiToken, StoreError> {
    let sql = format!(
        "INSERT INTO api_tokens (org_id, repo_id, name, token_hash, prefix, scopes, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {TOKEN_COLUMNS}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(new.org.0)
        .bind(new.repo.map(|r| r.0))
        .bind(&new.name)
        .bind(&new.hash[..])
        .bind(&new.prefix)
        .bind(scopes_to_text(&new.scopes))
        .bind(new.created_at)
        .fetch_one(pool)
        .await
        .map_err(|e| match map(e) {
            StoreError::Conflict(_) => {
                StoreError::Conflict("a token with this hash already exists".into())
            }
            other => other,
        })?;
    token(&row).map_err(map)
}

pub(crate) async fn find_token(
    pool: &PgPool,
    hash: &TokenHash,
) -> Result<Option<ApiToken>, StoreError> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = $1");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&hash[..])
        .fetch_optional(pool)
        .await
        .map_err(map)?
        .as_ref()
        .map(token)
        .transpose()
        .map_err(map)
}

pub(crate) async fn list_tokens(pool: &PgPool, org: OrgId) -> Result<Vec<ApiToken>, StoreError> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE org_id = $1 ORDER BY id");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org.0)
        .fetch_all(pool)
        .await
        .map_err(map)?
        .iter()
        .map(token)
        .collect::<Result<_, _>>()
        .map_err(map)
}

pub(crate) async fn revoke_token(
    pool: &PgPool,
    org: OrgId,
    id: TokenId,
    at: OffsetDateTime,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE api_tokens SET revoked_at = $3
         WHERE id = $1 AND org_id = $2 AND revoked_at IS NULL",
    )
    .bind(id.0)
    .bind(org.0)
    .bind(at)
    .execute(pool)
    .await
    .map_err(map)?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn counts(pool: &PgPool) -> Result<Counts, StoreError> {
    let row = sqlx::query(
        "SELECT (SELECT count(*) FROM organizations) AS organizations,
                (SELECT count(*) FROM users) AS users,
                (SELECT count(*) FROM repositories) AS repositories",
    )
    .fetch_one(pool)
    .await
    .map_err(map)?;
    let count = |column: &str| -> Result<u64, StoreError> {
        let n: i64 = row.try_get(column).map_err(map)?;
        Ok(u64::try_from(n).unwrap_or(0))
    };
    Ok(Counts {
        organizations: count("organizations")?,
        users: count("users")?,
        repositories: count("repositories")?,
    })
}
