//! The email ingest: SES receipt events (S3 action, then this Lambda action). The body is not in
//! the event: the raw MIME is read from where the S3 action stored it, verdicts are checked,
//! and the mail is normalized and queued like any webhook.

use async_trait::async_trait;
use aws_lambda_events::event::ses::{SimpleEmailEvent, SimpleEmailRecord};
use chrono::{DateTime, Utc};
use crossdesk_channels::EmailChannel;
use crossdesk_core::{ChannelKind, InboundQueue, RawArchive};
use thiserror::Error;
use tracing::{info, warn};

/// Where SES's S3 action stored a received mail.
#[async_trait]
pub trait RawMailSource: Send + Sync {
    /// The raw RFC 5322 bytes of the mail SES received with this message id.
    async fn fetch(&self, ses_message_id: &str) -> Result<Vec<u8>, String>;
}

/// Why an SES event could not be handled (the invocation fails and Lambda retries it).
#[derive(Debug, Error)]
pub enum MailError {
    /// The record names no mail.
    #[error("SES record without a message id")]
    NoMessageId,
    /// The raw mail could not be read.
    #[error("cannot read mail {id}: {reason}")]
    Fetch {
        /// The SES message id.
        id: String,
        /// What failed.
        reason: String,
    },
    /// Archiving or queueing failed.
    #[error("cannot queue mail {id}: {reason}")]
    Queue {
        /// The SES message id.
        id: String,
        /// What failed.
        reason: String,
    },
}

/// What happened to the mails of one event.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MailReport {
    /// Mails normalized and queued.
    pub queued: usize,
    /// Mails dropped because SES judged them spam or infected.
    pub dropped: usize,
    /// Mails that could not be parsed (kept in S3, logged).
    pub unparseable: usize,
}

/// Why SES's verdicts rule a mail out, if they do: spam or virus `FAIL`.
pub fn rejection(record: &SimpleEmailRecord) -> Option<&'static str> {
    let receipt = &record.ses.receipt;
    let failed = |v: &Option<String>| v.as_deref() == Some("FAIL");
    if failed(&receipt.virus_verdict.status) {
        Some("virus")
    } else if failed(&receipt.spam_verdict.status) {
        Some("spam")
    } else {
        None
    }
}

/// Handles one SES event: every accepted mail is fetched, normalized, archived and queued.
pub async fn ingest_mail(
    event: SimpleEmailEvent,
    source: &dyn RawMailSource,
    archive: &dyn RawArchive,
    queue: &dyn InboundQueue,
    received_at: DateTime<Utc>,
) -> Result<MailReport, MailError> {
    let mut report = MailReport::default();
    for record in &event.records {
        let id = record
            .ses
            .mail
            .message_id
            .clone()
            .ok_or(MailError::NoMessageId)?;
        if let Some(verdict) = rejection(record) {
            warn!(ses_message_id = %id, verdict, "mail dropped on SES verdict");
            report.dropped += 1;
            continue;
        }
        let raw = source.fetch(&id).await.map_err(|reason| MailError::Fetch {
            id: id.clone(),
            reason,
        })?;
        let messages = match EmailChannel::parse_mime(&raw, received_at) {
            Ok(messages) => messages,
            Err(e) => {
                // Retrying cannot fix a mail; it stays in S3 for a person to look at.
                warn!(ses_message_id = %id, error = %e, "mail could not be parsed; left in S3");
                report.unparseable += 1;
                continue;
            }
        };
        let queue_error = |reason: String| MailError::Queue {
            id: id.clone(),
            reason,
        };
        archive
            .put(ChannelKind::Email, &raw)
            .await
            .map_err(|e| queue_error(e.to_string()))?;
        queue
            .enqueue(&messages)
            .await
            .map_err(|e| queue_error(e.to_string()))?;
        info!(ses_message_id = %id, "mail queued");
        report.queued += 1;
    }
    Ok(report)
}
