//! Turns `AppError` into GraphQL errors with a stable `extensions.code` (see shared/api/errors.md).
//! Internal errors are logged in full here and reach the client only as "Internal server error".

use async_graphql::{Error, ErrorExtensions};

use crate::error::AppError;

pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
pub const FORBIDDEN: &str = "FORBIDDEN";
pub const NOT_FOUND: &str = "NOT_FOUND";
pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
pub const CONFLICT: &str = "CONFLICT";
pub const RATE_LIMITED: &str = "RATE_LIMITED";
pub const INTERNAL_SERVER_ERROR: &str = "INTERNAL_SERVER_ERROR";

pub fn code_of(err: &AppError) -> &'static str {
    match err {
        AppError::Unauthenticated
        | AppError::InvalidCredentials
        | AppError::InvalidRefreshToken => UNAUTHENTICATED,
        AppError::Forbidden(_) => FORBIDDEN,
        AppError::NotFound(_) => NOT_FOUND,
        AppError::Validation(_) => BAD_USER_INPUT,
        AppError::Conflict(_) => CONFLICT,
        AppError::RateLimited { .. } => RATE_LIMITED,
        AppError::Internal(_) => INTERNAL_SERVER_ERROR,
    }
}

pub fn to_graphql_error(err: &AppError) -> Error {
    if let AppError::Internal(cause) = err {
        tracing::error!(error = format!("{cause:#}"), "internal error");
    }
    let code = code_of(err);
    Error::new(err.public_message()).extend_with(|_, ext| {
        ext.set("code", code);
        if let AppError::Validation(fields) = err {
            let mut map = async_graphql::indexmap::IndexMap::new();
            for (field, reason) in fields {
                map.insert(
                    async_graphql::Name::new(field),
                    async_graphql::Value::from(reason.as_str()),
                );
            }
            ext.set("fields", async_graphql::Value::Object(map));
        }
        if let AppError::RateLimited {
            retry_after: Some(seconds),
            ..
        } = err
        {
            ext.set("retryAfter", *seconds);
        }
    })
}

impl From<AppError> for Error {
    fn from(err: AppError) -> Self {
        to_graphql_error(&err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(err: AppError) -> serde_json::Value {
        let e = Error::from(err).into_server_error(async_graphql::Pos::default());
        serde_json::to_value(&e).expect("serializes")
    }

    #[test]
    fn every_error_kind_has_its_code() {
        let cases = [
            (AppError::Unauthenticated, UNAUTHENTICATED),
            (AppError::InvalidCredentials, UNAUTHENTICATED),
            (AppError::InvalidRefreshToken, UNAUTHENTICATED),
            (AppError::Forbidden("no"), FORBIDDEN),
            (AppError::NotFound("Patient"), NOT_FOUND),
            (
                AppError::field("age", "must be between 0 and 150"),
                BAD_USER_INPUT,
            ),
            (AppError::Conflict("taken"), CONFLICT),
            (
                AppError::RateLimited {
                    message: "slow down",
                    retry_after: Some(3),
                },
                RATE_LIMITED,
            ),
            (
                AppError::Internal(anyhow::anyhow!("boom")),
                INTERNAL_SERVER_ERROR,
            ),
        ];
        for (err, code) in cases {
            assert_eq!(ext(err)["extensions"]["code"], code);
        }
    }

    #[test]
    fn validation_errors_list_their_fields() {
        let json = ext(AppError::field("age", "must be between 0 and 150"));
        assert_eq!(
            json["extensions"]["fields"]["age"],
            "must be between 0 and 150"
        );
    }

    #[test]
    fn rate_limited_errors_say_when_to_retry() {
        let json = ext(AppError::RateLimited {
            message: "Too many login attempts",
            retry_after: Some(12),
        });
        assert_eq!(json["extensions"]["retryAfter"], 12);
    }

    #[test]
    fn internal_errors_never_show_their_cause() {
        let json = ext(AppError::Internal(anyhow::anyhow!(
            "duplicate key value violates unique constraint \"users_email\""
        )));
        assert_eq!(json["message"], "Internal server error");
        assert!(!json.to_string().contains("duplicate key"));
    }

    #[test]
    fn not_found_names_the_kind_only() {
        assert_eq!(
            ext(AppError::NotFound("Patient"))["message"],
            "Patient not found"
        );
    }
}
