//! Registry reads beyond the lists: grid cells, one estate, an estate's assignments, persons
//! (looked up by identity number or phone through the store's blind index) and the audited
//! unmasked read of a person.
//!
//! Scope: an estate outside the caller's scope answers 404 like a missing one; a person is in
//! scope when the registry's person-reach rule says so (an occupancy, a lease or a record in an
//! estate the caller reaches; district-wide callers reach everyone).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use jiayuan_domain::{
    Date, DocKind, Estate, EstateId, FirmId, GridCell, HouseId, Hukou, Person, PersonId, Sensitivity,
    ServiceAssignment, Sex, mask,
};
use jiayuan_host::access::{Action, Caller, Target, authorize};
use jiayuan_host::enablement::PlaceInfo;

use super::Res;
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{AuthExt, CallerExt, Json, Path, Query};
use crate::openapi::{BadRequest, DocKindName, Forbidden, HukouName, Internal, NotFound, SexName, Unauthenticated};
use crate::privacy::{self, UnmaskRequest};

/// The estate's place and name when `action` on it is within the caller's scope; `None` when it
/// is outside (or does not exist), so callers answer 404 either way.
pub(crate) async fn in_scope(
    s: &AppState,
    caller: &Caller,
    action: Action,
    estate: EstateId,
) -> Res<Option<(PlaceInfo, String)>> {
    let (place, name) = match s.engine.place(estate).await {
        Ok(found) => found,
        Err(jiayuan_host::engine::EngineError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let target = Target { place: Some(&place), ..Target::default() };
    Ok(authorize(caller, action, target).is_ok().then_some((place, name)))
}

/// 404 for an estate that is missing or outside the caller's scope.
pub(crate) fn estate_not_found(id: i64) -> ApiError {
    ApiError::client(StatusCode::NOT_FOUND, "not_found", format!("未找到小区 {id}"), format!("estate {id} not found"))
}

fn person_not_found(id: i64) -> ApiError {
    ApiError::client(StatusCode::NOT_FOUND, "not_found", format!("未找到人员 {id}"), format!("person {id} not found"))
}

/// The grid cells.
#[derive(Serialize, ToSchema)]
pub(crate) struct GridCellList {
    /// 网格 the grid cells of the communities.
    #[schema(value_type = Vec<Object>)]
    grid_cells: Vec<GridCell>,
}

/// 网格 / Grid cells
///
/// `GET /api/registry/grid-cells`.
#[utoipa::path(
    get,
    path = "/api/registry/grid-cells",
    tag = "registry",
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "网格 / The grid cells", body = GridCellList),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn grid_cells(State(s): State<Arc<AppState>>) -> Res<impl IntoResponse> {
    let grid_cells = s.engine.store().grid_cells().await.map_err(|e| ApiError::internal(&e))?;
    Ok(axum::Json(GridCellList { grid_cells }))
}

/// One estate.
#[derive(Serialize, ToSchema)]
pub(crate) struct EstateAnswer {
    /// The estate.
    #[schema(value_type = Object)]
    estate: Estate,
    /// The firm serving it today, if any.
    #[schema(value_type = Option<i64>)]
    serving_firm_id: Option<FirmId>,
}

/// 查看小区 / Get an estate
///
/// `GET /api/registry/estates/{id}`: one estate in the caller's scope (404 otherwise).
#[utoipa::path(
    get,
    path = "/api/registry/estates/{id}",
    tag = "registry",
    params(("id" = i64, Path, description = "小区 id / Estate id")),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "小区 / The estate", body = EstateAnswer),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn estate(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Path(id): Path<i64>,
) -> Res<impl IntoResponse> {
    let Some((place, _)) = in_scope(&s, &caller, Action::ReadRegistry, EstateId(id)).await? else {
        return Err(estate_not_found(id));
    };
    let estate = s.engine.store().estate(EstateId(id)).await.map_err(|e| ApiError::internal(&e))?;
    let estate = estate.ok_or_else(|| estate_not_found(id))?;
    Ok(axum::Json(EstateAnswer { estate, serving_firm_id: place.firm }))
}

/// An estate's service assignments.
#[derive(Serialize, ToSchema)]
pub(crate) struct AssignmentList {
    /// 服务委托 each firm that served or serves the estate, with the period.
    #[schema(value_type = Vec<Object>)]
    assignments: Vec<ServiceAssignment>,
}

/// 小区物业服务委托 / An estate's service assignments
///
/// `GET /api/registry/estates/{id}/assignments`: the firms that served or serve the estate.
#[utoipa::path(
    get,
    path = "/api/registry/estates/{id}/assignments",
    tag = "registry",
    params(("id" = i64, Path, description = "小区 id / Estate id")),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "服务委托 / The assignments", body = AssignmentList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn assignments(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Path(id): Path<i64>,
) -> Res<impl IntoResponse> {
    if in_scope(&s, &caller, Action::ReadRegistry, EstateId(id)).await?.is_none() {
        return Err(estate_not_found(id));
    }
    let assignments = s.engine.store().assignments_of_estate(EstateId(id)).await.map_err(|e| ApiError::internal(&e))?;
    Ok(axum::Json(AssignmentList { assignments }))
}

/// Whether the person is within the caller's reach: the registry's one rule
/// ([`jiayuan_host::registry::Registry::reaches_person`]; the role was checked by the guard).
async fn person_in_scope(s: &AppState, caller: &Caller, p: &Person) -> Res<bool> {
    s.engine.registry().reaches_person(caller, p.id).await.map_err(store_error)
}

/// A store failure, mapped like the engine's.
pub(crate) fn store_error(e: jiayuan_store::StoreError) -> ApiError {
    ApiError::from(jiayuan_host::engine::EngineError::from(e))
}

/// A registered person: name, document number and phone masked, except in an unmask answer.
#[derive(Clone, Serialize, ToSchema)]
pub(crate) struct PersonView {
    /// Id.
    #[schema(value_type = i64)]
    pub(crate) id: PersonId,
    /// Name (masked: `张**`).
    pub(crate) name: String,
    /// Kind of identity document.
    #[schema(value_type = DocKindName)]
    pub(crate) doc_kind: DocKind,
    /// Document number (masked: `**************1234`).
    pub(crate) doc_number: String,
    /// Sex.
    #[schema(value_type = Option<SexName>)]
    pub(crate) sex: Option<Sex>,
    /// Birth date (YYYY-MM-DD).
    #[schema(value_type = Option<String>, format = Date)]
    pub(crate) birth_date: Option<Date>,
    /// Household registration.
    #[schema(value_type = HukouName)]
    pub(crate) hukou: Hukou,
    /// Mobile number (masked: `*******5678`).
    pub(crate) phone: Option<String>,
    /// The house they live in.
    #[schema(value_type = Option<i64>)]
    pub(crate) house_id: Option<HouseId>,
}

impl PersonView {
    /// A person as the API shows them: name, document number and phone masked.
    pub(crate) fn masked(p: &Person) -> PersonView {
        PersonView {
            name: mask(&p.name, Sensitivity::Personal),
            doc_number: mask(&p.doc.number, Sensitivity::Sensitive),
            phone: p.phone.as_deref().map(|v| mask(v, Sensitivity::Personal)),
            ..PersonView::clear(p)
        }
    }

    /// A person in clear (the unmask answer only).
    fn clear(p: &Person) -> PersonView {
        PersonView {
            id: p.id,
            name: p.name.clone(),
            doc_kind: p.doc.kind,
            doc_number: p.doc.number.clone(),
            sex: p.sex,
            birth_date: p.birth_date,
            hukou: p.hukou,
            phone: p.phone.clone(),
            house_id: p.house_id,
        }
    }
}

/// `{"person": …}`.
#[derive(Serialize, ToSchema)]
pub(crate) struct PersonAnswer {
    /// The person.
    person: PersonView,
}

/// Persons found.
#[derive(Serialize, ToSchema)]
pub(crate) struct PersonList {
    /// The persons in the caller's scope (masked).
    persons: Vec<PersonView>,
}

/// One exact lookup: `doc_number` (with `doc_kind`) or `phone`.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct PersonQuery {
    /// Exact identity document number (with `doc_kind`, default 居民身份证).
    doc_number: Option<String>,
    /// Kind of the document (default `resident_id`).
    #[param(value_type = Option<DocKindName>)]
    doc_kind: Option<DocKind>,
    /// Exact mobile number.
    phone: Option<String>,
}

/// 查找人员 / Find persons
///
/// `GET /api/registry/persons?doc_number=…` or `?phone=…`: exact lookup through the blind
/// index (the numbers are encrypted at rest, so there is no partial search). Masked answers;
/// persons outside the caller's scope are left out.
#[utoipa::path(
    get,
    path = "/api/registry/persons",
    tag = "registry",
    params(PersonQuery),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "权限范围内的人员（已脱敏） / The persons in the caller's scope (masked)", body = PersonList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn find_persons(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Query(q): Query<PersonQuery>,
) -> Res<impl IntoResponse> {
    let found: Vec<Person> = match (q.doc_number, q.phone) {
        (Some(number), None) => {
            let kind = q.doc_kind.unwrap_or(DocKind::ResidentId);
            let number = jiayuan_domain::normalise_doc_number(&number);
            s.engine
                .store()
                .person_by_doc(kind, &number)
                .await
                .map_err(|e| ApiError::internal(&e))?
                .into_iter()
                .collect()
        }
        (None, Some(phone)) => {
            let phone = jiayuan_domain::Phone::parse(&phone).map_err(|e| {
                ApiError::bad_request(
                    "phone",
                    "bad_phone",
                    "电话号码无效".into(),
                    privacy::redact_echoed(&e.to_string()),
                )
            })?;
            s.engine.store().persons_by_phone(phone.as_str()).await.map_err(|e| ApiError::internal(&e))?
        }
        _ => {
            return Err(ApiError::bad_request(
                "query",
                "one_lookup",
                "请只提供 doc_number 或 phone 其中之一".into(),
                "give exactly one of `doc_number` or `phone`".into(),
            ));
        }
    };
    let ids: Vec<PersonId> = found.iter().map(|p| p.id).collect();
    let reached = s.engine.registry().reached_persons(&caller, &ids).await.map_err(store_error)?;
    let visible = found.iter().filter(|p| reached.contains(&p.id)).map(PersonView::masked).collect();
    Ok(axum::Json(PersonList { persons: visible }))
}

async fn scoped_person(s: &AppState, caller: &Caller, id: i64) -> Res<Person> {
    let p = s.engine.store().person(PersonId(id)).await.map_err(|e| ApiError::internal(&e))?;
    match p {
        Some(p) if person_in_scope(s, caller, &p).await? => Ok(p),
        _ => Err(person_not_found(id)),
    }
}

/// 查看人员 / Get a person
///
/// `GET /api/registry/persons/{id}`: one person, masked.
#[utoipa::path(
    get,
    path = "/api/registry/persons/{id}",
    tag = "registry",
    params(("id" = i64, Path, description = "人员 id / Person id")),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "人员（已脱敏） / The person (masked)", body = PersonAnswer),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn person(
    State(s): State<Arc<AppState>>,
    CallerExt(caller): CallerExt,
    Path(id): Path<i64>,
) -> Res<impl IntoResponse> {
    let p = scoped_person(&s, &caller, id).await?;
    Ok(axum::Json(PersonAnswer { person: PersonView::masked(&p) }))
}

/// 查看人员明文（留痕） / Get a person in clear (audited)
///
/// `POST /api/registry/persons/{id}/unmask`: the person in clear, for a typed reason. The audit
/// event (`person.unmask`, reason and fields, never the values) is committed before the answer.
#[utoipa::path(
    post,
    path = "/api/registry/persons/{id}/unmask",
    tag = "registry",
    params(("id" = i64, Path, description = "人员 id / Person id")),
    request_body = UnmaskRequest,
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "人员明文 / The person in clear", body = PersonAnswer),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthenticated),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    )
)]
pub(crate) async fn unmask_person(
    State(s): State<Arc<AppState>>,
    AuthExt(who): AuthExt,
    Path(id): Path<i64>,
    Json(body): Json<UnmaskRequest>,
) -> Res<impl IntoResponse> {
    body.check()?;
    let p = scoped_person(&s, &who.caller, id).await?;
    let audit = body.audit_event(
        &who.caller.name,
        "person.unmask",
        format!("person/{id}"),
        None,
        &["name", "doc_number", "phone"],
        s.engine.clock().now(),
    );
    s.engine.store().append_audit(audit).await.map_err(|e| ApiError::internal(&e))?;
    Ok(axum::Json(PersonAnswer { person: PersonView::clear(&p) }))
}
