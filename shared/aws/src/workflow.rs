//! The working state of tickets and contacts in the tickets table: [`WorkflowStore`] on
//! [`DynamoTicketStore`].
//!
//! | item | `pk` | `sk` | other attributes |
//! | --- | --- | --- | --- |
//! | workflow | `WORKFLOW#<ticket id>` | `WORKFLOW` | `body` (the [`TicketWorkflow`] as JSON), `version`, `contact_id`; `gsi1pk` = `WORKFLOWS#CONTACT#<contact id>`, `gsi1sk` = `<inverted update time>#<ticket id>` |
//! | activity copy | `WORKFLOW#<ticket id>` | `ACTIVITY` | `body`, `version`; `gsi1pk` = `WORKFLOWS#ALL`, `gsi1sk` as above |
//! | awaiting copy | `WORKFLOW#<ticket id>` | `SLA` | `body`, `version`, `contact_id`; `gsi1pk` = `WORKFLOWS#AWAITING`, `gsi1sk` = `<first response due>#<ticket id>`; only while the ticket awaits its first response |
//! | contact links | `CONTACT#<contact id>` | `LINKS` | `merged_into`, `merged_at` while merged into another; `merged` (string set) while others are merged into it |
//! | link suggestion | `CONTACT#<contact id>` | `SUGGEST#<other contact id>` | `other`, `identity`, `at`; one item each way |
//! | agent preferences | `AGENT#<agent id>` | `PREFERENCES` | `body` (JSON); `gsi1pk` = `AGENTS#PREFERENCES`, `gsi1sk` = `AGENT#<agent id>` |
//! | notification window | `WINDOW#<window>` | `WINDOW` | `at`, `expires_at` (epoch seconds, a day later: the TTL attribute where the table has TTL on) |
//! | cursor | `CURSOR#<name>` | `CURSOR` | `value` |
//!
//! - A workflow save is one `TransactWriteItems`: the workflow item, conditioned on its
//!   `version` (or on not existing), with its copies: the activity copy, and the awaiting copy
//!   put or deleted. The `inbox` index then lists a contact's workflows (its own partition), all
//!   of them (`WORKFLOWS#ALL`) newest update first, and the ones awaiting a first response
//!   (`WORKFLOWS#AWAITING`) earliest due first. Index reads are eventually consistent: a list
//!   may lag a save briefly.
//! - A merge is one transaction over both contacts' `LINKS` items, conditioned so that neither
//!   merges nor unmerges race into a chain: the source must not be merged nor have merges, the
//!   target must not be merged. A lost condition is read again and decided anew.
//! - A window claim is a put conditioned on no live claim (absent, or expired a day after it
//!   was made).

use std::collections::{BTreeSet, HashMap};
use std::fmt::Display;
use std::ops::ControlFlow;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use chrono::{DateTime, TimeDelta, Utc};
use crossdesk_core::workflow::{
    AgentPreferences, ContactLinks, LinkSuggestion, MergeOutcome, TicketWorkflow, Versioned,
    WorkflowQuery, WorkflowStore,
};
use crossdesk_core::{ContactId, Identity, StoreError, TicketId, MAX_LIST_LIMIT};

use crate::dynamo::{
    backoff, built, conflict, contact_pk, key, n, query_all, s, sdk_error, sortable_nanos,
    timestamp, DynamoTicketStore, MAX_ATTEMPTS,
};
use crate::error::error_code;
use crate::table::{GSI1_PK, GSI1_SK, INBOX_INDEX, PK, SK};

type Item = HashMap<String, AttributeValue>;

const WORKFLOW_SK: &str = "WORKFLOW";
const ACTIVITY_SK: &str = "ACTIVITY";
const AWAITING_SK: &str = "SLA";
const ALL_PARTITION: &str = "WORKFLOWS#ALL";
const AWAITING_PARTITION: &str = "WORKFLOWS#AWAITING";
const LINKS_SK: &str = "LINKS";
const SUGGESTION_PREFIX: &str = "SUGGEST#";
const AGENTS_PARTITION: &str = "AGENTS#PREFERENCES";

/// How long a claimed notification window is remembered.
const WINDOW_MEMORY: TimeDelta = TimeDelta::days(1);

// ---------------------------------------------------------------------------------------------
// Keys and values

fn workflow_pk(ticket: &TicketId) -> String {
    format!("WORKFLOW#{ticket}")
}

fn contact_partition(contact: &str) -> String {
    format!("WORKFLOWS#CONTACT#{contact}")
}

/// Most recent update first, then by ticket id.
fn activity_sk(updated_at: DateTime<Utc>, ticket: &TicketId) -> Result<String, StoreError> {
    Ok(format!(
        "{:020}#{ticket}",
        u64::MAX - sortable_nanos(updated_at)?
    ))
}

/// Earliest due first, then by ticket id.
fn due_sk(due: DateTime<Utc>, ticket: &TicketId) -> Result<String, StoreError> {
    Ok(format!("{:020}#{ticket}", sortable_nanos(due)?))
}

fn corrupt(what: impl Display) -> StoreError {
    StoreError::Corrupt(format!("workflow store item: {what}"))
}

fn text<'a>(item: &'a Item, name: &str) -> Result<Option<&'a str>, StoreError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::S(v)) => Ok(Some(v)),
        Some(_) => Err(corrupt(format_args!("`{name}` is not a string"))),
    }
}

fn required<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    text(item, name)?.ok_or_else(|| corrupt(format_args!("`{name}` is missing")))
}

fn body<T: serde::de::DeserializeOwned>(item: &Item) -> Result<T, StoreError> {
    serde_json::from_str(required(item, "body")?).map_err(|e| corrupt(format_args!("`body`: {e}")))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Rejected(format!("cannot serialize: {e}")))
}

fn version(item: &Item) -> Result<u64, StoreError> {
    match item.get("version") {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| corrupt(format_args!("`version` {v} is not a count"))),
        _ => Err(corrupt("`version` is missing")),
    }
}

fn contact_id(value: &str) -> Result<ContactId, StoreError> {
    ContactId::parse(value).map_err(|e| corrupt(format_args!("contact id {value}: {e}")))
}

fn time(item: &Item, name: &str) -> Result<DateTime<Utc>, StoreError> {
    let value = required(item, name)?;
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| corrupt(format_args!("`{name}`: {e}")))
}

/// The contacts of a string set (absent or empty: none), sorted.
fn contact_set(item: &Item, name: &str) -> Result<Vec<ContactId>, StoreError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(Vec::new()),
        Some(AttributeValue::Ss(ids)) => {
            let mut out = ids
                .iter()
                .map(|id| contact_id(id))
                .collect::<Result<Vec<_>, _>>()?;
            out.sort();
            Ok(out)
        }
        Some(_) => Err(corrupt(format_args!("`{name}` is not a string set"))),
    }
}

// ---------------------------------------------------------------------------------------------
// Errors and retries

/// How a transaction ended, when DynamoDB answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Commit {
    /// Every write was applied.
    Done,
    /// Nothing was applied: a condition failed.
    ConditionFailed,
    /// Nothing was applied: a concurrent transaction or throttling got in the way.
    Contended,
}

/// The attribute names the expressions use, by placeholder (`#pk`, `#version`, …).
fn names() -> HashMap<String, String> {
    [
        ("#pk", PK),
        ("#version", "version"),
        ("#merged", "merged"),
        ("#merged_into", "merged_into"),
        ("#merged_at", "merged_at"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Only the placeholders `expressions` use (DynamoDB refuses unused ones).
fn names_in(expressions: &[&str]) -> HashMap<String, String> {
    names()
        .into_iter()
        .filter(|(placeholder, _)| {
            expressions.iter().any(|e| {
                e.match_indices(placeholder.as_str()).any(|(i, _)| {
                    !e[i + placeholder.len()..]
                        .starts_with(|c: char| c.is_alphanumeric() || c == '_')
                })
            })
        })
        .collect()
}

fn put(
    table: &str,
    item: Item,
    condition: Option<(&str, Item)>,
) -> Result<TransactWriteItem, StoreError> {
    let mut put = Put::builder().table_name(table).set_item(Some(item));
    if let Some((expression, values)) = condition {
        put = put
            .condition_expression(expression)
            .set_expression_attribute_names(Some(names_in(&[expression])))
            .set_expression_attribute_values((!values.is_empty()).then_some(values));
    }
    Ok(TransactWriteItem::builder()
        .put(built(put.build())?)
        .build())
}

fn update(
    table: &str,
    key: Item,
    expression: &str,
    condition: &str,
    values: Item,
) -> Result<TransactWriteItem, StoreError> {
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(key))
        .update_expression(expression)
        .condition_expression(condition)
        .set_expression_attribute_names(Some(names_in(&[expression, condition])))
        .set_expression_attribute_values((!values.is_empty()).then_some(values));
    Ok(TransactWriteItem::builder()
        .update(built(update.build())?)
        .build())
}

impl DynamoTicketStore {
    /// Applies the writes all or nothing.
    async fn transact(&self, writes: Vec<TransactWriteItem>) -> Result<Commit, StoreError> {
        let result = self
            .client()
            .transact_write_items()
            .set_transact_items(Some(writes))
            .client_request_token(uuid::Uuid::now_v7().to_string())
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(Commit::Done),
            Err(err) => err,
        };
        let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
            err.as_service_error()
        else {
            return Err(sdk_error("TransactWriteItems", &err));
        };
        let mut outcome = Commit::Contended;
        for (index, reason) in cancelled.cancellation_reasons().iter().enumerate() {
            match reason.code() {
                None | Some("None") => {}
                Some("ConditionalCheckFailed") => outcome = Commit::ConditionFailed,
                Some(
                    "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded",
                ) => {}
                Some(code) => {
                    return Err(StoreError::Rejected(format!(
                        "transaction cancelled: write {index}: {code}: {}",
                        reason.message().unwrap_or("")
                    )))
                }
            }
        }
        Ok(outcome)
    }

    /// Reads one item, strongly consistent.
    async fn get_item(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        Ok(self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", &e))?
            .item)
    }

    /// Up to `limit` items of one `inbox` index partition in index order with their sort keys,
    /// at most `bound` (inclusive) when given, keeping only those `keep` accepts.
    async fn index_items(
        &self,
        partition: &str,
        bound: Option<String>,
        limit: usize,
        keep: impl Fn(&Item) -> Result<bool, StoreError>,
        filtered: bool,
    ) -> Result<Vec<(String, Item)>, StoreError> {
        let query = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(INBOX_INDEX)
            .expression_attribute_names("#gsi1pk", GSI1_PK)
            .expression_attribute_values(":partition", s(partition))
            .scan_index_forward(true);
        let query = match &bound {
            Some(bound) => query
                .key_condition_expression("#gsi1pk = :partition AND #gsi1sk <= :bound")
                .expression_attribute_names("#gsi1sk", GSI1_SK)
                .expression_attribute_values(":bound", s(bound.clone())),
            None => query.key_condition_expression("#gsi1pk = :partition"),
        };
        // Unfiltered, every item read is a result: read no more than needed.
        let read_at_most = (!filtered).then_some(limit);
        let mut found = Vec::new();
        query_all(query, read_at_most, |item| {
            if keep(item)? {
                found.push((required(item, GSI1_SK)?.to_string(), item.clone()));
                if found.len() == limit {
                    return Ok(ControlFlow::Break(()));
                }
            }
            Ok(ControlFlow::Continue(()))
        })
        .await?;
        Ok(found)
    }

    /// A contact's `LINKS` item (empty when none).
    async fn links_item(&self, contact: &ContactId) -> Result<Item, StoreError> {
        Ok(self
            .get_item(contact_pk(contact), LINKS_SK)
            .await?
            .unwrap_or_default())
    }

    /// One try of a merge: decided, or `None` when a race was lost.
    async fn try_merge(
        &self,
        source: &ContactId,
        target: &ContactId,
        at: DateTime<Utc>,
    ) -> Result<Option<MergeOutcome>, StoreError> {
        let (source_links, target_links) =
            tokio::try_join!(self.links_item(source), self.links_item(target))?;
        match text(&source_links, "merged_into")? {
            Some(current) if current == target.as_str() => {
                return Ok(Some(MergeOutcome::AlreadyMerged))
            }
            Some(_) => return Ok(Some(MergeOutcome::MergedElsewhere)),
            None => {}
        }
        if text(&target_links, "merged_into")?.is_some()
            || !contact_set(&source_links, "merged")?.is_empty()
        {
            return Ok(Some(MergeOutcome::Refused));
        }
        let writes = vec![
            update(
                self.table(),
                key(contact_pk(source), LINKS_SK),
                "SET #merged_into = :target, #merged_at = :at",
                "attribute_not_exists(#merged_into) \
                 AND (attribute_not_exists(#merged) OR size(#merged) = :zero)",
                HashMap::from([
                    (":target".to_string(), s(target.as_str())),
                    (":at".to_string(), s(timestamp(at))),
                    (":zero".to_string(), n(0)),
                ]),
            )?,
            update(
                self.table(),
                key(contact_pk(target), LINKS_SK),
                "ADD #merged :source",
                "attribute_not_exists(#merged_into)",
                HashMap::from([(
                    ":source".to_string(),
                    AttributeValue::Ss(vec![source.to_string()]),
                )]),
            )?,
        ];
        Ok(match self.transact(writes).await? {
            Commit::Done => Some(MergeOutcome::Merged),
            Commit::ConditionFailed | Commit::Contended => None,
        })
    }

    /// One try of an unmerge: decided, or `None` when a race was lost.
    async fn try_unmerge(&self, source: &ContactId) -> Result<Option<bool>, StoreError> {
        let links = self.links_item(source).await?;
        let Some(target) = text(&links, "merged_into")? else {
            return Ok(Some(false));
        };
        let target = contact_id(target)?;
        let writes = vec![
            update(
                self.table(),
                key(contact_pk(source), LINKS_SK),
                "REMOVE #merged_into, #merged_at",
                "#merged_into = :target",
                HashMap::from([(":target".to_string(), s(target.as_str()))]),
            )?,
            update(
                self.table(),
                key(contact_pk(&target), LINKS_SK),
                "DELETE #merged :source",
                "attribute_exists(#merged)",
                HashMap::from([(
                    ":source".to_string(),
                    AttributeValue::Ss(vec![source.to_string()]),
                )]),
            )?,
        ];
        Ok(match self.transact(writes).await? {
            Commit::Done => Some(true),
            Commit::ConditionFailed | Commit::Contended => None,
        })
    }
}

/// The workflow's items: the workflow itself, its activity copy, and its awaiting copy when it
/// awaits a first response.
fn workflow_items(
    workflow: &TicketWorkflow,
    version: u64,
) -> Result<(Item, Item, Option<Item>), StoreError> {
    let ticket = &workflow.ticket_id;
    let body = encode(workflow)?;
    let activity = activity_sk(workflow.updated_at, ticket)?;
    let copy = |sk: &str, partition: String, sort: String| {
        let mut item = key(workflow_pk(ticket), sk);
        item.extend([
            ("body".to_string(), s(body.clone())),
            ("version".to_string(), n(version)),
            ("contact_id".to_string(), s(workflow.contact_id.as_str())),
            (GSI1_PK.to_string(), s(partition)),
            (GSI1_SK.to_string(), s(sort)),
        ]);
        item
    };
    let main = copy(
        WORKFLOW_SK,
        contact_partition(workflow.contact_id.as_str()),
        activity.clone(),
    );
    let all = copy(ACTIVITY_SK, ALL_PARTITION.to_string(), activity);
    let awaiting = match workflow.sla.awaiting_first_response() {
        Some(due) => Some(copy(
            AWAITING_SK,
            AWAITING_PARTITION.to_string(),
            due_sk(due, ticket)?,
        )),
        None => None,
    };
    Ok((main, all, awaiting))
}

#[async_trait]
impl WorkflowStore for DynamoTicketStore {
    async fn workflow(
        &self,
        ticket: &TicketId,
    ) -> Result<Option<Versioned<TicketWorkflow>>, StoreError> {
        match self.get_item(workflow_pk(ticket), WORKFLOW_SK).await? {
            Some(item) => Ok(Some(Versioned {
                value: body(&item)?,
                version: version(&item)?,
            })),
            None => Ok(None),
        }
    }

    async fn save_workflow(
        &self,
        workflow: &TicketWorkflow,
        expected: Option<u64>,
    ) -> Result<bool, StoreError> {
        let next = match expected {
            None => 1,
            Some(v) => v
                .checked_add(1)
                .ok_or_else(|| StoreError::Rejected(format!("version {v} is out of range")))?,
        };
        let (main, all, awaiting) = workflow_items(workflow, next)?;
        let condition = match expected {
            None => ("attribute_not_exists(#pk)", Item::new()),
            Some(v) => (
                "attribute_exists(#pk) AND #version = :expected",
                HashMap::from([(":expected".to_string(), n(v))]),
            ),
        };
        let table = self.table();
        let mut writes = vec![put(table, main, Some(condition))?, put(table, all, None)?];
        writes.push(match awaiting {
            Some(item) => put(table, item, None)?,
            None => {
                let delete = Delete::builder()
                    .table_name(table)
                    .set_key(Some(key(workflow_pk(&workflow.ticket_id), AWAITING_SK)));
                TransactWriteItem::builder()
                    .delete(built(delete.build())?)
                    .build()
            }
        });
        for attempt in 1..=MAX_ATTEMPTS {
            match self.transact(writes.clone()).await? {
                Commit::Done => return Ok(true),
                Commit::ConditionFailed => return Ok(false),
                Commit::Contended => backoff(attempt).await,
            }
        }
        Err(conflict(format_args!(
            "saving the workflow of {}",
            workflow.ticket_id
        )))
    }

    async fn list_workflows(
        &self,
        query: &WorkflowQuery,
    ) -> Result<Vec<TicketWorkflow>, StoreError> {
        let limit = query.limit.clamp(1, MAX_LIST_LIMIT);
        let contacts: BTreeSet<&str> = query.contacts.iter().map(ContactId::as_str).collect();
        let found = if let Some(before) = query.first_response_due_before {
            // `~` sorts after every ticket id: a due time equal to the bound is included.
            let bound = format!("{:020}#~", sortable_nanos(before)?);
            let of_contacts = |item: &Item| -> Result<bool, StoreError> {
                Ok(contacts.is_empty() || contacts.contains(required(item, "contact_id")?))
            };
            self.index_items(
                AWAITING_PARTITION,
                Some(bound),
                limit,
                of_contacts,
                !contacts.is_empty(),
            )
            .await?
        } else if contacts.is_empty() {
            self.index_items(ALL_PARTITION, None, limit, |_| Ok(true), false)
                .await?
        } else {
            // One query per contact (each lists its newest first), merged.
            let mut found = Vec::new();
            for contact in &contacts {
                found.extend(
                    self.index_items(
                        &contact_partition(contact),
                        None,
                        limit,
                        |_| Ok(true),
                        false,
                    )
                    .await?,
                );
            }
            found.sort_by(|a, b| a.0.cmp(&b.0));
            found.truncate(limit);
            found
        };
        found.iter().map(|(_, item)| body(item)).collect()
    }

    async fn contact_links(&self, contact: &ContactId) -> Result<ContactLinks, StoreError> {
        let query = self
            .client()
            .query()
            .table_name(self.table())
            .key_condition_expression("#pk = :pk AND #sk >= :links")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(contact_pk(contact)))
            .expression_attribute_values(":links", s(LINKS_SK))
            .consistent_read(true);
        let mut links = ContactLinks::default();
        query_all(query, None, |item| {
            let sk = required(item, SK)?;
            if sk == LINKS_SK {
                links.merged_into = text(item, "merged_into")?.map(contact_id).transpose()?;
                links.merged = contact_set(item, "merged")?;
            } else if sk.starts_with(SUGGESTION_PREFIX) {
                links.suggestions.push(LinkSuggestion {
                    contact_id: contact_id(required(item, "other")?)?,
                    identity: Identity(required(item, "identity")?.to_string()),
                    at: time(item, "at")?,
                });
            }
            Ok(ControlFlow::Continue(()))
        })
        .await?;
        links
            .suggestions
            .sort_by(|a, b| (a.at, &a.contact_id).cmp(&(b.at, &b.contact_id)));
        Ok(links)
    }

    async fn merge_contacts(
        &self,
        source: &ContactId,
        target: &ContactId,
        at: DateTime<Utc>,
    ) -> Result<MergeOutcome, StoreError> {
        if source == target {
            return Ok(MergeOutcome::Refused);
        }
        for attempt in 1..=MAX_ATTEMPTS {
            if let Some(outcome) = self.try_merge(source, target, at).await? {
                return Ok(outcome);
            }
            backoff(attempt).await;
        }
        Err(conflict(format_args!("merging {source} into {target}")))
    }

    async fn unmerge_contact(&self, source: &ContactId) -> Result<bool, StoreError> {
        for attempt in 1..=MAX_ATTEMPTS {
            if let Some(unmerged) = self.try_unmerge(source).await? {
                return Ok(unmerged);
            }
            backoff(attempt).await;
        }
        Err(conflict(format_args!("unmerging {source}")))
    }

    async fn suggest_link(
        &self,
        contact: &ContactId,
        suggestion: &LinkSuggestion,
    ) -> Result<(), StoreError> {
        let other = &suggestion.contact_id;
        if contact == other {
            return Ok(());
        }
        // Two independent puts, each only if absent: a retry after a failure in between
        // completes the pair and keeps what is stored.
        for (one, two) in [(contact, other), (other, contact)] {
            let mut item = key(contact_pk(one), &format!("{SUGGESTION_PREFIX}{two}"));
            item.extend([
                ("other".to_string(), s(two.as_str())),
                ("identity".to_string(), s(suggestion.identity.as_str())),
                ("at".to_string(), s(timestamp(suggestion.at))),
            ]);
            let result = self
                .client()
                .put_item()
                .table_name(self.table())
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
                .send()
                .await;
            match result {
                Ok(_) => {}
                Err(e) if error_code(&e) == Some("ConditionalCheckFailedException") => {}
                Err(e) => return Err(sdk_error("PutItem", &e)),
            }
        }
        Ok(())
    }

    async fn agent_preferences(
        &self,
        agent_id: &str,
    ) -> Result<Option<AgentPreferences>, StoreError> {
        self.get_item(format!("AGENT#{agent_id}"), "PREFERENCES")
            .await?
            .map(|item| body(&item))
            .transpose()
    }

    async fn save_agent_preferences(&self, prefs: &AgentPreferences) -> Result<(), StoreError> {
        let mut item = key(format!("AGENT#{}", prefs.agent_id), "PREFERENCES");
        item.extend([
            ("body".to_string(), s(encode(prefs)?)),
            (GSI1_PK.to_string(), s(AGENTS_PARTITION)),
            (GSI1_SK.to_string(), s(format!("AGENT#{}", prefs.agent_id))),
        ]);
        self.client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| sdk_error("PutItem", &e))?;
        Ok(())
    }

    async fn list_agent_preferences(&self) -> Result<Vec<AgentPreferences>, StoreError> {
        let query = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(INBOX_INDEX)
            .key_condition_expression("#gsi1pk = :agents")
            .expression_attribute_names("#gsi1pk", GSI1_PK)
            .expression_attribute_values(":agents", s(AGENTS_PARTITION));
        let mut all = Vec::new();
        query_all(query, None, |item| {
            all.push(body(item)?);
            Ok(ControlFlow::Continue(()))
        })
        .await?;
        Ok(all)
    }

    async fn claim_window(&self, window: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let expires_at = (at + WINDOW_MEMORY).timestamp();
        let mut item = key(format!("WINDOW#{window}"), "WINDOW");
        item.extend([
            ("at".to_string(), s(timestamp(at))),
            ("expires_at".to_string(), n(expires_at)),
        ]);
        let result = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk) OR #expires_at < :now")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#expires_at", "expires_at")
            .expression_attribute_values(":now", n(at.timestamp()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if error_code(&e) == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(sdk_error("PutItem", &e)),
        }
    }

    async fn cursor(&self, name: &str) -> Result<Option<String>, StoreError> {
        match self.get_item(format!("CURSOR#{name}"), "CURSOR").await? {
            Some(item) => Ok(Some(required(&item, "value")?.to_string())),
            None => Ok(None),
        }
    }

    async fn save_cursor(&self, name: &str, value: &str) -> Result<(), StoreError> {
        let mut item = key(format!("CURSOR#{name}"), "CURSOR");
        item.insert("value".to_string(), s(value));
        self.client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| sdk_error("PutItem", &e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crossdesk_core::ChannelKind;

    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn activity_keys_list_the_latest_update_first_and_due_keys_the_earliest_due_first() {
        let (a, b) = (TicketId::generate(), TicketId::generate());
        assert!(activity_sk(at(10), &a).unwrap() < activity_sk(at(5), &b).unwrap());
        assert!(due_sk(at(5), &a).unwrap() < due_sk(at(10), &b).unwrap());
        let bound = format!("{:020}#~", sortable_nanos(at(5)).unwrap());
        assert!(due_sk(at(5), &a).unwrap() <= bound);
        assert!(due_sk(at(6), &a).unwrap() > bound);
    }

    #[test]
    fn only_a_workflow_awaiting_its_first_response_has_an_awaiting_copy() {
        let mut w = TicketWorkflow::new(
            TicketId::generate(),
            ContactId::generate(),
            ChannelKind::Email,
            at(0),
        );
        assert!(workflow_items(&w, 1).unwrap().2.is_none());
        w.sla.first_response_due = Some(at(60));
        let (main, all, awaiting) = workflow_items(&w, 2).unwrap();
        let awaiting = awaiting.expect("awaiting copy");
        assert_eq!(body::<TicketWorkflow>(&awaiting).unwrap(), w);
        assert_eq!(version(&all).unwrap(), 2);
        assert_eq!(
            required(&main, GSI1_PK).unwrap(),
            contact_partition(w.contact_id.as_str())
        );
        w.sla.first_response_at = Some(at(30));
        assert!(workflow_items(&w, 3).unwrap().2.is_none());
    }
}
