//! The DynamoDB table's schema (owned by the Dynamo store; see [`crate::dynamo`] for the item
//! layout).
//!
//! Keys: partition key `pk` (S), sort key `sk` (S); one global secondary index `inbox` with
//! partition key `gsi1pk` (S) and sort key `gsi1sk` (S), projecting all attributes. On-demand
//! billing.

use std::time::Duration;

use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use thiserror::Error;

use crate::error::describe;

/// The partition key attribute.
pub const PK: &str = "pk";
/// The sort key attribute.
pub const SK: &str = "sk";
/// The inbox index's name.
pub const INBOX_INDEX: &str = "inbox";
/// The inbox index's partition key attribute.
pub const GSI1_PK: &str = "gsi1pk";
/// The inbox index's sort key attribute.
pub const GSI1_SK: &str = "gsi1sk";

/// How long [`create_table`] waits for a new table to become active.
pub const ACTIVE_TIMEOUT: Duration = Duration::from_secs(300);

/// Why the table could not be created.
#[derive(Debug, Error)]
pub enum TableError {
    /// DynamoDB refused to create it (it exists already, bad name, no permission, unreachable).
    #[error("CreateTable failed: {0}")]
    Create(String),
    /// It was created but did not become active in time.
    #[error("the table did not become active: {0}")]
    NotActive(String),
}

/// Creates the table `name` with Crossdesk's schema and waits until it is active.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str) -> Result<(), TableError> {
    let build = |e: aws_sdk_dynamodb::error::BuildError| TableError::Create(e.to_string());
    let string_attribute = |attribute: &str| {
        AttributeDefinition::builder()
            .attribute_name(attribute)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(build)
    };
    let key = |attribute: &str, key_type: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(attribute)
            .key_type(key_type)
            .build()
            .map_err(build)
    };
    let inbox = GlobalSecondaryIndex::builder()
        .index_name(INBOX_INDEX)
        .key_schema(key(GSI1_PK, KeyType::Hash)?)
        .key_schema(key(GSI1_SK, KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(build)?;
    client
        .create_table()
        .table_name(name)
        .attribute_definitions(string_attribute(PK)?)
        .attribute_definitions(string_attribute(SK)?)
        .attribute_definitions(string_attribute(GSI1_PK)?)
        .attribute_definitions(string_attribute(GSI1_SK)?)
        .key_schema(key(PK, KeyType::Hash)?)
        .key_schema(key(SK, KeyType::Range)?)
        .global_secondary_indexes(inbox)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .map_err(|e| TableError::Create(describe(&e)))?;
    client
        .wait_until_table_exists()
        .table_name(name)
        .wait(ACTIVE_TIMEOUT)
        .await
        .map_err(|e| TableError::NotActive(DisplayErrorContext(&e).to_string()))?;
    Ok(())
}
