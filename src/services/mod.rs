//! Business rules and queries. Every function takes the database handle (pool or transaction) and, where
//! data belongs to someone, the `Actor`: this is the only layer that decides who may see what.

pub mod accounts;
pub mod assignments;
pub mod audit;
pub mod doctors;
pub mod events;
pub mod pagination;
pub mod patients;

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{
    DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};

/// Begins a transaction that will write. On SQLite it takes the write lock up front (BEGIN IMMEDIATE):
/// a deferred transaction that reads first cannot upgrade to a writer once another connection has
/// committed in WAL mode, and fails at once with "database is locked" instead of waiting its turn.
pub(crate) async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    let mut options = TransactionOptions::default();
    if db.get_database_backend() == DatabaseBackend::Sqlite {
        options.sqlite_transaction_mode = Some(SqliteTransactionMode::Immediate);
    }
    db.begin_with_options(options).await
}

/// Now, truncated to microseconds: PostgreSQL keeps microseconds, SQLite would keep nanoseconds, and
/// round trips (and cursors) must compare equal on both.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// The lower-cased words a record is searched by (Unicode-aware, unlike SQLite's LOWER()).
pub(crate) fn search_text(parts: &[&str]) -> String {
    parts.join(" ").to_lowercase()
}

/// Escapes `%`, `_` and `\` for a LIKE pattern used with `ESCAPE '\'`.
pub(crate) fn like_pattern(term: &str) -> String {
    let mut out = String::with_capacity(term.len() + 2);
    out.push('%');
    for c in term.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}
pub mod seed;
