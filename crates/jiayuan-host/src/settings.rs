//! Typed settings, loaded in layers: `config/default.toml` → `config/{env}.toml` → `JIAYUAN_*`
//! variables (`__` separates levels: `JIAYUAN_DATABASE__URL`).
//!
//! [`load`] is the one pure function that turns those layers into [`Settings`]: it reads the two
//! files, takes the variables it is *given* (the CLI passes the process environment; this crate
//! never reads it) and validates everything, naming the key of any bad value.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use jiayuan_domain::calendar::CalendarEntry;
use jiayuan_domain::{DivisionCode, EstateId, FirmId};
use jiayuan_store::{DatabaseSettings, redact_url};

use crate::plugins::PluginSettings;

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A layer could not be read or parsed.
    #[error("cannot read configuration from {dir}: {cause}")]
    Read {
        /// The config directory.
        dir: PathBuf,
        /// The config crate's error (names the file and key); part of the message.
        cause: config::ConfigError,
    },
    /// A value is present but unusable.
    #[error("configuration key `{key}`: {reason}")]
    Invalid {
        /// Dotted key, e.g. `enablement.streets.4403030040`.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Everything the host needs, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// HTTP listener.
    pub server: ServerSettings,
    /// Database.
    pub database: DatabaseSettings,
    /// Logging.
    pub log: LogSettings,
    /// Plugin loading.
    pub plugins: PluginSettings,
    /// Deadline scheduler.
    pub scheduler: SchedulerSettings,
    /// Which items are enabled where (the file layer; run-time overrides live in the database).
    pub enablement: EnablementSettings,
    /// Holidays and make-up workdays.
    pub calendar: Vec<CalendarEntry>,
    /// Each plugin's own configuration, as JSON text, by plugin id.
    pub plugin_config: BTreeMap<String, String>,
}

/// HTTP listener settings.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Address to listen on.
    pub listen: SocketAddr,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Logging settings (applied by the CLI, which owns the subscriber).
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// Output format.
    pub format: LogFormat,
    /// `tracing-subscriber` filter directive, e.g. `info,jiayuan_host=debug`.
    pub filter: String,
}

/// Scheduler settings.
#[derive(Debug, Clone)]
pub struct SchedulerSettings {
    /// Whether this instance runs deadline ticks (safe on every instance; see ARCHITECTURE.md).
    pub enabled: bool,
    /// Time between ticks.
    pub tick: Duration,
}

/// Enablement as written in the configuration file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnablementSettings {
    /// 区 items enabled district-wide by default.
    pub district: Vec<String>,
    /// 街道 per-street changes.
    pub streets: BTreeMap<DivisionCode, ItemSwitches>,
    /// 小区 per-estate changes.
    pub estates: BTreeMap<EstateId, ItemSwitches>,
    /// 物业企业 per-firm changes (apply wherever the firm serves).
    pub firms: BTreeMap<FirmId, ItemSwitches>,
}

/// Items switched on and off at one level.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemSwitches {
    /// Items enabled at this level.
    #[serde(default)]
    pub enable: Vec<String>,
    /// Items disabled at this level.
    #[serde(default)]
    pub disable: Vec<String>,
}

// ---- raw layer: mirrors the TOML ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    server: RawServer,
    database: RawDatabase,
    log: RawLog,
    plugins: RawPlugins,
    scheduler: RawScheduler,
    enablement: RawEnablement,
    #[serde(default)]
    calendar: RawCalendar,
    #[serde(default)]
    plugin_config: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    url: String,
    max_connections: u32,
    busy_timeout_ms: u64,
    acquire_timeout_ms: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: LogFormat,
    filter: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugins {
    dir: PathBuf,
    allow: Vec<String>,
    call_timeout_ms: u64,
    quarantine_after_panics: u32,
    quarantine_window_secs: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScheduler {
    enabled: bool,
    tick_secs: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnablement {
    district: Vec<String>,
    #[serde(default)]
    streets: BTreeMap<String, ItemSwitches>,
    #[serde(default)]
    estates: BTreeMap<String, ItemSwitches>,
    #[serde(default)]
    firms: BTreeMap<String, ItemSwitches>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCalendar {
    #[serde(default)]
    days: Vec<CalendarEntry>,
}

/// The name of the environment layer (`config/{env}.toml`), e.g. `production`; `None` for none.
#[derive(Clone, Copy)]
pub struct Layers<'a> {
    /// Directory holding `default.toml` and the environment files.
    pub dir: &'a Path,
    /// Environment name.
    pub env: Option<&'a str>,
}

impl fmt::Debug for Layers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/default.toml", self.dir.display())?;
        if let Some(env) = self.env {
            write!(f, " + {}/{env}.toml", self.dir.display())?;
        }
        Ok(())
    }
}

/// Loads and validates settings. `vars` are the candidate environment variables (the CLI passes
/// `std::env::vars()`); only those starting with `JIAYUAN_` are used, and `JIAYUAN_ENV` is ignored
/// here (it selects `layers.env`).
pub fn load(layers: Layers<'_>, vars: impl IntoIterator<Item = (String, String)>) -> Result<Settings, SettingsError> {
    let read_err = |cause| SettingsError::Read { dir: layers.dir.to_owned(), cause };
    let env_map: config::Map<String, String> =
        vars.into_iter().filter(|(k, _)| k.starts_with("JIAYUAN_") && k != "JIAYUAN_ENV").collect();
    let mut builder =
        config::Config::builder().add_source(config::File::from(layers.dir.join("default.toml")).required(true));
    if let Some(env) = layers.env {
        builder = builder.add_source(config::File::from(layers.dir.join(format!("{env}.toml"))).required(true));
    }
    builder = builder.add_source(
        config::Environment::with_prefix("JIAYUAN")
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true)
            .list_separator(",")
            .with_list_parse_key("plugins.allow")
            .with_list_parse_key("enablement.district")
            .source(Some(env_map)),
    );
    let raw: Raw = builder.build().map_err(read_err)?.try_deserialize().map_err(read_err)?;
    validate(raw)
}

impl Settings {
    /// A human-readable summary with secrets redacted, for `jiayuan config check`.
    pub fn redacted_summary(&self) -> String {
        let e = &self.enablement;
        let switches = |m: String, s: &ItemSwitches| format!("  {m}: enable {:?}, disable {:?}\n", s.enable, s.disable);
        let mut out = format!(
            "server.listen            {}\n\
             database.url             {}\n\
             database.max_connections {}\n\
             log                      {:?} {}\n\
             plugins.dir              {}\n\
             plugins.allow            {:?}\n\
             plugins.call_timeout     {:?}\n\
             plugins.quarantine       after {} panics within {:?}\n\
             scheduler                {} every {:?}\n\
             calendar                 {} holidays / make-up workdays\n\
             plugin_config            {:?}\n\
             enablement.district      {:?}\n",
            self.server.listen,
            redact_url(&self.database.url),
            self.database.max_connections,
            self.log.format,
            self.log.filter,
            self.plugins.dir.display(),
            self.plugins.allow,
            self.plugins.call_timeout,
            self.plugins.quarantine_after_panics,
            self.plugins.quarantine_window,
            if self.scheduler.enabled { "enabled" } else { "disabled" },
            self.scheduler.tick,
            self.calendar.len(),
            self.plugin_config.keys().collect::<Vec<_>>(),
            e.district,
        );
        for (code, s) in &e.streets {
            out += &switches(format!("street {code}"), s);
        }
        for (id, s) in &e.estates {
            out += &switches(format!("estate {id}"), s);
        }
        for (id, s) in &e.firms {
            out += &switches(format!("firm {id}"), s);
        }
        out
    }
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> SettingsError {
    SettingsError::Invalid { key: key.into(), reason: reason.into() }
}

fn validate(raw: Raw) -> Result<Settings, SettingsError> {
    let listen = raw.server.listen.parse().map_err(|e| {
        invalid("server.listen", format!("`{}` is not an address like 127.0.0.1:8080: {e}", raw.server.listen))
    })?;
    if !(raw.database.url.starts_with("sqlite:") || raw.database.url.starts_with("postgres")) {
        return Err(invalid("database.url", "must start with `sqlite:` or `postgres://`"));
    }
    if raw.database.max_connections == 0 {
        return Err(invalid("database.max_connections", "must be at least 1"));
    }
    if raw.plugins.call_timeout_ms == 0 {
        return Err(invalid("plugins.call_timeout_ms", "must be at least 1"));
    }
    if raw.scheduler.tick_secs == 0 {
        return Err(invalid("scheduler.tick_secs", "must be at least 1"));
    }
    let check_items = |key: &str, items: &[String]| -> Result<(), SettingsError> {
        for item in items {
            if item.is_empty() || !item.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
                return Err(invalid(key, format!("`{item}` is not a plugin id (kebab-case)")));
            }
        }
        Ok(())
    };
    check_items("plugins.allow", &raw.plugins.allow)?;
    check_items("enablement.district", &raw.enablement.district)?;
    let switches = |key: &str, s: &ItemSwitches| -> Result<(), SettingsError> {
        check_items(key, &s.enable)?;
        check_items(key, &s.disable)?;
        if let Some(both) = s.enable.iter().find(|i| s.disable.contains(i)) {
            return Err(invalid(key, format!("`{both}` is both enabled and disabled")));
        }
        Ok(())
    };
    let mut streets = BTreeMap::new();
    for (code, s) in raw.enablement.streets {
        let key = format!("enablement.streets.{code}");
        let parsed = DivisionCode::parse(&code).map_err(|e| invalid(&key, e.to_string()))?;
        if parsed.level() != jiayuan_domain::DivisionLevel::Street {
            return Err(invalid(&key, format!("`{code}` is not a street code (xxxxxxsss000)")));
        }
        switches(&key, &s)?;
        streets.insert(parsed, s);
    }
    let mut estates = BTreeMap::new();
    for (id, s) in raw.enablement.estates {
        let key = format!("enablement.estates.{id}");
        let n: i64 = id.parse().map_err(|_| invalid(&key, format!("`{id}` is not an estate id")))?;
        switches(&key, &s)?;
        estates.insert(EstateId(n), s);
    }
    let mut firms = BTreeMap::new();
    for (id, s) in raw.enablement.firms {
        let key = format!("enablement.firms.{id}");
        let n: i64 = id.parse().map_err(|_| invalid(&key, format!("`{id}` is not a firm id")))?;
        switches(&key, &s)?;
        firms.insert(FirmId(n), s);
    }
    let plugin_config = raw.plugin_config.into_iter().map(|(id, v)| (id, v.to_string())).collect();
    Ok(Settings {
        server: ServerSettings { listen },
        database: DatabaseSettings {
            url: raw.database.url,
            max_connections: raw.database.max_connections,
            busy_timeout_ms: raw.database.busy_timeout_ms,
            acquire_timeout_ms: raw.database.acquire_timeout_ms,
        },
        log: LogSettings { format: raw.log.format, filter: raw.log.filter },
        plugins: PluginSettings {
            dir: raw.plugins.dir,
            allow: raw.plugins.allow,
            call_timeout: Duration::from_millis(raw.plugins.call_timeout_ms),
            quarantine_after_panics: raw.plugins.quarantine_after_panics,
            quarantine_window: Duration::from_secs(raw.plugins.quarantine_window_secs),
        },
        scheduler: SchedulerSettings {
            enabled: raw.scheduler.enabled,
            tick: Duration::from_secs(raw.scheduler.tick_secs),
        },
        enablement: EnablementSettings { district: raw.enablement.district, streets, estates, firms },
        calendar: raw.calendar.days,
        plugin_config,
    })
}

#[cfg(test)]
mod tests;
