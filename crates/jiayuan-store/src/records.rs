//! Record-engine storage: generic tables shared by every plugin — records, their indexed keys,
//! their event history, their references (`crate::refs`) and alerts — written in batches, each
//! all-or-nothing.
//!
//! A record sits at a place (an estate or a grid cell; [`PlaceSet`] filters records and alerts
//! by "estate in … OR grid cell in …"), has the creator of its `create` event (`created_by`), an
//! optional assignee (an account login, set or cleared by [`RecordUpdate::assignee`]) and the
//! declared time its subject occurred (`occurred_at`, next to the host's `created_at`). An update
//! may move it ([`RecordUpdate::move_to`]); every event stores the record's place after it, its
//! declared `occurred_at` next to its recorded `at`, and a back-dating reason if there is one.
//! [`Store::inbox`] lists what is assigned to a login or waits in given `(plugin, kind, state)`s.
//!
//! On SQLite concurrent batches are group-committed (`crate::group`): one transaction, one
//! savepoint per batch, and each batch sent as one string of statements (`crate::batch_sql`)
//! — one round trip — before falling back to the statement-by-statement form below for the
//! precise error. On PostgreSQL every batch is its own transaction of the form below.
//!
//! The statement-by-statement form costs few statements: one `INSERT` per created record (its id
//! is needed by children, keys and events), one `UPDATE … RETURNING` per update (version check,
//! bump and from-state in one round trip), then one multi-row statement each for deleting
//! replaced keys, inserting keys, inserting events and inserting alerts. Unique keys and alert
//! dedupe keys use `INSERT … ON CONFLICT DO NOTHING` and compare row counts, so violations are
//! detected the same way on both backends without parsing driver messages and without aborting
//! the transaction.

use std::collections::{HashMap, HashSet};

use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, Select, Statement,
};

use jiayuan_domain::{AlertId, EstateId, Place, RecordId, Timestamp};

use crate::audit::{self, AuditTarget, NewAudit};
use crate::entity::{alert, record, record_event, record_key};
use crate::error::{StoreError, db};
use crate::refs::{insert_refs, ref_rows};
use crate::store::{Store, finish};

/// The most rows one read returns; larger (and zero) limits are treated as this.
pub const MAX_PAGE: u32 = 1000;

/// Rows per multi-row `INSERT` (keeps every statement far below SQLite's 32 766 bind limit).
pub(crate) const CHUNK: usize = 1000;

/// A stored record, as the record engine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Id (global across plugins, increasing).
    pub id: RecordId,
    /// Owning plugin id.
    pub plugin: String,
    /// Record kind, as declared in the plugin's manifest.
    pub kind: String,
    /// Where it lives: an estate or a grid cell.
    pub place: Place,
    /// Parent record, for child kinds.
    pub parent_id: Option<RecordId>,
    /// Current workflow state.
    pub state: String,
    /// The data object, as JSON text.
    pub data_json: String,
    /// Creation instant.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// When the record entered its current state.
    pub state_entered_at: Timestamp,
    /// Optimistic-concurrency version: 1 at creation, incremented by every update.
    pub version: i64,
    /// Who created it (the actor of its `create` event).
    pub created_by: String,
    /// The account login it is assigned to, if any.
    pub assignee: Option<String>,
    /// When what it records happened, as declared at creation (may be before `created_at`).
    pub occurred_at: Timestamp,
}

impl StoredRecord {
    /// The estate it lives in, for a record at an estate.
    pub fn estate_id(&self) -> Option<EstateId> {
        self.place.estate()
    }
}

/// A set of places: estates and grid cells.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlaceSet {
    /// These estates.
    pub estates: Vec<EstateId>,
    /// These grid cells (15-digit grid codes).
    pub grid_cells: Vec<String>,
}

impl PlaceSet {
    /// Whether the set holds no place at all.
    pub fn is_empty(&self) -> bool {
        self.estates.is_empty() && self.grid_cells.is_empty()
    }
}

/// What a record refers to, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefKind {
    /// A registry person.
    Person,
    /// A registry house.
    House,
    /// A registry building.
    Building,
    /// Another record.
    Record,
    /// An attachment.
    Attachment,
    /// A grid cell.
    GridCell,
    /// An agency unit.
    AgencyUnit,
    /// A registry firm.
    Firm,
}

impl RefKind {
    /// Every kind, in declaration order.
    pub const ALL: [RefKind; 8] = [
        RefKind::Person,
        RefKind::House,
        RefKind::Building,
        RefKind::Record,
        RefKind::Attachment,
        RefKind::GridCell,
        RefKind::AgencyUnit,
        RefKind::Firm,
    ];

    /// The text form (snake_case), as stored in `record_refs.ref_kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            RefKind::Person => "person",
            RefKind::House => "house",
            RefKind::Building => "building",
            RefKind::Record => "record",
            RefKind::Attachment => "attachment",
            RefKind::GridCell => "grid_cell",
            RefKind::AgencyUnit => "agency_unit",
            RefKind::Firm => "firm",
        }
    }

    /// The kind of a text form; `None` for anything else.
    pub fn parse(text: &str) -> Option<RefKind> {
        RefKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl std::fmt::Display for RefKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reference of a record version: `field` of the record's data names `kind` `id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordRef {
    /// What is referred to.
    pub kind: RefKind,
    /// Its id, as text (a person id, a grid code, …).
    pub id: String,
    /// The data field (path) that refers to it.
    pub field: String,
}

/// A record that refers, or once referred, to something ([`Store::records_referring`]): one per
/// record and referring field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferringRecord {
    /// The record's plugin.
    pub plugin: String,
    /// The record.
    pub record_id: RecordId,
    /// The record's kind.
    pub kind: String,
    /// The field that refers (or referred).
    pub field: String,
    /// The first version that refers through this field.
    pub first_version: i64,
    /// The last version that refers through this field.
    pub last_version: i64,
    /// Whether the record's current version refers through this field.
    pub current: bool,
}

/// Which records wait in an inbox ([`Store::inbox`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboxFilter {
    /// Only these plugins' records; `None`: every plugin, `Some(vec![])`: nothing.
    pub plugins: Option<Vec<String>>,
    /// Only records at these places; `None`: everywhere.
    pub places: Option<PlaceSet>,
    /// Records assigned to this account login…
    pub assignee: String,
    /// …or in one of these `(plugin, kind, state)`s (waiting on the caller's audience).
    pub waiting: Vec<(String, String, String)>,
    /// At most this many; 0 or more than [`MAX_PAGE`] means [`MAX_PAGE`].
    pub limit: u32,
}

/// The order of a record listing. Every order ends with the id, so keyset pages are stable even
/// when many records share a time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum RecordOrder {
    /// Oldest id first (creation order).
    #[default]
    IdAsc,
    /// Newest id first.
    IdDesc,
    /// Least recently changed first.
    UpdatedAsc,
    /// Most recently changed first.
    UpdatedDesc,
}

/// Where the previous page ended: the last record's id, and its `updated_at` for the
/// `Updated…` orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordPosition {
    /// The last record's id.
    pub id: RecordId,
    /// The last record's `updated_at` (ignored by the id orders).
    pub updated_at: Timestamp,
}

/// Which records to read. All present conditions must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordFilter {
    /// Owning plugin (required).
    pub plugin: String,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only records at these places (estate in `estates` OR grid cell in `grid_cells`); `None`
    /// means everywhere, a set with both lists empty matches nothing.
    pub places: Option<PlaceSet>,
    /// Only records assigned to this account login.
    pub assignee: Option<String>,
    /// Only records in one of these states (empty: any state).
    pub states: Vec<String>,
    /// Only records with this indexed key `(field, value)`.
    pub key: Option<(String, String)>,
    /// Only children of this record.
    pub parent_id: Option<RecordId>,
    /// Keyset pagination for [`RecordOrder::IdAsc`]: only ids greater than this.
    pub after: Option<RecordId>,
    /// The order (default: by id, ascending).
    pub order: RecordOrder,
    /// Keyset pagination for any order: only records after this position in `order`
    /// (takes precedence over `after`).
    pub after_position: Option<RecordPosition>,
    /// At most this many; 0 or more than [`MAX_PAGE`] means [`MAX_PAGE`].
    pub limit: u32,
}

/// One entry of a record's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Position in the global event sequence (increasing in commit order of each writer).
    pub seq: i64,
    /// The record.
    pub record_id: RecordId,
    /// When it was recorded (the host's clock).
    pub at: Timestamp,
    /// When it happened, as declared (may be before `at`).
    pub occurred_at: Timestamp,
    /// Why it is back-dated beyond the kind's bound, if it is.
    pub backdated_reason: Option<String>,
    /// The record's place after the event (`None` only if a stored row has none).
    pub place: Option<Place>,
    /// Who did it (user id, or `system:…`).
    pub actor: String,
    /// `create`, or the transition id.
    pub action: String,
    /// State before (`None` for a create).
    pub from_state: Option<String>,
    /// State after.
    pub to_state: String,
    /// The record data after the change, as JSON text.
    pub data_json: String,
}

/// A stored alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAlert {
    /// Id.
    pub id: AlertId,
    /// Plugin that raised it.
    pub plugin: String,
    /// The record it concerns, if any.
    pub record_id: Option<RecordId>,
    /// The estate it concerns, if any.
    pub estate_id: Option<EstateId>,
    /// The grid cell it concerns, if any.
    pub grid_cell: Option<String>,
    /// The rule that raised it (e.g. a deadline rule id).
    pub rule: String,
    /// Severity, as the plugin names it.
    pub severity: String,
    /// Message, Chinese.
    pub message_zh: String,
    /// Message, English.
    pub message_en: String,
    /// When the underlying deadline falls due, if any.
    pub due_at: Option<Timestamp>,
    /// When it was raised.
    pub raised_at: Timestamp,
}

/// Which alerts to read, ordered by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertFilter {
    /// Only this plugin's.
    pub plugin: Option<String>,
    /// Only these plugins' (a caller's assigned items); `Some(vec![])` matches nothing.
    pub plugins: Option<Vec<String>>,
    /// Only alerts at these places (estate in `estates` OR grid cell in `grid_cells`); `None`
    /// means any (including alerts without a place), a set with both lists empty matches nothing.
    pub places: Option<PlaceSet>,
    /// Only alerts about this record.
    pub record_id: Option<RecordId>,
    /// Keyset pagination: only ids greater than this.
    pub after: Option<AlertId>,
    /// At most this many; 0 or more than [`MAX_PAGE`] means [`MAX_PAGE`].
    pub limit: u32,
}

/// Everything one engine operation writes; [`Store::write`] applies it in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    /// Records to create, in order (later ones may name earlier ones as parent).
    pub creates: Vec<NewRecord>,
    /// Records to update.
    pub updates: Vec<RecordUpdate>,
    /// Alerts to raise (deduplicated by `dedupe_key`).
    pub alerts: Vec<NewAlert>,
    /// Audit events to append to the hash chain, after everything else (see `crate::audit`).
    pub audit: Vec<NewAudit>,
}

/// A record to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord {
    /// Owning plugin.
    pub plugin: String,
    /// Record kind.
    pub kind: String,
    /// Where it lives (the estate or grid cell must exist).
    pub place: Place,
    /// Parent record, for child kinds.
    pub parent: Option<ParentRef>,
    /// Initial state.
    pub state: String,
    /// The data object, as JSON text.
    pub data_json: String,
    /// Indexed keys.
    pub keys: Vec<IndexKey>,
    /// What the record refers to (written to the reference index at version 1).
    pub refs: Vec<RecordRef>,
    /// Creation instant (the host's clock).
    pub at: Timestamp,
    /// When what it records happened, as declared.
    pub occurred_at: Timestamp,
    /// Why it is back-dated beyond the kind's bound, if it is.
    pub backdated_reason: Option<String>,
    /// Who creates it (stored as the record's `created_by`).
    pub actor: String,
}

/// The parent of a created record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParentRef {
    /// A stored record of the same plugin.
    Existing(RecordId),
    /// An earlier create of the same batch (index into [`WriteBatch::creates`]).
    InBatch(usize),
}

/// An indexed key of a record: lets the engine find records by `field = value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexKey {
    /// The key's field name.
    pub field: String,
    /// The value, as text.
    pub value: String,
    /// Whether no two records of the same plugin and kind may share this field's value.
    pub unique: bool,
}

/// A change of a stored record (a transition, or an edit that keeps the state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordUpdate {
    /// Owning plugin (a record of another plugin is [`StoreError::NotFound`]).
    pub plugin: String,
    /// The record.
    pub id: RecordId,
    /// The version the caller read; anything else is [`StoreError::VersionConflict`].
    pub expected_version: i64,
    /// The transition id (recorded as the event's action).
    pub action: String,
    /// State after the change (may equal the current one).
    pub new_state: String,
    /// The data after the change, as JSON text.
    pub data_json: String,
    /// The record's keys after the change (replace all of its keys).
    pub keys: Vec<IndexKey>,
    /// What the new version refers to (written to the reference index at
    /// `expected_version + 1`).
    pub refs: Vec<RecordRef>,
    /// The record moves to this place (the event keeps the new place); `None`: it stays.
    pub move_to: Option<Place>,
    /// A new assignee (`Some(None)` clears it); `None`: unchanged.
    pub assignee: Option<Option<String>>,
    /// When (the host's clock).
    pub at: Timestamp,
    /// When it happened, as declared.
    pub occurred_at: Timestamp,
    /// Why it is back-dated beyond the kind's bound, if it is.
    pub backdated_reason: Option<String>,
    /// Who.
    pub actor: String,
}

/// An alert to raise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlert {
    /// The plugin raising it.
    pub plugin: String,
    /// The record it concerns, if any (a record of the same plugin).
    pub record: Option<AlertTarget>,
    /// The estate it concerns, if any (stored as given).
    pub estate_id: Option<EstateId>,
    /// The grid cell it concerns, if any (stored as given; must exist).
    pub grid_cell: Option<String>,
    /// The rule that raised it.
    pub rule: String,
    /// Globally unique: raising an alert whose key is already stored does nothing.
    pub dedupe_key: String,
    /// Severity, as the plugin names it.
    pub severity: String,
    /// Message, Chinese.
    pub message_zh: String,
    /// Message, English.
    pub message_en: String,
    /// When the underlying deadline falls due, if any.
    pub due_at: Option<Timestamp>,
    /// When it is raised.
    pub at: Timestamp,
}

/// The record an alert concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertTarget {
    /// A stored record.
    Existing(RecordId),
    /// A create of the same batch (index into [`WriteBatch::creates`]).
    InBatch(usize),
}

/// What [`Store::write`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteResult {
    /// Ids of the created records, in the order of [`WriteBatch::creates`].
    pub created: Vec<RecordId>,
    /// Alerts newly stored (duplicates of stored dedupe keys not counted).
    pub alerts_raised: usize,
}

impl Store {
    /// Applies a batch atomically: either everything is written or nothing.
    ///
    /// On PostgreSQL the batch is one transaction. On SQLite it is queued to the store's
    /// group-commit writer, which commits every batch waiting at that moment in one transaction,
    /// each batch in a savepoint of its own, so the outcome (ids, errors) is the one the batch
    /// would have had alone; a lone batch is not delayed. A batch whose caller stops waiting
    /// before the writer takes it up is not written.
    ///
    /// Each create inserts the record (version 1, `created_by` = its actor, no assignee), its
    /// keys, its references (at version 1) and a `create` event; each update checks the version,
    /// bumps it, sets state, data and `updated_at` (and `state_entered_at` when the state
    /// changes; the place for a move, the assignee when given), replaces the keys, writes its
    /// references at the new version and appends an event (with the place after it); alerts are inserted
    /// unless their dedupe key is already stored; audit events are appended to the hash chain in
    /// the same transaction (a refused batch appends none, and leaves no gap). Errors: [`StoreError::VersionConflict`],
    /// [`StoreError::UniqueKey`], [`StoreError::NotFound`] (update target, or an existing
    /// parent/alert record of another plugin), [`StoreError::MissingReference`] (unknown estate or
    /// grid cell, at a create, a move or an alert),
    /// [`StoreError::InvalidBatch`], [`StoreError::Busy`].
    pub async fn write(&self, mut batch: WriteBatch) -> Result<WriteResult, StoreError> {
        const OP: &str = "write batch";
        validate(&batch)?;
        self.seal_batch(&mut batch)?;
        if batch.creates.is_empty() && batch.updates.is_empty() && batch.alerts.is_empty() && batch.audit.is_empty() {
            return Ok(WriteResult::default());
        }
        if let Some(group) = &self.group {
            return group.write(batch).await;
        }
        let txn = self.begin_write(OP).await?;
        let result = write_in(&txn, &batch).await;
        finish(txn, result, OP).await
    }

    /// What the group-commit writer has done so far (SQLite; `None` on PostgreSQL).
    #[cfg(test)]
    pub(crate) fn group_counts(&self) -> Option<crate::group::GroupCounts> {
        self.group.as_ref().map(|g| g.counts())
    }

    /// One record of `plugin` (`None` if it does not exist or belongs to another plugin).
    pub async fn record(&self, plugin: &str, id: RecordId) -> Result<Option<StoredRecord>, StoreError> {
        let row = record::Entity::find_by_id(id.0)
            .filter(record::Column::Plugin.eq(plugin))
            .one(&self.reader)
            .await
            .map_err(db("read record"))?;
        row.map(|r| self.unseal_record(StoredRecord::try_from(r)?)).transpose()
    }

    /// Records matching the filter, ordered by id; page with `after` = the last id returned.
    pub async fn records(&self, filter: &RecordFilter) -> Result<Vec<StoredRecord>, StoreError> {
        let Some(mut query) = record_query(filter, self) else {
            return Ok(Vec::new());
        };
        use record::Column as C;
        match (filter.after_position, filter.order) {
            (Some(p), RecordOrder::IdAsc) => query = query.filter(C::Id.gt(p.id.0)),
            (Some(p), RecordOrder::IdDesc) => query = query.filter(C::Id.lt(p.id.0)),
            (Some(p), RecordOrder::UpdatedAsc) => {
                query = query.filter(
                    Condition::any()
                        .add(C::UpdatedAt.gt(p.updated_at.0))
                        .add(Condition::all().add(C::UpdatedAt.eq(p.updated_at.0)).add(C::Id.gt(p.id.0))),
                );
            }
            (Some(p), RecordOrder::UpdatedDesc) => {
                query = query.filter(
                    Condition::any()
                        .add(C::UpdatedAt.lt(p.updated_at.0))
                        .add(Condition::all().add(C::UpdatedAt.eq(p.updated_at.0)).add(C::Id.lt(p.id.0))),
                );
            }
            (None, _) => {
                if let Some(after) = filter.after {
                    query = query.filter(C::Id.gt(after.0));
                }
            }
        }
        query = match filter.order {
            RecordOrder::IdAsc => query.order_by_asc(C::Id),
            RecordOrder::IdDesc => query.order_by_desc(C::Id),
            RecordOrder::UpdatedAsc => query.order_by_asc(C::UpdatedAt).order_by_asc(C::Id),
            RecordOrder::UpdatedDesc => query.order_by_desc(C::UpdatedAt).order_by_desc(C::Id),
        };
        let query = query.limit(u64::from(page_size(filter.limit)));
        let rows = if self.backend() == crate::Backend::Sqlite {
            self.records_in_one_row(query, filter.order).await?
        } else {
            query.all(&self.reader).await.map_err(db("list records"))?
        };
        rows.into_iter().map(|r| self.unseal_record(StoredRecord::try_from(r)?)).collect()
    }

    /// Runs a record query on SQLite as ONE result row: the page as a JSON array.
    ///
    /// sqlx hands every SQLite row from the connection's worker thread to the async caller one
    /// message at a time; for a page of 50 that costs more than the query. Aggregated, the page
    /// crosses once. The rows are put back into `order` here (the aggregate's order is SQLite's
    /// to choose).
    async fn records_in_one_row(
        &self,
        query: Select<record::Entity>,
        order: RecordOrder,
    ) -> Result<Vec<record::Model>, StoreError> {
        const OP: &str = "list records";
        let inner = query.build(DbBackend::Sqlite);
        // The columns in the order of `record::Model`'s fields, which it deserialises from.
        let sql = format!(
            "SELECT json_group_array(json_array(id, plugin, kind, estate_id, grid_cell, parent_id, state, prev_state, \
             data_json, created_at, updated_at, state_entered_at, version, created_by, assignee, occurred_at)) \
             AS page FROM ({})",
            inner.sql
        );
        let stmt = match inner.values {
            Some(values) => Statement::from_sql_and_values(DbBackend::Sqlite, sql, values),
            None => Statement::from_string(DbBackend::Sqlite, sql),
        };
        let row = self.reader.query_one_raw(stmt).await.map_err(db(OP))?;
        let text: String = match row {
            Some(row) => row.try_get("", "page").map_err(db(OP))?,
            None => return Ok(Vec::new()),
        };
        let mut models: Vec<record::Model> = serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
            what: "records page",
            detail: format!("not the JSON asked for: {e}"),
        })?;
        match order {
            RecordOrder::IdAsc => models.sort_by_key(|m| m.id),
            RecordOrder::IdDesc => models.sort_by_key(|m| std::cmp::Reverse(m.id)),
            RecordOrder::UpdatedAsc => models.sort_by_key(|m| (m.updated_at, m.id)),
            RecordOrder::UpdatedDesc => models.sort_by_key(|m| std::cmp::Reverse((m.updated_at, m.id))),
        }
        Ok(models)
    }

    /// How many records match the filter (ignores `after` and `limit`).
    pub async fn count_records(&self, filter: &RecordFilter) -> Result<u64, StoreError> {
        let Some(query) = record_query(filter, self) else {
            return Ok(0);
        };
        query.count(&self.reader).await.map_err(db("count records"))
    }

    /// An inbox: records assigned to `filter.assignee` OR in one of the `(plugin, kind, state)`s
    /// of `filter.waiting`, within `filter.plugins` and `filter.places`; least recently changed
    /// first (then by id), at most `filter.limit` (capped at [`MAX_PAGE`]).
    pub async fn inbox(&self, filter: &InboxFilter) -> Result<Vec<StoredRecord>, StoreError> {
        use record::Column as C;
        let mut cond = Condition::all();
        if let Some(plugins) = &filter.plugins {
            if plugins.is_empty() {
                return Ok(Vec::new());
            }
            cond = cond.add(C::Plugin.is_in(plugins.iter().map(String::as_str)));
        }
        if let Some(places) = &filter.places {
            let Some(at) = places_condition(C::EstateId, C::GridCell, places) else {
                return Ok(Vec::new());
            };
            cond = cond.add(at);
        }
        let mut mine = Condition::any().add(C::Assignee.eq(filter.assignee.as_str()));
        for (plugin, kind, state) in &filter.waiting {
            mine = mine.add(
                Condition::all()
                    .add(C::Plugin.eq(plugin.as_str()))
                    .add(C::Kind.eq(kind.as_str()))
                    .add(C::State.eq(state.as_str())),
            );
        }
        let query = record::Entity::find()
            .filter(cond.add(mine))
            .order_by_asc(C::UpdatedAt)
            .order_by_asc(C::Id)
            .limit(u64::from(page_size(filter.limit)));
        let rows = if self.backend() == crate::Backend::Sqlite {
            self.records_in_one_row(query, RecordOrder::UpdatedAsc).await?
        } else {
            query.all(&self.reader).await.map_err(db("list inbox"))?
        };
        rows.into_iter().map(|r| self.unseal_record(StoredRecord::try_from(r)?)).collect()
    }

    /// The history of a record of `plugin`, oldest first (empty if there is no such record).
    pub async fn events(&self, plugin: &str, record: RecordId) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = record_event::Entity::find()
            .filter(record_event::Column::RecordId.eq(record.0))
            .filter(record_event::Column::Plugin.eq(plugin))
            .order_by_asc(record_event::Column::Seq)
            .all(&self.reader)
            .await
            .map_err(db("list record events"))?;
        rows.into_iter().map(|e| self.unseal_event(plugin, StoredEvent::try_from(e)?)).collect()
    }

    /// Alerts matching the filter, ordered by id.
    pub async fn alerts(&self, filter: &AlertFilter) -> Result<Vec<StoredAlert>, StoreError> {
        let mut query = alert::Entity::find();
        if let Some(plugin) = &filter.plugin {
            query = query.filter(alert::Column::Plugin.eq(plugin.as_str()));
        }
        if let Some(plugins) = &filter.plugins {
            if plugins.is_empty() {
                return Ok(Vec::new());
            }
            query = query.filter(alert::Column::Plugin.is_in(plugins.iter().map(String::as_str)));
        }
        if let Some(places) = &filter.places {
            let Some(at) = places_condition(alert::Column::EstateId, alert::Column::GridCell, places) else {
                return Ok(Vec::new());
            };
            query = query.filter(at);
        }
        if let Some(record) = filter.record_id {
            query = query.filter(alert::Column::RecordId.eq(record.0));
        }
        if let Some(after) = filter.after {
            query = query.filter(alert::Column::Id.gt(after.0));
        }
        let rows = query
            .order_by_asc(alert::Column::Id)
            .limit(u64::from(page_size(filter.limit)))
            .all(&self.reader)
            .await
            .map_err(db("list alerts"))?;
        Ok(rows.into_iter().map(StoredAlert::from).collect())
    }
}

pub(crate) fn page_size(limit: u32) -> u32 {
    if limit == 0 || limit > MAX_PAGE { MAX_PAGE } else { limit }
}

/// `estate IN estates OR grid_cell IN grid_cells`; `None` when the set is empty (nothing matches).
fn places_condition<C: ColumnTrait>(estate: C, grid_cell: C, places: &PlaceSet) -> Option<Condition> {
    if places.is_empty() {
        return None;
    }
    let mut any = Condition::any();
    if !places.estates.is_empty() {
        any = any.add(estate.is_in(places.estates.iter().map(|e| e.0)));
    }
    if !places.grid_cells.is_empty() {
        any = any.add(grid_cell.is_in(places.grid_cells.iter().map(String::as_str)));
    }
    Some(any)
}

/// The `(estate_id, grid_cell)` columns of a place.
pub(crate) fn place_columns(place: &Place) -> (Option<i64>, Option<String>) {
    match place {
        Place::Estate(id) => (Some(id.0), None),
        Place::GridCell(code) => (None, Some(code.clone())),
    }
}

/// The serde JSON of a place (`{"estate":3}`, `{"grid_cell":"440303001001001"}`), as stored in
/// `record_events.place_json`.
pub(crate) fn place_json(place: &Place) -> String {
    match place {
        Place::Estate(id) => serde_json::json!({ "estate": id.0 }).to_string(),
        Place::GridCell(code) => serde_json::json!({ "grid_cell": code }).to_string(),
    }
}

/// The place of a stored row: exactly one of the two columns is set.
fn place_of(estate_id: Option<i64>, grid_cell: Option<String>) -> Result<Place, StoreError> {
    match (estate_id, grid_cell) {
        (Some(id), None) => Ok(Place::Estate(EstateId(id))),
        (None, Some(code)) => Ok(Place::GridCell(code)),
        _ => Err(StoreError::Corrupt {
            what: "records.place",
            detail: "exactly one of estate_id and grid_cell must be set".into(),
        }),
    }
}

/// The query for a filter without paging, or `None` when it matches nothing.
/// `store` translates a key lookup on a sealed field into its blind index.
fn record_query(f: &RecordFilter, store: &Store) -> Option<Select<record::Entity>> {
    let mut cond = Condition::all().add(record::Column::Plugin.eq(f.plugin.as_str()));
    if let Some(kind) = &f.kind {
        cond = cond.add(record::Column::Kind.eq(kind.as_str()));
    }
    if let Some(places) = &f.places {
        cond = cond.add(places_condition(record::Column::EstateId, record::Column::GridCell, places)?);
    }
    if let Some(assignee) = &f.assignee {
        cond = cond.add(record::Column::Assignee.eq(assignee.as_str()));
    }
    if !f.states.is_empty() {
        cond = cond.add(record::Column::State.is_in(f.states.iter().map(String::as_str)));
    }
    if let Some(parent) = f.parent_id {
        cond = cond.add(record::Column::ParentId.eq(parent.0));
    }
    if let Some((field, value)) = &f.key {
        let value =
            if store.is_sealed(&f.plugin, field) { store.sealed_key(&f.plugin, field, value) } else { value.clone() };
        let mut keys = Query::select();
        keys.column(record_key::Column::RecordId)
            .from(record_key::Entity)
            .and_where(record_key::Column::Plugin.eq(f.plugin.as_str()))
            .and_where(record_key::Column::Field.eq(field.as_str()))
            .and_where(record_key::Column::Value.eq(value.as_str()));
        if let Some(kind) = &f.kind {
            keys.and_where(record_key::Column::Kind.eq(kind.as_str()));
        }
        cond = cond.add(record::Column::Id.in_subquery(keys));
    }
    Some(record::Entity::find().filter(cond))
}

/// Checks the in-batch references before any round trip.
fn validate(batch: &WriteBatch) -> Result<(), StoreError> {
    for (i, c) in batch.creates.iter().enumerate() {
        if let Some(ParentRef::InBatch(p)) = c.parent {
            if p >= i {
                return Err(StoreError::InvalidBatch(format!(
                    "create {i} names create {p} as parent, but a parent must come earlier in the batch"
                )));
            }
            if batch.creates[p].plugin != c.plugin {
                return Err(StoreError::InvalidBatch(format!(
                    "create {i} (plugin `{}`) names create {p} of plugin `{}` as parent",
                    c.plugin, batch.creates[p].plugin
                )));
            }
        }
    }
    for (i, a) in batch.alerts.iter().enumerate() {
        if let Some(AlertTarget::InBatch(r)) = a.record
            && r >= batch.creates.len()
        {
            return Err(StoreError::InvalidBatch(format!(
                "alert {i} targets create {r}, but the batch has {} creates",
                batch.creates.len()
            )));
        }
    }
    for (i, a) in batch.audit.iter().enumerate() {
        if let AuditTarget::InBatch(r) = a.target
            && r >= batch.creates.len()
        {
            return Err(StoreError::InvalidBatch(format!(
                "audit event {i} targets create {r}, but the batch has {} creates",
                batch.creates.len()
            )));
        }
    }
    Ok(())
}

/// One key row to insert, before it becomes an active model.
pub(crate) struct KeyRow<'a> {
    pub(crate) record_id: i64,
    pub(crate) plugin: &'a str,
    pub(crate) kind: &'a str,
    pub(crate) key: &'a IndexKey,
}

/// Writes a validated batch in `txn`, statement by statement (see the module comment).
pub(crate) async fn write_in(txn: &DatabaseTransaction, batch: &WriteBatch) -> Result<WriteResult, StoreError> {
    const OP: &str = "write batch";
    check_existing_refs(txn, batch).await?;

    // Creates: one INSERT each, in order, so in-batch parents have ids.
    let mut created: Vec<i64> = Vec::with_capacity(batch.creates.len());
    for c in &batch.creates {
        let parent_id = match c.parent {
            None => None,
            Some(ParentRef::Existing(id)) => Some(id.0),
            Some(ParentRef::InBatch(i)) => Some(created[i]),
        };
        let (estate_id, grid_cell) = place_columns(&c.place);
        let model = record::ActiveModel {
            id: NotSet,
            plugin: Set(c.plugin.clone()),
            kind: Set(c.kind.clone()),
            estate_id: Set(estate_id),
            grid_cell: Set(grid_cell),
            created_by: Set(c.actor.clone()),
            assignee: Set(None),
            occurred_at: Set(c.occurred_at.0),
            parent_id: Set(parent_id),
            state: Set(c.state.clone()),
            prev_state: Set(None),
            data_json: Set(c.data_json.clone()),
            created_at: Set(c.at.0),
            updated_at: Set(c.at.0),
            state_entered_at: Set(c.at.0),
            version: Set(1),
        };
        let id = record::Entity::insert(model).exec(txn).await.map_err(db(OP))?.last_insert_id;
        created.push(id);
    }

    // Updates: one UPDATE … RETURNING each: version check, bump and from-state together.
    let mut from_states: Vec<(String, Place)> = Vec::with_capacity(batch.updates.len());
    let mut kinds: Vec<String> = Vec::with_capacity(batch.updates.len());
    for u in &batch.updates {
        let (from, kind, place) = update_one(txn, u).await?;
        from_states.push((from, place));
        kinds.push(kind);
    }

    // Keys: drop the updated records' keys, then insert every key of the batch.
    if !batch.updates.is_empty() {
        record_key::Entity::delete_many()
            .filter(record_key::Column::RecordId.is_in(batch.updates.iter().map(|u| u.id.0)))
            .exec(txn)
            .await
            .map_err(db(OP))?;
    }
    let mut key_rows: Vec<KeyRow<'_>> = Vec::new();
    for (c, &id) in batch.creates.iter().zip(&created) {
        push_keys(&mut key_rows, id, &c.plugin, &c.kind, &c.keys);
    }
    for (u, kind) in batch.updates.iter().zip(&kinds) {
        push_keys(&mut key_rows, u.id.0, &u.plugin, kind, &u.keys);
    }
    insert_keys(txn, &key_rows).await?;

    // Events: one multi-row INSERT for the whole batch.
    let mut events: Vec<record_event::ActiveModel> = Vec::with_capacity(batch.creates.len() + batch.updates.len());
    for (c, &id) in batch.creates.iter().zip(&created) {
        events.push(event_model(
            id,
            &c.plugin,
            EventTimes { at: c.at, occurred_at: c.occurred_at, backdated_reason: c.backdated_reason.as_deref() },
            &c.actor,
            "create",
            None,
            &c.state,
            &c.data_json,
            &c.place,
        ));
    }
    for (u, (from, place)) in batch.updates.iter().zip(from_states) {
        events.push(event_model(
            u.id.0,
            &u.plugin,
            EventTimes { at: u.at, occurred_at: u.occurred_at, backdated_reason: u.backdated_reason.as_deref() },
            &u.actor,
            &u.action,
            Some(from),
            &u.new_state,
            &u.data_json,
            &place,
        ));
    }
    for chunk in chunks(events) {
        record_event::Entity::insert_many(chunk).exec_without_returning(txn).await.map_err(db(OP))?;
    }

    // References: every create's at version 1, every update's at its new version.
    insert_refs(txn, &ref_rows(batch, &created)).await?;

    // Alerts: ON CONFLICT (dedupe_key) DO NOTHING; the row count is what was newly raised.
    let alerts: Vec<alert::ActiveModel> = batch
        .alerts
        .iter()
        .map(|a| alert::ActiveModel {
            id: NotSet,
            plugin: Set(a.plugin.clone()),
            record_id: Set(a.record.map(|t| match t {
                AlertTarget::Existing(id) => id.0,
                AlertTarget::InBatch(i) => created[i],
            })),
            estate_id: Set(a.estate_id.map(|e| e.0)),
            grid_cell: Set(a.grid_cell.clone()),
            rule: Set(a.rule.clone()),
            dedupe_key: Set(a.dedupe_key.clone()),
            severity: Set(a.severity.clone()),
            message_zh: Set(a.message_zh.clone()),
            message_en: Set(a.message_en.clone()),
            due_at: Set(a.due_at.map(|t| t.0)),
            raised_at: Set(a.at.0),
        })
        .collect();
    let mut alerts_raised = 0u64;
    for chunk in chunks(alerts) {
        alerts_raised += alert::Entity::insert_many(chunk)
            .on_conflict(OnConflict::column(alert::Column::DedupeKey).do_nothing().to_owned())
            .exec_without_returning(txn)
            .await
            .map_err(db(OP))?;
    }

    // Audit: last, so that on PostgreSQL the chain head is locked for as short a time as possible.
    audit::append(txn, batch, &created).await?;

    Ok(WriteResult {
        created: created.into_iter().map(RecordId).collect(),
        alerts_raised: usize::try_from(alerts_raised).unwrap_or(usize::MAX),
    })
}

/// Existing parents and alert targets must be records of the same plugin: one query for all.
pub(crate) async fn check_existing_refs(txn: &DatabaseTransaction, batch: &WriteBatch) -> Result<(), StoreError> {
    let mut refs: Vec<(&'static str, &str, i64)> = Vec::new();
    for c in &batch.creates {
        if let Some(ParentRef::Existing(id)) = c.parent {
            refs.push(("parent record", &c.plugin, id.0));
        }
    }
    for a in &batch.alerts {
        if let Some(AlertTarget::Existing(id)) = a.record {
            refs.push(("alert record", &a.plugin, id.0));
        }
    }
    if refs.is_empty() {
        return Ok(());
    }
    let ids: HashSet<i64> = refs.iter().map(|r| r.2).collect();
    let owners: HashMap<i64, String> = record::Entity::find()
        .select_only()
        .column(record::Column::Id)
        .column(record::Column::Plugin)
        .filter(record::Column::Id.is_in(ids))
        .into_tuple::<(i64, String)>()
        .all(txn)
        .await
        .map_err(db("write batch"))?
        .into_iter()
        .collect();
    for (what, plugin, id) in refs {
        if owners.get(&id).map(String::as_str) != Some(plugin) {
            return Err(StoreError::NotFound { what, id: id.to_string() });
        }
    }
    Ok(())
}

/// Applies one update and returns the state it left, the record's kind and its place after it.
async fn update_one(txn: &DatabaseTransaction, u: &RecordUpdate) -> Result<(String, String, Place), StoreError> {
    const OP: &str = "update record";
    use record::Column as C;
    // In SQL every right-hand side sees the row as it was, so `prev_state = state` captures the
    // from-state and the CASE compares against the old state.
    let mut stmt = Query::update();
    stmt.table(record::Entity)
        .value(C::PrevState, Expr::col(C::State))
        .value(C::State, u.new_state.as_str())
        .value(C::DataJson, u.data_json.as_str())
        .value(C::UpdatedAt, u.at.0)
        .value(
            C::StateEnteredAt,
            Expr::case(Expr::col(C::State).eq(u.new_state.as_str()), Expr::col(C::StateEnteredAt)).finally(u.at.0),
        )
        .value(C::Version, Expr::col(C::Version).add(1))
        .and_where(C::Id.eq(u.id.0))
        .and_where(C::Plugin.eq(u.plugin.as_str()))
        .and_where(C::Version.eq(u.expected_version))
        .returning(Query::returning().columns([C::PrevState, C::Kind, C::EstateId, C::GridCell]));
    if let Some(place) = &u.move_to {
        let (estate_id, grid_cell) = place_columns(place);
        stmt.value(C::EstateId, estate_id).value(C::GridCell, grid_cell);
    }
    if let Some(assignee) = &u.assignee {
        stmt.value(C::Assignee, assignee.clone());
    }
    match txn.query_one(&stmt).await.map_err(db(OP))? {
        Some(row) => {
            let from: Option<String> = row.try_get("", "prev_state").map_err(db(OP))?;
            let kind: String = row.try_get("", "kind").map_err(db(OP))?;
            let estate_id: Option<i64> = row.try_get("", "estate_id").map_err(db(OP))?;
            let grid_cell: Option<String> = row.try_get("", "grid_cell").map_err(db(OP))?;
            let from = from
                .ok_or_else(|| StoreError::Corrupt { what: "record.prev_state", detail: "null after update".into() })?;
            Ok((from, kind, place_of(estate_id, grid_cell)?))
        }
        None => {
            let found: Option<i64> = record::Entity::find_by_id(u.id.0)
                .filter(C::Plugin.eq(u.plugin.as_str()))
                .select_only()
                .column(C::Version)
                .into_tuple()
                .one(txn)
                .await
                .map_err(db(OP))?;
            Err(match found {
                Some(found) => StoreError::VersionConflict { id: u.id, expected: u.expected_version, found },
                None => StoreError::NotFound { what: "record", id: u.id.to_string() },
            })
        }
    }
}

/// Adds a record's keys, merging repeats of the same (field, value) (unique if any says so).
pub(crate) fn push_keys<'a>(
    rows: &mut Vec<KeyRow<'a>>,
    record_id: i64,
    plugin: &'a str,
    kind: &'a str,
    keys: &'a [IndexKey],
) {
    let start = rows.len();
    for key in keys {
        match rows[start..].iter_mut().find(|r| r.key.field == key.field && r.key.value == key.value) {
            Some(existing) if key.unique && !existing.key.unique => existing.key = key,
            Some(_) => {}
            None => rows.push(KeyRow { record_id, plugin, kind, key }),
        }
    }
}

/// Inserts key rows; a unique key already taken (in the database or earlier in the batch) is
/// skipped by `ON CONFLICT DO NOTHING`, noticed by the row count, and reported.
async fn insert_keys(txn: &DatabaseTransaction, rows: &[KeyRow<'_>]) -> Result<(), StoreError> {
    const OP: &str = "write batch";
    let mut inserted = 0u64;
    for chunk in rows.chunks(CHUNK) {
        let models = chunk.iter().map(|r| record_key::ActiveModel {
            record_id: Set(r.record_id),
            field: Set(r.key.field.clone()),
            value: Set(r.key.value.clone()),
            plugin: Set(r.plugin.to_owned()),
            kind: Set(r.kind.to_owned()),
            unique_value: Set(r.key.unique.then(|| r.key.value.clone())),
        });
        inserted += record_key::Entity::insert_many(models)
            .on_conflict(
                OnConflict::columns([
                    record_key::Column::Plugin,
                    record_key::Column::Kind,
                    record_key::Column::Field,
                    record_key::Column::UniqueValue,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(txn)
            .await
            .map_err(db(OP))?;
    }
    if inserted == rows.len() as u64 {
        return Ok(());
    }
    // Some unique key was skipped: find the first one that did not land.
    let ids: HashSet<i64> = rows.iter().filter(|r| r.key.unique).map(|r| r.record_id).collect();
    let landed: HashSet<(i64, String, String)> = record_key::Entity::find()
        .select_only()
        .column(record_key::Column::RecordId)
        .column(record_key::Column::Field)
        .column(record_key::Column::Value)
        .filter(record_key::Column::RecordId.is_in(ids))
        .filter(record_key::Column::UniqueValue.is_not_null())
        .into_tuple::<(i64, String, String)>()
        .all(txn)
        .await
        .map_err(db(OP))?
        .into_iter()
        .collect();
    let lost = rows
        .iter()
        .filter(|r| r.key.unique)
        .find(|r| !landed.contains(&(r.record_id, r.key.field.clone(), r.key.value.clone())));
    Err(match lost {
        Some(r) => StoreError::UniqueKey { field: r.key.field.clone(), value: r.key.value.clone() },
        None => StoreError::Database {
            operation: OP,
            detail: format!("{} of {} key rows were written, but no unique key is missing", inserted, rows.len()),
        },
    })
}

/// The times of an event.
struct EventTimes<'a> {
    at: Timestamp,
    occurred_at: Timestamp,
    backdated_reason: Option<&'a str>,
}

#[allow(clippy::too_many_arguments)]
fn event_model(
    record_id: i64,
    plugin: &str,
    times: EventTimes<'_>,
    actor: &str,
    action: &str,
    from_state: Option<String>,
    to_state: &str,
    data_json: &str,
    place: &Place,
) -> record_event::ActiveModel {
    record_event::ActiveModel {
        seq: NotSet,
        record_id: Set(record_id),
        plugin: Set(plugin.to_owned()),
        at: Set(times.at.0),
        occurred_at: Set(times.occurred_at.0),
        backdated_reason: Set(times.backdated_reason.map(str::to_owned)),
        place_json: Set(Some(place_json(place))),
        actor: Set(actor.to_owned()),
        action: Set(action.to_owned()),
        from_state: Set(from_state),
        to_state: Set(to_state.to_owned()),
        data_json: Set(data_json.to_owned()),
    }
}

/// Splits `items` into vectors of at most [`CHUNK`] elements.
fn chunks<T>(items: Vec<T>) -> Vec<Vec<T>> {
    let mut out = Vec::with_capacity(items.len().div_ceil(CHUNK));
    let mut iter = items.into_iter().peekable();
    while iter.peek().is_some() {
        out.push(iter.by_ref().take(CHUNK).collect());
    }
    out
}

impl TryFrom<record::Model> for StoredRecord {
    type Error = StoreError;

    fn try_from(r: record::Model) -> Result<StoredRecord, StoreError> {
        Ok(StoredRecord {
            id: RecordId(r.id),
            plugin: r.plugin,
            kind: r.kind,
            place: place_of(r.estate_id, r.grid_cell)?,
            parent_id: r.parent_id.map(RecordId),
            state: r.state,
            data_json: r.data_json,
            created_at: Timestamp(r.created_at),
            updated_at: Timestamp(r.updated_at),
            state_entered_at: Timestamp(r.state_entered_at),
            version: r.version,
            created_by: r.created_by,
            assignee: r.assignee,
            occurred_at: Timestamp(r.occurred_at),
        })
    }
}

impl TryFrom<record_event::Model> for StoredEvent {
    type Error = StoreError;

    fn try_from(e: record_event::Model) -> Result<StoredEvent, StoreError> {
        let place = match &e.place_json {
            None => None,
            Some(json) => Some(serde_json::from_str::<Place>(json).map_err(|_| StoreError::Corrupt {
                what: "record_events.place_json",
                detail: "not the JSON of a place".into(),
            })?),
        };
        Ok(StoredEvent {
            seq: e.seq,
            record_id: RecordId(e.record_id),
            at: Timestamp(e.at),
            occurred_at: Timestamp(e.occurred_at),
            backdated_reason: e.backdated_reason,
            place,
            actor: e.actor,
            action: e.action,
            from_state: e.from_state,
            to_state: e.to_state,
            data_json: e.data_json,
        })
    }
}

impl From<alert::Model> for StoredAlert {
    fn from(a: alert::Model) -> StoredAlert {
        StoredAlert {
            id: AlertId(a.id),
            plugin: a.plugin,
            record_id: a.record_id.map(RecordId),
            estate_id: a.estate_id.map(EstateId),
            grid_cell: a.grid_cell,
            rule: a.rule,
            severity: a.severity,
            message_zh: a.message_zh,
            message_en: a.message_en,
            due_at: a.due_at.map(Timestamp),
            raised_at: Timestamp(a.raised_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(plugin: &str, parent: Option<ParentRef>) -> NewRecord {
        NewRecord {
            plugin: plugin.into(),
            kind: "k".into(),
            place: Place::Estate(EstateId(1)),
            parent,
            state: "s".into(),
            data_json: "{}".into(),
            keys: vec![],
            refs: vec![],
            at: Timestamp(0),
            occurred_at: Timestamp(0),
            backdated_reason: None,
            actor: "a".into(),
        }
    }

    #[test]
    fn in_batch_references_must_point_backwards_and_stay_in_the_plugin() {
        let forward = WriteBatch { creates: vec![create("p", Some(ParentRef::InBatch(0)))], ..Default::default() };
        assert!(matches!(validate(&forward), Err(StoreError::InvalidBatch(_))));
        let foreign = WriteBatch {
            creates: vec![create("p", None), create("q", Some(ParentRef::InBatch(0)))],
            ..Default::default()
        };
        assert!(matches!(validate(&foreign), Err(StoreError::InvalidBatch(_))));
        let fine = WriteBatch {
            creates: vec![create("p", None), create("p", Some(ParentRef::InBatch(0)))],
            ..Default::default()
        };
        assert!(validate(&fine).is_ok());
    }

    #[test]
    fn repeated_keys_are_merged_and_unique_wins() {
        let keys = vec![
            IndexKey { field: "f".into(), value: "1".into(), unique: false },
            IndexKey { field: "f".into(), value: "1".into(), unique: true },
            IndexKey { field: "f".into(), value: "2".into(), unique: false },
        ];
        let mut rows = Vec::new();
        push_keys(&mut rows, 7, "p", "k", &keys);
        push_keys(&mut rows, 8, "p", "k", &keys[..1]);
        let summary: Vec<(i64, &str, bool)> =
            rows.iter().map(|r| (r.record_id, r.key.value.as_str(), r.key.unique)).collect();
        assert_eq!(summary, vec![(7, "1", true), (7, "2", false), (8, "1", false)]);
    }

    #[test]
    fn ref_kinds_round_trip_their_snake_case_text() {
        for kind in RefKind::ALL {
            assert_eq!(RefKind::parse(kind.as_str()), Some(kind));
            assert_eq!(serde_json::to_string(&kind).expect("json"), format!("\"{kind}\""));
        }
        assert_eq!(RefKind::AgencyUnit.as_str(), "agency_unit");
        assert_eq!(RefKind::parse("Person"), None);
    }

    #[test]
    fn places_are_stored_as_the_serde_json_of_place() {
        for place in [Place::Estate(EstateId(3)), Place::GridCell("440303001001001".into())] {
            assert_eq!(place_json(&place), serde_json::to_string(&place).expect("json"));
            let (estate, cell) = place_columns(&place);
            assert_eq!(place_of(estate, cell).expect("one place"), place);
        }
        assert!(place_of(None, None).is_err());
        assert!(place_of(Some(1), Some("440303001001001".into())).is_err());
    }

    #[test]
    fn pages_are_capped() {
        assert_eq!(page_size(0), MAX_PAGE);
        assert_eq!(page_size(5), 5);
        assert_eq!(page_size(5000), MAX_PAGE);
        assert_eq!(chunks((0..2001).collect::<Vec<_>>()).iter().map(Vec::len).collect::<Vec<_>>(), vec![1000, 1000, 1]);
    }
}
