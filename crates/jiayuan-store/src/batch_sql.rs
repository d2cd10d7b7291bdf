//! The one-round-trip form of a [`WriteBatch`] on SQLite, used by the group-commit writer.
//!
//! The whole batch is ONE string of statements sent in one call (sqlx runs them in order on
//! the connection's worker thread, binding the `?` parameters across them):
//!
//! ```text
//! SAVEPOINT jiayuan_batch;
//! INSERT INTO records (id, …) VALUES …;                 -- every create, ids named up front
//! INSERT INTO record_events (…) VALUES …;               -- their `create` events
//! UPDATE records SET … WHERE id = ? AND plugin = ? AND version = ?;   -- per update, then
//! INSERT INTO record_events (…) VALUES (CASE WHEN changes() = 1 THEN ? END, …);
//! DELETE FROM record_keys WHERE record_id IN (…);       -- the updated records' old keys
//! INSERT INTO record_keys (…) VALUES …;                 -- every key of the batch
//! INSERT INTO record_refs (…) VALUES … ON CONFLICT DO NOTHING;  -- every reference (crate::refs)
//! INSERT INTO audit_events (…) VALUES …;                -- hash-chained after the head the
//! UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1;  -- writer carries (crate::audit)
//! INSERT INTO alerts (…) VALUES … ON CONFLICT (dedupe_key) DO NOTHING RETURNING id;
//! RELEASE jiayuan_batch
//! ```
//!
//! It writes the same rows as the statement-by-statement form ([`crate::records`]) in the same
//! order (so event seqs and alert ids come out the same), and the record ids `AUTOINCREMENT`
//! would have given: the writer holds the write lock from before it reads the last id. It never
//! reports an error itself: anything the statement-by-statement form would refuse makes one of
//! these statements fail instead — a taken unique key violates the unique index (no
//! `ON CONFLICT` on keys here), an unknown estate or parent a foreign key, and an update that
//! matches no row (wrong plugin, id or version) leaves `changes()` at 0, so its event's
//! `record_id` is NULL and violates `NOT NULL` (an unknown grid cell, at a create or a move, is a
//! foreign key too, and a place with neither or both columns the `records_one_place` CHECK);
//! audit rows chained after a stale head would repeat
//! a `seq` and violate its primary key. The statements stop at the first failure, before
//! `RELEASE`; the writer then rolls back to the savepoint and replays the batch statement by
//! statement for the exact error. The only rows returned are those of newly raised alerts.
//!
//! Every statement stays far below SQLite's 32 766 bound variables: batches with more than
//! [`CHUNK`] creates, keys, references or alerts (or more than [`MAX_UPDATES`] updates) are not
//! built here.
//!
//! An event's place (`place_json`) is the record's place after it: bound for a create, and for an
//! update read back from the updated row with `json_object` (parsed, not compared, on reading).

use sea_orm::{DbBackend, Statement, Value};

use crate::audit::{self, Head};
use crate::records::{AlertTarget, CHUNK, KeyRow, ParentRef, WriteBatch, place_columns, place_json, push_keys};
use crate::refs::ref_rows;

/// Opens the batch's savepoint. Between batches no savepoint of this name is open, so a
/// `ROLLBACK TO` can never reach an earlier batch.
pub(crate) const SAVEPOINT: &str = "SAVEPOINT jiayuan_batch";
/// Keeps the batch.
pub(crate) const RELEASE: &str = "RELEASE jiayuan_batch";
/// Undoes the batch (and fails if its savepoint was never opened).
pub(crate) const ROLLBACK: &str = "ROLLBACK TO jiayuan_batch; RELEASE jiayuan_batch";

/// The head of an `INSERT` of events.
const INSERT_EVENTS: &str = "INSERT INTO record_events (record_id, plugin, at, occurred_at, backdated_reason, \
     place_json, actor, action, from_state, to_state, data_json) VALUES ";

/// Updates per one-round-trip batch (each is two statements of the string).
pub(crate) const MAX_UPDATES: usize = 64;

/// A batch as one statement string.
#[derive(Debug)]
pub(crate) struct OneTrip {
    /// Every statement of the batch, with its values.
    pub(crate) statement: Statement,
    /// The ids of the created records, in order.
    pub(crate) created: Vec<i64>,
    /// The id the next create after this batch gets.
    pub(crate) next_id: i64,
    /// The audit chain head after this batch.
    pub(crate) head: Option<Head>,
}

/// The batch as one statement string, its creates taking ids from `first_id` on and its audit
/// events chained after `head`; `None` when the batch is too large for it, or has audit events
/// and the head is unknown.
pub(crate) fn build(batch: &WriteBatch, first_id: i64, head: Option<&Head>) -> Option<OneTrip> {
    if batch.creates.len() > CHUNK
        || batch.updates.len() > MAX_UPDATES
        || batch.alerts.len() > CHUNK
        || batch.audit.len() > CHUNK
    {
        return None;
    }
    let n = i64::try_from(batch.creates.len()).ok()?;
    let next_id = first_id.checked_add(n)?;
    let created: Vec<i64> = (first_id..next_id).collect();

    // Keys of creates know their kind; keys of updates take it from the record.
    let mut keys: Vec<KeyRow<'_>> = Vec::new();
    for (c, &id) in batch.creates.iter().zip(&created) {
        push_keys(&mut keys, id, &c.plugin, &c.kind, &c.keys);
    }
    let create_keys = keys.len();
    for u in &batch.updates {
        push_keys(&mut keys, u.id.0, &u.plugin, "", &u.keys);
    }
    if keys.len() > CHUNK {
        return None;
    }
    let refs = ref_rows(batch, &created);
    if refs.len() > CHUNK {
        return None;
    }

    let mut sql = String::with_capacity(512);
    let mut values: Vec<Value> = Vec::new();
    sql.push_str(SAVEPOINT);

    if !batch.creates.is_empty() {
        sql.push_str(
            "; INSERT INTO records (id, plugin, kind, estate_id, grid_cell, parent_id, state, prev_state, data_json, \
             created_at, updated_at, state_entered_at, version, created_by, assignee, occurred_at) VALUES ",
        );
        push_rows(&mut sql, batch.creates.len(), |_| "(?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, 1, ?, NULL, ?)");
        for (i, c) in batch.creates.iter().enumerate() {
            // In-batch references were validated; an invalid one is left to the other form.
            let parent = match c.parent {
                None => None,
                Some(ParentRef::Existing(id)) => Some(id.0),
                Some(ParentRef::InBatch(j)) => Some(*created.get(j)?),
            };
            let (estate_id, grid_cell) = place_columns(&c.place);
            values.extend([
                created[i].into(),
                c.plugin.as_str().into(),
                c.kind.as_str().into(),
                estate_id.into(),
                grid_cell.into(),
                parent.into(),
                c.state.as_str().into(),
                c.data_json.as_str().into(),
                c.at.0.into(),
                c.at.0.into(),
                c.at.0.into(),
                c.actor.as_str().into(),
                c.occurred_at.0.into(),
            ]);
        }
        sql.push_str("; ");
        sql.push_str(INSERT_EVENTS);
        push_rows(&mut sql, batch.creates.len(), |_| "(?, ?, ?, ?, ?, ?, ?, 'create', NULL, ?, ?)");
        for (c, &id) in batch.creates.iter().zip(&created) {
            values.extend([
                id.into(),
                c.plugin.as_str().into(),
                c.at.0.into(),
                c.occurred_at.0.into(),
                c.backdated_reason.as_deref().into(),
                place_json(&c.place).into(),
                c.actor.as_str().into(),
                c.state.as_str().into(),
                c.data_json.as_str().into(),
            ]);
        }
    }

    for u in &batch.updates {
        // Every right-hand side sees the row as it was: `prev_state = state` keeps the from-state
        // and the CASE compares against the old state.
        sql.push_str(
            "; UPDATE records SET prev_state = state, state = ?, data_json = ?, updated_at = ?, \
             state_entered_at = CASE WHEN state = ? THEN state_entered_at ELSE ? END, version = version + 1",
        );
        values.extend([
            u.new_state.as_str().into(),
            u.data_json.as_str().into(),
            u.at.0.into(),
            u.new_state.as_str().into(),
            u.at.0.into(),
        ]);
        if let Some(place) = &u.move_to {
            let (estate_id, grid_cell) = place_columns(place);
            sql.push_str(", estate_id = ?, grid_cell = ?");
            values.extend([estate_id.into(), grid_cell.into()]);
        }
        if let Some(assignee) = &u.assignee {
            sql.push_str(", assignee = ?");
            values.push(assignee.as_deref().into());
        }
        sql.push_str(" WHERE id = ? AND plugin = ? AND version = ?; ");
        sql.push_str(INSERT_EVENTS);
        sql.push_str(
            "(CASE WHEN changes() = 1 THEN ? END, ?, ?, ?, ?, (SELECT CASE WHEN grid_cell IS NULL \
             THEN json_object('estate', estate_id) ELSE json_object('grid_cell', grid_cell) END \
             FROM records WHERE id = ?), ?, ?, (SELECT prev_state FROM records WHERE id = ?), ?, ?)",
        );
        values.extend([
            u.id.0.into(),
            u.plugin.as_str().into(),
            u.expected_version.into(),
            u.id.0.into(),
            u.plugin.as_str().into(),
            u.at.0.into(),
            u.occurred_at.0.into(),
            u.backdated_reason.as_deref().into(),
            u.id.0.into(),
            u.actor.as_str().into(),
            u.action.as_str().into(),
            u.id.0.into(),
            u.new_state.as_str().into(),
            u.data_json.as_str().into(),
        ]);
    }

    if !batch.updates.is_empty() {
        sql.push_str("; DELETE FROM record_keys WHERE record_id IN (");
        for (i, u) in batch.updates.iter().enumerate() {
            sql.push_str(if i == 0 { "?" } else { ", ?" });
            values.push(u.id.0.into());
        }
        sql.push(')');
    }

    if !keys.is_empty() {
        sql.push_str("; INSERT INTO record_keys (record_id, field, value, plugin, kind, unique_value) VALUES ");
        push_rows(&mut sql, keys.len(), |i| {
            if i < create_keys {
                "(?, ?, ?, ?, ?, ?)"
            } else {
                "(?, ?, ?, ?, (SELECT kind FROM records WHERE id = ?), ?)"
            }
        });
        for (i, k) in keys.iter().enumerate() {
            values.extend([
                k.record_id.into(),
                k.key.field.as_str().into(),
                k.key.value.as_str().into(),
                k.plugin.into(),
                if i < create_keys { k.kind.into() } else { k.record_id.into() },
                k.key.unique.then_some(k.key.value.as_str()).into(),
            ]);
        }
    }

    if !refs.is_empty() {
        sql.push_str("; INSERT INTO record_refs (plugin, record_id, version, ref_kind, ref_id, field) VALUES ");
        push_rows(&mut sql, refs.len(), |_| "(?, ?, ?, ?, ?, ?)");
        sql.push_str(" ON CONFLICT DO NOTHING");
        for r in &refs {
            values.extend([
                r.plugin.into(),
                r.record_id.into(),
                r.version.into(),
                r.kind.into(),
                r.id.into(),
                r.field.into(),
            ]);
        }
    }

    let head = if batch.audit.is_empty() {
        head.cloned()
    } else {
        let (rows, after) = audit::chain(batch, &created, head?)?;
        sql.push_str(
            "; INSERT INTO audit_events (seq, at, actor, action, object, estate_id, detail_json, prev_hash, hash) \
             VALUES ",
        );
        push_rows(&mut sql, rows.len(), |_| "(?, ?, ?, ?, ?, ?, ?, ?, ?)");
        for r in rows {
            values.extend([
                r.seq.into(),
                r.at.into(),
                r.actor.into(),
                r.action.into(),
                r.object.into(),
                r.estate_id.into(),
                r.detail_json.into(),
                r.prev_hash.into(),
                r.hash.into(),
            ]);
        }
        sql.push_str("; UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1");
        values.extend([after.seq.into(), after.hash.clone().into()]);
        Some(after)
    };

    if !batch.alerts.is_empty() {
        sql.push_str(
            "; INSERT INTO alerts (plugin, record_id, estate_id, grid_cell, rule, dedupe_key, severity, message_zh, \
             message_en, due_at, raised_at) VALUES ",
        );
        push_rows(&mut sql, batch.alerts.len(), |_| "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
        sql.push_str(" ON CONFLICT (dedupe_key) DO NOTHING RETURNING id");
        for a in &batch.alerts {
            let record = match a.record {
                None => None,
                Some(AlertTarget::Existing(id)) => Some(id.0),
                Some(AlertTarget::InBatch(i)) => Some(*created.get(i)?),
            };
            values.extend([
                a.plugin.as_str().into(),
                record.into(),
                a.estate_id.map(|e| e.0).into(),
                a.grid_cell.as_deref().into(),
                a.rule.as_str().into(),
                a.dedupe_key.as_str().into(),
                a.severity.as_str().into(),
                a.message_zh.as_str().into(),
                a.message_en.as_str().into(),
                a.due_at.map(|t| t.0).into(),
                a.at.0.into(),
            ]);
        }
    }

    sql.push_str("; ");
    sql.push_str(RELEASE);
    Some(OneTrip { statement: Statement::from_sql_and_values(DbBackend::Sqlite, sql, values), created, next_id, head })
}

/// Appends `n` comma-separated value rows, row `i` being `row(i)`.
fn push_rows(sql: &mut String, n: usize, row: impl Fn(usize) -> &'static str) {
    for i in 0..n {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(row(i));
    }
}
