//! [`PluginHandle`]: how the host calls a loaded plugin — never while it is quarantined, always
//! through [`HostGuard`], always under the call timeout, counting the panics its guard caught.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiayuan_domain::Timestamp;
use jiayuan_plugin_api::{
    CreateCall, HostContext, KpiCall, KpiValue, Manifest, Outcome, PluginError, ServicePlugin, TransitionCall,
};
use tokio::time::Instant;

use super::registry::{LoadedInfo, now_timestamp};
use super::{CallError, Hook, HostGuard, PluginSettings};

/// Why and since when a plugin takes no calls.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Quarantine {
    /// What happened, with the last panic message.
    pub reason: String,
    /// When the plugin was quarantined.
    pub since: Timestamp,
}

/// A loaded plugin. Cheap to clone; every clone shares the plugin, its panic count and its
/// quarantine.
#[derive(Clone)]
pub struct PluginHandle {
    inner: Arc<Inner>,
}

struct Inner {
    manifest: Manifest,
    plugin: Box<dyn ServicePlugin>,
    info: LoadedInfo,
    call_timeout: Duration,
    quarantine_after_panics: u32,
    quarantine_window: Duration,
    health: Mutex<Health>,
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
            .field("quarantine", &self.quarantine())
            .finish_non_exhaustive()
    }
}

type HookFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, PluginError>> + Send + 'a>>;

impl PluginHandle {
    pub(crate) fn new(
        plugin: Box<dyn ServicePlugin>,
        manifest: Manifest,
        info: LoadedInfo,
        settings: &PluginSettings,
    ) -> PluginHandle {
        PluginHandle {
            inner: Arc::new(Inner {
                manifest,
                plugin,
                info,
                call_timeout: settings.call_timeout,
                quarantine_after_panics: settings.quarantine_after_panics,
                quarantine_window: settings.quarantine_window,
                health: Mutex::new(Health::default()),
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
        self.health().quarantine.clone()
    }

    /// Calls [`ServicePlugin::on_create`].
    pub async fn on_create(&self, ctx: &dyn HostContext, call: CreateCall) -> Result<Outcome, CallError> {
        let guard = self.admit(ctx)?;
        let future = self.inner.plugin.on_create(&guard, call);
        self.finish(Hook::OnCreate, &guard, future).await
    }

    /// Calls [`ServicePlugin::on_transition`].
    pub async fn on_transition(&self, ctx: &dyn HostContext, call: TransitionCall) -> Result<Outcome, CallError> {
        let guard = self.admit(ctx)?;
        let future = self.inner.plugin.on_transition(&guard, call);
        self.finish(Hook::OnTransition, &guard, future).await
    }

    /// Calls [`ServicePlugin::kpis`].
    pub async fn kpis(&self, ctx: &dyn HostContext, call: KpiCall) -> Result<Vec<KpiValue>, CallError> {
        let guard = self.admit(ctx)?;
        let future = self.inner.plugin.kpis(&guard, call);
        self.finish(Hook::Kpis, &guard, future).await
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.inner.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Refuses calls into a quarantined plugin; guards the host's services.
    fn admit<'c>(&self, ctx: &'c dyn HostContext) -> Result<HostGuard<'c>, CallError> {
        if let Some(q) = &self.health().quarantine {
            return Err(CallError::Quarantined { plugin: self.id().to_owned(), reason: q.reason.clone() });
        }
        HostGuard::new(ctx).map_err(CallError::Plugin)
    }

    /// Runs the hook's future under the timeout and classifies its result.
    async fn finish<T>(&self, hook: Hook, guard: &HostGuard<'_>, future: HookFuture<'_, T>) -> Result<T, CallError> {
        let plugin = self.id();
        let Ok(result) = tokio::time::timeout(self.inner.call_timeout, future).await else {
            tracing::warn!(plugin, %hook, after = ?self.inner.call_timeout, "plugin call timed out and was cancelled");
            return Err(CallError::Timeout { plugin: plugin.to_owned(), hook, after: self.inner.call_timeout });
        };
        if let Err(PluginError::Panicked(message)) = result {
            self.count_panic(hook, &message);
            return Err(CallError::Panicked { plugin: plugin.to_owned(), hook, message });
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
            health.quarantine = Some(Quarantine { reason, since: now_timestamp() });
        }
    }
}

#[cfg(test)]
mod tests {
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

    #[tokio::test(start_paused = true)]
    async fn a_hanging_hook_times_out() {
        let (_, fixture) = fixture();
        let host = TestHost::new("{}");
        let err = fixture.on_create(&host, probe("hang")).await.expect_err("the hook never finishes");
        assert_eq!(
            err,
            CallError::Timeout { plugin: "fixture".into(), hook: Hook::OnCreate, after: Duration::from_secs(5) }
        );
        assert!(err.to_string().contains("did not finish on_create within 5s"), "{err}");
        assert_eq!(fixture.on_create(&host, probe("ok")).await, Ok(Outcome::accept()));
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

    #[tokio::test(start_paused = true)]
    async fn transition_and_kpi_hooks_misbehave_by_configuration() {
        let (_, fixture) = fixture();
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

    #[tokio::test(start_paused = true)]
    async fn repeated_panics_quarantine_the_plugin_until_restart() {
        let (registry, fixture) = fixture();
        let host = TestHost::new("{}");
        for _ in 0..2 {
            assert!(matches!(fixture.on_create(&host, probe("panic")).await, Err(CallError::Panicked { .. })));
            tokio::time::advance(Duration::from_secs(20)).await;
        }
        assert_eq!(fixture.quarantine(), None, "two panics are below the limit of three");
        assert!(matches!(fixture.on_create(&host, probe("panic")).await, Err(CallError::Panicked { .. })));
        let quarantine = fixture.quarantine().expect("the third panic within a minute quarantines");
        assert!(quarantine.reason.contains("panicked 3 times within 60s"), "{}", quarantine.reason);
        assert!(quarantine.reason.contains("fixture on_create asked to panic"), "{}", quarantine.reason);

        // Every hook is refused from now on, even ones that would succeed; time does not heal it.
        tokio::time::advance(Duration::from_secs(3600)).await;
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

    #[tokio::test(start_paused = true)]
    async fn panics_further_apart_than_the_window_do_not_quarantine() {
        let (_, fixture) = fixture();
        let host = TestHost::new("{}");
        for _ in 0..5 {
            assert!(matches!(fixture.on_create(&host, probe("panic")).await, Err(CallError::Panicked { .. })));
            tokio::time::advance(Duration::from_secs(31)).await;
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
