//! New records: admission at a place, need-to-know on input, type checks, references, the hook,
//! and one write with the record's times and reference-index rows.

use serde_json::Value;

use jiayuan_domain::{Place, RecordId};
use jiayuan_plugin_api::{CreateCall, FieldViolation, RecordKind};
use jiayuan_schema::projection::visible_fields;
use jiayuan_schema::{Mode, Reference, check_object};
use jiayuan_store::{AlertTarget, NewRecord, ParentRef, StoreError, StoredRecord, WriteBatch};

use super::context::{self, CallContext};
use super::outcome::{alert_row, audit_changes, index_keys, refs_of, times};
use super::view::viewer;
use super::{Caller, CreateRequest, Engine, EngineError, RecordView};

impl Engine {
    /// The record kind `kind` of `plugin` as `caller` may see it: a kind the caller's audience
    /// may not see does not exist for them.
    pub(super) fn visible_kind<'m>(
        &self,
        caller: &Caller,
        plugin: &str,
        manifest: &'m jiayuan_plugin_api::Manifest,
        kind: &str,
    ) -> Result<&'m RecordKind, EngineError> {
        manifest
            .kind(kind)
            .filter(|k| viewer(caller, false).sees_kind(k))
            .ok_or_else(|| EngineError::UnknownKind { plugin: plugin.to_owned(), kind: kind.to_owned() })
    }

    /// Creates a record.
    pub async fn create(&self, caller: &Caller, req: CreateRequest) -> Result<RecordView, EngineError> {
        let handle = self.handle(&req.plugin)?;
        let manifest = handle.manifest();
        let kind = self.visible_kind(caller, &req.plugin, manifest, &req.kind)?;
        let parent = self.parent_of(&req, kind).await?;
        // A child sits where its parent sits.
        let place = parent.as_ref().map_or_else(|| req.place.clone(), |p| p.place.clone());
        Engine::check_place_kind(kind, &place)?;
        let (info, name) = self.admit(caller, &req.plugin, &place).await?;
        let now = self.clock.now();
        let times = times(kind, now, req.occurred_at, req.backdate_reason.as_deref())?;
        let fields = visible_fields(&kind.fields, &viewer(caller, false));
        let checked =
            check_object(&fields, &req.data, Mode::Create, now.shanghai_date()).map_err(EngineError::Invalid)?;
        let ctx = self.context(caller, &handle, Some(place.clone()), info.firm);
        if let Some(e) = name.estate {
            ctx.remember_estate(e);
        }
        self.resolve(&ctx, &req.plugin, &place, &checked.references).await?;
        let mut call = CreateCall::new(
            &req.kind,
            place.clone(),
            Value::Object(checked.data.clone()).to_string(),
            times.occurred_at,
        );
        if let Some(p) = parent.clone() {
            call = call.with_parent(context::to_record(p));
        }
        let outcome = self.watch(&handle, handle.on_create(&ctx, call).await).await?;
        if !outcome.refusal.is_empty() {
            self.write_refusal_alerts(&req.plugin, Some(&place), &outcome.alerts, now).await?;
            return Err(EngineError::Invalid(outcome.refusal));
        }
        let data = self.final_data(manifest, kind, outcome.data_json.as_deref(), checked.data)?;
        let state = match &outcome.state {
            Some(s) if kind.workflow.has_state(s) => s.clone(),
            Some(s) => {
                return Err(EngineError::PluginContract {
                    plugin: req.plugin.clone(),
                    detail: format!("create hook chose undeclared state `{s}` for `{}`", kind.id),
                });
            }
            None => kind.workflow.initial.clone(),
        };
        let parent_id = parent.as_ref().map(|p| p.id);
        let mut batch = WriteBatch::default();
        batch.creates.push(NewRecord {
            plugin: req.plugin.clone(),
            kind: kind.id.clone(),
            place: place.clone(),
            parent: parent_id.map(ParentRef::Existing),
            state,
            keys: index_keys(&kind.keys, &data),
            refs: refs_of(&req.plugin, kind, &data, parent_id),
            data_json: Value::Object(data).to_string(),
            at: now,
            occurred_at: times.occurred_at,
            backdated_reason: times.backdated_reason.clone(),
            actor: caller.name.clone(),
        });
        self.add_children(
            &mut batch,
            manifest,
            kind,
            ParentRef::InBatch(0),
            &place,
            &outcome,
            &times,
            now,
            &caller.name,
        )?;
        for a in &outcome.alerts {
            batch.alerts.push(alert_row(
                &req.plugin,
                Some(AlertTarget::InBatch(0)),
                Some(&place),
                a,
                format!("{}/{}/{}", req.plugin, request_of(&ctx), a.key),
                now,
            ));
        }
        let first = batch.creates.first().map(|r| (r.state.clone(), r.data_json.clone()));
        audit_changes(&mut batch, None);
        let result = self.store.write(batch).await.map_err(|e| self.key_conflict(caller, kind, e))?;
        let (Some(id), Some((state, data_json))) = (result.created.first().copied(), first) else {
            return Err(EngineError::PluginContract {
                plugin: req.plugin.clone(),
                detail: "the store returned no id for the created record".into(),
            });
        };
        // What was written, as the store keeps it (records start at version 1).
        let stored = StoredRecord {
            id,
            plugin: req.plugin,
            kind: req.kind,
            place,
            parent_id,
            state,
            data_json,
            created_at: now,
            updated_at: now,
            state_entered_at: now,
            version: 1,
            created_by: caller.name.clone(),
            assignee: None,
            occurred_at: times.occurred_at,
        };
        Ok(RecordView::project(Some(manifest), stored, &viewer(caller, false)).0)
    }

    /// A unique-key conflict as the caller may learn of it: a key on a field their audience may
    /// not see is a conflict that names no field (what the field holds stays unconfirmed).
    pub(super) fn key_conflict(&self, caller: &Caller, kind: &RecordKind, e: StoreError) -> EngineError {
        match e {
            StoreError::UniqueKey { field, .. }
                if kind.field(&field).is_some_and(|f| !viewer(caller, false).sees(f)) =>
            {
                EngineError::Conflict("a record with the same key already exists (记录已存在)".into())
            }
            other => other.into(),
        }
    }

    async fn parent_of(&self, req: &CreateRequest, kind: &RecordKind) -> Result<Option<StoredRecord>, EngineError> {
        match (&kind.parent, req.parent_id) {
            (None, None) => Ok(None),
            (None, Some(_)) => Err(EngineError::Invalid(vec![FieldViolation::new(
                "parent_id",
                "unexpected_parent",
                format!("`{}` 记录没有上级记录", kind.id),
                format!("records of kind `{}` have no parent", kind.id),
            )])),
            (Some(parent_kind), None) => Err(EngineError::Invalid(vec![FieldViolation::new(
                "parent_id",
                "required",
                format!("`{}` 记录必须指定上级 `{parent_kind}` 记录", kind.id),
                format!("records of kind `{}` need a parent `{parent_kind}` record", kind.id),
            )])),
            (Some(parent_kind), Some(pid)) => {
                let p = self.store.record(&req.plugin, pid).await?;
                match p {
                    Some(p) if &p.kind == parent_kind && p.place == req.place => Ok(Some(p)),
                    _ => Err(EngineError::Invalid(vec![FieldViolation::new(
                        "parent_id",
                        "not_found",
                        format!("此处没有编号为 {pid} 的 `{parent_kind}` 记录"),
                        format!("no `{parent_kind}` record {pid} at {}", req.place),
                    )])),
                }
            }
        }
    }

    /// Checks that referenced persons, houses, records and agency units exist (and houses and
    /// records belong to the place).
    pub(super) async fn resolve(
        &self,
        ctx: &CallContext,
        plugin: &str,
        place: &Place,
        refs: &[Reference],
    ) -> Result<(), EngineError> {
        let mut errors = Vec::new();
        for r in refs {
            match r {
                Reference::Person { field, id } => {
                    if ctx.person(jiayuan_domain::PersonId(*id)).await?.is_none() {
                        errors.push(FieldViolation::new(
                            field,
                            "not_found",
                            format!("字段 `{field}`：人员 {id} 不存在"),
                            format!("field `{field}`: person {id} does not exist"),
                        ));
                    }
                }
                Reference::House { field, id } => {
                    let h = ctx.house(jiayuan_domain::HouseId(*id)).await?;
                    if h.is_none_or(|h| h.estate_id.is_none() || h.estate_id != place.estate()) {
                        errors.push(FieldViolation::new(
                            field,
                            "not_found",
                            format!("字段 `{field}`：此处没有房屋 {id}"),
                            format!("field `{field}`: house {id} does not exist at {place}"),
                        ));
                    }
                }
                Reference::Record { field, kind, id } => {
                    let rec = self.store.record(plugin, RecordId(*id)).await?;
                    if rec.is_none_or(|r| &r.kind != kind || &r.place != place) {
                        errors.push(FieldViolation::new(
                            field,
                            "not_found",
                            format!("字段 `{field}`：此处没有编号为 {id} 的 `{kind}` 记录"),
                            format!("field `{field}`: no `{kind}` record {id} at {place}"),
                        ));
                    }
                }
                Reference::AgencyUnit { field, kind, id } => {
                    let unit = self.store.agency_unit(jiayuan_domain::AgencyUnitId(*id)).await?;
                    let fits = unit.is_some_and(|u| kind == jiayuan_plugin_api::ANY_AGENCY || &u.kind == kind);
                    if !fits {
                        errors.push(FieldViolation::new(
                            field,
                            "not_found",
                            format!("字段 `{field}`：职能部门单位 {id} 不存在或类别不符"),
                            format!("field `{field}`: agency unit {id} does not exist or is not of kind `{kind}`"),
                        ));
                    }
                }
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(EngineError::Invalid(errors)) }
    }
}

fn request_of(ctx: &CallContext) -> String {
    use jiayuan_plugin_api::HostContext;
    ctx.scope().request_id.clone()
}
