//! Why a plugin did not load ([`LoadError`], one variant per check, in the order they run) and why
//! a call into a loaded plugin failed ([`CallError`]).

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use jiayuan_plugin_api::{API_CRATE_VERSION, PluginError};

/// The hooks the host calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    /// [`jiayuan_plugin_api::ServicePlugin::on_create`].
    OnCreate,
    /// [`jiayuan_plugin_api::ServicePlugin::on_transition`].
    OnTransition,
    /// [`jiayuan_plugin_api::ServicePlugin::kpis`].
    Kpis,
}

impl Hook {
    /// The hook's name as written in the trait.
    pub fn as_str(self) -> &'static str {
        match self {
            Hook::OnCreate => "on_create",
            Hook::OnTransition => "on_transition",
            Hook::Kpis => "kpis",
        }
    }
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a plugin was refused. The variants follow the order of the checks; each message names what
/// was found, what was expected, and how to fix it.
///
/// `plugin` fields describe the plugin as far as it is known at that point, e.g.
/// ``plugin `fixture` (/srv/plugins/fixture/libjiayuan_plugin_fixture.so)``.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The plugin directory itself cannot be read.
    #[error("cannot read the plugin directory {}: {source}; create it or point plugins.dir in config/default.toml at the output of `cargo xtask plugins build`", dir.display())]
    PluginDir {
        /// `plugins.dir`.
        dir: PathBuf,
        /// The IO error.
        source: io::Error,
    },
    /// Check 1: the sidecar cannot be read or parsed.
    #[error("cannot read plugin sidecar {}: {reason}; rebuild the plugin with `cargo xtask plugins build`", path.display())]
    Sidecar {
        /// The sidecar.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Check 1: the sidecar or the library lies outside `plugins.dir` (through `..`, a path in
    /// `library`, or a symbolic link).
    #[error("{} lies outside the plugin directory {}; install plugins only with `cargo xtask plugins build --out <plugins.dir>`", path.display(), dir.display())]
    OutsideDir {
        /// The offending path (resolved).
        path: PathBuf,
        /// `plugins.dir` (resolved).
        dir: PathBuf,
    },
    /// Check 1: the plugin's id is not on the allow-list.
    #[error("plugin `{id}` ({}) is not on the allow-list {allowed:?}; add `{id}` to plugins.allow in config/default.toml if it should load", path.display())]
    NotOnAllowList {
        /// The id the sidecar names.
        id: String,
        /// The sidecar.
        path: PathBuf,
        /// `plugins.allow`.
        allowed: Vec<String>,
    },
    /// The plugin directory itself is writable by group or others: nothing in it loads.
    #[error("the plugin directory {} is writable by group or others (mode {mode:o}), so anyone who can write it could run code in the host; no plugin loads from it until it is writable by its owner only: `chmod go-w {}`", dir.display(), dir.display())]
    DirWritable {
        /// `plugins.dir` (resolved).
        dir: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The plugin directory is owned by another user than the host's (or root).
    #[error("the plugin directory {} is owned by user {owner}, not by the host's user {host} or root; no plugin loads from it until `chown {host} {}`", dir.display(), dir.display())]
    DirNotOwned {
        /// `plugins.dir` (resolved).
        dir: PathBuf,
        /// Its owner's uid.
        owner: u32,
        /// The host's effective uid.
        host: u32,
    },
    /// Check 1: a file or directory of the plugin is writable by group or others.
    #[error("plugin `{id}`: {} is writable by group or others (mode {mode:o}), so anyone who can write it could run code in the host; make it writable by its owner only: `chmod go-w {}`", path.display(), path.display())]
    Writable {
        /// The plugin id from the sidecar.
        id: String,
        /// The offending path.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Check 1: a file or directory of the plugin is owned by another user than the host's (or
    /// root).
    #[error("plugin `{id}`: {} is owned by user {owner}, not by the host's user {host} or root; `chown {host} {}` if its contents are trusted", path.display(), path.display())]
    NotOwned {
        /// The plugin id from the sidecar.
        id: String,
        /// The offending path.
        path: PathBuf,
        /// Its owner's uid.
        owner: u32,
        /// The host's effective uid.
        host: u32,
    },
    /// Check 1: the library named by the sidecar cannot be read.
    #[error("plugin `{id}`: cannot read library {}: {source}; rebuild the plugin with `cargo xtask plugins build`", path.display())]
    Library {
        /// The plugin id from the sidecar.
        id: String,
        /// The library path.
        path: PathBuf,
        /// The IO error.
        source: io::Error,
    },
    /// Check 2: the sidecar says the plugin was built differently from this host.
    #[error("plugin `{id}`: sidecar {} says {field} = `{found}` but this host expects `{expected}`; rebuild the plugin with `cargo xtask plugins build`", path.display())]
    SidecarMismatch {
        /// The plugin id from the sidecar.
        id: String,
        /// The sidecar.
        path: PathBuf,
        /// `api_version`, `api_crate_version`, `rustc` or `target`.
        field: &'static str,
        /// The sidecar's value.
        found: String,
        /// This host's value.
        expected: String,
    },
    /// Check 2: the library is not the file the sidecar was written for.
    #[error("plugin `{id}`: library {} has sha256 {found} but its sidecar says {expected}; the file changed after it was built, rebuild the plugin with `cargo xtask plugins build`", path.display())]
    Sha256Mismatch {
        /// The plugin id from the sidecar.
        id: String,
        /// The library.
        path: PathBuf,
        /// The file's digest.
        found: String,
        /// The sidecar's digest.
        expected: String,
    },
    /// Check 2: the configuration pins another sha256 for this plugin (`[plugins.pin]`): the
    /// library was swapped, perhaps together with its sidecar.
    #[error("plugin `{id}`: library {} has sha256 {found} but plugins.pin.{id} in the configuration pins {expected}; if this build is trusted, set plugins.pin.{id} to its digest, otherwise reinstall the pinned build", path.display())]
    PinMismatch {
        /// The plugin id from the sidecar.
        id: String,
        /// The library.
        path: PathBuf,
        /// The file's digest.
        found: String,
        /// The pinned digest.
        expected: String,
    },
    /// Check 2: the library's ELF `.comment` names another compiler than this host's.
    #[error("plugin `{id}`: library {} was compiled by `{found}` (ELF .comment) but this host by `{expected}`; rebuild the plugin with `cargo xtask plugins build` using the toolchain pinned in rust-toolchain.toml", path.display())]
    CompilerMismatch {
        /// The plugin id from the sidecar.
        id: String,
        /// The library.
        path: PathBuf,
        /// The `.comment` entry.
        found: String,
        /// This host's compiler, in the same form.
        expected: String,
    },
    /// Check 3: `dlopen` failed (not a shared library, wrong architecture, missing dependency).
    #[error("plugin `{id}`: cannot open library {}: {source}; check that it is a shared library built for this host, then rebuild the plugin with `cargo xtask plugins build`", path.display())]
    Open {
        /// The plugin id from the sidecar.
        id: String,
        /// The library.
        path: PathBuf,
        /// The loader's error.
        source: libloading::Error,
    },
    /// Check 4: the library does not export the declaration for the sidecar's id.
    #[error("plugin `{id}`: library {} does not export `{symbol}`, so it is not the Jiayuan plugin `{id}` ({source}); check the id in its sidecar and in its export_plugin! call, then rebuild it with `cargo xtask plugins build`", path.display())]
    NotAPlugin {
        /// The plugin id from the sidecar.
        id: String,
        /// The library.
        path: PathBuf,
        /// The symbol looked up.
        symbol: String,
        /// The loader's error.
        source: libloading::Error,
    },
    /// Check 5: the declaration does not start with the magic number.
    #[error(
        "{plugin}: declaration magic is {found:#018x}, expected {expected:#018x}, so the symbol is not a Jiayuan plugin declaration; rebuild the plugin with export_plugin! and `cargo xtask plugins build`"
    )]
    BadMagic {
        /// The plugin.
        plugin: String,
        /// The magic found.
        found: u64,
        /// [`jiayuan_plugin_api::DECL_MAGIC`].
        expected: u64,
    },
    /// Check 6: the declaration has another layout version.
    #[error(
        "{plugin}: declaration layout version is {found} but this host reads version {expected}; rebuild the plugin against jiayuan-plugin-api {API_CRATE_VERSION} with `cargo xtask plugins build`"
    )]
    DeclAbi {
        /// The plugin.
        plugin: String,
        /// The plugin's layout version.
        found: u32,
        /// [`jiayuan_plugin_api::DECL_ABI_VERSION`].
        expected: u32,
    },
    /// Check 7: the plugin was built against another plugin API (exact match required).
    #[error(
        "{plugin} was built against plugin API version {found} but this host speaks version {expected}; rebuild the plugin against jiayuan-plugin-api {API_CRATE_VERSION} with `cargo xtask plugins build`"
    )]
    ApiVersion {
        /// The plugin.
        plugin: String,
        /// The plugin's API version.
        found: u32,
        /// [`jiayuan_plugin_api::API_VERSION`].
        expected: u32,
    },
    /// Check 8: the plugin was built by another compiler (exact `rustc --version` match required).
    #[error(
        "{plugin} was built by `{found}` but this host by `{expected}`; rebuild the plugin with `cargo xtask plugins build` using the toolchain pinned in rust-toolchain.toml"
    )]
    Rustc {
        /// The plugin.
        plugin: String,
        /// The plugin's compiler.
        found: String,
        /// [`jiayuan_plugin_api::RUSTC_VERSION`].
        expected: String,
    },
    /// Check 9: target, API crate version or panic strategy differ.
    #[error(
        "{plugin} was built with {field} = `{found}` but this host needs `{expected}`; rebuild the plugin with `cargo xtask plugins build` (same target, jiayuan-plugin-api {API_CRATE_VERSION}, panic = \"unwind\")"
    )]
    Build {
        /// The plugin.
        plugin: String,
        /// `target`, `api_crate_version` or `panic_unwind`.
        field: &'static str,
        /// The plugin's value.
        found: String,
        /// This host's value.
        expected: String,
    },
    /// Check 10: the plugin's constructor failed or panicked (caught by its guard).
    #[error(
        "{plugin} failed to start: {source}; fix the plugin (or its configuration) and rebuild it with `cargo xtask plugins build`"
    )]
    Init {
        /// The plugin.
        plugin: String,
        /// What the constructor returned.
        source: PluginError,
    },
    /// Check 10: the constructor or `manifest()` did not return within the call timeout (its
    /// thread is left stuck).
    #[error(
        "{plugin} did not finish starting (constructor and manifest) within {after:?}; fix the plugin so it does not block, then rebuild it"
    )]
    StartTimeout {
        /// The plugin.
        plugin: String,
        /// The call timeout.
        after: Duration,
    },
    /// A process-isolated plugin's child did not start, or refused the plugin (its loader's
    /// error is the reason).
    #[error("{plugin}: {reason}")]
    Runner {
        /// The plugin.
        plugin: String,
        /// What went wrong.
        reason: String,
    },
    /// Check 11: ids (or versions) of sidecar, declaration and manifest disagree.
    #[error(
        "{plugin}: {field} is `{found}` but `{expected}` was expected; make the ids in export_plugin!, the manifest and the crate name agree, then rebuild with `cargo xtask plugins build`"
    )]
    ManifestMismatch {
        /// The plugin.
        plugin: String,
        /// What disagrees, e.g. `manifest id`.
        field: &'static str,
        /// The value found.
        found: String,
        /// The value expected.
        expected: String,
    },
    /// Check 11: the manifest is inconsistent.
    #[error("{plugin} declares an inconsistent manifest: {}; fix the manifest and rebuild the plugin", problems.join("; "))]
    InvalidManifest {
        /// The plugin.
        plugin: String,
        /// Every problem [`jiayuan_plugin_api::Manifest::validate`] found.
        problems: Vec<String>,
    },
    /// Check 11: a plugin with this id is already loaded.
    #[error("{plugin}: a plugin with id `{id}` is already loaded from {existing}; remove one of the two copies")]
    DuplicateId {
        /// The plugin refused.
        plugin: String,
        /// The id.
        id: String,
        /// Where the loaded one came from.
        existing: String,
    },
}

/// Why a call into a loaded plugin failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The plugin answered with an error (refused input, conflict, its own failure), or a host
    /// service failed or panicked during the call ([`PluginError::Host`]). Never
    /// [`PluginError::Panicked`]: that is [`CallError::Panicked`].
    #[error(transparent)]
    Plugin(PluginError),
    /// The hook did not finish in time; the call was abandoned (its thread, if the hook goes on
    /// blocking it, counted stuck).
    #[error("plugin `{plugin}` did not finish {hook} within {after:?}; the call was abandoned")]
    Timeout {
        /// Plugin id.
        plugin: String,
        /// The hook.
        hook: Hook,
        /// The timeout.
        after: Duration,
    },
    /// The plugin is quarantined and takes no calls until the host restarts.
    #[error("plugin `{plugin}` is quarantined until the host restarts: {reason}")]
    Quarantined {
        /// Plugin id.
        plugin: String,
        /// Why.
        reason: String,
    },
    /// The process-isolated plugin's child process died during the call (crash, abort,
    /// segfault) or was killed after it hung; the host restarts it.
    #[error("plugin `{plugin}`'s process died during {hook} ({cause}); it is restarted")]
    Died {
        /// Plugin id.
        plugin: String,
        /// The hook.
        hook: Hook,
        /// How it ended (exit status or signal).
        cause: String,
    },
    /// The hook panicked; the guard compiled into the plugin caught it.
    #[error("plugin `{plugin}` panicked in {hook}: {message}")]
    Panicked {
        /// Plugin id.
        plugin: String,
        /// The hook.
        hook: Hook,
        /// The panic message.
        message: String,
    },
}

impl CallError {
    /// The plugin the error names (every variant but [`CallError::Plugin`] does).
    pub fn plugin(&self) -> Option<&str> {
        match self {
            CallError::Plugin(_) => None,
            CallError::Timeout { plugin, .. }
            | CallError::Quarantined { plugin, .. }
            | CallError::Panicked { plugin, .. }
            | CallError::Died { plugin, .. } => Some(plugin),
        }
    }
}
