//! Benchmarks of the ticket writer's threading decision: [`TicketWriter::write`] for one
//! normalized message, from its routing (edit/removal, references, named ticket, conversation
//! key) through contact resolution to the store's append.
//!
//! Each scenario runs over two stores:
//! - `in_memory`: a minimal [`TicketStore`] of hash maps defined below, so the time is the
//!   writer's own work (keys, subject, identities, ids) plus a few map look-ups;
//! - `sqlite_in_memory`: the local stack's [`SqliteStore`] on an in-memory database, so the time
//!   is what the local stack's writer pays per message (SQL transactions and the hop to the
//!   blocking thread pool included; no disk, no fsync).
//!
//! Every scenario is checked once before it is measured (it must give the expected outcome).
//! Run with `cargo bench -p crossdesk-core --bench threading` or `bench/run`.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use crossdesk_core::writer::{TicketWriter, WriteOutcome};
use crossdesk_core::{
    Appended, Author, ChannelKind, Contact, ContactId, Conversation, ConversationKey, Delivery,
    Direction, EmailAddress, EmailDetails, Identity, Message, MessageEvent, MessageId, RawRef,
    ResolvedContact, Revision, Route, StoreError, Ticket, TicketFilter, TicketId, TicketStatus,
    TicketStore, Visibility,
};
use crossdesk_embedded::SqliteStore;
use tokio::runtime::Runtime;

/// The Facebook page every Messenger message is sent to.
const PAGE_ID: &str = "PAGE_ID_100200300";
/// The Message-ID of the mail that starts the benchmark's email thread.
const ROOT_MAIL_ID: &str = "CAF=bench-root@mail.example.com";

/// The fixed clock: every message is sent and received at this instant.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_165_800, 0).expect("a valid fixed time")
}

/// A customer's Messenger text to the page, as the Facebook channel normalizes it.
fn messenger(psid: &str, mid: &str) -> Message {
    Message {
        id: MessageId::generate(),
        channel: ChannelKind::Facebook,
        platform_message_id: Some(mid.to_string()),
        conversation: Conversation::DirectThread {
            account_id: PAGE_ID.to_string(),
            user_id: psid.to_string(),
        },
        direction: Direction::Inbound,
        event: MessageEvent::Created,
        author: Author {
            platform_id: psid.to_string(),
            name: Some("Alex Example".to_string()),
            email: None,
            handle: None,
        },
        text: "Hi, my invoice shows the wrong address. Can you fix it?".to_string(),
        attachments: Vec::new(),
        visibility: Visibility::Private,
        sent_at: now(),
        received_at: now(),
        replies_to: Vec::new(),
        ticket_ref: None,
        subject: None,
        email: None,
        raw: Some(RawRef::of(mid.as_bytes())),
        signature_unverified: false,
        personal_data: Vec::new(),
        internal_note: false,
        monitoring: false,
        delivery: None,
    }
}

/// A customer's mail in the benchmark's thread, as the email channel normalizes it: the root
/// when `in_reply_to` is `None`, else a reply naming that Message-ID.
fn mail(message_id: &str, in_reply_to: Option<&str>) -> Message {
    let address = EmailAddress::parse("alex@example.com").expect("a valid address");
    let parents: Vec<String> = in_reply_to.map(str::to_string).into_iter().collect();
    Message {
        id: MessageId::generate(),
        channel: ChannelKind::Email,
        platform_message_id: Some(message_id.to_string()),
        conversation: Conversation::EmailThread {
            root_message_id: ROOT_MAIL_ID.to_string(),
        },
        direction: Direction::Inbound,
        event: MessageEvent::Created,
        author: Author {
            platform_id: address.to_string(),
            name: Some("Alex Example".to_string()),
            email: Some(address.clone()),
            handle: None,
        },
        text: "Thanks, that worked.".to_string(),
        attachments: Vec::new(),
        visibility: Visibility::Private,
        sent_at: now(),
        received_at: now(),
        replies_to: parents.clone(),
        ticket_ref: None,
        subject: Some("Re: Invoice address wrong".to_string()),
        email: Some(EmailDetails {
            message_id: message_id.to_string(),
            in_reply_to: parents.clone(),
            references: parents,
            to: vec![EmailAddress::parse("support@sample.example").expect("a valid address")],
            quoted_text: Some("> We have corrected the address.".to_string()),
            ..EmailDetails::default()
        }),
        raw: Some(RawRef::of(message_id.as_bytes())),
        signature_unverified: false,
        personal_data: Vec::new(),
        internal_note: false,
        monitoring: false,
        delivery: None,
    }
}

/// One kind of message the writer places, and the outcome it must have.
#[derive(Debug, Clone, Copy)]
enum Scenario {
    /// A Messenger text from a customer never seen: a new contact and a new ticket.
    NewConversation,
    /// A new Messenger text in a conversation that has a ticket: joins it by conversation key.
    ExistingConversation,
    /// A Messenger text delivered again: recognized by its platform id, stored once.
    Duplicate,
    /// A mail whose `In-Reply-To` names a stored mail: joins that mail's ticket.
    EmailReply,
}

impl Scenario {
    /// Every scenario, in report order.
    const ALL: [Scenario; 4] = [
        Scenario::NewConversation,
        Scenario::ExistingConversation,
        Scenario::Duplicate,
        Scenario::EmailReply,
    ];

    /// The scenario's name in benchmark ids.
    fn name(self) -> &'static str {
        match self {
            Scenario::NewConversation => "messenger_new_conversation",
            Scenario::ExistingConversation => "messenger_existing_conversation",
            Scenario::Duplicate => "messenger_duplicate",
            Scenario::EmailReply => "email_reply_by_in_reply_to",
        }
    }

    /// Stores what the scenario's messages thread into; returns that ticket, if any.
    async fn prepare(self, writer: &TicketWriter) -> Option<TicketId> {
        let seed = match self {
            Scenario::NewConversation => return None,
            Scenario::ExistingConversation | Scenario::Duplicate => {
                messenger("PSID_known", "m_seed")
            }
            Scenario::EmailReply => mail(ROOT_MAIL_ID, None),
        };
        match writer
            .write(&seed)
            .await
            .expect("the seed message is stored")
        {
            WriteOutcome::Stored { ticket_id, .. } => Some(ticket_id),
            other => panic!("seeding {}: unexpected {other:?}", self.name()),
        }
    }

    /// The `n`-th message of the scenario.
    fn message(self, n: u64) -> Message {
        match self {
            Scenario::NewConversation => messenger(&format!("PSID_{n}"), &format!("m_new_{n}")),
            Scenario::ExistingConversation => messenger("PSID_known", &format!("m_next_{n}")),
            Scenario::Duplicate => messenger("PSID_known", "m_seed"),
            Scenario::EmailReply => mail(
                &format!("CAF=bench-reply-{n}@mail.example.com"),
                Some(ROOT_MAIL_ID),
            ),
        }
    }

    /// Whether `outcome` is what the scenario must produce (`seeded` is its prepared ticket).
    fn expects(self, outcome: &WriteOutcome, seeded: Option<&TicketId>) -> bool {
        match (self, outcome) {
            (
                Scenario::NewConversation,
                WriteOutcome::Stored {
                    created_ticket: true,
                    ..
                },
            ) => true,
            (
                Scenario::ExistingConversation | Scenario::EmailReply,
                WriteOutcome::Stored {
                    ticket_id,
                    created_ticket: false,
                    ..
                },
            )
            | (Scenario::Duplicate, WriteOutcome::Duplicate { ticket_id, .. }) => {
                Some(ticket_id) == seeded
            }
            _ => false,
        }
    }
}

/// Measures every scenario over fresh stores made by `store`.
fn scenarios(
    c: &mut Criterion,
    runtime: &Runtime,
    store_name: &str,
    store: impl Fn() -> Arc<dyn TicketStore>,
) {
    let mut group = c.benchmark_group("writer");
    for scenario in Scenario::ALL {
        let writer = TicketWriter::new(store());
        let seeded = runtime.block_on(scenario.prepare(&writer));
        let outcome = runtime
            .block_on(writer.write(&scenario.message(0)))
            .expect("the first message is written");
        assert!(
            scenario.expects(&outcome, seeded.as_ref()),
            "{store_name} {}: unexpected {outcome:?}",
            scenario.name()
        );
        let mut n = 0;
        group.bench_function(BenchmarkId::new(store_name, scenario.name()), |b| {
            b.iter_batched(
                || {
                    n += 1;
                    scenario.message(n)
                },
                |message| {
                    let outcome = runtime.block_on(writer.write(black_box(&message)));
                    black_box(outcome.expect("the message is written"))
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

/// The writer over both stores.
fn writer(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a tokio runtime");
    scenarios(c, &runtime, "in_memory", || Arc::new(MapStore::default()));
    scenarios(c, &runtime, "sqlite_in_memory", || {
        Arc::new(SqliteStore::in_memory().expect("an in-memory SQLite store"))
    });
}

/// Short runs: the whole `bench/run` stays within a few minutes on two cores.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .without_plots()
}

criterion_group! {
    name = benches;
    config = config();
    targets = writer
}
criterion_main!(benches);

// ---- a minimal in-memory store ----

/// A [`TicketStore`] of hash maps holding only what the writer consults: platform ids,
/// conversation keys, contacts by identity and ticket headers. Message bodies are not kept, and
/// the agent-side operations the writer never calls are refused.
#[derive(Default)]
struct MapStore {
    state: Mutex<MapState>,
}

/// The maps behind [`MapStore`].
#[derive(Default)]
struct MapState {
    /// `(channel, platform id)` → the stored message and its ticket.
    messages: HashMap<(ChannelKind, String), (TicketId, MessageId)>,
    /// Conversation key → its ticket.
    conversations: HashMap<ConversationKey, TicketId>,
    /// Identity → contact.
    contacts: HashMap<Identity, ContactId>,
    /// Ticket headers.
    tickets: HashMap<TicketId, Ticket>,
}

impl MapStore {
    /// The maps, locked (a panic while holding them cannot leave them half-written here).
    fn state(&self) -> MutexGuard<'_, MapState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The answer to the operations the writer never calls.
fn not_benchmarked(operation: &str) -> StoreError {
    StoreError::Rejected(format!("{operation} is not part of the benchmark store"))
}

#[async_trait]
impl TicketStore for MapStore {
    async fn find_ticket_by_conversation(
        &self,
        key: &ConversationKey,
    ) -> Result<Option<TicketId>, StoreError> {
        Ok(self.state().conversations.get(key).cloned())
    }

    async fn find_contact_by_identity(
        &self,
        _identity: &Identity,
    ) -> Result<Option<ContactId>, StoreError> {
        Err(not_benchmarked("find_contact_by_identity"))
    }

    async fn find_ticket_by_platform_ids(
        &self,
        channel: ChannelKind,
        platform_ids: &[String],
    ) -> Result<Option<TicketId>, StoreError> {
        let state = self.state();
        Ok(platform_ids.iter().find_map(|id| {
            state
                .messages
                .get(&(channel, id.clone()))
                .map(|(ticket, _)| ticket.clone())
        }))
    }

    async fn resolve_contact(
        &self,
        identities: &[Identity],
        _name: Option<&str>,
        _now: DateTime<Utc>,
    ) -> Result<ResolvedContact, StoreError> {
        let mut state = self.state();
        let found = identities
            .iter()
            .find_map(|i| state.contacts.get(i).cloned());
        let created = found.is_none();
        let contact = found.unwrap_or_else(ContactId::generate);
        for identity in identities {
            state
                .contacts
                .entry(identity.clone())
                .or_insert_with(|| contact.clone());
        }
        Ok(ResolvedContact {
            id: contact,
            created,
        })
    }

    async fn append_message(
        &self,
        route: &Route,
        message: &Message,
        contact: &ContactId,
    ) -> Result<Appended, StoreError> {
        let mut state = self.state();
        let platform_key = message
            .platform_message_id
            .clone()
            .map(|id| (message.channel, id));
        if let Some((ticket_id, message_id)) =
            platform_key.as_ref().and_then(|k| state.messages.get(k))
        {
            return Ok(Appended {
                ticket_id: ticket_id.clone(),
                message_id: message_id.clone(),
                created_ticket: false,
                duplicate: true,
            });
        }
        let existing = route
            .ticket
            .clone()
            .or_else(|| state.conversations.get(&route.conversation_key).cloned());
        let created_ticket = existing.is_none();
        let ticket_id = existing.unwrap_or_else(|| route.new_ticket.id.clone());
        state
            .conversations
            .entry(route.conversation_key.clone())
            .or_insert_with(|| ticket_id.clone());
        let ticket = state
            .tickets
            .entry(ticket_id.clone())
            .or_insert_with(|| Ticket {
                id: ticket_id.clone(),
                status: TicketStatus::Open,
                channel: message.channel,
                subject: route.new_ticket.subject.clone(),
                contact_id: contact.clone(),
                conversation_key: route.conversation_key.clone(),
                created_at: message.received_at,
                updated_at: message.received_at,
                preview: String::new(),
                message_count: 0,
                related_tickets: Vec::new(),
            });
        ticket.message_count += 1;
        ticket.updated_at = message.received_at;
        ticket.preview = crossdesk_core::first_line(&message.text, 140);
        if let Some(key) = platform_key {
            state
                .messages
                .insert(key, (ticket_id.clone(), message.id.clone()));
        }
        Ok(Appended {
            ticket_id,
            message_id: message.id.clone(),
            created_ticket,
            duplicate: false,
        })
    }

    async fn revise_message(
        &self,
        channel: ChannelKind,
        platform_message_id: &str,
        _revision: &Revision,
    ) -> Result<Option<(TicketId, MessageId)>, StoreError> {
        Ok(self
            .state()
            .messages
            .get(&(channel, platform_message_id.to_string()))
            .cloned())
    }

    async fn get_ticket(&self, id: &TicketId) -> Result<Option<Ticket>, StoreError> {
        Ok(self.state().tickets.get(id).cloned())
    }

    async fn list_tickets(&self, _filter: &TicketFilter) -> Result<Vec<Ticket>, StoreError> {
        Err(not_benchmarked("list_tickets"))
    }

    async fn list_messages(&self, _ticket: &TicketId) -> Result<Vec<Message>, StoreError> {
        Err(not_benchmarked("list_messages"))
    }

    async fn get_contact(&self, _id: &ContactId) -> Result<Option<Contact>, StoreError> {
        Err(not_benchmarked("get_contact"))
    }

    async fn set_status(
        &self,
        _ticket: &TicketId,
        _status: TicketStatus,
        _now: DateTime<Utc>,
    ) -> Result<Option<Ticket>, StoreError> {
        Err(not_benchmarked("set_status"))
    }

    async fn set_delivery(
        &self,
        _ticket: &TicketId,
        _message: &MessageId,
        _expected: &Delivery,
        _delivery: &Delivery,
    ) -> Result<bool, StoreError> {
        Err(not_benchmarked("set_delivery"))
    }
}
