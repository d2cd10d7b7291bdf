//! The privacy canary: identity numbers and phones seeded through the API (valid ones that
//! register, invalid ones that are refused, one inside a dog incident's personal description, and
//! some inside malformed requests) never appear in any response body — registry exports of every
//! kind and the item's dog and incident record exports in XLSX (decompressed) and CSV, and import
//! reports, included — nor in any log line
//! captured at trace level, while their masked forms do appear where data is returned.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Value, json};
use tracing::Dispatch;
use tracing_subscriber::fmt::MakeWriter;

use jiayuan_domain::{Sensitivity, mask};
use jiayuan_test_support::fixtures;

use crate::support::{App, Backend, TestDb, date, xlsx_text};

const RECORDS: &str = "/api/items/dog-licensing/records";

/// A log sink: every formatted line of the test's subscriber lands in one shared buffer.
#[derive(Debug, Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// The app plus every response body it answered, as text, with the request that asked.
struct Recorder {
    app: App,
    bodies: Vec<Answer>,
}

/// One response body (`body`), and the request it answered (`asked`, for failure messages only:
/// a request path may carry a canary on purpose).
struct Answer {
    asked: String,
    body: String,
}

impl Recorder {
    async fn call(&mut self, method: &str, path: &str, actor: Option<&str>, body: Option<&Value>) -> (u16, Value) {
        let (status, res) = self.app.call(method, path, actor, body).await;
        self.bodies.push(Answer { asked: format!("{method} {path} → {status}"), body: res.to_string() });
        (status.as_u16(), res)
    }

    /// A request with a raw body whose answer may be a file: the body as text (an XLSX
    /// workbook's parts decompressed), recorded like any other.
    async fn file(&mut self, method: &str, path: &str, actor: &str, body: Vec<u8>) -> (u16, String) {
        let (status, _, bytes) = self.app.bytes(method, path, actor, Some("text/csv"), body).await;
        let text =
            if bytes.starts_with(b"PK") { xlsx_text(&bytes) } else { String::from_utf8_lossy(&bytes).into_owned() };
        self.bodies.push(Answer { asked: format!("{method} {path} → {status}"), body: text.clone() });
        (status.as_u16(), text)
    }

    async fn raw(&mut self, method: &str, path: &str, actor: &str, body: &str) -> (u16, Value) {
        let (status, res) = self.app.raw(method, path, Some(actor), Some(body)).await;
        self.bodies.push(Answer { asked: format!("{method} {path} → {status}"), body: res.to_string() });
        (status.as_u16(), res)
    }
}

/// What the story seeded, and the masked forms that must show up.
struct Seeded {
    canaries: Vec<String>,
    masked: Vec<String>,
}

/// `id` with its check character replaced by a wrong one.
fn wrong_check(id: &str) -> String {
    let last = id.chars().last().expect("18 characters");
    format!("{}{}", &id[..17], if last == '0' { '1' } else { '0' })
}

async fn story(backend: Backend) -> Option<(Seeded, Vec<Answer>)> {
    let db = TestDb::new(backend).await?;
    let app = App::start(db).await;
    let h = app.households(0)[0];
    let firms = app.engine.store().firms().await.expect("firms");
    let mut r = Recorder { app, bodies: Vec::new() };
    let mut canaries = Vec::new();
    let mut masked = Vec::new();

    // Residents registered with valid synthetic numbers: the answer shows them masked.
    let mut persons = Vec::new();
    for (seed, birth, male) in [(90_001, date(1985, 6, 7), true), (90_002, date(1992, 11, 23), false)] {
        let id = fixtures::resident_id(seed, birth, male);
        let phone = fixtures::phone(seed);
        let person = json!({"name": "测试居民", "doc_kind": "resident_id", "doc_number": id, "hukou": "shenzhen",
                            "phone": phone, "house_id": h.house.0});
        let (status, body) = r.call("POST", "/api/registry/persons", None, Some(&person)).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["doc_number"].as_str(), Some(mask(&id, Sensitivity::Sensitive).as_str()), "{body}");
        assert_eq!(body["phone"].as_str(), Some(mask(&phone, Sensitivity::Personal).as_str()), "{body}");
        masked.push(mask(&id, Sensitivity::Sensitive));
        persons.push(body["id"].as_i64().expect("person id"));
        // Registering the same document again is refused without naming it.
        let (status, body) = r.call("POST", "/api/registry/persons", None, Some(&person)).await;
        assert_eq!(status, 409, "{body}");
        canaries.extend([id, phone]);
    }

    // Invalid numbers are refused, and the refusal does not echo them.
    let valid = fixtures::resident_id(90_003, date(1979, 1, 30), true);
    let bad_id = wrong_check(&valid);
    let bad_phone = format!("{}9", fixtures::phone(90_003));
    let person = json!({"name": "测试居民", "doc_kind": "resident_id", "doc_number": bad_id, "hukou": "shenzhen",
                        "phone": bad_phone});
    let (status, body) = r.call("POST", "/api/registry/persons", None, Some(&person)).await;
    assert_eq!(status, 422, "{body}");
    canaries.extend([valid, bad_id, bad_phone]);

    // Registry ledgers: every kind exported in both formats (masked), and an import whose rows
    // carry identity numbers, registered, malformed and repeated: the report masks them all.
    for kind in jiayuan_host::ledger::ImportKind::ALL {
        for format in ["xlsx", "csv"] {
            let path = format!("/api/registry/exports/{}?format={format}&purpose=reconciliation", kind.as_str());
            let (status, text) = r.file("GET", &path, "district_admin", Vec::new()).await;
            assert_eq!(status, 200, "{path}: {text}");
            if kind == jiayuan_host::ledger::ImportKind::Persons && format == "csv" {
                let shown = mask(&canaries[0], Sensitivity::Personal);
                assert!(text.contains(&shown), "the persons export shows {shown}: {text}");
            }
        }
    }
    let repeated = fixtures::resident_id(90_006, date(1988, 8, 8), true);
    let wrong = wrong_check(&repeated);
    let csv = format!(
        "姓名,证件号码,户籍\n测试居民,{},shenzhen\n测试居民,{wrong},shenzhen\n测试居民,{repeated},shenzhen\n\
         测试居民,{repeated},shenzhen\n",
        canaries[0]
    );
    let (status, text) = r.file("POST", "/api/registry/imports/persons", "district_admin", csv.into_bytes()).await;
    assert_eq!(status, 422, "problems, nothing written: {text}");
    let report: Value = serde_json::from_str(&text).expect("the report is JSON");
    assert_eq!((report["refused"].as_u64(), report["committed"].as_bool()), (Some(2), Some(false)), "{report}");
    masked.push(mask(&repeated, Sensitivity::Personal));
    canaries.extend([repeated, wrong]);

    // A dog of a registered resident: the owner is a reference and stays a number.
    let chip = fixtures::microchip_no(90_001);
    let dog = json!({"kind": "dog", "estate_id": h.estate.0, "data": {
        "name": "旺财", "breed": "柯基犬", "sex": "male", "colour": "黄", "sterilised": true,
        "chip_no": chip, "owner_id": persons[0], "house_id": h.house.0}});
    let (status, body) = r.call("POST", RECORDS, Some("firm_staff"), Some(&dog)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["data"]["owner_id"], json!(persons[0]), "references are not masked: {body}");
    let dog_id = body["id"].as_i64().expect("dog id");

    // A dog bite whose personal description names the victim's phone.
    let incident_phone = fixtures::phone(90_004);
    let description = format!("邻居被犬咬伤，联系电话{incident_phone}，已送医");
    let incident = json!({"kind": "incident", "estate_id": h.estate.0, "data": {
        "kind": "bite", "occurred_at": "2026-11-30T08:30:00+08:00", "location": "3栋楼下",
        "dog": dog_id, "description": description}});
    let masked_description = mask(&description, Sensitivity::Personal);
    let (status, body) = r.call("POST", RECORDS, Some("firm_staff"), Some(&incident)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["data"]["description"].as_str(), Some(masked_description.as_str()), "{body}");
    let incident_id = body["id"].as_i64().expect("incident id");
    canaries.push(incident_phone);
    masked.push(masked_description.clone());

    // Reads and a transition: each answer masks the description.
    let one = format!("{RECORDS}/{incident_id}");
    let (status, body) = r.call("GET", &one, None, None).await;
    assert_eq!((status, body["data"]["description"].as_str()), (200, Some(masked_description.as_str())));
    let (status, body) = r.call("GET", &format!("{RECORDS}?kind=incident"), None, None).await;
    assert_eq!(status, 200, "{body}");
    let listed = body["records"].as_array().and_then(|l| l.iter().find(|rec| rec["id"] == incident_id)).cloned();
    assert_eq!(listed.map(|rec| rec["data"]["description"].clone()), Some(json!(masked_description)));
    let handle = json!({"input": {"action": "persuaded", "handling_note": "已劝导犬主"}});
    let (status, body) = r.call("POST", &format!("{one}/transitions/handle"), Some("firm_staff"), Some(&handle)).await;
    assert_eq!((status, body["data"]["description"].as_str()), (200, Some(masked_description.as_str())), "{body}");
    let (status, body) = r.call("GET", &format!("{one}/history"), None, None).await;
    assert_eq!(status, 200, "{body}");
    let events = body["events"].as_array().cloned().unwrap_or_default();
    assert_eq!(events.len(), 2, "{body}");
    for e in &events {
        assert_eq!(e["data"]["description"].as_str(), Some(masked_description.as_str()), "{e}");
    }
    r.call("GET", &format!("{RECORDS}/{dog_id}/history"), None, None).await;

    // Record exports of the item, in both formats: the dog, and the incident whose personal
    // description is masked in the file as in the API.
    for kind in ["dog", "incident"] {
        for format in ["xlsx", "csv"] {
            let path = format!("/api/items/dog-licensing/exports/{kind}?format={format}&purpose=reconciliation");
            let (status, text) = r.file("GET", &path, "district_admin", Vec::new()).await;
            assert_eq!(status, 200, "{path}: {text}");
            if kind == "incident" && format == "csv" {
                assert!(text.contains(&masked_description), "the incident export shows {masked_description}: {text}");
            }
            if kind == "dog" && format == "csv" {
                assert!(text.lines().any(|l| l.starts_with(&format!("{dog_id},"))), "the dog is exported: {text}");
            }
        }
    }
    r.call("GET", "/api/alerts?plugin=dog-licensing", None, None).await;

    // Firms: the contact phone and the legal representative are masked.
    let (status, body) = r.call("GET", "/api/registry/firms", None, None).await;
    assert_eq!(status, 200, "{body}");
    for f in &firms {
        let shown = body["firms"].as_array().and_then(|l| l.iter().find(|x| x["id"] == json!(f.id))).cloned();
        let shown = shown.expect("every firm is listed");
        if let Some(p) = &f.contact_phone {
            assert_eq!(shown["contact_phone"].as_str(), Some(mask(p, Sensitivity::Personal).as_str()), "{shown}");
            canaries.push(p.clone());
            masked.push(mask(p, Sensitivity::Personal));
        }
        if let Some(n) = &f.legal_representative {
            assert_eq!(shown["legal_representative"].as_str(), Some(mask(n, Sensitivity::Personal).as_str()));
        }
    }

    // Malformed and ill-typed requests carrying canaries: each is a 4xx that does not echo them.
    let phone = fixtures::phone(90_005);
    let id = fixtures::resident_id(90_005, date(1990, 2, 28), false);
    let est = h.estate.0;
    let staff = "firm_staff";
    let attempts: Vec<(&str, String, String)> = vec![
        (
            "POST",
            RECORDS.into(),
            format!(r#"{{"kind": "incident", "estate_id": {est}, "data": {{"description": "{phone}"#),
        ),
        ("POST", RECORDS.into(), format!(r#"{{"kind": "incident", "estate_id": "{id}", "data": {{}}}}"#)),
        ("POST", RECORDS.into(), format!(r#"{{"kind": "incident", "estate_id": {est}, "data": {{"{phone}": 1}}}}"#)),
        (
            "POST",
            RECORDS.into(),
            format!(
                r#"{{"kind": "incident", "estate_id": {est}, "data": {{"kind": "{phone}", "occurred_at": "2026-11-30T08:30:00+08:00", "location": "x", "description": "x"}}}}"#
            ),
        ),
        ("POST", RECORDS.into(), format!(r#"{{"kind": "{id}", "estate_id": {est}, "data": {{}}}}"#)),
        ("POST", RECORDS.into(), format!(r#"{{"kind": "incident", "estate_id": {est}, "{phone}": 1, "data": {{}}}}"#)),
        (
            "POST",
            "/api/registry/persons".into(),
            format!(r#"{{"name": "x", "doc_kind": "{id}", "doc_number": "{id}", "hukou": "shenzhen"}}"#),
        ),
        (
            "POST",
            "/api/registry/persons".into(),
            format!(
                r#"{{"name": "x", "doc_kind": "resident_id", "doc_number": {id}, "hukou": "shenzhen", "phone": {phone}}}"#
            ),
        ),
        (
            "POST",
            "/api/registry/persons".into(),
            format!(
                r#"{{"name": "x", "doc_kind": "resident_id", "doc_number": "{id}", "hukou": "shenzhen", "house_id": "{phone}"}}"#
            ),
        ),
        ("POST", format!("{one}/transitions/close"), format!(r#"{{"input": {{}}, "expected_version": "{id}"}}"#)),
        ("POST", format!("{one}/transitions/close"), format!(r#"{{"input": {{"{phone}": "x"}}}}"#)),
    ];
    for (method, path, body) in &attempts {
        // `close` is for the community, so that its input is checked (and refused).
        let actor = if path.ends_with("/close") { "community_worker" } else { staff };
        let (status, res) = r.raw(method, path, actor, body).await;
        assert!((400..500).contains(&status), "{method} {path} {body} → {status} {res}");
    }
    for path in [
        format!("{RECORDS}/{phone}abc"),
        format!("{RECORDS}/{phone}"),
        format!("{RECORDS}/{phone}/history"),
        format!("{RECORDS}?estate_id={id}X"),
        format!("{RECORDS}?kind=incident&x{phone}=1"),
        format!("/api/enablement/dog-licensing/estates/{phone}"),
    ] {
        let (status, res) = r.call("GET", &path, None, None).await;
        assert!((400..500).contains(&status), "GET {path} → {status} {res}");
    }
    let (status, res) = r.call("GET", RECORDS, Some(&format!("token:{phone}")), None).await;
    assert_eq!(status, 401, "an unknown token: {res}");
    let login = json!({"login": "admin", "password": phone});
    let (status, res) = r.call("POST", "/api/auth/login", Some("anonymous"), Some(&login)).await;
    assert_eq!(status, 401, "a wrong password: {res}");
    // A filter on a field that is no declared key reads like an unknown field (and echoes nothing).
    let (status, res) = r.call("GET", &format!("{RECORDS}?key=description:{phone}"), None, None).await;
    assert_eq!(status, 422, "{res}");
    canaries.extend([phone, id]);

    Some((Seeded { canaries, masked }, r.bodies))
}

/// Runs the story on a runtime whose every thread logs, at trace level, into `log`.
fn run_captured(log: &Captured, backend: Backend) -> Option<(Seeded, Vec<Answer>)> {
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(log.clone())
        .finish();
    let dispatch = Dispatch::new(subscriber);
    // tracing caches, per call site, whether anyone listens. While only one dispatcher exists,
    // a call site first reached on another test's thread (no subscriber there) is cached as
    // "never", and this test would then miss it. A second, idle dispatcher makes tracing ask
    // every live dispatcher instead; rebuilding the cache covers call sites registered before.
    let _second = Dispatch::new(tracing_subscriber::registry());
    tracing::callsite::rebuild_interest_cache();
    let for_threads = dispatch.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        // Each runtime thread (workers and blocking pool) keeps the test's subscriber as its
        // default for the rest of its life; the runtime and its threads end with this test.
        .on_thread_start(move || std::mem::forget(tracing::dispatcher::set_default(&for_threads)))
        .build()
        .expect("runtime");
    let out = tracing::dispatcher::with_default(&dispatch, || rt.block_on(story(backend)));
    rt.shutdown_background();
    out
}

/// `store_traces`: the SQLite group-commit writer logs at trace level, so there the capture must
/// show trace lines (proof the subscriber listens at trace level); PostgreSQL writes have none.
fn check(log: &Captured, seeded: &Seeded, bodies: &[Answer], store_traces: bool) {
    let log = log.text();
    // Every request's debug line was captured, so the capture covered the whole story.
    let request_lines = log.lines().filter(|l| l.contains("DEBUG jiayuan_server: request")).count();
    assert!(request_lines >= bodies.len(), "{request_lines} request lines for {} requests:\n{log}", bodies.len());
    assert!(!store_traces || log.contains("TRACE jiayuan_store"), "trace-level events are captured:\n{log}");
    let all = bodies.iter().map(|a| a.body.as_str()).collect::<Vec<_>>().join("\n");
    for canary in &seeded.canaries {
        if let Some(line) = log.lines().find(|l| l.contains(canary.as_str())) {
            panic!("canary {canary} in a log line: {line}");
        }
        if let Some(a) = bodies.iter().find(|a| a.body.contains(canary.as_str())) {
            panic!("canary {canary} in a response body: {} answered {}", a.asked, a.body);
        }
    }
    for m in &seeded.masked {
        assert!(all.contains(m.as_str()), "the masked form {m} is shown where data is returned");
    }
}

#[test]
fn canaries_never_reach_logs_or_bodies_on_sqlite() {
    let log = Captured::default();
    let (seeded, bodies) = run_captured(&log, Backend::Sqlite).expect("SQLite needs no server");
    assert!(seeded.canaries.len() >= 10, "the story seeded its canaries");
    check(&log, &seeded, &bodies, true);
}

#[test]
fn canaries_never_reach_logs_or_bodies_on_postgres() {
    let log = Captured::default();
    let Some((seeded, bodies)) = run_captured(&log, Backend::Postgres) else {
        return; // TestDb::new printed why (JIAYUAN_TEST_PG_URL unset).
    };
    assert!(seeded.canaries.len() >= 10, "the story seeded its canaries");
    check(&log, &seeded, &bodies, false);
}
