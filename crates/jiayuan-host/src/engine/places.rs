//! Where records live: estates and grid cells, the places a caller reaches, enablement, and
//! admission of new work.

use std::time::{Duration, Instant};

use jiayuan_domain::{Estate, EstateId, Place};
use jiayuan_plugin_api::{PlaceKind, RecordKind};
use jiayuan_store::PlaceSet;

use super::{Caller, Engine, EngineError, Reach, refused};
use crate::access::{self, Action, Target};
use crate::enablement::PlaceInfo;

/// How long a place's street, community and firm are cached for reach and enablement decisions.
const PLACE_TTL: Duration = Duration::from_secs(30);

/// What the engine knows of a place besides where it sits: its name, and the estate row (which
/// primes each call's registry cache, so a hook reading it costs no query).
#[derive(Debug, Clone, PartialEq)]
pub struct PlaceName {
    /// The estate's or grid cell's name.
    pub name: String,
    /// The estate, for a place that is one.
    pub estate: Option<Estate>,
}

/// The kind of a place, as manifests name it.
pub(crate) fn kind_of(place: &Place) -> PlaceKind {
    match place {
        Place::Estate(_) => PlaceKind::Estate,
        Place::GridCell(_) => PlaceKind::GridCell,
    }
}

/// "Not found" for a place, as if absent.
pub(crate) fn place_not_found(place: &Place) -> EngineError {
    match place {
        Place::Estate(id) => EngineError::NotFound { what: "estate", id: id.to_string() },
        Place::GridCell(code) => EngineError::NotFound { what: "grid cell", id: code.clone() },
    }
}

impl Engine {
    /// Where an estate sits (street, serving firm) and its name; cached briefly.
    pub async fn place(&self, estate: EstateId) -> Result<(PlaceInfo, String), EngineError> {
        let (info, name) = self.place_info(&Place::Estate(estate)).await?;
        Ok((info, name.name))
    }

    /// Where a place sits and its name, cached briefly. A grid cell is served by no firm.
    pub async fn place_info(&self, place: &Place) -> Result<(PlaceInfo, PlaceName), EngineError> {
        if let Some((p, n, at)) = self.places.read().unwrap_or_else(|p| p.into_inner()).get(place)
            && at.elapsed() < PLACE_TTL
        {
            return Ok((p.clone(), n.clone()));
        }
        let (info, name) = match place {
            Place::Estate(estate) => {
                let e = self.store.estate(*estate).await?.ok_or_else(|| place_not_found(place))?;
                let firm = self.store.firm_serving(*estate, self.clock.now().shanghai_date()).await?;
                let info = PlaceInfo { place: place.clone(), street: e.street(), community: e.community.clone(), firm };
                (info, PlaceName { name: e.name.clone(), estate: Some(e) })
            }
            Place::GridCell(code) => {
                let today = self.clock.now().shanghai_date();
                let cell = self
                    .store
                    .grid_cells()
                    .await?
                    .into_iter()
                    .find(|g| &g.code == code && g.valid_to.is_none_or(|to| today <= to))
                    .ok_or_else(|| place_not_found(place))?;
                let info = PlaceInfo {
                    place: place.clone(),
                    street: cell.community.parent(),
                    community: cell.community.clone(),
                    firm: None,
                };
                (info, PlaceName { name: cell.name, estate: None })
            }
        };
        self.places
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(place.clone(), (info.clone(), name.clone(), Instant::now()));
        Ok((info, name))
    }

    /// Forgets cached places and reaches (after registry changes).
    pub fn forget_places(&self) {
        self.places.write().unwrap_or_else(|p| p.into_inner()).clear();
        self.reaches.write().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Asks [`access::authorize`] about `action` on `item` at `place`. Out of scope reads as
    /// `absent`, as if it did not exist.
    pub(super) fn authorize_at(
        &self,
        caller: &Caller,
        action: Action,
        item: &str,
        place: &PlaceInfo,
        absent: impl Fn() -> EngineError,
    ) -> Result<(), EngineError> {
        let target = Target { item: Some(item), place: Some(place), enabled: None };
        access::authorize(caller, action, target).map_err(|d| refused(d, &absent, &absent))
    }

    /// Checks the caller may read records of `item` somewhere: an item not assigned to them is
    /// unknown to them.
    pub(super) fn check_item(&self, caller: &Caller, item: &str) -> Result<(), EngineError> {
        let target = Target { item: Some(item), ..Target::default() };
        let unknown = || EngineError::UnknownPlugin(item.to_owned());
        access::authorize(caller, Action::ReadRecords, target).map_err(|d| refused(d, unknown, unknown))
    }

    /// Checks the caller may do new work on `item` at `place` and that the item is enabled
    /// there; answers where the place sits.
    pub(super) async fn admit(
        &self,
        caller: &Caller,
        item: &str,
        place: &Place,
    ) -> Result<(PlaceInfo, PlaceName), EngineError> {
        let (info, name) = self.place_info(place).await?;
        self.authorize_at(caller, Action::WriteRecords, item, &info, || place_not_found(place))?;
        self.require_enabled(caller, item, &info, &name).await?;
        Ok((info, name))
    }

    /// Refuses new work on `item` at `info` where the item is not enabled: the enablement
    /// decision goes through [`access::authorize`] like the rest of the access rules.
    pub(super) async fn require_enabled(
        &self,
        caller: &Caller,
        item: &str,
        info: &PlaceInfo,
        name: &PlaceName,
    ) -> Result<(), EngineError> {
        let decision = self.enablement.decide(&self.store, item, info).await?;
        let target = Target { item: Some(item), place: Some(info), enabled: Some(decision.enabled) };
        let absent = || place_not_found(&info.place);
        let disabled = || EngineError::Disabled {
            item: item.to_owned(),
            place: info.place.clone(),
            place_name: name.name.clone(),
        };
        access::authorize(caller, Action::WriteRecords, target).map_err(|d| refused(d, absent, disabled))
    }

    /// Refuses a place of a kind the record kind does not allow.
    pub(super) fn check_place_kind(kind: &RecordKind, place: &Place) -> Result<(), EngineError> {
        let at = kind_of(place);
        if kind.places.contains(&at) {
            return Ok(());
        }
        let allowed = kind.places.iter().map(|p| format!("{p:?}").to_lowercase()).collect::<Vec<_>>().join(", ");
        Err(EngineError::Invalid(vec![jiayuan_plugin_api::FieldViolation::new(
            "place",
            "wrong_place",
            format!("`{}` 记录不能放在此类位置；可放在：{allowed}", kind.id),
            format!("records of `{}` cannot sit at a {at:?}; they sit at: {allowed}", kind.id),
        )]))
    }

    /// The places a caller reaches (`None`: everywhere). Street, community and firm reaches are
    /// cached for as long as places are (a new assignment shows within that time).
    pub(super) async fn places_in_reach(&self, caller: &Caller) -> Result<Option<PlaceSet>, EngineError> {
        match &caller.reach {
            Reach::District => return Ok(None),
            Reach::Estates(ids) => return Ok(Some(PlaceSet { estates: ids.clone(), grid_cells: Vec::new() })),
            Reach::Division(_) | Reach::Firm(_) => {}
        }
        if let Some((set, at)) = self.reaches.read().unwrap_or_else(|p| p.into_inner()).get(&caller.reach)
            && at.elapsed() < PLACE_TTL
        {
            return Ok(Some(set.clone()));
        }
        let set = match &caller.reach {
            Reach::Division(code) => {
                let estates =
                    self.store.estates().await?.into_iter().filter(|e| e.community.is_within(code)).map(|e| e.id);
                let cells = self.store.grid_cells().await?.into_iter().filter(|g| g.community.is_within(code));
                PlaceSet { estates: estates.collect(), grid_cells: cells.map(|g| g.code).collect() }
            }
            Reach::Firm(f) => {
                let today = self.clock.now().shanghai_date();
                let mut ids: Vec<EstateId> = self
                    .store
                    .serving_firms(today)
                    .await?
                    .into_iter()
                    .filter(|(_, firm)| firm == f)
                    .map(|(estate, _)| estate)
                    .collect();
                ids.sort();
                PlaceSet { estates: ids, grid_cells: Vec::new() }
            }
            Reach::District | Reach::Estates(_) => return Ok(None),
        };
        self.reaches
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(caller.reach.clone(), (set.clone(), Instant::now()));
        Ok(Some(set))
    }
}
