//! Test support for Jiayuan (家园) and its service-item plugins.
//!
//! - [`fixtures`]: deterministic Luohu-flavoured data with valid check characters — resident
//!   identity numbers, credit codes, microchips, phones, names, and a demo registry (divisions,
//!   estates, buildings, houses, firms, persons) that the host's demo command also seeds.
//! - [`TestHost`]: an in-memory [`jiayuan_plugin_api::HostContext`] that drives one plugin the
//!   way the host does: type checks, workflow and actor checks, unique keys, hook outcomes
//!   (refusals with alerts, chosen states, derived data, children), deadline rules and KPIs.
//! - [`conformance`]: [`conformance::check_manifest`], which every plugin's tests call, and
//!   [`conformance::Story`] for scenarios.
//!
//! # A plugin's test
//!
//! ```
//! use jiayuan_domain::{EstateId, House, HouseId, BuildingId, HouseUse};
//! use jiayuan_plugin_api::{
//!     async_trait, Actor, Audience, CreateCall, FieldDef, FieldType, HostContext, Manifest, Outcome,
//!     PluginError, RecordKind, ServicePlugin, StateDef, TransitionDef, Workflow,
//! };
//! use jiayuan_test_support::{TestHost, conformance::{assert_conformant, Story}, fixtures};
//! use serde_json::json;
//!
//! struct NoiseLog;
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
//!             .with_field(FieldDef::new("decibels", "分贝", "Decibels", FieldType::Integer { min: 0, max: 200 }));
//!         Manifest::new("noise-log", "噪音登记", "Noise log", "0.1.0").with_kind(complaint)
//!     }
//!
//!     async fn on_create(&self, _ctx: &dyn HostContext, call: CreateCall) -> Result<Outcome, PluginError> {
//!         if call.data_json.contains("\"decibels\":0") {
//!             return Err(PluginError::invalid("decibels", "zero", "分贝不能为零", "decibels cannot be zero"));
//!         }
//!         Ok(Outcome::accept())
//!     }
//! }
//!
//! # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! # rt.block_on(async {
//! assert_conformant(&NoiseLog);
//! let host = TestHost::new(NoiseLog);
//! host.add_estate(fixtures::demo_estates().remove(0));
//! Story::new("complaints are checked and closed")
//!     .create("c1", "complaint", EstateId(1), json!({ "decibels": 70 }))
//!     .refuse_create("complaint", EstateId(1), json!({ "decibels": 0 }), "decibels", "zero")
//!     .refuse_create("complaint", EstateId(1), json!({ "decibels": 900 }), "decibels", "out_of_range")
//!     .transition("c1", "close", Actor::firm(), json!({}))
//!     .expect_state("c1", "closed")
//!     .run(&host)
//!     .await
//!     .unwrap_or_else(|failure| panic!("{failure}"));
//! # });
//! ```
#![forbid(unsafe_code)]

pub mod conformance;
pub mod fixtures;
mod host;
#[cfg(test)]
mod probe;
mod story;

pub use host::{
    AlertSource, DEFAULT_QUERY_CAP, FiredDeadline, HostError, LogLine, RaisedAlert, TestCaller, TestClock, TestContext,
    TestHost, default_now,
};
