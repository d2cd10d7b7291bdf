//! `jiayuan`: the host binary — serve, migrate, plugins, config, demo.

mod demo;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use jiayuan_host::settings::{self, LogFormat, Settings};

/// Jiayuan (家园): the platform Luohu's property firms and district office share to run the
/// six delegated service items.
#[derive(Debug, Parser)]
#[command(name = "jiayuan", version, about, long_about = None)]
struct Cli {
    /// Directory holding default.toml and the environment layers.
    #[arg(long, global = true, default_value = "config")]
    config: PathBuf,
    /// Environment layer to add (config/{env}.toml), e.g. production.
    #[arg(long, global = true, env = "JIAYUAN_ENV")]
    env: Option<String>,
    /// Log one JSON object per line instead of human-readable lines.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP API and the deadline scheduler (migrates the database first).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Inspect plugins.
    #[command(subcommand)]
    Plugins(PluginsCommand),
    /// Inspect configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Create a demo database (Luohu streets, estates, firms, residents, dogs) and serve it.
    Demo(demo::DemoArgs),
}

#[derive(Debug, Subcommand)]
enum PluginsCommand {
    /// Load every plugin in plugins.dir and show what loaded and what failed.
    List,
    /// Like `list`, but exit with status 1 if any plugin failed to load.
    Verify,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Load and validate the configuration layers and print the result (secrets redacted).
    Check,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_settings(cli: &Cli) -> anyhow::Result<Settings> {
    let layers = settings::Layers { dir: &cli.config, env: cli.env.as_deref() };
    settings::load(layers, std::env::vars()).with_context(|| format!("loading configuration ({layers:?})"))
}

fn init_logging(settings: &Settings, json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(&settings.log.filter).unwrap_or_else(|e| {
        eprintln!("warning: log.filter `{}` is invalid ({e}); using `info`", settings.log.filter);
        EnvFilter::new("info")
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json || settings.log.format == LogFormat::Json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = load_settings(&cli)?;
    if let Command::Config(ConfigCommand::Check) = cli.command {
        println!("configuration OK ({:?})", settings::Layers { dir: &cli.config, env: cli.env.as_deref() });
        println!("{}", settings.redacted_summary());
        return Ok(ExitCode::SUCCESS);
    }
    init_logging(&settings, cli.log_json);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the tokio runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve => serve(settings).await.map(|_| ExitCode::SUCCESS),
            Command::Migrate => {
                let store =
                    jiayuan_store::Store::connect(&settings.database).await.context("connecting to the database")?;
                let report = store.migrate().await.context("migrating")?;
                if report.applied.is_empty() {
                    println!("database is up to date");
                } else {
                    println!("applied {} migration(s): {}", report.applied.len(), report.applied.join(", "));
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Plugins(cmd) => plugins(settings, cmd).await,
            Command::Demo(args) => demo::run(settings, args).await.map(|_| ExitCode::SUCCESS),
            Command::Config(_) => Ok(ExitCode::SUCCESS),
        }
    })
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let host = jiayuan_host::runtime::start(settings, jiayuan_host::runtime::Options::default())
        .await
        .context("starting the host")?;
    run_host(host, None).await
}

/// Serves a started host until Ctrl-C, printing `banner` once listening.
pub(crate) async fn run_host(host: jiayuan_host::runtime::Host, banner: Option<String>) -> anyhow::Result<()> {
    let listen = host.settings.server.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen} (is another jiayuan running? change server.listen)"))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    tracing::info!(%addr, "listening");
    if let Some(b) = banner {
        println!("{}", b.replace("{addr}", &addr.to_string()));
    } else {
        println!("jiayuan listening on http://{addr}  (health: http://{addr}/api/health)");
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let scheduler = host.settings.scheduler.enabled.then(|| {
        let engine = host.engine.clone();
        let every = host.settings.scheduler.tick;
        let mut rx = stop_rx.clone();
        tokio::spawn(async move {
            jiayuan_host::scheduler::run(engine, every, async move {
                let _ = rx.wait_for(|stop| *stop).await;
            })
            .await
        })
    });
    let mut rx = stop_rx.clone();
    let server = jiayuan_server::serve(listener, host.engine.clone(), async move {
        let _ = rx.wait_for(|stop| *stop).await;
    });
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    };
    tokio::select! {
        res = server => res.context("serving HTTP")?,
        _ = ctrl_c => {}
    }
    let _ = stop_tx.send(true);
    if let Some(s) = scheduler {
        let _ = s.await;
    }
    Ok(())
}

async fn plugins(settings: Settings, cmd: PluginsCommand) -> anyhow::Result<ExitCode> {
    let dir = settings.plugins.dir.clone();
    let mut registry = jiayuan_host::plugins::PluginRegistry::new(settings.plugins.clone());
    if let Err(e) = registry.load_dir() {
        eprintln!("error: {e}");
        return Ok(ExitCode::FAILURE);
    }
    let report = registry.report();
    if report.is_empty() {
        println!("no plugins found in {} — build them with `cargo xtask plugins build`", dir.display());
    }
    for entry in &report {
        println!("{entry}");
    }
    let failed = report.iter().filter(|p| !p.is_healthy()).count();
    Ok(match cmd {
        PluginsCommand::Verify if failed > 0 || report.is_empty() => {
            eprintln!("{failed} plugin(s) failed to load");
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    })
}
