//! Replies on Facebook and Instagram through Meta's Graph API.
//!
//! - Messenger and Instagram Direct (`Conversation::DirectThread`): `POST {graph}/me/messages`
//!   with `{"recipient":{"id":<PSID|IGSID>},"messaging_type":"RESPONSE","message":{"text"}}`
//!   within [`STANDARD_WINDOW`] of the customer's last message. From there to
//!   [`HUMAN_AGENT_WINDOW`] only as `"messaging_type":"MESSAGE_TAG","tag":"HUMAN_AGENT"`, and only
//!   when the page has Meta's Human Agent permission ([`FacebookSenderConfig::human_agent_enabled`]).
//!   Later, or without the permission, the reply is refused before calling Meta. No other
//!   message tag is ever sent. The windows are [`crossdesk_core::reply_window`]'s, the same the
//!   agent API shows and checks before a reply is queued.
//! - Comments (`Conversation::CommentThread`, `answering.platform_message_id` is the comment id):
//!   a public reply is `POST {graph}/{comment-id}/comments` on Facebook and
//!   `POST {graph}/{comment-id}/replies` on Instagram, with the form field `message`; a private
//!   reply is a Send API message to `{"recipient":{"comment_id"}}`, which Meta allows once per
//!   comment within [`PRIVATE_REPLY_WINDOW`] of it (a second one is refused before calling Meta
//!   when the first is known to be sent).
//! - The page token travels only in `Authorization: Bearer` (never in a URL, never logged, and
//!   scrubbed from any error text).
//! - Graph's error envelope `{"error":{"code","error_subcode","is_transient",…}}` and the HTTP
//!   status decide between [`SendError::Transient`], [`SendError::Permanent`] and
//!   [`SendError::Unauthorized`]. Whenever Meta may have delivered the reply without telling us
//!   (a timeout after the request left, a 2xx without an id), the error is permanent: the Send
//!   API has no idempotency key, so a retry could show the customer the same answer twice.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crossdesk_core::reply_window::{
    self, DirectWindow, ReplyCapabilities, WindowClosed, HUMAN_AGENT_TAG,
};
use crossdesk_core::{ChannelKind, Conversation, DeliveryStatus, MessageEvent, Visibility};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::{Client, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;
use tracing::{debug, warn, Instrument};
use url::Url;

use crate::send::{network_error, retry_after_secs, OutboundReply, ReplySender, SendError, Sent};

/// The Graph API version Crossdesk is written and tested against. Meta keeps a version for
/// about two years after its successor ships; moving on means re-reading the changelog for the
/// Send API and the comment edges, then changing this constant (and [`default_graph_url`]).
pub const GRAPH_API_VERSION: &str = "v24.0";
/// Graph's host, without the version.
pub const GRAPH_HOST: &str = "https://graph.facebook.com";
/// How long to wait for the TCP and TLS connection to Graph.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a whole call may take. Graph answers a send in well under a second; 10 s leaves
/// room for its slow moments while keeping an attempt far inside the reply-sender function's
/// timeout, so the function records the outcome instead of being killed mid-call.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The messaging windows, defined once in the core.
pub use crossdesk_core::reply_window::{HUMAN_AGENT_WINDOW, PRIVATE_REPLY_WINDOW, STANDARD_WINDOW};
/// Messenger's text limit, in characters (counted as UTF-16 code units, as Meta's clients do,
/// which never undercounts).
pub const MESSENGER_MAX_TEXT: usize = 2000;
/// Instagram Direct's text limit, in UTF-8 bytes.
pub const INSTAGRAM_MAX_TEXT_BYTES: usize = 1000;
/// The prefix of the `metadata` Crossdesk attaches to Messenger messages; the echo webhook
/// carries it back (`crossdesk:<reply message id>`).
pub use crate::facebook::METADATA_PREFIX;
/// The most of Graph's answer that is read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// The longest error text kept from Graph.
const MAX_REASON_CHARS: usize = 600;

/// Graph's base URL for [`GRAPH_API_VERSION`]: `https://graph.facebook.com/v24.0`.
pub fn default_graph_url() -> Url {
    Url::parse(&format!("{GRAPH_HOST}/{GRAPH_API_VERSION}"))
        .expect("the Graph host and version constants form a valid URL")
}

// ---- wire types ----

/// A Send API request (`POST /me/messages`).
#[derive(Debug, Serialize)]
struct SendRequest<'a> {
    recipient: Recipient<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    messaging_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tag: Option<&'static str>,
    message: OutMessage<'a>,
}

/// Who a Send API message goes to: a user (PSID / IGSID), or the author of a comment.
#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
enum Recipient<'a> {
    Id(&'a str),
    CommentId(&'a str),
}

#[derive(Debug, Serialize)]
struct OutMessage<'a> {
    text: &'a str,
    /// Returned in the echo webhook; Messenger only (Instagram documents no such field).
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<String>,
}

/// A successful answer: `{"recipient_id","message_id"}` from the Send API, `{"id"}` from a
/// comment edge. Also read to find an `error` sent with a 2xx.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Answer {
    message_id: Option<String>,
    id: Option<String>,
    error: Option<GraphError>,
}

/// Graph's error envelope.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ErrorEnvelope {
    error: Option<GraphError>,
}

/// `{"message","type","code","error_subcode","is_transient","error_user_msg","fbtrace_id"}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GraphError {
    message: Option<String>,
    code: Option<i64>,
    error_subcode: Option<i64>,
    is_transient: Option<bool>,
    error_user_msg: Option<String>,
    fbtrace_id: Option<String>,
}

// ---- configuration ----

/// How to reach Graph as the page.
#[derive(Debug, Clone)]
pub struct FacebookSenderConfig {
    /// Graph's base URL including the version ([`default_graph_url`] unless testing).
    pub graph_url: Url,
    /// The page access token (for Instagram: the token of the Page linked to the account).
    pub page_token: SecretString,
    /// Whether the app has Meta's Human Agent permission, which allows a human reply between
    /// 24 hours and 7 days after the customer's last message.
    pub human_agent_enabled: bool,
}

impl FacebookSenderConfig {
    /// The production configuration for a page token, without the Human Agent permission.
    pub fn new(page_token: SecretString) -> Self {
        FacebookSenderConfig {
            graph_url: default_graph_url(),
            page_token,
            human_agent_enabled: false,
        }
    }
}

/// Why a [`FacebookSender`] cannot be built.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The Graph URL cannot carry API paths.
    #[error("graph_url `{0}` must be an http(s) URL such as https://graph.facebook.com/v24.0")]
    GraphUrl(String),
    /// The page token is empty.
    #[error("the page token is empty")]
    EmptyToken,
    /// The page token contains characters an HTTP header cannot carry.
    #[error("the page token contains characters that cannot be sent in a header")]
    TokenNotAHeader,
}

// ---- sender ----

/// Sends replies on Facebook (Messenger, page comments) and Instagram (Direct, comments).
pub struct FacebookSender {
    graph_url: Url,
    token: SecretString,
    /// `Bearer <token>`, marked sensitive so HTTP-level logging never prints it.
    authorization: HeaderValue,
    human_agent_enabled: bool,
    client: Client,
}

impl fmt::Debug for FacebookSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FacebookSender")
            .field("graph_url", &self.graph_url.as_str())
            .field("page_token", &"[redacted]")
            .field("human_agent_enabled", &self.human_agent_enabled)
            .finish_non_exhaustive()
    }
}

impl FacebookSender {
    /// A sender calling Graph through `client` (build it with [`FacebookSender::default_client`]).
    pub fn new(config: FacebookSenderConfig, client: Client) -> Result<Self, ConfigError> {
        let url = config.graph_url;
        if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
            return Err(ConfigError::GraphUrl(url.to_string()));
        }
        let token = config.page_token;
        if token.expose_secret().trim().is_empty() {
            return Err(ConfigError::EmptyToken);
        }
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
            .map_err(|_| ConfigError::TokenNotAHeader)?;
        authorization.set_sensitive(true);
        Ok(FacebookSender {
            graph_url: url,
            token,
            authorization,
            human_agent_enabled: config.human_agent_enabled,
            client,
        })
    }

    /// An HTTP client with [`CONNECT_TIMEOUT`] and [`REQUEST_TIMEOUT`], following no redirects
    /// (Graph never redirects an API call, and a redirected POST would not be the answer).
    pub fn default_client() -> Result<Client, reqwest::Error> {
        Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
    }

    /// `{graph}/<segments…>`, each segment percent-encoded.
    fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.graph_url.clone();
        // `new` refused URLs that cannot be a base, so the path is always editable.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Decides what to call, or refuses the reply without calling Meta.
    fn plan<'a>(&self, r: &OutboundReply<'a>) -> Result<Call<'a>, SendError> {
        let reply = r.reply;
        let channel = reply.channel;
        if !matches!(channel, ChannelKind::Facebook | ChannelKind::Instagram) {
            return Err(SendError::refused(
                "wrong_channel",
                format!("the Facebook sender cannot deliver a {channel} reply"),
            ));
        }
        if reply.text.trim().is_empty() {
            return Err(SendError::refused(
                "empty_text",
                "the reply has no text (attachments are not sent yet)",
            ));
        }
        if r.answering.channel != channel || r.answering.conversation != reply.conversation {
            return Err(SendError::refused(
                "answering_mismatch",
                "the message being answered is not in the reply's conversation",
            ));
        }
        // Only Messenger documents `metadata`; Instagram's Send API may refuse unknown fields.
        // The echo brings it back, so the ticket writer can match the echo to this reply even
        // before Graph's answer is recorded.
        let metadata =
            (channel == ChannelKind::Facebook).then(|| crate::facebook::reply_metadata(&reply.id));
        match &reply.conversation {
            Conversation::DirectThread { user_id, .. } => {
                check_message_length(channel, &reply.text)?;
                let capabilities = ReplyCapabilities {
                    human_agent: self.human_agent_enabled,
                };
                let window = reply_window::direct_window(
                    channel,
                    last_customer_message(r),
                    r.now,
                    capabilities,
                )
                .map_err(|closed| {
                    refused_by_window(
                        closed,
                        "Answer by email if the customer has one, or wait for them to write again",
                    )
                })?;
                // The only tag ever sent is HUMAN_AGENT; the others are reserved by Meta's policy
                // for purposes other than support.
                let (messaging_type, tag) = match window {
                    DirectWindow::Standard { .. } => ("RESPONSE", None),
                    DirectWindow::HumanAgent { .. } => ("MESSAGE_TAG", Some(HUMAN_AGENT_TAG)),
                };
                Ok(Call {
                    url: self.endpoint(&["me", "messages"]),
                    body: Body::SendApi(SendRequest {
                        recipient: Recipient::Id(user_id),
                        messaging_type: Some(messaging_type),
                        tag,
                        message: OutMessage {
                            text: &reply.text,
                            metadata,
                        },
                    }),
                })
            }
            Conversation::CommentThread { .. } => {
                let comment_id = r
                    .answering
                    .platform_message_id
                    .as_deref()
                    .filter(|id| !id.trim().is_empty())
                    .ok_or_else(|| {
                        SendError::refused(
                            "missing_comment_id",
                            "the comment being answered has no platform id",
                        )
                    })?;
                match reply.visibility {
                    Visibility::Public => {
                        // Instagram replies to a comment on `replies`; Facebook on `comments`.
                        let edge = match channel {
                            ChannelKind::Instagram => "replies",
                            _ => "comments",
                        };
                        Ok(Call {
                            url: self.endpoint(&[comment_id, edge]),
                            body: Body::Comment {
                                message: &reply.text,
                            },
                        })
                    }
                    Visibility::Private => {
                        reply_window::private_reply_window(
                            comment_written_at(r, comment_id),
                            r.now,
                        )
                        .map_err(|closed| {
                            refused_by_window(closed, "Or answer by email if the customer has one")
                        })?;
                        // Meta allows one private reply per comment: one already sent (or
                        // perhaps sent) settles it. A reply still queued beside this one does
                        // not: whichever goes first is the one.
                        let earlier = reply_window::private_replies_to(
                            r.thread, channel, comment_id,
                        )
                        .find(|m| {
                            m.id != reply.id
                                && m.delivery.as_ref().is_some_and(|d| {
                                    matches!(
                                        d.status,
                                        DeliveryStatus::Sent | DeliveryStatus::Unknown
                                    )
                                })
                        });
                        if let Some(earlier) = earlier {
                            return Err(SendError::refused(
                                "private_reply_used",
                                format!(
                                    "Meta allows one private reply per comment, and reply {} \
                                     already answered this one privately. Reply publicly \
                                     instead, or by email if the customer has one",
                                    earlier.id
                                ),
                            ));
                        }
                        check_message_length(channel, &reply.text)?;
                        Ok(Call {
                            url: self.endpoint(&["me", "messages"]),
                            body: Body::SendApi(SendRequest {
                                recipient: Recipient::CommentId(comment_id),
                                messaging_type: None,
                                tag: None,
                                message: OutMessage {
                                    text: &reply.text,
                                    metadata,
                                },
                            }),
                        })
                    }
                }
            }
            _ => Err(SendError::refused(
                "wrong_conversation",
                format!("a {channel} reply must answer a direct thread or a comment thread"),
            )),
        }
    }

    /// Makes the call and reads Graph's answer.
    async fn call(&self, call: Call<'_>) -> Result<Sent, SendError> {
        let request = self
            .client
            .post(call.url)
            .header(AUTHORIZATION, self.authorization.clone());
        let (request, id_field) = match &call.body {
            Body::SendApi(body) => (request.json(body), IdField::MessageId),
            Body::Comment { message } => (request.form(&[("message", message)]), IdField::Id),
        };
        let response = request.send().await.map_err(|e| transport_error(&e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = read_capped(response, MAX_ANSWER_BYTES).await;
        self.interpret(status, &headers, body, id_field)
    }

    /// Turns Graph's answer into the sent id or a classified error.
    fn interpret(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: Result<Vec<u8>, reqwest::Error>,
        id_field: IdField,
    ) -> Result<Sent, SendError> {
        let body = match body {
            Ok(body) => body,
            Err(e) if status.is_success() => {
                // Meta accepted the call but the answer broke off: the id is lost, the message
                // probably delivered.
                return Err(unknown_outcome(&format!("the answer broke off ({e})")));
            }
            Err(_) => Vec::new(),
        };
        if status.is_success() {
            let answer: Answer = serde_json::from_slice(&body).unwrap_or_default();
            if let Some(error) = answer.error {
                return Err(self.graph_error(status, headers, &error));
            }
            let id = match id_field {
                IdField::MessageId => answer.message_id,
                IdField::Id => answer.id,
            };
            return match id.filter(|id| !id.trim().is_empty()) {
                Some(platform_id) => Ok(Sent { platform_id }),
                // Without an id Crossdesk cannot tell whether Meta delivered the reply; sending
                // it again could post it twice, so an agent decides.
                None => Err(SendError::Permanent {
                    code: "unexpected_response".into(),
                    reason: format!(
                        "Meta answered {} without the id of the sent message; the reply may \
                         have been delivered: check the conversation before sending it again",
                        status.as_u16()
                    ),
                }),
            };
        }
        match serde_json::from_slice::<ErrorEnvelope>(&body)
            .ok()
            .and_then(|e| e.error)
        {
            Some(error) => Err(self.graph_error(status, headers, &error)),
            None => Err(status_error(status, headers)),
        }
    }

    /// Classifies a Graph error and words it for the agent.
    fn graph_error(&self, status: StatusCode, headers: &HeaderMap, e: &GraphError) -> SendError {
        let code = match (e.code, e.error_subcode) {
            (Some(c), Some(s)) => format!("graph_{c}_{s}"),
            (Some(c), None) => format!("graph_{c}"),
            (None, _) => format!("http_{}", status.as_u16()),
        };
        let class = classify(status.as_u16(), e.code, e.error_subcode, e.is_transient);
        warn!(
            %code,
            fbtrace_id = e.fbtrace_id.as_deref().unwrap_or(""),
            "Graph refused the reply"
        );
        let mut said = e
            .message
            .clone()
            .unwrap_or_else(|| "Graph gave no message".into());
        if let Some(user_msg) = e.error_user_msg.as_deref().filter(|m| !m.is_empty()) {
            said = format!("{said} ({user_msg})");
        }
        let said = self.scrub(said.trim_end_matches(['.', ' ']));
        let trace = e
            .fbtrace_id
            .as_deref()
            .map(|id| format!(" [fbtrace_id {}]", self.scrub(id)))
            .unwrap_or_default();
        let reason = |advice: &str| format!("Meta: {said}. {advice}{trace}");
        match class {
            Class::Unauthorized => SendError::Unauthorized {
                code,
                reason: reason(
                    "The page token is no longer valid (expired, revoked, or the admin's \
                     password changed): reconnect the page in Crossdesk's channel settings",
                ),
            },
            Class::RateLimited => SendError::Transient {
                code,
                reason: reason("Meta is rate-limiting the page; the reply will be retried"),
                retry_after: retry_after_secs(headers).or_else(|| regain_access(headers)),
            },
            Class::Transient => SendError::Transient {
                code,
                reason: reason("Meta had a passing problem; the reply will be retried"),
                retry_after: retry_after_secs(headers),
            },
            Class::Permanent(advice) => SendError::Permanent {
                code,
                reason: reason(advice),
            },
        }
    }

    /// Removes the page token from text that came from outside.
    fn scrub(&self, text: &str) -> String {
        let token = self.token.expose_secret();
        // Replace before cutting, so no fragment of the token can survive the cut.
        let text = if token.is_empty() {
            text.to_string()
        } else {
            text.replace(token, "[redacted]")
        };
        text.chars().take(MAX_REASON_CHARS).collect()
    }
}

#[async_trait]
impl ReplySender for FacebookSender {
    async fn send(&self, reply: &OutboundReply<'_>) -> Result<Sent, SendError> {
        let span = tracing::info_span!(
            "facebook_send",
            ticket_id = reply.ticket_id.as_str(),
            channel = %reply.reply.channel,
            platform_message_id = reply.answering.platform_message_id.as_deref().unwrap_or(""),
        );
        async {
            let call = self.plan(reply).inspect_err(|e| {
                debug!(code = e.code(), "reply refused before calling Meta");
            })?;
            let sent = self.call(call).await?;
            debug!(sent_id = %sent.platform_id, "reply delivered");
            Ok(sent)
        }
        .instrument(span)
        .await
    }
}

// ---- planning ----

/// One Graph call.
struct Call<'a> {
    url: Url,
    body: Body<'a>,
}

enum Body<'a> {
    /// JSON to the Send API; the answer names the message in `message_id`.
    SendApi(SendRequest<'a>),
    /// The `message` form field to a comment edge; the answer names the comment in `id`.
    Comment { message: &'a str },
}

#[derive(Debug, Clone, Copy)]
enum IdField {
    MessageId,
    Id,
}

/// When the customer last wrote in the reply's conversation: their latest new message (the
/// answered one or a later one in the thread). Edits and removals open no window, so an edit
/// being answered counts from the message it edits; with no new message known at all, from the
/// answered event.
fn last_customer_message(r: &OutboundReply<'_>) -> DateTime<Utc> {
    let answered = std::iter::once(r.answering).filter(|m| m.event == MessageEvent::Created);
    let last_in_thread =
        reply_window::last_customer_message(r.thread, r.reply.channel, &r.reply.conversation);
    last_in_thread
        .into_iter()
        .chain(answered.map(|m| m.sent_at))
        .max()
        .unwrap_or(r.answering.sent_at)
}

/// When the answered comment was written: its creation in the thread when the answered event
/// is an edit, else the answered event's time.
fn comment_written_at(r: &OutboundReply<'_>, comment_id: &str) -> DateTime<Utc> {
    reply_window::comment_written_at(r.thread, r.reply.channel, comment_id)
        .unwrap_or(r.answering.sent_at)
        .min(r.answering.sent_at)
}

/// A reply outside its window, refused before calling Meta, with what the agent can do.
fn refused_by_window(closed: WindowClosed, advice: &str) -> SendError {
    SendError::refused(closed.code, format!("{} {advice}", closed.reason))
}

/// Refuses a direct or private message longer than the channel allows.
fn check_message_length(channel: ChannelKind, text: &str) -> Result<(), SendError> {
    let (too_long, limit) = match channel {
        ChannelKind::Instagram => (
            text.len() > INSTAGRAM_MAX_TEXT_BYTES,
            format!("Instagram allows {INSTAGRAM_MAX_TEXT_BYTES} bytes (about 1000 Latin letters, fewer with accents or emoji)"),
        ),
        _ => (
            text.encode_utf16().count() > MESSENGER_MAX_TEXT,
            format!("Messenger allows {MESSENGER_MAX_TEXT} characters (an emoji counts as two)"),
        ),
    };
    if too_long {
        return Err(SendError::refused(
            "text_too_long",
            format!("the reply is too long: {limit}. Shorten it or split it into several replies"),
        ));
    }
    Ok(())
}

// ---- errors ----

/// What a Graph error means for the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Unauthorized,
    RateLimited,
    Transient,
    /// Refused for good, with what the agent can do.
    Permanent(&'static str),
}

/// Subcodes of an invalid session: app removed (458), checkpoint (459), password changed
/// (460), expired (463), unconfirmed user (464), logged out (467).
const AUTH_SUBCODES: [i64; 6] = [458, 459, 460, 463, 464, 467];

/// Whether a Graph error means the token is no longer valid (190, 102, or an invalid-session
/// subcode): the channel needs re-authorization. Shared with the health checks.
pub(crate) fn is_auth_error(code: Option<i64>, subcode: Option<i64>) -> bool {
    matches!(code, Some(190 | 102)) || subcode.is_some_and(|s| AUTH_SUBCODES.contains(&s))
}

/// Classifies a Graph error by Meta's documented recovery tactics: code first, then
/// `is_transient`, then the HTTP status.
fn classify(
    status: u16,
    code: Option<i64>,
    subcode: Option<i64>,
    is_transient: Option<bool>,
) -> Class {
    if matches!(code, Some(190 | 102)) || subcode.is_some_and(|s| AUTH_SUBCODES.contains(&s)) {
        return Class::Unauthorized;
    }
    // 4 app, 17 user, 32 page, 341 application, 613 call-rate limits; 80000-80014 business
    // use case limits (80001 Pages, 80002 Instagram, 80006 Messenger).
    if status == 429 || matches!(code, Some(4 | 17 | 32 | 341 | 613 | 80000..=80014)) {
        return Class::RateLimited;
    }
    match (code, subcode) {
        // "Received invalid JSON reply": Meta documents that the message went out anyway.
        (Some(1), Some(1_357_046)) => {
            return Class::Permanent(
                "Meta reports an error although the message may have been delivered: check \
                 the conversation before sending it again",
            )
        }
        (Some(1), Some(99)) => {
            return Class::Permanent(
                "Meta's documented cause is a missing permission or app review: check the app's \
                 access level and permissions",
            )
        }
        _ => {}
    }
    if is_transient == Some(true) {
        return Class::Transient;
    }
    match code {
        // Unknown / service errors pass, unless Meta says otherwise and names the cause.
        Some(1 | 2) if is_transient == Some(false) && subcode.is_some() => {
            Class::Permanent("Meta says retrying will not help")
        }
        Some(1 | 2) => Class::Transient,
        Some(10) if subcode == Some(2_018_278) => Class::Permanent(
            "The messaging window has closed: answer by email if the customer has one, or wait \
             for them to write again",
        ),
        Some(551) => Class::Permanent(
            "The person cannot receive messages from the page right now (they may have blocked \
             it or left Facebook): answer on another channel",
        ),
        Some(10900) => Class::Permanent(
            "This comment already has its one private reply: answer publicly, or in Messenger \
             once the customer writes back",
        ),
        Some(10903) => {
            Class::Permanent("This comment cannot be answered: answer on another channel")
        }
        Some(368) => Class::Permanent(
            "Meta has blocked the page from this action for a policy reason: check the page's \
             quality in Meta Business Suite",
        ),
        Some(100) => Class::Permanent(
            "Meta refused a parameter (the comment or conversation may have been deleted, or \
             the text is too long): check it on Facebook or Instagram",
        ),
        Some(10 | 200..=299) => Class::Permanent(
            "The app lacks a permission for this reply (pages_messaging, Human Agent, \
             pages_manage_engagement or instagram_manage_comments): check the app's permissions",
        ),
        _ if status >= 500 || status == 408 => Class::Transient,
        _ => Class::Permanent("Meta refused the reply"),
    }
}

/// An answer without Graph's error envelope (a proxy's HTML page, an empty body).
fn status_error(status: StatusCode, headers: &HeaderMap) -> SendError {
    let n = status.as_u16();
    let code = format!("http_{n}");
    let retry_after = retry_after_secs(headers);
    match n {
        429 => SendError::Transient {
            code,
            reason: "Meta is rate-limiting the page; the reply will be retried".into(),
            retry_after: retry_after.or_else(|| regain_access(headers)),
        },
        408 | 500..=599 => SendError::Transient {
            code,
            reason: format!(
                "Meta answered {n} without an error description; the reply will be retried"
            ),
            retry_after,
        },
        401 => SendError::Unauthorized {
            code,
            reason: "Meta answered 401: reconnect the page in Crossdesk's channel settings".into(),
        },
        _ => SendError::Permanent {
            code,
            reason: format!("Meta answered {n} without an error description"),
        },
    }
}

/// A transport failure. Before the connection exists nothing was sent, so trying again is safe;
/// after it (a timeout waiting for the answer, a dropped connection), Meta may have delivered
/// the message and a retry could deliver it twice.
fn transport_error(e: &reqwest::Error) -> SendError {
    if e.is_connect() {
        return network_error(e);
    }
    if e.is_builder() {
        return SendError::Permanent {
            code: "bad_request".into(),
            reason: format!("the request to Meta could not be built: {e}"),
        };
    }
    unknown_outcome(&e.to_string())
}

fn unknown_outcome(what: &str) -> SendError {
    SendError::OutcomeUnknown {
        code: "unknown_outcome".into(),
        reason: format!(
            "the call to Meta was cut short after it was sent ({what}); the reply may have been \
             delivered: check the conversation before sending it again"
        ),
    }
}

/// The wait Meta announces in `X-Business-Use-Case-Usage`
/// (`{"<id>":[{"estimated_time_to_regain_access":<minutes>,…}]}`), page tokens' rate limits.
fn regain_access(headers: &HeaderMap) -> Option<Duration> {
    let raw = headers.get("x-business-use-case-usage")?.to_str().ok()?;
    let usage: Value = serde_json::from_str(raw).ok()?;
    usage
        .as_object()?
        .values()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|u| u.get("estimated_time_to_regain_access")?.as_u64())
        .filter(|minutes| *minutes > 0)
        .max()
        .map(|minutes| Duration::from_secs(minutes.saturating_mul(60)))
}

/// Reads at most `limit` bytes of the body (an answer larger than that is cut, not an error).
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= limit {
            break;
        }
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_meta::{unreachable_url, Answer, FakeServer};
    use chrono::TimeDelta;
    use crossdesk_core::{Author, Direction, Message, MessageId, TicketId};
    use serde_json::json;

    const TOKEN: &str = "EAAGtestPageToken0123456789";
    const PAGE: &str = "105000000000001";
    const PSID: &str = "2400000000000001";
    const IG_ACCOUNT: &str = "17841400000000001";
    const IGSID: &str = "6100000000000001";
    const POST: &str = "105000000000001_900000000000001";
    const COMMENT: &str = "900000000000001_700000000000001";

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-20T10:00:00Z")
            .unwrap()
            .to_utc()
    }

    fn dm(channel: ChannelKind) -> Conversation {
        let (account, user) = match channel {
            ChannelKind::Instagram => (IG_ACCOUNT, IGSID),
            _ => (PAGE, PSID),
        };
        Conversation::DirectThread {
            account_id: account.into(),
            user_id: user.into(),
        }
    }

    fn comments() -> Conversation {
        Conversation::CommentThread {
            post_id: POST.into(),
            user_id: PSID.into(),
        }
    }

    /// A customer's message, `age` before [`now`].
    fn inbound(
        channel: ChannelKind,
        conversation: Conversation,
        id: &str,
        age: TimeDelta,
    ) -> Message {
        Message {
            id: MessageId::generate(),
            channel,
            platform_message_id: Some(id.into()),
            author: Author {
                platform_id: conversation.customer_id().unwrap_or("").into(),
                ..Author::default()
            },
            conversation,
            direction: Direction::Inbound,
            event: MessageEvent::Created,
            text: "Where is my order?".into(),
            attachments: Vec::new(),
            visibility: Visibility::Private,
            sent_at: now() - age,
            received_at: now() - age,
            replies_to: Vec::new(),
            ticket_ref: None,
            subject: None,
            email: None,
            raw: None,
            signature_unverified: false,
            personal_data: Vec::new(),
            internal_note: false,
            monitoring: false,
            delivery: None,
        }
    }

    /// An agent's reply in the same conversation as `answering`.
    fn reply(answering: &Message, text: &str, visibility: Visibility) -> Message {
        Message {
            id: MessageId::parse("msg_0192f1a0b3c47d8e9f00112233445566").unwrap(),
            platform_message_id: None,
            direction: Direction::Outbound,
            author: Author {
                platform_id: "agent_7".into(),
                name: Some("Sam".into()),
                ..Author::default()
            },
            text: text.into(),
            visibility,
            sent_at: now(),
            received_at: now(),
            ..answering.clone()
        }
    }

    fn sender_for(url: Url, human_agent_enabled: bool) -> FacebookSender {
        FacebookSender::new(
            FacebookSenderConfig {
                graph_url: url,
                page_token: SecretString::from(TOKEN),
                human_agent_enabled,
            },
            FacebookSender::default_client().unwrap(),
        )
        .unwrap()
    }

    fn sender(server: &FakeServer, human_agent_enabled: bool) -> FacebookSender {
        sender_for(server.url(GRAPH_API_VERSION), human_agent_enabled)
    }

    async fn send(
        sender: &FacebookSender,
        reply: &Message,
        answering: &Message,
        thread: &[Message],
    ) -> Result<Sent, SendError> {
        let ticket_id = TicketId::parse("K3F9Q2XA").unwrap();
        sender
            .send(&OutboundReply {
                ticket_id: &ticket_id,
                reply,
                answering,
                thread,
                now: now(),
            })
            .await
    }

    fn message_sent() -> Answer {
        Answer::json(200, json!({"recipient_id": PSID, "message_id": "m_sent_1"}))
    }

    fn graph_error(status: u16, error: Value) -> Answer {
        Answer::json(status, json!({ "error": error }))
    }

    /// A Messenger DM answering a message of `age`, sent to a fake giving `answer`.
    async fn messenger_reply(
        answer: Answer,
        age: TimeDelta,
    ) -> (FakeServer, Result<Sent, SendError>) {
        let server = FakeServer::start(answer).await;
        let question = inbound(
            ChannelKind::Facebook,
            dm(ChannelKind::Facebook),
            "m_q1",
            age,
        );
        let answer = reply(&question, "It ships today.", Visibility::Private);
        let result = send(
            &sender(&server, true),
            &answer,
            &question,
            std::slice::from_ref(&question),
        )
        .await;
        (server, result)
    }

    #[tokio::test]
    async fn sends_messenger_reply_inside_24_hours_as_response() {
        let server = FakeServer::start(message_sent()).await;
        let question = inbound(
            ChannelKind::Facebook,
            dm(ChannelKind::Facebook),
            "m_q1",
            TimeDelta::hours(23),
        );
        let answer = reply(&question, "It ships today.", Visibility::Private);
        let sent = send(
            &sender(&server, false),
            &answer,
            &question,
            std::slice::from_ref(&question),
        )
        .await;
        assert_eq!(
            sent,
            Ok(Sent {
                platform_id: "m_sent_1".into()
            })
        );

        let request = server.only_request();
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/v24.0/me/messages");
        assert_eq!(
            request.query, None,
            "nothing, least of all the token, in the query"
        );
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(
            request.json(),
            json!({
                "recipient": {"id": PSID},
                "messaging_type": "RESPONSE",
                "message": {
                    "text": "It ships today.",
                    "metadata": "crossdesk:msg_0192f1a0b3c47d8e9f00112233445566"
                }
            })
        );
    }

    #[tokio::test]
    async fn tags_human_agent_between_24_hours_and_7_days_when_enabled() {
        let server = FakeServer::start(message_sent()).await;
        let question = inbound(
            ChannelKind::Facebook,
            dm(ChannelKind::Facebook),
            "m_q1",
            TimeDelta::days(3),
        );
        let answer = reply(&question, "Sorry for the wait.", Visibility::Private);
        let sent = send(
            &sender(&server, true),
            &answer,
            &question,
            std::slice::from_ref(&question),
        )
        .await;
        assert_eq!(
            sent,
            Ok(Sent {
                platform_id: "m_sent_1".into()
            })
        );
        assert_eq!(
            server.only_request().json(),
            json!({
                "recipient": {"id": PSID},
                "messaging_type": "MESSAGE_TAG",
                "tag": "HUMAN_AGENT",
                "message": {
                    "text": "Sorry for the wait.",
                    "metadata": "crossdesk:msg_0192f1a0b3c47d8e9f00112233445566"
                }
            })
        );
    }

    #[tokio::test]
    async fn refuses_after_24_hours_without_human_agent_and_calls_nothing() {
        let server = FakeServer::start(message_sent()).await;
        let question = inbound(
            ChannelKind::Facebook,
            dm(ChannelKind::Facebook),
            "m_q1",
            TimeDelta::hours(30),
        );
        let answer = reply(&question, "Hello?", Visibility::Private);
        let err = send(&sender(&server, false), &answer, &question, &[])
            .await
            .unwrap_err();
        assert_eq!(err.code(), "window_closed");
        assert!(!err.is_retryable());
        // The customer wrote at 2026-11-19T04:00:00Z: the window closed 24 h later.
        assert!(
            err.reason().contains("closed at 2026-11-20T04:00:00Z"),
            "{err}"
        );
        assert!(err.reason().contains("email"), "{err}");
        assert!(server.requests().is_empty());
    }

    #[tokio::test]
    async fn refuses_after_7_days_even_with_human_agent_and_calls_nothing() {
        let server = FakeServer::start(message_sent()).await;
        let question = inbound(
            ChannelKind::Facebook,
            dm(ChannelKind::Facebook),
            "m_q1",
            TimeDelta::days(7) + TimeDelta::seconds(1),
        );
        let answer = reply(&question, "Hello?", Visibility::Private);
        let err = send(&sender(&server, true), &answer, &question, &[])
            .await
            .unwrap_err();
        assert_eq!(err.code(), "window_closed");
        assert!(err.reason().contains("7 days"), "{err}");
        assert!(server.requests().is_empty());
    }

    #[tokio::test]
    async fn window_boundaries_are_inclusive() {
        let (server, sent) = messenger_reply(message_sent(), TimeDelta::hours(24)).await;
        assert!(sent.is_ok());
        assert_eq!(server.only_request().json()["messaging_type"], "RESPONSE");
        let (server, sent) = messenger_reply(message_sent(), TimeDelta::days(7)).await;
        assert!(sent.is_ok());
        assert_eq!(server.only_request().json()["tag"], "HUMAN_AGENT");
    }

    #[tokio::test]
    async fn window_opens_at_the_customers_latest_new_message_in_the_conversation() {
        let server = FakeServer::start(message_sent()).await;
        let old = inbound(
            ChannelKind::Facebook,
            dm(ChannelKind::Facebook),
            "m_old",
            TimeDelta::days(2),
        );
        let newer = inbound(
            ChannelKind::Facebook,
            dm(ChannelKind::Facebook),
            "m_new",
            TimeDelta::hours(1),
        );
        let mut edit = newer.clone();
        edit.event = MessageEvent::Edited;
        let other = Conversation::DirectThread {
            account_id: PAGE.into(),
            user_id: "someone_else".into(),
        };
        let elsewhere = inbound(
            ChannelKind::Facebook,
            other,
            "m_other",
            TimeDelta::minutes(5),
        );
        let answer = reply(&old, "Here you go.", Visibility::Private);

        // A newer message of the customer keeps the standard window open…
        let thread = [old.clone(), newer];
        assert!(send(&sender(&server, false), &answer, &old, &thread)
            .await
            .is_ok());
        assert_eq!(server.only_request().json()["messaging_type"], "RESPONSE");
        // …an edit or another conversation's message does not.
        let thread = [old.clone(), edit, elsewhere];
        let err = send(&sender(&server, false), &answer, &old, &thread)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "window_closed");
        assert_eq!(server.requests().len(), 1);
    }

    #[tokio::test]
    async fn an_answered_edit_counts_from_the_message_it_edits() {
        let server = FakeServer::start(message_sent()).await;
        let original = inbound(
            ChannelKind::Facebook,
            dm(ChannelKind::Facebook),
            "m_q1",
            TimeDelta::hours(30),
        );
        let mut edit = original.clone();
        edit.event = MessageEvent::Edited;
        edit.sent_at = now() - TimeDelta::hours(1);
        let answer = reply(&edit, "Noted.", Visibility::Private);
        let err = send(
            &sender(&server, false),
            &answer,
            &edit,
            &[original, edit.clone()],
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), "window_closed");

        let comment = inbound(
            ChannelKind::Facebook,
            comments(),
            COMMENT,
            TimeDelta::days(8),
        );
        let mut edited = comment.clone();
        edited.event = MessageEvent::Edited;
        edited.sent_at = now() - TimeDelta::hours(1);
        let private = reply(&edited, "Details by DM", Visibility::Private);
        let err = send(
            &sender(&server, false),
            &private,
            &edited,
            &[comment, edited.clone()],
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), "private_reply_window_closed");
        assert!(server.requests().is_empty());
    }

    #[tokio::test]
    async fn sends_instagram_dm_without_metadata() {
        let server = FakeServer::start(Answer::json(
            200,
            json!({"recipient_id": IGSID, "message_id": "aWdfZAG1"}),
        ))
        .await;
        let question = inbound(
            ChannelKind::Instagram,
            dm(ChannelKind::Instagram),
            "aWdfq",
            TimeDelta::hours(2),
        );
        let answer = reply(&question, "Yes, in blue too.", Visibility::Private);
        let sent = send(&sender(&server, false), &answer, &question, &[]).await;
        assert_eq!(
            sent,
            Ok(Sent {
                platform_id: "aWdfZAG1".into()
            })
        );
        let request = server.only_request();
        assert_eq!(request.path, "/v24.0/me/messages");
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        assert_eq!(
            request.json(),
            json!({
                "recipient": {"id": IGSID},
                "messaging_type": "RESPONSE",
                "message": {"text": "Yes, in blue too."}
            })
        );
    }

    #[tokio::test]
    async fn replies_publicly_to_a_facebook_comment() {
        let server = FakeServer::start(Answer::json(
            200,
            json!({"id": "900000000000001_700000000000009"}),
        ))
        .await;
        let comment = inbound(
            ChannelKind::Facebook,
            comments(),
            COMMENT,
            TimeDelta::days(30),
        );
        let answer = reply(&comment, "Thanks & see you soon!", Visibility::Public);
        let sent = send(&sender(&server, false), &answer, &comment, &[]).await;
        assert_eq!(
            sent,
            Ok(Sent {
                platform_id: "900000000000001_700000000000009".into()
            })
        );

        let request = server.only_request();
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, format!("/v24.0/{COMMENT}/comments"));
        assert_eq!(request.query, None);
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        assert_eq!(
            request.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(request.text(), "message=Thanks+%26+see+you+soon%21");
    }

    #[tokio::test]
    async fn replies_publicly_to_an_instagram_comment_on_the_replies_edge() {
        let server = FakeServer::start(Answer::json(200, json!({"id": "17873440459141021"}))).await;
        let conversation = Conversation::CommentThread {
            post_id: "17895695668004550".into(),
            user_id: IGSID.into(),
        };
        let comment = inbound(
            ChannelKind::Instagram,
            conversation,
            "17870913679156914",
            TimeDelta::hours(1),
        );
        let answer = reply(&comment, "Glad you like it", Visibility::Public);
        let sent = send(&sender(&server, false), &answer, &comment, &[]).await;
        assert_eq!(
            sent,
            Ok(Sent {
                platform_id: "17873440459141021".into()
            })
        );
        let request = server.only_request();
        assert_eq!(request.path, "/v24.0/17870913679156914/replies");
        assert_eq!(request.text(), "message=Glad+you+like+it");
    }

    #[tokio::test]
    async fn sends_private_reply_to_a_comment() {
        let server = FakeServer::start(message_sent()).await;
        let comment = inbound(
            ChannelKind::Facebook,
            comments(),
            COMMENT,
            TimeDelta::days(6),
        );
        let answer = reply(&comment, "I've sent you the details.", Visibility::Private);
        let sent = send(&sender(&server, false), &answer, &comment, &[]).await;
        assert_eq!(
            sent,
            Ok(Sent {
                platform_id: "m_sent_1".into()
            })
        );
        let request = server.only_request();
        assert_eq!(request.path, "/v24.0/me/messages");
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(
            request.json(),
            json!({
                "recipient": {"comment_id": COMMENT},
                "message": {
                    "text": "I've sent you the details.",
                    "metadata": "crossdesk:msg_0192f1a0b3c47d8e9f00112233445566"
                }
            })
        );
    }

    #[tokio::test]
    async fn refuses_private_reply_after_7_days_and_calls_nothing() {
        let server = FakeServer::start(message_sent()).await;
        let comment = inbound(
            ChannelKind::Facebook,
            comments(),
            COMMENT,
            TimeDelta::days(8),
        );
        let answer = reply(&comment, "Late answer", Visibility::Private);
        let err = send(&sender(&server, true), &answer, &comment, &[])
            .await
            .unwrap_err();
        assert_eq!(err.code(), "private_reply_window_closed");
        assert!(err.reason().contains("publicly"), "{err}");
        assert!(server.requests().is_empty());
    }

    #[tokio::test]
    async fn refuses_a_second_private_reply_once_the_first_is_sent() {
        let server = FakeServer::start(message_sent()).await;
        let comment = inbound(
            ChannelKind::Facebook,
            comments(),
            COMMENT,
            TimeDelta::days(1),
        );
        let answer = reply(&comment, "Details by DM", Visibility::Private);
        let earlier = |status: DeliveryStatus| Message {
            id: MessageId::generate(),
            replies_to: vec![COMMENT.into()],
            delivery: Some(crossdesk_core::Delivery {
                status,
                ..crossdesk_core::Delivery::queued()
            }),
            ..reply(&comment, "Sent you a message", Visibility::Private)
        };
        for status in [DeliveryStatus::Sent, DeliveryStatus::Unknown] {
            let first = earlier(status);
            let thread = [comment.clone(), first.clone(), answer.clone()];
            let err = send(&sender(&server, true), &answer, &comment, &thread)
                .await
                .unwrap_err();
            assert_eq!(err.code(), "private_reply_used", "{status:?}");
            assert!(err.reason().contains(first.id.as_str()), "{err}");
            assert!(err.reason().contains("publicly"), "{err}");
        }
        assert!(server.requests().is_empty());

        // A failed first attempt used nothing; another reply still queued may go either way
        // (Meta refuses whichever comes second); this reply itself never counts.
        for status in [DeliveryStatus::Failed, DeliveryStatus::Queued] {
            let thread = [comment.clone(), earlier(status), answer.clone()];
            assert!(send(&sender(&server, false), &answer, &comment, &thread)
                .await
                .is_ok());
        }
        assert_eq!(server.requests().len(), 2);
    }

    /// Meta reserves every other message tag (ACCOUNT_UPDATE, CONFIRMED_EVENT_UPDATE,
    /// POST_PURCHASE_UPDATE, …) for purposes that are not support: none is ever sent, whatever
    /// the age of the conversation, the channel, the kind of reply or the permission.
    #[tokio::test]
    async fn never_sends_a_message_tag_other_than_human_agent() {
        let server = FakeServer::start(message_sent()).await;
        let ages = [
            TimeDelta::zero(),
            TimeDelta::hours(23),
            TimeDelta::hours(24),
            TimeDelta::hours(25),
            TimeDelta::days(3),
            TimeDelta::days(7),
            TimeDelta::days(8),
            TimeDelta::days(400),
        ];
        let mut attempts = 0;
        for human_agent in [false, true] {
            for channel in [ChannelKind::Facebook, ChannelKind::Instagram] {
                for age in ages {
                    let question = inbound(channel, dm(channel), "m_q", age);
                    let comment = inbound(channel, comments(), COMMENT, age);
                    for (answering, visibility) in [
                        (&question, Visibility::Private),
                        (&comment, Visibility::Private),
                        (&comment, Visibility::Public),
                    ] {
                        let answer = reply(answering, "Hello", visibility);
                        let _ = send(&sender(&server, human_agent), &answer, answering, &[]).await;
                        attempts += 1;
                    }
                }
            }
        }
        let requests = server.requests();
        assert!(requests.len() > attempts / 2, "most replies were sent");
        let mut tagged = 0;
        for request in &requests {
            for reserved in [
                "ACCOUNT_UPDATE",
                "CONFIRMED_EVENT_UPDATE",
                "POST_PURCHASE_UPDATE",
                "CUSTOMER_FEEDBACK",
            ] {
                assert!(!request.text().contains(reserved), "{}", request.text());
            }
            if request.header("content-type") != Some("application/json") {
                continue;
            }
            let body = request.json();
            match body.get("tag") {
                None => assert_ne!(body["messaging_type"], "MESSAGE_TAG", "{body}"),
                Some(tag) => {
                    assert_eq!(tag, "HUMAN_AGENT", "{body}");
                    assert_eq!(body["messaging_type"], "MESSAGE_TAG", "{body}");
                    tagged += 1;
                }
            }
            assert!(
                body.get("messaging_type")
                    .is_none_or(|t| t == "RESPONSE" || t == "MESSAGE_TAG"),
                "{body}"
            );
        }
        assert!(tagged > 0, "the Human Agent window was exercised");
    }

    /// The sender and the agent API judge a reply by the same windows: what the ticket view shows
    /// as open is sent, what it shows as closed is refused before calling Meta.
    #[tokio::test]
    async fn sends_exactly_what_the_reply_windows_allow() {
        let server = FakeServer::start(message_sent()).await;
        let second = TimeDelta::seconds(1);
        for human_agent in [false, true] {
            let capabilities = ReplyCapabilities { human_agent };
            for age in [
                TimeDelta::hours(24),
                TimeDelta::hours(24) + second,
                TimeDelta::days(7),
                TimeDelta::days(7) + second,
            ] {
                let question =
                    inbound(ChannelKind::Facebook, dm(ChannelKind::Facebook), "m_q", age);
                let comment = inbound(ChannelKind::Instagram, comments(), COMMENT, age);
                for answering in [&question, &comment] {
                    let thread = std::slice::from_ref(answering);
                    let shown = reply_window::assess(
                        answering,
                        Visibility::Private,
                        thread,
                        None,
                        now(),
                        capabilities,
                    );
                    let answer = reply(answering, "Hello", Visibility::Private);
                    let sent =
                        send(&sender(&server, human_agent), &answer, answering, thread).await;
                    assert_eq!(
                        sent.is_ok(),
                        shown.can_reply,
                        "{age} human_agent={human_agent}: shown {shown:?}, sender {sent:?}"
                    );
                    if let Err(e) = sent {
                        assert!(e.code().ends_with("window_closed"), "{e}");
                    }
                }
            }
        }
    }

    #[tokio::test]
    async fn refuses_text_over_the_channel_limit_and_calls_nothing() {
        let server = FakeServer::start(message_sent()).await;
        let question = inbound(
            ChannelKind::Facebook,
            dm(ChannelKind::Facebook),
            "m_q1",
            TimeDelta::hours(1),
        );
        let too_long = reply(
            &question,
            &"a".repeat(MESSENGER_MAX_TEXT + 1),
            Visibility::Private,
        );
        let err = send(&sender(&server, false), &too_long, &question, &[])
            .await
            .unwrap_err();
        assert_eq!(err.code(), "text_too_long");
        // Emoji count twice, as in Meta's clients.
        let emoji = reply(
            &question,
            &"👍".repeat(MESSENGER_MAX_TEXT / 2 + 1),
            Visibility::Private,
        );
        let err = send(&sender(&server, false), &emoji, &question, &[])
            .await
            .unwrap_err();
        assert_eq!(err.code(), "text_too_long");
        // Instagram counts bytes: 501 × "é" is 1002 bytes.
        let ig_question = inbound(
            ChannelKind::Instagram,
            dm(ChannelKind::Instagram),
            "aWdfq",
            TimeDelta::hours(1),
        );
        let ig = reply(&ig_question, &"é".repeat(501), Visibility::Private);
        let err = send(&sender(&server, false), &ig, &ig_question, &[])
            .await
            .unwrap_err();
        assert_eq!(err.code(), "text_too_long");
        assert!(server.requests().is_empty());

        let at_limit = reply(
            &question,
            &"a".repeat(MESSENGER_MAX_TEXT),
            Visibility::Private,
        );
        assert!(send(&sender(&server, false), &at_limit, &question, &[])
            .await
            .is_ok());
        assert_eq!(server.requests().len(), 1);
    }

    #[tokio::test]
    async fn refuses_empty_text_other_channels_and_mismatched_answers() {
        let server = FakeServer::start(message_sent()).await;
        let sender = sender(&server, true);
        let question = inbound(
            ChannelKind::Facebook,
            dm(ChannelKind::Facebook),
            "m_q1",
            TimeDelta::hours(1),
        );

        let empty = reply(&question, "  \n", Visibility::Private);
        let err = send(&sender, &empty, &question, &[]).await.unwrap_err();
        assert_eq!(err.code(), "empty_text");

        let chat = Conversation::ChatSession {
            session_id: "s1".into(),
        };
        let chat_question = inbound(ChannelKind::Chat, chat, "s1/1", TimeDelta::hours(1));
        let chat_reply = reply(&chat_question, "Hi", Visibility::Private);
        let err = send(&sender, &chat_reply, &chat_question, &[])
            .await
            .unwrap_err();
        assert_eq!(err.code(), "wrong_channel");

        let answer = reply(&question, "Hi", Visibility::Private);
        let comment = inbound(
            ChannelKind::Facebook,
            comments(),
            COMMENT,
            TimeDelta::hours(1),
        );
        let err = send(&sender, &answer, &comment, &[]).await.unwrap_err();
        assert_eq!(err.code(), "answering_mismatch");

        let mut no_id = inbound(
            ChannelKind::Facebook,
            comments(),
            COMMENT,
            TimeDelta::hours(1),
        );
        no_id.platform_message_id = None;
        let public = reply(&no_id, "Hi", Visibility::Public);
        let err = send(&sender, &public, &no_id, &[]).await.unwrap_err();
        assert_eq!(err.code(), "missing_comment_id");
        assert!(server.requests().is_empty());
    }

    /// What each kind of Graph answer becomes.
    #[tokio::test]
    async fn maps_each_graph_error_class() {
        use SendError::{Permanent, Transient, Unauthorized};
        let cases = [
            (
                graph_error(400, json!({"message": "Error validating access token: Session has expired", "type": "OAuthException", "code": 190, "error_subcode": 463, "fbtrace_id": "Ab1"})),
                Unauthorized { code: "graph_190_463".into(), reason: String::new() },
            ),
            (
                graph_error(400, json!({"message": "Session expired", "type": "OAuthException", "code": 100, "error_subcode": 467})),
                Unauthorized { code: "graph_100_467".into(), reason: String::new() },
            ),
            (
                graph_error(403, json!({"message": "(#4) Application request limit reached", "code": 4, "is_transient": true})),
                Transient { code: "graph_4".into(), reason: String::new(), retry_after: None },
            ),
            (
                graph_error(400, json!({"message": "(#613) Calls to this api have exceeded the rate limit.", "code": 613}))
                    .with_header("x-business-use-case-usage", r#"{"105000000000001":[{"type":"messenger","call_count":100,"total_cputime":10,"total_time":12,"estimated_time_to_regain_access":5}]}"#),
                Transient { code: "graph_613".into(), reason: String::new(), retry_after: Some(Duration::from_secs(300)) },
            ),
            (
                graph_error(400, json!({"message": "Messenger rate limit", "code": 80006})),
                Transient { code: "graph_80006".into(), reason: String::new(), retry_after: None },
            ),
            (
                graph_error(500, json!({"message": "An unknown error occurred", "type": "OAuthException", "code": 1})),
                Transient { code: "graph_1".into(), reason: String::new(), retry_after: None },
            ),
            (
                graph_error(500, json!({"message": "An unexpected error has occurred. Please retry your request later.", "code": 2, "is_transient": true})),
                Transient { code: "graph_2".into(), reason: String::new(), retry_after: None },
            ),
            (
                graph_error(400, json!({"message": "Temporary send message failure. Please try again later.", "code": 1200, "is_transient": true})),
                Transient { code: "graph_1200".into(), reason: String::new(), retry_after: None },
            ),
            (
                // Published in restfb issue #1095: code 1 is not always passing; the subcode says why.
                graph_error(400, json!({"message": "An unknown error occurred", "type": "OAuthException", "code": 1, "error_subcode": 1446036, "is_transient": false, "error_user_msg": "Duplicate request."})),
                Permanent { code: "graph_1_1446036".into(), reason: String::new() },
            ),
            (
                graph_error(400, json!({"message": "(#10) This message is sent outside of allowed window.", "type": "OAuthException", "code": 10, "error_subcode": 2018278})),
                Permanent { code: "graph_10_2018278".into(), reason: String::new() },
            ),
            (
                graph_error(400, json!({"message": "(#551) This person isn't available right now.", "code": 551, "error_subcode": 1545041})),
                Permanent { code: "graph_551_1545041".into(), reason: String::new() },
            ),
            (
                graph_error(400, json!({"message": "(#100) Invalid parameter", "code": 100})),
                Permanent { code: "graph_100".into(), reason: String::new() },
            ),
            (
                graph_error(403, json!({"message": "(#200) Permissions error", "code": 200})),
                Permanent { code: "graph_200".into(), reason: String::new() },
            ),
            (
                graph_error(400, json!({"message": "(#10900) Activity already replied to", "code": 10900})),
                Permanent { code: "graph_10900".into(), reason: String::new() },
            ),
            (
                Answer::raw(500, "text/html", "<html><body>Sorry, something went wrong.</body></html>"),
                Transient { code: "http_500".into(), reason: String::new(), retry_after: None },
            ),
            (
                Answer::raw(503, "text/html", "<html>Service Unavailable</html>").with_header("retry-after", "30"),
                Transient { code: "http_503".into(), reason: String::new(), retry_after: Some(Duration::from_secs(30)) },
            ),
            (
                Answer::raw(429, "text/plain", "Too Many Requests").with_header("retry-after", "120"),
                Transient { code: "http_429".into(), reason: String::new(), retry_after: Some(Duration::from_secs(120)) },
            ),
            (
                graph_error(429, json!({"message": "(#32) Page request limit reached", "code": 32})).with_header("retry-after", "60"),
                Transient { code: "graph_32".into(), reason: String::new(), retry_after: Some(Duration::from_secs(60)) },
            ),
            (
                Answer::raw(400, "text/plain", ""),
                Permanent { code: "http_400".into(), reason: String::new() },
            ),
            (
                // A 2xx without an id: delivered or not, Crossdesk cannot tell; never resent.
                Answer::json(200, json!({"recipient_id": PSID})),
                Permanent { code: "unexpected_response".into(), reason: String::new() },
            ),
            (
                Answer::raw(200, "text/html", "<html>ok</html>"),
                Permanent { code: "unexpected_response".into(), reason: String::new() },
            ),
        ];
        for (answer, expected) in cases {
            let (_server, result) = messenger_reply(answer.clone(), TimeDelta::hours(1)).await;
            let err = result.expect_err("an error");
            let same_class = match (&err, &expected) {
                (
                    Transient {
                        code, retry_after, ..
                    },
                    Transient {
                        code: c,
                        retry_after: r,
                        ..
                    },
                ) => code == c && retry_after == r,
                (Permanent { code, .. }, Permanent { code: c, .. }) => code == c,
                (Unauthorized { code, .. }, Unauthorized { code: c, .. }) => code == c,
                _ => false,
            };
            assert!(
                same_class,
                "{answer:?}\n  gave {err:?}\n  expected {expected:?}"
            );
            assert!(!err.reason().is_empty());
        }
    }

    #[tokio::test]
    async fn error_reason_carries_graphs_message_advice_and_trace_id() {
        let answer = graph_error(
            400,
            json!({"message": "(#10) This message is sent outside of allowed window.", "code": 10, "error_subcode": 2018278, "fbtrace_id": "AbCdEf"}),
        );
        let (_server, result) = messenger_reply(answer, TimeDelta::hours(1)).await;
        let reason = result.unwrap_err().reason().to_string();
        assert!(reason.contains("outside of allowed window"), "{reason}");
        assert!(reason.contains("email"), "{reason}");
        assert!(reason.contains("fbtrace_id AbCdEf"), "{reason}");
    }

    #[tokio::test]
    async fn unreachable_graph_is_a_transient_network_error() {
        let url = unreachable_url(GRAPH_API_VERSION).await;
        let question = inbound(
            ChannelKind::Facebook,
            dm(ChannelKind::Facebook),
            "m_q1",
            TimeDelta::hours(1),
        );
        let answer = reply(&question, "Hi", Visibility::Private);
        let err = send(&sender_for(url, false), &answer, &question, &[])
            .await
            .unwrap_err();
        assert!(
            matches!(err, SendError::Transient { ref code, .. } if code == "network"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn timeout_after_sending_is_not_retried() {
        // Meta got the request but never answered: it may have delivered the message.
        let server = FakeServer::start(message_sent().after(Duration::from_secs(2))).await;
        let client = Client::builder()
            .timeout(Duration::from_millis(300))
            .build()
            .unwrap();
        let config = FacebookSenderConfig {
            graph_url: server.url(GRAPH_API_VERSION),
            ..FacebookSenderConfig::new(SecretString::from(TOKEN))
        };
        let sender = FacebookSender::new(config, client).unwrap();
        let question = inbound(
            ChannelKind::Facebook,
            dm(ChannelKind::Facebook),
            "m_q1",
            TimeDelta::hours(1),
        );
        let answer = reply(&question, "Hi", Visibility::Private);
        let err = send(&sender, &answer, &question, &[]).await.unwrap_err();
        assert_eq!(err.code(), "unknown_outcome");
        assert!(!err.is_retryable());
        assert_eq!(server.requests().len(), 1);
    }

    #[tokio::test]
    async fn token_never_appears_in_errors_or_debug_output() {
        // A Graph (or proxy) that quotes the credentials back in its error message.
        let echo = graph_error(
            400,
            json!({"message": format!("Invalid token Bearer {TOKEN}"), "code": 190, "fbtrace_id": TOKEN}),
        );
        let (_server, result) = messenger_reply(echo, TimeDelta::hours(1)).await;
        let err = result.unwrap_err();
        let unreachable = send(
            &sender_for(unreachable_url(GRAPH_API_VERSION).await, false),
            &reply(
                &inbound(
                    ChannelKind::Facebook,
                    dm(ChannelKind::Facebook),
                    "m",
                    TimeDelta::hours(1),
                ),
                "Hi",
                Visibility::Private,
            ),
            &inbound(
                ChannelKind::Facebook,
                dm(ChannelKind::Facebook),
                "m",
                TimeDelta::hours(1),
            ),
            &[],
        )
        .await
        .unwrap_err();
        let config = FacebookSenderConfig::new(SecretString::from(TOKEN));
        let sender = sender_for(default_graph_url(), true);
        for text in [
            err.to_string(),
            format!("{err:?}"),
            unreachable.to_string(),
            format!("{unreachable:?}"),
            format!("{config:?}"),
            format!("{sender:?}"),
        ] {
            assert!(!text.contains(TOKEN), "token leaked: {text}");
        }
        assert!(err.reason().contains("[redacted]"));
    }

    #[test]
    fn rejects_unusable_configuration() {
        let client = Client::new();
        let bad_url = FacebookSenderConfig {
            graph_url: Url::parse("mailto:graph@example.com").unwrap(),
            ..FacebookSenderConfig::new(SecretString::from(TOKEN))
        };
        assert!(matches!(
            FacebookSender::new(bad_url, client.clone()),
            Err(ConfigError::GraphUrl(_))
        ));
        let empty = FacebookSenderConfig::new(SecretString::from(""));
        assert_eq!(
            FacebookSender::new(empty, client.clone()).unwrap_err(),
            ConfigError::EmptyToken
        );
        let newline = FacebookSenderConfig::new(SecretString::from("abc\ndef"));
        assert_eq!(
            FacebookSender::new(newline, client).unwrap_err(),
            ConfigError::TokenNotAHeader
        );
        assert_eq!(
            default_graph_url().as_str(),
            "https://graph.facebook.com/v24.0"
        );
    }

    #[test]
    fn classifies_by_code_before_transient_flag_and_status() {
        assert_eq!(
            classify(400, Some(190), None, Some(true)),
            Class::Unauthorized
        );
        assert_eq!(classify(400, Some(17), None, None), Class::RateLimited);
        assert_eq!(classify(400, Some(100), None, Some(true)), Class::Transient);
        assert!(matches!(
            classify(500, Some(1), Some(1_357_046), None),
            Class::Permanent(_)
        ));
        assert!(matches!(
            classify(500, Some(100), None, None),
            Class::Permanent(_)
        ));
        assert_eq!(classify(502, None, None, None), Class::Transient);
        assert_eq!(classify(500, Some(12345), None, None), Class::Transient);
        assert!(matches!(
            classify(400, Some(12345), None, None),
            Class::Permanent(_)
        ));
    }
}
