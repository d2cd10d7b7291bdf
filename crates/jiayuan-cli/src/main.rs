//! `jiayuan`: the host binary — serve, migrate, plugins, config, audit, users, import, export, demo.

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
    /// Runs one process-isolated plugin for a parent host, over stdin and stdout (started by the
    /// host itself; not for people).
    #[command(name = "plugin-runner", hide = true)]
    PluginRunner(RunnerCli),
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
    /// Inspect the tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Manage accounts and their API tokens (works on the database directly; audited as
    /// `cli:<OS user>`).
    #[command(subcommand)]
    Users(jiayuan_cli::users::UsersCommand),
    /// Create a demo database (Luohu streets, estates, firms, residents, dogs) and serve it.
    Demo(jiayuan_cli::demo::DemoArgs),
    /// Import a registry ledger (CSV or XLSX), or write its template (`import template <kind>`).
    Import(jiayuan_cli::ledger::ImportArgs),
    /// Export a registry ledger (XLSX, or CSV with a BOM), masked and audited.
    Export(jiayuan_cli::ledger::ExportArgs),
    /// Look at the registry; end assignments and residences; read an import's log.
    #[command(subcommand)]
    Registry(jiayuan_cli::ledger::RegistryCommand),
}

#[derive(Debug, Subcommand)]
enum PluginsCommand {
    /// Load every plugin in plugins.dir and show what loaded and what failed.
    List,
    /// Like `list`, but exit with status 1 if any plugin failed to load.
    Verify,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Recompute the audit log's hash chain; exit with status 1 naming the first bad seq.
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
            eprintln!("error: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes joined by `: `, like `{e:#}`, but skipping a cause whose text the
/// message already holds (some library errors print their source themselves and also return it
/// from `source()`, which would print it twice).
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// Who `jiayuan users` records in the audit log: `cli:<OS user>`, the user from `USER`, else
/// `LOGNAME` (kept to the characters of a login name, at most 64), else `cli:cli`. Always with the
/// `cli:` prefix: a bare name would read as the login of an account acting through the API.
fn cli_actor(var: impl Fn(&str) -> Result<String, std::env::VarError>) -> String {
    let user = ["USER", "LOGNAME"].into_iter().find_map(|key| {
        let clean: String = var(key)
            .ok()?
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
            .take(64)
            .collect();
        (!clean.is_empty()).then_some(clean)
    });
    format!("cli:{}", user.as_deref().unwrap_or("cli"))
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
    // Colour only on a terminal: a log file or journald gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    if json || settings.log.format == LogFormat::Json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The hidden `plugin-runner` subcommand's arguments (see `jiayuan_host::plugins::RunnerArgs`).
#[derive(Debug, clap::Args)]
struct RunnerCli {
    #[arg(long)]
    dir: PathBuf,
    #[arg(long)]
    sidecar: PathBuf,
    #[arg(long)]
    id: String,
    #[arg(long)]
    pin: Option<String>,
    #[arg(long)]
    threads: usize,
    #[arg(long)]
    start_timeout_ms: u64,
}

/// Runs a plugin for the parent host: no configuration, no logging set up, no environment (the
/// parent cleared it); the frames go over stdin and stdout.
fn plugin_runner(args: &RunnerCli) -> anyhow::Result<ExitCode> {
    let args = jiayuan_host::plugins::RunnerArgs {
        dir: args.dir.clone(),
        sidecar: args.sidecar.clone(),
        id: args.id.clone(),
        pin: args.pin.clone(),
        threads: args.threads,
        start_timeout: std::time::Duration::from_millis(args.start_timeout_ms),
    };
    let (input, output) = jiayuan_host::plugins::runner_stdio().context("setting up the runner's pipes")?;
    jiayuan_host::plugins::run_plugin_runner(&args, input, output)?;
    Ok(ExitCode::SUCCESS)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::PluginRunner(args) = &cli.command {
        return plugin_runner(args);
    }
    let mut settings = load_settings(&cli)?;
    // Process-isolated plugins run in a child of this very binary.
    settings.plugins.runner = std::env::current_exe().ok();
    if matches!(cli.command, Command::Demo(_)) && settings.log.filter == "info" {
        // Seeding registers dozens of dogs; keep the plugin's per-record lines out of the way.
        settings.log.filter = "info,jiayuan::plugin=warn".into();
    }
    if matches!(cli.command, Command::Users(_) | Command::Import(_) | Command::Export(_) | Command::Registry(_))
        && settings.log.filter == "info"
    {
        // `users` migrates before every command: keep "no pending migrations" out of its output
        // (what a migration applied is still logged by the store).
        settings.log.filter = "info,sea_orm_migration=warn".into();
    }
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
                let mut settings = settings;
                settings.resolve_data_key().context("finding the data key")?;
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
            Command::Audit(AuditCommand::Verify) => audit_verify(settings).await,
            Command::Users(cmd) => jiayuan_cli::users::run(settings, cmd, &cli_actor(|k| std::env::var(k)))
                .await
                .map(|_| ExitCode::SUCCESS),
            Command::Demo(args) => jiayuan_cli::demo::run(settings, args).await.map(|_| ExitCode::SUCCESS),
            Command::Config(_) | Command::PluginRunner(_) => Ok(ExitCode::SUCCESS),
            Command::Import(args) => {
                let clean = jiayuan_cli::ledger::import(settings, args, &cli_actor(|k| std::env::var(k))).await?;
                Ok(if clean { ExitCode::SUCCESS } else { ExitCode::FAILURE })
            }
            Command::Export(args) => jiayuan_cli::ledger::export(settings, args, &cli_actor(|k| std::env::var(k)))
                .await
                .map(|_| ExitCode::SUCCESS),
            Command::Registry(cmd) => {
                jiayuan_cli::ledger::registry_command(settings, cmd, &cli_actor(|k| std::env::var(k)))
                    .await
                    .map(|_| ExitCode::SUCCESS)
            }
        }
    })
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let host = jiayuan_host::runtime::start(settings, jiayuan_host::runtime::Options::default())
        .await
        .context("starting the host")?;
    jiayuan_cli::run_host(host, None).await
}

async fn audit_verify(mut settings: Settings) -> anyhow::Result<ExitCode> {
    settings.resolve_data_key().context("finding the data key")?;
    let store = jiayuan_store::Store::connect(&settings.database).await.context("connecting to the database")?;
    let report = store.verify_audit().await.context("reading the audit log")?;
    let code = match &report.fault {
        None => {
            println!("audit log OK: {} events, head {}", report.events, report.head.get(..16).unwrap_or(&report.head));
            ExitCode::SUCCESS
        }
        Some(fault) => {
            println!("audit log BROKEN at seq {}: {}", fault.seq, fault.reason);
            ExitCode::FAILURE
        }
    };
    store.close().await.context("closing the database")?;
    Ok(code)
}

async fn plugins(settings: Settings, cmd: PluginsCommand) -> anyhow::Result<ExitCode> {
    let dir = settings.plugins.dir.clone();
    let mut registry = jiayuan_host::plugins::PluginRegistry::new(settings.plugins.clone());
    if let Err(e) = registry.load_dir() {
        eprintln!("error: {e}");
        return Ok(ExitCode::FAILURE);
    }
    let report = registry.report();
    let found = report.iter().any(|e| !matches!(e.status, jiayuan_host::plugins::PluginStatus::Missing));
    if !found {
        println!("no plugins found in {} — build them with `cargo xtask plugins build`", dir.display());
    }
    for entry in &report {
        println!("{entry}");
    }
    let failed = report.iter().filter(|p| !p.is_healthy()).count();
    Ok(match cmd {
        PluginsCommand::Verify if !found => {
            eprintln!("error: no plugin to verify in {}", dir.display());
            ExitCode::FAILURE
        }
        PluginsCommand::Verify if failed > 0 => {
            eprintln!("{failed} plugin(s) failed to load");
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    })
}

#[cfg(test)]
mod tests {
    use super::{cli_actor, error_chain};

    #[test]
    fn the_cli_actor_names_the_os_user() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |key: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| (*v).to_owned())
                    .ok_or(std::env::VarError::NotPresent)
            }
        };
        assert_eq!(cli_actor(env(&[("USER", "zhang"), ("LOGNAME", "root")])), "cli:zhang");
        assert_eq!(cli_actor(env(&[("LOGNAME", "ops")])), "cli:ops");
        assert_eq!(cli_actor(env(&[("USER", " \n"), ("LOGNAME", "ops")])), "cli:ops");
        assert_eq!(cli_actor(env(&[("USER", "ev il\nuser")])), "cli:eviluser");
        assert_eq!(cli_actor(env(&[])), "cli:cli");
    }

    /// An error that prints its source in its own message and also returns it from `source()`.
    #[derive(Debug)]
    struct Wrapping(std::io::Error);

    impl std::fmt::Display for Wrapping {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "cannot read configuration: {}", self.0)
        }
    }

    impl std::error::Error for Wrapping {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_cause_already_in_the_message_is_printed_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "file \"x.toml\" not found");
        let e = anyhow::Error::new(Wrapping(io)).context("loading configuration");
        assert_eq!(error_chain(&e), "loading configuration: cannot read configuration: file \"x.toml\" not found");
    }

    #[test]
    fn distinct_causes_are_all_printed() {
        let e = anyhow::anyhow!("connection refused").context("connecting to the database");
        assert_eq!(error_chain(&e), "connecting to the database: connection refused");
    }
}
