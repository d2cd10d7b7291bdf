//! 台账 ledgers: the tabular-file half of registry import and export.
//!
//! District offices and property firms keep their registers (divisions, estates, firms,
//! houses, residents…) in Excel. The host describes each registry kind as a [`Sheet`] of
//! [`Column`]s; this crate
//! - reads an uploaded CSV or XLSX into typed [`Row`]s with per-cell [`Problem`]s
//!   ([`Reader`], streaming),
//! - writes exports ([`XlsxExport`], [`CsvExport`]) that re-import exactly, and
//! - writes the import [`template`].
//!
//! It knows nothing of the database, the registry's kinds, HTTP or async. Problems and error
//! texts never carry a raw cell value: only its form through [`jiayuan_domain::mask`] with the
//! column's sensitivity.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cell;
mod csv_source;
mod error;
mod export;
mod header;
mod problem;
mod reader;
mod sheet;
mod template;
mod xlsx_source;

pub use error::LedgerError;
pub use export::{CsvExport, Provenance, XlsxExport};
pub use header::NOTES_MARKER;
pub use problem::Problem;
pub use reader::{Format, Progress, Reader, ReaderLimits, RowOutcome};
pub use sheet::{CellKind, Choice, Column, Row, Sheet, Value};
pub use template::{format_hint, template};
