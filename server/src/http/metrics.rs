//! `GET /metrics` (SPEC §9), and the layer that counts, times and (with
//! an OTLP endpoint configured) traces every response. Aggregates only:
//! requests are labelled by their route template (`/api/v4/sessions/users/{userId}`),
//! never by their path, so no user, key or token appears; it is served
//! like `/healthz`: block it at the proxy if even request rates should
//! stay private.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use opentelemetry::trace::SpanKind;
use opentelemetry::KeyValue;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::sync::Arc;
use std::time::Instant;

use app::domain::metrics::latency_histogram;
use app::domain::traces::{Finished, Traces};
use app::domain::Keyward;

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

/// Status classes, at index class - 1.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabel {
    class: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    /// The route template, or `unmatched` (a page the console does not
    /// have): a path never becomes a label.
    route: Arc<str>,
    class: &'static str,
}

/// The HTTP layer's series, and the registry `/metrics` encodes.
pub struct Exposition {
    registry: Registry,
    /// Responses by class, made up front (index class - 1).
    responses: [Counter; 5],
    requests: Family<RequestLabels, Counter>,
    duration: Histogram,
    resident: Gauge,
    keyward: Keyward,
}

impl Exposition {
    pub fn new(keyward: Keyward) -> Exposition {
        let mut registry = Registry::default();
        let by_class = Family::<ClassLabel, Counter>::default();
        let responses = CLASSES.map(|class| by_class.get_or_create_owned(&ClassLabel { class }));
        registry.register("keyward_http_responses", "Responses sent, by status class", by_class);
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "keyward_http_requests",
            "Requests answered, by method, route template and status class",
            requests.clone(),
        );
        let duration = latency_histogram();
        registry.register_with_unit(
            "keyward_http_request_duration",
            "Time from a request's arrival to its response's headers",
            Unit::Seconds,
            duration.clone(),
        );
        let resident = Gauge::default();
        registry.register_with_unit(
            "process_resident_memory",
            "Resident memory size",
            Unit::Bytes,
            resident.clone(),
        );
        keyward.metrics().register(&mut registry);
        Exposition {
            registry,
            responses,
            requests,
            duration,
            resident,
            keyward,
        }
    }

    fn record(&self, method: &'static str, route: Option<&str>, status: u16, took: std::time::Duration) {
        let class = usize::from(status / 100).wrapping_sub(1);
        if let Some(counter) = self.responses.get(class) {
            counter.inc();
            self.requests
                .get_or_create(&RequestLabels {
                    method,
                    route: Arc::from(route.unwrap_or("unmatched")),
                    class: CLASSES[class],
                })
                .inc();
        }
        self.duration.observe(took.as_secs_f64());
    }

    /// The exposition in the format the scraper asked for: OpenMetrics
    /// when its `Accept` names it (Prometheus does), else the classic text.
    fn encode(&self, headers: &HeaderMap) -> (&'static str, String) {
        if let Some(bytes) = resident_bytes() {
            self.resident.set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
        // Reading the domain's figures samples its gauges.
        let _ = self.keyward.metrics();
        let open_metrics = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("application/openmetrics-text"));
        let mut out = String::new();
        // Writing into a String cannot fail.
        if open_metrics {
            let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
            ("application/openmetrics-text; version=1.0.0; charset=utf-8", out)
        } else {
            let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
            ("text/plain; version=0.0.4; charset=utf-8", out)
        }
    }
}

/// What the layer needs: the series, and where spans go.
#[derive(Clone)]
pub struct Recorder {
    pub exposition: Arc<Exposition>,
    pub traces: Traces,
}

/// Counts each response by status class and route, times it (to its
/// headers), and records its span when spans are exported.
pub async fn record(State(recorder): State<Recorder>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    // Set by the router before this layer runs; absent for the fallback.
    let route = req.extensions().get::<MatchedPath>().cloned();
    let res = next.run(req).await;
    let took = started.elapsed();
    let status = res.status().as_u16();
    let route = route.as_ref().map(MatchedPath::as_str);
    recorder.exposition.record(method, route, status, took);
    recorder.traces.record(|| http_span(method, route, status, took));
    res
}

/// A server span as OpenTelemetry's HTTP conventions name it: method and
/// route template; the status; never the path, query, headers or body.
fn http_span(method: &'static str, route: Option<&str>, status: u16, took: std::time::Duration) -> Finished {
    let mut attributes = vec![
        KeyValue::new("http.request.method", method),
        KeyValue::new("http.response.status_code", i64::from(status)),
    ];
    let name = match route {
        Some(route) => {
            attributes.push(KeyValue::new("http.route", route.to_string()));
            format!("{method} {route}")
        }
        None => method.to_string(),
    };
    Finished {
        name,
        kind: SpanKind::Server,
        took,
        attributes,
        failed: status >= 500,
    }
}

/// The method as a label from a closed set: an extension method a client
/// made up is `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> impl IntoResponse {
    let (kind, body) = state.recorder.exposition.encode(&headers);
    ([(header::CONTENT_TYPE, kind)], body)
}

/// The process's resident set, where the platform tells it (Linux).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_span_names_the_route_template_and_marks_server_errors() {
        let span = http_span(
            "DELETE",
            Some("/api/v4/sessions/users/{user_id}"),
            503,
            Duration::from_millis(3),
        );
        assert_eq!(span.name, "DELETE /api/v4/sessions/users/{user_id}");
        assert!(span.failed, "a 5xx is an error span");
        assert!(span
            .attributes
            .iter()
            .any(|kv| kv.key.as_str() == "http.response.status_code" && kv.value == 503i64.into()));
        let span = http_span("GET", None, 404, Duration::ZERO);
        assert_eq!(span.name, "GET");
        assert!(!span.failed, "a 4xx is the client's");
        assert!(!span.attributes.iter().any(|kv| kv.key.as_str() == "http.route"));
    }

    #[test]
    fn methods_come_from_a_closed_set() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        assert_eq!(method_label(&Method::from_bytes(b"PROPFIND").unwrap()), "other");
        assert_eq!(method_label(&Method::from_bytes(b"kwat_s3cret").unwrap()), "other");
    }
}
