//! Webhook routes: `GET /webhooks/{channel}` answers the platform's handshake,
//! `POST /webhooks/{channel}` verifies, normalizes, archives and queues, then acknowledges.
//! Nothing slow happens here: threading and storing are the ticket writer's job.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::{Bytes, BytesMut};
use crossdesk_channels::{Channel, Headers, Query, WebhookRequest};
use crossdesk_core::{Clock, InboundQueue, RawArchive};
use http_body_util::BodyExt;
use serde_json::json;
use tracing::{info, warn};

use crate::error::ApiError;

/// A channel's place in the router: ready, or missing its secrets.
#[derive(Clone)]
pub enum ChannelSlot {
    /// Configured and accepting webhooks.
    Ready(Arc<dyn Channel>),
    /// Not configured: every request is answered 503 naming the missing settings.
    Unconfigured {
        /// The settings to provide.
        missing: Vec<&'static str>,
    },
}

/// What the webhook routes need: the channels, the inbound queue, the raw archive, a clock.
#[derive(Clone)]
pub struct IngestState {
    channels: BTreeMap<&'static str, ChannelSlot>,
    queue: Arc<dyn InboundQueue>,
    archive: Arc<dyn RawArchive>,
    clock: Arc<dyn Clock>,
}

impl IngestState {
    /// State with no channels yet.
    pub fn new(
        queue: Arc<dyn InboundQueue>,
        archive: Arc<dyn RawArchive>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        IngestState {
            channels: BTreeMap::new(),
            queue,
            archive,
            clock,
        }
    }

    /// Adds a channel under its route name (`/webhooks/<name>`).
    pub fn with_channel(mut self, name: &'static str, slot: ChannelSlot) -> Self {
        self.channels.insert(name, slot);
        self
    }

    /// The route names served, in order.
    pub fn channel_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.channels.keys().copied()
    }

    fn channel(&self, name: &str) -> Result<&Arc<dyn Channel>, ApiError> {
        match self.channels.get(name) {
            Some(ChannelSlot::Ready(channel)) => Ok(channel),
            Some(ChannelSlot::Unconfigured { missing }) => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "channel_not_configured",
                format!(
                    "the {name} channel is not configured: set {}",
                    missing.join(" and ")
                ),
            )),
            None => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_channel",
                format!("no webhook for channel `{name}`"),
            )),
        }
    }
}

/// The webhook routes over the given state.
pub fn webhook_router(state: IngestState) -> Router {
    Router::new()
        .route("/webhooks/{channel}", get(handshake).post(receive))
        .with_state(Arc::new(state))
}

async fn handshake(
    State(state): State<Arc<IngestState>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let channel = state.channel(&name)?;
    let reply = channel
        .handshake(&Query::parse(query.as_deref().unwrap_or("")))
        .inspect_err(|e| warn!(channel = %name, error = %e, "handshake refused"))?;
    info!(channel = %name, "handshake answered");
    Ok(([(header::CONTENT_TYPE, reply.content_type)], reply.body).into_response())
}

async fn receive(
    State(state): State<Arc<IngestState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let channel = state.channel(&name)?;
    let body = read_limited(body, &headers, channel.max_body_bytes()).await?;
    let headers = Headers::new(
        headers
            .iter()
            .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str(), v.to_string()))),
    );
    let now = state.clock.now();
    let request = WebhookRequest {
        headers: &headers,
        body: &body,
    };
    let verified = channel
        .verify(&request, now)
        .inspect_err(|e| warn!(channel = %name, error = %e, "webhook rejected"))?;
    let messages = channel
        .parse(&verified, now)
        .inspect_err(|e| warn!(channel = %name, error = %e, "webhook payload invalid"))?;
    if !messages.is_empty() {
        state
            .archive
            .put(messages[0].channel, &body)
            .await
            .map_err(|e| ApiError::unavailable(e.to_string()))?;
        state
            .queue
            .enqueue(&messages)
            .await
            .map_err(|e| ApiError::unavailable(e.to_string()))?;
    }
    info!(channel = %name, accepted = messages.len(), "webhook accepted");
    Ok((StatusCode::OK, Json(json!({"accepted": messages.len()}))).into_response())
}

/// How much of an oversize body is still read (and thrown away) before answering 413, so a
/// client that is still writing receives the 413 rather than a reset connection.
const OVERSIZE_DRAIN_BYTES: usize = 4 * 1024 * 1024;

/// Reads the body, keeping at most `limit` bytes; a larger body is answered 413.
pub(crate) async fn read_limited(
    mut body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // Beyond the drain allowance, refuse at once without reading.
    if declared.is_some_and(|len| len > (limit + OVERSIZE_DRAIN_BYTES) as u64) {
        return Err(ApiError::too_large(limit));
    }
    let mut kept = BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| ApiError::bad_request(format!("could not read the request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen <= limit {
            kept.extend_from_slice(&data);
        } else if seen > limit + OVERSIZE_DRAIN_BYTES {
            break;
        }
    }
    if seen > limit {
        return Err(ApiError::too_large(limit));
    }
    Ok(kept.freeze())
}
