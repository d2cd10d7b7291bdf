//! Migration 4: the tamper-evident audit log (`audit_events`, hash-chained) and its one-row chain
//! head (`audit_head`), which every append reads and moves in the transaction of the change.

use sea_orm_migration::prelude::*;

use super::{bigint, bigint_null, text};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Seq,
    At,
    Actor,
    Action,
    Object,
    EstateId,
    DetailJson,
    PrevHash,
    Hash,
}

#[derive(DeriveIden)]
enum AuditHead {
    Table,
    Id,
    Seq,
    Hash,
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
                    .table(AuditEvents::Table)
                    // Assigned by the writer from the chain head (no sequence: a rolled-back append
                    // leaves no gap).
                    .col(ColumnDef::new(AuditEvents::Seq).big_integer().not_null().primary_key())
                    .col(bigint(AuditEvents::At))
                    .col(text(AuditEvents::Actor))
                    .col(text(AuditEvents::Action))
                    .col(text(AuditEvents::Object))
                    .col(bigint_null(AuditEvents::EstateId))
                    .col(text(AuditEvents::DetailJson))
                    .col(text(AuditEvents::PrevHash))
                    .col(text(AuditEvents::Hash))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditHead::Table)
                    .col(ColumnDef::new(AuditHead::Id).big_integer().not_null().primary_key())
                    .col(bigint(AuditHead::Seq))
                    .col(text(AuditHead::Hash))
                    .to_owned(),
            )
            .await?;
        // The head of the empty chain: seq 0, and the hash row 1 links to (64 zeros).
        let mut seed = Query::insert();
        seed.into_table(AuditHead::Table)
            .columns([AuditHead::Id, AuditHead::Seq, AuditHead::Hash])
            .values([1i64.into(), 0i64.into(), "0".repeat(64).into()])
            .map_err(|e| DbErr::Custom(format!("seeding the audit head: {e}")))?;
        manager.exec_stmt(seed).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(AuditHead::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(AuditEvents::Table).to_owned()).await
    }
}
