//! Entity of the `records` table: plugin-defined records kept by the record engine.

use sea_orm::entity::prelude::*;

/// `Deserialize` reads the JSON array of a SQLite page row (`crate::records`): the fields in
/// this order.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Deserialize)]
#[sea_orm(table_name = "records")]
pub(crate) struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub plugin: String,
    pub kind: String,
    /// The place: exactly one of `estate_id` and `grid_cell` is set.
    pub estate_id: Option<i64>,
    pub grid_cell: Option<String>,
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
    pub created_by: String,
    pub assignee: Option<String>,
    pub occurred_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
