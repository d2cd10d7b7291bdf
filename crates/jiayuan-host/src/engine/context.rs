//! The host's implementation of [`HostContext`] for one plugin call.
//!
//! Reads are confined to the calling plugin's own records and to the call's place (when the
//! scope names one); persons to those the caller reaches, with only the fields the manifest
//! declares it reads. Every service maps store errors to plain [`PluginError::Host`] text, so no
//! host type crosses into the plugin.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use jiayuan_domain::calendar::WorkingCalendar;
use jiayuan_domain::{Date, Estate, EstateId, House, HouseId, Person, PersonId, Place, RecordId, Timestamp};
use jiayuan_plugin_api::{
    Clock, HostContext, LogLevel, PersonFacts, PersonField, PluginError, Record, RecordQuery, RecordReader,
    RegistryReader, Scope,
};
use jiayuan_store::{PlaceSet, RecordFilter, Store, StoreError, StoredRecord};

use crate::clock::HostClock;

/// Most records a plugin may read in one query.
pub(crate) const MAX_QUERY_LIMIT: u32 = 1000;

/// One call's context.
#[derive(Debug)]
pub(crate) struct CallContext {
    scope: Scope,
    config_json: Arc<str>,
    records: Records,
    registry: Registry,
    clock: CalendarClock,
}

impl CallContext {
    /// Limits the persons this call reads to those `caller` reaches.
    pub(crate) fn with_person_rule(
        mut self,
        registry: crate::registry::Registry,
        caller: crate::access::Caller,
    ) -> Self {
        self.registry.rule = Some((registry, caller));
        self
    }

    /// The person fields the plugin's hooks may read (its manifest's `registry_reads`).
    pub(crate) fn with_person_reads(mut self, reads: Vec<PersonField>) -> Self {
        self.registry.reads = reads;
        self
    }

    pub(crate) fn new(
        plugin: &str,
        scope: Scope,
        store: Store,
        clock: Arc<dyn HostClock>,
        calendar: Arc<WorkingCalendar>,
        config_json: Arc<str>,
    ) -> CallContext {
        let place = scope.place.clone();
        CallContext {
            scope,
            config_json,
            records: Records { plugin: plugin.to_owned(), place, store: store.clone() },
            registry: Registry {
                store,
                rule: None,
                reads: Vec::new(),
                persons: Mutex::new(HashMap::new()),
                houses: Mutex::new(HashMap::new()),
                estates: Mutex::new(HashMap::new()),
            },
            clock: CalendarClock { clock, calendar },
        }
    }
}

impl CallContext {
    /// A person, read once per call (the engine's reference checks and the plugin share it).
    pub(crate) async fn person(&self, id: PersonId) -> Result<Option<Person>, StoreError> {
        self.registry.person_cached(id).await
    }

    /// Seeds the call's registry cache with an estate the engine has already read.
    pub(crate) fn remember_estate(&self, estate: Estate) {
        let id = estate.id;
        remember(&self.registry.estates, id, &Some(estate));
    }

    /// A house, read once per call.
    pub(crate) async fn house(&self, id: HouseId) -> Result<Option<House>, StoreError> {
        self.registry.house_cached(id).await
    }
}

impl HostContext for CallContext {
    fn scope(&self) -> &Scope {
        &self.scope
    }

    fn records(&self) -> &dyn RecordReader {
        &self.records
    }

    fn registry(&self) -> &dyn RegistryReader {
        &self.registry
    }

    fn clock(&self) -> &dyn Clock {
        &self.clock
    }

    fn log(&self, level: LogLevel, message: &str, fields: &[(&str, &str)]) {
        let plugin = self.records.plugin.as_str();
        let request_id = self.scope.request_id.as_str();
        let fields = fields.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
        match level {
            LogLevel::Debug => tracing::debug!(target: "jiayuan::plugin", plugin, request_id, fields, "{message}"),
            LogLevel::Info => tracing::info!(target: "jiayuan::plugin", plugin, request_id, fields, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "jiayuan::plugin", plugin, request_id, fields, "{message}"),
            LogLevel::Error => tracing::error!(target: "jiayuan::plugin", plugin, request_id, fields, "{message}"),
        }
    }

    fn config_json(&self) -> &str {
        &self.config_json
    }
}

fn host_error(what: &str, e: StoreError) -> PluginError {
    PluginError::Host(format!("{what}: {e}"))
}

/// Converts a stored record into the plugin's view.
pub(crate) fn to_record(r: StoredRecord) -> Record {
    Record::new(
        r.id,
        &r.kind,
        r.place,
        r.parent_id,
        &r.state,
        r.data_json,
        r.created_at,
        r.updated_at,
        r.state_entered_at,
        r.occurred_at,
        r.version,
    )
}

#[derive(Debug)]
struct Records {
    plugin: String,
    place: Option<Place>,
    store: Store,
}

impl Records {
    fn filter(&self, q: &RecordQuery) -> Result<RecordFilter, PluginError> {
        if q.kind.is_empty() {
            return Err(PluginError::Host("a record query must name a record kind".into()));
        }
        let one = |p: &Place| PlaceSet {
            estates: p.estate().into_iter().collect(),
            grid_cells: p.grid_cell().map(str::to_owned).into_iter().collect(),
        };
        let places = match (&self.place, q.estate_id) {
            (Some(scope), Some(asked)) if scope != &Place::Estate(asked) => {
                return Err(PluginError::Host(format!("estate {asked} lies outside the call's scope ({scope})")));
            }
            (Some(scope), _) => Some(one(scope)),
            (None, Some(asked)) => Some(one(&Place::Estate(asked))),
            (None, None) => None,
        };
        Ok(RecordFilter {
            plugin: self.plugin.clone(),
            kind: Some(q.kind.clone()),
            places,
            states: q.states.clone(),
            key: q.key.clone(),
            parent_id: q.parent_id,
            after: q.after,
            limit: q.limit.clamp(1, MAX_QUERY_LIMIT),
            ..RecordFilter::default()
        })
    }
}

#[async_trait]
impl RecordReader for Records {
    async fn get(&self, id: RecordId) -> Result<Option<Record>, PluginError> {
        let r = self.store.record(&self.plugin, id).await.map_err(|e| host_error("reading a record", e))?;
        Ok(r.filter(|r| self.place.as_ref().is_none_or(|p| p == &r.place)).map(to_record))
    }

    async fn query(&self, q: &RecordQuery) -> Result<Vec<Record>, PluginError> {
        let filter = self.filter(q)?;
        let rows = self.store.records(&filter).await.map_err(|e| host_error("querying records", e))?;
        Ok(rows.into_iter().map(to_record).collect())
    }

    async fn count(&self, q: &RecordQuery) -> Result<u64, PluginError> {
        let filter = self.filter(q)?;
        self.store.count_records(&filter).await.map_err(|e| host_error("counting records", e))
    }
}

/// Registry reads, cached for the length of one call: the engine's reference checks and the
/// plugin's hook see the same rows, and each row is read once.
#[derive(Debug)]
struct Registry {
    store: Store,
    /// The registry's person-reach rule and the caller it applies to (`None`: every person).
    rule: Option<(crate::registry::Registry, crate::access::Caller)>,
    /// The person fields the plugin may read.
    reads: Vec<PersonField>,
    persons: Mutex<HashMap<PersonId, Option<Person>>>,
    houses: Mutex<HashMap<HouseId, Option<House>>>,
    estates: Mutex<HashMap<EstateId, Option<Estate>>>,
}

fn cached<K: Eq + Hash + Copy, V: Clone>(cache: &Mutex<HashMap<K, Option<V>>>, key: K) -> Option<Option<V>> {
    cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key).cloned()
}

fn remember<K: Eq + Hash, V: Clone>(cache: &Mutex<HashMap<K, Option<V>>>, key: K, value: &Option<V>) {
    cache.lock().unwrap_or_else(|p| p.into_inner()).insert(key, value.clone());
}

impl Registry {
    async fn person_cached(&self, id: PersonId) -> Result<Option<Person>, StoreError> {
        if let Some(hit) = cached(&self.persons, id) {
            return Ok(hit);
        }
        let mut row = self.store.person(id).await?;
        if row.is_some()
            && let Some((registry, caller)) = &self.rule
            && !registry.reaches_person(caller, id).await?
        {
            row = None;
        }
        remember(&self.persons, id, &row);
        Ok(row)
    }

    async fn house_cached(&self, id: HouseId) -> Result<Option<House>, StoreError> {
        if let Some(hit) = cached(&self.houses, id) {
            return Ok(hit);
        }
        let row = self.store.house(id).await?;
        remember(&self.houses, id, &row);
        Ok(row)
    }

    async fn estate_cached(&self, id: EstateId) -> Result<Option<Estate>, StoreError> {
        if let Some(hit) = cached(&self.estates, id) {
            return Ok(hit);
        }
        let row = self.store.estate(id).await?;
        remember(&self.estates, id, &row);
        Ok(row)
    }
}

#[async_trait]
impl RegistryReader for Registry {
    async fn person(&self, id: PersonId) -> Result<Option<PersonFacts>, PluginError> {
        let person = self.person_cached(id).await.map_err(|e| host_error("reading a person", e))?;
        Ok(person.map(|p| PersonFacts::of(&p, &self.reads)))
    }

    async fn house(&self, id: HouseId) -> Result<Option<House>, PluginError> {
        self.house_cached(id).await.map_err(|e| host_error("reading a house", e))
    }

    async fn estate(&self, id: EstateId) -> Result<Option<Estate>, PluginError> {
        self.estate_cached(id).await.map_err(|e| host_error("reading an estate", e))
    }
}

#[derive(Debug)]
struct CalendarClock {
    clock: Arc<dyn HostClock>,
    calendar: Arc<WorkingCalendar>,
}

impl Clock for CalendarClock {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn is_working_day(&self, day: Date) -> bool {
        self.calendar.is_working_day(day)
    }

    fn add_working_days(&self, day: Date, n: i32) -> Date {
        self.calendar.add_working_days(day, n)
    }
}
