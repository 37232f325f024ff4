//! SeaORM models, one per table. These never reach GraphQL directly (see `graphql::types`).

pub mod audit_event;
pub mod doctor;
pub mod patient;
pub mod patient_doctor;
pub mod refresh_token;
pub mod user;
