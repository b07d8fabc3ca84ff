//! [`SqliteEventLedger`]: which endpoint has which outgoing event, and the events given up on
//! (tables `event_deliveries` and `failed_events`); and the `events` queue of [`SqliteQueue`].

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crossdesk_core::events::{
    EventId, EventLedger, EventQueue, FailedEvent, OutgoingEvent, MAX_FAILED_LIST,
};
use crossdesk_core::{QueueError, StoreError};
use rusqlite::{params, OptionalExtension};

use crate::db::{encode, to_nanos, Database};
use crate::queue::{QueueName, SqliteQueue};

/// The [`EventLedger`] in the SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteEventLedger {
    db: Database,
}

impl SqliteEventLedger {
    /// The ledger in an opened database (shared with the store and the queues).
    pub fn new(db: Database) -> Self {
        SqliteEventLedger { db }
    }

    /// The ledger as a shared port.
    pub fn shared(db: Database) -> Arc<dyn EventLedger> {
        Arc::new(SqliteEventLedger::new(db))
    }
}

#[async_trait]
impl EventLedger for SqliteEventLedger {
    async fn is_delivered(&self, event: &EventId, endpoint_key: &str) -> Result<bool, StoreError> {
        let (event, endpoint) = (event.to_string(), endpoint_key.to_string());
        Ok(self
            .db
            .call(move |conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT 1 FROM event_deliveries WHERE event_id = ?1 AND endpoint = ?2",
                    )?
                    .exists(params![event, endpoint])?)
            })
            .await?)
    }

    async fn record_delivered(
        &self,
        event: &EventId,
        endpoint_key: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (event, endpoint) = (event.to_string(), endpoint_key.to_string());
        let at = to_nanos(at)?;
        Ok(self
            .db
            .write(move |conn| {
                let inserted = conn
                    .prepare_cached(
                        "INSERT INTO event_deliveries (event_id, endpoint, delivered_at) \
                         VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                    )?
                    .execute(params![event, endpoint, at])?;
                Ok(inserted == 1)
            })
            .await?)
    }

    async fn record_failed(&self, failed: &FailedEvent) -> Result<(), StoreError> {
        let id = failed.event.id.to_string();
        let body = encode(failed)?;
        let at = to_nanos(failed.failed_at)?;
        Ok(self
            .db
            .write(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO failed_events (event_id, body, failed_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (event_id) DO UPDATE SET body = ?2, failed_at = ?3",
                )?
                .execute(params![id, body, at])?;
                Ok(())
            })
            .await?)
    }

    async fn failed_events(&self, limit: usize) -> Result<Vec<FailedEvent>, StoreError> {
        let limit = limit.min(MAX_FAILED_LIST) as i64;
        Ok(self
            .db
            .call(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT body FROM failed_events ORDER BY failed_at DESC, event_id LIMIT ?1",
                )?;
                let bodies = stmt
                    .query_map(params![limit], |row| row.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()?;
                let mut out = Vec::with_capacity(bodies.len());
                for body in bodies {
                    out.push(serde_json::from_str(&body)?);
                }
                Ok(out)
            })
            .await?)
    }

    async fn failed_event(&self, id: &EventId) -> Result<Option<FailedEvent>, StoreError> {
        let id = id.to_string();
        Ok(self
            .db
            .call(move |conn| {
                let body: Option<String> = conn
                    .prepare_cached("SELECT body FROM failed_events WHERE event_id = ?1")?
                    .query_row(params![id], |row| row.get(0))
                    .optional()?;
                Ok(match body {
                    Some(body) => Some(serde_json::from_str(&body)?),
                    None => None,
                })
            })
            .await?)
    }

    async fn clear_failed(&self, failed: &FailedEvent) -> Result<bool, StoreError> {
        let id = failed.event.id.to_string();
        let at = to_nanos(failed.failed_at)?;
        Ok(self
            .db
            .write(move |conn| {
                let deleted = conn
                    .prepare_cached(
                        "DELETE FROM failed_events WHERE event_id = ?1 AND failed_at = ?2",
                    )?
                    .execute(params![id, at])?;
                Ok(deleted == 1)
            })
            .await?)
    }
}

#[async_trait]
impl EventQueue for SqliteQueue {
    async fn publish(&self, event: &OutgoingEvent) -> Result<(), QueueError> {
        self.push(QueueName::Events, vec![encode(event)?]).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crossdesk_core::events::EventType;
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn published_events_are_received_from_the_events_queue_only() {
        let queue = SqliteQueue::in_memory().unwrap();
        let event = OutgoingEvent {
            id: EventId::derive(EventType::MessageCreated, &["msg_1"]),
            kind: EventType::MessageCreated,
            created_at: Utc::now(),
            data: json!({"ticket_id": "K3F9Q2XA"}),
        };
        queue.publish(&event).await.unwrap();
        queue.publish(&event).await.unwrap();
        assert_eq!(queue.depth(QueueName::Events).await.unwrap(), 2);
        assert_eq!(queue.depth(QueueName::Outbound).await.unwrap(), 0);
        let leased = queue
            .receive(QueueName::Events, 10, Duration::from_secs(30))
            .await
            .unwrap();
        assert_eq!(leased.len(), 2);
        assert_eq!(leased[0].decode::<OutgoingEvent>().unwrap(), event);
        assert_eq!(leased[0].queue, QueueName::Events);
    }
}
