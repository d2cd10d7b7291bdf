//! Entity of the `records` table: plugin-defined records kept by the record engine.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "records")]
pub(crate) struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub plugin: String,
    pub kind: String,
    pub estate_id: i64,
    pub parent_id: Option<i64>,
    pub state: String,
    /// The state before the last change (`NULL` until the first update). Written by the same
    /// `UPDATE … RETURNING` that changes the state, so an update learns its from-state without
    /// a separate read.
    pub prev_state: Option<String>,
    pub data_json: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub state_entered_at: i64,
    pub version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
