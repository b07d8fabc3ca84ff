//! What the desk does with a message beyond storing it: the working state of its ticket.
//!
//! - Before the message is stored: personal data in a public customer message is found and
//!   flagged on the message ([`crate::personal_data`]).
//! - Where it goes: a customer known to Crossdesk who writes in a new conversation (a DM after
//!   a tweet) continues in their open ticket when it was active within the continuation window;
//!   a merged contact's messages count as the contact they were merged into.
//! - After it is stored: the ticket's workflow is created the first time (kind, SLA targets,
//!   [`crate::sla`]) and updated with each message (personal-data flag, the text similar
//!   tickets are found by, the similar tickets themselves, the first response).
//!
//! Every step is idempotent: a duplicate delivery runs the post-store step again, so a writer
//! that died between storing a message and updating its workflow is healed by the redelivery.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use tracing::{debug, warn};

use crate::ids::{ContactId, TicketId};
use crate::model::{ChannelKind, Direction, Identity, Message, Ticket, TicketStatus, Visibility};
use crate::personal_data::{message_personal_data, PersonalDataDetector};
use crate::ports::{StoreError, TicketReads, TicketStore};
use crate::similar::{extend_search_text, search_text_filled, SimilarityIndex};
use crate::sla::SlaPolicies;
use crate::workflow::{
    LinkSuggestion, SearchTextCover, TicketKind, TicketWorkflow, Versioned, WorkflowQuery,
    WorkflowStore,
};

/// How many similar tickets a ticket lists.
pub const SIMILAR_TICKETS: usize = 5;

/// How long after being solved a ticket still counts as "recently solved" for similarity.
pub const RECENTLY_SOLVED: TimeDelta = TimeDelta::days(30);

/// How many tickets similarity compares a message with (the most recently active).
pub const SIMILARITY_CANDIDATES: usize = crate::ports::MAX_LIST_LIMIT;

/// How often a lost compare-and-set of a workflow is retried before giving up.
const CAS_ATTEMPTS: u32 = 16;
/// How many of a ticket's first messages are read for its search text at first (all of them
/// when these do not settle it).
const FIRST_MESSAGES_READ: usize = 64;

/// The desk's reading of messages: personal data, SLA targets, similar tickets, continuation.
pub struct Triage {
    workflows: Arc<dyn WorkflowStore>,
    tickets: Arc<dyn TicketStore>,
    detector: Arc<PersonalDataDetector>,
    sla: Arc<SlaPolicies>,
    continue_within: TimeDelta,
}

impl Triage {
    /// Triage over these stores, with this detector and these SLA policies; a known customer's
    /// new conversation continues their ticket active within `continue_within`.
    pub fn new(
        workflows: Arc<dyn WorkflowStore>,
        tickets: Arc<dyn TicketStore>,
        detector: Arc<PersonalDataDetector>,
        sla: Arc<SlaPolicies>,
        continue_within: TimeDelta,
    ) -> Self {
        Triage {
            workflows,
            tickets,
            detector,
            sla,
            continue_within,
        }
    }

    /// The workflow store.
    pub fn workflows(&self) -> &Arc<dyn WorkflowStore> {
        &self.workflows
    }

    /// The message with the personal data found in it flagged; `None` when there is none.
    pub fn annotate(&self, message: &Message) -> Option<Message> {
        let found = message_personal_data(&self.detector, message);
        if found.is_empty() || found == message.personal_data {
            return None;
        }
        let mut flagged = message.clone();
        flagged.personal_data = found;
        Some(flagged)
    }

    /// The contact a contact stands for: the one it was merged into, or itself.
    pub async fn effective_contact(&self, contact: ContactId) -> Result<ContactId, StoreError> {
        Ok(self
            .workflows
            .contact_links(&contact)
            .await?
            .merged_into
            .unwrap_or(contact))
    }

    /// The contact and every contact merged into it.
    pub async fn contact_family(&self, contact: &ContactId) -> Result<Vec<ContactId>, StoreError> {
        let links = self.workflows.contact_links(contact).await?;
        let mut family = vec![contact.clone()];
        family.extend(links.merged);
        Ok(family)
    }

    /// Records that a chat visitor gave an email address another contact holds: the two may be
    /// one person, but chat input is unverified, so an agent decides. `contact` is the
    /// visitor's effective contact (merged into no other).
    pub async fn suggest_from_chat(
        &self,
        message: &Message,
        contact: &ContactId,
    ) -> Result<(), StoreError> {
        if message.channel != ChannelKind::Chat || message.direction != Direction::Inbound {
            return Ok(());
        }
        let Some(email) = &message.author.email else {
            return Ok(());
        };
        let identity = Identity::email(email);
        let Some(owner) = self.tickets.find_contact_by_identity(&identity).await? else {
            return Ok(());
        };
        if &owner == contact {
            // The visitor's own address (a new contact is given it): nothing to look up.
            return Ok(());
        }
        let owner = self.effective_contact(owner).await?;
        if &owner == contact {
            return Ok(());
        }
        debug!(%contact, other = %owner, "chat visitor gave a known email: link suggested");
        self.workflows
            .suggest_link(
                contact,
                &LinkSuggestion {
                    contact_id: owner,
                    identity,
                    at: message.received_at,
                },
            )
            .await
    }

    /// Records that a mail from `sender` (an effective contact) joined a ticket of another
    /// contact (a customer invited from social to mail): the two may be one person, and an
    /// agent decides.
    async fn suggest_from_mail(
        &self,
        message: &Message,
        sender: &ContactId,
        ticket: &Ticket,
    ) -> Result<(), StoreError> {
        if message.channel != ChannelKind::Email || message.direction != Direction::Inbound {
            return Ok(());
        }
        let Some(email) = &message.author.email else {
            return Ok(());
        };
        if &ticket.contact_id == sender {
            // The sender's own ticket (always so for a ticket the mail created): no lookup.
            return Ok(());
        }
        let owner = self.effective_contact(ticket.contact_id.clone()).await?;
        if &owner == sender {
            return Ok(());
        }
        self.workflows
            .suggest_link(
                &owner,
                &LinkSuggestion {
                    contact_id: sender.clone(),
                    identity: Identity::email(email),
                    at: message.received_at,
                },
            )
            .await
    }

    /// The ticket a customer's message in a conversation Crossdesk has not seen yet continues:
    /// the contact's most recently active ticket that is not solved, when it was active within
    /// the continuation window. Email is left to the email threading rules.
    pub async fn continuation(
        &self,
        message: &Message,
        contact: &ContactId,
    ) -> Result<Option<TicketId>, StoreError> {
        if message.direction != Direction::Inbound
            || message.channel == ChannelKind::Email
            || message.monitoring
            || self.continue_within <= TimeDelta::zero()
        {
            return Ok(None);
        }
        let key = match message.conversation.key(message.channel) {
            Ok(key) => key,
            Err(_) => return Ok(None),
        };
        if self
            .tickets
            .find_ticket_by_conversation(&key)
            .await?
            .is_some()
        {
            return Ok(None);
        }
        let family = self.contact_family(contact).await?;
        let candidates = self
            .workflows
            .list_workflows(&WorkflowQuery {
                contacts: family,
                limit: 10,
                ..WorkflowQuery::default()
            })
            .await?;
        let since = message.received_at - self.continue_within;
        for workflow in candidates {
            if workflow.kind == TicketKind::Monitoring {
                continue;
            }
            let Some(ticket) = self.tickets.get_ticket(&workflow.ticket_id).await? else {
                continue;
            };
            if ticket.status != TicketStatus::Solved && ticket.updated_at >= since {
                debug!(ticket_id = %ticket.id, "new conversation continues the customer's open ticket");
                return Ok(Some(ticket.id));
            }
        }
        Ok(None)
    }

    /// Brings the workflow of the ticket read through `reads` up to date with a message stored
    /// in it, whose customer was resolved to `sender` (an effective contact); suggests linking
    /// `sender` with the ticket's contact when a chat visitor or a mail joined a ticket of
    /// another contact. The ticket and its messages are read through `reads`, so the caller
    /// reuses them.
    pub async fn after_store(
        &self,
        reads: &mut TicketReads<'_>,
        message: &Message,
        sender: &ContactId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let Some(stored_ticket) = reads.ticket().await?.cloned() else {
            return Ok(());
        };
        self.suggest_from_chat(message, sender).await?;
        self.suggest_from_mail(message, sender, &stored_ticket)
            .await?;
        let customer_words = is_customer_words(message);
        // Read once here (whether the search text is settled) and reused by the update below.
        let current = match customer_words {
            true => Some(self.workflows.workflow(&stored_ticket.id).await?),
            false => None,
        };
        let recorded = current.as_ref().and_then(|w| w.as_ref()).map(|w| &w.value);
        let settled_at = recorded.and_then(|w| w.search_text_settled_at);
        // The search text covers every message of the ticket but this one, which comes last.
        let extends = recorded.and_then(|w| w.search_text_cover).filter(|cover| {
            customer_words
                && cover.ticket_messages + 1 == stored_ticket.message_count
                && message.sent_at >= cover.last_sent_at
        });
        let (text, similar) = if !customer_words {
            (None, None)
        } else if settled_at.is_some_and(|at| message.sent_at > at) {
            // Sent after the message the search text filled up at: nothing to recompute, and
            // not the customer's first message.
            (None, None)
        } else if let (Some(cover), Some(recorded)) = (extends, recorded) {
            // Exactly what a recompute from all the messages gives, without reading them.
            let mut text = recorded.search_text.clone();
            let customer_messages = cover.customer_messages + 1;
            let filled = !extend_search_text(&mut text, &message.text);
            let settled = (filled && customer_messages >= 2).then_some(message.sent_at);
            let cover = (!filled).then_some(SearchTextCover {
                ticket_messages: stored_ticket.message_count,
                customer_messages,
                last_sent_at: message.sent_at,
            });
            (
                Some(SearchTextUpdate {
                    text,
                    settled,
                    cover,
                }),
                None,
            )
        } else {
            // Recomputed from the customer's messages in order, so a redelivery changes
            // nothing. Only the first messages are read when they fill the search text and
            // hold two customer messages (this one is then not the first); otherwise all.
            let mut wanted = FIRST_MESSAGES_READ;
            let (update, customer_messages) = loop {
                let (messages, complete) = reads.first_messages(wanted).await?;
                let customer: Vec<&Message> =
                    messages.iter().filter(|m| is_customer_words(m)).collect();
                let words = std::iter::once(stored_ticket.subject.as_str())
                    .chain(customer.iter().map(|m| m.text.as_str()));
                let (text, full_at) = search_text_filled(words);
                if complete || (full_at.is_some() && customer.len() >= 2) {
                    let settled = match (full_at, customer.len() >= 2) {
                        (Some(0), true) => Some(DateTime::<Utc>::MIN_UTC),
                        (Some(at), true) => Some(customer[at - 1].sent_at),
                        _ => None,
                    };
                    // Not full: all the messages were read, and a later one may extend it.
                    let cover = match (full_at, customer.last()) {
                        (None, Some(last)) => Some(SearchTextCover {
                            ticket_messages: messages.len() as u64,
                            customer_messages: customer.len() as u64,
                            last_sent_at: last.sent_at,
                        }),
                        _ => None,
                    };
                    let update = SearchTextUpdate {
                        text,
                        settled,
                        cover,
                    };
                    break (update, customer.len());
                }
                // Short messages: read them all at once rather than in ever larger steps.
                wanted = usize::MAX;
            };
            // Similar tickets are searched when the customer's question arrives (the first
            // message); `GET …/similar` searches again with the whole conversation. Searching on
            // every message would read the candidates' texts each time.
            let similar = if customer_messages == 1 {
                let query = format!("{}\n{}", stored_ticket.subject, message.text);
                Some(
                    self.similar_to(&stored_ticket, &query, message.received_at)
                        .await?,
                )
            } else {
                None
            };
            (Some(update), similar)
        };
        self.apply_from(&stored_ticket, reads, current, now, |workflow| {
            let mut changed = false;
            if message.monitoring && workflow.kind != TicketKind::Monitoring {
                workflow.kind = TicketKind::Monitoring;
                changed = true;
            }
            for kind in &message.personal_data {
                if !workflow.personal_data.contains(kind) {
                    workflow.personal_data.push(kind.clone());
                    workflow.personal_data.sort();
                    changed = true;
                }
            }
            match &text {
                // Extended from a search text another writer has changed since: left to the
                // next message's recompute.
                Some(_) if extends.is_some() && workflow.search_text_cover != extends => {
                    changed |= workflow.search_text_cover.take().is_some();
                }
                Some(update) => changed |= update.apply(workflow),
                None => {}
            }
            if let Some(similar) = &similar {
                if &workflow.similar != similar {
                    workflow.similar = similar.clone();
                    changed = true;
                }
            }
            if is_first_response(message) && workflow.sla.first_response_at.is_none() {
                workflow.sla.first_response_at = Some(message.sent_at);
                changed = true;
            }
            Ok::<_, StoreError>(changed)
        })
        .await
    }

    /// Records the first response an agent gave on a ticket (a reply queued through Crossdesk).
    pub async fn responded(&self, ticket: &Ticket, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.update(ticket, at, |workflow| {
            if workflow.sla.first_response_at.is_some() {
                return false;
            }
            workflow.sla.first_response_at = Some(at);
            true
        })
        .await
    }

    /// Records a status change: solving sets the resolution time.
    pub async fn status_changed(
        &self,
        ticket: &Ticket,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.update(ticket, at, |workflow| match ticket.status {
            TicketStatus::Solved => {
                workflow.sla.resolved_at = Some(at);
                true
            }
            _ if workflow.sla.resolved_at.is_some() => {
                workflow.sla.resolved_at = None;
                true
            }
            _ => false,
        })
        .await
    }

    /// The workflow of a ticket: the stored one, or the one it gets when first written.
    pub async fn workflow_of(&self, ticket: &Ticket) -> Result<TicketWorkflow, StoreError> {
        Ok(match self.workflows.workflow(&ticket.id).await? {
            Some(stored) => stored.value,
            None => {
                let messages = self.tickets.list_messages(&ticket.id).await?;
                self.initial(ticket, &messages)
            }
        })
    }

    /// Applies `change` to the workflow of `ticket` (created first when missing) with
    /// compare-and-set, retrying lost races. `change` returns whether it changed anything.
    pub async fn update(
        &self,
        ticket: &Ticket,
        now: DateTime<Utc>,
        change: impl Fn(&mut TicketWorkflow) -> bool + Send + Sync,
    ) -> Result<(), StoreError> {
        self.try_update(ticket, now, |workflow| {
            Ok::<_, StoreError>(change(workflow))
        })
        .await
    }

    /// [`Triage::update`] with a change that may refuse: its error, decided on the workflow
    /// as it stands in the attempt that would have saved it, is returned and nothing is saved.
    pub async fn try_update<E: From<StoreError> + Send>(
        &self,
        ticket: &Ticket,
        now: DateTime<Utc>,
        change: impl Fn(&mut TicketWorkflow) -> Result<bool, E> + Send + Sync,
    ) -> Result<(), E> {
        let mut reads = TicketReads::new(self.tickets.as_ref(), ticket.id.clone());
        self.apply(ticket, &mut reads, now, change).await
    }

    /// The compare-and-set loop of [`Triage::try_update`]; a missing workflow is created from
    /// the messages read through `reads`.
    async fn apply<E: From<StoreError> + Send>(
        &self,
        ticket: &Ticket,
        reads: &mut TicketReads<'_>,
        now: DateTime<Utc>,
        change: impl Fn(&mut TicketWorkflow) -> Result<bool, E> + Send + Sync,
    ) -> Result<(), E> {
        self.apply_from(ticket, reads, None, now, change).await
    }

    /// [`Triage::apply`], its first attempt on `read` when the caller has just read the
    /// workflow (`Some(None)`: it does not exist).
    async fn apply_from<E: From<StoreError> + Send>(
        &self,
        ticket: &Ticket,
        reads: &mut TicketReads<'_>,
        mut read: Option<Option<Versioned<TicketWorkflow>>>,
        now: DateTime<Utc>,
        change: impl Fn(&mut TicketWorkflow) -> Result<bool, E> + Send + Sync,
    ) -> Result<(), E> {
        for _ in 0..CAS_ATTEMPTS {
            let current = match read.take() {
                Some(current) => current,
                None => self.workflows.workflow(&ticket.id).await?,
            };
            let (mut workflow, expected, created) = match current {
                Some(Versioned { value, version }) => (value, Some(version), false),
                None => (self.initial(ticket, reads.messages().await?), None, true),
            };
            if !change(&mut workflow)? && !created {
                return Ok(());
            }
            workflow.updated_at = now.max(workflow.updated_at);
            if self.workflows.save_workflow(&workflow, expected).await? {
                return Ok(());
            }
        }
        warn!(ticket_id = %ticket.id, "workflow update lost every race");
        Err(StoreError::Conflict(format!(
            "the workflow of ticket {} changed too often to update",
            ticket.id
        ))
        .into())
    }

    /// The workflow a ticket with these messages starts with: its kind, and the SLA targets of
    /// the channel and visibility of its first message at the default priority.
    fn initial(&self, ticket: &Ticket, messages: &[Message]) -> TicketWorkflow {
        let first = messages.iter().find(|m| m.direction == Direction::Inbound);
        let mut workflow = TicketWorkflow::new(
            ticket.id.clone(),
            ticket.contact_id.clone(),
            ticket.channel,
            ticket.created_at,
        );
        if first.is_some_and(|m| m.monitoring) {
            workflow.kind = TicketKind::Monitoring;
        }
        let visibility = first.map_or(Visibility::Private, |m| m.visibility);
        let start = first.map_or(ticket.created_at, |m| m.received_at);
        self.apply_sla(&mut workflow, visibility, start);
        if let Some(responded) = messages.iter().find(|m| is_first_response(m)) {
            workflow.sla.first_response_at = Some(responded.sent_at);
        }
        let mut kinds: BTreeSet<_> = BTreeSet::new();
        for message in messages {
            kinds.extend(message.personal_data.iter().cloned());
        }
        workflow.personal_data = kinds.into_iter().collect();
        workflow
    }

    /// Sets the SLA targets of a workflow from its channel, the visibility of the customer's
    /// first message, its priority and when that message arrived.
    pub fn apply_sla(
        &self,
        workflow: &mut TicketWorkflow,
        visibility: Visibility,
        start: DateTime<Utc>,
    ) {
        let (policy, due) =
            self.sla
                .first_response_due(workflow.channel, visibility, workflow.priority, start);
        workflow.sla.policy = Some(policy);
        workflow.sla.first_response_due = Some(due);
    }

    /// Up to [`SIMILAR_TICKETS`] open or recently solved tickets (as of `now`) whose
    /// customers wrote something similar to `query`, best first; `ticket` itself left out.
    pub async fn similar_to(
        &self,
        ticket: &Ticket,
        query: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<crate::workflow::SimilarTicket>, StoreError> {
        let candidates = self
            .workflows
            .list_workflows(&WorkflowQuery {
                limit: SIMILARITY_CANDIDATES,
                ..WorkflowQuery::default()
            })
            .await?;
        let index: SimilarityIndex = candidates
            .iter()
            .filter(|c| c.kind == TicketKind::Conversation && !c.search_text.is_empty())
            .map(|c| (c.ticket_id.clone(), String::new(), c.search_text.as_str()))
            .collect();
        let ranked = index.search(query, SIMILAR_TICKETS * 3, Some(&ticket.id));
        let mut similar = Vec::with_capacity(SIMILAR_TICKETS);
        let recent = now - RECENTLY_SOLVED;
        for found in ranked {
            let Some(other) = self.tickets.get_ticket(&found.ticket_id).await? else {
                continue;
            };
            if other.status == TicketStatus::Solved && other.updated_at < recent {
                continue;
            }
            similar.push(crate::workflow::SimilarTicket {
                subject: other.subject,
                ..found
            });
            if similar.len() == SIMILAR_TICKETS {
                break;
            }
        }
        Ok(similar)
    }
}

/// Whether a message is the customer's own words (what similar tickets are found by).
/// A ticket's search text as the triage recomputed or extended it.
struct SearchTextUpdate {
    text: String,
    settled: Option<DateTime<Utc>>,
    cover: Option<SearchTextCover>,
}

impl SearchTextUpdate {
    /// Writes the update into the workflow; whether that changed it.
    fn apply(&self, workflow: &mut TicketWorkflow) -> bool {
        if self.text == workflow.search_text
            && self.settled == workflow.search_text_settled_at
            && self.cover == workflow.search_text_cover
        {
            return false;
        }
        workflow.search_text = self.text.clone();
        workflow.search_text_settled_at = self.settled;
        workflow.search_text_cover = self.cover;
        true
    }
}

fn is_customer_words(message: &Message) -> bool {
    message.direction == Direction::Inbound
        && !message.internal_note
        && !message.is_automatic()
        && !message.text.trim().is_empty()
}

/// Whether a message answers the customer: an outbound message that is not an internal note.
fn is_first_response(message: &Message) -> bool {
    message.direction == Direction::Outbound && !message.internal_note
}
