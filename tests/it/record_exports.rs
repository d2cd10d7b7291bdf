//! Record exports over HTTP (`GET /api/items/{plugin}/exports/{kind}`): a dog export lists the
//! dogs the caller reaches, one line each, under the manifest's Chinese labels; personal fields
//! are masked; every export leaves a `records.export` audit event naming its purpose.

use serde_json::{Value, json};

use jiayuan_test_support::fixtures;

use crate::support::{App, Backend, Household, TestDb, start_time};

const ITEM: &str = "dog-licensing";
const RECORDS: &str = "/api/items/dog-licensing/records";

/// The columns every record export starts with (`jiayuan_host::ledger::export_records`).
const FIXED: [&str; 5] = ["记录编号", "位置", "状态", "创建时间", "更新时间"];

/// A CSV export split into its header and data rows (BOM and provenance line dropped). The
/// cells of the dog sheet carry no commas or quotes, so a plain split is exact.
fn csv_rows(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let mut lines = text.lines().filter(|l| !l.is_empty());
    let provenance = lines.next().expect("a provenance line");
    assert!(provenance.starts_with('#'), "the provenance line comes first: {provenance}");
    let split = |l: &str| l.split(',').map(str::to_owned).collect::<Vec<_>>();
    let header = split(lines.next().expect("a header row"));
    (header, lines.map(split).collect())
}

/// The ids of every dog the listing API shows `actor` (all pages).
async fn listed_dogs(app: &App, actor: &str) -> Vec<i64> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("{RECORDS}?kind=dog&limit=200&cursor={c}"),
            None => format!("{RECORDS}?kind=dog&limit=200"),
        };
        let (status, body) = app.call("GET", &path, Some(actor), None).await;
        assert_eq!(status, 200, "{body}");
        out.extend(body["records"].as_array().into_iter().flatten().filter_map(|r| r["id"].as_i64()));
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    out.sort_unstable();
    out
}

/// Registers a dog of `h` (its adult the owner) as the district admin; its id.
async fn dog(app: &App, h: Household, name: &str, chip: &str) -> i64 {
    let body = json!({"kind": "dog", "estate_id": h.estate.0, "data": {
        "name": name, "breed": "柯基犬", "sex": "female", "colour": "黄", "sterilised": false,
        "chip_no": chip, "owner_id": h.adult.0, "house_id": h.house.0}});
    let (status, res) = app.call("POST", RECORDS, Some("district_admin"), Some(&body)).await;
    assert_eq!(status, 201, "a dog in estate {}: {res}", h.estate);
    res["id"].as_i64().expect("dog id")
}

async fn export(app: &App, actor: &str, query: &str) -> (u16, axum::http::HeaderMap, Vec<u8>) {
    let path = format!("/api/items/{ITEM}/exports/dog?{query}");
    let (status, headers, body) = app.bytes("GET", &path, actor, None, Vec::new()).await;
    (status.as_u16(), headers, body)
}

async fn record_exports(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else { return };
    let app = App::start(db).await;
    let store = app.engine.store();
    let today = start_time().shanghai_date();

    // Two dogs in the first demo estate (the demo firm manager's firm serves it), one in an
    // estate another firm serves.
    let own = app.households(0);
    let own_firm = store.firm_serving(own[0].estate, today).await.expect("firm").expect("served");
    let reg = fixtures::demo_registry();
    let mut other = None;
    for n in 1..reg.estates.len() {
        let Some(h) = app.households(n).first().copied() else { continue };
        if store.firm_serving(h.estate, today).await.expect("firm").is_some_and(|f| f != own_firm) {
            other = Some(h);
            break;
        }
    }
    let other = other.expect("the demo registry has an estate served by another firm");
    let chips = [fixtures::microchip_no(70_001), fixtures::microchip_no(70_002), fixtures::microchip_no(70_003)];
    let mine = [dog(&app, own[0], "旺财", &chips[0]).await, dog(&app, own[1], "豆豆", &chips[1]).await];
    let theirs = dog(&app, other, "球球", &chips[2]).await;

    // The header: the fixed columns, then the manifest's field labels in Chinese.
    let (status, manifest) = app.call("GET", &format!("/api/plugins/{ITEM}/manifest"), None, None).await;
    assert_eq!(status, 200, "{manifest}");
    let kind =
        manifest["record_kinds"].as_array().into_iter().flatten().find(|k| k["id"] == "dog").expect("a dog kind");
    let fields = kind["fields"].as_array().cloned().unwrap_or_default();
    let labels: Vec<String> = fields.iter().map(|f| f["label"]["zh"].as_str().unwrap_or("").to_owned()).collect();
    let want_header: Vec<String> = FIXED.iter().map(|s| (*s).to_owned()).chain(labels).collect();
    for label in ["犬名", "电子标签号", "犬主", "饲养房屋"] {
        assert!(want_header.iter().any(|h| h == label), "the dog sheet has {label}: {want_header:?}");
    }
    let column = |name: &str| {
        FIXED.len() + fields.iter().position(|f| f["name"] == name).unwrap_or_else(|| panic!("no field {name}"))
    };
    let sensitivity = |name: &str| fields.iter().find(|f| f["name"] == name).map(|f| f["sensitivity"].clone());

    for (actor, login) in [("firm_manager", "manager"), ("district_admin", "admin")] {
        let (status, headers, body) = export(&app, actor, "format=csv&purpose=reconciliation").await;
        let text = String::from_utf8_lossy(&body).into_owned();
        assert_eq!(status, 200, "{actor}: {text}");
        assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
        assert_eq!(
            headers["content-disposition"],
            format!("attachment; filename=\"{ITEM}-dog-{today}.csv\""),
            "<plugin>-<kind>-<date>.<ext>"
        );
        assert_eq!(headers["cache-control"], "no-store");
        let (header, rows) = csv_rows(&text);
        assert_eq!(header, want_header, "{actor}");

        // One line per dog the caller reaches: exactly the dogs its listing shows.
        let mut exported: Vec<i64> = rows.iter().map(|r| r[0].parse().expect("a record id")).collect();
        exported.sort_unstable();
        assert_eq!(exported, listed_dogs(&app, actor).await, "{actor}: the export lists what the listing shows");
        for id in mine {
            assert!(exported.contains(&id), "{actor} reaches the first estate's dog {id}");
        }
        let reaches_other = actor == "district_admin";
        assert_eq!(exported.contains(&theirs), reaches_other, "{actor}: another firm's dog {theirs}");
        if !reaches_other {
            assert!(
                rows.iter().all(|r| r[1] != format!("estate {}", other.estate.0)),
                "no row of an estate outside the firm: {text}"
            );
        }

        // Every cell is what the API shows the caller (the one projection): the owner, a personal
        // reference, is the registry id (the registry masks what it shows of the person); the
        // chip number is internal.
        assert_eq!(sensitivity("owner_id"), Some(json!("personal")));
        for (n, id) in mine.iter().enumerate() {
            let row = rows.iter().find(|r| r[0] == id.to_string()).expect("the dog's row");
            let (status, shown) = app.call("GET", &format!("{RECORDS}/{id}"), Some(actor), None).await;
            assert_eq!(status, 200, "{shown}");
            assert_eq!(row[column("owner_id")], shown["data"]["owner_id"].to_string(), "{actor}: {row:?}");
            assert_eq!(row[column("owner_id")], own[n].adult.0.to_string());
            let chip_shown = shown["data"]["chip_no"].as_str().unwrap_or_default().to_owned();
            assert_eq!(row[column("chip_no")], chip_shown, "as the API shows it ({:?})", sensitivity("chip_no"));
            assert_eq!(row[column("name")], ["旺财", "豆豆"][n]);
        }

        // Audited, with the purpose.
        let events = store.audit_events(0, 0).await.expect("audit");
        let e = events
            .iter()
            .rev()
            .find(|e| e.action == "records.export" && e.actor == login)
            .unwrap_or_else(|| panic!("{actor}: a records.export event"));
        assert_eq!(e.object, format!("{ITEM}/export/dog"));
        let detail: Value = serde_json::from_str(&e.detail_json).expect("detail is JSON");
        assert_eq!(
            (&detail["purpose"], &detail["format"], detail["rows"].as_u64()),
            (&json!("reconciliation"), &json!("csv"), Some(rows.len() as u64)),
            "{detail}"
        );
        for chip in &chips {
            assert!(!e.detail_json.contains(chip.as_str()), "no value audited: {e:?}");
        }
    }

    // XLSX by default; the purpose is required; firm staff and agency officers may not export;
    // an unknown item or kind is 404.
    let (status, headers, body) = export(&app, "auditor", "purpose=evaluation").await;
    assert_eq!(status, 200);
    assert!(body.starts_with(b"PK"), "an XLSX workbook");
    assert!(headers["content-disposition"].to_str().expect("ascii").ends_with(".xlsx\""));
    let (status, _, _) = export(&app, "district_admin", "format=csv").await;
    assert_eq!(status, 400, "no purpose");
    for actor in ["firm_staff", "agency_officer"] {
        let (status, _, _) = export(&app, actor, "format=csv&purpose=reconciliation").await;
        assert_eq!(status, 403, "{actor}");
    }
    for path in [format!("/api/items/{ITEM}/exports/cats"), "/api/items/no-such-item/exports/dog".to_owned()] {
        let (status, _, body) =
            app.bytes("GET", &format!("{path}?purpose=reporting"), "district_admin", None, Vec::new()).await;
        assert_eq!(status.as_u16(), 404, "{path}: {}", String::from_utf8_lossy(&body));
    }
    let report = store.verify_audit().await.expect("verify the audit log");
    assert!(report.is_ok(), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_exports_are_scoped_masked_and_audited_on_sqlite() {
    record_exports(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_exports_are_scoped_masked_and_audited_on_postgres() {
    record_exports(Backend::Postgres).await;
}
