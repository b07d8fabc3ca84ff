//! What the fuzz targets share: a fixed clock, signing so every input reaches the parser, and
//! the invariants every parsed message must keep whatever the input was.
//!
//! A target panics (and so libFuzzer reports a crash) when the library panics, or when one of
//! these checks fails:
//! - parsing is deterministic: the same body gives the same messages (but for the fresh
//!   Crossdesk ids) or the same error;
//! - every message survives the JSON round trip the stores and queues put it through (an id or
//!   address the parser accepted must also be accepted when read back);
//! - `received_at` is the time the channel was given;
//! - a one-line field (a subject, a name) holds no line break or other control character.

use chrono::{DateTime, TimeZone, Utc};
use crossdesk_channels::{Channel, Headers, ParseError, WebhookRequest};
use crossdesk_core::Message;

/// The secret every target signs with (any value does; the channel holds the same one).
pub const SECRET: &str = "crossdesk-fuzz-secret";

/// The fixed "now" of every target: the samples' day, so chat timestamps are fresh.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0)
        .single()
        .expect("a valid date")
}

/// Verifies the (correctly signed) request, parses it twice and checks the result.
pub fn verify_and_parse(
    channel: &dyn Channel,
    headers: &Headers,
    body: &[u8],
) -> Result<Vec<Message>, ParseError> {
    let request = WebhookRequest { headers, body };
    let webhook = match channel.verify(&request, now()) {
        Ok(webhook) => webhook,
        Err(e) => panic!("a body signed with the channel's secret was refused: {e}"),
    };
    assert!(webhook.signature_failure().is_none());
    let first = channel.parse(&webhook, now());
    let second = channel.parse(&webhook, now());
    check_deterministic(&first, &second);
    if let Ok(messages) = &first {
        for message in messages {
            check_message(message);
        }
    }
    first
}

/// The same input gave the same outcome (messages compared without their fresh ids).
pub fn check_deterministic(
    first: &Result<Vec<Message>, ParseError>,
    second: &Result<Vec<Message>, ParseError>,
) {
    match (first, second) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.len(), b.len(), "parsing twice gave different counts");
            for (a, b) in a.iter().zip(b) {
                let mut b = b.clone();
                b.id = a.id.clone();
                assert_eq!(a, &b, "parsing twice gave different messages");
            }
        }
        (Err(a), Err(b)) => assert_eq!(a, b, "parsing twice gave different errors"),
        (a, b) => panic!("parsing twice gave {a:?} and then {b:?}"),
    }
}

/// The invariants of one parsed message.
pub fn check_message(message: &Message) {
    assert_eq!(
        message.received_at,
        now(),
        "received_at is not the given time"
    );
    let json = serde_json::to_string(message).expect("a parsed message serializes");
    let back: Message = match serde_json::from_str(&json) {
        Ok(back) => back,
        Err(e) => panic!("a parsed message does not read back from its JSON: {e}\n{json}"),
    };
    assert_eq!(&back, message, "the JSON round trip changed the message");
}

/// A field the code keeps on one line (subjects and names end up in reply headers).
pub fn check_one_line(what: &str, value: Option<&str>) {
    if let Some(value) = value {
        assert!(
            !value.chars().any(char::is_control),
            "{what} holds a control character: {value:?}"
        );
    }
}
