//! Outgoing events: what Crossdesk tells other systems (the integration webhook, later the
//! notification webhook) about tickets and messages.
//!
//! Every event is `{"id","type","created_at","data":{…}}`. Its id is derived from what happened
//! (the event type, the ticket or message, the new delivery status), never random, so emitting
//! the same event twice (a writer retried after dying between its store write and its emit) puts
//! two copies of one event on the queue, and the sender delivers it once per endpoint: it records
//! each (event, endpoint) delivery in an [`EventLedger`] and skips what is recorded.
//!
//! Producers (the ticket writer, the agent desk, the reply sender) put events on an
//! [`EventQueue`] after their store write; a sender drains it. An event the sender gives up on is
//! kept in the ledger as a [`FailedEvent`], to be listed and replayed.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::ids::{MessageId, TicketId};
use crate::model::{ChannelKind, Delivery, DeliveryStatus, Message, Ticket};
use crate::ports::{QueueError, StoreError};
use crate::workflow::TicketWorkflow;

/// A string that is not an event id.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("`{0}` is not an event id (`evt_` and 32 hex digits)")]
pub struct InvalidEventId(pub String);

/// An event's id: `evt_` and 32 hex digits, derived from what the event says happened.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventId(String);

impl EventId {
    /// The id of an event of `kind` about `parts`: the first 128 bits of
    /// SHA-256(`kind` `\n` `part` `\n` …), in hex. The same inputs give the same id.
    pub fn derive(kind: EventType, parts: &[&str]) -> Self {
        let mut hash = Sha256::new();
        hash.update(kind.as_str().as_bytes());
        for part in parts {
            hash.update(b"\n");
            hash.update(part.as_bytes());
        }
        EventId(format!("evt_{}", hex::encode(&hash.finalize()[..16])))
    }

    /// Parses `evt_<32 lowercase hex>`.
    pub fn parse(s: &str) -> Result<Self, InvalidEventId> {
        let valid = s.strip_prefix("evt_").is_some_and(|hex| {
            hex.len() == 32
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if valid {
            Ok(EventId(s.to_string()))
        } else {
            Err(InvalidEventId(s.to_string()))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for EventId {
    type Error = InvalidEventId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        EventId::parse(&s)
    }
}

impl From<EventId> for String {
    fn from(id: EventId) -> Self {
        id.0
    }
}

/// What an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// A ticket was created (by its first message).
    #[serde(rename = "ticket.created")]
    TicketCreated,
    /// A message was stored: a customer's, an agent's reply, or the page's sent outside Crossdesk.
    #[serde(rename = "message.created")]
    MessageCreated,
    /// A Crossdesk reply left `queued`: `sent`, `failed` or `unknown`.
    #[serde(rename = "message.delivery_changed")]
    MessageDeliveryChanged,
    /// A ticket reached its first-response due time without an answer.
    #[serde(rename = "sla.breached")]
    SlaBreached,
    /// A chat's latest customer message has waited longer than the notification settings allow
    /// for an agent's answer (raised by [`crate::notify::ChatWaitingCheck`]).
    #[serde(rename = "chat.waiting")]
    ChatWaiting,
}

impl EventType {
    /// The type's name on the wire (`ticket.created`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::TicketCreated => "ticket.created",
            EventType::MessageCreated => "message.created",
            EventType::MessageDeliveryChanged => "message.delivery_changed",
            EventType::SlaBreached => "sla.breached",
            EventType::ChatWaiting => "chat.waiting",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event, exactly as it is posted: `{"id","type","created_at","data"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutgoingEvent {
    /// Deterministic id: the same happening always has the same id.
    pub id: EventId,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: EventType,
    /// When it happened (the ticket's creation, the message's receipt, the delivery change).
    pub created_at: DateTime<Utc>,
    /// The details, by type.
    pub data: serde_json::Value,
}

impl OutgoingEvent {
    /// `ticket.created`: `data` = `{"ticket": Ticket, "message": Message}` (the first message).
    pub fn ticket_created(ticket: &Ticket, first_message: &Message) -> Self {
        OutgoingEvent {
            id: EventId::derive(EventType::TicketCreated, &[ticket.id.as_str()]),
            kind: EventType::TicketCreated,
            created_at: ticket.created_at,
            data: json!({ "ticket": ticket, "message": first_message }),
        }
    }

    /// `message.created`: `data` = `{"ticket_id", "message": Message}`.
    pub fn message_created(ticket_id: &TicketId, message: &Message) -> Self {
        OutgoingEvent {
            id: EventId::derive(EventType::MessageCreated, &[message.id.as_str()]),
            kind: EventType::MessageCreated,
            created_at: message.received_at,
            data: json!({ "ticket_id": ticket_id, "message": message }),
        }
    }

    /// `message.delivery_changed`: `data` = `{"ticket_id", "message_id", "channel",
    /// "previous_status": "queued", "delivery": Delivery}`. The id is derived from the message
    /// and the new status: one event per status a reply reaches.
    pub fn delivery_changed(
        ticket_id: &TicketId,
        message_id: &MessageId,
        channel: ChannelKind,
        delivery: &Delivery,
        at: DateTime<Utc>,
    ) -> Self {
        let status = serde_json::to_value(delivery.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        OutgoingEvent {
            id: EventId::derive(
                EventType::MessageDeliveryChanged,
                &[message_id.as_str(), &status],
            ),
            kind: EventType::MessageDeliveryChanged,
            created_at: at,
            data: json!({
                "ticket_id": ticket_id,
                "message_id": message_id,
                "channel": channel,
                "previous_status": DeliveryStatus::Queued,
                "delivery": delivery,
            }),
        }
    }

    /// `sla.breached`: `data` = `{"ticket_id", "channel", "priority", "policy",
    /// "first_response_due", "assignee", "team"}`, created at the due time. The id is derived
    /// from the ticket and the due time: one event per breach, however many watchers see it.
    pub fn sla_breached(workflow: &TicketWorkflow, due: DateTime<Utc>) -> Self {
        let due_text = due.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        OutgoingEvent {
            id: EventId::derive(
                EventType::SlaBreached,
                &[workflow.ticket_id.as_str(), &due_text],
            ),
            kind: EventType::SlaBreached,
            created_at: due,
            data: json!({
                "ticket_id": workflow.ticket_id,
                "channel": workflow.channel,
                "priority": workflow.priority,
                "policy": workflow.sla.policy,
                "first_response_due": due,
                "assignee": workflow.assignee,
                "team": workflow.team,
            }),
        }
    }

    /// The event as the JSON bytes that are posted and signed.
    pub fn to_body(&self) -> Vec<u8> {
        // Serializing a struct of strings, a timestamp and a JSON value cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The queue between the producers of events and their sender.
#[async_trait]
pub trait EventQueue: Send + Sync {
    /// Puts an event on the queue; returns only once it is durably accepted. Publishing an event
    /// that was published before is allowed (the sender delivers it once per endpoint).
    async fn publish(&self, event: &OutgoingEvent) -> Result<(), QueueError>;
}

/// One endpoint an event could not be delivered to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedEndpoint {
    /// The endpoint, without query string or credentials (safe to show).
    pub endpoint: String,
    /// The delivery id the endpoint saw in `X-Crossdesk-Delivery`.
    pub delivery_id: String,
    /// The last HTTP status, when the endpoint answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why it was given up on.
    pub reason: String,
}

/// An event the sender gave up on, kept for listing and replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedEvent {
    /// The event.
    pub event: OutgoingEvent,
    /// The endpoints it did not reach (the others have it).
    pub endpoints: Vec<FailedEndpoint>,
    /// How many delivery rounds were made.
    pub attempts: u32,
    /// When it was given up on.
    pub failed_at: DateTime<Utc>,
}

/// The most failed events one [`EventLedger::failed_events`] call returns.
pub const MAX_FAILED_LIST: usize = 200;

/// What the sender remembers about events: which endpoint has which event (so a redelivered
/// event is not posted again where it arrived) and which events it gave up on.
#[async_trait]
pub trait EventLedger: Send + Sync {
    /// Whether the event was delivered to the endpoint with this key.
    async fn is_delivered(&self, event: &EventId, endpoint_key: &str) -> Result<bool, StoreError>;

    /// Records that the event reached the endpoint; `false` when that was recorded before.
    async fn record_delivered(
        &self,
        event: &EventId,
        endpoint_key: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Keeps an event given up on (replacing an earlier record of the same event).
    async fn record_failed(&self, failed: &FailedEvent) -> Result<(), StoreError>;

    /// The events given up on, most recently failed first, at most `limit` (clamped to
    /// [`MAX_FAILED_LIST`]).
    async fn failed_events(&self, limit: usize) -> Result<Vec<FailedEvent>, StoreError>;

    /// One event given up on.
    async fn failed_event(&self, id: &EventId) -> Result<Option<FailedEvent>, StoreError>;

    /// Forgets an event given up on once it is queued again, if its record is still this
    /// failure (same `failed_at`: a newer failure of the replayed event is kept); `false` when
    /// it was not.
    async fn clear_failed(&self, failed: &FailedEvent) -> Result<bool, StoreError>;
}

/// Why events could not be published.
#[derive(Debug, Error)]
#[error("outgoing event {id} could not be queued: {source}")]
pub struct PublishError {
    /// The event.
    pub id: EventId,
    /// The queue's failure.
    #[source]
    pub source: QueueError,
}

impl PublishError {
    /// Whether publishing again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self.source, QueueError::Unavailable(_))
    }
}

/// Publishes events in order, stopping at the first that cannot be queued.
pub async fn publish_all(
    queue: &dyn EventQueue,
    events: &[OutgoingEvent],
) -> Result<(), PublishError> {
    for event in events {
        queue.publish(event).await.map_err(|source| PublishError {
            id: event.id.clone(),
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_derived_from_what_happened() {
        let a = EventId::derive(EventType::MessageCreated, &["msg_1"]);
        assert_eq!(a, EventId::derive(EventType::MessageCreated, &["msg_1"]));
        assert_ne!(a, EventId::derive(EventType::MessageCreated, &["msg_2"]));
        assert_ne!(a, EventId::derive(EventType::TicketCreated, &["msg_1"]));
        // Parts are separated: ("ab","c") is not ("a","bc").
        assert_ne!(
            EventId::derive(EventType::MessageDeliveryChanged, &["ab", "c"]),
            EventId::derive(EventType::MessageDeliveryChanged, &["a", "bc"])
        );
        assert_eq!(EventId::parse(a.as_str()).unwrap(), a);
    }

    #[test]
    fn a_known_id() {
        // sha256("ticket.created\nK3F9Q2XA"), first 16 bytes (computed with Python's hashlib).
        assert_eq!(
            EventId::derive(EventType::TicketCreated, &["K3F9Q2XA"]).as_str(),
            KNOWN_TICKET_CREATED_ID
        );
    }

    const KNOWN_TICKET_CREATED_ID: &str = "evt_44d7f318e4809a581f2e11d9e17e47f7";

    #[test]
    fn rejects_malformed_ids() {
        for bad in [
            "",
            "evt_",
            "evt_0123",
            "evt_0123456789ABCDEF0123456789abcdef",
            "msg_0123456789abcdef0123456789abcdef",
            "evt_0123456789abcdef0123456789abcdeg",
        ] {
            assert!(EventId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_sla_breach_is_one_event_per_ticket_and_due_time() {
        let at = DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z")
            .unwrap()
            .to_utc();
        let mut workflow = TicketWorkflow::new(
            TicketId::parse("K3F9Q2XA").unwrap(),
            crate::ContactId::generate(),
            ChannelKind::Twitter,
            at,
        );
        workflow.sla.policy = Some("public/normal".into());
        let a = OutgoingEvent::sla_breached(&workflow, at);
        workflow.assignee = Some("agent-7".into());
        assert_eq!(a.id, OutgoingEvent::sla_breached(&workflow, at).id);
        let later = OutgoingEvent::sla_breached(&workflow, at + chrono::Duration::minutes(1));
        assert_ne!(a.id, later.id, "a new due time is a new breach");
        let body: serde_json::Value = serde_json::from_slice(&a.to_body()).unwrap();
        assert_eq!(body["type"], "sla.breached");
        assert_eq!(body["created_at"], "2026-11-24T10:00:00Z");
        assert_eq!(body["data"]["ticket_id"], "K3F9Q2XA");
        assert_eq!(body["data"]["policy"], "public/normal");
        assert_eq!(body["data"]["channel"], "twitter");
        assert_eq!(body["data"]["priority"], "normal");
    }

    #[test]
    fn delivery_changes_differ_by_status() {
        let ticket = TicketId::parse("K3F9Q2XA").unwrap();
        let message = MessageId::generate();
        let at = Utc::now();
        let sent = Delivery {
            status: DeliveryStatus::Sent,
            platform_id: Some("m1".into()),
            ..Delivery::queued()
        };
        let failed = Delivery {
            status: DeliveryStatus::Failed,
            ..Delivery::queued()
        };
        let a = OutgoingEvent::delivery_changed(&ticket, &message, ChannelKind::Chat, &sent, at);
        let b = OutgoingEvent::delivery_changed(
            &ticket,
            &message,
            ChannelKind::Chat,
            &sent,
            at + chrono::Duration::seconds(5),
        );
        let c = OutgoingEvent::delivery_changed(&ticket, &message, ChannelKind::Chat, &failed, at);
        assert_eq!(a.id, b.id, "the same change twice is one event");
        assert_ne!(a.id, c.id);
        let body: serde_json::Value = serde_json::from_slice(&a.to_body()).unwrap();
        assert_eq!(body["type"], "message.delivery_changed");
        assert_eq!(body["data"]["delivery"]["status"], "sent");
        assert_eq!(body["data"]["previous_status"], "queued");
        assert_eq!(body["data"]["message_id"], message.as_str());
        let keys: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.len(), 4);
        for key in ["id", "type", "created_at", "data"] {
            assert!(keys.contains(&key), "{keys:?}");
        }
    }
}
