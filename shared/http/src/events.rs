//! The outgoing events routes of the agent API (agent auth, like `/api/tickets`):
//!
//! - `GET /api/events/failed?limit=50`: the events the sender gave up on, most recent first,
//!   with the endpoints each did not reach and why.
//! - `POST /api/events/{id}/replay`: queues a failed event again (`202`); it goes to the
//!   endpoints that did not get it (the others are skipped), with the same delivery ids.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use crossdesk_core::events::{EventId, EventLedger, EventQueue, MAX_FAILED_LIST};
use crossdesk_core::StoreError;
use serde::Deserialize;
use serde_json::json;
use tracing::info;

use crate::auth::AgentAuth;
use crate::error::ApiError;

/// What the events routes need.
#[derive(Clone)]
pub struct EventsApiState {
    /// Where failed events are kept.
    pub ledger: Arc<dyn EventLedger>,
    /// Where replayed events go; `None` while the events webhook is off (replay answers 503).
    pub queue: Option<Arc<dyn EventQueue>>,
    /// The caller check (the agent API's).
    pub auth: Arc<dyn AgentAuth>,
}

/// The events routes over the given state.
pub fn events_router(state: EventsApiState) -> Router {
    Router::new()
        .route("/api/events/failed", get(list_failed))
        .route("/api/events/{id}/replay", post(replay))
        .with_state(Arc::new(state))
}

fn store_error(e: StoreError) -> ApiError {
    ApiError::unavailable(e.to_string())
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    limit: Option<String>,
}

async fn list_failed(
    State(state): State<Arc<EventsApiState>>,
    parts: axum::http::request::Parts,
) -> Result<Response, ApiError> {
    state.auth.authenticate(&parts)?;
    let Query(query) = Query::<ListQuery>::try_from_uri(&parts.uri)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let limit = match query.limit.as_deref() {
        None => 50,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_FAILED_LIST).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "limit must be a number from 1 to {MAX_FAILED_LIST}"
                ))
            })?,
    };
    let events = state
        .ledger
        .failed_events(limit)
        .await
        .map_err(store_error)?;
    Ok(Json(json!({ "events": events })).into_response())
}

async fn replay(
    State(state): State<Arc<EventsApiState>>,
    Path(id): Path<String>,
    parts: axum::http::request::Parts,
) -> Result<Response, ApiError> {
    let agent = state.auth.authenticate(&parts)?;
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no failed event {id}"),
        )
    };
    let event_id = EventId::parse(&id).map_err(|_| not_found())?;
    let Some(queue) = &state.queue else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "events_webhook_not_configured",
            "the events webhook is off: set CROSSDESK_EVENTS_WEBHOOK_URL and its secret",
        ));
    };
    let failed = state
        .ledger
        .failed_event(&event_id)
        .await
        .map_err(store_error)?
        .ok_or_else(not_found)?;
    // Queued first, then forgotten: a crash in between leaves it listed (a second replay is
    // harmless), never lost. Only this failure is forgotten, not a newer one.
    queue
        .publish(&failed.event)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    state
        .ledger
        .clear_failed(&failed)
        .await
        .map_err(store_error)?;
    info!(event_id = %event_id, agent = %agent.id, "failed event queued again");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "id": event_id, "type": failed.event.kind, "status": "queued" })),
    )
        .into_response())
}
