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

/// Now, truncated to microseconds: PostgreSQL keeps microseconds, SQLite would keep nanoseconds, and
/// round trips (and cursors) must compare equal on both.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
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
