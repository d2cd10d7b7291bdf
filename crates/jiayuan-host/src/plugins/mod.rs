//! 插件加载 plugin loading: the loader, the registry of loaded service-item plugins, and the guards
//! every call into a plugin runs under.
//!
//! The contract is in `jiayuan-plugin-api` and in ARCHITECTURE.md ("The plugin contract"); this
//! module is the host's side of it:
//!
//! - [`PluginRegistry::load_dir`] discovers `<plugins.dir>/<id>/plugin.toml` sidecars (written by
//!   `cargo xtask plugins build`) and loads each library through the ordered checks of
//!   [`LoadError`]: the directory, each plugin folder and file writable by their owner only and
//!   owned by the host's user or root, allow-list, sidecar against this host and the file's sha256
//!   (and `[plugins.pin]`; no plugin code has run yet), then `dlopen`, `dlsym`, and the
//!   declaration's fields in order, then the plugin's constructor and its manifest (on the
//!   plugin's own threads). A plugin that fails any check is recorded in the
//!   [`PluginRegistry::report`] and skipped; the host keeps running. Libraries without a sidecar
//!   and allowed plugins that are missing are reported too.
//! - [`PluginRegistry::register_static`] runs the same declaration checks on a plugin linked into
//!   the binary (its rlib's `pub static DECLARATION`), which is how tests use plugins.
//! - [`PluginHandle`] calls a plugin: refused while the plugin is quarantined; never on a runtime
//!   worker (the hook runs on the plugin's own threads, or in its child process under
//!   `process` [`Isolation`]); its host services served by the caller through [`HostGuard`] (a
//!   host panic never unwinds into the plugin); under the timeout, after which the call is
//!   abandoned. Too many panics within the window, all threads stuck, or a child dying too often
//!   quarantine the plugin until the host restarts.
//!
//! Libraries are never closed (see `loader.rs`): reloading a plugin means restarting the host.

mod error;
mod guard;
mod handle;
mod isolation;
mod loader;
mod registry;
mod sidecar;

#[cfg(test)]
mod dylib_tests;
#[cfg(test)]
mod test_support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use error::{CallError, Hook, LoadError};
pub use guard::HostGuard;
pub use handle::{CallHealth, PluginHandle, Quarantine, QuarantineAlert};
pub use isolation::Isolation;
pub use isolation::child::{RunnerArgs, RunnerError, run_plugin_runner, stdio as runner_stdio};
pub use registry::{
    FailedLoad, LoadSummary, LoadedInfo, PluginRegistry, PluginReportEntry, PluginSource, PluginStatus,
    RUNNER_SUBCOMMAND,
};
pub use sidecar::{SIDECAR_FILE, Sidecar, sha256_hex};

/// How plugins are found, which may load, and how calls into them are bounded (`[plugins]` in the
/// configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSettings {
    /// The directory `cargo xtask plugins build` writes to: `<dir>/<id>/plugin.toml` next to
    /// `<dir>/<id>/lib<crate>.so`. Libraries outside it are refused. A relative path is resolved
    /// against the working directory when plugins load.
    pub dir: PathBuf,
    /// Plugin ids that may load. A library whose sidecar names another id is refused.
    pub allow: Vec<String>,
    /// Every hook call is abandoned after this long (and its thread counted stuck if the hook
    /// goes on running).
    pub call_timeout: Duration,
    /// How many OS threads each plugin owns for its hooks (at least one). A plugin whose threads
    /// are all stuck is quarantined.
    pub threads: usize,
    /// A plugin that panics this many times within [`PluginSettings::quarantine_window`] is
    /// quarantined until the host restarts; `0` never quarantines.
    pub quarantine_after_panics: u32,
    /// The window panics (and, for process isolation, deaths of the child) are counted in.
    pub quarantine_window: Duration,
    /// `[plugins.pin]`: the sha256 a plugin's library must have, by plugin id. A library whose
    /// digest differs is refused even when its sidecar agrees with it.
    pub pins: BTreeMap<String, String>,
    /// `[plugins.isolation]`: where each plugin's hooks run, by plugin id; absent ids run on
    /// their own threads in the host process.
    pub isolation: BTreeMap<String, Isolation>,
    /// The executable that runs a process-isolated plugin (`jiayuan` itself, with its hidden
    /// `plugin-runner` subcommand). Set by the CLI; without it `process` isolation is refused.
    pub runner: Option<PathBuf>,
}

impl PluginSettings {
    /// Settings for `dir` and `allow` with the defaults of `config/default.toml` for the rest:
    /// 5 s call timeout, two threads per plugin, quarantine after 3 panics within 10 minutes, no
    /// pins, every plugin on its own threads, no runner.
    pub fn new(dir: PathBuf, allow: Vec<String>) -> PluginSettings {
        PluginSettings {
            dir,
            allow,
            call_timeout: Duration::from_secs(5),
            threads: 2,
            quarantine_after_panics: 3,
            quarantine_window: Duration::from_secs(600),
            pins: BTreeMap::new(),
            isolation: BTreeMap::new(),
            runner: None,
        }
    }

    /// Where plugin `id` runs.
    pub fn isolation_of(&self, id: &str) -> Isolation {
        self.isolation.get(id).copied().unwrap_or_default()
    }
}
