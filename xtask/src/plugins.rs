//! `cargo xtask plugins build|check`: builds every service-item plugin crate as a cdylib, lays it
//! out as `<out>/<id>/lib<crate>.so` + `<out>/<id>/plugin.toml` for the host's loader, and refuses
//! plugins whose dependencies break the plugin contract (ARCHITECTURE.md, invariant 3).
//!
//! The sidecar format belongs to the host (`jiayuan_host::plugins::Sidecar`); xtask may not depend
//! on the host, so [`render_sidecar`] writes the same keys, and a test compares its output with
//! the host's golden file `crates/jiayuan-host/src/plugins/testdata/plugin.toml`.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail, ensure};
use clap::Subcommand;
use sha2::{Digest, Sha256};

/// Crate-name prefix of plugin crates; the rest is the plugin id.
const CRATE_PREFIX: &str = "jiayuan-plugin-";
/// Plugin crates that exist only for tests, built only with `--include-fixtures`.
const FIXTURES: &[&str] = &["jiayuan-plugin-fixture"];

/// `cargo xtask plugins …`.
#[derive(Debug, Subcommand)]
pub(crate) enum PluginsCommand {
    /// Check the dependencies, build every plugin in one cargo invocation, and write
    /// `<out>/<id>/lib<crate>.so` with its `plugin.toml` sidecar.
    Build {
        /// Build with the release profile.
        #[arg(long)]
        release: bool,
        /// Output directory (the host's `plugins.dir`) [default: WORKSPACE/target/plugins].
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Also build test fixtures (jiayuan-plugin-fixture). Never ship them.
        #[arg(long)]
        include_fixtures: bool,
        /// Build one plugin crate outside this workspace (its Cargo.toml) instead of the
        /// workspace's, with the same deny-list and this workspace's toolchain and plugin API.
        #[arg(long, value_name = "PATH", conflicts_with = "include_fixtures")]
        manifest_path: Option<PathBuf>,
    },
    /// Only check every plugin's dependencies against the deny-list.
    Check {
        /// Also check test fixtures.
        #[arg(long)]
        include_fixtures: bool,
    },
}

/// Runs a `plugins` command.
pub(crate) fn run(cmd: PluginsCommand) -> Result<()> {
    let ws = Workspace::discover()?;
    match cmd {
        PluginsCommand::Check { include_fixtures } => {
            let plugins = ws.plugins(include_fixtures)?;
            check(&ws, &plugins)?;
            println!("dependencies of {} plugin(s) are clean: {}", plugins.len(), ids(&plugins));
            Ok(())
        }
        PluginsCommand::Build { release, out, include_fixtures, manifest_path: None } => {
            let plugins = ws.plugins(include_fixtures)?;
            check(&ws, &plugins)?;
            let out = out.unwrap_or_else(|| ws.root.join("target").join("plugins"));
            build(&ws, &plugins, release, &out)
        }
        PluginsCommand::Build { release, out, manifest_path: Some(manifest), .. } => {
            let plugin = out_of_tree(&ws, &manifest)?;
            let plugins = [plugin];
            check(&ws, &plugins)?;
            let out = out.unwrap_or_else(|| ws.root.join("target").join("plugins"));
            build(&ws, &plugins, release, &out)
        }
    }
}

/// The workspace, as `cargo metadata` describes it.
#[derive(Debug)]
struct Workspace {
    root: PathBuf,
    cargo: OsString,
    api_crate_version: String,
    crates: Vec<PluginCrate>,
}

/// A plugin crate: a workspace member under `plugins/` whose library is a cdylib, or one crate
/// outside the workspace (`--manifest-path`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct PluginCrate {
    /// `Some(Cargo.toml)` for a crate outside this workspace: cargo runs on its manifest.
    outside: Option<PathBuf>,
    /// Package name, `jiayuan-plugin-dog-licensing`.
    package: String,
    /// Plugin id, `dog-licensing`.
    id: String,
    /// Package version.
    version: String,
    /// Library target name, `jiayuan_plugin_dog_licensing`.
    lib_name: String,
    /// Directory of its Cargo.toml.
    dir: PathBuf,
}

impl Workspace {
    fn discover() -> Result<Workspace> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("Cargo.toml");
        let out = Command::new(&cargo)
            .args(["metadata", "--format-version", "1", "--no-deps", "--manifest-path"])
            .arg(&manifest)
            .stderr(Stdio::inherit())
            .output()
            .context("cannot run `cargo metadata`")?;
        ensure!(out.status.success(), "`cargo metadata` failed: {}", out.status);
        let meta: serde_json::Value =
            serde_json::from_slice(&out.stdout).context("`cargo metadata` printed no JSON")?;
        let root = PathBuf::from(meta["workspace_root"].as_str().context("metadata has no workspace_root")?);
        let (api_crate_version, crates) = parse_metadata(&meta, &root)?;
        Ok(Workspace { root, cargo, api_crate_version, crates })
    }

    /// The plugin crates to work on; fixtures only when asked for.
    fn plugins(&self, include_fixtures: bool) -> Result<Vec<PluginCrate>> {
        let plugins: Vec<PluginCrate> = self
            .crates
            .iter()
            .filter(|c| include_fixtures || !FIXTURES.contains(&c.package.as_str()))
            .cloned()
            .collect();
        ensure!(!plugins.is_empty(), "no plugin crates (cdylib libraries under plugins/) in {}", self.root.display());
        Ok(plugins)
    }

    fn cargo(&self) -> Command {
        let mut cmd = Command::new(&self.cargo);
        cmd.current_dir(&self.root);
        cmd
    }
}

/// The API crate's version and the plugin crates, from `cargo metadata --no-deps` output.
fn parse_metadata(meta: &serde_json::Value, root: &Path) -> Result<(String, Vec<PluginCrate>)> {
    let packages = meta["packages"].as_array().context("metadata has no packages")?;
    let api_crate_version = packages
        .iter()
        .find(|p| p["name"] == "jiayuan-plugin-api")
        .and_then(|p| p["version"].as_str())
        .context("the workspace has no jiayuan-plugin-api package")?
        .to_owned();
    let plugins_dir = root.join("plugins");
    let mut crates = Vec::new();
    for p in packages {
        let (Some(name), Some(version), Some(manifest)) =
            (p["name"].as_str(), p["version"].as_str(), p["manifest_path"].as_str())
        else {
            continue;
        };
        if !Path::new(manifest).starts_with(&plugins_dir) {
            continue;
        }
        let Some(lib) = p["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["crate_types"].as_array().is_some_and(|k| k.iter().any(|k| k == "cdylib")))
        else {
            continue;
        };
        let id = name.strip_prefix(CRATE_PREFIX).with_context(|| {
            format!("plugin crate `{name}` must be named `{CRATE_PREFIX}<id>`, the id being its plugin id")
        })?;
        crates.push(PluginCrate {
            outside: None,
            package: name.to_owned(),
            id: id.to_owned(),
            version: version.to_owned(),
            lib_name: lib["name"].as_str().context("a target without a name")?.to_owned(),
            dir: Path::new(manifest).parent().context("a manifest path without a directory")?.to_owned(),
        });
    }
    crates.sort_by(|a, b| a.id.cmp(&b.id));
    Ok((api_crate_version, crates))
}

/// The plugin crate of an out-of-tree `Cargo.toml`, from its own `cargo metadata`.
fn out_of_tree(ws: &Workspace, manifest: &Path) -> Result<PluginCrate> {
    let manifest = fs::canonicalize(manifest).with_context(|| format!("cannot find {}", manifest.display()))?;
    let out = Command::new(&ws.cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--manifest-path"])
        .arg(&manifest)
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run `cargo metadata`")?;
    ensure!(out.status.success(), "`cargo metadata --manifest-path {}` failed: {}", manifest.display(), out.status);
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).context("`cargo metadata` printed no JSON")?;
    let package = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["manifest_path"].as_str().map(Path::new) == Some(manifest.as_path()))
        .with_context(|| format!("{} is not a package manifest (a virtual workspace?)", manifest.display()))?;
    let name = package["name"].as_str().context("a package without a name")?;
    let id = name.strip_prefix(CRATE_PREFIX).with_context(|| {
        format!("plugin crate `{name}` must be named `{CRATE_PREFIX}<id>`, the id being its plugin id")
    })?;
    let lib = package["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["crate_types"].as_array().is_some_and(|k| k.iter().any(|k| k == "cdylib")))
        .with_context(|| {
            format!("`{name}` has no cdylib library: set `crate-type = [\"cdylib\", \"rlib\"]` in [lib]")
        })?;
    Ok(PluginCrate {
        outside: Some(manifest.clone()),
        package: name.to_owned(),
        id: id.to_owned(),
        version: package["version"].as_str().context("a package without a version")?.to_owned(),
        lib_name: lib["name"].as_str().context("a target without a name")?.to_owned(),
        dir: manifest.parent().context("a manifest path without a directory")?.to_owned(),
    })
}

fn ids(plugins: &[PluginCrate]) -> String {
    plugins.iter().map(|p| p.id.as_str()).collect::<Vec<_>>().join(", ")
}

// ---------------------------------------------------------------------------------------------
// The dependency deny-list.

/// Why a dependency may not appear in a plugin's normal dependency tree; `None` when it may.
fn deny_reason(name: &str, features: &[&str]) -> Option<String> {
    const RUNTIME: &[&str] = &["rt", "rt-multi-thread", "time", "net"];
    match name {
        "tokio" => {
            let bad: Vec<&str> = features.iter().copied().filter(|f| RUNTIME.contains(f)).collect();
            (!bad.is_empty()).then(|| {
                format!(
                    "tokio with feature(s) {}: a plugin's copy of tokio has no runtime (spawn, sleep and IO panic); \
                     use HostContext, and only tokio's `sync`/`macros` features if any",
                    bad.join(", ")
                )
            })
        }
        n if n.starts_with("sqlx") || n.starts_with("sea-orm") => {
            Some("a database library: plugins read records through HostContext::records".to_owned())
        }
        "tracing-subscriber" | "env_logger" | "log4rs" | "fern" => {
            Some("a logger: a plugin's logger never reaches the host's; log through HostContext::log".to_owned())
        }
        "mimalloc" | "jemallocator" | "tikv-jemallocator" => {
            Some("a global allocator: host and plugins must share the system allocator".to_owned())
        }
        n if n.starts_with("snmalloc") => {
            Some("a global allocator: host and plugins must share the system allocator".to_owned())
        }
        "jiayuan-host" | "jiayuan-store" | "jiayuan-server" | "jiayuan-cli" => {
            Some("the host: plugins depend on jiayuan-plugin-api (and jiayuan-domain) only".to_owned())
        }
        _ => None,
    }
}

/// Every denied dependency in `cargo tree -e normal --prefix depth -f "{p}|{f}"` output, as
/// `(dependency path, reason)`.
fn denied_in_tree(tree: &str) -> Vec<(String, String)> {
    let mut stack: Vec<String> = Vec::new();
    let mut found = Vec::new();
    for line in tree.lines() {
        let digits = line.chars().take_while(char::is_ascii_digit).count();
        let Ok(depth) = line[..digits].parse::<usize>() else { continue };
        let rest = line[digits..].trim_end().trim_end_matches(" (*)");
        let (package, features) = rest.split_once('|').unwrap_or((rest, ""));
        let mut words = package.split_whitespace();
        let (Some(name), version) = (words.next(), words.next().unwrap_or("")) else { continue };
        stack.truncate(depth);
        stack.push(format!("{name} {version}").trim_end().to_owned());
        let features: Vec<&str> = features.split(',').map(str::trim).filter(|f| !f.is_empty()).collect();
        if let Some(reason) = deny_reason(name, &features) {
            found.push((stack.join(" -> "), reason));
        }
    }
    found
}

/// Lines of `.rs` files under `dir` that declare a `#[global_allocator]`, as `path:line`.
fn global_allocators(dir: &Path) -> Result<Vec<String>> {
    let mut hits = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(d) = pending.pop() {
        for entry in fs::read_dir(&d).with_context(|| format!("cannot read {}", d.display()))? {
            let path = entry?.path();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if path.is_dir() {
                if !name.starts_with('.') && !name.starts_with("target") {
                    pending.push(path);
                }
            } else if name.ends_with(".rs") {
                let text = fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
                for (i, line) in text.lines().enumerate() {
                    let squeezed: String = line.chars().filter(|c| !c.is_whitespace()).collect();
                    if !squeezed.starts_with("//") && squeezed.contains("#[global_allocator]") {
                        hits.push(format!("{}:{}", path.display(), i + 1));
                    }
                }
            }
        }
    }
    hits.sort();
    Ok(hits)
}

/// Runs the deny-list on every plugin; fails naming each plugin and dependency path.
fn check(ws: &Workspace, plugins: &[PluginCrate]) -> Result<()> {
    println!("checking the dependencies of {} plugin(s): {}", plugins.len(), ids(plugins));
    let mut problems = Vec::new();
    for p in plugins {
        let mut tree = ws.cargo();
        match &p.outside {
            Some(manifest) => tree.arg("tree").arg("--manifest-path").arg(manifest),
            None => tree.args(["tree", "-p", &p.package]),
        };
        let out = tree
            .args(["-e", "normal", "--prefix", "depth", "-f", "{p}|{f}"])
            .stderr(Stdio::inherit())
            .output()
            .context("cannot run `cargo tree`")?;
        ensure!(out.status.success(), "`cargo tree -p {}` failed: {}", p.package, out.status);
        for (path, reason) in denied_in_tree(&String::from_utf8_lossy(&out.stdout)) {
            problems.push(format!("plugin `{}` depends on {path}: {reason}", p.id));
        }
        for at in global_allocators(&p.dir)? {
            problems.push(format!(
                "plugin `{}` declares #[global_allocator] at {at}: host and plugins must share the system allocator",
                p.id
            ));
        }
    }
    if !problems.is_empty() {
        bail!("the plugin deny-list failed:\n  {}", problems.join("\n  "));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Building and laying out.

/// What a sidecar holds. Keys, in this order (keep this list identical to the doc comment of
/// `jiayuan_host::plugins::Sidecar`): `id`, `version`, `api_version` (integer),
/// `api_crate_version`, `rustc`, `target`, `library`, `sha256`, and for an out-of-tree plugin
/// `manifest_path`.
#[derive(Debug)]
struct SidecarValues<'a> {
    id: &'a str,
    version: &'a str,
    api_version: u32,
    api_crate_version: &'a str,
    rustc: &'a str,
    target: &'a str,
    library: &'a str,
    sha256: &'a str,
    /// For a plugin built out of tree: its `Cargo.toml`, so the host's hints name the command.
    manifest_path: Option<&'a Path>,
}

/// The text of a `plugin.toml` sidecar.
fn render_sidecar(v: &SidecarValues<'_>) -> String {
    let text = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let mut out = String::from(
        "# Written by `cargo xtask plugins build`; the host checks it before loading the library. Do not edit.\n",
    );
    for (key, value) in [
        ("id", text(v.id)),
        ("version", text(v.version)),
        ("api_version", v.api_version.to_string()),
        ("api_crate_version", text(v.api_crate_version)),
        ("rustc", text(v.rustc)),
        ("target", text(v.target)),
        ("library", text(v.library)),
        ("sha256", text(v.sha256)),
    ] {
        let _ = writeln!(out, "{key} = {value}");
    }
    if let Some(manifest) = v.manifest_path {
        let _ = writeln!(out, "manifest_path = {}", text(&manifest.display().to_string()));
    }
    out
}

/// `API_VERSION` as declared in the API crate's `export.rs`.
fn parse_api_version(export_rs: &str) -> Result<u32> {
    export_rs
        .lines()
        .find_map(|l| l.trim().strip_prefix("pub const API_VERSION: u32 = ")?.strip_suffix(';')?.trim().parse().ok())
        .context("no `pub const API_VERSION: u32 = N;` line in jiayuan-plugin-api/src/export.rs")
}

/// The `host:` line of `rustc -vV`.
fn parse_host_target(rustc_vv: &str) -> Result<String> {
    rustc_vv
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(|t| t.trim().to_owned())
        .context("`rustc -vV` printed no `host:` line")
}

fn rustc_output(ws: &Workspace, arg: &str) -> Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(&rustc).arg(arg).current_dir(&ws.root).output().context("cannot run rustc")?;
    ensure!(out.status.success(), "`rustc {arg}` failed: {}", out.status);
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Builds `plugins` in one cargo invocation and returns each one's library, in `plugins` order.
fn cargo_build(ws: &Workspace, plugins: &[PluginCrate], release: bool) -> Result<Vec<PathBuf>> {
    let mut cmd = ws.cargo();
    cmd.arg("build");
    for p in plugins {
        match &p.outside {
            Some(manifest) => cmd.arg("--manifest-path").arg(manifest),
            None => cmd.args(["-p", &p.package]),
        };
    }
    cmd.args(["--lib", "--message-format=json-render-diagnostics"]);
    if release {
        cmd.arg("--release");
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().context("cannot run `cargo build`")?;
    let stdout = child.stdout.take().context("cargo's stdout is piped")?;
    let mut libraries: Vec<Option<PathBuf>> = vec![None; plugins.len()];
    for line in BufReader::new(stdout).lines() {
        let line = line.context("cannot read cargo's output")?;
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
            println!("{line}");
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let Some(i) = plugins.iter().position(|p| msg["target"]["name"] == p.lib_name.as_str()) else { continue };
        if !msg["target"]["crate_types"].as_array().is_some_and(|k| k.iter().any(|k| k == "cdylib")) {
            continue;
        }
        libraries[i] = msg["filenames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str().map(PathBuf::from))
            .find(|f| f.to_string_lossy().ends_with(std::env::consts::DLL_SUFFIX));
    }
    let status = child.wait().context("cannot wait for `cargo build`")?;
    ensure!(status.success(), "`cargo build` failed: {status}");
    plugins
        .iter()
        .zip(libraries)
        .map(|(p, lib)| lib.with_context(|| format!("cargo reported no cdylib for `{}`", p.package)))
        .collect()
}

fn build(ws: &Workspace, plugins: &[PluginCrate], release: bool, out: &Path) -> Result<()> {
    let export_rs = ws.root.join("crates/jiayuan-plugin-api/src/export.rs");
    let api_version = parse_api_version(
        &fs::read_to_string(&export_rs).with_context(|| format!("cannot read {}", export_rs.display()))?,
    )?;
    let rustc = rustc_output(ws, "--version")?;
    let target = parse_host_target(&rustc_output(ws, "-vV")?)?;

    println!("building {} plugin(s): {}", plugins.len(), ids(plugins));
    let libraries = cargo_build(ws, plugins, release)?;

    for (p, built) in plugins.iter().zip(libraries) {
        let bytes = fs::read(&built).with_context(|| format!("cannot read {}", built.display()))?;
        let symbol = format!("JIAYUAN_PLUGIN_DECLARATION__{}\0", p.id);
        ensure!(
            bytes.windows(symbol.len()).any(|w| w == symbol.as_bytes()),
            "{} does not export the declaration of plugin `{}`: call \
             `jiayuan_plugin_api::export_plugin!(id: \"{}\", create: …)` in crate `{}`",
            built.display(),
            p.id,
            p.id,
            p.package
        );
        let dir = out.join(&p.id);
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        set_mode(&dir, 0o755)?;
        let file_name = built.file_name().context("a library path without a file name")?.to_string_lossy().into_owned();
        let library = dir.join(&file_name);
        // Write a fresh file rather than overwriting one a running host has mapped.
        let staging = dir.join(format!(".{file_name}.new"));
        fs::write(&staging, &bytes).with_context(|| format!("cannot write {}", staging.display()))?;
        set_mode(&staging, 0o755)?;
        fs::rename(&staging, &library).with_context(|| format!("cannot move the library to {}", library.display()))?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let sidecar = render_sidecar(&SidecarValues {
            id: &p.id,
            version: &p.version,
            api_version,
            api_crate_version: &ws.api_crate_version,
            rustc: &rustc,
            target: &target,
            library: &file_name,
            sha256: &sha256,
            manifest_path: p.outside.as_deref(),
        });
        let sidecar_path = dir.join("plugin.toml");
        fs::write(&sidecar_path, sidecar).with_context(|| format!("cannot write {}", sidecar_path.display()))?;
        set_mode(&sidecar_path, 0o644)?;
        println!("wrote {} (sha256 {}…)", shown(&sidecar_path), &sha256[..12]);
    }
    println!("add the ids to plugins.allow and point plugins.dir at {}", shown(out));
    Ok(())
}

/// Group- and world-writable plugin files are refused by the host, whatever the umask.
fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the permissions of {}", path.display()))
}

/// A path relative to the current directory when it lies below it.
fn shown(path: &Path) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    path.strip_prefix(&cwd).unwrap_or(path).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sidecar_is_the_one_the_host_reads() {
        // The host's golden file; the host's own test parses it.
        let golden = include_str!("../../crates/jiayuan-host/src/plugins/testdata/plugin.toml");
        let rendered = render_sidecar(&SidecarValues {
            id: "dog-licensing",
            version: "0.1.0",
            api_version: 2,
            api_crate_version: "0.1.0",
            rustc: "rustc 1.95.0 (59807616e 2026-04-14)",
            target: "x86_64-unknown-linux-gnu",
            library: "libjiayuan_plugin_dog_licensing.so",
            sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            manifest_path: None,
        });
        assert_eq!(rendered, golden);
    }

    #[test]
    fn an_out_of_tree_sidecar_names_its_manifest() {
        let rendered = render_sidecar(&SidecarValues {
            id: "elevator-safety",
            version: "0.1.0",
            api_version: 2,
            api_crate_version: "0.1.0",
            rustc: "rustc",
            target: "t",
            library: "libjiayuan_plugin_elevator_safety.so",
            sha256: "00",
            manifest_path: Some(Path::new("/src/elevator-safety/Cargo.toml")),
        });
        let table: toml::Table = rendered.parse().expect("valid TOML");
        assert_eq!(table["manifest_path"].as_str(), Some("/src/elevator-safety/Cargo.toml"));
    }

    #[test]
    fn sidecar_values_are_quoted() {
        let rendered = render_sidecar(&SidecarValues {
            id: "x",
            version: "1",
            api_version: 3,
            api_crate_version: "1",
            rustc: "rustc \"quoted\" \\ version",
            target: "t",
            library: "libx.so",
            sha256: "00",
            manifest_path: None,
        });
        let table: toml::Table = rendered.parse().expect("valid TOML");
        assert_eq!(table["rustc"].as_str(), Some("rustc \"quoted\" \\ version"));
        assert_eq!(table["api_version"].as_integer(), Some(3));
    }

    #[test]
    fn the_api_version_is_read_from_the_api_crate() {
        let export_rs = include_str!("../../crates/jiayuan-plugin-api/src/export.rs");
        let v = parse_api_version(export_rs).expect("API_VERSION is declared");
        assert_eq!(v, jiayuan_plugin_api::API_VERSION);
        assert_eq!(parse_api_version("pub const API_VERSION: u32 = 7;\n").expect("parses"), 7);
        assert!(parse_api_version("const OTHER: u32 = 1;").is_err());
    }

    #[test]
    fn the_host_target_is_read_from_rustc_vv() {
        let vv =
            "rustc 1.95.0 (59807616e 2026-04-14)\nbinary: rustc\nhost: x86_64-unknown-linux-gnu\nrelease: 1.95.0\n";
        assert_eq!(parse_host_target(vv).expect("a host line"), "x86_64-unknown-linux-gnu");
        assert!(parse_host_target("binary: rustc\n").is_err());
    }

    #[test]
    fn the_deny_list_names_the_dependency_path() {
        let tree = "\
0jiayuan-plugin-bad v0.1.0 (/w/plugins/bad)|
1jiayuan-plugin-api v0.1.0 (/w/crates/jiayuan-plugin-api)|
2serde v1.0.228|derive,std
1helper v0.3.0|default
2tokio v1.54.1|macros,rt,sync,time
1tokio v1.54.1|macros,rt,sync,time (*)
1sqlx-core v0.9.0|default
1tracing-subscriber v0.3.23|fmt
1tikv-jemallocator v0.6.0|
1snmalloc-rs v0.3.8|
";
        let denied = denied_in_tree(tree);
        let paths: Vec<&str> = denied.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "jiayuan-plugin-bad v0.1.0 -> helper v0.3.0 -> tokio v1.54.1",
                "jiayuan-plugin-bad v0.1.0 -> tokio v1.54.1",
                "jiayuan-plugin-bad v0.1.0 -> sqlx-core v0.9.0",
                "jiayuan-plugin-bad v0.1.0 -> tracing-subscriber v0.3.23",
                "jiayuan-plugin-bad v0.1.0 -> tikv-jemallocator v0.6.0",
                "jiayuan-plugin-bad v0.1.0 -> snmalloc-rs v0.3.8",
            ]
        );
        assert!(denied[0].1.contains("rt, time"), "{}", denied[0].1);
    }

    #[test]
    fn tokio_without_a_runtime_is_allowed() {
        assert_eq!(deny_reason("tokio", &["sync", "macros"]), None);
        assert!(deny_reason("tokio", &["rt-multi-thread"]).is_some());
        assert!(deny_reason("tokio", &["net"]).is_some());
        assert_eq!(deny_reason("serde", &["std"]), None);
        assert_eq!(deny_reason("log", &[]), None);
        assert!(deny_reason("sea-orm-migration", &[]).is_some());
        assert!(deny_reason("jiayuan-store", &[]).is_some());
    }

    #[test]
    fn a_global_allocator_in_plugin_sources_is_found() {
        let dir = std::env::temp_dir().join(format!("xtask-alloc-test-{}", std::process::id()));
        let src = dir.join("src");
        fs::create_dir_all(&src).expect("temp dir");
        fs::write(src.join("lib.rs"), "//! docs mention #[global_allocator] harmlessly\npub fn f() {}\n")
            .expect("write");
        assert_eq!(global_allocators(&dir).expect("readable"), Vec::<String>::new());
        fs::write(src.join("alloc.rs"), "use x::Alloc;\n#[ global_allocator ]\nstatic A: Alloc = Alloc;\n")
            .expect("write");
        let hits = global_allocators(&dir).expect("readable");
        let _ = fs::remove_dir_all(&dir);
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert!(hits[0].ends_with("alloc.rs:2"), "{hits:?}");
    }

    #[test]
    fn plugin_crates_are_found_in_metadata() {
        let meta = serde_json::json!({
            "packages": [
                {"name": "jiayuan-plugin-api", "version": "0.1.0", "manifest_path": "/w/crates/jiayuan-plugin-api/Cargo.toml",
                 "targets": [{"name": "jiayuan_plugin_api", "crate_types": ["lib"]}]},
                {"name": "jiayuan-plugin-dog-licensing", "version": "0.2.0", "manifest_path": "/w/plugins/dog-licensing/Cargo.toml",
                 "targets": [{"name": "jiayuan_plugin_dog_licensing", "crate_types": ["cdylib", "rlib"]}]},
                {"name": "jiayuan-plugin-fixture", "version": "0.1.0", "manifest_path": "/w/plugins/fixture/Cargo.toml",
                 "targets": [{"name": "jiayuan_plugin_fixture", "crate_types": ["cdylib", "rlib"]}]},
                {"name": "plugin-helpers", "version": "0.1.0", "manifest_path": "/w/plugins/helpers/Cargo.toml",
                 "targets": [{"name": "plugin_helpers", "crate_types": ["lib"]}]},
                {"name": "jiayuan-host", "version": "0.1.0", "manifest_path": "/w/crates/jiayuan-host/Cargo.toml",
                 "targets": [{"name": "jiayuan_host", "crate_types": ["cdylib"]}]}
            ]
        });
        let (api, crates) = parse_metadata(&meta, Path::new("/w")).expect("valid metadata");
        assert_eq!(api, "0.1.0");
        let ids: Vec<&str> = crates.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["dog-licensing", "fixture"]);
        assert_eq!(crates[0].lib_name, "jiayuan_plugin_dog_licensing");
        assert_eq!(crates[0].version, "0.2.0");
        assert_eq!(crates[0].dir, Path::new("/w/plugins/dog-licensing"));

        let ws = Workspace { root: "/w".into(), cargo: "cargo".into(), api_crate_version: api, crates };
        let shipped: Vec<String> = ws.plugins(false).expect("one plugin").into_iter().map(|c| c.id).collect();
        assert_eq!(shipped, ["dog-licensing"]);
        assert_eq!(ws.plugins(true).expect("two plugins").len(), 2);
    }

    #[test]
    fn a_cdylib_under_plugins_without_the_prefix_is_an_error() {
        let meta = serde_json::json!({
            "packages": [
                {"name": "jiayuan-plugin-api", "version": "0.1.0", "manifest_path": "/w/crates/jiayuan-plugin-api/Cargo.toml", "targets": []},
                {"name": "noise-log", "version": "0.1.0", "manifest_path": "/w/plugins/noise-log/Cargo.toml",
                 "targets": [{"name": "noise_log", "crate_types": ["cdylib"]}]}
            ]
        });
        let err = parse_metadata(&meta, Path::new("/w")).expect_err("bad crate name");
        assert!(err.to_string().contains("`noise-log` must be named `jiayuan-plugin-<id>`"), "{err}");
    }
}
