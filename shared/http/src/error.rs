//! The one place where errors become HTTP answers: `{"error":{"code","message"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use crossdesk_channels::{HandshakeError, ParseError, VerifyError};
use crossdesk_core::agent::AgentError;
use serde_json::json;

/// An error answer: a status, a stable machine-readable code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable code (`unauthorized`, `invalid_signature`, …).
    pub code: &'static str,
    /// What went wrong, for the person reading the answer.
    pub message: String,
    /// Seconds to wait before trying again (`Retry-After`), for a 429 or 503.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error answer.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same error telling the caller to wait `seconds` (`Retry-After`).
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// 400 with the given message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 413: the body is larger than `limit` bytes.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body is larger than {limit} bytes"),
        )
    }

    /// 503: a dependency is down; the caller should retry.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        }
        response
    }
}

impl From<VerifyError> for ApiError {
    fn from(e: VerifyError) -> Self {
        let (status, code) = match &e {
            VerifyError::MissingHeader(_) => (StatusCode::UNAUTHORIZED, "missing_signature"),
            VerifyError::MalformedHeader { .. } => (StatusCode::BAD_REQUEST, "malformed_signature"),
            VerifyError::BadSignature => (StatusCode::UNAUTHORIZED, "invalid_signature"),
            VerifyError::Stale { .. } => (StatusCode::UNAUTHORIZED, "stale_request"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<ParseError> for ApiError {
    fn from(e: ParseError) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_payload", e.to_string())
    }
}

impl From<HandshakeError> for ApiError {
    fn from(e: HandshakeError) -> Self {
        let (status, code) = match &e {
            HandshakeError::NotSupported => (StatusCode::METHOD_NOT_ALLOWED, "no_handshake"),
            HandshakeError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_handshake"),
            HandshakeError::Forbidden(_) => (StatusCode::FORBIDDEN, "handshake_refused"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl From<AgentError> for ApiError {
    fn from(e: AgentError) -> Self {
        let (status, code) = match &e {
            AgentError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            AgentError::Invalid(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            AgentError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            AgentError::WindowClosed(_) => (StatusCode::CONFLICT, "window_closed"),
            AgentError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            AgentError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        };
        ApiError::new(status, code, e.to_string())
    }
}
