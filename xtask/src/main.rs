//! Project automation, run as `cargo xtask <command>`: building the plugins with their sidecars
//! and checking their dependencies (`plugins`), the demo (`demo`) and the benchmarks (`bench`).
//! One module per command.
#![forbid(unsafe_code)]

mod bench;
mod demo;
mod plugins;
#[cfg(test)]
mod tidy;

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
    /// Build the plugins, seed a fresh demo database and serve it (arguments go to `jiayuan demo`).
    Demo {
        /// Passed to `jiayuan demo`, e.g. `--no-serve`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run the benchmarks and print each figure as a ratio against its same-run baseline.
    Bench {
        /// Only this suite (default: all).
        #[arg(value_enum)]
        suite: Option<bench::Suite>,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Plugins(cmd) => plugins::run(cmd),
        Command::Demo { args } => demo::run(args),
        Command::Bench { suite } => bench::run(suite),
    }
}
