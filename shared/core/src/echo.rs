//! Echoes: the platform's own copy of a message the page or account sent.
//!
//! Meta echoes every message the page sends (`is_echo`), X reports the account's own tweets and
//! DMs. An echo of a Crossdesk reply must not become a second message, and one of a message sent
//! outside Crossdesk (Business Suite, the native apps) must be kept, marked as such:
//! - the reply sender records the platform's id on the reply (`set_delivery`), so an echo
//!   arriving after that is a duplicate by platform id;
//! - a Messenger reply also carries its Crossdesk id in the Send API's `metadata`, which the
//!   parser turns back into the echo's [`Message::id`]; the store answers such an echo as a
//!   duplicate of the reply (by Crossdesk id), and [`settle`] then confirms the reply `sent`
//!   with the echo's platform id. That closes the race where the echo arrives before the Send
//!   API's answer, and the case where the answer never came (a reply left `unknown`);
//! - anything else the page or account sent is stored as an outbound message whose delivery is
//!   [`DeliveryStatus::SentOutsideCrossdesk`] (the parsers mark it so).

use tracing::{info, warn};

use crate::ids::{ContactId, MessageId, TicketId};
use crate::model::{Delivery, DeliveryStatus, Direction, Message};
use crate::ports::{Appended, Route, StoreError, TicketStore};

/// How often a confirmation is retried when the reply's delivery record changes under it.
const CONFIRM_TRIES: usize = 5;

/// Finishes the write of an outbound platform message the store answered as a duplicate of
/// the Crossdesk message it names by id: a reply is confirmed `sent` with the platform's id; a
/// stored message that is not a Crossdesk reply on this channel is left alone and the echo is
/// stored on its own, as sent outside Crossdesk. Any other answer is returned unchanged.
pub(crate) async fn settle(
    store: &dyn TicketStore,
    message: &Message,
    appended: Appended,
    route: &Route,
    contact: &ContactId,
) -> Result<Appended, StoreError> {
    let names_stored_message = appended.duplicate
        && appended.message_id == message.id
        && message.direction == Direction::Outbound;
    let Some(platform_id) = message
        .platform_message_id
        .as_deref()
        .filter(|_| names_stored_message)
    else {
        return Ok(appended);
    };
    let Some(stored) = stored_message(store, &appended.ticket_id, &message.id).await? else {
        return Ok(appended);
    };
    if stored.platform_message_id.as_deref() == Some(platform_id) {
        // The same platform message delivered again.
        return Ok(appended);
    }
    // Not compared: the conversation. A private reply to a comment is echoed in the Messenger
    // thread with the commenter, not in the comment thread it answers.
    let is_reply = stored.direction == Direction::Outbound
        && stored.channel == message.channel
        && stored
            .delivery
            .as_ref()
            .is_some_and(Delivery::is_crossdesk_reply);
    if is_reply {
        confirm_sent(store, &appended.ticket_id, stored, platform_id).await?;
        return Ok(appended);
    }
    warn!(
        ticket_id = %appended.ticket_id, message_id = %message.id, platform_message_id = platform_id,
        "an echo names a stored message that is not a Crossdesk reply on its channel; stored on its own"
    );
    let apart = Message {
        id: MessageId::generate(),
        delivery: Some(Delivery::sent_outside_crossdesk(platform_id)),
        ..message.clone()
    };
    store.append_message(route, &apart, contact).await
}

/// Records that the platform echoed the reply: `sent`, with the echo's platform id (which the
/// store also makes the reply's platform message id), unless it is recorded `sent` already.
async fn confirm_sent(
    store: &dyn TicketStore,
    ticket: &TicketId,
    mut reply: Message,
    platform_id: &str,
) -> Result<(), StoreError> {
    for _ in 0..CONFIRM_TRIES {
        let Some(current) = reply.delivery.clone() else {
            return Ok(());
        };
        if current.status == DeliveryStatus::Sent {
            return Ok(());
        }
        let sent = Delivery {
            status: DeliveryStatus::Sent,
            platform_id: Some(platform_id.to_string()),
            error: None,
            attempts: current.attempts,
            sending_since: None,
        };
        if store
            .set_delivery(ticket, &reply.id, &current, &sent)
            .await?
        {
            info!(
                ticket_id = %ticket, message_id = %reply.id, platform_message_id = platform_id,
                was = ?current.status, "the platform's echo confirmed the reply sent"
            );
            return Ok(());
        }
        // The sender changed the record meanwhile (claimed, confirmed, released): look again.
        match stored_message(store, ticket, &reply.id).await? {
            Some(again) => reply = again,
            None => return Ok(()),
        }
    }
    Err(StoreError::Conflict(format!(
        "the delivery record of reply {} kept changing while its echo was matched",
        reply.id
    )))
}

async fn stored_message(
    store: &dyn TicketStore,
    ticket: &TicketId,
    id: &MessageId,
) -> Result<Option<Message>, StoreError> {
    store.get_message(ticket, id).await
}
