//! The audit trail (HIPAA 45 CFR 164.312(b)): who did what to which record, when, from where.
//!
//! Changes are recorded in the same transaction as the change (`in_transaction`), so there is never a
//! change without its row nor a row for a rolled-back change. Reads of patient data are frequent, so
//! they go through a buffer (`AuditSink`) that a background task writes in batches; `flush` (called at
//! graceful shutdown) waits until everything buffered is stored.

use std::{net::IpAddr, time::Duration};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, DbErr, EntityTrait, QueryFilter, Set, Statement, TransactionTrait, TryIntoModel,
};
use tokio::sync::{mpsc, oneshot};
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
}

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
            if matches!(
                err,
                AppError::NotFound(_) | AppError::Forbidden(_) | AppError::Conflict(_)
            ) && let Some(id) = target
            {
                record(db, meta, action, Some((kind, id)), Outcome::Failure).await?;
            }
            Err(err)
        }
    }
}

enum Command {
    Record(Vec<audit_event::ActiveModel>),
    Flush(oneshot::Sender<()>),
}

/// Buffered, batched writer of read events. Cloning shares the buffer.
#[derive(Clone)]
pub struct AuditSink {
    tx: mpsc::Sender<Command>,
}

/// Rows written per INSERT by the background writer.
const BATCH: usize = 500;
/// Longest a buffered read waits before it is written.
const FLUSH_EVERY: Duration = Duration::from_millis(200);

impl AuditSink {
    pub fn start(db: DatabaseConnection) -> AuditSink {
        // Bounded: under sustained overload, readers wait for the writer rather than events being dropped.
        let (tx, mut rx) = mpsc::channel::<Command>(1024);
        tokio::spawn(async move {
            let mut pending: Vec<audit_event::ActiveModel> = Vec::new();
            let mut ticker = tokio::time::interval(FLUSH_EVERY);
            loop {
                tokio::select! {
                    command = rx.recv() => match command {
                        Some(Command::Record(rows)) => {
                            pending.extend(rows);
                            if pending.len() >= BATCH {
                                write(&db, &mut pending).await;
                            }
                        }
                        Some(Command::Flush(done)) => {
                            write(&db, &mut pending).await;
                            let _ = done.send(());
                        }
                        None => {
                            write(&db, &mut pending).await;
                            break;
                        }
                    },
                    _ = ticker.tick() => write(&db, &mut pending).await,
                }
            }
        });
        AuditSink { tx }
    }

    /// Buffers READ events of patients returned to a caller.
    pub async fn reads(
        &self,
        meta: &AuditMeta,
        kind: EntityKind,
        ids: impl IntoIterator<Item = Uuid>,
    ) {
        let rows: Vec<_> = ids
            .into_iter()
            .map(|id| meta.row(Action::Read, Some((kind, id)), Outcome::Success))
            .collect();
        if rows.is_empty() {
            return;
        }
        if self.tx.send(Command::Record(rows)).await.is_err() {
            tracing::error!("audit writer stopped; read events lost");
        }
    }

    /// Waits until every event buffered so far is stored.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Command::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// Longest pause between two attempts while the database is unreachable.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(2);

async fn write(db: &DatabaseConnection, pending: &mut Vec<audit_event::ActiveModel>) {
    while !pending.is_empty() {
        let rest = pending.split_off(pending.len().min(BATCH));
        let batch = std::mem::replace(pending, rest);
        let count = batch.len();
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
            for row in &batch {
                if let Err(e) = insert(db, std::slice::from_ref(row)).await {
                    tracing::error!(error = %e, "an audit row could not be written");
                }
            }
            break;
        }
    }
}

/// True when the database refused the rows themselves (a constraint, a value it cannot store), which
/// no retry can fix. Anything else (a refused or lost connection, a timeout, a restart, revoked access)
/// may pass, so the rows wait.
fn is_about_the_rows(err: &DbErr) -> bool {
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

/// On PostgreSQL the batch goes in as one JSON parameter: one prepared statement whatever the batch size,
/// where a multi-row VALUES list with 9 parameters a row was parsed and planned afresh for every size
/// (about 6 ms for 500 rows) and cached per size and connection, which grew the server's memory.
const INSERT_FROM_JSON: &str = r#"INSERT INTO "audit_events"
    ("id", "occurred_at", "user_id", "action", "entity_type", "entity_id", "outcome", "client_ip", "request_id")
    SELECT id, occurred_at, user_id, action, entity_type, entity_id, outcome, client_ip, request_id
    FROM json_to_recordset($1::json) AS r(id uuid, occurred_at timestamptz, user_id uuid, action text,
        entity_type text, entity_id uuid, outcome text, client_ip text, request_id text)"#;

async fn insert(db: &DatabaseConnection, batch: &[audit_event::ActiveModel]) -> Result<(), DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        // Chunks of a few fixed sizes, in one transaction: each distinct row count is another prepared
        // statement in every pooled connection's cache, and 500 sizes of up to 4,500 parameters held
        // over 100 MiB.
        let txn = db.begin().await?;
        let mut rest = batch;
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
    let rows = batch
        .iter()
        .map(|row| {
            let row = row.clone().try_into_model()?;
            Ok(serde_json::json!({
                "id": row.id,
                "occurred_at": row.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "user_id": row.user_id,
                "action": row.action,
                "entity_type": row.entity_type,
                "entity_id": row.entity_id,
                "outcome": row.outcome,
                "client_ip": row.client_ip,
                "request_id": row.request_id,
            }))
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    let json = serde_json::Value::Array(rows).to_string();
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
