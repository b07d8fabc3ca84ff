//! A Facebook/Instagram webhook body: signed like Meta signs it, verified, parsed (Messenger,
//! page feed, Instagram), and every message checked (`crossdesk_fuzz`).
#![no_main]

use crossdesk_channels::{facebook, Channel, FacebookChannel, Headers};
use crossdesk_fuzz::{verify_and_parse, SECRET};
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;

fuzz_target!(|body: &[u8]| {
    let channel = FacebookChannel::new(SecretString::from(SECRET), SecretString::from("token"));
    if body.len() > channel.max_body_bytes() {
        return; // answered 413 before any parsing
    }
    let headers = Headers::new([(
        facebook::SIGNATURE_HEADER,
        FacebookChannel::sign(SECRET, body),
    )]);
    let _ = verify_and_parse(&channel, &headers, body);
});
