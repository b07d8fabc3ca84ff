//! The contract tests. Each takes a fresh, empty store and panics when the store breaks the
//! [`TicketStore`] contract. Most go through the real [`TicketWriter`] (the threading rules);
//! the rest call the store directly.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use crossdesk_core::writer::{TicketWriter, WriteOutcome};
use crossdesk_core::{
    first_line, Appended, ChannelKind, ContactId, ConversationKey, Delivery, DeliveryError,
    DeliveryStatus, Direction, Identity, Message, MessageEvent, MessageId, NewTicket, Route,
    StoreError, Ticket, TicketCursor, TicketFilter, TicketId, TicketStatus, TicketStore,
};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::builder::{at, email_threading, thread_key, MessageBuilder as M, SUPPORT_ADDRESS};

// ---------------------------------------------------------------------------------------------
// Helpers

/// The writer under test, knowing the contract's email thread key and support address.
fn writer(store: &Arc<dyn TicketStore>) -> TicketWriter {
    TicketWriter::new(Arc::clone(store)).with_email_threading(email_threading())
}

/// Writes a message the writer must store; returns (ticket, message, created_ticket).
async fn write_stored(writer: &TicketWriter, message: &Message) -> (TicketId, MessageId, bool) {
    match writer.write(message).await {
        Ok(WriteOutcome::Stored {
            ticket_id,
            message_id,
            created_ticket,
        }) => (ticket_id, message_id, created_ticket),
        other => panic!(
            "expected {:?} to be stored, got {other:?}",
            message.platform_message_id
        ),
    }
}

async fn ticket(store: &Arc<dyn TicketStore>, id: &TicketId) -> Ticket {
    store
        .get_ticket(id)
        .await
        .expect("get_ticket")
        .unwrap_or_else(|| panic!("ticket {id} should exist"))
}

async fn messages(store: &Arc<dyn TicketStore>, id: &TicketId) -> Vec<Message> {
    store.list_messages(id).await.expect("list_messages")
}

async fn all_tickets(store: &Arc<dyn TicketStore>) -> Vec<Ticket> {
    store
        .list_tickets(&TicketFilter {
            limit: 500,
            ..TicketFilter::default()
        })
        .await
        .expect("list_tickets")
}

fn key(message: &Message) -> ConversationKey {
    message
        .conversation
        .key(message.channel)
        .expect("a valid conversation key")
}

/// A route for a direct append: to `ticket` if given, else by conversation key or a new ticket.
fn route(message: &Message, ticket: Option<&TicketId>) -> Route {
    Route {
        ticket: ticket.cloned(),
        conversation_key: key(message),
        new_ticket: NewTicket {
            id: TicketId::generate(),
            subject: "direct append".to_string(),
            related_tickets: Vec::new(),
        },
    }
}

async fn contact_for(store: &Arc<dyn TicketStore>, message: &Message) -> ContactId {
    store
        .resolve_contact(&message.customer_identities(), None, message.received_at)
        .await
        .expect("resolve_contact")
        .id
}

fn ids(messages: &[Message]) -> Vec<Option<String>> {
    messages
        .iter()
        .map(|m| m.platform_message_id.clone())
        .collect()
}

fn identity(s: &str) -> Identity {
    Identity(s.to_string())
}

// ---------------------------------------------------------------------------------------------
// Threading

/// A message in a conversation the store has never seen creates an open ticket holding it.
pub async fn new_conversation_creates_a_ticket(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let m = M::facebook_dm("u1", "mid.1")
        .text("\n  My order is late  \nOrder 1234")
        .named("Alex Doe")
        .sent_received(0, 2)
        .build();
    let (ticket_id, message_id, created) = write_stored(&w, &m).await;
    assert!(
        created,
        "the first message of a conversation creates a ticket"
    );
    assert_eq!(message_id, m.id);

    let t = ticket(&store, &ticket_id).await;
    assert_eq!(t.id, ticket_id);
    assert_eq!(t.status, TicketStatus::Open);
    assert_eq!(t.channel, ChannelKind::Facebook);
    assert_eq!(t.subject, "My order is late");
    assert_eq!(t.conversation_key, key(&m));
    assert_eq!(t.created_at, m.received_at);
    assert_eq!(t.updated_at, m.received_at);
    assert_eq!(t.preview, "My order is late");
    assert_eq!(t.message_count, 1);

    let contact = store
        .get_contact(&t.contact_id)
        .await
        .expect("get_contact")
        .expect("the ticket's contact exists");
    assert_eq!(contact.name.as_deref(), Some("Alex Doe"));
    assert_eq!(contact.identities, vec![identity("facebook:u1")]);
    assert!(contact.emails.is_empty());

    assert_eq!(messages(&store, &ticket_id).await, vec![m]);
    assert_eq!(all_tickets(&store).await, vec![t]);
}

/// Messages with the same conversation key go to the same ticket; another conversation gets
/// its own.
pub async fn same_conversation_goes_to_the_same_ticket(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let first = M::facebook_dm("u1", "mid.1").text("first").at(0).build();
    let second = M::facebook_dm("u1", "mid.2")
        .text("second\nmore")
        .at(60)
        .build();
    let other = M::facebook_dm("u2", "mid.3").text("other").at(30).build();

    let (t1, _, created1) = write_stored(&w, &first).await;
    let (t2, _, created2) = write_stored(&w, &second).await;
    let (t3, _, created3) = write_stored(&w, &other).await;
    assert!(created1 && !created2 && created3);
    assert_eq!(t1, t2);
    assert_ne!(t1, t3);

    let t = ticket(&store, &t1).await;
    assert_eq!(t.message_count, 2);
    assert_eq!(t.created_at, at(0));
    assert_eq!(t.updated_at, at(60));
    assert_eq!(t.preview, "second");
    assert_eq!(t.subject, "first");
    assert_eq!(messages(&store, &t1).await, vec![first, second]);
    assert_eq!(messages(&store, &t3).await, vec![other]);
    assert_eq!(all_tickets(&store).await.len(), 2);
}

/// A message received late (older than the ticket's last activity) does not move
/// `updated_at` back.
pub async fn late_message_does_not_move_activity_back(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let newer = M::chat("s1", "v1", "c2").text("newer").at(100).build();
    let older = M::chat("s1", "v1", "c1").text("older").at(50).build();
    let (t, _, _) = write_stored(&w, &newer).await;
    write_stored(&w, &older).await;
    let t = ticket(&store, &t).await;
    assert_eq!(t.updated_at, at(100));
    assert_eq!(t.created_at, at(100));
    assert_eq!(t.message_count, 2);
    assert_eq!(ids(&messages(&store, &t.id).await), ids(&[older, newer]));
}

/// The first messages of a ticket are the start of its messages in their order (by time sent,
/// whatever the order of arrival).
pub async fn first_messages_are_the_start_of_the_messages(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let mut sent = Vec::new();
    for (n, at_second) in [(1, 40), (2, 10), (3, 30), (4, 20), (5, 50)] {
        let m = M::chat("s1", "v1", &format!("c{n}"))
            .text(&format!("message {n}"))
            .at(at_second)
            .build();
        write_stored(&w, &m).await;
        sent.push(m);
    }
    let t = all_tickets(&store).await[0].id.clone();
    let all = messages(&store, &t).await;
    assert_eq!(all.len(), 5);
    for limit in [0, 1, 3, 5, 6, 100] {
        let first = store
            .list_first_messages(&t, limit)
            .await
            .expect("list_first_messages");
        assert_eq!(ids(&first), ids(&all[..limit.min(5)]), "limit {limit}");
    }
    assert_eq!(
        ids(&store.list_first_messages(&t, 2).await.unwrap()),
        ids(&[sent[1].clone(), sent[3].clone()])
    );
}

/// A message is read by its ticket and id, as stored (an edit included); an unknown id, or the
/// id of another ticket's message, reads nothing.
pub async fn a_message_is_read_by_its_id(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let (t, first, _) = write_stored(&w, &M::chat("s1", "v1", "c1").text("hi").at(0).build()).await;
    let (_, second, _) = write_stored(
        &w,
        &M::chat("s1", "v1", "c2")
            .text("where is my order?")
            .at(10)
            .build(),
    )
    .await;
    let (other_ticket, other, _) =
        write_stored(&w, &M::chat("s2", "v2", "c3").text("hello").at(5).build()).await;
    assert_ne!(other_ticket, t);
    let all = messages(&store, &t).await;
    for id in [&first, &second] {
        let read = store.get_message(&t, id).await.expect("get_message");
        let listed = all.iter().find(|m| &m.id == id).cloned();
        assert!(listed.is_some());
        assert_eq!(read, listed);
    }
    let edit = M::chat("s1", "v1", "c2")
        .edited("where is order 42?")
        .at(20)
        .build();
    assert!(matches!(
        w.write(&edit).await.expect("write"),
        WriteOutcome::Revised { .. }
    ));
    let read = store.get_message(&t, &second).await.unwrap().unwrap();
    assert_eq!(read.text, "where is order 42?");
    assert_eq!(store.get_message(&t, &other).await.unwrap(), None);
    assert_eq!(
        store.get_message(&t, &MessageId::generate()).await.unwrap(),
        None
    );
    assert!(store
        .get_message(&other_ticket, &other)
        .await
        .unwrap()
        .is_some());
}

/// An email answering a stored mail (`In-Reply-To`/`References`) goes to that mail's ticket,
/// even in another thread, and its thread then leads there too.
pub async fn email_reply_threads_by_references(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let original = M::email("alex@example.com", "a1@mail.example")
        .subject("Invoice 42")
        .at(0)
        .build();
    let (t, _, _) = write_stored(&w, &original).await;

    // The reply's client started a new thread, but it references the original.
    let reply = M::email("alex@example.com", "a2@mail.example")
        .in_thread("a2@mail.example")
        .subject("Re: Invoice 42")
        .replying_to(&["unknown@elsewhere", "a1@mail.example"])
        .at(60)
        .build();
    let (t2, _, created) = write_stored(&w, &reply).await;
    assert_eq!(t2, t, "the reply threads by its references");
    assert!(!created);

    // A later mail of the reply's thread answers the reply: it follows.
    let follow_up = M::email("alex@example.com", "a3@mail.example")
        .in_thread("a2@mail.example")
        .replying_to(&["a2@mail.example"])
        .at(120)
        .build();
    let (t3, _, _) = write_stored(&w, &follow_up).await;
    assert_eq!(t3, t, "the follow-up threads by its reference");

    // A mail that only claims the thread's root, referencing nothing stored, is not let in by
    // the claim: the root is a header its sender wrote.
    let claim = M::email("alex@example.com", "a4@mail.example")
        .in_thread("a2@mail.example")
        .at(150)
        .build();
    let (t4, _, created) = write_stored(&w, &claim).await;
    assert!(created);
    assert_ne!(t4, t);

    // References nobody stored: a new ticket.
    let unrelated = M::email("alex@example.com", "b1@mail.example")
        .replying_to(&["never-seen@mail.example"])
        .at(180)
        .build();
    let (t5, _, created) = write_stored(&w, &unrelated).await;
    assert!(created);
    assert_ne!(t5, t);
    assert!(ticket(&store, &t5).await.related_tickets.is_empty());
    assert_eq!(ticket(&store, &t).await.message_count, 3);
}

/// `find_ticket_by_platform_ids` answers with the first id (in the given order) stored on the
/// channel.
pub async fn platform_id_lookup_takes_the_first_known_id(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let (t1, _, _) = write_stored(&w, &M::facebook_dm("u1", "m1").build()).await;
    let (t2, _, _) = write_stored(&w, &M::facebook_dm("u2", "m2").build()).await;
    let find = |channel, ids: &[&str]| {
        let store = Arc::clone(&store);
        let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        async move {
            store
                .find_ticket_by_platform_ids(channel, &ids)
                .await
                .expect("find_ticket_by_platform_ids")
        }
    };
    assert_eq!(
        find(ChannelKind::Facebook, &["nope", "m2", "m1"]).await,
        Some(t2.clone())
    );
    assert_eq!(find(ChannelKind::Facebook, &["m1", "m2"]).await, Some(t1));
    assert_eq!(find(ChannelKind::Facebook, &["nope"]).await, None);
    assert_eq!(find(ChannelKind::Facebook, &[]).await, None);
    assert_eq!(find(ChannelKind::Instagram, &["m2"]).await, None);
}

/// A mail naming an existing ticket with a signed plus-address (`support+<id>.<signature>@…`)
/// goes there when its sender takes part in the ticket (here: the chat customer who gave the
/// same email address).
pub async fn ticket_reference_threads_into_the_ticket(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let chat = M::chat("s1", "v1", "c1")
        .author_email("alex@example.com")
        .at(0)
        .build();
    let (t, _, _) = write_stored(&w, &chat).await;
    let mail = M::email("alex@example.com", "x1@mail.example")
        .subject(&format!("[#{t}] about my chat"))
        .signed_ticket_ref(&t, &thread_key().ticket_signature(&t))
        .at(60)
        .build();
    let (t2, _, created) = write_stored(&w, &mail).await;
    assert_eq!(t2, t);
    assert!(!created);
    let stored = messages(&store, &t).await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[1], mail);
    assert_eq!(all_tickets(&store).await.len(), 1);
}

/// A reference to a ticket that does not exist is ignored: the conversation key decides.
pub async fn reference_to_a_missing_ticket_is_ignored(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let missing = TicketId::generate();
    let mail = M::email("alex@example.com", "x1@mail.example")
        .ticket_ref(&missing)
        .build();
    let (t, _, created) = write_stored(&w, &mail).await;
    assert!(created);
    assert_ne!(t, missing);
    assert!(store
        .get_ticket(&missing)
        .await
        .expect("get_ticket")
        .is_none());
}

// ---------------------------------------------------------------------------------------------
// Email threading security

/// A Crossdesk Message-ID for a reply in `ticket`, signed with the contract's key.
fn our_message_id(ticket: &TicketId) -> String {
    thread_key().message_id(&MessageId::generate(), ticket, "crossdesk.example")
}

/// Alex's first mail, Bob in copy: a ticket whose participants are Alex and Bob.
async fn alex_ticket(w: &TicketWriter) -> TicketId {
    let first = M::email("alex@example.com", "a1@mail.example")
        .copying(&["bob@example.com"])
        .subject("Invoice 42")
        .at(0)
        .build();
    write_stored(w, &first).await.0
}

/// A stranger referencing someone else's ticket, however well (its stored Message-IDs, a
/// Message-ID Crossdesk signed for it, its signed plus-address), starts a ticket of their own,
/// linked to it as possibly related; the ticket itself is untouched.
pub async fn a_stranger_cannot_thread_into_someone_elses_ticket(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let t = alex_ticket(&w).await;
    let signature = thread_key().ticket_signature(&t);
    let hijack = M::email("eve@evil.example", "e1@evil.example")
        .in_thread("a1@mail.example")
        .replying_to(&[&our_message_id(&t), "a1@mail.example"])
        .signed_ticket_ref(&t, &signature)
        .subject(&format!("Re: Invoice 42 [#{t}]"))
        .at(60)
        .build();
    let (own, _, created) = write_stored(&w, &hijack).await;
    assert!(created, "the stranger's mail starts a ticket");
    assert_ne!(own, t);
    let own_ticket = ticket(&store, &own).await;
    assert_eq!(own_ticket.related_tickets, vec![t.clone()]);
    assert_ne!(own_ticket.contact_id, ticket(&store, &t).await.contact_id);
    let victim = ticket(&store, &t).await;
    assert_eq!(victim.message_count, 1);
    assert!(victim.related_tickets.is_empty());

    // The stranger's next mail answers their own: it joins their ticket, and the references
    // to the other ticket it still carries change nothing.
    let again = M::email("eve@evil.example", "e2@evil.example")
        .in_thread("a1@mail.example")
        .replying_to(&["e1@evil.example", "a1@mail.example"])
        .at(120)
        .build();
    let (t2, _, created) = write_stored(&w, &again).await;
    assert_eq!(t2, own);
    assert!(!created);
    assert_eq!(ticket(&store, &t).await.message_count, 1);
    assert_eq!(ticket(&store, &own).await.related_tickets, vec![t]);
}

/// Even a participant threads by ticket reference only with a valid signature: a bare
/// `[#ID]` tag, an unsigned plus-address or a wrong signature make a new ticket, possibly
/// related; so does a made-up Crossdesk Message-ID.
pub async fn an_unsigned_or_forged_reference_does_not_thread(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let t = alex_ticket(&w).await;
    let other = TicketId::generate();
    let forged_id = our_message_id(&t).replace(t.as_str(), other.as_str());
    let forged_for_t = format!(
        "crossdesk.{}.{t}.{}@crossdesk.example",
        MessageId::generate(),
        thread_key().ticket_signature(&t)
    );
    let attempts = [
        M::email("alex@example.com", "u1@mail.example").ticket_ref(&t),
        M::email("alex@example.com", "u2@mail.example").signed_ticket_ref(&t, "not-a-signature"),
        M::email("alex@example.com", "u3@mail.example")
            .signed_ticket_ref(&t, &thread_key().ticket_signature(&other)),
        M::email("alex@example.com", "u4@mail.example").replying_to(&[&forged_for_t]),
    ];
    for (n, attempt) in attempts.into_iter().enumerate() {
        let mail = attempt.at(10 * (n as i64 + 1)).build();
        let (new, _, created) = write_stored(&w, &mail).await;
        assert!(created, "attempt {n} starts a ticket");
        assert_eq!(
            ticket(&store, &new).await.related_tickets,
            vec![t.clone()],
            "attempt {n} is linked to the ticket it named"
        );
    }
    // A forged id naming a ticket that does not exist links nothing.
    let mail = M::email("alex@example.com", "u5@mail.example")
        .replying_to(&[&forged_id])
        .at(60)
        .build();
    let (new, _, _) = write_stored(&w, &mail).await;
    assert!(ticket(&store, &new).await.related_tickets.is_empty());
    assert_eq!(ticket(&store, &t).await.message_count, 1);
}

/// The customer's answer to Crossdesk's mail threads, by the signed Message-ID or by the signed
/// plus-address alone (SES replaced the Message-ID and the client dropped the headers).
pub async fn a_participant_threads_by_signed_references(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let t = alex_ticket(&w).await;
    let by_id = M::email("alex@example.com", "a2@mail.example")
        .replying_to(&[&our_message_id(&t)])
        .at(60)
        .build();
    assert_eq!(write_stored(&w, &by_id).await.0, t);
    let by_address = M::email("alex@example.com", "a3@mail.example")
        .signed_ticket_ref(&t, &thread_key().ticket_signature(&t).to_uppercase())
        .at(120)
        .build();
    assert_eq!(write_stored(&w, &by_address).await.0, t);
    let stored = ticket(&store, &t).await;
    assert_eq!(stored.message_count, 3);
    assert!(stored.related_tickets.is_empty());

    // A reply sent before the key changed: its Message-ID no longer checks out, but it is
    // stored with the reply, so the answer to it still threads.
    let earlier =
        crossdesk_core::mail_signature::EmailThreadKey::new(b"an-earlier-thread-key-0123")
            .expect("a key long enough");
    let old_id = earlier.message_id(&MessageId::generate(), &t, "crossdesk.example");
    let reply = M::email("alex@example.com", "unused")
        .unsent_reply("agent-1")
        .at(130)
        .build();
    store
        .append_message(&route(&reply, Some(&t)), &reply, &stored.contact_id)
        .await
        .expect("append_message");
    let sent = Delivery {
        status: DeliveryStatus::Sent,
        platform_id: Some(old_id.clone()),
        error: None,
        attempts: 1,
        sending_since: None,
    };
    assert!(store
        .set_delivery(&t, &reply.id, &Delivery::queued(), &sent)
        .await
        .expect("set_delivery"));
    let answer = M::email("alex@example.com", "a4@mail.example")
        .replying_to(&[&old_id])
        .at(140)
        .build();
    assert_eq!(write_stored(&w, &answer).await.0, t);
    assert_eq!(ticket(&store, &t).await.message_count, 5);
}

/// Someone the customer copied on their mail takes part in the ticket: their answer threads
/// (here a forward of the thread, keeping its references). Someone it was forwarded to outside
/// the ticket does not.
pub async fn a_copied_participant_threads_and_a_forward_recipient_does_not(
    store: Arc<dyn TicketStore>,
) {
    let w = writer(&store);
    let t = alex_ticket(&w).await;
    let from_bob = M::email("bob@example.com", "b1@mail.example")
        .subject("Fwd: Invoice 42")
        .replying_to(&[&our_message_id(&t), "a1@mail.example"])
        .copying(&["carol@example.com"])
        .at(60)
        .build();
    let (t2, _, created) = write_stored(&w, &from_bob).await;
    assert_eq!(t2, t, "Bob was copied by Alex");
    assert!(!created);

    // Carol got Bob's forward: now she was addressed by a participant's mail in the ticket.
    let from_carol = M::email("carol@example.com", "c1@mail.example")
        .replying_to(&["b1@mail.example"])
        .at(120)
        .build();
    assert_eq!(write_stored(&w, &from_carol).await.0, t);

    // Dave got the thread forwarded by mail nobody sent to the ticket.
    let from_dave = M::email("dave@example.com", "d1@mail.example")
        .replying_to(&["b1@mail.example", "a1@mail.example"])
        .at(180)
        .build();
    let (t4, _, created) = write_stored(&w, &from_dave).await;
    assert!(created);
    assert_eq!(ticket(&store, &t4).await.related_tickets, vec![t.clone()]);
    assert_eq!(ticket(&store, &t).await.message_count, 3);
}

/// An auto-reply or bounce is kept with the ticket it answers but never reopens it; the
/// customer's own mail still does.
pub async fn automatic_mail_never_reopens_a_ticket(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let t = alex_ticket(&w).await;
    store
        .set_status(&t, TicketStatus::Solved, at(30))
        .await
        .expect("set_status")
        .expect("ticket exists");
    let out_of_office = M::email("alex@example.com", "ooo@mail.example")
        .automatic()
        .replying_to(&[&our_message_id(&t)])
        .text("I am out of the office until Monday.")
        .at(60)
        .build();
    let (t2, _, created) = write_stored(&w, &out_of_office).await;
    assert_eq!(t2, t);
    assert!(!created);
    let after = ticket(&store, &t).await;
    assert_eq!(
        after.status,
        TicketStatus::Solved,
        "an auto-reply never reopens"
    );
    assert_eq!(after.message_count, 2);
    assert!(messages(&store, &t).await[1].is_automatic());

    let human = M::email("alex@example.com", "a2@mail.example")
        .replying_to(&["a1@mail.example"])
        .at(90)
        .build();
    write_stored(&w, &human).await;
    assert_eq!(ticket(&store, &t).await.status, TicketStatus::Open);
}

/// A bounce (from the mailer daemon, not a participant) is kept with the ticket when it
/// proves it answers Crossdesk's own mail: a Message-ID Crossdesk signed, or the stored id of a
/// mail Crossdesk sent. Naming only the customer's mail proves nothing.
pub async fn a_bounce_of_crossdesk_mail_is_kept_with_its_ticket(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let t = alex_ticket(&w).await;
    let reply = M::email("alex@example.com", "unused")
        .unsent_reply("agent-1")
        .at(10)
        .build();
    let contact = ticket(&store, &t).await.contact_id;
    store
        .append_message(&route(&reply, Some(&t)), &reply, &contact)
        .await
        .expect("append_message");
    let sent = Delivery {
        status: DeliveryStatus::Sent,
        platform_id: Some("ses-0001@email.amazonses.com".to_string()),
        error: None,
        attempts: 1,
        sending_since: None,
    };
    assert!(store
        .set_delivery(&t, &reply.id, &Delivery::queued(), &sent)
        .await
        .expect("set_delivery"));
    store
        .set_status(&t, TicketStatus::Solved, at(20))
        .await
        .expect("set_status")
        .expect("ticket exists");

    for (n, reference) in [
        "ses-0001@email.amazonses.com".to_string(),
        our_message_id(&t),
    ]
    .iter()
    .enumerate()
    {
        let bounce = M::email(
            "mailer-daemon@mx.example.com",
            &format!("dsn-{n}@mx.example.com"),
        )
        .automatic()
        .replying_to(&[reference])
        .at(30 + n as i64)
        .build();
        assert_eq!(write_stored(&w, &bounce).await.0, t, "bounce {n}");
    }
    let after = ticket(&store, &t).await;
    assert_eq!(after.status, TicketStatus::Solved);
    assert_eq!(after.message_count, 4);

    let about_the_customers_mail = M::email("mailer-daemon@mx.example.com", "dsn-9@mx.example.com")
        .automatic()
        .replying_to(&["a1@mail.example"])
        .at(40)
        .build();
    let (other, _, created) = write_stored(&w, &about_the_customers_mail).await;
    assert!(created);
    assert_eq!(
        ticket(&store, &other).await.related_tickets,
        vec![t.clone()]
    );
    assert_eq!(ticket(&store, &t).await.message_count, 4);
}

/// Crossdesk's own mail coming back (from the support address, or with a Message-ID it signed)
/// is a loop: acknowledged and not stored anywhere.
pub async fn own_mail_coming_back_is_not_ticketed(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let t = alex_ticket(&w).await;
    let plus = format!(
        "support+{t}.{}@crossdesk.example",
        thread_key().ticket_signature(&t)
    );
    for mail in [
        M::email(SUPPORT_ADDRESS, "loop-1@crossdesk.example").replying_to(&["a1@mail.example"]),
        M::email(&plus, "loop-2@crossdesk.example"),
        M::email("list@lists.example", &our_message_id(&t)),
    ] {
        let mail = mail.at(60).build();
        assert_eq!(w.write(&mail).await.expect("write"), WriteOutcome::OwnMail);
    }
    assert_eq!(all_tickets(&store).await.len(), 1);
    assert_eq!(ticket(&store, &t).await.message_count, 1);
}

/// A new ticket keeps the related tickets of its route; a message appended to an existing
/// ticket never changes them.
pub async fn related_tickets_are_stored_with_a_new_ticket(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let (t1, _, _) = write_stored(&w, &M::chat("s1", "v1", "c1").at(0).build()).await;
    let (t2, _, _) = write_stored(&w, &M::chat("s2", "v2", "c2").at(1).build()).await;
    let first = M::chat("s3", "v3", "c3").at(2).build();
    let contact = contact_for(&store, &first).await;
    let mut new = route(&first, None);
    new.new_ticket.related_tickets = vec![t2.clone(), t1.clone()];
    let appended = store
        .append_message(&new, &first, &contact)
        .await
        .expect("append_message");
    assert!(appended.created_ticket);
    let t3 = appended.ticket_id;
    assert_eq!(
        ticket(&store, &t3).await.related_tickets,
        vec![t2.clone(), t1.clone()]
    );

    // A second message of the conversation, routed with other related tickets: unchanged.
    let second = M::chat("s3", "v3", "c4").at(3).build();
    let mut again = route(&second, None);
    again.new_ticket.related_tickets = vec![t1.clone()];
    store
        .append_message(&again, &second, &contact)
        .await
        .expect("append_message");
    let listed = all_tickets(&store).await;
    let t3_listed = listed.iter().find(|t| t.id == t3).expect("listed");
    assert_eq!(t3_listed.related_tickets, vec![t2.clone(), t1.clone()]);
    assert_eq!(t3_listed.message_count, 2);
    for other in [&t1, &t2] {
        assert!(ticket(&store, other).await.related_tickets.is_empty());
    }
}

/// The page's own message in a customer's conversation (an echo) goes into that conversation's
/// ticket, keeps the customer as the contact and does not reopen anything.
pub async fn echo_goes_into_the_customers_conversation(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let question = M::facebook_dm("u1", "mid.1").named("Alex").at(0).build();
    let (t, _, _) = write_stored(&w, &question).await;
    let contact = ticket(&store, &t).await.contact_id;

    let echo = M::facebook_dm("u1", "mid.2")
        .outbound()
        .text("We are on it")
        .at(30)
        .build();
    let (t2, _, created) = write_stored(&w, &echo).await;
    assert_eq!(t2, t);
    assert!(!created);

    let after = ticket(&store, &t).await;
    assert_eq!(after.contact_id, contact);
    assert_eq!(after.preview, "We are on it");
    let stored = messages(&store, &t).await;
    assert_eq!(stored[1].direction, Direction::Outbound);
    let customer = store
        .get_contact(&contact)
        .await
        .expect("get_contact")
        .expect("contact");
    assert_eq!(
        customer.name.as_deref(),
        Some("Alex"),
        "the echo does not rename the customer"
    );
}

/// An agent's reply routed to a ticket claims its conversation key when no ticket holds it, and
/// never takes a key another ticket holds.
pub async fn routed_message_claims_only_a_free_conversation_key(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let (t1, _, _) = write_stored(&w, &M::facebook_dm("u1", "m1").at(0).build()).await;
    let (t2, _, _) = write_stored(&w, &M::facebook_dm("u2", "m2").at(1).build()).await;

    // To t1, in u9's (free) conversation and in u2's (taken) conversation.
    for user in ["u9", "u2"] {
        let reply = M::facebook_dm(user, "unused")
            .unsent_reply("agent-1")
            .at(10)
            .build();
        let contact = ticket(&store, &t1).await.contact_id;
        let appended = store
            .append_message(&route(&reply, Some(&t1)), &reply, &contact)
            .await
            .expect("append_message");
        assert_eq!(appended.ticket_id, t1);
        assert!(!appended.created_ticket && !appended.duplicate);
    }

    let (t9, _, created) = write_stored(&w, &M::facebook_dm("u9", "m9").at(20).build()).await;
    assert_eq!(t9, t1, "u9's conversation was claimed by t1");
    assert!(!created);
    let (t2b, _, _) = write_stored(&w, &M::facebook_dm("u2", "m2b").at(21).build()).await;
    assert_eq!(t2b, t2, "u2's conversation stays with t2");
}

/// A message routed to a ticket that does not exist is rejected, and nothing is written.
pub async fn routing_to_a_missing_ticket_is_rejected(store: Arc<dyn TicketStore>) {
    let reply = M::facebook_dm("u1", "unused")
        .unsent_reply("agent-1")
        .build();
    let contact = contact_for(&store, &M::facebook_dm("u1", "m1").build()).await;
    let err = store
        .append_message(
            &route(&reply, Some(&TicketId::generate())),
            &reply,
            &contact,
        )
        .await
        .expect_err("a route to a missing ticket must fail");
    assert!(matches!(err, StoreError::Rejected(_)), "got {err:?}");
    assert!(!err.is_retryable());
    assert!(all_tickets(&store).await.is_empty());

    // The conversation key was not claimed either: the customer's message creates a ticket.
    let (_, _, created) = write_stored(&writer(&store), &M::facebook_dm("u1", "m1").build()).await;
    assert!(created);
}

// ---------------------------------------------------------------------------------------------
// Exactly once

/// The same platform message delivered again is acknowledged as a duplicate and not stored,
/// also when it was normalized anew (another Crossdesk id, other details).
pub async fn duplicates_are_stored_once(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let m = M::tweet("conv-1", "u1", "1790000000000000001")
        .text("@acme help")
        .at(0)
        .build();
    let (t, id, _) = write_stored(&w, &m).await;

    let again = w.write(&m).await.expect("write");
    assert_eq!(
        again,
        WriteOutcome::Duplicate {
            ticket_id: t.clone(),
            message_id: id.clone()
        }
    );

    let mut renormalized = M::tweet("conv-1", "u1", "1790000000000000001")
        .text("@acme help (as parsed on redelivery)")
        .at(5)
        .build();
    renormalized.replies_to = vec!["1789999999999999999".to_string()];
    assert_ne!(renormalized.id, m.id);
    let outcome = w.write(&renormalized).await.expect("write");
    assert_eq!(
        outcome,
        WriteOutcome::Duplicate {
            ticket_id: t.clone(),
            message_id: id.clone()
        }
    );

    let contact = ticket(&store, &t).await.contact_id;
    let direct = store
        .append_message(&route(&renormalized, None), &renormalized, &contact)
        .await
        .expect("append_message");
    assert_eq!(
        direct,
        Appended {
            ticket_id: t.clone(),
            message_id: id,
            created_ticket: false,
            duplicate: true
        }
    );

    assert_eq!(messages(&store, &t).await, vec![m]);
    let t = ticket(&store, &t).await;
    assert_eq!(t.message_count, 1);
    assert_eq!(t.updated_at, at(0), "a duplicate changes nothing");
    assert_eq!(all_tickets(&store).await.len(), 1);
}

/// Deduplication is per channel: the same platform id on two channels is two messages.
pub async fn platform_ids_are_scoped_by_channel(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let (t1, _, _) = write_stored(&w, &M::facebook_dm("u1", "123").build()).await;
    let (t2, _, created) = write_stored(&w, &M::tweet("c1", "u1", "123").build()).await;
    assert!(created);
    assert_ne!(t1, t2);
}

/// Appending the very same message (same Crossdesk id) again, e.g. a retried call, stores it
/// once, even without a platform id.
pub async fn retried_append_of_one_message_is_stored_once(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let (t, _, _) = write_stored(&w, &M::chat("s1", "v1", "c1").at(0).build()).await;
    let reply = M::chat("s1", "v1", "unused")
        .unsent_reply("agent-1")
        .at(10)
        .build();
    let contact = ticket(&store, &t).await.contact_id;
    let first = store
        .append_message(&route(&reply, Some(&t)), &reply, &contact)
        .await
        .expect("append_message");
    assert!(!first.duplicate);
    let second = store
        .append_message(&route(&reply, Some(&t)), &reply, &contact)
        .await
        .expect("append_message");
    assert_eq!(
        second,
        Appended {
            ticket_id: t.clone(),
            message_id: reply.id.clone(),
            created_ticket: false,
            duplicate: true
        }
    );
    assert_eq!(messages(&store, &t).await.len(), 2);
    assert_eq!(ticket(&store, &t).await.message_count, 2);
}

/// Two agent replies without a platform id are two messages, even with the same text.
pub async fn unsent_replies_are_never_deduplicated(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let (t, _, _) = write_stored(&w, &M::facebook_dm("u1", "m1").at(0).build()).await;
    let contact = ticket(&store, &t).await.contact_id;
    let mut reply_ids = Vec::new();
    for secs in [10, 20] {
        let reply = M::facebook_dm("u1", "unused")
            .unsent_reply("agent-1")
            .text("Thanks, refunded.")
            .at(secs)
            .build();
        let appended = store
            .append_message(&route(&reply, Some(&t)), &reply, &contact)
            .await
            .expect("append_message");
        assert!(!appended.duplicate && !appended.created_ticket);
        assert_eq!(appended.ticket_id, t);
        assert_eq!(appended.message_id, reply.id);
        reply_ids.push(reply.id);
    }
    let stored = messages(&store, &t).await;
    assert_eq!(stored.len(), 3);
    assert_eq!(
        stored[1..].iter().map(|m| m.id.clone()).collect::<Vec<_>>(),
        reply_ids
    );
    assert!(stored[1..]
        .iter()
        .all(|m| m.platform_message_id.is_none() && m.delivery == Some(Delivery::queued())));
    let t = ticket(&store, &t).await;
    assert_eq!(t.message_count, 3);
    assert_eq!(t.status, TicketStatus::Open);
}

/// Eight writers delivering the same platform message at once: one stores it, seven see a
/// duplicate of that one.
pub async fn concurrent_duplicates_are_stored_once(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let original = M::facebook_dm("u1", "mid.race").text("hello").build();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let w = w.clone();
            let mut delivery = original.clone();
            if i % 2 == 1 {
                // Half of the deliveries were normalized anew, with their own Crossdesk id.
                delivery.id = MessageId::generate();
            }
            tokio::spawn(async move { w.write(&delivery).await })
        })
        .collect();
    let mut stored = Vec::new();
    let mut duplicates = Vec::new();
    for task in tasks {
        match task.await.expect("writer task").expect("write") {
            WriteOutcome::Stored {
                ticket_id,
                message_id,
                created_ticket,
            } => {
                assert!(created_ticket);
                stored.push((ticket_id, message_id));
            }
            WriteOutcome::Duplicate {
                ticket_id,
                message_id,
            } => duplicates.push((ticket_id, message_id)),
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(stored.len(), 1, "exactly one writer stores the message");
    assert_eq!(duplicates.len(), 7);
    assert!(duplicates.iter().all(|d| *d == stored[0]));
    let tickets = all_tickets(&store).await;
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0].message_count, 1);
    let listed = messages(&store, &stored[0].0).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, stored[0].1);
}

/// Eight writers delivering different messages of one new conversation at once end with one
/// ticket holding all eight.
pub async fn concurrent_first_messages_make_one_ticket(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let sent: Vec<Message> = (0..8)
        .map(|i| {
            M::chat("session-race", "visitor-1", &format!("chat-{i}"))
                .at(i)
                .build()
        })
        .collect();
    let tasks: Vec<_> = sent
        .iter()
        .cloned()
        .map(|m| {
            let w = w.clone();
            tokio::spawn(async move { w.write(&m).await })
        })
        .collect();
    let mut tickets = HashSet::new();
    let mut created = 0;
    for task in tasks {
        match task.await.expect("writer task").expect("write") {
            WriteOutcome::Stored {
                ticket_id,
                created_ticket,
                ..
            } => {
                tickets.insert(ticket_id);
                created += usize::from(created_ticket);
            }
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(tickets.len(), 1, "one conversation, one ticket");
    assert_eq!(created, 1, "exactly one writer created it");
    let t = tickets.into_iter().next().expect("one ticket");
    assert_eq!(all_tickets(&store).await.len(), 1);
    assert_eq!(ticket(&store, &t).await.message_count, 8);
    assert_eq!(ids(&messages(&store, &t).await), ids(&sent));
}

/// Eight workers, 500 messages in 20 conversations, each delivered twice in shuffled order:
/// exactly 20 tickets and 500 messages, each where it belongs.
pub async fn many_concurrent_deliveries_thread_exactly(store: Arc<dyn TicketStore>) {
    // 8 writers, 500 messages in 20 conversations, each delivered twice in shuffled order.
    const CONVERSATIONS: usize = 20;
    const PER_CONVERSATION: usize = 25;
    const WORKERS: usize = 8;
    let w = writer(&store);

    let mut originals = Vec::new();
    let mut deliveries = Vec::new();
    for c in 0..CONVERSATIONS {
        for i in 0..PER_CONVERSATION {
            let secs = (c * 1000 + i) as i64;
            let m = match c % 3 {
                0 => M::facebook_dm(&format!("user-{c}"), &format!("fb-{c}-{i}")),
                1 => M::tweet(
                    &format!("conv-{c}"),
                    &format!("user-{c}"),
                    &format!("tw-{c}-{i}"),
                ),
                _ => M::chat(
                    &format!("session-{c}"),
                    &format!("visitor-{c}"),
                    &format!("ch-{c}-{i}"),
                ),
            }
            .text(&format!("conversation {c} message {i}"))
            .at(secs)
            .build();
            let mut redelivery = m.clone();
            redelivery.id = MessageId::generate();
            deliveries.push((c, m.clone()));
            deliveries.push((c, redelivery));
            originals.push((c, m));
        }
    }
    let seed: u64 = rand::rng().random();
    println!("many_concurrent_deliveries_thread_exactly: shuffle seed {seed}");
    deliveries.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));

    let mut lanes: Vec<Vec<(usize, Message)>> = vec![Vec::new(); WORKERS];
    for (n, delivery) in deliveries.into_iter().enumerate() {
        lanes[n % WORKERS].push(delivery);
    }
    let tasks: Vec<_> = lanes
        .into_iter()
        .map(|lane| {
            let w = w.clone();
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for (c, m) in lane {
                    let outcome = w.write(&m).await.expect("write");
                    outcomes.push((
                        c,
                        m.platform_message_id.clone().expect("platform id"),
                        outcome,
                    ));
                }
                outcomes
            })
        })
        .collect();

    // platform id -> (stored, duplicates), each as (ticket, message).
    type Seen = (Vec<(TicketId, MessageId)>, Vec<(TicketId, MessageId)>);
    let mut by_platform_id: BTreeMap<String, Seen> = BTreeMap::new();
    let mut created_per_conversation: BTreeMap<usize, usize> = BTreeMap::new();
    for task in tasks {
        for (c, platform_id, outcome) in task.await.expect("worker task") {
            let entry = by_platform_id.entry(platform_id).or_default();
            match outcome {
                WriteOutcome::Stored {
                    ticket_id,
                    message_id,
                    created_ticket,
                } => {
                    *created_per_conversation.entry(c).or_default() += usize::from(created_ticket);
                    entry.0.push((ticket_id, message_id));
                }
                WriteOutcome::Duplicate {
                    ticket_id,
                    message_id,
                } => entry.1.push((ticket_id, message_id)),
                other => panic!("unexpected outcome {other:?}"),
            }
        }
    }

    assert_eq!(by_platform_id.len(), CONVERSATIONS * PER_CONVERSATION);
    for (platform_id, (stored, duplicates)) in &by_platform_id {
        assert_eq!(
            stored.len(),
            1,
            "{platform_id} stored exactly once (seed {seed})"
        );
        assert_eq!(
            duplicates.len(),
            1,
            "{platform_id} acknowledged once as a duplicate"
        );
        assert_eq!(
            stored[0], duplicates[0],
            "{platform_id}: the duplicate names the stored one"
        );
    }
    for c in 0..CONVERSATIONS {
        assert_eq!(
            created_per_conversation.get(&c),
            Some(&1),
            "conversation {c} created exactly one ticket (seed {seed})"
        );
    }

    let tickets = all_tickets(&store).await;
    assert_eq!(tickets.len(), CONVERSATIONS, "seed {seed}");
    let mut contacts = HashSet::new();
    for c in 0..CONVERSATIONS {
        let expected: Vec<&Message> = originals
            .iter()
            .filter(|(oc, _)| *oc == c)
            .map(|(_, m)| m)
            .collect();
        let first_id = expected[0]
            .platform_message_id
            .clone()
            .expect("platform id");
        let ticket_id = by_platform_id[&first_id].0[0].0.clone();
        let t = ticket(&store, &ticket_id).await;
        assert_eq!(t.conversation_key, key(expected[0]));
        assert_eq!(t.message_count, PER_CONVERSATION as u64);
        assert_eq!(t.updated_at, expected[PER_CONVERSATION - 1].received_at);
        contacts.insert(t.contact_id.clone());
        let listed = messages(&store, &ticket_id).await;
        assert_eq!(
            listed.len(),
            PER_CONVERSATION,
            "conversation {c} (seed {seed})"
        );
        for (got, want) in listed.iter().zip(&expected) {
            assert_eq!(
                got.platform_message_id, want.platform_message_id,
                "seed {seed}"
            );
            assert_eq!(got.text, want.text);
            let stored_as = &by_platform_id[want.platform_message_id.as_ref().expect("id")].0[0];
            assert_eq!(stored_as.0, ticket_id);
            assert_eq!(got.id, stored_as.1);
        }
    }
    assert_eq!(contacts.len(), CONVERSATIONS, "one contact per customer");
}

// ---------------------------------------------------------------------------------------------
// Edits and removals

/// An edit of a stored message replaces its text and marks it edited; the ticket keeps one
/// message.
pub async fn edit_replaces_the_text(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let comment = M::facebook_comment("post-1", "u1", "c-1")
        .text("the product broke")
        .at(0)
        .build();
    let (t, id, _) = write_stored(&w, &comment).await;
    let edit = M::facebook_comment("post-1", "u1", "c-1")
        .edited("the product broke after a week")
        .at(60)
        .build();
    for _ in 0..2 {
        assert_eq!(
            w.write(&edit).await.expect("write"),
            WriteOutcome::Revised {
                ticket_id: t.clone(),
                message_id: id.clone()
            }
        );
    }
    let stored = messages(&store, &t).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id, id);
    assert_eq!(stored[0].text, "the product broke after a week");
    assert_eq!(stored[0].event, MessageEvent::Edited);
    assert_eq!(ticket(&store, &t).await.message_count, 1);
}

/// A removal marks the stored message removed and keeps its text for audit; repeating it
/// changes nothing more.
pub async fn removal_marks_the_message_removed(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let comment = M::facebook_comment("post-1", "u1", "c-1")
        .text("rude words")
        .at(0)
        .build();
    let (t, id, _) = write_stored(&w, &comment).await;
    let removal = M::facebook_comment("post-1", "u1", "c-1")
        .removed()
        .text("")
        .at(60)
        .build();
    for _ in 0..2 {
        assert_eq!(
            w.write(&removal).await.expect("write"),
            WriteOutcome::Revised {
                ticket_id: t.clone(),
                message_id: id.clone()
            }
        );
    }
    let stored = messages(&store, &t).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].event, MessageEvent::Removed);
    assert_eq!(stored[0].text, "rude words");
}

/// A removal of a message never stored is ignored: no ticket, no message.
pub async fn removal_of_an_unknown_message_is_ignored(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let removal = M::facebook_comment("post-1", "u1", "c-unknown")
        .removed()
        .build();
    assert_eq!(
        w.write(&removal).await.expect("write"),
        WriteOutcome::Ignored
    );
    assert!(all_tickets(&store).await.is_empty());
    let direct = store
        .revise_message(
            ChannelKind::Facebook,
            "c-unknown",
            &crossdesk_core::Revision::Removed { at: at(0) },
        )
        .await
        .expect("revise_message");
    assert_eq!(direct, None);
}

/// An edit of a message never stored is the best copy there is: it is stored.
pub async fn edit_of_an_unknown_message_is_stored(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let edit = M::facebook_comment("post-1", "u1", "c-unknown")
        .edited("edited text")
        .build();
    let (t, _, created) = write_stored(&w, &edit).await;
    assert!(created);
    let stored = messages(&store, &t).await;
    assert_eq!(stored, vec![edit]);
    assert_eq!(stored[0].event, MessageEvent::Edited);
}

// ---------------------------------------------------------------------------------------------
// Status

/// A customer message reopens a solved or pending ticket; the page's own message does not.
pub async fn inbound_message_reopens_a_solved_ticket(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let (t, _, _) = write_stored(&w, &M::facebook_dm("u1", "m1").at(0).build()).await;
    for (n, status) in [TicketStatus::Solved, TicketStatus::Pending]
        .into_iter()
        .enumerate()
    {
        let base = 100 * (n as i64 + 1);
        store
            .set_status(&t, status, at(base))
            .await
            .expect("set_status")
            .expect("ticket exists");
        let echo = M::facebook_dm("u1", &format!("echo-{n}"))
            .outbound()
            .at(base + 10)
            .build();
        write_stored(&w, &echo).await;
        assert_eq!(
            ticket(&store, &t).await.status,
            status,
            "an echo does not reopen"
        );
        let again = M::facebook_dm("u1", &format!("again-{n}"))
            .at(base + 20)
            .build();
        let (t2, _, created) = write_stored(&w, &again).await;
        assert_eq!(t2, t, "the customer's message goes to the same ticket");
        assert!(!created);
        let reopened = ticket(&store, &t).await;
        assert_eq!(reopened.status, TicketStatus::Open);
        assert_eq!(reopened.updated_at, at(base + 20));
    }
}

/// `set_status` changes the status and the last activity, and answers `None` for an unknown
/// ticket.
pub async fn set_status_updates_the_ticket(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let (t, _, _) = write_stored(&w, &M::chat("s1", "v1", "c1").at(0).build()).await;
    let updated = store
        .set_status(&t, TicketStatus::Pending, at(500))
        .await
        .expect("set_status")
        .expect("the ticket exists");
    assert_eq!(updated.status, TicketStatus::Pending);
    assert_eq!(updated.updated_at, at(500));
    assert_eq!(updated.message_count, 1);
    assert_eq!(ticket(&store, &t).await, updated);
    let missing = store
        .set_status(&TicketId::generate(), TicketStatus::Solved, at(600))
        .await
        .expect("set_status");
    assert_eq!(missing, None);
}

// ---------------------------------------------------------------------------------------------
// Delivery

/// `set_delivery` records the delivery on the stored reply; an unknown message is rejected.
pub async fn set_delivery_records_the_delivery(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let (t, _, _) = write_stored(&w, &M::email("alex@example.com", "a1@x.example").build()).await;
    let (other, _, _) = write_stored(&w, &M::chat("s1", "v1", "c1").build()).await;
    let reply = M::email("alex@example.com", "unused")
        .unsent_reply("agent-1")
        .at(10)
        .build();
    let contact = ticket(&store, &t).await.contact_id;
    store
        .append_message(&route(&reply, Some(&t)), &reply, &contact)
        .await
        .expect("append_message");

    let failed = Delivery {
        status: DeliveryStatus::Failed,
        platform_id: None,
        error: Some(DeliveryError {
            code: "554".to_string(),
            reason: "mailbox unavailable".to_string(),
        }),
        attempts: 3,
        sending_since: None,
    };
    let queued = Delivery::queued();
    assert!(store
        .set_delivery(&t, &reply.id, &queued, &failed)
        .await
        .expect("set_delivery"));
    let stored = messages(&store, &t).await;
    assert_eq!(stored[1].id, reply.id);
    assert_eq!(stored[1].delivery.as_ref(), Some(&failed));
    assert_eq!(stored[1].text, reply.text, "only the delivery changes");

    // Compare-and-set: a writer that expects the old record changes nothing.
    let sent = Delivery {
        status: DeliveryStatus::Sent,
        platform_id: Some("ses-1".to_string()),
        error: None,
        attempts: 4,
        sending_since: None,
    };
    assert!(!store
        .set_delivery(&t, &reply.id, &queued, &sent)
        .await
        .expect("set_delivery"));
    let stored = messages(&store, &t).await;
    assert_eq!(stored[1].delivery.as_ref(), Some(&failed));
    assert_eq!(stored[1].platform_message_id, None);

    let unknown = store
        .set_delivery(&t, &MessageId::generate(), &queued, &failed)
        .await
        .expect_err("an unknown message is rejected");
    assert!(
        matches!(unknown, StoreError::Rejected(_)),
        "got {unknown:?}"
    );
    let wrong_ticket = store
        .set_delivery(&other, &reply.id, &queued, &failed)
        .await
        .expect_err("a message of another ticket is rejected");
    assert!(
        matches!(wrong_ticket, StoreError::Rejected(_)),
        "got {wrong_ticket:?}"
    );
}

/// A reply the platform accepted takes the platform's id as its platform message id ("absent on
/// a reply not yet sent"): the platform's echo of it is a duplicate and answers to it thread
/// into its ticket.
pub async fn sent_reply_takes_its_platform_id(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let (t, _, _) = write_stored(&w, &M::facebook_dm("u1", "m1").at(0).build()).await;
    let reply = M::facebook_dm("u1", "unused")
        .unsent_reply("agent-1")
        .at(10)
        .build();
    let contact = ticket(&store, &t).await.contact_id;
    store
        .append_message(&route(&reply, Some(&t)), &reply, &contact)
        .await
        .expect("append_message");
    let sent = Delivery {
        status: DeliveryStatus::Sent,
        platform_id: Some("m_sent_1".to_string()),
        error: None,
        attempts: 1,
        sending_since: None,
    };
    assert!(store
        .set_delivery(&t, &reply.id, &Delivery::queued(), &sent)
        .await
        .expect("set_delivery"));

    let stored = messages(&store, &t).await;
    assert_eq!(stored[1].platform_message_id.as_deref(), Some("m_sent_1"));
    assert_eq!(stored[1].delivery.as_ref(), Some(&sent));
    assert_eq!(
        store
            .find_ticket_by_platform_ids(ChannelKind::Facebook, &["m_sent_1".to_string()])
            .await
            .expect("find_ticket_by_platform_ids"),
        Some(t.clone())
    );
    let echo = M::facebook_dm("u1", "m_sent_1").outbound().at(11).build();
    assert_eq!(
        w.write(&echo).await.expect("write"),
        WriteOutcome::Duplicate {
            ticket_id: t.clone(),
            message_id: reply.id.clone()
        }
    );
    assert_eq!(messages(&store, &t).await.len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Echoes

/// A customer's Messenger question and an agent's reply to it in the store, the reply's
/// delivery set to `delivery`; returns (ticket, reply).
async fn replied(store: &Arc<dyn TicketStore>, delivery: Delivery) -> (TicketId, Message) {
    let w = writer(store);
    let (t, _, _) = write_stored(&w, &M::facebook_dm("u1", "m1").at(0).build()).await;
    let reply = M::facebook_dm("u1", "unused")
        .unsent_reply("agent-1")
        .text("On its way")
        .at(10)
        .build();
    let contact = ticket(store, &t).await.contact_id;
    store
        .append_message(&route(&reply, Some(&t)), &reply, &contact)
        .await
        .expect("append_message");
    if delivery != Delivery::queued() {
        assert!(store
            .set_delivery(&t, &reply.id, &Delivery::queued(), &delivery)
            .await
            .expect("set_delivery"));
    }
    (t, reply)
}

/// The platform's echo of a message the page sent, as the Facebook parser gives it: outbound,
/// marked sent outside Crossdesk, and carrying the Crossdesk id its metadata names, if any.
fn echo(mid: &str, names: Option<&MessageId>) -> Message {
    let mut echo = M::facebook_dm("u1", mid)
        .outbound()
        .text("On its way")
        .at(11)
        .build();
    if let Some(id) = names {
        echo.id = id.clone();
    }
    echo.delivery = Some(Delivery::sent_outside_crossdesk(mid));
    echo
}

async fn delivery_of(store: &Arc<dyn TicketStore>, t: &TicketId, id: &MessageId) -> Delivery {
    messages(store, t)
        .await
        .into_iter()
        .find(|m| &m.id == id)
        .and_then(|m| m.delivery)
        .expect("a delivery record")
}

/// An echo that arrives while the sender is still waiting for the platform's answer names the
/// reply by its Crossdesk id: it is the reply (not a second message), recorded `sent` with the
/// echo's platform id, and the sender's late confirmation changes nothing.
pub async fn echo_of_a_reply_confirms_it_before_the_sender_does(store: Arc<dyn TicketStore>) {
    let claimed = Delivery {
        attempts: 1,
        sending_since: Some(at(10)),
        ..Delivery::queued()
    };
    let (t, reply) = replied(&store, claimed.clone()).await;
    let w = writer(&store);
    let duplicate = WriteOutcome::Duplicate {
        ticket_id: t.clone(),
        message_id: reply.id.clone(),
    };
    assert_eq!(
        w.write(&echo("m_echo_1", Some(&reply.id)))
            .await
            .expect("write"),
        duplicate
    );
    let sent = Delivery {
        status: DeliveryStatus::Sent,
        platform_id: Some("m_echo_1".to_string()),
        error: None,
        attempts: 1,
        sending_since: None,
    };
    assert_eq!(delivery_of(&store, &t, &reply.id).await, sent);
    let stored = messages(&store, &t).await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[1].platform_message_id.as_deref(), Some("m_echo_1"));
    assert_eq!(ticket(&store, &t).await.message_count, 2);

    // The sender's confirmation expects its claim: it loses, and the record stays.
    assert!(!store
        .set_delivery(&t, &reply.id, &claimed, &sent)
        .await
        .expect("set_delivery"));
    // Meta delivers the echo again (a fresh parse: a new copy, the same ids).
    assert_eq!(
        w.write(&echo("m_echo_1", Some(&reply.id)))
            .await
            .expect("write"),
        duplicate
    );
    assert_eq!(
        w.write(&echo("m_echo_1", None)).await.expect("write"),
        duplicate
    );
    assert_eq!(messages(&store, &t).await.len(), 2);
    assert_eq!(delivery_of(&store, &t, &reply.id).await, sent);
}

/// A reply whose sender never learned the platform's answer (`unknown`) is confirmed `sent` by
/// its echo, so the agent need not check.
pub async fn echo_confirms_a_reply_left_unknown(store: Arc<dyn TicketStore>) {
    let unknown = Delivery {
        status: DeliveryStatus::Unknown,
        platform_id: None,
        error: Some(DeliveryError {
            code: "unknown_outcome".to_string(),
            reason: "timed out after sending".to_string(),
        }),
        attempts: 2,
        sending_since: None,
    };
    let (t, reply) = replied(&store, unknown).await;
    let outcome = writer(&store)
        .write(&echo("m_echo_2", Some(&reply.id)))
        .await
        .expect("write");
    assert!(
        matches!(outcome, WriteOutcome::Duplicate { .. }),
        "{outcome:?}"
    );
    let record = delivery_of(&store, &t, &reply.id).await;
    assert_eq!(record.status, DeliveryStatus::Sent);
    assert_eq!(record.platform_id.as_deref(), Some("m_echo_2"));
    assert_eq!(record.error, None);
    assert_eq!(record.attempts, 2);
    assert_eq!(messages(&store, &t).await.len(), 2);
}

/// What the page sent outside Crossdesk (Business Suite, the Messenger app) is stored once, in
/// the customer's ticket, as outbound and sent outside Crossdesk; so is an echo naming a reply
/// this store does not hold (another installation's).
pub async fn echo_sent_outside_crossdesk_is_stored_once_as_outbound(store: Arc<dyn TicketStore>) {
    let (t, reply) = replied(&store, Delivery::queued()).await;
    let w = writer(&store);
    let foreign = MessageId::generate();
    for (mid, names) in [("m_native_1", None), ("m_other_install_1", Some(&foreign))] {
        let native = echo(mid, names);
        let (t2, id, created) = write_stored(&w, &native).await;
        assert_eq!(t2, t);
        assert!(!created);
        assert_eq!(id, native.id);
        let again = w.write(&echo(mid, names)).await.expect("write");
        assert!(matches!(again, WriteOutcome::Duplicate { .. }), "{again:?}");
    }
    let stored = messages(&store, &t).await;
    assert_eq!(stored.len(), 4);
    for m in &stored[2..] {
        assert_eq!(m.direction, Direction::Outbound);
        assert_eq!(
            m.delivery.as_ref().map(|d| d.status),
            Some(DeliveryStatus::SentOutsideCrossdesk)
        );
    }
    assert_eq!(stored[3].id, foreign);
    // The queued reply is untouched.
    assert_eq!(delivery_of(&store, &t, &reply.id).await, Delivery::queued());
}

/// An echo whose metadata names a stored message that is not a Crossdesk reply (the
/// customer's own message) changes nothing there and is stored on its own.
pub async fn echo_naming_a_message_that_is_no_reply_is_stored_on_its_own(
    store: Arc<dyn TicketStore>,
) {
    let (t, _) = replied(&store, Delivery::queued()).await;
    let question = messages(&store, &t).await.remove(0);
    let odd = echo("m_odd_1", Some(&question.id));
    let (t2, id, _) = write_stored(&writer(&store), &odd).await;
    assert_eq!(t2, t);
    assert_ne!(id, question.id);
    let stored = messages(&store, &t).await;
    assert_eq!(stored.len(), 3);
    assert_eq!(stored[0], question, "the customer's message is unchanged");
    assert_eq!(stored[2].id, id);
    assert_eq!(stored[2].platform_message_id.as_deref(), Some("m_odd_1"));
    assert_eq!(
        stored[2].delivery,
        Some(Delivery::sent_outside_crossdesk("m_odd_1"))
    );
}

// ---------------------------------------------------------------------------------------------
// Contacts

/// The same (verified) email address is one contact, whatever its case; an address a chat
/// visitor types is unverified and links nothing.
pub async fn the_same_email_is_one_contact_and_a_chat_email_is_not(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let mail = M::email("Alex@Example.com", "a1@mail.example")
        .named("Alex Doe")
        .at(0)
        .build();
    let (t1, _, _) = write_stored(&w, &mail).await;
    let again = M::email("alex@example.com", "a2@mail.example")
        .at(30)
        .build();
    let (t2, _, _) = write_stored(&w, &again).await;
    assert_ne!(t1, t2, "two mail threads, two tickets");
    let c1 = ticket(&store, &t1).await.contact_id;
    assert_eq!(
        c1,
        ticket(&store, &t2).await.contact_id,
        "one customer, one contact"
    );
    let contact = store
        .get_contact(&c1)
        .await
        .expect("get_contact")
        .expect("contact");
    assert_eq!(contact.name.as_deref(), Some("Alex Doe"));
    assert_eq!(contact.created_at, at(0));
    assert_eq!(
        contact
            .emails
            .iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>(),
        ["alex@example.com"]
    );

    let chat = M::chat("s1", "visitor-7", "c1")
        .author_email("alex@example.com")
        .at(60)
        .build();
    let (t3, _, _) = write_stored(&w, &chat).await;
    let c3 = ticket(&store, &t3).await.contact_id;
    assert_ne!(c1, c3, "a typed chat email is not proof of identity");
    let visitor = store
        .get_contact(&c3)
        .await
        .expect("get_contact")
        .expect("contact");
    let identities: BTreeSet<&str> = visitor.identities.iter().map(Identity::as_str).collect();
    assert_eq!(identities, BTreeSet::from(["chat:visitor-7"]));
}

/// Different customers are different contacts.
pub async fn different_customers_are_different_contacts(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let mut contacts = HashSet::new();
    for m in [
        M::facebook_dm("u1", "m1").build(),
        M::facebook_dm("u2", "m2").build(),
        M::email("bob@example.com", "b1@mail.example").build(),
        M::email("carol@example.com", "c1@mail.example").build(),
        M::chat("s1", "visitor-1", "c1").build(),
    ] {
        let (t, _, _) = write_stored(&w, &m).await;
        contacts.insert(ticket(&store, &t).await.contact_id);
    }
    assert_eq!(contacts.len(), 5);
}

/// A known contact is given the identities it lacked and a missing name, and is then found by
/// any of them; only the first resolution says it created the contact.
pub async fn resolve_contact_adds_missing_identities(store: Arc<dyn TicketStore>) {
    let fb = identity("facebook:u1");
    let mail = identity("email:alex@example.com");
    let first = store
        .resolve_contact(std::slice::from_ref(&fb), None, at(0))
        .await
        .expect("resolve_contact");
    assert!(first.created, "a new contact says so");
    let a = first.id;
    let again = store
        .resolve_contact(&[fb.clone(), mail.clone()], Some("Alex"), at(10))
        .await
        .expect("resolve_contact");
    assert_eq!(again.id, a);
    assert!(!again.created, "a known contact was not created");
    let by_mail = store
        .resolve_contact(std::slice::from_ref(&mail), Some("Someone Else"), at(20))
        .await
        .expect("resolve_contact");
    assert_eq!(by_mail.id, a);
    assert!(!by_mail.created);
    let contact = store
        .get_contact(&a)
        .await
        .expect("get_contact")
        .expect("contact");
    assert_eq!(
        contact.name.as_deref(),
        Some("Alex"),
        "a name is only filled in, never replaced"
    );
    assert_eq!(contact.identities, vec![fb, mail]);
    assert_eq!(
        contact
            .emails
            .iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>(),
        ["alex@example.com"]
    );
    assert_eq!(contact.created_at, at(0));
}

/// Identities leading to two existing contacts never merge them: the oldest is answered and
/// each keeps its identities.
pub async fn resolve_contact_never_merges_contacts(store: Arc<dyn TicketStore>) {
    let mail = identity("email:alex@example.com");
    let chat = identity("chat:visitor-1");
    let older = store
        .resolve_contact(std::slice::from_ref(&mail), Some("Alex"), at(0))
        .await
        .expect("resolve_contact")
        .id;
    let newer = store
        .resolve_contact(std::slice::from_ref(&chat), None, at(10))
        .await
        .expect("resolve_contact")
        .id;
    assert_ne!(older, newer);
    let both = store
        .resolve_contact(&[chat.clone(), mail.clone()], Some("Visitor"), at(20))
        .await
        .expect("resolve_contact")
        .id;
    assert_eq!(both, older, "the oldest contact answers");
    let older_contact = store
        .get_contact(&older)
        .await
        .expect("get")
        .expect("older");
    let newer_contact = store
        .get_contact(&newer)
        .await
        .expect("get")
        .expect("newer");
    assert_eq!(older_contact.identities, vec![mail]);
    assert_eq!(older_contact.name.as_deref(), Some("Alex"));
    assert_eq!(newer_contact.identities, vec![chat.clone()]);
    assert_eq!(newer_contact.name, None);
    let by_chat = store
        .resolve_contact(&[chat], None, at(30))
        .await
        .expect("resolve_contact")
        .id;
    assert_eq!(by_chat, newer);
}

/// Without identities every call makes a new anonymous contact.
pub async fn anonymous_contacts_are_distinct(store: Arc<dyn TicketStore>) {
    let a = store
        .resolve_contact(&[], Some("Guest"), at(0))
        .await
        .expect("resolve_contact")
        .id;
    let b = store
        .resolve_contact(&[], None, at(0))
        .await
        .expect("resolve_contact")
        .id;
    assert_ne!(a, b);
    let contact = store.get_contact(&a).await.expect("get").expect("contact");
    assert!(contact.identities.is_empty() && contact.emails.is_empty());
    assert_eq!(contact.name.as_deref(), Some("Guest"));
}

/// Eight writers resolving one new customer at once end with one contact, which one of them
/// created.
pub async fn concurrent_resolves_make_one_contact(store: Arc<dyn TicketStore>) {
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(&store);
            // Each writer knows the customer by the shared email and its own second identity.
            let identities = vec![
                identity("email:race@example.com"),
                identity(&format!("chat:visitor-{i}")),
            ];
            tokio::spawn(async move { store.resolve_contact(&identities, None, at(i)).await })
        })
        .collect();
    let mut contacts = HashSet::new();
    let mut created = 0;
    for task in tasks {
        let resolved = task.await.expect("task").expect("resolve_contact");
        created += usize::from(resolved.created);
        contacts.insert(resolved.id);
    }
    assert_eq!(contacts.len(), 1);
    assert_eq!(created, 1, "one writer created the contact");
    let id = contacts.into_iter().next().expect("one contact");
    let contact = store.get_contact(&id).await.expect("get").expect("contact");
    assert_eq!(contact.identities.len(), 9);
}

// ---------------------------------------------------------------------------------------------
// Reading

/// One page of `list_tickets`.
async fn list_page(
    store: &Arc<dyn TicketStore>,
    status: Option<TicketStatus>,
    channel: Option<ChannelKind>,
    limit: usize,
    after: Option<TicketCursor>,
) -> Vec<Ticket> {
    store
        .list_tickets(&TicketFilter {
            status,
            channel,
            limit,
            after,
        })
        .await
        .expect("list_tickets")
}

/// Pages of tickets, each from after the last ticket of the one before, together list every
/// ticket once, in the order of one long list; with a status or a channel too, and across
/// tickets of equal activity.
pub async fn tickets_are_paged_with_a_cursor(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    for n in 0..9 {
        // Three tickets share each time of last activity.
        let at_second = (n / 3) * 10;
        let m = match n % 3 {
            0 => M::facebook_dm(&format!("u{n}"), &format!("m{n}")),
            1 => M::chat(&format!("s{n}"), &format!("v{n}"), &format!("c{n}")),
            _ => M::facebook_comment(&format!("post-{n}"), &format!("u{n}"), &format!("k{n}")),
        };
        write_stored(&w, &m.at(at_second).build()).await;
    }
    let first = all_tickets(&store).await;
    store
        .set_status(&first[4].id, TicketStatus::Solved, at(5))
        .await
        .expect("set_status");
    let list = |status, channel, limit, after| list_page(&store, status, channel, limit, after);
    for (status, channel) in [
        (None, None),
        (Some(TicketStatus::Open), None),
        (None, Some(ChannelKind::Facebook)),
    ] {
        let whole: Vec<TicketId> = list(status, channel, 200, None)
            .await
            .into_iter()
            .map(|t| t.id)
            .collect();
        assert!(whole.len() >= 5, "{whole:?}");
        for page_size in [1, 2, 4] {
            let mut paged = Vec::new();
            let mut after = None;
            loop {
                let page = list(status, channel, page_size, after.clone()).await;
                assert!(page.len() <= page_size);
                let Some(last) = page.last() else { break };
                after = Some(TicketCursor::of(last));
                paged.extend(page.into_iter().map(|t| t.id));
            }
            assert_eq!(paged, whole, "{status:?} {channel:?}, pages of {page_size}");
        }
    }
}

/// Tickets are listed by most recent activity (ties by id), filtered by status and channel, and
/// limited.
pub async fn tickets_are_listed_newest_first(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let (fb1, _, _) = write_stored(&w, &M::facebook_dm("u1", "m1").at(0).build()).await;
    let (mail, _, _) = write_stored(
        &w,
        &M::email("bob@example.com", "b1@x.example").at(10).build(),
    )
    .await;
    let (chat, _, _) = write_stored(&w, &M::chat("s1", "v1", "c1").at(20).build()).await;
    let (fb2, _, _) = write_stored(&w, &M::facebook_dm("u2", "m2").at(30).build()).await;
    write_stored(&w, &M::facebook_dm("u1", "m3").at(40).build()).await;
    store
        .set_status(&chat, TicketStatus::Solved, at(50))
        .await
        .expect("set_status");

    let list = |status, channel, limit| {
        let page = list_page(&store, status, channel, limit, None);
        async move { page.await.into_iter().map(|t| t.id).collect::<Vec<_>>() }
    };
    assert_eq!(
        list(None, None, 50).await,
        vec![chat.clone(), fb1.clone(), fb2.clone(), mail.clone()]
    );
    assert_eq!(list(None, None, 2).await, vec![chat.clone(), fb1.clone()]);
    assert_eq!(
        list(None, Some(ChannelKind::Facebook), 50).await,
        vec![fb1.clone(), fb2.clone()]
    );
    assert_eq!(list(Some(TicketStatus::Solved), None, 50).await, vec![chat]);
    assert_eq!(
        list(Some(TicketStatus::Open), None, 50).await,
        vec![fb1.clone(), fb2.clone(), mail.clone()]
    );
    assert_eq!(
        list(Some(TicketStatus::Open), Some(ChannelKind::Facebook), 1).await,
        vec![fb1.clone()]
    );
    assert!(list(Some(TicketStatus::Pending), None, 50).await.is_empty());
    assert!(list(None, Some(ChannelKind::Instagram), 50)
        .await
        .is_empty());

    // Equal activity: ordered by id.
    for t in [&fb1, &fb2, &mail] {
        store
            .set_status(t, TicketStatus::Pending, at(100))
            .await
            .expect("set_status");
    }
    let mut tied = vec![fb1, fb2, mail];
    tied.sort();
    assert_eq!(list(Some(TicketStatus::Pending), None, 50).await, tied);
}

/// A ticket's messages are listed oldest first by platform time, then in the order stored.
pub async fn messages_are_listed_oldest_first(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let order = [
        ("m-c", 30),
        ("m-a", 10),
        ("m-d", 40),
        ("m-b1", 20),
        ("m-b2", 20),
    ];
    let mut ticket_id = None;
    for (id, secs) in order {
        let (t, _, _) = write_stored(&w, &M::facebook_dm("u1", id).at(secs).build()).await;
        ticket_id = Some(t);
    }
    let t = ticket_id.expect("a ticket");
    let listed: Vec<String> = messages(&store, &t)
        .await
        .into_iter()
        .filter_map(|m| m.platform_message_id)
        .collect();
    assert_eq!(listed, ["m-a", "m-b1", "m-b2", "m-c", "m-d"]);
}

/// A stored message reads back exactly as given, every optional field included.
pub async fn stored_message_reads_back_exactly(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let mail = M::email("zoe@example.com", "z1@mail.example")
        .with_everything()
        .replying_to(&["older@mail.example"])
        .build();
    let (t, _, _) = write_stored(&w, &mail).await;
    assert_eq!(messages(&store, &t).await, vec![mail.clone()]);
    let t = ticket(&store, &t).await;
    assert_eq!(t.subject, "Invoice");
    assert_eq!(t.preview, first_line(&mail.text, 140));
}

/// A long first line is cut to 140 characters in the preview.
pub async fn preview_is_the_first_line_cut_to_140_characters(store: Arc<dyn TicketStore>) {
    let w = writer(&store);
    let long = "ä".repeat(300);
    let (t, _, _) = write_stored(
        &w,
        &M::chat("s1", "v1", "c1")
            .text(&format!("\n{long}\nsecond"))
            .build(),
    )
    .await;
    let preview = ticket(&store, &t).await.preview;
    assert_eq!(preview, first_line(&long, 140));
    assert_eq!(preview.chars().count(), 140);
}

/// Unknown ids read as nothing, not as errors.
pub async fn unknown_ids_read_as_nothing(store: Arc<dyn TicketStore>) {
    let missing = TicketId::generate();
    assert_eq!(store.get_ticket(&missing).await.expect("get_ticket"), None);
    assert!(store
        .list_messages(&missing)
        .await
        .expect("list_messages")
        .is_empty());
    assert_eq!(
        store
            .get_contact(&ContactId::generate())
            .await
            .expect("get_contact"),
        None
    );
    assert!(all_tickets(&store).await.is_empty());
}
