//! 权限矩阵 the access matrix, through the real router: every route of
//! [`jiayuan_server::inventory`] × every role × {own scope, other scope} × {item enabled, item
//! disabled}, plus anonymous once per route, each cell one real request whose status is checked
//! against [`table`] — a declarative table written here, independent of the product's policy
//! code (it never asks `authorize` or `permits`).
//!
//! The expectation of a cell ([`expected`]), in this order: anonymous on a guarded route → 401; a
//! role the table does not list → 403; a route aimed at an estate, record or person outside the
//! caller's reach → 404 (a body reference outside it → 422 `not_found`, as if missing); new record
//! work where the item is disabled → 409 `item_disabled`; otherwise the route's success status.
//! The demo accounts sit around the first demo estate ("own"); "other" is an estate in another
//! street and community, served by another firm. The district admin and the auditor reach the
//! whole district, so their "other" cells expect success.
//!
//! Also here: the route-inventory check (one table entry per route, no stale entries) and the
//! headline cases as explicit tests — 404 not 403 outside the scope, the auditor's reach,
//! unmasking with a reason and an audit event, the login rate limit, and session cookies.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderMap, Request, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use jiayuan_cli::demo::DEMO_PASSWORD;
use jiayuan_domain::{
    AccountScope, DivisionCode, EstateId, GridCell, GridKind, HouseId, PersonId, RecordId, Relation, Role,
};
use jiayuan_host::access::Caller;
use jiayuan_host::engine::TransitionRequest;
use jiayuan_server::accounts::{self, AccountDraft};
use jiayuan_store::{EnablementOverride, EnablementScope, NewOccupancy};
use jiayuan_test_support::fixtures;

use crate::support::{App, Backend, TestDb, date, fast_auth, start_time, violations};

const RECORDS: &str = "/api/items/dog-licensing/records";
const ITEM: &str = "dog-licensing";

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

use Role::{AgencyOfficer, Auditor, CommunityWorker, DistrictAdmin, FirmManager, FirmStaff, StreetOfficer};

/// Every role.
const EVERYONE: &[Role] = &Role::ALL;
/// Who reads and writes records (everyone but the auditor).
const RECORD_WRITERS: &[Role] = &[DistrictAdmin, StreetOfficer, CommunityWorker, FirmManager, FirmStaff, AgencyOfficer];
/// Who fires the transitions of the loaded items: the record writers that some transition of
/// the dog-licensing manifest names (no transition names the district admin).
const TRANSITION_ACTORS: &[Role] = &[StreetOfficer, CommunityWorker, FirmManager, FirmStaff, AgencyOfficer];
/// Who may see personal data in clear (with a reason).
const UNMASKERS: &[Role] = &[DistrictAdmin, StreetOfficer, CommunityWorker, FirmManager, AgencyOfficer];
/// Who registers persons.
const REGISTRARS: &[Role] = &[DistrictAdmin, StreetOfficer, CommunityWorker, FirmManager, FirmStaff];
/// Who keeps estates, grid cells and service assignments (street officers: their street's).
const ESTATE_KEEPERS: &[Role] = &[DistrictAdmin, StreetOfficer];
/// Who keeps buildings and houses (firm managers: their firm's estates).
const BUILDING_KEEPERS: &[Role] = &[DistrictAdmin, FirmManager];
/// Who reads enablement.
const ENABLEMENT_READERS: &[Role] = &[DistrictAdmin, StreetOfficer, CommunityWorker, FirmManager, Auditor];
/// The district admin alone.
const ADMIN: &[Role] = &[DistrictAdmin];
/// Who answers PIPL data requests (which records refer to a person): the district office, and
/// the auditor, read-only.
const DATA_REQUESTS: &[Role] = &[DistrictAdmin, Auditor];
/// Who reads the audit log.
const AUDIT_READERS: &[Role] = &[DistrictAdmin, Auditor];
/// Who imports ledger files (firm managers: into their firm's estates) and fetches templates.
const IMPORTERS: &[Role] = &[DistrictAdmin, FirmManager];
/// Who exports ledgers (masked, with a purpose): the offices, the firm managers and the auditor;
/// not firm staff nor agency officers.
const EXPORTERS: &[Role] = &[DistrictAdmin, StreetOfficer, CommunityWorker, FirmManager, Auditor];

/// The demo accounts whose scope is the whole district: they have no "outside".
const DISTRICT_WIDE: &[Role] = &[DistrictAdmin, Auditor];

/// The demo account's login of each role (`jiayuan_cli::demo::accounts`).
fn demo_login(role: Role) -> &'static str {
    match role {
        DistrictAdmin => "admin",
        StreetOfficer => "street",
        CommunityWorker => "community",
        FirmManager => "manager",
        FirmStaff => "staff",
        AgencyOfficer => "agency",
        Auditor => "auditor",
    }
}

/// Who may call a route.
#[derive(Clone, Copy)]
enum Callers {
    /// Anyone, without credentials.
    Anyone,
    /// An authenticated account of one of these roles.
    Roles(&'static [Role]),
}

/// How a route's answer depends on where it is aimed.
#[derive(Clone, Copy)]
enum Scoping {
    /// Not at all.
    Unscoped,
    /// Aimed at one estate, record or person: outside the caller's reach it is 404, as if absent.
    Target,
    /// A body reference (this field) outside the caller's reach is refused like a missing one:
    /// 422 with the violation `field:not_found`.
    Reference(&'static str),
    /// A listing: it succeeds everywhere, and shows the target estate's rows exactly when the
    /// caller reaches it. The function reads the estate ids the answer shows.
    Filtered(fn(&World, &Value) -> Vec<i64>),
    /// A ledger file whose rows aim at the target estate: outside the caller's reach each row is
    /// refused, so the import answers 422 with its report (nothing committed).
    Rows,
}

/// One row of the matrix.
struct Route {
    method: &'static str,
    path: &'static str,
    callers: Callers,
    scoping: Scoping,
    /// New record work, refused (409) where the item is disabled; reads stay allowed.
    new_work: bool,
    success: u16,
    /// Builds the cell's request, preparing fresh targets for routes with side effects.
    build: Build,
}

type Fut<'a> = Pin<Box<dyn Future<Output = Req> + 'a>>;
type Build = for<'a> fn(&'a World, Cell) -> Fut<'a>;

/// What a cell sends (the method is the route's).
struct Req {
    path: String,
    body: Option<Value>,
    /// A session cookie to authenticate with instead of the role's API token.
    cookie: Option<String>,
}

fn ready<'a>(path: String, body: Option<Value>) -> Fut<'a> {
    Box::pin(std::future::ready(Req { path, body, cookie: None }))
}

/// A table row: method, path, who may call, scoping, new work or read, success status, builder.
fn route(
    method: &'static str,
    path: &'static str,
    callers: Callers,
    scoping: Scoping,
    new_work: bool,
    success: u16,
    build: Build,
) -> Route {
    Route { method, path, callers, scoping, new_work, success, build }
}

const READ: bool = false;
const WORK: bool = true;

/// The matrix table: one entry per route of the API.
fn table() -> Vec<Route> {
    use Callers::{Anyone, Roles};
    use Scoping::{Filtered, Reference, Rows, Target, Unscoped};
    vec![
        route("GET", "/api/health", Anyone, Unscoped, READ, 200, |_, _| ready("/api/health".into(), None)),
        // Added on another branch: public, and a status read for every account.
        route("GET", "/api/openapi.json", Anyone, Unscoped, READ, 200, |_, _| ready("/api/openapi.json".into(), None)),
        route("GET", "/api/metrics", Roles(EVERYONE), Unscoped, READ, 200, |_, _| ready("/api/metrics".into(), None)),
        route("POST", "/api/auth/login", Anyone, Unscoped, READ, 200, build_login),
        route("POST", "/api/auth/logout", Roles(EVERYONE), Unscoped, READ, 204, build_logout),
        route("GET", "/api/auth/me", Roles(EVERYONE), Unscoped, READ, 200, |_, _| ready("/api/auth/me".into(), None)),
        route("GET", "/api/plugins", Roles(EVERYONE), Unscoped, READ, 200, |_, _| ready("/api/plugins".into(), None)),
        route("GET", "/api/plugins/{id}/manifest", Roles(EVERYONE), Unscoped, READ, 200, |_, _| {
            ready(format!("/api/plugins/{ITEM}/manifest"), None)
        }),
        route("POST", "/api/items/{plugin}/records", Roles(RECORD_WRITERS), Target, WORK, 201, |w, c| {
            let body = incident(w.site(c).estate, "barking", &format!("矩阵 {}", w.next()));
            ready(RECORDS.into(), Some(body))
        }),
        route("GET", "/api/items/{plugin}/records", Roles(EVERYONE), Filtered(records_shown), READ, 200, |w, c| {
            ready(format!("{RECORDS}?kind=incident&estate_id={}", w.site(c).estate), None)
        }),
        route("GET", "/api/items/{plugin}/records/{id}", Roles(EVERYONE), Target, READ, 200, |w, c| {
            ready(format!("{RECORDS}/{}", w.site(c).incident), None)
        }),
        route("GET", "/api/items/{plugin}/records/{id}/history", Roles(EVERYONE), Target, READ, 200, |w, c| {
            ready(format!("{RECORDS}/{}/history", w.site(c).incident), None)
        }),
        route("POST", "/api/items/{plugin}/records/{id}/unmask", Roles(UNMASKERS), Target, READ, 200, |w, c| {
            ready(format!("{RECORDS}/{}/unmask", w.site(c).incident), Some(json!({"reason": "case_handling"})))
        }),
        route(
            "POST",
            "/api/items/{plugin}/records/{id}/transitions/{transition}",
            Roles(TRANSITION_ACTORS),
            Target,
            WORK,
            200,
            build_transition,
        ),
        // A record export in CSV: the incidents of the estates the caller reaches, so the target
        // estate's incident is listed exactly when it is in reach.
        route(
            "GET",
            "/api/items/{plugin}/exports/{kind}",
            Roles(EXPORTERS),
            Filtered(exported_record_estates),
            READ,
            200,
            |_, _| ready(format!("/api/items/{ITEM}/exports/incident?format=csv&purpose=reconciliation"), None),
        ),
        route("GET", "/api/items/{plugin}/kpis", Roles(EVERYONE), Target, READ, 200, |w, c| {
            let estate = w.site(c).estate;
            ready(format!("/api/items/{ITEM}/kpis?estate_id={estate}&from=2026-01-01&to=2026-12-31"), None)
        }),
        route("GET", "/api/alerts", Roles(EVERYONE), Filtered(alerts_shown), READ, 200, |_, _| {
            ready(format!("/api/alerts?plugin={ITEM}&limit=500"), None)
        }),
        // Assignment clears the assignee of the target estate's incident (always eligible).
        route("PUT", "/api/items/{plugin}/records/{id}/assignee", Roles(RECORD_WRITERS), Target, READ, 200, |w, c| {
            ready(format!("{RECORDS}/{}/assignee", w.site(c).incident), Some(json!({"assignee": null})))
        }),
        route("GET", "/api/inbox", Roles(EVERYONE), Unscoped, READ, 200, |_, _| ready("/api/inbox".into(), None)),
        route("GET", "/api/registry/persons/{id}/records", Roles(DATA_REQUESTS), Unscoped, READ, 200, |w, c| {
            ready(format!("/api/registry/persons/{}/records", w.site(c).person), None)
        }),
        route("GET", "/api/registry/agency-units", Roles(EVERYONE), Unscoped, READ, 200, |_, _| {
            ready("/api/registry/agency-units".into(), None)
        }),
        route("POST", "/api/registry/agency-units", Roles(ADMIN), Unscoped, READ, 201, |w, _| {
            let unit =
                json!({"kind": "police", "name": format!("矩阵派出所{}", w.next()), "jurisdiction": "440303000000"});
            ready("/api/registry/agency-units".into(), Some(unit))
        }),
        route("GET", "/api/registry/divisions", Roles(EVERYONE), Unscoped, READ, 200, |_, _| {
            ready("/api/registry/divisions".into(), None)
        }),
        route("GET", "/api/registry/grid-cells", Roles(EVERYONE), Unscoped, READ, 200, |_, _| {
            ready("/api/registry/grid-cells".into(), None)
        }),
        route("GET", "/api/registry/estates", Roles(EVERYONE), Filtered(estates_shown), READ, 200, |_, _| {
            ready("/api/registry/estates".into(), None)
        }),
        route("GET", "/api/registry/estates/{id}", Roles(EVERYONE), Target, READ, 200, |w, c| {
            ready(format!("/api/registry/estates/{}", w.site(c).estate), None)
        }),
        route("GET", "/api/registry/estates/{id}/assignments", Roles(EVERYONE), Target, READ, 200, |w, c| {
            ready(format!("/api/registry/estates/{}/assignments", w.site(c).estate), None)
        }),
        route("GET", "/api/registry/firms", Roles(EVERYONE), Unscoped, READ, 200, |_, _| {
            ready("/api/registry/firms".into(), None)
        }),
        // Registry administration: divisions and firms are the district admin's; the unchanged
        // upserts answer 200, the fresh ones 201.
        route("PUT", "/api/registry/divisions", Roles(ADMIN), Unscoped, READ, 200, build_put_division),
        route("GET", "/api/registry/divisions/versions", Roles(EVERYONE), Unscoped, READ, 200, |_, _| {
            ready("/api/registry/divisions/versions".into(), None)
        }),
        route("PUT", "/api/registry/grid-cells/{code}", Roles(ESTATE_KEEPERS), Target, READ, 200, build_put_grid_cell),
        route("PUT", "/api/registry/estates/{id}", Roles(ESTATE_KEEPERS), Target, READ, 200, build_put_estate),
        route("GET", "/api/registry/estates/{id}/buildings", Roles(EVERYONE), Target, READ, 200, |w, c| {
            ready(format!("/api/registry/estates/{}/buildings", w.site(c).estate), None)
        }),
        route("GET", "/api/registry/estates/{id}/houses", Roles(EVERYONE), Target, READ, 200, |w, c| {
            ready(format!("/api/registry/estates/{}/houses", w.site(c).estate), None)
        }),
        route("PUT", "/api/registry/firms/{credit_code}", Roles(ADMIN), Unscoped, READ, 200, build_put_firm),
        route("POST", "/api/registry/assignments", Roles(ESTATE_KEEPERS), Target, READ, 200, build_put_assignment),
        route(
            "POST",
            "/api/registry/assignments/{id}/end",
            Roles(ESTATE_KEEPERS),
            Target,
            READ,
            200,
            build_end_assignment,
        ),
        route("POST", "/api/registry/buildings", Roles(BUILDING_KEEPERS), Target, READ, 201, |w, c| {
            let body = json!({"estate_id": w.site(c).estate, "name": format!("矩阵楼{}", w.next()),
                              "floors": 12, "height_m": 36.0, "elevator": true});
            ready("/api/registry/buildings".into(), Some(body))
        }),
        route("POST", "/api/registry/houses", Roles(BUILDING_KEEPERS), Target, READ, 201, |w, c| {
            Box::pin(async move {
                let house = w.app.engine.store().house(HouseId(w.site(c).house)).await.expect("house").expect("seeded");
                let body = json!({"building_id": house.building_id.0, "room": format!("M{}", w.next()),
                                  "area_m2": 88.5, "use": "self_occupied"});
                Req { path: "/api/registry/houses".into(), body: Some(body), cookie: None }
            })
        }),
        route("POST", "/api/registry/occupancies", Roles(REGISTRARS), Target, READ, 201, |w, c| {
            let from = date(2000, 1, 1).add_days(w.next() as i32);
            let body = json!({"person_id": w.site(c).person, "house_id": w.site(c).house, "from": from.to_string(),
                              "to": from.to_string(), "relation": "other", "primary": false});
            ready("/api/registry/occupancies".into(), Some(body))
        }),
        route("POST", "/api/registry/occupancies/{id}/end", Roles(REGISTRARS), Target, READ, 200, build_end_occupancy),
        route("GET", "/api/registry/houses/{id}/occupancies", Roles(EVERYONE), Target, READ, 200, |w, c| {
            ready(format!("/api/registry/houses/{}/occupancies?on=2026-11-30", w.site(c).house), None)
        }),
        route("GET", "/api/registry/houses/{id}/leases", Roles(EVERYONE), Target, READ, 200, |w, c| {
            ready(format!("/api/registry/houses/{}/leases", w.site(c).house), None)
        }),
        route("POST", "/api/registry/leases", Roles(REGISTRARS), Target, READ, 201, |w, c| {
            let from = date(1990, 1, 1).add_days(w.next() as i32);
            let body = json!({"house_id": w.site(c).house, "landlord_id": w.site(c).person,
                              "from": from.to_string(), "to": from.to_string()});
            ready("/api/registry/leases".into(), Some(body))
        }),
        route("GET", "/api/registry/persons/{id}/occupancies", Roles(EVERYONE), Target, READ, 200, |w, c| {
            ready(format!("/api/registry/persons/{}/occupancies", w.site(c).person), None)
        }),
        route("POST", "/api/registry/persons", Roles(REGISTRARS), Reference("house_id"), READ, 201, |w, c| {
            let n = w.next();
            let person = json!({"name": "矩阵居民", "doc_kind": "resident_id", "hukou": "shenzhen",
                "doc_number": fixtures::resident_id(700_000 + n, date(1980, 1, 1).add_days((n % 3000) as i32), n % 2 == 0),
                "house_id": w.site(c).house});
            ready("/api/registry/persons".into(), Some(person))
        }),
        route("GET", "/api/registry/persons", Roles(EVERYONE), Filtered(persons_shown), READ, 200, |w, c| {
            ready(format!("/api/registry/persons?doc_number={}", w.site(c).doc_number), None)
        }),
        route("GET", "/api/registry/persons/{id}", Roles(EVERYONE), Target, READ, 200, |w, c| {
            ready(format!("/api/registry/persons/{}", w.site(c).person), None)
        }),
        route("POST", "/api/registry/persons/{id}/unmask", Roles(UNMASKERS), Target, READ, 200, |w, c| {
            ready(
                format!("/api/registry/persons/{}/unmask", w.site(c).person),
                Some(json!({"reason": "contact_person"})),
            )
        }),
        // Ledgers: a buildings file naming the target estate (a fresh building per cell); an
        // estates export in CSV, which lists the target estate exactly when it is in reach.
        route("POST", "/api/registry/imports/{kind}", Roles(IMPORTERS), Rows, READ, 200, |w, c| {
            let csv =
                format!("小区编码,楼栋,层数,高度（米）,有无电梯\n{},矩阵导入楼{},12,36,是\n", w.site(c).code, w.next());
            ready("/api/registry/imports/buildings".into(), Some(Value::String(csv)))
        }),
        route(
            "GET",
            "/api/registry/exports/{kind}",
            Roles(EXPORTERS),
            Filtered(exported_estates),
            READ,
            200,
            |_, _| ready("/api/registry/exports/estates?format=csv&purpose=reconciliation".into(), None),
        ),
        route("GET", "/api/registry/templates/{kind}", Roles(IMPORTERS), Unscoped, READ, 200, |_, _| {
            ready("/api/registry/templates/persons".into(), None)
        }),
        route("GET", "/api/enablement/overrides", Roles(ENABLEMENT_READERS), Unscoped, READ, 200, |_, _| {
            ready("/api/enablement/overrides".into(), None)
        }),
        // The enablement writes switch the fixture item, so they never touch the matrix's own
        // switch of dog licensing.
        route("PUT", "/api/enablement/{item}", Roles(ADMIN), Unscoped, READ, 204, |w, c| {
            let body =
                json!({"scope": "estate", "code": w.site(c).estate.to_string(), "enabled": true, "reason": "矩阵测试"});
            ready("/api/enablement/fixture".into(), Some(body))
        }),
        route("DELETE", "/api/enablement/{item}", Roles(ADMIN), Unscoped, READ, 204, build_clear_enablement),
        route("GET", "/api/enablement/{item}/estates/{id}", Roles(ENABLEMENT_READERS), Target, READ, 200, |w, c| {
            ready(format!("/api/enablement/{ITEM}/estates/{}", w.site(c).estate), None)
        }),
        route("GET", "/api/accounts", Roles(ADMIN), Unscoped, READ, 200, |_, _| ready("/api/accounts".into(), None)),
        route("POST", "/api/accounts", Roles(ADMIN), Unscoped, READ, 201, |w, c| {
            let body = json!({"login": format!("matrix-new-{}", w.next()), "display_name": "矩阵新账号",
                              "role": "community_worker", "scope": format!("community:{}", w.site(c).community)});
            ready("/api/accounts".into(), Some(body))
        }),
        route("PATCH", "/api/accounts/{id}", Roles(ADMIN), Unscoped, READ, 200, |w, c| {
            Box::pin(async move {
                let id = w.fresh_account(c).await;
                Req {
                    path: format!("/api/accounts/{id}"),
                    body: Some(json!({"display_name": "矩阵改名"})),
                    cookie: None,
                }
            })
        }),
        route("POST", "/api/accounts/{id}/password", Roles(ADMIN), Unscoped, READ, 204, |w, c| {
            Box::pin(async move {
                let id = w.fresh_account(c).await;
                Req {
                    path: format!("/api/accounts/{id}/password"),
                    body: Some(json!({"password": "matrix-password-2026"})),
                    cookie: None,
                }
            })
        }),
        route("PUT", "/api/accounts/{id}/disabled", Roles(ADMIN), Unscoped, READ, 204, |w, c| {
            Box::pin(async move {
                let id = w.fresh_account(c).await;
                Req {
                    path: format!("/api/accounts/{id}/disabled"),
                    body: Some(json!({"disabled": true})),
                    cookie: None,
                }
            })
        }),
        route("GET", "/api/accounts/{id}/tokens", Roles(ADMIN), Unscoped, READ, 200, |w, _| {
            ready(format!("/api/accounts/{}/tokens", w.staff_account), None)
        }),
        route("POST", "/api/accounts/{id}/tokens", Roles(ADMIN), Unscoped, READ, 201, |w, c| {
            Box::pin(async move {
                let id = w.fresh_account(c).await;
                Req { path: format!("/api/accounts/{id}/tokens"), body: Some(json!({"name": "matrix"})), cookie: None }
            })
        }),
        route("DELETE", "/api/accounts/{id}/tokens/{token}", Roles(ADMIN), Unscoped, READ, 204, build_revoke_token),
        route("GET", "/api/audit/events", Roles(AUDIT_READERS), Unscoped, READ, 200, |_, _| {
            ready("/api/audit/events?limit=10".into(), None)
        }),
        route("GET", "/api/audit/verify", Roles(AUDIT_READERS), Unscoped, READ, 200, |_, _| {
            ready("/api/audit/verify".into(), None)
        }),
    ]
}

/// The status a cell must answer, from the table alone.
fn expected(route: &Route, cell: Cell) -> u16 {
    let role = match (route.callers, cell.who) {
        (Callers::Anyone, _) => return route.success,
        (Callers::Roles(_), None) => return 401,
        (Callers::Roles(roles), Some(role)) if !roles.contains(&role) => return 403,
        (Callers::Roles(_), Some(role)) => role,
    };
    let outside = cell.side == Side::Other && !DISTRICT_WIDE.contains(&role);
    match route.scoping {
        Scoping::Target if outside => return 404,
        Scoping::Reference(_) | Scoping::Rows if outside => return 422,
        _ => {}
    }
    if route.new_work && !cell.enabled {
        return 409;
    }
    route.success
}

/// The numbers under `field` of each element of the array `list` in `body`.
fn ids(body: &Value, list: &str, field: &str) -> Vec<i64> {
    body[list].as_array().into_iter().flatten().filter_map(|v| v[field].as_i64()).collect()
}

/// The estates of the records a listing shows.
fn records_shown(_: &World, body: &Value) -> Vec<i64> {
    ids(body, "records", "estate_id")
}

/// The estates of the alerts a listing shows.
fn alerts_shown(_: &World, body: &Value) -> Vec<i64> {
    ids(body, "alerts", "estate_id")
}

/// The estates a listing shows.
fn estates_shown(_: &World, body: &Value) -> Vec<i64> {
    ids(body, "estates", "id")
}

/// The estates a CSV export lists (its first column is the estate code).
fn exported_estates(w: &World, body: &Value) -> Vec<i64> {
    let text = body.as_str().unwrap_or_default();
    [&w.own, &w.other]
        .into_iter()
        .filter(|s| text.lines().any(|l| l.split(',').next() == Some(s.code.as_str())))
        .map(|s| s.estate)
        .collect()
}

/// The estates of the records a CSV record export lists (its second column is the estate id;
/// the provenance line and the header are skipped).
fn exported_record_estates(_: &World, body: &Value) -> Vec<i64> {
    let text = body.as_str().unwrap_or_default().trim_start_matches('\u{FEFF}');
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(',').nth(1)?.strip_prefix("estate ")?.parse().ok())
        .collect()
}

/// The estates of the persons a lookup shows (through their houses).
fn persons_shown(w: &World, body: &Value) -> Vec<i64> {
    ids(body, "persons", "house_id").into_iter().filter_map(|h| w.estate_of_house(h)).collect()
}

/// A dog incident in `estate` (incidents have no household rules, so any number can be made).
fn incident(estate: i64, kind: &str, location: &str) -> Value {
    json!({"kind": "incident", "estate_id": estate, "data": {
        "kind": kind, "occurred_at": "2026-11-30T08:30:00+08:00", "location": location,
        "description": "邻居反映犬只问题"}})
}

fn build_login(_: &World, c: Cell) -> Fut<'_> {
    let login = demo_login(c.who.unwrap_or(DistrictAdmin));
    ready("/api/auth/login".into(), Some(json!({"login": login, "password": DEMO_PASSWORD})))
}

/// Logout ends a browser session: a fresh one per cell, sent as the cookie.
fn build_logout(w: &World, c: Cell) -> Fut<'_> {
    Box::pin(async move {
        let cookie = match c.who {
            Some(role) => Some(w.session(demo_login(role)).await),
            None => None,
        };
        Req { path: "/api/auth/logout".into(), body: None, cookie }
    })
}

/// A fresh incident per cell, brought to the state in which the cell's role has a transition
/// to fire: firm staff handle a reported incident; the others close a handled one (the district
/// admin and the auditor try the same, and are refused).
fn build_transition(w: &World, c: Cell) -> Fut<'_> {
    Box::pin(async move {
        let (transition, input) = match c.who {
            Some(FirmStaff) => ("handle", json!({"action": "persuaded"})),
            _ => ("close", json!({})),
        };
        let id = w.fresh_incident(c, transition == "close").await;
        Req {
            path: format!("{RECORDS}/{id}/transitions/{transition}"),
            body: Some(json!({"input": input})),
            cookie: None,
        }
    })
}

fn build_clear_enablement(w: &World, c: Cell) -> Fut<'_> {
    Box::pin(async move {
        let estate = w.site(c).estate;
        let o = EnablementOverride {
            item: "fixture".into(),
            scope: EnablementScope::Estate(EstateId(estate)),
            enabled: true,
            reason: "矩阵测试".into(),
            changed_by: "matrix".into(),
            changed_at: w.now(),
        };
        w.app.engine.enablement().set_override(w.app.engine.store(), &o).await.expect("a fixture override");
        Req { path: format!("/api/enablement/fixture?scope=estate&code={estate}"), body: None, cookie: None }
    })
}

/// The target's community as it stands (an unchanged upsert).
fn build_put_division(w: &World, c: Cell) -> Fut<'_> {
    Box::pin(async move {
        let community = &w.site(c).community;
        let versions = w.app.engine.store().division_versions().await.expect("division versions");
        let d = versions.iter().find(|d| &d.code == community).expect("the community is registered");
        let body = json!({"code": d.code.to_string(), "name_zh": d.name_zh, "valid_from": d.valid_from.to_string(),
                          "valid_to": d.valid_to.map(|t| t.to_string())});
        Req { path: "/api/registry/divisions".into(), body: Some(body), cookie: None }
    })
}

/// A basic grid cell of the target's community, registered before (so the PUT is unchanged).
fn build_put_grid_cell(w: &World, c: Cell) -> Fut<'_> {
    Box::pin(async move {
        let community = w.site(c).community.clone();
        let code = format!("{community}901");
        let cell = GridCell {
            code: code.clone(),
            kind: GridKind::Basic,
            community,
            name: "矩阵网格".into(),
            estate_id: None,
            valid_from: date(2026, 1, 1),
            valid_to: None,
        };
        let system = Caller::system("matrix");
        let mut write = w.app.engine.registry().begin(&system).await.expect("a registry write");
        write.put_grid_cell(&cell).await.expect("the matrix's grid cell");
        write.commit().await.expect("commit");
        let body = json!({"kind": "basic", "name": "矩阵网格", "valid_from": "2026-01-01"});
        Req { path: format!("/api/registry/grid-cells/{code}"), body: Some(body), cookie: None }
    })
}

/// The target estate as it stands, by its code.
fn build_put_estate(w: &World, c: Cell) -> Fut<'_> {
    Box::pin(async move {
        let e = w.app.engine.store().estate(EstateId(w.site(c).estate)).await.expect("estate").expect("seeded");
        let mut body = serde_json::to_value(&e).expect("estate as JSON");
        let map = body.as_object_mut().expect("an object");
        map.remove("id");
        map.remove("code");
        Req { path: format!("/api/registry/estates/{}", e.code.as_str()), body: Some(body), cookie: None }
    })
}

/// The firm serving the target estate, as it stands.
fn build_put_firm(w: &World, c: Cell) -> Fut<'_> {
    Box::pin(async move {
        let store = w.app.engine.store();
        let today = w.now().shanghai_date();
        let id = store.firm_serving(EstateId(w.site(c).estate), today).await.expect("firm").expect("served");
        let f = store.firm(id).await.expect("firm").expect("registered");
        let body = json!({"name": f.name, "kind": f.kind, "legal_representative": f.legal_representative,
                          "contact_phone": f.contact_phone, "credit_code_override": f.credit_code_override});
        Req { path: format!("/api/registry/firms/{}", f.credit_code), body: Some(body), cookie: None }
    })
}

/// The target estate's current assignment.
async fn current_assignment(w: &World, c: Cell) -> jiayuan_domain::ServiceAssignment {
    let today = w.now().shanghai_date();
    let all = w.app.engine.store().assignments_of_estate(EstateId(w.site(c).estate)).await.expect("assignments");
    all.into_iter().find(|a| a.covers(today)).expect("the estate is served today")
}

/// The target estate's current assignment as it stands.
fn build_put_assignment(w: &World, c: Cell) -> Fut<'_> {
    Box::pin(async move {
        let a = current_assignment(w, c).await;
        let body = json!({"firm_id": a.firm_id.0, "estate_id": a.estate_id.0, "from": a.from.to_string(),
                          "to": a.to.map(|t| t.to_string()), "contract_ref": a.contract_ref});
        Req { path: "/api/registry/assignments".into(), body: Some(body), cookie: None }
    })
}

/// Ends the target's current assignment far in the future (so the estate stays served).
fn build_end_assignment(w: &World, c: Cell) -> Fut<'_> {
    Box::pin(async move {
        let a = current_assignment(w, c).await;
        Req {
            path: format!("/api/registry/assignments/{}/end", a.id.0),
            body: Some(json!({"to": "2099-12-31"})),
            cookie: None,
        }
    })
}

/// A fresh one-day occupancy at the target house, ended a day later.
fn build_end_occupancy(w: &World, c: Cell) -> Fut<'_> {
    Box::pin(async move {
        let from = date(1980, 1, 1).add_days(w.next() as i32 * 3);
        let o = NewOccupancy {
            person_id: PersonId(w.site(c).person),
            house_id: HouseId(w.site(c).house),
            from,
            to: Some(from),
            relation: Relation::Other,
            primary: false,
            reported_at: None,
        };
        let system = Caller::system("matrix");
        let mut write = w.app.engine.registry().begin(&system).await.expect("a registry write");
        let id = write.put_occupancy(&o).await.expect("the matrix's occupancy").id();
        write.commit().await.expect("commit");
        let body = json!({"to": from.add_days(1).to_string()});
        Req { path: format!("/api/registry/occupancies/{}/end", id.0), body: Some(body), cookie: None }
    })
}

fn build_revoke_token(w: &World, c: Cell) -> Fut<'_> {
    Box::pin(async move {
        let id = w.fresh_account(c).await;
        let now = w.now();
        let token =
            accounts::issue_token(w.app.engine.store(), jiayuan_domain::AccountId(id), "matrix", None, "matrix", now)
                .await
                .expect("a token for the fresh account");
        Req { path: format!("/api/accounts/{id}/tokens/{}", token.id), body: None, cookie: None }
    })
}

// ---------------------------------------------------------------------------------------------
// The world the matrix runs in
// ---------------------------------------------------------------------------------------------

/// Where a cell aims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// The first demo estate, around which every demo account is scoped.
    Own,
    /// An estate in another street and community, served by another firm.
    Other,
}

/// One cell of the matrix: who calls (`None` is anonymous), where, with the item on or off there.
#[derive(Debug, Clone, Copy)]
struct Cell {
    who: Option<Role>,
    side: Side,
    enabled: bool,
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who = self.who.map_or("anonymous", Role::as_str);
        let side = match self.side {
            Side::Own => "own",
            Side::Other => "other",
        };
        let item = if self.enabled { "enabled" } else { "disabled" };
        write!(f, "as {who}, {side} scope, item {item}")
    }
}

/// One estate the matrix aims at, with things in it to aim at.
struct Site {
    estate: i64,
    /// The estate's code (ledger files name estates by it).
    code: String,
    community: DivisionCode,
    house: i64,
    person: i64,
    doc_number: String,
    /// An incident record created by the district admin before the matrix runs.
    incident: i64,
}

struct World {
    app: App,
    own: Site,
    other: Site,
    staff_account: i64,
    seq: AtomicU64,
}

/// A response: status, headers, JSON body (`null` when empty; a string holding the text when it
/// is not JSON, such as a CSV export).
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

/// Sends one request through the router: with `cookie` as the session cookie, else as `who`'s
/// demo account by its API token, else without credentials.
async fn send(
    app: &App,
    method: &str,
    path: &str,
    who: Option<Role>,
    cookie: Option<&str>,
    body: Option<&Value>,
) -> Answer {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(secret) = cookie {
        req = req.header(header::COOKIE, format!("{}={secret}", jiayuan_server::auth::SESSION_COOKIE));
    } else if let Some(role) = who {
        let token = app.tokens.get(role.as_str()).unwrap_or_else(|| panic!("no demo token for {role}"));
        req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    // A string body is a ledger file, uploaded as it is; any other body is JSON.
    let req = match body {
        Some(Value::String(file)) => req.header(header::CONTENT_TYPE, "text/csv").body(Body::from(file.clone())),
        Some(b) => req.header(header::CONTENT_TYPE, "application/json").body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .expect("a well-formed request");
    let res = app.router.clone().oneshot(req).await.expect("the router answers");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.expect("the body arrives").to_bytes();
    let body = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(_) if bytes.is_empty() => Value::Null,
        Err(_) => Value::String(String::from_utf8_lossy(&bytes).into_owned()),
    };
    Answer { status, headers, body }
}

/// Logs in with a password, carrying `cookie` as the browser's current session.
async fn login(app: &App, login: &str, password: &str, cookie: Option<&str>) -> Answer {
    let body = json!({"login": login, "password": password});
    send(app, "POST", "/api/auth/login", None, cookie, Some(&body)).await
}

/// The session secret a `Set-Cookie` header carries.
fn session_secret(headers: &HeaderMap) -> Option<String> {
    let cookie = headers.get(header::SET_COOKIE)?.to_str().ok()?;
    let first = cookie.split(';').next()?;
    let secret = first.strip_prefix(&format!("{}=", jiayuan_server::auth::SESSION_COOKIE))?;
    (!secret.is_empty()).then(|| secret.to_owned())
}

impl World {
    async fn new(backend: Backend) -> Option<World> {
        let db = TestDb::new(backend).await?;
        let app = App::start(db).await;
        let store = app.engine.store();
        let today = start_time().shanghai_date();
        let reg = fixtures::demo_registry();

        let own_h = app.households(0)[0];
        let own_estate = store.estate(own_h.estate).await.expect("estate").expect("the first demo estate");
        let own_firm = store.firm_serving(own_h.estate, today).await.expect("firm").expect("a firm serves it");
        let mut other = None;
        for (n, e) in reg.estates.iter().enumerate().skip(1) {
            let id = app.ids.estates[&e.id];
            let estate = store.estate(id).await.expect("estate").expect("a seeded estate");
            let firm = store.firm_serving(id, today).await.expect("firm");
            if estate.street() != own_estate.street()
                && estate.community != own_estate.community
                && firm.is_some_and(|f| f != own_firm)
                && let Some(h) = app.households(n).first()
            {
                other = Some(*h);
                break;
            }
        }
        let other_h = other.expect("the demo registry has an estate in another street, served by another firm");

        let mut sites = Vec::new();
        for h in [own_h, other_h] {
            let estate = store.estate(h.estate).await.expect("estate").expect("seeded");
            let person = store.person(h.adult).await.expect("person").expect("seeded");
            let (status, body) =
                app.call("POST", RECORDS, Some("district_admin"), Some(&incident(h.estate.0, "bite", "3栋楼下"))).await;
            assert_eq!(status, 201, "the district admin records an incident in estate {}: {body}", h.estate);
            sites.push(Site {
                estate: h.estate.0,
                code: estate.code.as_str().to_owned(),
                community: estate.community,
                house: h.house.0,
                person: h.adult.0,
                doc_number: person.doc.number,
                incident: body["id"].as_i64().expect("record id"),
            });
        }
        let other = sites.pop().expect("two sites");
        let own = sites.pop().expect("two sites");
        let staff_account = store.account_by_login("staff").await.expect("account").expect("demo staff").id.0;
        Some(World { app, own, other, staff_account, seq: AtomicU64::new(1) })
    }

    fn site(&self, c: Cell) -> &Site {
        match c.side {
            Side::Own => &self.own,
            Side::Other => &self.other,
        }
    }

    fn now(&self) -> jiayuan_domain::Timestamp {
        self.app.engine.clock().now()
    }

    fn next(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    fn estate_of_house(&self, house: i64) -> Option<i64> {
        [&self.own, &self.other].into_iter().find(|s| s.house == house).map(|s| s.estate)
    }

    /// A new browser session of the demo account `login`: its cookie secret.
    async fn session(&self, login_name: &str) -> String {
        let res = login(&self.app, login_name, DEMO_PASSWORD, None).await;
        assert_eq!(res.status, 200, "login as {login_name}: {}", res.body);
        session_secret(&res.headers).expect("the login sets the session cookie")
    }

    /// A new community-worker account (no password) in the target's community.
    async fn fresh_account(&self, c: Cell) -> i64 {
        let draft = AccountDraft {
            login: format!("matrix-{}", self.next()),
            display_name: "矩阵测试".into(),
            role: CommunityWorker,
            scope: AccountScope::Division(self.site(c).community.clone()),
            items: None,
            password: None,
            agency_unit: None,
        };
        let now = self.now();
        accounts::create_account(self.app.engine.store(), &fast_auth(), draft, &[], "matrix", now)
            .await
            .expect("a fresh account")
            .id
            .0
    }

    /// A new incident in the target estate, created by the district admin; `handled` fires
    /// `handle` on it (as a firm manager reaching the district).
    async fn fresh_incident(&self, c: Cell, handled: bool) -> i64 {
        let body = incident(self.site(c).estate, "barking", &format!("矩阵 {}", self.next()));
        let (status, res) = self.app.call("POST", RECORDS, Some("district_admin"), Some(&body)).await;
        assert_eq!(status, 201, "a fresh incident: {res}");
        let id = res["id"].as_i64().expect("record id");
        if handled {
            let manager = Caller::account("matrix-manager", FirmManager, &AccountScope::District, None);
            let req = TransitionRequest::new(ITEM, RecordId(id), "handle", json!({"action": "persuaded"}));
            self.app.engine.transition(&manager, req).await.expect("the fresh incident is handled");
        }
        id
    }

    /// Switches dog licensing off at the target estate (`off`), or removes that switch again.
    async fn switch_off(&self, c: Cell, off: bool) {
        let scope = EnablementScope::Estate(EstateId(self.site(c).estate));
        let (engine, now) = (&self.app.engine, self.now());
        if off {
            let o = EnablementOverride {
                item: ITEM.into(),
                scope,
                enabled: false,
                reason: "矩阵测试：暂停".into(),
                changed_by: "matrix".into(),
                changed_at: now,
            };
            engine.enablement().set_override(engine.store(), &o).await.expect("switch the item off");
        } else {
            let removed =
                engine.enablement().clear_override(engine.store(), ITEM, &scope, "matrix", now).await.expect("clear");
            assert!(removed, "the matrix's override was there to clear");
        }
    }
}

/// Every cell of one route: anonymous once, then each role × side × enablement.
fn cells() -> Vec<Cell> {
    let mut out = vec![Cell { who: None, side: Side::Own, enabled: true }];
    for role in Role::ALL {
        for side in [Side::Own, Side::Other] {
            for enabled in [true, false] {
                out.push(Cell { who: Some(role), side, enabled });
            }
        }
    }
    out
}

/// What a cell's answer must look like beyond its status; `None` when it does.
fn check_body(w: &World, route: &Route, cell: Cell, want: u16, res: &Answer) -> Option<String> {
    let code = res.body["error"]["code"].as_str().unwrap_or("");
    match want {
        401 if code != "unauthenticated" => Some(format!("error code `{code}`, want `unauthenticated`")),
        403 if code != "forbidden" => Some(format!("error code `{code}`, want `forbidden`")),
        404 if code != "not_found" => Some(format!("error code `{code}`, want `not_found` (as for a missing one)")),
        409 if code != "item_disabled" => Some(format!("error code `{code}`, want `item_disabled`")),
        422 if matches!(route.scoping, Scoping::Rows) => {
            let (refused, committed) = (res.body["refused"].as_u64(), res.body["committed"].as_bool());
            (refused != Some(1) || committed != Some(false))
                .then(|| format!("report refused {refused:?}, committed {committed:?}; want 1 refused, not committed"))
        }
        422 => {
            let Scoping::Reference(field) = route.scoping else { return None };
            let want = format!("{field}:not_found");
            (!violations(&res.body).contains(&want))
                .then(|| format!("violations {:?}, want {want}", violations(&res.body)))
        }
        s if s == route.success => {
            let Scoping::Filtered(shown) = route.scoping else { return None };
            let role = cell.who?;
            let target = w.site(cell).estate;
            let reached = cell.side == Side::Own || DISTRICT_WIDE.contains(&role);
            let visible = shown(w, &res.body).contains(&target);
            match (reached, visible) {
                (true, false) => Some(format!("estate {target} is in reach, but the answer does not show it")),
                (false, true) => Some(format!("estate {target} is out of reach, but the answer shows it")),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Runs the whole matrix; returns (cells run, failures).
async fn run_matrix(w: &World) -> (usize, Vec<String>) {
    let inventory: Vec<(String, &str)> =
        jiayuan_server::inventory().iter().map(|r| (r.method.to_string(), r.path)).collect();
    let mut failures = Vec::new();
    let mut run = 0;
    for route in table() {
        if !inventory.iter().any(|(m, p)| m == route.method && *p == route.path) {
            continue; // pending on another branch; the inventory test keeps this honest
        }
        for cell in cells() {
            let req = (route.build)(w, cell).await;
            if !cell.enabled {
                w.switch_off(cell, true).await;
            }
            let res = send(&w.app, route.method, &req.path, cell.who, req.cookie.as_deref(), req.body.as_ref()).await;
            if !cell.enabled {
                w.switch_off(cell, false).await;
            }
            run += 1;
            let want = expected(&route, cell);
            let problem = if res.status == want {
                check_body(w, &route, cell, want, &res)
            } else {
                Some(format!("expected {want}, got {}", res.status))
            };
            if let Some(problem) = problem {
                failures.push(format!(
                    "{} {} ({} {}) {cell}: {problem}; body {}",
                    route.method, route.path, route.method, req.path, res.body
                ));
            }
        }
    }
    (run, failures)
}

async fn matrix(backend: Backend) {
    let Some(w) = World::new(backend).await else { return };
    let started = Instant::now();
    let (run, failures) = run_matrix(&w).await;
    let routes = jiayuan_server::inventory().len();
    eprintln!("access matrix: {run} cells over {routes} routes in {:.1} s", started.elapsed().as_secs_f64());
    assert_eq!(run, routes * cells().len(), "every route of the inventory ran every cell");
    assert!(failures.is_empty(), "{} of {run} access-matrix cells failed:\n{}", failures.len(), failures.join("\n"));
    let report = w.app.engine.store().verify_audit().await.expect("verify the audit log");
    assert!(report.is_ok(), "the audit chain stays whole through the matrix: {report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_matrix_on_sqlite() {
    matrix(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_matrix_on_postgres() {
    matrix(Backend::Postgres).await;
}

#[test]
fn every_route_has_exactly_one_matrix_entry() {
    let inventory = jiayuan_server::inventory();
    let table = table();
    let mut problems = Vec::new();
    for r in &inventory {
        let entries = table.iter().filter(|e| e.method == r.method.as_str() && e.path == r.path).count();
        if entries != 1 {
            problems.push(format!("{} {}: {entries} matrix entries, want exactly 1", r.method, r.path));
        }
    }
    for e in &table {
        let routes = inventory.iter().filter(|r| r.method.as_str() == e.method && r.path == e.path).count();
        if routes == 0 {
            problems.push(format!("{} {}: in the matrix table but not in inventory()", e.method, e.path));
        }
        if routes > 1 {
            problems.push(format!("{} {}: {routes} routes in inventory()", e.method, e.path));
        }
    }
    assert!(problems.is_empty(), "the matrix table and the route inventory disagree:\n{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// The headline cases
// ---------------------------------------------------------------------------------------------

/// Firm staff: another firm's estate and its records are 404 — exactly as a missing estate or
/// record — never 403; switching items is 403. The auditor reads the audit chain but writes nothing.
async fn scope_and_roles(backend: Backend) {
    let Some(w) = World::new(backend).await else { return };
    let app = &w.app;
    let staff = Some(FirmStaff);
    let (other, missing) = (w.other.estate, 999_999);

    let seen = send(app, "GET", &format!("/api/registry/estates/{other}"), Some(DistrictAdmin), None, None).await;
    assert_eq!(seen.status, 200, "the other estate exists: {}", seen.body);
    let outside = send(app, "GET", &format!("/api/registry/estates/{other}"), staff, None, None).await;
    let absent = send(app, "GET", &format!("/api/registry/estates/{missing}"), staff, None, None).await;
    assert_eq!(outside.status, 404, "another firm's estate is 404 for firm staff, not 403: {}", outside.body);
    assert_eq!(outside.body["error"]["code"], absent.body["error"]["code"], "{} vs {}", outside.body, absent.body);
    let text = outside.body.to_string().replace(&other.to_string(), &missing.to_string());
    assert_eq!(text, absent.body.to_string(), "an estate outside the scope reads like a missing one");

    let record = w.other.incident;
    let seen = send(app, "GET", &format!("{RECORDS}/{record}"), Some(DistrictAdmin), None, None).await;
    assert_eq!(seen.status, 200, "the other estate's record exists: {}", seen.body);
    for path in [format!("{RECORDS}/{record}"), format!("{RECORDS}/{record}/history")] {
        let res = send(app, "GET", &path, staff, None, None).await;
        assert_eq!((res.status, &res.body["error"]["code"]), (404, &json!("not_found")), "GET {path}: {}", res.body);
        let gone = path.replace(&record.to_string(), &missing.to_string());
        let absent = send(app, "GET", &gone, staff, None, None).await;
        assert_eq!(
            res.body.to_string().replace(&record.to_string(), &missing.to_string()),
            absent.body.to_string(),
            "a record outside the scope reads like a missing one"
        );
    }
    let create = incident(other, "barking", "楼下");
    let res = send(app, "POST", RECORDS, staff, None, Some(&create)).await;
    assert_eq!(res.status, 404, "creating in another firm's estate: {}", res.body);
    let res = send(app, "GET", &format!("{RECORDS}?estate_id={other}"), staff, None, None).await;
    assert_eq!((res.status, res.body["records"].as_array().map(Vec::len)), (200, Some(0)), "{}", res.body);

    let off = json!({"scope": "estate", "code": w.own.estate.to_string(), "enabled": false, "reason": "试"});
    let res = send(app, "PUT", "/api/enablement/dog-licensing", staff, None, Some(&off)).await;
    assert_eq!((res.status, &res.body["error"]["code"]), (403, &json!("forbidden")), "{}", res.body);
    let overrides = app.engine.store().enablement_overrides().await.expect("overrides");
    assert!(overrides.is_empty(), "the refused switch changed nothing: {overrides:?}");

    let res = send(app, "GET", "/api/audit/verify", Some(Auditor), None, None).await;
    assert_eq!((res.status, &res.body["ok"]), (200, &json!(true)), "{}", res.body);
    let before = app.engine.store().audit_events(0, 0).await.expect("audit").len();
    let res = send(app, "POST", RECORDS, Some(Auditor), None, Some(&incident(w.own.estate, "barking", "楼下"))).await;
    assert_eq!((res.status, &res.body["error"]["code"]), (403, &json!("forbidden")), "{}", res.body);
    let after = app.engine.store().audit_events(0, 0).await.expect("audit").len();
    assert_eq!(before, after, "the refused create wrote nothing");
}

/// Unmasking needs a typed reason; the clear read leaves a `record.unmask` audit event naming the
/// reason and the fields, never their values.
async fn unmask_is_reasoned_and_audited(backend: Backend) {
    let Some(w) = World::new(backend).await else { return };
    let app = &w.app;
    let phone = fixtures::phone(81_234);
    let description = format!("犬只咬伤路人，联系电话{phone}");
    let mut body = incident(w.own.estate, "bite", "2栋门口");
    body["data"]["description"] = json!(description);
    let (status, created) = app.call("POST", RECORDS, Some("firm_staff"), Some(&body)).await;
    assert_eq!(status, 201, "{created}");
    assert_ne!(created["data"]["description"], json!(description), "the answer is masked: {created}");
    let id = created["id"].as_i64().expect("record id");
    let path = format!("{RECORDS}/{id}/unmask");
    let unmasks = || async {
        let events = app.engine.store().audit_events(0, 0).await.expect("audit");
        events.into_iter().filter(|e| e.action == "record.unmask").collect::<Vec<_>>()
    };

    for bad in [json!({}), json!({"note": "工单 17"}), json!({"reason": "curiosity"})] {
        let res = send(app, "POST", &path, Some(CommunityWorker), None, Some(&bad)).await;
        assert!(matches!(res.status, 400 | 422), "unmask without a valid reason {bad}: {} {}", res.status, res.body);
        assert!(!res.body.to_string().contains(&phone), "no clear value without a reason: {}", res.body);
    }
    assert!(unmasks().await.is_empty(), "a refused unmask is not an unmask");

    let ask = json!({"reason": "case_handling", "note": "工单 17"});
    let res = send(app, "POST", &path, Some(CommunityWorker), None, Some(&ask)).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body["data"]["description"], json!(description), "the clear value: {}", res.body);

    let events = unmasks().await;
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!((e.actor.as_str(), e.object.as_str()), ("community", format!("{ITEM}/record/{id}").as_str()));
    let detail: Value = serde_json::from_str(&e.detail_json).expect("detail is JSON");
    assert_eq!(detail["reason"], "case_handling", "{detail}");
    let fields = detail["fields"].as_array().cloned().unwrap_or_default();
    assert!(fields.contains(&json!("description")), "the field names: {detail}");
    for secret in [description.as_str(), phone.as_str()] {
        assert!(!e.detail_json.contains(secret) && !e.object.contains(secret), "no clear value audited: {e:?}");
    }
    let res = send(app, "GET", "/api/audit/events?limit=1000", Some(Auditor), None, None).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(res.body.to_string().contains("record.unmask"), "the auditor sees the unmask");
    assert!(!res.body.to_string().contains(&phone), "and no clear value");
}

/// After the configured failures a login is 429 with `Retry-After`, even with the right password.
async fn login_rate_limit(backend: Backend) {
    let Some(w) = World::new(backend).await else { return };
    let app = &w.app;
    let attempts = fast_auth().login_attempts;
    assert!(attempts >= 1);
    for n in 1..=attempts {
        let res = login(app, "community", "not-the-password", None).await;
        assert_eq!(res.status, 401, "failure {n} of {attempts}: {}", res.body);
    }
    for password in ["not-the-password", DEMO_PASSWORD] {
        let res = login(app, "community", password, None).await;
        assert_eq!((res.status, &res.body["error"]["code"]), (429, &json!("too_many_logins")), "{}", res.body);
        let wait =
            res.headers.get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        assert!(wait.is_some_and(|s| s >= 1), "Retry-After in whole seconds: {:?}", res.headers);
        assert!(session_secret(&res.headers).is_none(), "no session while blocked");
    }
    let res = login(app, "street", DEMO_PASSWORD, None).await;
    assert_eq!(res.status, 200, "another login is not blocked: {}", res.body);
}

/// Logging in with an old session cookie ends that session; logout ends the current one; the
/// cookie is HttpOnly and SameSite=Strict.
async fn sessions_rotate_and_end(backend: Backend) {
    let Some(w) = World::new(backend).await else { return };
    let app = &w.app;
    let me = |cookie: String| async move { send(app, "GET", "/api/auth/me", None, Some(&cookie), None).await };

    let first = login(app, "staff", DEMO_PASSWORD, None).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let set = first.headers.get(header::SET_COOKIE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    let old = session_secret(&first.headers).expect("a session cookie");
    let res = me(old.clone()).await;
    assert_eq!(
        (res.status, &res.body["via"], &res.body["account"]["login"]),
        (200, &json!("session"), &json!("staff"))
    );

    let second = login(app, "staff", DEMO_PASSWORD, Some(&old)).await;
    assert_eq!(second.status, 200, "{}", second.body);
    let new = session_secret(&second.headers).expect("a new session cookie");
    assert_ne!(new, old, "every login issues a new session id");
    let res = me(old.clone()).await;
    assert_eq!(res.status, 401, "the session the browser brought to the login has ended: {}", res.body);
    assert_eq!(me(new.clone()).await.status, 200);

    let out = send(app, "POST", "/api/auth/logout", None, Some(&new), None).await;
    assert_eq!(out.status, 204, "{}", out.body);
    let cleared = out.headers.get(header::SET_COOKIE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert!(
        cleared.contains("Max-Age=0") && cleared.contains("HttpOnly") && cleared.contains("SameSite=Strict"),
        "{cleared}"
    );
    assert_eq!(me(new.clone()).await.status, 401, "logout ends the session");
    let again = send(app, "POST", "/api/auth/logout", None, Some(&new), None).await;
    assert_eq!(again.status, 401, "{}", again.body);
}

/// Changing an account: a change that leaves role, scope and items unfitting is a 400 naming the
/// reason (nothing changes), a fitting one ends the account's sessions so the old reach goes.
async fn account_changes(backend: Backend) {
    let Some(w) = World::new(backend).await else { return };
    let app = &w.app;
    let session = login(app, "staff", DEMO_PASSWORD, None).await;
    let cookie = session_secret(&session.headers).expect("a session cookie");
    let staff = w.staff_account;
    let patch = |body: Value| async move {
        send(app, "PATCH", &format!("/api/accounts/{staff}"), Some(DistrictAdmin), None, Some(&body)).await
    };
    let misfit = patch(json!({"role": "firm_manager"})).await;
    assert_eq!((misfit.status, &misfit.body["error"]["code"]), (400, &json!("bad_request")), "{}", misfit.body);
    let both = patch(json!({"items": ["dog-licensing"], "all_items": true})).await;
    assert_eq!(both.status, 400, "{}", both.body);
    let unknown = patch(json!({"items": ["no-such-item"]})).await;
    assert_eq!(unknown.status, 400, "{}", unknown.body);
    let me = send(app, "GET", "/api/auth/me", None, Some(&cookie), None).await;
    assert_eq!(me.status, 200, "refused changes leave the session: {}", me.body);

    let promoted = patch(json!({"role": "firm_manager", "all_items": true})).await;
    assert_eq!(promoted.status, 200, "{}", promoted.body);
    assert_eq!(
        (&promoted.body["account"]["role"], &promoted.body["account"]["items"]),
        (&json!("firm_manager"), &Value::Null)
    );
    let me = send(app, "GET", "/api/auth/me", None, Some(&cookie), None).await;
    assert_eq!(me.status, 401, "a change of reach ends the sessions: {}", me.body);
    let missing =
        send(app, "PATCH", "/api/accounts/999999", Some(DistrictAdmin), None, Some(&json!({"display_name": "x"})))
            .await;
    assert_eq!(missing.status, 404, "{}", missing.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_changes_are_checked_whole_and_end_sessions_on_sqlite() {
    account_changes(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_changes_are_checked_whole_and_end_sessions_on_postgres() {
    account_changes(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_the_scope_is_404_and_roles_are_403_on_sqlite() {
    scope_and_roles(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_the_scope_is_404_and_roles_are_403_on_postgres() {
    scope_and_roles(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmask_needs_a_reason_and_is_audited_on_sqlite() {
    unmask_is_reasoned_and_audited(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmask_needs_a_reason_and_is_audited_on_postgres() {
    unmask_is_reasoned_and_audited(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_rate_limited_on_sqlite() {
    login_rate_limit(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_rate_limited_on_postgres() {
    login_rate_limit(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_rotate_at_login_and_end_at_logout_on_sqlite() {
    sessions_rotate_and_end(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_rotate_at_login_and_end_at_logout_on_postgres() {
    sessions_rotate_and_end(Backend::Postgres).await;
}

/// Sanity for the table itself: the expectations it yields for a few well-known cells.
#[test]
fn the_table_yields_the_documented_expectations() {
    let table = table();
    let find = |m: &str, p: &str| table.iter().find(|r| r.method == m && r.path == p).expect("in the table");
    let cell = |who, side, enabled| Cell { who, side, enabled };
    let estate = find("GET", "/api/registry/estates/{id}");
    assert_eq!(expected(estate, cell(Some(FirmStaff), Side::Other, true)), 404);
    assert_eq!(expected(estate, cell(Some(Auditor), Side::Other, true)), 200);
    assert_eq!(expected(estate, cell(None, Side::Own, true)), 401);
    let create = find("POST", "/api/items/{plugin}/records");
    assert_eq!(expected(create, cell(Some(Auditor), Side::Own, true)), 403);
    assert_eq!(expected(create, cell(Some(FirmStaff), Side::Own, false)), 409);
    assert_eq!(expected(create, cell(Some(FirmStaff), Side::Other, false)), 404);
    assert_eq!(expected(create, cell(Some(DistrictAdmin), Side::Other, false)), 409);
    let read = find("GET", "/api/items/{plugin}/records/{id}");
    assert_eq!(expected(read, cell(Some(FirmStaff), Side::Own, false)), 200, "reads of a disabled item succeed");
    let import = find("POST", "/api/registry/imports/{kind}");
    assert_eq!(expected(import, cell(Some(FirmManager), Side::Own, true)), 200);
    assert_eq!(expected(import, cell(Some(FirmManager), Side::Other, true)), 422, "rows outside the reach are refused");
    assert_eq!(expected(import, cell(Some(DistrictAdmin), Side::Other, true)), 200);
    assert_eq!(expected(import, cell(Some(FirmStaff), Side::Own, true)), 403);
    let export = find("GET", "/api/registry/exports/{kind}");
    assert_eq!(expected(export, cell(Some(AgencyOfficer), Side::Own, true)), 403);
    assert_eq!(expected(export, cell(Some(StreetOfficer), Side::Other, true)), 200, "filtered, not refused");
    let records = find("GET", "/api/items/{plugin}/exports/{kind}");
    assert_eq!(expected(records, cell(Some(FirmStaff), Side::Own, true)), 403);
    assert_eq!(expected(records, cell(Some(AgencyOfficer), Side::Own, true)), 403);
    assert_eq!(expected(records, cell(Some(FirmManager), Side::Other, true)), 200, "filtered, not refused");
    assert_eq!(expected(records, cell(Some(Auditor), Side::Own, false)), 200, "a read of a disabled item");
    let health = find("GET", "/api/health");
    assert_eq!(expected(health, cell(None, Side::Own, true)), 200);
}
