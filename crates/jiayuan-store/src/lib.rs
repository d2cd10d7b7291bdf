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
//! A record lives at a [`Place`](jiayuan_domain::Place) — an estate or a grid cell
//! (`records.estate_id` / `records.grid_cell`, exactly one set) — and keeps its creator, an
//! optional assignee (an account login) and the time its subject occurred next to the time it was
//! recorded; every event keeps the record's place after it, its own two times and a back-dating
//! reason. Records move with [`RecordUpdate::move_to`]; [`Store::inbox`] answers "assigned to me
//! or waiting on my audience". Every record version writes what it refers to into the reference
//! index (`crate::refs`, [`Store::records_referring`]) in its own batch. The agency registry
//! (`crate::agency`: kinds and units, which agency officers' accounts belong to) is registry
//! data.
//!
//! Column conventions: instants are BIGINT Unix milliseconds, dates TEXT `YYYY-MM-DD`, enums TEXT
//! holding their serde (snake_case) names, JSON TEXT (a place as serde JSON of `Place`:
//! `{"estate":3}`, `{"grid_cell":"440303001001001"}`).
#![forbid(unsafe_code)]

mod accounts;
mod agency;
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
mod refs;
mod registry;
mod registry_write;
mod sealed;
mod store;

pub use accounts::{Account, AccountChange, ApiTokenInfo, NewAccount, NewApiToken, NewSession};
pub use agency::MAX_AGENCY_UNIT_NAME;
pub use audit::{AuditFault, AuditReport, AuditTarget, NewAudit, StoredAudit};
pub use crypto::{FieldKeys, KeyError, MASTER_KEY_LEN};
pub use enablement::{EnablementOverride, EnablementScope};
pub use error::{StoreError, redact_url};
pub use records::{
    AlertFilter, AlertTarget, InboxFilter, IndexKey, MAX_PAGE, NewAlert, NewRecord, ParentRef, PlaceSet, RecordFilter,
    RecordOrder, RecordPosition, RecordRef, RecordUpdate, RefKind, ReferringRecord, StoredAlert, StoredEvent,
    StoredRecord, WriteBatch, WriteResult,
};
pub use registry::{
    ImportLogRow, NewAssignment, NewBuilding, NewEstate, NewFirm, NewHouse, NewLease, NewOccupancy, NewPerson,
};
pub use registry_write::{Change, PERSON_CHUNK, PreparedPerson, RegistryTxn};
pub use store::{Backend, DatabaseSettings, MigrationReport, Store};

#[cfg(test)]
mod tests;
