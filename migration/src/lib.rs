//! Schema migrations for medgraph: each reversible, each running on SQLite and PostgreSQL (the
//! `schema::` helpers pick the column types per backend; the triggers of the patient counts and
//! the response stamps are written for each).

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_users;
mod m20261122_000002_create_patients;
mod m20261122_000003_create_doctors;
mod m20261122_000004_create_patient_doctors;
mod m20261122_000005_create_refresh_tokens;
mod m20261122_000006_create_audit_events;
mod m20261122_000007_add_login_throttling_to_users;
mod m20261122_000008_add_version_to_patients;
mod m20261122_000009_add_search_text;
mod m20261201_000010_case_insensitive_email_indexes;
mod m20261202_000011_patient_counts;
mod m20261202_000012_response_stamps;
mod m20261203_000013_user_tallies;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_users::Migration),
            Box::new(m20261122_000002_create_patients::Migration),
            Box::new(m20261122_000003_create_doctors::Migration),
            Box::new(m20261122_000004_create_patient_doctors::Migration),
            Box::new(m20261122_000005_create_refresh_tokens::Migration),
            Box::new(m20261122_000006_create_audit_events::Migration),
            Box::new(m20261122_000007_add_login_throttling_to_users::Migration),
            Box::new(m20261122_000008_add_version_to_patients::Migration),
            Box::new(m20261122_000009_add_search_text::Migration),
            Box::new(m20261201_000010_case_insensitive_email_indexes::Migration),
            Box::new(m20261202_000011_patient_counts::Migration),
            Box::new(m20261202_000012_response_stamps::Migration),
            Box::new(m20261203_000013_user_tallies::Migration),
        ]
    }
}

/// Table and column names shared by the migrations (foreign keys name columns of earlier tables).
#[derive(DeriveIden)]
pub(crate) enum Users {
    Table,
    Id,
    Name,
    Email,
    PasswordHash,
    Role,
    FailedLogins,
    LastFailedLoginAt,
    LockedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
pub(crate) enum Patients {
    Table,
    Id,
    OwnerId,
    FirstName,
    LastName,
    BirthDate,
    BirthDateEstimated,
    Gender,
    Address,
    Phone,
    Notes,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
pub(crate) enum Doctors {
    Table,
    Id,
    CreatedBy,
    FirstName,
    LastName,
    Specialization,
    Email,
    Phone,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
pub(crate) enum PatientDoctors {
    Table,
    Id,
    PatientId,
    DoctorId,
    AssignedAt,
    AssignedBy,
}

#[derive(DeriveIden)]
pub(crate) enum RefreshTokens {
    Table,
    Id,
    UserId,
    TokenHash,
    FamilyId,
    ExpiresAt,
    RevokedAt,
    ReplacedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
pub(crate) enum AuditEvents {
    Table,
    Id,
    OccurredAt,
    UserId,
    Action,
    EntityType,
    EntityId,
    Outcome,
    ClientIp,
    RequestId,
}
