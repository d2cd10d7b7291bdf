//! 狂犬病免疫 rabies vaccinations of a dog: dated, not in the future, with a next-due date after
//! the injection (the licence's validity is taken from it).

use serde::Deserialize;

use jiayuan_domain::Date;
use jiayuan_plugin_api::{CreateCall, HostContext, Outcome, PluginError};

use crate::manifest::state;
use crate::support::{typed, violation};

#[derive(Debug, Deserialize)]
struct VaccinationData {
    vaccinated_on: Date,
    next_due: Date,
}

/// Records a vaccination of a dog that is kept or lost (not of one gone for good).
pub(crate) async fn on_create(ctx: &dyn HostContext, call: &CreateCall) -> Result<Outcome, PluginError> {
    let data: VaccinationData = typed(&call.data_json, "vaccination")?;
    let dog =
        call.parent.as_ref().ok_or_else(|| PluginError::Internal("a vaccination arrived without its dog".into()))?;
    let today = ctx.clock().today();
    let mut v = Vec::new();
    if dog.state != state::KEPT && dog.state != state::LOST {
        v.push(violation(
            "parent",
            "dog_not_live",
            "犬只已死亡、转让、迁出或被没收，不能登记免疫".into(),
            "the dog is dead, transferred, moved out or confiscated: no vaccination can be recorded".into(),
        ));
    }
    if data.vaccinated_on > today {
        v.push(violation(
            "vaccinated_on",
            "in_future",
            "接种日期不能晚于今天".into(),
            "the vaccination date cannot be later than today".into(),
        ));
    }
    if data.next_due <= data.vaccinated_on {
        v.push(violation(
            "next_due",
            "not_after_vaccination",
            "下次接种日期必须晚于本次接种日期".into(),
            "the next-due date must come after the vaccination date".into(),
        ));
    }
    if v.is_empty() { Ok(Outcome::accept()) } else { Err(PluginError::Invalid(v)) }
}
