//! `POST /api/v1/ingest`: one JUnit XML body (optionally gzip-encoded) or multipart files,
//! with the run's metadata in the query string. Bodies are bounded before and after
//! decompression; nothing is stored unless every report reads.

use std::io::Read;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use bytes::Bytes;
use flakeguard_app::jobs::{self, Job};
use flakeguard_app::{ReportFile, RunMeta, ingest_reports};
use flakeguard_store::{NewAuditEntry, RepoSlug, Repository, Scope, Source};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::pagination::ApiQuery;
use crate::repos::find_visible_repo;

/// Most files one multipart upload may carry.
const MAX_PARTS: usize = 1000;

pub(crate) fn routes(_max_upload: u64) -> Router<AppState> {
    Router::new().route("/api/v1/ingest", post(ingest))
}

/// The run's metadata.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct IngestParams {
    /// The repository, `owner/name`.
    repo: String,
    /// The commit SHA the tests ran on.
    commit: Option<String>,
    branch: Option<String>,
    /// The CI's run id (GitHub's workflow run id); re-runs share it. Default: from the
    /// reports' digest.
    run_id: Option<String>,
    /// The CI's run attempt (default 1).
    attempt: Option<u32>,
    /// The CI job's name (default none).
    job: Option<String>,
    /// The pull request number.
    pr: Option<i64>,
    /// When the run started, RFC 3339 (default: now).
    started_at: Option<String>,
}

/// What happened to an upload, and what each failure means.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IngestAnswer {
    /// The stored run's id.
    run_id: i64,
    /// False when this exact report of this run was already stored (answered 200).
    created: bool,
    repo: String,
    /// Distinct tests in the reports.
    testcases: u64,
    /// Tests whose final attempt failed or errored.
    failed: u64,
    /// New failures first; at most 1000 (see `failures_truncated`).
    failures: Vec<FailureAnswer>,
    failures_truncated: bool,
    /// The run in the read API.
    url: String,
    /// `queued`: the scoring job is in the queue. `deferred`: the queue could not be reached;
    /// the run is stored and the worker's outbox sweep will queue its scoring.
    scoring: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FailureAnswer {
    test_id: i64,
    key: String,
    /// `new`, `known_flaky` or `quarantined`.
    status: &'static str,
}

/// Upload a run's JUnit reports.
#[utoipa::path(post, path = "/api/v1/ingest", tag = "ingest",
    params(IngestParams),
    request_body(description = "One JUnit XML report (`application/xml`, optionally `Content-Encoding: gzip`) or `multipart/form-data` with one part per report", content_type = "application/xml"),
    responses(
        (status = 201, description = "Stored", body = IngestAnswer),
        (status = 200, description = "The same report of the same run was already stored", body = IngestAnswer),
        (status = 401, description = "Missing or unknown token", body = crate::ErrorBody),
        (status = 403, description = "The token lacks the ingest scope", body = crate::ErrorBody),
        (status = 404, description = "Unknown repository", body = crate::ErrorBody),
        (status = 413, description = "Body larger than MAX_UPLOAD_BYTES", body = crate::ErrorBody),
        (status = 415, description = "Unsupported content type or encoding", body = crate::ErrorBody),
        (status = 422, description = "A report or a parameter is invalid", body = crate::ErrorBody),
        (status = 429, description = "Rate limit reached; see Retry-After", body = crate::ErrorBody),
    ),
    security(("bearer" = [])))]
pub(crate) async fn ingest(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<IngestParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<IngestAnswer>), ApiError> {
    let now = OffsetDateTime::now_utc();
    let meta = run_meta(&params)?;
    let repo = target_repo(&state, &principal, &meta.repo, now).await?;
    principal.require(Scope::Ingest)?;

    let limit = state.settings().max_upload_bytes;
    let raw = read_body(body, limit).await?;
    let decoded = decode(&headers, raw, limit)?;
    let files = split_reports(&headers, decoded).await?;
    let result = ingest_reports(state.store(), &repo, &meta, &files, now).await?;
    // The run is stored: from here on the answer is a success. Its scoring job is pushed
    // (a repeat upload pushes again, harmless: one job per run); if the queue is away the
    // worker's outbox sweep pushes it later.
    let clock = std::time::Instant::now();
    let scoring = match jobs::enqueue(state.queue(), &Job::score(repo.id, result.run)).await {
        Ok(_) => "queued",
        Err(e) => {
            tracing::warn!(run = result.run.0, error = %e, "scoring not queued; the outbox sweep will queue it");
            "deferred"
        }
    };
    tracing::info!(
        repo = %repo.slug,
        run = result.run.0,
        created = result.created,
        testcases = result.testcases,
        failed = result.failed,
        parse_ms = result.timings.parse.as_millis() as u64,
        store_ms = result.timings.store.as_millis() as u64,
        classify_ms = result.timings.classify.as_millis() as u64,
        enqueue_ms = clock.elapsed().as_millis() as u64,
        scoring,
        "ingested"
    );
    let status = if result.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(IngestAnswer {
            run_id: result.run.0,
            created: result.created,
            repo: repo.slug.to_string(),
            testcases: result.testcases,
            failed: result.failed,
            failures: result
                .failures
                .iter()
                .map(|f| FailureAnswer {
                    test_id: f.test.0,
                    key: f.key.clone(),
                    status: f.status.as_str(),
                })
                .collect(),
            failures_truncated: result.failures_truncated,
            url: format!("/api/v1/repos/{}/runs/{}", repo.slug, result.run.0),
            scoring,
        }),
    ))
}

fn run_meta(p: &IngestParams) -> Result<RunMeta, ApiError> {
    let bad = |name: &str, expected: &str| {
        ApiError::invalid("invalid_query", format!("{name}: expected {expected}"))
    };
    let repo = RepoSlug::parse(&p.repo)
        .map_err(|e| ApiError::invalid("invalid_query", format!("repo: {e}")))?;
    let text =
        |name: &str, value: &Option<String>, max: usize| -> Result<Option<String>, ApiError> {
            match value.as_deref().map(str::trim) {
                None | Some("") => Ok(None),
                Some(v) if v.len() > max || v.chars().any(char::is_control) => Err(bad(
                    name,
                    &format!("at most {max} characters without control characters"),
                )),
                Some(v) => Ok(Some(v.to_owned())),
            }
        };
    let commit = text("commit", &p.commit, 100)?;
    let started_at = match &p.started_at {
        None => None,
        Some(s) => Some(OffsetDateTime::parse(s, &Rfc3339).map_err(|_| {
            bad(
                "started_at",
                "an RFC 3339 timestamp such as 2026-11-27T09:00:00Z",
            )
        })?),
    };
    if p.attempt == Some(0) {
        return Err(bad("attempt", "1 or more"));
    }
    if p.pr.is_some_and(|n| n <= 0) {
        return Err(bad("pr", "a pull request number (1 or more)"));
    }
    Ok(RunMeta {
        repo,
        commit,
        branch: text("branch", &p.branch, 255)?,
        run_id: text("run_id", &p.run_id, 100)?,
        attempt: p.attempt.unwrap_or(1),
        job: text("job", &p.job, 255)?.unwrap_or_default(),
        pr: p.pr,
        started_at,
        source: Source::Upload,
    })
}

/// The repository uploaded to: one the caller can see, or a new one when the caller may
/// create it (the operator always; a token when its organization allows it).
async fn target_repo(
    state: &AppState,
    principal: &Principal,
    slug: &RepoSlug,
    now: OffsetDateTime,
) -> Result<Repository, ApiError> {
    let store = state.store();
    if let Some(repo) = store.find_repository(slug).await? {
        return find_visible_repo(principal, Some(repo), slug);
    }
    let org = match principal {
        Principal::Operator => {
            store
                .ensure_organization(slug.owner(), slug.owner())
                .await?
                .0
        }
        Principal::Token {
            org,
            repo: None,
            scopes,
            ..
        } if scopes.contains(&Scope::Ingest) => match store.organization(*org).await? {
            Some(o) if o.creates_repositories => o,
            _ => return find_visible_repo(principal, None, slug),
        },
        Principal::Token { .. } => return find_visible_repo(principal, None, slug),
    };
    let (repo, created) = store.ensure_repository(org.id, slug).await?;
    if !principal.sees(&repo) {
        return find_visible_repo(principal, None, slug);
    }
    if created {
        store
            .audit(&NewAuditEntry {
                org: Some(org.id),
                actor: principal.key(),
                action: "repository.created_on_upload".to_owned(),
                target: slug.to_string(),
                detail: "{}".to_owned(),
                at: now,
            })
            .await?;
    }
    Ok(repo)
}

fn too_large(limit: u64, what: &str) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("{what} is larger than the limit of {limit} bytes (MAX_UPLOAD_BYTES)"),
    )
}

/// The body, refused as soon as it passes `limit`.
async fn read_body(body: Body, limit: u64) -> Result<Bytes, ApiError> {
    let mut stream = body.into_data_stream();
    let mut buffer = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                format!("the request body could not be read: {e}"),
            )
        })?;
        if (buffer.len() + chunk.len()) as u64 > limit {
            return Err(too_large(limit, "the request body"));
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buffer))
}

/// Undoes `Content-Encoding: gzip` (or a gzip file sent as is), bounded by `limit`.
fn decode(headers: &HeaderMap, raw: Bytes, limit: u64) -> Result<Bytes, ApiError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    let gzip = match encoding.as_deref() {
        None | Some("") | Some("identity") => raw.starts_with(&[0x1f, 0x8b]),
        Some("gzip") | Some("x-gzip") => true,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_encoding",
                format!("Content-Encoding {other:?} is not supported: send gzip or nothing"),
            ));
        }
    };
    if !gzip {
        return Ok(raw);
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(&raw[..])
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                format!("the body is not valid gzip: {e}"),
            )
        })?;
    if out.len() as u64 > limit {
        return Err(too_large(limit, "the decompressed body"));
    }
    Ok(Bytes::from(out))
}

/// One report, or one per multipart part.
async fn split_reports(headers: &HeaderMap, body: Bytes) -> Result<Vec<ReportFile>, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/xml");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "multipart/form-data" => {
            let boundary = multer::parse_boundary(content_type).map_err(|e| {
                ApiError::invalid("invalid_multipart", format!("Content-Type: {e}"))
            })?;
            let stream =
                futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
            let mut multipart = multer::Multipart::new(stream, boundary);
            let mut files = Vec::new();
            while let Some(field) = multipart.next_field().await.map_err(|e| {
                ApiError::invalid("invalid_multipart", format!("multipart body: {e}"))
            })? {
                if files.len() == MAX_PARTS {
                    return Err(ApiError::invalid(
                        "invalid_multipart",
                        format!("more than {MAX_PARTS} files in one upload"),
                    ));
                }
                let name = field
                    .file_name()
                    .or(field.name())
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("part {}", files.len() + 1));
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|e| ApiError::invalid("invalid_multipart", format!("{name}: {e}")))?;
                files.push(ReportFile {
                    name,
                    bytes: bytes.to_vec(),
                });
            }
            Ok(files)
        }
        "application/xml"
        | "text/xml"
        | "application/junit+xml"
        | "application/octet-stream"
        | "application/gzip"
        | "application/x-gzip" => Ok(vec![ReportFile {
            name: "body".to_owned(),
            bytes: body.to_vec(),
        }]),
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "Content-Type {other:?} is not supported: send application/xml or multipart/form-data"
            ),
        )),
    }
}
