//! The KPIs on a small data set with known values.

use crate::common::*;
use jiayuan_plugin_api::{Actor, KpiValue};
use jiayuan_test_support::fixtures::date;
use serde_json::json;

fn kpi<'a>(values: &'a [KpiValue], id: &str) -> &'a KpiValue {
    values.iter().find(|v| v.id == id).unwrap_or_else(|| panic!("no KPI {id} in {values:?}"))
}

#[tokio::test]
async fn kpis_on_a_known_data_set() {
    let host = host();
    let consent = |data| {
        with(
            with(data, "consent_certificate", json!("同意〔2026〕1号")),
            "consent_issuer",
            json!("residents_committee"),
        )
    };

    // D: kept, registered in 2020 before chips were required, no licence.
    host.clock().set_today(date(2020, 6, 1));
    let d = host.create(CUIZHU, "dog", without(without(dog("D", 4, ADULT, H1), "chip_no"), "birth_date")).await;
    d.expect("dog without a chip in 2020");
    host.clock().set_today(today());

    // A: kept, chipped, licence valid. B: kept, chipped, licence expiring soon.
    // C: kept, chipped, licence only applied for. E: dead, with a valid licence.
    let a = host.create(CUIZHU, "dog", consent(dog("A", 1, ADULT, H1))).await.expect("A").id;
    let b = host.create(CUIZHU, "dog", consent(dog("B", 2, ADULT2, H2))).await.expect("B").id;
    let c = host.create(CUIZHU, "dog", consent(dog("C", 3, ADULT2, H2))).await.expect("C").id;
    let e = host.create(CUIZHU, "dog", consent(dog("E", 5, ADULT, H1))).await.expect("E").id;
    for (id, next_due) in [(a, "2027-02-25"), (b, "2026-03-20"), (e, "2027-02-25")] {
        host.create_child(id, "vaccination", vaccination("2026-02-25", next_due)).await.expect("vaccination");
        approved_licence(&host, id).await.expect("licence");
    }
    host.create_child(c, "licence", json!({})).await.expect("application");
    host.transition(e, "report_dead", Actor::firm(), json!({})).await.expect("E died");
    // F: a licensed dog of another estate.
    host.clock().advance_days(1);
    let f = registered(&host, HUBEI, 6, H3).await;
    host.create_child(f, "vaccination", vaccination("2026-03-01", "2027-03-01")).await.expect("vaccination");
    approved_licence(&host, f).await.expect("licence");
    host.run_deadlines().await; // B's licence is due within 30 days
    assert_eq!(host.records_of("licence").iter().filter(|l| l.state == "expiring_soon").count(), 1);

    // Incidents in 翠竹苑: three in March 2026, one in February; one in 湖贝新村.
    for (estate, when) in [
        (CUIZHU, "2026-03-01T00:00:00+08:00"),
        (CUIZHU, "2026-03-02T12:00:00+08:00"),
        (CUIZHU, "2026-03-02T23:59:00+08:00"),
        (CUIZHU, "2026-02-28T23:59:00+08:00"),
        (HUBEI, "2026-03-02T12:00:00+08:00"),
    ] {
        let data = json!({"kind": "barking", "occurred_at": when, "location": "楼下", "description": "夜间犬吠"});
        host.create(estate, "incident", data).await.expect("incident");
    }

    host.set_query_cap(2); // the plugin must page through its records
    let values = host.kpis(CUIZHU, date(2026, 3, 1), date(2026, 3, 31)).await.expect("kpis");
    assert_eq!(values.len(), 3);
    let licensed = kpi(&values, "licensed_ratio");
    assert_eq!((licensed.numerator, licensed.denominator, licensed.value), (2.0, 4.0, Some(0.5)));
    let chips = kpi(&values, "chip_rate");
    assert_eq!((chips.numerator, chips.denominator, chips.value), (3.0, 4.0, Some(0.75)));
    let incidents = kpi(&values, "incidents_per_100_households");
    // 翠竹苑 has 480 households: 3 × 100 ÷ 480.
    assert_eq!((incidents.numerator, incidents.denominator, incidents.value), (3.0, 480.0, Some(0.625)));
}

#[tokio::test]
async fn kpis_without_dogs_are_undefined_not_zero() {
    let host = host();
    let values = host.kpis(HUBEI, date(2026, 1, 1), date(2026, 12, 31)).await.expect("kpis");
    assert_eq!(kpi(&values, "licensed_ratio").value, None);
    assert_eq!(kpi(&values, "chip_rate").value, None);
    assert_eq!(kpi(&values, "incidents_per_100_households").value, Some(0.0));
}
