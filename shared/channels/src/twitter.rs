//! Twitter/X: mentions, replies and direct messages (Account Activity and X Activity webhooks).

use chrono::{DateTime, Utc};
use crossdesk_core::{ChannelKind, Message};
use secrecy::SecretString;

use crate::{Channel, ParseError, VerifiedWebhook, VerifyError, WebhookRequest};

/// The Twitter/X channel, holding the app's consumer secret.
pub struct TwitterChannel {
    #[allow(dead_code)]
    consumer_secret: SecretString,
}

impl TwitterChannel {
    /// A channel verifying (and answering CRC checks) with the consumer secret.
    pub fn new(consumer_secret: SecretString) -> Self {
        TwitterChannel { consumer_secret }
    }
}

impl Channel for TwitterChannel {
    fn name(&self) -> &'static str {
        "twitter"
    }
    fn kinds(&self) -> &'static [ChannelKind] {
        &[ChannelKind::Twitter]
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
        _webhook: &VerifiedWebhook<'_>,
        _received_at: DateTime<Utc>,
    ) -> Result<Vec<Message>, ParseError> {
        Err(ParseError::Invalid(
            "twitter parsing is being written".into(),
        ))
    }
}
