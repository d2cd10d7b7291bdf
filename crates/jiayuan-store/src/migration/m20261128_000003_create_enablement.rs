//! Migration 3: run-time enablement overrides set by the district office.

use sea_orm_migration::prelude::*;

use super::{bigint, id_column, text};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum EnablementOverrides {
    Table,
    Id,
    Item,
    ScopeKind,
    ScopeCode,
    Enabled,
    Reason,
    ChangedBy,
    ChangedAt,
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
                    .table(EnablementOverrides::Table)
                    .col(id_column(EnablementOverrides::Id))
                    .col(text(EnablementOverrides::Item))
                    .col(text(EnablementOverrides::ScopeKind))
                    // '' for the district scope, so the unique index below also covers it.
                    .col(text(EnablementOverrides::ScopeCode))
                    .col(ColumnDef::new(EnablementOverrides::Enabled).boolean().not_null())
                    .col(text(EnablementOverrides::Reason))
                    .col(text(EnablementOverrides::ChangedBy))
                    .col(bigint(EnablementOverrides::ChangedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_enablement_overrides_scope")
                    .table(EnablementOverrides::Table)
                    .col(EnablementOverrides::Item)
                    .col(EnablementOverrides::ScopeKind)
                    .col(EnablementOverrides::ScopeCode)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(EnablementOverrides::Table).to_owned()).await
    }
}
