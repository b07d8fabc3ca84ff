//! What agents do with tickets: list, read, reply, change status. The HTTP agent API (local stack
//! and Lambda) is a thin layer over [`AgentDesk`].

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tracing::{error, info};

use crate::ids::{MessageId, TicketId};
use crate::model::{
    Author, ChannelKind, Contact, Delivery, DeliveryError, DeliveryStatus, Direction, Message,
    MessageEvent, OutboundJob, Ticket, TicketStatus, Visibility,
};
use crate::ports::{
    Clock, NewTicket, OutboundQueue, QueueError, Route, StoreError, TicketFilter, TicketStore,
};

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
    /// The request is larger than allowed.
    #[error("{0}")]
    TooLarge(String),
    /// A store or queue is unavailable; the agent can try again.
    #[error("service unavailable: {0}")]
    Unavailable(String),
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
}

/// A ticket in a list, with its customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TicketSummary {
    /// The ticket.
    #[serde(flatten)]
    pub ticket: Ticket,
    /// The customer.
    pub contact: Option<Contact>,
}

/// The agents' use cases over a store and the outbound queue.
#[derive(Clone)]
pub struct AgentDesk {
    store: Arc<dyn TicketStore>,
    outbound: Arc<dyn OutboundQueue>,
    clock: Arc<dyn Clock>,
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
        }
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
            out.push(TicketSummary { ticket, contact });
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
        Ok(TicketView {
            ticket,
            contact,
            messages,
        })
    }

    /// Sets a ticket's status.
    pub async fn set_status(
        &self,
        id: &TicketId,
        status: TicketStatus,
    ) -> Result<Ticket, AgentError> {
        self.store
            .set_status(id, status, self.clock.now())
            .await?
            .ok_or_else(|| AgentError::NotFound(format!("ticket {id}")))
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
        let messages = self.store.list_messages(id).await?;
        let target = messages
            .iter()
            .rev()
            // Automatic mail (an auto-reply, a bounce) is never answered.
            .filter(|m| {
                m.direction == Direction::Inbound
                    && m.event != MessageEvent::Removed
                    && !m.is_automatic()
            })
            .find(|m| request.channel.is_none_or(|c| c == m.channel))
            .ok_or_else(|| {
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
        let message = Message {
            id: MessageId::generate(),
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
        self.store
            .append_message(&route, &message, &ticket.contact_id)
            .await?;
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
            let _ = self
                .store
                .set_delivery(id, &message.id, &queued, &failed)
                .await;
            return Err(match e {
                QueueError::Unavailable(m) | QueueError::Rejected(m) => AgentError::Unavailable(m),
            });
        }
        info!(ticket_id = %id, message_id = %message.id, channel = %message.channel, "reply queued");
        Ok(message)
    }

    async fn existing(&self, id: &TicketId) -> Result<Ticket, AgentError> {
        self.store
            .get_ticket(id)
            .await?
            .ok_or_else(|| AgentError::NotFound(format!("ticket {id}")))
    }
}
