//! The contract's `DateTime` (RFC 3339, UTC, `Z`) and `Date` (ISO 8601 calendar date) scalars.

use async_graphql::{Description, InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::{NaiveDate, SecondsFormat, Utc};

/// An instant, as an RFC 3339 string in UTC, e.g. "2026-11-22T10:15:00Z".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Description)]
pub struct DateTime(pub chrono::DateTime<Utc>);

#[Scalar(name = "DateTime", use_type_description)]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| DateTime(t.with_timezone(&Utc)))
                .map_err(|_| InputValueError::custom("expected an RFC 3339 date-time")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }
}

/// A calendar date, as an ISO 8601 string, e.g. "1991-04-30".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Description)]
pub struct Date(pub NaiveDate);

#[Scalar(name = "Date", use_type_description)]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(Date)
                .map_err(|_| InputValueError::custom("expected a date as YYYY-MM-DD")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}
