//! The host's services as a plugin sees them when its code runs away from the caller: on the
//! plugin's own threads, or in a child process.
//!
//! The plugin gets a [`RemoteContext`]. What the call already holds is answered on the plugin's
//! side without a hop: the [`Snapshot`] taken when the call starts (scope, configuration, the
//! clock's `now`) and the call's own cache of registry and calendar answers. Everything else is a
//! [`HostRequest`] sent [`Upstream`] to the caller, which serves it on the runtime through the
//! host's real (guarded) [`HostContext`] with [`serve`] and answers with a [`HostReply`]. Every
//! future synchronous context method follows the same rule: in the snapshot, or a request.
//!
//! The types are serde data so the same requests cross a pipe to a child process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use jiayuan_domain::{Date, Estate, EstateId, House, HouseId, PersonId, RecordId, Timestamp};
use jiayuan_plugin_api::{
    Clock, HostContext, LogLevel, PersonFacts, PluginError, Record, RecordQuery, RecordReader, RegistryReader, Scope,
};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

/// What a call holds when it starts; sent with the call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    /// [`HostContext::scope`].
    pub(crate) scope: Scope,
    /// [`HostContext::config_json`].
    pub(crate) config_json: String,
    /// [`Clock::now`] when the call started.
    pub(crate) now: Timestamp,
}

impl Snapshot {
    /// Takes the snapshot from the (guarded) context of the call.
    pub(crate) fn of(ctx: &dyn HostContext) -> Snapshot {
        Snapshot { scope: ctx.scope().clone(), config_json: ctx.config_json().to_owned(), now: ctx.clock().now() }
    }
}

/// A service the plugin's side asks the caller for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum HostRequest {
    /// [`RecordReader::get`].
    RecordGet(RecordId),
    /// [`RecordReader::query`].
    RecordQuery(RecordQuery),
    /// [`RecordReader::count`].
    RecordCount(RecordQuery),
    /// [`RegistryReader::person`].
    Person(PersonId),
    /// [`RegistryReader::house`].
    House(HouseId),
    /// [`RegistryReader::estate`].
    Estate(EstateId),
    /// [`Clock::is_working_day`].
    IsWorkingDay(Date),
    /// [`Clock::add_working_days`].
    AddWorkingDays(Date, i32),
    /// [`HostContext::log`]; answered with [`HostReply::Logged`], which nobody waits for.
    Log {
        /// The level.
        level: LogLevel,
        /// The message.
        message: String,
        /// Its fields.
        fields: Vec<(String, String)>,
    },
}

/// The caller's answer to a [`HostRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum HostReply {
    /// To `RecordGet`.
    Record(Result<Option<Record>, PluginError>),
    /// To `RecordQuery`.
    Records(Result<Vec<Record>, PluginError>),
    /// To `RecordCount`.
    Count(Result<u64, PluginError>),
    /// To `Person`.
    Person(Result<Option<PersonFacts>, PluginError>),
    /// To `House`.
    House(Result<Option<House>, PluginError>),
    /// To `Estate`.
    Estate(Result<Option<Estate>, PluginError>),
    /// To `IsWorkingDay`.
    WorkingDay(bool),
    /// To `AddWorkingDays`.
    Day(Date),
    /// To `Log`.
    Logged,
}

/// Serves one request through the caller's context (on the runtime, in the caller's task).
pub(crate) async fn serve(ctx: &dyn HostContext, request: HostRequest) -> HostReply {
    match request {
        HostRequest::RecordGet(id) => HostReply::Record(ctx.records().get(id).await),
        HostRequest::RecordQuery(q) => HostReply::Records(ctx.records().query(&q).await),
        HostRequest::RecordCount(q) => HostReply::Count(ctx.records().count(&q).await),
        HostRequest::Person(id) => HostReply::Person(ctx.registry().person(id).await),
        HostRequest::House(id) => HostReply::House(ctx.registry().house(id).await),
        HostRequest::Estate(id) => HostReply::Estate(ctx.registry().estate(id).await),
        HostRequest::IsWorkingDay(day) => HostReply::WorkingDay(ctx.clock().is_working_day(day)),
        HostRequest::AddWorkingDays(day, n) => HostReply::Day(ctx.clock().add_working_days(day, n)),
        HostRequest::Log { level, message, fields } => {
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            ctx.log(level, &message, &fields);
            HostReply::Logged
        }
    }
}

/// Where a [`RemoteContext`] sends its requests.
pub(crate) trait Upstream: Send + Sync {
    /// Sends `request`; the receiver gets the answer, or is closed when the caller is gone.
    fn ask(&self, request: HostRequest) -> oneshot::Receiver<HostReply>;
}

/// Where the answer to one request goes: back to a plugin thread of this process, or into a
/// frame to the child process that asked.
pub(crate) type Responder = Box<dyn FnOnce(HostReply) + Send>;

/// One request on its way to the caller, with where its answer goes.
pub(crate) type Ask = (HostRequest, Responder);

/// Upstream to a caller in this process: an unbounded channel into the caller's task.
impl Upstream for tokio::sync::mpsc::UnboundedSender<Ask> {
    fn ask(&self, request: HostRequest) -> oneshot::Receiver<HostReply> {
        let (tx, rx) = oneshot::channel();
        let respond: Responder = Box::new(move |reply| {
            let _ = tx.send(reply);
        });
        // A closed channel drops the responder: the receiver reports the caller gone.
        let _ = self.send((request, respond));
        rx
    }
}

/// The error a plugin sees when the caller gave up on its call.
fn gone() -> PluginError {
    PluginError::Host("the call was abandoned by the host (it ran past its timeout)".into())
}

fn unexpected(service: &str) -> PluginError {
    PluginError::Host(format!("host service {service} answered with the wrong kind of reply"))
}

/// The plugin's side of a call's context.
pub(crate) struct RemoteContext {
    snapshot: Snapshot,
    upstream: Arc<dyn Upstream>,
    persons: Mutex<HashMap<PersonId, Option<PersonFacts>>>,
    houses: Mutex<HashMap<HouseId, Option<House>>>,
    estates: Mutex<HashMap<EstateId, Option<Estate>>>,
    working_days: Mutex<HashMap<Date, bool>>,
}

impl std::fmt::Debug for RemoteContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteContext").field("scope", &self.snapshot.scope).finish_non_exhaustive()
    }
}

fn cached<K: std::hash::Hash + Eq, V: Clone>(cache: &Mutex<HashMap<K, V>>, key: &K) -> Option<V> {
    cache.lock().unwrap_or_else(PoisonError::into_inner).get(key).cloned()
}

fn remember<K: std::hash::Hash + Eq, V>(cache: &Mutex<HashMap<K, V>>, key: K, value: V) {
    cache.lock().unwrap_or_else(PoisonError::into_inner).insert(key, value);
}

impl RemoteContext {
    pub(crate) fn new(snapshot: Snapshot, upstream: Arc<dyn Upstream>) -> RemoteContext {
        RemoteContext {
            snapshot,
            upstream,
            persons: Mutex::default(),
            houses: Mutex::default(),
            estates: Mutex::default(),
            working_days: Mutex::default(),
        }
    }

    async fn ask(&self, request: HostRequest) -> Result<HostReply, PluginError> {
        self.upstream.ask(request).await.map_err(|_| gone())
    }

    /// A synchronous service from the plugin's own thread: waits for the answer (never on a
    /// runtime worker: this context only exists on plugin threads and in child processes).
    fn ask_blocking(&self, request: HostRequest) -> Option<HostReply> {
        super::threads::block_on(self.upstream.ask(request)).ok()
    }
}

impl HostContext for RemoteContext {
    fn scope(&self) -> &Scope {
        &self.snapshot.scope
    }

    fn records(&self) -> &dyn RecordReader {
        self
    }

    fn registry(&self) -> &dyn RegistryReader {
        self
    }

    fn clock(&self) -> &dyn Clock {
        self
    }

    fn log(&self, level: LogLevel, message: &str, fields: &[(&str, &str)]) {
        let fields = fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        // Nobody waits for the acknowledgement.
        drop(self.upstream.ask(HostRequest::Log { level, message: message.to_owned(), fields }));
    }

    fn config_json(&self) -> &str {
        &self.snapshot.config_json
    }
}

#[async_trait]
impl RecordReader for RemoteContext {
    async fn get(&self, id: RecordId) -> Result<Option<Record>, PluginError> {
        match self.ask(HostRequest::RecordGet(id)).await? {
            HostReply::Record(r) => r,
            _ => Err(unexpected("records.get")),
        }
    }

    async fn query(&self, query: &RecordQuery) -> Result<Vec<Record>, PluginError> {
        match self.ask(HostRequest::RecordQuery(query.clone())).await? {
            HostReply::Records(r) => r,
            _ => Err(unexpected("records.query")),
        }
    }

    async fn count(&self, query: &RecordQuery) -> Result<u64, PluginError> {
        match self.ask(HostRequest::RecordCount(query.clone())).await? {
            HostReply::Count(r) => r,
            _ => Err(unexpected("records.count")),
        }
    }
}

#[async_trait]
impl RegistryReader for RemoteContext {
    async fn person(&self, id: PersonId) -> Result<Option<PersonFacts>, PluginError> {
        if let Some(hit) = cached(&self.persons, &id) {
            return Ok(hit);
        }
        let row = match self.ask(HostRequest::Person(id)).await? {
            HostReply::Person(r) => r?,
            _ => return Err(unexpected("registry.person")),
        };
        remember(&self.persons, id, row.clone());
        Ok(row)
    }

    async fn house(&self, id: HouseId) -> Result<Option<House>, PluginError> {
        if let Some(hit) = cached(&self.houses, &id) {
            return Ok(hit);
        }
        let row = match self.ask(HostRequest::House(id)).await? {
            HostReply::House(r) => r?,
            _ => return Err(unexpected("registry.house")),
        };
        remember(&self.houses, id, row.clone());
        Ok(row)
    }

    async fn estate(&self, id: EstateId) -> Result<Option<Estate>, PluginError> {
        if let Some(hit) = cached(&self.estates, &id) {
            return Ok(hit);
        }
        let row = match self.ask(HostRequest::Estate(id)).await? {
            HostReply::Estate(r) => r?,
            _ => return Err(unexpected("registry.estate")),
        };
        remember(&self.estates, id, row.clone());
        Ok(row)
    }
}

impl Clock for RemoteContext {
    fn now(&self) -> Timestamp {
        self.snapshot.now
    }

    fn is_working_day(&self, day: Date) -> bool {
        if let Some(hit) = cached(&self.working_days, &day) {
            return hit;
        }
        // An abandoned call gets "not a working day"; nobody reads what it computes from it.
        let answer = matches!(self.ask_blocking(HostRequest::IsWorkingDay(day)), Some(HostReply::WorkingDay(true)));
        remember(&self.working_days, day, answer);
        answer
    }

    fn add_working_days(&self, day: Date, n: i32) -> Date {
        match self.ask_blocking(HostRequest::AddWorkingDays(day, n)) {
            Some(HostReply::Day(d)) => d,
            _ => day,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::test_support::TestHost;

    /// Serves every request of one call in a task, as a caller does.
    fn served(host: Arc<TestHost>) -> (Arc<dyn Upstream>, tokio::task::JoinHandle<usize>) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Ask>();
        let task = tokio::spawn(async move {
            let mut n = 0;
            while let Some((request, respond)) = rx.recv().await {
                n += 1;
                respond(serve(host.as_ref(), request).await);
            }
            n
        });
        (Arc::new(tx), task)
    }

    #[tokio::test]
    async fn the_snapshot_answers_without_a_hop_and_the_rest_is_served_by_the_caller() {
        let host = Arc::new(TestHost::new(r#"{"k":1}"#));
        let snapshot = Snapshot::of(host.as_ref());
        let (upstream, task) = served(host.clone());
        let ctx = RemoteContext::new(snapshot, upstream);
        let answers = tokio::task::spawn_blocking(move || {
            let day = Date::from_ymd(2026, 11, 28).expect("valid date");
            let answers = (
                ctx.scope().clone(),
                ctx.config_json().to_owned(),
                ctx.clock().now(),
                ctx.clock().is_working_day(day),
                ctx.clock().is_working_day(day),
                super::super::threads::block_on(ctx.records().count(&RecordQuery::default())),
                super::super::threads::block_on(ctx.registry().person(PersonId(1))),
                super::super::threads::block_on(ctx.registry().person(PersonId(1))),
            );
            ctx.log(LogLevel::Info, "hello", &[("k", "v")]);
            drop(ctx);
            answers
        })
        .await
        .expect("the plugin side ran");
        assert_eq!(&answers.0, host.scope());
        assert_eq!(answers.1, r#"{"k":1}"#);
        assert_eq!(answers.2, TestHost::NOW);
        assert!(!answers.3 && !answers.4, "a Saturday");
        assert_eq!(answers.5, Ok(TestHost::COUNT));
        assert_eq!((answers.6.clone(), answers.7.clone()), (Ok(None), Ok(None)));
        // Served: one calendar answer (the second is cached), the count, one person (cached), the log.
        assert_eq!(task.await.expect("the server ends"), 4);
        assert_eq!(host.logged(), ["hello"]);
    }

    #[test]
    fn a_gone_caller_answers_errors_and_neutral_values() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Ask>();
        drop(rx);
        let ctx = RemoteContext::new(
            Snapshot { scope: TestHost::new("{}").scope().clone(), config_json: "{}".into(), now: Timestamp(5) },
            Arc::new(tx),
        );
        let err = super::super::threads::block_on(ctx.records().get(RecordId(1))).expect_err("no caller");
        assert!(err.to_string().contains("abandoned"), "{err}");
        let day = Date::from_ymd(2026, 11, 30).expect("valid date");
        assert!(!ctx.clock().is_working_day(day));
        assert_eq!(ctx.clock().add_working_days(day, 3), day);
        assert_eq!(ctx.clock().now(), Timestamp(5));
    }
}
