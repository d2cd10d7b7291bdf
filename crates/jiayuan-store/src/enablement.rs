//! Run-time enablement overrides: the district office switches a service item on or off for a
//! scope through the admin API; these rows win over the configuration file.
//!
//! A scope is stored as `scope_kind` (`district`, `street`, `estate`, `firm`) + `scope_code`
//! (empty for the district, the 12-digit street code, or the estate / firm id in decimal).

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
};

use jiayuan_domain::{DivisionCode, EstateId, FirmId, Timestamp};

use crate::audit::{self, AuditTarget, NewAudit};
use crate::convert::parse_code;
use crate::entity::enablement;
use crate::error::{StoreError, db};
use crate::records::WriteBatch;
use crate::store::{Store, finish};

/// Where an enablement override applies.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EnablementScope {
    /// The whole district.
    District,
    /// One 街道 street.
    Street(DivisionCode),
    /// One estate.
    Estate(EstateId),
    /// Every estate a firm serves.
    Firm(FirmId),
}

impl EnablementScope {
    /// The stored `(scope_kind, scope_code)` pair.
    fn to_columns(&self) -> (&'static str, String) {
        match self {
            EnablementScope::District => ("district", String::new()),
            EnablementScope::Street(code) => ("street", code.as_str().to_owned()),
            EnablementScope::Estate(id) => ("estate", id.0.to_string()),
            EnablementScope::Firm(id) => ("firm", id.0.to_string()),
        }
    }

    fn from_columns(kind: &str, code: &str) -> Result<EnablementScope, StoreError> {
        const WHAT: &str = "enablement_override.scope";
        let id = || -> Result<i64, StoreError> {
            code.parse::<i64>()
                .map_err(|_| StoreError::Corrupt { what: WHAT, detail: format!("`{code}` is not an id") })
        };
        match kind {
            "district" if code.is_empty() => Ok(EnablementScope::District),
            "street" => Ok(EnablementScope::Street(parse_code(WHAT, code)?)),
            "estate" => Ok(EnablementScope::Estate(EstateId(id()?))),
            "firm" => Ok(EnablementScope::Firm(FirmId(id()?))),
            _ => Err(StoreError::Corrupt { what: WHAT, detail: format!("unknown scope `{kind}`/`{code}`") }),
        }
    }
}

/// A run-time override of whether a service item is enabled in a scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnablementOverride {
    /// The service item (plugin id).
    pub item: String,
    /// Where it applies.
    pub scope: EnablementScope,
    /// Enabled or disabled.
    pub enabled: bool,
    /// Why (shown in the admin UI and audit log).
    pub reason: String,
    /// Who changed it.
    pub changed_by: String,
    /// When.
    pub changed_at: Timestamp,
}

impl Store {
    /// Stores an override, replacing the one for the same item and scope, and appends an
    /// `enablement.set` audit event by `o.changed_by` in the same transaction.
    pub async fn set_enablement(&self, o: &EnablementOverride) -> Result<(), StoreError> {
        const OP: &str = "set enablement override";
        let (scope_kind, scope_code) = o.scope.to_columns();
        let model = enablement::ActiveModel {
            id: NotSet,
            item: Set(o.item.clone()),
            scope_kind: Set(scope_kind.to_owned()),
            scope_code: Set(scope_code),
            enabled: Set(o.enabled),
            reason: Set(o.reason.clone()),
            changed_by: Set(o.changed_by.clone()),
            changed_at: Set(o.changed_at.0),
        };
        let txn = self.begin_write(OP).await?;
        let result = enablement::Entity::insert(model)
            .on_conflict(
                OnConflict::columns([
                    enablement::Column::Item,
                    enablement::Column::ScopeKind,
                    enablement::Column::ScopeCode,
                ])
                .update_columns([
                    enablement::Column::Enabled,
                    enablement::Column::Reason,
                    enablement::Column::ChangedBy,
                    enablement::Column::ChangedAt,
                ])
                .to_owned(),
            )
            .exec_without_returning(&txn)
            .await
            .map(|_| ())
            .map_err(db(OP));
        let result = match result {
            Ok(()) => {
                let detail = serde_json::json!({ "enabled": o.enabled });
                audit::append(
                    &txn,
                    &audit_batch("enablement.set", &o.item, &o.scope, &o.changed_by, o.changed_at, detail),
                    &[],
                )
                .await
            }
            Err(e) => Err(e),
        };
        finish(txn, result, OP).await
    }

    /// Removes the override for `item` in `scope`; `false` if there was none. A removal appends an
    /// `enablement.clear` audit event by `actor` in the same transaction.
    pub async fn clear_enablement(
        &self,
        item: &str,
        scope: &EnablementScope,
        actor: &str,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        const OP: &str = "clear enablement override";
        let (scope_kind, scope_code) = scope.to_columns();
        let txn = self.begin_write(OP).await?;
        let result = enablement::Entity::delete_many()
            .filter(enablement::Column::Item.eq(item))
            .filter(enablement::Column::ScopeKind.eq(scope_kind))
            .filter(enablement::Column::ScopeCode.eq(scope_code))
            .exec(&txn)
            .await
            .map(|r| r.rows_affected > 0)
            .map_err(db(OP));
        let result = match result {
            Ok(true) => {
                let batch = audit_batch("enablement.clear", item, scope, actor, at, serde_json::json!({}));
                audit::append(&txn, &batch, &[]).await.map(|()| true)
            }
            other => other,
        };
        finish(txn, result, OP).await
    }

    /// Every override, ordered by item, then scope kind and code.
    pub async fn enablement_overrides(&self) -> Result<Vec<EnablementOverride>, StoreError> {
        let rows = enablement::Entity::find()
            .order_by_asc(enablement::Column::Item)
            .order_by_asc(enablement::Column::ScopeKind)
            .order_by_asc(enablement::Column::ScopeCode)
            .all(&self.reader)
            .await
            .map_err(db("list enablement overrides"))?;
        rows.into_iter()
            .map(|r| {
                Ok(EnablementOverride {
                    scope: EnablementScope::from_columns(&r.scope_kind, &r.scope_code)?,
                    item: r.item,
                    enabled: r.enabled,
                    reason: r.reason,
                    changed_by: r.changed_by,
                    changed_at: Timestamp(r.changed_at),
                })
            })
            .collect()
    }
}

/// A batch holding only the audit event of an enablement change (its reason is free text, so it
/// stays out of the audit detail).
fn audit_batch(
    action: &str,
    item: &str,
    scope: &EnablementScope,
    actor: &str,
    at: Timestamp,
    mut detail: serde_json::Value,
) -> WriteBatch {
    let (kind, code) = scope.to_columns();
    if let Some(map) = detail.as_object_mut() {
        map.insert("item".into(), item.into());
        map.insert("scope".into(), kind.into());
        map.insert("code".into(), code.clone().into());
    }
    let object =
        if code.is_empty() { format!("enablement/{item}/{kind}") } else { format!("enablement/{item}/{kind}/{code}") };
    WriteBatch {
        audit: vec![NewAudit {
            at,
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: AuditTarget::Object(object),
            estate_id: match scope {
                EnablementScope::Estate(e) => Some(*e),
                _ => None,
            },
            detail_json: detail.to_string(),
        }],
        ..WriteBatch::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_through_their_columns() {
        let street = DivisionCode::parse("440303001000").expect("valid street code");
        for scope in [
            EnablementScope::District,
            EnablementScope::Street(street),
            EnablementScope::Estate(EstateId(42)),
            EnablementScope::Firm(FirmId(7)),
        ] {
            let (kind, code) = scope.to_columns();
            assert_eq!(EnablementScope::from_columns(kind, &code).ok(), Some(scope));
        }
        assert!(matches!(EnablementScope::from_columns("estate", "x1"), Err(StoreError::Corrupt { .. })));
        assert!(matches!(EnablementScope::from_columns("planet", ""), Err(StoreError::Corrupt { .. })));
    }
}
