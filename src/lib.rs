//! Crossdesk's local stack: the webhook routes, the ticket writer and the agent API in one
//! process, on an embedded SQLite database, with no AWS account (or, with `--aws`, on the AWS
//! adapters, against an emulator or a real account).
//!
//! The binary `crossdesk-local` runs it; `crossdesk-send` signs the sample events in `events/`
//! and posts them to it.

pub mod config;
pub mod consumer;
pub mod events;
pub mod health;
pub mod load;
pub mod monitoring;
pub mod notify;
pub mod outbox;
pub mod samples;
pub mod sla;
pub mod stack;

pub use config::{Backend, LocalConfig};
pub use stack::LocalStack;
