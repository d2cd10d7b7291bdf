//! `cargo xtask bench`: builds the plugins in release mode, runs the criterion benchmarks of
//! `jiayuan-host`, and prints each figure as a ratio against its baseline from the same run.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::plugins::{self, PluginsCommand};

/// One measured figure: mean nanoseconds per iteration.
fn mean_ns(criterion: &Path, group: &str, bench: &str) -> Result<f64> {
    let path = criterion.join(group).join(bench).join("new").join("estimates.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {} (did the `{group}/{bench}` benchmark run?)", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    v["mean"]["point_estimate"].as_f64().with_context(|| format!("{} has no mean.point_estimate", path.display()))
}

/// The cargo target directory: `CARGO_TARGET_DIR` (relative to the workspace root) or `target`.
/// Criterion writes its results there.
fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

/// Runs the benchmarks and prints the ratios.
pub(crate) fn run() -> Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let root = root.canonicalize().with_context(|| format!("resolving {}", root.display()))?;
    let target = target_dir(&root);
    let plugin_dir = target.join("bench-plugins");
    plugins::run(PluginsCommand::Build { release: true, out: Some(plugin_dir.clone()), include_fixtures: true })?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    println!("running criterion benchmarks (a few minutes)…");
    let status = Command::new(cargo)
        .current_dir(&root)
        .env("JIAYUAN_BENCH_PLUGINS", &plugin_dir)
        .args(["bench", "-p", "jiayuan-host", "--bench", "platform", "--", "--noplot"])
        .status()
        .context("running `cargo bench -p jiayuan-host --bench platform`")?;
    if !status.success() {
        bail!("the benchmarks failed ({status})");
    }
    let c = target.join("criterion");
    let stat = mean_ns(&c, "plugin_call", "static")?;
    let dynamic = mean_ns(&c, "plugin_call", "dynamic")?;
    let bare = mean_ns(&c, "create", "bare_insert")?;
    let engine = mean_ns(&c, "create", "engine_dog")?;
    let bare_concurrent = mean_ns(&c, "create", "bare_insert_concurrent")?;
    let engine_concurrent = mean_ns(&c, "create", "engine_dog_concurrent")?;
    let load = mean_ns(&c, "load", "all_plugins")?;

    let call_ratio = dynamic / stat;
    let create_ratio = bare / engine;
    let concurrent_ratio = bare_concurrent / engine_concurrent;
    let load_ms = load / 1e6;
    println!();
    println!(
        "figure                                                   measured                 ratio    target   verdict"
    );
    println!(
        "(a) plugin call, loaded cdylib vs linked statically      {:>8.0} ns vs {:>6.0} ns   {:>6.3}×   ≤ 1.05×  {}",
        dynamic,
        stat,
        call_ratio,
        verdict(call_ratio <= 1.05)
    );
    println!(
        "(b) dog records via the engine vs bare sea-orm inserts   {:>8.0}/s vs {:>6.0}/s   {:>6.3}×   ≥ 0.5×   {}",
        1e9 / engine,
        1e9 / bare,
        create_ratio,
        verdict(create_ratio >= 0.5)
    );
    println!(
        "(b') the same, 16 in flight                              {:>8.0}/s vs {:>6.0}/s   {:>6.3}×   ≥ 0.5×   {}",
        1e9 / engine_concurrent,
        1e9 / bare_concurrent,
        concurrent_ratio,
        verdict(concurrent_ratio >= 0.5)
    );
    println!(
        "(c) load and verify all plugins                          {:>8.2} ms               {:>6.3}×   < 50 ms  {}",
        load_ms,
        load_ms / 50.0,
        verdict(load_ms < 50.0)
    );
    Ok(())
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}
