//! The website chat: Crossdesk's own signed webhook, sent by the company's chat backend (or by
//! Crossdesk's chat widget endpoint).
//!
//! Headers: `X-Crossdesk-Timestamp: <unix seconds>` and
//! `X-Crossdesk-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>` (several
//! comma-separated `v1=` values are accepted during secret rotation). Requests more than
//! [`REPLAY_WINDOW_SECS`] away from now are refused as replays.
//!
//! A message without text but with a `type` or fields Crossdesk does not know (a file, a card
//! the chat backend added) is stored with the text `unsupported message type: <type>`; the
//! archived body keeps the rest.

use chrono::{DateTime, Utc};
use crossdesk_core::{
    unsupported_text, Author, ChannelKind, Conversation, Direction, EmailAddress, Message,
    MessageEvent, MessageId, Visibility,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;

use crate::signature;
use crate::{Channel, ParseError, VerifiedWebhook, VerifyError, WebhookRequest};

/// The header carrying the signing time.
pub const TIMESTAMP_HEADER: &str = "x-crossdesk-timestamp";
/// The header carrying the signature(s).
pub const SIGNATURE_HEADER: &str = "x-crossdesk-signature";
/// How far (in seconds) a request's timestamp may be from now.
pub const REPLAY_WINDOW_SECS: i64 = 300;
/// The longest chat message text accepted, in characters.
pub const MAX_TEXT_CHARS: usize = 10_000;

// ---- wire types ----

#[derive(Debug, Deserialize)]
struct ChatPayload {
    session_id: String,
    visitor: Visitor,
    message: ChatMessage,
}

#[derive(Debug, Deserialize)]
struct Visitor {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ChatMessage {
    id: String,
    #[serde(default)]
    text: String,
    sent_at: DateTime<Utc>,
    /// `type` and any other field: content Crossdesk does not read (yet).
    #[serde(flatten)]
    extra: serde_json::Map<String, Value>,
}

impl ChatMessage {
    /// What the message carries beside text, named for a placeholder: its `type` (unless
    /// `text`), else the names of its other fields; `None` when it carries nothing else.
    fn unsupported_kind(&self) -> Option<String> {
        match self.extra.get("type") {
            Some(Value::String(t)) if t != "text" => Some(t.clone()),
            _ => {
                let fields: Vec<&str> = self
                    .extra
                    .keys()
                    .map(String::as_str)
                    .filter(|k| *k != "type")
                    .collect();
                (!fields.is_empty()).then(|| fields.join(", "))
            }
        }
    }
}

// ---- channel ----

/// The `X-Crossdesk-Timestamp` header: as sent (it is signed as is) and as unix seconds.
fn timestamp<'r>(request: &WebhookRequest<'r>) -> Result<(&'r str, i64), VerifyError> {
    let raw = request
        .headers
        .get(TIMESTAMP_HEADER)
        .ok_or(VerifyError::MissingHeader("X-Crossdesk-Timestamp"))?;
    let ts = raw
        .trim()
        .parse()
        .map_err(|_| VerifyError::MalformedHeader {
            header: "X-Crossdesk-Timestamp",
            reason: "expected unix seconds".into(),
        })?;
    Ok((raw, ts))
}

/// Refuses a timestamp more than [`REPLAY_WINDOW_SECS`] away from now.
fn fresh(ts: i64, now: DateTime<Utc>) -> Result<(), VerifyError> {
    let skew = now.timestamp().saturating_sub(ts).saturating_abs();
    if skew > REPLAY_WINDOW_SECS {
        return Err(VerifyError::Stale {
            skew_secs: skew,
            limit_secs: REPLAY_WINDOW_SECS,
        });
    }
    Ok(())
}

/// The chat channel, holding its signing secret.
pub struct ChatChannel {
    secret: SecretString,
}

impl ChatChannel {
    /// A chat channel verifying with the given secret.
    pub fn new(secret: SecretString) -> Self {
        ChatChannel { secret }
    }

    /// The headers that sign `body` at `timestamp` (for the chat backend, tests and replies).
    pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> (String, String) {
        let ts = timestamp.to_string();
        let sig = signature::hmac_sha256_hex(secret.as_bytes(), &[ts.as_bytes(), b".", body]);
        (ts, format!("v1={sig}"))
    }
}

impl Channel for ChatChannel {
    fn name(&self) -> &'static str {
        "chat"
    }

    fn kinds(&self) -> &'static [ChannelKind] {
        &[ChannelKind::Chat]
    }

    fn verify<'a>(
        &self,
        request: &WebhookRequest<'a>,
        now: DateTime<Utc>,
    ) -> Result<VerifiedWebhook<'a>, VerifyError> {
        let (ts_raw, ts) = timestamp(request)?;
        let sig_header = request
            .headers
            .get(SIGNATURE_HEADER)
            .ok_or(VerifyError::MissingHeader("X-Crossdesk-Signature"))?;
        let candidates: Vec<Vec<u8>> = sig_header
            .split(',')
            .filter_map(|part| part.trim().strip_prefix("v1="))
            .map(|hex| {
                signature::decode_hex_digest(hex).ok_or_else(|| VerifyError::MalformedHeader {
                    header: "X-Crossdesk-Signature",
                    reason: "v1 value is not 64 hex digits".into(),
                })
            })
            .collect::<Result<_, _>>()?;
        if candidates.is_empty() {
            return Err(VerifyError::MalformedHeader {
                header: "X-Crossdesk-Signature",
                reason: "expected v1=<hex>".into(),
            });
        }
        let key = self.secret.expose_secret().as_bytes();
        let signed = [ts_raw.trim().as_bytes(), b".", request.body];
        // Check every candidate so the time taken does not depend on which one matched.
        let valid = candidates
            .iter()
            .fold(false, |ok, c| signature::matches(key, &signed, c) | ok);
        if !valid {
            return Err(VerifyError::BadSignature);
        }
        // Only a correctly signed request is judged on its age, so a forger learns nothing.
        fresh(ts, now)?;
        Ok(VerifiedWebhook::new(request.body))
    }

    fn signature_header(&self) -> Option<&'static str> {
        Some("X-Crossdesk-Signature")
    }

    /// Report mode relaxes the signature only: the timestamp must still be present, well
    /// formed and within [`REPLAY_WINDOW_SECS`], so a stale or replayed request stays refused.
    fn verify_unsigned_parts(
        &self,
        request: &WebhookRequest<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), VerifyError> {
        let (_, ts) = timestamp(request)?;
        fresh(ts, now)
    }

    fn parse(
        &self,
        webhook: &VerifiedWebhook<'_>,
        received_at: DateTime<Utc>,
    ) -> Result<Vec<Message>, ParseError> {
        parse_payload(webhook.body(), received_at)
    }

    fn max_body_bytes(&self) -> usize {
        64 * 1024
    }
}

impl ChatChannel {
    /// Normalizes a chat payload Crossdesk built itself: the website widget's endpoint, which
    /// authenticated the visitor by its signed session token instead of a webhook signature.
    /// The one mapping from chat JSON to [`Message`], shared with the webhook.
    pub fn parse_own_payload(
        body: &[u8],
        received_at: DateTime<Utc>,
    ) -> Result<Vec<Message>, ParseError> {
        parse_payload(body, received_at)
    }
}

fn parse_payload(body: &[u8], received_at: DateTime<Utc>) -> Result<Vec<Message>, ParseError> {
    let payload: ChatPayload = serde_json::from_slice(body)?;
    let session_id = non_empty("session_id", &payload.session_id)?;
    let visitor_id = non_empty("visitor.id", &payload.visitor.id)?;
    let message_id = non_empty("message.id", &payload.message.id)?;
    let mut text = payload.message.text.trim().to_string();
    if text.is_empty() {
        // Something the chat backend sends that Crossdesk cannot show: named, not refused.
        text = payload
            .message
            .unsupported_kind()
            .map(|kind| unsupported_text(&kind))
            .ok_or_else(|| ParseError::Invalid("message.text is empty".into()))?;
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(ParseError::Invalid(format!(
            "message.text is longer than {MAX_TEXT_CHARS} characters"
        )));
    }
    let email = match payload.visitor.email.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(e) => Some(
            EmailAddress::parse(e)
                .map_err(|e| ParseError::Invalid(format!("visitor.email: {e}")))?,
        ),
    };
    let name = payload
        .visitor
        .name
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    Ok(vec![Message {
        id: MessageId::generate(),
        channel: ChannelKind::Chat,
        // Message ids come from the chat backend; scope them to the session.
        platform_message_id: Some(format!("{session_id}/{message_id}")),
        conversation: Conversation::ChatSession {
            session_id: session_id.to_string(),
        },
        direction: Direction::Inbound,
        event: MessageEvent::Created,
        author: Author {
            platform_id: visitor_id.to_string(),
            name,
            email,
            handle: None,
        },
        text,
        attachments: Vec::new(),
        visibility: Visibility::Private,
        sent_at: payload.message.sent_at,
        received_at,
        replies_to: Vec::new(),
        ticket_ref: None,
        subject: None,
        email: None,
        raw: Some(crossdesk_core::RawRef::of(body)),
        signature_unverified: false,
        personal_data: Vec::new(),
        internal_note: false,
        monitoring: false,
        delivery: None,
    }])
}

fn non_empty<'a>(field: &str, value: &'a str) -> Result<&'a str, ParseError> {
    let v = value.trim();
    if v.is_empty() || v.len() > 256 {
        Err(ParseError::Invalid(format!(
            "{field} must be 1 to 256 characters"
        )))
    } else {
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Headers;

    const SECRET: &str = "chat-test-secret";

    fn channel() -> ChatChannel {
        ChatChannel::new(SecretString::from(SECRET))
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-20T10:00:05Z")
            .unwrap()
            .to_utc()
    }

    fn sample() -> Vec<u8> {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../events/chat/message.json"
        ))
        .unwrap()
    }

    fn signed(body: &[u8], ts: i64) -> Headers {
        let (ts, sig) = ChatChannel::sign(SECRET, ts, body);
        Headers::new([(TIMESTAMP_HEADER, ts), (SIGNATURE_HEADER, sig)])
    }

    fn verify(headers: &Headers, body: &[u8]) -> Result<(), VerifyError> {
        channel()
            .verify(&WebhookRequest { headers, body }, now())
            .map(|_| ())
    }

    #[test]
    fn accepts_a_correctly_signed_request() {
        let body = sample();
        assert_eq!(verify(&signed(&body, now().timestamp()), &body), Ok(()));
    }

    #[test]
    fn accepts_any_of_several_signatures_during_rotation() {
        let body = sample();
        let (ts, good) = ChatChannel::sign(SECRET, now().timestamp(), &body);
        let (_, old) = ChatChannel::sign("old-secret", now().timestamp(), &body);
        let headers = Headers::new([
            (TIMESTAMP_HEADER, ts),
            (SIGNATURE_HEADER, format!("{old}, {good}")),
        ]);
        assert_eq!(verify(&headers, &body), Ok(()));
    }

    #[test]
    fn rejects_signature_over_modified_body() {
        let body = sample();
        let headers = signed(&body, now().timestamp());
        let mut forged = body.clone();
        forged.extend_from_slice(b" ");
        assert_eq!(verify(&headers, &forged), Err(VerifyError::BadSignature));
    }

    #[test]
    fn rejects_replayed_requests_outside_the_window() {
        let body = sample();
        let old = now().timestamp() - REPLAY_WINDOW_SECS - 1;
        assert!(matches!(
            verify(&signed(&body, old), &body),
            Err(VerifyError::Stale { .. })
        ));
        let future = now().timestamp() + REPLAY_WINDOW_SECS + 1;
        assert!(matches!(
            verify(&signed(&body, future), &body),
            Err(VerifyError::Stale { .. })
        ));
    }

    #[test]
    fn rejects_missing_and_malformed_headers() {
        let body = sample();
        let ts = now().timestamp().to_string();
        assert_eq!(
            verify(&Headers::default(), &body),
            Err(VerifyError::MissingHeader("X-Crossdesk-Timestamp"))
        );
        let only_ts = Headers::new([(TIMESTAMP_HEADER, ts.clone())]);
        assert_eq!(
            verify(&only_ts, &body),
            Err(VerifyError::MissingHeader("X-Crossdesk-Signature"))
        );
        for bad in ["sha256=abc", "v1=nothex", "v1="] {
            let h = Headers::new([
                (TIMESTAMP_HEADER, ts.clone()),
                (SIGNATURE_HEADER, bad.into()),
            ]);
            assert!(
                matches!(verify(&h, &body), Err(VerifyError::MalformedHeader { .. })),
                "{bad}"
            );
        }
        let h = Headers::new([(TIMESTAMP_HEADER, "yesterday"), (SIGNATURE_HEADER, "v1=00")]);
        assert!(matches!(
            verify(&h, &body),
            Err(VerifyError::MalformedHeader { .. })
        ));
    }

    #[test]
    fn parses_the_sample_into_one_private_inbound_message() {
        let body = sample();
        let messages = channel()
            .parse(&VerifiedWebhook::new(&body), now())
            .unwrap();
        assert_eq!(messages.len(), 1);
        let m = &messages[0];
        assert_eq!(m.channel, ChannelKind::Chat);
        assert_eq!(m.direction, Direction::Inbound);
        assert_eq!(m.visibility, Visibility::Private);
        assert_eq!(
            m.platform_message_id.as_deref(),
            Some("sess_sample_01/chatmsg_0001")
        );
        assert_eq!(m.text, "Can I change my delivery date?");
        assert_eq!(m.author.platform_id, "visitor_01");
        assert_eq!(m.author.name.as_deref(), Some("Alex Example"));
        assert_eq!(
            m.author.email.as_ref().map(|e| e.as_str()),
            Some("alex@example.com")
        );
        assert_eq!(
            m.conversation.key(ChannelKind::Chat).unwrap().as_str(),
            "chat:session:sess_sample_01"
        );
        assert_eq!(m.sent_at.to_rfc3339(), "2026-11-20T10:00:00+00:00");
        assert_eq!(m.raw, Some(crossdesk_core::RawRef::of(&body)));
    }

    #[test]
    fn names_a_message_of_an_unknown_type_instead_of_refusing_it() {
        let c = channel();
        let parse = |body: &str| {
            c.parse(&VerifiedWebhook::new(body.as_bytes()), now())
                .map(|m| m[0].text.clone())
        };
        assert_eq!(
            parse(
                r#"{"session_id":"s","visitor":{"id":"v"},"message":{"id":"m","type":"file","file":{"name":"cv.pdf"},"sent_at":"2026-11-20T10:00:00Z"}}"#
            ),
            Ok("unsupported message type: file".into())
        );
        assert_eq!(
            parse(
                r#"{"session_id":"s","visitor":{"id":"v"},"message":{"id":"m","text":"","rating":5,"sent_at":"2026-11-20T10:00:00Z"}}"#
            ),
            Ok("unsupported message type: rating".into())
        );
        // With text, unknown fields change nothing.
        assert_eq!(
            parse(
                r#"{"session_id":"s","visitor":{"id":"v"},"message":{"id":"m","text":"hi","type":"text","locale":"de","sent_at":"2026-11-20T10:00:00Z"}}"#
            ),
            Ok("hi".into())
        );
        // Nothing at all is still a malformed request.
        assert!(parse(
            r#"{"session_id":"s","visitor":{"id":"v"},"message":{"id":"m","type":"text","sent_at":"2026-11-20T10:00:00Z"}}"#
        )
        .is_err());
    }

    #[test]
    fn rejects_malformed_and_truncated_bodies() {
        let body = sample();
        let c = channel();
        for bad in [
            &body[..body.len() / 2],
            b"{}".as_slice(),
            b"".as_slice(),
            b"[1,2]".as_slice(),
            br#"{"session_id":"s","visitor":{"id":"v"},"message":{"id":"m","text":"  ","sent_at":"2026-11-20T10:00:00Z"}}"#.as_slice(),
            br#"{"session_id":"s","visitor":{"id":"v","email":"not-an-email"},"message":{"id":"m","text":"hi","sent_at":"2026-11-20T10:00:00Z"}}"#.as_slice(),
            br#"{"session_id":"s","visitor":{"id":"v"},"message":{"id":"m","text":"hi","sent_at":"yesterday"}}"#.as_slice(),
        ] {
            assert!(c.parse(&VerifiedWebhook::new(bad), now()).is_err());
        }
    }
}
