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
//!     Actor, CreateCall, FieldDef, FieldType, HostContext, Label, Manifest, Outcome, PluginError,
//!     RecordKind, ServicePlugin, StateDef, TransitionDef, Workflow,
//! };
//!
//! pub struct NoiseLog;
//!
//! #[async_trait]
//! impl ServicePlugin for NoiseLog {
//!     fn manifest(&self) -> Manifest {
//!         Manifest {
//!             id: "noise-log".into(),
//!             name: Label::new("噪音登记", "Noise log"),
//!             version: env!("CARGO_PKG_VERSION").into(),
//!             record_kinds: vec![RecordKind {
//!                 id: "complaint".into(),
//!                 label: Label::new("噪音投诉", "Noise complaint"),
//!                 fields: vec![
//!                     FieldDef::new("room", "房号", "Room", FieldType::Text { max_chars: 20 }),
//!                     FieldDef::new("decibels", "分贝", "Decibels", FieldType::Integer { min: 0, max: 200 }),
//!                 ],
//!                 parent: None,
//!                 workflow: Workflow {
//!                     initial: "open".into(),
//!                     states: vec![
//!                         StateDef::new("open", "待处理", "Open"),
//!                         StateDef::new("closed", "已办结", "Closed").terminal(),
//!                     ],
//!                     transitions: vec![TransitionDef::new(
//!                         "close", "办结", "Close", &["open"], "closed", &[Actor::FirmStaff],
//!                     )],
//!                 },
//!                 keys: vec![],
//!             }],
//!             deadlines: vec![],
//!             kpis: vec![],
//!         }
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
//! # The rules of the boundary
//!
//! - Host and plugin are built by the same `rustc` against the same release of this crate; the host
//!   checks both ([`API_VERSION`], [`RUSTC_VERSION`]) before it calls any plugin code.
//! - Only `std` types, [`jiayuan_domain`] types and this crate's types cross. JSON crosses as `String`.
//! - A plugin never uses tokio, a database driver, a logger or a global allocator of its own: its
//!   copy of tokio has no runtime. It reaches storage, time, logs and config through [`HostContext`].
//! - Panics never cross: `export_plugin!` wraps every entry point in [`PanicGuard`].

pub mod error;
pub mod export;
pub mod host;
pub mod manifest;
pub mod plugin;
pub mod validate;

pub use async_trait::async_trait;
pub use jiayuan_domain;

pub use error::{FieldViolation, PluginError};
pub use export::{
    API_CRATE_VERSION, API_VERSION, DECL_ABI_VERSION, DECL_MAGIC, DECL_SYMBOL_PREFIX, PanicGuard, PluginDeclaration,
    RUSTC_VERSION, TARGET, declaration_symbol,
};
pub use host::{Clock, HostContext, LogLevel, Record, RecordQuery, RecordReader, RegistryReader, Scope};
pub use manifest::{
    Actor, Anchor, ChoiceOption, DeadlineAction, DeadlineRule, FieldDef, FieldType, KeyDef, KpiDef, KpiUnit, Label,
    Manifest, Offset, RecordKind, Sensitivity, Severity, StateDef, TransitionDef, Workflow,
};
pub use plugin::{AlertDraft, ChildDraft, CreateCall, KpiCall, KpiValue, Outcome, ServicePlugin, TransitionCall};
