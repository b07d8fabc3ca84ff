//! The local stack's social monitoring: its settings (`CROSSDESK_MONITORING_KEYWORDS`,
//! `CROSSDESK_MONITORING_LANGUAGES`, `CROSSDESK_TWITTER_ACCOUNT_ID`,
//! `CROSSDESK_TWITTER_ACCOUNT_HANDLE`, `CROSSDESK_MONITORING_INTERVAL_SECS`) and the worker that
//! polls X's recent search every interval, as the `social-monitor` function does on its
//! schedule in AWS.

use std::sync::Arc;
use std::time::Duration;

use crossdesk_channels::health::http_client;
use crossdesk_channels::monitoring::{
    interval_from_lookup, AppAuth, CursorStore, MonitoredAccount, MonitoringSettings,
    SettingsError, SocialMonitor, TwitterSearch, ACCOUNT_ID_VAR,
};
use crossdesk_core::{Clock, InboundQueue, RawArchive};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::{ConfigError, LocalConfig};

/// Social monitoring's settings, read with the rest of the configuration.
#[derive(Debug, Clone)]
pub struct MonitoringConfig {
    /// Keywords and languages; off without keywords.
    pub settings: MonitoringSettings,
    /// The support account (required while monitoring is on).
    pub account: Option<MonitoredAccount>,
    /// Seconds between polls (default 120).
    pub interval: Duration,
}

impl MonitoringConfig {
    /// Reads the settings through `lookup`; the account is required when keywords are set.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let invalid = |e: SettingsError| ConfigError::Invalid {
            name: ACCOUNT_ID_VAR,
            reason: e.to_string(),
        };
        let settings = MonitoringSettings::from_lookup(&lookup);
        let account = if settings.enabled {
            let account = MonitoredAccount::from_lookup(&lookup).map_err(invalid)?;
            settings.query(&account).map_err(|e| ConfigError::Invalid {
                name: crossdesk_channels::monitoring::KEYWORDS_VAR,
                reason: e.to_string(),
            })?;
            Some(account)
        } else {
            None
        };
        let interval = interval_from_lookup(&lookup).map_err(|e| ConfigError::Invalid {
            name: crossdesk_channels::monitoring::INTERVAL_VAR,
            reason: e.to_string(),
        })?;
        Ok(MonitoringConfig {
            settings,
            account,
            interval,
        })
    }
}

/// Starts the monitoring worker when monitoring is on: a poll every interval until shutdown.
pub fn spawn_monitor(
    config: &LocalConfig,
    cursors: Arc<dyn CursorStore>,
    inbound: Arc<dyn InboundQueue>,
    archive: Arc<dyn RawArchive>,
    clock: Arc<dyn Clock>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Option<JoinHandle<()>>> {
    let monitoring = &config.monitoring;
    let Some(account) = monitoring
        .account
        .clone()
        .filter(|_| monitoring.settings.enabled)
    else {
        return Ok(None);
    };
    let senders = &config.senders;
    let (Some(consumer_key), Some(consumer_secret)) = (
        senders.twitter_consumer_key.clone(),
        senders.twitter_consumer_secret.clone(),
    ) else {
        anyhow::bail!(
            "social monitoring needs CROSSDESK_TWITTER_CONSUMER_KEY and \
             CROSSDESK_TWITTER_CONSUMER_SECRET for X's search"
        );
    };
    let auth = AppAuth::ClientCredentials {
        consumer_key,
        consumer_secret,
    };
    let client = http_client().map_err(anyhow::Error::msg)?;
    let search = match senders.twitter_api_url.clone() {
        Some(url) => TwitterSearch::new(url, auth, account, client),
        None => TwitterSearch::with_default_url(auth, account, client),
    };
    let Some(monitor) = SocialMonitor::new(&monitoring.settings, search, cursors, inbound, clock)?
    else {
        return Ok(None);
    };
    let monitor = monitor.with_archive(archive);
    let interval = monitoring.interval;
    info!(query = monitor.query().as_str(), every = ?interval, "social monitoring is on");
    Ok(Some(tokio::spawn(async move {
        loop {
            if let Err(e) = monitor.poll().await {
                warn!(error = %e, retryable = e.is_retryable(), "social monitoring poll failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.wait_for(|stop| *stop) => break,
            }
        }
    })))
}
