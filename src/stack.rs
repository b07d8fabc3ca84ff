//! Assembles the local stack: embedded adapters, the HTTP routes and the in-process ticket
//! writer that drains the durable inbound queue.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use crossdesk_channels::delivery::{DeliveryJobError, DeliveryOutcome, ReplyDelivery, RetryPolicy};
use crossdesk_channels::email_reply::EmailReplySettings;
use crossdesk_channels::{ChatChannel, EmailChannel, FacebookChannel, TwitterChannel};
use crossdesk_core::agent::{AgentDesk, AgentRef};
use crossdesk_core::writer::TicketWriter;
use crossdesk_core::{
    ChannelKind, Clock, InboundQueue, Message, OutboundJob, OutboundQueue, QueueError, SystemClock,
};
use crossdesk_embedded::{Database, QueueName, SqliteArchive, SqliteQueue, SqliteStore};
use crossdesk_http::{
    agent_router, webhook_router, AgentAuth, AgentState, ApiError, BearerTokenAuth, ChannelSlot,
    IngestState,
};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::config::LocalConfig;
use crate::outbox::OutboxEmailSender;

/// How long a message taken by the writer stays invisible to a second take.
const LEASE: Duration = Duration::from_secs(30);
/// How many messages the writer takes at once.
const BATCH: usize = 10;

/// A running local stack.
pub struct LocalStack {
    /// The address it listens on.
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    workers: Vec<JoinHandle<()>>,
}

impl LocalStack {
    /// Opens the database under the data dir, binds the port and starts serving and writing.
    pub async fn start(config: &LocalConfig) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create the data dir {}", config.data_dir.display()))?;
        let db = config.data_dir.join("crossdesk.db");
        let database =
            Database::open(&db).with_context(|| format!("cannot open {}", db.display()))?;
        let store = Arc::new(SqliteStore::new(database.clone()));
        let queue = Arc::new(SqliteQueue::new(database.clone()));
        // This process owns the queue alone: leases held when it last stopped are dead.
        let mut released = 0;
        for name in [QueueName::Inbound, QueueName::Outbound] {
            released += queue
                .release_leases(name)
                .await
                .context("cannot read the local queue")?;
        }
        if released > 0 {
            info!(
                released,
                "re-queued messages a previous run had taken but not stored"
            );
        }
        let archive = Arc::new(SqliteArchive::new(database));
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let wake_writer = Arc::new(Notify::new());
        let wake_sender = Arc::new(Notify::new());
        let inbound = Arc::new(WakingQueue {
            queue: queue.clone(),
            wake: wake_writer.clone(),
        });
        let outbound = Arc::new(WakingQueue {
            queue: queue.clone(),
            wake: wake_sender.clone(),
        });
        let delivery = reply_delivery(config, store.clone(), clock.clone())?;
        let router = routes(config, inbound, outbound, archive, store.clone(), clock);

        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let (shutdown, signal) = watch::channel(false);

        let mut server_signal = signal.clone();
        let server = tokio::spawn(async move {
            let stop = async move {
                let _ = server_signal.wait_for(|stop| *stop).await;
            };
            if let Err(e) = axum::serve(listener, router)
                .with_graceful_shutdown(stop)
                .await
            {
                error!(error = %e, "HTTP server stopped");
            }
        });
        let writer = TicketWriter::new(store);
        let writer = tokio::spawn(drain(
            queue.clone(),
            QueueName::Inbound,
            wake_writer,
            signal.clone(),
            move |body, attempts| {
                let writer = writer.clone();
                async move { write_entry(&writer, body, attempts).await }
            },
        ));
        let sender = tokio::spawn(drain(
            queue,
            QueueName::Outbound,
            wake_sender,
            signal,
            move |body, attempts| {
                let delivery = delivery.clone();
                async move { deliver_entry(&delivery, body, attempts).await }
            },
        ));
        Ok(LocalStack {
            addr,
            shutdown,
            server,
            workers: vec![writer, sender],
        })
    }

    /// Stops accepting requests, lets the workers finish their current batch, and waits.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
        for worker in self.workers {
            let _ = worker.await;
        }
    }

    /// Every endpoint a person may want to call, for the start-up banner.
    pub fn endpoints(&self) -> Vec<(String, &'static str)> {
        let base = format!("http://{}", self.addr);
        vec![
            (
                format!("{base}/webhooks/facebook"),
                "Facebook & Instagram webhook (GET handshake, POST events)",
            ),
            (
                format!("{base}/webhooks/twitter"),
                "Twitter/X webhook (GET CRC, POST events)",
            ),
            (
                format!("{base}/webhooks/email"),
                "raw email (POST message/rfc822, Bearer agent token)",
            ),
            (
                format!("{base}/webhooks/chat"),
                "website chat (POST, v1 signature)",
            ),
            (
                format!("{base}/api/tickets"),
                "agent API (Bearer agent token)",
            ),
            (format!("{base}/healthz"), "health check"),
        ]
    }
}

fn routes(
    config: &LocalConfig,
    inbound: Arc<dyn InboundQueue>,
    outbound: Arc<dyn OutboundQueue>,
    archive: Arc<SqliteArchive>,
    store: Arc<SqliteStore>,
    clock: Arc<dyn Clock>,
) -> Router {
    let slot = |channel: Option<ChannelSlot>, missing: Vec<&'static str>| {
        channel.unwrap_or(ChannelSlot::Unconfigured { missing })
    };
    let facebook = match (&config.facebook_app_secret, &config.facebook_verify_token) {
        (Some(secret), Some(token)) => Some(ChannelSlot::Ready(Arc::new(FacebookChannel::new(
            secret.clone(),
            token.clone(),
        )))),
        _ => None,
    };
    let fb_missing = [
        ("CROSSDESK_FACEBOOK_APP_SECRET", &config.facebook_app_secret),
        (
            "CROSSDESK_FACEBOOK_VERIFY_TOKEN",
            &config.facebook_verify_token,
        ),
    ]
    .into_iter()
    .filter(|(_, value)| value.is_none())
    .map(|(name, _)| name)
    .collect();
    let ingest = IngestState::new(inbound, archive, clock.clone())
        .with_channel("facebook", slot(facebook, fb_missing))
        .with_channel(
            "twitter",
            slot(
                config
                    .twitter_consumer_secret
                    .clone()
                    .map(|s| ChannelSlot::Ready(Arc::new(TwitterChannel::new(s)))),
                vec!["CROSSDESK_TWITTER_CONSUMER_SECRET"],
            ),
        )
        .with_channel(
            "email",
            slot(
                config
                    .agent_token
                    .clone()
                    .map(|s| ChannelSlot::Ready(Arc::new(EmailChannel::new(s)))),
                vec!["CROSSDESK_AGENT_TOKEN"],
            ),
        )
        .with_channel(
            "chat",
            slot(
                config
                    .chat_secret
                    .clone()
                    .map(|s| ChannelSlot::Ready(Arc::new(ChatChannel::new(s)))),
                vec!["CROSSDESK_CHAT_SECRET"],
            ),
        );
    let auth: Arc<dyn AgentAuth> = match &config.agent_token {
        Some(token) => Arc::new(BearerTokenAuth::new(token)),
        None => Arc::new(AgentApiDisabled),
    };
    let desk = AgentDesk::new(store, outbound, clock);
    webhook_router(ingest)
        .merge(agent_router(AgentState { desk, auth }))
        .route("/healthz", get(|| async { "ok" }))
}

/// Agent auth while `CROSSDESK_AGENT_TOKEN` is unset: every call is refused with 503.
struct AgentApiDisabled;

impl AgentAuth for AgentApiDisabled {
    fn authenticate(&self, _request: &Parts) -> Result<AgentRef, ApiError> {
        Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "agent_api_not_configured",
            "the agent API is not configured: set CROSSDESK_AGENT_TOKEN",
        ))
    }
}

/// The local queue, waking its worker as soon as something arrives.
struct WakingQueue {
    queue: Arc<SqliteQueue>,
    wake: Arc<Notify>,
}

#[async_trait]
impl InboundQueue for WakingQueue {
    async fn enqueue(&self, messages: &[Message]) -> Result<(), QueueError> {
        InboundQueue::enqueue(self.queue.as_ref(), messages).await?;
        self.wake.notify_one();
        Ok(())
    }
}

#[async_trait]
impl OutboundQueue for WakingQueue {
    async fn enqueue(&self, job: &OutboundJob) -> Result<(), QueueError> {
        OutboundQueue::enqueue(self.queue.as_ref(), job).await?;
        self.wake.notify_one();
        Ok(())
    }
}

/// The reply sender: the configured platform senders, and email replies into the outbox.
fn reply_delivery(
    config: &LocalConfig,
    store: Arc<SqliteStore>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<ReplyDelivery> {
    let mut delivery = ReplyDelivery::new(store, clock, RetryPolicy::default());
    for (channel, sender) in config.senders.senders()? {
        delivery = delivery.with_sender(channel, sender);
    }
    if let Some(from) = &config.email_from {
        let settings = EmailReplySettings {
            support_address: from.clone(),
            display_name: config.email_from_name.clone(),
        };
        delivery = delivery.with_sender(
            ChannelKind::Email,
            Arc::new(OutboxEmailSender::new(
                settings,
                config.data_dir.join("outbox"),
            )),
        );
    }
    Ok(delivery)
}

/// What to do with a queue entry after handling it.
enum Settle {
    /// Done: remove it.
    Ack,
    /// Try again after this long (a passing failure).
    RetryAfter(Duration, String),
    /// It can never succeed: move it to the dead letters.
    DeadLetter(String),
}

/// A worker draining one queue in-process: takes batches, handles each entry, settles it.
/// Nothing is dropped: an entry is removed only once handled or dead-lettered, and a crash
/// leaves it leased, to be taken again.
async fn drain<F, Fut>(
    queue: Arc<SqliteQueue>,
    name: QueueName,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
    handle: F,
) where
    F: Fn(String, u32) -> Fut,
    Fut: std::future::Future<Output = Settle>,
{
    loop {
        if *shutdown.borrow() {
            break;
        }
        let batch = match queue.receive(name, BATCH, LEASE).await {
            Ok(batch) => batch,
            Err(e) => {
                warn!(queue = name.as_str(), error = %e, "cannot read the queue; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if batch.is_empty() {
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        for leased in batch {
            let settled = match handle(leased.body.clone(), leased.attempts).await {
                Settle::Ack => queue.ack(&leased.receipt).await,
                Settle::RetryAfter(after, reason) => {
                    warn!(queue = name.as_str(), attempts = leased.attempts, %reason, "will retry");
                    queue.retry_later(&leased.receipt, after, &reason).await
                }
                Settle::DeadLetter(reason) => {
                    error!(queue = name.as_str(), %reason, "moved to dead letters");
                    queue.dead_letter(&leased.receipt, &reason).await
                }
            };
            if let Err(e) = settled {
                // The lease expires and the entry is taken again: at least once, never lost.
                warn!(queue = name.as_str(), error = %e, "cannot settle a queue entry");
            }
        }
    }
    info!(queue = name.as_str(), "worker stopped");
}

/// The ticket writer's handling of one inbound entry.
async fn write_entry(writer: &TicketWriter, body: String, attempts: u32) -> Settle {
    match serde_json::from_str::<Message>(&body) {
        Err(e) => Settle::DeadLetter(format!("undecodable queue entry: {e}")),
        Ok(message) => match writer.write(&message).await {
            Ok(_) => Settle::Ack,
            Err(e) if e.is_retryable() => Settle::RetryAfter(backoff(attempts), e.to_string()),
            Err(e) => Settle::DeadLetter(e.to_string()),
        },
    }
}

/// The reply sender's handling of one outbound entry.
async fn deliver_entry(delivery: &ReplyDelivery, body: String, attempts: u32) -> Settle {
    match serde_json::from_str::<OutboundJob>(&body) {
        Err(e) => Settle::DeadLetter(format!("undecodable queue entry: {e}")),
        Ok(job) => match delivery.deliver(&job).await {
            Ok(DeliveryOutcome::RetryLater { after }) => {
                Settle::RetryAfter(after, "the platform asked to wait".into())
            }
            Ok(_) => Settle::Ack,
            Err(DeliveryJobError::UnknownReply(id)) => {
                Settle::DeadLetter(format!("reply {id} is not stored"))
            }
            Err(e) => Settle::RetryAfter(backoff(attempts), e.to_string()),
        },
    }
}

/// Capped exponential backoff: 1 s, 2 s, 4 s, … up to 60 s.
fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.saturating_sub(1).min(6)).min(Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(4), Duration::from_secs(8));
        assert_eq!(backoff(30), Duration::from_secs(60));
    }
}
