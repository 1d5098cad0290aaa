//! The runbook's health contracts: `GET :3000/health` → `{"status":"ok","timestamp":…}`,
//! `/health/ready` (200 when the database answers, else 503 with the reason; `degraded` when
//! only the queue is away, because uploads are still accepted then), `/health/live`;
//! `GET :3001/health` → `{"status":"ok","queues":[{"name":…,"pending":…,…}]}`, `degraded`
//! with 503 when the queue or the database cannot be reached; `GET :3001/metrics`.

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use flakeguard_app::jobs::JobKind;

use crate::AppState;

/// How long readiness waits for the database before calling it unavailable.
const READY_TIMEOUT: Duration = Duration::from_secs(3);

pub(crate) fn api_routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
}

pub(crate) fn worker_routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(worker_health))
        .route("/metrics", get(metrics))
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// Always `ok` when the process answers.
    status: &'static str,
    /// RFC 3339.
    timestamp: String,
    version: &'static str,
    uptime_seconds: u64,
}

pub(crate) fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// The process answers.
#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "The API process is up", body = Health)))]
pub(crate) async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        timestamp: now_rfc3339(),
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.inner.started.elapsed().as_secs(),
    })
}

async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The database answers (and, with the queue issue, the queue).
#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses((status = 200, description = "Ready to serve"),
              (status = 503, description = "A dependency does not answer; `reason` says which")))]
pub(crate) async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let store = state.store();
    let (database, queue) = tokio::join!(
        within(READY_TIMEOUT, store.ping()),
        within(READY_TIMEOUT, state.queue().ping())
    );
    let backend = state.queue().backend();
    let queue_check = match &queue {
        Ok(()) => json!({ "status": "ok", "backend": backend }),
        Err(reason) => json!({ "status": "unavailable", "backend": backend, "reason": reason }),
    };
    match database {
        Ok(()) => {
            let status = match &queue {
                Ok(()) => "ok",
                Err(reason) => {
                    tracing::warn!(%reason, "degraded: queue unavailable; uploads are kept for the outbox sweep");
                    "degraded"
                }
            };
            (
                StatusCode::OK,
                Json(json!({
                    "status": status,
                    "timestamp": now_rfc3339(),
                    "checks": {
                        "database": { "status": "ok", "backend": store.backend() },
                        "queue": queue_check,
                    },
                })),
            )
        }
        Err(reason) => {
            tracing::warn!(%reason, "not ready: database");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "status": "unavailable",
                    "timestamp": now_rfc3339(),
                    "reason": format!("database ({}): {reason}", store.backend()),
                    "checks": {
                        "database": { "status": "unavailable", "backend": store.backend() },
                        "queue": queue_check,
                    },
                })),
            )
        }
    }
}

/// Awaits a check for at most `limit`, turning its error or its silence into a reason.
async fn within<T, E: std::fmt::Display>(
    limit: Duration,
    check: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, check).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", limit.as_secs())),
    }
}

/// The worker's health, fields in the runbook's order (`status` first) for scripts that match
/// the text.
#[derive(Debug, Serialize)]
struct WorkerHealth {
    status: &'static str,
    queues: Vec<QueueHealth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Debug, Serialize)]
struct QueueHealth {
    name: String,
    pending: u64,
    running: u64,
    failed: u64,
    dead: u64,
}

async fn worker_health(State(state): State<AppState>) -> (StatusCode, Json<WorkerHealth>) {
    let (stats, database) = tokio::join!(
        within(READY_TIMEOUT, state.queue().stats(&JobKind::QUEUES)),
        within(READY_TIMEOUT, state.store().ping())
    );
    let mut reasons = Vec::new();
    let queues = match stats {
        Ok(stats) => stats
            .into_iter()
            .map(|s| QueueHealth {
                name: s.name,
                pending: s.pending,
                running: s.running,
                failed: s.failed,
                dead: s.dead,
            })
            .collect(),
        Err(reason) => {
            reasons.push(format!("queue ({}): {reason}", state.queue().backend()));
            Vec::new()
        }
    };
    if let Err(reason) = database {
        reasons.push(format!("database ({}): {reason}", state.store().backend()));
    }
    if reasons.is_empty() {
        (
            StatusCode::OK,
            Json(WorkerHealth {
                status: "ok",
                queues,
                reason: None,
            }),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(WorkerHealth {
                status: "degraded",
                queues,
                reason: Some(reasons.join("; ")),
            }),
        )
    }
}

async fn metrics(State(state): State<AppState>) -> axum::response::Response {
    use axum::response::IntoResponse;
    match crate::metrics::render(&state).await {
        Some(text) => (
            [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            text,
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": "metrics_unavailable", "message": "no metrics recorder in this process" })),
        )
            .into_response(),
    }
}
