//! The calling agent's notification preferences (agent auth, like `/api/tickets`):
//!
//! - `GET /api/agents/me/notifications`: `{"agent_id","email","events","teams",
//!   "available_events"}` (no events and no email until the agent chose some).
//! - `PUT /api/agents/me/notifications` with `{"email": "a@b.example" | null, "events": [...]}`:
//!   replaces the address and the events (each one of `ticket.created`, `message.created`,
//!   `chat.waiting`, `sla.breached`); answers like `GET`. Teams are kept as stored: membership
//!   is not the agent's own choice.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use crossdesk_core::notify::NotifyKind;
use crossdesk_core::workflow::{AgentPreferences, WorkflowStore};
use crossdesk_core::EmailAddress;
use serde::Deserialize;
use serde_json::json;
use tracing::info;

use crate::agent::json_body;
use crate::auth::AgentAuth;
use crate::error::ApiError;

/// What the notification preference routes need.
#[derive(Clone)]
pub struct NotificationsApiState {
    /// Where preferences are kept.
    pub workflow: Arc<dyn WorkflowStore>,
    /// The caller check (the agent API's).
    pub auth: Arc<dyn AgentAuth>,
}

/// `GET` and `PUT /api/agents/me/notifications` over the given state.
pub fn notifications_router(state: NotificationsApiState) -> Router {
    Router::new()
        .route(
            "/api/agents/me/notifications",
            get(get_preferences).put(put_preferences),
        )
        .with_state(Arc::new(state))
}

/// The body of a `PUT`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PreferencesUpdate {
    /// Where notification mail goes; `null` for none.
    email: Option<String>,
    /// The events wanted.
    events: Vec<String>,
}

fn answer(prefs: &AgentPreferences) -> Response {
    Json(json!({
        "agent_id": prefs.agent_id,
        "email": prefs.email,
        "events": prefs.events,
        "teams": prefs.teams,
        "available_events": NotifyKind::ALL.map(NotifyKind::as_str),
    }))
    .into_response()
}

async fn stored(
    state: &NotificationsApiState,
    agent_id: &str,
) -> Result<AgentPreferences, ApiError> {
    Ok(state
        .workflow
        .agent_preferences(agent_id)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?
        .unwrap_or_else(|| AgentPreferences {
            agent_id: agent_id.to_string(),
            ..AgentPreferences::default()
        }))
}

async fn get_preferences(
    State(state): State<Arc<NotificationsApiState>>,
    parts: Parts,
) -> Result<Response, ApiError> {
    let agent = state.auth.authenticate(&parts)?;
    Ok(answer(&stored(&state, &agent.id).await?))
}

async fn put_preferences(
    State(state): State<Arc<NotificationsApiState>>,
    parts: Parts,
    body: Body,
) -> Result<Response, ApiError> {
    let agent = state.auth.authenticate(&parts)?;
    let update: PreferencesUpdate = json_body(&parts.headers, body).await?;
    let events = update
        .events
        .iter()
        .map(|e| {
            e.parse::<NotifyKind>()
                .map(|k| k.as_str().to_string())
                .map_err(|e| ApiError::bad_request(e.to_string()))
        })
        .collect::<Result<BTreeSet<String>, ApiError>>()?;
    let email = match update.email.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => Some(
            EmailAddress::parse(raw)
                .map_err(|e| ApiError::bad_request(format!("email: {e}")))?
                .to_string(),
        ),
    };
    let mut prefs = stored(&state, &agent.id).await?;
    prefs.email = email;
    prefs.events = events;
    state
        .workflow
        .save_agent_preferences(&prefs)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    info!(agent = %agent.id, events = prefs.events.len(), "notification preferences saved");
    Ok(answer(&prefs))
}

#[cfg(test)]
mod tests {
    use axum::http::{Request, StatusCode};
    use crossdesk_embedded::{Database, SqliteStore};
    use secrecy::SecretString;
    use tower::ServiceExt;

    use super::*;
    use crate::auth::BearerTokenAuth;

    fn app() -> (Router, Arc<SqliteStore>) {
        let store = Arc::new(SqliteStore::new(Database::in_memory().unwrap()));
        let router = notifications_router(NotificationsApiState {
            workflow: store.clone(),
            auth: Arc::new(BearerTokenAuth::new(&SecretString::from("t"))),
        });
        (router, store)
    }

    async fn call(
        app: &Router,
        method: &str,
        body: Option<&str>,
    ) -> (StatusCode, serde_json::Value) {
        let request = Request::builder()
            .method(method)
            .uri("/api/agents/me/notifications")
            .header("authorization", "Bearer t")
            .header("content-type", "application/json")
            .body(Body::from(body.unwrap_or("").to_string()))
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    #[tokio::test]
    async fn an_agent_reads_and_replaces_their_preferences() {
        let (app, store) = app();
        let (status, body) = call(&app, "GET", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["agent_id"], "local-agent");
        assert_eq!(body["events"], json!([]));
        assert_eq!(body["available_events"].as_array().unwrap().len(), 4);

        store
            .save_agent_preferences(&AgentPreferences {
                agent_id: "local-agent".into(),
                teams: ["billing".to_string()].into(),
                ..AgentPreferences::default()
            })
            .await
            .unwrap();
        let (status, body) = call(
            &app,
            "PUT",
            Some(r#"{"email":"Agent@Acme.example","events":["sla.breached","ticket.created"]}"#),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["email"], "agent@acme.example");
        assert_eq!(body["events"], json!(["sla.breached", "ticket.created"]));
        assert_eq!(body["teams"], json!(["billing"]), "teams are kept");
        let stored = store
            .agent_preferences("local-agent")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.email.as_deref(), Some("agent@acme.example"));
        assert_eq!(call(&app, "GET", None).await.1, body);
    }

    #[tokio::test]
    async fn refuses_unknown_events_fields_addresses_and_strangers() {
        let (app, _) = app();
        for bad in [
            r#"{"email":null,"events":["ticket.deleted"]}"#,
            r#"{"email":"not an address","events":[]}"#,
            r#"{"email":null,"events":[],"teams":["all"]}"#,
            r#"{"events":"ticket.created"}"#,
        ] {
            let (status, body) = call(&app, "PUT", Some(bad)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
            assert!(body["error"]["message"].is_string());
        }
        let request = Request::builder()
            .uri("/api/agents/me/notifications")
            .body(Body::empty())
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
}
