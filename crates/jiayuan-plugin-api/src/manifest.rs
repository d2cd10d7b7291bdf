//! [`Manifest`]: what a service item declares about itself.
//!
//! The host reads the manifest once, at load, and derives everything generic from it: the JSON
//! shape each record kind accepts, which transitions exist and who may fire them, which deadlines
//! to watch, which keys to index, which fields to mask and which KPIs the evaluation can ask for.

use serde::{Deserialize, Serialize};

pub use jiayuan_domain::Sensitivity;

/// A label in Chinese first, English second.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    /// 中文.
    pub zh: String,
    /// English.
    pub en: String,
}

impl Label {
    /// A label from its Chinese and English texts.
    pub fn new(zh: &str, en: &str) -> Label {
        Label { zh: zh.to_owned(), en: en.to_owned() }
    }
}

/// The static description of a service item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Stable id, kebab-case, equal to the id in `export_plugin!` and the sidecar (`dog-licensing`).
    pub id: String,
    /// Name of the item, e.g. 文明养犬管理 / civilised dog management.
    pub name: Label,
    /// Plugin version (the crate version).
    pub version: String,
    /// Record kinds the item keeps.
    pub record_kinds: Vec<RecordKind>,
    /// Deadline rules the host evaluates on every scheduler tick.
    pub deadlines: Vec<DeadlineRule>,
    /// KPIs the item can compute for the yearly evaluation.
    pub kpis: Vec<KpiDef>,
}

impl Manifest {
    /// The record kind with this id.
    pub fn kind(&self, id: &str) -> Option<&RecordKind> {
        self.record_kinds.iter().find(|k| k.id == id)
    }
}

/// A kind of record (a case type): its fields, its workflow, its indexed keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordKind {
    /// Id, unique within the plugin (`dog`, `licence`, `incident`).
    pub id: String,
    /// Display name.
    pub label: Label,
    /// Fields of the record's data object. Unknown fields are refused.
    pub fields: Vec<FieldDef>,
    /// Record kind this kind hangs under (a hazard under a patrol), if any. A record of this kind
    /// then needs a parent of that kind.
    pub parent: Option<String>,
    /// The workflow.
    pub workflow: Workflow,
    /// Fields whose values the host indexes for lookups (`chip_no`, `owner_id`).
    pub keys: Vec<KeyDef>,
}

impl RecordKind {
    /// The field with this name.
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// A typed field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldDef {
    /// JSON key, snake_case.
    pub name: String,
    /// Display name.
    pub label: Label,
    /// Type and its constraints.
    #[serde(rename = "type")]
    pub ty: FieldType,
    /// Whether a create must supply it.
    pub required: bool,
    /// Sensitivity class: drives masking in every output.
    pub sensitivity: Sensitivity,
    /// Derived fields are set by the plugin's hooks; input that supplies them is refused.
    pub derived: bool,
}

impl FieldDef {
    /// A required, public, non-derived field.
    pub fn new(name: &str, zh: &str, en: &str, ty: FieldType) -> FieldDef {
        FieldDef {
            name: name.to_owned(),
            label: Label::new(zh, en),
            ty,
            required: true,
            sensitivity: Sensitivity::Public,
            derived: false,
        }
    }

    /// Makes the field optional.
    pub fn optional(mut self) -> FieldDef {
        self.required = false;
        self
    }

    /// Sets the sensitivity class.
    pub fn sensitivity(mut self, s: Sensitivity) -> FieldDef {
        self.sensitivity = s;
        self
    }

    /// Marks the field as derived by the plugin (and so optional on input).
    pub fn derived(mut self) -> FieldDef {
        self.derived = true;
        self.required = false;
        self
    }
}

/// Field types. The host checks each value against its type before any hook runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FieldType {
    /// Free text, at most `max_chars` characters.
    Text {
        /// Upper bound in characters.
        max_chars: u32,
    },
    /// A whole number in `min..=max`.
    Integer {
        /// Lowest allowed value.
        min: i64,
        /// Highest allowed value.
        max: i64,
    },
    /// A decimal number in `min..=max`.
    Decimal {
        /// Lowest allowed value.
        min: f64,
        /// Highest allowed value.
        max: f64,
    },
    /// `true` or `false`.
    Bool,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// An instant, RFC 3339 with offset.
    DateTime,
    /// One of a fixed set of options.
    Choice {
        /// The options.
        options: Vec<ChoiceOption>,
    },
    /// Several of a fixed set of options.
    MultiChoice {
        /// The options.
        options: Vec<ChoiceOption>,
    },
    /// Text of exactly `len` ASCII digits (e.g. a 15-digit microchip number).
    Digits {
        /// Required length.
        len: u32,
    },
    /// A mainland mobile number; normalised to 11 digits.
    Phone,
    /// A 居民身份证 number; the GB 11643 check digit and birth date are verified.
    ResidentId,
    /// A registered person (`PersonId`).
    PersonRef,
    /// A registered house (`HouseId`).
    HouseRef,
    /// Another record of this plugin, of the given kind.
    RecordRef {
        /// The record kind referred to.
        kind: String,
    },
    /// A WGS84 point `{ "lat": .., "lon": .. }`.
    GeoPoint,
}

/// An option of a choice field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChoiceOption {
    /// Stored value, snake_case.
    pub value: String,
    /// Display name.
    pub label: Label,
}

impl ChoiceOption {
    /// An option.
    pub fn new(value: &str, zh: &str, en: &str) -> ChoiceOption {
        ChoiceOption { value: value.to_owned(), label: Label::new(zh, en) }
    }
}

/// A key the host indexes for lookups and uniqueness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyDef {
    /// The field whose value is indexed.
    pub field: String,
    /// Whether two live records of the kind may not share a value (a chip number).
    pub unique: bool,
}

/// Who may fire a transition. The host maps its roles onto these; plugins never see users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// 物业员工 staff of the firm serving the estate.
    FirmStaff,
    /// 物业项目经理 the firm's manager.
    FirmManager,
    /// 社区工作者 community worker.
    CommunityWorker,
    /// 街道 street officer.
    StreetOfficer,
    /// 职能部门 an agency (police station, 城管, 司法所…).
    AgencyOfficer,
    /// 区管理员 district administrator.
    DistrictAdmin,
    /// The host itself: deadline rules and the scheduler.
    System,
}

/// A record kind's state machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workflow {
    /// The state a new record starts in (unless the create hook chooses another declared state).
    pub initial: String,
    /// All states.
    pub states: Vec<StateDef>,
    /// All transitions.
    pub transitions: Vec<TransitionDef>,
}

impl Workflow {
    /// The transition with this id.
    pub fn transition(&self, id: &str) -> Option<&TransitionDef> {
        self.transitions.iter().find(|t| t.id == id)
    }

    /// Whether `state` is declared.
    pub fn has_state(&self, state: &str) -> bool {
        self.states.iter().any(|s| s.id == state)
    }
}

/// A state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateDef {
    /// Id, snake_case.
    pub id: String,
    /// Display name.
    pub label: Label,
    /// Terminal states accept no further transitions and stop every deadline.
    pub terminal: bool,
}

impl StateDef {
    /// A non-terminal state.
    pub fn new(id: &str, zh: &str, en: &str) -> StateDef {
        StateDef { id: id.to_owned(), label: Label::new(zh, en), terminal: false }
    }

    /// Makes the state terminal.
    pub fn terminal(mut self) -> StateDef {
        self.terminal = true;
        self
    }
}

/// A transition between states.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransitionDef {
    /// Id, snake_case (`approve`).
    pub id: String,
    /// Display name.
    pub label: Label,
    /// States it may fire from.
    pub from: Vec<String>,
    /// State it leads to.
    pub to: String,
    /// Who may fire it.
    pub actors: Vec<Actor>,
    /// Fields the transition's input may carry; they are merged into the record's data.
    pub input: Vec<FieldDef>,
}

impl TransitionDef {
    /// A transition without input fields.
    pub fn new(id: &str, zh: &str, en: &str, from: &[&str], to: &str, actors: &[Actor]) -> TransitionDef {
        TransitionDef {
            id: id.to_owned(),
            label: Label::new(zh, en),
            from: from.iter().map(|s| (*s).to_owned()).collect(),
            to: to.to_owned(),
            actors: actors.to_vec(),
            input: Vec::new(),
        }
    }

    /// Adds input fields.
    pub fn with_input(mut self, input: Vec<FieldDef>) -> TransitionDef {
        self.input = input;
        self
    }
}

/// Severity of an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// 提示 for information.
    Info,
    /// 提醒 a reminder.
    Reminder,
    /// 预警 a warning.
    Warning,
    /// 紧急 critical: someone outside the firm must act now.
    Critical,
}

/// A deadline the host watches: when `anchor + offset` passes while a record of `kind` is in one
/// of `in_states`, the host performs `action` — once per record, rule and due instant, even with
/// several host instances on one database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadlineRule {
    /// Id, unique within the plugin (`licence_expiry_t30`).
    pub id: String,
    /// Record kind it applies to.
    pub kind: String,
    /// States in which the rule is live.
    pub in_states: Vec<String>,
    /// What the deadline counts from.
    pub anchor: Anchor,
    /// How far from the anchor (negative: before it, e.g. a T−30 reminder).
    pub offset: Offset,
    /// What happens when it passes.
    pub action: DeadlineAction,
    /// The law or rule this deadline comes from, for the record.
    pub legal_basis: Option<String>,
}

/// What a deadline counts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "field", rename_all = "snake_case")]
pub enum Anchor {
    /// When the record was created.
    Created,
    /// When the record entered its current state.
    StateEntered,
    /// A date or date-time field of the record's data (a date counts from 00:00 Asia/Shanghai).
    Field(String),
}

/// A distance in time, in the unit the rule is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "unit", content = "n", rename_all = "snake_case")]
pub enum Offset {
    /// Hours.
    Hours(i64),
    /// 自然日 calendar days.
    CalendarDays(i32),
    /// 工作日 working days, by the host's holiday calendar (with make-up workdays).
    WorkingDays(i32),
}

/// What the host does when a deadline passes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeadlineAction {
    /// Raise an alert on the record.
    Alert {
        /// Severity.
        severity: Severity,
        /// The alert's text.
        message: Label,
    },
    /// Fire a transition as [`Actor::System`] (e.g. `valid` → `expired`).
    Transition {
        /// The transition's id.
        transition: String,
    },
}

/// A KPI the item computes for the yearly evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KpiDef {
    /// Id, unique within the plugin (`licensed_ratio`).
    pub id: String,
    /// Display name.
    pub label: Label,
    /// Unit of the value.
    pub unit: KpiUnit,
    /// Whether a higher value is better (false for incident rates).
    pub higher_is_better: bool,
}

/// Unit of a KPI value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KpiUnit {
    /// A ratio in `0.0..=1.0`.
    Ratio,
    /// A count.
    Count,
    /// Per 100 households of the estate.
    PerHundredHouseholds,
}
