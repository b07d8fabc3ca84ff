//! The SLA watch: on a schedule, finds tickets whose first response is overdue and raises each
//! breach exactly once, as an `sla.breached` [`OutgoingEvent`].
//!
//! "Once" holds with any number of watchers running at the same time: a watcher first claims
//! the breach by compare-and-setting the workflow's `sla.breach_raised_at`, and only the
//! watcher whose write won publishes. A claim whose event could not be queued is given back,
//! so the next run raises it again (the event's id is derived from the ticket and its due
//! time, so the sender still delivers it once per endpoint).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use thiserror::Error;
use tracing::{info, warn};

use crate::events::{EventQueue, OutgoingEvent};
use crate::ids::TicketId;
use crate::model::TicketStatus;
use crate::ports::{Clock, QueueError, StoreError, TicketStore, MAX_LIST_LIMIT};
use crate::workflow::{WorkflowQuery, WorkflowStore};

/// How often a claim is retried when another writer changed the workflow in between.
const CAS_ATTEMPTS: usize = 5;

/// What one run of the watch saw and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SlaWatchReport {
    /// Breaches raised by this run (one `sla.breached` event each).
    pub raised: usize,
    /// Overdue tickets whose breach was raised before (by an earlier run or another watcher).
    pub already_raised: usize,
    /// Overdue tickets skipped because they are solved.
    pub solved: usize,
    /// Tickets due within the warning window.
    pub nearing: usize,
    /// Overdue tickets that could not be handled (store or queue failure); the next run tries
    /// again.
    pub failed: usize,
}

/// Why a run of the watch could not even look for breaches.
#[derive(Debug, Error)]
pub enum SlaWatchError {
    /// The workflows could not be listed.
    #[error("cannot list the workflows awaiting a first response: {0}")]
    Store(#[from] StoreError),
}

/// What happened to one overdue ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Raised,
    AlreadyRaised,
    Solved,
    /// Answered, no longer due, or gone since it was listed.
    NotDue,
}

/// Why one overdue ticket could not be handled.
#[derive(Debug, Error)]
enum RaiseError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the sla.breached event could not be queued: {0}")]
    Queue(#[from] QueueError),
}

/// Finds overdue first responses and raises each breach once.
#[derive(Clone)]
pub struct SlaWatch {
    workflows: Arc<dyn WorkflowStore>,
    tickets: Arc<dyn TicketStore>,
    events: Arc<dyn EventQueue>,
    clock: Arc<dyn Clock>,
    warn_before: Duration,
}

impl SlaWatch {
    /// A watch over these stores, publishing to `events`, with no warning window.
    pub fn new(
        workflows: Arc<dyn WorkflowStore>,
        tickets: Arc<dyn TicketStore>,
        events: Arc<dyn EventQueue>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        SlaWatch {
            workflows,
            tickets,
            events,
            clock,
            warn_before: Duration::zero(),
        }
    }

    /// Counts tickets due within `warn_before` as nearing (`sla.warn_before_minutes`).
    pub fn with_warn_before(mut self, warn_before: Duration) -> Self {
        self.warn_before = warn_before.max(Duration::zero());
        self
    }

    /// One run at the clock's now.
    pub async fn run(&self) -> Result<SlaWatchReport, SlaWatchError> {
        self.run_once(self.clock.now()).await
    }

    /// One run at `now`: every ticket awaiting its first response with a due time at or
    /// before `now` (at most [`MAX_LIST_LIMIT`], earliest due first) that is not solved and
    /// whose breach was not raised yet gets its breach claimed and published. A failure on
    /// one ticket is counted and logged, and the others are still handled.
    pub async fn run_once(&self, now: DateTime<Utc>) -> Result<SlaWatchReport, SlaWatchError> {
        let listed = self
            .workflows
            .list_workflows(&WorkflowQuery {
                first_response_due_before: Some(now + self.warn_before),
                limit: MAX_LIST_LIMIT,
                ..WorkflowQuery::default()
            })
            .await?;
        let mut report = SlaWatchReport::default();
        for workflow in listed {
            // The store filters already; checked again so a lax adapter cannot raise early.
            let Some(due) = workflow.sla.awaiting_first_response() else {
                continue;
            };
            if due > now {
                report.nearing += 1;
                continue;
            }
            if workflow.sla.breach_raised_at.is_some() {
                report.already_raised += 1;
                continue;
            }
            match self.raise(&workflow.ticket_id, now).await {
                Ok(Outcome::Raised) => report.raised += 1,
                Ok(Outcome::AlreadyRaised) => report.already_raised += 1,
                Ok(Outcome::Solved) => report.solved += 1,
                Ok(Outcome::NotDue) => {}
                Err(e) => {
                    warn!(ticket_id = %workflow.ticket_id, error = %e, "cannot raise the SLA breach");
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }

    /// Claims and publishes one ticket's breach.
    async fn raise(&self, ticket_id: &TicketId, now: DateTime<Utc>) -> Result<Outcome, RaiseError> {
        match self.tickets.get_ticket(ticket_id).await? {
            None => return Ok(Outcome::NotDue),
            Some(ticket) if ticket.status == TicketStatus::Solved => return Ok(Outcome::Solved),
            Some(_) => {}
        }
        for _ in 0..CAS_ATTEMPTS {
            let Some(stored) = self.workflows.workflow(ticket_id).await? else {
                return Ok(Outcome::NotDue);
            };
            let mut workflow = stored.value;
            let Some(due) = workflow.sla.awaiting_first_response() else {
                return Ok(Outcome::NotDue);
            };
            if due > now {
                return Ok(Outcome::NotDue);
            }
            if workflow.sla.breach_raised_at.is_some() {
                return Ok(Outcome::AlreadyRaised);
            }
            workflow.sla.breach_raised_at = Some(now);
            workflow.updated_at = now;
            if !self
                .workflows
                .save_workflow(&workflow, Some(stored.version))
                .await?
            {
                continue; // Changed in between: read it again.
            }
            let event = OutgoingEvent::sla_breached(&workflow, due);
            if let Err(e) = self.events.publish(&event).await {
                self.release(ticket_id, now).await;
                return Err(e.into());
            }
            info!(
                ticket_id = %ticket_id,
                channel = %workflow.channel,
                policy = workflow.sla.policy.as_deref().unwrap_or(""),
                first_response_due = %due,
                "first response SLA breached"
            );
            return Ok(Outcome::Raised);
        }
        Err(StoreError::Conflict(format!(
            "the workflow of {ticket_id} changed {CAS_ATTEMPTS} times while claiming its breach"
        ))
        .into())
    }

    /// Gives back a claim made at `claimed_at` whose event was not queued, so the next run
    /// raises the breach again. Best effort: a failure is logged (the breach then stays
    /// marked raised without an event).
    async fn release(&self, ticket_id: &TicketId, claimed_at: DateTime<Utc>) {
        for _ in 0..CAS_ATTEMPTS {
            let stored = match self.workflows.workflow(ticket_id).await {
                Ok(Some(stored)) => stored,
                Ok(None) => return,
                Err(e) => {
                    warn!(ticket_id = %ticket_id, error = %e, "cannot give back the SLA breach claim");
                    return;
                }
            };
            let mut workflow = stored.value;
            if workflow.sla.breach_raised_at != Some(claimed_at) {
                return; // Not this run's claim any more.
            }
            workflow.sla.breach_raised_at = None;
            match self
                .workflows
                .save_workflow(&workflow, Some(stored.version))
                .await
            {
                Ok(true) => return,
                Ok(false) => continue,
                Err(e) => {
                    warn!(ticket_id = %ticket_id, error = %e, "cannot give back the SLA breach claim");
                    return;
                }
            }
        }
        warn!(ticket_id = %ticket_id, "cannot give back the SLA breach claim: the workflow keeps changing");
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::events::EventType;
    use crate::ids::{ContactId, ConversationKey, MessageId};
    use crate::model::{ChannelKind, Contact, Delivery, Identity, Message, Ticket};
    use crate::ports::{Appended, Revision, Route, TicketFilter};
    use crate::workflow::{
        AgentPreferences, ContactLinks, LinkSuggestion, MergeOutcome, TicketWorkflow, Versioned,
    };

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn now() -> DateTime<Utc> {
        utc("2026-11-24T12:00:00Z")
    }

    fn unsupported() -> StoreError {
        StoreError::Unavailable("not in this test double".into())
    }

    /// Workflows in memory with versions; `interfere` is written by "another writer" just
    /// before the next compare-and-set.
    #[derive(Default)]
    struct Workflows {
        items: Mutex<HashMap<TicketId, Versioned<TicketWorkflow>>>,
        interfere: Mutex<Option<TicketWorkflow>>,
    }

    impl Workflows {
        fn put(&self, workflow: TicketWorkflow) {
            let mut items = self.items.lock().unwrap();
            let version = items.get(&workflow.ticket_id).map_or(0, |v| v.version) + 1;
            items.insert(
                workflow.ticket_id.clone(),
                Versioned {
                    value: workflow,
                    version,
                },
            );
        }

        fn get(&self, id: &TicketId) -> TicketWorkflow {
            self.items.lock().unwrap()[id].value.clone()
        }
    }

    #[async_trait]
    impl WorkflowStore for Workflows {
        async fn workflow(
            &self,
            ticket: &TicketId,
        ) -> Result<Option<Versioned<TicketWorkflow>>, StoreError> {
            Ok(self.items.lock().unwrap().get(ticket).cloned())
        }

        async fn save_workflow(
            &self,
            workflow: &TicketWorkflow,
            expected: Option<u64>,
        ) -> Result<bool, StoreError> {
            if let Some(other) = self.interfere.lock().unwrap().take() {
                self.put(other);
            }
            let current = self
                .items
                .lock()
                .unwrap()
                .get(&workflow.ticket_id)
                .map(|v| v.version);
            if current != expected {
                return Ok(false);
            }
            self.put(workflow.clone());
            Ok(true)
        }

        async fn list_workflows(
            &self,
            query: &WorkflowQuery,
        ) -> Result<Vec<TicketWorkflow>, StoreError> {
            let before = query.first_response_due_before.unwrap();
            let mut listed: Vec<TicketWorkflow> = self
                .items
                .lock()
                .unwrap()
                .values()
                .map(|v| v.value.clone())
                .filter(|w| w.sla.awaiting_first_response().is_some_and(|d| d <= before))
                .collect();
            listed.sort_by_key(|w| w.sla.first_response_due);
            listed.truncate(query.limit);
            Ok(listed)
        }

        async fn contact_links(&self, _: &ContactId) -> Result<ContactLinks, StoreError> {
            Err(unsupported())
        }

        async fn merge_contacts(
            &self,
            _: &ContactId,
            _: &ContactId,
            _: DateTime<Utc>,
        ) -> Result<MergeOutcome, StoreError> {
            Err(unsupported())
        }

        async fn unmerge_contact(&self, _: &ContactId) -> Result<bool, StoreError> {
            Err(unsupported())
        }

        async fn suggest_link(&self, _: &ContactId, _: &LinkSuggestion) -> Result<(), StoreError> {
            Err(unsupported())
        }

        async fn agent_preferences(&self, _: &str) -> Result<Option<AgentPreferences>, StoreError> {
            Err(unsupported())
        }

        async fn save_agent_preferences(&self, _: &AgentPreferences) -> Result<(), StoreError> {
            Err(unsupported())
        }

        async fn list_agent_preferences(&self) -> Result<Vec<AgentPreferences>, StoreError> {
            Err(unsupported())
        }

        async fn claim_window(&self, _: &str, _: DateTime<Utc>) -> Result<bool, StoreError> {
            Err(unsupported())
        }

        async fn cursor(&self, _: &str) -> Result<Option<String>, StoreError> {
            Err(unsupported())
        }

        async fn save_cursor(&self, _: &str, _: &str) -> Result<(), StoreError> {
            Err(unsupported())
        }
    }

    /// Tickets in memory; only `get_ticket` is used by the watch.
    #[derive(Default)]
    struct Tickets(Mutex<HashMap<TicketId, Ticket>>);

    #[async_trait]
    impl TicketStore for Tickets {
        async fn find_ticket_by_platform_ids(
            &self,
            _: ChannelKind,
            _: &[String],
        ) -> Result<Option<TicketId>, StoreError> {
            Err(unsupported())
        }
        async fn find_ticket_by_conversation(
            &self,
            _: &ConversationKey,
        ) -> Result<Option<TicketId>, StoreError> {
            Err(unsupported())
        }
        async fn find_contact_by_identity(
            &self,
            _: &Identity,
        ) -> Result<Option<ContactId>, StoreError> {
            Err(unsupported())
        }
        async fn resolve_contact(
            &self,
            _: &[Identity],
            _: Option<&str>,
            _: DateTime<Utc>,
        ) -> Result<crate::ports::ResolvedContact, StoreError> {
            Err(unsupported())
        }
        async fn append_message(
            &self,
            _: &Route,
            _: &Message,
            _: &ContactId,
        ) -> Result<Appended, StoreError> {
            Err(unsupported())
        }
        async fn revise_message(
            &self,
            _: ChannelKind,
            _: &str,
            _: &Revision,
        ) -> Result<Option<(TicketId, MessageId)>, StoreError> {
            Err(unsupported())
        }
        async fn get_ticket(&self, id: &TicketId) -> Result<Option<Ticket>, StoreError> {
            Ok(self.0.lock().unwrap().get(id).cloned())
        }
        async fn list_tickets(&self, _: &TicketFilter) -> Result<Vec<Ticket>, StoreError> {
            Err(unsupported())
        }
        async fn list_messages(&self, _: &TicketId) -> Result<Vec<Message>, StoreError> {
            Err(unsupported())
        }
        async fn get_contact(&self, _: &ContactId) -> Result<Option<Contact>, StoreError> {
            Err(unsupported())
        }
        async fn set_status(
            &self,
            _: &TicketId,
            _: TicketStatus,
            _: DateTime<Utc>,
        ) -> Result<Option<Ticket>, StoreError> {
            Err(unsupported())
        }
        async fn set_delivery(
            &self,
            _: &TicketId,
            _: &MessageId,
            _: &Delivery,
            _: &Delivery,
        ) -> Result<bool, StoreError> {
            Err(unsupported())
        }
    }

    /// Keeps what is published; refuses while `down` is set.
    #[derive(Default)]
    struct Events {
        published: Mutex<Vec<OutgoingEvent>>,
        down: Mutex<bool>,
    }

    #[async_trait]
    impl EventQueue for Events {
        async fn publish(&self, event: &OutgoingEvent) -> Result<(), QueueError> {
            if *self.down.lock().unwrap() {
                return Err(QueueError::Unavailable("queue down".into()));
            }
            self.published.lock().unwrap().push(event.clone());
            Ok(())
        }
    }

    struct Fixed(DateTime<Utc>);

    impl Clock for Fixed {
        fn now(&self) -> DateTime<Utc> {
            self.0
        }
    }

    struct Desk {
        workflows: Arc<Workflows>,
        tickets: Arc<Tickets>,
        events: Arc<Events>,
    }

    impl Desk {
        fn new() -> Self {
            Desk {
                workflows: Arc::default(),
                tickets: Arc::default(),
                events: Arc::default(),
            }
        }

        fn watch(&self) -> SlaWatch {
            SlaWatch::new(
                self.workflows.clone(),
                self.tickets.clone(),
                self.events.clone(),
                Arc::new(Fixed(now())),
            )
            .with_warn_before(Duration::minutes(15))
        }

        /// An open ticket due at `due`, answered at `answered`.
        fn ticket(&self, status: TicketStatus, due: &str, answered: Option<&str>) -> TicketId {
            let id = TicketId::generate();
            let contact = ContactId::generate();
            let created = utc("2026-11-24T08:00:00Z");
            self.tickets.0.lock().unwrap().insert(
                id.clone(),
                Ticket {
                    id: id.clone(),
                    status,
                    channel: ChannelKind::Twitter,
                    subject: "Where is my order?".into(),
                    contact_id: contact.clone(),
                    conversation_key: ConversationKey::parse("x:tweet:1").unwrap(),
                    created_at: created,
                    updated_at: created,
                    preview: "Where is my order?".into(),
                    message_count: 1,
                    related_tickets: Vec::new(),
                },
            );
            let mut workflow =
                TicketWorkflow::new(id.clone(), contact, ChannelKind::Twitter, created);
            workflow.sla.policy = Some("public/normal".into());
            workflow.sla.first_response_due = Some(utc(due));
            workflow.sla.first_response_at = answered.map(utc);
            self.workflows.put(workflow);
            id
        }

        fn published(&self) -> Vec<OutgoingEvent> {
            self.events.published.lock().unwrap().clone()
        }
    }

    #[tokio::test]
    async fn raises_each_overdue_first_response_once() {
        let desk = Desk::new();
        let overdue = desk.ticket(TicketStatus::Open, "2026-11-24T11:00:00Z", None);
        let due_now = desk.ticket(TicketStatus::Pending, "2026-11-24T12:00:00Z", None);
        desk.ticket(TicketStatus::Open, "2026-11-24T13:00:00Z", None);
        desk.ticket(
            TicketStatus::Open,
            "2026-11-24T11:00:00Z",
            Some("2026-11-24T10:30:00Z"),
        );

        let report = desk.watch().run_once(now()).await.unwrap();
        assert_eq!(report.raised, 2, "{report:?}");
        let events = desk.published();
        assert_eq!(events.len(), 2);
        assert!(events.iter().all(|e| e.kind == EventType::SlaBreached));
        assert_eq!(events[0].data["ticket_id"], overdue.as_str());
        assert_eq!(events[1].data["ticket_id"], due_now.as_str());
        assert_eq!(
            desk.workflows.get(&overdue).sla.breach_raised_at,
            Some(now())
        );

        let again = desk
            .watch()
            .run_once(now() + Duration::minutes(1))
            .await
            .unwrap();
        assert_eq!((again.raised, again.already_raised), (0, 2), "{again:?}");
        assert_eq!(desk.published().len(), 2);
    }

    #[tokio::test]
    async fn skips_solved_tickets() {
        let desk = Desk::new();
        let solved = desk.ticket(TicketStatus::Solved, "2026-11-24T11:00:00Z", None);
        let report = desk.watch().run_once(now()).await.unwrap();
        assert_eq!((report.raised, report.solved), (0, 1), "{report:?}");
        assert!(desk.published().is_empty());
        assert_eq!(desk.workflows.get(&solved).sla.breach_raised_at, None);
    }

    #[tokio::test]
    async fn counts_tickets_nearing_their_due_time() {
        let desk = Desk::new();
        desk.ticket(TicketStatus::Open, "2026-11-24T12:10:00Z", None);
        desk.ticket(TicketStatus::Open, "2026-11-24T12:20:00Z", None);
        let report = desk.watch().run_once(now()).await.unwrap();
        assert_eq!((report.nearing, report.raised), (1, 0), "{report:?}");
    }

    #[tokio::test]
    async fn a_watcher_that_loses_the_race_raises_nothing() {
        let desk = Desk::new();
        let id = desk.ticket(TicketStatus::Open, "2026-11-24T11:00:00Z", None);
        // Another watcher claims the breach between this one's read and its write.
        let mut theirs = desk.workflows.get(&id);
        theirs.sla.breach_raised_at = Some(now() - Duration::seconds(1));
        *desk.workflows.interfere.lock().unwrap() = Some(theirs);

        let report = desk.watch().run_once(now()).await.unwrap();
        assert_eq!((report.raised, report.already_raised), (0, 1), "{report:?}");
        assert!(desk.published().is_empty(), "the winner publishes, not us");
    }

    #[tokio::test]
    async fn two_watchers_at_once_raise_one_event() {
        let desk = Desk::new();
        desk.ticket(TicketStatus::Open, "2026-11-24T11:00:00Z", None);
        let (a, b) = (desk.watch(), desk.watch());
        let (ra, rb) = tokio::join!(a.run_once(now()), b.run_once(now()));
        assert_eq!(ra.unwrap().raised + rb.unwrap().raised, 1);
        assert_eq!(desk.published().len(), 1);
    }

    #[tokio::test]
    async fn an_unrelated_change_in_between_is_kept_and_the_breach_still_raised() {
        let desk = Desk::new();
        let id = desk.ticket(TicketStatus::Open, "2026-11-24T11:00:00Z", None);
        let mut assigned = desk.workflows.get(&id);
        assigned.assignee = Some("agent-7".into());
        *desk.workflows.interfere.lock().unwrap() = Some(assigned);

        let report = desk.watch().run_once(now()).await.unwrap();
        assert_eq!(report.raised, 1, "{report:?}");
        let stored = desk.workflows.get(&id);
        assert_eq!(stored.assignee.as_deref(), Some("agent-7"));
        assert_eq!(stored.sla.breach_raised_at, Some(now()));
        assert_eq!(desk.published()[0].data["assignee"], "agent-7");
    }

    #[tokio::test]
    async fn a_breach_whose_event_cannot_be_queued_is_raised_by_the_next_run() {
        let desk = Desk::new();
        let id = desk.ticket(TicketStatus::Open, "2026-11-24T11:00:00Z", None);
        *desk.events.down.lock().unwrap() = true;
        let report = desk.watch().run_once(now()).await.unwrap();
        assert_eq!((report.raised, report.failed), (0, 1), "{report:?}");
        assert_eq!(desk.workflows.get(&id).sla.breach_raised_at, None);

        *desk.events.down.lock().unwrap() = false;
        let later = now() + Duration::minutes(1);
        let report = desk.watch().run_once(later).await.unwrap();
        assert_eq!(report.raised, 1, "{report:?}");
        assert_eq!(desk.workflows.get(&id).sla.breach_raised_at, Some(later));
        // Same ticket, same due time: the same event id as the first attempt would have had.
        let expected =
            OutgoingEvent::sla_breached(&desk.workflows.get(&id), utc("2026-11-24T11:00:00Z"));
        assert_eq!(desk.published()[0].id, expected.id);
    }
}
