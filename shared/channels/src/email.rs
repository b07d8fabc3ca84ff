//! Email: raw RFC 5322 messages (the bytes SES stores in S3), parsed with `mail-parser`.

use chrono::{DateTime, Utc};
use crossdesk_core::{ChannelKind, Message};
use secrecy::SecretString;

use crate::{Channel, ParseError, VerifiedWebhook, VerifyError, WebhookRequest};

/// The email channel. Over HTTP (the local stack) it requires a bearer token, since it stands in
/// for SES, which signs nothing.
pub struct EmailChannel {
    #[allow(dead_code)]
    ingest_token: SecretString,
}

impl EmailChannel {
    /// A channel accepting raw mail from callers holding `ingest_token`.
    pub fn new(ingest_token: SecretString) -> Self {
        EmailChannel { ingest_token }
    }

    /// Parses one raw RFC 5322 message (as SES stores it in S3).
    pub fn parse_mime(
        _raw: &[u8],
        _received_at: DateTime<Utc>,
    ) -> Result<Vec<Message>, ParseError> {
        Err(ParseError::Mime("email parsing is being written".into()))
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
        _request: &WebhookRequest<'a>,
        _now: DateTime<Utc>,
    ) -> Result<VerifiedWebhook<'a>, VerifyError> {
        Err(VerifyError::BadSignature)
    }
    fn parse(
        &self,
        webhook: &VerifiedWebhook<'_>,
        received_at: DateTime<Utc>,
    ) -> Result<Vec<Message>, ParseError> {
        Self::parse_mime(webhook.body(), received_at)
    }
    fn max_body_bytes(&self) -> usize {
        25 * 1024 * 1024
    }
}
