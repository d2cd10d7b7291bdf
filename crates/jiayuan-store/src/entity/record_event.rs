//! Entity of the `record_events` table: the append-only history of every record.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "record_events")]
pub(crate) struct Model {
    #[sea_orm(primary_key)]
    pub seq: i64,
    pub record_id: i64,
    pub plugin: String,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub from_state: Option<String>,
    pub to_state: String,
    pub data_json: String,
    pub occurred_at: i64,
    pub backdated_reason: Option<String>,
    /// The record's place after the event (serde JSON of `Place`).
    pub place_json: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
