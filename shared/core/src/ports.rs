//! The ports the domain needs from the outside world. The embedded adapters (SQLite) and the AWS
//! adapters (DynamoDB, SQS, S3) implement them; the domain only sees these traits.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::ids::{ContactId, ConversationKey, MessageId, TicketId};
use crate::model::{
    ticket_subject, ChannelKind, Contact, Delivery, Identity, Message, OutboundJob, RawRef, Ticket,
    TicketStatus,
};

/// A store failure. Whether retrying can help is a property of the error.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The store is unreachable, throttled or busy: the same call may succeed later.
    #[error("ticket store unavailable: {0}")]
    Unavailable(String),
    /// The store refused the data itself (too large, malformed): retrying cannot help.
    #[error("ticket store rejected the write: {0}")]
    Rejected(String),
    /// A conditional write lost a race more often than the retry budget allows.
    #[error("conflicting concurrent writes: {0}")]
    Conflict(String),
    /// Stored data could not be read back (corruption or an incompatible schema).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether the same call may succeed if tried again.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Conflict(_))
    }
}

/// A queue failure.
#[derive(Debug, Error)]
pub enum QueueError {
    /// The queue is unreachable or throttled: the same call may succeed later.
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    /// The queue refused the message itself (too large, malformed).
    #[error("queue rejected the message: {0}")]
    Rejected(String),
}

/// A raw-payload archive failure.
#[derive(Debug, Error)]
#[error("raw payload archive unavailable: {0}")]
pub struct ArchiveError(pub String);

/// The most tickets one [`TicketStore::list_tickets`] call returns (every store clamps to it).
pub const MAX_LIST_LIMIT: usize = 500;

/// How many characters of a message's first line a ticket preview keeps (every store).
pub const PREVIEW_CHARS: usize = 140;

/// The identities in the order given, each once: what a store claims for a contact.
pub fn distinct_identities(identities: &[Identity]) -> Vec<Identity> {
    let mut wanted: Vec<Identity> = Vec::with_capacity(identities.len());
    for identity in identities {
        if !wanted.contains(identity) {
            wanted.push(identity.clone());
        }
    }
    wanted
}

/// The ticket a new message creates when its conversation has none yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTicket {
    /// The id to give it.
    pub id: TicketId,
    /// Its subject.
    pub subject: String,
    /// Tickets it is possibly related to (stored as the ticket's `related_tickets`).
    pub related_tickets: Vec<TicketId>,
}

impl NewTicket {
    /// A new ticket for `message`: a fresh id, the subject [`ticket_subject`] gives it.
    pub fn for_message(message: &Message, related_tickets: Vec<TicketId>) -> Self {
        NewTicket {
            id: TicketId::generate(),
            subject: ticket_subject(
                message.subject.as_deref(),
                &message.text,
                &message.attachments,
            ),
            related_tickets,
        }
    }
}

/// Where the writer wants a message to go. The store resolves it atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// A ticket found through the message's references or ticket reference; when set, the
    /// message goes there (and the conversation key is claimed for it if still free).
    pub ticket: Option<TicketId>,
    /// The conversation key of the message.
    pub conversation_key: ConversationKey,
    /// The ticket to create when neither `ticket` nor the conversation key leads to one.
    pub new_ticket: NewTicket,
}

/// What the store did with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The ticket holding the message.
    pub ticket_id: TicketId,
    /// The stored message's id (the earlier one, for a duplicate).
    pub message_id: MessageId,
    /// Whether a new ticket was created for it.
    pub created_ticket: bool,
    /// Whether the platform message was already stored (nothing was written).
    pub duplicate: bool,
}

/// The contact a customer's identities lead to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedContact {
    /// The contact.
    pub id: ContactId,
    /// Whether it was created by this resolution (so nothing was merged into or from it yet).
    pub created: bool,
}

/// A change to a message already stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revision {
    /// The author edited the text.
    Edited {
        /// The new text.
        text: String,
        /// When the platform says it was edited.
        at: DateTime<Utc>,
    },
    /// The author or the platform removed the message.
    Removed {
        /// When the platform says it was removed.
        at: DateTime<Utc>,
    },
}

/// Which tickets to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketFilter {
    /// Only tickets in this status.
    pub status: Option<TicketStatus>,
    /// Only tickets that started on this channel.
    pub channel: Option<ChannelKind>,
    /// At most this many, newest activity first.
    pub limit: usize,
    /// Only tickets after this one in that order (the next page).
    pub after: Option<TicketCursor>,
}

impl Default for TicketFilter {
    fn default() -> Self {
        TicketFilter {
            status: None,
            channel: None,
            limit: 50,
            after: None,
        }
    }
}

/// A place in the list of tickets (newest activity first, then by id): the ticket a page
/// ended with. Written `<activity, Unix nanoseconds>.<ticket id>`, which clients pass back as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketCursor {
    /// The ticket's last activity.
    pub updated_at: DateTime<Utc>,
    /// The ticket's id.
    pub id: TicketId,
}

impl TicketCursor {
    /// The place of a ticket in the list.
    pub fn of(ticket: &Ticket) -> Self {
        TicketCursor {
            updated_at: ticket.updated_at,
            id: ticket.id.clone(),
        }
    }

    /// Reads a cursor written by [`TicketCursor::to_string`]; `None` when it is not one.
    pub fn parse(text: &str) -> Option<Self> {
        let (nanos, id) = text.split_once('.')?;
        let nanos: i64 = nanos.parse().ok()?;
        Some(TicketCursor {
            updated_at: DateTime::from_timestamp_nanos(nanos),
            id: TicketId::parse(id).ok()?,
        })
    }
}

impl std::fmt::Display for TicketCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Timestamps outside 1677..2262 cannot be stored, so never name a stored ticket.
        let nanos = self.updated_at.timestamp_nanos_opt().unwrap_or(i64::MAX);
        write!(f, "{nanos}.{}", self.id)
    }
}

/// Durable storage of tickets, their messages and contacts.
///
/// Every write is idempotent: a platform message stored once is never stored again, and two
/// writers racing on one conversation end with one ticket.
#[async_trait]
pub trait TicketStore: Send + Sync {
    /// The ticket holding a message with one of these platform ids on this channel, if any
    /// (the first id that leads to one wins).
    async fn find_ticket_by_platform_ids(
        &self,
        channel: ChannelKind,
        platform_ids: &[String],
    ) -> Result<Option<TicketId>, StoreError>;

    /// The ticket a conversation key belongs to, if any.
    async fn find_ticket_by_conversation(
        &self,
        key: &ConversationKey,
    ) -> Result<Option<TicketId>, StoreError>;

    /// The contact an identity leads to, if any (nothing is created).
    async fn find_contact_by_identity(
        &self,
        identity: &Identity,
    ) -> Result<Option<ContactId>, StoreError>;

    /// The contact recognized by any of these identities; created when none matches, and given
    /// the identities it lacked. `name` fills in a missing display name.
    async fn resolve_contact(
        &self,
        identities: &[Identity],
        name: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<ResolvedContact, StoreError>;

    /// Stores a message in the ticket its route leads to, creating the ticket (with the route's
    /// `new_ticket`, its related tickets included) when needed, all or nothing. A message that
    /// [reopens tickets](Message::reopens_ticket) (a customer's own, not automatic mail) reopens
    /// a pending or solved ticket.
    async fn append_message(
        &self,
        route: &Route,
        message: &Message,
        contact: &ContactId,
    ) -> Result<Appended, StoreError>;

    /// Applies an edit or removal to a stored platform message; `None` when it is not stored.
    async fn revise_message(
        &self,
        channel: ChannelKind,
        platform_message_id: &str,
        revision: &Revision,
    ) -> Result<Option<(TicketId, MessageId)>, StoreError>;

    /// One ticket.
    async fn get_ticket(&self, id: &TicketId) -> Result<Option<Ticket>, StoreError>;

    /// Tickets matching the filter, most recent activity first (then by id), from after the
    /// filter's cursor.
    async fn list_tickets(&self, filter: &TicketFilter) -> Result<Vec<Ticket>, StoreError>;

    /// A ticket's messages, oldest first.
    async fn list_messages(&self, ticket: &TicketId) -> Result<Vec<Message>, StoreError>;

    /// The first `limit` of a ticket's messages, oldest first (what [`TicketStore::list_messages`]
    /// starts with). A store that can read a prefix cheaply says so here; the default reads
    /// them all.
    async fn list_first_messages(
        &self,
        ticket: &TicketId,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        let mut messages = self.list_messages(ticket).await?;
        messages.truncate(limit);
        Ok(messages)
    }

    /// One message of a ticket; `None` when the ticket holds no message with this id. A store
    /// that can read one message by its id says so here; the default reads them all.
    async fn get_message(
        &self,
        ticket: &TicketId,
        message: &MessageId,
    ) -> Result<Option<Message>, StoreError> {
        Ok(self
            .list_messages(ticket)
            .await?
            .into_iter()
            .find(|m| &m.id == message))
    }

    /// One contact.
    async fn get_contact(&self, id: &ContactId) -> Result<Option<Contact>, StoreError>;

    /// Sets a ticket's status; `None` when the ticket does not exist.
    async fn set_status(
        &self,
        ticket: &TicketId,
        status: TicketStatus,
        now: DateTime<Utc>,
    ) -> Result<Option<Ticket>, StoreError>;

    /// Replaces the delivery record of an outbound message if it still equals `expected`
    /// (compare-and-set, so two senders cannot both claim one reply); returns whether it did.
    /// A `platform_id` in the new record also becomes the message's platform id when the message
    /// has none and no other message on its channel holds it (so the platform's echo of the
    /// reply is recognized as a duplicate). An unknown message is `StoreError::Rejected`.
    async fn set_delivery(
        &self,
        ticket: &TicketId,
        message: &MessageId,
        expected: &Delivery,
        delivery: &Delivery,
    ) -> Result<bool, StoreError>;
}

/// One ticket as one piece of work reads it through a [`TicketStore`]: the ticket and its
/// messages are each read once, when first needed, and then shared by every step.
pub struct TicketReads<'a> {
    store: &'a dyn TicketStore,
    id: TicketId,
    ticket: Option<Option<Ticket>>,
    messages: Option<Vec<Message>>,
}

impl<'a> TicketReads<'a> {
    /// Reads of the ticket `id` through `store`; nothing is read yet.
    pub fn new(store: &'a dyn TicketStore, id: TicketId) -> Self {
        TicketReads {
            store,
            id,
            ticket: None,
            messages: None,
        }
    }

    /// The ticket's id.
    pub fn id(&self) -> &TicketId {
        &self.id
    }

    /// The ticket; `None` when it does not exist.
    pub async fn ticket(&mut self) -> Result<Option<&Ticket>, StoreError> {
        if self.ticket.is_none() {
            self.ticket = Some(self.store.get_ticket(&self.id).await?);
        }
        Ok(self.ticket.as_ref().and_then(Option::as_ref))
    }

    /// The ticket's messages, oldest first.
    pub async fn messages(&mut self) -> Result<&[Message], StoreError> {
        if self.messages.is_none() {
            self.messages = Some(self.store.list_messages(&self.id).await?);
        }
        Ok(self.messages.as_deref().unwrap_or_default())
    }

    /// One of the ticket's messages; from the messages already read when they were, else read
    /// by its id.
    pub async fn message(&mut self, id: &MessageId) -> Result<Option<Message>, StoreError> {
        match &self.messages {
            Some(all) => Ok(all.iter().find(|m| &m.id == id).cloned()),
            None => self.store.get_message(&self.id, id).await,
        }
    }

    /// The ticket's first `limit` messages, oldest first, and whether they are all of them.
    /// Read from the store each time unless all messages were read already.
    pub async fn first_messages(
        &mut self,
        limit: usize,
    ) -> Result<(Vec<Message>, bool), StoreError> {
        if let Some(all) = &self.messages {
            return Ok((
                all.iter().take(limit).cloned().collect(),
                all.len() <= limit,
            ));
        }
        // One more than asked tells whether there are more.
        let mut first = self
            .store
            .list_first_messages(&self.id, limit.saturating_add(1))
            .await?;
        let complete = first.len() <= limit;
        first.truncate(limit);
        if complete {
            self.messages = Some(first.clone());
        }
        Ok((first, complete))
    }
}

/// The queue between the webhook functions and the ticket writer.
#[async_trait]
pub trait InboundQueue: Send + Sync {
    /// Puts messages on the queue; returns only once they are durably accepted.
    async fn enqueue(&self, messages: &[Message]) -> Result<(), QueueError>;
}

/// The queue between the agent API and the reply sender.
#[async_trait]
pub trait OutboundQueue: Send + Sync {
    /// Puts a reply job on the queue; returns only once it is durably accepted.
    async fn enqueue(&self, job: &OutboundJob) -> Result<(), QueueError>;
}

/// Keeps the raw bytes of every accepted webhook, for audit and re-processing.
#[async_trait]
pub trait RawArchive: Send + Sync {
    /// Stores a payload under its content address; storing the same bytes twice is a no-op.
    async fn put(&self, channel: ChannelKind, body: &[u8]) -> Result<RawRef, ArchiveError>;

    /// Reads a payload back.
    async fn get(&self, raw: &RawRef) -> Result<Option<Vec<u8>>, ArchiveError>;
}

/// The time, as a port so tests can fix it.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_cursor_reads_back_as_written_and_nothing_else_reads_as_one() {
        let cursor = TicketCursor {
            updated_at: DateTime::from_timestamp_nanos(1_764_580_000_123_456_789),
            id: TicketId::generate(),
        };
        assert_eq!(
            TicketCursor::parse(&cursor.to_string()),
            Some(cursor.clone())
        );
        let before_1970 = TicketCursor {
            updated_at: DateTime::from_timestamp_nanos(-5),
            ..cursor.clone()
        };
        assert_eq!(
            TicketCursor::parse(&before_1970.to_string()),
            Some(before_1970)
        );
        let id = cursor.id.as_str();
        for bad in [
            "",
            "yesterday",
            "12345",
            &format!("x.{id}"),
            &format!("1.{id}x"),
            &format!("99999999999999999999.{id}"),
        ] {
            assert_eq!(TicketCursor::parse(bad), None, "{bad}");
        }
    }
}
