//! Email replies: the raw MIME of an agent's answer, threaded under the customer's mail. The SES
//! `SendEmail` call (raw content) lives in the AWS adapter; this module only builds the bytes.
//!
//! - `From: <display name> <support address>`, `To:` the author of the mail answered;
//! - `Reply-To: <display name> <local>+<ticket>.<signature>@<domain>`, so the customer's answer
//!   finds its ticket even when a mail client drops the threading headers; the signature (of
//!   the ticket id, with the email thread key) is what lets the ticket writer trust it;
//! - `Subject: Re: <original subject without Re:/AW:/… and ticket tags> [#<ticket>]`;
//! - `In-Reply-To:` the answered mail's Message-ID, `References:` its `References` followed by
//!   its Message-ID, trimmed as mail clients trim them (the root and the newest, at most
//!   [`MAX_REFERENCES`]);
//! - `Message-ID: <crossdesk.<reply message id>.<ticket>.<signature>@<support domain>>`, signed
//!   like the plus-address ([`crossdesk_core::mail_signature`]), and `Date:` the time of sending;
//! - no `Auto-Submitted` (a person wrote this reply: auto-responders must answer it normally);
//! - a multipart/alternative body: the text as text/plain, and as text/html (escaped, line
//!   breaks as `<br>`).
//!
//! Header values are built from single-line text: CR, LF and other control characters in a
//! subject or a name become spaces, so they cannot start a header of their own.
//!
//! **SES replaces the Message-ID** set here with its own
//! (`<{SES MessageId}@{region}.amazonses.com>`, `email.amazonses.com` in us-east-1), keeping
//! `In-Reply-To` and `References`. The caller records that id as the outbound message's
//! platform id: it is the one the customer's reply will name (a Message-ID stored in the ticket
//! threads like a signed one). The signed plus-address leads back to the ticket either way; the
//! `[#ticket]` subject tag is for people, a hint the ticket writer does not trust alone.

use crossdesk_core::mail_signature::EmailThreadKey;
use crossdesk_core::{strip_reply_prefixes, ChannelKind, EmailAddress, Message, TicketId};
use mail_builder::headers::address::Address;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use mail_builder::MessageBuilder;

use crate::email::SYNTHETIC_ID_DOMAIN;
use crate::send::{OutboundReply, SendError};

/// The most ids kept in `References`: the thread's root and the newest ones.
pub const MAX_REFERENCES: usize = 20;
/// The longest Message-ID written, in bytes (longer ones are left out).
const MAX_ID_LEN: usize = 250;

/// Who replies are sent as, and the key they are signed with.
#[derive(Debug, Clone)]
pub struct EmailReplySettings {
    /// The support address (`support@acme.example`); its domain names our Message-IDs and its
    /// plus-addresses carry ticket ids.
    pub support_address: EmailAddress,
    /// The name shown beside it (`Acme Support`).
    pub display_name: Option<String>,
    /// Signs the Message-ID and the plus-address (`CROSSDESK_EMAIL_THREAD_KEY`, the secret's
    /// `email_thread_key`); the ticket writer checks them with the same key.
    pub thread_key: EmailThreadKey,
}

/// A reply ready for SES `SendEmail` (raw content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    /// The whole RFC 5322 message, CRLF line endings.
    pub mime: Vec<u8>,
    /// The signed Message-ID set in it, without angle brackets (SES replaces it: record SES's).
    pub message_id: String,
    /// The recipient (the envelope destination).
    pub to: EmailAddress,
}

/// Builds the MIME message of an email reply, threaded under the message it answers.
pub fn build_reply(
    settings: &EmailReplySettings,
    out: &OutboundReply<'_>,
) -> Result<OutgoingEmail, SendError> {
    let reply = out.reply;
    let answering = out.answering;
    if reply.channel != ChannelKind::Email {
        return Err(SendError::refused(
            "wrong_channel",
            format!("a {} reply cannot be sent as email", reply.channel),
        ));
    }
    if reply.text.trim().is_empty() {
        return Err(SendError::refused("empty_text", "the reply has no text"));
    }
    let to = answering.author.email.clone().ok_or_else(|| {
        SendError::refused(
            "no_email_address",
            "the message being answered has no sender address; the reply cannot be addressed",
        )
    })?;

    let domain = settings.support_address.domain();
    let message_id = settings
        .thread_key
        .message_id(&reply.id, out.ticket_id, domain);
    let parent = parent_id(answering);
    let references = references(answering, parent.as_deref());

    let from_name = settings.display_name.as_deref().map(single_line);
    let to_name = answering.author.name.as_deref().map(single_line);
    let mut builder = MessageBuilder::new()
        .from(address(
            from_name.clone(),
            settings.support_address.as_str(),
        ))
        .to(address(to_name, to.as_str()))
        .reply_to(address(
            from_name,
            &reply_to_address(
                &settings.support_address,
                out.ticket_id,
                &settings.thread_key,
            ),
        ))
        .subject(subject(
            answering.subject.as_deref().or(reply.subject.as_deref()),
            out.ticket_id,
        ))
        .date(Date::new(out.now.timestamp()))
        .message_id(message_id.clone());
    if let Some(parent) = &parent {
        builder = builder.in_reply_to(parent.clone());
    }
    if !references.is_empty() {
        builder = builder.references(MessageId::from(references));
    }
    let text = reply.text.replace("\r\n", "\n").replace('\r', "\n");
    let mime = builder
        .html_body(html_body(&text))
        .text_body(text)
        .write_to_vec()
        .map_err(|e| {
            SendError::refused(
                "mime_build_failed",
                format!("the email could not be built: {e}"),
            )
        })?;
    Ok(OutgoingEmail {
        mime,
        message_id,
        to,
    })
}

/// The support address with the ticket id and its signature as plus-tag:
/// `support+K3F9Q2XA.<signature>@acme.example`.
pub fn reply_to_address(support: &EmailAddress, ticket: &TicketId, key: &EmailThreadKey) -> String {
    format!(
        "{}+{}.{}@{}",
        support.local_part(),
        ticket,
        key.ticket_signature(ticket),
        support.domain()
    )
}

/// `Re: <subject without reply prefixes and tags of this ticket> [#<ticket>]`, on one line.
pub fn subject(original: Option<&str>, ticket: &TicketId) -> String {
    let tag = format!("[#{ticket}]");
    let mut base = strip_reply_prefixes(&single_line(original.unwrap_or_default()));
    // `strip_reply_prefixes` drops a leading tag; ours goes last, so drop it anywhere.
    while let Some(at) = base.to_ascii_uppercase().find(&tag) {
        base.replace_range(at..at + tag.len(), " ");
    }
    let base = strip_reply_prefixes(&single_line(&base));
    if base.is_empty() {
        format!("Re: {tag}")
    } else {
        format!("Re: {base} {tag}")
    }
}

/// An address with an optional display name (an empty name is left out).
fn address(name: Option<String>, email: &str) -> Address<'static> {
    Address::new_address(name.filter(|n| !n.is_empty()), email.to_string())
}

/// Text fit for a header: control characters and line breaks become spaces, runs of
/// whitespace one space.
fn single_line(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The Message-ID of the mail answered, when it is one its sender gave (not synthesized by
/// Crossdesk for a mail that had none) and can be written between angle brackets.
fn parent_id(answering: &Message) -> Option<String> {
    answering
        .email
        .as_ref()
        .map(|e| e.message_id.as_str())
        .or(answering.platform_message_id.as_deref())
        .and_then(writable_id)
        .filter(|id| !id.ends_with(&format!("@{SYNTHETIC_ID_DOMAIN}")))
}

/// The answered mail's `References` followed by its Message-ID, without repeats or unwritable
/// ids; beyond [`MAX_REFERENCES`], the first (the thread's root) and the newest are kept.
fn references(answering: &Message, parent: Option<&str>) -> Vec<String> {
    let listed = answering
        .email
        .as_ref()
        .map(|e| e.references.as_slice())
        .unwrap_or_default();
    let mut ids: Vec<String> = Vec::new();
    for id in listed
        .iter()
        .filter_map(|id| writable_id(id))
        .chain(parent.map(str::to_string))
    {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.len() > MAX_REFERENCES {
        ids.drain(1..ids.len() - (MAX_REFERENCES - 1));
    }
    ids
}

/// An id that can go between `<` and `>` in a header: printable, no spaces or brackets.
fn writable_id(id: &str) -> Option<String> {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>');
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && !id
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"'));
    ok.then(|| id.to_string())
}

/// The text as a minimal HTML document: escaped, each line break a `<br>`.
fn html_body(text: &str) -> String {
    let mut html = String::with_capacity(text.len() + 128);
    html.push_str(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head>\n<body><div dir=\"auto\">",
    );
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            html.push_str("<br>\n");
        }
        for c in line.chars() {
            match c {
                '&' => html.push_str("&amp;"),
                '<' => html.push_str("&lt;"),
                '>' => html.push_str("&gt;"),
                '"' => html.push_str("&quot;"),
                '\'' => html.push_str("&#39;"),
                c => html.push(c),
            }
        }
    }
    html.push_str("</div></body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use crossdesk_core::mail_signature::MessageIdCheck;
    use crossdesk_core::{Author, Delivery, Direction, MessageEvent, Visibility};
    use mail_parser::{HeaderName, HeaderValue, MessageParser, MimeHeaders};

    use super::*;
    use crate::EmailChannel;

    const TICKET: &str = "K3F9Q2XA";

    fn ticket() -> TicketId {
        TicketId::parse(TICKET).unwrap()
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-20T14:30:00Z")
            .unwrap()
            .to_utc()
    }

    fn key() -> EmailThreadKey {
        EmailThreadKey::new(b"reply-test-email-thread-key-0123").unwrap()
    }

    fn settings() -> EmailReplySettings {
        EmailReplySettings {
            support_address: EmailAddress::parse("support@sample.example").unwrap(),
            display_name: Some("Sample Support".into()),
            thread_key: key(),
        }
    }

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/../../events/email/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// A customer mail, parsed by the email channel.
    fn inbound(raw: &[u8]) -> Message {
        EmailChannel::parse_mime(raw, now()).unwrap().remove(0)
    }

    /// An agent's reply to `target`, stored as the agent API stores it.
    fn reply_to(target: &Message, text: &str) -> Message {
        Message {
            id: crossdesk_core::MessageId::generate(),
            channel: target.channel,
            platform_message_id: None,
            conversation: target.conversation.clone(),
            direction: Direction::Outbound,
            event: MessageEvent::Created,
            author: Author {
                platform_id: "agent-1".into(),
                name: Some("Sam Agent".into()),
                email: None,
                handle: None,
            },
            text: text.to_string(),
            attachments: Vec::new(),
            visibility: Visibility::Private,
            sent_at: now(),
            received_at: now(),
            replies_to: target.platform_message_id.iter().cloned().collect(),
            ticket_ref: Some(ticket()),
            subject: target.subject.clone(),
            email: None,
            raw: None,
            signature_unverified: false,
            personal_data: Vec::new(),
            internal_note: false,
            monitoring: false,
            delivery: Some(Delivery::queued()),
        }
    }

    fn build(
        settings: &EmailReplySettings,
        reply: &Message,
        answering: &Message,
    ) -> Result<OutgoingEmail, SendError> {
        let ticket = ticket();
        let thread = vec![answering.clone(), reply.clone()];
        build_reply(
            settings,
            &OutboundReply {
                ticket_id: &ticket,
                reply,
                answering,
                thread: &thread,
                now: now(),
            },
        )
    }

    fn parsed(email: &OutgoingEmail) -> mail_parser::Message<'_> {
        MessageParser::default()
            .parse(&email.mime)
            .expect("parsable MIME")
    }

    fn ids(value: &HeaderValue<'_>) -> Vec<String> {
        value
            .as_text_list()
            .unwrap_or_default()
            .iter()
            .map(|id| id.to_string())
            .collect()
    }

    fn header_names(mail: &mail_parser::Message<'_>) -> Vec<String> {
        mail.headers()
            .iter()
            .map(|h| h.name.as_str().to_ascii_lowercase())
            .collect()
    }

    const OUTLOOK_ID: &str =
        "AM0PR07MB6321B5A1C3D4E5F6A7B8C9D0@AM0PR07MB6321.eurprd07.prod.outlook.com";

    #[test]
    fn builds_a_reply_threaded_under_the_customer_mail() {
        let answering = inbound(&fixture("outlook-quoted-reply.eml"));
        let reply = reply_to(&answering, "Bonjour Jordan,\n\nThe address is fixed.\nSam");
        let email = build(&settings(), &reply, &answering).unwrap();
        let our_id = key().message_id(&reply.id, &ticket(), "sample.example");
        assert_eq!(email.message_id, our_id);
        assert!(our_id.starts_with(&format!("crossdesk.{}.K3F9Q2XA.", reply.id)));
        assert_eq!(
            key().check_message_id(&our_id),
            MessageIdCheck::Signed {
                ticket: ticket(),
                message: reply.id.clone()
            }
        );
        assert_eq!(email.to.as_str(), "jordan.lefevre@client.example");

        let mail = parsed(&email);
        let from = mail.from().and_then(|a| a.first()).unwrap();
        assert_eq!(from.name.as_deref(), Some("Sample Support"));
        assert_eq!(from.address.as_deref(), Some("support@sample.example"));
        let to = mail.to().and_then(|a| a.first()).unwrap();
        assert_eq!(to.name.as_deref(), Some("Jordan Lefèvre"));
        assert_eq!(to.address.as_deref(), Some("jordan.lefevre@client.example"));
        let reply_to = mail.reply_to().and_then(|a| a.first()).unwrap();
        assert_eq!(reply_to.name.as_deref(), Some("Sample Support"));
        let signed = format!(
            "support+K3F9Q2XA.{}@sample.example",
            key().ticket_signature(&ticket())
        );
        assert_eq!(reply_to.address.as_deref(), Some(signed.as_str()));
        assert_eq!(
            mail.subject(),
            Some("Re: Invoice address wrong [#K3F9Q2XA]")
        );
        assert_eq!(mail.message_id(), Some(our_id.as_str()));
        assert_eq!(ids(mail.in_reply_to()), vec![OUTLOOK_ID.to_string()]);
        assert_eq!(
            ids(mail.references()),
            vec![
                "ticket-K3F9Q2XA.1@sample.example".to_string(),
                OUTLOOK_ID.to_string()
            ]
        );
        assert_eq!(mail.date().unwrap().to_timestamp(), now().timestamp());
        assert!(mail.header("Auto-Submitted").is_none());
        assert!(!header_names(&mail).contains(&"auto-submitted".to_string()));
        assert_eq!(mail.header_raw("MIME-Version").map(str::trim), Some("1.0"));

        let root = mail.root_part().content_type().unwrap();
        assert_eq!(root.ctype(), "multipart");
        assert_eq!(root.subtype(), Some("alternative"));
        assert_eq!(
            mail.body_text(0).unwrap().replace("\r\n", "\n"),
            "Bonjour Jordan,\n\nThe address is fixed.\nSam"
        );
        let html = mail.body_html(0).unwrap().replace("\r\n", "\n");
        assert!(
            html.contains("Bonjour Jordan,<br>\n<br>\nThe address is fixed.<br>\nSam"),
            "{html}"
        );
        assert_eq!(mail.text_body_count(), 1);
        assert_eq!(mail.html_body_count(), 1);
        assert_eq!(mail.attachment_count(), 0);
    }

    #[test]
    fn a_customer_answer_threads_back_to_the_ticket() {
        let answering = inbound(&fixture("reply-thunderbird.eml"));
        let reply = reply_to(&answering, "Thanks for the details.");
        let email = build(&settings(), &reply, &answering).unwrap();
        let ours = parsed(&email);
        let subject = ours.subject().unwrap().to_string();
        let references = ids(ours.references())
            .iter()
            .map(|id| format!("<{id}>"))
            .collect::<Vec<_>>()
            .join(" ");
        let reply_to = ours
            .reply_to()
            .and_then(|a| a.first())
            .and_then(|a| a.address.clone())
            .unwrap();

        // The customer answers: In-Reply-To our Message-ID, to the Reply-To address.
        let answer = format!(
            "From: Testing <xxxxxxxx@xxx.org>\r\n\
             To: Sample Support <{reply_to}>\r\n\
             Subject: Re: {subject}\r\n\
             Date: Fri, 20 Nov 2026 15:00:00 +0000\r\n\
             Message-ID: <answer-1@xxx.org>\r\n\
             In-Reply-To: <{id}>\r\n\
             References: {references} <{id}>\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=UTF-8\r\n\
             \r\n\
             That solved it.\r\n",
            id = email.message_id,
        );
        let message = inbound(answer.as_bytes());
        assert!(
            message.replies_to.contains(&email.message_id),
            "{:?}",
            message.replies_to
        );
        assert_eq!(message.replies_to[0], email.message_id);
        assert_eq!(message.ticket_ref, Some(ticket()));
        // Both references the answer brings back check out with the key.
        let signature = message
            .email
            .as_ref()
            .unwrap()
            .ticket_signature
            .clone()
            .unwrap();
        assert!(key().verify_ticket_signature(&ticket(), &signature));
        assert!(matches!(
            key().check_message_id(&message.replies_to[0]),
            MessageIdCheck::Signed { .. }
        ));
        assert_eq!(
            message.subject.as_deref(),
            Some("Re: Re: Test reply email [#K3F9Q2XA]")
        );
        // The thread's root is still the customer's first mail.
        assert_eq!(
            message.conversation,
            crossdesk_core::Conversation::EmailThread {
                root_message_id: "473FF3B8.9020707@xxx.org".into()
            }
        );
    }

    #[test]
    fn the_ticket_survives_ses_replacing_our_message_id_and_lost_headers() {
        let answering = inbound(&fixture("outlook-quoted-reply.eml"));
        let reply = reply_to(&answering, "Done.");
        let email = build(&settings(), &reply, &answering).unwrap();
        let ours = parsed(&email);
        let reply_to = ours
            .reply_to()
            .and_then(|a| a.first())
            .and_then(|a| a.address.clone())
            .unwrap();
        // SES sent it as <ses-id>@eu-west-1.amazonses.com and the customer's client kept no
        // References: only the Reply-To plus-address leads back.
        let answer = format!(
            "From: jordan.lefevre@client.example\r\n\
             To: {reply_to}\r\n\
             Subject: thanks\r\n\
             Message-ID: <answer-2@client.example>\r\n\
             In-Reply-To: <0102018c5e1a2b3c-00000000-0000-0000-0000-000000000000-000000@eu-west-1.amazonses.com>\r\n\
             \r\n\
             Thanks!\r\n"
        );
        let message = inbound(answer.as_bytes());
        assert_eq!(message.ticket_ref, Some(ticket()));
        let signature = message.email.as_ref().unwrap().ticket_signature.clone();
        assert!(key().verify_ticket_signature(&ticket(), &signature.unwrap()));

        // Written to the bare support address: the subject tag still names the ticket, unsigned
        // (a hint for the ticket writer, not proof).
        let answer = format!(
            "From: jordan.lefevre@client.example\r\n\
             To: support@sample.example\r\n\
             Subject: Re: {}\r\n\
             \r\n\
             Thanks!\r\n",
            ours.subject().unwrap()
        );
        let message = inbound(answer.as_bytes());
        assert_eq!(message.ticket_ref, Some(ticket()));
        assert_eq!(message.email.unwrap().ticket_signature, None);
    }

    #[test]
    fn subject_does_not_pile_up_prefixes_or_ticket_tags() {
        let t = ticket();
        assert_eq!(subject(Some("Invoice"), &t), "Re: Invoice [#K3F9Q2XA]");
        assert_eq!(
            subject(Some("Re: AW: Invoice"), &t),
            "Re: Invoice [#K3F9Q2XA]"
        );
        assert_eq!(
            subject(Some("RE: [#K3F9Q2XA] Invoice"), &t),
            "Re: Invoice [#K3F9Q2XA]"
        );
        assert_eq!(
            subject(Some("Re: Invoice [#K3F9Q2XA]"), &t),
            "Re: Invoice [#K3F9Q2XA]"
        );
        assert_eq!(
            subject(Some("Re: Re: Invoice [#k3f9q2xa]"), &t),
            "Re: Invoice [#K3F9Q2XA]"
        );
        // Another ticket's tag is the customer's text.
        assert_eq!(
            subject(Some("Invoice [#ABCDEFGH]"), &t),
            "Re: Invoice [#ABCDEFGH] [#K3F9Q2XA]"
        );
        assert_eq!(
            subject(Some("Rechnung: falsch"), &t),
            "Re: Rechnung: falsch [#K3F9Q2XA]"
        );
        assert_eq!(subject(Some("  "), &t), "Re: [#K3F9Q2XA]");
        assert_eq!(subject(None, &t), "Re: [#K3F9Q2XA]");
    }

    #[test]
    fn references_keep_the_root_and_the_newest_ids() {
        let mut answering = inbound(&fixture("outlook-quoted-reply.eml"));
        let details = answering.email.as_mut().unwrap();
        details.references = (0..30).map(|i| format!("ref-{i}@mail.example")).collect();
        let reply = reply_to(&answering, "ok");
        let email = build(&settings(), &reply, &answering).unwrap();
        let refs = ids(parsed(&email).references());
        assert_eq!(refs.len(), MAX_REFERENCES);
        assert_eq!(refs[0], "ref-0@mail.example");
        assert_eq!(refs[1], "ref-12@mail.example");
        assert_eq!(refs[18], "ref-29@mail.example");
        assert_eq!(refs[19], OUTLOOK_ID);
    }

    #[test]
    fn unwritable_or_synthesized_ids_are_left_out() {
        let mut answering = inbound(&fixture("outlook-quoted-reply.eml"));
        let details = answering.email.as_mut().unwrap();
        details.references = vec![
            "good@mail.example".into(),
            "bad id@mail.example".into(),
            "evil>\r\nBcc: x@evil.example".into(),
            "good@mail.example".into(),
        ];
        let email = build(&settings(), &reply_to(&answering, "ok"), &answering).unwrap();
        assert_eq!(
            ids(parsed(&email).references()),
            vec!["good@mail.example".to_string(), OUTLOOK_ID.to_string()]
        );

        // A mail without Message-ID got a synthesized one: nothing to reply to.
        let answering = inbound(&fixture("charset-iso-2022-jp.eml"));
        assert!(answering
            .platform_message_id
            .as_deref()
            .unwrap()
            .ends_with("@crossdesk.invalid"));
        let email = build(&settings(), &reply_to(&answering, "ok"), &answering).unwrap();
        let mail = parsed(&email);
        assert!(mail.header(HeaderName::InReplyTo).is_none());
        assert!(mail.header(HeaderName::References).is_none());
        assert!(!String::from_utf8_lossy(&email.mime).contains("crossdesk.invalid"));
    }

    #[test]
    fn line_breaks_in_subject_and_names_cannot_add_headers() {
        let mut answering = inbound(&fixture("outlook-quoted-reply.eml"));
        answering.subject = Some("Invoice\r\nBcc: victim@evil.example\r\n\r\nInjected body".into());
        answering.author.name = Some("Jordan\r\nCc: other@evil.example".into());
        let settings = EmailReplySettings {
            display_name: Some("Sample\nX-Injected: yes".into()),
            ..settings()
        };
        let email = build(&settings, &reply_to(&answering, "ok"), &answering).unwrap();
        let raw = String::from_utf8_lossy(&email.mime).to_string();
        for line in raw.lines() {
            let lower = line.to_ascii_lowercase();
            assert!(
                !lower.starts_with("bcc:")
                    && !lower.starts_with("cc:")
                    && !lower.starts_with("x-injected:"),
                "{line:?} in\n{raw}"
            );
        }
        let mail = parsed(&email);
        let names = header_names(&mail);
        for name in ["bcc", "cc", "x-injected"] {
            assert!(!names.contains(&name.to_string()), "{names:?}");
        }
        assert_eq!(
            mail.subject(),
            Some("Re: Invoice Bcc: victim@evil.example Injected body [#K3F9Q2XA]")
        );
        let to = mail.to().and_then(|a| a.first()).unwrap();
        assert_eq!(to.name.as_deref(), Some("Jordan Cc: other@evil.example"));
        assert_eq!(to.address.as_deref(), Some("jordan.lefevre@client.example"));
        assert_eq!(mail.to().unwrap().iter().count(), 1);
        let from = mail.from().and_then(|a| a.first()).unwrap();
        assert_eq!(from.name.as_deref(), Some("Sample X-Injected: yes"));
        assert_eq!(mail.body_text(0).unwrap().trim(), "ok");
    }

    #[test]
    fn html_part_escapes_the_text() {
        let answering = inbound(&fixture("outlook-quoted-reply.eml"));
        let text = "<script>alert('x')</script> & \"quoted\"\r\nnext line ☃";
        let email = build(&settings(), &reply_to(&answering, text), &answering).unwrap();
        let mail = parsed(&email);
        let html = mail.body_html(0).unwrap().replace("\r\n", "\n");
        assert!(
            html.contains(
                "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quoted&quot;<br>\nnext line ☃"
            ),
            "{html}"
        );
        assert!(!html.contains("<script>"));
        assert_eq!(
            mail.body_text(0).unwrap().replace("\r\n", "\n"),
            "<script>alert('x')</script> & \"quoted\"\nnext line ☃"
        );
    }

    #[test]
    fn non_ascii_subject_and_names_round_trip() {
        let mut answering = inbound(&fixture("outlook-quoted-reply.eml"));
        answering.subject = Some("Réf: Commande n° 42 — 🚚 livraison".into());
        let settings = EmailReplySettings {
            display_name: Some("Équipe Support".into()),
            ..settings()
        };
        let email = build(&settings, &reply_to(&answering, "Merci !"), &answering).unwrap();
        assert!(email.mime.is_ascii(), "headers and body are encoded");
        let mail = parsed(&email);
        assert_eq!(
            mail.subject(),
            Some("Re: Réf: Commande n° 42 — 🚚 livraison [#K3F9Q2XA]")
        );
        let from = mail.from().and_then(|a| a.first()).unwrap();
        assert_eq!(from.name.as_deref(), Some("Équipe Support"));
        assert_eq!(mail.body_text(0).unwrap().trim(), "Merci !");
    }

    #[test]
    fn refuses_what_cannot_be_sent_as_email() {
        let mut answering = inbound(&fixture("outlook-quoted-reply.eml"));
        let reply = reply_to(&answering, "ok");
        answering.author.email = None;
        let error = build(&settings(), &reply, &answering).unwrap_err();
        assert_eq!(error.code(), "no_email_address");
        assert!(!error.is_retryable());

        let answering = inbound(&fixture("outlook-quoted-reply.eml"));
        let mut chat = reply_to(&answering, "ok");
        chat.channel = ChannelKind::Chat;
        assert_eq!(
            build(&settings(), &chat, &answering).unwrap_err().code(),
            "wrong_channel"
        );
        let blank = reply_to(&answering, " \n ");
        assert_eq!(
            build(&settings(), &blank, &answering).unwrap_err().code(),
            "empty_text"
        );
    }

    #[test]
    fn a_plus_address_support_mailbox_keeps_working() {
        let settings = EmailReplySettings {
            support_address: EmailAddress::parse("help+desk@sample.example").unwrap(),
            display_name: None,
            thread_key: key(),
        };
        let signature = key().ticket_signature(&ticket());
        let plus = format!("help+desk+K3F9Q2XA.{signature}@sample.example");
        assert_eq!(
            reply_to_address(&settings.support_address, &ticket(), &key()),
            plus
        );
        // The local part stays within RFC 5321's 64 characters for support local parts of up
        // to 28 characters.
        assert!(plus.split('@').next().unwrap().len() <= 64);
        let answering = inbound(&fixture("outlook-quoted-reply.eml"));
        let email = build(&settings, &reply_to(&answering, "ok"), &answering).unwrap();
        let mail = parsed(&email);
        let from = mail.from().and_then(|a| a.first()).unwrap();
        assert_eq!(from.name, None);
        assert_eq!(from.address.as_deref(), Some("help+desk@sample.example"));
        let answer = format!(
            "From: jordan.lefevre@client.example\r\nTo: {plus}\r\nSubject: hi\r\n\r\nhi\r\n"
        );
        let message = inbound(answer.as_bytes());
        assert_eq!(message.ticket_ref, Some(ticket()));
        assert_eq!(message.email.unwrap().ticket_signature, Some(signature));
    }
}
