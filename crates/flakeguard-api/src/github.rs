//! `POST /api/github/webhook`: GitHub's deliveries. The signature is checked over the raw
//! body, the delivery is stored (once per `X-GitHub-Delivery`) and its `process_webhook` job
//! queued, and GitHub gets its 202 — the work happens in the worker. A delivery stored while
//! the queue is away is queued by the worker's outbox sweep.

use axum::Json;
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use flakeguard_app::github::events;
use flakeguard_app::jobs::{self, Job};
use flakeguard_store::{DeliveryStatus, NewDelivery};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::ApiError;

/// GitHub's largest webhook payload.
pub(crate) const MAX_PAYLOAD: usize = 25 << 20;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/github/webhook", post(webhook))
        .layer(DefaultBodyLimit::max(MAX_PAYLOAD))
}

/// What became of a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WebhookAnswer {
    /// `queued` (stored, its job queued), `deferred` (stored; the queue is away and the
    /// outbox sweep will queue it), `duplicate` (this delivery id was already stored),
    /// `ignored` (an event FlakeGuard does not subscribe to; nothing stored).
    status: &'static str,
    /// The `X-GitHub-Delivery` id.
    delivery: String,
    event: String,
}

/// The few envelope fields stored beside the payload; serde skips the rest unread.
#[derive(Debug, Deserialize)]
struct Envelope {
    action: Option<String>,
    installation: Option<Installation>,
}

#[derive(Debug, Deserialize)]
struct Installation {
    id: i64,
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, ApiError> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => value.to_str().map(|v| Some(v.trim())).map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_header",
                format!("{name} is not visible ASCII"),
            )
        }),
    }
}

fn count(event: &str, outcome: &'static str) {
    let event = events::handled(event).unwrap_or("other");
    metrics::counter!(crate::metrics::GITHUB_WEBHOOKS, "event" => event, "outcome" => outcome)
        .increment(1);
}

/// Receives a GitHub App webhook delivery.
#[utoipa::path(
    post,
    path = "/api/github/webhook",
    tag = "github",
    request_body(content = String, content_type = "application/json", description = "GitHub's payload, verbatim"),
    params(
        ("X-GitHub-Event" = String, Header, description = "The event"),
        ("X-GitHub-Delivery" = String, Header, description = "The delivery's GUID; a redelivery repeats it"),
        ("X-Hub-Signature-256" = String, Header, description = "sha256=HMAC-SHA256 of the body with the webhook secret"),
    ),
    responses(
        (status = 202, description = "Stored and queued, a duplicate, or an event not subscribed to", body = WebhookAnswer),
        (status = 400, description = "A header is missing or the body is not JSON", body = crate::ErrorBody),
        (status = 401, description = "The signature is missing or wrong", body = crate::ErrorBody),
        (status = 413, description = "Larger than GitHub's 25 MiB", body = crate::ErrorBody),
        (status = 503, description = "Webhooks are switched off (ENABLE_GITHUB_WEBHOOKS=false) or not configured, or the database is away", body = crate::ErrorBody),
    )
)]
pub(crate) async fn webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<WebhookAnswer>), ApiError> {
    let github = &state.settings().github;
    if !github.webhooks_enabled {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "webhooks_disabled",
            "GitHub webhooks are switched off (ENABLE_GITHUB_WEBHOOKS=false); nothing was stored",
        ));
    }
    let Some(secret) = &github.webhook_secret else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "webhooks_not_configured",
            "GitHub webhooks need GITHUB_WEBHOOK_SECRET to check deliveries by; nothing was stored",
        ));
    };
    let event = header(&headers, "x-github-event")?
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "missing_header",
                "X-GitHub-Event is missing",
            )
        })?
        .to_owned();
    let delivery = header(&headers, "x-github-delivery")?
        .filter(|v| !v.is_empty() && v.len() <= 100)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "missing_header",
                "X-GitHub-Delivery is missing (or longer than 100 characters)",
            )
        })?
        .to_owned();
    let signature = header(&headers, "x-hub-signature-256")?.map(str::to_owned);
    let body = to_bytes(body, MAX_PAYLOAD).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the delivery is larger than GitHub's maximum of {MAX_PAYLOAD} bytes"),
        )
    })?;
    let Some(signature) = signature else {
        count(&event, "unsigned");
        return Err(ApiError::unauthorized(
            "X-Hub-Signature-256 is missing: deliveries must be signed with the App's webhook secret",
        ));
    };
    if let Err(e) = flakeguard_github::verify_webhook(secret.expose().as_bytes(), &body, &signature)
    {
        count(&event, "bad_signature");
        tracing::warn!(%delivery, %event, "webhook refused: {e}");
        return Err(ApiError::unauthorized(e));
    }
    if events::handled(&event).is_none() {
        count(&event, "ignored");
        return Ok((
            StatusCode::ACCEPTED,
            Json(WebhookAnswer {
                status: "ignored",
                delivery,
                event,
            }),
        ));
    }
    let envelope: Envelope = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_payload",
            format!("the {event} delivery {delivery} is not a JSON object: {e}"),
        )
    })?;
    let (stored, created) = state
        .store()
        .record_delivery(&NewDelivery {
            delivery_id: delivery.clone(),
            event: event.clone(),
            action: envelope.action,
            installation_id: envelope.installation.map(|i| i.id),
            payload: body.to_vec(),
            received_at: OffsetDateTime::now_utc(),
        })
        .await?;
    if !created && stored.status != DeliveryStatus::Received {
        count(&event, "duplicate");
        return Ok((
            StatusCode::ACCEPTED,
            Json(WebhookAnswer {
                status: "duplicate",
                delivery,
                event,
            }),
        ));
    }
    // New, or a redelivery of one not yet handled: its job id is the delivery's, so pushing
    // again cannot make a second job.
    let status = match jobs::enqueue(state.queue(), &Job::webhook(stored.id)).await {
        Ok(_) if created => "queued",
        Ok(_) => "duplicate",
        Err(e) => {
            tracing::warn!(%delivery, error = %e, "webhook job not queued; the outbox sweep will queue it");
            "deferred"
        }
    };
    count(&event, status);
    tracing::info!(%delivery, %event, status, "webhook delivery accepted");
    Ok((
        StatusCode::ACCEPTED,
        Json(WebhookAnswer {
            status,
            delivery,
            event,
        }),
    ))
}
