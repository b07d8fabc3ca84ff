//! An X webhook body (Account Activity API and X Activity API events): signed like X signs
//! it, verified, parsed, and every message checked (`crossdesk_fuzz`).
#![no_main]

use crossdesk_channels::{twitter, Channel, Headers, TwitterChannel};
use crossdesk_fuzz::{verify_and_parse, SECRET};
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;

fuzz_target!(|body: &[u8]| {
    let channel = TwitterChannel::new(SecretString::from(SECRET));
    if body.len() > channel.max_body_bytes() {
        return; // answered 413 before any parsing
    }
    let headers = Headers::new([(twitter::SIGNATURE_HEADER, twitter::sign(SECRET, body))]);
    let Ok(messages) = verify_and_parse(&channel, &headers, body) else {
        return;
    };
    // HTML entities are decoded (`&#0;` is not): a NUL in the text must come from the body.
    let body_has_nul =
        body.contains(&0) || body.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000"));
    if !body_has_nul {
        for message in &messages {
            assert!(
                !message.text.contains('\0'),
                "a NUL appeared in {:?}",
                message.text
            );
        }
    }
});
