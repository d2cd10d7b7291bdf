//! Entity of the `store_meta` table: facts about the database itself, by name (today only
//! `key_check`, the check value of the data key the encrypted columns were written with).

use sea_orm::entity::prelude::*;

/// The table name (for probing whether the table exists yet).
pub(crate) const TABLE: &str = "store_meta";

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "store_meta")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    pub value: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
