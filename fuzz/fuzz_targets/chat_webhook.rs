//! A chat webhook body: signed like the chat backend signs it (`v1`, timestamp now), verified,
//! parsed, and every message checked (`crossdesk_fuzz`).
#![no_main]

use crossdesk_channels::{chat, Channel, ChatChannel, Headers};
use crossdesk_fuzz::{now, verify_and_parse, SECRET};
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;

fuzz_target!(|body: &[u8]| {
    let channel = ChatChannel::new(SecretString::from(SECRET));
    if body.len() > channel.max_body_bytes() {
        return; // answered 413 before any parsing
    }
    let (timestamp, signature) = ChatChannel::sign(SECRET, now().timestamp(), body);
    let headers = Headers::new([
        (chat::TIMESTAMP_HEADER, timestamp),
        (chat::SIGNATURE_HEADER, signature),
    ]);
    let Ok(messages) = verify_and_parse(&channel, &headers, body) else {
        return;
    };
    // The widget's own endpoint shares the mapping: it must agree with the webhook.
    let own = ChatChannel::parse_own_payload(body, now());
    crossdesk_fuzz::check_deterministic(&Ok(messages.clone()), &own);
    for message in &messages {
        assert_eq!(
            message.text.trim(),
            message.text,
            "chat text is not trimmed"
        );
        assert!(!message.text.is_empty(), "chat text is empty");
        assert!(message.text.chars().count() <= chat::MAX_TEXT_CHARS);
    }
});
