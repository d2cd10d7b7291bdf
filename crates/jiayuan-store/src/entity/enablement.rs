//! Entity of the `enablement_overrides` table: run-time enablement changes by the district office.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "enablement_overrides")]
pub(crate) struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub item: String,
    pub scope_kind: String,
    pub scope_code: String,
    pub enabled: bool,
    pub reason: String,
    pub changed_by: String,
    pub changed_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
