//! [`DynamoTicketStore`]: the ticket store on one DynamoDB table (schema in [`crate::table`]).
//!
//! # Item layout
//!
//! One table holds everything (single-table design):
//!
//! | item | `pk` | `sk` | other attributes |
//! | --- | --- | --- | --- |
//! | ticket | `TICKET#<ticket id>` | `TICKET` | the ticket's fields (`related_tickets` a list, absent when empty), `version`; `gsi1pk` = `INBOX#<status>`, `gsi1sk` = `<inverted last activity>#<ticket id>` |
//! | message | `TICKET#<ticket id>` | `MSG#<sent_at>#<seq>` | `message` (the [`Message`] as JSON), `message_id`, `version`, `revised_at` |
//! | conversation claim | `CONV#<conversation key>` | `CONV` | `ticket_id` |
//! | platform message | `PLATFORM#<channel>:<platform id>` | `PLATFORM` | `ticket_id`, `message_id`, `message_sk` |
//! | message id | `MSGID#<message id>` | `MSGID` | `ticket_id`, `message_id`, `message_sk` |
//! | contact | `CONTACT#<contact id>` | `CONTACT` | `name`, `created_at`, `identities` (in the order claimed) |
//! | identity | `IDENTITY#<identity>` | `IDENTITY` | `contact_id`, `contact_created_at` |
//!
//! - A ticket's messages share its partition, sorted by platform time (`sent_at` as RFC 3339 UTC
//!   with nanoseconds, fixed width) and then by `seq`, the ticket's message count when the message
//!   was stored: one query reads them oldest first.
//! - The `inbox` index holds ticket items only, one partition per status. `gsi1sk` starts with
//!   the last activity inverted (`u64::MAX` minus the nanoseconds since 1677), so one ascending
//!   query lists the newest activity first and equal activity by ticket id. Listing every status
//!   merges three queries. The index is eventually consistent: a list may lag a write briefly.
//! - Platform messages (`<channel>:<platform id>`, the dedup key), Crossdesk message ids and
//!   conversation keys each own a lookup item, created with `attribute_not_exists` in the same
//!   transaction as the message, so a message is stored once and a conversation has one ticket.
//!   A contact owns one identity item per identity, so two contacts never share one.
//!
//! # Races
//!
//! Every write that must agree with others is one `TransactWriteItems` (or a single conditional
//! put): lookups and claims are conditioned on not existing, tickets and messages on the
//! `version` read. When a condition fails or DynamoDB reports a conflicting transaction, the
//! store reads again and decides anew (an earlier copy is answered as a duplicate; a lost claim
//! on a conversation key threads into the winner's ticket), after a short randomized backoff.
//! After [`MAX_ATTEMPTS`] tries it gives up with [`StoreError::Conflict`].

use std::collections::HashMap;
use std::fmt::Display;
use std::ops::ControlFlow;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, Put, ReturnValue, TransactWriteItem, Update,
};
use chrono::{DateTime, SecondsFormat, Utc};
use crossdesk_core::{
    distinct_identities, first_line, Appended, ChannelKind, Contact, ContactId, ConversationKey,
    Delivery, EmailAddress, Identity, Message, MessageEvent, MessageId, ResolvedContact, Revision,
    Route, StoreError, Ticket, TicketFilter, TicketId, TicketStatus, TicketStore,
};
use tracing::{debug, warn};

use crate::error::{describe, is_transient};
use crate::table::{GSI1_PK, GSI1_SK, INBOX_INDEX, PK, SK};

pub use crossdesk_core::{MAX_LIST_LIMIT, PREVIEW_CHARS};

/// How many times a write that lost a race is read and tried again before
/// [`StoreError::Conflict`].
pub const MAX_ATTEMPTS: u32 = 24;

/// The longest pause between two tries of a write that lost a race.
const MAX_BACKOFF: Duration = Duration::from_millis(250);

type Item = HashMap<String, AttributeValue>;

/// A [`TicketStore`] on one DynamoDB table (see the module docs for the item layout).
#[derive(Debug, Clone)]
pub struct DynamoTicketStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoTicketStore {
    /// A store on the table `table`, which has the schema [`crate::table::create_table`] makes.
    pub fn new(client: aws_sdk_dynamodb::Client, table: &str) -> Self {
        DynamoTicketStore {
            client,
            table: table.to_string(),
        }
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The DynamoDB client (the channel health items share the table: [`crate::channel_health`]).
    pub(crate) fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }
}

// ---------------------------------------------------------------------------------------------
// Keys

const TICKET: &str = "TICKET";
const CONVERSATION: &str = "CONV";
const PLATFORM: &str = "PLATFORM";
const MESSAGE_ID: &str = "MSGID";
const CONTACT: &str = "CONTACT";
const IDENTITY: &str = "IDENTITY";
const MESSAGE_PREFIX: &str = "MSG#";

fn ticket_pk(id: &TicketId) -> String {
    format!("{TICKET}#{id}")
}

fn conversation_pk(key: &ConversationKey) -> String {
    format!("{CONVERSATION}#{key}")
}

fn platform_pk(channel: ChannelKind, platform_id: &str) -> String {
    format!("{PLATFORM}#{channel}:{platform_id}")
}

fn message_id_pk(id: &MessageId) -> String {
    format!("{MESSAGE_ID}#{id}")
}

pub(crate) fn contact_pk(id: &ContactId) -> String {
    format!("{CONTACT}#{id}")
}

fn identity_pk(identity: &Identity) -> String {
    format!("{IDENTITY}#{identity}", identity = identity.as_str())
}

/// Nanoseconds since 1677-09-21 (the earliest instant `i64` nanoseconds reach), so that the
/// decimal form sorts like the time. Instants outside 1677..2262 are refused.
pub(crate) fn sortable_nanos(at: DateTime<Utc>) -> Result<u64, StoreError> {
    let nanos = at.timestamp_nanos_opt().ok_or_else(|| {
        StoreError::Rejected(format!(
            "timestamp {at} is outside the storable range (1677 to 2262)"
        ))
    })?;
    // i64::MIN..=i64::MAX shifted onto 0..=u64::MAX.
    Ok((nanos as u64) ^ (1 << 63))
}

/// A message's sort key: platform time (fixed-width RFC 3339, which sorts like the time for the
/// storable years), then the order stored.
fn message_sk(sent_at: DateTime<Utc>, seq: u64) -> Result<String, StoreError> {
    sortable_nanos(sent_at)?;
    Ok(format!(
        "{MESSAGE_PREFIX}{}#{seq:010}",
        sent_at.to_rfc3339_opts(SecondsFormat::Nanos, true)
    ))
}

fn inbox_pk(status: TicketStatus) -> String {
    format!("INBOX#{}", status.as_str())
}

/// A ticket's inbox sort key: newest activity first, then by id.
fn inbox_sk(updated_at: DateTime<Utc>, id: &TicketId) -> Result<String, StoreError> {
    let inverted = u64::MAX - sortable_nanos(updated_at)?;
    Ok(format!("{inverted:020}#{id}"))
}

pub(crate) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

// ---------------------------------------------------------------------------------------------
// Attribute values

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn n(value: impl Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(crate) fn key(pk: String, sk: &str) -> Item {
    HashMap::from([(PK.to_string(), s(pk)), (SK.to_string(), s(sk))])
}

fn corrupt(item: &Item, what: impl Display) -> StoreError {
    let pk = item.get(PK).and_then(|v| v.as_s().ok());
    let sk = item.get(SK).and_then(|v| v.as_s().ok());
    StoreError::Corrupt(format!(
        "item {}/{}: {what}",
        pk.map_or("?", String::as_str),
        sk.map_or("?", String::as_str)
    ))
}

fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Ok(value),
        Some(_) => Err(corrupt(item, format_args!("`{name}` is not a string"))),
        None => Err(corrupt(item, format_args!("`{name}` is missing"))),
    }
}

fn get_opt_s<'a>(item: &'a Item, name: &str) -> Result<Option<&'a str>, StoreError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(_) => get_s(item, name).map(Some),
    }
}

fn get_n<T: FromStr>(item: &Item, name: &str) -> Result<T, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(value)) => value
            .parse()
            .map_err(|_| corrupt(item, format_args!("`{name}` is not a valid number"))),
        Some(_) => Err(corrupt(item, format_args!("`{name}` is not a number"))),
        None => Err(corrupt(item, format_args!("`{name}` is missing"))),
    }
}

/// A string attribute through a parse, reporting a failed parse as corrupt data.
fn get_parsed<T, E: Display>(
    item: &Item,
    name: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, StoreError> {
    parse(get_s(item, name)?).map_err(|e| corrupt(item, format_args!("`{name}`: {e}")))
}

fn get_time(item: &Item, name: &str) -> Result<DateTime<Utc>, StoreError> {
    get_parsed(item, name, |v| {
        DateTime::parse_from_rfc3339(v).map(|t| t.with_timezone(&Utc))
    })
}

// ---------------------------------------------------------------------------------------------
// Items

const VERSION: &str = "version";

fn ticket_item(ticket: &Ticket, version: u64) -> Result<Item, StoreError> {
    let mut item = key(ticket_pk(&ticket.id), TICKET);
    item.extend([
        ("id".to_string(), s(ticket.id.as_str())),
        ("status".to_string(), s(ticket.status.as_str())),
        ("channel".to_string(), s(ticket.channel.as_str())),
        ("subject".to_string(), s(&ticket.subject)),
        ("contact_id".to_string(), s(ticket.contact_id.as_str())),
        (
            "conversation_key".to_string(),
            s(ticket.conversation_key.as_str()),
        ),
        ("created_at".to_string(), s(timestamp(ticket.created_at))),
        ("updated_at".to_string(), s(timestamp(ticket.updated_at))),
        ("preview".to_string(), s(&ticket.preview)),
        ("message_count".to_string(), n(ticket.message_count)),
        (VERSION.to_string(), n(version)),
        (GSI1_PK.to_string(), s(inbox_pk(ticket.status))),
        (
            GSI1_SK.to_string(),
            s(inbox_sk(ticket.updated_at, &ticket.id)?),
        ),
    ]);
    if !ticket.related_tickets.is_empty() {
        item.insert(
            "related_tickets".to_string(),
            AttributeValue::L(
                ticket
                    .related_tickets
                    .iter()
                    .map(|t| s(t.as_str()))
                    .collect(),
            ),
        );
    }
    Ok(item)
}

fn ticket_from_item(item: &Item) -> Result<(Ticket, u64), StoreError> {
    let ticket = Ticket {
        id: get_parsed(item, "id", TicketId::parse)?,
        status: get_parsed(item, "status", str::parse::<TicketStatus>)?,
        channel: get_parsed(item, "channel", str::parse::<ChannelKind>)?,
        subject: get_s(item, "subject")?.to_string(),
        contact_id: get_parsed(item, "contact_id", ContactId::parse)?,
        conversation_key: get_parsed(item, "conversation_key", ConversationKey::parse)?,
        created_at: get_time(item, "created_at")?,
        updated_at: get_time(item, "updated_at")?,
        preview: get_s(item, "preview")?.to_string(),
        message_count: get_n(item, "message_count")?,
        related_tickets: match item.get("related_tickets") {
            None => Vec::new(),
            Some(AttributeValue::L(list)) => list
                .iter()
                .map(|v| match v {
                    AttributeValue::S(id) => TicketId::parse(id)
                        .map_err(|e| corrupt(item, format_args!("`related_tickets`: {e}"))),
                    _ => Err(corrupt(item, "a related ticket is not a string")),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(corrupt(item, "`related_tickets` is not a list")),
        },
    };
    Ok((ticket, get_n(item, VERSION)?))
}

/// A stored message with what the store keeps beside it.
struct StoredMessage {
    message: Message,
    version: u64,
    revised_at: Option<DateTime<Utc>>,
}

fn message_item(ticket: &TicketId, sk: &str, stored: &StoredMessage) -> Result<Item, StoreError> {
    let body = serde_json::to_string(&stored.message)
        .map_err(|e| StoreError::Rejected(format!("cannot serialize the message: {e}")))?;
    let mut item = key(ticket_pk(ticket), sk);
    item.extend([
        ("message".to_string(), s(body)),
        ("message_id".to_string(), s(stored.message.id.as_str())),
        (VERSION.to_string(), n(stored.version)),
    ]);
    if let Some(at) = stored.revised_at {
        item.insert("revised_at".to_string(), s(timestamp(at)));
    }
    Ok(item)
}

fn message_from_item(item: &Item) -> Result<StoredMessage, StoreError> {
    Ok(StoredMessage {
        message: get_parsed(item, "message", |body| {
            serde_json::from_str::<Message>(body)
        })?,
        version: get_n(item, VERSION)?,
        revised_at: match get_opt_s(item, "revised_at")? {
            Some(_) => Some(get_time(item, "revised_at")?),
            None => None,
        },
    })
}

/// Where a platform message or message id lookup points.
struct MessageRef {
    ticket_id: TicketId,
    message_id: MessageId,
    message_sk: String,
}

fn message_ref_item(pk: String, sk: &str, target: &MessageRef) -> Item {
    let mut item = key(pk, sk);
    item.extend([
        ("ticket_id".to_string(), s(target.ticket_id.as_str())),
        ("message_id".to_string(), s(target.message_id.as_str())),
        ("message_sk".to_string(), s(&target.message_sk)),
    ]);
    item
}

fn message_ref_from_item(item: &Item) -> Result<MessageRef, StoreError> {
    Ok(MessageRef {
        ticket_id: get_parsed(item, "ticket_id", TicketId::parse)?,
        message_id: get_parsed(item, "message_id", MessageId::parse)?,
        message_sk: get_s(item, "message_sk")?.to_string(),
    })
}

fn contact_from_item(item: &Item) -> Result<Contact, StoreError> {
    let identities: Vec<Identity> = match item.get("identities") {
        None => Vec::new(),
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|v| match v {
                AttributeValue::S(identity) => Ok(Identity(identity.clone())),
                _ => Err(corrupt(item, "an identity is not a string")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(corrupt(item, "`identities` is not a list")),
    };
    let emails = identities
        .iter()
        .filter_map(|i| i.as_str().strip_prefix("email:"))
        .filter_map(|address| EmailAddress::parse(address).ok())
        .collect();
    Ok(Contact {
        id: get_parsed(item, "id", ContactId::parse)?,
        name: get_opt_s(item, "name")?.map(str::to_string),
        emails,
        identities,
        created_at: get_time(item, "created_at")?,
    })
}

fn identity_list(identities: &[&Identity]) -> AttributeValue {
    AttributeValue::L(identities.iter().map(|i| s(i.as_str())).collect())
}

fn identity_item(identity: &Identity, contact: &ContactId, created_at: DateTime<Utc>) -> Item {
    let mut item = key(identity_pk(identity), IDENTITY);
    item.extend([
        ("contact_id".to_string(), s(contact.as_str())),
        ("contact_created_at".to_string(), s(timestamp(created_at))),
    ]);
    item
}

// ---------------------------------------------------------------------------------------------
// Writes

/// What an item write requires of the item already stored.
#[derive(Debug, Clone, Copy)]
enum Condition {
    /// No item with its key exists (claims, lookups, new items).
    New,
    /// The item exists.
    Exists,
    /// The item exists at this version (optimistic locking).
    Version(u64),
}

impl Condition {
    fn expression(self) -> (&'static str, HashMap<String, String>, Item) {
        match self {
            Condition::New => (
                "attribute_not_exists(#pk)",
                HashMap::from([("#pk".to_string(), PK.to_string())]),
                Item::new(),
            ),
            Condition::Exists => (
                "attribute_exists(#pk)",
                HashMap::from([("#pk".to_string(), PK.to_string())]),
                Item::new(),
            ),
            Condition::Version(v) => (
                "#version = :version",
                HashMap::from([("#version".to_string(), VERSION.to_string())]),
                HashMap::from([(":version".to_string(), n(v))]),
            ),
        }
    }
}

/// One conditional item write of a commit.
#[derive(Debug, Clone)]
enum Write {
    /// Replaces (or creates) a whole item.
    Put { item: Item, condition: Condition },
    /// Changes some attributes of an item.
    Update {
        key: Item,
        expression: String,
        names: HashMap<String, String>,
        values: Item,
        condition: Condition,
    },
}

/// How a commit ended, when DynamoDB answered.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Commit {
    /// Every write was applied.
    Done,
    /// Nothing was applied: the conditions of these writes (by index) failed.
    ConditionFailed(Vec<usize>),
    /// Nothing was applied: a concurrent transaction or throttling got in the way.
    Contended,
}

/// Classifies the reasons of a cancelled transaction.
fn cancellation(reasons: &[CancellationReason]) -> Result<Commit, StoreError> {
    let mut failed = Vec::new();
    for (index, reason) in reasons.iter().enumerate() {
        match reason.code() {
            None | Some("None") => {}
            Some("ConditionalCheckFailed") => failed.push(index),
            Some("TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded") => {}
            Some(code) => {
                return Err(StoreError::Rejected(format!(
                    "transaction cancelled: write {index}: {code}: {}",
                    reason.message().unwrap_or("")
                )))
            }
        }
    }
    Ok(if failed.is_empty() {
        Commit::Contended
    } else {
        Commit::ConditionFailed(failed)
    })
}

/// A failed SDK call: retryable when transient, else the request itself was refused.
pub(crate) fn sdk_error<E>(operation: &str, err: &SdkError<E, HttpResponse>) -> StoreError
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

pub(crate) fn built<T>(
    result: Result<T, aws_sdk_dynamodb::error::BuildError>,
) -> Result<T, StoreError> {
    result.map_err(|e| StoreError::Rejected(format!("invalid DynamoDB request: {e}")))
}

/// Runs a query page by page, handing every item to `each` until it answers
/// [`ControlFlow::Break`] or the last page is read. With `read_at_most`, no more items than that
/// are read in all (each page asks for what is left): for a query whose every item is a result.
pub(crate) async fn query_all(
    query: QueryFluentBuilder,
    read_at_most: Option<usize>,
    mut each: impl FnMut(&Item) -> Result<ControlFlow<()>, StoreError>,
) -> Result<(), StoreError> {
    let mut start = None;
    let mut read = 0;
    loop {
        let mut page = query.clone().set_exclusive_start_key(start.take());
        if let Some(most) = read_at_most {
            page = page.limit(i32::try_from(most - read).unwrap_or(i32::MAX));
        }
        let page = page.send().await.map_err(|e| sdk_error("Query", &e))?;
        for item in page.items() {
            read += 1;
            if each(item)?.is_break() {
                return Ok(());
            }
        }
        if read_at_most.is_some_and(|most| read >= most) {
            return Ok(());
        }
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return Ok(()),
        }
    }
}

/// A short random pause before try `attempt` (from 1), growing with the attempts.
pub(crate) async fn backoff(attempt: u32) {
    let ceiling = Duration::from_millis(5 << attempt.min(6)).min(MAX_BACKOFF);
    let pause = rand::random_range(Duration::ZERO..=ceiling);
    tokio::time::sleep(pause).await;
}

pub(crate) fn conflict(what: impl Display) -> StoreError {
    StoreError::Conflict(format!(
        "{what}: still conflicting after {MAX_ATTEMPTS} tries"
    ))
}

impl DynamoTicketStore {
    /// Reads one item, strongly consistent.
    async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", &e))?;
        Ok(output.item)
    }

    /// Applies the writes all or nothing.
    async fn commit(&self, writes: Vec<Write>) -> Result<Commit, StoreError> {
        if let [Write::Put { item, condition }] = writes.as_slice() {
            return self.put(item.clone(), *condition).await;
        }
        let items = writes
            .into_iter()
            .map(|w| self.transact_item(w))
            .collect::<Result<Vec<_>, _>>()?;
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .client_request_token(uuid::Uuid::now_v7().to_string())
            .send()
            .await;
        match result {
            Ok(_) => Ok(Commit::Done),
            Err(err) => match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
                    cancellation(e.cancellation_reasons())
                }
                _ => Err(sdk_error("TransactWriteItems", &err)),
            },
        }
    }

    /// One conditional put, outside a transaction (half the cost of a transaction).
    async fn put(&self, item: Item, condition: Condition) -> Result<Commit, StoreError> {
        let (expression, names, values) = condition.expression();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(expression)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Commit::Done),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(_)) => {
                    Ok(Commit::ConditionFailed(vec![0]))
                }
                Some(PutItemError::TransactionConflictException(_)) => Ok(Commit::Contended),
                _ => Err(sdk_error("PutItem", &err)),
            },
        }
    }

    fn transact_item(&self, write: Write) -> Result<TransactWriteItem, StoreError> {
        Ok(match write {
            Write::Put { item, condition } => {
                let (expression, names, values) = condition.expression();
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression(expression)
                    .set_expression_attribute_names(Some(names))
                    .set_expression_attribute_values((!values.is_empty()).then_some(values));
                TransactWriteItem::builder()
                    .put(built(put.build())?)
                    .build()
            }
            Write::Update {
                key,
                expression,
                mut names,
                mut values,
                condition,
            } => {
                let (condition, condition_names, condition_values) = condition.expression();
                names.extend(condition_names);
                values.extend(condition_values);
                let update = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(key))
                    .update_expression(expression)
                    .condition_expression(condition)
                    .set_expression_attribute_names(Some(names))
                    .set_expression_attribute_values((!values.is_empty()).then_some(values));
                TransactWriteItem::builder()
                    .update(built(update.build())?)
                    .build()
            }
        })
    }

    async fn read_ticket(&self, id: &TicketId) -> Result<Option<(Ticket, u64)>, StoreError> {
        match self.get(ticket_pk(id), TICKET).await? {
            Some(item) => ticket_from_item(&item).map(Some),
            None => Ok(None),
        }
    }

    async fn platform_message(
        &self,
        channel: ChannelKind,
        platform_id: &str,
    ) -> Result<Option<MessageRef>, StoreError> {
        match self
            .get(platform_pk(channel, platform_id), PLATFORM)
            .await?
        {
            Some(item) => message_ref_from_item(&item).map(Some),
            None => Ok(None),
        }
    }

    async fn message_by_id(&self, id: &MessageId) -> Result<Option<MessageRef>, StoreError> {
        match self.get(message_id_pk(id), MESSAGE_ID).await? {
            Some(item) => message_ref_from_item(&item).map(Some),
            None => Ok(None),
        }
    }

    async fn read_message(&self, target: &MessageRef) -> Result<StoredMessage, StoreError> {
        let item = self
            .get(ticket_pk(&target.ticket_id), &target.message_sk)
            .await?
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "message {} is indexed at {}/{} but not stored there",
                    target.message_id, target.ticket_id, target.message_sk
                ))
            })?;
        message_from_item(&item)
    }

    /// The stored message with this platform id or Crossdesk id, as a duplicate.
    async fn stored_duplicate(&self, message: &Message) -> Result<Option<Appended>, StoreError> {
        let by_platform_id = async {
            match &message.platform_message_id {
                Some(id) => self.platform_message(message.channel, id).await,
                None => Ok(None),
            }
        };
        let (by_platform_id, by_id) =
            tokio::try_join!(by_platform_id, self.message_by_id(&message.id))?;
        Ok(by_platform_id.or(by_id).map(|found| Appended {
            ticket_id: found.ticket_id,
            message_id: found.message_id,
            created_ticket: false,
            duplicate: true,
        }))
    }

    /// One try at storing a message.
    async fn try_append(
        &self,
        route: &Route,
        message: &Message,
        contact: &ContactId,
    ) -> Result<Attempt<Appended>, StoreError> {
        let conversation = &route.conversation_key;
        let claimed = async {
            match self
                .get(conversation_pk(conversation), CONVERSATION)
                .await?
            {
                Some(item) => get_parsed(&item, "ticket_id", TicketId::parse).map(Some),
                None => Ok(None),
            }
        };
        let (duplicate, claimed) = tokio::try_join!(self.stored_duplicate(message), claimed)?;
        if let Some(duplicate) = duplicate {
            return Ok(Attempt::Done(duplicate));
        }

        let (mut ticket, version, claim_key) = match (&route.ticket, claimed) {
            (Some(id), claimed) => {
                let (ticket, version) = self.read_ticket(id).await?.ok_or_else(|| {
                    StoreError::Rejected(format!(
                        "the message is routed to ticket {id}, which does not exist"
                    ))
                })?;
                (ticket, Some(version), claimed.is_none())
            }
            (None, Some(id)) => {
                let (ticket, version) = self.read_ticket(&id).await?.ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "conversation {conversation} is claimed by ticket {id}, which does not exist"
                    ))
                })?;
                (ticket, Some(version), false)
            }
            (None, None) => {
                let ticket = Ticket {
                    id: route.new_ticket.id.clone(),
                    status: TicketStatus::Open,
                    channel: message.channel,
                    subject: route.new_ticket.subject.clone(),
                    contact_id: contact.clone(),
                    conversation_key: conversation.clone(),
                    created_at: message.received_at,
                    updated_at: message.received_at,
                    preview: String::new(),
                    message_count: 0,
                    related_tickets: route.new_ticket.related_tickets.clone(),
                };
                (ticket, None, true)
            }
        };
        let created = version.is_none();

        ticket.updated_at = ticket.updated_at.max(message.received_at);
        ticket.preview = first_line(&message.text, PREVIEW_CHARS);
        ticket.message_count += 1;
        if message.reopens_ticket()
            && matches!(ticket.status, TicketStatus::Pending | TicketStatus::Solved)
        {
            ticket.status = TicketStatus::Open;
        }

        let target = MessageRef {
            ticket_id: ticket.id.clone(),
            message_id: message.id.clone(),
            message_sk: message_sk(message.sent_at, ticket.message_count)?,
        };
        let stored = StoredMessage {
            message: message.clone(),
            version: 1,
            revised_at: None,
        };
        let mut writes = vec![
            Write::Put {
                item: ticket_item(&ticket, version.map_or(1, |v| v + 1))?,
                condition: version.map_or(Condition::New, Condition::Version),
            },
            Write::Put {
                item: message_item(&ticket.id, &target.message_sk, &stored)?,
                condition: Condition::New,
            },
            Write::Put {
                item: message_ref_item(message_id_pk(&message.id), MESSAGE_ID, &target),
                condition: Condition::New,
            },
        ];
        if let Some(platform_id) = &message.platform_message_id {
            writes.push(Write::Put {
                item: message_ref_item(
                    platform_pk(message.channel, platform_id),
                    PLATFORM,
                    &target,
                ),
                condition: Condition::New,
            });
        }
        if claim_key {
            let mut item = key(conversation_pk(conversation), CONVERSATION);
            item.insert("ticket_id".to_string(), s(ticket.id.as_str()));
            writes.push(Write::Put {
                item,
                condition: Condition::New,
            });
        }

        match self.commit(writes).await? {
            Commit::Done => {
                if created {
                    debug!(ticket_id = %ticket.id, "ticket created");
                }
                Ok(Attempt::Done(Appended {
                    ticket_id: ticket.id,
                    message_id: message.id.clone(),
                    created_ticket: created,
                    duplicate: false,
                }))
            }
            // The ticket write is first: a new ticket's id is taken by another ticket.
            Commit::ConditionFailed(failed) if created && failed.contains(&0) => Err(
                StoreError::Conflict(format!("new ticket id {} is already taken", ticket.id)),
            ),
            Commit::ConditionFailed(_) | Commit::Contended => Ok(Attempt::Retry),
        }
    }

    /// One try at resolving a contact.
    async fn try_resolve_contact(
        &self,
        wanted: &[Identity],
        name: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Attempt<ResolvedContact>, StoreError> {
        let mut known: Vec<(DateTime<Utc>, ContactId)> = Vec::new();
        let mut missing: Vec<&Identity> = Vec::new();
        for identity in wanted {
            match self.get(identity_pk(identity), IDENTITY).await? {
                Some(item) => known.push((
                    get_time(&item, "contact_created_at")?,
                    get_parsed(&item, "contact_id", ContactId::parse)?,
                )),
                None => missing.push(identity),
            }
        }
        // The oldest contact answers; two existing contacts are never merged.
        let oldest = known.into_iter().min();
        let created = oldest.is_none();

        let (contact, created_at, mut writes) = match oldest {
            None => {
                let id = ContactId::generate();
                let mut item = key(contact_pk(&id), CONTACT);
                item.extend([
                    ("id".to_string(), s(id.as_str())),
                    ("created_at".to_string(), s(timestamp(now))),
                    ("identities".to_string(), identity_list(&missing)),
                ]);
                if let Some(name) = name {
                    item.insert("name".to_string(), s(name));
                }
                let create = Write::Put {
                    item,
                    condition: Condition::New,
                };
                (id, now, vec![create])
            }
            Some((_, id)) if missing.is_empty() => {
                if let Some(name) = name {
                    self.fill_in_name(&id, name).await?;
                }
                return Ok(Attempt::Done(ResolvedContact { id, created: false }));
            }
            Some((created_at, id)) => {
                let mut expression = "SET #identities = list_append(#identities, :identities)";
                let mut names =
                    HashMap::from([("#identities".to_string(), "identities".to_string())]);
                let mut values =
                    HashMap::from([(":identities".to_string(), identity_list(&missing))]);
                if let Some(name) = name {
                    expression = "SET #identities = list_append(#identities, :identities), \
                                  #name = if_not_exists(#name, :name)";
                    names.insert("#name".to_string(), "name".to_string());
                    values.insert(":name".to_string(), s(name));
                }
                let update = Write::Update {
                    key: key(contact_pk(&id), CONTACT),
                    expression: expression.to_string(),
                    names,
                    values,
                    condition: Condition::Exists,
                };
                (id, created_at, vec![update])
            }
        };
        writes.extend(missing.iter().map(|identity| Write::Put {
            item: identity_item(identity, &contact, created_at),
            condition: Condition::New,
        }));
        match self.commit(writes).await? {
            Commit::Done => Ok(Attempt::Done(ResolvedContact {
                id: contact,
                created,
            })),
            Commit::ConditionFailed(_) | Commit::Contended => Ok(Attempt::Retry),
        }
    }

    /// Gives a contact a name when it has none.
    async fn fill_in_name(&self, id: &ContactId, name: &str) -> Result<(), StoreError> {
        let named = self
            .get(contact_pk(id), CONTACT)
            .await?
            .is_some_and(|item| item.contains_key("name"));
        if named {
            return Ok(());
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(contact_pk(id), CONTACT)))
            .update_expression("SET #name = :name")
            .condition_expression("attribute_exists(#pk) AND attribute_not_exists(#name)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#name", "name")
            .expression_attribute_values(":name", s(name))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Named meanwhile: a name is only filled in, never replaced.
            Err(err)
                if matches!(
                    err.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(())
            }
            Err(err) => Err(sdk_error("UpdateItem", &err)),
        }
    }

    /// One try at revising a message.
    async fn try_revise(
        &self,
        channel: ChannelKind,
        platform_message_id: &str,
        revision: &Revision,
    ) -> Result<Attempt<Option<(TicketId, MessageId)>>, StoreError> {
        let Some(target) = self.platform_message(channel, platform_message_id).await? else {
            return Ok(Attempt::Done(None));
        };
        let found = Some((target.ticket_id.clone(), target.message_id.clone()));
        let mut stored = self.read_message(&target).await?;
        if !revise(&mut stored, revision) {
            return Ok(Attempt::Done(found));
        }
        let version = stored.version;
        stored.version += 1;
        let write = Write::Put {
            item: message_item(&target.ticket_id, &target.message_sk, &stored)?,
            condition: Condition::Version(version),
        };
        Ok(match self.commit(vec![write]).await? {
            Commit::Done => Attempt::Done(found),
            Commit::ConditionFailed(_) | Commit::Contended => Attempt::Retry,
        })
    }

    /// One try at a delivery compare-and-set.
    async fn try_set_delivery(
        &self,
        ticket: &TicketId,
        message_id: &MessageId,
        expected: &Delivery,
        delivery: &Delivery,
    ) -> Result<Attempt<bool>, StoreError> {
        let target = self
            .message_by_id(message_id)
            .await?
            .filter(|target| &target.ticket_id == ticket)
            .ok_or_else(|| {
                StoreError::Rejected(format!(
                    "message {message_id} is not stored in ticket {ticket}"
                ))
            })?;
        let mut stored = self.read_message(&target).await?;
        if stored.message.delivery.as_ref() != Some(expected) {
            return Ok(Attempt::Done(false));
        }
        stored.message.delivery = Some(delivery.clone());
        let mut claim = None;
        if let (None, Some(platform_id)) =
            (&stored.message.platform_message_id, &delivery.platform_id)
        {
            let channel = stored.message.channel;
            if self.platform_message(channel, platform_id).await?.is_some() {
                warn!(
                    ticket_id = %ticket, message_id = %message_id, platform_message_id = %platform_id,
                    "the platform id of the sent reply is already stored on another message"
                );
            } else {
                stored.message.platform_message_id = Some(platform_id.clone());
                claim = Some(message_ref_item(
                    platform_pk(channel, platform_id),
                    PLATFORM,
                    &target,
                ));
            }
        }
        let version = stored.version;
        stored.version += 1;
        let mut writes = vec![Write::Put {
            item: message_item(ticket, &target.message_sk, &stored)?,
            condition: Condition::Version(version),
        }];
        if let Some(item) = claim {
            writes.push(Write::Put {
                item,
                condition: Condition::New,
            });
        }
        Ok(match self.commit(writes).await? {
            Commit::Done => Attempt::Done(true),
            Commit::ConditionFailed(_) | Commit::Contended => Attempt::Retry,
        })
    }

    /// Up to `limit` tickets of one status (optionally of one channel), newest activity first,
    /// with their inbox sort keys.
    async fn inbox(
        &self,
        status: TicketStatus,
        channel: Option<ChannelKind>,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Vec<(String, Ticket)>, StoreError> {
        let mut tickets = Vec::with_capacity(limit);
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(INBOX_INDEX)
            .expression_attribute_names("#gsi1pk", GSI1_PK)
            .expression_attribute_values(":inbox", s(inbox_pk(status)))
            .scan_index_forward(true);
        let query = match after {
            Some(after) => query
                .key_condition_expression("#gsi1pk = :inbox AND #gsi1sk > :after")
                .expression_attribute_names("#gsi1sk", GSI1_SK)
                .expression_attribute_values(":after", s(after)),
            None => query.key_condition_expression("#gsi1pk = :inbox"),
        };
        let (query, read_at_most) = match channel {
            Some(channel) => (
                query
                    .filter_expression("#channel = :channel")
                    .expression_attribute_names("#channel", "channel")
                    .expression_attribute_values(":channel", s(channel.as_str())),
                None,
            ),
            // Without a filter every item read is a result: read no more than needed.
            None => (query, Some(limit)),
        };
        query_all(query, read_at_most, |item| {
            let sort_key = get_s(item, GSI1_SK)?.to_string();
            tickets.push((sort_key, ticket_from_item(item)?.0));
            Ok(if tickets.len() == limit {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        })
        .await?;
        Ok(tickets)
    }
}

/// The end of one try of a read-decide-write cycle.
enum Attempt<T> {
    /// Decided.
    Done(T),
    /// Lost a race: read again.
    Retry,
}

/// Applies an edit or removal to a stored message; whether it changed. A removal is final; an
/// edit older than the last revision applied is ignored (webhooks can arrive out of order).
fn revise(stored: &mut StoredMessage, revision: &Revision) -> bool {
    match revision {
        Revision::Edited { text, at } => {
            let stale = stored.revised_at.is_some_and(|last| last > *at);
            if stored.message.event == MessageEvent::Removed || stale {
                return false;
            }
            stored.message.text = text.clone();
            stored.message.event = MessageEvent::Edited;
            stored.revised_at = Some(*at);
            true
        }
        Revision::Removed { at } => {
            let at = stored.revised_at.map_or(*at, |last| last.max(*at));
            if stored.message.event == MessageEvent::Removed && stored.revised_at == Some(at) {
                return false;
            }
            stored.message.event = MessageEvent::Removed;
            stored.revised_at = Some(at);
            true
        }
    }
}

impl DynamoTicketStore {
    /// A ticket's messages in order (their sort keys are the time sent, then the sequence), the
    /// first `limit` of them (a `Limit` on the query) or all.
    async fn first_messages(
        &self,
        ticket: &TicketId,
        limit: Option<usize>,
    ) -> Result<Vec<Message>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :messages)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":pk", s(ticket_pk(ticket)))
            .expression_attribute_values(":messages", s(MESSAGE_PREFIX))
            .consistent_read(true);
        let mut messages = Vec::new();
        query_all(query, limit, |item| {
            messages.push(message_from_item(item)?.message);
            Ok(ControlFlow::Continue(()))
        })
        .await?;
        Ok(messages)
    }
}

#[async_trait]
impl TicketStore for DynamoTicketStore {
    async fn find_ticket_by_platform_ids(
        &self,
        channel: ChannelKind,
        platform_ids: &[String],
    ) -> Result<Option<TicketId>, StoreError> {
        for id in platform_ids {
            if let Some(found) = self.platform_message(channel, id).await? {
                return Ok(Some(found.ticket_id));
            }
        }
        Ok(None)
    }

    async fn find_ticket_by_conversation(
        &self,
        key: &ConversationKey,
    ) -> Result<Option<TicketId>, StoreError> {
        match self.get(conversation_pk(key), CONVERSATION).await? {
            Some(item) => get_parsed(&item, "ticket_id", TicketId::parse).map(Some),
            None => Ok(None),
        }
    }

    async fn find_contact_by_identity(
        &self,
        identity: &Identity,
    ) -> Result<Option<ContactId>, StoreError> {
        match self.get(identity_pk(identity), IDENTITY).await? {
            Some(item) => get_parsed(&item, "contact_id", ContactId::parse).map(Some),
            None => Ok(None),
        }
    }

    async fn resolve_contact(
        &self,
        identities: &[Identity],
        name: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<ResolvedContact, StoreError> {
        let wanted = distinct_identities(identities);
        let name = name.map(str::trim).filter(|n| !n.is_empty());
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            if let Attempt::Done(contact) = self.try_resolve_contact(&wanted, name, now).await? {
                return Ok(contact);
            }
            debug!(attempt, "contact resolution lost a race; reading again");
        }
        Err(conflict("resolving a contact"))
    }

    async fn append_message(
        &self,
        route: &Route,
        message: &Message,
        contact: &ContactId,
    ) -> Result<Appended, StoreError> {
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            if let Attempt::Done(appended) = self.try_append(route, message, contact).await? {
                return Ok(appended);
            }
            debug!(attempt, conversation_key = %route.conversation_key, "append lost a race; reading again");
        }
        Err(conflict(format_args!(
            "appending message {} to conversation {}",
            message.id, route.conversation_key
        )))
    }

    async fn revise_message(
        &self,
        channel: ChannelKind,
        platform_message_id: &str,
        revision: &Revision,
    ) -> Result<Option<(TicketId, MessageId)>, StoreError> {
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            if let Attempt::Done(found) = self
                .try_revise(channel, platform_message_id, revision)
                .await?
            {
                return Ok(found);
            }
        }
        Err(conflict(format_args!(
            "revising {channel} message {platform_message_id}"
        )))
    }

    async fn get_ticket(&self, id: &TicketId) -> Result<Option<Ticket>, StoreError> {
        Ok(self.read_ticket(id).await?.map(|(ticket, _)| ticket))
    }

    async fn list_tickets(&self, filter: &TicketFilter) -> Result<Vec<Ticket>, StoreError> {
        let limit = filter.limit.clamp(1, MAX_LIST_LIMIT);
        let after = match &filter.after {
            Some(cursor) => Some(inbox_sk(cursor.updated_at, &cursor.id)?),
            None => None,
        };
        let after = after.as_deref();
        let mut found = match filter.status {
            Some(status) => self.inbox(status, filter.channel, limit, after).await?,
            None => {
                let (mut open, pending, solved) = tokio::try_join!(
                    self.inbox(TicketStatus::Open, filter.channel, limit, after),
                    self.inbox(TicketStatus::Pending, filter.channel, limit, after),
                    self.inbox(TicketStatus::Solved, filter.channel, limit, after),
                )?;
                open.extend(pending);
                open.extend(solved);
                open.sort_by(|a, b| a.0.cmp(&b.0));
                open
            }
        };
        found.truncate(limit);
        Ok(found.into_iter().map(|(_, ticket)| ticket).collect())
    }

    async fn list_messages(&self, ticket: &TicketId) -> Result<Vec<Message>, StoreError> {
        self.first_messages(ticket, None).await
    }

    async fn get_message(
        &self,
        ticket: &TicketId,
        message: &MessageId,
    ) -> Result<Option<Message>, StoreError> {
        match self.message_by_id(message).await? {
            Some(target) if &target.ticket_id == ticket => {
                Ok(Some(self.read_message(&target).await?.message))
            }
            _ => Ok(None),
        }
    }

    async fn list_first_messages(
        &self,
        ticket: &TicketId,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.first_messages(ticket, Some(limit)).await
    }

    async fn get_contact(&self, id: &ContactId) -> Result<Option<Contact>, StoreError> {
        match self.get(contact_pk(id), CONTACT).await? {
            Some(item) => contact_from_item(&item).map(Some),
            None => Ok(None),
        }
    }

    async fn set_status(
        &self,
        ticket: &TicketId,
        status: TicketStatus,
        now: DateTime<Utc>,
    ) -> Result<Option<Ticket>, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(ticket_pk(ticket), TICKET)))
            .update_expression(
                "SET #status = :status, #updated_at = :updated_at, #gsi1pk = :gsi1pk, \
                 #gsi1sk = :gsi1sk ADD #version :one",
            )
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#updated_at", "updated_at")
            .expression_attribute_names("#gsi1pk", GSI1_PK)
            .expression_attribute_names("#gsi1sk", GSI1_SK)
            .expression_attribute_names("#version", VERSION)
            .expression_attribute_values(":status", s(status.as_str()))
            .expression_attribute_values(":updated_at", s(timestamp(now)))
            .expression_attribute_values(":gsi1pk", s(inbox_pk(status)))
            .expression_attribute_values(":gsi1sk", s(inbox_sk(now, ticket)?))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => match output.attributes {
                Some(item) => Ok(Some(ticket_from_item(&item)?.0)),
                None => Err(StoreError::Corrupt(format!(
                    "ticket {ticket} was updated but DynamoDB returned no attributes"
                ))),
            },
            Err(err)
                if matches!(
                    err.as_service_error(),
                    Some(UpdateItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Ok(None)
            }
            Err(err) => Err(sdk_error("UpdateItem", &err)),
        }
    }

    async fn set_delivery(
        &self,
        ticket: &TicketId,
        message: &MessageId,
        expected: &Delivery,
        delivery: &Delivery,
    ) -> Result<bool, StoreError> {
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            if let Attempt::Done(set) = self
                .try_set_delivery(ticket, message, expected, delivery)
                .await?
            {
                return Ok(set);
            }
        }
        Err(conflict(format_args!(
            "recording the delivery of {message}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use crossdesk_core::{Author, Conversation, Direction, Visibility};

    use super::*;

    fn at(secs: i64, nanos: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0).unwrap()
            + Duration::seconds(secs)
            + Duration::nanoseconds(nanos)
    }

    fn ticket(id: &str, updated_at: DateTime<Utc>) -> Ticket {
        Ticket {
            id: TicketId::parse(id).unwrap(),
            status: TicketStatus::Pending,
            channel: ChannelKind::Twitter,
            subject: "Invoice «42»".into(),
            contact_id: ContactId::generate(),
            conversation_key: ConversationKey::parse("twitter:tweets:c1:u1").unwrap(),
            created_at: at(0, 0),
            updated_at,
            preview: "hello".into(),
            message_count: 7,
            related_tickets: Vec::new(),
        }
    }

    fn message() -> Message {
        Message {
            id: MessageId::generate(),
            channel: ChannelKind::Chat,
            platform_message_id: Some("c1".into()),
            conversation: Conversation::ChatSession {
                session_id: "s1".into(),
            },
            direction: Direction::Inbound,
            event: MessageEvent::Created,
            author: Author::default(),
            text: "v0".into(),
            attachments: Vec::new(),
            visibility: Visibility::Private,
            sent_at: at(0, 1),
            received_at: at(1, 0),
            replies_to: Vec::new(),
            ticket_ref: None,
            subject: None,
            email: None,
            raw: None,
            signature_unverified: false,
            personal_data: Vec::new(),
            internal_note: false,
            monitoring: false,
            delivery: None,
        }
    }

    #[test]
    fn message_sort_keys_order_by_platform_time_then_by_order_stored() {
        let pre_epoch = Utc.with_ymd_and_hms(1969, 12, 31, 23, 59, 59).unwrap();
        let in_order = [
            message_sk(pre_epoch, 9).unwrap(),
            message_sk(at(0, 0), 2).unwrap(),
            message_sk(at(0, 1), 1).unwrap(),
            message_sk(at(0, 999_999_999), 1).unwrap(),
            message_sk(at(1, 0), 3).unwrap(),
            message_sk(at(1, 0), 10).unwrap(),
            message_sk(at(86_400 * 365 * 100, 0), 1).unwrap(),
        ];
        let mut sorted = in_order.clone();
        sorted.sort();
        assert_eq!(sorted, in_order);
        assert_eq!(
            message_sk(at(0, 123_456_789), 4).unwrap(),
            "MSG#2024-05-01T10:00:00.123456789Z#0000000004"
        );
    }

    #[test]
    fn inbox_sort_keys_list_newest_activity_first_then_by_id() {
        let a = TicketId::parse("AAAAAAAA").unwrap();
        let b = TicketId::parse("BBBBBBBB").unwrap();
        let in_order = [
            inbox_sk(at(100, 0), &b).unwrap(),
            inbox_sk(at(50, 1), &a).unwrap(),
            inbox_sk(at(50, 0), &a).unwrap(),
            inbox_sk(at(50, 0), &b).unwrap(),
            inbox_sk(at(-86_400 * 365 * 60, 0), &a).unwrap(),
        ];
        let mut sorted = in_order.clone();
        sorted.sort();
        assert_eq!(sorted, in_order);
    }

    #[test]
    fn sortable_nanos_keep_the_order_of_time_over_the_whole_range() {
        let earliest = DateTime::from_timestamp_nanos(i64::MIN);
        let latest = DateTime::from_timestamp_nanos(i64::MAX);
        assert_eq!(sortable_nanos(earliest).unwrap(), 0);
        assert_eq!(sortable_nanos(latest).unwrap(), u64::MAX);
        assert!(sortable_nanos(at(-1, 0)).unwrap() < sortable_nanos(at(0, 0)).unwrap());
        let epoch = DateTime::from_timestamp_nanos(0);
        assert_eq!(sortable_nanos(epoch).unwrap(), 1 << 63);
    }

    #[test]
    fn timestamps_outside_the_storable_range_are_rejected() {
        for outside in [DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::MIN_UTC] {
            let err = message_sk(outside, 1).unwrap_err();
            assert!(matches!(err, StoreError::Rejected(_)), "{err:?}");
            let id = TicketId::generate();
            assert!(matches!(
                inbox_sk(outside, &id),
                Err(StoreError::Rejected(_))
            ));
        }
    }

    #[test]
    fn keys_scope_platform_ids_by_channel() {
        assert_eq!(
            platform_pk(ChannelKind::Facebook, "123"),
            "PLATFORM#facebook:123"
        );
        assert_ne!(
            platform_pk(ChannelKind::Facebook, "123"),
            platform_pk(ChannelKind::Twitter, "123")
        );
        assert_eq!(
            identity_pk(&Identity("email:a@b.example".into())),
            "IDENTITY#email:a@b.example"
        );
    }

    #[test]
    fn ticket_items_read_back_exactly() {
        let t = ticket("K3F9Q2XA", at(30, 5));
        let item = ticket_item(&t, 3).unwrap();
        assert_eq!(get_s(&item, GSI1_PK).unwrap(), "INBOX#pending");
        assert!(get_s(&item, GSI1_SK).unwrap().ends_with("#K3F9Q2XA"));
        assert_eq!(ticket_from_item(&item).unwrap(), (t.clone(), 3));
        assert!(!item.contains_key("related_tickets"), "absent when empty");

        let related = Ticket {
            related_tickets: vec![
                TicketId::parse("M7PH4RTW").unwrap(),
                TicketId::parse("ABCDEFGH").unwrap(),
            ],
            ..t
        };
        let item = ticket_item(&related, 4).unwrap();
        assert_eq!(ticket_from_item(&item).unwrap(), (related, 4));
    }

    #[test]
    fn a_related_ticket_that_is_not_a_ticket_id_is_corrupt() {
        let mut item = ticket_item(&ticket("K3F9Q2XA", at(0, 0)), 1).unwrap();
        item.insert(
            "related_tickets".into(),
            AttributeValue::L(vec![s("not a ticket")]),
        );
        assert!(matches!(
            ticket_from_item(&item),
            Err(StoreError::Corrupt(_))
        ));
        item.insert("related_tickets".into(), s("K3F9Q2XA"));
        assert!(matches!(
            ticket_from_item(&item),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[test]
    fn message_items_read_back_exactly() {
        let stored = StoredMessage {
            message: message(),
            version: 2,
            revised_at: Some(at(5, 7)),
        };
        let t = TicketId::generate();
        let item = message_item(&t, "MSG#x", &stored).unwrap();
        let back = message_from_item(&item).unwrap();
        assert_eq!(back.message, stored.message);
        assert_eq!(back.version, 2);
        assert_eq!(back.revised_at, stored.revised_at);
    }

    #[test]
    fn undecodable_items_are_corrupt() {
        let t = TicketId::generate();
        let mut item = message_item(
            &t,
            "MSG#x",
            &StoredMessage {
                message: message(),
                version: 1,
                revised_at: None,
            },
        )
        .unwrap();
        item.insert("message".into(), s("not json"));
        assert!(matches!(
            message_from_item(&item),
            Err(StoreError::Corrupt(_))
        ));
        let mut ticket = ticket_item(&ticket("K3F9Q2XA", at(0, 0)), 1).unwrap();
        ticket.remove("status");
        let err = ticket_from_item(&ticket).unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt(m) if m.contains("TICKET#K3F9Q2XA") && m.contains("status")),
            "{err:?}"
        );
    }

    #[test]
    fn cancellation_reasons_tell_lost_conditions_from_contention() {
        let reason = |code: &str| CancellationReason::builder().code(code).build();
        assert_eq!(
            cancellation(&[
                reason("None"),
                reason("ConditionalCheckFailed"),
                reason("TransactionConflict"),
                reason("ConditionalCheckFailed"),
            ])
            .unwrap(),
            Commit::ConditionFailed(vec![1, 3])
        );
        assert_eq!(
            cancellation(&[reason("None"), reason("TransactionConflict")]).unwrap(),
            Commit::Contended
        );
        assert!(matches!(
            cancellation(&[reason("ValidationError")]),
            Err(StoreError::Rejected(_))
        ));
    }

    #[test]
    fn a_stale_edit_is_ignored_and_a_removal_is_final() {
        let mut stored = StoredMessage {
            message: message(),
            version: 1,
            revised_at: None,
        };
        let edit = |text: &str, secs| Revision::Edited {
            text: text.into(),
            at: at(secs, 0),
        };
        assert!(revise(&mut stored, &edit("v2", 20)));
        assert!(!revise(&mut stored, &edit("v1", 10)));
        assert_eq!(stored.message.text, "v2");
        assert!(revise(&mut stored, &Revision::Removed { at: at(15, 0) }));
        assert_eq!(stored.revised_at, Some(at(20, 0)));
        assert!(!revise(&mut stored, &Revision::Removed { at: at(15, 0) }));
        assert!(!revise(&mut stored, &edit("v3", 30)));
        assert_eq!(stored.message.event, MessageEvent::Removed);
        assert_eq!(stored.message.text, "v2");
    }
}
