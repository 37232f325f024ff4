//! DataLoaders that batch the nested lists (`Patient.doctors`, `Doctor.patients`) and the records of a
//! mapping into one statement per level, whatever the page size. Built per request: they are scoped to
//! the caller, so nothing cached ever crosses users.

use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::{DataLoader, Loader};
use sea_orm::DatabaseConnection;

use crate::{
    app::AppState,
    auth::Actor,
    domain::{DoctorId, PatientId},
    entities::{doctor, patient},
    error::AppError,
    services::{
        assignments,
        audit::{AuditMeta, AuditSink, EntityKind},
        doctors, patients,
    },
};

pub type LoadError = Arc<AppError>;

pub struct DoctorsOfPatient {
    db: DatabaseConnection,
}

impl Loader<PatientId> for DoctorsOfPatient {
    type Value = Vec<doctor::Model>;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[PatientId],
    ) -> Result<HashMap<PatientId, Self::Value>, Self::Error> {
        assignments::doctors_of_patients(&self.db, keys)
            .await
            .map_err(Arc::new)
    }
}

/// Patient records leave the server only through these loaders and the patient queries, which all
/// record the READ in the audit trail.
pub struct PatientsOfDoctor {
    db: DatabaseConnection,
    actor: Actor,
    audit: AuditSink,
    meta: AuditMeta,
}

impl Loader<DoctorId> for PatientsOfDoctor {
    type Value = Vec<patient::Model>;
    type Error = LoadError;

    async fn load(&self, keys: &[DoctorId]) -> Result<HashMap<DoctorId, Self::Value>, Self::Error> {
        let found = assignments::patients_of_doctors(&self.db, &self.actor, keys)
            .await
            .map_err(Arc::new)?;
        let ids = found.values().flatten().map(|p| p.id);
        self.audit.reads(&self.meta, EntityKind::Patient, ids).await;
        Ok(found)
    }
}

pub struct PatientById {
    db: DatabaseConnection,
    actor: Actor,
    audit: AuditSink,
    meta: AuditMeta,
}

impl Loader<PatientId> for PatientById {
    type Value = patient::Model;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[PatientId],
    ) -> Result<HashMap<PatientId, Self::Value>, Self::Error> {
        let rows = patients::get_many(&self.db, &self.actor, keys)
            .await
            .map_err(Arc::new)?;
        self.audit
            .reads(&self.meta, EntityKind::Patient, rows.iter().map(|p| p.id))
            .await;
        Ok(rows.into_iter().map(|p| (PatientId(p.id), p)).collect())
    }
}

pub struct DoctorById {
    db: DatabaseConnection,
}

impl Loader<DoctorId> for DoctorById {
    type Value = doctor::Model;
    type Error = LoadError;

    async fn load(&self, keys: &[DoctorId]) -> Result<HashMap<DoctorId, Self::Value>, Self::Error> {
        let rows = doctors::get_many(&self.db, keys).await.map_err(Arc::new)?;
        Ok(rows.into_iter().map(|d| (DoctorId(d.id), d)).collect())
    }
}

/// The loaders of one request. Loaders that need the caller exist only for signed-in requests.
#[derive(Clone, Default)]
pub struct Loaders {
    pub doctors_of_patient: Option<Arc<DataLoader<DoctorsOfPatient>>>,
    pub patients_of_doctor: Option<Arc<DataLoader<PatientsOfDoctor>>>,
    pub patient_by_id: Option<Arc<DataLoader<PatientById>>>,
    pub doctor_by_id: Option<Arc<DataLoader<DoctorById>>>,
}

impl Loaders {
    pub fn for_actor(state: &AppState, actor: Actor, meta: AuditMeta) -> Self {
        let db = &state.db;
        let audit = &state.audit;
        Loaders {
            doctors_of_patient: Some(Arc::new(DataLoader::new(
                DoctorsOfPatient { db: db.clone() },
                tokio::spawn,
            ))),
            patients_of_doctor: Some(Arc::new(DataLoader::new(
                PatientsOfDoctor {
                    db: db.clone(),
                    actor,
                    audit: audit.clone(),
                    meta: meta.clone(),
                },
                tokio::spawn,
            ))),
            patient_by_id: Some(Arc::new(DataLoader::new(
                PatientById {
                    db: db.clone(),
                    actor,
                    audit: audit.clone(),
                    meta,
                },
                tokio::spawn,
            ))),
            doctor_by_id: Some(Arc::new(DataLoader::new(
                DoctorById { db: db.clone() },
                tokio::spawn,
            ))),
        }
    }
}

/// Unwraps an optional loader (absent only for anonymous requests, which the resolvers refuse first).
pub fn required<T>(loader: &Option<Arc<T>>) -> async_graphql::Result<&T> {
    loader
        .as_deref()
        .ok_or_else(|| AppError::Unauthenticated.into())
}

pub fn load_error(err: LoadError) -> async_graphql::Error {
    crate::graphql::error::to_graphql_error(&err)
}
