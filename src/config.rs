//! The local stack's configuration, from `CROSSDESK_*` environment variables and the desk
//! settings file (`crossdesk.toml`).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use crossdesk_aws::ChannelSecrets;
use crossdesk_channels::events_webhook::Endpoint;
use crossdesk_channels::health::{HealthConfigError, HealthSettings};
use crossdesk_channels::media_fetch::MediaSettings;
use crossdesk_channels::senders::{SenderConfigError, SenderSettings};
use crossdesk_channels::SignatureModes;
use crossdesk_core::mail_signature::EmailThreadKey;
use crossdesk_core::notify::NotificationSettings;
use crossdesk_core::settings::{DeskSettings, SettingsError};
use crossdesk_core::EmailAddress;
use crossdesk_embedded::Durability;
use secrecy::{ExposeSecret, SecretString};
use thiserror::Error;

/// A setting that could not be read.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// A variable is set to a value that cannot be used.
    #[error("{name} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// A sending setting is invalid.
    #[error(transparent)]
    Sender(#[from] SenderConfigError),
    /// A health check setting is invalid.
    #[error(transparent)]
    Health(#[from] HealthConfigError),
    /// The desk settings file cannot be read or used (the message names the file, the line
    /// and the key).
    #[error("desk settings: {0}")]
    Settings(#[from] SettingsError),
}

/// The settings file read when `CROSSDESK_CONFIG` is unset, if it exists in the working
/// directory.
pub const DEFAULT_SETTINGS_FILE: &str = "crossdesk.toml";

/// What the local stack stores its tickets and queues in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Backend {
    /// One SQLite database under the data dir (the default: no AWS account needed).
    #[default]
    Embedded,
    /// The AWS adapters (`--aws`): DynamoDB, SQS, S3 and SES, at `AWS_ENDPOINT_URL` when set.
    Aws {
        /// `--create-resources`: create the table, queues and bucket named after
        /// `CROSSDESK_RESOURCE_PREFIX` where missing, instead of reading their names from
        /// `CROSSDESK_TABLE_NAME` and the other deployment variables.
        create_resources: bool,
    },
}

/// Every setting of the local stack. Secrets left unset disable their channel (503), never
/// its verification.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// Where to listen (`127.0.0.1:$CROSSDESK_PORT`, default port 8080; 0 picks a free port).
    pub listen: SocketAddr,
    /// Where the database lives (`$CROSSDESK_DATA_DIR`, default `./.crossdesk`).
    pub data_dir: PathBuf,
    /// `CROSSDESK_FACEBOOK_APP_SECRET`: verifies Facebook's `X-Hub-Signature-256`.
    pub facebook_app_secret: Option<SecretString>,
    /// `CROSSDESK_FACEBOOK_VERIFY_TOKEN`: answers Facebook's subscription handshake.
    pub facebook_verify_token: Option<SecretString>,
    /// `CROSSDESK_TWITTER_CONSUMER_SECRET`: verifies X's signature and answers its CRC.
    pub twitter_consumer_secret: Option<SecretString>,
    /// `CROSSDESK_CHAT_SECRET`: verifies the chat backend's `v1` signature.
    pub chat_secret: Option<SecretString>,
    /// `CROSSDESK_AGENT_TOKEN`: the agent API's bearer token (also required to post raw email).
    pub agent_token: Option<SecretString>,
    /// `CROSSDESK_LOG_FORMAT=json` for JSON logs (default: human-readable).
    pub json_logs: bool,
    /// Reply senders: platform URLs and sending credentials.
    pub senders: SenderSettings,
    /// `CROSSDESK_EMAIL_FROM`: the support address email replies come from (written to the
    /// outbox locally); without it, email replies fail with `channel_not_configured`.
    pub email_from: Option<EmailAddress>,
    /// `CROSSDESK_EMAIL_FROM_NAME`: the name shown beside it.
    pub email_from_name: Option<String>,
    /// `CROSSDESK_EMAIL_THREAD_KEY` (at least 16 bytes): signs the Message-IDs and
    /// plus-addresses of email replies, and checks the references of the mail that comes back.
    /// Without it email replies are off and no email reference counts as signed.
    pub email_thread_key: Option<EmailThreadKey>,
    /// `CROSSDESK_FACEBOOK_SIGNATURE_MODE`, `CROSSDESK_TWITTER_SIGNATURE_MODE`,
    /// `CROSSDESK_CHAT_SIGNATURE_MODE`: `enforce` (default) or `report` per signed channel.
    pub signature_modes: SignatureModes,
    /// Channel health checks: `CROSSDESK_HEALTH_INTERVAL_SECS` (default 900, `0` off),
    /// `CROSSDESK_HEALTH_SILENCE_HOURS`, `CROSSDESK_HEALTH_BUSINESS_HOURS`,
    /// `CROSSDESK_FACEBOOK_APP_ID`.
    pub health: HealthSettings,
    /// `CROSSDESK_EVENTS_WEBHOOK_URL`: where outgoing events are posted (a comma-separated list
    /// of http(s) URLs); empty: the events webhook is off and no events are emitted.
    pub events_endpoints: Vec<Endpoint>,
    /// `CROSSDESK_EVENTS_WEBHOOK_SECRET`: signs the outgoing events (required with endpoints).
    pub events_secret: Option<SecretString>,
    /// Agent notifications: `CROSSDESK_NOTIFY_ENABLED`, `CROSSDESK_NOTIFY_*` and
    /// `CROSSDESK_CONSOLE_URL` (see [`NotificationSettings::from_lookup`]).
    pub notifications: NotificationSettings,
    /// `CROSSDESK_NOTIFY_WEBHOOK_SECRET`: signs the notifications webhook (required with
    /// `CROSSDESK_NOTIFY_WEBHOOK_URL`).
    pub notify_webhook_secret: Option<SecretString>,
    /// Attachment copies: `CROSSDESK_MEDIA_MAX_FILE_BYTES` (default 25 MiB),
    /// `CROSSDESK_MEDIA_MAX_MESSAGE_BYTES` (default 50 MiB), `CROSSDESK_MEDIA_ALLOW_PRIVATE`
    /// (development only: private `ip:port` pairs downloads may reach).
    pub media: MediaSettings,
    /// `CROSSDESK_SQLITE_SYNCHRONOUS`: `full` (default: every commit synced, survives a power
    /// loss) or `normal` (synced at checkpoints: survives a process crash, about three times
    /// the throughput on a disk where a sync costs a millisecond).
    pub durability: Durability,
    /// The adapters to run on (set from the command line).
    pub backend: Backend,
    /// Store faults to inject into the ticket writer and the reply sender, for rehearsals
    /// (`--inject-store-faults`; never from the environment). `None`: no faults.
    pub store_faults: Option<crossdesk_core::faults::StoreFaults>,
    /// `CROSSDESK_RESOURCE_PREFIX` (default `crossdesk-local`): names the resources
    /// `--aws --create-resources` creates.
    pub resource_prefix: String,
    /// The desk settings: the file `CROSSDESK_CONFIG` names, else `./crossdesk.toml` when it
    /// exists, else the built-in defaults.
    pub settings: DeskSettings,
    /// The file the desk settings were read from (`None`: the built-in defaults).
    pub settings_file: Option<PathBuf>,
    /// Social monitoring on X: `CROSSDESK_MONITORING_KEYWORDS` (off when empty) and the rest
    /// of [`crate::monitoring::MonitoringConfig`].
    pub monitoring: crate::monitoring::MonitoringConfig,
    /// The website widget's chat API: `CROSSDESK_CHAT_SESSION_KEY` (generated at start when
    /// unset) and `CROSSDESK_CHAT_ALLOWED_ORIGINS` (default `*`).
    pub chat_api: crossdesk_http::ChatApiSettings,
}

impl LocalConfig {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let secret = |name: &str| get(name).map(SecretString::from);
        let port = match get("CROSSDESK_PORT") {
            None => 8080,
            Some(p) => p.trim().parse::<u16>().map_err(|_| ConfigError::Invalid {
                name: "CROSSDESK_PORT",
                reason: format!("`{p}` is not a port number (0 to 65535)"),
            })?,
        };
        let json_logs = match get("CROSSDESK_LOG_FORMAT").as_deref() {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "CROSSDESK_LOG_FORMAT",
                    reason: format!("`{other}` is neither `text` nor `json`"),
                })
            }
        };
        let senders = SenderSettings {
            facebook_page_token: secret("CROSSDESK_FACEBOOK_PAGE_TOKEN"),
            twitter_consumer_key: secret("CROSSDESK_TWITTER_CONSUMER_KEY"),
            twitter_consumer_secret: secret("CROSSDESK_TWITTER_CONSUMER_SECRET"),
            twitter_access_token: secret("CROSSDESK_TWITTER_ACCESS_TOKEN"),
            twitter_access_secret: secret("CROSSDESK_TWITTER_ACCESS_SECRET"),
            chat_secret: secret("CROSSDESK_CHAT_SECRET"),
            // The local stack always serves the website widget.
            chat_widget: true,
            ..SenderSettings::default()
        }
        .with_urls_from(get)?;
        let email_from = get("CROSSDESK_EMAIL_FROM")
            .map(|v| {
                EmailAddress::parse(&v).map_err(|e| ConfigError::Invalid {
                    name: "CROSSDESK_EMAIL_FROM",
                    reason: e.to_string(),
                })
            })
            .transpose()?;
        let signature_modes =
            SignatureModes::from_lookup(&lookup).map_err(|e| ConfigError::Invalid {
                name: e.variable,
                reason: e.reason(),
            })?;
        let health = HealthSettings::from_lookup(&lookup)?;
        let media = MediaSettings::from_lookup(&lookup).map_err(|e| ConfigError::Invalid {
            name: e.name,
            reason: e.reason,
        })?;
        let email_thread_key = get("CROSSDESK_EMAIL_THREAD_KEY")
            .map(|v| thread_key(&v, "CROSSDESK_EMAIL_THREAD_KEY"))
            .transpose()?;
        let (settings, settings_file) = desk_settings(
            get("CROSSDESK_CONFIG").as_deref(),
            Path::new(DEFAULT_SETTINGS_FILE),
        )?;
        let notifications = settings
            .notifications
            .clone()
            .with_overrides(get)
            .map_err(|e| ConfigError::Invalid {
                name: e.name,
                reason: e.reason,
            })?;
        Ok(LocalConfig {
            monitoring: crate::monitoring::MonitoringConfig::from_lookup(&lookup)?,
            chat_api: crossdesk_http::ChatApiSettings::from_lookup(&lookup).map_err(|e| {
                ConfigError::Invalid {
                    name: e.name,
                    reason: e.reason,
                }
            })?,
            settings,
            settings_file,
            senders,
            email_from,
            email_thread_key,
            email_from_name: get("CROSSDESK_EMAIL_FROM_NAME"),
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            data_dir: get("CROSSDESK_DATA_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(".crossdesk")),
            facebook_app_secret: secret("CROSSDESK_FACEBOOK_APP_SECRET"),
            facebook_verify_token: secret("CROSSDESK_FACEBOOK_VERIFY_TOKEN"),
            twitter_consumer_secret: secret("CROSSDESK_TWITTER_CONSUMER_SECRET"),
            chat_secret: secret("CROSSDESK_CHAT_SECRET"),
            agent_token: secret("CROSSDESK_AGENT_TOKEN"),
            json_logs,
            signature_modes,
            health,
            events_endpoints: get("CROSSDESK_EVENTS_WEBHOOK_URL")
                .map(|list| Endpoint::parse_list(&list))
                .transpose()
                .map_err(|e| ConfigError::Invalid {
                    name: "CROSSDESK_EVENTS_WEBHOOK_URL",
                    reason: e.to_string(),
                })?
                .unwrap_or_default(),
            events_secret: secret("CROSSDESK_EVENTS_WEBHOOK_SECRET"),
            notifications,
            notify_webhook_secret: secret("CROSSDESK_NOTIFY_WEBHOOK_SECRET"),
            media,
            durability: get("CROSSDESK_SQLITE_SYNCHRONOUS")
                .map(|v| v.parse::<Durability>())
                .transpose()
                .map_err(|reason| ConfigError::Invalid {
                    name: "CROSSDESK_SQLITE_SYNCHRONOUS",
                    reason,
                })?
                .unwrap_or_default(),
            backend: Backend::Embedded,
            store_faults: None,
            resource_prefix: get("CROSSDESK_RESOURCE_PREFIX")
                .map(|p| p.trim().to_lowercase())
                .unwrap_or_else(|| "crossdesk-local".into()),
        })
    }

    /// Fills the secrets the environment left unset from a deployment's stored secrets.
    pub fn apply_secrets(&mut self, stored: ChannelSecrets) {
        fn fill(slot: &mut Option<SecretString>, stored: Option<SecretString>) {
            if slot.is_none() {
                *slot = stored;
            }
        }
        fill(&mut self.facebook_app_secret, stored.facebook_app_secret);
        fill(
            &mut self.facebook_verify_token,
            stored.facebook_verify_token,
        );
        fill(
            &mut self.twitter_consumer_secret,
            stored.twitter_consumer_secret.clone(),
        );
        fill(&mut self.chat_secret, stored.chat_secret.clone());
        fill(&mut self.events_secret, stored.events_webhook_secret);
        let senders = &mut self.senders;
        fill(&mut senders.facebook_page_token, stored.facebook_page_token);
        fill(
            &mut senders.twitter_consumer_key,
            stored.twitter_consumer_key,
        );
        fill(
            &mut senders.twitter_consumer_secret,
            stored.twitter_consumer_secret,
        );
        fill(
            &mut senders.twitter_access_token,
            stored.twitter_access_token,
        );
        fill(
            &mut senders.twitter_access_secret,
            stored.twitter_access_secret,
        );
        fill(&mut senders.chat_secret, stored.chat_secret);
        if self.chat_api.session_key.is_none() {
            self.chat_api.session_key = stored
                .chat_session_key
                .and_then(|k| crossdesk_http::chat_session::SessionKey::new(k).ok());
        }
        if self.email_thread_key.is_none() {
            // A stored key too short to use is left out; the banner says email replies are off.
            self.email_thread_key = stored
                .email_thread_key
                .and_then(|k| thread_key(k.expose_secret(), "email_thread_key").ok());
        }
    }
}

/// The desk settings and the file they came from: `configured` (`CROSSDESK_CONFIG`), which must
/// exist, else `default_file` when it exists, else the built-in defaults.
fn desk_settings(
    configured: Option<&str>,
    default_file: &Path,
) -> Result<(DeskSettings, Option<PathBuf>), ConfigError> {
    match configured.map(str::trim) {
        Some(path) => {
            let path = PathBuf::from(path);
            let settings = DeskSettings::from_file(&path).map_err(|e| ConfigError::Invalid {
                name: "CROSSDESK_CONFIG",
                reason: e.to_string(),
            })?;
            Ok((settings, Some(path)))
        }
        None if default_file.is_file() => Ok((
            DeskSettings::from_file(default_file)?,
            Some(default_file.to_path_buf()),
        )),
        None => Ok((DeskSettings::default(), None)),
    }
}

/// An email thread key from its configured value.
fn thread_key(value: &str, name: &'static str) -> Result<EmailThreadKey, ConfigError> {
    EmailThreadKey::new(value.as_bytes()).map_err(|e| ConfigError::Invalid {
        name,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<LocalConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        LocalConfig::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_to_port_8080_on_loopback_and_no_secrets() {
        let c = config(&[]).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.data_dir, PathBuf::from(".crossdesk"));
        assert!(c.facebook_app_secret.is_none() && c.agent_token.is_none());
        assert!(!c.json_logs);
    }

    #[test]
    fn sqlite_durability_defaults_to_full_and_names_a_bad_value() {
        assert_eq!(config(&[]).unwrap().durability, Durability::Full);
        let normal = config(&[("CROSSDESK_SQLITE_SYNCHRONOUS", "normal")]).unwrap();
        assert_eq!(normal.durability, Durability::Normal);
        let err = config(&[("CROSSDESK_SQLITE_SYNCHRONOUS", "off")]).unwrap_err();
        assert!(
            err.to_string().contains("CROSSDESK_SQLITE_SYNCHRONOUS"),
            "{err}"
        );
    }

    #[test]
    fn empty_values_count_as_unset() {
        let c = config(&[
            ("CROSSDESK_CHAT_SECRET", "  "),
            ("CROSSDESK_AGENT_TOKEN", "t"),
        ])
        .unwrap();
        assert!(c.chat_secret.is_none());
        assert_eq!(c.agent_token.unwrap().expose_secret(), "t");
    }

    #[test]
    fn rejects_a_bad_port_naming_the_variable() {
        let err = config(&[("CROSSDESK_PORT", "http")]).unwrap_err();
        assert!(err.to_string().contains("CROSSDESK_PORT"), "{err}");
        assert!(config(&[("CROSSDESK_LOG_FORMAT", "xml")]).is_err());
    }

    #[test]
    fn signature_modes_default_to_enforce_and_an_invalid_one_names_its_variable() {
        use crossdesk_channels::SignatureMode;
        let c = config(&[]).unwrap();
        assert_eq!(c.signature_modes, SignatureModes::default());
        let c = config(&[("CROSSDESK_CHAT_SIGNATURE_MODE", "report")]).unwrap();
        assert_eq!(c.signature_modes.chat, SignatureMode::Report);
        assert_eq!(c.signature_modes.facebook, SignatureMode::Enforce);
        let err = config(&[("CROSSDESK_TWITTER_SIGNATURE_MODE", "log")]).unwrap_err();
        assert!(
            err.to_string().contains("CROSSDESK_TWITTER_SIGNATURE_MODE"),
            "{err}"
        );
    }

    #[test]
    fn reads_the_events_webhook_endpoints_and_secret() {
        let c = config(&[]).unwrap();
        assert!(c.events_endpoints.is_empty() && c.events_secret.is_none());
        let c = config(&[
            (
                "CROSSDESK_EVENTS_WEBHOOK_URL",
                "https://a.example.com/hook, http://127.0.0.1:9000/x",
            ),
            ("CROSSDESK_EVENTS_WEBHOOK_SECRET", "whsec"),
        ])
        .unwrap();
        assert_eq!(c.events_endpoints.len(), 2);
        assert_eq!(c.events_endpoints[1].display(), "http://127.0.0.1:9000/x");
        assert_eq!(c.events_secret.unwrap().expose_secret(), "whsec");
        let err = config(&[("CROSSDESK_EVENTS_WEBHOOK_URL", "ftp://nope")]).unwrap_err();
        assert!(
            err.to_string().contains("CROSSDESK_EVENTS_WEBHOOK_URL"),
            "{err}"
        );
        // The stored secret fills it in when the variable is unset.
        let mut c = config(&[]).unwrap();
        c.apply_secrets(
            ChannelSecrets::from_json(r#"{"events_webhook_secret":"whsec-stored"}"#).unwrap(),
        );
        assert_eq!(c.events_secret.unwrap().expose_secret(), "whsec-stored");
    }

    #[test]
    fn health_settings_default_to_every_15_minutes_and_name_a_bad_variable() {
        let c = config(&[]).unwrap();
        assert_eq!(c.health.interval, std::time::Duration::from_secs(900));
        let c = config(&[("CROSSDESK_HEALTH_INTERVAL_SECS", "0")]).unwrap();
        assert!(c.health.interval.is_zero(), "0 turns the checks off");
        let err = config(&[("CROSSDESK_HEALTH_BUSINESS_HOURS", "weekdays")]).unwrap_err();
        assert!(
            err.to_string().contains("CROSSDESK_HEALTH_BUSINESS_HOURS"),
            "{err}"
        );
    }

    #[test]
    fn secrets_are_not_printed_by_debug() {
        let c = config(&[
            ("CROSSDESK_AGENT_TOKEN", "do-not-print-me"),
            ("CROSSDESK_EMAIL_THREAD_KEY", "do-not-print-this-key"),
        ])
        .unwrap();
        assert!(c.email_thread_key.is_some());
        let printed = format!("{c:?}");
        assert!(!printed.contains("do-not-print"), "{printed}");
    }

    #[test]
    fn desk_settings_come_from_the_configured_file_else_the_default_file_else_built_in() {
        let dir = tempfile::tempdir().unwrap();
        let absent = dir.path().join("crossdesk.toml");
        let (settings, file) = desk_settings(None, &absent).unwrap();
        assert!(file.is_none());
        assert_eq!(settings.sla.warn_before_minutes, 15);

        std::fs::write(&absent, "[sla]\nwarn_before_minutes = 5\n").unwrap();
        let (settings, file) = desk_settings(None, &absent).unwrap();
        assert_eq!(file.as_deref(), Some(absent.as_path()));
        assert_eq!(settings.sla.warn_before_minutes, 5);

        let other = dir.path().join("desk.toml");
        std::fs::write(&other, "[sla]\nwarn_before_minutes = 7\n").unwrap();
        let c = config(&[("CROSSDESK_CONFIG", other.to_str().unwrap())]).unwrap();
        assert_eq!(c.settings.sla.warn_before_minutes, 7);
        assert_eq!(c.settings_file.as_deref(), Some(other.as_path()));
    }

    #[test]
    fn a_bad_settings_file_stops_the_start_naming_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("crossdesk.toml");
        std::fs::write(&bad, "[sla]\nwarn_before = 5\n").unwrap();
        let shown = bad.display().to_string();
        let err = config(&[("CROSSDESK_CONFIG", &shown)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("CROSSDESK_CONFIG"), "{err}");
        assert!(err.contains(&shown) && err.contains("warn_before"), "{err}");
        // The default file too.
        let err = desk_settings(None, &bad).unwrap_err().to_string();
        assert!(err.contains(&shown) && err.contains("line 2"), "{err}");
        // A configured file must exist.
        let missing = dir.path().join("missing.toml").display().to_string();
        let err = config(&[("CROSSDESK_CONFIG", &missing)])
            .unwrap_err()
            .to_string();
        assert!(err.contains(&missing), "{err}");
    }

    #[test]
    fn reads_the_email_thread_key_and_refuses_a_short_one() {
        assert!(config(&[]).unwrap().email_thread_key.is_none());
        let err = config(&[("CROSSDESK_EMAIL_THREAD_KEY", "short")]).unwrap_err();
        assert!(
            err.to_string().contains("CROSSDESK_EMAIL_THREAD_KEY"),
            "{err}"
        );
        // The stored secret fills it in when the variable is unset.
        let mut c = config(&[]).unwrap();
        c.apply_secrets(
            ChannelSecrets::from_json(r#"{"email_thread_key":"stored-key-0123456789"}"#).unwrap(),
        );
        assert!(c.email_thread_key.is_some());
    }
}
