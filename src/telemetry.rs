//! Logging: a tracing subscriber, human-readable or JSON, filtered by RUST_LOG.

use tracing_subscriber::{EnvFilter, fmt};

use crate::config::LogFormat;

pub const DEFAULT_FILTER: &str = "medgraph=info,tower_http=info";

pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second init (e.g. in tests) keeps the first subscriber.
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
