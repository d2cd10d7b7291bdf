//! Login, logout and who-am-I.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use jiayuan_domain::{AccountId, Role};
use jiayuan_store::Account;

use super::Res;
use crate::AppState;
use crate::auth::{Via, session_cookie};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{AuthExt, Json};
use crate::openapi::{BadRequest, Internal, RoleName, TooManyLogins, Unauthenticated};

/// A password login.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginBody {
    /// Login name.
    #[schema(example = "zhang.wei")]
    login: String,
    /// Password.
    #[schema(format = Password)]
    password: String,
}

/// An account as its owner and administrators see it (no secrets).
#[derive(Serialize, ToSchema)]
pub(crate) struct AccountView {
    /// Id.
    #[schema(value_type = i64)]
    id: AccountId,
    /// Login name.
    login: String,
    /// Name shown in the UI.
    display_name: String,
    /// Role.
    #[schema(value_type = RoleName)]
    role: Role,
    /// 角色名称 the role's Chinese name.
    #[schema(example = "区管理员")]
    role_zh: &'static str,
    /// Where the account acts: `district`, `street:<code>`, `community:<code>` or `firm:<id>`.
    #[schema(example = "district")]
    scope: String,
    /// The service items it is limited to; `null` = every item of its scope.
    items: Option<Vec<String>>,
    /// A disabled account cannot log in and its sessions and tokens are not honoured.
    disabled: bool,
    /// The agency unit of an agency officer.
    #[schema(value_type = Option<i64>)]
    agency_unit: Option<jiayuan_domain::AgencyUnitId>,
}

impl AccountView {
    /// The view of `a`.
    pub(crate) fn of(a: &Account) -> AccountView {
        AccountView {
            id: a.id,
            login: a.login.clone(),
            display_name: a.display_name.clone(),
            role: a.role,
            role_zh: a.role.name_zh(),
            scope: a.scope.to_string(),
            items: a.items.clone(),
            disabled: a.disabled,
            agency_unit: a.agency_unit,
        }
    }
}

/// `{"account": …}`.
#[derive(Serialize, ToSchema)]
pub(crate) struct AccountEnvelope {
    /// The account.
    pub(crate) account: AccountView,
}

/// Who is calling.
#[derive(Serialize, ToSchema)]
pub(crate) struct Me {
    /// The calling account.
    account: AccountView,
    /// How the call is authenticated: `session` (cookie) or `token` (bearer).
    #[schema(example = "session")]
    via: &'static str,
}

/// 登录 / Log in
///
/// `POST /api/auth/login`: checks the password and starts a browser session (cookie). The
/// session id is new at every login; a session the browser still carried is ended.
#[utoipa::path(
    post,
    path = "/api/auth/login",
    tag = "auth",
    request_body = LoginBody,
    responses(
        (status = 200, description = "已登录，会话 Cookie 已设置 / Logged in; the session cookie is set",
            body = AccountEnvelope,
            headers(("set-cookie" = String, description = "`jiayuan_session=…; HttpOnly; SameSite=Strict`"))),
        (status = 400, response = BadRequest),
        (status = 401, description = "账号或密码错误 / Wrong login or password", body = ErrorBody),
        (status = 429, response = TooManyLogins),
        (status = 500, response = Internal),
    )
)]
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
    Ok((
        StatusCode::OK,
        [(header::SET_COOKIE, cookie)],
        axum::Json(AccountEnvelope { account: AccountView::of(&account) }),
    ))
}

/// 退出登录 / Log out
///
/// `POST /api/auth/logout`: ends the browser session on the server and clears the cookie.
/// Token callers have no session: revoke the token instead.
#[utoipa::path(
    post,
    path = "/api/auth/logout",
    tag = "auth",
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 204, description = "会话已结束，Cookie 已清除 / The session ended; the cookie is cleared",
            headers(("set-cookie" = String, description = "`jiayuan_session=; Max-Age=0`"))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 500, response = Internal),
    )
)]
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

/// 当前账号 / Who am I
///
/// `GET /api/auth/me`: the calling account.
#[utoipa::path(
    get,
    path = "/api/auth/me",
    tag = "auth",
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "当前账号 / The calling account", body = Me),
        (status = 401, response = Unauthenticated),
    )
)]
pub(crate) async fn me(AuthExt(who): AuthExt) -> impl IntoResponse {
    let via = match who.via {
        Via::Session(_) => "session",
        Via::Token(_) => "token",
    };
    axum::Json(Me { account: AccountView::of(&who.account), via })
}
