//! The channels' health for agents: same routes and JSON on the local stack and behind API
//! Gateway.
//!
//! - `GET /api/channels`: per channel, whether it is configured, its status (`ok`, `warning`,
//!   `failing`, `not_configured`), the reasons in clear words, `needs_reauthorization`, the
//!   last inbound event and the latest result of each check.
//! - `POST /api/channels/check`: runs the health checks now and answers like `GET`; routed only
//!   where the deployment has a checker in-process (the local stack; in AWS the `channel-health`
//!   function runs them on its schedule).
//!
//! Config-derived findings (a channel's signature mode, the pinned Graph API version) are
//! merged in through [`ChannelSetup::findings`]: whoever builds the state adds them with
//! [`ChannelSetup::with_finding`].

use std::sync::Arc;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use crossdesk_channels::health::HealthChecker;
use crossdesk_core::health::{channel_reports, ChannelHealthStore, ChannelSetup};
use serde_json::json;
use tracing::error;

use crate::auth::AgentAuth;
use crate::error::ApiError;

/// What the channel routes need.
#[derive(Clone)]
pub struct ChannelsState {
    /// Where the channels' health state is kept.
    pub store: Arc<dyn ChannelHealthStore>,
    /// Every channel's setup, in the order listed, with its config-derived findings.
    pub setups: Vec<ChannelSetup>,
    /// Runs the checks for `POST /api/channels/check`; without one that route does not exist.
    pub checker: Option<Arc<HealthChecker>>,
    /// The caller check (the agent API's).
    pub auth: Arc<dyn AgentAuth>,
}

/// The channel routes over the given state; `POST /api/channels/check` only with a checker.
pub fn channels_router(state: ChannelsState) -> Router {
    let router = Router::new().route("/api/channels", get(list_channels));
    let router = if state.checker.is_some() {
        router.route("/api/channels/check", post(check_channels))
    } else {
        router
    };
    router.with_state(Arc::new(state))
}

/// The authenticated agent; extracting it answers 401 for anyone else.
struct Agent;

impl FromRequestParts<Arc<ChannelsState>> for Agent {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ChannelsState>,
    ) -> Result<Self, Self::Rejection> {
        state.auth.authenticate(parts).map(|_| Agent)
    }
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    error!(error = %e, "cannot read the channels' health");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        format!("the channels' health cannot be read: {e}"),
    )
}

async fn reports(state: &ChannelsState) -> Result<Response, ApiError> {
    let reports = channel_reports(state.store.as_ref(), &state.setups)
        .await
        .map_err(unavailable)?;
    Ok(Json(json!({ "channels": reports })).into_response())
}

async fn list_channels(
    State(state): State<Arc<ChannelsState>>,
    _agent: Agent,
) -> Result<Response, ApiError> {
    reports(&state).await
}

async fn check_channels(
    State(state): State<Arc<ChannelsState>>,
    _agent: Agent,
) -> Result<Response, ApiError> {
    if let Some(checker) = &state.checker {
        checker.run().await.map_err(unavailable)?;
    }
    reports(&state).await
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use chrono::Utc;
    use crossdesk_core::health::{ChannelFinding, CheckStatus, Reauthorization};
    use crossdesk_core::ChannelKind;
    use crossdesk_embedded::SqliteStore;
    use secrecy::SecretString;
    use tower::ServiceExt;

    use super::*;
    use crate::auth::BearerTokenAuth;

    fn router(store: Arc<SqliteStore>) -> Router {
        channels_router(ChannelsState {
            store,
            setups: vec![
                ChannelSetup::configured(ChannelKind::Facebook).with_finding(ChannelFinding {
                    check: "signature_mode".into(),
                    status: CheckStatus::Warning,
                    reason: "report mode".into(),
                }),
                ChannelSetup::not_configured(
                    ChannelKind::Chat,
                    vec!["CROSSDESK_CHAT_SECRET".into()],
                ),
            ],
            checker: None,
            auth: Arc::new(BearerTokenAuth::new(&SecretString::from("t"))),
        })
    }

    async fn get_json(router: Router, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
        let mut request = Request::get(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let answer = router
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = answer.status().as_u16();
        let body = axum::body::to_bytes(answer.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap_or_default())
    }

    #[tokio::test]
    async fn lists_each_channel_with_status_reasons_and_reauthorization() {
        let store = Arc::new(SqliteStore::in_memory().unwrap());
        store
            .mark_reauthorization(
                ChannelKind::Facebook,
                &Reauthorization {
                    code: "graph_190".into(),
                    reason: "Meta: token expired".into(),
                    at: Utc::now(),
                },
            )
            .await
            .unwrap();
        let (status, body) = get_json(router(store.clone()), "/api/channels", Some("t")).await;
        assert_eq!(status, 200, "{body}");
        let channels = body["channels"].as_array().unwrap();
        assert_eq!(channels.len(), 2);
        let fb = &channels[0];
        assert_eq!(fb["channel"], "facebook");
        assert_eq!(fb["configured"], true);
        assert_eq!(fb["status"], "failing");
        assert_eq!(fb["needs_reauthorization"], true);
        assert_eq!(fb["reauthorization"]["code"], "graph_190");
        assert_eq!(fb["findings"][0]["check"], "signature_mode");
        assert_eq!(fb["reasons"].as_array().unwrap().len(), 2);
        let chat = &channels[1];
        assert_eq!(chat["status"], "not_configured");
        assert_eq!(chat["needs_reauthorization"], false);
        assert_eq!(chat["last_inbound_at"], serde_json::Value::Null);
        assert_eq!(
            chat["reasons"][0],
            "not configured: set CROSSDESK_CHAT_SECRET"
        );
    }

    #[tokio::test]
    async fn needs_the_agent_token_and_a_checker_to_check() {
        let store = Arc::new(SqliteStore::in_memory().unwrap());
        let (status, _) = get_json(router(store.clone()), "/api/channels", None).await;
        assert_eq!(status, 401);
        let answer = router(store)
            .oneshot(
                Request::post("/api/channels/check")
                    .header("authorization", "Bearer t")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 404);
    }
}
