//! `GET /metrics` in Prometheus's text format (SPEC §9), and the layer that
//! counts every response. Aggregates only: no path, user, key or token
//! appears, so it is served like `/healthz`; block it at the proxy if even
//! request rates should stay private.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use app::domain::metrics::{HistogramSnapshot, HttpMetrics};

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

/// Counts each response by status class and times it (to its headers).
pub async fn record(State(metrics): State<Arc<HttpMetrics>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let res = next.run(req).await;
    metrics.record(res.status().as_u16(), started.elapsed());
    res
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut out = Exposition::default();
    let http = &state.http_metrics;
    out.head(
        "keyward_http_responses_total",
        "counter",
        "Responses sent, by status class.",
    );
    for (class, n) in http.responses() {
        out.sample("keyward_http_responses_total", &format!("class=\"{class}\""), n as f64);
    }
    out.histogram(
        "keyward_http_request_duration_seconds",
        "Time from a request's arrival to its response's headers.",
        &http.duration.snapshot(),
    );

    let gauges = state.keyward.gauges();
    let writer = gauges.writer;
    out.histogram(
        "keyward_writer_commit_seconds",
        "Time to write and commit one batch of the batching writer: what each write in it waited on the database.",
        &writer.commit.snapshot(),
    );
    out.head(
        "keyward_writer_writes_total",
        "counter",
        "Writes taken into a batch, by kind.",
    );
    out.sample(
        "keyward_writer_writes_total",
        "kind=\"user\"",
        writer.new_users.load(Relaxed) as f64,
    );
    out.sample(
        "keyward_writer_writes_total",
        "kind=\"redemption\"",
        writer.redemptions.load(Relaxed) as f64,
    );
    out.head(
        "keyward_writer_failed_statements_total",
        "counter",
        "Batch statements the database refused (their writes were answered with an error).",
    );
    out.sample(
        "keyward_writer_failed_statements_total",
        "",
        writer.failures.load(Relaxed) as f64,
    );
    let (filter_bytes, filter_logouts) = (gauges.revocation_filter_bytes, gauges.revocation_filter_logouts);
    out.head(
        "keyward_revocation_filter_bytes",
        "gauge",
        "Memory of the logged-out-token filter in use (fixed; a second one while it is rebuilt).",
    );
    out.sample("keyward_revocation_filter_bytes", "", filter_bytes as f64);
    out.head(
        "keyward_revocation_filter_logouts",
        "gauge",
        "Logouts put into the filter in use since it was built.",
    );
    out.sample("keyward_revocation_filter_logouts", "", filter_logouts as f64);
    out.head("keyward_writer_queued", "gauge", "Writes waiting for a batch.");
    out.sample("keyward_writer_queued", "", gauges.writer_queued as f64);
    if let Some(bytes) = resident_bytes() {
        out.head(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
        );
        out.sample("process_resident_memory_bytes", "", bytes as f64);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        out.text,
    )
}

/// The text format, one family at a time.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &str, value: f64) {
        let _ = if labels.is_empty() {
            writeln!(self.text, "{name} {value}")
        } else {
            writeln!(self.text, "{name}{{{labels}}} {value}")
        };
    }

    fn histogram(&mut self, name: &str, help: &str, h: &HistogramSnapshot) {
        self.head(name, "histogram", help);
        let bucket = format!("{name}_bucket");
        for (le, n) in &h.cumulative {
            self.sample(&bucket, &format!("le=\"{le}\""), *n as f64);
        }
        self.sample(&bucket, "le=\"+Inf\"", h.count as f64);
        self.sample(&format!("{name}_sum"), "", h.sum_seconds);
        self.sample(&format!("{name}_count"), "", h.count as f64);
    }
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
