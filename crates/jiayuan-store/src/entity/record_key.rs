//! Entity of the `record_keys` table: indexed keys of records. `unique_value` repeats `value` for
//! unique keys and is `NULL` otherwise, so one unique index over
//! (plugin, kind, field, unique_value) enforces uniqueness on both backends.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "record_keys")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub record_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub field: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub value: String,
    pub plugin: String,
    pub kind: String,
    pub unique_value: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
