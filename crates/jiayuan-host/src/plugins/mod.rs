//! 插件加载 plugin loading: the loader, the registry of loaded service-item plugins, and the guards
//! every call into a plugin runs under.
//!
//! The contract is in `jiayuan-plugin-api` and in ARCHITECTURE.md ("The plugin contract"); this
//! module is the host's side of it:
//!
//! - [`PluginRegistry::load_dir`] discovers `<plugins.dir>/<id>/plugin.toml` sidecars (written by
//!   `cargo xtask plugins build`) and loads each library through the ordered checks of
//!   [`LoadError`]: allow-list and file permissions, sidecar against this host and the file's
//!   sha256 (no plugin code has run yet), then `dlopen`, `dlsym`, and the declaration's fields in
//!   order, then the plugin's constructor and its manifest. A plugin that fails any check is
//!   recorded in the [`PluginRegistry::report`] and skipped; the host keeps running.
//! - [`PluginRegistry::register_static`] runs the same declaration checks on a plugin linked into
//!   the binary (its rlib's `pub static DECLARATION`), which is how tests use plugins.
//! - [`PluginHandle`] calls a plugin: refused while the plugin is quarantined, the host's services
//!   wrapped in [`HostGuard`] (a host panic never unwinds into the plugin), under a timeout, and
//!   counting the panics the plugin's own guard caught; too many within the window quarantine the
//!   plugin until the host restarts.
//!
//! Libraries are never closed (see `loader.rs`): reloading a plugin means restarting the host.

mod error;
mod guard;
mod handle;
mod loader;
mod registry;
mod sidecar;

#[cfg(test)]
mod dylib_tests;
#[cfg(test)]
mod test_support;

use std::path::PathBuf;
use std::time::Duration;

pub use error::{CallError, Hook, LoadError};
pub use guard::HostGuard;
pub use handle::{PluginHandle, Quarantine};
pub use registry::{
    FailedLoad, LoadSummary, LoadedInfo, PluginRegistry, PluginReportEntry, PluginSource, PluginStatus,
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
    /// Every hook call is cancelled after this long.
    pub call_timeout: Duration,
    /// A plugin that panics this many times within [`PluginSettings::quarantine_window`] is
    /// quarantined until the host restarts; `0` never quarantines.
    pub quarantine_after_panics: u32,
    /// The window panics are counted in.
    pub quarantine_window: Duration,
}
