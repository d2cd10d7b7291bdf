//! 记录 record routes: create, list, get, unmask, history, transitions, assignment, the inbox,
//! alerts, KPIs, and the reference index of a person.
//!
//! Every record answer is made by the host's one projection (`jiayuan_schema::projection`,
//! through the engine): what the caller's audience may not see is absent, personal values
//! masked, masked non-text values named in `masked`. The one clear read is `…/unmask`, which
//! needs the unmask permission and a typed reason and appends an audit event before it answers.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use jiayuan_domain::{Date, EstateId, Place, RecordId, Timestamp};
use jiayuan_host::engine::{CreateRequest, ListRequest, RefKind, TransitionRequest};
use jiayuan_plugin_api::KpiValue;

use super::{Res, cursor};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{CallerExt, Json, Path, Query};
use crate::openapi::{
    BadRequest, Conflict, Forbidden, Internal, Invalid, NotFound, Record, RecordPage, Unauthenticated, Unavailable,
};
use crate::privacy;

/// Where a record sits, as a body names it: exactly one of an estate or a grid cell.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlaceBody {
    /// An estate.
    #[serde(default)]
    estate_id: Option<i64>,
    /// A grid cell (15-digit grid code), for work outside estates.
    #[serde(default)]
    #[schema(example = "440303001001001")]
    grid_cell: Option<String>,
}

impl PlaceBody {
    fn place(&self, field: &str) -> Res<Place> {
        match (self.estate_id, &self.grid_cell) {
            (Some(e), None) => Ok(Place::Estate(EstateId(e))),
            (None, Some(g)) if jiayuan_domain::parse_grid_code(g).is_ok() => Ok(Place::GridCell(g.clone())),
            (None, Some(_)) => Err(ApiError::bad_request(
                field,
                "bad_grid_code",
                "网格编码应为 15 位数字".into(),
                format!("`{field}.grid_cell` must be a 15-digit grid code"),
            )),
            _ => Err(ApiError::bad_request(
                field,
                "one_place",
                "请指定小区（estate_id）或网格（grid_cell）之一".into(),
                format!("`{field}` names exactly one of `estate_id` or `grid_cell`"),
            )),
        }
    }
}

/// An instant given as RFC 3339 text.
fn instant(field: &str, text: Option<&str>) -> Res<Option<Timestamp>> {
    text.map(|t| {
        Timestamp::parse_rfc3339(t).ok_or_else(|| {
            ApiError::bad_request(
                field,
                "bad_datetime",
                format!("`{field}` 应为带时区的 RFC 3339 时间"),
                format!("`{field}` must be an RFC 3339 instant with an offset"),
            )
        })
    })
    .transpose()
}

/// A new record.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateBody {
    /// Record kind of the item's manifest.
    #[schema(example = "dog")]
    kind: String,
    /// The estate it belongs to (or give `grid_cell`, for kinds that sit at grid cells).
    #[serde(default)]
    estate_id: Option<i64>,
    /// The grid cell it sits at, for work outside estates.
    #[serde(default)]
    grid_cell: Option<String>,
    /// The parent record, for kinds that have one (the child sits where its parent sits).
    #[serde(default)]
    parent_id: Option<i64>,
    /// The record's fields, typed by the manifest (`GET /api/plugins/{id}/manifest`).
    #[schema(value_type = Object)]
    data: Value,
    /// When it happened (RFC 3339; default now). Back-dating beyond the kind's bound needs a
    /// `backdate_reason`, and the entry is flagged.
    #[serde(default)]
    #[schema(example = "2026-11-30T08:15:00+08:00")]
    occurred_at: Option<String>,
    /// Why the entry is recorded late.
    #[serde(default)]
    backdate_reason: Option<String>,
}
/// 登记记录 / Create a record
///
/// `POST /api/items/{plugin}/records`. The answer's `data` is masked (personal and sensitive
/// fields of the manifest), as in every record read.
#[utoipa::path(
    post,
    path = "/api/items/{plugin}/records",
    tag = "records",
    operation_id = "create_record",
    params(("plugin" = String, Path, description = "服务事项 id / Service item (plugin) id", example = "dog-licensing")),
    request_body = CreateBody,
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 201, description = "已登记（data 已脱敏） / Created (data masked)", body = Record),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 422, response = Invalid),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    )
)]
pub(crate) async fn create(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Path(plugin): Path<String>,
    Json(body): Json<CreateBody>,
) -> Res<impl IntoResponse> {
    let place = if body.parent_id.is_some() && body.estate_id.is_none() && body.grid_cell.is_none() {
        None
    } else {
        Some(PlaceBody { estate_id: body.estate_id, grid_cell: body.grid_cell }.place("place")?)
    };
    let parent_id = body.parent_id.map(RecordId);
    let place = match (place, parent_id) {
        (Some(p), _) => p,
        // A child sits at its parent's place; the engine checks the parent is readable.
        (None, Some(parent)) => s.engine.get(&caller, &plugin, parent).await?.place,
        (None, None) => no_place()?,
    };
    let mut req = CreateRequest::new(&plugin, &body.kind, place, body.data);
    req.parent_id = parent_id;
    req.occurred_at = instant("occurred_at", body.occurred_at.as_deref())?;
    req.backdate_reason = body.backdate_reason;
    let view = s.engine.create(&caller, req).await?;
    Ok((StatusCode::CREATED, axum::Json(view)))
}

/// Filters and paging of a record listing.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only records of this kind.
    kind: Option<String>,
    /// Only records of this estate.
    estate_id: Option<i64>,
    /// Only records at this grid cell.
    grid_cell: Option<String>,
    /// Only records in these workflow states (comma-separated).
    #[param(example = "registered,renewed")]
    state: Option<String>,
    /// `field:value` of an indexed key.
    #[param(example = "tag_no:LH-0001")]
    key: Option<String>,
    /// Only children of this record.
    parent_id: Option<i64>,
    /// Order: `id` (default), `-id`, `updated_at` or `-updated_at` (ties broken by id).
    #[param(example = "-updated_at")]
    sort: Option<String>,
    /// The `next_cursor` of the previous page (opaque; only valid with the same `sort`).
    cursor: Option<String>,
    /// Page size, 1–200.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
}

/// 查询记录 / List records
///
/// `GET /api/items/{plugin}/records`. Each record's `data` is masked; there is no unmasked
/// listing (one record at a time, through the audited `…/unmask`).
#[utoipa::path(
    get,
    path = "/api/items/{plugin}/records",
    tag = "records",
    operation_id = "list_records",
    params(
        ("plugin" = String, Path, description = "服务事项 id / Service item (plugin) id", example = "dog-licensing"),
        ListQuery,
    ),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "一页记录（data 已脱敏） / A page of records (data masked)", body = RecordPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn list(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Path(plugin): Path<String>,
    Query(q): Query<ListQuery>,
) -> Res<impl IntoResponse> {
    let key = match q.key {
        None => None,
        Some(k) => Some(k.split_once(':').map(|(f, v)| (f.to_owned(), v.to_owned())).ok_or_else(|| {
            ApiError::bad_request(
                "key",
                "bad_key",
                "key 参数格式应为 字段:值".into(),
                "`key` must look like field:value".into(),
            )
        })?),
    };
    if q.limit.is_some_and(|l| l == 0 || l > 200) {
        return Err(ApiError::bad_request(
            "limit",
            "out_of_range",
            "limit 应在 1–200 之间".into(),
            "`limit` must be 1..=200".into(),
        ));
    }
    let order = cursor::parse_sort(q.sort.as_deref())?;
    let after = q.cursor.as_deref().map(|c| cursor::decode(c, order)).transpose()?;
    let req = ListRequest {
        kind: q.kind,
        estate_id: q.estate_id.map(EstateId),
        grid_cell: q.grid_cell,
        states: q.state.map(|s| s.split(',').map(str::to_owned).collect()).unwrap_or_default(),
        key,
        parent_id: q.parent_id.map(RecordId),
        order,
        after,
        limit: q.limit,
    };
    let page = s.engine.list(&caller, &plugin, req).await?;
    let next_cursor = page.next.map(|p| cursor::encode(order, p));
    Ok(axum::Json(PageBody { records: page.records, next_cursor }))
}

/// A page of records as the API answers it (the schema is [`crate::openapi::RecordPage`]).
#[derive(Serialize)]
pub(crate) struct PageBody {
    /// The records, data masked.
    pub(crate) records: Vec<jiayuan_host::engine::RecordView>,
    /// The cursor of the next page, if any.
    pub(crate) next_cursor: Option<String>,
}

/// 查看记录 / Get a record
///
/// `GET /api/items/{plugin}/records/{id}`. The `data` is masked; the clear read is the audited
/// `POST …/unmask` (unmask permission and a typed reason).
#[utoipa::path(
    get,
    path = "/api/items/{plugin}/records/{id}",
    tag = "records",
    params(
        ("plugin" = String, Path, description = "服务事项 id / Service item (plugin) id", example = "dog-licensing"),
        ("id" = i64, Path, description = "记录 id / Record id"),
    ),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "记录（data 已脱敏） / The record (data masked)", body = Record),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn get_record(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Path((plugin, id)): Path<(String, i64)>,
) -> Res<impl IntoResponse> {
    let view = s.engine.get(&caller, &plugin, RecordId(id)).await?;
    Ok(axum::Json(view))
}

/// 查看记录明文（留痕） / Get a record in clear (audited)
///
/// `POST /api/items/{plugin}/records/{id}/unmask`: the record with what the caller may see in
/// clear, for a typed reason: personal fields for roles that may unmask, a sensitive field only
/// for the audiences the manifest names (never a firm); what the caller's audience may not see
/// stays absent. Needs the unmask permission and the record in the caller's scope; the audit
/// event (`record.unmask`: reason, note, field names, never values) commits before the answer.
#[utoipa::path(
    post,
    path = "/api/items/{plugin}/records/{id}/unmask",
    tag = "records",
    operation_id = "unmask_record",
    params(
        ("plugin" = String, Path, description = "服务事项 id / Service item (plugin) id", example = "dog-licensing"),
        ("id" = i64, Path, description = "记录 id / Record id"),
    ),
    request_body = crate::privacy::UnmaskRequest,
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "记录明文 / The record in clear", body = Record),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn unmask(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Path((plugin, id)): Path<(String, i64)>,
    Json(body): Json<privacy::UnmaskRequest>,
) -> Res<impl IntoResponse> {
    body.check()?;
    let (view, fields) = s.engine.unmask(&caller, &plugin, RecordId(id)).await?;
    let names: Vec<&str> = fields.iter().map(String::as_str).collect();
    let audit = body.audit_event(
        &caller.name,
        "record.unmask",
        format!("{plugin}/record/{id}"),
        view.estate_id,
        &names,
        s.engine.clock().now(),
    );
    s.engine.store().append_audit(audit).await.map_err(|e| ApiError::internal(&e))?;
    Ok(axum::Json(view))
}

/// One event of a record's history (the schema of [`jiayuan_host::engine::EventView`]).
#[derive(Serialize, ToSchema)]
pub(crate) struct EventDoc {
    /// Position in the record's history, from 1.
    seq: i64,
    /// What: `create`, a transition id, `assign`, `move_with_parent`.
    action: String,
    /// The state before (`null` for the creation).
    from_state: Option<String>,
    /// The state after.
    to_state: String,
    /// Who (account login, or `system:…`).
    actor: String,
    /// When the host recorded it (RFC 3339, +08:00).
    recorded_at: String,
    /// When it happened, as declared.
    occurred_at: String,
    /// Why it was back-dated beyond the kind's bound; present means flagged.
    backdated_reason: Option<String>,
    /// Where the record sat after the entry.
    #[schema(value_type = Option<Object>)]
    place: Option<Value>,
    /// The record data after the change, as the caller may see it.
    #[schema(value_type = Object)]
    data: Value,
    /// Fields withheld because masked.
    masked: Vec<String>,
    /// Fields whose (projected) value changed with this entry.
    changed: Vec<String>,
}

/// A record's history.
#[derive(Serialize, ToSchema)]
pub(crate) struct EventList {
    /// The events, oldest first.
    #[schema(value_type = Vec<EventDoc>)]
    events: Vec<jiayuan_host::engine::EventView>,
}

/// 记录历史 / A record's history
///
/// `GET /api/items/{plugin}/records/{id}/history`. Each event's `data` (the record data after the
/// change) is masked like the record itself.
#[utoipa::path(
    get,
    path = "/api/items/{plugin}/records/{id}/history",
    tag = "records",
    operation_id = "record_history",
    params(
        ("plugin" = String, Path, description = "服务事项 id / Service item (plugin) id", example = "dog-licensing"),
        ("id" = i64, Path, description = "记录 id / Record id"),
    ),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "事件（data 已脱敏） / The events (data masked)", body = EventList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn history(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Path((plugin, id)): Path<(String, i64)>,
) -> Res<impl IntoResponse> {
    let events = s.engine.history(&caller, &plugin, RecordId(id)).await?;
    Ok(axum::Json(EventList { events }))
}

/// What a transition takes (the body may be left empty).
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TransitionBody {
    /// The transition's input fields, typed by the manifest.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    input: Option<Value>,
    /// The record version the caller saw; a different current version is 409.
    #[serde(default)]
    expected_version: Option<i64>,
    /// Where the record moves to, for a transition that moves it.
    #[serde(default)]
    move_to: Option<PlaceBody>,
    /// When it happened (RFC 3339; default now).
    #[serde(default)]
    occurred_at: Option<String>,
    /// Why the entry is recorded late.
    #[serde(default)]
    backdate_reason: Option<String>,
}

/// 办理流转 / Apply a workflow transition
///
/// `POST /api/items/{plugin}/records/{id}/transitions/{transition}`. The answer's `data` is masked.
#[utoipa::path(
    post,
    path = "/api/items/{plugin}/records/{id}/transitions/{transition}",
    tag = "records",
    operation_id = "transition_record",
    params(
        ("plugin" = String, Path, description = "服务事项 id / Service item (plugin) id", example = "dog-licensing"),
        ("id" = i64, Path, description = "记录 id / Record id"),
        ("transition" = String, Path, description = "流转 id / Transition id of the manifest", example = "renew"),
    ),
    request_body(content = Option<TransitionBody>, description = "可为空 / May be empty"),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "流转后的记录（data 已脱敏） / The record after the transition (data masked)", body = Record),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 422, response = Invalid),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    )
)]
pub(crate) async fn transition(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Path((plugin, id, transition)): Path<(String, i64, String)>,
    body: axum::body::Bytes,
) -> Res<impl IntoResponse> {
    // The body is optional: a transition without input may be posted empty.
    let body: TransitionBody = if body.iter().all(u8::is_ascii_whitespace) {
        TransitionBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(
                "body",
                "malformed_json",
                "请求体不是有效的 JSON 或结构不正确".into(),
                privacy::redact_echoed(&e.to_string()),
            )
        })?
    };
    let mut req = TransitionRequest::new(&plugin, RecordId(id), &transition, body.input.unwrap_or_else(|| json!({})));
    req.expected_version = body.expected_version;
    req.move_to = body.move_to.as_ref().map(|p| p.place("move_to")).transpose()?;
    req.occurred_at = instant("occurred_at", body.occurred_at.as_deref())?;
    req.backdate_reason = body.backdate_reason;
    let view = s.engine.transition(&caller, req).await?;
    Ok(axum::Json(view))
}

/// Which alerts.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AlertQuery {
    /// Only alerts of this service item.
    plugin: Option<String>,
    /// At most this many (default 100).
    limit: Option<u32>,
}

/// An open alert.
#[derive(Serialize, ToSchema)]
pub(crate) struct AlertView {
    /// Id.
    id: i64,
    /// Service item.
    plugin: String,
    /// The record it is about.
    record_id: Option<i64>,
    /// The estate it is about.
    estate_id: Option<i64>,
    /// The grid cell it is about.
    grid_cell: Option<String>,
    /// The deadline rule (or hook) that raised it.
    rule: String,
    /// `info`, `warning` or `critical`.
    #[schema(example = "warning")]
    severity: String,
    /// 中文说明.
    message_zh: String,
    /// In English.
    message_en: String,
    /// When the deadline falls due (RFC 3339, +08:00).
    due_at: Option<String>,
    /// When it was raised (RFC 3339, +08:00).
    raised_at: String,
}

/// Open alerts.
#[derive(Serialize, ToSchema)]
pub(crate) struct AlertList {
    /// The alerts in the caller's scope.
    alerts: Vec<AlertView>,
}

/// 待办告警 / Open alerts
///
/// `GET /api/alerts`: open alerts in the caller's scope.
#[utoipa::path(
    get,
    path = "/api/alerts",
    tag = "records",
    params(AlertQuery),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "告警 / The alerts", body = AlertList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn alerts(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Query(q): Query<AlertQuery>,
) -> Res<impl IntoResponse> {
    let alerts = s.engine.alerts(&caller, q.plugin.as_deref(), q.limit.unwrap_or(100)).await?;
    let alerts: Vec<AlertView> = alerts
        .into_iter()
        .map(|a| AlertView {
            id: a.id.0,
            plugin: a.plugin,
            record_id: a.record_id.map(|r| r.0),
            estate_id: a.estate_id.map(|e| e.0),
            grid_cell: a.grid_cell,
            rule: a.rule,
            severity: a.severity,
            message_zh: a.message_zh,
            message_en: a.message_en,
            due_at: a.due_at.map(Timestamp::to_rfc3339_shanghai),
            raised_at: a.raised_at.to_rfc3339_shanghai(),
        })
        .collect();
    Ok(axum::Json(AlertList { alerts }))
}

/// Which estate and period.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct KpiQuery {
    /// The estate.
    estate_id: i64,
    /// First day (YYYY-MM-DD, Asia/Shanghai).
    #[param(value_type = String, format = Date, example = "2026-11-01")]
    from: Date,
    /// Last day (YYYY-MM-DD), not before `from`.
    #[param(value_type = String, format = Date, example = "2026-11-30")]
    to: Date,
}

/// An item's KPI values.
#[derive(Serialize, ToSchema)]
pub(crate) struct KpiList {
    /// Each KPI of the manifest with its value for the estate and period.
    #[schema(value_type = Vec<Object>)]
    kpis: Vec<KpiValue>,
}

/// 服务事项指标 / A service item's KPIs
///
/// `GET /api/items/{plugin}/kpis?estate_id=&from=&to=`.
#[utoipa::path(
    get,
    path = "/api/items/{plugin}/kpis",
    tag = "records",
    params(
        ("plugin" = String, Path, description = "服务事项 id / Service item (plugin) id", example = "dog-licensing"),
        KpiQuery,
    ),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "指标 / The KPI values", body = KpiList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    )
)]
pub(crate) async fn kpis(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Path(plugin): Path<String>,
    Query(q): Query<KpiQuery>,
) -> Res<impl IntoResponse> {
    if q.to < q.from {
        return Err(ApiError::bad_request(
            "to",
            "before_from",
            "结束日期早于开始日期".into(),
            "`to` is before `from`".into(),
        ));
    }
    let values = s.engine.kpis(&caller, &plugin, EstateId(q.estate_id), q.from, q.to).await?;
    Ok(axum::Json(KpiList { kpis: values }))
}

fn no_place() -> Res<Place> {
    Err(ApiError::bad_request(
        "place",
        "one_place",
        "请指定小区（estate_id）或网格（grid_cell）之一".into(),
        "name exactly one of `estate_id` or `grid_cell`".into(),
    ))
}

/// Whom to assign a record to.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssignBody {
    /// The account's login; `null` clears the assignee.
    assignee: Option<String>,
    /// The record version the caller saw; a different current version is 409.
    #[serde(default)]
    expected_version: Option<i64>,
}

/// 指派承办人 / Assign a record
///
/// `PUT /api/items/{plugin}/records/{id}/assignee`: sets (or clears) the account that handles the
/// record. The assignee must be an active account that reaches the record's place and works on
/// the item; the change is evented and audited.
#[utoipa::path(
    put,
    path = "/api/items/{plugin}/records/{id}/assignee",
    tag = "records",
    operation_id = "assign_record",
    params(
        ("plugin" = String, Path, description = "服务事项 id / Service item (plugin) id", example = "dog-licensing"),
        ("id" = i64, Path, description = "记录 id / Record id"),
    ),
    request_body = AssignBody,
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "指派后的记录 / The record after the assignment", body = Record),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 422, response = Invalid),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn assign(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Path((plugin, id)): Path<(String, i64)>,
    Json(body): Json<AssignBody>,
) -> Res<impl IntoResponse> {
    let view = s.engine.assign(&caller, &plugin, RecordId(id), body.assignee.as_deref(), body.expected_version).await?;
    Ok(axum::Json(view))
}

/// How much of the inbox.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct InboxQuery {
    /// At most this many (default 50, at most 200).
    limit: Option<u32>,
}

/// The caller's inbox.
#[derive(Serialize, ToSchema)]
pub(crate) struct Inbox {
    /// Records assigned to the caller or waiting on their audience, oldest change first.
    #[schema(value_type = Vec<Record>)]
    records: Vec<jiayuan_host::engine::RecordView>,
}

/// 我的待办 / My inbox
///
/// `GET /api/inbox`: records assigned to me, and records in a state from which my audience may
/// fire a transition (waiting on me), within my reach, oldest change first.
#[utoipa::path(
    get,
    path = "/api/inbox",
    tag = "records",
    params(InboxQuery),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "待办 / The inbox", body = Inbox),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn inbox(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Query(q): Query<InboxQuery>,
) -> Res<impl IntoResponse> {
    let records = s.engine.inbox(&caller, q.limit.unwrap_or(50)).await?;
    Ok(axum::Json(Inbox { records }))
}

/// One record that refers to a person.
#[derive(Serialize, ToSchema)]
pub(crate) struct ReferringView {
    /// Service item.
    plugin: String,
    /// The record.
    record_id: i64,
    /// Its kind.
    kind: String,
    /// The field that refers to the person.
    field: String,
    /// The first version that referred to them.
    first_version: i64,
    /// The last version that referred to them.
    last_version: i64,
    /// Whether the record's current version still refers to them.
    current: bool,
}

/// The records that refer to a person.
#[derive(Serialize, ToSchema)]
pub(crate) struct ReferringList {
    /// The records, by item and id.
    records: Vec<ReferringView>,
}

/// 个人信息查询 / Records that refer to a person
///
/// `GET /api/registry/persons/{id}/records`: every record of every item, in any version, that
/// refers to the person — what a PIPL access or erasure request, or merging duplicate persons,
/// starts from. For the district office (and the auditor, read-only).
#[utoipa::path(
    get,
    path = "/api/registry/persons/{id}/records",
    tag = "registry",
    operation_id = "person_records",
    params(("id" = i64, Path, description = "人员 id / Person id")),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "引用此人的记录 / The records that refer to the person", body = ReferringList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn person_records(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Path(id): Path<i64>,
) -> Res<impl IntoResponse> {
    let rows = s.engine.records_referring(&caller, RefKind::Person, &id.to_string()).await?;
    let records = rows
        .into_iter()
        .map(|r| ReferringView {
            plugin: r.plugin,
            record_id: r.record_id.0,
            kind: r.kind,
            field: r.field,
            first_version: r.first_version,
            last_version: r.last_version,
            current: r.current,
        })
        .collect();
    Ok(axum::Json(ReferringList { records }))
}
