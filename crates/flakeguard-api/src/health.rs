//! The runbook's health contracts: `GET :3000/health` → `{"status":"ok","timestamp":…}`,
//! `/health/ready` (200 when the database answers, else 503 with the reason), `/health/live`;
//! `GET :3001/health` → `{"status":"ok","queues":[]}` until the queue issue fills it.

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
    Router::new().route("/health", get(worker_health))
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
    let database = match tokio::time::timeout(READY_TIMEOUT, store.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", READY_TIMEOUT.as_secs())),
    };
    match database {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({
                "status": "ok",
                "timestamp": now_rfc3339(),
                "checks": { "database": { "status": "ok", "backend": store.backend() } },
            })),
        ),
        Err(reason) => {
            tracing::warn!(%reason, "not ready: database");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "status": "unavailable",
                    "timestamp": now_rfc3339(),
                    "reason": format!("database ({}): {reason}", store.backend()),
                    "checks": { "database": { "status": "unavailable", "backend": store.backend() } },
                })),
            )
        }
    }
}

/// The worker's health, fields in the runbook's order (`status` first) for scripts that match
/// the text.
#[derive(Debug, Serialize)]
struct WorkerHealth {
    status: &'static str,
    queues: Vec<Value>,
}

async fn worker_health() -> Json<WorkerHealth> {
    Json(WorkerHealth {
        status: "ok",
        queues: Vec::new(),
    })
}
