//! Persistence for Jiayuan (家园): the shared registry, the record engine's generic tables,
//! alerts and enablement overrides, on SQLite (embedded, WAL) or PostgreSQL with one set of
//! migrations.
//!
//! The public API speaks domain types (`jiayuan-domain`) and the plain structs of this crate;
//! sea-orm and sqlx types never leave it (the entities are private). Every write runs in one
//! transaction — `BEGIN IMMEDIATE` on SQLite, through a single writer connection — and reads
//! use a separate pool. On SQLite, concurrent record-engine batches share one transaction
//! (group commit, each batch in its own savepoint and still all-or-nothing).
//!
//! Column conventions: instants are BIGINT Unix milliseconds, dates TEXT `YYYY-MM-DD`, enums TEXT
//! holding their serde (snake_case) names, JSON TEXT.
#![forbid(unsafe_code)]

mod accounts;
mod audit;
mod batch_sql;
mod convert;
mod crypto;
mod enablement;
mod entity;
mod error;
mod group;
pub mod idempotency;
mod migration;
mod records;
mod registry;
mod registry_write;
mod sealed;
mod store;

pub use accounts::{Account, AccountChange, ApiTokenInfo, NewAccount, NewApiToken, NewSession};
pub use audit::{AuditFault, AuditReport, AuditTarget, NewAudit, StoredAudit};
pub use crypto::{FieldKeys, KeyError, MASTER_KEY_LEN};
pub use enablement::{EnablementOverride, EnablementScope};
pub use error::{StoreError, redact_url};
pub use records::{
    AlertFilter, AlertTarget, IndexKey, MAX_PAGE, NewAlert, NewRecord, ParentRef, RecordFilter, RecordOrder,
    RecordPosition, RecordUpdate, StoredAlert, StoredEvent, StoredRecord, WriteBatch, WriteResult,
};
pub use registry::{
    ImportLogRow, NewAssignment, NewBuilding, NewEstate, NewFirm, NewHouse, NewLease, NewOccupancy, NewPerson,
};
pub use registry_write::{Change, PERSON_CHUNK, PreparedPerson, RegistryTxn};
pub use store::{Backend, DatabaseSettings, MigrationReport, Store};

#[cfg(test)]
mod tests;
