//! The contract between the Jiayuan (家园) host and its service-item plugins.
//!
//! A service item (文明养犬管理 dog licensing, 安全生产巡查 safety patrols, …) is a plugin: a crate
//! built as a `cdylib` (loaded by the host) and an `rlib` (linked statically by tests). It declares
//! its record kinds, fields, workflows, deadlines and KPIs in a [`Manifest`], and implements the
//! rules the host cannot know in the hooks of [`ServicePlugin`]. The host does everything generic:
//! storage, type checks, workflow checks, scope, enablement, deadlines, alerts, masking, the API.
//!
//! # A complete plugin
//!
//! ```no_run
//! use async_trait::async_trait;
//! use jiayuan_plugin_api::{
//!     Audience, CreateCall, FieldDef, FieldType, HostContext, Manifest, Outcome, PluginError, RecordKind,
//!     ServicePlugin, StateDef, TransitionDef, Workflow,
//! };
//!
//! pub struct NoiseLog;
//!
//! #[async_trait]
//! impl ServicePlugin for NoiseLog {
//!     fn manifest(&self) -> Manifest {
//!         let workflow = Workflow::new(
//!             "open",
//!             vec![StateDef::new("open", "待处理", "Open"), StateDef::new("closed", "已办结", "Closed").terminal()],
//!             vec![TransitionDef::new("close", "办结", "Close", &["open"], "closed").by(&[Audience::Firm])],
//!         );
//!         let complaint = RecordKind::new("complaint", "噪音投诉", "Noise complaint", workflow)
//!             .with_field(FieldDef::new("room", "房号", "Room", FieldType::Text { max_chars: 20 }))
//!             .with_field(FieldDef::new("decibels", "分贝", "Decibels", FieldType::Integer { min: 0, max: 200 }));
//!         Manifest::new("noise-log", "噪音登记", "Noise log", env!("CARGO_PKG_VERSION")).with_kind(complaint)
//!     }
//!
//!     async fn on_create(&self, ctx: &dyn HostContext, call: CreateCall) -> Result<Outcome, PluginError> {
//!         // The host has already type-checked the data; apply the item's own rules here.
//!         if call.data_json.contains("\"decibels\":0") {
//!             return Err(PluginError::invalid("decibels", "zero", "分贝不能为零", "decibels cannot be zero"));
//!         }
//!         ctx.log(jiayuan_plugin_api::LogLevel::Info, "noise complaint accepted", &[]);
//!         Ok(Outcome::accept())
//!     }
//! }
//!
//! // The one exported symbol, with the panic guard compiled in.
//! jiayuan_plugin_api::export_plugin!(id: "noise-log", create: NoiseLog);
//! ```
//!
//! Build it with `cargo xtask plugins build`, which also writes its `plugin.toml` sidecar, and
//! add its id to `plugins.allow` in the host's configuration.
//!
//! Manifest, record-kind, field, transition, deadline, KPI and outcome structs are
//! `#[non_exhaustive]`: build them with their constructors and `with_…`/builder methods, so that a
//! later addition to the contract does not break a plugin's source.
//!
//! # The rules of the boundary
//!
//! - Host and plugin are built by the same `rustc` against the same release of this crate; the host
//!   checks both ([`API_VERSION`], [`RUSTC_VERSION`]) before it calls any plugin code.
//! - Only `std` types, [`jiayuan_domain`] types and this crate's types cross. JSON crosses as `String`.
//! - A plugin never uses tokio, a database driver, a logger or a global allocator of its own: its
//!   copy of tokio has no runtime. It reaches storage, time, logs and config through [`HostContext`].
//! - Panics never cross: `export_plugin!` wraps every entry point in [`PanicGuard`].

pub mod audience;
pub mod error;
pub mod export;
pub mod host;
pub mod manifest;
pub mod plugin;
pub mod validate;

pub use async_trait::async_trait;
pub use jiayuan_domain;

pub use audience::{ANY_AGENCY, Actor, Audience, AudienceParseError, Guard};
pub use error::{FieldViolation, PluginError};
pub use export::{
    API_CRATE_VERSION, API_VERSION, DECL_ABI_VERSION, DECL_MAGIC, DECL_SYMBOL_PREFIX, PanicGuard, PluginDeclaration,
    RUSTC_VERSION, TARGET, declaration_symbol,
};
pub use host::{Clock, HostContext, LogLevel, PersonFacts, Record, RecordQuery, RecordReader, RegistryReader, Scope};
pub use jiayuan_domain::Place;
pub use manifest::{
    Anchor, ChoiceOption, DEFAULT_MAX_BACKDATE_HOURS, DeadlineAction, DeadlineRule, FieldDef, FieldType, KeyDef,
    KpiDef, KpiUnit, Label, Manifest, Offset, PersonField, PlaceKind, RecordKind, Sensitivity, Severity, StateDef,
    TransitionDef, Workflow,
};
pub use plugin::{AlertDraft, ChildDraft, CreateCall, KpiCall, KpiValue, Outcome, ServicePlugin, TransitionCall};
