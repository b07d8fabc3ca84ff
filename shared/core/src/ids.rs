//! Identifier newtypes. Each is built through a parse that can fail, so a handler holding one
//! cannot have skipped the check.

use std::fmt;

use rand::Rng;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a string is not a valid identifier.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum IdError {
    /// A ticket id is 8 characters of Crockford base32 (no I, L, O or U).
    #[error("`{0}` is not a ticket id (8 characters, digits and letters without I, L, O, U)")]
    Ticket(String),
    /// A message id is `msg_` followed by 32 hex digits.
    #[error("`{0}` is not a message id")]
    Message(String),
    /// A contact id is `ct_` followed by 32 hex digits.
    #[error("`{0}` is not a contact id")]
    Contact(String),
    /// A conversation key is 1..=512 printable characters.
    #[error("invalid conversation key: {0}")]
    Conversation(String),
    /// An email address has one `@` with text on both sides and no spaces or angle brackets.
    #[error("`{0}` is not an email address")]
    Email(String),
}

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const TICKET_ID_LEN: usize = 8;

/// A ticket's id: short enough to read over the phone and to put in a subject (`[#K3F9Q2XA]`)
/// or a plus-address (`support+K3F9Q2XA@…`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TicketId(String);

impl TicketId {
    /// A fresh random ticket id (40 bits of randomness).
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        let s: String = (0..TICKET_ID_LEN)
            .map(|_| CROCKFORD[rng.random_range(0..32)] as char)
            .collect();
        TicketId(s)
    }

    /// Parses a ticket id, case-insensitively (customers type them in lower case).
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let upper = s.trim().to_ascii_uppercase();
        if upper.len() == TICKET_ID_LEN && upper.bytes().all(|b| CROCKFORD.contains(&b)) {
            Ok(TicketId(upper))
        } else {
            Err(IdError::Ticket(s.to_string()))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A message's id inside Crossdesk (not the platform's).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MessageId(String);

impl MessageId {
    /// A fresh, time-ordered message id.
    pub fn generate() -> Self {
        MessageId(format!("msg_{}", uuid::Uuid::now_v7().simple()))
    }

    /// The id of the reply an agent asked for with an idempotency key: the same ticket, agent
    /// and key always give the same id, so a repeated request names the reply it made before.
    pub fn for_reply(ticket: &TicketId, agent: &str, key: &str) -> Self {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        for part in ["reply", ticket.as_str(), agent, key] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
        let digest = hash.finalize();
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        MessageId(format!("msg_{hex}"))
    }

    /// Parses `msg_<32 hex>`.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        parse_prefixed(s, "msg_")
            .map(MessageId)
            .ok_or_else(|| IdError::Message(s.to_string()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A contact's (customer's) id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContactId(String);

impl ContactId {
    /// A fresh contact id.
    pub fn generate() -> Self {
        ContactId(format!("ct_{}", uuid::Uuid::now_v7().simple()))
    }

    /// Parses `ct_<32 hex>`.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        parse_prefixed(s, "ct_")
            .map(ContactId)
            .ok_or_else(|| IdError::Contact(s.to_string()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn parse_prefixed(s: &str, prefix: &str) -> Option<String> {
    let rest = s.strip_prefix(prefix)?;
    (rest.len() == 32 && rest.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| format!("{prefix}{}", rest.to_ascii_lowercase()))
}

/// The key of one customer conversation on one platform, e.g. `fb:dm:<page>:<psid>`.
/// Messages with the same key belong to the same ticket (while it exists).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ConversationKey(String);

impl ConversationKey {
    /// Builds a key from a namespace and its parts, joined with `:`.
    /// Parts are platform ids; a `:` inside one is escaped so keys cannot collide.
    pub fn new(namespace: &str, parts: &[&str]) -> Result<Self, IdError> {
        let mut key = namespace.to_string();
        for part in parts {
            if part.is_empty() {
                return Err(IdError::Conversation(format!(
                    "empty part in `{namespace}` key"
                )));
            }
            key.push(':');
            key.push_str(&part.replace('%', "%25").replace(':', "%3A"));
        }
        Self::parse(&key)
    }

    /// Parses a stored key.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.is_empty() || s.len() > 512 || s.chars().any(char::is_control) {
            return Err(IdError::Conversation(format!(
                "`{}` must be 1 to 512 printable characters",
                s.chars().take(40).collect::<String>()
            )));
        }
        Ok(ConversationKey(s.to_string()))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An email address, lower-cased for comparison (`Alex@Example.com` and `alex@example.com` are
/// the same contact).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parses a bare address (`local@domain`).
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let t = s.trim();
        let valid = t.len() <= 254
            && t.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            })
            && !t
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'));
        if valid {
            Ok(EmailAddress(t.to_lowercase()))
        } else {
            Err(IdError::Email(s.to_string()))
        }
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before `@`.
    pub fn local_part(&self) -> &str {
        self.0.split_once('@').map_or("", |(l, _)| l)
    }

    /// The part after `@`.
    pub fn domain(&self) -> &str {
        self.0.split_once('@').map_or("", |(_, d)| d)
    }
}

macro_rules! string_conversions {
    ($($ty:ident),*) => {$(
        impl TryFrom<String> for $ty {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }
        impl From<$ty> for String {
            fn from(id: $ty) -> String {
                id.0
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}
string_conversions!(
    TicketId,
    MessageId,
    ContactId,
    ConversationKey,
    EmailAddress
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back() {
        let t = TicketId::generate();
        assert_eq!(TicketId::parse(t.as_str()).unwrap(), t);
        let m = MessageId::generate();
        assert_eq!(MessageId::parse(m.as_str()).unwrap(), m);
        let c = ContactId::generate();
        assert_eq!(ContactId::parse(c.as_str()).unwrap(), c);
    }

    #[test]
    fn a_reply_key_gives_one_id_per_ticket_agent_and_key() {
        let t = TicketId::generate();
        let other = TicketId::generate();
        let id = MessageId::for_reply(&t, "agent-1", "k1");
        assert_eq!(MessageId::parse(id.as_str()).unwrap(), id);
        assert_eq!(MessageId::for_reply(&t, "agent-1", "k1"), id);
        for different in [
            MessageId::for_reply(&other, "agent-1", "k1"),
            MessageId::for_reply(&t, "agent-2", "k1"),
            MessageId::for_reply(&t, "agent-1", "k2"),
            // The parts are length-prefixed: moving a boundary changes the id.
            MessageId::for_reply(&t, "agent-1k", "1"),
        ] {
            assert_ne!(different, id);
        }
    }

    #[test]
    fn ticket_ids_are_case_insensitive_and_reject_ambiguous_letters() {
        assert_eq!(TicketId::parse("k3f9q2xa").unwrap().as_str(), "K3F9Q2XA");
        assert!(TicketId::parse("K3F9Q2XI").is_err());
        assert!(TicketId::parse("K3F9Q2X").is_err());
        assert!(TicketId::parse("").is_err());
    }

    #[test]
    fn message_ids_need_their_prefix() {
        assert!(MessageId::parse("ct_0123456789abcdef0123456789abcdef").is_err());
        assert!(MessageId::parse("msg_0123456789abcdef0123456789abcdeg").is_err());
    }

    #[test]
    fn conversation_key_parts_cannot_collide() {
        let a = ConversationKey::new("x", &["a:b", "c"]).unwrap();
        let b = ConversationKey::new("x", &["a", "b:c"]).unwrap();
        assert_ne!(a, b);
        assert!(ConversationKey::new("x", &[""]).is_err());
        assert!(ConversationKey::parse("a\nb").is_err());
    }

    #[test]
    fn email_addresses_compare_lower_case() {
        let a = EmailAddress::parse(" Alex@Example.COM ").unwrap();
        assert_eq!(a.as_str(), "alex@example.com");
        assert_eq!(a.local_part(), "alex");
        assert_eq!(a.domain(), "example.com");
        for bad in [
            "alex",
            "@example.com",
            "alex@",
            "a b@example.com",
            "<a@b.c>",
            "a@b@c.d",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad}");
        }
    }
}
