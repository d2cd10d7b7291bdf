//! Login, logout and who-am-I.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use jiayuan_store::Account;

use super::Res;
use crate::AppState;
use crate::auth::{Via, session_cookie};
use crate::error::ApiError;
use crate::extract::{AuthExt, Json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginBody {
    login: String,
    password: String,
}

/// An account as its owner and administrators see it (no secrets).
pub(crate) fn account_view(a: &Account) -> Value {
    json!({
        "id": a.id,
        "login": a.login,
        "display_name": a.display_name,
        "role": a.role,
        "role_zh": a.role.name_zh(),
        "scope": a.scope.to_string(),
        "items": a.items,
        "disabled": a.disabled,
    })
}

/// `POST /api/auth/login`: checks the password and starts a browser session (cookie). The
/// session id is new at every login; a session the browser still carried is ended.
pub(crate) async fn login(
    State(s): State<Arc<AppState>>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Json(body): Json<LoginBody>,
) -> Res<impl IntoResponse> {
    let client = connect.map(|Extension(ConnectInfo(addr))| addr.ip());
    let previous = session_cookie(&headers);
    let (account, secret) = s.auth.login(&body.login, &body.password, previous, client).await?;
    let cookie = s.auth.session_cookie(&secret);
    Ok((StatusCode::OK, [(header::SET_COOKIE, cookie)], axum::Json(json!({ "account": account_view(&account) }))))
}

/// `POST /api/auth/logout`: ends the browser session on the server and clears the cookie.
/// Token callers have no session: revoke the token instead.
pub(crate) async fn logout(State(s): State<Arc<AppState>>, AuthExt(who): AuthExt) -> Res<impl IntoResponse> {
    let Via::Session(hash) = &who.via else {
        return Err(ApiError::bad_request(
            "authorization",
            "not_a_session",
            "API 令牌没有会话可注销；如需停用请吊销令牌".into(),
            "a token has no session to log out of; revoke the token instead".into(),
        ));
    };
    s.auth.logout(hash, &who.account.login).await?;
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, s.auth.cleared_cookie())]))
}

/// `GET /api/auth/me`: the calling account.
pub(crate) async fn me(AuthExt(who): AuthExt) -> impl IntoResponse {
    let via = match who.via {
        Via::Session(_) => "session",
        Via::Token(_) => "token",
    };
    axum::Json(json!({ "account": account_view(&who.account), "via": via }))
}
