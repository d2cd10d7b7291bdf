//! Reads: one record, its unmasked form, its history, pages of records, the inbox, alerts, KPIs
//! and the reference index. Every answer goes through the one projection (see `view`).

use std::collections::HashSet;

use jiayuan_domain::{Date, EstateId, Place, RecordId};
use jiayuan_plugin_api::{KpiCall, KpiValue, Manifest};
use jiayuan_store::{AlertFilter, InboxFilter, PlaceSet, RecordFilter, StoredAlert, StoredRecord};

use super::places::place_not_found;
use super::view::{EventView, project_events, viewer};
use super::{Caller, Engine, EngineError, ListRequest, Page, RecordView, RefKind, ReferringRecord};
use crate::access::{self, Action, Target};

/// Most inbox entries one answer holds.
const MAX_INBOX: u32 = 200;

impl Engine {
    /// A stored record `caller` may read: in reach, of a kind their audience may see (otherwise
    /// "not found", as if absent).
    async fn readable(&self, caller: &Caller, plugin: &str, id: RecordId) -> Result<StoredRecord, EngineError> {
        self.handle(plugin)?;
        let absent = || EngineError::NotFound { what: "record", id: id.to_string() };
        let r = self.store.record(plugin, id).await?.ok_or_else(absent)?;
        let (info, _) = self.place_info(&r.place).await.map_err(|_| absent())?;
        self.authorize_at(caller, Action::ReadRecords, plugin, &info, absent)?;
        Ok(r)
    }

    fn kind_visible(&self, caller: &Caller, manifest: &Manifest, kind: &str) -> bool {
        manifest.kind(kind).is_none_or(|k| viewer(caller, false).sees_kind(k))
    }

    /// One record, as the caller may see it. Records of disabled items stay readable.
    pub async fn get(&self, caller: &Caller, plugin: &str, id: RecordId) -> Result<RecordView, EngineError> {
        let handle = self.handle(plugin)?;
        let r = self.readable(caller, plugin, id).await?;
        if !self.kind_visible(caller, handle.manifest(), &r.kind) {
            return Err(EngineError::NotFound { what: "record", id: id.to_string() });
        }
        Ok(RecordView::project(Some(handle.manifest()), r, &viewer(caller, false)).0)
    }

    /// 查看明文 one record with what the caller may unmask in clear: personal fields for roles
    /// that may unmask, sensitive fields only for the audiences the field names (never a firm).
    /// Answers the view and the names of the fields shown in clear, for the audit the caller
    /// must append before answering.
    pub async fn unmask(
        &self,
        caller: &Caller,
        plugin: &str,
        id: RecordId,
    ) -> Result<(RecordView, Vec<String>), EngineError> {
        let handle = self.handle(plugin)?;
        access::authorize(caller, Action::Unmask, Target::default()).map_err(|d| {
            super::refused(
                d,
                || EngineError::UnknownPlugin(plugin.to_owned()),
                || EngineError::UnknownPlugin(plugin.to_owned()),
            )
        })?;
        let r = self.readable(caller, plugin, id).await?;
        if !self.kind_visible(caller, handle.manifest(), &r.kind) {
            return Err(EngineError::NotFound { what: "record", id: id.to_string() });
        }
        Ok(RecordView::project(Some(handle.manifest()), r, &viewer(caller, true)))
    }

    /// A record's history, oldest first, as the caller may see it.
    pub async fn history(&self, caller: &Caller, plugin: &str, id: RecordId) -> Result<Vec<EventView>, EngineError> {
        let handle = self.handle(plugin)?;
        let view = self.get(caller, plugin, id).await?;
        let events = self.store.events(plugin, id).await?;
        Ok(project_events(handle.manifest().kind(&view.kind), events, &viewer(caller, false)))
    }

    /// Refuses a key filter on a field that is not a declared key of the kind, or that the
    /// caller's audience may not see — both alike, so a filter is never an oracle.
    fn check_key_filter(
        &self,
        caller: &Caller,
        manifest: &Manifest,
        kind: Option<&str>,
        key: Option<&(String, String)>,
    ) -> Result<(), EngineError> {
        let Some((field, _)) = key else { return Ok(()) };
        let v = viewer(caller, false);
        let kinds: Vec<_> = match kind {
            Some(k) => manifest.kind(k).into_iter().collect(),
            None => manifest.record_kinds.iter().collect(),
        };
        let allowed: Vec<&str> = kinds
            .iter()
            .filter(|k| v.sees_kind(k))
            .flat_map(|k| k.keys.iter().filter(|key| k.field(&key.field).is_some_and(|f| v.sees(f))))
            .map(|key| key.field.as_str())
            .collect();
        if allowed.contains(&field.as_str()) {
            Ok(())
        } else {
            Err(EngineError::Invalid(vec![jiayuan_schema::unknown_field(field, &allowed.join(", "))]))
        }
    }

    /// Lists records of a plugin, a page at a time.
    pub async fn list(&self, caller: &Caller, plugin: &str, req: ListRequest) -> Result<Page, EngineError> {
        let handle = self.handle(plugin)?;
        let manifest = handle.manifest();
        self.check_item(caller, plugin)?;
        if let Some(kind) = &req.kind {
            self.visible_kind(caller, plugin, manifest, kind)?;
        } else if manifest.record_kinds.iter().any(|k| !viewer(caller, false).sees_kind(k)) {
            return Err(EngineError::Invalid(vec![jiayuan_plugin_api::FieldViolation::new(
                "kind",
                "required",
                "请指定记录类型（kind）".to_owned(),
                "name the record kind to list (`kind`)".to_owned(),
            )]));
        }
        self.check_key_filter(caller, manifest, req.kind.as_deref(), req.key.as_ref())?;
        let limit = req.limit.unwrap_or(50).clamp(1, 200);
        let reach = self.places_in_reach(caller).await?;
        let asked = match (req.estate_id, &req.grid_cell) {
            (None, None) => None,
            (e, g) => Some(PlaceSet { estates: e.into_iter().collect(), grid_cells: g.iter().cloned().collect() }),
        };
        let places = match (reach, asked) {
            (None, asked) => asked,
            (Some(reach), None) => Some(reach),
            (Some(reach), Some(asked)) => Some(PlaceSet {
                estates: asked.estates.into_iter().filter(|e| reach.estates.contains(e)).collect(),
                grid_cells: asked.grid_cells.into_iter().filter(|g| reach.grid_cells.contains(g)).collect(),
            }),
        };
        let rows = self
            .store
            .records(&RecordFilter {
                plugin: plugin.to_owned(),
                kind: req.kind,
                places,
                states: req.states,
                key: req.key,
                parent_id: req.parent_id,
                order: req.order,
                after_position: req.after,
                limit: limit + 1,
                ..RecordFilter::default()
            })
            .await?;
        let more = rows.len() > limit as usize;
        let rows: Vec<StoredRecord> = rows.into_iter().take(limit as usize).collect();
        let next = if more {
            rows.last().map(|r| jiayuan_store::RecordPosition { id: r.id, updated_at: r.updated_at })
        } else {
            None
        };
        let v = viewer(caller, false);
        Ok(Page { records: rows.into_iter().map(|r| RecordView::project(Some(manifest), r, &v).0).collect(), next })
    }

    /// 待办 the caller's inbox: records assigned to them, and records in a state from which their
    /// audience may fire a transition (waiting on them), within reach, oldest change first.
    pub async fn inbox(&self, caller: &Caller, limit: u32) -> Result<Vec<RecordView>, EngineError> {
        let Some(actor) = caller.actor() else { return Ok(Vec::new()) };
        let v = viewer(caller, false);
        let mut waiting = Vec::new();
        let mut plugins = Vec::new();
        for handle in self.plugins.handles().filter(|h| caller.has_item(h.id())) {
            let m = handle.manifest();
            plugins.push(m.id.clone());
            for k in m.record_kinds.iter().filter(|k| v.sees_kind(k)) {
                let mut states = HashSet::new();
                for t in k.workflow.transitions.iter().filter(|t| t.fired_by(&actor) && t.guards.is_empty()) {
                    states.extend(t.from.iter().filter(|s| !k.workflow.is_terminal(s)).cloned());
                }
                let mut states: Vec<String> = states.into_iter().collect();
                states.sort();
                waiting.extend(states.into_iter().map(|s| (m.id.clone(), k.id.clone(), s)));
            }
        }
        let places = self.places_in_reach(caller).await?;
        let rows = self
            .store
            .inbox(&InboxFilter {
                plugins: Some(plugins),
                places,
                assignee: caller.name.clone(),
                waiting,
                limit: limit.clamp(1, MAX_INBOX),
            })
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let Some(handle) = self.plugins.handle(&r.plugin) else { continue };
            if self.kind_visible(caller, handle.manifest(), &r.kind) {
                out.push(RecordView::project(Some(handle.manifest()), r, &v).0);
            }
        }
        Ok(out)
    }

    /// Alerts raised for a plugin's records within the caller's reach; alerts of records of a
    /// kind the caller's audience may not see are left out.
    pub async fn alerts(
        &self,
        caller: &Caller,
        plugin: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredAlert>, EngineError> {
        if let Some(p) = plugin {
            self.check_item(caller, p)?;
        }
        let places = self.places_in_reach(caller).await?;
        let alerts = self
            .store
            .alerts(&AlertFilter {
                plugin: plugin.map(str::to_owned),
                plugins: caller.items.clone(),
                places,
                record_id: None,
                after: None,
                limit: limit.clamp(1, 500),
            })
            .await?;
        let v = viewer(caller, false);
        let mut out = Vec::with_capacity(alerts.len());
        for a in alerts {
            let hides_kinds = self
                .plugins
                .handle(&a.plugin)
                .is_some_and(|h| h.manifest().record_kinds.iter().any(|k| !v.sees_kind(k)));
            if hides_kinds && let Some(id) = a.record_id {
                let kind = self.store.record(&a.plugin, id).await?.map(|r| r.kind);
                let visible = match (kind, self.plugins.handle(&a.plugin)) {
                    (Some(kind), Some(h)) => self.kind_visible(caller, h.manifest(), &kind),
                    _ => false,
                };
                if !visible {
                    continue;
                }
            }
            out.push(a);
        }
        Ok(out)
    }

    /// Computes a plugin's KPIs for one estate over a period.
    pub async fn kpis(
        &self,
        caller: &Caller,
        plugin: &str,
        estate: EstateId,
        from: Date,
        to: Date,
    ) -> Result<Vec<KpiValue>, EngineError> {
        let handle = self.handle(plugin)?;
        let place = Place::Estate(estate);
        let (info, name) = self.place_info(&place).await?;
        self.authorize_at(caller, Action::ReadRecords, plugin, &info, || place_not_found(&place))?;
        let households = name.estate.as_ref().map_or(0, |e| e.households);
        let ctx = self.context(caller, &handle, Some(place), info.firm);
        if let Some(e) = name.estate {
            ctx.remember_estate(e);
        }
        let call = KpiCall::new(estate, from, to, households);
        Ok(self.watch(&handle, handle.kpis(&ctx, call).await).await?)
    }

    /// 个人信息查询 every record (of any plugin, any version) that refers to `id` of `kind`: what a
    /// resident's PIPL access or erasure request, or a merge of duplicate persons, starts from —
    /// a query of the reference index, never a scan of sealed data. For callers who answer such
    /// requests (the district office; the auditor reads).
    pub async fn records_referring(
        &self,
        caller: &Caller,
        kind: RefKind,
        id: &str,
    ) -> Result<Vec<ReferringRecord>, EngineError> {
        access::authorize(caller, Action::AnswerDataRequests, Target::default()).map_err(|d| {
            super::refused(
                d,
                || EngineError::NotFound { what: "person", id: id.to_owned() },
                || EngineError::NotFound { what: "person", id: id.to_owned() },
            )
        })?;
        let rows = self.store.records_referring(kind, id).await?;
        Ok(rows.into_iter().filter(|r| caller.has_item(&r.plugin)).collect())
    }

    /// Writes the reference index of records written before it existed (idempotent; run at
    /// start). Answers how many records it indexed.
    pub async fn backfill_references(&self) -> Result<u64, EngineError> {
        let mut n = 0;
        for handle in self.plugins.handles() {
            let m = handle.manifest();
            let mut after = None;
            loop {
                let page = self.store.record_ids_without_refs(&m.id, after, 500).await?;
                let Some(last) = page.last().map(|r| r.id) else { break };
                for r in page {
                    let Some(kind) = m.kind(&r.kind) else { continue };
                    let data = serde_json::from_str(&r.data_json).unwrap_or_default();
                    let refs = super::outcome::refs_of(&m.id, kind, &data, r.parent_id);
                    self.store.write_refs(&m.id, r.id, r.version, &refs).await?;
                    n += 1;
                }
                after = Some(last);
            }
        }
        Ok(n)
    }
}
