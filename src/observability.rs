//! Prometheus metrics: requests and latency per GraphQL operation, errors per code, login outcomes and
//! database pool usage, rendered at `GET /metrics`.

use std::{
    collections::HashSet,
    sync::{Mutex, OnceLock},
    time::Duration,
};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sea_orm::{DatabaseBackend, DatabaseConnection};

/// Distinct operation names kept as labels; later names are counted as "other", because clients choose
/// the names and unbounded label values would grow memory without limit.
const MAX_OPERATION_LABELS: usize = 200;
const MAX_LABEL_LENGTH: usize = 64;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static OPERATIONS: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();

/// How often buffered histogram samples are folded into their buckets.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The process-wide recorder (installed on first use; tests running many servers share it).
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let buckets = [
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
        }
        // Histogram samples pile up in the recorder until upkeep drains them into their buckets; with
        // upkeep only on a scrape, a server nobody scraped grew by ~2 MiB per 100,000 requests.
        let upkeep = handle.clone();
        let started = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                }
            });
        if let Err(e) = started {
            tracing::warn!(error = %e, "metrics upkeep thread not started; histograms drain only on scrape");
        }
        handle
    })
}

/// The label for an operation name: as given (bounded), "anonymous" or "other".
pub fn operation_label(name: Option<&str>) -> String {
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return "anonymous".into();
    };
    let name: String = name.chars().take(MAX_LABEL_LENGTH).collect();
    let known = OPERATIONS.get_or_init(|| Mutex::new(HashSet::new()));
    let Ok(mut known) = known.lock() else {
        return "other".into();
    };
    if known.contains(&name) || known.len() < MAX_OPERATION_LABELS {
        known.insert(name.clone());
        name
    } else {
        "other".into()
    }
}

pub fn record_request<'a>(
    operation: &str,
    elapsed: Duration,
    error_codes: impl Iterator<Item = &'a str>,
) {
    handle();
    let operation = operation.to_owned();
    metrics::counter!("graphql_requests_total", "operation" => operation.clone()).increment(1);
    metrics::histogram!("graphql_request_duration_seconds", "operation" => operation)
        .record(elapsed.as_secs_f64());
    for code in error_codes {
        metrics::counter!("graphql_errors_total", "code" => code.to_owned()).increment(1);
    }
}

/// `success`, `failure` (wrong credentials) or `rate_limited`.
pub fn record_login(outcome: &'static str) {
    handle();
    metrics::counter!("auth_logins_total", "outcome" => outcome).increment(1);
}

/// Renders all metrics, with the pool gauges read now.
pub fn render(db: &DatabaseConnection, reads: &crate::reads::ReadConnection) -> String {
    let handle = handle();
    let (size, idle) = match db.get_database_backend() {
        DatabaseBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle())
        }
        DatabaseBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle())
        }
        _ => (0, 0),
    };
    metrics::gauge!("db_pool_connections").set(f64::from(size));
    metrics::gauge!("db_pool_idle_connections").set(idle as f64);
    if let Some((size, idle)) = reads.pool_status() {
        metrics::gauge!("db_read_pool_connections").set(size as f64);
        metrics::gauge!("db_read_pool_idle_connections").set(idle as f64);
    }
    handle.run_upkeep();
    handle.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_labels_are_bounded() {
        assert_eq!(
            operation_label(Some(&"x".repeat(500))).len(),
            MAX_LABEL_LENGTH
        );
        assert_eq!(operation_label(None), "anonymous");
        let labels: HashSet<String> = (0..1_000)
            .map(|i| operation_label(Some(&format!("Op{i}"))))
            .collect();
        assert!(
            labels.len() <= MAX_OPERATION_LABELS + 1,
            "{} distinct labels",
            labels.len()
        );
        assert!(labels.contains("other"));
    }
}
