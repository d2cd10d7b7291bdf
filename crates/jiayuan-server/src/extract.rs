//! Extractors that turn every rejection into an [`ApiError`], and the authenticated caller.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use jiayuan_host::access::Caller;

use crate::auth::Authenticated;
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

/// The authenticated caller of a guarded route, put there by the router's authentication
/// layer (see [`crate::router`]). Every route but the public ones is guarded, so a handler that
/// takes this extractor never runs unauthenticated.
#[derive(Debug, Clone)]
pub struct CallerExt(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for CallerExt {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let who = parts
            .extensions
            .get::<Authenticated>()
            .ok_or_else(|| ApiError::internal(&"a handler asked for the caller on a route without authentication"))?;
        Ok(CallerExt(who.caller.clone()))
    }
}

/// The authenticated account of a guarded route (for who-am-I, logout, audit attribution).
#[derive(Debug, Clone)]
pub struct AuthExt(pub Authenticated);

impl<S: Send + Sync> FromRequestParts<S> for AuthExt {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let who = parts
            .extensions
            .get::<Authenticated>()
            .ok_or_else(|| ApiError::internal(&"a handler asked for the account on a route without authentication"))?;
        Ok(AuthExt(who.clone()))
    }
}
