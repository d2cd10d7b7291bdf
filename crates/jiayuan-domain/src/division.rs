//! 行政区划 administrative divisions and 网格 grid cells.

use serde::{Deserialize, Serialize};

use crate::time::Date;

/// The level of a division in the district → street → community hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DivisionLevel {
    /// 区 district, e.g. 罗湖区 (code 440303000000).
    District,
    /// 街道 street (sub-district).
    Street,
    /// 社区 community.
    Community,
}

/// A 12-digit 统计用区划代码 statistical division code: 6 county + 3 street + 3 community digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DivisionCode(String);

/// Why a text is not a division code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a division code: expected 12 digits (6 county + 3 street + 3 community)")]
pub struct DivisionCodeError(pub String);

impl DivisionCode {
    /// Parses a 12-digit code.
    pub fn parse(s: &str) -> Result<DivisionCode, DivisionCodeError> {
        if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(DivisionCode(s.to_owned()))
        } else {
            Err(DivisionCodeError(s.to_owned()))
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The level this code denotes: `xxxxxx000000` district, `xxxxxxsss000` street, else community.
    pub fn level(&self) -> DivisionLevel {
        if &self.0[6..] == "000000" {
            DivisionLevel::District
        } else if &self.0[9..] == "000" {
            DivisionLevel::Street
        } else {
            DivisionLevel::Community
        }
    }

    /// The code of the enclosing division (`None` for a district).
    pub fn parent(&self) -> Option<DivisionCode> {
        match self.level() {
            DivisionLevel::District => None,
            DivisionLevel::Street => Some(DivisionCode(format!("{}000000", &self.0[..6]))),
            DivisionLevel::Community => Some(DivisionCode(format!("{}000", &self.0[..9]))),
        }
    }

    /// Whether `self` is `other` or lies inside it.
    pub fn is_within(&self, other: &DivisionCode) -> bool {
        match other.level() {
            DivisionLevel::District => self.0[..6] == other.0[..6],
            DivisionLevel::Street => self.0[..9] == other.0[..9],
            DivisionLevel::Community => self.0 == other.0,
        }
    }
}

impl TryFrom<String> for DivisionCode {
    type Error = DivisionCodeError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        DivisionCode::parse(&s)
    }
}

impl From<DivisionCode> for String {
    fn from(c: DivisionCode) -> String {
        c.0
    }
}

impl std::fmt::Display for DivisionCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A division, kept with its validity so retired codes stay resolvable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Division {
    /// Statistical code.
    pub code: DivisionCode,
    /// Level in the hierarchy.
    pub level: DivisionLevel,
    /// Chinese name, e.g. 桂园街道.
    pub name_zh: String,
    /// Enclosing division.
    pub parent: Option<DivisionCode>,
    /// First day the code is in force.
    pub valid_from: Date,
    /// Last day the code is in force (`None`: still in force).
    pub valid_to: Option<Date>,
}

/// Kind of a 网格 grid cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GridKind {
    /// 基础网格 basic grid.
    Basic,
    /// 专属网格 dedicated grid (one estate or campus).
    Dedicated,
}

/// Why a text is not a grid-cell code (the text itself is not repeated).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GridCodeError {
    /// Not 15 digits.
    #[error("not a grid-cell code: expected 15 digits (12-digit community code + 3-digit sequence)")]
    Shape,
    /// The first 12 digits are not a community code.
    #[error("a grid-cell code starts with the 12-digit code of its community (not a street or district)")]
    NotInCommunity,
    /// The sequence is `000`.
    #[error("the grid-cell sequence (last 3 digits) starts at 001")]
    ZeroSequence,
}

/// Checks a 15-digit 网格编码 grid-cell code and returns the community it lies in.
pub fn parse_grid_code(code: &str) -> Result<DivisionCode, GridCodeError> {
    if code.len() != 15 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(GridCodeError::Shape);
    }
    let community = DivisionCode::parse(&code[..12]).map_err(|_| GridCodeError::Shape)?;
    if community.level() != DivisionLevel::Community {
        return Err(GridCodeError::NotInCommunity);
    }
    if &code[12..] == "000" {
        return Err(GridCodeError::ZeroSequence);
    }
    Ok(community)
}

/// A 网格 grid cell: 15-digit code = 6 district + 3 street + 3 community + 3 sequence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GridCell {
    /// 15-digit grid code.
    pub code: String,
    /// Basic or dedicated.
    pub kind: GridKind,
    /// The community the cell belongs to (never directly a street).
    pub community: DivisionCode,
    /// Display name.
    pub name: String,
    /// For a dedicated cell: the estate it is dedicated to.
    pub estate_id: Option<crate::ids::EstateId>,
    /// First day in force.
    pub valid_from: Date,
    /// Last day in force.
    pub valid_to: Option<Date>,
}

impl Division {
    /// Whether this version of the division is in force on `day`.
    pub fn in_force_on(&self, day: Date) -> bool {
        self.valid_from <= day && self.valid_to.is_none_or(|to| day <= to)
    }
}

#[cfg(test)]
mod grid_tests {
    use super::*;

    #[test]
    fn grid_codes_name_their_community() {
        let c = parse_grid_code("440303001001001").expect("valid");
        assert_eq!(c.as_str(), "440303001001");
        assert_eq!(parse_grid_code("440303001000001"), Err(GridCodeError::NotInCommunity));
        assert_eq!(parse_grid_code("440303001001000"), Err(GridCodeError::ZeroSequence));
        assert_eq!(parse_grid_code("44030300100100"), Err(GridCodeError::Shape));
        assert_eq!(parse_grid_code("44030300100100x"), Err(GridCodeError::Shape));
    }
}
