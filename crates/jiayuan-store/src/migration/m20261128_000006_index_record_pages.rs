//! Migration 6: an index for record pages. A page of one estate's records in id order (the
//! default listing) reads the index in order and stops at the page size, instead of sorting
//! every record of the estate first.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum Records {
    Table,
    Id,
    Plugin,
    Kind,
    EstateId,
}

const NAME: &str = "idx_records_plugin_kind_estate_id";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(NAME)
                    .table(Records::Table)
                    .col(Records::Plugin)
                    .col(Records::Kind)
                    .col(Records::EstateId)
                    .col(Records::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name(NAME).table(Records::Table).to_owned()).await
    }
}
