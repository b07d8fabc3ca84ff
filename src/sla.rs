//! The local stack's SLA watch: every 30 seconds, raises each overdue first response once as
//! an `sla.breached` event (the `sla-watch` function's schedule in AWS).

use std::sync::Arc;
use std::time::Duration;

use crossdesk_core::events::EventQueue;
use crossdesk_core::settings::DeskSettings;
use crossdesk_core::sla_watch::SlaWatch;
use crossdesk_core::workflow::WorkflowStore;
use crossdesk_core::{Clock, TicketStore};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// How often the local stack looks for overdue first responses.
pub const SLA_WATCH_INTERVAL: Duration = Duration::from_secs(30);

/// Starts the watch over the stores, publishing breaches to `events`; it stops on `shutdown`.
pub fn spawn_sla_watch(
    settings: &DeskSettings,
    workflows: Arc<dyn WorkflowStore>,
    tickets: Arc<dyn TicketStore>,
    events: Arc<dyn EventQueue>,
    clock: Arc<dyn Clock>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<JoinHandle<()>> {
    let warn_before = settings.sla_policies()?.warn_before();
    let watch =
        SlaWatch::new(workflows, tickets, events, clock.clone()).with_warn_before(warn_before);
    Ok(tokio::spawn(async move {
        loop {
            match watch.run_once(clock.now()).await {
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
            tokio::select! {
                _ = tokio::time::sleep(SLA_WATCH_INTERVAL) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                break;
            }
        }
    }))
}
