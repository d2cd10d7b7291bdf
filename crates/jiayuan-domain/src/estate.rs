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

/// A 小区 residential estate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Estate {
    /// Registry id.
    pub id: EstateId,
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
}
