//! [`PluginHandle`]: how the host calls a loaded plugin — never while it is quarantined, never on
//! the runtime's workers (the hook runs on the plugin's own threads, see
//! [`super::isolation::threads`]), always under the call timeout, its host services served by
//! the caller through [`HostGuard`], counting the panics the plugin's guard caught and the
//! threads left stuck by calls that ran past their timeout.

use std::collections::VecDeque;
use std::fmt;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use jiayuan_domain::Timestamp;
use jiayuan_plugin_api::{
    CreateCall, HostContext, KpiCall, KpiValue, Manifest, Outcome, PluginError, ServicePlugin, TransitionCall,
};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::isolation::process::{Dispatched, Finished, Runner};
use super::isolation::remote::{self, Ask, RemoteContext, Snapshot};
use super::isolation::threads::{PluginThreads, Ticket};
use super::isolation::{HookAnswer, HookCall, HookResult, Isolation, execute};
use super::registry::{LoadedInfo, now_timestamp};
use super::{CallError, Hook, HostGuard, LoadError, PluginSettings};

/// Why and since when a plugin takes no calls.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Quarantine {
    /// What happened, with the last panic message or the stuck threads.
    pub reason: String,
    /// When the plugin was quarantined.
    pub since: Timestamp,
}

/// Told of every quarantine that is not a panic's (those alert through the engine's call path):
/// the host raises the district office's alert from it.
pub type QuarantineAlert = Arc<dyn Fn(&str, &Quarantine) + Send + Sync>;

/// Where the registry keeps the [`QuarantineAlert`] its handles share.
pub(crate) type AlertSlot = Arc<OnceLock<QuarantineAlert>>;

/// How a plugin's calls are running: shown in `/api/plugins` and `jiayuan plugins list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallHealth {
    /// Where its hooks run.
    pub isolation: Isolation,
    /// How many threads it owns (in its child process, for process isolation).
    pub threads: usize,
    /// How many of them are stuck in calls abandoned at their timeout (process isolation kills
    /// the child instead, so never any there).
    pub stuck: usize,
    /// Process isolation: how many times its child was restarted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restarts: Option<u64>,
    /// Process isolation: the running child's pid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Process isolation: how the child is confined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
}

/// After the timeout, how long an abandoned running call gets to stop before its thread counts
/// as stuck. A hook that was only waiting stops at once.
const STOP_GRACE: Duration = Duration::from_millis(200);

/// A loaded plugin. Cheap to clone; every clone shares the plugin, its threads, its panic count
/// and its quarantine.
#[derive(Clone)]
pub struct PluginHandle {
    inner: Arc<Inner>,
}

struct Inner {
    manifest: Manifest,
    backend: Backend,
    info: LoadedInfo,
    call_timeout: Duration,
    quarantine_after_panics: u32,
    quarantine_window: Duration,
    health: Mutex<Health>,
    alert: AlertSlot,
}

/// Where the plugin's code runs.
enum Backend {
    /// Its own threads in this process.
    Threads { plugin: Arc<dyn ServicePlugin>, threads: PluginThreads },
    /// A child process.
    Process { runner: Runner, threads: usize, sandbox: String },
}

/// Where one call went.
enum Sent {
    Thread(Arc<Ticket>),
    Process(Dispatched),
}

#[derive(Default)]
struct Health {
    /// When the recent panics happened (within the window), oldest first.
    panics: VecDeque<Instant>,
    quarantine: Option<Quarantine>,
}

impl fmt::Debug for PluginHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginHandle")
            .field("id", &self.id())
            .field("info", &self.inner.info)
            .field("calls", &self.call_health())
            .field("quarantine", &self.quarantine())
            .finish_non_exhaustive()
    }
}

/// A plugin constructed on its own threads: the instance, its manifest and the threads.
pub(crate) struct Started {
    pub(crate) plugin: Arc<dyn ServicePlugin>,
    pub(crate) manifest: Manifest,
    pub(crate) threads: PluginThreads,
}

/// Starts the plugin's threads and runs its constructor and `manifest()` on one of them, under
/// the call timeout (plugin code never runs on the caller's thread, not even at load).
pub(crate) fn start_on_threads(
    id: &str,
    plugin: &str,
    create: fn() -> Result<Box<dyn ServicePlugin>, PluginError>,
    settings: &PluginSettings,
) -> Result<Started, LoadError> {
    let threads = PluginThreads::start(id, settings.threads)
        .map_err(|e| LoadError::Init { plugin: plugin.to_owned(), source: PluginError::Host(e.to_string()) })?;
    let (tx, rx) = std_mpsc::channel();
    let ticket = threads.submit(move |_| {
        let made = create().map(|instance| {
            let manifest = instance.manifest();
            (Arc::<dyn ServicePlugin>::from(instance), manifest)
        });
        let _ = tx.send(made);
    });
    match rx.recv_timeout(settings.call_timeout) {
        Ok(Ok((plugin, manifest))) => Ok(Started { plugin, manifest, threads }),
        Ok(Err(source)) => Err(LoadError::Init { plugin: plugin.to_owned(), source }),
        Err(_) => {
            ticket.abandon();
            ticket.mark_stuck();
            Err(LoadError::StartTimeout { plugin: plugin.to_owned(), after: settings.call_timeout })
        }
    }
}

impl PluginHandle {
    pub(crate) fn new(started: Started, info: LoadedInfo, settings: &PluginSettings, alert: AlertSlot) -> PluginHandle {
        let backend = Backend::Threads { plugin: started.plugin, threads: started.threads };
        PluginHandle::with_backend(backend, started.manifest, info, settings, alert)
    }

    /// A plugin running in a child process.
    pub(crate) fn new_process(
        runner: Runner,
        sandbox: String,
        manifest: Manifest,
        info: LoadedInfo,
        settings: &PluginSettings,
        alert: AlertSlot,
    ) -> PluginHandle {
        let backend = Backend::Process { runner, threads: settings.threads, sandbox };
        PluginHandle::with_backend(backend, manifest, info, settings, alert)
    }

    fn with_backend(
        backend: Backend,
        manifest: Manifest,
        info: LoadedInfo,
        settings: &PluginSettings,
        alert: AlertSlot,
    ) -> PluginHandle {
        PluginHandle {
            inner: Arc::new(Inner {
                manifest,
                backend,
                info,
                call_timeout: settings.call_timeout,
                quarantine_after_panics: settings.quarantine_after_panics,
                quarantine_window: settings.quarantine_window,
                health: Mutex::new(Health::default()),
                alert,
            }),
        }
    }

    /// The plugin id.
    pub fn id(&self) -> &str {
        &self.inner.manifest.id
    }

    /// The manifest, as read (and validated) at load.
    pub fn manifest(&self) -> &Manifest {
        &self.inner.manifest
    }

    /// Where the plugin came from and when it loaded.
    pub fn info(&self) -> &LoadedInfo {
        &self.inner.info
    }

    /// The quarantine, if the plugin is quarantined.
    pub fn quarantine(&self) -> Option<Quarantine> {
        self.promote_runner_quarantine();
        self.health().quarantine.clone()
    }

    /// A child process that died too often quarantines its plugin (and alerts) here.
    fn promote_runner_quarantine(&self) {
        if let Backend::Process { runner, .. } = &self.inner.backend
            && let Some(reason) = runner.quarantine()
        {
            self.quarantine_now(reason);
        }
    }

    /// Where its calls run and how many of its threads are stuck.
    pub fn call_health(&self) -> CallHealth {
        match &self.inner.backend {
            Backend::Threads { threads, .. } => CallHealth {
                isolation: Isolation::Threads,
                threads: threads.size(),
                stuck: threads.stuck(),
                restarts: None,
                pid: None,
                sandbox: None,
            },
            Backend::Process { runner, threads, sandbox } => CallHealth {
                isolation: Isolation::Process,
                threads: *threads,
                stuck: 0,
                restarts: Some(runner.restarts()),
                pid: runner.pid(),
                sandbox: Some(sandbox.clone()),
            },
        }
    }

    /// Runs a hook on the plugin's threads with no timeout, handing its result to `done` (the
    /// plugin runner's calls: its parent kills it when one runs too long).
    pub(crate) fn run_detached(
        &self,
        ctx: RemoteContext,
        call: HookCall,
        done: impl FnOnce(HookResult) + Send + 'static,
    ) {
        match &self.inner.backend {
            Backend::Threads { plugin, threads } => {
                let plugin = plugin.clone();
                threads.submit(move |_| {
                    if let Some(result) = execute(plugin.as_ref(), &ctx, call, || false) {
                        done(result);
                    }
                });
            }
            Backend::Process { .. } => {
                done(Err(PluginError::Host("a plugin runner cannot run a process-isolated plugin itself".into())));
            }
        }
    }

    /// Calls [`ServicePlugin::on_create`].
    pub async fn on_create(&self, ctx: &dyn HostContext, call: CreateCall) -> Result<Outcome, CallError> {
        match self.call(ctx, HookCall::Create(call)).await? {
            HookAnswer::Outcome(o) => Ok(o),
            HookAnswer::Kpis(_) => Err(self.mismatch(Hook::OnCreate)),
        }
    }

    /// Calls [`ServicePlugin::on_transition`].
    pub async fn on_transition(&self, ctx: &dyn HostContext, call: TransitionCall) -> Result<Outcome, CallError> {
        match self.call(ctx, HookCall::Transition(call)).await? {
            HookAnswer::Outcome(o) => Ok(o),
            HookAnswer::Kpis(_) => Err(self.mismatch(Hook::OnTransition)),
        }
    }

    /// Calls [`ServicePlugin::kpis`].
    pub async fn kpis(&self, ctx: &dyn HostContext, call: KpiCall) -> Result<Vec<KpiValue>, CallError> {
        match self.call(ctx, HookCall::Kpis(call)).await? {
            HookAnswer::Kpis(k) => Ok(k),
            HookAnswer::Outcome(_) => Err(self.mismatch(Hook::Kpis)),
        }
    }

    fn mismatch(&self, hook: Hook) -> CallError {
        CallError::Plugin(PluginError::Host(format!(
            "plugin `{}` answered {hook} with another hook's answer",
            self.id()
        )))
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.inner.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Refuses calls into a quarantined plugin; guards the host's services.
    fn admit<'c>(&self, ctx: &'c dyn HostContext) -> Result<HostGuard<'c>, CallError> {
        self.promote_runner_quarantine();
        if let Some(q) = &self.health().quarantine {
            return Err(CallError::Quarantined { plugin: self.id().to_owned(), reason: q.reason.clone() });
        }
        HostGuard::new(ctx).map_err(CallError::Plugin)
    }

    /// Runs one hook on the plugin's threads, serving its host requests here (on the runtime)
    /// until it answers or the timeout passes.
    async fn call(&self, ctx: &dyn HostContext, call: HookCall) -> Result<HookAnswer, CallError> {
        let hook = call.hook();
        let guard = self.admit(ctx)?;
        let snapshot = Snapshot::of(&guard);
        if let Some(host) = guard.host_panic() {
            return Err(CallError::Plugin(host));
        }
        let (ask_tx, mut asks) = mpsc::unbounded_channel::<Ask>();
        let (done_tx, mut done) = oneshot::channel::<Finished>();
        let mut sent = None;
        let served = tokio::time::timeout(self.inner.call_timeout, async {
            sent = Some(self.send(call, snapshot, ask_tx, done_tx).await?);
            loop {
                tokio::select! {
                    biased;
                    result = &mut done => {
                        // Requests sent before the answer (log lines nobody waited for).
                        while let Ok((request, respond)) = asks.try_recv() {
                            respond(remote::serve(&guard, request).await);
                        }
                        return Ok::<_, String>(result.ok());
                    }
                    Some((request, respond)) = asks.recv() => {
                        respond(remote::serve(&guard, request).await);
                    }
                }
            }
        })
        .await;
        let plugin = self.id().to_owned();
        match served {
            Ok(Ok(Some(Ok(result)))) => self.classify(hook, &guard, result),
            Ok(Ok(Some(Err(cause)))) => {
                self.promote_runner_quarantine();
                Err(CallError::Died { plugin, hook, cause })
            }
            Ok(Ok(None)) => {
                Err(CallError::Plugin(PluginError::Host(format!("plugin `{plugin}` ended {hook} without an answer"))))
            }
            Ok(Err(reason)) => {
                self.quarantine_now(reason.clone());
                Err(CallError::Quarantined { plugin, reason })
            }
            Err(_) => {
                match sent {
                    Some(Sent::Thread(ticket)) => self.abandon(hook, &ticket, done).await,
                    Some(Sent::Process(dispatched)) => {
                        if let Backend::Process { runner, .. } = &self.inner.backend {
                            let why = format!("{hook} ran past the {:?} timeout", self.inner.call_timeout);
                            tracing::error!(plugin, %hook, "plugin call timed out; killing its process");
                            runner.kill_hung(dispatched, why);
                        }
                    }
                    None => tracing::warn!(plugin, %hook, "plugin call timed out waiting for its process to restart"),
                }
                Err(CallError::Timeout { plugin, hook, after: self.inner.call_timeout })
            }
        }
    }

    /// Hands a call to where the plugin runs. `Err` with the reason when its process is
    /// quarantined.
    async fn send(
        &self,
        call: HookCall,
        snapshot: Snapshot,
        asks: mpsc::UnboundedSender<Ask>,
        done: oneshot::Sender<Finished>,
    ) -> Result<Sent, String> {
        match &self.inner.backend {
            Backend::Threads { plugin, threads } => {
                let plugin = plugin.clone();
                let ticket = threads.submit(move |ticket: &Ticket| {
                    let ctx = RemoteContext::new(snapshot, Arc::new(asks));
                    if let Some(result) = execute(plugin.as_ref(), &ctx, call, || ticket.abandoned()) {
                        let _ = done.send(Ok(result));
                    }
                });
                Ok(Sent::Thread(ticket))
            }
            Backend::Process { runner, .. } => runner.dispatch(call, snapshot, asks, done).await.map(Sent::Process),
        }
    }

    /// Gives up on a call past its timeout; counts its thread stuck if the hook does not stop,
    /// and quarantines the plugin when all its threads are stuck.
    async fn abandon(&self, hook: Hook, ticket: &Ticket, done: oneshot::Receiver<Finished>) {
        let plugin = self.id();
        let after = self.inner.call_timeout;
        if !ticket.abandon() {
            tracing::warn!(plugin, %hook, ?after, "plugin call timed out before a plugin thread was free; dropped");
            return;
        }
        // The job answers (or drops `done`) as soon as the hook returns.
        if tokio::time::timeout(STOP_GRACE, done).await.is_ok() || !ticket.mark_stuck() {
            tracing::warn!(plugin, %hook, ?after, "plugin call timed out and was cancelled");
            return;
        }
        let Backend::Threads { threads, .. } = &self.inner.backend else { return };
        let (stuck, size) = (threads.stuck(), threads.size());
        tracing::error!(plugin, %hook, ?after, stuck, threads = size, "plugin call timed out and its thread is stuck in the hook");
        if stuck >= size {
            self.quarantine_now(format!(
                "all {size} of its threads are stuck in calls that ran past the {after:?} timeout (last in {hook})"
            ));
        }
    }

    /// Quarantines the plugin (if it is not already) and raises the alert.
    fn quarantine_now(&self, reason: String) {
        let quarantine = {
            let mut health = self.health();
            if health.quarantine.is_some() {
                return;
            }
            let q = Quarantine { reason, since: now_timestamp() };
            health.quarantine = Some(q.clone());
            q
        };
        tracing::error!(plugin = self.id(), reason = %quarantine.reason, "plugin quarantined until the host restarts");
        if let Some(alert) = self.inner.alert.get() {
            alert(self.id(), &quarantine);
        }
    }

    /// Classifies a hook's result.
    fn classify(&self, hook: Hook, guard: &HostGuard<'_>, result: HookResult) -> Result<HookAnswer, CallError> {
        if let Err(PluginError::Panicked(message)) = result {
            self.count_panic(hook, &message);
            return Err(CallError::Panicked { plugin: self.id().to_owned(), hook, message });
        }
        // A host service panicked during the call: whatever the plugin made of the neutral value
        // (or the error) it got, the call failed.
        if let Some(host) = guard.host_panic() {
            return Err(CallError::Plugin(host));
        }
        result.map_err(CallError::Plugin)
    }

    /// Counts a caught panic; quarantines the plugin when the window holds too many.
    fn count_panic(&self, hook: Hook, message: &str) {
        let plugin = self.id();
        tracing::warn!(plugin, %hook, panic = message, "plugin panicked; its guard caught the panic");
        let limit = self.inner.quarantine_after_panics;
        if limit == 0 {
            return;
        }
        let now = Instant::now();
        let window = self.inner.quarantine_window;
        let mut health = self.health();
        health.panics.push_back(now);
        while health.panics.front().is_some_and(|t| now.duration_since(*t) > window) {
            health.panics.pop_front();
        }
        if health.quarantine.is_none() && health.panics.len() >= limit as usize {
            let reason = format!(
                "panicked {} times within {window:?} (limit {limit}); last panic in {hook}: {message}",
                health.panics.len()
            );
            tracing::error!(plugin, %reason, "plugin quarantined until the host restarts");
            // Panic quarantines alert through the engine, which sees the panic's error.
            health.quarantine = Some(Quarantine { reason, since: now_timestamp() });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use jiayuan_plugin_api::{KpiValue, PluginError};
    use jiayuan_plugin_fixture::DECLARATION as FIXTURE;

    use super::*;
    use crate::plugins::test_support::{Service, TestHost, close, kpi_call, probe, settings};
    use crate::plugins::{PluginRegistry, PluginStatus};

    fn fixture() -> (PluginRegistry, PluginHandle) {
        let mut registry = PluginRegistry::new(settings(std::path::Path::new("/nonexistent"), &[]));
        let handle = registry.register_static(&FIXTURE).expect("the fixture registers");
        (registry, handle)
    }

    #[test]
    fn handles_registries_and_calls_can_cross_threads() {
        fn shared<T: Send + Sync>(_: &T) {}
        fn sent<T: Send>(_: T) {}
        let (registry, fixture) = fixture();
        shared(&registry);
        shared(&fixture);
        let host = TestHost::new("{}");
        // The futures are only built (the servers spawn them), never polled here.
        sent(fixture.on_create(&host, probe("ok")));
        sent(fixture.on_transition(&host, close()));
        sent(fixture.kpis(&host, kpi_call()));
    }

    #[tokio::test]
    async fn a_good_call_answers() {
        let (_, fixture) = fixture();
        let host = TestHost::new("{}");
        assert_eq!(fixture.on_create(&host, probe("ok")).await, Ok(Outcome::accept()));
        assert_eq!(fixture.on_transition(&host, close()).await, Ok(Outcome::accept()));
        let kpis = fixture.kpis(&host, kpi_call()).await.expect("kpis answer");
        assert_eq!(kpis, vec![KpiValue::count("probes", 1.0)]);
    }

    #[tokio::test]
    async fn a_panicking_hook_returns_an_error_and_the_plugin_keeps_answering() {
        let (_, fixture) = fixture();
        let host = TestHost::new("{}");
        match fixture.on_create(&host, probe("panic")).await {
            Err(CallError::Panicked { plugin, hook: Hook::OnCreate, message }) => {
                assert_eq!(plugin, "fixture");
                assert_eq!(message, "fixture on_create asked to panic");
            }
            other => panic!("expected a caught panic, got {other:?}"),
        }
        assert_eq!(fixture.on_create(&host, probe("ok")).await, Ok(Outcome::accept()));
        assert_eq!(fixture.quarantine(), None);
    }

    #[tokio::test]
    async fn a_plugin_error_is_passed_through() {
        let (_, fixture) = fixture();
        let host = TestHost::new("{}");
        let err = fixture.on_create(&host, probe("error")).await.expect_err("the hook fails");
        assert_eq!(err, CallError::Plugin(PluginError::Internal("fixture on_create asked to fail".into())));
        let err = fixture.on_create(&host, probe("explode")).await.expect_err("unknown mode");
        assert!(matches!(err, CallError::Plugin(PluginError::Invalid(_))), "{err:?}");
    }

    /// The (plugin, reason) of every quarantine alert raised.
    type Alerts = Arc<Mutex<Vec<(String, String)>>>;

    /// The fixture with a short call timeout (not a speed limit: the hooks these tests time out
    /// never finish, or block far longer) on `threads` threads, and a recording alert.
    fn impatient(threads: usize) -> (PluginRegistry, PluginHandle, Alerts) {
        let mut s = settings(std::path::Path::new("/nonexistent"), &[]);
        s.call_timeout = Duration::from_secs(1);
        s.threads = threads;
        let mut registry = PluginRegistry::new(s);
        let alerts = Arc::new(Mutex::new(Vec::new()));
        let seen = alerts.clone();
        registry.on_quarantine(Arc::new(move |plugin: &str, q: &Quarantine| {
            seen.lock().expect("alerts").push((plugin.to_owned(), q.reason.clone()));
        }));
        let handle = registry.register_static(&FIXTURE).expect("the fixture registers");
        (registry, handle, alerts)
    }

    #[tokio::test]
    async fn a_hanging_hook_times_out_and_frees_its_thread() {
        let (_, fixture, _) = impatient(2);
        let host = TestHost::new("{}");
        let err = fixture.on_create(&host, probe("hang")).await.expect_err("the hook never finishes");
        assert_eq!(
            err,
            CallError::Timeout { plugin: "fixture".into(), hook: Hook::OnCreate, after: Duration::from_secs(1) }
        );
        assert!(err.to_string().contains("did not finish on_create within 1s"), "{err}");
        // A hook that only waits is dropped on its thread: nothing is stuck.
        assert_eq!(fixture.call_health().stuck, 0);
        assert_eq!(fixture.on_create(&host, probe("ok")).await, Ok(Outcome::accept()));
    }

    #[tokio::test]
    async fn hooks_that_block_their_thread_leave_it_stuck_and_all_stuck_quarantines() {
        let (registry, fixture, alerts) = impatient(2);
        // Sleeps and busy loops far longer than the timeout.
        let host = TestHost::new(r#"{"block_ms":20000}"#);
        let calls =
            [probe("sleep"), probe("sleep"), probe("sleep"), probe("sleep")].map(|c| fixture.on_create(&host, c));
        // This test runs on a single-threaded runtime: while the four calls are in flight it
        // still answers other work, since no hook runs on it.
        let (results, other) = tokio::join!(futures::future::join_all(calls), async {
            tokio::task::yield_now().await;
            "the runtime answered"
        });
        assert_eq!(other, "the runtime answered");
        for result in results {
            assert!(matches!(result, Err(CallError::Timeout { hook: Hook::OnCreate, .. })), "{result:?}");
        }
        let calls = fixture.call_health();
        assert_eq!((calls.isolation, calls.threads, calls.stuck), (Isolation::Threads, 2, 2));
        let quarantine = fixture.quarantine().expect("both threads stuck: quarantined");
        assert!(quarantine.reason.contains("all 2 of its threads are stuck"), "{}", quarantine.reason);
        assert_eq!(
            *alerts.lock().expect("alerts"),
            [("fixture".to_owned(), quarantine.reason.clone())],
            "alerted once"
        );
        assert!(matches!(fixture.on_create(&host, probe("ok")).await, Err(CallError::Quarantined { .. })));
        let report = registry.report();
        assert!(!report[0].is_healthy());
        assert_eq!(report[0].calls.as_ref().map(|c| c.stuck), Some(2), "{report:?}");
        assert!(report[0].to_string().contains("threads, 2 thread(s), 2 stuck"), "{}", report[0]);
    }

    #[tokio::test]
    async fn a_busy_loop_leaves_its_thread_stuck_until_it_returns() {
        let (registry, fixture, _) = impatient(1);
        let host = TestHost::new(r#"{"block_ms":3000}"#);
        let err = fixture.on_create(&host, probe("spin")).await.expect_err("it spins past the timeout");
        assert!(matches!(err, CallError::Timeout { .. }), "{err:?}");
        assert_eq!(fixture.call_health().stuck, 1);
        assert!(fixture.quarantine().is_some(), "its only thread is stuck");
        assert!(!registry.report()[0].is_healthy(), "a stuck thread makes the plugin unhealthy");
        // The loop ends on its own; the thread is counted free again (the quarantine stays).
        let freed = tokio::time::timeout(Duration::from_secs(60), async {
            while fixture.call_health().stuck > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(freed.is_ok(), "the spinning thread returned");
        assert!(fixture.quarantine().is_some(), "quarantine lasts until restart");
    }

    #[tokio::test]
    async fn a_host_service_panic_inside_a_call_becomes_a_host_error() {
        let (_, fixture) = fixture();
        // The records future panics while the plugin polls it.
        let host = TestHost::new("{}").panicking(Service::Records);
        let err = fixture.on_create(&host, probe("host_panic")).await.expect_err("the host panicked");
        let CallError::Plugin(PluginError::Host(text)) = &err else { panic!("expected a host error, got {err:?}") };
        assert!(text.starts_with("host service panicked: records.count: "), "{text}");
        // The clock panics synchronously; the plugin goes on with a neutral value and answers Ok,
        // but the call still fails.
        let host = TestHost::new("{}").panicking(Service::Clock);
        let err = fixture.on_create(&host, probe("host_panic")).await.expect_err("the host panicked");
        assert!(matches!(&err, CallError::Plugin(PluginError::Host(t)) if t.contains("clock.now")), "{err:?}");
        // Neither counts as a plugin panic.
        assert_eq!(fixture.on_create(&TestHost::new("{}"), probe("host_panic")).await, Ok(Outcome::accept()));
        assert_eq!(fixture.quarantine(), None);
    }

    #[tokio::test]
    async fn transition_and_kpi_hooks_misbehave_by_configuration() {
        let (_, fixture, _) = impatient(2);
        let host = TestHost::new(r#"{"on_transition":"panic","kpis":"hang"}"#);
        let err = fixture.on_transition(&host, close()).await.expect_err("panics");
        assert!(matches!(err, CallError::Panicked { hook: Hook::OnTransition, .. }), "{err:?}");
        let err = fixture.kpis(&host, kpi_call()).await.expect_err("hangs");
        assert!(matches!(err, CallError::Timeout { hook: Hook::Kpis, .. }), "{err:?}");
        let host = TestHost::new(r#"{"on_transition":"error","kpis":"host_panic"}"#).panicking(Service::Records);
        let err = fixture.on_transition(&host, close()).await.expect_err("fails");
        assert!(matches!(err, CallError::Plugin(PluginError::Internal(_))), "{err:?}");
        let err = fixture.kpis(&host, kpi_call()).await.expect_err("the host panics");
        assert!(matches!(err, CallError::Plugin(PluginError::Host(_))), "{err:?}");
    }

    /// Moves the (single-threaded) test runtime's clock forward; calls run with time flowing.
    async fn advance(by: Duration) {
        tokio::time::pause();
        tokio::time::advance(by).await;
        tokio::time::resume();
    }

    #[tokio::test]
    async fn repeated_panics_quarantine_the_plugin_until_restart() {
        let (registry, fixture) = fixture();
        let host = TestHost::new("{}");
        for _ in 0..2 {
            assert!(matches!(fixture.on_create(&host, probe("panic")).await, Err(CallError::Panicked { .. })));
            advance(Duration::from_secs(20)).await;
        }
        assert_eq!(fixture.quarantine(), None, "two panics are below the limit of three");
        assert!(matches!(fixture.on_create(&host, probe("panic")).await, Err(CallError::Panicked { .. })));
        let quarantine = fixture.quarantine().expect("the third panic within a minute quarantines");
        assert!(quarantine.reason.contains("panicked 3 times within 60s"), "{}", quarantine.reason);
        assert!(quarantine.reason.contains("fixture on_create asked to panic"), "{}", quarantine.reason);

        // Every hook is refused from now on, even ones that would succeed; time does not heal it.
        advance(Duration::from_secs(3600)).await;
        for result in [
            fixture.on_create(&host, probe("ok")).await.map(|_| ()),
            fixture.on_transition(&host, close()).await.map(|_| ()),
            fixture.kpis(&host, kpi_call()).await.map(|_| ()),
        ] {
            match result {
                Err(CallError::Quarantined { plugin, reason }) => {
                    assert_eq!(plugin, "fixture");
                    assert_eq!(reason, quarantine.reason);
                }
                other => panic!("expected a refusal, got {other:?}"),
            }
        }
        // Clones share the quarantine, and the report shows it.
        let clone = registry.handle("fixture").expect("still registered");
        assert_eq!(clone.quarantine(), Some(quarantine.clone()));
        let report = registry.report();
        assert!(
            matches!(&report[0].status, PluginStatus::Quarantined { reason, .. } if *reason == quarantine.reason),
            "{report:?}"
        );
    }

    #[tokio::test]
    async fn panics_further_apart_than_the_window_do_not_quarantine() {
        let (_, fixture) = fixture();
        let host = TestHost::new("{}");
        for _ in 0..5 {
            assert!(matches!(fixture.on_create(&host, probe("panic")).await, Err(CallError::Panicked { .. })));
            advance(Duration::from_secs(31)).await;
        }
        assert_eq!(fixture.quarantine(), None, "never more than two panics within 60s");
        assert_eq!(fixture.on_create(&host, probe("ok")).await, Ok(Outcome::accept()));
    }

    #[tokio::test]
    async fn a_limit_of_zero_never_quarantines() {
        let mut s = settings(std::path::Path::new("/nonexistent"), &[]);
        s.quarantine_after_panics = 0;
        let mut registry = PluginRegistry::new(s);
        let fixture = registry.register_static(&FIXTURE).expect("the fixture registers");
        let host = TestHost::new("{}");
        for _ in 0..10 {
            assert!(matches!(fixture.on_create(&host, probe("panic")).await, Err(CallError::Panicked { .. })));
        }
        assert_eq!(fixture.quarantine(), None);
    }

    #[tokio::test]
    async fn a_scope_panic_refuses_the_call_before_the_plugin_runs() {
        let (_, fixture) = fixture();
        let host = TestHost::new("{}").panicking(Service::Scope);
        let err = fixture.on_create(&host, probe("panic")).await.expect_err("scope() panicked");
        assert!(matches!(&err, CallError::Plugin(PluginError::Host(t)) if t.contains("scope")), "{err:?}");
    }
}
