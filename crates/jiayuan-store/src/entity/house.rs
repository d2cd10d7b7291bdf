//! Entity of the `houses` table: 房屋 dwelling units.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "houses")]
pub(crate) struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub building_id: i64,
    pub estate_id: Option<i64>,
    pub room: String,
    pub area_m2: f64,
    pub house_use: String,
    pub address_code: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
