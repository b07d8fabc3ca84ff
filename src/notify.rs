//! The local stack's agent notifications (`CROSSDESK_NOTIFY_ENABLED=true`): the notifier the
//! events worker hands every event to, and its mail and webhook (the chat waiting check runs
//! in the scheduled watch, [`crate::sla`]).
//!
//! Mail: on the embedded backend every notification mail is written to
//! `<data dir>/notifications/<UTC time>-<recipient>.eml` (a plain RFC 5322 message any mail
//! client opens; the log line names the file), so a developer sees exactly what an agent
//! would get without a mail server. With `--aws` it goes through SES from
//! `CROSSDESK_NOTIFY_FROM`. The webhook (`CROSSDESK_NOTIFY_WEBHOOK_URL`) is signed with
//! `CROSSDESK_NOTIFY_WEBHOOK_SECRET`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context};
use async_trait::async_trait;
use crossdesk_aws::SesNotificationMailer;
use crossdesk_channels::notify_webhook::SignedNotificationWebhook;
use crossdesk_core::events::EventLedger;
use crossdesk_core::notify::{NotificationMail, NotificationMailer, Notifier, NotifySendError};
use crossdesk_core::workflow::WorkflowStore;
use crossdesk_core::{Clock, TicketStore};
use tracing::{info, warn};

use crate::config::{Backend, LocalConfig};

/// The sender of spooled mail when `CROSSDESK_NOTIFY_FROM` is unset.
const LOCAL_FROM: &str = "notifications@crossdesk.localhost";

/// Writes notification mail to a folder instead of sending it.
pub struct SpoolMailer {
    dir: PathBuf,
    from: String,
    sequence: AtomicU64,
}

impl SpoolMailer {
    /// A mailer writing into `dir` (created when missing) as `from`.
    pub fn new(dir: PathBuf, from: String) -> Self {
        SpoolMailer {
            dir,
            from,
            sequence: AtomicU64::new(0),
        }
    }
}

#[async_trait]
impl NotificationMailer for SpoolMailer {
    async fn send(&self, mail: &NotificationMail) -> Result<(), NotifySendError> {
        let failed = |e: std::io::Error| {
            NotifySendError::Retryable(format!("cannot write to {}: {e}", self.dir.display()))
        };
        tokio::fs::create_dir_all(&self.dir).await.map_err(failed)?;
        let now = chrono::Utc::now();
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        let to: String = mail
            .to
            .as_str()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-@".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = self
            .dir
            .join(format!("{}-{n}-{to}.eml", now.format("%Y%m%dT%H%M%S%.3fZ")));
        let text = mail.text.replace("\r\n", "\n").replace('\n', "\r\n");
        let message = format!(
            "From: {}\r\nTo: {}\r\nSubject: {}\r\nDate: {}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\nAuto-Submitted: auto-generated\r\n\r\n{text}",
            self.from,
            mail.to,
            mail.subject,
            now.to_rfc2822(),
        );
        tokio::fs::write(&path, message).await.map_err(failed)?;
        info!(to = %mail.to, subject = %mail.subject, path = %path.display(), "notification mail spooled");
        Ok(())
    }
}

/// The notifier, when `CROSSDESK_NOTIFY_ENABLED` is on: mail spooled locally (SES with
/// `--aws`), the signed webhook when its URL is set (its secret is then required).
pub async fn notifier(
    config: &LocalConfig,
    tickets: Arc<dyn TicketStore>,
    workflows: Arc<dyn WorkflowStore>,
    ledger: Arc<dyn EventLedger>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Option<Notifier>> {
    let settings = config.notifications.clone();
    if !settings.enabled {
        return Ok(None);
    }
    let mut notifier = Notifier::new(settings.clone(), tickets, workflows, ledger, clock.clone());
    match (&config.backend, &settings.from_address) {
        (Backend::Embedded, from) => {
            let dir = config.data_dir.join("notifications");
            info!(dir = %dir.display(), "notification mail is written to files");
            let from = from
                .as_ref()
                .map(|f| f.to_string())
                .unwrap_or_else(|| LOCAL_FROM.into());
            notifier = notifier.with_mailer(Arc::new(SpoolMailer::new(dir, from)));
        }
        (Backend::Aws { .. }, Some(from)) => {
            let sdk = crossdesk_aws::sdk_config().await;
            notifier = notifier.with_mailer(Arc::new(SesNotificationMailer::new(
                aws_sdk_sesv2::Client::new(&sdk),
                from.clone(),
            )));
        }
        (Backend::Aws { .. }, None) => {
            warn!("notification mail is off: set CROSSDESK_NOTIFY_FROM (an SES identity)");
        }
    }
    if let Some(url) = &settings.webhook_url {
        let Some(secret) = config.notify_webhook_secret.clone() else {
            bail!("CROSSDESK_NOTIFY_WEBHOOK_URL is set but CROSSDESK_NOTIFY_WEBHOOK_SECRET is not: notifications are never posted unsigned");
        };
        let webhook = SignedNotificationWebhook::new(url, secret, clock)
            .context("CROSSDESK_NOTIFY_WEBHOOK_URL")?;
        notifier = notifier.with_webhook(Arc::new(webhook));
    }
    Ok(Some(notifier))
}

#[cfg(test)]
mod tests {
    use crossdesk_core::EmailAddress;

    use super::*;

    #[tokio::test]
    async fn spooled_mail_is_a_readable_message_file() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = SpoolMailer::new(dir.path().join("notifications"), LOCAL_FROM.into());
        mailer
            .send(&NotificationMail {
                to: EmailAddress::parse("agent@acme.example").unwrap(),
                subject: "[Crossdesk] New ticket: Broken [#K3F9Q2XA]".into(),
                text: "New on ticket #K3F9Q2XA\nline two\n".into(),
            })
            .await
            .unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path().join("notifications"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1);
        let name = files[0].file_name().unwrap().to_string_lossy().to_string();
        assert!(name.ends_with("-0-agent@acme.example.eml"), "{name}");
        let bytes = std::fs::read(&files[0]).unwrap();
        let parsed = mail_parser::MessageParser::default().parse(&bytes).unwrap();
        assert_eq!(
            parsed.subject(),
            Some("[Crossdesk] New ticket: Broken [#K3F9Q2XA]")
        );
        assert_eq!(
            parsed.body_text(0).unwrap().replace("\r\n", "\n"),
            "New on ticket #K3F9Q2XA\nline two\n"
        );
    }
}
