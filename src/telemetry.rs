//! Logging: a tracing subscriber, human-readable or JSON, filtered by RUST_LOG. With the `otel` cargo
//! feature and `OTEL_EXPORTER_OTLP_ENDPOINT` set, spans are also exported over OTLP/HTTP.

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::{EnvFilter, Layer, fmt, layer::SubscriberExt, util::SubscriberInitExt};

use crate::config::LogFormat;

pub const DEFAULT_FILTER: &str = "medgraph=info,tower_http=info";

/// Starts logging with `filter` (`Config::log_filter`, already checked). Lines are formatted on the
/// calling thread and written by a background thread through a 64 KiB buffer, flushed whenever no line
/// is waiting: one write per burst instead of one per line (a request's log line cost about as much
/// CPU as `{ __typename }` itself). Keep the guard until the process ends: dropping it flushes. When
/// the buffer's queue is full, callers wait rather than lines being dropped.
pub fn init(format: LogFormat, filter: &str) -> WorkerGuard {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("medgraph-log")
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stderr(),
        ));
    let output = match format {
        // Colours only for a terminal: escape codes in a log file or a collector are noise.
        LogFormat::Pretty => fmt::layer()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(writer)
            .boxed(),
        // The request's span (with its request id) on each line; not the whole list of enclosing spans.
        LogFormat::Json => fmt::layer()
            .json()
            .with_span_list(false)
            .with_writer(writer)
            .boxed(),
    };
    let registry = tracing_subscriber::registry().with(filter).with(output);
    #[cfg(feature = "otel")]
    let registry = registry.with(otel::layer());
    // A second init (e.g. in tests) keeps the first subscriber.
    let _ = registry.try_init();
    guard
}

/// Flushes exported spans before the process exits.
pub fn shutdown() {
    #[cfg(feature = "otel")]
    otel::shutdown();
}

#[cfg(feature = "otel")]
mod otel {
    use std::sync::OnceLock;

    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};
    use tracing_subscriber::{Layer, registry::LookupSpan};

    static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

    /// The export layer, when an OTLP endpoint is configured (standard OTEL_* variables, read by the SDK).
    pub fn layer<S>() -> Option<Box<dyn Layer<S> + Send + Sync>>
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
    {
        std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT")?;
        let exporter = match opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
        {
            Ok(exporter) => exporter,
            Err(e) => {
                eprintln!("medgraph: OpenTelemetry export disabled: {e}");
                return None;
            }
        };
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(Resource::builder().with_service_name("medgraph").build())
            .build();
        let tracer = provider.tracer("medgraph");
        let _ = PROVIDER.set(provider);
        Some(tracing_opentelemetry::layer().with_tracer(tracer).boxed())
    }

    pub fn shutdown() {
        if let Some(provider) = PROVIDER.get()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("medgraph: flushing OpenTelemetry spans: {e}");
        }
    }
}
