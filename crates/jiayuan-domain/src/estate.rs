//! 小区 estates, 楼栋 buildings and 房屋 houses.

use serde::{Deserialize, Serialize};

use crate::division::DivisionCode;
use crate::ids::{BuildingId, EstateId, HouseId};

/// 管理状态 how an estate is managed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManagementStatus {
    /// 物业管理 managed by a property firm under contract.
    PropertyManaged,
    /// 无物业 no property management.
    Unmanaged,
    /// 业主自管 self-managed by the owners.
    OwnerSelfManaged,
    /// 兜底国企 taken over by the district's fallback state-owned operator.
    FallbackStateOperator,
}

/// 引入物业 onboarding stage of an estate without management (see the onboarding campaign).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnboardingStage {
    /// 已摸排 surveyed.
    Surveyed,
    /// 列入目标 targeted.
    Targeted,
    /// 协商中 negotiating.
    Negotiating,
    /// 业主表决 owners' vote (民法典 art. 278 tallies).
    OwnerVote,
    /// 已同意 agreed.
    Agreed,
    /// 已签约 contract signed.
    ContractSigned,
    /// 已进驻 onboarded.
    Onboarded,
    /// 拒绝 refused.
    Refused,
    /// 暂缓 deferred.
    Deferred,
}

/// What kind of place an estate entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EstateKind {
    /// 住宅小区 a residential estate.
    Estate,
    /// 城中村 an urban village.
    UrbanVillage,
    /// 楼栋群 a group of buildings managed as one (no enclosed estate).
    BuildingGroup,
}

/// A 小区编码 estate code: the stable natural key the district gives an estate (imports and
/// exports match on it). 1–32 characters of `A-Z`, `0-9`, `-` and `_`, upper-cased.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EstateCode(String);

/// Why a text is not an estate code (the text itself is not repeated).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an estate code: expected 1–32 characters of A–Z, 0–9, `-` or `_`")]
pub struct EstateCodeError;

impl EstateCode {
    /// Parses an estate code, upper-casing ASCII letters.
    pub fn parse(s: &str) -> Result<EstateCode, EstateCodeError> {
        let s = s.trim().to_ascii_uppercase();
        let ok = (1..=32).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok { Ok(EstateCode(s)) } else { Err(EstateCodeError) }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EstateCode {
    type Error = EstateCodeError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        EstateCode::parse(&s)
    }
}

impl From<EstateCode> for String {
    fn from(c: EstateCode) -> String {
        c.0
    }
}

impl std::fmt::Display for EstateCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A 小区 residential estate (or an urban village or building group kept like one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Estate {
    /// Registry id.
    pub id: EstateId,
    /// The stable estate code (natural key).
    pub code: EstateCode,
    /// Estate, urban village or building group.
    pub kind: EstateKind,
    /// Name, e.g. 翠竹苑.
    pub name: String,
    /// The 社区 community it lies in (its street and district follow from the code).
    pub community: DivisionCode,
    /// Standard address text.
    pub address: String,
    /// How it is managed.
    pub management: ManagementStatus,
    /// Onboarding stage, for estates that had no management.
    pub onboarding: Option<OnboardingStage>,
    /// Number of households (used by per-household KPIs).
    pub households: u32,
}

impl Estate {
    /// The 街道 street the estate belongs to.
    pub fn street(&self) -> Option<DivisionCode> {
        self.community.parent()
    }
}

/// A 楼栋 building.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Building {
    /// Registry id.
    pub id: BuildingId,
    /// The estate it belongs to (`None` for buildings outside estates, e.g. 城中村).
    pub estate_id: Option<EstateId>,
    /// Name or number, e.g. 3栋.
    pub name: String,
    /// Number of floors above ground.
    pub floors: u16,
    /// Height in metres; residential buildings over 27 m are 高层 high-rise.
    pub height_m: f32,
    /// Whether it has an 电梯 elevator.
    pub elevator: bool,
}

impl Building {
    /// 高层民用建筑: residential building higher than 27 m.
    pub fn is_high_rise(&self) -> bool {
        self.height_m > 27.0
    }
}

/// 房屋用途 how a house is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HouseUse {
    /// 自住 owner-occupied.
    SelfOccupied,
    /// 出租 rented.
    Rented,
    /// 空置 vacant.
    Vacant,
    /// 商用 commercial.
    Commercial,
    /// 宿舍 dormitory.
    Dormitory,
}

/// A 房屋 dwelling unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct House {
    /// Registry id.
    pub id: HouseId,
    /// The building.
    pub building_id: BuildingId,
    /// The estate (denormalised from the building for scope checks).
    pub estate_id: Option<EstateId>,
    /// Room number, e.g. 1203.
    pub room: String,
    /// Floor area in square metres.
    pub area_m2: f32,
    /// Use.
    pub use_: HouseUse,
    /// The 25-digit Shenzhen 标准地址编码 standard-address code, when known.
    pub address_code: Option<AddressCode>,
}

/// A 25-digit Shenzhen 标准地址编码 standard-address code (《社会管理要素统一地址规范》). Opaque:
/// only its shape is checked.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AddressCode(String);

/// Why a text is not a standard-address code (the text itself is not repeated).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a standard-address code: expected 25 digits")]
pub struct AddressCodeError;

impl AddressCode {
    /// Parses a 25-digit code.
    pub fn parse(s: &str) -> Result<AddressCode, AddressCodeError> {
        let s = s.trim();
        if s.len() == 25 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(AddressCode(s.to_owned()))
        } else {
            Err(AddressCodeError)
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AddressCode {
    type Error = AddressCodeError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        AddressCode::parse(&s)
    }
}

impl From<AddressCode> for String {
    fn from(c: AddressCode) -> String {
        c.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estate_codes_are_upper_cased_and_bounded() {
        assert_eq!(EstateCode::parse(" lh-gy_001 ").map(|c| c.as_str().to_owned()), Ok("LH-GY_001".to_owned()));
        assert_eq!(EstateCode::parse(""), Err(EstateCodeError));
        assert_eq!(EstateCode::parse("翠竹苑"), Err(EstateCodeError));
        assert_eq!(EstateCode::parse(&"A".repeat(33)), Err(EstateCodeError));
        assert!(EstateCode::parse(&"A".repeat(32)).is_ok());
    }

    #[test]
    fn address_codes_are_25_digits() {
        assert!(AddressCode::parse("4403030010010010010010001").is_ok());
        assert_eq!(AddressCode::parse("440303001001001001001000"), Err(AddressCodeError));
        assert_eq!(AddressCode::parse("440303001001001001001000A"), Err(AddressCodeError));
    }

    #[test]
    fn high_rise_is_above_27_metres() {
        let b = |h| Building {
            id: BuildingId(1),
            estate_id: None,
            name: "1栋".into(),
            floors: 9,
            height_m: h,
            elevator: true,
        };
        assert!(!b(27.0).is_high_rise());
        assert!(b(27.1).is_high_rise());
    }
}
