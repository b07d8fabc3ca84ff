//! The ticket writer: threads each normalized message into its ticket, exactly once.
//!
//! Threading rules, in order:
//! 1. An edit or removal of a stored platform message changes that message.
//! 2. A message that answers a stored message (email `In-Reply-To`/`References`, a tweet reply,
//!    a quoted Messenger message) goes to that message's ticket.
//! 3. A message that names an existing ticket (plus-address `support+<id>@…`, `[#<id>]` in the
//!    subject) goes to that ticket.
//! 4. Otherwise the conversation key decides: the ticket already holding that conversation, or a
//!    new one.
//!
//! An inbound email follows rules 2 and 3 only when the reference is one Crossdesk vouches for
//! and the sender is a participant of the ticket; otherwise it starts a ticket of its own,
//! linked as possibly related; Crossdesk's own mail coming back is not ticketed
//! ([`crate::mail_threading`]).
//!
//! A platform message already stored is a duplicate: acknowledged, not stored again.
//!
//! With an [`EventQueue`], a stored message emits `message.created` (and `ticket.created` when it
//! created its ticket) after the store write. A duplicate emits them again: the ids are
//! deterministic, so a writer that died between storing and emitting is healed by the queue's
//! redelivery, and the sender delivers each event once per endpoint.

use std::sync::Arc;

use thiserror::Error;
use tracing::{debug, info};

use crate::events::{publish_all, EventQueue, OutgoingEvent, PublishError};
use crate::health::InboundActivity;
use crate::ids::{ContactId, IdError, MessageId, TicketId};
use crate::mail_threading::{self, is_inbound_email, EmailThreading};
use crate::media::{AttachmentCollector, MediaStoreError};
use crate::model::{DeliveryStatus, Direction, Message, MessageEvent};
use crate::ports::{
    NewTicket, ResolvedContact, Revision, Route, StoreError, TicketReads, TicketStore,
};
use crate::triage::Triage;

/// Why a message could not be written.
#[derive(Debug, Error)]
pub enum WriteError {
    /// The message itself is unusable (retrying cannot help): it belongs in the dead-letter queue.
    #[error("invalid message: {0}")]
    Invalid(#[from] IdError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The media store failed while copying the message's attachments.
    #[error(transparent)]
    Media(#[from] MediaStoreError),
    /// The message is stored but its outgoing events could not be queued: processing it again
    /// (it is then a duplicate) emits them.
    #[error(transparent)]
    Events(#[from] PublishError),
}

impl WriteError {
    /// Whether processing the same message again may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            WriteError::Invalid(_) => false,
            WriteError::Store(e) => e.is_retryable(),
            WriteError::Media(_) => true,
            WriteError::Events(e) => e.is_retryable(),
        }
    }
}

/// What the writer did with one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Stored as a new message.
    Stored {
        /// Its ticket.
        ticket_id: TicketId,
        /// The stored message.
        message_id: MessageId,
        /// Whether the ticket was created for it.
        created_ticket: bool,
    },
    /// The platform message was stored before; nothing changed.
    Duplicate {
        /// Its ticket.
        ticket_id: TicketId,
        /// The message stored earlier.
        message_id: MessageId,
    },
    /// An edit or removal applied to a stored message.
    Revised {
        /// Its ticket.
        ticket_id: TicketId,
        /// The revised message.
        message_id: MessageId,
    },
    /// A removal of a message Crossdesk never stored: nothing to do.
    Ignored,
    /// A mail Crossdesk sent itself, come back (a mail loop): acknowledged, not ticketed.
    OwnMail,
}

/// Threads messages into tickets through a [`TicketStore`].
#[derive(Clone)]
pub struct TicketWriter {
    store: Arc<dyn TicketStore>,
    email: Arc<EmailThreading>,
    media: Option<Arc<AttachmentCollector>>,
    events: Option<Arc<dyn EventQueue>>,
    activity: Option<Arc<InboundActivity>>,
    triage: Option<Arc<Triage>>,
}

impl TicketWriter {
    /// A writer over the given store, knowing no email thread key or support address.
    pub fn new(store: Arc<dyn TicketStore>) -> Self {
        TicketWriter {
            store,
            email: Arc::default(),
            media: None,
            events: None,
            activity: None,
            triage: None,
        }
    }

    /// The same writer, flagging personal data, continuing a known customer's open ticket in a
    /// new conversation, and keeping each ticket's workflow up to date ([`crate::triage`]).
    pub fn with_triage(mut self, triage: Arc<Triage>) -> Self {
        self.triage = Some(triage);
        self
    }

    /// The same writer, noting each channel's inbound activity (for the silence check).
    pub fn with_inbound_activity(mut self, activity: Arc<InboundActivity>) -> Self {
        self.activity = Some(activity);
        self
    }

    /// The same writer, putting `ticket.created` and `message.created` on this queue.
    pub fn with_events(mut self, events: Arc<dyn EventQueue>) -> Self {
        self.events = Some(events);
        self
    }

    /// The same writer, copying each new message's platform-hosted attachments before storing
    /// it ([`crate::media`]).
    pub fn with_attachments(mut self, collector: AttachmentCollector) -> Self {
        self.media = Some(Arc::new(collector));
        self
    }

    /// Whether the platform message is stored already (its attachments were copied then).
    async fn is_stored(&self, message: &Message) -> Result<bool, WriteError> {
        let Some(id) = &message.platform_message_id else {
            return Ok(false);
        };
        Ok(self
            .store
            .find_ticket_by_platform_ids(message.channel, std::slice::from_ref(id))
            .await?
            .is_some())
    }

    /// The same writer, checking email references with this key and recognizing mail from this
    /// support address as its own.
    pub fn with_email_threading(mut self, email: EmailThreading) -> Self {
        self.email = Arc::new(email);
        self
    }

    /// Threads and stores one message.
    #[tracing::instrument(skip_all, fields(channel = %message.channel, platform_message_id = message.platform_message_id.as_deref().unwrap_or("")))]
    pub async fn write(&self, message: &Message) -> Result<WriteOutcome, WriteError> {
        if let Some(activity) = &self.activity {
            // Any event the webhook accepted proves the channel delivers, duplicates included.
            activity.saw(message.channel, message.received_at).await;
        }
        if let (Some(revision), Some(platform_id)) =
            (revision_of(message), message.platform_message_id.as_deref())
        {
            match self
                .store
                .revise_message(message.channel, platform_id, &revision)
                .await?
            {
                Some((ticket_id, message_id)) => {
                    debug!(%ticket_id, "revised stored message");
                    return Ok(WriteOutcome::Revised {
                        ticket_id,
                        message_id,
                    });
                }
                // An edit of a message we never saw is the best copy we have: store it.
                None if message.event == MessageEvent::Edited => {}
                None => return Ok(WriteOutcome::Ignored),
            }
        }

        if is_inbound_email(message) && self.email.is_own_mail(message) {
            info!("Crossdesk's own mail came back (a mail loop): not ticketed");
            return Ok(WriteOutcome::OwnMail);
        }
        let annotated;
        let message = match self.triage.as_ref().and_then(|t| t.annotate(message)) {
            Some(flagged) => {
                annotated = flagged;
                &annotated
            }
            None => message,
        };
        let copied;
        let message = match &self.media {
            Some(media) if media.wants(message) && !self.is_stored(message).await? => {
                let mut with_copies = message.clone();
                media.collect(&mut with_copies).await?;
                copied = with_copies;
                &copied
            }
            _ => message,
        };
        let (route, contact) = self.place(message).await?;
        let appended = self.store.append_message(&route, message, &contact).await?;
        // An echo of a Crossdesk reply confirms the reply instead of being stored again.
        let appended =
            crate::echo::settle(self.store.as_ref(), message, appended, &route, &contact).await?;
        // The ticket and its messages, read once for the triage and the events.
        let mut reads = TicketReads::new(self.store.as_ref(), appended.ticket_id.clone());
        if let Some(triage) = &self.triage {
            // Also for a duplicate: a writer that died before this step is healed by the
            // redelivery (every step is idempotent).
            triage
                .after_store(&mut reads, message, &contact, chrono::Utc::now())
                .await?;
        }
        if appended.duplicate {
            debug!(ticket_id = %appended.ticket_id, "duplicate delivery acknowledged");
            self.emit(&mut reads, &appended.message_id, None).await?;
            return Ok(WriteOutcome::Duplicate {
                ticket_id: appended.ticket_id,
                message_id: appended.message_id,
            });
        }
        info!(ticket_id = %appended.ticket_id, created = appended.created_ticket, "message stored");
        self.emit(
            &mut reads,
            &appended.message_id,
            Some(appended.created_ticket),
        )
        .await?;
        Ok(WriteOutcome::Stored {
            ticket_id: appended.ticket_id,
            message_id: appended.message_id,
            created_ticket: appended.created_ticket,
        })
    }

    /// Emits the events of a stored message, read back as stored: `ticket.created` when it
    /// created its ticket, then `message.created`. For a duplicate (`created_ticket` unknown),
    /// the message created its ticket when it is the ticket's first: the writer that stored it
    /// may have died before emitting, and the ids are the same as then.
    async fn emit(
        &self,
        reads: &mut TicketReads<'_>,
        message_id: &MessageId,
        created_ticket: Option<bool>,
    ) -> Result<(), WriteError> {
        let Some(queue) = &self.events else {
            return Ok(());
        };
        let Some(message) = reads.message(message_id).await? else {
            return Ok(());
        };
        let message = &message;
        let created_ticket = match created_ticket {
            Some(created) => created,
            // The ticket's first message created it.
            None => reads
                .first_messages(1)
                .await?
                .0
                .first()
                .is_some_and(|first| &first.id == message_id),
        };
        let ticket = match created_ticket {
            true => reads.ticket().await?.cloned(),
            false => None,
        };
        let ticket_id = &reads.id().clone();
        let mut events = Vec::with_capacity(2);
        if let Some(ticket) = &ticket {
            events.push(OutgoingEvent::ticket_created(ticket, message));
        }
        events.push(OutgoingEvent::message_created(ticket_id, message));
        // The platform's echo of a Crossdesk reply can settle its delivery (`sent`): say so,
        // with the id the reply sender uses for the same change.
        if let Some(delivery) = message.delivery.as_ref().filter(|d| {
            d.is_crossdesk_reply()
                && matches!(
                    d.status,
                    DeliveryStatus::Sent | DeliveryStatus::Failed | DeliveryStatus::Unknown
                )
        }) {
            events.push(OutgoingEvent::delivery_changed(
                ticket_id,
                message_id,
                message.channel,
                delivery,
                chrono::Utc::now(),
            ));
        }
        publish_all(queue.as_ref(), &events).await?;
        Ok(())
    }

    /// Where a message goes and who its customer is. An inbound email's sender is resolved
    /// first: the email threading rules ask whether they take part in the ticket referenced.
    async fn place(&self, message: &Message) -> Result<(Route, ContactId), WriteError> {
        if is_inbound_email(message) {
            let contact = self.resolve_customer(message).await?.id;
            let route =
                mail_threading::route(self.store.as_ref(), &self.email, message, &contact).await?;
            return Ok((route, contact));
        }
        let mut route = self.route(message).await?;
        let contact = match self.known_customer(message, &route).await? {
            Some(contact) => ResolvedContact {
                id: contact,
                created: false,
            },
            None => self.resolve_customer(message).await?,
        };
        // A contact this write created has no ticket to continue.
        if let (Some(triage), None, false) = (&self.triage, &route.ticket, contact.created) {
            route.ticket = triage.continuation(message, &contact.id).await?;
        }
        Ok((route, contact.id))
    }

    /// The contact the message's customer identities lead to (created when none does); the
    /// contact it was merged into, if it was.
    async fn resolve_customer(&self, message: &Message) -> Result<ResolvedContact, WriteError> {
        let resolved = self
            .store
            .resolve_contact(
                &message.customer_identities(),
                customer_name(message),
                message.received_at,
            )
            .await?;
        Ok(match &self.triage {
            // A contact created just now is merged into nothing: no lookup.
            Some(triage) if !resolved.created => ResolvedContact {
                id: triage.effective_contact(resolved.id).await?,
                created: false,
            },
            _ => resolved,
        })
    }

    /// The customer of the ticket an outbound message answers into. The company's own message
    /// (an echo, the page's comment reply) names the page, not the customer, so the ticket's
    /// contact is the right one.
    async fn known_customer(
        &self,
        message: &Message,
        route: &Route,
    ) -> Result<Option<crate::ids::ContactId>, WriteError> {
        match (&route.ticket, message.direction) {
            (Some(ticket), Direction::Outbound) => {
                Ok(self.store.get_ticket(ticket).await?.map(|t| t.contact_id))
            }
            _ => Ok(None),
        }
    }

    /// Decides where a message goes (rules 2 to 4 above).
    async fn route(&self, message: &Message) -> Result<Route, WriteError> {
        let conversation_key = message.conversation.key(message.channel)?;
        let mut ticket = None;
        if !message.replies_to.is_empty() {
            ticket = self
                .store
                .find_ticket_by_platform_ids(message.channel, &message.replies_to)
                .await?;
        }
        if ticket.is_none() {
            if let Some(named) = &message.ticket_ref {
                if self.store.get_ticket(named).await?.is_some() {
                    ticket = Some(named.clone());
                }
            }
        }
        Ok(Route {
            ticket,
            conversation_key,
            new_ticket: NewTicket::for_message(message, Vec::new()),
        })
    }
}

fn revision_of(message: &Message) -> Option<Revision> {
    match message.event {
        MessageEvent::Created => None,
        MessageEvent::Edited => Some(Revision::Edited {
            text: message.text.clone(),
            at: message.sent_at,
        }),
        MessageEvent::Removed => Some(Revision::Removed {
            at: message.sent_at,
        }),
    }
}

/// Only the customer's own messages name the customer; an echo is authored by the page.
fn customer_name(message: &Message) -> Option<&str> {
    (message.direction == Direction::Inbound)
        .then_some(message.author.name.as_deref())
        .flatten()
}
