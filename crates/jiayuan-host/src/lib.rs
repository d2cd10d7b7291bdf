//! The Jiayuan (家园) host runtime: settings, the plugin loader and registry, enablement, the
//! record engine and the deadline scheduler.
//!
//! Request flow: caller → reach → enablement → type checks → the plugin's hook (guarded, under a
//! timeout) → one store transaction. Time flows through [`scheduler::tick`].

pub mod access;
pub mod clock;
pub mod enablement;
pub mod engine;
pub mod ledger;
pub mod plugins;
pub mod registry;
pub mod runtime;
pub mod scheduler;
pub mod settings;
