//! Entity of the `buildings` table: 楼栋 buildings.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "buildings")]
pub(crate) struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub estate_id: Option<i64>,
    pub name: String,
    pub floors: i32,
    pub height_m: f64,
    pub elevator: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
