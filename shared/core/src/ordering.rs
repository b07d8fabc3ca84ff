//! Which inbound messages the ticket writer may store at the same time.
//!
//! Two messages are stored one after the other, in queue order, when they may touch the same
//! ticket or contact: the same conversation, the same author, or one answering, editing or
//! naming what the other creates. Everything else may be stored at once, which is what lets a
//! writer keep up with a busy queue (on AWS the queue's message groups do the same: one group
//! per conversation).

use std::collections::HashSet;

use crate::model::Message;

/// The keys that order `message` against the others of a batch: messages sharing any key are
/// stored in queue order.
pub fn ordering_keys(message: &Message) -> Vec<String> {
    let channel = message.channel;
    let mut keys = Vec::with_capacity(4 + message.replies_to.len());
    if let Ok(key) = message.conversation.key(channel) {
        keys.push(format!("conversation:{}", key.as_str()));
    }
    keys.push(format!("author:{channel}:{}", message.author.platform_id));
    if let Some(email) = &message.author.email {
        keys.push(format!("email:{}", email.as_str().to_ascii_lowercase()));
    }
    if let Some(id) = &message.platform_message_id {
        keys.push(format!("message:{channel}:{id}"));
    }
    for id in &message.replies_to {
        keys.push(format!("message:{channel}:{id}"));
    }
    if let Some(ticket) = &message.ticket_ref {
        keys.push(format!("ticket:{}", ticket.as_str()));
    }
    keys
}

/// Of the entries still waiting (each with its ordering keys, in queue order), the positions
/// that may run now: those sharing no key with an entry before them. An entry without keys is
/// ordered against nothing.
pub fn next_wave<E: AsRef<[K]>, K: AsRef<str>>(waiting: &[E]) -> Vec<usize> {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut wave = Vec::new();
    for (position, keys) in waiting.iter().enumerate() {
        let keys = keys.as_ref();
        if keys.iter().all(|key| !seen.contains(key.as_ref())) {
            wave.push(position);
        }
        seen.extend(keys.iter().map(AsRef::as_ref));
    }
    wave
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Messenger message `mid` from user `psid`.
    fn inbound_message(mid: &str, psid: &str, text: &str) -> Message {
        serde_json::from_value(serde_json::json!({
            "id": crate::ids::MessageId::generate(),
            "channel": "facebook",
            "platform_message_id": mid,
            "conversation": {"kind": "direct_thread", "account_id": "page", "user_id": psid},
            "direction": "inbound",
            "author": {"platform_id": psid},
            "text": text,
            "visibility": "private",
            "sent_at": "2026-12-01T10:00:00Z",
            "received_at": "2026-12-01T10:00:01Z",
        }))
        .expect("a message")
    }

    #[test]
    fn entries_sharing_a_key_wait_for_the_one_before_them() {
        let waiting: Vec<Vec<&str>> = vec![
            vec!["a", "x"],
            vec!["b"],
            vec!["a"],
            vec!["c", "x"],
            vec![],
            vec!["d"],
        ];
        assert_eq!(next_wave(&waiting), vec![0, 1, 4, 5]);
    }

    #[test]
    fn an_entry_waits_behind_a_waiting_entry_it_shares_a_key_with() {
        // The third shares nothing with the first, but follows the second, which waits.
        let waiting = vec![vec!["a"], vec!["a", "b"], vec!["b"]];
        assert_eq!(next_wave(&waiting), vec![0]);
        assert_eq!(next_wave(&waiting[1..]), vec![0]);
        assert_eq!(next_wave(&waiting[2..]), vec![0]);
    }

    #[test]
    fn messages_of_one_conversation_or_author_share_a_key() {
        let first = inbound_message("m1", "alice", "hello");
        let second = inbound_message("m2", "alice", "again");
        let other = inbound_message("m3", "bob", "hi");
        let shared = |a: &Message, b: &Message| {
            ordering_keys(a)
                .iter()
                .any(|k| ordering_keys(b).contains(k))
        };
        assert!(shared(&first, &second));
        assert!(!shared(&first, &other));
    }

    #[test]
    fn a_reply_shares_a_key_with_the_message_it_answers() {
        let first = inbound_message("m1", "alice", "hello");
        let mut reply = inbound_message("m2", "bob", "re");
        assert!(!ordering_keys(&reply)
            .iter()
            .any(|k| ordering_keys(&first).contains(k)));
        reply.replies_to = vec!["m1".into()];
        let first_keys = ordering_keys(&first);
        assert!(ordering_keys(&reply).iter().any(|k| first_keys.contains(k)));
    }
}
