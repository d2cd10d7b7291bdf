//! [`Story`]: a plugin's scenario as data — creates, transitions, clock moves, deadline ticks and
//! expectations — run through a [`TestHost`], stopping at the first step that does not go as
//! written and saying which one, why, and what alerts and log lines the plugin had produced.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use jiayuan_domain::{Date, EstateId, RecordId};
use jiayuan_plugin_api::{Actor, Severity};

use crate::host::{HostError, LogLine, RaisedAlert, TestHost};

/// A scenario. Records are named by labels given when they are created; in create data and
/// transition input, a string value `"@label"` stands for that record's id (for `RecordRef`
/// fields). Strings naming no known label are left alone.
///
/// ```
/// use jiayuan_domain::EstateId;
/// use jiayuan_plugin_api::{Actor, Severity};
/// use jiayuan_test_support::conformance::Story;
/// use serde_json::json;
///
/// let story = Story::new("a complaint is closed within a week")
///     .create("c1", "complaint", EstateId(1), json!({ "room": "1203", "decibels": 70 }))
///     .expect_state("c1", "open")
///     .refuse_create("complaint", EstateId(1), json!({ "room": "1203", "decibels": 0 }), "decibels", "zero")
///     .advance_days(8)
///     .run_deadlines()
///     .expect_alert(Some("c1"), "complaint_overdue", Severity::Warning)
///     .transition("c1", "close", Actor::firm(), json!({}))
///     .expect_state("c1", "closed");
/// // In an async test: `story.run(&host).await.unwrap_or_else(|f| panic!("{f}"));`
/// # let _ = story;
/// ```
#[derive(Debug, Clone)]
pub struct Story {
    name: String,
    steps: Vec<Step>,
}

#[derive(Debug, Clone)]
enum Step {
    Create { label: Option<String>, kind: String, estate: EstateId, data: Value, expect: Expect },
    CreateChild { label: Option<String>, kind: String, parent: String, data: Value, expect: Expect },
    Transition { label: String, transition: String, actor: Actor, input: Value, expect: Expect },
    Today(Date),
    AdvanceDays(i32),
    RunDeadlines,
    ExpectState { label: String, state: String },
    ExpectField { label: String, field: String, value: Value },
    ExpectAlert { label: Option<String>, key: String, severity: Severity },
}

#[derive(Debug, Clone)]
enum Expect {
    Accepted,
    Refused { field: String, code: String },
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let expect = |e: &Expect| match e {
            Expect::Accepted => "accepted".to_owned(),
            Expect::Refused { field, code } => format!("refused on `{field}` with `{code}`"),
        };
        match self {
            Step::Create { label, kind, estate, expect: e, .. } => {
                write!(f, "create `{kind}` in estate {estate} as {label:?}, expecting it {}", expect(e))
            }
            Step::CreateChild { label, kind, parent, expect: e, .. } => {
                write!(f, "create `{kind}` under `{parent}` as {label:?}, expecting it {}", expect(e))
            }
            Step::Transition { label, transition, actor, expect: e, .. } => {
                write!(f, "fire `{transition}` on `{label}` as {actor:?}, expecting it {}", expect(e))
            }
            Step::Today(d) => write!(f, "set today to {d}"),
            Step::AdvanceDays(n) => write!(f, "advance the clock by {n} days"),
            Step::RunDeadlines => write!(f, "run the deadline rules"),
            Step::ExpectState { label, state } => write!(f, "expect `{label}` in state `{state}`"),
            Step::ExpectField { label, field, value } => write!(f, "expect `{label}.{field}` = {value}"),
            Step::ExpectAlert { label, key, severity } => {
                write!(f, "expect a {severity:?} alert `{key}` on {}", label.as_deref().unwrap_or("any record"))
            }
        }
    }
}

/// Where a story went wrong.
#[derive(Debug, Clone)]
pub struct StoryFailure {
    /// The story's name.
    pub story: String,
    /// 1-based number of the failing step.
    pub step: usize,
    /// What the step was meant to do.
    pub step_text: String,
    /// What happened instead.
    pub reason: String,
    /// Every alert written up to the failure.
    pub alerts: Vec<RaisedAlert>,
    /// Every line the plugin logged up to the failure.
    pub logs: Vec<LogLine>,
}

impl fmt::Display for StoryFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "story `{}` failed at step {}: {}", self.story, self.step, self.step_text)?;
        writeln!(f, "  {}", self.reason)?;
        for a in &self.alerts {
            writeln!(f, "  alert {:?} `{}` on {:?}: {}", a.severity, a.key, a.record_id, a.message.zh)?;
        }
        for l in &self.logs {
            writeln!(f, "  log {:?} {} {:?}", l.level, l.message, l.fields)?;
        }
        Ok(())
    }
}

impl std::error::Error for StoryFailure {}

/// What a story that ran to the end created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoryReport {
    /// The id of every labelled record.
    pub records: BTreeMap<String, RecordId>,
}

impl Story {
    /// An empty story.
    pub fn new(name: &str) -> Story {
        Story { name: name.to_owned(), steps: Vec::new() }
    }

    fn step(mut self, s: Step) -> Story {
        self.steps.push(s);
        self
    }

    /// Creates a top-level record, expecting it accepted, and names it `label`.
    pub fn create(self, label: &str, kind: &str, estate: EstateId, data: Value) -> Story {
        let label = Some(label.to_owned());
        self.step(Step::Create { label, kind: kind.to_owned(), estate, data, expect: Expect::Accepted })
    }

    /// Creates a top-level record, expecting a refusal naming `field` with `code`.
    pub fn refuse_create(self, kind: &str, estate: EstateId, data: Value, field: &str, code: &str) -> Story {
        let expect = Expect::Refused { field: field.to_owned(), code: code.to_owned() };
        self.step(Step::Create { label: None, kind: kind.to_owned(), estate, data, expect })
    }

    /// Creates a child record under the record named `parent`, expecting it accepted.
    pub fn create_child(self, label: &str, kind: &str, parent: &str, data: Value) -> Story {
        let (label, parent) = (Some(label.to_owned()), parent.to_owned());
        self.step(Step::CreateChild { label, kind: kind.to_owned(), parent, data, expect: Expect::Accepted })
    }

    /// Creates a child record, expecting a refusal naming `field` with `code`.
    pub fn refuse_child(self, kind: &str, parent: &str, data: Value, field: &str, code: &str) -> Story {
        let expect = Expect::Refused { field: field.to_owned(), code: code.to_owned() };
        self.step(Step::CreateChild { label: None, kind: kind.to_owned(), parent: parent.to_owned(), data, expect })
    }

    /// Fires a transition on the record named `label`, expecting it accepted.
    pub fn transition(self, label: &str, transition: &str, actor: Actor, input: Value) -> Story {
        let (label, transition) = (label.to_owned(), transition.to_owned());
        self.step(Step::Transition { label, transition, actor, input, expect: Expect::Accepted })
    }

    /// Fires a transition, expecting a refusal naming `field` with `code`.
    pub fn refuse_transition(
        self,
        label: &str,
        transition: &str,
        actor: Actor,
        input: Value,
        field: &str,
        code: &str,
    ) -> Story {
        let expect = Expect::Refused { field: field.to_owned(), code: code.to_owned() };
        let (label, transition) = (label.to_owned(), transition.to_owned());
        self.step(Step::Transition { label, transition, actor, input, expect })
    }

    /// Moves the clock to 09:00 on `day`.
    pub fn today(self, day: Date) -> Story {
        self.step(Step::Today(day))
    }

    /// Moves the clock by `days` calendar days.
    pub fn advance_days(self, days: i32) -> Story {
        self.step(Step::AdvanceDays(days))
    }

    /// Runs one scheduler tick ([`TestHost::run_deadlines`]); fails if a deadline's action failed.
    pub fn run_deadlines(self) -> Story {
        self.step(Step::RunDeadlines)
    }

    /// Expects the record named `label` in `state`.
    pub fn expect_state(self, label: &str, state: &str) -> Story {
        self.step(Step::ExpectState { label: label.to_owned(), state: state.to_owned() })
    }

    /// Expects `field` of the record named `label` to equal `value` (`Value::Null`: absent;
    /// `"@other"` is the id of the record named `other`).
    pub fn expect_field(self, label: &str, field: &str, value: Value) -> Story {
        self.step(Step::ExpectField { label: label.to_owned(), field: field.to_owned(), value })
    }

    /// Expects an alert with `key` and `severity` on the record named `label` (`None`: on any
    /// record, or on none, as for a refused create).
    pub fn expect_alert(self, label: Option<&str>, key: &str, severity: Severity) -> Story {
        self.step(Step::ExpectAlert { label: label.map(str::to_owned), key: key.to_owned(), severity })
    }

    /// Runs the story on `host`, stopping at the first step that does not go as written.
    pub async fn run(&self, host: &TestHost) -> Result<StoryReport, StoryFailure> {
        let mut report = StoryReport::default();
        for (i, step) in self.steps.iter().enumerate() {
            if let Err(reason) = self.run_step(host, step, &mut report).await {
                return Err(StoryFailure {
                    story: self.name.clone(),
                    step: i + 1,
                    step_text: step.to_string(),
                    reason,
                    alerts: host.alerts(),
                    logs: host.logs(),
                });
            }
        }
        Ok(report)
    }

    async fn run_step(&self, host: &TestHost, step: &Step, report: &mut StoryReport) -> Result<(), String> {
        let id =
            |label: &str| report.records.get(label).copied().ok_or_else(|| format!("no record is named `{label}`"));
        match step {
            Step::Create { label, kind, estate, data, expect } => {
                let result = host.create(*estate, kind, substitute(data, &report.records)).await;
                settle(result.map(|r| r.id), expect, label, report)
            }
            Step::CreateChild { label, kind, parent, data, expect } => {
                let result = host.create_child(id(parent)?, kind, substitute(data, &report.records)).await;
                settle(result.map(|r| r.id), expect, label, report)
            }
            Step::Transition { label, transition, actor, input, expect } => {
                let result =
                    host.transition(id(label)?, transition, actor.clone(), substitute(input, &report.records)).await;
                settle(result.map(|r| r.id), expect, &None, report)
            }
            Step::Today(d) => {
                host.clock().set_today(*d);
                Ok(())
            }
            Step::AdvanceDays(n) => {
                host.clock().advance_days(*n);
                Ok(())
            }
            Step::RunDeadlines => {
                let failed: Vec<String> = host
                    .run_deadlines()
                    .await
                    .into_iter()
                    .filter_map(|f| f.result.err().map(|e| format!("rule `{}` on {}: {e}", f.rule, f.record_id)))
                    .collect();
                if failed.is_empty() { Ok(()) } else { Err(format!("deadline actions failed: {}", failed.join("; "))) }
            }
            Step::ExpectState { label, state } => {
                let r = host.record(id(label)?).ok_or_else(|| format!("record `{label}` vanished"))?;
                if &r.state == state { Ok(()) } else { Err(format!("`{label}` is in state `{}`", r.state)) }
            }
            Step::ExpectField { label, field, value } => {
                let data = host.data(id(label)?).ok_or_else(|| format!("record `{label}` vanished"))?;
                let found = data.get(field).cloned().unwrap_or(Value::Null);
                let value = substitute(value, &report.records);
                if found == value { Ok(()) } else { Err(format!("`{label}.{field}` is {found}, not {value}")) }
            }
            Step::ExpectAlert { label, key, severity } => {
                let record = label.as_deref().map(id).transpose()?;
                let alerts = host.alerts();
                let found = alerts
                    .iter()
                    .any(|a| &a.key == key && a.severity == *severity && record.is_none_or(|r| a.record_id == Some(r)));
                if found {
                    Ok(())
                } else {
                    let have: Vec<_> =
                        alerts.iter().map(|a| format!("{:?} `{}` on {:?}", a.severity, a.key, a.record_id)).collect();
                    Err(format!("no such alert; alerts are: [{}]", have.join(", ")))
                }
            }
        }
    }
}

fn settle(
    result: Result<RecordId, HostError>,
    expect: &Expect,
    label: &Option<String>,
    report: &mut StoryReport,
) -> Result<(), String> {
    match (result, expect) {
        (Ok(id), Expect::Accepted) => {
            if let Some(l) = label {
                report.records.insert(l.clone(), id);
            }
            Ok(())
        }
        (Err(e), Expect::Accepted) => Err(format!("expected acceptance, got: {e}")),
        (Ok(id), Expect::Refused { .. }) => Err(format!("expected a refusal, but record {id} was accepted")),
        (Err(e), Expect::Refused { field, code }) if e.has_violation(field, code) => Ok(()),
        (Err(e), Expect::Refused { .. }) => Err(format!("refused, but not as expected: {e}")),
    }
}

/// Replaces every string `"@label"` naming a known record by that record's id.
fn substitute(v: &Value, labels: &BTreeMap<String, RecordId>) -> Value {
    match v {
        Value::String(s) => match s.strip_prefix('@').and_then(|l| labels.get(l)) {
            Some(id) => Value::from(id.0),
            None => v.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(|i| substitute(i, labels)).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, i)| (k.clone(), substitute(i, labels))).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::host;
    use serde_json::json;

    #[tokio::test]
    async fn a_story_that_goes_as_written_reports_its_records() {
        let host = host();
        let report = Story::new("hold and release")
            .create("a", "item", EstateId(1), json!({"code": "s1"}))
            .refuse_create("item", EstateId(1), json!({"code": "refuse"}), "code", "no")
            .refuse_create("item", EstateId(1), json!({"code": "s2", "extra": 1}), "extra", "unknown_field")
            .expect_alert(None, "r", Severity::Critical)
            .create_child("p", "part", "a", json!({"name": "左"}))
            .create("b", "item", EstateId(1), json!({"code": "s3", "link": "@a"}))
            .expect_field("b", "link", json!("@a"))
            .transition("a", "hold", Actor::firm(), json!({"tag": "blue"}))
            .expect_state("a", "held")
            .expect_field("a", "note", json!("seen"))
            .today(Date::from_ymd(2026, 3, 3).expect("date"))
            .run_deadlines()
            .expect_state("a", "open")
            .expect_alert(Some("a"), "stale", Severity::Warning)
            .run(&host)
            .await
            .unwrap_or_else(|f| panic!("{f}"));
        assert_eq!(report.records.len(), 3);
        let (a, b) = (report.records["a"], report.records["b"]);
        assert_eq!(host.data(b).and_then(|d| d.get("link").cloned()), Some(json!(a.0)));
        assert_eq!(host.record(a).map(|r| r.version), Some(3), "held, then released");
    }

    #[tokio::test]
    async fn the_first_failing_step_is_reported_with_context() {
        let host = host();
        let failure = Story::new("wrong expectations")
            .create("a", "item", EstateId(1), json!({"code": "f1"}))
            .expect_state("a", "open")
            .transition("a", "finish", Actor::System, json!({}))
            .expect_state("a", "done")
            .run(&host)
            .await
            .expect_err("System may not finish");
        assert_eq!(failure.step, 3);
        assert!(failure.step_text.contains("fire `finish` on `a` as System"), "{}", failure.step_text);
        assert!(failure.reason.contains("forbidden"), "{}", failure.reason);
        assert_eq!(failure.logs.len(), 1);
        let text = failure.to_string();
        assert!(text.starts_with("story `wrong expectations` failed at step 3"), "{text}");

        let failure = Story::new("refusal expected")
            .refuse_create("item", EstateId(1), json!({"code": "invalid"}), "code", "no")
            .run(&host)
            .await
            .expect_err("refused with another code");
        assert!(failure.reason.contains("not as expected") && failure.reason.contains("(bad)"), "{}", failure.reason);

        let failure = Story::new("unknown label").expect_state("ghost", "open").run(&host).await.expect_err("no ghost");
        assert!(failure.reason.contains("no record is named `ghost`"), "{}", failure.reason);

        let failure = Story::new("missing alert")
            .create("b", "item", EstateId(1), json!({"code": "f2"}))
            .expect_alert(Some("b"), "stale", Severity::Warning)
            .run(&host)
            .await
            .expect_err("not stale yet");
        assert_eq!(failure.step, 2);
    }

    #[test]
    fn labels_are_substituted_only_when_known() {
        let labels = BTreeMap::from([("dog".to_owned(), RecordId(42))]);
        let v = json!({"dog": "@dog", "other": "@cat", "list": ["@dog"], "text": "mail@dog"});
        assert_eq!(substitute(&v, &labels), json!({"dog": 42, "other": "@cat", "list": [42], "text": "mail@dog"}));
    }
}
