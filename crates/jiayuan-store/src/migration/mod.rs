//! The schema migrations: one [`Migrator`] for SQLite and PostgreSQL alike.
//!
//! Rules (see the ecosystem notes on sea-orm): foreign keys only in `CREATE TABLE`, one change
//! per `ALTER TABLE`, no backend-specific column types (enums and dates are TEXT, instants
//! BIGINT Unix milliseconds, JSON TEXT), and every migration runs in a transaction on both
//! backends. Never edit a migration that has shipped; add a new one.

use sea_orm_migration::prelude::*;

mod m20261128_000001_create_registry;
mod m20261128_000002_create_records;
mod m20261128_000003_create_enablement;
mod m20261128_000004_create_audit;
mod m20261128_000005_create_accounts;
mod m20261128_000006_index_record_pages;
mod m20261201_000007_registry_administration;
mod m20261201_000008_contract_second_edition;

/// The store's migrations, in order.
pub(crate) struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261128_000001_create_registry::Migration),
            Box::new(m20261128_000002_create_records::Migration),
            Box::new(m20261128_000003_create_enablement::Migration),
            Box::new(m20261128_000004_create_audit::Migration),
            Box::new(m20261128_000005_create_accounts::Migration),
            Box::new(m20261128_000006_index_record_pages::Migration),
            Box::new(m20261201_000007_registry_administration::Migration),
            Box::new(m20261201_000008_contract_second_edition::Migration),
        ]
    }
}

/// A `BIGINT` auto-increment primary key (an `INTEGER PRIMARY KEY` rowid alias on SQLite).
pub(super) fn id_column(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).big_integer().not_null().auto_increment().primary_key().to_owned()
}

/// A `NOT NULL` text column.
pub(super) fn text(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).text().not_null().to_owned()
}

/// A nullable text column.
pub(super) fn text_null(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).text().null().to_owned()
}

/// A `NOT NULL` BIGINT column.
pub(super) fn bigint(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).big_integer().not_null().to_owned()
}

/// A nullable BIGINT column.
pub(super) fn bigint_null(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).big_integer().null().to_owned()
}

/// A foreign key from `table.column` to `to_table.to_column`.
pub(super) fn fk(
    table: impl IntoIden,
    column: impl IntoIden,
    to_table: impl IntoIden,
    to_column: impl IntoIden,
) -> ForeignKeyCreateStatement {
    ForeignKey::create().from(table, column).to(to_table, to_column).to_owned()
}
