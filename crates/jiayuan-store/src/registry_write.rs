//! Writes to the shared registry: [`RegistryTxn`], one transaction in which divisions, grid
//! cells, estates, firms, buildings, houses, persons, service assignments, occupancy and leases
//! are upserted by their natural keys, each answering what it did ([`Change`]), with the audit
//! events of the change appended in the same transaction at [`RegistryTxn::commit`].
//!
//! Natural keys: a division version by (code, valid_from); a grid cell by code; an estate by
//! its estate code; a firm by credit code; a building by (estate, name); a house by (building,
//! room); a person by identity document (through its blind index); an assignment by (firm,
//! estate, from); an occupancy by (person, house, from); a lease by (house, landlord, from).
//! Writing the same values again is [`Change::Unchanged`], so re-importing a file changes nothing.
//!
//! The registry's own rules are kept here, inside the transaction that sees the rows they are
//! about: at most one serving firm per estate on any day, at most one current primary residence
//! per person, periods that end before they start are refused. Each refusal is
//! [`StoreError::Rule`] naming the field and the rule.

use std::collections::HashMap;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Statement,
};

use jiayuan_domain::{
    AssignmentId, BuildingId, Date, Division, DivisionCode, EstateId, FirmId, GridCell, HouseId, LeaseId, OccupancyId,
    PersonId, Timestamp, normalise_doc_number, periods_overlap,
};

use crate::audit::{AuditTarget, NewAudit};
use crate::convert::{enum_text, parse_date, parse_date_opt};
use crate::crypto::FieldKeys;
use crate::entity::{
    assignment, building, division, division_version, estate, firm, grid_cell, house, lease, occupancy, person,
};
use crate::error::{StoreError, db};
use crate::records::WriteBatch;
use crate::registry::{
    DOC_NUMBER, NewAssignment, NewBuilding, NewEstate, NewFirm, NewHouse, NewLease, NewOccupancy, NewPerson, PHONE,
    normalise_phone,
};
use crate::store::Store;

/// What an upsert did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<I> {
    /// A new row.
    Inserted(I),
    /// An existing row (matched by natural key) got new values in these fields.
    Updated {
        /// The row.
        id: I,
        /// The columns that changed (names only, never values).
        fields: Vec<&'static str>,
    },
    /// An existing row already held these values.
    Unchanged(I),
}

impl<I: Copy> Change<I> {
    /// The row's id.
    pub fn id(&self) -> I {
        match self {
            Change::Inserted(id) | Change::Unchanged(id) => *id,
            Change::Updated { id, .. } => *id,
        }
    }
}

impl<I> Change<I> {
    /// `inserted`, `updated` or `unchanged`.
    pub fn action(&self) -> &'static str {
        match self {
            Change::Inserted(_) => "inserted",
            Change::Updated { .. } => "updated",
            Change::Unchanged(_) => "unchanged",
        }
    }

    /// Whether anything was written.
    pub fn is_change(&self) -> bool {
        !matches!(self, Change::Unchanged(_))
    }

    /// The changed fields (empty unless updated).
    pub fn fields(&self) -> &[&'static str] {
        match self {
            Change::Updated { fields, .. } => fields,
            _ => &[],
        }
    }
}

/// Persons written per statement in [`RegistryTxn::upsert_persons`] (well under SQLite's 32,766
/// bound variables at 10 columns).
pub const PERSON_CHUNK: usize = 1000;

/// A run of an import's log: first row, last row, action, and the target kind with the first
/// and last id.
type LogRun = (u64, u64, &'static str, Option<(String, i64, i64)>);

/// One registry write transaction. Dropping it without [`RegistryTxn::commit`] rolls back.
#[allow(missing_debug_implementations)]
pub struct RegistryTxn {
    txn: DatabaseTransaction,
    keys: FieldKeys,
    audit: Vec<NewAudit>,
}

impl Store {
    /// Starts a registry write transaction (the write lock is taken at once on SQLite).
    pub async fn registry_txn(&self) -> Result<RegistryTxn, StoreError> {
        let txn = self.begin_write("registry write").await?;
        Ok(RegistryTxn { txn, keys: self.keys.clone(), audit: Vec::new() })
    }
}

fn rule(field: &'static str, rule: &'static str) -> StoreError {
    StoreError::Rule { field, rule }
}

/// A name (or room number) must be 1 to `max` characters after trimming.
fn check_name(field: &'static str, value: &str, max: usize) -> Result<(), StoreError> {
    let n = value.trim().chars().count();
    match (n, max) {
        (0, _) => Err(rule(field, "blank")),
        (n, 20) if n > 20 => Err(rule(field, "at_most_20_characters")),
        (n, 50) if n > 50 => Err(rule(field, "at_most_50_characters")),
        (n, _) if n > 100 => Err(rule(field, "at_most_100_characters")),
        _ => Ok(()),
    }
}

fn check_period(field: &'static str, from: Date, to: Option<Date>) -> Result<(), StoreError> {
    match to {
        Some(to) if to < from => Err(rule(field, "ends_before_start")),
        _ => Ok(()),
    }
}

/// Pushes `name` when the stored and the new value differ.
fn diff<T: PartialEq>(fields: &mut Vec<&'static str>, name: &'static str, old: &T, new: &T) {
    if old != new {
        fields.push(name);
    }
}

fn change<I>(id: I, fields: Vec<&'static str>) -> Change<I> {
    if fields.is_empty() { Change::Unchanged(id) } else { Change::Updated { id, fields } }
}

impl RegistryTxn {
    /// Queues an audit event; all queued events are appended at [`RegistryTxn::commit`].
    pub fn audit(&mut self, event: NewAudit) {
        self.audit.push(event);
    }

    /// Queues the audit event of one registry change by `actor` (the object and the changed
    /// field names, never values). Unchanged rows are not audited.
    pub fn audit_change<I: std::fmt::Display>(
        &mut self,
        actor: &str,
        at: Timestamp,
        object: &str,
        change: &Change<I>,
        estate_id: Option<EstateId>,
    ) {
        let (verb, id) = match change {
            Change::Inserted(id) => ("create", id),
            Change::Updated { id, .. } => ("update", id),
            Change::Unchanged(_) => return,
        };
        self.audit.push(NewAudit {
            at,
            actor: actor.to_owned(),
            action: format!("registry.{object}.{verb}"),
            target: AuditTarget::Object(format!("{object}/{id}")),
            estate_id,
            detail_json: serde_json::json!({ "fields": change.fields() }).to_string(),
        });
    }

    /// Appends the queued audit events and commits.
    pub async fn commit(self) -> Result<(), StoreError> {
        const OP: &str = "commit registry write";
        let batch = WriteBatch { audit: self.audit, ..Default::default() };
        if let Err(e) = crate::audit::append(&self.txn, &batch, &[]).await {
            let _ = self.txn.rollback().await;
            return Err(e);
        }
        self.txn.commit().await.map_err(db(OP))
    }

    /// Ends a one-row insert: commits when `result` inserted, otherwise rolls back; a row that
    /// was already there is [`StoreError::UniqueKey`] on `field` (with `value` masked as personal
    /// data, since callers may pass a document number).
    pub async fn finish_insert<I>(
        self,
        result: Result<Change<I>, StoreError>,
        field: &str,
        value: &str,
    ) -> Result<I, StoreError> {
        match result {
            Ok(Change::Inserted(id)) => self.commit().await.map(|()| id),
            Ok(_) => {
                self.rollback().await?;
                Err(StoreError::UniqueKey {
                    field: field.to_owned(),
                    value: jiayuan_domain::mask(value, jiayuan_domain::Sensitivity::Personal),
                })
            }
            Err(e) => {
                self.rollback().await?;
                Err(e)
            }
        }
    }

    /// Writes an import's summary row and its row log (field names or rule codes, never values)
    /// and returns the import's id.
    #[allow(clippy::too_many_arguments)]
    pub async fn log_import(
        &mut self,
        kind: &str,
        actor: &str,
        at: Timestamp,
        sha256: &str,
        mode: &str,
        counts: &serde_json::Value,
        rows: &[(u64, &'static str, Option<String>, Vec<String>)],
    ) -> Result<i64, StoreError> {
        const OP: &str = "log import";
        use crate::entity::{import, import_row};
        let r = import::Entity::insert(import::ActiveModel {
            id: NotSet,
            kind: Set(kind.to_owned()),
            actor: Set(actor.to_owned()),
            at: Set(at.millis()),
            file_sha256: Set(sha256.to_owned()),
            mode: Set(mode.to_owned()),
            outcome: Set("committed".to_owned()),
            counts_json: Set(counts.to_string()),
        })
        .exec(&self.txn)
        .await
        .map_err(db(OP))?;
        let id = r.last_insert_id;
        // Several log lines of one row (a person and their occupancy) share the row's number:
        // the last action of a row wins, with the targets joined.
        let mut merged: std::collections::BTreeMap<u64, (&'static str, Vec<String>, Vec<String>)> = Default::default();
        for (row, action, target, detail) in rows {
            let e = merged.entry(*row).or_insert((action, Vec::new(), Vec::new()));
            if e.0 == "unchanged" || *action == "refused" || *action == "referred" {
                e.0 = action;
            }
            e.1.extend(target.iter().cloned());
            e.2.extend(detail.iter().cloned());
        }
        // Runs of consecutive rows that did the same to consecutive ids of one kind, with no
        // field detail (a chunk of new persons), become one line: rows 2–1001, `person/1-1000`.
        let mut models: Vec<import_row::ActiveModel> = Vec::new();
        let mut run: Option<LogRun> = None;
        let flush = |run: &mut Option<LogRun>, models: &mut Vec<import_row::ActiveModel>| {
            if let Some((from, to, action, target)) = run.take() {
                let target =
                    target.map(|(kind, a, b)| if a == b { format!("{kind}/{a}") } else { format!("{kind}/{a}-{b}") });
                models.push(import_row::ActiveModel {
                    import_id: Set(id),
                    row_no: Set(i64::try_from(from).unwrap_or(i64::MAX)),
                    row_to: Set(i64::try_from(to).unwrap_or(i64::MAX)),
                    action: Set(action.to_owned()),
                    target: Set(target),
                    detail_json: Set("[]".to_owned()),
                });
            }
        };
        for (row, (action, targets, detail)) in merged {
            let single = match targets.as_slice() {
                [one] => one.split_once('/').and_then(|(k, n)| n.parse::<i64>().ok().map(|n| (k.to_owned(), n))),
                _ => None,
            };
            let runnable = detail.is_empty() && (targets.is_empty() || single.is_some());
            if runnable {
                let extends = match (&run, &single) {
                    (Some((_, to, a, None)), None) => *a == action && *to + 1 == row,
                    (Some((_, to, a, Some((k, _, last)))), Some((kind, n))) => {
                        *a == action && *to + 1 == row && k == kind && *last + 1 == *n
                    }
                    _ => false,
                };
                if extends {
                    if let Some(r) = run.as_mut() {
                        r.1 = row;
                        if let (Some(t), Some((_, n))) = (r.3.as_mut(), &single) {
                            t.2 = *n;
                        }
                    }
                    continue;
                }
                flush(&mut run, &mut models);
                run = Some((row, row, action, single.map(|(k, n)| (k, n, n))));
                continue;
            }
            flush(&mut run, &mut models);
            models.push(import_row::ActiveModel {
                import_id: Set(id),
                row_no: Set(i64::try_from(row).unwrap_or(i64::MAX)),
                row_to: Set(i64::try_from(row).unwrap_or(i64::MAX)),
                action: Set(action.to_owned()),
                target: Set((!targets.is_empty()).then(|| targets.join(","))),
                detail_json: Set(serde_json::json!(detail).to_string()),
            });
        }
        flush(&mut run, &mut models);
        for chunk in models.chunks(PERSON_CHUNK) {
            import_row::Entity::insert_many(chunk.to_vec()).exec_without_returning(&self.txn).await.map_err(db(OP))?;
        }
        Ok(id)
    }

    /// Rolls everything back (a dry run ends here).
    pub async fn rollback(self) -> Result<(), StoreError> {
        self.txn.rollback().await.map_err(db("roll back registry write"))
    }

    // --- divisions ------------------------------------------------------------------------

    /// Upserts one version of a division (by code and `valid_from`) and refreshes the code's
    /// summary row (level, parent, the current name, the span of its versions). Versions of one
    /// code may not overlap; a code's parent must be registered first. Never deletes.
    pub async fn upsert_division(&mut self, d: &Division) -> Result<Change<DivisionCode>, StoreError> {
        const OP: &str = "upsert division";
        check_name("name_zh", &d.name_zh, 50)?;
        check_period("valid_to", d.valid_from, d.valid_to)?;
        if d.parent != d.code.parent() {
            return Err(rule("parent", "parent_follows_code"));
        }
        if d.level != d.code.level() {
            return Err(rule("level", "level_follows_code"));
        }
        if let Some(parent) = &d.parent {
            let found =
                division::Entity::find_by_id(parent.as_str().to_owned()).one(&self.txn).await.map_err(db(OP))?;
            if found.is_none() {
                return Err(rule("parent", "parent_not_registered"));
            }
        }
        let code = d.code.as_str().to_owned();
        let versions = division_version::Entity::find()
            .filter(division_version::Column::Code.eq(code.clone()))
            .all(&self.txn)
            .await
            .map_err(db(OP))?;
        let from = d.valid_from.to_string();
        for v in &versions {
            if v.valid_from == from {
                continue;
            }
            let (vf, vt) = (
                parse_date("division.valid_from", &v.valid_from)?,
                parse_date_opt("division.valid_to", v.valid_to.as_deref())?,
            );
            if periods_overlap(vf, vt, d.valid_from, d.valid_to) {
                return Err(rule("valid_from", "versions_overlap"));
            }
        }
        let to = d.valid_to.map(|t| t.to_string());
        let result = match versions.iter().find(|v| v.valid_from == from) {
            Some(v) => {
                let mut fields = Vec::new();
                diff(&mut fields, "name_zh", &v.name_zh, &d.name_zh);
                diff(&mut fields, "valid_to", &v.valid_to, &to);
                if !fields.is_empty() {
                    let mut m: division_version::ActiveModel = v.clone().into();
                    m.name_zh = Set(d.name_zh.clone());
                    m.valid_to = Set(to.clone());
                    m.update(&self.txn).await.map_err(db(OP))?;
                }
                change(d.code.clone(), fields)
            }
            None => {
                if division::Entity::find_by_id(code.clone()).one(&self.txn).await.map_err(db(OP))?.is_none() {
                    division::ActiveModel {
                        code: Set(code.clone()),
                        level: Set(enum_text("division.level", &d.level)?),
                        name_zh: Set(d.name_zh.clone()),
                        parent_code: Set(d.parent.as_ref().map(|p| p.as_str().to_owned())),
                        valid_from: Set(from.clone()),
                        valid_to: Set(to.clone()),
                    }
                    .insert(&self.txn)
                    .await
                    .map_err(db(OP))?;
                }
                division_version::ActiveModel {
                    code: Set(code.clone()),
                    valid_from: Set(from.clone()),
                    valid_to: Set(to.clone()),
                    name_zh: Set(d.name_zh.clone()),
                }
                .insert(&self.txn)
                .await
                .map_err(db(OP))?;
                Change::Inserted(d.code.clone())
            }
        };
        if result.is_change() {
            self.refresh_division_summary(&code).await?;
        }
        Ok(result)
    }

    /// Rewrites a code's summary row from its versions: first `valid_from`, last `valid_to`
    /// (open when any version is open), and the name of the latest version.
    async fn refresh_division_summary(&self, code: &str) -> Result<(), StoreError> {
        const OP: &str = "refresh division";
        let versions = division_version::Entity::find()
            .filter(division_version::Column::Code.eq(code.to_owned()))
            .order_by_asc(division_version::Column::ValidFrom)
            .all(&self.txn)
            .await
            .map_err(db(OP))?;
        let (Some(first), Some(last)) = (versions.first(), versions.last()) else { return Ok(()) };
        let open = versions.iter().any(|v| v.valid_to.is_none());
        let valid_to = if open { None } else { versions.iter().filter_map(|v| v.valid_to.clone()).max() };
        division::Entity::update_many()
            .col_expr(division::Column::NameZh, Expr::value(last.name_zh.clone()))
            .col_expr(division::Column::ValidFrom, Expr::value(first.valid_from.clone()))
            .col_expr(division::Column::ValidTo, Expr::value(valid_to))
            .filter(division::Column::Code.eq(code.to_owned()))
            .exec(&self.txn)
            .await
            .map_err(db(OP))?;
        Ok(())
    }

    // --- grid cells -----------------------------------------------------------------------

    /// Upserts a grid cell by code. Its community must be registered; a dedicated cell names
    /// its estate, which must lie in that community; a basic cell names none.
    pub async fn upsert_grid_cell(&mut self, g: &GridCell) -> Result<Change<String>, StoreError> {
        const OP: &str = "upsert grid cell";
        check_name("name", &g.name, 100)?;
        check_period("valid_to", g.valid_from, g.valid_to)?;
        let community = jiayuan_domain::parse_grid_code(&g.code).map_err(|_| rule("code", "grid_code"))?;
        if community != g.community {
            return Err(rule("community", "grid_code_names_community"));
        }
        if division::Entity::find_by_id(g.community.as_str().to_owned()).one(&self.txn).await.map_err(db(OP))?.is_none()
        {
            return Err(rule("community", "not_registered"));
        }
        match (g.kind, g.estate_id) {
            (jiayuan_domain::GridKind::Dedicated, None) => return Err(rule("estate_code", "dedicated_needs_estate")),
            (jiayuan_domain::GridKind::Basic, Some(_)) => return Err(rule("estate_code", "basic_has_no_estate")),
            (_, Some(e)) => {
                let row = estate::Entity::find_by_id(e.0).one(&self.txn).await.map_err(db(OP))?;
                match row {
                    None => return Err(rule("estate_code", "not_registered")),
                    Some(row) if row.community_code != g.community.as_str() => {
                        return Err(rule("estate_code", "estate_outside_community"));
                    }
                    Some(_) => {}
                }
            }
            _ => {}
        }
        let kind = enum_text("grid_cell.kind", &g.kind)?;
        let (from, to) = (g.valid_from.to_string(), g.valid_to.map(|t| t.to_string()));
        let existing = grid_cell::Entity::find_by_id(g.code.clone()).one(&self.txn).await.map_err(db(OP))?;
        match existing {
            None => {
                grid_cell::ActiveModel {
                    code: Set(g.code.clone()),
                    kind: Set(kind),
                    community_code: Set(g.community.as_str().to_owned()),
                    name: Set(g.name.clone()),
                    valid_from: Set(from),
                    valid_to: Set(to),
                    estate_id: Set(g.estate_id.map(|e| e.0)),
                }
                .insert(&self.txn)
                .await
                .map_err(db(OP))?;
                Ok(Change::Inserted(g.code.clone()))
            }
            Some(row) => {
                let mut fields = Vec::new();
                diff(&mut fields, "kind", &row.kind, &kind);
                diff(&mut fields, "name", &row.name, &g.name);
                diff(&mut fields, "valid_from", &row.valid_from, &from);
                diff(&mut fields, "valid_to", &row.valid_to, &to);
                diff(&mut fields, "estate_id", &row.estate_id, &g.estate_id.map(|e| e.0));
                if !fields.is_empty() {
                    let mut m: grid_cell::ActiveModel = row.into();
                    m.kind = Set(kind);
                    m.name = Set(g.name.clone());
                    m.valid_from = Set(from);
                    m.valid_to = Set(to);
                    m.estate_id = Set(g.estate_id.map(|e| e.0));
                    m.update(&self.txn).await.map_err(db(OP))?;
                }
                Ok(change(g.code.clone(), fields))
            }
        }
    }

    // --- estates and firms ----------------------------------------------------------------

    /// The estate with this code, if registered.
    pub async fn estate_by_code(&self, code: &str) -> Result<Option<(EstateId, DivisionCode)>, StoreError> {
        let row = estate::Entity::find()
            .filter(estate::Column::Code.eq(code.to_owned()))
            .one(&self.txn)
            .await
            .map_err(db("find estate by code"))?;
        row.map(|r| Ok((EstateId(r.id), crate::convert::parse_code("estate.community", &r.community_code)?)))
            .transpose()
    }

    /// Upserts an estate by its estate code. Its community must be registered.
    pub async fn upsert_estate(&mut self, e: &NewEstate) -> Result<Change<EstateId>, StoreError> {
        const OP: &str = "upsert estate";
        check_name("name", &e.name, 100)?;
        let community =
            division::Entity::find_by_id(e.community.as_str().to_owned()).one(&self.txn).await.map_err(db(OP))?;
        match community {
            None => return Err(rule("community", "not_registered")),
            Some(c) if c.level != "community" => return Err(rule("community", "not_a_community")),
            Some(_) => {}
        }
        let management = enum_text("estate.management", &e.management)?;
        let onboarding = e.onboarding.as_ref().map(|o| enum_text("estate.onboarding", o)).transpose()?;
        let kind = enum_text("estate.kind", &e.kind)?;
        let households = i64::from(e.households);
        let existing = estate::Entity::find()
            .filter(estate::Column::Code.eq(e.code.as_str().to_owned()))
            .one(&self.txn)
            .await
            .map_err(db(OP))?;
        match existing {
            None => {
                let r = estate::Entity::insert(estate::ActiveModel {
                    id: NotSet,
                    name: Set(e.name.clone()),
                    community_code: Set(e.community.as_str().to_owned()),
                    address: Set(e.address.clone()),
                    management: Set(management),
                    onboarding: Set(onboarding),
                    households: Set(households),
                    code: Set(Some(e.code.as_str().to_owned())),
                    kind: Set(kind),
                })
                .exec(&self.txn)
                .await
                .map_err(db(OP))?;
                Ok(Change::Inserted(EstateId(r.last_insert_id)))
            }
            Some(row) => {
                let id = EstateId(row.id);
                let mut fields = Vec::new();
                diff(&mut fields, "name", &row.name, &e.name);
                diff(&mut fields, "community", &row.community_code.as_str(), &e.community.as_str());
                diff(&mut fields, "address", &row.address, &e.address);
                diff(&mut fields, "management", &row.management, &management);
                diff(&mut fields, "onboarding", &row.onboarding, &onboarding);
                diff(&mut fields, "households", &row.households, &households);
                diff(&mut fields, "kind", &row.kind, &kind);
                if !fields.is_empty() {
                    let mut m: estate::ActiveModel = row.into();
                    m.name = Set(e.name.clone());
                    m.community_code = Set(e.community.as_str().to_owned());
                    m.address = Set(e.address.clone());
                    m.management = Set(management);
                    m.onboarding = Set(onboarding);
                    m.households = Set(households);
                    m.kind = Set(kind);
                    m.update(&self.txn).await.map_err(db(OP))?;
                }
                Ok(change(id, fields))
            }
        }
    }

    /// The firm with this credit code, if registered.
    pub async fn firm_by_credit_code(&self, code: &str) -> Result<Option<FirmId>, StoreError> {
        let id: Option<i64> = firm::Entity::find()
            .select_only()
            .column(firm::Column::Id)
            .filter(firm::Column::CreditCode.eq(code.to_owned()))
            .into_tuple()
            .one(&self.txn)
            .await
            .map_err(db("find firm by credit code"))?;
        Ok(id.map(FirmId))
    }

    /// Upserts a firm by credit code. A code whose check character fails needs
    /// `credit_code_override` (the reason it is accepted).
    pub async fn upsert_firm(&mut self, f: &NewFirm) -> Result<Change<FirmId>, StoreError> {
        const OP: &str = "upsert firm";
        check_name("name", &f.name, 100)?;
        let check =
            jiayuan_domain::parse_credit_code(&f.credit_code).map_err(|_| rule("credit_code", "gb32100_format"))?;
        if !check.check.is_valid() && f.credit_code_override.as_deref().is_none_or(|r| r.trim().is_empty()) {
            return Err(rule("credit_code", "check_character_needs_override"));
        }
        let kind = enum_text("firm.kind", &f.kind)?;
        let existing = firm::Entity::find()
            .filter(firm::Column::CreditCode.eq(f.credit_code.clone()))
            .one(&self.txn)
            .await
            .map_err(db(OP))?;
        match existing {
            None => {
                let r = firm::Entity::insert(firm::ActiveModel {
                    id: NotSet,
                    name: Set(f.name.clone()),
                    credit_code: Set(f.credit_code.clone()),
                    credit_code_override: Set(f.credit_code_override.clone()),
                    kind: Set(kind),
                    legal_representative: Set(f.legal_representative.clone()),
                    contact_phone: Set(f.contact_phone.clone()),
                })
                .exec(&self.txn)
                .await
                .map_err(db(OP))?;
                Ok(Change::Inserted(FirmId(r.last_insert_id)))
            }
            Some(row) => {
                let id = FirmId(row.id);
                let mut fields = Vec::new();
                diff(&mut fields, "name", &row.name, &f.name);
                diff(&mut fields, "credit_code_override", &row.credit_code_override, &f.credit_code_override);
                diff(&mut fields, "kind", &row.kind, &kind);
                diff(&mut fields, "legal_representative", &row.legal_representative, &f.legal_representative);
                diff(&mut fields, "contact_phone", &row.contact_phone, &f.contact_phone);
                if !fields.is_empty() {
                    let mut m: firm::ActiveModel = row.into();
                    m.name = Set(f.name.clone());
                    m.credit_code_override = Set(f.credit_code_override.clone());
                    m.kind = Set(kind);
                    m.legal_representative = Set(f.legal_representative.clone());
                    m.contact_phone = Set(f.contact_phone.clone());
                    m.update(&self.txn).await.map_err(db(OP))?;
                }
                Ok(change(id, fields))
            }
        }
    }

    // --- buildings and houses -------------------------------------------------------------

    /// The building of `estate` with this name, if registered.
    pub async fn building_by_name(&self, estate: EstateId, name: &str) -> Result<Option<BuildingId>, StoreError> {
        let id: Option<i64> = building::Entity::find()
            .select_only()
            .column(building::Column::Id)
            .filter(building::Column::EstateId.eq(estate.0))
            .filter(building::Column::Name.eq(name.to_owned()))
            .into_tuple()
            .one(&self.txn)
            .await
            .map_err(db("find building"))?;
        Ok(id.map(BuildingId))
    }

    /// Upserts a building by (estate, name).
    pub async fn upsert_building(&mut self, b: &NewBuilding) -> Result<Change<BuildingId>, StoreError> {
        const OP: &str = "upsert building";
        check_name("name", &b.name, 50)?;
        if b.floors == 0 {
            return Err(rule("floors", "at_least_one"));
        }
        if !(b.height_m.is_finite() && b.height_m > 0.0 && b.height_m < 700.0) {
            return Err(rule("height_m", "between_0_and_700"));
        }
        let mut q = building::Entity::find().filter(building::Column::Name.eq(b.name.clone()));
        q = match b.estate_id {
            Some(e) => q.filter(building::Column::EstateId.eq(e.0)),
            None => q.filter(building::Column::EstateId.is_null()),
        };
        let existing = q.one(&self.txn).await.map_err(db(OP))?;
        let (floors, height) = (i32::from(b.floors), f64::from(b.height_m));
        match existing {
            None => {
                let r = building::Entity::insert(building::ActiveModel {
                    id: NotSet,
                    estate_id: Set(b.estate_id.map(|e| e.0)),
                    name: Set(b.name.clone()),
                    floors: Set(floors),
                    height_m: Set(height),
                    elevator: Set(b.elevator),
                })
                .exec(&self.txn)
                .await
                .map_err(|e| {
                    if crate::error::is_foreign_key_violation(&e) {
                        rule("estate_code", "not_registered")
                    } else {
                        db(OP)(e)
                    }
                })?;
                Ok(Change::Inserted(BuildingId(r.last_insert_id)))
            }
            Some(row) => {
                let id = BuildingId(row.id);
                let mut fields = Vec::new();
                diff(&mut fields, "floors", &row.floors, &floors);
                diff(&mut fields, "height_m", &row.height_m, &height);
                diff(&mut fields, "elevator", &row.elevator, &b.elevator);
                if !fields.is_empty() {
                    let mut m: building::ActiveModel = row.into();
                    m.floors = Set(floors);
                    m.height_m = Set(height);
                    m.elevator = Set(b.elevator);
                    m.update(&self.txn).await.map_err(db(OP))?;
                }
                Ok(change(id, fields))
            }
        }
    }

    /// The house of `building` with this room, if registered.
    pub async fn house_by_room(&self, building: BuildingId, room: &str) -> Result<Option<HouseId>, StoreError> {
        let id: Option<i64> = house::Entity::find()
            .select_only()
            .column(house::Column::Id)
            .filter(house::Column::BuildingId.eq(building.0))
            .filter(house::Column::Room.eq(room.to_owned()))
            .into_tuple()
            .one(&self.txn)
            .await
            .map_err(db("find house"))?;
        Ok(id.map(HouseId))
    }

    /// Upserts a house by (building, room). Its estate is the building's; a standard-address
    /// code belongs to one house only.
    pub async fn upsert_house(&mut self, h: &NewHouse) -> Result<Change<HouseId>, StoreError> {
        const OP: &str = "upsert house";
        check_name("room", &h.room, 20)?;
        if !(h.area_m2.is_finite() && h.area_m2 >= 0.0 && h.area_m2 < 100_000.0) {
            return Err(rule("area_m2", "between_0_and_100000"));
        }
        let estate_of_building: Option<Option<i64>> = building::Entity::find_by_id(h.building_id.0)
            .select_only()
            .column(building::Column::EstateId)
            .into_tuple()
            .one(&self.txn)
            .await
            .map_err(db(OP))?;
        let Some(estate_id) = estate_of_building else {
            return Err(rule("building", "not_registered"));
        };
        let use_text = enum_text("house.use", &h.use_)?;
        let address = h.address_code.as_ref().map(|a| a.as_str().to_owned());
        if let Some(code) = &address {
            let holder: Option<i64> = house::Entity::find()
                .select_only()
                .column(house::Column::Id)
                .filter(house::Column::AddressCode.eq(code.clone()))
                .into_tuple()
                .one(&self.txn)
                .await
                .map_err(db(OP))?;
            if let Some(holder) = holder {
                let same = house::Entity::find_by_id(holder).one(&self.txn).await.map_err(db(OP))?;
                if same.is_none_or(|s| s.building_id != h.building_id.0 || s.room != h.room) {
                    return Err(rule("address_code", "used_by_another_house"));
                }
            }
        }
        let existing = house::Entity::find()
            .filter(house::Column::BuildingId.eq(h.building_id.0))
            .filter(house::Column::Room.eq(h.room.clone()))
            .one(&self.txn)
            .await
            .map_err(db(OP))?;
        let area = f64::from(h.area_m2);
        match existing {
            None => {
                let r = house::Entity::insert(house::ActiveModel {
                    id: NotSet,
                    building_id: Set(h.building_id.0),
                    estate_id: Set(estate_id),
                    room: Set(h.room.clone()),
                    area_m2: Set(area),
                    house_use: Set(use_text),
                    address_code: Set(address),
                })
                .exec(&self.txn)
                .await
                .map_err(db(OP))?;
                Ok(Change::Inserted(HouseId(r.last_insert_id)))
            }
            Some(row) => {
                let id = HouseId(row.id);
                let mut fields = Vec::new();
                diff(&mut fields, "area_m2", &row.area_m2, &area);
                diff(&mut fields, "use", &row.house_use, &use_text);
                diff(&mut fields, "address_code", &row.address_code, &address);
                if !fields.is_empty() {
                    let mut m: house::ActiveModel = row.into();
                    m.area_m2 = Set(area);
                    m.house_use = Set(use_text);
                    m.address_code = Set(address);
                    m.update(&self.txn).await.map_err(db(OP))?;
                }
                Ok(change(id, fields))
            }
        }
    }

    // --- persons --------------------------------------------------------------------------

    /// The blind index a person's document is matched by.
    pub fn doc_index(&self, number: &str) -> String {
        self.keys.blind_index(DOC_NUMBER, &normalise_doc_number(number))
    }

    /// The persons registered under these document blind indexes (of one document kind each).
    pub async fn persons_by_doc_index(
        &self,
        indexes: &[(String, String)],
    ) -> Result<HashMap<(String, String), PersonId>, StoreError> {
        const OP: &str = "find persons by document";
        let backend = self.txn.get_database_backend();
        let mut found = HashMap::new();
        for chunk in indexes.chunks(PERSON_CHUNK) {
            // One aggregated row per chunk: sqlx hands SQLite rows across threads one at a time,
            // so a thousand matches as rows cost a thousand hand-offs (most of an import's time).
            let (agg, marks): (&str, Vec<String>) = match backend {
                DbBackend::Postgres => (
                    "string_agg(CAST(id AS TEXT) || ' ' || doc_kind || ' ' || doc_bidx, ',')",
                    (1..=chunk.len()).map(|i| format!("${i}")).collect(),
                ),
                _ => ("group_concat(id || ' ' || doc_kind || ' ' || doc_bidx, ',')", vec!["?".to_owned(); chunk.len()]),
            };
            let sql = format!("SELECT {agg} AS found FROM persons WHERE doc_bidx IN ({})", marks.join(", "));
            let values: Vec<sea_orm::Value> = chunk.iter().map(|(_, b)| b.clone().into()).collect();
            let row =
                self.txn.query_one_raw(Statement::from_sql_and_values(backend, sql, values)).await.map_err(db(OP))?;
            let text: Option<String> = match row {
                Some(r) => r.try_get("", "found").map_err(db(OP))?,
                None => None,
            };
            for entry in text.as_deref().unwrap_or_default().split(',').filter(|e| !e.is_empty()) {
                let mut parts = entry.splitn(3, ' ');
                let (Some(id), Some(kind), Some(bidx)) = (parts.next(), parts.next(), parts.next()) else {
                    return Err(StoreError::Corrupt {
                        what: "persons",
                        detail: "unreadable document index row".into(),
                    });
                };
                let id = id
                    .parse::<i64>()
                    .map_err(|_| StoreError::Corrupt { what: "persons.id", detail: "not a number".into() })?;
                found.insert((kind.to_owned(), bidx.to_owned()), PersonId(id));
            }
        }
        Ok(found)
    }

    /// Upserts one person by identity document.
    pub async fn upsert_person(&mut self, p: &NewPerson) -> Result<Change<PersonId>, StoreError> {
        let mut changes = self.upsert_persons(std::slice::from_ref(p)).await?;
        changes.pop().ok_or_else(|| StoreError::InvalidBatch("no person change".into()))
    }

    /// Upserts persons by identity document, [`PERSON_CHUNK`] per statement: new persons are
    /// inserted together, existing ones compared field by field (decrypted) and updated when
    /// they differ. The same document twice in `persons` is [`StoreError::Rule`]
    /// (`doc_number`/`duplicate_in_batch`). Answers one change per person, in order.
    pub async fn upsert_persons(&mut self, persons: &[NewPerson]) -> Result<Vec<Change<PersonId>>, StoreError> {
        let prepared = persons.iter().map(|p| prepare_person(&self.keys, p)).collect::<Result<Vec<_>, _>>()?;
        let keys: Vec<(String, String)> = prepared.iter().map(|p| p.key.clone()).collect();
        let existing = self.persons_by_doc_index(&keys).await?;
        self.upsert_prepared(prepared, &existing).await
    }

    /// Seals a person for [`RegistryTxn::upsert_prepared`] (see [`Store::prepare_person`]).
    pub fn prepare_person(&self, p: &NewPerson) -> Result<PreparedPerson, StoreError> {
        prepare_person(&self.keys, p)
    }

    /// [`RegistryTxn::upsert_persons`] for persons already prepared ([`Store::prepare_person`])
    /// and looked up ([`RegistryTxn::persons_by_doc_index`] of their [`PreparedPerson::key`]s)
    /// in this transaction.
    pub async fn upsert_prepared(
        &mut self,
        persons: Vec<PreparedPerson>,
        existing: &HashMap<(String, String), PersonId>,
    ) -> Result<Vec<Change<PersonId>>, StoreError> {
        const OP: &str = "upsert persons";
        let mut out = Vec::with_capacity(persons.len());
        let mut persons = persons.into_iter().peekable();
        while persons.peek().is_some() {
            let chunk: Vec<PreparedPerson> = persons.by_ref().take(PERSON_CHUNK).collect();
            {
                let mut seen = std::collections::HashSet::with_capacity(chunk.len());
                if !chunk.iter().all(|p| seen.insert(&p.key)) {
                    return Err(rule("doc_number", "duplicate_in_batch"));
                }
            }
            let mut inserts = Vec::new();
            let mut inserted_keys = Vec::new();
            let mut pending: Vec<Result<Change<PersonId>, (String, String)>> = Vec::with_capacity(chunk.len());
            for p in chunk {
                match existing.get(&p.key) {
                    None => {
                        inserted_keys.push(p.key.clone());
                        pending.push(Err(p.key));
                        inserts.push(p.model);
                    }
                    Some(id) => pending.push(Ok(self.update_person(*id, &p.person).await?)),
                }
            }
            let ids = if inserts.is_empty() {
                HashMap::new()
            } else {
                person::Entity::insert_many(inserts).exec_without_returning(&self.txn).await.map_err(db(OP))?;
                self.persons_by_doc_index(&inserted_keys).await?
            };
            for slot in pending {
                out.push(match slot {
                    Ok(change) => change,
                    Err(key) => Change::Inserted(
                        *ids.get(&key).ok_or_else(|| StoreError::InvalidBatch("inserted person not found".into()))?,
                    ),
                });
            }
        }
        Ok(out)
    }

    async fn update_person(&self, id: PersonId, p: &NewPerson) -> Result<Change<PersonId>, StoreError> {
        const OP: &str = "update person";
        let row = person::Entity::find_by_id(id.0)
            .one(&self.txn)
            .await
            .map_err(db(OP))?
            .ok_or(StoreError::NotFound { what: "person", id: id.to_string() })?;
        let sex = p.sex.as_ref().map(|s| enum_text("person.sex", s)).transpose()?;
        let birth = p.birth_date.map(|d| d.to_string());
        let hukou = enum_text("person.hukou", &p.hukou)?;
        let old_phone = row.phone_enc.as_deref().map(|v| self.keys.decrypt(PHONE, v)).transpose()?;
        let mut fields = Vec::new();
        diff(&mut fields, "name", &row.name, &p.name);
        diff(&mut fields, "sex", &row.sex, &sex);
        diff(&mut fields, "birth_date", &row.birth_date, &birth);
        diff(&mut fields, "hukou", &row.hukou, &hukou);
        diff(
            &mut fields,
            "phone",
            &old_phone.as_deref().map(normalise_phone),
            &p.phone.as_deref().map(normalise_phone),
        );
        if !fields.is_empty() {
            let mut m: person::ActiveModel = row.into();
            m.name = Set(p.name.clone());
            m.sex = Set(sex);
            m.birth_date = Set(birth);
            m.hukou = Set(hukou);
            if fields.contains(&"phone") {
                m.phone_enc = Set(p.phone.as_deref().map(|phone| self.keys.encrypt(PHONE, phone)).transpose()?);
                m.phone_bidx =
                    Set(p.phone.as_deref().map(|phone| self.keys.blind_index(PHONE, &normalise_phone(phone))));
            }
            m.update(&self.txn).await.map_err(db(OP))?;
        }
        Ok(change(id, fields))
    }

    // --- assignments ----------------------------------------------------------------------

    /// Puts a service assignment (by firm, estate and first day). At most one firm serves an
    /// estate on any day: an overlapping assignment of another firm is refused
    /// (`from`/`overlaps_other_firm`) — end the current one first.
    pub async fn put_assignment(&mut self, a: &NewAssignment) -> Result<Change<AssignmentId>, StoreError> {
        const OP: &str = "put service assignment";
        check_period("to", a.from, a.to)?;
        let rows = assignment::Entity::find()
            .filter(assignment::Column::EstateId.eq(a.estate_id.0))
            .all(&self.txn)
            .await
            .map_err(db(OP))?;
        let from = a.from.to_string();
        let mine = rows.iter().find(|r| r.firm_id == a.firm_id.0 && r.from_date == from);
        for r in &rows {
            if mine.is_some_and(|m| m.id == r.id) {
                continue;
            }
            let (rf, rt) =
                (parse_date("assignment.from", &r.from_date)?, parse_date_opt("assignment.to", r.to_date.as_deref())?);
            if periods_overlap(rf, rt, a.from, a.to) {
                return Err(rule("from", "estate_already_served"));
            }
        }
        let to = a.to.map(|t| t.to_string());
        match mine {
            None => {
                let r = assignment::Entity::insert(assignment::ActiveModel {
                    id: NotSet,
                    firm_id: Set(a.firm_id.0),
                    estate_id: Set(a.estate_id.0),
                    from_date: Set(from),
                    to_date: Set(to),
                    contract_ref: Set(a.contract_ref.clone()),
                })
                .exec(&self.txn)
                .await
                .map_err(|e| {
                    if crate::error::is_foreign_key_violation(&e) { rule("firm", "not_registered") } else { db(OP)(e) }
                })?;
                Ok(Change::Inserted(AssignmentId(r.last_insert_id)))
            }
            Some(row) => {
                let id = AssignmentId(row.id);
                let mut fields = Vec::new();
                diff(&mut fields, "to", &row.to_date, &to);
                diff(&mut fields, "contract_ref", &row.contract_ref, &a.contract_ref);
                if !fields.is_empty() {
                    let mut m: assignment::ActiveModel = row.clone().into();
                    m.to_date = Set(to);
                    m.contract_ref = Set(a.contract_ref.clone());
                    m.update(&self.txn).await.map_err(db(OP))?;
                }
                Ok(change(id, fields))
            }
        }
    }

    /// The assignment with this id.
    pub async fn assignment(&self, id: AssignmentId) -> Result<Option<NewAssignment>, StoreError> {
        let row = assignment::Entity::find_by_id(id.0).one(&self.txn).await.map_err(db("read assignment"))?;
        row.map(|r| {
            Ok(NewAssignment {
                firm_id: FirmId(r.firm_id),
                estate_id: EstateId(r.estate_id),
                from: parse_date("assignment.from", &r.from_date)?,
                to: parse_date_opt("assignment.to", r.to_date.as_deref())?,
                contract_ref: r.contract_ref,
            })
        })
        .transpose()
    }

    // --- occupancy and leases -------------------------------------------------------------

    /// Puts an occupancy (by person, house and first day). A person has at most one current
    /// primary residence: a new primary occupancy ends the person's other open primary one the
    /// day before it starts (a move), and is refused (`from`/`primary_overlaps`) when that would
    /// end it before it began.
    pub async fn put_occupancy(&mut self, o: &NewOccupancy) -> Result<Change<OccupancyId>, StoreError> {
        const OP: &str = "put occupancy";
        check_period("to", o.from, o.to)?;
        let rows = occupancy::Entity::find()
            .filter(occupancy::Column::PersonId.eq(o.person_id.0))
            .all(&self.txn)
            .await
            .map_err(db(OP))?;
        let from = o.from.to_string();
        let mine = rows.iter().find(|r| r.house_id == o.house_id.0 && r.from_date == from).cloned();
        if o.primary {
            for r in rows.iter().filter(|r| r.is_primary && mine.as_ref().is_none_or(|m| m.id != r.id)) {
                let (rf, rt) = (
                    parse_date("occupancy.from", &r.from_date)?,
                    parse_date_opt("occupancy.to", r.to_date.as_deref())?,
                );
                if !periods_overlap(rf, rt, o.from, o.to) {
                    continue;
                }
                if rt.is_none() && rf < o.from {
                    let mut m: occupancy::ActiveModel = r.clone().into();
                    m.to_date = Set(Some(o.from.add_days(-1).to_string()));
                    m.update(&self.txn).await.map_err(db(OP))?;
                } else {
                    return Err(rule("from", "primary_overlaps"));
                }
            }
        }
        let to = o.to.map(|t| t.to_string());
        let relation = enum_text("occupancy.relation", &o.relation)?;
        let reported = o.reported_at.map(|t| t.millis().to_string());
        match mine {
            None => {
                let r = occupancy::Entity::insert(occupancy::ActiveModel {
                    id: NotSet,
                    person_id: Set(o.person_id.0),
                    house_id: Set(o.house_id.0),
                    from_date: Set(from),
                    to_date: Set(to),
                    relation: Set(relation),
                    is_primary: Set(o.primary),
                    reported_at: Set(reported),
                })
                .exec(&self.txn)
                .await
                .map_err(|e| {
                    if crate::error::is_foreign_key_violation(&e) { rule("house", "not_registered") } else { db(OP)(e) }
                })?;
                Ok(Change::Inserted(OccupancyId(r.last_insert_id)))
            }
            Some(row) => {
                let id = OccupancyId(row.id);
                let mut fields = Vec::new();
                diff(&mut fields, "to", &row.to_date, &to);
                diff(&mut fields, "relation", &row.relation, &relation);
                diff(&mut fields, "primary", &row.is_primary, &o.primary);
                if reported.is_some() {
                    diff(&mut fields, "reported_at", &row.reported_at, &reported);
                }
                if !fields.is_empty() {
                    let mut m: occupancy::ActiveModel = row.into();
                    m.to_date = Set(to);
                    m.relation = Set(relation);
                    m.is_primary = Set(o.primary);
                    if reported.is_some() {
                        m.reported_at = Set(reported);
                    }
                    m.update(&self.txn).await.map_err(db(OP))?;
                }
                Ok(change(id, fields))
            }
        }
    }

    /// Puts a lease (by house, landlord and first day). Leases of one house may not overlap.
    pub async fn put_lease(&mut self, l: &NewLease) -> Result<Change<LeaseId>, StoreError> {
        const OP: &str = "put lease";
        check_period("to", l.from, l.to)?;
        let rows = lease::Entity::find()
            .filter(lease::Column::HouseId.eq(l.house_id.0))
            .all(&self.txn)
            .await
            .map_err(db(OP))?;
        let from = l.from.to_string();
        let mine = rows.iter().find(|r| r.landlord_id == l.landlord_id.0 && r.from_date == from).cloned();
        for r in &rows {
            if mine.as_ref().is_some_and(|m| m.id == r.id) {
                continue;
            }
            let (rf, rt) = (parse_date("lease.from", &r.from_date)?, parse_date_opt("lease.to", r.to_date.as_deref())?);
            if periods_overlap(rf, rt, l.from, l.to) {
                return Err(rule("from", "house_already_leased"));
            }
        }
        let to = l.to.map(|t| t.to_string());
        match mine {
            None => {
                let r = lease::Entity::insert(lease::ActiveModel {
                    id: NotSet,
                    house_id: Set(l.house_id.0),
                    landlord_id: Set(l.landlord_id.0),
                    from_date: Set(from),
                    to_date: Set(to),
                    contract_ref: Set(l.contract_ref.clone()),
                })
                .exec(&self.txn)
                .await
                .map_err(|e| {
                    if crate::error::is_foreign_key_violation(&e) { rule("house", "not_registered") } else { db(OP)(e) }
                })?;
                Ok(Change::Inserted(LeaseId(r.last_insert_id)))
            }
            Some(row) => {
                let id = LeaseId(row.id);
                let mut fields = Vec::new();
                diff(&mut fields, "to", &row.to_date, &to);
                diff(&mut fields, "contract_ref", &row.contract_ref, &l.contract_ref);
                if !fields.is_empty() {
                    let mut m: lease::ActiveModel = row.into();
                    m.to_date = Set(to);
                    m.contract_ref = Set(l.contract_ref.clone());
                    m.update(&self.txn).await.map_err(db(OP))?;
                }
                Ok(change(id, fields))
            }
        }
    }

    /// Ends an occupancy on `to` (the last day); refused before it began.
    pub async fn end_occupancy(&mut self, id: OccupancyId, to: Date) -> Result<Change<OccupancyId>, StoreError> {
        const OP: &str = "end occupancy";
        let row = occupancy::Entity::find_by_id(id.0)
            .one(&self.txn)
            .await
            .map_err(db(OP))?
            .ok_or(StoreError::NotFound { what: "occupancy", id: id.to_string() })?;
        check_period("to", parse_date("occupancy.from", &row.from_date)?, Some(to))?;
        let to = Some(to.to_string());
        if row.to_date == to {
            return Ok(Change::Unchanged(id));
        }
        let mut m: occupancy::ActiveModel = row.into();
        m.to_date = Set(to);
        m.update(&self.txn).await.map_err(db(OP))?;
        Ok(Change::Updated { id, fields: vec!["to"] })
    }

    /// The houses' estates (houses outside estates are absent).
    pub async fn estates_of_houses(&self, houses: &[HouseId]) -> Result<HashMap<HouseId, EstateId>, StoreError> {
        let mut out = HashMap::new();
        for chunk in houses.chunks(PERSON_CHUNK) {
            let rows: Vec<(i64, Option<i64>)> = house::Entity::find()
                .select_only()
                .column(house::Column::Id)
                .column(house::Column::EstateId)
                .filter(house::Column::Id.is_in(chunk.iter().map(|h| h.0)))
                .into_tuple()
                .all(&self.txn)
                .await
                .map_err(db("find estates of houses"))?;
            out.extend(rows.into_iter().filter_map(|(h, e)| e.map(|e| (HouseId(h), EstateId(e)))));
        }
        Ok(out)
    }

    /// The estates each person is tied to on `on` (see [`Store::person_estates`]), read inside
    /// this transaction.
    pub async fn person_estates(
        &self,
        persons: &[PersonId],
        on: Date,
        person_keys: &[(String, String)],
    ) -> Result<HashMap<PersonId, Vec<EstateId>>, StoreError> {
        crate::registry::person_estates_in(&self.txn, persons, on, person_keys).await
    }
}

/// A person ready to write: the document key computed and the personal fields sealed
/// (encryption and blind indexes are the CPU-heavy part of writing a person, so an import
/// prepares the next chunk on another thread while the database writes this one).
#[derive(Clone)]
pub struct PreparedPerson {
    /// The person as given.
    pub person: NewPerson,
    key: (String, String),
    model: person::ActiveModel,
}

impl std::fmt::Debug for PreparedPerson {
    /// Shows nothing of the person.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedPerson").finish_non_exhaustive()
    }
}

impl PreparedPerson {
    /// The document key: `(doc_kind, blind index)`, as [`RegistryTxn::persons_by_doc_index`] takes it.
    pub fn key(&self) -> &(String, String) {
        &self.key
    }
}

impl Store {
    /// Seals a person for writing (see [`PreparedPerson`]); no database access.
    pub fn prepare_person(&self, p: &NewPerson) -> Result<PreparedPerson, StoreError> {
        prepare_person(&self.keys, p)
    }
}

fn prepare_person(keys: &FieldKeys, p: &NewPerson) -> Result<PreparedPerson, StoreError> {
    let key = (
        enum_text("person.doc_kind", &p.doc.kind)?,
        keys.blind_index(DOC_NUMBER, &normalise_doc_number(&p.doc.number)),
    );
    let model = person::ActiveModel {
        id: NotSet,
        name: Set(p.name.clone()),
        doc_kind: Set(key.0.clone()),
        doc_number_enc: Set(keys.encrypt(DOC_NUMBER, &p.doc.number)?),
        doc_bidx: Set(key.1.clone()),
        sex: Set(p.sex.as_ref().map(|s| enum_text("person.sex", s)).transpose()?),
        birth_date: Set(p.birth_date.map(|d| d.to_string())),
        hukou: Set(enum_text("person.hukou", &p.hukou)?),
        phone_enc: Set(p.phone.as_deref().map(|phone| keys.encrypt(PHONE, phone)).transpose()?),
        phone_bidx: Set(p.phone.as_deref().map(|phone| keys.blind_index(PHONE, &normalise_phone(phone)))),
    };
    Ok(PreparedPerson { person: p.clone(), key, model })
}
