//! 位置 where a record lives, and 职能部门 agency units.
//!
//! A record sits at a place: an estate, or a 网格 grid cell for work outside estates (street-front
//! shops, drop points, campaigns in an urban village). Reach, enablement and scheduling work on
//! places. Agency kinds and units are registry data: the platform knows no fixed list of agencies.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::division::DivisionCode;
use crate::ids::{AgencyUnitId, EstateId};

/// Where a record lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Place {
    /// 小区 an estate.
    Estate(EstateId),
    /// 网格 a grid cell, by its 15-digit grid code.
    GridCell(String),
}

impl Place {
    /// The estate, for a place that is one.
    pub fn estate(&self) -> Option<EstateId> {
        match self {
            Place::Estate(id) => Some(*id),
            Place::GridCell(_) => None,
        }
    }

    /// The grid code, for a place that is a grid cell.
    pub fn grid_cell(&self) -> Option<&str> {
        match self {
            Place::Estate(_) => None,
            Place::GridCell(code) => Some(code),
        }
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Estate(id) => write!(f, "estate {id}"),
            Place::GridCell(code) => write!(f, "grid cell {code}"),
        }
    }
}

/// 职能部门类别 a kind of agency (`police`, `judicial`, `narcotics`, `urban_management`,
/// `emergency`, `fire`, `market_regulation`, `health`, …): registry data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgencyKind {
    /// Stable code, snake_case; the audience `agency:<code>`.
    pub code: String,
    /// Name in Chinese (派出所).
    pub name_zh: String,
    /// Name in English (police station).
    pub name_en: String,
}

/// 职能部门单位 one agency unit: a police station, a judicial office.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgencyUnit {
    /// Registry id.
    pub id: AgencyUnitId,
    /// Its kind's code.
    pub kind: String,
    /// Display name (`黄贝派出所`).
    pub name: String,
    /// The division it answers for (a street or the district); records at places within it are
    /// in its jurisdiction.
    pub jurisdiction: DivisionCode,
}

/// Whether `code` is a well-formed agency-kind code: 2–32 characters of `a-z`, `0-9` and `_`,
/// starting with a letter.
pub fn is_agency_kind_code(code: &str) -> bool {
    let len = code.len();
    (2..=32).contains(&len)
        && code.starts_with(|c: char| c.is_ascii_lowercase())
        && code.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The agency kinds a new installation starts with (the district may add more).
pub const DEFAULT_AGENCY_KINDS: [(&str, &str, &str); 8] = [
    ("police", "派出所", "Police station"),
    ("judicial", "司法所", "Judicial office"),
    ("narcotics", "禁毒办", "Narcotics control office"),
    ("urban_management", "城管", "Urban management"),
    ("emergency", "应急管理", "Emergency management"),
    ("fire", "消防", "Fire and rescue"),
    ("market_regulation", "市场监管", "Market regulation"),
    ("health", "社康中心", "Community health centre"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_serialise_by_kind() {
        let e = serde_json::to_string(&Place::Estate(EstateId(3))).expect("json");
        assert_eq!(e, r#"{"estate":3}"#);
        let g: Place = serde_json::from_str(r#"{"grid_cell":"440303001001001"}"#).expect("json");
        assert_eq!(g.grid_cell(), Some("440303001001001"));
        assert_eq!(g.estate(), None);
    }

    #[test]
    fn agency_kind_codes() {
        assert!(is_agency_kind_code("police") && is_agency_kind_code("market_regulation"));
        assert!(!is_agency_kind_code("P") && !is_agency_kind_code("1fire") && !is_agency_kind_code("fire-x"));
        assert!(DEFAULT_AGENCY_KINDS.iter().all(|(c, _, _)| is_agency_kind_code(c)));
    }
}
