//! Platform benchmarks. Run through `cargo xtask bench`, which builds the plugins in release mode,
//! points `JIAYUAN_BENCH_PLUGINS` at them and prints each figure as a ratio against its baseline
//! measured in the same run:
//!
//! - `plugin_call/{static,dynamic}`: one hook call into the same plugin linked statically and
//!   loaded from its cdylib (through the same handle: host guard, plugin guard, timeout);
//! - `create/{bare_insert,engine_dog}`: a bare single-row sea-orm insert transaction vs a dog
//!   registered through the full engine path (type checks, hook, record + keys + event in one
//!   transaction), both on SQLite files with the same settings (WAL, synchronous=NORMAL, IMMEDIATE);
//! - `create/{bare_insert,engine_dog}_concurrent`: the same two with [`IN_FLIGHT`] operations in
//!   flight at once (that many tokio tasks sharing the work), reported per operation: the bare
//!   inserts queue for their single connection, the engine's writes are group-committed;
//! - `load/all_plugins`: loading and verifying every plugin in the directory (sidecar, sha256,
//!   dlopen, declaration checks, create, manifest validation);
//! - `plugin_call/process` and `create/engine_dog_process`: the bare hook call and the engine's
//!   dog registration with the plugin process-isolated (a child `jiayuan plugin-runner`, named by
//!   `JIAYUAN_BENCH_RUNNER`), against `plugin_call/dynamic` and `create/engine_dog` in process.

mod support {
    pub(crate) mod households;
}

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, Statement, TransactionTrait};
use serde_json::json;
use tokio::runtime::Runtime;

use jiayuan_domain::{EstateId, Role};
use jiayuan_host::clock::SystemClock;
use jiayuan_host::engine::{Caller, CreateRequest, Engine};
use jiayuan_host::plugins::{PluginRegistry, PluginSettings};
use jiayuan_host::runtime::{self, Options};
use jiayuan_host::settings::{self, Layers};
use jiayuan_plugin_api::CreateCall;
use jiayuan_test_support::TestHost;

fn plugin_dir() -> Option<PathBuf> {
    std::env::var_os("JIAYUAN_BENCH_PLUGINS").map(PathBuf::from)
}

fn plugin_settings(dir: PathBuf) -> PluginSettings {
    PluginSettings::new(dir, vec!["dog-licensing".into(), "fixture".into()])
}

/// The `jiayuan` binary that runs process-isolated plugins (`cargo xtask bench` builds it).
fn runner() -> Option<PathBuf> {
    std::env::var_os("JIAYUAN_BENCH_RUNNER").map(PathBuf::from)
}

/// [`plugin_settings`] with `id` process-isolated.
fn process_settings(dir: PathBuf, runner: PathBuf, id: &str) -> PluginSettings {
    let mut s = plugin_settings(dir);
    s.isolation.insert(id.to_owned(), jiayuan_host::plugins::Isolation::Process);
    s.runner = Some(runner);
    s
}

fn plugin_call(c: &mut Criterion, rt: &Runtime) {
    let Some(dir) = plugin_dir() else {
        eprintln!("plugin_call: JIAYUAN_BENCH_PLUGINS is unset; run `cargo xtask bench`");
        return;
    };
    let mut statics = PluginRegistry::new(plugin_settings(dir.clone()));
    let stat = statics.register_static(&jiayuan_plugin_fixture::DECLARATION).expect("static fixture registers");
    let mut dynamics = PluginRegistry::new(plugin_settings(dir.clone()));
    let dynamic = dynamics.load(&dir.join("fixture").join("plugin.toml")).expect("built fixture plugin loads");
    let host = TestHost::new(jiayuan_plugin_fixture::Fixture::new());
    let call = CreateCall::new(
        "probe",
        jiayuan_domain::Place::Estate(EstateId(1)),
        r#"{"mode":"ok"}"#.into(),
        jiayuan_domain::Timestamp(0),
    );
    let mut processes = runner().map(|r| PluginRegistry::new(process_settings(dir.clone(), r, "fixture")));
    let process = processes.as_mut().map(|registry| {
        registry.load(&dir.join("fixture").join("plugin.toml")).expect("the fixture loads process-isolated")
    });
    let mut g = c.benchmark_group("plugin_call");
    let mut handles = vec![("static", &stat), ("dynamic", &dynamic)];
    match &process {
        Some(process) => handles.push(("process", process)),
        None => eprintln!("plugin_call/process: JIAYUAN_BENCH_RUNNER is unset; run `cargo xtask bench`"),
    }
    for (name, handle) in handles {
        g.bench_function(name, |b| {
            b.to_async(rt).iter(|| async {
                let ctx = host.context(None);
                handle.on_create(&ctx, call.clone()).await.expect("fixture accepts mode ok")
            })
        });
    }
    g.finish();
}

async fn sqlite_baseline(path: &std::path::Path) -> DatabaseConnection {
    let mut o = ConnectOptions::new(format!("sqlite://{}?mode=rwc", path.display()));
    o.max_connections(1).sqlx_logging(false).map_sqlx_sqlite_opts(|o| {
        o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
            .create_if_missing(true)
    });
    let db = Database::connect(o).await.expect("baseline database opens");
    db.execute_unprepared("CREATE TABLE IF NOT EXISTS bench (id INTEGER PRIMARY KEY, data TEXT NOT NULL)")
        .await
        .expect("baseline table");
    db
}

/// A host on a fresh SQLite file with the dog plugin linked statically, and `n` houses each with
/// an adult owner (a dog per house keeps the household rules quiet).
async fn engine_with_houses(dir: &std::path::Path, n: usize) -> (Arc<Engine>, EstateId, Vec<(i64, i64)>) {
    engine_with(dir, n, None).await
}

/// [`engine_with_houses`]; with `process: Some((plugins, runner))` the dog plugin is loaded from
/// the built plugins and process-isolated instead.
async fn engine_with(
    dir: &std::path::Path,
    n: usize,
    process: Option<(PathBuf, PathBuf)>,
) -> (Arc<Engine>, EstateId, Vec<(i64, i64)>) {
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config");
    let mut s = settings::load(Layers { dir: &config, env: None }, Vec::new()).expect("default config loads");
    s.database.url = format!("sqlite://{}?mode=rwc", dir.join("engine.sqlite").display());
    let options = match process {
        None => Options {
            clock: Arc::new(SystemClock),
            static_plugins: vec![&jiayuan_plugin_dog_licensing::DECLARATION],
            load_plugin_dir: false,
        },
        Some((plugins, runner)) => {
            s.plugins = process_settings(plugins, runner, "dog-licensing");
            s.plugins.allow = vec!["dog-licensing".into()];
            Options { clock: Arc::new(SystemClock), static_plugins: Vec::new(), load_plugin_dir: true }
        }
    };
    let host = runtime::start(s, options).await.expect("host starts");
    let (estate, pairs) = support::households::estate_with_households(host.engine.store(), n).await;
    (host.engine, estate, pairs)
}

/// Operations in flight at once in the `*_concurrent` benchmarks.
const IN_FLIGHT: usize = 16;

/// One bare insert transaction on the baseline connection.
async fn bare_insert(db: &DatabaseConnection, n: u64) {
    let txn = db
        .begin_with_options(sea_orm::TransactionOptions {
            sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await
        .expect("begin");
    txn.execute_raw(Statement::from_sql_and_values(
        sea_orm::DbBackend::Sqlite,
        "INSERT INTO bench (data) VALUES (?)",
        [format!("{{\"n\":{n}}}").into()],
    ))
    .await
    .expect("insert");
    txn.commit().await.expect("commit");
}

/// The request registering a dog (chip number `chip`) for an owner and house.
fn dog_request(estate: EstateId, (house, owner): (i64, i64), chip: u64) -> CreateRequest {
    CreateRequest::new(
        "dog-licensing",
        "dog",
        jiayuan_domain::Place::Estate(estate),
        json!({"name": "旺财", "breed": "柯基犬", "sex": "male", "colour": "黄",
               "sterilised": true, "chip_no": format!("156{chip:012}"),
               "owner_id": owner, "house_id": house}),
    )
}

/// Runs `op(0..iters)` with [`IN_FLIGHT`] tokio tasks taking the next index as they finish one.
async fn in_flight<F, Fut>(iters: u64, op: F)
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(IN_FLIGHT);
    for _ in 0..IN_FLIGHT {
        let (op, next) = (op.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= iters {
                    break;
                }
                op(i).await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("a benchmark task panicked");
    }
}

fn create(c: &mut Criterion, rt: &Runtime) {
    let mut g = c.benchmark_group("create");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    let base_dir = tempfile::tempdir().expect("tempdir");
    let db = rt.block_on(sqlite_baseline(&base_dir.path().join("baseline.sqlite")));
    let mut n = 0_u64;
    g.bench_function("bare_insert", |b| {
        b.to_async(rt).iter(|| {
            n += 1;
            let db = &db;
            let n = n;
            async move { bare_insert(db, n).await }
        })
    });
    let staff = Caller::account("bench", Role::FirmStaff, &jiayuan_domain::AccountScope::District, None);
    let mut chip = 0_u64;
    g.bench_function("engine_dog", |b| {
        b.iter_custom(|iters| {
            // Fresh houses and owners for every batch, prepared outside the timed loop.
            let dir = tempfile::tempdir().expect("tempdir");
            let (engine, estate, pairs) = rt.block_on(engine_with_houses(dir.path(), iters as usize));
            let start = Instant::now();
            rt.block_on(async {
                for &pair in &pairs {
                    chip += 1;
                    engine.create(&staff, dog_request(estate, pair, chip)).await.expect("dog registers");
                }
            });
            start.elapsed()
        })
    });
    // The engine's dog registration with dog licensing in a child process.
    if let (Some(plugins), Some(runner)) = (plugin_dir(), runner()) {
        g.bench_function("engine_dog_process", |b| {
            b.iter_custom(|iters| {
                let dir = tempfile::tempdir().expect("tempdir");
                let process = Some((plugins.clone(), runner.clone()));
                let (engine, estate, pairs) = rt.block_on(engine_with(dir.path(), iters as usize, process));
                let start = Instant::now();
                rt.block_on(async {
                    for &pair in &pairs {
                        chip += 1;
                        engine.create(&staff, dog_request(estate, pair, chip)).await.expect("dog registers");
                    }
                });
                start.elapsed()
            })
        });
    } else {
        eprintln!("create/engine_dog_process: JIAYUAN_BENCH_PLUGINS or JIAYUAN_BENCH_RUNNER is unset");
    }
    // The same two, IN_FLIGHT at a time: the baseline on the same single-connection database.
    let base = Arc::new(AtomicU64::new(n));
    g.bench_function("bare_insert_concurrent", |b| {
        b.iter_custom(|iters| {
            let (db, base) = (db.clone(), base.clone());
            let first = base.fetch_add(iters, Ordering::Relaxed);
            let start = Instant::now();
            rt.block_on(in_flight(iters, move |i| {
                let db = db.clone();
                async move { bare_insert(&db, first + i).await }
            }));
            start.elapsed()
        })
    });
    let chips = Arc::new(AtomicU64::new(chip));
    g.bench_function("engine_dog_concurrent", |b| {
        b.iter_custom(|iters| {
            let dir = tempfile::tempdir().expect("tempdir");
            let (engine, estate, pairs) = rt.block_on(engine_with_houses(dir.path(), iters as usize));
            let (pairs, staff, chips) = (Arc::new(pairs), staff.clone(), chips.clone());
            let start = Instant::now();
            rt.block_on(in_flight(iters, move |i| {
                let (engine, pairs, staff, chips) = (engine.clone(), pairs.clone(), staff.clone(), chips.clone());
                async move {
                    let chip = chips.fetch_add(1, Ordering::Relaxed) + 1;
                    let pair = pairs[i as usize];
                    engine.create(&staff, dog_request(estate, pair, chip)).await.expect("dog registers");
                }
            }));
            start.elapsed()
        })
    });
    g.finish();
}

fn load(c: &mut Criterion) {
    let Some(dir) = plugin_dir() else {
        eprintln!("load: JIAYUAN_BENCH_PLUGINS is unset; run `cargo xtask bench`");
        return;
    };
    let mut g = c.benchmark_group("load");
    g.sample_size(20);
    g.bench_function("all_plugins", |b| {
        b.iter(|| {
            let mut r = PluginRegistry::new(plugin_settings(dir.clone()));
            let summary = r.load_dir().expect("plugin dir readable");
            assert!(summary.failed.is_empty(), "every bench plugin loads: {:?}", summary.failed);
            r
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    plugin_call(c, &rt);
    create(c, &rt);
    load(c);
}

criterion_group!(platform, benches);
criterion_main!(platform);
