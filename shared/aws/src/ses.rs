//! [`SesEmailSender`]: email replies through SES v2 `SendEmail` with the raw MIME message
//! [`build_reply`] makes (threading headers `In-Reply-To`/`References`, the ticket's
//! plus-address in `Reply-To`).
//!
//! SES gives every message its own `Message-ID` (`<id>@<region>.amazonses.com`, or
//! `@email.amazonses.com` in us-east-1): that is the id the customer's reply will reference, so
//! it is the one recorded as the reply's platform id.

use async_trait::async_trait;
use aws_sdk_sesv2::error::SdkError;
use aws_sdk_sesv2::primitives::Blob;
use aws_sdk_sesv2::types::{Destination, EmailContent, RawMessage};
use crossdesk_channels::email_reply::{build_reply, EmailReplySettings};
use crossdesk_channels::send::{OutboundReply, ReplySender, SendError, Sent};

use crate::error::{describe, error_code};

/// SES error codes that say the message itself or the account's setup is refused.
const PERMANENT_CODES: &[&str] = &[
    "MessageRejected",
    "MailFromDomainNotVerifiedException",
    "AccountSuspendedException",
    "SendingPausedException",
    "BadRequestException",
    "NotFoundException",
];

/// Sends email replies through SES.
#[derive(Debug, Clone)]
pub struct SesEmailSender {
    client: aws_sdk_sesv2::Client,
    settings: EmailReplySettings,
    id_domain: String,
}

impl SesEmailSender {
    /// A sender from the support address in `settings`, through `client` (its region names the
    /// Message-IDs SES assigns).
    pub fn new(client: aws_sdk_sesv2::Client, settings: EmailReplySettings) -> Self {
        let region = client
            .config()
            .region()
            .map(|r| r.as_ref().to_string())
            .unwrap_or_else(|| "us-east-1".into());
        SesEmailSender {
            client,
            settings,
            id_domain: ses_message_id_domain(&region),
        }
    }
}

/// The domain of the Message-IDs SES assigns in a region.
pub fn ses_message_id_domain(region: &str) -> String {
    if region == "us-east-1" {
        "email.amazonses.com".into()
    } else {
        format!("{region}.amazonses.com")
    }
}

#[async_trait]
impl ReplySender for SesEmailSender {
    async fn send(&self, reply: &OutboundReply<'_>) -> Result<Sent, SendError> {
        let email = build_reply(&self.settings, reply)?;
        let raw = RawMessage::builder()
            .data(Blob::new(email.mime))
            .build()
            .map_err(|e| SendError::refused("mime_build_failed", e.to_string()))?;
        let answer = self
            .client
            .send_email()
            .from_email_address(self.settings.support_address.as_str())
            .destination(
                Destination::builder()
                    .to_addresses(email.to.as_str())
                    .build(),
            )
            .content(EmailContent::builder().raw(raw).build())
            .send()
            .await
            .map_err(classify)?;
        let id = answer
            .message_id()
            .ok_or_else(|| SendError::OutcomeUnknown {
                code: "no_message_id".into(),
                reason: "SES accepted the email but returned no message id".into(),
            })?;
        Ok(Sent {
            platform_id: format!("{id}@{}", self.id_domain),
        })
    }
}

/// Maps an SES failure: throttling and 5xx are retried; refusals are permanent; a call cut
/// short after it left may have sent the email, so its outcome is unknown.
fn classify<E>(err: SdkError<E, aws_sdk_sesv2::config::http::HttpResponse>) -> SendError
where
    E: aws_sdk_sesv2::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let reason = describe(&err);
    match &err {
        SdkError::ConstructionFailure(_) => SendError::Permanent {
            code: "request_invalid".into(),
            reason,
        },
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            SendError::OutcomeUnknown {
                code: "unknown_outcome".into(),
                reason: format!(
                    "SES did not answer; check the recipient's mailbox before resending: {reason}"
                ),
            }
        }
        SdkError::ServiceError(context) => {
            let code = error_code(&err).unwrap_or("ses_error").to_string();
            let status = context.raw().status();
            if code == "TooManyRequestsException"
                || code == "LimitExceededException"
                || code == "Throttling"
                || status.is_server_error()
                || status.as_u16() == 429
            {
                SendError::Transient {
                    code,
                    reason,
                    retry_after: None,
                }
            } else if PERMANENT_CODES.contains(&code.as_str()) || status.is_client_error() {
                SendError::Permanent { code, reason }
            } else {
                SendError::Transient {
                    code,
                    reason,
                    retry_after: None,
                }
            }
        }
        _ => SendError::OutcomeUnknown {
            code: "unknown_outcome".into(),
            reason,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_id_domain_follows_the_region() {
        assert_eq!(ses_message_id_domain("us-east-1"), "email.amazonses.com");
        assert_eq!(
            ses_message_id_domain("eu-west-1"),
            "eu-west-1.amazonses.com"
        );
    }
}
