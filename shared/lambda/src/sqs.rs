//! The ticket writer's SQS handler: threads each record of a FIFO batch, in order, and reports
//! partial batch failures so a failing message is retried (and, after `maxReceiveCount`, moved to
//! the dead-letter queue) without the rest of the batch being stored twice or out of order.

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use crossdesk_core::writer::{TicketWriter, WriteOutcome};
use crossdesk_core::Message;
use tracing::{error, info, warn};

/// Turns an SQS record body back into a message (resolving bodies stored in S3).
#[async_trait]
pub trait InboundDecoder: Send + Sync {
    /// The message a record body carries.
    async fn decode(&self, body: &str) -> Result<Message, String>;
}

/// Plain JSON bodies, no S3 pointers (for tests and small deployments).
pub struct JsonBodies;

#[async_trait]
impl InboundDecoder for JsonBodies {
    async fn decode(&self, body: &str) -> Result<Message, String> {
        serde_json::from_str(body).map_err(|e| format!("undecodable message: {e}"))
    }
}

/// Threads every record of the batch in order. The first record that fails, and every record
/// after it, are reported in `batchItemFailures`: on a FIFO queue, a later message must not be
/// stored before an earlier one of its conversation, so nothing after a failure is attempted.
/// Duplicates count as success.
pub async fn write_batch(
    event: SqsEvent,
    decoder: &dyn InboundDecoder,
    writer: &TicketWriter,
) -> SqsBatchResponse {
    let mut failures = Vec::new();
    let mut stored = 0usize;
    let mut duplicates = 0usize;
    for record in event.records {
        let id = record.message_id.unwrap_or_default();
        if !failures.is_empty() {
            failures.push(id);
            continue;
        }
        let body = record.body.unwrap_or_default();
        let result = match decoder.decode(&body).await {
            Ok(message) => writer.write(&message).await.map_err(|e| {
                let kind = if e.is_retryable() {
                    "retryable"
                } else {
                    "permanent"
                };
                format!("{kind}: {e}")
            }),
            Err(e) => Err(format!("permanent: {e}")),
        };
        match result {
            Ok(WriteOutcome::Duplicate { .. }) => duplicates += 1,
            Ok(_) => stored += 1,
            Err(reason) => {
                error!(sqs_message_id = %id, %reason, "message not stored; it and the rest of the batch will be retried");
                failures.push(id);
            }
        }
    }
    if failures.is_empty() {
        info!(stored, duplicates, "batch stored");
    } else {
        warn!(
            stored,
            duplicates,
            failed = failures.len(),
            "batch partly stored"
        );
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
