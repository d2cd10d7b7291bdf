//! [`HostContext`]: the only way a plugin reaches storage, the registry, time, logs and its config.
//!
//! A plugin's own copy of tokio has no runtime (see ARCHITECTURE.md), so a plugin never spawns,
//! sleeps or opens a connection itself: it awaits these handles, which the host implements on its
//! runtime and guards against its own panics.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use jiayuan_domain::{
    Date, Estate, EstateId, FirmId, House, HouseId, Hukou, IdentityDoc, Person, PersonId, Place, RecordId, Sex,
    Timestamp,
};

use crate::PluginError;
use crate::audience::Audience;
use crate::manifest::PersonField;

/// The tenancy a call runs in. The host decides it from the caller; a plugin cannot widen it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Scope {
    /// The estate the call concerns (`None` for district-wide work such as a scheduler pass,
    /// and for work at a grid cell).
    pub estate_id: Option<EstateId>,
    /// The place the call concerns, when it concerns one.
    pub place: Option<Place>,
    /// The firm serving that estate, if any.
    pub firm_id: Option<FirmId>,
    /// The caller's audience; `None` when the host itself calls (the scheduler). A plugin never
    /// learns more about who calls.
    pub audience: Option<Audience>,
    /// Correlation id for logs.
    pub request_id: String,
}

impl Scope {
    /// A scope at `place` (or none), for `audience`.
    pub fn new(place: Option<Place>, firm_id: Option<FirmId>, audience: Option<Audience>, request_id: String) -> Scope {
        Scope { estate_id: place.as_ref().and_then(Place::estate), place, firm_id, audience, request_id }
    }
}

/// A stored record of the calling plugin, as the plugin sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Record {
    /// Id.
    pub id: RecordId,
    /// Record kind.
    pub kind: String,
    /// Where it sits.
    pub place: Place,
    /// The estate it belongs to, when it sits at one.
    pub estate_id: Option<EstateId>,
    /// Parent record, for child kinds.
    pub parent_id: Option<RecordId>,
    /// Current workflow state.
    pub state: String,
    /// The data object, as JSON text.
    pub data_json: String,
    /// Creation instant.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// When the record entered its current state.
    pub state_entered_at: Timestamp,
    /// When its latest entry says it happened.
    pub occurred_at: Timestamp,
    /// Optimistic-concurrency version, incremented by every change.
    pub version: i64,
}

impl Record {
    /// A record as the host hands it over (hosts and kits build these).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: RecordId,
        kind: &str,
        place: Place,
        parent_id: Option<RecordId>,
        state: &str,
        data_json: String,
        created_at: Timestamp,
        updated_at: Timestamp,
        state_entered_at: Timestamp,
        occurred_at: Timestamp,
        version: i64,
    ) -> Record {
        Record {
            id,
            kind: kind.to_owned(),
            estate_id: place.estate(),
            place,
            parent_id,
            state: state.to_owned(),
            data_json,
            created_at,
            updated_at,
            state_entered_at,
            occurred_at,
            version,
        }
    }
}

/// A filter over the calling plugin's own records: `RecordQuery::of("dog").in_states(&["kept"])`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RecordQuery {
    /// Record kind (required by the host).
    pub kind: String,
    /// Only this estate; `None` means every estate in the call's scope.
    pub estate_id: Option<EstateId>,
    /// Only records in one of these states (empty: any state).
    pub states: Vec<String>,
    /// Only records whose indexed key `field` has `value`.
    pub key: Option<(String, String)>,
    /// Only children of this record.
    pub parent_id: Option<RecordId>,
    /// At most this many (the host caps it).
    pub limit: u32,
    /// Keyset pagination: only ids greater than this.
    pub after: Option<RecordId>,
}

impl RecordQuery {
    /// Records of `kind`, at most the host's cap.
    pub fn of(kind: &str) -> RecordQuery {
        RecordQuery { kind: kind.to_owned(), limit: 1000, ..RecordQuery::default() }
    }

    /// Only this estate.
    pub fn in_estate(mut self, estate: EstateId) -> RecordQuery {
        self.estate_id = Some(estate);
        self
    }

    /// Only these states.
    pub fn in_states(mut self, states: &[&str]) -> RecordQuery {
        self.states = states.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Only records whose indexed key `field` has `value`.
    pub fn with_key(mut self, field: &str, value: &str) -> RecordQuery {
        self.key = Some((field.to_owned(), value.to_owned()));
        self
    }

    /// Only children of `parent`.
    pub fn children_of(mut self, parent: RecordId) -> RecordQuery {
        self.parent_id = Some(parent);
        self
    }

    /// At most `limit`.
    pub fn limit(mut self, limit: u32) -> RecordQuery {
        self.limit = limit;
        self
    }

    /// Only ids after `id` (the next page).
    pub fn after(mut self, id: RecordId) -> RecordQuery {
        self.after = Some(id);
        self
    }
}

/// 数据最小化 what a hook learns of a person: exactly the fields its manifest declares in
/// [`crate::Manifest::reads`], each `None` when undeclared (or unknown to the registry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PersonFacts {
    /// Registry id.
    pub id: PersonId,
    /// Name ([`PersonField::Name`]).
    pub name: Option<String>,
    /// Sex ([`PersonField::Sex`]).
    pub sex: Option<Sex>,
    /// Birth date ([`PersonField::BirthDate`]): the registry's, or the one a resident identity
    /// number encodes.
    pub birth_date: Option<Date>,
    /// Identity document ([`PersonField::Document`]).
    pub doc: Option<IdentityDoc>,
    /// Mobile phone ([`PersonField::Phone`]).
    pub phone: Option<String>,
    /// Household registration ([`PersonField::Hukou`]).
    pub hukou: Option<Hukou>,
    /// Current primary residence ([`PersonField::Residence`]).
    pub house_id: Option<HouseId>,
}

impl PersonFacts {
    /// The facts of `person` that `reads` declares; nothing else.
    pub fn of(person: &Person, reads: &[PersonField]) -> PersonFacts {
        let has = |f: PersonField| reads.contains(&f);
        PersonFacts {
            id: person.id,
            name: has(PersonField::Name).then(|| person.name.clone()),
            sex: if has(PersonField::Sex) { person.sex } else { None },
            birth_date: if has(PersonField::BirthDate) { person.known_birth_date() } else { None },
            doc: has(PersonField::Document).then(|| person.doc.clone()),
            phone: if has(PersonField::Phone) { person.phone.clone() } else { None },
            hukou: has(PersonField::Hukou).then_some(person.hukou),
            house_id: if has(PersonField::Residence) { person.house_id } else { None },
        }
    }
}

/// Reads of the calling plugin's own records. Writes happen only through hook outcomes, so the
/// host keeps every write in one transaction with its event and audit rows.
#[async_trait]
pub trait RecordReader: Send + Sync {
    /// One record, if it exists, belongs to this plugin and lies in scope.
    async fn get(&self, id: RecordId) -> Result<Option<Record>, PluginError>;
    /// Records matching the query, ordered by id.
    async fn query(&self, query: &RecordQuery) -> Result<Vec<Record>, PluginError>;
    /// How many records match the query (ignores `limit` and `after`).
    async fn count(&self, query: &RecordQuery) -> Result<u64, PluginError>;
}

/// Reads of the shared registry (persons, houses, estates).
#[async_trait]
pub trait RegistryReader: Send + Sync {
    /// A person the caller reaches, with only the fields the manifest declares it reads.
    async fn person(&self, id: PersonId) -> Result<Option<PersonFacts>, PluginError>;
    /// A house.
    async fn house(&self, id: HouseId) -> Result<Option<House>, PluginError>;
    /// An estate.
    async fn estate(&self, id: EstateId) -> Result<Option<Estate>, PluginError>;
}

/// Time, as the host sees it (tests move it).
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Timestamp;
    /// Today in Asia/Shanghai.
    fn today(&self) -> Date {
        self.now().shanghai_date()
    }
    /// Whether `day` is a 工作日 working day by the host's holiday calendar.
    fn is_working_day(&self, day: Date) -> bool;
    /// `day` plus `n` working days (negative: before).
    fn add_working_days(&self, day: Date, n: i32) -> Date {
        let step = if n < 0 { -1 } else { 1 };
        let mut left = n.abs();
        let mut d = day;
        while left > 0 {
            d = d.add_days(step);
            if self.is_working_day(d) {
                left -= 1;
            }
        }
        d
    }
}

/// Log levels a plugin may write at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogLevel {
    /// Detailed diagnostics.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that the plugin handled.
    Warn,
    /// A failure.
    Error,
}

/// Everything the host offers a plugin during one call.
pub trait HostContext: Send + Sync {
    /// The call's scope.
    fn scope(&self) -> &Scope;
    /// The plugin's own records.
    fn records(&self) -> &dyn RecordReader;
    /// The shared registry.
    fn registry(&self) -> &dyn RegistryReader;
    /// The clock.
    fn clock(&self) -> &dyn Clock;
    /// Writes a log line through the host's subscriber. Never log personal data unmasked.
    fn log(&self, level: LogLevel, message: &str, fields: &[(&str, &str)]);
    /// This plugin's section of the host configuration (`[plugin_config.<id>]`), as JSON text;
    /// `{}` when absent.
    fn config_json(&self) -> &str;
}
