//! 物业服务企业 property-management firms and their 服务委托 service assignments.

use serde::{Deserialize, Serialize};

use crate::ids::{AssignmentId, EstateId, FirmId};
use crate::time::Date;

/// What kind of operator a firm is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FirmKind {
    /// An ordinary property-service firm.
    PropertyFirm,
    /// 兜底国企 the district's fallback state-owned operator (e.g. 正阳公司).
    FallbackStateOperator,
}

/// A 物业服务企业 property-management firm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropertyFirm {
    /// Registry id.
    pub id: FirmId,
    /// Registered name.
    pub name: String,
    /// 统一社会信用代码 unified social credit code (GB 32100), as registered.
    pub credit_code: String,
    /// Set when the code fails its check character but was accepted on purpose (early pilot codes
    /// do not conform): the reason given by whoever accepted it.
    pub credit_code_override: Option<String>,
    /// Ordinary firm or fallback state operator.
    pub kind: FirmKind,
    /// 法定代表人 legal representative.
    pub legal_representative: Option<String>,
    /// Contact phone, normalised.
    pub contact_phone: Option<String>,
}

/// 服务委托 which firm runs which estate, from when to when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAssignment {
    /// Registry id.
    pub id: AssignmentId,
    /// The firm.
    pub firm_id: FirmId,
    /// The estate.
    pub estate_id: EstateId,
    /// First day of service.
    pub from: Date,
    /// Last day of service (`None`: open-ended).
    pub to: Option<Date>,
    /// Reference of the delegation contract, if filed.
    pub contract_ref: Option<String>,
}

impl ServiceAssignment {
    /// Whether the assignment covers `day`.
    pub fn covers(&self, day: Date) -> bool {
        self.from <= day && self.to.is_none_or(|to| day <= to)
    }
}
