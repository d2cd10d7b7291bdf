//! 权限 access control: who may do what, where. [`authorize`] is the one decision; the API layer
//! asks it before a handler runs (role × action) and the record engine asks it again once it
//! knows the estate and the item (scope × item × enablement).
//!
//! Answers are deliberately shaped so existence does not leak: anything outside the caller's
//! scope, or an item not assigned to them, is [`Denied::OutOfScope`] (the API answers 404, as for
//! a missing record), while a role that may never do an action is [`Denied::Forbidden`] (403).
//! A disabled item refuses new work only; reads of its existing records stay allowed.

use serde::Serialize;

use jiayuan_domain::{AccountScope, AgencyUnit, AgencyUnitId, DivisionCode, EstateId, FirmId, Role};
use jiayuan_plugin_api::{Actor, Audience};

use crate::enablement::PlaceInfo;

/// What a request wants to do. Every API route names exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Read records, their history, alerts and KPIs.
    ReadRecords,
    /// Create records and fire transitions (each transition's manifest still names its roles).
    WriteRecords,
    /// 查看明文 see masked personal fields in clear, with a typed reason (audited).
    Unmask,
    /// Read the registry: divisions, grid cells, estates, firms, assignments, persons.
    ReadRegistry,
    /// 区划 keep divisions and firms (district-wide ledgers).
    ManageDivisions,
    /// 小区 keep estates, grid cells and service assignments of one's area.
    ManageEstates,
    /// 楼栋房屋 keep buildings and houses of one's estates.
    ManageBuildings,
    /// 住户 register residents, occupancy and leases.
    WriteResidents,
    /// 导入 upload ledger files (each row still needs the action of its kind).
    ImportLedgers,
    /// 导出 download exports (masked; audited with a purpose).
    Export,
    /// Read enablement decisions and overrides.
    ReadEnablement,
    /// Switch service items on or off.
    ManageEnablement,
    /// Create, change and disable accounts; issue and revoke tokens for others.
    ManageAccounts,
    /// Read and verify the audit log.
    ReadAudit,
    /// Read plugin status, manifests and metrics.
    ReadStatus,
    /// 个人信息查询 answer a resident's PIPL access or erasure request: which records refer to a
    /// person (the reference index).
    AnswerDataRequests,
}

impl Action {
    /// Every action, in a fixed order.
    pub const ALL: [Action; 16] = [
        Action::ReadRecords,
        Action::WriteRecords,
        Action::Unmask,
        Action::ReadRegistry,
        Action::ManageDivisions,
        Action::ManageEstates,
        Action::ManageBuildings,
        Action::WriteResidents,
        Action::ImportLedgers,
        Action::Export,
        Action::ReadEnablement,
        Action::ManageEnablement,
        Action::ManageAccounts,
        Action::ReadAudit,
        Action::ReadStatus,
        Action::AnswerDataRequests,
    ];
}

/// Whether `role` may ever do `action` (anywhere). This table is the role half of the policy.
///
/// | role | records | unmask | registry read | divisions, firms | estates, grid cells, assignments | buildings, houses | residents, occupancy, leases | import | export | enablement | accounts | audit | data requests |
/// |---|---|---|---|---|---|---|---|---|---|---|---|---|---|
/// | district admin | read, write | yes | yes | yes | yes | yes | yes | yes | yes | read, manage | manage | read | yes |
/// | street officer | read, write | yes | yes | – | yes | – | yes | – | yes | read | – | – | – |
/// | community worker | read, write | yes | yes | – | – | – | yes | – | yes | read | – | – | – |
/// | firm manager | read, write | yes | yes | – | – | yes | yes | yes | yes | read | – | – | – |
/// | firm staff | read, write | – | yes | – | – | – | yes | – | – | – | – | – | – |
/// | agency officer | read, write | yes | yes | – | – | – | – | – | – | – | – | – | – |
/// | auditor | read | – | yes | – | – | – | – | – | yes | read | – | read | yes |
///
/// Everyone with an account may read plugin status.
///
/// The audience half: every role belongs to one [`Audience`] ([`audience_of`]), and what a
/// manifest declares per audience (who sees a field or a kind, who unmasks a sensitive field,
/// who fires a transition) refines this table, never widens it: a role without `Unmask` unmasks
/// nothing, and a firm never unmasks a sensitive field whatever a manifest says.
///
/// | role | audience |
/// |---|---|
/// | district admin | `district` |
/// | street officer | `street` |
/// | community worker | `community` |
/// | firm manager, firm staff | `firm` |
/// | agency officer | `agency:<kind of the officer's unit>` |
/// | auditor | `auditor` |
pub fn permits(role: Role, action: Action) -> bool {
    use Action as A;
    match role {
        Role::DistrictAdmin => true,
        Role::StreetOfficer => matches!(
            action,
            A::ReadRecords
                | A::WriteRecords
                | A::Unmask
                | A::ReadRegistry
                | A::ManageEstates
                | A::WriteResidents
                | A::Export
                | A::ReadEnablement
                | A::ReadStatus
        ),
        Role::CommunityWorker => matches!(
            action,
            A::ReadRecords
                | A::WriteRecords
                | A::Unmask
                | A::ReadRegistry
                | A::WriteResidents
                | A::Export
                | A::ReadEnablement
                | A::ReadStatus
        ),
        Role::FirmManager => matches!(
            action,
            A::ReadRecords
                | A::WriteRecords
                | A::Unmask
                | A::ReadRegistry
                | A::ManageBuildings
                | A::WriteResidents
                | A::ImportLedgers
                | A::Export
                | A::ReadEnablement
                | A::ReadStatus
        ),
        Role::FirmStaff => {
            matches!(action, A::ReadRecords | A::WriteRecords | A::ReadRegistry | A::WriteResidents | A::ReadStatus)
        }
        Role::AgencyOfficer => {
            matches!(action, A::ReadRecords | A::WriteRecords | A::Unmask | A::ReadRegistry | A::ReadStatus)
        }
        Role::Auditor => matches!(
            action,
            A::ReadRecords
                | A::ReadRegistry
                | A::Export
                | A::ReadEnablement
                | A::ReadAudit
                | A::ReadStatus
                | A::AnswerDataRequests
        ),
    }
}

/// The agency kind of an agency officer whose account names no unit: it matches no declared
/// agency kind (only `agency:*`), so such an officer sees and does only what any agency may.
pub const UNASSIGNED_AGENCY: &str = "unassigned";

/// The audience of `role`; an agency officer's comes from the kind of their unit.
pub fn audience_of(role: Role, agency_kind: Option<&str>) -> Audience {
    match role {
        Role::DistrictAdmin => Audience::District,
        Role::StreetOfficer => Audience::Street,
        Role::CommunityWorker => Audience::Community,
        Role::FirmManager | Role::FirmStaff => Audience::Firm,
        Role::AgencyOfficer => Audience::agency(agency_kind.unwrap_or(UNASSIGNED_AGENCY)),
        Role::Auditor => Audience::Auditor,
    }
}

/// Who is calling. Built by the API layer from an authenticated account (or by the host for
/// itself); plugins never see it — they get a [`jiayuan_plugin_api::Scope`] naming at most the
/// caller's audience.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The account's role; `None` is the host itself (scheduler, deadline rules).
    pub role: Option<Role>,
    /// Written into event history and the audit log (`admin`, `system:scheduler`).
    pub name: String,
    /// Which places the caller reaches.
    pub reach: Reach,
    /// The service items the caller works on; `None` is every item.
    pub items: Option<Vec<String>>,
    /// The caller's audience; `None` is the host itself.
    pub audience: Option<Audience>,
    /// The agency unit of an agency officer.
    pub agency_unit: Option<AgencyUnitId>,
}

impl Caller {
    /// The host itself (scheduler, deadline rules): the whole district, every item.
    pub fn system(name: &str) -> Caller {
        Caller {
            role: None,
            name: format!("system:{name}"),
            reach: Reach::District,
            items: None,
            audience: None,
            agency_unit: None,
        }
    }

    /// A caller acting for an account (an agency officer without a unit until
    /// [`Caller::in_unit`]).
    pub fn account(login: &str, role: Role, scope: &AccountScope, items: Option<Vec<String>>) -> Caller {
        let reach = match scope {
            AccountScope::District => Reach::District,
            AccountScope::Division(code) => Reach::Division(code.clone()),
            AccountScope::Firm(firm) => Reach::Firm(*firm),
        };
        let audience = Some(audience_of(role, None));
        Caller { role: Some(role), name: login.to_owned(), reach, items, audience, agency_unit: None }
    }

    /// The caller as an officer of `unit`: the audience `agency:<unit kind>`.
    pub fn in_unit(mut self, unit: &AgencyUnit) -> Caller {
        if self.role == Some(Role::AgencyOfficer) {
            self.audience = Some(Audience::agency(&unit.kind));
            self.agency_unit = Some(unit.id);
        }
        self
    }

    /// The actor this caller fires transitions as (matched against each transition's actors);
    /// auditors fire none.
    pub fn actor(&self) -> Option<Actor> {
        match &self.audience {
            None => Some(Actor::System),
            Some(Audience::Auditor) => None,
            Some(a) => Some(Actor::Audience(a.clone())),
        }
    }

    /// Whether the caller is an account of a firm.
    pub fn is_firm(&self) -> bool {
        matches!(self.audience, Some(Audience::Firm))
    }

    /// Whether the caller works on `item`.
    pub fn has_item(&self, item: &str) -> bool {
        self.items.as_ref().is_none_or(|items| items.iter().any(|i| i == item))
    }
}

/// The places a caller reaches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reach {
    /// The whole district.
    District,
    /// One 街道 street or 社区 community (by division code).
    Division(DivisionCode),
    /// The estates a firm serves.
    Firm(FirmId),
    /// Exactly these estates.
    Estates(Vec<EstateId>),
}

impl Reach {
    /// Whether this reach covers `place`: a division reaches the estates and grid cells within
    /// it, a firm only the estates it serves (never a grid cell), an estate list those estates.
    pub fn covers(&self, place: &PlaceInfo) -> bool {
        match self {
            Reach::District => true,
            Reach::Division(code) => place.community.is_within(code),
            Reach::Firm(f) => place.firm == Some(*f),
            Reach::Estates(ids) => place.estate_id().is_some_and(|e| ids.contains(&e)),
        }
    }
}

/// What an action is aimed at, as far as the caller's scope matters.
#[derive(Debug, Clone, Copy, Default)]
pub struct Target<'a> {
    /// The service item, for record work.
    pub item: Option<&'a str>,
    /// The estate, once known.
    pub place: Option<&'a PlaceInfo>,
    /// Whether the item is enabled at that estate, once decided (only new work needs it).
    pub enabled: Option<bool>,
}

/// Why [`authorize`] said no.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The role may never do this (the API answers 403).
    #[error("a {role} may not {action:?}")]
    Forbidden {
        /// The caller's role.
        role: Role,
        /// What was asked.
        action: Action,
    },
    /// The estate or item lies outside the caller's scope (the API answers 404, as if absent).
    #[error("outside the caller's scope")]
    OutOfScope,
    /// The item is not enabled at the estate: no new work there.
    #[error("the service item is not enabled at this estate")]
    Disabled,
}

/// The one access decision: role × action × scope × item × enablement.
///
/// Order matters and is fixed: the role first (403 says nothing about any estate), then the
/// item and the estate (404, so nothing outside the scope is confirmed to exist), then
/// enablement, which only refuses writes.
pub fn authorize(caller: &Caller, action: Action, target: Target<'_>) -> Result<(), Denied> {
    if let Some(role) = caller.role
        && !permits(role, action)
    {
        return Err(Denied::Forbidden { role, action });
    }
    if let Some(item) = target.item
        && !caller.has_item(item)
    {
        return Err(Denied::OutOfScope);
    }
    if let Some(place) = target.place
        && !caller.reach.covers(place)
    {
        return Err(Denied::OutOfScope);
    }
    if action == Action::WriteRecords && target.enabled == Some(false) {
        return Err(Denied::Disabled);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiayuan_domain::Place;

    fn code(s: &str) -> DivisionCode {
        DivisionCode::parse(s).expect("code")
    }

    fn place(community: &str, firm: i64) -> PlaceInfo {
        let community = code(community);
        PlaceInfo { place: Place::Estate(EstateId(1)), street: community.parent(), community, firm: Some(FirmId(firm)) }
    }

    #[test]
    fn only_the_district_admin_manages_enablement_and_accounts() {
        for role in Role::ALL {
            let admin = role == Role::DistrictAdmin;
            assert_eq!(permits(role, Action::ManageEnablement), admin, "{role}");
            assert_eq!(permits(role, Action::ManageAccounts), admin, "{role}");
            assert!(permits(role, Action::ReadStatus), "{role}");
        }
        assert!(!permits(Role::Auditor, Action::WriteRecords));
        assert!(permits(Role::Auditor, Action::ReadAudit));
        assert!(!permits(Role::FirmStaff, Action::Unmask));
    }

    #[test]
    fn scope_and_items_deny_as_out_of_scope_and_roles_as_forbidden() {
        let here = place("440303001001", 7);
        let elsewhere = place("440303002001", 8);
        let staff = Caller::account(
            "staff",
            Role::FirmStaff,
            &AccountScope::Firm(FirmId(7)),
            Some(vec!["dog-licensing".into()]),
        );
        let ok = Target { item: Some("dog-licensing"), place: Some(&here), enabled: Some(true) };
        assert_eq!(authorize(&staff, Action::WriteRecords, ok), Ok(()));
        assert_eq!(
            authorize(&staff, Action::WriteRecords, Target { place: Some(&elsewhere), ..ok }),
            Err(Denied::OutOfScope)
        );
        assert_eq!(
            authorize(&staff, Action::WriteRecords, Target { item: Some("waste-sorting"), ..ok }),
            Err(Denied::OutOfScope)
        );
        assert_eq!(
            authorize(&staff, Action::ManageEnablement, Target::default()),
            Err(Denied::Forbidden { role: Role::FirmStaff, action: Action::ManageEnablement })
        );
        let disabled = Target { enabled: Some(false), ..ok };
        assert_eq!(authorize(&staff, Action::WriteRecords, disabled), Err(Denied::Disabled));
        assert_eq!(authorize(&staff, Action::ReadRecords, disabled), Ok(()), "disabled items stay readable");

        let street = Caller::account("s", Role::StreetOfficer, &AccountScope::Division(code("440303001000")), None);
        assert_eq!(authorize(&street, Action::ReadRecords, Target { place: Some(&here), ..ok }), Ok(()));
        assert_eq!(
            authorize(&street, Action::ReadRecords, Target { place: Some(&elsewhere), ..ok }),
            Err(Denied::OutOfScope)
        );
    }

    #[test]
    fn actors_follow_roles_and_the_host_is_the_system() {
        assert_eq!(Caller::system("scheduler").actor(), Some(Actor::System));
        let auditor = Caller::account("a", Role::Auditor, &AccountScope::District, None);
        assert_eq!(auditor.actor(), None);
        let manager = Caller::account("m", Role::FirmManager, &AccountScope::Firm(FirmId(1)), None);
        assert_eq!(manager.actor(), Some(Actor::firm()));
        let officer = Caller::account("o", Role::AgencyOfficer, &AccountScope::District, None);
        assert_eq!(officer.audience, Some(Audience::agency(UNASSIGNED_AGENCY)));
        let unit = AgencyUnit {
            id: AgencyUnitId(3),
            kind: "police".into(),
            name: "黄贝派出所".into(),
            jurisdiction: code("440303001000"),
        };
        let officer = officer.in_unit(&unit);
        assert_eq!((officer.actor(), officer.agency_unit), (Some(Actor::agency("police")), Some(AgencyUnitId(3))));
        let not_an_officer = manager.in_unit(&unit);
        assert_eq!(not_an_officer.audience, Some(Audience::Firm), "only agency officers join a unit");
    }
}
