//! `jiayuan import` and `jiayuan export`: registry ledgers (CSV, XLSX) in and out, on the
//! configured database directly, as the district-wide operator `cli:<OS user>` (audited).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use jiayuan_host::access::Caller;
use jiayuan_host::ledger::{self, ExportFormat, ExportPurpose, ImportKind, ImportOptions, ImportReport};
use jiayuan_host::registry::Registry;
use jiayuan_host::settings::Settings;
use jiayuan_store::Store;

/// `jiayuan import …`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ImportArgs {
    /// Write an empty XLSX template instead of importing.
    #[command(subcommand)]
    pub template: Option<TemplateCommand>,
    /// What the file holds: divisions, firms, estates, grid_cells, assignments, buildings,
    /// houses, persons, occupancy or leases (import them in this order).
    pub kind: Option<String>,
    /// The CSV (UTF-8 or GB 18030) or XLSX file.
    pub file: Option<PathBuf>,
    /// Check every row and report, but write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Apply the rows without problems even if others have some (default: all or nothing).
    #[arg(long)]
    pub valid_rows_only: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Import as this account, with its role and scope (a firm manager's ledger is checked
    /// against that firm's estates); the default is the district-wide operator `cli:<OS user>`.
    #[arg(long = "as", value_name = "LOGIN")]
    pub as_login: Option<String>,
}

/// `jiayuan import template <kind>`.
#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// Write the XLSX template of a kind: headers, a notes row, drop-downs for choices.
    Template {
        /// The kind (see `jiayuan import --help`).
        kind: String,
        /// Where to write it (default: `<kind>-template.xlsx`).
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

/// `jiayuan export <kind>`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// What to export (see `jiayuan import --help`).
    pub kind: String,
    /// xlsx or csv (UTF-8 with a BOM, for Excel).
    #[arg(long, default_value = "xlsx")]
    pub format: String,
    /// Why (audited): reconciliation, evaluation, reporting, lawful_request or reimport.
    #[arg(long)]
    pub purpose: String,
    /// Where to write it (default: `<kind>.<format>`).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Personal fields in clear, for editing and importing again (audited as such).
    #[arg(long)]
    pub unmasked: bool,
}

fn kind(s: &str) -> anyhow::Result<ImportKind> {
    ImportKind::parse(s).with_context(|| {
        let all: Vec<_> = ImportKind::ALL.iter().map(|k| k.as_str()).collect();
        format!("unknown kind `{s}`: use one of {}", all.join(", "))
    })
}

async fn registry(settings: &mut Settings) -> anyhow::Result<Registry> {
    settings.resolve_data_key().context("finding the data key")?;
    let store = Store::connect(&settings.database).await.context("connecting to the database")?;
    store.migrate().await.context("migrating")?;
    Ok(Registry::new(store, Arc::new(jiayuan_host::clock::SystemClock), Vec::new()))
}

/// Runs `jiayuan import`. Exit status 1 when the file had problems (nothing written unless
/// `--valid-rows-only`).
pub async fn import(mut settings: Settings, args: ImportArgs, actor: &str) -> anyhow::Result<bool> {
    if let Some(TemplateCommand::Template { kind: k, out }) = args.template {
        let k = kind(&k)?;
        let bytes = jiayuan_ledger::template(ledger::sheet_of(k)).context("writing the template")?;
        let out = out.unwrap_or_else(|| PathBuf::from(format!("{}-template.xlsx", k.as_str())));
        std::fs::write(&out, bytes).with_context(|| format!("writing {}", out.display()))?;
        println!("wrote {}", out.display());
        return Ok(true);
    }
    let (Some(k), Some(file)) = (args.kind, args.file) else {
        bail!("usage: jiayuan import <kind> <file> [--dry-run] [--valid-rows-only], or jiayuan import template <kind>");
    };
    let k = kind(&k)?;
    let reader = jiayuan_ledger::Reader::open(&file, ledger::sheet_of(k))
        .with_context(|| format!("opening {}", file.display()))?;
    let registry = registry(&mut settings).await?;
    let caller = match &args.as_login {
        None => Caller { name: actor.to_owned(), ..Caller::system("cli") },
        Some(login) => account_caller(registry.store(), login).await?,
    };
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let progress = move |p: jiayuan_ledger::Progress| {
        if !tty {
            return;
        }
        let share = p.total_bytes.filter(|t| *t > 0).map(|t| p.bytes_read.saturating_mul(100) / t);
        let mut err = std::io::stderr().lock();
        let _ = match share {
            Some(pct) => write!(err, "\r导入中 importing: {} rows ({pct}%)   ", p.rows_read),
            None => write!(err, "\r导入中 importing: {} rows   ", p.rows_read),
        };
        let _ = err.flush();
    };
    let options = ImportOptions { dry_run: args.dry_run, valid_rows_only: args.valid_rows_only };
    let report = ledger::import(&registry, &caller, k, reader, options, &progress)
        .await
        .with_context(|| format!("importing {}", file.display()))?;
    if tty {
        eprintln!();
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).context("writing the report")?);
    } else {
        print_report(&report);
    }
    Ok(report.refused == 0)
}

/// The caller an account acts as (refused when it is missing or disabled).
async fn account_caller(store: &Store, login: &str) -> anyhow::Result<Caller> {
    let account = store
        .account_by_login(login)
        .await
        .context("reading the account")?
        .with_context(|| format!("no account `{login}` (see `jiayuan users list`)"))?;
    if account.disabled {
        bail!("account `{login}` is disabled");
    }
    Ok(Caller::account(&account.login, account.role, &account.scope, account.items))
}

fn print_report(r: &ImportReport) {
    for p in &r.problems {
        let column = p.column.as_deref().unwrap_or("-");
        let value = p.masked_value.as_deref().map(|v| format!(" [{v}]")).unwrap_or_default();
        println!("第 {} 行 row {}, {column}: {} / {} ({}){value}", p.row, p.row, p.reason_zh, p.reason_en, p.rule);
    }
    if r.problems.len() < r.refused as usize {
        println!("… (more problems than listed)");
    }
    let verdict = match (r.dry_run, r.committed) {
        (true, _) => "试运行，未写入 dry run, nothing written",
        (false, true) => "已写入 applied",
        (false, false) => "有问题，未写入 problems found, nothing written (fix them, or use --valid-rows-only)",
    };
    println!(
        "{}: {} rows — {} inserted, {} updated, {} unchanged, {} referred to the district, {} with problems. {verdict}",
        r.kind, r.rows, r.inserted, r.updated, r.unchanged, r.referred, r.refused
    );
}

/// Runs `jiayuan export`.
pub async fn export(mut settings: Settings, args: ExportArgs, actor: &str) -> anyhow::Result<()> {
    let k = kind(&args.kind)?;
    let format = match args.format.as_str() {
        "xlsx" => ExportFormat::Xlsx,
        "csv" => ExportFormat::Csv,
        other => bail!("unknown format `{other}`: use xlsx or csv"),
    };
    let purpose = ExportPurpose::parse(&args.purpose).with_context(|| {
        format!(
            "unknown purpose `{}`: use reconciliation, evaluation, reporting, lawful_request or reimport",
            args.purpose
        )
    })?;
    let registry = registry(&mut settings).await?;
    let caller = Caller { name: actor.to_owned(), ..Caller::system("cli") };
    let export = ledger::export(&registry, &caller, k, format, purpose, args.unmasked).await.context("exporting")?;
    let out = args.out.unwrap_or_else(|| PathBuf::from(format!("{}.{}", k.as_str(), args.format)));
    std::fs::write(&out, &export.bytes).with_context(|| format!("writing {}", out.display()))?;
    println!("wrote {} rows to {}", export.rows, out.display());
    Ok(())
}

/// `jiayuan registry …`: look at the registry and end what an import cannot (an assignment, a
/// residence) — on the database directly, audited as `cli:<OS user>`. Entries are added and
/// changed by `jiayuan import` (or the API).
#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// List the estates with their code, community, management status and serving firm.
    Estates {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the firms (contacts masked).
    Firms {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List an estate's service assignments (history kept).
    Assignments {
        /// The estate code.
        estate: String,
    },
    /// End a service assignment on a day (its last day); the estate's reach moves then.
    EndAssignment {
        /// The assignment id (see `registry assignments`).
        id: i64,
        /// The last day of service, YYYY-MM-DD.
        #[arg(long)]
        to: String,
    },
    /// End an occupancy (a move out) on a day.
    EndOccupancy {
        /// The occupancy id.
        id: i64,
        /// The last day, YYYY-MM-DD.
        #[arg(long)]
        to: String,
    },
    /// Show the row log of an import (action, target, fields or rules; never values).
    ImportLog {
        /// The import id (the `registry.import` audit event names it as `import/<id>`).
        id: i64,
    },
}

fn day(s: &str, what: &str) -> anyhow::Result<jiayuan_domain::Date> {
    s.parse().map_err(|_| anyhow::anyhow!("{what}: expected a date YYYY-MM-DD"))
}

/// Runs `jiayuan registry`.
pub async fn registry_command(mut settings: Settings, command: RegistryCommand, actor: &str) -> anyhow::Result<()> {
    let registry = registry(&mut settings).await?;
    let store = registry.store();
    let caller = Caller { name: actor.to_owned(), ..Caller::system("cli") };
    match command {
        RegistryCommand::Estates { json } => {
            let serving = store.serving_firms(registry.today()).await.context("reading assignments")?;
            let estates = store.estates().await.context("reading estates")?;
            if json {
                let rows: Vec<_> = estates
                    .iter()
                    .map(|e| serde_json::json!({"estate": e, "serving_firm_id": serving.get(&e.id).map(|f| f.0)}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows).context("writing JSON")?);
            } else {
                println!("{:<6} {:<14} {:<14} {:<26} {:>8}  name", "id", "code", "community", "management", "firm");
                for e in &estates {
                    let firm = serving.get(&e.id).map_or_else(|| "-".to_owned(), |f| f.to_string());
                    let management = serde_json::to_value(e.management).ok();
                    let management = management.as_ref().and_then(|v| v.as_str()).unwrap_or("?");
                    println!(
                        "{:<6} {:<14} {:<14} {:<26} {:>8}  {}",
                        e.id, e.code, e.community, management, firm, e.name
                    );
                }
            }
        }
        RegistryCommand::Firms { json } => {
            let firms = store.firms().await.context("reading firms")?;
            let masked: Vec<_> = firms
                .into_iter()
                .map(|mut f| {
                    let p = jiayuan_domain::Sensitivity::Personal;
                    f.contact_phone = f.contact_phone.map(|v| jiayuan_domain::mask(&v, p));
                    f.legal_representative = f.legal_representative.map(|v| jiayuan_domain::mask(&v, p));
                    f
                })
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&masked).context("writing JSON")?);
            } else {
                for f in &masked {
                    println!("{:<6} {:<20} {}", f.id, f.credit_code, f.name);
                }
            }
        }
        RegistryCommand::Assignments { estate } => {
            let estates = store.estates().await.context("reading estates")?;
            let e = estates
                .iter()
                .find(|e| e.code.as_str() == estate.to_ascii_uppercase())
                .with_context(|| "no estate has this code (see `jiayuan registry estates`)".to_owned())?;
            for a in store.assignments_of_estate(e.id).await.context("reading assignments")? {
                let to = a.to.map_or_else(|| "open".to_owned(), |t| t.to_string());
                println!(
                    "{:<6} firm {:<6} {} – {}  {}",
                    a.id,
                    a.firm_id,
                    a.from,
                    to,
                    a.contract_ref.unwrap_or_default()
                );
            }
        }
        RegistryCommand::EndAssignment { id, to } => {
            let to = day(&to, "--to")?;
            let mut write = registry.begin(&caller).await?;
            let change = write.end_assignment(jiayuan_domain::AssignmentId(id), to).await.map_err(explain)?;
            write.commit().await?;
            println!("assignment {id}: {} (ends {to})", change.action());
        }
        RegistryCommand::EndOccupancy { id, to } => {
            let to = day(&to, "--to")?;
            let mut write = registry.begin(&caller).await?;
            let change = write.end_occupancy(jiayuan_domain::OccupancyId(id), to).await.map_err(explain)?;
            write.commit().await?;
            println!("occupancy {id}: {} (ends {to})", change.action());
        }
        RegistryCommand::ImportLog { id } => {
            for row in store.import_log(id).await.context("reading the import log")? {
                let rows =
                    if row.row_to > row.row { format!("{}-{}", row.row, row.row_to) } else { row.row.to_string() };
                println!(
                    "row {:<13} {:<9} {:<28} {}",
                    rows,
                    row.action,
                    row.target.unwrap_or_default(),
                    row.detail.join(",")
                );
            }
        }
    }
    Ok(())
}

/// A registry refusal as one readable error (field, rule, reasons; never values).
fn explain(e: jiayuan_host::registry::RegistryError) -> anyhow::Error {
    match e {
        jiayuan_host::registry::RegistryError::Invalid(errors) => {
            let lines: Vec<String> = errors
                .iter()
                .map(|f| format!("{}: {} / {} ({})", f.field, f.message_zh, f.message_en, f.rule))
                .collect();
            anyhow::anyhow!("refused: {}", lines.join("; "))
        }
        jiayuan_host::registry::RegistryError::Denied(_) => anyhow::anyhow!("not found"),
        other => anyhow::Error::new(other),
    }
}
