//! Migration 2: the record engine's generic tables — records, their indexed keys, their event
//! history, and alerts.

use sea_orm_migration::prelude::*;

use super::{bigint, bigint_null, fk, id_column, text, text_null};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum Estates {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Records {
    Table,
    Id,
    Plugin,
    Kind,
    EstateId,
    ParentId,
    State,
    PrevState,
    DataJson,
    CreatedAt,
    UpdatedAt,
    StateEnteredAt,
    Version,
}

#[derive(DeriveIden)]
enum RecordKeys {
    Table,
    RecordId,
    Field,
    Value,
    Plugin,
    Kind,
    UniqueValue,
}

#[derive(DeriveIden)]
enum RecordEvents {
    Table,
    Seq,
    RecordId,
    Plugin,
    At,
    Actor,
    Action,
    FromState,
    ToState,
    DataJson,
}

#[derive(DeriveIden)]
enum Alerts {
    Table,
    Id,
    Plugin,
    RecordId,
    EstateId,
    Rule,
    DedupeKey,
    Severity,
    MessageZh,
    MessageEn,
    DueAt,
    RaisedAt,
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
                    .table(Records::Table)
                    .col(id_column(Records::Id))
                    .col(text(Records::Plugin))
                    .col(text(Records::Kind))
                    .col(bigint(Records::EstateId))
                    .col(bigint_null(Records::ParentId))
                    .col(text(Records::State))
                    .col(text_null(Records::PrevState))
                    .col(text(Records::DataJson))
                    .col(bigint(Records::CreatedAt))
                    .col(bigint(Records::UpdatedAt))
                    .col(bigint(Records::StateEnteredAt))
                    .col(bigint(Records::Version))
                    .foreign_key(&mut fk(Records::Table, Records::EstateId, Estates::Table, Estates::Id))
                    .foreign_key(&mut fk(Records::Table, Records::ParentId, Records::Table, Records::Id))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_records_plugin_kind_estate_state")
                    .table(Records::Table)
                    .col(Records::Plugin)
                    .col(Records::Kind)
                    .col(Records::EstateId)
                    .col(Records::State)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_records_plugin_parent")
                    .table(Records::Table)
                    .col(Records::Plugin)
                    .col(Records::ParentId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RecordKeys::Table)
                    .col(bigint(RecordKeys::RecordId))
                    .col(text(RecordKeys::Field))
                    .col(text(RecordKeys::Value))
                    .col(text(RecordKeys::Plugin))
                    .col(text(RecordKeys::Kind))
                    .col(text_null(RecordKeys::UniqueValue))
                    .primary_key(
                        Index::create().col(RecordKeys::RecordId).col(RecordKeys::Field).col(RecordKeys::Value),
                    )
                    .foreign_key(&mut fk(RecordKeys::Table, RecordKeys::RecordId, Records::Table, Records::Id))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_record_keys_lookup")
                    .table(RecordKeys::Table)
                    .col(RecordKeys::Plugin)
                    .col(RecordKeys::Kind)
                    .col(RecordKeys::Field)
                    .col(RecordKeys::Value)
                    .to_owned(),
            )
            .await?;
        // NULLs are distinct in unique indexes on both backends, so non-unique keys never clash.
        manager
            .create_index(
                Index::create()
                    .name("idx_record_keys_unique")
                    .table(RecordKeys::Table)
                    .col(RecordKeys::Plugin)
                    .col(RecordKeys::Kind)
                    .col(RecordKeys::Field)
                    .col(RecordKeys::UniqueValue)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RecordEvents::Table)
                    .col(id_column(RecordEvents::Seq))
                    .col(bigint(RecordEvents::RecordId))
                    .col(text(RecordEvents::Plugin))
                    .col(bigint(RecordEvents::At))
                    .col(text(RecordEvents::Actor))
                    .col(text(RecordEvents::Action))
                    .col(text_null(RecordEvents::FromState))
                    .col(text(RecordEvents::ToState))
                    .col(text(RecordEvents::DataJson))
                    .foreign_key(&mut fk(RecordEvents::Table, RecordEvents::RecordId, Records::Table, Records::Id))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_record_events_record")
                    .table(RecordEvents::Table)
                    .col(RecordEvents::RecordId)
                    .col(RecordEvents::Seq)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Alerts::Table)
                    .col(id_column(Alerts::Id))
                    .col(text(Alerts::Plugin))
                    .col(bigint_null(Alerts::RecordId))
                    .col(bigint_null(Alerts::EstateId))
                    .col(text(Alerts::Rule))
                    .col(text(Alerts::DedupeKey))
                    .col(text(Alerts::Severity))
                    .col(text(Alerts::MessageZh))
                    .col(text(Alerts::MessageEn))
                    .col(bigint_null(Alerts::DueAt))
                    .col(bigint(Alerts::RaisedAt))
                    .foreign_key(&mut fk(Alerts::Table, Alerts::RecordId, Records::Table, Records::Id))
                    .foreign_key(&mut fk(Alerts::Table, Alerts::EstateId, Estates::Table, Estates::Id))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_alerts_dedupe_key")
                    .table(Alerts::Table)
                    .col(Alerts::DedupeKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("idx_alerts_record").table(Alerts::Table).col(Alerts::RecordId).to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("idx_alerts_estate").table(Alerts::Table).col(Alerts::EstateId).to_owned(),
            )
            .await?;
        manager
            .create_index(Index::create().name("idx_alerts_plugin").table(Alerts::Table).col(Alerts::Plugin).to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Alerts::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(RecordEvents::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(RecordKeys::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Records::Table).to_owned()).await
    }
}
