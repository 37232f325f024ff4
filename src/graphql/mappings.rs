//! Assignments of doctors to the caller's patients.

use async_graphql::{ComplexObject, Context, ID, Object, SimpleObject};
use sea_orm::DbBackend;

use crate::{
    auth::Actor,
    domain::{DoctorId, MappingId, PatientId},
    entities::patient_doctor,
    error::AppError,
    graphql::{
        audited_change, audited_statement_change,
        context::ContextExt,
        doctors::Doctor,
        loaders::{self, load_error},
        pagination::{MappingConnection, counted},
        parse_id,
        patients::Patient,
        scalars::DateTime,
    },
    services::{
        assignments,
        audit::{Action, EntityKind as AuditKind},
        events::{DomainEvent, EventKind},
        pagination::PageRequest,
    },
};

/// A doctor assigned to one of the signed-in user's patients.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Mapping {
    /// Stable id; pass it to `unassignDoctor`.
    pub id: ID,
    /// When the doctor was assigned.
    pub assigned_at: DateTime,
    #[graphql(skip)]
    pub patient_id: PatientId,
    #[graphql(skip)]
    pub doctor_id: DoctorId,
}

impl From<patient_doctor::Model> for Mapping {
    fn from(m: patient_doctor::Model) -> Self {
        Mapping {
            id: ID(m.id.to_string()),
            assigned_at: DateTime(m.assigned_at),
            patient_id: PatientId(m.patient_id),
            doctor_id: DoctorId(m.doctor_id),
        }
    }
}

#[ComplexObject]
impl Mapping {
    /// The patient.
    async fn patient(&self, ctx: &Context<'_>) -> async_graphql::Result<Patient> {
        let patient = ctx.loaders()?.patient(self.patient_id).await?;
        // Deleted concurrently: report it as gone rather than failing the whole list.
        patient
            .map(Patient::from)
            .ok_or_else(|| AppError::NotFound("Patient").into())
    }

    /// The doctor.
    async fn doctor(&self, ctx: &Context<'_>) -> async_graphql::Result<Doctor> {
        let doctor = ctx.loaders()?.doctor(self.doctor_id).await?;
        doctor
            .map(Doctor::from)
            .ok_or_else(|| AppError::NotFound("Doctor").into())
    }
}

#[derive(Default)]
pub struct MappingQuery;

#[Object]
impl MappingQuery {
    /// The signed-in user's assignments, oldest first, optionally for one patient and/or one doctor.
    #[graphql(complexity = "crate::graphql::limits::list_cost(first, child_complexity)")]
    async fn mappings(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, desc = "Page size, 1 to 100.")] first: Option<i32>,
        #[graphql(desc = "Cursor to continue after (an `endCursor`).")] after: Option<String>,
        #[graphql(desc = "Only assignments of this patient.")] patient_id: Option<ID>,
        #[graphql(desc = "Only assignments of this doctor.")] doctor_id: Option<ID>,
    ) -> async_graphql::Result<MappingConnection> {
        let actor = ctx.actor()?;
        let page = PageRequest::parse(first, after)?.counting(counted(ctx));
        let patient_id = patient_id
            .map(|id| parse_id("patientId", &id, PatientId::parse))
            .transpose()?;
        let doctor_id = doctor_id
            .map(|id| parse_id("doctorId", &id, DoctorId::parse))
            .transpose()?;
        let result =
            assignments::list(&ctx.app()?.reads, &actor, patient_id, doctor_id, &page).await?;
        // The page's records in one statement each, now: batching that does not depend on timing.
        let look = ctx.look_ahead();
        let wanted = |field: &str| loaders::nodes_select(&look, field);
        let patients = wanted("patient").then(|| {
            result
                .items
                .iter()
                .map(|(_, m)| PatientId(m.patient_id))
                .collect()
        });
        let doctors = wanted("doctor").then(|| {
            result
                .items
                .iter()
                .map(|(_, m)| DoctorId(m.doctor_id))
                .collect()
        });
        ctx.loaders()?
            .prefetch_mapping_records(patients, doctors)
            .await
            .map_err(load_error)?;
        Ok(MappingConnection::from_page(result, Mapping::from))
    }

    /// Doctors assigned to one of the signed-in user's patients (NOT_FOUND for a missing or foreign patient).
    async fn doctors_for_patient(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "One of your patients.")] patient_id: ID,
    ) -> async_graphql::Result<Vec<Doctor>> {
        let actor = ctx.actor()?;
        let patient_id = parse_id("patientId", &patient_id, PatientId::parse)?;
        let doctors =
            assignments::doctors_for_patient(&ctx.app()?.reads, &actor, patient_id).await?;
        Ok(doctors.into_iter().map(Doctor::from).collect())
    }
}

#[derive(Default)]
pub struct MappingMutation;

#[Object]
impl MappingMutation {
    /// Assigns a doctor to one of the signed-in user's patients; a pair can be assigned once.
    async fn assign_doctor(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "One of your patients.")] patient_id: ID,
        #[graphql(desc = "A doctor from the directory.")] doctor_id: ID,
    ) -> async_graphql::Result<Mapping> {
        let actor = ctx.actor()?;
        let patient_id = parse_id("patientId", &patient_id, PatientId::parse)?;
        let doctor_id = parse_id("doctorId", &doctor_id, DoctorId::parse)?;
        let event_of =
            |m: &patient_doctor::Model| mapping_event(&actor, EventKind::MappingAssigned, m);
        let mapping = if ctx.app()?.db.get_database_backend() == DbBackend::Postgres {
            audited_statement_change::<patient_doctor::Entity>(
                ctx,
                (Action::Create, AuditKind::Mapping, None),
                assignments::assign_statement(&actor, patient_id, doctor_id)?,
                assignments::assign_error,
                async |db| assignments::why_not_assigned(db, &actor, patient_id).await,
                event_of,
            )
            .await?
        } else {
            audited_change(
                ctx,
                Action::Create,
                AuditKind::Mapping,
                None,
                async |txn| assignments::assign(txn, &actor, patient_id, doctor_id).await,
                |m| m.id,
                event_of,
            )
            .await?
        };
        Ok(mapping.into())
    }

    /// Removes an assignment of one of the signed-in user's patients; returns its id.
    async fn unassign_doctor(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The assignment to remove.")] mapping_id: ID,
    ) -> async_graphql::Result<ID> {
        let actor = ctx.actor()?;
        let id = parse_id("mappingId", &mapping_id, MappingId::parse)?;
        let event_of =
            |m: &patient_doctor::Model| mapping_event(&actor, EventKind::MappingUnassigned, m);
        let removed = if ctx.app()?.db.get_database_backend() == DbBackend::Postgres {
            audited_statement_change::<patient_doctor::Entity>(
                ctx,
                (Action::Delete, AuditKind::Mapping, Some(id.0)),
                assignments::unassign_statement(&actor, id),
                AppError::from,
                async |_| AppError::NotFound("Mapping"),
                event_of,
            )
            .await?
        } else {
            audited_change(
                ctx,
                Action::Delete,
                AuditKind::Mapping,
                Some(id.0),
                async |txn| assignments::unassign(txn, &actor, id).await,
                |m| m.id,
                event_of,
            )
            .await?
        };
        Ok(ID(removed.id.to_string()))
    }
}

/// What subscribers hear of an assignment of one of the caller's patients changing.
fn mapping_event(actor: &Actor, kind: EventKind, mapping: &patient_doctor::Model) -> DomainEvent {
    DomainEvent {
        kind,
        owner_id: actor.user_id.0,
        patient_id: mapping.patient_id,
        doctor_id: Some(mapping.doctor_id),
        mapping_id: Some(mapping.id),
    }
}
