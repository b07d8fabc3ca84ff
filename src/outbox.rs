//! Email replies on the local stack: built exactly as for SES, then written to
//! `<data dir>/outbox/<Message-ID>.eml` instead of being sent, so a developer can open them (and
//! post a customer's answer built from one back to `/webhooks/email`).

use std::path::PathBuf;

use async_trait::async_trait;
use crossdesk_channels::email_reply::{build_reply, EmailReplySettings};
use crossdesk_channels::send::{OutboundReply, ReplySender, SendError, Sent};

/// Writes email replies to a folder.
pub struct OutboxEmailSender {
    settings: EmailReplySettings,
    dir: PathBuf,
}

impl OutboxEmailSender {
    /// A sender writing into `dir` (created when missing) as `settings.support_address`.
    pub fn new(settings: EmailReplySettings, dir: PathBuf) -> Self {
        OutboxEmailSender { settings, dir }
    }
}

#[async_trait]
impl ReplySender for OutboxEmailSender {
    async fn send(&self, reply: &OutboundReply<'_>) -> Result<Sent, SendError> {
        let email = build_reply(&self.settings, reply)?;
        let write_error = |e: std::io::Error| SendError::Transient {
            code: "outbox".into(),
            reason: format!("cannot write to {}: {e}", self.dir.display()),
            retry_after: None,
        };
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(write_error)?;
        let file_name: String = email
            .message_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-@".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        tokio::fs::write(self.dir.join(format!("{file_name}.eml")), &email.mime)
            .await
            .map_err(write_error)?;
        Ok(Sent {
            platform_id: email.message_id,
        })
    }
}
