//! The record engine: create, transition and query the records of every plugin.
//!
//! One path for every service item. A create runs: scope → enablement → parent → type checks
//! ([`jiayuan_schema`]) → references → the plugin's hook (under guard and timeout) → one store
//! transaction holding the record, its keys, its event, its children and its alerts. Nothing is
//! written unless every step passed; a refusal that carries alerts writes only the alerts.

pub(crate) mod context;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Map, Value, json};

use jiayuan_domain::calendar::WorkingCalendar;
use jiayuan_domain::{Estate, EstateId, FirmId, RecordId, Timestamp};
use jiayuan_plugin_api::{
    AlertDraft, CreateCall, FieldViolation, KeyDef, KpiCall, KpiValue, Manifest, Outcome, RecordKind, Scope,
    TransitionCall,
};
use jiayuan_schema::{Mode, Reference, check_object};
use jiayuan_store::{
    AlertFilter, AlertTarget, AuditTarget, NewAlert, NewAudit, NewRecord, ParentRef, RecordFilter, RecordOrder,
    RecordPosition, RecordUpdate, Store, StoreError, StoredAlert, StoredEvent, StoredRecord, WriteBatch,
};

use crate::access::{self, Action, Denied, Target};
use crate::clock::HostClock;
use crate::enablement::{Enablement, EstatePlace};
use crate::plugins::{CallError, PluginHandle, PluginRegistry};
use context::CallContext;

pub use crate::access::{Caller, Reach};

/// Why an engine operation failed. Each variant maps to one HTTP status in the API layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// No loaded plugin has this id.
    #[error("no service item `{0}` is loaded")]
    UnknownPlugin(String),
    /// The plugin has no such record kind.
    #[error("service item `{plugin}` has no record kind `{kind}`")]
    UnknownKind {
        /// Plugin id.
        plugin: String,
        /// Requested kind.
        kind: String,
    },
    /// The record, estate or parent does not exist, or lies outside the caller's reach.
    #[error("{what} {id} not found")]
    NotFound {
        /// What was looked for.
        what: &'static str,
        /// Its id.
        id: i64,
    },
    /// The item is disabled where the work would happen.
    #[error("service item `{item}` is not enabled for estate {estate} ({estate_name}); existing records stay readable")]
    Disabled {
        /// Plugin id.
        item: String,
        /// Estate id.
        estate: EstateId,
        /// Estate name.
        estate_name: String,
    },
    /// Input violates types or the item's rules; nothing was written.
    #[error("invalid input: {}", .0.iter().map(|v| format!("{}: {}", v.field, v.message_en)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldViolation>),
    /// The transition does not fire from the record's state.
    #[error("transition `{transition}` cannot fire from state `{state}` of {kind} {id}; it fires from: {allowed}")]
    TransitionNotAllowed {
        /// Record kind.
        kind: String,
        /// Record id.
        id: RecordId,
        /// Transition id.
        transition: String,
        /// The record's state.
        state: String,
        /// States the transition fires from.
        allowed: String,
    },
    /// The caller's role may not do this (fire this transition, or this kind of action at all).
    #[error("a {who} may not {what}")]
    Forbidden {
        /// The caller's role.
        who: String,
        /// What was refused.
        what: String,
    },
    /// The record changed since the caller read it, or a unique key is taken.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The plugin failed, timed out, panicked or is quarantined.
    #[error(transparent)]
    Plugin(#[from] CallError),
    /// The plugin answered with data that breaks its own manifest.
    #[error("service item `{plugin}` produced invalid data: {detail}")]
    PluginContract {
        /// Plugin id.
        plugin: String,
        /// What was wrong.
        detail: String,
    },
    /// The database failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> EngineError {
        match e {
            // The value may be personal (a key on a phone or identity number): the message, which
            // reaches error bodies and logs, carries it masked only.
            StoreError::UniqueKey { field, value } => EngineError::Conflict(format!(
                "`{field}` {} is already registered to another record (唯一字段 {field} 已被占用)",
                jiayuan_domain::mask(&value, jiayuan_domain::Sensitivity::Personal)
            )),
            StoreError::VersionConflict { id, expected, found } => EngineError::Conflict(format!(
                "record {id} changed meanwhile (expected version {expected}, found {found}); reload and retry"
            )),
            other => EngineError::Store(other),
        }
    }
}

/// A new record as asked for.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    /// Plugin id.
    pub plugin: String,
    /// Record kind.
    pub kind: String,
    /// Estate.
    pub estate_id: EstateId,
    /// Parent record, for child kinds.
    pub parent_id: Option<RecordId>,
    /// The data object.
    pub data: Value,
}

/// A transition as asked for.
#[derive(Debug, Clone)]
pub struct TransitionRequest {
    /// Plugin id.
    pub plugin: String,
    /// Record id.
    pub id: RecordId,
    /// Transition id.
    pub transition: String,
    /// The transition's input object (`{}` when none).
    pub input: Value,
    /// Refuse unless the record is still at this version.
    pub expected_version: Option<i64>,
}

/// A page of records.
#[derive(Debug, Clone)]
pub struct Page {
    /// The records, in the requested order.
    pub records: Vec<RecordView>,
    /// Where this page ended, to ask for the next one; `None` on the last page.
    pub next: Option<RecordPosition>,
}

/// A record as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RecordView {
    /// Id.
    pub id: RecordId,
    /// Plugin id.
    pub plugin: String,
    /// Record kind.
    pub kind: String,
    /// Estate.
    pub estate_id: EstateId,
    /// Parent record.
    pub parent_id: Option<RecordId>,
    /// Workflow state.
    pub state: String,
    /// Data object.
    pub data: Value,
    /// Created (RFC 3339, +08:00).
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
    /// Version for optimistic concurrency.
    pub version: i64,
}

impl RecordView {
    fn from_stored(r: StoredRecord) -> RecordView {
        RecordView {
            data: serde_json::from_str(&r.data_json).unwrap_or(Value::Null),
            id: r.id,
            plugin: r.plugin,
            kind: r.kind,
            estate_id: r.estate_id,
            parent_id: r.parent_id,
            state: r.state,
            created_at: r.created_at.to_rfc3339_shanghai(),
            updated_at: r.updated_at.to_rfc3339_shanghai(),
            version: r.version,
        }
    }
}

/// Filters for listing records.
#[derive(Debug, Clone, Default)]
pub struct ListRequest {
    /// Record kind (optional).
    pub kind: Option<String>,
    /// Only this estate.
    pub estate_id: Option<EstateId>,
    /// Only these states.
    pub states: Vec<String>,
    /// Only records whose indexed key has this value.
    pub key: Option<(String, String)>,
    /// Only children of this record.
    pub parent_id: Option<RecordId>,
    /// The order (default: by id, ascending).
    pub order: RecordOrder,
    /// Where the previous page ended (from [`Page::next`]).
    pub after: Option<RecordPosition>,
    /// Page size (1–200, default 50).
    pub limit: Option<u32>,
}

/// The record engine, shared by the API and the scheduler.
#[derive(Debug)]
pub struct Engine {
    store: Store,
    plugins: Arc<PluginRegistry>,
    enablement: Enablement,
    clock: Arc<dyn HostClock>,
    calendar: Arc<WorkingCalendar>,
    plugin_config: HashMap<String, Arc<str>>,
    places: RwLock<HashMap<EstateId, (EstatePlace, Estate, Instant)>>,
    /// The estates of a street, community or firm reach, cached like `places`.
    reaches: RwLock<HashMap<Reach, (Vec<EstateId>, Instant)>>,
    /// The registry service (administration, and which persons a caller reaches).
    registry: crate::registry::Registry,
}

/// How long an estate's street and firm are cached for enablement decisions.
const PLACE_TTL: Duration = Duration::from_secs(30);

impl Engine {
    /// An engine over a migrated store and a loaded plugin registry. Every record-data field a
    /// manifest marks [`Sensitivity::Sensitive`](jiayuan_domain::Sensitivity) is sealed in the
    /// store (encrypted at rest, keys blind-indexed).
    pub fn new(
        store: Store,
        plugins: Arc<PluginRegistry>,
        enablement: Enablement,
        clock: Arc<dyn HostClock>,
        calendar: WorkingCalendar,
        plugin_config: impl IntoIterator<Item = (String, String)>,
    ) -> Engine {
        let mut person_keys = Vec::new();
        for handle in plugins.handles() {
            let m = handle.manifest();
            for kind in &m.record_kinds {
                for key in &kind.keys {
                    let names_person = kind
                        .fields
                        .iter()
                        .any(|f| f.name == key.field && f.ty == jiayuan_plugin_api::FieldType::PersonRef);
                    if names_person {
                        person_keys.push((m.id.clone(), key.field.clone()));
                    }
                }
            }
            let sensitive = m
                .record_kinds
                .iter()
                .flat_map(|k| k.fields.iter().chain(k.workflow.transitions.iter().flat_map(|t| t.input.iter())))
                .filter(|f| f.sensitivity == jiayuan_domain::Sensitivity::Sensitive)
                .map(|f| f.name.clone());
            store.seal_record_fields(&m.id, sensitive);
        }
        Engine {
            store: store.clone(),
            plugins,
            enablement,
            clock: clock.clone(),
            calendar: Arc::new(calendar),
            plugin_config: plugin_config.into_iter().map(|(k, v)| (k, Arc::from(v))).collect(),
            places: RwLock::new(HashMap::new()),
            reaches: RwLock::new(HashMap::new()),
            registry: crate::registry::Registry::new(store, clock, person_keys),
        }
    }

    /// The registry service.
    pub fn registry(&self) -> &crate::registry::Registry {
        &self.registry
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The plugin registry.
    pub fn plugins(&self) -> &Arc<PluginRegistry> {
        &self.plugins
    }

    /// Enablement.
    pub fn enablement(&self) -> &Enablement {
        &self.enablement
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn HostClock> {
        &self.clock
    }

    /// The working-day calendar.
    pub fn calendar(&self) -> &WorkingCalendar {
        &self.calendar
    }

    fn handle(&self, plugin: &str) -> Result<PluginHandle, EngineError> {
        self.plugins.handle(plugin).ok_or_else(|| EngineError::UnknownPlugin(plugin.to_owned()))
    }

    /// The context of one plugin call for `caller`: the persons it can read are those the caller
    /// reaches (the registry's one rule), as if the others did not exist.
    fn context(&self, caller: &Caller, plugin: &str, estate: Option<EstateId>, firm: Option<FirmId>) -> CallContext {
        let config = self.plugin_config.get(plugin).cloned().unwrap_or_else(|| Arc::from("{}"));
        let scope = Scope { estate_id: estate, firm_id: firm, request_id: request_id() };
        CallContext::new(plugin, scope, self.store.clone(), self.clock.clone(), self.calendar.clone(), config)
            .with_person_rule(self.registry.clone(), caller.clone())
    }

    /// Where an estate sits (street, serving firm) and its name; cached briefly.
    pub async fn place(&self, estate: EstateId) -> Result<(EstatePlace, String), EngineError> {
        let (place, e) = self.place_and_estate(estate).await?;
        Ok((place, e.name))
    }

    /// The estate's place and the estate itself, cached briefly (the estate also primes each
    /// call's registry cache, so a hook reading it costs no query).
    async fn place_and_estate(&self, estate: EstateId) -> Result<(EstatePlace, Estate), EngineError> {
        if let Some((p, e, at)) = self.places.read().unwrap_or_else(|p| p.into_inner()).get(&estate)
            && at.elapsed() < PLACE_TTL
        {
            return Ok((p.clone(), e.clone()));
        }
        let e = self.store.estate(estate).await?.ok_or(EngineError::NotFound { what: "estate", id: estate.0 })?;
        let firm = self.store.firm_serving(estate, self.clock.now().shanghai_date()).await?;
        let place = EstatePlace { estate_id: estate, street: e.street(), community: e.community.clone(), firm };
        self.places
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(estate, (place.clone(), e.clone(), Instant::now()));
        Ok((place, e))
    }

    /// Forgets cached estate places (after registry changes).
    pub fn forget_places(&self) {
        self.places.write().unwrap_or_else(|p| p.into_inner()).clear();
        self.reaches.write().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Asks [`access::authorize`] about `action` on `item` at the estate at `place`. Out of
    /// scope reads as "not found" for `what`/`id`, as if absent.
    fn authorize_at(
        &self,
        caller: &Caller,
        action: Action,
        item: &str,
        place: &EstatePlace,
        not_found: (&'static str, i64),
    ) -> Result<(), EngineError> {
        let target = Target { item: Some(item), place: Some(place), enabled: None };
        let absent = || EngineError::NotFound { what: not_found.0, id: not_found.1 };
        access::authorize(caller, action, target).map_err(|d| refused(d, absent, absent))
    }

    /// Checks the caller may read records of `item` somewhere: an item not assigned to them is
    /// unknown to them.
    fn check_item(&self, caller: &Caller, item: &str) -> Result<(), EngineError> {
        let target = Target { item: Some(item), ..Target::default() };
        let unknown = || EngineError::UnknownPlugin(item.to_owned());
        access::authorize(caller, Action::ReadRecords, target).map_err(|d| refused(d, unknown, unknown))
    }

    /// Checks the caller may do new work on `item` at the estate, and that the item is enabled there.
    async fn admit(&self, caller: &Caller, item: &str, estate: EstateId) -> Result<(EstatePlace, Estate), EngineError> {
        let (place, e) = self.place_and_estate(estate).await?;
        self.authorize_at(caller, Action::WriteRecords, item, &place, ("estate", estate.0))?;
        self.require_enabled(caller, item, &place, &e).await?;
        Ok((place, e))
    }

    /// Refuses new work on `item` at the estate `e` (at `place`) where the item is not enabled:
    /// the enablement decision goes through [`access::authorize`] like the rest of the access rules.
    async fn require_enabled(
        &self,
        caller: &Caller,
        item: &str,
        place: &EstatePlace,
        e: &Estate,
    ) -> Result<(), EngineError> {
        let decision = self.enablement.decide(&self.store, item, place).await?;
        let target = Target { item: Some(item), place: Some(place), enabled: Some(decision.enabled) };
        let absent = || EngineError::NotFound { what: "estate", id: e.id.0 };
        let disabled = || EngineError::Disabled { item: item.to_owned(), estate: e.id, estate_name: e.name.clone() };
        access::authorize(caller, Action::WriteRecords, target).map_err(|d| refused(d, absent, disabled))
    }

    /// Creates a record.
    pub async fn create(&self, caller: &Caller, req: CreateRequest) -> Result<RecordView, EngineError> {
        let handle = self.handle(&req.plugin)?;
        let manifest = handle.manifest();
        let kind = manifest
            .kind(&req.kind)
            .ok_or_else(|| EngineError::UnknownKind { plugin: req.plugin.clone(), kind: req.kind.clone() })?;
        let (place, estate) = self.admit(caller, &req.plugin, req.estate_id).await?;
        let parent = self.parent_of(&req, kind).await?;
        let today = self.clock.now().shanghai_date();
        let checked = check_object(&kind.fields, &req.data, Mode::Create, today).map_err(EngineError::Invalid)?;
        let ctx = self.context(caller, &req.plugin, Some(req.estate_id), place.firm);
        ctx.remember_estate(estate);
        self.resolve(&ctx, &req.plugin, req.estate_id, &checked.references).await?;
        let call = CreateCall {
            kind: req.kind.clone(),
            estate_id: req.estate_id,
            parent: parent.clone().map(context::to_record),
            data_json: Value::Object(checked.data.clone()).to_string(),
        };
        let outcome = self.watch(&handle, handle.on_create(&ctx, call).await).await?;
        let now = self.clock.now();
        if !outcome.refusal.is_empty() {
            self.write_refusal_alerts(&req.plugin, Some(req.estate_id), &outcome.alerts, now).await?;
            return Err(EngineError::Invalid(outcome.refusal));
        }
        let data = self.final_data(manifest, kind, outcome.data_json.as_deref(), checked.data)?;
        let state = match &outcome.state {
            Some(s) if kind.workflow.has_state(s) => s.clone(),
            Some(s) => {
                return Err(EngineError::PluginContract {
                    plugin: req.plugin.clone(),
                    detail: format!("create hook chose undeclared state `{s}` for `{}`", kind.id),
                });
            }
            None => kind.workflow.initial.clone(),
        };
        let mut batch = WriteBatch::default();
        batch.creates.push(NewRecord {
            plugin: req.plugin.clone(),
            kind: kind.id.clone(),
            estate_id: req.estate_id,
            parent: parent.as_ref().map(|p| ParentRef::Existing(p.id)),
            state,
            keys: index_keys(&kind.keys, &data),
            data_json: Value::Object(data).to_string(),
            at: now,
            actor: caller.name.clone(),
        });
        self.add_children(
            &mut batch,
            manifest,
            kind,
            ParentRef::InBatch(0),
            req.estate_id,
            &outcome,
            now,
            &caller.name,
        )?;
        for a in &outcome.alerts {
            batch.alerts.push(alert_row(
                &req.plugin,
                Some(AlertTarget::InBatch(0)),
                Some(req.estate_id),
                a,
                format!("{}/{}/{}", req.plugin, ctx_request(&ctx), a.key),
                now,
            ));
        }
        let first = batch.creates.first().map(|r| (r.state.clone(), r.data_json.clone()));
        audit_changes(&mut batch, None);
        let result = self.store.write(batch).await?;
        let (Some(id), Some((state, data_json))) = (result.created.first().copied(), first) else {
            return Err(EngineError::PluginContract {
                plugin: req.plugin.clone(),
                detail: "the store returned no id for the created record".into(),
            });
        };
        // What was written, as the store keeps it (records start at version 1).
        Ok(RecordView::from_stored(StoredRecord {
            id,
            plugin: req.plugin,
            kind: req.kind,
            estate_id: req.estate_id,
            parent_id: parent.map(|p| p.id),
            state,
            data_json,
            created_at: now,
            updated_at: now,
            state_entered_at: now,
            version: 1,
        }))
    }

    async fn parent_of(&self, req: &CreateRequest, kind: &RecordKind) -> Result<Option<StoredRecord>, EngineError> {
        match (&kind.parent, req.parent_id) {
            (None, None) => Ok(None),
            (None, Some(_)) => Err(EngineError::Invalid(vec![FieldViolation::new(
                "parent_id",
                "unexpected_parent",
                format!("`{}` 记录没有上级记录", kind.id),
                format!("records of kind `{}` have no parent", kind.id),
            )])),
            (Some(parent_kind), None) => Err(EngineError::Invalid(vec![FieldViolation::new(
                "parent_id",
                "required",
                format!("`{}` 记录必须指定上级 `{parent_kind}` 记录", kind.id),
                format!("records of kind `{}` need a parent `{parent_kind}` record", kind.id),
            )])),
            (Some(parent_kind), Some(pid)) => {
                let p = self.store.record(&req.plugin, pid).await?;
                match p {
                    Some(p) if &p.kind == parent_kind && p.estate_id == req.estate_id => Ok(Some(p)),
                    _ => Err(EngineError::Invalid(vec![FieldViolation::new(
                        "parent_id",
                        "not_found",
                        format!("本小区没有编号为 {pid} 的 `{parent_kind}` 记录"),
                        format!("no `{parent_kind}` record {pid} in estate {}", req.estate_id),
                    )])),
                }
            }
        }
    }

    /// Checks that referenced persons, houses and records exist (and houses and records belong
    /// to the estate).
    async fn resolve(
        &self,
        ctx: &CallContext,
        plugin: &str,
        estate: EstateId,
        refs: &[Reference],
    ) -> Result<(), EngineError> {
        let mut errors = Vec::new();
        for r in refs {
            match r {
                Reference::Person { field, id } => {
                    if ctx.person(jiayuan_domain::PersonId(*id)).await?.is_none() {
                        errors.push(FieldViolation::new(
                            field,
                            "not_found",
                            format!("字段 `{field}`：人员 {id} 不存在"),
                            format!("field `{field}`: person {id} does not exist"),
                        ));
                    }
                }
                Reference::House { field, id } => {
                    let h = ctx.house(jiayuan_domain::HouseId(*id)).await?;
                    if h.is_none_or(|h| h.estate_id != Some(estate)) {
                        errors.push(FieldViolation::new(
                            field,
                            "not_found",
                            format!("字段 `{field}`：本小区没有房屋 {id}"),
                            format!("field `{field}`: house {id} does not exist in estate {estate}"),
                        ));
                    }
                }
                Reference::Record { field, kind, id } => {
                    let rec = self.store.record(plugin, RecordId(*id)).await?;
                    if rec.is_none_or(|r| &r.kind != kind || r.estate_id != estate) {
                        errors.push(FieldViolation::new(
                            field,
                            "not_found",
                            format!("字段 `{field}`：本小区没有编号为 {id} 的 `{kind}` 记录"),
                            format!("field `{field}`: no `{kind}` record {id} in estate {estate}"),
                        ));
                    }
                }
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(EngineError::Invalid(errors)) }
    }

    /// The data to store: the hook's replacement (checked against the manifest, derived fields
    /// allowed) or the input.
    fn final_data(
        &self,
        manifest: &Manifest,
        kind: &RecordKind,
        replacement: Option<&str>,
        input: Map<String, Value>,
    ) -> Result<Map<String, Value>, EngineError> {
        let Some(text) = replacement else { return Ok(input) };
        let contract = |detail: String| EngineError::PluginContract { plugin: manifest.id.clone(), detail };
        let value: Value = serde_json::from_str(text).map_err(|e| contract(format!("data is not JSON: {e}")))?;
        let today = self.clock.now().shanghai_date();
        let checked = check_object(&kind.fields, &value, Mode::TransitionInput, today).map_err(|v| {
            contract(v.iter().map(|v| format!("{}: {}", v.field, v.message_en)).collect::<Vec<_>>().join("; "))
        })?;
        Ok(checked.data)
    }

    #[allow(clippy::too_many_arguments)]
    fn add_children(
        &self,
        batch: &mut WriteBatch,
        manifest: &Manifest,
        parent_kind: &RecordKind,
        parent: ParentRef,
        estate: EstateId,
        outcome: &Outcome,
        now: Timestamp,
        actor: &str,
    ) -> Result<(), EngineError> {
        let today = now.shanghai_date();
        for child in &outcome.children {
            let contract = |detail: String| EngineError::PluginContract { plugin: manifest.id.clone(), detail };
            let kind = manifest
                .kind(&child.kind)
                .ok_or_else(|| contract(format!("child kind `{}` is undeclared", child.kind)))?;
            if kind.parent.as_deref() != Some(parent_kind.id.as_str()) {
                return Err(contract(format!("`{}` is not a child kind of `{}`", kind.id, parent_kind.id)));
            }
            let value: Value =
                serde_json::from_str(&child.data_json).map_err(|e| contract(format!("child data is not JSON: {e}")))?;
            let checked = check_object(&kind.fields, &value, Mode::TransitionInput, today).map_err(|v| {
                contract(v.iter().map(|v| format!("{}: {}", v.field, v.message_en)).collect::<Vec<_>>().join("; "))
            })?;
            batch.creates.push(NewRecord {
                plugin: manifest.id.clone(),
                kind: kind.id.clone(),
                estate_id: estate,
                parent: Some(match parent {
                    ParentRef::Existing(id) => ParentRef::Existing(id),
                    ParentRef::InBatch(i) => ParentRef::InBatch(i),
                }),
                state: kind.workflow.initial.clone(),
                keys: index_keys(&kind.keys, &checked.data),
                data_json: Value::Object(checked.data).to_string(),
                at: now,
                actor: actor.to_owned(),
            });
        }
        Ok(())
    }

    async fn write_refusal_alerts(
        &self,
        plugin: &str,
        estate: Option<EstateId>,
        alerts: &[AlertDraft],
        now: Timestamp,
    ) -> Result<(), EngineError> {
        if alerts.is_empty() {
            return Ok(());
        }
        // One alert per (estate, key) however often the same input is refused.
        let place = estate.map_or_else(|| "district".to_owned(), |e| e.to_string());
        let rows = alerts
            .iter()
            .map(|a| alert_row(plugin, None, estate, a, format!("{plugin}/refused/{place}/{}", a.key), now))
            .collect();
        self.store.write(WriteBatch { alerts: rows, ..WriteBatch::default() }).await?;
        Ok(())
    }

    /// Fires a transition.
    pub async fn transition(&self, caller: &Caller, req: TransitionRequest) -> Result<RecordView, EngineError> {
        let handle = self.handle(&req.plugin)?;
        let manifest = handle.manifest();
        let record = self
            .store
            .record(&req.plugin, req.id)
            .await?
            .ok_or(EngineError::NotFound { what: "record", id: req.id.0 })?;
        // Scope first (404, as if absent), then the transition's actors (403), and only then
        // enablement (409): the order of `access::authorize`, whose role check the manifest's
        // actors refine.
        let (place, estate) = self.place_and_estate(record.estate_id).await.map_err(|e| match e {
            EngineError::NotFound { what: "estate", .. } => EngineError::NotFound { what: "record", id: req.id.0 },
            other => other,
        })?;
        self.authorize_at(caller, Action::WriteRecords, &req.plugin, &place, ("record", req.id.0))?;
        let kind = manifest
            .kind(&record.kind)
            .ok_or_else(|| EngineError::UnknownKind { plugin: req.plugin.clone(), kind: record.kind.clone() })?;
        let Some(t) = kind.workflow.transition(&req.transition) else {
            let known = kind.workflow.transitions.iter().map(|t| t.id.as_str()).collect::<Vec<_>>().join(", ");
            return Err(EngineError::Invalid(vec![FieldViolation::new(
                "transition",
                "unknown_transition",
                format!("`{}` 没有名为 `{}` 的操作；可用：{known}", kind.id, req.transition),
                format!("`{}` has no transition `{}`; known: {known}", kind.id, req.transition),
            )]));
        };
        if !t.from.contains(&record.state) {
            return Err(EngineError::TransitionNotAllowed {
                kind: kind.id.clone(),
                id: record.id,
                transition: t.id.clone(),
                state: record.state.clone(),
                allowed: t.from.join(", "),
            });
        }
        if !caller.actor().is_some_and(|a| t.actors.contains(&a)) {
            return Err(EngineError::Forbidden {
                who: caller_role_name(caller),
                what: format!("fire transition `{}`", t.id),
            });
        }
        self.require_enabled(caller, &req.plugin, &place, &estate).await?;
        if let Some(v) = req.expected_version
            && v != record.version
        {
            return Err(EngineError::Conflict(format!(
                "record {} is at version {}, not {v}; reload and retry",
                record.id, record.version
            )));
        }
        let today = self.clock.now().shanghai_date();
        let input = check_object(&t.input, &req.input, Mode::TransitionInput, today).map_err(EngineError::Invalid)?;
        let ctx = self.context(caller, &req.plugin, Some(record.estate_id), place.firm);
        ctx.remember_estate(estate);
        self.resolve(&ctx, &req.plugin, record.estate_id, &input.references).await?;
        let call = TransitionCall {
            record: context::to_record(record.clone()),
            transition: t.id.clone(),
            input_json: Value::Object(input.data.clone()).to_string(),
        };
        let outcome = self.watch(&handle, handle.on_transition(&ctx, call).await).await?;
        let now = self.clock.now();
        if !outcome.refusal.is_empty() {
            self.write_refusal_alerts(&req.plugin, Some(record.estate_id), &outcome.alerts, now).await?;
            return Err(EngineError::Invalid(outcome.refusal));
        }
        let mut merged: Map<String, Value> = serde_json::from_str(&record.data_json).unwrap_or_default();
        merged.extend(input.data);
        let data = match outcome.data_json.as_deref() {
            Some(text) => self.final_data(manifest, kind, Some(text), Map::new())?,
            None => merged,
        };
        let mut batch = WriteBatch::default();
        batch.updates.push(RecordUpdate {
            plugin: req.plugin.clone(),
            id: record.id,
            expected_version: record.version,
            action: t.id.clone(),
            new_state: t.to.clone(),
            keys: index_keys(&kind.keys, &data),
            data_json: Value::Object(data).to_string(),
            at: now,
            actor: caller.name.clone(),
        });
        self.add_children(
            &mut batch,
            manifest,
            kind,
            ParentRef::Existing(record.id),
            record.estate_id,
            &outcome,
            now,
            &caller.name,
        )?;
        for a in &outcome.alerts {
            batch.alerts.push(alert_row(
                &req.plugin,
                Some(AlertTarget::Existing(record.id)),
                Some(record.estate_id),
                a,
                format!("{}/{}/{}", req.plugin, record.id, a.key),
                now,
            ));
        }
        let update = batch.updates.first().map(|u| (u.new_state.clone(), u.data_json.clone()));
        audit_changes(&mut batch, Some((&record.state, record.estate_id)));
        self.store.write(batch).await?;
        let Some((state, data_json)) = update else {
            return Err(EngineError::NotFound { what: "record", id: req.id.0 });
        };
        // What was written: the store bumps the version by one on every update.
        let state_entered_at = if state == record.state { record.state_entered_at } else { now };
        Ok(RecordView::from_stored(StoredRecord {
            state,
            data_json,
            updated_at: now,
            state_entered_at,
            version: record.version + 1,
            ..record
        }))
    }

    /// One record. Records of disabled items stay readable.
    pub async fn get(&self, caller: &Caller, plugin: &str, id: RecordId) -> Result<RecordView, EngineError> {
        self.handle(plugin)?;
        let r = self.store.record(plugin, id).await?.ok_or(EngineError::NotFound { what: "record", id: id.0 })?;
        let (place, _) = self.place(r.estate_id).await?;
        self.authorize_at(caller, Action::ReadRecords, plugin, &place, ("record", id.0))?;
        Ok(RecordView::from_stored(r))
    }

    /// A record's event history, oldest first.
    pub async fn history(&self, caller: &Caller, plugin: &str, id: RecordId) -> Result<Vec<StoredEvent>, EngineError> {
        self.get(caller, plugin, id).await?;
        Ok(self.store.events(plugin, id).await?)
    }

    /// The estates a caller reaches (`None`: every estate). Street, community and firm reaches
    /// are cached for as long as estate places are (a new assignment shows within that time).
    async fn estates_in_reach(&self, caller: &Caller) -> Result<Option<Vec<EstateId>>, EngineError> {
        match &caller.reach {
            Reach::District => return Ok(None),
            Reach::Estates(ids) => return Ok(Some(ids.clone())),
            Reach::Division(_) | Reach::Firm(_) => {}
        }
        if let Some((ids, at)) = self.reaches.read().unwrap_or_else(|p| p.into_inner()).get(&caller.reach)
            && at.elapsed() < PLACE_TTL
        {
            return Ok(Some(ids.clone()));
        }
        let ids = self.reach_estates(&caller.reach).await?;
        if let Some(ids) = &ids {
            self.reaches
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(caller.reach.clone(), (ids.clone(), Instant::now()));
        }
        Ok(ids)
    }

    async fn reach_estates(&self, reach: &Reach) -> Result<Option<Vec<EstateId>>, EngineError> {
        Ok(match reach {
            Reach::District => None,
            Reach::Estates(ids) => Some(ids.clone()),
            Reach::Division(code) => Some(
                self.store.estates().await?.into_iter().filter(|e| e.community.is_within(code)).map(|e| e.id).collect(),
            ),
            Reach::Firm(f) => {
                let today = self.clock.now().shanghai_date();
                let mut ids: Vec<EstateId> = self
                    .store
                    .serving_firms(today)
                    .await?
                    .into_iter()
                    .filter(|(_, firm)| firm == f)
                    .map(|(estate, _)| estate)
                    .collect();
                ids.sort();
                Some(ids)
            }
        })
    }

    /// Lists records of a plugin, a page at a time.
    pub async fn list(&self, caller: &Caller, plugin: &str, req: ListRequest) -> Result<Page, EngineError> {
        self.handle(plugin)?;
        self.check_item(caller, plugin)?;
        let limit = req.limit.unwrap_or(50).clamp(1, 200);
        let reach = self.estates_in_reach(caller).await?;
        let estate_ids = match (reach, req.estate_id) {
            (None, None) => None,
            (None, Some(e)) => Some(vec![e]),
            (Some(ids), None) => Some(ids),
            (Some(ids), Some(e)) => Some(if ids.contains(&e) { vec![e] } else { Vec::new() }),
        };
        let rows = self
            .store
            .records(&RecordFilter {
                plugin: plugin.to_owned(),
                kind: req.kind,
                estate_ids,
                states: req.states,
                key: req.key,
                parent_id: req.parent_id,
                after: None,
                order: req.order,
                after_position: req.after,
                limit: limit + 1,
            })
            .await?;
        let more = rows.len() > limit as usize;
        let rows: Vec<StoredRecord> = rows.into_iter().take(limit as usize).collect();
        let next = if more { rows.last().map(|r| RecordPosition { id: r.id, updated_at: r.updated_at }) } else { None };
        Ok(Page { records: rows.into_iter().map(RecordView::from_stored).collect(), next })
    }

    /// Alerts raised for a plugin's records within the caller's reach.
    pub async fn alerts(
        &self,
        caller: &Caller,
        plugin: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredAlert>, EngineError> {
        if let Some(p) = plugin {
            self.check_item(caller, p)?;
        }
        let estate_ids = self.estates_in_reach(caller).await?;
        Ok(self
            .store
            .alerts(&AlertFilter {
                plugin: plugin.map(str::to_owned),
                plugins: caller.items.clone(),
                estate_ids,
                record_id: None,
                after: None,
                limit: limit.clamp(1, 500),
            })
            .await?)
    }

    /// Computes a plugin's KPIs for one estate over a period.
    pub async fn kpis(
        &self,
        caller: &Caller,
        plugin: &str,
        estate: EstateId,
        from: jiayuan_domain::Date,
        to: jiayuan_domain::Date,
    ) -> Result<Vec<KpiValue>, EngineError> {
        let handle = self.handle(plugin)?;
        let (place, _) = self.place(estate).await?;
        self.authorize_at(caller, Action::ReadRecords, plugin, &place, ("estate", estate.0))?;
        let households = self.store.estate(estate).await?.map(|e| e.households).unwrap_or(0);
        let ctx = self.context(caller, plugin, Some(estate), place.firm);
        let call = KpiCall { estate_id: estate, from, to, households };
        Ok(self.watch(&handle, handle.kpis(&ctx, call).await).await?)
    }

    /// Passes a plugin call's result through; when the call was a panic that put the plugin into
    /// quarantine, raises a critical alert for the district office (once per quarantine).
    async fn watch<T>(&self, handle: &PluginHandle, result: Result<T, CallError>) -> Result<T, CallError> {
        if let Err(CallError::Panicked { .. }) = &result
            && let Some(q) = handle.quarantine()
        {
            let plugin = handle.id();
            let alert = NewAlert {
                plugin: plugin.to_owned(),
                record: None,
                estate_id: None,
                rule: "plugin_quarantined".into(),
                dedupe_key: format!("{plugin}/quarantined/{}", q.since.0),
                severity: severity_text(jiayuan_plugin_api::Severity::Critical).to_owned(),
                message_zh: format!("服务事项插件 `{plugin}` 多次崩溃，已隔离至重启：{}", q.reason),
                message_en: format!(
                    "service-item plugin `{plugin}` panicked repeatedly and is quarantined until restart: {}",
                    q.reason
                ),
                due_at: None,
                at: self.clock.now(),
            };
            let batch = WriteBatch { alerts: vec![alert], ..WriteBatch::default() };
            if let Err(e) = self.store.write(batch).await {
                tracing::error!(plugin, error = %e, "could not record the quarantine alert");
            }
        }
        result
    }

    /// Fires a transition as the host itself (deadline rules). Used by the scheduler.
    pub(crate) async fn system_transition(
        &self,
        record: &StoredRecord,
        transition: &str,
    ) -> Result<RecordView, EngineError> {
        self.transition(
            &Caller::system("scheduler"),
            TransitionRequest {
                plugin: record.plugin.clone(),
                id: record.id,
                transition: transition.to_owned(),
                input: Value::Object(Map::new()),
                expected_version: Some(record.version),
            },
        )
        .await
    }
}

/// Appends one audit event per create (each child too) and per update of `batch`, written in the
/// batch's transaction. Ids, kinds, states and transition ids only — never record data.
/// `updated` is the updated record's state as read (the store checks the version, so it is the
/// state the update leaves) and its estate.
fn audit_changes(batch: &mut WriteBatch, updated: Option<(&str, EstateId)>) {
    let mut rows = Vec::with_capacity(batch.creates.len() + batch.updates.len());
    for (i, c) in batch.creates.iter().enumerate() {
        let parent = match c.parent {
            Some(ParentRef::Existing(id)) => json!({ "existing": id.0 }),
            Some(ParentRef::InBatch(j)) => json!({ "in_batch": j }),
            None => Value::Null,
        };
        rows.push(NewAudit {
            at: c.at,
            actor: c.actor.clone(),
            action: "record.create".into(),
            target: AuditTarget::InBatch(i),
            estate_id: Some(c.estate_id),
            detail_json: json!({ "kind": c.kind, "state": c.state, "parent": parent }).to_string(),
        });
    }
    for u in &batch.updates {
        rows.push(NewAudit {
            at: u.at,
            actor: u.actor.clone(),
            action: format!("record.transition:{}", u.action),
            target: AuditTarget::Object(format!("{}/record/{}", u.plugin, u.id.0)),
            estate_id: updated.map(|(_, e)| e),
            detail_json: json!({
                "transition": u.action,
                "from": updated.map(|(s, _)| s),
                "to": u.new_state,
                "version": u.expected_version + 1,
            })
            .to_string(),
        });
    }
    batch.audit.extend(rows);
}

/// The store's index keys of a checked data object.
fn index_keys(keys: &[KeyDef], data: &Map<String, Value>) -> Vec<jiayuan_store::IndexKey> {
    jiayuan_schema::index_entries(keys, data)
        .into_iter()
        .map(|e| jiayuan_store::IndexKey { field: e.field, value: e.value, unique: e.unique })
        .collect()
}

fn alert_row(
    plugin: &str,
    record: Option<AlertTarget>,
    estate: Option<EstateId>,
    a: &AlertDraft,
    dedupe_key: String,
    at: Timestamp,
) -> NewAlert {
    NewAlert {
        plugin: plugin.to_owned(),
        record,
        estate_id: estate,
        rule: a.key.clone(),
        dedupe_key,
        severity: severity_text(a.severity).to_owned(),
        message_zh: a.message.zh.clone(),
        message_en: a.message.en.clone(),
        due_at: None,
        at,
    }
}

/// The stored text of a severity.
pub(crate) fn severity_text(s: jiayuan_plugin_api::Severity) -> &'static str {
    use jiayuan_plugin_api::Severity;
    match s {
        Severity::Info => "info",
        Severity::Reminder => "reminder",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

fn ctx_request(ctx: &CallContext) -> String {
    use jiayuan_plugin_api::HostContext;
    ctx.scope().request_id.clone()
}

/// A process-unique request id: time and a counter.
fn request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0);
    format!("{t:x}-{n:x}-{:x}", std::process::id())
}

/// What a refusal of [`access::authorize`] means to the engine: a role that may never act is
/// [`EngineError::Forbidden`]; out of scope and disabled are what the caller says they read as.
fn refused(
    d: Denied,
    out_of_scope: impl FnOnce() -> EngineError,
    disabled: impl FnOnce() -> EngineError,
) -> EngineError {
    match d {
        Denied::Forbidden { role, action } => {
            EngineError::Forbidden { who: role.to_string(), what: format!("{action:?}") }
        }
        Denied::OutOfScope => out_of_scope(),
        Denied::Disabled => disabled(),
    }
}

/// The role name of a caller for error texts (`system` for the host).
fn caller_role_name(caller: &Caller) -> String {
    caller.role.map_or_else(|| "system".to_owned(), |r| r.to_string())
}
