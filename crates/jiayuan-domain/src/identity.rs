//! 证件号码 validation of identity-document numbers, one rule per [`DocKind`].
//!
//! Numbers are normalised first (whitespace removed, ASCII letters upper-cased); positions in
//! errors count characters of the normalised number. Resident ids and 港澳台居民居住证 residence
//! permits are checked with the GB 11643 rules of [`crate::resident_id`]; the other kinds are
//! checked for shape only. Error messages never repeat the number.

use std::fmt;

use crate::person::{DocKind, IdentityDoc, Sex};
use crate::resident_id::{
    RESIDENCE_PERMIT_PREFIXES, RegionRule, ResidentIdError, parse_number, resident_id_check_char,
};
use crate::sensitivity::{Sensitivity, mask};
use crate::time::Date;

/// A validated identity-document number and what it says about its holder.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DocInfo {
    /// Kind of document.
    pub kind: DocKind,
    /// The normalised number as registered in [`IdentityDoc::number`] (a legacy 15-digit resident
    /// id is kept as given).
    pub number: String,
    /// The form used to compare and index numbers: the 18-digit upgrade of a legacy resident id,
    /// otherwise equal to `number`.
    pub canonical: String,
    /// Birth date, for documents that encode it (resident id, residence permit).
    pub birth_date: Option<Date>,
    /// Sex, for documents that encode it (resident id, residence permit).
    pub sex: Option<Sex>,
    /// Whether the number is a legacy 15-digit resident id.
    pub legacy: bool,
}

impl DocInfo {
    /// The registry value for this document.
    pub fn to_identity_doc(&self) -> IdentityDoc {
        IdentityDoc { kind: self.kind, number: self.number.clone() }
    }

    /// The number masked for display.
    pub fn masked(&self) -> String {
        mask(&self.number, Sensitivity::Sensitive)
    }
}

impl fmt::Debug for DocInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DocInfo")
            .field("kind", &self.kind)
            .field("number", &self.masked())
            .field("canonical", &mask(&self.canonical, Sensitivity::Sensitive))
            .field("birth_date", &self.birth_date)
            .field("sex", &self.sex)
            .field("legacy", &self.legacy)
            .finish()
    }
}

/// Why a document number is not valid for its kind. The messages never contain the number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocError {
    /// The number has the wrong number of characters.
    #[error("{} number has {len} characters: expected {expected}", .kind.name_zh())]
    WrongLength {
        /// Kind of document.
        kind: DocKind,
        /// Characters found (after normalisation).
        len: usize,
        /// What the kind allows.
        expected: &'static str,
    },
    /// A character is not allowed at its position.
    #[error("{} number character {position} is not {expected}", .kind.name_zh())]
    BadCharacter {
        /// Kind of document.
        kind: DocKind,
        /// 1-based position in the normalised number.
        position: usize,
        /// What is allowed there.
        expected: &'static str,
    },
    /// The number does not start the way the kind requires.
    #[error("{} number must start with {expected}", .kind.name_zh())]
    WrongPrefix {
        /// Kind of document.
        kind: DocKind,
        /// The allowed beginnings.
        expected: &'static str,
    },
    /// The GB 11643 check character does not match (2023 foreign permanent-residence card).
    #[error("{} number check character is {found} but the first 17 digits give {expected}", .kind.name_zh())]
    CheckDigit {
        /// Kind of document.
        kind: DocKind,
        /// Computed check character.
        expected: char,
        /// Check character found.
        found: char,
    },
    /// A number with the GB 11643 structure (resident id, residence permit) failed its rules.
    #[error("{}: {source}", .kind.name_zh())]
    Gb11643 {
        /// Kind of document.
        kind: DocKind,
        /// What is wrong.
        source: ResidentIdError,
    },
}

impl DocError {
    /// The kind of document the number was checked as.
    pub fn kind(&self) -> DocKind {
        match self {
            DocError::WrongLength { kind, .. }
            | DocError::BadCharacter { kind, .. }
            | DocError::WrongPrefix { kind, .. }
            | DocError::CheckDigit { kind, .. }
            | DocError::Gb11643 { kind, .. } => *kind,
        }
    }
}

/// Normalises a document number: whitespace (including the ideographic space) removed and
/// ASCII letters upper-cased.
pub fn normalise_doc_number(number: &str) -> String {
    number.chars().filter(|c| !c.is_whitespace()).map(|c| c.to_ascii_uppercase()).collect()
}

/// Validates `number` as a document of `kind` and returns its normalised form and what it encodes.
///
/// - 居民身份证: GB 11643 (18 characters or legacy 15 digits), see [`crate::parse_resident_id`];
/// - 港澳台居民居住证: 18 characters starting 810000/820000/830000 with the GB 11643 birth date,
///   sequence and check character;
/// - 港澳居民来往内地通行证: `H` or `M` + 8 digits, optionally + 2 issue digits;
/// - 台湾居民来往大陆通行证: 8 digits;
/// - 外国人永久居留身份证: 3 letters + 12 digits (2017 card), or 18 digits starting with 9 with the
///   GB 11643 check character (2023 card; `X` allowed as check character);
/// - 护照: 5 to 17 letters or digits.
///
/// `today` bounds birth dates (the crate has no clock).
pub fn validate_doc(kind: DocKind, number: &str, today: Date) -> Result<DocInfo, DocError> {
    let n = normalise_doc_number(number);
    let chars: Vec<char> = n.chars().collect();
    let len = chars.len();
    let plain =
        |n: String| DocInfo { kind, canonical: n.clone(), number: n, birth_date: None, sex: None, legacy: false };
    let wrong_length = |expected| DocError::WrongLength { kind, len, expected };
    let must_be = |range: std::ops::Range<usize>, ok: fn(&char) -> bool, expected| match chars[range.clone()]
        .iter()
        .position(|c| !ok(c))
    {
        Some(i) => Err(DocError::BadCharacter { kind, position: range.start + i + 1, expected }),
        None => Ok(()),
    };
    match kind {
        DocKind::ResidentId | DocKind::HkMoTwResidencePermit => {
            let rule = if kind == DocKind::ResidentId {
                RegionRule::MainlandProvince
            } else {
                if len != 18 {
                    return Err(wrong_length("18"));
                }
                if !RESIDENCE_PERMIT_PREFIXES.iter().any(|p| n.starts_with(p)) {
                    return Err(DocError::WrongPrefix {
                        kind,
                        expected: "810000 (Hong Kong), 820000 (Macao) or 830000 (Taiwan)",
                    });
                }
                RegionRule::Unchecked
            };
            let info = parse_number(&n, today, rule).map_err(|source| DocError::Gb11643 { kind, source })?;
            Ok(DocInfo {
                kind,
                number: n,
                canonical: info.normalised,
                birth_date: Some(info.birth_date),
                sex: Some(info.sex),
                legacy: info.legacy,
            })
        }
        DocKind::HomeReturnPermit => {
            if len != 9 && len != 11 {
                return Err(wrong_length("9 or 11 (H or M + 8 digits, optionally + 2 issue digits)"));
            }
            if chars[0] != 'H' && chars[0] != 'M' {
                return Err(DocError::WrongPrefix { kind, expected: "H (Hong Kong) or M (Macao)" });
            }
            must_be(1..len, char::is_ascii_digit, "a digit")?;
            Ok(plain(n))
        }
        DocKind::TaiwanCompatriotPermit => {
            if len != 8 {
                return Err(wrong_length("8 digits"));
            }
            must_be(0..len, char::is_ascii_digit, "a digit")?;
            Ok(plain(n))
        }
        DocKind::ForeignPermanentResident => match len {
            15 => {
                must_be(0..3, char::is_ascii_uppercase, "a letter (nationality code)")?;
                must_be(3..15, char::is_ascii_digit, "a digit")?;
                Ok(plain(n))
            }
            18 => {
                if chars[0] != '9' {
                    return Err(DocError::WrongPrefix { kind, expected: "9 (2023 card)" });
                }
                must_be(0..17, char::is_ascii_digit, "a digit")?;
                if !(chars[17].is_ascii_digit() || chars[17] == 'X') {
                    return Err(DocError::BadCharacter { kind, position: 18, expected: "a digit or X" });
                }
                let expected = resident_id_check_char(&n[..17]).expect("the first 17 characters are ASCII digits");
                if chars[17] != expected {
                    return Err(DocError::CheckDigit { kind, expected, found: chars[17] });
                }
                Ok(plain(n))
            }
            _ => Err(wrong_length("15 (2017 card) or 18 (2023 card)")),
        },
        DocKind::Passport => {
            if !(5..=17).contains(&len) {
                return Err(wrong_length("5 to 17"));
            }
            must_be(0..len, char::is_ascii_alphanumeric, "a letter or digit")?;
            Ok(plain(n))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resident_id::BirthDateProblem;
    use proptest::prelude::*;

    fn today() -> Date {
        Date::from_ymd(2026, 6, 1).expect("valid date")
    }

    fn with_check(first17: &str) -> String {
        format!("{first17}{}", resident_id_check_char(first17).expect("17 digits"))
    }

    #[test]
    fn resident_ids_are_normalised_and_decoded() {
        let info = validate_doc(DocKind::ResidentId, " 110105 19491231 002x ", today()).expect("valid");
        assert_eq!(info.number, "11010519491231002X");
        assert_eq!(info.canonical, info.number);
        assert_eq!(info.sex, Some(Sex::Female));
        assert_eq!(info.birth_date, Date::from_ymd(1949, 12, 31));
        let legacy = validate_doc(DocKind::ResidentId, "110105491231002", today()).expect("valid legacy id");
        assert_eq!(legacy.number, "110105491231002");
        assert_eq!(legacy.canonical, "11010519491231002X");
        assert!(legacy.legacy);
        assert_eq!(legacy.to_identity_doc(), IdentityDoc { kind: DocKind::ResidentId, number: legacy.number.clone() });
        assert_eq!(
            validate_doc(DocKind::ResidentId, "110105194912310025", today()),
            Err(DocError::Gb11643 {
                kind: DocKind::ResidentId,
                source: ResidentIdError::CheckDigit { expected: 'X', found: '5' }
            })
        );
    }

    #[test]
    fn residence_permits() {
        let hk = with_check("81000019900101001");
        let info = validate_doc(DocKind::HkMoTwResidencePermit, &hk, today()).expect("valid permit");
        assert_eq!(info.sex, Some(Sex::Male));
        assert_eq!(info.birth_date, Date::from_ymd(1990, 1, 1));
        // The same number is not a resident id, and a resident id is not a permit.
        assert!(matches!(
            validate_doc(DocKind::ResidentId, &hk, today()),
            Err(DocError::Gb11643 { source: ResidentIdError::ResidencePermitNumber { .. }, .. })
        ));
        assert!(matches!(
            validate_doc(DocKind::HkMoTwResidencePermit, "11010519491231002X", today()),
            Err(DocError::WrongPrefix { .. })
        ));
        assert!(matches!(
            validate_doc(DocKind::HkMoTwResidencePermit, "830000491231002", today()),
            Err(DocError::WrongLength { len: 15, .. })
        ));
        assert_eq!(
            validate_doc(DocKind::HkMoTwResidencePermit, &with_check("83000020300101002"), today()),
            Err(DocError::Gb11643 {
                kind: DocKind::HkMoTwResidencePermit,
                source: ResidentIdError::BadBirthDate { problem: BirthDateProblem::AfterToday }
            })
        );
    }

    #[test]
    fn other_kinds_by_shape() {
        let ok = |kind, n: &str| validate_doc(kind, n, today()).map(|i| i.number);
        assert_eq!(ok(DocKind::HomeReturnPermit, "h1234 5678"), Ok("H12345678".to_owned()));
        assert_eq!(ok(DocKind::HomeReturnPermit, "M1234567801"), Ok("M1234567801".to_owned()));
        assert!(matches!(ok(DocKind::HomeReturnPermit, "K12345678"), Err(DocError::WrongPrefix { .. })));
        assert!(matches!(ok(DocKind::HomeReturnPermit, "H123456789"), Err(DocError::WrongLength { len: 10, .. })));
        assert!(matches!(ok(DocKind::HomeReturnPermit, "H1234A678"), Err(DocError::BadCharacter { position: 6, .. })));
        assert_eq!(ok(DocKind::TaiwanCompatriotPermit, "01234567"), Ok("01234567".to_owned()));
        assert!(matches!(ok(DocKind::TaiwanCompatriotPermit, "0123456"), Err(DocError::WrongLength { .. })));
        assert_eq!(ok(DocKind::ForeignPermanentResident, "usa110090010188"), Ok("USA110090010188".to_owned()));
        assert!(matches!(
            ok(DocKind::ForeignPermanentResident, "US1110090010188"),
            Err(DocError::BadCharacter { position: 3, .. })
        ));
        let card2023 = with_check("93384019850615001");
        assert_eq!(ok(DocKind::ForeignPermanentResident, &card2023), Ok(card2023.clone()));
        let mut broken = card2023[..17].to_owned();
        broken.push(if card2023.ends_with('0') { '1' } else { '0' });
        assert!(matches!(ok(DocKind::ForeignPermanentResident, &broken), Err(DocError::CheckDigit { .. })));
        assert!(matches!(
            ok(DocKind::ForeignPermanentResident, &with_check("13384019850615001")),
            Err(DocError::WrongPrefix { .. })
        ));
        assert_eq!(ok(DocKind::Passport, "e1234 5678"), Ok("E12345678".to_owned()));
        assert!(matches!(ok(DocKind::Passport, "E12"), Err(DocError::WrongLength { len: 3, .. })));
        assert!(matches!(ok(DocKind::Passport, "E1234-5678"), Err(DocError::BadCharacter { position: 6, .. })));
    }

    #[test]
    fn messages_name_the_document_but_not_the_number() {
        let err = validate_doc(DocKind::HomeReturnPermit, "K12345678", today()).expect_err("bad prefix");
        let text = err.to_string();
        assert!(text.starts_with("港澳居民来往内地通行证"), "{text}");
        assert!(!text.contains("12345678"), "{text}");
        assert_eq!(err.kind(), DocKind::HomeReturnPermit);
    }

    const KINDS: [DocKind; 6] = [
        DocKind::ResidentId,
        DocKind::HkMoTwResidencePermit,
        DocKind::HomeReturnPermit,
        DocKind::TaiwanCompatriotPermit,
        DocKind::ForeignPermanentResident,
        DocKind::Passport,
    ];

    proptest! {
        #[test]
        fn permits_with_computed_check_are_valid(prefix in 0usize..3, day in 0i32..40_000, seq in 0u32..1000) {
            let (y, m, d) = Date::from_ymd(1910, 1, 1).expect("valid date").add_days(day).ymd();
            let n = with_check(&format!("{}{y:04}{m:02}{d:02}{seq:03}", RESIDENCE_PERMIT_PREFIXES[prefix]));
            let info = validate_doc(DocKind::HkMoTwResidencePermit, &n, today()).expect("valid permit");
            prop_assert_eq!(info.birth_date, Date::from_ymd(y, m, d));
            prop_assert_eq!(info.sex, Some(if seq % 2 == 1 { Sex::Male } else { Sex::Female }));
        }

        #[test]
        fn validation_is_idempotent(kind in 0usize..6, s in "[0-9A-Za-z ]{0,20}") {
            // Whatever is accepted, its normalised number is accepted again unchanged.
            let kind = KINDS[kind];
            if let Ok(info) = validate_doc(kind, &s, today()) {
                prop_assert_eq!(validate_doc(kind, &info.number, today()), Ok(info));
            }
        }

        #[test]
        fn home_return_permits(letter in "[HMhm]", digits in "[0-9]{8}([0-9]{2})?", spaced in any::<bool>()) {
            let input = if spaced { format!(" {letter} {digits} ") } else { format!("{letter}{digits}") };
            let info = validate_doc(DocKind::HomeReturnPermit, &input, today()).expect("valid permit");
            prop_assert_eq!(info.number, format!("{}{digits}", letter.to_ascii_uppercase()));
        }
    }
}
