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
//!   entries and events; every message among them is returned.
//! - Echoes: what the page sends comes back as an outbound message. A Messenger message Crossdesk
//!   sent carries `metadata: "crossdesk:<message id>"` ([`reply_metadata`]), which becomes the
//!   echo's [`Message::id`] so the ticket writer matches it to the stored reply; every outbound
//!   message is marked [`Delivery::sent_outside_crossdesk`] in case it matches nothing.
//! - Unknown is never fatal: only a body that is not JSON or lacks `object`/`entry` is refused.
//!   Inside it, events without content (delivery, read, reaction, opt-in, handover, …) and page
//!   activity other than comments are ignored by design; an event, attachment or field Crossdesk
//!   does not know becomes a message with the text `unsupported message type: <type>` (the
//!   archived body keeps the rest) when it names a conversation, and a logged, counted skip when
//!   it does not. The rest of the batch is unaffected.

use std::cell::Cell;
use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};
use crossdesk_core::{
    unsupported_text, Attachment, AttachmentKind, Author, ChannelKind, Conversation, Delivery,
    Direction, Message, MessageEvent, MessageId, RawRef, Visibility,
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
/// The start of the `metadata` Crossdesk sets on the Messenger messages it sends; the echo
/// carries it back (`crossdesk:<message id>`).
pub const METADATA_PREFIX: &str = "crossdesk:";

/// Messaging events that carry a message.
const CONTENT_EVENTS: [&str; 3] = ["message", "message_edit", "postback"];
/// Messaging events that carry nothing a ticket can hold: receipts, reactions, opt-ins,
/// referrals without a message, account linking, thread handover, policy notices, games.
const IGNORED_EVENTS: [&str; 12] = [
    "delivery",
    "read",
    "reaction",
    "optin",
    "referral",
    "account_linking",
    "pass_thread_control",
    "take_thread_control",
    "request_thread_control",
    "app_roles",
    "policy_enforcement",
    "game_play",
];
/// The fields every messaging event has beside its content.
const EVENT_ENVELOPE: [&str; 4] = ["sender", "recipient", "timestamp", "prior_message"];
/// Fields of a Messenger `message` that carry no content of their own.
const MESSAGE_BOOKKEEPING: [&str; 10] = [
    "mid",
    "seq",
    "is_echo",
    "app_id",
    "metadata",
    "nlp",
    "tags",
    "referral",
    "commands",
    "is_deleted",
];

/// The `metadata` Crossdesk sends with a reply, naming the reply: `crossdesk:<message id>`.
pub fn reply_metadata(id: &MessageId) -> String {
    format!("{METADATA_PREFIX}{id}")
}

/// The Crossdesk reply an echo's `metadata` names, when it is Crossdesk's.
pub fn reply_in_metadata(metadata: &str) -> Option<MessageId> {
    MessageId::parse(metadata.trim().strip_prefix(METADATA_PREFIX)?).ok()
}

// ---- wire types ----

/// The webhook envelope. Entries stay untyped until each is read on its own, so one entry of an
/// unknown shape cannot take the others down.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Envelope {
    object: Option<String>,
    entry: Option<Vec<Value>>,
}

/// One page or account's batch of events, each event untyped until its kind is known.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Entry {
    /// The page id (Facebook) or professional account id (Instagram).
    id: Option<Id>,
    /// Milliseconds for messaging entries, seconds for change entries.
    time: Option<Time>,
    messaging: Option<Vec<Value>>,
    /// Messenger events while another app owns the thread (handover protocol).
    standby: Option<Vec<Value>>,
    changes: Option<Vec<Value>>,
}

/// One Messenger / Instagram Direct event of a kind that carries a message (`message`,
/// `message_edit`, `postback`).
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
    /// On an echo: what the sending app attached (Crossdesk: `crossdesk:<message id>`).
    metadata: Option<Value>,
    is_deleted: Option<bool>,
    /// Instagram: the user sent something the API cannot show.
    is_unsupported: Option<bool>,
    /// Set on the "like" thumbs-up sticker and other stickers.
    sticker_id: Option<Value>,
    /// Every other field: bookkeeping (`seq`, `app_id`, `nlp`, …) or content Crossdesk does not
    /// know yet.
    #[serde(flatten)]
    extra: serde_json::Map<String, Value>,
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

    fn signature_header(&self) -> Option<&'static str> {
        Some("X-Hub-Signature-256")
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
        let object = envelope
            .object
            .ok_or_else(|| ParseError::Invalid("`object` is missing".into()))?;
        let entries = envelope
            .entry
            .ok_or_else(|| ParseError::Invalid("`entry` is missing".into()))?;
        let channel = match object.as_str() {
            "page" => ChannelKind::Facebook,
            "instagram" => ChannelKind::Instagram,
            other => {
                // Another product's webhook sent to this URL: nothing here for Crossdesk, and
                // refusing it would only make Meta retry and then disable the subscription.
                let object: String = other.chars().take(40).collect();
                warn!(%object, entries = entries.len(), "webhook of an unknown object skipped");
                return Ok(Vec::new());
            }
        };
        let raw = webhook.raw_ref();
        let skipped = Cell::new(0);
        let mut messages = Vec::new();
        for (entry_index, value) in entries.iter().enumerate() {
            let Some(entry) = read_entry(value) else {
                skip(
                    channel,
                    &skipped,
                    "entry",
                    "not an entry Crossdesk can read",
                );
                continue;
            };
            let ctx = Ctx {
                channel,
                raw: &raw,
                received_at,
                account_id: Id::get(&entry.id),
                entry_time: entry.time,
                skipped: &skipped,
            };
            let events = entry.messaging.iter().flatten();
            let standby = entry.standby.iter().flatten();
            for (index, event) in events.chain(standby).enumerate() {
                messages.extend(ctx.messaging_value(event, (entry_index, index)));
            }
            for change in entry.changes.iter().flatten() {
                messages.extend(ctx.change(change));
            }
        }
        for message in &mut messages {
            mark_sent_outside_crossdesk(message);
        }
        if skipped.get() > 0 {
            warn!(
                %channel, skipped = skipped.get(), accepted = messages.len(),
                "webhook items Crossdesk cannot read were skipped"
            );
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
    /// How many items of the webhook were skipped as unreadable.
    skipped: &'a Cell<usize>,
}

/// An entry read into its wire type; `None` when it is not an object of the documented shape
/// (an id that is not exact, `messaging` that is not a list, …).
fn read_entry(value: &Value) -> Option<Entry> {
    // Derived structs also accept arrays (fields by position): insist on an object.
    value
        .is_object()
        .then(|| Entry::deserialize(value).ok())
        .flatten()
}

/// Logs and counts one item of the webhook that carries nothing Crossdesk can read.
fn skip(channel: ChannelKind, skipped: &Cell<usize>, item: &str, reason: &str) {
    skipped.set(skipped.get() + 1);
    // The reason names the item and what is missing, never the payload's content.
    warn!(%channel, item, reason, "webhook item skipped");
}

/// Marks what the page or account sent as sent outside Crossdesk. An echo of a Crossdesk reply
/// is recognized as the reply before this mark is ever stored.
fn mark_sent_outside_crossdesk(message: &mut Message) {
    if message.direction == Direction::Outbound && message.delivery.is_none() {
        if let Some(platform_id) = message.platform_message_id.as_deref() {
            message.delivery = Some(Delivery::sent_outside_crossdesk(platform_id));
        }
    }
}

/// An id given as a string or an integer, read leniently from an event of an unknown shape.
fn lenient_id(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        _ => None,
    }
}

/// What kind of messaging event a JSON object is.
enum EventKind<'a> {
    /// A message, edit or postback.
    Content(&'a str),
    /// An event without content, ignored by design.
    Ignored(&'a str),
    /// An event Crossdesk does not know.
    Unknown(&'a str),
    /// Nothing beside sender, recipient and timestamp.
    Empty,
}

fn event_kind(fields: &serde_json::Map<String, Value>) -> EventKind<'_> {
    if let Some(kind) = CONTENT_EVENTS.iter().find(|k| fields.contains_key(**k)) {
        return EventKind::Content(kind);
    }
    let mut rest = fields
        .keys()
        .map(String::as_str)
        .filter(|k| !EVENT_ENVELOPE.contains(k))
        .peekable();
    match rest.peek() {
        None => EventKind::Empty,
        Some(_) => {
            let keys: Vec<&str> = rest.collect();
            match keys.iter().find(|k| IGNORED_EVENTS.contains(k)) {
                Some(ignored) => EventKind::Ignored(ignored),
                None => EventKind::Unknown(keys[0]),
            }
        }
    }
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
            signature_unverified: false,
            personal_data: Vec::new(),
            internal_note: false,
            monitoring: false,
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

    /// Logs and counts an item that carries nothing Crossdesk can read.
    fn skip(&self, item: &str, reason: &str) {
        skip(self.channel, self.skipped, item, reason);
    }

    /// One messaging event of any kind: a message, a placeholder for an unknown or unreadable
    /// event that names a conversation, or `None` (ignored by design, or skipped).
    fn messaging_value(&self, value: &Value, position: (usize, usize)) -> Option<Message> {
        let Some(fields) = value.as_object() else {
            self.skip("messaging event", "not an object");
            return None;
        };
        match event_kind(fields) {
            EventKind::Content(kind) => match MessagingEvent::deserialize(value) {
                Ok(event) => self.messaging(event, position),
                Err(e) => {
                    debug!(kind, error = %e, "messaging event of an unexpected shape");
                    self.placeholder(
                        value,
                        kind,
                        &format!("{kind} (unreadable fields)"),
                        position,
                    )
                }
            },
            EventKind::Ignored(kind) => {
                debug!(channel = %self.channel, kind, "messaging event without content ignored");
                None
            }
            EventKind::Unknown(kind) => self.placeholder(value, kind, kind, position),
            EventKind::Empty => {
                self.skip("messaging event", "no event in it");
                None
            }
        }
    }

    /// A message standing for an event Crossdesk cannot read, in the conversation the event
    /// names: its text says what it was, the archived body keeps the rest.
    fn placeholder(
        &self,
        value: &Value,
        kind: &str,
        what: &str,
        position: (usize, usize),
    ) -> Option<Message> {
        let party = |side: &str| lenient_id(value.get(side).and_then(|p| p.get("id")));
        let (sender, recipient) = (party("sender"), party("recipient"));
        let content = value.get(kind);
        let echo = content
            .and_then(|c| c.get("is_echo"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let Some(parties) = Parties::of(
            self.account_id,
            sender.as_deref(),
            recipient.as_deref(),
            echo,
        ) else {
            self.skip(kind, "unknown event without sender or recipient");
            return None;
        };
        let timestamp = value
            .get("timestamp")
            .and_then(|t| Time::deserialize(t).ok());
        let platform_id = match lenient_id(content.and_then(|c| c.get("mid"))) {
            Some(mid) => mid,
            None => derived_id(kind, &parties.user_id, timestamp, self, position),
        };
        warn!(channel = %self.channel, kind, "unsupported event stored with a placeholder text");
        let mut msg = self.message(
            parties.conversation(),
            parties.author(),
            parties.direction,
            Visibility::Private,
            self.messaging_time(timestamp),
        );
        msg.platform_message_id = Some(platform_id);
        msg.text = unsupported_text(what);
        Some(msg)
    }

    /// One Messenger / Instagram Direct event: a message, an edit, an unsend or a postback;
    /// `None` for events without the ids a message needs.
    fn messaging(&self, event: MessagingEvent, position: (usize, usize)) -> Option<Message> {
        let sender = event.sender.as_ref().and_then(|p| Id::get(&p.id));
        let recipient = event.recipient.as_ref().and_then(|p| Id::get(&p.id));
        let sent_at = self.messaging_time(event.timestamp);
        if let Some(m) = event.message {
            let echo = m.is_echo.unwrap_or(false);
            let parties = self.parties(sender, recipient, echo)?;
            let Some(mid) = Id::get(&m.mid) else {
                self.skip("message", "no mid");
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
            if echo {
                // Crossdesk's own reply names itself: the writer matches the echo to it.
                if let Some(reply) = m
                    .metadata
                    .as_ref()
                    .and_then(Value::as_str)
                    .and_then(reply_in_metadata)
                {
                    msg.id = reply;
                }
            }
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
            let wire = m.attachments.unwrap_or_default();
            msg.attachments = wire.iter().map(|a| attachment(a, sticker)).collect();
            // What Crossdesk cannot show is named in the text, so the agent knows it is there.
            let mut unsupported: Vec<&str> = wire
                .iter()
                .zip(&msg.attachments)
                .filter(|(_, a)| a.kind == AttachmentKind::Unsupported)
                .map(|(w, _)| w.kind.as_deref().unwrap_or("unknown"))
                .collect();
            if msg.attachments.is_empty() && m.is_unsupported.unwrap_or(false) {
                msg.attachments
                    .push(bare_attachment(AttachmentKind::Unsupported, None));
                unsupported.push("media Instagram does not share with apps");
            }
            if msg.text.is_empty() && msg.attachments.is_empty() && !sticker {
                // A message with only fields Crossdesk does not know (a new kind of content).
                unsupported.extend(
                    m.extra
                        .keys()
                        .map(String::as_str)
                        .filter(|k| !MESSAGE_BOOKKEEPING.contains(k)),
                );
            }
            if !unsupported.is_empty() {
                let note = unsupported_text(&unsupported.join(", "));
                msg.text = match msg.text.as_str() {
                    "" => note,
                    text => format!("{text}\n\n{note}"),
                };
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
                self.skip("message_edit", "no mid");
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
                None => derived_id(
                    "postback",
                    &parties.user_id,
                    event.timestamp,
                    self,
                    position,
                ),
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
            self.skip("messaging event", "no sender or recipient");
        }
        parties
    }

    /// One field change: a page feed comment or an Instagram comment (a placeholder when one
    /// cannot be read); `None` for other page activity (ignored by design) and for fields
    /// Crossdesk does not know (skipped).
    fn change(&self, value: &Value) -> Option<Message> {
        let change = value
            .is_object()
            .then(|| Change::deserialize(value).ok())
            .flatten();
        let Some(change) = change else {
            self.skip("change", "not an object with a field and a value");
            return None;
        };
        let field = change.field.as_deref().unwrap_or("");
        let Some(value) = change.value.filter(Value::is_object) else {
            self.skip(field, "change without a value object");
            return None;
        };
        match field {
            "feed" => match value.get("item").and_then(Value::as_str) {
                Some("comment") => match FeedComment::deserialize(&value) {
                    Ok(comment) => self.feed_comment(comment),
                    Err(_) => self.comment_placeholder(&value, false),
                },
                item => {
                    // Posts, reactions, likes, shares, status updates: page activity, not a
                    // conversation with a customer.
                    debug!(
                        item = item.unwrap_or(""),
                        "feed item other than a comment ignored"
                    );
                    None
                }
            },
            "comments" | "live_comments" => match IgComment::deserialize(&value) {
                Ok(comment) => self.ig_comment(comment),
                Err(_) => self.comment_placeholder(&value, true),
            },
            other => {
                let field: String = other.chars().take(40).collect();
                self.skip(&field, "a field Crossdesk does not subscribe to or know");
                None
            }
        }
    }

    /// A placeholder for a comment whose fields do not have the documented shape, in the
    /// comment thread it names; skipped when it names none.
    fn comment_placeholder(&self, value: &Value, instagram: bool) -> Option<Message> {
        let get = |path: &[&str]| lenient_id(path.iter().try_fold(value, |v, k| v.get(*k)));
        let (comment_id, post_id, author_id) = if instagram {
            (get(&["id"]), get(&["media", "id"]), get(&["from", "id"]))
        } else {
            (
                get(&["comment_id"]),
                get(&["post_id"]),
                get(&["from", "id"]).or_else(|| get(&["sender_id"])),
            )
        };
        let (Some(comment_id), Some(post_id), Some(author_id)) = (comment_id, post_id, author_id)
        else {
            self.skip("comment", "unreadable comment without its ids");
            return None;
        };
        warn!(channel = %self.channel, "comment of an unexpected shape stored with a placeholder text");
        let direction = if Some(author_id.as_str()) == self.account_id {
            Direction::Outbound
        } else {
            Direction::Inbound
        };
        let mut msg = self.message(
            Conversation::CommentThread {
                post_id,
                user_id: author_id.clone(),
            },
            Author {
                platform_id: author_id,
                ..Author::default()
            },
            direction,
            Visibility::Public,
            self.change_time(None),
        );
        msg.platform_message_id = Some(comment_id);
        msg.text = unsupported_text("comment (unreadable fields)");
        Some(msg)
    }

    fn feed_comment(&self, c: FeedComment) -> Option<Message> {
        let event = match c.verb.as_deref() {
            Some("add") => MessageEvent::Created,
            Some("edited" | "edit") => MessageEvent::Edited,
            Some("remove" | "delete") => MessageEvent::Removed,
            Some(verb @ ("hide" | "unhide" | "block" | "unblock")) => {
                debug!(verb, "feed comment moderation ignored");
                return None;
            }
            _ => {
                self.skip("comment", "a verb Crossdesk does not know");
                return None;
            }
        };
        let (Some(comment_id), Some(post_id)) = (Id::get(&c.comment_id), Id::get(&c.post_id))
        else {
            self.skip("comment", "no comment_id or post_id");
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
                self.skip("comment", "no author");
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
            self.skip("instagram comment", "no id, media.id or from.id");
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

/// A platform id for an event without one, which a redelivery of the same event reproduces:
/// `<kind>:<user>:<timestamp>`, else the body's address and the event's place in it.
fn derived_id(
    kind: &str,
    user: &str,
    timestamp: Option<Time>,
    ctx: &Ctx<'_>,
    position: (usize, usize),
) -> String {
    match timestamp
        .and_then(Time::raw)
        .or_else(|| ctx.entry_time.and_then(Time::raw))
    {
        Some(ts) => format!("{kind}:{user}:{ts}"),
        None => format!("{kind}:{user}:{}:{}.{}", ctx.raw.0, position.0, position.1),
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
        sha256: None,
        fetch_error: None,
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
    // A location's coordinates say more than the tracking redirect Meta sends beside them.
    let geo = match kind {
        AttachmentKind::Location => geo_uri(field("coordinates")),
        _ => None,
    };
    let url = geo.or_else(|| {
        field("url")
            .and_then(Value::as_str)
            .or(a.url.as_deref())
            .filter(|u| !u.is_empty())
            .map(str::to_string)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Headers;
    use crossdesk_core::DeliveryStatus;

    const SECRET: &str = "fb-test-app-secret";
    const TOKEN: &str = "fb-test-verify-token";

    fn channel() -> FacebookChannel {
        FacebookChannel::new(SecretString::from(SECRET), SecretString::from(TOKEN))
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-20T10:00:00Z")
            .unwrap()
            .to_utc()
    }

    fn event(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/../../events/facebook/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn parse_body(body: &[u8]) -> Result<Vec<Message>, ParseError> {
        channel().parse(&VerifiedWebhook::new(body), now())
    }

    fn parse(name: &str) -> Vec<Message> {
        parse_body(&event(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn parse_one(name: &str) -> Message {
        let mut messages = parse(name);
        assert_eq!(messages.len(), 1, "{name}: {messages:?}");
        messages.remove(0)
    }

    fn key(m: &Message) -> String {
        m.conversation.key(m.channel).unwrap().as_str().to_string()
    }

    fn ms(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms).unwrap()
    }

    fn secs(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(s, 0).unwrap()
    }

    fn kinds(m: &Message) -> Vec<AttachmentKind> {
        m.attachments.iter().map(|a| a.kind).collect()
    }

    fn handshake(raw_query: &str) -> Result<HandshakeReply, HandshakeError> {
        channel().handshake(&Query::parse(raw_query))
    }

    fn verify(headers: &Headers, body: &[u8]) -> Result<(), VerifyError> {
        channel()
            .verify(&WebhookRequest { headers, body }, now())
            .map(|_| ())
    }

    fn signed(body: &[u8]) -> Headers {
        Headers::new([("X-Hub-Signature-256", FacebookChannel::sign(SECRET, body))])
    }

    // ---- handshake ----

    #[test]
    fn answers_the_subscription_challenge_when_the_token_matches() {
        let reply = handshake(
            "hub.mode=subscribe&hub.verify_token=fb-test-verify-token&hub.challenge=1158201444",
        );
        assert_eq!(
            reply,
            Ok(HandshakeReply {
                content_type: "text/plain",
                body: "1158201444".into()
            })
        );
    }

    #[test]
    fn refuses_a_wrong_verify_token_or_mode() {
        for query in [
            "hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1",
            "hub.mode=subscribe&hub.verify_token=fb-test-verify-token-&hub.challenge=1",
            "hub.mode=subscribe&hub.verify_token=FB-TEST-VERIFY-TOKEN&hub.challenge=1",
            "hub.mode=unsubscribe&hub.verify_token=fb-test-verify-token&hub.challenge=1",
        ] {
            assert!(
                matches!(handshake(query), Err(HandshakeError::Forbidden(_))),
                "{query}"
            );
        }
    }

    #[test]
    fn rejects_handshakes_missing_a_parameter() {
        for query in [
            "",
            "hub.verify_token=fb-test-verify-token&hub.challenge=1",
            "hub.mode=subscribe&hub.challenge=1",
            "hub.mode=subscribe&hub.verify_token=fb-test-verify-token",
            "hub.mode=subscribe&hub.verify_token=fb-test-verify-token&hub.challenge=",
            "hub.mode=subscribe&hub.verify_token=&hub.challenge=1",
        ] {
            assert!(
                matches!(handshake(query), Err(HandshakeError::BadRequest(_))),
                "{query}"
            );
        }
    }

    #[test]
    fn bounds_the_challenge_it_echoes() {
        let ok = "7".repeat(MAX_CHALLENGE_CHARS);
        let q = |c: &str| format!("hub.mode=subscribe&hub.verify_token={TOKEN}&hub.challenge={c}");
        assert_eq!(handshake(&q(&ok)).map(|r| r.body), Ok(ok.clone()));
        for bad in [format!("{ok}7"), "a%20b".into(), "%3Cscript%3E%0A".into()] {
            assert!(
                matches!(handshake(&q(&bad)), Err(HandshakeError::BadRequest(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn refuses_every_handshake_when_no_token_is_configured() {
        let c = FacebookChannel::new(SecretString::from(SECRET), SecretString::from(""));
        let query = Query::parse("hub.mode=subscribe&hub.verify_token=x&hub.challenge=1");
        assert!(matches!(
            c.handshake(&query),
            Err(HandshakeError::Forbidden(_))
        ));
    }

    // ---- verify ----

    #[test]
    fn signs_like_the_published_hub_signature_vector() {
        assert_eq!(
            FacebookChannel::sign("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn accepts_a_correctly_signed_request() {
        let body = event("messenger-text.json");
        assert_eq!(verify(&signed(&body), &body), Ok(()));
        let upper = FacebookChannel::sign(SECRET, &body).to_ascii_uppercase();
        let headers = Headers::new([("x-hub-signature-256", upper)]);
        assert_eq!(verify(&headers, &body), Ok(()));
    }

    #[test]
    fn rejects_signature_over_modified_body() {
        let body = event("messenger-text.json");
        let headers = signed(&body);
        let forged = String::from_utf8(body.clone())
            .unwrap()
            .replace("hello, world!", "hello, world?");
        assert_eq!(
            verify(&headers, forged.as_bytes()),
            Err(VerifyError::BadSignature)
        );
        let mut trailing = body.clone();
        trailing.push(b'\n');
        assert_eq!(verify(&headers, &trailing), Err(VerifyError::BadSignature));
    }

    #[test]
    fn rejects_a_signature_made_with_another_secret() {
        let body = event("messenger-text.json");
        let headers = Headers::new([("x-hub-signature-256", FacebookChannel::sign(TOKEN, &body))]);
        assert_eq!(verify(&headers, &body), Err(VerifyError::BadSignature));
    }

    #[test]
    fn rejects_a_request_without_signature_header() {
        let body = event("messenger-text.json");
        assert_eq!(
            verify(&Headers::default(), &body),
            Err(VerifyError::MissingHeader("X-Hub-Signature-256"))
        );
    }

    #[test]
    fn refuses_the_legacy_sha1_header_alone() {
        let body = event("messenger-text.json");
        let headers = Headers::new([(
            "X-Hub-Signature",
            "sha1=0123456789abcdef0123456789abcdef01234567",
        )]);
        assert_eq!(
            verify(&headers, &body),
            Err(VerifyError::MissingHeader("X-Hub-Signature-256"))
        );
    }

    #[test]
    fn rejects_malformed_signature_headers() {
        let body = event("messenger-text.json");
        let good_hex = signature::hmac_sha256_hex(SECRET.as_bytes(), &[&body]);
        for bad in [
            String::new(),
            good_hex.clone(),
            format!("sha1={good_hex}"),
            format!("sha256:{good_hex}"),
            "sha256=".into(),
            "sha256=abc".into(),
            format!("sha256={}", "zz".repeat(32)),
            format!("sha256={good_hex}00"),
            format!("sha256={}", &good_hex[..62]),
            format!("sha256=é{}", &good_hex[..62]),
            "é".into(),
        ] {
            let headers = Headers::new([("x-hub-signature-256", bad.clone())]);
            assert!(
                matches!(
                    verify(&headers, &body),
                    Err(VerifyError::MalformedHeader {
                        header: "X-Hub-Signature-256",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn verifies_the_exact_bytes_with_escaped_non_ascii() {
        let body = event("messenger-non-ascii-escaped.json");
        assert!(body.windows(6).any(|w| w == br"\u00e4"));
        let headers = signed(&body);
        assert_eq!(verify(&headers, &body), Ok(()));

        // Re-serialized JSON holds the same data but not the same bytes: it must not verify.
        let value: Value = serde_json::from_slice(&body).unwrap();
        let reserialized = serde_json::to_vec(&value).unwrap();
        assert_ne!(reserialized, body);
        assert!(String::from_utf8(reserialized.clone())
            .unwrap()
            .contains('ä'));
        assert_eq!(
            verify(&headers, &reserialized),
            Err(VerifyError::BadSignature)
        );

        let m = parse_one("messenger-non-ascii-escaped.json");
        assert_eq!(
            m.text,
            "Grüße! Können Sie die Adresse ändern? Siehe https://example.com/order/42 🙏"
        );
    }

    #[test]
    fn refuses_every_request_when_no_app_secret_is_configured() {
        let c = FacebookChannel::new(SecretString::from(""), SecretString::from(TOKEN));
        let body = event("messenger-text.json");
        let headers = Headers::new([("x-hub-signature-256", FacebookChannel::sign("", &body))]);
        assert!(matches!(
            c.verify(
                &WebhookRequest {
                    headers: &headers,
                    body: &body
                },
                now()
            ),
            Err(VerifyError::BadSignature)
        ));
    }

    // ---- parse: Messenger ----

    #[test]
    fn parses_a_messenger_text_into_a_private_inbound_message() {
        let body = event("messenger-text.json");
        let m = parse_one("messenger-text.json");
        assert_eq!(m.channel, ChannelKind::Facebook);
        assert_eq!(m.direction, Direction::Inbound);
        assert_eq!(m.event, MessageEvent::Created);
        assert_eq!(m.visibility, Visibility::Private);
        assert_eq!(m.platform_message_id.as_deref(), Some("m_sample_text_0001"));
        assert_eq!(key(&m), "facebook:dm:PAGE_ID_100200300:PSID_2345678901");
        assert_eq!(
            m.author,
            Author {
                platform_id: "PSID_2345678901".into(),
                ..Author::default()
            }
        );
        assert_eq!(m.text, "hello, world!");
        assert!(m.attachments.is_empty());
        assert!(m.replies_to.is_empty());
        assert_eq!(m.sent_at, ms(1732270000000));
        assert_eq!(m.received_at, now());
        assert_eq!(m.raw, Some(RawRef::of(&body)));
        assert!(m.id.as_str().starts_with("msg_"));
    }

    #[test]
    fn accepts_ids_sent_as_numbers() {
        let m = parse_one("messenger-text-numeric-ids.json");
        assert_eq!(key(&m), "facebook:dm:12345654332:987654321432");
        assert_eq!(m.author.platform_id, "987654321432");
        assert_eq!(
            m.platform_message_id.as_deref(),
            Some("mid.1457764197618:41d102a3e1ae206a38")
        );
        assert_eq!(m.sent_at, ms(1457764197627));

        // Mixed: entry id a string, recipient a number.
        let m = parse_one("messenger-quick-reply.json");
        assert_eq!(key(&m), "facebook:dm:1234567890321:987654321432");
    }

    #[test]
    fn parses_a_real_capture_with_string_ids() {
        let m = parse_one("messenger-text-real-capture.json");
        assert_eq!(key(&m), "facebook:dm:311494332880244:2150393045080607");
        assert_eq!(m.text, "hi");
        assert_eq!(m.sent_at, ms(1559102363925));
    }

    #[test]
    fn keeps_an_attachment_only_message_with_empty_text() {
        let m = parse_one("messenger-attachment-only.json");
        assert_eq!(m.text, "");
        assert_eq!(kinds(&m), [AttachmentKind::Image]);
        assert_eq!(
            m.attachments[0].url.as_deref(),
            Some("https://scontent.example.net/v/t1.15752-9/photo.jpg")
        );
    }

    #[test]
    fn maps_a_legacy_fallback_attachment_with_a_string_payload_to_a_link() {
        let m = parse_one("messenger-fallback-attachment.json");
        assert_eq!(kinds(&m), [AttachmentKind::Link]);
        assert_eq!(
            m.attachments[0].url.as_deref(),
            Some("https://www.messenger.com/")
        );
        assert_eq!(m.attachments[0].name.as_deref(), Some("Legacy Attachment"));
    }

    #[test]
    fn recognizes_a_sticker_sent_as_an_image() {
        let m = parse_one("messenger-sticker.json");
        assert_eq!(kinds(&m), [AttachmentKind::Sticker]);
        let url = m.attachments[0].url.as_deref().unwrap();
        assert!(
            url.starts_with("https://scontent.xx.fbcdn.net/v/t39.1997-6/851557_"),
            "{url}"
        );
    }

    #[test]
    fn gives_a_shared_location_as_a_geo_uri() {
        let m = parse_one("messenger-location.json");
        assert_eq!(kinds(&m), [AttachmentKind::Location]);
        assert_eq!(m.attachments[0].url.as_deref(), Some("geo:52.52,13.405"));
        assert_eq!(m.attachments[0].name.as_deref(), Some("Pinned Location"));
    }

    #[test]
    fn threads_an_echo_as_outbound_from_the_page_to_the_recipient() {
        let inbound = parse_one("messenger-text.json");
        let m = parse_one("messenger-echo.json");
        assert_eq!(m.direction, Direction::Outbound);
        assert_eq!(m.author.platform_id, "PAGE_ID_100200300");
        assert_eq!(m.conversation.customer_id(), Some("PSID_2345678901"));
        assert_eq!(key(&m), key(&inbound));
        assert_eq!(m.platform_message_id.as_deref(), Some("m_sample_echo_0003"));
        assert_eq!(m.text, "Thanks, we are on it.");
        assert_eq!(m.visibility, Visibility::Private);
    }

    #[test]
    fn reads_standby_events_and_echoes_whose_sender_is_the_user() {
        // This fixture keeps sender = user on an echo: the page is still the entry's id.
        let m = parse_one("messenger-standby-echo.json");
        assert_eq!(m.direction, Direction::Outbound);
        assert_eq!(m.author.platform_id, "12345654332");
        assert_eq!(key(&m), "facebook:dm:12345654332:987654321432");
        assert_eq!(m.text, "hello, world!");
    }

    #[test]
    fn ignores_delivery_read_reaction_and_seen_events_without_error() {
        for name in [
            "messenger-delivery-read.json",
            "messenger-reaction.json",
            "instagram-seen.json",
        ] {
            assert_eq!(parse(name), [], "{name}");
        }
        // Events without content are ignored by design, not stored as unsupported.
        for kind in [
            r#""optin":{"ref":"r"}"#,
            r#""referral":{"ref":"ad","source":"ADS"}"#,
            r#""pass_thread_control":{"new_owner_app_id":"1"}"#,
            r#""policy_enforcement":{"action":"block","reason":"r"}"#,
            r#""account_linking":{"status":"linked"}"#,
        ] {
            let body = format!(
                r#"{{"object":"page","entry":[{{"id":"P","messaging":[{{"sender":{{"id":"U"}},"recipient":{{"id":"P"}},"timestamp":1,{kind}}}]}}]}}"#
            );
            assert_eq!(parse_body(body.as_bytes()), Ok(vec![]), "{kind}");
        }
    }

    #[test]
    fn keeps_the_text_of_a_quick_reply() {
        let m = parse_one("messenger-quick-reply.json");
        assert_eq!(m.text, "quick reply text");
        assert_eq!(m.direction, Direction::Inbound);
        assert_eq!(m.sent_at, ms(1470779510432));
    }

    #[test]
    fn turns_a_postback_into_an_inbound_message() {
        let m = parse_one("messenger-postback-button.json");
        assert_eq!(m.text, "Talk to an agent");
        assert_eq!(
            m.platform_message_id.as_deref(),
            Some("m_sample_postback_0006")
        );
        assert_eq!(m.direction, Direction::Inbound);
        assert_eq!(key(&m), "facebook:dm:PAGE_ID_100200300:PSID_2345678901");
    }

    #[test]
    fn gives_a_postback_without_mid_or_title_a_deterministic_id_and_its_payload() {
        let m = parse_one("messenger-postback.json");
        assert_eq!(m.text, "USER_DEFINED_PAYLOAD");
        assert_eq!(
            m.platform_message_id.as_deref(),
            Some("postback:987654321432:1458692752478")
        );
        let again = parse_one("messenger-postback.json");
        assert_eq!(again.dedup_key(), m.dedup_key());
        assert_ne!(again.id, m.id);
    }

    #[test]
    fn turns_a_message_edit_into_an_edited_event() {
        let m = parse_one("messenger-message-edit.json");
        assert_eq!(m.event, MessageEvent::Edited);
        assert_eq!(
            m.platform_message_id.as_deref(),
            Some("mid.1457764197618:41d102a3e1ae206a38")
        );
        assert_eq!(m.text, "hello, world!");
        assert_eq!(m.author.platform_id, "987654321432");
        assert_eq!(m.direction, Direction::Inbound);
    }

    #[test]
    fn links_a_swipe_reply_to_the_quoted_message() {
        let m = parse_one("messenger-reply-to.json");
        assert_eq!(
            m.replies_to,
            ["very_long_id_representing_the_original_message"]
        );
    }

    #[test]
    fn turns_an_unsend_into_a_removal() {
        let m = parse_one("messenger-unsend.json");
        assert_eq!(m.event, MessageEvent::Removed);
        assert_eq!(m.platform_message_id.as_deref(), Some("message_id"));
        assert_eq!(m.text, "");
        let m = parse_one("instagram-unsend.json");
        assert_eq!(m.event, MessageEvent::Removed);
        assert_eq!(m.channel, ChannelKind::Instagram);
        assert_eq!(m.platform_message_id.as_deref(), Some("external_id"));
        assert_eq!(m.sent_at, ms(1569262485349));
    }

    #[test]
    fn returns_every_message_of_a_batched_payload_in_order() {
        let messages = parse("messenger-batched.json");
        let ids: Vec<_> = messages
            .iter()
            .map(|m| m.platform_message_id.as_deref().unwrap())
            .collect();
        assert_eq!(
            ids,
            [
                "m_sample_batch_0001",
                "m_sample_batch_0002",
                "m_sample_batch_0003",
                "m_sample_batch_0004"
            ]
        );
        assert_eq!(kinds(&messages[1]), [AttachmentKind::File]);
        assert_eq!(messages[2].author.platform_id, "PSID_3456789012");
        assert_eq!(messages[2].sent_at, ms(1732270800500));
        assert_eq!(messages[3].direction, Direction::Outbound);
        assert_eq!(key(&messages[3]), key(&messages[0]));
        assert_ne!(key(&messages[2]), key(&messages[0]));
    }

    // ---- parse: Instagram Direct ----

    #[test]
    fn parses_an_instagram_message() {
        let m = parse_one("instagram-message.json");
        assert_eq!(m.channel, ChannelKind::Instagram);
        assert_eq!(m.direction, Direction::Inbound);
        assert_eq!(m.visibility, Visibility::Private);
        assert_eq!(
            key(&m),
            "instagram:dm:IG_BUSINESS_ID_17841400000:IGSID_6789012345"
        );
        assert_eq!(m.author.platform_id, "IGSID_6789012345");
        assert_eq!(m.text, "Do you ship to Austria? 🇦🇹");
        assert_eq!(
            m.platform_message_id.as_deref(),
            Some("aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQx")
        );
        assert_eq!(m.sent_at, ms(1732270600000));
    }

    #[test]
    fn keeps_a_like_heart_without_payload_as_unsupported() {
        let m = parse_one("instagram-like-heart.json");
        assert_eq!(m.channel, ChannelKind::Instagram);
        assert_eq!(kinds(&m), [AttachmentKind::Unsupported]);
        assert_eq!(m.attachments[0].url, None);
        assert_eq!(m.text, "unsupported message type: like_heart");
    }

    #[test]
    fn keeps_story_mentions_and_unknown_types_as_unsupported_with_their_url() {
        let m = parse_one("instagram-story-mention.json");
        assert_eq!(kinds(&m), [AttachmentKind::Unsupported]);
        assert_eq!(m.attachments[0].url.as_deref(), Some("https://story-url"));
        assert_eq!(m.text, "unsupported message type: story_mention");
        let m = parse_one("instagram-unsupported-attachment.json");
        assert_eq!(kinds(&m), [AttachmentKind::Unsupported]);
        assert_eq!(m.text, "unsupported message type: unsupported_type");
        assert!(m.attachments[0]
            .url
            .as_deref()
            .unwrap()
            .starts_with("https://lookaside.fbsbx.com/ig_messaging_cdn/"));
        assert_eq!(key(&m), "instagram:dm:17841452691600098:5614879045272581");
    }

    #[test]
    fn threads_an_instagram_echo_as_outbound() {
        let m = parse_one("instagram-echo.json");
        assert_eq!(m.direction, Direction::Outbound);
        assert_eq!(m.author.platform_id, "1234567890");
        assert_eq!(key(&m), "instagram:dm:1234567890:5678");
        assert_eq!(m.platform_message_id.as_deref(), Some("qT7ywaK"));
        assert_eq!(m.sent_at, ms(1459991487970));
    }

    #[test]
    fn turns_an_instagram_icebreaker_into_a_message_titled_like_the_button() {
        let m = parse_one("instagram-postback.json");
        assert_eq!(m.channel, ChannelKind::Instagram);
        assert_eq!(m.text, "icebreaker question");
        assert_eq!(
            m.platform_message_id.as_deref(),
            Some("postback:5678:1459991487970")
        );
        assert_eq!(key(&m), "instagram:dm:1234567890:5678");
    }

    // ---- parse: comments ----

    #[test]
    fn parses_a_page_comment_into_a_public_comment_thread() {
        let m = parse_one("feed-comment-add.json");
        assert_eq!(m.channel, ChannelKind::Facebook);
        assert_eq!(m.direction, Direction::Inbound);
        assert_eq!(m.event, MessageEvent::Created);
        assert_eq!(m.visibility, Visibility::Public);
        assert_eq!(
            m.platform_message_id.as_deref(),
            Some("POST_777_COMMENT_901")
        );
        assert_eq!(
            key(&m),
            "facebook:comments:PAGE_ID_100200300_POST_777:USER_ID_5550001"
        );
        assert_eq!(m.author.platform_id, "USER_ID_5550001");
        assert_eq!(m.author.name.as_deref(), Some("Sam Sample"));
        assert_eq!(m.text, "Where is my order?");
        assert!(m.replies_to.is_empty());
        assert!(m.attachments.is_empty());
        assert_eq!(m.sent_at, secs(1732270400));
    }

    #[test]
    fn turns_an_edited_comment_into_an_edited_event() {
        let m = parse_one("feed-comment-edited.json");
        assert_eq!(m.event, MessageEvent::Edited);
        assert_eq!(
            m.platform_message_id.as_deref(),
            Some("POST_777_COMMENT_901")
        );
        assert_eq!(m.text, "Where is my order? It's been 2 weeks.");
        assert_eq!(m.sent_at, secs(1732270500));
    }

    #[test]
    fn links_a_reply_comment_to_its_parent_comment() {
        let m = parse_one("feed-comment-reply.json");
        assert_eq!(m.replies_to, ["POST_777_COMMENT_901"]);
        assert_eq!(m.direction, Direction::Inbound);
        assert_eq!(
            key(&m),
            "facebook:comments:PAGE_ID_100200300_POST_777:USER_ID_5550002"
        );
        assert_eq!(m.author.name.as_deref(), Some("Robin Reply"));
    }

    #[test]
    fn treats_a_comment_by_the_page_itself_as_outbound() {
        let m = parse_one("feed-comment-by-page.json");
        assert_eq!(m.direction, Direction::Outbound);
        assert_eq!(m.author.platform_id, "1234567890321");
        assert_eq!(m.author.name.as_deref(), Some("Tester"));
        assert_eq!(
            key(&m),
            "facebook:comments:1234567890321_901097836652708:1234567890321"
        );
        assert_eq!(m.text, "and the next one");
        assert_eq!(m.sent_at, secs(1449135003));
    }

    #[test]
    fn reads_legacy_sender_fields_and_comment_photos() {
        let m = parse_one("feed-comment-add-with-photo.json");
        assert_eq!(m.author.platform_id, "1234567890321");
        assert_eq!(m.author.name.as_deref(), Some("Tester"));
        assert_eq!(kinds(&m), [AttachmentKind::Image]);
        assert!(m.attachments[0]
            .url
            .as_deref()
            .unwrap()
            .starts_with("https://scontent-fra3-1.xx.fbcdn.net/"));

        let m = parse_one("feed-comment-edited-legacy-sender.json");
        assert_eq!(m.event, MessageEvent::Edited);
        assert_eq!(m.author.platform_id, "1234567890321");
        assert_eq!(m.author.name.as_deref(), Some("Tester"));
        assert_eq!(m.text, "Let's see the Webhooks in action :D");
        assert_eq!(m.sent_at, secs(1448555737));
    }

    #[test]
    fn turns_a_removed_comment_into_a_removal_dated_by_the_entry() {
        let m = parse_one("feed-comment-remove.json");
        assert_eq!(m.event, MessageEvent::Removed);
        assert_eq!(
            m.platform_message_id.as_deref(),
            Some("905578656204626_905579239537901")
        );
        assert_eq!(m.text, "");
        assert_eq!(m.author.name.as_deref(), Some("John Doe"));
        assert_eq!(m.sent_at, secs(1452107182));
    }

    #[test]
    fn ignores_hidden_comments_and_other_feed_items() {
        assert_eq!(parse("feed-comment-hide.json"), []);
        assert_eq!(parse("feed-reaction.json"), []);
    }

    #[test]
    fn parses_an_instagram_comment_with_its_handle() {
        let m = parse_one("instagram-comment.json");
        assert_eq!(m.channel, ChannelKind::Instagram);
        assert_eq!(m.direction, Direction::Inbound);
        assert_eq!(m.visibility, Visibility::Public);
        assert_eq!(m.event, MessageEvent::Created);
        assert_eq!(m.platform_message_id.as_deref(), Some("123456789"));
        assert_eq!(key(&m), "instagram:comments:76543987:1234536447");
        assert_eq!(
            m.author,
            Author {
                platform_id: "1234536447".into(),
                handle: Some("testuser".into()),
                ..Author::default()
            }
        );
        assert_eq!(m.text, "This is an example.");
        assert_eq!(m.replies_to, ["987654321"]);
        assert_eq!(m.sent_at, secs(1519399307));
    }

    // ---- parse: echoes ----

    fn outside(m: &Message) -> Option<Delivery> {
        m.platform_message_id
            .as_deref()
            .map(Delivery::sent_outside_crossdesk)
    }

    #[test]
    fn gives_the_echo_of_a_crossdesk_reply_the_replys_id() {
        let m = parse_one("messenger-echo-crossdesk.json");
        assert_eq!(
            m.id,
            MessageId::parse("msg_0192f1a0b3c47d8e9f00112233445566").unwrap()
        );
        assert_eq!(m.direction, Direction::Outbound);
        assert_eq!(
            m.platform_message_id.as_deref(),
            Some("m_sample_echo_crossdesk_0007")
        );
        assert_eq!(key(&m), "facebook:dm:PAGE_ID_100200300:PSID_2345678901");
        // Marked as sent outside Crossdesk in case no stored reply has that id.
        assert_eq!(m.delivery, outside(&m));
    }

    #[test]
    fn marks_an_echo_from_the_native_app_as_sent_outside_crossdesk() {
        let m = parse_one("messenger-echo-native-app.json");
        assert_eq!(m.direction, Direction::Outbound);
        assert_eq!(m.author.platform_id, "PAGE_ID_100200300");
        assert_eq!(
            m.delivery.as_ref().map(|d| d.status),
            Some(DeliveryStatus::SentOutsideCrossdesk)
        );
        assert_eq!(m.delivery, outside(&m));
        // Metadata another app set is not Crossdesk's: the echo keeps a fresh id.
        for name in [
            "messenger-echo.json",
            "messenger-standby-echo.json",
            "instagram-echo.json",
        ] {
            let m = parse_one(name);
            assert_eq!(m.delivery, outside(&m), "{name}");
            assert!(m.id.as_str().starts_with("msg_"), "{name}");
        }
    }

    #[test]
    fn marks_the_pages_own_comment_as_sent_outside_crossdesk_and_nothing_inbound() {
        let m = parse_one("feed-comment-by-page.json");
        assert_eq!(m.direction, Direction::Outbound);
        assert_eq!(m.delivery, outside(&m));
        for name in [
            "messenger-text.json",
            "feed-comment-add.json",
            "instagram-comment.json",
        ] {
            assert_eq!(parse_one(name).delivery, None, "{name}");
        }
    }

    #[test]
    fn reads_only_crossdesk_metadata_naming_a_message() {
        let id = MessageId::generate();
        assert_eq!(reply_in_metadata(&reply_metadata(&id)), Some(id.clone()));
        assert_eq!(
            reply_in_metadata(&format!(" {} ", reply_metadata(&id))),
            Some(id)
        );
        for other in [
            "",
            "crossdesk:",
            "crossdesk:msg_123",
            "crossdesk:ct_0192f1a0b3c47d8e9f00112233445566",
            "sent-by-crossdesk",
            "DEVELOPER_DEFINED_METADATA_STRING",
            "msg_0192f1a0b3c47d8e9f00112233445566",
        ] {
            assert_eq!(reply_in_metadata(other), None, "{other}");
        }
        // Only an echo names a reply; a customer's message cannot claim one.
        let body = br#"{"object":"page","entry":[{"id":"P","messaging":[{"sender":{"id":"U"},"recipient":{"id":"P"},"timestamp":1,"message":{"mid":"m","text":"hi","metadata":"crossdesk:msg_0192f1a0b3c47d8e9f00112233445566"}}]}]}"#;
        assert_ne!(
            parse_body(body).unwrap()[0].id.as_str(),
            "msg_0192f1a0b3c47d8e9f00112233445566"
        );
    }

    // ---- parse: unknown content ----

    #[test]
    fn names_an_unknown_attachment_in_the_text_and_keeps_the_rest_of_the_batch() {
        let messages = parse("instagram-unknown-attachment-batch.json");
        assert_eq!(
            messages.len(),
            2,
            "the read receipt is ignored: {messages:?}"
        );
        assert_eq!(
            messages[0].text,
            "Is this jacket in stock? It is in your reel:"
        );
        let reel = &messages[1];
        assert_eq!(reel.text, "unsupported message type: ig_reel");
        assert_eq!(kinds(reel), [AttachmentKind::Unsupported]);
        assert!(reel.attachments[0]
            .url
            .as_deref()
            .unwrap()
            .starts_with("https://lookaside.fbsbx.com/"));
        assert_eq!(
            reel.attachments[0].name.as_deref(),
            Some("Winter collection")
        );
        assert_eq!(key(reel), key(&messages[0]));
        assert_eq!(
            reel.raw,
            Some(RawRef::of(&event(
                "instagram-unknown-attachment-batch.json"
            )))
        );
        // Beside text, the unknown attachment is named after it.
        let body = br#"{"object":"page","entry":[{"id":"P","messaging":[{"sender":{"id":"U"},"recipient":{"id":"P"},"timestamp":1,"message":{"mid":"m","text":"look","attachments":[{"type":"image","payload":{"url":"https://x/y.jpg"}},{"type":"product_card","payload":{}}]}}]}]}"#;
        assert_eq!(
            parse_body(body).unwrap()[0].text,
            "look\n\nunsupported message type: product_card"
        );
    }

    #[test]
    fn stores_unknown_events_and_fields_as_placeholders_and_skips_what_names_no_one() {
        let messages = parse("messenger-unknown-event-and-field.json");
        let texts: Vec<&str> = messages.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "unsupported message type: messaging_feedback",
                "unsupported message type: shared_product",
                "And one more question about sizes."
            ]
        );
        assert!(messages.iter().all(
            |m| key(m) == "facebook:dm:PAGE_ID_100200300:PSID_2345678901"
                && m.direction == Direction::Inbound
        ));
        // No mid: an id a redelivery reproduces.
        assert_eq!(
            messages[0].platform_message_id.as_deref(),
            Some("messaging_feedback:PSID_2345678901:1732270800000")
        );
        assert_eq!(
            parse("messenger-unknown-event-and-field.json")[0].dedup_key(),
            messages[0].dedup_key()
        );
        assert_eq!(
            messages[1].platform_message_id.as_deref(),
            Some("m_sample_unknown_field_0009")
        );
        assert_eq!(messages[1].sent_at, ms(1732270801000));
    }

    #[test]
    fn reads_the_comment_beside_a_field_it_does_not_know() {
        let m = parse_one("feed-unknown-field.json");
        assert_eq!(
            m.platform_message_id.as_deref(),
            Some("POST_777_COMMENT_905")
        );
        assert_eq!(m.text, "Any update on my order?");
    }

    #[test]
    fn keeps_the_batch_when_an_entry_event_or_comment_has_an_unexpected_shape() {
        let ok = r#"{"sender":{"id":"U"},"recipient":{"id":"P"},"timestamp":1,"message":{"mid":"m.ok","text":"ok"}}"#;
        for (odd, placeholder) in [
            // A known event with a field of another type: a placeholder in its conversation.
            (
                r#"{"sender":{"id":"U"},"recipient":{"id":"P"},"timestamp":2,"message":{"mid":"m.odd","text":{"rich":"hi"}}}"#,
                Some("unsupported message type: message (unreadable fields)"),
            ),
            // The same without a sender: nothing to hold it, skipped.
            (r#"{"message":{"text":5}}"#, None),
            (r#"{"sender":{"id":"U"},"recipient":{"id":"P"}}"#, None),
            (r#""not an event""#, None),
            (r#"null"#, None),
        ] {
            let body = format!(
                r#"{{"object":"page","entry":[{{"id":"P","messaging":[{odd},{ok}]}},{{"messaging":{{}}}},7]}}"#
            );
            let messages = parse_body(body.as_bytes()).unwrap_or_else(|e| panic!("{odd}: {e}"));
            let texts: Vec<&str> = messages.iter().map(|m| m.text.as_str()).collect();
            let expected: Vec<&str> = placeholder.into_iter().chain(["ok"]).collect();
            assert_eq!(texts, expected, "{odd}");
        }
        let comments = br#"{"object":"page","entry":[{"id":"P","time":1,"changes":[
            {"field":"feed","value":{"item":"comment","verb":"add","comment_id":"c1","post_id":"p1","from":{"id":"u1"},"message":{"text":"rich"}}},
            {"field":"feed","value":{"item":"comment","verb":"add","comment_id":5.5}},
            {"field":"feed","value":{"item":"comment","verb":"share","comment_id":"c3","post_id":"p1","from":{"id":"u1"}}},
            {"field":"feed"},
            "odd",
            {"field":"feed","value":{"item":"comment","verb":"add","comment_id":"c2","post_id":"p1","from":{"id":"u1"},"message":"plain"}}]}]}"#;
        let messages = parse_body(comments).unwrap();
        let texts: Vec<&str> = messages.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "unsupported message type: comment (unreadable fields)",
                "plain"
            ]
        );
        assert_eq!(key(&messages[0]), "facebook:comments:p1:u1");
        assert_eq!(messages[0].platform_message_id.as_deref(), Some("c1"));
    }

    // ---- parse: everything else ----

    #[test]
    fn parses_every_sample_event() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/facebook");
        let mut count = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let body = std::fs::read(&path).unwrap();
            for m in parse_body(&body).unwrap_or_else(|e| panic!("{path:?}: {e}")) {
                assert!(m.conversation.key(m.channel).is_ok(), "{path:?}");
                assert!(m.platform_message_id.is_some(), "{path:?}");
                assert!(!m.author.platform_id.is_empty(), "{path:?}");
            }
            count += 1;
        }
        assert!(count >= 30);
    }

    #[test]
    fn rejects_envelopes_without_object_or_entry() {
        for body in [
            r#"{"entry":[]}"#,
            r#"{"object":"page"}"#,
            r#"{"object":"user"}"#,
            r#"{"object":null,"entry":null}"#,
        ] {
            assert!(
                matches!(parse_body(body.as_bytes()), Err(ParseError::Invalid(_))),
                "{body}"
            );
        }
    }

    #[test]
    fn accepts_and_skips_the_webhook_of_an_unknown_object() {
        // Another product's webhook (here WhatsApp's) pointed at this URL: answered 200, so
        // Meta neither retries it nor disables the subscription, and nothing is stored.
        assert_eq!(parse("unknown-object-whatsapp.json"), []);
        for body in [
            r#"{"object":"whatsapp_business_account","entry":[]}"#,
            r#"{"object":"user","entry":[{"id":"1","changes":[{"field":"email"}]}]}"#,
        ] {
            assert_eq!(parse_body(body.as_bytes()), Ok(vec![]), "{body}");
        }
    }

    #[test]
    fn rejects_malformed_and_truncated_bodies() {
        let body = event("messenger-batched.json");
        for bad in [
            &body[..body.len() / 2],
            &body[..body.len() - 1],
            b"{".as_slice(),
            b"{\"object\":\"page\",\"entry\":{}}".as_slice(),
            b"{\"object\":5,\"entry\":[]}".as_slice(),
        ] {
            assert!(
                matches!(parse_body(bad), Err(ParseError::Json(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        for bad in [
            b"".as_slice(),
            b"not json",
            b"[]",
            b"[\"page\",[]]",
            b"null",
        ] {
            assert!(parse_body(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn yields_nothing_for_entries_without_events() {
        for body in [
            r#"{"object":"page","entry":[]}"#,
            r#"{"object":"page","entry":[{}]}"#,
            r#"{"object":"page","entry":[{"id":"1","time":1,"messaging":[],"changes":[]}]}"#,
            r#"{"object":"instagram","entry":[{"id":"1","changes":[{"field":"mentions","value":{"media_id":"1"}}]}]}"#,
        ] {
            assert_eq!(parse_body(body.as_bytes()), Ok(vec![]), "{body}");
        }
    }

    #[test]
    fn skips_message_events_without_the_ids_a_message_needs() {
        let body = br#"{"object":"page","entry":[{"id":"P","time":1732270000000,"messaging":[
            {"sender":{"id":"U"},"recipient":{"id":"P"},"message":{"text":"no mid"}},
            {"recipient":{"id":"P"},"message":{"mid":"m.1","text":"no sender"}},
            {"sender":{"id":"P"},"recipient":{"id":"P"},"message":{"mid":"m.2","text":"page to itself"}},
            {"sender":{"id":"U"},"recipient":{"id":"P"},"message":{"mid":"m.3","text":"ok"}}]}]}"#;
        let messages = parse_body(body).unwrap();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].platform_message_id.as_deref(), Some("m.3"));
        // No timestamp: the entry's time (ms) stands in.
        assert_eq!(messages[0].sent_at, ms(1732270000000));
    }

    #[test]
    fn dates_an_undated_event_by_its_arrival() {
        let body = br#"{"object":"page","entry":[{"id":"P","changes":[{"field":"feed","value":
            {"item":"comment","verb":"add","comment_id":"c","post_id":"p","from":{"id":"u"},
             "created_time":99999999999999999}}]}]}"#;
        let m = &parse_body(body).unwrap()[0];
        assert_eq!(m.sent_at, now());
        assert_eq!(m.text, "");
    }

    #[test]
    fn refuses_ids_too_large_to_be_exact() {
        let exact = br#"{"object":"page","entry":[{"id":18446744073709551615,"messaging":[{"sender":{"id":-1},"recipient":{"id":18446744073709551615},"timestamp":1,"message":{"mid":"m"}}]}]}"#;
        let m = &parse_body(exact).unwrap()[0];
        assert_eq!(key(m), "facebook:dm:18446744073709551615:-1");
        // An entry (or an event) whose id is not exact is skipped, never threaded on a rounded id.
        let lossy = br#"{"object":"page","entry":[{"id":123456789012345678901234567890,"messaging":[{"sender":{"id":"2"},"recipient":{"id":"1"},"message":{"mid":"m"}}]}]}"#;
        assert_eq!(parse_body(lossy), Ok(vec![]));
        let lossy_sender = br#"{"object":"page","entry":[{"id":"1","messaging":[{"sender":{"id":1e30},"recipient":{"id":"1"},"message":{"mid":"m"}}]}]}"#;
        assert_eq!(parse_body(lossy_sender), Ok(vec![]));
    }

    #[test]
    fn never_panics_on_garbage() {
        let deep = format!(
            r#"{{"object":"page","entry":[{{"id":"1","messaging":[{{"optin":{}{}}}]}}]}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let deep_change = format!(
            r#"{{"object":"page","entry":[{{"changes":[{{"field":"feed","value":{{"item":"comment","x":{}}}}}]}}]}}"#,
            "[".repeat(100_000)
        );
        let unclosed = "[".repeat(1_000_000);
        let bodies: Vec<Vec<u8>> = [
            "[]",
            "{}",
            "0",
            "\"page\"",
            r#"{"object":"page","entry":[{}]}"#,
            r#"{"object":"page","entry":[null]}"#,
            r#"{"object":"page","entry":null}"#,
            r#"{"object":"page","entry":[{"id":null,"time":null,"messaging":null,"standby":null,"changes":null}]}"#,
            r#"{"object":"page","entry":[{"id":"1","messaging":[{"sender":null,"recipient":null,"timestamp":null,"message":null,"postback":null}]}]}"#,
            r#"{"object":"page","entry":[{"id":"1","messaging":[{"sender":{"id":"2"},"message":{"mid":null,"text":null,"attachments":null}}]}]}"#,
            r#"{"object":"page","entry":[{"id":"1","messaging":[{"sender":{"id":"2"},"message":{"mid":"m","attachments":[null]}}]}]}"#,
            r#"{"object":"page","entry":[{"id":"1","messaging":[{"sender":{"id":"2"},"message":{"mid":"m","attachments":[{"type":null,"payload":null},{"payload":5},{"type":"location","payload":{"coordinates":{"lat":1e999}}},{"type":"location","payload":{"coordinates":{"lat":"x","long":[]}}}]}}]}]}"#,
            r#"{"object":"page","entry":[{"id":"1","messaging":[{"sender":{"id":"2"},"timestamp":1e300,"message":{"mid":"m"}},{"sender":{"id":"2"},"timestamp":-9223372036854775808,"message":{"mid":"m"}},{"sender":{"id":"2"},"timestamp":true,"message":{"mid":"m"}},{"sender":{"id":"2"},"timestamp":"yesterday","message":{"mid":"m"}}]}]}"#,
            r#"{"object":"page","entry":[{"id":1.5}]}"#,
            r#"{"object":"page","entry":[{"id":{"a":1}}]}"#,
            r#"{"object":"page","entry":[{"id":"1","messaging":[{"sender":{"id":""},"recipient":{"id":" "},"postback":{}}]}]}"#,
            r#"{"object":"page","entry":[{"id":"1","messaging":[{"sender":{"id":"2"},"postback":{}}]}]}"#,
            r#"{"object":"page","entry":[{"id":"1","changes":[null,{},{"field":null,"value":null},{"field":"feed","value":[]},{"field":"feed","value":"x"},{"field":"feed","value":{"item":"comment","verb":5}}]}]}"#,
            r#"{"object":"page","entry":[{"id":"1","changes":[{"field":"feed","value":{"item":"comment","verb":"remove","comment_id":"c","post_id":"p"}}]}]}"#,
            r#"{"object":"instagram","entry":[{"id":"1","changes":[{"field":"comments","value":{"id":null,"from":null,"media":null}},{"field":"comments","value":{"id":"c","from":{"id":"u"},"media":{"id":"m"},"text":null}}]}]}"#,
            r#"{"object":"page","object":"instagram","entry":[]}"#,
            &deep,
            &deep_change,
            &unclosed,
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .chain([vec![0xff, 0xfe, b'{'], b"{\"object\":\"page\xff\"}".to_vec()])
        .collect();
        for body in &bodies {
            let _ = parse_body(body);
        }
        // A removed comment naming no author is still a removal.
        let removed = parse_body(
            br#"{"object":"page","entry":[{"id":"1","changes":[{"field":"feed","value":{"item":"comment","verb":"remove","comment_id":"c","post_id":"p"}}]}]}"#,
        )
        .unwrap();
        assert_eq!(removed[0].event, MessageEvent::Removed);
        assert_eq!(removed[0].author.platform_id, UNKNOWN_AUTHOR);
    }
}
