//! The tamper-evident audit log: one row per change, appended IN THE TRANSACTION of the change and
//! chained by SHA-256, and [`Store::verify_audit`], which recomputes the chain.
//!
//! Row `n` stores `hash = hex(SHA-256(prev_hash ‖ canonical(n)))`, where `prev_hash` is the hash
//! of row `n − 1` (64 zeros for row 1) and `canonical(n)` is the JSON array
//! `[seq, at, actor, action, object, estate_id, detail_json]` (JSON escaping makes it unambiguous).
//! Editing, deleting, reordering or inserting a row breaks the recomputation at that row.
//!
//! Chain ordering. `seq` is not a database sequence: every append reads the one-row chain head
//! (`audit_head`: last seq and hash), writes its rows after it and moves the head, all in the
//! transaction of the change — so a rolled-back change leaves neither a row nor a gap.
//! - SQLite: every write already holds the database write lock (`BEGIN IMMEDIATE`, one writer),
//!   so appends are serialised; the group-commit writer reads the head inside its transaction
//!   (never from a cache that another process could have moved) and carries it from batch to batch.
//! - PostgreSQL: the head row is read with `SELECT … FOR UPDATE`, taken as the LAST step of the
//!   transaction (after records, keys, events, alerts), so concurrent writers serialise only for
//!   the short tail of their transactions. Writers waiting on the lock see the moved head when
//!   they get it (READ COMMITTED re-reads the locked row).
//!
//! The head also anchors the end of the chain, so that deleting the last rows or appending a
//! well-formed forged row is noticed. The later optimisation, if the one locked row becomes a
//! bottleneck, is "chained, sealed batches": writers append unchained rows freely and a sealer
//! chains them in batches.

use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Statement,
};
use sha2::{Digest, Sha256};

use jiayuan_domain::{EstateId, Timestamp};

use crate::entity::audit_event;
use crate::error::{StoreError, db};
use crate::records::WriteBatch;
use crate::store::Store;

/// `prev_hash` of the first row.
pub(crate) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Rows per page read by [`Store::verify_audit`].
const VERIFY_PAGE: u64 = 1000;

/// An audit event to append with a change. It must carry no personal data: ids, states,
/// transition ids, plugin versions — never record data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAudit {
    /// When.
    pub at: Timestamp,
    /// Who (user name, or `system:…`).
    pub actor: String,
    /// What, e.g. `record.create`, `record.transition:<id>`, `enablement.set`, `plugin.load`.
    pub action: String,
    /// On what.
    pub target: AuditTarget,
    /// The estate concerned, if any.
    pub estate_id: Option<EstateId>,
    /// Details as a JSON object (ids, states, versions only).
    pub detail_json: String,
}

/// The object of an audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditTarget {
    /// Named in full, e.g. `dog-licensing/record/42`, `plugin/dog-licensing`.
    Object(String),
    /// A create of the same batch (index into [`WriteBatch::creates`]): `<plugin>/record/<id>`.
    InBatch(usize),
}

/// A stored audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAudit {
    /// Position in the chain, from 1 without gaps.
    pub seq: i64,
    /// When.
    pub at: Timestamp,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// On what, e.g. `dog-licensing/record/42`.
    pub object: String,
    /// The estate concerned, if any.
    pub estate_id: Option<EstateId>,
    /// Details as JSON text.
    pub detail_json: String,
    /// The previous row's hash (64 zeros for seq 1).
    pub prev_hash: String,
    /// This row's hash.
    pub hash: String,
}

/// What [`Store::verify_audit`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    /// Rows read.
    pub events: u64,
    /// The hash of the last row (64 zeros for an empty log).
    pub head: String,
    /// The first fault, if the chain is broken.
    pub fault: Option<AuditFault>,
}

/// The first place the chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFault {
    /// The first bad sequence number.
    pub seq: i64,
    /// Why, e.g. `hash mismatch`.
    pub reason: String,
}

impl AuditReport {
    /// Whether the chain verified.
    pub fn is_ok(&self) -> bool {
        self.fault.is_none()
    }
}

/// The chain head: the last row's seq and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) seq: i64,
    pub(crate) hash: String,
}

/// A row about to be appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    pub(crate) seq: i64,
    pub(crate) at: i64,
    pub(crate) actor: String,
    pub(crate) action: String,
    pub(crate) object: String,
    pub(crate) estate_id: Option<i64>,
    pub(crate) detail_json: String,
    pub(crate) prev_hash: String,
    pub(crate) hash: String,
}

/// `hex(SHA-256(prev_hash ‖ [seq, at, actor, action, object, estate_id, detail_json]))`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn row_hash(
    prev_hash: &str,
    seq: i64,
    at: i64,
    actor: &str,
    action: &str,
    object: &str,
    estate_id: Option<i64>,
    detail_json: &str,
) -> String {
    let canonical = serde_json::json!([seq, at, actor, action, object, estate_id, detail_json]).to_string();
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(canonical.as_bytes());
    hex::encode(hasher.finalize())
}

/// The rows of `batch.audit` chained after `head`, with in-batch objects named by `created`
/// (the ids of the batch's creates); `None` if an in-batch index is out of range.
pub(crate) fn chain(batch: &WriteBatch, created: &[i64], head: &Head) -> Option<(Vec<Row>, Head)> {
    let mut rows = Vec::with_capacity(batch.audit.len());
    let mut seq = head.seq;
    let mut prev = head.hash.clone();
    for a in &batch.audit {
        let object = match &a.target {
            AuditTarget::Object(o) => o.clone(),
            AuditTarget::InBatch(i) => format!("{}/record/{}", batch.creates.get(*i)?.plugin, created.get(*i)?),
        };
        seq = seq.checked_add(1)?;
        let estate_id = a.estate_id.map(|e| e.0);
        let hash = row_hash(&prev, seq, a.at.0, &a.actor, &a.action, &object, estate_id, &a.detail_json);
        rows.push(Row {
            seq,
            at: a.at.0,
            actor: a.actor.clone(),
            action: a.action.clone(),
            object,
            estate_id,
            detail_json: a.detail_json.clone(),
            prev_hash: std::mem::replace(&mut prev, hash.clone()),
            hash,
        });
    }
    Some((rows, Head { seq, hash: prev }))
}

/// Reads the chain head inside `txn`; on PostgreSQL the row stays locked (`FOR UPDATE`) until
/// the transaction ends.
pub(crate) async fn read_head(txn: &impl ConnectionTrait, lock: bool) -> Result<Head, StoreError> {
    const OP: &str = "read audit head";
    let backend = txn.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres if lock => "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE",
        _ => "SELECT seq, hash FROM audit_head WHERE id = 1",
    };
    let row =
        txn.query_one_raw(Statement::from_string(backend, sql)).await.map_err(db(OP))?.ok_or_else(|| {
            StoreError::Corrupt { what: "audit_head", detail: "the chain head row is missing".into() }
        })?;
    Ok(Head { seq: row.try_get("", "seq").map_err(db(OP))?, hash: row.try_get("", "hash").map_err(db(OP))? })
}

/// Appends the batch's audit rows in `txn` (statement by statement): locks and reads the head,
/// inserts the rows and moves the head.
pub(crate) async fn append(txn: &impl ConnectionTrait, batch: &WriteBatch, created: &[i64]) -> Result<(), StoreError> {
    const OP: &str = "append audit events";
    if batch.audit.is_empty() {
        return Ok(());
    }
    let head = read_head(txn, true).await?;
    let (rows, new_head) = chain(batch, created, &head)
        .ok_or_else(|| StoreError::InvalidBatch("an audit event names a create the batch does not have".into()))?;
    let models = rows.into_iter().map(|r| audit_event::ActiveModel {
        seq: Set(r.seq),
        at: Set(r.at),
        actor: Set(r.actor),
        action: Set(r.action),
        object: Set(r.object),
        estate_id: Set(r.estate_id),
        detail_json: Set(r.detail_json),
        prev_hash: Set(r.prev_hash),
        hash: Set(r.hash),
    });
    audit_event::Entity::insert_many(models).exec_without_returning(txn).await.map_err(db(OP))?;
    let mut update = Query::update();
    update
        .table(Alias::new("audit_head"))
        .value(Alias::new("seq"), new_head.seq)
        .value(Alias::new("hash"), new_head.hash.as_str())
        .and_where(Expr::col(Alias::new("id")).eq(1i64));
    txn.execute(&update).await.map_err(db(OP))?;
    Ok(())
}

impl Store {
    /// Audit events with seq greater than `after`, in seq order; at most `limit` (0 or more than
    /// [`crate::MAX_PAGE`] means [`crate::MAX_PAGE`]).
    pub async fn audit_events(&self, after: i64, limit: u32) -> Result<Vec<StoredAudit>, StoreError> {
        let limit = if limit == 0 || limit > crate::MAX_PAGE { crate::MAX_PAGE } else { limit };
        let rows = audit_event::Entity::find()
            .filter(audit_event::Column::Seq.gt(after))
            .order_by_asc(audit_event::Column::Seq)
            .limit(u64::from(limit))
            .all(&self.reader)
            .await
            .map_err(db("list audit events"))?;
        Ok(rows
            .into_iter()
            .map(|r| StoredAudit {
                seq: r.seq,
                at: Timestamp(r.at),
                actor: r.actor,
                action: r.action,
                object: r.object,
                estate_id: r.estate_id.map(EstateId),
                detail_json: r.detail_json,
                prev_hash: r.prev_hash,
                hash: r.hash,
            })
            .collect())
    }

    /// Recomputes the audit chain in seq order (in pages) and reports the first bad seq: a gap
    /// in seq, a broken link (`prev_hash` is not the previous row's hash; for seq 1, not 64
    /// zeros), a hash mismatch, or an end that disagrees with the chain head (rows missing at the
    /// end, or a row beyond it). Rows appended while it reads are verified too.
    pub async fn verify_audit(&self) -> Result<AuditReport, StoreError> {
        const OP: &str = "verify audit log";
        let mut events = 0u64;
        let mut last = Head { seq: 0, hash: GENESIS.to_owned() };
        let fault = |seq: i64, reason: String| AuditFault { seq, reason };
        loop {
            let page = audit_event::Entity::find()
                .filter(audit_event::Column::Seq.gt(last.seq))
                .order_by_asc(audit_event::Column::Seq)
                .limit(VERIFY_PAGE)
                .all(&self.reader)
                .await
                .map_err(db(OP))?;
            if page.is_empty() {
                // The end: compare it with the head, read now. A row and the head that covers it
                // commit together, so rows appended meanwhile are visible to the next query.
                let head = read_head(&self.reader, false).await?;
                let bad = if head.seq > last.seq {
                    if self.audit_events(last.seq, 1).await?.is_empty() {
                        Some(fault(
                            last.seq + 1,
                            format!("gap in seq: the log ends at {} but its head is at {}", last.seq, head.seq),
                        ))
                    } else {
                        continue; // appended while we read
                    }
                } else if head.seq < last.seq {
                    Some(fault(head.seq + 1, format!("row {} is beyond the chain head ({})", head.seq + 1, head.seq)))
                } else if head.hash != last.hash {
                    Some(fault(last.seq, "the chain head's hash does not match the last row".into()))
                } else {
                    None
                };
                return Ok(AuditReport { events, head: last.hash, fault: bad });
            }
            for r in page {
                let expected = last.seq + 1;
                let bad = if r.seq != expected {
                    Some(fault(expected, format!("gap in seq: row {expected} is missing (next is {})", r.seq)))
                } else if r.prev_hash != last.hash {
                    Some(fault(
                        r.seq,
                        if r.seq == 1 {
                            "bad first link: prev_hash is not 64 zeros".to_owned()
                        } else {
                            format!("broken link: prev_hash is not the hash of row {}", r.seq - 1)
                        },
                    ))
                } else if r.hash
                    != row_hash(&r.prev_hash, r.seq, r.at, &r.actor, &r.action, &r.object, r.estate_id, &r.detail_json)
                {
                    Some(fault(r.seq, "hash mismatch: the row's content does not match its hash".to_owned()))
                } else {
                    None
                };
                if bad.is_some() {
                    return Ok(AuditReport { events, head: last.hash, fault: bad });
                }
                events += 1;
                last = Head { seq: r.seq, hash: r.hash };
            }
        }
    }
}

#[cfg(test)]
mod tests;
