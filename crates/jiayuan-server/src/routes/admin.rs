//! Account administration and the audit log, for the district admin (accounts) and the auditor
//! (audit). Account changes and token issues are audited by the store in the same transaction.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::json;

use jiayuan_domain::{AccountId, AccountScope, Role, Timestamp};

use super::Res;
use super::session::account_view;
use crate::AppState;
use crate::accounts::{self, AccountDraft, AccountsError};
use crate::error::ApiError;
use crate::extract::{AuthExt, Json, Path, Query};

impl From<AccountsError> for ApiError {
    fn from(e: AccountsError) -> ApiError {
        let en = e.to_string();
        match e {
            AccountsError::Invalid(_) | AccountsError::UnknownItem(_) => {
                ApiError::bad_request("account", "invalid_account", "账号信息有误".into(), en)
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

/// `GET /api/accounts`.
pub(crate) async fn accounts(State(s): State<Arc<AppState>>) -> Res<impl IntoResponse> {
    let all = s.engine.store().accounts().await.map_err(|e| ApiError::internal(&e))?;
    Ok(axum::Json(json!({ "accounts": all.iter().map(account_view).collect::<Vec<_>>() })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewAccountBody {
    login: String,
    display_name: String,
    role: Role,
    /// `district`, `street:<code>`, `community:<code>` or `firm:<id>`.
    scope: String,
    #[serde(default)]
    items: Option<Vec<String>>,
    #[serde(default)]
    password: Option<String>,
}

/// `POST /api/accounts`.
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
    };
    let now = s.engine.clock().now();
    let account =
        accounts::create_account(s.engine.store(), s.auth.config(), draft, &known, &who.account.login, now).await?;
    Ok((StatusCode::CREATED, axum::Json(json!({ "account": account_view(&account) }))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordBody {
    password: String,
}

/// `POST /api/accounts/{id}/password`: sets a new password; the account's sessions end.
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DisabledBody {
    disabled: bool,
}

/// `PUT /api/accounts/{id}/disabled`: disables (ending its sessions) or re-enables an account.
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

/// `GET /api/accounts/{id}/tokens`: the account's tokens (prefixes only, never the tokens).
pub(crate) async fn tokens(State(s): State<Arc<AppState>>, Path(id): Path<i64>) -> Res<impl IntoResponse> {
    let t = s.engine.store().api_tokens(AccountId(id)).await.map_err(|e| ApiError::internal(&e))?;
    let t: Vec<_> = t
        .into_iter()
        .map(|t| {
            json!({"id": t.id, "name": t.name, "prefix": t.prefix,
                   "created_at": t.created_at.to_rfc3339_shanghai(),
                   "expires_at": t.expires_at.map(Timestamp::to_rfc3339_shanghai),
                   "revoked_at": t.revoked_at.map(Timestamp::to_rfc3339_shanghai)})
        })
        .collect();
    Ok(axum::Json(json!({ "tokens": t })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenBody {
    name: String,
    /// Days until it expires; none for no expiry.
    #[serde(default)]
    expires_in_days: Option<u32>,
}

/// `POST /api/accounts/{id}/tokens`: issues an API token. The answer is the only time the token
/// is shown.
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
    Ok((StatusCode::CREATED, axum::Json(json!({ "id": t.id, "token": t.token, "prefix": t.prefix }))))
}

/// `DELETE /api/accounts/{id}/tokens/{token}`: revokes a token at once.
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditQuery {
    #[serde(default)]
    after: Option<i64>,
    #[serde(default)]
    limit: Option<u32>,
}

/// `GET /api/audit/events?after=&limit=`: the audit log in sequence order.
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
    let events: Vec<_> = rows
        .into_iter()
        .map(|r| {
            json!({"seq": r.seq, "at": r.at.to_rfc3339_shanghai(), "actor": r.actor, "action": r.action,
                   "object": r.object, "estate_id": r.estate_id,
                   "detail": serde_json::from_str::<serde_json::Value>(&r.detail_json).unwrap_or_default(),
                   "hash": r.hash})
        })
        .collect();
    Ok(axum::Json(json!({ "events": events, "next_after": next_after })))
}

/// `GET /api/audit/verify`: recomputes the hash chain; names the first bad sequence number.
pub(crate) async fn audit_verify(State(s): State<Arc<AppState>>) -> Res<impl IntoResponse> {
    let report = s.engine.store().verify_audit().await.map_err(|e| ApiError::internal(&e))?;
    Ok(axum::Json(json!({
        "ok": report.is_ok(),
        "events": report.events,
        "head": report.head,
        "fault": report.fault.as_ref().map(|f| json!({ "seq": f.seq, "reason": f.reason })),
    })))
}
