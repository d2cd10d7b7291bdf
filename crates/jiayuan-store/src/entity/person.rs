//! Entity of the `persons` table: registered persons, unique by identity document.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "persons")]
pub(crate) struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    pub doc_kind: String,
    pub doc_number: String,
    pub sex: Option<String>,
    pub birth_date: Option<String>,
    pub hukou: String,
    pub phone: Option<String>,
    pub house_id: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
