//! The event sender's batch: posts each outgoing event of the standard events queue to the
//! configured endpoints and hands it to the agent notifier, reporting partial batch failures, so an event some endpoint should get
//! later is handed back to the queue with the sender's backoff as its visibility timeout while
//! the rest of the batch is done.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use crossdesk_aws::SqsQueue;
use crossdesk_channels::events_webhook::{EventOutcome, EventsWebhook};
use crossdesk_core::events::OutgoingEvent;
use crossdesk_core::notify::{Notifier, NotifyOutcome};
use tracing::warn;

use crate::sqs::process_in_order;

/// Turns an events record body back into an event (resolving bodies stored in S3), and hands a
/// record back to the queue for later.
#[async_trait]
pub trait EventDecoder: Send + Sync {
    /// The event a record body carries.
    async fn decode(&self, body: &str) -> Result<OutgoingEvent, String>;

    /// Makes the record visible again after `after` (the backoff of its next round).
    async fn retry_later(&self, receipt_handle: &str, after: Duration) -> Result<(), String>;
}

#[async_trait]
impl EventDecoder for SqsQueue {
    async fn decode(&self, body: &str) -> Result<OutgoingEvent, String> {
        self.decode_event(body).await.map_err(|e| e.to_string())
    }

    async fn retry_later(&self, receipt_handle: &str, after: Duration) -> Result<(), String> {
        SqsQueue::retry_later(self, receipt_handle, after)
            .await
            .map_err(|e| e.to_string())
    }
}

/// The event sender's parts: the decoder of events bodies, the webhook and the notifier.
#[derive(Clone)]
pub struct EventSender {
    /// Decodes bodies and hands records back.
    pub decoder: Arc<dyn EventDecoder>,
    /// Posts events (`None` while only agent notifications are on).
    pub webhook: Option<EventsWebhook>,
    /// Notifies agents (`None` while notifications are off).
    pub notifier: Option<Notifier>,
}

/// Works one batch: each record is one round of its event (the round is the record's
/// `ApproximateReceiveCount`). Delivered and given-up events are done (the latter kept for
/// replay); an event to retry is handed back after its backoff and reported as failed.
pub async fn send_events_batch(event: SqsEvent, sender: &EventSender) -> SqsBatchResponse {
    process_in_order(event, |record| async move {
        let event = sender
            .decoder
            .decode(record.body.as_deref().unwrap_or_default())
            .await
            .map_err(|e| format!("permanent: {e}"))?;
        let attempt = record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        let mut later: Option<Duration> = None;
        if let Some(webhook) = &sender.webhook {
            match webhook.deliver(&event, attempt).await {
                Ok(EventOutcome::Delivered) | Ok(EventOutcome::Failed(_)) => {}
                Ok(EventOutcome::RetryLater { after }) => later = Some(after),
                Err(e) => return Err(format!("retryable: {e}")),
            }
        }
        if let Some(notifier) = &sender.notifier {
            match notifier.handle(&event).await {
                // Back when the notification digest is due.
                Ok(NotifyOutcome::Deferred { after }) => {
                    later = Some(later.map_or(after, |l| l.min(after)));
                }
                Ok(_) => {}
                Err(e) if e.is_retryable() => return Err(format!("retryable: {e}")),
                Err(e) => warn!(error = %e, "notification given up on"),
            }
        }
        match later {
            None => Ok(()),
            Some(after) => {
                if let Some(receipt) = record.receipt_handle.as_deref() {
                    if let Err(e) = sender.decoder.retry_later(receipt, after).await {
                        // The record still comes back, after the visibility timeout.
                        warn!(error = %e, "cannot set the retry delay");
                    }
                }
                Err(format!("retry in {} s", after.as_secs()))
            }
        }
    })
    .await
}
