//! The audit trail (HIPAA 45 CFR 164.312(b)): who did what to which record, when, from where.
//!
//! Changes are recorded in the same transaction as the change (`in_transaction`), so there is never a
//! change without its row nor a row for a rolled-back change. Reads of patient data are frequent, so
//! they go through a buffer (`AuditSink`) that a background task writes in batches; `flush` (called at
//! graceful shutdown) waits until everything buffered is stored.

use std::{net::IpAddr, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection,
    DatabaseTransaction, DbBackend, DbErr, EntityTrait, QueryFilter, QueryTrait, Set, Statement,
    TransactionTrait,
    sea_query::{Asterisk, CommonTableExpression, Expr, Query, SubQueryStatement, WithClause},
};
use tokio::sync::{Notify, mpsc, oneshot};
use uuid::Uuid;

use crate::{
    auth::Actor,
    domain::PatientId,
    entities::audit_event,
    error::{AppError, AppResult},
    services::{
        now,
        pagination::{Keyset, Page, PageRequest, SortKey, fetch_page},
        patients,
    },
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Create,
    Read,
    Update,
    Delete,
    Login,
    LoginFailed,
    Logout,
    TokenRefresh,
    TokenReuse,
}

impl Action {
    pub const ALL: [Action; 9] = [
        Action::Create,
        Action::Read,
        Action::Update,
        Action::Delete,
        Action::Login,
        Action::LoginFailed,
        Action::Logout,
        Action::TokenRefresh,
        Action::TokenReuse,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "CREATE",
            Action::Read => "READ",
            Action::Update => "UPDATE",
            Action::Delete => "DELETE",
            Action::Login => "LOGIN",
            Action::LoginFailed => "LOGIN_FAILED",
            Action::Logout => "LOGOUT",
            Action::TokenRefresh => "TOKEN_REFRESH",
            Action::TokenReuse => "TOKEN_REUSE",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntityKind {
    Patient,
    Doctor,
    Mapping,
    User,
}

impl EntityKind {
    pub const ALL: [EntityKind; 4] = [
        EntityKind::Patient,
        EntityKind::Doctor,
        EntityKind::Mapping,
        EntityKind::User,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Patient => "PATIENT",
            EntityKind::Doctor => "DOCTOR",
            EntityKind::Mapping => "MAPPING",
            EntityKind::User => "USER",
        }
    }

    pub fn parse(s: &str) -> Option<EntityKind> {
        EntityKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "SUCCESS",
            Outcome::Failure => "FAILURE",
        }
    }
}

/// Where a request came from, stamped on each of its audit rows.
#[derive(Clone, Debug, Default)]
pub struct AuditMeta {
    pub user_id: Option<Uuid>,
    pub client_ip: Option<IpAddr>,
    pub request_id: Option<String>,
    /// Set while a response may be kept by the response cache: the records each READ row named, so
    /// a later answer from the cache writes the same rows.
    pub read_capture: Option<ReadCapture>,
}

pub type ReadCapture = Arc<std::sync::Mutex<Vec<(EntityKind, Uuid)>>>;

impl AuditMeta {
    pub fn row(
        &self,
        action: Action,
        entity: Option<(EntityKind, Uuid)>,
        outcome: Outcome,
    ) -> audit_event::ActiveModel {
        audit_event::ActiveModel {
            id: Set(Uuid::now_v7()),
            occurred_at: Set(now()),
            user_id: Set(self.user_id),
            action: Set(action.as_str().to_owned()),
            entity_type: Set(entity.map(|(kind, _)| kind.as_str().to_owned())),
            entity_id: Set(entity.map(|(_, id)| id)),
            outcome: Set(outcome.as_str().to_owned()),
            client_ip: Set(self.client_ip.map(|ip| ip.to_string())),
            request_id: Set(self.request_id.clone()),
        }
    }

    pub fn for_user(&self, user_id: Uuid) -> AuditMeta {
        AuditMeta {
            user_id: Some(user_id),
            ..self.clone()
        }
    }
}

/// Writes one audit row now (in the caller's transaction, if it is one).
pub async fn record(
    db: &impl ConnectionTrait,
    meta: &AuditMeta,
    action: Action,
    entity: Option<(EntityKind, Uuid)>,
    outcome: Outcome,
) -> AppResult<()> {
    meta.row(action, entity, outcome).insert(db).await?;
    Ok(())
}

/// Runs a change and its audit row in one transaction. A refused change (not found, forbidden, invalid)
/// is rolled back and recorded as a FAILURE afterwards, when the target id is known.
pub async fn in_transaction<T>(
    db: &DatabaseConnection,
    meta: &AuditMeta,
    action: Action,
    kind: EntityKind,
    target: Option<Uuid>,
    change: impl AsyncFnOnce(&DatabaseTransaction) -> AppResult<T>,
    id_of: impl Fn(&T) -> Uuid,
) -> AppResult<T> {
    let txn = crate::services::begin_write(db).await?;
    match change(&txn).await {
        Ok(value) => {
            record(
                &txn,
                meta,
                action,
                Some((kind, id_of(&value))),
                Outcome::Success,
            )
            .await?;
            txn.commit().await?;
            Ok(value)
        }
        Err(err) => {
            txn.rollback().await?;
            record_refusal(db, meta, action, kind, target, &err).await?;
            Err(err)
        }
    }
}

/// A PostgreSQL statement that changes at most one row and returns it (`RETURNING *`), run together
/// with the audit row of that change as one statement (a data-modifying CTE). `in_transaction` takes
/// four or more round trips for the same (BEGIN, the checks, the change, the audit row, COMMIT) plus the
/// sqlx pool's release ping; this takes one, and is as atomic: a statement commits whole or not at
/// all. sqlx reads the answer up to ReadyForQuery, which PostgreSQL sends after the commit, so a read
/// that follows sees the change. `None` when the statement changed nothing (and so wrote no row).
pub async fn audited_statement<E: EntityTrait>(
    db: &impl ConnectionTrait,
    meta: &AuditMeta,
    action: Action,
    kind: EntityKind,
    change: impl Into<SubQueryStatement>,
) -> Result<Option<E::Model>, DbErr> {
    const CHANGED: &str = "changed";
    use audit_event::Column as C;
    let stamped = Query::select()
        .expr(Expr::val(Uuid::now_v7()))
        .expr(Expr::val(now()))
        .expr(Expr::val(meta.user_id))
        .expr(Expr::val(action.as_str()))
        .expr(Expr::val(kind.as_str()))
        .column((CHANGED, "id"))
        .expr(Expr::val(Outcome::Success.as_str()))
        .expr(Expr::val(meta.client_ip.map(|ip| ip.to_string())))
        .expr(Expr::val(meta.request_id.clone()))
        .from(CHANGED)
        .to_owned();
    let audit_row = Query::insert()
        .into_table(audit_event::Entity)
        .columns([
            C::Id,
            C::OccurredAt,
            C::UserId,
            C::Action,
            C::EntityType,
            C::EntityId,
            C::Outcome,
            C::ClientIp,
            C::RequestId,
        ])
        .select_from(stamped)
        .map_err(|e| DbErr::Custom(e.to_string()))?
        .to_owned();
    let mut with = WithClause::new();
    with.cte(
        CommonTableExpression::new()
            .query(change)
            .table_name(CHANGED)
            .to_owned(),
    )
    .cte(
        CommonTableExpression::new()
            .query(audit_row)
            .table_name("audited")
            .to_owned(),
    );
    let mut answer = Query::select();
    answer.column((CHANGED, Asterisk)).from(CHANGED);
    let statement = db.get_database_backend().build(&answer.with(with));
    E::find().from_raw_sql(statement).one(db).await
}

/// Inserts a record and its CREATE audit row as one PostgreSQL statement (`audited_statement`).
pub async fn insert_in_one_statement<A: ActiveModelTrait>(
    db: &impl ConnectionTrait,
    meta: &AuditMeta,
    kind: EntityKind,
    record: A,
) -> Result<Option<<A::Entity as EntityTrait>::Model>, DbErr> {
    let mut insert = A::Entity::insert(record).into_query();
    insert.returning_all();
    audited_statement::<A::Entity>(db, meta, Action::Create, kind, insert).await
}

/// A refused change (not found, forbidden, conflicting) of a known record leaves a FAILURE row.
pub async fn record_refusal(
    db: &impl ConnectionTrait,
    meta: &AuditMeta,
    action: Action,
    kind: EntityKind,
    target: Option<Uuid>,
    error: &AppError,
) -> AppResult<()> {
    if matches!(
        error,
        AppError::NotFound(_) | AppError::Forbidden(_) | AppError::Conflict(_)
    ) && let Some(id) = target
    {
        record(db, meta, action, Some((kind, id)), Outcome::Failure).await?;
    }
    Ok(())
}

/// The READ events of one response: every record returned gets its own row, stamped alike.
struct Reads {
    occurred_at: DateTime<Utc>,
    user_id: Option<Uuid>,
    kind: EntityKind,
    client_ip: Option<String>,
    request_id: Option<String>,
    /// (row id, id of the record read)
    rows: Vec<(Uuid, Uuid)>,
}

impl Reads {
    /// The same events in parts of at most `max_rows` rows.
    fn split(mut self, max_rows: usize) -> Vec<Reads> {
        let mut parts = Vec::new();
        while self.rows.len() > max_rows {
            let rest = self.rows.split_off(max_rows);
            let rows = std::mem::replace(&mut self.rows, rest);
            parts.push(Reads {
                rows,
                client_ip: self.client_ip.clone(),
                request_id: self.request_id.clone(),
                ..self
            });
        }
        parts.push(self);
        parts
    }

    fn models(&self) -> impl Iterator<Item = audit_event::ActiveModel> + '_ {
        self.rows
            .iter()
            .map(|&(id, entity_id)| audit_event::ActiveModel {
                id: Set(id),
                occurred_at: Set(self.occurred_at),
                user_id: Set(self.user_id),
                action: Set(Action::Read.as_str().to_owned()),
                entity_type: Set(Some(self.kind.as_str().to_owned())),
                entity_id: Set(Some(entity_id)),
                outcome: Set(Outcome::Success.as_str().to_owned()),
                client_ip: Set(self.client_ip.clone()),
                request_id: Set(self.request_id.clone()),
            })
    }

    fn json(&self) -> serde_json::Value {
        rows_json(
            self.occurred_at,
            self.user_id,
            Action::Read,
            self.kind,
            self.client_ip.as_deref(),
            self.request_id.as_deref(),
            &self.rows,
        )
    }

    /// An upper bound of the length of `json()`: the fields (a request id has at most 64 characters)
    /// plus two quoted UUIDs and their commas a row.
    fn json_len_bound(&self) -> usize {
        400 + 78 * self.rows.len()
    }
}

/// Successful audit rows of one request as one element of `INSERT_FROM_JSON`'s parameter: `rows` are
/// (row id, id of the record) pairs.
fn rows_json(
    occurred_at: DateTime<Utc>,
    user_id: Option<Uuid>,
    action: Action,
    kind: EntityKind,
    client_ip: Option<&str>,
    request_id: Option<&str>,
    rows: &[(Uuid, Uuid)],
) -> serde_json::Value {
    let (ids, entities): (Vec<Uuid>, Vec<Uuid>) = rows.iter().copied().unzip();
    serde_json::json!({
        "occurred_at": occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "user_id": user_id,
        "action": action.as_str(),
        "entity_type": kind.as_str(),
        "outcome": Outcome::Success.as_str(),
        "client_ip": client_ip,
        "request_id": request_id,
        "ids": ids,
        "entities": entities,
    })
}

impl AuditMeta {
    /// The SUCCESS row of this request's `action` on one record, as an element of `INSERT_FROM_JSON`'s
    /// parameter.
    pub(crate) fn row_json(&self, action: Action, kind: EntityKind, id: Uuid) -> serde_json::Value {
        rows_json(
            now(),
            self.user_id,
            action,
            kind,
            self.client_ip.map(|ip| ip.to_string()).as_deref(),
            self.request_id.as_deref(),
            &[(Uuid::now_v7(), id)],
        )
    }
}

enum Command {
    Record(Reads),
    Flush(oneshot::Sender<()>),
}

/// Buffered, batched writer of read events. Cloning shares the buffer.
#[derive(Clone)]
pub struct AuditSink {
    tx: mpsc::Sender<Command>,
    /// Wakes the writer before its next tick: a flush, or `WAKE_AT` responses waiting.
    wake: Arc<Notify>,
}

/// Responses queued before the writer is woken without waiting for `FLUSH_EVERY`. Not woken for each
/// one: at thousands of reads a second that was a thread wake-up per request.
const WAKE_AT: usize = 64;
/// Rows of one SQLite statement batch (one transaction).
const BATCH: usize = 500;
/// Responses the queue holds; readers wait for the writer beyond.
const QUEUE: usize = 1024;
/// Longest a buffered read waits before it is written.
const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// Rows taken from the queue before they are written. Taking the whole queue at once (up to 1,024
/// responses, 20,000 rows of lists) left the readers it had let through waiting on a full queue for the
/// whole backlog's write: (a) had a p50 of 5 ms and a p99 of 605 ms. A round at a time gives them room
/// as each round is stored.
const ROUND_ROWS: usize = 1_000;
/// PostgreSQL statements the writer has out at once, each on a connection of its own pool: one at a
/// time, each statement's commit (a WAL flush) and round trip left the writer idle, and at 28,000 READ
/// rows a second it fell behind with both cores partly idle. Concurrent commits share WAL flushes.
/// SQLite has one writer, so it gets one statement at a time.
pub(crate) const WRITES_IN_FLIGHT: usize = 3;
/// Largest statement the writer sends PostgreSQL. sqlx 0.9 leaves Nagle's algorithm on (sqlx issue
/// #4335) and writes a long message as several TLS records: each part after the first then waited for
/// PostgreSQL's delayed ACK, about 40 ms, which capped the writer (and the readers waiting on it) at
/// about 12,000 rows a second. One record holds 16 KiB.
pub(crate) const MAX_STATEMENT_BYTES: usize = 12 * 1024;
/// Rows of one response stored by one PostgreSQL statement (so its JSON fits `MAX_STATEMENT_BYTES`).
const MAX_ROWS_PER_PART: usize = 100;

impl AuditSink {
    /// Starts the writer on a thread of its own, so request tasks cannot starve it: the readers wait
    /// for it when its buffer is full, so its pace is theirs. It writes through `own` (a pool of its
    /// own, connected lazily on its thread) when given, otherwise through `db`.
    /// An error when the thread cannot be started (the server then refuses to start: reads it served
    /// would otherwise go unrecorded).
    pub fn start(
        db: DatabaseConnection,
        own: Option<ConnectOptions>,
    ) -> std::io::Result<AuditSink> {
        // Bounded: under sustained overload, readers wait for the writer rather than events being dropped.
        let (tx, rx) = mpsc::channel::<Command>(QUEUE);
        let wake = Arc::new(Notify::new());
        let writer_wake = wake.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("medgraph-audit".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let db = match own {
                        Some(options) => match Database::connect(options).await {
                            Ok(own) => own,
                            Err(e) => {
                                tracing::warn!(error = %e, "audit writer uses the request pool");
                                db
                            }
                        },
                        None => db,
                    };
                    run_writer(db, rx, &writer_wake).await;
                });
            })?;
        Ok(AuditSink { tx, wake })
    }

    /// Buffers READ events of records returned to a caller.
    pub async fn reads(
        &self,
        meta: &AuditMeta,
        kind: EntityKind,
        ids: impl IntoIterator<Item = Uuid>,
    ) {
        let rows: Vec<_> = ids.into_iter().map(|id| (Uuid::now_v7(), id)).collect();
        if rows.is_empty() {
            return;
        }
        if let Some(capture) = &meta.read_capture
            && let Ok(mut captured) = capture.lock()
        {
            captured.extend(rows.iter().map(|(_, id)| (kind, *id)));
        }
        let reads = Reads {
            occurred_at: now(),
            user_id: meta.user_id,
            kind,
            client_ip: meta.client_ip.map(|ip| ip.to_string()),
            request_id: meta.request_id.clone(),
            rows,
        };
        if self.tx.send(Command::Record(reads)).await.is_err() {
            tracing::error!("audit writer stopped; read events lost");
        }
        if QUEUE - self.tx.capacity() >= WAKE_AT {
            self.wake.notify_one();
        }
    }

    /// Waits until every event buffered so far is stored.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Command::Flush(done)).await.is_ok() {
            self.wake.notify_one();
            let _ = wait.await;
        }
    }
}

/// Stores what has arrived every `FLUSH_EVERY`, or when woken (`WAKE_AT` responses, a flush), a round
/// of `ROUND_ROWS` at a time, until every sender is gone.
async fn run_writer(db: DatabaseConnection, mut rx: mpsc::Receiver<Command>, wake: &Notify) {
    let in_flight = if db.get_database_backend() == DbBackend::Postgres {
        WRITES_IN_FLIGHT
    } else {
        1
    };
    let mut pending: Vec<Reads> = Vec::new();
    let mut pending_rows = 0;
    let mut ticker = tokio::time::interval(FLUSH_EVERY);
    let mut closed = false;
    while !closed {
        tokio::select! {
            _ = ticker.tick() => {}
            () = wake.notified() => {}
        }
        let mut drained = false;
        while !drained {
            while pending_rows < ROUND_ROWS {
                match rx.try_recv() {
                    Ok(Command::Record(reads)) => {
                        pending_rows += reads.rows.len();
                        pending.push(reads);
                    }
                    Ok(Command::Flush(done)) => {
                        write(&db, &mut pending, &mut pending_rows, in_flight).await;
                        let _ = done.send(());
                    }
                    Err(mpsc::error::TryRecvError::Empty) => {
                        drained = true;
                        break;
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        closed = true;
                        drained = true;
                        break;
                    }
                }
            }
            write(&db, &mut pending, &mut pending_rows, in_flight).await;
        }
    }
}

/// Longest pause between two attempts while the database is unreachable.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(2);

/// Stores `pending`, up to `in_flight` statements at once, and returns when every row is stored (or
/// refused by the database).
async fn write(
    db: &DatabaseConnection,
    pending: &mut Vec<Reads>,
    pending_rows: &mut usize,
    in_flight: usize,
) {
    *pending_rows = 0;
    let mut batches = statements(db.get_database_backend(), std::mem::take(pending)).into_iter();
    let mut writing = tokio::task::JoinSet::new();
    loop {
        while writing.len() < in_flight
            && let Some(batch) = batches.next()
        {
            writing.spawn(write_batch(db.clone(), batch));
        }
        match writing.join_next().await {
            None => break,
            Some(Ok(())) => {}
            Some(Err(e)) => tracing::error!(error = %e, "an audit write failed; its rows are lost"),
        }
    }
}

/// Stores one statement's rows, waiting for the database as long as it takes.
async fn write_batch(db: DatabaseConnection, batch: Vec<Reads>) {
    let db = &db;
    let count: usize = batch.iter().map(|reads| reads.rows.len()).sum();
    let mut attempt: u32 = 0;
    loop {
        let Err(e) = insert(db, &batch).await else {
            break;
        };
        attempt += 1;
        // Unless the database refused these rows, they wait however long it takes: the reads were
        // served, so their audit rows must not be lost. Meanwhile the bounded channel fills and new
        // reads wait for the writer (their requests time out) instead of piling up in memory.
        if !is_about_the_rows(&e) {
            if attempt == 1 || attempt.is_multiple_of(30) {
                tracing::warn!(error = %e, count, attempt, "audit rows wait for the database");
            }
            tokio::time::sleep(
                MAX_RETRY_PAUSE.min(Duration::from_millis(100 * u64::from(attempt))),
            )
            .await;
            continue;
        }
        if attempt < 3 {
            tracing::warn!(error = %e, attempt, "audit write refused; retrying");
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            continue;
        }
        // Write the rows one at a time, so one row the database refuses cannot take the rest of
        // the batch with it.
        for reads in batch {
            for single in reads.split(1) {
                if let Err(e) = insert(db, std::slice::from_ref(&single)).await {
                    tracing::error!(error = %e, "an audit row could not be written");
                }
            }
        }
        break;
    }
}

/// Groups buffered reads into the statements that store them: on PostgreSQL as many as fit
/// `MAX_STATEMENT_BYTES`, on SQLite up to `BATCH` rows (one transaction each).
fn statements(backend: DbBackend, pending: Vec<Reads>) -> Vec<Vec<Reads>> {
    let postgres = backend == DbBackend::Postgres;
    let (limit, max_rows) = if postgres {
        (MAX_STATEMENT_BYTES, MAX_ROWS_PER_PART)
    } else {
        (BATCH, usize::MAX)
    };
    let size_of = |part: &Reads| {
        if postgres {
            part.json_len_bound()
        } else {
            part.rows.len()
        }
    };
    let mut statements = Vec::new();
    let mut current: Vec<Reads> = Vec::new();
    let mut size = 0;
    for part in pending.into_iter().flat_map(|reads| reads.split(max_rows)) {
        let part_size = size_of(&part);
        if !current.is_empty() && size + part_size > limit {
            statements.push(std::mem::take(&mut current));
            size = 0;
        }
        size += part_size;
        current.push(part);
    }
    if !current.is_empty() {
        statements.push(current);
    }
    statements
}

/// True when the database refused the rows themselves (a constraint, a value it cannot store), which
/// no retry can fix. Anything else (a refused or lost connection, a timeout, a restart, revoked access)
/// may pass, so the rows wait.
pub(crate) fn is_about_the_rows(err: &DbErr) -> bool {
    use sea_orm::{RuntimeErr, sqlx::error::ErrorKind};
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            e.as_database_error().is_some_and(|d| {
                !matches!(d.kind(), ErrorKind::Other)
                    // PostgreSQL's data exceptions (e.g. a value too long for its column).
                    || d.code().is_some_and(|code| code.starts_with("22"))
            })
        }
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) | DbErr::Exec(_) | DbErr::Query(_) => false,
        _ => true,
    }
}

const SQLITE_CHUNKS: [usize; 4] = [64, 16, 4, 1];

/// On PostgreSQL a batch goes in as one JSON parameter, one element per response with the ids it
/// returned: one prepared statement whatever the batch size (a multi-row VALUES list was parsed and
/// planned afresh for every size, and cached per size and connection), and little to parse per row.
pub(crate) const INSERT_FROM_JSON: &str = r#"INSERT INTO "audit_events"
    ("id", "occurred_at", "user_id", "action", "entity_type", "entity_id", "outcome", "client_ip", "request_id")
    SELECT row.id, r.occurred_at, r.user_id, r.action, r.entity_type, row.entity_id, r.outcome, r.client_ip, r.request_id
    FROM json_to_recordset($1::json) AS r(occurred_at timestamptz, user_id uuid, action text,
        entity_type text, outcome text, client_ip text, request_id text, ids uuid[], entities uuid[])
    CROSS JOIN LATERAL unnest(r.ids, r.entities) AS row(id, entity_id)"#;

async fn insert(db: &DatabaseConnection, batch: &[Reads]) -> Result<(), DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        // Chunks of a few fixed sizes, in one transaction: each distinct row count is another prepared
        // statement in every pooled connection's cache, and 500 sizes of up to 4,500 parameters held
        // over 100 MiB.
        let rows: Vec<_> = batch.iter().flat_map(Reads::models).collect();
        let txn = db.begin().await?;
        let mut rest = rows.as_slice();
        while !rest.is_empty() {
            let size = SQLITE_CHUNKS
                .into_iter()
                .find(|size| *size <= rest.len())
                .unwrap_or(1);
            let (chunk, tail) = rest.split_at(size);
            audit_event::Entity::insert_many(chunk.to_vec())
                .exec(&txn)
                .await?;
            rest = tail;
        }
        return txn.commit().await;
    }
    let json = serde_json::Value::Array(batch.iter().map(Reads::json).collect()).to_string();
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        INSERT_FROM_JSON,
        [json.into()],
    ))
    .await
    .map(|_| ())
}

#[derive(Default)]
pub struct AuditFilter {
    pub user_id: Option<Uuid>,
    pub action: Option<Action>,
    pub entity: Option<(EntityKind, Option<Uuid>)>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// The whole trail, for admins only.
pub async fn list_for_admin(
    db: &impl ConnectionTrait,
    actor: &Actor,
    filter: AuditFilter,
    page: &PageRequest,
) -> AppResult<Page<audit_event::Model>> {
    if !actor.is_admin() {
        return Err(AppError::Forbidden("Only admins can read the audit trail"));
    }
    list(db, filter, page).await
}

/// One patient's trail, for its owner only (NOT_FOUND otherwise, like any foreign patient).
pub async fn list_for_patient(
    db: &impl ConnectionTrait,
    actor: &Actor,
    patient_id: PatientId,
    page: &PageRequest,
) -> AppResult<Page<audit_event::Model>> {
    patients::require(db, actor, patient_id).await?;
    let filter = AuditFilter {
        entity: Some((EntityKind::Patient, Some(patient_id.0))),
        ..AuditFilter::default()
    };
    list(db, filter, page).await
}

/// Audit events, newest first.
async fn list(
    db: &impl ConnectionTrait,
    filter: AuditFilter,
    page: &PageRequest,
) -> AppResult<Page<audit_event::Model>> {
    let mut select = audit_event::Entity::find();
    if let Some(user_id) = filter.user_id {
        select = select.filter(audit_event::Column::UserId.eq(user_id));
    }
    if let Some(action) = filter.action {
        select = select.filter(audit_event::Column::Action.eq(action.as_str()));
    }
    if let Some((kind, id)) = filter.entity {
        select = select.filter(audit_event::Column::EntityType.eq(kind.as_str()));
        if let Some(id) = id {
            select = select.filter(audit_event::Column::EntityId.eq(id));
        }
    }
    if let Some(from) = filter.from {
        select = select.filter(audit_event::Column::OccurredAt.gte(from));
    }
    if let Some(to) = filter.to {
        select = select.filter(audit_event::Column::OccurredAt.lt(to));
    }
    let keyset = Keyset {
        sort: audit_event::Column::OccurredAt,
        id: audit_event::Column::Id,
        descending: true,
        name: "OCCURRED_AT:DESC",
    };
    fetch_page(db, select, keyset, page, |e| {
        (SortKey::Time(e.occurred_at), e.id)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads(rows: usize) -> Reads {
        Reads {
            occurred_at: now(),
            user_id: Some(Uuid::now_v7()),
            kind: EntityKind::Patient,
            // The longest values the fields can hold.
            client_ip: Some("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255".into()),
            request_id: Some("r".repeat(64)),
            rows: (0..rows)
                .map(|_| (Uuid::now_v7(), Uuid::now_v7()))
                .collect(),
        }
    }

    #[test]
    fn the_json_of_a_response_stays_within_its_bound() {
        for rows in [1, 2, 20, MAX_ROWS_PER_PART] {
            let r = reads(rows);
            assert!(
                r.json().to_string().len() <= r.json_len_bound(),
                "{rows} rows"
            );
        }
    }

    #[test]
    fn postgres_statements_stay_small_and_keep_every_row() {
        let pending: Vec<Reads> = [1, 20, 250, 3, 100, 1, 1].into_iter().map(reads).collect();
        let ids: Vec<(Uuid, Uuid)> = pending.iter().flat_map(|r| r.rows.clone()).collect();
        let statements = statements(DbBackend::Postgres, pending);
        for statement in &statements {
            let json = serde_json::Value::Array(statement.iter().map(Reads::json).collect());
            assert!(json.to_string().len() <= MAX_STATEMENT_BYTES);
            assert!(statement.iter().all(|r| r.rows.len() <= MAX_ROWS_PER_PART));
        }
        let stored: Vec<(Uuid, Uuid)> = statements
            .iter()
            .flatten()
            .flat_map(|r| r.rows.clone())
            .collect();
        assert_eq!(stored, ids);
    }

    #[test]
    fn sqlite_statements_hold_up_to_a_batch() {
        let pending: Vec<Reads> = [300, 300, 20].into_iter().map(reads).collect();
        let statements = statements(DbBackend::Sqlite, pending);
        let sizes: Vec<usize> = statements
            .iter()
            .map(|s| s.iter().map(|r| r.rows.len()).sum())
            .collect();
        assert_eq!(sizes, vec![300, 320]);
    }
}
