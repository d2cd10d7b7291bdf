//! 台账导入导出 registry imports and exports: the sheet (columns) of every registry kind, and
//! [`import`], which reads a CSV or XLSX ledger through `jiayuan-ledger` and applies it through
//! the registry service ([`crate::registry`]) — so an import obeys exactly the rules, reach and
//! validation of single writes.
//!
//! An import runs in ONE registry transaction: a reading thread streams the file, converts and
//! checks each row and seals persons (encryption, blind indexes) a chunk ahead, while the writer
//! applies them (persons [`jiayuan_store::PERSON_CHUNK`] at a time, one statement per chunk);
//! a dry run, or a file with problems when not `valid_rows_only`, rolls the transaction
//! back, so what a dry run reports is exactly what applying would do (all-or-nothing by
//! default). The rolled-back transaction is the staging area: no copy of the rows, with their
//! personal data, is kept anywhere else. Committed imports write one audit event (file sha256
//! and counts) and a row log: each changed, referred or refused row, runs of rows that did the
//! same as one line (field names and rule codes, never values). Upserts match natural keys, so
//! re-importing the same file changes nothing. [`export`] and [`export_records`] write what the
//! caller reaches, masked, and audit it.

use std::collections::HashMap;

use jiayuan_domain::{
    AddressCode, DivisionCode, DocKind, EstateCode, EstateId, FirmId, GridKind, HouseId, Hukou, IdentityDoc, Phone,
    Relation, Sensitivity, Sex, validate_doc,
};
use jiayuan_ledger::{Column, Problem, Reader, RowOutcome, Sheet};
use jiayuan_store::{NewAssignment, NewBuilding, NewEstate, NewFirm, NewHouse, NewLease, NewOccupancy, NewPerson};

use crate::access::Caller;
use crate::registry::{FieldError, PersonOutcome, Registry, RegistryError, RegistryWrite};

mod records;
mod sheets;
#[cfg(test)]
mod tests;

pub use records::{RecordExportError, export_records};
pub use sheets::{ImportKind, sheet_of};

/// How to run an import.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Check everything, write nothing.
    pub dry_run: bool,
    /// Apply the rows without problems even when others have problems (default: all or nothing).
    pub valid_rows_only: bool,
}

/// At most this many problems are listed in a report (the count is always complete).
pub const MAX_LISTED_PROBLEMS: usize = 2000;

/// What an import did (or, for a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ImportReport {
    /// The kind imported.
    pub kind: String,
    /// SHA-256 of the file.
    pub file_sha256: String,
    /// Data rows read.
    pub rows: u64,
    /// Rows that inserted a new entry.
    pub inserted: u64,
    /// Rows that changed an existing entry.
    pub updated: u64,
    /// Rows that matched an entry holding the same values.
    pub unchanged: u64,
    /// 转区级核对 rows naming a person the importer does not reach: neither changed nor shown.
    pub referred: u64,
    /// Rows with problems (not applied).
    pub refused: u64,
    /// Every problem by row and column, masked (at most [`MAX_LISTED_PROBLEMS`]).
    pub problems: Vec<ReportProblem>,
    /// Whether the changes were committed.
    pub committed: bool,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

/// One problem of an import, by row and column (the value masked).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReportProblem {
    /// 1-based row as Excel shows it.
    pub row: u64,
    /// The column (header text or Chinese name), if the problem is about one.
    pub column: Option<String>,
    /// The rule's code.
    pub rule: String,
    /// 原因.
    pub reason_zh: String,
    /// The reason.
    pub reason_en: String,
    /// The cell, masked by its column's sensitivity.
    pub masked_value: Option<String>,
}

impl From<&Problem> for ReportProblem {
    fn from(p: &Problem) -> ReportProblem {
        ReportProblem {
            row: p.row,
            column: p.column.clone(),
            rule: p.rule.to_owned(),
            reason_zh: p.reason_zh.clone(),
            reason_en: p.reason_en.clone(),
            masked_value: p.masked_value.clone(),
        }
    }
}

/// Why an import could not run at all (problems of rows are in the report instead).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read.
    #[error(transparent)]
    File(#[from] jiayuan_ledger::LedgerError),
    /// The registry refused as a whole (role) or failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// Reading the file stopped before its end (the reading thread failed); nothing was written.
    #[error("reading the file stopped before its end; nothing was written")]
    Interrupted,
}

/// A converted person row, sealed for writing, waiting for its chunk.
struct PendingPerson {
    row: u64,
    prepared: jiayuan_store::PreparedPerson,
    home: Option<(HomeRef, NewHome)>,
}

/// A person row's number and where it says the person lives.
type RowHome = (u64, Option<(HomeRef, NewHome)>);

/// What the reading thread hands the writer.
enum Msg {
    /// The problems of one row (`header`: of the header row, which is no data row).
    Problems { row: u64, header: bool, problems: Vec<ReportProblem> },
    /// A chunk of person rows, checked and sealed.
    Persons(Vec<PendingPerson>),
    /// A row of another kind.
    Row(jiayuan_ledger::Row),
    /// How far reading got.
    Progress(jiayuan_ledger::Progress),
    /// The file is read: its hash.
    End { sha256: String, progress: jiayuan_ledger::Progress },
    /// Reading (or sealing) failed; the import stops and nothing is written.
    Failed(ImportError),
}

/// The reading side of an import (runs on a blocking thread).
struct Producer {
    store: jiayuan_store::Store,
    today: jiayuan_domain::Date,
    district_wide: bool,
    kind: ImportKind,
    tx: tokio::sync::mpsc::Sender<Msg>,
}

impl Producer {
    /// Sends one message; `false` when the writer has stopped listening.
    fn send(&self, msg: Msg) -> bool {
        self.tx.blocking_send(msg).is_ok()
    }

    fn run(self, mut reader: Reader) {
        let sheet = sheet_of(self.kind);
        let header_row = reader.header_row();
        let mut seen: HashMap<(DocKind, String), u64> = HashMap::new();
        let mut chunk = Vec::new();
        let mut n = 0u64;
        while let Some(item) = reader.next() {
            let outcome = match item {
                Ok(o) => o,
                Err(e) => {
                    self.send(Msg::Failed(e.into()));
                    return;
                }
            };
            n += 1;
            if n.is_multiple_of(1000) && !self.send(Msg::Progress(reader.progress())) {
                return;
            }
            let msg = match outcome {
                RowOutcome::Problems { row, problems } => Some(Msg::Problems {
                    row,
                    header: row == header_row,
                    problems: problems.iter().map(ReportProblem::from).collect(),
                }),
                RowOutcome::Row(row) if self.kind != ImportKind::Persons => Some(Msg::Row(row)),
                RowOutcome::Row(row) => {
                    let r = row.number;
                    match person_row(&row, self.today, &mut seen) {
                        // Outside the district office, a person is reached through where they
                        // live: one imported without a residence could never be seen again by
                        // its importer.
                        Ok((_, None)) if !self.district_wide => Some(Msg::Problems {
                            row: r,
                            header: false,
                            problems: vec![problem(
                                r,
                                col(sheet, "estate_code"),
                                "residence_required",
                                "请填写居住地址（小区编码、楼栋、房号）",
                                "give the residence (estate code, building, room)",
                            )],
                        }),
                        Ok((person, home)) => match self.store.prepare_person(&person) {
                            Ok(prepared) => {
                                chunk.push(PendingPerson { row: r, prepared, home });
                                None
                            }
                            Err(e) => {
                                self.send(Msg::Failed(ImportError::Registry(e.into())));
                                return;
                            }
                        },
                        Err(problems) => Some(Msg::Problems { row: r, header: false, problems }),
                    }
                }
            };
            if let Some(msg) = msg
                && !self.send(msg)
            {
                return;
            }
            if chunk.len() >= jiayuan_store::PERSON_CHUNK && !self.send(Msg::Persons(std::mem::take(&mut chunk))) {
                return;
            }
        }
        if !chunk.is_empty() && !self.send(Msg::Persons(chunk)) {
            return;
        }
        self.send(Msg::End { sha256: reader.sha256_hex().unwrap_or_default(), progress: reader.progress() });
    }
}

/// Where a row says someone lives: estate code, building name, room.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct HomeRef {
    estate: String,
    building: String,
    room: String,
}

#[derive(Debug, Clone)]
struct NewHome {
    relation: Relation,
    from: jiayuan_domain::Date,
    to: Option<jiayuan_domain::Date>,
    primary: bool,
}

/// The running tallies of an import.
struct Tally<'r> {
    report: &'r mut ImportReport,
    log: Vec<(u64, &'static str, Option<String>, Vec<String>)>,
}

impl Tally<'_> {
    fn problems(&mut self, problems: impl IntoIterator<Item = ReportProblem>) {
        let mut any = false;
        for p in problems {
            any = true;
            if self.report.problems.len() < MAX_LISTED_PROBLEMS {
                self.report.problems.push(p);
            }
        }
        if any {
            self.report.refused += 1;
        }
    }

    fn field_errors(&mut self, row: u64, sheet: &Sheet, errors: Vec<FieldError>) {
        let problems: Vec<ReportProblem> = errors
            .into_iter()
            .map(|e| ReportProblem {
                row,
                column: sheet.columns.iter().find(|c| c.key == e.field).map(|c| c.zh.to_owned()).or(Some(e.field)),
                rule: e.rule,
                reason_zh: e.message_zh,
                reason_en: e.message_en,
                masked_value: None,
            })
            .collect();
        self.log.push((row, "refused", None, problems.iter().map(|p| p.rule.clone()).collect()));
        self.problems(problems);
    }

    fn change<I: std::fmt::Display>(&mut self, row: u64, object: &str, change: &jiayuan_store::Change<I>) {
        let action = change.action();
        match action {
            "inserted" => self.report.inserted += 1,
            "updated" => self.report.updated += 1,
            _ => self.report.unchanged += 1,
        }
        if change.is_change() {
            let fields = change.fields().iter().map(|f| (*f).to_owned()).collect();
            self.log.push((row, action, Some(format!("{object}/{}", display_id(change))), fields));
        }
    }
}

fn display_id<I: std::fmt::Display>(c: &jiayuan_store::Change<I>) -> String {
    match c {
        jiayuan_store::Change::Inserted(id) | jiayuan_store::Change::Unchanged(id) => id.to_string(),
        jiayuan_store::Change::Updated { id, .. } => id.to_string(),
    }
}

fn problem(row: u64, column: &str, rule: &str, zh: &str, en: &str) -> ReportProblem {
    ReportProblem {
        row,
        column: Some(column.to_owned()),
        rule: rule.to_owned(),
        reason_zh: zh.to_owned(),
        reason_en: en.to_owned(),
        masked_value: None,
    }
}

/// Imports one ledger file of `kind` for `caller`. `progress` is called now and then with the
/// rows read so far and the reader's progress.
pub async fn import(
    registry: &Registry,
    caller: &Caller,
    kind: ImportKind,
    reader: Reader,
    options: ImportOptions,
    progress: &(dyn Fn(jiayuan_ledger::Progress) + Send + Sync),
) -> Result<ImportReport, ImportError> {
    let sheet = sheet_of(kind);
    let mut report = ImportReport { kind: kind.as_str().to_owned(), dry_run: options.dry_run, ..Default::default() };
    let mut write = registry.begin(caller).await?;
    write.quiet_rows();
    let mut tally = Tally { report: &mut report, log: Vec::new() };
    let mut ctx = Lookups::default();
    // The file is read, checked and (for persons) sealed on a thread of its own, a chunk ahead
    // of the database: parsing and encryption overlap with the writes instead of waiting for
    // them, and a blocking read (an XLSX worksheet) never holds a runtime worker.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Msg>(4);
    let producer = Producer {
        store: registry.store().clone(),
        today: registry.today(),
        district_wide: caller.reach == crate::access::Reach::District,
        kind,
        tx,
    };
    let reading = tokio::task::spawn_blocking(move || producer.run(reader));
    let mut sha256 = None;
    let mut failure = None;
    while let Some(msg) = rx.recv().await {
        match msg {
            Msg::Problems { row, header, problems } => {
                if !header {
                    tally.report.rows += 1;
                }
                tally.log.push((row, "refused", None, problems.iter().map(|p| p.rule.clone()).collect()));
                tally.problems(problems);
            }
            Msg::Persons(chunk) => {
                tally.report.rows += chunk.len() as u64;
                apply_persons(&mut write, &mut ctx, chunk, &mut tally, sheet).await?;
            }
            Msg::Row(row) => {
                tally.report.rows += 1;
                let r = row.number;
                if let Err(e) = apply_row(&mut write, &mut ctx, kind, &row, &mut tally).await {
                    match e {
                        RowError::Problems(p) => tally.problems(p),
                        RowError::Registry(RegistryError::Invalid(errors)) => tally.field_errors(r, sheet, errors),
                        RowError::Registry(RegistryError::Denied(_)) => tally.field_errors(
                            r,
                            sheet,
                            vec![FieldError::new(
                                "",
                                "outside_reach",
                                "不在您的管辖范围内或不存在",
                                "outside your reach, or not registered",
                            )],
                        ),
                        RowError::Registry(other) => return Err(other.into()),
                    }
                }
            }
            Msg::Progress(p) => progress(p),
            Msg::End { sha256: hash, progress: p } => {
                sha256 = Some(hash);
                progress(p);
            }
            Msg::Failed(e) => failure = Some(e),
        }
    }
    let joined = reading.await;
    // The reading thread ended without finishing the file: never commit half of it.
    let finished = sha256.is_some() && joined.is_ok();
    let failure = failure.or((!finished).then_some(ImportError::Interrupted));
    if let Some(e) = failure {
        write.rollback().await?;
        return Err(e);
    }
    let sha256 = sha256.unwrap_or_default();
    let log = std::mem::take(&mut tally.log);
    report.file_sha256 = sha256;
    let apply = !options.dry_run && (report.refused == 0 || options.valid_rows_only);
    if !apply {
        write.rollback().await?;
        return Ok(report);
    }
    let counts = serde_json::json!({
        "rows": report.rows, "inserted": report.inserted, "updated": report.updated,
        "unchanged": report.unchanged, "referred": report.referred, "refused": report.refused,
    });
    let mode = if options.valid_rows_only { "valid_rows_only" } else { "all_or_nothing" };
    write.log_import(kind.as_str(), &report.file_sha256, mode, &counts, &log).await?;
    // The estates whose serving firm moved are the caller's to forget in any place cache
    // (the API's engine does after assignment and estate imports).
    write.commit().await?;
    report.committed = true;
    Ok(report)
}

/// Natural keys resolved so far in this import.
#[derive(Default)]
struct Lookups {
    estates: HashMap<String, Option<EstateId>>,
    firms: HashMap<String, Option<FirmId>>,
    houses: HashMap<HomeRef, Option<HouseId>>,
}

impl Lookups {
    async fn estate(&mut self, w: &RegistryWrite<'_>, code: &str) -> Result<Option<EstateId>, RegistryError> {
        if let Some(found) = self.estates.get(code) {
            return Ok(*found);
        }
        let found = w.txn().estate_by_code(code).await?.map(|(id, _)| id);
        self.estates.insert(code.to_owned(), found);
        Ok(found)
    }

    async fn house(&mut self, w: &RegistryWrite<'_>, home: &HomeRef) -> Result<Option<HouseId>, RegistryError> {
        if let Some(found) = self.houses.get(home) {
            return Ok(*found);
        }
        let found = match self.estate(w, &home.estate).await? {
            Some(estate) => match w.txn().building_by_name(estate, &home.building).await? {
                Some(b) => w.txn().house_by_room(b, &home.room).await?,
                None => None,
            },
            None => None,
        };
        self.houses.insert(home.clone(), found);
        Ok(found)
    }
}

enum RowError {
    Problems(Vec<ReportProblem>),
    Registry(RegistryError),
}

impl From<RegistryError> for RowError {
    fn from(e: RegistryError) -> RowError {
        RowError::Registry(e)
    }
}

impl From<jiayuan_store::StoreError> for RowError {
    fn from(e: jiayuan_store::StoreError) -> RowError {
        RowError::Registry(e.into())
    }
}

fn col<'a>(sheet: &'a Sheet, key: &'a str) -> &'a str {
    sheet.columns.iter().find(|c| c.key == key).map_or(key, |c| c.zh)
}

fn not_found(row: u64, sheet: &Sheet, key: &str, what_zh: &str, what_en: &str) -> RowError {
    RowError::Problems(vec![problem(
        row,
        col(sheet, key),
        "not_registered",
        &format!("未找到该{what_zh}（请先导入或检查编码）"),
        &format!("no such {what_en} is registered (import it first, or check the code)"),
    )])
}

fn req_text<'a>(row: &'a jiayuan_ledger::Row, key: &str) -> &'a str {
    row.text(key).unwrap_or_default()
}

fn choice<T: serde::de::DeserializeOwned>(row: &jiayuan_ledger::Row, key: &str) -> Option<T> {
    row.choice(key).and_then(|v| serde_json::from_value(serde_json::Value::String(v.to_owned())).ok())
}

fn home_of(row: &jiayuan_ledger::Row) -> Option<HomeRef> {
    Some(HomeRef {
        estate: row.text("estate_code")?.to_owned(),
        building: row.text("building")?.to_owned(),
        room: row.text("room")?.to_owned(),
    })
}

/// Applies one row of a kind other than persons.
async fn apply_row(
    w: &mut RegistryWrite<'_>,
    ctx: &mut Lookups,
    kind: ImportKind,
    row: &jiayuan_ledger::Row,
    tally: &mut Tally<'_>,
) -> Result<(), RowError> {
    let r = row.number;
    let sheet = row.sheet;
    let bad_code =
        |key: &str, zh: &str, en: &str| RowError::Problems(vec![problem(r, col(sheet, key), "format", zh, en)]);
    match kind {
        ImportKind::Divisions => {
            let code = DivisionCode::parse(req_text(row, "code"))
                .map_err(|_| bad_code("code", "区划代码应为 12 位数字", "a division code is 12 digits"))?;
            let d = jiayuan_domain::Division {
                level: code.level(),
                parent: code.parent(),
                code,
                name_zh: req_text(row, "name_zh").to_owned(),
                valid_from: row.date("valid_from").unwrap_or(jiayuan_domain::Date::from_days_since_epoch(0)),
                valid_to: row.date("valid_to"),
            };
            let change = w.put_division(&d).await?;
            tally.change(r, "division", &change);
        }
        ImportKind::GridCells => {
            let code = req_text(row, "code").to_owned();
            let community = jiayuan_domain::parse_grid_code(&code)
                .map_err(|e| bad_code("code", "网格编码应为 15 位：社区代码 12 位 + 序号 3 位", &e.to_string()))?;
            let estate_id = match row.text("estate_code") {
                Some(c) => {
                    Some(ctx.estate(w, c).await?.ok_or_else(|| not_found(r, sheet, "estate_code", "小区", "estate"))?)
                }
                None => None,
            };
            let g = jiayuan_domain::GridCell {
                code,
                kind: choice(row, "kind").unwrap_or(GridKind::Basic),
                community,
                name: req_text(row, "name").to_owned(),
                estate_id,
                valid_from: row.date("valid_from").unwrap_or(jiayuan_domain::Date::from_days_since_epoch(0)),
                valid_to: row.date("valid_to"),
            };
            let change = w.put_grid_cell(&g).await?;
            tally.change(r, "grid_cell", &change);
        }
        ImportKind::Estates => {
            let code = EstateCode::parse(req_text(row, "code"))
                .map_err(|e| bad_code("code", "小区编码应为 1–32 位字母、数字、- 或 _", &e.to_string()))?;
            let community = DivisionCode::parse(req_text(row, "community"))
                .map_err(|_| bad_code("community", "社区代码应为 12 位数字", "a community code is 12 digits"))?;
            let e = NewEstate {
                code: code.clone(),
                kind: choice(row, "kind").unwrap_or(jiayuan_domain::EstateKind::Estate),
                name: req_text(row, "name").to_owned(),
                community,
                address: row.text("address").unwrap_or_default().to_owned(),
                management: choice(row, "management").unwrap_or(jiayuan_domain::ManagementStatus::PropertyManaged),
                onboarding: choice(row, "onboarding"),
                households: u32::try_from(row.integer("households").unwrap_or(0)).unwrap_or(0),
            };
            let change = w.put_estate(&e).await?;
            ctx.estates.insert(code.as_str().to_owned(), Some(change.id()));
            tally.change(r, "estate", &change);
        }
        ImportKind::Firms => {
            let f = NewFirm {
                name: req_text(row, "name").to_owned(),
                credit_code: req_text(row, "credit_code").to_owned(),
                credit_code_override: row.text("credit_code_override").map(str::to_owned),
                kind: choice(row, "kind").unwrap_or(jiayuan_domain::FirmKind::PropertyFirm),
                legal_representative: row.text("legal_representative").map(str::to_owned),
                contact_phone: match row.text("contact_phone") {
                    Some(p) => Some(
                        Phone::parse(p)
                            .map_err(|_| {
                                bad_code("contact_phone", "手机号码应为 11 位", "a mobile number is 11 digits")
                            })?
                            .as_str()
                            .to_owned(),
                    ),
                    None => None,
                },
            };
            let change = w.put_firm(&f).await?;
            ctx.firms.insert(f.credit_code.clone(), Some(change.id()));
            tally.change(r, "firm", &change);
        }
        ImportKind::Assignments => {
            let estate = ctx
                .estate(w, req_text(row, "estate_code"))
                .await?
                .ok_or_else(|| not_found(r, sheet, "estate_code", "小区", "estate"))?;
            let credit = req_text(row, "firm_credit_code").to_owned();
            let firm = match ctx.firms.get(&credit) {
                Some(f) => *f,
                None => {
                    let f = w.txn().firm_by_credit_code(&credit).await?;
                    ctx.firms.insert(credit.clone(), f);
                    f
                }
            }
            .ok_or_else(|| not_found(r, sheet, "firm_credit_code", "物业企业", "firm"))?;
            let a = NewAssignment {
                firm_id: firm,
                estate_id: estate,
                from: row.date("from").unwrap_or(jiayuan_domain::Date::from_days_since_epoch(0)),
                to: row.date("to"),
                contract_ref: row.text("contract_ref").map(str::to_owned),
            };
            let change = w.put_assignment(&a).await?;
            tally.change(r, "assignment", &change);
        }
        ImportKind::Buildings => {
            let estate = ctx
                .estate(w, req_text(row, "estate_code"))
                .await?
                .ok_or_else(|| not_found(r, sheet, "estate_code", "小区", "estate"))?;
            let b = NewBuilding {
                estate_id: Some(estate),
                name: req_text(row, "name").to_owned(),
                floors: u16::try_from(row.integer("floors").unwrap_or(0)).unwrap_or(0),
                height_m: row.decimal("height_m").unwrap_or(0.0) as f32,
                elevator: row.bool("elevator").unwrap_or(false),
            };
            let change = w.put_building(&b).await?;
            tally.change(r, "building", &change);
        }
        ImportKind::Houses => {
            let estate = ctx
                .estate(w, req_text(row, "estate_code"))
                .await?
                .ok_or_else(|| not_found(r, sheet, "estate_code", "小区", "estate"))?;
            let building = w
                .txn()
                .building_by_name(estate, req_text(row, "building"))
                .await?
                .ok_or_else(|| not_found(r, sheet, "building", "楼栋", "building"))?;
            let address_code = match row.text("address_code") {
                Some(c) => Some(AddressCode::parse(c).map_err(|_| {
                    bad_code("address_code", "标准地址编码应为 25 位数字", "a standard-address code is 25 digits")
                })?),
                None => None,
            };
            let h = NewHouse {
                building_id: building,
                room: req_text(row, "room").to_owned(),
                area_m2: row.decimal("area_m2").unwrap_or(0.0) as f32,
                use_: choice(row, "use").unwrap_or(jiayuan_domain::HouseUse::SelfOccupied),
                address_code,
            };
            let change = w.put_house(&h).await?;
            tally.change(r, "house", &change);
        }
        ImportKind::Occupancy | ImportKind::Leases => {
            let home =
                home_of(row).unwrap_or(HomeRef { estate: String::new(), building: String::new(), room: String::new() });
            let house = ctx.house(w, &home).await?.ok_or_else(|| not_found(r, sheet, "room", "房屋", "house"))?;
            let (doc_key, kind_key) = if kind == ImportKind::Leases {
                ("landlord_doc_number", "landlord_doc_kind")
            } else {
                ("doc_number", "doc_kind")
            };
            let doc_kind: DocKind = choice(row, kind_key).unwrap_or(DocKind::ResidentId);
            let number = jiayuan_domain::normalise_doc_number(req_text(row, doc_key));
            let person = person_by_doc(w, doc_kind, &number).await?;
            let Some(person) = person else {
                return Err(not_found(r, sheet, doc_key, "人员（请先导入人员）", "person (import persons first)"));
            };
            if kind == ImportKind::Leases {
                let l = NewLease {
                    house_id: house,
                    landlord_id: person,
                    from: row.date("from").unwrap_or(jiayuan_domain::Date::from_days_since_epoch(0)),
                    to: row.date("to"),
                    contract_ref: row.text("contract_ref").map(str::to_owned),
                };
                let change = w.put_lease(&l).await?;
                tally.change(r, "lease", &change);
            } else {
                let o = NewOccupancy {
                    person_id: person,
                    house_id: house,
                    from: row.date("from").unwrap_or(jiayuan_domain::Date::from_days_since_epoch(0)),
                    to: row.date("to"),
                    relation: choice(row, "relation").unwrap_or(Relation::Other),
                    primary: row.bool("primary").unwrap_or(true),
                    reported_at: None,
                };
                let change = w.put_occupancy(&o).await?;
                tally.change(r, "occupancy", &change);
            }
        }
        ImportKind::Persons => {}
    }
    Ok(())
}

/// A registered person the caller reaches, by document (others are as if absent).
async fn person_by_doc(
    w: &RegistryWrite<'_>,
    kind: DocKind,
    number: &str,
) -> Result<Option<jiayuan_domain::PersonId>, RegistryError> {
    let kind_text = serde_json::to_value(kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    let key = (kind_text, w.txn().doc_index(number));
    let found = w.txn().persons_by_doc_index(std::slice::from_ref(&key)).await?;
    let Some(id) = found.get(&key).copied() else { return Ok(None) };
    Ok(w.reaches(id).await?.then_some(id))
}

/// A converted person row: the person, and where they live if the row says.
type PersonRow = (NewPerson, Option<(HomeRef, NewHome)>);

/// Converts a person row (validating the document's check digit and the phone).
fn person_row(
    row: &jiayuan_ledger::Row,
    today: jiayuan_domain::Date,
    seen: &mut HashMap<(DocKind, String), u64>,
) -> Result<PersonRow, Vec<ReportProblem>> {
    let r = row.number;
    let sheet = row.sheet;
    let mut problems = Vec::new();
    let kind: DocKind = choice(row, "doc_kind").unwrap_or(DocKind::ResidentId);
    let raw = req_text(row, "doc_number");
    let masked = Some(jiayuan_domain::mask(raw, Sensitivity::Personal));
    let info = match validate_doc(kind, raw, today) {
        Ok(info) => Some(info),
        Err(_) => {
            // The validator's own text names the digits it found: never echo them.
            problems.push(ReportProblem {
                row: r,
                column: Some(col(sheet, "doc_number").to_owned()),
                rule: "doc_number".into(),
                reason_zh: "证件号码不符合规则（长度、校验位或出生日期）".into(),
                reason_en: "the document number breaks its rules (length, check character or birth date)".into(),
                masked_value: masked.clone(),
            });
            None
        }
    };
    if let Some(info) = &info
        && let Some(first) = seen.insert((kind, info.canonical.clone()), r)
    {
        problems.push(ReportProblem {
            row: r,
            column: Some(col(sheet, "doc_number").to_owned()),
            rule: "duplicate_in_file".into(),
            reason_zh: format!("证件号码与第 {first} 行重复"),
            reason_en: format!("the same document number as row {first}"),
            masked_value: masked.clone(),
        });
    }
    let phone = match row.text("phone") {
        Some(p) => match Phone::parse(p) {
            Ok(p) => Some(p.as_str().to_owned()),
            Err(_) => {
                problems.push(ReportProblem {
                    row: r,
                    column: Some(col(sheet, "phone").to_owned()),
                    rule: "phone".into(),
                    reason_zh: "手机号码应为 11 位、1 开头".into(),
                    reason_en: "a mobile number is 11 digits starting with 1".into(),
                    masked_value: Some(jiayuan_domain::mask(p, Sensitivity::Personal)),
                });
                None
            }
        },
        None => None,
    };
    let home = home_of(row);
    let partial_home = ["estate_code", "building", "room"].iter().filter(|k| row.text(k).is_some()).count();
    if home.is_none() && partial_home > 0 {
        problems.push(problem(
            r,
            col(sheet, "room"),
            "home_incomplete",
            "居住地址须同时填写小区编码、楼栋和房号",
            "a residence needs the estate code, the building and the room",
        ));
    }
    let (Some(info), true) = (info, problems.is_empty()) else { return Err(problems) };
    let person = NewPerson {
        name: req_text(row, "name").to_owned(),
        doc: IdentityDoc { kind, number: info.number.clone() },
        sex: choice::<Sex>(row, "sex").or(info.sex),
        birth_date: row.date("birth_date").or(info.birth_date),
        hukou: choice(row, "hukou").unwrap_or(Hukou::Shenzhen),
        phone,
    };
    let home = home.map(|h| {
        (
            h,
            NewHome {
                relation: choice(row, "relation").unwrap_or(Relation::Other),
                from: row.date("moved_in").unwrap_or(today),
                to: row.date("moved_out"),
                primary: row.bool("primary").unwrap_or(true),
            },
        )
    });
    Ok((person, home))
}

/// Applies a chunk of person rows: the persons in one statement, then their residences.
async fn apply_persons(
    w: &mut RegistryWrite<'_>,
    ctx: &mut Lookups,
    rows: Vec<PendingPerson>,
    tally: &mut Tally<'_>,
    sheet: &Sheet,
) -> Result<(), ImportError> {
    // Residences first resolved, so a row naming an unknown house is refused whole.
    let mut ready = Vec::with_capacity(rows.len());
    for p in rows {
        if let Some((home, _)) = &p.home
            && ctx.house(w, home).await?.is_none()
        {
            tally.problems([problem(
                p.row,
                col(sheet, "room"),
                "not_registered",
                "未找到该房屋（请先导入小区、楼栋和房屋）",
                "no such house is registered (import estates, buildings and houses first)",
            )]);
            continue;
        }
        ready.push(p);
    }
    let (ready, persons): (Vec<RowHome>, Vec<jiayuan_store::PreparedPerson>) =
        ready.into_iter().map(|p| ((p.row, p.home), p.prepared)).unzip();
    let outcomes = match w.put_prepared_persons(persons).await {
        Ok(o) => o,
        Err(RegistryError::Invalid(errors)) => {
            for (row, _) in &ready {
                tally.field_errors(*row, sheet, errors.clone());
            }
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    for ((row, home), outcome) in ready.iter().zip(outcomes) {
        let row = *row;
        match outcome {
            PersonOutcome::Referred { conflict } => {
                // The log is the district's: it names the registered person the row collided
                // with. The report handed to the importer does not.
                tally.report.referred += 1;
                tally.log.push((row, "referred", Some(format!("person/{conflict}")), Vec::new()));
            }
            PersonOutcome::Written(change) => {
                let id = change.id();
                tally.change(row, "person", &change);
                if let Some((home, h)) = home
                    && let Some(house) = ctx.house(w, home).await?
                {
                    let o = NewOccupancy {
                        person_id: id,
                        house_id: house,
                        from: h.from,
                        to: h.to,
                        relation: h.relation,
                        primary: h.primary,
                        reported_at: None,
                    };
                    match w.put_occupancy(&o).await {
                        Ok(c) => {
                            if c.is_change() {
                                tally.log.push((row, c.action(), Some(format!("occupancy/{}", c.id())), Vec::new()));
                            }
                        }
                        Err(RegistryError::Invalid(errors)) => tally.field_errors(row, sheet, errors),
                        Err(RegistryError::Denied(_)) => tally.field_errors(
                            row,
                            sheet,
                            vec![FieldError::new(
                                "room",
                                "outside_reach",
                                "该房屋不在您的管辖范围内",
                                "the house is outside your reach",
                            )],
                        ),
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
    }
    Ok(())
}

/// The columns a kind's ledger has, re-exported for templates and exports.
pub fn columns(kind: ImportKind) -> &'static [Column] {
    sheet_of(kind).columns
}

/// 导出用途 why an export is made (audited with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportPurpose {
    /// 台账核对 reconciling the ledger with the firm's or street's own records.
    Reconciliation,
    /// 年度考核 the yearly evaluation.
    Evaluation,
    /// 上报 reporting to a higher office.
    Reporting,
    /// 依法调取 a lawful request by an authority.
    LawfulRequest,
    /// 重新导入 editing offline and importing again.
    Reimport,
}

impl ExportPurpose {
    /// Parses the snake_case name.
    pub fn parse(s: &str) -> Option<ExportPurpose> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ExportPurpose::Reconciliation => "reconciliation",
            ExportPurpose::Evaluation => "evaluation",
            ExportPurpose::Reporting => "reporting",
            ExportPurpose::LawfulRequest => "lawful_request",
            ExportPurpose::Reimport => "reimport",
        }
    }
}

/// The file format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// An Excel workbook (with an 说明 About sheet naming exporter, time, scope and purpose).
    Xlsx,
    /// CSV, UTF-8 with a BOM for Excel, a `#` provenance line first.
    Csv,
}

impl ExportFormat {
    /// `xlsx` or `csv`.
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Xlsx => "xlsx",
            ExportFormat::Csv => "csv",
        }
    }
}

/// A finished export.
#[derive(Debug, Clone)]
pub struct Export {
    /// The file.
    pub bytes: Vec<u8>,
    /// Data rows written.
    pub rows: u64,
}

/// Where an export's rows go.
struct Sink {
    sheet: &'static jiayuan_ledger::Sheet,
    file: SinkFile,
}

enum SinkFile {
    Xlsx(Box<jiayuan_ledger::XlsxExport>),
    Csv(Box<jiayuan_ledger::CsvExport<Vec<u8>>>),
}

impl Sink {
    /// A writer of `format` for `sheet`; `unmasked` keeps personal fields in clear.
    fn new(
        format: ExportFormat,
        sheet: &'static jiayuan_ledger::Sheet,
        provenance: jiayuan_ledger::Provenance,
        unmasked: bool,
    ) -> Result<Sink, jiayuan_ledger::LedgerError> {
        let file = match format {
            ExportFormat::Xlsx => {
                let x = jiayuan_ledger::XlsxExport::new(sheet, provenance)?;
                SinkFile::Xlsx(Box::new(if unmasked { x.unmasked() } else { x }))
            }
            ExportFormat::Csv => {
                let c = jiayuan_ledger::CsvExport::new(Vec::new(), sheet, &provenance)?;
                SinkFile::Csv(Box::new(if unmasked { c.unmasked() } else { c }))
            }
        };
        Ok(Sink { sheet, file })
    }

    /// The finished file.
    fn finish(self) -> Result<Vec<u8>, jiayuan_ledger::LedgerError> {
        match self.file {
            SinkFile::Xlsx(x) => (*x).finish(),
            SinkFile::Csv(c) => (*c).finish(),
        }
    }

    /// Writes one row. A choice column's stored value (`rented`) is written as its option, so
    /// the file shows the Chinese label (出租) — which an import reads back as the same value.
    fn push(&mut self, values: &[Option<jiayuan_ledger::Value>]) -> Result<(), jiayuan_ledger::LedgerError> {
        use jiayuan_ledger::{CellKind, Value};
        let values: Vec<Option<Value>> = values
            .iter()
            .zip(self.sheet.columns)
            .map(|(v, column)| match (v, column.kind) {
                (Some(Value::Text(t)), CellKind::Choice(options)) => Some(
                    options
                        .iter()
                        .find(|o| o.value == t)
                        .map_or_else(|| Value::Text(t.clone()), |o| Value::Choice(o.value)),
                ),
                (v, _) => v.clone(),
            })
            .collect();
        match &mut self.file {
            SinkFile::Xlsx(x) => x.push_row(&values),
            SinkFile::Csv(c) => c.push_row(&values),
        }
    }
}

fn text(s: &str) -> Option<jiayuan_ledger::Value> {
    (!s.is_empty()).then(|| jiayuan_ledger::Value::Text(s.to_owned()))
}

fn enum_value<T: serde::Serialize>(v: &T) -> Option<jiayuan_ledger::Value> {
    let s = serde_json::to_value(v).ok()?;
    let s = s.as_str()?;
    // The sheet's choice holds the same value as a &'static str.
    Some(jiayuan_ledger::Value::Text(s.to_owned()))
}

/// Exports the entries of `kind` the caller reaches, every personal column masked by the one
/// masking function (through the ledger writer), and audits it (who, what, scope, rows,
/// purpose) — the audit commits before the file is handed out. `unmasked` (for offline editing
/// and re-import) needs the Unmask permission and is recorded in the audit event.
pub async fn export(
    registry: &Registry,
    caller: &Caller,
    kind: ImportKind,
    format: ExportFormat,
    purpose: ExportPurpose,
    unmasked: bool,
) -> Result<Export, ImportError> {
    use jiayuan_ledger::Value as V;
    crate::access::authorize(caller, crate::access::Action::Export, crate::access::Target::default())
        .map_err(RegistryError::Denied)?;
    if unmasked {
        crate::access::authorize(caller, crate::access::Action::Unmask, crate::access::Target::default())
            .map_err(RegistryError::Denied)?;
    }
    let sheet = sheet_of(kind);
    let store = registry.store();
    let at = registry.now();
    let scope = scope_text(caller);
    let provenance = jiayuan_ledger::Provenance {
        exporter: caller.name.clone(),
        at: at.to_rfc3339_shanghai(),
        scope: scope.clone(),
        purpose: purpose.as_str().to_owned(),
    };
    let mut sink = Sink::new(format, sheet, provenance, unmasked)?;
    let estates = store.estates().await.map_err(RegistryError::from)?;
    let mut reached = HashMap::new();
    for e in &estates {
        let ok = match registry.place(e.id).await.map_err(RegistryError::from)? {
            Some(place) => crate::access::authorize(
                caller,
                crate::access::Action::Export,
                crate::access::Target { place: Some(&place), ..Default::default() },
            )
            .is_ok(),
            None => false,
        };
        reached.insert(e.id, (ok, e.code.as_str().to_owned()));
    }
    let in_reach = |id: EstateId| reached.get(&id).is_some_and(|(ok, _)| *ok);
    let code_of = |id: EstateId| reached.get(&id).map(|(_, c)| c.clone()).unwrap_or_default();
    let mut rows = 0u64;
    let district_wide = caller.reach == crate::access::Reach::District;
    match kind {
        ImportKind::Divisions => {
            for d in store.division_versions().await.map_err(RegistryError::from)? {
                sink.push(&[
                    text(d.code.as_str()),
                    text(&d.name_zh),
                    Some(V::Date(d.valid_from)),
                    d.valid_to.map(V::Date),
                ])?;
                rows += 1;
            }
        }
        ImportKind::Firms => {
            for f in store.firms().await.map_err(RegistryError::from)? {
                sink.push(&[
                    text(&f.credit_code),
                    text(&f.name),
                    enum_value(&f.kind),
                    f.legal_representative.as_deref().and_then(text),
                    f.contact_phone.as_deref().and_then(text),
                    f.credit_code_override.as_deref().and_then(text),
                ])?;
                rows += 1;
            }
        }
        ImportKind::Estates => {
            for e in estates.iter().filter(|e| in_reach(e.id)) {
                sink.push(&[
                    text(e.code.as_str()),
                    text(&e.name),
                    enum_value(&e.kind),
                    text(e.community.as_str()),
                    text(&e.address),
                    enum_value(&e.management),
                    e.onboarding.as_ref().and_then(enum_value),
                    Some(V::Integer(i64::from(e.households))),
                ])?;
                rows += 1;
            }
        }
        ImportKind::GridCells => {
            for g in store.grid_cells().await.map_err(RegistryError::from)? {
                let visible = district_wide
                    || match &caller.reach {
                        crate::access::Reach::Division(c) => g.community.is_within(c),
                        _ => g.estate_id.is_some_and(in_reach),
                    };
                if !visible {
                    continue;
                }
                sink.push(&[
                    text(&g.code),
                    text(&g.name),
                    enum_value(&g.kind),
                    g.estate_id.map(code_of).as_deref().and_then(text),
                    Some(V::Date(g.valid_from)),
                    g.valid_to.map(V::Date),
                ])?;
                rows += 1;
            }
        }
        ImportKind::Assignments => {
            let firms: HashMap<FirmId, String> =
                store.firms().await.map_err(RegistryError::from)?.into_iter().map(|f| (f.id, f.credit_code)).collect();
            for e in estates.iter().filter(|e| in_reach(e.id)) {
                for a in store.assignments_of_estate(e.id).await.map_err(RegistryError::from)? {
                    sink.push(&[
                        text(e.code.as_str()),
                        firms.get(&a.firm_id).and_then(|c| text(c)),
                        Some(V::Date(a.from)),
                        a.to.map(V::Date),
                        a.contract_ref.as_deref().and_then(text),
                    ])?;
                    rows += 1;
                }
            }
        }
        ImportKind::Buildings | ImportKind::Houses => {
            for e in estates.iter().filter(|e| in_reach(e.id)) {
                let buildings = store.buildings_of_estate(e.id).await.map_err(RegistryError::from)?;
                if kind == ImportKind::Buildings {
                    for b in &buildings {
                        sink.push(&[
                            text(e.code.as_str()),
                            text(&b.name),
                            Some(V::Integer(i64::from(b.floors))),
                            Some(V::Decimal(f64::from(b.height_m))),
                            Some(V::Bool(b.elevator)),
                        ])?;
                        rows += 1;
                    }
                    continue;
                }
                let names: HashMap<_, _> = buildings.iter().map(|b| (b.id, b.name.clone())).collect();
                for h in store.houses_of_estate(e.id).await.map_err(RegistryError::from)? {
                    sink.push(&[
                        text(e.code.as_str()),
                        names.get(&h.building_id).and_then(|n| text(n)),
                        text(&h.room),
                        Some(V::Decimal(f64::from(h.area_m2))),
                        enum_value(&h.use_),
                        h.address_code.as_ref().and_then(|c| text(c.as_str())),
                    ])?;
                    rows += 1;
                }
            }
        }
        ImportKind::Persons | ImportKind::Occupancy | ImportKind::Leases => {
            rows = export_residents(registry, caller, kind, &mut sink, &in_reach, &code_of).await?;
        }
    }
    let bytes = sink.finish()?;
    let mut write = registry.begin(caller).await?;
    write.audit(
        "registry.export",
        &format!("export/{}", kind.as_str()),
        serde_json::json!({"kind": kind.as_str(), "scope": scope, "rows": rows, "purpose": purpose.as_str(),
                           "unmasked": unmasked, "format": format.as_str()}),
    );
    write.commit().await?;
    Ok(Export { bytes, rows })
}

/// Persons (with their primary residence), occupancy or leases of the estates in reach.
async fn export_residents(
    registry: &Registry,
    caller: &Caller,
    kind: ImportKind,
    sink: &mut Sink,
    in_reach: &dyn Fn(EstateId) -> bool,
    code_of: &dyn Fn(EstateId) -> String,
) -> Result<u64, ImportError> {
    use jiayuan_ledger::Value as V;
    let store = registry.store();
    let mut rows = 0u64;
    let mut houses: HashMap<HouseId, Option<(EstateId, String, String)>> = HashMap::new();
    let mut after = jiayuan_domain::PersonId(0);
    loop {
        let page = store.persons_page(after, 1000).await.map_err(RegistryError::from)?;
        let Some(last) = page.last() else { break };
        after = last.id;
        let ids: Vec<_> = page.iter().map(|p| p.id).collect();
        let reached = registry.reached_persons(caller, &ids).await.map_err(RegistryError::from)?;
        for p in page.iter().filter(|p| reached.contains(&p.id)) {
            let occupancies = store.occupancies_of_person(p.id).await.map_err(RegistryError::from)?;
            for o in &occupancies {
                if let std::collections::hash_map::Entry::Vacant(slot) = houses.entry(o.house_id) {
                    let found = match store.house(o.house_id).await.map_err(RegistryError::from)? {
                        Some(h) => {
                            match (h.estate_id, store.building(h.building_id).await.map_err(RegistryError::from)?) {
                                (Some(e), Some(b)) => Some((e, b.name, h.room)),
                                _ => None,
                            }
                        }
                        None => None,
                    };
                    slot.insert(found);
                }
            }
            let place = |house: HouseId| houses.get(&house).cloned().flatten().filter(|(e, _, _)| in_reach(*e));
            match kind {
                ImportKind::Persons => {
                    let home = p.house_id.and_then(place);
                    let occupancy = occupancies.iter().find(|o| Some(o.house_id) == p.house_id && o.primary);
                    sink.push(&[
                        text(&p.name),
                        enum_value(&p.doc.kind),
                        text(&p.doc.number),
                        p.sex.as_ref().and_then(enum_value),
                        p.birth_date.map(V::Date),
                        enum_value(&p.hukou),
                        p.phone.as_deref().and_then(text),
                        home.as_ref().map(|(e, _, _)| code_of(*e)).as_deref().and_then(text),
                        home.as_ref().and_then(|(_, b, _)| text(b)),
                        home.as_ref().and_then(|(_, _, r)| text(r)),
                        home.as_ref().and(occupancy).and_then(|o| enum_value(&o.relation)),
                        home.as_ref().and(occupancy).map(|o| V::Date(o.from)),
                        home.as_ref().and(occupancy).and_then(|o| o.to.map(V::Date)),
                        home.as_ref().map(|_| V::Bool(true)),
                    ])?;
                    rows += 1;
                }
                ImportKind::Occupancy => {
                    for o in &occupancies {
                        let Some((e, b, r)) = place(o.house_id) else { continue };
                        sink.push(&[
                            enum_value(&p.doc.kind),
                            text(&p.doc.number),
                            text(&code_of(e)),
                            text(&b),
                            text(&r),
                            enum_value(&o.relation),
                            Some(V::Date(o.from)),
                            o.to.map(V::Date),
                            Some(V::Bool(o.primary)),
                        ])?;
                        rows += 1;
                    }
                }
                _ => {}
            }
        }
    }
    if kind == ImportKind::Leases {
        for e in store.estates().await.map_err(RegistryError::from)?.iter().filter(|e| in_reach(e.id)) {
            let buildings: HashMap<_, _> = store
                .buildings_of_estate(e.id)
                .await
                .map_err(RegistryError::from)?
                .into_iter()
                .map(|b| (b.id, b.name))
                .collect();
            for h in store.houses_of_estate(e.id).await.map_err(RegistryError::from)? {
                for l in store.leases_of_house(h.id).await.map_err(RegistryError::from)? {
                    let Some(landlord) = store.person(l.landlord_id).await.map_err(RegistryError::from)? else {
                        continue;
                    };
                    sink.push(&[
                        text(e.code.as_str()),
                        buildings.get(&h.building_id).and_then(|n| text(n)),
                        text(&h.room),
                        enum_value(&landlord.doc.kind),
                        text(&landlord.doc.number),
                        Some(V::Date(l.from)),
                        l.to.map(V::Date),
                        l.contract_ref.as_deref().and_then(text),
                    ])?;
                    rows += 1;
                }
            }
        }
    }
    Ok(rows)
}

/// The caller's scope as written into an export's provenance.
fn scope_text(caller: &Caller) -> String {
    match &caller.reach {
        crate::access::Reach::District => "district".to_owned(),
        crate::access::Reach::Division(c) => format!("division:{c}"),
        crate::access::Reach::Firm(f) => format!("firm:{f}"),
        crate::access::Reach::Estates(es) => format!("estates:{}", es.len()),
    }
}
