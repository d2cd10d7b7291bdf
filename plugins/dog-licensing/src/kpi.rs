//! The KPIs for the yearly evaluation of an estate's firm.
//!
//! - `licensed_ratio`: live (kept) dogs with a `valid` or `expiring_soon` licence ÷ live dogs, as
//!   of the call;
//! - `chip_rate`: live dogs with a microchip number ÷ live dogs, as of the call;
//! - `incidents_per_100_households`: incidents that occurred (Shanghai date) within the period
//!   × 100 ÷ the estate's households.
//!
//! Each is `None` when its denominator is zero.

use std::collections::BTreeSet;

use serde::Deserialize;

use jiayuan_domain::Timestamp;
use jiayuan_plugin_api::{HostContext, KpiCall, KpiValue, PluginError, RecordQuery};

use crate::manifest::{kind, kpi, state};
use crate::support::{query_all, typed};

#[derive(Debug, Deserialize)]
struct DogView {
    chip_no: Option<String>,
}

#[derive(Debug, Deserialize)]
struct IncidentView {
    occurred_at: String,
}

fn query(kind: &str, call: &KpiCall, states: &[&str]) -> RecordQuery {
    RecordQuery::of(kind).in_estate(call.estate_id).in_states(states)
}

fn value(id: &str, numerator: f64, denominator: f64, scale: f64) -> KpiValue {
    KpiValue::ratio(id, numerator, denominator, scale)
}

/// Computes the three KPIs for one estate and period.
pub(crate) async fn compute(ctx: &dyn HostContext, call: &KpiCall) -> Result<Vec<KpiValue>, PluginError> {
    let dogs = query_all(ctx, query(kind::DOG, call, &[state::KEPT])).await?;
    let licensed_dogs: BTreeSet<_> = query_all(ctx, query(kind::LICENCE, call, &[state::VALID, state::EXPIRING_SOON]))
        .await?
        .into_iter()
        .filter_map(|l| l.parent_id)
        .collect();
    let mut licensed = 0_u32;
    let mut chipped = 0_u32;
    for d in &dogs {
        if licensed_dogs.contains(&d.id) {
            licensed += 1;
        }
        let view: DogView = typed(&d.data_json, "dog")?;
        if view.chip_no.is_some_and(|c| !c.trim().is_empty()) {
            chipped += 1;
        }
    }
    let mut incidents = 0_u32;
    for r in query_all(ctx, query(kind::INCIDENT, call, &[])).await? {
        let view: IncidentView = typed(&r.data_json, "incident")?;
        let day = Timestamp::parse_rfc3339(&view.occurred_at)
            .ok_or_else(|| PluginError::Internal(format!("incident {} has an unreadable occurred_at", r.id)))?
            .shanghai_date();
        if call.from <= day && day <= call.to {
            incidents += 1;
        }
    }
    let live = dogs.len() as f64;
    Ok(vec![
        value(kpi::LICENSED_RATIO, f64::from(licensed), live, 1.0),
        value(kpi::CHIP_RATE, f64::from(chipped), live, 1.0),
        value(kpi::INCIDENTS_PER_100_HOUSEHOLDS, f64::from(incidents), f64::from(call.households), 100.0),
    ])
}
