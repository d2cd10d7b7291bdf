//! Entity of the `alerts` table: alerts raised by deadline rules and plugin hooks, deduplicated
//! by a globally unique `dedupe_key`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "alerts")]
pub(crate) struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub plugin: String,
    pub record_id: Option<i64>,
    pub estate_id: Option<i64>,
    pub grid_cell: Option<String>,
    pub rule: String,
    pub dedupe_key: String,
    pub severity: String,
    pub message_zh: String,
    pub message_en: String,
    pub due_at: Option<i64>,
    pub raised_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
