//! Social monitoring in AWS: the `social-monitor` function's poll, on its EventBridge schedule,
//! over the deployment's inbound queue, raw archive and table (the cursor).

use crossdesk_channels::monitoring::{search_from_lookup, SocialMonitor};
use serde_json::json;

use crate::deploy::{DeployError, Deployment};

impl Deployment {
    /// The social monitor, with settings read through `env` and the X app's consumer key and
    /// secret from the secrets; `Ok(None)` when `CROSSDESK_MONITORING_KEYWORDS` is empty.
    pub fn social_monitor(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<SocialMonitor>, DeployError> {
        let invalid = |e: crossdesk_channels::monitoring::SettingsError| DeployError::Invalid {
            name: "social monitoring",
            reason: e.to_string(),
        };
        let s = &self.secrets;
        let Some((settings, search)) = search_from_lookup(
            env,
            s.twitter_consumer_key.as_ref(),
            s.twitter_consumer_secret.as_ref(),
        )
        .map_err(invalid)?
        else {
            return Ok(None);
        };
        // The cursor is the table's `WorkflowStore` cursor (`CURSOR#<name>`).
        Ok(SocialMonitor::new(
            &settings,
            search,
            self.store.clone(),
            self.inbound.clone(),
            self.clock.clone(),
        )
        .map_err(invalid)?
        .map(|monitor| monitor.with_archive(self.archive.clone())))
    }
}

/// One scheduled run: polls once and answers the poll's report (`{"enabled": false}` when
/// monitoring is off). A failed poll fails the invocation; the cursor is unchanged, so the next
/// schedule picks up where this one failed.
pub async fn run_poll(monitor: Option<&SocialMonitor>) -> Result<serde_json::Value, String> {
    let Some(monitor) = monitor else {
        return Ok(json!({ "enabled": false }));
    };
    match monitor.poll().await {
        Ok(report) => serde_json::to_value(report).map_err(|e| e.to_string()),
        Err(e) => {
            tracing::error!(retryable = e.is_retryable(), error = %e, "social monitoring poll failed");
            Err(e.to_string())
        }
    }
}
