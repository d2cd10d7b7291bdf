//! Registered persons and their 证件 identity documents.

use serde::{Deserialize, Serialize};

use crate::ids::{HouseId, PersonId};
use crate::time::Date;

/// 证件类型 the kind of an identity document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocKind {
    /// 居民身份证 resident identity card (GB 11643; 18 characters, or a legacy 15-digit number).
    ResidentId,
    /// 港澳台居民居住证 residence permit for Hong Kong, Macao and Taiwan residents (18, prefix 810000/820000/830000).
    HkMoTwResidencePermit,
    /// 港澳居民来往内地通行证 home-return permit (H or M + 8 digits, optionally + 2 issue digits).
    HomeReturnPermit,
    /// 台湾居民来往大陆通行证 Taiwan compatriot permit (8 digits).
    TaiwanCompatriotPermit,
    /// 外国人永久居留身份证 foreigner's permanent residence ID (2017: 15 characters; 2023: 18 digits starting with 9).
    ForeignPermanentResident,
    /// 护照 passport.
    Passport,
}

impl DocKind {
    /// The Chinese name of the document kind, as printed on forms and in messages.
    pub fn name_zh(self) -> &'static str {
        match self {
            DocKind::ResidentId => "居民身份证",
            DocKind::HkMoTwResidencePermit => "港澳台居民居住证",
            DocKind::HomeReturnPermit => "港澳居民来往内地通行证",
            DocKind::TaiwanCompatriotPermit => "台湾居民来往大陆通行证",
            DocKind::ForeignPermanentResident => "外国人永久居留身份证",
            DocKind::Passport => "护照",
        }
    }
}

/// 性别 sex, as derived from the document or declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    /// 男
    Male,
    /// 女
    Female,
}

/// 户籍 where a person's household registration is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hukou {
    /// 深圳户籍
    Shenzhen,
    /// 非深户籍 other mainland registration (must report residence under 居住证条例).
    NonShenzhen,
    /// 港澳台
    HkMoTw,
    /// 外籍
    Foreign,
}

/// An identity document as registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityDoc {
    /// Kind of document.
    pub kind: DocKind,
    /// Number, normalised (upper case, no spaces; legacy 15-digit IDs kept as given).
    pub number: String,
}

/// A registered person. Name, document and phone are 个人信息 personal information.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// Registry id.
    pub id: PersonId,
    /// Name; may contain `·` (U+00B7) and CJK extension characters.
    pub name: String,
    /// Identity document.
    pub doc: IdentityDoc,
    /// Sex.
    pub sex: Option<Sex>,
    /// Birth date.
    pub birth_date: Option<Date>,
    /// Household registration.
    pub hukou: Hukou,
    /// Mobile phone, normalised to 11 digits.
    pub phone: Option<String>,
    /// The house of the person's current 主要居所 primary residence, if one is registered.
    /// Derived by the registry from [`Occupancy`](crate::Occupancy) (never stored on the
    /// person): occupancy is the one record of who lives where.
    pub house_id: Option<HouseId>,
}

impl Person {
    /// The birth date: the registry's, or else the one a resident identity number encodes.
    pub fn known_birth_date(&self) -> Option<Date> {
        self.birth_date.or_else(|| {
            let n = &self.doc.number;
            if self.doc.kind != DocKind::ResidentId || n.len() != 18 || !n.is_ascii() {
                return None;
            }
            format!("{}-{}-{}", &n[6..10], &n[10..12], &n[12..14]).parse().ok()
        })
    }
}
