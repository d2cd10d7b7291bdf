//! A misbehaving plugin behind the engine and the API: its panics and hangs become clear errors,
//! the host and the other plugins go on, and repeated panics quarantine it.

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
