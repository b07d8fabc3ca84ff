//! Email: raw RFC 5322 messages (the bytes SES stores in S3), parsed with `mail-parser`.
//!
//! One mail becomes one private inbound [`Message`]:
//! - the author is the `From` address; recipients are `To` and `Cc`;
//! - threading facts: the Message-ID (synthesized from the bytes when absent), `In-Reply-To` and
//!   `References`; `replies_to` lists them newest first for the ticket writer, and the
//!   conversation is named after the thread's root (the first `References` id);
//! - a ticket the mail names itself: `support+<ticket>@…` (or `+<ticket>.<signature>@…`, the
//!   signature kept for the ticket writer to check) in `To`/`Cc`/`Delivered-To`, else
//!   `[#<ticket>]` in the subject;
//! - whether a machine sent it (`email.auto_submitted`): `Auto-Submitted` other than `no`,
//!   `X-Autoreply`, `X-Autorespond`, `Precedence: bulk|junk|list`, a `multipart/report`
//!   (delivery status or read notification), an empty `Return-Path` or a `MAILER-DAEMON`
//!   sender; a bounce's attached original headers add the bounced mail's Message-ID to
//!   `replies_to`, so the bounce can find the ticket of the mail it reports on;
//! - the text/plain body (or a rendering of the HTML body), split into the new text and the
//!   quoted history ([`quote`]);
//! - attachments as references into the archived raw mail, never inlined.
//!
//! SES signs nothing, so over HTTP (the local stack) the channel requires the ingest token as
//! `Authorization: Bearer <token>`; in AWS the SES Lambda calls [`EmailChannel::parse_mime`].

mod html;
mod quote;

use std::borrow::Cow;
use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};
use crossdesk_core::{
    Attachment, AttachmentKind, Author, ChannelKind, Conversation, ConversationKey, Direction,
    EmailAddress, EmailDetails, Message, MessageEvent, MessageId, RawRef, TicketId, Visibility,
};
use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::parsers::MessageStream;
use mail_parser::{
    Address, Encoding, HeaderName, HeaderValue, MessageParser, MessagePart, MimeHeaders, PartType,
};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{Channel, ParseError, VerifiedWebhook, VerifyError, WebhookRequest};

/// The header carrying the ingest token.
pub const AUTHORIZATION_HEADER: &str = "authorization";
/// The largest raw mail accepted over HTTP, in bytes.
pub const MAX_MAIL_BYTES: usize = 25 * 1024 * 1024;
/// The domain of Message-IDs synthesized for mails that have none.
pub const SYNTHETIC_ID_DOMAIN: &str = "crossdesk.invalid";
/// The longest Message-ID kept, in bytes (longer ones are ignored).
const MAX_ID_LEN: usize = 250;
/// The most ids kept from `In-Reply-To` and from `References` (the writer looks each one up).
const MAX_THREAD_IDS: usize = 50;
/// Separates the raw mail's reference from the attachment's index in an `object_ref`.
const ATTACHMENT_FRAGMENT: &str = "#attachment=";

// ---- channel ----

/// The email channel. Over HTTP (the local stack) it requires a bearer token, since it stands in
/// for SES, which signs nothing.
pub struct EmailChannel {
    ingest_token: SecretString,
}

impl EmailChannel {
    /// A channel accepting raw mail from callers holding `ingest_token`.
    pub fn new(ingest_token: SecretString) -> Self {
        EmailChannel { ingest_token }
    }

    /// Parses one raw RFC 5322 message (as SES stores it in S3) into exactly one message.
    pub fn parse_mime(raw: &[u8], received_at: DateTime<Utc>) -> Result<Vec<Message>, ParseError> {
        let mail = MessageParser::default()
            .parse(raw)
            .ok_or_else(|| ParseError::Mime("no header section".into()))?;
        let author = author(&mail)?;
        let raw_ref = RawRef::of(raw);

        let message_id = mail
            .message_id()
            .and_then(clean_id)
            .unwrap_or_else(|| synthetic_message_id(raw));
        let in_reply_to = ids(&mail, HeaderName::InReplyTo);
        let references = ids(&mail, HeaderName::References);
        let root_message_id = references
            .first()
            .or(in_reply_to.first())
            .unwrap_or(&message_id)
            .clone();
        let mut replies_to: Vec<String> = Vec::new();
        for id in in_reply_to.iter().chain(references.iter().rev()) {
            if !replies_to.contains(id) {
                replies_to.push(id.clone());
            }
        }

        let subject = mail.subject().map(one_line).filter(|s| !s.is_empty());
        let to = recipients(&mail);
        let (ticket_ref, ticket_signature) = match plus_address_ticket(&mail, &author) {
            Some((ticket, signature)) => (Some(ticket), signature),
            None => (subject.as_deref().and_then(subject_ticket), None),
        };
        let auto_submitted = is_auto_submitted(&mail, &author);
        if is_report(&mail) {
            for id in reported_message_ids(&mail) {
                if !replies_to.contains(&id) && replies_to.len() < MAX_THREAD_IDS * 2 {
                    replies_to.push(id);
                }
            }
        }

        let (body, html_only) = body_text(&mail, raw);
        let split = quote::split_quoted(&body);

        Ok(vec![Message {
            id: MessageId::generate(),
            channel: ChannelKind::Email,
            platform_message_id: Some(message_id.clone()),
            conversation: Conversation::EmailThread { root_message_id },
            direction: Direction::Inbound,
            event: MessageEvent::Created,
            author,
            text: split.text,
            attachments: attachments(&mail, raw, &raw_ref),
            visibility: Visibility::Private,
            sent_at: mail.date().and_then(to_utc).unwrap_or(received_at),
            received_at,
            replies_to,
            ticket_ref,
            subject,
            email: Some(EmailDetails {
                message_id,
                in_reply_to,
                references,
                to,
                quoted_text: split.quoted,
                html_only,
                auto_submitted,
                ticket_signature,
            }),
            raw: Some(raw_ref),
            signature_unverified: false,
            personal_data: Vec::new(),
            internal_note: false,
            monitoring: false,
            delivery: None,
        }])
    }

    /// The decoded bytes of the attachment an `object_ref` index points at, read from the raw
    /// mail the reference names.
    pub fn attachment_contents(raw: &[u8], index: usize) -> Option<Vec<u8>> {
        let mail = MessageParser::default().parse(raw)?;
        let part = mail.attachment(u32::try_from(index).ok()?)?;
        Some(part_bytes(raw, part).into_owned())
    }

    /// Splits an attachment's `object_ref` (`<raw ref>#attachment=<index>`) into the raw
    /// mail's reference and the attachment's index.
    pub fn split_attachment_ref(object_ref: &str) -> Option<(RawRef, usize)> {
        let (raw, index) = object_ref.rsplit_once(ATTACHMENT_FRAGMENT)?;
        Some((RawRef(raw.to_string()), index.parse().ok()?))
    }
}

impl Channel for EmailChannel {
    fn name(&self) -> &'static str {
        "email"
    }

    fn kinds(&self) -> &'static [ChannelKind] {
        &[ChannelKind::Email]
    }

    fn verify<'a>(
        &self,
        request: &WebhookRequest<'a>,
        _now: DateTime<Utc>,
    ) -> Result<VerifiedWebhook<'a>, VerifyError> {
        let header = request
            .headers
            .get(AUTHORIZATION_HEADER)
            .ok_or(VerifyError::MissingHeader("Authorization"))?;
        let token = header
            .trim()
            .split_once(char::is_whitespace)
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty())
            .ok_or_else(|| VerifyError::MalformedHeader {
                header: "Authorization",
                reason: "expected `Bearer <token>`".into(),
            })?;
        // Hash both sides so the comparison takes the same time whatever the lengths.
        let given = Sha256::digest(token.as_bytes());
        let expected = Sha256::digest(self.ingest_token.expose_secret().as_bytes());
        if bool::from(given.as_slice().ct_eq(expected.as_slice())) {
            Ok(VerifiedWebhook::new(request.body))
        } else {
            Err(VerifyError::BadSignature)
        }
    }

    fn parse(
        &self,
        webhook: &VerifiedWebhook<'_>,
        received_at: DateTime<Utc>,
    ) -> Result<Vec<Message>, ParseError> {
        Self::parse_mime(webhook.body(), received_at)
    }

    fn max_body_bytes(&self) -> usize {
        MAX_MAIL_BYTES
    }
}

// ---- headers ----

/// The first `From` address that is a valid address, with its decoded display name.
fn author(mail: &mail_parser::Message<'_>) -> Result<Author, ParseError> {
    let (name, email) = mail
        .header_values(HeaderName::From)
        .filter_map(HeaderValue::as_address)
        .flat_map(Address::iter)
        .find_map(|addr| {
            let email = EmailAddress::parse(addr.address.as_deref()?).ok()?;
            Some((addr.name.as_deref(), email))
        })
        .ok_or_else(|| ParseError::Mime("no From address".into()))?;
    let name = name
        .map(|n| one_line(n).trim_matches('"').trim().to_string())
        .filter(|n| !n.is_empty() && !n.eq_ignore_ascii_case(email.as_str()));
    Ok(Author {
        platform_id: email.as_str().to_string(),
        name,
        email: Some(email),
        handle: None,
    })
}

/// A header's decoded text on one line: an encoded word can decode to line breaks and other
/// control characters (`=?utf-8?q?Hi=0D=0ABcc:…?=`), which must never reach a stored subject or
/// name, nor a header of a reply built from them. Runs of whitespace become one space.
fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `To` and `Cc` addresses that parse, in header order, without repeats.
fn recipients(mail: &mail_parser::Message<'_>) -> Vec<EmailAddress> {
    let mut seen = HashSet::new();
    let mut to = Vec::new();
    for addr in mail
        .header_values(HeaderName::To)
        .chain(mail.header_values(HeaderName::Cc))
        .filter_map(HeaderValue::as_address)
        .flat_map(Address::iter)
    {
        if let Some(email) = addr
            .address
            .as_deref()
            .and_then(|a| EmailAddress::parse(a).ok())
        {
            if seen.insert(email.clone()) {
                to.push(email);
            }
        }
    }
    to
}

/// A Message-ID without angle brackets; `None` for one that is empty, has spaces or cannot name
/// a conversation.
fn clean_id(id: &str) -> Option<String> {
    let id = id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    let valid = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && !id
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>'))
        && ConversationKey::new("email:thread", &[id]).is_ok();
    valid.then(|| id.to_string())
}

/// The ids of every `In-Reply-To` or `References` header, in header order, without repeats,
/// trimmed as mail clients trim `References`: the first (the thread's root) and the newest
/// ones, [`MAX_THREAD_IDS`] in all.
fn ids(mail: &mail_parser::Message<'_>, header: HeaderName<'static>) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut ids: Vec<String> = Vec::new();
    for value in mail.header_values(header) {
        let found: Vec<&str> = match value {
            HeaderValue::Text(id) => vec![id.as_ref()],
            HeaderValue::TextList(list) => list.iter().map(|id| id.as_ref()).collect(),
            _ => Vec::new(),
        };
        for id in found.into_iter().filter_map(clean_id) {
            if seen.insert(id.clone()) {
                ids.push(id);
            }
        }
    }
    if ids.len() > MAX_THREAD_IDS {
        ids.drain(1..ids.len() - (MAX_THREAD_IDS - 1));
    }
    ids
}

/// `sha256-<first 32 hex digits of SHA-256(raw)>@crossdesk.invalid`: the same bytes always get
/// the same id, so a mail delivered twice is still recognized.
fn synthetic_message_id(raw: &[u8]) -> String {
    let digest = hex::encode(Sha256::digest(raw));
    format!("sha256-{}@{SYNTHETIC_ID_DOMAIN}", &digest[..32])
}

/// The `Date` header in UTC, when it is a real date.
fn to_utc(date: &mail_parser::DateTime) -> Option<DateTime<Utc>> {
    let local = NaiveDate::from_ymd_opt(date.year.into(), date.month.into(), date.day.into())?
        .and_hms_opt(date.hour.into(), date.minute.into(), date.second.into())?;
    if date.tz_hour > 23 || date.tz_minute > 59 {
        return None;
    }
    let offset = i64::from(date.tz_hour) * 3600 + i64::from(date.tz_minute) * 60;
    let offset = if date.tz_before_gmt { -offset } else { offset };
    let utc = local.and_utc() - chrono::Duration::seconds(offset);
    Some(utc)
}

// ---- ticket references ----

/// A ticket id in a plus-address (`<anything>+<ticket>@…` or `+<ticket>.<signature>@…`) among
/// the mail's recipients: `Delivered-To` (the envelope recipient) first, then `To` and `Cc`;
/// with the signature, where present (not checked here: the ticket writer has the key).
fn plus_address_ticket(
    mail: &mail_parser::Message<'_>,
    author: &Author,
) -> Option<(TicketId, Option<String>)> {
    let delivered_to = mail
        .header_values(HeaderName::DeliveredTo)
        .filter_map(|v| match v {
            HeaderValue::Text(t) => Some(t.trim().trim_matches(['<', '>']).to_string()),
            HeaderValue::Address(a) => a.first()?.address.as_deref().map(str::to_string),
            _ => None,
        });
    let listed = mail
        .header_values(HeaderName::To)
        .chain(mail.header_values(HeaderName::Cc))
        .filter_map(HeaderValue::as_address)
        .flat_map(Address::iter)
        .filter_map(|a| a.address.as_deref().map(str::to_string));
    delivered_to
        .chain(listed)
        .filter_map(|a| EmailAddress::parse(&a).ok())
        .filter(|a| Some(a) != author.email.as_ref())
        .find_map(|a| ticket_in_plus_address(&a))
}

fn ticket_in_plus_address(address: &EmailAddress) -> Option<(TicketId, Option<String>)> {
    let (_, tag) = address.local_part().rsplit_once('+')?;
    let (id, signature) = match tag.split_once('.') {
        Some((id, signature)) => (id, Some(signature.to_string()).filter(|s| !s.is_empty())),
        None => (tag, None),
    };
    Some((TicketId::parse(id).ok()?, signature))
}

/// The first valid `[#<ticket>]` in a subject.
fn subject_ticket(subject: &str) -> Option<TicketId> {
    subject.match_indices("[#").find_map(|(at, _)| {
        let rest = &subject[at + 2..];
        let (id, _) = rest.split_once(']')?;
        TicketId::parse(id).ok()
    })
}

// ---- automatic mail ----

/// The raw value of the first header named `name` (case-insensitive), trimmed.
fn raw_header<'m>(mail: &'m mail_parser::Message<'_>, name: &str) -> Option<&'m str> {
    mail.headers_raw()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.trim())
}

/// A header's value without parameters or comments, lower-cased: `auto-replied` of
/// `Auto-Replied; owner-email="a@b"`.
fn header_token(value: &str) -> String {
    value
        .split([';', '(', ' ', '\t', '\r', '\n'])
        .find(|t| !t.is_empty())
        .unwrap_or_default()
        .trim_matches('"')
        .to_ascii_lowercase()
}

/// Whether a machine sent the mail (RFC 3834 and the headers auto-responders, list servers and
/// mailer daemons use): it must never reopen a ticket or be answered.
fn is_auto_submitted(mail: &mail_parser::Message<'_>, author: &Author) -> bool {
    let auto_submitted = raw_header(mail, "Auto-Submitted")
        .map(header_token)
        .is_some_and(|v| !v.is_empty() && v != "no");
    let autoreply = ["X-Autoreply", "X-Autorespond"]
        .iter()
        .filter_map(|name| raw_header(mail, name))
        .map(header_token)
        .any(|v| v != "no");
    let bulk = raw_header(mail, "Precedence")
        .map(header_token)
        .is_some_and(|v| matches!(v.as_str(), "bulk" | "junk" | "list"));
    // `Return-Path: <>`: the null reverse path of bounces and other notifications.
    let null_sender = raw_header(mail, "Return-Path").is_some_and(|v| {
        let v: String = v.chars().filter(|c| !c.is_whitespace()).collect();
        v.is_empty() || v == "<>"
    });
    let daemon = author
        .email
        .as_ref()
        .is_some_and(|a| a.local_part().eq_ignore_ascii_case("mailer-daemon"));
    auto_submitted || autoreply || bulk || is_report(mail) || null_sender || daemon
}

/// Whether the mail is a `multipart/report` (a delivery status or disposition notification).
fn is_report(mail: &mail_parser::Message<'_>) -> bool {
    mail.root_part().content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|sub| sub.eq_ignore_ascii_case("report"))
    })
}

/// The Message-IDs of the mails a report is about: from its attached original message
/// (`message/rfc822`) or original headers (`text/rfc822-headers`).
fn reported_message_ids(mail: &mail_parser::Message<'_>) -> Vec<String> {
    let mut ids = Vec::new();
    for part in mail.parts.iter().skip(1) {
        let kind = part
            .content_type()
            .map(|ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default()))
            .unwrap_or_default()
            .to_ascii_lowercase();
        let id = match kind.as_str() {
            "message/rfc822" | "message/global" => part
                .message()
                .and_then(|inner| inner.message_id())
                .and_then(clean_id),
            "text/rfc822-headers" | "message/rfc822-headers" | "message/global-headers" => part
                .text_contents()
                .and_then(|headers| MessageParser::default().parse_headers(headers.as_bytes()))
                .and_then(|original| original.message_id().and_then(clean_id)),
            _ => None,
        };
        if let Some(id) = id.filter(|id| !ids.contains(id)) {
            ids.push(id);
        }
    }
    ids
}

// ---- body ----

/// The plain text of the mail and whether it was rendered from HTML: the text/plain body
/// parts, or, when they are missing or blank, a rendering of the HTML ones.
fn body_text(mail: &mail_parser::Message<'_>, raw: &[u8]) -> (String, bool) {
    let plain: Vec<String> = mail
        .text_bodies()
        .filter(|p| matches!(p.body, PartType::Text(_)))
        .map(|p| part_text(raw, p))
        .collect();
    let plain = plain.join("\n");
    if !plain.trim().is_empty() {
        return (plain, false);
    }
    let rendered: Vec<String> = mail
        .html_bodies()
        .filter(|p| matches!(p.body, PartType::Html(_)))
        .map(|p| html::html_to_text(&part_text(raw, p)))
        .collect();
    let rendered = rendered.join("\n");
    if rendered.trim().is_empty() {
        (plain, false)
    } else {
        (rendered, true)
    }
}

/// A text part's content as text. `mail-parser` decodes the declared charset; a part that
/// declares none (or one it does not know) and is not valid UTF-8 is read as Windows-1252,
/// which is what such mailers almost always meant.
fn part_text(raw: &[u8], part: &MessagePart<'_>) -> String {
    let decoded = part.text_contents().unwrap_or_default();
    let known_charset = part
        .content_type()
        .and_then(|ct| ct.attribute("charset"))
        .and_then(|c| charset_decoder(c.as_bytes()))
        .is_some();
    if known_charset || !decoded.contains('\u{fffd}') {
        return decoded.to_string();
    }
    let bytes = part_bytes(raw, part);
    match (
        std::str::from_utf8(&bytes),
        charset_decoder(b"windows-1252"),
    ) {
        (Err(_), Some(cp1252)) => cp1252(&bytes),
        _ => decoded.to_string(),
    }
}

/// A part's content with the transfer encoding undone but no charset conversion: the bytes of
/// the file as its sender attached it.
fn part_bytes<'a>(raw: &'a [u8], part: &'a MessagePart<'a>) -> Cow<'a, [u8]> {
    if !matches!(part.body, PartType::Text(_) | PartType::Html(_)) {
        return Cow::Borrowed(part.contents());
    }
    // Text parts hold the converted text; decode the raw body again.
    let Some(body) = raw.get(part.offset_body as usize..part.offset_end as usize) else {
        return Cow::Borrowed(part.contents());
    };
    let mut stream = MessageStream::new(body);
    let (end, bytes) = match part.encoding {
        Encoding::Base64 => stream.decode_base64_mime(b""),
        Encoding::QuotedPrintable => stream.decode_quoted_printable_mime(b""),
        Encoding::None => return Cow::Borrowed(body),
    };
    if end == usize::MAX {
        Cow::Borrowed(body)
    } else {
        bytes
    }
}

// ---- attachments ----

/// The mail's attachments: parts sent as attachments, named files (inline ones included) and
/// attached messages. Inline parts without a file name (signature images, alternative bodies)
/// are left out. Each points into the archived raw mail by its `mail-parser` attachment index.
fn attachments(mail: &mail_parser::Message<'_>, raw: &[u8], raw_ref: &RawRef) -> Vec<Attachment> {
    mail.attachments()
        .enumerate()
        .filter(|(_, part)| is_attachment(part))
        .map(|(index, part)| {
            let content_type = content_type(part);
            Attachment {
                kind: attachment_kind(&content_type),
                url: None,
                object_ref: Some(format!("{}{ATTACHMENT_FRAGMENT}{index}", raw_ref.0)),
                name: part
                    .attachment_name()
                    .map(|n| n.trim().to_string())
                    .filter(|n| !n.is_empty()),
                size: Some(part_bytes(raw, part).len() as u64),
                content_type: Some(content_type),
                sha256: None,
                fetch_error: None,
            }
        })
        .collect()
}

fn is_attachment(part: &MessagePart<'_>) -> bool {
    let disposition = part.content_disposition();
    let sent_as_attachment = disposition.is_some_and(|d| d.is_attachment());
    let named = part.attachment_name().is_some_and(|n| !n.trim().is_empty());
    // Inline: marked so, or referenced from an HTML body by Content-ID.
    let inline = disposition.is_some_and(|d| d.is_inline())
        || (disposition.is_none() && part.content_id().is_some());
    match part.body {
        PartType::Multipart(_) => false,
        PartType::Text(_) | PartType::Html(_) => sent_as_attachment || named,
        PartType::Binary(_) | PartType::InlineBinary(_) | PartType::Message(_) => {
            sent_as_attachment || named || !inline
        }
    }
}

/// The part's `type/subtype`, lower-cased.
fn content_type(part: &MessagePart<'_>) -> String {
    match part.content_type() {
        Some(ct) => match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub),
            None => ct.ctype().to_string(),
        }
        .to_ascii_lowercase(),
        None if part.is_message() => "message/rfc822".into(),
        None if part.is_text() => "text/plain".into(),
        None => "application/octet-stream".into(),
    }
}

fn attachment_kind(content_type: &str) -> AttachmentKind {
    match content_type.split('/').next() {
        Some("image") => AttachmentKind::Image,
        Some("video") => AttachmentKind::Video,
        Some("audio") => AttachmentKind::Audio,
        _ => AttachmentKind::File,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Headers;

    const TOKEN: &str = "ingest-test-token";

    /// The bytes of a sample event in `events/email/`.
    macro_rules! event {
        ($name:literal) => {
            std::fs::read(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../events/email/",
                $name
            ))
            .unwrap()
        };
    }

    fn channel() -> EmailChannel {
        EmailChannel::new(SecretString::from(TOKEN))
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z")
            .unwrap()
            .to_utc()
    }

    fn parse(raw: &[u8]) -> Message {
        let mut messages = EmailChannel::parse_mime(raw, now()).unwrap();
        assert_eq!(messages.len(), 1);
        messages.remove(0)
    }

    fn details(m: &Message) -> &EmailDetails {
        m.email.as_ref().unwrap()
    }

    fn root_key(m: &Message) -> String {
        m.conversation
            .key(ChannelKind::Email)
            .unwrap()
            .as_str()
            .to_string()
    }

    fn addresses(list: &[EmailAddress]) -> Vec<&str> {
        list.iter().map(EmailAddress::as_str).collect()
    }

    fn ticket(m: &Message) -> Option<&str> {
        m.ticket_ref.as_ref().map(TicketId::as_str)
    }

    fn time(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    // ---- verify ----

    fn verify(headers: &Headers) -> Result<(), VerifyError> {
        channel()
            .verify(
                &WebhookRequest {
                    headers,
                    body: b"From: a@example.com\r\n\r\nhi",
                },
                now(),
            )
            .map(|_| ())
    }

    #[test]
    fn accepts_the_ingest_token_as_a_bearer_token() {
        for value in [
            format!("Bearer {TOKEN}"),
            format!("bearer {TOKEN}"),
            format!("  Bearer   {TOKEN}  "),
        ] {
            let headers = Headers::new([("Authorization", value.clone())]);
            assert_eq!(verify(&headers), Ok(()), "{value}");
        }
    }

    #[test]
    fn rejects_a_request_without_authorization() {
        assert_eq!(
            verify(&Headers::default()),
            Err(VerifyError::MissingHeader("Authorization"))
        );
    }

    #[test]
    fn rejects_authorization_that_is_not_a_bearer_token() {
        for value in ["Basic aW5nZXN0OnRva2Vu", "Bearer", "Bearer   ", TOKEN, ""] {
            let headers = Headers::new([("Authorization", value)]);
            assert!(
                matches!(verify(&headers), Err(VerifyError::MalformedHeader { .. })),
                "{value:?}"
            );
        }
    }

    #[test]
    fn rejects_a_wrong_token() {
        for token in [
            "wrong",
            "ingest-test-toke",
            "ingest-test-token2",
            "INGEST-TEST-TOKEN",
        ] {
            let headers = Headers::new([("Authorization", format!("Bearer {token}"))]);
            assert_eq!(verify(&headers), Err(VerifyError::BadSignature), "{token}");
        }
    }

    #[test]
    fn describes_itself_as_the_email_channel() {
        let c = channel();
        assert_eq!(c.name(), "email");
        assert_eq!(c.kinds(), &[ChannelKind::Email]);
        assert_eq!(c.max_body_bytes(), 25 * 1024 * 1024);
    }

    #[test]
    fn parses_a_verified_body_like_parse_mime() {
        let raw = event!("plain-and-html.eml");
        let headers = Headers::new([("Authorization", format!("Bearer {TOKEN}"))]);
        let c = channel();
        let verified = c
            .verify(
                &WebhookRequest {
                    headers: &headers,
                    body: &raw,
                },
                now(),
            )
            .unwrap();
        let mut via_channel = c.parse(&verified, now()).unwrap();
        let mut direct = EmailChannel::parse_mime(&raw, now()).unwrap();
        // Only the generated Crossdesk id differs.
        via_channel[0].id = direct[0].id.clone();
        assert_eq!(via_channel, direct.split_off(0));
    }

    // ---- sample events ----

    #[test]
    fn parses_plain_and_html_into_a_private_inbound_message_from_the_text_part() {
        let raw = event!("plain-and-html.eml");
        let m = parse(&raw);
        assert_eq!(m.channel, ChannelKind::Email);
        assert_eq!(m.direction, Direction::Inbound);
        assert_eq!(m.visibility, Visibility::Private);
        assert_eq!(m.event, MessageEvent::Created);
        assert_eq!(m.author.platform_id, "alex@example.com");
        assert_eq!(m.author.name.as_deref(), Some("Alex Example"));
        assert_eq!(
            m.author.email.as_ref().map(EmailAddress::as_str),
            Some("alex@example.com")
        );
        assert_eq!(m.subject.as_deref(), Some("Invoice address wrong"));
        assert_eq!(m.sent_at, time("2026-11-20T10:00:00Z"));
        assert_eq!(m.received_at, now());
        assert_eq!(m.text, "Hi, my invoice shows the wrong address.\n\nAlex");
        assert_eq!(
            m.platform_message_id.as_deref(),
            Some("CAF=sample-0001@mail.example.com")
        );
        let d = details(&m);
        assert_eq!(d.message_id, "CAF=sample-0001@mail.example.com");
        assert!(d.in_reply_to.is_empty() && d.references.is_empty());
        assert!(m.replies_to.is_empty());
        assert_eq!(addresses(&d.to), ["support@sample.example"]);
        assert_eq!(d.quoted_text, None);
        assert!(!d.html_only);
        assert!(!d.auto_submitted);
        assert!(!m.is_automatic());
        assert_eq!(d.ticket_signature, None);
        assert!(m.attachments.is_empty());
        assert_eq!(m.ticket_ref, None);
        assert_eq!(
            root_key(&m),
            "email:thread:CAF=sample-0001@mail.example.com"
        );
        assert_eq!(m.raw, Some(RawRef::of(&raw)));
        assert_eq!(m.delivery, None);
    }

    #[test]
    fn threads_reply_by_references_header() {
        let m = parse(&event!("reply-threaded.eml"));
        let d = details(&m);
        assert_eq!(d.message_id, "CAF=sample-0002@mail.example.com");
        assert_eq!(d.in_reply_to, ["ticket-T8K2QW.1@sample.example"]);
        assert_eq!(
            d.references,
            [
                "CAF=sample-0001@mail.example.com",
                "ticket-T8K2QW.1@sample.example"
            ]
        );
        assert_eq!(
            m.replies_to,
            [
                "ticket-T8K2QW.1@sample.example",
                "CAF=sample-0001@mail.example.com"
            ]
        );
        assert_eq!(
            root_key(&m),
            "email:thread:CAF=sample-0001@mail.example.com"
        );
        assert_eq!(m.text, "Thanks, that worked.");
        assert_eq!(
            d.quoted_text.as_deref(),
            Some("On Fri, 20 Nov 2026 at 11:00, Sample Support wrote:\n> We have corrected the address.")
        );
        assert_eq!(
            m.subject.as_deref(),
            Some("Re: [#T8K2QW] Invoice address wrong")
        );
        assert_eq!(addresses(&d.to), ["support+t8k2qw@sample.example"]);
        // `T8K2QW` is not an 8-character ticket id: ignored in the address and the subject.
        assert_eq!(m.ticket_ref, None);
    }

    #[test]
    fn threads_thunderbird_reply_under_the_first_reference() {
        let m = parse(&event!("reply-thunderbird.eml"));
        assert_eq!(m.author.name.as_deref(), Some("Testing"));
        assert_eq!(m.text, "Message body");
        assert_eq!(
            m.replies_to,
            [
                "348F04F142D69C21-291E56D292BC@xxxx.net",
                "473FF3B8.9020707@xxx.org"
            ]
        );
        assert_eq!(root_key(&m), "email:thread:473FF3B8.9020707@xxx.org");
        assert_eq!(m.sent_at, time("2007-11-18T08:56:07Z"));
    }

    #[test]
    fn keeps_a_pdf_attachment_as_a_reference_into_the_raw_mail() {
        let raw = event!("multipart-attachment.eml");
        let m = parse(&raw);
        assert_eq!(
            m.subject.as_deref(),
            Some("Another PDF with 🎉 Unicode chars in it 🍿")
        );
        assert_eq!(m.author.name.as_deref(), Some("Test Tester"));
        assert_eq!(m.author.platform_id, "xxxx@xxxx.com");
        assert_eq!(
            m.text,
            "Just attaching another PDF, here, to see what the message looks like,\nand to see if I can figure out what is going wrong here."
        );
        assert_eq!(m.sent_at, time("2005-05-10T17:26:39Z"));
        assert_eq!(addresses(&details(&m).to), ["xxxx@xxxx.com"]);
        let object_ref = format!("{}#attachment=0", RawRef::of(&raw).0);
        assert_eq!(
            m.attachments,
            [Attachment {
                kind: AttachmentKind::File,
                url: None,
                object_ref: Some(object_ref.clone()),
                name: Some("broken.pdf".into()),
                size: Some(1026),
                content_type: Some("application/pdf".into()),
                sha256: None,
                fetch_error: None,
            }]
        );
        let (raw_ref, index) = EmailChannel::split_attachment_ref(&object_ref).unwrap();
        assert_eq!(raw_ref, RawRef::of(&raw));
        let pdf = EmailChannel::attachment_contents(&raw, index).unwrap();
        assert_eq!(pdf.len(), 1026);
        assert!(pdf.starts_with(b"%PDF-1.4"));
    }

    #[test]
    fn decodes_an_iso_2022_jp_body_and_synthesizes_the_missing_message_id() {
        let raw = event!("charset-iso-2022-jp.eml");
        let m = parse(&raw);
        assert_eq!(m.text, "すみません。");
        assert_eq!(m.subject.as_deref(), Some("まみむめも"));
        assert_eq!(m.author.name.as_deref(), Some("Mikel Lindsaar"));
        assert_eq!(m.author.platform_id, "raasdnil@gmail.com");
        // No Date header: the time it was received.
        assert_eq!(m.sent_at, now());
        let expected = format!(
            "sha256-{}@crossdesk.invalid",
            &hex::encode(Sha256::digest(&raw))[..32]
        );
        assert_eq!(details(&m).message_id, expected);
        assert_eq!(m.platform_message_id.as_deref(), Some(expected.as_str()));
        assert_eq!(root_key(&m), format!("email:thread:{expected}"));
    }

    #[test]
    fn decodes_a_shift_jis_body() {
        let m = parse(&event!("charset-shift-jis.eml"));
        assert_eq!(
            m.text,
            "あいうえお\n\nこのメールはテスト用のメールです。\n\n今後ともよろしくお願い申し上げます！"
        );
        assert_eq!(m.author.platform_id, "xxxxxxx@docomo.ne.jp");
        assert_eq!(m.author.name, None);
        assert_eq!(details(&m).message_id, "xxxxx@docomo.ne.jp");
        assert_eq!(m.sent_at, time("2014-05-28T08:18:19Z"));
    }

    #[test]
    fn decodes_a_ks_c_5601_1987_body() {
        let m = parse(&event!("charset-ks-c-5601-1987.eml"));
        assert_eq!(m.text, "스티해");
    }

    #[test]
    fn decodes_windows_1252_in_body_and_subject() {
        let m = parse(&event!("charset-windows-1252.eml"));
        assert_eq!(m.text, "World €");
        assert_eq!(m.subject.as_deref(), Some("Hello €"));
        assert_eq!(m.author.name.as_deref(), Some("James McKinney"));
        assert_eq!(
            details(&m).message_id,
            "E9C4088D-5CB1-4A7D-B4E9-C1A16FD16F3E@opennorth.ca"
        );
        assert_eq!(m.sent_at, time("2013-05-19T02:47:32Z"));
        // `+bar` is not a ticket id.
        assert_eq!(m.ticket_ref, None);
    }

    #[test]
    fn parses_a_mail_that_is_only_an_attachment() {
        let raw = event!("attachment-only.eml");
        let m = parse(&raw);
        assert_eq!(m.text, "");
        assert_eq!(details(&m).quoted_text, None);
        assert_eq!(
            m.subject.as_deref(),
            Some("this message JUST contains an attachment")
        );
        assert_eq!(m.author.name.as_deref(), Some("Ryan Finnie"));
        assert_eq!(m.sent_at, time("2003-10-24T05:40:49Z"));
        assert_eq!(m.attachments.len(), 1);
        let a = &m.attachments[0];
        assert_eq!(a.kind, AttachmentKind::File);
        assert_eq!(a.name.as_deref(), Some("blah.gz"));
        assert_eq!(a.size, Some(288));
        assert_eq!(a.content_type.as_deref(), Some("application/x-gzip"));
        assert_eq!(
            EmailChannel::attachment_contents(&raw, 0).map(|b| b.len()),
            Some(288)
        );
    }

    #[test]
    fn renders_an_html_only_mail_without_markup_style_or_script() {
        let m = parse(&event!("html-only.eml"));
        let d = details(&m);
        assert!(d.html_only);
        assert_eq!(
            m.text,
            "Hello team,\n\nSince this morning I can't log in. The reset page at your reset page (https://app.example.com/reset?user=mina&src=mail) says my link has \"expired\".\n\n- Browser: Firefox 132\n- Account: mina.park@example.org\n\nThanks & regards,\nMina"
        );
        assert_eq!(
            d.quoted_text.as_deref(),
            Some("On Thu, Nov 19, 2026 at 4:12 PM Sample Support <support@sample.example> wrote:\n> Please try resetting your password.")
        );
        assert!(!m.text.contains('<'), "{}", m.text);
        let all = format!("{}\n{}", m.text, d.quoted_text.as_deref().unwrap_or(""));
        for leak in [
            "must-not-leak",
            "margin",
            "Login problem",
            "tracking",
            "p.gif",
            "&nbsp;",
            "&quot;",
            "&#39;",
            "&amp;",
        ] {
            assert!(!all.contains(leak), "{leak} leaked into {all:?}");
        }
        assert_eq!(m.replies_to, ["ticket-K3F9Q2XA.1@sample.example"]);
        assert_eq!(
            root_key(&m),
            "email:thread:ticket-K3F9Q2XA.1@sample.example"
        );
        assert_eq!(m.sent_at, time("2026-11-20T16:30:00Z"));
    }

    #[test]
    fn decodes_an_rfc_2231_attachment_name() {
        let m = parse(&event!("rfc2231-filename.eml"));
        assert_eq!(m.attachments.len(), 1);
        let a = &m.attachments[0];
        // The name is declared ISO-2022-JP but holds a byte that charset cannot have.
        assert_eq!(
            a.name.as_deref(),
            Some("01 Quien Te Dij\u{fffd}at. Pitbull.mp3")
        );
        assert_eq!(a.size, Some(399));
        assert_eq!(a.content_type.as_deref(), Some("application/octet-stream"));
        assert_eq!(a.kind, AttachmentKind::File);
        // A forwarded message is the customer's content, not quoted history.
        assert!(m.text.starts_with("We should not include these files or vcards as attachments.\n\n---------- Forwarded message ----------\nFrom: "));
        assert!(m
            .text
            .ends_with("Test attachments oddly encoded with japanese charset."));
        assert_eq!(details(&m).quoted_text, None);
        assert_eq!(
            details(&m).in_reply_to,
            ["F6E2D0B4-CC35-4A91-BA4C-C7C712B10C13@mac.com"]
        );
        assert_eq!(
            root_key(&m),
            "email:thread:F6E2D0B4-CC35-4A91-BA4C-C7C712B10C13@mac.com"
        );
    }

    #[test]
    fn separates_an_outlook_quoted_reply_and_reads_the_subject_ticket() {
        let m = parse(&event!("outlook-quoted-reply.eml"));
        let d = details(&m);
        assert_eq!(m.author.name.as_deref(), Some("Jordan Lefèvre"));
        assert_eq!(m.author.platform_id, "jordan.lefevre@client.example");
        assert_eq!(
            m.text,
            "Hello,\n\nThe new address is correct now. Merci beaucoup!\n\nBest regards,\nJordan Lefèvre"
        );
        assert_eq!(
            d.quoted_text.as_deref(),
            Some("________________________________\nFrom: Sample Support <support@sample.example>\nSent: Friday, November 20, 2026 11:00 AM\nTo: Jordan Lefèvre <jordan.lefevre@client.example>\nSubject: [#K3F9Q2XA] Invoice address wrong\n\nWe have corrected the address. Could you confirm it is right?")
        );
        assert!(!d.html_only);
        assert_eq!(
            addresses(&d.to),
            ["support@sample.example", "ap@client.example"]
        );
        assert_eq!(ticket(&m), Some("K3F9Q2XA"));
        assert_eq!(m.replies_to, ["ticket-K3F9Q2XA.1@sample.example"]);
        assert_eq!(
            root_key(&m),
            "email:thread:ticket-K3F9Q2XA.1@sample.example"
        );
        assert_eq!(m.sent_at, time("2026-11-20T13:05:12Z"));
    }

    #[test]
    fn names_the_ticket_from_a_plus_address_without_threading_headers() {
        let raw = event!("plus-address-reply.eml");
        let m = parse(&raw);
        let d = details(&m);
        assert_eq!(ticket(&m), Some("K3F9Q2XA"));
        assert!(d.in_reply_to.is_empty() && d.references.is_empty());
        assert!(m.replies_to.is_empty());
        assert_eq!(
            root_key(&m),
            "email:thread:CAH7qX0pLuS=box8fGm2xK4Zt9uVQ3n1aB7cD5eF6gH@mail.gmail.com"
        );
        assert_eq!(m.author.platform_id, "renee.dupont@gmail.com");
        assert_eq!(m.author.name.as_deref(), Some("Renée Dupont"));
        assert_eq!(
            m.text,
            "Here is the photo of the damaged box.\n[image: box.jpg]\n\nRenée"
        );
        assert_eq!(
            d.quoted_text.as_deref(),
            Some("On Fri, Nov 20, 2026 at 11:00 AM Sample Support <\nsupport+k3f9q2xa@sample.example> wrote:\n\n> Could you send us a photo of the package?\n>")
        );
        assert_eq!(m.sent_at, time("2026-11-21T08:15:42Z"));
        // The inline image has a file name: it is an attachment.
        assert_eq!(
            m.attachments,
            [Attachment {
                kind: AttachmentKind::Image,
                url: None,
                object_ref: Some(format!("{}#attachment=0", RawRef::of(&raw).0)),
                name: Some("box.jpg".into()),
                size: Some(134),
                content_type: Some("image/jpeg".into()),
                sha256: None,
                fetch_error: None,
            }]
        );
    }

    #[test]
    fn parses_an_lf_auto_reply_with_rtl_encoded_words() {
        let m = parse(&event!("autoreply-rtl-base64.eml"));
        assert_eq!(m.author.name.as_deref(), Some("متجر سوق نت"));
        assert_eq!(m.subject.as_deref(), Some("أهلين عميلنا الكريم"));
        assert_eq!(
            m.text,
            "أنظروا، أنا أحتاجها فقط لتقوم بالتدقيق في مقالتي الشخصية"
        );
        // The same id twice in In-Reply-To is kept once.
        assert_eq!(
            details(&m).in_reply_to,
            ["4e6e35f5a38b4_479f13bb90078178@small-app-01.mail"]
        );
        assert_eq!(
            m.replies_to,
            ["4e6e35f5a38b4_479f13bb90078178@small-app-01.mail"]
        );
        // `reply+<uuid>@` names no ticket.
        assert_eq!(m.ticket_ref, None);
        assert_eq!(m.sent_at, time("2022-04-03T18:48:20Z"));
        // `Auto-Submitted: auto-replied`, `X-Autoreply: yes`, `Precedence: bulk`.
        assert!(details(&m).auto_submitted);
        assert!(m.is_automatic() && !m.reopens_ticket());
    }

    #[test]
    fn keeps_a_named_text_part_as_an_attachment() {
        let raw = event!("raw-utf8-filename.eml");
        let m = parse(&raw);
        assert_eq!(m.text, "This is the first part.");
        assert_eq!(m.attachments.len(), 1);
        let a = &m.attachments[0];
        assert_eq!(a.name.as_deref(), Some("ciële.txt"));
        assert_eq!(a.size, Some(11));
        assert_eq!(a.content_type.as_deref(), Some("text/plain"));
        assert_eq!(
            EmailChannel::attachment_contents(&raw, 0).as_deref(),
            Some(b"Hi there.\r\n".as_slice())
        );
    }

    #[test]
    fn parses_the_object_ses_stores_in_s3() {
        let m = parse(&event!("ses-s3-object.eml"));
        assert_eq!(m.author.name.as_deref(), Some("Smith, Bob E"));
        assert_eq!(m.author.platform_id, "bob@example.com");
        assert_eq!(addresses(&details(&m).to), ["test@test.example.com"]);
        assert_eq!(m.subject.as_deref(), Some("Test 500"));
        assert_eq!(m.text, "Aaaron");
        assert_eq!(
            details(&m).message_id,
            "1344C740-07D3-476E-BEE7-6EB162294DF6@example.com"
        );
    }

    // ---- crafted mails: hijack attempts, automatic mail, loops ----

    /// The development email thread key of `local.env`, which signed the crafted samples.
    fn dev_thread_key() -> crossdesk_core::mail_signature::EmailThreadKey {
        let env = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../local.env"))
            .unwrap();
        let value = env
            .lines()
            .find_map(|l| l.strip_prefix("CROSSDESK_EMAIL_THREAD_KEY="))
            .expect("local.env sets CROSSDESK_EMAIL_THREAD_KEY");
        crossdesk_core::mail_signature::EmailThreadKey::new(value.trim().as_bytes()).unwrap()
    }

    /// The Crossdesk Message-ID the crafted samples answer, signed with the development key.
    const OUR_ID: &str = "crossdesk.msg_019a4b2c3d4e7f00a1b2c3d4e5f60718.K3F9Q2XA.nc0zb05pn7j9mpzkpm32bnc3dw@sample.example";

    #[test]
    fn a_hijack_attempt_keeps_its_claims_for_the_writer_to_check() {
        use crossdesk_core::mail_signature::MessageIdCheck;
        let m = parse(&event!("hijack-stranger-reply.eml"));
        let d = details(&m);
        assert_eq!(m.author.platform_id, "eve@evil.example");
        assert!(!d.auto_submitted);
        // It names the ticket by plus-address and subject, and references the customer's mail
        // and a made-up Crossdesk Message-ID: all parsed, none trusted here.
        assert_eq!(ticket(&m), Some("K3F9Q2XA"));
        let signature = d.ticket_signature.as_deref().unwrap();
        let key = dev_thread_key();
        let t = TicketId::parse("K3F9Q2XA").unwrap();
        assert!(!key.verify_ticket_signature(&t, signature));
        assert_eq!(m.replies_to.len(), 2);
        assert_eq!(m.replies_to[0], "CAF=sample-0001@mail.example.com");
        assert_eq!(
            key.check_message_id(&m.replies_to[1]),
            MessageIdCheck::Forged { ticket: t }
        );
        // Its own thread key is its root, as for any reply.
        assert_eq!(
            root_key(&m),
            "email:thread:CAF=sample-0001@mail.example.com"
        );
    }

    #[test]
    fn an_out_of_office_reply_is_automatic_and_carries_our_signed_references() {
        use crossdesk_core::mail_signature::MessageIdCheck;
        let m = parse(&event!("auto-reply-out-of-office.eml"));
        let d = details(&m);
        assert!(d.auto_submitted);
        assert!(!m.reopens_ticket());
        assert_eq!(m.author.platform_id, "alex@example.com");
        assert_eq!(m.replies_to[0], OUR_ID);
        let key = dev_thread_key();
        let t = TicketId::parse("K3F9Q2XA").unwrap();
        assert!(
            matches!(key.check_message_id(OUR_ID), MessageIdCheck::Signed { ticket, .. } if ticket == t)
        );
        assert!(key.verify_ticket_signature(&t, d.ticket_signature.as_deref().unwrap()));
        assert_eq!(
            m.text,
            "I am out of the office until Monday, 30 November, with no access to my mail.\n\nAlex"
        );
    }

    #[test]
    fn a_delivery_status_notification_is_automatic_and_names_the_bounced_mail() {
        let m = parse(&event!("bounce-dsn.eml"));
        let d = details(&m);
        assert!(d.auto_submitted);
        assert_eq!(m.author.platform_id, "mailer-daemon@mx.example.com");
        assert_eq!(m.author.name.as_deref(), Some("Mail Delivery System"));
        assert_eq!(
            m.subject.as_deref(),
            Some("Undelivered Mail Returned to Sender")
        );
        // No threading headers: the bounced mail's id comes from its attached headers.
        assert!(d.in_reply_to.is_empty() && d.references.is_empty());
        assert_eq!(m.replies_to, [OUR_ID]);
        assert!(
            m.text
                .starts_with("This is the mail system at host mx.example.com."),
            "{}",
            m.text
        );
        assert!(m.text.contains("550 5.1.1 User unknown"));
        assert!(!m.text.contains("Reply-To:"), "{}", m.text);
        // The machine-readable report is kept as an attachment of the raw mail.
        let kinds: Vec<_> = m
            .attachments
            .iter()
            .filter_map(|a| a.content_type.as_deref())
            .collect();
        assert_eq!(kinds, ["message/delivery-status"]);
        // The Reply-To plus-address in the attached headers names no ticket of the bounce.
        assert_eq!(m.ticket_ref, None);
    }

    #[test]
    fn our_own_reply_coming_back_is_recognizable() {
        use crossdesk_core::mail_signature::MessageIdCheck;
        let m = parse(&event!("loop-own-reply.eml"));
        assert_eq!(m.author.platform_id, "support@sample.example");
        assert_eq!(details(&m).message_id, OUR_ID);
        assert!(matches!(
            dev_thread_key().check_message_id(&details(&m).message_id),
            MessageIdCheck::Signed { .. }
        ));
        // A person wrote it: only the writer's loop check keeps it out.
        assert!(!details(&m).auto_submitted);
    }

    #[test]
    fn a_forward_from_a_copied_participant_references_the_thread() {
        let m = parse(&event!("forward-from-participant.eml"));
        assert_eq!(m.author.platform_id, "ap@client.example");
        assert_eq!(
            m.replies_to,
            [
                "AM0PR07MB6321B5A1C3D4E5F6A7B8C9D0@AM0PR07MB6321.eurprd07.prod.outlook.com",
                "ticket-K3F9Q2XA.1@sample.example"
            ]
        );
        assert_eq!(ticket(&m), Some("K3F9Q2XA"));
        assert_eq!(details(&m).ticket_signature, None);
        assert!(!details(&m).auto_submitted);
    }

    fn headers(extra: &str) -> Message {
        parse(format!("From: a@example.com\r\n{extra}\r\nSubject: x\r\n\r\nHi").as_bytes())
    }

    #[test]
    fn recognizes_each_sign_of_automatic_mail() {
        for automatic in [
            "Auto-Submitted: auto-replied",
            "Auto-Submitted: auto-generated",
            "auto-submitted: Auto-Notified; owner-email=\"x@y.example\"",
            "X-Autoreply: yes",
            "X-Autorespond: Out of office",
            "Precedence: bulk",
            "Precedence: JUNK",
            "Precedence: list",
            "Return-Path: <>",
            "Return-Path: < >",
            "Content-Type: multipart/report; report-type=disposition-notification; boundary=b",
        ] {
            assert!(details(&headers(automatic)).auto_submitted, "{automatic}");
        }
        for human in [
            "Auto-Submitted: no",
            "Auto-Submitted: No (a person)",
            "X-Autoreply: no",
            "Precedence: first-class",
            "Return-Path: <a@example.com>",
            "X-Auto-Response-Suppress: All",
            "Content-Type: multipart/mixed; boundary=b",
        ] {
            assert!(!details(&headers(human)).auto_submitted, "{human}");
        }
        let daemon = parse(b"From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example>\r\n\r\nx");
        assert!(details(&daemon).auto_submitted);
    }

    #[test]
    fn reads_the_bounced_message_id_from_an_attached_message() {
        let raw = b"From: postmaster@mx.example\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nFailed.\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nAction: failed\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: support@sample.example\r\nMessage-ID: <bounced-1@sample.example>\r\n\r\nOriginal\r\n--b--\r\n";
        let m = parse(raw);
        assert!(details(&m).auto_submitted);
        assert_eq!(m.replies_to, ["bounced-1@sample.example"]);
        assert_eq!(m.text, "Failed.");
        // Outside a report, an attached message is the customer's content, not a reference.
        let forwarded = b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: x@example.com\r\nMessage-ID: <inner@example.com>\r\n\r\nInner\r\n--b--\r\n";
        assert!(parse(forwarded).replies_to.is_empty());
    }

    // ---- edge cases ----

    #[test]
    fn rejects_a_mail_without_a_usable_from_address() {
        for raw in [
            "To: support@sample.example\r\nSubject: hi\r\n\r\nHello",
            "From: Alex Example\r\nSubject: hi\r\n\r\nHello",
            "From: undisclosed-recipients:;\r\n\r\nHello",
            "From: <not an address>\r\n\r\nHello",
        ] {
            assert_eq!(
                EmailChannel::parse_mime(raw.as_bytes(), now()),
                Err(ParseError::Mime("no From address".into())),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn synthesizes_the_same_message_id_for_the_same_bytes() {
        let raw = b"From: a@example.com\r\nSubject: no id\r\n\r\nHello";
        let first = parse(raw);
        let again = parse(raw);
        let id = &details(&first).message_id;
        assert_eq!(id, &details(&again).message_id);
        assert!(id.starts_with("sha256-") && id.ends_with("@crossdesk.invalid"));
        assert_eq!(id.len(), "sha256-".len() + 32 + "@crossdesk.invalid".len());
        let other = parse(b"From: a@example.com\r\nSubject: no id\r\n\r\nHello!");
        assert_ne!(id, &details(&other).message_id);
        // An id that is only brackets is no id either.
        let empty = parse(b"From: a@example.com\r\nMessage-ID: <>\r\n\r\nHello");
        assert!(details(&empty).message_id.ends_with("@crossdesk.invalid"));
    }

    #[test]
    fn decoded_line_breaks_never_reach_the_subject_or_the_name() {
        let m = parse(
            b"From: =?utf-8?q?Eve=0D=0ABcc:_x@example.org?= <eve@example.com>\r\n\
              Subject: =?utf-8?q?Refund=0D=0ABcc:_x@example.org=0D=0A=0D=0Abody=09tab?=\r\n\r\nHi",
        );
        assert_eq!(
            m.subject.as_deref(),
            Some("Refund Bcc: x@example.org body tab")
        );
        assert_eq!(m.author.name.as_deref(), Some("Eve Bcc: x@example.org"));
    }

    fn mail_to(to: &str, subject: &str) -> Message {
        let raw = format!(
            "From: Alex <alex+shop@example.com>\r\n{to}\r\nSubject: {subject}\r\nMessage-ID: <m1@example.com>\r\n\r\nHello"
        );
        parse(raw.as_bytes())
    }

    #[test]
    fn reads_ticket_ids_from_signed_plus_addresses_cc_and_delivered_to() {
        let signed = mail_to("To: support+k3f9q2xa.4f1c9e0b7a@sample.example", "Hi");
        assert_eq!(ticket(&signed), Some("K3F9Q2XA"));
        assert_eq!(
            details(&signed).ticket_signature.as_deref(),
            Some("4f1c9e0b7a")
        );
        // An empty signature is none; an unsigned one has none.
        let empty = mail_to("To: support+K3F9Q2XA.@sample.example", "Hi");
        assert_eq!(details(&empty).ticket_signature, None);
        let cc = mail_to(
            "To: support@sample.example\r\nCc: Support <support+K3F9Q2XA@sample.example>",
            "Hi",
        );
        assert_eq!(ticket(&cc), Some("K3F9Q2XA"));
        let delivered = mail_to(
            "Delivered-To: support+m7ph4rtw@sample.example\r\nTo: support+K3F9Q2XA@sample.example",
            "Hi",
        );
        assert_eq!(ticket(&delivered), Some("M7PH4RTW"));
    }

    #[test]
    fn prefers_the_plus_address_and_falls_back_to_the_subject() {
        let both = mail_to(
            "To: support+K3F9Q2XA@sample.example",
            "Re: [#M7PH4RTW] Refund",
        );
        assert_eq!(ticket(&both), Some("K3F9Q2XA"));
        let subject_only = mail_to(
            "To: support@sample.example",
            "Re: [#bad] [#m7ph4rtw] Refund",
        );
        assert_eq!(ticket(&subject_only), Some("M7PH4RTW"));
        assert_eq!(details(&subject_only).ticket_signature, None);
        // Invalid ids (letters I, L, O, U; wrong length) are ignored, never an error.
        let invalid = mail_to(
            "To: support+ILOU1234@sample.example",
            "Re: [#K3F9Q2X] [#] [#",
        );
        assert_eq!(invalid.ticket_ref, None);
        // The customer's own plus-address names no ticket.
        let own = mail_to(
            "To: support@sample.example\r\nCc: alex+shop@example.com",
            "Hi",
        );
        assert_eq!(own.ticket_ref, None);
    }

    #[test]
    fn orders_replies_to_newest_first_without_repeats() {
        let raw = b"From: a@example.com\r\nMessage-ID: <4@x>\r\nIn-Reply-To: <3@x>\r\nReferences: <1@x> <2@x>\r\n <3@x>\r\n\r\nHi";
        let m = parse(raw);
        assert_eq!(details(&m).references, ["1@x", "2@x", "3@x"]);
        assert_eq!(m.replies_to, ["3@x", "2@x", "1@x"]);
        assert_eq!(root_key(&m), "email:thread:1@x");
        // Without References, the In-Reply-To id is the root.
        let m = parse(b"From: a@example.com\r\nMessage-ID: <4@x>\r\nIn-Reply-To: <3@x>\r\n\r\nHi");
        assert_eq!(root_key(&m), "email:thread:3@x");
    }

    #[test]
    fn keeps_the_root_and_the_newest_references_of_a_long_thread() {
        let refs: Vec<String> = (0..200).map(|i| format!("<{i}@x>")).collect();
        let raw = format!(
            "From: a@example.com\r\nIn-Reply-To: <199@x>\r\nReferences: {}\r\n\r\nHi",
            refs.join("\r\n ")
        );
        let m = parse(raw.as_bytes());
        let references = &details(&m).references;
        assert_eq!(references.len(), 50);
        assert_eq!(references[0], "0@x");
        assert_eq!(references[1], "151@x");
        assert_eq!(references[49], "199@x");
        assert_eq!(root_key(&m), "email:thread:0@x");
        assert_eq!(m.replies_to.len(), 50);
        assert_eq!(m.replies_to[..2], ["199@x", "198@x"]);
    }

    #[test]
    fn ignores_ids_that_cannot_name_a_thread() {
        let long = format!("{}@x", "a".repeat(300));
        let raw = format!(
            "From: a@example.com\r\nMessage-ID: <m@x>\r\nReferences: <{long}> <ok@x>\r\n\r\nHi"
        );
        let m = parse(raw.as_bytes());
        assert_eq!(details(&m).references, ["ok@x"]);
        assert_eq!(root_key(&m), "email:thread:ok@x");
    }

    #[test]
    fn falls_back_to_the_received_time_for_an_unusable_date() {
        for date in [
            "yesterday",
            "Tue, 31 Feb 2026 10:00:00 +0000",
            "Fri, 20 Nov 2026 25:00:00 +0000",
        ] {
            let raw = format!("From: a@example.com\r\nDate: {date}\r\n\r\nHi");
            assert_eq!(parse(raw.as_bytes()).sent_at, now(), "{date}");
        }
        let raw = b"From: a@example.com\r\nDate: Fri, 20 Nov 2026 10:00:00 +0530\r\n\r\nHi";
        assert_eq!(parse(raw).sent_at, time("2026-11-20T04:30:00Z"));
    }

    #[test]
    fn renders_the_html_part_when_the_text_part_is_blank() {
        let raw = b"From: a@example.com\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n \r\n--b\r\nContent-Type: text/html\r\n\r\n<p>Real <i>text</i></p>\r\n--b--\r\n";
        let m = parse(raw);
        assert_eq!(m.text, "Real text");
        assert!(details(&m).html_only);
    }

    #[test]
    fn reads_undeclared_8_bit_text_as_windows_1252() {
        let m = parse(b"From: a@example.com\r\n\r\nCaf\xe9 cr\xe8me \x80 5");
        assert_eq!(m.text, "Café crème € 5");
        // Valid UTF-8 without a charset stays UTF-8.
        let m = parse("From: a@example.com\r\n\r\nCafé".as_bytes());
        assert_eq!(m.text, "Café");
    }

    #[test]
    fn skips_inline_parts_without_a_name_but_keeps_unnamed_attachments() {
        let raw = b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSee logo and file.\r\n--b\r\nContent-Type: image/png\r\nContent-Disposition: inline\r\nContent-ID: <logo>\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: b@example.com\r\nSubject: inner\r\n\r\nForwarded\r\n--b--\r\n";
        let m = parse(raw);
        assert_eq!(m.text, "See logo and file.");
        let kinds: Vec<_> = m
            .attachments
            .iter()
            .map(|a| {
                (
                    a.content_type.as_deref().unwrap(),
                    a.size,
                    a.object_ref.clone(),
                )
            })
            .collect();
        let at = |i: usize| Some(format!("{}#attachment={i}", RawRef::of(raw).0));
        assert_eq!(
            kinds,
            [
                ("application/octet-stream", Some(4), at(1)),
                ("message/rfc822", Some(48), at(2)),
            ]
        );
    }

    #[test]
    fn survives_garbage_without_panicking() {
        let mut inputs: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"\r\n".to_vec(),
            b"\0\0\0\xff\xfe".to_vec(),
            (0..=255u8).cycle().take(4096).collect(),
            b"From: a@example.com\r\n".to_vec(),
            b"From: a@example.com".to_vec(),
            b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nunfinished".to_vec(),
            b"From: a@example.com\r\nContent-Type: multipart/mixed\r\n\r\n--\r\n--".to_vec(),
            b"From: a@example.com\r\nContent-Type: text/html\r\n\r\n<a href=\"<script>".to_vec(),
            b"From: a@example.com\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!".to_vec(),
            b"From: a@example.com\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=\r\n=Z".to_vec(),
            b"From: =?utf-8?B?////?= <a@example.com>\r\nSubject: =?x-unknown?Q?=FF?=\r\n\r\n".to_vec(),
            b"From: a@example.com\r\nContent-Type: message/rfc822\r\n\r\nContent-Type: message/rfc822\r\n\r\nFrom:".to_vec(),
        ];
        // 1000 nested multiparts, closed and unclosed.
        let mut nested = b"From: a@example.com\r\n".to_vec();
        for depth in 0..1000 {
            nested.extend_from_slice(
                format!(
                    "Content-Type: multipart/mixed; boundary=\"b{depth}\"\r\n\r\n--b{depth}\r\n"
                )
                .as_bytes(),
            );
        }
        nested.extend_from_slice(b"Content-Type: text/plain\r\n\r\ndeep\r\n");
        inputs.push(nested.clone());
        for depth in (0..1000).rev() {
            nested.extend_from_slice(format!("--b{depth}--\r\n").as_bytes());
        }
        assert_eq!(parse(&nested).text, "deep");
        inputs.push(nested);
        // Every sample, truncated and with bytes flipped.
        let samples = [
            event!("plain-and-html.eml"),
            event!("multipart-attachment.eml"),
            event!("html-only.eml"),
            event!("rfc2231-filename.eml"),
            event!("plus-address-reply.eml"),
            event!("outlook-quoted-reply.eml"),
            event!("charset-iso-2022-jp.eml"),
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for sample in &samples {
            for cut in (0..sample.len()).step_by(13) {
                inputs.push(sample[..cut].to_vec());
            }
            for _ in 0..40 {
                let mut mutated = sample.clone();
                for _ in 0..8 {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let at = (seed as usize) % mutated.len();
                    mutated[at] = (seed >> 32) as u8;
                }
                inputs.push(mutated);
            }
        }
        for input in &inputs {
            if let Ok(messages) = EmailChannel::parse_mime(input, now()) {
                assert_eq!(messages.len(), 1);
                let m = &messages[0];
                assert!(m.conversation.key(ChannelKind::Email).is_ok());
                assert!(!details(m).message_id.is_empty());
            }
        }
        assert!(EmailChannel::parse_mime(b"", now()).is_err());
        assert!(EmailChannel::attachment_contents(b"", 0).is_none());
        assert!(EmailChannel::split_attachment_ref("sha256:abc").is_none());
    }
}
