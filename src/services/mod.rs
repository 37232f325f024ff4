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
    ColumnTrait, DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
    sea_query::{Expr, ExprTrait, Func, Query},
};
use uuid::Uuid;

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

/// `column IN (ids)`. On PostgreSQL the ids travel as one array parameter (`IN (SELECT
/// unnest(CAST($1 AS uuid[])))`): one prepared statement whatever their number, and one PostgreSQL
/// plans once. A list of parameters (`IN ($1, …, $20)`) was planned afresh at every execution: its
/// generic plan is estimated dearer than the custom ones, which see the values (0.16 ms of (a)'s
/// doctors join). SQLite gets the list.
pub(crate) fn id_in<C: ColumnTrait>(backend: DbBackend, column: C, ids: &[Uuid]) -> Expr {
    if backend != DbBackend::Postgres {
        return column.is_in(ids.iter().copied());
    }
    column.in_subquery(
        Query::select()
            .expr(Func::cust("unnest").arg(Expr::val(uuid_array_literal(ids)).cast_as("uuid[]")))
            .to_owned(),
    )
}

/// A PostgreSQL array literal of `ids`, for one text parameter cast to `uuid[]`.
pub(crate) fn uuid_array_literal(ids: &[Uuid]) -> String {
    let mut literal = String::with_capacity(2 + ids.len() * 37);
    literal.push('{');
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            literal.push(',');
        }
        literal.push_str(id.hyphenated().encode_lower(&mut Uuid::encode_buffer()));
    }
    literal.push('}');
    literal
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_array_literal_lists_every_id() {
        let a = Uuid::now_v7();
        let b = Uuid::now_v7();
        assert_eq!(uuid_array_literal(&[]), "{}");
        assert_eq!(uuid_array_literal(&[a]), format!("{{{a}}}"));
        assert_eq!(uuid_array_literal(&[a, b]), format!("{{{a},{b}}}"));
    }
}
