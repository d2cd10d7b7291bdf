//! Migration 1: the shared registry — divisions, grid cells, estates, firms, service
//! assignments, buildings, houses and persons — and `store_meta` (the data key's check value).
//!
//! Persons keep their identity-document number and phone encrypted (`doc_number_enc`,
//! `phone_enc`: `v1:` + base64 of XChaCha20-Poly1305 output) with keyed blind indexes
//! (`doc_bidx`, `phone_bidx`, HMAC-SHA256 hex) for exact lookups; uniqueness is on
//! (`doc_bidx`, `doc_kind`). This migration was changed in place to introduce that (it used to
//! store `doc_number` and `phone` in plaintext): no database had been deployed yet. A
//! development database created before the change must be deleted and created afresh.

use sea_orm_migration::prelude::*;

use super::{bigint, bigint_null, fk, id_column, text, text_null};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum Divisions {
    Table,
    Code,
    Level,
    NameZh,
    ParentCode,
    ValidFrom,
    ValidTo,
}

#[derive(DeriveIden)]
enum GridCells {
    Table,
    Code,
    Kind,
    CommunityCode,
    Name,
    ValidFrom,
    ValidTo,
}

#[derive(DeriveIden)]
enum Estates {
    Table,
    Id,
    Name,
    CommunityCode,
    Address,
    Management,
    Onboarding,
    Households,
}

#[derive(DeriveIden)]
enum Firms {
    Table,
    Id,
    Name,
    CreditCode,
    CreditCodeOverride,
    Kind,
    LegalRepresentative,
    ContactPhone,
}

#[derive(DeriveIden)]
enum ServiceAssignments {
    Table,
    Id,
    FirmId,
    EstateId,
    FromDate,
    ToDate,
    ContractRef,
}

#[derive(DeriveIden)]
enum Buildings {
    Table,
    Id,
    EstateId,
    Name,
    Floors,
    HeightM,
}

#[derive(DeriveIden)]
enum Houses {
    Table,
    Id,
    BuildingId,
    EstateId,
    Room,
    AreaM2,
    HouseUse,
}

#[derive(DeriveIden)]
enum Persons {
    Table,
    Id,
    Name,
    DocKind,
    DocNumberEnc,
    DocBidx,
    Sex,
    BirthDate,
    Hukou,
    PhoneEnc,
    PhoneBidx,
    HouseId,
}

#[derive(DeriveIden)]
enum StoreMeta {
    Table,
    Name,
    Value,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Divisions::Table)
                    .col(text(Divisions::Code).primary_key())
                    .col(text(Divisions::Level))
                    .col(text(Divisions::NameZh))
                    .col(text_null(Divisions::ParentCode))
                    .col(text(Divisions::ValidFrom))
                    .col(text_null(Divisions::ValidTo))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_divisions_parent")
                    .table(Divisions::Table)
                    .col(Divisions::ParentCode)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(GridCells::Table)
                    .col(text(GridCells::Code).primary_key())
                    .col(text(GridCells::Kind))
                    .col(text(GridCells::CommunityCode))
                    .col(text(GridCells::Name))
                    .col(text(GridCells::ValidFrom))
                    .col(text_null(GridCells::ValidTo))
                    .foreign_key(&mut fk(GridCells::Table, GridCells::CommunityCode, Divisions::Table, Divisions::Code))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_grid_cells_community")
                    .table(GridCells::Table)
                    .col(GridCells::CommunityCode)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Estates::Table)
                    .col(id_column(Estates::Id))
                    .col(text(Estates::Name))
                    .col(text(Estates::CommunityCode))
                    .col(text(Estates::Address))
                    .col(text(Estates::Management))
                    .col(text_null(Estates::Onboarding))
                    .col(bigint(Estates::Households))
                    .foreign_key(&mut fk(Estates::Table, Estates::CommunityCode, Divisions::Table, Divisions::Code))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_estates_community")
                    .table(Estates::Table)
                    .col(Estates::CommunityCode)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Firms::Table)
                    .col(id_column(Firms::Id))
                    .col(text(Firms::Name))
                    .col(text(Firms::CreditCode))
                    .col(text_null(Firms::CreditCodeOverride))
                    .col(text(Firms::Kind))
                    .col(text_null(Firms::LegalRepresentative))
                    .col(text_null(Firms::ContactPhone))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("idx_firms_credit_code").table(Firms::Table).col(Firms::CreditCode).to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ServiceAssignments::Table)
                    .col(id_column(ServiceAssignments::Id))
                    .col(bigint(ServiceAssignments::FirmId))
                    .col(bigint(ServiceAssignments::EstateId))
                    .col(text(ServiceAssignments::FromDate))
                    .col(text_null(ServiceAssignments::ToDate))
                    .col(text_null(ServiceAssignments::ContractRef))
                    .foreign_key(&mut fk(
                        ServiceAssignments::Table,
                        ServiceAssignments::FirmId,
                        Firms::Table,
                        Firms::Id,
                    ))
                    .foreign_key(&mut fk(
                        ServiceAssignments::Table,
                        ServiceAssignments::EstateId,
                        Estates::Table,
                        Estates::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_service_assignments_estate")
                    .table(ServiceAssignments::Table)
                    .col(ServiceAssignments::EstateId)
                    .col(ServiceAssignments::FromDate)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_service_assignments_firm")
                    .table(ServiceAssignments::Table)
                    .col(ServiceAssignments::FirmId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Buildings::Table)
                    .col(id_column(Buildings::Id))
                    .col(bigint_null(Buildings::EstateId))
                    .col(text(Buildings::Name))
                    .col(ColumnDef::new(Buildings::Floors).integer().not_null())
                    .col(ColumnDef::new(Buildings::HeightM).double().not_null())
                    .foreign_key(&mut fk(Buildings::Table, Buildings::EstateId, Estates::Table, Estates::Id))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_buildings_estate")
                    .table(Buildings::Table)
                    .col(Buildings::EstateId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Houses::Table)
                    .col(id_column(Houses::Id))
                    .col(bigint(Houses::BuildingId))
                    .col(bigint_null(Houses::EstateId))
                    .col(text(Houses::Room))
                    .col(ColumnDef::new(Houses::AreaM2).double().not_null())
                    .col(text(Houses::HouseUse))
                    .foreign_key(&mut fk(Houses::Table, Houses::BuildingId, Buildings::Table, Buildings::Id))
                    .foreign_key(&mut fk(Houses::Table, Houses::EstateId, Estates::Table, Estates::Id))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("idx_houses_building").table(Houses::Table).col(Houses::BuildingId).to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("idx_houses_estate").table(Houses::Table).col(Houses::EstateId).to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Persons::Table)
                    .col(id_column(Persons::Id))
                    .col(text(Persons::Name))
                    .col(text(Persons::DocKind))
                    .col(text(Persons::DocNumberEnc))
                    .col(text(Persons::DocBidx))
                    .col(text_null(Persons::Sex))
                    .col(text_null(Persons::BirthDate))
                    .col(text(Persons::Hukou))
                    .col(text_null(Persons::PhoneEnc))
                    .col(text_null(Persons::PhoneBidx))
                    .col(bigint_null(Persons::HouseId))
                    .foreign_key(&mut fk(Persons::Table, Persons::HouseId, Houses::Table, Houses::Id))
                    .to_owned(),
            )
            .await?;
        // One person per document; the blind index leads, so the index also serves lookups by
        // document number alone.
        manager
            .create_index(
                Index::create()
                    .name("idx_persons_doc")
                    .table(Persons::Table)
                    .col(Persons::DocBidx)
                    .col(Persons::DocKind)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("idx_persons_phone").table(Persons::Table).col(Persons::PhoneBidx).to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("idx_persons_house").table(Persons::Table).col(Persons::HouseId).to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(StoreMeta::Table)
                    .col(text(StoreMeta::Name).primary_key())
                    .col(text(StoreMeta::Value))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(StoreMeta::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Persons::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Houses::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Buildings::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(ServiceAssignments::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Firms::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Estates::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(GridCells::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Divisions::Table).to_owned()).await
    }
}
