//! Structured logs. Secrets never reach them: secret types redact
//! themselves, and handlers log identities, not credentials.

use tracing_subscriber::{fmt, EnvFilter};

pub fn init(json: bool) {
    let filter =
        EnvFilter::try_from_env("KEYWARD_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_sessions=warn"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Spans out over OTLP/HTTP, when `--otlp-endpoint` names a collector.
pub mod traces {
    use opentelemetry::global::{BoxedTracer, ObjectSafeTracerProvider};
    use opentelemetry::InstrumentationScope;
    use opentelemetry_otlp::{Protocol, WithExportConfig};
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use opentelemetry_sdk::Resource;
    use std::time::Duration;

    use app::domain::traces::Traces;

    use crate::error::ServerError;

    /// The exporter a server owns: flushed and stopped at shutdown.
    pub struct Exporter(Option<SdkTracerProvider>);

    /// Where this server's spans go: nowhere without an endpoint (and
    /// nothing is made); else batched to the collector from the SDK's own
    /// thread, off the request path.
    pub fn start(endpoint: Option<&str>) -> Result<(Traces, Option<Exporter>), ServerError> {
        let Some(endpoint) = endpoint else {
            return Ok((Traces::default(), None));
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(endpoint)
            .with_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| ServerError::Config(format!("KEYWARD_OTLP_ENDPOINT (--otlp-endpoint): {e}")))?;
        let mut resource = Resource::builder();
        // OpenTelemetry's own OTEL_SERVICE_NAME wins when set.
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name("keyward");
        }
        let provider = SdkTracerProvider::builder()
            .with_resource(resource.build())
            .with_batch_exporter(exporter)
            .build();
        let scope = InstrumentationScope::builder("keyward")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        let tracer = BoxedTracer::new(provider.boxed_tracer(scope));
        Ok((Traces::exporting_to(tracer), Some(Exporter(Some(provider)))))
    }

    impl Exporter {
        /// Sends what is still queued and stops the export thread. It
        /// blocks (up to the export timeout), so off the async workers.
        pub async fn shutdown(mut self) {
            let Some(provider) = self.0.take() else { return };
            let done = tokio::task::spawn_blocking(move || provider.shutdown()).await;
            if let Ok(Err(e)) = done {
                tracing::warn!(error = %e, "the last spans could not be sent");
            }
        }
    }

    /// Dropped without `shutdown` (a start-up that failed half-way): the
    /// provider's own drop would block on its export thread, maybe on an
    /// async worker, so it stops on a thread of its own.
    impl Drop for Exporter {
        fn drop(&mut self) {
            if let Some(provider) = self.0.take() {
                let _ = std::thread::Builder::new()
                    .name("keyward-spans-stop".into())
                    .spawn(move || provider.shutdown());
            }
        }
    }
}
