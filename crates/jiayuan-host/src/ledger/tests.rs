//! Imports and exports through the real registry service on an in-memory SQLite store.

use std::sync::Arc;

use jiayuan_domain::{AccountScope, FirmId, Role};
use jiayuan_store::{DatabaseSettings, Store};

use super::*;
use crate::access::Caller;
use crate::clock::SystemClock;

/// A synthetic identity number with a valid check digit (born 1990-03-07).
fn id(first17: &str) -> String {
    let check = jiayuan_domain::resident_id_check_char(first17).expect("17 digits");
    format!("{first17}{check}")
}

/// A registry on a fresh SQLite file (WAL, as in production: readers never wait for the writer).
async fn registry() -> (Registry, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("ledger.sqlite").display());
    let store = Store::connect(&DatabaseSettings::with_insecure_test_keys(url)).await.expect("store");
    store.migrate().await.expect("migrate");
    (Registry::new(store, Arc::new(SystemClock), Vec::new()), dir)
}

fn admin() -> Caller {
    Caller::account("admin", Role::DistrictAdmin, &AccountScope::District, None)
}

async fn run(r: &Registry, caller: &Caller, kind: ImportKind, csv: &str, options: ImportOptions) -> ImportReport {
    let reader = Reader::from_bytes(csv.as_bytes().to_vec(), "x.csv", sheet_of(kind)).expect("reader");
    import(r, caller, kind, reader, options, &|_| {}).await.expect("import")
}

const DIVISIONS: &str = "区划代码,名称,生效日期\n440303000000,罗湖区,2019-01-01\n440303004000,翠竹街道,2019-01-01\n\
                         440303004008,翠竹社区,2019-01-01\n440303004004,水贝社区,2019-01-01\n";
const FIRMS: &str = "统一社会信用代码,企业名称,企业类型\n91440300MA5FUTXX9E,翠园物业,property_firm\n";

fn valid_credit_code() -> String {
    let first17 = "91440300MA5FUTXX9";
    let check = jiayuan_domain::credit_code_check_char(first17).expect("charset");
    format!("{first17}{check}")
}

async fn seeded() -> (Registry, tempfile::TempDir) {
    let (r, dir) = registry().await;
    let a = admin();
    assert_eq!(run(&r, &a, ImportKind::Divisions, DIVISIONS, ImportOptions::default()).await.refused, 0);
    let firms = FIRMS.replace("91440300MA5FUTXX9E", &valid_credit_code());
    let rep = run(&r, &a, ImportKind::Firms, &firms, ImportOptions::default()).await;
    assert_eq!(rep.refused, 0, "{:?}", rep.problems);
    let estates = "小区编码,小区名称,类型,社区代码,管理状态,户数\nLH-1,翠竹苑,estate,440303004008,property_managed,480\n\
                   LH-2,水贝花园,estate,440303004004,property_managed,360\n";
    assert_eq!(run(&r, &a, ImportKind::Estates, estates, ImportOptions::default()).await.refused, 0);
    let assignments = format!("小区编码,企业统一社会信用代码,开始日期\nLH-1,{},2024-01-01\n", valid_credit_code());
    assert_eq!(run(&r, &a, ImportKind::Assignments, &assignments, ImportOptions::default()).await.refused, 0);
    let buildings = "小区编码,楼栋,层数,高度（米）,有无电梯\nLH-1,1栋,28,86,是\nLH-2,1栋,7,21,否\n";
    assert_eq!(run(&r, &a, ImportKind::Buildings, buildings, ImportOptions::default()).await.refused, 0);
    let houses = "小区编码,楼栋,房号,面积（平方米）,用途\nLH-1,1栋,101,88.5,自住\nLH-2,1栋,201,60,出租\n";
    assert_eq!(run(&r, &a, ImportKind::Houses, houses, ImportOptions::default()).await.refused, 0);
    (r, dir)
}

#[tokio::test]
async fn a_file_with_problems_names_each_by_row_and_column_and_writes_nothing() {
    let (r, _dir) = seeded().await;
    // Row 2: wrong check digit; row 3: blank name; row 4: date in the wrong format; rows 5 and 6:
    // the same document twice; row 7: an unknown estate code.
    let canary = id("11010119900307777");
    let wrong = {
        let mut w = canary.clone();
        let last = if w.ends_with('0') { '1' } else { '0' };
        w.pop();
        w.push(last);
        w
    };
    let csv = format!(
        "姓名,证件号码,户籍,入住日期,小区编码,楼栋,房号\n\
         张三,{wrong},shenzhen,,,,\n\
         ,{},shenzhen,,,,\n\
         李四,{},shenzhen,03/07/2024,,,\n\
         王五,{canary},shenzhen,,,,\n\
         赵六,{canary},shenzhen,,,,\n\
         钱七,{},shenzhen,,NOPE,1栋,101\n",
        id("11010119900307111"),
        id("11010119900307095"),
        id("11010119900307631"),
    );
    let report = run(&r, &admin(), ImportKind::Persons, &csv, ImportOptions::default()).await;
    let named: Vec<(u64, Option<&str>, &str)> =
        report.problems.iter().map(|p| (p.row, p.column.as_deref(), p.rule.as_str())).collect();
    assert!(named.contains(&(2, Some("证件号码"), "doc_number")), "{named:?}");
    assert!(named.contains(&(3, Some("姓名"), "required")), "{named:?}");
    assert!(named.contains(&(4, Some("入住日期"), "date_format")), "{named:?}");
    assert!(named.contains(&(6, Some("证件号码"), "duplicate_in_file")), "{named:?}");
    assert!(named.contains(&(7, Some("房号"), "not_registered")), "{named:?}");
    assert!(!report.committed);
    assert_eq!(r.store().person_by_doc(jiayuan_domain::DocKind::ResidentId, &canary).await.expect("read"), None);
    let text = format!("{report:?}");
    assert!(!text.contains(&canary) && !text.contains(&wrong), "the report must never hold an identity number");
}

#[tokio::test]
async fn an_unknown_community_is_named_and_reimporting_changes_nothing() {
    let (r, _dir) = seeded().await;
    let canary = id("11010119900307777");
    let bad = "小区编码,小区名称,类型,社区代码,管理状态,户数\nLH-9,某小区,estate,440303099001,unmanaged,10\n";
    let report = run(&r, &admin(), ImportKind::Estates, bad, ImportOptions::default()).await;
    assert_eq!(report.refused, 1);
    assert_eq!(report.problems[0].row, 2);
    assert_eq!(report.problems[0].rule, "not_registered");
    let persons = format!(
        "姓名,证件号码,户籍,小区编码,楼栋,房号,与户主关系,入住日期\n王五,{canary},shenzhen,LH-1,1栋,101,户主,2024-01-01\n"
    );
    let first = run(&r, &admin(), ImportKind::Persons, &persons, ImportOptions::default()).await;
    assert_eq!((first.inserted, first.refused, first.committed), (1, 0, true), "{:?}", first.problems);
    let again = run(&r, &admin(), ImportKind::Persons, &persons, ImportOptions::default()).await;
    assert_eq!((again.inserted, again.updated, again.unchanged), (0, 0, 1));
    let person = r.store().person_by_doc(jiayuan_domain::DocKind::ResidentId, &canary).await.expect("read");
    assert!(person.is_some_and(|p| p.house_id.is_some()), "the residence became the primary occupancy");
}

#[tokio::test]
async fn a_firm_import_naming_another_firms_resident_neither_changes_nor_reveals_them() {
    let (r, _dir) = seeded().await;
    let canary = id("11010119900307777");
    // The resident lives in LH-2, which firm 1 does not serve.
    let persons =
        format!("姓名,证件号码,户籍,手机号码,小区编码,楼栋,房号\n王五,{canary},shenzhen,13812345678,LH-2,1栋,201\n");
    let rep = run(&r, &admin(), ImportKind::Persons, &persons, ImportOptions::default()).await;
    assert_eq!(rep.inserted, 1, "{:?}", rep.problems);
    let manager = Caller::account("manager", Role::FirmManager, &AccountScope::Firm(FirmId(1)), None);
    let theirs =
        format!("姓名,证件号码,户籍,手机号码,小区编码,楼栋,房号\n改名,{canary},shenzhen,13900000000,LH-1,1栋,101\n");
    let report = run(&r, &manager, ImportKind::Persons, &theirs, ImportOptions::default()).await;
    assert_eq!((report.referred, report.updated, report.inserted), (1, 0, 0));
    assert!(report.problems.is_empty(), "nothing about the person is reported back");
    let p = r.store().person_by_doc(jiayuan_domain::DocKind::ResidentId, &canary).await.expect("read").expect("person");
    assert_eq!((p.name.as_str(), p.phone.as_deref()), ("王五", Some("13812345678")), "unchanged");
    let occupancies = r.store().occupancies_of_person(p.id).await.expect("read");
    assert_eq!(occupancies.len(), 1, "no residence in the importer's estate was added, so no reach was gained");

    // A firm's import must place each person somewhere the firm reaches.
    let homeless = format!("姓名,证件号码,户籍\n某人,{},shenzhen\n", id("44030319800101123"));
    let report = run(&r, &manager, ImportKind::Persons, &homeless, ImportOptions::default()).await;
    assert_eq!(report.problems.iter().map(|p| p.rule.as_str()).collect::<Vec<_>>(), ["residence_required"]);
}

#[tokio::test]
async fn exports_mask_personal_data_and_an_estate_export_reimports_cleanly() {
    let (r, _dir) = seeded().await;
    let canary = id("11010119900307777");
    let persons = format!("姓名,证件号码,户籍,小区编码,楼栋,房号\n王五,{canary},shenzhen,LH-1,1栋,101\n");
    assert_eq!(run(&r, &admin(), ImportKind::Persons, &persons, ImportOptions::default()).await.inserted, 1);
    for format in [ExportFormat::Xlsx, ExportFormat::Csv] {
        let e = export(&r, &admin(), ImportKind::Persons, format, ExportPurpose::Reconciliation, false)
            .await
            .expect("export");
        assert_eq!(e.rows, 1);
        let hay = String::from_utf8_lossy(&e.bytes);
        assert!(!hay.contains(&canary) && !hay.contains("王五"), "personal data leaves masked");
    }
    let e = export(&r, &admin(), ImportKind::Estates, ExportFormat::Xlsx, ExportPurpose::Reimport, false)
        .await
        .expect("export");
    let reader = Reader::from_bytes(e.bytes, "estates.xlsx", sheet_of(ImportKind::Estates)).expect("reader");
    let again =
        import(&r, &admin(), ImportKind::Estates, reader, ImportOptions::default(), &|_| {}).await.expect("import");
    assert_eq!((again.rows, again.unchanged, again.refused), (2, 2, 0), "{:?}", again.problems);
    let staff = Caller::account("s", Role::FirmStaff, &AccountScope::Firm(FirmId(1)), Some(vec!["x".into()]));
    let denied = export(&r, &staff, ImportKind::Persons, ExportFormat::Csv, ExportPurpose::Reporting, false).await;
    assert!(matches!(denied, Err(ImportError::Registry(RegistryError::Denied(_)))));
}

#[tokio::test]
async fn a_dry_run_reports_what_applying_would_do_and_writes_nothing() {
    let (r, _dir) = seeded().await;
    let canary = id("11010119900307777");
    let persons = format!("姓名,证件号码,户籍\n王五,{canary},shenzhen\n");
    let dry =
        run(&r, &admin(), ImportKind::Persons, &persons, ImportOptions { dry_run: true, valid_rows_only: false }).await;
    assert_eq!((dry.inserted, dry.committed), (1, false));
    assert_eq!(r.store().person_by_doc(jiayuan_domain::DocKind::ResidentId, &canary).await.expect("read"), None);
}

#[tokio::test]
async fn the_import_log_keeps_runs_of_rows_and_each_refusal_without_values() {
    let (r, _dir) = seeded().await;
    let a = id("11010119900307101");
    let b = id("11010119900307112");
    let c = id("11010119900307123");
    let csv = format!("姓名,证件号码,户籍\n甲,{a},shenzhen\n乙,{b},shenzhen\n丙,{c},shenzhen\n丁,{a},shenzhen\n");
    let options = ImportOptions { dry_run: false, valid_rows_only: true };
    let report = run(&r, &admin(), ImportKind::Persons, &csv, options).await;
    assert_eq!((report.inserted, report.refused, report.committed), (3, 1, true), "{:?}", report.problems);
    let events = r.store().audit_events(0, 0).await.expect("audit");
    let import = events.iter().rev().find(|e| e.action == "registry.import").expect("one audit event for the import");
    let import_id: i64 = import.object.trim_start_matches("import/").parse().expect("import id");
    let log = r.store().import_log(import_id).await.expect("log");
    let lines: Vec<(i64, i64, &str)> = log.iter().map(|l| (l.row, l.row_to, l.action.as_str())).collect();
    assert_eq!(lines, [(2, 4, "inserted"), (5, 5, "refused")]);
    assert!(log[0].target.as_deref().is_some_and(|t| t.starts_with("person/") && t.contains('-')));
    assert_eq!(log[1].detail, ["duplicate_in_file"]);
    let text = format!("{log:?}");
    assert!(![&a, &b, &c].iter().any(|n| text.contains(n.as_str())), "the log holds no document numbers");
    assert!(
        !events.iter().any(|e| e.action.starts_with("registry.person.")),
        "an import is one audit event, not one per row"
    );
}
