//! The audit trail, read-only: `auditEvents` for admins, `Patient.auditTrail` for a patient's owner.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};

use crate::{
    entities::audit_event,
    error::AppError,
    graphql::{
        context::ContextExt,
        pagination::{AuditEventConnection, counted},
        parse_id,
        scalars::DateTime,
    },
    services::{
        audit::{self, AuditFilter, EntityKind},
        pagination::PageRequest,
    },
};

/// What was done.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum AuditAction {
    /// A record was created.
    Create,
    /// Patient data was returned to a caller.
    Read,
    /// A record was changed.
    Update,
    /// A record was deleted.
    Delete,
    /// A successful sign-in.
    Login,
    /// A failed sign-in.
    LoginFailed,
    /// A refresh token was revoked by its holder.
    Logout,
    /// A refresh token was exchanged for a new pair.
    TokenRefresh,
    /// A spent refresh token was presented again; its family was revoked.
    TokenReuse,
}

/// What kind of record an event concerns.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum AuditEntityType {
    /// A patient.
    Patient,
    /// A doctor.
    Doctor,
    /// A doctor assignment.
    Mapping,
    /// An account.
    User,
}

/// Whether the attempt succeeded.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum AuditOutcome {
    /// It was done.
    Success,
    /// It was refused (not found, forbidden, conflict, wrong credentials, token reuse).
    Failure,
}

/// One entry of the audit trail. Entries cannot be changed or deleted through the API.
#[derive(SimpleObject, Clone)]
pub struct AuditEvent {
    /// Stable id.
    pub id: ID,
    /// When it happened.
    pub occurred_at: DateTime,
    /// The account that acted, when known.
    pub user_id: Option<ID>,
    /// What was done.
    pub action: AuditAction,
    /// The kind of record concerned.
    pub entity_type: Option<AuditEntityType>,
    /// The record concerned.
    pub entity_id: Option<ID>,
    /// Whether it succeeded.
    pub outcome: AuditOutcome,
    /// The client's IP address.
    pub client_ip: Option<String>,
    /// The request id (`x-request-id`), to find the request in the server logs.
    pub request_id: Option<String>,
}

impl From<audit_event::Model> for AuditEvent {
    fn from(e: audit_event::Model) -> Self {
        let action = match audit::Action::parse(&e.action) {
            Some(audit::Action::Create) => AuditAction::Create,
            Some(audit::Action::Read) => AuditAction::Read,
            Some(audit::Action::Update) => AuditAction::Update,
            Some(audit::Action::Delete) => AuditAction::Delete,
            Some(audit::Action::Login) => AuditAction::Login,
            Some(audit::Action::LoginFailed) | None => AuditAction::LoginFailed,
            Some(audit::Action::Logout) => AuditAction::Logout,
            Some(audit::Action::TokenRefresh) => AuditAction::TokenRefresh,
            Some(audit::Action::TokenReuse) => AuditAction::TokenReuse,
        };
        AuditEvent {
            id: ID(e.id.to_string()),
            occurred_at: DateTime(e.occurred_at),
            user_id: e.user_id.map(|id| ID(id.to_string())),
            action,
            entity_type: e
                .entity_type
                .as_deref()
                .and_then(EntityKind::parse)
                .map(entity_type),
            entity_id: e.entity_id.map(|id| ID(id.to_string())),
            outcome: if e.outcome == "SUCCESS" {
                AuditOutcome::Success
            } else {
                AuditOutcome::Failure
            },
            client_ip: e.client_ip,
            request_id: e.request_id,
        }
    }
}

fn entity_type(kind: EntityKind) -> AuditEntityType {
    match kind {
        EntityKind::Patient => AuditEntityType::Patient,
        EntityKind::Doctor => AuditEntityType::Doctor,
        EntityKind::Mapping => AuditEntityType::Mapping,
        EntityKind::User => AuditEntityType::User,
    }
}

fn entity_kind(ty: AuditEntityType) -> EntityKind {
    match ty {
        AuditEntityType::Patient => EntityKind::Patient,
        AuditEntityType::Doctor => EntityKind::Doctor,
        AuditEntityType::Mapping => EntityKind::Mapping,
        AuditEntityType::User => EntityKind::User,
    }
}

fn action(a: AuditAction) -> audit::Action {
    match a {
        AuditAction::Create => audit::Action::Create,
        AuditAction::Read => audit::Action::Read,
        AuditAction::Update => audit::Action::Update,
        AuditAction::Delete => audit::Action::Delete,
        AuditAction::Login => audit::Action::Login,
        AuditAction::LoginFailed => audit::Action::LoginFailed,
        AuditAction::Logout => audit::Action::Logout,
        AuditAction::TokenRefresh => audit::Action::TokenRefresh,
        AuditAction::TokenReuse => audit::Action::TokenReuse,
    }
}

/// Narrows the audit trail; all given conditions must hold.
#[derive(InputObject, Default)]
pub struct AuditEventFilter {
    /// Only events of this account.
    pub user_id: Option<ID>,
    /// Only this action.
    pub action: Option<AuditAction>,
    /// Only events about this kind of record.
    pub entity_type: Option<AuditEntityType>,
    /// Only events about this record (with `entityType`).
    pub entity_id: Option<ID>,
    /// Only events at or after this instant.
    pub from: Option<DateTime>,
    /// Only events before this instant.
    pub to: Option<DateTime>,
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// The audit trail, newest first. ADMIN only.
    #[graphql(complexity = "crate::graphql::limits::list_cost(first, child_complexity)")]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, desc = "Page size, 1 to 100.")] first: Option<i32>,
        #[graphql(desc = "Cursor to continue after (an `endCursor`).")] after: Option<String>,
        #[graphql(desc = "Conditions the events must meet.")] filter: Option<AuditEventFilter>,
    ) -> async_graphql::Result<AuditEventConnection> {
        let actor = ctx.actor()?;
        let page = PageRequest::parse(first, after)?.counting(counted(ctx));
        let filter = filter.unwrap_or_default();
        let entity_id = filter
            .entity_id
            .map(|id| {
                parse_id("entityId", &id, |s| {
                    uuid::Uuid::try_parse(s).map_err(|_| "is not a valid id".into())
                })
            })
            .transpose()?;
        if entity_id.is_some() && filter.entity_type.is_none() {
            return Err(AppError::field("entityType", "is required with entityId").into());
        }
        let user_id = filter
            .user_id
            .map(|id| {
                parse_id("userId", &id, |s| {
                    uuid::Uuid::try_parse(s).map_err(|_| "is not a valid id".into())
                })
            })
            .transpose()?;
        let filter = AuditFilter {
            user_id,
            action: filter.action.map(action),
            entity: filter.entity_type.map(|t| (entity_kind(t), entity_id)),
            from: filter.from.map(|t| t.0),
            to: filter.to.map(|t| t.0),
        };
        let result = audit::list_for_admin(&ctx.app()?.reads, &actor, filter, &page).await?;
        Ok(AuditEventConnection::from_page(result, AuditEvent::from))
    }
}
