//! [`DynamoEventLedger`]: the outgoing events' ledger in the tickets table.
//!
//! | item | `pk` | `sk` | holds |
//! |---|---|---|---|
//! | delivery | `EVENT#<event id>` | `DELIVERED#<endpoint key>` | `delivered_at`; put only if absent, so one sender records it |
//! | failed event | `EVENT#<event id>` | `FAILED` | `body` (the `FailedEvent` JSON), `failed_at`; `gsi1pk` = `EVENTS#FAILED`, `gsi1sk` = failure time (20-digit nanoseconds) + id, so the `inbox` index lists them newest first |

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};
use crossdesk_core::events::{EventId, EventLedger, FailedEvent, MAX_FAILED_LIST};
use crossdesk_core::StoreError;

use crate::error::{describe, error_code, is_transient};
use crate::table::{GSI1_PK, GSI1_SK, INBOX_INDEX, PK, SK};

/// The index partition of failed events.
const FAILED_PARTITION: &str = "EVENTS#FAILED";

type Item = HashMap<String, AttributeValue>;

/// The [`EventLedger`] on the tickets table.
#[derive(Debug, Clone)]
pub struct DynamoEventLedger {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoEventLedger {
    /// The ledger on the table `table` (the schema of [`crate::table::create_table`]).
    pub fn new(client: aws_sdk_dynamodb::Client, table: &str) -> Self {
        DynamoEventLedger {
            client,
            table: table.to_string(),
        }
    }
}

fn event_pk(id: &EventId) -> String {
    format!("EVENT#{id}")
}

fn key(pk: String, sk: String) -> Item {
    HashMap::from([
        (PK.to_string(), AttributeValue::S(pk)),
        (SK.to_string(), AttributeValue::S(sk)),
    ])
}

fn sdk_error<E>(operation: &str, err: &SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = format!("DynamoDB {operation}: {}", describe(err));
    if is_transient(err) {
        StoreError::Unavailable(message)
    } else {
        StoreError::Rejected(message)
    }
}

/// The failure time as a sortable key: nanoseconds since the epoch, 20 digits, then the id.
fn failed_sort_key(at: DateTime<Utc>, id: &EventId) -> Result<String, StoreError> {
    let nanos = at
        .timestamp_nanos_opt()
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| StoreError::Rejected(format!("failure time {at} is out of range")))?;
    Ok(format!("{nanos:020}#{id}"))
}

fn decode(item: &Item) -> Result<FailedEvent, StoreError> {
    let body = item
        .get("body")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| StoreError::Corrupt("failed event item without `body`".into()))?;
    serde_json::from_str(body)
        .map_err(|e| StoreError::Corrupt(format!("failed event item `body`: {e}")))
}

#[async_trait]
impl EventLedger for DynamoEventLedger {
    async fn is_delivered(&self, event: &EventId, endpoint_key: &str) -> Result<bool, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(
                event_pk(event),
                format!("DELIVERED#{endpoint_key}"),
            )))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", &e))?;
        Ok(output.item.is_some())
    }

    async fn record_delivered(
        &self,
        event: &EventId,
        endpoint_key: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut item = key(event_pk(event), format!("DELIVERED#{endpoint_key}"));
        item.insert(
            "delivered_at".into(),
            AttributeValue::S(at.to_rfc3339_opts(SecondsFormat::Nanos, true)),
        );
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if error_code(&e) == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(sdk_error("PutItem", &e)),
        }
    }

    async fn record_failed(&self, failed: &FailedEvent) -> Result<(), StoreError> {
        let id = &failed.event.id;
        let body = serde_json::to_string(failed)
            .map_err(|e| StoreError::Rejected(format!("failed event: {e}")))?;
        let mut item = key(event_pk(id), "FAILED".into());
        item.insert("body".into(), AttributeValue::S(body));
        item.insert(
            "failed_at".into(),
            AttributeValue::S(failed.failed_at.to_rfc3339_opts(SecondsFormat::Nanos, true)),
        );
        item.insert(GSI1_PK.into(), AttributeValue::S(FAILED_PARTITION.into()));
        item.insert(
            GSI1_SK.into(),
            AttributeValue::S(failed_sort_key(failed.failed_at, id)?),
        );
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| sdk_error("PutItem", &e))?;
        Ok(())
    }

    async fn failed_events(&self, limit: usize) -> Result<Vec<FailedEvent>, StoreError> {
        let limit = limit.clamp(1, MAX_FAILED_LIST);
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(INBOX_INDEX)
            .key_condition_expression("#gsi1pk = :failed")
            .expression_attribute_names("#gsi1pk", GSI1_PK)
            .expression_attribute_values(":failed", AttributeValue::S(FAILED_PARTITION.into()))
            .scan_index_forward(false)
            .limit(limit as i32)
            .send()
            .await
            .map_err(|e| sdk_error("Query", &e))?;
        output.items().iter().map(decode).collect()
    }

    async fn failed_event(&self, id: &EventId) -> Result<Option<FailedEvent>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(event_pk(id), "FAILED".into())))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", &e))?;
        output.item.as_ref().map(decode).transpose()
    }

    async fn clear_failed(&self, failed: &FailedEvent) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(event_pk(&failed.event.id), "FAILED".into())))
            .condition_expression("#failed_at = :failed_at")
            .expression_attribute_names("#failed_at", "failed_at")
            .expression_attribute_values(
                ":failed_at",
                AttributeValue::S(failed.failed_at.to_rfc3339_opts(SecondsFormat::Nanos, true)),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if error_code(&e) == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(sdk_error("DeleteItem", &e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn failed_sort_keys_order_by_time_then_id() {
        let a = EventId::parse("evt_00000000000000000000000000000001").unwrap();
        let b = EventId::parse("evt_00000000000000000000000000000002").unwrap();
        let early = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let late = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        let keys = [
            failed_sort_key(early, &b).unwrap(),
            failed_sort_key(late, &a).unwrap(),
            failed_sort_key(early, &a).unwrap(),
        ];
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(sorted, [keys[2].clone(), keys[0].clone(), keys[1].clone()]);
    }
}
