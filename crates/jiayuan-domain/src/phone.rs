//! 电话号码 phone numbers: mainland mobiles (stored as 11 digits) and landlines (stored as
//! `area-number`, e.g. `0755-12345678`).
//!
//! Carrier prefixes are not whitelisted (new segments keep appearing): a mobile is `1`, a digit
//! 3–9 and 9 more digits. A landline's area code is `0` + 2 digits for 010 and 02x, else `0` + 3
//! digits (the national numbering plan), so the split does not depend on where the user put a
//! dash. A phone number is personal information: errors never repeat it and `Debug` masks it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::sensitivity::{Sensitivity, mask};

/// A normalised mainland phone number.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Phone {
    /// 手机 mobile: 11 digits, e.g. `13812345678`.
    Mobile(String),
    /// 固定电话 landline: area code, dash, 7–8 digits, e.g. `0755-12345678`.
    Landline(String),
}

/// Why a text is not a phone number. The messages never contain the number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    /// Nothing but whitespace.
    #[error("phone number is empty")]
    Empty,
    /// An international prefix other than +86.
    #[error("phone number has a country code other than +86")]
    ForeignCountryCode,
    /// A character other than a digit, space or dash.
    #[error("phone number character {position} is not a digit, space or dash")]
    BadCharacter {
        /// 1-based position in the trimmed text.
        position: usize,
    },
    /// A mobile number with the wrong number of digits.
    #[error("mobile number has {len} digits: expected 11")]
    MobileLength {
        /// Digits found (without the country code).
        len: usize,
    },
    /// A mobile number whose second digit is 0, 1 or 2.
    #[error("mobile number must start with 13 to 19")]
    MobilePrefix,
    /// A landline starting with 00 (that is an international call prefix).
    #[error("landline area code must be 0 followed by 2 or 3 digits, not 00")]
    AreaCode,
    /// A landline whose local part is not 7 or 8 digits.
    #[error("landline number after the area code has {len} digits: expected 7 or 8")]
    LandlineLength {
        /// Local digits found.
        len: usize,
    },
    /// A landline whose local part starts with 0 (a second trunk prefix).
    #[error("landline number after the area code cannot start with 0")]
    LandlineStart,
    /// 7 or 8 digits without an area code.
    #[error("landline number has no area code (e.g. 0755-)")]
    MissingAreaCode,
    /// Digits that are neither a mobile nor a landline.
    #[error("phone number must start with 1 (mobile) or 0 (landline area code)")]
    NotAPhoneNumber,
}

impl Phone {
    /// Parses a mobile (`+86`/`86` prefix, spaces and dashes accepted) or a landline with its
    /// area code (`0755-12345678`, `0755 1234 5678`, `+86 755 12345678`).
    pub fn parse(s: &str) -> Result<Phone, PhoneError> {
        let t = s.trim();
        if t.is_empty() {
            return Err(PhoneError::Empty);
        }
        let (plus86, rest, skipped) = match t.strip_prefix('+') {
            Some(r) => match r.strip_prefix("86") {
                Some(r) => (true, r, 3),
                None => return Err(PhoneError::ForeignCountryCode),
            },
            None => (false, t, 0),
        };
        let mut digits = String::with_capacity(rest.len());
        for (i, c) in rest.chars().enumerate() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' => {}
                _ => return Err(PhoneError::BadCharacter { position: skipped + i + 1 }),
            }
        }
        // A bare 86 is a country code: no mobile or landline starts with 8.
        // The shortest number after it is 10 digits (a landline with a 3-digit area code).
        if !plus86 && digits.len() >= 12 && (digits.starts_with("860") || digits.starts_with("861")) {
            digits.drain(..2);
        }
        // In international form a landline drops its trunk 0: +86 755 … is 0755 ….
        if plus86 && digits.starts_with(|c: char| ('2'..='9').contains(&c)) {
            digits.insert(0, '0');
        }
        let b = digits.as_bytes();
        match b.first() {
            None => Err(PhoneError::Empty),
            Some(b'1') => {
                if b.len() != 11 {
                    Err(PhoneError::MobileLength { len: b.len() })
                } else if b[1] < b'3' {
                    Err(PhoneError::MobilePrefix)
                } else {
                    Ok(Phone::Mobile(digits))
                }
            }
            Some(b'0') => {
                let area_len = match b.get(1) {
                    Some(b'0') => return Err(PhoneError::AreaCode),
                    Some(b'1' | b'2') => 3,
                    _ => 4,
                };
                let local = digits.get(area_len..).unwrap_or("");
                if !(7..=8).contains(&local.len()) {
                    Err(PhoneError::LandlineLength { len: local.len() })
                } else if local.starts_with('0') {
                    Err(PhoneError::LandlineStart)
                } else {
                    Ok(Phone::Landline(format!("{}-{local}", &digits[..area_len])))
                }
            }
            Some(_) if (7..=8).contains(&b.len()) => Err(PhoneError::MissingAreaCode),
            Some(_) => Err(PhoneError::NotAPhoneNumber),
        }
    }

    /// The normalised number.
    pub fn as_str(&self) -> &str {
        match self {
            Phone::Mobile(s) | Phone::Landline(s) => s,
        }
    }

    /// Whether this is a mobile number.
    pub fn is_mobile(&self) -> bool {
        matches!(self, Phone::Mobile(_))
    }

    /// The number masked for display (`*******5678`).
    pub fn masked(&self) -> String {
        mask(self.as_str(), Sensitivity::Personal)
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phone::Mobile(_) => write!(f, "Mobile({})", self.masked()),
            Phone::Landline(_) => write!(f, "Landline({})", self.masked()),
        }
    }
}

impl FromStr for Phone {
    type Err = PhoneError;
    fn from_str(s: &str) -> Result<Phone, PhoneError> {
        Phone::parse(s)
    }
}

impl TryFrom<String> for Phone {
    type Error = PhoneError;
    fn try_from(s: String) -> Result<Phone, PhoneError> {
        Phone::parse(&s)
    }
}

impl From<Phone> for String {
    fn from(p: Phone) -> String {
        match p {
            Phone::Mobile(s) | Phone::Landline(s) => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn mobile(s: &str) -> Result<Phone, PhoneError> {
        Phone::parse(s)
    }

    #[test]
    fn mobiles_in_their_usual_spellings() {
        let want = Ok(Phone::Mobile("13812345678".to_owned()));
        for s in ["13812345678", "+8613812345678", "+86 138 1234 5678", "86-138-1234-5678", " 138-1234-5678 "] {
            assert_eq!(mobile(s), want, "{s}");
        }
        assert_eq!(mobile("19912345678").map(|p| p.is_mobile()), Ok(true));
        assert_eq!(mobile("12812345678"), Err(PhoneError::MobilePrefix));
        assert_eq!(mobile("1381234567"), Err(PhoneError::MobileLength { len: 10 }));
        assert_eq!(mobile("+86138123456789"), Err(PhoneError::MobileLength { len: 12 }));
        assert_eq!(mobile("+85291234567"), Err(PhoneError::ForeignCountryCode));
        assert_eq!(mobile("138.1234.5678"), Err(PhoneError::BadCharacter { position: 4 }));
        assert_eq!(mobile("+86 138/1234"), Err(PhoneError::BadCharacter { position: 8 }));
        assert_eq!(mobile("  "), Err(PhoneError::Empty));
        assert_eq!(mobile("- -"), Err(PhoneError::Empty));
    }

    #[test]
    fn landlines() {
        let sz = Ok(Phone::Landline("0755-12345678".to_owned()));
        for s in ["0755-12345678", "075512345678", "0755 1234 5678", "+86 755 12345678", "+86 0755-12345678"] {
            assert_eq!(Phone::parse(s), sz, "{s}");
        }
        assert_eq!(Phone::parse("86 0755 12345678"), sz);
        assert_eq!(Phone::parse("010-8765432").map(String::from), Ok("010-8765432".to_owned()));
        assert_eq!(Phone::parse("020 87654321").map(String::from), Ok("020-87654321".to_owned()));
        assert_eq!(Phone::parse("07551234567").map(String::from), Ok("0755-1234567".to_owned()));
        assert_eq!(Phone::parse("0755-123456"), Err(PhoneError::LandlineLength { len: 6 }));
        assert_eq!(Phone::parse("0755-123456789"), Err(PhoneError::LandlineLength { len: 9 }));
        assert_eq!(Phone::parse("0755-02345678"), Err(PhoneError::LandlineStart));
        assert_eq!(Phone::parse("0085212345678"), Err(PhoneError::AreaCode));
        assert_eq!(Phone::parse("12345678"), Err(PhoneError::MobileLength { len: 8 }));
        assert_eq!(Phone::parse("86123456"), Err(PhoneError::MissingAreaCode));
        assert_eq!(Phone::parse("82345678"), Err(PhoneError::MissingAreaCode));
        assert_eq!(Phone::parse("82345"), Err(PhoneError::NotAPhoneNumber));
    }

    #[test]
    fn display_serde_and_debug() {
        let p = Phone::parse("+86 138 1234 5678").expect("valid mobile");
        assert_eq!(p.to_string(), "13812345678");
        assert_eq!(format!("{p:?}"), "Mobile(*******5678)");
        assert_eq!(serde_json::to_string(&p).expect("serialises"), "\"13812345678\"");
        let back: Phone = serde_json::from_str("\"0755 1234 5678\"").expect("deserialises and normalises");
        assert_eq!(back.as_str(), "0755-12345678");
        assert!(serde_json::from_str::<Phone>("\"12345\"").is_err());
        let err = Phone::parse("0755-02345678").expect_err("bad local number").to_string();
        assert!(!err.contains("02345678"), "{err}");
    }

    proptest! {
        #[test]
        fn mobile_spellings_normalise_to_11_digits(
            second in 3u8..10,
            rest in "[0-9]{9}",
            prefix in prop::sample::select(vec!["", "+86", "86", "+86 ", "86-"]),
            sep in prop::sample::select(vec!["", " ", "-"]),
        ) {
            let digits = format!("1{second}{rest}");
            let input = format!("{prefix}{}{sep}{}{sep}{}", &digits[..3], &digits[3..7], &digits[7..]);
            let p = Phone::parse(&input).expect("valid mobile");
            prop_assert_eq!(&p, &Phone::Mobile(digits));
            prop_assert_eq!(Phone::parse(p.as_str()), Ok(p.clone()));
        }

        #[test]
        fn normalisation_is_idempotent(s in "(\\+86|86)?[0-9 -]{0,16}") {
            if let Ok(p) = Phone::parse(&s) {
                prop_assert_eq!(Phone::parse(p.as_str()), Ok(p.clone()));
                let digits = p.as_str().bytes().filter(u8::is_ascii_digit).count();
                let expected = if p.is_mobile() { 11..=11 } else { 10..=12 };
                prop_assert!(expected.contains(&digits), "{} digits in {:?}", digits, p);
            }
        }

        #[test]
        fn landlines_split_by_the_numbering_plan(area in "0(10|2[0-9]|[3-9][0-9]{2})", local in "[1-9][0-9]{6,7}") {
            let p = Phone::parse(&format!("{area}{local}")).expect("valid landline");
            prop_assert_eq!(p.as_str(), format!("{area}-{local}"));
        }
    }
}
