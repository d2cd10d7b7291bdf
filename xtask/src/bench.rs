//! `cargo xtask bench [platform|http]`: runs the criterion benchmarks (`platform` of
//! `jiayuan-host`, with the plugins built in release mode first; `http` of `jiayuan-server`) in
//! one cargo invocation, and prints each figure as a ratio against its baseline from the same run
//! (baseline time ÷ measured time for throughput figures, so higher is better).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};

use crate::plugins::{self, PluginsCommand};

/// Which benchmarks to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Suite {
    /// jiayuan-host's `platform`: plugin calls, engine creates vs bare inserts, plugin loading.
    Platform,
    /// jiayuan-server's `http`: authenticated creates and lists through the API router.
    Http,
    /// jiayuan-host's `import`: 200,000 persons from CSV vs a raw batched insert of the same rows.
    Import,
}

/// One measured figure: mean nanoseconds per iteration, from an `estimates.json` written by this
/// run (an older file means the benchmark did not run, and its figure would be stale).
fn mean_ns(criterion: &Path, since: SystemTime, group: &str, bench: &str) -> Result<f64> {
    let path = criterion.join(group).join(bench).join("new").join("estimates.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {} (did the `{group}/{bench}` benchmark run?)", path.display()))?;
    let modified =
        std::fs::metadata(&path).and_then(|m| m.modified()).with_context(|| format!("{}", path.display()))?;
    if modified < since {
        bail!("{} predates this run: the `{group}/{bench}` benchmark did not run", path.display());
    }
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

/// Runs the benchmarks of `suite` (all when `None`) and prints the ratios.
pub(crate) fn run(suite: Option<Suite>) -> Result<()> {
    let platform = suite.is_none_or(|s| s == Suite::Platform);
    let http = suite.is_none_or(|s| s == Suite::Http);
    let import = suite.is_none_or(|s| s == Suite::Import);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let root = root.canonicalize().with_context(|| format!("resolving {}", root.display()))?;
    let target = target_dir(&root);
    let plugin_dir = target.join("bench-plugins");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // Bench profile: the same compiler settings as the benchmark binaries.
    let runner = target.join("release").join("jiayuan");
    if platform {
        plugins::run(PluginsCommand::Build {
            release: true,
            out: Some(plugin_dir.clone()),
            include_fixtures: true,
            manifest_path: None,
        })?;
        // The runner of process-isolated plugins is the `jiayuan` binary itself.
        let status = Command::new(&cargo)
            .current_dir(&root)
            .args(["build", "--release", "-p", "jiayuan-cli", "--bin", "jiayuan"])
            .status()
            .context("building the jiayuan binary")?;
        if !status.success() {
            bail!("building the jiayuan binary failed ({status})");
        }
    }
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(&root).env("JIAYUAN_BENCH_PLUGINS", &plugin_dir).env("JIAYUAN_BENCH_RUNNER", &runner).arg("bench");
    if platform {
        cmd.args(["-p", "jiayuan-host", "--bench", "platform"]);
    }
    if http {
        cmd.args(["-p", "jiayuan-server", "--bench", "http"]);
    }
    if import {
        if !platform {
            cmd.args(["-p", "jiayuan-host"]);
        }
        cmd.args(["--bench", "import"]);
    }
    cmd.args(["--", "--noplot"]);
    println!("running criterion benchmarks (a few minutes)…");
    let since = SystemTime::now();
    let status = cmd.status().context("running `cargo bench`")?;
    if !status.success() {
        bail!("the benchmarks failed ({status})");
    }
    let c = target.join("criterion");
    let mean = |group: &str, bench: &str| mean_ns(&c, since, group, bench);
    println!();
    println!(
        "figure                                                   measured                 ratio    target   verdict"
    );
    if platform {
        print_platform(&mean)?;
    }
    if http {
        print_http(&mean)?;
    }
    if import {
        print_import(&mean, &c)?;
    }
    Ok(())
}

fn print_import(mean: &dyn Fn(&str, &str) -> Result<f64>, criterion: &Path) -> Result<()> {
    let import = mean("import", "persons_csv_200k")?;
    let raw = mean("import", "raw_insert_200k")?;
    let ratio = raw / import;
    let rows = 200_000.0;
    println!(
        "(f) 200,000 persons imported from CSV vs raw batched insert {:>7.0}/s vs {:>7.0}/s {:>6.3}×   ≥ 0.5×   {}",
        rows * 1e9 / import,
        rows * 1e9 / raw,
        ratio,
        verdict(ratio >= 0.5)
    );
    let rss = std::fs::read_to_string(criterion.join("import").join("peak_rss_kib.txt"))
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok());
    match rss {
        Some(kib) => println!(
            "(f') peak RSS of the bench process after the imports      {:>8.1} MB                          ≤ 200 MB {}",
            kib / 1024.0,
            verdict(kib / 1024.0 <= 200.0)
        ),
        None => println!("(f') peak RSS: not measured (no /proc/self/status)"),
    }
    Ok(())
}

fn print_platform(mean: &dyn Fn(&str, &str) -> Result<f64>) -> Result<()> {
    let stat = mean("plugin_call", "static")?;
    let dynamic = mean("plugin_call", "dynamic")?;
    let bare = mean("create", "bare_insert")?;
    let engine = mean("create", "engine_dog")?;
    let bare_concurrent = mean("create", "bare_insert_concurrent")?;
    let engine_concurrent = mean("create", "engine_dog_concurrent")?;
    let load = mean("load", "all_plugins")?;
    let process_call = mean("plugin_call", "process")?;
    let engine_process = mean("create", "engine_dog_process")?;

    let call_ratio = dynamic / stat;
    let create_ratio = bare / engine;
    let concurrent_ratio = bare_concurrent / engine_concurrent;
    let load_ms = load / 1e6;
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
    let process_ratio = engine / engine_process;
    println!(
        "(g) dog records via the engine, plugin in a child vs in process {:>5.0}/s vs {:>6.0}/s   {:>6.3}×   ≥ 0.7×   {}",
        1e9 / engine_process,
        1e9 / engine,
        process_ratio,
        verdict(process_ratio >= 0.7)
    );
    println!(
        "(h) bare hook call, plugin in a child vs on its threads   {:>8.0} ns vs {:>6.0} ns   {:>6.1}×   (cost shown)",
        process_call,
        dynamic,
        process_call / dynamic
    );
    Ok(())
}

/// One throughput line: `measured` and `baseline` are mean nanoseconds per operation, shown in
/// µs per operation; the ratio is baseline ÷ measured.
fn throughput_line(label: &str, measured: f64, baseline: f64, target: f64) {
    let ratio = baseline / measured;
    println!(
        "{label:<57}{:>7.1} µs vs {:>5.1} µs   {ratio:>6.3}×   {:<9}{}",
        measured / 1e3,
        baseline / 1e3,
        format!("≥ {target}×"),
        verdict(ratio >= target)
    );
}

fn print_http(mean: &dyn Fn(&str, &str) -> Result<f64>) -> Result<()> {
    let engine = mean("http_create", "engine_dog")?;
    let engine_concurrent = mean("http_create", "engine_dog_concurrent")?;
    for (transport, how) in [("tcp", "loopback TCP"), ("oneshot", "router oneshot")] {
        let http = mean("http_create", &format!("{transport}_dog"))?;
        let http_concurrent = mean("http_create", &format!("{transport}_dog_concurrent"))?;
        throughput_line(&format!("(d) dog records over HTTP ({how}) vs the engine"), http, engine, 0.7);
        throughput_line(&format!("(d') the same, 16 in flight ({how})"), http_concurrent, engine_concurrent, 0.7);
    }
    for (transport, how) in [("tcp", "loopback TCP"), ("oneshot", "router oneshot")] {
        let hello = mean("http_list", &format!("hello_{transport}"))?;
        let list = mean("http_list", &format!("list_{transport}"))?;
        throughput_line(&format!("(e) list of 50 dogs vs hello world ({how})"), list, hello, 0.25);
    }
    Ok(())
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}
