//! Entity of the `grid_cells` table: 网格 grid cells, keyed by their 15-digit code.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "grid_cells")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub code: String,
    pub kind: String,
    pub community_code: String,
    pub name: String,
    pub valid_from: String,
    pub valid_to: Option<String>,
    pub estate_id: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
