//! The contract test through the real loader: builds the fixture plugin as a cdylib (normally and
//! in its two refused variants) with cargo, in a target directory of its own, lays the libraries
//! out with sidecars the way `cargo xtask plugins build` does, and loads them with `dlopen`.
//!
//! The builds run once per test process. The first run compiles the fixture's dependencies three
//! times (one target directory per variant, because a cdylib's file name carries no feature hash
//! and variants sharing a directory would overwrite each other).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use jiayuan_plugin_api::{API_CRATE_VERSION, API_VERSION, Outcome, PluginError, RUSTC_VERSION, TARGET};
use tempfile::TempDir;

use super::test_support::{Service, TestHost, probe, settings};
use super::{
    CallError, Hook, LoadError, PluginRegistry, PluginSource, PluginStatus, SIDECAR_FILE, Sidecar, sha256_hex,
};

/// The three builds of the fixture.
#[derive(Debug)]
struct Builds {
    good: PathBuf,
    bad_api: PathBuf,
    bad_rustc: PathBuf,
}

static BUILDS: OnceLock<Result<Builds, String>> = OnceLock::new();

fn builds() -> &'static Builds {
    match BUILDS.get_or_init(|| {
        Ok(Builds {
            good: build("default", None)?,
            bad_api: build("bad-api-version", Some("bad-api-version"))?,
            bad_rustc: build("bad-rustc", Some("bad-rustc"))?,
        })
    }) {
        Ok(builds) => builds,
        Err(e) => panic!("{e}"),
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds the fixture cdylib with `features` into `<target>/plugin-test-builds/<variant>` and
/// returns the library's path, as cargo reports it.
fn build(variant: &str, features: Option<&str>) -> Result<PathBuf, String> {
    let root = workspace_root();
    let base = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |d| root.join(d));
    let target_dir = base.join("plugin-test-builds").join(variant);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(&root)
        .args(["build", "-p", "jiayuan-plugin-fixture", "--lib", "--message-format=json", "--target-dir"])
        .arg(&target_dir);
    if let Some(features) = features {
        cmd.args(["--features", features]);
    }
    let out = cmd.output().map_err(|e| format!("cannot run {}: {e}", cargo.to_string_lossy()))?;
    if !out.status.success() {
        return Err(format!(
            "building the fixture ({variant}) failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "jiayuan_plugin_fixture")
        .filter(|m| m["target"]["crate_types"].as_array().is_some_and(|k| k.iter().any(|k| k == "cdylib")))
        .flat_map(|m| m["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .find(|f| f.extension().is_some_and(|e| e == "so"))
        .ok_or_else(|| format!("cargo reported no cdylib for the fixture ({variant})"))
}

/// A plugin directory in a temporary directory.
struct Layout {
    root: TempDir,
    dir: PathBuf,
}

impl Layout {
    fn new() -> Layout {
        let root = tempfile::tempdir().expect("a temporary directory");
        let dir = root.path().join("plugins");
        fs::create_dir(&dir).expect("plugins dir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod");
        Layout { root, dir }
    }

    /// Copies `library` to `<dir>/<name>/` and writes a sidecar for it naming `id`, as
    /// `cargo xtask plugins build` does. Returns the sidecar's path.
    fn install(&self, name: &str, id: &str, library: &Path) -> PathBuf {
        install_in(&self.dir.join(name), id, library)
    }

    /// Rewrites the sidecar of `<dir>/<name>/`.
    fn edit(&self, name: &str, f: impl FnOnce(&mut Sidecar)) {
        let path = self.dir.join(name).join(SIDECAR_FILE);
        let mut sidecar = Sidecar::read(&path).expect("sidecar written by install");
        f(&mut sidecar);
        fs::write(&path, sidecar.to_toml()).expect("sidecar rewritten");
    }

    /// The library installed in `<dir>/<name>/`.
    fn library(&self, name: &str) -> PathBuf {
        let sidecar = Sidecar::read(&self.dir.join(name).join(SIDECAR_FILE)).expect("sidecar written by install");
        self.dir.join(name).join(sidecar.library)
    }

    fn registry(&self, allow: &[&str]) -> PluginRegistry {
        PluginRegistry::new(settings(&self.dir, allow))
    }
}

fn install_in(plugin_dir: &Path, id: &str, library: &Path) -> PathBuf {
    fs::create_dir_all(plugin_dir).expect("plugin dir");
    fs::set_permissions(plugin_dir, fs::Permissions::from_mode(0o755)).expect("chmod");
    let file_name = library.file_name().expect("a library file name").to_string_lossy().into_owned();
    let target = plugin_dir.join(&file_name);
    fs::copy(library, &target).expect("library copied");
    fs::set_permissions(&target, fs::Permissions::from_mode(0o755)).expect("chmod");
    let sidecar = Sidecar {
        id: id.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        api_version: API_VERSION,
        api_crate_version: API_CRATE_VERSION.to_owned(),
        rustc: RUSTC_VERSION.to_owned(),
        target: TARGET.to_owned(),
        library: file_name,
        sha256: sha256_hex(&fs::read(&target).expect("library readable")),
        manifest_path: None,
    };
    let path = plugin_dir.join(SIDECAR_FILE);
    fs::write(&path, sidecar.to_toml()).expect("sidecar written");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
    path
}

/// Sets up a plugin directory holding the good fixture (in `fixture/`) and whatever `setup`
/// installs (in a directory that sorts first, so it loads first). Loads the directory and checks
/// that exactly the bad plugin was refused, with an error `expected` accepts, and that the good
/// plugin loaded after it and answers.
async fn refused(allow_also: &[&str], setup: impl FnOnce(&Layout), expected: impl Fn(&LoadError) -> bool) {
    let builds = builds();
    let layout = Layout::new();
    layout.install("fixture", "fixture", &builds.good);
    setup(&layout);
    let mut allow = vec!["fixture"];
    allow.extend_from_slice(allow_also);
    let mut registry = layout.registry(&allow);
    let summary = registry.load_dir().expect("the plugin directory is readable");
    assert_eq!(summary.failed.len(), 1, "{summary:?}");
    let error = &summary.failed[0].error;
    assert!(expected(error), "unexpected error: {error:?}");
    assert_eq!(summary.loaded, ["fixture"]);

    let fixture = registry.handle("fixture").expect("the good plugin loaded");
    assert_eq!(fixture.on_create(&TestHost::new("{}"), probe("ok")).await, Ok(Outcome::accept()));
    let report = registry.report();
    assert_eq!(report.len(), 2, "{report:?}");
    assert!(matches!(&report[0].status, PluginStatus::Failed { error: text } if *text == error.to_string()));
    assert!(matches!(&report[1].status, PluginStatus::Loaded(_)), "{report:?}");
}

#[tokio::test]
async fn a_plugin_built_against_another_api_version_is_refused() {
    refused(
        &[],
        |l| {
            l.install("a-bad", "fixture", &builds().bad_api);
        },
        |e| matches!(e, LoadError::ApiVersion { found, expected, .. } if *found == API_VERSION + 1 && *expected == API_VERSION),
    )
    .await;
}

#[tokio::test]
async fn a_plugin_built_by_another_compiler_is_refused() {
    refused(
        &[],
        |l| {
            l.install("a-bad", "fixture", &builds().bad_rustc);
        },
        |e| {
            matches!(e, LoadError::Rustc { found, expected, .. }
                if found == jiayuan_plugin_fixture::FORGED_RUSTC && expected == RUSTC_VERSION)
        },
    )
    .await;
}

#[tokio::test]
async fn a_library_without_the_declaration_for_its_id_is_refused() {
    refused(
        &["ghost"],
        |l| {
            l.install("a-bad", "ghost", &builds().good);
        },
        |e| matches!(e, LoadError::NotAPlugin { id, symbol, .. } if id == "ghost" && symbol == "JIAYUAN_PLUGIN_DECLARATION__ghost"),
    )
    .await;
}

#[tokio::test]
async fn a_system_library_is_not_a_plugin() {
    let Some(libm) = ["/lib/x86_64-linux-gnu/libm.so.6", "/usr/lib/x86_64-linux-gnu/libm.so.6", "/usr/lib64/libm.so.6"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.is_file())
    else {
        eprintln!("notice: no libm.so.6 found; the text-file case below covers non-plugins");
        return;
    };
    refused(
        &[],
        |l| {
            l.install("a-bad", "fixture", libm);
        },
        |e| matches!(e, LoadError::NotAPlugin { symbol, .. } if symbol == "JIAYUAN_PLUGIN_DECLARATION__fixture"),
    )
    .await;
}

#[tokio::test]
async fn a_text_file_named_so_cannot_be_opened() {
    refused(
        &[],
        |l| {
            let text = l.root.path().join("libnotaplugin.so");
            fs::write(&text, "this is not a shared library\n").expect("text file");
            l.install("a-bad", "fixture", &text);
        },
        |e| matches!(e, LoadError::Open { .. }),
    )
    .await;
}

#[tokio::test]
async fn a_library_that_changed_after_the_build_is_refused() {
    refused(
        &[],
        |l| {
            l.install("a-bad", "fixture", &builds().good);
            l.edit("a-bad", |s| s.sha256 = sha256_hex(b"some other build"));
        },
        |e| matches!(e, LoadError::Sha256Mismatch { expected, .. } if *expected == sha256_hex(b"some other build")),
    )
    .await;
}

#[tokio::test]
async fn a_plugin_not_on_the_allow_list_is_refused() {
    refused(
        &[],
        |l| {
            l.install("a-bad", "stranger", &builds().good);
        },
        |e| {
            matches!(e, LoadError::NotOnAllowList { id, .. } if id == "stranger")
                && e.to_string().contains("add `stranger` to plugins.allow in config/default.toml")
        },
    )
    .await;
}

#[tokio::test]
async fn a_sidecar_naming_another_compiler_is_refused_before_dlopen() {
    refused(
        &[],
        |l| {
            // The bad-rustc build would fail at check 8; the sidecar check must catch it first.
            l.install("a-bad", "fixture", &builds().bad_rustc);
            l.edit("a-bad", |s| s.rustc = "rustc 1.80.0 (forged 2024-01-01)".into());
        },
        |e| {
            matches!(e, LoadError::SidecarMismatch { field: "rustc", found, expected, .. }
                if found == "rustc 1.80.0 (forged 2024-01-01)" && expected == RUSTC_VERSION)
        },
    )
    .await;
}

#[tokio::test]
async fn a_library_compiled_by_another_rustc_per_its_comment_section_is_refused() {
    refused(
        &[],
        |l| {
            let mut bytes = fs::read(&builds().good).expect("library readable");
            let needle = format!("rustc version {}", RUSTC_VERSION.trim_start_matches("rustc ")).into_bytes();
            let at: Vec<usize> = bytes
                .windows(needle.len())
                .enumerate()
                .filter_map(|(i, w)| (w == needle.as_slice()).then_some(i))
                .collect();
            assert!(!at.is_empty(), "the library names its compiler");
            for i in at {
                bytes[i + "rustc version ".len()] = b'0';
            }
            let forged = l.root.path().join("libjiayuan_plugin_fixture.so");
            fs::write(&forged, &bytes).expect("forged copy");
            l.install("a-bad", "fixture", &forged);
        },
        |e| matches!(e, LoadError::CompilerMismatch { found, .. } if found.starts_with("rustc version 0")),
    )
    .await;
}

#[tokio::test]
async fn a_library_writable_by_others_is_refused() {
    refused(
        &[],
        |l| {
            l.install("a-bad", "fixture", &builds().good);
            fs::set_permissions(l.library("a-bad"), fs::Permissions::from_mode(0o775)).expect("chmod");
        },
        |e| matches!(e, LoadError::Writable { mode: 0o775, .. }),
    )
    .await;
}

#[tokio::test]
async fn a_plugin_folder_writable_by_others_is_refused_naming_the_fix() {
    refused(
        &[],
        |l| {
            l.install("a-bad", "fixture", &builds().good);
            fs::set_permissions(l.dir.join("a-bad"), fs::Permissions::from_mode(0o777)).expect("chmod");
        },
        |e| {
            let text = e.to_string();
            matches!(e, LoadError::Writable { mode: 0o777, path, .. } if path.ends_with("a-bad"))
                && text.contains("chmod go-w ")
                && text.contains("a-bad`")
        },
    )
    .await;
}

#[tokio::test]
async fn a_plugin_file_owned_by_another_user_is_refused_naming_the_fix() {
    let layout = Layout::new();
    let sidecar = layout.install("fixture", "fixture", &builds().good);
    // Only root may give a file away; elsewhere the check is covered by its unit test.
    if std::os::unix::fs::chown(&sidecar, Some(54_321), None).is_err() {
        eprintln!("a_plugin_file_owned_by_another_user_is_refused_naming_the_fix: not root, skipped");
        return;
    }
    let mut registry = layout.registry(&["fixture"]);
    let summary = registry.load_dir().expect("the plugin directory is readable");
    let error = &summary.failed.first().expect("refused").error;
    assert!(matches!(error, LoadError::NotOwned { owner: 54_321, .. }), "{error:?}");
    assert!(error.to_string().contains(&format!("`chown {} ", rustix::process::geteuid().as_raw())), "{error}");
}

#[test]
fn a_plugin_directory_writable_by_others_loads_nothing_and_says_how_to_fix_it() {
    let layout = Layout::new();
    layout.install("fixture", "fixture", &builds().good);
    fs::set_permissions(&layout.dir, fs::Permissions::from_mode(0o757)).expect("chmod");
    let mut registry = layout.registry(&["fixture"]);
    let err = registry.load_dir().expect_err("refused");
    assert!(matches!(err, LoadError::DirWritable { mode: 0o757, .. }), "{err:?}");
    let real = fs::canonicalize(&layout.dir).expect("resolvable");
    assert!(err.to_string().contains(&format!("`chmod go-w {}`", real.display())), "{err}");
    assert!(registry.handle("fixture").is_none());
}

#[test]
fn libraries_without_a_sidecar_and_missing_allowed_plugins_are_reported() {
    let layout = Layout::new();
    layout.install("fixture", "fixture", &builds().good);
    let stray = layout.dir.join("stray");
    fs::create_dir(&stray).expect("a folder");
    fs::set_permissions(&stray, fs::Permissions::from_mode(0o755)).expect("chmod");
    fs::copy(&builds().good, stray.join("libstray.so")).expect("a library without a sidecar");
    let mut registry = layout.registry(&["fixture", "elevator-safety"]);
    let summary = registry.load_dir().expect("readable");
    assert_eq!(summary.loaded, ["fixture"]);
    let report = registry.report();
    let row = |id: &str| report.iter().find(|r| r.id == id).unwrap_or_else(|| panic!("a row for {id}: {report:?}"));
    assert!(
        matches!(&row("libstray.so").status, PluginStatus::NoSidecar { library } if library.ends_with("stray/libstray.so"))
    );
    assert!(row("libstray.so").is_healthy(), "a stray library is reported, it degrades nothing");
    assert!(row("libstray.so").to_string().starts_with("NO SIDECAR   libstray.so"), "{}", row("libstray.so"));
    assert_eq!(row("elevator-safety").status, PluginStatus::Missing);
    assert!(!row("elevator-safety").is_healthy(), "an allowed plugin that is missing degrades health");
    assert!(row("elevator-safety").to_string().contains("on plugins.allow but not in the plugin directory"));
}

#[test]
fn the_refusal_of_an_out_of_tree_plugin_names_the_command_that_rebuilds_it() {
    let layout = Layout::new();
    layout.install("fixture", "fixture", &builds().good);
    layout.edit("fixture", |s| {
        s.rustc = "rustc 1.80.0 (elsewhere)".into();
        s.manifest_path = Some("/src/fixture/Cargo.toml".into());
    });
    let mut registry = layout.registry(&["fixture"]);
    registry.load_dir().expect("readable");
    let report = registry.report();
    let PluginStatus::Failed { error } = &report[0].status else { panic!("{report:?}") };
    let expected =
        format!("`cargo xtask plugins build --manifest-path /src/fixture/Cargo.toml --out {}`", layout.dir.display());
    assert!(error.contains(&expected), "{error}");
    assert!(!error.contains("`cargo xtask plugins build`"), "{error}");
}

#[tokio::test]
async fn a_library_swapped_with_its_sidecar_is_refused_by_its_pin() {
    let layout = Layout::new();
    layout.install("fixture", "fixture", &builds().good);
    let real = sha256_hex(&fs::read(layout.library("fixture")).expect("readable"));
    let pinned: String = real.chars().rev().collect();
    let mut s = settings(&layout.dir, &["fixture"]);
    s.pins.insert("fixture".into(), pinned.clone());
    let mut registry = PluginRegistry::new(s);
    let summary = registry.load_dir().expect("readable");
    match &summary.failed.first().expect("refused").error {
        LoadError::PinMismatch { id, found, expected, .. } => {
            assert_eq!((id.as_str(), found, expected), ("fixture", &real, &pinned));
        }
        other => panic!("expected a pin mismatch, got {other:?}"),
    }
    // Pinned to its real digest, it loads.
    let mut s = settings(&layout.dir, &["fixture"]);
    s.pins.insert("fixture".into(), real);
    let mut registry = PluginRegistry::new(s);
    assert_eq!(registry.load_dir().expect("readable").loaded, ["fixture"]);
}

#[tokio::test]
async fn a_plugin_reached_through_a_link_out_of_the_directory_is_refused() {
    refused(
        &[],
        |l| {
            let elsewhere = l.root.path().join("elsewhere");
            install_in(&elsewhere, "fixture", &builds().good);
            std::os::unix::fs::symlink(&elsewhere, l.dir.join("a-bad")).expect("symlink");
        },
        |e| matches!(e, LoadError::OutsideDir { path, .. } if path.ends_with("elsewhere/plugin.toml")),
    )
    .await;
}

#[tokio::test]
async fn a_sidecar_naming_a_library_elsewhere_is_refused() {
    refused(
        &[],
        |l| {
            l.install("a-bad", "fixture", &builds().good);
            l.edit("a-bad", |s| s.library = "../fixture/libjiayuan_plugin_fixture.so".into());
        },
        |e| matches!(e, LoadError::Sidecar { reason, .. } if reason.contains("must be a file name")),
    )
    .await;
}

#[tokio::test]
async fn a_missing_library_is_refused() {
    refused(
        &[],
        |l| {
            l.install("a-bad", "fixture", &builds().good);
            fs::remove_file(l.library("a-bad")).expect("library removed");
        },
        |e| matches!(e, LoadError::Library { .. }),
    )
    .await;
}

#[tokio::test]
async fn an_unreadable_sidecar_is_refused() {
    refused(
        &[],
        |l| {
            l.install("a-bad", "fixture", &builds().good);
            fs::write(l.dir.join("a-bad").join(SIDECAR_FILE), "id = \"fixture\"\n").expect("sidecar truncated");
        },
        |e| matches!(e, LoadError::Sidecar { reason, .. } if reason.contains("missing field")),
    )
    .await;
}

#[tokio::test]
async fn a_second_copy_of_a_loaded_plugin_is_refused() {
    let layout = Layout::new();
    let sidecar = layout.install("fixture", "fixture", &builds().good);
    layout.install("fixture-copy", "fixture", &builds().good);
    let mut registry = layout.registry(&["fixture"]);
    let summary = registry.load_dir().expect("the plugin directory is readable");
    assert_eq!(summary.loaded, ["fixture"]);
    assert_eq!(summary.failed.len(), 1);
    let first_library = fs::canonicalize(layout.library("fixture")).expect("installed");
    match &summary.failed[0].error {
        LoadError::DuplicateId { id, existing, .. } => {
            assert_eq!(id, "fixture");
            assert_eq!(*existing, first_library.display().to_string());
        }
        other => panic!("expected a duplicate, got {other:?}"),
    }
    // The same plugin linked statically is a duplicate too.
    let err = registry.register_static(&jiayuan_plugin_fixture::DECLARATION).expect_err("duplicate");
    assert!(matches!(err, LoadError::DuplicateId { .. }), "{err:?}");

    let report = registry.report();
    let PluginStatus::Loaded(info) = &report[0].status else { panic!("{report:?}") };
    assert_eq!(report[0].sidecar.as_deref(), Some(sidecar.as_path()));
    assert_eq!(info.source, PluginSource::Dynamic { path: first_library.clone() });
    assert_eq!(info.sha256.as_deref(), Some(sha256_hex(&fs::read(&first_library).expect("readable")).as_str()));
    assert_eq!(info.api_version, API_VERSION);
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn a_loaded_library_contains_its_panics_hangs_and_the_hosts_panics() {
    let layout = Layout::new();
    layout.install("fixture", "fixture", &builds().good);
    let mut registry = layout.registry(&["fixture"]);
    registry.load_dir().expect("the plugin directory is readable");
    let fixture = registry.handle("fixture").expect("loaded");
    let host = TestHost::new("{}");

    // A panic inside the library comes back as an error; the host goes on.
    match fixture.on_create(&host, probe("panic")).await {
        Err(CallError::Panicked { hook: Hook::OnCreate, message, .. }) => {
            assert_eq!(message, "fixture on_create asked to panic");
        }
        other => panic!("expected a caught panic, got {other:?}"),
    }
    assert_eq!(fixture.on_create(&host, probe("ok")).await, Ok(Outcome::accept()));

    // A hook that never finishes is abandoned at the host's timeout (5 s here).
    let err = fixture.on_create(&host, probe("hang")).await.expect_err("hangs");
    assert!(matches!(err, CallError::Timeout { hook: Hook::OnCreate, .. }), "{err:?}");

    // A host service panicking under the library's frames becomes a host error (without the host
    // guard this aborts the process: the plugin's std meets a foreign exception).
    let panicking = TestHost::new("{}").panicking(Service::Records);
    let err = fixture.on_create(&panicking, probe("host_panic")).await.expect_err("host panicked");
    assert!(matches!(&err, CallError::Plugin(PluginError::Host(t)) if t.contains("records.count")), "{err:?}");
    let panicking = TestHost::new("{}").panicking(Service::Clock);
    let err = fixture.on_create(&panicking, probe("host_panic")).await.expect_err("host panicked");
    assert!(matches!(&err, CallError::Plugin(PluginError::Host(t)) if t.contains("clock.now")), "{err:?}");
    assert_eq!(fixture.on_create(&host, probe("host_panic")).await, Ok(Outcome::accept()));
    assert_eq!(host.logged(), ["fixture called host services"]);

    // Two more panics (three within the window) quarantine it.
    for _ in 0..2 {
        assert!(matches!(fixture.on_create(&host, probe("panic")).await, Err(CallError::Panicked { .. })));
    }
    let err = fixture.on_create(&host, probe("ok")).await.expect_err("quarantined");
    assert!(matches!(err, CallError::Quarantined { .. }), "{err:?}");
    assert!(matches!(registry.report()[0].status, PluginStatus::Quarantined { .. }));
}
