//! The agent API: list and read tickets, reply, change status. Same routes and JSON on the local
//! stack and behind API Gateway.
//!
//! - `GET /api/tickets?status=open&channel=email&limit=50`
//! - `GET /api/tickets/{id}`, with `reply_windows`: per channel and visibility, whether it can be
//!   answered now and until when ([`crossdesk_core::reply_window`])
//! - `POST /api/tickets/{id}/replies` `{"text": "...", "channel": "email", "visibility": "public"}`;
//!   `409 window_closed` when the platform's reply window is closed (nothing is queued)
//! - `PATCH /api/tickets/{id}` `{"status": "open" | "pending" | "solved"}`
//! - `GET /api/tickets/{id}/messages/{message_id}/attachments/{index}`: a short-lived link to
//!   Crossdesk's copy of an attachment
//!
//! The two GETs of tickets answer with a strong `ETag` and `304` when `If-None-Match` names it
//! (the console polls them); every answer carries `Cache-Control: no-store`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use crossdesk_core::agent::{AgentDesk, AgentRef, ReplyRequest};
use crossdesk_core::agent_workflow::{TicketUpdate, WorkFilter};
use crossdesk_core::ids::IdError;
use crossdesk_core::workflow::TicketKind;
use crossdesk_core::{ChannelKind, MessageId, TicketCursor, TicketFilter, TicketId, TicketStatus};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use crate::auth::AgentAuth;
use crate::conditional::json_with_etag;
use crate::error::ApiError;

/// The largest agent API request body, in bytes.
pub const MAX_API_BODY_BYTES: usize = 256 * 1024;
/// The most tickets one list request returns.
pub const MAX_LIST_LIMIT: usize = 200;

/// What the agent API needs: the desk and who may call it.
#[derive(Clone)]
pub struct AgentState {
    /// The agents' use cases.
    pub desk: AgentDesk,
    /// The caller check.
    pub auth: Arc<dyn AgentAuth>,
}

/// The agent API routes over the given state.
pub fn agent_router(state: AgentState) -> Router {
    Router::new()
        .route("/api/tickets", get(list_tickets))
        .route("/api/tickets/{id}", get(get_ticket).patch(patch_ticket))
        .route("/api/tickets/{id}/replies", post(post_reply))
        .route(
            "/api/tickets/{id}/messages/{message_id}/attachments/{index}",
            get(get_attachment_link),
        )
        .merge(crate::workflow::workflow_routes())
        .layer(axum::middleware::map_response(crate::conditional::no_store))
        .with_state(Arc::new(state))
}

/// The authenticated agent; extracting it answers 401 for anyone else.
pub(crate) struct Agent(pub(crate) AgentRef);

impl FromRequestParts<Arc<AgentState>> for Agent {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AgentState>,
    ) -> Result<Self, Self::Rejection> {
        state.auth.authenticate(parts).map(Agent)
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    status: Option<String>,
    channel: Option<String>,
    limit: Option<String>,
    assignee: Option<String>,
    team: Option<String>,
    tag: Option<String>,
    kind: Option<String>,
    sla: Option<String>,
    after: Option<String>,
}

async fn list_tickets(
    State(state): State<Arc<AgentState>>,
    _agent: Agent,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let status = query
        .status
        .as_deref()
        .map(str::parse::<TicketStatus>)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let channel = query
        .channel
        .as_deref()
        .map(str::parse::<ChannelKind>)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let limit = match query.limit.as_deref() {
        None => 50,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIST_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!("limit must be a number from 1 to {MAX_LIST_LIMIT}"))
            })?,
    };
    let after = match query.after.as_deref() {
        None | Some("") => None,
        Some(cursor) => Some(TicketCursor::parse(cursor).ok_or_else(|| {
            ApiError::bad_request(format!(
                "after `{cursor}` is not a cursor (pass back the `next` of the page before)"
            ))
        })?),
    };
    let filter = TicketFilter {
        status,
        channel,
        limit,
        after,
    };
    let kind = match query.kind.as_deref() {
        None => None,
        Some("conversation") => Some(TicketKind::Conversation),
        Some("monitoring") => Some(TicketKind::Monitoring),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unknown kind `{other}` (expected conversation or monitoring)"
            )))
        }
    };
    let sla_breaching = match query.sla.as_deref() {
        None => false,
        Some("breaching") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unknown sla filter `{other}` (expected breaching)"
            )))
        }
    };
    let work = WorkFilter {
        assignee: query.assignee,
        team: query.team,
        tag: query.tag,
        kind,
        sla_breaching,
    };
    let (tickets, next) = state.desk.list_work(&filter, &work).await?;
    json_with_etag(
        &headers,
        &json!({ "tickets": tickets, "next": next.map(|c| c.to_string()) }),
    )
}

async fn get_ticket(
    State(state): State<Arc<AgentState>>,
    _agent: Agent,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = ticket_id(&id)?;
    json_with_etag(&headers, &state.desk.ticket(&id).await?)
}

async fn patch_ticket(
    State(state): State<Arc<AgentState>>,
    _agent: Agent,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let id = ticket_id(&id)?;
    let change: TicketUpdate = json_body(&headers, body).await?;
    if change == TicketUpdate::default() {
        return Err(ApiError::bad_request(
            "nothing to change: give status, priority, assignee, team, add_tags or remove_tags",
        ));
    }
    state.desk.update_ticket(&id, &change).await?;
    Ok(Json(state.desk.ticket(&id).await?).into_response())
}

async fn post_reply(
    State(state): State<Arc<AgentState>>,
    Agent(agent): Agent,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let id = ticket_id(&id)?;
    let mut request: ReplyRequest = json_body(&headers, body).await?;
    request.idempotency_key = match headers.get("idempotency-key") {
        Some(key) => Some(
            key.to_str()
                .map_err(|_| {
                    ApiError::bad_request("the Idempotency-Key header must be printable ASCII")
                })?
                .to_string(),
        ),
        None => None,
    };
    let message = state.desk.reply(&id, &agent, &request).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "id": message.id,
            "ticket_id": id,
            "channel": message.channel,
            "delivery": message.delivery,
        })),
    )
        .into_response())
}

async fn get_attachment_link(
    State(state): State<Arc<AgentState>>,
    _agent: Agent,
    Path((id, message_id, index)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let id = ticket_id(&id)?;
    let message_id = path_id(&message_id, MessageId::parse)?;
    let index = index.parse::<usize>().map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no attachment `{index}`"),
        )
    })?;
    let link = state.desk.attachment_link(&id, &message_id, index).await?;
    Ok(Json(link).into_response())
}

/// An id from the request path, parsed by `parse`: one that does not parse names nothing, so
/// the answer is 404.
pub(crate) fn path_id<T>(
    raw: &str,
    parse: impl FnOnce(&str) -> Result<T, IdError>,
) -> Result<T, ApiError> {
    parse(raw).map_err(|e| ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string()))
}

/// A ticket id from the request path ([`path_id`]).
pub(crate) fn ticket_id(raw: &str) -> Result<TicketId, ApiError> {
    path_id(raw, TicketId::parse)
}

/// Reads a JSON body of at most [`MAX_API_BODY_BYTES`], with errors in the API's format.
pub(crate) async fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
) -> Result<T, ApiError> {
    let bytes = crate::ingest::read_limited(body, headers, MAX_API_BODY_BYTES).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}
