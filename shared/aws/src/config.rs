//! Where a deployed Crossdesk's resources are: read once from the function's environment.

use aws_config::{BehaviorVersion, SdkConfig};
use thiserror::Error;

/// A missing or invalid setting.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A required variable is not set (or empty).
    #[error("{0} is not set: the deployment template sets it on every function")]
    Missing(&'static str),
}

/// The names and addresses of a deployment's resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsConfig {
    /// `CROSSDESK_TABLE_NAME`: the DynamoDB table.
    pub table_name: String,
    /// `CROSSDESK_INBOUND_QUEUE_URL`: the FIFO queue from the webhooks to the ticket writer.
    pub inbound_queue_url: String,
    /// `CROSSDESK_OUTBOUND_QUEUE_URL`: the FIFO queue from the agent API to the reply sender.
    pub outbound_queue_url: String,
    /// `CROSSDESK_BUCKET`: raw payloads, SES mail and oversize queue bodies.
    pub bucket: String,
    /// `CROSSDESK_SECRET_ID`: the Secrets Manager secret with the channel secrets (optional:
    /// without it the secrets come from `CROSSDESK_*` variables, for development only).
    pub secret_id: Option<String>,
    /// `CROSSDESK_EVENTS_QUEUE_URL`: the standard queue of outgoing events (optional: without
    /// it no events are emitted; the template sets it when the events webhook is configured).
    pub events_queue_url: Option<String>,
}

impl AwsConfig {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup` (a variable's value by name).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let required = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));
        Ok(AwsConfig {
            table_name: required("CROSSDESK_TABLE_NAME")?,
            inbound_queue_url: required("CROSSDESK_INBOUND_QUEUE_URL")?,
            outbound_queue_url: required("CROSSDESK_OUTBOUND_QUEUE_URL")?,
            bucket: required("CROSSDESK_BUCKET")?,
            secret_id: get("CROSSDESK_SECRET_ID"),
            events_queue_url: get("CROSSDESK_EVENTS_QUEUE_URL"),
        })
    }

    /// The settings as `CROSSDESK_*` variables (to start a function or the local stack on them).
    pub fn to_env(&self) -> Vec<(&'static str, String)> {
        let mut vars = vec![
            ("CROSSDESK_TABLE_NAME", self.table_name.clone()),
            (
                "CROSSDESK_INBOUND_QUEUE_URL",
                self.inbound_queue_url.clone(),
            ),
            (
                "CROSSDESK_OUTBOUND_QUEUE_URL",
                self.outbound_queue_url.clone(),
            ),
            ("CROSSDESK_BUCKET", self.bucket.clone()),
        ];
        if let Some(id) = &self.secret_id {
            vars.push(("CROSSDESK_SECRET_ID", id.clone()));
        }
        if let Some(url) = &self.events_queue_url {
            vars.push(("CROSSDESK_EVENTS_QUEUE_URL", url.clone()));
        }
        vars
    }
}

/// The SDK configuration of the environment: region and credentials from the usual chain, and
/// `AWS_ENDPOINT_URL` when set (an emulator such as moto).
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    const FULL: &[(&str, &str)] = &[
        ("CROSSDESK_TABLE_NAME", "crossdesk"),
        ("CROSSDESK_INBOUND_QUEUE_URL", "https://sqs/inbound.fifo"),
        ("CROSSDESK_OUTBOUND_QUEUE_URL", "https://sqs/outbound.fifo"),
        ("CROSSDESK_BUCKET", "bucket"),
        ("CROSSDESK_EVENTS_QUEUE_URL", "https://sqs/events"),
    ];

    #[test]
    fn reads_every_setting_and_round_trips() {
        let config = AwsConfig::from_lookup(env(FULL)).unwrap();
        assert_eq!(config.table_name, "crossdesk");
        assert_eq!(config.secret_id, None);
        assert_eq!(
            config.events_queue_url.as_deref(),
            Some("https://sqs/events")
        );
        let again = AwsConfig::from_lookup(env(&config
            .to_env()
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>()))
        .unwrap();
        assert_eq!(again, config);
    }

    #[test]
    fn names_the_missing_variable() {
        let partial: Vec<_> = FULL
            .iter()
            .copied()
            .filter(|(k, _)| *k != "CROSSDESK_BUCKET")
            .collect();
        assert_eq!(
            AwsConfig::from_lookup(env(&partial)),
            Err(ConfigError::Missing("CROSSDESK_BUCKET"))
        );
        let blank: Vec<_> = FULL
            .iter()
            .map(|(k, v)| {
                if *k == "CROSSDESK_TABLE_NAME" {
                    (*k, "  ")
                } else {
                    (*k, *v)
                }
            })
            .collect();
        assert_eq!(
            AwsConfig::from_lookup(env(&blank)),
            Err(ConfigError::Missing("CROSSDESK_TABLE_NAME"))
        );
    }
}
