//! Route handlers, and [`table`]: every route with the access it needs. Handlers live by
//! resource: `records` (record work), `registry` and `registry_admin` (the registry), `ledger`
//! (imports and exports), `admin` (accounts and audit), `session` (sign-in); health, plugins and
//! enablement are here.
//!
//! Every record answer is made by the host's one projection (see `records`). Every handler
//! carries its `#[utoipa::path]` annotation; [`crate::openapi`] collects them.

pub(crate) mod admin;
mod cursor;
pub(crate) mod ledger;
pub(crate) mod records;
pub(crate) mod registry;
pub(crate) mod registry_admin;
pub(crate) mod session;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, delete, get, patch, post, put};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use jiayuan_domain::{Date, Division, DivisionCode, Estate, EstateId, FirmId};
use jiayuan_host::access::Action;
use jiayuan_host::enablement::Decision;
use jiayuan_host::plugins::PluginReportEntry;
use jiayuan_host::registry::{PersonOutcome, RegistryError};
use jiayuan_store::{Change, EnablementOverride, EnablementScope};

use crate::error::ApiError;
use crate::extract::{CallerExt, Json, Path, Query};
use crate::openapi::{
    BadRequest, Conflict, DocKindName, Forbidden, HukouName, Internal, Invalid, NotFound, SexName, Unauthenticated,
};
use crate::privacy;
use crate::{Access, AppState, RouteInfo};

type Res<T> = Result<T, ApiError>;

/// Every route: method, path, access, handler. The router and [`crate::inventory`] are built
/// from this table alone.
pub(crate) fn table() -> Vec<(RouteInfo, MethodRouter<Arc<AppState>>)> {
    use crate::idempotency::idempotent as idem;
    use Access::{Action as Do, Authenticated, Public};
    use Action::*;
    use records as rec;
    use registry_admin as ra;
    let r = |method: Method, path: &'static str, access: Access, handler: MethodRouter<Arc<AppState>>| {
        (RouteInfo { method, path, access }, handler)
    };
    vec![
        r(Method::GET, "/api/health", Public, get(health)),
        r(Method::GET, "/api/openapi.json", Public, get(openapi_json)),
        r(Method::GET, "/api/metrics", Do(ReadStatus), get(metrics)),
        r(Method::POST, "/api/auth/login", Public, post(session::login)),
        r(Method::POST, "/api/auth/logout", Authenticated, post(session::logout)),
        r(Method::GET, "/api/auth/me", Authenticated, get(session::me)),
        r(Method::GET, "/api/plugins", Do(ReadStatus), get(plugins)),
        r(Method::GET, "/api/plugins/{id}/manifest", Do(ReadStatus), get(manifest)),
        r(Method::POST, "/api/items/{plugin}/records", Do(WriteRecords), idem(post(rec::create))),
        r(Method::GET, "/api/items/{plugin}/records", Do(ReadRecords), get(rec::list)),
        r(Method::GET, "/api/items/{plugin}/records/{id}", Do(ReadRecords), get(rec::get_record)),
        r(Method::GET, "/api/items/{plugin}/records/{id}/history", Do(ReadRecords), get(rec::history)),
        r(Method::POST, "/api/items/{plugin}/records/{id}/unmask", Do(Unmask), post(rec::unmask)),
        r(
            Method::POST,
            "/api/items/{plugin}/records/{id}/transitions/{transition}",
            Do(WriteRecords),
            post(rec::transition),
        ),
        r(Method::PUT, "/api/items/{plugin}/records/{id}/assignee", Do(WriteRecords), put(rec::assign)),
        r(Method::GET, "/api/items/{plugin}/exports/{kind}", Do(Export), get(ledger::export_records)),
        r(Method::GET, "/api/items/{plugin}/kpis", Do(ReadRecords), get(rec::kpis)),
        r(Method::GET, "/api/alerts", Do(ReadRecords), get(rec::alerts)),
        r(Method::GET, "/api/inbox", Do(ReadRecords), get(rec::inbox)),
        r(Method::GET, "/api/registry/divisions", Do(ReadRegistry), get(divisions)),
        r(Method::GET, "/api/registry/grid-cells", Do(ReadRegistry), get(registry::grid_cells)),
        r(Method::GET, "/api/registry/estates", Do(ReadRegistry), get(estates)),
        r(Method::GET, "/api/registry/estates/{id}", Do(ReadRegistry), get(registry::estate)),
        r(Method::GET, "/api/registry/estates/{id}/assignments", Do(ReadRegistry), get(registry::assignments)),
        r(Method::GET, "/api/registry/firms", Do(ReadRegistry), get(firms)),
        r(Method::PUT, "/api/registry/divisions", Do(ManageDivisions), idem(put(ra::put_division))),
        r(Method::GET, "/api/registry/divisions/versions", Do(ReadRegistry), get(ra::division_versions)),
        r(Method::PUT, "/api/registry/grid-cells/{code}", Do(ManageEstates), idem(put(ra::put_grid_cell))),
        r(Method::PUT, "/api/registry/estates/{id}", Do(ManageEstates), idem(put(ra::put_estate))),
        r(Method::GET, "/api/registry/estates/{id}/buildings", Do(ReadRegistry), get(ra::estate_buildings)),
        r(Method::GET, "/api/registry/estates/{id}/houses", Do(ReadRegistry), get(ra::estate_houses)),
        r(Method::PUT, "/api/registry/firms/{credit_code}", Do(ManageDivisions), idem(put(ra::put_firm))),
        r(Method::POST, "/api/registry/assignments", Do(ManageEstates), idem(post(ra::put_assignment))),
        r(Method::POST, "/api/registry/assignments/{id}/end", Do(ManageEstates), idem(post(ra::end_assignment))),
        r(Method::POST, "/api/registry/buildings", Do(ManageBuildings), idem(post(ra::put_building))),
        r(Method::POST, "/api/registry/houses", Do(ManageBuildings), idem(post(ra::put_house))),
        r(Method::POST, "/api/registry/occupancies", Do(WriteResidents), idem(post(ra::put_occupancy))),
        r(Method::POST, "/api/registry/occupancies/{id}/end", Do(WriteResidents), idem(post(ra::end_occupancy))),
        r(Method::GET, "/api/registry/houses/{id}/occupancies", Do(ReadRegistry), get(ra::house_occupancies)),
        r(Method::GET, "/api/registry/houses/{id}/leases", Do(ReadRegistry), get(ra::house_leases)),
        r(Method::POST, "/api/registry/leases", Do(WriteResidents), idem(post(ra::put_lease))),
        r(Method::POST, "/api/registry/persons", Do(WriteResidents), idem(post(create_person))),
        r(Method::POST, "/api/registry/imports/{kind}", Do(ImportLedgers), idem(post(ledger::import))),
        r(Method::GET, "/api/registry/exports/{kind}", Do(Export), get(ledger::export)),
        r(Method::GET, "/api/registry/templates/{kind}", Do(ImportLedgers), get(ledger::template)),
        r(Method::GET, "/api/registry/persons/{id}/occupancies", Do(ReadRegistry), get(ra::person_occupancies)),
        r(Method::GET, "/api/registry/persons", Do(ReadRegistry), get(registry::find_persons)),
        r(Method::GET, "/api/registry/persons/{id}", Do(ReadRegistry), get(registry::person)),
        r(Method::GET, "/api/registry/persons/{id}/records", Do(AnswerDataRequests), get(rec::person_records)),
        r(Method::GET, "/api/registry/agency-units", Do(ReadRegistry), get(ra::agency_units)),
        r(Method::POST, "/api/registry/agency-units", Do(ManageDivisions), idem(post(ra::put_agency_unit))),
        r(Method::POST, "/api/registry/persons/{id}/unmask", Do(Unmask), post(registry::unmask_person)),
        r(Method::GET, "/api/enablement/overrides", Do(ReadEnablement), get(enablement_overrides)),
        r(Method::PUT, "/api/enablement/{item}", Do(ManageEnablement), put(set_enablement)),
        r(Method::DELETE, "/api/enablement/{item}", Do(ManageEnablement), delete(clear_enablement)),
        r(Method::GET, "/api/enablement/{item}/estates/{id}", Do(ReadEnablement), get(enablement_decision)),
        r(Method::GET, "/api/accounts", Do(ManageAccounts), get(admin::accounts)),
        r(Method::POST, "/api/accounts", Do(ManageAccounts), post(admin::create_account)),
        r(Method::PATCH, "/api/accounts/{id}", Do(ManageAccounts), patch(admin::update_account)),
        r(Method::POST, "/api/accounts/{id}/password", Do(ManageAccounts), post(admin::reset_password)),
        r(Method::PUT, "/api/accounts/{id}/disabled", Do(ManageAccounts), put(admin::set_disabled)),
        r(Method::GET, "/api/accounts/{id}/tokens", Do(ManageAccounts), get(admin::tokens)),
        r(Method::POST, "/api/accounts/{id}/tokens", Do(ManageAccounts), post(admin::issue_token)),
        r(Method::DELETE, "/api/accounts/{id}/tokens/{token}", Do(ManageAccounts), delete(admin::revoke_token)),
        r(Method::GET, "/api/audit/events", Do(ReadAudit), get(admin::audit_events)),
        r(Method::GET, "/api/audit/verify", Do(ReadAudit), get(admin::audit_verify)),
    ]
}

/// 健康检查 / Liveness and readiness
///
/// `GET /api/health` (public): liveness and readiness for load balancers. 200 while the
/// database answers (503 otherwise); `degraded` when a plugin failed to load or is quarantined.
/// Details are behind `GET /api/plugins`; a failing database's cause is logged, not shown.
#[utoipa::path(
    get,
    path = "/api/health",
    tag = "system",
    responses(
        (status = 200, description = "数据库可用 / The database answers", body = Health),
        (status = 503, description = "数据库不可用 / The database does not answer", body = Health),
    )
)]
pub(crate) async fn health(State(s): State<Arc<AppState>>) -> impl IntoResponse {
    let db = s.engine.store().ping().await;
    if let Err(e) = &db {
        tracing::error!(error = %privacy::scrub(&e.to_string()), "health check: the database does not answer");
    }
    let failed = s.engine.plugins().report().iter().filter(|p| !p.is_healthy()).count();
    let status = if db.is_ok() && failed == 0 { "ok" } else { "degraded" };
    let code = if db.is_ok() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (
        code,
        axum::Json(Health {
            status,
            database: if db.is_ok() { "ok" } else { "unavailable" },
            plugins_failed: failed,
            uptime_secs: s.started.elapsed().as_secs(),
        }),
    )
}

/// Liveness and readiness.
#[derive(Serialize, ToSchema)]
pub(crate) struct Health {
    /// `ok`, or `degraded` when the database does not answer or a plugin failed or is quarantined.
    #[schema(example = "ok")]
    status: &'static str,
    /// `ok` or `unavailable`.
    #[schema(example = "ok")]
    database: &'static str,
    /// Plugins that failed to load or are quarantined.
    plugins_failed: usize,
    /// Seconds since the server started.
    uptime_secs: u64,
}

/// OpenAPI 文档 / The OpenAPI document
///
/// `GET /api/openapi.json` (public): this API's OpenAPI 3 document, generated from the code.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "system",
    responses(
        (
            status = 200,
            description = "OpenAPI 3 文档 / The OpenAPI 3 document",
            body = Object,
            content_type = "application/json",
        ),
    )
)]
pub(crate) async fn openapi_json() -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], crate::openapi::json())
}

/// Prometheus 指标 / Prometheus metrics
///
/// `GET /api/metrics`: Prometheus metrics (text exposition format) of the requests served by this
/// host instance: `http_requests_total{method,route,status}` and
/// `http_request_duration_seconds{method,route}`, by route template.
#[utoipa::path(
    get,
    path = "/api/metrics",
    tag = "system",
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (
            status = 200,
            description = "Prometheus 文本格式 / Prometheus text exposition format",
            body = String,
            content_type = "text/plain; version=0.0.4",
        ),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
    )
)]
pub(crate) async fn metrics() -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], crate::telemetry::render())
}

/// Every plugin the host tried to load.
#[derive(Serialize, ToSchema)]
pub(crate) struct PluginList {
    /// Id, status (loaded, failed or quarantined) and load details of each plugin.
    #[schema(value_type = Vec<Object>)]
    plugins: Vec<PluginReportEntry>,
}

/// 插件状态 / Plugins and their status
///
/// `GET /api/plugins`: every plugin the host tried to load, with its status.
#[utoipa::path(
    get,
    path = "/api/plugins",
    tag = "system",
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "插件列表 / The plugins", body = PluginList),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn plugins(State(s): State<Arc<AppState>>) -> impl IntoResponse {
    axum::Json(PluginList { plugins: s.engine.plugins().report() })
}

/// 服务事项清单 / A service item's manifest
///
/// `GET /api/plugins/{id}/manifest`: the item's record kinds, fields, workflows, deadline rules,
/// keys and KPIs.
#[utoipa::path(
    get,
    path = "/api/plugins/{id}/manifest",
    tag = "system",
    params(("id" = String, Path, description = "服务事项 id / Service item (plugin) id", example = "dog-licensing")),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "清单 / The manifest", body = Object),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
pub(crate) async fn manifest(State(s): State<Arc<AppState>>, Path(id): Path<String>) -> Res<impl IntoResponse> {
    let handle = s.engine.plugins().handle(&id).ok_or_else(|| {
        ApiError::client(
            StatusCode::NOT_FOUND,
            "unknown_item",
            format!("没有已加载的服务事项 `{id}`"),
            format!("no service item `{id}` is loaded"),
        )
    })?;
    Ok(axum::Json(handle.manifest().clone()))
}

/// The administrative divisions.
#[derive(Serialize, ToSchema)]
pub(crate) struct DivisionList {
    /// District, streets and communities: code, name, level and parent.
    #[schema(value_type = Vec<Object>)]
    divisions: Vec<Division>,
}

/// 行政区划 / Divisions
///
/// `GET /api/registry/divisions`.
#[utoipa::path(
    get,
    path = "/api/registry/divisions",
    tag = "registry",
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "区划 / The divisions", body = DivisionList),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn divisions(State(s): State<Arc<AppState>>) -> Res<impl IntoResponse> {
    let divisions = s.engine.store().divisions().await.map_err(|e| ApiError::internal(&e))?;
    Ok(axum::Json(DivisionList { divisions }))
}

/// Estates.
#[derive(Serialize, ToSchema)]
pub(crate) struct EstateList {
    /// The estates in the caller's scope.
    #[schema(value_type = Vec<Object>)]
    estates: Vec<Estate>,
}

/// 小区列表 / Estates
///
/// `GET /api/registry/estates`: the estates in the caller's scope.
#[utoipa::path(
    get,
    path = "/api/registry/estates",
    tag = "registry",
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "权限范围内的小区 / The estates in the caller's scope", body = EstateList),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn estates(State(s): State<Arc<AppState>>, CallerExt(caller): CallerExt) -> Res<impl IntoResponse> {
    let all = s.engine.store().estates().await.map_err(|e| ApiError::internal(&e))?;
    let mut visible = Vec::with_capacity(all.len());
    for e in all {
        if registry::in_scope(&s, &caller, Action::ReadRegistry, e.id).await?.is_some() {
            visible.push(e);
        }
    }
    Ok(axum::Json(EstateList { estates: visible }))
}

/// 物业企业 / Property-management firms
///
/// `GET /api/registry/firms`. The legal representative and the contact phone are personal
/// information and masked; there is no unmasked read yet.
#[utoipa::path(
    get,
    path = "/api/registry/firms",
    tag = "registry",
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "物业企业（联系人信息已脱敏） / The firms (contacts masked)", body = FirmList),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn firms(State(s): State<Arc<AppState>>) -> Res<impl IntoResponse> {
    let f = s.engine.store().firms().await.map_err(|e| ApiError::internal(&e))?;
    Ok(axum::Json(FirmList { firms: f.iter().map(privacy::firm_view).collect() }))
}

/// Property-management firms.
#[derive(Serialize, ToSchema)]
pub(crate) struct FirmList {
    /// Each firm: credit code, name, kind; the legal representative and contact phone masked.
    #[schema(value_type = Vec<Object>)]
    firms: Vec<Value>,
}

/// Whether an item runs in an estate.
#[derive(Serialize, ToSchema)]
pub(crate) struct EnablementAnswer {
    /// The service item.
    item: String,
    /// The estate.
    estate_id: i64,
    /// Its name.
    estate_name: String,
    /// Enabled or not, and the configuration level or override that decided it.
    #[schema(value_type = Object)]
    decision: Decision,
}

/// 事项是否在小区启用 / Whether an item runs in an estate
///
/// `GET /api/enablement/{item}/estates/{id}`: whether an item runs in an estate, and why.
#[utoipa::path(
    get,
    path = "/api/enablement/{item}/estates/{id}",
    tag = "enablement",
    params(
        ("item" = String, Path, description = "服务事项 id / Service item id", example = "dog-licensing"),
        ("id" = i64, Path, description = "小区 id / Estate id"),
    ),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "判定及依据 / The decision and why", body = EnablementAnswer),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn enablement_decision(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Path((item, estate)): Path<(String, i64)>,
) -> Res<impl IntoResponse> {
    let Some((place, name)) = registry::in_scope(&s, &caller, Action::ReadEnablement, EstateId(estate)).await? else {
        return Err(registry::estate_not_found(estate));
    };
    let d = s.engine.enablement().decide(s.engine.store(), &item, &place).await.map_err(|e| ApiError::internal(&e))?;
    Ok(axum::Json(EnablementAnswer { item, estate_id: estate, estate_name: name, decision: d }))
}

/// A run-time enablement override.
#[derive(Serialize, ToSchema)]
pub(crate) struct OverrideView {
    /// The service item.
    item: String,
    /// `district`, `street`, `estate` or `firm`.
    #[schema(example = "estate")]
    scope: &'static str,
    /// Street code, estate id or firm id (`null` for `district`).
    code: Option<String>,
    /// Whether it switches the item on or off there.
    enabled: bool,
    /// Why.
    reason: String,
    /// Who.
    changed_by: String,
    /// When (RFC 3339, +08:00).
    changed_at: String,
}

/// The run-time overrides.
#[derive(Serialize, ToSchema)]
pub(crate) struct OverrideList {
    /// Every stored override.
    overrides: Vec<OverrideView>,
}

/// 启用覆盖设置 / Run-time enablement overrides
///
/// `GET /api/enablement/overrides`.
#[utoipa::path(
    get,
    path = "/api/enablement/overrides",
    tag = "enablement",
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "覆盖设置 / The overrides", body = OverrideList),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn enablement_overrides(State(s): State<Arc<AppState>>) -> Res<impl IntoResponse> {
    let o = s.engine.store().enablement_overrides().await.map_err(|e| ApiError::internal(&e))?;
    let overrides = o
        .into_iter()
        .map(|o| {
            let (scope, code) = scope_parts(&o.scope);
            OverrideView {
                item: o.item,
                scope,
                code,
                enabled: o.enabled,
                reason: o.reason,
                changed_by: o.changed_by,
                changed_at: o.changed_at.to_rfc3339_shanghai(),
            }
        })
        .collect();
    Ok(axum::Json(OverrideList { overrides }))
}

fn scope_parts(s: &EnablementScope) -> (&'static str, Option<String>) {
    match s {
        EnablementScope::District => ("district", None),
        EnablementScope::Street(c) => ("street", Some(c.to_string())),
        EnablementScope::Estate(e) => ("estate", Some(e.to_string())),
        EnablementScope::Firm(f) => ("firm", Some(f.to_string())),
    }
}

/// A run-time enablement override to store.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OverrideBody {
    /// `district`, `street`, `estate` or `firm`.
    #[schema(example = "estate")]
    scope: String,
    /// Street code, estate id or firm id (absent for `district`).
    #[serde(default)]
    code: Option<String>,
    /// Switch the item on (`true`) or off there.
    enabled: bool,
    /// Why (required).
    reason: String,
}

fn parse_scope(scope: &str, code: Option<&str>) -> Result<EnablementScope, ApiError> {
    let bad = |en: String| ApiError::bad_request("code", "bad_scope", "范围编码有误".into(), en);
    let need = || code.ok_or_else(|| bad(format!("scope `{scope}` needs a `code`")));
    Ok(match scope {
        "district" => EnablementScope::District,
        "street" => {
            let c = DivisionCode::parse(need()?).map_err(|e| bad(e.to_string()))?;
            if c.level() != jiayuan_domain::DivisionLevel::Street {
                return Err(bad(format!("`{c}` is not a street code")));
            }
            EnablementScope::Street(c)
        }
        "estate" => {
            EnablementScope::Estate(EstateId(need()?.parse().map_err(|_| bad("estate id must be an integer".into()))?))
        }
        "firm" => EnablementScope::Firm(FirmId(need()?.parse().map_err(|_| bad("firm id must be an integer".into()))?)),
        other => {
            return Err(ApiError::bad_request(
                "scope",
                "bad_scope",
                format!("未知范围 `{other}`"),
                format!("unknown scope `{other}`; use district, street, estate or firm"),
            ));
        }
    })
}

/// 设置启用覆盖 / Set a run-time override
///
/// `PUT /api/enablement/{item}`: store a run-time override (district admin only).
#[utoipa::path(
    put,
    path = "/api/enablement/{item}",
    tag = "enablement",
    params(("item" = String, Path, description = "服务事项 id / Service item id", example = "dog-licensing")),
    request_body = OverrideBody,
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 204, description = "已保存 / Stored"),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn set_enablement(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Path(item): Path<String>,
    Json(body): Json<OverrideBody>,
) -> Res<impl IntoResponse> {
    if s.engine.plugins().handle(&item).is_none() {
        return Err(ApiError::client(
            StatusCode::NOT_FOUND,
            "unknown_item",
            format!("没有已加载的服务事项 `{item}`"),
            format!("no service item `{item}` is loaded"),
        ));
    }
    if body.reason.trim().is_empty() {
        return Err(ApiError::bad_request(
            "reason",
            "required",
            "请填写变更原因".into(),
            "`reason` is required".into(),
        ));
    }
    let scope = parse_scope(&body.scope, body.code.as_deref())?;
    let o = EnablementOverride {
        item: item.clone(),
        scope,
        enabled: body.enabled,
        reason: body.reason,
        changed_by: caller.name.clone(),
        changed_at: s.engine.clock().now(),
    };
    s.engine.enablement().set_override(s.engine.store(), &o).await.map_err(|e| ApiError::internal(&e))?;
    tracing::info!(item, enabled = o.enabled, by = %caller.name, "enablement override set");
    Ok(StatusCode::NO_CONTENT)
}

/// Which override to remove.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ClearQuery {
    /// `district`, `street`, `estate` or `firm`.
    #[param(example = "estate")]
    scope: String,
    /// Street code, estate id or firm id (absent for `district`).
    code: Option<String>,
}

/// 删除启用覆盖 / Remove a run-time override
///
/// `DELETE /api/enablement/{item}?scope=&code=`: remove a run-time override.
#[utoipa::path(
    delete,
    path = "/api/enablement/{item}",
    tag = "enablement",
    params(("item" = String, Path, description = "服务事项 id / Service item id", example = "dog-licensing"), ClearQuery),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 204, description = "已删除 / Removed"),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn clear_enablement(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Path(item): Path<String>,
    Query(q): Query<ClearQuery>,
) -> Res<impl IntoResponse> {
    let scope = parse_scope(&q.scope, q.code.as_deref())?;
    let removed = s
        .engine
        .enablement()
        .clear_override(s.engine.store(), &item, &scope, &caller.name, s.engine.clock().now())
        .await
        .map_err(|e| ApiError::internal(&e))?;
    if removed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::client(StatusCode::NOT_FOUND, "not_found", "没有这条覆盖设置", "no such override"))
    }
}

/// A resident to register.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PersonBody {
    /// Name (1–50 characters).
    name: String,
    /// Kind of identity document.
    #[schema(value_type = DocKindName)]
    doc_kind: jiayuan_domain::DocKind,
    /// Document number (checked per kind, e.g. the GB 11643 check digit).
    doc_number: String,
    /// Sex; taken from the document when it encodes it (and must agree).
    #[serde(default)]
    #[schema(value_type = Option<SexName>)]
    sex: Option<jiayuan_domain::Sex>,
    /// Birth date (YYYY-MM-DD); taken from the document when it encodes it.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    birth_date: Option<Date>,
    /// Household registration.
    #[schema(value_type = HukouName)]
    hukou: jiayuan_domain::Hukou,
    /// Mobile number.
    #[serde(default)]
    phone: Option<String>,
    /// The house they live in: registered as an occupancy from today.
    #[serde(default)]
    house_id: Option<i64>,
    /// 与户主关系 how they relate to that house (default `other`).
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "owner")]
    relation: Option<jiayuan_domain::Relation>,
    /// Whether that house is their primary residence (default `true`).
    #[serde(default)]
    primary: Option<bool>,
}

/// 登记人员 / Register a resident
///
/// `POST /api/registry/persons`: registers a resident. The identity document is validated per
/// kind (GB 11643 check digit and birth date for 居民身份证), the phone normalised; sex and birth
/// date are taken from the document when it encodes them.
#[utoipa::path(
    post,
    path = "/api/registry/persons",
    tag = "registry",
    request_body = PersonBody,
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 201, description = "已登记（已脱敏） / Registered (masked)", body = registry::PersonView),
        (status = 202, description = "已提交区级核对 / Referred to the district for review", body = registry_admin::Referred),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
        (status = 422, response = Invalid),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn create_person(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Json(body): Json<PersonBody>,
) -> Res<impl IntoResponse> {
    use jiayuan_plugin_api::FieldViolation;
    let today = s.engine.clock().now().shanghai_date();
    let mut violations = Vec::new();
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 50 {
        violations.push(FieldViolation::new(
            "name",
            "bad_name",
            "姓名不能为空且不超过 50 个字",
            "name must be 1 to 50 characters",
        ));
    }
    let doc = match jiayuan_domain::identity::validate_doc(body.doc_kind, &body.doc_number, today) {
        Ok(d) => Some(d),
        Err(e) => {
            violations.push(FieldViolation::new(
                "doc_number",
                "bad_document",
                format!("{}号码无效", body.doc_kind.name_zh()),
                e.to_string(),
            ));
            None
        }
    };
    let phone = match body.phone.as_deref().map(jiayuan_domain::phone::Phone::parse) {
        None => None,
        Some(Ok(p)) => Some(p.as_str().to_owned()),
        Some(Err(e)) => {
            violations.push(FieldViolation::new("phone", "bad_phone", "电话号码无效", e.to_string()));
            None
        }
    };
    let house = match body.house_id {
        None => None,
        Some(id) => {
            let found =
                s.engine.store().house(jiayuan_domain::HouseId(id)).await.map_err(|e| ApiError::internal(&e))?;
            // A house outside the caller's scope is as unknown to them as a missing one.
            let visible = match found.as_ref().map(|h| h.estate_id) {
                Some(Some(estate)) => registry::in_scope(&s, &caller, Action::WriteResidents, estate).await?.is_some(),
                Some(None) => caller.reach == jiayuan_host::access::Reach::District,
                None => false,
            };
            if !visible {
                violations.push(house_not_found(id));
            }
            Some(jiayuan_domain::HouseId(id))
        }
    };
    let Some(doc) = doc.filter(|_| violations.is_empty()) else {
        return Err(ApiError::invalid(violations));
    };
    if let (Some(given), Some(encoded)) = (body.sex, doc.sex)
        && given != encoded
    {
        return Err(ApiError::invalid(vec![FieldViolation::new(
            "sex",
            "contradicts_document",
            "性别与证件号码不符",
            "sex contradicts the identity number",
        )]));
    }
    let new = jiayuan_store::NewPerson {
        name: name.to_owned(),
        doc: doc.to_identity_doc(),
        sex: body.sex.or(doc.sex),
        birth_date: body.birth_date.or(doc.birth_date),
        hukou: body.hukou,
        phone,
    };
    let primary = body.primary.unwrap_or(true);
    let mut write = s.engine.registry().begin(&caller).await.map_err(registry_admin::registry_error)?;
    let id = match write.put_person(&new).await.map_err(registry_admin::registry_error)? {
        PersonOutcome::Referred { .. } => {
            // Commit the conflict's audit event; say nothing about who holds the document.
            write.commit().await.map_err(registry_admin::registry_error)?;
            return Ok((StatusCode::ACCEPTED, axum::Json(json!(registry_admin::Referred::new()))).into_response());
        }
        PersonOutcome::Written(Change::Inserted(id)) => id,
        PersonOutcome::Written(_) => {
            write.rollback().await.map_err(registry_admin::registry_error)?;
            return Err(ApiError::client(
                StatusCode::CONFLICT,
                "duplicate_person",
                "该证件已登记",
                "a person with this identity document is already registered",
            ));
        }
    };
    if let Some(house) = house {
        let occupancy = jiayuan_store::NewOccupancy {
            person_id: id,
            house_id: house,
            from: today,
            to: None,
            relation: body.relation.unwrap_or(jiayuan_domain::Relation::Other),
            primary,
            reported_at: Some(s.engine.clock().now()),
        };
        match write.put_occupancy(&occupancy).await {
            Ok(_) => {}
            // The house went out of reach (or away) meanwhile: as unknown as a missing one.
            Err(RegistryError::Denied(jiayuan_host::access::Denied::OutOfScope)) => {
                return Err(ApiError::invalid(vec![house_not_found(house.0)]));
            }
            Err(e) => return Err(registry_admin::registry_error(e)),
        }
    }
    write.commit().await.map_err(registry_admin::registry_error)?;
    let person = jiayuan_domain::Person {
        id,
        name: new.name,
        doc: new.doc,
        sex: new.sex,
        birth_date: new.birth_date,
        hukou: new.hukou,
        phone: new.phone,
        house_id: house.filter(|_| primary),
    };
    let view = registry::PersonView::masked(&person);
    Ok((StatusCode::CREATED, axum::Json(view)).into_response())
}

fn house_not_found(id: i64) -> jiayuan_plugin_api::FieldViolation {
    jiayuan_plugin_api::FieldViolation::new(
        "house_id",
        "not_found",
        format!("房屋 {id} 不存在"),
        format!("house {id} does not exist"),
    )
}
