//! The web role until the dashboard issue: `/health` → `OK` and a page that says where the
//! API and its documentation are.

use axum::Router;
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;

use crate::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(|| async { "OK" }))
        .route("/", get(index))
}

async fn index(State(state): State<AppState>) -> Html<String> {
    let port = state.settings().port;
    Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>FlakeGuard</title></head>\n\
         <body><h1>FlakeGuard</h1>\n<p>The dashboard is not built yet. The JSON API answers on port {port}: \
         see <code>/documentation</code> there for every endpoint, and <code>/api/v1/repos</code> \
         with an API token.</p></body></html>\n"
    ))
}
