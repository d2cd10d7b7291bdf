//! Incidents: the alerts each kind raises, the firm's handling, the 24-hour deadline.

use crate::common::*;
use jiayuan_plugin_api::{Actor, Audience, Severity};
use jiayuan_test_support::conformance::Story;
use jiayuan_test_support::fixtures::{at, date};
use jiayuan_test_support::{AlertSource, HostError, TestCaller, TestHost};
use serde_json::{Value, json};

fn incident(kind: &str, at_text: &str) -> Value {
    json!({
        "kind": kind,
        "occurred_at": at_text,
        "location": "翠竹苑3栋电梯口",
        "description": "居民反映犬只在电梯口活动",
    })
}

fn hook_alerts(host: &TestHost) -> Vec<(String, Severity)> {
    host.alerts().into_iter().filter(|a| a.source == AlertSource::Hook).map(|a| (a.key, a.severity)).collect()
}

#[tokio::test]
async fn a_bite_raises_a_warning_about_rabies_vaccine_and_observation() {
    let host = host();
    let dog = registered(&host, CUIZHU, 1, H1).await;
    let data = with(incident("bite", "2026-03-02T08:15:00+08:00"), "dog", json!(dog.0));
    let record = host.create(CUIZHU, "incident", data).await.expect("bite recorded");
    assert_eq!(record.state, "reported");
    assert_eq!(hook_alerts(&host), [("bite".to_owned(), Severity::Warning)]);
    let text = &host.alerts()[0].message;
    assert!(text.zh.contains("狂犬疫苗") && text.zh.contains("留观"), "{}", text.zh);
    assert!(text.en.contains("rabies vaccine"), "{}", text.en);
    // With an observation period configured, the alert names it.
    host.set_config(json!({"bite_observation_hours": 24}));
    host.create(CUIZHU, "incident", incident("bite", "2026-03-02T08:30:00+08:00")).await.expect("second bite");
    assert!(host.alerts()[1].message.zh.contains("24小时内送留观"), "{}", host.alerts()[1].message.zh);
}

#[tokio::test]
async fn a_suspected_banned_breed_raises_a_critical_alert_and_must_be_reported() {
    let host = host();
    let record = host
        .create(CUIZHU, "incident", incident("suspected_banned_breed", "2026-03-02T07:00:00+08:00"))
        .await
        .expect("recorded");
    assert_eq!(hook_alerts(&host), [("suspected_banned_breed".to_owned(), Severity::Critical)]);
    assert!(host.alerts()[0].message.zh.contains("城管"));
    let err = host
        .transition(record.id, "handle", Actor::firm(), json!({"action": "persuaded"}))
        .await
        .expect_err("persuading is not enough");
    assert!(err.has_violation("action", "must_report"), "{err}");
    host.transition(record.id, "handle", Actor::firm(), json!({"action": "reported_to_chengguan"}))
        .await
        .expect("reported");
    assert_eq!(field(&host, record.id, "action").as_deref(), Some("reported_to_chengguan"));
}

#[tokio::test]
async fn ordinary_incidents_raise_no_alert_and_are_persuaded_then_closed() {
    let host = host();
    let report = Story::new("an unleashed dog")
        .create("i", "incident", CUIZHU, incident("unleashed", "2026-03-02T07:30:00+08:00"))
        .transition("i", "handle", Actor::firm(), json!({"action": "persuaded", "handling_note": "已劝导犬主拴绳"}))
        .expect_state("i", "handled")
        .expect_field("i", "handling_note", json!("已劝导犬主拴绳"))
        .run(&host)
        .await
        .unwrap_or_else(|f| panic!("{f}"));
    assert!(hook_alerts(&host).is_empty());
    let id = report.records["i"];
    match host.transition(id, "close", Actor::firm(), json!({})).await {
        Err(HostError::Forbidden(why)) => assert!(why.contains("巡办分离"), "{why}"),
        other => panic!("whoever reported the incident cannot also close it: {other:?}"),
    }
    host.set_caller(TestCaller::new(Audience::Firm, "manager"));
    host.transition(id, "close", Actor::firm(), json!({})).await.expect("closed by a colleague, the manager");
    // There is no fine anywhere: firms never fine.
    let m = jiayuan_plugin_api::ServicePlugin::manifest(host.plugin());
    let incident_kind = m.kind("incident").expect("incident kind");
    assert!(incident_kind.fields.iter().all(|f| !f.name.contains("fine")));
}

#[tokio::test]
async fn incidents_are_dated_in_the_past_and_name_a_dog_of_the_estate() {
    let host = host();
    let err = host.create(CUIZHU, "incident", incident("barking", "2026-03-02T10:00:00+08:00")).await;
    assert!(err.expect_err("an hour ahead").has_violation("occurred_at", "in_future"));
    host.clock().advance_days(1);
    let other = registered(&host, HUBEI, 5, H3).await;
    let data = with(incident("fouling", "2026-03-02T10:00:00+08:00"), "dog", json!(other.0));
    let err = host.create(CUIZHU, "incident", data).await.expect_err("dog of another estate");
    assert!(err.has_violation("dog", "not_found"), "{err}");
}

#[tokio::test]
async fn an_incident_unhandled_for_24_hours_raises_a_warning() {
    let host = host();
    let record = host.create(CUIZHU, "incident", incident("stray", "2026-03-02T08:00:00+08:00")).await.expect("stray");
    host.clock().set_now(at(date(2026, 3, 3), 8, 59));
    assert!(host.run_deadlines().await.is_empty());
    host.clock().set_now(at(date(2026, 3, 3), 9, 0));
    let fired = host.run_deadlines().await;
    assert_eq!(
        fired.iter().map(|f| (f.rule.as_str(), f.record_id)).collect::<Vec<_>>(),
        [("incident_unhandled", record.id)]
    );
    let handled = host.create(CUIZHU, "incident", incident("stray", "2026-03-03T08:00:00+08:00")).await.expect("stray");
    host.transition(handled.id, "handle", Actor::firm(), json!({"action": "reported_to_chengguan"}))
        .await
        .expect("handled");
    host.clock().advance_days(2);
    assert!(host.run_deadlines().await.is_empty(), "handled incidents raise nothing");
}

#[tokio::test]
async fn a_bite_victims_injury_is_for_the_district_the_police_and_health_only() {
    let host = host();
    let data = with(incident("bite", "2026-03-02T07:30:00+08:00"), "injury", json!("右小腿咬伤，已缝合"));
    host.set_caller(TestCaller::officer("police", "officer", 3));
    let record = host.create(CUIZHU, "incident", data).await.expect("recorded by the police");
    let firm = host.view(record.id, &Audience::Firm, true).expect("a firm sees incidents");
    assert!(!firm.data.contains_key("injury") && !firm.masked.contains(&"injury".to_owned()), "absent, not masked");
    let health = host.view(record.id, &Audience::agency("health"), true).expect("visible");
    assert!(
        !health.data.contains_key("injury") && health.masked.contains(&"injury".to_owned()),
        "health may not unmask"
    );
    let police = host.view(record.id, &Audience::agency("police"), true).expect("visible");
    assert_eq!(police.data["injury"], json!("右小腿咬伤，已缝合"));
    host.set_caller(TestCaller::default());
    let refused = host
        .create(CUIZHU, "incident", with(incident("bite", "2026-03-02T07:30:00+08:00"), "injury", json!("x")))
        .await;
    match refused {
        Err(HostError::Rejected(v)) => {
            assert!(v.iter().any(|v| v.field == "injury" && v.code == "unknown_field"), "{v:?}")
        }
        other => panic!("a firm cannot write a field it cannot see: {other:?}"),
    }
}

#[tokio::test]
async fn a_stray_dog_outside_any_estate_is_recorded_at_a_grid_cell() {
    let host = host();
    let cell = jiayuan_domain::Place::GridCell("440303001001001".into());
    let stray = json!({
        "kind": "stray", "occurred_at": "2026-03-02T07:30:00+08:00", "location": "东门路临街商铺前",
        "description": "流浪犬在商铺门口徘徊",
    });
    host.set_caller(TestCaller::new(Audience::Community, "worker"));
    let record = host.create_at(cell.clone(), "incident", stray).await.expect("recorded at the grid cell");
    assert_eq!((record.place, record.estate_id), (cell.clone(), None));
    let dog = host.create_at(cell, "dog", json!({})).await;
    assert!(matches!(dog, Err(HostError::Rejected(ref v)) if v[0].code == "wrong_place"), "{dog:?}");
}
