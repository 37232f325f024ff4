//! Application wiring: the shared state (database pool, auth), the HTTP router, and serving on a listener.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use axum::{
    Router,
    extract::{DefaultBodyLimit, State},
    http::{HeaderName, HeaderValue, Method, StatusCode, header},
    routing::get,
};
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};

use crate::{
    auth::{Auth, limiter::AuthRateLimiter},
    batched_creates::BatchedCreates,
    config::Config,
    entities::{patient, user},
    graphql::{self, AppSchema},
    point_reads::ByIdReads,
    reads::ReadConnection,
    services::{
        audit::{AuditSink, WRITES_IN_FLIGHT},
        events::EventBus,
    },
};

#[derive(Clone)]
pub struct AppState {
    /// The SeaORM pool: writes and transactions (and, on SQLite, everything).
    pub db: DatabaseConnection,
    /// Where the services' reads outside a transaction run (src/reads.rs).
    pub reads: ReadConnection,
    /// Shared: the token service's keys and validation rules are not copied per request.
    pub auth: Arc<Auth>,
    pub config: Arc<Config>,
    pub audit: AuditSink,
    pub events: EventBus,
    pub auth_limiter: Arc<AuthRateLimiter>,
    /// On PostgreSQL: the reads and creates that concurrent requests share statements for.
    pub coalesced: Option<Coalesced>,
    statements: Arc<AtomicU64>,
}

/// What concurrent requests do often enough to be worth one statement for several of them: read the
/// caller's account (`me`) and `patient(id)` (src/point_reads.rs), and `createPatient`
/// (src/batched_creates.rs).
#[derive(Clone)]
pub struct Coalesced {
    pub users: ByIdReads<user::Entity>,
    pub patients: ByIdReads<patient::Entity>,
    pub patient_creates: BatchedCreates<patient::ActiveModel>,
}

impl AppState {
    /// Connects to the configured database, runs all pending migrations, and starts the audit writer.
    pub async fn connect(config: &Config) -> anyhow::Result<AppState> {
        let (db, statements) = connect_database(config).await?;
        Migrator::up(&db, None)
            .await
            .context("running migrations")?;
        // On PostgreSQL the audit writer, the event listener and the event notifier get connections
        // of their own (the audit writer one per statement it has out). From the request pool the
        // writers queued behind every request's statements (and requests waited for them), and the
        // listener's LISTEN held one of the pool's connections for good.
        let dedicated = |connections: usize| {
            config.database_url.starts_with("postgres").then(|| {
                let mut options = connect_options(config);
                options
                    .max_connections(connections as u32)
                    .min_connections(0)
                    .connect_lazy(true);
                options
            })
        };
        let reads = ReadConnection::new(db.clone(), config, statements.clone())?;
        Ok(AppState {
            audit: AuditSink::start(db.clone(), dedicated(WRITES_IN_FLIGHT))
                .context("starting the audit writer")?,
            events: EventBus::start(&db, dedicated(1), dedicated(1), config.events_listen_linger)
                .await,
            auth: Arc::new(Auth::new(config)),
            auth_limiter: Arc::new(AuthRateLimiter::new(&config.abuse)),
            config: Arc::new(config.clone()),
            reads: reads.clone(),
            coalesced: config
                .database_url
                .starts_with("postgres")
                .then(|| Coalesced {
                    users: ByIdReads::start(reads.clone(), user::Column::Id, |u: &user::Model| {
                        u.id
                    }),
                    patients: ByIdReads::start(
                        reads.clone(),
                        patient::Column::Id,
                        |p: &patient::Model| p.id,
                    ),
                    patient_creates: BatchedCreates::start(reads, |p: &patient::Model| p.id),
                }),
            db,
            statements,
        })
    }

    /// Finishes what a graceful shutdown must not lose: buffered audit events. The pool stays usable.
    pub async fn shutdown(&self) {
        self.audit.flush().await;
    }

    /// SQL statements executed through this state's pools so far (for tests and diagnostics).
    pub fn sql_statement_count(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }
}

/// Opens the pool (without migrating). In-memory SQLite gets exactly one connection that never expires:
/// every connection would otherwise be a separate, empty database.
pub async fn connect_database(
    config: &Config,
) -> anyhow::Result<(DatabaseConnection, Arc<AtomicU64>)> {
    let url = &config.database_url;
    let in_memory = is_in_memory(url);
    let mut db = Database::connect(connect_options(config))
        .await
        .with_context(|| format!("connecting to the database ({})", redact_url(url)))?;
    if url.starts_with("sqlite:") && !in_memory {
        // WAL lets readers proceed while one connection writes; the setting is stored in the file.
        db.execute_unprepared("PRAGMA journal_mode=WAL")
            .await
            .context("enabling WAL")?;
    }
    let statements = Arc::new(AtomicU64::new(0));
    let counter = statements.clone();
    // Counts the statements requests run; the audit writer's batched inserts are its own business.
    db.set_metric_callback(move |info| {
        if !info
            .statement
            .sql
            .starts_with(r#"INSERT INTO "audit_events""#)
        {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    Ok((db, statements))
}

fn is_in_memory(url: &str) -> bool {
    url.starts_with("sqlite::memory:") || url.contains("mode=memory")
}

/// How the pool connects: timeouts, size, the statement limit.
fn connect_options(config: &Config) -> ConnectOptions {
    let url = &config.database_url;
    let in_memory = is_in_memory(url);
    let mut options = ConnectOptions::new(url.clone());
    options
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10));
    if in_memory {
        options
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None);
    } else {
        options.max_connections(config.db_max_connections);
    }
    // sqlx pings a connection before every checkout by default: one more round trip per statement.
    // Only a connection idle long enough to have been dropped (a restart, a proxy) is pinged; a hot
    // one that has died fails its request once and is discarded.
    options.test_before_acquire_if_idle_for(Duration::from_secs(10));
    // PostgreSQL cancels any statement that runs longer (SQLite has no such setting).
    options.statement_timeout(config.limits.statement_timeout);
    // Fail fast when the database is gone, well within the request timeout.
    options.acquire_timeout(config.limits.statement_timeout);
    options
}

/// The URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            let user = credentials.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// State of the HTTP handlers, behind one `Arc`: axum clones it for every request.
#[derive(Clone)]
pub struct HttpState(Arc<HttpShared>);

impl std::ops::Deref for HttpState {
    type Target = HttpShared;
    fn deref(&self) -> &HttpShared {
        &self.0
    }
}

/// The schema (which holds the AppState as data) and the state itself.
pub struct HttpShared {
    /// With the persisted-query and limit extensions: WebSocket subscriptions and HTTP requests that
    /// carry a persisted-query hash.
    pub schema: AppSchema,
    /// Without extensions: every other HTTP request (checked against the limits by the handler).
    pub plain_schema: AppSchema,
    /// The same schema with a deeper limit, for documents that only introspect (GraphiQL, codegen).
    pub introspection_schema: AppSchema,
    /// Documents that passed the token and alias limits, parsed (shared by both schemas).
    pub documents: Arc<graphql::documents::DocumentCache>,
    /// The APQ store both schemas use: a GET naming a stored hash is checked like a GET with its text.
    pub persisted_queries: graphql::PersistedQueryStore,
    /// Answers to repeated patient lists (`None` when `RESPONSE_CACHE_BYTES=0`).
    pub response_cache: Option<graphql::response_cache::ResponseCache>,
    pub state: AppState,
}

pub fn router(state: AppState) -> Router {
    let config = state.config.clone();
    let persisted_queries = graphql::persisted_query_storage();
    let documents = Arc::new(graphql::documents::DocumentCache::new(
        config.limits.max_tokens,
        config.limits.max_aliases,
    ));
    let schema = graphql::build_schema(state.clone(), persisted_queries.clone(), documents.clone());
    let plain_schema = graphql::build_plain_schema(state.clone());
    let introspection_schema = graphql::build_introspection_schema(
        state.clone(),
        persisted_queries.clone(),
        documents.clone(),
    );
    let response_cache = graphql::response_cache::ResponseCache::new(
        config.response_cache_bytes,
        state.reads.clone(),
        state.coalesced.is_some(),
    );
    let request_id = HeaderName::from_static("x-request-id");
    let mut router = Router::new()
        .route(
            "/graphql",
            get(graphql::handler::get).post(graphql::handler::post),
        )
        .route("/graphiql/{file}", get(crate::graphiql::asset))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/graphql/ws", get(graphql::subscriptions::websocket))
        .with_state(HttpState(Arc::new(HttpShared {
            schema,
            plain_schema,
            introspection_schema,
            documents,
            persisted_queries,
            response_cache,
            state,
        })))
        .layer(DefaultBodyLimit::max(config.limits.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            config.limits.request_timeout,
            time_limit,
        ));
    // One layer for all of them: each `Router::layer` is another boxed service cloned per request.
    let headers: Arc<[(HeaderName, HeaderValue)]> = security_headers(config.is_production()).into();
    router = router.layer(axum::middleware::map_response(
        move |mut response: axum::response::Response| {
            let headers = headers.clone();
            async move {
                for (name, value) in headers.iter() {
                    if !response.headers().contains_key(name) {
                        response.headers_mut().insert(name.clone(), value.clone());
                    }
                }
                response
            }
        },
    ));
    if !config.cors_allowed_origins.is_empty() {
        let origins: Vec<HeaderValue> = config
            .cors_allowed_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        router = router.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([
                    header::CONTENT_TYPE,
                    header::AUTHORIZATION,
                    header::ACCEPT,
                    request_id.clone(),
                ])
                .expose_headers([request_id.clone()])
                .max_age(Duration::from_secs(600)),
        );
    }
    router
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
            let request_id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id)
        }))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(axum::middleware::map_request(drop_unusable_request_id))
}

/// `REQUEST_TIMEOUT` for every request: past it the work is dropped (an open transaction rolls back)
/// and the client gets a 503 whose body is a GraphQL error list saying so, not an empty page.
async fn time_limit(
    State(limit): State<Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(limit_ms = limit.as_millis() as u64, "request timed out");
            let message = format!(
                "The request took longer than the server's limit of {}",
                humantime::format_duration(limit)
            );
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
                serde_json::json!({ "errors": [{ "message": message }] }).to_string(),
            )
                .into_response()
        }
    }
}

/// The longest client-chosen request id kept: the audit trail's `request_id` column is 64 characters.
pub const MAX_REQUEST_ID_LEN: usize = 64;

/// A client's `x-request-id` is kept only when it fits the audit trail and log lines: one header of at
/// most 64 characters from a conservative set. Anything else is dropped, and a fresh id is made for the
/// request, so an odd header can never fail a write or its audit row.
async fn drop_unusable_request_id(
    mut request: axum::http::Request<axum::body::Body>,
) -> axum::http::Request<axum::body::Body> {
    let mut values = request.headers().get_all("x-request-id").iter();
    let usable = match (values.next(), values.next()) {
        (Some(value), None) => value.to_str().is_ok_and(is_usable_request_id),
        (None, _) => true,
        (Some(_), Some(_)) => false,
    };
    if !usable {
        request.headers_mut().remove("x-request-id");
    }
    request
}

fn is_usable_request_id(id: &str) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len())
        && id.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/' | b'+' | b'=')
        })
}

/// Headers every response carries unless the handler set its own (GraphiQL sets a looser CSP).
fn security_headers(production: bool) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = vec![
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        ),
        // Responses carry patient data: no shared or browser caches.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            HeaderValue::from_static("same-origin"),
        ),
    ];
    if production {
        headers.push((
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        ));
    }
    headers
}

async fn metrics(State(http): State<HttpState>) -> impl axum::response::IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::observability::render(&http.state.db, &http.state.reads),
    )
}

async fn readyz(State(http): State<HttpState>) -> (StatusCode, &'static str) {
    // After the database dropped its connections the pool may still hold dead idle ones: a failed ping
    // closes the one it took, so try again (each pooled connection at most once, then a new one)
    // rather than report a reachable database as down.
    let attempts = http.state.config.db_max_connections + 1;
    let ping = async {
        for _ in 0..attempts {
            if http.state.db.ping().await.is_ok() {
                return true;
            }
        }
        false
    };
    match tokio::time::timeout(Duration::from_secs(2), ping).await {
        Ok(true) => (StatusCode::OK, "ready"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable"),
    }
}

/// Serves `router` on an already-bound listener until ctrl-c / SIGTERM, letting in-flight requests
/// finish. Handlers get the peer address (the client IP for rate limits and the audit trail).
pub async fn serve(listener: tokio::net::TcpListener, router: Router) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // Nagle's algorithm would hold a response's last segment until the client acknowledged the
    // previous one (up to the client's delayed-ACK timeout): a GraphQL response is written at once.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
