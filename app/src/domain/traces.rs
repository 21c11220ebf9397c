//! Spans for an OpenTelemetry exporter, when the operator configured one.
//! A span is recorded once its work is done, from its start and its
//! duration, so nothing is held open across an `.await` and an instance
//! with no exporter pays one branch: no clock read, no allocation.
//! Attributes are chosen by the caller from closed sets (route templates,
//! status codes, counts): never a query string, a body or a credential.

use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::{Span, SpanKind, Status, Tracer};
use opentelemetry::KeyValue;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Where finished spans go: nowhere, or to the configured exporter.
#[derive(Clone, Default)]
pub struct Traces(Option<Arc<BoxedTracer>>);

impl std::fmt::Debug for Traces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Traces(exporting)"
        } else {
            "Traces(off)"
        })
    }
}

/// A span about to be recorded.
pub struct Finished {
    pub name: String,
    pub kind: SpanKind,
    pub took: Duration,
    pub attributes: Vec<KeyValue>,
    pub failed: bool,
}

impl Traces {
    pub fn exporting_to(tracer: BoxedTracer) -> Self {
        Traces(Some(Arc::new(tracer)))
    }

    /// Records a span that ended just now; `make` runs only when spans
    /// are exported.
    pub fn record(&self, make: impl FnOnce() -> Finished) {
        let Some(tracer) = &self.0 else { return };
        let span = make();
        let end = SystemTime::now();
        let start = end.checked_sub(span.took).unwrap_or(end);
        let mut live = tracer
            .span_builder(span.name)
            .with_kind(span.kind)
            .with_start_time(start)
            .with_attributes(span.attributes)
            .start(tracer.as_ref());
        if span.failed {
            live.set_status(Status::error(""));
        }
        live.end_with_timestamp(end);
    }
}
