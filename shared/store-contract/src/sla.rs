//! The SLA watch over a real store: the breach of a first response is raised as one
//! `sla.breached` event once its due time has passed, never before and never twice, however
//! often and by however many watchers the watch runs. The clock is injected, so the test
//! moves time instead of waiting.
//!
//! Every adapter that is both a [`TicketStore`] and a [`WorkflowStore`] runs it:
//!
//! ```ignore
//! #[test]
//! fn sla_watch_raises_each_breach_once() {
//!     crossdesk_store_contract::run(fresh_store, crossdesk_store_contract::sla::sla_watch_raises_each_breach_once);
//! }
//! ```

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use crossdesk_core::agent_workflow::DeskWorkflow;
use crossdesk_core::events::{EventQueue, EventType, OutgoingEvent};
use crossdesk_core::settings::DeskSettings;
use crossdesk_core::sla_watch::SlaWatch;
use crossdesk_core::workflow::WorkflowStore;
use crossdesk_core::writer::{TicketWriter, WriteOutcome};
use crossdesk_core::{Clock, QueueError, TicketId, TicketStore};
use serde_json::json;

use crate::builder::MessageBuilder;

/// The desk of the test: targets around the clock, a one-hour warning.
const SETTINGS: &str = r#"
[sla]
warn_before_minutes = 60

[sla.business_hours]
always_open = true
"#;

/// A clock the test sets.
struct TestClock(Mutex<DateTime<Utc>>);

impl TestClock {
    fn set(&self, now: DateTime<Utc>) {
        *self.0.lock().expect("clock lock") = now;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock lock")
    }
}

/// Keeps the events published, in order.
#[derive(Default)]
struct Published(Mutex<Vec<OutgoingEvent>>);

impl Published {
    fn all(&self) -> Vec<OutgoingEvent> {
        self.0.lock().expect("events lock").clone()
    }
}

#[async_trait]
impl EventQueue for Published {
    async fn publish(&self, event: &OutgoingEvent) -> Result<(), QueueError> {
        self.0.lock().expect("events lock").push(event.clone());
        Ok(())
    }
}

/// One chat ticket, its first message received at `secs`, written through the desk's triage
/// (which sets its first-response target).
async fn chat_ticket(writer: &TicketWriter, session: &str, secs: i64) -> TicketId {
    let message = MessageBuilder::chat(session, &format!("visitor-{session}"), session)
        .text("Hello, anyone there?")
        .at(secs)
        .build();
    match writer.write(&message).await.expect("write") {
        WriteOutcome::Stored { ticket_id, .. } => ticket_id,
        other => panic!("the chat message was not stored: {other:?}"),
    }
}

/// The first-response due time and the breach mark of a ticket's stored workflow.
async fn sla_of(
    store: &dyn WorkflowStore,
    ticket: &TicketId,
) -> (DateTime<Utc>, Option<DateTime<Utc>>) {
    let workflow = store
        .workflow(ticket)
        .await
        .expect("read workflow")
        .expect("a workflow")
        .value;
    let due = workflow
        .sla
        .first_response_due
        .expect("a first-response target");
    (due, workflow.sla.breach_raised_at)
}

/// A ticket past its first-response target is raised once as `sla.breached`; one within its
/// target is not (it is nearing); running again, or from a second watcher, raises nothing new;
/// once the second ticket's target passes too, only it is raised.
pub async fn sla_watch_raises_each_breach_once<S>(store: Arc<S>)
where
    S: TicketStore + WorkflowStore + 'static,
{
    let tickets: Arc<dyn TicketStore> = store.clone();
    let workflows: Arc<dyn WorkflowStore> = store;
    let settings = DeskSettings::from_toml_str(SETTINGS).expect("the test settings");
    let desk = DeskWorkflow::from_settings(&settings, workflows.clone(), tickets.clone())
        .expect("the desk workflow");
    let writer = TicketWriter::new(tickets.clone()).with_triage(desk.triage.clone());
    let late = chat_ticket(&writer, "late", 0).await;
    let soon = chat_ticket(&writer, "soon", 600).await;
    let (late_due, _) = sla_of(workflows.as_ref(), &late).await;
    let (soon_due, _) = sla_of(workflows.as_ref(), &soon).await;
    assert!(late_due < soon_due, "{late_due} {soon_due}");

    // Just past the first target; the second is due within the warning.
    let now = late_due + TimeDelta::seconds(1);
    assert!(soon_due > now && soon_due - now < TimeDelta::minutes(60));
    let clock = Arc::new(TestClock(Mutex::new(now)));
    let events = Arc::new(Published::default());
    let watcher = || {
        SlaWatch::new(
            workflows.clone(),
            tickets.clone(),
            events.clone(),
            clock.clone(),
        )
        .with_warn_before(desk.sla.warn_before())
    };
    let watch = watcher();
    let report = watch.run().await.expect("run");
    assert_eq!(
        (
            report.raised,
            report.already_raised,
            report.nearing,
            report.failed
        ),
        (1, 0, 1, 0),
        "{report:?}"
    );
    let raised = events.all();
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!(raised[0].kind, EventType::SlaBreached);
    assert_eq!(raised[0].data["ticket_id"], json!(late));
    assert_eq!(raised[0].data["first_response_due"], json!(late_due));
    assert_eq!(sla_of(workflows.as_ref(), &late).await.1, Some(now));
    assert_eq!(sla_of(workflows.as_ref(), &soon).await.1, None);

    // Again, and from a second watcher a little later: nothing is raised twice.
    let again = watch.run().await.expect("run");
    assert_eq!((again.raised, again.already_raised), (0, 1), "{again:?}");
    clock.set(now + TimeDelta::seconds(30));
    let other = watcher().run().await.expect("run");
    assert_eq!((other.raised, other.already_raised), (0, 1), "{other:?}");
    assert_eq!(events.all().len(), 1);

    // The second target passes: only that ticket is raised.
    clock.set(soon_due + TimeDelta::seconds(1));
    let later = watch.run().await.expect("run");
    assert_eq!((later.raised, later.already_raised), (1, 1), "{later:?}");
    let raised = events.all();
    assert_eq!(raised.len(), 2, "{raised:?}");
    assert_eq!(raised[1].data["ticket_id"], json!(soon));
    assert_eq!(raised[1].data["first_response_due"], json!(soon_due));
}
