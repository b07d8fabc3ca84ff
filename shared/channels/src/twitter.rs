//! Twitter/X: mentions, replies and direct messages, from both webhook envelopes X delivers.
//!
//! - **CRC** — `GET ?crc_token=<t>` is answered with
//!   `{"response_token":"sha256=<base64 HMAC-SHA256(consumer secret, t)>"}` ([`crc_response_token`]).
//! - **Signature** — every `POST` carries
//!   `x-twitter-webhooks-signature: sha256=<base64 HMAC-SHA256(consumer secret, raw body)>`
//!   ([`sign`]). X signs no timestamp, so a replay is only caught by deduplication on the
//!   platform message id.
//! - **Account Activity API** — `{"for_user_id", "tweet_create_events": [v1.1 tweet],
//!   "direct_message_events": [message_create], "users": {id: profile}, "tweet_delete_events", …}`.
//! - **X Activity API** — `{"data": {"event_uuid", "event_type", "filter": {"user_id"}, "payload",
//!   "includes": {"users", "tweets", "media"}}}`; `post.*` payloads are v2 posts, `dm.*` payloads
//!   carry the legacy `direct_message_events` and a `users` map of `{"data": v2 user}`.
//!
//! The subscribed account (`for_user_id`, `filter.user_id`) decides the direction: what it writes
//! is outbound, to the customer it answers. Ids are always read as strings (X's ids exceed 2^53;
//! numeric `id` fields are never read) and text is HTML-unescaped.
//!
//! A body that is not a JSON object, or whose envelope does not have the documented shape, is a
//! [`ParseError`]. Inside a well-formed envelope nothing unknown is fatal:
//! - events that carry no message (likes, follows, typing, read receipts, revokes, retweets,
//!   profile updates) are ignored by design;
//! - an event type or DM attachment Crossdesk does not know becomes a message with the text
//!   `unsupported message type: <type>` when it names a conversation (the archived body keeps
//!   the rest), and a logged, counted skip when it does not, as does an event Crossdesk cannot
//!   read (no id, no author); the rest of the batch is unaffected.
//!
//! The account's own tweets and DMs are outbound and marked
//! [`Delivery::sent_outside_crossdesk`]: one Crossdesk sent has its id recorded on the reply and
//! is a duplicate before the mark is ever stored.

use std::cell::Cell;

use chrono::{DateTime, Utc};
use crossdesk_core::{
    unsupported_text, Attachment, AttachmentKind, Author, ChannelKind, Conversation, Delivery,
    Direction, Message, MessageEvent, MessageId, RawRef, Visibility,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::{json, signature};
use crate::{
    millis_to_time, Channel, HandshakeError, HandshakeReply, ParseError, Query, VerifiedWebhook,
    VerifyError, WebhookRequest,
};

/// The header carrying the body's signature.
pub const SIGNATURE_HEADER: &str = "x-twitter-webhooks-signature";
/// The longest `crc_token` answered, in bytes (X's tokens are a few dozen characters).
pub const MAX_CRC_TOKEN_BYTES: usize = 512;
/// The longest platform id accepted, in digits (X's snowflake ids have up to 19).
const MAX_ID_DIGITS: usize = 32;
/// The Account Activity fields Crossdesk reads or ignores by design; any other is an event type
/// it does not know.
const ACCOUNT_ACTIVITY_FIELDS: [&str; 15] = [
    "for_user_id",
    "users",
    "apps",
    "data",
    "tweet_create_events",
    "direct_message_events",
    "tweet_delete_events",
    "user_has_blocked",
    "favorite_events",
    "follow_events",
    "block_events",
    "mute_events",
    "user_event",
    "direct_message_indicate_typing_events",
    "direct_message_mark_read_events",
];
/// X Activity event types (and prefixes) that carry no message: ignored by design.
const IGNORED_ACTIVITY: [&str; 11] = [
    "profile.",
    "follow.",
    "unfollow.",
    "like.",
    "spaces.",
    "news.",
    "oauth.",
    "mute.",
    "block.",
    "dm.read",
    "dm.indicate_typing",
];

/// The `response_token` answering a CRC check: `sha256=<base64 HMAC-SHA256(secret, token)>`.
pub fn crc_response_token(consumer_secret: &str, crc_token: &str) -> String {
    format!(
        "sha256={}",
        signature::hmac_sha256_base64(consumer_secret.as_bytes(), &[crc_token.as_bytes()])
    )
}

/// The `x-twitter-webhooks-signature` value X sends with `body` (for tests and local tools).
pub fn sign(consumer_secret: &str, body: &[u8]) -> String {
    format!(
        "sha256={}",
        signature::hmac_sha256_base64(consumer_secret.as_bytes(), &[body])
    )
}

// ---- wire types ----

/// A value X sends as a string or as a number (ids, `timestamp_ms`), kept as text. Integers are
/// exact (serde_json reads them as 64-bit integers); floats, booleans and the rest read as absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Lenient(Option<String>);

impl<'de> Deserialize<'de> for Lenient {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Lenient(match Value::deserialize(d)? {
            Value::String(s) => Some(s),
            Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
            _ => None,
        }))
    }
}

impl Lenient {
    fn id(&self) -> Option<&str> {
        self.0.as_deref().and_then(|s| platform_id(Some(s)))
    }

    fn int(&self) -> Option<i64> {
        self.0.as_deref().and_then(|s| s.trim().parse().ok())
    }
}

/// A list X may send as `null`: read as empty.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The Account Activity envelope, or (with `data`) the X Activity one, read without building the
/// body: each event stays raw JSON until its turn comes, so one unreadable event is skipped and
/// the fields nobody reads (the user objects of every tweet) are never copied.
struct Envelope<'a> {
    for_user_id: Lenient,
    tweet_create_events: Vec<&'a RawValue>,
    direct_message_events: Vec<&'a RawValue>,
    tweet_delete_events: Vec<&'a RawValue>,
    /// User id → v1.1 profile, beside DM events.
    users: Option<&'a RawValue>,
    /// The X Activity API event, when the body is that envelope.
    data: Option<&'a RawValue>,
    /// Fields that are none of [`ACCOUNT_ACTIVITY_FIELDS`]: event types X added since.
    unknown: Vec<String>,
    // Accepted and ignored: favorite_events, follow_events, block_events, mute_events,
    // user_event, user_has_blocked (a string in the docs, a boolean in real payloads),
    // direct_message_indicate_typing_events, direct_message_mark_read_events, apps.
}

impl<'de: 'a, 'a> Deserialize<'de> for Envelope<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EnvelopeVisitor(std::marker::PhantomData))
    }
}

/// Reads the envelope's fields; a later copy of a field replaces an earlier one.
struct EnvelopeVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> serde::de::Visitor<'de> for EnvelopeVisitor<'a> {
    type Value = Envelope<'a>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an X webhook envelope object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut fields: A,
    ) -> Result<Self::Value, A::Error> {
        let mut envelope = Envelope {
            for_user_id: Lenient::default(),
            tweet_create_events: Vec::new(),
            direct_message_events: Vec::new(),
            tweet_delete_events: Vec::new(),
            users: None,
            data: None,
            unknown: Vec::new(),
        };
        /// An event list: an array, or `null` for none.
        type Events<'a> = Option<Vec<&'a RawValue>>;
        while let Some(name) = fields.next_key::<std::borrow::Cow<'de, str>>()? {
            match name.as_ref() {
                "for_user_id" => envelope.for_user_id = fields.next_value()?,
                "tweet_create_events" => {
                    envelope.tweet_create_events =
                        fields.next_value::<Events<'a>>()?.unwrap_or_default()
                }
                "direct_message_events" => {
                    envelope.direct_message_events =
                        fields.next_value::<Events<'a>>()?.unwrap_or_default()
                }
                "tweet_delete_events" => {
                    envelope.tweet_delete_events =
                        fields.next_value::<Events<'a>>()?.unwrap_or_default()
                }
                "users" => envelope.users = fields.next_value()?,
                "data" => envelope.data = fields.next_value()?,
                other => {
                    if !ACCOUNT_ACTIVITY_FIELDS.contains(&other) {
                        envelope.unknown.push(other.chars().take(60).collect());
                    }
                    fields.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(envelope)
    }
}

/// A v1.1 tweet (Account Activity `tweet_create_events[]`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Tweet {
    id_str: Option<String>,
    text: Option<String>,
    full_text: Option<String>,
    extended_tweet: Option<ExtendedTweet>,
    user: Option<TweetUser>,
    in_reply_to_status_id_str: Option<String>,
    in_reply_to_user_id_str: Option<String>,
    conversation_id_str: Option<String>,
    conversation_id: Lenient,
    timestamp_ms: Lenient,
    created_at: Option<String>,
    entities: Option<Entities>,
    extended_entities: Option<Entities>,
    /// Present on retweets, which carry no new message.
    retweeted_status: Option<serde::de::IgnoredAny>,
}

/// The full text and entities of a tweet longer than 140 characters.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ExtendedTweet {
    full_text: Option<String>,
    entities: Option<Entities>,
    extended_entities: Option<Entities>,
}

/// A tweet's author.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TweetUser {
    id_str: Option<String>,
    name: Option<String>,
    screen_name: Option<String>,
}

/// The entities of a tweet; only media matter here.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Entities {
    #[serde(deserialize_with = "nullable")]
    media: Vec<Media>,
}

/// A v1.1 media object (tweet entities, DM attachment).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Media {
    #[serde(rename = "type")]
    kind: Option<String>,
    media_url_https: Option<String>,
    media_url: Option<String>,
    video_info: Option<VideoInfo>,
}

/// The encodings of a video or animated GIF.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct VideoInfo {
    #[serde(deserialize_with = "nullable")]
    variants: Vec<VideoVariant>,
}

/// One encoding of a video.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct VideoVariant {
    content_type: Option<String>,
    url: Option<String>,
    bit_rate: Lenient,
    bitrate: Lenient,
}

/// A legacy DM event (`direct_message_events[]`, in both envelopes).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DmEvent {
    #[serde(rename = "type")]
    kind: Option<String>,
    id: Lenient,
    created_timestamp: Lenient,
    message_create: Option<MessageCreate>,
}

/// The body of a `message_create` DM event.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct MessageCreate {
    sender_id: Lenient,
    target: Option<DmTarget>,
    message_data: Option<MessageData>,
}

/// The recipient of a DM.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DmTarget {
    recipient_id: Lenient,
}

/// A DM's text and attachment.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct MessageData {
    text: Option<String>,
    attachment: Option<DmAttachment>,
}

/// A DM attachment (`{"type":"media","media":{…}}`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DmAttachment {
    #[serde(rename = "type")]
    kind: Option<String>,
    media: Option<Media>,
}

/// A `tweet_delete_events[]` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TweetDelete {
    status: Option<DeletedStatus>,
    timestamp_ms: Lenient,
}

/// The tweet a delete event removes.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DeletedStatus {
    id: Lenient,
    id_str: Option<String>,
    user_id: Lenient,
    user_id_str: Option<String>,
}

/// A user profile: v1.1 (`screen_name`) or v2 (`username`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Profile {
    id: Lenient,
    id_str: Option<String>,
    name: Option<String>,
    screen_name: Option<String>,
    username: Option<String>,
}

/// The X Activity API event inside `data`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ActivityEvent {
    event_uuid: Lenient,
    event_type: Option<String>,
    filter: ActivityFilter,
    payload: Value,
    /// `users`, `tweets`, `media` expanded by X.
    includes: Value,
}

/// The subscription filter an X Activity event matched.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ActivityFilter {
    user_id: Lenient,
}

/// A v2 post (`post.*` payloads).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Post {
    id: Lenient,
    text: Option<String>,
    /// The full text of a post longer than 280 characters.
    note_tweet: Option<NoteTweet>,
    author_id: Lenient,
    conversation_id: Lenient,
    created_at: Option<String>,
    in_reply_to_user_id: Lenient,
    in_reply_to_tweet_id: Lenient,
    #[serde(deserialize_with = "nullable")]
    referenced_tweets: Vec<ReferencedTweet>,
    attachments: Option<V2Attachments>,
}

/// The long text of a v2 post.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct NoteTweet {
    text: Option<String>,
}

/// A post a v2 post replies to, quotes or retweets.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ReferencedTweet {
    #[serde(rename = "type")]
    kind: Option<String>,
    id: Lenient,
}

/// Media keys of a v2 post or DM, resolved through `includes.media`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct V2Attachments {
    #[serde(deserialize_with = "nullable")]
    media_keys: Vec<String>,
}

/// A v2 media object (`includes.media[]`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct V2Media {
    media_key: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    url: Option<String>,
    preview_image_url: Option<String>,
    #[serde(deserialize_with = "nullable")]
    variants: Vec<VideoVariant>,
}

/// A `dm.*` payload: legacy `direct_message_events` plus `users`, or a v2 DM event.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ActivityDm {
    direct_message_events: Option<Vec<Value>>,
    users: Value,
    // v2 DM event fields.
    event_type: Option<String>,
    id: Lenient,
    text: Option<String>,
    sender_id: Lenient,
    #[serde(deserialize_with = "nullable")]
    participant_ids: Vec<Lenient>,
    created_at: Option<String>,
    attachments: Option<V2Attachments>,
}

/// A `post.delete` payload.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PostDelete {
    id: Lenient,
    author_id: Lenient,
}

// ---- channel ----

/// The Twitter/X channel, holding the app's consumer secret.
pub struct TwitterChannel {
    consumer_secret: SecretString,
}

impl TwitterChannel {
    /// A channel verifying (and answering CRC checks) with the consumer secret.
    pub fn new(consumer_secret: SecretString) -> Self {
        TwitterChannel { consumer_secret }
    }
}

impl Channel for TwitterChannel {
    fn name(&self) -> &'static str {
        "twitter"
    }

    fn kinds(&self) -> &'static [ChannelKind] {
        &[ChannelKind::Twitter]
    }

    fn signature_header(&self) -> Option<&'static str> {
        Some(SIGNATURE_HEADER)
    }

    fn handshake(&self, query: &Query) -> Result<HandshakeReply, HandshakeError> {
        let token = query
            .get("crc_token")
            .ok_or_else(|| HandshakeError::BadRequest("missing crc_token".into()))?;
        if token.is_empty() {
            return Err(HandshakeError::BadRequest("empty crc_token".into()));
        }
        if token.len() > MAX_CRC_TOKEN_BYTES {
            return Err(HandshakeError::BadRequest(format!(
                "crc_token is longer than {MAX_CRC_TOKEN_BYTES} bytes"
            )));
        }
        let response_token = crc_response_token(self.consumer_secret.expose_secret(), token);
        Ok(HandshakeReply {
            content_type: "application/json",
            body: serde_json::json!({ "response_token": response_token }).to_string(),
        })
    }

    fn verify<'a>(
        &self,
        request: &WebhookRequest<'a>,
        _now: DateTime<Utc>,
    ) -> Result<VerifiedWebhook<'a>, VerifyError> {
        let value = request
            .headers
            .get(SIGNATURE_HEADER)
            .ok_or(VerifyError::MissingHeader(SIGNATURE_HEADER))?;
        let encoded =
            value
                .trim()
                .strip_prefix("sha256=")
                .ok_or_else(|| VerifyError::MalformedHeader {
                    header: SIGNATURE_HEADER,
                    reason: "expected sha256=<base64>".into(),
                })?;
        let digest = signature::decode_base64_digest(encoded).ok_or_else(|| {
            VerifyError::MalformedHeader {
                header: SIGNATURE_HEADER,
                reason: "the sha256 value is not base64 of 32 bytes".into(),
            }
        })?;
        let key = self.consumer_secret.expose_secret().as_bytes();
        if !signature::matches(key, &[request.body], &digest) {
            return Err(VerifyError::BadSignature);
        }
        Ok(VerifiedWebhook::new(request.body))
    }

    fn parse(
        &self,
        webhook: &VerifiedWebhook<'_>,
        received_at: DateTime<Utc>,
    ) -> Result<Vec<Message>, ParseError> {
        // UTF-8, syntax and nesting checked over the whole body, as a `Value` parse would; then
        // only the fields Crossdesk reads are read.
        let body = json::checked_object(webhook.body())?;
        let envelope: Envelope<'_> = serde_json::from_str(body)?;
        let data = match envelope.data {
            Some(event) if event.get().starts_with('{') => {
                Some(serde_json::from_str::<ActivityEvent>(event.get())?)
            }
            Some(_) => {
                return Err(ParseError::Invalid(
                    "`data` is not an X Activity event object".into(),
                ))
            }
            None => None,
        };
        let ctx = Ctx {
            raw: webhook.raw_ref(),
            received_at,
            skipped: Cell::new(0),
        };
        let messages = match &data {
            Some(event) => parse_activity_event(event, &ctx),
            None => parse_account_activity(&envelope, &ctx)?,
        };
        if ctx.skipped.get() > 0 {
            tracing::warn!(
                skipped = ctx.skipped.get(),
                accepted = messages.len(),
                "X webhook items Crossdesk cannot read were skipped"
            );
        }
        Ok(messages)
    }
}

// ---- parsing ----

/// What every message of one webhook shares.
struct Ctx {
    raw: RawRef,
    received_at: DateTime<Utc>,
    /// How many events were skipped as unreadable.
    skipped: Cell<usize>,
}

/// An event read, or why it could not be (logged, then skipped).
type Read = Result<Option<Message>, &'static str>;

/// The fields that differ from one message to the next.
struct Draft {
    platform_message_id: String,
    conversation: Conversation,
    direction: Direction,
    event: MessageEvent,
    author: Author,
    text: String,
    attachments: Vec<Attachment>,
    visibility: Visibility,
    sent_at: Option<DateTime<Utc>>,
    replies_to: Vec<String>,
}

impl Draft {
    fn into_message(self, ctx: &Ctx) -> Message {
        // The account's own message: a Crossdesk reply is matched by its recorded id before this
        // mark is stored; anything else was sent outside Crossdesk.
        let delivery = (self.direction == Direction::Outbound)
            .then(|| Delivery::sent_outside_crossdesk(&self.platform_message_id));
        Message {
            id: MessageId::generate(),
            channel: ChannelKind::Twitter,
            platform_message_id: Some(self.platform_message_id),
            conversation: self.conversation,
            direction: self.direction,
            event: self.event,
            author: self.author,
            text: self.text,
            attachments: self.attachments,
            visibility: self.visibility,
            sent_at: self.sent_at.unwrap_or(ctx.received_at),
            received_at: ctx.received_at,
            replies_to: self.replies_to,
            ticket_ref: None,
            subject: None,
            email: None,
            raw: Some(ctx.raw.clone()),
            signature_unverified: false,
            personal_data: Vec::new(),
            internal_note: false,
            monitoring: false,
            delivery,
        }
    }
}

fn parse_account_activity(envelope: &Envelope<'_>, ctx: &Ctx) -> Result<Vec<Message>, ParseError> {
    // An event type X added after this was written: nothing to read it with, so counted.
    for field in &envelope.unknown {
        tracing::warn!(event = %field, "skipped an Account Activity event type Crossdesk does not know");
        ctx.skipped.set(ctx.skipped.get() + 1);
    }
    let tweets = &envelope.tweet_create_events;
    let dms = &envelope.direct_message_events;
    let deletes = &envelope.tweet_delete_events;
    if tweets.is_empty() && dms.is_empty() && deletes.is_empty() {
        // Likes, follows, typing, read receipts, revokes, …: nothing to thread.
        return Ok(Vec::new());
    }
    let account = envelope.for_user_id.id().ok_or_else(|| {
        ParseError::Invalid("for_user_id (the subscribed account) is missing".into())
    })?;
    // The profiles are read only for DMs (tweets carry their author).
    let users: Value = match envelope.users {
        Some(users) if !dms.is_empty() => serde_json::from_str(users.get())?,
        _ => Value::Null,
    };
    let mut messages = Vec::new();
    read_each(&mut messages, ctx, "tweet_create_events", tweets, |v| {
        tweet_message(&raw_object::<Tweet>(v)?, account, ctx)
    });
    read_each(&mut messages, ctx, "direct_message_events", dms, |v| {
        dm_message(
            &raw_object::<DmEvent>(v)?,
            account,
            &users,
            &Value::Null,
            ctx,
        )
    });
    read_each(&mut messages, ctx, "tweet_delete_events", deletes, |v| {
        let delete = raw_object::<TweetDelete>(v)?;
        let status = delete.status.unwrap_or_default();
        removal(
            platform_id(status.id_str.as_deref()).or(status.id.id()),
            platform_id(status.user_id_str.as_deref()).or(status.user_id.id()),
            account,
            delete.timestamp_ms.int(),
            ctx,
        )
    });
    Ok(messages)
}

const UNREADABLE: &str = "does not have the documented shape";

/// An event object read into its wire type (an array or a type mismatch is unreadable).
fn object<T: for<'de> Deserialize<'de>>(value: &Value) -> Result<T, &'static str> {
    if !value.is_object() {
        return Err(UNREADABLE);
    }
    T::deserialize(value).map_err(|_| UNREADABLE)
}

/// [`object`] for an event still in its raw JSON.
fn raw_object<T: for<'de> Deserialize<'de>>(raw: &RawValue) -> Result<T, &'static str> {
    if !raw.get().starts_with('{') {
        return Err(UNREADABLE);
    }
    serde_json::from_str(raw.get()).map_err(|_| UNREADABLE)
}

/// Reads each event of one array, skipping (and counting) the ones that cannot be read.
fn read_each<E>(
    out: &mut Vec<Message>,
    ctx: &Ctx,
    kind: &'static str,
    events: &[E],
    mut read: impl FnMut(&E) -> Read,
) {
    for (index, value) in events.iter().enumerate() {
        keep(out, ctx, kind, index, read(value));
    }
}

/// Keeps a message read from an event; logs and counts an event that could not be read.
fn keep(out: &mut Vec<Message>, ctx: &Ctx, kind: &'static str, index: usize, read: Read) {
    match read {
        Ok(Some(message)) => out.push(message),
        Ok(None) => {}
        // The reason names the missing field, never the payload's content.
        Err(reason) => {
            ctx.skipped.set(ctx.skipped.get() + 1);
            tracing::warn!(event = kind, index, reason, "skipped an X event");
        }
    }
}

fn tweet_message(tweet: &Tweet, account: &str, ctx: &Ctx) -> Read {
    if tweet.retweeted_status.is_some() {
        return Ok(None);
    }
    let id = platform_id(tweet.id_str.as_deref()).ok_or("tweet without id_str")?;
    let user = tweet.user.as_ref().ok_or("tweet without user")?;
    let author_id = platform_id(user.id_str.as_deref()).ok_or("tweet without user.id_str")?;
    let replied_user = platform_id(tweet.in_reply_to_user_id_str.as_deref());
    let Some((direction, customer)) = sides(author_id, replied_user, account) else {
        // The account's own broadcast (or a reply to itself) is not a support message.
        return Ok(None);
    };
    let extended = tweet.extended_tweet.as_ref();
    let text = extended
        .and_then(|e| e.full_text.as_deref())
        .or(tweet.full_text.as_deref())
        .or(tweet.text.as_deref())
        .unwrap_or_default();
    let replied_status = platform_id(tweet.in_reply_to_status_id_str.as_deref());
    let conversation_id = platform_id(tweet.conversation_id_str.as_deref())
        .or(tweet.conversation_id.id())
        .or(replied_status)
        .unwrap_or(id);
    let media = [
        extended.and_then(|e| e.extended_entities.as_ref()),
        tweet.extended_entities.as_ref(),
        extended.and_then(|e| e.entities.as_ref()),
        tweet.entities.as_ref(),
    ]
    .into_iter()
    .flatten()
    .map(|e| &e.media)
    .find(|m| !m.is_empty());
    let sent_at = tweet
        .timestamp_ms
        .int()
        .map(|ms| millis_to_time(ms, ctx.received_at))
        .or_else(|| tweet.created_at.as_deref().and_then(classic_time));
    Ok(Some(
        Draft {
            platform_message_id: id.to_string(),
            conversation: Conversation::TweetThread {
                conversation_id: conversation_id.to_string(),
                user_id: customer.to_string(),
            },
            direction,
            event: MessageEvent::Created,
            author: author(author_id, user.name.as_deref(), user.screen_name.as_deref()),
            text: unescape_html(text),
            attachments: media
                .map(|m| m.iter().map(media_attachment).collect())
                .unwrap_or_default(),
            visibility: Visibility::Public,
            sent_at,
            replies_to: replied_status.map(str::to_string).into_iter().collect(),
        }
        .into_message(ctx),
    ))
}

fn dm_message(event: &DmEvent, account: &str, users: &Value, includes: &Value, ctx: &Ctx) -> Read {
    // Only `message_create` is documented; another type is read as a placeholder where it
    // names its sender and recipient.
    let unknown_type = event
        .kind
        .as_deref()
        .filter(|kind| *kind != "message_create");
    let create = match (&event.message_create, unknown_type) {
        (Some(create), _) => create,
        (None, None) => return Err("DM event without message_create"),
        (None, Some(_)) => return Err("DM event of an unknown type that names no conversation"),
    };
    let id = event.id.id().ok_or("DM event without id")?;
    let sender = create.sender_id.id().ok_or("DM without sender_id")?;
    let recipient = create.target.as_ref().and_then(|t| t.recipient_id.id());
    if sender == account && recipient.is_none() {
        return Err("outbound DM without target.recipient_id");
    }
    let Some((direction, customer)) = sides(sender, recipient, account) else {
        // A note to self.
        return Ok(None);
    };
    let data = create.message_data.as_ref();
    let attachment = data.and_then(|d| d.attachment.as_ref());
    let profile = profile_in_map(users, sender).or_else(|| profile_in_list(includes, sender));
    let mut text = unescape_html(data.and_then(|d| d.text.as_deref()).unwrap_or_default());
    let attachments: Vec<Attachment> = attachment.map(dm_attachment).into_iter().collect();
    let unsupported = unknown_type.map(str::to_string).or_else(|| {
        // An attachment Crossdesk cannot show, in a DM without text: say what it was.
        let shown = attachments
            .iter()
            .any(|a| a.kind != AttachmentKind::Unsupported);
        (text.trim().is_empty() && !attachments.is_empty() && !shown)
            .then(|| attachment.map(attachment_type).unwrap_or_default())
    });
    if let Some(kind) = unsupported {
        text = unsupported_text(&kind);
    }
    Ok(Some(
        Draft {
            platform_message_id: id.to_string(),
            conversation: Conversation::DirectMessages {
                account_id: account.to_string(),
                user_id: customer.to_string(),
            },
            direction,
            event: MessageEvent::Created,
            author: profile_author(sender, profile.as_ref()),
            text,
            attachments,
            visibility: Visibility::Private,
            sent_at: event
                .created_timestamp
                .int()
                .map(|ms| millis_to_time(ms, ctx.received_at)),
            replies_to: Vec::new(),
        }
        .into_message(ctx),
    ))
}

/// A removed tweet or post: revises the stored message with that platform id.
fn removal(
    id: Option<&str>,
    author_id: Option<&str>,
    account: &str,
    millis: Option<i64>,
    ctx: &Ctx,
) -> Read {
    let id = id.ok_or("delete event without the tweet id")?;
    let author_id = author_id.ok_or("delete event without the author id")?;
    let direction = if author_id == account {
        Direction::Outbound
    } else {
        Direction::Inbound
    };
    Ok(Some(
        Draft {
            platform_message_id: id.to_string(),
            conversation: Conversation::TweetThread {
                conversation_id: id.to_string(),
                user_id: author_id.to_string(),
            },
            direction,
            event: MessageEvent::Removed,
            author: author(author_id, None, None),
            text: String::new(),
            attachments: Vec::new(),
            visibility: Visibility::Public,
            sent_at: millis.map(|ms| millis_to_time(ms, ctx.received_at)),
            replies_to: Vec::new(),
        }
        .into_message(ctx),
    ))
}

/// The X Activity events that carry a message.
#[derive(Debug, Clone, Copy)]
enum ActivityKind {
    /// `post.mention.create`, `post.reply.create`, `post.create`: a v2 post.
    Post,
    /// `post.delete`: a post removed.
    PostDelete,
    /// `dm.received`, `dm.sent`: direct messages.
    Dm,
    /// A type Crossdesk does not know: a placeholder where it names a conversation.
    Unknown,
}

fn parse_activity_event(event: &ActivityEvent, ctx: &Ctx) -> Vec<Message> {
    let event_type = event.event_type.as_deref().unwrap_or_default();
    let kind = match event_type {
        "post.mention.create" | "post.reply.create" | "post.create" => ActivityKind::Post,
        "post.delete" => ActivityKind::PostDelete,
        "dm.received" | "dm.sent" => ActivityKind::Dm,
        ignored
            if IGNORED_ACTIVITY
                .iter()
                .any(|i| ignored == *i || (i.ends_with('.') && ignored.starts_with(i))) =>
        {
            tracing::debug!(event_type, "ignored an X Activity event without a message");
            return Vec::new();
        }
        _ => ActivityKind::Unknown,
    };
    let mut messages = Vec::new();
    let Some(account) = event.filter.user_id.id() else {
        keep(&mut messages, ctx, "data", 0, Err("no filter.user_id"));
        return messages;
    };
    tracing::debug!(
        event_uuid = event.event_uuid.0.as_deref(),
        event_type,
        "X Activity event"
    );
    let payload = unwrap_data(&event.payload);
    match kind {
        ActivityKind::Post => {
            let read = object::<Post>(payload)
                .and_then(|post| post_message(&post, account, &event.includes, ctx));
            keep(&mut messages, ctx, "post", 0, read);
        }
        ActivityKind::PostDelete => {
            let read = object::<PostDelete>(payload).and_then(|delete| {
                removal(delete.id.id(), delete.author_id.id(), account, None, ctx)
            });
            keep(&mut messages, ctx, "post.delete", 0, read);
        }
        ActivityKind::Dm => match object::<ActivityDm>(payload) {
            Ok(ActivityDm {
                direct_message_events: Some(events),
                users,
                ..
            }) => read_each(&mut messages, ctx, "dm", &events, |v| {
                dm_message(
                    &object::<DmEvent>(v)?,
                    account,
                    &users,
                    &event.includes,
                    ctx,
                )
            }),
            Ok(v2) => keep(
                &mut messages,
                ctx,
                "dm",
                0,
                v2_dm_message(&v2, account, &event.includes, ctx),
            ),
            Err(reason) => keep(&mut messages, ctx, "dm", 0, Err(reason)),
        },
        ActivityKind::Unknown => {
            let read = unknown_activity(event, event_type, payload, account, ctx);
            keep(&mut messages, ctx, "unknown event type", 0, read);
        }
    }
    messages
}

/// An X Activity event of a type Crossdesk does not know, as a placeholder message in the
/// conversation its payload names: a post-like payload (`author_id`) in the post's thread, a
/// DM-like one (`sender_id`) in the direct messages with the customer.
fn unknown_activity(
    event: &ActivityEvent,
    event_type: &str,
    payload: &Value,
    account: &str,
    ctx: &Ctx,
) -> Read {
    let field = |name: &str| {
        payload
            .get(name)
            .and_then(|v| Lenient::deserialize(v).ok())
            .unwrap_or_default()
    };
    // The payload's own id where it has one, else the event's; scoped by the event type so it
    // never collides with the id of a post or DM Crossdesk reads.
    let id = field("id")
        .0
        .or_else(|| event.event_uuid.0.clone())
        .filter(|id| !id.trim().is_empty() && id.len() <= 128 && !id.contains(char::is_control))
        .ok_or("unknown event type without an id")?;
    let (author_id, direction, conversation, visibility) =
        if let Some(author) = field("author_id").id() {
            let replied = field("in_reply_to_user_id");
            let (direction, customer) = sides(author, replied.id(), account)
                .ok_or("unknown event type by the account, to no one")?;
            let thread = field("conversation_id").id().map(str::to_string);
            let conversation = Conversation::TweetThread {
                conversation_id: thread.unwrap_or_else(|| id.clone()),
                user_id: customer.to_string(),
            };
            (
                author.to_string(),
                direction,
                conversation,
                Visibility::Public,
            )
        } else if let Some(sender) = field("sender_id").id() {
            let recipient = field("recipient_id");
            let participants: Vec<Lenient> = payload
                .get("participant_ids")
                .and_then(|p| Vec::<Lenient>::deserialize(p).ok())
                .unwrap_or_default();
            let other = recipient.id().or_else(|| {
                participants
                    .iter()
                    .filter_map(Lenient::id)
                    .find(|p| *p != account)
            });
            let (direction, customer) = sides(sender, other, account)
                .ok_or("unknown event type by the account, to no one")?;
            let conversation = Conversation::DirectMessages {
                account_id: account.to_string(),
                user_id: customer.to_string(),
            };
            (
                sender.to_string(),
                direction,
                conversation,
                Visibility::Private,
            )
        } else {
            return Err("unknown event type that names no conversation");
        };
    tracing::warn!(
        event_type,
        "unsupported X event stored with a placeholder text"
    );
    Ok(Some(
        Draft {
            platform_message_id: format!("{event_type}:{id}"),
            conversation,
            direction,
            event: MessageEvent::Created,
            author: author(&author_id, None, None),
            text: unsupported_text(event_type),
            attachments: Vec::new(),
            visibility,
            sent_at: payload
                .get("created_at")
                .and_then(Value::as_str)
                .and_then(rfc3339_time),
            replies_to: Vec::new(),
        }
        .into_message(ctx),
    ))
}

/// A v2 post as the X API returns it (e.g. from recent search), with the response's `includes`,
/// as the message a mention of it becomes: the same channel, conversation and platform id, so
/// the writer recognizes it when it arrived as a mention too. `Ok(None)` for the account's own
/// post that addresses no one; `Err` names what makes the post unreadable.
pub(crate) fn v2_post_message(
    post: &Value,
    account: &str,
    includes: &Value,
    raw: RawRef,
    received_at: DateTime<Utc>,
) -> Result<Option<Message>, &'static str> {
    let ctx = Ctx {
        raw,
        received_at,
        skipped: Cell::new(0),
    };
    post_message(&object::<Post>(post)?, account, includes, &ctx)
}

fn post_message(post: &Post, account: &str, includes: &Value, ctx: &Ctx) -> Read {
    let id = post.id.id().ok_or("post without id")?;
    let author_id = post.author_id.id().ok_or("post without author_id")?;
    let replied_to = post
        .referenced_tweets
        .iter()
        .find(|r| r.kind.as_deref() == Some("replied_to"))
        .and_then(|r| r.id.id())
        .or(post.in_reply_to_tweet_id.id());
    let Some((direction, customer)) = sides(author_id, post.in_reply_to_user_id.id(), account)
    else {
        return Ok(None);
    };
    let text = post
        .note_tweet
        .as_ref()
        .and_then(|n| n.text.as_deref())
        .or(post.text.as_deref())
        .unwrap_or_default();
    let profile = profile_in_list(includes, author_id);
    Ok(Some(
        Draft {
            platform_message_id: id.to_string(),
            conversation: Conversation::TweetThread {
                conversation_id: post
                    .conversation_id
                    .id()
                    .or(replied_to)
                    .unwrap_or(id)
                    .to_string(),
                user_id: customer.to_string(),
            },
            direction,
            event: MessageEvent::Created,
            author: profile_author(author_id, profile.as_ref()),
            text: unescape_html(text),
            attachments: v2_attachments(post.attachments.as_ref(), includes),
            visibility: Visibility::Public,
            sent_at: post.created_at.as_deref().and_then(rfc3339_time),
            replies_to: replied_to.map(str::to_string).into_iter().collect(),
        }
        .into_message(ctx),
    ))
}

/// A `dm.*` payload in the v2 DM event shape (`id`, `sender_id`, `participant_ids`, …).
fn v2_dm_message(dm: &ActivityDm, account: &str, includes: &Value, ctx: &Ctx) -> Read {
    let unknown_type = match dm.event_type.as_deref() {
        None | Some("MessageCreate") => None,
        // People joining or leaving a group conversation: nothing to answer.
        Some("ParticipantsJoin" | "ParticipantsLeave") => return Ok(None),
        Some(other) => Some(other),
    };
    let id = dm.id.id().ok_or("DM event without id")?;
    let sender = dm.sender_id.id().ok_or("DM without sender_id")?;
    let other = dm
        .participant_ids
        .iter()
        .filter_map(Lenient::id)
        .find(|p| *p != account);
    let Some((direction, customer)) = sides(sender, other, account) else {
        return Ok(None);
    };
    let profile = profile_in_list(includes, sender);
    Ok(Some(
        Draft {
            platform_message_id: id.to_string(),
            conversation: Conversation::DirectMessages {
                account_id: account.to_string(),
                user_id: customer.to_string(),
            },
            direction,
            event: MessageEvent::Created,
            author: profile_author(sender, profile.as_ref()),
            text: match unknown_type {
                Some(kind) => unsupported_text(kind),
                None => unescape_html(dm.text.as_deref().unwrap_or_default()),
            },
            attachments: v2_attachments(dm.attachments.as_ref(), includes),
            visibility: Visibility::Private,
            sent_at: dm.created_at.as_deref().and_then(rfc3339_time),
            replies_to: Vec::new(),
        }
        .into_message(ctx),
    ))
}

// ---- helpers ----

/// Who a message is between: the account's own message is outbound to the user it answers (none:
/// not a conversation with a customer); anyone else's is inbound from its author.
fn sides<'a>(
    author: &'a str,
    addressee: Option<&'a str>,
    account: &str,
) -> Option<(Direction, &'a str)> {
    if author == account {
        addressee
            .filter(|c| *c != account)
            .map(|c| (Direction::Outbound, c))
    } else {
        Some((Direction::Inbound, author))
    }
}

/// An X id: 1 to 32 ASCII digits (after trimming); anything else reads as absent.
fn platform_id(s: Option<&str>) -> Option<&str> {
    let s = s?.trim();
    (!s.is_empty() && s.len() <= MAX_ID_DIGITS && s.bytes().all(|b| b.is_ascii_digit()))
        .then_some(s)
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn author(id: &str, name: Option<&str>, handle: Option<&str>) -> Author {
    Author {
        platform_id: id.to_string(),
        name: non_empty(name),
        email: None,
        handle: non_empty(handle),
    }
}

fn profile_author(id: &str, profile: Option<&Profile>) -> Author {
    match profile {
        Some(p) => author(
            id,
            p.name.as_deref(),
            p.screen_name.as_deref().or(p.username.as_deref()),
        ),
        None => author(id, None, None),
    }
}

/// X Activity wraps some objects as `{"data": {…}}`; returns the object itself.
fn unwrap_data(value: &Value) -> &Value {
    match value.get("data") {
        Some(inner) if inner.is_object() => inner,
        _ => value,
    }
}

/// A profile from a `users` map keyed by id (v1.1 profile or `{"data": v2 user}`).
fn profile_in_map(users: &Value, id: &str) -> Option<Profile> {
    users
        .get(id)
        .and_then(|v| object::<Profile>(unwrap_data(v)).ok())
}

/// A profile from `includes.users` (a list of v2 users, flat or wrapped in `data`).
fn profile_in_list(includes: &Value, id: &str) -> Option<Profile> {
    includes
        .get("users")?
        .as_array()?
        .iter()
        .filter_map(|v| object::<Profile>(unwrap_data(v)).ok())
        .find(|p| platform_id(p.id_str.as_deref()).or(p.id.id()) == Some(id))
}

fn media_attachment(media: &Media) -> Attachment {
    let kind = match media.kind.as_deref() {
        Some("photo") => AttachmentKind::Image,
        Some("video" | "animated_gif") => AttachmentKind::Video,
        None if media.video_info.is_some() => AttachmentKind::Video,
        None => AttachmentKind::Image,
        Some(_) => AttachmentKind::Unsupported,
    };
    let video = (kind == AttachmentKind::Video)
        .then(|| best_mp4(media.video_info.as_ref().map(|v| v.variants.as_slice())))
        .flatten();
    let still =
        non_empty(media.media_url_https.as_deref()).or(non_empty(media.media_url.as_deref()));
    Attachment {
        kind,
        content_type: video.as_ref().map(|_| "video/mp4".to_string()),
        url: video.or(still),
        object_ref: None,
        name: None,
        size: None,
        sha256: None,
        fetch_error: None,
    }
}

/// The type X names a DM attachment by: the media's type, else the attachment's.
fn attachment_type(attachment: &DmAttachment) -> String {
    attachment
        .media
        .as_ref()
        .and_then(|m| m.kind.clone())
        .or_else(|| attachment.kind.clone())
        .unwrap_or_default()
}

fn dm_attachment(attachment: &DmAttachment) -> Attachment {
    match &attachment.media {
        Some(media) => media_attachment(media),
        None => Attachment {
            kind: match attachment.kind.as_deref() {
                Some("location") => AttachmentKind::Location,
                _ => AttachmentKind::Unsupported,
            },
            url: None,
            object_ref: None,
            name: None,
            size: None,
            content_type: None,
            sha256: None,
            fetch_error: None,
        },
    }
}

/// The highest-bitrate MP4 of a video (the HLS playlist has no bitrate and is skipped).
fn best_mp4(variants: Option<&[VideoVariant]>) -> Option<String> {
    variants?
        .iter()
        .filter(|v| v.content_type.as_deref() == Some("video/mp4"))
        .filter_map(|v| {
            let url = non_empty(v.url.as_deref())?;
            let rate = v.bitrate.int().or(v.bit_rate.int()).unwrap_or(0);
            Some((rate, url))
        })
        .max_by_key(|(rate, _)| *rate)
        .map(|(_, url)| url)
}

fn v2_attachments(attachments: Option<&V2Attachments>, includes: &Value) -> Vec<Attachment> {
    let Some(keys) = attachments.map(|a| &a.media_keys) else {
        return Vec::new();
    };
    let media: Vec<V2Media> = includes
        .get("media")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|v| object::<V2Media>(v).ok())
                .collect()
        })
        .unwrap_or_default();
    keys.iter()
        .map(|key| {
            let found = media.iter().find(|m| m.media_key.as_deref() == Some(key));
            let kind = match found.and_then(|m| m.kind.as_deref()) {
                Some("photo") => AttachmentKind::Image,
                Some("video" | "animated_gif") => AttachmentKind::Video,
                _ => AttachmentKind::Unsupported,
            };
            let video = found.and_then(|m| best_mp4(Some(&m.variants)));
            let still = found.and_then(|m| {
                non_empty(m.url.as_deref()).or(non_empty(m.preview_image_url.as_deref()))
            });
            Attachment {
                kind,
                content_type: video.as_ref().map(|_| "video/mp4".to_string()),
                url: video.or(still),
                object_ref: None,
                name: None,
                size: None,
                sha256: None,
                fetch_error: None,
            }
        })
        .collect()
}

/// A v1.1 `created_at` (`Fri Nov 20 09:00:00 +0000 2026`).
fn classic_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(s.trim(), "%a %b %d %H:%M:%S %z %Y")
        .ok()
        .map(|t| t.to_utc())
}

/// A v2 `created_at` (RFC 3339).
fn rfc3339_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.to_utc())
}

/// Undoes X's HTML escaping of text in one pass (`&amp;lt;` becomes `&lt;`, not `<`).
/// Unknown or malformed entities are kept as they are.
fn unescape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos..];
        match decode_entity(rest) {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The character of the entity `s` starts with (`&…;`) and the entity's length in bytes.
fn decode_entity(s: &str) -> Option<(char, usize)> {
    // `;` is ASCII, so its byte position is a char boundary.
    let end = s.bytes().take(12).position(|b| b == b';')?;
    let name = &s[1..end];
    let c = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        _ => {
            let number = name.strip_prefix('#')?;
            let (digits, radix) = match number.strip_prefix(['x', 'X']) {
                Some(hex) => (hex, 16),
                None => (number, 10),
            };
            if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
                return None;
            }
            let code = u32::from_str_radix(digits, radix).ok()?;
            char::from_u32(code).filter(|c| *c != '\0')?
        }
    };
    Some((c, end + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Headers;
    use crossdesk_core::DeliveryStatus;

    const SECRET: &str = "test-consumer-secret";
    /// The sample account (`for_user_id`) of the invented-id fixtures.
    const ACCOUNT: &str = "3000000001";

    fn channel() -> TwitterChannel {
        TwitterChannel::new(SecretString::from(SECRET))
    }

    fn now() -> DateTime<Utc> {
        time("2026-11-20T10:00:00Z")
    }

    fn time(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/../../events/twitter/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    const JSON_FIXTURES: &[&str] = &[
        "aaa-unknown-event-type.json",
        "xaa-chat-received-unknown.json",
        "tweet-mention.json",
        "tweet-extended.json",
        "tweet-reply-own.json",
        "tweet-with-media.json",
        "tweet-with-video.json",
        "tweet-mention-reply-real.json",
        "tweet-retweet-ignored.json",
        "tweet-delete.json",
        "dm.json",
        "dm-outbound.json",
        "dm-with-media.json",
        "dm-html-escaped.json",
        "dm-real-capture.json",
        "dm-mark-read-ignored.json",
        "favorite-ignored.json",
        "user-event-revoke-ignored.json",
        "xaa-post-mention.json",
        "xaa-post-reply.json",
        "xaa-dm-received.json",
        "xaa-dm-sent.json",
        "xaa-like-ignored.json",
        "xaa-oauth-revoke-ignored.json",
    ];

    fn parse_body(body: &[u8]) -> Result<Vec<Message>, ParseError> {
        channel().parse(&VerifiedWebhook::new(body), now())
    }

    fn parse(name: &str) -> Vec<Message> {
        parse_body(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    #[test]
    fn a_body_that_is_not_utf8_is_refused_even_in_a_field_crossdesk_skips() {
        let mut body =
            br#"{"for_user_id":"3000000001","tweet_create_events":[],"note":"x"}"#.to_vec();
        let at = body.iter().position(|b| *b == b'x').unwrap();
        body[at] = 0xff;
        assert!(
            parse_body(&body).is_err(),
            "an invalid UTF-8 byte is refused"
        );
    }

    fn one(name: &str) -> Message {
        let mut messages = parse(name);
        assert_eq!(messages.len(), 1, "{name}: {messages:?}");
        messages.remove(0)
    }

    fn key(m: &Message) -> String {
        m.conversation
            .key(ChannelKind::Twitter)
            .unwrap()
            .as_str()
            .to_string()
    }

    fn verify(headers: &Headers, body: &[u8]) -> Result<(), VerifyError> {
        channel()
            .verify(&WebhookRequest { headers, body }, now())
            .map(|_| ())
    }

    fn signed(body: &[u8]) -> Headers {
        Headers::new([(SIGNATURE_HEADER, sign(SECRET, body))])
    }

    // ---- CRC ----

    // Computed independently with Python:
    // python3 -c 'import hmac,hashlib,base64; print(base64.b64encode(hmac.new(b"secret",
    //   b"challenge123", hashlib.sha256).digest()).decode())'
    #[test]
    fn crc_response_token_matches_an_independently_computed_hmac() {
        assert_eq!(
            crc_response_token("secret", "challenge123"),
            "sha256=VIWOZVShXk4pVi8Qa1I0bWq12QJUkx3RiD5R8NJYbR4="
        );
    }

    // Published vector: nyaruka/courier's Twitter handler test (`apiSecret`, `crc_token=test+token`),
    // re-computed with Python's hmac/base64.
    #[test]
    fn answers_the_crc_check_with_the_published_courier_vector() {
        let c = TwitterChannel::new(SecretString::from("apiSecret"));
        let reply = c.handshake(&Query::parse("crc_token=test+token")).unwrap();
        let body: Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(
            body["response_token"],
            "sha256=O5hJl2njQRIa4vsumZ+3oom9ECR5m3aQLRZkPoYelp0="
        );
    }

    #[test]
    fn answers_the_sample_crc_request_with_a_json_response_token() {
        // crc.txt: `GET /webhooks/twitter?crc_token=challenge123`, consumer secret "secret".
        let sample = String::from_utf8(fixture("crc.txt")).unwrap();
        let request_line = sample.lines().next().unwrap();
        let query = request_line.split_once('?').unwrap().1.trim();
        let c = TwitterChannel::new(SecretString::from("secret"));
        let reply = c.handshake(&Query::parse(query)).unwrap();
        assert_eq!(reply.content_type, "application/json");
        let body: Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "response_token": "sha256=VIWOZVShXk4pVi8Qa1I0bWq12QJUkx3RiD5R8NJYbR4="
            })
        );
    }

    #[test]
    fn refuses_a_crc_check_without_a_usable_token() {
        let long = format!("crc_token={}", "a".repeat(MAX_CRC_TOKEN_BYTES + 1));
        for query in ["", "crc_token=", "token=abc", long.as_str()] {
            assert!(
                matches!(
                    channel().handshake(&Query::parse(query)),
                    Err(HandshakeError::BadRequest(_))
                ),
                "{query}"
            );
        }
        let longest = format!("crc_token={}", "a".repeat(MAX_CRC_TOKEN_BYTES));
        assert!(channel().handshake(&Query::parse(&longest)).is_ok());
    }

    // ---- signature ----

    // Computed independently with Python over the bytes of events/twitter/dm.json:
    // base64.b64encode(hmac.new(b"test-consumer-secret", body, hashlib.sha256).digest())
    #[test]
    fn signs_like_an_independent_hmac_implementation() {
        assert_eq!(
            sign(SECRET, &fixture("dm.json")),
            "sha256=jsDQd91pq1vZ3kl+LHgBgzJVI98m52W0OvDqCoVeG3c="
        );
    }

    #[test]
    fn accepts_a_correctly_signed_request() {
        for name in JSON_FIXTURES {
            let body = fixture(name);
            assert_eq!(verify(&signed(&body), &body), Ok(()), "{name}");
        }
        // X sends the header as `X-Twitter-Webhooks-Signature`.
        let body = fixture("dm.json");
        let headers = Headers::new([("X-Twitter-Webhooks-Signature", sign(SECRET, &body))]);
        assert_eq!(verify(&headers, &body), Ok(()));
    }

    #[test]
    fn rejects_signature_over_modified_body() {
        let body = fixture("tweet-mention.json");
        let headers = signed(&body);
        let forged = String::from_utf8(body)
            .unwrap()
            .replace("wrong address", "right address");
        assert_eq!(
            verify(&headers, forged.as_bytes()),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn rejects_signature_made_with_another_secret() {
        let body = fixture("dm.json");
        let headers = Headers::new([(SIGNATURE_HEADER, sign("another-secret", &body))]);
        assert_eq!(verify(&headers, &body), Err(VerifyError::BadSignature));
    }

    #[test]
    fn rejects_a_request_without_signature_header() {
        let body = fixture("dm.json");
        assert_eq!(
            verify(&Headers::default(), &body),
            Err(VerifyError::MissingHeader("x-twitter-webhooks-signature"))
        );
        let other = Headers::new([("x-hub-signature-256", sign(SECRET, &body))]);
        assert_eq!(
            verify(&other, &body),
            Err(VerifyError::MissingHeader("x-twitter-webhooks-signature"))
        );
    }

    #[test]
    fn rejects_malformed_signature_headers() {
        let body = fixture("dm.json");
        let good = sign(SECRET, &body);
        let bare = good.trim_start_matches("sha256=").to_string();
        let hex = signature::hmac_sha256_hex(SECRET.as_bytes(), &[&body]);
        for bad in [
            String::new(),
            "sha256=".into(),
            bare.clone(),
            format!("sha1={bare}"),
            format!("SHA256 {bare}"),
            "sha256=not base64!".into(),
            "sha256=AAAA".into(),
            format!("sha256={hex}"),
            format!("sha256={bare}{bare}"),
        ] {
            let headers = Headers::new([(SIGNATURE_HEADER, bad.clone())]);
            assert!(
                matches!(
                    verify(&headers, &body),
                    Err(VerifyError::MalformedHeader { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn reads_the_signature_header_of_a_real_capture() {
        // A real delivery logged by RapidPro; its body was edited afterwards and the consumer
        // secret is unknown, so the signature is only well-formed, not verifiable.
        let capture = String::from_utf8(fixture("dm-real-capture.http.txt")).unwrap();
        let (head, body) = capture.split_once("\r\n\r\n").unwrap();
        let headers = Headers::new(head.lines().skip(1).filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            Some((name.trim().to_string(), value.trim().to_string()))
        }));
        assert_eq!(
            headers.get(SIGNATURE_HEADER),
            Some("sha256=CYVI5q7e7bzKufCD3GnZoJheSmjVRmNQo9uzO/gi4tA=")
        );
        assert_eq!(body.as_bytes(), fixture("dm-real-capture.json").as_slice());
        assert_eq!(
            verify(&headers, body.as_bytes()),
            Err(VerifyError::BadSignature)
        );
    }

    // ---- malformed bodies ----

    #[test]
    fn rejects_malformed_json() {
        for bad in [
            b"".as_slice(),
            b"not json",
            b"{\"for_user_id\":\"1\",",
            b"{\"for_user_id\":\"1\"} trailing",
            b"{'for_user_id':'1'}",
        ] {
            assert!(
                matches!(parse_body(bad), Err(ParseError::Json(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn rejects_bodies_that_are_not_json_objects() {
        for bad in ["[]", "[{}]", "null", "42", "\"text\"", "true"] {
            assert!(parse_body(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn rejects_truncated_bodies() {
        for name in JSON_FIXTURES {
            let body = fixture(name);
            let trimmed = body.trim_ascii_end();
            for cut in [1, 2, trimmed.len() / 2, trimmed.len() - 1] {
                assert!(parse_body(&trimmed[..cut]).is_err(), "{name} cut at {cut}");
            }
        }
    }

    #[test]
    fn rejects_envelopes_of_the_wrong_shape() {
        for bad in [
            r#"{"for_user_id":"1","tweet_create_events":{"id_str":"2"}}"#,
            r#"{"for_user_id":"1","direct_message_events":"hello"}"#,
            r#"{"data":"post.mention.create"}"#,
            r#"{"data":[]}"#,
        ] {
            assert!(parse_body(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn rejects_message_events_without_the_subscribed_account() {
        let body = br#"{"direct_message_events":[{"type":"message_create","id":"1","message_create":{"sender_id":"2","target":{"recipient_id":"3"},"message_data":{"text":"hi"}}}]}"#;
        assert!(matches!(parse_body(body), Err(ParseError::Invalid(_))));
    }

    // ---- Account Activity: tweets ----

    #[test]
    fn parses_a_mention_into_an_inbound_public_tweet() {
        let m = one("tweet-mention.json");
        assert_eq!(m.channel, ChannelKind::Twitter);
        assert_eq!(m.direction, Direction::Inbound);
        assert_eq!(m.event, MessageEvent::Created);
        assert_eq!(m.visibility, Visibility::Public);
        assert_eq!(
            m.platform_message_id.as_deref(),
            Some("1859000000000000100")
        );
        assert_eq!(key(&m), "twitter:tweets:1859000000000000100:4000000002");
        assert_eq!(m.author.platform_id, "4000000002");
        assert_eq!(m.author.name.as_deref(), Some("Alex Example"));
        assert_eq!(m.author.handle.as_deref(), Some("alex_example"));
        assert_eq!(m.text, "@sample_support my invoice shows the wrong address");
        assert!(m.attachments.is_empty());
        assert!(m.replies_to.is_empty());
        assert_eq!(m.sent_at, time("2026-11-20T09:00:00Z"));
        assert_eq!(m.received_at, now());
        assert_eq!(m.raw, Some(RawRef::of(&fixture("tweet-mention.json"))));
    }

    #[test]
    fn takes_the_full_text_of_a_truncated_tweet() {
        let m = one("tweet-extended.json");
        assert!(m
            .text
            .starts_with("@sample_support I have tried three times"));
        assert!(m.text.ends_with("Can someone look at my account please?"));
        assert!(!m.text.contains('…'));
        assert_eq!(m.direction, Direction::Inbound);
        assert_eq!(
            m.platform_message_id.as_deref(),
            Some("1859000000000000101")
        );
        assert_eq!(key(&m), "twitter:tweets:1859000000000000101:4000000003");
        assert_eq!(m.author.handle.as_deref(), Some("bo_beispiel"));
        assert_eq!(m.author.name.as_deref(), Some("Bo Beispiel"));
        assert!(m.replies_to.is_empty());
        assert_eq!(m.sent_at, time("2026-11-20T09:05:00Z"));
    }

    #[test]
    fn parses_the_accounts_own_reply_as_outbound_to_the_customer() {
        let m = one("tweet-reply-own.json");
        assert_eq!(m.direction, Direction::Outbound);
        assert_eq!(
            m.platform_message_id.as_deref(),
            Some("1859000000000000110")
        );
        assert_eq!(m.author.platform_id, ACCOUNT);
        assert_eq!(m.author.handle.as_deref(), Some("sample_support"));
        // Same conversation as the customer's mention it answers.
        assert_eq!(key(&m), key(&one("tweet-mention.json")));
        assert_eq!(m.conversation.customer_id(), Some("4000000002"));
        assert_eq!(m.replies_to, vec!["1859000000000000100".to_string()]);
        assert_eq!(
            m.text,
            "@alex_example Sorry about that & thanks for telling us <3 Please send us a DM with your order number."
        );
        assert_eq!(m.sent_at, time("2026-11-20T09:03:20Z"));
    }

    #[test]
    fn collects_every_photo_of_a_tweet() {
        let m = one("tweet-with-media.json");
        assert_eq!(m.direction, Direction::Inbound);
        assert_eq!(
            m.platform_message_id.as_deref(),
            Some("1859000000000000120")
        );
        assert_eq!(key(&m), "twitter:tweets:1859000000000000120:4000000002");
        assert_eq!(
            m.text,
            "@sample_support the parcel arrived like this https://t.co/AbCdEf1234"
        );
        let urls: Vec<_> = m.attachments.iter().map(|a| a.url.as_deref()).collect();
        assert_eq!(
            urls,
            [
                Some("https://pbs.twimg.com/media/FsAmple0001.jpg"),
                Some("https://pbs.twimg.com/media/FsAmple0002.jpg")
            ]
        );
        assert!(m
            .attachments
            .iter()
            .all(|a| a.kind == AttachmentKind::Image));
        assert_eq!(m.sent_at, time("2026-11-20T09:20:00Z"));
    }

    #[test]
    fn takes_the_best_mp4_of_a_video_and_threads_the_reply() {
        let m = one("tweet-with-video.json");
        assert_eq!(m.attachments.len(), 1);
        let video = &m.attachments[0];
        assert_eq!(video.kind, AttachmentKind::Video);
        assert_eq!(
            video.url.as_deref(),
            Some("https://video.twimg.com/ext_tw_video/1859000000000000131/pu/vid/720x1280/SaMpLe.mp4?tag=12")
        );
        assert_eq!(video.content_type.as_deref(), Some("video/mp4"));
        assert_eq!(m.replies_to, vec!["1859000000000000110".to_string()]);
        assert_eq!(key(&m), "twitter:tweets:1859000000000000110:4000000002");
    }

    #[test]
    fn parses_a_real_mention_that_is_also_a_reply() {
        let m = one("tweet-mention-reply-real.json");
        assert_eq!(m.direction, Direction::Inbound);
        assert_eq!(
            m.platform_message_id.as_deref(),
            Some("1332557345071644672")
        );
        assert_eq!(m.author.platform_id, "1247048165561270272");
        assert_eq!(m.author.handle.as_deref(), Some("TanuLearns"));
        assert_eq!(m.replies_to, vec!["1332252354599555074".to_string()]);
        assert_eq!(
            key(&m),
            "twitter:tweets:1332252354599555074:1247048165561270272"
        );
        assert_eq!(m.text, "@Learn_Awesome Save this");
        assert_eq!(m.sent_at, time("2020-11-28T05:30:03.440Z"));
    }

    #[test]
    fn keeps_ids_above_2_pow_53_exact() {
        // 1332557345071644672 > 2^53: read as f64 it would become 1332557345071644700.
        let m = one("tweet-mention-reply-real.json");
        assert_eq!(
            m.platform_message_id.as_deref(),
            Some("1332557345071644672")
        );
        assert_eq!(m.author.platform_id, "1247048165561270272");
        // The numeric `id` fields are never read, even when no number type could hold them.
        let body = br#"{"for_user_id":"3000000001","tweet_create_events":[{"id":123456789012345678901234567890,"id_str":"1859000000000000199","text":"hi","user":{"id":1e300,"id_str":"9007199254740993","screen_name":"big"},"in_reply_to_status_id":9007199254740993.5,"in_reply_to_status_id_str":null}]}"#;
        let messages = parse_body(body).unwrap();
        assert_eq!(messages.len(), 1);
        assert_eq!(
            messages[0].platform_message_id.as_deref(),
            Some("1859000000000000199")
        );
        assert_eq!(messages[0].author.platform_id, "9007199254740993");
        // A numeric id where only a number is given is read exactly as an integer.
        let body = br#"{"for_user_id":"3000000001","tweet_create_events":[{"id_str":"2","text":"hi","conversation_id":18446744073709551615,"user":{"id_str":"9007199254740993"}}]}"#;
        let m = &parse_body(body).unwrap()[0];
        assert_eq!(
            key(m),
            "twitter:tweets:18446744073709551615:9007199254740993"
        );
    }

    #[test]
    fn skips_the_accounts_own_broadcast_tweet() {
        let body = br#"{"for_user_id":"3000000001","tweet_create_events":[{"id_str":"1859000000000000300","text":"We are here to help!","user":{"id_str":"3000000001","screen_name":"sample_support"},"in_reply_to_user_id_str":null,"timestamp_ms":"1795165000000"}]}"#;
        assert_eq!(parse_body(body), Ok(Vec::new()));
        let to_itself = br#"{"for_user_id":"3000000001","tweet_create_events":[{"id_str":"1859000000000000301","text":"2/2","user":{"id_str":"3000000001"},"in_reply_to_status_id_str":"1859000000000000300","in_reply_to_user_id_str":"3000000001"}]}"#;
        assert_eq!(parse_body(to_itself), Ok(Vec::new()));
    }

    #[test]
    fn falls_back_to_created_at_and_accepts_numeric_timestamps() {
        let numeric = br#"{"for_user_id":"1","tweet_create_events":[{"id_str":"5","text":"a","user":{"id_str":"2"},"timestamp_ms":1795165200000}]}"#;
        assert_eq!(
            parse_body(numeric).unwrap()[0].sent_at,
            time("2026-11-20T09:00:00Z")
        );
        let classic = br#"{"for_user_id":"1","tweet_create_events":[{"id_str":"5","text":"a","user":{"id_str":"2"},"created_at":"Fri Nov 20 09:00:00 +0000 2026"}]}"#;
        assert_eq!(
            parse_body(classic).unwrap()[0].sent_at,
            time("2026-11-20T09:00:00Z")
        );
        let neither = br#"{"for_user_id":"1","tweet_create_events":[{"id_str":"5","text":"a","user":{"id_str":"2"},"created_at":"yesterday","timestamp_ms":"soon"}]}"#;
        assert_eq!(parse_body(neither).unwrap()[0].sent_at, now());
    }

    #[test]
    fn prefers_conversation_id_for_the_thread() {
        let body = br#"{"for_user_id":"1","tweet_create_events":[{"id_str":"30","text":"a","user":{"id_str":"2"},"conversation_id_str":"10","in_reply_to_status_id_str":"20"}]}"#;
        let m = &parse_body(body).unwrap()[0];
        assert_eq!(key(m), "twitter:tweets:10:2");
        assert_eq!(m.replies_to, vec!["20".to_string()]);
    }

    #[test]
    fn ignores_retweets() {
        assert_eq!(parse("tweet-retweet-ignored.json"), Vec::new());
    }

    #[test]
    fn turns_a_tweet_delete_into_a_removal() {
        let m = one("tweet-delete.json");
        assert_eq!(m.event, MessageEvent::Removed);
        assert_eq!(
            m.platform_message_id.as_deref(),
            Some("1045405559317569537")
        );
        assert_eq!(m.author.platform_id, "930524282358325248");
        // The account deleted its own tweet.
        assert_eq!(m.direction, Direction::Outbound);
        assert_eq!(
            key(&m),
            "twitter:tweets:1045405559317569537:930524282358325248"
        );
        assert_eq!(m.text, "");
        assert_eq!(m.sent_at, time("2015-05-21T17:09:15.593Z"));
    }

    // ---- Account Activity: direct messages ----

    #[test]
    fn parses_a_dm_into_an_inbound_private_message() {
        let m = one("dm.json");
        assert_eq!(m.direction, Direction::Inbound);
        assert_eq!(m.visibility, Visibility::Private);
        assert_eq!(
            m.platform_message_id.as_deref(),
            Some("1859000000000000200")
        );
        assert_eq!(key(&m), "twitter:dm:3000000001:4000000002");
        assert_eq!(m.author.platform_id, "4000000002");
        assert_eq!(m.author.name.as_deref(), Some("Alex Example"));
        assert_eq!(m.author.handle.as_deref(), Some("alex_example"));
        assert_eq!(m.text, "Here is my order number: A-1234");
        assert!(m.attachments.is_empty());
        assert!(m.replies_to.is_empty());
        assert_eq!(m.sent_at, time("2026-11-20T09:10:00Z"));
    }

    #[test]
    fn parses_the_accounts_own_dm_as_outbound_in_the_same_conversation() {
        let m = one("dm-outbound.json");
        assert_eq!(m.direction, Direction::Outbound);
        assert_eq!(
            m.platform_message_id.as_deref(),
            Some("1859000000000000210")
        );
        assert_eq!(key(&m), key(&one("dm.json")));
        assert_eq!(m.author.platform_id, ACCOUNT);
        assert_eq!(m.author.handle.as_deref(), Some("sample_support"));
        assert_eq!(
            m.text,
            "Thanks Alex! Order A-1234 now ships to the new address & the invoice is fixed -> check your email."
        );
        assert_eq!(m.sent_at, time("2026-11-20T09:15:00Z"));
    }

    #[test]
    fn unescapes_dm_text() {
        let m = one("dm-html-escaped.json");
        assert_eq!(m.text, "Hello World & good wishes.");
        assert_eq!(m.author.handle.as_deref(), Some("nicpottier"));
        assert_eq!(m.author.name.as_deref(), Some("Nicolas Pottier"));
        assert_eq!(key(&m), "twitter:dm:835740314006511618:272953809");
        assert_eq!(m.sent_at, time("2018-01-31T00:43:49.301Z"));
    }

    #[test]
    fn attaches_dm_media() {
        let m = one("dm-with-media.json");
        assert_eq!(m.text, "Hello");
        assert_eq!(m.direction, Direction::Inbound);
        assert_eq!(m.attachments.len(), 1);
        assert_eq!(m.attachments[0].kind, AttachmentKind::Image);
        assert_eq!(
            m.attachments[0].url.as_deref(),
            Some("https://image.foo.com/image.jpg")
        );
    }

    #[test]
    fn parses_a_real_dm_delivery() {
        let m = one("dm-real-capture.json");
        assert_eq!(m.direction, Direction::Inbound);
        assert_eq!(
            m.platform_message_id.as_deref(),
            Some("1140928844112814089")
        );
        assert_eq!(key(&m), "twitter:dm:3753944237:767659860");
        assert_eq!(m.author.name.as_deref(), Some("Aaron Tumukunde"));
        assert_eq!(m.author.handle.as_deref(), Some("tumaaron"));
        assert_eq!(
            m.text,
            "Briefly what will you be talking about and do you have any feature stories"
        );
        assert_eq!(m.sent_at, time("2019-06-18T10:26:48.526Z"));
    }

    // ---- X Activity API ----

    #[test]
    fn parses_an_activity_mention_into_an_inbound_post() {
        let m = one("xaa-post-mention.json");
        assert_eq!(m.direction, Direction::Inbound);
        assert_eq!(m.visibility, Visibility::Public);
        assert_eq!(
            m.platform_message_id.as_deref(),
            Some("2080765813578191303")
        );
        assert_eq!(
            key(&m),
            "twitter:tweets:2080765813578191303:2222222222222222222"
        );
        assert_eq!(m.author.platform_id, "2222222222222222222");
        assert_eq!(m.author.name.as_deref(), Some("OtherUser"));
        assert_eq!(m.author.handle.as_deref(), Some("OtherUser"));
        assert_eq!(m.text, "hey @ExampleUser");
        assert!(m.replies_to.is_empty());
        assert_eq!(m.sent_at, time("2026-07-24T21:23:23Z"));
    }

    #[test]
    fn parses_an_activity_reply_with_its_conversation_and_parent() {
        let m = one("xaa-post-reply.json");
        assert_eq!(m.direction, Direction::Inbound);
        assert_eq!(
            m.platform_message_id.as_deref(),
            Some("2090000000000000001")
        );
        assert_eq!(
            key(&m),
            "twitter:tweets:2080761390344937796:2222222222222222222"
        );
        assert_eq!(m.replies_to, vec!["2080761390344937796".to_string()]);
        assert_eq!(m.text, "@ExampleUser Great post — thanks for sharing!");
        // `includes` is empty: no name or handle to show.
        assert_eq!(m.author.name, None);
        assert_eq!(m.sent_at, time("2026-08-12T18:00:00Z"));
    }

    #[test]
    fn parses_an_activity_dm_received() {
        let m = one("xaa-dm-received.json");
        assert_eq!(m.direction, Direction::Inbound);
        assert_eq!(m.visibility, Visibility::Private);
        assert_eq!(
            m.platform_message_id.as_deref(),
            Some("2080765901528535096")
        );
        assert_eq!(
            key(&m),
            "twitter:dm:1111111111111111111:2222222222222222222"
        );
        assert_eq!(m.author.platform_id, "2222222222222222222");
        assert_eq!(m.author.name.as_deref(), Some("OtherUser"));
        assert_eq!(m.author.handle.as_deref(), Some("OtherUser"));
        assert_eq!(m.text, "hello!");
        assert_eq!(m.sent_at, time("2026-07-24T21:23:44.372Z"));
    }

    #[test]
    fn parses_an_activity_dm_sent_as_outbound() {
        let m = one("xaa-dm-sent.json");
        assert_eq!(m.direction, Direction::Outbound);
        assert_eq!(
            m.platform_message_id.as_deref(),
            Some("2080763914820927863")
        );
        assert_eq!(key(&m), "twitter:dm:1111111111111111111:2244994945");
        assert_eq!(m.author.handle.as_deref(), Some("ExampleUser"));
        assert_eq!(m.text, "Thanks for the update!");
    }

    #[test]
    fn dedupes_the_same_dm_across_both_envelopes() {
        // The same DM delivered as Account Activity and as X Activity keeps one platform id
        // and one conversation.
        let aaa = br#"{"for_user_id":"1111111111111111111","direct_message_events":[{"type":"message_create","id":"2080765901528535096","created_timestamp":"1784928224372","message_create":{"target":{"recipient_id":"1111111111111111111"},"sender_id":"2222222222222222222","message_data":{"text":"hello!"}}}]}"#;
        let a = &parse_body(aaa).unwrap()[0];
        let x = one("xaa-dm-received.json");
        assert_eq!(a.dedup_key(), x.dedup_key());
        assert_eq!(key(a), key(&x));
        assert_eq!(a.sent_at, x.sent_at);
    }

    #[test]
    fn reads_the_v2_dm_event_shape_and_its_media() {
        let body = br#"{"data":{"event_uuid":"1","event_type":"dm.received","filter":{"user_id":"100"},"payload":{"event_type":"MessageCreate","id":"900","text":"photo &amp; text","sender_id":"200","dm_conversation_id":"100-200","participant_ids":["100","200"],"created_at":"2026-11-20T09:00:00.000Z","attachments":{"media_keys":["3_1"]}},"includes":{"users":[{"id":"200","name":"Customer","username":"customer"}],"media":[{"media_key":"3_1","type":"photo","url":"https://pbs.twimg.com/media/x.jpg"}]}}}"#;
        let m = &parse_body(body).unwrap()[0];
        assert_eq!(m.direction, Direction::Inbound);
        assert_eq!(m.platform_message_id.as_deref(), Some("900"));
        assert_eq!(key(m), "twitter:dm:100:200");
        assert_eq!(m.text, "photo & text");
        assert_eq!(m.author.handle.as_deref(), Some("customer"));
        assert_eq!(m.attachments[0].kind, AttachmentKind::Image);
        assert_eq!(
            m.attachments[0].url.as_deref(),
            Some("https://pbs.twimg.com/media/x.jpg")
        );
        assert_eq!(m.sent_at, time("2026-11-20T09:00:00Z"));
        let sent = br#"{"data":{"event_type":"dm.sent","filter":{"user_id":"100"},"payload":{"id":"901","text":"hi","sender_id":"100","participant_ids":["100","200"]}}}"#;
        let m = &parse_body(sent).unwrap()[0];
        assert_eq!(m.direction, Direction::Outbound);
        assert_eq!(key(m), "twitter:dm:100:200");
    }

    #[test]
    fn treats_the_accounts_own_activity_post_as_outbound_and_skips_broadcasts() {
        let reply = br#"{"data":{"event_type":"post.create","filter":{"user_id":"100"},"payload":{"id":"31","text":"@customer on it!","author_id":"100","conversation_id":"10","in_reply_to_user_id":"200","referenced_tweets":[{"type":"replied_to","id":"30"}],"note_tweet":{"text":"@customer on it &lt;3"}}}}"#;
        let m = &parse_body(reply).unwrap()[0];
        assert_eq!(m.direction, Direction::Outbound);
        assert_eq!(key(m), "twitter:tweets:10:200");
        assert_eq!(m.replies_to, vec!["30".to_string()]);
        assert_eq!(m.text, "@customer on it <3");
        let broadcast = br#"{"data":{"event_type":"post.create","filter":{"user_id":"100"},"payload":{"id":"32","text":"News!","author_id":"100","conversation_id":"32"}}}"#;
        assert_eq!(parse_body(broadcast), Ok(Vec::new()));
    }

    #[test]
    fn turns_an_activity_post_delete_into_a_removal() {
        let body = br#"{"data":{"event_uuid":"-2781149976877970683","filter":{"user_id":"1111111111111111111"},"event_type":"post.delete","payload":{"id":"2080761269309813134","author_id":"1111111111111111111"}}}"#;
        let m = &parse_body(body).unwrap()[0];
        assert_eq!(m.event, MessageEvent::Removed);
        assert_eq!(
            m.platform_message_id.as_deref(),
            Some("2080761269309813134")
        );
        assert_eq!(m.direction, Direction::Outbound);
    }

    #[test]
    fn the_same_post_has_the_same_platform_id_in_both_envelopes() {
        let x = one("xaa-post-mention.json");
        let aaa = br#"{"for_user_id":"1111111111111111111","tweet_create_events":[{"id_str":"2080765813578191303","text":"hey @ExampleUser","user":{"id_str":"2222222222222222222","name":"OtherUser","screen_name":"OtherUser"},"timestamp_ms":"1784928203000"}]}"#;
        let a = &parse_body(aaa).unwrap()[0];
        assert_eq!(a.dedup_key(), x.dedup_key());
        assert_eq!(key(a), key(&x));
    }

    // ---- ignored events ----

    #[test]
    fn ignores_events_that_carry_no_message() {
        for name in [
            "favorite-ignored.json",
            "dm-mark-read-ignored.json",
            "user-event-revoke-ignored.json",
            "tweet-retweet-ignored.json",
            "xaa-like-ignored.json",
            "xaa-oauth-revoke-ignored.json",
        ] {
            assert_eq!(parse(name), Vec::new(), "{name}");
        }
        for body in [
            r#"{}"#,
            r#"{"for_user_id":"1","follow_events":[{"type":"follow"}]}"#,
            r#"{"for_user_id":"1","block_events":[{}],"mute_events":[{}]}"#,
            r#"{"for_user_id":"1","direct_message_indicate_typing_events":[{"created_timestamp":"1","sender_id":"2","target":{"recipient_id":"1"}}]}"#,
            r#"{"for_user_id":"1","user_has_blocked":true,"favorite_events":[]}"#,
            r#"{"for_user_id":"1","user_has_blocked":"false","something_new":{"a":[1,2]}}"#,
            r#"{"for_user_id":"1","tweet_create_events":[],"direct_message_events":null}"#,
            r#"{"for_user_id":"1","direct_message_events":[{"type":"message_delete","id":"5"}]}"#,
            r#"{"data":{"event_type":"profile.update.bio","filter":{"user_id":"1"},"payload":{"before":"a","after":"b"}}}"#,
            r#"{"data":{"event_type":"follow.follow","filter":{"user_id":"1"},"payload":{}}}"#,
            r#"{"data":{"event_type":"dm.read","filter":{"user_id":"1"},"payload":{"sender_id":"2"}}}"#,
            r#"{"data":null}"#,
        ] {
            assert_eq!(parse_body(body.as_bytes()), Ok(Vec::new()), "{body}");
        }
    }

    // ---- echoes and unknown events ----

    #[test]
    fn marks_the_accounts_own_tweets_and_dms_as_sent_outside_crossdesk() {
        for name in [
            "tweet-reply-own.json",
            "dm-outbound.json",
            "xaa-dm-sent.json",
        ] {
            let m = one(name);
            assert_eq!(m.direction, Direction::Outbound, "{name}");
            let delivery = m.delivery.as_ref().expect("a delivery record");
            assert_eq!(
                delivery.status,
                DeliveryStatus::SentOutsideCrossdesk,
                "{name}"
            );
            assert_eq!(delivery.platform_id, m.platform_message_id, "{name}");
            assert_eq!(delivery.attempts, 0, "{name}");
        }
        // A customer's message is not the account's.
        assert_eq!(one("dm.json").delivery, None);
    }

    #[test]
    fn stores_an_unknown_activity_event_with_a_placeholder_in_its_conversation() {
        let m = one("xaa-chat-received-unknown.json");
        assert_eq!(m.text, "unsupported message type: chat.received");
        assert_eq!(m.direction, Direction::Inbound);
        assert_eq!(m.visibility, Visibility::Private);
        assert_eq!(key(&m), format!("twitter:dm:{ACCOUNT}:4000000002"));
        assert_eq!(m.author.platform_id, "4000000002");
        assert_eq!(
            m.platform_message_id.as_deref(),
            Some("chat.received:1859000000000000300")
        );
        assert_eq!(
            m.raw,
            Some(RawRef::of(&fixture("xaa-chat-received-unknown.json")))
        );
        // Delivered again: the same platform id, so the writer stores it once.
        assert_eq!(
            one("xaa-chat-received-unknown.json").dedup_key(),
            m.dedup_key()
        );
        // A post-like payload lands in the post's thread.
        let quote = br#"{"data":{"event_uuid":"9","event_type":"post.quote.create","filter":{"user_id":"1"},"payload":{"id":"77","author_id":"2","conversation_id":"70","text":"look"}}}"#;
        let m = &parse_body(quote).unwrap()[0];
        assert_eq!(m.text, "unsupported message type: post.quote.create");
        assert_eq!(key(m), "twitter:tweets:70:2");
        assert_eq!(m.visibility, Visibility::Public);
    }

    #[test]
    fn skips_unknown_events_that_name_no_conversation_and_keeps_the_rest() {
        let messages = parse("aaa-unknown-event-type.json");
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert_eq!(messages[0].text, "Here is my order number: A-1234");
        for body in [
            // An unknown type whose payload names nobody, and the account's own unknown event.
            r#"{"data":{"event_type":"post.pin","filter":{"user_id":"1"},"payload":{"id":"5"}}}"#,
            r#"{"data":{"event_type":"chat.sent","filter":{"user_id":"1"},"payload":{"id":"5","sender_id":"1"}}}"#,
            r#"{"data":{"event_type":"chat.received","filter":{"user_id":"1"},"payload":{"sender_id":"2"}}}"#,
            r#"{"for_user_id":"1","direct_message_events":[{"type":"message_reaction_create","id":"5"}]}"#,
        ] {
            assert_eq!(parse_body(body.as_bytes()), Ok(Vec::new()), "{body}");
        }
    }

    #[test]
    fn names_an_unknown_dm_event_type_or_attachment_in_the_text() {
        let body = br#"{"for_user_id":"1","direct_message_events":[
            {"type":"message_reaction_create","id":"5","created_timestamp":"1795165800000","message_create":{"sender_id":"2","target":{"recipient_id":"1"},"message_data":{"text":"ignored"}}},
            {"type":"message_create","id":"6","message_create":{"sender_id":"2","target":{"recipient_id":"1"},"message_data":{"text":"","attachment":{"type":"voice_note","media":{"type":"audio_clip","media_url_https":"https://ton.twimg.com/v.m4a"}}}}},
            {"type":"message_create","id":"7","message_create":{"sender_id":"2","target":{"recipient_id":"1"},"message_data":{"text":"see","attachment":{"type":"poll"}}}}]}"#;
        let messages = parse_body(body).unwrap();
        let texts: Vec<&str> = messages.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "unsupported message type: message_reaction_create",
                "unsupported message type: audio_clip",
                "see"
            ]
        );
        assert_eq!(messages[1].attachments[0].kind, AttachmentKind::Unsupported);
        assert_eq!(messages[2].attachments[0].kind, AttachmentKind::Unsupported);
        assert!(messages.iter().all(|m| key(m) == "twitter:dm:1:2"));
        let v2 = br#"{"data":{"event_type":"dm.received","filter":{"user_id":"1"},"payload":{"event_type":"MessageReactionCreate","id":"8","sender_id":"2","participant_ids":["1","2"]}}}"#;
        assert_eq!(
            parse_body(v2).unwrap()[0].text,
            "unsupported message type: MessageReactionCreate"
        );
        let join = br#"{"data":{"event_type":"dm.received","filter":{"user_id":"1"},"payload":{"event_type":"ParticipantsJoin","id":"9","sender_id":"2","participant_ids":["1","2"]}}}"#;
        assert_eq!(parse_body(join), Ok(Vec::new()));
    }

    #[test]
    fn accepts_user_has_blocked_as_string_or_boolean() {
        // tweet-with-media.json carries "false" (as X documents it), the real capture `false`.
        assert_eq!(parse("tweet-with-media.json").len(), 1);
        assert_eq!(parse("tweet-mention-reply-real.json").len(), 1);
    }

    #[test]
    fn skips_unreadable_events_and_keeps_the_rest_of_the_batch() {
        let body = br#"{"for_user_id":"1","tweet_create_events":[{"text":"no id"},{"id_str":"7","text":"ok","user":{"id_str":"2"}},{"id_str":"8","text":5,"user":{"id_str":"2"}},{"id_str":"9","text":"x","user":{"id_str":"not a number"}},"a string",null]}"#;
        let messages = parse_body(body).unwrap();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].platform_message_id.as_deref(), Some("7"));
    }

    // ---- robustness ----

    #[test]
    fn tolerates_nulls_and_odd_numbers_in_optional_fields() {
        let body = br#"{"for_user_id":"1","tweet_create_events":[{"id_str":"5","text":"a","user":{"id_str":"2","name":null},"entities":{"media":null},"extended_entities":{"media":[{"type":"animated_gif","media_url_https":"https://pbs.twimg.com/tweet_video_thumb/g.jpg","video_info":{"variants":[{"bitrate":-1,"content_type":"video/mp4","url":"https://video.twimg.com/tweet_video/g.mp4"},{"content_type":"video/mp4","url":"https://video.twimg.com/tweet_video/h.mp4","bitrate":"0"}]}}]},"geo":null,"place":null}]}"#;
        let m = &parse_body(body).unwrap()[0];
        assert_eq!(m.author.name, None);
        assert_eq!(m.attachments.len(), 1);
        assert_eq!(m.attachments[0].kind, AttachmentKind::Video);
        assert_eq!(
            m.attachments[0].url.as_deref(),
            Some("https://video.twimg.com/tweet_video/h.mp4")
        );
        let post = br#"{"data":{"event_type":"post.mention.create","filter":{"user_id":"1"},"payload":{"id":"5","text":"a","author_id":"2","referenced_tweets":null,"attachments":{"media_keys":null}},"includes":{"users":null}}}"#;
        let m = &parse_body(post).unwrap()[0];
        assert!(m.replies_to.is_empty() && m.attachments.is_empty());
    }

    #[test]
    fn unescapes_html_entities_in_one_pass() {
        assert_eq!(
            unescape_html("a &amp; b &lt;c&gt; &quot;d&quot; &#39;e&#x27; &apos;"),
            "a & b <c> \"d\" 'e' '"
        );
        assert_eq!(unescape_html("&amp;lt;"), "&lt;");
        for kept in [
            "&",
            "a & b",
            "&;",
            "&#;",
            "&#x;",
            "&#0;",
            "&#xD800;",
            "&#99999999999;",
            "&nbsp;",
            "&amp",
            "&#+39;",
            "tail &",
        ] {
            assert_eq!(unescape_html(kept), kept, "{kept}");
        }
        assert_eq!(unescape_html("ü &amp; 😀&gt;"), "ü & 😀>");
    }

    #[test]
    fn never_panics_on_garbage_or_edge_bodies() {
        let mut bodies: Vec<Vec<u8>> = [
            "", " ", "{", "}", "[", "\"", "\\", "\0", "{}", "{\"data\":{}}",
            "{\"data\":{\"event_type\":\"dm.received\"}}",
            "{\"data\":{\"event_type\":\"dm.received\",\"filter\":{\"user_id\":\"1\"},\"payload\":[]}}",
            "{\"data\":{\"event_type\":\"dm.sent\",\"filter\":{\"user_id\":\"1\"},\"payload\":{\"direct_message_events\":[{\"message_create\":{\"sender_id\":\"1\"}}]}}}",
            "{\"data\":{\"event_type\":\"post.mention.create\",\"filter\":{\"user_id\":1},\"payload\":{\"id\":2,\"author_id\":3,\"attachments\":{\"media_keys\":[\"k\"]}},\"includes\":{\"users\":5,\"media\":[null]}}}",
            "{\"data\":{\"event_type\":\"post.reply.create\",\"filter\":{\"user_id\":\"1\"},\"payload\":{\"data\":{\"id\":\"2\",\"author_id\":\"3\",\"text\":\"&\"}},\"includes\":[]}}",
            "{\"for_user_id\":\"1\",\"users\":[],\"direct_message_events\":[{\"type\":\"message_create\",\"id\":\"2\",\"created_timestamp\":\"99999999999999999999\",\"message_create\":{\"sender_id\":\"3\",\"message_data\":{\"attachment\":{\"type\":\"location\"}}}}]}",
            "{\"for_user_id\":\"1\",\"tweet_create_events\":[{\"id_str\":\"2\",\"user\":{\"id_str\":\"3\"},\"timestamp_ms\":\"-9223372036854775808\",\"extended_entities\":{\"media\":[{\"type\":\"video\",\"video_info\":{\"variants\":[{\"content_type\":\"video/mp4\",\"bitrate\":-1}]}}]}}]}",
            "{\"for_user_id\":\"1\",\"tweet_delete_events\":[{\"status\":null},{\"status\":{\"id\":\"x\",\"user_id\":\"y\"}},{}]}",
            "{\"for_user_id\":1e999}",
            "{\"for_user_id\":\"\\ud800\"}",
            "\u{feff}{}",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        bodies.push(vec![0xff, 0xfe, b'{', b'}']);
        bodies.push(format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes());
        bodies.push(format!("{{\"data\":{}}}", "{\"data\":".repeat(5_000)).into_bytes());
        let text = "&".repeat(100_000);
        bodies.push(
            format!(r#"{{"for_user_id":"1","direct_message_events":[{{"id":"2","message_create":{{"sender_id":"3","message_data":{{"text":"{text}"}}}}}}]}}"#)
                .into_bytes(),
        );
        // Every fixture with one byte changed, at a spread of positions.
        for name in JSON_FIXTURES {
            let body = fixture(name);
            for pos in (0..body.len()).step_by(13) {
                for byte in [b'"', b'0', b'{', b']', b'&', 0x80] {
                    let mut mutated = body.clone();
                    mutated[pos] = byte;
                    bodies.push(mutated);
                }
            }
        }
        for body in &bodies {
            if let Ok(messages) = parse_body(body) {
                for m in messages {
                    assert!(m.conversation.key(ChannelKind::Twitter).is_ok(), "{m:?}");
                }
            }
        }
    }

    #[test]
    fn every_message_carries_the_raw_reference_and_a_valid_conversation_key() {
        for name in JSON_FIXTURES {
            let body = fixture(name);
            for m in parse(name) {
                assert_eq!(m.channel, ChannelKind::Twitter, "{name}");
                assert_eq!(m.raw, Some(RawRef::of(&body)), "{name}");
                assert_eq!(m.received_at, now(), "{name}");
                assert!(m.email.is_none(), "{name}");
                match m.direction {
                    Direction::Inbound => assert!(m.delivery.is_none(), "{name}"),
                    Direction::Outbound => assert_eq!(
                        m.delivery,
                        Some(Delivery::sent_outside_crossdesk(
                            m.platform_message_id.as_deref().unwrap()
                        )),
                        "{name}"
                    ),
                }
                assert!(key(&m).starts_with("twitter:"), "{name}");
                assert!(!m.customer_identities().is_empty(), "{name}");
            }
        }
    }

    #[test]
    fn names_itself_twitter() {
        assert_eq!(channel().name(), "twitter");
        assert_eq!(channel().kinds(), &[ChannelKind::Twitter]);
    }
}
