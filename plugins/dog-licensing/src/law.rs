//! The rules of dog keeping that come from law, as data: each with its figures and the text it
//! comes from. Nothing elsewhere in the plugin writes these figures down again.
//!
//! The sources are summarised in domain.md §3.6. Most were read from reposts, not the gazette:
//! verify each `legal_basis` against the official text before relying on it.

use jiayuan_domain::Date;

/// A civil date as written in a legal source (a `const`-friendly stand-in for [`Date`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CivilDate {
    /// Year.
    pub year: i32,
    /// Month, 1–12.
    pub month: u32,
    /// Day of the month.
    pub day: u32,
}

impl CivilDate {
    /// A civil date.
    pub const fn new(year: i32, month: u32, day: u32) -> CivilDate {
        CivilDate { year, month, day }
    }

    /// As a [`Date`].
    pub fn date(self) -> Date {
        Date::from_ymd(self.year, self.month, self.day)
            .expect("every CivilDate in the legal data is a calendar date (checked by law::tests)")
    }
}

/// 犬只电子标签 microchips: from `required_from`, a dog without a chip counts as unregistered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChipRule {
    /// First day a chip is required (dogs registered earlier may lack one).
    pub required_from: CivilDate,
    /// Length of a chip number (ISO 11784: 3-digit country + 12-digit id).
    pub digits: u32,
    /// Where the rule comes from.
    pub legal_basis: &'static str,
}

/// 《深圳市犬只电子标签植入管理规定（试行）》(2020): a warning period until the end of September
/// 2020; from October 2020 an un-chipped dog counts as unlicensed; the chip number is a 15-digit
/// internationally unique number.
pub const CHIP_RULE: ChipRule = ChipRule {
    required_from: CivilDate::new(2020, 10, 1),
    digits: 15,
    legal_basis: "《深圳市犬只电子标签植入管理规定（试行）》（2020年）：2020年10月1日起未植入电子标签的犬只视为未办理登记",
};

/// Who may keep a dog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerRule {
    /// Youngest age (completed years) of an owner.
    pub min_age: i32,
    /// Where the rule comes from.
    pub legal_basis: &'static str,
}

/// 《深圳市养犬管理条例》: the owner must have full civil capacity (完全民事行为能力), which
/// 《民法典》第十七条、第十八条 gives at 18.
pub const OWNER_RULE: OwnerRule = OwnerRule {
    min_age: 18,
    legal_basis: "《深圳市养犬管理条例》：养犬人应当具有完全民事行为能力；《民法典》第十七条、第十八条：十八周岁以上为成年人",
};

/// Several dogs in one household.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultiDogRule {
    /// Live dogs a household may keep without a consent certificate.
    pub max_without_consent: u32,
    /// Where the rule comes from.
    pub legal_basis: &'static str,
}

/// Shenzhen has no strict one-dog-per-household rule: a second dog needs the estate's convention
/// and a consent certificate from the 居委会 or 业委会 (the online flow also accepts one from the
/// 物业管理处). Hard limits per jurisdiction are configuration (`household_limits`), not law here.
pub const MULTI_DOG_RULE: MultiDogRule = MultiDogRule {
    max_without_consent: 1,
    legal_basis: "《深圳市养犬管理条例》及养犬登记办事指南：饲养两只以上犬只的，应遵守养犬公约并提交居委会、业委会或物业管理处出具的同意证明",
};

/// Review of a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReviewRule {
    /// Working days within which an application is reviewed.
    pub working_days: i32,
    /// Where the rule comes from.
    pub legal_basis: &'static str,
}

/// 深圳市城市管理和综合执法局 养犬登记 guide: applications are reviewed within 7 working days and
/// an electronic licence is issued (cgj.sz.gov.cn, post_8580987).
pub const REVIEW_RULE: ReviewRule = ReviewRule {
    working_days: 7,
    legal_basis: "深圳市城市管理和综合执法局养犬登记办事指南：先接种狂犬病疫苗后登记，7个工作日内完成审核并核发电子犬证",
};

/// Validity and reminders of a licence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryRule {
    /// Calendar days before `valid_until` at which a licence becomes 即将到期 and a first
    /// reminder goes out.
    pub expiring_soon_days: i32,
    /// Calendar days before `valid_until` of the last reminder.
    pub final_reminder_days: i32,
    /// Where the rule comes from.
    pub legal_basis: &'static str,
}

/// The licence is valid as long as the rabies immunisation (its next-due date); owners
/// re-vaccinate yearly and update the record. Whether Shenzhen licences instead carry a fixed
/// one-year validity is an open point (domain.md §8, item 3).
pub const EXPIRY_RULE: ExpiryRule = ExpiryRule {
    expiring_soon_days: 30,
    final_reminder_days: 7,
    legal_basis: "《深圳市养犬管理条例》：犬只应当定期接种狂犬病疫苗；犬证有效期以免疫有效期（下次接种日期）为准（平台设计，待核实）",
};

// The last reminder comes after the first, and both before expiry.
const _: () = assert!(EXPIRY_RULE.expiring_soon_days > EXPIRY_RULE.final_reminder_days);
const _: () = assert!(EXPIRY_RULE.final_reminder_days > 0);

/// Handling of dog incidents by the firm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncidentRule {
    /// Hours within which a reported incident should be handled (persuaded or referred).
    pub handle_within_hours: i64,
    /// Where the rule comes from.
    pub legal_basis: &'static str,
}

/// 城管 is the competent authority and alone fines or confiscates; the firm persuades and
/// reports. A banned breed in an estate goes to 城管 within 24 hours (platform rule).
pub const INCIDENT_RULE: IncidentRule = IncidentRule {
    handle_within_hours: 24,
    legal_basis: "《深圳市养犬管理条例》：区城市管理和综合执法部门为养犬管理主管部门，负责处罚；物业服务企业负责劝阻和报告（24小时内处置为平台规则）",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legal_dates_are_calendar_dates_and_bases_are_given() {
        assert_eq!(CHIP_RULE.required_from.date().to_string(), "2020-10-01");
        for basis in [
            CHIP_RULE.legal_basis,
            OWNER_RULE.legal_basis,
            MULTI_DOG_RULE.legal_basis,
            REVIEW_RULE.legal_basis,
            EXPIRY_RULE.legal_basis,
            INCIDENT_RULE.legal_basis,
        ] {
            assert!(basis.contains('《') || basis.contains("指南"), "{basis}");
        }
    }
}
