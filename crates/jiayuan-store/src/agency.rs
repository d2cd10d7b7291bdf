//! 职能部门 the agency registry: `agency_kinds` (police station, judicial office, …; seeded by
//! migration 8 with [`DEFAULT_AGENCY_KINDS`](jiayuan_domain::DEFAULT_AGENCY_KINDS), the district
//! may add more) and `agency_units` (one police station: kind, name, jurisdiction), which agency
//! officers' accounts belong to (`accounts.agency_unit_id`).
//!
//! Every write appends its audit event (`registry.agency_kind.upsert`,
//! `registry.agency_unit.create`) in the same transaction. Refusals are [`StoreError::Rule`]:
//! they name the field and the rule, never the submitted value.

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, QuerySelect, TryInsertResult,
};

use jiayuan_domain::{AgencyKind, AgencyUnit, AgencyUnitId, DivisionCode, Timestamp, is_agency_kind_code};

use crate::audit::{self, AuditTarget, NewAudit};
use crate::entity::{agency_kind, agency_unit, division};
use crate::error::{StoreError, db};
use crate::records::WriteBatch;
use crate::store::{Store, finish};

/// The longest agency-unit name, in characters.
pub const MAX_AGENCY_UNIT_NAME: usize = 100;

impl Store {
    /// Every agency kind, by code.
    pub async fn agency_kinds(&self) -> Result<Vec<AgencyKind>, StoreError> {
        let rows = agency_kind::Entity::find()
            .order_by_asc(agency_kind::Column::Code)
            .all(&self.reader)
            .await
            .map_err(db("list agency kinds"))?;
        Ok(rows.into_iter().map(|r| AgencyKind { code: r.code, name_zh: r.name_zh, name_en: r.name_en }).collect())
    }

    /// Adds an agency kind, or renames the one with its code (audited as
    /// `registry.agency_kind.upsert` by `actor`). Refused ([`StoreError::Rule`]): a code that is
    /// not [`is_agency_kind_code`] (`code`, `agency_kind_code`), an empty name (`name_zh` /
    /// `name_en`, `required`).
    pub async fn upsert_agency_kind(&self, kind: &AgencyKind, actor: &str, at: Timestamp) -> Result<(), StoreError> {
        const OP: &str = "upsert agency kind";
        if !is_agency_kind_code(&kind.code) {
            return Err(StoreError::Rule { field: "code", rule: "agency_kind_code" });
        }
        for (field, value) in [("name_zh", &kind.name_zh), ("name_en", &kind.name_en)] {
            if value.trim().is_empty() {
                return Err(StoreError::Rule { field, rule: "required" });
            }
        }
        let model = agency_kind::ActiveModel {
            code: Set(kind.code.clone()),
            name_zh: Set(kind.name_zh.clone()),
            name_en: Set(kind.name_en.clone()),
        };
        let txn = self.begin_write(OP).await?;
        let result = async {
            agency_kind::Entity::insert(model)
                .on_conflict(
                    OnConflict::column(agency_kind::Column::Code)
                        .update_columns([agency_kind::Column::NameZh, agency_kind::Column::NameEn])
                        .to_owned(),
                )
                .exec_without_returning(&txn)
                .await
                .map_err(db(OP))?;
            let detail = serde_json::json!({ "code": kind.code });
            append(&txn, "registry.agency_kind.upsert", format!("agency_kind/{}", kind.code), actor, at, detail).await
        }
        .await;
        finish(txn, result, OP).await
    }

    /// Every agency unit, by id.
    pub async fn agency_units(&self) -> Result<Vec<AgencyUnit>, StoreError> {
        let rows = agency_unit::Entity::find()
            .order_by_asc(agency_unit::Column::Id)
            .all(&self.reader)
            .await
            .map_err(db("list agency units"))?;
        rows.into_iter().map(unit_from_row).collect()
    }

    /// One agency unit.
    pub async fn agency_unit(&self, id: AgencyUnitId) -> Result<Option<AgencyUnit>, StoreError> {
        let row = agency_unit::Entity::find_by_id(id.0).one(&self.reader).await.map_err(db("read agency unit"))?;
        row.map(unit_from_row).transpose()
    }

    /// Creates an agency unit and returns its id (audited as `registry.agency_unit.create` by
    /// `actor`). Refused ([`StoreError::Rule`], nothing written): an empty or overlong name
    /// (`name`, `required` / `too_long`), an unknown kind (`kind`, `unknown_agency_kind`), an
    /// unknown division (`jurisdiction`, `unknown_division`), a unit of that kind with that name
    /// already (`name`, `agency_unit_exists`).
    pub async fn create_agency_unit(
        &self,
        kind: &str,
        name: &str,
        jurisdiction: &DivisionCode,
        actor: &str,
        at: Timestamp,
    ) -> Result<AgencyUnitId, StoreError> {
        const OP: &str = "create agency unit";
        let name = name.trim();
        if name.is_empty() {
            return Err(StoreError::Rule { field: "name", rule: "required" });
        }
        if name.chars().count() > MAX_AGENCY_UNIT_NAME {
            return Err(StoreError::Rule { field: "name", rule: "too_long" });
        }
        let txn = self.begin_write(OP).await?;
        let result = async {
            let known_kind = agency_kind::Entity::find_by_id(kind.to_owned())
                .select_only()
                .column(agency_kind::Column::Code)
                .into_tuple::<String>()
                .one(&txn)
                .await
                .map_err(db(OP))?;
            if known_kind.is_none() {
                return Err(StoreError::Rule { field: "kind", rule: "unknown_agency_kind" });
            }
            let known_division = division::Entity::find()
                .filter(division::Column::Code.eq(jurisdiction.as_str()))
                .select_only()
                .column(division::Column::Code)
                .into_tuple::<String>()
                .one(&txn)
                .await
                .map_err(db(OP))?;
            if known_division.is_none() {
                return Err(StoreError::Rule { field: "jurisdiction", rule: "unknown_division" });
            }
            let model = agency_unit::ActiveModel {
                id: NotSet,
                kind: Set(kind.to_owned()),
                name: Set(name.to_owned()),
                jurisdiction: Set(jurisdiction.as_str().to_owned()),
                created_at: Set(at.0),
            };
            let id = match agency_unit::Entity::insert(model)
                .on_conflict_do_nothing_on([agency_unit::Column::Kind, agency_unit::Column::Name])
                .exec(&txn)
                .await
                .map_err(db(OP))?
            {
                TryInsertResult::Inserted(r) => AgencyUnitId(r.last_insert_id),
                _ => return Err(StoreError::Rule { field: "name", rule: "agency_unit_exists" }),
            };
            let detail = serde_json::json!({ "id": id.0, "kind": kind, "jurisdiction": jurisdiction.as_str() });
            append(&txn, "registry.agency_unit.create", format!("agency_unit/{id}"), actor, at, detail).await?;
            Ok(id)
        }
        .await;
        finish(txn, result, OP).await
    }
}

/// Appends one audit event of an agency-registry change in `txn`.
async fn append(
    txn: &DatabaseTransaction,
    action: &str,
    object: String,
    actor: &str,
    at: Timestamp,
    detail: serde_json::Value,
) -> Result<(), StoreError> {
    let batch = WriteBatch {
        audit: vec![NewAudit {
            at,
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: AuditTarget::Object(object),
            estate_id: None,
            detail_json: detail.to_string(),
        }],
        ..WriteBatch::default()
    };
    audit::append(txn, &batch, &[]).await
}

fn unit_from_row(r: agency_unit::Model) -> Result<AgencyUnit, StoreError> {
    let jurisdiction = DivisionCode::parse(&r.jurisdiction)
        .map_err(|_| StoreError::Corrupt { what: "agency_units.jurisdiction", detail: "not a division code".into() })?;
    Ok(AgencyUnit { id: AgencyUnitId(r.id), kind: r.kind, name: r.name, jurisdiction })
}
