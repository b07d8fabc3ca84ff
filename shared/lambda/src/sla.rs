//! The `sla-watch` function: on its one-minute schedule, raises each overdue first response
//! once as an `sla.breached` event ([`SlaWatch`]).

use std::sync::Arc;

use async_trait::async_trait;
use crossdesk_core::events::{EventQueue, OutgoingEvent};
use crossdesk_core::notify::ChatWaitingCheck;
use crossdesk_core::settings::DeskSettings;
use crossdesk_core::sla_watch::SlaWatch;
use crossdesk_core::QueueError;
use tracing::debug;

use crate::deploy::{DeployError, Deployment};

/// Drops events: the watch's queue while outgoing events are off (no
/// `CROSSDESK_EVENTS_WEBHOOK_URL`). Breaches are still recorded on the tickets' workflows.
#[derive(Debug, Clone, Copy, Default)]
pub struct EventsOff;

#[async_trait]
impl EventQueue for EventsOff {
    async fn publish(&self, event: &OutgoingEvent) -> Result<(), QueueError> {
        debug!(event_id = %event.id, kind = %event.kind, "outgoing events are off: not queued");
        Ok(())
    }
}

impl Deployment {
    /// The SLA watch over the table, publishing to the events queue (or nowhere while events
    /// are off), nearing within `[sla] warn_before_minutes`.
    pub fn sla_watch(&self, settings: &DeskSettings) -> Result<SlaWatch, DeployError> {
        let policies = settings.sla_policies().map_err(|e| DeployError::Invalid {
            name: "CROSSDESK_SETTINGS",
            reason: e.to_string(),
        })?;
        let events: Arc<dyn EventQueue> = match &self.events {
            Some(queue) => queue.clone(),
            None => Arc::new(EventsOff),
        };
        Ok(SlaWatch::new(
            self.store.clone(),
            self.store.clone(),
            events,
            self.clock.clone(),
        )
        .with_warn_before(policies.warn_before()))
    }
}

impl Deployment {
    /// The chat-waiting check that runs with the SLA watch: `None` while notifications are
    /// off (`CROSSDESK_NOTIFY_ENABLED`, read through `env`) or events have no queue.
    pub fn chat_waiting_check(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<ChatWaitingCheck>, DeployError> {
        let settings = self.notification_settings(env)?;
        Ok(match (&self.events, settings.enabled) {
            (Some(queue), true) => Some(ChatWaitingCheck::new(
                settings,
                self.store.clone(),
                queue.clone(),
            )),
            _ => None,
        })
    }
}

/// One scheduled run of the chat-waiting check (when notifications are on): how many chats
/// wait and how many `chat.waiting` events were queued. A failure fails the invocation.
pub async fn run_chat_waiting_check(
    check: Option<&ChatWaitingCheck>,
) -> Result<serde_json::Value, String> {
    let now = chrono::Utc::now();
    let Some(check) = check else {
        return Ok(serde_json::Value::Null);
    };
    let report = check.run_once(now).await.map_err(|e| e.to_string())?;
    Ok(serde_json::json!({ "checked": report.checked, "raised": report.raised }))
}

/// One scheduled run: answers the run's report (`{"raised", "already_raised", "solved",
/// "nearing", "failed"}`). Listing failures, and breaches that could not be raised, fail the
/// invocation (the next minute's run tries again; a raised breach is never raised twice).
pub async fn run_sla_watch(watch: &SlaWatch) -> Result<serde_json::Value, String> {
    let report = watch.run().await.map_err(|e| e.to_string())?;
    if report.failed > 0 {
        return Err(format!(
            "{} overdue tickets could not be handled (raised {}); the next run tries again",
            report.failed, report.raised
        ));
    }
    serde_json::to_value(&report).map_err(|e| e.to_string())
}
