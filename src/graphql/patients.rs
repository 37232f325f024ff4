//! Patients: the caller's own records, with their assigned doctors.

use async_graphql::{
    ComplexObject, Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject,
};
use sea_orm::DbBackend;

use crate::{
    auth::Actor,
    domain::{self, PatientId, age_on},
    entities::patient,
    error::AppError,
    graphql::{
        audited_change, audited_create, audited_read_then_change, audited_statement_change,
        context::ContextExt,
        doctors::Doctor,
        loaders::{self, load_error},
        pagination::{PatientConnection, counted},
        parse_id,
        scalars::{Date, DateTime},
    },
    services::{
        audit::{self, Action, EntityKind},
        events::{DomainEvent, EventKind},
        pagination::PageRequest,
        patients::{self, NewPatient, Patch, PatientChanges, PatientSort},
    },
};

/// Administrative gender (FHIR AdministrativeGender).
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Gender {
    /// Male.
    Male,
    /// Female.
    Female,
    /// Other.
    Other,
    /// Unknown.
    Unknown,
}

impl From<Gender> for domain::Gender {
    fn from(g: Gender) -> Self {
        match g {
            Gender::Male => domain::Gender::Male,
            Gender::Female => domain::Gender::Female,
            Gender::Other => domain::Gender::Other,
            Gender::Unknown => domain::Gender::Unknown,
        }
    }
}

impl From<domain::Gender> for Gender {
    fn from(g: domain::Gender) -> Self {
        match g {
            domain::Gender::Male => Gender::Male,
            domain::Gender::Female => Gender::Female,
            domain::Gender::Other => Gender::Other,
            domain::Gender::Unknown => Gender::Unknown,
        }
    }
}

/// Sort direction of a list.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum SortDirection {
    /// Smallest first.
    #[default]
    Asc,
    /// Largest first.
    Desc,
}

/// What to sort patients by.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum PatientSortField {
    /// When the record was created.
    CreatedAt,
    /// Last name.
    LastName,
    /// Age (from date of birth, or the age given).
    Age,
}

/// A patient of the signed-in user.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Patient {
    /// Stable id.
    pub id: ID,
    /// First (given) name.
    pub first_name: String,
    /// Last (family) name.
    pub last_name: String,
    /// Date of birth, when known exactly.
    pub date_of_birth: Option<Date>,
    /// Administrative gender.
    pub gender: Gender,
    /// Postal address.
    pub address: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// Free-text notes.
    pub notes: Option<String>,
    /// When the record was created.
    pub created_at: DateTime,
    /// When the record was last changed.
    pub updated_at: DateTime,
    /// Increases with every change; pass it as `expectedVersion` to `updatePatient` so a colleague's
    /// concurrent change is never silently overwritten.
    pub version: i32,
    #[graphql(skip)]
    pub model: patient::Model,
}

impl From<patient::Model> for Patient {
    fn from(p: patient::Model) -> Self {
        Patient {
            id: ID(p.id.to_string()),
            first_name: p.first_name.clone(),
            last_name: p.last_name.clone(),
            date_of_birth: (!p.birth_date_estimated).then_some(Date(p.birth_date)),
            gender: domain::Gender::parse(&p.gender)
                .unwrap_or(domain::Gender::Unknown)
                .into(),
            address: p.address.clone(),
            phone: p.phone.clone(),
            notes: p.notes.clone(),
            created_at: DateTime(p.created_at),
            updated_at: DateTime(p.updated_at),
            version: p.version,
            model: p,
        }
    }
}

#[ComplexObject]
impl Patient {
    /// "First Last".
    async fn full_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
    }

    /// Age in completed years: from the date of birth, or from the age given when only that is known
    /// (it advances with time).
    async fn age(&self) -> Option<i32> {
        Some(age_on(
            self.model.birth_date,
            chrono::Utc::now().date_naive(),
        ))
    }

    /// Who read or changed this patient's record, newest first (the owner's view of the audit trail).
    #[graphql(complexity = "crate::graphql::limits::list_cost(first, child_complexity)")]
    async fn audit_trail(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, desc = "Page size, 1 to 100.")] first: Option<i32>,
        #[graphql(desc = "Cursor to continue after (an `endCursor`).")] after: Option<String>,
    ) -> async_graphql::Result<crate::graphql::pagination::AuditEventConnection> {
        let actor = ctx.actor()?;
        let page = PageRequest::parse(first, after)?.counting(counted(ctx));
        let id = PatientId(self.model.id);
        let result = audit::list_for_patient(&ctx.app()?.reads, &actor, id, &page).await?;
        Ok(crate::graphql::pagination::AuditEventConnection::from_page(
            result,
            crate::graphql::audit::AuditEvent::from,
        ))
    }

    /// Doctors assigned to this patient, oldest assignment first.
    #[graphql(complexity = "crate::graphql::limits::NESTED_LIST_FACTOR * child_complexity")]
    async fn doctors(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Doctor>> {
        let doctors = ctx.loaders()?.doctors_of(PatientId(self.model.id)).await?;
        Ok(doctors.into_iter().map(Doctor::from).collect())
    }
}

/// A new patient.
#[derive(InputObject)]
pub struct CreatePatientInput {
    /// 1 to 100 characters.
    pub first_name: String,
    /// 1 to 100 characters.
    pub last_name: String,
    /// Age in years, 0 to 150; required unless dateOfBirth is given (and must match it when both are).
    pub age: Option<i32>,
    /// Date of birth; not in the future.
    pub date_of_birth: Option<Date>,
    /// Administrative gender.
    pub gender: Gender,
    /// Postal address, up to 500 characters.
    pub address: Option<String>,
    /// Phone number, up to 40 characters.
    pub phone: Option<String>,
    /// Free-text notes, up to 10,000 characters.
    pub notes: Option<String>,
}

/// Partial update: an omitted field is left as it is; an explicit null clears an optional field.
#[derive(InputObject)]
pub struct UpdatePatientInput {
    /// New first name (null is not allowed).
    pub first_name: MaybeUndefined<String>,
    /// New last name (null is not allowed).
    pub last_name: MaybeUndefined<String>,
    /// New age; must agree with an exact date of birth when one is kept.
    pub age: MaybeUndefined<i32>,
    /// New date of birth; null clears it (an age must then be given).
    pub date_of_birth: MaybeUndefined<Date>,
    /// New gender (null is not allowed).
    pub gender: MaybeUndefined<Gender>,
    /// New address; null clears it.
    pub address: MaybeUndefined<String>,
    /// New phone; null clears it.
    pub phone: MaybeUndefined<String>,
    /// New notes; null clears them.
    pub notes: MaybeUndefined<String>,
}

pub(crate) fn patch<T, U>(value: MaybeUndefined<T>, convert: impl FnOnce(T) -> U) -> Patch<U> {
    match value {
        MaybeUndefined::Undefined => Patch::Keep,
        MaybeUndefined::Null => Patch::Clear,
        MaybeUndefined::Value(v) => Patch::Set(convert(v)),
    }
}

/// Narrows the patients list; all given conditions must hold.
#[derive(InputObject, Default)]
pub struct PatientFilter {
    /// Case-insensitive; every word must appear in the first or last name.
    pub search: Option<String>,
    /// Only this gender.
    pub gender: Option<Gender>,
    /// Only patients at least this old.
    pub min_age: Option<i32>,
    /// Only patients at most this old.
    pub max_age: Option<i32>,
}

/// Ordering of the patients list (ties broken by id).
#[derive(InputObject)]
pub struct PatientOrder {
    /// The field to sort by.
    pub field: PatientSortField,
    /// The direction.
    #[graphql(default)]
    pub direction: SortDirection,
}

#[derive(Default)]
pub struct PatientQuery;

#[Object]
impl PatientQuery {
    /// The signed-in user's patients, a page at a time.
    #[graphql(complexity = "crate::graphql::limits::list_cost(first, child_complexity)")]
    async fn patients(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, desc = "Page size, 1 to 100.")] first: Option<i32>,
        #[graphql(desc = "Cursor to continue after (an `endCursor`).")] after: Option<String>,
        #[graphql(desc = "Conditions the patients must meet.")] filter: Option<PatientFilter>,
        #[graphql(desc = "Sort order; newest first when omitted.")] order_by: Option<PatientOrder>,
    ) -> async_graphql::Result<PatientConnection> {
        let actor = ctx.actor()?;
        let page = PageRequest::parse(first, after)?.counting(counted(ctx));
        let filter = filter.unwrap_or_default();
        let filter = patients::PatientFilter {
            search: filter.search,
            gender: filter.gender.map(Into::into),
            min_age: filter.min_age,
            max_age: filter.max_age,
        };
        let (sort, descending) = match order_by {
            None => (PatientSort::CreatedAt, true),
            Some(order) => (
                match order.field {
                    PatientSortField::CreatedAt => PatientSort::CreatedAt,
                    PatientSortField::LastName => PatientSort::LastName,
                    PatientSortField::Age => PatientSort::Age,
                },
                order.direction == SortDirection::Desc,
            ),
        };
        let app = ctx.app()?;
        let result = patients::list(&app.reads, &actor, filter, sort, descending, &page).await?;
        if loaders::nodes_select(&ctx.look_ahead(), "doctors") {
            let ids = result.items.iter().map(|(_, p)| PatientId(p.id)).collect();
            ctx.loaders()?
                .prefetch_doctors_of(ids)
                .await
                .map_err(load_error)?;
        }
        let ids = result.items.iter().map(|(_, p)| p.id);
        app.audit.reads(&ctx.meta(), EntityKind::Patient, ids).await;
        Ok(PatientConnection::from_page(result, Patient::from))
    }

    /// One of the signed-in user's patients; null when it does not exist or is someone else's.
    async fn patient(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The patient's id.")] id: ID,
    ) -> async_graphql::Result<Option<Patient>> {
        let actor = ctx.actor()?;
        let id: PatientId = parse_id("id", &id, PatientId::parse)?;
        let app = ctx.app()?;
        let found = match &app.coalesced {
            Some(coalesced) => patients::get_coalesced(&coalesced.patients, &actor, id).await?,
            None => patients::get(&app.reads, &actor, id).await?,
        };
        if let Some(patient) = &found {
            app.audit
                .reads(&ctx.meta(), EntityKind::Patient, [patient.id])
                .await;
        }
        Ok(found.map(Patient::from))
    }
}

#[derive(Default)]
pub struct PatientMutation;

#[Object]
impl PatientMutation {
    /// Adds a patient owned by the signed-in user.
    async fn create_patient(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new patient.")] input: CreatePatientInput,
    ) -> async_graphql::Result<Patient> {
        let actor = ctx.actor()?;
        let input = NewPatient {
            first_name: input.first_name,
            last_name: input.last_name,
            age: input.age,
            date_of_birth: input.date_of_birth.map(|d| d.0),
            gender: input.gender.into(),
            address: input.address,
            phone: input.phone,
            notes: input.notes,
        };
        let id = uuid::Uuid::now_v7();
        let record = patients::new_record(&actor, id, input)?;
        let event = patient_event(&actor, EventKind::PatientCreated, id);
        let batched = ctx.app()?.coalesced.as_ref().map(|c| &c.patient_creates);
        let created = audited_create(
            ctx,
            EntityKind::Patient,
            id,
            record,
            Some(event),
            None,
            batched,
        )
        .await?;
        Ok(created.into())
    }

    /// Changes one of the signed-in user's patients. With `expectedVersion`, the change applies only if
    /// the record is still at that version (CONFLICT otherwise).
    async fn update_patient(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The patient to change.")] id: ID,
        #[graphql(desc = "The fields to change.")] input: UpdatePatientInput,
        #[graphql(desc = "The `version` the client last read; omit to update unconditionally.")]
        expected_version: Option<i32>,
    ) -> async_graphql::Result<Patient> {
        let actor = ctx.actor()?;
        let id: PatientId = parse_id("id", &id, PatientId::parse)?;
        let changes = PatientChanges {
            first_name: patch(input.first_name, |v| v),
            last_name: patch(input.last_name, |v| v),
            age: patch(input.age, |v| v),
            date_of_birth: patch(input.date_of_birth, |d| d.0),
            gender: patch(input.gender, Into::into),
            address: patch(input.address, |v| v),
            phone: patch(input.phone, |v| v),
            notes: patch(input.notes, |v| v),
            expected_version,
        };
        let event = |p: &patient::Model| patient_event(&actor, EventKind::PatientUpdated, p.id);
        let app = ctx.app()?;
        if app.db.get_database_backend() == DbBackend::Postgres
            && let Some(updated) = audited_read_then_change::<patient::Entity, _, _>(
                ctx,
                (Action::Update, EntityKind::Patient, Some(id.0)),
                OPTIMISTIC_UPDATE_ATTEMPTS,
                || patients::update_statement(&app.reads, &actor, id, changes.clone()),
                event,
            )
            .await?
        {
            return Ok(updated.into());
        }
        let updated = audited_change(
            ctx,
            Action::Update,
            EntityKind::Patient,
            Some(id.0),
            async |txn| patients::update(txn, &actor, id, changes).await,
            |p| p.id,
            event,
        )
        .await?;
        Ok(updated.into())
    }

    /// Deletes one of the signed-in user's patients and its doctor assignments; returns its id.
    async fn delete_patient(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The patient to delete.")] id: ID,
    ) -> async_graphql::Result<ID> {
        let actor = ctx.actor()?;
        let id: PatientId = parse_id("id", &id, PatientId::parse)?;
        let deleted = if ctx.app()?.db.get_database_backend() == DbBackend::Postgres {
            audited_statement_change::<patient::Entity>(
                ctx,
                (Action::Delete, EntityKind::Patient, Some(id.0)),
                patients::delete_statement(&actor, id),
                AppError::from,
                async |_| AppError::NotFound("Patient"),
                |p| patient_event(&actor, EventKind::PatientDeleted, p.id),
            )
            .await?
            .id
        } else {
            audited_change(
                ctx,
                Action::Delete,
                EntityKind::Patient,
                Some(id.0),
                async |txn| patients::delete(txn, &actor, id).await,
                |id| id.0,
                |id| patient_event(&actor, EventKind::PatientDeleted, id.0),
            )
            .await?
            .0
        };
        Ok(ID(deleted.to_string()))
    }
}

/// Unlocked tries of an update on PostgreSQL before it takes the row lock: each one lost to a concurrent
/// change of the same patient costs a read and a statement, and three in a row are rare.
const OPTIMISTIC_UPDATE_ATTEMPTS: usize = 3;

/// What subscribers hear of a change of one of the caller's patients.
fn patient_event(actor: &Actor, kind: EventKind, patient_id: uuid::Uuid) -> DomainEvent {
    DomainEvent {
        kind,
        owner_id: actor.user_id.0,
        patient_id,
        doctor_id: None,
        mapping_id: None,
    }
}
