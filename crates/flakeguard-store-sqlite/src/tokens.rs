//! API tokens: stored by the SHA-256 of their secret, found by that hash, listed and revoked
//! within their organization.

use flakeguard_store::{
    ApiToken, NewToken, OrgId, RepoId, Result, TokenHash, TokenId, scopes_from_text, scopes_to_text,
};
use time::OffsetDateTime;

use crate::SqliteStore;
use crate::error::map;
use crate::timestamp::{from_micros, from_micros_opt, to_micros};

/// The columns [`token`] reads, as a literal for `concat!`.
macro_rules! token_columns {
    () => {
        "id, org_id, repo_id, name, prefix, scopes, created_at, revoked_at"
    };
}

type TokenRow = (
    i64,
    i64,
    Option<i64>,
    String,
    String,
    String,
    i64,
    Option<i64>,
);

fn token(row: TokenRow) -> Result<ApiToken> {
    let (id, org, repo, name, prefix, scopes, created_at, revoked_at) = row;
    Ok(ApiToken {
        id: TokenId(id),
        org: OrgId(org),
        repo: repo.map(RepoId),
        name,
        prefix,
        scopes: scopes_from_text(&scopes),
        created_at: from_micros(created_at)?,
        revoked_at: from_micros_opt(revoked_at)?,
    })
}

impl SqliteStore {
    pub(crate) async fn create_token_impl(&self, new: &NewToken) -> Result<ApiToken> {
        let row: TokenRow = sqlx::query_as(concat!(
            "INSERT INTO api_tokens (org_id, repo_id, name, token_hash, prefix, scopes, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING ",
            token_columns!()
        ))
        .bind(new.org.0)
        .bind(new.repo.map(|r| r.0))
        .bind(&new.name)
        .bind(&new.hash[..])
        .bind(&new.prefix)
        .bind(scopes_to_text(&new.scopes))
        .bind(to_micros(new.created_at))
        .fetch_one(&self.writer)
        .await
        .map_err(map("create the token"))?;
        token(row)
    }

    pub(crate) async fn find_token_impl(&self, hash: &TokenHash) -> Result<Option<ApiToken>> {
        sqlx::query_as(concat!(
            "SELECT ",
            token_columns!(),
            " FROM api_tokens WHERE token_hash = ?"
        ))
        .bind(&hash[..])
        .fetch_optional(&self.reader)
        .await
        .map_err(map("read the token"))?
        .map(token)
        .transpose()
    }

    pub(crate) async fn list_tokens_impl(&self, org: OrgId) -> Result<Vec<ApiToken>> {
        let rows: Vec<TokenRow> = sqlx::query_as(concat!(
            "SELECT ",
            token_columns!(),
            " FROM api_tokens WHERE org_id = ? ORDER BY id"
        ))
        .bind(org.0)
        .fetch_all(&self.reader)
        .await
        .map_err(map("list the tokens"))?;
        rows.into_iter().map(token).collect()
    }

    pub(crate) async fn revoke_token_impl(
        &self,
        org: OrgId,
        id: TokenId,
        at: OffsetDateTime,
    ) -> Result<bool> {
        let result = sqlx::query(
            "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND org_id = ? AND revoked_at IS NULL",
        )
        .bind(to_micros(at))
        .bind(id.0)
        .bind(org.0)
        .execute(&self.writer)
        .await
        .map_err(map("revoke the token"))?;
        Ok(result.rows_affected() == 1)
    }
}
