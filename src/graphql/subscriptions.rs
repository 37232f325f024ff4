//! Subscriptions over WebSocket (`/graphql/ws`, graphql-transport-ws): the viewer's own patient and
//! assignment changes, from whichever instance made them. Authenticated by the access token in
//! `connection_init`; a connection without a valid one is refused.

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::{
    ComplexObject, Context, Data, Enum, ID, SimpleObject, Subscription, futures_util::Stream,
};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::{
    extract::{ConnectInfo, State, WebSocketUpgrade},
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use std::net::SocketAddr;
use tokio_stream::{StreamExt, wrappers::BroadcastStream};

use crate::{
    app::HttpState,
    domain::{DoctorId, PatientId},
    error::AppError,
    graphql::{
        context::{Caller, ContextExt, RequestData},
        doctors::Doctor,
        loaders::{Loaders, load_error, required},
        patients::Patient,
    },
    services::{
        audit::AuditMeta,
        events::{DomainEvent, EventKind},
    },
};

/// What happened to a patient.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum PatientEventAction {
    /// The patient was added.
    Created,
    /// The patient was changed.
    Updated,
    /// The patient was deleted.
    Deleted,
}

/// A change to one of the viewer's patients.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct PatientEvent {
    /// What happened.
    pub action: PatientEventAction,
    /// The patient's id.
    pub patient_id: ID,
    #[graphql(skip)]
    pub id: PatientId,
}

#[ComplexObject]
impl PatientEvent {
    /// The patient as it is now; null once deleted.
    async fn patient(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Patient>> {
        let loader = required(&ctx.loaders()?.patient_by_id)?;
        Ok(loader
            .load_one(self.id)
            .await
            .map_err(load_error)?
            .map(Patient::from))
    }
}

/// What happened to an assignment.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum MappingEventAction {
    /// A doctor was assigned to the patient.
    Assigned,
    /// The assignment was removed.
    Unassigned,
}

/// A change to an assignment of one of the viewer's patients.
#[derive(SimpleObject, Clone)]
#[graphql(complex)]
pub struct MappingEvent {
    /// What happened.
    pub action: MappingEventAction,
    /// The assignment's id.
    pub mapping_id: ID,
    /// The patient's id.
    pub patient_id: ID,
    /// The doctor's id.
    pub doctor_id: ID,
    #[graphql(skip)]
    pub patient: PatientId,
    #[graphql(skip)]
    pub doctor: DoctorId,
}

#[ComplexObject]
impl MappingEvent {
    /// The patient as it is now; null once deleted.
    async fn patient(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Patient>> {
        let loader = required(&ctx.loaders()?.patient_by_id)?;
        Ok(loader
            .load_one(self.patient)
            .await
            .map_err(load_error)?
            .map(Patient::from))
    }

    /// The doctor as it is now; null once deleted.
    async fn doctor(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Doctor>> {
        let loader = required(&ctx.loaders()?.doctor_by_id)?;
        Ok(loader
            .load_one(self.doctor)
            .await
            .map_err(load_error)?
            .map(Doctor::from))
    }
}

/// When the access token a connection signed in with expires: its subscriptions end then, so a socket
/// cannot outlive the token (and a signed-out device stops receiving within the token's lifetime).
/// Clients reconnect with a fresh token, as they do for HTTP.
#[derive(Clone, Copy)]
struct SessionEnds(tokio::time::Instant);

/// `events` until the connection's access token expires.
fn while_signed_in<S: Stream>(
    ctx: &Context<'_>,
    events: S,
) -> async_graphql::Result<impl Stream<Item = S::Item>> {
    let SessionEnds(deadline) = *ctx
        .data_opt::<SessionEnds>()
        .ok_or_else(|| async_graphql::Error::from(AppError::Unauthenticated))?;
    Ok(async_graphql::futures_util::StreamExt::take_until(
        events,
        tokio::time::sleep_until(deadline),
    ))
}

#[derive(Default)]
pub struct Subscription;

/// The root subscription, over WebSocket at /graphql/ws: every field requires a connection signed in
/// with an access token in connection_init.
#[Subscription]
impl Subscription {
    /// Changes to the viewer's patients (never anyone else's), as they are committed.
    async fn patient_events(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = PatientEvent>> {
        let owner = ctx.actor()?.user_id.0;
        let events = BroadcastStream::new(ctx.app()?.events.subscribe().await);
        let events = events.filter_map(move |event| {
            let event = event.ok().filter(|e: &DomainEvent| e.owner_id == owner)?;
            let action = match event.kind {
                EventKind::PatientCreated => PatientEventAction::Created,
                EventKind::PatientUpdated => PatientEventAction::Updated,
                EventKind::PatientDeleted => PatientEventAction::Deleted,
                EventKind::MappingAssigned | EventKind::MappingUnassigned => return None,
            };
            Some(PatientEvent {
                action,
                patient_id: ID(event.patient_id.to_string()),
                id: PatientId(event.patient_id),
            })
        });
        while_signed_in(ctx, events)
    }

    /// Changes to the assignments of the viewer's patients, as they are committed.
    async fn mapping_events(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = MappingEvent>> {
        let owner = ctx.actor()?.user_id.0;
        let events = BroadcastStream::new(ctx.app()?.events.subscribe().await);
        let events = events.filter_map(move |event| {
            let event = event.ok().filter(|e: &DomainEvent| e.owner_id == owner)?;
            let action = match event.kind {
                EventKind::MappingAssigned => MappingEventAction::Assigned,
                EventKind::MappingUnassigned => MappingEventAction::Unassigned,
                _ => return None,
            };
            let (mapping, doctor) = (event.mapping_id?, event.doctor_id?);
            Some(MappingEvent {
                action,
                mapping_id: ID(mapping.to_string()),
                patient_id: ID(event.patient_id.to_string()),
                doctor_id: ID(doctor.to_string()),
                patient: PatientId(event.patient_id),
                doctor: DoctorId(doctor),
            })
        });
        while_signed_in(ctx, events)
    }
}

/// `GET /graphql/ws`: upgrades to a graphql-transport-ws (or legacy graphql-ws) connection.
pub async fn websocket(
    State(http): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let client_ip =
        crate::graphql::handler::client_ip(peer.ip(), &headers, &http.state.config.trusted_proxies);
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let state = http.state.clone();
    let schema = http.schema.clone();
    // A subscribe message is a request: the same size limit as a POST body.
    let max_message = http.state.config.limits.max_body_bytes;
    upgrade
        .max_message_size(max_message)
        .max_frame_size(max_message)
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| async move {
            GraphQLWebSocket::new(socket, schema, protocol)
                .on_connection_init(move |payload| async move {
                    let token = token_from(&payload)
                        .ok_or_else(|| async_graphql::Error::from(AppError::Unauthenticated))?;
                    let (actor, valid_for) = state
                        .auth
                        .tokens
                        .verify_access_until(&token)
                        .map_err(|_| async_graphql::Error::from(AppError::Unauthenticated))?;
                    let meta = AuditMeta {
                        user_id: Some(actor.user_id.0),
                        client_ip: Some(client_ip),
                        request_id,
                        read_capture: None,
                    };
                    let mut data = Data::default();
                    data.insert(RequestData {
                        caller: Caller::Authenticated(actor),
                        loaders: Loaders::for_actor(&state, actor, meta.clone()),
                        meta,
                    });
                    data.insert(SessionEnds(tokio::time::Instant::now() + valid_for));
                    Ok(data)
                })
                .serve()
                .await
        })
        .into_response()
}

/// The access token from a `connection_init` payload: `{"Authorization": "Bearer …"}` (as GraphiQL and
/// Apollo send headers), `{"authorization": …}`, or `{"token": "…"}`.
fn token_from(payload: &serde_json::Value) -> Option<String> {
    let raw = ["Authorization", "authorization", "token", "accessToken"]
        .iter()
        .find_map(|key| payload.get(key).and_then(|v| v.as_str()))
        .or_else(|| {
            payload
                .pointer("/headers/Authorization")
                .and_then(|v| v.as_str())
        })
        .or_else(|| {
            payload
                .pointer("/headers/authorization")
                .and_then(|v| v.as_str())
        })?;
    let token = raw.trim();
    let token = match token.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        // GraphiQL's pre-filled "Bearer " with no token yet.
        None if token.eq_ignore_ascii_case("bearer") => "",
        _ => token,
    };
    (!token.is_empty()).then(|| token.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_found_in_the_usual_connection_init_shapes() {
        for payload in [
            serde_json::json!({"Authorization": "Bearer abc"}),
            serde_json::json!({"authorization": "bearer abc"}),
            serde_json::json!({"token": "abc"}),
            serde_json::json!({"headers": {"Authorization": "Bearer abc"}}),
        ] {
            assert_eq!(token_from(&payload).as_deref(), Some("abc"), "{payload}");
        }
        assert_eq!(
            token_from(&serde_json::json!({"Authorization": "Bearer "})),
            None
        );
        assert_eq!(token_from(&serde_json::json!({})), None);
    }
}
