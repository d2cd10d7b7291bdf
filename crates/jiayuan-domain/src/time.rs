//! Civil dates and instants, without a date-time dependency.
//!
//! Dates cross the plugin boundary, so they are our own plain types: a [`Date`] is a count of days
//! since 1970-01-01 in the proleptic Gregorian calendar; a [`Timestamp`] is milliseconds since the
//! Unix epoch (UTC). All civil dates in Jiayuan are Asia/Shanghai (+08:00) dates.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Offset of Asia/Shanghai from UTC, in milliseconds. China has no daylight saving time.
pub const SHANGHAI_OFFSET_MS: i64 = 8 * 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// A calendar date (no time zone; by convention the civil date in Asia/Shanghai).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(i32);

/// Why a text is not a date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a valid date (expected YYYY-MM-DD): {reason}")]
pub struct DateParseError {
    /// The text that was parsed.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Weekday {
    /// 星期一
    Monday,
    /// 星期二
    Tuesday,
    /// 星期三
    Wednesday,
    /// 星期四
    Thursday,
    /// 星期五
    Friday,
    /// 星期六
    Saturday,
    /// 星期日
    Sunday,
}

impl Weekday {
    /// Saturday or Sunday.
    pub fn is_weekend(self) -> bool {
        matches!(self, Weekday::Saturday | Weekday::Sunday)
    }
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Number of days in month `m` (1–12) of year `y`.
pub fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

impl Date {
    /// The date for year, month (1–12) and day, or `None` if no such day exists.
    pub fn from_ymd(y: i32, m: u32, d: u32) -> Option<Date> {
        if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) || !(1..=9999).contains(&y) {
            return None;
        }
        // Howard Hinnant's days_from_civil.
        let y = if m <= 2 { y - 1 } else { y };
        let era = if y >= 0 { y } else { y - 399 } / 400;
        let yoe = (y - era * 400) as u32;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        Some(Date(era * 146_097 + doe as i32 - 719_468))
    }

    /// The date `days` days after 1970-01-01.
    pub fn from_days_since_epoch(days: i32) -> Date {
        Date(days)
    }

    /// Days since 1970-01-01 (negative before).
    pub fn days_since_epoch(self) -> i32 {
        self.0
    }

    /// (year, month 1–12, day 1–31).
    pub fn ymd(self) -> (i32, u32, u32) {
        // Howard Hinnant's civil_from_days.
        let z = self.0 + 719_468;
        let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
        let doe = (z - era * 146_097) as u32;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let y = yoe as i32 + era * 400;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        (if m <= 2 { y + 1 } else { y }, m, d)
    }

    /// The year.
    pub fn year(self) -> i32 {
        self.ymd().0
    }

    /// This date plus `n` calendar days (`n` may be negative).
    pub fn add_days(self, n: i32) -> Date {
        Date(self.0 + n)
    }

    /// Calendar days from `self` to `other` (positive if `other` is later).
    pub fn days_until(self, other: Date) -> i32 {
        other.0 - self.0
    }

    /// The same day `n` years later, clamped to the month's end (29 Feb → 28 Feb).
    pub fn add_years(self, n: i32) -> Date {
        let (y, m, d) = self.ymd();
        let y = y + n;
        let d = d.min(days_in_month(y, m));
        Date::from_ymd(y, m, d).unwrap_or(self)
    }

    /// The day of the week.
    pub fn weekday(self) -> Weekday {
        // 1970-01-01 was a Thursday.
        match (self.0 as i64 + 3).rem_euclid(7) {
            0 => Weekday::Monday,
            1 => Weekday::Tuesday,
            2 => Weekday::Wednesday,
            3 => Weekday::Thursday,
            4 => Weekday::Friday,
            5 => Weekday::Saturday,
            _ => Weekday::Sunday,
        }
    }

    /// Completed years of age on `on` for someone born on `self`.
    pub fn age_on(self, on: Date) -> i32 {
        let (by, bm, bd) = self.ymd();
        let (y, m, d) = on.ymd();
        let mut age = y - by;
        if (m, d) < (bm, bd) {
            age -= 1;
        }
        age
    }

    /// Midnight at the start of this date in Asia/Shanghai.
    pub fn start_in_shanghai(self) -> Timestamp {
        Timestamp(self.0 as i64 * DAY_MS - SHANGHAI_OFFSET_MS)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl fmt::Debug for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Date {
    type Err = DateParseError;

    fn from_str(s: &str) -> Result<Date, DateParseError> {
        let err = |reason| DateParseError { input: s.to_owned(), reason };
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(err("wrong shape"));
        }
        let num = |r: std::ops::Range<usize>| -> Result<u32, DateParseError> {
            let part = &s[r];
            if !part.bytes().all(|c| c.is_ascii_digit()) {
                return Err(err("non-digit character"));
            }
            part.parse().map_err(|_| err("number out of range"))
        };
        let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        Date::from_ymd(y as i32, m, d).ok_or_else(|| err("no such day in the calendar"))
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An instant: milliseconds since 1970-01-01T00:00:00Z.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Milliseconds since the Unix epoch.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// The civil date of this instant in Asia/Shanghai.
    pub fn shanghai_date(self) -> Date {
        Date(((self.0 + SHANGHAI_OFFSET_MS).div_euclid(DAY_MS)) as i32)
    }

    /// This instant plus `hours` hours.
    pub fn add_hours(self, hours: i64) -> Timestamp {
        Timestamp(self.0 + hours * 3_600_000)
    }

    /// RFC 3339 text in +08:00, e.g. `2026-11-28T09:30:00+08:00`.
    pub fn to_rfc3339_shanghai(self) -> String {
        let local = self.0 + SHANGHAI_OFFSET_MS;
        let date = Date((local.div_euclid(DAY_MS)) as i32);
        let ms = local.rem_euclid(DAY_MS);
        let (h, mi, s) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60);
        format!("{date}T{h:02}:{mi:02}:{s:02}+08:00")
    }

    /// Parses RFC 3339 text with an offset, `YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)`, into an
    /// instant; `None` if the text has another shape or names no such time. The separator may be
    /// `T`, `t` or a space, `Z` may be `z`, fractions beyond milliseconds are truncated, and
    /// second 60 (a leap second) is read as the first second of the next minute.
    pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
        let b = s.as_bytes();
        if b.len() < 20 || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
            return None;
        }
        let date: Date = s.get(..10)?.parse().ok()?;
        let num = |r: std::ops::Range<usize>| -> Option<i64> {
            let part = s.get(r)?;
            if part.bytes().all(|c| c.is_ascii_digit()) { part.parse().ok() } else { None }
        };
        let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if h > 23 || mi > 59 || sec > 60 {
            return None;
        }
        let mut i = 19;
        let mut millis = 0;
        if b.get(i) == Some(&b'.') {
            let start = i + 1;
            i = start;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == start {
                return None;
            }
            let frac = s.get(start..i.min(start + 3))?;
            millis = frac.parse::<i64>().ok()? * 10_i64.pow(3 - frac.len() as u32);
        }
        let offset_min = match b.get(i)? {
            b'Z' | b'z' if i + 1 == b.len() => 0,
            sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
                let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
                if oh > 23 || om > 59 {
                    return None;
                }
                if *sign == b'-' { -(oh * 60 + om) } else { oh * 60 + om }
            }
            _ => return None,
        };
        let day_ms = i64::from(date.days_since_epoch()) * DAY_MS;
        Some(Timestamp(day_ms + ((h * 60 + mi - offset_min) * 60 + sec) * 1000 + millis))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339_shanghai())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_dates() {
        assert_eq!(Date::from_ymd(1970, 1, 1).map(Date::days_since_epoch), Some(0));
        assert_eq!(Date::from_ymd(2000, 3, 1).map(Date::days_since_epoch), Some(11_017));
        assert_eq!(Date::from_ymd(2026, 11, 28).map(Date::weekday), Some(Weekday::Saturday));
        assert_eq!(Date::from_ymd(2023, 2, 29), None);
        assert_eq!("2024-02-29".parse::<Date>().map(|d| d.ymd()), Ok((2024, 2, 29)));
        assert!("2024-2-29".parse::<Date>().is_err());
        assert!("2023-02-29".parse::<Date>().is_err());
    }

    #[test]
    fn ages_and_timestamps() {
        let born = Date::from_ymd(2008, 2, 29).expect("valid");
        assert_eq!(born.age_on(Date::from_ymd(2026, 2, 28).expect("valid")), 17);
        assert_eq!(born.age_on(Date::from_ymd(2026, 3, 1).expect("valid")), 18);
        let d = Date::from_ymd(2026, 11, 28).expect("valid");
        assert_eq!(d.start_in_shanghai().shanghai_date(), d);
        assert_eq!(d.start_in_shanghai().to_rfc3339_shanghai(), "2026-11-28T00:00:00+08:00");
        assert_eq!(d.start_in_shanghai().add_hours(-1).shanghai_date(), d.add_days(-1));
    }

    #[test]
    fn rfc3339_instants() {
        let parse = Timestamp::parse_rfc3339;
        assert_eq!(parse("1970-01-01T08:00:00+08:00"), Some(Timestamp(0)));
        assert_eq!(parse("1970-01-01T00:00:01.5Z"), Some(Timestamp(1500)));
        assert_eq!(parse("1970-01-01t00:00:01.123456z"), Some(Timestamp(1123)));
        assert_eq!(parse("1970-01-01 00:00:00.07Z"), Some(Timestamp(70)));
        let nine = Timestamp(Date::from_ymd(2026, 3, 2).expect("valid").start_in_shanghai().0 + 9 * 3_600_000);
        assert_eq!(parse("2026-03-02T09:00:00+08:00"), Some(nine));
        assert_eq!(parse("2026-03-02T01:00:00Z"), Some(nine));
        assert_eq!(parse("2026-03-01T21:00:00.250-04:00"), Some(Timestamp(nine.0 + 250)));
        assert_eq!(parse("2016-12-31T23:59:60Z"), parse("2017-01-01T00:00:00Z"));
    }

    #[test]
    fn rfc3339_refusals() {
        for bad in [
            "",
            "2026-03-02",
            "2026-03-02T09:30:00",
            "2026-03-02 09:30",
            "2026-03-02T24:00:00Z",
            "2026-03-02T23:60:00Z",
            "2026-03-02T23:59:61Z",
            "2026-02-30T01:00:00Z",
            "2026-03-02X09:30:00Z",
            "2026-03-02T09-30-00Z",
            "2026-03-02T09:30:00.Z",
            "2026-03-02T09:30:00Zx",
            "2026-03-02T09:30:00+0800",
            "2026-03-02T09:30:00+08:00:00",
            "2026-03-02T09:30:00+24:00",
            "2026-03-02T09:30:00+08:60",
            "2026-03-02T09:30:00 08:00",
            "2026-03-02T+9:30:00Z",
            "2026-03-02T09:30:00+0８:00",
            "２026-03-02T09:30:00Z",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn civil_round_trip(days in -700_000i32..2_900_000) {
            let d = Date::from_days_since_epoch(days);
            let (y, m, dd) = d.ymd();
            prop_assert_eq!(Date::from_ymd(y, m, dd), Some(d));
            prop_assert_eq!(d.to_string().parse::<Date>(), Ok(d));
        }

        /// Years 1 to 9999 in Shanghai: the text drops the milliseconds and nothing else.
        #[test]
        fn rfc3339_round_trip(ms in -62_135_596_800_000i64 + SHANGHAI_OFFSET_MS..253_402_300_800_000 - SHANGHAI_OFFSET_MS) {
            let t = Timestamp(ms);
            prop_assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339_shanghai()), Some(Timestamp(ms - ms.rem_euclid(1000))));
        }

        #[test]
        fn rfc3339_parsing_never_panics(s in "\\PC{0,40}", t in "[0-9T:+\\-.Zz ]{0,32}") {
            let _ = Timestamp::parse_rfc3339(&s);
            let _ = Timestamp::parse_rfc3339(&t);
        }
    }
}
