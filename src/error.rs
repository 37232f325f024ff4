//! `AppError`: what went wrong, in domain terms. The GraphQL layer (`graphql::error`) turns it into a
//! client-facing error with a stable `extensions.code`; nothing here knows about transports.

use std::collections::BTreeMap;

use sea_orm::{DbErr, SqlErr};

///
/// Deliberately not `Display`: async-graphql converts any `Display` error into a client message
/// verbatim, so without it the only way out to a client is `graphql::error`'s mapping with a code.
#[derive(Debug)]
pub enum AppError {
    Unauthenticated,
    /// Wrong email or password: one message for both so accounts cannot be probed.
    InvalidCredentials,
    InvalidRefreshToken,
    Forbidden(&'static str),
    /// The kind of record ("Patient", "Doctor", …).
    NotFound(&'static str),
    Validation(FieldErrors),
    Conflict(&'static str),
    /// Too many attempts; `retry_after` in whole seconds when waiting will help.
    RateLimited {
        message: &'static str,
        retry_after: Option<u64>,
    },
    Internal(anyhow::Error),
}

pub type AppResult<T> = Result<T, AppError>;

/// Field name (as the client spelled it, camelCase) → reason.
pub type FieldErrors = BTreeMap<String, String>;

impl AppError {
    pub fn field(field: &str, reason: impl Into<String>) -> Self {
        AppError::Validation(BTreeMap::from([(field.to_owned(), reason.into())]))
    }

    /// Maps a database error at the query that caused it: a unique violation becomes `conflict`,
    /// a foreign key violation `NotFound(missing)` when given, anything else is internal.
    pub fn from_db(err: DbErr, conflict: &'static str) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => AppError::Conflict(conflict),
            _ => AppError::Internal(err.into()),
        }
    }
}

impl AppError {
    /// The message a client may see.
    pub fn public_message(&self) -> String {
        match self {
            AppError::Unauthenticated => "Authentication required".into(),
            AppError::InvalidCredentials => "Invalid email or password".into(),
            AppError::InvalidRefreshToken => "Invalid or expired refresh token".into(),
            AppError::Forbidden(msg) | AppError::Conflict(msg) => (*msg).into(),
            AppError::RateLimited { message, .. } => (*message).into(),
            AppError::NotFound(what) => format!("{what} not found"),
            AppError::Validation(fields) => match fields.iter().next() {
                Some((field, reason)) if fields.len() == 1 => {
                    format!("Invalid input: {field} {reason}")
                }
                _ => "Invalid input".into(),
            },
            AppError::Internal(_) => "Internal server error".into(),
        }
    }

    /// For callers outside GraphQL (the CLI), where the full cause may be shown to the operator.
    pub fn into_anyhow(self) -> anyhow::Error {
        match self {
            AppError::Internal(err) => err,
            AppError::Validation(fields) => anyhow::anyhow!(
                "invalid input: {}",
                fields
                    .iter()
                    .map(|(f, r)| format!("{f} {r}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            other => anyhow::anyhow!(other.public_message()),
        }
    }
}

impl From<anyhow::Error> for AppError {
    fn from(err: anyhow::Error) -> Self {
        AppError::Internal(err)
    }
}

impl From<DbErr> for AppError {
    fn from(err: DbErr) -> Self {
        AppError::Internal(err.into())
    }
}

/// Collects field errors from several parses so a client sees every bad field at once.
#[derive(Default)]
pub struct Validator {
    errors: FieldErrors,
}

impl Validator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the error of `result` under `field` and returns the value if it parsed.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(reason) => {
                self.errors.entry(field.to_owned()).or_insert(reason);
                None
            }
        }
    }

    pub fn add(&mut self, field: &str, reason: impl Into<String>) {
        self.errors
            .entry(field.to_owned())
            .or_insert_with(|| reason.into());
    }

    pub fn finish(self) -> AppResult<()> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(AppError::Validation(self.errors))
        }
    }
}
