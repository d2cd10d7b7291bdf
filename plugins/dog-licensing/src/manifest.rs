//! The manifest: record kinds `dog`, `vaccination`, `licence`, `incident`, their fields and
//! workflows, the deadline rules of licences and incidents, and the KPIs.

use jiayuan_plugin_api::manifest::Offset;
use jiayuan_plugin_api::{
    Anchor, Audience, ChoiceOption, DeadlineAction, DeadlineRule, FieldDef, FieldType, Guard, KeyDef, KpiDef, KpiUnit,
    Label, Manifest, PersonField, PlaceKind, RecordKind, Sensitivity, Severity, StateDef, TransitionDef, Workflow,
};

use crate::law::{CHIP_RULE, EXPIRY_RULE, INCIDENT_RULE, REVIEW_RULE};

/// The plugin's id.
pub const PLUGIN_ID: &str = "dog-licensing";

/// Record kind ids.
pub mod kind {
    /// 犬只 a dog.
    pub const DOG: &str = "dog";
    /// 狂犬病免疫 a rabies vaccination (child of a dog).
    pub const VACCINATION: &str = "vaccination";
    /// 犬证 a dog licence (child of a dog).
    pub const LICENCE: &str = "licence";
    /// 犬只事件 an incident (unleashed, fouling, bite…).
    pub const INCIDENT: &str = "incident";
}

/// State ids.
pub mod state {
    /// Dog: 在养.
    pub const KEPT: &str = "kept";
    /// Dog: 走失.
    pub const LOST: &str = "lost";
    /// Dog: 死亡.
    pub const DEAD: &str = "dead";
    /// Dog: 已转让.
    pub const TRANSFERRED: &str = "transferred";
    /// Dog: 已迁出.
    pub const MOVED_OUT: &str = "moved_out";
    /// Dog: 已没收.
    pub const CONFISCATED: &str = "confiscated";
    /// Vaccination: 已登记.
    pub const RECORDED: &str = "recorded";
    /// Vaccination: 已作废.
    pub const VOIDED: &str = "voided";
    /// Licence: 申请中.
    pub const APPLYING: &str = "applying";
    /// Licence: 审核中.
    pub const UNDER_REVIEW: &str = "under_review";
    /// Licence: 有效.
    pub const VALID: &str = "valid";
    /// Licence: 即将到期.
    pub const EXPIRING_SOON: &str = "expiring_soon";
    /// Licence: 已过期 (renewable).
    pub const EXPIRED: &str = "expired";
    /// Licence: 不予登记.
    pub const REJECTED: &str = "rejected";
    /// Licence: 已注销.
    pub const CANCELLED: &str = "cancelled";
    /// Licence: 已吊销.
    pub const REVOKED: &str = "revoked";
    /// Incident: 已上报.
    pub const REPORTED: &str = "reported";
    /// Incident: 已处置.
    pub const HANDLED: &str = "handled";
    /// Incident: 已办结.
    pub const CLOSED: &str = "closed";
}

/// Transition ids with a hook of their own.
pub mod transition {
    /// Dog: lost → kept.
    pub const REPORT_FOUND: &str = "report_found";
    /// Licence: under_review → valid.
    pub const APPROVE: &str = "approve";
    /// Licence: valid / expiring_soon / expired → valid with a new validity.
    pub const RENEW: &str = "renew";
    /// Licence, System: valid → expiring_soon.
    pub const MARK_EXPIRING: &str = "mark_expiring";
    /// Licence, System: valid / expiring_soon → expired.
    pub const EXPIRE: &str = "expire";
    /// Incident: reported → handled.
    pub const HANDLE: &str = "handle";
    /// Incident: handled → closed, not by the one who reported it (巡办分离).
    pub const CLOSE: &str = "close";
    /// Dog: moves with its owner to another estate, keeping its history.
    pub const RELOCATE: &str = "relocate";
}

/// Deadline rule ids.
pub mod rule {
    /// Review not finished within 7 working days.
    pub const REVIEW_OVERDUE: &str = "licence_review_overdue";
    /// At valid_until − 30: to 即将到期.
    pub const EXPIRING_SOON: &str = "licence_expiring_soon";
    /// At valid_until − 30: reminder.
    pub const REMINDER_T30: &str = "licence_expiry_reminder_t30";
    /// At valid_until − 7: reminder.
    pub const REMINDER_T7: &str = "licence_expiry_reminder_t7";
    /// At valid_until: expired.
    pub const EXPIRED: &str = "licence_expired";
    /// An incident not handled within 24 hours.
    pub const INCIDENT_UNHANDLED: &str = "incident_unhandled";
}

/// KPI ids.
pub mod kpi {
    /// Live dogs with a valid or expiring licence ÷ live dogs.
    pub const LICENSED_RATIO: &str = "licensed_ratio";
    /// Live dogs with a chip ÷ live dogs.
    pub const CHIP_RATE: &str = "chip_rate";
    /// Incidents in the period per 100 households.
    pub const INCIDENTS_PER_100_HOUSEHOLDS: &str = "incidents_per_100_households";
}

/// Consent-certificate issuers accepted for a second dog.
pub const CONSENT_ISSUERS: [(&str, &str, &str); 3] = [
    ("residents_committee", "居委会", "Residents' committee"),
    ("owners_committee", "业委会", "Owners' committee"),
    ("property_management_office", "物业管理处", "Property management office"),
];

/// Incident kinds.
pub const INCIDENT_KINDS: [(&str, &str, &str); 6] = [
    ("unleashed", "未拴犬链", "Unleashed"),
    ("fouling", "未清理犬粪", "Fouling"),
    ("barking", "犬吠扰民", "Barking"),
    ("bite", "犬只伤人", "Bite"),
    ("stray", "流浪犬", "Stray dog"),
    ("suspected_banned_breed", "疑似禁养犬", "Suspected banned breed"),
];

/// What the firm did about an incident (firms never fine: that is 城管's).
pub const INCIDENT_ACTIONS: [(&str, &str, &str); 3] = [
    ("persuaded", "劝导", "Persuaded"),
    ("reported_to_chengguan", "上报城管", "Reported to 城管"),
    ("reported_to_police", "报警", "Reported to the police"),
];

fn options(list: &[(&str, &str, &str)]) -> FieldType {
    FieldType::Choice { options: list.iter().map(|(v, zh, en)| ChoiceOption::new(v, zh, en)).collect() }
}

fn text(max_chars: u32) -> FieldType {
    FieldType::Text { max_chars }
}

/// Who records what happens to a dog: the firm, the community, any agency.
fn staff() -> [Audience; 3] {
    [Audience::Firm, Audience::Community, Audience::any_agency()]
}

/// 公安机关 the police register dogs and approve, refuse and revoke licences (深圳市养犬管理条例).
fn police() -> [Audience; 1] {
    [Audience::agency("police")]
}

/// Who may see an injury: health information of a bite victim (PIPL art. 28).
fn injury_audience() -> [Audience; 3] {
    [Audience::District, Audience::agency("police"), Audience::agency("health")]
}

/// The manifest.
pub fn manifest() -> Manifest {
    let mut m = Manifest::new(PLUGIN_ID, "文明养犬管理", "Civilised dog management", env!("CARGO_PKG_VERSION"))
        .with_kind(dog())
        .with_kind(vaccination())
        .with_kind(licence())
        .with_kind(incident())
        .with_kpi(KpiDef::new(kpi::LICENSED_RATIO, "犬只持证率", "Licensed dogs ratio", KpiUnit::Ratio))
        .with_kpi(KpiDef::new(kpi::CHIP_RATE, "电子标签植入率", "Microchip rate", KpiUnit::Ratio))
        .with_kpi(
            KpiDef::new(
                kpi::INCIDENTS_PER_100_HOUSEHOLDS,
                "每百户犬只事件数",
                "Dog incidents per 100 households",
                KpiUnit::PerHundredHouseholds,
            )
            .lower_is_better(),
        )
        // A minor may not be a dog's owner: the hooks need the owner's birth date, nothing more.
        .reads(&[PersonField::BirthDate]);
    for rule in deadlines() {
        m = m.with_deadline(rule);
    }
    m
}

fn status_note() -> FieldDef {
    FieldDef::new("status_note", "状态说明", "Status note", text(200)).optional()
}

fn consent_certificate() -> FieldDef {
    FieldDef::new("consent_certificate", "多犬同意证明编号", "Multi-dog consent certificate no.", text(50))
        .optional()
        .sensitivity(Sensitivity::Internal)
}

fn consent_issuer() -> FieldDef {
    FieldDef::new("consent_issuer", "同意证明出具单位", "Consent issued by", options(&CONSENT_ISSUERS)).optional()
}

fn dog() -> RecordKind {
    use state::*;
    let staff = staff();
    let workflow = Workflow::new(
        KEPT,
        vec![
            StateDef::new(KEPT, "在养", "Kept"),
            StateDef::new(LOST, "走失", "Lost"),
            StateDef::new(DEAD, "死亡", "Dead").terminal(),
            StateDef::new(TRANSFERRED, "已转让", "Transferred").terminal(),
            StateDef::new(MOVED_OUT, "已迁出", "Moved out").terminal(),
            StateDef::new(CONFISCATED, "已没收", "Confiscated").terminal(),
        ],
        vec![
            TransitionDef::new("report_lost", "报告走失", "Report lost", &[KEPT], LOST)
                .by(&staff)
                .with_input(vec![status_note()]),
            TransitionDef::new(transition::REPORT_FOUND, "已找回", "Report found", &[LOST], KEPT)
                .by(&staff)
                .with_input(vec![consent_certificate(), consent_issuer()]),
            TransitionDef::new("report_dead", "报告死亡", "Report death", &[KEPT, LOST], DEAD)
                .by(&staff)
                .with_input(vec![status_note()]),
            TransitionDef::new("transfer", "转让", "Transfer", &[KEPT], TRANSFERRED)
                .by(&staff)
                .with_input(vec![FieldDef::new("status_note", "状态说明", "Status note", text(200))]),
            TransitionDef::new("move_out", "迁出", "Move out", &[KEPT, LOST], MOVED_OUT)
                .by(&staff)
                .with_input(vec![status_note()]),
            // The owner moved to another estate within the caller's reach: the dog follows with
            // its history (the request names the new place; the house must be given anew).
            TransitionDef::in_place(transition::RELOCATE, "随犬主迁居", "Relocate with the owner", &[KEPT, LOST])
                .by(&[Audience::Firm, Audience::Community, Audience::Street, Audience::District])
                .moves_record()
                .with_input(vec![
                    FieldDef::new("house_id", "饲养房屋", "House", FieldType::HouseRef)
                        .sensitivity(Sensitivity::Internal),
                ]),
            TransitionDef::new("confiscate", "没收", "Confiscate", &[KEPT, LOST], CONFISCATED)
                .by(&police())
                .with_input(vec![FieldDef::new("status_note", "状态说明", "Status note", text(200))]),
        ],
    );
    RecordKind::new(kind::DOG, "犬只", "Dog", workflow)
        .with_fields([
            FieldDef::new("name", "犬名", "Name", text(20)),
            FieldDef::new("breed", "品种", "Breed", text(40)),
            FieldDef::new("sex", "性别", "Sex", options(&[("male", "公", "Male"), ("female", "母", "Female")])),
            FieldDef::new("colour", "毛色", "Colour", text(20)),
            FieldDef::new("birth_date", "出生日期", "Birth date", FieldType::Date).optional(),
            FieldDef::new("weight_kg", "体重（千克）", "Weight (kg)", FieldType::Decimal { min: 0.1, max: 150.0 })
                .optional(),
            FieldDef::new("sterilised", "已绝育", "Sterilised", FieldType::Bool),
            FieldDef::new("chip_no", "电子标签号", "Microchip no.", FieldType::Digits { len: CHIP_RULE.digits })
                .optional()
                .sensitivity(Sensitivity::Internal),
            FieldDef::new("owner_id", "犬主", "Owner", FieldType::PersonRef).sensitivity(Sensitivity::Personal),
            FieldDef::new("house_id", "饲养房屋", "House", FieldType::HouseRef).sensitivity(Sensitivity::Internal),
            consent_certificate(),
            consent_issuer(),
            status_note(),
        ])
        .with_key(KeyDef::unique("chip_no"))
        .with_key(KeyDef::lookup("house_id"))
        .with_key(KeyDef::lookup("owner_id"))
}

fn vaccination() -> RecordKind {
    use state::*;
    let workflow = Workflow::new(
        RECORDED,
        vec![StateDef::new(RECORDED, "已登记", "Recorded"), StateDef::new(VOIDED, "已作废", "Voided").terminal()],
        vec![
            TransitionDef::new("void", "作废", "Void", &[RECORDED], VOIDED)
                .by(&staff())
                .with_input(vec![FieldDef::new("void_reason", "作废原因", "Reason for voiding", text(200))]),
        ],
    );
    RecordKind::new(kind::VACCINATION, "狂犬病免疫", "Rabies vaccination", workflow).child_of(kind::DOG).with_fields([
        FieldDef::new("vaccinated_on", "接种日期", "Vaccinated on", FieldType::Date),
        FieldDef::new("clinic", "接种单位", "Clinic", text(60)),
        FieldDef::new("batch", "疫苗批号", "Vaccine batch", text(40)),
        FieldDef::new("next_due", "下次接种日期", "Next due", FieldType::Date),
        FieldDef::new("void_reason", "作废原因", "Reason for voiding", text(200)).optional(),
    ])
}

fn reason(required: bool) -> FieldDef {
    let f = FieldDef::new("reason", "原因", "Reason", text(200));
    if required { f } else { f.optional() }
}

fn licence() -> RecordKind {
    use state::*;
    let live = [APPLYING, UNDER_REVIEW, VALID, EXPIRING_SOON, EXPIRED];
    let workflow = Workflow::new(
        APPLYING,
        vec![
            StateDef::new(APPLYING, "申请中", "Applying"),
            StateDef::new(UNDER_REVIEW, "审核中", "Under review"),
            StateDef::new(VALID, "有效", "Valid"),
            StateDef::new(EXPIRING_SOON, "即将到期", "Expiring soon"),
            StateDef::new(EXPIRED, "已过期", "Expired"),
            StateDef::new(REJECTED, "不予登记", "Rejected").terminal(),
            StateDef::new(CANCELLED, "已注销", "Cancelled").terminal(),
            StateDef::new(REVOKED, "已吊销", "Revoked").terminal(),
        ],
        vec![
            TransitionDef::new("submit", "提交审核", "Submit for review", &[APPLYING], UNDER_REVIEW)
                .by(&[Audience::Firm, Audience::Community]),
            TransitionDef::new("return_for_correction", "退回补正", "Return for correction", &[UNDER_REVIEW], APPLYING)
                .by(&police())
                .with_input(vec![reason(true)]),
            TransitionDef::new(transition::APPROVE, "核发犬证", "Approve", &[UNDER_REVIEW], VALID).by(&police()),
            TransitionDef::new("reject", "不予登记", "Reject", &[UNDER_REVIEW], REJECTED)
                .by(&police())
                .with_input(vec![reason(true)]),
            TransitionDef::new(transition::MARK_EXPIRING, "即将到期", "Mark expiring", &[VALID], EXPIRING_SOON)
                .by_system(),
            TransitionDef::new(transition::EXPIRE, "到期", "Expire", &[VALID, EXPIRING_SOON], EXPIRED).by_system(),
            TransitionDef::new(transition::RENEW, "续期", "Renew", &[VALID, EXPIRING_SOON, EXPIRED], VALID)
                .by(&staff()),
            TransitionDef::new("cancel", "注销", "Cancel", &live, CANCELLED)
                .by(&staff())
                .with_input(vec![reason(true)]),
            TransitionDef::new("revoke", "吊销", "Revoke", &[VALID, EXPIRING_SOON, EXPIRED], REVOKED)
                .by(&police())
                .with_input(vec![reason(true)]),
        ],
    );
    RecordKind::new(kind::LICENCE, "犬证", "Dog licence", workflow)
        .child_of(kind::DOG)
        .with_fields([
            FieldDef::new("licence_no", "犬证编号", "Licence no.", text(30)).derived(),
            FieldDef::new("issued_on", "发证日期", "Issued on", FieldType::Date).derived(),
            FieldDef::new("valid_until", "有效期至", "Valid until", FieldType::Date).derived(),
            reason(false),
        ])
        .with_key(KeyDef::unique("licence_no"))
}

fn incident() -> RecordKind {
    use state::*;
    let workflow = Workflow::new(
        REPORTED,
        vec![
            StateDef::new(REPORTED, "已上报", "Reported"),
            StateDef::new(HANDLED, "已处置", "Handled"),
            StateDef::new(CLOSED, "已办结", "Closed").terminal(),
        ],
        vec![
            TransitionDef::new(transition::HANDLE, "处置", "Handle", &[REPORTED], HANDLED)
                .by(&[Audience::Firm, Audience::Community, Audience::agency("urban_management")])
                .with_input(vec![
                    FieldDef::new("action", "处置方式", "Action taken", options(&INCIDENT_ACTIONS)),
                    FieldDef::new("handling_note", "处置说明", "Handling note", text(500)).optional(),
                ]),
            // 巡办分离: whoever reported the incident does not also close it.
            TransitionDef::new(transition::CLOSE, "办结", "Close", &[HANDLED], CLOSED)
                .by(&[Audience::Firm, Audience::Community, Audience::Street, Audience::any_agency()])
                .guard(Guard::NotCreator),
        ],
    );
    RecordKind::new(kind::INCIDENT, "犬只事件", "Dog incident", workflow)
        // A stray dog on a street front happens outside any estate: incidents may sit at a grid cell.
        .at(&[PlaceKind::Estate, PlaceKind::GridCell])
        .with_fields([
            FieldDef::new("kind", "事件类型", "Kind", options(&INCIDENT_KINDS)),
            FieldDef::new("occurred_at", "发生时间", "Occurred at", FieldType::DateTime),
            FieldDef::new("location", "地点", "Location", text(100)),
            FieldDef::new("dog", "涉事犬只", "Dog", FieldType::RecordRef { kind: kind::DOG.into() }).optional(),
            FieldDef::new("description", "情况描述", "Description", text(500)).sensitivity(Sensitivity::Personal),
            // 伤情 a bite victim's injuries are health data: the district, the police and community
            // health see them; the firm that reported the bite does not.
            FieldDef::new("injury", "伤情", "Injury", text(300))
                .optional()
                .sensitivity(Sensitivity::Sensitive)
                .visible_to(&injury_audience())
                .unmask_by(&[Audience::District, Audience::agency("police")]),
            FieldDef::new("action", "处置方式", "Action taken", options(&INCIDENT_ACTIONS)).optional(),
            FieldDef::new("handling_note", "处置说明", "Handling note", text(500)).optional(),
        ])
}

fn deadlines() -> Vec<DeadlineRule> {
    use state::*;
    let expiry = |id: &str, in_states: &[&str], days: i32, action: DeadlineAction| {
        DeadlineRule::new(
            id,
            kind::LICENCE,
            in_states,
            Anchor::Field("valid_until".into()),
            Offset::CalendarDays(-days),
            action,
        )
        .legal_basis(EXPIRY_RULE.legal_basis)
    };
    let reminder = |days: i32| DeadlineAction::Alert {
        severity: Severity::Reminder,
        message: Label::new(
            &format!("犬证将在{days}天后到期，请提醒犬主为犬只接种狂犬病疫苗并办理续期"),
            &format!("The dog licence expires in {days} days: remind the owner to revaccinate and renew"),
        ),
    };
    vec![
        DeadlineRule::new(
            rule::REVIEW_OVERDUE,
            kind::LICENCE,
            &[UNDER_REVIEW],
            Anchor::StateEntered,
            Offset::WorkingDays(REVIEW_RULE.working_days),
            DeadlineAction::Alert {
                severity: Severity::Warning,
                message: Label::new(
                    &format!("养犬登记审核已超过{}个工作日", REVIEW_RULE.working_days),
                    &format!("The licence review has taken more than {} working days", REVIEW_RULE.working_days),
                ),
            },
        )
        .legal_basis(REVIEW_RULE.legal_basis),
        expiry(
            rule::EXPIRING_SOON,
            &[VALID],
            EXPIRY_RULE.expiring_soon_days,
            DeadlineAction::Transition { transition: transition::MARK_EXPIRING.into() },
        ),
        expiry(
            rule::REMINDER_T30,
            &[VALID, EXPIRING_SOON],
            EXPIRY_RULE.expiring_soon_days,
            reminder(EXPIRY_RULE.expiring_soon_days),
        ),
        expiry(
            rule::REMINDER_T7,
            &[VALID, EXPIRING_SOON],
            EXPIRY_RULE.final_reminder_days,
            reminder(EXPIRY_RULE.final_reminder_days),
        ),
        expiry(
            rule::EXPIRED,
            &[VALID, EXPIRING_SOON],
            0,
            DeadlineAction::Transition { transition: transition::EXPIRE.into() },
        ),
        DeadlineRule::new(
            rule::INCIDENT_UNHANDLED,
            kind::INCIDENT,
            &[REPORTED],
            Anchor::Created,
            Offset::Hours(INCIDENT_RULE.handle_within_hours),
            DeadlineAction::Alert {
                severity: Severity::Warning,
                message: Label::new(
                    &format!("犬只事件上报已超过{}小时仍未处置", INCIDENT_RULE.handle_within_hours),
                    &format!(
                        "The dog incident is unhandled {} hours after its report",
                        INCIDENT_RULE.handle_within_hours
                    ),
                ),
            },
        )
        .legal_basis(INCIDENT_RULE.legal_basis),
    ]
}
