//! The channel health state in the ticket table: [`ChannelHealthStore`] on
//! [`DynamoTicketStore`].
//!
//! | item | `pk` | `sk` | other attributes |
//! | --- | --- | --- | --- |
//! | channel state | `CHANNEL#<channel>` | `STATE` | `last_inbound_at`; `reauth_code`, `reauth_reason`, `reauth_at` while the channel needs re-authorization |
//! | check result | `CHANNEL#<channel>` | `CHECK#<check name>` | `check`, `status`, `reason`, `checked_at` |
//!
//! Times are fixed-width RFC 3339 UTC with nanoseconds, so DynamoDB compares them as strings in
//! the order of time. Every write is one conditional `UpdateItem`/`PutItem` that only moves a
//! time forward; one query reads a channel's items.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};
use crossdesk_core::health::{
    ChannelHealthStore, ChannelState, CheckResult, CheckStatus, Reauthorization,
};
use crossdesk_core::{ChannelKind, StoreError};

use crate::dynamo::DynamoTicketStore;
use crate::error::{describe, error_code, is_transient};
use crate::table::{PK, SK};

type Item = HashMap<String, AttributeValue>;

const STATE_SK: &str = "STATE";
const CHECK_PREFIX: &str = "CHECK#";

fn channel_pk(channel: ChannelKind) -> String {
    format!("CHANNEL#{channel}")
}

/// A time as stored: sortable as a string (years 1000 to 9999).
fn time(at: DateTime<Utc>) -> AttributeValue {
    AttributeValue::S(at.to_rfc3339_opts(SecondsFormat::Nanos, true))
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn key(channel: ChannelKind, sk: &str) -> Item {
    HashMap::from([
        (PK.to_string(), s(channel_pk(channel))),
        (SK.to_string(), s(sk)),
    ])
}

/// A failed call: `Ok(false)` when only its condition failed.
fn outcome<E>(
    operation: &str,
    result: Result<impl Sized, SdkError<E, HttpResponse>>,
) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if error_code(&e) == Some("ConditionalCheckFailedException") => Ok(false),
        Err(e) => Err(failure(operation, &e)),
    }
}

/// A failed SDK call: retryable when transient, else the request itself was refused.
fn failure<E>(operation: &str, e: &SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = format!("DynamoDB {operation}: {}", describe(e));
    if is_transient(e) {
        StoreError::Unavailable(message)
    } else {
        StoreError::Rejected(message)
    }
}

fn corrupt(sk: &str, what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("channel health item {sk}: {what}"))
}

fn text(item: &Item, sk: &str, name: &str) -> Result<Option<String>, StoreError> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::S(v)) => Ok(Some(v.clone())),
        Some(_) => Err(corrupt(sk, format_args!("`{name}` is not a string"))),
    }
}

fn parsed_time(item: &Item, sk: &str, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    text(item, sk, name)?
        .map(|v| {
            DateTime::parse_from_rfc3339(&v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| corrupt(sk, format_args!("`{name}`: {e}")))
        })
        .transpose()
}

fn required<T>(value: Option<T>, sk: &str, name: &str) -> Result<T, StoreError> {
    value.ok_or_else(|| corrupt(sk, format_args!("`{name}` is missing")))
}

#[async_trait]
impl ChannelHealthStore for DynamoTicketStore {
    async fn channel_state(&self, channel: ChannelKind) -> Result<ChannelState, StoreError> {
        let mut state = ChannelState::default();
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .client()
                .query()
                .table_name(self.table())
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":pk", s(channel_pk(channel)))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| failure("Query", &e))?;
            for item in output.items.unwrap_or_default() {
                let sk = text(&item, "?", SK)?.unwrap_or_default();
                if sk == STATE_SK {
                    state.last_inbound_at = parsed_time(&item, &sk, "last_inbound_at")?;
                    if let Some(at) = parsed_time(&item, &sk, "reauth_at")? {
                        state.reauthorization = Some(Reauthorization {
                            code: required(text(&item, &sk, "reauth_code")?, &sk, "reauth_code")?,
                            reason: text(&item, &sk, "reauth_reason")?.unwrap_or_default(),
                            at,
                        });
                    }
                } else if sk.starts_with(CHECK_PREFIX) {
                    let status = required(text(&item, &sk, "status")?, &sk, "status")?;
                    state.checks.push(CheckResult {
                        check: required(text(&item, &sk, "check")?, &sk, "check")?,
                        status: CheckStatus::parse(&status)
                            .ok_or_else(|| corrupt(&sk, format_args!("unknown status {status}")))?,
                        reason: text(&item, &sk, "reason")?.unwrap_or_default(),
                        checked_at: required(
                            parsed_time(&item, &sk, "checked_at")?,
                            &sk,
                            "checked_at",
                        )?,
                    });
                }
            }
            match output.last_evaluated_key {
                Some(last) if !last.is_empty() => start = Some(last),
                _ => break,
            }
        }
        state.checks.sort_by(|a, b| a.check.cmp(&b.check));
        Ok(state)
    }

    async fn record_inbound(
        &self,
        channel: ChannelKind,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key(channel, STATE_SK)))
            .update_expression("SET last_inbound_at = :at")
            .condition_expression("attribute_not_exists(last_inbound_at) OR last_inbound_at < :at")
            .expression_attribute_values(":at", time(at))
            .send()
            .await;
        // A lost condition means a later time is stored already.
        outcome("UpdateItem", result).map(|_| ())
    }

    async fn record_check(
        &self,
        channel: ChannelKind,
        result: &CheckResult,
    ) -> Result<(), StoreError> {
        let mut item = key(channel, &format!("{CHECK_PREFIX}{}", result.check));
        item.insert("check".into(), s(&result.check));
        item.insert("status".into(), s(result.status.as_str()));
        item.insert("reason".into(), s(&result.reason));
        item.insert("checked_at".into(), time(result.checked_at));
        let put = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(checked_at) OR checked_at <= :at")
            .expression_attribute_values(":at", time(result.checked_at))
            .send()
            .await;
        outcome("PutItem", put).map(|_| ())
    }

    async fn mark_reauthorization(
        &self,
        channel: ChannelKind,
        mark: &Reauthorization,
    ) -> Result<(), StoreError> {
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key(channel, STATE_SK)))
            .update_expression("SET reauth_code = :code, reauth_reason = :reason, reauth_at = :at")
            .condition_expression("attribute_not_exists(reauth_at) OR reauth_at <= :at")
            .expression_attribute_values(":code", s(&mark.code))
            .expression_attribute_values(":reason", s(&mark.reason))
            .expression_attribute_values(":at", time(mark.at))
            .send()
            .await;
        outcome("UpdateItem", result).map(|_| ())
    }

    async fn clear_reauthorization(
        &self,
        channel: ChannelKind,
        succeeded_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key(channel, STATE_SK)))
            .update_expression("REMOVE reauth_code, reauth_reason, reauth_at")
            .condition_expression("reauth_at <= :at")
            .expression_attribute_values(":at", time(succeeded_at))
            .send()
            .await;
        outcome("UpdateItem", result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_times_sort_like_the_time() {
        let a = DateTime::from_timestamp(1_700_000_000, 5).unwrap();
        let b = DateTime::from_timestamp(1_700_000_000, 40_000_000).unwrap();
        let c = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let texts: Vec<String> = [a, b, c]
            .iter()
            .map(|t| time(*t).as_s().unwrap().clone())
            .collect();
        let mut sorted = texts.clone();
        sorted.sort();
        assert_eq!(texts, sorted);
    }
}
