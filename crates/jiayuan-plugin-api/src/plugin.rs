//! [`ServicePlugin`]: the hooks a service item implements, and the data they exchange.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use jiayuan_domain::{Date, EstateId, Place, Timestamp};

use crate::host::{HostContext, Record};
use crate::manifest::{Label, Manifest, Severity};
use crate::{FieldViolation, PluginError};

/// A service item. The host calls it only for estates where the item is enabled, always under a
/// timeout, and always through the panic guard that `export_plugin!` compiles into the plugin.
#[async_trait]
pub trait ServicePlugin: Send + Sync {
    /// The static description. Called once at load; must not fail.
    fn manifest(&self) -> Manifest;

    /// Validates and derives a new record. The host has already checked every field against its
    /// declared type; the hook applies the item's rules. Return [`PluginError::Invalid`] to refuse.
    async fn on_create(&self, ctx: &dyn HostContext, call: CreateCall) -> Result<Outcome, PluginError>;

    /// Validates and derives a transition. The host has already checked that the transition
    /// exists, fires from the record's state, and that the caller may fire it.
    async fn on_transition(&self, ctx: &dyn HostContext, call: TransitionCall) -> Result<Outcome, PluginError> {
        let _ = (ctx, call);
        Ok(Outcome::accept())
    }

    /// Computes the item's KPIs for one estate over a period (see [`crate::KpiDef`]).
    async fn kpis(&self, ctx: &dyn HostContext, call: KpiCall) -> Result<Vec<KpiValue>, PluginError> {
        let _ = (ctx, call);
        Ok(Vec::new())
    }
}

/// A create request, after the host's type checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CreateCall {
    /// Record kind.
    pub kind: String,
    /// Where the record will sit.
    pub place: Place,
    /// The estate it will belong to, when it sits at one.
    pub estate_id: Option<EstateId>,
    /// When the caller says it happened (the host bounds back-dating).
    pub occurred_at: Timestamp,
    /// The parent record, for child kinds.
    pub parent: Option<Record>,
    /// The data object, as JSON text (phones normalised, dates checked).
    pub data_json: String,
}

/// A transition request, after the host's workflow checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TransitionCall {
    /// The record as stored.
    pub record: Record,
    /// The transition's id.
    pub transition: String,
    /// The transition's input object, as JSON text (`{}` when none).
    pub input_json: String,
    /// Where the record moves to, for a transition that moves it; the call's scope is then that
    /// place (the hook checks the rules of where the record is going).
    pub move_to: Option<Place>,
    /// When the caller says it happened.
    pub occurred_at: Timestamp,
}

impl CreateCall {
    /// A create call (the host builds these; tests and kits too).
    pub fn new(kind: &str, place: Place, data_json: String, occurred_at: Timestamp) -> CreateCall {
        CreateCall { kind: kind.to_owned(), estate_id: place.estate(), place, occurred_at, parent: None, data_json }
    }

    /// Sets the parent record.
    pub fn with_parent(mut self, parent: Record) -> CreateCall {
        self.parent = Some(parent);
        self
    }
}

impl TransitionCall {
    /// A transition call (the host builds these; tests and kits too).
    pub fn new(record: Record, transition: &str, input_json: String, occurred_at: Timestamp) -> TransitionCall {
        TransitionCall { record, transition: transition.to_owned(), input_json, move_to: None, occurred_at }
    }

    /// Sets where the record moves to.
    pub fn with_move(mut self, to: Place) -> TransitionCall {
        self.move_to = Some(to);
        self
    }
}

/// What a hook decided.
///
/// To refuse the input *and* raise alerts (a banned breed is refused and 城管 must be told), return
/// an outcome with `refusal` set: the host writes only the alerts and answers with the violations.
/// To refuse without alerts, returning [`PluginError::Invalid`] is simpler.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Outcome {
    /// Why the input is refused; empty means accepted.
    pub refusal: Vec<FieldViolation>,
    /// Replacement data object (with derived fields), as JSON text. `None` keeps the input
    /// (merged with the transition input, for transitions).
    pub data_json: Option<String>,
    /// The state to store instead of the workflow's (only on create; must be declared).
    pub state: Option<String>,
    /// Alerts to raise in the same transaction.
    pub alerts: Vec<AlertDraft>,
    /// Child records to create in the same transaction (a hazard found on a patrol).
    pub children: Vec<ChildDraft>,
}

impl Outcome {
    /// Accepts the input as it is.
    pub fn accept() -> Outcome {
        Outcome::default()
    }

    /// Refuses the input; add alerts with [`Outcome::with_alert`].
    pub fn refuse(violations: Vec<FieldViolation>) -> Outcome {
        Outcome { refusal: violations, ..Outcome::default() }
    }

    /// Adds an alert.
    pub fn with_alert(mut self, alert: AlertDraft) -> Outcome {
        self.alerts.push(alert);
        self
    }

    /// Replaces the data object (with derived fields).
    pub fn with_data(mut self, data_json: String) -> Outcome {
        self.data_json = Some(data_json);
        self
    }

    /// Stores the new record in this declared state instead of the workflow's initial one.
    pub fn with_state(mut self, state: &str) -> Outcome {
        self.state = Some(state.to_owned());
        self
    }

    /// Creates a child record in the same transaction.
    pub fn with_child(mut self, child: ChildDraft) -> Outcome {
        self.children.push(child);
        self
    }
}

/// An alert a hook raises.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AlertDraft {
    /// Deduplication key within the plugin: the host keeps one alert per (record, key).
    pub key: String,
    /// Severity.
    pub severity: Severity,
    /// Text.
    pub message: Label,
}

impl AlertDraft {
    /// An alert, deduplicated by `key` per record.
    pub fn new(key: &str, severity: Severity, message: Label) -> AlertDraft {
        AlertDraft { key: key.to_owned(), severity, message }
    }
}

/// A child record a hook asks the host to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChildDraft {
    /// Record kind (its manifest `parent` must be the created record's kind).
    pub kind: String,
    /// The data object, as JSON text. The host type-checks it like any input.
    pub data_json: String,
}

impl ChildDraft {
    /// A child of `kind` with this data.
    pub fn new(kind: &str, data_json: String) -> ChildDraft {
        ChildDraft { kind: kind.to_owned(), data_json }
    }
}

/// A KPI request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KpiCall {
    /// The estate.
    pub estate_id: EstateId,
    /// First day of the period.
    pub from: Date,
    /// Last day of the period.
    pub to: Date,
    /// Households of the estate, from the registry.
    pub households: u32,
}

impl KpiCall {
    /// A KPI call for `estate` over `from..=to`.
    pub fn new(estate_id: EstateId, from: Date, to: Date, households: u32) -> KpiCall {
        KpiCall { estate_id, from, to, households }
    }
}

/// One KPI value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KpiValue {
    /// The KPI's id from the manifest.
    pub id: String,
    /// The value; `None` when it is undefined (nothing to count).
    pub value: Option<f64>,
    /// Numerator, for ratios and rates.
    pub numerator: f64,
    /// Denominator, for ratios and rates.
    pub denominator: f64,
}

impl KpiValue {
    /// A value from its numerator and denominator: `numerator ÷ denominator × scale`, undefined
    /// when the denominator is zero (use `scale` 100 for per-hundred rates, 1 for ratios).
    pub fn ratio(id: &str, numerator: f64, denominator: f64, scale: f64) -> KpiValue {
        let value = (denominator > 0.0).then(|| numerator * scale / denominator);
        KpiValue { id: id.to_owned(), value, numerator, denominator }
    }

    /// A count.
    pub fn count(id: &str, n: f64) -> KpiValue {
        KpiValue { id: id.to_owned(), value: Some(n), numerator: n, denominator: 1.0 }
    }
}
