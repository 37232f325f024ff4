//! The GraphQL API: schema assembly, per-resource resolvers, error mapping and the HTTP handler.

pub mod audit;
pub mod context;
pub mod documents;
pub mod error;
pub mod handler;
pub mod limits;
pub mod loaders;
pub mod pagination;
pub mod query_string;
pub mod response_cache;
pub mod scalars;
pub mod subscriptions;

pub mod doctors;
pub mod mappings;
pub mod patients;
pub mod users;

use async_graphql::{
    ID, MergedObject, Schema, SchemaBuilder,
    extensions::apollo_persisted_queries::{ApolloPersistedQueries, LruCacheStorage},
};

use std::sync::Arc;

use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait,
    IntoActiveModel, sea_query::SubQueryStatement,
};

use crate::{
    app::AppState,
    batched_creates::BatchedCreates,
    error::{AppError, AppResult},
    graphql::{
        context::ContextExt,
        documents::{DocumentCache, ShapeLimits},
    },
    reads::ReadConnection,
    services::{
        audit::{
            Action, EntityKind, audited_statement, in_transaction, insert_in_one_statement,
            record_refusal,
        },
        events::DomainEvent,
    },
};

/// The root query: every field requires a signed-in caller.
#[derive(MergedObject, Default)]
pub struct Query(
    users::UserQuery,
    patients::PatientQuery,
    doctors::DoctorQuery,
    mappings::MappingQuery,
    audit::AuditQuery,
);

/// The root mutation: all but register, login, refreshToken and logout require a signed-in caller.
#[derive(MergedObject, Default)]
pub struct Mutation(
    users::UserMutation,
    patients::PatientMutation,
    doctors::DoctorMutation,
    mappings::MappingMutation,
);

/// The APQ document store (async-graphql's bounded LRU), named here so the rest of the crate need not
/// import async-graphql.
pub type PersistedQueryStore = LruCacheStorage;

/// Documents kept for automatic persisted queries (least recently used are dropped).
pub const PERSISTED_QUERY_CACHE: usize = 1_000;

pub type AppSchema = Schema<Query, Mutation, subscriptions::Subscription>;

/// The schema with no data attached, so the SDL can be exported without a database.
pub fn schema_builder() -> SchemaBuilder<Query, Mutation, subscriptions::Subscription> {
    Schema::build(
        Query::default(),
        Mutation::default(),
        subscriptions::Subscription,
    )
}

/// Depth allowed to schema tooling's introspection query (GraphiQL's and codegen's nest about 14 deep):
/// it reads only the schema, which is public wherever introspection is enabled.
pub const INTROSPECTION_MAX_DEPTH: usize = 20;

/// The served schema: limits from the configuration, introspection and suggestions only where allowed,
/// and two extensions: Apollo persisted queries (`persisted`, which the handler reads too: a hashed GET
/// must be a query) and the token and alias limits for WebSocket messages (`documents`).
pub fn build_schema(
    state: AppState,
    persisted: PersistedQueryStore,
    documents: Arc<DocumentCache>,
) -> AppSchema {
    let depth = state.config.limits.max_depth;
    extended_schema(state, depth, persisted, documents)
}

/// The same schema without extensions, for HTTP requests that carry no persisted-query hash: the
/// handler has checked their documents against the token and alias limits already. With any extension
/// installed async-graphql looks up every field's type and runs the extension chain around it, about a
/// tenth of the server's CPU for a 20-patient list.
pub fn build_plain_schema(state: AppState) -> AppSchema {
    let depth = state.config.limits.max_depth;
    schema_with_limits(&state, depth).data(state).finish()
}

/// The same schema for documents that only introspect, with a depth limit their standard query fits.
pub fn build_introspection_schema(
    state: AppState,
    persisted: PersistedQueryStore,
    documents: Arc<DocumentCache>,
) -> AppSchema {
    let depth = state.config.limits.max_depth.max(INTROSPECTION_MAX_DEPTH);
    extended_schema(state, depth, persisted, documents)
}

/// The bounded store of automatic persisted queries (Apollo APQ): clients send a hash instead of a
/// known document. Bounded, so unique hashes cannot grow memory without limit.
pub fn persisted_query_storage() -> PersistedQueryStore {
    LruCacheStorage::new(PERSISTED_QUERY_CACHE)
}

type AppSchemaBuilder = SchemaBuilder<Query, Mutation, subscriptions::Subscription>;

fn schema_with_limits(state: &AppState, max_depth: usize) -> AppSchemaBuilder {
    let limits = &state.config.limits;
    let builder = schema_builder()
        .limit_depth(max_depth)
        .limit_complexity(limits.max_complexity)
        .limit_recursive_depth(limits.max_recursion)
        .limit_directives(limits.max_directives);
    if state.config.introspection {
        builder
    } else {
        builder.disable_introspection().disable_suggestions()
    }
}

fn extended_schema(
    state: AppState,
    max_depth: usize,
    persisted: PersistedQueryStore,
    documents: Arc<DocumentCache>,
) -> AppSchema {
    schema_with_limits(&state, max_depth)
        .extension(ApolloPersistedQueries::new(persisted))
        .extension(ShapeLimits(documents))
        .data(state)
        .finish()
}

/// The schema in SDL, as committed in `schema.graphql`.
pub fn sdl() -> String {
    schema_builder().finish().sdl()
}

/// A change of the caller's data: in one transaction with its audit row (`audit::in_transaction`); the
/// event subscribers get is sent once the change has committed.
pub(crate) async fn audited_change<T>(
    ctx: &async_graphql::Context<'_>,
    action: Action,
    kind: EntityKind,
    target: Option<uuid::Uuid>,
    change: impl AsyncFnOnce(&DatabaseTransaction) -> AppResult<T>,
    id_of: impl Fn(&T) -> uuid::Uuid,
    event_of: impl Fn(&T) -> DomainEvent,
) -> async_graphql::Result<T> {
    let app = ctx.app()?;
    let value = in_transaction(
        &app.db,
        &ctx.meta(),
        action,
        kind,
        target,
        async |txn| change(txn).await,
        id_of,
    )
    .await?;
    app.events.committed(event_of(&value));
    Ok(value)
}

/// On PostgreSQL: a change of the caller's data that is one statement (`change`, returning the changed
/// row) with its audit row (`audit::audited_statement`), then its event. A database error goes through
/// `failed`; when the statement changed nothing, `refused` says why, and a refusal of a known `target`
/// is recorded as a FAILURE, as `audited_change` does.
pub(crate) async fn audited_statement_change<E: EntityTrait>(
    ctx: &async_graphql::Context<'_>,
    (action, kind, target): (Action, EntityKind, Option<uuid::Uuid>),
    change: impl Into<SubQueryStatement>,
    failed: impl Fn(DbErr) -> AppError,
    refused: impl AsyncFnOnce(&ReadConnection) -> AppError,
    event_of: impl Fn(&E::Model) -> DomainEvent,
) -> async_graphql::Result<E::Model> {
    let app = ctx.app()?;
    let meta = ctx.meta();
    match audited_statement::<E>(&app.reads, &meta, action, kind, change)
        .await
        .map_err(failed)?
    {
        Some(changed) => {
            app.events.committed(event_of(&changed));
            Ok(changed)
        }
        None => {
            let error = refused(&app.reads).await;
            record_refusal(&app.db, &meta, action, kind, target, &error).await?;
            Err(error.into())
        }
    }
}

/// On PostgreSQL: a change worked out from the record as it is stored (`prepare` reads it, without a
/// lock, and returns the statement), applied with its audit row by one statement
/// (`audit::audited_statement`) that changes the record only while it is still as read, then its event.
/// Two round trips instead of a locking transaction's five. When someone else changed the record in
/// between, it is read again, up to `attempts` times; `None` then, and the caller takes the locking way.
/// A refusal by `prepare` (not found, a conflict) of a known `target` is recorded as a FAILURE, as
/// `audited_change` does.
pub(crate) async fn audited_read_then_change<E, S, F>(
    ctx: &async_graphql::Context<'_>,
    (action, kind, target): (Action, EntityKind, Option<uuid::Uuid>),
    attempts: usize,
    prepare: impl Fn() -> F,
    event_of: impl Fn(&E::Model) -> DomainEvent,
) -> async_graphql::Result<Option<E::Model>>
where
    E: EntityTrait,
    S: Into<SubQueryStatement>,
    F: Future<Output = AppResult<S>>,
{
    let app = ctx.app()?;
    let meta = ctx.meta();
    for _ in 0..attempts {
        let statement = match prepare().await {
            Ok(statement) => statement,
            Err(error) => {
                record_refusal(&app.db, &meta, action, kind, target, &error).await?;
                return Err(error.into());
            }
        };
        if let Some(changed) = audited_statement::<E>(&app.reads, &meta, action, kind, statement)
            .await
            .map_err(AppError::from)?
        {
            app.events.committed(event_of(&changed));
            return Ok(Some(changed));
        }
    }
    Ok(None)
}

/// A new record (whose id is `id`) with its CREATE audit row, then (when given) the event subscribers
/// get. On PostgreSQL the record and its row are one statement on the direct pool
/// (`audit::insert_in_one_statement`); on SQLite they are `in_transaction`'s transaction. Neither runs
/// `ActiveModelBehavior` hooks beyond the defaults, and no entity defines any. A unique violation is
/// CONFLICT with `taken` when given. `batched`, on PostgreSQL, shares that statement with concurrent
/// creates of the same entity (src/batched_creates.rs).
pub(crate) async fn audited_create<A>(
    ctx: &async_graphql::Context<'_>,
    kind: EntityKind,
    id: uuid::Uuid,
    record: A,
    event: Option<DomainEvent>,
    taken: Option<&'static str>,
    batched: Option<&BatchedCreates<A>>,
) -> async_graphql::Result<<A::Entity as EntityTrait>::Model>
where
    A: ActiveModelTrait + ActiveModelBehavior + Send + 'static,
    <A::Entity as EntityTrait>::Model: IntoActiveModel<A> + Send + Sync + 'static,
{
    let app = ctx.app()?;
    let refused = |error: DbErr| match taken {
        Some(message) => AppError::from_db(error, message),
        None => AppError::from(error),
    };
    let value = if app.db.get_database_backend() == DbBackend::Postgres {
        let meta = ctx.meta();
        let inserted = match batched {
            Some(batched) => batched.insert(&meta, kind, id, record).await,
            None => insert_in_one_statement(&app.reads, &meta, kind, record).await,
        };
        inserted
            .map_err(refused)?
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("the insert returned no row")))?
    } else {
        in_transaction(
            &app.db,
            &ctx.meta(),
            Action::Create,
            kind,
            None,
            async |txn| record.insert(txn).await.map_err(refused),
            |_| id,
        )
        .await?
    };
    if let Some(event) = event {
        app.events.committed(event);
    }
    Ok(value)
}

/// Parses a client-supplied id, reporting a malformed one as BAD_USER_INPUT on `field`.
pub(crate) fn parse_id<T>(
    field: &str,
    id: &ID,
    parse: fn(&str) -> Result<T, String>,
) -> async_graphql::Result<T> {
    parse(id.as_str()).map_err(|reason| AppError::field(field, reason).into())
}
