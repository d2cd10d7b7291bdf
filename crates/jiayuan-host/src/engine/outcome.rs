//! Applying a hook's outcome: the final data, children, alerts, audit rows, index keys and
//! reference-index rows of one write, and the two times of an entry.

use serde_json::{Map, Value, json};

use jiayuan_domain::{Place, Timestamp};
use jiayuan_plugin_api::{AlertDraft, FieldViolation, KeyDef, Manifest, Outcome, RecordKind};
use jiayuan_schema::{Mode, Reference, check_object};
use jiayuan_store::{
    AlertTarget, AuditTarget, IndexKey, NewAlert, NewAudit, NewRecord, ParentRef, RecordRef, RefKind, WriteBatch,
};

use super::{Engine, EngineError};

/// How far into the future a declared `occurred_at` may lie (clocks of phones drift).
const CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;

/// Longest back-dating reason accepted.
pub(crate) const MAX_BACKDATE_REASON_CHARS: usize = 200;

/// The two times of an entry: when it happened (declared) and why it was back-dated, if it was
/// beyond the kind's bound.
#[derive(Debug, Clone)]
pub(crate) struct Times {
    pub occurred_at: Timestamp,
    pub backdated_reason: Option<String>,
}

/// Checks a declared `occurred_at` against the host's clock `now`: not in the future, and back-
/// dated beyond the kind's bound only with a reason (the entry is then flagged).
pub(crate) fn times(
    kind: &RecordKind,
    now: Timestamp,
    occurred_at: Option<Timestamp>,
    reason: Option<&str>,
) -> Result<Times, EngineError> {
    let occurred = occurred_at.unwrap_or(now);
    let bad = |code: &str, zh: String, en: String| {
        EngineError::Invalid(vec![FieldViolation::new("occurred_at", code, zh, en)])
    };
    if occurred.0 > now.0 + CLOCK_SKEW_MS {
        return Err(bad("in_future", "发生时间不能晚于现在".into(), "`occurred_at` cannot lie in the future".into()));
    }
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    if reason.is_some_and(|r| r.chars().count() > MAX_BACKDATE_REASON_CHARS) {
        return Err(EngineError::Invalid(vec![FieldViolation::new(
            "backdate_reason",
            "too_long",
            format!("补录原因最多 {MAX_BACKDATE_REASON_CHARS} 个字"),
            format!("`backdate_reason` allows at most {MAX_BACKDATE_REASON_CHARS} characters"),
        )]));
    }
    let bound_ms = i64::from(kind.max_backdate_hours) * 3_600_000;
    let beyond = now.0 - occurred.0 > bound_ms;
    match (beyond, reason) {
        (false, _) => Ok(Times { occurred_at: occurred, backdated_reason: None }),
        (true, Some(r)) => Ok(Times { occurred_at: occurred, backdated_reason: Some(r.to_owned()) }),
        (true, None) => Err(bad(
            "backdated_without_reason",
            format!("补录超过 {} 小时的记录须说明原因（backdate_reason）", kind.max_backdate_hours),
            format!(
                "`occurred_at` lies more than {} hours before now: give a `backdate_reason` (the entry is flagged)",
                kind.max_backdate_hours
            ),
        )),
    }
}

/// The store's index keys of a checked data object.
pub(crate) fn index_keys(keys: &[KeyDef], data: &Map<String, Value>) -> Vec<IndexKey> {
    jiayuan_schema::index_entries(keys, data)
        .into_iter()
        .map(|e| IndexKey { field: e.field, value: e.value, unique: e.unique })
        .collect()
}

/// The reference-index rows of one version of a record of `plugin`: what its data refers to,
/// and its parent.
pub(crate) fn refs_of(
    plugin: &str,
    kind: &RecordKind,
    data: &Map<String, Value>,
    parent: Option<jiayuan_domain::RecordId>,
) -> Vec<RecordRef> {
    let mut out: Vec<RecordRef> = jiayuan_schema::references_in(&kind.fields, data)
        .into_iter()
        .map(|r| match r {
            Reference::Person { field, id } => RecordRef { kind: RefKind::Person, id: id.to_string(), field },
            Reference::House { field, id } => RecordRef { kind: RefKind::House, id: id.to_string(), field },
            Reference::Record { field, id, .. } => {
                RecordRef { kind: RefKind::Record, id: record_ref_id(plugin, id), field }
            }
            Reference::AgencyUnit { field, id, .. } => {
                RecordRef { kind: RefKind::AgencyUnit, id: id.to_string(), field }
            }
        })
        .collect();
    if let Some(p) = parent {
        out.push(RecordRef { kind: RefKind::Record, id: record_ref_id(plugin, p.0), field: "parent_id".into() });
    }
    out
}

/// The reference-index id of record `id` of `plugin` (`dog-licensing/42`).
pub fn record_ref_id(plugin: &str, id: i64) -> String {
    format!("{plugin}/{id}")
}

/// The store columns of a place.
pub(crate) fn place_columns(place: &Place) -> (Option<jiayuan_domain::EstateId>, Option<String>) {
    (place.estate(), place.grid_cell().map(str::to_owned))
}

impl Engine {
    /// The data to store: the hook's replacement (checked against the manifest, derived fields
    /// allowed) or the input.
    pub(super) fn final_data(
        &self,
        manifest: &Manifest,
        kind: &RecordKind,
        replacement: Option<&str>,
        input: Map<String, Value>,
    ) -> Result<Map<String, Value>, EngineError> {
        let Some(text) = replacement else { return Ok(input) };
        let contract = |detail: String| EngineError::PluginContract { plugin: manifest.id.clone(), detail };
        let value: Value = serde_json::from_str(text).map_err(|e| contract(format!("data is not JSON: {e}")))?;
        let today = self.clock.now().shanghai_date();
        let checked = check_object(&kind.fields, &value, Mode::TransitionInput, today).map_err(|v| {
            contract(v.iter().map(|v| format!("{}: {}", v.field, v.message_en)).collect::<Vec<_>>().join("; "))
        })?;
        Ok(checked.data)
    }

    /// Adds the hook's child drafts to `batch`, at the parent's place.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn add_children(
        &self,
        batch: &mut WriteBatch,
        manifest: &Manifest,
        parent_kind: &RecordKind,
        parent: ParentRef,
        place: &Place,
        outcome: &Outcome,
        times: &Times,
        now: Timestamp,
        actor: &str,
    ) -> Result<(), EngineError> {
        let today = now.shanghai_date();
        for child in &outcome.children {
            let contract = |detail: String| EngineError::PluginContract { plugin: manifest.id.clone(), detail };
            let kind = manifest
                .kind(&child.kind)
                .ok_or_else(|| contract(format!("child kind `{}` is undeclared", child.kind)))?;
            if kind.parent.as_deref() != Some(parent_kind.id.as_str()) {
                return Err(contract(format!("`{}` is not a child kind of `{}`", kind.id, parent_kind.id)));
            }
            let value: Value =
                serde_json::from_str(&child.data_json).map_err(|e| contract(format!("child data is not JSON: {e}")))?;
            let checked = check_object(&kind.fields, &value, Mode::TransitionInput, today).map_err(|v| {
                contract(v.iter().map(|v| format!("{}: {}", v.field, v.message_en)).collect::<Vec<_>>().join("; "))
            })?;
            let parent_id = match parent {
                ParentRef::Existing(id) => Some(id),
                ParentRef::InBatch(_) => None,
            };
            batch.creates.push(NewRecord {
                plugin: manifest.id.clone(),
                kind: kind.id.clone(),
                place: place.clone(),
                parent: Some(parent),
                state: kind.workflow.initial.clone(),
                keys: index_keys(&kind.keys, &checked.data),
                refs: refs_of(&manifest.id, kind, &checked.data, parent_id),
                data_json: Value::Object(checked.data).to_string(),
                at: now,
                occurred_at: times.occurred_at,
                backdated_reason: times.backdated_reason.clone(),
                actor: actor.to_owned(),
            });
        }
        Ok(())
    }

    /// Writes the alerts of a refused input (there is no record): one per (place, key) however
    /// often the same input is refused.
    pub(super) async fn write_refusal_alerts(
        &self,
        plugin: &str,
        place: Option<&Place>,
        alerts: &[AlertDraft],
        now: Timestamp,
    ) -> Result<(), EngineError> {
        if alerts.is_empty() {
            return Ok(());
        }
        let at = place.map_or_else(
            || "district".to_owned(),
            |p| match p {
                Place::Estate(e) => e.to_string(),
                Place::GridCell(g) => format!("grid-{g}"),
            },
        );
        let rows = alerts
            .iter()
            .map(|a| alert_row(plugin, None, place, a, format!("{plugin}/refused/{at}/{}", a.key), now))
            .collect();
        self.store.write(WriteBatch { alerts: rows, ..WriteBatch::default() }).await?;
        Ok(())
    }
}

/// Appends one audit event per create (each child too) and per update of `batch`, written in the
/// batch's transaction. Ids, kinds, states, places and transition ids only — never record data.
/// `updated` is the updated record's state as read (the store checks the version, so it is the
/// state the update leaves) and its place before the update.
pub(crate) fn audit_changes(batch: &mut WriteBatch, updated: Option<(&str, &Place)>) {
    let mut rows = Vec::with_capacity(batch.creates.len() + batch.updates.len());
    for (i, c) in batch.creates.iter().enumerate() {
        let parent = match c.parent {
            Some(ParentRef::Existing(id)) => json!({ "existing": id.0 }),
            Some(ParentRef::InBatch(j)) => json!({ "in_batch": j }),
            None => Value::Null,
        };
        rows.push(NewAudit {
            at: c.at,
            actor: c.actor.clone(),
            action: "record.create".into(),
            target: AuditTarget::InBatch(i),
            estate_id: c.place.estate(),
            detail_json: json!({
                "kind": c.kind, "state": c.state, "parent": parent, "place": c.place,
                "backdated": c.backdated_reason.is_some(),
            })
            .to_string(),
        });
    }
    for u in &batch.updates {
        let from_place = updated.map(|(_, p)| p);
        rows.push(NewAudit {
            at: u.at,
            actor: u.actor.clone(),
            action: format!("record.transition:{}", u.action),
            target: AuditTarget::Object(format!("{}/record/{}", u.plugin, u.id.0)),
            estate_id: u.move_to.as_ref().or(from_place).and_then(Place::estate),
            detail_json: json!({
                "transition": u.action,
                "from": updated.map(|(s, _)| s),
                "to": u.new_state,
                "version": u.expected_version + 1,
                "moved_from": u.move_to.as_ref().and(from_place),
                "moved_to": u.move_to,
                "assignee": u.assignee,
                "backdated": u.backdated_reason.is_some(),
            })
            .to_string(),
        });
    }
    batch.audit.extend(rows);
}

pub(crate) fn alert_row(
    plugin: &str,
    record: Option<AlertTarget>,
    place: Option<&Place>,
    a: &AlertDraft,
    dedupe_key: String,
    at: Timestamp,
) -> NewAlert {
    let (estate_id, grid_cell) = place.map(place_columns).unwrap_or((None, None));
    NewAlert {
        plugin: plugin.to_owned(),
        record,
        estate_id,
        grid_cell,
        rule: a.key.clone(),
        dedupe_key,
        severity: severity_text(a.severity).to_owned(),
        message_zh: a.message.zh.clone(),
        message_en: a.message.en.clone(),
        due_at: None,
        at,
    }
}

/// The stored text of a severity.
pub(crate) fn severity_text(s: jiayuan_plugin_api::Severity) -> &'static str {
    use jiayuan_plugin_api::Severity;
    match s {
        Severity::Info => "info",
        Severity::Reminder => "reminder",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiayuan_plugin_api::{StateDef, Workflow};

    fn kind() -> RecordKind {
        RecordKind::new("k", "类", "Kind", Workflow::new("a", vec![StateDef::new("a", "甲", "A")], vec![]))
            .backdating_hours(24)
    }

    #[test]
    fn back_dating_beyond_the_bound_needs_a_reason_and_is_flagged() {
        let now = Timestamp(1_800_000_000_000);
        let hour = 3_600_000;
        let t = times(&kind(), now, None, None).expect("now");
        assert_eq!((t.occurred_at, t.backdated_reason), (now, None));
        let within = times(&kind(), now, Some(Timestamp(now.0 - 23 * hour)), None).expect("within the bound");
        assert_eq!(within.backdated_reason, None);
        let beyond = Some(Timestamp(now.0 - 25 * hour));
        match times(&kind(), now, beyond, None) {
            Err(EngineError::Invalid(v)) => assert_eq!(v[0].code, "backdated_without_reason"),
            other => panic!("{other:?}"),
        }
        let flagged = times(&kind(), now, beyond, Some(" 停电补录 ")).expect("with a reason");
        assert_eq!(flagged.backdated_reason.as_deref(), Some("停电补录"));
        match times(&kind(), now, Some(Timestamp(now.0 + hour)), None) {
            Err(EngineError::Invalid(v)) => assert_eq!(v[0].code, "in_future"),
            other => panic!("{other:?}"),
        }
    }
}
