//! [`HostGuard`]: the host's services, as handed to a plugin, with every host panic caught on the
//! host side.
//!
//! A panic is an unwind of *one* copy of std. When a host service panics while a plugin's code is
//! on the stack (the plugin polls the host's future, or calls `clock().now()`), the unwind would
//! cross the plugin's frames and its guard would meet a foreign exception: the process aborts. So
//! every method of [`HostContext`], [`RecordReader`], [`RegistryReader`] and [`Clock`] runs under
//! `catch_unwind` here, and async ones are polled under it.
//!
//! - Async services answer a caught panic with `PluginError::Host("host service panicked: …")`.
//! - Sync services cannot answer with an error, so they return a neutral value (the epoch for
//!   `now`, "not a working day", …). Whatever the plugin computes from it is discarded: the guard
//!   remembers the first panic and [`super::PluginHandle`] turns the whole call into that
//!   `PluginError::Host`, whatever the plugin returned.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use async_trait::async_trait;
use jiayuan_domain::{Date, Estate, EstateId, House, HouseId, PersonId, RecordId, Timestamp};
use jiayuan_plugin_api::export::panic_message;
use jiayuan_plugin_api::{
    Clock, HostContext, LogLevel, PluginError, Record, RecordQuery, RecordReader, RegistryReader, Scope,
};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, PluginError>> + Send + 'a>>;

/// The first host panic caught during one call.
#[derive(Debug, Default)]
struct PanicRecord(Mutex<Option<String>>);

impl PanicRecord {
    /// Remembers a caught panic of `service` and returns the error the plugin sees.
    fn caught(&self, service: &str, payload: &(dyn std::any::Any + Send)) -> PluginError {
        let text = format!("host service panicked: {service}: {}", panic_message(payload));
        tracing::error!(service, panic = %panic_message(payload), "a host service panicked during a plugin call");
        let mut first = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if first.is_none() {
            *first = Some(text.clone());
        }
        PluginError::Host(text)
    }

    fn first(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// Runs a sync host service under `catch_unwind`; `None` after a (recorded) panic.
fn sync<T>(panics: &PanicRecord, service: &str, f: impl FnOnce() -> T) -> Option<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => Some(v),
        Err(payload) => {
            panics.caught(service, &*payload);
            None
        }
    }
}

/// Creates and polls an async host service's future under `catch_unwind`; its drop is guarded too.
async fn guarded<'a, T>(
    panics: &PanicRecord,
    service: &str,
    make: impl FnOnce() -> BoxFuture<'a, T>,
) -> Result<T, PluginError> {
    let future = match catch_unwind(AssertUnwindSafe(make)) {
        Ok(f) => f,
        Err(payload) => return Err(panics.caught(service, &*payload)),
    };
    CatchUnwind { inner: Some(future), panics, service }.await
}

/// Polls a host future under `catch_unwind`, and drops it under `catch_unwind`.
struct CatchUnwind<'a, 'p, T> {
    inner: Option<BoxFuture<'a, T>>,
    panics: &'p PanicRecord,
    service: &'p str,
}

impl<T> Future for CatchUnwind<'_, '_, T> {
    type Output = Result<T, PluginError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(future) = self.inner.as_mut() else {
            return Poll::Ready(Err(PluginError::Host(format!(
                "host service {} polled after it finished",
                self.service
            ))));
        };
        match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(result)) => {
                self.inner = None;
                Poll::Ready(result)
            }
            Err(payload) => {
                let future = self.inner.take();
                let _ = catch_unwind(AssertUnwindSafe(move || drop(future)));
                Poll::Ready(Err(self.panics.caught(self.service, &*payload)))
            }
        }
    }
}

impl<T> Drop for CatchUnwind<'_, '_, T> {
    fn drop(&mut self) {
        // A cancelled call drops the host future from inside the plugin's future: a panic in its
        // destructor must not unwind into the plugin either.
        if let Some(future) = self.inner.take()
            && let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(future)))
        {
            self.panics.caught(self.service, &*payload);
        }
    }
}

/// A [`HostContext`] that forwards to the host's own and catches its panics. Built by
/// [`super::PluginHandle`] for every call; public for callers that drive a plugin themselves.
pub struct HostGuard<'a> {
    inner: &'a dyn HostContext,
    scope: Scope,
    config_json: String,
    records: GuardedRecords<'a>,
    registry: GuardedRegistry<'a>,
    clock: GuardedClock<'a>,
    panics: Arc<PanicRecord>,
}

impl<'a> HostGuard<'a> {
    /// Guards `inner`. Its scope and configuration are read (under the guard) up front; if that
    /// panics, the call cannot start and the error says so.
    pub fn new(inner: &'a dyn HostContext) -> Result<HostGuard<'a>, PluginError> {
        let panics = Arc::new(PanicRecord::default());
        let scope = sync(&panics, "scope", || inner.scope().clone());
        let config_json = sync(&panics, "config_json", || inner.config_json().to_owned());
        let (Some(scope), Some(config_json)) = (scope, config_json) else {
            return Err(PluginError::Host(panics.first().unwrap_or_default()));
        };
        Ok(HostGuard {
            inner,
            scope,
            config_json,
            records: GuardedRecords { inner, panics: panics.clone() },
            registry: GuardedRegistry { inner, panics: panics.clone() },
            clock: GuardedClock { inner, panics: panics.clone() },
            panics,
        })
    }

    /// The first host panic caught so far, as the error the call must end with.
    pub fn host_panic(&self) -> Option<PluginError> {
        self.panics.first().map(PluginError::Host)
    }
}

impl std::fmt::Debug for HostGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostGuard")
            .field("scope", &self.scope)
            .field("host_panic", &self.panics.first())
            .finish_non_exhaustive()
    }
}

/// The services behind a guard; `Debug` only names them.
macro_rules! opaque_debug {
    ($($name:ident),*) => {$(
        impl std::fmt::Debug for $name<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }
    )*};
}
opaque_debug!(GuardedRecords, GuardedRegistry, GuardedClock);

impl HostContext for HostGuard<'_> {
    fn scope(&self) -> &Scope {
        &self.scope
    }

    fn records(&self) -> &dyn RecordReader {
        &self.records
    }

    fn registry(&self) -> &dyn RegistryReader {
        &self.registry
    }

    fn clock(&self) -> &dyn Clock {
        &self.clock
    }

    fn log(&self, level: LogLevel, message: &str, fields: &[(&str, &str)]) {
        let inner = self.inner;
        sync(&self.panics, "log", || inner.log(level, message, fields));
    }

    fn config_json(&self) -> &str {
        &self.config_json
    }
}

struct GuardedRecords<'a> {
    inner: &'a dyn HostContext,
    panics: Arc<PanicRecord>,
}

#[async_trait]
impl RecordReader for GuardedRecords<'_> {
    async fn get(&self, id: RecordId) -> Result<Option<Record>, PluginError> {
        let inner = self.inner;
        guarded(&self.panics, "records.get", || inner.records().get(id)).await
    }

    async fn query(&self, query: &RecordQuery) -> Result<Vec<Record>, PluginError> {
        let inner = self.inner;
        guarded(&self.panics, "records.query", || inner.records().query(query)).await
    }

    async fn count(&self, query: &RecordQuery) -> Result<u64, PluginError> {
        let inner = self.inner;
        guarded(&self.panics, "records.count", || inner.records().count(query)).await
    }
}

struct GuardedRegistry<'a> {
    inner: &'a dyn HostContext,
    panics: Arc<PanicRecord>,
}

#[async_trait]
impl RegistryReader for GuardedRegistry<'_> {
    async fn person(&self, id: PersonId) -> Result<Option<jiayuan_plugin_api::PersonFacts>, PluginError> {
        let inner = self.inner;
        guarded(&self.panics, "registry.person", || inner.registry().person(id)).await
    }

    async fn house(&self, id: HouseId) -> Result<Option<House>, PluginError> {
        let inner = self.inner;
        guarded(&self.panics, "registry.house", || inner.registry().house(id)).await
    }

    async fn estate(&self, id: EstateId) -> Result<Option<Estate>, PluginError> {
        let inner = self.inner;
        guarded(&self.panics, "registry.estate", || inner.registry().estate(id)).await
    }
}

struct GuardedClock<'a> {
    inner: &'a dyn HostContext,
    panics: Arc<PanicRecord>,
}

impl Clock for GuardedClock<'_> {
    fn now(&self) -> Timestamp {
        let inner = self.inner;
        sync(&self.panics, "clock.now", || inner.clock().now()).unwrap_or(Timestamp(0))
    }

    fn today(&self) -> Date {
        let inner = self.inner;
        sync(&self.panics, "clock.today", || inner.clock().today()).unwrap_or(Date::from_days_since_epoch(0))
    }

    fn is_working_day(&self, day: Date) -> bool {
        let inner = self.inner;
        sync(&self.panics, "clock.is_working_day", || inner.clock().is_working_day(day)).unwrap_or(false)
    }

    fn add_working_days(&self, day: Date, n: i32) -> Date {
        let inner = self.inner;
        sync(&self.panics, "clock.add_working_days", || inner.clock().add_working_days(day, n)).unwrap_or(day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::test_support::{Service, TestHost};

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().expect("a test runtime").block_on(f)
    }

    #[test]
    fn without_panics_every_service_is_forwarded() {
        let host = TestHost::new(r#"{"k":1}"#);
        let guard = HostGuard::new(&host).expect("scope and config are readable");
        assert_eq!(guard.scope(), host.scope());
        assert_eq!(guard.config_json(), r#"{"k":1}"#);
        assert_eq!(guard.clock().now(), TestHost::NOW);
        let day = Date::from_ymd(2026, 11, 28).expect("valid date");
        assert!(!guard.clock().is_working_day(day), "a Saturday");
        assert_eq!(guard.clock().add_working_days(day, 1), day.add_days(2));
        assert_eq!(block_on(guard.records().count(&RecordQuery::default())), Ok(TestHost::COUNT));
        assert_eq!(block_on(guard.registry().person(PersonId(1))), Ok(None));
        guard.log(LogLevel::Info, "hello", &[("k", "v")]);
        assert_eq!(host.logged(), ["hello"]);
        assert_eq!(guard.host_panic(), None);
    }

    #[test]
    fn an_async_service_panic_becomes_a_host_error() {
        let host = TestHost::new("{}").panicking(Service::Records);
        let guard = HostGuard::new(&host).expect("scope and config are readable");
        let err = block_on(guard.records().count(&RecordQuery::default())).expect_err("the service panicked");
        let PluginError::Host(text) = &err else { panic!("expected a host error, got {err:?}") };
        assert!(text.starts_with("host service panicked: records.count: "), "{text}");
        assert!(text.contains(TestHost::PANIC), "{text}");
        assert_eq!(guard.host_panic(), Some(err));
    }

    #[test]
    fn a_panic_while_creating_the_future_is_caught_too() {
        let host = TestHost::new("{}").panicking(Service::RecordsAccessor);
        let guard = HostGuard::new(&host).expect("scope and config are readable");
        let err = block_on(guard.records().get(RecordId(1))).expect_err("records() panicked");
        assert!(matches!(&err, PluginError::Host(t) if t.starts_with("host service panicked: records.get")), "{err:?}");
    }

    #[test]
    fn a_sync_service_panic_returns_a_neutral_value_and_is_remembered() {
        let host = TestHost::new("{}").panicking(Service::Clock);
        let guard = HostGuard::new(&host).expect("scope and config are readable");
        assert_eq!(guard.clock().now(), Timestamp(0));
        let day = Date::from_ymd(2026, 11, 30).expect("valid date");
        assert!(!guard.clock().is_working_day(day));
        assert_eq!(guard.clock().add_working_days(day, 3), day);
        let Some(PluginError::Host(text)) = guard.host_panic() else { panic!("the panic was not remembered") };
        assert!(text.starts_with("host service panicked: clock.now: "), "{text}");
    }

    #[test]
    fn a_logger_panic_is_swallowed_and_remembered() {
        let host = TestHost::new("{}").panicking(Service::Log);
        let guard = HostGuard::new(&host).expect("scope and config are readable");
        guard.log(LogLevel::Warn, "boom", &[]);
        assert!(matches!(guard.host_panic(), Some(PluginError::Host(t)) if t.contains("log")));
    }

    #[test]
    fn a_scope_panic_refuses_the_call_up_front() {
        let host = TestHost::new("{}").panicking(Service::Scope);
        let err = HostGuard::new(&host).expect_err("scope() panicked");
        assert!(matches!(&err, PluginError::Host(t) if t.starts_with("host service panicked: scope: ")), "{err:?}");
    }
}
