//! The normalized message model every channel parses into, and the tickets and contacts the
//! ticket writer builds from it.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ContactId, ConversationKey, EmailAddress, IdError, MessageId, TicketId};

/// The platform a message came from or goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// Facebook Messenger and comments on the page's posts.
    Facebook,
    /// Instagram Direct and comments on the account's media.
    Instagram,
    /// Twitter/X mentions, replies and direct messages.
    Twitter,
    /// Email.
    Email,
    /// The website live chat.
    Chat,
}

impl ChannelKind {
    /// Every channel, in a stable order.
    pub const ALL: [ChannelKind; 5] = [
        ChannelKind::Facebook,
        ChannelKind::Instagram,
        ChannelKind::Twitter,
        ChannelKind::Email,
        ChannelKind::Chat,
    ];

    /// The channel's name on the wire (`facebook`, `twitter`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Facebook => "facebook",
            ChannelKind::Instagram => "instagram",
            ChannelKind::Twitter => "twitter",
            ChannelKind::Email => "email",
            ChannelKind::Chat => "chat",
        }
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A channel name that is not one Crossdesk knows.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown channel `{0}` (expected facebook, instagram, twitter, email or chat)")]
pub struct UnknownChannel(pub String);

impl FromStr for ChannelKind {
    type Err = UnknownChannel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChannelKind::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownChannel(s.to_string()))
    }
}

/// Who wrote a message, relative to the company.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the customer to the company.
    Inbound,
    /// From the company (an agent, the page, the account) to the customer.
    Outbound,
}

/// Whether the platform shows the message to everyone or only to the participants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Visible to anyone (page comments, tweets).
    Public,
    /// Visible to the participants only (direct messages, email, chat).
    Private,
}

/// What happened to the platform message this event describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MessageEvent {
    /// A new message.
    #[default]
    Created,
    /// The author changed the text of a message already sent.
    Edited,
    /// The author (or the platform) removed the message.
    Removed,
}

/// The conversation a message belongs to, in the platform's own terms. The reply sender uses it
/// to address an answer; [`Conversation::key`] threads messages into tickets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Conversation {
    /// A Messenger or Instagram Direct thread between the page/account and one user.
    DirectThread {
        /// The page id (Facebook) or business account id (Instagram).
        account_id: String,
        /// The user's page-scoped id (PSID or IGSID).
        user_id: String,
    },
    /// One user's comments under one post of the page.
    CommentThread {
        /// The post (or Instagram media) id.
        post_id: String,
        /// The commenter's id.
        user_id: String,
    },
    /// A public tweet conversation with one user.
    TweetThread {
        /// The tweet conversation id (the id of the conversation's first tweet, where known).
        conversation_id: String,
        /// The customer's user id.
        user_id: String,
    },
    /// A Twitter/X direct-message conversation between the account and one user.
    DirectMessages {
        /// The subscribed account's user id.
        account_id: String,
        /// The customer's user id.
        user_id: String,
    },
    /// An email thread, named after the Message-ID of the mail that started it.
    EmailThread {
        /// The Message-ID (without angle brackets) of the first mail Crossdesk saw.
        root_message_id: String,
    },
    /// A website chat session.
    ChatSession {
        /// The chat session id.
        session_id: String,
    },
}

impl Conversation {
    /// The threading key of this conversation on the given channel.
    pub fn key(&self, channel: ChannelKind) -> Result<ConversationKey, IdError> {
        let c = channel.as_str();
        match self {
            Conversation::DirectThread {
                account_id,
                user_id,
            } => ConversationKey::new(&format!("{c}:dm"), &[account_id, user_id]),
            Conversation::CommentThread { post_id, user_id } => {
                ConversationKey::new(&format!("{c}:comments"), &[post_id, user_id])
            }
            Conversation::TweetThread {
                conversation_id,
                user_id,
            } => ConversationKey::new(&format!("{c}:tweets"), &[conversation_id, user_id]),
            Conversation::DirectMessages {
                account_id,
                user_id,
            } => ConversationKey::new(&format!("{c}:dm"), &[account_id, user_id]),
            Conversation::EmailThread { root_message_id } => {
                ConversationKey::new(&format!("{c}:thread"), &[root_message_id])
            }
            Conversation::ChatSession { session_id } => {
                ConversationKey::new(&format!("{c}:session"), &[session_id])
            }
        }
    }

    /// The platform id of the customer in this conversation, where the conversation names one.
    pub fn customer_id(&self) -> Option<&str> {
        match self {
            Conversation::DirectThread { user_id, .. }
            | Conversation::CommentThread { user_id, .. }
            | Conversation::TweetThread { user_id, .. }
            | Conversation::DirectMessages { user_id, .. } => Some(user_id),
            Conversation::EmailThread { .. } | Conversation::ChatSession { .. } => None,
        }
    }
}

/// The person who wrote a message, as the platform names them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    /// The platform's id of the author (PSID, X user id, email address, chat visitor id).
    pub platform_id: String,
    /// Display name, where the platform gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Email address, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailAddress>,
    /// Handle (`@screen_name`, Instagram username), where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
}

/// What kind of file an attachment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentKind {
    /// A picture.
    Image,
    /// A video.
    Video,
    /// A sound or voice message.
    Audio,
    /// Any other file.
    File,
    /// A sticker (Messenger) or animated image.
    Sticker,
    /// A shared location.
    Location,
    /// A link preview, template or other platform card.
    Link,
    /// A type the platform sent that Crossdesk does not know.
    Unsupported,
}

/// A file or card attached to a message. Attachments are referenced, never inlined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// What kind of file it is.
    pub kind: AttachmentKind,
    /// Where the platform serves it (may expire).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Where Crossdesk keeps it (e.g. a part of the archived raw email).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_ref: Option<String>,
    /// File name, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Size in bytes, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// MIME type, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// SHA-256 (hex) of Crossdesk's own copy, once the ticket writer has fetched it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Why Crossdesk holds no copy of a file the platform served (after retries): the agent
    /// sees it instead of a file that silently vanished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetch_error: Option<String>,
}

/// Email-specific facts about a message, used for threading and for answering.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailDetails {
    /// The mail's Message-ID, without angle brackets.
    pub message_id: String,
    /// `In-Reply-To` ids, without angle brackets.
    #[serde(default)]
    pub in_reply_to: Vec<String>,
    /// `References` ids, without angle brackets, oldest first.
    #[serde(default)]
    pub references: Vec<String>,
    /// Recipients (`To` and `Cc`).
    #[serde(default)]
    pub to: Vec<EmailAddress>,
    /// The quoted history below the new text, separated from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quoted_text: Option<String>,
    /// Whether the mail had only an HTML body (the text is a rendering of it).
    #[serde(default)]
    pub html_only: bool,
    /// Whether a machine sent it: an auto-reply, a bounce (delivery status notification) or
    /// bulk/list mail (`Auto-Submitted`, `X-Autoreply`, `X-Autorespond`, `Precedence`, a
    /// `multipart/report`, an empty `Return-Path`, a `MAILER-DAEMON` sender). Such a mail never
    /// reopens a ticket and is never answered.
    #[serde(default)]
    pub auto_submitted: bool,
    /// The signature beside the ticket id in the plus-address the mail was sent to
    /// (`support+<ticket>.<signature>@…`), not yet checked; the writer checks it against the
    /// email thread key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_signature: Option<String>,
}

/// Where the raw platform payload of a message is archived, for audit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RawRef(pub String);

impl RawRef {
    /// The content address of a payload: `sha256:<hex>`.
    pub fn of(body: &[u8]) -> Self {
        use sha2::Digest;
        RawRef(format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(body))
        ))
    }
}

/// Delivery state of an outbound message: a Crossdesk reply's progress, or
/// [`DeliveryStatus::SentOutsideCrossdesk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting on the outbound queue.
    Queued,
    /// The platform accepted it.
    Sent,
    /// The platform refused it, or it could not be sent.
    Failed,
    /// The sender stopped between calling the platform and recording the answer; an agent decides.
    Unknown,
    /// Not a Crossdesk reply: the page or account sent it outside Crossdesk (Meta Business Suite,
    /// the Messenger or X app, another tool) and Crossdesk saw it go out through the platform's
    /// echo or webhook.
    SentOutsideCrossdesk,
}

/// Why a delivery failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryError {
    /// The platform's (or Crossdesk's) error code.
    pub code: String,
    /// A reason a person can act on.
    pub reason: String,
}

/// Delivery record of an outbound message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Where the message stands.
    pub status: DeliveryStatus,
    /// The platform's id for the sent message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_id: Option<String>,
    /// Why it failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<DeliveryError>,
    /// How many times the platform was called.
    #[serde(default)]
    pub attempts: u32,
    /// Set while a sender is calling the platform: the idempotency record. A sender that finds
    /// it set on a queued reply knows an earlier attempt died mid-call and must not send again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sending_since: Option<DateTime<Utc>>,
}

impl Delivery {
    /// A delivery waiting on the queue.
    pub fn queued() -> Self {
        Delivery {
            status: DeliveryStatus::Queued,
            platform_id: None,
            error: None,
            attempts: 0,
            sending_since: None,
        }
    }

    /// The record of a message the page or account sent outside Crossdesk, seen on the platform
    /// with this id.
    pub fn sent_outside_crossdesk(platform_id: &str) -> Self {
        Delivery {
            status: DeliveryStatus::SentOutsideCrossdesk,
            platform_id: Some(platform_id.to_string()),
            ..Delivery::queued()
        }
    }

    /// Whether this records a reply sent (or being sent) through Crossdesk.
    pub fn is_crossdesk_reply(&self) -> bool {
        self.status != DeliveryStatus::SentOutsideCrossdesk
    }
}

/// The start of the text Crossdesk stores for content it cannot read (an unknown event,
/// attachment or field); the raw payload stays archived for audit.
pub const UNSUPPORTED_PREFIX: &str = "unsupported message type: ";

/// The placeholder text for content of an unknown `kind`: `unsupported message type: <kind>`.
pub fn unsupported_text(kind: &str) -> String {
    let kind: String = kind.chars().filter(|c| !c.is_control()).take(80).collect();
    let kind = match kind.trim() {
        "" => "unknown",
        kind => kind,
    };
    format!("{UNSUPPORTED_PREFIX}{kind}")
}

/// One message in Crossdesk's normalized model, whatever channel it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Crossdesk's id of the message.
    pub id: MessageId,
    /// The channel it came through.
    pub channel: ChannelKind,
    /// The platform's id of the message (Messenger `mid`, comment id, tweet id, Message-ID, …);
    /// absent on a reply not yet sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_message_id: Option<String>,
    /// The platform conversation it belongs to.
    pub conversation: Conversation,
    /// Customer to company, or company to customer.
    pub direction: Direction,
    /// New, edited or removed.
    #[serde(default)]
    pub event: MessageEvent,
    /// Who wrote it.
    pub author: Author,
    /// The text (plain text; for email the new text without the quoted history).
    pub text: String,
    /// Files and cards attached.
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    /// Public or private on the platform.
    pub visibility: Visibility,
    /// The platform's timestamp of the message.
    pub sent_at: DateTime<Utc>,
    /// When Crossdesk received it.
    pub received_at: DateTime<Utc>,
    /// Platform ids of messages this one answers (email `In-Reply-To`/`References`, the tweet it
    /// replies to, the Messenger message it quotes), newest first.
    #[serde(default)]
    pub replies_to: Vec<String>,
    /// A ticket the message names itself (plus-address or `[#ID]` in the subject).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_ref: Option<TicketId>,
    /// The subject line, where the channel has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Email-specific facts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailDetails>,
    /// Where the raw payload is archived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<RawRef>,
    /// Delivery record of an outbound message: how a Crossdesk reply went out, or that the page
    /// or account sent it outside Crossdesk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
    /// The webhook that brought it failed its signature check and was accepted only because
    /// its channel is in signature report mode (`CROSSDESK_<CHANNEL>_SIGNATURE_MODE=report`):
    /// the platform may not have sent it. Absent (false) for every verified message.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub signature_unverified: bool,
    /// Personal data found in a public message (an order number, an IBAN, …): the agent should
    /// move the conversation to a private channel ([`crate::workflow::PersonalDataKind`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub personal_data: Vec<crate::workflow::PersonalDataKind>,
    /// An internal note by an agent: part of the ticket's timeline, never sent to the customer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub internal_note: bool,
    /// Found by social monitoring (a public post naming the brand that did not address the
    /// account); its ticket is of kind [`crate::workflow::TicketKind::Monitoring`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub monitoring: bool,
}

impl Message {
    /// The key used to recognize the same platform message delivered twice
    /// (`<channel>:<platform id>`); `None` for a reply not yet sent.
    pub fn dedup_key(&self) -> Option<String> {
        self.platform_message_id
            .as_ref()
            .map(|id| format!("{}:{id}", self.channel))
    }

    /// Whether a machine sent it (an auto-reply, a bounce, bulk mail): see
    /// [`EmailDetails::auto_submitted`].
    pub fn is_automatic(&self) -> bool {
        self.email.as_ref().is_some_and(|e| e.auto_submitted)
    }

    /// Whether storing it reopens a pending or solved ticket: a customer's own message does; the
    /// company's messages and automatic mail do not.
    pub fn reopens_ticket(&self) -> bool {
        self.direction == Direction::Inbound && !self.is_automatic()
    }

    /// The identities of the customer this message is with, strongest first. An email address
    /// a chat visitor typed is not one: chat input is unverified, so it only suggests a link
    /// ([`crate::triage::Triage::suggest_from_chat`]).
    pub fn customer_identities(&self) -> Vec<Identity> {
        let mut ids = Vec::new();
        match self.channel {
            ChannelKind::Chat => {
                if self.direction == Direction::Inbound {
                    ids.push(Identity::new(self.channel, &self.author.platform_id));
                }
            }
            ChannelKind::Email => {
                if self.direction == Direction::Inbound {
                    if let Some(email) = &self.author.email {
                        ids.push(Identity::email(email));
                    }
                }
            }
            _ => {
                if let Some(user) = self.conversation.customer_id() {
                    ids.push(Identity::new(self.channel, user));
                }
            }
        }
        ids
    }
}

/// A way to recognize a customer on one channel: `facebook:<psid>`, `email:<address>`, ….
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Identity(pub String);

impl Identity {
    /// The customer's id on a channel.
    pub fn new(channel: ChannelKind, platform_id: &str) -> Self {
        Identity(format!("{channel}:{platform_id}"))
    }

    /// An email address, shared by every channel on which the customer gives it.
    pub fn email(address: &EmailAddress) -> Self {
        Identity(format!("email:{address}"))
    }

    /// The identity as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a ticket stands in the agents' workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    /// Waiting for an agent.
    Open,
    /// Waiting for the customer or a third party.
    Pending,
    /// Done; a new customer message reopens it.
    Solved,
}

impl TicketStatus {
    /// The status's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::Open => "open",
            TicketStatus::Pending => "pending",
            TicketStatus::Solved => "solved",
        }
    }
}

/// A status name that is not one Crossdesk knows.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown status `{0}` (expected open, pending or solved)")]
pub struct UnknownStatus(pub String);

impl FromStr for TicketStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "open" => Ok(TicketStatus::Open),
            "pending" => Ok(TicketStatus::Pending),
            "solved" => Ok(TicketStatus::Solved),
            other => Err(UnknownStatus(other.to_string())),
        }
    }
}

/// One customer conversation the support team works on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// The ticket's id.
    pub id: TicketId,
    /// Where it stands.
    pub status: TicketStatus,
    /// The channel it started on.
    pub channel: ChannelKind,
    /// A subject: the email subject, or the first line of the first message.
    pub subject: String,
    /// The customer.
    pub contact_id: ContactId,
    /// The conversation that started it.
    pub conversation_key: ConversationKey,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When anything last happened on it.
    pub updated_at: DateTime<Utc>,
    /// The first line of the latest message.
    pub preview: String,
    /// How many messages it holds.
    pub message_count: u64,
    /// Tickets this one is possibly related to: a mail that referenced them but could not be
    /// threaded into them (its sender is not one of their participants, or the reference is not
    /// one Crossdesk signed or received there) started this ticket instead.
    #[serde(default)]
    pub related_tickets: Vec<TicketId>,
}

/// A customer, with the identities by which each channel knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// The contact's id.
    pub id: ContactId,
    /// Best known display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Email addresses known for the contact.
    #[serde(default)]
    pub emails: Vec<EmailAddress>,
    /// Every identity that leads to this contact.
    #[serde(default)]
    pub identities: Vec<Identity>,
    /// When it was first seen.
    pub created_at: DateTime<Utc>,
}

/// A unit of work on the outbound queue: deliver this stored reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundJob {
    /// The ticket the reply belongs to.
    pub ticket_id: TicketId,
    /// The stored outbound message to deliver.
    pub message_id: MessageId,
}

/// A subject for a new ticket: the email subject without reply prefixes, else the first line of
/// the text, shortened to 80 characters.
pub fn ticket_subject(subject: Option<&str>, text: &str, attachments: &[Attachment]) -> String {
    let from_subject = subject.map(strip_reply_prefixes).filter(|s| !s.is_empty());
    let line = from_subject.unwrap_or_else(|| first_line(text, 80));
    if line.is_empty() {
        match attachments.first() {
            Some(a) => format!("({} attachment)", kind_name(a.kind)),
            None => "(no text)".to_string(),
        }
    } else {
        line
    }
}

fn kind_name(kind: AttachmentKind) -> &'static str {
    match kind {
        AttachmentKind::Image => "image",
        AttachmentKind::Video => "video",
        AttachmentKind::Audio => "audio",
        AttachmentKind::File => "file",
        AttachmentKind::Sticker => "sticker",
        AttachmentKind::Location => "location",
        AttachmentKind::Link => "link",
        AttachmentKind::Unsupported => "unsupported",
    }
}

/// The first non-empty line of `text`, cut to `max` characters with an ellipsis.
pub fn first_line(text: &str, max: usize) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    if line.chars().count() > max {
        let mut s: String = line.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    } else {
        line.to_string()
    }
}

/// Removes `Re:`, `Fwd:`, `AW:`, `WG:`, `Sv:` prefixes (any case, repeated) and a `[#ID]` tag.
pub fn strip_reply_prefixes(subject: &str) -> String {
    const PREFIXES: [&str; 8] = ["re", "fw", "fwd", "aw", "wg", "sv", "vs", "antw"];
    let mut s = subject.trim();
    loop {
        let before = s;
        if let Some((head, rest)) = s.split_once(':') {
            if PREFIXES.contains(&head.trim().to_ascii_lowercase().as_str()) {
                s = rest.trim_start();
            }
        }
        if let Some(rest) = s.strip_prefix("[#") {
            if let Some((_, after)) = rest.split_once(']') {
                s = after.trim_start();
            }
        }
        if s == before {
            break;
        }
    }
    s.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_reply_prefixes_in_several_languages() {
        assert_eq!(strip_reply_prefixes("Re: AW: Invoice"), "Invoice");
        assert_eq!(strip_reply_prefixes("RE: [#K3F9Q2XA] Invoice"), "Invoice");
        assert_eq!(strip_reply_prefixes("Fwd: Sv: hello"), "hello");
        assert_eq!(strip_reply_prefixes("Rechnung: falsch"), "Rechnung: falsch");
    }

    #[test]
    fn subject_falls_back_to_first_line_then_attachment() {
        assert_eq!(ticket_subject(None, "\n  hello\nworld", &[]), "hello");
        let long = "x".repeat(100);
        assert_eq!(ticket_subject(None, &long, &[]).chars().count(), 80);
        let image = Attachment {
            kind: AttachmentKind::Image,
            url: None,
            object_ref: None,
            name: None,
            size: None,
            content_type: None,
            sha256: None,
            fetch_error: None,
        };
        assert_eq!(ticket_subject(None, "", &[image]), "(image attachment)");
        assert_eq!(ticket_subject(Some("Re: "), "", &[]), "(no text)");
    }

    #[test]
    fn conversation_keys_differ_per_channel_and_kind() {
        let dm = Conversation::DirectThread {
            account_id: "p".into(),
            user_id: "u".into(),
        };
        assert_eq!(
            dm.key(ChannelKind::Facebook).unwrap().as_str(),
            "facebook:dm:p:u"
        );
        assert_ne!(
            dm.key(ChannelKind::Facebook),
            dm.key(ChannelKind::Instagram)
        );
        let comments = Conversation::CommentThread {
            post_id: "p".into(),
            user_id: "u".into(),
        };
        assert_ne!(
            dm.key(ChannelKind::Facebook),
            comments.key(ChannelKind::Facebook)
        );
    }

    #[test]
    fn channel_names_round_trip() {
        for c in ChannelKind::ALL {
            assert_eq!(c.as_str().parse::<ChannelKind>().unwrap(), c);
        }
        assert!("myspace".parse::<ChannelKind>().is_err());
    }
}
