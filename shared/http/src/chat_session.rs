//! Website widget sessions: the short-lived signed token the public chat API issues a visitor.
//!
//! A token is `v1.<base64url(JSON {sid, vid, name?, email?, exp})>.<base64url(HMAC-SHA256)>`,
//! signed with the chat session key (`CROSSDESK_CHAT_SESSION_KEY`, never the chat webhook
//! secret). It is valid for [`TOKEN_LIFETIME_SECS`]; a token whose signature is good may be
//! exchanged for a new one of the same session up to [`REFRESH_GRACE_SECS`] after it expired.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use thiserror::Error;

/// How long a session token is valid, in seconds (1 hour).
pub const TOKEN_LIFETIME_SECS: i64 = 3600;
/// How long after expiry a token may still be refreshed, in seconds (7 days).
pub const REFRESH_GRACE_SECS: i64 = 7 * 24 * 3600;
/// The shortest session key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 16;
/// The longest token read; anything longer is refused before decoding.
const MAX_TOKEN_BYTES: usize = 2048;
const VERSION: &str = "v1";

/// A widget session's id: `cs_` and 32 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChatSessionId(String);

/// A widget visitor's id: `cv_` and 32 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VisitorId(String);

fn prefixed_hex(prefix: &str, raw: &str) -> bool {
    raw.strip_prefix(prefix).is_some_and(|hex| {
        hex.len() == 32
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

macro_rules! random_id {
    ($ty:ident, $prefix:literal, $what:literal) => {
        impl $ty {
            /// The prefix of every such id.
            pub const PREFIX: &'static str = $prefix;

            /// A new random id.
            pub fn generate() -> Self {
                $ty(format!(
                    "{}{}",
                    $prefix,
                    hex::encode(rand::random::<[u8; 16]>())
                ))
            }

            /// Parses an id.
            pub fn parse(raw: &str) -> Result<Self, String> {
                if prefixed_hex($prefix, raw) {
                    Ok($ty(raw.to_string()))
                } else {
                    Err(format!(
                        concat!(
                            "`{}` is not a ",
                            $what,
                            " (",
                            $prefix,
                            " and 32 hex digits)"
                        ),
                        raw.chars().take(80).collect::<String>()
                    ))
                }
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $ty {
            type Error = String;
            fn try_from(raw: String) -> Result<Self, String> {
                $ty::parse(&raw)
            }
        }

        impl From<$ty> for String {
            fn from(id: $ty) -> String {
                id.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

random_id!(ChatSessionId, "cs_", "widget session id");
random_id!(VisitorId, "cv_", "widget visitor id");

/// Whether a chat session id is a website widget session's (its replies are delivered by the
/// store, read by the widget, rather than posted to a chat backend).
pub fn is_widget_session(session_id: &str) -> bool {
    session_id.starts_with(ChatSessionId::PREFIX)
}

/// What a session token says: whose session it is, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    /// The session.
    pub sid: ChatSessionId,
    /// The visitor.
    pub vid: VisitorId,
    /// The name the visitor left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The email the visitor left (validated when given, never verified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Expiry, unix seconds.
    pub exp: i64,
}

impl SessionClaims {
    /// When the token expires.
    pub fn expires_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.exp, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// Why a token is refused (every case answers 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TokenError {
    /// Not a token of this format.
    #[error("the session token is malformed")]
    Malformed,
    /// The signature does not match: forged or signed with another key.
    #[error("the session token's signature is invalid")]
    BadSignature,
    /// Past its expiry (or, for a refresh, past the refresh grace).
    #[error("the session token has expired")]
    Expired,
}

/// The key that signs and verifies session tokens.
#[derive(Clone)]
pub struct SessionKey {
    key: SecretString,
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey([redacted])")
    }
}

impl SessionKey {
    /// A key from a configured secret of at least [`MIN_KEY_BYTES`] bytes.
    pub fn new(secret: SecretString) -> Result<Self, String> {
        if secret.expose_secret().len() < MIN_KEY_BYTES {
            return Err(format!(
                "the chat session key must be at least {MIN_KEY_BYTES} bytes (e.g. `openssl rand -hex 32`)"
            ));
        }
        Ok(SessionKey { key: secret })
    }

    /// A random key of this process (tokens do not survive a restart).
    pub fn generate() -> Self {
        SessionKey {
            key: SecretString::from(hex::encode(rand::random::<[u8; 32]>())),
        }
    }

    fn mac(&self, signed: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.expose_secret().as_bytes())
            .expect("HMAC takes a key of any length");
        mac.update(signed);
        mac
    }

    /// The token carrying `claims`.
    pub fn issue(&self, claims: &SessionClaims) -> String {
        let payload =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims are plain JSON"));
        let signed = format!("{VERSION}.{payload}");
        let tag = URL_SAFE_NO_PAD.encode(self.mac(signed.as_bytes()).finalize().into_bytes());
        format!("{signed}.{tag}")
    }

    /// The claims of a token signed with this key, whatever its expiry.
    fn open(&self, token: &str) -> Result<SessionClaims, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Malformed);
        }
        let (signed, tag) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let payload = signed
            .strip_prefix(VERSION)
            .and_then(|rest| rest.strip_prefix('.'))
            .ok_or(TokenError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| TokenError::Malformed)?;
        // Constant-time comparison.
        self.mac(signed.as_bytes())
            .verify_slice(&tag)
            .map_err(|_| TokenError::BadSignature)?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Malformed)?;
        serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)
    }

    /// The claims of a valid, unexpired token.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<SessionClaims, TokenError> {
        let claims = self.open(token)?;
        if now.timestamp() >= claims.exp {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }

    /// The claims of a token that may be refreshed: correctly signed and expired less than
    /// [`REFRESH_GRACE_SECS`] ago.
    pub fn verify_for_refresh(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<SessionClaims, TokenError> {
        let claims = self.open(token)?;
        if now.timestamp() >= claims.exp.saturating_add(REFRESH_GRACE_SECS) {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_000_000, 0).unwrap()
    }

    fn key() -> SessionKey {
        SessionKey::new(SecretString::from("a-test-session-key-0123456789")).unwrap()
    }

    fn claims() -> SessionClaims {
        SessionClaims {
            sid: ChatSessionId::generate(),
            vid: VisitorId::generate(),
            name: Some("Alex".into()),
            email: None,
            exp: now().timestamp() + TOKEN_LIFETIME_SECS,
        }
    }

    #[test]
    fn a_token_verifies_to_its_claims_until_it_expires() {
        let claims = claims();
        let token = key().issue(&claims);
        assert_eq!(key().verify(&token, now()), Ok(claims.clone()));
        let at_expiry = claims.expires_at();
        assert_eq!(key().verify(&token, at_expiry), Err(TokenError::Expired));
    }

    #[test]
    fn rejects_a_forged_or_foreign_token() {
        let token = key().issue(&claims());
        let other = SessionKey::new(SecretString::from("another-session-key-012345")).unwrap();
        assert_eq!(other.verify(&token, now()), Err(TokenError::BadSignature));

        // Someone else's session id in a payload re-encoded under the old signature.
        let (_, tag) = token.rsplit_once('.').unwrap();
        let mut forged_claims = claims();
        forged_claims.exp += 1_000_000;
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged_claims).unwrap());
        let forged = format!("v1.{payload}.{tag}");
        assert_eq!(key().verify(&forged, now()), Err(TokenError::BadSignature));

        for junk in ["", "v1", "v1..", "v2.abc.def", "v1.abc.!!!", "Bearer x"] {
            assert!(key().verify(junk, now()).is_err(), "{junk}");
        }
        assert_eq!(
            key().verify(&"a".repeat(5000), now()),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn an_expired_token_refreshes_within_seven_days_only() {
        let claims = claims();
        let token = key().issue(&claims);
        let expired = claims.expires_at();
        assert_eq!(key().verify(&token, expired), Err(TokenError::Expired));
        let next_day = expired + TimeDelta::days(1);
        assert_eq!(
            key().verify_for_refresh(&token, next_day),
            Ok(claims.clone())
        );
        let too_late = expired + TimeDelta::seconds(REFRESH_GRACE_SECS);
        assert_eq!(
            key().verify_for_refresh(&token, too_late),
            Err(TokenError::Expired)
        );
        let other = SessionKey::generate();
        assert_eq!(
            other.verify_for_refresh(&token, next_day),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn ids_have_their_prefix_and_32_hex_digits() {
        let sid = ChatSessionId::generate();
        assert!(sid.as_str().starts_with("cs_") && sid.as_str().len() == 35);
        assert!(is_widget_session(sid.as_str()));
        assert!(!is_widget_session("sess_sample_01"));
        assert!(VisitorId::parse(VisitorId::generate().as_str()).is_ok());
        for bad in ["cs_", "cv_0123", "cs_0123456789abcdef0123456789ABCDEF", "x"] {
            assert!(ChatSessionId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_key_is_never_printed_and_must_be_long_enough() {
        assert!(SessionKey::new(SecretString::from("short")).is_err());
        assert!(!format!("{:?}", key()).contains("a-test-session-key"));
    }
}
