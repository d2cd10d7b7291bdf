//! 受众 audiences: who is looking, and who acts.
//!
//! Every caller belongs to exactly one [`Audience`]; the host decides which from the caller's
//! account (a plugin never sees a user or a role). A manifest says which audiences may see a
//! field or a whole record kind, which may unmask a sensitive field, and which may fire a
//! transition ([`Actor`]: an audience, or the host itself).
//!
//! Agency kinds are registry data, not variants here: `agency:police`, `agency:judicial`,
//! `agency:narcotics` … name kinds the district keeps in its registry. In a declaration,
//! `agency:*` stands for every agency kind.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Who is looking at, or acting on, a record.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Audience {
    /// 物业 the property firm serving the place (managers and staff alike).
    Firm,
    /// 社区 the community (社区工作站) of the place.
    Community,
    /// 街道 the street office of the place.
    Street,
    /// 职能部门 an agency of the given kind (`police`, `judicial`, …; `*` in a declaration: any).
    Agency(String),
    /// 区 the district office.
    District,
    /// 审计 the auditor: reads, never acts.
    Auditor,
}

/// The wildcard agency kind of a declaration (`agency:*`).
pub const ANY_AGENCY: &str = "*";

impl Audience {
    /// The audience of agencies of `kind` (`Audience::agency("police")` is `agency:police`).
    pub fn agency(kind: &str) -> Audience {
        Audience::Agency(kind.to_owned())
    }

    /// Any agency (`agency:*`), for declarations.
    pub fn any_agency() -> Audience {
        Audience::Agency(ANY_AGENCY.to_owned())
    }

    /// Whether a declaration naming `self` admits a caller of audience `caller`: equal, or
    /// `agency:*` and any agency.
    pub fn admits(&self, caller: &Audience) -> bool {
        match (self, caller) {
            (Audience::Agency(want), Audience::Agency(have)) => want == ANY_AGENCY || want == have,
            (a, b) => a == b,
        }
    }

    /// Whether any of `declared` admits `caller`.
    pub fn any_admits(declared: &[Audience], caller: &Audience) -> bool {
        declared.iter().any(|d| d.admits(caller))
    }

    /// Whether this is the firm audience (firms never unmask sensitive fields).
    pub fn is_firm(&self) -> bool {
        matches!(self, Audience::Firm)
    }
}

impl fmt::Display for Audience {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Audience::Firm => f.write_str("firm"),
            Audience::Community => f.write_str("community"),
            Audience::Street => f.write_str("street"),
            Audience::Agency(kind) => write!(f, "agency:{kind}"),
            Audience::District => f.write_str("district"),
            Audience::Auditor => f.write_str("auditor"),
        }
    }
}

/// Why a text is not an audience.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "not an audience: expected one of firm, community, street, agency:<kind> (kind snake_case, or *), district, auditor"
)]
pub struct AudienceParseError;

impl FromStr for Audience {
    type Err = AudienceParseError;

    fn from_str(s: &str) -> Result<Audience, AudienceParseError> {
        Ok(match s {
            "firm" => Audience::Firm,
            "community" => Audience::Community,
            "street" => Audience::Street,
            "district" => Audience::District,
            "auditor" => Audience::Auditor,
            other => {
                let kind = other.strip_prefix("agency:").ok_or(AudienceParseError)?;
                let well_formed = kind == ANY_AGENCY
                    || (!kind.is_empty()
                        && kind.starts_with(|c: char| c.is_ascii_lowercase())
                        && kind.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
                if !well_formed {
                    return Err(AudienceParseError);
                }
                Audience::Agency(kind.to_owned())
            }
        })
    }
}

impl Serialize for Audience {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Audience, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Who may fire a transition: an audience, or the host itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Actor {
    /// The host itself: deadline rules and the scheduler.
    System,
    /// Callers of an audience.
    Audience(Audience),
}

impl Actor {
    /// The firm audience as an actor.
    pub fn firm() -> Actor {
        Actor::Audience(Audience::Firm)
    }

    /// The community audience as an actor.
    pub fn community() -> Actor {
        Actor::Audience(Audience::Community)
    }

    /// The street audience as an actor.
    pub fn street() -> Actor {
        Actor::Audience(Audience::Street)
    }

    /// The district audience as an actor.
    pub fn district() -> Actor {
        Actor::Audience(Audience::District)
    }

    /// An agency of `kind` as an actor.
    pub fn agency(kind: &str) -> Actor {
        Actor::Audience(Audience::agency(kind))
    }

    /// Whether a declaration naming `self` admits a caller acting as `caller`.
    pub fn admits(&self, caller: &Actor) -> bool {
        match (self, caller) {
            (Actor::System, Actor::System) => true,
            (Actor::Audience(want), Actor::Audience(have)) => want.admits(have),
            _ => false,
        }
    }
}

impl From<Audience> for Actor {
    fn from(a: Audience) -> Actor {
        Actor::Audience(a)
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::System => f.write_str("system"),
            Actor::Audience(a) => a.fmt(f),
        }
    }
}

impl FromStr for Actor {
    type Err = AudienceParseError;

    fn from_str(s: &str) -> Result<Actor, AudienceParseError> {
        if s == "system" { Ok(Actor::System) } else { s.parse().map(Actor::Audience) }
    }
}

impl Serialize for Actor {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Actor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Actor, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// An extra condition on who may fire a transition, beyond its actors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "guard", content = "field", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Guard {
    /// 牵头单位 only an officer of the agency unit named in this `AgencyUnitRef` field of the
    /// record (another unit of the same kind is refused).
    LeadAgency(String),
    /// 巡办分离 not the account that created the record (the finder does not also handle).
    NotCreator,
    /// 承办人 only the record's assignee.
    Assignee,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audiences_read_and_write_as_text() {
        for text in ["firm", "community", "street", "agency:police", "agency:*", "district", "auditor"] {
            let a: Audience = text.parse().expect(text);
            assert_eq!(a.to_string(), text);
            assert_eq!(serde_json::to_string(&a).expect("json"), format!("\"{text}\""));
        }
        for bad in ["", "agency:", "agency:Police", "agency:x-y", "police", "Firm"] {
            assert!(bad.parse::<Audience>().is_err(), "{bad}");
        }
        assert_eq!("system".parse::<Actor>(), Ok(Actor::System));
    }

    #[test]
    fn agency_wildcards_admit_every_agency_and_nothing_else() {
        let any = Audience::any_agency();
        assert!(any.admits(&Audience::agency("police")));
        assert!(!any.admits(&Audience::Firm));
        assert!(Audience::agency("police").admits(&Audience::agency("police")));
        assert!(!Audience::agency("police").admits(&Audience::agency("judicial")));
        assert!(!Actor::System.admits(&Actor::Audience(Audience::District)));
    }
}
