//! The shared doctors directory.

use async_graphql::{
    ComplexObject, Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject,
};

use crate::{
    domain::DoctorId,
    entities::doctor,
    graphql::{
        audited_create,
        context::ContextExt,
        loaders::{self, load_error},
        pagination::{DoctorConnection, counted},
        parse_id,
        patients::{Patient, SortDirection, patch},
        scalars::DateTime,
    },
    services::{
        audit::{self, Action, EntityKind},
        doctors::{self, DoctorChanges, DoctorSort, NewDoctor},
        pagination::PageRequest,
    },
};

/// What to sort doctors by.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum DoctorSortField {
    /// When the entry was created.
    CreatedAt,
    /// Last name.
    LastName,
    /// Specialization.
    Specialization,
}

/// A doctor in the shared directory.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct Doctor {
    /// Stable id.
    pub id: ID,
    /// First (given) name.
    pub first_name: String,
    /// Last (family) name.
    pub last_name: String,
    /// Medical specialization, e.g. "Cardiology".
    pub specialization: String,
    /// Contact email, unique in the directory (lower-cased).
    pub email: String,
    /// Contact phone.
    pub phone: Option<String>,
    /// When the entry was created.
    pub created_at: DateTime,
    /// When the entry was last changed.
    pub updated_at: DateTime,
    #[graphql(skip)]
    pub model_id: DoctorId,
}

impl From<doctor::Model> for Doctor {
    fn from(d: doctor::Model) -> Self {
        Doctor {
            id: ID(d.id.to_string()),
            model_id: DoctorId(d.id),
            first_name: d.first_name,
            last_name: d.last_name,
            specialization: d.specialization,
            email: d.email,
            phone: d.phone,
            created_at: DateTime(d.created_at),
            updated_at: DateTime(d.updated_at),
        }
    }
}

#[ComplexObject]
impl Doctor {
    /// "First Last".
    async fn full_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
    }

    /// The signed-in user's own patients assigned to this doctor (never anyone else's).
    #[graphql(complexity = "crate::graphql::limits::NESTED_LIST_FACTOR * child_complexity")]
    async fn patients(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Patient>> {
        let patients = ctx.loaders()?.patients_of(self.model_id).await?;
        Ok(patients.into_iter().map(Patient::from).collect())
    }
}

/// A new directory entry.
#[derive(InputObject)]
pub struct CreateDoctorInput {
    /// 1 to 100 characters.
    pub first_name: String,
    /// 1 to 100 characters.
    pub last_name: String,
    /// 1 to 100 characters.
    pub specialization: String,
    /// Unique in the directory, case-insensitively.
    pub email: String,
    /// Up to 40 characters.
    pub phone: Option<String>,
}

/// Partial update: an omitted field is left as it is; null clears `phone` (other fields cannot be null).
#[derive(InputObject)]
pub struct UpdateDoctorInput {
    /// New first name.
    pub first_name: MaybeUndefined<String>,
    /// New last name.
    pub last_name: MaybeUndefined<String>,
    /// New specialization.
    pub specialization: MaybeUndefined<String>,
    /// New email; unique in the directory.
    pub email: MaybeUndefined<String>,
    /// New phone; null clears it.
    pub phone: MaybeUndefined<String>,
}

/// Narrows the doctors list; all given conditions must hold.
#[derive(InputObject, Default)]
pub struct DoctorFilter {
    /// Case-insensitive; every word must appear in the first name, last name or specialization.
    pub search: Option<String>,
    /// Exact specialization, case-insensitive.
    pub specialization: Option<String>,
}

/// Ordering of the doctors list (ties broken by id).
#[derive(InputObject)]
pub struct DoctorOrder {
    /// The field to sort by.
    pub field: DoctorSortField,
    /// The direction.
    #[graphql(default)]
    pub direction: SortDirection,
}

#[derive(Default)]
pub struct DoctorQuery;

#[Object]
impl DoctorQuery {
    /// The doctors directory, a page at a time.
    #[graphql(complexity = "crate::graphql::limits::list_cost(first, child_complexity)")]
    async fn doctors(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, desc = "Page size, 1 to 100.")] first: Option<i32>,
        #[graphql(desc = "Cursor to continue after (an `endCursor`).")] after: Option<String>,
        #[graphql(desc = "Conditions the doctors must meet.")] filter: Option<DoctorFilter>,
        #[graphql(desc = "Sort order; by last name when omitted.")] order_by: Option<DoctorOrder>,
    ) -> async_graphql::Result<DoctorConnection> {
        ctx.actor()?;
        let page = PageRequest::parse(first, after)?.counting(counted(ctx));
        let filter = filter.unwrap_or_default();
        let filter = doctors::DoctorFilter {
            search: filter.search,
            specialization: filter.specialization,
        };
        let (sort, descending) = match order_by {
            None => (DoctorSort::LastName, false),
            Some(order) => (
                match order.field {
                    DoctorSortField::CreatedAt => DoctorSort::CreatedAt,
                    DoctorSortField::LastName => DoctorSort::LastName,
                    DoctorSortField::Specialization => DoctorSort::Specialization,
                },
                order.direction == SortDirection::Desc,
            ),
        };
        let result = doctors::list(&ctx.app()?.reads, filter, sort, descending, &page).await?;
        if loaders::nodes_select(&ctx.look_ahead(), "patients") {
            let ids = result.items.iter().map(|(_, d)| DoctorId(d.id)).collect();
            ctx.loaders()?
                .prefetch_patients_of(ids)
                .await
                .map_err(load_error)?;
        }
        Ok(DoctorConnection::from_page(result, Doctor::from))
    }

    /// One doctor; null when there is none with this id.
    async fn doctor(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The doctor's id.")] id: ID,
    ) -> async_graphql::Result<Option<Doctor>> {
        ctx.actor()?;
        let id = parse_id("id", &id, DoctorId::parse)?;
        Ok(doctors::get(&ctx.app()?.reads, id).await?.map(Doctor::from))
    }
}

#[derive(Default)]
pub struct DoctorMutation;

#[Object]
impl DoctorMutation {
    /// Adds a doctor to the directory; the signed-in user becomes its creator.
    async fn create_doctor(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new directory entry.")] input: CreateDoctorInput,
    ) -> async_graphql::Result<Doctor> {
        let actor = ctx.actor()?;
        let input = NewDoctor {
            first_name: input.first_name,
            last_name: input.last_name,
            specialization: input.specialization,
            email: input.email,
            phone: input.phone,
        };
        let id = uuid::Uuid::now_v7();
        let record = doctors::new_record(&actor, id, input)?;
        let created = audited_create(
            ctx,
            EntityKind::Doctor,
            id,
            record,
            None,
            Some(doctors::EMAIL_TAKEN),
            None,
        )
        .await?;
        Ok(created.into())
    }

    /// Changes a doctor; only its creator or an admin may.
    async fn update_doctor(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The doctor to change.")] id: ID,
        #[graphql(desc = "The fields to change.")] input: UpdateDoctorInput,
    ) -> async_graphql::Result<Doctor> {
        let actor = ctx.actor()?;
        let id = parse_id("id", &id, DoctorId::parse)?;
        let changes = DoctorChanges {
            first_name: patch(input.first_name, |v| v),
            last_name: patch(input.last_name, |v| v),
            specialization: patch(input.specialization, |v| v),
            email: patch(input.email, |v| v),
            phone: patch(input.phone, |v| v),
        };
        let updated = audit::in_transaction(
            &ctx.app()?.db,
            &ctx.meta(),
            Action::Update,
            EntityKind::Doctor,
            Some(id.0),
            async |txn| doctors::update(txn, &actor, id, changes).await,
            |d| d.id,
        )
        .await?;
        Ok(updated.into())
    }

    /// Removes a doctor and all its assignments; only its creator or an admin may. Returns its id.
    async fn delete_doctor(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The doctor to remove.")] id: ID,
    ) -> async_graphql::Result<ID> {
        let actor = ctx.actor()?;
        let id = parse_id("id", &id, DoctorId::parse)?;
        let deleted = audit::in_transaction(
            &ctx.app()?.db,
            &ctx.meta(),
            Action::Delete,
            EntityKind::Doctor,
            Some(id.0),
            async |txn| doctors::delete(txn, &actor, id).await,
            |id| id.0,
        )
        .await?;
        Ok(ID(deleted.to_string()))
    }
}
