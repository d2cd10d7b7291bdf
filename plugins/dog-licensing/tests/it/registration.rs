//! Registering dogs: the conformance kit, banned breeds, microchips, owners, houses and the
//! household rules.

use crate::common::*;
use jiayuan_domain::Place;
use jiayuan_plugin_api::{Actor, LogLevel, PluginError, Severity};
use jiayuan_plugin_dog_licensing::DogLicensing;
use jiayuan_test_support::conformance::{assert_conformant, check_manifest};
use jiayuan_test_support::fixtures::{date, microchip_no};
use jiayuan_test_support::{AlertSource, HostError, TestHost};
use serde_json::json;

#[test]
fn the_manifest_is_conformant() {
    assert_eq!(check_manifest(&DogLicensing::new()), Ok(()));
    assert_conformant(&DogLicensing::new());
    let m = jiayuan_plugin_api::ServicePlugin::manifest(&DogLicensing::new());
    assert_eq!(m.id, "dog-licensing");
    let dog = m.kind("dog").expect("dog kind");
    let keys: Vec<_> = dog.keys.iter().map(|k| (k.field.as_str(), k.unique)).collect();
    assert_eq!(keys, [("chip_no", true), ("house_id", false), ("owner_id", false)]);
    let rules: Vec<_> = m.deadlines.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        rules,
        [
            "licence_review_overdue",
            "licence_expiring_soon",
            "licence_expiry_reminder_t30",
            "licence_expiry_reminder_t7",
            "licence_expired",
            "incident_unhandled",
        ]
    );
    assert!(m.deadlines.iter().all(|r| r.legal_basis.is_some()));
}

#[tokio::test]
async fn a_valid_registration_is_kept() {
    let host = host();
    let dog = host.create(CUIZHU, "dog", dog("豆豆", 1, ADULT, H1)).await.expect("valid dog");
    assert_eq!(dog.state, "kept");
    assert_eq!(field(&host, dog.id, "chip_no"), Some(microchip_no(1)));
    assert!(host.alerts().is_empty());
    let logs = host.logs();
    assert!(logs.iter().any(|l| l.level == LogLevel::Info && l.message == "dog registered"), "{logs:?}");
    // Logs carry no personal data: no owner id, no chip number.
    assert!(logs.iter().all(|l| l.fields.iter().all(|(k, _)| k != "owner_id" && k != "chip_no")));
}

#[tokio::test]
async fn a_banned_breed_is_refused_with_a_critical_alert_for_chengguan() {
    let host = host();
    let err =
        host.create(CUIZHU, "dog", with(dog("大黑", 2, ADULT, H1), "breed", json!("藏獒"))).await.expect_err("banned");
    assert!(err.has_violation("breed", "banned_breed"), "{err}");
    assert_eq!(err.alerts().len(), 1);
    assert_eq!(err.alerts()[0].severity, Severity::Critical);
    let alerts = host.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(
        (alerts[0].record_id, alerts[0].severity, &alerts[0].source),
        (None, Severity::Critical, &AlertSource::Refusal)
    );
    assert!(
        alerts[0].message.zh.contains("城管") && alerts[0].message.zh.contains("西藏獒犬"),
        "{}",
        alerts[0].message.zh
    );
    assert!(host.records_of("dog").is_empty(), "nothing is stored");
    // English names and full-width parentheses are recognised too.
    let err = host.create(CUIZHU, "dog", with(dog("阿福", 3, ADULT, H1), "breed", json!("川东犬（重庆犬）"))).await;
    assert!(err.expect_err("banned").has_violation("breed", "banned_breed"));
    let err = host.create(CUIZHU, "dog", with(dog("Max", 4, ADULT, H1), "breed", json!("great dane"))).await;
    assert!(err.expect_err("banned").has_violation("breed", "banned_breed"));
}

#[tokio::test]
async fn the_breed_list_in_force_on_today_decides() {
    let host = host();
    let rural = with(without(dog("旺财", 5, ADULT, H1), "birth_date"), "breed", json!("中华田园犬"));
    // Before September 2020 the 27-breed list banned 中华田园犬 (and dogs needed no chip yet).
    host.clock().set_today(date(2020, 6, 1));
    let err = host.create(CUIZHU, "dog", rural.clone()).await.expect_err("banned in 2020");
    assert!(err.has_violation("breed", "banned_breed"));
    host.clock().set_today(date(2026, 3, 2));
    host.create(CUIZHU, "dog", rural).await.expect("delisted since");
}

#[tokio::test]
async fn the_microchip_is_required_fifteen_digits_and_unique() {
    let host = host();
    let short = with(dog("豆豆", 1, ADULT, H1), "chip_no", json!("15600012345"));
    match host.create(CUIZHU, "dog", short).await {
        Err(HostError::Rejected(v)) => {
            assert!(v.iter().any(|v| v.field == "chip_no" && v.code == "bad_digits"), "{v:?}")
        }
        other => panic!("the host's type check must refuse a short chip: {other:?}"),
    }
    let missing = without(without(dog("豆豆", 1, ADULT, H1), "chip_no"), "birth_date");
    let err = host.create(CUIZHU, "dog", missing.clone()).await.expect_err("no chip");
    assert!(err.has_violation("chip_no", "chip_required"), "{err}");
    // Before the cut-over (2020-10-01) a chip was not yet required.
    host.clock().set_today(date(2020, 9, 30));
    host.create(CUIZHU, "dog", missing).await.expect("no chip needed in September 2020");
    host.clock().set_today(today());
    host.create(CUIZHU, "dog", dog("一号", 7, ADULT2, H2)).await.expect("first");
    let twin = with(dog("二号", 8, ADULT2, H1), "chip_no", json!(microchip_no(7)));
    let err = host.create(CUIZHU, "dog", with(twin, "consent_certificate", json!("翠竹居〔2026〕1号"))).await;
    let err = err.expect_err("duplicate chip");
    assert!(err.has_violation("chip_no", "chip_duplicate"), "{err}");
}

#[tokio::test]
async fn the_owner_must_be_registered_and_of_age() {
    let host = host();
    let err = host.create(CUIZHU, "dog", dog("小白", 1, MINOR, H1)).await.expect_err("minor");
    assert!(err.has_violation("owner_id", "owner_minor"), "{err}");
    let err = host.create(HUBEI, "dog", dog("小白", 1, ALMOST_18, H3)).await.expect_err("17 today");
    assert!(err.has_violation("owner_id", "owner_minor"), "{err}");
    host.clock().advance_days(1);
    host.create(HUBEI, "dog", dog("小白", 1, ALMOST_18, H3)).await.expect("18 today");
    let err = host.create(CUIZHU, "dog", dog("小黑", 2, jiayuan_domain::PersonId(99), H1)).await.expect_err("unknown");
    assert!(err.has_violation("owner_id", "not_found"), "{err}");
}

#[tokio::test]
async fn the_house_must_belong_to_the_estate() {
    let host = host();
    let err = host.create(CUIZHU, "dog", dog("小白", 1, ADULT, H3)).await.expect_err("house of 湖贝新村");
    assert!(err.has_violation("house_id", "wrong_estate"), "{err}");
}

#[tokio::test]
async fn every_broken_rule_is_reported_at_once() {
    let host = host();
    let data = with(without(dog("小白", 1, MINOR, H3), "chip_no"), "birth_date", json!("2027-01-01"));
    let err = host.create(CUIZHU, "dog", data).await.expect_err("broken");
    for (f, c) in [
        ("chip_no", "chip_required"),
        ("owner_id", "owner_minor"),
        ("house_id", "wrong_estate"),
        ("birth_date", "in_future"),
    ] {
        assert!(err.has_violation(f, c), "missing {f}/{c} in {err}");
    }
}

#[tokio::test]
async fn a_second_dog_needs_a_consent_certificate() {
    let host = host();
    registered(&host, CUIZHU, 1, H1).await;
    let second = dog("二宝", 2, ADULT, H1);
    let err = host.create(CUIZHU, "dog", second.clone()).await.expect_err("no consent");
    assert!(err.has_violation("consent_certificate", "consent_required"), "{err}");
    let half = with(second.clone(), "consent_certificate", json!("翠竹居〔2026〕7号"));
    let err = host.create(CUIZHU, "dog", half.clone()).await.expect_err("no issuer");
    assert!(err.has_violation("consent_issuer", "required"), "{err}");
    let full = with(half, "consent_issuer", json!("residents_committee"));
    host.create(CUIZHU, "dog", full).await.expect("with consent");
    // Another household of the estate is not affected.
    host.create(CUIZHU, "dog", dog("邻居家的", 3, ADULT2, H2)).await.expect("first dog of H2");
}

#[tokio::test]
async fn dogs_no_longer_kept_do_not_count_but_a_found_dog_does() {
    let host = host();
    let first = registered(&host, CUIZHU, 1, H1).await;
    host.transition(first, "report_lost", Actor::firm(), json!({})).await.expect("lost");
    let second = registered(&host, CUIZHU, 2, H1).await;
    // The lost dog comes back: now two dogs are kept, and a consent certificate is needed.
    let err = host.transition(first, "report_found", Actor::firm(), json!({})).await.expect_err("no consent");
    assert!(err.has_violation("consent_certificate", "consent_required"), "{err}");
    let consent = json!({"consent_certificate": "翠竹业〔2026〕2号", "consent_issuer": "owners_committee"});
    host.transition(first, "report_found", Actor::firm(), consent).await.expect("found with consent");
    assert_eq!(field(&host, first, "consent_issuer").as_deref(), Some("owners_committee"));
    host.transition(second, "report_dead", Actor::firm(), json!({"status_note": "病故"})).await.expect("dead");
    host.transition(first, "transfer", Actor::firm(), json!({"status_note": "转让给亲属"})).await.expect("transferred");
    registered(&host, CUIZHU, 3, H1).await;
}

#[tokio::test]
async fn the_household_limit_comes_from_the_config_with_the_longest_prefix() {
    let host = host();
    host.set_config(json!({"household_limits": {"440303": 3, "440303004": 2}}));
    let consent = |data| {
        with(
            with(data, "consent_certificate", json!("同意〔2026〕1号")),
            "consent_issuer",
            json!("property_management_office"),
        )
    };
    // 翠竹苑 lies in 翠竹街道 (440303004…): at most 2.
    for seed in 1..=2 {
        host.create(CUIZHU, "dog", consent(dog("狗", seed, ADULT, H1))).await.expect("within the limit");
    }
    let err = host.create(CUIZHU, "dog", consent(dog("狗", 3, ADULT, H1))).await.expect_err("third in 翠竹");
    assert!(err.has_violation("house_id", "household_limit"), "{err}");
    assert!(!err.has_violation("consent_certificate", "consent_required"));
    // 湖贝新村 lies in 东门街道: the district's 3 applies.
    host.clock().advance_days(1); // the owner of H3 turns 18
    for seed in 11..=13 {
        host.create(HUBEI, "dog", consent(dog("狗", seed, ALMOST_18, H3))).await.expect("within the limit");
    }
    let err = host.create(HUBEI, "dog", consent(dog("狗", 14, ALMOST_18, H3))).await.expect_err("fourth in 湖贝");
    assert!(err.has_violation("house_id", "household_limit"), "{err}");
    // Without the config there is no hard limit.
    host.set_config(json!({}));
    host.create(HUBEI, "dog", consent(dog("狗", 14, ALMOST_18, H3))).await.expect("no limit configured");
}

#[tokio::test]
async fn an_unusable_config_fails_the_call_with_a_config_error() {
    let host = host();
    host.set_config(json!({"household_limit": {"440303": 3}}));
    match host.create(CUIZHU, "dog", dog("豆豆", 1, ADULT, H1)).await {
        Err(HostError::Plugin(PluginError::Config(msg))) => assert!(msg.contains("household_limit"), "{msg}"),
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_dog_moves_with_its_owner_to_another_estate_keeping_its_history() {
    let host = host();
    let id = registered(&host, CUIZHU, 41, H1).await;
    let wrong_house =
        host.transition_to(id, "relocate", Actor::firm(), json!({"house_id": H1.0}), Place::Estate(HUBEI)).await;
    match wrong_house {
        Err(HostError::Refused { violations, .. }) => {
            assert!(violations.iter().any(|v| v.field == "house_id" && v.code == "wrong_estate"), "{violations:?}")
        }
        other => panic!("the new house must be in the new estate: {other:?}"),
    }
    let moved = host
        .transition_to(id, "relocate", Actor::firm(), json!({"house_id": H3.0}), Place::Estate(HUBEI))
        .await
        .expect("relocated");
    assert_eq!((moved.estate_id, moved.state.as_str(), moved.id), (Some(HUBEI), "kept", id));
    assert_eq!(field_i64(&host, id, "house_id"), Some(H3.0));
    let unnamed = host.transition(id, "relocate", Actor::firm(), json!({"house_id": H3.0})).await;
    assert!(matches!(unnamed, Err(HostError::Rejected(ref v)) if v[0].field == "place"), "{unnamed:?}");
}

fn field_i64(host: &TestHost, id: jiayuan_domain::RecordId, name: &str) -> Option<i64> {
    host.data(id).and_then(|d| d.get(name).and_then(serde_json::Value::as_i64))
}
