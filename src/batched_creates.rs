//! Creates from concurrent requests, stored together by one PostgreSQL statement (PostgreSQL only).
//!
//! A create alone is one statement with its audit row (`audit::insert_in_one_statement`), and its
//! commit waits for PostgreSQL to flush the WAL to disk. Under load those flushes, not the CPU, held
//! `createPatient` back: with `synchronous_commit = off` (no waiting) the same machine created half as
//! many again. So while `IN_FLIGHT` such statements are out, the creates that arrive meanwhile queue
//! and go in the next statement together: one statement, one commit and one flush for all of them,
//! each record with its own CREATE audit row. Nothing waits on a timer: a create that finds no
//! statement out goes at once, alone, as before.
//!
//! A statement commits whole or not at all, so when the database refuses one record of a batch (a
//! constraint, say), the batch stores nothing and every record of it is then stored on its own: each
//! caller gets the answer its own record earns, and no record depends on another caller's. When the
//! statement failed below SQL (a lost connection, a timeout), every caller of the batch gets that error.

use std::collections::HashMap;

use sea_orm::{
    ActiveModelTrait, DbBackend, DbErr, EntityName, EntityTrait, IdenStatic, Iterable, Statement,
    Value,
};
use serde_json::Value as Json;
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinSet,
};
use uuid::Uuid;

use crate::{
    point_reads::start_batcher,
    reads::ReadConnection,
    services::audit::{self, Action, AuditMeta, EntityKind, INSERT_FROM_JSON, MAX_STATEMENT_BYTES},
};

/// Most records one statement stores (about 750 bytes of JSON each, so a batch of ordinary records
/// fits `MAX_STATEMENT_BYTES`).
const MAX_BATCH: usize = 16;
/// Statements out at once. More would batch less; fewer would leave a core idle during each flush.
const IN_FLIGHT: usize = 2;

type Model<A> = <<A as ActiveModelTrait>::Entity as EntityTrait>::Model;
type Answer<A> = Result<Option<Model<A>>, DbErr>;

struct Create<A: ActiveModelTrait> {
    id: Uuid,
    kind: EntityKind,
    meta: AuditMeta,
    record: A,
    /// The record as a JSON object of its columns, and its audit row as `INSERT_FROM_JSON` takes it.
    row: String,
    audit: String,
    reply: oneshot::Sender<Answer<A>>,
}

/// The coalesced creates of one entity (`start` them once, clone freely).
pub struct BatchedCreates<A: ActiveModelTrait> {
    queue: mpsc::Sender<Create<A>>,
    reads: ReadConnection,
}

impl<A: ActiveModelTrait> Clone for BatchedCreates<A> {
    fn clone(&self) -> Self {
        BatchedCreates {
            queue: self.queue.clone(),
            reads: self.reads.clone(),
        }
    }
}

impl<A> BatchedCreates<A>
where
    A: ActiveModelTrait + Send + 'static,
    Model<A>: Send + Sync + 'static,
{
    /// Starts the batcher (a task on the current runtime) for `A`'s table; `id_of` reads a stored
    /// record's id.
    pub fn start(reads: ReadConnection, id_of: fn(&Model<A>) -> Uuid) -> Self {
        let table = A::Entity::default().table_name();
        // The audit rows are `$1` (INSERT_FROM_JSON's own parameter), the records `$2`. `SELECT *` of
        // the table's row type lists the columns in the table's order, which INSERT without a column
        // list expects.
        let sql: &'static str = format!(
            r#"WITH "audited" AS ({INSERT_FROM_JSON}),
            "changed" AS (INSERT INTO "{table}"
                SELECT * FROM json_populate_recordset(NULL::"{table}", $2::json) RETURNING *)
            SELECT * FROM "changed""#
        )
        .leak();
        let statements = reads.clone();
        let queue = start_batcher(MAX_BATCH, IN_FLIGHT, move |creates| {
            let reads = statements.clone();
            async move { store(&reads, sql, id_of, creates).await }
        });
        BatchedCreates { queue, reads }
    }

    /// Inserts `record` (whose id is `id`) and its CREATE audit row, atomically, as
    /// `audit::insert_in_one_statement` does, possibly in one statement with other callers' records.
    /// `None` when the statement stored nothing.
    pub async fn insert(
        &self,
        meta: &AuditMeta,
        kind: EntityKind,
        id: Uuid,
        record: A,
    ) -> Answer<A> {
        // A record with a column left to its default cannot go through the JSON row (which would set
        // it to NULL); it goes alone.
        let Some(row) = row_json(&record) else {
            return audit::insert_in_one_statement(&self.reads, meta, kind, record).await;
        };
        let (reply, answer) = oneshot::channel();
        let create = Create {
            id,
            kind,
            meta: meta.clone(),
            audit: meta.row_json(Action::Create, kind, id).to_string(),
            row,
            record,
            reply,
        };
        self.queue
            .send(create)
            .await
            .map_err(|_| DbErr::Custom("the create batcher has stopped".into()))?;
        answer
            .await
            .map_err(|_| DbErr::Custom("the create statement was abandoned".into()))?
    }
}

/// Stores `creates` in statements of at most `MAX_STATEMENT_BYTES` of JSON, side by side, and gives
/// every caller its stored record or its own error.
async fn store<A>(
    reads: &ReadConnection,
    sql: &'static str,
    id_of: fn(&Model<A>) -> Uuid,
    creates: Vec<Create<A>>,
) where
    A: ActiveModelTrait + Send + 'static,
    Model<A>: Send + Sync + 'static,
{
    let mut parts: Vec<Vec<Create<A>>> = Vec::new();
    let mut bytes = 0;
    for create in creates {
        let size = create.row.len() + create.audit.len() + 2;
        match parts.last_mut() {
            Some(part) if bytes + size <= MAX_STATEMENT_BYTES => part.push(create),
            _ => {
                bytes = 0;
                parts.push(vec![create]);
            }
        }
        bytes += size;
    }
    let mut statements = JoinSet::new();
    for part in parts {
        let reads = reads.clone();
        statements.spawn(async move { store_part(&reads, sql, id_of, part).await });
    }
    statements.join_all().await;
}

async fn store_part<A>(
    reads: &ReadConnection,
    sql: &'static str,
    id_of: fn(&Model<A>) -> Uuid,
    part: Vec<Create<A>>,
) where
    A: ActiveModelTrait + Send,
{
    if part.len() > 1 {
        let audit = json_array(part.iter().map(|create| create.audit.as_str()));
        let rows = json_array(part.iter().map(|create| create.row.as_str()));
        let statement =
            Statement::from_sql_and_values(DbBackend::Postgres, sql, [audit.into(), rows.into()]);
        match A::Entity::find().from_raw_sql(statement).all(reads).await {
            Ok(stored) => {
                let mut by_id: HashMap<Uuid, Model<A>> = stored
                    .into_iter()
                    .map(|model| (id_of(&model), model))
                    .collect();
                for create in part {
                    // A caller that gave up (its request was cancelled) no longer listens.
                    let _ = create.reply.send(Ok(by_id.remove(&create.id)));
                }
                return;
            }
            // The database never judged the rows (a lost connection, a timeout): one statement per
            // record would only make each caller wait as long again.
            Err(e) if !audit::is_about_the_rows(&e) => {
                let message = e.to_string();
                for create in part {
                    let _ = create.reply.send(Err(DbErr::Custom(message.clone())));
                }
                return;
            }
            Err(_) => {}
        }
    }
    for create in part {
        let answer =
            audit::insert_in_one_statement(reads, &create.meta, create.kind, create.record).await;
        let _ = create.reply.send(answer);
    }
}

fn json_array<'a>(elements: impl Iterator<Item = &'a str>) -> String {
    let mut array = String::from("[");
    for (i, element) in elements.enumerate() {
        if i > 0 {
            array.push(',');
        }
        array.push_str(element);
    }
    array.push(']');
    array
}

/// Every column of `record` as a JSON object in the text forms PostgreSQL's `json_populate_recordset`
/// reads; `None` when a column is not set or of a type not listed here.
fn row_json<A: ActiveModelTrait>(record: &A) -> Option<String> {
    let mut row = serde_json::Map::new();
    for column in <A::Entity as EntityTrait>::Column::iter() {
        let value = record.get(column).into_value()?;
        row.insert(column.as_str().to_owned(), json_of(value)?);
    }
    Some(Json::Object(row).to_string())
}

fn json_of(value: Value) -> Option<Json> {
    Some(match value {
        Value::Bool(v) => v.map_or(Json::Null, Json::Bool),
        Value::SmallInt(v) => v.map_or(Json::Null, Json::from),
        Value::Int(v) => v.map_or(Json::Null, Json::from),
        Value::BigInt(v) => v.map_or(Json::Null, Json::from),
        Value::String(v) => v.map_or(Json::Null, Json::String),
        Value::Uuid(v) => v.map_or(Json::Null, |id| Json::String(id.to_string())),
        Value::ChronoDate(v) => v.map_or(Json::Null, |date| {
            Json::String(date.format("%Y-%m-%d").to_string())
        }),
        Value::ChronoDateTimeUtc(v) => v.map_or(Json::Null, |at| {
            Json::String(at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        }),
        Value::Json(v) => v.map_or(Json::Null, |json| *json),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone, Utc};
    use sea_orm::ActiveValue::{NotSet, Set};

    use super::*;
    use crate::entities::patient;

    fn patient_record() -> patient::ActiveModel {
        let at = Utc
            .with_ymd_and_hms(2026, 12, 2, 1, 2, 3)
            .single()
            .expect("a time");
        patient::ActiveModel {
            id: Set(Uuid::nil()),
            owner_id: Set(Uuid::max()),
            first_name: Set("Zoë \"Q\"".into()),
            last_name: Set("O'Brien".into()),
            birth_date: Set(NaiveDate::from_ymd_opt(1950, 3, 4).expect("a date")),
            birth_date_estimated: Set(false),
            gender: Set("FEMALE".into()),
            address: Set(None),
            phone: Set(Some("+1 555".into())),
            notes: Set(None),
            version: Set(1),
            search_text: Set("zoë \"q\" o'brien".into()),
            created_at: Set(at),
            updated_at: Set(at),
        }
    }

    #[test]
    fn a_record_becomes_a_json_object_of_all_its_columns() {
        let row: Json =
            serde_json::from_str(&row_json(&patient_record()).expect("a row")).expect("JSON");
        assert_eq!(row["id"], Uuid::nil().to_string());
        assert_eq!(row["first_name"], "Zoë \"Q\"");
        assert_eq!(row["birth_date"], "1950-03-04");
        assert_eq!(row["birth_date_estimated"], false);
        assert_eq!(row["address"], Json::Null);
        assert_eq!(row["version"], 1);
        assert_eq!(row["created_at"], "2026-12-02T01:02:03.000000Z");
        assert_eq!(
            row.as_object().map(serde_json::Map::len),
            Some(patient::Column::iter().count())
        );
    }

    #[test]
    fn a_record_with_a_column_left_to_its_default_has_no_json_row() {
        let mut record = patient_record();
        record.notes = NotSet;
        assert!(row_json(&record).is_none());
    }
}
