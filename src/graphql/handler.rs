//! GraphQL over HTTP: `POST /graphql` (JSON), `GET /graphql?query=…` for queries only, and GraphiQL for
//! browsers. Establishes the caller from the `Authorization` header and the request's loaders.

use async_graphql::{
    BatchRequest, BatchResponse,
    extensions::apollo_persisted_queries::CacheStorage,
    parser::types::{DocumentOperations, ExecutableDocument, OperationType},
};
use std::net::{IpAddr, SocketAddr};

use axum::{
    body::{Body, Bytes},
    extract::{ConnectInfo, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use ipnet::IpNet;

use crate::{
    app::HttpState,
    graphql::{
        context::{Caller, RequestData},
        loaders::Loaders,
        response_cache::{self, Lookup},
    },
    services::audit::{AuditMeta, ReadCapture},
};

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

pub async fn post(
    State(http): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    match content_type.as_deref() {
        Some("application/json") | Some(GRAPHQL_RESPONSE_JSON) => {}
        _ => {
            return request_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Type must be application/json",
                &headers,
            );
        }
    }
    let max_body_bytes = http.state.config.limits.max_body_bytes;
    let body = match read_body(body, &headers, max_body_bytes).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            let mut response = request_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("Request body too large: at most {max_body_bytes} bytes"),
                &headers,
            );
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return response;
        }
        Err(BodyError::Unreadable) => {
            return request_error(
                StatusCode::BAD_REQUEST,
                "Could not read the request body",
                &headers,
            );
        }
    };
    // Parsed as plain JSON first: async-graphql would read a missing `query` as an empty document.
    let json: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(json) => json,
        Err(e) => {
            return request_error(
                StatusCode::BAD_REQUEST,
                &format!("Malformed JSON body: {e}"),
                &headers,
            );
        }
    };
    let well_formed = match &json {
        serde_json::Value::Object(_) => has_query(&json),
        serde_json::Value::Array(items) => items.iter().all(has_query),
        _ => false,
    };
    if !well_formed {
        return request_error(
            StatusCode::BAD_REQUEST,
            "A GraphQL request is a JSON object with a string `query` (or an array of them)",
            &headers,
        );
    }
    let batch: BatchRequest = match serde_json::from_value(json) {
        Ok(batch) => batch,
        Err(e) => {
            return request_error(
                StatusCode::BAD_REQUEST,
                &format!("Invalid GraphQL request: {e}"),
                &headers,
            );
        }
    };
    if let BatchRequest::Batch(requests) = &batch {
        let max_batch = http.state.config.limits.max_batch;
        if requests.len() > max_batch {
            return request_error(
                StatusCode::BAD_REQUEST,
                &format!("Batch too large: at most {max_batch} operations per request"),
                &headers,
            );
        }
        if requests.is_empty() {
            return request_error(StatusCode::BAD_REQUEST, "Empty batch", &headers);
        }
    }
    execute(&http, batch, &headers, peer).await
}

pub async fn get(
    State(http): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let query_string = uri.query().unwrap_or_default();
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if wants_html && !query_string.contains("query=") {
        return crate::graphiql::page();
    }
    let has_param = |name: &str| {
        query_string
            .split('&')
            .any(|pair| pair.split('=').next() == Some(name))
    };
    if !has_param("query") && !has_param("extensions") {
        return request_error(
            StatusCode::BAD_REQUEST,
            "A GraphQL GET request needs a `query` parameter",
            &headers,
        );
    }
    let request = match crate::graphql::query_string::parse(query_string) {
        Ok(request) => request,
        Err(e) => {
            return request_error(
                StatusCode::BAD_REQUEST,
                &format!("Invalid GraphQL GET request: {e}"),
                &headers,
            );
        }
    };
    // GET must never change anything: mutations only over POST, whether sent as text or as the hash of
    // a persisted document. (A document over the limits is refused in `execute`, before anything runs.)
    let operation_type =
        if request.query.is_empty() {
            match persisted_query_hash(&request) {
                Some(hash) => http.persisted_queries.get(hash).await.and_then(|document| {
                    operation_type(&document, request.operation_name.as_deref())
                }),
                None => None,
            }
        } else {
            http.documents
                .check(&request.query)
                .ok()
                .and_then(|checked| {
                    checked
                        .document
                        .as_ref()
                        .and_then(|d| operation_type(d, request.operation_name.as_deref()))
                })
        };
    if operation_type.is_some_and(|ty| ty != OperationType::Query) {
        let mut response = request_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Only queries may be sent with GET; send mutations with POST",
            &headers,
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
        return response;
    }
    execute(&http, BatchRequest::Single(request), &headers, peer).await
}

/// The type of the operation a request would run, when the document names it unambiguously.
fn operation_type(document: &ExecutableDocument, name: Option<&str>) -> Option<OperationType> {
    match (&document.operations, name) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|op| op.node.ty),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| op.node.ty)
        }
        _ => None,
    }
}

/// The `sha256Hash` of an Apollo persisted-query request.
fn persisted_query_hash(request: &async_graphql::Request) -> Option<String> {
    match request.extensions.get("persistedQuery")? {
        async_graphql::Value::Object(fields) => match fields.get("sha256Hash")? {
            async_graphql::Value::String(hash) => Some(hash.clone()),
            _ => None,
        },
        _ => None,
    }
}

async fn execute(
    http: &HttpState,
    mut batch: BatchRequest,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> Response {
    let mut document_names = Vec::new();
    let mut cacheable = false;
    for request in batch.iter_mut() {
        match http.documents.check(&request.query) {
            Ok(checked) if checked.info.introspects && !http.state.config.introspection => {
                return request_error(
                    StatusCode::BAD_REQUEST,
                    "Introspection is disabled on this server",
                    headers,
                );
            }
            Ok(checked) => {
                if let Some(document) = &checked.document {
                    request.set_parsed_query(document.clone());
                }
                cacheable = checked.info.cacheable;
                document_names.push((
                    checked.info.operation_name.clone(),
                    checked.info.introspection_only,
                ));
            }
            Err(message) => return request_error(StatusCode::BAD_REQUEST, &message, headers),
        }
    }

    let caller = caller_from(http, headers);
    let client_ip = client_ip(peer.ip(), headers, &http.state.config.trusted_proxies);
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut meta = AuditMeta {
        user_id: match caller {
            Caller::Authenticated(actor) => Some(actor.user_id.0),
            _ => None,
        },
        client_ip: Some(client_ip),
        request_id,
        read_capture: None,
    };
    let operation = match &batch {
        BatchRequest::Single(r) => crate::observability::operation_label(
            r.operation_name
                .as_deref()
                .or(document_names.first().and_then(|(name, _)| name.as_deref())),
        ),
        BatchRequest::Batch(_) => "batch".to_owned(),
    };
    let user_id = match caller {
        Caller::Authenticated(actor) => Some(actor.user_id.to_string()),
        _ => None,
    };
    let started = std::time::Instant::now();

    // A single query of a signed-in caller whose document the response cache keeps.
    let mut pending = None;
    if let (Some(cache), Caller::Authenticated(actor), BatchRequest::Single(request)) =
        (&http.response_cache, caller, &batch)
        && cacheable
        && request.extensions.is_empty()
        && response_cache::allowed_by(headers)
    {
        match cache.lookup(&actor, request).await {
            Some(Lookup::Hit(entry)) => {
                for run in entry.reads.chunk_by(|a, b| a.0 == b.0) {
                    http.state
                        .audit
                        .reads(&meta, run[0].0, run.iter().map(|(_, id)| *id))
                        .await;
                }
                let elapsed = started.elapsed();
                crate::observability::record_request(&operation, elapsed, std::iter::empty());
                tracing::info!(
                    operation,
                    user_id = user_id.as_deref().unwrap_or("-"),
                    duration_ms = elapsed.as_secs_f64() * 1000.0,
                    errors = 0,
                    cache = "hit",
                    "graphql request"
                );
                return cache_response(entry.body.clone(), headers, "HIT");
            }
            Some(Lookup::Miss(miss)) => {
                meta.read_capture = Some(ReadCapture::default());
                pending = Some(miss);
            }
            None => {}
        }
    }
    let capture = meta.read_capture.clone();
    let loaders = match caller {
        Caller::Authenticated(actor) => Loaders::for_actor(&http.state, actor, meta.clone()),
        _ => Loaders::default(),
    };
    let batch = batch.data(RequestData {
        caller,
        loaders,
        meta,
    });
    let schema = if document_names
        .iter()
        .all(|(_, introspection_only)| *introspection_only)
    {
        &http.introspection_schema
    } else if batch
        .iter()
        .any(|r| r.extensions.contains_key("persistedQuery"))
    {
        &http.schema
    } else {
        &http.plain_schema
    };
    let mut response = schema.execute_batch(batch).await;
    let elapsed = started.elapsed();
    let codes = error_codes(&response);
    crate::observability::record_request(&operation, elapsed, codes.iter().map(String::as_str));
    tracing::info!(
        operation,
        user_id = user_id.as_deref().unwrap_or("-"),
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        errors = codes.len(),
        cache = if pending.is_some() { "miss" } else { "-" },
        "graphql request"
    );
    if let Some(request_id) = headers.get("x-request-id").and_then(|v| v.to_str().ok()) {
        tag_internal_errors(&mut response, request_id);
    }
    if let (Some(pending), Some(cache), BatchResponse::Single(r)) =
        (pending, &http.response_cache, &response)
        && r.errors.is_empty()
        && let Ok(body) = serde_json::to_vec(r)
    {
        let body = Bytes::from(body);
        let reads = capture
            .and_then(|capture| capture.lock().ok().map(|mut c| std::mem::take(&mut *c)))
            .unwrap_or_default();
        cache.store(pending, body.clone(), reads);
        return cache_response(body, headers, "MISS");
    }
    match response {
        BatchResponse::Single(r) if is_request_error(&r) => {
            // GraphQL over HTTP: a request error (parse, validation, variable coercion) is a 400 for
            // clients that accept application/graphql-response+json; legacy JSON clients expect 200.
            let status = if response_content_type(headers) == GRAPHQL_RESPONSE_JSON {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::OK
            };
            json_response(status, &without_data_if(true, &r), headers)
        }
        // Serialized straight from the response: no intermediate JSON tree on the common path.
        BatchResponse::Single(r) => json_response(StatusCode::OK, &r, headers),
        BatchResponse::Batch(rs) => {
            let bodies: Vec<serde_json::Value> = rs
                .iter()
                .map(|r| without_data_if(is_request_error(r), r))
                .collect();
            json_response(StatusCode::OK, &bodies, headers)
        }
    }
}

/// True when the request failed before execution (no data, and no error belongs to a field).
/// The `extensions.code` of every error in the response ("NONE" for errors without one).
fn error_codes(response: &BatchResponse) -> Vec<String> {
    let responses: Vec<&async_graphql::Response> = match response {
        BatchResponse::Single(r) => vec![r],
        BatchResponse::Batch(rs) => rs.iter().collect(),
    };
    responses
        .iter()
        .flat_map(|r| r.errors.iter())
        .map(
            |e| match e.extensions.as_ref().and_then(|ext| ext.get("code")) {
                Some(async_graphql::Value::String(code)) => code.clone(),
                _ => "NONE".to_owned(),
            },
        )
        .collect()
}

/// "PersistedQueryNotFound" is the normal first step of Apollo APQ, not a failure: clients retry with
/// the full document, and they expect it with HTTP 200.
fn is_request_error(response: &async_graphql::Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response
            .errors
            .iter()
            .all(|e| e.path.is_empty() && e.message != "PersistedQueryNotFound")
}

/// The response as JSON, without its `data` key when the request never executed.
fn without_data_if(rejected: bool, response: &async_graphql::Response) -> serde_json::Value {
    let mut json =
        serde_json::to_value(response).unwrap_or_else(|_| serde_json::json!({"errors": []}));
    if rejected && let Some(object) = json.as_object_mut() {
        object.remove("data");
    }
    json
}

fn has_query(request: &serde_json::Value) -> bool {
    let persisted = request.pointer("/extensions/persistedQuery").is_some();
    match request.get("query") {
        Some(serde_json::Value::String(_)) => true,
        None | Some(serde_json::Value::Null) => persisted,
        Some(_) => false,
    }
}

/// The client's address: the socket peer, or, when the peer is a trusted proxy, the nearest address in
/// `X-Forwarded-For` that is not itself a trusted proxy.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| part.trim().parse().ok())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .unwrap_or(peer)
}

/// Reads `Authorization: Bearer <token>`. No header, or GraphiQL's empty "Bearer", is anonymous.
fn caller_from(http: &HttpState, headers: &HeaderMap) -> Caller {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Caller::Anonymous;
    };
    let Ok(value) = value.to_str() else {
        return Caller::InvalidToken;
    };
    let value = value.trim();
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        None if value.eq_ignore_ascii_case("bearer") || value.is_empty() => {
            return Caller::Anonymous;
        }
        _ => return Caller::InvalidToken,
    };
    if token.is_empty() {
        return Caller::Anonymous;
    }
    match http.state.auth.tokens.verify_access(token) {
        Ok(actor) => Caller::Authenticated(actor),
        Err(e) => {
            tracing::debug!(error = %e, "access token refused");
            Caller::InvalidToken
        }
    }
}

/// Gives operators the request id with every internal error, to find the logged cause.
fn tag_internal_errors(response: &mut BatchResponse, request_id: &str) {
    let responses: Vec<&mut async_graphql::Response> = match response {
        BatchResponse::Single(r) => vec![r],
        BatchResponse::Batch(rs) => rs.iter_mut().collect(),
    };
    for r in responses {
        for error in &mut r.errors {
            let internal = error
                .extensions
                .as_ref()
                .and_then(|ext| ext.get("code"))
                .is_some_and(|code| {
                    *code
                        == async_graphql::Value::from(crate::graphql::error::INTERNAL_SERVER_ERROR)
                });
            if internal {
                error
                    .extensions
                    .get_or_insert_with(Default::default)
                    .set("requestId", request_id);
            }
        }
    }
}

fn response_content_type(headers: &HeaderMap) -> &'static str {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.contains(GRAPHQL_RESPONSE_JSON) {
        GRAPHQL_RESPONSE_JSON
    } else {
        "application/json"
    }
}

fn json_response(
    status: StatusCode,
    body: &impl serde::Serialize,
    headers: &HeaderMap,
) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => bytes_response(status, Bytes::from(bytes), headers),
        Err(e) => {
            tracing::error!(error = %e, "could not serialize a GraphQL response");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn bytes_response(status: StatusCode, body: Bytes, headers: &HeaderMap) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            format!("{}; charset=utf-8", response_content_type(headers)),
        )],
        body,
    )
        .into_response()
}

/// A successful answer of a request the response cache handles; `X-Cache` says whether it was kept
/// from before (for operators and tests).
fn cache_response(body: Bytes, headers: &HeaderMap, cache: &'static str) -> Response {
    let mut response = bytes_response(StatusCode::OK, body, headers);
    response
        .headers_mut()
        .insert("x-cache", HeaderValue::from_static(cache));
    response
}

/// A request that never reached execution: an `errors` list and no `data` key.
enum BodyError {
    TooLarge,
    Unreadable,
}

/// How much of an oversized body is read and discarded so the client sees the 413. Closing the socket
/// with unread bytes makes the peer's kernel reset the connection, and most HTTP clients then report a
/// broken pipe instead of the answer (what nginx's lingering close avoids). Bounded in bytes and time.
const DRAIN_AT_MOST_BYTES: u64 = 64 * 1024 * 1024;
const DRAIN_AT_MOST: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads the body up to `limit` bytes; past it, drains (bounded) and reports `TooLarge`.
async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, BodyError> {
    use tokio_stream::StreamExt;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|d| d > DRAIN_AT_MOST_BYTES) {
        return Err(BodyError::TooLarge);
    }
    let mut stream = body.into_data_stream();
    let mut collected = Vec::with_capacity(declared.map_or(0, |d| d.min(limit as u64) as usize));
    let mut seen: u64 = 0;
    let mut too_large = declared.is_some_and(|d| d > limit as u64);
    let deadline = tokio::time::Instant::now() + DRAIN_AT_MOST;
    loop {
        let next = if too_large {
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(next) => next,
                Err(_) => return Err(BodyError::TooLarge),
            }
        } else {
            stream.next().await
        };
        match next {
            None => break,
            Some(Err(_)) if too_large => return Err(BodyError::TooLarge),
            Some(Err(_)) => return Err(BodyError::Unreadable),
            Some(Ok(chunk)) => {
                seen += chunk.len() as u64;
                if too_large {
                    if seen > DRAIN_AT_MOST_BYTES {
                        return Err(BodyError::TooLarge);
                    }
                } else if seen > limit as u64 {
                    too_large = true;
                    collected = Vec::new();
                } else {
                    collected.extend_from_slice(&chunk);
                }
            }
        }
    }
    if too_large {
        return Err(BodyError::TooLarge);
    }
    Ok(Bytes::from(collected))
}

fn request_error(status: StatusCode, message: &str, headers: &HeaderMap) -> Response {
    let body = serde_json::json!({ "errors": [{ "message": message }] });
    json_response(status, &body, headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_str(xff).expect("header"),
        );
        h
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.5".parse().expect("ip");
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().expect("net")];
        let h = headers("198.51.100.7, 10.0.0.9");
        assert_eq!(
            client_ip(proxy, &h, &trusted),
            "198.51.100.7".parse::<IpAddr>().expect("ip")
        );
        let stranger: IpAddr = "203.0.113.1".parse().expect("ip");
        assert_eq!(
            client_ip(stranger, &h, &trusted),
            stranger,
            "an untrusted peer cannot spoof its address"
        );
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &trusted), proxy);
    }
}
