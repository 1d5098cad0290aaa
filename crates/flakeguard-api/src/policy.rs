//! A repository's policy through the API (issue #6): its effective `.flakeguard.yml`
//! settings (`GET …/policy`, `read` scope), replacing them (`PUT …/policy`, `admin` scope,
//! YAML or the equivalent JSON, validated whole: a 422 lists every problem and stores
//! nothing), its CODEOWNERS (`PUT …/codeowners`, `admin`), and the quarantine plan
//! (`POST …/quarantine/plan`, `read`): the tests the policy — optionally with overrides —
//! would quarantine now, changing nothing. Changes are written to the audit log.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use bytes::Bytes;
use flakeguard_app::policy::{PlanCandidate, RepoPolicy, plan, settings_json};
use flakeguard_core::RepoConfig;
use flakeguard_core::config::Problem;
use flakeguard_store::{NewAuditEntry, NewPolicy, PolicyOrigin, Repository};
use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::quarantine::administered_repo;
use crate::repos::{readable_repo, rfc3339};

/// A policy longer than this is refused (a `.flakeguard.yml` is a few hundred bytes).
const MAX_POLICY_BYTES: usize = 64 * 1024;
/// GitHub ignores CODEOWNERS files over 3 MB; FlakeGuard takes up to 1 MiB.
const MAX_CODEOWNERS_BYTES: usize = 1024 * 1024;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/repos/{owner}/{repo}/policy",
            get(get_policy).put(put_policy),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/codeowners",
            put(put_codeowners),
        )
        .route(
            "/api/v1/repos/{owner}/{repo}/quarantine/plan",
            post(plan_quarantine),
        )
}

/// One problem of a policy.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProblemBody {
    /// The key path (`team_overrides.payments.flaky_threshold`, `exempted_tests[2]`); empty
    /// for the document as a whole.
    path: String,
    /// 1-based, when known (YAML bodies; JSON bodies when the key can be found).
    line: Option<usize>,
    column: Option<usize>,
    message: String,
}

impl ProblemBody {
    fn new(p: &Problem, positions: bool) -> Self {
        ProblemBody {
            path: p.path.clone(),
            line: p.line.filter(|_| positions),
            column: p.column.filter(|_| positions),
            message: p.message.clone(),
        }
    }
}

/// A 422 naming every problem of a policy.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PolicyErrorBody {
    error: PolicyErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PolicyErrorDetail {
    /// `invalid_policy`.
    code: String,
    /// Every problem, one per line: `line:column: path: message`.
    message: String,
    problems: Vec<ProblemBody>,
}

fn invalid_policy(problems: &[Problem], positions: bool) -> Response {
    let lines: Vec<String> = problems
        .iter()
        .map(|p| {
            if positions {
                p.to_string()
            } else {
                Problem {
                    line: None,
                    column: None,
                    ..p.clone()
                }
                .to_string()
            }
        })
        .collect();
    let body = PolicyErrorBody {
        error: PolicyErrorDetail {
            code: "invalid_policy".to_owned(),
            message: format!(
                "the policy has {} problem{}:\n{}",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" },
                lines.join("\n")
            ),
            problems: problems
                .iter()
                .map(|p| ProblemBody::new(p, positions))
                .collect(),
        },
    };
    (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
}

/// The repository's CODEOWNERS as stored.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CodeownersBody {
    /// `api`, or `file:<path>@<commit>` when read from the repository.
    source: Option<String>,
    updated_at: Option<String>,
    /// Rules in use.
    rules: usize,
    /// Lines skipped, and why.
    errors: Vec<CodeownersErrorBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CodeownersErrorBody {
    line: usize,
    message: String,
}

/// The repository's effective settings and where they come from.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PolicyBody {
    /// `default` (nothing stored), `api` or `file` (the repository's `.flakeguard.yml`).
    source: &'static str,
    /// When and by whom the policy was stored; `null` for the defaults.
    updated_at: Option<String>,
    updated_by: Option<String>,
    /// The commit `.flakeguard.yml` was read at (`file`).
    commit: Option<String>,
    /// Every setting with its effective value, in the shape of `.flakeguard.yml` (so this
    /// object, or part of it, can be sent back with `PUT`).
    #[schema(value_type = Object)]
    settings: Value,
    /// The stored policy as written (YAML), `null` for the defaults.
    text: Option<String>,
    /// Problems of a stored `.flakeguard.yml` that does not parse (the defaults apply).
    problems: Vec<ProblemBody>,
    codeowners: Option<CodeownersBody>,
}

impl PolicyBody {
    fn new(policy: &RepoPolicy) -> Self {
        let stored = policy.stored.as_ref();
        let has_policy = stored.is_some_and(|s| s.source.is_some());
        let codeowners = stored.filter(|s| s.codeowners.is_some()).map(|s| {
            let parsed = policy.codeowners.clone().unwrap_or_default();
            CodeownersBody {
                source: s.codeowners_source.clone(),
                updated_at: s.codeowners_updated_at.map(rfc3339),
                rules: parsed.rules().len(),
                errors: parsed
                    .errors()
                    .iter()
                    .map(|e| CodeownersErrorBody {
                        line: e.line,
                        message: e.message.clone(),
                    })
                    .collect(),
            }
        });
        PolicyBody {
            source: policy.source.as_str(),
            updated_at: stored.and_then(|s| s.updated_at).map(rfc3339),
            updated_by: stored.and_then(|s| s.updated_by.clone()),
            commit: stored.and_then(|s| s.commit.clone()),
            settings: policy.settings_json(),
            text: stored.filter(|_| has_policy).and_then(|s| s.source.clone()),
            problems: policy
                .problems
                .iter()
                .map(|p| ProblemBody::new(p, true))
                .collect(),
            codeowners,
        }
    }
}

/// The repository's effective policy: every `.flakeguard.yml` setting with its value
/// (defaults filled), where it comes from, and its CODEOWNERS.
#[utoipa::path(get, path = "/api/v1/repos/{owner}/{repo}/policy", tag = "policy",
    params(("owner" = String, Path), ("repo" = String, Path)),
    responses((status = 200, description = "The effective settings", body = PolicyBody),
              (status = 401, body = crate::ErrorBody), (status = 403, body = crate::ErrorBody),
              (status = 404, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn get_policy(
    State(state): State<AppState>,
    principal: Principal,
    Path((owner, name)): Path<(String, String)>,
) -> Result<Json<PolicyBody>, ApiError> {
    let repo = readable_repo(&state, &principal, &owner, &name).await?;
    let policy = RepoPolicy::load(state.store(), repo.id).await?;
    Ok(Json(PolicyBody::new(&policy)))
}

/// What kind of text a body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Yaml,
    Json,
}

/// YAML unless the content type says JSON; anything but YAML, JSON or text is 415.
fn body_kind(headers: &HeaderMap) -> Result<BodyKind, ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(BodyKind::Yaml);
    };
    let media = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "application/json" => Ok(BodyKind::Json),
        "" | "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml"
        | "text/plain" => Ok(BodyKind::Yaml),
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "content type {other:?}: send the policy as application/yaml (or text/plain) or as a JSON object (application/json)"
            ),
        )),
    }
}

fn utf8(body: &[u8], what: &str, max: usize) -> Result<String, ApiError> {
    if body.len() > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the {what} is {} bytes; at most {max} are accepted",
                body.len()
            ),
        ));
    }
    String::from_utf8(body.to_vec()).map_err(|e| {
        ApiError::invalid(
            "invalid_body",
            format!(
                "the {what} is not UTF-8 text (byte {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// A JSON body as the YAML to store: a JSON object, written out as YAML with its keys in the
/// order sent.
fn json_as_yaml(text: &str) -> Result<String, ApiError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ApiError::invalid("invalid_body", format!("the body is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::invalid(
            "invalid_body",
            "the body must be a JSON object of settings such as {\"flaky_threshold\": 0.7}",
        ));
    }
    // JSON is YAML: read it as YAML to keep its key order (team overrides match in order).
    let ordered: serde_yaml_ng::Value = serde_yaml_ng::from_str(text)
        .map_err(|e| ApiError::invalid("invalid_body", format!("the body is not JSON: {e}")))?;
    serde_yaml_ng::to_string(&ordered).map_err(ApiError::internal)
}

/// Replaces the repository's policy with the settings sent: `.flakeguard.yml` as YAML
/// (`application/yaml` or `text/plain`) or the equivalent JSON object. The whole policy is
/// checked first: a 422 lists every problem (key path, `line:column`, message) and stores
/// nothing. Keys left out take their defaults.
#[utoipa::path(put, path = "/api/v1/repos/{owner}/{repo}/policy", tag = "policy",
    params(("owner" = String, Path), ("repo" = String, Path)),
    request_body(content = String, description = "The policy as YAML (a `.flakeguard.yml`), or the same settings as a JSON object", content_type = "application/yaml"),
    responses((status = 200, description = "Stored; the effective settings", body = PolicyBody),
              (status = 401, body = crate::ErrorBody), (status = 403, body = crate::ErrorBody),
              (status = 404, body = crate::ErrorBody),
              (status = 413, body = crate::ErrorBody), (status = 415, body = crate::ErrorBody),
              (status = 422, description = "Every problem of the policy, nothing stored", body = PolicyErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn put_policy(
    State(state): State<AppState>,
    principal: Principal,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let repo = administered_repo(&state, &principal, &owner, &name).await?;
    let kind = body_kind(&headers)?;
    let text = utf8(&body, "policy", MAX_POLICY_BYTES)?;
    let source = match kind {
        BodyKind::Yaml => text.clone(),
        BodyKind::Json => json_as_yaml(&text)?,
    };
    // Positions are reported in the text as sent (JSON is YAML).
    if let Err(problems) = RepoConfig::parse(&text) {
        return Ok(invalid_policy(&problems, true));
    }
    if let Err(problems) = RepoConfig::parse(&source) {
        // The JSON written out as YAML must say the same; it always does, but never store
        // what would not parse.
        return Ok(invalid_policy(&problems, false));
    }
    let store = state.store();
    let now = OffsetDateTime::now_utc();
    let actor = principal.key();
    let stored = store
        .put_repo_policy(
            repo.id,
            &NewPolicy {
                source: source.clone(),
                origin: PolicyOrigin::Api,
                commit: None,
                updated_at: now,
                updated_by: actor.clone(),
            },
        )
        .await?;
    audit(
        &state,
        &repo,
        actor,
        "policy.updated",
        serde_json::json!({ "origin": "api", "text": source }),
        now,
    )
    .await?;
    let policy = RepoPolicy::from_stored(Some(stored), &RepoConfig::default());
    Ok(Json(PolicyBody::new(&policy)).into_response())
}

/// Replaces the repository's CODEOWNERS (raw text, as in the repository): quarantines take
/// their owner from it. Lines GitHub would skip are skipped and listed, with their numbers.
#[utoipa::path(put, path = "/api/v1/repos/{owner}/{repo}/codeowners", tag = "policy",
    params(("owner" = String, Path), ("repo" = String, Path)),
    request_body(content = String, description = "The CODEOWNERS file", content_type = "text/plain"),
    responses((status = 200, description = "Stored; the rules in use and the lines skipped", body = CodeownersBody),
              (status = 401, body = crate::ErrorBody), (status = 403, body = crate::ErrorBody),
              (status = 404, body = crate::ErrorBody), (status = 413, body = crate::ErrorBody),
              (status = 422, description = "Not UTF-8 text", body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn put_codeowners(
    State(state): State<AppState>,
    principal: Principal,
    Path((owner, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<CodeownersBody>, ApiError> {
    let repo = administered_repo(&state, &principal, &owner, &name).await?;
    let text = utf8(&body, "CODEOWNERS file", MAX_CODEOWNERS_BYTES)?;
    let parsed = flakeguard_core::Codeowners::parse(&text);
    let now = OffsetDateTime::now_utc();
    let stored = state
        .store()
        .put_codeowners(repo.id, &text, "api", now)
        .await?;
    audit(
        &state,
        &repo,
        principal.key(),
        "codeowners.updated",
        serde_json::json!({
            "source": "api",
            "rules": parsed.rules().len(),
            "skipped_lines": parsed.errors().iter().map(|e| e.line).collect::<Vec<_>>(),
        }),
        now,
    )
    .await?;
    Ok(Json(CodeownersBody {
        source: stored.codeowners_source,
        updated_at: stored.codeowners_updated_at.map(rfc3339),
        rules: parsed.rules().len(),
        errors: parsed
            .errors()
            .iter()
            .map(|e| CodeownersErrorBody {
                line: e.line,
                message: e.message.clone(),
            })
            .collect(),
    }))
}

async fn audit(
    state: &AppState,
    repo: &Repository,
    actor: String,
    action: &str,
    detail: Value,
    at: OffsetDateTime,
) -> Result<(), ApiError> {
    state
        .store()
        .audit(&NewAuditEntry {
            org: Some(repo.org),
            actor,
            action: action.to_owned(),
            target: repo.slug.to_string(),
            detail: detail.to_string(),
            at,
        })
        .await?;
    Ok(())
}

/// What `POST …/quarantine/plan` may ask for.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[allow(dead_code)] // Read by hand (see `plan_request`); here for the OpenAPI schema.
pub(crate) struct PlanRequest {
    /// How far back recent failures count, in days (1–365), instead of the policy's.
    lookback_days: Option<u32>,
    /// Settings to try instead of the stored ones (any `.flakeguard.yml` keys; each replaces
    /// the stored key whole).
    #[schema(value_type = Option<Object>)]
    policy: Option<Value>,
}

/// One test the policy would quarantine.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CandidateBody {
    test_id: i64,
    /// The test's identity as one string (`scope › classname › name[variant]`).
    key: String,
    file: Option<String>,
    probability: f64,
    /// `flaky` (a broken test is never a candidate: it needs a fix).
    status: &'static str,
    /// `quarantine`.
    recommendation: &'static str,
    /// Why: the verdict, the threshold crossed, the evidence.
    reasons: Vec<String>,
    /// The first owner CODEOWNERS names for the test's file.
    owner: Option<String>,
    /// It has a live quarantine already.
    already_quarantined: bool,
}

impl CandidateBody {
    fn new(c: PlanCandidate) -> Self {
        CandidateBody {
            test_id: c.test.0,
            key: c.key.to_string(),
            file: c.file,
            probability: c.probability,
            status: c.status.as_str(),
            recommendation: c.recommendation.as_str(),
            reasons: c.reasons,
            owner: c.owner,
            already_quarantined: c.already_quarantined,
        }
    }
}

/// The quarantine plan.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PlanBody {
    /// Most likely flaky first.
    candidates: Vec<CandidateBody>,
    /// The settings the plan was made with (the stored ones with the request's overrides).
    #[schema(value_type = Object)]
    policy: Value,
}

/// The settings the plan request asks for, or every problem with them.
fn plan_config(body: &[u8], base: &RepoConfig) -> Result<RepoConfig, Box<Response>> {
    let bad =
        |message: String| Box::new(ApiError::invalid("invalid_body", message).into_response());
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(base.clone());
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("the body is not JSON: {e}")))?;
    let Value::Object(fields) = value else {
        return Err(bad(
            "the body must be a JSON object such as {\"lookback_days\": 14, \"policy\": {\"flaky_threshold\": 0.5}}"
                .to_owned(),
        ));
    };
    let mut problems = Vec::new();
    for key in fields.keys() {
        if !matches!(key.as_str(), "lookback_days" | "policy") {
            problems.push(format!(
                "{key}: unknown field (expected lookback_days, policy)"
            ));
        }
    }
    let lookback = match fields.get("lookback_days") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64().filter(|d| (1..=365).contains(d)) {
            Some(d) => u32::try_from(d).ok(),
            None => {
                problems.push(format!(
                    "lookback_days: {v} is not a number of days from 1 to 365"
                ));
                None
            }
        },
    };
    let overrides = match fields.get("policy") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(o)) => o.clone(),
        Some(v) => {
            problems.push(format!("policy: {v} is not an object of settings"));
            Map::new()
        }
    };
    if !problems.is_empty() {
        return Err(bad(problems.join("; ")));
    }
    let mut config = if overrides.is_empty() {
        base.clone()
    } else {
        let mut merged = match settings_json(base) {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        for (k, v) in overrides {
            merged.insert(k, v);
        }
        RepoConfig::parse(&Value::Object(merged).to_string())
            .map_err(|problems| Box::new(invalid_policy(&problems, false)))?
    };
    if let Some(days) = lookback {
        config.policy.lookback_days = days;
    }
    Ok(config)
}

/// The tests the repository's policy would quarantine now, with the reasons — optionally
/// with another lookback or other settings. Changes nothing.
#[utoipa::path(post, path = "/api/v1/repos/{owner}/{repo}/quarantine/plan", tag = "quarantine",
    params(("owner" = String, Path), ("repo" = String, Path)),
    request_body(content = Option<PlanRequest>, description = "Optional overrides", content_type = "application/json"),
    responses((status = 200, description = "The candidates and the settings used", body = PlanBody),
              (status = 401, body = crate::ErrorBody), (status = 403, body = crate::ErrorBody),
              (status = 404, body = crate::ErrorBody),
              (status = 422, description = "A bad field or setting, named", body = PolicyErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn plan_quarantine(
    State(state): State<AppState>,
    principal: Principal,
    Path((owner, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let repo = readable_repo(&state, &principal, &owner, &name).await?;
    let store = state.store();
    let stored = RepoPolicy::load(store, repo.id).await?;
    let config = match plan_config(&body, &stored.config) {
        Ok(config) => config,
        Err(response) => return Ok(*response),
    };
    let policy = stored.with_config(config);
    let candidates = plan(store, repo.id, &policy, OffsetDateTime::now_utc()).await?;
    Ok(Json(PlanBody {
        candidates: candidates.into_iter().map(CandidateBody::new).collect(),
        policy: policy.settings_json(),
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_requests_name_every_bad_field() {
        let base = RepoConfig::default();
        assert_eq!(plan_config(b"", &base).unwrap(), base);
        assert_eq!(plan_config(b"{}", &base).unwrap(), base);
        let c = plan_config(
            br#"{"lookback_days": 30, "policy": {"flaky_threshold": 0.5}}"#,
            &base,
        )
        .unwrap();
        assert_eq!(
            (
                c.policy.lookback_days,
                c.policy.flaky_threshold,
                c.policy.warn_threshold
            ),
            (30, 0.5, 0.3)
        );
        for body in [
            &br#"{"lookback_days": 0}"#[..],
            br#"{"lookback": 3}"#,
            br#"{"policy": 3}"#,
            br#"[1]"#,
            b"nope",
            br#"{"policy": {"flaky_treshold": 0.5}}"#,
        ] {
            let response = plan_config(body, &base).unwrap_err();
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        }
    }

    #[test]
    fn json_bodies_are_stored_as_yaml_in_their_order() {
        let yaml = json_as_yaml(
            r#"{"team_overrides": {"b": {"min_occurrences": 3}, "a": {"min_occurrences": 4}}}"#,
        )
        .unwrap();
        let config = RepoConfig::parse(&yaml).unwrap();
        let teams: Vec<&str> = config
            .team_overrides
            .iter()
            .map(|o| o.team.as_str())
            .collect();
        assert_eq!(teams, ["b", "a"], "{yaml}");
        assert!(json_as_yaml("[1]").is_err());
        assert!(json_as_yaml("{").is_err());
    }

    #[test]
    fn content_types_choose_the_reader() {
        let mut headers = HeaderMap::new();
        assert_eq!(body_kind(&headers).unwrap(), BodyKind::Yaml);
        for (ct, kind) in [
            ("application/json; charset=utf-8", BodyKind::Json),
            ("application/yaml", BodyKind::Yaml),
            ("text/plain", BodyKind::Yaml),
        ] {
            headers.insert(header::CONTENT_TYPE, ct.parse().unwrap());
            assert_eq!(body_kind(&headers).unwrap(), kind, "{ct}");
        }
        headers.insert(header::CONTENT_TYPE, "application/xml".parse().unwrap());
        assert_eq!(
            body_kind(&headers).unwrap_err().status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
    }
}
