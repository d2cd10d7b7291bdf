//! Entity of the `imports` table: one row per registry import.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "imports")]
pub(crate) struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub kind: String,
    pub actor: String,
    pub at: i64,
    pub file_sha256: String,
    pub mode: String,
    pub outcome: String,
    pub counts_json: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
