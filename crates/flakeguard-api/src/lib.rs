//! FlakeGuard's HTTP surface: the JSON API on `PORT`, the worker's health and metrics on `WORKER_PORT`
//! and the web role on `WEB_PORT` (a placeholder until the dashboard), each an axum router
//! over one shared [`AppState`], and [`serve`] to run them until shutdown.
#![forbid(unsafe_code)]

mod auth;
mod error;
mod github;
mod health;
mod ingest;
pub mod metrics;
mod openapi;
mod pagination;
mod policy;
mod quarantine;
mod rate_limit;
mod repos;
mod serve;
mod telemetry;
mod web;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use flakeguard_app::Settings;
use flakeguard_queue::JobQueue;
use flakeguard_store::Store;

pub use auth::Principal;
pub use error::{ApiError, ErrorBody};
pub use openapi::openapi_json;
pub use serve::{DRAIN_TIMEOUT, Listeners, serve};

use rate_limit::RateLimiter;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn Store>,
    queue: Arc<dyn JobQueue>,
    settings: Settings,
    limiter: RateLimiter,
    started: Instant,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, queue: Arc<dyn JobQueue>, settings: Settings) -> Self {
        let limiter = RateLimiter::new(settings.rate_limit_max, settings.rate_limit_window);
        AppState {
            inner: Arc::new(Inner {
                store,
                queue,
                settings,
                limiter,
                started: Instant::now(),
            }),
        }
    }

    pub fn store(&self) -> &dyn Store {
        &*self.inner.store
    }

    pub fn queue(&self) -> &dyn JobQueue {
        &*self.inner.queue
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    fn limiter(&self) -> &RateLimiter {
        &self.inner.limiter
    }
}

/// The API role: health, `/api/v1/…`, the OpenAPI document and Swagger UI.
pub fn api_router(state: AppState) -> Router {
    let max_upload = state.settings().max_upload_bytes;
    let routes = Router::new()
        .merge(health::api_routes())
        .merge(ingest::routes(max_upload))
        .merge(repos::routes())
        .merge(quarantine::routes())
        .merge(github::routes())
        .merge(policy::routes())
        .fallback(telemetry::not_found)
        .with_state(state);
    telemetry::layers(routes.merge(openapi::routes()))
}

/// The worker role's HTTP side: its health with the queues' counts, and `/metrics`.
pub fn worker_router(state: AppState) -> Router {
    telemetry::layers(health::worker_routes().with_state(state))
}

/// The web role: `/health` and, until the dashboard issue, a placeholder page.
pub fn web_router(state: AppState) -> Router {
    telemetry::layers(web::routes().with_state(state))
}
