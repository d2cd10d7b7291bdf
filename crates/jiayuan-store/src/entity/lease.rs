//! Entity of the `leases` table: 租赁 rentals of houses, with their landlords.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "leases")]
pub(crate) struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub house_id: i64,
    pub landlord_id: i64,
    pub from_date: String,
    pub to_date: Option<String>,
    pub contract_ref: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
