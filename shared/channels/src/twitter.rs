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
//! [`ParseError`]. Inside a well-formed envelope, an event Crossdesk cannot read (no id, no author)
//! is skipped with a warning so it does not take the rest of the batch down with it; events that
//! carry no message (likes, follows, typing, read receipts, revokes, retweets) are ignored.

use chrono::{DateTime, Utc};
use crossdesk_core::{
    Attachment, AttachmentKind, Author, ChannelKind, Conversation, Direction, Message,
    MessageEvent, MessageId, RawRef, Visibility,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::signature;
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

    fn millis(&self) -> Option<i64> {
        self.0.as_deref().and_then(|s| s.trim().parse().ok())
    }
}

/// The Account Activity envelope, or (with `data`) the X Activity one.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Envelope {
    for_user_id: Lenient,
    tweet_create_events: Option<Vec<Value>>,
    direct_message_events: Option<Vec<Value>>,
    tweet_delete_events: Option<Vec<Value>>,
    /// User id → v1.1 profile, beside DM events.
    users: Value,
    /// The X Activity API event, when the body is that envelope.
    data: Option<ActivityEvent>,
    // Accepted and ignored: favorite_events, follow_events, block_events, mute_events,
    // user_event, user_has_blocked (a string in the docs, a boolean in real payloads),
    // direct_message_indicate_typing_events, direct_message_mark_read_events, apps.
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
    variants: Vec<VideoVariant>,
}

/// One encoding of a video.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct VideoVariant {
    content_type: Option<String>,
    url: Option<String>,
    bit_rate: Option<u64>,
    bitrate: Option<u64>,
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
        let digest =
            signature::decode_base64_digest(encoded).ok_or_else(|| VerifyError::MalformedHeader {
                header: SIGNATURE_HEADER,
                reason: "the sha256 value is not base64 of 32 bytes".into(),
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
        let envelope: Envelope = serde_json::from_slice(webhook.body())?;
        let ctx = Ctx {
            raw: webhook.raw_ref(),
            received_at,
        };
        match &envelope.data {
            Some(event) => Ok(parse_activity_event(event, &ctx)),
            None => parse_account_activity(&envelope, &ctx),
        }
    }
}

// ---- parsing ----

/// What every message of one webhook shares.
struct Ctx {
    raw: RawRef,
    received_at: DateTime<Utc>,
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
            delivery: None,
        }
    }
}

fn parse_account_activity(envelope: &Envelope, ctx: &Ctx) -> Result<Vec<Message>, ParseError> {
    let tweets = envelope.tweet_create_events.as_deref().unwrap_or_default();
    let dms = envelope
        .direct_message_events
        .as_deref()
        .unwrap_or_default();
    let deletes = envelope.tweet_delete_events.as_deref().unwrap_or_default();
    if tweets.is_empty() && dms.is_empty() && deletes.is_empty() {
        // Likes, follows, typing, read receipts, revokes, …: nothing to thread.
        return Ok(Vec::new());
    }
    let account = envelope.for_user_id.id().ok_or_else(|| {
        ParseError::Invalid("for_user_id (the subscribed account) is missing".into())
    })?;
    let mut messages = Vec::new();
    read_each(&mut messages, "tweet_create_events", tweets, |v| {
        tweet_message(&Tweet::deserialize(v).map_err(|_| UNREADABLE)?, account, ctx)
    });
    read_each(&mut messages, "direct_message_events", dms, |v| {
        dm_message(
            &DmEvent::deserialize(v).map_err(|_| UNREADABLE)?,
            account,
            &envelope.users,
            &Value::Null,
            ctx,
        )
    });
    read_each(&mut messages, "tweet_delete_events", deletes, |v| {
        let delete = TweetDelete::deserialize(v).map_err(|_| UNREADABLE)?;
        let status = delete.status.unwrap_or_default();
        removal(
            platform_id(status.id_str.as_deref()).or(status.id.id()),
            platform_id(status.user_id_str.as_deref()).or(status.user_id.id()),
            account,
            delete.timestamp_ms.millis(),
            ctx,
        )
    });
    Ok(messages)
}

const UNREADABLE: &str = "does not have the documented shape";

/// Reads each event of one array, skipping (and logging) the ones that cannot be read.
fn read_each(
    out: &mut Vec<Message>,
    kind: &'static str,
    events: &[Value],
    mut read: impl FnMut(&Value) -> Read,
) {
    for (index, value) in events.iter().enumerate() {
        keep(out, kind, index, read(value));
    }
}

/// Keeps a message read from an event; logs an event that could not be read.
fn keep(out: &mut Vec<Message>, kind: &'static str, index: usize, read: Read) {
    match read {
        Ok(Some(message)) => out.push(message),
        Ok(None) => {}
        // The reason names the missing field, never the payload's content.
        Err(reason) => tracing::warn!(event = kind, index, reason, "skipped an X event"),
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
        .millis()
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
    if event
        .kind
        .as_deref()
        .is_some_and(|kind| kind != "message_create")
    {
        return Ok(None);
    }
    let create = event
        .message_create
        .as_ref()
        .ok_or("DM event without message_create")?;
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
            text: unescape_html(data.and_then(|d| d.text.as_deref()).unwrap_or_default()),
            attachments: attachment.map(dm_attachment).into_iter().collect(),
            visibility: Visibility::Private,
            sent_at: event
                .created_timestamp
                .millis()
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

fn parse_activity_event(event: &ActivityEvent, ctx: &Ctx) -> Vec<Message> {
    let event_type = event.event_type.as_deref().unwrap_or_default();
    let kind: &'static str = match event_type {
        "post.mention.create" | "post.reply.create" | "post.create" => "post",
        "post.delete" => "post.delete",
        "dm.received" | "dm.sent" => "dm",
        _ => {
            tracing::debug!(event_type, "ignored an X Activity event");
            return Vec::new();
        }
    };
    let Some(account) = event.filter.user_id.id() else {
        tracing::warn!(
            event = kind,
            reason = "no filter.user_id",
            "skipped an X event"
        );
        return Vec::new();
    };
    tracing::debug!(event_uuid = event.event_uuid.0.as_deref(), event_type, "X Activity event");
    let payload = unwrap_data(&event.payload);
    let mut messages = Vec::new();
    match kind {
        "post" => read_each(&mut messages, "post", std::slice::from_ref(payload), |v| {
            post_message(
                &Post::deserialize(v).map_err(|_| UNREADABLE)?,
                account,
                &event.includes,
                ctx,
            )
        }),
        "post.delete" => read_each(&mut messages, kind, std::slice::from_ref(payload), |v| {
            let delete = PostDelete::deserialize(v).map_err(|_| UNREADABLE)?;
            removal(delete.id.id(), delete.author_id.id(), account, None, ctx)
        }),
        _ => match ActivityDm::deserialize(payload) {
            Ok(dm) => match &dm.direct_message_events {
                Some(events) => read_each(&mut messages, "dm", events, |v| {
                    dm_message(
                        &DmEvent::deserialize(v).map_err(|_| UNREADABLE)?,
                        account,
                        &dm.users,
                        &event.includes,
                        ctx,
                    )
                }),
                None => keep(
                    &mut messages,
                    "dm",
                    0,
                    v2_dm_message(&dm, account, &event.includes, ctx),
                ),
            },
            Err(_) => tracing::warn!(event = kind, reason = UNREADABLE, "skipped an X event"),
        },
    }
    messages
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
                conversation_id: post.conversation_id.id().or(replied_to).unwrap_or(id).to_string(),
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
    if dm
        .event_type
        .as_deref()
        .is_some_and(|t| t != "MessageCreate")
    {
        return Ok(None);
    }
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
            text: unescape_html(dm.text.as_deref().unwrap_or_default()),
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
        .and_then(|v| Profile::deserialize(unwrap_data(v)).ok())
}

/// A profile from `includes.users` (a list of v2 users, flat or wrapped in `data`).
fn profile_in_list(includes: &Value, id: &str) -> Option<Profile> {
    includes
        .get("users")?
        .as_array()?
        .iter()
        .filter_map(|v| Profile::deserialize(unwrap_data(v)).ok())
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
    let still = non_empty(media.media_url_https.as_deref()).or(non_empty(media.media_url.as_deref()));
    Attachment {
        kind,
        content_type: video.as_ref().map(|_| "video/mp4".to_string()),
        url: video.or(still),
        object_ref: None,
        name: None,
        size: None,
    }
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
            Some((v.bitrate.or(v.bit_rate).unwrap_or(0), url))
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
                .filter_map(|v| V2Media::deserialize(v).ok())
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
