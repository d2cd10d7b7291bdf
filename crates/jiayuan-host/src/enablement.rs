//! 启用 which service items run where.
//!
//! Four levels, from broad to specific: district (区) → street (街道) → estate (小区) → firm (物业企业,
//! wherever it serves). A grid cell outside estates is decided at the district and street levels.
//! At each level the configuration file may enable or disable an item, and the
//! district office may store a run-time override in the database, which wins over the file at that
//! level. The most specific level that says anything decides. Enablement only routes work: it never
//! loads, unloads or deletes anything.

use std::sync::RwLock;
use std::time::{Duration, Instant};

use serde::Serialize;

use jiayuan_domain::{DivisionCode, EstateId, FirmId, Place, Timestamp};
use jiayuan_store::{EnablementOverride, EnablementScope, Store, StoreError};

use crate::settings::{EnablementSettings, ItemSwitches};

/// Where an estate sits, as far as enablement is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceInfo {
    /// The place: an estate, or a grid cell outside estates.
    pub place: Place,
    /// Its 街道 street.
    pub street: Option<DivisionCode>,
    /// Its 社区 community.
    pub community: DivisionCode,
    /// The firm serving it today, if any.
    pub firm: Option<FirmId>,
}

impl PlaceInfo {
    /// The estate, for a place that is one.
    pub fn estate_id(&self) -> Option<EstateId> {
        self.place.estate()
    }
}

/// The level that decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// 区 district default.
    District,
    /// 街道 street.
    Street,
    /// 小区 estate.
    Estate,
    /// 物业企业 firm.
    Firm,
}

/// Where the deciding setting came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// `config/*.toml` or the environment.
    File,
    /// A run-time override stored in the database.
    Runtime,
}

/// Whether an item is enabled for an estate, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Enabled or not.
    pub enabled: bool,
    /// The level that decided.
    pub level: Level,
    /// File or run-time override.
    pub source: Source,
}

/// Enablement: the file layer plus a cache of the database overrides.
#[derive(Debug)]
pub struct Enablement {
    file: EnablementSettings,
    overrides: RwLock<(Vec<EnablementOverride>, Option<Instant>)>,
    refresh_every: Duration,
}

impl Enablement {
    /// Enablement from the file layer; overrides are read from the store on first use and then
    /// at most every `refresh_every` (so other host instances see a change within that time).
    pub fn new(file: EnablementSettings, refresh_every: Duration) -> Enablement {
        Enablement { file, overrides: RwLock::new((Vec::new(), None)), refresh_every }
    }

    /// Re-reads the overrides from the database now.
    pub async fn refresh(&self, store: &Store) -> Result<(), StoreError> {
        let fresh = store.enablement_overrides().await?;
        let mut guard = self.overrides.write().unwrap_or_else(|p| p.into_inner());
        *guard = (fresh, Some(Instant::now()));
        Ok(())
    }

    async fn ensure_fresh(&self, store: &Store) -> Result<(), StoreError> {
        let stale = {
            let guard = self.overrides.read().unwrap_or_else(|p| p.into_inner());
            guard.1.is_none_or(|at| at.elapsed() >= self.refresh_every)
        };
        if stale { self.refresh(store).await } else { Ok(()) }
    }

    /// Decides whether `item` is enabled at `place`, refreshing the overrides if they are stale.
    pub async fn decide(&self, store: &Store, item: &str, place: &PlaceInfo) -> Result<Decision, StoreError> {
        self.ensure_fresh(store).await?;
        let guard = self.overrides.read().unwrap_or_else(|p| p.into_inner());
        Ok(decide(&self.file, &guard.0, item, place))
    }

    /// Stores a run-time override (audited as done by `o.changed_by`) and refreshes the cache.
    pub async fn set_override(&self, store: &Store, o: &EnablementOverride) -> Result<(), StoreError> {
        store.set_enablement(o).await?;
        self.refresh(store).await
    }

    /// Removes a run-time override (the file decides again) and refreshes the cache; the removal
    /// is audited as done by `changed_by` at `at`.
    pub async fn clear_override(
        &self,
        store: &Store,
        item: &str,
        scope: &EnablementScope,
        changed_by: &str,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let removed = store.clear_enablement(item, scope, changed_by, at).await?;
        self.refresh(store).await?;
        Ok(removed)
    }

    /// The file layer.
    pub fn file(&self) -> &EnablementSettings {
        &self.file
    }
}

fn switch(s: Option<&ItemSwitches>, item: &str) -> Option<bool> {
    let s = s?;
    if s.disable.iter().any(|i| i == item) {
        Some(false)
    } else if s.enable.iter().any(|i| i == item) {
        Some(true)
    } else {
        None
    }
}

/// The pure decision: the most specific level with a setting wins; at a level, a run-time
/// override wins over the file.
pub fn decide(file: &EnablementSettings, overrides: &[EnablementOverride], item: &str, place: &PlaceInfo) -> Decision {
    let runtime =
        |scope: &EnablementScope| overrides.iter().find(|o| o.item == item && &o.scope == scope).map(|o| o.enabled);
    let mut decision =
        Decision { enabled: file.district.iter().any(|i| i == item), level: Level::District, source: Source::File };
    let mut consider = |level: Level, file_value: Option<bool>, scope: Option<EnablementScope>| {
        if let Some(enabled) = scope.as_ref().and_then(runtime) {
            decision = Decision { enabled, level, source: Source::Runtime };
        } else if let Some(enabled) = file_value {
            decision = Decision { enabled, level, source: Source::File };
        }
    };
    consider(Level::District, None, Some(EnablementScope::District));
    if let Some(street) = &place.street {
        consider(Level::Street, switch(file.streets.get(street), item), Some(EnablementScope::Street(street.clone())));
    }
    if let Some(estate) = place.estate_id() {
        consider(Level::Estate, switch(file.estates.get(&estate), item), Some(EnablementScope::Estate(estate)));
    }
    if let Some(firm) = place.firm {
        consider(Level::Firm, switch(file.firms.get(&firm), item), Some(EnablementScope::Firm(firm)));
    }
    decision
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiayuan_domain::Timestamp;

    const DOGS: &str = "dog-licensing";

    fn street() -> DivisionCode {
        DivisionCode::parse("440303004000").expect("valid")
    }

    fn community() -> DivisionCode {
        DivisionCode::parse("440303004001").expect("valid")
    }

    fn place(estate: i64, firm: Option<i64>) -> PlaceInfo {
        PlaceInfo {
            place: Place::Estate(EstateId(estate)),
            street: Some(street()),
            community: community(),
            firm: firm.map(FirmId),
        }
    }

    fn over(item: &str, scope: EnablementScope, enabled: bool) -> EnablementOverride {
        EnablementOverride {
            item: item.into(),
            scope,
            enabled,
            reason: "test".into(),
            changed_by: "tester".into(),
            changed_at: Timestamp(0),
        }
    }

    fn switches(enable: &[&str], disable: &[&str]) -> ItemSwitches {
        ItemSwitches {
            enable: enable.iter().map(|s| (*s).to_owned()).collect(),
            disable: disable.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn most_specific_level_wins() {
        let mut file = EnablementSettings { district: vec![DOGS.into()], ..Default::default() };
        assert!(decide(&file, &[], DOGS, &place(1, None)).enabled);
        assert!(!decide(&file, &[], "waste-sorting", &place(1, None)).enabled);

        file.streets.insert(street(), switches(&[], &[DOGS]));
        let d = decide(&file, &[], DOGS, &place(1, None));
        assert_eq!((d.enabled, d.level, d.source), (false, Level::Street, Source::File));

        file.estates.insert(EstateId(2), switches(&[DOGS], &[]));
        assert!(decide(&file, &[], DOGS, &place(2, None)).enabled);
        assert!(!decide(&file, &[], DOGS, &place(1, None)).enabled);

        file.firms.insert(FirmId(9), switches(&[], &[DOGS]));
        let d = decide(&file, &[], DOGS, &place(2, Some(9)));
        assert_eq!((d.enabled, d.level), (false, Level::Firm));
    }

    #[test]
    fn runtime_overrides_win_over_the_file_at_their_level() {
        let mut file = EnablementSettings { district: vec![DOGS.into()], ..Default::default() };
        file.estates.insert(EstateId(1), switches(&[DOGS], &[]));
        let overrides = vec![over(DOGS, EnablementScope::Estate(EstateId(1)), false)];
        let d = decide(&file, &overrides, DOGS, &place(1, None));
        assert_eq!((d.enabled, d.level, d.source), (false, Level::Estate, Source::Runtime));
        // Other estates keep the district default.
        assert!(decide(&file, &overrides, DOGS, &place(3, None)).enabled);
        // A district-level runtime override turns the default off, but the estate file setting
        // (more specific) still enables estate 1 when no estate override exists.
        let overrides = vec![over(DOGS, EnablementScope::District, false)];
        assert!(!decide(&file, &overrides, DOGS, &place(3, None)).enabled);
        assert!(decide(&file, &overrides, DOGS, &place(1, None)).enabled);
    }
}
