//! Who is calling: `Authorization: Bearer <token>` with an API token of an organization (or of
//! one repository), or the operator's `API_KEY`. Authenticated callers are also counted
//! against the rate limit here, so every authenticated route is limited the same way.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use flakeguard_app::tokens;
use flakeguard_store::{OrgId, RepoId, Repository, Scope, TokenId};

use crate::AppState;
use crate::error::ApiError;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The operator's `API_KEY`: every scope, every organization.
    Operator,
    Token {
        id: TokenId,
        name: String,
        org: OrgId,
        /// Set when the token is limited to one repository.
        repo: Option<RepoId>,
        scopes: Vec<Scope>,
    },
}

impl Principal {
    /// The rate-limit bucket and the audit actor.
    pub fn key(&self) -> String {
        match self {
            Principal::Operator => "operator".to_owned(),
            Principal::Token { id, .. } => format!("token:{id}"),
        }
    }

    /// Whether the caller may know the repository exists.
    pub fn sees(&self, repo: &Repository) -> bool {
        match self {
            Principal::Operator => true,
            Principal::Token {
                org, repo: only, ..
            } => *org == repo.org && only.is_none_or(|id| id == repo.id),
        }
    }

    /// 403 unless the caller has `scope`. Check [`Principal::sees`] first: outside its own
    /// organization a caller gets 404, never 403.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        match self {
            Principal::Operator => Ok(()),
            Principal::Token { scopes, name, .. } if !scopes.contains(&scope) => Err(
                ApiError::forbidden(format!("token {name:?} lacks the {} scope", scope.as_str())),
            ),
            Principal::Token { .. } => Ok(()),
        }
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::unauthorized(
                "missing Authorization header: send `Authorization: Bearer <token>`",
            ));
        };
        let secret = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized("malformed Authorization header: expected `Bearer <token>`")
            })?;
        let principal = authenticate(state, secret).await?;
        state.limiter().check(&principal.key())?;
        Ok(principal)
    }
}

async fn authenticate(state: &AppState, secret: &str) -> Result<Principal, ApiError> {
    if let Some(key) = &state.settings().api_key
        && tokens::constant_time_eq(secret.as_bytes(), key.expose().as_bytes())
    {
        return Ok(Principal::Operator);
    }
    let token = state.store().find_token(&tokens::hash(secret)).await?;
    match token {
        Some(t) if t.revoked_at.is_none() => Ok(Principal::Token {
            id: t.id,
            name: t.name,
            org: t.org,
            repo: t.repo,
            scopes: t.scopes,
        }),
        Some(_) => Err(ApiError::unauthorized("this token has been revoked")),
        None => Err(ApiError::unauthorized("unknown token")),
    }
}
