//! What agents do with tickets: list, read, reply, change status. The HTTP agent API (local stack
//! and Lambda) is a thin layer over [`AgentDesk`].

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tracing::{error, info, warn};

use crate::agent_workflow::{DeskWorkflow, WorkflowView};
use crate::events::{EventQueue, OutgoingEvent};
use crate::ids::{MessageId, TicketId};
use crate::media::{displays_inline, media_ref_digest, MediaStore, UNKNOWN_CONTENT_TYPE};
use crate::model::{
    Author, ChannelKind, Contact, Delivery, DeliveryError, DeliveryStatus, Direction, Message,
    MessageEvent, OutboundJob, Ticket, TicketStatus, Visibility,
};
use crate::ports::{
    Clock, NewTicket, OutboundQueue, QueueError, Route, StoreError, TicketFilter, TicketStore,
};
use crate::reply_window::{self, ReplyCapabilities, ReplyWindow};

/// The longest reply text accepted, in bytes.
pub const MAX_REPLY_BYTES: usize = 64 * 1024;

/// Why an agent action failed; each variant maps to one HTTP status.
#[derive(Debug, Error)]
pub enum AgentError {
    /// The ticket (or other named thing) does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The request is malformed or asks for something impossible.
    #[error("{0}")]
    Invalid(String),
    /// The request conflicts with the ticket's state.
    #[error("{0}")]
    Conflict(String),
    /// The platform's reply window for this channel is closed (Messenger's 24 hours, a
    /// comment's one private reply, …); the message says why and what to do instead.
    #[error("{0}")]
    WindowClosed(String),
    /// The request is larger than allowed.
    #[error("{0}")]
    TooLarge(String),
    /// A store or queue is unavailable; the agent can try again.
    #[error("service unavailable: {0}")]
    Unavailable(String),
}

/// A queue that cannot take a reply: the agent may send it again later.
impl From<QueueError> for AgentError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::Unavailable(m) | QueueError::Rejected(m) => AgentError::Unavailable(m),
        }
    }
}

impl From<StoreError> for AgentError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Rejected(m) => AgentError::Invalid(m),
            other => AgentError::Unavailable(other.to_string()),
        }
    }
}

/// The agent writing a reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRef {
    /// The agent's id (the identity provider's subject).
    pub id: String,
    /// The agent's display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A reply an agent asks to send.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ReplyRequest {
    /// The text to send.
    pub text: String,
    /// The channel to answer on; the channel of the customer's latest message when absent.
    #[serde(default)]
    pub channel: Option<ChannelKind>,
    /// Public or private, for conversations that allow both; the conversation's own when absent.
    #[serde(default)]
    pub visibility: Option<Visibility>,
    /// The client's key for this reply (the `Idempotency-Key` header): a request repeated with
    /// the same key answers with the reply made the first time instead of sending another.
    #[serde(skip)]
    pub idempotency_key: Option<String>,
}

/// The longest idempotency key accepted, in bytes.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 255;

/// Checks an idempotency key: 1 to [`MAX_IDEMPOTENCY_KEY_BYTES`] printable ASCII characters.
fn checked_idempotency_key(key: &str) -> Result<&str, AgentError> {
    if key.is_empty()
        || key.len() > MAX_IDEMPOTENCY_KEY_BYTES
        || !key.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
    {
        return Err(AgentError::Invalid(format!(
            "the idempotency key must be 1 to {MAX_IDEMPOTENCY_KEY_BYTES} printable ASCII characters"
        )));
    }
    Ok(key)
}

/// A ticket with its customer and its messages, as the agent sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TicketView {
    /// The ticket.
    #[serde(flatten)]
    pub ticket: Ticket,
    /// The customer.
    pub contact: Option<Contact>,
    /// The messages, oldest first.
    pub messages: Vec<Message>,
    /// Whether the ticket can be answered now, per channel and visibility it can be answered
    /// on, judged when the ticket is read.
    pub reply_windows: Vec<ReplyWindow>,
    /// Its assignment, tags, priority, SLA clock, personal-data flag and similar tickets (when
    /// the desk keeps workflows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow: Option<WorkflowView>,
}

/// How long an attachment link works.
pub const ATTACHMENT_LINK_LIFETIME: TimeDelta = TimeDelta::minutes(15);

/// A short-lived link to Crossdesk's copy of an attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttachmentLink {
    /// Where to get it (a pre-signed S3 URL in AWS; a signed `/media/…` path locally).
    pub url: String,
    /// When the link stops working.
    pub expires_at: DateTime<Utc>,
    /// The file's type as stored.
    pub content_type: String,
    /// Whether the link displays it (plain images, video, audio) rather than downloading it.
    pub inline: bool,
    /// Its size in bytes.
    pub size: Option<u64>,
    /// Its SHA-256 (hex), to check the download.
    pub sha256: String,
}

/// A ticket in a list, with its customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TicketSummary {
    /// The ticket.
    #[serde(flatten)]
    pub ticket: Ticket,
    /// The customer.
    pub contact: Option<Contact>,
    /// Its working state (when the desk keeps workflows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workflow: Option<WorkflowView>,
}

/// The agents' use cases over a store and the outbound queue.
#[derive(Clone)]
pub struct AgentDesk {
    store: Arc<dyn TicketStore>,
    outbound: Arc<dyn OutboundQueue>,
    clock: Arc<dyn Clock>,
    events: Option<Arc<dyn EventQueue>>,
    capabilities: ReplyCapabilities,
    media: Option<Arc<dyn MediaStore>>,
    workflow: Option<Arc<DeskWorkflow>>,
}

impl AgentDesk {
    /// A desk over the given store, outbound queue and clock.
    pub fn new(
        store: Arc<dyn TicketStore>,
        outbound: Arc<dyn OutboundQueue>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        AgentDesk {
            store,
            outbound,
            clock,
            events: None,
            capabilities: ReplyCapabilities::default(),
            media: None,
            workflow: None,
        }
    }

    /// The same desk with the workflow use cases: assignment, tags, notes, SLAs, similar
    /// tickets, handoff, contacts across channels ([`crate::agent_workflow`]).
    pub fn with_workflow(mut self, workflow: Arc<DeskWorkflow>) -> Self {
        self.workflow = Some(workflow);
        self
    }

    pub(crate) fn desk_workflow(&self) -> Option<&DeskWorkflow> {
        self.workflow.as_deref()
    }

    pub(crate) fn store(&self) -> &Arc<dyn TicketStore> {
        &self.store
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub(crate) fn reply_capabilities(&self) -> ReplyCapabilities {
        self.capabilities
    }

    /// The same desk, linking attachments to the copies in this media store.
    pub fn with_media(mut self, media: Arc<dyn MediaStore>) -> Self {
        self.media = Some(media);
        self
    }

    /// A short-lived link ([`ATTACHMENT_LINK_LIFETIME`]) to Crossdesk's copy of a message's
    /// attachment (`index` counts from 0). Plain images, video and audio are linked for inline
    /// display, everything else as a download.
    pub async fn attachment_link(
        &self,
        ticket: &TicketId,
        message: &MessageId,
        index: usize,
    ) -> Result<AttachmentLink, AgentError> {
        let messages = self.store.list_messages(ticket).await?;
        let message = messages
            .iter()
            .find(|m| &m.id == message)
            .ok_or_else(|| AgentError::NotFound(format!("message {message} in ticket {ticket}")))?;
        let attachment = message.attachments.get(index).ok_or_else(|| {
            AgentError::NotFound(format!("attachment {index} of message {}", message.id))
        })?;
        let Some(sha256) = attachment.object_ref.as_deref().and_then(media_ref_digest) else {
            let why = match &attachment.fetch_error {
                Some(error) => format!("Crossdesk holds no copy of this attachment: {error}"),
                None => "Crossdesk holds no copy of this attachment (only the platform's link)"
                    .to_string(),
            };
            return Err(AgentError::NotFound(why));
        };
        let media = self.media.as_ref().ok_or_else(|| {
            AgentError::Unavailable("attachment copies are not configured".to_string())
        })?;
        let stored_type = attachment
            .content_type
            .as_deref()
            .unwrap_or(UNKNOWN_CONTENT_TYPE);
        let inline = displays_inline(stored_type);
        // A type not shown inline is served as an opaque download, whatever the file claims.
        let content_type = if inline {
            stored_type
        } else {
            UNKNOWN_CONTENT_TYPE
        };
        let expires_at = self.clock.now() + ATTACHMENT_LINK_LIFETIME;
        let url = media
            .link(
                sha256,
                content_type,
                attachment.name.as_deref(),
                inline,
                expires_at,
            )
            .await
            .map_err(|e| AgentError::Unavailable(e.to_string()))?;
        Ok(AttachmentLink {
            url,
            expires_at,
            content_type: stored_type.to_string(),
            inline,
            size: attachment.size,
            sha256: sha256.to_string(),
        })
    }

    /// The same desk judging reply windows with these capabilities (the page's Human Agent
    /// permission: set it from the same setting as the Facebook sender's).
    pub fn with_reply_capabilities(mut self, capabilities: ReplyCapabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// The same desk, putting `message.created` for each reply on this queue (best effort: the
    /// reply sender emits it again, with the same id, when it takes the reply).
    pub fn with_events(mut self, events: Arc<dyn EventQueue>) -> Self {
        self.events = Some(events);
        self
    }

    /// Tickets matching the filter, most recent activity first, with their customers.
    pub async fn list_tickets(
        &self,
        filter: &TicketFilter,
    ) -> Result<Vec<TicketSummary>, AgentError> {
        let tickets = self.store.list_tickets(filter).await?;
        let mut out = Vec::with_capacity(tickets.len());
        for ticket in tickets {
            let contact = self.store.get_contact(&ticket.contact_id).await?;
            let workflow = self.workflow_view(&ticket).await?;
            out.push(TicketSummary {
                ticket,
                contact,
                workflow,
            });
        }
        Ok(out)
    }

    /// One ticket with its customer and messages.
    pub async fn ticket(&self, id: &TicketId) -> Result<TicketView, AgentError> {
        // Messages first: a message and its ticket's update are written together, so the ticket
        // read after them reflects at least every message listed (stores without snapshot reads,
        // such as DynamoDB, never show a message with its ticket's older status).
        let messages = self.store.list_messages(id).await?;
        let ticket = self.existing(id).await?;
        let contact = self.store.get_contact(&ticket.contact_id).await?;
        let reply_windows = reply_window::reply_windows(
            &messages,
            contact.as_ref(),
            self.clock.now(),
            self.capabilities,
        );
        let workflow = self.workflow_view(&ticket).await?;
        Ok(TicketView {
            ticket,
            contact,
            messages,
            reply_windows,
            workflow,
        })
    }

    /// Sets a ticket's status.
    pub async fn set_status(
        &self,
        id: &TicketId,
        status: TicketStatus,
    ) -> Result<Ticket, AgentError> {
        let ticket = self
            .store
            .set_status(id, status, self.clock.now())
            .await?
            .ok_or_else(|| AgentError::NotFound(format!("ticket {id}")))?;
        self.note_status(&ticket).await;
        Ok(ticket)
    }

    /// Stores a reply as a queued outbound message and puts it on the outbound queue.
    pub async fn reply(
        &self,
        id: &TicketId,
        agent: &AgentRef,
        request: &ReplyRequest,
    ) -> Result<Message, AgentError> {
        let text = request.text.trim();
        if text.is_empty() {
            return Err(AgentError::Invalid("reply text is empty".into()));
        }
        if text.len() > MAX_REPLY_BYTES {
            return Err(AgentError::TooLarge(format!(
                "reply text is {} bytes; the limit is {MAX_REPLY_BYTES}",
                text.len()
            )));
        }
        let ticket = self.existing(id).await?;
        let reply_id = match &request.idempotency_key {
            Some(key) => {
                let reply_id = MessageId::for_reply(id, &agent.id, checked_idempotency_key(key)?);
                if let Some(made) = self.store.get_message(id, &reply_id).await? {
                    return self.repeated_reply(id, made, text).await;
                }
                reply_id
            }
            None => MessageId::generate(),
        };
        let messages = self.store.list_messages(id).await?;
        // Automatic mail (an auto-reply, a bounce) is never answered.
        let target = reply_window::reply_target(&messages, request.channel).ok_or_else(|| {
            AgentError::Conflict(match request.channel {
                Some(c) => format!("ticket {id} has no customer message on {c} to answer"),
                None => format!("ticket {id} has no customer message to answer"),
            })
        })?;
        let visibility = match (request.visibility, target.visibility) {
            (None, own) => own,
            (Some(Visibility::Public), Visibility::Private) => {
                return Err(AgentError::Invalid(format!(
                    "the customer wrote privately on {}; a public answer is not possible",
                    target.channel
                )))
            }
            (Some(v), _) => v,
        };
        let now = self.clock.now();
        // Refused here, before anything is stored or queued; the sender checks again when it
        // sends (a reply queued just before its window closed).
        let assess = |contact: Option<&Contact>| {
            reply_window::assess(
                target,
                visibility,
                &messages,
                contact,
                now,
                self.capabilities,
            )
        };
        if !assess(None).can_reply {
            // The contact is read only now, for the alternative the refusal names.
            let contact = self.store.get_contact(&ticket.contact_id).await?;
            let refusal = assess(contact.as_ref()).refusal().unwrap_or_default();
            info!(ticket_id = %id, channel = %target.channel, "reply refused: window closed");
            return Err(AgentError::WindowClosed(refusal));
        }
        let message = Message {
            id: reply_id,
            channel: target.channel,
            platform_message_id: None,
            conversation: target.conversation.clone(),
            direction: Direction::Outbound,
            event: MessageEvent::Created,
            author: Author {
                platform_id: agent.id.clone(),
                name: agent.name.clone(),
                email: None,
                handle: None,
            },
            text: text.to_string(),
            attachments: Vec::new(),
            visibility,
            sent_at: now,
            received_at: now,
            replies_to: target.platform_message_id.iter().cloned().collect(),
            ticket_ref: Some(id.clone()),
            subject: target.subject.clone(),
            email: None,
            raw: None,
            signature_unverified: false,
            personal_data: Vec::new(),
            internal_note: false,
            monitoring: false,
            delivery: Some(Delivery::queued()),
        };
        let route = Route {
            ticket: Some(id.clone()),
            conversation_key: message.conversation.key(message.channel).map_err(|e| {
                AgentError::Conflict(format!("the conversation cannot be answered: {e}"))
            })?,
            new_ticket: NewTicket {
                id: id.clone(),
                subject: ticket.subject.clone(),
                related_tickets: Vec::new(),
            },
        };
        let appended = self
            .store
            .append_message(&route, &message, &ticket.contact_id)
            .await?;
        if appended.duplicate {
            // The same key, asked for at the same time: the other request made the reply.
            let made = self
                .store
                .get_message(id, &message.id)
                .await?
                .ok_or_else(|| {
                    AgentError::Conflict(format!("reply {} is not in ticket {id}", message.id))
                })?;
            return self.repeated_reply(id, made, text).await;
        }
        if let Some(events) = &self.events {
            if let Err(e) = events
                .publish(&OutgoingEvent::message_created(id, &message))
                .await
            {
                warn!(ticket_id = %id, message_id = %message.id, error = %e, "message.created not queued here; the reply sender emits it");
            }
        }
        let job = OutboundJob {
            ticket_id: id.clone(),
            message_id: message.id.clone(),
        };
        if let Err(e) = self.outbound.enqueue(&job).await {
            error!(ticket_id = %id, message_id = %message.id, error = %e, "reply could not be queued");
            let failed = Delivery {
                status: DeliveryStatus::Failed,
                platform_id: None,
                error: Some(DeliveryError {
                    code: "queue_unavailable".into(),
                    reason: "the reply could not be queued for sending; send it again".into(),
                }),
                attempts: 0,
                sending_since: None,
            };
            // Best effort: the agent sees the failure in the answer either way.
            let queued = Delivery::queued();
            let recorded = self
                .store
                .set_delivery(id, &message.id, &queued, &failed)
                .await;
            if let (Ok(true), Some(events)) = (recorded, &self.events) {
                let event = OutgoingEvent::delivery_changed(
                    id,
                    &message.id,
                    message.channel,
                    &failed,
                    self.clock.now(),
                );
                if let Err(e) = events.publish(&event).await {
                    warn!(ticket_id = %id, message_id = %message.id, error = %e, "message.delivery_changed not queued");
                }
            }
            return Err(e.into());
        }
        info!(ticket_id = %id, message_id = %message.id, channel = %message.channel, "reply queued");
        self.note_response(&ticket, now).await;
        Ok(message)
    }

    /// The answer to a reply asked for again with its idempotency key: the reply made the first
    /// time, put on the outbound queue again while it is still queued (the sender's claim lets
    /// only one delivery send it), or a conflict when the key was used for another text.
    async fn repeated_reply(
        &self,
        id: &TicketId,
        made: Message,
        text: &str,
    ) -> Result<Message, AgentError> {
        if made.direction != Direction::Outbound || made.text != text {
            return Err(AgentError::Conflict(format!(
                "this idempotency key was used for another reply ({}) in ticket {id}",
                made.id
            )));
        }
        if made
            .delivery
            .as_ref()
            .is_some_and(|d| d.status == DeliveryStatus::Queued)
        {
            let job = OutboundJob {
                ticket_id: id.clone(),
                message_id: made.id.clone(),
            };
            self.outbound.enqueue(&job).await?;
        }
        info!(ticket_id = %id, message_id = %made.id, "reply asked for again: the first one answered");
        Ok(made)
    }

    pub(crate) async fn existing_ticket(&self, id: &TicketId) -> Result<Ticket, AgentError> {
        self.existing(id).await
    }

    async fn existing(&self, id: &TicketId) -> Result<Ticket, AgentError> {
        self.store
            .get_ticket(id)
            .await?
            .ok_or_else(|| AgentError::NotFound(format!("ticket {id}")))
    }
}
