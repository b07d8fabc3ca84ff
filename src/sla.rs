//! The local stack's scheduled watch, one loop every 30 seconds (the `sla-watch` function's
//! schedule in AWS, which runs the same two checks): raises each overdue first response once as
//! an `sla.breached` event and, with agent notifications on, each chat waiting for an agent as
//! `chat.waiting`.

use std::sync::Arc;
use std::time::Duration;

use crossdesk_core::events::EventQueue;
use crossdesk_core::notify::ChatWaitingCheck;
use crossdesk_core::sla_watch::SlaWatch;
use crossdesk_core::workflow::WorkflowStore;
use crossdesk_core::{Clock, TicketStore};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::LocalConfig;

/// How often the local stack looks for overdue first responses and waiting chats.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(30);

/// Starts the watch over the stores, publishing to `events`; it stops on `shutdown`.
pub fn spawn_watch(
    config: &LocalConfig,
    workflows: Arc<dyn WorkflowStore>,
    tickets: Arc<dyn TicketStore>,
    events: Arc<dyn EventQueue>,
    clock: Arc<dyn Clock>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<JoinHandle<()>> {
    let warn_before = config.settings.sla_policies()?.warn_before();
    let chats = config.notifications.enabled.then(|| {
        ChatWaitingCheck::new(
            config.notifications.clone(),
            tickets.clone(),
            events.clone(),
        )
    });
    let sla =
        SlaWatch::new(workflows, tickets, events, clock.clone()).with_warn_before(warn_before);
    Ok(tokio::spawn(async move {
        loop {
            let now = clock.now();
            match sla.run_once(now).await {
                Ok(report) if report.raised > 0 || report.failed > 0 => {
                    info!(
                        raised = report.raised,
                        failed = report.failed,
                        "SLA breaches raised"
                    );
                }
                Ok(_) => {}
                Err(e) => warn!(error = %e, "SLA watch failed; the next run retries"),
            }
            if let Some(chats) = &chats {
                match chats.run_once(now).await {
                    Ok(report) if report.raised > 0 => {
                        info!(raised = report.raised, "chats waiting for an answer");
                    }
                    Ok(_) => {}
                    Err(e) => warn!(error = %e, "chat waiting check failed; the next run retries"),
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(WATCH_INTERVAL) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                break;
            }
        }
    }))
}
