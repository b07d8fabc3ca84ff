//! Replies: what every channel's sender receives and how it reports failure. Each channel
//! module implements [`ReplySender`] against its platform's API; the reply-sender function
//! (retries, idempotency, delivery status) only sees this trait.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crossdesk_core::{Message, TicketId};
use thiserror::Error;

/// One reply to deliver, with what the platform call needs to address it.
#[derive(Debug, Clone, Copy)]
pub struct OutboundReply<'a> {
    /// The ticket the reply belongs to.
    pub ticket_id: &'a TicketId,
    /// The stored outbound message: text, channel, conversation, visibility, Crossdesk id.
    pub reply: &'a Message,
    /// The customer's latest message in the reply's conversation (the comment, tweet or email
    /// being answered; for Messenger, the message that opened the current window).
    pub answering: &'a Message,
    /// Every message of the ticket, oldest first (email threading headers come from it).
    pub thread: &'a [Message],
    /// The time of sending (messaging windows are judged against it).
    pub now: DateTime<Utc>,
}

/// What the platform answered on success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The platform's id of the sent message (Messenger `message_id`, comment id, tweet id,
    /// DM event id, SES message id, chat message id).
    pub platform_id: String,
}

/// Why a reply was not delivered. Retryable or not is decided here, by the platform's error
/// code, never at the call site.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum SendError {
    /// A passing failure (network, 5xx, rate limit): the same call may succeed later.
    #[error("{code}: {reason}")]
    Transient {
        /// The platform's error code (or `network`, `http_503`, …).
        code: String,
        /// What happened, for the agent.
        reason: String,
        /// When the platform says to try again (`Retry-After`, `x-rate-limit-reset`).
        retry_after: Option<Duration>,
    },
    /// The platform refused the reply for good (window closed, recipient unavailable, text too
    /// long): sending it again cannot help.
    #[error("{code}: {reason}")]
    Permanent {
        /// The platform's error code (or Crossdesk's, e.g. `window_closed`).
        code: String,
        /// What happened and what the agent can do instead.
        reason: String,
    },
    /// The channel's credentials were rejected (Graph error 190, X 401): permanent, and the
    /// channel needs re-authorization.
    #[error("{code}: {reason}")]
    Unauthorized {
        /// The platform's error code.
        code: String,
        /// What happened.
        reason: String,
    },
    /// The request may have reached the platform but no answer came back (a timeout after
    /// sending, a connection cut mid-answer). Sending again could deliver the reply twice, so
    /// it is not retried: the reply becomes `unknown` for an agent to check.
    #[error("{code}: {reason}")]
    OutcomeUnknown {
        /// `unknown_outcome`, or the platform's code.
        code: String,
        /// What happened and what the agent should check.
        reason: String,
    },
}

impl SendError {
    /// Whether sending again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SendError::Transient { .. })
    }

    /// The error code.
    pub fn code(&self) -> &str {
        match self {
            SendError::Transient { code, .. }
            | SendError::Permanent { code, .. }
            | SendError::Unauthorized { code, .. }
            | SendError::OutcomeUnknown { code, .. } => code,
        }
    }

    /// The human-readable reason.
    pub fn reason(&self) -> &str {
        match self {
            SendError::Transient { reason, .. }
            | SendError::Permanent { reason, .. }
            | SendError::Unauthorized { reason, .. }
            | SendError::OutcomeUnknown { reason, .. } => reason,
        }
    }

    /// A permanent refusal decided by Crossdesk before calling the platform.
    pub fn refused(code: &str, reason: impl Into<String>) -> Self {
        SendError::Permanent {
            code: code.to_string(),
            reason: reason.into(),
        }
    }
}

/// Delivers replies on one channel through the platform's own API.
#[async_trait]
pub trait ReplySender: Send + Sync {
    /// Sends one reply; called at most once per attempt, never retried inside.
    async fn send(&self, reply: &OutboundReply<'_>) -> Result<Sent, SendError>;
}

/// Maps a transport failure: a failed connection sent nothing (transient, retried); anything
/// after the request may have left (a timeout, a cut answer) has an unknown outcome.
pub fn network_error(e: &reqwest::Error) -> SendError {
    if e.is_connect() {
        SendError::Transient {
            code: "network".into(),
            reason: format!("the platform could not be reached: {e}"),
            retry_after: None,
        }
    } else {
        SendError::OutcomeUnknown {
            code: "unknown_outcome".into(),
            reason: format!(
                "the call was cut short after it was sent ({e}); the reply may have been \
                 delivered: check the conversation before sending it again"
            ),
        }
    }
}

/// Reads a `Retry-After` header given in seconds.
pub fn retry_after_secs(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}
