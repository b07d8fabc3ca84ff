//! Facebook and Instagram: Messenger, Instagram Direct and comments on the page's posts and the
//! account's media, all delivered by Meta's webhooks.
//!
//! - Handshake: `GET ?hub.mode=subscribe&hub.verify_token=<token>&hub.challenge=<n>` is answered
//!   with the challenge when the token matches the configured one.
//! - Signature: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>`, over the
//!   bytes exactly as Meta sent them (non-ASCII and `/` escaped). The legacy `X-Hub-Signature:
//!   sha1=` header alone is refused.
//! - Payload: `{"object":"page"|"instagram","entry":[…]}`; each entry carries Messenger events
//!   (`messaging[]`, or `standby[]` when another app owns the thread) or field changes
//!   (`changes[]`: page `feed` comments, Instagram `comments`). One webhook may batch several
//!   entries and events; every message among them is returned, everything else is skipped.

use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};
use crossdesk_core::{
    Attachment, AttachmentKind, Author, ChannelKind, Conversation, Direction, Message,
    MessageEvent, MessageId, RawRef, Visibility,
};
use secrecy::{ExposeSecret, SecretString};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tracing::{debug, warn};

use crate::signature;
use crate::{
    millis_to_time, secs_to_time, Channel, HandshakeError, HandshakeReply, ParseError, Query,
    VerifiedWebhook, VerifyError, WebhookRequest,
};

/// The header carrying the body's signature.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";
/// The longest `hub.challenge` echoed back, in characters.
pub const MAX_CHALLENGE_CHARS: usize = 256;
/// The author and customer id used for a removed comment whose event names no author (removals
/// are matched by comment id, so it never threads anything).
pub const UNKNOWN_AUTHOR: &str = "unknown";

// ---- wire types ----

/// The webhook envelope.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Envelope {
    object: Option<String>,
    entry: Option<Vec<Entry>>,
}

/// One page or account's batch of events.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Entry {
    /// The page id (Facebook) or professional account id (Instagram).
    id: Option<Id>,
    /// Milliseconds for messaging entries, seconds for change entries.
    time: Option<Time>,
    messaging: Option<Vec<MessagingEvent>>,
    /// Messenger events while another app owns the thread (handover protocol).
    standby: Option<Vec<MessagingEvent>>,
    changes: Option<Vec<Change>>,
}

/// One Messenger / Instagram Direct event. Only the kinds that carry a message are read;
/// `delivery`, `read`, `reaction`, `optin`, `referral`, … are left to serde to skip.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct MessagingEvent {
    sender: Option<Party>,
    recipient: Option<Party>,
    /// Milliseconds.
    timestamp: Option<Time>,
    message: Option<WireMessage>,
    message_edit: Option<MessageEdit>,
    postback: Option<Postback>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Party {
    id: Option<Id>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireMessage {
    mid: Option<Id>,
    text: Option<String>,
    attachments: Option<Vec<WireAttachment>>,
    quick_reply: Option<QuickReply>,
    reply_to: Option<ReplyTo>,
    is_echo: Option<bool>,
    is_deleted: Option<bool>,
    /// Instagram: the user sent something the API cannot show.
    is_unsupported: Option<bool>,
    /// Set on the "like" thumbs-up sticker and other stickers.
    sticker_id: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireAttachment {
    #[serde(rename = "type")]
    kind: Option<String>,
    /// An object (`url`, `sticker_id`, `coordinates`, …), a string (legacy `fallback`), null,
    /// or absent (Instagram `like_heart`).
    payload: Option<Value>,
    /// Legacy `fallback` and `location` attachments carry these beside the payload.
    url: Option<String>,
    title: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct QuickReply {
    payload: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ReplyTo {
    mid: Option<Id>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct MessageEdit {
    mid: Option<Id>,
    text: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Postback {
    mid: Option<Id>,
    title: Option<String>,
    payload: Option<String>,
}

/// A subscribed field's change. `value` stays untyped until the field and item are known, so
/// changes Crossdesk ignores can have any shape.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Change {
    field: Option<String>,
    value: Option<Value>,
}

/// A page `feed` change with `item: "comment"`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct FeedComment {
    verb: Option<String>,
    comment_id: Option<Id>,
    post_id: Option<Id>,
    parent_id: Option<Id>,
    from: Option<FeedAuthor>,
    /// Graph API v2.10 and older: `sender_id` / `sender_name` instead of `from`.
    sender_id: Option<Id>,
    sender_name: Option<String>,
    message: Option<String>,
    /// Unix seconds.
    created_time: Option<Time>,
    /// A picture attached to the comment.
    photo: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct FeedAuthor {
    id: Option<Id>,
    name: Option<String>,
}

/// An Instagram `comments` change.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct IgComment {
    id: Option<Id>,
    text: Option<String>,
    from: Option<IgAuthor>,
    media: Option<IgMedia>,
    parent_id: Option<Id>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct IgAuthor {
    id: Option<Id>,
    username: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct IgMedia {
    id: Option<Id>,
}

/// A Graph id. Meta sends strings; older payloads and many fixtures send JSON numbers. Both are
/// kept as the decimal string. Numbers too large to be exact (parsed as floats) are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Id(String);

impl Id {
    /// The id, unless it is blank.
    fn get(id: &Option<Id>) -> Option<&str> {
        id.as_ref().map(|i| i.0.as_str()).filter(|s| !s.is_empty())
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl Visitor<'_> for IdVisitor {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an id as a string or an integer")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Id, E> {
                Ok(Id(v.trim().to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Id, E> {
                Ok(Id(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Id, E> {
                Ok(Id(v.to_string()))
            }
        }
        deserializer.deserialize_any(IdVisitor)
    }
}

/// A timestamp as Meta sends it: a number (unit given by the field), a numeric string, or (on
/// some Graph objects) an ISO 8601 string. Anything else is treated as absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Time {
    Number(i64),
    At(DateTime<Utc>),
    Unknown,
}

impl Time {
    /// The time, reading a number as milliseconds; `fallback` when absent or out of range.
    fn millis_or(self, fallback: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Time::Number(ms) => millis_to_time(ms, fallback),
            Time::At(at) => at,
            Time::Unknown => fallback,
        }
    }

    /// The time, reading a number as seconds; `fallback` when absent or out of range.
    fn secs_or(self, fallback: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Time::Number(s) => secs_to_time(s, fallback),
            Time::At(at) => at,
            Time::Unknown => fallback,
        }
    }

    fn raw(self) -> Option<i64> {
        match self {
            Time::Number(n) => Some(n),
            Time::At(at) => Some(at.timestamp_millis()),
            Time::Unknown => None,
        }
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TimeVisitor;
        impl Visitor<'_> for TimeVisitor {
            type Value = Time;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a timestamp")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Time, E> {
                Ok(Time::Number(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Time, E> {
                Ok(i64::try_from(v).map_or(Time::Unknown, Time::Number))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Time, E> {
                // `as` saturates; out-of-range values then fail the conversion to a date.
                Ok(if v.is_finite() {
                    Time::Number(v as i64)
                } else {
                    Time::Unknown
                })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Time, E> {
                let v = v.trim();
                if let Ok(n) = v.parse::<i64>() {
                    return Ok(Time::Number(n));
                }
                let at = DateTime::parse_from_rfc3339(v)
                    .or_else(|_| DateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S%z"))
                    .map(|t| t.to_utc())
                    .or_else(|_| {
                        NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S").map(|t| t.and_utc())
                    });
                Ok(at.map_or(Time::Unknown, Time::At))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Time, E> {
                Ok(Time::Unknown)
            }
        }
        deserializer.deserialize_any(TimeVisitor)
    }
}

// ---- channel ----

/// The Facebook channel (Messenger, page comments, Instagram Direct and comments), holding the
/// app secret and the verify token.
pub struct FacebookChannel {
    app_secret: SecretString,
    verify_token: SecretString,
}

impl FacebookChannel {
    /// A channel verifying with the app secret and answering the handshake with the verify token.
    pub fn new(app_secret: SecretString, verify_token: SecretString) -> Self {
        FacebookChannel {
            app_secret,
            verify_token,
        }
    }

    /// The `X-Hub-Signature-256` value Meta would send with `body` (for tests and the sample
    /// sender).
    pub fn sign(app_secret: &str, body: &[u8]) -> String {
        format!(
            "sha256={}",
            signature::hmac_sha256_hex(app_secret.as_bytes(), &[body])
        )
    }

    fn token_matches(&self, offered: &str) -> bool {
        let configured = self.verify_token.expose_secret();
        // An unset token must not let an empty (or any) offer through.
        if configured.is_empty() {
            return false;
        }
        // Comparing digests keeps the comparison constant-time whatever the lengths.
        let a = Sha256::digest(configured.as_bytes());
        let b = Sha256::digest(offered.as_bytes());
        a.ct_eq(&b).into()
    }
}

impl Channel for FacebookChannel {
    fn name(&self) -> &'static str {
        "facebook"
    }

    fn kinds(&self) -> &'static [ChannelKind] {
        &[ChannelKind::Facebook, ChannelKind::Instagram]
    }

    fn handshake(&self, query: &Query) -> Result<HandshakeReply, HandshakeError> {
        let param = |name: &'static str| {
            query
                .get(name)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| HandshakeError::BadRequest(format!("missing {name}")))
        };
        let mode = param("hub.mode")?;
        let token = param("hub.verify_token")?;
        let challenge = param("hub.challenge")?;
        if mode != "subscribe" {
            return Err(HandshakeError::Forbidden(
                "hub.mode is not `subscribe`".into(),
            ));
        }
        if !self.token_matches(token) {
            return Err(HandshakeError::Forbidden(
                "hub.verify_token does not match".into(),
            ));
        }
        // Meta sends a number; echo nothing that could be more than a short printable token.
        if challenge.len() > MAX_CHALLENGE_CHARS || !challenge.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(HandshakeError::BadRequest(format!(
                "hub.challenge must be 1 to {MAX_CHALLENGE_CHARS} printable ASCII characters"
            )));
        }
        Ok(HandshakeReply {
            content_type: "text/plain",
            body: challenge.to_string(),
        })
    }

    fn verify<'a>(
        &self,
        request: &WebhookRequest<'a>,
        _now: DateTime<Utc>,
    ) -> Result<VerifiedWebhook<'a>, VerifyError> {
        // Meta's signature has no timestamp: replays are caught by deduplicating on message ids.
        let header = request
            .headers
            .get(SIGNATURE_HEADER)
            .ok_or(VerifyError::MissingHeader("X-Hub-Signature-256"))?
            .trim();
        let hex = header
            .get(..7)
            .filter(|prefix| prefix.eq_ignore_ascii_case("sha256="))
            .and_then(|_| header.get(7..))
            .ok_or_else(|| VerifyError::MalformedHeader {
                header: "X-Hub-Signature-256",
                reason: "expected sha256=<hex>".into(),
            })?;
        let digest = (hex.len() == 64)
            .then(|| signature::decode_hex_digest(hex))
            .flatten()
            .ok_or_else(|| VerifyError::MalformedHeader {
                header: "X-Hub-Signature-256",
                reason: "expected 64 hex digits after sha256=".into(),
            })?;
        let secret = self.app_secret.expose_secret();
        // With no secret configured anyone could sign: refuse everything.
        if secret.is_empty() || !signature::matches(secret.as_bytes(), &[request.body], &digest) {
            return Err(VerifyError::BadSignature);
        }
        Ok(VerifiedWebhook::new(request.body))
    }

    fn parse(
        &self,
        webhook: &VerifiedWebhook<'_>,
        received_at: DateTime<Utc>,
    ) -> Result<Vec<Message>, ParseError> {
        let body = webhook.body();
        if body.trim_ascii_start().first() != Some(&b'{') {
            return Err(ParseError::Invalid("expected a JSON object".into()));
        }
        let envelope: Envelope = serde_json::from_slice(body)?;
        let channel = match envelope.object.as_deref() {
            Some("page") => ChannelKind::Facebook,
            Some("instagram") => ChannelKind::Instagram,
            Some(other) => {
                return Err(ParseError::Invalid(format!(
                    "unsupported object `{}` (expected page or instagram)",
                    other.chars().take(40).collect::<String>()
                )))
            }
            None => return Err(ParseError::Invalid("`object` is missing".into())),
        };
        let entries = envelope
            .entry
            .ok_or_else(|| ParseError::Invalid("`entry` is missing".into()))?;
        let raw = webhook.raw_ref();
        let mut messages = Vec::new();
        for (entry_index, entry) in entries.into_iter().enumerate() {
            let ctx = Ctx {
                channel,
                raw: &raw,
                received_at,
                account_id: Id::get(&entry.id),
                entry_time: entry.time,
            };
            let events = entry.messaging.into_iter().flatten();
            let standby = entry.standby.into_iter().flatten();
            for (index, event) in events.chain(standby).enumerate() {
                messages.extend(ctx.messaging(event, (entry_index, index)));
            }
            for change in entry.changes.into_iter().flatten() {
                messages.extend(ctx.change(change)?);
            }
        }
        Ok(messages)
    }
}

// ---- parsing ----

/// What every event of one entry shares.
struct Ctx<'a> {
    channel: ChannelKind,
    raw: &'a RawRef,
    received_at: DateTime<Utc>,
    /// The page / professional account the entry is for.
    account_id: Option<&'a str>,
    entry_time: Option<Time>,
}

/// Who is who in a direct thread.
struct Parties {
    account_id: String,
    user_id: String,
    direction: Direction,
}

impl Parties {
    /// Sorts out the page and the customer. On an echo the page is the sender; some fixtures
    /// keep sender = user on echoes, so the customer is whichever side is not the entry's page.
    fn of(
        account: Option<&str>,
        sender: Option<&str>,
        recipient: Option<&str>,
        echo: bool,
    ) -> Option<Self> {
        let (page_side, user_side) = if echo {
            (sender, recipient)
        } else {
            (recipient, sender)
        };
        let account = account.or(page_side)?;
        let user = match user_side? {
            user if user != account => user,
            // The "user" side is the page itself: the other side is the customer.
            _ => page_side.filter(|p| *p != account)?,
        };
        let direction = if echo || sender == Some(account) {
            Direction::Outbound
        } else {
            Direction::Inbound
        };
        Some(Parties {
            account_id: account.to_string(),
            user_id: user.to_string(),
            direction,
        })
    }

    fn author(&self) -> Author {
        let platform_id = match self.direction {
            Direction::Outbound => &self.account_id,
            Direction::Inbound => &self.user_id,
        };
        Author {
            platform_id: platform_id.clone(),
            ..Author::default()
        }
    }

    fn conversation(&self) -> Conversation {
        Conversation::DirectThread {
            account_id: self.account_id.clone(),
            user_id: self.user_id.clone(),
        }
    }
}

impl Ctx<'_> {
    fn message(
        &self,
        conversation: Conversation,
        author: Author,
        direction: Direction,
        visibility: Visibility,
        sent_at: DateTime<Utc>,
    ) -> Message {
        Message {
            id: MessageId::generate(),
            channel: self.channel,
            platform_message_id: None,
            conversation,
            direction,
            event: MessageEvent::Created,
            author,
            text: String::new(),
            attachments: Vec::new(),
            visibility,
            sent_at,
            received_at: self.received_at,
            replies_to: Vec::new(),
            ticket_ref: None,
            subject: None,
            email: None,
            raw: Some(self.raw.clone()),
            delivery: None,
        }
    }

    /// A messaging event's time: its `timestamp` (ms), else the entry's `time` (ms).
    fn messaging_time(&self, timestamp: Option<Time>) -> DateTime<Utc> {
        let entry = self
            .entry_time
            .map_or(self.received_at, |t| t.millis_or(self.received_at));
        timestamp.map_or(entry, |t| t.millis_or(entry))
    }

    /// A change's time: its own (s), else the entry's `time` (s).
    fn change_time(&self, created: Option<Time>) -> DateTime<Utc> {
        let entry = self
            .entry_time
            .map_or(self.received_at, |t| t.secs_or(self.received_at));
        created.map_or(entry, |t| t.secs_or(entry))
    }

    /// One Messenger / Instagram Direct event: a message, an edit, an unsend or a postback;
    /// `None` for events without content (delivery, read, reaction, …) or without the ids a
    /// message needs.
    fn messaging(&self, event: MessagingEvent, position: (usize, usize)) -> Option<Message> {
        let sender = event.sender.as_ref().and_then(|p| Id::get(&p.id));
        let recipient = event.recipient.as_ref().and_then(|p| Id::get(&p.id));
        let sent_at = self.messaging_time(event.timestamp);
        if let Some(m) = event.message {
            let echo = m.is_echo.unwrap_or(false);
            let parties = self.parties(sender, recipient, echo)?;
            let Some(mid) = Id::get(&m.mid) else {
                warn!(channel = %self.channel, "message event without mid skipped");
                return None;
            };
            let mut msg = self.message(
                parties.conversation(),
                parties.author(),
                parties.direction,
                Visibility::Private,
                sent_at,
            );
            msg.platform_message_id = Some(mid.to_string());
            if m.is_deleted.unwrap_or(false) {
                msg.event = MessageEvent::Removed;
                return Some(msg);
            }
            msg.text = m
                .text
                .filter(|t| !t.is_empty())
                .or_else(|| m.quick_reply.and_then(|q| q.payload))
                .unwrap_or_default();
            let sticker = m.sticker_id.is_some_and(|s| !s.is_null());
            msg.attachments = m
                .attachments
                .unwrap_or_default()
                .iter()
                .map(|a| attachment(a, sticker))
                .collect();
            if msg.attachments.is_empty() && m.is_unsupported.unwrap_or(false) {
                msg.attachments
                    .push(bare_attachment(AttachmentKind::Unsupported, None));
            }
            msg.replies_to = m
                .reply_to
                .and_then(|r| Id::get(&r.mid).map(str::to_string))
                .into_iter()
                .collect();
            return Some(msg);
        }
        if let Some(edit) = event.message_edit {
            let parties = self.parties(sender, recipient, false)?;
            let Some(mid) = Id::get(&edit.mid) else {
                warn!(channel = %self.channel, "message_edit event without mid skipped");
                return None;
            };
            let mut msg = self.message(
                parties.conversation(),
                parties.author(),
                parties.direction,
                Visibility::Private,
                sent_at,
            );
            msg.platform_message_id = Some(mid.to_string());
            msg.event = MessageEvent::Edited;
            msg.text = edit.text.unwrap_or_default();
            return Some(msg);
        }
        if let Some(postback) = event.postback {
            let parties = self.parties(sender, recipient, false)?;
            // Older postbacks have no mid: derive one that a redelivery reproduces.
            let platform_id = match Id::get(&postback.mid) {
                Some(mid) => mid.to_string(),
                None => match event
                    .timestamp
                    .and_then(Time::raw)
                    .or_else(|| self.entry_time.and_then(Time::raw))
                {
                    Some(ts) => format!("postback:{}:{ts}", parties.user_id),
                    None => format!(
                        "postback:{}:{}:{}.{}",
                        parties.user_id, self.raw.0, position.0, position.1
                    ),
                },
            };
            let mut msg = self.message(
                parties.conversation(),
                parties.author(),
                parties.direction,
                Visibility::Private,
                sent_at,
            );
            msg.platform_message_id = Some(platform_id);
            msg.text = postback
                .title
                .filter(|t| !t.is_empty())
                .or(postback.payload)
                .unwrap_or_default();
            return Some(msg);
        }
        None
    }

    fn parties(
        &self,
        sender: Option<&str>,
        recipient: Option<&str>,
        echo: bool,
    ) -> Option<Parties> {
        let parties = Parties::of(self.account_id, sender, recipient, echo);
        if parties.is_none() {
            warn!(channel = %self.channel, "messaging event without sender or recipient skipped");
        }
        parties
    }

    /// One field change: a page feed comment or an Instagram comment; `None` for anything else.
    fn change(&self, change: Change) -> Result<Option<Message>, ParseError> {
        let Some(value) = change.value.filter(Value::is_object) else {
            return Ok(None);
        };
        match change.field.as_deref() {
            Some("feed") => {
                if value.get("item").and_then(Value::as_str) != Some("comment") {
                    return Ok(None);
                }
                let comment: FeedComment = serde_json::from_value(value)?;
                Ok(self.feed_comment(comment))
            }
            Some("comments" | "live_comments") => {
                let comment: IgComment = serde_json::from_value(value)?;
                Ok(self.ig_comment(comment))
            }
            _ => Ok(None),
        }
    }

    fn feed_comment(&self, c: FeedComment) -> Option<Message> {
        let event = match c.verb.as_deref() {
            Some("add") => MessageEvent::Created,
            Some("edited" | "edit") => MessageEvent::Edited,
            Some("remove" | "delete") => MessageEvent::Removed,
            other => {
                debug!(verb = other.unwrap_or(""), "feed comment verb ignored");
                return None;
            }
        };
        let (Some(comment_id), Some(post_id)) = (Id::get(&c.comment_id), Id::get(&c.post_id))
        else {
            warn!("feed comment without comment_id or post_id skipped");
            return None;
        };
        let author_id = c
            .from
            .as_ref()
            .and_then(|f| Id::get(&f.id))
            .or_else(|| Id::get(&c.sender_id));
        let author_id = match (author_id, event) {
            (Some(id), _) => id,
            (None, MessageEvent::Removed) => UNKNOWN_AUTHOR,
            (None, _) => {
                warn!(comment_id, "feed comment without author skipped");
                return None;
            }
        };
        let name = c
            .from
            .as_ref()
            .and_then(|f| f.name.clone())
            .or_else(|| c.sender_name.clone())
            .filter(|n| !n.trim().is_empty());
        let direction = if Some(author_id) == self.account_id {
            Direction::Outbound
        } else {
            Direction::Inbound
        };
        let mut msg = self.message(
            Conversation::CommentThread {
                post_id: post_id.to_string(),
                user_id: author_id.to_string(),
            },
            Author {
                platform_id: author_id.to_string(),
                name,
                ..Author::default()
            },
            direction,
            Visibility::Public,
            self.change_time(c.created_time),
        );
        msg.platform_message_id = Some(comment_id.to_string());
        msg.event = event;
        msg.text = c.message.unwrap_or_default();
        msg.attachments = c
            .photo
            .filter(|p| !p.is_empty())
            .map(|url| bare_attachment(AttachmentKind::Image, Some(url)))
            .into_iter()
            .collect();
        msg.replies_to = Id::get(&c.parent_id)
            .filter(|parent| *parent != post_id)
            .map(str::to_string)
            .into_iter()
            .collect();
        Some(msg)
    }

    fn ig_comment(&self, c: IgComment) -> Option<Message> {
        let comment_id = Id::get(&c.id);
        let media_id = c.media.as_ref().and_then(|m| Id::get(&m.id));
        let author_id = c.from.as_ref().and_then(|f| Id::get(&f.id));
        let (Some(comment_id), Some(media_id), Some(author_id)) = (comment_id, media_id, author_id)
        else {
            warn!("instagram comment without id, media.id or from.id skipped");
            return None;
        };
        let direction = if Some(author_id) == self.account_id {
            Direction::Outbound
        } else {
            Direction::Inbound
        };
        let handle = c
            .from
            .as_ref()
            .and_then(|f| f.username.clone())
            .filter(|u| !u.trim().is_empty());
        let mut msg = self.message(
            Conversation::CommentThread {
                post_id: media_id.to_string(),
                user_id: author_id.to_string(),
            },
            Author {
                platform_id: author_id.to_string(),
                handle,
                ..Author::default()
            },
            direction,
            Visibility::Public,
            self.change_time(None),
        );
        msg.platform_message_id = Some(comment_id.to_string());
        msg.text = c.text.unwrap_or_default();
        msg.replies_to = Id::get(&c.parent_id)
            .filter(|parent| *parent != media_id)
            .map(str::to_string)
            .into_iter()
            .collect();
        Some(msg)
    }
}

fn bare_attachment(kind: AttachmentKind, url: Option<String>) -> Attachment {
    Attachment {
        kind,
        url,
        object_ref: None,
        name: None,
        size: None,
        content_type: None,
    }
}

/// A Messenger / Instagram attachment. `sticker` is set when the message names a sticker.
fn attachment(a: &WireAttachment, sticker: bool) -> Attachment {
    let payload = a.payload.as_ref().and_then(Value::as_object);
    let field = |name: &str| payload.and_then(|p| p.get(name));
    let kind = a.kind.as_deref().unwrap_or("");
    let is_sticker = field("sticker_id").is_some_and(|s| !s.is_null())
        || (sticker && kind == "image")
        || kind == "sticker";
    let kind = if is_sticker {
        AttachmentKind::Sticker
    } else {
        match kind {
            "image" => AttachmentKind::Image,
            "video" => AttachmentKind::Video,
            "audio" => AttachmentKind::Audio,
            "file" => AttachmentKind::File,
            "fallback" | "template" | "share" => AttachmentKind::Link,
            "location" => AttachmentKind::Location,
            // like_heart, story_mention, ig_reel, reel, unsupported_type, …
            _ => AttachmentKind::Unsupported,
        }
    };
    let url = field("url")
        .and_then(Value::as_str)
        .or(a.url.as_deref())
        .filter(|u| !u.is_empty())
        .map(str::to_string)
        .or_else(|| match kind {
            AttachmentKind::Location => geo_uri(field("coordinates")),
            _ => None,
        });
    let name = a
        .title
        .as_deref()
        .or_else(|| field("title").and_then(Value::as_str))
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    Attachment {
        name,
        ..bare_attachment(kind, url)
    }
}

/// A `geo:` URI (RFC 5870) for a shared location's `{lat, long}`.
fn geo_uri(coordinates: Option<&Value>) -> Option<String> {
    let c = coordinates?;
    let lat = c.get("lat").and_then(Value::as_f64)?;
    let long = c.get("long").and_then(Value::as_f64)?;
    ((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&long))
        .then(|| format!("geo:{lat},{long}"))
}
