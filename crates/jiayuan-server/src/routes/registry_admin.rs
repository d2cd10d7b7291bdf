//! 登记簿维护 registry administration: divisions, grid cells, estates, firms, service
//! assignments, buildings, houses, occupancy and leases, each written through the host's
//! registry service ([`jiayuan_host::registry::RegistryWrite`]), which checks the caller's reach,
//! validates with field errors and audits in the same transaction.
//!
//! Answers: 201 for an insert, 200 for an update or an unchanged row, as `{"id", "change",
//! "fields"}` ([`ChangeAnswer`]). A role that may never do the change is 403; a target outside
//! the caller's reach is 404, exactly as a missing one; refused fields are 422 naming the field
//! and the rule (never the value).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use jiayuan_domain::{
    AddressCode, AssignmentId, BuildingId, Date, Division, DivisionCode, EstateCode, EstateId, EstateKind, FirmId,
    FirmKind, GridCell, GridKind, HouseId, HouseUse, ManagementStatus, OccupancyId, OnboardingStage, PersonId,
    Relation, Timestamp,
};
use jiayuan_host::access::{Action, Caller, Denied, Reach};
use jiayuan_host::registry::{FieldError, RegistryError, RegistryWrite};
use jiayuan_plugin_api::FieldViolation;
use jiayuan_store::{Change, NewAssignment, NewBuilding, NewEstate, NewFirm, NewHouse, NewLease, NewOccupancy};

use super::Res;
use super::registry::{PersonView, in_scope, store_error};
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{CallerExt, Json, Path, Query};
use crate::openapi::{BadRequest, Forbidden, Internal, Invalid, NotFound, Unauthenticated};

/// A refused registry change as an API error: 403 for the role, 404 outside the reach (as if
/// absent), 422 with the field violations, the store's failures as elsewhere.
pub(crate) fn registry_error(e: RegistryError) -> ApiError {
    match e {
        RegistryError::Denied(Denied::Forbidden { role, .. }) => ApiError::client(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("{}无权执行此操作", role.name_zh()),
            format!("a {role} may not do this"),
        ),
        RegistryError::Denied(_) => not_found(),
        RegistryError::Invalid(errors) => ApiError::invalid(errors.into_iter().map(violation).collect()),
        RegistryError::Store(e) => super::registry::store_error(e),
    }
}

/// 404 for a registry object that is missing or outside the caller's reach.
pub(crate) fn not_found() -> ApiError {
    ApiError::client(StatusCode::NOT_FOUND, "not_found", "未找到该登记对象", "no such registry object")
}

fn violation(e: FieldError) -> FieldViolation {
    FieldViolation::new(&e.field, &e.rule, e.message_zh, e.message_en)
}

/// The neutral answer to a registration the district must review (the document is registered
/// for someone the caller does not reach; nothing about them is said).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Referred {
    /// Always `referred`.
    #[schema(example = "referred")]
    status: &'static str,
    /// 说明.
    #[schema(example = "已提交区级核对")]
    message_zh: &'static str,
    /// The message in English.
    #[schema(example = "referred to the district for review")]
    message_en: &'static str,
}

impl Referred {
    pub(crate) fn new() -> Referred {
        Referred {
            status: "referred", message_zh: "已提交区级核对", message_en: "referred to the district for review"
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Writes
// ---------------------------------------------------------------------------------------------

/// What a registry write did: `{"id", "change", "fields"}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ChangeAnswer {
    /// The row's id (a number; a code for divisions and grid cells).
    #[schema(value_type = Object)]
    id: serde_json::Value,
    /// `inserted`, `updated` or `unchanged`.
    #[schema(example = "inserted")]
    change: &'static str,
    /// The fields an update changed (names only).
    fields: Vec<&'static str>,
}

/// 201 for an insert, 200 otherwise, with the [`ChangeAnswer`].
fn answer<I: Copy + Serialize>(c: &Change<I>) -> Response {
    let status = if matches!(c, Change::Inserted(_)) { StatusCode::CREATED } else { StatusCode::OK };
    let body = ChangeAnswer {
        id: serde_json::to_value(c.id()).unwrap_or(serde_json::Value::Null),
        change: c.action(),
        fields: c.fields().to_vec(),
    };
    (status, axum::Json(body)).into_response()
}

/// Same for changes keyed by text (divisions, grid cells).
fn answer_text(c: &Change<String>) -> Response {
    let (status, id) = match c {
        Change::Inserted(id) => (StatusCode::CREATED, id),
        Change::Updated { id, .. } | Change::Unchanged(id) => (StatusCode::OK, id),
    };
    let body =
        ChangeAnswer { id: serde_json::Value::String(id.clone()), change: c.action(), fields: c.fields().to_vec() };
    (status, axum::Json(body)).into_response()
}

fn field(field: &str, rule: &str, zh: impl Into<String>, en: impl Into<String>) -> ApiError {
    ApiError::invalid(vec![FieldViolation::new(field, rule, zh, en)])
}

/// Opens a registry write for `caller`.
async fn begin<'a>(s: &'a AppState, caller: &'a Caller) -> Res<RegistryWrite<'a>> {
    s.engine.registry().begin(caller).await.map_err(registry_error)
}

/// Commits, and makes the engine forget estate places when a serving firm (or an estate's
/// community) changed.
async fn commit(s: &AppState, w: RegistryWrite<'_>, moved_anyway: bool) -> Res<()> {
    let moved = w.commit().await.map_err(registry_error)?;
    if moved_anyway || !moved.is_empty() {
        s.engine.forget_places();
    }
    Ok(())
}

/// A division version.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DivisionBody {
    /// 12-digit statistical code (level and parent follow from it).
    #[schema(value_type = String, example = "440303003001")]
    code: DivisionCode,
    /// Chinese name.
    #[schema(example = "桂园社区")]
    name_zh: String,
    /// First day in force (YYYY-MM-DD).
    #[schema(value_type = String, format = Date)]
    valid_from: Date,
    /// Last day in force (absent: still in force).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    valid_to: Option<Date>,
}

/// 维护区划 / Put a division version
///
/// `PUT /api/registry/divisions`: upserts one version of a division by (code, valid_from); the
/// level and the parent follow from the code.
#[utoipa::path(
    put,
    path = "/api/registry/divisions",
    tag = "registry",
    request_body = DivisionBody,
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 201, description = "已新增 / Inserted", body = ChangeAnswer),
        (status = 200, description = "已更新或无变化 / Updated or unchanged", body = ChangeAnswer),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = Invalid),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn put_division(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Json(body): Json<DivisionBody>,
) -> Res<Response> {
    let name = body.name_zh.trim();
    let d = Division {
        level: body.code.level(),
        parent: body.code.parent(),
        code: body.code,
        name_zh: name.to_owned(),
        valid_from: body.valid_from,
        valid_to: body.valid_to,
    };
    let mut w = begin(&s, &caller).await?;
    let c = w.put_division(&d).await.map_err(registry_error)?;
    commit(&s, w, false).await?;
    let c = match c {
        Change::Inserted(code) => Change::Inserted(code.to_string()),
        Change::Updated { id, fields } => Change::Updated { id: id.to_string(), fields },
        Change::Unchanged(code) => Change::Unchanged(code.to_string()),
    };
    Ok(answer_text(&c))
}

/// Every version of every division.
#[derive(Serialize, ToSchema)]
pub(crate) struct DivisionVersions {
    /// The versions, retired ones included.
    #[schema(value_type = Vec<Object>)]
    versions: Vec<Division>,
}

/// 区划版本 / Division versions
///
/// `GET /api/registry/divisions/versions`: every version of every division code, with its
/// validity (retired codes included).
#[utoipa::path(
    get,
    path = "/api/registry/divisions/versions",
    tag = "registry",
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "区划版本 / The versions", body = DivisionVersions),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn division_versions(State(s): State<Arc<AppState>>) -> Res<impl IntoResponse> {
    let versions = s.engine.store().division_versions().await.map_err(store_error)?;
    Ok(axum::Json(DivisionVersions { versions }))
}

/// A grid cell (its code in the path).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GridCellBody {
    /// `basic` or `dedicated`.
    #[schema(value_type = String, example = "dedicated")]
    kind: GridKind,
    /// Display name.
    name: String,
    /// For a dedicated cell: the estate's code.
    #[serde(default)]
    estate_code: Option<String>,
    /// First day in force.
    #[schema(value_type = String, format = Date)]
    valid_from: Date,
    /// Last day in force.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    valid_to: Option<Date>,
}

/// 维护网格 / Put a grid cell
///
/// `PUT /api/registry/grid-cells/{code}`: upserts a grid cell by its 15-digit code (community
/// 12 + sequence 3).
#[utoipa::path(
    put,
    path = "/api/registry/grid-cells/{code}",
    tag = "registry",
    params(("code" = String, Path, description = "15 位网格编码 / 15-digit grid code", example = "440303003001001")),
    request_body = GridCellBody,
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 201, description = "已新增 / Inserted", body = ChangeAnswer),
        (status = 200, description = "已更新或无变化 / Updated or unchanged", body = ChangeAnswer),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = Invalid),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn put_grid_cell(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Path(code): Path<String>,
    Json(body): Json<GridCellBody>,
) -> Res<Response> {
    let community = jiayuan_domain::parse_grid_code(&code).map_err(|e| {
        ApiError::bad_request(
            "code",
            "grid_code",
            "网格编码应为 15 位：社区代码 12 位 + 序号 3 位".into(),
            e.to_string(),
        )
    })?;
    let mut w = begin(&s, &caller).await?;
    let estate_id = match body.estate_code.as_deref() {
        None => None,
        Some(ec) => match w.txn().estate_by_code(ec.trim()).await.map_err(store_error)? {
            Some((id, _)) => Some(id),
            None => {
                return Err(field("estate_code", "not_registered", "小区编码尚未登记", "no estate has this code"));
            }
        },
    };
    let g = GridCell {
        code,
        kind: body.kind,
        community,
        name: body.name.trim().to_owned(),
        estate_id,
        valid_from: body.valid_from,
        valid_to: body.valid_to,
    };
    let c = w.put_grid_cell(&g).await.map_err(registry_error)?;
    // Grid cells are places records sit at: reaches and places must see the change.
    commit(&s, w, c.is_change()).await?;
    Ok(answer_text(&c))
}

/// An estate (its code in the path).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EstateBody {
    /// Name.
    name: String,
    /// `estate`, `urban_village` or `building_group`.
    #[schema(value_type = String, example = "estate")]
    kind: EstateKind,
    /// The community's 12-digit code.
    #[schema(value_type = String, example = "440303003001")]
    community: DivisionCode,
    /// Address.
    address: String,
    /// How it is managed (`property_managed`, `unmanaged`, `owner_self_managed`,
    /// `fallback_state_operator`).
    #[schema(value_type = String, example = "property_managed")]
    management: ManagementStatus,
    /// Onboarding stage, for estates without management.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    onboarding: Option<OnboardingStage>,
    /// Households.
    households: u32,
}

/// 维护小区 / Put an estate
///
/// `PUT /api/registry/estates/{code}`: upserts an estate by its estate code (the path segment
/// is the code; the router keeps one parameter name per segment, hence `{id}` in the template).
#[utoipa::path(
    put,
    path = "/api/registry/estates/{id}",
    tag = "registry",
    params(("id" = String, Path, description = "小区编码（不是数字 id）/ The estate code (not the numeric id)", example = "LH-GY-001")),
    request_body = EstateBody,
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 201, description = "已新增 / Inserted", body = ChangeAnswer),
        (status = 200, description = "已更新或无变化 / Updated or unchanged", body = ChangeAnswer),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = Invalid),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn put_estate(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Path(code): Path<String>,
    Json(body): Json<EstateBody>,
) -> Res<Response> {
    let code = EstateCode::parse(&code).map_err(|_| {
        ApiError::bad_request(
            "code",
            "estate_code",
            "小区编码应为 1–32 位字母、数字、- 或 _".into(),
            "an estate code is 1 to 32 letters, digits, `-` or `_`".into(),
        )
    })?;
    let name = body.name.trim();
    let e = NewEstate {
        code,
        kind: body.kind,
        name: name.to_owned(),
        community: body.community,
        address: body.address.trim().to_owned(),
        management: body.management,
        onboarding: body.onboarding,
        households: body.households,
    };
    let mut w = begin(&s, &caller).await?;
    let c = w.put_estate(&e).await.map_err(registry_error)?;
    // The community may have moved: cached places must go.
    commit(&s, w, c.is_change()).await?;
    Ok(answer(&c))
}

/// A firm (its credit code in the path).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FirmBody {
    /// Registered name.
    name: String,
    /// `property_firm` or `fallback_state_operator`.
    #[schema(value_type = String, example = "property_firm")]
    kind: FirmKind,
    /// 法定代表人.
    #[serde(default)]
    legal_representative: Option<String>,
    /// Contact phone.
    #[serde(default)]
    contact_phone: Option<String>,
    /// Why a code whose check character fails is accepted (required then).
    #[serde(default)]
    credit_code_override: Option<String>,
}

/// 维护物业企业 / Put a firm
///
/// `PUT /api/registry/firms/{credit_code}`: upserts a firm by its unified social credit code
/// (GB 32100). A code whose check character fails needs `credit_code_override`, the reason it is
/// accepted.
#[utoipa::path(
    put,
    path = "/api/registry/firms/{credit_code}",
    tag = "registry",
    params(("credit_code" = String, Path, description = "统一社会信用代码 / Unified social credit code", example = "91440300MA5FXXXX0X")),
    request_body = FirmBody,
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 201, description = "已新增 / Inserted", body = ChangeAnswer),
        (status = 200, description = "已更新或无变化 / Updated or unchanged", body = ChangeAnswer),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 422, response = Invalid),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn put_firm(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Path(credit_code): Path<String>,
    Json(body): Json<FirmBody>,
) -> Res<Response> {
    let info = jiayuan_domain::parse_credit_code(&credit_code).map_err(|e| {
        field(
            "credit_code",
            "gb32100_format",
            "统一社会信用代码应为 18 位（GB 32100）",
            crate::privacy::redact_echoed(&e.to_string()),
        )
    })?;
    let reason = body.credit_code_override.as_deref().map(str::trim).filter(|r| !r.is_empty());
    if let Some(warning) = info.check.warning()
        && reason.is_none()
    {
        let (zh, en) = warning.split_once(" / ").unwrap_or((warning.as_str(), warning.as_str()));
        return Err(field("credit_code", "check_character_needs_override", zh, en));
    }
    let name = body.name.trim();
    let contact_phone = match body.contact_phone.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        None => None,
        Some(p) => match jiayuan_domain::phone::Phone::parse(p) {
            Ok(p) => Some(p.as_str().to_owned()),
            Err(_) => return Err(field("contact_phone", "bad_phone", "电话号码无效", "the phone number is invalid")),
        },
    };
    let f = NewFirm {
        name: name.to_owned(),
        credit_code: info.normalised.clone(),
        credit_code_override: if info.check.is_valid() { None } else { reason.map(str::to_owned) },
        kind: body.kind,
        legal_representative: body.legal_representative.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty()),
        contact_phone,
    };
    let mut w = begin(&s, &caller).await?;
    let c = w.put_firm(&f).await.map_err(registry_error)?;
    commit(&s, w, false).await?;
    Ok(answer(&c))
}

/// A service assignment: the firm and the estate by id or by natural key.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssignmentBody {
    /// The firm's id …
    #[serde(default)]
    firm_id: Option<i64>,
    /// … or its credit code.
    #[serde(default)]
    firm_credit_code: Option<String>,
    /// The estate's id …
    #[serde(default)]
    estate_id: Option<i64>,
    /// … or its estate code.
    #[serde(default)]
    estate_code: Option<String>,
    /// First day of service.
    #[schema(value_type = String, format = Date)]
    from: Date,
    /// Last day of service (absent: open-ended).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    to: Option<Date>,
    /// The delegation contract's reference.
    #[serde(default)]
    contract_ref: Option<String>,
}

/// 登记服务委托 / Put a service assignment
///
/// `POST /api/registry/assignments`: which firm serves which estate from when; at most one
/// firm serves an estate on any day.
#[utoipa::path(
    post,
    path = "/api/registry/assignments",
    tag = "registry",
    request_body = AssignmentBody,
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 201, description = "已新增 / Inserted", body = ChangeAnswer),
        (status = 200, description = "已更新或无变化 / Updated or unchanged", body = ChangeAnswer),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = Invalid),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn put_assignment(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Json(body): Json<AssignmentBody>,
) -> Res<Response> {
    let mut w = begin(&s, &caller).await?;
    let firm_id = match (body.firm_id, body.firm_credit_code.as_deref()) {
        (Some(id), None) => FirmId(id),
        (None, Some(code)) => {
            let code = code.trim().to_ascii_uppercase();
            match w.txn().firm_by_credit_code(&code).await.map_err(store_error)? {
                Some(id) => id,
                None => {
                    return Err(field(
                        "firm_credit_code",
                        "not_registered",
                        "物业企业尚未登记",
                        "no firm has this credit code",
                    ));
                }
            }
        }
        _ => {
            return Err(field(
                "firm_id",
                "one_of",
                "请提供 firm_id 或 firm_credit_code 其中之一",
                "give exactly one of `firm_id` or `firm_credit_code`",
            ));
        }
    };
    let estate_id = match (body.estate_id, body.estate_code.as_deref()) {
        (Some(id), None) => EstateId(id),
        (None, Some(code)) => match w.txn().estate_by_code(code.trim()).await.map_err(store_error)? {
            Some((id, _)) => id,
            None => return Err(not_found()),
        },
        _ => {
            return Err(field(
                "estate_id",
                "one_of",
                "请提供 estate_id 或 estate_code 其中之一",
                "give exactly one of `estate_id` or `estate_code`",
            ));
        }
    };
    let a = NewAssignment {
        firm_id,
        estate_id,
        from: body.from,
        to: body.to,
        contract_ref: body.contract_ref.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty()),
    };
    let c = w.put_assignment(&a).await.map_err(registry_error)?;
    commit(&s, w, false).await?;
    Ok(answer(&c))
}

/// The last day of a period.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EndBody {
    /// Last day (YYYY-MM-DD).
    #[schema(value_type = String, format = Date)]
    to: Date,
}

/// 结束服务委托 / End a service assignment
///
/// `POST /api/registry/assignments/{id}/end`: the assignment's last day of service.
#[utoipa::path(
    post,
    path = "/api/registry/assignments/{id}/end",
    tag = "registry",
    params(("id" = i64, Path, description = "服务委托 id / Assignment id")),
    request_body = EndBody,
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "已结束 / Ended", body = ChangeAnswer),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = Invalid),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn end_assignment(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Path(id): Path<i64>,
    Json(body): Json<EndBody>,
) -> Res<Response> {
    let mut w = begin(&s, &caller).await?;
    let c = w.end_assignment(AssignmentId(id), body.to).await.map_err(registry_error)?;
    commit(&s, w, c.is_change()).await?;
    Ok(answer(&c))
}

/// A building of an estate.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BuildingBody {
    /// The estate.
    estate_id: i64,
    /// Name, unique in the estate (e.g. 3栋).
    name: String,
    /// Floors above ground.
    floors: u16,
    /// Height in metres.
    height_m: f32,
    /// Whether it has a lift.
    elevator: bool,
}

/// 登记楼栋 / Put a building
///
/// `POST /api/registry/buildings`: upserts a building by (estate, name).
#[utoipa::path(
    post,
    path = "/api/registry/buildings",
    tag = "registry",
    request_body = BuildingBody,
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 201, description = "已新增 / Inserted", body = ChangeAnswer),
        (status = 200, description = "已更新或无变化 / Updated or unchanged", body = ChangeAnswer),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = Invalid),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn put_building(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Json(body): Json<BuildingBody>,
) -> Res<Response> {
    let name = body.name.trim();
    let b = NewBuilding {
        estate_id: Some(EstateId(body.estate_id)),
        name: name.to_owned(),
        floors: body.floors,
        height_m: body.height_m,
        elevator: body.elevator,
    };
    let mut w = begin(&s, &caller).await?;
    let c = w.put_building(&b).await.map_err(registry_error)?;
    commit(&s, w, false).await?;
    Ok(answer(&c))
}

/// A house in a building.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HouseBody {
    /// The building.
    building_id: i64,
    /// Room number, unique in the building (e.g. 1203).
    room: String,
    /// Floor area in m².
    area_m2: f32,
    /// `self_occupied`, `rented`, `vacant`, `commercial` or `dormitory`.
    #[serde(rename = "use")]
    #[schema(value_type = String, example = "self_occupied")]
    use_: HouseUse,
    /// The 25-digit standard-address code, when known.
    #[serde(default)]
    address_code: Option<String>,
}

/// 登记房屋 / Put a house
///
/// `POST /api/registry/houses`: upserts a house by (building, room).
#[utoipa::path(
    post,
    path = "/api/registry/houses",
    tag = "registry",
    request_body = HouseBody,
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 201, description = "已新增 / Inserted", body = ChangeAnswer),
        (status = 200, description = "已更新或无变化 / Updated or unchanged", body = ChangeAnswer),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = Invalid),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn put_house(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Json(body): Json<HouseBody>,
) -> Res<Response> {
    let room = body.room.trim();
    let address_code = match body.address_code.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(AddressCode::parse(c).map_err(|_| {
            field("address_code", "address_code", "标准地址编码应为 25 位数字", "a standard-address code is 25 digits")
        })?),
    };
    let h = NewHouse {
        building_id: BuildingId(body.building_id),
        room: room.to_owned(),
        area_m2: body.area_m2,
        use_: body.use_,
        address_code,
    };
    let mut w = begin(&s, &caller).await?;
    let c = match w.put_house(&h).await {
        Ok(c) => c,
        // A building the caller cannot see reads as a missing one.
        Err(RegistryError::Invalid(v)) if v.iter().any(|e| e.field == "building") => return Err(not_found()),
        Err(e) => return Err(registry_error(e)),
    };
    commit(&s, w, false).await?;
    Ok(answer(&c))
}

/// An occupancy: a person living at a house over a period.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct OccupancyBody {
    /// The person.
    person_id: i64,
    /// The house.
    house_id: i64,
    /// First day.
    #[schema(value_type = String, format = Date)]
    from: Date,
    /// Last day (absent: still living there).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    to: Option<Date>,
    /// 与户主关系 (`owner`, `head`, `spouse`, `child`, `parent`, `relative`, `tenant`,
    /// `employee`, `other`).
    #[schema(value_type = String, example = "tenant")]
    relation: Relation,
    /// Whether it is the person's primary residence.
    primary: bool,
    /// When it was reported (RFC 3339; absent: now).
    #[serde(default)]
    reported_at: Option<String>,
}

/// 登记居住关系 / Put an occupancy
///
/// `POST /api/registry/occupancies`: upserts an occupancy by (person, house, from). A person
/// has at most one primary residence on any day.
#[utoipa::path(
    post,
    path = "/api/registry/occupancies",
    tag = "registry",
    request_body = OccupancyBody,
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 201, description = "已新增 / Inserted", body = ChangeAnswer),
        (status = 200, description = "已更新或无变化 / Updated or unchanged", body = ChangeAnswer),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = Invalid),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn put_occupancy(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Json(body): Json<OccupancyBody>,
) -> Res<Response> {
    let reported_at = match body.reported_at.as_deref() {
        None => Some(s.engine.clock().now()),
        Some(t) => Some(Timestamp::parse_rfc3339(t).ok_or_else(|| {
            field("reported_at", "bad_timestamp", "时间格式应为 RFC 3339", "reported_at must be an RFC 3339 timestamp")
        })?),
    };
    let o = NewOccupancy {
        person_id: PersonId(body.person_id),
        house_id: HouseId(body.house_id),
        from: body.from,
        to: body.to,
        relation: body.relation,
        primary: body.primary,
        reported_at,
    };
    let mut w = begin(&s, &caller).await?;
    let c = w.put_occupancy(&o).await.map_err(registry_error)?;
    commit(&s, w, true).await?;
    Ok(answer(&c))
}

/// 迁出 / End an occupancy
///
/// `POST /api/registry/occupancies/{id}/end`: the last day the person lived there.
#[utoipa::path(
    post,
    path = "/api/registry/occupancies/{id}/end",
    tag = "registry",
    params(("id" = i64, Path, description = "居住关系 id / Occupancy id")),
    request_body = EndBody,
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "已结束 / Ended", body = ChangeAnswer),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = Invalid),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn end_occupancy(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Path(id): Path<i64>,
    Json(body): Json<EndBody>,
) -> Res<Response> {
    let mut w = begin(&s, &caller).await?;
    let c = w.end_occupancy(OccupancyId(id), body.to).await.map_err(registry_error)?;
    commit(&s, w, true).await?;
    Ok(answer(&c))
}

/// A lease of a house.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LeaseBody {
    /// The house.
    house_id: i64,
    /// The landlord (a registered person).
    landlord_id: i64,
    /// First day.
    #[schema(value_type = String, format = Date)]
    from: Date,
    /// Last day.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    to: Option<Date>,
    /// The contract's reference.
    #[serde(default)]
    contract_ref: Option<String>,
}

/// 登记租赁 / Put a lease
///
/// `POST /api/registry/leases`: upserts a lease by (house, landlord, from); a house has at most
/// one lease on any day.
#[utoipa::path(
    post,
    path = "/api/registry/leases",
    tag = "registry",
    request_body = LeaseBody,
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 201, description = "已新增 / Inserted", body = ChangeAnswer),
        (status = 200, description = "已更新或无变化 / Updated or unchanged", body = ChangeAnswer),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = Invalid),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn put_lease(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Json(body): Json<LeaseBody>,
) -> Res<Response> {
    let l = NewLease {
        house_id: HouseId(body.house_id),
        landlord_id: PersonId(body.landlord_id),
        from: body.from,
        to: body.to,
        contract_ref: body.contract_ref.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty()),
    };
    let mut w = begin(&s, &caller).await?;
    let c = w.put_lease(&l).await.map_err(registry_error)?;
    commit(&s, w, true).await?;
    Ok(answer(&c))
}

// ---------------------------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------------------------

/// An estate's buildings.
#[derive(Serialize, ToSchema)]
pub(crate) struct BuildingList {
    /// The buildings.
    #[schema(value_type = Vec<Object>)]
    buildings: Vec<jiayuan_domain::Building>,
}

/// 小区楼栋 / An estate's buildings
///
/// `GET /api/registry/estates/{id}/buildings`.
#[utoipa::path(
    get,
    path = "/api/registry/estates/{id}/buildings",
    tag = "registry",
    params(("id" = i64, Path, description = "小区 id / Estate id")),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "楼栋 / The buildings", body = BuildingList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn estate_buildings(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Path(id): Path<i64>,
) -> Res<impl IntoResponse> {
    if in_scope(&s, &caller, Action::ReadRegistry, EstateId(id)).await?.is_none() {
        return Err(super::registry::estate_not_found(id));
    }
    let buildings = s.engine.store().buildings_of_estate(EstateId(id)).await.map_err(store_error)?;
    Ok(axum::Json(BuildingList { buildings }))
}

/// An estate's houses.
#[derive(Serialize, ToSchema)]
pub(crate) struct HouseList {
    /// The houses.
    #[schema(value_type = Vec<Object>)]
    houses: Vec<jiayuan_domain::House>,
}

/// 小区房屋 / An estate's houses
///
/// `GET /api/registry/estates/{id}/houses`.
#[utoipa::path(
    get,
    path = "/api/registry/estates/{id}/houses",
    tag = "registry",
    params(("id" = i64, Path, description = "小区 id / Estate id")),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "房屋 / The houses", body = HouseList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn estate_houses(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Path(id): Path<i64>,
) -> Res<impl IntoResponse> {
    if in_scope(&s, &caller, Action::ReadRegistry, EstateId(id)).await?.is_none() {
        return Err(super::registry::estate_not_found(id));
    }
    let houses = s.engine.store().houses_of_estate(EstateId(id)).await.map_err(store_error)?;
    Ok(axum::Json(HouseList { houses }))
}

/// An occupancy as the API shows it; the person masked (and left out when the caller does not
/// reach them).
#[derive(Serialize, ToSchema)]
pub(crate) struct OccupancyView {
    /// Id.
    id: i64,
    /// The house.
    house_id: i64,
    /// The person (masked).
    person: PersonView,
    /// First day.
    #[schema(value_type = String, format = Date)]
    from: Date,
    /// Last day.
    #[schema(value_type = Option<String>, format = Date)]
    to: Option<Date>,
    /// 与户主关系.
    #[schema(value_type = String)]
    relation: Relation,
    /// Primary residence.
    primary: bool,
}

/// Occupancies.
#[derive(Serialize, ToSchema)]
pub(crate) struct OccupancyList {
    /// The occupancies the caller may see.
    occupancies: Vec<OccupancyView>,
}

/// The house's estate when the caller reaches it; 404 otherwise (as for a missing house).
async fn house_in_scope(s: &AppState, caller: &Caller, id: i64) -> Res<()> {
    let house = s.engine.store().house(HouseId(id)).await.map_err(store_error)?;
    let visible = match house.map(|h| h.estate_id) {
        Some(Some(estate)) => in_scope(s, caller, Action::ReadRegistry, estate).await?.is_some(),
        Some(None) => caller.reach == Reach::District,
        None => false,
    };
    if visible {
        Ok(())
    } else {
        Err(ApiError::client(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("未找到房屋 {id}"),
            format!("house {id} not found"),
        ))
    }
}

/// The views of `occupancies` whose persons the caller reaches, each person masked.
async fn occupancy_views(
    s: &AppState,
    caller: &Caller,
    occupancies: Vec<jiayuan_domain::Occupancy>,
) -> Res<Vec<OccupancyView>> {
    let ids: Vec<PersonId> = occupancies.iter().map(|o| o.person_id).collect::<HashSet<_>>().into_iter().collect();
    let reached = s.engine.registry().reached_persons(caller, &ids).await.map_err(store_error)?;
    let mut persons: HashMap<PersonId, PersonView> = HashMap::new();
    for id in &ids {
        if reached.contains(id)
            && let Some(p) = s.engine.store().person(*id).await.map_err(store_error)?
        {
            persons.insert(*id, PersonView::masked(&p));
        }
    }
    Ok(occupancies
        .into_iter()
        .filter_map(|o| {
            let person = persons.get(&o.person_id)?.clone();
            Some(OccupancyView {
                id: o.id.0,
                house_id: o.house_id.0,
                person,
                from: o.from,
                to: o.to,
                relation: o.relation,
                primary: o.primary,
            })
        })
        .collect())
}

/// 人员居住关系 / A person's occupancies
///
/// `GET /api/registry/persons/{id}/occupancies`: where a person the caller reaches lives or
/// lived, at houses the caller reaches.
#[utoipa::path(
    get,
    path = "/api/registry/persons/{id}/occupancies",
    tag = "registry",
    params(("id" = i64, Path, description = "人员 id / Person id")),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "居住关系（已脱敏） / The occupancies (masked)", body = OccupancyList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn person_occupancies(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Path(id): Path<i64>,
) -> Res<impl IntoResponse> {
    let found = s.engine.store().person(PersonId(id)).await.map_err(store_error)?;
    let reached = match &found {
        Some(p) => s.engine.registry().reaches_person(&caller, p.id).await.map_err(store_error)?,
        None => false,
    };
    if !reached {
        return Err(ApiError::client(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("未找到人员 {id}"),
            format!("person {id} not found"),
        ));
    }
    let all = s.engine.store().occupancies_of_person(PersonId(id)).await.map_err(store_error)?;
    // Only the houses the caller reaches: where else the person lives is not theirs to know.
    let mut visible = Vec::with_capacity(all.len());
    let mut seen: HashMap<HouseId, bool> = HashMap::new();
    for o in all {
        let ok = match seen.get(&o.house_id) {
            Some(ok) => *ok,
            None => {
                let ok = house_in_scope(&s, &caller, o.house_id.0).await.is_ok();
                seen.insert(o.house_id, ok);
                ok
            }
        };
        if ok {
            visible.push(o);
        }
    }
    let occupancies = occupancy_views(&s, &caller, visible).await?;
    Ok(axum::Json(OccupancyList { occupancies }))
}

/// The day to look at.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct OnQuery {
    /// Only occupancies covering this day (YYYY-MM-DD); absent: all.
    #[param(value_type = Option<String>, format = Date)]
    on: Option<Date>,
}

/// 房屋居住人员 / A house's occupants
///
/// `GET /api/registry/houses/{id}/occupancies?on=YYYY-MM-DD`: who lives (or lived on `on`) at
/// a house the caller reaches; persons masked, and only those the caller reaches.
#[utoipa::path(
    get,
    path = "/api/registry/houses/{id}/occupancies",
    tag = "registry",
    params(("id" = i64, Path, description = "房屋 id / House id"), OnQuery),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "居住关系（已脱敏） / The occupancies (masked)", body = OccupancyList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn house_occupancies(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Path(id): Path<i64>,
    Query(q): Query<OnQuery>,
) -> Res<impl IntoResponse> {
    house_in_scope(&s, &caller, id).await?;
    let all = s.engine.store().occupancies_of_house(HouseId(id), q.on).await.map_err(store_error)?;
    let occupancies = occupancy_views(&s, &caller, all).await?;
    Ok(axum::Json(OccupancyList { occupancies }))
}

/// A lease as the API shows it.
#[derive(Serialize, ToSchema)]
pub(crate) struct LeaseView {
    /// Id.
    id: i64,
    /// The house.
    house_id: i64,
    /// The landlord (masked), when the caller reaches them.
    landlord: Option<PersonView>,
    /// First day.
    #[schema(value_type = String, format = Date)]
    from: Date,
    /// Last day.
    #[schema(value_type = Option<String>, format = Date)]
    to: Option<Date>,
    /// The contract's reference.
    contract_ref: Option<String>,
}

/// Leases.
#[derive(Serialize, ToSchema)]
pub(crate) struct LeaseList {
    /// The house's leases.
    leases: Vec<LeaseView>,
}

/// 房屋租赁 / A house's leases
///
/// `GET /api/registry/houses/{id}/leases`.
#[utoipa::path(
    get,
    path = "/api/registry/houses/{id}/leases",
    tag = "registry",
    params(("id" = i64, Path, description = "房屋 id / House id")),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "租赁（已脱敏） / The leases (masked)", body = LeaseList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn house_leases(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Path(id): Path<i64>,
) -> Res<impl IntoResponse> {
    house_in_scope(&s, &caller, id).await?;
    let all = s.engine.store().leases_of_house(HouseId(id)).await.map_err(store_error)?;
    let ids: Vec<PersonId> = all.iter().map(|l| l.landlord_id).collect::<HashSet<_>>().into_iter().collect();
    let reached = s.engine.registry().reached_persons(&caller, &ids).await.map_err(store_error)?;
    let mut leases = Vec::with_capacity(all.len());
    for l in all {
        let landlord = if reached.contains(&l.landlord_id) {
            s.engine.store().person(l.landlord_id).await.map_err(store_error)?.as_ref().map(PersonView::masked)
        } else {
            None
        };
        leases.push(LeaseView {
            id: l.id.0,
            house_id: l.house_id.0,
            landlord,
            from: l.from,
            to: l.to,
            contract_ref: l.contract_ref,
        });
    }
    Ok(axum::Json(LeaseList { leases }))
}

/// One agency unit.
#[derive(Serialize, ToSchema)]
pub(crate) struct AgencyUnitView {
    /// Id (for `agency_unit` of an agency officer's account, and agency-unit fields of records).
    id: i64,
    /// Its agency kind (`police`, `judicial`, …): officers of the unit are the audience
    /// `agency:<kind>`.
    #[schema(example = "police")]
    kind: String,
    /// Name.
    #[schema(example = "黄贝派出所")]
    name: String,
    /// The division it answers for.
    #[schema(example = "440303001000")]
    jurisdiction: String,
}

impl AgencyUnitView {
    fn of(u: jiayuan_domain::AgencyUnit) -> AgencyUnitView {
        AgencyUnitView { id: u.id.0, kind: u.kind, name: u.name, jurisdiction: u.jurisdiction.to_string() }
    }
}

/// One agency kind.
#[derive(Serialize, ToSchema)]
pub(crate) struct AgencyKindView {
    /// Code.
    code: String,
    /// 中文名称.
    name_zh: String,
    /// English name.
    name_en: String,
}

/// The agency kinds and units.
#[derive(Serialize, ToSchema)]
pub(crate) struct AgencyUnitList {
    /// The kinds the registry knows.
    kinds: Vec<AgencyKindView>,
    /// The units, by id.
    units: Vec<AgencyUnitView>,
}

/// 职能部门单位 / Agency units
///
/// `GET /api/registry/agency-units`: the agency kinds and units of the registry.
#[utoipa::path(
    get,
    path = "/api/registry/agency-units",
    tag = "registry",
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "类别与单位 / Kinds and units", body = AgencyUnitList),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn agency_units(State(s): State<Arc<AppState>>) -> Res<impl IntoResponse> {
    let registry = s.engine.registry();
    let kinds = registry.agency_kinds().await.map_err(registry_error)?;
    let units = registry.agency_units().await.map_err(registry_error)?;
    Ok(axum::Json(AgencyUnitList {
        kinds: kinds
            .into_iter()
            .map(|k| AgencyKindView { code: k.code, name_zh: k.name_zh, name_en: k.name_en })
            .collect(),
        units: units.into_iter().map(AgencyUnitView::of).collect(),
    }))
}

/// A new agency unit.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AgencyUnitBody {
    /// Its agency kind's code.
    #[schema(example = "police")]
    kind: String,
    /// Name, unique within the kind.
    #[schema(example = "黄贝派出所")]
    name: String,
    /// The division (street or district) it answers for.
    #[schema(example = "440303001000")]
    jurisdiction: String,
}

/// 新增职能部门单位 / Create an agency unit
///
/// `POST /api/registry/agency-units`: district-wide data, kept by the district office; audited.
#[utoipa::path(
    post,
    path = "/api/registry/agency-units",
    tag = "registry",
    request_body = AgencyUnitBody,
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 201, description = "已创建 / Created", body = AgencyUnitView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 422, response = Invalid),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn put_agency_unit(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Json(body): Json<AgencyUnitBody>,
) -> Res<impl IntoResponse> {
    let jurisdiction = DivisionCode::parse(&body.jurisdiction).map_err(|_| {
        ApiError::invalid(vec![FieldViolation::new(
            "jurisdiction",
            "division_code",
            "区划代码应为 12 位数字".to_owned(),
            "`jurisdiction` must be a 12-digit division code".to_owned(),
        )])
    })?;
    let unit = s
        .engine
        .registry()
        .create_agency_unit(&caller, &body.kind, &body.name, &jurisdiction)
        .await
        .map_err(registry_error)?;
    Ok((StatusCode::CREATED, axum::Json(AgencyUnitView::of(unit))))
}
