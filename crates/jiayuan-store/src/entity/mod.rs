//! sea-orm entities, one module per table. Private to the crate: the public API speaks domain
//! types. The schema itself is defined by the migrations in `crate::migration`; these entities
//! must match it (the store tests exercise every table on both backends).

pub(crate) mod account;
pub(crate) mod agency_kind;
pub(crate) mod agency_unit;
pub(crate) mod alert;
pub(crate) mod api_token;
pub(crate) mod assignment;
pub(crate) mod audit_event;
pub(crate) mod building;
pub(crate) mod division;
pub(crate) mod division_version;
pub(crate) mod enablement;
pub(crate) mod estate;
pub(crate) mod firm;
pub(crate) mod grid_cell;
pub(crate) mod house;
pub(crate) mod idempotency_key;
pub(crate) mod import;
pub(crate) mod import_row;
pub(crate) mod lease;
pub(crate) mod occupancy;
pub(crate) mod person;
pub(crate) mod record;
pub(crate) mod record_event;
pub(crate) mod record_key;
pub(crate) mod record_ref;
pub(crate) mod session;
pub(crate) mod store_meta;
