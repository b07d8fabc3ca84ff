//! [`ChannelSecrets`]: the channel secrets, read once per cold start from one Secrets Manager
//! secret holding a JSON object, and kept in memory (never logged: `SecretString` redacts).

use secrecy::SecretString;
use serde_json::Value;
use thiserror::Error;
use tracing::{info, warn};

use crate::error::describe;

/// Why the secrets could not be loaded.
#[derive(Debug, Error)]
pub enum SecretsError {
    /// Secrets Manager refused or failed the read.
    #[error("reading secret {id}: {reason}")]
    Unavailable {
        /// The secret's id or ARN.
        id: String,
        /// What went wrong.
        reason: String,
    },
    /// The secret is not a JSON object of strings.
    #[error("secret {id} is not a JSON object of string values: {reason}")]
    Malformed {
        /// The secret's id or ARN.
        id: String,
        /// What is wrong (never the value).
        reason: String,
    },
}

/// The secrets of every channel; a channel whose secrets are missing is reported unconfigured.
#[derive(Debug, Clone, Default)]
pub struct ChannelSecrets {
    /// `facebook_app_secret`: signs Facebook webhooks (`X-Hub-Signature-256`).
    pub facebook_app_secret: Option<SecretString>,
    /// `facebook_verify_token`: answers the subscription handshake.
    pub facebook_verify_token: Option<SecretString>,
    /// `facebook_page_token`: sends Messenger messages and comment replies.
    pub facebook_page_token: Option<SecretString>,
    /// `twitter_consumer_key`: the X app's key (OAuth 1.0a).
    pub twitter_consumer_key: Option<SecretString>,
    /// `twitter_consumer_secret`: signs X webhooks and CRC answers; OAuth 1.0a.
    pub twitter_consumer_secret: Option<SecretString>,
    /// `twitter_access_token`: the account's access token.
    pub twitter_access_token: Option<SecretString>,
    /// `twitter_access_secret`: the account's access token secret.
    pub twitter_access_secret: Option<SecretString>,
    /// `chat_secret`: signs chat webhooks and chat callbacks.
    pub chat_secret: Option<SecretString>,
    /// `chat_session_key`: signs the website widget's visitor sessions (never the chat secret).
    pub chat_session_key: Option<SecretString>,
    /// `email_thread_key`: signs the Message-IDs and plus-addresses of email replies, so the
    /// ticket writer can tell a reply to Crossdesk's mail from a hijack attempt.
    pub email_thread_key: Option<SecretString>,
    /// `events_webhook_secret`: signs the outgoing events posted to the events webhook.
    pub events_webhook_secret: Option<SecretString>,
}

/// The secret's JSON keys and the development variables standing in for them.
const KEYS: &[(&str, &str)] = &[
    ("facebook_app_secret", "CROSSDESK_FACEBOOK_APP_SECRET"),
    ("facebook_verify_token", "CROSSDESK_FACEBOOK_VERIFY_TOKEN"),
    ("facebook_page_token", "CROSSDESK_FACEBOOK_PAGE_TOKEN"),
    ("twitter_consumer_key", "CROSSDESK_TWITTER_CONSUMER_KEY"),
    (
        "twitter_consumer_secret",
        "CROSSDESK_TWITTER_CONSUMER_SECRET",
    ),
    ("twitter_access_token", "CROSSDESK_TWITTER_ACCESS_TOKEN"),
    ("twitter_access_secret", "CROSSDESK_TWITTER_ACCESS_SECRET"),
    ("chat_secret", "CROSSDESK_CHAT_SECRET"),
    ("chat_session_key", "CROSSDESK_CHAT_SESSION_KEY"),
    ("email_thread_key", "CROSSDESK_EMAIL_THREAD_KEY"),
    ("events_webhook_secret", "CROSSDESK_EVENTS_WEBHOOK_SECRET"),
];

impl ChannelSecrets {
    /// Loads the secrets from the Secrets Manager secret `secret_id` (deployed stacks), then
    /// lets the local stack's `CROSSDESK_*` secret variables read through `env` override it (for
    /// local and emulator runs only: the deployment template never sets them).
    pub async fn load(
        client: &aws_sdk_secretsmanager::Client,
        secret_id: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SecretsError> {
        let stored = match secret_id {
            Some(id) => Self::fetch(client, id).await?,
            None => ChannelSecrets::default(),
        };
        let secrets = stored.overridden_by(env);
        info!(secret = ?secret_id, configured = ?secrets.configured(), "channel secrets loaded");
        Ok(secrets)
    }

    async fn fetch(
        client: &aws_sdk_secretsmanager::Client,
        id: &str,
    ) -> Result<Self, SecretsError> {
        let answer = client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| SecretsError::Unavailable {
                id: id.to_string(),
                reason: describe(&e),
            })?;
        let text = answer
            .secret_string()
            .ok_or_else(|| SecretsError::Malformed {
                id: id.to_string(),
                reason: "it has no string value".into(),
            })?;
        Self::from_json(text).map_err(|reason| SecretsError::Malformed {
            id: id.to_string(),
            reason,
        })
    }

    /// These secrets, each replaced by its `CROSSDESK_*` variable where that is set.
    pub fn overridden_by(self, env: impl Fn(&str) -> Option<String>) -> Self {
        let from_env = Self::from_lookup(|key| {
            KEYS.iter()
                .find(|(k, _)| *k == key)
                .and_then(|(_, var)| env(var))
        });
        if !from_env.configured().is_empty() {
            warn!(overridden = ?from_env.configured(), "channel secrets overridden by CROSSDESK_* variables (local and emulator runs only)");
        }
        ChannelSecrets {
            facebook_app_secret: from_env.facebook_app_secret.or(self.facebook_app_secret),
            facebook_verify_token: from_env
                .facebook_verify_token
                .or(self.facebook_verify_token),
            facebook_page_token: from_env.facebook_page_token.or(self.facebook_page_token),
            twitter_consumer_key: from_env.twitter_consumer_key.or(self.twitter_consumer_key),
            twitter_consumer_secret: from_env
                .twitter_consumer_secret
                .or(self.twitter_consumer_secret),
            twitter_access_token: from_env.twitter_access_token.or(self.twitter_access_token),
            twitter_access_secret: from_env
                .twitter_access_secret
                .or(self.twitter_access_secret),
            chat_secret: from_env.chat_secret.or(self.chat_secret),
            chat_session_key: from_env.chat_session_key.or(self.chat_session_key),
            email_thread_key: from_env.email_thread_key.or(self.email_thread_key),
            events_webhook_secret: from_env
                .events_webhook_secret
                .or(self.events_webhook_secret),
        }
    }

    /// Parses the secret's JSON object (unknown keys are ignored with a warning naming them).
    pub fn from_json(text: &str) -> Result<Self, String> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| format!("invalid JSON at line {}", e.line()))?;
        let Value::Object(map) = value else {
            return Err("the value is not a JSON object".into());
        };
        for (key, value) in &map {
            if !KEYS.iter().any(|(k, _)| k == key) {
                warn!(key = %key, "unknown key in the channel secret, ignored");
            } else if !(value.is_string() || value.is_null()) {
                return Err(format!("`{key}` is not a string"));
            }
        }
        Ok(Self::from_lookup(|key| {
            map.get(key).and_then(Value::as_str).map(str::to_string)
        }))
    }

    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let secret = |key: &str| {
            get(key)
                .filter(|v| !v.trim().is_empty())
                .map(SecretString::from)
        };
        ChannelSecrets {
            facebook_app_secret: secret("facebook_app_secret"),
            facebook_verify_token: secret("facebook_verify_token"),
            facebook_page_token: secret("facebook_page_token"),
            twitter_consumer_key: secret("twitter_consumer_key"),
            twitter_consumer_secret: secret("twitter_consumer_secret"),
            twitter_access_token: secret("twitter_access_token"),
            twitter_access_secret: secret("twitter_access_secret"),
            chat_secret: secret("chat_secret"),
            chat_session_key: secret("chat_session_key"),
            email_thread_key: secret("email_thread_key"),
            events_webhook_secret: secret("events_webhook_secret"),
        }
    }

    /// The names of the secrets that are set (for logs: names, never values).
    pub fn configured(&self) -> Vec<&'static str> {
        let all = [
            ("facebook_app_secret", &self.facebook_app_secret),
            ("facebook_verify_token", &self.facebook_verify_token),
            ("facebook_page_token", &self.facebook_page_token),
            ("twitter_consumer_key", &self.twitter_consumer_key),
            ("twitter_consumer_secret", &self.twitter_consumer_secret),
            ("twitter_access_token", &self.twitter_access_token),
            ("twitter_access_secret", &self.twitter_access_secret),
            ("chat_secret", &self.chat_secret),
            ("chat_session_key", &self.chat_session_key),
            ("email_thread_key", &self.email_thread_key),
            ("events_webhook_secret", &self.events_webhook_secret),
        ];
        all.into_iter()
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| k)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn reads_known_keys_and_skips_blank_values() {
        let s = ChannelSecrets::from_json(
            r#"{"facebook_app_secret":"s3cr3t","chat_secret":"","other":"x","twitter_access_token":null}"#,
        )
        .unwrap();
        assert_eq!(s.facebook_app_secret.unwrap().expose_secret(), "s3cr3t");
        assert!(s.chat_secret.is_none());
        assert!(s.twitter_access_token.is_none());
    }

    #[test]
    fn malformed_secrets_are_refused_without_echoing_values() {
        let err = ChannelSecrets::from_json(r#"{"chat_secret": 12345}"#).unwrap_err();
        assert_eq!(err, "`chat_secret` is not a string");
        let err = ChannelSecrets::from_json("not json hunter2").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(ChannelSecrets::from_json("[]").is_err());
    }

    #[test]
    fn variables_override_the_stored_secret() {
        let stored =
            ChannelSecrets::from_json(r#"{"chat_secret":"stored","facebook_app_secret":"fb"}"#)
                .unwrap();
        let s =
            stored.overridden_by(|var| (var == "CROSSDESK_CHAT_SECRET").then(|| "local".into()));
        assert_eq!(s.chat_secret.unwrap().expose_secret(), "local");
        assert_eq!(s.facebook_app_secret.unwrap().expose_secret(), "fb");
    }

    #[test]
    fn reads_the_email_thread_key_and_its_variable() {
        let stored =
            ChannelSecrets::from_json(r#"{"email_thread_key":"stored-thread-key"}"#).unwrap();
        assert_eq!(
            stored.email_thread_key.as_ref().unwrap().expose_secret(),
            "stored-thread-key"
        );
        assert_eq!(stored.configured(), vec!["email_thread_key"]);
        let s = stored.overridden_by(|var| {
            (var == "CROSSDESK_EMAIL_THREAD_KEY").then(|| "local-thread-key".into())
        });
        assert_eq!(
            s.email_thread_key.unwrap().expose_secret(),
            "local-thread-key"
        );
    }

    #[test]
    fn reads_the_events_webhook_secret_and_its_variable() {
        let stored =
            ChannelSecrets::from_json(r#"{"events_webhook_secret":"whsec-stored"}"#).unwrap();
        assert_eq!(stored.configured(), vec!["events_webhook_secret"]);
        let s = stored.overridden_by(|var| {
            (var == "CROSSDESK_EVENTS_WEBHOOK_SECRET").then(|| "whsec-local".into())
        });
        assert_eq!(
            s.events_webhook_secret.unwrap().expose_secret(),
            "whsec-local"
        );
    }

    #[test]
    fn debug_output_redacts_values() {
        let s = ChannelSecrets::from_json(r#"{"chat_secret":"hunter2"}"#).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.configured(), vec!["chat_secret"]);
    }
}
