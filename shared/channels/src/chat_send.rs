//! Replies on the website chat: each agent reply is POSTed to the company's chat backend (the
//! configured callback URL), signed exactly like the inbound chat webhook.
//!
//! `POST <callback_url>` with
//! `{"session_id","message":{"id","text","sent_at","agent":{"id","name"}}}` and the headers
//! `X-Crossdesk-Timestamp: <unix seconds>` and
//! `X-Crossdesk-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`
//! ([`ChatChannel::sign`]), so the backend verifies replies with the same code and secret as
//! Crossdesk verifies its webhooks.
//!
//! `message.id` is the reply's Crossdesk id and stays the same on every attempt: the backend
//! must treat a second delivery of an id it already has as done. That is what makes retrying a
//! timed-out call safe here, unlike on Meta's Send API.
//!
//! Sessions of Crossdesk's own website widget (ids starting `cs_`) are not posted anywhere: the
//! widget reads its session's replies from the store (`GET /chat/api/messages`), so storing the
//! reply is its delivery and the sender marks it `sent` at once. A deployment with the widget
//! only (no callback URL) builds the sender with [`ChatSender::widget_only`].

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::SecondsFormat;
use crossdesk_core::{ChannelKind, Conversation};
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::{Client, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use thiserror::Error;
use tracing::{debug, warn, Instrument};
use url::Url;

use crate::chat::{ChatChannel, MAX_TEXT_CHARS, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::facebook_send::read_capped;
use crate::send::{network_error, retry_after_secs, OutboundReply, ReplySender, SendError, Sent};

/// How long to wait for the connection to the chat backend.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a whole call may take (well inside the reply-sender function's timeout).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of the backend's answer that is read.
const MAX_ANSWER_BYTES: usize = 16 * 1024;
/// How much of an error answer is quoted to the agent.
const MAX_QUOTE_CHARS: usize = 200;

// ---- wire types ----

/// The reply as the chat backend receives it.
#[derive(Debug, Serialize)]
struct ChatReply<'a> {
    session_id: &'a str,
    message: ChatReplyMessage<'a>,
}

#[derive(Debug, Serialize)]
struct ChatReplyMessage<'a> {
    /// Crossdesk's id of the reply; the backend's deduplication key.
    id: &'a str,
    text: &'a str,
    /// RFC 3339, UTC, milliseconds.
    sent_at: String,
    agent: Agent<'a>,
}

#[derive(Debug, Serialize)]
struct Agent<'a> {
    id: &'a str,
    /// `null` when the agent has no display name.
    name: Option<&'a str>,
}

// ---- configuration ----

/// Where replies go and the secret that signs them.
#[derive(Debug, Clone)]
pub struct ChatSenderConfig {
    /// The chat backend's endpoint for replies (used as is; redirects are not followed).
    pub callback_url: Url,
    /// The chat signing secret, shared with the inbound chat webhook.
    pub secret: SecretString,
}

/// Why a [`ChatSender`] cannot be built.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The callback URL is not an http(s) URL.
    #[error("callback_url `{0}` must be an http(s) URL")]
    CallbackUrl(String),
    /// The secret is empty: anyone could forge replies.
    #[error("the chat secret is empty")]
    EmptySecret,
}

// ---- sender ----

/// The prefix of a website widget session's id (see the module documentation).
pub const WIDGET_SESSION_PREFIX: &str = "cs_";

/// Sends replies to the website chat's backend, or leaves widget sessions' replies to the store.
pub struct ChatSender {
    /// The chat backend's endpoint and signing secret; `None`: widget sessions only.
    callback: Option<(Url, SecretString)>,
    client: Client,
}

impl fmt::Debug for ChatSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatSender")
            .field(
                "callback_url",
                &self.callback.as_ref().map(|(url, _)| url.as_str()),
            )
            .field("secret", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl ChatSender {
    /// A sender posting through `client` (build it with [`ChatSender::default_client`]).
    pub fn new(config: ChatSenderConfig, client: Client) -> Result<Self, ConfigError> {
        let url = config.callback_url;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(ConfigError::CallbackUrl(url.to_string()));
        }
        if config.secret.expose_secret().is_empty() {
            return Err(ConfigError::EmptySecret);
        }
        Ok(ChatSender {
            callback: Some((url, config.secret)),
            client,
        })
    }

    /// A sender for a chat with the website widget only: widget sessions' replies are marked
    /// sent; any other session's reply fails with `channel_not_configured`.
    pub fn widget_only(client: Client) -> Self {
        ChatSender {
            callback: None,
            client,
        }
    }

    /// An HTTP client with [`CONNECT_TIMEOUT`] and [`REQUEST_TIMEOUT`], following no redirects
    /// (a redirected POST would lose its body and signature).
    pub fn default_client() -> Result<Client, reqwest::Error> {
        Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
    }

    /// The signed body of a reply, or why it cannot be sent.
    fn body(&self, r: &OutboundReply<'_>) -> Result<Vec<u8>, SendError> {
        let reply = r.reply;
        if reply.channel != ChannelKind::Chat {
            return Err(SendError::refused(
                "wrong_channel",
                format!("the chat sender cannot deliver a {} reply", reply.channel),
            ));
        }
        let Conversation::ChatSession { session_id } = &reply.conversation else {
            return Err(SendError::refused(
                "wrong_conversation",
                "a chat reply must belong to a chat session",
            ));
        };
        if reply.text.trim().is_empty() {
            return Err(SendError::refused("empty_text", "the reply has no text"));
        }
        if reply.text.chars().count() > MAX_TEXT_CHARS {
            return Err(SendError::refused(
                "text_too_long",
                format!(
                    "the chat accepts {MAX_TEXT_CHARS} characters per message: shorten the \
                     reply or split it"
                ),
            ));
        }
        let payload = ChatReply {
            session_id,
            message: ChatReplyMessage {
                id: reply.id.as_str(),
                text: &reply.text,
                sent_at: r.now.to_rfc3339_opts(SecondsFormat::Millis, true),
                agent: Agent {
                    id: &reply.author.platform_id,
                    name: reply.author.name.as_deref(),
                },
            },
        };
        serde_json::to_vec(&payload).map_err(|e| SendError::Permanent {
            code: "bad_request".into(),
            reason: format!("the reply could not be encoded: {e}"),
        })
    }
}

#[async_trait]
impl ReplySender for ChatSender {
    async fn send(&self, r: &OutboundReply<'_>) -> Result<Sent, SendError> {
        let span = tracing::info_span!(
            "chat_send",
            ticket_id = r.ticket_id.as_str(),
            channel = %r.reply.channel,
            platform_message_id = r.answering.platform_message_id.as_deref().unwrap_or(""),
        );
        async {
            let body = self.body(r)?;
            if matches!(&r.reply.conversation, Conversation::ChatSession { session_id }
                if session_id.starts_with(WIDGET_SESSION_PREFIX))
            {
                // The widget polls the store for its replies: stored is delivered.
                debug!("chat reply to a widget session: delivered through the store");
                return Ok(Sent {
                    platform_id: r.reply.id.to_string(),
                });
            }
            let Some((callback_url, secret)) = &self.callback else {
                return Err(SendError::Permanent {
                    code: "channel_not_configured".into(),
                    reason: "this chat session is not the website widget's and no chat backend \
                             is configured: set CROSSDESK_CHAT_CALLBACK_URL"
                        .into(),
                });
            };
            // Signed at the attempt's time: the backend refuses signatures older than 5 minutes.
            let (timestamp, signature) =
                ChatChannel::sign(secret.expose_secret(), r.now.timestamp(), &body);
            let response = self
                .client
                .post(callback_url.clone())
                .header(CONTENT_TYPE, "application/json")
                .header(TIMESTAMP_HEADER, timestamp)
                .header(SIGNATURE_HEADER, signature)
                .body(body)
                .send()
                .await
                // Retrying is safe whatever happened: the backend deduplicates on `message.id`.
                .map_err(|e| network_error(&e))?;
            let status = response.status();
            let headers = response.headers().clone();
            if status.is_success() {
                debug!(status = status.as_u16(), "chat reply delivered");
                return Ok(Sent {
                    platform_id: r.reply.id.to_string(),
                });
            }
            let body = read_capped(response, MAX_ANSWER_BYTES)
                .await
                .unwrap_or_default();
            let error = status_error(status, &headers, &body);
            warn!(code = error.code(), "chat backend refused the reply");
            Err(error)
        }
        .instrument(span)
        .await
    }
}

/// Classifies a non-2xx answer of the chat backend.
fn status_error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> SendError {
    let n = status.as_u16();
    let code = format!("http_{n}");
    let said = quote(body);
    match n {
        408 | 429 | 500..=599 => SendError::Transient {
            code,
            reason: format!("the chat backend answered {n}{said}; the reply will be retried"),
            retry_after: retry_after_secs(headers),
        },
        401 | 403 => SendError::Unauthorized {
            code,
            reason: format!(
                "the chat backend refused Crossdesk's signature ({n}{said}): check that it \
                 verifies with the same chat secret and that the clocks agree within 5 minutes"
            ),
        },
        300..=399 => SendError::Permanent {
            code,
            reason: format!(
                "the callback URL redirects ({n}); configure the final URL of the chat backend"
            ),
        },
        _ => SendError::Permanent {
            code,
            reason: format!("the chat backend refused the reply ({n}{said})"),
        },
    }
}

/// `: <the start of the answer>` when it has printable text, else nothing.
fn quote(body: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(body)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_QUOTE_CHARS)
        .collect();
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::ChatChannel;
    use crate::fake_meta::{unreachable_url, Answer, FakeServer};
    use crate::{Channel, Headers, WebhookRequest};
    use chrono::{DateTime, TimeDelta, Utc};
    use crossdesk_core::{
        Author, Direction, Message, MessageEvent, MessageId, TicketId, Visibility,
    };
    use serde_json::json;

    const SECRET: &str = "chat-reply-secret-0123";
    const SESSION: &str = "sess_sample_01";
    const REPLY_ID: &str = "msg_0192f1a0b3c47d8e9f00112233445566";

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-20T10:00:05.250Z")
            .unwrap()
            .to_utc()
    }

    fn visitor_message() -> Message {
        Message {
            id: MessageId::generate(),
            channel: ChannelKind::Chat,
            platform_message_id: Some(format!("{SESSION}/chatmsg_0001")),
            conversation: Conversation::ChatSession {
                session_id: SESSION.into(),
            },
            direction: Direction::Inbound,
            event: MessageEvent::Created,
            author: Author {
                platform_id: "visitor_01".into(),
                ..Author::default()
            },
            text: "Can I change my delivery date?".into(),
            attachments: Vec::new(),
            visibility: Visibility::Private,
            sent_at: now() - TimeDelta::minutes(2),
            received_at: now() - TimeDelta::minutes(2),
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

    fn agent_reply(question: &Message, text: &str, agent_name: Option<&str>) -> Message {
        Message {
            id: MessageId::parse(REPLY_ID).unwrap(),
            platform_message_id: None,
            direction: Direction::Outbound,
            author: Author {
                platform_id: "agent_7".into(),
                name: agent_name.map(str::to_string),
                ..Author::default()
            },
            text: text.into(),
            sent_at: now(),
            received_at: now(),
            ..question.clone()
        }
    }

    fn sender_for(url: Url) -> ChatSender {
        ChatSender::new(
            ChatSenderConfig {
                callback_url: url,
                secret: SecretString::from(SECRET),
            },
            ChatSender::default_client().unwrap(),
        )
        .unwrap()
    }

    async fn send(
        sender: &ChatSender,
        reply: &Message,
        answering: &Message,
    ) -> Result<Sent, SendError> {
        let ticket_id = TicketId::parse("K3F9Q2XA").unwrap();
        sender
            .send(&OutboundReply {
                ticket_id: &ticket_id,
                reply,
                answering,
                thread: std::slice::from_ref(answering),
                now: now(),
            })
            .await
    }

    /// A reply sent to a fake callback giving `answer`.
    async fn reply_answered(answer: Answer) -> (FakeServer, Result<Sent, SendError>) {
        let server = FakeServer::start(answer).await;
        let question = visitor_message();
        let reply = agent_reply(&question, "Yes: pick a date in your account.", Some("Sam"));
        let result = send(&sender_for(server.url("chat/replies")), &reply, &question).await;
        (server, result)
    }

    #[tokio::test]
    async fn posts_the_reply_signed_like_inbound_chat() {
        let (server, sent) = reply_answered(Answer::json(200, json!({"ok": true}))).await;
        assert_eq!(
            sent,
            Ok(Sent {
                platform_id: REPLY_ID.into()
            })
        );

        let request = server.only_request();
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/chat/replies");
        assert_eq!(request.query, None);
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(
            request.json(),
            json!({
                "session_id": SESSION,
                "message": {
                    "id": REPLY_ID,
                    "text": "Yes: pick a date in your account.",
                    "sent_at": "2026-11-20T10:00:05.250Z",
                    "agent": {"id": "agent_7", "name": "Sam"}
                }
            })
        );
        let timestamp = request.header("x-crossdesk-timestamp").unwrap();
        assert_eq!(timestamp, now().timestamp().to_string());
        let expected = format!(
            "v1={}",
            crate::signature::hmac_sha256_hex(
                SECRET.as_bytes(),
                &[timestamp.as_bytes(), b".", &request.body]
            )
        );
        assert_eq!(
            request.header("x-crossdesk-signature"),
            Some(expected.as_str())
        );

        // The chat backend can verify it with the very code Crossdesk verifies webhooks with.
        let headers = Headers::new(request.headers.clone());
        let verified = ChatChannel::new(SecretString::from(SECRET)).verify(
            &WebhookRequest {
                headers: &headers,
                body: &request.body,
            },
            now(),
        );
        assert!(verified.is_ok());
    }

    #[tokio::test]
    async fn a_widget_session_reply_is_sent_through_the_store_without_calling() {
        let server = FakeServer::start(Answer::raw(500, "text/plain", "")).await;
        let mut question = visitor_message();
        question.conversation = Conversation::ChatSession {
            session_id: "cs_0123456789abcdef0123456789abcdef".into(),
        };
        let reply = agent_reply(&question, "Hello from the desk", None);
        let sent = send(&sender_for(server.url("hook")), &reply, &question).await;
        assert_eq!(
            sent,
            Ok(Sent {
                platform_id: REPLY_ID.into()
            })
        );
        assert!(server.requests().is_empty());

        let widget_only = ChatSender::widget_only(Client::new());
        assert!(send(&widget_only, &reply, &question).await.is_ok());
        let backend_session = visitor_message();
        let other = agent_reply(&backend_session, "Hi", None);
        assert_eq!(
            send(&widget_only, &other, &backend_session)
                .await
                .unwrap_err()
                .code(),
            "channel_not_configured"
        );
    }

    #[tokio::test]
    async fn agent_without_a_name_is_sent_as_null() {
        let server = FakeServer::start(Answer::raw(204, "text/plain", "")).await;
        let question = visitor_message();
        let reply = agent_reply(&question, "On it.", None);
        assert!(send(&sender_for(server.url("hook")), &reply, &question)
            .await
            .is_ok());
        assert_eq!(
            server.only_request().json()["message"]["agent"],
            json!({"id": "agent_7", "name": null})
        );
    }

    #[tokio::test]
    async fn maps_each_status_class() {
        for status in [200, 201, 202, 204] {
            let (_s, sent) = reply_answered(Answer::raw(status, "text/plain", "")).await;
            assert_eq!(
                sent,
                Ok(Sent {
                    platform_id: REPLY_ID.into()
                }),
                "{status}"
            );
        }
        /// The answer, the error code, the `Retry-After` kept, and the error's class.
        type Case = (Answer, &'static str, Option<u64>, fn(&SendError) -> bool);
        let cases: [Case; 9] = [
            (
                Answer::raw(429, "text/plain", "slow down").with_header("retry-after", "7"),
                "http_429",
                Some(7),
                SendError::is_retryable,
            ),
            (
                Answer::raw(500, "text/html", "<h1>oops</h1>"),
                "http_500",
                None,
                SendError::is_retryable,
            ),
            (
                Answer::raw(503, "text/plain", "").with_header("retry-after", "30"),
                "http_503",
                Some(30),
                SendError::is_retryable,
            ),
            (
                Answer::raw(408, "text/plain", ""),
                "http_408",
                None,
                SendError::is_retryable,
            ),
            (
                Answer::raw(401, "text/plain", "bad signature"),
                "http_401",
                None,
                |e| matches!(e, SendError::Unauthorized { .. }),
            ),
            (Answer::raw(403, "text/plain", ""), "http_403", None, |e| {
                matches!(e, SendError::Unauthorized { .. })
            }),
            (
                Answer::json(400, json!({"error": "unknown session"})),
                "http_400",
                None,
                |e| matches!(e, SendError::Permanent { .. }),
            ),
            (Answer::raw(404, "text/plain", ""), "http_404", None, |e| {
                matches!(e, SendError::Permanent { .. })
            }),
            (
                Answer::raw(302, "text/plain", "")
                    .with_header("location", "https://elsewhere.example/"),
                "http_302",
                None,
                |e| matches!(e, SendError::Permanent { .. }),
            ),
        ];
        for (answer, code, retry_after, is_class) in cases {
            let (server, result) = reply_answered(answer.clone()).await;
            let err = result.expect_err("an error");
            assert_eq!(err.code(), code, "{answer:?}");
            assert!(is_class(&err), "{answer:?} gave {err:?}");
            if let SendError::Transient {
                retry_after: got, ..
            } = &err
            {
                assert_eq!(*got, retry_after.map(Duration::from_secs), "{answer:?}");
            }
            assert_eq!(
                server.requests().len(),
                1,
                "no redirect followed, no retry inside"
            );
        }
        let (_s, result) =
            reply_answered(Answer::json(400, json!({"error": "unknown session"}))).await;
        assert!(result.unwrap_err().reason().contains("unknown session"));
    }

    #[tokio::test]
    async fn unreachable_backend_is_a_transient_network_error() {
        let question = visitor_message();
        let reply = agent_reply(&question, "Hi", None);
        let err = send(
            &sender_for(unreachable_url("hook").await),
            &reply,
            &question,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, SendError::Transient { ref code, .. } if code == "network"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn refuses_other_channels_empty_and_overlong_text_without_calling() {
        let server = FakeServer::start(Answer::raw(200, "text/plain", "")).await;
        let sender = sender_for(server.url("hook"));
        let question = visitor_message();

        let mut facebook = agent_reply(&question, "Hi", None);
        facebook.channel = ChannelKind::Facebook;
        assert_eq!(
            send(&sender, &facebook, &question)
                .await
                .unwrap_err()
                .code(),
            "wrong_channel"
        );

        let mut not_a_session = agent_reply(&question, "Hi", None);
        not_a_session.conversation = Conversation::EmailThread {
            root_message_id: "a@b".into(),
        };
        assert_eq!(
            send(&sender, &not_a_session, &question)
                .await
                .unwrap_err()
                .code(),
            "wrong_conversation"
        );

        let empty = agent_reply(&question, " ", None);
        assert_eq!(
            send(&sender, &empty, &question).await.unwrap_err().code(),
            "empty_text"
        );

        let long = agent_reply(&question, &"a".repeat(MAX_TEXT_CHARS + 1), None);
        assert_eq!(
            send(&sender, &long, &question).await.unwrap_err().code(),
            "text_too_long"
        );
        assert!(server.requests().is_empty());
    }

    #[tokio::test]
    async fn secret_never_appears_in_errors_or_debug_output() {
        let (_s, result) = reply_answered(Answer::raw(401, "text/plain", "nope")).await;
        let err = result.unwrap_err();
        let config = ChatSenderConfig {
            callback_url: Url::parse("https://chat.example.com/replies").unwrap(),
            secret: SecretString::from(SECRET),
        };
        let sender = sender_for(config.callback_url.clone());
        for text in [
            err.to_string(),
            format!("{err:?}"),
            format!("{config:?}"),
            format!("{sender:?}"),
        ] {
            assert!(!text.contains(SECRET), "secret leaked: {text}");
        }
    }

    #[test]
    fn rejects_unusable_configuration() {
        let config = |url: &str, secret: &str| ChatSenderConfig {
            callback_url: Url::parse(url).unwrap(),
            secret: SecretString::from(secret),
        };
        assert!(matches!(
            ChatSender::new(config("ftp://chat.example.com/x", SECRET), Client::new()),
            Err(ConfigError::CallbackUrl(_))
        ));
        assert_eq!(
            ChatSender::new(config("https://chat.example.com/x", ""), Client::new()).unwrap_err(),
            ConfigError::EmptySecret
        );
    }
}
