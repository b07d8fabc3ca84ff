//! Agent notifications: new tickets, new customer messages on assigned tickets, chats waiting
//! for an answer and SLA breaches reach the agents who asked for them, by mail and through one
//! signed webhook (a Slack or Teams incoming webhook behind a relay), without storms.
//!
//! # Who is notified
//!
//! Each agent chooses events in their [`AgentPreferences`]:
//!
//! | event | recipients |
//! |---|---|
//! | `ticket.created` | every agent subscribed |
//! | `message.created` (a customer's own message, not a note, not automatic mail) | the assignee and the members of the assigned team, if subscribed; nobody while unassigned |
//! | `sla.breached` | the assignee and the team's members if subscribed; every subscribed agent while unassigned |
//! | `chat.waiting` | every agent subscribed |
//!
//! Mail goes to each recipient's address; the webhook gets one POST per notification (when it
//! has any recipient) naming the recipients, so a chat bot can mention them.
//!
//! # Digests: at most one notification per ticket per window
//!
//! Time is cut into windows of `digest_window_seconds` (window `k` is
//! `[k·W, (k+1)·W)` in Unix seconds). The [`Notifier`] takes each [`OutgoingEvent`] from the
//! events queue (at least once, in any order) and:
//!
//! 1. claims `<ticket>:<window start>` for the window of the event's time
//!    ([`WorkflowStore::claim_window`]). The one event that wins sends an **immediate**
//!    notification about itself.
//! 2. Every other event of that window is **deferred** to the window's end: the queue hands it
//!    back then ([`NotifyOutcome::Deferred`]). Back, it checks the ticket's digest cursor
//!    (`notify:<ticket>`, the end of the last window a digest covered): covered, it is done.
//!    Otherwise it claims `<ticket>:<window start>:digest:<epoch>` (`epoch`: whole windows since
//!    the window ended) and the winner sends **one digest** of everything on the ticket since
//!    the cursor (for a ticket's first digest: since its creation, at most ten windows back),
//!    read from the ticket's messages and workflow, then moves the cursor. A loser comes back one window later: by then the digest
//!    went out (cursor moved, done), or its sender failed and this one takes over in a new
//!    epoch.
//!
//! So per ticket and window a recipient gets at most the immediate notification of the
//! window's first event and, once the window is over, one digest of the rest; nothing is
//! acknowledged before a notification that covers it went out. A notification whose mail or
//! webhook failed for a passing reason is retried through the queue: the immediate one then
//! becomes part of the digest, a digest is sent again in the next epoch (a recipient it had
//! already reached gets it twice: the one duplicate this design allows, instead of a loss).
//! Events already handled are recorded in the [`EventLedger`] under [`NOTIFIER_LEDGER_KEY`], so
//! an event published twice notifies once.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use thiserror::Error;
use tracing::{info, warn};

use crate::events::{EventId, EventLedger, EventQueue, EventType, OutgoingEvent, PublishError};
use crate::ids::{EmailAddress, TicketId};
use crate::model::{
    first_line, ChannelKind, Direction, Message, MessageEvent, Ticket, TicketStatus,
};
use crate::ports::{Clock, StoreError, TicketFilter, TicketStore, MAX_LIST_LIMIT};
use crate::workflow::{AgentPreferences, TicketWorkflow, WorkflowStore};

/// The endpoint key under which the notifier records the events it handled in the ledger.
pub const NOTIFIER_LEDGER_KEY: &str = "notifier";

/// How long after a window's end its digest is built (messages stored a moment late are in).
const SETTLE: Duration = Duration::from_secs(2);

/// The longest span a digest looks back.
const MAX_DIGEST_SPAN_SECONDS: i64 = 24 * 60 * 60;

/// How many windows before its own a ticket's first digest looks back.
const FIRST_DIGEST_WINDOWS: i64 = 10;

/// How many characters of a message a notification quotes.
const PREVIEW_CHARS: usize = 140;

/// The most items a digest lists one by one (the rest are counted).
const MAX_LISTED_ITEMS: usize = 10;

/// How long a waiting chat keeps being reported by [`ChatWaitingCheck`] (the event id is the
/// same every time, so it notifies once; the span only bounds the queue traffic).
const CHAT_WAITING_REPORT_SPAN_SECONDS: i64 = 15 * 60;

/// What an agent can be notified of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum NotifyKind {
    /// A new ticket.
    #[serde(rename = "ticket.created")]
    TicketCreated,
    /// A customer wrote on an assigned ticket.
    #[serde(rename = "message.created")]
    MessageCreated,
    /// A chat waits for an answer.
    #[serde(rename = "chat.waiting")]
    ChatWaiting,
    /// A ticket missed its first-response target.
    #[serde(rename = "sla.breached")]
    SlaBreached,
}

impl NotifyKind {
    /// Every kind.
    pub const ALL: [NotifyKind; 4] = [
        NotifyKind::TicketCreated,
        NotifyKind::MessageCreated,
        NotifyKind::ChatWaiting,
        NotifyKind::SlaBreached,
    ];

    /// The name agents subscribe with (the event type's name).
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyKind::TicketCreated => "ticket.created",
            NotifyKind::MessageCreated => "message.created",
            NotifyKind::ChatWaiting => "chat.waiting",
            NotifyKind::SlaBreached => "sla.breached",
        }
    }
}

impl fmt::Display for NotifyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A notification event name that is not one Crossdesk sends.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("unknown notification event `{0}` (expected ticket.created, message.created, chat.waiting or sla.breached)")]
pub struct UnknownNotifyKind(pub String);

impl FromStr for NotifyKind {
    type Err = UnknownNotifyKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NotifyKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownNotifyKind(s.to_string()))
    }
}

fn default_digest_window() -> u64 {
    60
}

fn default_chat_waiting() -> u64 {
    120
}

/// How notifications are sent: the `[notifications]` settings (or `CROSSDESK_NOTIFY_*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationSettings {
    /// Whether agents are notified at all.
    #[serde(default)]
    pub enabled: bool,
    /// The digest window: at most one immediate notification and one digest per ticket per
    /// window (seconds, 1 to 3600; default 60).
    #[serde(default = "default_digest_window")]
    pub digest_window_seconds: u64,
    /// How long a chat's customer message may wait for an agent before `chat.waiting` (seconds,
    /// default 120).
    #[serde(default = "default_chat_waiting")]
    pub chat_waiting_seconds: u64,
    /// Where the signed webhook posts (none: no webhook).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// Who notification mail is from (none: no mail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_address: Option<EmailAddress>,
    /// The agent console's base URL: tickets are linked as `<console_url>/tickets/<id>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_url: Option<String>,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        NotificationSettings {
            enabled: false,
            digest_window_seconds: default_digest_window(),
            chat_waiting_seconds: default_chat_waiting(),
            webhook_url: None,
            from_address: None,
            console_url: None,
        }
    }
}

/// An invalid notification setting, naming it.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{name}: {reason}")]
pub struct SettingsError {
    /// The setting (or environment variable).
    pub name: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl NotificationSettings {
    /// Settings from `CROSSDESK_NOTIFY_ENABLED` (`true`/`false`),
    /// `CROSSDESK_NOTIFY_DIGEST_WINDOW_SECONDS`, `CROSSDESK_NOTIFY_CHAT_WAITING_SECONDS`,
    /// `CROSSDESK_NOTIFY_WEBHOOK_URL`, `CROSSDESK_NOTIFY_FROM` and `CROSSDESK_CONSOLE_URL`.
    pub fn from_lookup(env: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        NotificationSettings::default().with_overrides(env)
    }

    /// These settings (the `[notifications]` section of `crossdesk.toml`) with each
    /// `CROSSDESK_NOTIFY_*` / `CROSSDESK_CONSOLE_URL` variable that is set taking precedence.
    pub fn with_overrides(
        self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SettingsError> {
        let var = |name: &str| {
            env(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let mut settings = self;
        if let Some(v) = var("CROSSDESK_NOTIFY_ENABLED") {
            settings.enabled = match v.as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => {
                    return Err(SettingsError {
                        name: "CROSSDESK_NOTIFY_ENABLED",
                        reason: format!("`{v}` is not true or false"),
                    })
                }
            };
        }
        let seconds = |name: &'static str, v: String| {
            v.parse::<u64>().map_err(|_| SettingsError {
                name,
                reason: format!("`{v}` is not a number of seconds"),
            })
        };
        if let Some(v) = var("CROSSDESK_NOTIFY_DIGEST_WINDOW_SECONDS") {
            settings.digest_window_seconds = seconds("CROSSDESK_NOTIFY_DIGEST_WINDOW_SECONDS", v)?;
        }
        if let Some(v) = var("CROSSDESK_NOTIFY_CHAT_WAITING_SECONDS") {
            settings.chat_waiting_seconds = seconds("CROSSDESK_NOTIFY_CHAT_WAITING_SECONDS", v)?;
        }
        if let Some(url) = var("CROSSDESK_NOTIFY_WEBHOOK_URL") {
            settings.webhook_url = Some(url);
        }
        if let Some(v) = var("CROSSDESK_NOTIFY_FROM") {
            settings.from_address = Some(EmailAddress::parse(&v).map_err(|e| SettingsError {
                name: "CROSSDESK_NOTIFY_FROM",
                reason: e.to_string(),
            })?);
        }
        if let Some(url) = var("CROSSDESK_CONSOLE_URL") {
            settings.console_url = Some(url);
        }
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what the types alone cannot: the window is 1 to 3600 seconds, the chat wait at
    /// least 1 second, the URLs absolute http(s).
    pub fn validate(&self) -> Result<(), SettingsError> {
        if !(1..=3600).contains(&self.digest_window_seconds) {
            return Err(SettingsError {
                name: "digest_window_seconds",
                reason: format!("{} is not 1 to 3600", self.digest_window_seconds),
            });
        }
        if self.chat_waiting_seconds == 0 {
            return Err(SettingsError {
                name: "chat_waiting_seconds",
                reason: "must be at least 1".into(),
            });
        }
        for (name, url) in [
            ("webhook_url", &self.webhook_url),
            ("console_url", &self.console_url),
        ] {
            if let Some(url) = url {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(SettingsError {
                        name,
                        reason: format!("`{url}` is not an http(s) URL"),
                    });
                }
            }
        }
        Ok(())
    }

    /// The digest window as seconds (at least 1).
    fn window(&self) -> i64 {
        self.digest_window_seconds.clamp(1, 3600) as i64
    }

    /// The link to a ticket in the console.
    pub fn ticket_url(&self, ticket: &TicketId) -> Option<String> {
        self.console_url
            .as_ref()
            .map(|base| format!("{}/tickets/{ticket}", base.trim_end_matches('/')))
    }
}

/// One mail to one agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationMail {
    /// The agent's address.
    pub to: EmailAddress,
    /// The subject line (single line).
    pub subject: String,
    /// The plain-text body.
    pub text: String,
}

/// Why a notification could not be sent.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum NotifySendError {
    /// A passing failure (throttled, unreachable, 5xx): sending again may succeed.
    #[error("notification not sent, will retry: {0}")]
    Retryable(String),
    /// Refused for good (an address or endpoint that cannot take it).
    #[error("notification refused: {0}")]
    Permanent(String),
}

/// Sends notification mail (SES in AWS, a spool folder locally).
#[async_trait]
pub trait NotificationMailer: Send + Sync {
    /// Sends one mail.
    async fn send(&self, mail: &NotificationMail) -> Result<(), NotifySendError>;
}

/// Posts notifications to the team's webhook, signed.
#[async_trait]
pub trait NotificationWebhook: Send + Sync {
    /// Posts one notification's JSON ([`Notification::webhook_payload`]); `id` is its
    /// notification id (the same on every retry).
    async fn post(&self, id: &str, payload: &serde_json::Value) -> Result<(), NotifySendError>;
}

/// Why the notifier could not handle an event.
#[derive(Debug, Error)]
pub enum NotifyError {
    /// The ticket or workflow store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A mail or the webhook failed for a passing reason; the event is handled again later.
    #[error("{0}")]
    Send(NotifySendError),
    /// A chat waiting event could not be queued.
    #[error(transparent)]
    Publish(#[from] PublishError),
}

impl NotifyError {
    /// Whether handling the event again may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            NotifyError::Store(e) => e.is_retryable(),
            NotifyError::Send(e) => matches!(e, NotifySendError::Retryable(_)),
            NotifyError::Publish(e) => e.is_retryable(),
        }
    }
}

/// What the notifier did with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyOutcome {
    /// Not something agents are notified of (or notifications are off, or nobody wants it).
    Ignored,
    /// Handled before (recorded in the ledger).
    AlreadyHandled,
    /// It was its window's first: sent at once.
    SentImmediately,
    /// It was in a window's digest, which this event's handling sent.
    SentDigest,
    /// A digest already covers it.
    Covered,
    /// Hand the event back and bring it again after this long (its window's digest is due then).
    Deferred {
        /// The wait.
        after: Duration,
    },
}

/// What an event asks agents to hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// The ticket.
    pub ticket_id: TicketId,
    /// What happened.
    pub kind: NotifyKind,
    /// When.
    pub at: DateTime<Utc>,
    /// The customer's message it is about, when the event carries one.
    pub message: Option<Message>,
}

impl Trigger {
    /// The trigger of an event, or `None` when agents are never notified of it (delivery
    /// changes, agents' replies, notes, automatic mail, edits).
    pub fn of(event: &OutgoingEvent) -> Option<Trigger> {
        let data = &event.data;
        let message = || serde_json::from_value::<Message>(data.get("message")?.clone()).ok();
        let ticket_id = |value: Option<&serde_json::Value>| {
            value
                .and_then(|v| v.as_str())
                .and_then(|s| TicketId::parse(s).ok())
        };
        let (kind, ticket_id, message) = match event.kind {
            EventType::TicketCreated => (
                NotifyKind::TicketCreated,
                ticket_id(data.get("ticket").and_then(|t| t.get("id")))?,
                message(),
            ),
            EventType::MessageCreated => {
                let message = message()?;
                if !is_customer_message(&message) {
                    return None;
                }
                (
                    NotifyKind::MessageCreated,
                    ticket_id(data.get("ticket_id"))?,
                    Some(message),
                )
            }
            EventType::SlaBreached => (
                NotifyKind::SlaBreached,
                ticket_id(data.get("ticket_id"))?,
                None,
            ),
            EventType::ChatWaiting => (
                NotifyKind::ChatWaiting,
                ticket_id(data.get("ticket_id"))?,
                message(),
            ),
            EventType::MessageDeliveryChanged => return None,
        };
        Some(Trigger {
            ticket_id,
            kind,
            at: event.created_at,
            message,
        })
    }
}

/// A customer's own new message: inbound, not a note, not automatic mail, not an edit.
fn is_customer_message(message: &Message) -> bool {
    message.direction == Direction::Inbound
        && !message.internal_note
        && !message.is_automatic()
        && message.event == MessageEvent::Created
}

/// The agents who get a notification of `kind` on a ticket with this workflow.
pub fn recipients<'a>(
    kind: NotifyKind,
    workflow: Option<&TicketWorkflow>,
    agents: &'a [AgentPreferences],
) -> Vec<&'a AgentPreferences> {
    let subscribed = |a: &&AgentPreferences| a.events.contains(kind.as_str());
    let assignee = workflow.and_then(|w| w.assignee.as_deref());
    let team = workflow.and_then(|w| w.team.as_deref());
    let on_ticket = |a: &&AgentPreferences| {
        assignee == Some(a.agent_id.as_str()) || team.is_some_and(|t| a.teams.contains(t))
    };
    let assigned = assignee.is_some() || team.is_some();
    agents
        .iter()
        .filter(subscribed)
        .filter(|a| match kind {
            NotifyKind::TicketCreated | NotifyKind::ChatWaiting => true,
            NotifyKind::MessageCreated => on_ticket(a),
            NotifyKind::SlaBreached => !assigned || on_ticket(a),
        })
        .collect()
}

/// One thing a notification reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotificationItem {
    /// What happened.
    #[serde(rename = "type")]
    pub kind: NotifyKind,
    /// When.
    pub at: DateTime<Utc>,
    /// One line for people.
    pub text: String,
    /// The agents it is for (ids).
    pub recipients: BTreeSet<String>,
}

/// An immediate notification or a digest about one ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    /// `ntf_` + 32 hex digits, derived from the ticket, the window and whether it is a digest.
    pub id: String,
    /// The ticket.
    pub ticket_id: TicketId,
    /// The ticket's subject.
    pub subject: String,
    /// The ticket's channel.
    pub channel: ChannelKind,
    /// Whether it summarizes a window (else it reports one event as it happened).
    pub digest: bool,
    /// The start of what it covers.
    pub since: DateTime<Utc>,
    /// The link to the ticket, when the console URL is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// What it reports, oldest first.
    pub items: Vec<NotificationItem>,
}

impl Notification {
    /// Every agent some item is for.
    pub fn recipients(&self) -> BTreeSet<String> {
        self.items
            .iter()
            .flat_map(|i| i.recipients.iter().cloned())
            .collect()
    }

    /// The mail for one agent (only the items for them), or `None` when none is.
    pub fn mail_for(&self, agent_id: &str, to: &EmailAddress) -> Option<NotificationMail> {
        let items: Vec<&NotificationItem> = self
            .items
            .iter()
            .filter(|i| i.recipients.contains(agent_id))
            .collect();
        let first = items.first()?;
        let summary = if items.len() == 1 {
            headline(first.kind).to_string()
        } else {
            format!("{} updates", items.len())
        };
        let subject = single_line(&format!(
            "[Crossdesk] {summary}: {} [#{}]",
            self.subject, self.ticket_id
        ));
        let mut text = format!(
            "{} on ticket #{} ({}, {}):\n\n",
            if self.digest {
                format!("Since {}", self.since.format("%Y-%m-%d %H:%M:%S UTC"))
            } else {
                "New".to_string()
            },
            self.ticket_id,
            self.subject,
            self.channel
        );
        for item in items.iter().take(MAX_LISTED_ITEMS) {
            text.push_str(&format!(
                "- {} {}: {}\n",
                item.at.format("%H:%M:%S"),
                headline(item.kind),
                item.text
            ));
        }
        if items.len() > MAX_LISTED_ITEMS {
            text.push_str(&format!(
                "- … and {} more\n",
                items.len() - MAX_LISTED_ITEMS
            ));
        }
        if let Some(url) = &self.url {
            text.push_str(&format!("\nOpen the ticket: {url}\n"));
        }
        text.push_str(
            "\nYou get this because of your notification settings (GET/PUT /api/agents/me/notifications).\n",
        );
        Some(NotificationMail {
            to: to.clone(),
            subject,
            text,
        })
    }

    /// The webhook's JSON: `text` (Slack mrkdwn, what a Slack incoming webhook shows) and the
    /// structured fields (`id`, `type`, `ticket_id`, `subject`, `channel`, `digest`, `since`,
    /// `url`, `recipients`, `items`).
    pub fn webhook_payload(&self) -> serde_json::Value {
        let mut text = format!(
            "*{}* on <{}|#{}> {}",
            if self.digest {
                format!("{} updates", self.items.len())
            } else {
                self.items
                    .first()
                    .map(|i| headline(i.kind).to_string())
                    .unwrap_or_default()
            },
            self.url.as_deref().unwrap_or(""),
            self.ticket_id,
            self.subject
        );
        if self.url.is_none() {
            text = text.replace(
                &format!("<|#{}>", self.ticket_id),
                &format!("#{}", self.ticket_id),
            );
        }
        for item in self.items.iter().take(MAX_LISTED_ITEMS) {
            text.push_str(&format!("\n• {}: {}", headline(item.kind), item.text));
        }
        let recipients = self.recipients();
        if !recipients.is_empty() {
            text.push_str(&format!(
                "\nFor: {}",
                recipients.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        json!({
            "text": text,
            "id": self.id,
            "type": if self.digest { "notification.digest" } else { "notification" },
            "ticket_id": self.ticket_id,
            "subject": self.subject,
            "channel": self.channel,
            "digest": self.digest,
            "since": self.since,
            "url": self.url,
            "recipients": recipients,
            "items": self.items,
        })
    }
}

/// The short name of a kind, for people.
fn headline(kind: NotifyKind) -> &'static str {
    match kind {
        NotifyKind::TicketCreated => "New ticket",
        NotifyKind::MessageCreated => "New customer message",
        NotifyKind::ChatWaiting => "Chat waiting",
        NotifyKind::SlaBreached => "SLA breached",
    }
}

/// Control characters (CR, LF, …) become spaces: header-safe text.
fn single_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `ntf_` + the first 128 bits of SHA-256 of the parts, in hex.
fn notification_id(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hash.update(b"\n");
        }
        hash.update(part.as_bytes());
    }
    format!("ntf_{}", hex::encode(&hash.finalize()[..16]))
}

fn at_seconds(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(seconds, 0).single().unwrap_or_default()
}

/// Sends agent notifications for outgoing events.
#[derive(Clone)]
pub struct Notifier {
    settings: Arc<NotificationSettings>,
    tickets: Arc<dyn TicketStore>,
    workflow: Arc<dyn WorkflowStore>,
    ledger: Arc<dyn EventLedger>,
    clock: Arc<dyn Clock>,
    mailer: Option<Arc<dyn NotificationMailer>>,
    webhook: Option<Arc<dyn NotificationWebhook>>,
}

impl Notifier {
    /// A notifier over the stores, without mail or webhook yet.
    pub fn new(
        settings: NotificationSettings,
        tickets: Arc<dyn TicketStore>,
        workflow: Arc<dyn WorkflowStore>,
        ledger: Arc<dyn EventLedger>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Notifier {
            settings: Arc::new(settings),
            tickets,
            workflow,
            ledger,
            clock,
            mailer: None,
            webhook: None,
        }
    }

    /// Sends mail through `mailer`.
    pub fn with_mailer(mut self, mailer: Arc<dyn NotificationMailer>) -> Self {
        self.mailer = Some(mailer);
        self
    }

    /// Posts to the webhook through `webhook`.
    pub fn with_webhook(mut self, webhook: Arc<dyn NotificationWebhook>) -> Self {
        self.webhook = Some(webhook);
        self
    }

    /// The settings.
    pub fn settings(&self) -> &NotificationSettings {
        &self.settings
    }

    /// Handles one event (one round of it: a [`NotifyOutcome::Deferred`] event must be brought
    /// back after the wait; an error leaves it to be brought back with the queue's backoff).
    #[tracing::instrument(skip_all, fields(event_id = %event.id, event_type = %event.kind))]
    pub async fn handle(&self, event: &OutgoingEvent) -> Result<NotifyOutcome, NotifyError> {
        if !self.settings.enabled {
            return Ok(NotifyOutcome::Ignored);
        }
        let Some(trigger) = Trigger::of(event) else {
            return Ok(NotifyOutcome::Ignored);
        };
        if self
            .ledger
            .is_delivered(&event.id, NOTIFIER_LEDGER_KEY)
            .await?
        {
            return Ok(NotifyOutcome::AlreadyHandled);
        }
        let outcome = self.handle_trigger(&trigger).await?;
        if !matches!(outcome, NotifyOutcome::Deferred { .. }) {
            self.ledger
                .record_delivered(&event.id, NOTIFIER_LEDGER_KEY, self.clock.now())
                .await?;
        }
        Ok(outcome)
    }

    async fn handle_trigger(&self, trigger: &Trigger) -> Result<NotifyOutcome, NotifyError> {
        let ticket_id = &trigger.ticket_id;
        let workflow = self.workflow.workflow(ticket_id).await?.map(|v| v.value);
        let agents = self.workflow.list_agent_preferences().await?;
        if recipients(trigger.kind, workflow.as_ref(), &agents).is_empty() {
            return Ok(NotifyOutcome::Ignored);
        }
        let window = self.settings.window();
        let start = trigger.at.timestamp().div_euclid(window) * window;
        let end = start + window;
        let now = self.clock.now();
        if self
            .workflow
            .claim_window(&format!("{ticket_id}:{start}"), now)
            .await?
        {
            let Some(ticket) = self.tickets.get_ticket(ticket_id).await? else {
                return Ok(NotifyOutcome::Ignored);
            };
            let item = self.item(trigger, &ticket, workflow.as_ref(), &agents);
            let notification = Notification {
                id: notification_id(&[ticket_id.as_str(), &start.to_string(), "immediate"]),
                ticket_id: ticket_id.clone(),
                subject: ticket.subject.clone(),
                channel: ticket.channel,
                digest: false,
                since: trigger.at,
                url: self.settings.ticket_url(ticket_id),
                items: item.into_iter().collect(),
            };
            self.send(&notification, &agents).await?;
            info!(ticket_id = %ticket_id, kind = %trigger.kind, "notified at once");
            return Ok(NotifyOutcome::SentImmediately);
        }
        // Another event of this window was sent at once: this one waits for the digest.
        let due = at_seconds(end) + chrono::Duration::from_std(SETTLE).unwrap_or_default();
        if now < due {
            let after = (due - now)
                .to_std()
                .unwrap_or(SETTLE)
                .max(Duration::from_secs(1));
            return Ok(NotifyOutcome::Deferred { after });
        }
        let cursor_name = format!("notify:{ticket_id}");
        let cursor = self.digest_cursor(&cursor_name).await?;
        if cursor.is_some_and(|c| c.timestamp() >= end) {
            return Ok(NotifyOutcome::Covered);
        }
        let epoch = (now.timestamp() - end).max(0) / window;
        if !self
            .workflow
            .claim_window(&format!("{ticket_id}:{start}:digest:{epoch}"), now)
            .await?
        {
            // Another event of the window is sending the digest; come back to see it done.
            return Ok(NotifyOutcome::Deferred {
                after: Duration::from_secs(window as u64),
            });
        }
        let Some(ticket) = self.tickets.get_ticket(ticket_id).await? else {
            return Ok(NotifyOutcome::Ignored);
        };
        let until = at_seconds(end);
        // Since the last digest; a ticket's first digest looks back to its creation, at most
        // FIRST_DIGEST_WINDOWS windows (so a digest of a later window that went out while this
        // one's sender was failing cannot leave this window's events out).
        let first_since = ticket
            .created_at
            .max(at_seconds(start - FIRST_DIGEST_WINDOWS * window));
        let since = cursor
            .unwrap_or(first_since)
            .max(until - chrono::Duration::seconds(MAX_DIGEST_SPAN_SECONDS));
        let notification = self
            .digest(
                &ticket,
                workflow.as_ref(),
                &agents,
                trigger,
                since,
                until,
                now,
            )
            .await?;
        if !notification.items.is_empty() {
            self.send(&notification, &agents).await?;
        }
        // Moved forward only: a digest of a later window may have gone out first.
        if self
            .digest_cursor(&cursor_name)
            .await?
            .is_none_or(|c| c < until)
        {
            self.workflow
                .save_cursor(&cursor_name, &until.to_rfc3339())
                .await?;
        }
        info!(ticket_id = %ticket_id, items = notification.items.len(), "digest sent");
        Ok(NotifyOutcome::SentDigest)
    }

    async fn digest_cursor(&self, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self
            .workflow
            .cursor(name)
            .await?
            .and_then(|v| DateTime::parse_from_rfc3339(&v).ok())
            .map(|t| t.with_timezone(&Utc)))
    }

    /// The item of one trigger, with its recipients; `None` when nobody wants it.
    fn item(
        &self,
        trigger: &Trigger,
        ticket: &Ticket,
        workflow: Option<&TicketWorkflow>,
        agents: &[AgentPreferences],
    ) -> Option<NotificationItem> {
        let text = match (trigger.kind, &trigger.message) {
            (NotifyKind::SlaBreached, _) => "the first response is overdue".to_string(),
            (NotifyKind::ChatWaiting, Some(m)) => format!(
                "{} has waited since {}: {}",
                author(m),
                m.received_at.format("%H:%M:%S"),
                first_line(&m.text, PREVIEW_CHARS)
            ),
            (_, Some(m)) => format!("{}: {}", author(m), first_line(&m.text, PREVIEW_CHARS)),
            (_, None) => ticket.preview.clone(),
        };
        let recipients: BTreeSet<String> = recipients(trigger.kind, workflow, agents)
            .into_iter()
            .map(|a| a.agent_id.clone())
            .collect();
        (!recipients.is_empty()).then(|| NotificationItem {
            kind: trigger.kind,
            at: trigger.at,
            text: single_line(&text),
            recipients,
        })
    }

    /// The digest of what happened on a ticket in `[since, until)`: its creation, its
    /// customers' messages, its SLA breach, a chat still waiting, and the event at hand.
    #[allow(clippy::too_many_arguments)]
    async fn digest(
        &self,
        ticket: &Ticket,
        workflow: Option<&TicketWorkflow>,
        agents: &[AgentPreferences],
        own: &Trigger,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Notification, StoreError> {
        let messages = self.tickets.list_messages(&ticket.id).await?;
        let within = |t: DateTime<Utc>| since <= t && t < until;
        let mut triggers: Vec<Trigger> = Vec::new();
        let first = messages.first();
        if within(ticket.created_at) {
            triggers.push(Trigger {
                ticket_id: ticket.id.clone(),
                kind: NotifyKind::TicketCreated,
                at: ticket.created_at,
                message: first.cloned(),
            });
        }
        for message in &messages {
            let is_first = first.is_some_and(|f| f.id == message.id);
            if is_customer_message(message)
                && within(message.received_at)
                && !(is_first && within(ticket.created_at))
            {
                triggers.push(Trigger {
                    ticket_id: ticket.id.clone(),
                    kind: NotifyKind::MessageCreated,
                    at: message.received_at,
                    message: Some(message.clone()),
                });
            }
        }
        if let Some(breach) = workflow.and_then(|w| w.sla.breach_raised_at) {
            if within(breach) {
                triggers.push(Trigger {
                    ticket_id: ticket.id.clone(),
                    kind: NotifyKind::SlaBreached,
                    at: breach,
                    message: None,
                });
            }
        }
        if ticket.channel == ChannelKind::Chat {
            if let Some(waiting) = waiting_message(&messages) {
                let waited = now - waiting.received_at;
                if waited.num_seconds() >= self.settings.chat_waiting_seconds as i64 {
                    triggers.push(Trigger {
                        ticket_id: ticket.id.clone(),
                        kind: NotifyKind::ChatWaiting,
                        at: waiting.received_at,
                        message: Some(waiting.clone()),
                    });
                }
            }
        }
        let own_message = own.message.as_ref().map(|m| &m.id);
        let listed = triggers.iter().any(|t| {
            t.kind == own.kind
                || (own_message.is_some() && t.message.as_ref().map(|m| &m.id) == own_message)
        });
        if !listed {
            triggers.push(own.clone());
        }
        triggers.sort_by_key(|t| t.at);
        let items = triggers
            .iter()
            .filter_map(|t| self.item(t, ticket, workflow, agents))
            .collect();
        Ok(Notification {
            id: notification_id(&[ticket.id.as_str(), &until.timestamp().to_string(), "digest"]),
            ticket_id: ticket.id.clone(),
            subject: ticket.subject.clone(),
            channel: ticket.channel,
            digest: true,
            since,
            url: self.settings.ticket_url(&ticket.id),
            items,
        })
    }

    /// Mails each recipient and posts to the webhook. A permanent refusal is logged and
    /// skipped (sending again cannot help); a passing failure fails the whole (after the other
    /// recipients were tried), to be handled again.
    async fn send(
        &self,
        notification: &Notification,
        agents: &[AgentPreferences],
    ) -> Result<(), NotifyError> {
        let recipients = notification.recipients();
        if recipients.is_empty() {
            return Ok(());
        }
        let mut retry: Option<NotifySendError> = None;
        let mut note = |e: NotifySendError, what: &str| {
            warn!(notification_id = %notification.id, error = %e, "{what}");
            if matches!(e, NotifySendError::Retryable(_)) {
                retry = Some(e);
            }
        };
        if let Some(mailer) = &self.mailer {
            for agent in agents.iter().filter(|a| recipients.contains(&a.agent_id)) {
                let Some(address) = agent
                    .email
                    .as_deref()
                    .and_then(|e| EmailAddress::parse(e).ok())
                else {
                    continue;
                };
                if let Some(mail) = notification.mail_for(&agent.agent_id, &address) {
                    if let Err(e) = mailer.send(&mail).await {
                        note(e, "notification mail not sent");
                    }
                }
            }
        }
        if let Some(webhook) = &self.webhook {
            if let Err(e) = webhook
                .post(&notification.id, &notification.webhook_payload())
                .await
            {
                note(e, "notification webhook not posted");
            }
        }
        match retry {
            Some(e) => Err(NotifyError::Send(e)),
            None => Ok(()),
        }
    }
}

fn author(message: &Message) -> String {
    message
        .author
        .name
        .clone()
        .or_else(|| message.author.email.as_ref().map(|e| e.to_string()))
        .or_else(|| message.author.handle.clone())
        .unwrap_or_else(|| "The customer".into())
}

/// The customer's message a chat waits on: the latest message that is not a note, when it is
/// the customer's own (an agent's reply, or a message sent outside Crossdesk, answers it).
pub fn waiting_message(messages: &[Message]) -> Option<&Message> {
    let latest = messages
        .iter()
        .rev()
        .find(|m| !m.internal_note && m.event != MessageEvent::Removed)?;
    is_customer_message(latest).then_some(latest)
}

/// `chat.waiting`: `data` = `{"ticket_id", "message": Message, "waiting_since"}`; the id is
/// derived from the waiting message: one event per customer message left unanswered.
pub fn chat_waiting_event(
    ticket_id: &TicketId,
    message: &Message,
    at: DateTime<Utc>,
) -> OutgoingEvent {
    OutgoingEvent {
        id: EventId::derive(EventType::ChatWaiting, &[message.id.as_str()]),
        kind: EventType::ChatWaiting,
        created_at: at,
        data: json!({
            "ticket_id": ticket_id,
            "message": message,
            "waiting_since": message.received_at,
        }),
    }
}

/// What one [`ChatWaitingCheck::run_once`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChatWaitingReport {
    /// Open chat tickets looked at.
    pub checked: usize,
    /// `chat.waiting` events queued.
    pub raised: usize,
}

/// Finds chats whose customer has waited longer than `chat_waiting_seconds` for an agent and
/// queues `chat.waiting` for them (meant to run every minute, e.g. from the SLA watch).
///
/// A chat is reported on every run while its wait is between `chat_waiting_seconds` and
/// 15 minutes more; the event id is the same every time (derived from the waiting message), so
/// the notifier and the integration webhook handle it once, and a run that failed to queue it
/// is made good by the next.
#[derive(Clone)]
pub struct ChatWaitingCheck {
    settings: Arc<NotificationSettings>,
    tickets: Arc<dyn TicketStore>,
    events: Arc<dyn EventQueue>,
}

impl ChatWaitingCheck {
    /// A check over the ticket store, queueing to `events`.
    pub fn new(
        settings: NotificationSettings,
        tickets: Arc<dyn TicketStore>,
        events: Arc<dyn EventQueue>,
    ) -> Self {
        ChatWaitingCheck {
            settings: Arc::new(settings),
            tickets,
            events,
        }
    }

    /// Checks the open chat tickets once.
    pub async fn run_once(&self, now: DateTime<Utc>) -> Result<ChatWaitingReport, NotifyError> {
        let mut report = ChatWaitingReport::default();
        if !self.settings.enabled {
            return Ok(report);
        }
        let tickets = self
            .tickets
            .list_tickets(&TicketFilter {
                status: Some(TicketStatus::Open),
                channel: Some(ChannelKind::Chat),
                limit: MAX_LIST_LIMIT,
                after: None,
            })
            .await?;
        let threshold = self.settings.chat_waiting_seconds as i64;
        for ticket in tickets {
            // The waiting message is at most as recent as the ticket's last activity.
            if (now - ticket.updated_at).num_seconds() < threshold {
                continue;
            }
            report.checked += 1;
            let messages = self.tickets.list_messages(&ticket.id).await?;
            let Some(waiting) = waiting_message(&messages) else {
                continue;
            };
            let waited = (now - waiting.received_at).num_seconds();
            if waited >= threshold && waited < threshold + CHAT_WAITING_REPORT_SPAN_SECONDS {
                let event = chat_waiting_event(&ticket.id, waiting, now);
                self.events
                    .publish(&event)
                    .await
                    .map_err(|source| PublishError {
                        id: event.id.clone(),
                        source,
                    })?;
                report.raised += 1;
            }
        }
        Ok(report)
    }
}
