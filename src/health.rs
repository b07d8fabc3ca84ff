//! The local stack's channel health: which channels its configuration sets up, the checker
//! over the platform checks its credentials allow, `GET /api/channels` and
//! `POST /api/channels/check`, and the worker that runs the checks every
//! `CROSSDESK_HEALTH_INTERVAL_SECS`.

use std::sync::Arc;

use axum::Router;
use crossdesk_channels::config_findings::{ConfigCheck, ConfigFindings};
use crossdesk_channels::health::{channel_setup, http_client, platform_checks, HealthChecker};
use crossdesk_core::health::{ChannelHealthStore, ChannelSetup};
use crossdesk_core::{ChannelKind, Clock};
use crossdesk_http::{channels_router, AgentAuth, ChannelsState};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::LocalConfig;

/// Every channel's setup from the local configuration (variable names as the user sets them).
/// Config-derived findings (signature mode, Graph API version, …) are added here with
/// [`ChannelSetup::with_finding`].
pub fn channel_setups(config: &LocalConfig) -> Vec<ChannelSetup> {
    // The signature mode of each webhook and the Graph API version's retirement date.
    let today = chrono::Utc::now().date_naive();
    let findings = ConfigFindings::new(config.signature_modes, config.senders.graph_api_version());
    settings_setups(config)
        .into_iter()
        .map(|mut setup| {
            setup
                .findings
                .extend(findings.for_channel(setup.channel, today));
            setup
        })
        .collect()
}

/// Every channel's setup from which of its settings are present.
fn settings_setups(config: &LocalConfig) -> Vec<ChannelSetup> {
    let s = &config.senders;
    let facebook_receiving = [
        (
            "CROSSDESK_FACEBOOK_APP_SECRET",
            config.facebook_app_secret.is_some(),
        ),
        (
            "CROSSDESK_FACEBOOK_VERIFY_TOKEN",
            config.facebook_verify_token.is_some(),
        ),
    ];
    let facebook_replying = [(
        "CROSSDESK_FACEBOOK_PAGE_TOKEN",
        s.facebook_page_token.is_some(),
    )];
    vec![
        channel_setup(
            ChannelKind::Facebook,
            &facebook_receiving,
            &facebook_replying,
        ),
        channel_setup(
            ChannelKind::Instagram,
            &facebook_receiving,
            &facebook_replying,
        ),
        channel_setup(
            ChannelKind::Twitter,
            &[(
                "CROSSDESK_TWITTER_CONSUMER_SECRET",
                config.twitter_consumer_secret.is_some(),
            )],
            &[
                (
                    "CROSSDESK_TWITTER_CONSUMER_KEY",
                    s.twitter_consumer_key.is_some(),
                ),
                (
                    "CROSSDESK_TWITTER_ACCESS_TOKEN",
                    s.twitter_access_token.is_some(),
                ),
                (
                    "CROSSDESK_TWITTER_ACCESS_SECRET",
                    s.twitter_access_secret.is_some(),
                ),
            ],
        ),
        channel_setup(
            ChannelKind::Email,
            // Locally, raw mail is posted with the agent token.
            &[("CROSSDESK_AGENT_TOKEN", config.agent_token.is_some())],
            &[
                ("CROSSDESK_EMAIL_FROM", config.email_from.is_some()),
                (
                    "CROSSDESK_EMAIL_THREAD_KEY",
                    config.email_thread_key.is_some(),
                ),
            ],
        ),
        channel_setup(
            ChannelKind::Chat,
            &[("CROSSDESK_CHAT_SECRET", config.chat_secret.is_some())],
            &[("CROSSDESK_CHAT_CALLBACK_URL", s.chat_callback_url.is_some())],
        ),
    ]
}

/// The checker of the configured channels: the platform checks, and silence on each.
pub fn health_checker(
    config: &LocalConfig,
    store: Arc<dyn ChannelHealthStore>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Arc<HealthChecker>> {
    let watched = channel_setups(config)
        .into_iter()
        .filter(|s| s.configured)
        .map(|s| s.channel)
        .collect();
    let client = http_client().map_err(|e| anyhow::anyhow!("cannot build the HTTP client: {e}"))?;
    let facebook_app = match (&config.health.facebook_app_id, &config.facebook_app_secret) {
        (Some(id), Some(secret)) => Some((id.as_str(), secret)),
        _ => None,
    };
    // Signature modes and the Graph API version's retirement, flagged on every run.
    let config_check = ConfigCheck {
        channels: Vec::clone(&watched),
        modes: config.signature_modes,
        graph_version: config.senders.graph_api_version(),
        clock: clock.clone(),
    };
    let mut checker = HealthChecker::new(store, watched, config.health.silence.clone(), clock)
        .with_check(Arc::new(config_check));
    for check in platform_checks(&config.senders, facebook_app, &client) {
        checker = checker.with_check(check);
    }
    Ok(Arc::new(checker))
}

/// `GET /api/channels` and `POST /api/channels/check`.
pub fn channel_routes(
    config: &LocalConfig,
    store: Arc<dyn ChannelHealthStore>,
    checker: Arc<HealthChecker>,
    auth: Arc<dyn AgentAuth>,
) -> Router {
    channels_router(ChannelsState {
        store,
        setups: channel_setups(config),
        checker: Some(checker),
        auth,
    })
}

/// Runs the checks every `CROSSDESK_HEALTH_INTERVAL_SECS` (the first run one interval after
/// start), until shutdown; `None` when the interval is 0.
pub fn spawn_health_worker(
    config: &LocalConfig,
    checker: Arc<HealthChecker>,
    mut shutdown: watch::Receiver<bool>,
) -> Option<JoinHandle<()>> {
    let interval = config.health.interval;
    if interval.is_zero() {
        info!("channel health checks are off (CROSSDESK_HEALTH_INTERVAL_SECS=0)");
        return None;
    }
    Some(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.wait_for(|stop| *stop) => break,
            }
            if let Err(e) = checker.run().await {
                warn!(error = %e, "cannot record the channel health checks");
            }
        }
    }))
}
