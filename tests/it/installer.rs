//! 安装 the installer's story: a FRESH database (no demo seeding) set up with nothing but the CLI's
//! code paths and the API — the first district admin as `jiayuan users add` makes it, then the
//! registry imported ledger by ledger (divisions, firms, estates, assignments, buildings,
//! houses) through `POST /api/registry/imports/{kind}`, a firm's accounts, the firm manager's
//! residents (with their residence) and leases, and firm staff registering a dog for one of them.
//!
//! Also here: a firm's import naming another firm's resident neither changes nor reveals them,
//! and an XLSX export of estates imports again unchanged.

use std::collections::HashSet;
use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use clap::Parser;
use serde_json::{Value, json};

use jiayuan_domain::{DivisionLevel, Sensitivity, mask};
use jiayuan_host::clock::{HostClock, ManualClock};
use jiayuan_host::engine::Engine;
use jiayuan_test_support::fixtures;

use crate::support::{Backend, TestDb, date, fast_auth, request_bytes, start_engine, start_time, test_settings};

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// `jiayuan users …` as the binary parses it.
#[derive(Debug, Parser)]
struct UsersCli {
    #[command(subcommand)]
    command: jiayuan_cli::users::UsersCommand,
}

/// A registry set up by [`install`].
struct Installed {
    engine: Arc<Engine>,
    router: Router,
    _db: TestDb,
    admin: String,
    manager: String,
    staff: String,
    firm1: i64,
    /// The estate codes: the first two served by firm 1, the third by firm 2.
    estates: [&'static str; 3],
}

const ESTATES: [&str; 3] = ["IN-001", "IN-002", "IN-003"];
const ROOMS_PER_BUILDING: u32 = 50;

/// One resident of the residents file.
struct Resident {
    name: String,
    id: String,
    phone: String,
    estate: &'static str,
    building: &'static str,
    room: String,
    relation: &'static str,
    adult: bool,
}

impl Installed {
    /// Uploads `file` as a ledger of `kind` with `token`: the status and the report.
    async fn import(&self, token: &str, kind: &str, query: &str, content_type: &str, file: Vec<u8>) -> (u16, Value) {
        let path = format!("/api/registry/imports/{kind}{query}");
        let (status, _, body) = request_bytes(&self.router, "POST", &path, Some(token), Some(content_type), file).await;
        (status.as_u16(), serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// Imports a CSV and checks it applied without problems; the report.
    async fn import_ok(&self, token: &str, kind: &str, csv: &str) -> Value {
        let (status, report) = self.import(token, kind, "", "text/csv", csv.as_bytes().to_vec()).await;
        assert_eq!(status, 200, "import {kind}: {report}");
        assert_eq!((report["refused"].as_u64(), report["committed"].as_bool()), (Some(0), Some(true)), "{report}");
        report
    }

    async fn call(&self, token: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let ct = body.map(|_| "application/json");
        let (status, _, res) = request_bytes(&self.router, method, path, Some(token), ct, bytes).await;
        (status.as_u16(), serde_json::from_slice(&res).unwrap_or(Value::Null))
    }

    /// The estate id of a code, as the admin reads it.
    async fn estate_id(&self, code: &str) -> i64 {
        let (status, body) = self.call(&self.admin, "GET", "/api/registry/estates", None).await;
        assert_eq!(status, 200, "{body}");
        let found = body["estates"].as_array().and_then(|l| l.iter().find(|e| e["code"] == code)).cloned();
        found.and_then(|e| e["id"].as_i64()).unwrap_or_else(|| panic!("estate {code} is listed: {body}"))
    }

    /// The person with this identity number, as the admin sees them (masked).
    async fn person(&self, id: &str) -> Value {
        let (status, body) = self
            .call(&self.admin, "GET", &format!("/api/registry/persons?doc_kind=resident_id&doc_number={id}"), None)
            .await;
        assert_eq!(status, 200, "{body}");
        let persons = body["persons"].as_array().cloned().unwrap_or_default();
        assert_eq!(persons.len(), 1, "one person with the number: {body}");
        persons[0].clone()
    }
}

/// A unique valid identity number per resident (seeds skip any collision).
fn identity(seed: &mut u64, birth: jiayuan_domain::Date, male: bool, seen: &mut HashSet<String>) -> String {
    loop {
        *seed += 1;
        let id = fixtures::resident_id(*seed, birth, male);
        if seen.insert(id.clone()) {
            return id;
        }
    }
}

/// `n` residents of firm 1's two estates: the first of each house is its owner (an adult); some
/// later ones are children.
fn residents(n: u32, seen: &mut HashSet<String>) -> Vec<Resident> {
    let mut seed = 50_000;
    let houses: Vec<(&'static str, &'static str, u32)> = ESTATES[..2]
        .iter()
        .flat_map(|e| ["1栋", "2栋"].into_iter().map(move |b| (*e, b)))
        .flat_map(|(e, b)| (0..ROOMS_PER_BUILDING).map(move |r| (e, b, r)))
        .collect();
    (0..n)
        .map(|i| {
            let (estate, building, r) = houses[i as usize % houses.len()];
            let first_in_house = (i as usize) < houses.len();
            let child = !first_in_house && i % 5 == 0;
            let birth = if child {
                date(2014, 1 + i % 12, 1 + i % 28)
            } else {
                date(1950 + (i % 50) as i32, 1 + i % 12, 1 + i % 28)
            };
            let male = i % 2 == 0;
            Resident {
                name: fixtures::chinese_name(u64::from(i), male),
                id: identity(&mut seed, birth, male, seen),
                phone: fixtures::phone(60_000 + u64::from(i)),
                estate,
                building,
                room: room(r),
                relation: if first_in_house {
                    "业主"
                } else if child {
                    "子女"
                } else {
                    "配偶"
                },
                adult: !child,
            }
        })
        .collect()
}

/// The room of the `r`-th house of a building: 101…110, 201…210, …
fn room(r: u32) -> String {
    format!("{}{:02}", r / 10 + 1, r % 10 + 1)
}

const PERSONS_HEADER: &str = "姓名,证件类型,证件号码,户籍,手机号码,小区编码,楼栋,房号,与户主关系,入住日期,主要居所\n";

fn persons_csv(residents: &[Resident]) -> String {
    let mut csv = PERSONS_HEADER.to_owned();
    for p in residents {
        csv.push_str(&format!(
            "{},居民身份证,{},深圳户籍,{},{},{},{},{},2024-03-01,是\n",
            p.name, p.id, p.phone, p.estate, p.building, p.room, p.relation
        ));
    }
    csv
}

/// A fresh database set up by the installer: the first admin from the CLI's code, the registry
/// imported through the API, firm 1's manager and staff accounts.
async fn install(backend: Backend) -> Option<Installed> {
    let db = TestDb::new(backend).await?;
    let clock = Arc::new(ManualClock::new(start_time()));
    let engine = start_engine(&db.url, clock.clone()).await;
    let store = engine.store().clone();
    assert!(store.estates().await.expect("estates").is_empty(), "a fresh database: nothing seeded");
    assert!(store.account_by_login("admin").await.expect("accounts").is_none());

    // The first district admin, exactly as `jiayuan users add admin --role district_admin
    // --scope district --no-password` makes it; then a token as `jiayuan users token issue` does.
    let args = ["jiayuan users", "add", "admin", "--role", "district_admin", "--scope", "district", "--no-password"];
    let cli = UsersCli::try_parse_from(args).expect("the CLI parses `users add`");
    jiayuan_cli::users::run(test_settings(&db.url), cli.command, "cli:installer").await.expect("jiayuan users add");
    let account = store.account_by_login("admin").await.expect("accounts").expect("the CLI created the admin");
    let admin =
        jiayuan_server::accounts::issue_token(&store, account.id, "installer", None, "cli:installer", clock.now())
            .await
            .expect("a token for the first admin")
            .token;

    let auth = jiayuan_server::Auth::new(store.clone(), clock.clone(), fast_auth()).await.expect("auth");
    let router = jiayuan_server::router(engine.clone(), auth);
    let mut app = Installed {
        engine,
        router,
        _db: db,
        admin,
        manager: String::new(),
        staff: String::new(),
        firm1: 0,
        estates: ESTATES,
    };
    let admin = app.admin.clone();

    // 行政区划: the Luohu divisions.
    let divisions = jiayuan_domain::luohu_divisions();
    let mut csv = "区划代码,名称,生效日期,失效日期\n".to_owned();
    for d in &divisions {
        let to = d.valid_to.map(|t| t.to_string()).unwrap_or_default();
        csv.push_str(&format!("{},{},{},{to}\n", d.code, d.name_zh, d.valid_from));
    }
    let report = app.import_ok(&admin, "divisions", &csv).await;
    assert_eq!(report["inserted"].as_u64(), Some(divisions.len() as u64), "{report}");
    let communities: Vec<_> =
        divisions.iter().filter(|d| d.level == DivisionLevel::Community).map(|d| d.code.to_string()).collect();
    assert!(communities.len() >= 3, "Luohu has communities: {communities:?}");

    // 物业企业: two firms with valid GB 32100 codes.
    let codes = [fixtures::credit_code(7_001), fixtures::credit_code(7_002)];
    assert!(codes.iter().all(|c| fixtures::is_valid_credit_code(c)), "{codes:?}");
    let csv = format!(
        "统一社会信用代码,企业名称,企业类型\n{},深圳市安居物业服务有限公司,物业服务企业\n{},深圳市翠园物业管理有限公司,物业服务企业\n",
        codes[0], codes[1]
    );
    assert_eq!(app.import_ok(&admin, "firms", &csv).await["inserted"].as_u64(), Some(2));

    // 小区, 服务委托, 楼栋, 房屋.
    let mut csv = "小区编码,小区名称,类型,社区代码,管理状态,户数\n".to_owned();
    for (n, code) in ESTATES.iter().enumerate() {
        csv.push_str(&format!("{code},安装小区{},住宅小区,{},物业管理,100\n", n + 1, communities[n]));
    }
    assert_eq!(app.import_ok(&admin, "estates", &csv).await["inserted"].as_u64(), Some(3));
    let csv = format!(
        "小区编码,企业统一社会信用代码,开始日期,合同编号\n{},{},2024-01-01,HT-1\n{},{},2024-01-01,HT-2\n{},{},2024-01-01,HT-3\n",
        ESTATES[0], codes[0], ESTATES[1], codes[0], ESTATES[2], codes[1]
    );
    assert_eq!(app.import_ok(&admin, "assignments", &csv).await["inserted"].as_u64(), Some(3));
    let mut buildings = "小区编码,楼栋,层数,高度（米）,有无电梯\n".to_owned();
    let mut houses = "小区编码,楼栋,房号,面积（平方米）,用途\n".to_owned();
    for code in ESTATES {
        for b in ["1栋", "2栋"] {
            buildings.push_str(&format!("{code},{b},18,54,是\n"));
            for r in 0..ROOMS_PER_BUILDING {
                houses.push_str(&format!("{code},{b},{},88.5,自住\n", room(r)));
            }
        }
    }
    assert_eq!(app.import_ok(&admin, "buildings", &buildings).await["inserted"].as_u64(), Some(6));
    let report = app.import_ok(&admin, "houses", &houses).await;
    assert_eq!(report["inserted"].as_u64(), Some(u64::from(3 * 2 * ROOMS_PER_BUILDING)), "{report}");

    // Firm 1's accounts, made by the admin through the API.
    let (status, firms) = app.call(&admin, "GET", "/api/registry/firms", None).await;
    assert_eq!(status, 200, "{firms}");
    let firm1 = firms["firms"]
        .as_array()
        .and_then(|l| l.iter().find(|f| f["credit_code"] == codes[0]))
        .and_then(|f| f["id"].as_i64());
    app.firm1 = firm1.unwrap_or_else(|| panic!("firm 1 is listed: {firms}"));
    let mut tokens = Vec::new();
    for (login, role, items) in
        [("manager1", "firm_manager", None), ("staff1", "firm_staff", Some(json!(["dog-licensing"])))]
    {
        let mut body =
            json!({"login": login, "display_name": login, "role": role, "scope": format!("firm:{}", app.firm1)});
        if let Some(items) = items {
            body["items"] = items;
        }
        let (status, created) = app.call(&admin, "POST", "/api/accounts", Some(&body)).await;
        assert_eq!(status, 201, "{created}");
        let id = created["account"]["id"].as_i64().unwrap_or_else(|| panic!("an account id: {created}"));
        let (status, token) =
            app.call(&admin, "POST", &format!("/api/accounts/{id}/tokens"), Some(&json!({"name": "installer"}))).await;
        assert_eq!(status, 201, "{token}");
        tokens.push(token["token"].as_str().expect("the token, shown once").to_owned());
    }
    app.staff = tokens.pop().expect("two tokens");
    app.manager = tokens.pop().expect("two tokens");
    Some(app)
}

async fn installer_story(backend: Backend) {
    let Some(app) = install(backend).await else { return };
    let mut seen = HashSet::new();
    let residents = residents(500, &mut seen);
    let csv = persons_csv(&residents);

    // The firm manager imports 500 residents with their residence, then the leases.
    let report = app.import_ok(&app.manager, "persons", &csv).await;
    assert_eq!(
        (report["rows"].as_u64(), report["inserted"].as_u64(), report["refused"].as_u64(), report["referred"].as_u64()),
        (Some(500), Some(500), Some(0), Some(0)),
        "{report}"
    );
    let owners: Vec<&Resident> = residents.iter().filter(|p| p.relation == "业主").take(20).collect();
    let mut leases = "小区编码,楼栋,房号,出租人证件号码,起租日期,止租日期,合同或备案编号\n".to_owned();
    for (n, p) in owners.iter().enumerate() {
        leases.push_str(&format!("{},{},{},{},2025-01-01,2026-12-31,ZL-{n}\n", p.estate, p.building, p.room, p.id));
    }
    let report = app.import_ok(&app.manager, "leases", &leases).await;
    assert_eq!(report["inserted"].as_u64(), Some(20), "{report}");

    // The same residents file again changes nothing, and audits only the import.
    let before = app.engine.store().audit_events(0, 0).await.expect("audit");
    let last = before.last().map_or(0, |e| e.seq);
    let again = app.import_ok(&app.manager, "persons", &csv).await;
    assert_eq!(
        (again["inserted"].as_u64(), again["updated"].as_u64(), again["unchanged"].as_u64()),
        (Some(0), Some(0), Some(500)),
        "{again}"
    );
    let after = app.engine.store().audit_events(last, 0).await.expect("audit");
    let actions: Vec<&str> = after.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["registry.import"], "only the import event: {actions:?}");
    assert!(!after.iter().any(|e| e.action.starts_with("registry.person.")), "no person change rows");

    // Firm staff register a dog for an adult resident, at their house.
    let owner = residents.iter().find(|p| p.adult && p.relation == "业主").expect("an adult owner");
    let person = app.person(&owner.id).await;
    let (person_id, house_id) = (person["id"].as_i64(), person["house_id"].as_i64());
    let (Some(person_id), Some(house_id)) = (person_id, house_id) else {
        panic!("the owner lives somewhere: {person}")
    };
    let estate = app.estate_id(owner.estate).await;
    let dog = json!({"kind": "dog", "estate_id": estate, "data": {
        "name": "旺财", "breed": "柯基犬", "sex": "male", "colour": "黄", "sterilised": true,
        "chip_no": fixtures::microchip_no(50_001), "owner_id": person_id, "house_id": house_id}});
    let (status, body) = app.call(&app.staff, "POST", "/api/items/dog-licensing/records", Some(&dog)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["state"], "kept", "{body}");
    assert!(!body.to_string().contains(&owner.id), "the answer holds no identity number");

    let verified = app.engine.store().verify_audit().await.expect("verify the audit log");
    assert!(verified.is_ok(), "the audit chain is whole: {verified:?}");
}

/// A firm manager's import naming a resident of another firm's estate: referred, the person
/// unchanged, and nothing about them in the report.
async fn another_firms_resident(backend: Backend) {
    let Some(app) = install(backend).await else { return };
    let mut seen = HashSet::new();
    let theirs = fixtures::resident_id(88_001, date(1975, 4, 5), true);
    let phone = fixtures::phone(88_001);
    seen.insert(theirs.clone());
    // The admin registers them in firm 2's estate.
    let csv = format!(
        "{PERSONS_HEADER}王五,居民身份证,{theirs},深圳户籍,{phone},{},1栋,101,业主,2023-05-01,是\n",
        app.estates[2]
    );
    app.import_ok(&app.admin, "persons", &csv).await;
    let person = app.person(&theirs).await;
    let id = person["id"].as_i64().expect("person id");
    let shown = |path: String| {
        let app = &app;
        async move {
            let (status, body) = app.call(&app.admin, "GET", &path, None).await;
            assert_eq!(status, 200, "{body}");
            body
        }
    };
    let before = (
        shown(format!("/api/registry/persons/{id}")).await,
        shown(format!("/api/registry/persons/{id}/occupancies")).await,
    );

    // Firm 1's manager names them (another name, another phone, a house of firm 1), beside a
    // new resident of their own.
    let own = &residents(1, &mut seen)[0];
    let csv = format!(
        "{PERSONS_HEADER}改名,居民身份证,{theirs},深圳户籍,{},{},1栋,102,业主,2025-01-01,是\n{},居民身份证,{},深圳户籍,{},{},{},{},业主,2024-03-01,是\n",
        fixtures::phone(88_002),
        app.estates[0],
        own.name,
        own.id,
        own.phone,
        own.estate,
        own.building,
        own.room
    );
    let report = app.import_ok(&app.manager, "persons", &csv).await;
    assert_eq!(
        (report["referred"].as_u64(), report["inserted"].as_u64(), report["updated"].as_u64()),
        (Some(1), Some(1), Some(0)),
        "{report}"
    );
    assert_eq!(report["problems"], json!([]), "no problem names them: {report}");
    let text = report.to_string();
    for shown in
        [theirs.clone(), mask(&theirs, Sensitivity::Personal), mask(&theirs, Sensitivity::Sensitive), phone.clone()]
    {
        assert!(!text.contains(&shown), "the report says nothing of them: {text}");
    }

    let after = (
        shown(format!("/api/registry/persons/{id}")).await,
        shown(format!("/api/registry/persons/{id}/occupancies")).await,
    );
    assert_eq!(before, after, "the person and where they live are unchanged");
    let (status, body) = app.call(&app.manager, "GET", &format!("/api/registry/persons/{id}"), None).await;
    assert_eq!(status, 404, "still outside the manager's reach: {body}");
}

/// The admin's XLSX export of estates imports again with every row unchanged.
async fn estates_round_trip(backend: Backend) {
    let Some(app) = install(backend).await else { return };
    let path = "/api/registry/exports/estates?format=xlsx&purpose=reimport";
    let (status, headers, xlsx) = request_bytes(&app.router, "GET", path, Some(&app.admin), None, Vec::new()).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&xlsx));
    assert_eq!(headers["content-type"], XLSX);
    let (status, report) = app.import(&app.admin, "estates", "", XLSX, xlsx).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (
            report["rows"].as_u64(),
            report["unchanged"].as_u64(),
            report["inserted"].as_u64(),
            report["updated"].as_u64()
        ),
        (Some(3), Some(3), Some(0), Some(0)),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installer_sets_up_a_fresh_database_through_the_cli_and_the_api_on_sqlite() {
    installer_story(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installer_sets_up_a_fresh_database_through_the_cli_and_the_api_on_postgres() {
    installer_story(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firm_import_naming_another_firms_resident_is_referred_on_sqlite() {
    another_firms_resident(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firm_import_naming_another_firms_resident_is_referred_on_postgres() {
    another_firms_resident(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_xlsx_estate_export_reimports_unchanged_on_sqlite() {
    estates_round_trip(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_xlsx_estate_export_reimports_unchanged_on_postgres() {
    estates_round_trip(Backend::Postgres).await;
}
