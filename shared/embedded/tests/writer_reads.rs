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
    async fn list_first_messages(
        &self,
        ticket: &TicketId,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        self.count("list_first_messages");
        self.inner.list_first_messages(ticket, limit).await
    }
    async fn get_message(
        &self,
        ticket: &TicketId,
        message: &MessageId,
    ) -> Result<Option<Message>, StoreError> {
        self.count("get_message");
        self.inner.get_message(ticket, message).await
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

/// The counting store over `inner`, and the default desk over both.
fn counted(inner: Arc<SqliteStore>) -> (Arc<Counting>, DeskWorkflow) {
    let store = Arc::new(Counting {
        inner: inner.clone(),
        calls: Mutex::default(),
    });
    let desk = DeskWorkflow::from_settings(&DeskSettings::default(), inner, store.clone())
        .expect("the default desk");
    (store, desk)
}

#[test]
fn a_stored_message_reads_its_ticket_and_messages_once() {
    crossdesk_store_contract::run(
        || async { Arc::new(SqliteStore::in_memory().expect("in-memory store")) },
        |inner: Arc<SqliteStore>| async move {
            let (store, desk) = counted(inner);
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
            assert_eq!(calls.get("list_first_messages"), Some(&1), "{calls:?}");
            assert_eq!(calls.get("list_messages"), None, "{calls:?}");
            // The new contact is merged into nothing and has no ticket to continue.
            assert_eq!(calls.get("find_ticket_by_conversation"), None, "{calls:?}");

            // The customer writes again in the same conversation.
            // Its search text only adds the new message's terms, and its event reads the one
            // message: no list of messages is read.
            writer.write(&message("m2", 60)).await.expect("write");
            let calls = store.take();
            assert_eq!(calls.get("get_ticket"), Some(&1), "{calls:?}");
            assert_eq!(calls.get("list_first_messages"), None, "{calls:?}");
            assert_eq!(calls.get("list_messages"), None, "{calls:?}");
            assert_eq!(calls.get("get_message"), Some(&1), "{calls:?}");

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

#[test]
fn a_long_tickets_search_text_reads_its_first_messages_and_then_none() {
    crossdesk_store_contract::run(
        || async { Arc::new(SqliteStore::in_memory().expect("in-memory store")) },
        |inner: Arc<SqliteStore>| async move {
            let (store, desk) = counted(inner.clone());
            let events = Arc::new(Kinds::default());
            let writer = TicketWriter::new(store.clone())
                .with_triage(desk.triage.clone())
                .with_events(events.clone());
            // About 70 bytes of terms each: 64 messages fill a search text.
            let text = |n: usize| {
                format!(
                    "parcel{n} damaged{n} refund{n} invoice{n} delivery{n} address{n} package{n}"
                )
            };
            // Sent in reverse: each new message goes first in the ticket's order.
            let count = 300;
            let mut last = None;
            for n in 0..count {
                let m = MessageBuilder::chat("s1", "v1", &format!("m{n}"))
                    .text(&text(n))
                    .at(10_000 - n as i64)
                    .build();
                last = Some(writer.write(&m).await.expect("write"));
            }
            let ticket = match last.unwrap() {
                crossdesk_core::writer::WriteOutcome::Stored { ticket_id, .. } => ticket_id,
                other => panic!("{other:?}"),
            };
            let subject = inner.get_ticket(&ticket).await.unwrap().unwrap().subject;
            let texts: Vec<String> = (0..count).rev().map(text).collect();
            let expected = crossdesk_core::similar::search_text(
                std::iter::once(subject.as_str()).chain(texts.iter().map(String::as_str)),
            );
            assert!(expected.len() > crossdesk_core::similar::SEARCH_TEXT_MAX_BYTES - 40);
            use crossdesk_core::workflow::WorkflowStore;
            let workflow = inner.workflow(&ticket).await.unwrap().unwrap().value;
            assert_eq!(workflow.search_text, expected);

            // One more, sent after them all: the search text is settled (full before it), so
            // no message is read for it.
            store.take();
            let m = MessageBuilder::chat("s1", "v1", "m-last")
                .text("parcel-last")
                .at(20_000)
                .build();
            writer.write(&m).await.expect("write");
            let calls = store.take();
            assert_eq!(calls.get("list_first_messages"), None, "{calls:?}");
            assert_eq!(calls.get("list_messages"), None, "{calls:?}");
            // Its event reads the one message, not the 300 before it.
            assert_eq!(calls.get("get_message"), Some(&1), "{calls:?}");
            assert_eq!(
                events.0.lock().unwrap().last(),
                Some(&EventType::MessageCreated)
            );
            let workflow = inner.workflow(&ticket).await.unwrap().unwrap().value;
            assert_eq!(workflow.search_text, expected);

            // One sent before them all comes first: recomputed from the first messages only.
            let m = MessageBuilder::chat("s1", "v1", "m-early")
                .text("voucher")
                .at(1)
                .build();
            writer.write(&m).await.expect("write");
            let calls = store.take();
            assert_eq!(calls.get("list_first_messages"), Some(&1), "{calls:?}");
            assert_eq!(calls.get("list_messages"), None, "{calls:?}");
            let expected = crossdesk_core::similar::search_text(
                [subject.as_str(), "voucher"]
                    .into_iter()
                    .chain(texts.iter().map(String::as_str)),
            );
            let workflow = inner.workflow(&ticket).await.unwrap().unwrap().value;
            assert_eq!(workflow.search_text, expected);
            assert!(workflow.search_text.contains("voucher"));
        },
    );
}

#[test]
fn a_customer_message_sent_last_extends_the_search_text_without_reading_messages() {
    crossdesk_store_contract::run(
        || async { Arc::new(SqliteStore::in_memory().expect("in-memory store")) },
        |inner: Arc<SqliteStore>| async move {
            use crossdesk_core::similar::search_text_filled;
            use crossdesk_core::workflow::WorkflowStore;
            let (store, desk) = counted(inner.clone());
            let writer = TicketWriter::new(store.clone()).with_triage(desk.triage.clone());
            // Stores without the triage: a writer that died before updating the workflow.
            let died = TicketWriter::new(store.clone());
            // About 30 bytes of terms each: some 130 messages fill a search text.
            let text = |n: usize| format!("parcel{n} damaged{n} refund{n} invoice{n}");
            let mut sent: Vec<(i64, String)> = Vec::new();
            let mut ticket = None;
            for n in 0..200usize {
                // Message 120 was sent before all the others: it cannot only be added.
                let at = if n == 120 { 5 } else { 10 + 10 * n as i64 };
                let m = MessageBuilder::chat("s1", "v1", &format!("m{n}"))
                    .text(&text(n))
                    .at(at)
                    .build();
                if n == 50 {
                    died.write(&m).await.expect("write");
                    store.take();
                }
                let outcome = writer.write(&m).await.expect("write");
                let calls = store.take();
                sent.push((at, text(n)));
                match outcome {
                    crossdesk_core::writer::WriteOutcome::Stored { ticket_id, .. }
                    | crossdesk_core::writer::WriteOutcome::Duplicate { ticket_id, .. } => {
                        ticket = Some(ticket_id)
                    }
                    other => panic!("{other:?}"),
                }
                let ticket = ticket.as_ref().unwrap();
                let read = calls.get("list_first_messages").copied().unwrap_or(0)
                    + calls.get("list_messages").copied().unwrap_or(0);
                let workflow = inner.workflow(ticket).await.unwrap().unwrap().value;
                let subject = inner.get_ticket(ticket).await.unwrap().unwrap().subject;
                let mut in_order = sent.clone();
                in_order.sort_by_key(|(at, _)| *at);
                let (expected, full_at) = search_text_filled(
                    std::iter::once(subject.as_str())
                        .chain(in_order.iter().map(|(_, text)| text.as_str())),
                );
                assert_eq!(workflow.search_text, expected, "after message {n}");
                let settled = full_at.map(|at| crossdesk_store_contract::at(in_order[at - 1].0));
                assert_eq!(
                    workflow.search_text_settled_at, settled,
                    "after message {n}"
                );
                match n {
                    // The first message, and the one sent before the others (its first
                    // messages do not fill the search text, so all are read).
                    0 => assert_eq!(read, 1, "message {n}: {calls:?}"),
                    120 => assert_eq!(read, 2, "message {n}: {calls:?}"),
                    // The redelivery heals the workflow the dead writer left behind.
                    _ => assert_eq!(read, 0, "message {n}: {calls:?}"),
                }
            }
            let workflow = inner
                .workflow(ticket.as_ref().unwrap())
                .await
                .unwrap()
                .unwrap()
                .value;
            assert!(workflow.search_text_settled_at.is_some(), "filled up");
            assert_eq!(workflow.search_text_cover, None);
        },
    );
}
