//! The shared vocabulary of Jiayuan (家园): divisions, grid cells, estates, buildings and houses,
//! property firms and their assignments, persons and identity documents, money, dates and the
//! working-day calendar, sensitivity classes, and the validators for Chinese identifiers.
//!
//! This crate knows nothing of IO, async, HTTP, SQL or plugins: everything here is a value and a
//! pure function of values.
#![forbid(unsafe_code)]

pub mod division;
pub mod estate;
pub mod firm;
pub mod ids;
pub mod person;
pub mod sensitivity;
pub mod time;

pub use division::{Division, DivisionCode, DivisionLevel, GridCell, GridKind};
pub use estate::{Building, Estate, House, HouseUse, ManagementStatus, OnboardingStage};
pub use firm::{FirmKind, PropertyFirm, ServiceAssignment};
pub use ids::{AlertId, AssignmentId, BuildingId, EstateId, FirmId, HouseId, PersonId, RecordId};
pub use person::{DocKind, Hukou, IdentityDoc, Person, Sex};
pub use sensitivity::{Sensitivity, mask};
pub use time::{Date, Timestamp, Weekday};
