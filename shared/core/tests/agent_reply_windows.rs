//! The agent desk over the embedded store: a ticket shows its reply windows, and a reply on a
//! closed window is refused before anything is stored or queued, naming the alternative.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use crossdesk_core::agent::{AgentDesk, AgentError, AgentRef, ReplyRequest};
use crossdesk_core::reply_window::ReplyCapabilities;
use crossdesk_core::writer::TicketWriter;
use crossdesk_core::{
    ChannelKind, Clock, Conversation, Direction, EmailAddress, Identity, Message, MessageId,
    OutboundJob, OutboundQueue, QueueError, TicketFilter, TicketId, TicketStore, Visibility,
};
use crossdesk_embedded::SqliteStore;

const PSID: &str = "2400000000000001";

struct FixedClock(DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// An outbound queue that keeps what it is given.
#[derive(Default)]
struct Recorded(Mutex<Vec<OutboundJob>>);

#[async_trait]
impl OutboundQueue for Recorded {
    async fn enqueue(&self, job: &OutboundJob) -> Result<(), QueueError> {
        self.0.lock().unwrap().push(job.clone());
        Ok(())
    }
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-20T10:00:00Z")
        .unwrap()
        .to_utc()
}

/// A Messenger message from the customer, `age` before [`now`] (from JSON: fields the model
/// adds later with serde defaults need no change here).
fn messenger(age: TimeDelta) -> Message {
    serde_json::from_value(serde_json::json!({
        "id": MessageId::generate(),
        "channel": ChannelKind::Facebook,
        "platform_message_id": "m_1",
        "conversation": Conversation::DirectThread {
            account_id: "105000000000001".into(),
            user_id: PSID.into(),
        },
        "direction": Direction::Inbound,
        "author": {"platform_id": PSID},
        "text": "Where is my order?",
        "visibility": Visibility::Private,
        "sent_at": now() - age,
        "received_at": now() - age,
    }))
    .expect("a message")
}

struct Desk {
    store: Arc<SqliteStore>,
    queue: Arc<Recorded>,
    ticket: TicketId,
}

impl Desk {
    /// A ticket holding one Messenger message of `age`, from a customer whose email address is
    /// known when `email` is given.
    async fn with_messenger_ticket(age: TimeDelta, email: Option<&str>) -> Desk {
        let store = Arc::new(SqliteStore::in_memory().unwrap());
        if let Some(email) = email {
            // The customer gave their address elsewhere: one contact, both identities.
            store
                .resolve_contact(
                    &[
                        Identity::new(ChannelKind::Facebook, PSID),
                        Identity::email(&EmailAddress::parse(email).unwrap()),
                    ],
                    Some("Alex"),
                    now() - TimeDelta::days(30),
                )
                .await
                .unwrap();
        }
        TicketWriter::new(store.clone())
            .write(&messenger(age))
            .await
            .unwrap();
        let ticket = store.list_tickets(&TicketFilter::default()).await.unwrap()[0]
            .id
            .clone();
        Desk {
            store,
            queue: Arc::default(),
            ticket,
        }
    }

    fn desk(&self, human_agent: bool) -> AgentDesk {
        AgentDesk::new(
            self.store.clone(),
            self.queue.clone(),
            Arc::new(FixedClock(now())),
        )
        .with_reply_capabilities(ReplyCapabilities { human_agent })
    }

    async fn reply(&self, human_agent: bool) -> Result<Message, AgentError> {
        let agent = AgentRef {
            id: "agent-1".into(),
            name: None,
        };
        let request = ReplyRequest {
            text: "Sorry for the wait".into(),
            channel: None,
            visibility: None,
            idempotency_key: None,
        };
        self.desk(human_agent)
            .reply(&self.ticket, &agent, &request)
            .await
    }
}

#[tokio::test]
async fn a_closed_window_is_shown_with_the_customers_email_and_the_reply_refused() {
    let d = Desk::with_messenger_ticket(TimeDelta::hours(30), Some("alex@example.com")).await;
    let view = d.desk(false).ticket(&d.ticket).await.unwrap();
    let json = serde_json::to_value(&view).unwrap();
    assert_eq!(
        json["reply_windows"],
        serde_json::json!([{
            "channel": "facebook",
            "visibility": "private",
            "can_reply": false,
            "window_ends_at": "2026-11-20T04:00:00Z",
            "message_tag": null,
            "reason": "The customer last wrote on Messenger at 2026-11-19T04:00:00Z; the 24-hour \
                       window closed at 2026-11-20T04:00:00Z and the page has no Human Agent \
                       permission for later human replies.",
            "alternative": {"channel": "email", "address": "alex@example.com"},
        }])
    );

    let refused = d.reply(false).await;
    let Err(AgentError::WindowClosed(message)) = refused else {
        panic!("{refused:?}");
    };
    assert!(message.contains("24-hour window closed"), "{message}");
    assert!(
        message.ends_with("Answer by email instead: alex@example.com."),
        "{message}"
    );
    // Nothing stored, nothing queued.
    assert_eq!(d.store.list_messages(&d.ticket).await.unwrap().len(), 1);
    assert!(d.queue.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn without_an_email_address_the_refusal_says_to_wait() {
    let d = Desk::with_messenger_ticket(TimeDelta::hours(30), None).await;
    let view = d.desk(false).ticket(&d.ticket).await.unwrap();
    assert_eq!(view.reply_windows.len(), 1);
    assert_eq!(view.reply_windows[0].alternative, None);
    let refused = d.reply(false).await;
    let Err(AgentError::WindowClosed(message)) = refused else {
        panic!("{refused:?}");
    };
    assert!(
        message.contains("wait for them to write again"),
        "{message}"
    );
    assert!(d.queue.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn with_the_human_agent_permission_the_same_reply_is_queued() {
    let d = Desk::with_messenger_ticket(TimeDelta::hours(30), None).await;
    let view = d.desk(true).ticket(&d.ticket).await.unwrap();
    let window = &view.reply_windows[0];
    assert!(window.can_reply);
    assert_eq!(window.message_tag, Some("HUMAN_AGENT"));
    assert_eq!(
        window.window_ends_at,
        Some(now() - TimeDelta::hours(30) + TimeDelta::days(7))
    );
    let reply = d.reply(true).await.unwrap();
    assert_eq!(d.store.list_messages(&d.ticket).await.unwrap().len(), 2);
    assert_eq!(d.queue.0.lock().unwrap()[0].message_id, reply.id);
}
