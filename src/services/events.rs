//! Change events for subscriptions. Every instance must see every change: on PostgreSQL events travel
//! through LISTEN/NOTIFY (each instance, the publisher included, hears them from the database); on
//! SQLite, which has a single instance, an in-process broadcast carries them.

use std::time::Duration;

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection,
    DatabaseTransaction, Statement,
    sea_query::{Expr, Func},
};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::error::AppResult;

const CHANNEL: &str = "medgraph_events";
/// Events buffered per subscriber; a subscriber that falls further behind skips the oldest.
const BUFFER: usize = 1024;
/// How long the start waits for the first LISTEN (the connect timeout is 10 s; a start should not hang).
const LISTEN_READY_WAIT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    PatientCreated,
    PatientUpdated,
    PatientDeleted,
    MappingAssigned,
    MappingUnassigned,
}

/// A change to one user's data. Carries ids only: subscribers load what they show, with their own
/// permissions (and audit trail), so no patient data travels through the database's notify channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainEvent {
    pub kind: EventKind,
    /// The user whose data changed: only their subscriptions receive it.
    pub owner_id: Uuid,
    pub patient_id: Uuid,
    pub doctor_id: Option<Uuid>,
    pub mapping_id: Option<Uuid>,
}

#[derive(Clone)]
pub struct EventBus {
    local: broadcast::Sender<DomainEvent>,
    db: DatabaseConnection,
}

impl EventBus {
    /// Starts the bus; on PostgreSQL also the task that LISTENs and forwards to local subscribers, on a
    /// connection of its own (`listener`): a LISTEN holds its connection for good, and taken from the
    /// request pool it left one connection fewer for requests, none with `DATABASE_MAX_CONNECTIONS=1`.
    /// Returns once the LISTEN is in place (or after `LISTEN_READY_WAIT`), so the events of the first
    /// requests served are not missed.
    pub async fn start(db: &DatabaseConnection, listener: Option<ConnectOptions>) -> EventBus {
        let (local, _) = broadcast::channel(BUFFER);
        let bus = EventBus {
            local,
            db: db.clone(),
        };
        if let Some(options) = listener
            && db.get_database_backend() == DatabaseBackend::Postgres
        {
            let forward = bus.local.clone();
            let (listening, ready) = tokio::sync::oneshot::channel();
            tokio::spawn(async move { listen(options, forward, listening).await });
            if tokio::time::timeout(LISTEN_READY_WAIT, ready)
                .await
                .is_err()
            {
                tracing::warn!(
                    "the event listener is not listening yet; subscriptions may miss events"
                );
            }
        }
        bus
    }

    /// Sends `event` as part of the change's transaction: on PostgreSQL NOTIFY is delivered when, and only
    /// if, the transaction commits (and costs no connection checkout of its own). On SQLite nothing is
    /// sent until `committed`.
    pub async fn publish_in(
        &self,
        txn: &DatabaseTransaction,
        event: &DomainEvent,
    ) -> AppResult<()> {
        if txn.get_database_backend() == DatabaseBackend::Postgres {
            let payload = serde_json::to_string(event).map_err(anyhow::Error::from)?;
            txn.execute_raw(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                "SELECT pg_notify($1, $2)",
                [CHANNEL.into(), payload.into()],
            ))
            .await?;
        }
        Ok(())
    }

    /// The `pg_notify` call that sends `event`, for a statement that makes the change itself.
    pub fn notify_call(event: &DomainEvent) -> AppResult<Expr> {
        let payload = serde_json::to_string(event).map_err(anyhow::Error::from)?;
        Ok(Func::cust("pg_notify").arg(CHANNEL).arg(payload).into())
    }

    /// After the commit of a change `publish_in` was given: SQLite's in-process broadcast (on PostgreSQL
    /// the commit has notified every instance already).
    pub fn committed(&self, event: DomainEvent) {
        if self.db.get_database_backend() != DatabaseBackend::Postgres {
            let _ = self.local.send(event);
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<DomainEvent> {
        self.local.subscribe()
    }
}

/// Forwards NOTIFY payloads to local subscribers, reconnecting after the database goes away.
async fn listen(
    options: ConnectOptions,
    forward: broadcast::Sender<DomainEvent>,
    listening: tokio::sync::oneshot::Sender<()>,
) {
    let mut listening = Some(listening);
    // Kept for the whole loop: dropping the SeaORM handle would close its pool.
    let db = match Database::connect(options).await {
        Ok(db) => db,
        Err(e) => {
            tracing::error!(error = %e, "event listener: bad connection settings; no cross-instance events");
            return;
        }
    };
    let pool = db.get_postgres_connection_pool();
    while !pool.is_closed() {
        match sea_orm::sqlx::postgres::PgListener::connect_with(pool).await {
            Ok(mut listener) => match listener.listen(CHANNEL).await {
                Ok(()) => loop {
                    if let Some(listening) = listening.take() {
                        let _ = listening.send(());
                    }
                    match listener.recv().await {
                        Ok(notification) => {
                            match serde_json::from_str::<DomainEvent>(notification.payload()) {
                                Ok(event) => {
                                    let _ = forward.send(event);
                                }
                                Err(e) => tracing::warn!(error = %e, "ignoring a malformed event"),
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "event listener lost its connection; reconnecting");
                            break;
                        }
                    }
                },
                Err(e) => tracing::warn!(error = %e, "LISTEN failed; retrying"),
            },
            Err(e) => tracing::warn!(error = %e, "event listener cannot connect; retrying"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
