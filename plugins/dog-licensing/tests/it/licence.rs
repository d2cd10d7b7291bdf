//! Vaccinations and licences: approval, validity, review and expiry deadlines, renewal.

use crate::common::*;
use jiayuan_domain::RecordId;
use jiayuan_plugin_api::{Actor, Severity};
use jiayuan_test_support::conformance::Story;
use jiayuan_test_support::fixtures::{at, date};
use jiayuan_test_support::{HostError, TestHost};
use serde_json::json;

async fn vaccinate(host: &TestHost, dog: RecordId, on: &str, next_due: &str) -> RecordId {
    host.create_child(dog, "vaccination", vaccination(on, next_due)).await.expect("valid vaccination").id
}

/// Keys of the alerts on `record`, in order.
fn alert_keys(host: &TestHost, record: RecordId) -> Vec<String> {
    host.alerts().into_iter().filter(|a| a.record_id == Some(record)).map(|a| a.key).collect()
}

#[tokio::test]
async fn approval_derives_validity_from_the_latest_vaccination() {
    let host = host();
    let dog = registered(&host, CUIZHU, 1, H1).await;
    vaccinate(&host, dog, "2025-02-20", "2026-02-20").await;
    vaccinate(&host, dog, "2025-12-01", "2027-12-01").await;
    vaccinate(&host, dog, "2026-02-25", "2027-02-25").await;
    let mistaken = vaccinate(&host, dog, "2026-02-28", "2029-02-28").await;
    host.transition(mistaken, "void", Actor::firm(), json!({"void_reason": "录入错误"})).await.expect("void");
    let licence = approved_licence(&host, dog).await.expect("approved");
    let record = host.record(licence).expect("stored");
    assert_eq!(record.state, "valid");
    // The latest (by injection date) of the vaccinations not voided decides, not the longest.
    assert_eq!(field(&host, licence, "valid_until").as_deref(), Some("2027-02-25"));
    assert_eq!(field(&host, licence, "issued_on").as_deref(), Some("2026-03-02"));
    assert_eq!(field(&host, licence, "licence_no"), Some(format!("440303-2026-{:06}", licence.0)));
}

#[tokio::test]
async fn approval_needs_a_vaccination_due_after_today() {
    let host = host();
    let dog = registered(&host, CUIZHU, 1, H1).await;
    let err = approved_licence(&host, dog).await.expect_err("no vaccination");
    assert!(err.has_violation("vaccination", "vaccination_required"), "{err}");
    let licence = host.records_of("licence")[0].id;
    assert_eq!(host.record(licence).map(|r| r.state).as_deref(), Some("under_review"));
    assert_eq!(field(&host, licence, "valid_until"), None);
    vaccinate(&host, dog, "2025-03-01", "2026-03-02").await;
    let err = host.transition(licence, "approve", Actor::agency("police"), json!({})).await.expect_err("due today");
    assert!(err.has_violation("vaccination", "vaccination_expired"), "{err}");
    vaccinate(&host, dog, "2026-03-01", "2027-03-01").await;
    host.transition(licence, "approve", Actor::agency("police"), json!({})).await.expect("now vaccinated");
    assert_eq!(field(&host, licence, "valid_until").as_deref(), Some("2027-03-01"));
}

#[tokio::test]
async fn approval_needs_a_chip_and_only_the_agency_approves() {
    let host = host();
    host.clock().set_today(date(2020, 9, 1));
    let data = without(without(dog("老黄", 1, ADULT, H1), "chip_no"), "birth_date");
    let dog = host.create(CUIZHU, "dog", data).await.expect("no chip needed yet").id;
    host.clock().set_today(today());
    vaccinate(&host, dog, "2026-02-01", "2027-02-01").await;
    let licence = host.create_child(dog, "licence", json!({})).await.expect("application").id;
    host.transition(licence, "submit", Actor::firm(), json!({})).await.expect("submitted");
    match host.transition(licence, "approve", Actor::firm(), json!({})).await {
        Err(HostError::Forbidden(_)) => {}
        other => panic!("a firm cannot approve a licence: {other:?}"),
    }
    let err = host.transition(licence, "approve", Actor::agency("police"), json!({})).await.expect_err("no chip");
    assert!(err.has_violation("chip_no", "chip_required"), "{err}");
}

#[tokio::test]
async fn one_live_licence_per_kept_dog() {
    let host = host();
    let dog = registered(&host, CUIZHU, 1, H1).await;
    let first = host.create_child(dog, "licence", json!({})).await.expect("first").id;
    let err = host.create_child(dog, "licence", json!({})).await.expect_err("second");
    assert!(err.has_violation("parent", "licence_exists"), "{err}");
    host.transition(first, "cancel", Actor::firm(), json!({"reason": "犬主撤回申请"})).await.expect("cancelled");
    host.create_child(dog, "licence", json!({})).await.expect("a new application after cancelling");
    host.transition(dog, "report_lost", Actor::firm(), json!({})).await.expect("lost");
    let other = registered(&host, CUIZHU, 2, H2).await;
    host.transition(other, "report_lost", Actor::firm(), json!({})).await.expect("lost");
    let err = host.create_child(other, "licence", json!({})).await.expect_err("lost dog");
    assert!(err.has_violation("parent", "dog_not_kept"), "{err}");
}

#[tokio::test]
async fn vaccinations_are_checked() {
    let host = host();
    let dog = registered(&host, CUIZHU, 1, H1).await;
    let err =
        host.create_child(dog, "vaccination", vaccination("2026-03-01", "2026-03-01")).await.expect_err("same day");
    assert!(err.has_violation("next_due", "not_after_vaccination"), "{err}");
    let err =
        host.create_child(dog, "vaccination", vaccination("2026-03-03", "2027-03-03")).await.expect_err("tomorrow");
    assert!(err.has_violation("vaccinated_on", "in_future"), "{err}");
    host.transition(dog, "report_dead", Actor::firm(), json!({})).await.expect("dead");
    match host.create_child(dog, "vaccination", vaccination("2026-03-01", "2027-03-01")).await {
        Err(e) => assert!(e.has_violation("parent", "dog_not_live"), "{e}"),
        Ok(r) => panic!("vaccination of a dead dog accepted: {r:?}"),
    }
}

#[tokio::test]
async fn a_review_longer_than_seven_working_days_raises_a_warning() {
    let host = host();
    let dog = registered(&host, CUIZHU, 1, H1).await;
    let licence = host.create_child(dog, "licence", json!({})).await.expect("application").id;
    host.transition(licence, "submit", Actor::firm(), json!({})).await.expect("submitted Monday 09:00");
    host.clock().add_holiday(date(2026, 3, 4));
    // 7 working days from Monday 2 March, with Wednesday 4 March a holiday: Thursday 12 March.
    host.clock().set_now(at(date(2026, 3, 12), 8, 59));
    assert!(host.run_deadlines().await.is_empty());
    host.clock().set_now(at(date(2026, 3, 12), 9, 0));
    let fired = host.run_deadlines().await;
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].rule, "licence_review_overdue");
    let alerts = host.alerts();
    assert_eq!((alerts.len(), alerts[0].severity), (1, Severity::Warning));
    host.clock().advance_days(3);
    assert!(host.run_deadlines().await.is_empty(), "a rule fires once per record and due instant");
}

#[tokio::test]
async fn a_licence_expires_with_its_immunisation_after_two_reminders() {
    let host = host();
    let dog = registered(&host, CUIZHU, 1, H1).await;
    vaccinate(&host, dog, "2026-02-25", "2027-02-25").await;
    let licence = approved_licence(&host, dog).await.expect("approved");
    let state = |h: &TestHost| h.record(licence).map(|r| r.state).unwrap_or_default();

    host.clock().set_today(date(2027, 1, 25));
    assert!(host.run_deadlines().await.is_empty());
    host.clock().set_today(date(2027, 1, 26)); // valid_until − 30
    host.run_deadlines().await;
    assert_eq!(state(&host), "expiring_soon");
    assert_eq!(alert_keys(&host, licence), ["licence_expiry_reminder_t30"]);
    assert!(host.run_deadlines().await.is_empty(), "nothing fires twice");

    host.clock().set_today(date(2027, 2, 18)); // valid_until − 7
    host.run_deadlines().await;
    assert_eq!(alert_keys(&host, licence), ["licence_expiry_reminder_t30", "licence_expiry_reminder_t7"]);
    assert!(host.alerts().iter().all(|a| a.severity == Severity::Reminder));

    host.clock().set_now(at(date(2027, 2, 24), 23, 59));
    host.run_deadlines().await;
    assert_eq!(state(&host), "expiring_soon");
    host.clock().set_today(date(2027, 2, 25)); // valid_until
    host.run_deadlines().await;
    assert_eq!(state(&host), "expired");
}

#[tokio::test]
async fn renewal_takes_a_newer_vaccination() {
    let host = host();
    let dog = registered(&host, CUIZHU, 1, H1).await;
    vaccinate(&host, dog, "2026-02-25", "2027-02-25").await;
    let licence = approved_licence(&host, dog).await.expect("approved");
    let err = host.transition(licence, "renew", Actor::firm(), json!({})).await.expect_err("nothing new");
    assert!(err.has_violation("vaccination", "no_new_vaccination"), "{err}");

    host.clock().set_today(date(2027, 3, 1));
    host.run_deadlines().await;
    assert_eq!(host.record(licence).map(|r| r.state).as_deref(), Some("expired"));
    let err = host.transition(licence, "renew", Actor::firm(), json!({})).await.expect_err("immunity ran out");
    assert!(err.has_violation("vaccination", "vaccination_expired"), "{err}");

    vaccinate(&host, dog, "2027-03-01", "2028-03-01").await;
    let renewed = host.transition(licence, "renew", Actor::firm(), json!({})).await.expect("renewed");
    assert_eq!(renewed.state, "valid");
    assert_eq!(field(&host, licence, "valid_until").as_deref(), Some("2028-03-01"));
    assert_eq!(field(&host, licence, "issued_on").as_deref(), Some("2026-03-02"), "the first issue date stays");
    // The new validity gets its own deadlines.
    host.clock().set_today(date(2028, 1, 31));
    host.run_deadlines().await;
    assert_eq!(host.record(licence).map(|r| r.state).as_deref(), Some("expiring_soon"));
}

#[tokio::test]
async fn the_licence_story_runs_as_written() {
    let host = host();
    let report = Story::new("register, vaccinate, license, remind, expire, renew")
        .create("dog", "dog", CUIZHU, dog("豆豆", 1, ADULT, H1))
        .create_child("rabies", "vaccination", "dog", vaccination("2026-02-25", "2027-02-25"))
        .create_child("licence", "licence", "dog", json!({}))
        .refuse_child("licence", "dog", json!({}), "parent", "licence_exists")
        .transition("licence", "submit", Actor::community(), json!({}))
        .transition("licence", "approve", Actor::agency("police"), json!({}))
        .expect_field("licence", "valid_until", json!("2027-02-25"))
        .today(date(2027, 1, 26))
        .run_deadlines()
        .expect_state("licence", "expiring_soon")
        .expect_alert(Some("licence"), "licence_expiry_reminder_t30", Severity::Reminder)
        .today(date(2027, 2, 25))
        .run_deadlines()
        .expect_state("licence", "expired")
        .create_child("rabies2", "vaccination", "dog", vaccination("2027-02-25", "2028-02-25"))
        .transition("licence", "renew", Actor::firm(), json!({}))
        .expect_state("licence", "valid")
        .expect_field("licence", "valid_until", json!("2028-02-25"))
        .run(&host)
        .await
        .unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(report.records.len(), 4);
}
