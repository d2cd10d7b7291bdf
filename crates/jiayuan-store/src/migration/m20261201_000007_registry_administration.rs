//! Migration 7: registry administration.
//!
//! - `division_versions`: a division code may have several rows over time (name and validity);
//!   `divisions` keeps one row per code (its level, parent and the span of its versions) so the
//!   foreign keys of estates and grid cells still point at a code. Existing divisions become
//!   their own first version.
//! - estates get a stable `code` (natural key; existing rows get `E<id>`) and a `kind`; grid cells
//!   an optional dedicated estate; buildings an `elevator` flag and a unique name per estate;
//!   houses the optional 25-digit `address_code` and a unique room per building; firms a unique
//!   credit code.
//! - `occupancies` (who lives where, from/to) replace `persons.house_id`: each person's house
//!   becomes a current primary occupancy, and the column is emptied (the store no longer maps it).
//! - `leases` (the rental of a house, with its landlord).
//! - `idempotency_keys`: the first answer to a create, replayed to a retry with the same key.
//! - `imports` and `import_rows`: one row per import, and its row log: one line per changed,
//!   referred or refused row, runs of consecutive rows that did the same (rows 2–1001 inserted
//!   persons 1–1000) in one line; field names and rule codes only, never values.

use sea_orm_migration::prelude::*;

use super::{bigint, bigint_null, fk, id_column, text, text_null};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum Divisions {
    Table,
    Code,
}

#[derive(DeriveIden)]
enum DivisionVersions {
    Table,
    Code,
    ValidFrom,
    ValidTo,
    NameZh,
}

#[derive(DeriveIden)]
enum Estates {
    Table,
    Code,
    Kind,
}

#[derive(DeriveIden)]
enum GridCells {
    Table,
    EstateId,
}

#[derive(DeriveIden)]
enum Buildings {
    Table,
    EstateId,
    Name,
    Elevator,
}

#[derive(DeriveIden)]
enum Houses {
    Table,
    Id,
    BuildingId,
    Room,
    AddressCode,
}

#[derive(DeriveIden)]
enum Firms {
    Table,
    CreditCode,
}

#[derive(DeriveIden)]
enum Persons {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Occupancies {
    Table,
    Id,
    PersonId,
    HouseId,
    FromDate,
    ToDate,
    Relation,
    IsPrimary,
    ReportedAt,
}

#[derive(DeriveIden)]
enum Leases {
    Table,
    Id,
    HouseId,
    LandlordId,
    FromDate,
    ToDate,
    ContractRef,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    KeyHash,
    RequestHash,
    Status,
    Body,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Imports {
    Table,
    Id,
    Kind,
    Actor,
    At,
    FileSha256,
    Mode,
    Outcome,
    CountsJson,
}

#[derive(DeriveIden)]
enum ImportRows {
    Table,
    ImportId,
    RowNo,
    RowTo,
    Action,
    Target,
    DetailJson,
}

/// The divisions' own rows become their first versions.
const COPY_DIVISIONS: &str = "INSERT INTO division_versions (code, valid_from, valid_to, name_zh) \
     SELECT code, valid_from, valid_to, name_zh FROM divisions";
/// Existing estates get a code from their id.
const CODE_ESTATES: &str = "UPDATE estates SET code = 'E' || CAST(id AS TEXT) WHERE code IS NULL";
/// Each person's house becomes a current primary occupancy (the move-in day is unknown).
const COPY_RESIDENCES: &str = "INSERT INTO occupancies (person_id, house_id, from_date, to_date, relation, is_primary, reported_at) \
     SELECT id, house_id, '1970-01-01', NULL, 'other', TRUE, NULL FROM persons WHERE house_id IS NOT NULL";
const CLEAR_HOUSE_IDS: &str = "UPDATE persons SET house_id = NULL";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();

        manager
            .create_table(
                Table::create()
                    .table(DivisionVersions::Table)
                    .col(text(DivisionVersions::Code))
                    .col(text(DivisionVersions::ValidFrom))
                    .col(text_null(DivisionVersions::ValidTo))
                    .col(text(DivisionVersions::NameZh))
                    .primary_key(Index::create().col(DivisionVersions::Code).col(DivisionVersions::ValidFrom))
                    .foreign_key(&mut fk(
                        DivisionVersions::Table,
                        DivisionVersions::Code,
                        Divisions::Table,
                        Divisions::Code,
                    ))
                    .to_owned(),
            )
            .await?;
        db.execute_unprepared(COPY_DIVISIONS).await?;

        manager
            .alter_table(Table::alter().table(Estates::Table).add_column(text_null(Estates::Code)).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Estates::Table)
                    .add_column(ColumnDef::new(Estates::Kind).text().not_null().default("estate"))
                    .to_owned(),
            )
            .await?;
        db.execute_unprepared(CODE_ESTATES).await?;
        manager
            .create_index(
                Index::create().name("idx_estates_code").table(Estates::Table).col(Estates::Code).unique().to_owned(),
            )
            .await?;

        manager
            .alter_table(Table::alter().table(GridCells::Table).add_column(bigint_null(GridCells::EstateId)).to_owned())
            .await?;

        manager
            .alter_table(
                Table::alter()
                    .table(Buildings::Table)
                    .add_column(ColumnDef::new(Buildings::Elevator).boolean().not_null().default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_buildings_estate_name")
                    .table(Buildings::Table)
                    .col(Buildings::EstateId)
                    .col(Buildings::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .alter_table(Table::alter().table(Houses::Table).add_column(text_null(Houses::AddressCode)).to_owned())
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_houses_building_room")
                    .table(Houses::Table)
                    .col(Houses::BuildingId)
                    .col(Houses::Room)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_houses_address_code")
                    .table(Houses::Table)
                    .col(Houses::AddressCode)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_index(
                Index::create()
                    .name("idx_firms_credit_code_unique")
                    .table(Firms::Table)
                    .col(Firms::CreditCode)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Occupancies::Table)
                    .col(id_column(Occupancies::Id))
                    .col(bigint(Occupancies::PersonId))
                    .col(bigint(Occupancies::HouseId))
                    .col(text(Occupancies::FromDate))
                    .col(text_null(Occupancies::ToDate))
                    .col(text(Occupancies::Relation))
                    .col(ColumnDef::new(Occupancies::IsPrimary).boolean().not_null())
                    .col(text_null(Occupancies::ReportedAt))
                    .foreign_key(&mut fk(Occupancies::Table, Occupancies::PersonId, Persons::Table, Persons::Id))
                    .foreign_key(&mut fk(Occupancies::Table, Occupancies::HouseId, Houses::Table, Houses::Id))
                    .to_owned(),
            )
            .await?;
        for (name, col) in
            [("idx_occupancies_person", Occupancies::PersonId), ("idx_occupancies_house", Occupancies::HouseId)]
        {
            manager.create_index(Index::create().name(name).table(Occupancies::Table).col(col).to_owned()).await?;
        }
        db.execute_unprepared(COPY_RESIDENCES).await?;
        db.execute_unprepared(CLEAR_HOUSE_IDS).await?;

        manager
            .create_table(
                Table::create()
                    .table(Leases::Table)
                    .col(id_column(Leases::Id))
                    .col(bigint(Leases::HouseId))
                    .col(bigint(Leases::LandlordId))
                    .col(text(Leases::FromDate))
                    .col(text_null(Leases::ToDate))
                    .col(text_null(Leases::ContractRef))
                    .foreign_key(&mut fk(Leases::Table, Leases::HouseId, Houses::Table, Houses::Id))
                    .foreign_key(&mut fk(Leases::Table, Leases::LandlordId, Persons::Table, Persons::Id))
                    .to_owned(),
            )
            .await?;
        for (name, col) in [("idx_leases_house", Leases::HouseId), ("idx_leases_landlord", Leases::LandlordId)] {
            manager.create_index(Index::create().name(name).table(Leases::Table).col(col).to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .col(text(IdempotencyKeys::KeyHash).primary_key())
                    .col(text(IdempotencyKeys::RequestHash))
                    .col(ColumnDef::new(IdempotencyKeys::Status).integer().not_null())
                    .col(text(IdempotencyKeys::Body))
                    .col(bigint(IdempotencyKeys::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_idempotency_keys_created")
                    .table(IdempotencyKeys::Table)
                    .col(IdempotencyKeys::CreatedAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Imports::Table)
                    .col(id_column(Imports::Id))
                    .col(text(Imports::Kind))
                    .col(text(Imports::Actor))
                    .col(bigint(Imports::At))
                    .col(text(Imports::FileSha256))
                    .col(text(Imports::Mode))
                    .col(text(Imports::Outcome))
                    .col(text(Imports::CountsJson))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ImportRows::Table)
                    .col(bigint(ImportRows::ImportId))
                    .col(bigint(ImportRows::RowNo))
                    .col(bigint(ImportRows::RowTo))
                    .col(text(ImportRows::Action))
                    .col(text_null(ImportRows::Target))
                    .col(text(ImportRows::DetailJson))
                    .primary_key(Index::create().col(ImportRows::ImportId).col(ImportRows::RowNo))
                    .foreign_key(&mut fk(ImportRows::Table, ImportRows::ImportId, Imports::Table, Imports::Id))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for table in ["import_rows", "imports", "idempotency_keys", "leases"] {
            manager.drop_table(Table::drop().table(Alias::new(table)).to_owned()).await?;
        }
        db.execute_unprepared(
            "UPDATE persons SET house_id = (SELECT o.house_id FROM occupancies o WHERE o.person_id = persons.id \
             AND o.is_primary AND o.to_date IS NULL ORDER BY o.id DESC LIMIT 1)",
        )
        .await?;
        manager.drop_table(Table::drop().table(Occupancies::Table).to_owned()).await?;
        for (name, table) in [
            ("idx_firms_credit_code_unique", "firms"),
            ("idx_houses_address_code", "houses"),
            ("idx_houses_building_room", "houses"),
            ("idx_buildings_estate_name", "buildings"),
            ("idx_estates_code", "estates"),
        ] {
            manager.drop_index(Index::drop().name(name).table(Alias::new(table)).to_owned()).await?;
        }
        manager.alter_table(Table::alter().table(Houses::Table).drop_column(Houses::AddressCode).to_owned()).await?;
        manager.alter_table(Table::alter().table(Buildings::Table).drop_column(Buildings::Elevator).to_owned()).await?;
        manager.alter_table(Table::alter().table(GridCells::Table).drop_column(GridCells::EstateId).to_owned()).await?;
        manager.alter_table(Table::alter().table(Estates::Table).drop_column(Estates::Kind).to_owned()).await?;
        manager.alter_table(Table::alter().table(Estates::Table).drop_column(Estates::Code).to_owned()).await?;
        manager.drop_table(Table::drop().table(DivisionVersions::Table).to_owned()).await?;
        Ok(())
    }
}
