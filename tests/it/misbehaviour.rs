//! A misbehaving plugin behind the engine and the API: its panics and hangs become clear errors,
//! the host and the other plugins go on, and repeated panics quarantine it.

use std::time::Duration;

use jiayuan_test_support::fixtures;
use serde_json::json;

use crate::support::{App, Backend, TestDb};

const PROBES: &str = "/api/items/fixture/records";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panics_and_hangs_are_contained_and_repeated_panics_quarantine() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else { return };
    let app = App::start(db).await;
    let estate = app.households(0)[0].estate.0;
    let probe = |mode: &str| json!({"kind": "probe", "estate_id": estate, "data": {"mode": mode}});

    let (status, body) = app.call("POST", PROBES, None, Some(&probe("ok"))).await;
    assert_eq!(status, 201, "{body}");

    // A hang is cut off by the host's timeout; the caller hears the item is unavailable.
    let (status, body) = app.call("POST", PROBES, None, Some(&probe("hang"))).await;
    assert_eq!((status.as_u16(), &body["error"]["code"]), (503, &json!("item_unavailable")), "{body}");
    assert!(body["error"]["message_en"].as_str().is_some_and(|m| m.contains("`fixture`")), "names the item: {body}");

    // A panic: a generic 500 (the message stays in the log), and the host goes on.
    let (status, body) = app.call("POST", PROBES, None, Some(&probe("panic"))).await;
    assert_eq!(status, 500, "{body}");
    assert!(!body.to_string().contains("asked to panic"), "panic text does not leak: {body}");
    let (status, _) = app.call("POST", PROBES, None, Some(&probe("ok"))).await;
    assert_eq!(status, 201, "one panic does not stop the plugin");

    // The other plugin is unaffected.
    let (status, _) = app.call("GET", "/api/items/dog-licensing/records?kind=dog", None, None).await;
    assert_eq!(status, 200);

    // Two more panics (three in the window): quarantined, reported, refused.
    for _ in 0..2 {
        let (status, _) = app.call("POST", PROBES, None, Some(&probe("panic"))).await;
        assert_eq!(status, 500);
    }
    let (status, body) = app.call("POST", PROBES, None, Some(&probe("ok"))).await;
    assert_eq!((status.as_u16(), &body["error"]["code"]), (503, &json!("item_unavailable")), "{body}");
    let (_, health) = app.call("GET", "/api/health", None, None).await;
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["plugins_failed"], 1, "{health}");
    let (_, plugins) = app.call("GET", "/api/plugins", None, None).await;
    let fixture = plugins["plugins"].as_array().and_then(|p| p.iter().find(|p| p["id"] == "fixture")).cloned();
    assert_eq!(fixture.map(|f| f["status"]["status"].clone()), Some(json!("quarantined")), "{plugins}");

    let (_, alerts) = app.call("GET", "/api/alerts?plugin=fixture", None, None).await;
    let raised: Vec<_> =
        alerts["alerts"].as_array().into_iter().flatten().filter(|a| a["rule"] == "plugin_quarantined").collect();
    assert_eq!(raised.len(), 1, "the district is alerted once: {alerts}");
    assert_eq!(raised[0]["severity"], "critical");

    // The quarantined plugin's records stay readable.
    let (status, _) = app.call("GET", &format!("{PROBES}?kind=probe"), None, None).await;
    assert_eq!(status, 200);
}

/// Four calls whose hooks block their threads (two busy loops, two synchronous sleeps, far longer
/// than the timeout) are in flight on a two-worker runtime: health and dog licensing still
/// answer, each blocked caller hears 503 naming the item, and the plugin, its two threads stuck,
/// is quarantined, reported (stuck threads, health degraded) and alerted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_that_block_their_threads_never_stop_the_host() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else { return };
    let app = App::start_with(db, |s| {
        s.plugins.call_timeout = Duration::from_secs(2);
        s.plugins.threads = 2;
        s.plugin_config.insert("fixture".into(), json!({"block_ms": 20_000}).to_string());
    })
    .await;
    let households = app.households(0);
    let h = households[0];
    let probe = |mode: &str| json!({"kind": "probe", "estate_id": h.estate.0, "data": {"mode": mode}});
    let dog = |h: crate::support::Household, seed: u64| {
        json!({"kind": "dog", "estate_id": h.estate.0, "data": {
            "name": "旺财", "breed": "柯基犬", "sex": "male", "colour": "黄", "sterilised": true,
            "chip_no": fixtures::microchip_no(seed), "owner_id": h.adult.0, "house_id": h.house.0
        }})
    };

    let bodies = ["spin", "sleep", "spin", "sleep"].map(probe);
    let (blocked, (health, dogs)) = tokio::join!(
        futures::future::join_all(bodies.iter().map(|body| app.call("POST", PROBES, None, Some(body)))),
        async {
            let health = app.call("GET", "/api/health", None, None).await;
            let dogs = app.call("POST", "/api/items/dog-licensing/records", None, Some(&dog(h, 7))).await;
            (health, dogs)
        }
    );
    assert_eq!(health.0, 200, "{}", health.1);
    assert_eq!(dogs.0, 201, "dog licensing serves while the fixture blocks: {}", dogs.1);
    for (status, body) in &blocked {
        assert_eq!((status.as_u16(), &body["error"]["code"]), (503, &json!("item_unavailable")), "{body}");
        assert!(body["error"]["message_en"].as_str().is_some_and(|m| m.contains("`fixture`")), "{body}");
    }

    let (_, plugins) = app.call("GET", "/api/plugins", None, None).await;
    let fixture = plugins["plugins"].as_array().and_then(|p| p.iter().find(|p| p["id"] == "fixture")).cloned();
    let fixture = fixture.unwrap_or_else(|| panic!("the fixture is listed: {plugins}"));
    assert_eq!(fixture["status"]["status"], "quarantined", "{fixture}");
    assert_eq!(fixture["calls"], json!({"isolation": "threads", "threads": 2, "stuck": 2}), "{fixture}");
    let (_, health) = app.call("GET", "/api/health", None, None).await;
    assert_eq!(health["status"], "degraded", "{health}");

    let (status, body) = app.call("POST", PROBES, None, Some(&probe("ok"))).await;
    assert_eq!((status.as_u16(), &body["error"]["code"]), (503, &json!("item_unavailable")), "{body}");
    let again = app.call("POST", "/api/items/dog-licensing/records", None, Some(&dog(households[1], 8))).await;
    assert_eq!(again.0, 201, "dog licensing still serves: {}", again.1);

    // The alert is written by a task of its own: wait for it (a hang guard, not a speed check).
    let mut raised = Vec::new();
    for _ in 0..600 {
        let (_, alerts) = app.call("GET", "/api/alerts?plugin=fixture", None, None).await;
        raised = alerts["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["rule"] == "plugin_quarantined")
            .cloned()
            .collect();
        if !raised.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(raised.len(), 1, "the district is alerted once: {raised:?}");
    assert_eq!(raised[0]["severity"], "critical");
    assert!(raised[0]["message_en"].as_str().is_some_and(|m| m.contains("threads are stuck")), "{:?}", raised[0]);
}
