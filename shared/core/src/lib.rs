//! Crossdesk's domain core: the normalized message model, tickets and contacts, the threading
//! rules that place a message in a ticket, and the ports (`TicketStore`, `InboundQueue`,
//! `OutboundQueue`, `RawArchive`, `Clock`, and `health::ChannelHealthStore`) that the embedded and
//! AWS adapters implement.
//!
//! Nothing here knows about AWS, Lambda or an HTTP framework.

pub mod agent;
pub mod agent_workflow;
mod echo;
pub mod events;
pub mod faults;
pub mod health;
pub mod ids;
pub mod mail_signature;
pub mod mail_threading;
pub mod media;
pub mod model;
pub mod notify;
pub mod ordering;
pub mod personal_data;
pub mod ports;
pub mod reply_window;
pub mod settings;
pub mod similar;
pub mod sla;
pub mod sla_watch;
pub mod templates;
pub mod triage;
pub mod workflow;
pub mod writer;

pub use ids::{ContactId, ConversationKey, EmailAddress, MessageId, TicketId};
pub use model::*;
pub use ports::*;
