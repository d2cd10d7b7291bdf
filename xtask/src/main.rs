//! Project automation, run as `cargo xtask <command>`: building the plugins with their sidecars
//! and checking their dependencies (`plugins`). One module per command.
#![forbid(unsafe_code)]

mod plugins;

use clap::{Parser, Subcommand};

/// Jiayuan project automation.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", about = "Jiayuan project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Every xtask command.
#[derive(Debug, Subcommand)]
enum Command {
    /// Build service-item plugins with their `plugin.toml` sidecars, or check their dependencies.
    #[command(subcommand)]
    Plugins(plugins::PluginsCommand),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Plugins(cmd) => plugins::run(cmd),
    }
}
