//! Change events for subscriptions. Every instance must see every change: on PostgreSQL events travel
//! through LISTEN/NOTIFY (each instance, the publisher included, hears them from the database); on
//! SQLite, which has a single instance, an in-process broadcast carries them.

use std::{sync::Arc, time::Duration};

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection,
    DatabaseTransaction, Statement,
    sea_query::{Expr, Func},
};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, broadcast, watch};
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
    /// PostgreSQL only: the LISTEN, held while this instance has subscriptions.
    listener: Option<Arc<Listener>>,
}

/// Every NOTIFY wakes each listening connection's PostgreSQL backend, which reads it from the queue
/// and sends it to its instance: a quarter of PostgreSQL's CPU in a createPatient load test with two
/// idle instances. So an instance listens only while it has subscriptions, and for `linger` after
/// the last one ends (a page reload or a reconnecting client should not pay a reconnect).
struct Listener {
    options: ConnectOptions,
    linger: Duration,
    /// Held while a subscription is added, and while the supervisor decides to stop listening, so a
    /// new subscription either counts or finds the LISTEN gone and asks for it again.
    decision: std::sync::Mutex<()>,
    listening: watch::Sender<bool>,
    wanted: Notify,
}

impl EventBus {
    /// Starts the bus; on PostgreSQL also the task that LISTENs and forwards to local subscribers, on a
    /// connection of its own (`listener`): a LISTEN holds its connection, and taken from the request
    /// pool it left one connection fewer for requests, none with `DATABASE_MAX_CONNECTIONS=1`. Returns
    /// once the LISTEN is in place (or after `LISTEN_READY_WAIT`), so clients that subscribe right
    /// after the start miss nothing; with no subscription it ends after `linger`.
    pub async fn start(
        db: &DatabaseConnection,
        listener: Option<ConnectOptions>,
        linger: Duration,
    ) -> EventBus {
        let (local, _) = broadcast::channel(BUFFER);
        let listener = listener
            .filter(|_| db.get_database_backend() == DatabaseBackend::Postgres)
            .map(|options| {
                Arc::new(Listener {
                    options,
                    linger,
                    decision: std::sync::Mutex::new(()),
                    listening: watch::channel(false).0,
                    wanted: Notify::new(),
                })
            });
        let bus = EventBus {
            local,
            db: db.clone(),
            listener,
        };
        if let Some(listener) = &bus.listener {
            tokio::spawn(supervise(listener.clone(), bus.local.clone()));
            listener.ready().await;
        }
        bus
    }

    /// A new subscriber. On PostgreSQL, returns once this instance is LISTENing again if it had
    /// stopped (or after `LISTEN_READY_WAIT`).
    pub async fn subscribe(&self) -> broadcast::Receiver<DomainEvent> {
        let Some(listener) = &self.listener else {
            return self.local.subscribe();
        };
        let receiver = {
            let _decision = listener.lock();
            self.local.subscribe()
        };
        listener.wanted.notify_one();
        listener.ready().await;
        receiver
    }

    /// Subscriptions open on this instance.
    pub fn subscriber_count(&self) -> usize {
        self.local.receiver_count()
    }

    /// Whether this instance holds a LISTEN now (always false on SQLite).
    pub fn is_listening(&self) -> bool {
        self.listener
            .as_ref()
            .is_some_and(|listener| *listener.listening.borrow())
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
}

impl Listener {
    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.decision
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn ready(&self) {
        let mut listening = self.listening.subscribe();
        if tokio::time::timeout(LISTEN_READY_WAIT, listening.wait_for(|on| *on))
            .await
            .is_err()
        {
            tracing::warn!(
                "the event listener is not listening yet; subscriptions may miss events"
            );
        }
    }
}

/// Listens while there are subscribers (and for `linger` after the last), then waits to be wanted.
async fn supervise(listener: Arc<Listener>, forward: broadcast::Sender<DomainEvent>) {
    let check_every =
        (listener.linger / 4).clamp(Duration::from_millis(20), Duration::from_secs(5));
    loop {
        let task = tokio::spawn(listen(
            listener.options.clone(),
            forward.clone(),
            listener.listening.clone(),
        ));
        let mut idle_since: Option<tokio::time::Instant> = None;
        loop {
            tokio::time::sleep(check_every).await;
            let _decision = listener.lock();
            if forward.receiver_count() > 0 {
                idle_since = None;
                continue;
            }
            let since = *idle_since.get_or_insert_with(tokio::time::Instant::now);
            if since.elapsed() >= listener.linger {
                // Aborting drops the listener and closes its connection, whatever it was doing.
                task.abort();
                listener.listening.send_replace(false);
                break;
            }
        }
        tracing::debug!("no subscriptions; the event listener stopped");
        while forward.receiver_count() == 0 {
            listener.wanted.notified().await;
        }
    }
}

/// Forwards NOTIFY payloads to local subscribers, reconnecting after the database goes away.
async fn listen(
    options: ConnectOptions,
    forward: broadcast::Sender<DomainEvent>,
    listening: watch::Sender<bool>,
) {
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
                Ok(()) => {
                    listening.send_replace(true);
                    loop {
                        match listener.recv().await {
                            Ok(notification) => {
                                match serde_json::from_str::<DomainEvent>(notification.payload()) {
                                    Ok(event) => {
                                        let _ = forward.send(event);
                                    }
                                    Err(e) => {
                                        tracing::warn!(error = %e, "ignoring a malformed event")
                                    }
                                }
                            }
                            Err(e) => {
                                listening.send_replace(false);
                                tracing::warn!(error = %e, "event listener lost its connection; reconnecting");
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "LISTEN failed; retrying"),
            },
            Err(e) => tracing::warn!(error = %e, "event listener cannot connect; retrying"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
