//! The local stack's outgoing events: the events queue and ledger on either backend, the
//! worker that posts each event to the configured endpoints (`CROSSDESK_EVENTS_WEBHOOK_URL`,
//! signed with `CROSSDESK_EVENTS_WEBHOOK_SECRET`) and hands it to the agent notifier
//! (`CROSSDESK_NOTIFY_ENABLED`), and `GET /api/events/failed` and
//! `POST /api/events/{id}/replay`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use async_trait::async_trait;
use axum::Router;
use crossdesk_aws::{DynamoEventLedger, SqsQueue};
use crossdesk_channels::events_webhook::{EventOutcome, EventRetryPolicy, EventsWebhook};
use crossdesk_core::events::{EventLedger, EventQueue, OutgoingEvent};
use crossdesk_core::notify::{Notifier, NotifyOutcome};
use crossdesk_core::{Clock, QueueError};
use crossdesk_embedded::{Database, QueueName, SqliteEventLedger, SqliteQueue};
use crossdesk_http::{events_router, AgentAuth, EventsApiState};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::LocalConfig;
use crate::consumer::{QueueConsumer, SqliteConsumer, SqsConsumer};
use crate::stack::{backoff, drain, Settle};

/// How many outgoing events the worker takes at once.
const EVENTS_BATCH: usize = 10;

/// How often an event is taken from the local queue before it is dead-lettered there: more
/// than the sender's own rounds, so the sender gives up first and keeps it for replay.
pub const LOCAL_MAX_RECEIVES: u32 = 20;

/// The events queue (when the backend has one) and the ledger.
pub struct EventAdapters {
    /// Where failed events are kept and deliveries recorded.
    pub ledger: Arc<dyn EventLedger>,
    /// The events queue, to publish to and to drain.
    pub queue: Option<(Arc<dyn EventQueue>, Arc<dyn QueueConsumer>)>,
}

/// The embedded events queue and ledger, in the stack's database.
pub async fn embedded(database: &Database) -> anyhow::Result<EventAdapters> {
    let queue = Arc::new(SqliteQueue::new(database.clone()).with_max_attempts(LOCAL_MAX_RECEIVES));
    // This process owns the queue alone: leases held when it last stopped are dead.
    queue
        .release_leases(QueueName::Events)
        .await
        .context("cannot read the local events queue")?;
    Ok(EventAdapters {
        ledger: Arc::new(SqliteEventLedger::new(database.clone())),
        queue: Some((
            queue.clone(),
            Arc::new(SqliteConsumer {
                queue,
                name: QueueName::Events,
            }),
        )),
    })
}

/// The AWS events queue (`CROSSDESK_EVENTS_QUEUE_URL`, or the one `--create-resources` made)
/// and the ledger in the tickets table.
pub fn aws(queue: Option<Arc<SqsQueue>>, ledger: DynamoEventLedger) -> EventAdapters {
    EventAdapters {
        ledger: Arc::new(ledger),
        queue: queue.map(|queue| {
            (
                queue.clone() as Arc<dyn EventQueue>,
                Arc::new(SqsConsumer {
                    queue,
                    name: "events",
                }) as Arc<dyn QueueConsumer>,
            )
        }),
    }
}

/// The running events webhook.
pub struct Events {
    /// Where producers put events; `None` while the webhook is off (nothing is emitted).
    pub publisher: Option<Arc<dyn EventQueue>>,
    /// `GET /api/events/failed` and `POST /api/events/{id}/replay`.
    pub router: Router,
    /// The worker posting events.
    pub worker: Option<JoinHandle<()>>,
}

/// Starts the events worker when `CROSSDESK_EVENTS_WEBHOOK_URL` is set (its secret is then
/// required) or agent notifications are on (`notifier`); otherwise only the routes, which list
/// what earlier runs kept.
pub fn start(
    config: &LocalConfig,
    adapters: EventAdapters,
    clock: Arc<dyn Clock>,
    auth: Arc<dyn AgentAuth>,
    shutdown: watch::Receiver<bool>,
    notifier: Option<Notifier>,
) -> anyhow::Result<Events> {
    let routes = |queue: Option<Arc<dyn EventQueue>>| {
        events_router(EventsApiState {
            ledger: adapters.ledger.clone(),
            queue,
            auth: auth.clone(),
        })
    };
    if config.events_endpoints.is_empty() && notifier.is_none() {
        return Ok(Events {
            publisher: None,
            router: routes(None),
            worker: None,
        });
    }
    let Some((queue, consumer)) = adapters.queue.clone() else {
        bail!("CROSSDESK_EVENTS_WEBHOOK_URL or CROSSDESK_NOTIFY_ENABLED is set but there is no events queue: set CROSSDESK_EVENTS_QUEUE_URL (or use --create-resources)");
    };
    let webhook = if config.events_endpoints.is_empty() {
        None
    } else {
        let Some(secret) = config.events_secret.clone() else {
            bail!("CROSSDESK_EVENTS_WEBHOOK_URL is set but CROSSDESK_EVENTS_WEBHOOK_SECRET is not: events are never sent unsigned");
        };
        Some(
            EventsWebhook::new(
                config.events_endpoints.clone(),
                secret,
                adapters.ledger.clone(),
                clock,
                EventRetryPolicy::default(),
            )
            .context("CROSSDESK_EVENTS_WEBHOOK_SECRET")?,
        )
    };
    let wake = Arc::new(Notify::new());
    let publisher: Arc<dyn EventQueue> = Arc::new(WakingEvents {
        queue,
        wake: wake.clone(),
    });
    let consumer_for_decode = consumer.clone();
    let worker = tokio::spawn(drain(
        consumer,
        wake,
        shutdown,
        EVENTS_BATCH,
        move |body| {
            let consumer = consumer_for_decode.clone();
            // One key for all: events go out one after the other, in order.
            async move { Ok((consumer.event(&body).await?, vec![String::new()])) }
        },
        move |event, attempts| {
            let webhook = webhook.clone();
            let notifier = notifier.clone();
            async move {
                let posted = match &webhook {
                    Some(webhook) => deliver_entry(webhook, &event, attempts).await,
                    None => Settle::Ack,
                };
                let notified = match &notifier {
                    Some(notifier) => notify_entry(notifier, &event, attempts).await,
                    None => Settle::Ack,
                };
                both(posted, notified)
            }
        },
    ));
    info!(
        endpoints = ?config.events_endpoints.iter().map(|e| e.display()).collect::<Vec<_>>(),
        notifications = config.notifications.enabled,
        "events worker on"
    );
    Ok(Events {
        router: routes(Some(publisher.clone())),
        publisher: Some(publisher),
        worker: Some(worker),
    })
}

/// One round of one event.
async fn deliver_entry(webhook: &EventsWebhook, event: &OutgoingEvent, attempts: u32) -> Settle {
    match webhook.deliver(event, attempts).await {
        Ok(EventOutcome::Delivered) | Ok(EventOutcome::Failed(_)) => Settle::Ack,
        Ok(EventOutcome::RetryLater { after }) => {
            Settle::RetryAfter(after, "an endpoint asked to retry".into())
        }
        Err(e) => {
            warn!(event_id = %event.id, error = %e, "event ledger unavailable");
            Settle::RetryAfter(backoff(attempts).max(Duration::from_secs(1)), e.to_string())
        }
    }
}

/// The notifier's handling of one event: a deferred event comes back when its digest is due.
async fn notify_entry(notifier: &Notifier, event: &OutgoingEvent, attempts: u32) -> Settle {
    match notifier.handle(event).await {
        Ok(NotifyOutcome::Deferred { after }) => {
            Settle::RetryAfter(after, "waiting for the notification digest".into())
        }
        Ok(_) => Settle::Ack,
        Err(e) if e.is_retryable() => {
            warn!(event_id = %event.id, error = %e, "notification will be retried");
            Settle::RetryAfter(backoff(attempts).max(Duration::from_secs(1)), e.to_string())
        }
        Err(e) => {
            // Retrying cannot help (a corrupt record): kept in the log, the webhook unaffected.
            warn!(event_id = %event.id, error = %e, "notification given up on");
            Settle::Ack
        }
    }
}

/// One settlement for an event both the webhook and the notifier handled: the sooner retry
/// wins (each side skips what it already did when the event comes back).
fn both(a: Settle, b: Settle) -> Settle {
    match (a, b) {
        (Settle::DeadLetter(reason), _) | (_, Settle::DeadLetter(reason)) => {
            Settle::DeadLetter(reason)
        }
        (Settle::RetryAfter(x, r), Settle::RetryAfter(y, s)) => {
            if x <= y {
                Settle::RetryAfter(x, r)
            } else {
                Settle::RetryAfter(y, s)
            }
        }
        (Settle::RetryAfter(x, r), Settle::Ack) | (Settle::Ack, Settle::RetryAfter(x, r)) => {
            Settle::RetryAfter(x, r)
        }
        (Settle::Ack, Settle::Ack) => Settle::Ack,
    }
}

/// The events queue, waking the worker as soon as an event arrives.
struct WakingEvents {
    queue: Arc<dyn EventQueue>,
    wake: Arc<Notify>,
}

#[async_trait]
impl EventQueue for WakingEvents {
    async fn publish(&self, event: &OutgoingEvent) -> Result<(), QueueError> {
        self.queue.publish(event).await?;
        self.wake.notify_one();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use crossdesk_core::SystemClock;
    use crossdesk_http::BearerTokenAuth;
    use secrecy::SecretString;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> LocalConfig {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        LocalConfig::from_lookup(|k| map.get(k).cloned()).unwrap()
    }

    async fn try_start(vars: &[(&str, &str)]) -> anyhow::Result<Events> {
        let adapters = embedded(&Database::in_memory().unwrap()).await.unwrap();
        let (_stop, signal) = watch::channel(false);
        start(
            &config(vars),
            adapters,
            Arc::new(SystemClock),
            Arc::new(BearerTokenAuth::new(&SecretString::from("t"))),
            signal,
            None,
        )
    }

    #[tokio::test]
    async fn off_without_endpoints_and_refused_without_a_secret() {
        let off = try_start(&[]).await.unwrap();
        assert!(off.publisher.is_none() && off.worker.is_none());
        let err = try_start(&[("CROSSDESK_EVENTS_WEBHOOK_URL", "http://127.0.0.1:9/x")])
            .await
            .err()
            .expect("no secret");
        assert!(
            err.to_string().contains("CROSSDESK_EVENTS_WEBHOOK_SECRET"),
            "{err}"
        );
        let on = try_start(&[
            ("CROSSDESK_EVENTS_WEBHOOK_URL", "http://127.0.0.1:9/x"),
            ("CROSSDESK_EVENTS_WEBHOOK_SECRET", "whsec"),
        ])
        .await
        .unwrap();
        assert!(on.publisher.is_some() && on.worker.is_some());
    }
}
