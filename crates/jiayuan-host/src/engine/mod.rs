//! The record engine: create, transition and query the records of every plugin.
//!
//! One path for every service item. A create runs: scope → enablement → parent → type checks
//! ([`jiayuan_schema`], over the fields the caller's audience may see) → references → the
//! plugin's hook (under guard and timeout) → one store transaction holding the record, its keys,
//! its reference index rows, its event, its children, its alerts and its audit rows. Nothing is
//! written unless every step passed; a refusal that carries alerts writes only the alerts.
//! Every answer leaves through the one projection ([`jiayuan_schema::projection`]): what the
//! caller's audience may not see is absent, personal values masked.
//!
//! The engine is split by concern:
//! - `places`: where records live (estates and grid cells), reach, enablement, admission;
//! - `create`: new records, their times (occurred / recorded) and references;
//! - `transition`: transitions (actors, guards, moves) and assignment;
//! - `outcome`: applying a hook's outcome (final data, children, alerts, audit, index rows);
//! - `queries`: get, unmask, history, list, inbox, alerts, KPIs, the reference index;
//! - `view`: the record and event views the API answers with, through the projection;
//! - `context`: the `HostContext` of one plugin call.

pub(crate) mod context;
mod create;
mod outcome;
mod places;
mod queries;
mod transition;
mod view;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use serde_json::Value;

use jiayuan_domain::calendar::WorkingCalendar;
use jiayuan_domain::{EstateId, FirmId, Place, RecordId, Timestamp};
use jiayuan_plugin_api::{FieldViolation, Scope};
use jiayuan_store::{RecordOrder, RecordPosition, Store, StoreError};

use crate::clock::HostClock;
use crate::enablement::{Enablement, PlaceInfo};
use crate::plugins::{CallError, PluginHandle, PluginRegistry};
use context::CallContext;

pub use crate::access::{Caller, Reach};
pub use jiayuan_store::{RefKind, ReferringRecord};
pub use outcome::record_ref_id;
pub(crate) use outcome::severity_text;
pub use places::PlaceName;
pub use view::{EventView, RecordView};

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
    /// The record, estate, grid cell or parent does not exist, or lies outside the caller's reach.
    #[error("{what} {id} not found")]
    NotFound {
        /// What was looked for.
        what: &'static str,
        /// Its id (a record or estate id; a grid code).
        id: String,
    },
    /// The item is disabled where the work would happen.
    #[error("service item `{item}` is not enabled at {place} ({place_name}); existing records stay readable")]
    Disabled {
        /// Plugin id.
        item: String,
        /// The place.
        place: Place,
        /// The estate's or grid cell's name.
        place_name: String,
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
    /// Where the record will sit (an estate, or a grid cell for kinds that allow it).
    pub place: Place,
    /// Parent record, for child kinds (the child sits at the parent's place).
    pub parent_id: Option<RecordId>,
    /// The data object.
    pub data: Value,
    /// When it happened, as the caller declares it (default: now).
    pub occurred_at: Option<Timestamp>,
    /// Why an entry is back-dated beyond the kind's bound.
    pub backdate_reason: Option<String>,
}

impl CreateRequest {
    /// A request for a record of `kind` at `place`, happening now.
    pub fn new(plugin: &str, kind: &str, place: Place, data: Value) -> CreateRequest {
        CreateRequest {
            plugin: plugin.to_owned(),
            kind: kind.to_owned(),
            place,
            parent_id: None,
            data,
            occurred_at: None,
            backdate_reason: None,
        }
    }

    /// A request for a child of `parent`.
    pub fn child_of(mut self, parent: RecordId) -> CreateRequest {
        self.parent_id = Some(parent);
        self
    }
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
    /// Where the record moves to (only for a transition that moves it).
    pub move_to: Option<Place>,
    /// When it happened, as the caller declares it (default: now).
    pub occurred_at: Option<Timestamp>,
    /// Why an entry is back-dated beyond the kind's bound.
    pub backdate_reason: Option<String>,
}

impl TransitionRequest {
    /// A request to fire `transition` on record `id` now, with `input`.
    pub fn new(plugin: &str, id: RecordId, transition: &str, input: Value) -> TransitionRequest {
        TransitionRequest {
            plugin: plugin.to_owned(),
            id,
            transition: transition.to_owned(),
            input,
            expected_version: None,
            move_to: None,
            occurred_at: None,
            backdate_reason: None,
        }
    }
}

/// A page of records.
#[derive(Debug, Clone)]
pub struct Page {
    /// The records, in the requested order.
    pub records: Vec<RecordView>,
    /// Where this page ended, to ask for the next one; `None` on the last page.
    pub next: Option<RecordPosition>,
}

/// Filters for listing records.
#[derive(Debug, Clone, Default)]
pub struct ListRequest {
    /// Record kind (optional).
    pub kind: Option<String>,
    /// Only this estate.
    pub estate_id: Option<EstateId>,
    /// Only this grid cell.
    pub grid_cell: Option<String>,
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
    /// Where each place sits (street, community, serving firm) and its name, cached briefly.
    places: RwLock<HashMap<Place, (PlaceInfo, PlaceName, Instant)>>,
    /// The places of a street, community or firm reach, cached like `places`.
    reaches: RwLock<HashMap<Reach, (jiayuan_store::PlaceSet, Instant)>>,
    /// The registry service (administration, and which persons a caller reaches).
    registry: crate::registry::Registry,
}

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

    /// The context of one plugin call for `caller` at `place`: the persons it can read are those
    /// the caller reaches (the registry's one rule), as if the others did not exist, and only
    /// with the fields the manifest declares it reads; the plugin learns the caller's audience.
    fn context(
        &self,
        caller: &Caller,
        handle: &PluginHandle,
        place: Option<Place>,
        firm: Option<FirmId>,
    ) -> CallContext {
        let plugin = handle.id();
        let config = self.plugin_config.get(plugin).cloned().unwrap_or_else(|| Arc::from("{}"));
        let scope = Scope::new(place, firm, caller.audience.clone(), request_id());
        CallContext::new(plugin, scope, self.store.clone(), self.clock.clone(), self.calendar.clone(), config)
            .with_person_rule(self.registry.clone(), caller.clone())
            .with_person_reads(handle.manifest().registry_reads.clone())
    }

    /// Passes a plugin call's result through; when the call was a panic that put the plugin into
    /// quarantine, raises a critical alert for the district office (once per quarantine).
    async fn watch<T>(&self, handle: &PluginHandle, result: Result<T, CallError>) -> Result<T, CallError> {
        if let Err(CallError::Panicked { .. }) = &result
            && let Some(q) = handle.quarantine()
        {
            let plugin = handle.id();
            let alert = jiayuan_store::NewAlert {
                plugin: plugin.to_owned(),
                record: None,
                estate_id: None,
                grid_cell: None,
                rule: "plugin_quarantined".into(),
                dedupe_key: format!("{plugin}/quarantined/{}", q.since.0),
                severity: outcome::severity_text(jiayuan_plugin_api::Severity::Critical).to_owned(),
                message_zh: format!("服务事项插件 `{plugin}` 多次崩溃，已隔离至重启：{}", q.reason),
                message_en: format!(
                    "service-item plugin `{plugin}` panicked repeatedly and is quarantined until restart: {}",
                    q.reason
                ),
                due_at: None,
                at: self.clock.now(),
            };
            let batch = jiayuan_store::WriteBatch { alerts: vec![alert], ..jiayuan_store::WriteBatch::default() };
            if let Err(e) = self.store.write(batch).await {
                tracing::error!(plugin, error = %e, "could not record the quarantine alert");
            }
        }
        result
    }
}

/// The viewer `caller` is when reading masked data (for answers made outside the engine, such as
/// exports, that must project exactly as the engine does).
pub fn viewer_of(caller: &Caller) -> jiayuan_schema::projection::Viewer<'_> {
    view::viewer(caller, false)
}

/// A process-unique request id: time and a counter.
fn request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0);
    format!("{t:x}-{n:x}-{:x}", std::process::id())
}

/// What a refusal of [`crate::access::authorize`] means to the engine: a role that may never act
/// is [`EngineError::Forbidden`]; out of scope and disabled are what the caller says they read as.
fn refused(
    d: crate::access::Denied,
    out_of_scope: impl FnOnce() -> EngineError,
    disabled: impl FnOnce() -> EngineError,
) -> EngineError {
    use crate::access::Denied;
    match d {
        Denied::Forbidden { role, action } => {
            EngineError::Forbidden { who: role.to_string(), what: format!("{action:?}") }
        }
        Denied::OutOfScope => out_of_scope(),
        Denied::Disabled => disabled(),
    }
}

/// The audience name of a caller for error texts (`system` for the host).
fn caller_audience_name(caller: &Caller) -> String {
    caller.audience.as_ref().map_or_else(|| "system".to_owned(), ToString::to_string)
}
