//! The reference index: `record_refs`, one row per (record version, what it refers to, through
//! which field).
//!
//! [`Store::write`] writes the references of every create at version 1 and of every update at
//! its new version (`expected_version + 1`), in the batch's transaction (on SQLite also in the
//! one-round-trip string, `crate::batch_sql`). A version that no longer names something simply
//! has no row for it, so [`Store::records_referring`] can tell what a record referred to once
//! from what its current version refers to. Records written before migration 8 have no rows:
//! the host backfills them once with [`Store::record_ids_without_refs`] and
//! [`Store::write_refs`] (insert-or-ignore, so running it twice changes nothing).

use std::collections::HashSet;

use sea_orm::sea_query::{OnConflict, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement,
};

use jiayuan_domain::RecordId;

use crate::entity::{record, record_ref};
use crate::error::{StoreError, db};
use crate::records::{CHUNK, RecordRef, RefKind, ReferringRecord, StoredRecord, WriteBatch, page_size};
use crate::store::{Store, finish};

/// One row of `record_refs` to insert.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct RefRow<'a> {
    pub(crate) plugin: &'a str,
    pub(crate) record_id: i64,
    pub(crate) version: i64,
    pub(crate) kind: &'static str,
    pub(crate) id: &'a str,
    pub(crate) field: &'a str,
}

/// Adds the references of one record version, without repeats.
pub(crate) fn push_refs<'a>(
    rows: &mut Vec<RefRow<'a>>,
    seen: &mut HashSet<RefRow<'a>>,
    plugin: &'a str,
    record_id: i64,
    version: i64,
    refs: &'a [RecordRef],
) {
    for r in refs {
        let row = RefRow { plugin, record_id, version, kind: r.kind.as_str(), id: &r.id, field: &r.field };
        if seen.insert(row.clone()) {
            rows.push(row);
        }
    }
}

/// Every reference row of a batch whose creates got the ids `created`.
pub(crate) fn ref_rows<'a>(batch: &'a WriteBatch, created: &[i64]) -> Vec<RefRow<'a>> {
    let mut rows = Vec::new();
    let mut seen = HashSet::new();
    for (c, &id) in batch.creates.iter().zip(created) {
        push_refs(&mut rows, &mut seen, &c.plugin, id, 1, &c.refs);
    }
    for u in &batch.updates {
        push_refs(&mut rows, &mut seen, &u.plugin, u.id.0, u.expected_version.saturating_add(1), &u.refs);
    }
    rows
}

/// Inserts reference rows; a row already stored is left as it is.
pub(crate) async fn insert_refs(txn: &DatabaseTransaction, rows: &[RefRow<'_>]) -> Result<(), StoreError> {
    const OP: &str = "write record references";
    use record_ref::Column as C;
    for chunk in rows.chunks(CHUNK) {
        let models = chunk.iter().map(|r| record_ref::ActiveModel {
            plugin: Set(r.plugin.to_owned()),
            record_id: Set(r.record_id),
            version: Set(r.version),
            ref_kind: Set(r.kind.to_owned()),
            ref_id: Set(r.id.to_owned()),
            field: Set(r.field.to_owned()),
        });
        record_ref::Entity::insert_many(models)
            .on_conflict(
                OnConflict::columns([C::Plugin, C::RecordId, C::Version, C::RefKind, C::RefId, C::Field])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await
            .map_err(db(OP))?;
    }
    Ok(())
}

impl Store {
    /// Every record that refers, or once referred, to `kind` `id`: one entry per record and
    /// referring field, with the first and last version that referred through it and whether
    /// the record's current version still does; ordered by plugin, record id and field.
    pub async fn records_referring(&self, kind: RefKind, id: &str) -> Result<Vec<ReferringRecord>, StoreError> {
        const OP: &str = "list referring records";
        let backend = self.reader.get_database_backend();
        let (p1, p2) = match backend {
            DbBackend::Postgres => ("$1", "$2"),
            _ => ("?", "?"),
        };
        let sql = format!(
            "SELECT rr.plugin AS plugin, rr.record_id AS record_id, r.kind AS kind, rr.field AS field, \
             MIN(rr.version) AS first_version, MAX(rr.version) AS last_version, \
             CAST(MAX(CASE WHEN rr.version = r.version THEN 1 ELSE 0 END) AS BIGINT) AS current \
             FROM record_refs rr JOIN records r ON r.id = rr.record_id \
             WHERE rr.ref_kind = {p1} AND rr.ref_id = {p2} \
             GROUP BY rr.plugin, rr.record_id, r.kind, rr.field \
             ORDER BY rr.plugin, rr.record_id, rr.field"
        );
        let stmt = Statement::from_sql_and_values(backend, sql, [kind.as_str().into(), id.into()]);
        let rows = self.reader.query_all_raw(stmt).await.map_err(db(OP))?;
        rows.iter()
            .map(|row| {
                Ok(ReferringRecord {
                    plugin: row.try_get("", "plugin").map_err(db(OP))?,
                    record_id: RecordId(row.try_get("", "record_id").map_err(db(OP))?),
                    kind: row.try_get("", "kind").map_err(db(OP))?,
                    field: row.try_get("", "field").map_err(db(OP))?,
                    first_version: row.try_get("", "first_version").map_err(db(OP))?,
                    last_version: row.try_get("", "last_version").map_err(db(OP))?,
                    current: row.try_get::<i64>("", "current").map_err(db(OP))? == 1,
                })
            })
            .collect()
    }

    /// Records of `plugin` with no row in the reference index (those written before migration 8,
    /// and any whose versions refer to nothing), ordered by id, after `after`, at most `limit`
    /// (0 or more than [`crate::MAX_PAGE`] means `MAX_PAGE`): the host's one-off backfill reads
    /// them page by page and calls [`Store::write_refs`].
    pub async fn record_ids_without_refs(
        &self,
        plugin: &str,
        after: Option<RecordId>,
        limit: u32,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let mut referring = Query::select();
        referring
            .column(record_ref::Column::RecordId)
            .from(record_ref::Entity)
            .and_where(record_ref::Column::Plugin.eq(plugin));
        let mut query = record::Entity::find()
            .filter(record::Column::Plugin.eq(plugin))
            .filter(record::Column::Id.not_in_subquery(referring));
        if let Some(after) = after {
            query = query.filter(record::Column::Id.gt(after.0));
        }
        let rows = query
            .order_by_asc(record::Column::Id)
            .limit(u64::from(page_size(limit)))
            .all(&self.reader)
            .await
            .map_err(db("list records without references"))?;
        rows.into_iter().map(|r| self.unseal_record(StoredRecord::try_from(r)?)).collect()
    }

    /// Writes the references of `version` of a record of `plugin` (the backfill of records
    /// written before migration 8): rows already stored are left alone, so it is idempotent.
    /// A record that does not exist or belongs to another plugin is [`StoreError::NotFound`].
    pub async fn write_refs(
        &self,
        plugin: &str,
        record_id: RecordId,
        version: i64,
        refs: &[RecordRef],
    ) -> Result<(), StoreError> {
        const OP: &str = "write record references";
        let txn = self.begin_write(OP).await?;
        let result = async {
            let found = record::Entity::find_by_id(record_id.0)
                .filter(record::Column::Plugin.eq(plugin))
                .select_only()
                .column(record::Column::Id)
                .into_tuple::<i64>()
                .one(&txn)
                .await
                .map_err(db(OP))?;
            if found.is_none() {
                return Err(StoreError::NotFound { what: "record", id: record_id.to_string() });
            }
            let mut rows = Vec::new();
            push_refs(&mut rows, &mut HashSet::new(), plugin, record_id.0, version, refs);
            insert_refs(&txn, &rows).await
        }
        .await;
        finish(txn, result, OP).await
    }
}
