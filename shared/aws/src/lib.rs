//! Crossdesk's AWS adapters: the same ports as the embedded stack, on DynamoDB, SQS FIFO, S3,
//! Secrets Manager and SES.
//!
//! - [`DynamoTicketStore`]: tickets, messages and contacts in one DynamoDB table
//!   (the single-table design is documented in [`dynamo`]).
//! - [`SqsQueue`]: the inbound and outbound FIFO queues and the outgoing events queue; bodies
//!   over the SQS limit go to S3.
//! - The [`WorkflowStore`](crossdesk_core::workflow::WorkflowStore) on [`DynamoTicketStore`]:
//!   the working state of tickets and contacts (layout in [`workflow`]).
//! - [`DynamoEventLedger`]: which endpoint has which outgoing event, and the events given up on.
//! - [`S3Archive`]: raw webhook payloads, content-addressed.
//! - [`ChannelSecrets`]: the channel secrets, from Secrets Manager, loaded once per cold start.
//! - [`SesEmailSender`]: email replies through SES v2 with threading headers.
//! - [`SesNotificationMailer`]: agent notification mail through SES v2 (simple content).
//!
//! Every adapter takes its SDK client from [`sdk_config`], which honors `AWS_ENDPOINT_URL` (moto
//! in tests, LocalStack or the real AWS otherwise).

#![warn(missing_docs)]

pub mod channel_health;
pub mod config;
pub mod dynamo;
pub mod error;
pub mod event_ledger;
pub mod notify_mail;
pub mod resources;
pub mod s3;
pub mod secrets;
pub mod ses;
pub mod ses_receiving;
pub mod sqs;
pub mod table;
pub mod workflow;

pub use config::{sdk_config, AwsConfig, ConfigError};
pub use dynamo::DynamoTicketStore;
pub use event_ledger::DynamoEventLedger;
pub use notify_mail::SesNotificationMailer;
pub use resources::{create_resources, ResourceError, ResourceNames};
pub use s3::{S3Archive, S3MediaStore};
pub use secrets::{ChannelSecrets, SecretsError};
pub use ses::SesEmailSender;
pub use sqs::SqsQueue;
