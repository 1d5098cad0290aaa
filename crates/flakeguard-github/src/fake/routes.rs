//! The fake's routes: a gate that records, injects faults and authenticates every request
//! like GitHub; GitHub's error shapes and pagination; the token, Actions, contents and pulls
//! endpoints (check runs and issues have their own modules).

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{
    IssuedToken, RecordedRequest, RecordedRerun, Shared, State as FakeState, checks, issues, keys,
    lock,
};

const DOCS: &str = "https://docs.github.com/rest";
const RATE_LIMIT: u64 = 5000;

pub(super) fn router(state: Shared) -> Router {
    Router::new()
        .route("/app/installations/{id}/access_tokens", post(create_token))
        .route(
            "/repos/{owner}/{repo}/actions/runs/{run_id}/artifacts",
            get(list_artifacts),
        )
        .route(
            "/repos/{owner}/{repo}/actions/artifacts/{id}/zip",
            get(artifact_zip),
        )
        .route(
            "/repos/{owner}/{repo}/actions/runs/{run_id}/rerun-failed-jobs",
            post(rerun_failed_jobs),
        )
        .route("/blob/{key}", get(blob))
        .route(
            "/repos/{owner}/{repo}/check-runs",
            post(checks::create_check_run),
        )
        .route(
            "/repos/{owner}/{repo}/check-runs/{id}",
            patch(checks::update_check_run),
        )
        .route("/repos/{owner}/{repo}/issues", post(issues::create_issue))
        .route("/search/issues", get(issues::search_issues))
        .route(
            "/repos/{owner}/{repo}/issues/{number}/comments",
            get(issues::list_comments).post(issues::create_comment),
        )
        .route(
            "/repos/{owner}/{repo}/issues/comments/{id}",
            patch(issues::update_comment),
        )
        .route("/repos/{owner}/{repo}/contents/{*path}", get(get_contents))
        .route(
            "/repos/{owner}/{repo}/commits/{sha}/pulls",
            get(pulls_for_commit),
        )
        .fallback(|| async { not_found() })
        .layer(middleware::from_fn_with_state(state.clone(), gate))
        .with_state(state)
}

pub(super) fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = vec![0u8; len];
    // Without system randomness nothing in the fake (keys included) could work anyway.
    aws_lc_rs::rand::fill(&mut bytes).expect("system randomness");
    bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

/// A refusal in GitHub's error shape: `{"message", "documentation_url"}` and, for validation
/// failures, `errors`.
pub(super) struct Refusal(StatusCode, Value);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, axum::Json(self.1)).into_response()
    }
}

pub(super) fn refusal(status: StatusCode, message: &str) -> Refusal {
    Refusal(
        status,
        json!({ "message": message, "documentation_url": DOCS }),
    )
}

pub(super) fn validation_refusal(resource: &str, field: &str, message: String) -> Refusal {
    Refusal(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({
            "message": "Validation Failed",
            "errors": [{ "resource": resource, "code": "invalid", "field": field, "message": message }],
            "documentation_url": DOCS,
        }),
    )
}

pub(super) fn github_error(status: StatusCode, message: &str) -> Response {
    refusal(status, message).into_response()
}

pub(super) fn not_found() -> Response {
    github_error(StatusCode::NOT_FOUND, "Not Found")
}

pub(super) fn validation_failed(resource: &str, field: &str, message: String) -> Response {
    validation_refusal(resource, field, message).into_response()
}

pub(super) fn parse_json(body: &Bytes) -> Result<Value, Refusal> {
    match serde_json::from_slice::<Value>(body) {
        Ok(value) if value.is_object() => Ok(value),
        _ => Err(refusal(StatusCode::BAD_REQUEST, "Problems parsing JSON")),
    }
}

fn now_rfc3339(offset: time::Duration) -> String {
    (OffsetDateTime::now_utc() + offset)
        .replace_nanosecond(0)
        .unwrap_or_else(|_| OffsetDateTime::now_utc())
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// Records the request, then answers injected faults and authentication failures before
/// the handler runs; every API answer gets `x-ratelimit-*` headers.
async fn gate(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let is_blob = request.uri().path().starts_with("/blob/");
    let early = admit(&state, &request);
    let mut response = match early {
        Some(response) => response,
        None => next.run(request).await,
    };
    if !is_blob {
        let remaining = lock(&state).remaining;
        let headers = response.headers_mut();
        let reset = OffsetDateTime::now_utc().unix_timestamp() + 3600;
        headers
            .entry("x-ratelimit-limit")
            .or_insert(HeaderValue::from(RATE_LIMIT));
        headers
            .entry("x-ratelimit-remaining")
            .or_insert(HeaderValue::from(remaining));
        headers
            .entry("x-ratelimit-reset")
            .or_insert(HeaderValue::from(reset));
        headers
            .entry("x-ratelimit-used")
            .or_insert(HeaderValue::from(RATE_LIMIT - remaining));
        headers
            .entry("x-ratelimit-resource")
            .or_insert(HeaderValue::from_static("core"));
    }
    response
}

/// Records the request; answers it here when a fault is due or GitHub would refuse it.
fn admit(state: &Shared, request: &Request) -> Option<Response> {
    let header = |name: header::HeaderName| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let path = request.uri().path().to_owned();
    let authorization = header(header::AUTHORIZATION);
    let mut state = lock(state);
    state.requests.push(RecordedRequest {
        method: request.method().to_string(),
        path: path.clone(),
        query: request.uri().query().map(str::to_owned),
        authorization: authorization.clone(),
        host: header(header::HOST),
        accept: header(header::ACCEPT),
        api_version: header(header::HeaderName::from_static("x-github-api-version")),
        user_agent: header(header::USER_AGENT),
    });
    if path.starts_with("/blob/") {
        return None;
    }
    state.remaining = state.remaining.saturating_sub(1);
    if !request.headers().contains_key(header::USER_AGENT) {
        // GitHub refuses requests without a User-Agent.
        return Some(github_error(
            StatusCode::FORBIDDEN,
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header",
        ));
    }
    injected_fault(&mut state).or_else(|| {
        authenticate(&state, &path, authorization)
            .err()
            .map(IntoResponse::into_response)
    })
}

fn injected_fault(state: &mut FakeState) -> Option<Response> {
    if state.fail_next.0 > 0 {
        state.fail_next.0 -= 1;
        let status =
            StatusCode::from_u16(state.fail_next.1).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Some(github_error(status, "Server Error"));
    }
    if state.rate_limit_next.0 > 0 {
        state.rate_limit_next.0 -= 1;
        let wait = state.rate_limit_wait.as_secs();
        let mut response = if state.rate_limit_next.1 {
            let mut response = github_error(
                StatusCode::FORBIDDEN,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait));
            response
        } else {
            let mut response = github_error(
                StatusCode::FORBIDDEN,
                "API rate limit exceeded for installation.",
            );
            let reset =
                OffsetDateTime::now_utc().unix_timestamp() + i64::try_from(wait).unwrap_or(0);
            response
                .headers_mut()
                .insert("x-ratelimit-remaining", HeaderValue::from(0));
            response
                .headers_mut()
                .insert("x-ratelimit-reset", HeaderValue::from(reset));
            response
        };
        response
            .headers_mut()
            .insert("x-ratelimit-limit", HeaderValue::from(RATE_LIMIT));
        return Some(response);
    }
    None
}

fn authenticate(
    state: &FakeState,
    path: &str,
    authorization: Option<String>,
) -> Result<(), Refusal> {
    let credential = authorization.as_deref().and_then(|value| {
        value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("token "))
    });
    if path.starts_with("/app/") {
        let Some(jwt) = credential else {
            return Err(refusal(
                StatusCode::UNAUTHORIZED,
                "A JSON web token could not be decoded",
            ));
        };
        return keys::verify_app_jwt(jwt, &state.public_key, state.app_id)
            .map_err(|message| refusal(StatusCode::UNAUTHORIZED, &message));
    }
    let valid = credential.is_some_and(|token| {
        token.starts_with("ghs_")
            && token.len() > 40
            && state
                .tokens
                .get(token)
                .is_some_and(|issued| issued.expires_at > OffsetDateTime::now_utc())
    });
    if valid {
        Ok(())
    } else {
        Err(refusal(StatusCode::UNAUTHORIZED, "Bad credentials"))
    }
}

async fn create_token(State(state): State<Shared>, Path(id): Path<i64>) -> Response {
    let mut state = lock(&state);
    if !state.installations.contains_key(&id) {
        return not_found();
    }
    let token = format!("ghs_{}", random_token(40));
    let ttl = time::Duration::try_from(state.token_ttl).unwrap_or(time::Duration::HOUR);
    let expires_at = now_rfc3339(ttl);
    state.tokens.insert(
        token.clone(),
        IssuedToken {
            expires_at: OffsetDateTime::now_utc() + ttl,
        },
    );
    (
        StatusCode::CREATED,
        axum::Json(json!({
            "token": token,
            "expires_at": expires_at,
            "permissions": {
                "actions": "read", "checks": "write", "contents": "read",
                "issues": "write", "metadata": "read", "pull_requests": "write"
            },
            "repository_selection": "all",
        })),
    )
        .into_response()
}

/// One page of `items` and the `Link` header pointing at the others.
pub(super) fn paginate<T: Clone>(
    state: &FakeState,
    items: &[T],
    path: &str,
    query: &HashMap<String, String>,
) -> (Vec<T>, Option<HeaderValue>) {
    let mut per_page = query
        .get("per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    if let Some(cap) = state.page_size {
        per_page = per_page.min(cap.max(1));
    }
    let page = query
        .get("page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let last = items.len().div_ceil(per_page).max(1);
    let start = (page - 1).saturating_mul(per_page).min(items.len());
    let end = (start + per_page).min(items.len());
    let link_to = |target: usize| {
        let mut url = reqwest::Url::parse(&format!("{}{path}", state.base_url))
            .expect("the fake's own URL parses");
        {
            let mut pairs = url.query_pairs_mut();
            let mut kept: Vec<_> = query
                .iter()
                .filter(|(k, _)| *k != "page" && *k != "per_page")
                .collect();
            kept.sort();
            for (key, value) in kept {
                pairs.append_pair(key, value);
            }
            pairs.append_pair("per_page", &per_page.to_string());
            pairs.append_pair("page", &target.to_string());
        }
        url.to_string()
    };
    let mut links = Vec::new();
    if page > 1 {
        links.push(format!("<{}>; rel=\"prev\"", link_to(page - 1)));
    }
    if page < last {
        links.push(format!("<{}>; rel=\"next\"", link_to(page + 1)));
        links.push(format!("<{}>; rel=\"last\"", link_to(last)));
    }
    if page > 1 {
        links.push(format!("<{}>; rel=\"first\"", link_to(1)));
    }
    let header = (!links.is_empty())
        .then(|| HeaderValue::from_str(&links.join(", ")).ok())
        .flatten();
    (items[start..end].to_vec(), header)
}

pub(super) fn with_link(body: Value, link: Option<HeaderValue>) -> Response {
    let mut response = axum::Json(body).into_response();
    if let Some(link) = link {
        response.headers_mut().insert(header::LINK, link);
    }
    response
}

async fn list_artifacts(
    State(state): State<Shared>,
    Path((owner, repo, run_id)): Path<(String, String, i64)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let state = lock(&state);
    let all: Vec<Value> = state
        .artifacts
        .iter()
        .filter(|a| a.owner == owner && a.repo == repo && a.run_id == run_id)
        .map(|a| {
            let url = format!(
                "{}/repos/{owner}/{repo}/actions/artifacts/{}",
                state.base_url, a.id
            );
            json!({
                "id": a.id,
                "node_id": format!("MDg6QXJ0aWZhY3Q{}", a.id),
                "name": a.name,
                "size_in_bytes": a.bytes.len(),
                "url": url,
                "archive_download_url": format!("{url}/zip"),
                "expired": false,
                "workflow_run": { "id": run_id },
            })
        })
        .collect();
    let path = format!("/repos/{owner}/{repo}/actions/runs/{run_id}/artifacts");
    let (page, link) = paginate(&state, &all, &path, &query);
    with_link(json!({ "total_count": all.len(), "artifacts": page }), link)
}

async fn artifact_zip(
    State(state): State<Shared>,
    Path((owner, repo, id)): Path<(String, String, i64)>,
) -> Response {
    let state = lock(&state);
    let Some(artifact) = state
        .artifacts
        .iter()
        .find(|a| a.owner == owner && a.repo == repo && a.id == id)
    else {
        return not_found();
    };
    let location = format!("{}/blob/{}", state.blob_url, artifact.blob_key);
    match HeaderValue::from_str(&location) {
        Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        Err(_) => github_error(StatusCode::INTERNAL_SERVER_ERROR, "bad blob location"),
    }
}

/// The blob store behind the redirect: signed URL only, no GitHub credentials.
async fn blob(
    State(state): State<Shared>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
    if headers.contains_key(header::AUTHORIZATION) {
        return (
            StatusCode::BAD_REQUEST,
            "Authorization header is not allowed on a signed blob URL",
        )
            .into_response();
    }
    let state = lock(&state);
    match state.artifacts.iter().find(|a| a.blob_key == key) {
        Some(artifact) if state.blob_chunked => {
            let chunks: Vec<Result<Bytes, std::convert::Infallible>> = artifact
                .bytes
                .chunks(1024)
                .map(|chunk| Ok(Bytes::copy_from_slice(chunk)))
                .collect();
            let body = axum::body::Body::from_stream(futures_util::stream::iter(chunks));
            ([(header::CONTENT_TYPE, "application/zip")], body).into_response()
        }
        Some(artifact) => (
            [(header::CONTENT_TYPE, "application/zip")],
            artifact.bytes.clone(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "The specified blob does not exist.").into_response(),
    }
}

async fn rerun_failed_jobs(
    State(state): State<Shared>,
    Path((owner, repo, run_id)): Path<(String, String, i64)>,
) -> Response {
    lock(&state).reruns.push(RecordedRerun {
        owner,
        repo,
        run_id,
    });
    (StatusCode::CREATED, axum::Json(json!({}))).into_response()
}

async fn get_contents(
    State(state): State<Shared>,
    Path((owner, repo, path)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let state = lock(&state);
    let found = state.files.iter().find(|((o, r, p, git_ref), _)| {
        *o == owner
            && *r == repo
            && *p == path
            && query.get("ref").is_none_or(|want| want == git_ref)
    });
    let Some((_, content)) = found else {
        return not_found();
    };
    let encoded = STANDARD.encode(content.as_bytes());
    // GitHub wraps the base64 content at 60 characters.
    let wrapped: Vec<&str> = encoded
        .as_bytes()
        .chunks(60)
        .map(|line| std::str::from_utf8(line).unwrap_or_default())
        .collect();
    let name = path.rsplit('/').next().unwrap_or_default();
    axum::Json(json!({
        "type": "file",
        "encoding": "base64",
        "size": content.len(),
        "name": name,
        "path": path,
        "content": wrapped.join("\n") + "\n",
    }))
    .into_response()
}

async fn pulls_for_commit(
    State(state): State<Shared>,
    Path((owner, repo, sha)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let state = lock(&state);
    let numbers = state
        .pulls
        .get(&(owner.clone(), repo.clone(), sha.clone()))
        .cloned()
        .unwrap_or_default();
    let all: Vec<Value> = numbers
        .iter()
        .map(|number| {
            json!({
                "number": number,
                "state": "open",
                "url": format!("{}/repos/{owner}/{repo}/pulls/{number}", state.base_url),
                "html_url": format!("https://github.com/{owner}/{repo}/pull/{number}"),
            })
        })
        .collect();
    let path = format!("/repos/{owner}/{repo}/commits/{sha}/pulls");
    let (page, link) = paginate(&state, &all, &path, &query);
    with_link(Value::Array(page), link)
}
