//! Logging: a tracing subscriber, human-readable or JSON, filtered by RUST_LOG. With the `otel` cargo
//! feature and `OTEL_EXPORTER_OTLP_ENDPOINT` set, spans are also exported over OTLP/HTTP.

use std::{
    sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError},
    thread::JoinHandle,
    time::Duration,
};

use tracing_subscriber::{
    EnvFilter, Layer, fmt, fmt::MakeWriter, layer::SubscriberExt, util::SubscriberInitExt,
};

use crate::config::LogFormat;

pub const DEFAULT_FILTER: &str = "medgraph=info,tower_http=info";

/// Starts logging with `filter` (`Config::log_filter`, already checked). Lines are formatted on the
/// calling thread into a shared buffer that a background thread writes out every `LOG_FLUSH_EVERY`
/// (sooner when it holds `LOG_FLUSH_BYTES`). A thread woken for every line, as tracing-appender's is,
/// cost a context switch and a write per request: with the request log on, `me` ran about 16 % slower
/// than with it off. Keep the guard until the process ends: dropping it writes what is left. Callers wait
/// when `LOG_BUFFER_MAX` is reached, rather than lines being dropped.
pub fn init(format: LogFormat, filter: &str) -> LogGuard {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let (writer, guard) = BatchedWriter::start(std::io::stderr());
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

/// Longest a log line waits in the buffer.
const LOG_FLUSH_EVERY: Duration = Duration::from_millis(20);
/// A buffer this full is written at once.
const LOG_FLUSH_BYTES: usize = 64 * 1024;
/// Loggers wait while the buffer holds this much (the output is slower than the lines coming in).
const LOG_BUFFER_MAX: usize = 4 * 1024 * 1024;

struct Buffer {
    bytes: Vec<u8>,
    closed: bool,
}

struct Shared {
    buffer: Mutex<Buffer>,
    /// Signals the writing thread: a full buffer, or the end.
    ready: Condvar,
    /// Signals waiting loggers: the buffer was taken.
    drained: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Buffer> {
        // A logger that panicked mid-append leaves at worst a partial line: keep logging.
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The `MakeWriter` of the log layers: each formatted line is appended to the shared buffer.
#[derive(Clone)]
pub struct BatchedWriter(Arc<Shared>);

/// Writes out what is buffered and stops the writing thread when dropped.
pub struct LogGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl BatchedWriter {
    fn start(mut output: impl std::io::Write + Send + 'static) -> (BatchedWriter, LogGuard) {
        let shared = Arc::new(Shared {
            buffer: Mutex::new(Buffer {
                bytes: Vec::with_capacity(LOG_FLUSH_BYTES),
                closed: false,
            }),
            ready: Condvar::new(),
            drained: Condvar::new(),
        });
        let writer_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("medgraph-log".into())
            .spawn(move || {
                let mut spare = Vec::with_capacity(LOG_FLUSH_BYTES);
                loop {
                    let closed = {
                        let mut buffer = writer_shared.lock();
                        if buffer.bytes.len() < LOG_FLUSH_BYTES && !buffer.closed {
                            buffer = writer_shared
                                .ready
                                .wait_timeout(buffer, LOG_FLUSH_EVERY)
                                .unwrap_or_else(PoisonError::into_inner)
                                .0;
                        }
                        std::mem::swap(&mut buffer.bytes, &mut spare);
                        buffer.closed
                    };
                    writer_shared.drained.notify_all();
                    if !spare.is_empty() {
                        // Nowhere to report a failing log output; the lines are dropped.
                        let _ = output.write_all(&spare).and_then(|()| output.flush());
                        spare.clear();
                        // A burst's oversized buffer is not kept for good.
                        spare.shrink_to(LOG_FLUSH_BYTES);
                    }
                    if closed {
                        return;
                    }
                }
            })
            .ok();
        if thread.is_none() {
            eprintln!("medgraph: could not start the log writer thread; logs are written directly");
            shared.lock().closed = true;
        }
        let guard = LogGuard {
            shared: shared.clone(),
            thread,
        };
        (BatchedWriter(shared), guard)
    }
}

impl std::io::Write for BatchedWriter {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut buffer = self.0.lock();
        if buffer.closed {
            // After the guard (the end of main): straight to stderr.
            drop(buffer);
            return std::io::stderr().write(line);
        }
        while buffer.bytes.len() >= LOG_BUFFER_MAX {
            buffer = self
                .0
                .drained
                .wait(buffer)
                .unwrap_or_else(PoisonError::into_inner);
        }
        buffer.bytes.extend_from_slice(line);
        if buffer.bytes.len() >= LOG_FLUSH_BYTES {
            self.0.ready.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedWriter {
    type Writer = BatchedWriter;

    fn make_writer(&'a self) -> BatchedWriter {
        self.clone()
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.shared.lock().closed = true;
        self.shared.ready.notify_one();
        let _ = thread.join();
    }
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

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("captured").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_is_written_in_order_and_the_guard_writes_the_rest() {
        let output = Captured::default();
        let (writer, guard) = BatchedWriter::start(output.clone());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let writer = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..5_000 {
                        let mut line = writer.make_writer();
                        line.write_all(format!("t{t} line {i:05}\n").as_bytes())
                            .expect("write");
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("logger thread");
        }
        drop(guard);
        let text = String::from_utf8(output.0.lock().expect("captured").clone()).expect("utf-8");
        for t in 0..4 {
            let mine: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with(&format!("t{t} ")))
                .collect();
            let expected: Vec<String> = (0..5_000).map(|i| format!("t{t} line {i:05}")).collect();
            assert_eq!(mine, expected, "thread {t}'s lines, complete and in order");
        }
    }

    #[test]
    fn a_quiet_line_is_written_without_waiting_for_more() {
        let output = Captured::default();
        let (writer, _guard) = BatchedWriter::start(output.clone());
        writer
            .make_writer()
            .write_all(b"a single line\n")
            .expect("write");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while output.0.lock().expect("captured").is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the line was not written"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            output.0.lock().expect("captured").as_slice(),
            b"a single line\n"
        );
    }
}
