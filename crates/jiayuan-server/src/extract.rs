//! Extractors that turn every rejection into an [`ApiError`], and the caller stand-in.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use jiayuan_host::engine::{Caller, Reach};
use jiayuan_plugin_api::Actor;

use crate::error::ApiError;

/// `Json<T>` whose rejections are [`ApiError`]s (400 naming the body and the reason).
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(v) = axum::Json::<T>::from_request(req, state).await?;
        Ok(Json(v))
    }
}

/// `Query<T>` whose rejections are [`ApiError`]s.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Query(v) = axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Query(v))
    }
}

/// `Path<T>` whose rejections are [`ApiError`]s.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(v) = axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Path(v))
    }
}

/// The header naming the role a request acts in, until accounts and sessions exist.
pub const ACTOR_HEADER: &str = "x-jiayuan-actor";

/// The caller of a request.
///
/// There are no accounts yet (they come with the secure-API work): every request acts for the
/// district office, in the role named by the `x-jiayuan-actor` header (`firm_staff`,
/// `district_admin`, …; default `district_admin`). The server binds to loopback by default for
/// this reason. This extractor is the one place that changes when authentication arrives.
#[derive(Debug, Clone)]
pub struct CallerExt(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for CallerExt {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let actor = match parts.headers.get(ACTOR_HEADER) {
            None => Actor::DistrictAdmin,
            Some(v) => {
                let text = v.to_str().unwrap_or_default();
                serde_json::from_value::<Actor>(serde_json::Value::String(text.to_owned())).map_err(|_| {
                    ApiError::bad_request(
                        ACTOR_HEADER,
                        "unknown_actor",
                        format!("未知角色 `{text}`"),
                        format!(
                            "unknown actor `{text}`; use firm_staff, firm_manager, community_worker, street_officer, agency_officer or district_admin"
                        ),
                    )
                })?
            }
        };
        if actor == Actor::System {
            return Err(ApiError::bad_request(
                ACTOR_HEADER,
                "reserved_actor",
                "`system` 角色仅供平台内部使用".into(),
                "the `system` actor is reserved for the host itself".into(),
            ));
        }
        let name = format!(
            "demo:{}",
            serde_json::to_value(actor).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
        );
        Ok(CallerExt(Caller { actor, name, reach: Reach::District }))
    }
}
