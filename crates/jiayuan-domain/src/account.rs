//! 账号 accounts: the roles people act in and the part of the district each account covers.
//!
//! A role says *what* an account may do; its [`AccountScope`] says *where*. Which role goes with
//! which scope is checked here ([`Role::check_scope`]) so the store, the CLI and the API refuse
//! the same nonsense (a firm manager of a street, a street officer of a firm).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::division::{DivisionCode, DivisionLevel};
use crate::ids::FirmId;

/// 角色 the role an account acts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 区管理员 district administrator: everything, plus enablement and accounts.
    DistrictAdmin,
    /// 街道工作人员 street officer: the estates of one street.
    StreetOfficer,
    /// 社区工作者 community worker: the estates of one community.
    CommunityWorker,
    /// 物业项目经理 firm manager: the estates their firm serves.
    FirmManager,
    /// 物业员工 firm staff: their firm's estates, and only the items assigned to them.
    FirmStaff,
    /// 职能部门人员 agency officer (police station, 城管, 司法所…): the items of their agency in its area.
    AgencyOfficer,
    /// 审计员 auditor: reads everything, changes nothing, and reads the audit log.
    Auditor,
}

impl Role {
    /// Every role, in a fixed order (tests and the demo walk it).
    pub const ALL: [Role; 7] = [
        Role::DistrictAdmin,
        Role::StreetOfficer,
        Role::CommunityWorker,
        Role::FirmManager,
        Role::FirmStaff,
        Role::AgencyOfficer,
        Role::Auditor,
    ];

    /// The snake_case name used in the API, the database and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::DistrictAdmin => "district_admin",
            Role::StreetOfficer => "street_officer",
            Role::CommunityWorker => "community_worker",
            Role::FirmManager => "firm_manager",
            Role::FirmStaff => "firm_staff",
            Role::AgencyOfficer => "agency_officer",
            Role::Auditor => "auditor",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(s: &str) -> Result<Role, AccountError> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| AccountError::UnknownRole(s.to_owned()))
    }

    /// The Chinese name shown in the UI.
    pub fn name_zh(self) -> &'static str {
        match self {
            Role::DistrictAdmin => "区管理员",
            Role::StreetOfficer => "街道工作人员",
            Role::CommunityWorker => "社区工作者",
            Role::FirmManager => "物业项目经理",
            Role::FirmStaff => "物业员工",
            Role::AgencyOfficer => "职能部门人员",
            Role::Auditor => "审计员",
        }
    }

    /// Whether `scope` is a scope this role can hold, and whether an item list fits it.
    ///
    /// District admins and auditors cover the installation (`district`) or one district named
    /// by its code (an installation may hold several districts); street officers one street; community
    /// workers one community; firm managers and firm staff one firm; agency officers the district,
    /// a street or a community. Only firm staff and agency officers are limited to listed items,
    /// and they must be (an empty list would make an account that can do nothing).
    pub fn check_scope(self, scope: &AccountScope, items: Option<&[String]>) -> Result<(), AccountError> {
        let fits = match (self, scope) {
            (Role::DistrictAdmin | Role::Auditor, AccountScope::District) => true,
            (Role::DistrictAdmin | Role::Auditor, AccountScope::Division(c)) => c.level() == DivisionLevel::District,
            (Role::StreetOfficer, AccountScope::Division(c)) => c.level() == DivisionLevel::Street,
            (Role::CommunityWorker, AccountScope::Division(c)) => c.level() == DivisionLevel::Community,
            (Role::FirmManager | Role::FirmStaff, AccountScope::Firm(_)) => true,
            (Role::AgencyOfficer, AccountScope::District | AccountScope::Division(_)) => true,
            _ => false,
        };
        if !fits {
            return Err(AccountError::ScopeDoesNotFit { role: self, scope: scope.to_string() });
        }
        match (self, items) {
            (Role::FirmStaff | Role::AgencyOfficer, None) => Err(AccountError::ItemsRequired(self)),
            (Role::FirmStaff | Role::AgencyOfficer, Some([])) => Err(AccountError::ItemsRequired(self)),
            (Role::FirmStaff | Role::AgencyOfficer, Some(_)) => Ok(()),
            (_, Some(_)) => Err(AccountError::ItemsNotAllowed(self)),
            (_, None) => Ok(()),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// 账号范围 the part of the district an account covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "code", rename_all = "snake_case")]
pub enum AccountScope {
    /// The whole district.
    District,
    /// One 街道 street or 社区 community, by division code.
    Division(DivisionCode),
    /// The estates one firm serves.
    Firm(FirmId),
}

impl AccountScope {
    /// Parses `district` (the whole installation), `district:<code>`, `street:<code>`,
    /// `community:<code>`, `division:<code>` or `firm:<id>` (the CLI's and the database's spelling).
    pub fn parse(s: &str) -> Result<AccountScope, AccountError> {
        let bad = || AccountError::BadScope(s.to_owned());
        if s == "district" {
            return Ok(AccountScope::District);
        }
        let (kind, code) = s.split_once(':').ok_or_else(bad)?;
        match kind {
            "district" | "street" | "community" | "division" => {
                let c = DivisionCode::parse(code).map_err(|_| bad())?;
                let level_ok = match kind {
                    "district" => c.level() == DivisionLevel::District,
                    "street" => c.level() == DivisionLevel::Street,
                    "community" => c.level() == DivisionLevel::Community,
                    _ => true,
                };
                if level_ok { Ok(AccountScope::Division(c)) } else { Err(bad()) }
            }
            "firm" => {
                code.parse::<i64>().ok().filter(|id| *id > 0).map(|id| AccountScope::Firm(FirmId(id))).ok_or_else(bad)
            }
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for AccountScope {
    /// The spelling [`AccountScope::parse`] reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountScope::District => f.write_str("district"),
            AccountScope::Division(c) => match c.level() {
                DivisionLevel::Street => write!(f, "street:{c}"),
                DivisionLevel::Community => write!(f, "community:{c}"),
                DivisionLevel::District => write!(f, "district:{c}"),
            },
            AccountScope::Firm(id) => write!(f, "firm:{id}"),
        }
    }
}

/// Why an account description is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccountError {
    /// Not one of the seven roles.
    #[error(
        "unknown role `{0}`; use district_admin, street_officer, community_worker, firm_manager, firm_staff, agency_officer or auditor"
    )]
    UnknownRole(String),
    /// The scope text does not parse.
    #[error(
        "`{0}` is not an account scope; use district, district:<12-digit code>, street:<12-digit code>, community:<12-digit code> or firm:<id>"
    )]
    BadScope(String),
    /// The role cannot hold the scope.
    #[error("a {role} cannot have scope `{scope}`")]
    ScopeDoesNotFit {
        /// The role.
        role: Role,
        /// The scope, spelled as [`AccountScope::parse`] reads it.
        scope: String,
    },
    /// Firm staff and agency officers need the list of items assigned to them.
    #[error("a {0} needs the service items assigned to them (at least one)")]
    ItemsRequired(Role),
    /// Other roles cover every item of their scope.
    #[error("a {0} covers every service item of their scope; do not list items")]
    ItemsNotAllowed(Role),
    /// A login name must be 3–64 characters of a–z, 0–9, `.`, `_`, `-`.
    #[error("login `{0}` must be 3 to 64 characters of a-z, 0-9, '.', '_' or '-'")]
    BadLogin(String),
}

/// Checks a login name: 3–64 characters of `a-z0-9._-`, starting with a letter or digit.
pub fn check_login(login: &str) -> Result<(), AccountError> {
    let ok = (3..=64).contains(&login.len())
        && login.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
        && login.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
    if ok { Ok(()) } else { Err(AccountError::BadLogin(login.to_owned())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(s: &str) -> DivisionCode {
        DivisionCode::parse(s).expect("code")
    }

    #[test]
    fn roles_round_trip_through_their_names() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Ok(r));
            assert_eq!(serde_json::to_value(r).expect("json"), serde_json::Value::String(r.as_str().into()));
        }
        assert!(matches!(Role::parse("system"), Err(AccountError::UnknownRole(_))));
    }

    #[test]
    fn scopes_parse_and_print_the_same_spelling() {
        for text in ["district", "street:440303001000", "community:440303001001", "firm:7"] {
            assert_eq!(AccountScope::parse(text).expect(text).to_string(), text);
        }
        for bad in ["", "street", "street:440303001001", "community:440303001000", "firm:0", "firm:x", "estate:3"] {
            assert!(AccountScope::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn each_role_holds_only_its_scopes() {
        let street = AccountScope::Division(code("440303001000"));
        let community = AccountScope::Division(code("440303001001"));
        let firm = AccountScope::Firm(FirmId(1));
        let items = ["dog-licensing".to_owned()];
        assert!(Role::DistrictAdmin.check_scope(&AccountScope::District, None).is_ok());
        assert!(Role::DistrictAdmin.check_scope(&firm, None).is_err());
        assert!(Role::StreetOfficer.check_scope(&street, None).is_ok());
        assert!(Role::StreetOfficer.check_scope(&community, None).is_err());
        assert!(Role::CommunityWorker.check_scope(&community, None).is_ok());
        assert!(Role::FirmManager.check_scope(&firm, None).is_ok());
        assert!(Role::FirmManager.check_scope(&firm, Some(&items)).is_err());
        assert!(Role::FirmStaff.check_scope(&firm, Some(&items)).is_ok());
        assert_eq!(Role::FirmStaff.check_scope(&firm, None), Err(AccountError::ItemsRequired(Role::FirmStaff)));
        assert_eq!(Role::FirmStaff.check_scope(&firm, Some(&[])), Err(AccountError::ItemsRequired(Role::FirmStaff)));
        assert!(Role::AgencyOfficer.check_scope(&street, Some(&items)).is_ok());
        assert!(Role::Auditor.check_scope(&street, None).is_err());
    }

    #[test]
    fn logins_are_plain_lowercase_names() {
        for ok in ["admin", "zhang.san", "firm-7_staff", "a01"] {
            assert!(check_login(ok).is_ok(), "{ok}");
        }
        for bad in ["ab", "Admin", "张三", "-abc", "a b c", &"x".repeat(65)] {
            assert!(check_login(bad).is_err(), "{bad}");
        }
    }
}
