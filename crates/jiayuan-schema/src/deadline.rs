//! When a [`DeadlineRule`] falls due for a record: the one computation, shared by the host's
//! scheduler and the test kit, so a plugin's deadlines fire in tests exactly when they will in
//! production.

use jiayuan_domain::{Date, Timestamp};
use jiayuan_plugin_api::{Anchor, DeadlineRule, Offset};

/// What a deadline can count from, for one record.
#[derive(Debug, Clone, Copy)]
pub struct Anchors<'a> {
    /// When the record was created.
    pub created_at: Timestamp,
    /// When it entered its current state.
    pub state_entered_at: Timestamp,
    /// Its data object, as JSON text.
    pub data_json: &'a str,
}

/// The instant `rule` falls due, or `None` when its anchor field is missing or not a date.
///
/// A date field counts from 00:00 Asia/Shanghai; working days keep the anchor's time of day and
/// use `add_working_days` (the holiday calendar with its make-up workdays).
pub fn due_at(
    rule: &DeadlineRule,
    anchors: Anchors<'_>,
    add_working_days: impl Fn(Date, i32) -> Date,
) -> Option<Timestamp> {
    let anchor = match &rule.anchor {
        Anchor::Created => anchors.created_at,
        Anchor::StateEntered => anchors.state_entered_at,
        Anchor::Field(f) => {
            let data: serde_json::Value = serde_json::from_str(anchors.data_json).ok()?;
            let text = data.get(f)?.as_str()?;
            match text.parse::<Date>() {
                Ok(d) => d.start_in_shanghai(),
                Err(_) => Timestamp::parse_rfc3339(text)?,
            }
        }
        // An anchor of a newer contract than this host knows never falls due here.
        _ => return None,
    };
    Some(match rule.offset {
        Offset::Hours(h) => anchor.add_hours(h),
        Offset::CalendarDays(n) => anchor.add_hours(24 * i64::from(n)),
        Offset::WorkingDays(n) => {
            let day = anchor.shanghai_date();
            let time_of_day = anchor.0 - day.start_in_shanghai().0;
            Timestamp(add_working_days(day, n).start_in_shanghai().0 + time_of_day)
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiayuan_plugin_api::{DeadlineAction, Label, Severity};

    fn rule(anchor: Anchor, offset: Offset) -> DeadlineRule {
        let action = DeadlineAction::Alert { severity: Severity::Reminder, message: Label::new("提醒", "Reminder") };
        DeadlineRule::new("r", "k", &["open"], anchor, offset, action)
    }

    fn weekdays(d: Date, n: i32) -> Date {
        jiayuan_domain::calendar::WorkingCalendar::default().add_working_days(d, n)
    }

    #[test]
    fn each_anchor_and_unit() {
        let fri = Date::from_ymd(2026, 11, 27).expect("date");
        let created = fri.start_in_shanghai().add_hours(15);
        let anchors = Anchors {
            created_at: created,
            state_entered_at: created.add_hours(1),
            data_json: r#"{"until":"2027-01-20","at":"2026-12-01T08:00:00+08:00"}"#,
        };
        assert_eq!(due_at(&rule(Anchor::Created, Offset::Hours(24)), anchors, weekdays), Some(created.add_hours(24)));
        assert_eq!(
            due_at(&rule(Anchor::StateEntered, Offset::CalendarDays(2)), anchors, weekdays),
            Some(created.add_hours(49))
        );
        // Friday 15:00 + 1 working day = Monday 15:00.
        assert_eq!(
            due_at(&rule(Anchor::Created, Offset::WorkingDays(1)), anchors, weekdays),
            Some(created.add_hours(72))
        );
        let until = Date::from_ymd(2027, 1, 20).expect("date").start_in_shanghai();
        assert_eq!(
            due_at(&rule(Anchor::Field("until".into()), Offset::CalendarDays(-30)), anchors, weekdays),
            Some(until.add_hours(-720))
        );
        let at = Timestamp::parse_rfc3339("2026-12-01T08:00:00+08:00");
        assert_eq!(due_at(&rule(Anchor::Field("at".into()), Offset::Hours(0)), anchors, weekdays), at);
        assert_eq!(due_at(&rule(Anchor::Field("missing".into()), Offset::Hours(0)), anchors, weekdays), None);
    }
}
