//! 谁可办理 who may fire a transition: its actors, then its guards. The one decision, shared by
//! the host's record engine and the test kit.

use serde_json::{Map, Value};

use jiayuan_plugin_api::{Actor, Guard, TransitionDef};

/// The one who fires a transition, as far as the guards need to know.
#[derive(Debug, Clone, Copy)]
pub struct Firer<'a> {
    /// The actor: an audience, or the host.
    pub actor: &'a Actor,
    /// The account's login (`None` for the host).
    pub account: Option<&'a str>,
    /// The agency unit the account belongs to, for agency officers.
    pub agency_unit: Option<i64>,
}

/// What the guards need to know of the record.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The login that created the record.
    pub created_by: &'a str,
    /// The record's assignee, if any.
    pub assignee: Option<&'a str>,
    /// The record's data (as stored, before the transition's input).
    pub data: &'a Map<String, Value>,
}

/// Why a transition may not be fired by this caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The caller's audience is not among the transition's actors.
    NotAnActor,
    /// A guard said no.
    Guard(Guard),
}

impl Refusal {
    /// The reason, in Chinese and English, naming the rule (never a person).
    pub fn message(&self) -> (String, String) {
        match self {
            Refusal::NotAnActor => {
                ("无权办理此操作".into(), "the caller's audience may not fire this transition".into())
            }
            Refusal::Guard(Guard::LeadAgency(field)) => (
                format!("仅 `{field}` 所指牵头单位可办理"),
                format!("only an officer of the lead agency unit named in `{field}` may fire this transition"),
            ),
            Refusal::Guard(Guard::NotCreator) => {
                ("巡办分离：发现人不能同时办理".into(), "the record's creator may not also handle it (巡办分离)".into())
            }
            Refusal::Guard(Guard::Assignee) => {
                ("仅承办人可办理".into(), "only the record's assignee may fire this transition".into())
            }
            Refusal::Guard(_) => ("不满足办理条件".into(), "a condition of this transition is not met".into()),
        }
    }
}

/// Whether `firer` may fire `transition` on `subject`. The host's own transitions (deadline
/// rules) pass every guard: guards are about people.
pub fn may_fire(transition: &TransitionDef, firer: &Firer<'_>, subject: &Subject<'_>) -> Result<(), Refusal> {
    if !transition.fired_by(firer.actor) {
        return Err(Refusal::NotAnActor);
    }
    if matches!(firer.actor, Actor::System) {
        return Ok(());
    }
    for guard in &transition.guards {
        let ok = match guard {
            Guard::LeadAgency(field) => {
                let named = subject.data.get(field).and_then(Value::as_i64);
                named.is_some() && named == firer.agency_unit
            }
            Guard::NotCreator => firer.account.is_some_and(|a| a != subject.created_by),
            Guard::Assignee => firer.account.is_some() && firer.account == subject.assignee,
            // A guard of a newer contract than this host knows: refuse rather than ignore it.
            _ => false,
        };
        if !ok {
            return Err(Refusal::Guard(guard.clone()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiayuan_plugin_api::Audience;
    use serde_json::json;

    fn subject(data: &Map<String, Value>) -> Subject<'_> {
        Subject { created_by: "finder", assignee: Some("handler"), data }
    }

    #[test]
    fn not_the_creator_refuses_the_creator_and_accepts_a_colleague() {
        let t = TransitionDef::new("handle", "处置", "Handle", &["open"], "done")
            .by(&[Audience::Firm])
            .guard(Guard::NotCreator);
        let data = Map::new();
        let firm = Actor::Audience(Audience::Firm);
        let finder = Firer { actor: &firm, account: Some("finder"), agency_unit: None };
        assert_eq!(may_fire(&t, &finder, &subject(&data)), Err(Refusal::Guard(Guard::NotCreator)));
        let colleague = Firer { account: Some("colleague"), ..finder };
        assert_eq!(may_fire(&t, &colleague, &subject(&data)), Ok(()));
        let street = Actor::Audience(Audience::Street);
        assert_eq!(may_fire(&t, &Firer { actor: &street, ..colleague }, &subject(&data)), Err(Refusal::NotAnActor));
    }

    #[test]
    fn the_lead_agency_is_one_unit_not_its_kind() {
        let t = TransitionDef::new("close", "结案", "Close", &["open"], "done")
            .by(&[Audience::any_agency()])
            .guard(Guard::LeadAgency("lead_unit".into()));
        let data = json!({ "lead_unit": 7 }).as_object().cloned().expect("object");
        let police = Actor::Audience(Audience::agency("police"));
        let lead = Firer { actor: &police, account: Some("officer"), agency_unit: Some(7) };
        assert_eq!(may_fire(&t, &lead, &subject(&data)), Ok(()));
        let other_station = Firer { agency_unit: Some(8), ..lead };
        assert!(may_fire(&t, &other_station, &subject(&data)).is_err());
        let no_unit = Firer { agency_unit: None, ..lead };
        assert!(may_fire(&t, &no_unit, &subject(&Map::new())).is_err());
    }

    #[test]
    fn only_the_assignee_and_the_host_passes_guards() {
        let t = TransitionDef::new("finish", "办结", "Finish", &["open"], "done")
            .by(&[Audience::Community])
            .by_system()
            .guard(Guard::Assignee);
        let data = Map::new();
        let community = Actor::Audience(Audience::Community);
        let handler = Firer { actor: &community, account: Some("handler"), agency_unit: None };
        assert_eq!(may_fire(&t, &handler, &subject(&data)), Ok(()));
        assert!(may_fire(&t, &Firer { account: Some("other"), ..handler }, &subject(&data)).is_err());
        let system = Firer { actor: &Actor::System, account: None, agency_unit: None };
        assert_eq!(may_fire(&t, &system, &subject(&data)), Ok(()));
    }
}
