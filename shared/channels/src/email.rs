//! Email: raw RFC 5322 messages (the bytes SES stores in S3), parsed with `mail-parser`.
//!
//! One mail becomes one private inbound [`Message`]:
//! - the author is the `From` address; recipients are `To` and `Cc`;
//! - threading facts: the Message-ID (synthesized from the bytes when absent), `In-Reply-To` and
//!   `References`; `replies_to` lists them newest first for the ticket writer, and the
//!   conversation is named after the thread's root (the first `References` id);
//! - a ticket the mail names itself: `support+<ticket>@…` (or `+<ticket>.<signature>@…`) in
//!   `To`/`Cc`/`Delivered-To`, else `[#<ticket>]` in the subject;
//! - the text/plain body (or a rendering of the HTML body), split into the new text and the
//!   quoted history ([`quote`]);
//! - attachments as references into the archived raw mail, never inlined.
//!
//! SES signs nothing, so over HTTP (the local stack) the channel requires the ingest token as
//! `Authorization: Bearer <token>`; in AWS the SES Lambda calls [`EmailChannel::parse_mime`].

mod html;
mod quote;

use std::borrow::Cow;

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

        let subject = mail
            .subject()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        let to = recipients(&mail);
        let ticket_ref = plus_address_ticket(&mail, &author)
            .or_else(|| subject.as_deref().and_then(subject_ticket));

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
            }),
            raw: Some(raw_ref),
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
        .map(|n| n.trim().trim_matches('"').trim().to_string())
        .filter(|n| !n.is_empty() && !n.eq_ignore_ascii_case(email.as_str()));
    Ok(Author {
        platform_id: email.as_str().to_string(),
        name,
        email: Some(email),
        handle: None,
    })
}

/// `To` and `Cc` addresses that parse, in header order, without repeats.
fn recipients(mail: &mail_parser::Message<'_>) -> Vec<EmailAddress> {
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
            if !to.contains(&email) {
                to.push(email);
            }
        }
    }
    to
}

/// A Message-ID without angle brackets; `None` for one that is empty, has spaces or cannot name
/// a conversation.
fn clean_id(id: &str) -> Option<String> {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>').trim();
    let valid = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && !id
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>'))
        && ConversationKey::new("email:thread", &[id]).is_ok();
    valid.then(|| id.to_string())
}

/// The ids of every `In-Reply-To` or `References` header, in header order, without repeats.
fn ids(mail: &mail_parser::Message<'_>, header: HeaderName<'static>) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for value in mail.header_values(header) {
        let found: Vec<&str> = match value {
            HeaderValue::Text(id) => vec![id.as_ref()],
            HeaderValue::TextList(list) => list.iter().map(|id| id.as_ref()).collect(),
            _ => Vec::new(),
        };
        for id in found.into_iter().filter_map(clean_id) {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
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
/// the mail's recipients: `Delivered-To` (the envelope recipient) first, then `To` and `Cc`.
/// The signature, where present, is not checked here.
fn plus_address_ticket(mail: &mail_parser::Message<'_>, author: &Author) -> Option<TicketId> {
    let delivered_to = mail
        .header_values(HeaderName::Other("Delivered-To".into()))
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

fn ticket_in_plus_address(address: &EmailAddress) -> Option<TicketId> {
    let (_, tag) = address.local_part().rsplit_once('+')?;
    let id = tag.split_once('.').map_or(tag, |(id, _signature)| id);
    TicketId::parse(id).ok()
}

/// The first valid `[#<ticket>]` in a subject.
fn subject_ticket(subject: &str) -> Option<TicketId> {
    subject.match_indices("[#").find_map(|(at, _)| {
        let rest = &subject[at + 2..];
        let (id, _) = rest.split_once(']')?;
        TicketId::parse(id).ok()
    })
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
    match (std::str::from_utf8(&bytes), charset_decoder(b"windows-1252")) {
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
fn attachments(
    mail: &mail_parser::Message<'_>,
    raw: &[u8],
    raw_ref: &RawRef,
) -> Vec<Attachment> {
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
