//! Who is calling the agent API. The local stack checks a bearer token; in AWS, API Gateway's
//! JWT authorizer has already verified the caller and the function reads the claims.

use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use crossdesk_core::agent::AgentRef;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// Decides who an agent API request comes from, or refuses it (401).
pub trait AgentAuth: Send + Sync {
    /// The calling agent.
    fn authenticate(&self, request: &Parts) -> Result<AgentRef, ApiError>;
}

/// Accepts `Authorization: Bearer <token>` for one shared agent token.
pub struct BearerTokenAuth {
    digest: [u8; 32],
}

impl BearerTokenAuth {
    /// Auth with the given token.
    pub fn new(token: &SecretString) -> Self {
        BearerTokenAuth {
            digest: Sha256::digest(token.expose_secret().as_bytes()).into(),
        }
    }

    /// Whether the `Authorization` value carries the token (constant time).
    pub fn accepts(&self, authorization: Option<&str>) -> bool {
        let Some(token) = authorization.and_then(|v| v.strip_prefix("Bearer ")) else {
            return false;
        };
        let presented: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
        presented.ct_eq(&self.digest).into()
    }
}

impl AgentAuth for BearerTokenAuth {
    fn authenticate(&self, request: &Parts) -> Result<AgentRef, ApiError> {
        let value = request
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if self.accepts(value) {
            Ok(AgentRef {
                id: "local-agent".into(),
                name: Some("Agent".into()),
            })
        } else {
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or wrong agent token (Authorization: Bearer <CROSSDESK_AGENT_TOKEN>)",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_the_exact_bearer_token() {
        let auth = BearerTokenAuth::new(&SecretString::from("s3cret"));
        assert!(auth.accepts(Some("Bearer s3cret")));
        assert!(!auth.accepts(Some("Bearer s3cret2")));
        assert!(!auth.accepts(Some("Basic s3cret")));
        assert!(!auth.accepts(Some("s3cret")));
        assert!(!auth.accepts(None));
    }
}
