//! The notifier over the embedded ticket store and event ledger, a small in-memory workflow
//! store, a fixed clock and recording mailer and webhook.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Duration as Span, TimeZone, Utc};
use crossdesk_core::events::{EventQueue, EventType, OutgoingEvent};
use crossdesk_core::notify::*;
use crossdesk_core::workflow::{
    AgentPreferences, ContactLinks, LinkSuggestion, MergeOutcome, TicketWorkflow, Versioned,
    WorkflowQuery, WorkflowStore,
};
use crossdesk_core::writer::TicketWriter;
use crossdesk_core::{
    Author, ChannelKind, Clock, ContactId, Conversation, Direction, EmailAddress, Message,
    MessageEvent, MessageId, QueueError, StoreError, TicketId, TicketStore, Visibility,
};
use crossdesk_embedded::{Database, SqliteEventLedger, SqliteStore};
use serde_json::json;

/// 2026-11-30 12:00:00 UTC (a window boundary for any window dividing an hour) plus `secs`.
fn at(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap() + Span::seconds(secs)
}

struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().unwrap() = t;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// The workflow store's notification parts, in memory (the real ones are tested by the store
/// contract).
#[derive(Default)]
struct MemoryWorkflow {
    workflows: Mutex<HashMap<TicketId, TicketWorkflow>>,
    prefs: Mutex<Vec<AgentPreferences>>,
    claims: Mutex<BTreeSet<String>>,
    cursors: Mutex<HashMap<String, String>>,
}

#[async_trait]
impl WorkflowStore for MemoryWorkflow {
    async fn workflow(
        &self,
        ticket: &TicketId,
    ) -> Result<Option<Versioned<TicketWorkflow>>, StoreError> {
        Ok(self
            .workflows
            .lock()
            .unwrap()
            .get(ticket)
            .map(|w| Versioned {
                value: w.clone(),
                version: 1,
            }))
    }
    async fn save_workflow(
        &self,
        workflow: &TicketWorkflow,
        _expected: Option<u64>,
    ) -> Result<bool, StoreError> {
        self.workflows
            .lock()
            .unwrap()
            .insert(workflow.ticket_id.clone(), workflow.clone());
        Ok(true)
    }
    async fn list_workflows(
        &self,
        _query: &WorkflowQuery,
    ) -> Result<Vec<TicketWorkflow>, StoreError> {
        Ok(self.workflows.lock().unwrap().values().cloned().collect())
    }
    async fn contact_links(&self, _contact: &ContactId) -> Result<ContactLinks, StoreError> {
        Ok(ContactLinks::default())
    }
    async fn merge_contacts(
        &self,
        _source: &ContactId,
        _target: &ContactId,
        _at: DateTime<Utc>,
    ) -> Result<MergeOutcome, StoreError> {
        Ok(MergeOutcome::Refused)
    }
    async fn unmerge_contact(&self, _source: &ContactId) -> Result<bool, StoreError> {
        Ok(false)
    }
    async fn suggest_link(
        &self,
        _contact: &ContactId,
        _suggestion: &LinkSuggestion,
    ) -> Result<(), StoreError> {
        Ok(())
    }
    async fn agent_preferences(
        &self,
        agent_id: &str,
    ) -> Result<Option<AgentPreferences>, StoreError> {
        Ok(self
            .prefs
            .lock()
            .unwrap()
            .iter()
            .find(|p| p.agent_id == agent_id)
            .cloned())
    }
    async fn save_agent_preferences(&self, prefs: &AgentPreferences) -> Result<(), StoreError> {
        let mut all = self.prefs.lock().unwrap();
        all.retain(|p| p.agent_id != prefs.agent_id);
        all.push(prefs.clone());
        Ok(())
    }
    async fn list_agent_preferences(&self) -> Result<Vec<AgentPreferences>, StoreError> {
        Ok(self.prefs.lock().unwrap().clone())
    }
    async fn claim_window(&self, window: &str, _at: DateTime<Utc>) -> Result<bool, StoreError> {
        Ok(self.claims.lock().unwrap().insert(window.to_string()))
    }
    async fn cursor(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(self.cursors.lock().unwrap().get(name).cloned())
    }
    async fn save_cursor(&self, name: &str, value: &str) -> Result<(), StoreError> {
        self.cursors
            .lock()
            .unwrap()
            .insert(name.to_string(), value.to_string());
        Ok(())
    }
}

/// Keeps what is published.
#[derive(Default)]
struct MemoryQueue(Mutex<Vec<OutgoingEvent>>);

#[async_trait]
impl EventQueue for MemoryQueue {
    async fn publish(&self, event: &OutgoingEvent) -> Result<(), QueueError> {
        self.0.lock().unwrap().push(event.clone());
        Ok(())
    }
}

impl MemoryQueue {
    fn take(&self) -> Vec<OutgoingEvent> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// Records mail; fails with the queued failures first.
#[derive(Default)]
struct RecordingMailer {
    sent: Mutex<Vec<NotificationMail>>,
    failures: Mutex<Vec<NotifySendError>>,
}

#[async_trait]
impl NotificationMailer for RecordingMailer {
    async fn send(&self, mail: &NotificationMail) -> Result<(), NotifySendError> {
        if let Some(e) = self.failures.lock().unwrap().pop() {
            return Err(e);
        }
        self.sent.lock().unwrap().push(mail.clone());
        Ok(())
    }
}

impl RecordingMailer {
    fn sent(&self) -> Vec<NotificationMail> {
        self.sent.lock().unwrap().clone()
    }

    /// Makes the next mail fail, retryably.
    fn fail_next(&self, reason: &str) {
        self.failures
            .lock()
            .unwrap()
            .push(NotifySendError::Retryable(reason.into()));
    }
}

#[derive(Default)]
struct RecordingWebhook(Mutex<Vec<(String, serde_json::Value)>>);

#[async_trait]
impl NotificationWebhook for RecordingWebhook {
    async fn post(&self, id: &str, payload: &serde_json::Value) -> Result<(), NotifySendError> {
        self.0
            .lock()
            .unwrap()
            .push((id.to_string(), payload.clone()));
        Ok(())
    }
}

struct Desk {
    clock: Arc<FixedClock>,
    workflow: Arc<MemoryWorkflow>,
    store: Arc<SqliteStore>,
    events: Arc<MemoryQueue>,
    writer: TicketWriter,
    mailer: Arc<RecordingMailer>,
    webhook: Arc<RecordingWebhook>,
    notifier: Notifier,
}

fn settings() -> NotificationSettings {
    NotificationSettings {
        enabled: true,
        console_url: Some("https://desk.example/".into()),
        ..NotificationSettings::default()
    }
}

fn desk() -> Desk {
    let database = Database::in_memory().unwrap();
    let store = Arc::new(SqliteStore::new(database.clone()));
    let clock = Arc::new(FixedClock(Mutex::new(at(0))));
    let workflow = Arc::new(MemoryWorkflow::default());
    let events = Arc::new(MemoryQueue::default());
    let mailer = Arc::new(RecordingMailer::default());
    let webhook = Arc::new(RecordingWebhook::default());
    let notifier = Notifier::new(
        settings(),
        store.clone(),
        workflow.clone(),
        Arc::new(SqliteEventLedger::new(database)),
        clock.clone(),
    )
    .with_mailer(mailer.clone())
    .with_webhook(webhook.clone());
    Desk {
        writer: TicketWriter::new(store.clone()).with_events(events.clone()),
        clock,
        workflow,
        store,
        events,
        mailer,
        webhook,
        notifier,
    }
}

fn agent(id: &str, events: &[&str], teams: &[&str]) -> AgentPreferences {
    AgentPreferences {
        agent_id: id.into(),
        email: Some(format!("{id}@acme.example")),
        events: events.iter().map(|e| e.to_string()).collect(),
        teams: teams.iter().map(|t| t.to_string()).collect(),
    }
}

/// A chat message from the visitor of session `s1`, received at `secs`.
fn chat(id: &str, text: &str, secs: i64) -> Message {
    Message {
        id: MessageId::generate(),
        channel: ChannelKind::Chat,
        platform_message_id: Some(id.into()),
        conversation: Conversation::ChatSession {
            session_id: "s1".into(),
        },
        direction: Direction::Inbound,
        event: MessageEvent::Created,
        author: Author {
            platform_id: "v1".into(),
            name: Some("Alex".into()),
            email: None,
            handle: None,
        },
        text: text.into(),
        attachments: Vec::new(),
        visibility: Visibility::Private,
        sent_at: at(secs),
        received_at: at(secs),
        replies_to: Vec::new(),
        ticket_ref: None,
        subject: None,
        email: None,
        raw: None,
        delivery: None,
        signature_unverified: false,
        personal_data: Vec::new(),
        internal_note: false,
        monitoring: false,
    }
}

impl Desk {
    /// Writes a message and returns the events the writer published.
    async fn write(&self, message: Message) -> Vec<OutgoingEvent> {
        self.writer.write(&message).await.unwrap();
        self.events.take()
    }

    /// Writes a message and returns its `message.created` event.
    async fn write_message(&self, message: Message) -> OutgoingEvent {
        self.write(message)
            .await
            .into_iter()
            .find(|e| e.kind == EventType::MessageCreated)
            .unwrap()
    }

    /// Writes chat messages (platform id, text, second) and returns their `message.created`
    /// events.
    async fn write_chats<const N: usize>(
        &self,
        chats: [(&str, &str, i64); N],
    ) -> [OutgoingEvent; N] {
        let mut events = Vec::with_capacity(N);
        for (id, text, secs) in chats {
            events.push(self.write_message(chat(id, text, secs)).await);
        }
        events.try_into().unwrap()
    }

    async fn assign(&self, ticket: &TicketId, assignee: Option<&str>, team: Option<&str>) {
        let t = self.store.get_ticket(ticket).await.unwrap().unwrap();
        let mut w = TicketWorkflow::new(ticket.clone(), t.contact_id, t.channel, at(0));
        w.assignee = assignee.map(str::to_string);
        w.team = team.map(str::to_string);
        self.workflow.save_workflow(&w, None).await.unwrap();
    }

    async fn agents(&self, agents: Vec<AgentPreferences>) {
        for a in agents {
            self.workflow.save_agent_preferences(&a).await.unwrap();
        }
    }

    async fn handle(&self, event: &OutgoingEvent) -> NotifyOutcome {
        self.notifier.handle(event).await.unwrap()
    }
}

fn ticket_of(event: &OutgoingEvent) -> TicketId {
    Trigger::of(event).unwrap().ticket_id
}

/// A ticket with a first message at `secs`, assigned to `agent-1`; its `ticket.created` event.
async fn assigned_chat(desk: &Desk, secs: i64) -> (TicketId, OutgoingEvent) {
    let events = desk.write(chat("m0", "Hello", secs)).await;
    let created = events
        .into_iter()
        .find(|e| e.kind == EventType::TicketCreated)
        .unwrap();
    let ticket = ticket_of(&created);
    desk.assign(&ticket, Some("agent-1"), None).await;
    (ticket, created)
}

/// A desk where `agent-1`, subscribed to new messages, is assigned a chat ticket opened at 0.
async fn desk_with_agent_on_a_chat() -> Desk {
    let desk = desk();
    desk.agents(vec![agent("agent-1", &["message.created"], &[])])
        .await;
    assigned_chat(&desk, 0).await;
    desk
}

#[tokio::test]
async fn the_first_event_of_a_window_goes_at_once_and_the_rest_in_one_digest() {
    let desk = desk_with_agent_on_a_chat().await;
    let [m1, m2, m3] = desk
        .write_chats([
            ("m1", "My order is late", 65),
            ("m2", "Order 1234", 70),
            ("m3", "Anyone there?", 100),
        ])
        .await;

    desk.clock.set(at(66));
    assert_eq!(desk.handle(&m1).await, NotifyOutcome::SentImmediately);
    desk.clock.set(at(71));
    assert_eq!(
        desk.handle(&m2).await,
        NotifyOutcome::Deferred {
            after: Duration::from_secs(51)
        },
        "due at the window's end (120 s) and the settle time"
    );
    desk.clock.set(at(101));
    assert!(matches!(
        desk.handle(&m3).await,
        NotifyOutcome::Deferred { .. }
    ));
    let mails = desk.mailer.sent();
    assert_eq!(mails.len(), 1, "no storm: one mail so far");
    assert!(mails[0]
        .subject
        .starts_with("[Crossdesk] New customer message: Hello [#"));
    assert!(
        mails[0].text.contains("Alex: My order is late"),
        "{}",
        mails[0].text
    );
    assert!(mails[0].text.contains("https://desk.example/tickets/"));
    assert_eq!(mails[0].to.as_str(), "agent-1@acme.example");

    // The queue brings both back after the window: one digest, the other is covered.
    desk.clock.set(at(123));
    assert_eq!(desk.handle(&m3).await, NotifyOutcome::SentDigest);
    assert_eq!(desk.handle(&m2).await, NotifyOutcome::Covered);
    let mails = desk.mailer.sent();
    assert_eq!(mails.len(), 2);
    let digest = &mails[1];
    assert!(digest.subject.contains("3 updates"), "{}", digest.subject);
    for text in ["My order is late", "Order 1234", "Anyone there?"] {
        assert!(digest.text.contains(text), "{}", digest.text);
    }
    let posts = desk.webhook.0.lock().unwrap().clone();
    assert_eq!(posts.len(), 2, "the webhook follows the same windows");
    assert_eq!(posts[1].1["type"], "notification.digest");
    assert_eq!(posts[1].1["items"].as_array().unwrap().len(), 3);
    assert_eq!(posts[1].1["recipients"], json!(["agent-1"]));
    assert!(posts[1].1["text"].as_str().unwrap().contains("3 updates"));

    // Redelivered by the queue: handled once.
    assert_eq!(desk.handle(&m1).await, NotifyOutcome::AlreadyHandled);
    assert_eq!(desk.handle(&m3).await, NotifyOutcome::AlreadyHandled);
    assert_eq!(desk.mailer.sent().len(), 2);
}

#[tokio::test]
async fn a_later_digest_covers_what_the_last_one_did_not() {
    let desk = desk_with_agent_on_a_chat().await;
    let [first, second] = desk
        .write_chats([("m1", "one", 61), ("m2", "two", 62)])
        .await;
    desk.clock.set(at(62));
    desk.handle(&first).await;
    desk.handle(&second).await;
    desk.clock.set(at(125));
    assert_eq!(desk.handle(&second).await, NotifyOutcome::SentDigest);
    // Next window: again one at once, one in the digest, which starts where the last ended.
    let [third, fourth] = desk
        .write_chats([("m3", "three", 130), ("m4", "four", 131)])
        .await;
    desk.clock.set(at(131));
    assert_eq!(desk.handle(&third).await, NotifyOutcome::SentImmediately);
    assert!(matches!(
        desk.handle(&fourth).await,
        NotifyOutcome::Deferred { .. }
    ));
    desk.clock.set(at(190));
    assert_eq!(desk.handle(&fourth).await, NotifyOutcome::SentDigest);
    let digest = desk.mailer.sent().pop().unwrap();
    assert!(digest.text.contains("three") && digest.text.contains("four"));
    assert!(!digest.text.contains("two"), "{}", digest.text);
}

#[tokio::test]
async fn a_failed_immediate_mail_is_delivered_in_the_digest() {
    let desk = desk_with_agent_on_a_chat().await;
    let m1 = desk.write_message(chat("m1", "Help", 61)).await;
    desk.mailer.fail_next("throttled");
    desk.clock.set(at(62));
    let err = desk.notifier.handle(&m1).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    // The queue retries: the window is taken, so it waits for the digest.
    desk.clock.set(at(64));
    assert!(matches!(
        desk.handle(&m1).await,
        NotifyOutcome::Deferred { .. }
    ));
    desk.clock.set(at(122));
    assert_eq!(desk.handle(&m1).await, NotifyOutcome::SentDigest);
    let mails = desk.mailer.sent();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].text.contains("Help"));
}

#[tokio::test]
async fn a_failing_digest_sender_is_taken_over_in_the_next_epoch() {
    let desk = desk_with_agent_on_a_chat().await;
    let [m1, m2, m3] = desk
        .write_chats([("m1", "a", 61), ("m2", "b", 62), ("m3", "c", 63)])
        .await;
    desk.clock.set(at(63));
    desk.handle(&m1).await;
    desk.handle(&m2).await;
    desk.handle(&m3).await;
    desk.clock.set(at(125));
    desk.mailer.fail_next("down");
    assert!(desk.notifier.handle(&m2).await.is_err());
    assert_eq!(
        desk.handle(&m3).await,
        NotifyOutcome::Deferred {
            after: Duration::from_secs(60)
        },
        "m2 holds this epoch's digest"
    );
    desk.clock.set(at(185));
    assert_eq!(desk.handle(&m3).await, NotifyOutcome::SentDigest);
    assert_eq!(desk.handle(&m2).await, NotifyOutcome::Covered);
    assert_eq!(
        desk.mailer.sent().len(),
        2,
        "the immediate one and one digest"
    );
}

#[tokio::test]
async fn recipients_follow_subscriptions_and_assignment() {
    let agents = vec![
        agent(
            "a",
            &["ticket.created", "message.created", "sla.breached"],
            &["billing"],
        ),
        agent("b", &["message.created", "sla.breached"], &[]),
        agent("c", &["chat.waiting"], &["billing"]),
    ];
    let names = |kind, w: Option<&TicketWorkflow>| {
        recipients(kind, w, &agents)
            .into_iter()
            .map(|a| a.agent_id.as_str())
            .collect::<Vec<_>>()
    };
    let ticket = TicketId::parse("K3F9Q2XA").unwrap();
    let mut w = TicketWorkflow::new(ticket, ContactId::generate(), ChannelKind::Chat, at(0));
    assert_eq!(names(NotifyKind::TicketCreated, Some(&w)), ["a"]);
    assert!(
        names(NotifyKind::MessageCreated, Some(&w)).is_empty(),
        "unassigned: nobody hears of each message"
    );
    assert_eq!(names(NotifyKind::SlaBreached, Some(&w)), ["a", "b"]);
    assert_eq!(names(NotifyKind::ChatWaiting, None), ["c"]);
    w.team = Some("billing".into());
    assert_eq!(names(NotifyKind::MessageCreated, Some(&w)), ["a"]);
    assert_eq!(names(NotifyKind::SlaBreached, Some(&w)), ["a"]);
    w.assignee = Some("b".into());
    assert_eq!(names(NotifyKind::MessageCreated, Some(&w)), ["a", "b"]);
}

#[tokio::test]
async fn replies_notes_edits_and_unassigned_messages_notify_nobody() {
    let desk = desk();
    desk.agents(vec![agent(
        "agent-1",
        &["ticket.created", "message.created"],
        &[],
    )])
    .await;
    let events = desk.write(chat("m0", "Hello", 0)).await;
    let (created, first): (Vec<_>, Vec<_>) = events
        .into_iter()
        .partition(|e| e.kind == EventType::TicketCreated);
    assert_eq!(
        desk.handle(&created[0]).await,
        NotifyOutcome::SentImmediately
    );
    assert_eq!(
        desk.handle(&first[0]).await,
        NotifyOutcome::Ignored,
        "not assigned yet"
    );
    let mut note = chat("n1", "internal", 5);
    note.internal_note = true;
    let mut reply = chat("r1", "Hi!", 6);
    reply.direction = Direction::Outbound;
    for message in [note, reply] {
        let event = OutgoingEvent::message_created(&ticket_of(&created[0]), &message);
        assert_eq!(Trigger::of(&event), None);
    }
    let mails = desk.mailer.sent();
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0].subject.contains("New ticket"),
        "{}",
        mails[0].subject
    );
}

#[tokio::test]
async fn sla_breaches_reach_everyone_subscribed_while_unassigned() {
    let desk = desk();
    desk.agents(vec![
        agent("a", &["sla.breached"], &[]),
        agent("b", &["sla.breached"], &[]),
        agent("c", &["ticket.created"], &[]),
    ])
    .await;
    let events = desk.write(chat("m0", "Hello", 0)).await;
    let ticket = ticket_of(&events[0]);
    let t = desk.store.get_ticket(&ticket).await.unwrap().unwrap();
    let w = TicketWorkflow::new(ticket, t.contact_id, t.channel, at(0));
    let breach = OutgoingEvent::sla_breached(&w, at(600));
    desk.clock.set(at(601));
    assert_eq!(desk.handle(&breach).await, NotifyOutcome::SentImmediately);
    let to: Vec<String> = desk
        .mailer
        .sent()
        .iter()
        .map(|m| m.to.to_string())
        .collect();
    assert_eq!(to, ["a@acme.example", "b@acme.example"]);
    assert!(desk.mailer.sent()[0]
        .text
        .contains("first response is overdue"));
}

#[tokio::test]
async fn a_chat_waiting_too_long_is_raised_once_until_answered() {
    let desk = desk();
    desk.agents(vec![agent("agent-1", &["chat.waiting"], &[])])
        .await;
    let events = desk.write(chat("m0", "Is anyone there?", 0)).await;
    let ticket = ticket_of(&events[0]);
    let check = ChatWaitingCheck::new(settings(), desk.store.clone(), desk.events.clone());
    assert_eq!(check.run_once(at(60)).await.unwrap().raised, 0);
    assert_eq!(check.run_once(at(121)).await.unwrap().raised, 1);
    assert_eq!(check.run_once(at(181)).await.unwrap().raised, 1);
    let raised = desk.events.take();
    assert_eq!(
        raised[0].id, raised[1].id,
        "the same waiting message, the same event"
    );
    assert_eq!(raised[0].kind, EventType::ChatWaiting);
    desk.clock.set(at(121));
    assert_eq!(
        desk.handle(&raised[0]).await,
        NotifyOutcome::SentImmediately
    );
    assert_eq!(desk.handle(&raised[1]).await, NotifyOutcome::AlreadyHandled);
    let mails = desk.mailer.sent();
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0].text.contains("Alex has waited since 12:00:00"),
        "{}",
        mails[0].text
    );

    // An agent answers: nothing waits any more.
    let mut reply = chat("r1", "Yes, hi!", 200);
    reply.direction = Direction::Outbound;
    reply.ticket_ref = Some(ticket);
    desk.write(reply).await;
    assert_eq!(check.run_once(at(260)).await.unwrap().raised, 0);
    // Long forgotten chats are not reported forever.
    let late = desk.write(chat("m9", "Hello again", 300)).await;
    assert!(!late.is_empty());
    assert_eq!(
        check
            .run_once(at(300 + 120 + 15 * 60))
            .await
            .unwrap()
            .raised,
        0
    );
}

#[test]
fn settings_have_defaults_and_refuse_unknown_fields() {
    let s: NotificationSettings = serde_json::from_str("{}").unwrap();
    assert_eq!(s, NotificationSettings::default());
    assert!(!s.enabled);
    assert_eq!((s.digest_window_seconds, s.chat_waiting_seconds), (60, 120));
    assert!(serde_json::from_str::<NotificationSettings>(r#"{"enable": true}"#).is_err());
    let bad = NotificationSettings {
        digest_window_seconds: 0,
        ..NotificationSettings::default()
    };
    assert_eq!(bad.validate().unwrap_err().name, "digest_window_seconds");
}

#[test]
fn settings_from_the_environment_name_the_bad_variable() {
    let env = |vars: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    };
    let s = NotificationSettings::from_lookup(env(&[
        ("CROSSDESK_NOTIFY_ENABLED", "true"),
        ("CROSSDESK_NOTIFY_DIGEST_WINDOW_SECONDS", "30"),
        ("CROSSDESK_NOTIFY_FROM", "Desk@Acme.example"),
        ("CROSSDESK_CONSOLE_URL", "https://desk.acme.example"),
    ]))
    .unwrap();
    assert!(s.enabled);
    assert_eq!(s.digest_window_seconds, 30);
    assert_eq!(s.from_address.unwrap().as_str(), "desk@acme.example");
    let err = NotificationSettings::from_lookup(env(&[(
        "CROSSDESK_NOTIFY_CHAT_WAITING_SECONDS",
        "soon",
    )]))
    .unwrap_err();
    assert_eq!(err.name, "CROSSDESK_NOTIFY_CHAT_WAITING_SECONDS");
}

#[test]
fn a_mail_lists_only_its_recipients_items_on_one_subject_line() {
    let notification = Notification {
        id: "ntf_1".into(),
        ticket_id: TicketId::parse("K3F9Q2XA").unwrap(),
        subject: "Broken\r\nBcc: x@evil.example".into(),
        channel: ChannelKind::Email,
        digest: true,
        since: at(0),
        url: None,
        items: vec![
            NotificationItem {
                kind: NotifyKind::MessageCreated,
                at: at(1),
                text: "for a".into(),
                recipients: ["a".to_string()].into(),
            },
            NotificationItem {
                kind: NotifyKind::SlaBreached,
                at: at(2),
                text: "for b".into(),
                recipients: ["b".to_string()].into(),
            },
        ],
    };
    let to = EmailAddress::parse("a@acme.example").unwrap();
    let mail = notification.mail_for("a", &to).unwrap();
    assert!(!mail.subject.contains('\n') && !mail.subject.contains('\r'));
    assert!(mail.text.contains("for a") && !mail.text.contains("for b"));
    assert!(notification.mail_for("c", &to).is_none());
    let payload = notification.webhook_payload();
    assert_eq!(payload["recipients"], json!(["a", "b"]));
    assert!(payload["text"].as_str().unwrap().contains("#K3F9Q2XA"));
}

#[tokio::test]
async fn a_later_windows_digest_sent_first_still_covers_the_failed_one() {
    let desk = desk_with_agent_on_a_chat().await;
    let [m1, m2] = desk
        .write_chats([("m1", "one", 61), ("m2", "two", 62)])
        .await;
    desk.clock.set(at(62));
    desk.handle(&m1).await;
    desk.handle(&m2).await;
    // The window's digest fails; meanwhile the next window fills.
    desk.clock.set(at(123));
    desk.mailer.fail_next("down");
    assert!(desk.notifier.handle(&m2).await.is_err());
    let [m3, m4] = desk
        .write_chats([("m3", "three", 130), ("m4", "four", 131)])
        .await;
    desk.clock.set(at(131));
    assert_eq!(desk.handle(&m3).await, NotifyOutcome::SentImmediately);
    desk.handle(&m4).await;
    desk.clock.set(at(185));
    assert_eq!(desk.handle(&m4).await, NotifyOutcome::SentDigest);
    let digest = desk.mailer.sent().pop().unwrap();
    for text in ["two", "three", "four"] {
        assert!(digest.text.contains(text), "{}", digest.text);
    }
    assert_eq!(desk.handle(&m2).await, NotifyOutcome::Covered);
}
