//! 居住 who lives where: 居住关系 occupancy (a person at a house, from when to when) and
//! 租赁 leases (the rental of a house, with the landlord who must report its occupants).
//!
//! These are the registry's, not a plugin's: every item reads and changes them through one host
//! service (dog licensing asks "has the owner lived there six months", grid collection records
//! moves).

use serde::{Deserialize, Serialize};

use crate::ids::{HouseId, LeaseId, OccupancyId, PersonId};
use crate::time::{Date, Timestamp};

/// 与户主关系 how an occupant relates to the house.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    /// 业主 owner.
    Owner,
    /// 户主 head of household.
    Head,
    /// 配偶 spouse.
    Spouse,
    /// 子女 child.
    Child,
    /// 父母 parent.
    Parent,
    /// 其他亲属 other relative.
    Relative,
    /// 租客 tenant.
    Tenant,
    /// 员工宿舍 employee housed by an employer.
    Employee,
    /// 其他 other.
    Other,
}

impl Relation {
    /// Every relation, in a fixed order.
    pub const ALL: [Relation; 9] = [
        Relation::Owner,
        Relation::Head,
        Relation::Spouse,
        Relation::Child,
        Relation::Parent,
        Relation::Relative,
        Relation::Tenant,
        Relation::Employee,
        Relation::Other,
    ];
}

/// 居住关系 a person living at a house over a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Occupancy {
    /// Registry id.
    pub id: OccupancyId,
    /// Who.
    pub person_id: PersonId,
    /// Where.
    pub house_id: HouseId,
    /// 入住 first day.
    pub from: Date,
    /// 迁出 last day (`None`: still living there).
    pub to: Option<Date>,
    /// How the person relates to the house.
    pub relation: Relation,
    /// Whether this is the person's 主要居所 primary residence (at most one current primary).
    pub primary: bool,
    /// When the occupancy was 申报 reported to the registry, if it was.
    pub reported_at: Option<Timestamp>,
}

impl Occupancy {
    /// Whether the occupancy covers `day`.
    pub fn covers(&self, day: Date) -> bool {
        self.from <= day && self.to.is_none_or(|to| day <= to)
    }
}

/// 租赁 the rental of a house.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Registry id.
    pub id: LeaseId,
    /// The house rented out.
    pub house_id: HouseId,
    /// The landlord: the 申报义务人 duty-to-report party (深圳经济特区居住证条例) who must report
    /// the occupants.
    pub landlord_id: PersonId,
    /// First day of the lease.
    pub from: Date,
    /// Last day (`None`: open-ended).
    pub to: Option<Date>,
    /// Reference of the lease contract or its 备案 filing, if any.
    pub contract_ref: Option<String>,
}

impl Lease {
    /// Whether the lease covers `day`.
    pub fn covers(&self, day: Date) -> bool {
        self.from <= day && self.to.is_none_or(|to| day <= to)
    }
}

/// Two periods `[a_from, a_to]` and `[b_from, b_to]` (an open end is `None`) share a day.
pub fn periods_overlap(a_from: Date, a_to: Option<Date>, b_from: Date, b_to: Option<Date>) -> bool {
    a_to.is_none_or(|a_to| b_from <= a_to) && b_to.is_none_or(|b_to| a_from <= b_to)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        s.parse().expect("date")
    }

    #[test]
    fn overlapping_periods() {
        assert!(periods_overlap(d("2024-01-01"), None, d("2025-01-01"), None));
        assert!(periods_overlap(d("2024-01-01"), Some(d("2024-12-31")), d("2024-12-31"), None));
        assert!(!periods_overlap(d("2024-01-01"), Some(d("2024-12-30")), d("2024-12-31"), None));
        assert!(!periods_overlap(d("2025-01-01"), None, d("2024-01-01"), Some(d("2024-12-31"))));
    }

    #[test]
    fn an_occupancy_covers_its_days() {
        let o = Occupancy {
            id: OccupancyId(1),
            person_id: PersonId(1),
            house_id: HouseId(1),
            from: d("2024-03-01"),
            to: Some(d("2024-03-31")),
            relation: Relation::Tenant,
            primary: true,
            reported_at: None,
        };
        assert!(o.covers(d("2024-03-01")) && o.covers(d("2024-03-31")));
        assert!(!o.covers(d("2024-04-01")) && !o.covers(d("2024-02-29")));
    }
}
