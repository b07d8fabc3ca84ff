//! The ticket writer's reads on the hot path, counted over the embedded store: after storing a
//! message, the triage and the events share one read of the ticket and one of its messages.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crossdesk_core::agent_workflow::DeskWorkflow;
use crossdesk_core::events::{EventQueue, EventType, OutgoingEvent};
use crossdesk_core::settings::DeskSettings;
use crossdesk_core::writer::TicketWriter;
use crossdesk_core::{
    Appended, ChannelKind, Contact, ContactId, ConversationKey, Delivery, Identity, Message,
    MessageId, QueueError, ResolvedContact, Revision, Route, StoreError, Ticket, TicketFilter,
    TicketId, TicketStatus, TicketStore,
};
use crossdesk_embedded::SqliteStore;
use crossdesk_store_contract::MessageBuilder;

/// The embedded store, counting the calls of each kind.
struct Counting {
    inner: Arc<SqliteStore>,
    calls: Mutex<HashMap<&'static str, usize>>,
}

impl Counting {
    fn count(&self, call: &'static str) {
        *self.calls.lock().unwrap().entry(call).or_default() += 1;
    }

    /// The calls of each kind since the last take.
    fn take(&self) -> HashMap<&'static str, usize> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

#[async_trait]
impl TicketStore for Counting {
    async fn find_ticket_by_platform_ids(
        &self,
        channel: ChannelKind,
        platform_ids: &[String],
    ) -> Result<Option<TicketId>, StoreError> {
        self.count("find_ticket_by_platform_ids");
        self.inner
            .find_ticket_by_platform_ids(channel, platform_ids)
            .await
    }
    async fn find_ticket_by_conversation(
        &self,
        key: &ConversationKey,
    ) -> Result<Option<TicketId>, StoreError> {
        self.count("find_ticket_by_conversation");
        self.inner.find_ticket_by_conversation(key).await
    }
    async fn find_contact_by_identity(
        &self,
        identity: &Identity,
    ) -> Result<Option<ContactId>, StoreError> {
        self.count("find_contact_by_identity");
        self.inner.find_contact_by_identity(identity).await
    }
    async fn resolve_contact(
        &self,
        identities: &[Identity],
        name: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<ResolvedContact, StoreError> {
        self.count("resolve_contact");
        self.inner.resolve_contact(identities, name, now).await
    }
    async fn append_message(
        &self,
        route: &Route,
        message: &Message,
        contact: &ContactId,
    ) -> Result<Appended, StoreError> {
        self.count("append_message");
        self.inner.append_message(route, message, contact).await
    }
    async fn revise_message(
        &self,
        channel: ChannelKind,
        platform_message_id: &str,
        revision: &Revision,
    ) -> Result<Option<(TicketId, MessageId)>, StoreError> {
        self.count("revise_message");
        self.inner
            .revise_message(channel, platform_message_id, revision)
            .await
    }
    async fn get_ticket(&self, id: &TicketId) -> Result<Option<Ticket>, StoreError> {
        self.count("get_ticket");
        self.inner.get_ticket(id).await
    }
    async fn list_tickets(&self, filter: &TicketFilter) -> Result<Vec<Ticket>, StoreError> {
        self.count("list_tickets");
        self.inner.list_tickets(filter).await
    }
    async fn list_messages(&self, ticket: &TicketId) -> Result<Vec<Message>, StoreError> {
        self.count("list_messages");
        self.inner.list_messages(ticket).await
    }
    async fn get_contact(&self, id: &ContactId) -> Result<Option<Contact>, StoreError> {
        self.count("get_contact");
        self.inner.get_contact(id).await
    }
    async fn set_status(
        &self,
        ticket: &TicketId,
        status: TicketStatus,
        now: DateTime<Utc>,
    ) -> Result<Option<Ticket>, StoreError> {
        self.count("set_status");
        self.inner.set_status(ticket, status, now).await
    }
    async fn set_delivery(
        &self,
        ticket: &TicketId,
        message: &MessageId,
        expected: &Delivery,
        delivery: &Delivery,
    ) -> Result<bool, StoreError> {
        self.count("set_delivery");
        self.inner
            .set_delivery(ticket, message, expected, delivery)
            .await
    }
}

/// Keeps the kinds of the events published.
#[derive(Default)]
struct Kinds(Mutex<Vec<EventType>>);

#[async_trait]
impl EventQueue for Kinds {
    async fn publish(&self, event: &OutgoingEvent) -> Result<(), QueueError> {
        self.0.lock().unwrap().push(event.kind);
        Ok(())
    }
}

#[test]
fn a_stored_message_reads_its_ticket_and_messages_once() {
    crossdesk_store_contract::run(
        || async { Arc::new(SqliteStore::in_memory().expect("in-memory store")) },
        |inner: Arc<SqliteStore>| async move {
            let store = Arc::new(Counting {
                inner: inner.clone(),
                calls: Mutex::default(),
            });
            let desk = DeskWorkflow::from_settings(&DeskSettings::default(), inner, store.clone())
                .expect("the default desk");
            let events = Arc::new(Kinds::default());
            let writer = TicketWriter::new(store.clone())
                .with_triage(desk.triage.clone())
                .with_events(events.clone());
            let message = |id: &str, secs| {
                MessageBuilder::chat("s1", "v1", id)
                    .text("Where is my order?")
                    .author_email("alex@example.com")
                    .at(secs)
                    .build()
            };

            // A new customer's first message: a new contact, a new ticket.
            writer.write(&message("m1", 0)).await.expect("write");
            let calls = store.take();
            assert_eq!(calls.get("get_ticket"), Some(&1), "{calls:?}");
            assert_eq!(calls.get("list_messages"), Some(&1), "{calls:?}");
            // The new contact is merged into nothing and has no ticket to continue.
            assert_eq!(calls.get("find_ticket_by_conversation"), None, "{calls:?}");

            // The customer writes again in the same conversation.
            writer.write(&message("m2", 60)).await.expect("write");
            let calls = store.take();
            assert_eq!(calls.get("get_ticket"), Some(&1), "{calls:?}");
            assert_eq!(calls.get("list_messages"), Some(&1), "{calls:?}");

            // The same events as ever.
            assert_eq!(
                *events.0.lock().unwrap(),
                [
                    EventType::TicketCreated,
                    EventType::MessageCreated,
                    EventType::MessageCreated
                ]
            );
        },
    );
}
