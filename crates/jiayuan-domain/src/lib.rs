//! The shared vocabulary of Jiayuan (家园): divisions (with the Luohu seed table), grid cells,
//! estates, buildings and houses, property firms and their assignments, persons and identity
//! documents, money in fen, dates and the working-day calendar, sensitivity classes, and the
//! validators for Chinese identifiers: resident ids (GB 11643), the other identity documents,
//! unified social credit codes (GB 32100) and phone numbers.
//!
//! This crate knows nothing of IO, async, HTTP, SQL or plugins: everything here is a value and a
//! pure function of values. It has no clock either: whatever depends on the current date (a birth
//! date not in the future) takes `today` as a parameter.
#![forbid(unsafe_code)]

pub mod account;
pub mod calendar;
pub mod credit_code;
pub mod division;
pub mod estate;
pub mod firm;
pub mod identity;
pub mod ids;
pub mod luohu;
pub mod money;
pub mod person;
pub mod phone;
pub mod place;
pub mod residence;
pub mod resident_id;
pub mod sensitivity;
pub mod time;

pub use account::{AccountError, AccountScope, Role, check_login};
pub use calendar::{CalendarEntry, CalendarError, DayKind, WorkingCalendar, china_2025};
pub use credit_code::{
    CreditCodeCheck, CreditCodeError, CreditCodeInfo, RegistrationAuthority, check_credit_code, credit_code_check_char,
    parse_credit_code,
};
pub use division::{Division, DivisionCode, DivisionLevel, GridCell, GridCodeError, GridKind, parse_grid_code};
pub use estate::{
    AddressCode, AddressCodeError, Building, Estate, EstateCode, EstateCodeError, EstateKind, House, HouseUse,
    ManagementStatus, OnboardingStage,
};
pub use firm::{FirmKind, PropertyFirm, ServiceAssignment};
pub use identity::{DocError, DocInfo, normalise_doc_number, validate_doc};
pub use ids::{
    AccountId, AgencyUnitId, AlertId, AssignmentId, BuildingId, EstateId, FirmId, HouseId, LeaseId, OccupancyId,
    PersonId, RecordId,
};
pub use luohu::{LUOHU_DISTRICT_CODE, luohu_divisions};
pub use money::{Fen, MoneyParseError, MoneyProblem};
pub use person::{DocKind, Hukou, IdentityDoc, Person, Sex};
pub use phone::{Phone, PhoneError};
pub use place::{AgencyKind, AgencyUnit, DEFAULT_AGENCY_KINDS, Place, is_agency_kind_code};
pub use residence::{Lease, Occupancy, Relation, periods_overlap};
pub use resident_id::{BirthDateProblem, ResidentIdError, ResidentIdInfo, parse_resident_id, resident_id_check_char};
pub use sensitivity::{Sensitivity, mask};
pub use time::{Date, Timestamp, Weekday};
