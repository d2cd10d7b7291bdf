//! Import benchmark (`cargo xtask bench import`): importing 200,000 persons from a CSV file
//! through the whole import path (stream parse, per-row validation with the GB 11643 check,
//! encryption and blind indexes, upsert by natural key in one transaction, the import log and
//! its audit event) vs a raw batched insert of the very rows it stored (read back from the
//! imported database) into the same table of a fresh database, 1,000 rows per statement in one
//! transaction — the physical limit of writing those rows on this machine.
//!
//! It also writes the bench process's peak resident memory (`VmHWM`) after the import runs to
//! `target/criterion/import/peak_rss_kib.txt`, for xtask to print next to the ratio.

use std::io::Write;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement, TransactionTrait, Value};
use tokio::runtime::Runtime;

use jiayuan_domain::{AccountScope, Role};
use jiayuan_host::access::Caller;
use jiayuan_host::clock::SystemClock;
use jiayuan_host::ledger::{self, ImportKind, ImportOptions};
use jiayuan_host::registry::Registry;
use jiayuan_store::{DatabaseSettings, Store};
use jiayuan_test_support::fixtures;

/// Persons per run.
const PERSONS: u64 = 200_000;

/// Writes the benchmark's CSV: 200,000 synthetic residents with valid identity numbers and phones.
fn write_csv(path: &std::path::Path) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("csv file"));
    writeln!(out, "姓名,证件号码,性别,出生日期,户籍,手机号码").expect("header");
    for i in 0..PERSONS {
        // Unique by construction: 998 sequence numbers per birth day (odd for men, even for women).
        let birth = fixtures::date(1950, 1, 1).add_days((i / 998) as i32);
        let seq = i % 998 + 1;
        let male = seq % 2 == 1;
        let (y, m, d) = birth.ymd();
        let body = format!("{}{y:04}{m:02}{d:02}{seq:03}", fixtures::LUOHU_REGION);
        let id = format!("{body}{}", jiayuan_domain::resident_id_check_char(&body).expect("17 digits"));
        let sex = if male { "男" } else { "女" };
        writeln!(
            out,
            "{},{id},{sex},{birth},深圳户籍,{}",
            fixtures::chinese_name(i * 7919 + 1, male),
            fixtures::phone(i * 7919 + 1)
        )
        .expect("row");
    }
    out.flush().expect("flush");
}

async fn fresh_store(path: &std::path::Path) -> Store {
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let store = Store::connect(&DatabaseSettings::with_insecure_test_keys(url)).await.expect("store");
    store.migrate().await.expect("migrate");
    store
}

/// One import of the whole file into a fresh database.
async fn import_once(dir: &std::path::Path, csv: &std::path::Path, n: u64) -> std::path::PathBuf {
    let db = dir.join(format!("import-{n}.sqlite"));
    let store = fresh_store(&db).await;
    let registry = Registry::new(store.clone(), Arc::new(SystemClock), Vec::new());
    let caller = Caller::account("bench", Role::DistrictAdmin, &AccountScope::District, None);
    let reader = jiayuan_ledger::Reader::open(csv, ledger::sheet_of(ImportKind::Persons)).expect("reader");
    let report = ledger::import(&registry, &caller, ImportKind::Persons, reader, ImportOptions::default(), &|_| {})
        .await
        .expect("import");
    assert_eq!((report.inserted, report.refused), (PERSONS, 0), "{:?}", report.problems.first());
    store.close().await.expect("close");
    db
}

const COLUMNS: &str = "name, doc_kind, doc_number_enc, doc_bidx, sex, birth_date, hukou, phone_enc, phone_bidx";

/// The stored person rows of an imported database, as values to insert again.
async fn stored_rows(db: &std::path::Path) -> Vec<Vec<Value>> {
    let conn = Database::connect(format!("sqlite://{}?mode=ro", db.display())).await.expect("read db");
    let rows = conn
        .query_all_raw(Statement::from_string(conn.get_database_backend(), format!("SELECT {COLUMNS} FROM persons")))
        .await
        .expect("rows");
    rows.iter()
        .map(|r| {
            ["name", "doc_kind", "doc_number_enc", "doc_bidx", "sex", "birth_date", "hukou", "phone_enc", "phone_bidx"]
                .iter()
                .map(|c| Value::from(r.try_get::<Option<String>>("", c).expect("column")))
                .collect()
        })
        .collect()
}

/// The baseline: the same rows into the same table of a fresh database, 1,000 per statement,
/// one transaction.
async fn raw_insert(conn: &DatabaseConnection, rows: &[Vec<Value>]) {
    let txn = conn.begin().await.expect("begin");
    for chunk in rows.chunks(1000) {
        let placeholders = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let sql = format!("INSERT INTO persons ({COLUMNS}) VALUES {placeholders}");
        let values: Vec<Value> = chunk.iter().flatten().cloned().collect();
        txn.execute_raw(Statement::from_sql_and_values(txn.get_database_backend(), sql, values)).await.expect("insert");
    }
    txn.commit().await.expect("commit");
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn import(c: &mut Criterion) {
    let rt = Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = dir.path().join("persons.csv");
    write_csv(&csv);
    let mut group = c.benchmark_group("import");
    group.sample_size(10);
    let mut n = 0;
    group.bench_function("persons_csv_200k", |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let started = std::time::Instant::now();
                let db = rt.block_on(import_once(dir.path(), &csv, n));
                total += started.elapsed();
                let _ = std::fs::remove_file(db);
            }
            total
        })
    });
    let peak = peak_rss_kib();
    let sample = rt.block_on(import_once(dir.path(), &csv, 0));
    let rows = rt.block_on(stored_rows(&sample));
    let mut m = 0;
    group.bench_function("raw_insert_200k", |b| {
        b.iter_custom(|iters| {
            let mut total = std::time::Duration::ZERO;
            for _ in 0..iters {
                m += 1;
                let db = dir.path().join(format!("raw-{m}.sqlite"));
                let store = rt.block_on(fresh_store(&db));
                rt.block_on(store.close()).expect("close");
                let conn = rt.block_on(baseline_connection(&db));
                let started = std::time::Instant::now();
                rt.block_on(raw_insert(&conn, &rows));
                total += started.elapsed();
                rt.block_on(conn.close()).expect("close");
                let _ = std::fs::remove_file(db);
            }
            total
        })
    });
    group.finish();
    if let Some(kib) = peak {
        let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/criterion/import");
        let _ = std::fs::create_dir_all(&out);
        let _ = std::fs::write(out.join("peak_rss_kib.txt"), kib.to_string());
    }
}

/// The baseline's connection: the store writer's SQLite settings (WAL, synchronous=NORMAL, a
/// 32 MiB page cache).
async fn baseline_connection(path: &std::path::Path) -> DatabaseConnection {
    let mut o = sea_orm::ConnectOptions::new(format!("sqlite://{}?mode=rwc", path.display()));
    o.max_connections(1).sqlx_logging(false).map_sqlx_sqlite_opts(|o| {
        o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
            .pragma("cache_size", "-32768")
    });
    Database::connect(o).await.expect("baseline database opens")
}

criterion_group!(benches, import);
criterion_main!(benches);
