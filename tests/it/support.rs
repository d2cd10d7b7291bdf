//! Test harness: a host on a fresh database (SQLite file or PostgreSQL database), with the dog
//! and fixture plugins linked statically, a manual clock, the demo registry, and the HTTP router.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use sea_orm::{ConnectionTrait, Database};
use serde_json::Value;
use tower::ServiceExt;

use jiayuan_domain::{Date, EstateId, HouseId, PersonId, Timestamp};
use jiayuan_host::clock::ManualClock;
use jiayuan_host::engine::Engine;
use jiayuan_host::runtime::{self, Options};
use jiayuan_host::settings::{self, Layers, Settings};
use jiayuan_test_support::fixtures;

/// Where a test's database lives.
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server URL, when the environment offers one.
pub(crate) fn postgres_url() -> Option<String> {
    match std::env::var("JIAYUAN_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("JIAYUAN_TEST_PG_URL is unset: skipping the PostgreSQL run of this story");
            None
        }
    }
}

/// A database that exists for one test and is removed afterwards.
pub(crate) struct TestDb {
    pub(crate) url: String,
    _dir: Option<tempfile::TempDir>,
    drop_pg: Option<(String, String)>,
}

impl TestDb {
    pub(crate) async fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("it.sqlite").display());
                Some(TestDb { url, _dir: Some(dir), drop_pg: None })
            }
            Backend::Postgres => {
                let admin = postgres_url()?;
                let name = format!("jiayuan_it_{}", uuid_like());
                let conn = Database::connect(&admin).await.expect("connect to the PostgreSQL test server");
                conn.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create test database");
                let (base, _) = admin.rsplit_once('/').expect("a PostgreSQL URL ends with /database");
                Some(TestDb { url: format!("{base}/{name}"), _dir: None, drop_pg: Some((admin, name)) })
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.drop_pg.take() {
            // Drop may run inside a runtime: do the async clean-up on a thread of its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                rt.block_on(async {
                    if let Ok(conn) = Database::connect(&admin).await {
                        let _ = conn.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                    }
                });
            })
            .join();
        }
    }
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let t = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{:x}{:x}", t, std::process::id())
}

/// The repository's configuration, pointed at `url` with the (public) test data key, with both
/// test plugins allowed and enabled.
pub(crate) fn test_settings(url: &str) -> Settings {
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config");
    let mut s = settings::load(Layers { dir: &config, env: None }, Vec::new()).expect("config/default.toml loads");
    s.database.url = url.to_owned();
    s.database.field_keys = Some(jiayuan_store::FieldKeys::insecure_test_keys());
    s.plugins.allow.push("fixture".into());
    // Long enough for a debug build to print a panic's backtrace on the plugin's thread; the
    // hang tests wait this long.
    s.plugins.call_timeout = std::time::Duration::from_secs(2);
    s.enablement.district.push("fixture".into());
    s.scheduler.enabled = false;
    s
}

/// 2026-11-30 (a Monday) 10:00 in Shanghai.
pub(crate) fn start_time() -> Timestamp {
    date(2026, 11, 30).start_in_shanghai().add_hours(10)
}

pub(crate) fn date(y: i32, m: u32, d: u32) -> Date {
    fixtures::date(y, m, d)
}

/// A running host with the demo registry seeded.
pub(crate) struct App {
    pub(crate) engine: Arc<Engine>,
    pub(crate) router: Router,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) ids: jiayuan_cli::demo::IdMap,
    pub(crate) db: TestDb,
    /// The demo account token of each role, by role name (`firm_staff`, …).
    pub(crate) tokens: std::collections::HashMap<String, String>,
}

/// Authentication with cheap Argon2 parameters (tests hash many passwords) and no `Secure`
/// cookie requirement.
pub(crate) fn fast_auth() -> jiayuan_server::AuthSettings {
    jiayuan_server::AuthSettings {
        argon2_memory_kib: 256,
        argon2_iterations: 1,
        cookie_secure: false,
        ..jiayuan_server::AuthSettings::default()
    }
}

/// A house of an estate with an adult resident, as store ids.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Household {
    pub(crate) estate: EstateId,
    pub(crate) house: HouseId,
    pub(crate) adult: PersonId,
    pub(crate) minor: Option<PersonId>,
}

impl App {
    pub(crate) async fn start(db: TestDb) -> App {
        App::start_with(db, |_| {}).await
    }

    /// [`App::start`] with the test settings changed by `adjust` first.
    pub(crate) async fn start_with(db: TestDb, adjust: impl FnOnce(&mut Settings)) -> App {
        let clock = Arc::new(ManualClock::new(start_time()));
        let mut settings = test_settings(&db.url);
        adjust(&mut settings);
        let engine = start_engine_with(settings, clock.clone()).await;
        let seeded = jiayuan_cli::demo::seed(&engine, false).await.expect("demo registry seeds");
        let config = fast_auth();
        let first = seeded.first_estate.expect("the demo seeds estates");
        let accounts = jiayuan_cli::demo::accounts(&engine, &config, first).await.expect("demo accounts");
        let tokens = accounts.into_iter().map(|a| (a.role.as_str().to_owned(), a.token)).collect();
        let auth = jiayuan_server::Auth::new(engine.store().clone(), clock.clone(), config).await.expect("auth");
        let router = jiayuan_server::router(engine.clone(), auth);
        App { engine, router, clock, ids: seeded.ids, db, tokens }
    }

    /// Households (one per house with an adult) of the `n`-th demo estate (0-based).
    pub(crate) fn households(&self, n: usize) -> Vec<Household> {
        let reg = fixtures::demo_registry();
        let today = start_time().shanghai_date();
        let estate = &reg.estates[n];
        reg.houses
            .iter()
            .filter(|h| h.estate_id == Some(estate.id))
            .filter_map(|h| {
                let people: Vec<_> = reg.persons.iter().filter(|p| p.house_id == Some(h.id)).collect();
                let adult = people.iter().find(|p| p.birth_date.is_some_and(|b| b.age_on(today) >= 18))?;
                let minor = people.iter().find(|p| p.birth_date.is_some_and(|b| b.age_on(today) < 18));
                Some(Household {
                    estate: self.ids.estates[&estate.id],
                    house: self.ids.houses[&h.id],
                    adult: self.ids.persons[&adult.id],
                    minor: minor.map(|m| self.ids.persons[&m.id]),
                })
            })
            .collect()
    }

    /// Sends a request through the router as the demo account of role `actor` (default
    /// `district_admin`), authenticated by its API token; `anonymous` sends no credentials and
    /// `token:<text>` sends `<text>` as the bearer token.
    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        actor: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let body = body.map(|b| b.to_string());
        self.raw(method, path, actor, body.as_deref()).await
    }

    /// Sends a request with a raw body (for malformed JSON).
    pub(crate) async fn raw(
        &self,
        method: &str,
        path: &str,
        actor: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(path);
        let role = actor.unwrap_or("district_admin");
        if let Some(token) = role.strip_prefix("token:") {
            req = req.header("authorization", format!("Bearer {token}"));
        } else if role != "anonymous" {
            let token = self.tokens.get(role).unwrap_or_else(|| panic!("no demo account for role `{role}`"));
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let req = match body {
            Some(b) => req.header("content-type", "application/json").body(Body::from(b.to_owned())),
            None => req.body(Body::empty()),
        }
        .expect("request");
        let res = self.router.clone().oneshot(req).await.expect("router answers");
        let status = res.status();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        let value = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        (status, value)
    }
}

/// Starts one more host instance on the same database (two hosts sharing PostgreSQL).
pub(crate) async fn start_engine(url: &str, clock: Arc<ManualClock>) -> Arc<Engine> {
    start_engine_with(test_settings(url), clock).await
}

/// A host instance with these settings.
pub(crate) async fn start_engine_with(settings: Settings, clock: Arc<ManualClock>) -> Arc<Engine> {
    let host = runtime::start(
        settings,
        Options {
            clock,
            static_plugins: vec![&jiayuan_plugin_dog_licensing::DECLARATION, &jiayuan_plugin_fixture::DECLARATION],
            load_plugin_dir: false,
        },
    )
    .await
    .expect("host starts");
    host.engine
}

/// The codes of the field violations in an error body, as `field:code`.
pub(crate) fn violations(body: &Value) -> Vec<String> {
    body["error"]["violations"]
        .as_array()
        .map(|v| {
            v.iter()
                .map(|v| format!("{}:{}", v["field"].as_str().unwrap_or(""), v["code"].as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default()
}

/// One request with a raw body through `router`, authenticated by `bearer` when given; the
/// answer's status, headers and body bytes (ledger files are not JSON).
pub(crate) async fn request_bytes(
    router: &Router,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(token) = bearer {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    if let Some(t) = content_type {
        req = req.header("content-type", t);
    }
    let req = req.body(Body::from(body)).expect("request");
    let res = router.clone().oneshot(req).await.expect("router answers");
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    (status, headers, bytes.to_vec())
}

/// The text of every part of an XLSX workbook (its XML, decompressed), to search for values.
pub(crate) fn xlsx_text(bytes: &[u8]) -> String {
    use std::io::Read;
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("an XLSX is a zip archive");
    let mut out = String::new();
    for i in 0..zip.len() {
        let mut part = zip.by_index(i).expect("a part of the workbook");
        let mut text = String::new();
        part.read_to_string(&mut text).expect("workbook parts are UTF-8 XML");
        out.push_str(&text);
        out.push('\n');
    }
    out
}

impl App {
    /// A request with a raw body as the demo account of `role`: status, headers, body bytes.
    pub(crate) async fn bytes(
        &self,
        method: &str,
        path: &str,
        role: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let token = self.tokens.get(role).unwrap_or_else(|| panic!("no demo account for role `{role}`"));
        request_bytes(&self.router, method, path, Some(token), content_type, body).await
    }
}
