//! 文明养犬管理 civilised dog management: the dog-licensing service item of Jiayuan (家园).
//!
//! Property firms register the dogs kept in their estates, record rabies vaccinations, follow
//! each dog's 犬证 licence from application to expiry, and record the incidents they meet
//! (unleashed dogs, fouling, barking, bites, strays, suspected banned breeds). The district's
//! 城管 is the competent authority: it reviews licences, and it alone fines and confiscates; the
//! firm persuades and reports (《深圳市养犬管理条例》).
//!
//! # Record kinds
//!
//! | kind | parent | states (terminal in *italics*) |
//! |---|---|---|
//! | `dog` | – | kept, lost, *dead*, *transferred*, *moved_out*, *confiscated* |
//! | `vaccination` | `dog` | recorded, *voided* |
//! | `licence` | `dog` | applying, under_review, valid, expiring_soon, expired, *rejected*, *cancelled*, *revoked* |
//! | `incident` | – | reported, handled, *closed* |
//!
//! Indexed keys: `dog.chip_no` (unique among live dogs), `dog.house_id`, `dog.owner_id`,
//! `licence.licence_no` (unique).
//!
//! # Rules
//!
//! Every figure that comes from law is data with its legal basis: [`law`] (microchip cut-over,
//! owner age, dogs without consent, review period, expiry reminders, incident handling) and
//! [`breeds`] (the versioned banned-breed lists; the list in force on the clock's today decides).
//!
//! - A dog of a banned breed is refused (`breed`/`banned_breed`) and a critical alert for 城管 is
//!   raised with the refusal.
//! - A dog needs a 15-digit microchip (`chip_no`/`chip_required`), not on another live dog
//!   (`chip_duplicate`).
//! - The owner must be registered and of age (`owner_id`/`not_found`, `age_unknown`,
//!   `owner_minor`); the house must be registered and in the call's estate (`house_id`/`not_found`,
//!   `wrong_estate`).
//! - A household reaching two or more kept dogs needs a consent certificate and its issuer
//!   (`consent_certificate`/`consent_required`); the configured hard limit is refused
//!   (`house_id`/`household_limit`). Both apply again when a lost dog is reported found.
//! - A licence is approved (or renewed) only for a kept, chipped dog whose latest rabies
//!   vaccination is due after today (`chip_no`/`chip_required`, `vaccination`/
//!   `vaccination_required`, `vaccination_expired`, `no_new_vaccination`); `valid_until` is that
//!   vaccination's `next_due`, and `licence_no` is `<district>-<year>-<record id>`.
//! - A suspected banned breed raises a critical alert and must be handled by reporting it; a bite
//!   raises a warning to get the victim the rabies vaccine and the dog observed.
//!
//! # Deadlines
//!
//! | rule id | kind, states | when | action |
//! |---|---|---|---|
//! | `licence_review_overdue` | licence, under_review | state entered + 7 working days | warning alert |
//! | `licence_expiring_soon` | licence, valid | `valid_until` − 30 days | System fires `mark_expiring` |
//! | `licence_expiry_reminder_t30` | licence, valid / expiring_soon | `valid_until` − 30 days | reminder alert |
//! | `licence_expiry_reminder_t7` | licence, valid / expiring_soon | `valid_until` − 7 days | reminder alert |
//! | `licence_expired` | licence, valid / expiring_soon | `valid_until` | System fires `expire` |
//! | `incident_unhandled` | incident, reported | created + 24 hours | warning alert |
//!
//! # KPIs
//!
//! - `licensed_ratio` (ratio, higher is better): kept dogs with a `valid` or `expiring_soon`
//!   licence ÷ kept dogs, as of the call;
//! - `chip_rate` (ratio, higher is better): kept dogs with a microchip number ÷ kept dogs;
//! - `incidents_per_100_households` (lower is better): incidents that occurred (Shanghai date)
//!   within the period × 100 ÷ the estate's households.
//!
//! A value is `None` when its denominator is zero.
//!
//! # Configuration
//!
//! `[plugin_config.dog-licensing]` in the host's configuration, seen as JSON:
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `household_limits` | object: division-code prefix → integer ≥ 1 | hard limit of kept dogs per household; the longest prefix of the estate's community code wins; none matching: no hard limit |
//! | `bite_observation_hours` | integer 1–720 | when set, the bite alert asks for the dog at observation within these hours |
//!
//! ```json
//! { "household_limits": { "440303": 3, "440303004": 2 }, "bite_observation_hours": 24 }
//! ```
//!
//! Unknown keys and bad values fail the call with [`PluginError::Config`]. See [`PluginConfig`].

pub mod breeds;
pub mod config;
mod dog;
mod incident;
mod kpi;
pub mod law;
mod licence;
pub mod manifest;
mod support;
mod vaccination;

use async_trait::async_trait;

use jiayuan_plugin_api::{
    CreateCall, HostContext, KpiCall, KpiValue, Manifest, Outcome, PluginError, ServicePlugin, TransitionCall,
};

pub use config::PluginConfig;
use manifest::kind;

/// The dog-licensing plugin.
#[derive(Debug, Default, Clone, Copy)]
pub struct DogLicensing;

impl DogLicensing {
    /// The plugin.
    pub fn new() -> DogLicensing {
        DogLicensing
    }
}

fn unknown_kind(kind: &str) -> PluginError {
    PluginError::NotFound(format!("record kind `{kind}` is not kept by dog-licensing"))
}

#[async_trait]
impl ServicePlugin for DogLicensing {
    fn manifest(&self) -> Manifest {
        manifest::manifest()
    }

    async fn on_create(&self, ctx: &dyn HostContext, call: CreateCall) -> Result<Outcome, PluginError> {
        match call.kind.as_str() {
            kind::DOG => dog::on_create(ctx, &call).await,
            kind::VACCINATION => vaccination::on_create(ctx, &call).await,
            kind::LICENCE => licence::on_create(ctx, &call).await,
            kind::INCIDENT => incident::on_create(ctx, &call).await,
            other => Err(unknown_kind(other)),
        }
    }

    async fn on_transition(&self, ctx: &dyn HostContext, call: TransitionCall) -> Result<Outcome, PluginError> {
        match call.record.kind.as_str() {
            kind::DOG => dog::on_transition(ctx, &call).await,
            kind::LICENCE => licence::on_transition(ctx, &call).await,
            kind::INCIDENT => incident::on_transition(ctx, &call).await,
            kind::VACCINATION => Ok(Outcome::accept()),
            other => Err(unknown_kind(other)),
        }
    }

    async fn kpis(&self, ctx: &dyn HostContext, call: KpiCall) -> Result<Vec<KpiValue>, PluginError> {
        kpi::compute(ctx, &call).await
    }
}

jiayuan_plugin_api::export_plugin!(id: "dog-licensing", create: DogLicensing::new());
