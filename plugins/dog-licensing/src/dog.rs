//! 犬只 dogs: the registration rules — banned breeds, the microchip, the owner, the house, and
//! several dogs in one household — on create, and the household rules again when a lost dog is
//! found.

use serde::Deserialize;

use jiayuan_domain::{Date, EstateId, HouseId, PersonId};
use jiayuan_plugin_api::{
    AlertDraft, CreateCall, FieldViolation, HostContext, Label, LogLevel, Outcome, PluginError, RecordQuery, Severity,
    TransitionCall,
};

use crate::breeds;
use crate::config::PluginConfig;
use crate::law::{CHIP_RULE, MULTI_DOG_RULE, OWNER_RULE};
use crate::manifest::{kind, state, transition};
use crate::support::{estate_of, typed, violation};

/// The fields of a dog the rules read.
#[derive(Debug, Deserialize)]
struct DogData {
    breed: String,
    birth_date: Option<Date>,
    chip_no: Option<String>,
    owner_id: PersonId,
    house_id: HouseId,
    consent_certificate: Option<String>,
    consent_issuer: Option<String>,
}

/// The consent fields of a `report_found` input.
#[derive(Debug, Deserialize)]
struct ConsentInput {
    consent_certificate: Option<String>,
    consent_issuer: Option<String>,
}

/// Registers a dog, or refuses it with every rule it breaks. A banned breed is refused at once,
/// with a critical alert for 城管.
pub(crate) async fn on_create(ctx: &dyn HostContext, call: &CreateCall) -> Result<Outcome, PluginError> {
    let dog: DogData = typed(&call.data_json, "dog")?;
    let config = PluginConfig::parse(ctx.config_json())?;
    let today = ctx.clock().today();

    if let Some((list, breed)) = breeds::banned_on(today, &dog.breed) {
        ctx.log(
            LogLevel::Warn,
            "banned breed refused",
            &[("breed", breed.code), ("list", list.version), ("house_id", &dog.house_id.to_string())],
        );
        let refusal = violation(
            "breed",
            "banned_breed",
            format!("{}属于深圳市禁养犬只品种（目录 {}），不予登记", breed.name_zh, list.version),
            format!("{} is a banned breed in Shenzhen (list {}): it cannot be registered", breed.name_en, list.version),
        );
        let alert = AlertDraft::new(
            &format!("banned_breed:house:{}", dog.house_id),
            Severity::Critical,
            Label::new(
                &format!(
                    "发现禁养犬只（{}），登记已拒绝。请城管部门依法处置（没收并处罚款）。依据：{}",
                    breed.name_zh, list.legal_basis
                ),
                &format!(
                    "A banned breed ({}) was presented for registration and refused: 城管 must act (confiscation and fine)",
                    breed.name_en
                ),
            ),
        );
        return Ok(Outcome::refuse(vec![refusal]).with_alert(alert));
    }

    let mut v = Vec::new();
    check_chip(ctx, dog.chip_no.as_deref(), today, &mut v).await?;
    if dog.birth_date.is_some_and(|b| b > today) {
        v.push(violation(
            "birth_date",
            "in_future",
            "出生日期不能晚于今天".into(),
            "the birth date cannot be later than today".into(),
        ));
    }
    check_owner(ctx, dog.owner_id, today, &mut v).await?;
    let estate = estate_of(call.estate_id)?;
    let house_ok = check_house(ctx, dog.house_id, estate, &mut v).await?;
    let consent = consent_given(dog.consent_certificate.as_deref(), dog.consent_issuer.as_deref(), &mut v);
    if house_ok {
        check_household(ctx, &config, estate, dog.house_id, consent, &mut v).await?;
    }
    if !v.is_empty() {
        return Err(PluginError::Invalid(v));
    }
    ctx.log(LogLevel::Info, "dog registered", &[("house_id", &dog.house_id.to_string())]);
    Ok(Outcome::accept())
}

/// The new house of a relocated dog.
#[derive(Debug, Deserialize)]
struct RelocateInput {
    house_id: HouseId,
}

/// Transitions of a dog: a found dog rejoins its household, whose rules apply again; a dog that
/// moves with its owner joins the household of its new house, in its new estate.
pub(crate) async fn on_transition(ctx: &dyn HostContext, call: &TransitionCall) -> Result<Outcome, PluginError> {
    if call.transition == transition::RELOCATE {
        return relocate(ctx, call).await;
    }
    if call.transition != transition::REPORT_FOUND {
        return Ok(Outcome::accept());
    }
    let dog: DogData = typed(&call.record.data_json, "dog")?;
    let input: ConsentInput = typed(&call.input_json, "report_found input")?;
    let config = PluginConfig::parse(ctx.config_json())?;
    let mut v = Vec::new();
    let certificate = input.consent_certificate.or(dog.consent_certificate);
    let issuer = input.consent_issuer.or(dog.consent_issuer);
    let consent = consent_given(certificate.as_deref(), issuer.as_deref(), &mut v);
    check_household(ctx, &config, estate_of(call.record.estate_id)?, dog.house_id, consent, &mut v).await?;
    if v.is_empty() { Ok(Outcome::accept()) } else { Err(PluginError::Invalid(v)) }
}

/// A relocation: the new house must be registered in the estate the dog moves to, and that
/// household's rules apply (its consent certificate travels with the dog).
async fn relocate(ctx: &dyn HostContext, call: &TransitionCall) -> Result<Outcome, PluginError> {
    let dog: DogData = typed(&call.record.data_json, "dog")?;
    let input: RelocateInput = typed(&call.input_json, "relocate input")?;
    let estate = estate_of(call.move_to.as_ref().and_then(jiayuan_domain::Place::estate))?;
    let config = PluginConfig::parse(ctx.config_json())?;
    let mut v = Vec::new();
    if check_house(ctx, input.house_id, estate, &mut v).await? {
        let consent = consent_given(dog.consent_certificate.as_deref(), dog.consent_issuer.as_deref(), &mut v);
        check_household(ctx, &config, estate, input.house_id, consent, &mut v).await?;
    }
    if v.is_empty() { Ok(Outcome::accept()) } else { Err(PluginError::Invalid(v)) }
}

/// The microchip: required from [`CHIP_RULE`]'s date, 15 digits, not on another live dog.
async fn check_chip(
    ctx: &dyn HostContext,
    chip: Option<&str>,
    today: Date,
    v: &mut Vec<FieldViolation>,
) -> Result<(), PluginError> {
    let chip = chip.map(str::trim).filter(|c| !c.is_empty());
    let Some(chip) = chip else {
        if today >= CHIP_RULE.required_from.date() {
            v.push(violation(
                "chip_no",
                "chip_required",
                format!(
                    "自{}起犬只须植入电子标签，请填写{}位电子标签号",
                    CHIP_RULE.required_from.date(),
                    CHIP_RULE.digits
                ),
                format!(
                    "from {} every dog needs a microchip: give its {}-digit number",
                    CHIP_RULE.required_from.date(),
                    CHIP_RULE.digits
                ),
            ));
        }
        return Ok(());
    };
    if chip.len() != CHIP_RULE.digits as usize || !chip.bytes().all(|b| b.is_ascii_digit()) {
        v.push(violation(
            "chip_no",
            "bad_chip",
            format!("电子标签号应为{}位数字", CHIP_RULE.digits),
            format!("a microchip number has exactly {} digits", CHIP_RULE.digits),
        ));
        return Ok(());
    }
    let query = RecordQuery::of(kind::DOG).in_states(&[state::KEPT, state::LOST]).with_key("chip_no", chip).limit(1);
    if ctx.records().count(&query).await? > 0 {
        v.push(violation(
            "chip_no",
            "chip_duplicate",
            "该电子标签号已登记在另一只在养犬只名下".into(),
            "this microchip number is already registered to another live dog".into(),
        ));
    }
    Ok(())
}

/// The owner: registered, and of age by [`OWNER_RULE`].
async fn check_owner(
    ctx: &dyn HostContext,
    owner: PersonId,
    today: Date,
    v: &mut Vec<FieldViolation>,
) -> Result<(), PluginError> {
    let Some(person) = ctx.registry().person(owner).await? else {
        v.push(violation("owner_id", "not_found", "犬主未在人口库登记".into(), "the owner is not registered".into()));
        return Ok(());
    };
    match person.birth_date {
        None => v.push(violation(
            "owner_id",
            "age_unknown",
            "无法确认犬主年龄：人口库中没有出生日期".into(),
            "the owner's age cannot be checked: the registry has no birth date".into(),
        )),
        Some(born) if born.age_on(today) < OWNER_RULE.min_age => v.push(violation(
            "owner_id",
            "owner_minor",
            format!("犬主须年满{}周岁（完全民事行为能力）", OWNER_RULE.min_age),
            format!("the owner must be at least {} years old (full civil capacity)", OWNER_RULE.min_age),
        )),
        Some(_) => {}
    }
    Ok(())
}

/// The house: registered and in the call's estate. Returns whether it is.
async fn check_house(
    ctx: &dyn HostContext,
    house: HouseId,
    estate: EstateId,
    v: &mut Vec<FieldViolation>,
) -> Result<bool, PluginError> {
    match ctx.registry().house(house).await? {
        None => {
            v.push(violation(
                "house_id",
                "not_found",
                "房屋未在房屋库登记".into(),
                "the house is not registered".into(),
            ));
            Ok(false)
        }
        Some(h) if h.estate_id != Some(estate) => {
            v.push(violation(
                "house_id",
                "wrong_estate",
                "该房屋不属于本小区".into(),
                "the house does not belong to this estate".into(),
            ));
            Ok(false)
        }
        Some(_) => Ok(true),
    }
}

/// Whether a consent certificate is given: its number and its issuer come together.
fn consent_given(certificate: Option<&str>, issuer: Option<&str>, v: &mut Vec<FieldViolation>) -> bool {
    let certificate = certificate.map(str::trim).filter(|c| !c.is_empty());
    match (certificate, issuer) {
        (Some(_), Some(_)) => true,
        (None, None) => false,
        (Some(_), None) => {
            v.push(violation(
                "consent_issuer",
                "required",
                "请选择同意证明的出具单位（居委会、业委会或物业管理处）".into(),
                "say who issued the consent certificate (residents' or owners' committee, or management office)".into(),
            ));
            false
        }
        (None, Some(_)) => {
            v.push(violation(
                "consent_certificate",
                "required",
                "已选择出具单位，请填写同意证明编号".into(),
                "an issuer is given: give the consent certificate's number too".into(),
            ));
            false
        }
    }
}

/// The household with this dog: a consent certificate from the second live dog on
/// ([`MULTI_DOG_RULE`]), and the configured hard limit of the estate's jurisdiction.
async fn check_household(
    ctx: &dyn HostContext,
    config: &PluginConfig,
    estate: EstateId,
    house: HouseId,
    consent: bool,
    v: &mut Vec<FieldViolation>,
) -> Result<(), PluginError> {
    let query =
        RecordQuery::of(kind::DOG).in_estate(estate).in_states(&[state::KEPT]).with_key("house_id", &house.to_string());
    let dogs = ctx.records().count(&query).await? + 1;
    if dogs > u64::from(MULTI_DOG_RULE.max_without_consent) && !consent {
        v.push(violation(
            "consent_certificate",
            "consent_required",
            format!("该户将饲养{dogs}只犬，须提交居委会、业委会或物业管理处出具的多犬同意证明"),
            format!(
                "the household would keep {dogs} dogs: a consent certificate from the residents' or owners' committee or the management office is required"
            ),
        ));
    }
    let estate =
        ctx.registry().estate(estate).await?.ok_or_else(|| PluginError::NotFound(format!("estate {estate}")))?;
    if let Some(limit) = config.household_limit(&estate.community)
        && dogs > u64::from(limit)
    {
        v.push(violation(
            "house_id",
            "household_limit",
            format!("本辖区每户最多饲养{limit}只犬，该户将达{dogs}只"),
            format!("households here may keep at most {limit} dogs; this one would keep {dogs}"),
        ));
    }
    Ok(())
}
