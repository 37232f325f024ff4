//! Where statements outside a transaction run: the services' reads, and the changes that are one
//! statement with their audit row (`audit::audited_statement`). On PostgreSQL they take connections
//! from a pool of our own; transactions and everything on SQLite stay on SeaORM's sqlx pool.
//!
//! Why: sqlx 0.9's pool pings every connection it takes back (a Sync and a wait for PostgreSQL's
//! answer, unconditionally). For a point read that is one round trip in two, ~14 % of the server's
//! CPU and a wake-up of a PostgreSQL backend. The ping is not needed to keep the protocol in step:
//! sqlx reads what a statement left unread before it sends the next one. So this pool hands a
//! connection back as it is, and only a connection that was idle for a while is pinged first
//! (the sqlx pool's policy in app.rs). A connection whose statement was cancelled half-way, or
//! that failed below SQL, is closed instead of reused.

use std::{
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use deadpool::managed::{self, Metrics, Object, PoolError, RecycleError, RecycleResult};
use sea_orm::{
    ConnAcquireErr, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, ExecResult, QueryResult,
    RuntimeErr, Statement,
    sqlx::{
        self, ConnectOptions as _, Connection as _,
        postgres::{PgConnectOptions, PgConnection, PgRow},
    },
};
use sea_query_sqlx::SqlxValues;

use crate::config::Config;

/// A connection idle this long is pinged before it is used: it may have been dropped meanwhile (a
/// restart, a proxy's idle timeout). The same threshold as the sqlx pool's.
pub const PING_IF_IDLE_FOR: Duration = Duration::from_secs(10);
/// Connections are replaced at this age (sqlx's pool default), so no connection lives forever.
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

pub struct PgManager {
    options: PgConnectOptions,
}

impl managed::Manager for PgManager {
    type Type = PgConnection;
    type Error = sqlx::Error;

    async fn create(&self) -> Result<PgConnection, sqlx::Error> {
        PgConnection::connect_with(&self.options).await
    }

    async fn recycle(
        &self,
        connection: &mut PgConnection,
        metrics: &Metrics,
    ) -> RecycleResult<sqlx::Error> {
        if metrics.age() >= MAX_LIFETIME {
            return Err(RecycleError::message("past its lifetime"));
        }
        if metrics.last_used() >= PING_IF_IDLE_FOR {
            connection.ping().await.map_err(RecycleError::Backend)?;
        }
        Ok(())
    }
}

type PgPool = managed::Pool<PgManager>;

/// A `ConnectionTrait` for the services' reads: `query_*` on the direct pool (PostgreSQL), `execute_*`
/// and SQLite on the SeaORM pool. Cheap to clone.
#[derive(Clone)]
pub struct ReadConnection {
    db: DatabaseConnection,
    direct: Option<PgPool>,
    /// Shared with the SeaORM pool's metric callback: statements run on either pool.
    statements: Arc<AtomicU64>,
}

impl ReadConnection {
    /// Connections are opened on first use, at most `DATABASE_MAX_CONNECTIONS` of them.
    pub fn new(
        db: DatabaseConnection,
        config: &Config,
        statements: Arc<AtomicU64>,
    ) -> anyhow::Result<Self> {
        let direct = if db.get_database_backend() == DbBackend::Postgres {
            let options = PgConnectOptions::from_str(&config.database_url)
                .context("reading DATABASE_URL")?
                .options([(
                    "statement_timeout",
                    config.limits.statement_timeout.as_millis().to_string(),
                )])
                .disable_statement_logging();
            let pool = PgPool::builder(PgManager { options })
                .max_size(config.db_max_connections as usize)
                .runtime(deadpool::Runtime::Tokio1)
                // As the sqlx pool: fail fast when the database is gone, within the request timeout.
                .wait_timeout(Some(config.limits.statement_timeout))
                .create_timeout(Some(Duration::from_secs(10)))
                .recycle_timeout(Some(config.limits.statement_timeout))
                .build()
                .context("building the read pool")?;
            Some(pool)
        } else {
            None
        };
        Ok(ReadConnection {
            db,
            direct,
            statements,
        })
    }

    /// (open connections, idle connections) of the direct pool; `None` on SQLite.
    pub fn pool_status(&self) -> Option<(usize, usize)> {
        self.direct.as_ref().map(|pool| {
            let status = pool.status();
            (status.size, status.available)
        })
    }

    async fn fetch(&self, pool: &PgPool, stmt: Statement, one: bool) -> Result<Vec<PgRow>, DbErr> {
        self.statements.fetch_add(1, Ordering::Relaxed);
        let mut checkout = Checkout(Some(pool.get().await.map_err(acquire_error)?));
        let values = stmt
            .values
            .unwrap_or(sea_orm::sea_query::Values(Vec::new()));
        let query = sqlx::query_with(sqlx::AssertSqlSafe(stmt.sql), SqlxValues(values));
        let Some(connection) = checkout.0.as_deref_mut() else {
            return Err(DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed));
        };
        let result = if one {
            query
                .fetch_optional(connection)
                .await
                .map(|row| row.into_iter().collect())
        } else {
            query.fetch_all(connection).await
        };
        match result {
            Ok(rows) => {
                checkout.release();
                Ok(rows)
            }
            Err(error) => {
                if leaves_connection_usable(&error) {
                    checkout.release();
                }
                Err(DbErr::Query(RuntimeErr::SqlxError(Arc::new(error))))
            }
        }
    }
}

/// A checked-out connection that goes back to the pool only through `release`: dropped otherwise
/// (the statement's future was cancelled, or the connection failed), it is closed.
struct Checkout(Option<Object<PgManager>>);

impl Checkout {
    fn release(&mut self) {
        drop(self.0.take());
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        if let Some(object) = self.0.take() {
            drop(Object::take(object));
        }
    }
}

/// Errors PostgreSQL answered in protocol (a failed statement, a value that did not decode): the
/// connection is still in step. Anything else (I/O, TLS, protocol) closes it.
fn leaves_connection_usable(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Database(_)
            | sqlx::Error::RowNotFound
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::ColumnIndexOutOfBounds { .. }
            | sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Decode(_)
            | sqlx::Error::Encode(_)
            | sqlx::Error::TypeNotFound { .. }
    )
}

fn acquire_error(error: PoolError<sqlx::Error>) -> DbErr {
    match error {
        PoolError::Timeout(_) => DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
        PoolError::Backend(error) => DbErr::Conn(RuntimeErr::SqlxError(Arc::new(error))),
        PoolError::Closed | PoolError::NoRuntimeSpecified | PoolError::PostCreateHook(_) => {
            DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed)
        }
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for ReadConnection {
    fn get_database_backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.db.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.db.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        match &self.direct {
            Some(pool) => Ok(self
                .fetch(pool, stmt, true)
                .await?
                .into_iter()
                .next()
                .map(QueryResult::from)),
            None => self.db.query_one_raw(stmt).await,
        }
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        match &self.direct {
            Some(pool) => Ok(self
                .fetch(pool, stmt, false)
                .await?
                .into_iter()
                .map(QueryResult::from)
                .collect()),
            None => self.db.query_all_raw(stmt).await,
        }
    }
}
