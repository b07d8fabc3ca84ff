//! The public chat API of the website widget (no agent auth; the contract is `web/API.md`):
//!
//! - `POST /chat/api/sessions` `{"name"?, "email"?}` → `201` a signed visitor session
//! - `POST /chat/api/sessions/refresh` (Bearer token) → `200` a new token for the same session
//! - `POST /chat/api/messages` (Bearer token) `{"text","client_id","name"?,"email"?}` → `202`
//! - `GET /chat/api/messages?after=<cursor>` (Bearer token) → the session's conversation
//!
//! A visitor's message is built as the chat webhook's JSON and normalized by the chat channel's
//! own parser ([`ChatChannel::parse_own_payload`]), archived and queued like a webhook; the
//! widget never holds the chat signing secret. Answers carry CORS headers for
//! `CROSSDESK_CHAT_ALLOWED_ORIGINS`; requests are rate-limited per visitor and per address.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use crossdesk_channels::ChatChannel;
use crossdesk_core::{
    ChannelKind, Clock, Conversation, DeliveryStatus, Direction, EmailAddress, InboundQueue,
    Message, MessageEvent, RawArchive, TicketStore,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::{info, warn};

use crate::chat_session::{
    ChatSessionId, SessionClaims, SessionKey, TokenError, VisitorId, TOKEN_LIFETIME_SECS,
};
use crate::error::ApiError;
use crate::rate_limit::{Limit, Limited, RateLimiter};

/// The largest chat API request body, in bytes.
pub const MAX_CHAT_BODY_BYTES: usize = 8 * 1024;
/// The longest visitor message, in characters after trimming.
pub const MAX_VISITOR_TEXT_CHARS: usize = 4000;
/// The longest `client_id`.
pub const MAX_CLIENT_ID_CHARS: usize = 64;
/// The longest visitor name kept, in characters.
const MAX_NAME_CHARS: usize = 200;
/// The most message ids a cursor may carry.
const MAX_CURSOR_IDS: usize = 500;

/// The address a request came from, set by the entrypoint (the Lambda adapter reads API
/// Gateway's `requestContext.http.sourceIp`); the local stack's connection address otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// Which origins may call the chat API from a browser (`CROSSDESK_CHAT_ALLOWED_ORIGINS`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AllowedOrigins {
    /// Any origin (`*`, the default).
    #[default]
    Any,
    /// These origins only (`https://shop.example.com`, compared exactly).
    List(Vec<String>),
}

impl AllowedOrigins {
    /// Parses a comma-separated list; empty or `*` allows any origin.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let origins: Vec<String> = raw
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_string())
            .filter(|o| !o.is_empty())
            .collect();
        if origins.is_empty() || origins.iter().any(|o| o == "*") {
            return Ok(AllowedOrigins::Any);
        }
        for origin in &origins {
            let scheme_ok = origin.starts_with("https://") || origin.starts_with("http://");
            let host = origin.split_once("://").map(|(_, h)| h).unwrap_or("");
            if !scheme_ok || host.is_empty() || host.contains('/') {
                return Err(format!(
                    "`{origin}` is not an origin (scheme://host[:port], e.g. https://shop.example.com)"
                ));
            }
        }
        Ok(AllowedOrigins::List(origins))
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`, if allowed.
    fn allow(&self, origin: Option<&str>) -> Option<HeaderValue> {
        match self {
            AllowedOrigins::Any => Some(HeaderValue::from_static("*")),
            AllowedOrigins::List(list) => origin
                .filter(|o| list.iter().any(|allowed| allowed == o))
                .and_then(|o| HeaderValue::from_str(o).ok()),
        }
    }
}

/// The chat API's rate limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChatLimits {
    /// Messages one visitor may post.
    pub visitor_messages: Limit,
    /// Reads (polls) one visitor may make.
    pub visitor_reads: Limit,
    /// Sessions one address may start.
    pub ip_sessions: Limit,
    /// Requests of any kind from one address.
    pub ip_requests: Limit,
}

impl Default for ChatLimits {
    fn default() -> Self {
        ChatLimits {
            visitor_messages: Limit::per_minute(20),
            visitor_reads: Limit::per_minute(60),
            ip_sessions: Limit::per_minute(20),
            ip_requests: Limit::per_minute(120),
        }
    }
}

/// The chat API's settings, from `CROSSDESK_CHAT_SESSION_KEY` and
/// `CROSSDESK_CHAT_ALLOWED_ORIGINS`.
#[derive(Debug, Clone, Default)]
pub struct ChatApiSettings {
    /// The key signing visitor sessions; `None` when unset.
    pub session_key: Option<SessionKey>,
    /// The origins allowed to call the API.
    pub allowed_origins: AllowedOrigins,
}

/// A chat API setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name} is invalid: {reason}")]
pub struct ChatSettingsError {
    /// The variable.
    pub name: &'static str,
    /// Why.
    pub reason: String,
}

impl ChatApiSettings {
    /// Reads the settings through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ChatSettingsError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let session_key = get("CROSSDESK_CHAT_SESSION_KEY")
            .map(|v| SessionKey::new(v.trim().to_string().into()))
            .transpose()
            .map_err(|reason| ChatSettingsError {
                name: "CROSSDESK_CHAT_SESSION_KEY",
                reason,
            })?;
        let allowed_origins = get("CROSSDESK_CHAT_ALLOWED_ORIGINS")
            .map(|v| AllowedOrigins::parse(&v))
            .transpose()
            .map_err(|reason| ChatSettingsError {
                name: "CROSSDESK_CHAT_ALLOWED_ORIGINS",
                reason,
            })?
            .unwrap_or_default();
        Ok(ChatApiSettings {
            session_key,
            allowed_origins,
        })
    }
}

/// What the chat API needs.
#[derive(Clone)]
pub struct ChatApiState {
    /// Signs sessions; `None`: every call but the preflight answers 503.
    key: Option<SessionKey>,
    store: Arc<dyn TicketStore>,
    queue: Arc<dyn InboundQueue>,
    archive: Arc<dyn RawArchive>,
    clock: Arc<dyn Clock>,
    limiter: Arc<dyn RateLimiter>,
    limits: ChatLimits,
    origins: AllowedOrigins,
}

impl ChatApiState {
    /// The API over these adapters, with the settings' key and origins and the default limits.
    pub fn new(
        settings: ChatApiSettings,
        store: Arc<dyn TicketStore>,
        queue: Arc<dyn InboundQueue>,
        archive: Arc<dyn RawArchive>,
        clock: Arc<dyn Clock>,
        limiter: Arc<dyn RateLimiter>,
    ) -> Self {
        ChatApiState {
            key: settings.session_key,
            store,
            queue,
            archive,
            clock,
            limiter,
            limits: ChatLimits::default(),
            origins: settings.allowed_origins,
        }
    }

    /// The same API with other rate limits.
    pub fn with_limits(mut self, limits: ChatLimits) -> Self {
        self.limits = limits;
        self
    }

    fn key(&self) -> Result<&SessionKey, ApiError> {
        self.key.as_ref().ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "chat_api_not_configured",
                "the website chat is not configured: set the chat session key \
                 (CROSSDESK_CHAT_SESSION_KEY, or chat_session_key in the secret)",
            )
        })
    }

    fn limit(&self, key: String, limit: Limit) -> Result<(), ApiError> {
        self.limiter
            .check(&key, limit, self.clock.now())
            .map_err(rate_limited)
    }
}

/// The chat API routes over the given state.
pub fn chat_router(state: ChatApiState) -> Router {
    let state = Arc::new(state);
    Router::new()
        .route(
            "/chat/api/sessions",
            post(create_session).options(preflight),
        )
        .route(
            "/chat/api/sessions/refresh",
            post(refresh_session).options(preflight),
        )
        .route(
            "/chat/api/messages",
            get(list_messages).post(post_message).options(preflight),
        )
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// CORS on every answer, the per-address limit, and `Cache-Control: no-store`.
async fn guard(State(state): State<Arc<ChatApiState>>, request: Request, next: Next) -> Response {
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut response = if request.method() == Method::OPTIONS {
        StatusCode::NO_CONTENT.into_response()
    } else {
        let ip = client_ip(&request);
        match state.limit(format!("ip:{ip}"), state.limits.ip_requests) {
            Ok(()) => next.run(request).await,
            Err(e) => {
                warn!(%ip, "chat API: address over its rate limit");
                e.into_response()
            }
        }
    };
    let headers = response.headers_mut();
    if let Some(allow) = state.origins.allow(origin.as_deref()) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
    }
    if matches!(state.origins, AllowedOrigins::List(_)) {
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization, content-type"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("retry-after"),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn preflight() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// The caller's address: [`ClientIp`] when the entrypoint set it, else the connection's.
fn client_ip(request: &Request) -> String {
    if let Some(ClientIp(ip)) = request.extensions().get::<ClientIp>() {
        return ip.to_string();
    }
    if let Some(ConnectInfo(addr)) = request.extensions().get::<ConnectInfo<SocketAddr>>() {
        return addr.ip().to_string();
    }
    "unknown".into()
}

fn rate_limited(limited: Limited) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!(
            "too many requests: try again in {} seconds",
            limited.retry_after.as_secs()
        ),
    )
    .with_retry_after(limited.retry_after.as_secs())
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

/// The bearer token's claims, checked with `verify` (normal use or refresh).
fn bearer(
    headers: &HeaderMap,
    verify: impl FnOnce(&str) -> Result<SessionClaims, TokenError>,
) -> Result<SessionClaims, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| unauthorized("missing session token (Authorization: Bearer <token>)"))?;
    verify(token).map_err(|e| unauthorized(&e.to_string()))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct VisitorDetails {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

impl VisitorDetails {
    /// The name (trimmed, capped) and the validated email.
    fn checked(self) -> Result<(Option<String>, Option<String>), ApiError> {
        let name = self
            .name
            .map(|n| n.trim().chars().take(MAX_NAME_CHARS).collect::<String>())
            .filter(|n| !n.is_empty());
        let email = match self.email.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(e) => Some(
                EmailAddress::parse(e)
                    .map_err(|e| ApiError::bad_request(format!("email: {e}")))?
                    .as_str()
                    .to_string(),
            ),
        };
        Ok((name, email))
    }
}

/// A session as the widget receives it.
#[derive(Debug, Serialize)]
struct SessionAnswer {
    session_id: ChatSessionId,
    visitor_id: VisitorId,
    token: String,
    expires_at: String,
}

fn session_answer(key: &SessionKey, claims: &SessionClaims) -> SessionAnswer {
    SessionAnswer {
        session_id: claims.sid.clone(),
        visitor_id: claims.vid.clone(),
        token: key.issue(claims),
        expires_at: claims
            .expires_at()
            .to_rfc3339_opts(SecondsFormat::Secs, true),
    }
}

async fn read_json<T: serde::de::DeserializeOwned + Default>(
    headers: &HeaderMap,
    body: Body,
    allow_empty: bool,
) -> Result<T, ApiError> {
    let bytes = crate::ingest::read_limited(body, headers, MAX_CHAT_BODY_BYTES).await?;
    if allow_empty && bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

async fn create_session(
    State(state): State<Arc<ChatApiState>>,
    request: Request,
) -> Result<Response, ApiError> {
    let key = state.key()?;
    state.limit(
        format!("ip:{}:sessions", client_ip(&request)),
        state.limits.ip_sessions,
    )?;
    let (parts, body) = request.into_parts();
    let details: VisitorDetails = read_json(&parts.headers, body, true).await?;
    let (name, email) = details.checked()?;
    let claims = SessionClaims {
        sid: ChatSessionId::generate(),
        vid: VisitorId::generate(),
        name,
        email,
        exp: state.clock.now().timestamp() + TOKEN_LIFETIME_SECS,
    };
    info!(session_id = %claims.sid, "chat widget session started");
    Ok((StatusCode::CREATED, Json(session_answer(key, &claims))).into_response())
}

async fn refresh_session(
    State(state): State<Arc<ChatApiState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let key = state.key()?;
    let now = state.clock.now();
    let old = bearer(&headers, |t| key.verify_for_refresh(t, now))?;
    let claims = SessionClaims {
        exp: now.timestamp() + TOKEN_LIFETIME_SECS,
        ..old
    };
    Ok(Json(session_answer(key, &claims)).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PostMessage {
    text: String,
    client_id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

fn valid_client_id(id: &str) -> bool {
    (1..=MAX_CLIENT_ID_CHARS).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

async fn post_message(
    State(state): State<Arc<ChatApiState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let key = state.key()?;
    let now = state.clock.now();
    let claims = bearer(&headers, |t| key.verify(t, now))?;
    state.limit(
        format!("visitor:{}:messages", claims.vid),
        state.limits.visitor_messages,
    )?;
    let request: PostMessage = read_json(&headers, body, false).await?;
    let text = request.text.trim();
    let chars = text.chars().count();
    if chars == 0 || chars > MAX_VISITOR_TEXT_CHARS {
        return Err(ApiError::bad_request(format!(
            "text must be 1 to {MAX_VISITOR_TEXT_CHARS} characters"
        )));
    }
    if !valid_client_id(&request.client_id) {
        return Err(ApiError::bad_request(format!(
            "client_id must be 1 to {MAX_CLIENT_ID_CHARS} characters of A-Z, a-z, 0-9, _ and -"
        )));
    }
    let (name, email) = VisitorDetails {
        name: request.name,
        email: request.email,
    }
    .checked()?;
    // The chat webhook's own JSON, so the chat channel's parser is the one mapping.
    let payload = json!({
        "session_id": claims.sid,
        "visitor": {
            "id": claims.vid,
            "name": name.or(claims.name),
            "email": email.or(claims.email),
        },
        "message": {
            "id": request.client_id,
            "text": text,
            "sent_at": now.to_rfc3339_opts(SecondsFormat::Millis, true),
        },
    });
    let raw = serde_json::to_vec(&payload).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let messages = ChatChannel::parse_own_payload(&raw, now)?;
    state
        .archive
        .put(ChannelKind::Chat, &raw)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    state
        .queue
        .enqueue(&messages)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let id = messages
        .first()
        .and_then(|m| m.platform_message_id.clone())
        .unwrap_or_default();
    info!(session_id = %claims.sid, platform_message_id = %id, "chat widget message accepted");
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": id }))).into_response())
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    after: Option<String>,
}

/// Where a reader stands: every visible message sent before `w` (milliseconds) was returned,
/// and so were the messages `s` at or after it. (`w` stops at the first reply still queued, so
/// a reply that becomes sent later is returned then, in its place.)
#[derive(Debug, Default, Serialize, Deserialize)]
struct Cursor {
    w: i64,
    #[serde(default)]
    s: Vec<String>,
}

impl Cursor {
    fn parse(raw: &str) -> Result<Self, ApiError> {
        let bad = || ApiError::bad_request("after is not a cursor this API returned");
        let json = URL_SAFE_NO_PAD.decode(raw.trim()).map_err(|_| bad())?;
        let cursor: Cursor = serde_json::from_slice(&json).map_err(|_| bad())?;
        if cursor.s.len() > MAX_CURSOR_IDS {
            return Err(bad());
        }
        Ok(cursor)
    }

    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("a cursor is plain JSON"))
    }

    fn has_seen(&self, id: &str, at: i64) -> bool {
        at < self.w || self.s.iter().any(|s| s == id)
    }
}

/// One message of the conversation, as the widget shows it.
#[derive(Debug, Serialize)]
struct WidgetMessage {
    /// Inbound: the id `POST /chat/api/messages` answered; outbound: the reply's id.
    id: String,
    /// Inbound only: the widget's `client_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    direction: &'static str,
    text: String,
    sent_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    author_name: Option<String>,
}

/// What the visitor may see of a message of its session: its own messages and the replies
/// delivered to it; never notes, other channels or other sessions.
enum Shown {
    Visible,
    /// A reply that may still become visible (queued or being sent).
    Pending,
    Hidden,
}

fn shown(message: &Message, session: &Conversation) -> Shown {
    if message.channel != ChannelKind::Chat
        || &message.conversation != session
        || message.internal_note
        || message.event == MessageEvent::Removed
    {
        return Shown::Hidden;
    }
    match message.direction {
        Direction::Inbound => Shown::Visible,
        Direction::Outbound => match message.delivery.as_ref().map(|d| d.status) {
            Some(DeliveryStatus::Sent) => Shown::Visible,
            Some(DeliveryStatus::Queued) => Shown::Pending,
            _ => Shown::Hidden,
        },
    }
}

fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn widget_message(message: &Message, session_id: &str) -> WidgetMessage {
    let inbound = message.direction == Direction::Inbound;
    let platform_id = message.platform_message_id.clone();
    let client_id = platform_id
        .as_deref()
        .filter(|_| inbound)
        .and_then(|id| id.strip_prefix(session_id))
        .and_then(|id| id.strip_prefix('/'))
        .map(str::to_string);
    WidgetMessage {
        id: if inbound {
            platform_id.unwrap_or_else(|| message.id.to_string())
        } else {
            message.id.to_string()
        },
        client_id,
        direction: if inbound { "inbound" } else { "outbound" },
        text: message.text.clone(),
        sent_at: message.sent_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        author_name: message.author.name.clone(),
    }
}

async fn list_messages(
    State(state): State<Arc<ChatApiState>>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let key = state.key()?;
    let now = state.clock.now();
    let claims = bearer(&headers, |t| key.verify(t, now))?;
    state.limit(
        format!("visitor:{}:reads", claims.vid),
        state.limits.visitor_reads,
    )?;
    let cursor = match query.after.as_deref().filter(|a| !a.trim().is_empty()) {
        Some(raw) => Cursor::parse(raw)?,
        None => Cursor::default(),
    };
    let session = Conversation::ChatSession {
        session_id: claims.sid.to_string(),
    };
    let conversation_key = session
        .key(ChannelKind::Chat)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let unavailable = |e: crossdesk_core::StoreError| ApiError::unavailable(e.to_string());
    let stored = match state
        .store
        .find_ticket_by_conversation(&conversation_key)
        .await
        .map_err(unavailable)?
    {
        Some(ticket) => state
            .store
            .list_messages(&ticket)
            .await
            .map_err(unavailable)?,
        None => Vec::new(),
    };
    let mut visible = Vec::new();
    let mut first_pending: Option<i64> = None;
    for message in &stored {
        match shown(message, &session) {
            Shown::Visible => visible.push(message),
            Shown::Pending => {
                let at = millis(message.sent_at);
                first_pending = Some(first_pending.map_or(at, |p| p.min(at)));
            }
            Shown::Hidden => {}
        }
    }
    let fresh: Vec<WidgetMessage> = visible
        .iter()
        .filter(|m| !cursor.has_seen(m.id.as_str(), millis(m.sent_at)))
        .map(|m| widget_message(m, claims.sid.as_str()))
        .collect();
    // Everything visible has now been returned; the watermark stops at the first pending reply.
    let latest = visible.iter().map(|m| millis(m.sent_at)).max();
    let w = match (first_pending, latest) {
        (Some(p), _) => p,
        (None, Some(l)) => l.max(cursor.w),
        (None, None) => cursor.w,
    };
    let next = Cursor {
        w,
        s: visible
            .iter()
            .filter(|m| millis(m.sent_at) >= w)
            .map(|m| m.id.to_string())
            .take(MAX_CURSOR_IDS)
            .collect(),
    };
    Ok(Json(json!({ "messages": fresh, "cursor": next.encode() })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate_limit::InMemoryRateLimiter;
    use axum::http::Request as HttpRequest;
    use crossdesk_core::SystemClock;
    use crossdesk_embedded::{Database, SqliteArchive, SqliteQueue, SqliteStore};
    use secrecy::SecretString;
    use tower::ServiceExt;

    fn router(origins: &str, key: bool) -> Router {
        let db = Database::in_memory().unwrap();
        let settings = ChatApiSettings {
            session_key: key.then(|| {
                SessionKey::new(SecretString::from("unit-test-session-key-0123")).unwrap()
            }),
            allowed_origins: AllowedOrigins::parse(origins).unwrap(),
        };
        chat_router(
            ChatApiState::new(
                settings,
                Arc::new(SqliteStore::new(db.clone())),
                Arc::new(SqliteQueue::new(db.clone())),
                Arc::new(SqliteArchive::new(db)),
                Arc::new(SystemClock),
                Arc::new(InMemoryRateLimiter::new()),
            )
            .with_limits(ChatLimits {
                ip_sessions: Limit::per_minute(2),
                ..ChatLimits::default()
            }),
        )
    }

    async fn call(router: &Router, request: HttpRequest<Body>) -> Response {
        router.clone().oneshot(request).await.unwrap()
    }

    #[tokio::test]
    async fn preflight_is_204_and_every_answer_carries_cors_for_allowed_origins_only() {
        let router = router("https://shop.example.com", true);
        let preflight = HttpRequest::builder()
            .method(Method::OPTIONS)
            .uri("/chat/api/messages")
            .header(header::ORIGIN, "https://shop.example.com")
            .body(Body::empty())
            .unwrap();
        let answer = call(&router, preflight).await;
        assert_eq!(answer.status(), StatusCode::NO_CONTENT);
        let h = answer.headers();
        assert_eq!(
            h[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://shop.example.com"
        );
        assert_eq!(
            h[header::ACCESS_CONTROL_ALLOW_HEADERS],
            "authorization, content-type"
        );
        assert_eq!(
            h[header::ACCESS_CONTROL_ALLOW_METHODS],
            "GET, POST, OPTIONS"
        );
        assert_eq!(h[header::VARY], "Origin");

        let foreign = HttpRequest::get("/chat/api/messages")
            .header(header::ORIGIN, "https://evil.example")
            .body(Body::empty())
            .unwrap();
        let answer = call(&router, foreign).await;
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED, "no token");
        assert!(answer
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none());
        assert_eq!(answer.headers()[header::CACHE_CONTROL], "no-store");
    }

    #[tokio::test]
    async fn refuses_missing_and_forged_tokens_and_limits_sessions_per_address() {
        let router = router("*", true);
        let start = || {
            HttpRequest::post("/chat/api/sessions")
                .body(Body::empty())
                .unwrap()
        };
        let answer = call(&router, start()).await;
        assert_eq!(answer.status(), StatusCode::CREATED);
        assert_eq!(answer.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        let body = axum::body::to_bytes(answer.into_body(), 4096)
            .await
            .unwrap();
        let session: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let token = session["token"].as_str().unwrap();
        let forged = format!("{}x", &token[..token.len() - 1]);
        for authorization in [
            None,
            Some("Bearer nonsense".to_string()),
            Some(format!("Bearer {forged}")),
        ] {
            let mut request = HttpRequest::get("/chat/api/messages");
            if let Some(a) = &authorization {
                request = request.header(header::AUTHORIZATION, a);
            }
            let answer = call(&router, request.body(Body::empty()).unwrap()).await;
            assert_eq!(
                answer.status(),
                StatusCode::UNAUTHORIZED,
                "{authorization:?}"
            );
        }
        let read = HttpRequest::get("/chat/api/messages")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        assert_eq!(call(&router, read).await.status(), StatusCode::OK);

        assert_eq!(call(&router, start()).await.status(), StatusCode::CREATED);
        let limited = call(&router, start()).await;
        assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
        let wait: u64 = limited.headers()[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&wait));
    }

    #[tokio::test]
    async fn without_a_session_key_the_api_is_unavailable() {
        let router = router("*", false);
        let answer = call(
            &router,
            HttpRequest::post("/chat/api/sessions")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn origins_parse_to_any_or_an_exact_list() {
        assert_eq!(AllowedOrigins::parse(""), Ok(AllowedOrigins::Any));
        assert_eq!(AllowedOrigins::parse(" * "), Ok(AllowedOrigins::Any));
        let list =
            AllowedOrigins::parse("https://shop.example.com/, http://localhost:3000").unwrap();
        assert_eq!(
            list,
            AllowedOrigins::List(vec![
                "https://shop.example.com".into(),
                "http://localhost:3000".into()
            ])
        );
        assert_eq!(
            list.allow(Some("https://shop.example.com")),
            Some(HeaderValue::from_static("https://shop.example.com"))
        );
        assert_eq!(list.allow(Some("https://evil.example")), None);
        assert_eq!(list.allow(None), None);
        assert!(AllowedOrigins::parse("shop.example.com").is_err());
        assert!(AllowedOrigins::parse("https://shop.example.com/path").is_err());
    }

    #[test]
    fn client_ids_are_short_and_url_safe() {
        assert!(valid_client_id("m_01-abc"));
        assert!(!valid_client_id(""));
        assert!(!valid_client_id("a/b"));
        assert!(!valid_client_id(&"a".repeat(65)));
    }
}
