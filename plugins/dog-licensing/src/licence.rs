//! 犬证 licences: one live licence per dog; approval and renewal need the microchip and a rabies
//! vaccination whose next-due date lies ahead, and the licence is valid until that date
//! ([`crate::law::EXPIRY_RULE`]: licence validity = immunisation validity).

use serde::Deserialize;
use serde_json::Value;

use jiayuan_domain::{Date, RecordId};
use jiayuan_plugin_api::{
    CreateCall, FieldViolation, HostContext, LogLevel, Outcome, PluginError, Record, RecordQuery, TransitionCall,
};

use crate::manifest::{kind, state, transition};
use crate::support::{estate_of, object, query_all, typed, violation};

/// States in which a licence still stands for its dog (a second application is refused).
const LIVE: [&str; 5] = [state::APPLYING, state::UNDER_REVIEW, state::VALID, state::EXPIRING_SOON, state::EXPIRED];

#[derive(Debug, Deserialize)]
struct DogView {
    chip_no: Option<String>,
}

#[derive(Debug, Deserialize)]
struct VaccinationView {
    vaccinated_on: Date,
    next_due: Date,
}

#[derive(Debug, Deserialize)]
struct LicenceView {
    valid_until: Option<Date>,
}

/// An application for a licence of a kept dog that has no live licence yet.
pub(crate) async fn on_create(ctx: &dyn HostContext, call: &CreateCall) -> Result<Outcome, PluginError> {
    let dog = call.parent.as_ref().ok_or_else(|| PluginError::Internal("a licence arrived without its dog".into()))?;
    if dog.state != state::KEPT {
        return Err(PluginError::Invalid(vec![not_kept()]));
    }
    let query = RecordQuery::of(kind::LICENCE).children_of(dog.id).in_states(&LIVE);
    if ctx.records().count(&query).await? > 0 {
        return Err(PluginError::invalid(
            "parent",
            "licence_exists",
            "该犬只已有犬证或正在办理中，请续期或先注销原犬证",
            "the dog already has a licence or an application: renew or cancel it first",
        ));
    }
    Ok(Outcome::accept())
}

/// Approval and renewal derive the validity; the other transitions need no rule of their own.
pub(crate) async fn on_transition(ctx: &dyn HostContext, call: &TransitionCall) -> Result<Outcome, PluginError> {
    let renewing = match call.transition.as_str() {
        transition::APPROVE => false,
        transition::RENEW => true,
        _ => return Ok(Outcome::accept()),
    };
    let today = ctx.clock().today();
    let valid_until = match validity(ctx, &call.record, today).await? {
        Ok(d) => d,
        Err(v) => return Err(PluginError::Invalid(v)),
    };
    let mut data = object(&call.record.data_json, "licence")?;
    if renewing {
        let current: LicenceView = typed(&call.record.data_json, "licence")?;
        if current.valid_until.is_some_and(|c| valid_until <= c) {
            return Err(PluginError::invalid(
                "vaccination",
                "no_new_vaccination",
                "没有比当前有效期更晚的狂犬病免疫记录，无法续期",
                "no rabies vaccination runs later than the current validity: nothing to renew",
            ));
        }
    } else {
        let estate_id = estate_of(call.record.estate_id)?;
        let estate = ctx
            .registry()
            .estate(estate_id)
            .await?
            .ok_or_else(|| PluginError::NotFound(format!("estate {estate_id}")))?;
        data.insert("licence_no".into(), Value::String(licence_no(estate.community.as_str(), today, call.record.id)));
        data.insert("issued_on".into(), Value::String(today.to_string()));
    }
    data.insert("valid_until".into(), Value::String(valid_until.to_string()));
    ctx.log(
        LogLevel::Info,
        if renewing { "licence renewed" } else { "licence issued" },
        &[("record", &call.record.id.to_string()), ("valid_until", &valid_until.to_string())],
    );
    Ok(Outcome::accept().with_data(Value::Object(data).to_string()))
}

/// `440303-2026-000042`: the district of the estate, the year of issue and the record id.
fn licence_no(community: &str, issued: Date, id: RecordId) -> String {
    format!("{}-{}-{:06}", community.get(..6).unwrap_or(community), issued.year(), id.0)
}

fn not_kept() -> FieldViolation {
    violation(
        "parent",
        "dog_not_kept",
        "犬只不在在养状态，不能办理犬证".into(),
        "the dog is not kept (lost, dead, transferred…): no licence can be issued".into(),
    )
}

/// The date a licence of `licence`'s dog would be valid until today: the next-due date of the
/// dog's latest rabies vaccination. Or every reason there is none.
async fn validity(
    ctx: &dyn HostContext,
    licence: &Record,
    today: Date,
) -> Result<Result<Date, Vec<FieldViolation>>, PluginError> {
    let dog_id = licence.parent_id.ok_or_else(|| PluginError::Internal("a licence without its dog".into()))?;
    let dog = ctx.records().get(dog_id).await?.ok_or_else(|| PluginError::NotFound(format!("dog {dog_id}")))?;
    let mut v = Vec::new();
    if dog.state != state::KEPT {
        v.push(not_kept());
    }
    let view: DogView = typed(&dog.data_json, "dog")?;
    if view.chip_no.is_none_or(|c| c.trim().is_empty()) {
        v.push(violation(
            "chip_no",
            "chip_required",
            "犬只未登记电子标签号，不能核发犬证".into(),
            "the dog has no microchip number: no licence can be issued".into(),
        ));
    }
    let query = RecordQuery::of(kind::VACCINATION).children_of(dog_id).in_states(&[state::RECORDED]);
    let mut latest: Option<(Date, RecordId, Date)> = None;
    for r in query_all(ctx, query).await? {
        let vac: VaccinationView = typed(&r.data_json, "vaccination")?;
        let key = (vac.vaccinated_on, r.id, vac.next_due);
        if latest.is_none_or(|l| (l.0, l.1) < (key.0, key.1)) {
            latest = Some(key);
        }
    }
    let valid_until = match latest {
        None => {
            v.push(violation(
                "vaccination",
                "vaccination_required",
                "犬只没有狂犬病免疫记录：须先接种疫苗再办理登记".into(),
                "the dog has no rabies vaccination on record: vaccinate first, then license".into(),
            ));
            None
        }
        Some((_, _, next_due)) if next_due <= today => {
            v.push(violation(
                "vaccination",
                "vaccination_expired",
                format!("最近一次狂犬病免疫已于{next_due}到期，请重新接种"),
                format!("the latest rabies vaccination ran out on {next_due}: revaccinate"),
            ));
            None
        }
        Some((_, _, next_due)) => Some(next_due),
    };
    Ok(match valid_until {
        Some(d) if v.is_empty() => Ok(d),
        _ => Err(v),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn licence_numbers_name_district_year_and_record() {
        let d: Date = "2026-03-02".parse().expect("date");
        assert_eq!(licence_no("440303004001", d, RecordId(42)), "440303-2026-000042");
    }
}
