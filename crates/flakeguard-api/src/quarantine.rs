//! The repository's quarantine list and its manual lifecycle.
//!
//! `GET …/quarantine` lists every live (proposed or active) quarantine with its test's
//! identity, for dashboards and for CI runners that ignore or skip quarantined tests
//! (`flakeguard run`, `flakeguard quarantine export`): the `read` scope. `POST …/quarantine`
//! quarantines a test and `DELETE …/quarantine/{test_id}` releases it: the `admin` scope,
//! since they change what CI enforces; each change is written to the audit log and counted
//! in `flakeguard_quarantine_changes_total`. Tenancy as in the read API: 404 outside the
//! caller's organization or repository.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::routing::{delete, get};
use axum::{Json, Router};
use bytes::Bytes;
use flakeguard_app::RepoPolicy;
use flakeguard_core::RepoConfig;
use flakeguard_store::{
    NewAuditEntry, NewQuarantine, Quarantine, QuarantineState, Repository, Scope, StoreError,
    TestCaseId,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::{Duration, OffsetDateTime};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::pagination::{ApiQuery, PageParams, Paged};
use crate::repos::{readable_repo, rfc3339};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/repos/{owner}/{repo}/quarantine",
            get(list_quarantine).post(create_quarantine),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/quarantine/{test_id}",
            delete(release_quarantine),
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
    /// `proposed` or `active` in the list; `released` in the answer to a release.
    state: &'static str,
    owner: Option<String>,
    reason: String,
    /// Who or what quarantined it: `operator`, `token:<id>`, `policy:auto`, …
    created_by: String,
    created_at: String,
    /// When it stops applying; `null` when it does not expire.
    expires_at: Option<String>,
    /// When it was released; `null` while it is live.
    released_at: Option<String>,
    /// Who or what released it (`token:<id>`, `operator`, `policy:auto-release`); `null`
    /// while it is live and for an expired one.
    released_by: Option<String>,
}

impl QuarantineBody {
    fn new(q: Quarantine, key: flakeguard_core::TestKey, file: Option<String>) -> Self {
        QuarantineBody {
            id: q.id.0,
            test_id: q.test.0,
            key: key.to_string(),
            file,
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
            released_at: q.released_at.map(rfc3339),
            released_by: q.released_by,
        }
    }
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
        .map(|(q, key)| {
            let file = files.get(&q.test).cloned().flatten();
            QuarantineBody::new(q, key, file)
        })
        .collect();
    Ok(Paged::new(items, page, per_page, total, &uri))
}

/// What `POST …/quarantine` asks for.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)] // Read by hand (see `CreateRequest::parse`); here for the OpenAPI schema.
pub(crate) struct CreateQuarantine {
    /// The test, as `id` in the test listings.
    test_id: i64,
    /// Why (shown to everyone whose CI ignores the test); 1–1000 characters.
    reason: String,
    /// Who is expected to fix it (a team or a person); at most 200 characters. When absent,
    /// the first owner the repository's CODEOWNERS names for the test's file.
    owner: Option<String>,
    /// Days until it expires, 1–365; the repository's `quarantine_duration_days` (30 by
    /// default) when absent.
    expires_in_days: Option<u32>,
    /// `active` (enforced at once, the default) or `proposed` (awaiting approval).
    state: Option<String>,
}

/// A validated [`CreateQuarantine`].
#[derive(Debug, PartialEq)]
struct CreateRequest {
    test: TestCaseId,
    reason: String,
    owner: Option<String>,
    expires_in_days: u32,
    state: QuarantineState,
}

const MAX_REASON: usize = 1000;
const MAX_OWNER: usize = 200;
const MAX_DAYS: u64 = 365;

impl CreateRequest {
    /// Parses the body, naming every bad or unknown field at once (422 `invalid_body`).
    fn parse(body: &[u8], defaults: &RepoConfig) -> Result<CreateRequest, ApiError> {
        let invalid = |message: String| ApiError::invalid("invalid_body", message);
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| invalid(format!("the body is not JSON: {e}")))?;
        let Value::Object(fields) = value else {
            return Err(invalid(
                "the body must be a JSON object such as {\"test_id\": 1, \"reason\": \"…\"}"
                    .to_owned(),
            ));
        };
        let mut problems = Vec::new();
        for key in fields.keys() {
            if !matches!(
                key.as_str(),
                "test_id" | "reason" | "owner" | "expires_in_days" | "state"
            ) {
                problems.push(format!(
                    "{key}: unknown field (expected test_id, reason, owner, expires_in_days, state)"
                ));
            }
        }
        let test = match fields.get("test_id") {
            None | Some(Value::Null) => {
                problems.push("test_id: required".to_owned());
                None
            }
            Some(v) => match v.as_i64().filter(|id| *id > 0) {
                Some(id) => Some(TestCaseId(id)),
                None => {
                    problems.push(format!(
                        "test_id: {v} is not a test id (a positive integer)"
                    ));
                    None
                }
            },
        };
        let reason = match fields.get("reason") {
            None | Some(Value::Null) => {
                problems.push("reason: required".to_owned());
                None
            }
            Some(Value::String(r)) if r.trim().is_empty() => {
                problems.push("reason: must not be empty".to_owned());
                None
            }
            Some(Value::String(r)) if r.chars().count() > MAX_REASON => {
                problems.push(format!("reason: longer than {MAX_REASON} characters"));
                None
            }
            Some(Value::String(r)) => Some(r.trim().to_owned()),
            Some(v) => {
                problems.push(format!("reason: {v} is not a string"));
                None
            }
        };
        let owner = match fields.get("owner") {
            None | Some(Value::Null) => None,
            Some(Value::String(o)) if o.trim().is_empty() => {
                problems.push("owner: must not be empty (leave it out for none)".to_owned());
                None
            }
            Some(Value::String(o)) if o.chars().count() > MAX_OWNER => {
                problems.push(format!("owner: longer than {MAX_OWNER} characters"));
                None
            }
            Some(Value::String(o)) => Some(o.trim().to_owned()),
            Some(v) => {
                problems.push(format!("owner: {v} is not a string"));
                None
            }
        };
        let expires_in_days = match fields.get("expires_in_days") {
            None | Some(Value::Null) => defaults.quarantine_duration_days,
            Some(v) => match v.as_u64().filter(|d| (1..=MAX_DAYS).contains(d)) {
                Some(d) => u32::try_from(d).unwrap_or(defaults.quarantine_duration_days),
                None => {
                    problems.push(format!(
                        "expires_in_days: {v} is not a number of days from 1 to {MAX_DAYS}"
                    ));
                    defaults.quarantine_duration_days
                }
            },
        };
        let state = match fields.get("state") {
            None | Some(Value::Null) => QuarantineState::Active,
            Some(Value::String(s)) if s == "active" => QuarantineState::Active,
            Some(Value::String(s)) if s == "proposed" => QuarantineState::Proposed,
            Some(v) => {
                problems.push(format!("state: {v} is not active or proposed"));
                QuarantineState::Active
            }
        };
        match (test, reason) {
            (Some(test), Some(reason)) if problems.is_empty() => Ok(CreateRequest {
                test,
                reason,
                owner,
                expires_in_days,
                state,
            }),
            _ => Err(invalid(problems.join("; "))),
        }
    }
}

/// The repository if the caller may see it and holds the `admin` scope (404 before 403, as
/// everywhere).
pub(crate) async fn administered_repo(
    state: &AppState,
    principal: &Principal,
    owner: &str,
    name: &str,
) -> Result<Repository, ApiError> {
    let repo = readable_repo(state, principal, owner, name).await?;
    principal.require(Scope::Admin)?;
    Ok(repo)
}

/// Quarantines a test: from now on CI ignores (or skips) its failures until it is released
/// or expires. A test has at most one live quarantine: a second is a 409.
#[utoipa::path(post, path = "/api/v1/repos/{owner}/{repo}/quarantine", tag = "quarantine",
    params(("owner" = String, Path), ("repo" = String, Path)),
    request_body = CreateQuarantine,
    responses((status = 201, description = "The new quarantine", body = QuarantineBody),
              (status = 401, body = crate::ErrorBody), (status = 403, body = crate::ErrorBody),
              (status = 404, description = "No such repository or test", body = crate::ErrorBody),
              (status = 409, description = "The test already has a live quarantine", body = crate::ErrorBody),
              (status = 422, description = "A bad field, named", body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn create_quarantine(
    State(state): State<AppState>,
    principal: Principal,
    Path((owner, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<(StatusCode, Json<QuarantineBody>), ApiError> {
    let repo = administered_repo(&state, &principal, &owner, &name).await?;
    let store = state.store();
    // The repository's policy: its quarantine duration, and CODEOWNERS for the owner.
    let policy = RepoPolicy::load(store, repo.id).await?;
    let mut request = CreateRequest::parse(&body, &policy.config)?;
    let not_found =
        || ApiError::not_found(format!("test {} not found in {}", request.test, repo.slug));
    let test = store
        .find_test(repo.id, request.test)
        .await?
        .ok_or_else(not_found)?;
    if request.owner.is_none() {
        request.owner = policy.owner(test.file.as_deref(), &test.key);
    }
    let now = OffsetDateTime::now_utc();
    let actor = principal.key();
    let added = store
        .add_quarantine(
            repo.id,
            &NewQuarantine {
                test: test.id,
                state: request.state,
                reason: request.reason,
                owner: request.owner,
                created_by: actor.clone(),
                created_at: now,
                expires_at: Some(now + Duration::days(i64::from(request.expires_in_days))),
            },
        )
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => not_found(),
            StoreError::Conflict(_) => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!(
                    "test {} already has a live quarantine in {}: release it first",
                    test.id, repo.slug
                ),
            ),
            other => other.into(),
        })?;
    store
        .audit(&NewAuditEntry {
            org: Some(repo.org),
            actor,
            action: "quarantine.created".to_owned(),
            target: format!("{}#test:{}", repo.slug, test.id.0),
            detail: serde_json::json!({
                "quarantine": added.id.0,
                "state": added.state.as_str(),
                "reason": added.reason,
                "owner": added.owner,
                "expires_at": added.expires_at.map(|t| t.unix_timestamp()),
            })
            .to_string(),
            at: now,
        })
        .await?;
    flakeguard_app::quarantine::count_change("created", 1);
    Ok((
        StatusCode::CREATED,
        Json(QuarantineBody::new(added, test.key, test.file)),
    ))
}

/// Releases the test's live quarantine: CI enforces its failures again.
#[utoipa::path(delete, path = "/api/v1/repos/{owner}/{repo}/quarantine/{test_id}", tag = "quarantine",
    params(("owner" = String, Path), ("repo" = String, Path), ("test_id" = i64, Path)),
    responses((status = 200, description = "The released quarantine", body = QuarantineBody),
              (status = 401, body = crate::ErrorBody), (status = 403, body = crate::ErrorBody),
              (status = 404, description = "No such repository or test, or no live quarantine", body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn release_quarantine(
    State(state): State<AppState>,
    principal: Principal,
    Path((owner, name, test_id)): Path<(String, String, String)>,
) -> Result<Json<QuarantineBody>, ApiError> {
    let repo = administered_repo(&state, &principal, &owner, &name).await?;
    let not_found = || {
        ApiError::not_found(format!(
            "test {test_id} has no live quarantine in {}",
            repo.slug
        ))
    };
    let id = TestCaseId(test_id.parse().map_err(|_| not_found())?);
    let store = state.store();
    let now = OffsetDateTime::now_utc();
    let actor = principal.key();
    let released = store
        .release_quarantine(repo.id, id, now, &actor)
        .await?
        .ok_or_else(not_found)?;
    store
        .audit(&NewAuditEntry {
            org: Some(repo.org),
            actor,
            action: "quarantine.released".to_owned(),
            target: format!("{}#test:{}", repo.slug, id.0),
            detail: serde_json::json!({
                "quarantine": released.id.0,
                "reason": "released through the API",
            })
            .to_string(),
            at: now,
        })
        .await?;
    flakeguard_app::quarantine::count_change("released", 1);
    let test = store.find_test(repo.id, id).await?.ok_or_else(not_found)?;
    Ok(Json(QuarantineBody::new(released, test.key, test.file)))
}

/// Whether a live quarantine still applies at `now` (it has not passed its expiry).
fn applies(q: &Quarantine, now: OffsetDateTime) -> bool {
    q.expires_at.is_none_or(|at| at > now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flakeguard_store::QuarantineId;

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
            released_by: None,
        };
        assert!(applies(&q(None), now));
        assert!(applies(&q(Some(now + Duration::hours(1))), now));
        assert!(!applies(&q(Some(now)), now));
        assert!(!applies(&q(Some(now - Duration::hours(1))), now));
    }

    fn parse(body: &str) -> Result<CreateRequest, String> {
        CreateRequest::parse(body.as_bytes(), &RepoConfig::default()).map_err(|e| e.message)
    }

    #[test]
    fn a_create_request_has_defaults() {
        assert_eq!(
            parse(r#"{"test_id": 7, "reason": " flaky on main "}"#),
            Ok(CreateRequest {
                test: TestCaseId(7),
                reason: "flaky on main".to_owned(),
                owner: None,
                expires_in_days: 30,
                state: QuarantineState::Active,
            })
        );
        let full = parse(
            r#"{"test_id": 7, "reason": "r", "owner": "@acme/cart", "expires_in_days": 3, "state": "proposed"}"#,
        )
        .unwrap();
        assert_eq!(
            (full.owner.as_deref(), full.expires_in_days, full.state),
            (Some("@acme/cart"), 3, QuarantineState::Proposed)
        );
    }

    #[test]
    fn a_bad_create_request_names_every_bad_field() {
        let message = parse(
            r#"{"test_id": "x", "reason": "", "owner": 3, "expires_in_days": 0, "state": "expired", "colour": 1}"#,
        )
        .unwrap_err();
        for field in [
            "test_id:",
            "reason:",
            "owner:",
            "expires_in_days:",
            "state:",
            "colour: unknown field",
        ] {
            assert!(message.contains(field), "{field} in {message}");
        }
        assert_eq!(
            parse("{}").unwrap_err(),
            "test_id: required; reason: required"
        );
        assert!(parse("[1]").unwrap_err().contains("JSON object"));
        assert!(parse("").unwrap_err().contains("not JSON"));
        assert!(
            parse(r#"{"test_id": 1, "reason": "r", "expires_in_days": 366}"#)
                .unwrap_err()
                .contains("expires_in_days")
        );
        assert!(
            parse(r#"{"test_id": -1, "reason": "r"}"#)
                .unwrap_err()
                .contains("test_id")
        );
    }
}
