//! Surrogate identifiers of registry rows and records.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

id_type!(
    /// Id of a 小区 estate.
    EstateId
);
id_type!(
    /// Id of a 物业服务企业 property-management firm.
    FirmId
);
id_type!(
    /// Id of a 楼栋 building.
    BuildingId
);
id_type!(
    /// Id of a 房屋 house (a dwelling unit).
    HouseId
);
id_type!(
    /// Id of a registered person.
    PersonId
);
id_type!(
    /// Id of a 服务委托 service assignment (firm ↔ estate).
    AssignmentId
);
id_type!(
    /// Id of a record kept by the record engine for a plugin.
    RecordId
);
id_type!(
    /// Id of a 职能部门单位 agency unit (one police station, one judicial office).
    AgencyUnitId
);
id_type!(
    /// Id of an alert raised by a deadline rule or a plugin hook.
    AlertId
);
id_type!(
    /// Id of an 账号 account.
    AccountId
);
id_type!(
    /// Id of a 居住关系 occupancy (a person at a house over a period).
    OccupancyId
);
id_type!(
    /// Id of a 租赁 lease of a house.
    LeaseId
);
