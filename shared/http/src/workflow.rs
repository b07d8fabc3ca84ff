//! The agent API's workflow routes: notes, canned responses, the public-to-private handoff,
//! similar tickets and contacts across channels. Same routes and JSON on the local stack and
//! behind API Gateway.
//!
//! - `POST /api/tickets/{id}/notes` `{"text": "..."}`: an internal note (never sent)
//! - `POST /api/tickets/{id}/handoff` `{"language": "de"}` (optional): public answer + private
//!   message in one action
//! - `GET /api/tickets/{id}/similar`: up to 5 open or recently solved similar tickets
//! - `GET /api/canned-responses`; `GET /api/tickets/{id}/canned-responses/{name}`: rendered
//! - `GET /api/contacts/{id}`: the customer with every identity and ticket across channels
//! - `POST /api/contacts/{id}/merge` `{"source": "ct_…"}`: merge `source` into `{id}`
//! - `POST /api/contacts/{id}/unmerge` `{"source": "ct_…"}`: undo that merge

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use crossdesk_core::ContactId;
use serde::Deserialize;
use serde_json::json;

use crate::agent::{json_body, path_id, ticket_id, Agent, AgentState};
use crate::error::ApiError;

/// The workflow routes, merged into the agent router.
pub(crate) fn workflow_routes() -> Router<Arc<AgentState>> {
    Router::new()
        .route("/api/tickets/{id}/notes", post(post_note))
        .route("/api/tickets/{id}/handoff", post(post_handoff))
        .route("/api/tickets/{id}/similar", get(get_similar))
        .route("/api/canned-responses", get(list_canned))
        .route(
            "/api/tickets/{id}/canned-responses/{name}",
            get(get_canned_for_ticket),
        )
        .route("/api/contacts/{id}", get(get_contact))
        .route("/api/contacts/{id}/merge", post(post_link_change))
        .route("/api/contacts/{id}/unmerge", post(post_link_change))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteRequest {
    text: String,
}

async fn post_note(
    State(state): State<Arc<AgentState>>,
    Agent(agent): Agent,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let id = ticket_id(&id)?;
    let request: NoteRequest = json_body(&headers, body).await?;
    let note = state.desk.add_note(&id, &agent, &request.text).await?;
    Ok((StatusCode::CREATED, Json(note)).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HandoffRequest {
    #[serde(default)]
    language: Option<String>,
}

async fn post_handoff(
    State(state): State<Arc<AgentState>>,
    Agent(agent): Agent,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let id = ticket_id(&id)?;
    let empty = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .is_some_and(|v| v == "0");
    let request: HandoffRequest = if empty {
        HandoffRequest::default()
    } else {
        json_body(&headers, body).await?
    };
    let result = state
        .desk
        .handoff(&id, &agent, request.language.as_deref())
        .await?;
    Ok((StatusCode::ACCEPTED, Json(result)).into_response())
}

async fn get_similar(
    State(state): State<Arc<AgentState>>,
    _agent: Agent,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = ticket_id(&id)?;
    let similar = state.desk.similar(&id).await?;
    Ok(Json(json!({ "similar": similar })).into_response())
}

async fn list_canned(
    State(state): State<Arc<AgentState>>,
    _agent: Agent,
) -> Result<Response, ApiError> {
    let canned = state.desk.canned_responses()?;
    Ok(Json(json!({ "canned_responses": canned })).into_response())
}

async fn get_canned_for_ticket(
    State(state): State<Arc<AgentState>>,
    Agent(agent): Agent,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = ticket_id(&id)?;
    Ok(Json(state.desk.render_canned(&id, &name, &agent).await?).into_response())
}

async fn get_contact(
    State(state): State<Arc<AgentState>>,
    _agent: Agent,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(&id, ContactId::parse)?;
    Ok(Json(state.desk.contact(&id).await?).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MergeRequest {
    source: String,
}

/// `POST /api/contacts/{id}/merge` merges `source` into the contact; `…/unmerge` undoes that
/// merge (only these two routes lead here).
async fn post_link_change(
    State(state): State<Arc<AgentState>>,
    _agent: Agent,
    uri: Uri,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let merge = !uri.path().ends_with("/unmerge");
    let target = path_id(&id, ContactId::parse)?;
    let request: MergeRequest = json_body(&headers, body).await?;
    let source =
        ContactId::parse(&request.source).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let view = if merge {
        state.desk.merge_contacts(&target, &source).await?
    } else {
        state.desk.unmerge_contacts(&target, &source).await?
    };
    Ok(Json(view).into_response())
}
