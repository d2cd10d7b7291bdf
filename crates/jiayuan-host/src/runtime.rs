//! Starting a host: connect and migrate the store, load plugins, build the engine.

use std::sync::Arc;
use std::time::Duration;

use jiayuan_domain::Timestamp;
use jiayuan_domain::calendar::{CalendarError, WorkingCalendar};
use jiayuan_plugin_api::PluginDeclaration;
use jiayuan_store::{AuditTarget, MigrationReport, NewAlert, NewAudit, Store, StoreError, WriteBatch};

use crate::clock::{HostClock, SystemClock};
use crate::enablement::Enablement;
use crate::engine::Engine;
use crate::plugins::{PluginRegistry, PluginSource, PluginStatus, Quarantine};
use crate::settings::{Settings, SettingsError};

/// How often run-time enablement overrides are re-read from the database, so a change made on
/// one host instance reaches the others.
pub const ENABLEMENT_REFRESH: Duration = Duration::from_secs(5);

/// Why the host could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database is unreachable or could not be migrated.
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// No usable data key (see [`Settings::resolve_data_key`]).
    #[error(transparent)]
    DataKey(#[from] SettingsError),
    /// The holiday calendar in the configuration is inconsistent.
    #[error("configuration key `calendar.days`: {0}")]
    Calendar(#[from] CalendarError),
}

/// Start-up choices that are not settings.
#[derive(Debug)]
pub struct Options {
    /// The clock (tests and the demo use a manual one).
    pub clock: Arc<dyn HostClock>,
    /// Plugins linked into the binary, registered without dlopen (tests).
    pub static_plugins: Vec<&'static PluginDeclaration>,
    /// Whether to load the plugins found in `plugins.dir`.
    pub load_plugin_dir: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options { clock: Arc::new(SystemClock), static_plugins: Vec::new(), load_plugin_dir: true }
    }
}

/// A started host.
#[derive(Debug)]
pub struct Host {
    /// The settings it started with.
    pub settings: Settings,
    /// The record engine.
    pub engine: Arc<Engine>,
    /// What the migration step did.
    pub migrations: MigrationReport,
}

/// Resolves the data key ([`Settings::resolve_data_key`]: for a fresh embedded SQLite database
/// this creates the key file), connects, migrates, loads plugins (failures are reported, not
/// fatal; each loaded plugin is audited as `plugin.load` by `system:host`) and builds the
/// engine.
pub async fn start(mut settings: Settings, options: Options) -> Result<Host, StartError> {
    let calendar = WorkingCalendar::new(settings.calendar.clone())?;
    settings.resolve_data_key()?;
    let store = Store::connect(&settings.database).await?;
    let migrations = store.migrate().await?;
    let mut registry = PluginRegistry::new(settings.plugins.clone());
    for decl in &options.static_plugins {
        if let Err(e) = registry.register_static(decl) {
            tracing::error!(error = %e, "static plugin refused");
        }
    }
    if options.load_plugin_dir
        && let Err(e) = registry.load_dir()
    {
        tracing::error!(error = %e, "no plugins loaded from the plugin directory");
    }
    for entry in registry.report() {
        if entry.is_healthy() {
            tracing::info!(plugin = %entry, "plugin ready");
        } else {
            tracing::error!(plugin = %entry, "plugin not loaded");
        }
    }
    audit_plugin_loads(&store, &registry, options.clock.now()).await?;
    registry.on_quarantine(quarantine_alert(store.clone(), options.clock.clone()));
    let registry = Arc::new(registry);
    let enablement = Enablement::new(settings.enablement.clone(), ENABLEMENT_REFRESH);
    let engine = Engine::new(
        store,
        registry,
        enablement,
        options.clock,
        calendar,
        settings.plugin_config.iter().map(|(k, v)| (k.clone(), v.clone())),
    );
    // Records written before the reference index existed get their index rows once.
    match engine.backfill_references().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(records = n, "reference index written for earlier records"),
        Err(crate::engine::EngineError::Store(e)) => return Err(StartError::Store(e)),
        Err(e) => tracing::warn!(error = %e, "could not index the references of earlier records"),
    }
    Ok(Host { settings, engine: Arc::new(engine), migrations })
}

/// Raises the district office's critical alert for a quarantine that is not a panic's (those are
/// raised by the engine, which sees the panic): the same rule and dedupe key, so one alert per
/// quarantine. Called from a plugin call on the runtime; the write runs in a task of its own.
fn quarantine_alert(store: Store, clock: Arc<dyn HostClock>) -> crate::plugins::QuarantineAlert {
    Arc::new(move |plugin: &str, q: &Quarantine| {
        let alert = NewAlert {
            plugin: plugin.to_owned(),
            record: None,
            estate_id: None,
            grid_cell: None,
            rule: "plugin_quarantined".into(),
            dedupe_key: format!("{plugin}/quarantined/{}", q.since.0),
            severity: "critical".into(),
            message_zh: format!("服务事项插件 `{plugin}` 已隔离至重启：{}", q.reason),
            message_en: format!("service-item plugin `{plugin}` is quarantined until restart: {}", q.reason),
            due_at: None,
            at: clock.now(),
        };
        let store = store.clone();
        let plugin = plugin.to_owned();
        let write = async move {
            let batch = WriteBatch { alerts: vec![alert], ..WriteBatch::default() };
            if let Err(e) = store.write(batch).await {
                tracing::error!(plugin, error = %e, "could not record the quarantine alert");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(write);
            }
            Err(_) => tracing::error!(plugin = %q.reason, "a quarantine outside the runtime raised no alert"),
        }
    })
}

/// Appends one `plugin.load` audit event per loaded plugin (id, version, sha256, source), in one
/// transaction.
async fn audit_plugin_loads(store: &Store, registry: &PluginRegistry, now: Timestamp) -> Result<(), StoreError> {
    let audit: Vec<NewAudit> = registry
        .report()
        .into_iter()
        .filter_map(|entry| {
            let PluginStatus::Loaded(info) = &entry.status else { return None };
            let source = match &info.source {
                PluginSource::Dynamic { path } => path.display().to_string(),
                PluginSource::Static => "static".to_owned(),
            };
            let detail = serde_json::json!({
                "plugin": entry.id,
                "version": info.version,
                "api_version": info.api_version,
                "sha256": info.sha256,
                "source": source,
            });
            Some(NewAudit {
                at: now,
                actor: "system:host".into(),
                action: "plugin.load".into(),
                target: AuditTarget::Object(format!("plugin/{}", entry.id)),
                estate_id: None,
                detail_json: detail.to_string(),
            })
        })
        .collect();
    store.write(WriteBatch { audit, ..WriteBatch::default() }).await.map(drop)
}
