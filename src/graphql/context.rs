//! Per-request data (who is calling, the request's DataLoaders) and accessors for resolvers.

use async_graphql::Context;

use crate::{
    app::AppState, auth::Actor, error::AppError, graphql::loaders::Loaders,
    services::audit::AuditMeta,
};

/// What the `Authorization` header established for this request.
#[derive(Clone, Copy, Debug)]
pub enum Caller {
    Anonymous,
    /// A token was presented but is malformed, expired or forged.
    InvalidToken,
    Authenticated(Actor),
}

/// Request-scoped data inserted by the HTTP handler.
#[derive(Clone)]
pub struct RequestData {
    pub caller: Caller,
    pub loaders: Loaders,
    /// Who and where, for the audit trail (and the client IP for rate limits).
    pub meta: AuditMeta,
}

pub trait ContextExt {
    fn app(&self) -> async_graphql::Result<&AppState>;
    /// The signed-in caller, or UNAUTHENTICATED: the guard of every protected field.
    fn actor(&self) -> async_graphql::Result<Actor>;
    fn loaders(&self) -> async_graphql::Result<&Loaders>;
    fn meta(&self) -> AuditMeta;
    /// Takes one attempt from the client's budget of authentication operations, or RATE_LIMITED.
    fn limit_auth_attempt(&self) -> async_graphql::Result<()>;
}

impl ContextExt for Context<'_> {
    fn app(&self) -> async_graphql::Result<&AppState> {
        self.data::<AppState>().map_err(|_| {
            AppError::Internal(anyhow::anyhow!("AppState missing from the schema")).into()
        })
    }

    fn actor(&self) -> async_graphql::Result<Actor> {
        match self.data_opt::<RequestData>().map(|d| d.caller) {
            Some(Caller::Authenticated(actor)) => Ok(actor),
            _ => Err(AppError::Unauthenticated.into()),
        }
    }

    fn loaders(&self) -> async_graphql::Result<&Loaders> {
        self.data_opt::<RequestData>()
            .map(|d| &d.loaders)
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("request data missing")).into())
    }

    fn meta(&self) -> AuditMeta {
        self.data_opt::<RequestData>()
            .map(|d| d.meta.clone())
            .unwrap_or_default()
    }

    fn limit_auth_attempt(&self) -> async_graphql::Result<()> {
        let Some(ip) = self
            .data_opt::<RequestData>()
            .and_then(|d| d.meta.client_ip)
        else {
            return Ok(());
        };
        Ok(self.app()?.auth_limiter.check(ip)?)
    }
}
