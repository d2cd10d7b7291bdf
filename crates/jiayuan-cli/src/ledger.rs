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
    let caller = Caller::system("cli");
    let caller = Caller { name: actor.to_owned(), ..caller };
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
