//! Reads of one record by id from concurrent requests, sent to PostgreSQL together (PostgreSQL only).
//!
//! A point read costs PostgreSQL and both ends' network stacks about the same whether it fetches one
//! row or thirty: the price is the statement's round trip (a message each way, a wake-up of the backend,
//! TLS), not the index lookup. So `get` queues the id, and a batcher sends what has queued as one
//! `WHERE id = ANY(CAST($1 AS uuid[]))` statement: one prepared statement for any count, and for a
//! lookup by primary key cheaper in PostgreSQL than `services::id_in`'s `IN (SELECT unnest(…))`, whose
//! generic plan suits the loaders' joins. Nothing waits on a timer: with no statement in flight a
//! lookup goes out at once, alone; only while `IN_FLIGHT` statements are out do lookups gather, and
//! then as many as arrived in the meantime go in the next one. Under load that makes batches of
//! several ids per statement; an idle server answers exactly as before.
//!
//! The rows come back to each caller by id; whether the caller may see a row is the service's decision
//! (e.g. `patients::get_coalesced` checks the owner), as for any other read.

use std::{collections::HashMap, sync::Arc};

use sea_orm::{
    DbErr, EntityTrait, QueryFilter,
    sea_query::{Expr, ExprTrait, extension::postgres::PgFunc},
};
use tokio::sync::{Semaphore, mpsc, oneshot};
use uuid::Uuid;

use crate::{reads::ReadConnection, services::uuid_array_literal};

/// Most ids in one statement (its text parameter stays under 3 KiB).
const MAX_BATCH: usize = 64;
/// Statements of one kind out at once. More would batch less; fewer would leave the second core idle
/// while one statement is out.
const IN_FLIGHT: usize = 2;
/// Items queued before the sender waits for room (a burst far above what the pool can answer).
const QUEUE: usize = 4096;

type Answer<M> = Result<Option<M>, DbErr>;
type Lookup<M> = (Uuid, oneshot::Sender<Answer<M>>);

/// The coalesced point reads of one entity (`start` them once, clone freely).
pub struct ByIdReads<E: EntityTrait> {
    queue: mpsc::Sender<Lookup<E::Model>>,
}

impl<E: EntityTrait> Clone for ByIdReads<E> {
    fn clone(&self) -> Self {
        ByIdReads {
            queue: self.queue.clone(),
        }
    }
}

impl<E> ByIdReads<E>
where
    E: EntityTrait,
    E::Model: Clone + Send + Sync + 'static,
{
    /// Starts the batcher (a task on the current runtime) for `E`, whose primary key column is `id`
    /// and `id_of` reads.
    pub fn start(reads: ReadConnection, id: E::Column, id_of: fn(&E::Model) -> Uuid) -> Self {
        let queue = start_batcher(MAX_BATCH, IN_FLIGHT, move |lookups| {
            let reads = reads.clone();
            async move { answer::<E>(&reads, id, id_of, lookups).await }
        });
        ByIdReads { queue }
    }

    /// The record with this id, as stored now (read after the call began, so it sees every change
    /// committed before it).
    pub async fn get(&self, id: Uuid) -> Answer<E::Model> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((id, reply))
            .await
            .map_err(|_| DbErr::Custom("the point-read batcher has stopped".into()))?;
        answer
            .await
            .map_err(|_| DbErr::Custom("the point-read statement was abandoned".into()))?
    }
}

/// Starts a task that hands what is queued to `run` in batches of at most `max_batch`, with at most
/// `in_flight` runs at a time; the task ends when every sender is gone. The batch is whatever has
/// queued when a run may start: nothing waits on a timer.
pub(crate) fn start_batcher<T, F, Fut>(
    max_batch: usize,
    in_flight: usize,
    run: F,
) -> mpsc::Sender<T>
where
    T: Send + 'static,
    F: Fn(Vec<T>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (queue, mut items) = mpsc::channel(QUEUE);
    tokio::spawn(async move {
        let in_flight = Arc::new(Semaphore::new(in_flight));
        let mut batch = Vec::with_capacity(max_batch);
        while items.recv_many(&mut batch, max_batch).await > 0 {
            let Ok(permit) = in_flight.clone().acquire_owned().await else {
                return;
            };
            // What arrived while the runs in flight were out joins this one.
            while batch.len() < max_batch {
                match items.try_recv() {
                    Ok(item) => batch.push(item),
                    Err(_) => break,
                }
            }
            let taken = std::mem::replace(&mut batch, Vec::with_capacity(max_batch));
            let running = run(taken);
            tokio::spawn(async move {
                running.await;
                drop(permit);
            });
        }
    });
    queue
}

/// Runs one statement for `lookups` and gives every caller its row (or nothing), or the error.
async fn answer<E>(
    reads: &ReadConnection,
    id: E::Column,
    id_of: fn(&E::Model) -> Uuid,
    lookups: Vec<Lookup<E::Model>>,
) where
    E: EntityTrait,
    E::Model: Clone,
{
    let mut ids: Vec<Uuid> = lookups.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    let result = E::find()
        .filter(Expr::col(id).eq(PgFunc::any(
            Expr::val(uuid_array_literal(&ids)).cast_as("uuid[]"),
        )))
        .all(reads)
        .await;
    match result {
        Ok(rows) => {
            let by_id: HashMap<Uuid, E::Model> =
                rows.into_iter().map(|row| (id_of(&row), row)).collect();
            for (id, reply) in lookups {
                // A caller that gave up (its request was cancelled) no longer listens.
                let _ = reply.send(Ok(by_id.get(&id).cloned()));
            }
        }
        Err(e) => {
            let message = e.to_string();
            for (_, reply) in lookups {
                let _ = reply.send(Err(DbErr::Custom(message.clone())));
            }
        }
    }
}
