//! Crossdesk's channels. Each module reads the same way: the platform's wire types, `verify`
//! (signature over the raw body, constant-time), `parse` into the normalized [`Message`] model.
//!
//! Adding a channel: a module here implementing [`Channel`], a route in `crossdesk-http`, a
//! function crate, a template block and sample events (see `docs/adding-a-channel.md`).

pub mod chat;
pub mod chat_send;
pub mod config_findings;
pub mod delivery;
pub mod email;
pub mod email_reply;
pub mod events_webhook;
pub mod facebook;
pub mod facebook_send;
#[cfg(test)]
mod fake_meta;
pub mod graph_version;
pub mod health;
mod json;
pub mod media_fetch;
pub mod monitoring;
pub mod notify_webhook;
pub mod oauth1;
pub mod send;
pub mod senders;
pub mod signature;
pub mod twitter;
pub mod twitter_send;
pub mod verification;

use chrono::{DateTime, Utc};
use crossdesk_core::{ChannelKind, Message, RawRef};
use thiserror::Error;

pub use chat::ChatChannel;
pub use email::EmailChannel;
pub use facebook::FacebookChannel;
pub use twitter::TwitterChannel;
pub use verification::{verify_with_mode, SignatureFailure, SignatureMode, SignatureModes};

/// The default cap on a webhook body: platforms send a few KiB; 1 MiB leaves room for batches.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// Request headers with lower-cased names, as HTTP/2 and API Gateway deliver them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// Headers from name/value pairs (names are lower-cased).
    pub fn new<I, N, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (N, V)>,
        N: AsRef<str>,
        V: Into<String>,
    {
        Headers(
            pairs
                .into_iter()
                .map(|(n, v)| (n.as_ref().to_ascii_lowercase(), v.into()))
                .collect(),
        )
    }

    /// The first value of a header, by case-insensitive name.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Query parameters of a webhook request, decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parses a raw query string (`a=1&b=2`, without `?`).
    pub fn parse(raw: &str) -> Self {
        Query(
            form_urlencoded::parse(raw.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of a parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A webhook request as the platform sent it: headers and the exact body bytes.
#[derive(Debug, Clone, Copy)]
pub struct WebhookRequest<'a> {
    /// The request headers.
    pub headers: &'a Headers,
    /// The raw body, byte for byte as received (signatures are over these bytes).
    pub body: &'a [u8],
}

/// A webhook whose signature has been checked. Only a channel's `verify` can build one, so a
/// handler cannot parse a payload it did not verify; the one exception is explicit and marked:
/// [`verify_with_mode`] in [`SignatureMode::Report`] accepts a request whose signature failed,
/// and the webhook then says so ([`VerifiedWebhook::signature_failure`]).
#[derive(Debug, Clone, Copy)]
pub struct VerifiedWebhook<'a> {
    body: &'a [u8],
    /// Set only by report mode: the signature failed and the request was accepted anyway.
    unverified: Option<SignatureFailure>,
}

impl<'a> VerifiedWebhook<'a> {
    /// A webhook whose signature matched (for the channels' `verify`).
    pub(crate) fn new(body: &'a [u8]) -> Self {
        VerifiedWebhook {
            body,
            unverified: None,
        }
    }

    /// A webhook whose signature failed, accepted because its channel is in report mode. Only
    /// [`verify_with_mode`] calls this, after every check but the signature passed.
    pub(crate) fn accepted_in_report_mode(body: &'a [u8], failure: SignatureFailure) -> Self {
        VerifiedWebhook {
            body,
            unverified: Some(failure),
        }
    }

    /// Why the signature failed, when the request was accepted in report mode; `None` when the
    /// signature matched.
    pub fn signature_failure(&self) -> Option<SignatureFailure> {
        self.unverified
    }

    /// The verified body.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// Where the body is archived (its content address).
    pub fn raw_ref(&self) -> RawRef {
        RawRef::of(self.body)
    }
}

/// The answer to a subscription handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeReply {
    /// The `Content-Type` of the answer.
    pub content_type: &'static str,
    /// The answer's body.
    pub body: String,
}

/// Why a handshake was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum HandshakeError {
    /// The channel has no handshake (answer 405).
    #[error("this channel has no subscription handshake")]
    NotSupported,
    /// A parameter is missing or malformed (answer 400).
    #[error("bad handshake request: {0}")]
    BadRequest(String),
    /// The verify token does not match (answer 403).
    #[error("handshake refused: {0}")]
    Forbidden(String),
}

/// Why a webhook request was not accepted as coming from the platform.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum VerifyError {
    /// The signature (or token) header is absent (answer 401).
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// A header is present but not in the expected form (answer 400).
    #[error("malformed {header} header: {reason}")]
    MalformedHeader {
        /// The header's name.
        header: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The signature does not match the body (answer 401).
    #[error("signature does not match the request body")]
    BadSignature,
    /// The request is signed but too old or too far in the future: a replay (answer 401).
    #[error(
        "request timestamp is {skew_secs} s away from now (limit {limit_secs} s): possible replay"
    )]
    Stale {
        /// How far the timestamp is from now, in seconds.
        skew_secs: i64,
        /// The allowed distance.
        limit_secs: i64,
    },
}

/// Why a verified body could not be turned into messages (answer 400).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ParseError {
    /// The body is not the JSON the platform documents.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// The body is well-formed but a required field is missing or invalid.
    #[error("invalid payload: {0}")]
    Invalid(String),
    /// The email could not be parsed as a MIME message.
    #[error("invalid email: {0}")]
    Mime(String),
}

impl From<serde_json::Error> for ParseError {
    fn from(e: serde_json::Error) -> Self {
        ParseError::Json(e.to_string())
    }
}

/// One inbound channel: its handshake, its signature check and its payload parser.
pub trait Channel: Send + Sync {
    /// The route name (`facebook`, `twitter`, `email`, `chat`).
    fn name(&self) -> &'static str;

    /// The channels of the messages it produces.
    fn kinds(&self) -> &'static [ChannelKind];

    /// Answers the platform's subscription handshake (`GET` on the webhook URL).
    fn handshake(&self, query: &Query) -> Result<HandshakeReply, HandshakeError> {
        let _ = query;
        Err(HandshakeError::NotSupported)
    }

    /// Checks that the request comes from the platform (and is not a replay).
    fn verify<'a>(
        &self,
        request: &WebhookRequest<'a>,
        now: DateTime<Utc>,
    ) -> Result<VerifiedWebhook<'a>, VerifyError>;

    /// Turns a verified body into zero or more normalized messages.
    fn parse(
        &self,
        webhook: &VerifiedWebhook<'_>,
        received_at: DateTime<Utc>,
    ) -> Result<Vec<Message>, ParseError>;

    /// The largest body accepted, in bytes (larger ones are answered 413).
    fn max_body_bytes(&self) -> usize {
        DEFAULT_MAX_BODY_BYTES
    }

    /// The header carrying the platform's signature, which [`SignatureMode::Report`] may
    /// tolerate being missing, malformed or wrong. `None` (the default): the channel has no
    /// signature to relax (email's bearer token), and report mode does not apply to it.
    fn signature_header(&self) -> Option<&'static str> {
        None
    }

    /// The checks report mode keeps when the signature fails: everything about the request
    /// but the signature itself. The default has none; chat's timestamp must still be present,
    /// well formed and within the replay window.
    fn verify_unsigned_parts(
        &self,
        request: &WebhookRequest<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), VerifyError> {
        let _ = (request, now);
        Ok(())
    }
}

/// A timestamp in milliseconds since the epoch, or the current time if it is out of range.
pub(crate) fn millis_to_time(ms: i64, fallback: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(fallback)
}

/// A timestamp in seconds since the epoch, or the current time if it is out of range.
pub(crate) fn secs_to_time(secs: i64, fallback: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or(fallback)
}
