//! The dog-licensing story through the HTTP API, on SQLite and on PostgreSQL: registration,
//! refusals that write nothing, the licence workflow, deadlines (idempotent, also with two host
//! instances), and enablement switched off for one estate.

use serde_json::{Value, json};

use jiayuan_host::scheduler;
use jiayuan_store::RecordFilter;
use jiayuan_test_support::fixtures;

use crate::support::{App, Backend, Household, TestDb, date, start_engine, violations};

const DOGS: &str = "/api/items/dog-licensing/records";

fn dog(h: &Household, seed: u64, breed: &str) -> Value {
    json!({
        "kind": "dog",
        "estate_id": h.estate.0,
        "data": {
            "name": "旺财", "breed": breed, "sex": "male", "colour": "黄", "sterilised": true,
            "chip_no": fixtures::microchip_no(seed), "owner_id": h.adult.0, "house_id": h.house.0
        }
    })
}

async fn record_count(app: &App) -> u64 {
    let filter = RecordFilter { plugin: "dog-licensing".into(), limit: 1000, ..RecordFilter::default() };
    app.engine.store().count_records(&filter).await.expect("count")
}

async fn alerts(app: &App) -> Vec<Value> {
    let (status, body) = app.call("GET", "/api/alerts?plugin=dog-licensing&limit=500", None, None).await;
    assert_eq!(status, 200, "{body}");
    body["alerts"].as_array().cloned().unwrap_or_default()
}

fn alerts_for(all: &[Value], record: i64, rule: &str) -> usize {
    all.iter().filter(|a| a["record_id"] == record && a["rule"] == rule).count()
}

async fn create(app: &App, body: &Value) -> Value {
    let (status, res) = app.call("POST", DOGS, Some("firm_staff"), Some(body)).await;
    assert_eq!(status, 201, "create {body} → {res}");
    res
}

async fn fire(app: &App, id: i64, transition: &str, actor: &str, input: Value) -> (u16, Value) {
    let (status, body) = app
        .call("POST", &format!("{DOGS}/{id}/transitions/{transition}"), Some(actor), Some(&json!({ "input": input })))
        .await;
    (status.as_u16(), body)
}

/// Registers a dog with a vaccination due on `next_due` and an approved licence; returns
/// (dog id, licence id).
async fn licensed_dog(app: &App, h: &Household, seed: u64, next_due: &str) -> (i64, i64) {
    let dog = create(app, &dog(h, seed, "柯基犬")).await;
    let dog_id = dog["id"].as_i64().expect("id");
    create(
        app,
        &json!({"kind": "vaccination", "estate_id": h.estate.0, "parent_id": dog_id,
                "data": {"vaccinated_on": "2026-11-02", "clinic": "罗湖区动物防疫站", "batch": "RB2026", "next_due": next_due}}),
    )
    .await;
    let licence =
        create(app, &json!({"kind": "licence", "estate_id": h.estate.0, "parent_id": dog_id, "data": {}})).await;
    let id = licence["id"].as_i64().expect("id");
    assert_eq!(licence["state"], "applying");
    let (s, b) = fire(app, id, "submit", "firm_staff", json!({})).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = fire(app, id, "approve", "agency_officer", json!({})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["state"], "valid");
    assert_eq!(b["data"]["valid_until"], next_due, "licence validity follows the vaccination");
    (dog_id, id)
}

async fn story(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else { return };
    let app = App::start(db).await;
    let a = app.households(0);
    let b = app.households(1);
    let (ha, hb) = (a[0], b[0]);

    // The host is healthy and serves the plugin's manifest.
    let (status, health) = app.call("GET", "/api/health", None, None).await;
    assert_eq!((status.as_u16(), health["status"].as_str()), (200, Some("ok")), "{health}");
    let (status, manifest) = app.call("GET", "/api/plugins/dog-licensing/manifest", None, None).await;
    assert_eq!(status, 200);
    assert!(manifest["record_kinds"].as_array().is_some_and(|k| k.len() >= 4), "{manifest}");

    // A dog registers, reads back, and has one event.
    let first = create(&app, &dog(&ha, 1, "柯基犬")).await;
    assert_eq!(first["state"], "kept");
    let id = first["id"].as_i64().expect("id");
    let (status, got) = app.call("GET", &format!("{DOGS}/{id}"), None, None).await;
    assert_eq!((status.as_u16(), &got["data"]["breed"]), (200, &json!("柯基犬")));
    let (_, history) = app.call("GET", &format!("{DOGS}/{id}/history"), None, None).await;
    assert_eq!(history["events"].as_array().map(Vec::len), Some(1), "{history}");
    assert_eq!(history["events"][0]["action"], "create");

    // Bad input: each refusal names the field and the reason, and writes no record.
    let before = record_count(&app).await;
    let audited_before = app.engine.store().audit_events(0, 0).await.expect("audit").len();
    let (status, body) = app.call("POST", DOGS, Some("firm_staff"), Some(&dog(&ha, 2, "西藏獒犬"))).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(violations(&body), vec!["breed:banned_breed"]);
    assert!(body["error"]["violations"][0]["message_zh"].as_str().is_some_and(|m| m.contains("西藏獒犬")), "{body}");
    let critical = alerts(&app).await;
    assert!(
        critical.iter().any(|a| a["severity"] == "critical" && a["record_id"].is_null()),
        "a banned breed raises a critical alert for 城管: {critical:?}"
    );

    let mut extra = dog(&ha, 3, "柯基犬");
    extra["data"]["colour_code"] = json!("Y1");
    let (status, body) = app.call("POST", DOGS, Some("firm_staff"), Some(&extra)).await;
    assert_eq!((status.as_u16(), violations(&body)), (422, vec!["colour_code:unknown_field".to_owned()]));

    let (status, body) = app.raw("POST", DOGS, Some("firm_staff"), Some(r#"{"kind": "dog", "estate_id": "#)).await;
    assert_eq!((status.as_u16(), violations(&body)), (400, vec!["body:malformed_json".to_owned()]));
    let (status, body) =
        app.raw("POST", DOGS, Some("firm_staff"), Some(r#"{"kind": 7, "estate_id": 1, "data": {}}"#)).await;
    assert_eq!((status.as_u16(), violations(&body)), (400, vec!["body:wrong_shape".to_owned()]), "wrong type");
    let (status, body) =
        app.raw("POST", DOGS, Some("firm_staff"), Some(r#"{"kind": "dog", "estate_id": 1, "data": {}, "x": 1}"#)).await;
    assert_eq!((status.as_u16(), violations(&body)), (400, vec!["body:wrong_shape".to_owned()]), "unknown field");
    let huge = format!(r#"{{"kind": "dog", "estate_id": 1, "data": {{"name": "{}"}}}}"#, "犬".repeat(1_000_000));
    let (status, body) = app.raw("POST", DOGS, Some("firm_staff"), Some(&huge)).await;
    assert_eq!((status.as_u16(), violations(&body)), (413, vec!["body:too_large".to_owned()]), "oversize body");
    for bad in ["?cursor=bm9wZQ", "?cursor=%%%", "?sort=name", "?limit=0", "?limit=x"] {
        let (status, body) = app.call("GET", &format!("{DOGS}{bad}"), Some("firm_staff"), None).await;
        assert_eq!(status.as_u16(), 400, "{bad}: {body}");
    }

    let (status, body) = app.call("POST", DOGS, Some("firm_staff"), Some(&dog(&a[3], 1, "柯基犬"))).await;
    assert_eq!((status.as_u16(), violations(&body)), (422, vec!["chip_no:chip_duplicate".to_owned()]), "{body}");

    let with_minor = a.iter().skip(4).chain(b.iter().skip(3)).find(|h| h.minor.is_some());
    if let Some(h) = with_minor {
        let mut young = dog(h, 4, "柯基犬");
        young["data"]["owner_id"] = json!(h.minor.map(|m| m.0));
        let (status, body) = app.call("POST", DOGS, Some("firm_staff"), Some(&young)).await;
        assert_eq!((status.as_u16(), violations(&body)), (422, vec!["owner_id:owner_minor".to_owned()]), "{body}");
    }

    // A resident with a wrong GB 11643 check digit is refused by the registry.
    let good = fixtures::resident_id(77, date(1990, 3, 4), true);
    let last = good.chars().last().expect("18 chars");
    let bad = format!("{}{}", &good[..17], if last == '0' { '1' } else { '0' });
    let person = json!({"name": "测试", "doc_kind": "resident_id", "doc_number": bad, "hukou": "shenzhen"});
    let (status, body) = app.call("POST", "/api/registry/persons", None, Some(&person)).await;
    assert_eq!((status.as_u16(), violations(&body)), (422, vec!["doc_number:bad_document".to_owned()]), "{body}");
    assert!(!body.to_string().contains(&bad), "the refused number is not echoed back");
    assert_eq!(record_count(&app).await, before, "no refusal wrote a record");
    let audited = app.engine.store().audit_events(0, 0).await.expect("audit").len();
    assert_eq!(audited, audited_before, "no refusal wrote an audit event");
    let person = json!({"name": "测试", "doc_kind": "resident_id", "doc_number": good, "hukou": "shenzhen"});
    let (status, body) = app.call("POST", "/api/registry/persons", Some("firm_staff"), Some(&person)).await;
    assert_eq!(status.as_u16(), 201, "{body}");
    let events = app.engine.store().audit_events(0, 0).await.expect("audit");
    let registered = events.last().expect("an event");
    assert_eq!(
        (registered.action.as_str(), registered.actor.as_str()),
        ("registry.person.create", "staff"),
        "{registered:?}"
    );
    assert!(!registered.detail_json.contains(&good), "the audit event holds no identity number");

    // The licence workflow: a transition the workflow forbids, a role that may not fire one.
    let licence =
        create(&app, &json!({"kind": "licence", "estate_id": ha.estate.0, "parent_id": id, "data": {}})).await;
    let lid = licence["id"].as_i64().expect("id");
    let (s, body) = fire(&app, lid, "approve", "agency_officer", json!({})).await;
    assert_eq!((s, violations(&body)), (409, vec!["transition:not_allowed".to_owned()]), "{body}");
    let (s, _) = fire(&app, lid, "submit", "firm_staff", json!({})).await;
    assert_eq!(s, 200);
    let (s, body) = fire(&app, lid, "approve", "firm_staff", json!({})).await;
    assert_eq!(s, 403, "firms never issue licences: {body}");
    let (s, body) = fire(&app, lid, "approve", "agency_officer", json!({})).await;
    assert_eq!(
        (s, violations(&body)),
        (422, vec!["vaccination:vaccination_required".to_owned()]),
        "no vaccination yet: {body}"
    );

    // Two licensed dogs, one in each estate, valid until 2027-01-20.
    let (_, licence_a) = licensed_dog(&app, &a[1], 10, "2027-01-20").await;
    let (_, licence_b) = licensed_dog(&app, &hb, 11, "2027-01-20").await;

    // T−29 days: both licences are marked expiring and get the T−30 reminder, once.
    app.clock.set(date(2026, 12, 22).start_in_shanghai().add_hours(9));
    let report = scheduler::tick(&app.engine).await;
    assert!(report.errors.is_empty(), "{report:?}");
    assert_eq!(report.transitions_fired, 2, "{report:?}");
    let again = scheduler::tick(&app.engine).await;
    assert_eq!((again.transitions_fired, again.alerts_raised), (0, 0), "a second tick changes nothing: {again:?}");
    let all = alerts(&app).await;
    for l in [licence_a, licence_b] {
        assert_eq!(alerts_for(&all, l, "licence_expiry_reminder_t30"), 1, "{all:?}");
        let (_, rec) = app.call("GET", &format!("{DOGS}/{l}"), None, None).await;
        assert_eq!(rec["state"], "expiring_soon");
    }

    // Dog licensing switched off for estate A: new work is refused there, naming item and estate;
    // its records stay readable; estate B goes on.
    let off = json!({"scope": "estate", "code": ha.estate.0.to_string(), "enabled": false, "reason": "整改期间暂停"});
    let (status, body) = app.call("PUT", "/api/enablement/dog-licensing", Some("firm_staff"), Some(&off)).await;
    assert_eq!(status, 403, "only the district may switch items: {body}");
    let (status, body) = app.call("PUT", "/api/enablement/dog-licensing", None, Some(&off)).await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = app.call("POST", DOGS, Some("firm_staff"), Some(&dog(&a[2], 20, "柯基犬"))).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "item_disabled");
    let msg = body["error"]["message_en"].as_str().unwrap_or_default();
    assert!(msg.contains("dog-licensing") && msg.contains(&format!("estate {}", ha.estate.0)), "{msg}");
    let (status, _) = app.call("GET", &format!("{DOGS}/{id}"), None, None).await;
    assert_eq!(status, 200, "old records stay readable");
    let (status, list) = app.call("GET", &format!("{DOGS}?estate_id={}&kind=dog", ha.estate.0), None, None).await;
    assert_eq!((status.as_u16(), list["records"].as_array().map(Vec::is_empty)), (200, Some(false)));
    let (s, _) = fire(&app, licence_a, "cancel", "firm_staff", json!({"reason": "x"})).await;
    assert_eq!(s, 409, "transitions are new work too");
    create(&app, &dog(&b[1], 21, "柯基犬")).await;

    // Past valid_until: B's licence expires; A's schedules stopped, so it is untouched.
    let alerts_before = alerts(&app).await;
    app.clock.set(date(2027, 1, 21).start_in_shanghai().add_hours(9));
    let report = scheduler::tick(&app.engine).await;
    assert!(report.errors.is_empty(), "{report:?}");
    assert!(report.skipped_disabled > 0, "{report:?}");
    let (_, rec_a) = app.call("GET", &format!("{DOGS}/{licence_a}"), None, None).await;
    let (_, rec_b) = app.call("GET", &format!("{DOGS}/{licence_b}"), None, None).await;
    assert_eq!((rec_a["state"].as_str(), rec_b["state"].as_str()), (Some("expiring_soon"), Some("expired")));
    let all = alerts(&app).await;
    assert_eq!(alerts_for(&all, licence_a, "licence_expiry_reminder_t7"), 0, "no reminders where the item is off");
    assert_eq!(alerts_for(&all, licence_b, "licence_expiry_reminder_t7"), 1);
    assert!(all.len() > alerts_before.len());

    // Switched back on, estate A works again and its overdue rules catch up.
    let (status, _) = app
        .call("DELETE", &format!("/api/enablement/dog-licensing?scope=estate&code={}", ha.estate.0), None, None)
        .await;
    assert_eq!(status, 204);
    create(&app, &dog(&a[2], 22, "柯基犬")).await;
    scheduler::tick(&app.engine).await;
    let (_, rec_a) = app.call("GET", &format!("{DOGS}/{licence_a}"), None, None).await;
    assert_eq!(rec_a["state"], "expired");

    // Two host instances on one database tick at once: every alert and transition happens once.
    let (_, licence_c) = licensed_dog(&app, &b[2], 30, "2027-03-01").await;
    let second = start_engine(&app.db.url, app.clock.clone()).await;
    app.clock.set(date(2027, 2, 23).start_in_shanghai().add_hours(9));
    let (r1, r2) = tokio::join!(scheduler::tick(&app.engine), scheduler::tick(&second));
    assert!(r1.errors.is_empty() && r2.errors.is_empty(), "{r1:?} {r2:?}");
    assert_eq!(r1.transitions_fired + r2.transitions_fired, 1, "{r1:?} {r2:?}");
    let all = alerts(&app).await;
    assert_eq!(alerts_for(&all, licence_c, "licence_expiry_reminder_t30"), 1, "{all:?}");
    assert_eq!(alerts_for(&all, licence_c, "licence_expiry_reminder_t7"), 1, "{all:?}");

    // Paging through every dog record, newest change first, sees each record once.
    let total = app
        .engine
        .store()
        .count_records(&RecordFilter { plugin: "dog-licensing".into(), ..RecordFilter::default() })
        .await
        .expect("count");
    let mut seen = std::collections::HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("{DOGS}?sort=-updated_at&limit=7");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = app.call("GET", &path, None, None).await;
        assert_eq!(status.as_u16(), 200, "{page}");
        for r in page["records"].as_array().expect("records") {
            assert!(seen.insert(r["id"].as_i64().expect("id")), "a record appears twice: {r}");
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len() as u64, total, "every record once");

    // Every change above was audited in its transaction, in one unbroken chain.
    let store = app.engine.store();
    let report = store.verify_audit().await.expect("verify the audit log");
    assert!(report.is_ok(), "{report:?}");
    let events = store.audit_events(0, 0).await.expect("audit events");
    assert_eq!(report.events, events.len() as u64);
    let has = |action: &str, actor: Option<&str>| {
        events.iter().any(|e| e.action == action && actor.is_none_or(|a| e.actor == a))
    };
    for action in ["record.create", "record.transition:submit", "record.transition:approve"] {
        assert!(has(action, None), "{action} audited");
    }
    assert!(has("enablement.set", None) && has("enablement.clear", None), "enablement changes audited");
    assert!(
        events.iter().any(|e| e.actor == "system:scheduler" && e.action.starts_with("record.transition:")),
        "system transitions audited"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dog_licensing_story_on_sqlite() {
    story(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dog_licensing_story_on_postgres() {
    story(Backend::Postgres).await;
}

/// A dog whose owner moves to another estate moves with its history and its children
/// (vaccinations, licence); the new house must be in the new estate.
async fn relocation(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else { return };
    let app = App::start(db).await;
    let here = app.households(0)[0];
    let there = app.households(3)[0];
    let (dog_id, licence) = licensed_dog(&app, &here, 9_101, "2027-11-01").await;
    let relocate = format!("{DOGS}/{dog_id}/transitions/relocate");
    let to = json!({"estate_id": there.estate.0});
    let wrong = json!({"input": {"house_id": here.house.0}, "move_to": to});
    let (status, res) = app.call("POST", &relocate, None, Some(&wrong)).await;
    assert_eq!((status.as_u16(), violations(&res)), (422, vec!["house_id:not_found".to_owned()]), "{res}");
    let (status, res) = app.call("POST", &relocate, None, Some(&json!({"input": {}}))).await;
    assert_eq!((status.as_u16(), violations(&res)), (422, vec!["move_to:required".to_owned()]), "{res}");
    let right = json!({"input": {"house_id": there.house.0}, "move_to": to});
    let (status, moved) = app.call("POST", &relocate, None, Some(&right)).await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(
        (&moved["estate_id"], &moved["state"], &moved["data"]["house_id"]),
        (&json!(there.estate.0), &json!("kept"), &json!(there.house.0))
    );
    let (_, licence_now) = app.call("GET", &format!("{DOGS}/{licence}"), None, None).await;
    assert_eq!(
        (&licence_now["estate_id"], &licence_now["state"]),
        (&json!(there.estate.0), &json!("valid")),
        "{licence_now}"
    );
    let (_, history) = app.call("GET", &format!("{DOGS}/{licence}/history"), None, None).await;
    let last = history["events"].as_array().and_then(|e| e.last()).cloned().unwrap_or_default();
    assert_eq!((&last["action"], &last["place"]), (&json!("move_with_parent"), &json!({"estate": there.estate.0})));
    let (_, history) = app.call("GET", &format!("{DOGS}/{dog_id}/history"), None, None).await;
    assert_eq!(history["events"].as_array().map(Vec::len), Some(2), "its history comes along: {history}");
    // A kept dog is counted where it lives now.
    let (_, page) = app.call("GET", &format!("{DOGS}?kind=dog&estate_id={}", there.estate.0), None, None).await;
    assert!(page["records"].as_array().is_some_and(|r| r.iter().any(|d| d["id"] == dog_id)), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dog_relocates_with_its_children_on_sqlite() {
    relocation(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dog_relocates_with_its_children_on_postgres() {
    relocation(Backend::Postgres).await;
}
