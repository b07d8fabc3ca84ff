//! Facebook and Instagram: Messenger, Instagram Direct and comments on the page's posts.

use chrono::{DateTime, Utc};
use crossdesk_core::{ChannelKind, Message};
use secrecy::SecretString;

use crate::{Channel, ParseError, VerifiedWebhook, VerifyError, WebhookRequest};

/// The Facebook channel (Messenger, page comments, Instagram), holding the app secret and the
/// verify token.
pub struct FacebookChannel {
    #[allow(dead_code)]
    app_secret: SecretString,
    #[allow(dead_code)]
    verify_token: SecretString,
}

impl FacebookChannel {
    /// A channel verifying with the app secret and answering the handshake with the verify token.
    pub fn new(app_secret: SecretString, verify_token: SecretString) -> Self {
        FacebookChannel {
            app_secret,
            verify_token,
        }
    }
}

impl Channel for FacebookChannel {
    fn name(&self) -> &'static str {
        "facebook"
    }
    fn kinds(&self) -> &'static [ChannelKind] {
        &[ChannelKind::Facebook, ChannelKind::Instagram]
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
            "facebook parsing is being written".into(),
        ))
    }
}
