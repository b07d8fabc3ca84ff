//! The queues the local stack's workers drain, on either backend: the embedded SQLite queue or
//! SQS (`--aws`). A worker takes a batch, handles each entry and settles it; nothing is removed
//! before it is handled.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use crossdesk_aws::SqsQueue;
use crossdesk_core::events::OutgoingEvent;
use crossdesk_core::{Message, OutboundJob, QueueError};
use crossdesk_embedded::{QueueName, Receipt, SqliteQueue};
use tracing::warn;

/// How long an entry taken by a worker stays invisible to a second take.
const LEASE: Duration = Duration::from_secs(30);
/// The same on SQS: short, so a killed stack's batch comes back soon after a restart, but well
/// above the time a batch takes on a busy moto server (a batch still being written when its
/// entries come back spends one of their five receives for nothing).
const SQS_VISIBILITY: Duration = Duration::from_secs(20);

/// One entry taken from a queue.
pub struct Taken {
    /// The raw body.
    pub body: String,
    /// How many times it has been taken, this time included.
    pub attempts: u32,
    handle: Handle,
}

enum Handle {
    Sqlite(Receipt),
    Sqs(String),
}

/// A queue a worker drains.
#[async_trait]
pub trait QueueConsumer: Send + Sync {
    /// The queue's name, for logs.
    fn name(&self) -> &'static str;
    /// Takes up to `max` entries (may wait briefly for the first).
    async fn take(&self, max: usize) -> Result<Vec<Taken>, QueueError>;
    /// Removes a handled entry.
    async fn ack(&self, taken: &Taken) -> Result<(), QueueError>;
    /// Makes an entry visible again after `after`.
    async fn retry_later(
        &self,
        taken: &Taken,
        after: Duration,
        reason: &str,
    ) -> Result<(), QueueError>;
    /// Gives up on an entry that can never succeed.
    async fn dead_letter(&self, taken: &Taken, reason: &str) -> Result<(), QueueError>;
    /// The message an inbound body carries.
    async fn message(&self, body: &str) -> Result<Message, String>;
    /// The reply job an outbound body carries.
    async fn job(&self, body: &str) -> Result<OutboundJob, String>;
    /// The outgoing event an events body carries.
    async fn event(&self, body: &str) -> Result<OutgoingEvent, String> {
        serde_json::from_str(body).map_err(|e| format!("undecodable queue entry: {e}"))
    }
}

/// One of the embedded queues.
pub struct SqliteConsumer {
    /// The database's queues.
    pub queue: Arc<SqliteQueue>,
    /// Which one.
    pub name: QueueName,
}

#[async_trait]
impl QueueConsumer for SqliteConsumer {
    fn name(&self) -> &'static str {
        self.name.as_str()
    }

    async fn take(&self, max: usize) -> Result<Vec<Taken>, QueueError> {
        Ok(self
            .queue
            .receive(self.name, max, LEASE)
            .await?
            .into_iter()
            .map(|leased| Taken {
                body: leased.body,
                attempts: leased.attempts,
                handle: Handle::Sqlite(leased.receipt),
            })
            .collect())
    }

    async fn ack(&self, taken: &Taken) -> Result<(), QueueError> {
        if let Handle::Sqlite(receipt) = &taken.handle {
            self.queue.ack(receipt).await?;
        }
        Ok(())
    }

    async fn retry_later(
        &self,
        taken: &Taken,
        after: Duration,
        reason: &str,
    ) -> Result<(), QueueError> {
        if let Handle::Sqlite(receipt) = &taken.handle {
            self.queue.retry_later(receipt, after, reason).await?;
        }
        Ok(())
    }

    async fn dead_letter(&self, taken: &Taken, reason: &str) -> Result<(), QueueError> {
        if let Handle::Sqlite(receipt) = &taken.handle {
            self.queue.dead_letter(receipt, reason).await?;
        }
        Ok(())
    }

    async fn message(&self, body: &str) -> Result<Message, String> {
        serde_json::from_str(body).map_err(|e| format!("undecodable queue entry: {e}"))
    }

    async fn job(&self, body: &str) -> Result<OutboundJob, String> {
        serde_json::from_str(body).map_err(|e| format!("undecodable queue entry: {e}"))
    }
}

/// An SQS queue (`--aws`). A dead letter is left to the queue's redrive policy: the entry is
/// made visible at once and moves to the dead-letter queue after `maxReceiveCount` receives.
pub struct SqsConsumer {
    /// The queue.
    pub queue: Arc<SqsQueue>,
    /// `inbound`, `outbound` or `events`.
    pub name: &'static str,
}

#[async_trait]
impl QueueConsumer for SqsConsumer {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn take(&self, max: usize) -> Result<Vec<Taken>, QueueError> {
        Ok(self
            .queue
            .receive(max as i32, Duration::from_secs(1), SQS_VISIBILITY)
            .await?
            .into_iter()
            .map(|received| Taken {
                body: received.body,
                attempts: received.receive_count,
                handle: Handle::Sqs(received.receipt_handle),
            })
            .collect())
    }

    async fn ack(&self, taken: &Taken) -> Result<(), QueueError> {
        match &taken.handle {
            Handle::Sqs(receipt) => self.queue.delete(receipt).await,
            Handle::Sqlite(_) => Ok(()),
        }
    }

    async fn retry_later(
        &self,
        taken: &Taken,
        after: Duration,
        _reason: &str,
    ) -> Result<(), QueueError> {
        match &taken.handle {
            Handle::Sqs(receipt) => self.queue.retry_later(receipt, after).await,
            Handle::Sqlite(_) => Ok(()),
        }
    }

    async fn dead_letter(&self, taken: &Taken, reason: &str) -> Result<(), QueueError> {
        warn!(queue = self.name, %reason, "left to the dead-letter queue's redrive policy");
        self.retry_later(taken, Duration::ZERO, reason).await
    }

    async fn message(&self, body: &str) -> Result<Message, String> {
        self.queue
            .decode_inbound(body)
            .await
            .map_err(|e| e.to_string())
    }

    async fn job(&self, body: &str) -> Result<OutboundJob, String> {
        self.queue
            .decode_outbound(body)
            .await
            .map_err(|e| e.to_string())
    }

    async fn event(&self, body: &str) -> Result<OutgoingEvent, String> {
        self.queue
            .decode_event(body)
            .await
            .map_err(|e| e.to_string())
    }
}
