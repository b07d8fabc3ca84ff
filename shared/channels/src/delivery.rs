//! Delivering queued replies: pick the channel's sender, guard the platform call with an
//! idempotency record, retry what is retryable, and record `sent`, `failed` or `unknown`.
//!
//! The idempotency record is the reply's own delivery record, changed only by compare-and-set:
//! 1. **claim**: `queued` → `queued` with `sending_since = now` and one more attempt. Only one
//!    sender can win the claim.
//! 2. **call** the platform once.
//! 3. **confirm**: `sent` with the platform's id, or `failed` with its error; a retryable error
//!    releases the claim (`sending_since` cleared: nothing was sent) for a later attempt.
//!
//! A sender that finds a claim still set never calls the platform: the earlier sender died
//! between its call and its confirmation, so the reply may or may not have gone out. It is
//! marked `unknown` for an agent to check, rather than risk sending it twice.
//!
//! With an [`EventQueue`], each job first emits the reply's `message.created`, and a job that
//! leaves the reply `sent`, `failed` or `unknown` emits `message.delivery_changed` for that
//! status, read back from the store (whoever changed it: this sender, an earlier one, the
//! platform's echo). The ids are deterministic, so a redelivered job emits the same events
//! again harmlessly: a sender that died between recording and emitting is healed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crossdesk_core::events::{EventQueue, OutgoingEvent, PublishError};
use crossdesk_core::health::{credential_group, ChannelHealthStore, Reauthorization};
use crossdesk_core::{
    ChannelKind, Clock, Delivery, DeliveryError, DeliveryStatus, Direction, Message, MessageEvent,
    OutboundJob, StoreError, TicketStore,
};
use rand::Rng;
use tracing::{error, info, warn};

use crate::send::{OutboundReply, ReplySender, SendError};

/// How long a sender's claim on a reply stands: longer than any platform call may take (the
/// senders' HTTP timeouts are 10 s). A claim older than this belongs to a sender that
/// died mid-call, so the reply's outcome is unknown; a younger one is another sender at work.
pub const SEND_CLAIM_LEASE: Duration = Duration::from_secs(120);

/// How often a sender re-reads and re-claims a reply whose record changed under it (an echo
/// recording the platform id) before leaving it to the other job.
const MAX_RECLAIMS: u32 = 3;

/// How often a sender writes a delivery record when the store fails transiently. The sender
/// knows what happened (it holds the claim, it heard the platform's answer); losing that to a
/// blip of the store would leave the reply claimed, and so `unknown` once the claim expires.
const RECORD_ATTEMPTS: u32 = 4;

/// The first wait before writing a delivery record again (doubled each time).
const RECORD_BACKOFF: Duration = Duration::from_millis(50);

/// How often and how patiently to retry a transient failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Platform calls within one delivery job before handing the job back to the queue.
    pub attempts_per_job: u32,
    /// Platform calls over all deliveries of a reply before it is marked `failed`.
    pub max_attempts: u32,
    /// The first backoff.
    pub base: Duration,
    /// The longest backoff waited in-process; a longer `retry_after` hands the job back.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts_per_job: 3,
            max_attempts: 8,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// Capped exponential backoff with full jitter after `attempt` failed calls, never shorter
    /// than what the platform asked for.
    pub fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.cap);
        let jittered = Duration::from_millis(
            rand::rng().random_range(exp.as_millis() as u64 / 2..=exp.as_millis() as u64),
        );
        jittered.max(retry_after.unwrap_or_default())
    }
}

/// What became of one delivery job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The platform accepted the reply.
    Sent {
        /// The platform's id of the sent message.
        platform_id: String,
    },
    /// The reply was refused for good; the agent sees why.
    Failed {
        /// The recorded error.
        error: DeliveryError,
        /// Whether the channel's credentials were rejected (it needs re-authorization).
        unauthorized: bool,
    },
    /// An earlier sender died mid-call; the reply is `unknown` and was not sent again.
    Unknown,
    /// The reply had already reached a final state (a redelivered job): nothing was done.
    AlreadyDone {
        /// Its state.
        status: DeliveryStatus,
    },
    /// Still failing transiently: hand the job back to the queue, to try after this long.
    RetryLater {
        /// The suggested wait.
        after: Duration,
    },
}

/// Why a delivery job could not be worked on at all (the queue should retry it).
#[derive(Debug, thiserror::Error)]
pub enum DeliveryJobError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The job names a reply that is not stored.
    #[error("reply {0} is not stored")]
    UnknownReply(String),
    /// The reply's outgoing events could not be queued (the job is retried and emits them).
    #[error(transparent)]
    Events(#[from] PublishError),
}

/// Delivers replies through the senders of the configured channels.
#[derive(Clone)]
pub struct ReplyDelivery {
    store: Arc<dyn TicketStore>,
    senders: BTreeMap<ChannelKind, Arc<dyn ReplySender>>,
    clock: Arc<dyn Clock>,
    policy: RetryPolicy,
    events: Option<Arc<dyn EventQueue>>,
    health: Option<Arc<dyn ChannelHealthStore>>,
}

impl ReplyDelivery {
    /// Delivery over a store with no senders yet.
    pub fn new(store: Arc<dyn TicketStore>, clock: Arc<dyn Clock>, policy: RetryPolicy) -> Self {
        ReplyDelivery {
            store,
            senders: BTreeMap::new(),
            clock,
            policy,
            events: None,
            health: None,
        }
    }

    /// The same delivery, marking a channel as needing re-authorization in `health` the moment
    /// its platform rejects the credentials (Graph 190, X 401), and clearing the mark when a
    /// send with them succeeds.
    pub fn with_channel_health(mut self, health: Arc<dyn ChannelHealthStore>) -> Self {
        self.health = Some(health);
        self
    }

    /// The same delivery, putting `message.created` and `message.delivery_changed` on this queue.
    pub fn with_events(mut self, events: Arc<dyn EventQueue>) -> Self {
        self.events = Some(events);
        self
    }

    /// Adds the sender of a channel.
    pub fn with_sender(mut self, channel: ChannelKind, sender: Arc<dyn ReplySender>) -> Self {
        self.senders.insert(channel, sender);
        self
    }

    /// Works one job off the outbound queue, emitting the reply's events when configured.
    #[tracing::instrument(skip_all, fields(ticket_id = %job.ticket_id, message_id = %job.message_id))]
    pub async fn deliver(&self, job: &OutboundJob) -> Result<DeliveryOutcome, DeliveryJobError> {
        let Some(events) = &self.events else {
            return self.deliver_reply(job).await;
        };
        if let Some(reply) = self.stored_reply(job).await? {
            publish(
                events.as_ref(),
                OutgoingEvent::message_created(&job.ticket_id, &reply),
            )
            .await?;
        }
        let outcome = self.deliver_reply(job).await?;
        if matches!(outcome, DeliveryOutcome::RetryLater { .. }) {
            return Ok(outcome);
        }
        let reply = self.stored_reply(job).await?;
        if let Some((reply, delivery)) = reply.and_then(|r| r.delivery.clone().map(|d| (r, d))) {
            if matches!(
                delivery.status,
                DeliveryStatus::Sent | DeliveryStatus::Failed | DeliveryStatus::Unknown
            ) {
                let event = OutgoingEvent::delivery_changed(
                    &job.ticket_id,
                    &job.message_id,
                    reply.channel,
                    &delivery,
                    self.clock.now(),
                );
                publish(events.as_ref(), event).await?;
            }
        }
        Ok(outcome)
    }

    /// Replaces the reply's delivery record `expected` with `new` (compare-and-set) and says
    /// whether it did, riding out transient store failures: after one, the record is read back,
    /// so a write that landed although its answer was lost counts as done, one that did not
    /// land is tried again, and a record someone else changed meanwhile is a lost race.
    async fn record(
        &self,
        job: &OutboundJob,
        expected: &Delivery,
        new: &Delivery,
    ) -> Result<bool, DeliveryJobError> {
        let mut wait = RECORD_BACKOFF;
        for attempt in 1.. {
            let error = match self
                .store
                .set_delivery(&job.ticket_id, &job.message_id, expected, new)
                .await
            {
                Ok(done) => return Ok(done),
                Err(e) if e.is_retryable() && attempt < RECORD_ATTEMPTS => e,
                Err(e) => return Err(e.into()),
            };
            warn!(error = %error, attempt, "writing the delivery record failed; reading it back");
            tokio::time::sleep(wait).await;
            wait *= 2;
            let stored = match self.stored_reply(job).await {
                Ok(Some(reply)) => reply.delivery.unwrap_or_else(Delivery::queued),
                // Unreadable too (or gone): write again, or give up with the last error.
                Ok(None) | Err(_) => continue,
            };
            if stored == *new {
                return Ok(true);
            }
            if stored != *expected {
                return Ok(false);
            }
        }
        unreachable!("the loop returns by its last attempt")
    }

    /// The reply's delivery record when it is still queued and unclaimed (so this sender may
    /// claim it), re-read after a lost compare-and-set.
    async fn reclaimable(&self, job: &OutboundJob) -> Result<Option<Delivery>, DeliveryJobError> {
        let delivery = self
            .stored_reply(job)
            .await?
            .map(|r| r.delivery.unwrap_or_else(Delivery::queued));
        Ok(delivery.filter(|d| d.status == DeliveryStatus::Queued && d.sending_since.is_none()))
    }

    /// The job's reply as stored now.
    async fn stored_reply(&self, job: &OutboundJob) -> Result<Option<Message>, DeliveryJobError> {
        Ok(self
            .store
            .list_messages(&job.ticket_id)
            .await?
            .into_iter()
            .find(|m| m.id == job.message_id && m.direction == Direction::Outbound))
    }

    async fn deliver_reply(&self, job: &OutboundJob) -> Result<DeliveryOutcome, DeliveryJobError> {
        let thread = self.store.list_messages(&job.ticket_id).await?;
        let reply = thread
            .iter()
            .find(|m| m.id == job.message_id && m.direction == Direction::Outbound)
            .ok_or_else(|| DeliveryJobError::UnknownReply(job.message_id.to_string()))?;
        let mut current = reply.delivery.clone().unwrap_or_else(Delivery::queued);
        if current.status != DeliveryStatus::Queued {
            info!(status = ?current.status, "reply already delivered or settled");
            return Ok(DeliveryOutcome::AlreadyDone {
                status: current.status,
            });
        }
        if let Some(since) = current.sending_since {
            let age = (self.clock.now() - since).to_std().unwrap_or_default();
            if age < SEND_CLAIM_LEASE {
                // Another sender is calling the platform right now (a duplicate job): its
                // answer settles the reply; look again once its call must have ended.
                info!("another sender is sending this reply; checking back later");
                return Ok(DeliveryOutcome::RetryLater {
                    after: SEND_CLAIM_LEASE - age,
                });
            }
            return self.mark_unknown(job, reply, current).await;
        }
        let Some(sender) = self.senders.get(&reply.channel) else {
            let error = DeliveryError {
                code: "channel_not_configured".into(),
                reason: format!(
                    "replies on {} are not configured (missing sending credentials)",
                    reply.channel
                ),
            };
            return self.finish_failed(job, current, error, false).await;
        };
        let Some(answering) = answering(&thread, reply) else {
            let error = DeliveryError {
                code: "nothing_to_answer".into(),
                reason: "the ticket has no customer message in this conversation".into(),
            };
            return self.finish_failed(job, current, error, false).await;
        };

        let attempts_per_job = self.policy.attempts_per_job.max(1);
        let mut reclaims = 0;
        let mut attempt = 0;
        while attempt < attempts_per_job {
            attempt += 1;
            let now = self.clock.now();
            let claimed = Delivery {
                attempts: current.attempts + 1,
                sending_since: Some(now),
                ..current.clone()
            };
            if !self.record(job, &current, &claimed).await? {
                // The record changed under us. Another sender's claim or a settled reply ends
                // this job; any other change (an echo recording the platform id) is re-read
                // and the claim tried again, so a reply is never left queued without a job.
                match self.reclaimable(job).await? {
                    Some(fresh) if reclaims < MAX_RECLAIMS => {
                        reclaims += 1;
                        current = fresh;
                        attempt -= 1; // no call was made: not an attempt
                        continue;
                    }
                    _ => {
                        warn!("another sender claimed this reply first");
                        return Ok(DeliveryOutcome::AlreadyDone {
                            status: DeliveryStatus::Queued,
                        });
                    }
                }
            }
            let outcome = sender
                .send(&OutboundReply {
                    ticket_id: &job.ticket_id,
                    reply,
                    answering,
                    thread: &thread,
                    now,
                })
                .await;
            match outcome {
                Ok(sent) => {
                    let done = Delivery {
                        status: DeliveryStatus::Sent,
                        platform_id: Some(sent.platform_id.clone()),
                        error: None,
                        attempts: claimed.attempts,
                        sending_since: None,
                    };
                    if let Some(status) = self.confirm(job, &claimed, &done).await? {
                        return Ok(DeliveryOutcome::AlreadyDone { status });
                    }
                    info!(attempts = claimed.attempts, "reply sent");
                    self.credentials_worked(reply.channel, now).await;
                    return Ok(DeliveryOutcome::Sent {
                        platform_id: sent.platform_id,
                    });
                }
                Err(e) if e.is_retryable() => {
                    let released = Delivery {
                        status: DeliveryStatus::Queued,
                        platform_id: None,
                        error: Some(delivery_error(&e)),
                        attempts: claimed.attempts,
                        sending_since: None,
                    };
                    if let Some(status) = self.confirm(job, &claimed, &released).await? {
                        return Ok(DeliveryOutcome::AlreadyDone { status });
                    }
                    warn!(
                        attempts = released.attempts,
                        code = e.code(),
                        "transient failure"
                    );
                    if released.attempts >= self.policy.max_attempts {
                        let error = DeliveryError {
                            code: e.code().to_string(),
                            reason: format!(
                                "gave up after {} attempts: {}",
                                released.attempts,
                                e.reason()
                            ),
                        };
                        return self.finish_failed(job, released, error, false).await;
                    }
                    let retry_after = match &e {
                        SendError::Transient { retry_after, .. } => *retry_after,
                        _ => None,
                    };
                    let wait = self.policy.backoff(attempt, retry_after);
                    current = released;
                    if attempt == attempts_per_job || wait > self.policy.cap {
                        return Ok(DeliveryOutcome::RetryLater { after: wait });
                    }
                    tokio::time::sleep(wait).await;
                }
                Err(SendError::OutcomeUnknown { code, reason }) => {
                    let unknown = Delivery {
                        status: DeliveryStatus::Unknown,
                        error: Some(DeliveryError { code, reason }),
                        sending_since: None,
                        ..claimed.clone()
                    };
                    if let Some(status) = self.confirm(job, &claimed, &unknown).await? {
                        return Ok(DeliveryOutcome::AlreadyDone { status });
                    }
                    warn!("the platform call's outcome is unknown; reply marked unknown");
                    return Ok(DeliveryOutcome::Unknown);
                }
                Err(e) => {
                    let unauthorized = matches!(e, SendError::Unauthorized { .. });
                    if unauthorized {
                        error!(channel = %reply.channel, code = e.code(), "channel credentials rejected: re-authorize the channel");
                        self.credentials_rejected(reply.channel, &e).await;
                    }
                    let released = Delivery {
                        sending_since: None,
                        ..claimed.clone()
                    };
                    if let Some(status) = self.confirm(job, &claimed, &released).await? {
                        return Ok(DeliveryOutcome::AlreadyDone { status });
                    }
                    return self
                        .finish_failed(job, released, delivery_error(&e), unauthorized)
                        .await;
                }
            }
        }
        // The loop returns on its last attempt; this only satisfies the type checker.
        Ok(DeliveryOutcome::RetryLater {
            after: self.policy.base,
        })
    }

    /// Marks the channel (and those sharing its credentials) as needing re-authorization. A
    /// failure to record it is logged: the reply's own outcome matters more.
    async fn credentials_rejected(&self, channel: ChannelKind, e: &SendError) {
        let Some(health) = &self.health else {
            return;
        };
        let mark = Reauthorization {
            code: e.code().to_string(),
            reason: e.reason().to_string(),
            at: self.clock.now(),
        };
        for &affected in credential_group(channel) {
            if let Err(store) = health.mark_reauthorization(affected, &mark).await {
                error!(channel = %affected, error = %store, "cannot record that the channel needs re-authorization");
            }
        }
    }

    /// Clears a re-authorization mark made before a send that worked (claimed at `at`).
    async fn credentials_worked(&self, channel: ChannelKind, at: chrono::DateTime<chrono::Utc>) {
        let Some(health) = &self.health else {
            return;
        };
        for &affected in credential_group(channel) {
            match health.clear_reauthorization(affected, at).await {
                Ok(true) => {
                    info!(channel = %affected, "credentials work again: re-authorization mark cleared")
                }
                Ok(false) => {}
                Err(e) => {
                    warn!(channel = %affected, error = %e, "cannot clear the re-authorization mark")
                }
            }
        }
    }

    /// Records the outcome of a claimed call; `Some(status)` when the record was changed under
    /// the claim, and is left as it is. The platform's echo of the reply does that when it
    /// arrives before the platform's answer (it confirms the reply `sent`); anything else means a
    /// second sender ignored the claim.
    async fn confirm(
        &self,
        job: &OutboundJob,
        claimed: &Delivery,
        outcome: &Delivery,
    ) -> Result<Option<DeliveryStatus>, DeliveryJobError> {
        if self.record(job, claimed, outcome).await? {
            return Ok(None);
        }
        let now = self
            .store
            .list_messages(&job.ticket_id)
            .await?
            .into_iter()
            .find(|m| m.id == job.message_id)
            .and_then(|m| m.delivery)
            .ok_or_else(|| DeliveryJobError::UnknownReply(job.message_id.to_string()))?;
        if now.status == DeliveryStatus::Sent && now.sending_since.is_none() {
            info!(
                platform_id = now.platform_id.as_deref().unwrap_or(""),
                "the platform's echo recorded the reply sent before its answer came"
            );
        } else {
            error!(status = ?now.status, "delivery record changed while this sender held the claim");
        }
        Ok(Some(now.status))
    }

    async fn finish_failed(
        &self,
        job: &OutboundJob,
        current: Delivery,
        error: DeliveryError,
        unauthorized: bool,
    ) -> Result<DeliveryOutcome, DeliveryJobError> {
        let failed = Delivery {
            status: DeliveryStatus::Failed,
            error: Some(error.clone()),
            sending_since: None,
            ..current.clone()
        };
        self.record(job, &current, &failed).await?;
        warn!(code = %error.code, "reply failed");
        Ok(DeliveryOutcome::Failed {
            error,
            unauthorized,
        })
    }

    async fn mark_unknown(
        &self,
        job: &OutboundJob,
        reply: &Message,
        current: Delivery,
    ) -> Result<DeliveryOutcome, DeliveryJobError> {
        let unknown = Delivery {
            status: DeliveryStatus::Unknown,
            error: Some(DeliveryError {
                code: "outcome_unknown".into(),
                reason: format!(
                    "the sender stopped while calling {} and cannot tell whether the reply went \
                     out; check the conversation there before sending it again",
                    reply.channel
                ),
            }),
            sending_since: None,
            ..current.clone()
        };
        self.record(job, &current, &unknown).await?;
        warn!("earlier attempt died mid-call; reply marked unknown, not sent again");
        Ok(DeliveryOutcome::Unknown)
    }
}

/// The customer's latest message in the reply's conversation and channel. Automatic mail (an
/// auto-reply, a bounce) is never answered: a reply goes to the person, not to their
/// auto-responder or a mailer daemon.
fn answering<'a>(thread: &'a [Message], reply: &Message) -> Option<&'a Message> {
    let key = reply.conversation.key(reply.channel).ok()?;
    thread.iter().rev().find(|m| {
        m.direction == Direction::Inbound
            && m.channel == reply.channel
            && m.event != MessageEvent::Removed
            && !m.is_automatic()
            && m.conversation.key(m.channel).ok().as_ref() == Some(&key)
    })
}

async fn publish(queue: &dyn EventQueue, event: OutgoingEvent) -> Result<(), PublishError> {
    crossdesk_core::events::publish_all(queue, std::slice::from_ref(&event)).await
}

fn delivery_error(e: &SendError) -> DeliveryError {
    DeliveryError {
        code: e.code().to_string(),
        reason: e.reason().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use chrono::{DateTime, Utc};
    use crossdesk_core::agent::{AgentDesk, AgentRef, ReplyRequest};
    use crossdesk_core::faults::{FaultyTicketStore, Strike};
    use crossdesk_core::writer::TicketWriter;
    use crossdesk_core::{SystemClock, TicketId};
    use crossdesk_embedded::{SqliteQueue, SqliteStore};
    use crossdesk_store_contract::MessageBuilder as M;

    use super::*;
    use crate::send::Sent;

    /// A sender that answers from a script and counts its calls.
    #[derive(Default)]
    struct ScriptedSender {
        script: Mutex<Vec<Result<Sent, SendError>>>,
        calls: Mutex<u32>,
    }

    impl ScriptedSender {
        fn answering(script: Vec<Result<Sent, SendError>>) -> Arc<Self> {
            let mut script = script;
            script.reverse();
            Arc::new(ScriptedSender {
                script: Mutex::new(script),
                calls: Mutex::new(0),
            })
        }
        fn calls(&self) -> u32 {
            *self.calls.lock().unwrap()
        }
    }

    #[async_trait]
    impl ReplySender for ScriptedSender {
        async fn send(&self, _reply: &OutboundReply<'_>) -> Result<Sent, SendError> {
            *self.calls.lock().unwrap() += 1;
            self.script
                .lock()
                .unwrap()
                .pop()
                .unwrap_or_else(|| Err(SendError::refused("script_empty", "no more answers")))
        }
    }

    fn sent(id: &str) -> Result<Sent, SendError> {
        Ok(Sent {
            platform_id: id.into(),
        })
    }

    fn transient() -> Result<Sent, SendError> {
        Err(SendError::Transient {
            code: "graph_2".into(),
            reason: "temporary".into(),
            retry_after: None,
        })
    }

    fn fast() -> RetryPolicy {
        RetryPolicy {
            attempts_per_job: 3,
            max_attempts: 5,
            base: Duration::from_millis(1),
            cap: Duration::from_millis(5),
        }
    }

    struct Fixture {
        store: Arc<SqliteStore>,
        job: OutboundJob,
    }

    /// A Messenger ticket whose customer wrote just now, with one queued agent reply.
    /// The agent API's use cases over the store (its outbound queue is a throwaway).
    fn test_desk(store: &Arc<SqliteStore>) -> AgentDesk {
        AgentDesk::new(
            store.clone(),
            Arc::new(SqliteQueue::in_memory().unwrap()),
            Arc::new(SystemClock),
        )
    }

    /// A reply request on the conversation's own channel.
    fn reply_request(text: &str) -> (AgentRef, ReplyRequest) {
        let agent = AgentRef {
            id: "agent-1".into(),
            name: None,
        };
        let request = ReplyRequest {
            text: text.into(),
            channel: None,
            visibility: None,
            idempotency_key: None,
        };
        (agent, request)
    }

    /// An agent's reply on the ticket, as the agent API stores and queues it.
    async fn agent_reply(store: &Arc<SqliteStore>, ticket: &TicketId, text: &str) -> Message {
        let (agent, request) = reply_request(text);
        test_desk(store)
            .reply(ticket, &agent, &request)
            .await
            .unwrap()
    }

    async fn fixture() -> Fixture {
        let store = Arc::new(SqliteStore::in_memory().unwrap());
        let now: DateTime<Utc> = Utc::now();
        let mut inbound = M::facebook_dm("psid-1", "m_1").build();
        inbound.sent_at = now;
        inbound.received_at = now;
        TicketWriter::new(store.clone())
            .write(&inbound)
            .await
            .unwrap();
        let ticket: TicketId = store.list_tickets(&Default::default()).await.unwrap()[0]
            .id
            .clone();
        let reply = agent_reply(&store, &ticket, "On its way").await;
        Fixture {
            store,
            job: OutboundJob {
                ticket_id: ticket,
                message_id: reply.id,
            },
        }
    }

    fn delivery(f: &Fixture, policy: RetryPolicy, sender: Arc<ScriptedSender>) -> ReplyDelivery {
        ReplyDelivery::new(f.store.clone(), Arc::new(SystemClock), policy)
            .with_sender(ChannelKind::Facebook, sender)
    }

    async fn stored(f: &Fixture) -> Delivery {
        f.store
            .list_messages(&f.job.ticket_id)
            .await
            .unwrap()
            .into_iter()
            .find(|m| m.id == f.job.message_id)
            .and_then(|m| m.delivery)
            .unwrap()
    }

    #[tokio::test]
    async fn sends_once_and_records_the_platform_id() {
        let f = fixture().await;
        let sender = ScriptedSender::answering(vec![sent("m_out_1")]);
        let d = delivery(&f, fast(), sender.clone());
        assert_eq!(
            d.deliver(&f.job).await.unwrap(),
            DeliveryOutcome::Sent {
                platform_id: "m_out_1".into()
            }
        );
        let record = stored(&f).await;
        assert_eq!(record.status, DeliveryStatus::Sent);
        assert_eq!(record.platform_id.as_deref(), Some("m_out_1"));
        assert_eq!(record.attempts, 1);
        assert_eq!(record.sending_since, None);
        // The queue delivers the job again: no second send.
        assert_eq!(
            d.deliver(&f.job).await.unwrap(),
            DeliveryOutcome::AlreadyDone {
                status: DeliveryStatus::Sent
            }
        );
        assert_eq!(sender.calls(), 1);
    }

    /// Delivers the fixture's job through a store whose writes strike as scripted; returns the
    /// outcome and how often the platform was called.
    async fn deliver_through_faults(
        f: &Fixture,
        strikes: Vec<Strike>,
    ) -> (Result<DeliveryOutcome, DeliveryJobError>, u32) {
        let sender = ScriptedSender::answering(vec![sent("m_out_f")]);
        let store = Arc::new(FaultyTicketStore::scripted(f.store.clone(), strikes));
        let outcome = ReplyDelivery::new(store, Arc::new(SystemClock), fast())
            .with_sender(ChannelKind::Facebook, sender.clone())
            .deliver(&f.job)
            .await;
        (outcome, sender.calls())
    }

    #[tokio::test]
    async fn a_store_failure_around_the_claim_or_the_outcome_neither_resends_nor_loses_it() {
        use Strike::{After, Before, None as Works};
        for strikes in [
            vec![After],                 // the claim landed, its answer was lost
            vec![Before],                // the claim did not land
            vec![Before, Before, Works], // nor the second time
            vec![Works, Before],         // the outcome did not land
            vec![Works, After],          // the outcome landed, its answer was lost
        ] {
            let f = fixture().await;
            let (outcome, calls) = deliver_through_faults(&f, strikes.clone()).await;
            assert_eq!(
                outcome.unwrap(),
                DeliveryOutcome::Sent {
                    platform_id: "m_out_f".into()
                },
                "{strikes:?}"
            );
            assert_eq!(calls, 1, "{strikes:?}");
            let record = stored(&f).await;
            assert_eq!(record.status, DeliveryStatus::Sent, "{strikes:?}");
            assert_eq!(record.attempts, 1, "{strikes:?}");
            assert_eq!(record.sending_since, None, "{strikes:?}");
        }
    }

    #[tokio::test]
    async fn a_store_that_keeps_failing_hands_the_job_back_with_the_claim_standing() {
        let f = fixture().await;
        let (outcome, calls) = deliver_through_faults(
            &f,
            vec![
                Strike::None,
                Strike::Before,
                Strike::Before,
                Strike::Before,
                Strike::Before,
            ],
        )
        .await;
        assert!(
            matches!(outcome, Err(DeliveryJobError::Store(_))),
            "{outcome:?}"
        );
        assert_eq!(calls, 1);
        // The claim stands: a later job finds it and marks the reply unknown, never resends.
        let record = stored(&f).await;
        assert_eq!(record.status, DeliveryStatus::Queued);
        assert!(record.sending_since.is_some());
    }

    #[tokio::test]
    async fn retries_transient_failures_within_the_job() {
        let f = fixture().await;
        let sender = ScriptedSender::answering(vec![transient(), transient(), sent("m_out_2")]);
        let outcome = delivery(&f, fast(), sender.clone())
            .deliver(&f.job)
            .await
            .unwrap();
        assert!(
            matches!(outcome, DeliveryOutcome::Sent { .. }),
            "{outcome:?}"
        );
        assert_eq!(sender.calls(), 3);
        assert_eq!(stored(&f).await.attempts, 3);
    }

    #[tokio::test]
    async fn hands_the_job_back_then_gives_up_after_max_attempts() {
        let f = fixture().await;
        let sender = ScriptedSender::answering((0..10).map(|_| transient()).collect());
        let d = delivery(&f, fast(), sender.clone());
        let first = d.deliver(&f.job).await.unwrap();
        assert!(
            matches!(first, DeliveryOutcome::RetryLater { .. }),
            "{first:?}"
        );
        let record = stored(&f).await;
        assert_eq!(record.status, DeliveryStatus::Queued);
        assert_eq!(record.attempts, 3);
        assert_eq!(record.error.unwrap().code, "graph_2");
        let second = d.deliver(&f.job).await.unwrap();
        assert!(
            matches!(second, DeliveryOutcome::Failed { .. }),
            "{second:?}"
        );
        let record = stored(&f).await;
        assert_eq!(record.status, DeliveryStatus::Failed);
        assert_eq!(record.attempts, 5);
        assert!(record
            .error
            .unwrap()
            .reason
            .contains("gave up after 5 attempts"));
        assert_eq!(sender.calls(), 5);
    }

    #[tokio::test]
    async fn a_long_retry_after_hands_the_job_back_without_waiting() {
        let f = fixture().await;
        let sender = ScriptedSender::answering(vec![Err(SendError::Transient {
            code: "x_429".into(),
            reason: "rate limited".into(),
            retry_after: Some(Duration::from_secs(900)),
        })]);
        let outcome = delivery(&f, fast(), sender.clone())
            .deliver(&f.job)
            .await
            .unwrap();
        assert_eq!(
            outcome,
            DeliveryOutcome::RetryLater {
                after: Duration::from_secs(900)
            }
        );
        assert_eq!(sender.calls(), 1);
    }

    #[tokio::test]
    async fn permanent_failures_are_not_retried() {
        let f = fixture().await;
        let sender = ScriptedSender::answering(vec![Err(SendError::Permanent {
            code: "graph_10_2018278".into(),
            reason: "outside the messaging window".into(),
        })]);
        let d = delivery(&f, fast(), sender.clone());
        let outcome = d.deliver(&f.job).await.unwrap();
        assert!(
            matches!(&outcome, DeliveryOutcome::Failed { error, unauthorized: false } if error.code == "graph_10_2018278"),
            "{outcome:?}"
        );
        assert_eq!(stored(&f).await.status, DeliveryStatus::Failed);
        d.deliver(&f.job).await.unwrap();
        assert_eq!(sender.calls(), 1);
    }

    #[tokio::test]
    async fn rejected_credentials_fail_and_flag_the_channel() {
        let f = fixture().await;
        let sender = ScriptedSender::answering(vec![Err(SendError::Unauthorized {
            code: "graph_190".into(),
            reason: "token expired".into(),
        })]);
        let outcome = delivery(&f, fast(), sender).deliver(&f.job).await.unwrap();
        assert!(matches!(
            outcome,
            DeliveryOutcome::Failed {
                unauthorized: true,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn rejected_credentials_mark_the_channels_sharing_them_until_a_send_works() {
        use crossdesk_core::health::ChannelHealthStore;
        let f = fixture().await;
        let health: Arc<dyn ChannelHealthStore> = f.store.clone();
        let sender = ScriptedSender::answering(vec![
            Err(SendError::Unauthorized {
                code: "graph_190_463".into(),
                reason: "Meta: Session has expired".into(),
            }),
            sent("m_out_9"),
        ]);
        let d = delivery(&f, fast(), sender).with_channel_health(health.clone());
        d.deliver(&f.job).await.unwrap();
        for channel in [ChannelKind::Facebook, ChannelKind::Instagram] {
            let mark = health
                .channel_state(channel)
                .await
                .unwrap()
                .reauthorization
                .unwrap_or_else(|| panic!("{channel} is marked"));
            assert_eq!(mark.code, "graph_190_463");
            assert_eq!(mark.reason, "Meta: Session has expired");
        }
        assert_eq!(
            health
                .channel_state(ChannelKind::Twitter)
                .await
                .unwrap()
                .reauthorization,
            None
        );

        // The page is reconnected; the next reply goes out and clears the mark.
        let second = agent_reply(&f.store, &f.job.ticket_id, "Back again").await;
        let job = OutboundJob {
            ticket_id: f.job.ticket_id.clone(),
            message_id: second.id,
        };
        assert!(matches!(
            d.deliver(&job).await.unwrap(),
            DeliveryOutcome::Sent { .. }
        ));
        for channel in [ChannelKind::Facebook, ChannelKind::Instagram] {
            assert_eq!(
                health.channel_state(channel).await.unwrap().reauthorization,
                None
            );
        }
    }

    /// Delivers the fixture's job while its reply carries a claim made `ago`.
    async fn deliver_claimed_since(
        f: &Fixture,
        ago: Duration,
    ) -> (Delivery, Arc<ScriptedSender>, DeliveryOutcome) {
        let claimed = Delivery {
            attempts: 1,
            sending_since: Some(Utc::now() - ago),
            ..Delivery::queued()
        };
        assert!(f
            .store
            .set_delivery(
                &f.job.ticket_id,
                &f.job.message_id,
                &Delivery::queued(),
                &claimed
            )
            .await
            .unwrap());
        let sender = ScriptedSender::answering(vec![sent("never")]);
        let outcome = delivery(f, fast(), sender.clone())
            .deliver(&f.job)
            .await
            .unwrap();
        (claimed, sender, outcome)
    }

    #[tokio::test]
    async fn a_reply_another_sender_is_sending_now_is_checked_again_later() {
        let f = fixture().await;
        let (claimed, sender, outcome) = deliver_claimed_since(&f, Duration::from_secs(20)).await;
        let DeliveryOutcome::RetryLater { after } = outcome else {
            panic!("{outcome:?}");
        };
        assert!(
            after <= SEND_CLAIM_LEASE - Duration::from_secs(19),
            "{after:?}"
        );
        assert_eq!(sender.calls(), 0, "not sent a second time");
        assert_eq!(stored(&f).await, claimed, "the other sender's claim stands");
    }

    #[tokio::test]
    async fn a_sender_that_died_mid_call_leaves_the_reply_unknown_not_resent() {
        let f = fixture().await;
        // What a sender leaves behind when it dies after claiming and calling the platform.
        let (_, sender, outcome) =
            deliver_claimed_since(&f, SEND_CLAIM_LEASE + Duration::from_secs(1)).await;
        assert_eq!(outcome, DeliveryOutcome::Unknown);
        assert_eq!(sender.calls(), 0);
        let record = stored(&f).await;
        assert_eq!(record.status, DeliveryStatus::Unknown);
        assert_eq!(record.error.unwrap().code, "outcome_unknown");
    }

    #[tokio::test]
    async fn an_unknown_outcome_is_recorded_not_retried() {
        let f = fixture().await;
        let sender = ScriptedSender::answering(vec![
            Err(SendError::OutcomeUnknown {
                code: "unknown_outcome".into(),
                reason: "timed out after sending".into(),
            }),
            sent("never"),
        ]);
        let d = delivery(&f, fast(), sender.clone());
        assert_eq!(d.deliver(&f.job).await.unwrap(), DeliveryOutcome::Unknown);
        assert_eq!(
            d.deliver(&f.job).await.unwrap(),
            DeliveryOutcome::AlreadyDone {
                status: DeliveryStatus::Unknown
            }
        );
        assert_eq!(sender.calls(), 1);
        assert_eq!(stored(&f).await.status, DeliveryStatus::Unknown);
    }

    #[tokio::test]
    async fn two_senders_racing_on_one_job_send_once() {
        let f = fixture().await;
        let sender = ScriptedSender::answering(vec![sent("m_out_3"), sent("m_out_4")]);
        let d = delivery(&f, fast(), sender.clone());
        let (a, b) = tokio::join!(d.deliver(&f.job), d.deliver(&f.job));
        let outcomes = [a.unwrap(), b.unwrap()];
        assert_eq!(sender.calls(), 1, "{outcomes:?}");
        assert_eq!(
            stored(&f).await.status,
            DeliveryStatus::Sent,
            "{outcomes:?}"
        );
        assert_eq!(
            outcomes
                .iter()
                .filter(|o| matches!(o, DeliveryOutcome::Sent { .. }))
                .count(),
            1
        );
    }

    /// A sender whose platform echoes the reply (with Crossdesk's metadata) to the ticket
    /// writer before it answers the call, as Meta's echo webhook can.
    struct EchoFirst {
        writer: TicketWriter,
        answer: Result<Sent, SendError>,
    }

    #[async_trait]
    impl ReplySender for EchoFirst {
        async fn send(&self, reply: &OutboundReply<'_>) -> Result<Sent, SendError> {
            let mut echo = M::facebook_dm("psid-1", "m_echoed_1")
                .outbound()
                .text(&reply.reply.text)
                .build();
            echo.id = reply.reply.id.clone();
            echo.delivery = Some(Delivery::sent_outside_crossdesk("m_echoed_1"));
            self.writer.write(&echo).await.expect("the echo is written");
            self.answer.clone()
        }
    }

    #[tokio::test]
    async fn an_echo_before_the_platforms_answer_confirms_the_reply_once() {
        for answer in [
            sent("m_echoed_1"),
            // The answer is lost after the echo proved the reply went out.
            Err(SendError::OutcomeUnknown {
                code: "unknown_outcome".into(),
                reason: "timed out after sending".into(),
            }),
            transient(),
        ] {
            let f = fixture().await;
            let sender = Arc::new(EchoFirst {
                writer: TicketWriter::new(f.store.clone()),
                answer,
            });
            let d = ReplyDelivery::new(f.store.clone(), Arc::new(SystemClock), fast())
                .with_sender(ChannelKind::Facebook, sender);
            assert_eq!(
                d.deliver(&f.job).await.unwrap(),
                DeliveryOutcome::AlreadyDone {
                    status: DeliveryStatus::Sent
                }
            );
            let record = stored(&f).await;
            assert_eq!(record.status, DeliveryStatus::Sent);
            assert_eq!(record.platform_id.as_deref(), Some("m_echoed_1"));
            assert_eq!(record.attempts, 1);
            assert_eq!(record.sending_since, None);
            let thread = f.store.list_messages(&f.job.ticket_id).await.unwrap();
            assert_eq!(thread.len(), 2, "the echo is not a second message");
            assert_eq!(thread[1].platform_message_id.as_deref(), Some("m_echoed_1"));
        }
    }

    #[tokio::test]
    async fn a_channel_without_a_sender_fails_with_a_reason() {
        let f = fixture().await;
        let d = ReplyDelivery::new(f.store.clone(), Arc::new(SystemClock), fast());
        let outcome = d.deliver(&f.job).await.unwrap();
        assert!(
            matches!(&outcome, DeliveryOutcome::Failed { error, .. } if error.code == "channel_not_configured"),
            "{outcome:?}"
        );
    }

    /// A sender that records the platform id of the message each reply answers.
    #[derive(Default)]
    struct RecordingSender {
        answered: Mutex<Vec<Option<String>>>,
    }

    #[async_trait]
    impl ReplySender for RecordingSender {
        async fn send(&self, reply: &OutboundReply<'_>) -> Result<Sent, SendError> {
            let answered = reply.answering.platform_message_id.clone();
            self.answered.lock().unwrap().push(answered);
            sent("ses-1@email.amazonses.com")
        }
    }

    #[tokio::test]
    async fn an_auto_reply_is_never_the_mail_a_reply_answers() {
        let store = Arc::new(SqliteStore::in_memory().unwrap());
        let writer = TicketWriter::new(store.clone());
        let question = M::email("alex@example.com", "a1@mail.example")
            .at(0)
            .build();
        writer.write(&question).await.unwrap();
        let ticket = store.list_tickets(&Default::default()).await.unwrap()[0]
            .id
            .clone();
        let reply = agent_reply(&store, &ticket, "We are on it").await;
        // Before the reply goes out, the customer's auto-responder answers their own thread.
        let mut out_of_office = M::email("alex@example.com", "ooo@mail.example")
            .replying_to(&["a1@mail.example"])
            .at(10)
            .build();
        out_of_office.email.as_mut().unwrap().auto_submitted = true;
        writer.write(&out_of_office).await.unwrap();
        assert_eq!(store.list_messages(&ticket).await.unwrap().len(), 3);

        let sender = Arc::new(RecordingSender::default());
        let outcome = ReplyDelivery::new(store.clone(), Arc::new(SystemClock), fast())
            .with_sender(ChannelKind::Email, sender.clone())
            .deliver(&OutboundJob {
                ticket_id: ticket.clone(),
                message_id: reply.id,
            })
            .await
            .unwrap();
        assert!(
            matches!(outcome, DeliveryOutcome::Sent { .. }),
            "{outcome:?}"
        );
        assert_eq!(
            *sender.answered.lock().unwrap(),
            [Some("a1@mail.example".to_string())],
            "the reply answers the customer's mail, not the auto-reply"
        );

        // A ticket holding only automatic mail has nothing an agent can answer.
        let mut bounce = M::email("mailer-daemon@mx.example", "dsn-1@mx.example")
            .at(20)
            .build();
        bounce.email.as_mut().unwrap().auto_submitted = true;
        writer.write(&bounce).await.unwrap();
        let bounce_ticket = store
            .find_ticket_by_platform_ids(ChannelKind::Email, &["dsn-1@mx.example".into()])
            .await
            .unwrap()
            .unwrap();
        let (agent, request) = reply_request("We are on it");
        let refused = test_desk(&store)
            .reply(&bounce_ticket, &agent, &request)
            .await;
        assert!(
            matches!(refused, Err(crossdesk_core::agent::AgentError::Conflict(_))),
            "{refused:?}"
        );
    }

    /// The events on an embedded events queue: (type, id, data), oldest first.
    async fn queued_events(queue: &SqliteQueue) -> Vec<(String, String, serde_json::Value)> {
        queue
            .receive(
                crossdesk_embedded::QueueName::Events,
                100,
                Duration::from_secs(60),
            )
            .await
            .unwrap()
            .into_iter()
            .map(|l| {
                let e: OutgoingEvent = l.decode().unwrap();
                (e.kind.to_string(), e.id.to_string(), e.data)
            })
            .collect()
    }

    #[tokio::test]
    async fn the_writer_emits_ticket_and_message_created_and_again_for_a_duplicate() {
        let store = Arc::new(SqliteStore::in_memory().unwrap());
        let events = Arc::new(SqliteQueue::in_memory().unwrap());
        let writer = TicketWriter::new(store.clone()).with_events(events.clone());
        let first = M::chat("s1", "v1", "c_1").text("hello").at(10).build();
        writer.write(&first).await.unwrap();
        let emitted = queued_events(&events).await;
        let kinds: Vec<&str> = emitted.iter().map(|(k, _, _)| k.as_str()).collect();
        assert_eq!(kinds, ["ticket.created", "message.created"]);
        assert_eq!(emitted[1].2["message"]["text"], "hello");
        assert_eq!(emitted[0].2["ticket"]["id"], emitted[1].2["ticket_id"]);

        // The platform (or the queue) delivers the message again: stored once, and the same
        // two events emitted again (the writer may have died before emitting them).
        let mut again = first.clone();
        again.id = crossdesk_core::MessageId::generate();
        writer.write(&again).await.unwrap();
        let re_emitted = queued_events(&events).await;
        assert_eq!(
            re_emitted
                .iter()
                .map(|(k, id, _)| (k, id))
                .collect::<Vec<_>>(),
            emitted.iter().map(|(k, id, _)| (k, id)).collect::<Vec<_>>()
        );

        // A later message of the conversation: message.created only, also when redelivered.
        let second = M::chat("s1", "v1", "c_2")
            .text("still there?")
            .at(20)
            .build();
        writer.write(&second).await.unwrap();
        writer.write(&second).await.unwrap();
        let later = queued_events(&events).await;
        assert_eq!(later.len(), 2);
        assert!(later.iter().all(|(k, _, _)| k == "message.created"));
        assert_eq!(later[0].1, later[1].1);
        assert_ne!(later[0].1, emitted[1].1);
    }

    #[tokio::test]
    async fn delivery_emits_the_replys_message_and_its_new_status_and_again_when_redelivered() {
        let f = fixture().await;
        let events = Arc::new(SqliteQueue::in_memory().unwrap());
        let sender = ScriptedSender::answering(vec![sent("m_out_1")]);
        let d = delivery(&f, fast(), sender).with_events(events.clone());
        d.deliver(&f.job).await.unwrap();
        let emitted = queued_events(&events).await;
        let kinds: Vec<&str> = emitted.iter().map(|(k, _, _)| k.as_str()).collect();
        assert_eq!(kinds, ["message.created", "message.delivery_changed"]);
        assert_eq!(emitted[0].2["message"]["id"], f.job.message_id.as_str());
        assert_eq!(emitted[0].2["message"]["direction"], "outbound");
        assert_eq!(emitted[1].2["delivery"]["status"], "sent");
        assert_eq!(emitted[1].2["delivery"]["platform_id"], "m_out_1");
        assert_eq!(emitted[1].2["message_id"], f.job.message_id.as_str());

        // A redelivered job sends nothing and emits the same two events (same ids).
        assert!(matches!(
            d.deliver(&f.job).await.unwrap(),
            DeliveryOutcome::AlreadyDone { .. }
        ));
        let again = queued_events(&events).await;
        assert_eq!(
            again.iter().map(|(_, id, _)| id).collect::<Vec<_>>(),
            emitted.iter().map(|(_, id, _)| id).collect::<Vec<_>>()
        );
    }

    #[tokio::test]
    async fn an_echo_settling_a_reply_left_unknown_emits_its_delivery_change() {
        let f = fixture().await;
        let queued = stored(&f).await;
        let unknown = Delivery {
            status: DeliveryStatus::Unknown,
            ..queued.clone()
        };
        assert!(f
            .store
            .set_delivery(&f.job.ticket_id, &f.job.message_id, &queued, &unknown)
            .await
            .unwrap());
        let events = Arc::new(SqliteQueue::in_memory().unwrap());
        let writer = TicketWriter::new(f.store.clone()).with_events(events.clone());
        let mut echo = M::facebook_dm("psid-1", "m_echoed_1")
            .outbound()
            .text("On its way")
            .build();
        echo.id = f.job.message_id.clone();
        echo.delivery = Some(Delivery::sent_outside_crossdesk("m_echoed_1"));
        writer.write(&echo).await.unwrap();
        assert_eq!(stored(&f).await.status, DeliveryStatus::Sent);
        let emitted = queued_events(&events).await;
        let changed = emitted
            .iter()
            .find(|(k, _, _)| k == "message.delivery_changed")
            .expect("the echo's confirmation is an event");
        assert_eq!(changed.2["delivery"]["status"], "sent");
        assert_eq!(changed.2["message_id"], f.job.message_id.as_str());
        // The same id the reply sender gives this change.
        let expected = crossdesk_core::events::EventId::derive(
            crossdesk_core::events::EventType::MessageDeliveryChanged,
            &[f.job.message_id.as_str(), "sent"],
        );
        assert_eq!(changed.1, expected.as_str());
    }

    #[tokio::test]
    async fn a_failed_reply_emits_failed_and_a_job_to_retry_emits_no_status() {
        let f = fixture().await;
        let events = Arc::new(SqliteQueue::in_memory().unwrap());
        let policy = RetryPolicy {
            attempts_per_job: 1,
            ..fast()
        };
        let sender = ScriptedSender::answering(vec![
            transient(),
            Err(SendError::refused("graph_551", "the person is unavailable")),
        ]);
        let d = delivery(&f, policy, sender).with_events(events.clone());
        assert!(matches!(
            d.deliver(&f.job).await.unwrap(),
            DeliveryOutcome::RetryLater { .. }
        ));
        let kinds: Vec<String> = queued_events(&events)
            .await
            .into_iter()
            .map(|(k, _, _)| k)
            .collect();
        assert_eq!(kinds, ["message.created"], "still queued: no status event");
        d.deliver(&f.job).await.unwrap();
        let emitted = queued_events(&events).await;
        assert_eq!(emitted.last().unwrap().0, "message.delivery_changed");
        assert_eq!(emitted.last().unwrap().2["delivery"]["status"], "failed");
        assert_eq!(
            emitted.last().unwrap().2["delivery"]["error"]["code"],
            "graph_551"
        );
    }

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let p = RetryPolicy::default();
        for attempt in 1..10 {
            let d = p.backoff(attempt, None);
            assert!(d <= p.cap, "{d:?}");
            assert!(d >= (p.base * (1 << (attempt - 1).min(16))).min(p.cap) / 2);
        }
        assert_eq!(
            p.backoff(1, Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
    }
}
