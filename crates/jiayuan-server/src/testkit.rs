//! An in-crate test host: an engine over a fresh SQLite file (no plugins), the router, and a
//! district administrator's API token.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use jiayuan_domain::{AccountScope, Role, WorkingCalendar};
use jiayuan_host::clock::{HostClock, SystemClock};
use jiayuan_host::enablement::Enablement;
use jiayuan_host::engine::Engine;
use jiayuan_host::plugins::{PluginRegistry, PluginSettings};
use jiayuan_host::settings::EnablementSettings;
use jiayuan_store::{DatabaseSettings, NewAccount, NewApiToken, Store};

use crate::{Auth, AuthSettings};

/// A router over a fresh database, with one district administrator.
pub(crate) struct TestApp {
    pub(crate) router: Router,
    /// The administrator's API token.
    pub(crate) token: String,
    _dir: tempfile::TempDir,
}

/// An answer: status, headers, body text.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl TestApp {
    pub(crate) async fn start() -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("server.sqlite").display());
        let store = Store::connect(&DatabaseSettings::with_insecure_test_keys(url)).await.expect("connect");
        store.migrate().await.expect("migrate");
        let clock: Arc<dyn HostClock> = Arc::new(SystemClock);
        let plugins = PluginRegistry::new(PluginSettings {
            call_timeout: Duration::from_secs(1),
            quarantine_window: Duration::from_secs(60),
            ..PluginSettings::new(dir.path().join("plugins"), Vec::new())
        });
        let enablement = Enablement::new(EnablementSettings::default(), Duration::from_secs(5));
        let calendar = WorkingCalendar::new(Vec::new()).expect("an empty calendar");
        let engine = Arc::new(Engine::new(
            store.clone(),
            Arc::new(plugins),
            enablement,
            clock.clone(),
            calendar,
            Vec::<(String, String)>::new(),
        ));
        let now = clock.now();
        let admin = NewAccount {
            login: "ops.admin".into(),
            display_name: "运维".into(),
            role: Role::DistrictAdmin,
            scope: AccountScope::District,
            items: None,
            password_hash: None,
            agency_unit: None,
        };
        let account_id = store.insert_account(&admin, "test", now).await.expect("account");
        let (token, prefix, token_hash) = crate::auth::new_token().expect("token");
        let new_token =
            NewApiToken { account_id, name: "tests".into(), prefix, token_hash, created_at: now, expires_at: None };
        store.insert_api_token(&new_token, "test", now).await.expect("api token");
        let config = AuthSettings { argon2_memory_kib: 64, argon2_iterations: 1, ..AuthSettings::default() };
        let auth = Auth::new(store, clock, config).await.expect("auth");
        TestApp { router: crate::router(engine, auth), token, _dir: dir }
    }

    /// `GET path`, with the administrator's token when `authenticated`.
    pub(crate) async fn get(&self, path: &str, authenticated: bool) -> Answer {
        let mut req = Request::builder().method("GET").uri(path);
        if authenticated {
            req = req.header("authorization", format!("Bearer {}", self.token));
        }
        let res = self.router.clone().oneshot(req.body(Body::empty()).expect("request")).await.expect("answer");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        Answer { status, headers, body: String::from_utf8(bytes.to_vec()).expect("utf-8 body") }
    }

    /// `method path` as the administrator, with a JSON `body` and extra `headers`.
    pub(crate) async fn send(&self, method: &str, path: &str, body: &str, headers: &[(&str, &str)]) -> Answer {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", "application/json");
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req.body(Body::from(body.to_owned())).expect("request");
        let res = self.router.clone().oneshot(req).await.expect("answer");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        Answer { status, headers, body: String::from_utf8(bytes.to_vec()).expect("utf-8 body") }
    }

    /// `method path` as the administrator with a raw `body`; the answer's body as bytes.
    pub(crate) async fn send_bytes(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut req =
            Request::builder().method(method).uri(path).header("authorization", format!("Bearer {}", self.token));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let res = self.router.clone().oneshot(req.body(Body::from(body)).expect("request")).await.expect("answer");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        (status, headers, bytes.to_vec())
    }
}
