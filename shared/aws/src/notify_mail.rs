//! [`SesNotificationMailer`]: agent notification mail through SES v2 `SendEmail` with simple
//! content (a subject and a UTF-8 text body), from the configured notifications address.
//!
//! Unlike replies, notification mail needs no threading headers and no signed Message-ID, so
//! SES builds the MIME itself.

use async_trait::async_trait;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use crossdesk_core::notify::{NotificationMail, NotificationMailer, NotifySendError};
use crossdesk_core::EmailAddress;

use crate::error::{describe, error_code, is_transient};

/// Sends notification mail through SES.
#[derive(Debug, Clone)]
pub struct SesNotificationMailer {
    client: aws_sdk_sesv2::Client,
    from: EmailAddress,
}

impl SesNotificationMailer {
    /// A mailer sending as `from` (an identity SES has verified) through `client`.
    pub fn new(client: aws_sdk_sesv2::Client, from: EmailAddress) -> Self {
        SesNotificationMailer { client, from }
    }
}

fn utf8(text: &str) -> Result<Content, NotifySendError> {
    Content::builder()
        .data(text)
        .charset("UTF-8")
        .build()
        .map_err(|e| NotifySendError::Permanent(e.to_string()))
}

#[async_trait]
impl NotificationMailer for SesNotificationMailer {
    async fn send(&self, mail: &NotificationMail) -> Result<(), NotifySendError> {
        let message = Message::builder()
            .subject(utf8(&mail.subject)?)
            .body(Body::builder().text(utf8(&mail.text)?).build())
            .build();
        self.client
            .send_email()
            .from_email_address(self.from.as_str())
            .destination(
                Destination::builder()
                    .to_addresses(mail.to.as_str())
                    .build(),
            )
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(|e| {
                let reason = format!(
                    "SES {}: {}",
                    error_code(&e).unwrap_or("error"),
                    describe(&e)
                );
                if is_transient(&e) {
                    NotifySendError::Retryable(reason)
                } else {
                    NotifySendError::Permanent(reason)
                }
            })?;
        Ok(())
    }
}
