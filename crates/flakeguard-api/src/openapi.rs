//! The OpenAPI 3 document, generated from the handlers' annotations, at `/api/openapi.json`,
//! and Swagger UI at `/documentation` (served from the binary: nothing from a CDN).

use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::error::{ErrorBody, ErrorDetail};
use crate::{github, health, ingest, policy, quarantine, repos};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "FlakeGuard API",
        description = "Upload JUnit reports, and read what FlakeGuard concluded about a repository's tests. \
                       Authenticate with `Authorization: Bearer <token>` (an API token from `flakeguard token create`, \
                       or the operator's API_KEY). Every error answers `{\"error\":{\"code\":…,\"message\":…}}`."
    ),
    paths(
        health::health,
        health::ready,
        ingest::ingest,
        repos::list_repos,
        repos::get_repo,
        repos::list_tests,
        repos::get_test,
        repos::list_runs,
        repos::get_run,
        quarantine::list_quarantine,
        quarantine::create_quarantine,
        quarantine::release_quarantine,
        github::webhook,
        policy::plan_quarantine,
        policy::get_policy,
        policy::put_policy,
        policy::put_codeowners,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&BearerAuth),
    tags(
        (name = "health", description = "The runbook's health contracts"),
        (name = "ingest", description = "Uploading reports"),
        (name = "github", description = "The GitHub App's webhook (signed by GitHub, no token)"),
        (name = "repositories", description = "Repositories the token can see"),
        (name = "tests", description = "Tests, their status, evidence and executions"),
        (name = "runs", description = "Stored runs"),
        (name = "quarantine", description = "Quarantined tests, for runners that ignore or skip them, and their lifecycle"),
        (name = "policy", description = "The repository's `.flakeguard.yml` settings and CODEOWNERS"),
    )
)]
struct ApiDoc;

#[derive(Debug)]
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as JSON (also written to the docs by the tests).
pub fn openapi_json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

pub(crate) fn routes() -> Router {
    Router::new()
        .merge(SwaggerUi::new("/documentation").url("/api/openapi.json", ApiDoc::openapi()))
}
