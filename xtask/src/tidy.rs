//! Tidy checks: the invariants of ARCHITECTURE.md and docs/CONTRIBUTING.md written as tests, so
//! `cargo test --workspace` fails the moment one is broken.

use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `.rs` file of the project (not of build output or test scratch directories).
fn rust_files() -> Vec<(String, String)> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
        let Ok(entries) = fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if !name.starts_with("target") && !name.starts_with('.') && name != "data" {
                    walk(&path, root, out);
                }
            } else if name.ends_with(".rs") {
                let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
                let text = fs::read_to_string(&path).unwrap_or_default();
                out.push((rel, text));
            }
        }
    }
    let root = root();
    let mut out = Vec::new();
    for top in ["crates", "plugins", "xtask", "tests"] {
        walk(&root.join(top), &root, &mut out);
    }
    assert!(out.len() > 50, "tidy found only {} Rust files under {}", out.len(), root.display());
    out
}

/// Test-only files and modules, where reading the environment or using any crate is fine.
fn is_test_code(path: &str) -> bool {
    path.contains("/tests/") || path.ends_with("tests.rs") || path.contains("/benches/") || path.starts_with("tests/")
}

fn report(what: &str, offenders: Vec<String>) {
    assert!(offenders.is_empty(), "{what}:\n  {}", offenders.join("\n  "));
}

#[test]
fn every_rust_file_says_what_it_is_for() {
    let offenders =
        rust_files().into_iter().filter(|(_, text)| !text.starts_with("//!")).map(|(path, _)| path).collect();
    report("these files do not start with a `//!` comment", offenders);
}

#[test]
fn unsafe_stays_in_the_loader_and_the_export_declaration() {
    const ALLOWED: [&str; 3] = [
        "crates/jiayuan-host/src/plugins/loader.rs",
        "crates/jiayuan-plugin-api/src/export.rs",
        // The hand-forged declarations of the fixture's refused builds (`bad-*` features).
        "plugins/fixture/src/lib.rs",
    ];
    let mut offenders = Vec::new();
    for (path, text) in rust_files() {
        if ALLOWED.contains(&path.as_str()) || path.starts_with("xtask/") {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if ["unsafe {", "unsafe fn", "unsafe impl", "#[unsafe("].iter().any(|k| code.contains(k)) {
                offenders.push(format!("{path}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    report("`unsafe` outside the plugin loader and the export declaration", offenders);
}

#[test]
fn no_library_reads_the_environment_or_argv() {
    let mut offenders = Vec::new();
    for (path, text) in rust_files() {
        let library = path.starts_with("crates/") || path.starts_with("plugins/");
        // Build scripts read what cargo hands them; that is their interface.
        let build_script = path.ends_with("/build.rs");
        if !library || path.starts_with("crates/jiayuan-cli/") || is_test_code(&path) || build_script {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if ["env::var", "env::args", "env::vars"].iter().any(|k| code.contains(k)) {
                offenders.push(format!("{path}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    report("a library reads the environment or argv (only the CLI and xtask may)", offenders);
}

#[test]
fn sea_orm_stays_inside_the_store() {
    let mut offenders = Vec::new();
    for (path, text) in rust_files() {
        if path.starts_with("crates/jiayuan-store/") || path.starts_with("xtask/") || is_test_code(&path) {
            continue;
        }
        if ["use sea_orm", "sea_orm::", "sqlx::"].iter().any(|k| text.contains(k)) {
            offenders.push(path);
        }
    }
    report("sea-orm or sqlx used outside jiayuan-store", offenders);
}

/// The `[dependencies]` (not dev- or build-dependencies) of a member's Cargo.toml.
fn normal_dependencies(manifest: &str) -> Vec<String> {
    let text = fs::read_to_string(root().join(manifest)).unwrap_or_else(|e| panic!("reading {manifest}: {e}"));
    let value: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("parsing {manifest}: {e}"));
    value.get("dependencies").and_then(toml::Value::as_table).map(|t| t.keys().cloned().collect()).unwrap_or_default()
}

fn assert_dependencies_within(manifest: &str, allowed: &[&str]) {
    let extra: Vec<String> =
        normal_dependencies(manifest).into_iter().filter(|d| !allowed.contains(&d.as_str())).collect();
    assert!(
        extra.is_empty(),
        "{manifest} depends on {extra:?}; allowed: {allowed:?} (see ARCHITECTURE.md, Invariants)"
    );
}

#[test]
fn the_layers_depend_only_on_what_they_may() {
    assert_dependencies_within("crates/jiayuan-domain/Cargo.toml", &["serde", "thiserror"]);
    assert_dependencies_within(
        "crates/jiayuan-plugin-api/Cargo.toml",
        &["jiayuan-domain", "async-trait", "serde", "thiserror"],
    );
    assert_dependencies_within(
        "crates/jiayuan-schema/Cargo.toml",
        &["jiayuan-domain", "jiayuan-plugin-api", "serde_json"],
    );
    let plugin_deps = ["jiayuan-plugin-api", "jiayuan-domain", "async-trait", "serde", "serde_json"];
    let plugins = fs::read_dir(root().join("plugins")).expect("plugins/ exists");
    let mut seen = 0;
    for dir in plugins.flatten().filter(|e| e.path().join("Cargo.toml").is_file()) {
        let name = dir.file_name().to_string_lossy().into_owned();
        let manifest = format!("plugins/{name}/Cargo.toml");
        if name == "fixture" {
            // The test fixture's `segfault` mode sends itself SIGSEGV through rustix (no unsafe).
            let mut fixture_deps = plugin_deps.to_vec();
            fixture_deps.push("rustix");
            assert_dependencies_within(&manifest, &fixture_deps);
        } else {
            assert_dependencies_within(&manifest, &plugin_deps);
        }
        seen += 1;
    }
    assert!(seen >= 2, "expected the dog-licensing and fixture plugins, found {seen}");
}
