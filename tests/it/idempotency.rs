//! `Idempotency-Key` on creates through the real router: a retry after success answers the same
//! id (replayed) and makes no second record or person; the same key with another body is 422;
//! without the header nothing changes.

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use jiayuan_test_support::fixtures;

use crate::support::{App, Backend, TestDb, date};

const RECORDS: &str = "/api/items/dog-licensing/records";

/// Sends `body` to `path` as the district admin with `key` as the Idempotency-Key.
async fn post(app: &App, path: &str, body: &Value, key: Option<&str>) -> (u16, Option<String>, Value) {
    let token = app.tokens.get("district_admin").expect("the admin's token");
    let mut req = Request::builder()
        .method("POST")
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json");
    if let Some(key) = key {
        req = req.header("idempotency-key", key);
    }
    let res =
        app.router.clone().oneshot(req.body(Body::from(body.to_string())).expect("request")).await.expect("answer");
    let status = res.status().as_u16();
    let replayed = res.headers().get("idempotent-replayed").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    (status, replayed, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn incident(estate: i64, location: &str) -> Value {
    json!({"kind": "incident", "estate_id": estate, "data": {
        "kind": "barking", "occurred_at": "2026-11-30T08:30:00+08:00", "location": location,
        "description": "邻居反映犬只问题"}})
}

async fn retries(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else { return };
    let app = App::start(db).await;
    let estate = app.households(0)[0].estate.0;

    let body = incident(estate, "幂等 1");
    let (s1, r1, first) = post(&app, RECORDS, &body, Some("record-1")).await;
    assert_eq!((s1, r1), (201, None), "{first}");
    let (s2, r2, again) = post(&app, RECORDS, &body, Some("record-1")).await;
    assert_eq!((s2, r2.as_deref()), (201, Some("true")), "{again}");
    assert_eq!(again["id"], first["id"], "the same record");
    let (status, list) =
        app.call("GET", &format!("{RECORDS}?kind=incident&estate_id={estate}&limit=200"), None, None).await;
    assert_eq!(status, 200, "{list}");
    let same = list["records"].as_array().into_iter().flatten().filter(|r| r["data"]["location"] == "幂等 1").count();
    assert_eq!(same, 1, "no duplicate record: {list}");

    let (s3, _, reused) = post(&app, RECORDS, &incident(estate, "幂等 2"), Some("record-1")).await;
    assert_eq!((s3, &reused["error"]["code"]), (422, &json!("idempotency_key_reused")), "{reused}");

    let (s4, r4, plain) = post(&app, RECORDS, &body, None).await;
    assert_eq!((s4, r4), (201, None), "without the header a second record is made: {plain}");
    assert_ne!(plain["id"], first["id"]);

    let doc = fixtures::resident_id(990_001, date(1985, 5, 5), true);
    let person = json!({"name": "幂等居民", "doc_kind": "resident_id", "hukou": "shenzhen", "doc_number": doc});
    let (p1, _, created) = post(&app, "/api/registry/persons", &person, Some("person-1")).await;
    assert_eq!(p1, 201, "{created}");
    let (p2, pr2, replay) = post(&app, "/api/registry/persons", &person, Some("person-1")).await;
    assert_eq!((p2, pr2.as_deref()), (201, Some("true")), "{replay}");
    assert_eq!(replay["id"], created["id"], "the same person");
    let (p3, _, dup) = post(&app, "/api/registry/persons", &person, None).await;
    assert_eq!((p3, &dup["error"]["code"]), (409, &json!("duplicate_person")), "one person only: {dup}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_create_answers_the_first_result_on_sqlite() {
    retries(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_create_answers_the_first_result_on_postgres() {
    retries(Backend::Postgres).await;
}
