//! Change events for subscriptions. Every instance must see every change: on PostgreSQL events travel
//! through LISTEN/NOTIFY (each instance, the publisher included, hears them from the database); on
//! SQLite, which has a single instance, an in-process broadcast carries them.

use std::{sync::Arc, time::Duration};

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, Statement,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, broadcast, mpsc, watch};
use uuid::Uuid;

const CHANNEL: &str = "medgraph_events";
/// Events buffered per subscriber; a subscriber that falls further behind skips the oldest.
const BUFFER: usize = 1024;
/// Events waiting for the notifier; beyond, new ones are dropped (with a warning) rather than hold up
/// the changes that made them.
const NOTIFY_QUEUE: usize = 4096;
/// Events per NOTIFY statement: about 200 bytes each, so a statement stays within one TLS record (see
/// the audit writer's `MAX_STATEMENT_BYTES`).
const NOTIFY_BATCH: usize = 48;
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
    /// PostgreSQL only: committed changes' events, for the task that NOTIFYs them.
    notifier: Option<mpsc::Sender<DomainEvent>>,
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
    /// Starts the bus; on PostgreSQL also the notifier (`committed`, on a connection of its own) and the
    /// task that LISTENs and forwards to local subscribers, on a connection of its own (`listener`): a LISTEN holds its connection, and taken from the request
    /// pool it left one connection fewer for requests, none with `DATABASE_MAX_CONNECTIONS=1`. Returns
    /// once the LISTEN is in place (or after `LISTEN_READY_WAIT`), so clients that subscribe right
    /// after the start miss nothing; with no subscription it ends after `linger`.
    pub async fn start(
        db: &DatabaseConnection,
        listener: Option<ConnectOptions>,
        notifier: Option<ConnectOptions>,
        linger: Duration,
    ) -> EventBus {
        let (local, _) = broadcast::channel(BUFFER);
        let postgres = db.get_database_backend() == DatabaseBackend::Postgres;
        let notifier = notifier.filter(|_| postgres).map(|options| {
            let (queue, pending) = mpsc::channel(NOTIFY_QUEUE);
            tokio::spawn(notify(options, pending));
            queue
        });
        let listener = listener.filter(|_| postgres).map(|options| {
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
            notifier,
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

    /// After the commit of a change: on PostgreSQL the event goes to the notifier, which NOTIFYs every
    /// instance (this one included) from a transaction of its own; on SQLite to the in-process
    /// broadcast. Not NOTIFYed inside the change's transaction: PostgreSQL serializes the commits of
    /// transactions that NOTIFY, WAL flush included (to keep the queue in commit order), which capped
    /// audited creates at ~3,700/s on the development machine against ~6,500/s with the NOTIFY
    /// after. The price: an event is lost if the process dies between a commit and its NOTIFY.
    pub fn committed(&self, event: DomainEvent) {
        match &self.notifier {
            Some(queue) => {
                if let Err(error) = queue.try_send(event) {
                    tracing::warn!(error = %error, "the event notifier is behind; an event was dropped");
                }
            }
            None if self.db.get_database_backend() == DatabaseBackend::Postgres => {}
            None => {
                let _ = self.local.send(event);
            }
        }
    }
}

/// One NOTIFY's payload: the event, and a number that keeps two identical events of one batch apart
/// (PostgreSQL delivers identical notifications of one transaction once).
#[derive(Serialize, Deserialize)]
struct Notice {
    #[serde(flatten)]
    event: DomainEvent,
    #[serde(default)]
    seq: u64,
}

/// The NOTIFY payloads of a batch, numbered on from `seq`.
fn notices(events: impl Iterator<Item = DomainEvent>, seq: &mut u64) -> Vec<String> {
    events
        .filter_map(|event| {
            *seq += 1;
            serde_json::to_string(&Notice { event, seq: *seq }).ok()
        })
        .collect()
}

/// Sends queued events with one statement per batch, in order, on a connection of its own.
async fn notify(options: ConnectOptions, mut pending: mpsc::Receiver<DomainEvent>) {
    let db = match Database::connect(options).await {
        Ok(db) => db,
        Err(e) => {
            tracing::error!(error = %e, "event notifier: bad connection settings; no events");
            return;
        }
    };
    let mut seq = 0_u64;
    let mut batch = Vec::with_capacity(NOTIFY_BATCH);
    while pending.recv_many(&mut batch, NOTIFY_BATCH).await > 0 {
        let Ok(payloads) = serde_json::to_string(&notices(batch.drain(..), &mut seq)) else {
            continue;
        };
        let sent = db
            .execute_raw(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                "SELECT pg_notify($1, value) FROM json_array_elements_text($2::json)",
                [CHANNEL.into(), payloads.into()],
            ))
            .await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, "event notifier: events not sent");
            tokio::time::sleep(Duration::from_millis(100)).await;
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
                                match serde_json::from_str::<Notice>(notification.payload()) {
                                    Ok(notice) => {
                                        let _ = forward.send(notice.event);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_events_of_one_batch_get_distinct_payloads_that_read_back() {
        let event = DomainEvent {
            kind: EventKind::PatientUpdated,
            owner_id: Uuid::now_v7(),
            patient_id: Uuid::now_v7(),
            doctor_id: None,
            mapping_id: None,
        };
        let mut seq = 0;
        let payloads = notices(std::iter::repeat_n(event.clone(), 3), &mut seq);
        assert_eq!(payloads.len(), 3);
        assert!(payloads[0] != payloads[1] && payloads[1] != payloads[2]);
        for payload in &payloads {
            let notice: Notice = serde_json::from_str(payload).expect("a notice");
            assert_eq!(notice.event, event);
        }
        // A payload without the number (an older instance's) still reads.
        let plain = serde_json::to_string(&event).expect("json");
        let notice: Notice = serde_json::from_str(&plain).expect("a plain event");
        assert_eq!(notice.event, event);
    }
}
