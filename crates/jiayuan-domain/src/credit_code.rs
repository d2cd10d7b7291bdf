//! 统一社会信用代码 unified social credit codes (GB 32100-2015): shape, check character and the
//! registration authority they encode.
//!
//! Policy: a code with a wrong check character is **reported, not rejected**. Early pilot codes
//! that are really in use do not conform, so [`check_credit_code`] fails only for malformed input
//! and returns [`CreditCodeCheck::CheckCharMismatch`] for the caller to warn about (and, on a
//! person's decision, to accept with a reason: `PropertyFirm::credit_code_override`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The 31 characters of a credit code, in value order (no I, O, Z, S, V).
pub const CREDIT_CODE_CHARSET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";

/// Weights of the 17 body characters, 3^(i−1) mod 31.
const WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

/// The value (0–30) of a credit-code character, or `None` outside the charset.
fn value(c: char) -> Option<u32> {
    CREDIT_CODE_CHARSET.find(c).map(|i| i as u32)
}

/// The check character for the first 17 characters of a credit code, or `None` unless `first17`
/// is exactly 17 characters of [`CREDIT_CODE_CHARSET`].
pub fn credit_code_check_char(first17: &str) -> Option<char> {
    if first17.chars().count() != 17 {
        return None;
    }
    let mut sum = 0;
    for (c, w) in first17.chars().zip(WEIGHTS) {
        sum += value(c)? * w;
    }
    CREDIT_CODE_CHARSET.chars().nth(((31 - sum % 31) % 31) as usize)
}

/// 登记管理部门 the registration authority, from the code's first character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationAuthority {
    /// `1` 机构编制 institutional staffing (public institutions, government bodies).
    InstitutionalStaffing,
    /// `5` 民政 civil affairs (social organisations, foundations).
    CivilAffairs,
    /// `9` 工商 / 市场监管 market regulation (enterprises, individual businesses, cooperatives).
    MarketRegulation,
    /// `Y` 其他 other authorities.
    Other,
    /// Another authority character this crate does not name (e.g. `3` 司法行政 for law firms).
    Unlisted(char),
}

impl RegistrationAuthority {
    /// The authority denoted by a code's first character.
    pub fn from_code_char(c: char) -> RegistrationAuthority {
        match c {
            '1' => RegistrationAuthority::InstitutionalStaffing,
            '5' => RegistrationAuthority::CivilAffairs,
            '9' => RegistrationAuthority::MarketRegulation,
            'Y' => RegistrationAuthority::Other,
            other => RegistrationAuthority::Unlisted(other),
        }
    }

    /// The Chinese name of the authority (`None` for an unlisted one).
    pub fn name_zh(self) -> Option<&'static str> {
        match self {
            RegistrationAuthority::InstitutionalStaffing => Some("机构编制"),
            RegistrationAuthority::CivilAffairs => Some("民政"),
            RegistrationAuthority::MarketRegulation => Some("工商/市场监管"),
            RegistrationAuthority::Other => Some("其他"),
            RegistrationAuthority::Unlisted(_) => None,
        }
    }
}

/// Result of the check-character test of a well-formed code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CreditCodeCheck {
    /// The check character matches.
    Valid,
    /// The check character does not match: warn, do not reject.
    CheckCharMismatch {
        /// Check character computed from the first 17 characters.
        expected: char,
        /// Check character found.
        found: char,
    },
}

impl CreditCodeCheck {
    /// Whether the check character matches.
    pub fn is_valid(self) -> bool {
        self == CreditCodeCheck::Valid
    }

    /// The warning to show for a mismatch, Chinese first, English second.
    pub fn warning(self) -> Option<String> {
        match self {
            CreditCodeCheck::Valid => None,
            CreditCodeCheck::CheckCharMismatch { expected, found } => Some(format!(
                "统一社会信用代码校验位为 {found}，按前 17 位应为 {expected}；请核对，如确属在用代码可注明原因后保存 / \
                 credit code check character is {found}, expected {expected}: verify it, or save it with a reason if \
                 the code is really in use"
            )),
        }
    }
}

/// A well-formed credit code, decoded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CreditCodeInfo {
    /// The code, trimmed and upper-cased.
    pub normalised: String,
    /// Registration authority (position 1).
    pub authority: RegistrationAuthority,
    /// 机构类别 entity-type character (position 2; its meaning depends on the authority).
    pub entity_type: char,
    /// GB/T 2260 code of the registering authority's place (positions 3–8).
    pub region_code: String,
    /// 组织机构代码 organisation code (positions 9–17).
    pub organisation_code: String,
    /// Outcome of the check-character test.
    pub check: CreditCodeCheck,
}

/// Why a text is not a well-formed credit code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreditCodeError {
    /// Not 18 characters.
    #[error("credit code has {len} characters: expected 18")]
    WrongLength {
        /// Characters found (after trimming).
        len: usize,
    },
    /// A character outside the GB 32100 charset.
    #[error(
        "credit code character {position} `{found}` is not allowed: only digits and upper-case letters except I, O, Z, S, V"
    )]
    BadCharacter {
        /// 1-based position.
        position: usize,
        /// The character found.
        found: char,
    },
}

/// Parses a credit code (trimmed, ASCII letters upper-cased) and decodes it. Malformed input is
/// an error; a wrong check character is reported in [`CreditCodeInfo::check`].
pub fn parse_credit_code(s: &str) -> Result<CreditCodeInfo, CreditCodeError> {
    let normalised: String = s.trim().chars().map(|c| c.to_ascii_uppercase()).collect();
    let chars: Vec<char> = normalised.chars().collect();
    if chars.len() != 18 {
        return Err(CreditCodeError::WrongLength { len: chars.len() });
    }
    if let Some(i) = chars.iter().position(|&c| value(c).is_none()) {
        return Err(CreditCodeError::BadCharacter { position: i + 1, found: chars[i] });
    }
    // All 18 characters are ASCII from here on.
    let expected = credit_code_check_char(&normalised[..17]).expect("the first 17 characters are in the charset");
    let check = if chars[17] == expected {
        CreditCodeCheck::Valid
    } else {
        CreditCodeCheck::CheckCharMismatch { expected, found: chars[17] }
    };
    Ok(CreditCodeInfo {
        authority: RegistrationAuthority::from_code_char(chars[0]),
        entity_type: chars[1],
        region_code: normalised[2..8].to_owned(),
        organisation_code: normalised[8..17].to_owned(),
        normalised,
        check,
    })
}

/// Checks a credit code: `Err` only for malformed input (length, charset); a wrong check
/// character is `Ok(CreditCodeCheck::CheckCharMismatch { .. })`, to warn about.
pub fn check_credit_code(s: &str) -> Result<CreditCodeCheck, CreditCodeError> {
    parse_credit_code(s).map(|info| info.check)
}

impl fmt::Display for CreditCodeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.normalised)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_vectors() {
        assert_eq!(check_credit_code("12100000400009880K"), Ok(CreditCodeCheck::Valid));
        let info = parse_credit_code(" 12100000400009880k ").expect("well-formed");
        assert_eq!(info.normalised, "12100000400009880K");
        assert_eq!(info.authority, RegistrationAuthority::InstitutionalStaffing);
        assert_eq!(info.entity_type, '2');
        assert_eq!(info.region_code, "100000");
        assert_eq!(info.organisation_code, "400009880");
        // A real code in use that does not conform: reported, not rejected.
        let pilot = parse_credit_code("91350100M0001TGQXM").expect("well-formed");
        assert_eq!(pilot.check, CreditCodeCheck::CheckCharMismatch { expected: '1', found: 'M' });
        assert_eq!(pilot.authority, RegistrationAuthority::MarketRegulation);
        let warning = pilot.check.warning().expect("mismatch warns");
        assert!(warning.starts_with("统一社会信用代码"), "{warning}");
        assert_eq!(CreditCodeCheck::Valid.warning(), None);
        assert_eq!(credit_code_check_char("91350100M0001TGQX"), Some('1'));
    }

    #[test]
    fn malformed_codes_are_errors() {
        assert_eq!(check_credit_code("12100000400009880"), Err(CreditCodeError::WrongLength { len: 17 }));
        assert_eq!(
            check_credit_code("12100000I00009880K"),
            Err(CreditCodeError::BadCharacter { position: 9, found: 'I' })
        );
        assert_eq!(
            check_credit_code("9135010020000TGQXS"),
            Err(CreditCodeError::BadCharacter { position: 18, found: 'S' })
        );
        assert_eq!(
            check_credit_code("91350100M0001TGQ统M"),
            Err(CreditCodeError::BadCharacter { position: 17, found: '统' })
        );
        assert_eq!(credit_code_check_char("12100000I00009880"), None);
        assert_eq!(credit_code_check_char("1210000040000988"), None);
    }

    #[test]
    fn authorities() {
        assert_eq!(RegistrationAuthority::from_code_char('5'), RegistrationAuthority::CivilAffairs);
        assert_eq!(RegistrationAuthority::from_code_char('Y'), RegistrationAuthority::Other);
        assert_eq!(RegistrationAuthority::from_code_char('3'), RegistrationAuthority::Unlisted('3'));
        assert_eq!(RegistrationAuthority::MarketRegulation.name_zh(), Some("工商/市场监管"));
    }

    fn body() -> impl Strategy<Value = String> {
        proptest::collection::vec(0usize..31, 17)
            .prop_map(|v| v.into_iter().map(|i| CREDIT_CODE_CHARSET.as_bytes()[i] as char).collect())
    }

    proptest! {
        #[test]
        fn computed_check_char_is_valid_and_others_mismatch(first17 in body(), other in 0usize..31) {
            let check = credit_code_check_char(&first17).expect("17 charset characters");
            prop_assert_eq!(check_credit_code(&format!("{first17}{check}")), Ok(CreditCodeCheck::Valid));
            prop_assert_eq!(
                check_credit_code(&format!("{}{check}", first17.to_ascii_lowercase())),
                Ok(CreditCodeCheck::Valid)
            );
            let wrong = CREDIT_CODE_CHARSET.as_bytes()[other] as char;
            if wrong != check {
                prop_assert_eq!(
                    check_credit_code(&format!("{first17}{wrong}")),
                    Ok(CreditCodeCheck::CheckCharMismatch { expected: check, found: wrong })
                );
            }
        }

        #[test]
        fn any_single_character_change_is_caught(first17 in body(), pos in 0usize..17, delta in 1usize..31) {
            let check = credit_code_check_char(&first17).expect("17 charset characters");
            let mut chars: Vec<char> = first17.chars().collect();
            let v = CREDIT_CODE_CHARSET.find(chars[pos]).expect("charset character");
            chars[pos] = CREDIT_CODE_CHARSET.as_bytes()[(v + delta) % 31] as char;
            let changed: String = chars.into_iter().collect();
            prop_assert_ne!(credit_code_check_char(&changed), Some(check));
        }
    }
}
