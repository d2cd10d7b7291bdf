//! Account administration and the audit log, for the district admin (accounts) and the auditor
//! (audit). Account changes and token issues are audited by the store in the same transaction.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use jiayuan_domain::{AccountId, AccountScope, EstateId, Role, Timestamp};

use super::Res;
use super::session::{AccountEnvelope, AccountView};
use crate::AppState;
use crate::accounts::{self, AccountDraft, AccountsError};
use crate::error::ApiError;
use crate::extract::{AuthExt, Json, Path, Query};
use crate::openapi::{BadRequest, Conflict, Forbidden, Internal, NotFound, RoleName, Unauthenticated};

impl From<AccountsError> for ApiError {
    fn from(e: AccountsError) -> ApiError {
        let en = e.to_string();
        match e {
            AccountsError::Invalid(_) | AccountsError::UnknownItem(_) => {
                ApiError::bad_request("account", "invalid_account", "账号信息有误".into(), en)
            }
            AccountsError::AgencyUnit(_) => {
                ApiError::bad_request("agency_unit", "bad_agency_unit", "职能部门单位有误".into(), en)
            }
            AccountsError::Auth(crate::auth::AuthError::WeakPassword(_)) => {
                ApiError::bad_request("password", "weak_password", "密码长度应为 10–256 个字符".into(), en)
            }
            AccountsError::LoginTaken(_) => ApiError::client(StatusCode::CONFLICT, "login_taken", "登录名已被占用", en),
            AccountsError::NotFound(_) => ApiError::client(StatusCode::NOT_FOUND, "not_found", "未找到", en),
            other => ApiError::internal(&other),
        }
    }
}

/// Every account.
#[derive(Serialize, ToSchema)]
pub(crate) struct AccountList {
    /// The accounts (no secrets).
    accounts: Vec<AccountView>,
}

/// 账号列表 / Accounts
///
/// `GET /api/accounts`.
#[utoipa::path(
    get,
    path = "/api/accounts",
    tag = "accounts",
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "账号 / The accounts", body = AccountList),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn accounts(State(s): State<Arc<AppState>>) -> Res<impl IntoResponse> {
    let all = s.engine.store().accounts().await.map_err(|e| ApiError::internal(&e))?;
    Ok(axum::Json(AccountList { accounts: all.iter().map(AccountView::of).collect() }))
}

/// A new account.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewAccountBody {
    /// Login name (`a-z0-9._-`, 3–64).
    #[schema(example = "zhang.wei")]
    login: String,
    /// Name shown in the UI.
    display_name: String,
    /// Role.
    #[schema(value_type = RoleName)]
    role: Role,
    /// `district`, `street:<code>`, `community:<code>` or `firm:<id>`.
    #[schema(example = "firm:3")]
    scope: String,
    /// Assigned service items (firm staff and agency officers only).
    #[serde(default)]
    items: Option<Vec<String>>,
    /// Initial password (10–256 characters); absent for a token-only account.
    #[serde(default)]
    #[schema(format = Password)]
    password: Option<String>,
    /// The agency unit of an agency officer (`GET /api/registry/agency-units`).
    #[serde(default)]
    agency_unit: Option<i64>,
}

/// 创建账号 / Create an account
///
/// `POST /api/accounts`.
#[utoipa::path(
    post,
    path = "/api/accounts",
    tag = "accounts",
    request_body = NewAccountBody,
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 201, description = "已创建 / Created", body = AccountEnvelope),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn create_account(
    State(s): State<Arc<AppState>>,
    AuthExt(who): AuthExt,
    Json(body): Json<NewAccountBody>,
) -> Res<impl IntoResponse> {
    let scope = AccountScope::parse(&body.scope).map_err(AccountsError::from)?;
    let known: Vec<String> = s.engine.plugins().handles().map(|h| h.id().to_owned()).collect();
    let draft = AccountDraft {
        login: body.login,
        display_name: body.display_name,
        role: body.role,
        scope,
        items: body.items,
        password: body.password,
        agency_unit: body.agency_unit.map(jiayuan_domain::AgencyUnitId),
    };
    let now = s.engine.clock().now();
    let account =
        accounts::create_account(s.engine.store(), s.auth.config(), draft, &known, &who.account.login, now).await?;
    Ok((StatusCode::CREATED, axum::Json(AccountEnvelope { account: AccountView::of(&account) })))
}

/// A change of an account; absent fields stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccountChangeBody {
    /// New name shown in the UI.
    #[serde(default)]
    display_name: Option<String>,
    /// New role.
    #[serde(default)]
    #[schema(value_type = Option<RoleName>)]
    role: Option<Role>,
    /// New scope: `district`, `street:<code>`, `community:<code>` or `firm:<id>`.
    #[serde(default)]
    scope: Option<String>,
    /// New assigned service items (firm staff and agency officers).
    #[serde(default)]
    items: Option<Vec<String>>,
    /// `true`: no item list (every item of the scope; roles other than firm staff and agency
    /// officers). Not together with `items`.
    #[serde(default)]
    all_items: Option<bool>,
    /// A new agency unit for an agency officer; `0` removes it.
    #[serde(default)]
    agency_unit: Option<i64>,
}

/// 修改账号 / Change an account
///
/// `PATCH /api/accounts/{id}`: name, role, scope or assigned items. The result is checked whole
/// (a role must fit its scope and items); a change of role, scope or items ends the account's
/// browser sessions.
#[utoipa::path(
    patch,
    path = "/api/accounts/{id}",
    tag = "accounts",
    params(("id" = i64, Path, description = "账号 id / Account id")),
    request_body = AccountChangeBody,
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "已修改 / Changed", body = AccountEnvelope),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn update_account(
    State(s): State<Arc<AppState>>,
    AuthExt(who): AuthExt,
    Path(id): Path<i64>,
    Json(body): Json<AccountChangeBody>,
) -> Res<impl IntoResponse> {
    let items = match (body.items, body.all_items) {
        (Some(_), Some(true)) => {
            return Err(ApiError::bad_request(
                "items",
                "items_and_all_items",
                "items 与 all_items 不能同时给出".into(),
                "give `items` or `all_items`, not both".into(),
            ));
        }
        (Some(items), _) => Some(Some(items)),
        (None, Some(true)) => Some(None),
        (None, _) => None,
    };
    let change = jiayuan_store::AccountChange {
        display_name: body.display_name,
        role: body.role,
        scope: body.scope.as_deref().map(AccountScope::parse).transpose().map_err(AccountsError::from)?,
        items,
        agency_unit: body.agency_unit.map(|u| (u > 0).then_some(jiayuan_domain::AgencyUnitId(u))),
    };
    let known: Vec<String> = s.engine.plugins().handles().map(|h| h.id().to_owned()).collect();
    let now = s.engine.clock().now();
    let account =
        accounts::update_account(s.engine.store(), AccountId(id), &change, &known, &who.account.login, now).await?;
    s.auth.forget_cached();
    Ok(axum::Json(AccountEnvelope { account: AccountView::of(&account) }))
}

/// A new password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordBody {
    /// 10–256 characters.
    #[schema(format = Password)]
    password: String,
}

/// 重置密码 / Reset a password
///
/// `POST /api/accounts/{id}/password`: sets a new password; the account's sessions end.
#[utoipa::path(
    post,
    path = "/api/accounts/{id}/password",
    tag = "accounts",
    params(("id" = i64, Path, description = "账号 id / Account id")),
    request_body = PasswordBody,
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 204, description = "已重置，会话已结束 / Set; the account's sessions ended"),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn reset_password(
    State(s): State<Arc<AppState>>,
    AuthExt(who): AuthExt,
    Path(id): Path<i64>,
    Json(body): Json<PasswordBody>,
) -> Res<impl IntoResponse> {
    let now = s.engine.clock().now();
    accounts::reset_password(s.engine.store(), s.auth.config(), AccountId(id), &body.password, &who.account.login, now)
        .await?;
    s.auth.forget_cached();
    Ok(StatusCode::NO_CONTENT)
}

/// Disable or re-enable.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DisabledBody {
    /// `true` disables the account (its sessions end); `false` enables it again.
    disabled: bool,
}

/// 停用或启用账号 / Disable or enable an account
///
/// `PUT /api/accounts/{id}/disabled`: disables (ending its sessions) or re-enables an account.
#[utoipa::path(
    put,
    path = "/api/accounts/{id}/disabled",
    tag = "accounts",
    params(("id" = i64, Path, description = "账号 id / Account id")),
    request_body = DisabledBody,
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 204, description = "已更新 / Done"),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn set_disabled(
    State(s): State<Arc<AppState>>,
    AuthExt(who): AuthExt,
    Path(id): Path<i64>,
    Json(body): Json<DisabledBody>,
) -> Res<impl IntoResponse> {
    if body.disabled && who.account.id == AccountId(id) {
        return Err(ApiError::bad_request(
            "id",
            "self",
            "不能停用自己的账号".into(),
            "you cannot disable your own account".into(),
        ));
    }
    let now = s.engine.clock().now();
    s.engine
        .store()
        .set_account_disabled(AccountId(id), body.disabled, &who.account.login, now)
        .await
        .map_err(AccountsError::from)?;
    s.auth.forget_cached();
    Ok(StatusCode::NO_CONTENT)
}

/// An API token as listed (never the token itself).
#[derive(Serialize, ToSchema)]
pub(crate) struct TokenView {
    /// Id (to revoke it).
    id: i64,
    /// What it is for.
    name: String,
    /// Its first characters.
    #[schema(example = "jy_AbC123")]
    prefix: String,
    /// Issued (RFC 3339, +08:00).
    created_at: String,
    /// Expires, if ever.
    expires_at: Option<String>,
    /// Revoked, if it was.
    revoked_at: Option<String>,
}

/// An account's tokens.
#[derive(Serialize, ToSchema)]
pub(crate) struct TokenList {
    /// The tokens.
    tokens: Vec<TokenView>,
}

/// 账号的 API 令牌 / An account's API tokens
///
/// `GET /api/accounts/{id}/tokens`: the account's tokens (prefixes only, never the tokens).
#[utoipa::path(
    get,
    path = "/api/accounts/{id}/tokens",
    tag = "accounts",
    params(("id" = i64, Path, description = "账号 id / Account id")),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "令牌（仅前缀） / The tokens (prefixes only)", body = TokenList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn tokens(State(s): State<Arc<AppState>>, Path(id): Path<i64>) -> Res<impl IntoResponse> {
    let t = s.engine.store().api_tokens(AccountId(id)).await.map_err(|e| ApiError::internal(&e))?;
    let tokens = t
        .into_iter()
        .map(|t| TokenView {
            id: t.id,
            name: t.name,
            prefix: t.prefix,
            created_at: t.created_at.to_rfc3339_shanghai(),
            expires_at: t.expires_at.map(Timestamp::to_rfc3339_shanghai),
            revoked_at: t.revoked_at.map(Timestamp::to_rfc3339_shanghai),
        })
        .collect();
    Ok(axum::Json(TokenList { tokens }))
}

/// A token to issue.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenBody {
    /// What it is for (1–100 characters).
    #[schema(example = "nightly export")]
    name: String,
    /// Days until it expires; none for no expiry.
    #[serde(default)]
    expires_in_days: Option<u32>,
}

/// A freshly issued token: the only time it is shown.
#[derive(Serialize, ToSchema)]
pub(crate) struct IssuedTokenView {
    /// Id (to revoke it).
    id: i64,
    /// The token (`jy_…`), for `Authorization: Bearer`; only its hash is stored.
    token: String,
    /// Its first characters, shown in listings.
    prefix: String,
}

/// 签发 API 令牌 / Issue an API token
///
/// `POST /api/accounts/{id}/tokens`: issues an API token. The answer is the only time the token
/// is shown.
#[utoipa::path(
    post,
    path = "/api/accounts/{id}/tokens",
    tag = "accounts",
    params(("id" = i64, Path, description = "账号 id / Account id")),
    request_body = TokenBody,
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 201, description = "令牌（仅此一次显示） / The token (shown this once)", body = IssuedTokenView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn issue_token(
    State(s): State<Arc<AppState>>,
    AuthExt(who): AuthExt,
    Path(id): Path<i64>,
    Json(body): Json<TokenBody>,
) -> Res<impl IntoResponse> {
    if body.name.trim().is_empty() || body.name.chars().count() > 100 {
        return Err(ApiError::bad_request(
            "name",
            "bad_name",
            "令牌名称应为 1–100 个字".into(),
            "`name` must be 1 to 100 characters".into(),
        ));
    }
    let now = s.engine.clock().now();
    let expires = body.expires_in_days.map(|d| Timestamp(now.0.saturating_add(i64::from(d) * 86_400_000)));
    let t = accounts::issue_token(s.engine.store(), AccountId(id), body.name.trim(), expires, &who.account.login, now)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(IssuedTokenView { id: t.id, token: t.token, prefix: t.prefix })))
}

/// 吊销 API 令牌 / Revoke an API token
///
/// `DELETE /api/accounts/{id}/tokens/{token}`: revokes a token at once.
#[utoipa::path(
    delete,
    path = "/api/accounts/{id}/tokens/{token}",
    tag = "accounts",
    params(
        ("id" = i64, Path, description = "账号 id / Account id"),
        ("token" = i64, Path, description = "令牌 id / Token id"),
    ),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 204, description = "已吊销 / Revoked"),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn revoke_token(
    State(s): State<Arc<AppState>>,
    AuthExt(who): AuthExt,
    Path((id, token)): Path<(i64, i64)>,
) -> Res<impl IntoResponse> {
    let owned = s
        .engine
        .store()
        .api_tokens(AccountId(id))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .iter()
        .any(|t| t.id == token);
    let now = s.engine.clock().now();
    if !owned
        || !s.engine.store().revoke_api_token(token, &who.account.login, now).await.map_err(AccountsError::from)?
    {
        return Err(ApiError::client(StatusCode::NOT_FOUND, "not_found", "未找到该令牌", "no such token"));
    }
    s.auth.forget_cached();
    Ok(StatusCode::NO_CONTENT)
}

/// Paging of the audit log.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    /// Events after this sequence number (the previous page's `next_after`).
    #[serde(default)]
    after: Option<i64>,
    /// Page size, 1–1000 (default 100).
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// One audit event.
#[derive(Serialize, ToSchema)]
pub(crate) struct AuditEventView {
    /// Position in the hash chain, from 1 without gaps.
    seq: i64,
    /// When (RFC 3339, +08:00).
    at: String,
    /// Who.
    actor: String,
    /// What (`record.create`, `account.create`, `auth.login_failed`, …).
    action: String,
    /// On what, e.g. `dog-licensing/record/42`.
    object: String,
    /// The estate concerned, if any.
    #[schema(value_type = Option<i64>)]
    estate_id: Option<EstateId>,
    /// Details.
    #[schema(value_type = Object)]
    detail: Value,
    /// This row's hash (hex SHA-256 over the row and the previous hash).
    hash: String,
}

/// A page of the audit log.
#[derive(Serialize, ToSchema)]
pub(crate) struct AuditPage {
    /// The events in sequence order.
    events: Vec<AuditEventView>,
    /// Pass as `after` for the next page; `null` on the last page.
    next_after: Option<i64>,
}

/// 审计日志 / The audit log
///
/// `GET /api/audit/events?after=&limit=`: the audit log in sequence order.
#[utoipa::path(
    get,
    path = "/api/audit/events",
    tag = "audit",
    params(AuditQuery),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "一页审计事件 / A page of audit events", body = AuditPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn audit_events(
    State(s): State<Arc<AppState>>,
    Query(q): Query<AuditQuery>,
) -> Res<impl IntoResponse> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            "limit",
            "out_of_range",
            "limit 应在 1–1000 之间".into(),
            "`limit` must be 1..=1000".into(),
        ));
    }
    let rows = s.engine.store().audit_events(q.after.unwrap_or(0), limit).await.map_err(|e| ApiError::internal(&e))?;
    let next_after = (rows.len() == limit as usize).then(|| rows.last().map(|r| r.seq)).flatten();
    let events = rows
        .into_iter()
        .map(|r| AuditEventView {
            seq: r.seq,
            at: r.at.to_rfc3339_shanghai(),
            actor: r.actor,
            action: r.action,
            object: r.object,
            estate_id: r.estate_id,
            detail: serde_json::from_str::<Value>(&r.detail_json).unwrap_or_default(),
            hash: r.hash,
        })
        .collect();
    Ok(axum::Json(AuditPage { events, next_after }))
}

/// What the audit-chain check found.
#[derive(Serialize, ToSchema)]
pub(crate) struct AuditVerifyView {
    /// Whether the chain verified.
    ok: bool,
    /// Events read.
    events: u64,
    /// The hash of the last event (64 zeros for an empty log).
    head: String,
    /// The first fault, if the chain is broken.
    fault: Option<AuditFaultView>,
}

/// Where the chain breaks.
#[derive(Serialize, ToSchema)]
pub(crate) struct AuditFaultView {
    /// The first bad sequence number.
    seq: i64,
    /// Why, e.g. `hash mismatch`.
    reason: String,
}

/// 校验审计链 / Verify the audit chain
///
/// `GET /api/audit/verify`: recomputes the hash chain; names the first bad sequence number.
#[utoipa::path(
    get,
    path = "/api/audit/verify",
    tag = "audit",
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "校验结果 / The result", body = AuditVerifyView),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn audit_verify(State(s): State<Arc<AppState>>) -> Res<impl IntoResponse> {
    let report = s.engine.store().verify_audit().await.map_err(|e| ApiError::internal(&e))?;
    Ok(axum::Json(AuditVerifyView {
        ok: report.is_ok(),
        events: report.events,
        head: report.head,
        fault: report.fault.map(|f| AuditFaultView { seq: f.seq, reason: f.reason }),
    }))
}
