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
use crossdesk_channels::{ChatChannel, EmailChannel, FacebookChannel, TwitterChannel};
use crossdesk_core::agent::{AgentDesk, AgentRef};
use crossdesk_core::writer::TicketWriter;
use crossdesk_core::{
    Clock, InboundQueue, Message, OutboundJob, OutboundQueue, QueueError, SystemClock,
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
    writer: JoinHandle<()>,
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
        let released = queue
            .release_leases(QueueName::Inbound)
            .await
            .context("cannot read the local queue")?;
        if released > 0 {
            info!(
                released,
                "re-queued messages a previous run had taken but not stored"
            );
        }
        let archive = Arc::new(SqliteArchive::new(database));
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let wake = Arc::new(Notify::new());

        let inbound = Arc::new(WakingInbound {
            queue: queue.clone(),
            wake: wake.clone(),
        });
        let outbound = Arc::new(LocalOutbound {
            queue: queue.clone(),
        });
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
        let writer = tokio::spawn(drain_inbound(queue, TicketWriter::new(store), wake, signal));
        Ok(LocalStack {
            addr,
            shutdown,
            server,
            writer,
        })
    }

    /// Stops accepting requests, lets the writer finish its current batch, and waits for both.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
        let _ = self.writer.await;
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

/// The inbound queue, waking the writer as soon as something arrives.
struct WakingInbound {
    queue: Arc<SqliteQueue>,
    wake: Arc<Notify>,
}

#[async_trait]
impl InboundQueue for WakingInbound {
    async fn enqueue(&self, messages: &[Message]) -> Result<(), QueueError> {
        InboundQueue::enqueue(self.queue.as_ref(), messages).await?;
        self.wake.notify_one();
        Ok(())
    }
}

/// The outbound queue (the reply sender drains it).
struct LocalOutbound {
    queue: Arc<SqliteQueue>,
}

#[async_trait]
impl OutboundQueue for LocalOutbound {
    async fn enqueue(&self, job: &OutboundJob) -> Result<(), QueueError> {
        OutboundQueue::enqueue(self.queue.as_ref(), job).await
    }
}

/// The in-process ticket writer: takes batches off the inbound queue and threads each message.
/// A message that fails for a passing reason is retried with backoff; one that can never be
/// stored goes to the dead-letter table. Nothing is dropped.
async fn drain_inbound(
    queue: Arc<SqliteQueue>,
    writer: TicketWriter,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        if *shutdown.borrow() {
            break;
        }
        let batch = match queue.receive(QueueName::Inbound, BATCH, LEASE).await {
            Ok(batch) => batch,
            Err(e) => {
                warn!(error = %e, "cannot read the inbound queue; retrying");
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
            let outcome = match serde_json::from_str::<Message>(&leased.body) {
                Err(e) => Err((false, format!("undecodable queue entry: {e}"))),
                Ok(message) => writer
                    .write(&message)
                    .await
                    .map(|_| ())
                    .map_err(|e| (e.is_retryable(), e.to_string())),
            };
            let settled = match outcome {
                Ok(()) => queue.ack(&leased.receipt).await,
                Err((true, reason)) => {
                    warn!(attempts = leased.attempts, %reason, "write failed; will retry");
                    queue
                        .retry_later(&leased.receipt, backoff(leased.attempts), &reason)
                        .await
                }
                Err((false, reason)) => {
                    error!(%reason, "message cannot be stored; moved to dead letters");
                    queue.dead_letter(&leased.receipt, &reason).await
                }
            };
            if let Err(e) = settled {
                // The lease expires and the message is taken again: at least once, never lost.
                warn!(error = %e, "cannot settle a queue entry");
            }
        }
    }
    info!("ticket writer stopped");
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
