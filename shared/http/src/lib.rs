//! Crossdesk's HTTP surface as axum routers: the webhook routes (`/webhooks/{channel}`) and the
//! agent API (`/api/…`). The local stack serves them on a TCP port; each Lambda function hands
//! the same router to `lambda_http::run`.

pub mod agent;
pub mod auth;
pub mod channels;
pub mod error;
pub mod events;
pub mod ingest;

pub use agent::{agent_router, AgentState};
pub use auth::{AgentAuth, BearerTokenAuth};
pub use channels::{channels_router, ChannelsState};
pub use error::ApiError;
pub use events::{events_router, EventsApiState};
pub use ingest::{
    webhook_router, ChannelSlot, IngestState, SignatureFailureCounter, SignatureFailureMetric,
};
