//! What agents do with a ticket beyond answering it: assign it, tag it, set its priority, add
//! internal notes, use canned responses, hand a public conversation over to a private channel,
//! look up similar tickets, list tickets nearing their SLA target, and see (and merge) a
//! customer across channels. All of it is [`AgentDesk`] use cases over a [`WorkflowStore`]
//! ([`crate::workflow`]).

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::agent::{AgentDesk, AgentError, AgentRef, ReplyRequest, TicketSummary, MAX_REPLY_BYTES};
use crate::ids::{ContactId, MessageId, TicketId};
use crate::model::{
    Author, Contact, Direction, Message, MessageEvent, Ticket, TicketStatus, Visibility,
};
use crate::ports::{NewTicket, Route, TicketCursor, TicketFilter, TicketStore, MAX_LIST_LIMIT};
use crate::reply_window;
use crate::settings::{DeskSettings, InvalidSetting};
use crate::sla::{SlaPolicies, SlaState};
use crate::templates::{CannedResponse, HandoffTemplates, PlaceholderValues};
use crate::triage::Triage;
use crate::workflow::{
    ContactLinks, Handoff, MergeOutcome, Priority, SimilarTicket, TicketKind, TicketWorkflow,
    WorkflowQuery, WorkflowStore,
};

/// The most tags a ticket carries, and the longest tag.
pub const MAX_TAGS: usize = 32;
/// The longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 64;

/// What the desk needs for the workflow use cases.
pub struct DeskWorkflow {
    /// Keeps each ticket's workflow (shared with the ticket writer's).
    pub triage: Arc<Triage>,
    /// The SLA targets.
    pub sla: Arc<SlaPolicies>,
    /// The public-to-private handoff texts.
    pub handoff: HandoffTemplates,
    /// The canned responses, by name.
    pub canned: Vec<CannedResponse>,
}

impl DeskWorkflow {
    /// The workflow of a desk configured by `settings` over these stores.
    pub fn from_settings(
        settings: &DeskSettings,
        workflows: Arc<dyn WorkflowStore>,
        tickets: Arc<dyn TicketStore>,
    ) -> Result<Self, InvalidSetting> {
        let sla = Arc::new(settings.sla_policies()?);
        let triage = Triage::new(
            workflows,
            tickets,
            Arc::new(settings.personal_data_detector()?),
            Arc::clone(&sla),
            TimeDelta::hours(i64::from(settings.threading.continue_within_hours)),
        );
        Ok(DeskWorkflow {
            triage: Arc::new(triage),
            sla,
            handoff: settings.handoff_templates()?,
            canned: settings.canned.clone(),
        })
    }

    fn store(&self) -> &Arc<dyn WorkflowStore> {
        self.triage.workflows()
    }
}

/// A ticket's workflow as agents see it: the stored state and where its SLA clock stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkflowView {
    /// The stored working state.
    #[serde(flatten)]
    pub workflow: TicketWorkflow,
    /// Where the first-response clock stands now.
    pub sla_state: SlaState,
}

/// Extra filters of the ticket list that the workflow answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkFilter {
    /// Only tickets assigned to this agent (`none`: unassigned).
    pub assignee: Option<String>,
    /// Only tickets assigned to this team.
    pub team: Option<String>,
    /// Only tickets carrying this tag.
    pub tag: Option<String>,
    /// Only tickets of this kind.
    pub kind: Option<TicketKind>,
    /// Only tickets nearing or past their first-response target, earliest due first.
    pub sla_breaching: bool,
}

impl WorkFilter {
    /// Whether it filters at all.
    pub fn is_empty(&self) -> bool {
        self == &WorkFilter::default()
    }

    fn admits(&self, workflow: &TicketWorkflow) -> bool {
        let assignee = match self.assignee.as_deref() {
            None => true,
            Some("none") => workflow.assignee.is_none(),
            Some(agent) => workflow.assignee.as_deref() == Some(agent),
        };
        assignee
            && self
                .team
                .as_deref()
                .is_none_or(|t| workflow.team.as_deref() == Some(t))
            && self
                .tag
                .as_deref()
                .is_none_or(|t| workflow.tags.contains(&normalize_tag(t)))
            && self.kind.is_none_or(|k| workflow.kind == k)
    }
}

/// A change an agent makes to a ticket; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketUpdate {
    /// The new status.
    #[serde(default)]
    pub status: Option<TicketStatus>,
    /// The new priority (moves the first-response target while it is still open).
    #[serde(default)]
    pub priority: Option<Priority>,
    /// The agent to assign it to; `null` unassigns.
    #[serde(default, with = "double_option")]
    pub assignee: Option<Option<String>>,
    /// The team to assign it to; `null` unassigns.
    #[serde(default, with = "double_option")]
    pub team: Option<Option<String>>,
    /// Tags to add.
    #[serde(default)]
    pub add_tags: Vec<String>,
    /// Tags to remove.
    #[serde(default)]
    pub remove_tags: Vec<String>,
}

/// `Option<Option<T>>` from JSON: absent → `None`, `null` → `Some(None)`.
mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Option::<T>::deserialize(d).map(Some)
    }
}

/// A customer with every channel identity, the contacts merged into them, suggestions, and
/// their tickets across channels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContactView {
    /// The contact.
    #[serde(flatten)]
    pub contact: Contact,
    /// The contacts merged into this one (their identities lead here).
    pub merged_contacts: Vec<Contact>,
    /// How it is linked to others.
    pub links: ContactLinks,
    /// Every ticket of the contact and of the contacts merged into it, most recent first.
    pub tickets: Vec<TicketSummary>,
}

/// The two messages of a public-to-private handoff, both queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HandoffResult {
    /// The language the texts were chosen in.
    pub language: String,
    /// The short public answer.
    pub public: Message,
    /// The private message.
    pub private: Message,
}

/// A canned response, rendered for a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RenderedResponse {
    /// Its name.
    pub name: String,
    /// Its title.
    pub title: String,
    /// The text with the ticket's values filled in, for the agent to edit and send.
    pub text: String,
}

/// A tag as stored: trimmed, lower case.
pub fn normalize_tag(tag: &str) -> String {
    tag.trim().to_lowercase()
}

impl AgentDesk {
    fn workflow_setup(&self) -> Result<&DeskWorkflow, AgentError> {
        self.desk_workflow()
            .ok_or_else(|| AgentError::Unavailable("ticket workflow is not configured".into()))
    }

    /// The workflow view of a ticket, if the desk keeps workflows.
    pub(crate) async fn workflow_view(
        &self,
        ticket: &Ticket,
    ) -> Result<Option<WorkflowView>, AgentError> {
        let Some(setup) = self.desk_workflow() else {
            return Ok(None);
        };
        let workflow = setup.triage.workflow_of(ticket).await?;
        let sla_state = SlaState::of(&workflow.sla, self.now(), setup.sla.warn_before());
        Ok(Some(WorkflowView {
            workflow,
            sla_state,
        }))
    }

    /// Tickets matching both filters, with their customers and workflows. With
    /// `sla_breaching`, the tickets nearing or past their first-response target that are not
    /// solved, earliest due first.
    pub async fn list_work(
        &self,
        filter: &TicketFilter,
        work: &WorkFilter,
    ) -> Result<(Vec<TicketSummary>, Option<TicketCursor>), AgentError> {
        if work.is_empty() {
            let tickets = self.list_tickets(filter).await?;
            // A full page: there may be more after its last ticket.
            let next = match tickets.last() {
                Some(last) if tickets.len() >= filter.limit => Some(TicketCursor::of(&last.ticket)),
                _ => None,
            };
            return Ok((tickets, next));
        }
        let setup = self.workflow_setup()?;
        let now = self.now();
        let mut out = Vec::new();
        if work.sla_breaching {
            let due = setup
                .store()
                .list_workflows(&WorkflowQuery {
                    first_response_due_before: Some(now + setup.sla.warn_before()),
                    limit: MAX_LIST_LIMIT,
                    ..WorkflowQuery::default()
                })
                .await?;
            for workflow in due {
                if out.len() == filter.limit {
                    break;
                }
                if !work.admits(&workflow) {
                    continue;
                }
                let Some(ticket) = self.store().get_ticket(&workflow.ticket_id).await? else {
                    continue;
                };
                let wanted_status = match filter.status {
                    Some(s) => ticket.status == s,
                    None => ticket.status != TicketStatus::Solved,
                };
                if !wanted_status || filter.channel.is_some_and(|c| c != ticket.channel) {
                    continue;
                }
                out.push(self.summary(ticket, Some(workflow), setup).await?);
            }
            // Tickets due soonest first, not paged.
            return Ok((out, None));
        }
        let wide = TicketFilter {
            limit: MAX_LIST_LIMIT,
            ..filter.clone()
        };
        let scanned = self.store().list_tickets(&wide).await?;
        let more = scanned.len() >= MAX_LIST_LIMIT;
        let mut last_scanned = None;
        for ticket in scanned {
            if out.len() == filter.limit {
                break;
            }
            last_scanned = Some(TicketCursor::of(&ticket));
            let workflow = setup.triage.workflow_of(&ticket).await?;
            if work.admits(&workflow) {
                out.push(self.summary(ticket, Some(workflow), setup).await?);
            }
        }
        // The next page goes on from the last ticket looked at: past the end of this one when
        // it is full, or past tickets that did not match when there are more to look at.
        let next = (out.len() == filter.limit || more)
            .then_some(last_scanned)
            .flatten();
        Ok((out, next))
    }

    async fn summary(
        &self,
        ticket: Ticket,
        workflow: Option<TicketWorkflow>,
        setup: &DeskWorkflow,
    ) -> Result<TicketSummary, AgentError> {
        let contact = self.store().get_contact(&ticket.contact_id).await?;
        let workflow = workflow.map(|workflow| WorkflowView {
            sla_state: SlaState::of(&workflow.sla, self.now(), setup.sla.warn_before()),
            workflow,
        });
        Ok(TicketSummary {
            ticket,
            contact,
            workflow,
        })
    }

    /// Changes a ticket's status, priority, assignment or tags.
    pub async fn update_ticket(
        &self,
        id: &TicketId,
        update: &TicketUpdate,
    ) -> Result<Ticket, AgentError> {
        let mut ticket = self.existing_ticket(id).await?;
        if let Some(status) = update.status {
            ticket = self.set_status(id, status).await?;
        }
        let workflow_change = update.priority.is_some()
            || update.assignee.is_some()
            || update.team.is_some()
            || !update.add_tags.is_empty()
            || !update.remove_tags.is_empty();
        if !workflow_change {
            return Ok(ticket);
        }
        let setup = self.workflow_setup()?;
        let add: BTreeSet<String> = update.add_tags.iter().map(|t| normalize_tag(t)).collect();
        if let Some(bad) = add.iter().find(|t| {
            t.is_empty() || t.chars().count() > MAX_TAG_CHARS || t.chars().any(char::is_control)
        }) {
            return Err(AgentError::Invalid(format!(
                "tag `{bad}` is empty, longer than {MAX_TAG_CHARS} characters or has control characters"
            )));
        }
        let remove: BTreeSet<String> = update
            .remove_tags
            .iter()
            .map(|t| normalize_tag(t))
            .collect();
        let clean = |value: &Option<String>| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let assignee = update.assignee.as_ref().map(clean);
        let team = update.team.as_ref().map(clean);
        let first_message = if update.priority.is_some() {
            self.store()
                .list_messages(id)
                .await?
                .into_iter()
                .find(|m| m.direction == Direction::Inbound)
        } else {
            None
        };
        setup
            .triage
            .try_update(&ticket, self.now(), |workflow| {
                let before = workflow.clone();
                if let Some(priority) = update.priority {
                    workflow.priority = priority;
                    if workflow.sla.first_response_at.is_none() {
                        let (visibility, start) = first_message
                            .as_ref()
                            .map_or((Visibility::Private, ticket.created_at), |m| {
                                (m.visibility, m.received_at)
                            });
                        setup.triage.apply_sla(workflow, visibility, start);
                    }
                }
                if let Some(assignee) = &assignee {
                    workflow.assignee = assignee.clone();
                }
                if let Some(team) = &team {
                    workflow.team = team.clone();
                }
                workflow.tags.extend(add.iter().cloned());
                workflow.tags.retain(|t| !remove.contains(t));
                if workflow.tags.len() > MAX_TAGS {
                    // Decided on the workflow this attempt read: nothing is saved.
                    return Err(AgentError::Invalid(format!(
                        "a ticket carries at most {MAX_TAGS} tags"
                    )));
                }
                Ok(*workflow != before)
            })
            .await?;
        info!(ticket_id = %id, "ticket workflow updated");
        Ok(ticket)
    }

    /// Adds an internal note to a ticket: part of its timeline, never sent to the customer.
    pub async fn add_note(
        &self,
        id: &TicketId,
        agent: &AgentRef,
        text: &str,
    ) -> Result<Message, AgentError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(AgentError::Invalid("note text is empty".into()));
        }
        if text.len() > MAX_REPLY_BYTES {
            return Err(AgentError::TooLarge(format!(
                "note text is {} bytes; the limit is {MAX_REPLY_BYTES}",
                text.len()
            )));
        }
        let ticket = self.existing_ticket(id).await?;
        let messages = self.store().list_messages(id).await?;
        // A note lives in the ticket's own conversation; it carries no delivery, so no sender
        // ever takes it, and no reply window counts it.
        let conversation = messages
            .first()
            .map(|m| (m.channel, m.conversation.clone()))
            .ok_or_else(|| AgentError::Conflict(format!("ticket {id} has no messages")))?;
        let now = self.now();
        let note = Message {
            id: MessageId::generate(),
            channel: conversation.0,
            platform_message_id: None,
            conversation: conversation.1,
            direction: Direction::Outbound,
            event: MessageEvent::Created,
            author: Author {
                platform_id: agent.id.clone(),
                name: agent.name.clone(),
                email: None,
                handle: None,
            },
            text: text.to_string(),
            attachments: Vec::new(),
            visibility: Visibility::Private,
            sent_at: now,
            received_at: now,
            replies_to: Vec::new(),
            ticket_ref: Some(id.clone()),
            subject: None,
            email: None,
            raw: None,
            delivery: None,
            signature_unverified: false,
            personal_data: Vec::new(),
            internal_note: true,
            monitoring: false,
        };
        let route = Route {
            ticket: Some(id.clone()),
            conversation_key: note
                .conversation
                .key(note.channel)
                .map_err(|e| AgentError::Conflict(e.to_string()))?,
            new_ticket: NewTicket {
                id: id.clone(),
                subject: ticket.subject.clone(),
                related_tickets: Vec::new(),
            },
        };
        self.store()
            .append_message(&route, &note, &ticket.contact_id)
            .await?;
        info!(ticket_id = %id, message_id = %note.id, "internal note added");
        Ok(note)
    }

    /// A customer with their identities, merged contacts, link suggestions and every ticket
    /// across channels. A contact merged into another shows that one.
    pub async fn contact(&self, id: &ContactId) -> Result<ContactView, AgentError> {
        let setup = self.workflow_setup()?;
        let id = setup.triage.effective_contact(id.clone()).await?;
        let contact = self
            .store()
            .get_contact(&id)
            .await?
            .ok_or_else(|| AgentError::NotFound(format!("contact {id}")))?;
        let links = setup.store().contact_links(&id).await?;
        let mut merged_contacts = Vec::new();
        for merged in &links.merged {
            if let Some(c) = self.store().get_contact(merged).await? {
                merged_contacts.push(c);
            }
        }
        let mut family = vec![id.clone()];
        family.extend(links.merged.iter().cloned());
        let workflows = setup
            .store()
            .list_workflows(&WorkflowQuery {
                contacts: family,
                limit: MAX_LIST_LIMIT,
                ..WorkflowQuery::default()
            })
            .await?;
        let mut tickets = Vec::with_capacity(workflows.len());
        for workflow in workflows {
            if let Some(ticket) = self.store().get_ticket(&workflow.ticket_id).await? {
                tickets.push(self.summary(ticket, Some(workflow), setup).await?);
            }
        }
        tickets.sort_by_key(|t| std::cmp::Reverse(t.ticket.updated_at));
        Ok(ContactView {
            contact,
            merged_contacts,
            links,
            tickets,
        })
    }

    /// Merges `source` into `target`: `target` then stands for both, and new messages of
    /// `source`'s identities go to `target`'s tickets.
    pub async fn merge_contacts(
        &self,
        target: &ContactId,
        source: &ContactId,
    ) -> Result<ContactView, AgentError> {
        let setup = self.workflow_setup()?;
        for id in [target, source] {
            if self.store().get_contact(id).await?.is_none() {
                return Err(AgentError::NotFound(format!("contact {id}")));
            }
        }
        match setup
            .store()
            .merge_contacts(source, target, self.now())
            .await?
        {
            MergeOutcome::Merged | MergeOutcome::AlreadyMerged => {}
            MergeOutcome::MergedElsewhere => {
                return Err(AgentError::Conflict(format!(
                    "contact {source} is merged into another contact: unmerge it first"
                )))
            }
            MergeOutcome::Refused => {
                return Err(AgentError::Conflict(format!(
                    "contact {source} cannot be merged into {target}: they are the same, {target} is itself merged, or {source} has contacts merged into it"
                )))
            }
        }
        info!(%target, %source, "contacts merged");
        self.contact(target).await
    }

    /// Undoes the merge of `source` into `target`.
    pub async fn unmerge_contacts(
        &self,
        target: &ContactId,
        source: &ContactId,
    ) -> Result<ContactView, AgentError> {
        let setup = self.workflow_setup()?;
        let links = setup.store().contact_links(source).await?;
        if links.merged_into.as_ref() != Some(target) {
            return Err(AgentError::Conflict(format!(
                "contact {source} is not merged into {target}"
            )));
        }
        setup.store().unmerge_contact(source).await?;
        info!(%target, %source, "contacts unmerged");
        self.contact(target).await
    }

    /// Up to 5 open or recently solved tickets with a similar question, best first, searched
    /// now with the ticket's subject and every customer message (the list the ticket keeps was
    /// searched when its first message arrived).
    pub async fn similar(&self, id: &TicketId) -> Result<Vec<SimilarTicket>, AgentError> {
        let setup = self.workflow_setup()?;
        let messages = self.store().list_messages(id).await?;
        let ticket = self.existing_ticket(id).await?;
        let mut query = ticket.subject.clone();
        for message in messages
            .iter()
            .filter(|m| m.direction == Direction::Inbound && !m.is_automatic())
        {
            query.push('\n');
            query.push_str(&message.text);
        }
        Ok(setup.triage.similar_to(&ticket, &query, self.now()).await?)
    }

    /// The canned responses.
    pub fn canned_responses(&self) -> Result<&[CannedResponse], AgentError> {
        Ok(&self.workflow_setup()?.canned)
    }

    /// A canned response rendered for a ticket and the agent using it.
    pub async fn render_canned(
        &self,
        id: &TicketId,
        name: &str,
        agent: &AgentRef,
    ) -> Result<RenderedResponse, AgentError> {
        let setup = self.workflow_setup()?;
        let response = setup
            .canned
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| AgentError::NotFound(format!("canned response `{name}`")))?;
        let values = self.placeholder_values(id, agent).await?;
        let text = response
            .render(&values)
            .map_err(|e| AgentError::Invalid(e.to_string()))?;
        Ok(RenderedResponse {
            name: response.name.clone(),
            title: response.title.clone(),
            text,
        })
    }

    async fn placeholder_values(
        &self,
        id: &TicketId,
        agent: &AgentRef,
    ) -> Result<PlaceholderValues, AgentError> {
        let ticket = self.existing_ticket(id).await?;
        let contact = self.store().get_contact(&ticket.contact_id).await?;
        Ok(PlaceholderValues {
            customer_name: contact.and_then(|c| c.name),
            agent_name: agent.name.clone().or_else(|| Some(agent.id.clone())),
            ticket_id: Some(ticket.id.clone()),
            ticket_subject: Some(ticket.subject.clone()),
        })
    }

    /// The public-to-private handoff in one action: a short public answer inviting the customer
    /// to continue privately, and the private message (Messenger private reply, X direct
    /// message), in the customer's language. Both windows are checked first, so either both
    /// are queued or neither is.
    pub async fn handoff(
        &self,
        id: &TicketId,
        agent: &AgentRef,
        language: Option<&str>,
    ) -> Result<HandoffResult, AgentError> {
        let setup = self.workflow_setup()?;
        let ticket = self.existing_ticket(id).await?;
        let messages = self.store().list_messages(id).await?;
        let target = reply_window::reply_target(&messages, None)
            .filter(|m| m.visibility == Visibility::Public)
            .ok_or_else(|| {
                AgentError::Conflict(format!(
                    "ticket {id}'s latest customer message is not public: nothing to hand off"
                ))
            })?
            .clone();
        let contact = self.store().get_contact(&ticket.contact_id).await?;
        let now = self.now();
        for visibility in [Visibility::Public, Visibility::Private] {
            let assessed = reply_window::assess(
                &target,
                visibility,
                &messages,
                contact.as_ref(),
                now,
                self.reply_capabilities(),
            );
            if !assessed.can_reply {
                return Err(AgentError::WindowClosed(
                    assessed.refusal().unwrap_or_default(),
                ));
            }
        }
        let values = self.placeholder_values(id, agent).await?;
        let texts = match language {
            Some(lang) => setup
                .handoff
                .render_in(lang, &values)
                .ok_or_else(|| AgentError::Invalid(format!("no handoff texts in `{lang}`")))?,
            None => setup.handoff.render(&target.text, &values),
        };
        let private = self
            .reply(
                id,
                agent,
                &ReplyRequest {
                    text: texts.private,
                    channel: Some(target.channel),
                    visibility: Some(Visibility::Private),
                    idempotency_key: None,
                },
            )
            .await?;
        let public = self
            .reply(
                id,
                agent,
                &ReplyRequest {
                    text: texts.public,
                    channel: Some(target.channel),
                    visibility: Some(Visibility::Public),
                    idempotency_key: None,
                },
            )
            .await?;
        let handoff = Handoff {
            at: now,
            agent_id: agent.id.clone(),
            public_message: public.id.clone(),
            private_message: private.id.clone(),
        };
        if let Err(e) = setup
            .triage
            .update(&ticket, now, |workflow| {
                workflow.handoff = Some(handoff.clone());
                true
            })
            .await
        {
            warn!(ticket_id = %id, error = %e, "handoff queued but not recorded on the workflow");
        }
        info!(ticket_id = %id, language = %texts.language, "public-to-private handoff queued");
        Ok(HandoffResult {
            language: texts.language,
            public,
            private,
        })
    }

    /// Records on the workflow that an agent answered (stops the first-response clock).
    pub(crate) async fn note_response(&self, ticket: &Ticket, at: DateTime<Utc>) {
        if let Some(setup) = self.desk_workflow() {
            if let Err(e) = setup.triage.responded(ticket, at).await {
                warn!(ticket_id = %ticket.id, error = %e, "first response not recorded on the workflow");
            }
        }
    }

    /// Records a status change on the workflow (the resolution time).
    pub(crate) async fn note_status(&self, ticket: &Ticket) {
        if let Some(setup) = self.desk_workflow() {
            if let Err(e) = setup.triage.status_changed(ticket, self.now()).await {
                warn!(ticket_id = %ticket.id, error = %e, "status change not recorded on the workflow");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ChannelKind;

    fn workflow() -> TicketWorkflow {
        let mut w = TicketWorkflow::new(
            TicketId::parse("K3F9Q2XA").unwrap(),
            ContactId::generate(),
            ChannelKind::Chat,
            chrono::Utc::now(),
        );
        w.assignee = Some("agent-7".into());
        w.team = Some("billing".into());
        w.tags.insert("refund".into());
        w
    }

    #[test]
    fn an_update_tells_absent_from_null() {
        let absent: TicketUpdate = serde_json::from_str(r#"{"priority":"high"}"#).unwrap();
        assert_eq!(absent.assignee, None);
        assert_eq!(absent.priority, Some(Priority::High));
        let unassign: TicketUpdate = serde_json::from_str(r#"{"assignee":null}"#).unwrap();
        assert_eq!(unassign.assignee, Some(None));
        let assign: TicketUpdate = serde_json::from_str(r#"{"team":"billing"}"#).unwrap();
        assert_eq!(assign.team, Some(Some("billing".into())));
        assert!(serde_json::from_str::<TicketUpdate>(r#"{"assigne":"x"}"#).is_err());
        assert!(serde_json::from_str::<TicketUpdate>(r#"{"priority":"asap"}"#).is_err());
    }

    #[test]
    fn work_filters_match_assignee_team_tag_and_kind() {
        let w = workflow();
        let admits = |f: WorkFilter| f.admits(&w);
        assert!(admits(WorkFilter::default()));
        assert!(admits(WorkFilter {
            assignee: Some("agent-7".into()),
            team: Some("billing".into()),
            tag: Some(" Refund ".into()),
            kind: Some(TicketKind::Conversation),
            ..WorkFilter::default()
        }));
        assert!(!admits(WorkFilter {
            assignee: Some("none".into()),
            ..WorkFilter::default()
        }));
        assert!(!admits(WorkFilter {
            tag: Some("vip".into()),
            ..WorkFilter::default()
        }));
        assert!(!admits(WorkFilter {
            kind: Some(TicketKind::Monitoring),
            ..WorkFilter::default()
        }));
        let mut unassigned = w.clone();
        unassigned.assignee = None;
        assert!(WorkFilter {
            assignee: Some("none".into()),
            ..WorkFilter::default()
        }
        .admits(&unassigned));
    }
}
