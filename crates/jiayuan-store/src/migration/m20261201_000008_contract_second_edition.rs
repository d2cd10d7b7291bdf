//! Migration 8: the plugin contract's second edition.
//!
//! - `agency_kinds` (seeded with [`DEFAULT_AGENCY_KINDS`]) and `agency_units` (kind, name,
//!   jurisdiction; unique per kind and name); `accounts.agency_unit_id`, the unit an agency
//!   officer belongs to.
//! - Records live at a place: `records.estate_id` becomes nullable and `records.grid_cell` is new,
//!   exactly one of them set (CHECK `records_one_place`). Records also get `created_by` (backfilled
//!   from the actor of their first event), `assignee` (an account login) and `occurred_at`
//!   (backfilled from `created_at`). SQLite cannot drop a NOT NULL or add a CHECK in place, so its
//!   `records` table is rebuilt (copy, drop, create, refill, every index of migrations 2 and 6
//!   again); the foreign keys pointing at `records` are deferred for the rebuild, and refilling
//!   the table satisfies them again before commit. PostgreSQL alters the table in place.
//! - `record_events` get `occurred_at` (backfilled from `at`), `backdated_reason` and `place_json`
//!   (the record's place after the event, serde JSON of `Place`; backfilled from the estate).
//! - `alerts.grid_cell`.
//! - `record_refs`: what each record version refers to (persons, houses, records, …), so that
//!   "every record about X" is an index lookup.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

use jiayuan_domain::DEFAULT_AGENCY_KINDS;

use super::{bigint, bigint_null, fk, id_column, text, text_null};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum Estates {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Divisions {
    Table,
    Code,
}

#[derive(DeriveIden)]
enum GridCells {
    Table,
    Code,
}

#[derive(DeriveIden)]
enum AgencyKinds {
    Table,
    Code,
    NameZh,
    NameEn,
}

#[derive(DeriveIden)]
enum AgencyUnits {
    Table,
    Id,
    Kind,
    Name,
    Jurisdiction,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Records {
    Table,
    Id,
    Plugin,
    Kind,
    EstateId,
    GridCell,
    ParentId,
    State,
    PrevState,
    DataJson,
    CreatedAt,
    UpdatedAt,
    StateEnteredAt,
    Version,
    CreatedBy,
    Assignee,
    OccurredAt,
}

#[derive(DeriveIden)]
enum RecordRefs {
    Table,
    Plugin,
    RecordId,
    Version,
    RefKind,
    RefId,
    Field,
}

/// The copy of `records` a SQLite rebuild goes through.
const RECORDS_COPY: &str = "records_m8_copy";

/// The saved `sqlite_sequence` entry of `records` during a SQLite rebuild.
const RECORDS_SEQ: &str = "records_m8_seq";

/// The columns of `records` before this migration, in order.
const OLD_COLUMNS: &str = "id, plugin, kind, estate_id, parent_id, state, prev_state, data_json, created_at, updated_at, state_entered_at, version";

/// A record's creator: the actor of its first event.
const FIRST_ACTOR: &str =
    "COALESCE((SELECT e.actor FROM record_events e WHERE e.record_id = c.id ORDER BY e.seq LIMIT 1), '')";

/// The records table, before (`second_edition == false`) or after this migration.
fn records_table(second_edition: bool) -> TableCreateStatement {
    let mut t = Table::create();
    t.table(Records::Table)
        .col(id_column(Records::Id))
        .col(text(Records::Plugin))
        .col(text(Records::Kind))
        .col(if second_edition { bigint_null(Records::EstateId) } else { bigint(Records::EstateId) });
    if second_edition {
        t.col(text_null(Records::GridCell));
    }
    t.col(bigint_null(Records::ParentId))
        .col(text(Records::State))
        .col(text_null(Records::PrevState))
        .col(text(Records::DataJson))
        .col(bigint(Records::CreatedAt))
        .col(bigint(Records::UpdatedAt))
        .col(bigint(Records::StateEnteredAt))
        .col(bigint(Records::Version));
    if second_edition {
        t.col(text(Records::CreatedBy)).col(text_null(Records::Assignee)).col(bigint(Records::OccurredAt));
    }
    t.foreign_key(&mut fk(Records::Table, Records::EstateId, Estates::Table, Estates::Id)).foreign_key(&mut fk(
        Records::Table,
        Records::ParentId,
        Records::Table,
        Records::Id,
    ));
    if second_edition {
        t.foreign_key(&mut fk(Records::Table, Records::GridCell, GridCells::Table, GridCells::Code))
            .check(("records_one_place", Expr::cust("(estate_id IS NULL) <> (grid_cell IS NULL)")));
    }
    t.to_owned()
}

/// The indexes of `records` from migrations 2 and 6.
fn old_indexes() -> Vec<IndexCreateStatement> {
    vec![
        Index::create()
            .name("idx_records_plugin_kind_estate_state")
            .table(Records::Table)
            .col(Records::Plugin)
            .col(Records::Kind)
            .col(Records::EstateId)
            .col(Records::State)
            .to_owned(),
        Index::create()
            .name("idx_records_plugin_parent")
            .table(Records::Table)
            .col(Records::Plugin)
            .col(Records::ParentId)
            .to_owned(),
        Index::create()
            .name("idx_records_plugin_kind_estate_id")
            .table(Records::Table)
            .col(Records::Plugin)
            .col(Records::Kind)
            .col(Records::EstateId)
            .col(Records::Id)
            .to_owned(),
    ]
}

/// The indexes this migration adds to `records`.
fn new_indexes() -> Vec<IndexCreateStatement> {
    vec![
        Index::create()
            .name("idx_records_plugin_kind_grid_cell_id")
            .table(Records::Table)
            .col(Records::Plugin)
            .col(Records::Kind)
            .col(Records::GridCell)
            .col(Records::Id)
            .to_owned(),
        Index::create().name("idx_records_assignee").table(Records::Table).col(Records::Assignee).to_owned(),
    ]
}

/// Rebuilds `records` on SQLite with the given definition, refilled by `insert` (which reads the
/// old rows from [`RECORDS_COPY`] as `c`), then creates `indexes`.
async fn rebuild_sqlite_records(
    manager: &SchemaManager<'_>,
    table: TableCreateStatement,
    insert: &str,
    indexes: Vec<IndexCreateStatement>,
) -> Result<(), DbErr> {
    let db = manager.get_connection();
    // Dropping `records` orphans the rows of record_keys, record_events, alerts (and
    // record_refs) for a moment: deferred, the refill satisfies them again before commit.
    db.execute_unprepared("PRAGMA defer_foreign_keys = ON").await?;
    db.execute_unprepared(&format!("CREATE TABLE {RECORDS_COPY} AS SELECT * FROM records")).await?;
    // The AUTOINCREMENT high-water mark goes with the dropped table: kept, so no id is reused.
    db.execute_unprepared(&format!(
        "CREATE TABLE {RECORDS_SEQ} AS SELECT seq FROM sqlite_sequence WHERE name = 'records'"
    ))
    .await?;
    db.execute_unprepared("DROP TABLE records").await?;
    manager.create_table(table).await?;
    db.execute_unprepared(insert).await?;
    db.execute_unprepared(&format!(
        "UPDATE sqlite_sequence SET seq = MAX(seq, COALESCE((SELECT MAX(seq) FROM {RECORDS_SEQ}), 0)) \
         WHERE name = 'records'"
    ))
    .await?;
    db.execute_unprepared(&format!(
        "INSERT INTO sqlite_sequence (name, seq) SELECT 'records', MAX(seq) FROM {RECORDS_SEQ} \
         HAVING COUNT(*) > 0 AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'records')"
    ))
    .await?;
    db.execute_unprepared(&format!("DROP TABLE {RECORDS_SEQ}")).await?;
    db.execute_unprepared(&format!("DROP TABLE {RECORDS_COPY}")).await?;
    for index in indexes {
        manager.create_index(index).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = manager.get_database_backend();

        // --- Agency registry.
        manager
            .create_table(
                Table::create()
                    .table(AgencyKinds::Table)
                    .col(text(AgencyKinds::Code).primary_key())
                    .col(text(AgencyKinds::NameZh))
                    .col(text(AgencyKinds::NameEn))
                    .to_owned(),
            )
            .await?;
        let mut seed = Query::insert();
        seed.into_table(AgencyKinds::Table).columns([AgencyKinds::Code, AgencyKinds::NameZh, AgencyKinds::NameEn]);
        for (code, zh, en) in DEFAULT_AGENCY_KINDS {
            seed.values([code.into(), zh.into(), en.into()]).map_err(|e| DbErr::Custom(e.to_string()))?;
        }
        manager.exec_stmt(seed).await?;
        manager
            .create_table(
                Table::create()
                    .table(AgencyUnits::Table)
                    .col(id_column(AgencyUnits::Id))
                    .col(text(AgencyUnits::Kind))
                    .col(text(AgencyUnits::Name))
                    .col(text(AgencyUnits::Jurisdiction))
                    .col(bigint(AgencyUnits::CreatedAt))
                    .foreign_key(&mut fk(AgencyUnits::Table, AgencyUnits::Kind, AgencyKinds::Table, AgencyKinds::Code))
                    .foreign_key(&mut fk(
                        AgencyUnits::Table,
                        AgencyUnits::Jurisdiction,
                        Divisions::Table,
                        Divisions::Code,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_agency_units_kind_name")
                    .table(AgencyUnits::Table)
                    .col(AgencyUnits::Kind)
                    .col(AgencyUnits::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // A column-level REFERENCES in ADD COLUMN works on both backends (and SQLite can still
        // drop the column again).
        db.execute_unprepared(
            "ALTER TABLE accounts ADD COLUMN agency_unit_id BIGINT NULL REFERENCES agency_units (id)",
        )
        .await?;

        // --- Records at places, with creator, assignee and occurrence time.
        match backend {
            DbBackend::Sqlite => {
                let insert = format!(
                    "INSERT INTO records ({OLD_COLUMNS}, grid_cell, created_by, assignee, occurred_at) \
                     SELECT {OLD_COLUMNS}, NULL, {FIRST_ACTOR}, NULL, created_at FROM {RECORDS_COPY} c"
                );
                let mut indexes = old_indexes();
                indexes.extend(new_indexes());
                rebuild_sqlite_records(manager, records_table(true), &insert, indexes).await?;
            }
            _ => {
                for sql in [
                    "ALTER TABLE records ALTER COLUMN estate_id DROP NOT NULL".to_owned(),
                    "ALTER TABLE records ADD COLUMN grid_cell TEXT NULL REFERENCES grid_cells (code)".to_owned(),
                    "ALTER TABLE records ADD COLUMN created_by TEXT NOT NULL DEFAULT ''".to_owned(),
                    format!("UPDATE records AS c SET created_by = {FIRST_ACTOR}"),
                    "ALTER TABLE records ALTER COLUMN created_by DROP DEFAULT".to_owned(),
                    "ALTER TABLE records ADD COLUMN assignee TEXT NULL".to_owned(),
                    "ALTER TABLE records ADD COLUMN occurred_at BIGINT NOT NULL DEFAULT 0".to_owned(),
                    "UPDATE records SET occurred_at = created_at".to_owned(),
                    "ALTER TABLE records ALTER COLUMN occurred_at DROP DEFAULT".to_owned(),
                    "ALTER TABLE records ADD CONSTRAINT records_one_place \
                     CHECK ((estate_id IS NULL) <> (grid_cell IS NULL))"
                        .to_owned(),
                ] {
                    db.execute_unprepared(&sql).await?;
                }
                for index in new_indexes() {
                    manager.create_index(index).await?;
                }
            }
        }

        // --- Events: occurrence time, back-dating reason, place after the event.
        for sql in [
            "ALTER TABLE record_events ADD COLUMN occurred_at BIGINT NOT NULL DEFAULT 0",
            "UPDATE record_events SET occurred_at = at",
            "ALTER TABLE record_events ADD COLUMN backdated_reason TEXT NULL",
            "ALTER TABLE record_events ADD COLUMN place_json TEXT NULL",
            "UPDATE record_events SET place_json = (SELECT '{\"estate\":' || CAST(r.estate_id AS TEXT) || '}' \
             FROM records r WHERE r.id = record_events.record_id)",
            "ALTER TABLE alerts ADD COLUMN grid_cell TEXT NULL REFERENCES grid_cells (code)",
        ] {
            db.execute_unprepared(sql).await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_alerts_grid_cell")
                    .table(Alias::new("alerts"))
                    .col(Alias::new("grid_cell"))
                    .to_owned(),
            )
            .await?;

        // --- The reference index.
        manager
            .create_table(
                Table::create()
                    .table(RecordRefs::Table)
                    .col(text(RecordRefs::Plugin))
                    .col(bigint(RecordRefs::RecordId))
                    .col(bigint(RecordRefs::Version))
                    .col(text(RecordRefs::RefKind))
                    .col(text(RecordRefs::RefId))
                    .col(text(RecordRefs::Field))
                    .primary_key(
                        Index::create()
                            .col(RecordRefs::Plugin)
                            .col(RecordRefs::RecordId)
                            .col(RecordRefs::Version)
                            .col(RecordRefs::RefKind)
                            .col(RecordRefs::RefId)
                            .col(RecordRefs::Field),
                    )
                    .foreign_key(&mut fk(RecordRefs::Table, RecordRefs::RecordId, Records::Table, Records::Id))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_record_refs_target")
                    .table(RecordRefs::Table)
                    .col(RecordRefs::RefKind)
                    .col(RecordRefs::RefId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    /// Undoes the migration. Records at grid cells cannot go back to a schema without places:
    /// with any of them stored this fails (NOT NULL `estate_id`) and nothing is undone.
    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        manager.drop_table(Table::drop().table(RecordRefs::Table).to_owned()).await?;
        manager.drop_index(Index::drop().name("idx_alerts_grid_cell").table(Alias::new("alerts")).to_owned()).await?;
        for (table, column) in [
            ("alerts", "grid_cell"),
            ("record_events", "place_json"),
            ("record_events", "backdated_reason"),
            ("record_events", "occurred_at"),
        ] {
            db.execute_unprepared(&format!("ALTER TABLE {table} DROP COLUMN {column}")).await?;
        }
        match backend {
            DbBackend::Sqlite => {
                let insert = format!("INSERT INTO records ({OLD_COLUMNS}) SELECT {OLD_COLUMNS} FROM {RECORDS_COPY} c");
                rebuild_sqlite_records(manager, records_table(false), &insert, old_indexes()).await?;
            }
            _ => {
                for index in ["idx_records_assignee", "idx_records_plugin_kind_grid_cell_id"] {
                    manager.drop_index(Index::drop().name(index).table(Records::Table).to_owned()).await?;
                }
                for sql in [
                    "ALTER TABLE records DROP CONSTRAINT records_one_place",
                    "ALTER TABLE records DROP COLUMN occurred_at",
                    "ALTER TABLE records DROP COLUMN assignee",
                    "ALTER TABLE records DROP COLUMN created_by",
                    "ALTER TABLE records DROP COLUMN grid_cell",
                    "ALTER TABLE records ALTER COLUMN estate_id SET NOT NULL",
                ] {
                    db.execute_unprepared(sql).await?;
                }
            }
        }
        db.execute_unprepared("ALTER TABLE accounts DROP COLUMN agency_unit_id").await?;
        manager.drop_table(Table::drop().table(AgencyUnits::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(AgencyKinds::Table).to_owned()).await
    }
}
