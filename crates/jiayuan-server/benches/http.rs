//! HTTP benchmarks. Run through `cargo xtask bench`, which prints each figure as a ratio against
//! its baseline measured in the same run (baseline time ÷ measured time: higher is better).
//!
//! Every HTTP request goes through the whole API router (`jiayuan_server::router`: request log,
//! authentication of a real `Authorization: Bearer` token of a firm_staff account, the role
//! check, extractors, handler, masking, JSON), over one of two transports:
//!
//! - `tcp`: a real server on a loopback TCP port (`axum::serve` with connect info, exactly as
//!   `jiayuan_server::serve` runs it), driven by a small hand-written HTTP/1.1 keep-alive client
//!   (one connection per request in flight, `TCP_NODELAY`; no hyper or reqwest on the client side);
//! - `oneshot`: the router called in-process with `tower::ServiceExt::oneshot`, body collected.
//!
//! Groups:
//!
//! - `http_create/{engine_dog,tcp_dog,oneshot_dog}` (and `*_concurrent`, [`IN_FLIGHT`] in flight,
//!   reported per operation): registering a dog through `Engine::create` with the caller the
//!   token resolves to, vs `POST /api/items/dog-licensing/records` with the same payload. Each
//!   batch gets a fresh SQLite file (WAL, synchronous=NORMAL: the host's settings) with one house
//!   and adult owner per dog, prepared outside the timed loop, identically for all three.
//! - `http_list/{hello_tcp,list_tcp,hello_oneshot,list_oneshot}`: an axum hello-world handler
//!   (`GET /hello` → `hello`) vs `GET /api/items/dog-licensing/records?kind=dog&limit=50` (50
//!   masked records of 200 in the firm's estate), served the same way, one request at a time.
//!
//! The firm_staff account is created with the default Argon2id parameters (19 MiB, 2 passes), and
//! `Auth` with the default configuration (its dummy hash likewise); Argon2 is not on the request
//! path (tokens are SHA-256 with a 5-second caller cache), so this only costs set-up time.

#[path = "../../jiayuan-host/benches/support/households.rs"]
mod households;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tower::ServiceExt;

use jiayuan_domain::{AccountScope, EstateId, FirmKind, Role};
use jiayuan_host::clock::{HostClock, SystemClock};
use jiayuan_host::engine::{Caller, CreateRequest, Engine};
use jiayuan_host::runtime::{self, Options};
use jiayuan_host::settings::{self, Layers};
use jiayuan_server::accounts::{self, AccountDraft};
use jiayuan_server::{Auth, AuthSettings};
use jiayuan_store::{NewAssignment, NewFirm, Store};
use jiayuan_test_support::fixtures;

const ITEM: &str = "dog-licensing";

/// Operations in flight at once in the `*_concurrent` benchmarks (as in jiayuan-host's `platform`).
const IN_FLIGHT: usize = 16;

/// Dogs in the estate for the list benchmark (a page of 50 is asked for).
const LISTED_DOGS: usize = 200;

/// A started host on a fresh SQLite file: one estate served by one firm, `houses` houses each
/// with an adult owner, a firm_staff account with an API token, and the API router.
struct Setup {
    engine: Arc<Engine>,
    router: Router,
    estate: EstateId,
    /// `(house id, owner id)`, one per dog to register.
    pairs: Vec<(i64, i64)>,
    /// The bearer token of the firm_staff account.
    token: String,
    /// The caller that token resolves to (what the engine-only baseline passes).
    caller: Caller,
}

impl Setup {
    async fn new(dir: &Path, houses: usize) -> Setup {
        let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config");
        let mut s = settings::load(Layers { dir: &config, env: None }, Vec::new()).expect("default config loads");
        s.database.url = format!("sqlite://{}?mode=rwc", dir.join("http.sqlite").display());
        s.database.field_keys = Some(jiayuan_store::FieldKeys::insecure_test_keys());
        let clock: Arc<dyn HostClock> = Arc::new(SystemClock);
        let host = runtime::start(
            s,
            Options {
                clock: clock.clone(),
                static_plugins: vec![&jiayuan_plugin_dog_licensing::DECLARATION],
                load_plugin_dir: false,
            },
        )
        .await
        .expect("host starts");
        let engine = host.engine;
        let store: &Store = engine.store();
        let (estate, pairs) = households::estate_with_households(store, houses).await;
        let firm = store
            .insert_firm(&NewFirm {
                name: "基准物业服务有限公司".into(),
                credit_code: fixtures::credit_code(1),
                credit_code_override: None,
                kind: FirmKind::PropertyFirm,
                legal_representative: None,
                contact_phone: None,
            })
            .await
            .expect("firm");
        store
            .insert_assignment(&NewAssignment {
                firm_id: firm,
                estate_id: estate,
                from: fixtures::date(2020, 1, 1),
                to: None,
                contract_ref: None,
            })
            .await
            .expect("assignment");
        engine.forget_places();

        // A firm_staff account and its token, as `jiayuan users` / the admin API make them, with
        // the production Argon2id parameters.
        let auth_config = AuthSettings::default();
        let known: Vec<String> = engine.plugins().handles().map(|h| h.id().to_owned()).collect();
        let now = clock.now();
        let draft = AccountDraft {
            login: "bench-staff".into(),
            display_name: "基准物业员工".into(),
            role: Role::FirmStaff,
            scope: AccountScope::Firm(firm),
            items: Some(vec![ITEM.to_owned()]),
            password: Some("bench-password-2026".into()),
            agency_unit: None,
        };
        let account = accounts::create_account(store, &auth_config, draft, &known, "system:bench", now)
            .await
            .expect("firm_staff account");
        let token =
            accounts::issue_token(store, account.id, "bench", None, "system:bench", now).await.expect("token").token;
        let caller = Caller::account(&account.login, account.role, &account.scope, account.items.clone());
        let auth = Auth::new(store.clone(), clock, auth_config).await.expect("auth");
        let router = jiayuan_server::router(engine.clone(), auth);
        Setup { engine, router, estate, pairs, token, caller }
    }
}

/// The dog registered for an owner and house (chip number `chip`): the same data for the engine
/// and over HTTP.
fn dog_data((house, owner): (i64, i64), chip: u64) -> Value {
    json!({"name": "旺财", "breed": "柯基犬", "sex": "male", "colour": "黄",
           "sterilised": true, "chip_no": format!("156{chip:012}"),
           "owner_id": owner, "house_id": house})
}

fn dog_request(estate: EstateId, pair: (i64, i64), chip: u64) -> CreateRequest {
    CreateRequest::new(ITEM, "dog", jiayuan_domain::Place::Estate(estate), dog_data(pair, chip))
}

/// One HTTP request, as the client sends it.
#[derive(Clone)]
struct Req {
    method: &'static str,
    path: String,
    token: Option<String>,
    body: Option<String>,
}

impl Req {
    fn get(path: &str, token: Option<&str>) -> Req {
        Req { method: "GET", path: path.to_owned(), token: token.map(str::to_owned), body: None }
    }

    fn create_dog(token: &str, estate: EstateId, pair: (i64, i64), chip: u64) -> Req {
        let body = json!({"kind": "dog", "estate_id": estate.0, "data": dog_data(pair, chip)}).to_string();
        Req {
            method: "POST",
            path: format!("/api/items/{ITEM}/records"),
            token: Some(token.to_owned()),
            body: Some(body),
        }
    }
}

/// A keep-alive HTTP/1.1 connection to a loopback server: just enough HTTP for these benchmarks
/// (the server's answers all carry `Content-Length`).
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).await.expect("connect to the bench server");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        Conn { stream, buf: Vec::with_capacity(64 * 1024) }
    }

    async fn send(&mut self, req: &Req) -> (u16, Vec<u8>) {
        let mut out = Vec::with_capacity(256 + req.body.as_ref().map_or(0, String::len));
        out.extend_from_slice(format!("{} {} HTTP/1.1\r\nhost: bench\r\n", req.method, req.path).as_bytes());
        if let Some(t) = &req.token {
            out.extend_from_slice(format!("authorization: Bearer {t}\r\n").as_bytes());
        }
        match &req.body {
            Some(b) => {
                out.extend_from_slice(
                    format!("content-type: application/json\r\ncontent-length: {}\r\n\r\n", b.len()).as_bytes(),
                );
                out.extend_from_slice(b.as_bytes());
            }
            None => out.extend_from_slice(b"\r\n"),
        }
        self.stream.write_all(&out).await.expect("write the request");
        let (status, head_end, length) = loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..end]).expect("an ASCII response head");
                let status = head.get(9..12).and_then(|s| s.parse().ok()).expect("a status line");
                let length = head
                    .lines()
                    .filter_map(|l| l.split_once(':'))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                    .map(|(_, v)| v.trim().parse::<usize>().expect("a numeric content-length"))
                    .expect("the server answers with a content-length");
                break (status, end + 4, length);
            }
            self.fill().await;
        };
        while self.buf.len() < head_end + length {
            self.fill().await;
        }
        let body = self.buf[head_end..head_end + length].to_vec();
        self.buf.drain(..head_end + length);
        (status, body)
    }

    async fn fill(&mut self) {
        let n = self.stream.read_buf(&mut self.buf).await.expect("read the response");
        assert!(n > 0, "the bench server closed the connection");
    }
}

/// How requests reach the router.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Transport {
    /// A loopback TCP server.
    Tcp,
    /// `tower::ServiceExt::oneshot` on the router, in-process.
    Oneshot,
}

/// A client bound to one transport.
enum Client {
    Tcp(Conn),
    Oneshot(Router),
}

impl Client {
    async fn send(&mut self, req: &Req) -> (u16, Vec<u8>) {
        match self {
            Client::Tcp(conn) => conn.send(req).await,
            Client::Oneshot(router) => {
                let mut r = Request::builder().method(req.method).uri(&req.path);
                if let Some(t) = &req.token {
                    r = r.header("authorization", format!("Bearer {t}"));
                }
                let r = match &req.body {
                    Some(b) => r.header("content-type", "application/json").body(Body::from(b.clone())),
                    None => r.body(Body::empty()),
                }
                .expect("request");
                let res = router.clone().oneshot(r).await.expect("the router answers");
                let status = res.status().as_u16();
                let body = res.into_body().collect().await.expect("response body").to_bytes();
                (status, body.to_vec())
            }
        }
    }
}

/// A router served on a loopback port the way `jiayuan_server::serve` serves it, until dropped.
struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(router: Router) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
                .expect("the bench server runs");
        });
        Server { addr, stop: Some(stop), task }
    }

    /// Stops accepting and waits for the open connections to close (drop the clients first).
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// `n` clients of `router` over `transport` (and the server, for TCP).
async fn clients(transport: Transport, router: &Router, n: usize) -> (Vec<Client>, Option<Server>) {
    match transport {
        Transport::Oneshot => ((0..n).map(|_| Client::Oneshot(router.clone())).collect(), None),
        Transport::Tcp => {
            let server = Server::start(router.clone()).await;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                out.push(Client::Tcp(Conn::open(server.addr).await));
            }
            (out, Some(server))
        }
    }
}

/// Runs `op(state, i)` for `i` in `0..iters` with one tokio task per state, each taking the next
/// index as it finishes one: one state is sequential, [`IN_FLIGHT`] states keep that many in flight.
async fn run<S, F, Fut>(iters: u64, states: Vec<S>, op: F) -> Vec<S>
where
    S: Send + 'static,
    F: Fn(S, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = S> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = states
        .into_iter()
        .map(|mut state| {
            let (op, next) = (op.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= iters {
                        break state;
                    }
                    state = op(state, i).await;
                }
            })
        })
        .collect();
    let mut states = Vec::with_capacity(tasks.len());
    for task in tasks {
        states.push(task.await.expect("a benchmark task panicked"));
    }
    states
}

/// What a create benchmark drives.
#[derive(Clone, Copy)]
enum CreateVia {
    Engine,
    Http(Transport),
}

/// One timed batch of `iters` dog registrations, `in_flight` at a time, on a fresh host.
fn create_batch(rt: &Runtime, via: CreateVia, iters: u64, in_flight: usize) -> Duration {
    let dir = tempfile::tempdir().expect("tempdir");
    rt.block_on(async {
        let setup = Arc::new(Setup::new(dir.path(), iters as usize).await);
        let (elapsed, server) = match via {
            CreateVia::Engine => {
                let start = Instant::now();
                let s = setup.clone();
                run(iters, vec![(); in_flight], move |(), i| {
                    let s = s.clone();
                    async move {
                        let req = dog_request(s.estate, s.pairs[i as usize], i + 1);
                        s.engine.create(&s.caller, req).await.expect("dog registers");
                    }
                })
                .await;
                (start.elapsed(), None)
            }
            CreateVia::Http(transport) => {
                let (clients, server) = clients(transport, &setup.router, in_flight).await;
                let start = Instant::now();
                let s = setup.clone();
                let clients = run(iters, clients, move |mut client, i| {
                    let s = s.clone();
                    async move {
                        let req = Req::create_dog(&s.token, s.estate, s.pairs[i as usize], i + 1);
                        let (status, body) = client.send(&req).await;
                        assert_eq!(status, 201, "dog registers: {}", String::from_utf8_lossy(&body));
                        client
                    }
                })
                .await;
                let elapsed = start.elapsed();
                drop(clients);
                (elapsed, server)
            }
        };
        if let Some(server) = server {
            server.stop().await;
        }
        elapsed
    })
}

fn create(c: &mut Criterion, rt: &Runtime) {
    let mut g = c.benchmark_group("http_create");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    let cases = [
        ("engine_dog", CreateVia::Engine),
        ("tcp_dog", CreateVia::Http(Transport::Tcp)),
        ("oneshot_dog", CreateVia::Http(Transport::Oneshot)),
    ];
    for (name, via) in cases {
        g.bench_function(name, |b| b.iter_custom(|iters| create_batch(rt, via, iters, 1)));
    }
    for (name, via) in cases {
        g.bench_function(format!("{name}_concurrent"), |b| {
            b.iter_custom(|iters| create_batch(rt, via, iters, IN_FLIGHT))
        });
    }
    g.finish();
}

/// `GET /hello` → `hello`: the baseline of the list benchmark.
fn hello_router() -> Router {
    Router::new().route("/hello", axum::routing::get(|| async { "hello" }))
}

fn list(c: &mut Criterion, rt: &Runtime) {
    let dir = tempfile::tempdir().expect("tempdir");
    let setup = rt.block_on(async {
        let s = Setup::new(dir.path(), LISTED_DOGS).await;
        for (i, &pair) in s.pairs.iter().enumerate() {
            s.engine.create(&s.caller, dog_request(s.estate, pair, i as u64 + 1)).await.expect("dog registers");
        }
        s
    });
    let list = Req::get(&format!("/api/items/{ITEM}/records?kind=dog&limit=50"), Some(&setup.token));
    let hello = Req::get("/hello", None);
    let mut g = c.benchmark_group("http_list");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    for transport in [Transport::Tcp, Transport::Oneshot] {
        let t = if transport == Transport::Tcp { "tcp" } else { "oneshot" };
        for (name, router, req) in
            [(format!("hello_{t}"), hello_router(), &hello), (format!("list_{t}"), setup.router.clone(), &list)]
        {
            let (mut clients, server) = rt.block_on(clients(transport, &router, 1));
            let mut client = clients.pop().expect("one client");
            // What is measured answers as it should: 200, and a full page of dogs (masked by the
            // manifest; no string field of a dog is personal, so the masking pass changes nothing).
            let (status, body) = rt.block_on(client.send(req));
            assert_eq!(status, 200, "{name}: {}", String::from_utf8_lossy(&body));
            if name.starts_with("list") {
                let page: Value = serde_json::from_slice(&body).expect("a JSON page");
                let records = page["records"].as_array().expect("records");
                assert_eq!(records.len(), 50, "a full page");
            }
            g.bench_function(name.as_str(), |b| {
                b.iter_custom(|iters| {
                    rt.block_on(async {
                        let start = Instant::now();
                        for _ in 0..iters {
                            let (status, _) = client.send(req).await;
                            assert_eq!(status, 200);
                        }
                        start.elapsed()
                    })
                })
            });
            drop(client);
            if let Some(server) = server {
                rt.block_on(server.stop());
            }
        }
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    // As in jiayuan-host's `platform`: two workers, shared by server and clients.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    create(c, &rt);
    list(c, &rt);
}

criterion_group!(http, benches);
criterion_main!(http);
