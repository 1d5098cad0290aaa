//! The repository's quarantine list: every live (proposed or active) quarantine with its
//! test's identity, for dashboards and for CI runners that ignore or skip quarantined tests
//! (`flakeguard run`, `flakeguard quarantine export`). Same tenancy as the read API: the
//! `read` scope, 404 outside the caller's organization or repository.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::routing::get;
use flakeguard_store::{Quarantine, QuarantineState, TestCaseId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::pagination::{ApiQuery, PageParams, Paged};
use crate::repos::{readable_repo, rfc3339};

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route(
        "/api/v1/repos/{owner}/{repo}/quarantine",
        get(list_quarantine),
    )
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct QuarantineParams {
    /// `active` (enforced) or `proposed` (awaiting approval); both when absent.
    state: Option<String>,
    page: Option<u64>,
    per_page: Option<u32>,
}

/// One live quarantine and the test it holds.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct QuarantineBody {
    /// The quarantine's id.
    id: i64,
    test_id: i64,
    /// The test's identity as one string (`scope › classname › name[variant]`).
    key: String,
    /// The test's file when its reports name one, otherwise its suite.
    scope: String,
    classname: String,
    name: String,
    /// Parameters or project split off the name (`1-2`, `chromium`).
    variant: Option<String>,
    /// The file the reports name for the test, as written there.
    file: Option<String>,
    /// `proposed` or `active`.
    state: &'static str,
    owner: Option<String>,
    reason: String,
    /// Who or what quarantined it: `user:<email>`, `token:<name>`, `policy:auto`, …
    created_by: String,
    created_at: String,
    /// When it stops applying; `null` when it does not expire.
    expires_at: Option<String>,
}

/// The repository's live quarantines, oldest first. An entry whose expiry has passed is left
/// out even before the lifecycle marks it expired: it no longer applies.
#[utoipa::path(get, path = "/api/v1/repos/{owner}/{repo}/quarantine", tag = "quarantine",
    params(("owner" = String, Path), ("repo" = String, Path), QuarantineParams),
    responses((status = 200, description = "A page of live quarantines (Link and X-Total-Count headers)", body = Paged<QuarantineBody>),
              (status = 401, body = crate::ErrorBody), (status = 403, body = crate::ErrorBody),
              (status = 404, body = crate::ErrorBody), (status = 422, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn list_quarantine(
    State(state): State<AppState>,
    principal: Principal,
    Path((owner, name)): Path<(String, String)>,
    ApiQuery(params): ApiQuery<QuarantineParams>,
    uri: Uri,
) -> Result<Paged<QuarantineBody>, ApiError> {
    let repo = readable_repo(&state, &principal, &owner, &name).await?;
    let wanted = match params.state.as_deref() {
        None | Some("") => None,
        Some("active") => Some(QuarantineState::Active),
        Some("proposed") => Some(QuarantineState::Proposed),
        Some(other) => {
            return Err(ApiError::invalid(
                "invalid_query",
                format!("state={other:?}: expected active or proposed"),
            ));
        }
    };
    let (page, per_page, request) = PageParams {
        page: params.page,
        per_page: params.per_page,
    }
    .request()?;
    let now = OffsetDateTime::now_utc();
    let store = state.store();
    let live: Vec<_> = store
        .live_quarantines(repo.id)
        .await?
        .into_iter()
        .filter(|(q, _)| wanted.is_none_or(|s| q.state == s) && applies(q, now))
        .collect();
    let total = live.len() as u64;
    let shown: Vec<_> = live
        .into_iter()
        .skip(usize::try_from(request.offset).unwrap_or(usize::MAX))
        .take(request.limit as usize)
        .collect();
    // The files the reports name, for runners that select tests by path.
    let ids: Vec<TestCaseId> = shown.iter().map(|(q, _)| q.test).collect();
    let files: HashMap<TestCaseId, Option<String>> = if ids.is_empty() {
        HashMap::new()
    } else {
        store
            .find_tests(repo.id, &ids)
            .await?
            .into_iter()
            .map(|t| (t.id, t.file))
            .collect()
    };
    let items = shown
        .into_iter()
        .map(|(q, key)| QuarantineBody {
            id: q.id.0,
            test_id: q.test.0,
            key: key.to_string(),
            file: files.get(&q.test).cloned().flatten(),
            scope: key.scope,
            classname: key.classname,
            name: key.name,
            variant: key.variant,
            state: q.state.as_str(),
            owner: q.owner,
            reason: q.reason,
            created_by: q.created_by,
            created_at: rfc3339(q.created_at),
            expires_at: q.expires_at.map(rfc3339),
        })
        .collect();
    Ok(Paged::new(items, page, per_page, total, &uri))
}

/// Whether a live quarantine still applies at `now` (it has not passed its expiry).
fn applies(q: &Quarantine, now: OffsetDateTime) -> bool {
    q.expires_at.is_none_or(|at| at > now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flakeguard_store::QuarantineId;
    use time::Duration;

    #[test]
    fn a_quarantine_past_its_expiry_no_longer_applies() {
        let now = OffsetDateTime::now_utc();
        let q = |expires_at| Quarantine {
            id: QuarantineId(1),
            test: TestCaseId(1),
            state: QuarantineState::Active,
            reason: String::new(),
            owner: None,
            created_by: "test".to_owned(),
            created_at: now - Duration::days(3),
            expires_at,
            released_at: None,
        };
        assert!(applies(&q(None), now));
        assert!(applies(&q(Some(now + Duration::hours(1))), now));
        assert!(!applies(&q(Some(now)), now));
        assert!(!applies(&q(Some(now - Duration::hours(1))), now));
    }
}
