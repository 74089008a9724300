//! Where `accessd serve`'s log lines and request spans go: to stderr as text or JSON,
//! and, with `--otlp-endpoint`, as OpenTelemetry spans to a collector over OTLP/gRPC.
//! Without the flag no OpenTelemetry layer is in the subscriber at all.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::{KeyValue, trace::TracerProvider as _};
use opentelemetry_otlp::{SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::{
    Resource,
    trace::{SdkTracerProvider, Tracer},
};
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetryLayer;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, layer::SubscriberExt as _, registry::LookupSpan};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Whether request spans are exported: read by the server to give spans the names and
/// attributes a tracing backend shows.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// The name traces give the service unless `OTEL_SERVICE_NAME` says otherwise.
const SERVICE_NAME: &str = "accessd";

/// Whether the subscriber exports spans over OTLP.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be built from the flag and the `OTEL_*` variables.
    #[error("--otlp-endpoint: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    /// A subscriber was set up already.
    #[error("cannot set up logging: {0}")]
    Subscriber(#[from] tracing_subscriber::util::TryInitError),
}

/// The running telemetry, to be shut down once the server has stopped, so that the
/// spans of its last calls are exported.
#[must_use = "spans are exported only up to a shutdown"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports every span still queued and stops the exporter; blocks until the
    /// collector has answered or the export timeout (`OTEL_BSP_EXPORT_TIMEOUT`) passed.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(%error, "spans still queued may not have been exported");
        }
    }
}

/// Sets up the process's subscriber: log lines to stderr in `format`, filtered by
/// `ACCESSD_LOG` (default `info`), and spans exported to `otlp_endpoint` if given. Must be
/// called inside the tokio runtime, which the exporter's connection runs on.
pub fn init(format: LogFormat, otlp_endpoint: Option<&str>) -> Result<Telemetry, TelemetryError> {
    let filter = EnvFilter::try_from_env("ACCESSD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal, not in files or log collectors.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let Some(endpoint) = otlp_endpoint else {
        match format {
            LogFormat::Text => builder.finish().try_init()?,
            LogFormat::Json => builder.json().finish().try_init()?,
        }
        return Ok(Telemetry { provider: None });
    };
    let provider = provider(endpoint)?;
    let tracer = provider.tracer(SERVICE_NAME);
    match format {
        LogFormat::Text => builder.finish().with(layer(tracer)).try_init()?,
        LogFormat::Json => builder.json().finish().with(layer(tracer)).try_init()?,
    }
    EXPORTING.store(true, Ordering::Relaxed);
    tracing::info!(endpoint, "exporting spans over OTLP");
    Ok(Telemetry {
        provider: Some(provider),
    })
}

fn layer<S>(tracer: Tracer) -> OpenTelemetryLayer<S, Tracer>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    tracing_opentelemetry::layer().with_tracer(tracer)
}

/// A provider exporting batches of spans to `endpoint`; the `OTEL_*` variables the SDK
/// reads (headers, timeouts, batch sizes, sampler, resource attributes) apply.
fn provider(endpoint: &str) -> Result<SdkTracerProvider, TelemetryError> {
    let exporter = SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()?;
    let mut resource = Resource::builder()
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(SERVICE_NAME);
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}
