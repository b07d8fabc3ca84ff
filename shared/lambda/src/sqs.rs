//! The SQS consumers: the ticket writer (inbound queue) and the reply sender (outbound queue).
//! Both work a FIFO batch in order and report partial batch failures, so a failing message is
//! retried (and, after `maxReceiveCount`, moved to the dead-letter queue) without the rest of
//! the batch being processed twice or a conversation being processed out of order.

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use crossdesk_channels::delivery::{DeliveryOutcome, ReplyDelivery};
use crossdesk_core::writer::{TicketWriter, WriteOutcome};
use crossdesk_core::{Message, OutboundJob};
use tracing::{error, info, warn};

/// Turns an SQS record body back into a message (resolving bodies stored in S3).
#[async_trait]
pub trait InboundDecoder: Send + Sync {
    /// The message a record body carries.
    async fn decode(&self, body: &str) -> Result<Message, String>;
}

/// Turns an SQS record body back into a reply job (resolving bodies stored in S3), and hands a
/// job back to the queue for later.
#[async_trait]
pub trait OutboundDecoder: Send + Sync {
    /// The job a record body carries.
    async fn decode(&self, body: &str) -> Result<OutboundJob, String>;

    /// Makes the record visible again after `after` (the platform's retry hint) instead of after
    /// the queue's whole visibility timeout.
    async fn retry_later(&self, receipt_handle: &str, after: Duration) -> Result<(), String>;
}

/// Works the records of a batch in order with `handle`. A record whose handling fails is
/// reported in `batchItemFailures`, and so is every later record of the same message group
/// (conversation): on a FIFO queue a later message must not be handled before an earlier one
/// of its group. Records of other groups are still handled.
pub async fn process_in_order<F, Fut>(event: SqsEvent, mut handle: F) -> SqsBatchResponse
where
    F: FnMut(SqsMessage) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut failures = Vec::new();
    let mut failed_groups: HashSet<String> = HashSet::new();
    let mut handled = 0usize;
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        // Without a group id (a standard queue) every record is its own group.
        let group = record
            .attributes
            .get("MessageGroupId")
            .cloned()
            .unwrap_or_else(|| id.clone());
        if failed_groups.contains(&group) {
            failures.push(id);
            continue;
        }
        match handle(record).await {
            Ok(()) => handled += 1,
            Err(reason) => {
                error!(sqs_message_id = %id, %reason, "not processed; it and the later records of its group will be retried");
                failures.push(id);
                failed_groups.insert(group);
            }
        }
    }
    if failures.is_empty() {
        info!(handled, "batch done");
    } else {
        warn!(handled, failed = failures.len(), "batch partly done");
    }
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

/// The ticket writer's batch: threads and stores every message; duplicates count as success.
pub async fn write_batch(
    event: SqsEvent,
    decoder: &dyn InboundDecoder,
    writer: &TicketWriter,
) -> SqsBatchResponse {
    process_in_order(event, |record| async move {
        let message = decoder
            .decode(record.body.as_deref().unwrap_or_default())
            .await
            .map_err(|e| format!("permanent: {e}"))?;
        match writer.write(&message).await {
            Ok(WriteOutcome::Duplicate { .. }) => {
                info!("duplicate delivery acknowledged");
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(e) => {
                let kind = if e.is_retryable() {
                    "retryable"
                } else {
                    "permanent"
                };
                Err(format!("{kind}: {e}"))
            }
        }
    })
    .await
}

/// The reply sender's batch: delivers every reply job. A reply that was sent, failed for good
/// or became `unknown` is done; one that should be retried later is handed back to the queue.
pub async fn deliver_batch(
    event: SqsEvent,
    decoder: &dyn OutboundDecoder,
    delivery: &ReplyDelivery,
) -> SqsBatchResponse {
    process_in_order(event, |record| async move {
        let job = decoder
            .decode(record.body.as_deref().unwrap_or_default())
            .await
            .map_err(|e| format!("permanent: {e}"))?;
        match delivery.deliver(&job).await {
            Ok(DeliveryOutcome::RetryLater { after }) => {
                if let Some(receipt) = record.receipt_handle.as_deref() {
                    if let Err(e) = decoder.retry_later(receipt, after).await {
                        // The record still comes back, after the visibility timeout.
                        warn!(error = %e, "cannot shorten the retry delay");
                    }
                }
                Err(format!("retry in {} s", after.as_secs()))
            }
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::sqs::SqsMessage;

    fn record(id: &str, group: &str, body: &str) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.message_id = Some(id.into());
        m.body = Some(body.into());
        m.attributes.insert("MessageGroupId".into(), group.into());
        m
    }

    #[tokio::test]
    async fn a_failure_holds_back_its_group_only() {
        let mut event = SqsEvent::default();
        event.records = vec![
            record("1", "a", "ok"),
            record("2", "b", "fail"),
            record("3", "a", "ok"),
            record("4", "b", "ok"),
            record("5", "c", "ok"),
        ];
        let mut seen = Vec::new();
        let response = process_in_order(event, |record| {
            let body = record.body.unwrap_or_default();
            seen.push(body.clone());
            async move {
                if body == "fail" {
                    Err("boom".to_string())
                } else {
                    Ok(())
                }
            }
        })
        .await;
        let failed: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        assert_eq!(failed, ["2", "4"]);
        assert_eq!(seen.len(), 4, "record 4 is not attempted after 2 failed");
    }
}
