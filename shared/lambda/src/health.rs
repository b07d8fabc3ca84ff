//! Channel health in AWS: the channels a deployment's secrets set up, the checker the
//! `channel-health` function runs on its schedule (platform checks, the SES receipt rule,
//! silence), `GET /api/channels` for the agent API, and the failing checks as the
//! `CrossdeskChannelCheckFailures` metric (EMF), which the template's alarm watches.

use std::io::Write;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crossdesk_aws::ses_receiving::ReceiptRuleCheck;
use crossdesk_channels::config_findings::{ConfigCheck, ConfigFindings};
use crossdesk_channels::health::{
    channel_setup, http_client, platform_checks, HealthChecker, HealthMetrics, HealthSettings,
};
use crossdesk_channels::senders::SenderSettings;
use crossdesk_channels::SignatureModes;
use crossdesk_core::health::ChannelSetup;
use crossdesk_core::ChannelKind;
use crossdesk_http::{channels_router, ChannelsState};
use serde_json::json;

use crate::auth::JwtClaimsAuth;
use crate::deploy::{DeployError, Deployment};
use crate::metrics::NAMESPACE;

/// Failing channel health checks in one run.
pub const CHECK_FAILURES: &str = "CrossdeskChannelCheckFailures";

/// The EMF lines of one run: one per failing check (dimensions `channel` and `check`), and one
/// with the run's total (no dimension, what the alarm watches; 0 when all pass, so the alarm
/// returns to OK).
pub fn check_failure_lines(failing: &[(ChannelKind, String)], at: DateTime<Utc>) -> Vec<String> {
    let mut lines: Vec<String> = failing
        .iter()
        .map(|(channel, check)| {
            json!({
                "_aws": {
                    "Timestamp": at.timestamp_millis(),
                    "CloudWatchMetrics": [{
                        "Namespace": NAMESPACE,
                        "Dimensions": [["channel", "check"]],
                        "Metrics": [{"Name": CHECK_FAILURES, "Unit": "Count"}],
                    }],
                },
                "channel": channel.as_str(),
                "check": check,
                CHECK_FAILURES: 1,
            })
            .to_string()
        })
        .collect();
    lines.push(
        json!({
            "_aws": {
                "Timestamp": at.timestamp_millis(),
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [[]],
                    "Metrics": [{"Name": CHECK_FAILURES, "Unit": "Count"}],
                }],
            },
            CHECK_FAILURES: failing.len(),
        })
        .to_string(),
    );
    lines
}

/// Reports failing checks as EMF lines on stdout.
#[derive(Debug, Clone, Copy, Default)]
pub struct EmfCheckFailures;

#[async_trait]
impl HealthMetrics for EmfCheckFailures {
    async fn report(&self, failing: &[(ChannelKind, String)]) -> Result<(), String> {
        let mut text = String::new();
        for line in check_failure_lines(failing, Utc::now()) {
            text.push_str(&line);
            text.push('\n');
        }
        // One write, so the lines never interleave with a log line.
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| e.to_string())
    }
}

/// The EventBridge scheduled event (its content is not used).
pub type ScheduledEvent = serde_json::Value;

/// One scheduled run: checks every channel and answers `{"checked": n, "failing": m}`. A store
/// failure fails the invocation (the next schedule tries again).
pub async fn run_checks(checker: &HealthChecker) -> Result<serde_json::Value, String> {
    let results = checker.run().await.map_err(|e| e.to_string())?;
    let failing = results
        .iter()
        .filter(|(_, r)| r.status == crossdesk_core::health::CheckStatus::Failing)
        .count();
    Ok(json!({ "checked": results.len(), "failing": failing }))
}

impl Deployment {
    /// Every channel's setup from the secrets (their key names) and `env`, with what the
    /// configuration says: each webhook's signature mode, the Graph API version's retirement.
    pub fn channel_setups(&self, env: &impl Fn(&str) -> Option<String>) -> Vec<ChannelSetup> {
        let today = self.clock.now().date_naive();
        let findings = ConfigFindings::from_lookup(env);
        self.settings_setups(env)
            .into_iter()
            .map(|mut setup| {
                setup
                    .findings
                    .extend(findings.for_channel(setup.channel, today));
                setup
            })
            .collect()
    }

    /// Every channel's setup from which of its secrets and settings are present.
    fn settings_setups(&self, env: &impl Fn(&str) -> Option<String>) -> Vec<ChannelSetup> {
        let s = &self.secrets;
        let set = |name: &str| env(name).is_some_and(|v| !v.trim().is_empty());
        let facebook_receiving = [
            ("facebook_app_secret", s.facebook_app_secret.is_some()),
            ("facebook_verify_token", s.facebook_verify_token.is_some()),
        ];
        let facebook_replying = [("facebook_page_token", s.facebook_page_token.is_some())];
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
                    "twitter_consumer_secret",
                    s.twitter_consumer_secret.is_some(),
                )],
                &[
                    ("twitter_consumer_key", s.twitter_consumer_key.is_some()),
                    ("twitter_access_token", s.twitter_access_token.is_some()),
                    ("twitter_access_secret", s.twitter_access_secret.is_some()),
                ],
            ),
            channel_setup(
                ChannelKind::Email,
                &[("CROSSDESK_EMAIL_FROM", set("CROSSDESK_EMAIL_FROM"))],
                &[("email_thread_key", s.email_thread_key.is_some())],
            ),
            channel_setup(
                ChannelKind::Chat,
                &[("chat_secret", s.chat_secret.is_some())],
                &[(
                    "CROSSDESK_CHAT_CALLBACK_URL",
                    set("CROSSDESK_CHAT_CALLBACK_URL"),
                )],
            ),
        ]
    }

    /// `GET /api/channels` for the agent API (checks run on the `channel-health` schedule).
    pub fn channels_router(&self, env: &impl Fn(&str) -> Option<String>) -> axum::Router {
        channels_router(ChannelsState {
            store: self.store.clone(),
            setups: self.channel_setups(env),
            checker: None,
            auth: Arc::new(JwtClaimsAuth),
        })
    }

    /// The checker of the `channel-health` function: the platform checks the secrets allow,
    /// the SES receipt rule (when `CROSSDESK_EMAIL_RECEIVING` is not `false`), and silence on
    /// every configured channel; failing checks as EMF metrics.
    pub fn health_checker(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<HealthChecker, DeployError> {
        let invalid = |name: &'static str, reason: String| DeployError::Invalid { name, reason };
        let settings = HealthSettings::from_lookup(&env).map_err(|e| invalid(e.name, e.reason))?;
        let s = &self.secrets;
        let senders = SenderSettings {
            facebook_page_token: s.facebook_page_token.clone(),
            twitter_consumer_key: s.twitter_consumer_key.clone(),
            twitter_consumer_secret: s.twitter_consumer_secret.clone(),
            twitter_access_token: s.twitter_access_token.clone(),
            twitter_access_secret: s.twitter_access_secret.clone(),
            ..SenderSettings::default()
        }
        .with_urls_from(&env)?;
        let watched = self
            .channel_setups(&env)
            .into_iter()
            .filter(|setup| setup.configured)
            .map(|setup| setup.channel)
            .collect();
        let client = http_client().map_err(|e| invalid("HTTP client", e))?;
        let facebook_app = match (&settings.facebook_app_id, &s.facebook_app_secret) {
            (Some(id), Some(secret)) => Some((id.as_str(), secret)),
            _ => None,
        };
        let mut checker = HealthChecker::new(
            self.store.clone(),
            Vec::clone(&watched),
            settings.silence.clone(),
            self.clock.clone(),
        )
        .with_metrics(Arc::new(EmfCheckFailures));
        // Signature modes and the Graph API version's retirement, flagged on every run.
        let modes =
            SignatureModes::from_lookup(&env).map_err(|e| invalid(e.variable, e.reason()))?;
        checker = checker.with_check(Arc::new(ConfigCheck {
            channels: watched,
            modes,
            graph_version: senders.graph_api_version(),
            clock: self.clock.clone(),
        }));
        for check in platform_checks(&senders, facebook_app, &client) {
            checker = checker.with_check(check);
        }
        let receiving = env("CROSSDESK_EMAIL_RECEIVING")
            .is_none_or(|v| !matches!(v.trim(), "false" | "0" | "no"));
        if receiving {
            checker = checker.with_check(Arc::new(ReceiptRuleCheck::new(
                aws_sdk_ses::Client::new(&self.sdk),
                env("CROSSDESK_RECEIPT_RULE_SET").filter(|v| !v.trim().is_empty()),
            )));
        }
        Ok(checker)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn a_run_emits_one_line_per_failing_check_and_the_total() {
        let at = DateTime::from_timestamp(1_795_000_000, 0).unwrap();
        let lines = check_failure_lines(
            &[
                (ChannelKind::Facebook, "page_token".into()),
                (ChannelKind::Twitter, "credentials".into()),
            ],
            at,
        );
        assert_eq!(lines.len(), 3);
        let first: Value = serde_json::from_str(&lines[0]).unwrap();
        let directive = &first["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Crossdesk");
        assert_eq!(directive["Dimensions"], json!([["channel", "check"]]));
        assert_eq!(first["channel"], "facebook");
        assert_eq!(first["check"], "page_token");
        assert_eq!(first[CHECK_FAILURES], 1);
        let total: Value = serde_json::from_str(&lines[2]).unwrap();
        assert_eq!(
            total["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([[]])
        );
        assert_eq!(total[CHECK_FAILURES], 2);
        assert_eq!(total["_aws"]["Timestamp"], 1_795_000_000_000_i64);

        let quiet = check_failure_lines(&[], at);
        assert_eq!(quiet.len(), 1);
        let total: Value = serde_json::from_str(&quiet[0]).unwrap();
        assert_eq!(total[CHECK_FAILURES], 0, "the alarm sees the failures end");
    }
}
