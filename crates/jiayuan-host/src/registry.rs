//! 登记簿 the registry service: every change to divisions, grid cells, estates, firms,
//! buildings, houses, persons, service assignments, occupancy and leases goes through here —
//! from the API, the CLI and imports alike — checked against the caller's role and reach,
//! validated with field errors, and audited in its transaction.
//!
//! It also holds the one rule of which persons a caller reaches ([`Registry::reached_persons`]):
//! a person with an occupancy or lease (as landlord) in an estate within the caller's reach on
//! the day, or named by a record of such an estate. Reads, lookups, imports and plugin hooks all
//! ask it; district-wide callers reach everyone.
//!
//! Who may change what (the role half is [`access::permits`]; this module adds the "where"):
//! divisions and firms — district admins (a district admin named for one district: divisions
//! of that district); estates, grid cells and assignments — district admins and street officers
//! of the estate's street; buildings and houses — district admins and the manager of the firm
//! serving the estate; persons, occupancy and leases — also firm staff of the serving firm and
//! street officers and community workers of the estate's area.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use jiayuan_domain::{
    AgencyUnit, AssignmentId, BuildingId, Date, Division, DivisionCode, DivisionLevel, EstateId, FirmId, GridCell,
    HouseId, LeaseId, OccupancyId, PersonId, Place, Timestamp,
};
use jiayuan_store::{
    Change, NewAssignment, NewBuilding, NewEstate, NewFirm, NewHouse, NewLease, NewOccupancy, NewPerson, RegistryTxn,
    Store, StoreError,
};

use crate::access::{self, Action, Caller, Denied, Reach, Target};
use crate::clock::HostClock;
use crate::enablement::PlaceInfo;

/// One refused field: the field, the rule, and the reason in Chinese and English. Never the value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// The field (a column of the import template, or a JSON field of the API).
    pub field: String,
    /// The rule's code.
    pub rule: String,
    /// 原因 the reason, in Chinese.
    pub message_zh: String,
    /// The reason, in English.
    pub message_en: String,
}

impl FieldError {
    /// A refusal of `field` by `rule`, with its texts.
    pub fn new(field: &str, rule: &str, zh: impl Into<String>, en: impl Into<String>) -> FieldError {
        FieldError { field: field.to_owned(), rule: rule.to_owned(), message_zh: zh.into(), message_en: en.into() }
    }
}

/// Why a registry change was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The role may not do this (403) or the target is outside the caller's reach (404).
    #[error("access denied: {0}")]
    Denied(Denied),
    /// The input breaks a rule; nothing was written.
    #[error("the registry refused {} field(s)", .0.len())]
    Invalid(Vec<FieldError>),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for RegistryError {
    fn from(e: StoreError) -> RegistryError {
        match e {
            StoreError::Rule { field, rule } => RegistryError::Invalid(vec![rule_error(field, rule)]),
            StoreError::UniqueKey { field, .. } => RegistryError::Invalid(vec![FieldError::new(
                &field,
                "taken",
                "该值已被登记",
                "this value is already registered",
            )]),
            other => RegistryError::Store(other),
        }
    }
}

/// The texts of the store's registry rules: the one table of their messages.
pub fn rule_error(field: &str, rule: &str) -> FieldError {
    let (zh, en) = match rule {
        "ends_before_start" => ("结束日期早于开始日期", "the period ends before it starts"),
        "parent_follows_code" => {
            ("上级区划须与代码一致（前 6/9 位）", "the parent must be the division the code names")
        }
        "level_follows_code" => ("层级须与代码一致", "the level must be the one the code denotes"),
        "parent_not_registered" => ("上级区划尚未登记，请先导入上级", "the parent division is not registered yet"),
        "versions_overlap" => ("同一代码的有效期不能重叠", "versions of one code may not overlap"),
        "grid_code" => {
            ("网格编码应为 15 位：社区代码 12 位 + 序号 3 位", "a grid code is 15 digits: community 12 + sequence 3")
        }
        "grid_code_names_community" => {
            ("网格编码前 12 位须为所属社区代码", "the grid code must start with its community's code")
        }
        "not_registered" => ("引用的对象尚未登记", "refers to something not registered"),
        "not_a_community" => ("须为社区（12 位代码的最后 3 位非 000）", "must be a community"),
        "dedicated_needs_estate" => ("专属网格须注明所属小区", "a dedicated grid cell names its estate"),
        "basic_has_no_estate" => ("基础网格不属于某一小区", "a basic grid cell names no estate"),
        "estate_outside_community" => ("小区不在该网格所属社区", "the estate lies outside the cell's community"),
        "check_character_needs_override" => (
            "统一社会信用代码校验位不符：请核对，确属在用代码须填写原因",
            "the credit code's check character fails: verify it, or give the reason it is accepted",
        ),
        "gb32100_format" => ("统一社会信用代码应为 18 位（GB 32100）", "a credit code is 18 characters (GB 32100)"),
        "at_least_one" => ("至少为 1", "must be at least 1"),
        "blank" => ("不能为空", "must not be blank"),
        "at_most_20_characters" => ("不超过 20 个字", "at most 20 characters"),
        "at_most_50_characters" => ("不超过 50 个字", "at most 50 characters"),
        "at_most_100_characters" => ("不超过 100 个字", "at most 100 characters"),
        "between_0_and_700" => ("应在 0 到 700 米之间", "must be between 0 and 700 m"),
        "between_0_and_100000" => ("应在 0 到 100000 平方米之间", "must be between 0 and 100,000 m²"),
        "used_by_another_house" => {
            ("该标准地址编码已属于另一房屋", "the standard-address code belongs to another house")
        }
        "duplicate_in_batch" => ("文件中证件号码重复", "the same document number appears twice"),
        "estate_already_served" => (
            "该小区在此期间已有服务企业；请先结束现有委托",
            "another firm serves the estate in this period: end that assignment first",
        ),
        "primary_overlaps" => ("此人在此期间已有主要居所", "the person already has a primary residence in this period"),
        "house_already_leased" => ("该房屋在此期间已有租赁登记", "the house is already leased in this period"),
        "unknown_agency_kind" => ("职能部门类别未登记", "the agency kind is not registered"),
        "unknown_division" => ("区划未登记", "the division is not registered"),
        "required" => ("不能为空", "must not be empty"),
        "too_long" => ("过长", "is too long"),
        "agency_unit_exists" => ("同类单位中已有此名称", "a unit of this kind already has this name"),
        "unknown_agency_unit" => ("职能部门单位不存在", "no agency unit has this id"),
        "agency_kind_code" => ("类别代码应为 2–32 位小写字母、数字或下划线", "a kind code is 2–32 of a-z, 0-9 and _"),
        _ => ("不符合登记规则", "breaks a registry rule"),
    };
    FieldError::new(field, rule, zh, en)
}

fn invalid(field: &str, rule: &str, zh: &str, en: &str) -> RegistryError {
    RegistryError::Invalid(vec![FieldError::new(field, rule, zh, en)])
}

/// The registry service. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    store: Store,
    clock: Arc<dyn HostClock>,
    /// Indexed record fields that name persons, `(plugin, field)`, from the loaded manifests.
    person_keys: Arc<Vec<(String, String)>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

/// A registry transaction opened for one caller: every write checks the caller's reach and is
/// audited under their name. [`RegistryWrite::commit`] ends it; dropping it rolls back.
#[allow(missing_debug_implementations)]
pub struct RegistryWrite<'a> {
    registry: &'a Registry,
    caller: &'a Caller,
    txn: RegistryTxn,
    at: Timestamp,
    /// Estates whose serving firm changed (the engine's place cache must forget them).
    pub moved_estates: Vec<EstateId>,
    /// Imports log rows instead of auditing each one (one audit event per import).
    quiet: bool,
    /// Persons this write inserted or changed (so the caller reached them, or made them):
    /// occupancy and leases may name them.
    written_persons: HashSet<PersonId>,
}

impl Registry {
    /// 职能部门单位 the agency units of the registry (any account may read them).
    pub async fn agency_units(&self) -> Result<Vec<AgencyUnit>, RegistryError> {
        Ok(self.store.agency_units().await?)
    }

    /// The agency kinds of the registry.
    pub async fn agency_kinds(&self) -> Result<Vec<jiayuan_domain::AgencyKind>, RegistryError> {
        Ok(self.store.agency_kinds().await?)
    }

    /// Creates an agency unit (a police station, a judicial office): district-wide data, kept by
    /// those who keep divisions and firms. Audited by the store in the same transaction.
    pub async fn create_agency_unit(
        &self,
        caller: &Caller,
        kind: &str,
        name: &str,
        jurisdiction: &DivisionCode,
    ) -> Result<AgencyUnit, RegistryError> {
        access::authorize(caller, Action::ManageDivisions, Target::default()).map_err(RegistryError::Denied)?;
        let id = self.store.create_agency_unit(kind, name.trim(), jurisdiction, &caller.name, self.clock.now()).await?;
        self.store
            .agency_unit(id)
            .await?
            .ok_or(RegistryError::Store(StoreError::NotFound { what: "agency unit", id: id.0.to_string() }))
    }

    /// The service over `store`, with `person_keys` the indexed record fields that reference
    /// persons (`(plugin, field)`).
    pub fn new(store: Store, clock: Arc<dyn HostClock>, person_keys: Vec<(String, String)>) -> Registry {
        Registry { store, clock, person_keys: Arc::new(person_keys) }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Now, by the host's clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Today in Shanghai by the host's clock.
    pub fn today(&self) -> Date {
        self.clock.now().shanghai_date()
    }

    /// Opens a write for `caller`.
    pub async fn begin<'a>(&'a self, caller: &'a Caller) -> Result<RegistryWrite<'a>, RegistryError> {
        let txn = self.store.registry_txn().await?;
        Ok(RegistryWrite {
            registry: self,
            caller,
            txn,
            at: self.clock.now(),
            moved_estates: Vec::new(),
            quiet: false,
            written_persons: HashSet::new(),
        })
    }

    /// Where an estate sits today (its community and serving firm).
    pub async fn place(&self, estate: EstateId) -> Result<Option<PlaceInfo>, StoreError> {
        let Some(e) = self.store.estate(estate).await? else { return Ok(None) };
        let firm = self.store.firm_serving(estate, self.today()).await?;
        Ok(Some(PlaceInfo { place: Place::Estate(estate), street: e.street(), community: e.community.clone(), firm }))
    }

    /// The subset of `persons` the caller reaches today (the one rule; see the module doc).
    pub async fn reached_persons(
        &self,
        caller: &Caller,
        persons: &[PersonId],
    ) -> Result<HashSet<PersonId>, StoreError> {
        if caller.reach == Reach::District {
            return Ok(persons.iter().copied().collect());
        }
        let ties = self.store.person_estates(persons, self.today(), &self.person_keys).await?;
        self.reached_among(caller, ties).await
    }

    /// The persons of `ties` (their estates today) that have an estate within the caller's
    /// reach: the second half of the one rule, whichever connection read the ties.
    async fn reached_among(
        &self,
        caller: &Caller,
        ties: HashMap<PersonId, Vec<EstateId>>,
    ) -> Result<HashSet<PersonId>, StoreError> {
        let mut estates: Vec<EstateId> = ties.values().flatten().copied().collect();
        estates.sort();
        estates.dedup();
        let mut reached_estates = HashSet::new();
        for e in estates {
            if let Some(place) = self.place(e).await?
                && caller.reach.covers(&place)
            {
                reached_estates.insert(e);
            }
        }
        Ok(ties.into_iter().filter(|(_, es)| es.iter().any(|e| reached_estates.contains(e))).map(|(p, _)| p).collect())
    }

    /// Whether the caller reaches one person.
    pub async fn reaches_person(&self, caller: &Caller, person: PersonId) -> Result<bool, StoreError> {
        Ok(self.reached_persons(caller, &[person]).await?.contains(&person))
    }
}

/// The division code a district-wide caller is limited to (`None`: the whole installation).
fn district_of(caller: &Caller) -> Option<&DivisionCode> {
    match &caller.reach {
        Reach::Division(code) if code.level() == DivisionLevel::District => Some(code),
        _ => None,
    }
}

impl<'a> RegistryWrite<'a> {
    /// The caller.
    pub fn caller(&self) -> &Caller {
        self.caller
    }

    /// The underlying store transaction (for lookups by natural key).
    pub fn txn(&self) -> &RegistryTxn {
        &self.txn
    }

    /// Commits the changes and their audit events.
    pub async fn commit(self) -> Result<Vec<EstateId>, RegistryError> {
        let moved = self.moved_estates;
        self.txn.commit().await?;
        Ok(moved)
    }

    /// Rolls everything back (dry runs).
    pub async fn rollback(self) -> Result<(), RegistryError> {
        Ok(self.txn.rollback().await?)
    }

    /// Queues an audit event not tied to one row (an import's summary).
    pub fn audit(&mut self, action: &str, object: &str, detail: serde_json::Value) {
        self.txn.audit(jiayuan_store::NewAudit {
            at: self.at,
            actor: self.caller.name.clone(),
            action: action.to_owned(),
            target: jiayuan_store::AuditTarget::Object(object.to_owned()),
            estate_id: None,
            detail_json: detail.to_string(),
        });
    }

    fn role(&self, action: Action) -> Result<(), RegistryError> {
        access::authorize(self.caller, action, Target::default()).map_err(RegistryError::Denied)
    }

    /// Checks `action` at an estate: role, then reach (out of reach is "not found").
    async fn at_estate(&self, action: Action, estate: EstateId) -> Result<PlaceInfo, RegistryError> {
        self.role(action)?;
        let place = self.registry.place(estate).await?.ok_or(RegistryError::Denied(Denied::OutOfScope))?;
        // Estates, grid cells and assignments belong to the area, not the firm: a firm's reach
        // never administers them (the role table already keeps firms out of ManageEstates).
        access::authorize(self.caller, action, Target { place: Some(&place), ..Target::default() })
            .map_err(RegistryError::Denied)?;
        Ok(place)
    }

    /// Checks `action` for something in `community` (estates, grid cells before they exist).
    fn in_area(&self, action: Action, community: &DivisionCode) -> Result<(), RegistryError> {
        self.role(action)?;
        let covered = match &self.caller.reach {
            Reach::District => true,
            Reach::Division(code) => community.is_within(code),
            Reach::Firm(_) | Reach::Estates(_) => false,
        };
        if covered { Ok(()) } else { Err(RegistryError::Denied(Denied::OutOfScope)) }
    }

    /// Records the audit event of a change (not in an import: it writes one event and a log).
    fn audited<I: std::fmt::Display>(&mut self, object: &str, change: &Change<I>, estate: Option<EstateId>) {
        if !self.quiet {
            self.txn.audit_change(&self.caller.name, self.at, object, change, estate);
        }
    }

    /// From now on, changes are not audited one by one: the import that asked writes one audit
    /// event and its row log ([`RegistryWrite::log_import`]).
    pub fn quiet_rows(&mut self) {
        self.quiet = true;
    }

    /// The subset of `persons` the caller reaches (the one rule), read inside this transaction,
    /// so it sees the transaction's own writes.
    pub async fn reached(&self, persons: &[PersonId]) -> Result<HashSet<PersonId>, RegistryError> {
        if self.caller.reach == Reach::District || persons.is_empty() {
            return Ok(persons.iter().copied().collect());
        }
        let ties = self.txn.person_estates(persons, self.registry.today(), &self.registry.person_keys).await?;
        Ok(self.registry.reached_among(self.caller, ties).await?)
    }

    /// Whether the caller reaches `person` (see [`RegistryWrite::reached`]).
    pub async fn reaches(&self, person: PersonId) -> Result<bool, RegistryError> {
        Ok(self.reached(&[person]).await?.contains(&person))
    }

    /// Writes an import's log (one row per changed, referred or refused row: action, target,
    /// field names or rule codes) and its one audit event (kind, file sha256, counts).
    pub async fn log_import(
        &mut self,
        kind: &str,
        sha256: &str,
        mode: &str,
        counts: &serde_json::Value,
        rows: &[(u64, &'static str, Option<String>, Vec<String>)],
    ) -> Result<i64, RegistryError> {
        let id = self.txn.log_import(kind, &self.caller.name, self.at, sha256, mode, counts, rows).await?;
        self.txn.audit(jiayuan_store::NewAudit {
            at: self.at,
            actor: self.caller.name.clone(),
            action: "registry.import".into(),
            target: jiayuan_store::AuditTarget::Object(format!("import/{id}")),
            estate_id: None,
            detail_json: serde_json::json!({"kind": kind, "file_sha256": sha256, "mode": mode, "counts": counts})
                .to_string(),
        });
        Ok(id)
    }

    /// Upserts a division version (district admins; one named for a district keeps only it).
    pub async fn put_division(&mut self, d: &Division) -> Result<Change<DivisionCode>, RegistryError> {
        self.role(Action::ManageDivisions)?;
        if let Some(district) = district_of(self.caller)
            && !d.code.is_within(district)
        {
            return Err(RegistryError::Denied(Denied::OutOfScope));
        }
        let change = self.txn.upsert_division(d).await?;
        self.audited("division", &change, None);
        Ok(change)
    }

    /// Upserts a grid cell (its community within the caller's area).
    pub async fn put_grid_cell(&mut self, g: &GridCell) -> Result<Change<String>, RegistryError> {
        self.in_area(Action::ManageEstates, &g.community)?;
        let change = self.txn.upsert_grid_cell(g).await?;
        self.audited("grid_cell", &change, g.estate_id);
        Ok(change)
    }

    /// Upserts an estate (its community within the caller's area; an existing estate may only
    /// be changed, or moved, within it too).
    pub async fn put_estate(&mut self, e: &NewEstate) -> Result<Change<EstateId>, RegistryError> {
        self.in_area(Action::ManageEstates, &e.community)?;
        if let Some((_, community)) = self.txn.estate_by_code(e.code.as_str()).await? {
            self.in_area(Action::ManageEstates, &community)?;
        }
        let change = self.txn.upsert_estate(e).await?;
        self.audited("estate", &change, Some(change.id()));
        Ok(change)
    }

    /// Upserts a firm (district admins; firms are shared by the whole installation).
    pub async fn put_firm(&mut self, f: &NewFirm) -> Result<Change<FirmId>, RegistryError> {
        self.role(Action::ManageDivisions)?;
        let change = self.txn.upsert_firm(f).await?;
        self.audited("firm", &change, None);
        Ok(change)
    }

    /// Puts a service assignment (the estate within the caller's area). The estate's reach
    /// moves to the new firm on `from`.
    pub async fn put_assignment(&mut self, a: &NewAssignment) -> Result<Change<AssignmentId>, RegistryError> {
        let place = self.at_estate(Action::ManageEstates, a.estate_id).await?;
        self.in_area(Action::ManageEstates, &place.community)?;
        let change = self.txn.put_assignment(a).await?;
        self.audited("assignment", &change, Some(a.estate_id));
        if change.is_change() {
            self.moved_estates.push(a.estate_id);
        }
        Ok(change)
    }

    /// Ends a service assignment on `to` (its last day).
    pub async fn end_assignment(&mut self, id: AssignmentId, to: Date) -> Result<Change<AssignmentId>, RegistryError> {
        self.role(Action::ManageEstates)?;
        let a = self.txn.assignment(id).await?.ok_or(RegistryError::Denied(Denied::OutOfScope))?;
        let place = self.at_estate(Action::ManageEstates, a.estate_id).await?;
        self.in_area(Action::ManageEstates, &place.community)?;
        self.put_assignment(&NewAssignment { to: Some(to), ..a }).await
    }

    /// Upserts a building of an estate the caller keeps.
    pub async fn put_building(&mut self, b: &NewBuilding) -> Result<Change<BuildingId>, RegistryError> {
        let Some(estate) = b.estate_id else {
            self.role(Action::ManageDivisions)?;
            let change = self.txn.upsert_building(b).await?;
            self.audited("building", &change, None);
            return Ok(change);
        };
        self.at_estate(Action::ManageBuildings, estate).await?;
        let change = self.txn.upsert_building(b).await?;
        self.audited("building", &change, Some(estate));
        Ok(change)
    }

    /// Upserts a house in a building the caller keeps.
    pub async fn put_house(&mut self, h: &NewHouse) -> Result<Change<HouseId>, RegistryError> {
        let building = self.registry.store.building(h.building_id).await?;
        let building = building
            .ok_or_else(|| invalid("building", "not_registered", "楼栋尚未登记", "the building is not registered"))?;
        let estate = match building.estate_id {
            Some(e) => {
                self.at_estate(Action::ManageBuildings, e).await?;
                Some(e)
            }
            None => {
                self.role(Action::ManageDivisions)?;
                None
            }
        };
        let change = self.txn.upsert_house(h).await?;
        self.audited("house", &change, estate);
        Ok(change)
    }

    /// The estate of a house, checked for resident work by the caller.
    async fn house_for_residents(&self, house: HouseId) -> Result<EstateId, RegistryError> {
        self.role(Action::WriteResidents)?;
        let estates = self.txn.estates_of_houses(&[house]).await?;
        let estate = estates.get(&house).copied().ok_or(RegistryError::Denied(Denied::OutOfScope))?;
        self.at_estate(Action::WriteResidents, estate).await?;
        Ok(estate)
    }

    /// Upserts a person. A person already registered whom the caller does not reach is neither
    /// changed nor described: the answer is [`PersonOutcome::Referred`], and the district sees
    /// the conflict in the audit log.
    pub async fn put_person(&mut self, p: &NewPerson) -> Result<PersonOutcome, RegistryError> {
        let mut out = self.put_persons(std::slice::from_ref(p)).await?;
        out.pop().ok_or_else(|| RegistryError::Store(StoreError::InvalidBatch("no person outcome".into())))
    }

    /// Upserts persons in bulk (see [`RegistryWrite::put_person`]).
    pub async fn put_persons(&mut self, persons: &[NewPerson]) -> Result<Vec<PersonOutcome>, RegistryError> {
        let prepared = persons.iter().map(|p| self.txn.prepare_person(p)).collect::<Result<Vec<_>, _>>()?;
        self.put_prepared_persons(prepared).await
    }

    /// [`RegistryWrite::put_persons`] for persons sealed beforehand ([`Store::prepare_person`],
    /// pure CPU: imports prepare the next chunk while this one is written).
    pub async fn put_prepared_persons(
        &mut self,
        persons: Vec<jiayuan_store::PreparedPerson>,
    ) -> Result<Vec<PersonOutcome>, RegistryError> {
        self.role(Action::WriteResidents)?;
        let keys: Vec<(String, String)> = persons.iter().map(|p| p.key().clone()).collect();
        let existing = self.txn.persons_by_doc_index(&keys).await?;
        let known: Vec<PersonId> = existing.values().copied().collect();
        let reached = self.reached(&known).await?;
        let mut outcomes: Vec<Option<PersonOutcome>> = vec![None; persons.len()];
        let mut writable = Vec::new();
        let mut slots = Vec::new();
        for (i, p) in persons.into_iter().enumerate() {
            match existing.get(p.key()) {
                Some(id) if !reached.contains(id) => {
                    outcomes[i] = Some(PersonOutcome::Referred { conflict: *id });
                    if self.quiet {
                        continue;
                    }
                    self.txn.audit(jiayuan_store::NewAudit {
                        at: self.at,
                        actor: self.caller.name.clone(),
                        action: "registry.person.conflict".into(),
                        target: jiayuan_store::AuditTarget::Object(format!("person/{id}")),
                        estate_id: None,
                        detail_json: serde_json::json!({"reason": "outside_reach"}).to_string(),
                    });
                }
                _ => {
                    writable.push(p);
                    slots.push(i);
                }
            }
        }
        let changes = self.txn.upsert_prepared(writable, &existing).await?;
        for (slot, change) in slots.into_iter().zip(changes) {
            self.written_persons.insert(change.id());
            self.audited("person", &change, None);
            outcomes[slot] = Some(PersonOutcome::Written(change));
        }
        Ok(outcomes.into_iter().flatten().collect())
    }

    /// A person an occupancy or lease may name: one the caller reaches already, or one this
    /// write registered. Otherwise naming a person id at one's own house would make them
    /// reachable; such a person is "not found", as if absent.
    async fn nameable(&self, person: PersonId, field: &str) -> Result<(), RegistryError> {
        if self.written_persons.contains(&person) || self.reaches(person).await? {
            Ok(())
        } else {
            Err(invalid(field, "not_registered", "引用的人员尚未登记", "refers to a person not registered"))
        }
    }

    /// Puts an occupancy at a house the caller keeps residents of, of a person they reach.
    pub async fn put_occupancy(&mut self, o: &NewOccupancy) -> Result<Change<OccupancyId>, RegistryError> {
        let estate = self.house_for_residents(o.house_id).await?;
        self.nameable(o.person_id, "person_id").await?;
        let change = self.txn.put_occupancy(o).await?;
        self.audited("occupancy", &change, Some(estate));
        Ok(change)
    }

    /// Ends an occupancy (a move out) on `to`.
    pub async fn end_occupancy(&mut self, id: OccupancyId, to: Date) -> Result<Change<OccupancyId>, RegistryError> {
        let o = self.registry.store.occupancy(id).await?.ok_or(RegistryError::Denied(Denied::OutOfScope))?;
        let estate = self.house_for_residents(o.house_id).await?;
        let change = self.txn.end_occupancy(id, to).await?;
        self.audited("occupancy", &change, Some(estate));
        Ok(change)
    }

    /// Puts a lease of a house the caller keeps residents of, with a landlord they reach.
    pub async fn put_lease(&mut self, l: &NewLease) -> Result<Change<LeaseId>, RegistryError> {
        let estate = self.house_for_residents(l.house_id).await?;
        self.nameable(l.landlord_id, "landlord_id").await?;
        let change = self.txn.put_lease(l).await?;
        self.audited("lease", &change, Some(estate));
        Ok(change)
    }
}

/// What became of a person row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonOutcome {
    /// Inserted, updated or unchanged.
    Written(Change<PersonId>),
    /// 转区级核对 the document is registered for someone the caller does not reach: nothing was
    /// changed or shown, and the district sees the conflict (the audit log, or an import's log,
    /// names `conflict`). Never shown to the caller.
    Referred {
        /// The registered person the document belongs to.
        conflict: PersonId,
    },
}

impl PersonOutcome {
    /// The person's id, when the caller may know it.
    pub fn id(&self) -> Option<PersonId> {
        match self {
            PersonOutcome::Written(c) => Some(c.id()),
            PersonOutcome::Referred { .. } => None,
        }
    }
}
