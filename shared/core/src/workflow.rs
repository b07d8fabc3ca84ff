//! The support team's working state beside each ticket and contact: who it is assigned to, its
//! tags and priority, its SLA clock, the personal-data flag, whether it came from social
//! monitoring, the similar tickets found for it; and which contacts agents merged or Crossdesk
//! suggests merging. A [`WorkflowStore`] keeps it (SQLite locally, DynamoDB in AWS).
//!
//! It lives beside the [`crate::TicketStore`] rather than in the ticket record so that the hot
//! path (threading a message into a ticket) stays one small atomic write, and workflow changes
//! never contend with it.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ContactId, MessageId, TicketId};
use crate::model::{ChannelKind, Identity};
use crate::ports::StoreError;

/// How urgent a ticket is. Sets its SLA target together with the channel.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Whenever there is time.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Before normal tickets.
    High,
    /// Now.
    Urgent,
}

impl Priority {
    /// Every priority, lowest first.
    pub const ALL: [Priority; 4] = [
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Urgent,
    ];

    /// The priority's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A priority name that is not one Crossdesk knows.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown priority `{0}` (expected low, normal, high or urgent)")]
pub struct UnknownPriority(pub String);

impl FromStr for Priority {
    type Err = UnknownPriority;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Priority::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPriority(s.to_string()))
    }
}

/// Where a ticket came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TicketKind {
    /// A customer wrote to the company (a message, comment, mention, mail or chat).
    #[default]
    Conversation,
    /// Social monitoring found a public post naming the brand that did not address the
    /// account.
    Monitoring,
}

/// A kind of personal data a company should not discuss in public.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PersonalDataKind {
    /// An email address.
    EmailAddress,
    /// A phone number.
    PhoneNumber,
    /// An IBAN (with a valid mod-97 check).
    Iban,
    /// A payment card number (with a valid Luhn check).
    CardNumber,
    /// A configured pattern (a customer or order number), by its name.
    Pattern(String),
}

/// The SLA clock of a ticket: when the first response is due and when it (and the resolution)
/// happened.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaClock {
    /// The policy that set the targets (`<channel>/<priority>` or a configured name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// When the first response is due; `None` when no policy applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_response_due: Option<DateTime<Utc>>,
    /// When an agent first answered the customer (a reply, not a note).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_response_at: Option<DateTime<Utc>>,
    /// When the ticket was (last) solved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
    /// When the breach of the first-response target was raised (once per ticket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breach_raised_at: Option<DateTime<Utc>>,
}

impl SlaClock {
    /// Whether the ticket still waits for its first response and has a due time.
    pub fn awaiting_first_response(&self) -> Option<DateTime<Utc>> {
        match self.first_response_at {
            Some(_) => None,
            None => self.first_response_due,
        }
    }
}

/// The public-to-private handoff an agent made on a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handoff {
    /// When it was made.
    pub at: DateTime<Utc>,
    /// The agent who made it.
    pub agent_id: String,
    /// The short public answer.
    pub public_message: MessageId,
    /// The private message.
    pub private_message: MessageId,
}

/// A ticket found similar to another, with its score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimilarTicket {
    /// The similar ticket.
    pub ticket_id: TicketId,
    /// Its subject, for display.
    pub subject: String,
    /// Its relevance (BM25, higher is more similar).
    pub score: f64,
}

impl Eq for SimilarTicket {}

/// The working state of one ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketWorkflow {
    /// The ticket.
    pub ticket_id: TicketId,
    /// The ticket's customer when the workflow was created (tickets of a contact are listed
    /// through it).
    pub contact_id: ContactId,
    /// The channel the ticket started on.
    pub channel: ChannelKind,
    /// Where it came from.
    #[serde(default)]
    pub kind: TicketKind,
    /// How urgent it is.
    #[serde(default)]
    pub priority: Priority,
    /// The agent it is assigned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// The team it is assigned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Its tags (lower case, sorted).
    #[serde(default)]
    pub tags: BTreeSet<String>,
    /// Personal data found in its public messages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub personal_data: Vec<PersonalDataKind>,
    /// The public-to-private handoff, once made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff: Option<Handoff>,
    /// The SLA clock.
    #[serde(default)]
    pub sla: SlaClock,
    /// Up to 5 open or recently solved tickets with a similar question, found when the latest
    /// customer message arrived.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub similar: Vec<SimilarTicket>,
    /// The customers' words of the ticket, normalized for similarity search (capped).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub search_text: String,
    /// Set once `search_text` is full and the ticket holds two customer messages or more: the
    /// time sent of the message it filled up at. A customer message sent later cannot change
    /// the search text (nor be the first), so the writer does not read the messages for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_text_settled_at: Option<DateTime<Utc>>,
    /// What `search_text` was built from while it is not full. A customer message sent after
    /// those, into a ticket that holds no other message since, only adds its own terms: the
    /// writer then reads no messages for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_text_cover: Option<SearchTextCover>,
    /// When the workflow last changed.
    pub updated_at: DateTime<Utc>,
}

impl TicketWorkflow {
    /// The workflow of a ticket nobody has worked on yet.
    pub fn new(
        ticket_id: TicketId,
        contact_id: ContactId,
        channel: ChannelKind,
        now: DateTime<Utc>,
    ) -> Self {
        TicketWorkflow {
            ticket_id,
            contact_id,
            channel,
            kind: TicketKind::default(),
            priority: Priority::default(),
            assignee: None,
            team: None,
            tags: BTreeSet::new(),
            personal_data: Vec::new(),
            handoff: None,
            sla: SlaClock::default(),
            similar: Vec::new(),
            search_text: String::new(),
            search_text_settled_at: None,
            search_text_cover: None,
            updated_at: now,
        }
    }
}

/// The messages a ticket's search text was built from (all its customer messages, when it
/// was built).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchTextCover {
    /// How many messages the ticket held (customer's or not).
    pub ticket_messages: u64,
    /// How many of them were the customer's words.
    pub customer_messages: u64,
    /// When the last of those was sent.
    pub last_sent_at: DateTime<Utc>,
}

/// A stored value with the version a compare-and-set write must name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T> {
    /// The value.
    pub value: T,
    /// Its version (1 for the first write).
    pub version: u64,
}

/// Which workflows to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkflowQuery {
    /// Only tickets of these contacts (any of them); all contacts when empty.
    pub contacts: Vec<ContactId>,
    /// Only tickets still waiting for their first response with a due time at or before this.
    pub first_response_due_before: Option<DateTime<Utc>>,
    /// At most this many (the store clamps to [`crate::MAX_LIST_LIMIT`]); most recently updated
    /// first, except for `first_response_due_before`, which lists the earliest due first.
    pub limit: usize,
}

/// Why Crossdesk suggests that two contacts may be one person, without linking them itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkSuggestion {
    /// The other contact.
    pub contact_id: ContactId,
    /// The identity both claim (e.g. an email address a chat visitor typed).
    pub identity: Identity,
    /// When it was suggested.
    pub at: DateTime<Utc>,
}

/// How a contact is linked to others.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactLinks {
    /// The contact this one was merged into, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<ContactId>,
    /// Contacts merged into this one.
    #[serde(default)]
    pub merged: Vec<ContactId>,
    /// Contacts that may be the same person, for an agent to merge or dismiss.
    #[serde(default)]
    pub suggestions: Vec<LinkSuggestion>,
}

/// What a merge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeOutcome {
    /// The source is now merged into the target.
    Merged,
    /// It already was.
    AlreadyMerged,
    /// The source is merged into another contact: unmerge it first.
    MergedElsewhere,
    /// The target is itself merged into another contact (merge into that one instead), or the
    /// two are the same contact, or the source has contacts merged into it (merges are one
    /// level deep).
    Refused,
}

/// Which notifications an agent wants, and where.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentPreferences {
    /// The agent.
    pub agent_id: String,
    /// Where notification mail goes (none: no mail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The events the agent wants (`ticket.created`, `message.created`, `chat.waiting`,
    /// `sla.breached`); none means none.
    #[serde(default)]
    pub events: BTreeSet<String>,
    /// Teams the agent belongs to (notifications for tickets assigned to a team reach them).
    #[serde(default)]
    pub teams: BTreeSet<String>,
}

/// Storage of the workflow state. Every write is idempotent or compare-and-set.
#[async_trait]
pub trait WorkflowStore: Send + Sync {
    /// A ticket's workflow, with its version.
    async fn workflow(
        &self,
        ticket: &TicketId,
    ) -> Result<Option<Versioned<TicketWorkflow>>, StoreError>;

    /// Writes a ticket's workflow if the stored version is still `expected` (`None`: only if
    /// none is stored). Returns whether it wrote.
    async fn save_workflow(
        &self,
        workflow: &TicketWorkflow,
        expected: Option<u64>,
    ) -> Result<bool, StoreError>;

    /// Workflows matching the query.
    async fn list_workflows(
        &self,
        query: &WorkflowQuery,
    ) -> Result<Vec<TicketWorkflow>, StoreError>;

    /// How a contact is linked to others (the default for one never linked).
    async fn contact_links(&self, contact: &ContactId) -> Result<ContactLinks, StoreError>;

    /// Merges `source` into `target`: `target` then stands for both, and every identity of
    /// `source` leads to `target`. Undone by [`WorkflowStore::unmerge_contact`].
    async fn merge_contacts(
        &self,
        source: &ContactId,
        target: &ContactId,
        at: DateTime<Utc>,
    ) -> Result<MergeOutcome, StoreError>;

    /// Undoes the merge of `source`; returns whether it was merged.
    async fn unmerge_contact(&self, source: &ContactId) -> Result<bool, StoreError>;

    /// Records a suggestion that `contact` may be `suggestion.contact_id` (both ways); a
    /// suggestion already stored is kept as it is.
    async fn suggest_link(
        &self,
        contact: &ContactId,
        suggestion: &LinkSuggestion,
    ) -> Result<(), StoreError>;

    /// An agent's notification preferences.
    async fn agent_preferences(
        &self,
        agent_id: &str,
    ) -> Result<Option<AgentPreferences>, StoreError>;

    /// Stores an agent's notification preferences.
    async fn save_agent_preferences(&self, prefs: &AgentPreferences) -> Result<(), StoreError>;

    /// Every agent's preferences.
    async fn list_agent_preferences(&self) -> Result<Vec<AgentPreferences>, StoreError>;

    /// Claims the notification window `window` (e.g. `<ticket>:<minute>`) for one sender: true
    /// for exactly one caller per window, however many race. Claims older than a day may be
    /// forgotten.
    async fn claim_window(&self, window: &str, at: DateTime<Utc>) -> Result<bool, StoreError>;

    /// A named cursor (e.g. the newest tweet id social monitoring has seen).
    async fn cursor(&self, name: &str) -> Result<Option<String>, StoreError>;

    /// Stores a named cursor.
    async fn save_cursor(&self, name: &str, value: &str) -> Result<(), StoreError>;
}
