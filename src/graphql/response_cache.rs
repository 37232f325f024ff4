//! Whole answers to the patient-list queries a client repeats (a list screen polled or revisited),
//! kept per caller and checked before every use against stamps the database moves with every change
//! (migrations `m20261202_000012_response_stamps`, `m20261203_000013_user_tallies`). A repeated list
//! then costs one index read of a few rows instead of its statements, its few hundred resolved fields
//! and their serialization.
//!
//! Why it cannot serve stale data:
//! - Triggers move the owner's data stamp (the sum of their `user_tallies` versions, each of which
//!   only grows) with every change of their patients or of their assignments, and
//!   `directory_version` with every change of a doctor, inside the writer's own transaction:
//!   whatever writes (this or another instance, the batched creates, a cascade, a script), no
//!   reader sees the change without its stamp.
//! - The stamp is read before the answer is computed, so an answer is stored with a stamp no newer
//!   than its data. A change that lands meanwhile moves the stamp past the stored one, and the next
//!   request computes afresh.
//! - `age` depends on the date, so the date (UTC, as `age` uses) is part of the stamp.
//! - Only documents whose every field is on `cacheable_field`'s list are kept: the patients list, its
//!   patients' own fields and their doctors'. A patient's audit trail (which grows with every read) or
//!   a doctor's patients (read through a loader) are not.
//!
//! Every hit writes the READ rows the first answer wrote, with this request's caller, address and id:
//! the audit trail records each time patient data leaves the server, cached or not.
//! `Cache-Control: no-cache` (or `no-store`) on a request skips the cache for it.

use std::sync::{Arc, Mutex};

use async_graphql::parser::types::{
    Directive, DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};
use axum::body::Bytes;
use chrono::NaiveDate;
use lru::LruCache;
use sea_orm::{
    ConnectionTrait, DbBackend, DbErr,
    sea_query::{Alias, Expr, ExprTrait, Query, extension::postgres::PgFunc},
};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::{
    auth::Actor,
    point_reads::start_batcher,
    reads::ReadConnection,
    services::{audit::EntityKind, uuid_array_literal},
};

/// Longer documents are not kept (as in the document cache; app operations are a few KiB at most).
const MAX_QUERY_BYTES: usize = 8 * 1024;
/// Stamps of at most this many users in one statement (PostgreSQL; see `point_reads`).
const MAX_STAMP_BATCH: usize = 64;
/// Stamp statements out at once.
const STAMPS_IN_FLIGHT: usize = 2;
/// Bytes counted for an entry beyond its body, key and reads (the map's node, the `Arc`s).
const ENTRY_OVERHEAD: usize = 160;

/// What a stored answer was computed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    owner: i64,
    directory: i64,
    day: NaiveDate,
}

/// Whose answer to which request: the caller (and their role) and the request's text, operation name
/// and variables, compared whole (no hash stands in for them).
#[derive(Hash, PartialEq, Eq)]
struct Key {
    user_id: Uuid,
    admin: bool,
    request: Box<str>,
}

/// A stored answer.
pub struct Entry {
    stamp: Stamp,
    /// What it counts against the budget.
    size: usize,
    /// The response body as it was sent.
    pub body: Bytes,
    /// The records it returned, for its READ rows.
    pub reads: Vec<(EntityKind, Uuid)>,
}

/// A request the cache may answer later: its key and the stamp read before it ran.
pub struct Pending {
    key: Key,
    stamp: Stamp,
}

pub enum Lookup {
    Hit(Arc<Entry>),
    Miss(Pending),
}

struct Stored {
    entries: LruCache<Key, Arc<Entry>>,
    bytes: usize,
}

pub struct ResponseCache {
    max_bytes: usize,
    stored: Mutex<Stored>,
    stamps: StampReads,
}

type StampAnswer = Result<Option<(i64, i64)>, String>;

enum StampReads {
    /// PostgreSQL: concurrent requests share one statement, as the point reads do.
    Batched(mpsc::Sender<(Uuid, oneshot::Sender<StampAnswer>)>),
    Direct(ReadConnection),
}

impl ResponseCache {
    /// A cache of at most `max_bytes` (none when 0). On PostgreSQL (`batched`) it starts the task that
    /// reads stamps for concurrent requests together, so it needs a runtime.
    pub fn new(max_bytes: usize, reads: ReadConnection, batched: bool) -> Option<ResponseCache> {
        if max_bytes == 0 {
            return None;
        }
        let stamps = if batched {
            StampReads::Batched(start_batcher(
                MAX_STAMP_BATCH,
                STAMPS_IN_FLIGHT,
                move |lookups: Vec<(Uuid, oneshot::Sender<StampAnswer>)>| {
                    let reads = reads.clone();
                    async move {
                        let mut ids: Vec<Uuid> = lookups.iter().map(|(id, _)| *id).collect();
                        ids.sort_unstable();
                        ids.dedup();
                        let found = read_stamps(&reads, &ids).await;
                        for (id, reply) in lookups {
                            let answer = match &found {
                                Ok(rows) => Ok(rows
                                    .iter()
                                    .find(|(row, ..)| *row == id)
                                    .map(|(_, owner, directory)| (*owner, *directory))),
                                Err(e) => Err(e.to_string()),
                            };
                            let _ = reply.send(answer);
                        }
                    }
                },
            ))
        } else {
            StampReads::Direct(reads)
        };
        Some(ResponseCache {
            max_bytes,
            stored: Mutex::new(Stored {
                entries: LruCache::unbounded(),
                bytes: 0,
            }),
            stamps,
        })
    }

    /// Reads the caller's stamp and looks the request up. `None`: the request is not one the cache
    /// keeps (too long), or no stamp could be read (the account is gone, the database failed); it
    /// then runs as if there were no cache.
    pub async fn lookup(&self, actor: &Actor, request: &async_graphql::Request) -> Option<Lookup> {
        if request.query.len() > MAX_QUERY_BYTES {
            return None;
        }
        let variables = serde_json::to_string(&request.variables).ok()?;
        let key = Key {
            user_id: actor.user_id.0,
            admin: actor.is_admin(),
            request: [
                request.query.as_str(),
                request.operation_name.as_deref().unwrap_or(""),
                &variables,
            ]
            .join("\0")
            .into_boxed_str(),
        };
        let stamp = match self.stamp(actor.user_id.0).await {
            Ok(Some(stamp)) => stamp,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(error = %e, "response cache: could not read the stamp");
                return None;
            }
        };
        let mut stored = self.stored.lock().ok()?;
        match stored.entries.get(&key) {
            Some(entry) if entry.stamp == stamp => Some(Lookup::Hit(entry.clone())),
            _ => Some(Lookup::Miss(Pending { key, stamp })),
        }
    }

    /// Keeps the answer to a request that missed, evicting the least recently used beyond the budget.
    /// An answer bigger than an eighth of the budget is not kept, so one cannot push out all others.
    pub fn store(&self, pending: Pending, body: Bytes, reads: Vec<(EntityKind, Uuid)>) {
        let size = body.len()
            + pending.key.request.len()
            + reads.len() * std::mem::size_of::<(EntityKind, Uuid)>()
            + ENTRY_OVERHEAD;
        if size > self.max_bytes / 8 {
            return;
        }
        let entry = Arc::new(Entry {
            stamp: pending.stamp,
            size,
            body,
            reads,
        });
        let Ok(mut stored) = self.stored.lock() else {
            return;
        };
        if let Some(old) = stored.entries.put(pending.key, entry) {
            stored.bytes -= old.size;
        }
        stored.bytes += size;
        while stored.bytes > self.max_bytes {
            match stored.entries.pop_lru() {
                Some((_, old)) => stored.bytes -= old.size,
                None => break,
            }
        }
    }

    async fn stamp(&self, user_id: Uuid) -> Result<Option<Stamp>, String> {
        let day = chrono::Utc::now().date_naive();
        let found = match &self.stamps {
            StampReads::Batched(queue) => {
                let (reply, answer) = oneshot::channel();
                queue
                    .send((user_id, reply))
                    .await
                    .map_err(|_| "the stamp batcher has stopped".to_owned())?;
                answer
                    .await
                    .map_err(|_| "the stamp statement was abandoned".to_owned())??
            }
            StampReads::Direct(reads) => read_stamps(reads, &[user_id])
                .await
                .map_err(|e| e.to_string())?
                .first()
                .map(|(_, owner, directory)| (*owner, *directory)),
        };
        Ok(found.map(|(owner, directory)| Stamp {
            owner,
            directory,
            day,
        }))
    }
}

/// `(user id, data stamp, directory version)` of each of these users that exists; a user's data stamp
/// is the sum of their `user_tallies` versions.
async fn read_stamps(reads: &ReadConnection, ids: &[Uuid]) -> Result<Vec<(Uuid, i64, i64)>, DbErr> {
    let directory = Alias::new("directory_version");
    let tallies = Alias::new("user_tallies");
    let user_id = Expr::col((tallies.clone(), Alias::new("user_id")));
    let mut select = Query::select();
    select
        .expr(user_id.clone())
        .expr(Expr::cust("CAST(SUM(user_tallies.version) AS BIGINT)"))
        .expr(Expr::col((directory.clone(), Alias::new("version"))))
        .from(tallies.clone())
        .from(directory.clone())
        .and_where(Expr::col((directory.clone(), Alias::new("id"))).eq(1))
        .group_by_columns([
            (tallies.clone(), Alias::new("user_id")),
            (directory, Alias::new("version")),
        ]);
    let backend = reads.get_database_backend();
    if backend == DbBackend::Postgres {
        select.and_where(user_id.eq(PgFunc::any(
            Expr::val(uuid_array_literal(ids)).cast_as("uuid[]"),
        )));
    } else {
        select.and_where(user_id.is_in(ids.iter().copied()));
    }
    reads
        .query_all(&select)
        .await?
        .iter()
        .map(|row| {
            Ok((
                row.try_get_by_index::<Uuid>(0)?,
                row.try_get_by_index::<i64>(1)?,
                row.try_get_by_index::<i64>(2)?,
            ))
        })
        .collect()
}

/// Whether the request may go through the cache at all: a `Cache-Control` with `no-cache` or
/// `no-store` asks for a fresh answer that is not kept.
pub fn allowed_by(headers: &axum::http::HeaderMap) -> bool {
    !headers
        .get_all(axum::http::header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|directive| {
            let directive = directive.trim();
            directive.eq_ignore_ascii_case("no-cache") || directive.eq_ignore_ascii_case("no-store")
        })
}

/// The fields a cached answer may select, by the type they are on: `Some(Some(type))` for an object
/// field, `Some(None)` for a leaf, `None` for anything else. Each is data the stamps cover.
fn cacheable_field(on: &str, field: &str) -> Option<Option<&'static str>> {
    match (on, field) {
        (_, "__typename") => Some(None),
        ("Query", "patients") => Some(Some("PatientConnection")),
        ("PatientConnection", "edges") => Some(Some("PatientEdge")),
        ("PatientConnection", "nodes") | ("PatientEdge", "node") => Some(Some("Patient")),
        ("PatientConnection", "pageInfo") => Some(Some("PageInfo")),
        ("PatientConnection", "totalCount") | ("PatientEdge", "cursor") => Some(None),
        ("PageInfo", "hasNextPage" | "hasPreviousPage" | "startCursor" | "endCursor") => Some(None),
        (
            "Patient",
            "id" | "firstName" | "lastName" | "fullName" | "dateOfBirth" | "age" | "gender"
            | "address" | "phone" | "notes" | "createdAt" | "updatedAt" | "version",
        ) => Some(None),
        ("Patient", "doctors") => Some(Some("Doctor")),
        (
            "Doctor",
            "id" | "firstName" | "lastName" | "fullName" | "specialization" | "email" | "phone"
            | "createdAt" | "updatedAt",
        ) => Some(None),
        _ => None,
    }
}

/// Fragments nest at most this deep in a cacheable document (the walk needs a bound before the
/// executor's validation has refused cycles).
const MAX_FRAGMENT_DEPTH: usize = 8;

/// Whether answers to this document may be kept: one query whose every field is on the list above,
/// with no directives but `@include` and `@skip` (whose values are part of the key).
pub fn cacheable(document: &ExecutableDocument) -> bool {
    // A named operation is kept in `Multiple`, even alone.
    let operation = match &document.operations {
        DocumentOperations::Single(operation) => operation,
        DocumentOperations::Multiple(operations) if operations.len() == 1 => {
            match operations.values().next() {
                Some(operation) => operation,
                None => return false,
            }
        }
        DocumentOperations::Multiple(_) => return false,
    };
    let operation = &operation.node;
    operation.ty == OperationType::Query
        && operation.directives.is_empty()
        && selects_cacheable(document, "Query", &operation.selection_set.node, 0)
}

fn selects_cacheable(
    document: &ExecutableDocument,
    on: &str,
    set: &SelectionSet,
    depth: usize,
) -> bool {
    let plain = |directives: &[async_graphql::Positioned<Directive>]| {
        directives
            .iter()
            .all(|d| matches!(d.node.name.node.as_str(), "include" | "skip"))
    };
    set.items.iter().all(|item| match &item.node {
        Selection::Field(field) => {
            let field = &field.node;
            plain(&field.directives)
                && match cacheable_field(on, field.name.node.as_str()) {
                    Some(Some(ty)) => {
                        selects_cacheable(document, ty, &field.selection_set.node, depth)
                    }
                    Some(None) => field.selection_set.node.items.is_empty(),
                    None => false,
                }
        }
        Selection::InlineFragment(fragment) => {
            let fragment = &fragment.node;
            plain(&fragment.directives)
                && fragment
                    .type_condition
                    .as_ref()
                    .is_none_or(|t| t.node.on.node.as_str() == on)
                && selects_cacheable(document, on, &fragment.selection_set.node, depth)
        }
        Selection::FragmentSpread(spread) => {
            let spread = &spread.node;
            depth < MAX_FRAGMENT_DEPTH
                && plain(&spread.directives)
                && document
                    .fragments
                    .get(&spread.fragment_name.node)
                    .is_some_and(|fragment| {
                        let fragment = &fragment.node;
                        fragment.type_condition.node.on.node.as_str() == on
                            && plain(&fragment.directives)
                            && selects_cacheable(
                                document,
                                on,
                                &fragment.selection_set.node,
                                depth + 1,
                            )
                    })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(query: &str) -> bool {
        cacheable(&async_graphql::parser::parse_query(query).expect("parses"))
    }

    #[test]
    fn only_lists_of_fields_the_stamps_cover_are_kept() {
        assert!(check(
            "query P($first: Int) { patients(first: $first) { totalCount \
             edges { cursor node { id fullName age doctors { id fullName } } } \
             pageInfo { hasNextPage endCursor } } }"
        ));
        assert!(check(
            "{ patients { nodes { ...P @include(if: true) } } } \
             fragment P on Patient { id ... on Patient { notes } doctors { ...D } } \
             fragment D on Doctor { email __typename }"
        ));
        for refused in [
            "{ patients { nodes { id auditTrail { totalCount } } } }",
            "{ patients { nodes { doctors { patients { id } } } } }",
            "{ me { id } }",
            "{ patients { totalCount } me { id } }",
            "{ patient(id: \"x\") { id } }",
            "mutation { deletePatient(id: \"x\") }",
            "{ patients { nodes { id @deprecated } } }",
            "query A { patients { totalCount } } query B { patients { totalCount } }",
            "{ patients { nodes { ...D } } } fragment D on Doctor { id }",
            "{ patients { nodes { ...P } } } fragment P on Patient { ...P }",
        ] {
            assert!(!check(refused), "{refused}");
        }
    }

    #[test]
    fn cache_control_can_ask_for_a_fresh_answer() {
        let mut headers = axum::http::HeaderMap::new();
        assert!(allowed_by(&headers));
        headers.insert(
            axum::http::header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("max-age=0, No-Cache"),
        );
        assert!(!allowed_by(&headers));
    }
}
