//! 金额 money: an exact count of 分 fen (1 元 yuan = 100 fen), parsed from and formatted as yuan
//! text. No floating point anywhere.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An amount of money in 分 fen (hundredths of a yuan); serialises as the integer fen count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fen(pub i64);

/// What is wrong with an amount text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyProblem {
    /// No digits at all.
    #[error("no amount given")]
    Empty,
    /// A character that is not a digit, `,` or `.` (after the optional sign, `¥` and `元`).
    #[error("unexpected character `{0}`")]
    BadCharacter(char),
    /// Thousands separators in the wrong places.
    #[error("thousands separators must split the yuan into groups of 3 digits")]
    BadGrouping,
    /// A decimal point without digits on one side.
    #[error("digits are missing around the decimal point")]
    MissingDigits,
    /// More than two decimals (smaller than one fen).
    #[error("more than 2 decimals: amounts are in whole fen")]
    TooManyDecimals,
    /// More than one decimal point.
    #[error("more than one decimal point")]
    SeveralPoints,
    /// The amount does not fit in 64 bits of fen.
    #[error("the amount is too large")]
    TooLarge,
}

/// Why a text is not an amount of yuan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not an amount in yuan: {problem}")]
pub struct MoneyParseError {
    /// The text that was parsed.
    pub input: String,
    /// What is wrong with it.
    pub problem: MoneyProblem,
}

impl Fen {
    /// Zero.
    pub const ZERO: Fen = Fen(0);

    /// Whole yuan, or `None` on overflow.
    pub fn from_yuan(yuan: i64) -> Option<Fen> {
        yuan.checked_mul(100).map(Fen)
    }

    /// The amount in fen.
    pub fn fen(self) -> i64 {
        self.0
    }

    /// Whether the amount is below zero.
    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Fen) -> Option<Fen> {
        self.0.checked_add(other.0).map(Fen)
    }

    /// `self − other`, or `None` on overflow.
    pub fn checked_sub(self, other: Fen) -> Option<Fen> {
        self.0.checked_sub(other.0).map(Fen)
    }

    /// Parses yuan text: digits with optional thousands separators and at most 2 decimals,
    /// optionally signed (`-`), with a leading `¥`/`￥` and a trailing `元`, surrounded by spaces:
    /// `50000`, `50,000.5`, `¥1.23`, `-0.05`, `50,000.00 元`.
    pub fn parse_yuan(s: &str) -> Result<Fen, MoneyParseError> {
        parse(s).map_err(|problem| MoneyParseError { input: s.to_owned(), problem })
    }

    /// Plain yuan text with two decimals and no separators: `50000.00`, `-0.05`.
    pub fn yuan_string(self) -> String {
        let abs = self.0.unsigned_abs();
        let sign = if self.0 < 0 { "-" } else { "" };
        format!("{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

fn parse(s: &str) -> Result<Fen, MoneyProblem> {
    let mut t = s.trim();
    t = t.strip_suffix('元').unwrap_or(t).trim_end();
    let mut negative = false;
    if let Some(r) = t.strip_prefix('-') {
        negative = true;
        t = r.trim_start();
    }
    if let Some(r) = t.strip_prefix(['¥', '￥']) {
        t = r.trim_start();
    }
    if !negative && let Some(r) = t.strip_prefix('-') {
        negative = true;
        t = r;
    }
    if t.is_empty() {
        return Err(MoneyProblem::Empty);
    }
    if let Some(c) = t.chars().find(|c| !(c.is_ascii_digit() || *c == ',' || *c == '.')) {
        return Err(MoneyProblem::BadCharacter(c));
    }
    let (int_part, frac_part) = match t.split_once('.') {
        Some((_, f)) if f.contains('.') => return Err(MoneyProblem::SeveralPoints),
        Some((i, f)) => (i, Some(f)),
        None => (t, None),
    };
    let mut groups = int_part.split(',');
    let first = groups.next().unwrap_or("");
    let mut yuan_digits = first.to_owned();
    if int_part.contains(',') {
        if !(1..=3).contains(&first.len()) {
            return Err(MoneyProblem::BadGrouping);
        }
        for g in groups {
            if g.len() != 3 {
                return Err(MoneyProblem::BadGrouping);
            }
            yuan_digits.push_str(g);
        }
    }
    if yuan_digits.is_empty() {
        return Err(if frac_part.is_some() { MoneyProblem::MissingDigits } else { MoneyProblem::Empty });
    }
    let frac = match frac_part {
        None => 0,
        Some("") => return Err(MoneyProblem::MissingDigits),
        Some(f) if f.contains(',') => return Err(MoneyProblem::BadGrouping),
        Some(f) if f.len() > 2 => return Err(MoneyProblem::TooManyDecimals),
        Some(f) => f.bytes().fold(0i128, |acc, b| acc * 10 + i128::from(b - b'0')) * if f.len() == 1 { 10 } else { 1 },
    };
    let mut yuan: i128 = 0;
    for b in yuan_digits.bytes() {
        yuan = yuan.checked_mul(10).and_then(|y| y.checked_add(i128::from(b - b'0'))).ok_or(MoneyProblem::TooLarge)?;
    }
    let fen = yuan.checked_mul(100).and_then(|f| f.checked_add(frac)).ok_or(MoneyProblem::TooLarge)?;
    let fen = if negative { -fen } else { fen };
    i64::try_from(fen).map(Fen).map_err(|_| MoneyProblem::TooLarge)
}

impl fmt::Display for Fen {
    /// Grouped yuan with two decimals and the unit: `50,000.00 元`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let abs = self.0.unsigned_abs();
        let digits = (abs / 100).to_string();
        let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(c);
        }
        let sign = if self.0 < 0 { "-" } else { "" };
        write!(f, "{sign}{grouped}.{:02} 元", abs % 100)
    }
}

impl FromStr for Fen {
    type Err = MoneyParseError;
    fn from_str(s: &str) -> Result<Fen, MoneyParseError> {
        Fen::parse_yuan(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn yuan(s: &str) -> Result<i64, MoneyProblem> {
        Fen::parse_yuan(s).map(Fen::fen).map_err(|e| e.problem)
    }

    #[test]
    fn parses_yuan_text() {
        assert_eq!(yuan("50000"), Ok(5_000_000));
        assert_eq!(yuan("50,000.5"), Ok(5_000_050));
        assert_eq!(yuan("¥1.23"), Ok(123));
        assert_eq!(yuan("￥ 1,234,567.89 元"), Ok(123_456_789));
        assert_eq!(yuan("0.05"), Ok(5));
        assert_eq!(yuan("-0.05"), Ok(-5));
        assert_eq!(yuan("¥-12"), Ok(-1200));
        assert_eq!(yuan("-¥12"), Ok(-1200));
        assert_eq!(yuan("1.234"), Err(MoneyProblem::TooManyDecimals));
        assert_eq!(yuan("1."), Err(MoneyProblem::MissingDigits));
        assert_eq!(yuan(".5"), Err(MoneyProblem::MissingDigits));
        assert_eq!(yuan("1.2.3"), Err(MoneyProblem::SeveralPoints));
        assert_eq!(yuan("5,0000"), Err(MoneyProblem::BadGrouping));
        assert_eq!(yuan("5000,000"), Err(MoneyProblem::BadGrouping));
        assert_eq!(yuan(",500"), Err(MoneyProblem::BadGrouping));
        assert_eq!(yuan("1.2,3"), Err(MoneyProblem::BadGrouping));
        assert_eq!(yuan("12a"), Err(MoneyProblem::BadCharacter('a')));
        assert_eq!(yuan("--1"), Err(MoneyProblem::BadCharacter('-')));
        assert_eq!(yuan(" 元"), Err(MoneyProblem::Empty));
        assert_eq!(yuan("92233720368547758.07"), Ok(i64::MAX));
        assert_eq!(yuan("92233720368547758.08"), Err(MoneyProblem::TooLarge));
        assert_eq!(yuan("-92233720368547758.08"), Ok(i64::MIN));
        assert_eq!(yuan("99999999999999999999999999999999999999999"), Err(MoneyProblem::TooLarge));
        let err = Fen::parse_yuan("1.234").expect_err("three decimals").to_string();
        assert_eq!(err, "`1.234` is not an amount in yuan: more than 2 decimals: amounts are in whole fen");
    }

    #[test]
    fn formats_yuan() {
        assert_eq!(Fen(5_000_000).to_string(), "50,000.00 元");
        assert_eq!(Fen(5_000_000).yuan_string(), "50000.00");
        assert_eq!(Fen(123_456_789).to_string(), "1,234,567.89 元");
        assert_eq!(Fen(99_999).to_string(), "999.99 元");
        assert_eq!(Fen(-5).to_string(), "-0.05 元");
        assert_eq!(Fen(-5).yuan_string(), "-0.05");
        assert_eq!(Fen::ZERO.to_string(), "0.00 元");
        assert_eq!(Fen(i64::MIN).yuan_string(), "-92233720368547758.08");
    }

    #[test]
    fn arithmetic_and_serde() {
        assert_eq!(Fen::from_yuan(50_000), Some(Fen(5_000_000)));
        assert_eq!(Fen::from_yuan(i64::MAX), None);
        assert_eq!(Fen(1).checked_add(Fen(2)), Some(Fen(3)));
        assert_eq!(Fen(i64::MAX).checked_add(Fen(1)), None);
        assert_eq!(Fen(1).checked_sub(Fen(2)), Some(Fen(-1)));
        assert_eq!(Fen(i64::MIN).checked_sub(Fen(1)), None);
        assert_eq!(serde_json::to_string(&Fen(5_000_050)).expect("serialises"), "5000050");
        assert_eq!(serde_json::from_str::<Fen>("123").expect("deserialises"), Fen(123));
    }

    proptest! {
        #[test]
        fn parse_and_format_round_trip(fen in any::<i64>()) {
            let f = Fen(fen);
            prop_assert_eq!(Fen::parse_yuan(&f.yuan_string()), Ok(f));
            prop_assert_eq!(Fen::parse_yuan(&f.to_string()), Ok(f));
        }

        #[test]
        fn one_or_two_decimals(y in 0i64..1_000_000_000, d in 0i64..100) {
            prop_assert_eq!(Fen::parse_yuan(&format!("{y}.{d:02}")), Ok(Fen(y * 100 + d)));
            if d % 10 == 0 {
                prop_assert_eq!(Fen::parse_yuan(&format!("{y}.{}", d / 10)), Ok(Fen(y * 100 + d)));
            }
        }

        #[test]
        fn checked_add_matches_wide_arithmetic(a in any::<i64>(), b in any::<i64>()) {
            let wide = i128::from(a) + i128::from(b);
            prop_assert_eq!(Fen(a).checked_add(Fen(b)).map(Fen::fen), i64::try_from(wide).ok());
        }
    }
}
