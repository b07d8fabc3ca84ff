//! What Crossdesk's Lambda functions share beyond the HTTP routers: the agent identity from
//! API Gateway's JWT authorizer, the SQS batch handler of the ticket writer (partial batch
//! failures in FIFO order), the event sender's batch handler, and the SES receipt handler of the
//! email ingest.
//!
//! Each function's `main.rs` only loads its configuration, builds its clients once, and hands
//! one of these (or a router from `crossdesk-http`) to the Lambda runtime.

pub mod auth;
pub mod client_ip;
pub mod deploy;
pub mod events;
pub mod health;
pub mod metrics;
pub mod monitoring;
pub mod ses;
pub mod settings;
pub mod sla;
pub mod sqs;

pub use auth::JwtClaimsAuth;
