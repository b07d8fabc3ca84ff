//! Crossdesk's local stack: the webhook routes, the ticket writer and the agent API in one
//! process, on an embedded SQLite database, with no AWS account.
//!
//! The binary `crossdesk-local` runs it; `crossdesk-send` signs the sample events in `events/`
//! and posts them to it.

pub mod config;
pub mod outbox;
pub mod samples;
pub mod stack;

pub use config::LocalConfig;
pub use stack::LocalStack;
