//! Entity of the `occupancies` table: 居住关系 who lives where, from when to when.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "occupancies")]
pub(crate) struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub person_id: i64,
    pub house_id: i64,
    pub from_date: String,
    pub to_date: Option<String>,
    pub relation: String,
    pub is_primary: bool,
    pub reported_at: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
