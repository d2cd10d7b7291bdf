//! What the API answers with: records and their history as one caller may see them. Every view
//! is made by [`jiayuan_schema::projection::project`], the one projection (need-to-know, then
//! masking); nothing here decides visibility itself.

use serde::Serialize;
use serde_json::{Map, Value};

use jiayuan_domain::{EstateId, Place, RecordId};
use jiayuan_plugin_api::{Manifest, RecordKind};
use jiayuan_schema::projection::{Projected, Viewer, project};
use jiayuan_store::{StoredEvent, StoredRecord};

use super::Caller;

/// A record as the API shows it to one caller.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RecordView {
    /// Id.
    pub id: RecordId,
    /// Plugin id.
    pub plugin: String,
    /// Record kind.
    pub kind: String,
    /// Where it sits.
    pub place: Place,
    /// Its estate, when it sits at one.
    pub estate_id: Option<EstateId>,
    /// Parent record.
    pub parent_id: Option<RecordId>,
    /// Workflow state.
    pub state: String,
    /// Data object: the fields the caller may see, masked where they must be.
    pub data: Value,
    /// Fields present but withheld because masked (non-text values, sensitive text).
    pub masked: Vec<String>,
    /// The account assigned to handle it.
    pub assignee: Option<String>,
    /// Who created it.
    pub created_by: String,
    /// Created (RFC 3339, +08:00): the host's clock.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
    /// When its latest entry says it happened.
    pub occurred_at: String,
    /// Version for optimistic concurrency.
    pub version: i64,
}

/// One entry of a record's history as the API shows it to one caller.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EventView {
    /// Sequence number.
    pub seq: i64,
    /// The transition (or `create`, `assign`, `move`).
    pub action: String,
    /// State before.
    pub from_state: Option<String>,
    /// State after.
    pub to_state: String,
    /// Who.
    pub actor: String,
    /// Recorded at (the host's clock).
    pub recorded_at: String,
    /// Occurred at (as declared).
    pub occurred_at: String,
    /// Why it was back-dated beyond the kind's bound; present means flagged.
    pub backdated_reason: Option<String>,
    /// Where the record sat after the entry.
    pub place: Option<Place>,
    /// The data after the entry, projected for the caller.
    pub data: Value,
    /// Fields withheld because masked.
    pub masked: Vec<String>,
    /// Fields whose projected value differs from the previous entry's (diffs are computed after
    /// projection, so they never reveal a change of a field the caller cannot see).
    pub changed: Vec<String>,
}

/// The viewer a caller is (the host itself sees everything).
pub(crate) fn viewer(caller: &Caller, unmask: bool) -> Viewer<'_> {
    match &caller.audience {
        None => Viewer::system(),
        Some(a) => Viewer { audience: Some(a), unmask },
    }
}

/// Projects a data object stored as JSON text; a record whose kind the loaded manifest no longer
/// declares shows nothing of its data (fails closed).
pub(crate) fn project_json(kind: Option<&RecordKind>, data_json: &str, viewer: &Viewer<'_>) -> Projected {
    let data: Map<String, Value> = serde_json::from_str(data_json).unwrap_or_default();
    match kind {
        Some(k) => project(k, &data, viewer),
        None if viewer.audience.is_none() => Projected { data, ..Projected::default() },
        None => Projected { masked: data.keys().cloned().collect(), ..Projected::default() },
    }
}

impl RecordView {
    /// The record as `viewer` sees it (the caller has checked the kind is visible).
    pub(crate) fn project(
        manifest: Option<&Manifest>,
        r: StoredRecord,
        viewer: &Viewer<'_>,
    ) -> (RecordView, Vec<String>) {
        let kind = manifest.and_then(|m| m.kind(&r.kind));
        let p = project_json(kind, &r.data_json, viewer);
        let view = RecordView {
            estate_id: r.place.estate(),
            id: r.id,
            plugin: r.plugin,
            kind: r.kind,
            place: r.place,
            parent_id: r.parent_id,
            state: r.state,
            data: Value::Object(p.data),
            masked: p.masked,
            assignee: r.assignee,
            created_by: r.created_by,
            created_at: r.created_at.to_rfc3339_shanghai(),
            updated_at: r.updated_at.to_rfc3339_shanghai(),
            occurred_at: r.occurred_at.to_rfc3339_shanghai(),
            version: r.version,
        };
        (view, p.unmasked)
    }
}

/// A record's events as `viewer` sees them, with the fields each changed.
pub(crate) fn project_events(
    kind: Option<&RecordKind>,
    events: Vec<StoredEvent>,
    viewer: &Viewer<'_>,
) -> Vec<EventView> {
    let mut previous: Option<Map<String, Value>> = None;
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        let p = project_json(kind, &e.data_json, viewer);
        let changed = match &previous {
            None => p.data.keys().cloned().collect(),
            Some(prev) => {
                let mut names: Vec<String> =
                    p.data.iter().filter(|(k, v)| prev.get(*k) != Some(v)).map(|(k, _)| k.clone()).collect();
                names.extend(prev.keys().filter(|k| !p.data.contains_key(*k)).cloned());
                names
            }
        };
        previous = Some(p.data.clone());
        out.push(EventView {
            seq: e.seq,
            action: e.action,
            from_state: e.from_state,
            to_state: e.to_state,
            actor: e.actor,
            recorded_at: e.at.to_rfc3339_shanghai(),
            occurred_at: e.occurred_at.to_rfc3339_shanghai(),
            backdated_reason: e.backdated_reason,
            place: e.place,
            data: Value::Object(p.data),
            masked: p.masked,
            changed,
        });
    }
    out
}
