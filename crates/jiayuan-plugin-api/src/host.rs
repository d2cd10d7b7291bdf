//! [`HostContext`]: the only way a plugin reaches storage, the registry, time, logs and its config.
//!
//! A plugin's own copy of tokio has no runtime (see ARCHITECTURE.md), so a plugin never spawns,
//! sleeps or opens a connection itself: it awaits these handles, which the host implements on its
//! runtime and guards against its own panics.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use jiayuan_domain::{Date, Estate, EstateId, FirmId, House, HouseId, Person, PersonId, RecordId, Timestamp};

use crate::PluginError;

/// The tenancy a call runs in. The host decides it from the caller; a plugin cannot widen it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    /// The estate the call concerns (`None` for district-wide work such as a scheduler pass).
    pub estate_id: Option<EstateId>,
    /// The firm serving that estate, if any.
    pub firm_id: Option<FirmId>,
    /// Correlation id for logs.
    pub request_id: String,
}

/// A stored record of the calling plugin, as the plugin sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Id.
    pub id: RecordId,
    /// Record kind.
    pub kind: String,
    /// The estate it belongs to.
    pub estate_id: EstateId,
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
    /// Optimistic-concurrency version, incremented by every change.
    pub version: i64,
}

/// A filter over the calling plugin's own records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// A person.
    async fn person(&self, id: PersonId) -> Result<Option<Person>, PluginError>;
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
