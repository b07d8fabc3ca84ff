//! Creating a deployment's table, queues and bucket where they are missing: for tests on an
//! emulator and `crossdesk-local --aws --create-resources`. Deployed stacks get theirs from the
//! template in `infra/`.

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use aws_sdk_sqs::types::QueueAttributeName;
use thiserror::Error;
use tracing::info;

use crate::config::AwsConfig;
use crate::error::{describe, error_code};

/// A resource could not be created.
#[derive(Debug, Error)]
pub enum ResourceError {
    /// The DynamoDB table.
    #[error("creating table {name}: {reason}")]
    Table {
        /// Its name.
        name: String,
        /// What went wrong.
        reason: String,
    },
    /// A queue.
    #[error("creating queue {name}: {reason}")]
    Queue {
        /// Its name.
        name: String,
        /// What went wrong.
        reason: String,
    },
    /// The bucket.
    #[error("creating bucket {name}: {reason}")]
    Bucket {
        /// Its name.
        name: String,
        /// What went wrong.
        reason: String,
    },
}

/// The names of a deployment's resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceNames {
    /// The DynamoDB table.
    pub table: String,
    /// The inbound FIFO queue (its dead-letter queue adds `-dlq`).
    pub inbound_queue: String,
    /// The outbound FIFO queue (its dead-letter queue adds `-dlq`).
    pub outbound_queue: String,
    /// The standard queue of outgoing events (its dead-letter queue adds `-dlq`).
    pub events_queue: String,
    /// The bucket.
    pub bucket: String,
}

impl ResourceNames {
    /// `<prefix>-tickets`, `<prefix>-inbound.fifo`, `<prefix>-outbound.fifo`, `<prefix>-events`,
    /// `<prefix>-data` (the prefix should be lowercase: bucket names must be).
    pub fn with_prefix(prefix: &str) -> Self {
        ResourceNames {
            table: format!("{prefix}-tickets"),
            inbound_queue: format!("{prefix}-inbound.fifo"),
            outbound_queue: format!("{prefix}-outbound.fifo"),
            events_queue: format!("{prefix}-events"),
            bucket: format!("{prefix}-data"),
        }
    }
}

/// How many receives before a message moves to the dead-letter queue.
pub const MAX_RECEIVE_COUNT: u32 = 5;

/// Creates whatever of the resources is missing and returns the configuration that points at
/// them (no secret id: secrets then come from `CROSSDESK_*` variables).
pub async fn create_resources(
    sdk: &SdkConfig,
    names: &ResourceNames,
) -> Result<AwsConfig, ResourceError> {
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    let table_missing = match dynamo
        .describe_table()
        .table_name(&names.table)
        .send()
        .await
    {
        Ok(_) => false,
        Err(e) if error_code(&e) == Some("ResourceNotFoundException") => true,
        Err(e) => {
            return Err(ResourceError::Table {
                name: names.table.clone(),
                reason: describe(&e),
            })
        }
    };
    if table_missing {
        crate::table::create_table(&dynamo, &names.table)
            .await
            .map_err(|e| ResourceError::Table {
                name: names.table.clone(),
                reason: e.to_string(),
            })?;
        info!(table = %names.table, "table created");
    }

    let sqs = aws_sdk_sqs::Client::new(sdk);
    let inbound_queue_url = fifo_queue_with_dlq(&sqs, &names.inbound_queue).await?;
    let outbound_queue_url = fifo_queue_with_dlq(&sqs, &names.outbound_queue).await?;
    let events_queue_url = standard_queue_with_dlq(&sqs, &names.events_queue).await?;

    let s3 = crate::s3::client(sdk);
    let mut create = s3.create_bucket().bucket(&names.bucket);
    let region = sdk.region().map(|r| r.as_ref().to_string());
    if let Some(region) = region.filter(|r| r != "us-east-1") {
        create = create.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region.as_str()))
                .build(),
        );
    }
    match create.send().await {
        Ok(_) => info!(bucket = %names.bucket, "bucket created"),
        Err(e) if error_code(&e) == Some("BucketAlreadyOwnedByYou") => {}
        Err(e) => {
            return Err(ResourceError::Bucket {
                name: names.bucket.clone(),
                reason: describe(&e),
            })
        }
    }

    Ok(AwsConfig {
        table_name: names.table.clone(),
        inbound_queue_url,
        outbound_queue_url,
        bucket: names.bucket.clone(),
        secret_id: None,
        events_queue_url: Some(events_queue_url),
    })
}

/// How many receives before an outgoing event moves to its dead-letter queue: more than the
/// sender's own rounds, so the sender gives up first (and keeps the event for replay); the
/// dead-letter queue catches only bodies it cannot read and senders that keep crashing.
pub const EVENTS_MAX_RECEIVE_COUNT: u32 = 20;

/// Creates (or finds) a standard queue and its dead-letter queue; returns the queue's URL.
async fn standard_queue_with_dlq(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
) -> Result<String, ResourceError> {
    let dlq_name = format!("{name}-dlq");
    let queue_error = |name: &str, reason: String| ResourceError::Queue {
        name: name.to_string(),
        reason,
    };
    let dlq_url = sqs
        .create_queue()
        .queue_name(&dlq_name)
        .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
        .send()
        .await
        .map_err(|e| queue_error(&dlq_name, describe(&e)))?
        .queue_url
        .unwrap_or_default();
    let dlq_arn = queue_arn(sqs, &dlq_url)
        .await
        .map_err(|reason| queue_error(&dlq_name, reason))?;
    let url = sqs
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::VisibilityTimeout, "60")
        .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
        .attributes(
            QueueAttributeName::RedrivePolicy,
            serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": EVENTS_MAX_RECEIVE_COUNT})
                .to_string(),
        )
        .send()
        .await
        .map_err(|e| queue_error(name, describe(&e)))?
        .queue_url
        .unwrap_or_default();
    Ok(url)
}

/// A queue's ARN.
async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<String, String> {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| describe(&e))?
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or_else(|| "no QueueArn in its attributes".to_string())
}

/// Creates (or finds) a FIFO queue and its FIFO dead-letter queue; returns the queue's URL.
async fn fifo_queue_with_dlq(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
) -> Result<String, ResourceError> {
    let stem = name.strip_suffix(".fifo").unwrap_or(name);
    let dlq_name = format!("{stem}-dlq.fifo");
    let queue_error = |name: &str, reason: String| ResourceError::Queue {
        name: name.to_string(),
        reason,
    };
    let fifo = HashMap::from([
        (QueueAttributeName::FifoQueue, "true".to_string()),
        (
            QueueAttributeName::ContentBasedDeduplication,
            "false".to_string(),
        ),
    ]);
    let mut dlq_attributes = fifo.clone();
    dlq_attributes.insert(QueueAttributeName::MessageRetentionPeriod, "1209600".into());
    let dlq_url = sqs
        .create_queue()
        .queue_name(&dlq_name)
        .set_attributes(Some(dlq_attributes))
        .send()
        .await
        .map_err(|e| queue_error(&dlq_name, describe(&e)))?
        .queue_url
        .unwrap_or_default();
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| queue_error(&dlq_name, describe(&e)))?
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or_else(|| queue_error(&dlq_name, "no QueueArn in its attributes".into()))?;
    let mut attributes = fifo;
    attributes.insert(QueueAttributeName::VisibilityTimeout, "60".into());
    attributes.insert(
        QueueAttributeName::RedrivePolicy,
        serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT})
            .to_string(),
    );
    let url = sqs
        .create_queue()
        .queue_name(name)
        .set_attributes(Some(attributes))
        .send()
        .await
        .map_err(|e| queue_error(name, describe(&e)))?
        .queue_url
        .unwrap_or_default();
    Ok(url)
}
