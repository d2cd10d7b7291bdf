//! Typed settings, loaded in layers: `config/default.toml` → `config/{env}.toml` → `JIAYUAN_*`
//! variables (`__` separates levels: `JIAYUAN_DATABASE__URL`).
//!
//! [`load`] is the one pure function that turns those layers into [`Settings`]: it reads the two
//! files, takes the variables it is *given* (the CLI passes the process environment; this crate
//! never reads it) and validates everything, naming the key of any bad value.
//!
//! The data key (`[security]`, which encrypts identity-document numbers and phones at rest) is
//! parsed by [`load`] when given inline, but a key *file* is only read — or, for an embedded
//! SQLite database, created — by [`Settings::resolve_data_key`], which the host calls right
//! before it opens the database.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use jiayuan_domain::calendar::CalendarEntry;
use jiayuan_domain::{DivisionCode, EstateId, FirmId};
use jiayuan_store::{DatabaseSettings, FieldKeys, redact_url};

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
    /// Database. Its `field_keys` are filled in by [`Settings::resolve_data_key`].
    pub database: DatabaseSettings,
    /// Where the data key comes from.
    pub security: SecuritySettings,
    /// Logging.
    pub log: LogSettings,
    /// Plugin loading.
    pub plugins: PluginSettings,
    /// Deadline scheduler.
    pub scheduler: SchedulerSettings,
    /// Logins, sessions, API tokens and password hashing.
    pub auth: AuthSettings,
    /// Which items are enabled where (the file layer; run-time overrides live in the database).
    pub enablement: EnablementSettings,
    /// Holidays and make-up workdays.
    pub calendar: Vec<CalendarEntry>,
    /// Each plugin's own configuration, as JSON text, by plugin id.
    pub plugin_config: BTreeMap<String, String>,
}

/// Where the data key comes from (`[security]`). `Debug` never shows the key.
#[derive(Debug, Clone, Default)]
pub struct SecuritySettings {
    /// `security.data_key`: the key itself (64 hex characters or base64 of 32 bytes), already
    /// parsed. Normally set through `JIAYUAN_SECURITY__DATA_KEY`, never in a committed file.
    pub data_key: Option<FieldKeys>,
    /// `security.data_key_file`: a file holding the key. When neither this nor `data_key` is
    /// set, an embedded SQLite database uses [`SecuritySettings::DEFAULT_KEY_EXTENSION`] next to
    /// its file (see [`SecuritySettings::key_file`]).
    pub data_key_file: Option<PathBuf>,
}

impl SecuritySettings {
    /// Extension of the default key file next to an embedded SQLite database
    /// (`data/jiayuan.sqlite` → `data/jiayuan.key`).
    pub const DEFAULT_KEY_EXTENSION: &'static str = "key";

    /// The key file in use for `database`: the configured one, or — when no key is configured at
    /// all — the default next to an embedded SQLite database file. `None` when the key is
    /// given inline, or for PostgreSQL and in-memory SQLite without a configured file.
    pub fn key_file(&self, database: &DatabaseSettings) -> Option<PathBuf> {
        if self.data_key.is_some() {
            return None;
        }
        self.data_key_file
            .clone()
            .or_else(|| database.sqlite_path().map(|db| db.with_extension(Self::DEFAULT_KEY_EXTENSION)))
    }
}

/// Where [`Settings::resolve_data_key`] found the data key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataKeySource {
    /// Already in `database.field_keys` (set by the caller, e.g. a test).
    Given,
    /// `security.data_key`.
    Inline,
    /// Read from this key file.
    File(PathBuf),
    /// Created in this key file (embedded SQLite, first start).
    Created(PathBuf),
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

/// Authentication settings (`[auth]`), used by the server's authentication as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    /// `auth.session_ttl_secs`: how long a browser session lives after login.
    pub session_ttl: Duration,
    /// `auth.cookie_secure`: mark the session cookie `Secure` (sent over HTTPS only).
    pub cookie_secure: bool,
    /// `auth.login_attempts`: failed logins allowed per login name, and per client address, in
    /// `login_window`.
    pub login_attempts: u32,
    /// `auth.login_window_secs`: the rate-limit window of failed logins.
    pub login_window: Duration,
    /// `auth.cache_ttl_secs`: how long a resolved token or session is trusted without asking the
    /// database (a revocation on another host instance takes effect within it).
    pub cache_ttl: Duration,
    /// `auth.argon2_memory_kib`: Argon2id memory cost of a password hash, in KiB.
    pub argon2_memory_kib: u32,
    /// `auth.argon2_iterations`: Argon2id iterations.
    pub argon2_iterations: u32,
}

impl Default for AuthSettings {
    /// The values of `config/default.toml` (a test holds them equal): OWASP's Argon2id baseline
    /// (19 MiB, 2 iterations, 1 lane), 12-hour sessions, 5 failed logins a minute, a 5 s cache.
    fn default() -> AuthSettings {
        AuthSettings {
            session_ttl: Duration::from_secs(12 * 3600),
            cookie_secure: true,
            login_attempts: 5,
            login_window: Duration::from_secs(60),
            cache_ttl: Duration::from_secs(5),
            argon2_memory_kib: 19 * 1024,
            argon2_iterations: 2,
        }
    }
}

impl AuthSettings {
    /// Shortest session lifetime accepted (`auth.session_ttl_secs`).
    pub const MIN_SESSION_TTL: Duration = Duration::from_secs(60);
    /// Longest session lifetime accepted: 30 days.
    pub const MAX_SESSION_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
    /// Longest caller cache accepted (`auth.cache_ttl_secs`): a revoked token or a disabled
    /// account stays usable on other host instances for up to this long.
    pub const MAX_CACHE_TTL: Duration = Duration::from_secs(300);
    /// Argon2's own lower bound on the memory cost (8 KiB per lane; one lane).
    pub const MIN_ARGON2_MEMORY_KIB: u32 = 8;
    /// Largest memory cost accepted: 4 GiB per hash is a typo, not a policy.
    pub const MAX_ARGON2_MEMORY_KIB: u32 = 4 * 1024 * 1024;
    /// Largest iteration count accepted.
    pub const MAX_ARGON2_ITERATIONS: u32 = 100;
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
    #[serde(default)]
    security: RawSecurity,
    log: RawLog,
    plugins: RawPlugins,
    scheduler: RawScheduler,
    auth: RawAuth,
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

/// `[security]`. A `Debug` impl would print the key: there is none.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSecurity {
    #[serde(default)]
    data_key: Option<String>,
    #[serde(default)]
    data_key_file: Option<PathBuf>,
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
    threads: usize,
    #[serde(default)]
    pin: BTreeMap<String, String>,
    #[serde(default)]
    isolation: BTreeMap<String, crate::plugins::Isolation>,
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
struct RawAuth {
    session_ttl_secs: u64,
    cookie_secure: bool,
    login_attempts: u32,
    login_window_secs: u64,
    cache_ttl_secs: u64,
    argon2_memory_kib: u32,
    argon2_iterations: u32,
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
             security                 {}\n\
             log                      {:?} {}\n\
             plugins.dir              {}\n\
             plugins.allow            {:?}\n\
             plugins.call_timeout     {:?}\n\
             plugins.threads          {} per plugin\n\
             plugins.pin              {:?}\n\
             plugins.isolation        {:?}\n\
             plugins.quarantine       after {} panics within {:?}\n\
             scheduler                {} every {:?}\n\
             auth.sessions            {:?}, cookie {}\n\
             auth.login_limit         {} failures per login and per address within {:?}\n\
             auth.cache_ttl           {:?}\n\
             auth.argon2              {} KiB, {} iteration(s)\n\
             calendar                 {} holidays / make-up workdays\n\
             plugin_config            {:?}\n\
             enablement.district      {:?}\n",
            self.server.listen,
            redact_url(&self.database.url),
            self.database.max_connections,
            self.security_summary(),
            self.log.format,
            self.log.filter,
            self.plugins.dir.display(),
            self.plugins.allow,
            self.plugins.call_timeout,
            self.plugins.threads,
            self.plugins.pins.keys().collect::<Vec<_>>(),
            self.plugins.isolation.iter().map(|(id, i)| format!("{id}={}", i.as_str())).collect::<Vec<_>>(),
            self.plugins.quarantine_after_panics,
            self.plugins.quarantine_window,
            if self.scheduler.enabled { "enabled" } else { "disabled" },
            self.scheduler.tick,
            self.auth.session_ttl,
            if self.auth.cookie_secure { "Secure (HTTPS only)" } else { "NOT Secure (plain HTTP allowed)" },
            self.auth.login_attempts,
            self.auth.login_window,
            self.auth.cache_ttl,
            self.auth.argon2_memory_kib,
            self.auth.argon2_iterations,
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

impl Settings {
    /// One line on where the data key comes from; never the key.
    fn security_summary(&self) -> String {
        if self.database.field_keys.is_some() || self.security.data_key.is_some() {
            return "data_key *** (set)".into();
        }
        match self.security.key_file(&self.database) {
            Some(file) if self.security.data_key_file.is_some() => format!("data_key_file {}", file.display()),
            Some(file) => format!("data_key_file {} (default: next to the SQLite database)", file.display()),
            None => "NO DATA KEY: set JIAYUAN_SECURITY__DATA_KEY or security.data_key_file".into(),
        }
    }

    /// Puts the data key into `database.field_keys`, so [`jiayuan_store::Store::connect`] can
    /// use it. Keys already there are kept ([`DataKeySource::Given`]); otherwise
    /// `security.data_key`, else the key file ([`SecuritySettings::key_file`]) is read.
    ///
    /// For an embedded SQLite database whose key file and database file both do not exist yet,
    /// a new random key is written to the key file (64 hex characters, mode 0600) and one info
    /// line says where it is and to back it up. A missing key file next to an *existing*
    /// database is an error: a new key could not read what the old one encrypted.
    pub fn resolve_data_key(&mut self) -> Result<DataKeySource, SettingsError> {
        if self.database.field_keys.is_some() {
            return Ok(DataKeySource::Given);
        }
        if let Some(keys) = &self.security.data_key {
            self.database.field_keys = Some(keys.clone());
            return Ok(DataKeySource::Inline);
        }
        let Some(file) = self.security.key_file(&self.database) else {
            return Err(invalid(
                "security.data_key",
                format!(
                    "no data key for the database `{}`: set JIAYUAN_SECURITY__DATA_KEY (64 hexadecimal \
                     characters, e.g. from `openssl rand -hex 32`) or security.data_key_file",
                    redact_url(&self.database.url)
                ),
            ));
        };
        let (keys, source) = match read_key_file(&file)? {
            Some(keys) => (keys, DataKeySource::File(file)),
            None => (self.create_key_file(&file)?, DataKeySource::Created(file)),
        };
        self.database.field_keys = Some(keys);
        Ok(source)
    }

    /// Creates `file` with a new random key, if the database is an embedded SQLite file that
    /// does not exist yet.
    fn create_key_file(&self, file: &Path) -> Result<FieldKeys, SettingsError> {
        const KEY: &str = "security.data_key_file";
        let Some(db) = self.database.sqlite_path() else {
            return Err(invalid(KEY, format!("the key file {} does not exist", file.display())));
        };
        if db.exists() {
            return Err(invalid(
                KEY,
                format!(
                    "the key file {} does not exist but the database {} does: restore the key file it \
                     was written with from your backup (a new key cannot read its encrypted data)",
                    file.display(),
                    db.display()
                ),
            ));
        }
        let text = FieldKeys::generate_master_hex().map_err(|e| invalid(KEY, e.to_string()))?;
        let keys = FieldKeys::parse(&text).map_err(|e| invalid(KEY, e.to_string()))?;
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| invalid(KEY, format!("cannot create the directory {}: {e}", dir.display())))?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options.open(file).and_then(|mut f| {
            use std::io::Write;
            f.write_all(text.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()
        });
        match written {
            Ok(()) => {
                tracing::info!(
                    key_file = %file.display(),
                    "created a new data key for the database; back this file up with the database \
                     (without it the encrypted registry data cannot be read)"
                );
                Ok(keys)
            }
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key_file(file)?
                .ok_or_else(|| invalid(KEY, format!("the key file {} vanished while starting", file.display()))),
            Err(e) => Err(invalid(KEY, format!("cannot write the key file {}: {e}", file.display()))),
        }
    }
}

/// Reads and parses a key file; `None` when it does not exist.
fn read_key_file(file: &Path) -> Result<Option<FieldKeys>, SettingsError> {
    const KEY: &str = "security.data_key_file";
    let text = match std::fs::read_to_string(file) {
        Ok(text) => zeroize::Zeroizing::new(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(invalid(KEY, format!("cannot read the key file {}: {e}", file.display()))),
    };
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(file) {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(key_file = %file.display(), "the data key file is readable by other users: chmod 600 it");
        }
    }
    FieldKeys::parse(&text).map(Some).map_err(|e| invalid(KEY, format!("the key file {}: {e}", file.display())))
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
    if raw.plugins.threads == 0 || raw.plugins.threads > 64 {
        return Err(invalid("plugins.threads", "must be between 1 and 64"));
    }
    for (id, sha) in &raw.plugins.pin {
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid(format!("plugins.pin.{id}"), "must be a sha256 digest: 64 hexadecimal digits"));
        }
        if !raw.plugins.allow.contains(id) {
            return Err(invalid(format!("plugins.pin.{id}"), "names a plugin that is not in plugins.allow"));
        }
    }
    for id in raw.plugins.isolation.keys() {
        if !raw.plugins.allow.contains(id) {
            return Err(invalid(format!("plugins.isolation.{id}"), "names a plugin that is not in plugins.allow"));
        }
    }
    if raw.plugins.call_timeout_ms == 0 {
        return Err(invalid("plugins.call_timeout_ms", "must be at least 1"));
    }
    if raw.scheduler.tick_secs == 0 {
        return Err(invalid("scheduler.tick_secs", "must be at least 1"));
    }
    let auth = validate_auth(&raw.auth)?;
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
    let data_key = raw
        .security
        .data_key
        .map(|text| {
            let text = zeroize::Zeroizing::new(text);
            FieldKeys::parse(&text).map_err(|e| invalid("security.data_key", e.to_string()))
        })
        .transpose()?;
    if raw.security.data_key_file.as_ref().is_some_and(|f| f.as_os_str().is_empty()) {
        return Err(invalid("security.data_key_file", "is empty: remove it to use the default, or name a file"));
    }
    if data_key.is_some() && raw.security.data_key_file.is_some() {
        return Err(invalid("security", "set `data_key` or `data_key_file`, not both"));
    }
    let security = SecuritySettings { data_key, data_key_file: raw.security.data_key_file };
    let plugin_config = raw.plugin_config.into_iter().map(|(id, v)| (id, v.to_string())).collect();
    Ok(Settings {
        server: ServerSettings { listen },
        database: DatabaseSettings {
            url: raw.database.url,
            max_connections: raw.database.max_connections,
            busy_timeout_ms: raw.database.busy_timeout_ms,
            acquire_timeout_ms: raw.database.acquire_timeout_ms,
            field_keys: None,
        },
        security,
        log: LogSettings { format: raw.log.format, filter: raw.log.filter },
        plugins: PluginSettings {
            dir: raw.plugins.dir,
            allow: raw.plugins.allow,
            call_timeout: Duration::from_millis(raw.plugins.call_timeout_ms),
            threads: raw.plugins.threads,
            quarantine_after_panics: raw.plugins.quarantine_after_panics,
            quarantine_window: Duration::from_secs(raw.plugins.quarantine_window_secs),
            pins: raw.plugins.pin.into_iter().map(|(id, sha)| (id, sha.to_ascii_lowercase())).collect(),
            isolation: raw.plugins.isolation,
            runner: None,
        },
        scheduler: SchedulerSettings {
            enabled: raw.scheduler.enabled,
            tick: Duration::from_secs(raw.scheduler.tick_secs),
        },
        auth,
        enablement: EnablementSettings { district: raw.enablement.district, streets, estates, firms },
        calendar: raw.calendar.days,
        plugin_config,
    })
}

/// Checks `[auth]`; each error names its key.
fn validate_auth(raw: &RawAuth) -> Result<AuthSettings, SettingsError> {
    let secs = |key: &str, n: u64, min: Duration, max: Duration| -> Result<Duration, SettingsError> {
        let d = Duration::from_secs(n);
        if d < min || d > max {
            return Err(invalid(
                key,
                format!("{n} is out of range: use {} to {} seconds", min.as_secs(), max.as_secs()),
            ));
        }
        Ok(d)
    };
    let session_ttl = secs(
        "auth.session_ttl_secs",
        raw.session_ttl_secs,
        AuthSettings::MIN_SESSION_TTL,
        AuthSettings::MAX_SESSION_TTL,
    )?;
    if raw.login_attempts == 0 {
        return Err(invalid("auth.login_attempts", "must be at least 1 (0 would refuse every login)"));
    }
    let login_window =
        secs("auth.login_window_secs", raw.login_window_secs, Duration::from_secs(1), Duration::from_secs(24 * 3600))?;
    let cache_ttl = secs("auth.cache_ttl_secs", raw.cache_ttl_secs, Duration::ZERO, AuthSettings::MAX_CACHE_TTL)?;
    let m = raw.argon2_memory_kib;
    if !(AuthSettings::MIN_ARGON2_MEMORY_KIB..=AuthSettings::MAX_ARGON2_MEMORY_KIB).contains(&m) {
        return Err(invalid(
            "auth.argon2_memory_kib",
            format!(
                "{m} is out of range: use {} to {} KiB (19456 is OWASP's baseline)",
                AuthSettings::MIN_ARGON2_MEMORY_KIB,
                AuthSettings::MAX_ARGON2_MEMORY_KIB
            ),
        ));
    }
    let t = raw.argon2_iterations;
    if !(1..=AuthSettings::MAX_ARGON2_ITERATIONS).contains(&t) {
        return Err(invalid(
            "auth.argon2_iterations",
            format!("{t} is out of range: use 1 to {}", AuthSettings::MAX_ARGON2_ITERATIONS),
        ));
    }
    Ok(AuthSettings {
        session_ttl,
        cookie_secure: raw.cookie_secure,
        login_attempts: raw.login_attempts,
        login_window,
        cache_ttl,
        argon2_memory_kib: m,
        argon2_iterations: t,
    })
}

#[cfg(test)]
mod tests;
