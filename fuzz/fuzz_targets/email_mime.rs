//! One raw RFC 5322 message, as SES stores it or the local stack receives it: MIME parsing,
//! charset decoding, HTML rendering, quote splitting, threading headers and attachments.
//! Besides the shared checks (`crossdesk_fuzz`): subjects and names are one line, the thread
//! id lists are capped, and every attachment's reference finds its bytes again in the raw mail
//! (what the ticket writer does to copy it), with the size the message announced.
#![no_main]

use crossdesk_channels::{email, Channel, EmailChannel, Headers};
use crossdesk_core::RawRef;
use crossdesk_fuzz::{check_one_line, verify_and_parse};
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;

fuzz_target!(|raw: &[u8]| {
    let channel = EmailChannel::new(SecretString::from("fuzz-ingest-token"));
    if raw.len() > channel.max_body_bytes() {
        return;
    }
    let headers = Headers::new([(email::AUTHORIZATION_HEADER, "Bearer fuzz-ingest-token")]);
    let Ok(messages) = verify_and_parse(&channel, &headers, raw) else {
        return;
    };
    assert_eq!(messages.len(), 1, "one mail is one message");
    let message = &messages[0];
    check_one_line("the subject", message.subject.as_deref());
    check_one_line("the author's name", message.author.name.as_deref());
    let details = message.email.as_ref().expect("email details");
    assert!(details.in_reply_to.len() <= 50 && details.references.len() <= 50);
    for id in std::iter::once(&details.message_id)
        .chain(&details.in_reply_to)
        .chain(&details.references)
    {
        assert!(
            !id.is_empty() && !id.chars().any(|c| c.is_whitespace() || c.is_control()),
            "a message id is empty or not one token: {id:?}"
        );
    }
    let raw_ref = RawRef::of(raw);
    for attachment in &message.attachments {
        let object_ref = attachment.object_ref.as_deref().expect("an object_ref");
        let (from, index) =
            EmailChannel::split_attachment_ref(object_ref).expect("the object_ref splits");
        assert_eq!(from, raw_ref, "the object_ref names another mail");
        let bytes = EmailChannel::attachment_contents(raw, index)
            .unwrap_or_else(|| panic!("attachment {index} is not found again"));
        assert_eq!(
            Some(bytes.len() as u64),
            attachment.size,
            "attachment {index}'s size"
        );
    }
});
