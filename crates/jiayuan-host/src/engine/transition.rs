//! Transitions: who may fire them (the transition's actors, then its guards), moves to another
//! place, and the record's assignee.

use serde_json::{Map, Value};

use jiayuan_domain::{Place, RecordId};
use jiayuan_plugin_api::{Actor, FieldViolation, TransitionCall};
use jiayuan_schema::guard::{Firer, Subject, may_fire};
use jiayuan_schema::projection::visible_fields;
use jiayuan_schema::{Mode, check_object};
use jiayuan_store::{AlertTarget, ParentRef, RecordFilter, RecordUpdate, StoredRecord, WriteBatch};

use super::context;
use super::outcome::{alert_row, audit_changes, index_keys, refs_of, times};
use super::places::place_not_found;
use super::view::viewer;
use super::{Caller, Engine, EngineError, RecordView, TransitionRequest, caller_audience_name};
use crate::access::Action;

/// Most children that move with a record in one transition.
const MAX_MOVING_CHILDREN: u32 = 1000;

impl Engine {
    /// A stored record of `plugin` that `caller` may act on: in reach (else "not found") and of
    /// a kind the caller's audience may see.
    async fn record_for_write(
        &self,
        caller: &Caller,
        plugin: &str,
        id: RecordId,
    ) -> Result<(StoredRecord, crate::enablement::PlaceInfo, super::PlaceName), EngineError> {
        let absent = || EngineError::NotFound { what: "record", id: id.to_string() };
        let record = self.store.record(plugin, id).await?.ok_or_else(absent)?;
        let (info, name) = self.place_info(&record.place).await.map_err(|e| match e {
            EngineError::NotFound { .. } => absent(),
            other => other,
        })?;
        self.authorize_at(caller, Action::WriteRecords, plugin, &info, absent)?;
        Ok((record, info, name))
    }

    /// Fires a transition.
    pub async fn transition(&self, caller: &Caller, req: TransitionRequest) -> Result<RecordView, EngineError> {
        let handle = self.handle(&req.plugin)?;
        let manifest = handle.manifest();
        // Scope first (404, as if absent), then the transition's actors and guards (403), and
        // only then enablement (409): the order of `access::authorize`, whose role check the
        // manifest's actors refine.
        let (record, info, name) = self.record_for_write(caller, &req.plugin, req.id).await?;
        let kind = self
            .visible_kind(caller, &req.plugin, manifest, &record.kind)
            .map_err(|_| EngineError::NotFound { what: "record", id: req.id.to_string() })?;
        let Some(t) = kind.workflow.transition(&req.transition) else {
            let known = kind.workflow.transitions.iter().map(|t| t.id.as_str()).collect::<Vec<_>>().join(", ");
            return Err(EngineError::Invalid(vec![FieldViolation::new(
                "transition",
                "unknown_transition",
                format!("`{}` 没有此操作；可用：{known}", kind.id),
                format!("`{}` has no such transition; known: {known}", kind.id),
            )]));
        };
        if !t.from.contains(&record.state) {
            return Err(EngineError::TransitionNotAllowed {
                kind: kind.id.clone(),
                id: record.id,
                transition: t.id.clone(),
                state: record.state.clone(),
                allowed: t.from.join(", "),
            });
        }
        let stored: Map<String, Value> = serde_json::from_str(&record.data_json).unwrap_or_default();
        let Some(actor) = caller.actor() else {
            return Err(EngineError::Forbidden { who: caller_audience_name(caller), what: format!("fire `{}`", t.id) });
        };
        let system = matches!(actor, Actor::System);
        let firer = Firer {
            actor: &actor,
            account: (!system).then_some(caller.name.as_str()),
            agency_unit: caller.agency_unit.map(|u| u.0),
        };
        let subject = Subject { created_by: &record.created_by, assignee: record.assignee.as_deref(), data: &stored };
        if let Err(refusal) = may_fire(t, &firer, &subject) {
            return Err(EngineError::Forbidden {
                who: caller_audience_name(caller),
                what: format!("fire `{}`: {}", t.id, refusal.message().1),
            });
        }
        self.require_enabled(caller, &req.plugin, &info, &name).await?;
        if let Some(v) = req.expected_version
            && v != record.version
        {
            return Err(EngineError::Conflict(format!(
                "record {} is at version {}, not {v}; reload and retry",
                record.id, record.version
            )));
        }
        // Where the record will sit: a move names a place within reach where the item runs.
        let target = match (&req.move_to, t.moves) {
            (Some(to), true) => {
                Engine::check_place_kind(kind, to)?;
                let (to_info, to_name) = self.place_info(to).await?;
                self.authorize_at(caller, Action::WriteRecords, &req.plugin, &to_info, || place_not_found(to))?;
                self.require_enabled(caller, &req.plugin, &to_info, &to_name).await?;
                Some((to.clone(), to_info, to_name))
            }
            (None, true) => {
                return Err(EngineError::Invalid(vec![FieldViolation::new(
                    "move_to",
                    "required",
                    "此操作须指定迁往的位置（move_to）".to_owned(),
                    format!("`{}` moves the record: name the place it moves to in `move_to`", t.id),
                )]));
            }
            (Some(_), false) => {
                return Err(EngineError::Invalid(vec![FieldViolation::new(
                    "move_to",
                    "not_a_move",
                    "此操作不迁移记录".to_owned(),
                    format!("`{}` does not move the record: drop `move_to`", t.id),
                )]));
            }
            (None, false) => None,
        };
        let now = self.clock.now();
        let times = times(kind, now, req.occurred_at, req.backdate_reason.as_deref())?;
        let fields = if system { t.input.clone() } else { visible_fields(&t.input, &viewer(caller, false)) };
        let input = check_object(&fields, &req.input, Mode::TransitionInput, now.shanghai_date())
            .map_err(EngineError::Invalid)?;
        let (place, firm, estate_row) = match &target {
            Some((to, to_info, to_name)) => (to.clone(), to_info.firm, to_name.estate.clone()),
            None => (record.place.clone(), info.firm, name.estate.clone()),
        };
        // A move's hook works where the record is going (its rules there, its counts there).
        let ctx = self.context(caller, &handle, Some(place.clone()), firm);
        if let Some(e) = estate_row {
            ctx.remember_estate(e);
        }
        self.resolve(&ctx, &req.plugin, &place, &input.references).await?;
        let mut call = TransitionCall::new(
            context::to_record(record.clone()),
            &t.id,
            Value::Object(input.data.clone()).to_string(),
            times.occurred_at,
        );
        if let Some((to, _, _)) = &target {
            call = call.with_move(to.clone());
        }
        let outcome = self.watch(&handle, handle.on_transition(&ctx, call).await).await?;
        if !outcome.refusal.is_empty() {
            self.write_refusal_alerts(&req.plugin, Some(&record.place), &outcome.alerts, now).await?;
            return Err(EngineError::Invalid(outcome.refusal));
        }
        let mut merged = stored;
        merged.extend(input.data);
        let data = match outcome.data_json.as_deref() {
            Some(text) => self.final_data(manifest, kind, Some(text), Map::new())?,
            None => merged,
        };
        let new_state = t.target(&record.state).to_owned();
        let move_to = target.as_ref().map(|(to, _, _)| to.clone());
        let mut batch = WriteBatch::default();
        batch.updates.push(RecordUpdate {
            plugin: req.plugin.clone(),
            id: record.id,
            expected_version: record.version,
            action: t.id.clone(),
            new_state: new_state.clone(),
            keys: index_keys(&kind.keys, &data),
            refs: refs_of(&req.plugin, kind, &data, record.parent_id),
            data_json: Value::Object(data).to_string(),
            at: now,
            occurred_at: times.occurred_at,
            backdated_reason: times.backdated_reason.clone(),
            move_to: move_to.clone(),
            assignee: None,
            actor: caller.name.clone(),
        });
        if let Some(to) = &move_to {
            self.move_children(&mut batch, &req.plugin, manifest, record.id, to, &times, now, &caller.name).await?;
        }
        self.add_children(
            &mut batch,
            manifest,
            kind,
            ParentRef::Existing(record.id),
            &place,
            &outcome,
            &times,
            now,
            &caller.name,
        )?;
        for a in &outcome.alerts {
            batch.alerts.push(alert_row(
                &req.plugin,
                Some(AlertTarget::Existing(record.id)),
                Some(&place),
                a,
                format!("{}/{}/{}", req.plugin, record.id, a.key),
                now,
            ));
        }
        let written = batch.updates.first().map(|u| u.data_json.clone());
        audit_changes(&mut batch, Some((&record.state, &record.place)));
        self.store.write(batch).await.map_err(|e| self.key_conflict(caller, kind, e))?;
        let Some(data_json) = written else {
            return Err(EngineError::NotFound { what: "record", id: req.id.to_string() });
        };
        // What was written: the store bumps the version by one on every update.
        let state_entered_at = if new_state == record.state { record.state_entered_at } else { now };
        let stored = StoredRecord {
            state: new_state,
            data_json,
            updated_at: now,
            state_entered_at,
            occurred_at: times.occurred_at,
            version: record.version + 1,
            place,
            ..record
        };
        Ok(RecordView::project(Some(manifest), stored, &viewer(caller, false)).0)
    }

    /// Children move with their parent, keeping state, data and history (one event each).
    #[allow(clippy::too_many_arguments)]
    async fn move_children(
        &self,
        batch: &mut WriteBatch,
        plugin: &str,
        manifest: &jiayuan_plugin_api::Manifest,
        parent: RecordId,
        to: &Place,
        times: &super::outcome::Times,
        now: jiayuan_domain::Timestamp,
        actor: &str,
    ) -> Result<(), EngineError> {
        let children = self
            .store
            .records(&RecordFilter {
                plugin: plugin.to_owned(),
                parent_id: Some(parent),
                limit: MAX_MOVING_CHILDREN,
                ..RecordFilter::default()
            })
            .await?;
        for c in children {
            let Some(kind) = manifest.kind(&c.kind) else { continue };
            let data: Map<String, Value> = serde_json::from_str(&c.data_json).unwrap_or_default();
            batch.updates.push(RecordUpdate {
                plugin: plugin.to_owned(),
                id: c.id,
                expected_version: c.version,
                action: "move_with_parent".into(),
                new_state: c.state.clone(),
                keys: index_keys(&kind.keys, &data),
                refs: refs_of(plugin, kind, &data, c.parent_id),
                data_json: c.data_json.clone(),
                at: now,
                occurred_at: times.occurred_at,
                backdated_reason: times.backdated_reason.clone(),
                move_to: Some(to.clone()),
                assignee: None,
                actor: actor.to_owned(),
            });
        }
        Ok(())
    }

    /// 指派 assigns record `id` to the account `assignee` (or clears it with `None`): any caller
    /// who may write the record; the assignee must be an active account that reaches the
    /// record's place and works on the item. Evented and audited like a transition.
    pub async fn assign(
        &self,
        caller: &Caller,
        plugin: &str,
        id: RecordId,
        assignee: Option<&str>,
        expected_version: Option<i64>,
    ) -> Result<RecordView, EngineError> {
        let handle = self.handle(plugin)?;
        let manifest = handle.manifest();
        let (record, info, _) = self.record_for_write(caller, plugin, id).await?;
        let kind = self
            .visible_kind(caller, plugin, manifest, &record.kind)
            .map_err(|_| EngineError::NotFound { what: "record", id: id.to_string() })?;
        if caller.actor().is_none() {
            return Err(EngineError::Forbidden { who: caller_audience_name(caller), what: "assign records".into() });
        }
        if manifest.kind(&record.kind).is_some_and(|k| k.workflow.is_terminal(&record.state)) {
            return Err(EngineError::Conflict(format!(
                "record {id} is closed (state `{}`): nothing to assign",
                record.state
            )));
        }
        if let Some(v) = expected_version
            && v != record.version
        {
            return Err(EngineError::Conflict(format!(
                "record {id} is at version {}, not {v}; reload and retry",
                record.version
            )));
        }
        if let Some(login) = assignee {
            let bad = || {
                EngineError::Invalid(vec![FieldViolation::new(
                    "assignee",
                    "not_eligible",
                    "承办人须为可办理此记录的有效账号".to_owned(),
                    "the assignee must be an active account that reaches the record's place and works on the item"
                        .to_owned(),
                )])
            };
            let account = self.store.account_by_login(login).await?.filter(|a| !a.disabled).ok_or_else(bad)?;
            let them = Caller::account(&account.login, account.role, &account.scope, account.items.clone());
            if account.role == jiayuan_domain::Role::Auditor || !them.reach.covers(&info) || !them.has_item(plugin) {
                return Err(bad());
            }
        }
        let now = self.clock.now();
        let data: Map<String, Value> = serde_json::from_str(&record.data_json).unwrap_or_default();
        let mut batch = WriteBatch::default();
        batch.updates.push(RecordUpdate {
            plugin: plugin.to_owned(),
            id: record.id,
            expected_version: record.version,
            action: "assign".into(),
            new_state: record.state.clone(),
            keys: index_keys(&kind.keys, &data),
            refs: refs_of(plugin, kind, &data, record.parent_id),
            data_json: record.data_json.clone(),
            at: now,
            occurred_at: now,
            backdated_reason: None,
            move_to: None,
            assignee: Some(assignee.map(str::to_owned)),
            actor: caller.name.clone(),
        });
        audit_changes(&mut batch, Some((&record.state, &record.place)));
        self.store.write(batch).await?;
        let stored = StoredRecord {
            assignee: assignee.map(str::to_owned),
            updated_at: now,
            version: record.version + 1,
            ..record
        };
        Ok(RecordView::project(Some(manifest), stored, &viewer(caller, false)).0)
    }

    /// Fires a transition as the host itself (deadline rules). Used by the scheduler.
    pub(crate) async fn system_transition(
        &self,
        record: &StoredRecord,
        transition: &str,
    ) -> Result<RecordView, EngineError> {
        let mut req = TransitionRequest::new(&record.plugin, record.id, transition, Value::Object(Map::new()));
        req.expected_version = Some(record.version);
        self.transition(&Caller::system("scheduler"), req).await
    }
}
