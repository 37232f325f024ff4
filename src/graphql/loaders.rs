//! DataLoaders that batch the nested lists (`Patient.doctors`, `Doctor.patients`) and the records of a
//! mapping into one statement per level, whatever the page size. Built per request: they are scoped to
//! the caller, so nothing cached ever crosses users.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use crate::{
    app::AppState,
    auth::Actor,
    domain::{DoctorId, PatientId},
    entities::{doctor, patient},
    error::AppError,
    reads::ReadConnection,
    services::{
        assignments,
        audit::{AuditMeta, AuditSink, EntityKind},
        doctors, patients,
    },
};
use async_graphql::dataloader::{DataLoader, Loader};

pub type LoadError = Arc<AppError>;

pub struct DoctorsOfPatient {
    db: ReadConnection,
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
    db: ReadConnection,
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
    db: ReadConnection,
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
    db: ReadConnection,
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
    prefetched_doctors: Prefetched<PatientId, doctor::Model>,
    prefetched_patients: Prefetched<DoctorId, patient::Model>,
    patients_by_id: ByIdPrefetched<PatientId, patient::Model>,
    doctors_by_id: ByIdPrefetched<DoctorId, doctor::Model>,
}

impl Loaders {
    pub fn for_actor(state: &AppState, actor: Actor, meta: AuditMeta) -> Self {
        let db = &state.reads;
        let audit = &state.audit;
        Loaders {
            doctors_of_patient: Some(batched(DoctorsOfPatient { db: db.clone() })),
            patients_of_doctor: Some(batched(PatientsOfDoctor {
                db: db.clone(),
                actor,
                audit: audit.clone(),
                meta: meta.clone(),
            })),
            patient_by_id: Some(batched(PatientById {
                db: db.clone(),
                actor,
                audit: audit.clone(),
                meta,
            })),
            doctor_by_id: Some(batched(DoctorById { db: db.clone() })),
            prefetched_doctors: Prefetched::default(),
            prefetched_patients: Prefetched::default(),
            patients_by_id: ByIdPrefetched::default(),
            doctors_by_id: ByIdPrefetched::default(),
        }
    }
}

/// A loader with async-graphql's batching delay (1 ms: shorter delays split batches in debug builds, and
/// tests/dataloader.rs would catch it). The list resolvers load their page's children ahead instead
/// (`prefetch_doctors_of`), so the lists clients ask for most never wait for the delay.
fn batched<T: Send + Sync + 'static>(loader: T) -> Arc<DataLoader<T>> {
    Arc::new(DataLoader::new(loader, tokio::spawn))
}

type Prefetched<K, V> = Arc<Mutex<HashMap<K, Vec<V>>>>;

/// Records a list resolver loaded ahead by id (a mapping's patient and doctor). Several rows of one page
/// may name the same record, so these are read, not taken; they live as long as the request.
type ByIdPrefetched<K, V> = Arc<Mutex<HashMap<K, V>>>;

/// A record by id: what a list loaded ahead, or else through the batching loader.
async fn by_id<K, V, L>(
    prefetched: &ByIdPrefetched<K, V>,
    loader: &Option<Arc<DataLoader<L>>>,
    id: K,
) -> async_graphql::Result<Option<V>>
where
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    L: Loader<K, Value = V, Error = LoadError>,
{
    if let Some(found) = prefetched.lock().ok().and_then(|p| p.get(&id).cloned()) {
        return Ok(Some(found));
    }
    required(loader)?.load_one(id).await.map_err(load_error)
}

/// Takes what a list resolver loaded ahead for `key`; each entry is used once, so a later field of the
/// same request asks the database again rather than reading something older.
fn take<K: std::hash::Hash + Eq, V>(prefetched: &Prefetched<K, V>, key: &K) -> Option<Vec<V>> {
    prefetched.lock().ok()?.remove(key)
}

impl Loaders {
    /// Loads the doctors of a page of patients now, in one statement, for the page's `doctors` resolvers:
    /// batching that does not depend on timing, and no delay, for a list whose selection asks for them.
    pub async fn prefetch_doctors_of(&self, patients: Vec<PatientId>) -> Result<(), LoadError> {
        let Some(loader) = &self.doctors_of_patient else {
            return Ok(());
        };
        let mut found = loader.loader().load(&patients).await?;
        if let Ok(mut prefetched) = self.prefetched_doctors.lock() {
            for id in patients {
                let doctors = found.remove(&id).unwrap_or_default();
                prefetched.insert(id, doctors);
            }
        }
        Ok(())
    }

    /// The same for the (viewer's) patients of a page of doctors.
    pub async fn prefetch_patients_of(&self, doctors: Vec<DoctorId>) -> Result<(), LoadError> {
        let Some(loader) = &self.patients_of_doctor else {
            return Ok(());
        };
        let mut found = loader.loader().load(&doctors).await?;
        if let Ok(mut prefetched) = self.prefetched_patients.lock() {
            for id in doctors {
                let patients = found.remove(&id).unwrap_or_default();
                prefetched.insert(id, patients);
            }
        }
        Ok(())
    }

    /// Loads the patients and doctors a page of mappings names, one statement each, for the page's
    /// `patient` and `doctor` resolvers (only the parts the selection asks for).
    pub async fn prefetch_mapping_records(
        &self,
        patients: Option<Vec<PatientId>>,
        doctors: Option<Vec<DoctorId>>,
    ) -> Result<(), LoadError> {
        if let (Some(ids), Some(loader)) = (patients, &self.patient_by_id) {
            let found = loader.loader().load(&ids).await?;
            if let Ok(mut prefetched) = self.patients_by_id.lock() {
                prefetched.extend(found);
            }
        }
        if let (Some(ids), Some(loader)) = (doctors, &self.doctor_by_id) {
            let found = loader.loader().load(&ids).await?;
            if let Ok(mut prefetched) = self.doctors_by_id.lock() {
                prefetched.extend(found);
            }
        }
        Ok(())
    }

    /// One of the viewer's patients: prefetched by a list, or through the batching loader.
    pub async fn patient(&self, id: PatientId) -> async_graphql::Result<Option<patient::Model>> {
        by_id(&self.patients_by_id, &self.patient_by_id, id).await
    }

    /// A doctor: prefetched by a list, or through the batching loader.
    pub async fn doctor(&self, id: DoctorId) -> async_graphql::Result<Option<doctor::Model>> {
        by_id(&self.doctors_by_id, &self.doctor_by_id, id).await
    }

    /// The doctors of `patient`: prefetched by its list, or through the batching loader.
    pub async fn doctors_of(
        &self,
        patient: PatientId,
    ) -> async_graphql::Result<Vec<doctor::Model>> {
        if let Some(doctors) = take(&self.prefetched_doctors, &patient) {
            return Ok(doctors);
        }
        let loader = required(&self.doctors_of_patient)?;
        Ok(loader
            .load_one(patient)
            .await
            .map_err(load_error)?
            .unwrap_or_default())
    }

    /// The viewer's patients of `doctor`: prefetched by its list, or through the batching loader.
    pub async fn patients_of(
        &self,
        doctor: DoctorId,
    ) -> async_graphql::Result<Vec<patient::Model>> {
        if let Some(patients) = take(&self.prefetched_patients, &doctor) {
            return Ok(patients);
        }
        let loader = required(&self.patients_of_doctor)?;
        Ok(loader
            .load_one(doctor)
            .await
            .map_err(load_error)?
            .unwrap_or_default())
    }
}

/// True when the selection of a connection asks for `field` on its nodes (through `nodes` or `edges`).
pub fn nodes_select(look: &async_graphql::Lookahead<'_>, field: &str) -> bool {
    look.field("nodes").field(field).exists()
        || look.field("edges").field("node").field(field).exists()
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
