//! 工作日 working-day calendar: Monday to Friday, minus 法定节假日 public holidays, plus 调休
//! make-up workdays (weekend days worked to bridge a holiday).
//!
//! The holiday table is data: the State Council publishes each year's arrangement, and the host
//! loads it from configuration as a list of [`CalendarEntry`]. [`china_2025`] is a built-in copy of
//! one year, for tests and as a fallback.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::time::Date;

/// What a listed day is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayKind {
    /// 放假 a day off (public holiday, or a weekday or weekend day inside a holiday span).
    Holiday,
    /// 调休上班 a Saturday or Sunday worked in exchange for a day off.
    MakeUpWorkday,
}

/// One listed day of the calendar.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CalendarEntry {
    /// The day.
    pub date: Date,
    /// Holiday or make-up workday.
    pub kind: DayKind,
    /// The holiday it belongs to, e.g. 春节.
    pub name: String,
}

/// Why a list of entries is not a calendar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// The same day is listed twice.
    #[error("calendar lists {date} twice ({first} and {second})")]
    DuplicateDate {
        /// The day.
        date: Date,
        /// Name of the first entry.
        first: String,
        /// Name of the second entry.
        second: String,
    },
    /// A make-up workday that is not a Saturday or Sunday (weekdays are working days anyway).
    #[error("make-up workday {date} ({name}) is not a Saturday or Sunday")]
    MakeUpOnWeekday {
        /// The day.
        date: Date,
        /// Name of the entry.
        name: String,
    },
}

/// A working-day calendar built from listed holidays and make-up workdays.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkingCalendar {
    entries: BTreeMap<Date, CalendarEntry>,
}

impl WorkingCalendar {
    /// Builds a calendar, rejecting a day listed twice and a make-up workday on a weekday.
    pub fn new(entries: Vec<CalendarEntry>) -> Result<WorkingCalendar, CalendarError> {
        let mut map = BTreeMap::new();
        for e in entries {
            if e.kind == DayKind::MakeUpWorkday && !e.date.weekday().is_weekend() {
                return Err(CalendarError::MakeUpOnWeekday { date: e.date, name: e.name });
            }
            if let Some(prev) = map.get(&e.date) {
                let prev: &CalendarEntry = prev;
                return Err(CalendarError::DuplicateDate { date: e.date, first: prev.name.clone(), second: e.name });
            }
            map.insert(e.date, e);
        }
        Ok(WorkingCalendar { entries: map })
    }

    /// The listed entry for `d`, if any.
    pub fn entry(&self, d: Date) -> Option<&CalendarEntry> {
        self.entries.get(&d)
    }

    /// All listed entries in date order.
    pub fn entries(&self) -> impl Iterator<Item = &CalendarEntry> {
        self.entries.values()
    }

    /// Whether `d` is a working day: a weekday that is not a holiday, or a make-up workday.
    pub fn is_working_day(&self, d: Date) -> bool {
        match self.entries.get(&d).map(|e| e.kind) {
            Some(DayKind::Holiday) => false,
            Some(DayKind::MakeUpWorkday) => true,
            None => !d.weekday().is_weekend(),
        }
    }

    /// The day reached by walking `n` working days from `d`: forward for `n > 0` (the `n`-th
    /// working day after `d`), backward for `n < 0`, `d` itself for `n = 0`. `d` itself is never
    /// counted, so a deadline of 3 working days from a Friday is the next Wednesday.
    pub fn add_working_days(&self, d: Date, n: i32) -> Date {
        let step = n.signum();
        let mut left = n.unsigned_abs();
        let mut day = d;
        while left > 0 {
            day = day.add_days(step);
            if self.is_working_day(day) {
                left -= 1;
            }
        }
        day
    }

    /// The number of working days passed walking from `a` to `b`, not counting `a` and counting
    /// `b`; negative when `b` is before `a`. Inverse of [`Self::add_working_days`]:
    /// `working_days_between(d, add_working_days(d, n)) == n`.
    pub fn working_days_between(&self, a: Date, b: Date) -> i32 {
        if a <= b { self.count_inclusive(a.add_days(1), b) } else { -self.count_inclusive(b, a.add_days(-1)) }
    }

    /// Working days in `lo..=hi` (0 if empty), without walking day by day.
    fn count_inclusive(&self, lo: Date, hi: Date) -> i32 {
        let days = lo.days_until(hi) + 1;
        if days <= 0 {
            return 0;
        }
        let mut count = days / 7 * 5;
        let tail_start = lo.add_days(days / 7 * 7);
        count += (0..days % 7).filter(|&i| !tail_start.add_days(i).weekday().is_weekend()).count() as i32;
        for e in self.entries.range(lo..=hi).map(|(_, e)| e) {
            match e.kind {
                DayKind::Holiday if !e.date.weekday().is_weekend() => count -= 1,
                DayKind::Holiday => {}
                // Make-up workdays are weekend days (checked in `new`).
                DayKind::MakeUpWorkday => count += 1,
            }
        }
        count
    }
}

fn span(out: &mut Vec<CalendarEntry>, name: &str, kind: DayKind, days: &[(i32, u32, u32)]) {
    for &(y, m, d) in days {
        let date = Date::from_ymd(y, m, d).expect("the built-in holiday table lists real dates");
        out.push(CalendarEntry { date, kind, name: name.to_owned() });
    }
}

fn holidays(out: &mut Vec<CalendarEntry>, name: &str, (y, m, d): (i32, u32, u32), days: i32) {
    let first = Date::from_ymd(y, m, d).expect("the built-in holiday table lists real dates");
    for i in 0..days {
        out.push(CalendarEntry { date: first.add_days(i), kind: DayKind::Holiday, name: name.to_owned() });
    }
}

/// The 2025 public-holiday arrangement of the State Council (国务院办公厅关于2025年部分节假日安排的通知):
///
/// | Holiday | Days off | Make-up workdays |
/// |---|---|---|
/// | 元旦 | Jan 1 | — |
/// | 春节 | Jan 28 – Feb 4 | Sun Jan 26, Sat Feb 8 |
/// | 清明节 | Apr 4 – 6 | — |
/// | 劳动节 | May 1 – 5 | Sun Apr 27 |
/// | 端午节 | May 31 – Jun 2 | — |
/// | 国庆节、中秋节 | Oct 1 – 8 | Sun Sep 28, Sat Oct 11 |
///
/// These are data, recalled rather than read from the notice: verify them against the official
/// text before relying on them. The host's configuration supplies each year's table and replaces
/// this one; other years are not built in.
pub fn china_2025() -> Vec<CalendarEntry> {
    use DayKind::MakeUpWorkday;
    let mut out = Vec::new();
    holidays(&mut out, "元旦", (2025, 1, 1), 1);
    holidays(&mut out, "春节", (2025, 1, 28), 8);
    span(&mut out, "春节调休", MakeUpWorkday, &[(2025, 1, 26), (2025, 2, 8)]);
    holidays(&mut out, "清明节", (2025, 4, 4), 3);
    holidays(&mut out, "劳动节", (2025, 5, 1), 5);
    span(&mut out, "劳动节调休", MakeUpWorkday, &[(2025, 4, 27)]);
    holidays(&mut out, "端午节", (2025, 5, 31), 3);
    holidays(&mut out, "国庆节、中秋节", (2025, 10, 1), 8);
    span(&mut out, "国庆节、中秋节调休", MakeUpWorkday, &[(2025, 9, 28), (2025, 10, 11)]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(y: i32, m: u32, dd: u32) -> Date {
        Date::from_ymd(y, m, dd).expect("valid date")
    }

    fn cal() -> WorkingCalendar {
        WorkingCalendar::new(china_2025()).expect("the built-in table is consistent")
    }

    #[test]
    fn holiday_spans_and_make_up_days() {
        let c = cal();
        // 春节: Sunday Jan 26 is worked, Jan 28 – Feb 4 off (including the weekdays), Saturday Feb 8 worked.
        assert!(c.is_working_day(d(2025, 1, 26)));
        assert!(c.is_working_day(d(2025, 1, 27)));
        assert!((28..=31).all(|day| !c.is_working_day(d(2025, 1, day))));
        assert!((1..=4).all(|day| !c.is_working_day(d(2025, 2, day))));
        assert!(c.is_working_day(d(2025, 2, 5)));
        assert!(c.is_working_day(d(2025, 2, 8)));
        assert!(!c.is_working_day(d(2025, 2, 9)), "an ordinary Sunday");
        assert_eq!(c.entry(d(2025, 2, 8)).map(|e| e.name.as_str()), Some("春节调休"));
        // A plain weekend and a plain weekday.
        assert!(!c.is_working_day(d(2025, 3, 8)));
        assert!(c.is_working_day(d(2025, 3, 10)));
        // 国庆: Oct 1 – 8 off, Saturday Oct 11 worked.
        assert!(!c.is_working_day(d(2025, 10, 8)));
        assert!(c.is_working_day(d(2025, 10, 11)));
        assert_eq!(c.entries().count(), 33);
    }

    #[test]
    fn deadlines_skip_holidays_and_use_make_up_days() {
        let c = cal();
        // Friday Jan 24 + 1 working day = Sunday Jan 26 (make-up workday).
        assert_eq!(c.add_working_days(d(2025, 1, 24), 1), d(2025, 1, 26));
        assert_eq!(c.add_working_days(d(2025, 1, 24), 2), d(2025, 1, 27));
        // Jan 27 + 1 jumps the whole 春节 span.
        assert_eq!(c.add_working_days(d(2025, 1, 27), 1), d(2025, 2, 5));
        // 3 working days from Tuesday Sep 30: Oct 9, 10, 11 (Saturday make-up day).
        assert_eq!(c.add_working_days(d(2025, 9, 30), 3), d(2025, 10, 11));
        assert_eq!(c.working_days_between(d(2025, 9, 30), d(2025, 10, 12)), 3);
        // Backward and zero.
        assert_eq!(c.add_working_days(d(2025, 2, 5), -1), d(2025, 1, 27));
        assert_eq!(c.add_working_days(d(2025, 2, 1), 0), d(2025, 2, 1));
        assert_eq!(c.working_days_between(d(2025, 2, 5), d(2025, 1, 27)), -1);
        // Without a calendar, Friday + 3 = Wednesday.
        let plain = WorkingCalendar::default();
        assert_eq!(plain.add_working_days(d(2026, 11, 27), 3), d(2026, 12, 2));
        // Whole of 2025: 261 weekdays − 18 weekday holidays + 5 make-up days = 248.
        assert_eq!(c.working_days_between(d(2024, 12, 31), d(2025, 12, 31)), 248);
    }

    #[test]
    fn inconsistent_tables_are_rejected() {
        let e = |date, kind, name: &str| CalendarEntry { date, kind, name: name.to_owned() };
        assert_eq!(
            WorkingCalendar::new(vec![e(d(2025, 1, 27), DayKind::MakeUpWorkday, "x")]),
            Err(CalendarError::MakeUpOnWeekday { date: d(2025, 1, 27), name: "x".to_owned() })
        );
        assert_eq!(
            WorkingCalendar::new(vec![
                e(d(2025, 1, 1), DayKind::Holiday, "a"),
                e(d(2025, 1, 1), DayKind::Holiday, "b")
            ]),
            Err(CalendarError::DuplicateDate { date: d(2025, 1, 1), first: "a".to_owned(), second: "b".to_owned() })
        );
    }

    #[test]
    fn entries_load_from_config() {
        let json = r#"[{"date":"2025-01-26","kind":"make_up_workday","name":"春节调休"},
                       {"date":"2025-01-28","kind":"holiday","name":"春节"}]"#;
        let entries: Vec<CalendarEntry> = serde_json::from_str(json).expect("deserialises");
        let c = WorkingCalendar::new(entries).expect("consistent");
        assert!(c.is_working_day(d(2025, 1, 26)));
        assert!(!c.is_working_day(d(2025, 1, 28)));
        assert!(
            serde_json::from_str::<Vec<CalendarEntry>>(r#"[{"date":"2025-02-30","kind":"holiday","name":"x"}]"#)
                .is_err()
        );
    }

    fn day_2024_2026() -> impl Strategy<Value = Date> {
        (0i32..1096).prop_map(|i| d(2024, 1, 1).add_days(i))
    }

    proptest! {
        #[test]
        fn add_then_between_gives_n(start in day_2024_2026(), n in -400i32..400) {
            let c = cal();
            let end = c.add_working_days(start, n);
            prop_assert_eq!(c.working_days_between(start, end), n);
            if n != 0 {
                prop_assert!(c.is_working_day(end));
            }
        }

        #[test]
        fn between_matches_counting_day_by_day(a in day_2024_2026(), b in day_2024_2026()) {
            let c = cal();
            let (lo, hi, sign) = if a <= b { (a.add_days(1), b, 1) } else { (b, a.add_days(-1), -1) };
            let naive = (0..=lo.days_until(hi)).filter(|&i| c.is_working_day(lo.add_days(i))).count() as i32;
            prop_assert_eq!(c.working_days_between(a, b), sign * naive);
        }
    }
}
