//! The HTTP surface of Jiayuan (家园): an axum [`router`] over the host's record engine.
//!
//! Every error is an [`ApiError`]: 4xx bodies name the field and the reason in Chinese and
//! English; 5xx bodies are generic and the cause is logged. No HTTP type reaches below this crate.
#![forbid(unsafe_code)]

pub mod error;
pub mod extract;
pub mod privacy;
mod routes;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post, put};

use jiayuan_host::engine::Engine;

pub use error::ApiError;

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    /// The record engine (and through it the store, plugins and enablement).
    pub engine: Arc<Engine>,
    /// When the server started.
    pub started: Instant,
}

/// The whole API. Paths use axum 0.8 syntax.
pub fn router(engine: Arc<Engine>) -> Router {
    let state = Arc::new(AppState { engine, started: Instant::now() });
    Router::new()
        .route("/api/health", get(routes::health))
        .route("/api/plugins", get(routes::plugins))
        .route("/api/plugins/{id}/manifest", get(routes::manifest))
        .route("/api/items/{plugin}/records", post(routes::create).get(routes::list))
        .route("/api/items/{plugin}/records/{id}", get(routes::get))
        .route("/api/items/{plugin}/records/{id}/history", get(routes::history))
        .route("/api/items/{plugin}/records/{id}/transitions/{transition}", post(routes::transition))
        .route("/api/items/{plugin}/kpis", get(routes::kpis))
        .route("/api/alerts", get(routes::alerts))
        .route("/api/registry/divisions", get(routes::divisions))
        .route("/api/registry/estates", get(routes::estates))
        .route("/api/registry/firms", get(routes::firms))
        .route("/api/registry/persons", post(routes::create_person))
        .route("/api/enablement/overrides", get(routes::enablement_overrides))
        .route("/api/enablement/{item}", put(routes::set_enablement).delete(routes::clear_enablement))
        .route("/api/enablement/{item}/estates/{id}", get(routes::enablement_decision))
        .fallback(not_found)
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::client(StatusCode::NOT_FOUND, "no_route", "没有这个接口", "no such route")
}

/// Logs method, matched route (never the raw URI, which may carry identifiers), status and time.
async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "-".into());
    let start = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16();
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::warn!(%method, route, status, ms, "request");
    } else {
        tracing::debug!(%method, route, status, ms, "request");
    }
    res
}

/// Serves the router on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    engine: Arc<Engine>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(engine)).with_graceful_shutdown(shutdown).await
}
