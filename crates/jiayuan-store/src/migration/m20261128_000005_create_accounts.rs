//! Migration 5: user accounts (`accounts`), their browser sessions (`sessions`) and their API
//! tokens (`api_tokens`).
//!
//! No secret is stored: passwords as PHC hash strings, session ids and API tokens as the hex
//! SHA-256 of the secret (the session's primary key, the token's unique key).

use sea_orm_migration::prelude::*;

use super::{bigint, bigint_null, fk, id_column, text, text_null};

#[derive(DeriveMigrationName)]
pub(super) struct Migration;

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
    Login,
    DisplayName,
    Role,
    Scope,
    ItemsJson,
    PasswordHash,
    Disabled,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    IdHash,
    AccountId,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    Id,
    AccountId,
    Name,
    Prefix,
    TokenHash,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
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
                    .table(Accounts::Table)
                    .col(id_column(Accounts::Id))
                    .col(text(Accounts::Login))
                    .col(text(Accounts::DisplayName))
                    // `Role::as_str`, and `AccountScope`'s display spelling (`district`, `firm:7`…).
                    .col(text(Accounts::Role))
                    .col(text(Accounts::Scope))
                    // JSON array of plugin ids; NULL = every item of the scope.
                    .col(text_null(Accounts::ItemsJson))
                    // PHC string; NULL = no password (token-only, or not set yet).
                    .col(text_null(Accounts::PasswordHash))
                    .col(ColumnDef::new(Accounts::Disabled).boolean().not_null())
                    .col(bigint(Accounts::CreatedAt))
                    .col(bigint(Accounts::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_accounts_login")
                    .table(Accounts::Table)
                    .col(Accounts::Login)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    // hex SHA-256 of the secret session id.
                    .col(ColumnDef::new(Sessions::IdHash).text().not_null().primary_key())
                    .col(bigint(Sessions::AccountId))
                    .col(bigint(Sessions::CreatedAt))
                    .col(bigint(Sessions::ExpiresAt))
                    .foreign_key(
                        &mut fk(Sessions::Table, Sessions::AccountId, Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade)
                            .to_owned(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("idx_sessions_account").table(Sessions::Table).col(Sessions::AccountId).to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sessions_expires_at")
                    .table(Sessions::Table)
                    .col(Sessions::ExpiresAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ApiTokens::Table)
                    .col(id_column(ApiTokens::Id))
                    .col(bigint(ApiTokens::AccountId))
                    .col(text(ApiTokens::Name))
                    // The first characters of the token, to tell tokens apart in the UI.
                    .col(text(ApiTokens::Prefix))
                    // hex SHA-256 of the token.
                    .col(text(ApiTokens::TokenHash))
                    .col(bigint(ApiTokens::CreatedAt))
                    .col(bigint_null(ApiTokens::ExpiresAt))
                    .col(bigint_null(ApiTokens::RevokedAt))
                    .foreign_key(&mut fk(ApiTokens::Table, ApiTokens::AccountId, Accounts::Table, Accounts::Id))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_api_tokens_token_hash")
                    .table(ApiTokens::Table)
                    .col(ApiTokens::TokenHash)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_api_tokens_account")
                    .table(ApiTokens::Table)
                    .col(ApiTokens::AccountId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(ApiTokens::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Sessions::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Accounts::Table).to_owned()).await
    }
}
