//! [`Manifest`]: what a service item declares about itself.
//!
//! The host reads the manifest once, at load, and derives everything generic from it: the JSON
//! shape each record kind accepts, which transitions exist and who may fire them, which deadlines
//! to watch, which keys to index, which fields to mask and which KPIs the evaluation can ask for.

use serde::{Deserialize, Serialize};

pub use jiayuan_domain::Sensitivity;

use crate::audience::{Actor, Audience, Guard};

/// Most hours of back-dating a kind allows unless it says otherwise: an entry may declare that it
/// happened up to 3 days before it was recorded without a reason.
pub const DEFAULT_MAX_BACKDATE_HOURS: u32 = 72;

/// A label in Chinese first, English second.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
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

/// The static description of a service item. Build it with [`Manifest::new`] and the chained
/// methods; the struct is `#[non_exhaustive]` so that later editions can add declarations without
/// breaking a plugin's source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
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
    /// 数据最小化 the registry fields of persons the hooks read; the host hands a hook only
    /// these ([`crate::PersonFacts`]). Empty: a hook learns only that a person exists.
    #[serde(default)]
    pub registry_reads: Vec<PersonField>,
}

impl Manifest {
    /// A manifest without kinds, deadlines or KPIs yet.
    pub fn new(id: &str, name_zh: &str, name_en: &str, version: &str) -> Manifest {
        Manifest {
            id: id.to_owned(),
            name: Label::new(name_zh, name_en),
            version: version.to_owned(),
            record_kinds: Vec::new(),
            deadlines: Vec::new(),
            kpis: Vec::new(),
            registry_reads: Vec::new(),
        }
    }

    /// Adds a record kind.
    pub fn with_kind(mut self, kind: RecordKind) -> Manifest {
        self.record_kinds.push(kind);
        self
    }

    /// Adds a deadline rule.
    pub fn with_deadline(mut self, rule: DeadlineRule) -> Manifest {
        self.deadlines.push(rule);
        self
    }

    /// Adds a KPI.
    pub fn with_kpi(mut self, kpi: KpiDef) -> Manifest {
        self.kpis.push(kpi);
        self
    }

    /// Declares the person fields the hooks read.
    pub fn reads(mut self, fields: &[PersonField]) -> Manifest {
        self.registry_reads.extend_from_slice(fields);
        self
    }

    /// The record kind with this id.
    pub fn kind(&self, id: &str) -> Option<&RecordKind> {
        self.record_kinds.iter().find(|k| k.id == id)
    }
}

/// A registry field of a person that a plugin's hooks may read (see [`Manifest::reads`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PersonField {
    /// 姓名 the name.
    Name,
    /// 性别 sex.
    Sex,
    /// 出生日期 birth date (an age check needs nothing else).
    BirthDate,
    /// 证件 the identity document's kind and number.
    Document,
    /// 手机 the mobile phone.
    Phone,
    /// 户籍 household registration.
    Hukou,
    /// 居所 the house of the current primary residence.
    Residence,
}

/// Where records of a kind may sit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PlaceKind {
    /// 小区 an estate.
    Estate,
    /// 网格 a grid cell: work outside estates (street-front shops, drop points, campaigns).
    GridCell,
}

/// A kind of record (a case type): its fields, its workflow, its indexed keys, who may see it and
/// where its records sit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
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
    /// 知悉范围 the audiences that may see records of this kind at all; `None`: every audience
    /// that reaches the record's place. For everyone else the kind does not exist.
    #[serde(default)]
    pub visible_to: Option<Vec<Audience>>,
    /// Where its records may sit (default: estates only).
    #[serde(default = "estates_only")]
    pub places: Vec<PlaceKind>,
    /// How far before its recording an entry may declare it happened (`occurred_at`) without a
    /// reason; beyond it a reason is required and the entry is flagged as back-dated.
    #[serde(default = "default_backdate")]
    pub max_backdate_hours: u32,
}

fn estates_only() -> Vec<PlaceKind> {
    vec![PlaceKind::Estate]
}

fn default_backdate() -> u32 {
    DEFAULT_MAX_BACKDATE_HOURS
}

impl RecordKind {
    /// A kind with no fields yet, at estates, visible to every audience that reaches it.
    pub fn new(id: &str, zh: &str, en: &str, workflow: Workflow) -> RecordKind {
        RecordKind {
            id: id.to_owned(),
            label: Label::new(zh, en),
            fields: Vec::new(),
            parent: None,
            workflow,
            keys: Vec::new(),
            visible_to: None,
            places: estates_only(),
            max_backdate_hours: DEFAULT_MAX_BACKDATE_HOURS,
        }
    }

    /// Adds a field.
    pub fn with_field(mut self, field: FieldDef) -> RecordKind {
        self.fields.push(field);
        self
    }

    /// Adds fields.
    pub fn with_fields(mut self, fields: impl IntoIterator<Item = FieldDef>) -> RecordKind {
        self.fields.extend(fields);
        self
    }

    /// Hangs the kind under records of `parent` (a hazard under a patrol).
    pub fn child_of(mut self, parent: &str) -> RecordKind {
        self.parent = Some(parent.to_owned());
        self
    }

    /// Adds an indexed key.
    pub fn with_key(mut self, key: KeyDef) -> RecordKind {
        self.keys.push(key);
        self
    }

    /// Only these audiences may see records of this kind.
    pub fn visible_to(mut self, audiences: &[Audience]) -> RecordKind {
        self.visible_to = Some(audiences.to_vec());
        self
    }

    /// Where its records may sit.
    pub fn at(mut self, places: &[PlaceKind]) -> RecordKind {
        self.places = places.to_vec();
        self
    }

    /// The back-dating an entry may declare without a reason, in hours.
    pub fn backdating_hours(mut self, hours: u32) -> RecordKind {
        self.max_backdate_hours = hours;
        self
    }

    /// Whether `audience` may see records of this kind.
    pub fn visible(&self, audience: &Audience) -> bool {
        self.visible_to.as_ref().is_none_or(|v| Audience::any_admits(v, audience))
    }

    /// Every field a record's data may hold: the kind's fields, then the inputs of its
    /// transitions not already declared (transition input is merged into the record's data).
    pub fn data_fields(&self) -> impl Iterator<Item = &FieldDef> {
        let own = self.fields.iter();
        let inputs = self
            .workflow
            .transitions
            .iter()
            .flat_map(|t| t.input.iter())
            .filter(|f| !self.fields.iter().any(|g| g.name == f.name));
        own.chain(inputs)
    }

    /// The field with this name.
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// A typed field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
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
    /// 知悉范围 the audiences that may see the field at all; `None`: whoever sees the record.
    /// For everyone else it is absent from every answer, and filtering, sorting or supplying it
    /// is refused like an unknown field. A field with a restricted audience cannot be required.
    #[serde(default)]
    pub visible_to: Option<Vec<Audience>>,
    /// The audiences that may unmask a [`Sensitivity::Sensitive`] field (never the firm).
    /// Empty: nobody sees it in clear through the platform.
    #[serde(default)]
    pub unmask_by: Vec<Audience>,
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
            visible_to: None,
            unmask_by: Vec::new(),
        }
    }

    /// Only these audiences may see the field.
    pub fn visible_to(mut self, audiences: &[Audience]) -> FieldDef {
        self.visible_to = Some(audiences.to_vec());
        self
    }

    /// These audiences may unmask the (sensitive) field.
    pub fn unmask_by(mut self, audiences: &[Audience]) -> FieldDef {
        self.unmask_by = audiences.to_vec();
        self
    }

    /// Whether `audience` may see the field.
    pub fn visible(&self, audience: &Audience) -> bool {
        self.visible_to.as_ref().is_none_or(|v| Audience::any_admits(v, audience))
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
#[non_exhaustive]
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
    /// 职能部门单位 an agency unit of the registry (`AgencyUnitId`), of the given kind (`*`: any).
    AgencyUnitRef {
        /// The agency kind its unit must be of (`police`), or `*`.
        kind: String,
    },
}

impl FieldType {
    /// Whether the type's values are text, which masking shortens rather than omits (names,
    /// codes, numbers written as digits). Everything else that is masked is omitted.
    pub fn is_text(&self) -> bool {
        matches!(self, FieldType::Text { .. } | FieldType::Digits { .. } | FieldType::Phone | FieldType::ResidentId)
    }

    /// Whether the type has few possible values (a blind index of it would be a dictionary).
    pub fn is_low_cardinality(&self) -> bool {
        matches!(self, FieldType::Bool | FieldType::Choice { .. } | FieldType::MultiChoice { .. })
    }
}

/// An option of a choice field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
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
#[non_exhaustive]
pub struct KeyDef {
    /// The field whose value is indexed.
    pub field: String,
    /// Whether two live records of the kind may not share a value (a chip number).
    pub unique: bool,
}

impl KeyDef {
    /// A lookup key on `field`.
    pub fn lookup(field: &str) -> KeyDef {
        KeyDef { field: field.to_owned(), unique: false }
    }

    /// A unique key on `field`.
    pub fn unique(field: &str) -> KeyDef {
        KeyDef { field: field.to_owned(), unique: true }
    }
}

/// A record kind's state machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Workflow {
    /// The state a new record starts in (unless the create hook chooses another declared state).
    pub initial: String,
    /// All states.
    pub states: Vec<StateDef>,
    /// All transitions.
    pub transitions: Vec<TransitionDef>,
}

impl Workflow {
    /// A workflow starting in `initial`.
    pub fn new(initial: &str, states: Vec<StateDef>, transitions: Vec<TransitionDef>) -> Workflow {
        Workflow { initial: initial.to_owned(), states, transitions }
    }

    /// Whether `state` is terminal (an undeclared state counts as terminal: nothing fires from it).
    pub fn is_terminal(&self, state: &str) -> bool {
        self.states.iter().find(|s| s.id == state).is_none_or(|s| s.terminal)
    }

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
#[non_exhaustive]
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
#[non_exhaustive]
pub struct TransitionDef {
    /// Id, snake_case (`approve`).
    pub id: String,
    /// Display name.
    pub label: Label,
    /// States it may fire from.
    pub from: Vec<String>,
    /// State it leads to; `None` keeps the record's state (a correction, a move).
    pub to: Option<String>,
    /// Who may fire it: audiences, and [`Actor::System`] for deadline rules.
    pub actors: Vec<Actor>,
    /// Fields the transition's input may carry; they are merged into the record's data.
    pub input: Vec<FieldDef>,
    /// Further conditions on the one who fires it (lead agency, not the creator, the assignee).
    #[serde(default)]
    pub guards: Vec<Guard>,
    /// Whether the transition moves the record to another place (named in the request) within
    /// the caller's reach; the record keeps its history.
    #[serde(default)]
    pub moves: bool,
}

impl TransitionDef {
    /// A transition from `from` to `to`, fired by nobody yet (add [`TransitionDef::by`]).
    pub fn new(id: &str, zh: &str, en: &str, from: &[&str], to: &str) -> TransitionDef {
        TransitionDef {
            id: id.to_owned(),
            label: Label::new(zh, en),
            from: from.iter().map(|s| (*s).to_owned()).collect(),
            to: Some(to.to_owned()),
            actors: Vec::new(),
            input: Vec::new(),
            guards: Vec::new(),
            moves: false,
        }
    }

    /// A transition that keeps the record's state (a correction, a move).
    pub fn in_place(id: &str, zh: &str, en: &str, from: &[&str]) -> TransitionDef {
        TransitionDef { to: None, ..TransitionDef::new(id, zh, en, from, "") }
    }

    /// Callers of these audiences may fire it.
    pub fn by(mut self, audiences: &[Audience]) -> TransitionDef {
        self.actors.extend(audiences.iter().cloned().map(Actor::Audience));
        self
    }

    /// The host may fire it (deadline rules).
    pub fn by_system(mut self) -> TransitionDef {
        self.actors.push(Actor::System);
        self
    }

    /// Adds input fields.
    pub fn with_input(mut self, input: Vec<FieldDef>) -> TransitionDef {
        self.input = input;
        self
    }

    /// Adds a guard.
    pub fn guard(mut self, guard: Guard) -> TransitionDef {
        self.guards.push(guard);
        self
    }

    /// Makes it move the record to the place named in the request.
    pub fn moves_record(mut self) -> TransitionDef {
        self.moves = true;
        self
    }

    /// The state a record in `current` is in after the transition.
    pub fn target<'a>(&'a self, current: &'a str) -> &'a str {
        self.to.as_deref().unwrap_or(current)
    }

    /// Whether `actor` is among those who may fire it.
    pub fn fired_by(&self, actor: &Actor) -> bool {
        self.actors.iter().any(|a| a.admits(actor))
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
#[non_exhaustive]
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

impl DeadlineRule {
    /// A rule on records of `kind` while in `in_states`.
    pub fn new(
        id: &str,
        kind: &str,
        in_states: &[&str],
        anchor: Anchor,
        offset: Offset,
        action: DeadlineAction,
    ) -> DeadlineRule {
        DeadlineRule {
            id: id.to_owned(),
            kind: kind.to_owned(),
            in_states: in_states.iter().map(|s| (*s).to_owned()).collect(),
            anchor,
            offset,
            action,
            legal_basis: None,
        }
    }

    /// Names the law or rule the deadline comes from.
    pub fn legal_basis(mut self, basis: &str) -> DeadlineRule {
        self.legal_basis = Some(basis.to_owned());
        self
    }
}

/// What a deadline counts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "field", rename_all = "snake_case")]
#[non_exhaustive]
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
#[non_exhaustive]
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
#[non_exhaustive]
pub enum DeadlineAction {
    /// Raise an alert on the record.
    Alert {
        /// Severity.
        severity: Severity,
        /// The alert's text.
        message: Label,
    },
    /// Fire a transition as [`Actor::System`](crate::Actor::System) (e.g. `valid` → `expired`).
    Transition {
        /// The transition's id.
        transition: String,
    },
}

/// A KPI the item computes for the yearly evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
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

impl KpiDef {
    /// A KPI where higher is better.
    pub fn new(id: &str, zh: &str, en: &str, unit: KpiUnit) -> KpiDef {
        KpiDef { id: id.to_owned(), label: Label::new(zh, en), unit, higher_is_better: true }
    }

    /// Makes lower values better (incident rates).
    pub fn lower_is_better(mut self) -> KpiDef {
        self.higher_is_better = false;
        self
    }
}

/// Unit of a KPI value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum KpiUnit {
    /// A ratio in `0.0..=1.0`.
    Ratio,
    /// A count.
    Count,
    /// Per 100 households of the estate.
    PerHundredHouseholds,
}
