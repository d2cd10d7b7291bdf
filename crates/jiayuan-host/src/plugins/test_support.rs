//! Test doubles for the plugin module's tests: a [`HostContext`] whose services can be told to
//! panic, settings, and hand-written declarations.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use jiayuan_domain::{Date, Estate, EstateId, House, HouseId, PersonId, RecordId, Timestamp, Weekday};
use jiayuan_plugin_api::{
    Clock, CreateCall, HostContext, KpiCall, LogLevel, PluginError, Record, RecordQuery, RecordReader, RegistryReader,
    Scope, TransitionCall,
};

use super::PluginSettings;

/// Which host service panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    /// `scope()`.
    Scope,
    /// The futures of `records().get/query/count`.
    Records,
    /// `records()` itself.
    RecordsAccessor,
    /// `clock().now()` and the other clock methods.
    Clock,
    /// `log()`.
    Log,
}

/// A host whose services answer fixed values, or panic.
#[derive(Debug)]
pub(crate) struct TestHost {
    scope: Scope,
    config: String,
    panics: Option<Service>,
    logged: Mutex<Vec<String>>,
}

impl TestHost {
    /// What `clock().now()` answers.
    pub(crate) const NOW: Timestamp = Timestamp(1_764_300_000_000);
    /// What `records().count()` answers.
    pub(crate) const COUNT: u64 = 7;
    /// The message of every panic of this host.
    pub(crate) const PANIC: &'static str = "test host service exploded";

    /// A host with this plugin configuration whose services all work.
    pub(crate) fn new(config: &str) -> TestHost {
        TestHost {
            scope: Scope::new(Some(jiayuan_domain::Place::Estate(EstateId(1))), None, None, "test-request".into()),
            config: config.to_owned(),
            panics: None,
            logged: Mutex::new(Vec::new()),
        }
    }

    /// The same host, with `service` panicking.
    pub(crate) fn panicking(mut self, service: Service) -> TestHost {
        self.panics = Some(service);
        self
    }

    fn maybe_panic(&self, service: Service) {
        if self.panics == Some(service) {
            panic!("{}", TestHost::PANIC);
        }
    }

    /// Messages logged so far.
    pub(crate) fn logged(&self) -> Vec<String> {
        self.logged.lock().expect("log lock").clone()
    }
}

impl HostContext for TestHost {
    fn scope(&self) -> &Scope {
        self.maybe_panic(Service::Scope);
        &self.scope
    }

    fn records(&self) -> &dyn RecordReader {
        self.maybe_panic(Service::RecordsAccessor);
        self
    }

    fn registry(&self) -> &dyn RegistryReader {
        self
    }

    fn clock(&self) -> &dyn Clock {
        self
    }

    fn log(&self, _level: LogLevel, message: &str, _fields: &[(&str, &str)]) {
        self.maybe_panic(Service::Log);
        self.logged.lock().expect("log lock").push(message.to_owned());
    }

    fn config_json(&self) -> &str {
        &self.config
    }
}

#[async_trait]
impl RecordReader for TestHost {
    async fn get(&self, _id: RecordId) -> Result<Option<Record>, PluginError> {
        tokio_free_yield().await;
        self.maybe_panic(Service::Records);
        Ok(None)
    }

    async fn query(&self, _query: &RecordQuery) -> Result<Vec<Record>, PluginError> {
        tokio_free_yield().await;
        self.maybe_panic(Service::Records);
        Ok(Vec::new())
    }

    async fn count(&self, _query: &RecordQuery) -> Result<u64, PluginError> {
        tokio_free_yield().await;
        self.maybe_panic(Service::Records);
        Ok(TestHost::COUNT)
    }
}

#[async_trait]
impl RegistryReader for TestHost {
    async fn person(&self, _id: PersonId) -> Result<Option<jiayuan_plugin_api::PersonFacts>, PluginError> {
        Ok(None)
    }

    async fn house(&self, _id: HouseId) -> Result<Option<House>, PluginError> {
        Ok(None)
    }

    async fn estate(&self, _id: EstateId) -> Result<Option<Estate>, PluginError> {
        Ok(None)
    }
}

impl Clock for TestHost {
    fn now(&self) -> Timestamp {
        self.maybe_panic(Service::Clock);
        TestHost::NOW
    }

    fn is_working_day(&self, day: Date) -> bool {
        self.maybe_panic(Service::Clock);
        !matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday)
    }
}

/// Returns `Pending` once (waking itself), so host futures really are polled more than once.
async fn tokio_free_yield() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
}

/// Settings for tests: a 5 s timeout, quarantine after 3 panics within a minute.
pub(crate) fn settings(dir: &std::path::Path, allow: &[&str]) -> PluginSettings {
    PluginSettings {
        quarantine_window: Duration::from_secs(60),
        ..PluginSettings::new(dir.to_owned(), allow.iter().map(|s| (*s).to_owned()).collect())
    }
}

/// A create call for the fixture's `probe` kind in `mode`.
pub(crate) fn probe(mode: &str) -> CreateCall {
    CreateCall::new(
        "probe",
        jiayuan_domain::Place::Estate(EstateId(1)),
        format!(r#"{{"mode":"{mode}"}}"#),
        TestHost::NOW,
    )
}

/// A transition call on a fixture probe.
pub(crate) fn close() -> TransitionCall {
    let record = Record::new(
        RecordId(1),
        "probe",
        jiayuan_domain::Place::Estate(EstateId(1)),
        None,
        "open",
        r#"{"mode":"ok"}"#.into(),
        TestHost::NOW,
        TestHost::NOW,
        TestHost::NOW,
        TestHost::NOW,
        1,
    );
    TransitionCall::new(record, "close", "{}".into(), TestHost::NOW)
}

/// A KPI call.
pub(crate) fn kpi_call() -> KpiCall {
    let from = Date::from_ymd(2026, 1, 1).expect("valid date");
    let to = Date::from_ymd(2026, 12, 31).expect("valid date");
    KpiCall::new(EstateId(1), from, to, 100)
}
