//! Crossdesk's HTTP surface as axum routers: the webhook routes (`/webhooks/{channel}`) and the
//! agent API (`/api/…`), the website widget's public chat API (`/chat/api/…`) and the console's
//! static files. The local stack serves them on a TCP port; each Lambda function hands
//! the same router to `lambda_http::run`.

pub mod agent;
pub mod auth;
pub mod channels;
pub mod chat_api;
pub mod chat_session;
pub mod conditional;
pub mod error;
pub mod events;
pub mod ingest;
pub mod notifications;
pub mod rate_limit;
pub mod web_assets;
mod workflow;

pub use agent::{agent_router, AgentState};
pub use auth::{AgentAuth, BearerTokenAuth};
pub use channels::{channels_router, ChannelsState};
pub use chat_api::{chat_router, ChatApiSettings, ChatApiState, ClientIp};
pub use error::ApiError;
pub use events::{events_router, EventsApiState};
pub use ingest::{
    webhook_router, ChannelSlot, IngestState, SignatureFailureCounter, SignatureFailureMetric,
};
pub use notifications::{notifications_router, NotificationsApiState};
pub use rate_limit::{InMemoryRateLimiter, RateLimiter};
pub use web_assets::{web_router, ConsoleAuth};
