//! 居民身份证 resident identity numbers (公民身份号码, GB 11643-1999): parsing, the ISO 7064
//! MOD 11-2 check character, the birth date and sex they encode, and the upgrade of legacy
//! 15-digit numbers (GB 11643-1989) to 18 characters.
//!
//! An identity number is personal information: errors from this module describe what is wrong
//! with the number but never repeat it, and [`ResidentIdInfo`]'s `Debug` output is masked.

use std::fmt;

use crate::person::Sex;
use crate::sensitivity::{Sensitivity, mask};
use crate::time::Date;

/// Weights of the 17 body digits, 2^(17−i) mod 11.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character for each value of Σ mod 11.
const CHECK_CHARS: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// Earliest birth year accepted in a resident identity number.
pub const EARLIEST_BIRTH_YEAR: i32 = 1900;

/// GB/T 2260 province-level codes (first two digits) that mainland resident identity numbers
/// start with: the 31 mainland provinces plus 71 (台湾省). 81/82 (Hong Kong, Macao) appear only
/// in residence permits, which are a different document kind.
const MAINLAND_PROVINCES: [&str; 32] = [
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41", "42", "43", "44",
    "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71",
];

/// Address codes of 港澳台居民居住证 residence permits (Hong Kong, Macao, Taiwan).
pub const RESIDENCE_PERMIT_PREFIXES: [&str; 3] = ["810000", "820000", "830000"];

/// The check character (`0`–`9` or `X`) for the first 17 digits of an identity number, or `None`
/// unless `first17` is exactly 17 ASCII digits.
pub fn resident_id_check_char(first17: &str) -> Option<char> {
    let bytes = first17.as_bytes();
    if bytes.len() != 17 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = bytes.iter().zip(WEIGHTS).map(|(b, w)| u32::from(b - b'0') * w).sum();
    Some(CHECK_CHARS[(sum % 11) as usize])
}

/// What a valid resident identity number says about its holder.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ResidentIdInfo {
    /// The 18-character number: upper-case `X`, legacy numbers upgraded.
    pub normalised: String,
    /// 6-digit GB/T 2260 address code of the place of first registration (may be a retired code).
    pub region_code: String,
    /// Birth date.
    pub birth_date: Date,
    /// Sex, from the parity of the sequence number (odd: male).
    pub sex: Sex,
    /// Whether the input was a legacy 15-digit number.
    pub legacy: bool,
}

impl ResidentIdInfo {
    /// The number masked for display (`**************0014`).
    pub fn masked(&self) -> String {
        mask(&self.normalised, Sensitivity::Sensitive)
    }
}

impl fmt::Debug for ResidentIdInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResidentIdInfo")
            .field("normalised", &self.masked())
            .field("region_code", &self.region_code)
            .field("birth_date", &self.birth_date)
            .field("sex", &self.sex)
            .field("legacy", &self.legacy)
            .finish()
    }
}

/// What is wrong with the birth date encoded in an identity number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BirthDateProblem {
    /// The digits do not form a day of the calendar (month 13, 30 February, …).
    #[error("is not a calendar date")]
    NotACalendarDate,
    /// The date is later than the `today` given to the parser.
    #[error("is in the future")]
    AfterToday,
    /// The year is before [`EARLIEST_BIRTH_YEAR`].
    #[error("is before 1900")]
    BeforeEarliestYear,
}

/// Why a text is not a valid resident identity number. The messages never contain the number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResidentIdError {
    /// Neither 18 characters nor a legacy 15-digit number.
    #[error("identity number has {len} characters: expected 18 (or 15 for a legacy number)")]
    WrongLength {
        /// Number of characters found.
        len: usize,
    },
    /// A character that must be a digit is not (only the 18th may be `X`).
    #[error("identity number character {position} is not a digit (only the 18th may be X)")]
    NonDigit {
        /// 1-based position of the character.
        position: usize,
    },
    /// The first two digits are not a mainland province code.
    #[error("identity number starts with {code}, which is not a GB/T 2260 mainland province code")]
    UnknownProvince {
        /// The first two digits.
        code: String,
    },
    /// The number starts with a residence-permit address code.
    #[error(
        "identity number starts with {prefix}: it is a 港澳台居民居住证 residence permit number, not a resident id"
    )]
    ResidencePermitNumber {
        /// The 6-digit prefix (810000, 820000 or 830000).
        prefix: String,
    },
    /// The birth-date digits are not acceptable.
    #[error("identity number birth date {problem}")]
    BadBirthDate {
        /// What is wrong with the date.
        problem: BirthDateProblem,
    },
    /// The check character does not match the first 17 digits.
    #[error("identity number check character is {found} but the first 17 digits give {expected}")]
    CheckDigit {
        /// Check character computed from the first 17 digits.
        expected: char,
        /// Check character found (upper-cased).
        found: char,
    },
}

/// Parses and validates a 居民身份证 number: 18 characters (lower-case `x` accepted), or a legacy
/// 15-digit number which is upgraded. The birth date must be a calendar date from 1900 up to
/// `today` (a parameter: the crate has no clock). The text is taken as given: callers trim it
/// (see [`crate::identity::validate_doc`], which also normalises spacing and case).
pub fn parse_resident_id(s: &str, today: Date) -> Result<ResidentIdInfo, ResidentIdError> {
    parse_number(s, today, RegionRule::MainlandProvince)
}

/// Which address codes [`parse_number`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RegionRule {
    /// Resident identity numbers: a mainland province code.
    MainlandProvince,
    /// Any digits (the caller checked the prefix, e.g. residence permits).
    Unchecked,
}

/// GB 11643 structure check shared by resident ids (15 or 18) and residence permits (18).
pub(crate) fn parse_number(s: &str, today: Date, rule: RegionRule) -> Result<ResidentIdInfo, ResidentIdError> {
    let chars: Vec<char> = s.chars().collect();
    let legacy = match chars.len() {
        18 => false,
        15 if rule == RegionRule::MainlandProvince => true,
        len => return Err(ResidentIdError::WrongLength { len }),
    };
    let body_len = if legacy { 15 } else { 17 };
    if let Some(i) = chars[..body_len].iter().position(|c| !c.is_ascii_digit()) {
        return Err(ResidentIdError::NonDigit { position: i + 1 });
    }
    if !legacy && !matches!(chars[17], '0'..='9' | 'X' | 'x') {
        return Err(ResidentIdError::NonDigit { position: 18 });
    }
    // All of the body is ASCII digits from here on, so byte indices are character indices.
    let first17: String = if legacy {
        let digits: String = chars.iter().collect();
        format!("{}19{}", &digits[..6], &digits[6..])
    } else {
        chars[..17].iter().collect()
    };
    if rule == RegionRule::MainlandProvince {
        let prefix = &first17[..6];
        if RESIDENCE_PERMIT_PREFIXES.contains(&prefix) {
            return Err(ResidentIdError::ResidencePermitNumber { prefix: prefix.to_owned() });
        }
        if !MAINLAND_PROVINCES.contains(&&first17[..2]) {
            return Err(ResidentIdError::UnknownProvince { code: first17[..2].to_owned() });
        }
    }
    let birth_date = birth_date(&first17[6..14], today).map_err(|problem| ResidentIdError::BadBirthDate { problem })?;
    let expected = resident_id_check_char(&first17).expect("the first 17 characters were checked to be ASCII digits");
    if !legacy {
        let found = chars[17].to_ascii_uppercase();
        if found != expected {
            return Err(ResidentIdError::CheckDigit { expected, found });
        }
    }
    let sex = if (first17.as_bytes()[16] - b'0') % 2 == 1 { Sex::Male } else { Sex::Female };
    Ok(ResidentIdInfo {
        region_code: first17[..6].to_owned(),
        normalised: format!("{first17}{expected}"),
        birth_date,
        sex,
        legacy,
    })
}

/// The date of 8 ASCII digits `YYYYMMDD`.
fn birth_date(yyyymmdd: &str, today: Date) -> Result<Date, BirthDateProblem> {
    let num = |r: std::ops::Range<usize>| yyyymmdd[r].parse::<u32>().map_err(|_| BirthDateProblem::NotACalendarDate);
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let date = Date::from_ymd(y as i32, m, d).ok_or(BirthDateProblem::NotACalendarDate)?;
    if (y as i32) < EARLIEST_BIRTH_YEAR {
        Err(BirthDateProblem::BeforeEarliestYear)
    } else if date > today {
        Err(BirthDateProblem::AfterToday)
    } else {
        Ok(date)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn today() -> Date {
        Date::from_ymd(2026, 6, 1).expect("valid date")
    }

    fn ymd(y: i32, m: u32, d: u32) -> Date {
        Date::from_ymd(y, m, d).expect("valid date")
    }

    #[test]
    fn standard_example_is_valid() {
        let info = parse_resident_id("11010519491231002X", today()).expect("the GB 11643 example is valid");
        assert_eq!(info.normalised, "11010519491231002X");
        assert_eq!(info.region_code, "110105");
        assert_eq!(info.birth_date, ymd(1949, 12, 31));
        assert_eq!(info.sex, Sex::Female);
        assert!(!info.legacy);
        // Lower-case x is accepted and normalised.
        assert_eq!(parse_resident_id("11010519491231002x", today()), Ok(info));
    }

    #[test]
    fn vector_born_1880_has_a_valid_check_digit_but_is_before_1900() {
        assert_eq!(resident_id_check_char("44052418800101001"), Some('4'));
        assert_eq!(
            parse_resident_id("440524188001010014", today()),
            Err(ResidentIdError::BadBirthDate { problem: BirthDateProblem::BeforeEarliestYear })
        );
    }

    #[test]
    fn rejections_name_the_problem() {
        let t = today();
        assert_eq!(parse_resident_id("1101051949123100", t), Err(ResidentIdError::WrongLength { len: 16 }));
        assert_eq!(parse_resident_id("", t), Err(ResidentIdError::WrongLength { len: 0 }));
        assert_eq!(parse_resident_id("11010519491231A02X", t), Err(ResidentIdError::NonDigit { position: 15 }));
        assert_eq!(parse_resident_id("11010519491231002Y", t), Err(ResidentIdError::NonDigit { position: 18 }));
        assert_eq!(
            parse_resident_id("110105194912310025", t),
            Err(ResidentIdError::CheckDigit { expected: 'X', found: '5' })
        );
        assert_eq!(
            parse_resident_id("990105194912310025", t),
            Err(ResidentIdError::UnknownProvince { code: "99".to_owned() })
        );
        // 1949-13-31 and 2023-02-29 are not days; 2027 is after `today`.
        let with_check = |first17: &str| format!("{first17}{}", resident_id_check_char(first17).expect("17 digits"));
        let bad = |problem| Err(ResidentIdError::BadBirthDate { problem });
        assert_eq!(parse_resident_id(&with_check("11010519491331002"), t), bad(BirthDateProblem::NotACalendarDate));
        assert_eq!(parse_resident_id(&with_check("11010520230229002"), t), bad(BirthDateProblem::NotACalendarDate));
        assert_eq!(parse_resident_id(&with_check("11010520270101002"), t), bad(BirthDateProblem::AfterToday));
        assert!(parse_resident_id(&with_check("11010520260601002"), t).is_ok(), "born today is allowed");
        assert_eq!(
            parse_resident_id(&with_check("81000019900101002"), t),
            Err(ResidentIdError::ResidencePermitNumber { prefix: "810000".to_owned() })
        );
    }

    #[test]
    fn legacy_number_is_upgraded() {
        let info = parse_resident_id("110105491231002", today()).expect("valid legacy number");
        assert_eq!(info.normalised, "11010519491231002X");
        assert_eq!(info.birth_date, ymd(1949, 12, 31));
        assert_eq!(info.sex, Sex::Female);
        assert!(info.legacy);
        assert_eq!(
            parse_resident_id("110105491331002", today()),
            Err(ResidentIdError::BadBirthDate { problem: BirthDateProblem::NotACalendarDate })
        );
        assert_eq!(parse_resident_id("11010549123100X", today()), Err(ResidentIdError::NonDigit { position: 15 }));
    }

    #[test]
    fn errors_and_debug_do_not_reveal_the_number() {
        let info = parse_resident_id("11010519491231002X", today()).expect("valid");
        let debug = format!("{info:?}");
        assert!(!debug.contains("11010519491231002X"), "{debug}");
        assert!(debug.contains("**************002X"), "{debug}");
        let err = parse_resident_id("110105194912310025", today()).expect_err("bad check digit");
        assert!(!err.to_string().contains("11010519491231002"), "{err}");
    }

    /// 17 digits with a mainland province and a birth date between 1900 and 2025.
    fn body() -> impl Strategy<Value = String> {
        (0usize..MAINLAND_PROVINCES.len(), 0u32..10_000, 0i32..45_000, 0u32..1000).prop_map(|(p, area, day, seq)| {
            let (y, m, d) = Date::from_ymd(1900, 1, 1).expect("valid date").add_days(day).ymd();
            format!("{}{area:04}{y:04}{m:02}{d:02}{seq:03}", MAINLAND_PROVINCES[p])
        })
    }

    proptest! {
        #[test]
        fn computed_check_char_is_valid_and_any_other_is_rejected(first17 in body(), other in 0usize..11) {
            let check = resident_id_check_char(&first17).expect("17 digits");
            let id = format!("{first17}{check}");
            let info = parse_resident_id(&id, today()).expect("well-formed body with its check char");
            prop_assert_eq!(&info.normalised, &id);
            let seq_odd = (first17.as_bytes()[16] - b'0') % 2 == 1;
            prop_assert_eq!(info.sex == Sex::Male, seq_odd);
            let wrong = CHECK_CHARS[other];
            if wrong != check {
                prop_assert_eq!(
                    parse_resident_id(&format!("{first17}{wrong}"), today()),
                    Err(ResidentIdError::CheckDigit { expected: check, found: wrong })
                );
            }
        }

        #[test]
        fn any_single_digit_change_is_caught(first17 in body(), pos in 0usize..17, delta in 1u8..10) {
            let check = resident_id_check_char(&first17).expect("17 digits");
            let mut bytes = first17.into_bytes();
            bytes[pos] = b'0' + (bytes[pos] - b'0' + delta) % 10;
            let changed = String::from_utf8(bytes).expect("ASCII digits");
            prop_assert_ne!(resident_id_check_char(&changed), Some(check));
        }

        #[test]
        fn legacy_upgrade_round_trips(first17 in body()) {
            // Only 19xx births have a 15-digit form.
            prop_assume!(&first17[6..8] == "19");
            let legacy = format!("{}{}", &first17[..6], &first17[8..]);
            let old = parse_resident_id(&legacy, today()).expect("valid legacy number");
            prop_assert!(old.legacy);
            let new = parse_resident_id(&old.normalised, today()).expect("the upgrade is a valid 18-digit number");
            prop_assert!(!new.legacy);
            prop_assert_eq!(&new.normalised[..17], first17.as_str());
            prop_assert_eq!(&new.normalised, &old.normalised);
            prop_assert_eq!((new.birth_date, new.sex, &new.region_code), (old.birth_date, old.sex, &old.region_code));
        }
    }
}
