//! The plugin's configuration (`[plugin_config.dog-licensing]` in the host's configuration),
//! read from [`jiayuan_plugin_api::HostContext::config_json`] on every call.
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `household_limits` | object: division-code prefix → integer ≥ 1 | hard limit of live dogs per household in a jurisdiction; the longest prefix of the estate's community code wins; no match: no hard limit |
//! | `bite_observation_hours` | integer 1–720, optional | hours within which a biting dog must be taken to observation; when set, the bite alert says so (Shenzhen's rule was not found; Guangzhou's is 24) |
//!
//! ```json
//! { "household_limits": { "440303": 3, "440303004": 2 }, "bite_observation_hours": 24 }
//! ```
//!
//! Unknown keys are refused, so a misspelt key does not silently switch a limit off.

use std::collections::BTreeMap;

use serde::Deserialize;

use jiayuan_domain::DivisionCode;
use jiayuan_plugin_api::PluginError;

/// The parsed configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// Hard per-household limits keyed by division-code prefix (`440303` 罗湖区, `440303004`
    /// 翠竹街道, `440303004001` one community).
    #[serde(default)]
    pub household_limits: BTreeMap<String, u32>,
    /// Hours within which a biting dog must be taken to observation, if the jurisdiction says.
    #[serde(default)]
    pub bite_observation_hours: Option<u32>,
}

impl PluginConfig {
    /// Parses and checks the config JSON (`{}` gives the defaults).
    pub fn parse(json: &str) -> Result<PluginConfig, PluginError> {
        let json = if json.trim().is_empty() { "{}" } else { json };
        let config: PluginConfig = serde_json::from_str(json)
            .map_err(|e| PluginError::Config(format!("dog-licensing config is not usable: {e}")))?;
        for (prefix, limit) in &config.household_limits {
            if prefix.is_empty() || prefix.len() > 12 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
                return Err(PluginError::Config(format!(
                    "household_limits key `{prefix}` must be a division-code prefix of 1 to 12 digits"
                )));
            }
            if *limit == 0 {
                return Err(PluginError::Config(format!("household_limits.{prefix} must be at least 1")));
            }
        }
        if let Some(h) = config.bite_observation_hours
            && !(1..=720).contains(&h)
        {
            return Err(PluginError::Config(format!("bite_observation_hours is {h}, outside 1..=720")));
        }
        Ok(config)
    }

    /// The hard limit for a household in `community`: the entry with the longest prefix of its
    /// code, if any.
    pub fn household_limit(&self, community: &DivisionCode) -> Option<u32> {
        self.household_limits
            .iter()
            .filter(|(prefix, _)| community.as_str().starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, limit)| *limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn community(s: &str) -> DivisionCode {
        DivisionCode::parse(s).expect("valid code")
    }

    #[test]
    fn the_longest_prefix_wins() {
        let c =
            PluginConfig::parse(r#"{"household_limits": {"440303": 3, "440303004": 2, "4403": 5}}"#).expect("valid");
        assert_eq!(c.household_limit(&community("440303004001")), Some(2));
        assert_eq!(c.household_limit(&community("440303003001")), Some(3));
        assert_eq!(c.household_limit(&community("440304001001")), Some(5));
        assert_eq!(c.household_limit(&community("441402001001")), None);
        assert_eq!(PluginConfig::parse("{}").expect("valid").household_limit(&community("440303004001")), None);
        assert_eq!(PluginConfig::parse("").expect("empty is default"), PluginConfig::default());
    }

    #[test]
    fn unusable_config_is_refused_with_the_reason() {
        for (json, needle) in [
            (r#"{"household_limit": {"440303": 3}}"#, "unknown field"),
            (r#"{"household_limits": {"罗湖": 3}}"#, "division-code prefix"),
            (r#"{"household_limits": {"440303": 0}}"#, "at least 1"),
            (r#"{"household_limits": {"440303": -1}}"#, "not usable"),
            (r#"{"bite_observation_hours": 0}"#, "outside 1..=720"),
        ] {
            match PluginConfig::parse(json) {
                Err(PluginError::Config(msg)) => assert!(msg.contains(needle), "{json}: {msg}"),
                other => panic!("{json}: {other:?}"),
            }
        }
    }
}
