//! Email threading, hijack-proof: which ticket an inbound mail may join, and which mail is
//! Crossdesk's own coming back.
//!
//! Anyone can put any Message-ID in `In-Reply-To`/`References`, any plus-address in `To` and
//! any `[#ID]` in a subject, and `From` is easy to forge. So a reference only threads a mail
//! into an existing ticket when both hold:
//! 1. **the reference is one Crossdesk vouches for**: a Message-ID it signed for that ticket
//!    ([`crate::mail_signature`]), a Message-ID stored in that ticket (received there, or the id
//!    a reply sent from it was given), or a plus-address whose signature is valid for that
//!    ticket. An unsigned plus-address or a `[#ID]` subject tag is only a hint;
//! 2. **the sender is a participant** of that ticket: the ticket's contact (any of its email
//!    identities), or an address that already wrote in the ticket or that a participant's mail
//!    there was addressed to (`To`/`Cc`); or the ticket holds no mail at all (it lives on social
//!    or chat) and the reference is a signed one: the agent gave the customer the ticket's
//!    address to continue by mail (the writer then suggests linking the two contacts). Automatic mail (an auto-reply, a bounce) from another
//!    address is let in only on proof it answers Crossdesk's own mail (a reference Crossdesk
//!    signed, or the stored id of a mail Crossdesk sent): it is kept with the ticket, flagged,
//!    and never reopens it.
//!
//! References are tried newest first, then the plus-address or subject tag; the first that
//! passes decides. When none passes, the mail starts a ticket of its own, linked to the tickets
//! it referenced as "possibly related" ([`crate::Ticket::related_tickets`]) so an agent can join
//! them by hand. Its conversation key is its own Message-ID, never the thread root it claims.
//!
//! Mail Crossdesk sent itself coming back (a Message-ID it signed, or a mail from the support
//! address or one of its plus-addresses) is a loop: it is not ticketed at all.

use std::collections::HashMap;

use tracing::info;

use crate::ids::{ContactId, EmailAddress, TicketId};
use crate::mail_signature::{EmailThreadKey, MessageIdCheck};
use crate::model::{ChannelKind, Conversation, Direction, Message, Ticket};
use crate::ports::{NewTicket, Route, StoreError, TicketStore};
use crate::writer::WriteError;

/// The most tickets a new ticket is linked to as possibly related.
pub const MAX_RELATED_TICKETS: usize = 10;

/// What the ticket writer knows of the deployment's email, to check thread references and
/// recognize its own mail. Without a key no reference counts as signed (threading falls back on
/// stored Message-IDs); without the support address, loops are recognized by signature only.
#[derive(Debug, Clone, Default)]
pub struct EmailThreading {
    /// The key Crossdesk's Message-IDs and plus-addresses are signed with.
    pub thread_key: Option<EmailThreadKey>,
    /// The support address replies are sent from.
    pub support_address: Option<EmailAddress>,
}

/// Whether a message is an inbound email: the only kind these rules apply to.
pub fn is_inbound_email(message: &Message) -> bool {
    message.channel == ChannelKind::Email && message.direction == Direction::Inbound
}

/// The Message-ID of a mail, without angle brackets.
fn own_message_id(message: &Message) -> Option<&str> {
    message
        .email
        .as_ref()
        .map(|e| e.message_id.as_str())
        .filter(|id| !id.is_empty())
        .or(message.platform_message_id.as_deref())
}

impl EmailThreading {
    /// Whether `address` is the support address or one of its plus-addresses.
    pub fn is_support_address(&self, address: &EmailAddress) -> bool {
        let Some(support) = &self.support_address else {
            return false;
        };
        let local = address.local_part();
        address.domain() == support.domain()
            && (local == support.local_part()
                || local
                    .strip_prefix(support.local_part())
                    .is_some_and(|rest| rest.starts_with('+')))
    }

    /// Whether an inbound mail is one Crossdesk sent, come back: its Message-ID is one Crossdesk
    /// signed, or it is from the support address.
    pub fn is_own_mail(&self, message: &Message) -> bool {
        let from_support = message
            .author
            .email
            .as_ref()
            .is_some_and(|a| self.is_support_address(a));
        let signed_by_us = match (&self.thread_key, own_message_id(message)) {
            (Some(key), Some(id)) => {
                matches!(key.check_message_id(id), MessageIdCheck::Signed { .. })
            }
            _ => false,
        };
        from_support || signed_by_us
    }

    /// The ticket the mail names with a valid plus-address signature, if it does.
    fn signed_ticket_ref<'m>(&self, message: &'m Message) -> Option<&'m TicketId> {
        let ticket = message.ticket_ref.as_ref()?;
        let signature = message.email.as_ref()?.ticket_signature.as_deref()?;
        self.thread_key
            .as_ref()?
            .verify_ticket_signature(ticket, signature)
            .then_some(ticket)
    }
}

/// Why a mail names a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Evidence {
    /// A reference Crossdesk signed for the ticket (Message-ID or plus-address).
    Signed,
    /// A Message-ID stored in the ticket.
    Stored(String),
}

/// What the writer learned about one ticket a mail references.
struct Known {
    ticket: Ticket,
    /// The ticket's messages, read when first needed.
    messages: Option<Vec<Message>>,
}

/// The tickets a mail references and what is known of them, in the order met.
struct Candidates<'a> {
    store: &'a dyn TicketStore,
    threading: &'a EmailThreading,
    message: &'a Message,
    sender: &'a ContactId,
    known: HashMap<TicketId, Option<Known>>,
    related: Vec<TicketId>,
}

impl Candidates<'_> {
    /// Reads a ticket the mail references, once.
    async fn look_up(&mut self, ticket: &TicketId) -> Result<(), StoreError> {
        if !self.known.contains_key(ticket) {
            let found = self.store.get_ticket(ticket).await?.map(|ticket| Known {
                ticket,
                messages: None,
            });
            self.known.insert(ticket.clone(), found);
        }
        Ok(())
    }

    /// Whether the mail may join `ticket` on this evidence; a ticket it may not join (but
    /// which exists) becomes possibly related.
    async fn admits(&mut self, ticket: &TicketId, evidence: &Evidence) -> Result<bool, StoreError> {
        self.look_up(ticket).await?;
        let Some(Some(known)) = self.known.get_mut(ticket) else {
            return Ok(false);
        };
        // The ticket's own contact: the common case, decided without reading the messages.
        if &known.ticket.contact_id == self.sender {
            return Ok(true);
        }
        if known.messages.is_none() {
            known.messages = Some(self.store.list_messages(ticket).await?);
        }
        let messages = known.messages.as_deref().unwrap_or_default();
        let answers_our_mail = match evidence {
            Evidence::Signed => true,
            Evidence::Stored(id) => messages.iter().any(|m| {
                m.direction == Direction::Outbound && m.platform_message_id.as_deref() == Some(id)
            }),
        };
        // A ticket that has no mail yet (it lives on social or chat) and a reference Crossdesk
        // signed for it: the agent gave the customer the ticket's address to continue by mail.
        let invited_to_mail = evidence == &Evidence::Signed
            && !self.message.is_automatic()
            && !messages.iter().any(|m| m.channel == ChannelKind::Email);
        let admitted = invited_to_mail
            || (self.message.is_automatic() && answers_our_mail)
            || self
                .message
                .author
                .email
                .as_ref()
                .is_some_and(|sender| is_participant(self.threading, messages, sender));
        if !admitted {
            self.relate(ticket);
        }
        Ok(admitted)
    }

    /// Links `ticket` as possibly related, if it exists.
    fn relate(&mut self, ticket: &TicketId) {
        let exists = matches!(self.known.get(ticket), Some(Some(_)));
        if exists && !self.related.contains(ticket) && self.related.len() < MAX_RELATED_TICKETS {
            self.related.push(ticket.clone());
        }
    }

    /// Notes a ticket the mail only names (a forged or unsigned reference): possibly related,
    /// if it exists.
    async fn hint(&mut self, ticket: &TicketId) -> Result<(), StoreError> {
        self.look_up(ticket).await?;
        self.relate(ticket);
        Ok(())
    }
}

/// Whether `sender` wrote in the ticket, or was addressed by a participant's mail there.
fn is_participant(threading: &EmailThreading, messages: &[Message], sender: &EmailAddress) -> bool {
    messages
        .iter()
        .filter(|m| m.direction == Direction::Inbound && !m.is_automatic())
        .any(|m| {
            m.author.email.as_ref() == Some(sender)
                || m.email.as_ref().is_some_and(|e| {
                    e.to.iter()
                        .any(|to| to == sender && !threading.is_support_address(to))
                })
        })
}

/// Where an inbound mail goes (see the module docs). `sender` is the contact its `From`
/// address resolved to.
pub(crate) async fn route(
    store: &dyn TicketStore,
    threading: &EmailThreading,
    message: &Message,
    sender: &ContactId,
) -> Result<Route, WriteError> {
    let own_key = |id: &str| {
        Conversation::EmailThread {
            root_message_id: id.to_string(),
        }
        .key(ChannelKind::Email)
    };
    let conversation_key = own_message_id(message)
        .map(own_key)
        .unwrap_or_else(|| message.conversation.key(message.channel))?;
    let mut candidates = Candidates {
        store,
        threading,
        message,
        sender,
        known: HashMap::new(),
        related: Vec::new(),
    };
    let mut ticket = None;
    for reference in &message.replies_to {
        let signed = match &threading.thread_key {
            Some(key) => key.check_message_id(reference),
            None => MessageIdCheck::NotOurs,
        };
        let (named, evidence) = match signed {
            MessageIdCheck::Signed { ticket, .. } => (ticket, Evidence::Signed),
            // Not signed by this key: it counts only if it is stored (a Message-ID received in
            // a ticket, or one signed with an earlier key and recorded on a reply sent then).
            check => {
                let found = store
                    .find_ticket_by_platform_ids(
                        ChannelKind::Email,
                        std::slice::from_ref(reference),
                    )
                    .await?;
                match (found, check) {
                    (Some(ticket), _) => (ticket, Evidence::Stored(reference.clone())),
                    (None, MessageIdCheck::Forged { ticket }) => {
                        candidates.hint(&ticket).await?;
                        continue;
                    }
                    (None, _) => continue,
                }
            }
        };
        if candidates.admits(&named, &evidence).await? {
            ticket = Some(named);
            break;
        }
    }
    if ticket.is_none() {
        if let Some(named) = threading.signed_ticket_ref(message) {
            if candidates.admits(named, &Evidence::Signed).await? {
                ticket = Some(named.clone());
            }
        } else if let Some(named) = &message.ticket_ref {
            candidates.hint(named).await?;
        }
    }
    let related = match &ticket {
        Some(_) => Vec::new(),
        None => candidates.related,
    };
    if ticket.is_none() && !related.is_empty() {
        info!(
            related = ?related.iter().map(TicketId::as_str).collect::<Vec<_>>(),
            "mail references tickets it may not join: a new ticket, linked as possibly related"
        );
    }
    Ok(Route {
        ticket,
        conversation_key,
        new_ticket: NewTicket::for_message(message, related),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Author, EmailDetails, MessageEvent, Visibility};
    use crate::MessageId;

    fn address(s: &str) -> EmailAddress {
        EmailAddress::parse(s).unwrap()
    }

    fn key() -> EmailThreadKey {
        EmailThreadKey::new(b"test-email-thread-key-0123456789").unwrap()
    }

    fn threading() -> EmailThreading {
        EmailThreading {
            thread_key: Some(key()),
            support_address: Some(address("help+desk@sample.example")),
        }
    }

    fn mail(from: &str, message_id: &str) -> Message {
        let from = address(from);
        let now = chrono::DateTime::from_timestamp(1_795_165_800, 0).unwrap();
        Message {
            id: MessageId::generate(),
            channel: ChannelKind::Email,
            platform_message_id: Some(message_id.to_string()),
            conversation: Conversation::EmailThread {
                root_message_id: message_id.to_string(),
            },
            direction: Direction::Inbound,
            event: MessageEvent::Created,
            author: Author {
                platform_id: from.to_string(),
                name: None,
                email: Some(from),
                handle: None,
            },
            text: "hello".into(),
            attachments: Vec::new(),
            visibility: Visibility::Private,
            sent_at: now,
            received_at: now,
            replies_to: Vec::new(),
            ticket_ref: None,
            subject: None,
            email: Some(EmailDetails {
                message_id: message_id.to_string(),
                ..EmailDetails::default()
            }),
            raw: None,
            signature_unverified: false,
            personal_data: Vec::new(),
            internal_note: false,
            monitoring: false,
            delivery: None,
        }
    }

    #[test]
    fn the_support_address_and_its_plus_addresses_are_ours() {
        let t = threading();
        for ours in [
            "help+desk@sample.example",
            "HELP+DESK@Sample.Example",
            "help+desk+K3F9Q2XA.abc@sample.example",
        ] {
            assert!(t.is_support_address(&address(ours)), "{ours}");
        }
        for theirs in [
            "help@sample.example",
            "help+deskx@sample.example",
            "help+desk@other.example",
            "alex@example.com",
        ] {
            assert!(!t.is_support_address(&address(theirs)), "{theirs}");
        }
        assert!(!EmailThreading::default().is_support_address(&address("help+desk@sample.example")));
    }

    #[test]
    fn recognizes_its_own_mail_by_sender_or_signed_message_id() {
        let t = threading();
        assert!(t.is_own_mail(&mail("help+desk@sample.example", "x@sample.example")));
        let ticket = TicketId::parse("K3F9Q2XA").unwrap();
        let ours = key().message_id(&MessageId::generate(), &ticket, "sample.example");
        assert!(t.is_own_mail(&mail("list@lists.example", &ours)));
        // A forged Crossdesk id is not ours; neither is a customer's mail.
        let forged = ours.replace("K3F9Q2XA", "M7PH4RTW");
        assert!(!t.is_own_mail(&mail("list@lists.example", &forged)));
        assert!(!t.is_own_mail(&mail("alex@example.com", "a1@example.com")));
        // Without a key, only the sender tells.
        let no_key = EmailThreading {
            thread_key: None,
            ..threading()
        };
        assert!(!no_key.is_own_mail(&mail("list@lists.example", &ours)));
    }

    #[test]
    fn a_plus_address_ticket_is_signed_only_with_the_right_signature() {
        let t = threading();
        let ticket = TicketId::parse("K3F9Q2XA").unwrap();
        let mut m = mail("alex@example.com", "a1@example.com");
        m.ticket_ref = Some(ticket.clone());
        assert_eq!(t.signed_ticket_ref(&m), None, "no signature");
        m.email.as_mut().unwrap().ticket_signature = Some("0".repeat(26));
        assert_eq!(t.signed_ticket_ref(&m), None, "a wrong signature");
        m.email.as_mut().unwrap().ticket_signature = Some(key().ticket_signature(&ticket));
        assert_eq!(t.signed_ticket_ref(&m), Some(&ticket));
        assert_eq!(
            EmailThreading::default().signed_ticket_ref(&m),
            None,
            "no key"
        );
    }

    #[test]
    fn participants_are_writers_and_addressees_of_customer_mail_only() {
        let t = threading();
        let mut first = mail("alex@example.com", "a1@example.com");
        first.email.as_mut().unwrap().to = vec![
            address("help+desk@sample.example"),
            address("bob@example.com"),
        ];
        let mut bounce = mail("mailer-daemon@mx.example", "b1@mx.example");
        bounce.email.as_mut().unwrap().auto_submitted = true;
        bounce.email.as_mut().unwrap().to = vec![address("eve@example.com")];
        let messages = [first, bounce];
        assert!(is_participant(&t, &messages, &address("alex@example.com")));
        assert!(is_participant(&t, &messages, &address("bob@example.com")));
        assert!(!is_participant(
            &t,
            &messages,
            &address("mailer-daemon@mx.example")
        ));
        assert!(!is_participant(&t, &messages, &address("eve@example.com")));
        assert!(!is_participant(
            &t,
            &messages,
            &address("help+desk@sample.example")
        ));
        assert!(!is_participant(
            &t,
            &messages,
            &address("carol@example.com")
        ));
    }
}
