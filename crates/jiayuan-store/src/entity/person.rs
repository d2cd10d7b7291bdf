//! Entity of the `persons` table: registered persons, unique by identity document.
//!
//! The document number and the phone are stored encrypted (`*_enc`, see `crate::crypto`) with
//! a keyed blind index (`*_bidx`) for exact lookups and uniqueness; never in plaintext.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "persons")]
pub(crate) struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    pub doc_kind: String,
    pub doc_number_enc: String,
    pub doc_bidx: String,
    pub sex: Option<String>,
    pub birth_date: Option<String>,
    pub hukou: String,
    pub phone_enc: Option<String>,
    pub phone_bidx: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
