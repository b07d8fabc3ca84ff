//! [`SqsQueue`]: the inbound and outbound queues on SQS FIFO, and the events queue (a standard
//! queue: no group or deduplication ids; the event ids and the sender's ledger make duplicates
//! harmless).
//!
//! - `MessageGroupId`: the conversation key for inbound messages (order within a conversation,
//!   conversations in parallel), the ticket id for reply jobs.
//! - `MessageDeduplicationId`: `<channel>:<platform message id>` for a new inbound message (an
//!   edit or removal adds what changed), the message id for a reply job, so a platform's
//!   redelivery within SQS's five-minute window is dropped by SQS itself; the store's
//!   idempotent writes catch the rest.
//! - Either id is replaced by `sha256:<hex>` of itself when it is longer than SQS's 128
//!   characters or holds characters SQS does not allow.
//! - A body over 256 KiB is written to S3 under `queue/` and the queue carries a pointer
//!   `{"s3_pointer":{"bucket":…,"key":…}}`; [`SqsQueue::decode_inbound`] resolves it.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::types::{MessageSystemAttributeName, SendMessageBatchRequestEntry};
use crossdesk_core::events::{EventQueue, OutgoingEvent};
use crossdesk_core::{InboundQueue, Message, MessageEvent, OutboundJob, OutboundQueue, QueueError};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sha2::Digest;
use thiserror::Error;
use tracing::{debug, info};

use crate::error::{describe, is_transient};

/// SQS's limit on a message (body and attributes), and on a whole batch.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// SQS's limit on entries per batch call.
const MAX_BATCH_ENTRIES: usize = 10;
/// SQS's limit on group and deduplication ids.
const MAX_ID_CHARS: usize = 128;

/// Why a record body could not be turned back into a message or job.
#[derive(Debug, Error)]
pub enum BodyError {
    /// The body is not what Crossdesk puts on its queues (retrying cannot help).
    #[error("queue body is malformed: {0}")]
    Malformed(String),
    /// The body is in S3 and S3 could not be read (retrying may help).
    #[error("queue body in S3 unavailable: {0}")]
    Unavailable(String),
}

/// Where an oversize body was put.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct S3Pointer {
    bucket: String,
    key: String,
}

/// The body SQS carries for a body too large for it.
#[derive(Debug, Serialize, Deserialize)]
struct PointerBody {
    s3_pointer: S3Pointer,
}

/// One message received from the queue (for consumers outside Lambda, such as the local stack
/// in `--aws` mode).
#[derive(Debug, Clone)]
pub struct Received {
    /// SQS's id of the message.
    pub message_id: String,
    /// The body, as [`SqsQueue::decode_inbound`] or [`SqsQueue::decode_outbound`] read it.
    pub body: String,
    /// The handle to delete it or change its visibility.
    pub receipt_handle: String,
    /// How many times it has been received, this time included.
    pub receive_count: u32,
}

/// A FIFO queue of Crossdesk messages or reply jobs, with oversize bodies in S3.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    sqs: aws_sdk_sqs::Client,
    url: String,
    s3: aws_sdk_s3::Client,
    bucket: String,
}

/// One entry to send: body, group, deduplication id (both absent on a standard queue).
struct Entry {
    body: String,
    group: Option<String>,
    dedup: Option<String>,
}

impl SqsQueue {
    /// The queue at `url`; oversize bodies go to `bucket`.
    pub fn new(sqs: aws_sdk_sqs::Client, url: &str, s3: aws_sdk_s3::Client, bucket: &str) -> Self {
        SqsQueue {
            sqs,
            url: url.to_string(),
            s3,
            bucket: bucket.to_string(),
        }
    }

    /// The queue's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The message an inbound record body carries.
    pub async fn decode_inbound(&self, body: &str) -> Result<Message, BodyError> {
        self.decode(body).await
    }

    /// The reply job an outbound record body carries.
    pub async fn decode_outbound(&self, body: &str) -> Result<OutboundJob, BodyError> {
        self.decode(body).await
    }

    /// The outgoing event an events record body carries.
    pub async fn decode_event(&self, body: &str) -> Result<OutgoingEvent, BodyError> {
        self.decode(body).await
    }

    async fn decode<T: DeserializeOwned>(&self, body: &str) -> Result<T, BodyError> {
        if let Ok(pointer) = serde_json::from_str::<PointerBody>(body) {
            let S3Pointer { bucket, key } = pointer.s3_pointer;
            let bytes = crate::s3::get_from(&self.s3, &bucket, &key)
                .await
                .map_err(BodyError::Unavailable)?
                .ok_or_else(|| {
                    BodyError::Malformed(format!("s3://{bucket}/{key} does not exist"))
                })?;
            return serde_json::from_slice(&bytes)
                .map_err(|e| BodyError::Malformed(format!("s3://{bucket}/{key}: {e}")));
        }
        serde_json::from_str(body).map_err(|e| BodyError::Malformed(e.to_string()))
    }

    /// Sends entries in batches within SQS's limits (10 entries, 256 KiB); bodies over the
    /// limit go to S3 first.
    async fn send(&self, entries: Vec<Entry>) -> Result<(), QueueError> {
        let mut batch: Vec<Entry> = Vec::new();
        let mut batch_bytes = 0usize;
        for mut entry in entries {
            if entry.body.len() > MAX_BODY_BYTES {
                entry.body = self.offload(entry.body).await?;
            }
            if batch.len() == MAX_BATCH_ENTRIES || batch_bytes + entry.body.len() > MAX_BODY_BYTES {
                self.send_batch(std::mem::take(&mut batch)).await?;
                batch_bytes = 0;
            }
            batch_bytes += entry.body.len();
            batch.push(entry);
        }
        if !batch.is_empty() {
            self.send_batch(batch).await?;
        }
        Ok(())
    }

    /// Writes a body to S3 and returns the pointer body that replaces it.
    async fn offload(&self, body: String) -> Result<String, QueueError> {
        let key = format!("queue/{}.json", uuid::Uuid::now_v7());
        let size = body.len();
        crate::s3::put_to(
            &self.s3,
            &self.bucket,
            &key,
            body.into_bytes(),
            "application/json",
        )
        .await
        .map_err(QueueError::Unavailable)?;
        info!(bytes = size, key = %key, "queue body over the SQS limit stored in S3");
        serde_json::to_string(&PointerBody {
            s3_pointer: S3Pointer {
                bucket: self.bucket.clone(),
                key,
            },
        })
        .map_err(|e| QueueError::Rejected(e.to_string()))
    }

    async fn send_batch(&self, batch: Vec<Entry>) -> Result<(), QueueError> {
        let entries = batch
            .into_iter()
            .enumerate()
            .map(|(i, e)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(e.body)
                    .set_message_group_id(e.group)
                    .set_message_deduplication_id(e.dedup)
                    .build()
                    .map_err(|e| QueueError::Rejected(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let count = entries.len();
        let answer = self
            .sqs
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| {
                if is_transient(&e) {
                    QueueError::Unavailable(describe(&e))
                } else {
                    QueueError::Rejected(describe(&e))
                }
            })?;
        // A batch call succeeds as a whole even when entries fail: every entry must be
        // accepted before the caller may acknowledge (the platform retries otherwise, and the
        // deduplication ids make the retry harmless).
        if let Some(failed) = answer.failed.first() {
            let reason = format!(
                "{} of {count} entries refused, first: {} {}",
                answer.failed.len(),
                failed.code,
                failed.message.as_deref().unwrap_or_default()
            );
            return Err(if failed.sender_fault {
                QueueError::Rejected(reason)
            } else {
                QueueError::Unavailable(reason)
            });
        }
        debug!(count, "sent to SQS");
        Ok(())
    }

    /// Receives up to `max` messages (at most 10), waiting up to `wait` for the first, hidden
    /// from other receivers for `visibility`.
    pub async fn receive(
        &self,
        max: i32,
        wait: Duration,
        visibility: Duration,
    ) -> Result<Vec<Received>, QueueError> {
        let answer = self
            .sqs
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, 10))
            .wait_time_seconds(wait.as_secs().min(20) as i32)
            .visibility_timeout(visibility.as_secs().clamp(1, 43_200) as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| QueueError::Unavailable(describe(&e)))?;
        Ok(answer
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| Received {
                receive_count: m
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1),
                message_id: m.message_id.unwrap_or_default(),
                body: m.body.unwrap_or_default(),
                receipt_handle: m.receipt_handle.unwrap_or_default(),
            })
            .collect())
    }

    /// Deletes a handled message.
    pub async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError> {
        self.sqs
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| QueueError::Unavailable(describe(&e)))
    }

    /// Makes a received message visible again after `after` (0: at once).
    pub async fn retry_later(
        &self,
        receipt_handle: &str,
        after: Duration,
    ) -> Result<(), QueueError> {
        self.sqs
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(after.as_secs().min(43_200) as i32)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| QueueError::Unavailable(describe(&e)))
    }
}

/// An id SQS accepts: the value itself when it fits (at most 128 characters of printable
/// ASCII), else `sha256:<hex>` of it.
pub fn sqs_id(value: &str) -> String {
    let fits = !value.is_empty()
        && value.len() <= MAX_ID_CHARS
        && value.bytes().all(|b| b.is_ascii_graphic());
    if fits {
        value.to_string()
    } else {
        format!("sha256:{}", hex_digest(value.as_bytes()))
    }
}

fn hex_digest(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The deduplication id of an inbound message: its platform identity and what happened to it.
pub fn inbound_dedup_id(message: &Message) -> String {
    let base = message
        .dedup_key()
        .unwrap_or_else(|| format!("{}:crossdesk:{}", message.channel, message.id));
    match message.event {
        MessageEvent::Created => sqs_id(&base),
        MessageEvent::Edited => sqs_id(&format!(
            "{base}:edited:{}",
            hex_digest(message.text.as_bytes())
        )),
        MessageEvent::Removed => sqs_id(&format!("{base}:removed")),
    }
}

/// The message group of an inbound message: its conversation key.
pub fn inbound_group_id(message: &Message) -> String {
    match message.conversation.key(message.channel) {
        Ok(key) => sqs_id(key.as_str()),
        // A conversation without a usable key is its own group.
        Err(_) => sqs_id(&format!("{}:unkeyed:{}", message.channel, message.id)),
    }
}

#[async_trait]
impl InboundQueue for SqsQueue {
    async fn enqueue(&self, messages: &[Message]) -> Result<(), QueueError> {
        let entries = messages
            .iter()
            .map(|m| {
                Ok(Entry {
                    body: serde_json::to_string(m)
                        .map_err(|e| QueueError::Rejected(e.to_string()))?,
                    group: Some(inbound_group_id(m)),
                    dedup: Some(inbound_dedup_id(m)),
                })
            })
            .collect::<Result<Vec<_>, QueueError>>()?;
        self.send(entries).await
    }
}

#[async_trait]
impl OutboundQueue for SqsQueue {
    async fn enqueue(&self, job: &OutboundJob) -> Result<(), QueueError> {
        let entry = Entry {
            body: serde_json::to_string(job).map_err(|e| QueueError::Rejected(e.to_string()))?,
            group: Some(sqs_id(job.ticket_id.as_str())),
            dedup: Some(sqs_id(job.message_id.as_str())),
        };
        self.send(vec![entry]).await
    }
}

#[async_trait]
impl EventQueue for SqsQueue {
    async fn publish(&self, event: &OutgoingEvent) -> Result<(), QueueError> {
        let entry = Entry {
            body: serde_json::to_string(event).map_err(|e| QueueError::Rejected(e.to_string()))?,
            group: None,
            dedup: None,
        };
        self.send(vec![entry]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_fit_are_kept() {
        assert_eq!(sqs_id("facebook:m_abc-123"), "facebook:m_abc-123");
        assert_eq!(
            sqs_id("email:<CAF=x@mail.example.com>"),
            "email:<CAF=x@mail.example.com>"
        );
    }

    #[test]
    fn long_or_odd_ids_are_hashed_to_a_valid_id() {
        for value in [
            "a".repeat(129),
            "chat:héllo".to_string(),
            "has space".into(),
            String::new(),
        ] {
            let id = sqs_id(&value);
            assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
            assert!(id.bytes().all(|b| b.is_ascii_graphic()));
        }
        assert_eq!(sqs_id(&"a".repeat(128)), "a".repeat(128));
        assert_ne!(sqs_id(&"a".repeat(129)), sqs_id(&"a".repeat(130)));
    }

    #[test]
    fn pointer_bodies_are_recognized_and_messages_are_not() {
        let pointer = r#"{"s3_pointer":{"bucket":"b","key":"queue/x.json"}}"#;
        let parsed: PointerBody = serde_json::from_str(pointer).unwrap();
        assert_eq!(parsed.s3_pointer.key, "queue/x.json");
        assert!(
            serde_json::from_str::<PointerBody>(r#"{"ticket_id":"t","message_id":"m"}"#).is_err()
        );
    }
}
