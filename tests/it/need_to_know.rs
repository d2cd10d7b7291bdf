//! 知悉范围 need-to-know through the real router, on SQLite and PostgreSQL: a field the fixture's
//! manifest shows only to `district` and `agency:police` reaches exactly those two audiences —
//! masked or unmasked as declared — in every answer that carries record data, and nobody else
//! learns anything of it (not its value, not an option of its choices, not that it is set);
//! transition guards (not the creator, the lead agency unit, the assignee); records at a grid
//! cell; two times per entry; the reference index.

use serde_json::{Value, json};

use jiayuan_domain::{AccountScope, AgencyUnitId, Role};
use jiayuan_server::accounts::{self, AccountDraft};

use crate::support::{App, Backend, TestDb, fast_auth, violations};

const PROBES: &str = "/api/items/fixture/records";
/// The hidden values: a sensitive text and an option of a hidden choice field.
const SECRET: &str = "复吸风险评估：高危";
const GRADE: &str = "grade_critical";

/// Every demo audience, by the role name the support's `call` takes.
const DEMO: [&str; 7] =
    ["district_admin", "street_officer", "community_worker", "firm_manager", "firm_staff", "agency_officer", "auditor"];

/// Whether a demo role's audience may see the probe's hidden fields (district and the police:
/// the demo agency officer belongs to a police station).
fn sees(role: &str) -> bool {
    matches!(role, "district_admin" | "agency_officer")
}

/// Creates an account of `role` (an agency officer of `unit`) and answers its API token.
async fn account(app: &App, login: &str, role: Role, scope: AccountScope, unit: Option<i64>) -> String {
    let store = app.engine.store();
    let now = app.engine.clock().now();
    let known: Vec<String> = app.engine.plugins().handles().map(|h| h.id().to_owned()).collect();
    let items = matches!(role, Role::AgencyOfficer | Role::FirmStaff).then(|| known.clone());
    let draft = AccountDraft {
        login: login.into(),
        display_name: login.into(),
        role,
        scope,
        items,
        password: None,
        agency_unit: unit.map(AgencyUnitId),
    };
    let a = accounts::create_account(store, &fast_auth(), draft, &known, "test", now).await.expect("account");
    let token = accounts::issue_token(store, a.id, "t", None, "test", now).await.expect("token");
    format!("token:{}", token.token)
}

async fn unit(app: &App, kind: &str, name: &str) -> i64 {
    let body = json!({"kind": kind, "name": name, "jurisdiction": "440303000000"});
    let (status, res) = app.call("POST", "/api/registry/agency-units", None, Some(&body)).await;
    assert_eq!(status, 201, "{res}");
    res["id"].as_i64().expect("unit id")
}

fn probe(estate: i64, extra: Value) -> Value {
    let mut data = json!({"mode": "ok"});
    if let (Some(d), Some(e)) = (data.as_object_mut(), extra.as_object()) {
        d.extend(e.clone());
    }
    json!({"kind": "probe", "estate_id": estate, "data": data})
}

async fn story(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else { return };
    let app = App::start(db).await;
    let home = app.households(0)[0];
    let estate = home.estate.0;
    let police_unit = app.engine.registry().agency_units().await.expect("units")[0].id.0;
    let judicial = unit(&app, "judicial", "黄贝司法所").await;
    let other_police = unit(&app, "police", "东门派出所").await;
    let judicial_officer =
        account(&app, "judicial.officer", Role::AgencyOfficer, AccountScope::District, Some(judicial)).await;
    let other_officer =
        account(&app, "police.other", Role::AgencyOfficer, AccountScope::District, Some(other_police)).await;

    // The district records a probe with the hidden fields set and the subject a resident.
    let body = probe(estate, json!({"secret": SECRET, "grade": GRADE, "subject": home.adult.0}));
    let (status, created) = app.call("POST", PROBES, None, Some(&body)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().expect("id");
    assert!(created["masked"].as_array().is_some_and(|m| m.contains(&json!("secret"))), "{created}");

    // Every answer carrying record data, for every audience.
    let mut callers: Vec<(String, bool, bool, bool)> = DEMO
        .iter()
        .map(|r| {
            let unmasks = !matches!(*r, "firm_staff" | "auditor");
            let exports =
                matches!(*r, "district_admin" | "street_officer" | "community_worker" | "firm_manager" | "auditor");
            ((*r).to_owned(), sees(r), unmasks, exports)
        })
        .collect();
    callers.push((judicial_officer.clone(), false, true, false));
    callers.push((other_officer.clone(), true, true, false));
    for (who, sees, unmasks, exports) in &callers {
        let who = who.as_str();
        let mut bodies = Vec::new();
        let (status, got) = app.call("GET", &format!("{PROBES}/{id}"), Some(who), None).await;
        assert_eq!(status, 200, "{who}: {got}");
        let masked: Vec<&str> = got["masked"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        assert_eq!(masked.contains(&"secret") && masked.contains(&"grade"), *sees, "{who}: masked list {got}");
        assert!(got["data"].get("secret").is_none() && got["data"].get("grade").is_none(), "{who}: {got}");
        bodies.push(got.to_string());
        let (status, page) = app.call("GET", &format!("{PROBES}?kind=probe&estate_id={estate}"), Some(who), None).await;
        assert_eq!(status, 200, "{who}: {page}");
        bodies.push(page.to_string());
        let (status, history) = app.call("GET", &format!("{PROBES}/{id}/history"), Some(who), None).await;
        assert_eq!(status, 200, "{who}: {history}");
        let changed = history["events"][0]["changed"].to_string();
        assert!(!changed.contains("secret"), "{who}: a masked field is no visible change: {history}");
        bodies.push(history.to_string());
        let (status, inbox) = app.call("GET", "/api/inbox", Some(who), None).await;
        assert_eq!(status, 200, "{who}: {inbox}");
        bodies.push(inbox.to_string());
        if *unmasks {
            let reason = json!({"reason": "case_handling"});
            let (status, clear) = app.call("POST", &format!("{PROBES}/{id}/unmask"), Some(who), Some(&reason)).await;
            assert_eq!(status, 200, "{who}: {clear}");
            assert_eq!(clear["data"]["secret"] == json!(SECRET), *sees, "{who} unmasks as declared: {clear}");
            assert_eq!(clear["data"]["grade"] == json!(GRADE), *sees, "{who}: {clear}");
            if !sees {
                bodies.push(clear.to_string());
            }
        }
        if *exports {
            let path = "/api/items/fixture/exports/probe?format=csv&purpose=reconciliation";
            let (status, _, csv) = app.bytes("GET", path, who, None, Vec::new()).await;
            let csv = String::from_utf8_lossy(&csv).into_owned();
            assert_eq!(status, 200, "{who}: {csv}");
            let header = csv.lines().nth(1).unwrap_or_default().to_owned();
            assert_eq!(header.contains("密情") || header.contains("等级"), *sees, "{who}: columns {header}");
            bodies.push(csv);
        }
        // Raw bytes: nothing of the hidden values, not even their first characters.
        if !sees {
            for b in &bodies {
                for needle in [SECRET, &SECRET[..6], GRADE, "grade_low", "\"secret\"", "\"grade\""] {
                    assert!(!b.contains(needle), "{who}: `{needle}` leaks in {b}");
                }
            }
        }
    }

    // A filter or a value on a field the caller may not see reads like an unknown field.
    let path = format!("{PROBES}?kind=probe&key=secret:{SECRET}");
    let (status, res) = app.call("GET", &path, Some("firm_manager"), None).await;
    assert_eq!((status.as_u16(), violations(&res)), (422, vec!["secret:unknown_field".to_owned()]), "{res}");
    let (unknown_status, unknown) =
        app.call("GET", &format!("{PROBES}?kind=probe&key=nonesuch:1"), Some("firm_manager"), None).await;
    assert_eq!(unknown_status, status, "{unknown}");
    assert!(!res.to_string().contains(SECRET), "{res}");
    let (status, _) = app.call("GET", &path, None, None).await;
    assert_eq!(status, 200, "the district may filter by it");
    let (status, res) =
        app.call("POST", PROBES, Some("firm_manager"), Some(&probe(estate, json!({"grade": GRADE})))).await;
    assert_eq!((status.as_u16(), violations(&res)), (422, vec!["grade:unknown_field".to_owned()]), "{res}");
    assert!(!res.to_string().contains(GRADE), "the refusal echoes nothing: {res}");

    // 巡办分离: the creator may not review; a colleague may.
    let (_, mine) = app.call("POST", PROBES, Some("firm_manager"), Some(&probe(estate, json!({})))).await;
    let mine = mine["id"].as_i64().expect("id");
    let review = format!("{PROBES}/{mine}/transitions/review");
    let (status, res) = app.call("POST", &review, Some("firm_manager"), None).await;
    assert_eq!(status, 403, "the creator: {res}");
    let (status, res) = app.call("POST", &review, Some("firm_staff"), None).await;
    assert_eq!(status, 200, "a colleague: {res}");

    // The lead agency: an officer of the unit the record names, not another unit of its kind.
    let led = probe(estate, json!({"lead_unit": police_unit}));
    let (_, led) = app.call("POST", PROBES, None, Some(&led)).await;
    let conclude = format!("{PROBES}/{}/transitions/conclude", led["id"]);
    let (status, res) = app.call("POST", &conclude, Some(&other_officer), None).await;
    assert_eq!(status, 403, "another police station: {res}");
    let (status, res) = app.call("POST", &conclude, Some("agency_officer"), None).await;
    assert_eq!((status.as_u16(), &res["state"]), (200, &json!("closed")), "the lead unit: {res}");

    // The assignee: assigned to firm staff, only they settle it; it is in their inbox.
    let (_, job) = app.call("POST", PROBES, None, Some(&probe(estate, json!({})))).await;
    let job = job["id"].as_i64().expect("id");
    let staff_login = "staff";
    let (status, res) =
        app.call("PUT", &format!("{PROBES}/{job}/assignee"), None, Some(&json!({"assignee": staff_login}))).await;
    assert_eq!((status.as_u16(), &res["assignee"]), (200, &json!(staff_login)), "{res}");
    let (status, res) =
        app.call("PUT", &format!("{PROBES}/{job}/assignee"), None, Some(&json!({"assignee": "auditor"}))).await;
    assert_eq!((status.as_u16(), violations(&res)), (422, vec!["assignee:not_eligible".to_owned()]), "{res}");
    let (_, inbox) = app.call("GET", "/api/inbox", Some("firm_staff"), None).await;
    assert!(inbox["records"].as_array().is_some_and(|r| r.iter().any(|r| r["id"] == job)), "{inbox}");
    let settle = format!("{PROBES}/{job}/transitions/settle");
    let (status, _) = app.call("POST", &settle, Some("firm_manager"), None).await;
    assert_eq!(status, 403, "not the assignee");
    let (status, res) = app.call("POST", &settle, Some("firm_staff"), None).await;
    assert_eq!(status, 200, "the assignee: {res}");
    let (_, history) = app.call("GET", &format!("{PROBES}/{job}/history"), None, None).await;
    let actions: Vec<&str> =
        history["events"].as_array().into_iter().flatten().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(actions, ["create", "assign", "settle"], "{history}");

    // A record at a grid cell: the community reaches it, no firm does.
    let (_, e) = app.call("GET", &format!("/api/registry/estates/{estate}"), None, None).await;
    let community =
        e["community"].as_str().or_else(|| e["estate"]["community"].as_str()).expect("community").to_owned();
    let cell = format!("{community}901");
    let put = json!({"kind": "basic", "name": "临街商铺网格", "valid_from": "2026-01-01"});
    let (status, res) = app.call("PUT", &format!("/api/registry/grid-cells/{cell}"), None, Some(&put)).await;
    assert!(status.is_success(), "{res}");
    let at_cell = json!({"kind": "probe", "grid_cell": cell, "data": {"mode": "ok"}});
    let (status, res) = app.call("POST", PROBES, Some("community_worker"), Some(&at_cell)).await;
    assert_eq!(status, 201, "{res}");
    let at = res["id"].as_i64().expect("id");
    assert_eq!(res["place"], json!({"grid_cell": cell}));
    let (status, _) = app.call("GET", &format!("{PROBES}/{at}"), Some("community_worker"), None).await;
    assert_eq!(status, 200, "the community reaches its grid cell");
    for firm in ["firm_manager", "firm_staff"] {
        let (status, _) = app.call("GET", &format!("{PROBES}/{at}"), Some(firm), None).await;
        assert_eq!(status, 404, "{firm} reaches no grid cell");
        let (status, _) = app.call("POST", PROBES, Some(firm), Some(&at_cell)).await;
        assert_eq!(status, 404, "{firm} cannot work at a grid cell");
    }
    let (_, page) =
        app.call("GET", &format!("{PROBES}?kind=probe&grid_cell={cell}"), Some("street_officer"), None).await;
    assert_eq!(page["records"].as_array().map(Vec::len), Some(1), "{page}");

    // Two times: back-dating beyond the bound needs a reason and is flagged.
    let now = app.engine.clock().now();
    let ten_days_ago = jiayuan_domain::Timestamp(now.0 - 10 * 86_400_000).to_rfc3339_shanghai();
    let mut late = probe(estate, json!({}));
    late["occurred_at"] = json!(ten_days_ago);
    let (status, res) = app.call("POST", PROBES, None, Some(&late)).await;
    assert_eq!((status.as_u16(), violations(&res)), (422, vec!["occurred_at:backdated_without_reason".to_owned()]));
    late["backdate_reason"] = json!("系统停机期间纸质登记，事后补录");
    let (status, res) = app.call("POST", PROBES, None, Some(&late)).await;
    assert_eq!((status.as_u16(), &res["occurred_at"]), (201, &json!(ten_days_ago)), "{res}");
    let (_, history) = app.call("GET", &format!("{PROBES}/{}/history", res["id"]), None, None).await;
    assert_eq!(history["events"][0]["backdated_reason"], json!("系统停机期间纸质登记，事后补录"), "{history}");
    assert_ne!(history["events"][0]["recorded_at"], history["events"][0]["occurred_at"]);

    // The reference index: the probe that names the resident, after a transition and a move.
    let other_estate = app.households(3)[0].estate.0;
    let relocate = format!("{PROBES}/{id}/transitions/relocate");
    let (status, res) = app.call("POST", &relocate, None, Some(&json!({"move_to": {"estate_id": other_estate}}))).await;
    assert_eq!((status.as_u16(), &res["estate_id"]), (200, &json!(other_estate)), "{res}");
    let (status, refs) = app.call("GET", &format!("/api/registry/persons/{}/records", home.adult.0), None, None).await;
    assert_eq!(status, 200, "{refs}");
    let hit = refs["records"].as_array().into_iter().flatten().find(|r| r["record_id"] == id).cloned();
    let hit = hit.unwrap_or_else(|| panic!("the index names the probe: {refs}"));
    assert_eq!((&hit["plugin"], &hit["field"], &hit["current"]), (&json!("fixture"), &json!("subject"), &json!(true)));
    assert_eq!((&hit["first_version"], &hit["last_version"]), (&json!(1), &json!(2)), "{hit}");
    let (status, _) =
        app.call("GET", &format!("/api/registry/persons/{}/records", home.adult.0), Some("firm_manager"), None).await;
    assert_eq!(status, 403, "data requests are the district's");
    let (_, moved) = app.call("GET", &format!("{PROBES}/{id}/history"), None, None).await;
    let places: Vec<Value> = moved["events"].as_array().into_iter().flatten().map(|e| e["place"].clone()).collect();
    assert_eq!(places, [json!({"estate": estate}), json!({"estate": other_estate})], "{moved}");
    let verified = app.engine.store().verify_audit().await.expect("verify");
    assert!(verified.is_ok(), "{verified:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn need_to_know_guards_places_and_references_on_sqlite() {
    story(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn need_to_know_guards_places_and_references_on_postgres() {
    story(Backend::Postgres).await;
}
