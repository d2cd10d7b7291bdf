//! [`TestHost`]: an in-memory host for one plugin, driving it the way the real host does.
//!
//! It keeps records, the registry (persons, houses, estates), a settable clock with a working-day
//! calendar, captured log lines, alerts and the plugin's config, and it runs the generic part of
//! every call itself: type checks, workflow and actor checks, unique keys, deadline rules. The
//! plugin sees only `&dyn HostContext`, exactly as under the real host.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use serde_json::{Map, Value};

use jiayuan_domain::{
    CalendarEntry, Date, DayKind, Estate, EstateId, FirmId, House, HouseId, Person, PersonId, Place, RecordId,
    Timestamp, WorkingCalendar,
};
use jiayuan_plugin_api::{
    Actor, AlertDraft, Audience, ChildDraft, Clock, CreateCall, DeadlineAction, FieldViolation, HostContext, KeyDef,
    KpiCall, KpiValue, Label, LogLevel, Manifest, Outcome, PersonFacts, PluginError, Record, RecordKind, RecordQuery,
    RecordReader, RegistryReader, Scope, ServicePlugin, Severity, TransitionCall,
};
use jiayuan_schema::guard::{Firer, Subject, may_fire};
use jiayuan_schema::projection::{Projected, Viewer, project, visible_fields};
use jiayuan_schema::{Checked, Mode, Reference, check_object};

use crate::fixtures::{DemoRegistry, at, date};

/// Where a fresh [`TestHost`]'s clock stands: Monday 2026-03-02, 09:00 in Shanghai.
pub fn default_now() -> Timestamp {
    at(date(2026, 3, 2), 9, 0)
}

/// The most records one query returns unless [`TestHost::set_query_cap`] says otherwise (the
/// real host's cap). A query's `limit` is clamped to `1..=cap`, so a limit of 0 returns one record.
pub const DEFAULT_QUERY_CAP: u32 = 1000;

const DAY_MS: i64 = 86_400_000;

/// A clock that moves only when told, with a working-day calendar ([`WorkingCalendar`], as in
/// the host): Monday to Friday unless told otherwise with [`TestClock::set_calendar`],
/// [`TestClock::add_holiday`] and [`TestClock::add_make_up_workday`].
#[derive(Debug)]
pub struct TestClock {
    now: AtomicI64,
    calendar: Mutex<WorkingCalendar>,
}

impl TestClock {
    /// A clock standing at `now`, with a calendar of weekends only.
    pub fn new(now: Timestamp) -> TestClock {
        TestClock { now: AtomicI64::new(now.0), calendar: Mutex::new(WorkingCalendar::default()) }
    }

    /// Sets the instant.
    pub fn set_now(&self, now: Timestamp) {
        self.now.store(now.0, Ordering::SeqCst);
    }

    /// Moves to 09:00 Shanghai time on `day`.
    pub fn set_today(&self, day: Date) {
        self.set_now(at(day, 9, 0));
    }

    /// Moves forward (or back) by `hours`.
    pub fn advance_hours(&self, hours: i64) {
        self.now.fetch_add(hours * 3_600_000, Ordering::SeqCst);
    }

    /// Moves forward (or back) by `days` calendar days.
    pub fn advance_days(&self, days: i32) {
        self.now.fetch_add(i64::from(days) * DAY_MS, Ordering::SeqCst);
    }

    /// Replaces the holiday calendar (e.g. `WorkingCalendar::new(jiayuan_domain::china_2025())`).
    pub fn set_calendar(&self, calendar: WorkingCalendar) {
        *self.calendar.lock().unwrap_or_else(PoisonError::into_inner) = calendar;
    }

    /// Declares `day` a public holiday (no work even on a weekday).
    pub fn add_holiday(&self, day: Date) {
        self.list(day, DayKind::Holiday);
    }

    /// Declares `day` a make-up workday (调休: work on a weekend). Panics unless `day` is a
    /// Saturday or Sunday, which the calendar requires.
    pub fn add_make_up_workday(&self, day: Date) {
        self.list(day, DayKind::MakeUpWorkday);
    }

    fn list(&self, date: Date, kind: DayKind) {
        let mut calendar = self.calendar.lock().unwrap_or_else(PoisonError::into_inner);
        let mut entries: Vec<CalendarEntry> = calendar.entries().filter(|e| e.date != date).cloned().collect();
        entries.push(CalendarEntry { date, kind, name: "测试".to_owned() });
        *calendar = WorkingCalendar::new(entries).unwrap_or_else(|e| panic!("test calendar: {e}"));
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.now.load(Ordering::SeqCst))
    }

    fn is_working_day(&self, day: Date) -> bool {
        self.calendar.lock().unwrap_or_else(PoisonError::into_inner).is_working_day(day)
    }

    fn add_working_days(&self, day: Date, n: i32) -> Date {
        self.calendar.lock().unwrap_or_else(PoisonError::into_inner).add_working_days(day, n)
    }
}

/// Why the host did not complete a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostError {
    /// The host's own checks refused the input before any hook ran (type checks, missing
    /// references): HTTP 422.
    Rejected(Vec<FieldViolation>),
    /// The plugin refused the input: [`PluginError::Invalid`], or an [`Outcome`] with `refusal`
    /// set, whose alerts were written (and are repeated here). Nothing else was written.
    Refused {
        /// Why.
        violations: Vec<FieldViolation>,
        /// The alerts the refusal raised.
        alerts: Vec<AlertDraft>,
    },
    /// The transition does not exist or does not fire from the record's state.
    Workflow(String),
    /// The actor may not fire the transition.
    Forbidden(String),
    /// A unique key would be shared by two live records.
    Conflict(String),
    /// A record, estate or parent that the call names does not exist (or lies out of scope).
    NotFound(String),
    /// The plugin failed with an error other than [`PluginError::Invalid`].
    Plugin(PluginError),
    /// The plugin broke the contract: an undeclared state, data that does not match its own
    /// manifest, a child of the wrong kind, an undeclared KPI…
    Contract(String),
}

impl HostError {
    /// The field violations of a rejection or refusal (empty for other errors).
    pub fn violations(&self) -> &[FieldViolation] {
        match self {
            HostError::Rejected(v) | HostError::Refused { violations: v, .. } => v,
            _ => &[],
        }
    }

    /// Whether a rejection or refusal names `field` with `code`.
    pub fn has_violation(&self, field: &str, code: &str) -> bool {
        self.violations().iter().any(|v| v.field == field && v.code == code)
    }

    /// The alerts a refusal raised (empty for other errors).
    pub fn alerts(&self) -> &[AlertDraft] {
        match self {
            HostError::Refused { alerts, .. } => alerts,
            _ => &[],
        }
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[FieldViolation]| {
            v.iter().map(|v| format!("{}: {} ({})", v.field, v.message_en, v.code)).collect::<Vec<_>>().join("; ")
        };
        match self {
            HostError::Rejected(v) => write!(f, "rejected by the host's checks: {}", list(v)),
            HostError::Refused { violations, alerts } => {
                write!(f, "refused by the plugin: {}", list(violations))?;
                if !alerts.is_empty() {
                    let keys: Vec<_> = alerts.iter().map(|a| a.key.as_str()).collect();
                    write!(f, " (alerts raised: {})", keys.join(", "))?;
                }
                Ok(())
            }
            HostError::Workflow(s) => write!(f, "workflow: {s}"),
            HostError::Forbidden(s) => write!(f, "forbidden: {s}"),
            HostError::Conflict(s) => write!(f, "conflict: {s}"),
            HostError::NotFound(s) => write!(f, "not found: {s}"),
            HostError::Plugin(e) => write!(f, "plugin error: {e}"),
            HostError::Contract(s) => write!(f, "plugin broke the contract: {s}"),
        }
    }
}

impl std::error::Error for HostError {}

/// What raised an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertSource {
    /// A hook's accepted outcome.
    Hook,
    /// A hook's refusal (the record was not written).
    Refusal,
    /// A deadline rule of the manifest, due at `due`.
    Deadline {
        /// The rule's id.
        rule: String,
        /// The due instant.
        due: Timestamp,
    },
}

/// An alert the host wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaisedAlert {
    /// The record it concerns (`None` for a refused create).
    pub record_id: Option<RecordId>,
    /// The place.
    pub place: Place,
    /// The record kind.
    pub kind: String,
    /// The hook's deduplication key, or the deadline rule's id.
    pub key: String,
    /// Severity.
    pub severity: Severity,
    /// Text.
    pub message: Label,
    /// When it was raised.
    pub raised_at: Timestamp,
    /// What raised it.
    pub source: AlertSource,
}

/// A line the plugin logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Level.
    pub level: LogLevel,
    /// Message.
    pub message: String,
    /// Structured fields.
    pub fields: Vec<(String, String)>,
    /// The call's request id.
    pub request_id: String,
}

/// One deadline the host acted on in [`TestHost::run_deadlines`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiredDeadline {
    /// The rule's id.
    pub rule: String,
    /// The record.
    pub record_id: RecordId,
    /// When it was due.
    pub due: Timestamp,
    /// Whether the action succeeded (a transition may be refused by the plugin).
    pub result: Result<(), HostError>,
}

/// Who calls, as [`TestHost`] plays it: an audience, an account and (for agency officers) a unit.
/// The default is a firm account `tester`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCaller {
    /// The caller's audience.
    pub audience: Audience,
    /// The account's login (recorded as a record's creator; guards compare it).
    pub account: String,
    /// The agency unit of an agency officer.
    pub agency_unit: Option<i64>,
}

impl TestCaller {
    /// A caller of `audience` with login `account`.
    pub fn new(audience: Audience, account: &str) -> TestCaller {
        TestCaller { audience, account: account.to_owned(), agency_unit: None }
    }

    /// An officer of agency unit `unit`, of agency kind `kind`.
    pub fn officer(kind: &str, account: &str, unit: i64) -> TestCaller {
        TestCaller { audience: Audience::agency(kind), account: account.to_owned(), agency_unit: Some(unit) }
    }
}

impl Default for TestCaller {
    fn default() -> TestCaller {
        TestCaller::new(Audience::Firm, "tester")
    }
}

/// What the host keeps of a record beyond what the plugin sees.
#[derive(Debug, Clone, Default)]
struct Meta {
    created_by: String,
    assignee: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    records: BTreeMap<RecordId, Record>,
    meta: BTreeMap<RecordId, Meta>,
    caller: TestCaller,
    next_id: i64,
    persons: BTreeMap<PersonId, Person>,
    houses: BTreeMap<HouseId, House>,
    estates: BTreeMap<EstateId, Estate>,
    firms: BTreeMap<EstateId, FirmId>,
    alerts: Vec<RaisedAlert>,
    logs: Vec<LogLine>,
    fired: BTreeSet<(RecordId, String, Timestamp)>,
    requests: u64,
}

/// An in-memory host for one plugin.
///
/// Where the contract leaves a choice to the host, `TestHost` does this (the real host should
/// agree; a difference is a bug in one of them):
///
/// - input is type-checked first (codes as in the host: `required`, `bad_digits`, …); persons
///   and houses must be registered and `RecordRef`s must name a record of that kind in the same
///   estate, or the call is [`HostError::Rejected`] with `not_found`;
/// - every call runs with its estate as scope: reads outside it return nothing or fail;
///   a query's `limit` is clamped to `1..=cap`, and a query by a field that is not a declared key
///   fails (the host indexes only declared keys);
/// - data a hook returns is type-checked again (derived fields allowed); an undeclared state, a
///   state set by `on_transition`, or a child draft of a kind that does not hang under the record
///   is [`HostError::Contract`];
/// - child drafts are type-checked and stored in their initial state; `on_create` is not called
///   for them (the hook that drafted them has decided);
/// - `state_entered_at` changes only when a transition changes the state;
/// - unique keys hold among records in non-terminal states, across all estates;
/// - alerts are kept once per (record, key); a refused create's alerts, which have no record,
///   once per (estate, key); deadline alerts once per (record, rule, due instant).
///
/// ```
/// # async fn demo(plugin: impl jiayuan_plugin_api::ServicePlugin + 'static) -> Result<(), Box<dyn std::error::Error>> {
/// use jiayuan_test_support::{TestHost, fixtures};
/// use jiayuan_domain::EstateId;
/// use jiayuan_plugin_api::{Actor, Audience};
///
/// let host = TestHost::new(plugin);
/// host.add_estate(fixtures::demo_estates().remove(0));
/// host.set_config(serde_json::json!({ "some_key": 3 }));
/// let record = host.create(EstateId(1), "complaint", serde_json::json!({ "room": "1203" })).await?;
/// host.transition(record.id, "close", Actor::Audience(Audience::Firm), serde_json::json!({})).await?;
/// host.clock().advance_days(30);
/// let fired = host.run_deadlines().await;
/// # let _ = fired; Ok(()) }
/// ```
pub struct TestHost {
    plugin: Box<dyn ServicePlugin>,
    manifest: Manifest,
    clock: TestClock,
    config: Mutex<Arc<str>>,
    query_cap: AtomicU32,
    state: Mutex<State>,
}

impl fmt::Debug for TestHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestHost").field("plugin", &self.manifest.id).field("now", &self.clock.now()).finish()
    }
}

impl TestHost {
    /// A host for `plugin`, with an empty registry, the clock at [`default_now`] and config `{}`.
    pub fn new(plugin: impl ServicePlugin + 'static) -> TestHost {
        TestHost::from_boxed(Box::new(plugin))
    }

    /// A host for an already boxed plugin.
    pub fn from_boxed(plugin: Box<dyn ServicePlugin>) -> TestHost {
        let manifest = plugin.manifest();
        TestHost {
            plugin,
            manifest,
            clock: TestClock::new(default_now()),
            config: Mutex::new(Arc::from("{}")),
            query_cap: AtomicU32::new(DEFAULT_QUERY_CAP),
            state: Mutex::new(State { next_id: 1, ..State::default() }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The plugin's manifest, read once at construction.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The plugin itself, to call hooks directly with [`TestHost::context`].
    pub fn plugin(&self) -> &dyn ServicePlugin {
        self.plugin.as_ref()
    }

    /// The clock.
    pub fn clock(&self) -> &TestClock {
        &self.clock
    }

    /// Now.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Today in Shanghai.
    pub fn today(&self) -> Date {
        self.clock.today()
    }

    /// Sets the plugin's config section (`[plugin_config.<id>]`) as JSON text.
    pub fn set_config_json(&self, json: &str) {
        *self.config.lock().unwrap_or_else(PoisonError::into_inner) = Arc::from(json);
    }

    /// Sets the plugin's config section.
    pub fn set_config(&self, config: Value) {
        self.set_config_json(&config.to_string());
    }

    /// Sets the most records one query returns (to exercise a plugin's pagination).
    pub fn set_query_cap(&self, cap: u32) {
        self.query_cap.store(cap.max(1), Ordering::SeqCst);
    }

    /// Adds (or replaces) an estate in the registry.
    pub fn add_estate(&self, estate: Estate) {
        self.lock().estates.insert(estate.id, estate);
    }

    /// Adds (or replaces) a house in the registry.
    pub fn add_house(&self, house: House) {
        self.lock().houses.insert(house.id, house);
    }

    /// Adds (or replaces) a person in the registry.
    pub fn add_person(&self, person: Person) {
        self.lock().persons.insert(person.id, person);
    }

    /// Records that `firm` serves `estate` (it appears in the scope of calls for the estate).
    pub fn assign_firm(&self, estate: EstateId, firm: FirmId) {
        self.lock().firms.insert(estate, firm);
    }

    /// Loads a whole demo registry: estates, houses, persons and current firm assignments.
    pub fn load_registry(&self, registry: &DemoRegistry) {
        let today = self.today();
        let mut st = self.lock();
        st.estates.extend(registry.estates.iter().map(|e| (e.id, e.clone())));
        st.houses.extend(registry.houses.iter().map(|h| (h.id, h.clone())));
        st.persons.extend(registry.persons.iter().map(|p| (p.id, p.clone())));
        for a in registry.assignments.iter().filter(|a| a.covers(today)) {
            st.firms.insert(a.estate_id, a.firm_id);
        }
    }

    /// A context for one call, as the host builds it: scope narrowed to `estate` (or
    /// district-wide), the firm serving that estate, the caller's audience, a fresh request id,
    /// the current config.
    pub fn context(&self, estate: Option<EstateId>) -> TestContext<'_> {
        self.context_at(estate.map(Place::Estate))
    }

    /// A context for one call at `place` (see [`TestHost::context`]).
    pub fn context_at(&self, place: Option<Place>) -> TestContext<'_> {
        let (firm_id, request_id, audience) = {
            let mut st = self.lock();
            st.requests += 1;
            let firm = place.as_ref().and_then(Place::estate).and_then(|e| st.firms.get(&e).copied());
            (firm, format!("test-{}", st.requests), st.caller.audience.clone())
        };
        let config = self.config.lock().unwrap_or_else(PoisonError::into_inner).clone();
        TestContext { host: self, scope: Scope::new(place, firm_id, Some(audience), request_id), config }
    }

    /// Who calls from now on (default: a firm account `tester`).
    pub fn set_caller(&self, caller: TestCaller) {
        self.lock().caller = caller;
    }

    /// Assigns record `id` to `account` (or clears the assignee), as the host's assign route.
    pub fn assign(&self, id: RecordId, account: Option<&str>) -> Result<(), HostError> {
        let mut st = self.lock();
        let meta = st.meta.get_mut(&id).ok_or_else(|| HostError::NotFound(format!("record {id}")))?;
        meta.assignee = account.map(str::to_owned);
        Ok(())
    }

    /// Record `id` as an audience sees it: the host's one projection (need-to-know, masking).
    pub fn view(&self, id: RecordId, audience: &Audience, unmask: bool) -> Option<Projected> {
        let record = self.record(id)?;
        let def = self.manifest.kind(&record.kind)?;
        let data: Map<String, Value> = serde_json::from_str(&record.data_json).ok()?;
        let viewer = Viewer { audience: Some(audience), unmask };
        viewer.sees_kind(def).then(|| project(def, &data, &viewer))
    }

    /// A stored record.
    pub fn record(&self, id: RecordId) -> Option<Record> {
        self.lock().records.get(&id).cloned()
    }

    /// A stored record's data object.
    pub fn data(&self, id: RecordId) -> Option<Value> {
        self.record(id).and_then(|r| serde_json::from_str(&r.data_json).ok())
    }

    /// Every stored record of `kind`, by id.
    pub fn records_of(&self, kind: &str) -> Vec<Record> {
        self.lock().records.values().filter(|r| r.kind == kind).cloned().collect()
    }

    /// Every alert written so far.
    pub fn alerts(&self) -> Vec<RaisedAlert> {
        self.lock().alerts.clone()
    }

    /// The alerts written so far, clearing the list.
    pub fn take_alerts(&self) -> Vec<RaisedAlert> {
        std::mem::take(&mut self.lock().alerts)
    }

    /// Every line the plugin logged.
    pub fn logs(&self) -> Vec<LogLine> {
        self.lock().logs.clone()
    }

    fn kind_def(&self, kind: &str) -> Result<&RecordKind, HostError> {
        self.manifest.kind(kind).ok_or_else(|| HostError::NotFound(format!("record kind `{kind}` is not declared")))
    }

    /// Creates a record of a top-level `kind` in `estate`, as the host does for a create request.
    pub async fn create(&self, estate: EstateId, kind: &str, data: Value) -> Result<Record, HostError> {
        self.create_at(Place::Estate(estate), kind, data).await
    }

    /// Creates a record of a top-level `kind` at `place` (an estate or a grid cell).
    pub async fn create_at(&self, place: Place, kind: &str, data: Value) -> Result<Record, HostError> {
        if let Some(parent) = &self.kind_def(kind)?.parent {
            return Err(HostError::Rejected(vec![FieldViolation::new(
                "parent",
                "parent_required",
                format!("`{kind}` 记录必须挂在 `{parent}` 记录下"),
                format!("a `{kind}` record needs a parent `{parent}` record: use create_child"),
            )]));
        }
        self.create_inner(place, kind, None, data).await
    }

    /// Creates a record of a child `kind` under `parent` (in the parent's estate).
    pub async fn create_child(&self, parent: RecordId, kind: &str, data: Value) -> Result<Record, HostError> {
        let parent = self.record(parent).ok_or_else(|| HostError::NotFound(format!("parent record {parent}")))?;
        match &self.kind_def(kind)?.parent {
            Some(p) if *p == parent.kind => self.create_inner(parent.place.clone(), kind, Some(parent), data).await,
            other => Err(HostError::Rejected(vec![FieldViolation::new(
                "parent",
                "wrong_parent",
                format!("`{kind}` 记录不能挂在 `{}` 记录下", parent.kind),
                format!("a `{kind}` record hangs under {other:?}, not under `{}`", parent.kind),
            )])),
        }
    }

    async fn create_inner(
        &self,
        place: Place,
        kind: &str,
        parent: Option<Record>,
        data: Value,
    ) -> Result<Record, HostError> {
        let def = self.kind_def(kind)?;
        let caller = self.lock().caller.clone();
        let viewer = Viewer::masked(&caller.audience);
        if !viewer.sees_kind(def) {
            return Err(HostError::NotFound(format!("record kind `{kind}` is not visible to {}", caller.audience)));
        }
        let at_kind = match &place {
            Place::Estate(_) => jiayuan_plugin_api::PlaceKind::Estate,
            Place::GridCell(_) => jiayuan_plugin_api::PlaceKind::GridCell,
        };
        if !def.places.contains(&at_kind) {
            return Err(HostError::Rejected(vec![FieldViolation::new(
                "place",
                "wrong_place",
                format!("`{kind}` 记录不能放在此类位置"),
                format!("records of `{kind}` cannot sit at a {at_kind:?}"),
            )]));
        }
        if let Place::Estate(estate) = &place
            && !self.lock().estates.contains_key(estate)
        {
            return Err(HostError::NotFound(format!("estate {estate} is not in the registry")));
        }
        let fields = visible_fields(&def.fields, &viewer);
        let Checked { data, references } =
            check_object(&fields, &data, Mode::Create, self.today()).map_err(HostError::Rejected)?;
        self.resolve(&place, &references)?;
        let ctx = self.context_at(Some(place.clone()));
        let now = self.now();
        let mut call = CreateCall::new(kind, place.clone(), Value::Object(data.clone()).to_string(), now);
        if let Some(p) = parent.clone() {
            call = call.with_parent(p);
        }
        let outcome = self.plugin.on_create(&ctx, call).await;
        let outcome = self.refusal(outcome, &place, kind, None)?;
        let state = match &outcome.state {
            Some(s) if !def.workflow.has_state(s) => {
                return Err(HostError::Contract(format!("on_create chose undeclared state `{s}` of `{kind}`")));
            }
            Some(s) => s.clone(),
            None => def.workflow.initial.clone(),
        };
        let data = self.stored_data(def, outcome.data_json.as_deref(), data, "on_create")?;
        let mut st = self.lock();
        let id = RecordId(st.next_id);
        let record = Record::new(
            id,
            kind,
            place.clone(),
            parent.map(|p| p.id),
            &state,
            Value::Object(data).to_string(),
            now,
            now,
            now,
            now,
            1,
        );
        let mut batch = vec![record.clone()];
        batch.extend(self.child_records(kind, id, &place, &outcome.children, st.next_id + 1, now)?);
        for (i, r) in batch.iter().enumerate() {
            self.unique_conflict(&st, r, &batch[..i])?;
        }
        st.next_id += batch.len() as i64;
        for r in batch {
            st.meta.insert(r.id, Meta { created_by: caller.account.clone(), assignee: None });
            st.records.insert(r.id, r);
        }
        push_alerts(&mut st, &outcome.alerts, Some(id), &place, kind, now, AlertSource::Hook);
        Ok(record)
    }

    /// Fires `transition` on record `id` as `actor` (with the account and unit of the current
    /// [`TestCaller`]), as the host does for a transition request.
    pub async fn transition(
        &self,
        id: RecordId,
        transition: &str,
        actor: Actor,
        input: Value,
    ) -> Result<Record, HostError> {
        self.transition_inner(id, transition, actor, input, None).await
    }

    /// Fires a transition that moves record `id` to `to` (see [`TestHost::transition`]).
    pub async fn transition_to(
        &self,
        id: RecordId,
        transition: &str,
        actor: Actor,
        input: Value,
        to: Place,
    ) -> Result<Record, HostError> {
        self.transition_inner(id, transition, actor, input, Some(to)).await
    }

    async fn transition_inner(
        &self,
        id: RecordId,
        transition: &str,
        actor: Actor,
        input: Value,
        move_to: Option<Place>,
    ) -> Result<Record, HostError> {
        let record = self.record(id).ok_or_else(|| HostError::NotFound(format!("record {id}")))?;
        let def = self.kind_def(&record.kind)?;
        let t = def
            .workflow
            .transition(transition)
            .ok_or_else(|| HostError::Workflow(format!("`{}` has no transition `{transition}`", record.kind)))?;
        if def.workflow.states.iter().any(|s| s.id == record.state && s.terminal) {
            return Err(HostError::Workflow(format!("record {id} is in terminal state `{}`", record.state)));
        }
        if !t.from.contains(&record.state) {
            return Err(HostError::Workflow(format!(
                "`{transition}` does not fire from `{}` (only from {})",
                record.state,
                t.from.join(", ")
            )));
        }
        let (caller, meta) = {
            let st = self.lock();
            (st.caller.clone(), st.meta.get(&id).cloned().unwrap_or_default())
        };
        let stored: Map<String, Value> = serde_json::from_str(&record.data_json)
            .map_err(|e| HostError::Contract(format!("stored data of record {id} is not an object: {e}")))?;
        let system = matches!(actor, Actor::System);
        let firer = Firer {
            actor: &actor,
            account: (!system).then_some(caller.account.as_str()),
            agency_unit: if system { None } else { caller.agency_unit },
        };
        let subject = Subject { created_by: &meta.created_by, assignee: meta.assignee.as_deref(), data: &stored };
        if let Err(refusal) = may_fire(t, &firer, &subject) {
            return Err(HostError::Forbidden(format!("{actor} may not fire `{transition}`: {}", refusal.message().1)));
        }
        let place = match (&move_to, t.moves) {
            (Some(to), true) => to.clone(),
            (None, true) => {
                return Err(HostError::Rejected(vec![FieldViolation::new(
                    "place",
                    "required",
                    "此操作须指定迁往的位置".to_owned(),
                    format!("`{transition}` moves the record: name the place it moves to"),
                )]));
            }
            (Some(_), false) => {
                return Err(HostError::Workflow(format!("`{transition}` does not move the record")));
            }
            (None, false) => record.place.clone(),
        };
        let fields = if system { t.input.clone() } else { visible_fields(&t.input, &Viewer::masked(&caller.audience)) };
        let Checked { data: input, references } =
            check_object(&fields, &input, Mode::TransitionInput, self.today()).map_err(HostError::Rejected)?;
        self.resolve(&place, &references)?;
        // A move's hook works where the record is going (its household rules, its counts there).
        let ctx = self.context_at(Some(place.clone()));
        let mut call =
            TransitionCall::new(record.clone(), transition, Value::Object(input.clone()).to_string(), self.now());
        if let Some(to) = &move_to {
            call = call.with_move(to.clone());
        }
        let outcome = self.plugin.on_transition(&ctx, call).await;
        let outcome = self.refusal(outcome, &record.place, &record.kind, Some(id))?;
        if let Some(s) = &outcome.state {
            return Err(HostError::Contract(format!("on_transition set state `{s}`; only on_create may")));
        }
        let mut merged = stored;
        merged.extend(input);
        let data = self.stored_data(def, outcome.data_json.as_deref(), merged, "on_transition")?;
        let now = self.now();
        let mut st = self.lock();
        let current = st.records.get(&id).cloned().ok_or_else(|| HostError::NotFound(format!("record {id}")))?;
        if current.version != record.version {
            return Err(HostError::Conflict(format!("record {id} changed while the hook ran")));
        }
        let mut updated = current;
        let to = t.target(&record.state).to_owned();
        if updated.state != to {
            updated.state_entered_at = now;
        }
        updated.state = to;
        updated.data_json = Value::Object(data).to_string();
        updated.updated_at = now;
        updated.occurred_at = now;
        updated.version += 1;
        updated.estate_id = place.estate();
        updated.place = place.clone();
        let children = self.child_records(&record.kind, id, &place, &outcome.children, st.next_id, now)?;
        self.unique_conflict(&st, &updated, &[])?;
        for (i, c) in children.iter().enumerate() {
            self.unique_conflict(&st, c, &children[..i])?;
        }
        st.next_id += children.len() as i64;
        st.records.insert(id, updated.clone());
        for c in children {
            st.meta.insert(c.id, Meta { created_by: caller.account.clone(), assignee: None });
            st.records.insert(c.id, c);
        }
        push_alerts(&mut st, &outcome.alerts, Some(id), &place, &record.kind, now, AlertSource::Hook);
        Ok(updated)
    }

    /// The records for a hook's child drafts under `parent`, numbered from `first_id`: each
    /// draft's kind must hang under `parent_kind`, and its data is type-checked as the host checks
    /// data a hook returned, derived fields allowed (the host does not call `on_create` for drafts:
    /// the hook that made them has decided).
    fn child_records(
        &self,
        parent_kind: &str,
        parent: RecordId,
        place: &Place,
        drafts: &[ChildDraft],
        first_id: i64,
        now: Timestamp,
    ) -> Result<Vec<Record>, HostError> {
        let mut out = Vec::new();
        for (i, child) in drafts.iter().enumerate() {
            let def = self.manifest.kind(&child.kind).filter(|k| k.parent.as_deref() == Some(parent_kind)).ok_or_else(
                || {
                    HostError::Contract(format!(
                        "child draft of kind `{}` cannot hang under `{parent_kind}`",
                        child.kind
                    ))
                },
            )?;
            let value: Value = serde_json::from_str(&child.data_json)
                .map_err(|e| HostError::Contract(format!("child draft data is not JSON: {e}")))?;
            let data = check_object(&def.fields, &value, Mode::TransitionInput, now.shanghai_date())
                .map(|c| c.data)
                .map_err(|v| HostError::Contract(format!("child draft of kind `{}`: {}", child.kind, fmt_v(&v))))?;
            out.push(Record::new(
                RecordId(first_id + i as i64),
                &child.kind,
                place.clone(),
                Some(parent),
                &def.workflow.initial,
                Value::Object(data).to_string(),
                now,
                now,
                now,
                now,
                1,
            ));
        }
        Ok(out)
    }

    /// Evaluates every deadline rule of the manifest at the clock's current instant, like one
    /// scheduler tick: each rule fires once per record and due instant. Actions run in rule order;
    /// a transition fired by one rule is seen by the next, and the pass repeats until nothing more
    /// is due.
    ///
    /// Due instants: the anchor (creation, state entry, or a date field at 00:00 Shanghai / a
    /// date-time field) plus the offset; working days are counted on the anchor's Shanghai date
    /// with [`TestClock`]'s calendar and keep the anchor's time of day.
    pub async fn run_deadlines(&self) -> Vec<FiredDeadline> {
        let mut fired = Vec::new();
        for _pass in 0..16 {
            let due = self.due_now();
            if due.is_empty() {
                break;
            }
            for (rule_idx, id) in due {
                let rule = &self.manifest.deadlines[rule_idx];
                // Re-check: an earlier action of this pass may have moved the record.
                let Some(record) = self.record(id) else { continue };
                let Some(due) = self.live_due(rule_idx, &record) else { continue };
                if due > self.now() || !self.lock().fired.insert((id, rule.id.clone(), due)) {
                    continue;
                }
                let result = match &rule.action {
                    DeadlineAction::Alert { severity, message } => {
                        let alert = AlertDraft::new(&rule.id, *severity, message.clone());
                        let source = AlertSource::Deadline { rule: rule.id.clone(), due };
                        let now = self.now();
                        push_alerts(&mut self.lock(), &[alert], Some(id), &record.place, &record.kind, now, source);
                        Ok(())
                    }
                    DeadlineAction::Transition { transition } => {
                        self.transition(id, transition, Actor::System, Value::Object(Map::new())).await.map(|_| ())
                    }
                    // An action of a newer contract than this kit knows.
                    _ => Err(HostError::Contract(format!(
                        "deadline rule `{}` has an action this kit does not know",
                        rule.id
                    ))),
                };
                fired.push(FiredDeadline { rule: rule.id.clone(), record_id: id, due, result });
            }
        }
        fired
    }

    fn due_now(&self) -> Vec<(usize, RecordId)> {
        let now = self.now();
        let records: Vec<Record> = self.lock().records.values().cloned().collect();
        let mut out = Vec::new();
        for (i, rule) in self.manifest.deadlines.iter().enumerate() {
            for r in records.iter().filter(|r| r.kind == rule.kind) {
                if let Some(due) = self.live_due(i, r)
                    && due <= now
                    && !self.lock().fired.contains(&(r.id, rule.id.clone(), due))
                {
                    out.push((i, r.id));
                }
            }
        }
        out
    }

    /// The due instant of rule `i` for `record`, if the rule is live for it.
    fn live_due(&self, i: usize, record: &Record) -> Option<Timestamp> {
        let rule = &self.manifest.deadlines[i];
        let def = self.manifest.kind(&rule.kind)?;
        let terminal = def.workflow.states.iter().any(|s| s.id == record.state && s.terminal);
        if record.kind != rule.kind || terminal || !rule.in_states.contains(&record.state) {
            return None;
        }
        let anchors = jiayuan_schema::deadline::Anchors {
            created_at: record.created_at,
            state_entered_at: record.state_entered_at,
            data_json: &record.data_json,
        };
        jiayuan_schema::deadline::due_at(rule, anchors, |d, n| self.clock.add_working_days(d, n))
    }

    /// Asks the plugin for its KPIs for `estate` over `from..=to`, with the estate's households
    /// from the registry; checks every value's id is declared in the manifest.
    pub async fn kpis(&self, estate: EstateId, from: Date, to: Date) -> Result<Vec<KpiValue>, HostError> {
        let households = self
            .lock()
            .estates
            .get(&estate)
            .map(|e| e.households)
            .ok_or_else(|| HostError::NotFound(format!("estate {estate} is not in the registry")))?;
        let ctx = self.context(Some(estate));
        let values =
            self.plugin.kpis(&ctx, KpiCall::new(estate, from, to, households)).await.map_err(HostError::Plugin)?;
        for v in &values {
            if !self.manifest.kpis.iter().any(|k| k.id == v.id) {
                return Err(HostError::Contract(format!("KPI `{}` is not declared in the manifest", v.id)));
            }
        }
        Ok(values)
    }

    /// Resolves the references of checked input: persons and houses must be registered, records
    /// must exist in the call's estate with the declared kind.
    fn resolve(&self, place: &Place, refs: &[Reference]) -> Result<(), HostError> {
        let st = self.lock();
        let missing = |field: &str, what: &str| {
            FieldViolation::new(
                field,
                "not_found",
                format!("字段 `{field}` 引用的{what}不存在"),
                format!("{what} not found"),
            )
        };
        let mut problems = Vec::new();
        for r in refs {
            match r {
                Reference::Person { field, id } if !st.persons.contains_key(&PersonId(*id)) => {
                    problems.push(missing(field, "人员"));
                }
                Reference::House { field, id } if !st.houses.contains_key(&HouseId(*id)) => {
                    problems.push(missing(field, "房屋"));
                }
                Reference::Record { field, kind, id } => {
                    let ok = st.records.get(&RecordId(*id)).is_some_and(|r| &r.kind == kind && &r.place == place);
                    if !ok {
                        problems.push(missing(field, "记录"));
                    }
                }
                _ => {}
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(HostError::Rejected(problems)) }
    }

    /// Turns a hook's answer into an accepted outcome or the matching error, writing the alerts
    /// of a refusal.
    fn refusal(
        &self,
        outcome: Result<Outcome, PluginError>,
        place: &Place,
        kind: &str,
        record: Option<RecordId>,
    ) -> Result<Outcome, HostError> {
        match outcome {
            Err(PluginError::Invalid(violations)) => Err(HostError::Refused { violations, alerts: Vec::new() }),
            Err(e) => Err(HostError::Plugin(e)),
            Ok(o) if !o.refusal.is_empty() => {
                let now = self.now();
                push_alerts(&mut self.lock(), &o.alerts, record, place, kind, now, AlertSource::Refusal);
                Err(HostError::Refused { violations: o.refusal, alerts: o.alerts })
            }
            Ok(o) => Ok(o),
        }
    }

    /// The data to store: the hook's replacement, type-checked against the kind (derived fields
    /// allowed), or the checked input.
    fn stored_data(
        &self,
        def: &RecordKind,
        replacement: Option<&str>,
        input: Map<String, Value>,
        hook: &str,
    ) -> Result<Map<String, Value>, HostError> {
        let value = match replacement {
            Some(json) => serde_json::from_str(json)
                .map_err(|e| HostError::Contract(format!("{hook} returned data that is not JSON: {e}")))?,
            None => Value::Object(input),
        };
        check_object(&def.fields, &value, Mode::TransitionInput, self.today()).map(|c| c.data).map_err(|v| {
            HostError::Contract(format!("{hook} returned data of `{}` that breaks its fields: {}", def.id, fmt_v(&v)))
        })
    }

    /// A unique key of `record` shared with another live record of its kind.
    fn unique_conflict(&self, st: &State, record: &Record, pending: &[Record]) -> Result<(), HostError> {
        let Some(def) = self.manifest.kind(&record.kind) else { return Ok(()) };
        if is_terminal(def, &record.state) {
            return Ok(());
        }
        for key in def.keys.iter().filter(|k| k.unique) {
            let Some(value) = key_value(&record.data_json, &key.field) else { continue };
            let clash = st.records.values().chain(pending).find(|other| {
                other.id != record.id
                    && other.kind == record.kind
                    && !is_terminal(def, &other.state)
                    && key_value(&other.data_json, &key.field).as_deref() == Some(value.as_str())
            });
            if let Some(other) = clash {
                return Err(HostError::Conflict(format!(
                    "`{}.{}` is already used by live record {}",
                    record.kind, key.field, other.id
                )));
            }
        }
        Ok(())
    }

    fn matches(&self, r: &Record, q: &RecordQuery, scope: Option<&Place>) -> bool {
        r.kind == q.kind
            && scope.is_none_or(|p| p == &r.place)
            && q.estate_id.is_none_or(|e| Some(e) == r.estate_id)
            && (q.states.is_empty() || q.states.contains(&r.state))
            && q.parent_id.is_none_or(|p| r.parent_id == Some(p))
            && q.key.as_ref().is_none_or(|(f, v)| key_value(&r.data_json, f).as_deref() == Some(v.as_str()))
    }

    fn check_query(&self, q: &RecordQuery, scope: Option<&Place>) -> Result<(), PluginError> {
        if q.kind.is_empty() {
            return Err(PluginError::Host("a record query must name a record kind".into()));
        }
        let Some(def) = self.manifest.kind(&q.kind) else {
            return Err(PluginError::Host(format!("record kind `{}` is not declared by the plugin", q.kind)));
        };
        if let (Some(s), Some(asked)) = (scope, q.estate_id)
            && s != &Place::Estate(asked)
        {
            return Err(PluginError::Host(format!("estate {asked} lies outside the call's scope ({s})")));
        }
        if let Some((field, _)) = &q.key
            && !def.keys.iter().any(|k| &k.field == field)
        {
            return Err(PluginError::Host(format!(
                "`{}.{field}` is not a declared key: the host indexes only the manifest's keys",
                q.kind
            )));
        }
        Ok(())
    }
}

fn is_terminal(def: &RecordKind, state: &str) -> bool {
    def.workflow.states.iter().any(|s| s.id == state && s.terminal)
}

/// The indexed text of key `field` in a data object, as the host's record index stores it.
fn key_value(data_json: &str, field: &str) -> Option<String> {
    let data: Map<String, Value> = serde_json::from_str(data_json).ok()?;
    let key = KeyDef::lookup(field);
    jiayuan_schema::index_entries(std::slice::from_ref(&key), &data).pop().map(|e| e.value)
}

fn fmt_v(v: &[FieldViolation]) -> String {
    v.iter().map(|v| format!("{} ({})", v.field, v.code)).collect::<Vec<_>>().join(", ")
}

fn push_alerts(
    st: &mut State,
    alerts: &[AlertDraft],
    record_id: Option<RecordId>,
    place: &Place,
    kind: &str,
    now: Timestamp,
    source: AlertSource,
) {
    for a in alerts {
        let duplicate = !matches!(source, AlertSource::Deadline { .. })
            && st.alerts.iter().any(|x| {
                x.record_id == record_id
                    && x.key == a.key
                    && (record_id.is_some() || &x.place == place)
                    && !matches!(x.source, AlertSource::Deadline { .. })
            });
        if !duplicate {
            st.alerts.push(RaisedAlert {
                record_id,
                place: place.clone(),
                kind: kind.to_owned(),
                key: a.key.clone(),
                severity: a.severity,
                message: a.message.clone(),
                raised_at: now,
                source: source.clone(),
            });
        }
    }
}

/// The [`HostContext`] of one call into the plugin (see [`TestHost::context`]).
#[derive(Debug)]
pub struct TestContext<'a> {
    host: &'a TestHost,
    scope: Scope,
    config: Arc<str>,
}

impl HostContext for TestContext<'_> {
    fn scope(&self) -> &Scope {
        &self.scope
    }

    fn records(&self) -> &dyn RecordReader {
        self
    }

    fn registry(&self) -> &dyn RegistryReader {
        self
    }

    fn clock(&self) -> &dyn Clock {
        &self.host.clock
    }

    fn log(&self, level: LogLevel, message: &str, fields: &[(&str, &str)]) {
        self.host.lock().logs.push(LogLine {
            level,
            message: message.to_owned(),
            fields: fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            request_id: self.scope.request_id.clone(),
        });
    }

    fn config_json(&self) -> &str {
        &self.config
    }
}

#[async_trait]
impl RecordReader for TestContext<'_> {
    async fn get(&self, id: RecordId) -> Result<Option<Record>, PluginError> {
        let scope = self.scope.place.as_ref();
        Ok(self.host.record(id).filter(|r| scope.is_none_or(|p| p == &r.place)))
    }

    async fn query(&self, q: &RecordQuery) -> Result<Vec<Record>, PluginError> {
        let scope = self.scope.place.as_ref();
        self.host.check_query(q, scope)?;
        let limit = q.limit.clamp(1, self.host.query_cap.load(Ordering::SeqCst)) as usize;
        let st = self.host.lock();
        Ok(st
            .records
            .values()
            .filter(|r| q.after.is_none_or(|a| r.id > a) && self.host.matches(r, q, scope))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn count(&self, q: &RecordQuery) -> Result<u64, PluginError> {
        let scope = self.scope.place.as_ref();
        self.host.check_query(q, scope)?;
        let st = self.host.lock();
        Ok(st.records.values().filter(|r| self.host.matches(r, q, scope)).count() as u64)
    }
}

#[async_trait]
impl RegistryReader for TestContext<'_> {
    async fn person(&self, id: PersonId) -> Result<Option<PersonFacts>, PluginError> {
        let reads = &self.host.manifest.registry_reads;
        Ok(self.host.lock().persons.get(&id).map(|p| PersonFacts::of(p, reads)))
    }

    async fn house(&self, id: HouseId) -> Result<Option<House>, PluginError> {
        Ok(self.host.lock().houses.get(&id).cloned())
    }

    async fn estate(&self, id: EstateId) -> Result<Option<Estate>, PluginError> {
        Ok(self.host.lock().estates.get(&id).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::host;
    use serde_json::json;

    async fn item(host: &TestHost, estate: i64, code: &str, tag: Option<&str>) -> Record {
        let data = match tag {
            Some(t) => json!({"code": code, "tag": t}),
            None => json!({"code": code}),
        };
        host.create(EstateId(estate), "item", data).await.expect("accepted")
    }

    #[tokio::test]
    async fn creates_store_derived_data_and_apply_the_host_checks() {
        let host = host();
        let r = item(&host, 1, "x1", None).await;
        assert_eq!((r.state.as_str(), r.version, r.estate_id), ("open", 1, Some(EstateId(1))));
        assert_eq!(host.data(r.id), Some(json!({"code": "x1", "note": "seen"})));
        assert_eq!(host.logs()[0].fields, vec![("code".to_owned(), "x1".to_owned())]);
        let err = host.create(EstateId(1), "item", json!({"code": "x2", "note": "mine"})).await.expect_err("derived");
        assert!(err.has_violation("note", "derived_field"), "{err}");
        let err = host.create(EstateId(1), "item", json!({"code": "x2", "owner": 99})).await.expect_err("no person");
        assert!(matches!(err, HostError::Rejected(_)) && err.has_violation("owner", "not_found"), "{err}");
        assert!(matches!(host.create(EstateId(9), "item", json!({"code": "x"})).await, Err(HostError::NotFound(_))));
        assert!(matches!(host.create(EstateId(1), "part", json!({"name": "p"})).await, Err(HostError::Rejected(_))));
    }

    #[tokio::test]
    async fn refusals_write_only_their_alerts() {
        let host = host();
        let err = host.create(EstateId(1), "item", json!({"code": "refuse"})).await.expect_err("refused");
        assert!(err.has_violation("code", "no") && err.alerts().len() == 1, "{err}");
        let alerts = host.alerts();
        assert_eq!((alerts.len(), alerts[0].record_id, &alerts[0].source), (1, None, &AlertSource::Refusal));
        let err = host.create(EstateId(1), "item", json!({"code": "invalid"})).await.expect_err("invalid");
        assert!(err.has_violation("code", "bad") && err.alerts().is_empty());
        assert!(host.records_of("item").is_empty());
        // One alert per (record, key).
        let r = item(&host, 1, "alert", None).await;
        assert_eq!(host.alerts().iter().filter(|a| a.record_id == Some(r.id)).count(), 1);
    }

    #[tokio::test]
    async fn outcomes_that_break_the_contract_are_named() {
        let host = host();
        let err = host.create(EstateId(1), "item", json!({"code": "bad-state"})).await.expect_err("state");
        assert!(matches!(&err, HostError::Contract(s) if s.contains("nowhere")), "{err}");
        let err = host.create(EstateId(1), "item", json!({"code": "bad-derived"})).await.expect_err("derived type");
        assert!(matches!(&err, HostError::Contract(s) if s.contains("note (wrong_type)")), "{err}");
        let held = item(&host, 1, "held", None).await;
        assert_eq!(held.state, "held");
        let kids = item(&host, 1, "kids", None).await;
        let parts = host.records_of("part");
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.parent_id == Some(kids.id) && p.estate_id == Some(EstateId(1))));
        assert_eq!(item(&host, 1, "after", None).await.id, RecordId(parts[1].id.0 + 1), "ids stay unique");
    }

    #[tokio::test]
    async fn transitions_follow_the_workflow_and_merge_their_input() {
        let host = host();
        let r = item(&host, 1, "t1", None).await;
        let e = host.transition(r.id, "release", Actor::firm(), json!({})).await.expect_err("wrong state");
        assert!(matches!(e, HostError::Workflow(_)), "{e}");
        let e = host.transition(r.id, "fly", Actor::firm(), json!({})).await.expect_err("unknown");
        assert!(matches!(e, HostError::Workflow(_)), "{e}");
        let e = host.transition(r.id, "hold", Actor::firm(), json!({})).await.expect_err("input required");
        assert!(e.has_violation("tag", "required"), "{e}");
        let e = host.transition(r.id, "hold", Actor::System, json!({"tag": "x"})).await.expect_err("actor");
        assert!(matches!(e, HostError::Forbidden(_)), "{e}");
        let held = host.transition(r.id, "hold", Actor::firm(), json!({"tag": "blue"})).await.expect("held");
        assert_eq!((held.state.as_str(), held.version), ("held", 2));
        assert_eq!(host.data(r.id).and_then(|d| d.get("tag").cloned()), Some(json!("blue")));
        let r2 = item(&host, 1, "t2", None).await;
        host.transition(r2.id, "finish", Actor::firm(), json!({})).await.expect("done");
        let e = host.transition(r2.id, "finish", Actor::firm(), json!({})).await.expect_err("terminal");
        assert!(matches!(e, HostError::Workflow(s) if s.contains("terminal")));
    }

    #[tokio::test]
    async fn unique_keys_hold_among_live_records_only() {
        let host = host();
        let first = item(&host, 1, "u1", None).await;
        let e = host.create(EstateId(2), "item", json!({"code": "u1"})).await.expect_err("duplicate");
        assert!(matches!(e, HostError::Conflict(_)), "{e}");
        host.transition(first.id, "finish", Actor::firm(), json!({})).await.expect("done");
        item(&host, 2, "u1", None).await;
    }

    #[tokio::test]
    async fn queries_honour_every_filter_and_the_scope() {
        let host = host();
        let a = item(&host, 1, "q1", Some("red")).await;
        let b = item(&host, 1, "q2", Some("red")).await;
        let c = item(&host, 1, "q3", Some("blue")).await;
        let d = item(&host, 2, "q4", Some("red")).await;
        let kids = item(&host, 1, "kids", None).await;
        host.transition(b.id, "finish", Actor::firm(), json!({})).await.expect("done");
        let ids = |v: Vec<Record>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
        let q = |f: &dyn Fn(&mut RecordQuery)| {
            let mut q = RecordQuery::of("item").limit(100);
            f(&mut q);
            q
        };
        let all = host.context(None);
        let recs = all.records();
        assert_eq!(ids(recs.query(&q(&|_| {})).await.expect("q")), [a.id, b.id, c.id, d.id, kids.id]);
        let red = q(&|q| q.key = Some(("tag".into(), "red".into())));
        assert_eq!(ids(recs.query(&red).await.expect("q")), [a.id, b.id, d.id]);
        let open_red = q(&|q| {
            q.key = Some(("tag".into(), "red".into()));
            q.states = vec!["open".into()];
        });
        assert_eq!(ids(recs.query(&open_red).await.expect("q")), [a.id, d.id]);
        assert_eq!(ids(recs.query(&q(&|q| q.estate_id = Some(EstateId(2)))).await.expect("q")), [d.id]);
        let paged = q(&|q| {
            q.limit = 2;
            q.after = Some(a.id);
        });
        assert_eq!(ids(recs.query(&paged).await.expect("q")), [b.id, c.id]);
        assert_eq!(recs.count(&paged).await.expect("count"), 5, "count ignores limit and after");
        let parts = RecordQuery::of("part").children_of(kids.id).limit(10);
        assert_eq!(recs.count(&parts).await.expect("count"), 2);
        assert_eq!(recs.query(&q(&|q| q.limit = 0)).await.expect("q").len(), 1, "limit 0 is clamped to 1");
        host.set_query_cap(3);
        assert_eq!(recs.query(&q(&|_| {})).await.expect("q").len(), 3);

        let scoped = host.context(Some(EstateId(1)));
        assert_eq!(scoped.scope().firm_id, None);
        assert_eq!(scoped.records().count(&q(&|_| {})).await.expect("count"), 4);
        assert_eq!(scoped.records().get(d.id).await.expect("get"), None, "out of scope");
        let other = q(&|q| q.estate_id = Some(EstateId(2)));
        assert!(matches!(scoped.records().query(&other).await, Err(PluginError::Host(_))));
        let unindexed = q(&|q| q.key = Some(("note".into(), "seen".into())));
        assert!(
            matches!(all.records().query(&unindexed).await, Err(PluginError::Host(s)) if s.contains("not a declared key"))
        );
        assert!(matches!(all.records().count(&RecordQuery::default()).await, Err(PluginError::Host(_))));
    }

    #[tokio::test]
    async fn deadlines_fire_once_per_due_instant_with_working_days() {
        let host = host();
        let r = item(&host, 1, "d1", None).await; // Monday 09:00
        host.clock().advance_hours(1);
        assert!(host.run_deadlines().await.is_empty());
        host.clock().advance_hours(1);
        let fired = host.run_deadlines().await;
        assert_eq!(fired.len(), 1);
        assert_eq!(
            (fired[0].rule.as_str(), fired[0].record_id, fired[0].due),
            ("stale", r.id, at(date(2026, 3, 2), 11, 0))
        );
        assert!(host.run_deadlines().await.is_empty());
        // Held on Friday 09:00; Saturday is a make-up workday, so the next working day is Saturday.
        let h = item(&host, 1, "d2", None).await;
        host.clock().set_today(date(2026, 3, 6));
        host.transition(h.id, "hold", Actor::firm(), json!({"tag": "x"})).await.expect("held");
        host.clock().add_make_up_workday(date(2026, 3, 7));
        host.clock().set_now(at(date(2026, 3, 7), 8, 59));
        host.run_deadlines().await;
        assert_eq!(host.record(h.id).map(|r| r.state), Some("held".into()));
        host.clock().set_now(at(date(2026, 3, 7), 9, 0));
        let fired = host.run_deadlines().await;
        // The release reopens the item, whose creation is long past: its stale alert follows in the same tick.
        let rules: Vec<_> = fired.iter().map(|f| (f.rule.as_str(), f.result.is_ok())).collect();
        assert_eq!(rules, [("auto_release", true), ("stale", true)]);
        assert_eq!(host.record(h.id).map(|r| r.state), Some("open".into()));
        assert_eq!(host.clock().add_working_days(date(2026, 3, 6), 1), date(2026, 3, 7));
        host.clock().add_holiday(date(2026, 3, 9));
        assert_eq!(host.clock().add_working_days(date(2026, 3, 6), 2), date(2026, 3, 10));
        assert!(!host.clock().is_working_day(date(2026, 3, 8)), "an ordinary Sunday");
    }
}
