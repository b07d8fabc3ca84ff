//! Signed email thread references: what lets Crossdesk tell a reply to its own mail from a mail
//! that only claims to be one.
//!
//! Every reply Crossdesk sends carries two references a customer's answer brings back, both
//! signed with the deployment's email thread key (HMAC-SHA256, truncated to
//! [`SIGNATURE_BYTES`] and written in lower-case Crockford base32, 26 characters):
//! - its Message-ID, `crossdesk.<message id>.<ticket id>.<signature>@<support domain>`, the
//!   signature over the message id and the ticket id;
//! - the `Reply-To` plus-address, `<support>+<ticket id>.<signature>@<support domain>`, the
//!   signature over the ticket id alone (SES replaces the Message-ID; this one survives).
//!
//! The two signatures cover different, labelled inputs, so one can never stand in for the
//! other. Checking is constant-time (`hmac`'s `verify_truncated_left`). This module is pure: no
//! store, no I/O.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

use crate::ids::{MessageId, TicketId};

/// Bytes of the HMAC kept in a signature (128 bits).
pub const SIGNATURE_BYTES: usize = 16;
/// Characters of a signature as written (Crockford base32 of [`SIGNATURE_BYTES`]).
pub const SIGNATURE_CHARS: usize = (SIGNATURE_BYTES * 8).div_ceil(5);
/// The shortest key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 16;
/// The prefix of the Message-IDs Crossdesk gives its mail.
pub const MESSAGE_ID_PREFIX: &str = "crossdesk.";

/// Labels that keep the two kinds of signature apart.
const TICKET_LABEL: &[u8] = b"crossdesk/email-ticket/v1";
const MESSAGE_ID_LABEL: &[u8] = b"crossdesk/email-message-id/v1";

/// Crockford's base32 alphabet (no I, L, O, U), lower case, as ticket ids use it.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Why a thread key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ThreadKeyError {
    /// The key is too short to sign anything safely.
    #[error("the email thread key is {0} bytes long; it needs at least {MIN_KEY_BYTES} (use a random value, e.g. `openssl rand -hex 32`)")]
    TooShort(usize),
}

/// The server key that signs Crossdesk's email references. Its `Debug` output never shows it.
#[derive(Clone)]
pub struct EmailThreadKey {
    key: Vec<u8>,
}

impl fmt::Debug for EmailThreadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EmailThreadKey(<redacted>)")
    }
}

/// What a Message-ID says about its origin, once checked against the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageIdCheck {
    /// Not in the shape of a Crossdesk Message-ID.
    NotOurs,
    /// A Message-ID Crossdesk gave one of its mails in this ticket.
    Signed {
        /// The ticket it was sent from.
        ticket: TicketId,
        /// The Crossdesk message it was.
        message: MessageId,
    },
    /// Shaped like a Crossdesk Message-ID, naming this ticket, but the signature is wrong: made
    /// up or altered.
    Forged {
        /// The ticket it names.
        ticket: TicketId,
    },
}

impl EmailThreadKey {
    /// A key from its secret bytes (at least [`MIN_KEY_BYTES`]).
    pub fn new(secret: &[u8]) -> Result<Self, ThreadKeyError> {
        if secret.len() < MIN_KEY_BYTES {
            return Err(ThreadKeyError::TooShort(secret.len()));
        }
        Ok(EmailThreadKey {
            key: secret.to_vec(),
        })
    }

    fn mac(&self, label: &[u8], parts: &[&str]) -> Hmac<Sha256> {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes keys of any size");
        mac.update(label);
        for part in parts {
            mac.update(b"\0");
            mac.update(part.as_bytes());
        }
        mac
    }

    fn sign(&self, label: &[u8], parts: &[&str]) -> String {
        let tag = self.mac(label, parts).finalize().into_bytes();
        encode(&tag[..SIGNATURE_BYTES])
    }

    fn verify(&self, label: &[u8], parts: &[&str], signature: &str) -> bool {
        match decode(signature) {
            Some(bytes) => self.mac(label, parts).verify_truncated_left(&bytes).is_ok(),
            None => false,
        }
    }

    /// The signature of a ticket id, as the plus-address carries it.
    pub fn ticket_signature(&self, ticket: &TicketId) -> String {
        self.sign(TICKET_LABEL, &[ticket.as_str()])
    }

    /// Whether `signature` is this key's signature of `ticket` (case-insensitive).
    pub fn verify_ticket_signature(&self, ticket: &TicketId, signature: &str) -> bool {
        self.verify(TICKET_LABEL, &[ticket.as_str()], signature)
    }

    /// The signed Message-ID (without angle brackets) of a Crossdesk mail in a ticket:
    /// `crossdesk.<message id>.<ticket id>.<signature>@<domain>`.
    pub fn message_id(&self, message: &MessageId, ticket: &TicketId, domain: &str) -> String {
        let signature = self.sign(MESSAGE_ID_LABEL, &[message.as_str(), ticket.as_str()]);
        format!("{MESSAGE_ID_PREFIX}{message}.{ticket}.{signature}@{domain}")
    }

    /// Checks a Message-ID (without angle brackets): one this key signed, a forgery of one, or
    /// not Crossdesk's at all.
    pub fn check_message_id(&self, id: &str) -> MessageIdCheck {
        let Some(parts) = CrossdeskMessageId::parse(id) else {
            return MessageIdCheck::NotOurs;
        };
        if self.verify(
            MESSAGE_ID_LABEL,
            &[parts.message.as_str(), parts.ticket.as_str()],
            parts.signature,
        ) {
            MessageIdCheck::Signed {
                ticket: parts.ticket,
                message: parts.message,
            }
        } else {
            MessageIdCheck::Forged {
                ticket: parts.ticket,
            }
        }
    }
}

/// The parts of a Message-ID in Crossdesk's shape, not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CrossdeskMessageId<'a> {
    message: MessageId,
    ticket: TicketId,
    signature: &'a str,
}

impl<'a> CrossdeskMessageId<'a> {
    fn parse(id: &'a str) -> Option<Self> {
        let (local, _domain) = id.trim().rsplit_once('@')?;
        let rest = local.strip_prefix(MESSAGE_ID_PREFIX)?;
        let mut parts = rest.split('.');
        let (message, ticket, signature) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        Some(CrossdeskMessageId {
            message: MessageId::parse(message).ok()?,
            ticket: TicketId::parse(ticket).ok()?,
            signature,
        })
    }
}

/// Lower-case Crockford base32, no padding.
fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity((bytes.len() * 8).div_ceil(5));
    let (mut buffer, mut bits) = (0u16, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u16::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[usize::from((buffer >> bits) & 31)] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[usize::from((buffer << (5 - bits)) & 31)] as char);
    }
    out
}

/// Decodes a signature written by [`encode`] (any case); `None` unless it is exactly
/// [`SIGNATURE_CHARS`] characters of the alphabet with its unused trailing bits zero.
fn decode(text: &str) -> Option<[u8; SIGNATURE_BYTES]> {
    if text.len() != SIGNATURE_CHARS {
        return None;
    }
    let mut out = [0u8; SIGNATURE_BYTES];
    let (mut buffer, mut bits, mut at) = (0u16, 0u32, 0usize);
    for c in text.bytes() {
        let value = ALPHABET.iter().position(|&a| a == c.to_ascii_lowercase())?;
        buffer = (buffer << 5) | value as u16;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            *out.get_mut(at)? = (buffer >> bits) as u8;
            at += 1;
        }
        buffer &= (1 << bits) - 1;
    }
    (at == SIGNATURE_BYTES && buffer == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> EmailThreadKey {
        EmailThreadKey::new(b"test-email-thread-key-0123456789").unwrap()
    }

    fn ticket(s: &str) -> TicketId {
        TicketId::parse(s).unwrap()
    }

    #[test]
    fn refuses_a_short_key() {
        assert_eq!(
            EmailThreadKey::new(b"short").unwrap_err(),
            ThreadKeyError::TooShort(5)
        );
        assert!(EmailThreadKey::new(&[7; MIN_KEY_BYTES]).is_ok());
    }

    #[test]
    fn debug_output_hides_the_key() {
        assert!(!format!("{:?}", key()).contains("test-email"));
    }

    #[test]
    fn base32_round_trips_and_rejects_non_canonical_text() {
        for bytes in [[0u8; 16], [255u8; 16], *b"0123456789abcdef"] {
            let text = encode(&bytes);
            assert_eq!(text.len(), SIGNATURE_CHARS);
            assert_eq!(decode(&text), Some(bytes));
            assert_eq!(decode(&text.to_ascii_uppercase()), Some(bytes));
        }
        assert_eq!(decode(""), None);
        assert_eq!(decode(&"0".repeat(25)), None);
        assert_eq!(decode(&"0".repeat(27)), None);
        // `u` is not in the alphabet; a last character with its unused bits set is not canonical.
        assert_eq!(decode(&format!("{}u", "0".repeat(25))), None);
        assert_eq!(decode(&format!("{}1", "0".repeat(25))), None);
    }

    #[test]
    fn a_ticket_signature_verifies_for_its_ticket_only() {
        let k = key();
        let t = ticket("K3F9Q2XA");
        let sig = k.ticket_signature(&t);
        assert_eq!(sig.len(), 26);
        assert!(k.verify_ticket_signature(&t, &sig));
        assert!(k.verify_ticket_signature(&t, &sig.to_ascii_uppercase()));
        assert!(!k.verify_ticket_signature(&ticket("M7PH4RTW"), &sig));
        let other = EmailThreadKey::new(b"another-key-of-32-bytes-long-xyz").unwrap();
        assert!(!other.verify_ticket_signature(&t, &sig));
    }

    #[test]
    fn rejects_truncated_or_altered_ticket_signatures() {
        let k = key();
        let t = ticket("K3F9Q2XA");
        let sig = k.ticket_signature(&t);
        assert!(!k.verify_ticket_signature(&t, &sig[..25]));
        assert!(!k.verify_ticket_signature(&t, &sig[..4]));
        assert!(!k.verify_ticket_signature(&t, ""));
        let mut altered = sig.clone().into_bytes();
        altered[3] = if altered[3] == b'a' { b'b' } else { b'a' };
        assert!(!k.verify_ticket_signature(&t, std::str::from_utf8(&altered).unwrap()));
    }

    #[test]
    fn a_signed_message_id_names_its_ticket_and_message() {
        let k = key();
        let t = ticket("K3F9Q2XA");
        let m = MessageId::generate();
        let id = k.message_id(&m, &t, "sample.example");
        assert!(id.starts_with(&format!("crossdesk.{m}.K3F9Q2XA.")), "{id}");
        assert!(id.ends_with("@sample.example"));
        assert_eq!(
            k.check_message_id(&id),
            MessageIdCheck::Signed {
                ticket: t.clone(),
                message: m.clone()
            }
        );
    }

    #[test]
    fn a_message_id_moved_to_another_ticket_or_message_is_forged() {
        let k = key();
        let t = ticket("K3F9Q2XA");
        let m = MessageId::generate();
        let id = k.message_id(&m, &t, "sample.example");
        let moved = id.replace("K3F9Q2XA", "M7PH4RTW");
        assert_eq!(
            k.check_message_id(&moved),
            MessageIdCheck::Forged {
                ticket: ticket("M7PH4RTW")
            }
        );
        let other = MessageId::generate();
        let swapped = id.replace(m.as_str(), other.as_str());
        assert!(matches!(
            k.check_message_id(&swapped),
            MessageIdCheck::Forged { .. }
        ));
        // The ticket's plus-address signature is not a Message-ID signature.
        let plus = k.ticket_signature(&t);
        let made_up = format!("crossdesk.{m}.K3F9Q2XA.{plus}@sample.example");
        assert!(matches!(
            k.check_message_id(&made_up),
            MessageIdCheck::Forged { .. }
        ));
    }

    #[test]
    fn other_message_ids_are_not_ours() {
        let k = key();
        let m = MessageId::generate();
        for id in [
            "CAF=sample-0001@mail.example.com".to_string(),
            format!("crossdesk.{m}@sample.example"),
            format!("crossdesk.{m}.K3F9Q2XA@sample.example"),
            format!("crossdesk.{m}.NOTATICKET.sig@sample.example"),
            format!("crossdesk.{m}.K3F9Q2XA.a.b@sample.example"),
            "crossdesk.x.K3F9Q2XA.sig@sample.example".to_string(),
            String::new(),
        ] {
            assert_eq!(k.check_message_id(&id), MessageIdCheck::NotOurs, "{id}");
        }
    }
}
