//! `Idempotency-Key` on creates: a retry of a create with the same key gets the first answer
//! again instead of making a second object.
//!
//! The layer ([`idempotent`]) wraps each create route inside the guard, so it knows the caller.
//! The key is scoped: its stored hash is SHA-256 of (account, method, path and query, key), so two callers
//! (or two routes) never share one; the request's hash is SHA-256 of the body. Then:
//!
//! - no header: the route runs as without this layer;
//! - a key that is not 1–255 visible ASCII characters: 400;
//! - a fresh key: reserved (in flight), the route runs; a 2xx answer is stored and returned, any
//!   other answer releases the key so that a corrected retry can run;
//! - the same key and body after a success: the first status and body again, with
//!   `idempotent-replayed: true`;
//! - the same key with another body: 422 `idempotency_key_reused`;
//! - the same key while the first request is in flight (or its process died between the commit
//!   and storing the answer): 409 `idempotency_in_flight` — the client should look the object up
//!   before retrying; never a duplicate.
//!
//! Keys are kept [`KEEP`] (24 h); expired ones are swept at most once an hour, on a reserve.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use sha2::{Digest, Sha256};

use jiayuan_store::idempotency::Reserve;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::{AppState, privacy};

/// The request header.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The header of a replayed answer.
pub const REPLAYED: &str = "idempotent-replayed";

/// How long a key is kept, in milliseconds (24 h).
pub const KEEP: i64 = 24 * 60 * 60 * 1000;

/// How often expired keys are swept, in milliseconds (1 h).
const SWEEP_EVERY: i64 = 60 * 60 * 1000;

/// The largest body this layer buffers (a route's own extractor limit still applies).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Wraps a create route in the idempotency layer.
pub(crate) fn idempotent(route: MethodRouter<Arc<AppState>>) -> MethodRouter<Arc<AppState>> {
    route.route_layer(middleware::from_fn(layer))
}

/// Whether `key` is 1–255 visible ASCII characters.
fn valid_key(key: &[u8]) -> bool {
    (1..=255).contains(&key.len()) && key.iter().all(|b| b.is_ascii_graphic())
}

fn hex_sha256(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        // Length-prefixed, so no two different part lists hash alike.
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn bad_key() -> ApiError {
    ApiError::bad_request(
        "Idempotency-Key",
        "bad_idempotency_key",
        "Idempotency-Key 应为 1–255 个可见 ASCII 字符".into(),
        "Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
    )
}

async fn layer(req: Request, next: Next) -> Result<Response, ApiError> {
    let Some(key) = req.headers().get(IDEMPOTENCY_KEY) else {
        return Ok(next.run(req).await);
    };
    if req.headers().get_all(IDEMPOTENCY_KEY).iter().count() > 1 || !valid_key(key.as_bytes()) {
        return Err(bad_key());
    }
    let key = key.as_bytes().to_vec();
    let state = req
        .extensions()
        .get::<Arc<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal(&"the application state is missing from the request"))?;
    let account = req
        .extensions()
        .get::<Authenticated>()
        .map(|a| a.caller.name.clone())
        .ok_or_else(|| ApiError::internal(&"the idempotency layer runs on a route without authentication"))?;
    // The query is part of the request (an import's `dry_run`): a dry run's answer is never
    // replayed to the real run.
    let target = req.uri().path_and_query().map_or_else(|| req.uri().path(), |pq| pq.as_str()).to_owned();
    let key_hash = hex_sha256(&[account.as_bytes(), req.method().as_str().as_bytes(), target.as_bytes(), &key]);

    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        let mut e = ApiError::bad_request(
            "body",
            "too_large",
            "请求体过大".into(),
            "the request body is larger than the server accepts".into(),
        );
        e = e.with_status(StatusCode::PAYLOAD_TOO_LARGE);
        e
    })?;
    let request_hash = hex_sha256(&[&bytes]);

    let store = state.engine.store();
    let now = state.engine.clock().now().0;
    sweep(&state, now).await;
    match store.reserve_idempotency(&key_hash, &request_hash, now).await.map_err(|e| ApiError::internal(&e))? {
        Reserve::Fresh => {}
        Reserve::Done { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let mut res = (status, body).into_response();
            let h = res.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            h.insert(HeaderName::from_static(REPLAYED), HeaderValue::from_static("true"));
            return Ok(res);
        }
        Reserve::Mismatch => {
            return Err(ApiError::client(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "该 Idempotency-Key 已用于另一个请求；新请求请使用新的键",
                "this Idempotency-Key was used for another request body; use a new key for a new request",
            ));
        }
        Reserve::InFlight => {
            return Err(ApiError::client(
                StatusCode::CONFLICT,
                "idempotency_in_flight",
                "使用该 Idempotency-Key 的请求仍在处理或结果未知：请先查询对象是否已创建，再决定是否重试",
                "a request with this Idempotency-Key is in flight or its outcome is unknown: look the object up \
                 before retrying",
            ));
        }
    }

    let res = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    let status = res.status();
    if !status.is_success() {
        if let Err(e) = store.release_idempotency(&key_hash).await {
            tracing::warn!(error = %privacy::scrub(&e.to_string()), "idempotency key not released");
        }
        return Ok(res);
    }
    let (parts, body) = res.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => {
            // The change is committed but its answer is lost: the key stays in flight, so a
            // retry is told to look the object up rather than make a second one.
            return Err(ApiError::internal(&e));
        }
    };
    match std::str::from_utf8(&bytes) {
        Ok(text) => {
            if let Err(e) = store.complete_idempotency(&key_hash, status.as_u16(), text).await {
                tracing::warn!(error = %privacy::scrub(&e.to_string()), "idempotent answer not stored");
            }
        }
        Err(_) => tracing::warn!("a create answered a body that is not UTF-8; its key stays in flight"),
    }
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

/// Deletes keys older than [`KEEP`], at most once per [`SWEEP_EVERY`] in this process.
async fn sweep(state: &AppState, now: i64) {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let last = LAST.load(Ordering::Relaxed);
    if now - last < SWEEP_EVERY || LAST.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err() {
        return;
    }
    match state.engine.store().sweep_idempotency(now - KEEP).await {
        Ok(n) if n > 0 => tracing::debug!(swept = n, "expired idempotency keys swept"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %privacy::scrub(&e.to_string()), "idempotency sweep failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_of_1_to_255() {
        assert!(valid_key(b"a"));
        assert!(valid_key(b"0f8fad5b-d9cb-469f-a165-70867728950e"));
        assert!(valid_key(&[b'x'; 255]));
        assert!(!valid_key(b""));
        assert!(!valid_key(&[b'x'; 256]));
        assert!(!valid_key(b"has space"));
        assert!(!valid_key("键".as_bytes()));
        assert!(!valid_key(b"tab\t"));
    }

    #[test]
    fn hashes_are_length_prefixed() {
        assert_ne!(hex_sha256(&[b"ab", b"c"]), hex_sha256(&[b"a", b"bc"]));
        assert_eq!(hex_sha256(&[b"x"]).len(), 64);
    }

    const PERSON: &str =
        r#"{"name":"张三","doc_kind":"resident_id","doc_number":"11010519491231002X","hukou":"shenzhen"}"#;
    const OTHER: &str =
        r#"{"name":"李四","doc_kind":"resident_id","doc_number":"11010519491231002X","hukou":"shenzhen"}"#;

    #[tokio::test]
    async fn a_retry_replays_the_first_answer_and_makes_no_duplicate() {
        let app = crate::testkit::TestApp::start().await;
        let key = [(IDEMPOTENCY_KEY, "person-1")];
        let first = app.send("POST", "/api/registry/persons", PERSON, &key).await;
        assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
        assert!(first.headers.get(REPLAYED).is_none());
        let again = app.send("POST", "/api/registry/persons", PERSON, &key).await;
        assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
        assert_eq!(again.body, first.body, "the same id, the same answer");
        assert_eq!(again.headers.get(REPLAYED).and_then(|v| v.to_str().ok()), Some("true"));

        let reused = app.send("POST", "/api/registry/persons", OTHER, &key).await;
        assert_eq!(reused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", reused.body);
        assert!(reused.body.contains("idempotency_key_reused"), "{}", reused.body);

        // Without the header the route behaves as before: the document is taken.
        let plain = app.send("POST", "/api/registry/persons", PERSON, &[]).await;
        assert_eq!(plain.status, StatusCode::CONFLICT, "{}", plain.body);
        assert!(plain.headers.get(REPLAYED).is_none());

        // A failed answer releases its key: the corrected retry runs.
        let bad = r#"{"name":"王五","doc_kind":"resident_id","doc_number":"110105194912310021","hukou":"shenzhen"}"#;
        let key2 = [(IDEMPOTENCY_KEY, "person-2")];
        let refused = app.send("POST", "/api/registry/persons", bad, &key2).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
        let fixed = r#"{"name":"王五","doc_kind":"resident_id","doc_number":"11010519491231002X","hukou":"shenzhen"}"#;
        let retried = app.send("POST", "/api/registry/persons", fixed, &key2).await;
        assert_eq!(retried.status, StatusCode::CONFLICT, "the corrected retry ran: {}", retried.body);

        for bad_key in ["", "has space", &"x".repeat(256)] {
            let res = app.send("POST", "/api/registry/persons", PERSON, &[(IDEMPOTENCY_KEY, bad_key)]).await;
            assert_eq!(res.status, StatusCode::BAD_REQUEST, "key {bad_key:?}: {}", res.body);
        }
    }
}
