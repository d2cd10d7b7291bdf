//! The HTTP surface of Jiayuan (家园): an axum [`router`] over the host's record engine.
//!
//! Every route is declared once in [`routes::table`] with the access it needs ([`Access`]); the
//! router and the route inventory ([`inventory`]) are both built from that table, so no route can
//! exist without an access rule. Authentication ([`auth`]) and the role half of
//! [`jiayuan_host::access::authorize`] run in a layer before any handler; the scope half runs
//! in the engine (or the handler) once the estate and the item are known.
//!
//! The OpenAPI document ([`openapi`], `GET /api/openapi.json`) is generated from the handlers'
//! annotations and checked against the same table; Prometheus metrics of every request are
//! rendered at `GET /api/metrics` (`telemetry`).
//!
//! Every error is an [`ApiError`]: 4xx bodies name the field and the reason in Chinese and
//! English; 5xx bodies are generic and the cause is logged. No HTTP type reaches below this crate.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod auth;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod openapi;
pub mod privacy;
mod routes;
mod telemetry;
#[cfg(test)]
mod testkit;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::{Extension, Router};

use jiayuan_host::access::{Action, Denied, Target, authorize};
use jiayuan_host::engine::Engine;

pub use auth::{Auth, AuthSettings, Authenticated};
pub use error::ApiError;

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    /// The record engine (and through it the store, plugins and enablement).
    pub engine: Arc<Engine>,
    /// Logins, sessions and tokens.
    pub auth: Auth,
    /// When the server started.
    pub started: Instant,
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Anyone, without credentials (health, login, the OpenAPI document).
    Public,
    /// Any authenticated account (who am I, logout).
    Authenticated,
    /// An account whose role may do this action ([`jiayuan_host::access::permits`]).
    Action(Action),
}

/// One route of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    /// The HTTP method.
    pub method: Method,
    /// The path, in axum / OpenAPI template syntax (`/api/items/{plugin}/records`).
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
}

/// Every route the API serves, with its access rule: the inventory the access-matrix and
/// OpenAPI tests check against.
pub fn inventory() -> Vec<RouteInfo> {
    routes::table().into_iter().map(|(info, _)| info).collect()
}

/// The whole API over `engine`, authenticating with `auth`.
///
/// Installs the process's metrics recorder on first use and, inside a tokio runtime, starts the
/// recorder's upkeep for as long as the router lives.
pub fn router(engine: Arc<Engine>, auth: Auth) -> Router {
    let state = Arc::new(AppState { engine, auth, started: Instant::now() });
    telemetry::spawn_upkeep(Arc::downgrade(&state));
    let mut router: Router<Arc<AppState>> = Router::new();
    for (info, handler) in routes::table() {
        let handler = match info.access {
            Access::Public => handler,
            access => handler.route_layer(middleware::from_fn(move |req, next| guard(access, req, next))),
        };
        router = router.route(info.path, handler);
    }
    router.fallback(not_found).layer(middleware::from_fn(log_request)).layer(Extension(state.clone())).with_state(state)
}

/// Authenticates the request and checks the role may do the route's action (403 otherwise);
/// the [`Authenticated`] caller goes into the request's extensions for the handler.
async fn guard(access: Access, mut req: Request, next: Next) -> Result<Response, ApiError> {
    let state = req
        .extensions()
        .get::<Arc<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal(&"the application state is missing from the request"))?;
    let who = state.auth.authenticate(req.headers()).await?;
    if let Access::Action(action) = access {
        match authorize(&who.caller, action, Target::default()) {
            Ok(()) => {}
            Err(Denied::Forbidden { role, .. }) => {
                return Err(ApiError::client(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    format!("{}无权执行此操作", role.name_zh()),
                    format!("a {role} may not do this"),
                ));
            }
            Err(_) => return Err(not_found().await),
        }
    }
    req.extensions_mut().insert(who);
    Ok(next.run(req).await)
}

async fn not_found() -> ApiError {
    ApiError::client(StatusCode::NOT_FOUND, "no_route", "没有这个接口", "no such route")
}

/// Logs method, matched route (never the raw URI, which may carry identifiers), status and time,
/// and records them as metrics ([`telemetry::record_request`]).
async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let matched = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let start = Instant::now();
    let res = next.run(req).await;
    let elapsed = start.elapsed();
    let status = res.status().as_u16();
    telemetry::record_request(&method, matched.as_deref(), status, elapsed);
    let route = matched.as_deref().unwrap_or("-");
    let ms = elapsed.as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::warn!(%method, route, status, ms, "request");
    } else {
        tracing::debug!(%method, route, status, ms, "request");
    }
    res
}

/// Serves the router on `listener` until `shutdown` resolves. Client addresses reach the login
/// rate limiter.
pub async fn serve(
    listener: tokio::net::TcpListener,
    engine: Arc<Engine>,
    auth: Auth,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(engine, auth).into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}
