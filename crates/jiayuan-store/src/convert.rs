//! Conversions between domain values and their column representations.
//!
//! Enums are stored as their serde names (snake_case text), dates as `YYYY-MM-DD` text, instants
//! as Unix milliseconds. Reading back checks everything and reports [`StoreError::Corrupt`].

use serde::Serialize;
use serde::de::DeserializeOwned;

use jiayuan_domain::{Date, DivisionCode};

use crate::error::StoreError;

/// The serde name of a unit enum variant, e.g. `ManagementStatus::PropertyManaged` →
/// `property_managed`.
pub(crate) fn enum_text<T: Serialize + std::fmt::Debug>(what: &'static str, value: &T) -> Result<String, StoreError> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        Ok(other) => {
            Err(StoreError::Corrupt { what, detail: format!("{value:?} does not serialize to text but to {other}") })
        }
        Err(e) => Err(StoreError::Corrupt { what, detail: format!("{value:?} does not serialize: {e}") }),
    }
}

/// Parses the serde name of a unit enum variant.
pub(crate) fn parse_enum<T: DeserializeOwned>(what: &'static str, text: &str) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
        .map_err(|_| StoreError::Corrupt { what, detail: format!("unknown value `{text}`") })
}

/// Parses an optional enum column.
pub(crate) fn parse_enum_opt<T: DeserializeOwned>(
    what: &'static str,
    text: Option<&str>,
) -> Result<Option<T>, StoreError> {
    text.map(|t| parse_enum(what, t)).transpose()
}

/// Parses a `YYYY-MM-DD` date column.
pub(crate) fn parse_date(what: &'static str, text: &str) -> Result<Date, StoreError> {
    text.parse().map_err(|e: jiayuan_domain::time::DateParseError| StoreError::Corrupt { what, detail: e.to_string() })
}

/// Parses an optional date column.
pub(crate) fn parse_date_opt(what: &'static str, text: Option<&str>) -> Result<Option<Date>, StoreError> {
    text.map(|t| parse_date(what, t)).transpose()
}

/// Parses a division code column.
pub(crate) fn parse_code(what: &'static str, text: &str) -> Result<DivisionCode, StoreError> {
    DivisionCode::parse(text).map_err(|e| StoreError::Corrupt { what, detail: e.to_string() })
}

/// Parses an optional division code column.
pub(crate) fn parse_code_opt(what: &'static str, text: Option<&str>) -> Result<Option<DivisionCode>, StoreError> {
    text.map(|t| parse_code(what, t)).transpose()
}

/// Narrows an integer column to the domain's integer type.
pub(crate) fn narrow<T: TryFrom<i64>>(what: &'static str, value: i64) -> Result<T, StoreError> {
    T::try_from(value).map_err(|_| StoreError::Corrupt { what, detail: format!("{value} is out of range") })
}

/// Today's civil date in Asia/Shanghai by the system clock (for "current" in registry reads such
/// as a person's primary residence; dated questions take their day explicitly).
pub(crate) fn today() -> Date {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    jiayuan_domain::Timestamp(millis).shanghai_date()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiayuan_domain::{DocKind, HouseUse, ManagementStatus, OnboardingStage};

    #[test]
    fn enums_use_their_serde_names() {
        assert_eq!(
            enum_text("x", &ManagementStatus::FallbackStateOperator).ok().as_deref(),
            Some("fallback_state_operator")
        );
        assert_eq!(enum_text("x", &DocKind::HkMoTwResidencePermit).ok().as_deref(), Some("hk_mo_tw_residence_permit"));
        assert_eq!(parse_enum::<OnboardingStage>("x", "owner_vote").ok(), Some(OnboardingStage::OwnerVote));
        assert_eq!(parse_enum::<HouseUse>("x", "rented").ok(), Some(HouseUse::Rented));
    }

    #[test]
    fn unknown_texts_are_corrupt() {
        let err = parse_enum::<HouseUse>("house.use", "palace").err();
        assert!(matches!(err, Some(StoreError::Corrupt { what: "house.use", .. })), "{err:?}");
        assert!(matches!(parse_date("d", "2026-02-30"), Err(StoreError::Corrupt { .. })));
        assert!(matches!(parse_code("c", "4403"), Err(StoreError::Corrupt { .. })));
        assert!(matches!(narrow::<u16>("floors", 70_000), Err(StoreError::Corrupt { .. })));
        assert_eq!(narrow::<u16>("floors", 33).ok(), Some(33));
    }
}
