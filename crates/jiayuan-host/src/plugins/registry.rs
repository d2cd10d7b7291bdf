//! [`PluginRegistry`]: discovers, checks and keeps the loaded plugins, and reports on every plugin
//! it tried (loaded, failed with its error, quarantined).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jiayuan_domain::Timestamp;
use jiayuan_plugin_api::{Manifest, PluginDeclaration, PluginError};
use serde::Serialize;

use super::handle::{AlertSlot, CallHealth, QuarantineAlert, start_on_threads};
use super::isolation::Isolation;
use super::isolation::child::RunnerArgs;
use super::isolation::process::{Runner, Spawn};
use super::loader::{self, Declared};
use super::{LoadError, PluginHandle, PluginSettings, SIDECAR_FILE, Sidecar};

/// Where a loaded plugin's code lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PluginSource {
    /// A library opened at run time.
    Dynamic {
        /// The library file.
        path: PathBuf,
    },
    /// A declaration linked into the host binary.
    Static,
}

/// What the host knows about a loaded plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadedInfo {
    /// Plugin version (from its declaration).
    pub version: String,
    /// Plugin API version it was built against.
    pub api_version: u32,
    /// SHA-256 of the library file (dynamic plugins only).
    pub sha256: Option<String>,
    /// Where its code lives.
    pub source: PluginSource,
    /// When it loaded.
    pub loaded_at: Timestamp,
    /// How long the checks, `dlopen` and the constructor took.
    #[serde(rename = "load_ms", serialize_with = "millis")]
    pub load_duration: Duration,
}

/// The state of one plugin the registry tried to load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PluginStatus {
    /// Loaded and taking calls.
    Loaded(LoadedInfo),
    /// Refused at load; the host runs without it.
    Failed {
        /// The [`LoadError`]'s message.
        error: String,
    },
    /// A library in `plugins.dir` with no `plugin.toml` next to it: never loaded (a plugin is
    /// installed with its sidecar), reported so a forgotten or stray file is seen.
    NoSidecar {
        /// The library file.
        library: PathBuf,
    },
    /// On `plugins.allow` but not in `plugins.dir` (nor linked in): the item cannot serve.
    Missing,
    /// Loaded, then quarantined (repeated panics, all its threads stuck, or its process dying
    /// repeatedly); takes no calls until the host restarts.
    Quarantined {
        /// What was loaded.
        info: LoadedInfo,
        /// Why it was quarantined.
        reason: String,
        /// Since when.
        since: Timestamp,
    },
}

/// One row of [`PluginRegistry::report`] (health endpoint, `jiayuan plugins list`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginReportEntry {
    /// The plugin id; for a sidecar that cannot be read, the name of its directory.
    pub id: String,
    /// The sidecar the plugin was loaded from (`None` for static plugins).
    pub sidecar: Option<PathBuf>,
    /// Its state.
    pub status: PluginStatus,
    /// Where its calls run and how many of its threads are stuck (loaded plugins only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calls: Option<CallHealth>,
}

/// A plugin [`PluginRegistry::load_dir`] refused.
impl PluginReportEntry {
    /// Loaded, not quarantined, and none of its threads stuck; a stray library without a sidecar
    /// is reported but degrades nothing. Failed, missing and quarantined plugins are unhealthy.
    pub fn is_healthy(&self) -> bool {
        match &self.status {
            PluginStatus::Loaded(_) => self.calls.as_ref().is_none_or(|c| c.stuck == 0),
            PluginStatus::NoSidecar { .. } => true,
            PluginStatus::Failed { .. } | PluginStatus::Missing | PluginStatus::Quarantined { .. } => false,
        }
    }
}

impl std::fmt::Display for PluginReportEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn loaded(f: &mut std::fmt::Formatter<'_>, info: &LoadedInfo) -> std::fmt::Result {
            write!(f, " {} (api {})", info.version, info.api_version)?;
            match &info.source {
                PluginSource::Dynamic { path } => write!(f, " from {}", path.display())?,
                PluginSource::Static => write!(f, " linked statically")?,
            }
            if let Some(sha) = &info.sha256 {
                write!(f, " sha256 {sha}")?;
            }
            write!(f, " in {:.1} ms", info.load_duration.as_secs_f64() * 1000.0)
        }
        let calls = |f: &mut std::fmt::Formatter<'_>| {
            let Some(c) = &self.calls else { return Ok(()) };
            write!(f, "; {}, {} thread(s), {} stuck", c.isolation.as_str(), c.threads, c.stuck)?;
            if let Some(restarts) = c.restarts {
                write!(f, ", {restarts} restart(s)")?;
            }
            if let Some(pid) = c.pid {
                write!(f, ", pid {pid}")?;
            }
            if let Some(sandbox) = &c.sandbox {
                write!(f, " ({sandbox})")?;
            }
            Ok(())
        };
        match &self.status {
            PluginStatus::Loaded(info) => {
                write!(f, "loaded       {}", self.id)?;
                loaded(f, info)?;
                calls(f)
            }
            PluginStatus::Quarantined { info, reason, since } => {
                write!(f, "QUARANTINED  {}", self.id)?;
                loaded(f, info)?;
                calls(f)?;
                write!(f, " — since {since:?}: {reason}")
            }
            PluginStatus::NoSidecar { library } => write!(
                f,
                "NO SIDECAR   {} ({}): not loaded; install plugins with their plugin.toml (`cargo xtask plugins build`), or remove the file",
                self.id,
                library.display()
            ),
            PluginStatus::Missing => write!(
                f,
                "MISSING      {}: on plugins.allow but not in the plugin directory; build and install it, or remove it from plugins.allow",
                self.id
            ),
            PluginStatus::Failed { error } => {
                write!(f, "FAILED       {}", self.id)?;
                if let Some(s) = &self.sidecar {
                    write!(f, " ({})", s.display())?;
                }
                write!(f, ": {error}")
            }
        }
    }
}

#[derive(Debug)]
pub struct FailedLoad {
    /// Its sidecar.
    pub sidecar: PathBuf,
    /// Why it was refused.
    pub error: LoadError,
}

/// What one [`PluginRegistry::load_dir`] did.
#[derive(Debug, Default)]
pub struct LoadSummary {
    /// Ids of the plugins it loaded.
    pub loaded: Vec<String>,
    /// The plugins it refused (also in the report, and logged).
    pub failed: Vec<FailedLoad>,
}

/// How a report row finds its state.
#[derive(Debug)]
enum Row {
    Loaded { handle: PluginHandle, sidecar: Option<PathBuf> },
    Failed { id: String, sidecar: Option<PathBuf>, error: String },
    Other { id: String, status: PluginStatus },
}

/// The loaded plugins, by id.
///
/// Loading happens at start-up (`&mut self`); afterwards the registry is shared read-only and
/// only the handles' quarantine state changes.
pub struct PluginRegistry {
    settings: PluginSettings,
    handles: BTreeMap<String, PluginHandle>,
    rows: Vec<Row>,
    alert: AlertSlot,
}

impl std::fmt::Debug for PluginRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRegistry")
            .field("settings", &self.settings)
            .field("handles", &self.handles)
            .field("rows", &self.rows)
            .field("alert", &self.alert.get().is_some())
            .finish()
    }
}

impl PluginRegistry {
    /// An empty registry.
    pub fn new(settings: PluginSettings) -> PluginRegistry {
        PluginRegistry { settings, handles: BTreeMap::new(), rows: Vec::new(), alert: AlertSlot::default() }
    }

    /// Sets what raises the alert for quarantines that are not a panic's (stuck threads, a child
    /// process that keeps dying); the first call wins.
    pub fn on_quarantine(&self, alert: QuarantineAlert) {
        let _ = self.alert.set(alert);
    }

    /// The settings it was made with.
    pub fn settings(&self) -> &PluginSettings {
        &self.settings
    }

    /// Loads every `<plugins.dir>/*/plugin.toml`, in path order. A plugin that fails is logged,
    /// recorded in the report and skipped. Fails only when the directory cannot be read.
    pub fn load_dir(&mut self) -> Result<LoadSummary, LoadError> {
        let dir = self.settings.dir.clone();
        let read = fs::read_dir(&dir).map_err(|source| LoadError::PluginDir { dir: dir.clone(), source })?;
        let real = fs::canonicalize(&dir).map_err(|source| LoadError::PluginDir { dir: dir.clone(), source })?;
        check_location(&real).map_err(|problem| problem.for_dir())?;
        let mut sidecars = Vec::new();
        let mut strays = Vec::new();
        for entry in read.filter_map(Result::ok) {
            let path = entry.path();
            if path.join(SIDECAR_FILE).is_file() {
                sidecars.push(path.join(SIDECAR_FILE));
            } else if path.is_dir() {
                strays.extend(libraries_in(&path));
            } else if is_library(&path) {
                strays.push(path);
            }
        }
        sidecars.sort();
        strays.sort();
        let mut summary = LoadSummary::default();
        for sidecar in sidecars {
            match self.load(&sidecar) {
                Ok(handle) => summary.loaded.push(handle.id().to_owned()),
                Err(error) => summary.failed.push(FailedLoad { sidecar, error }),
            }
        }
        for library in strays {
            let id = library.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            tracing::warn!(library = %library.display(), "a library without a plugin.toml sidecar is not loaded");
            self.rows.push(Row::Other { id, status: PluginStatus::NoSidecar { library } });
        }
        let tried: Vec<String> = self
            .rows
            .iter()
            .filter_map(|row| match row {
                Row::Loaded { handle, .. } => Some(handle.id().to_owned()),
                Row::Failed { id, .. } => Some(id.clone()),
                Row::Other { .. } => None,
            })
            .collect();
        for id in self.settings.allow.clone() {
            if !tried.contains(&id) {
                tracing::error!(plugin = %id, "an allowed plugin is not in the plugin directory");
                self.rows.push(Row::Other { id, status: PluginStatus::Missing });
            }
        }
        Ok(summary)
    }

    /// Loads the plugin described by the sidecar at `sidecar` through checks 1–11 (see
    /// [`LoadError`]), and records the outcome in the report.
    pub fn load(&mut self, sidecar: &Path) -> Result<PluginHandle, LoadError> {
        let started = Instant::now();
        let mut id = sidecar
            .parent()
            .and_then(Path::file_name)
            .map_or_else(|| sidecar.display().to_string(), |n| n.to_string_lossy().into_owned());
        let result = self.load_checked(sidecar, &mut id, started);
        // A plugin built out of tree is rebuilt with another command than the workspace's.
        let hint = Sidecar::read(sidecar).ok().map(|s| s.rebuild_command(&self.settings.dir));
        self.record_with_hint(id, Some(sidecar.to_owned()), &result, hint.as_deref());
        result
    }

    /// Registers a plugin linked into the binary (its crate's `pub static DECLARATION`) through
    /// checks 5–11, and records the outcome in the report. The allow-list applies only to
    /// libraries; what is compiled in is chosen at build time.
    pub fn register_static(&mut self, declaration: &'static PluginDeclaration) -> Result<PluginHandle, LoadError> {
        let started = Instant::now();
        let result = loader::check_static(declaration)
            .and_then(|declared| self.finish(declared, None, PluginSource::Static, started));
        let id = match &result {
            Ok(handle) => handle.id().to_owned(),
            Err(_) => "<static>".to_owned(),
        };
        self.record(id, None, &result);
        result
    }

    /// The loaded plugin with this id (quarantined ones included: calls into them are refused).
    pub fn handle(&self, id: &str) -> Option<PluginHandle> {
        self.handles.get(id).cloned()
    }

    /// Every loaded plugin, by id.
    pub fn handles(&self) -> impl Iterator<Item = &PluginHandle> {
        self.handles.values()
    }

    /// Every plugin the registry tried, in the order it tried them.
    pub fn report(&self) -> Vec<PluginReportEntry> {
        self.rows
            .iter()
            .map(|row| match row {
                Row::Failed { id, sidecar, error } => PluginReportEntry {
                    id: id.clone(),
                    sidecar: sidecar.clone(),
                    status: PluginStatus::Failed { error: error.clone() },
                    calls: None,
                },
                Row::Other { id, status } => {
                    PluginReportEntry { id: id.clone(), sidecar: None, status: status.clone(), calls: None }
                }
                Row::Loaded { handle, sidecar } => {
                    let info = handle.info().clone();
                    let status = match handle.quarantine() {
                        Some(q) => PluginStatus::Quarantined { info, reason: q.reason, since: q.since },
                        None => PluginStatus::Loaded(info),
                    };
                    PluginReportEntry {
                        id: handle.id().to_owned(),
                        sidecar: sidecar.clone(),
                        status,
                        calls: Some(handle.call_health()),
                    }
                }
            })
            .collect()
    }

    fn record(&mut self, id: String, sidecar: Option<PathBuf>, result: &Result<PluginHandle, LoadError>) {
        self.record_with_hint(id, sidecar, result, None);
    }

    /// [`Self::record`]; a refusal's "rebuild with `cargo xtask plugins build`" names `hint`
    /// instead when there is one.
    fn record_with_hint(
        &mut self,
        id: String,
        sidecar: Option<PathBuf>,
        result: &Result<PluginHandle, LoadError>,
        hint: Option<&str>,
    ) {
        match result {
            Ok(handle) => {
                let info = handle.info();
                tracing::info!(
                    plugin = handle.id(),
                    version = %info.version,
                    source = ?info.source,
                    took = ?info.load_duration,
                    "plugin loaded"
                );
                self.rows.push(Row::Loaded { handle: handle.clone(), sidecar });
            }
            Err(error) => {
                let mut error = error.to_string();
                if let Some(hint) = hint {
                    error = error.replace("`cargo xtask plugins build`", &format!("`{hint}`"));
                }
                tracing::error!(plugin = %id, %error, "plugin refused; the host runs without it");
                self.rows.push(Row::Failed { id, sidecar, error });
            }
        }
    }

    /// Checks 1–11 for a library; `id` is updated to the sidecar's id once it is known.
    fn load_checked(
        &mut self,
        sidecar_path: &Path,
        id: &mut String,
        started: Instant,
    ) -> Result<PluginHandle, LoadError> {
        // Check 1: inside the directory, on the allow-list, not writable by others.
        let dir = fs::canonicalize(&self.settings.dir)
            .map_err(|source| LoadError::PluginDir { dir: self.settings.dir.clone(), source })?;
        let sidecar_real = fs::canonicalize(sidecar_path)
            .map_err(|e| LoadError::Sidecar { path: sidecar_path.to_owned(), reason: e.to_string() })?;
        if !sidecar_real.starts_with(&dir) {
            return Err(LoadError::OutsideDir { path: sidecar_real, dir });
        }
        let sidecar = Sidecar::read(&sidecar_real)?;
        id.clone_from(&sidecar.id);
        let plugin_dir = sidecar_real.parent().unwrap_or(&dir).to_owned();
        let named = plugin_dir.join(&sidecar.library);
        if Path::new(&sidecar.library).file_name() != Some(sidecar.library.as_ref()) {
            return Err(LoadError::Sidecar {
                path: sidecar_real,
                reason: format!("library `{}` must be a file name in the sidecar's directory", sidecar.library),
            });
        }
        if !self.settings.allow.contains(&sidecar.id) {
            return Err(LoadError::NotOnAllowList {
                id: sidecar.id,
                path: sidecar_real,
                allowed: self.settings.allow.clone(),
            });
        }
        let library = fs::canonicalize(&named).map_err(|source| LoadError::Library {
            id: sidecar.id.clone(),
            path: named.clone(),
            source,
        })?;
        if !library.starts_with(&dir) {
            return Err(LoadError::OutsideDir { path: library, dir });
        }
        for path in [&plugin_dir, &sidecar_real, &library] {
            check_location(path).map_err(|problem| problem.for_plugin(&sidecar.id))?;
        }

        // Check 2: the sidecar matches this host, the file matches the sidecar. No plugin code has
        // run so far.
        sidecar.check_host(&sidecar_real)?;
        let bytes = fs::read(&library).map_err(|source| LoadError::Library {
            id: sidecar.id.clone(),
            path: library.clone(),
            source,
        })?;
        sidecar.check_library(&library, &bytes)?;
        if let Some(pinned) = self.settings.pins.get(&sidecar.id) {
            let found = sidecar.sha256.to_ascii_lowercase();
            if found != *pinned {
                return Err(LoadError::PinMismatch {
                    id: sidecar.id.clone(),
                    path: library,
                    found,
                    expected: pinned.clone(),
                });
            }
        }
        drop(bytes);

        // Process isolation: checks 3–11 run again in the child, which sends the manifest back.
        if self.settings.isolation_of(&sidecar.id) == Isolation::Process {
            return self.finish_process(&sidecar, &sidecar_real, library, started);
        }

        // Checks 3–9.
        let plugin = format!("plugin `{}` ({})", sidecar.id, library.display());
        let declared = loader::open_library(&library, &sidecar.id, &plugin)?;
        // Check 11, the parts only a library has: the declaration is the one the sidecar describes.
        if declared.id != sidecar.id {
            return Err(LoadError::ManifestMismatch {
                plugin,
                field: "declaration id",
                found: declared.id,
                expected: format!("{} (the sidecar's id)", sidecar.id),
            });
        }
        if declared.version != sidecar.version {
            return Err(LoadError::ManifestMismatch {
                plugin,
                field: "declaration version",
                found: declared.version,
                expected: format!("{} (the sidecar's version)", sidecar.version),
            });
        }
        let source = PluginSource::Dynamic { path: library };
        self.finish(declared, Some(sidecar.sha256.to_ascii_lowercase()), source, started)
    }

    /// Starts a process-isolated plugin's child, which loads it through checks 3–11 itself (no
    /// plugin code runs in the host), then checks its manifest here too and registers it.
    fn finish_process(
        &mut self,
        sidecar: &Sidecar,
        sidecar_path: &Path,
        library: PathBuf,
        started: Instant,
    ) -> Result<PluginHandle, LoadError> {
        let plugin = format!("plugin `{}` ({}, process isolation)", sidecar.id, library.display());
        let Some(program) = self.settings.runner.clone() else {
            return Err(LoadError::Runner {
                plugin,
                reason: "this host has no plugin runner (only the `jiayuan` binary can run process-isolated plugins)"
                    .into(),
            });
        };
        let dir = fs::canonicalize(&self.settings.dir)
            .map_err(|source| LoadError::PluginDir { dir: self.settings.dir.clone(), source })?;
        let folder = sidecar_path.parent().unwrap_or(&dir).to_owned();
        let args = RunnerArgs {
            dir,
            sidecar: sidecar_path.to_owned(),
            id: sidecar.id.clone(),
            pin: self.settings.pins.get(&sidecar.id).cloned(),
            threads: self.settings.threads,
            start_timeout: self.settings.call_timeout,
        };
        let mut command = vec![std::ffi::OsString::from(RUNNER_SUBCOMMAND)];
        command.extend(args.to_args());
        let spawn = Spawn {
            program,
            args: command,
            folder,
            // Hashing and loading the library in the child, then its constructor: a hang guard.
            ready_within: self.settings.call_timeout.max(Duration::from_secs(30)),
        };
        let (runner, ready) =
            Runner::start(&sidecar.id, spawn, self.settings.quarantine_after_panics, self.settings.quarantine_window)
                .map_err(|e| LoadError::Runner { plugin: plugin.clone(), reason: e.to_string() })?;
        if ready.id != sidecar.id || ready.version != sidecar.version {
            return Err(LoadError::ManifestMismatch {
                plugin,
                field: "declaration id and version",
                found: format!("{} {}", ready.id, ready.version),
                expected: format!("{} {} (the sidecar's)", sidecar.id, sidecar.version),
            });
        }
        let manifest: Manifest = serde_json::from_str(&ready.manifest_json).map_err(|e| LoadError::Runner {
            plugin: plugin.clone(),
            reason: format!("its manifest does not parse: {e}"),
        })?;
        self.check_manifest(&plugin, &ready.id, &manifest)?;
        let info = LoadedInfo {
            version: ready.version,
            api_version: ready.api_version,
            sha256: Some(sidecar.sha256.to_ascii_lowercase()),
            source: PluginSource::Dynamic { path: library },
            loaded_at: now_timestamp(),
            load_duration: started.elapsed(),
        };
        let handle =
            PluginHandle::new_process(runner, ready.sandbox, manifest, info, &self.settings, self.alert.clone());
        self.handles.insert(ready.id, handle.clone());
        Ok(handle)
    }

    /// Check 11: the manifest names the declaration's id, is consistent, and no plugin with that
    /// id is loaded yet.
    fn check_manifest(&self, plugin: &str, id: &str, manifest: &Manifest) -> Result<(), LoadError> {
        if manifest.id != id {
            return Err(LoadError::ManifestMismatch {
                plugin: plugin.to_owned(),
                field: "manifest id",
                found: manifest.id.clone(),
                expected: format!("{id} (the declaration's id)"),
            });
        }
        manifest.validate().map_err(|problems| LoadError::InvalidManifest { plugin: plugin.to_owned(), problems })?;
        if let Some(existing) = self.handles.get(id) {
            let existing = match &existing.info().source {
                PluginSource::Dynamic { path } => path.display().to_string(),
                PluginSource::Static => "the host binary (static registration)".to_owned(),
            };
            return Err(LoadError::DuplicateId { plugin: plugin.to_owned(), id: id.to_owned(), existing });
        }
        Ok(())
    }

    /// Checks 10 and 11, then registers the plugin.
    fn finish(
        &mut self,
        declared: Declared,
        sha256: Option<String>,
        source: PluginSource,
        started: Instant,
    ) -> Result<PluginHandle, LoadError> {
        let plugin = match &source {
            PluginSource::Dynamic { path } => format!("plugin `{}` ({})", declared.id, path.display()),
            PluginSource::Static => format!("statically linked plugin `{}`", declared.id),
        };
        // Check 10: the constructor runs under the guard compiled into the plugin, on the
        // plugin's own threads.
        let instance = start_on_threads(&declared.id, &plugin, declared.create, &self.settings)?;
        // Check 11.
        let manifest = instance.manifest.clone();
        if manifest.id.is_empty()
            && let Some(message) = manifest.name.en.strip_prefix("manifest panicked: ")
        {
            return Err(LoadError::Init { plugin, source: PluginError::Panicked(message.to_owned()) });
        }
        self.check_manifest(&plugin, &declared.id, &manifest)?;
        let info = LoadedInfo {
            version: declared.version,
            api_version: declared.api_version,
            sha256,
            source,
            loaded_at: now_timestamp(),
            load_duration: started.elapsed(),
        };
        let handle = PluginHandle::new(instance, info, &self.settings, self.alert.clone());
        self.handles.insert(declared.id, handle.clone());
        Ok(handle)
    }
}

/// The `jiayuan` subcommand that runs a process-isolated plugin (hidden from its help).
pub const RUNNER_SUBCOMMAND: &str = "plugin-runner";

/// Whether `path` is named like a shared library.
fn is_library(path: &Path) -> bool {
    path.is_file() && path.extension().is_some_and(|e| e == "so" || e == "dylib" || e == "dll")
}

/// The libraries directly in `dir`.
fn libraries_in(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|read| read.filter_map(Result::ok).map(|e| e.path()).filter(|p| is_library(p)).collect())
        .unwrap_or_default()
}

/// Why a path of the plugin directory may not be trusted, with the command that fixes it.
#[derive(Debug)]
pub(crate) enum Unsafe {
    Unreadable { path: PathBuf, source: std::io::Error },
    Writable { path: PathBuf, mode: u32 },
    NotOwned { path: PathBuf, owner: u32, host: u32 },
}

impl Unsafe {
    fn for_plugin(self, id: &str) -> LoadError {
        let id = id.to_owned();
        match self {
            Unsafe::Unreadable { path, source } => LoadError::Library { id, path, source },
            Unsafe::Writable { path, mode } => LoadError::Writable { id, path, mode },
            Unsafe::NotOwned { path, owner, host } => LoadError::NotOwned { id, path, owner, host },
        }
    }

    fn for_dir(self) -> LoadError {
        match self {
            Unsafe::Unreadable { path, source } => LoadError::PluginDir { dir: path, source },
            Unsafe::Writable { path, mode } => LoadError::DirWritable { dir: path, mode },
            Unsafe::NotOwned { path, owner, host } => LoadError::DirNotOwned { dir: path, owner, host },
        }
    }
}

/// Loading a library runs its constructors, so whoever can write a plugin's files runs code in
/// the host: each must be writable by its owner only, and owned by the host's user or root.
pub(crate) fn check_location(path: &Path) -> Result<(), Unsafe> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(path).map_err(|source| Unsafe::Unreadable { path: path.to_owned(), source })?;
    let mode = meta.permissions().mode();
    if mode & 0o022 != 0 {
        return Err(Unsafe::Writable { path: path.to_owned(), mode: mode & 0o7777 });
    }
    let host = rustix::process::geteuid().as_raw();
    if meta.uid() != host && meta.uid() != 0 {
        return Err(Unsafe::NotOwned { path: path.to_owned(), owner: meta.uid(), host });
    }
    Ok(())
}

/// Now, from the system clock (report times are wall-clock facts, not domain time).
pub(crate) fn now_timestamp() -> Timestamp {
    let ms =
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Timestamp(ms)
}

/// Serialises a duration as fractional milliseconds (`"load_ms": 0.42`).
fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use std::ptr;

    use async_trait::async_trait;
    use jiayuan_plugin_api::export::{
        API_CRATE_VERSION_NUL, CreateFn, PanicGuard, RUSTC_VERSION_NUL, TARGET_NUL, guarded_create,
    };
    use jiayuan_plugin_api::{
        API_CRATE_VERSION, API_VERSION, CreateCall, DECL_ABI_VERSION, DECL_MAGIC, HostContext, Manifest, Outcome,
        RUSTC_VERSION, RecordKind, ServicePlugin, TARGET, Workflow,
    };

    use super::*;
    use crate::plugins::test_support::{TestHost, probe, settings};

    /// A tiny in-test plugin.
    struct Tiny {
        id: &'static str,
        consistent: bool,
    }

    #[async_trait]
    impl ServicePlugin for Tiny {
        fn manifest(&self) -> Manifest {
            let m = Manifest::new(self.id, "小插件", "Tiny", "1.0.0");
            if self.consistent {
                m
            } else {
                m.with_kind(RecordKind::new("Bad Kind", "坏", "Bad", Workflow::new("nowhere", vec![], vec![])))
            }
        }

        async fn on_create(&self, _ctx: &dyn HostContext, _call: CreateCall) -> Result<Outcome, PluginError> {
            Ok(Outcome::accept().with_data(r#"{"tiny":true}"#.into()))
        }
    }

    /// A plugin whose manifest panics.
    struct Unreadable;

    #[async_trait]
    impl ServicePlugin for Unreadable {
        fn manifest(&self) -> Manifest {
            panic!("manifest exploded")
        }

        async fn on_create(&self, _ctx: &dyn HostContext, _call: CreateCall) -> Result<Outcome, PluginError> {
            Ok(Outcome::accept())
        }
    }

    fn tiny() -> Result<Box<dyn ServicePlugin>, PluginError> {
        guarded_create(|| Tiny { id: "tiny", consistent: true })
    }
    fn tiny_named_otherwise() -> Result<Box<dyn ServicePlugin>, PluginError> {
        guarded_create(|| Tiny { id: "someone-else", consistent: true })
    }
    fn tiny_inconsistent() -> Result<Box<dyn ServicePlugin>, PluginError> {
        guarded_create(|| Tiny { id: "tiny", consistent: false })
    }
    fn tiny_unreadable() -> Result<Box<dyn ServicePlugin>, PluginError> {
        Ok(Box::new(PanicGuard(Unreadable)))
    }
    fn tiny_failing() -> Result<Box<dyn ServicePlugin>, PluginError> {
        Err(PluginError::Config("key `api_url` is missing".into()))
    }
    fn tiny_panicking() -> Result<Box<dyn ServicePlugin>, PluginError> {
        guarded_create(|| -> Tiny { panic!("constructor exploded") })
    }

    const fn declaration(create: CreateFn) -> PluginDeclaration {
        PluginDeclaration {
            magic: DECL_MAGIC,
            decl_abi_version: DECL_ABI_VERSION,
            api_version: API_VERSION,
            rustc_version: RUSTC_VERSION_NUL.as_ptr().cast(),
            target: TARGET_NUL.as_ptr().cast(),
            api_crate_version: API_CRATE_VERSION_NUL.as_ptr().cast(),
            panic_unwind: true,
            plugin_id: c"tiny".as_ptr(),
            plugin_version: c"1.0.0".as_ptr(),
            create,
        }
    }

    static GOOD: PluginDeclaration = declaration(tiny);
    static BAD_MAGIC: PluginDeclaration = PluginDeclaration { magic: 0x0bad_f00d, ..declaration(tiny) };
    static BAD_LAYOUT: PluginDeclaration =
        PluginDeclaration { decl_abi_version: DECL_ABI_VERSION + 1, ..declaration(tiny) };
    static BAD_API: PluginDeclaration = PluginDeclaration { api_version: API_VERSION + 1, ..declaration(tiny) };
    static BAD_RUSTC: PluginDeclaration =
        PluginDeclaration { rustc_version: c"rustc 1.80.0 (forged 2024-01-01)".as_ptr(), ..declaration(tiny) };
    static NULL_RUSTC: PluginDeclaration = PluginDeclaration { rustc_version: ptr::null(), ..declaration(tiny) };
    static BAD_TARGET: PluginDeclaration =
        PluginDeclaration { target: c"riscv64gc-unknown-linux-gnu".as_ptr(), ..declaration(tiny) };
    static BAD_API_CRATE: PluginDeclaration =
        PluginDeclaration { api_crate_version: c"9.9.9".as_ptr(), ..declaration(tiny) };
    static PANIC_ABORT: PluginDeclaration = PluginDeclaration { panic_unwind: false, ..declaration(tiny) };
    static INIT_FAILS: PluginDeclaration = declaration(tiny_failing);
    static INIT_PANICS: PluginDeclaration = declaration(tiny_panicking);
    static OTHER_ID: PluginDeclaration = declaration(tiny_named_otherwise);
    static INCONSISTENT: PluginDeclaration = declaration(tiny_inconsistent);
    static UNREADABLE: PluginDeclaration = declaration(tiny_unreadable);

    fn registry() -> PluginRegistry {
        PluginRegistry::new(settings(Path::new("/nonexistent"), &[]))
    }

    /// Registers `bad` (which must be refused with an error `expected` accepts and whose message
    /// holds every `needle`), then the good plugin, which must still register and answer.
    async fn refused(bad: &'static PluginDeclaration, expected: fn(&LoadError) -> bool, needles: &[&str]) {
        let mut registry = registry();
        let err = registry.register_static(bad).expect_err("the declaration must be refused");
        assert!(expected(&err), "unexpected error: {err:?}");
        let text = err.to_string();
        for needle in needles {
            assert!(text.contains(needle), "{needle:?} missing in: {text}");
        }
        let good = registry.register_static(&GOOD).expect("the good plugin still registers");
        let outcome = good.on_create(&TestHost::new("{}"), probe("ok")).await.expect("and answers");
        assert_eq!(outcome.data_json.as_deref(), Some(r#"{"tiny":true}"#));
        let report = registry.report();
        assert!(matches!(&report[0].status, PluginStatus::Failed { error } if *error == text), "{report:?}");
        assert!(matches!(&report[1].status, PluginStatus::Loaded(info) if info.source == PluginSource::Static));
    }

    #[tokio::test]
    async fn check_5_refuses_a_wrong_magic() {
        refused(&BAD_MAGIC, |e| matches!(e, LoadError::BadMagic { found: 0x0bad_f00d, .. }), &["0x000000000badf00d"])
            .await;
    }

    #[tokio::test]
    async fn check_6_refuses_another_declaration_layout() {
        refused(&BAD_LAYOUT, |e| matches!(e, LoadError::DeclAbi { found: 2, expected: 1, .. }), &["version is 2"])
            .await;
    }

    #[tokio::test]
    async fn check_7_refuses_another_api_version() {
        let found = (API_VERSION + 1).to_string();
        let needles = [found.as_str(), "statically linked plugin `tiny`", "cargo xtask plugins build"];
        refused(
            &BAD_API,
            |e| matches!(e, LoadError::ApiVersion { found, expected, .. } if *found == *expected + 1),
            &needles,
        )
        .await;
    }

    #[tokio::test]
    async fn check_8_refuses_another_compiler() {
        refused(
            &BAD_RUSTC,
            |e| matches!(e, LoadError::Rustc { found, expected, .. } if found == "rustc 1.80.0 (forged 2024-01-01)" && expected == RUSTC_VERSION),
            &["`rustc 1.80.0 (forged 2024-01-01)`", RUSTC_VERSION, "rust-toolchain.toml"],
        )
        .await;
        refused(&NULL_RUSTC, |e| matches!(e, LoadError::Rustc { found, .. } if found == "<null>"), &["<null>"]).await;
    }

    #[tokio::test]
    async fn check_9_refuses_another_target_api_crate_or_panic_strategy() {
        refused(
            &BAD_TARGET,
            |e| matches!(e, LoadError::Build { field: "target", found, .. } if found == "riscv64gc-unknown-linux-gnu"),
            &[TARGET],
        )
        .await;
        refused(
            &BAD_API_CRATE,
            |e| matches!(e, LoadError::Build { field: "api_crate_version", found, .. } if found == "9.9.9"),
            &[API_CRATE_VERSION],
        )
        .await;
        refused(&PANIC_ABORT, |e| matches!(e, LoadError::Build { field: "panic_unwind", .. }), &["panic = \"unwind\""])
            .await;
    }

    #[tokio::test]
    async fn check_10_refuses_a_failing_or_panicking_constructor() {
        refused(
            &INIT_FAILS,
            |e| matches!(e, LoadError::Init { source: PluginError::Config(_), .. }),
            &["failed to start", "api_url"],
        )
        .await;
        refused(
            &INIT_PANICS,
            |e| matches!(e, LoadError::Init { source: PluginError::Panicked(m), .. } if m == "constructor exploded"),
            &["constructor exploded"],
        )
        .await;
        refused(
            &UNREADABLE,
            |e| matches!(e, LoadError::Init { source: PluginError::Panicked(m), .. } if m == "manifest exploded"),
            &["manifest exploded"],
        )
        .await;
    }

    #[tokio::test]
    async fn check_11_refuses_mismatched_ids_and_inconsistent_manifests() {
        refused(
            &OTHER_ID,
            |e| matches!(e, LoadError::ManifestMismatch { field: "manifest id", found, .. } if found == "someone-else"),
            &["`someone-else`", "tiny"],
        )
        .await;
        refused(
            &INCONSISTENT,
            |e| matches!(e, LoadError::InvalidManifest { problems, .. } if problems.len() == 2),
            &["`Bad Kind`", "initial state `nowhere`"],
        )
        .await;
    }

    #[tokio::test]
    async fn check_11_refuses_a_second_plugin_with_the_same_id() {
        let mut registry = registry();
        let first = registry.register_static(&GOOD).expect("first registration");
        let err = registry.register_static(&GOOD).expect_err("second registration");
        assert!(matches!(&err, LoadError::DuplicateId { id, .. } if id == "tiny"), "{err:?}");
        assert!(err.to_string().contains("the host binary"), "{err}");
        // The first one is untouched.
        assert!(registry.handle("tiny").is_some_and(|h| h.info() == first.info()));
        assert_eq!(registry.handles().count(), 1);
    }

    #[tokio::test]
    async fn several_static_plugins_register_side_by_side() {
        let mut registry = registry();
        registry.register_static(&jiayuan_plugin_fixture::DECLARATION).expect("fixture registers");
        registry.register_static(&GOOD).expect("tiny registers");
        let ids: Vec<&str> = registry.handles().map(PluginHandle::id).collect();
        assert_eq!(ids, ["fixture", "tiny"]);
        let fixture = registry.handle("fixture").expect("fixture is registered");
        assert_eq!(fixture.manifest().kind("probe").map(|k| k.id.as_str()), Some("probe"));
        let report = registry.report();
        assert_eq!(report.len(), 2);
        for entry in &report {
            let PluginStatus::Loaded(info) = &entry.status else { panic!("{entry:?}") };
            assert_eq!(info.source, PluginSource::Static);
            assert_eq!(info.sha256, None);
            assert_eq!(info.api_version, API_VERSION);
            assert_eq!(entry.sidecar, None);
        }
        assert_eq!(report[0].id, "fixture");
        let PluginStatus::Loaded(info) = &report[0].status else { unreachable!() };
        assert_eq!(info.version, env!("CARGO_PKG_VERSION"), "the fixture shares the workspace version");
    }

    #[test]
    fn the_report_serialises_for_the_health_endpoint() {
        let mut registry = registry();
        registry.register_static(&GOOD).expect("registers");
        let _ = registry.register_static(&BAD_API);
        let json = serde_json::to_value(registry.report()).expect("the report serialises");
        assert_eq!(json[0]["id"], "tiny");
        assert_eq!(json[0]["status"]["status"], "loaded");
        assert_eq!(json[0]["status"]["source"]["kind"], "static");
        assert_eq!(json[0]["status"]["version"], "1.0.0");
        assert!(json[0]["status"]["load_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{json}");
        assert_eq!(json[1]["status"]["status"], "failed");
        assert!(json[1]["status"]["error"].as_str().is_some_and(|e| e.contains("plugin API version")), "{json}");
    }

    #[test]
    fn a_missing_plugin_directory_is_an_error_of_its_own() {
        let err = registry().load_dir().expect_err("/nonexistent cannot be read");
        assert!(matches!(&err, LoadError::PluginDir { dir, .. } if dir == Path::new("/nonexistent")), "{err:?}");
        assert!(err.to_string().contains("plugins.dir"), "{err}");
    }
}
