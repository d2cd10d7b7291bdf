//! Prometheus metrics of the HTTP surface, rendered at `GET /api/metrics`.
//!
//! The `metrics` facade records; a `metrics-exporter-prometheus` recorder, installed once per
//! process ([`handle`]), keeps the values and renders the text exposition format from its
//! [`PrometheusHandle`]. The exporter opens no listener of its own: the API route is the scrape
//! endpoint, behind the same authentication as every other guarded route.
//!
//! Histograms buffer their samples until the recorder's upkeep drains them into buckets, so
//! upkeep must run: every router starts a task ([`spawn_upkeep`]) that runs it every
//! [`UPKEEP_EVERY`] for as long as the router lives, and a scrape runs it once more before
//! rendering so the answer is current.
//!
//! Recorded per request (by the router's logging layer, [`record_request`]):
//! - `http_requests_total{method,route,status}` (counter),
//! - `http_request_duration_seconds{method,route}` (histogram),
//!
//! where `route` is the matched path template (`/api/items/{plugin}/records/{id}`), never the raw
//! URI, and `unmatched` when no route matched; `method` is one of the standard methods or
//! `other`. No label names a user, an account or an identifier, so the series stay few.

use std::sync::{OnceLock, Weak};
use std::time::Duration;

use axum::http::Method;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// The request counter.
pub(crate) const REQUESTS: &str = "http_requests_total";

/// The request-duration histogram.
pub(crate) const DURATION: &str = "http_request_duration_seconds";

/// The `route` label of a request no route matched.
pub(crate) const UNMATCHED: &str = "unmatched";

/// How often the recorder's upkeep (draining histogram samples) runs.
pub(crate) const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Buckets of the duration histogram, in seconds: 1 ms to 10 s.
const DURATION_BUCKETS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0];

/// The process's Prometheus recorder, installed as the global `metrics` recorder at first use.
///
/// Many routers may be built in one process (tests build one per case): the recorder is built
/// and installed once. When another global recorder is already installed (an embedding program
/// chose its own), this one is kept but records nothing, and a warning is logged.
pub(crate) fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(DURATION.to_owned()), &DURATION_BUCKETS)
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "duration buckets refused: request durations are kept as a summary");
                PrometheusBuilder::new()
            });
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if let Err(e) = metrics::set_global_recorder(recorder) {
            tracing::warn!(error = %e, "another metrics recorder is installed: GET /api/metrics stays empty");
        }
        handle
    })
}

/// Starts the recorder's upkeep on the current tokio runtime, every [`UPKEEP_EVERY`], until
/// `owner` (the router's state) is dropped. Outside a runtime nothing is started (a scrape still
/// runs upkeep before it renders).
pub(crate) fn spawn_upkeep<T: Send + Sync + 'static>(owner: Weak<T>) {
    let handle = handle();
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        tracing::debug!("no tokio runtime: metrics upkeep runs at scrape time only");
        return;
    };
    runtime.spawn(async move {
        let mut every = tokio::time::interval(UPKEEP_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        every.tick().await;
        loop {
            every.tick().await;
            if owner.strong_count() == 0 {
                break;
            }
            handle.run_upkeep();
        }
    });
}

/// Records one answered request under its route template (`None`: no route matched).
pub(crate) fn record_request(method: &Method, route: Option<&str>, status: u16, elapsed: Duration) {
    // The recorder must be installed before the first sample, or the sample goes nowhere.
    handle();
    let method = method_label(method);
    let route = route.unwrap_or(UNMATCHED).to_owned();
    metrics::counter!(REQUESTS, "method" => method, "route" => route.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!(DURATION, "method" => method, "route" => route).record(elapsed.as_secs_f64());
}

/// The text exposition of every metric, after draining buffered histogram samples.
pub(crate) fn render() -> String {
    let handle = handle();
    handle.run_upkeep();
    handle.render()
}

/// A bounded `method` label: the standard methods by name, anything else `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;
    use crate::testkit::TestApp;

    #[test]
    fn methods_outside_the_standard_set_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").expect("method")), "other");
    }

    #[test]
    fn histograms_reach_the_rendering_through_upkeep() {
        record_request(&Method::GET, Some("/api/telemetry-test/{id}"), 200, Duration::from_millis(3));
        record_request(&Method::GET, None, 404, Duration::from_millis(1));
        let text = render();
        assert!(
            text.contains(r#"http_requests_total{method="GET",route="/api/telemetry-test/{id}",status="200"}"#),
            "{text}"
        );
        assert!(text.contains(r#"route="unmatched",status="404""#), "{text}");
        assert!(
            text.contains(
                r#"http_request_duration_seconds_bucket{method="GET",route="/api/telemetry-test/{id}",le="0.005"}"#
            ),
            "{text}"
        );
    }

    #[tokio::test]
    async fn requests_are_counted_by_route_template() {
        let app = TestApp::start().await;
        let answer = app.get("/api/registry/estates/987654", true).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.body);
        let answer = app.get("/api/no-such-route/555444", true).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND);

        assert_eq!(app.get("/api/metrics", false).await.status, StatusCode::UNAUTHORIZED);
        let answer = app.get("/api/metrics", true).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        assert_eq!(answer.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
        let text = answer.body;
        assert!(
            text.contains(r#"http_requests_total{method="GET",route="/api/registry/estates/{id}",status="404"}"#),
            "{text}"
        );
        assert!(text.contains(r#"http_requests_total{method="GET",route="unmatched",status="404"}"#), "{text}");
        assert!(
            text.contains(r#"http_request_duration_seconds_count{method="GET",route="/api/registry/estates/{id}"}"#),
            "{text}"
        );
        assert!(!text.contains("987654") && !text.contains("555444") && !text.contains("no-such-route"), "{text}");
        assert!(!text.contains(&app.token) && !text.contains("ops.admin"), "no credentials or users in labels");
    }
}
