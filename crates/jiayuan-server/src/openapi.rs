//! The OpenAPI 3 document of the API, generated from the code with `utoipa` and served at
//! `GET /api/openapi.json`.
//!
//! Every handler carries a `#[utoipa::path]` annotation (method, path, tag, parameters, body,
//! responses, security); [`ApiDoc`] collects them, adds the two security schemes (`bearer`: an
//! `Authorization: Bearer jy_…` API token; `session_cookie`: the `jiayuan_session` cookie set at
//! login) and the error body ([`ErrorBody`]). The tests below hold the document to the route
//! table ([`crate::inventory`]): every route is documented with its method, nothing else is, and
//! a route needs credentials in the document exactly when it needs them in the router.
//!
//! This module also holds the schemas of types that live below the HTTP layer and so cannot
//! derive `ToSchema` themselves ([`Record`], [`RecordPage`], [`RoleName`], [`DocKindName`],
//! [`SexName`], [`HukouName`]); tests check each against the type it stands for. There is no
//! documentation UI: the JSON is the product.

use std::sync::OnceLock;

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToResponse, ToSchema};

use crate::error::ErrorBody;
use crate::routes;

/// The document's introduction.
const DESCRIPTION: &str = concat!(
    "罗湖区物业服务事项共享平台 API。受保护的接口需要 `Authorization: Bearer <令牌>` 或登录后的会话 Cookie ",
    "`jiayuan_session`；错误以 `{\"error\": {\"code\", \"message_zh\", \"message_en\", \"violations\"}}` 返回。\n\n",
    "The API of the platform Luohu district shares with the property-management firms of its estates. Guarded ",
    "operations need `Authorization: Bearer <token>` or the session cookie `jiayuan_session` set at login; every ",
    "error answers `{\"error\": {\"code\", \"message_zh\", \"message_en\", \"violations\"}}`.",
);

/// The API's OpenAPI document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Jiayuan 家园 API",
        version = env!("CARGO_PKG_VERSION"),
        description = DESCRIPTION,
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        routes::health,
        routes::openapi_json,
        routes::metrics,
        routes::plugins,
        routes::manifest,
        routes::session::login,
        routes::session::logout,
        routes::session::me,
        routes::records::create,
        routes::records::list,
        routes::records::get_record,
        routes::records::history,
        routes::records::unmask,
        routes::records::transition,
        routes::records::assign,
        routes::records::inbox,
        routes::records::kpis,
        routes::records::alerts,
        routes::records::person_records,
        routes::registry_admin::agency_units,
        routes::registry_admin::put_agency_unit,
        routes::divisions,
        routes::registry::grid_cells,
        routes::estates,
        routes::registry::estate,
        routes::registry::assignments,
        routes::firms,
        routes::create_person,
        routes::registry_admin::put_division,
        routes::registry_admin::division_versions,
        routes::registry_admin::put_grid_cell,
        routes::registry_admin::put_estate,
        routes::registry_admin::estate_buildings,
        routes::registry_admin::estate_houses,
        routes::registry_admin::put_firm,
        routes::registry_admin::put_assignment,
        routes::registry_admin::end_assignment,
        routes::registry_admin::put_building,
        routes::registry_admin::put_house,
        routes::registry_admin::put_occupancy,
        routes::registry_admin::end_occupancy,
        routes::registry_admin::person_occupancies,
        routes::registry_admin::house_occupancies,
        routes::registry_admin::put_lease,
        routes::registry_admin::house_leases,
        routes::ledger::import,
        routes::ledger::export,
        routes::ledger::export_records,
        routes::ledger::template,
        routes::registry::find_persons,
        routes::registry::person,
        routes::registry::unmask_person,
        routes::enablement_overrides,
        routes::set_enablement,
        routes::clear_enablement,
        routes::enablement_decision,
        routes::admin::accounts,
        routes::admin::create_account,
        routes::admin::update_account,
        routes::admin::reset_password,
        routes::admin::set_disabled,
        routes::admin::tokens,
        routes::admin::issue_token,
        routes::admin::revoke_token,
        routes::admin::audit_events,
        routes::admin::audit_verify,
    ),
    components(
        schemas(ErrorBody),
        responses(
            BadRequest,
            Unauthenticated,
            Forbidden,
            NotFound,
            Conflict,
            Invalid,
            TooManyLogins,
            Internal,
            Unavailable,
        )
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "system", description = "运行状态、接口文档与指标 / Status, the API document and metrics"),
        (name = "auth", description = "登录、退出与当前账号 / Login, logout and the calling account"),
        (name = "records", description = "服务事项的记录、流转、告警与指标 / Service-item records, transitions, alerts and KPIs"),
        (name = "registry", description = "区划、小区、物业企业与人员登记 / Divisions, estates, firms and residents"),
        (name = "enablement", description = "服务事项在各小区的启用 / Where each service item runs"),
        (name = "accounts", description = "账号与 API 令牌管理 / Accounts and API tokens"),
        (name = "audit", description = "审计日志 / The audit log"),
    )
)]
pub struct ApiDoc;

/// Adds the security schemes guarded operations refer to.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("jy_…")
                    .description(Some("API 令牌 / An API token issued at `POST /api/accounts/{id}/tokens`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            SESSION_COOKIE,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::auth::SESSION_COOKIE,
                "浏览器会话 / The browser session set by `POST /api/auth/login`",
            ))),
        );
    }
}

/// The name of the bearer-token security scheme.
pub const BEARER: &str = "bearer";

/// The name of the session-cookie security scheme.
pub const SESSION_COOKIE: &str = "session_cookie";

/// The document as JSON, built once per process.
pub fn json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| match ApiDoc::openapi().to_json() {
        Ok(json) => json,
        Err(e) => {
            tracing::error!(error = %e, "the OpenAPI document does not serialize");
            "{}".to_owned()
        }
    })
}

/// 400: a malformed body, query or path parameter.
#[derive(Debug, ToResponse)]
#[response(description = "请求格式有误 / The request is malformed (body, query or path)")]
pub struct BadRequest(pub ErrorBody);

/// 401: no credentials, or unknown, expired or revoked ones.
#[derive(Debug, ToResponse)]
#[response(
    description = "未认证或凭据无效 / Not authenticated, or the credentials are unknown, expired or revoked",
    headers(("www-authenticate" = String, description = "`Bearer realm=\"jiayuan\"`"))
)]
pub struct Unauthenticated(pub ErrorBody);

/// 403: the caller's role may not do this.
#[derive(Debug, ToResponse)]
#[response(description = "当前角色无权执行此操作 / The caller's role may not do this")]
pub struct Forbidden(pub ErrorBody);

/// 404: no such thing, or not within the caller's scope.
#[derive(Debug, ToResponse)]
#[response(description = "不存在或不在权限范围内 / Not found, or outside the caller's scope")]
pub struct NotFound(pub ErrorBody);

/// 409: the state of the data forbids it.
#[derive(Debug, ToResponse)]
#[response(
    description = "与现有数据冲突 / Conflicts with the current data (state, version, duplicates, disabled item)"
)]
pub struct Conflict(pub ErrorBody);

/// 422: field violations.
#[derive(Debug, ToResponse)]
#[response(description = "输入有误，见 violations / The input is invalid; see `violations`")]
pub struct Invalid(pub ErrorBody);

/// 429: too many failed logins.
#[derive(Debug, ToResponse)]
#[response(
    description = "登录失败次数过多 / Too many failed logins",
    headers(("retry-after" = u64, description = "秒 / Seconds to wait"))
)]
pub struct TooManyLogins(pub ErrorBody);

/// 500: an internal error (the body says nothing; the cause is logged).
#[derive(Debug, ToResponse)]
#[response(description = "服务器内部错误 / Internal error")]
pub struct Internal(pub ErrorBody);

/// 503: the service item's plugin is unavailable (timed out or quarantined).
#[derive(Debug, ToResponse)]
#[response(description = "服务事项暂时不可用 / The service item is unavailable right now")]
pub struct Unavailable(pub ErrorBody);

/// A record as the API shows it (the schema of [`jiayuan_host::engine::RecordView`]). `data`
/// holds the fields of the record's kind, typed by the item's manifest; personal and sensitive
/// fields are masked except in an unmask answer.
#[derive(Debug, ToSchema)]
pub struct Record {
    /// Id.
    pub id: i64,
    /// Service item (plugin id).
    #[schema(example = "dog-licensing")]
    pub plugin: String,
    /// Record kind.
    #[schema(example = "dog")]
    pub kind: String,
    /// Where it sits: `{"estate": 3}` or `{"grid_cell": "440303001001001"}`.
    #[schema(value_type = Object)]
    pub place: serde_json::Value,
    /// Its estate, when it sits at one.
    pub estate_id: Option<i64>,
    /// Parent record.
    pub parent_id: Option<i64>,
    /// Workflow state.
    #[schema(example = "registered")]
    pub state: String,
    /// The record's fields the caller may see (by the manifest of its kind), masked where they
    /// must be; a field the caller's audience may not see is absent.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// Fields present but withheld because masked (non-text values, sensitive text).
    pub masked: Vec<String>,
    /// The account assigned to handle it.
    pub assignee: Option<String>,
    /// Who created it.
    pub created_by: String,
    /// Created (RFC 3339, +08:00): the host's clock.
    #[schema(example = "2026-11-30T10:00:00+08:00")]
    pub created_at: String,
    /// Last change (RFC 3339, +08:00).
    pub updated_at: String,
    /// When its latest entry says it happened (RFC 3339, +08:00).
    pub occurred_at: String,
    /// Version for optimistic concurrency (`expected_version` of a transition).
    pub version: i64,
}

/// A page of records (the schema of [`jiayuan_host::engine::Page`]).
#[derive(Debug, ToSchema)]
pub struct RecordPage {
    /// The records, in the requested `sort`.
    pub records: Vec<Record>,
    /// Pass as `cursor` (with the same `sort`) to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// What a registry import did, or for a dry run would do (the schema of
/// [`jiayuan_host::ledger::ImportReport`]).
#[derive(Debug, ToSchema)]
pub struct ImportReport {
    /// The kind imported.
    #[schema(example = "persons")]
    pub kind: String,
    /// SHA-256 of the file (hex).
    pub file_sha256: String,
    /// Data rows read.
    pub rows: u64,
    /// Rows that inserted a new entry.
    pub inserted: u64,
    /// Rows that changed an existing entry.
    pub updated: u64,
    /// Rows that matched an entry holding the same values.
    pub unchanged: u64,
    /// 转区级核对 rows naming a person the importer does not reach: neither changed nor shown.
    pub referred: u64,
    /// Rows with problems (not applied).
    pub refused: u64,
    /// Every problem by row and column, values masked (at most 2,000 listed).
    pub problems: Vec<ImportProblem>,
    /// Whether the changes were committed.
    pub committed: bool,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

/// One problem of an import (the schema of [`jiayuan_host::ledger::ReportProblem`]).
#[derive(Debug, ToSchema)]
pub struct ImportProblem {
    /// 1-based row as Excel shows it.
    pub row: u64,
    /// The column (header text or Chinese name), if the problem is about one.
    pub column: Option<String>,
    /// The rule's code.
    #[schema(example = "doc_number")]
    pub rule: String,
    /// 原因.
    pub reason_zh: String,
    /// The reason in English.
    pub reason_en: String,
    /// The cell, masked by its column's sensitivity.
    pub masked_value: Option<String>,
}

/// A ledger file (XLSX or CSV bytes).
#[derive(Debug, ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct LedgerFile(pub Vec<u8>);

/// 角色 a role (the schema of [`jiayuan_domain::Role`]).
#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum RoleName {
    /// 区管理员 district administrator.
    DistrictAdmin,
    /// 街道工作人员 street officer.
    StreetOfficer,
    /// 社区工作者 community worker.
    CommunityWorker,
    /// 物业项目经理 firm manager.
    FirmManager,
    /// 物业员工 firm staff.
    FirmStaff,
    /// 职能部门人员 agency officer.
    AgencyOfficer,
    /// 审计员 auditor.
    Auditor,
}

/// 证件类型 the kind of an identity document (the schema of [`jiayuan_domain::DocKind`]).
#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum DocKindName {
    /// 居民身份证.
    ResidentId,
    /// 港澳台居民居住证.
    HkMoTwResidencePermit,
    /// 港澳居民来往内地通行证.
    HomeReturnPermit,
    /// 台湾居民来往大陆通行证.
    TaiwanCompatriotPermit,
    /// 外国人永久居留身份证.
    ForeignPermanentResident,
    /// 护照.
    Passport,
}

/// 性别 sex (the schema of [`jiayuan_domain::Sex`]).
#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum SexName {
    /// 男.
    Male,
    /// 女.
    Female,
}

/// 户籍 household registration (the schema of [`jiayuan_domain::Hukou`]).
#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum HukouName {
    /// 深圳户籍.
    Shenzhen,
    /// 非深户籍.
    NonShenzhen,
    /// 港澳台.
    HkMoTw,
    /// 外籍.
    Foreign,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use http_body_util::BodyExt;
    use serde_json::{Value, json};

    use jiayuan_domain::{DocKind, EstateId, Hukou, RecordId, Role, Sex};
    use jiayuan_host::engine::RecordView;
    use jiayuan_plugin_api::FieldViolation;

    use super::*;
    use crate::error::ApiError;
    use crate::{Access, inventory};

    const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

    fn doc() -> Value {
        serde_json::from_str(json()).expect("the document is JSON")
    }

    /// `METHOD path` of every operation in the document.
    fn documented(doc: &Value) -> BTreeSet<String> {
        let paths = doc["paths"].as_object().expect("paths");
        paths
            .iter()
            .flat_map(|(path, item)| {
                let item = item.as_object().expect("path item");
                METHODS.iter().filter(|m| item.contains_key(**m)).map(move |m| format!("{} {path}", m.to_uppercase()))
            })
            .collect()
    }

    fn operation<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
        &doc["paths"][path][method.to_lowercase()]
    }

    #[test]
    fn every_route_is_documented_and_nothing_else() {
        let doc = doc();
        let documented = documented(&doc);
        let served: BTreeSet<String> = inventory().iter().map(|r| format!("{} {}", r.method, r.path)).collect();
        let missing: Vec<&String> = served.difference(&documented).collect();
        assert!(missing.is_empty(), "routes missing from the OpenAPI document: {missing:?}");
        let extra: Vec<&String> = documented.difference(&served).collect();
        assert!(extra.is_empty(), "documented operations missing from the route inventory: {extra:?}");
        assert_eq!(served.len(), inventory().len(), "the inventory lists a route twice");
    }

    #[test]
    fn guarded_routes_and_only_they_require_credentials() {
        let doc = doc();
        let schemes = doc["components"]["securitySchemes"].as_object().expect("security schemes");
        assert_eq!(
            schemes[BEARER],
            json!({"type": "http", "scheme": "bearer", "bearerFormat": "jy_…",
            "description": "API 令牌 / An API token issued at `POST /api/accounts/{id}/tokens`"})
        );
        assert_eq!(schemes[SESSION_COOKIE]["type"], "apiKey");
        assert_eq!(schemes[SESSION_COOKIE]["in"], "cookie");
        assert_eq!(schemes[SESSION_COOKIE]["name"], crate::auth::SESSION_COOKIE);
        for route in inventory() {
            let name = format!("{} {}", route.method, route.path);
            let op = operation(&doc, route.method.as_str(), route.path);
            let requirements = op["security"].as_array().cloned().unwrap_or_default();
            let responses = op["responses"].as_object().unwrap_or_else(|| panic!("{name} is not documented"));
            if route.access == Access::Public {
                assert!(requirements.is_empty(), "public route {name} declares security {requirements:?}");
                continue;
            }
            let named: BTreeSet<&str> = requirements
                .iter()
                .flat_map(|r| r.as_object().expect("requirement").keys())
                .map(String::as_str)
                .collect();
            assert_eq!(
                named,
                BTreeSet::from([BEARER, SESSION_COOKIE]),
                "guarded route {name} must accept `{BEARER}` or `{SESSION_COOKIE}`"
            );
            assert!(
                requirements.iter().all(|r| r.as_object().is_some_and(|r| r.len() == 1)),
                "{name}: each requirement is one scheme alone (either credential suffices)"
            );
            assert!(responses.contains_key("401"), "guarded route {name} does not document 401");
            if matches!(route.access, Access::Action(_)) {
                assert!(responses.contains_key("403"), "role-checked route {name} does not document 403");
            }
        }
    }

    #[test]
    fn the_document_is_openapi_3_and_self_consistent() {
        let doc = doc();
        let version = doc["openapi"].as_str().expect("openapi field");
        assert!(version.starts_with("3."), "openapi = {version}");
        assert_eq!(doc["info"]["title"], "Jiayuan 家园 API");
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
        // It reads back as an OpenAPI document.
        let parsed: utoipa::openapi::OpenApi = serde_json::from_str(json()).expect("parses as OpenAPI");
        assert_eq!(serde_json::to_value(&parsed).expect("json"), doc);

        // Every reference resolves.
        fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
            match v {
                Value::Object(map) => {
                    if let Some(Value::String(r)) = map.get("$ref") {
                        out.push(r);
                    }
                    map.values().for_each(|v| refs(v, out));
                }
                Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(!all.is_empty());
        for r in all {
            let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("external reference {r}"));
            assert!(doc.pointer(pointer).is_some(), "dangling reference {r}");
        }

        // Path templates and path parameters agree; operation ids are unique; every operation
        // has a summary and a tag.
        let mut ids = BTreeSet::new();
        for name in documented(&doc) {
            let (method, path) = name.split_once(' ').expect("METHOD path");
            let op = operation(&doc, method, path);
            let in_template: BTreeSet<&str> =
                path.split('/').filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}')).collect();
            let declared: BTreeSet<&str> = op["parameters"]
                .as_array()
                .map(|ps| ps.iter().filter(|p| p["in"] == "path").filter_map(|p| p["name"].as_str()).collect())
                .unwrap_or_default();
            assert_eq!(in_template, declared, "{name}: path parameters");
            let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{name}: no operationId"));
            assert!(ids.insert(id.to_owned()), "{name}: operationId {id} is not unique");
            let summary = op["summary"].as_str().unwrap_or_default();
            assert!(summary.contains(" / "), "{name}: summary `{summary}` is not 中文 / English");
            assert!(op["tags"].as_array().is_some_and(|t| !t.is_empty()), "{name}: no tag");
            assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{name}: no responses");
        }
    }

    fn property_names(doc: &Value, schema: &str) -> BTreeSet<String> {
        doc["components"]["schemas"][schema]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("schema {schema} has no properties"))
            .keys()
            .cloned()
            .collect()
    }

    fn keys(v: &Value) -> BTreeSet<String> {
        v.as_object().expect("an object").keys().cloned().collect()
    }

    fn enum_values(doc: &Value, schema: &str) -> Vec<String> {
        doc["components"]["schemas"][schema]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("schema {schema} is not an enum"))
            .iter()
            .map(|v| v.as_str().expect("a string").to_owned())
            .collect()
    }

    #[tokio::test]
    async fn the_error_schema_is_the_error_body() {
        let doc = doc();
        let err = ApiError::invalid(vec![FieldViolation::new("data.breed", "banned_breed", "禁养犬", "banned breed")]);
        let res = err.into_response();
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        let body: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(keys(&body), property_names(&doc, "ErrorBody"));
        assert_eq!(keys(&body["error"]), property_names(&doc, "ErrorDetail"));
        assert_eq!(keys(&body["error"]["violations"][0]), property_names(&doc, "Violation"));
        let required: Vec<&str> = doc["components"]["schemas"]["ErrorDetail"]["required"]
            .as_array()
            .expect("required")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(required, ["code", "message_zh", "message_en"], "violations is optional");
    }

    #[test]
    fn schemas_of_foreign_types_match_them() {
        let doc = doc();
        let view = RecordView {
            id: RecordId(1),
            plugin: "dog-licensing".into(),
            kind: "dog".into(),
            place: jiayuan_domain::Place::Estate(EstateId(2)),
            estate_id: Some(EstateId(2)),
            parent_id: None,
            state: "registered".into(),
            data: json!({}),
            masked: Vec::new(),
            assignee: None,
            created_by: String::new(),
            created_at: String::new(),
            updated_at: String::new(),
            occurred_at: String::new(),
            version: 1,
        };
        assert_eq!(keys(&serde_json::to_value(&view).expect("json")), property_names(&doc, "Record"));
        let page = crate::routes::records::PageBody { records: vec![view], next_cursor: None };
        let problem = jiayuan_host::ledger::ReportProblem {
            row: 2,
            column: None,
            rule: String::new(),
            reason_zh: String::new(),
            reason_en: String::new(),
            masked_value: None,
        };
        let report = jiayuan_host::ledger::ImportReport { problems: vec![problem], ..Default::default() };
        let report = serde_json::to_value(&report).expect("json");
        assert_eq!(keys(&report), property_names(&doc, "ImportReport"));
        assert_eq!(keys(&report["problems"][0]), property_names(&doc, "ImportProblem"));
        assert_eq!(keys(&serde_json::to_value(&page).expect("json")), property_names(&doc, "RecordPage"));

        let roles: Vec<String> = Role::ALL
            .iter()
            .map(|r| serde_json::to_value(r).expect("json").as_str().expect("str").to_owned())
            .collect();
        assert_eq!(enum_values(&doc, "RoleName"), roles);

        fn names<T: serde::Serialize>(all: &[T]) -> Vec<String> {
            all.iter().map(|v| serde_json::to_value(v).expect("json").as_str().expect("str").to_owned()).collect()
        }
        // Exhaustive matches: a new variant fails to compile here until its schema lists it.
        let doc_kinds = [
            DocKind::ResidentId,
            DocKind::HkMoTwResidencePermit,
            DocKind::HomeReturnPermit,
            DocKind::TaiwanCompatriotPermit,
            DocKind::ForeignPermanentResident,
            DocKind::Passport,
        ];
        for k in doc_kinds {
            match k {
                DocKind::ResidentId
                | DocKind::HkMoTwResidencePermit
                | DocKind::HomeReturnPermit
                | DocKind::TaiwanCompatriotPermit
                | DocKind::ForeignPermanentResident
                | DocKind::Passport => {}
            }
        }
        assert_eq!(enum_values(&doc, "DocKindName"), names(&doc_kinds));
        let sexes = [Sex::Male, Sex::Female];
        for s in sexes {
            match s {
                Sex::Male | Sex::Female => {}
            }
        }
        assert_eq!(enum_values(&doc, "SexName"), names(&sexes));
        let hukous = [Hukou::Shenzhen, Hukou::NonShenzhen, Hukou::HkMoTw, Hukou::Foreign];
        for h in hukous {
            match h {
                Hukou::Shenzhen | Hukou::NonShenzhen | Hukou::HkMoTw | Hukou::Foreign => {}
            }
        }
        assert_eq!(enum_values(&doc, "HukouName"), names(&hukous));
    }

    #[tokio::test]
    async fn the_document_is_served_without_credentials() {
        let app = crate::testkit::TestApp::start().await;
        let answer = app.get("/api/openapi.json", false).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        assert_eq!(answer.headers["content-type"], "application/json");
        let served: Value = serde_json::from_str(&answer.body).expect("json");
        assert_eq!(served, doc());
    }
}
