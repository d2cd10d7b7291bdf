//! `cargo xtask demo`: build the plugins, then run `jiayuan demo` (seed a fresh SQLite database
//! and serve it).

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::plugins::{self, PluginsCommand};

/// Builds the plugins into `target/plugins` and runs the demo with `args` passed through.
pub(crate) fn run(args: Vec<String>) -> Result<()> {
    plugins::run(PluginsCommand::Build { release: false, out: None, include_fixtures: false, manifest_path: None })?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["run", "--quiet", "-p", "jiayuan-cli", "--bin", "jiayuan", "--", "demo"])
        .args(&args)
        .status()
        .context("running `cargo run -p jiayuan-cli -- demo`")?;
    if !status.success() {
        bail!("`jiayuan demo` exited with {status}");
    }
    Ok(())
}
