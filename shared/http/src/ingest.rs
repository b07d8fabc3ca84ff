//! Webhook routes: `GET /webhooks/{channel}` answers the platform's handshake,
//! `POST /webhooks/{channel}` verifies, normalizes, archives and queues, then acknowledges.
//! Nothing slow happens here: threading and storing are the ticket writer's job.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::{Bytes, BytesMut};
use crossdesk_channels::{
    verify_with_mode, Channel, Headers, Query, SignatureFailure, SignatureModes, WebhookRequest,
};
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

/// Counts the requests signature report mode accepted although their signature failed.
pub trait SignatureFailureMetric: Send + Sync {
    /// Counts one such request on a webhook route (`facebook`, `twitter`, `chat`).
    fn record(&self, channel: &str, failure: SignatureFailure);
}

/// The count kept in memory, per route: the local stack's metric (and the default).
#[derive(Debug, Default)]
pub struct SignatureFailureCounter {
    counts: Mutex<BTreeMap<String, u64>>,
}

impl SignatureFailureCounter {
    /// How many requests were accepted with a failed signature on `channel` so far.
    pub fn count(&self, channel: &str) -> u64 {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.get(channel).copied().unwrap_or(0)
    }
}

impl SignatureFailureMetric for SignatureFailureCounter {
    fn record(&self, channel: &str, _failure: SignatureFailure) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *counts.entry(channel.to_string()).or_default() += 1;
    }
}

/// What the webhook routes need: the channels, the inbound queue, the raw archive, a clock,
/// each channel's signature mode and where report mode counts its failures.
#[derive(Clone)]
pub struct IngestState {
    channels: BTreeMap<&'static str, ChannelSlot>,
    queue: Arc<dyn InboundQueue>,
    archive: Arc<dyn RawArchive>,
    clock: Arc<dyn Clock>,
    signature_modes: SignatureModes,
    signature_failures: Arc<dyn SignatureFailureMetric>,
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
            signature_modes: SignatureModes::default(),
            signature_failures: Arc::new(SignatureFailureCounter::default()),
        }
    }

    /// Sets each channel's signature mode (all `enforce` unless set).
    pub fn with_signature_modes(mut self, modes: SignatureModes) -> Self {
        self.signature_modes = modes;
        self
    }

    /// Sets where report mode counts the failed signatures it accepts (by default a
    /// [`SignatureFailureCounter`] of this state's own).
    pub fn with_signature_failure_metric(
        mut self,
        metric: Arc<dyn SignatureFailureMetric>,
    ) -> Self {
        self.signature_failures = metric;
        self
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
    let mode = state.signature_modes.for_route(&name);
    let verified = verify_with_mode(channel.as_ref(), &request, now, mode)
        .inspect_err(|e| warn!(channel = %name, error = %e, "webhook rejected"))?;
    let unverified = verified.signature_failure();
    if let Some(failure) = unverified {
        // Once per request; the reason names the header, never the secret or the value.
        warn!(
            channel = %name,
            reason = failure.code(),
            error = %failure,
            "webhook signature failed; accepted because the channel is in signature report mode"
        );
        state.signature_failures.record(&name, failure);
    }
    let mut messages = channel
        .parse(&verified, now)
        .inspect_err(|e| warn!(channel = %name, error = %e, "webhook payload invalid"))?;
    if unverified.is_some() {
        for message in &mut messages {
            message.signature_unverified = true;
        }
    }
    if !messages.is_empty() {
        // Both at once: the acknowledgement waits for the slower of the two (in AWS an S3 put and
        // an SQS send), not for their sum. When either fails the platform gets 503 and delivers
        // again; the raw archive is content-addressed and the queue deduplicates, so a message
        // queued beside a failed archive write is neither lost nor stored twice.
        let channel = messages[0].channel;
        let (archived, queued) = tokio::join!(
            state.archive.put(channel, &body),
            state.queue.enqueue(&messages)
        );
        archived.map_err(|e| ApiError::unavailable(e.to_string()))?;
        queued.map_err(|e| ApiError::unavailable(e.to_string()))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use axum::http::Request;
    use chrono::{DateTime, Utc};
    use crossdesk_channels::{ChatChannel, SignatureMode};
    use crossdesk_core::{ArchiveError, ChannelKind, Message, QueueError, RawRef};
    use secrecy::SecretString;
    use tower::ServiceExt;

    const SECRET: &str = "ingest-test-chat-secret";
    const BODY: &str = r#"{"session_id":"s1","visitor":{"id":"v1"},"message":{"id":"m1","text":"Hi","sent_at":"2026-11-20T10:00:00Z"}}"#;

    #[derive(Default)]
    struct Memory {
        queued: Mutex<Vec<Message>>,
        /// When set, the archive and the queue each wait here for the other: they only both
        /// finish when they run at the same time.
        rendezvous: Option<tokio::sync::Barrier>,
        /// The archive refuses every payload.
        archive_down: bool,
    }

    impl Memory {
        async fn meet(&self) {
            if let Some(barrier) = &self.rendezvous {
                barrier.wait().await;
            }
        }
    }

    #[async_trait]
    impl InboundQueue for Memory {
        async fn enqueue(&self, messages: &[Message]) -> Result<(), QueueError> {
            self.meet().await;
            self.queued.lock().unwrap().extend_from_slice(messages);
            Ok(())
        }
    }

    #[async_trait]
    impl RawArchive for Memory {
        async fn put(&self, _: ChannelKind, body: &[u8]) -> Result<RawRef, ArchiveError> {
            self.meet().await;
            if self.archive_down {
                return Err(ArchiveError("the archive is down".into()));
            }
            Ok(RawRef::of(body))
        }
        async fn get(&self, _: &RawRef) -> Result<Option<Vec<u8>>, ArchiveError> {
            Ok(None)
        }
    }

    struct Fixed;

    impl Clock for Fixed {
        fn now(&self) -> DateTime<Utc> {
            DateTime::from_timestamp(1_795_000_000, 0).unwrap()
        }
    }

    fn router(mode: SignatureMode) -> (Router, Arc<Memory>, Arc<SignatureFailureCounter>) {
        router_over(mode, Memory::default())
    }

    fn router_over(
        mode: SignatureMode,
        memory: Memory,
    ) -> (Router, Arc<Memory>, Arc<SignatureFailureCounter>) {
        let memory = Arc::new(memory);
        let counter = Arc::new(SignatureFailureCounter::default());
        let state = IngestState::new(memory.clone(), memory.clone(), Arc::new(Fixed))
            .with_channel(
                "chat",
                ChannelSlot::Ready(Arc::new(ChatChannel::new(SecretString::from(SECRET)))),
            )
            .with_signature_modes(SignatureModes {
                chat: mode,
                ..SignatureModes::default()
            })
            .with_signature_failure_metric(counter.clone());
        (webhook_router(state), memory, counter)
    }

    async fn post(router: Router, secret: &str, ts: i64) -> StatusCode {
        let (ts, sig) = ChatChannel::sign(secret, ts, BODY.as_bytes());
        let request = Request::post("/webhooks/chat")
            .header("x-crossdesk-timestamp", ts)
            .header("x-crossdesk-signature", sig)
            .body(Body::from(BODY))
            .unwrap();
        router.oneshot(request).await.unwrap().status()
    }

    #[tokio::test]
    async fn enforce_mode_refuses_a_wrong_signature() {
        let (router, memory, counter) = router(SignatureMode::Enforce);
        assert_eq!(
            post(router, "wrong-secret", Fixed.now().timestamp()).await,
            StatusCode::UNAUTHORIZED
        );
        assert!(memory.queued.lock().unwrap().is_empty());
        assert_eq!(counter.count("chat"), 0);
    }

    #[tokio::test]
    async fn report_mode_accepts_counts_and_flags_a_wrong_signature_only() {
        let now = Fixed.now().timestamp();
        let (router, memory, counter) = router(SignatureMode::Report);
        assert_eq!(
            post(router.clone(), "wrong-secret", now).await,
            StatusCode::OK
        );
        assert_eq!(counter.count("chat"), 1);
        assert_eq!(post(router.clone(), SECRET, now).await, StatusCode::OK);
        assert_eq!(counter.count("chat"), 1, "a valid signature is not counted");
        let flags: Vec<bool> = memory
            .queued
            .lock()
            .unwrap()
            .iter()
            .map(|m| m.signature_unverified)
            .collect();
        assert_eq!(flags, [true, false]);
        // A stale request is refused whatever its signature.
        assert_eq!(
            post(router.clone(), "wrong-secret", now - 600).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            post(router, SECRET, now - 600).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(memory.queued.lock().unwrap().len(), 2);
        assert_eq!(counter.count("chat"), 1);
    }

    #[tokio::test]
    async fn the_archive_and_the_queue_are_written_at_the_same_time() {
        let memory = Memory {
            rendezvous: Some(tokio::sync::Barrier::new(2)),
            ..Memory::default()
        };
        let (router, memory, _) = router_over(SignatureMode::Enforce, memory);
        let status = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            post(router, SECRET, Fixed.now().timestamp()),
        )
        .await
        .expect("one waited for the other to finish first");
        assert_eq!(status, StatusCode::OK);
        assert_eq!(memory.queued.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_failed_archive_write_is_answered_503_for_the_platform_to_deliver_again() {
        let memory = Memory {
            archive_down: true,
            ..Memory::default()
        };
        let (router, _, _) = router_over(SignatureMode::Enforce, memory);
        assert_eq!(
            post(router, SECRET, Fixed.now().timestamp()).await,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
