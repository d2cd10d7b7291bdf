//! 犬只事件 incidents the firm meets: it persuades or reports, and never fines (fines and
//! confiscation are 城管's, [`crate::law::INCIDENT_RULE`]). A suspected banned breed raises a
//! critical alert and must be reported; a bite raises a warning to get the victim vaccinated and
//! the dog observed.

use serde::Deserialize;

use jiayuan_domain::{RecordId, Timestamp};
use jiayuan_plugin_api::{
    AlertDraft, CreateCall, HostContext, Label, LogLevel, Outcome, PluginError, Severity, TransitionCall,
};

use crate::config::PluginConfig;
use crate::manifest::{kind, transition};
use crate::support::{typed, violation};

/// Incident kind: a bite.
const BITE: &str = "bite";
/// Incident kind: a suspected banned breed.
const SUSPECTED_BANNED_BREED: &str = "suspected_banned_breed";
/// Actions that hand an incident to the authorities.
const REPORTED: [&str; 2] = ["reported_to_chengguan", "reported_to_police"];

#[derive(Debug, Deserialize)]
struct IncidentData {
    kind: String,
    occurred_at: String,
    dog: Option<RecordId>,
}

#[derive(Debug, Deserialize)]
struct HandleInput {
    action: String,
}

/// Records an incident, with the alerts its kind calls for.
pub(crate) async fn on_create(ctx: &dyn HostContext, call: &CreateCall) -> Result<Outcome, PluginError> {
    let data: IncidentData = typed(&call.data_json, "incident")?;
    let config = PluginConfig::parse(ctx.config_json())?;
    let mut v = Vec::new();
    let occurred = Timestamp::parse_rfc3339(&data.occurred_at)
        .ok_or_else(|| PluginError::Internal("occurred_at passed the host's check but does not parse".into()))?;
    if occurred > ctx.clock().now() {
        v.push(violation(
            "occurred_at",
            "in_future",
            "发生时间不能晚于现在".into(),
            "the incident cannot lie in the future".into(),
        ));
    }
    if let Some(dog) = data.dog
        && ctx.records().get(dog).await?.is_none_or(|r| r.kind != kind::DOG)
    {
        v.push(violation(
            "dog",
            "not_found",
            "涉事犬只不在可查范围内登记".into(),
            "the dog is not registered where the caller works".into(),
        ));
    }
    if !v.is_empty() {
        return Err(PluginError::Invalid(v));
    }
    let mut outcome = Outcome::accept();
    match data.kind.as_str() {
        SUSPECTED_BANNED_BREED => {
            ctx.log(LogLevel::Warn, "suspected banned breed reported", &[("place", &call.place.to_string())]);
            outcome = outcome.with_alert(AlertDraft::new(
                SUSPECTED_BANNED_BREED,
                Severity::Critical,
                Label::new(
                    "发现疑似禁养犬只，请立即上报城管部门核查处置（物业不得自行处罚）",
                    "A suspected banned breed was seen: report it to 城管 at once for checking and action (the firm never fines)",
                ),
            ));
        }
        BITE => {
            let observe_zh = config
                .bite_observation_hours
                .map_or_else(|| "登记涉事犬只并安排留观".to_owned(), |h| format!("登记涉事犬只并在{h}小时内送留观"));
            let observe_en = config.bite_observation_hours.map_or_else(
                || "record the dog for observation".to_owned(),
                |h| format!("have the dog taken to observation within {h} hours"),
            );
            outcome = outcome.with_alert(AlertDraft::new(
                BITE,
                Severity::Warning,
                Label::new(
                    &format!("犬只伤人：请督促伤者立即就医并接种狂犬疫苗，{observe_zh}"),
                    &format!("Dog bite: urge the victim to see a doctor and get the rabies vaccine (狂犬疫苗) now; {observe_en}"),
                ),
            ));
        }
        _ => {}
    }
    Ok(outcome)
}

/// Handling: a suspected banned breed must go to 城管 or the police, not merely be persuaded.
pub(crate) async fn on_transition(_ctx: &dyn HostContext, call: &TransitionCall) -> Result<Outcome, PluginError> {
    if call.transition != transition::HANDLE {
        return Ok(Outcome::accept());
    }
    let data: IncidentData = typed(&call.record.data_json, "incident")?;
    let input: HandleInput = typed(&call.input_json, "handle input")?;
    if data.kind == SUSPECTED_BANNED_BREED && !REPORTED.contains(&input.action.as_str()) {
        return Err(PluginError::invalid(
            "action",
            "must_report",
            "疑似禁养犬只须上报城管或报警，不能仅作劝导",
            "a suspected banned breed must be reported to 城管 or the police, not only persuaded",
        ));
    }
    Ok(Outcome::accept())
}
