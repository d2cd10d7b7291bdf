//! The deadline scheduler: on every tick, each enabled plugin's [`DeadlineRule`]s are checked
//! against the records they watch.
//!
//! Safe on every host instance sharing one database: an alert's dedupe key is
//! `plugin/rule/record/due`, so a second instance's insert is a no-op, and a rule's transition
//! carries the record's version, so a second instance's attempt conflicts and is skipped.
//! Records of estates where the item is disabled are skipped; nothing is touched there.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

use jiayuan_domain::{Place, Timestamp};
use jiayuan_plugin_api::{DeadlineAction, DeadlineRule};
use jiayuan_schema::deadline::Anchors;
use jiayuan_store::{AlertTarget, NewAlert, RecordFilter, StoredRecord, WriteBatch};

use crate::engine::{Engine, EngineError, severity_text};

/// Records read per page while scanning.
const PAGE: u32 = 500;

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TickReport {
    /// Records examined.
    pub examined: u64,
    /// Alerts newly raised (duplicates from earlier ticks or other instances not counted).
    pub alerts_raised: u64,
    /// Transitions fired.
    pub transitions_fired: u64,
    /// Records skipped because the item is disabled for their estate.
    pub skipped_disabled: u64,
    /// Transitions another instance (or a person) got to first.
    pub lost_races: u64,
    /// Failures, as text (the tick goes on after each).
    pub errors: Vec<String>,
}

/// When a rule falls due for a record, or `None` if its anchor is missing.
pub fn due_at(
    rule: &DeadlineRule,
    record: &StoredRecord,
    calendar: &jiayuan_domain::calendar::WorkingCalendar,
) -> Option<Timestamp> {
    let anchors = Anchors {
        created_at: record.created_at,
        state_entered_at: record.state_entered_at,
        data_json: &record.data_json,
    };
    jiayuan_schema::deadline::due_at(rule, anchors, |d, n| calendar.add_working_days(d, n))
}

/// Runs every deadline rule of every active plugin once, as of the engine clock's now.
pub async fn tick(engine: &Engine) -> TickReport {
    let mut report = TickReport::default();
    let now = engine.clock().now();
    let mut enabled: HashMap<(String, Place), bool> = HashMap::new();
    for handle in engine.plugins().handles().filter(|h| h.quarantine().is_none()) {
        let manifest = handle.manifest();
        for rule in &manifest.deadlines {
            let mut after = None;
            loop {
                let filter = RecordFilter {
                    plugin: manifest.id.clone(),
                    kind: Some(rule.kind.clone()),
                    states: rule.in_states.clone(),
                    after,
                    limit: PAGE,
                    ..RecordFilter::default()
                };
                let page = match engine.store().records(&filter).await {
                    Ok(p) => p,
                    Err(e) => {
                        report.errors.push(format!("{}/{}: reading records: {e}", manifest.id, rule.id));
                        break;
                    }
                };
                after = page.last().map(|r| r.id);
                let last_page = page.len() < PAGE as usize;
                for record in page {
                    report.examined += 1;
                    let key = (manifest.id.clone(), record.place.clone());
                    let on = match enabled.get(&key) {
                        Some(on) => *on,
                        None => {
                            let on = match engine.place_info(&record.place).await {
                                Ok((place, _)) => engine
                                    .enablement()
                                    .decide(engine.store(), &manifest.id, &place)
                                    .await
                                    .map(|d| d.enabled)
                                    .unwrap_or(false),
                                Err(_) => false,
                            };
                            enabled.insert(key, on);
                            on
                        }
                    };
                    if !on {
                        report.skipped_disabled += 1;
                        continue;
                    }
                    let Some(due) = due_at(rule, &record, engine.calendar()) else { continue };
                    if now < due {
                        continue;
                    }
                    apply(engine, rule, &record, due, now, &mut report).await;
                }
                if last_page {
                    break;
                }
            }
        }
    }
    if report.alerts_raised + report.transitions_fired > 0 || !report.errors.is_empty() {
        tracing::info!(
            examined = report.examined,
            alerts = report.alerts_raised,
            transitions = report.transitions_fired,
            errors = report.errors.len(),
            "deadline tick"
        );
    }
    report
}

async fn apply(
    engine: &Engine,
    rule: &DeadlineRule,
    record: &StoredRecord,
    due: Timestamp,
    now: Timestamp,
    report: &mut TickReport,
) {
    match &rule.action {
        DeadlineAction::Alert { severity, message } => {
            let alert = NewAlert {
                plugin: record.plugin.clone(),
                record: Some(AlertTarget::Existing(record.id)),
                estate_id: record.place.estate(),
                grid_cell: record.place.grid_cell().map(str::to_owned),
                rule: rule.id.clone(),
                dedupe_key: format!("{}/{}/{}/{}", record.plugin, rule.id, record.id, due.0),
                severity: severity_text(*severity).to_owned(),
                message_zh: message.zh.clone(),
                message_en: message.en.clone(),
                due_at: Some(due),
                at: now,
            };
            match engine.store().write(WriteBatch { alerts: vec![alert], ..WriteBatch::default() }).await {
                Ok(r) => report.alerts_raised += r.alerts_raised as u64,
                Err(e) => report.errors.push(format!("{}/{} record {}: {e}", record.plugin, rule.id, record.id)),
            }
        }
        DeadlineAction::Transition { transition } => match engine.system_transition(record, transition).await {
            Ok(_) => report.transitions_fired += 1,
            Err(EngineError::Conflict(_) | EngineError::TransitionNotAllowed { .. }) => report.lost_races += 1,
            Err(e) => report.errors.push(format!("{}/{} record {}: {e}", record.plugin, rule.id, record.id)),
        },
        // An action of a newer contract than this host knows: say so rather than skip silently.
        _ => report.errors.push(format!("{}/{}: this host does not know the rule's action", record.plugin, rule.id)),
    }
}

/// Runs [`tick`] every `every` until `shutdown` resolves.
pub async fn run(engine: Arc<Engine>, every: std::time::Duration, shutdown: impl std::future::Future<Output = ()>) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = interval.tick() => {
                let report = tick(&engine).await;
                for e in &report.errors {
                    tracing::warn!(error = %e, "deadline rule failed");
                }
            }
        }
    }
}
