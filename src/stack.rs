//! Assembles the local stack: the adapters (embedded, or AWS with `--aws`), the HTTP routes, and
//! the in-process ticket writer and reply sender that drain the durable queues.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use crossdesk_aws::{
    AwsConfig, ChannelSecrets, DynamoTicketStore, ResourceNames, S3Archive, SesEmailSender,
    SqsQueue,
};
use crossdesk_channels::delivery::{DeliveryJobError, DeliveryOutcome, ReplyDelivery, RetryPolicy};
use crossdesk_channels::email_reply::EmailReplySettings;
use crossdesk_channels::send::ReplySender;
use crossdesk_channels::{ChatChannel, EmailChannel, FacebookChannel, TwitterChannel};
use crossdesk_core::agent::{AgentDesk, AgentRef};
use crossdesk_core::mail_threading::EmailThreading;
use crossdesk_core::writer::TicketWriter;
use crossdesk_core::{
    ChannelKind, Clock, InboundQueue, Message, OutboundJob, OutboundQueue, QueueError, RawArchive,
    SystemClock, TicketStore,
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

use crate::config::{Backend, LocalConfig};
use crate::consumer::{QueueConsumer, SqliteConsumer, SqsConsumer};
use crate::outbox::OutboxEmailSender;

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

/// The adapters the stack runs on, embedded or AWS.
struct Adapters {
    store: Arc<dyn TicketStore>,
    archive: Arc<dyn RawArchive>,
    inbound: Arc<dyn InboundQueue>,
    outbound: Arc<dyn OutboundQueue>,
    inbound_consumer: Arc<dyn QueueConsumer>,
    outbound_consumer: Arc<dyn QueueConsumer>,
    /// The email reply sender (the outbox locally, SES on AWS), when a from address is set.
    email_sender: Option<Arc<dyn ReplySender>>,
}

impl LocalStack {
    /// Opens the backend (the database under the data dir, or the AWS resources), binds the
    /// port and starts serving, writing and sending.
    pub async fn start(config: &LocalConfig) -> anyhow::Result<Self> {
        let mut config = config.clone();
        let adapters = match config.backend.clone() {
            Backend::Embedded => embedded_adapters(&config).await?,
            Backend::Aws { create_resources } => {
                aws_adapters(&mut config, create_resources).await?
            }
        };
        let config = &config;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let wake_writer = Arc::new(Notify::new());
        let wake_sender = Arc::new(Notify::new());
        let inbound = Arc::new(WakingQueue {
            queue: adapters.inbound.clone(),
            wake: wake_writer.clone(),
        });
        let outbound = Arc::new(WakingQueue {
            queue: adapters.outbound.clone(),
            wake: wake_sender.clone(),
        });
        let delivery = reply_delivery(
            config,
            adapters.store.clone(),
            clock.clone(),
            adapters.email_sender,
        )?;
        let router = routes(
            config,
            inbound,
            outbound,
            adapters.archive,
            adapters.store.clone(),
            clock,
        );

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
        let writer = TicketWriter::new(adapters.store).with_email_threading(EmailThreading {
            thread_key: config.email_thread_key.clone(),
            support_address: config.email_from.clone(),
        });
        let inbound_consumer = adapters.inbound_consumer.clone();
        let writer = tokio::spawn(drain(
            adapters.inbound_consumer,
            wake_writer,
            signal.clone(),
            move |body, attempts| {
                let writer = writer.clone();
                let consumer = inbound_consumer.clone();
                async move {
                    match consumer.message(&body).await {
                        Ok(message) => write_entry(&writer, &message, attempts).await,
                        Err(e) => Settle::DeadLetter(e),
                    }
                }
            },
        ));
        let outbound_consumer = adapters.outbound_consumer.clone();
        let sender = tokio::spawn(drain(
            adapters.outbound_consumer,
            wake_sender,
            signal,
            move |body, attempts| {
                let delivery = delivery.clone();
                let consumer = outbound_consumer.clone();
                async move {
                    match consumer.job(&body).await {
                        Ok(job) => deliver_entry(&delivery, &job, attempts).await,
                        Err(e) => Settle::DeadLetter(e),
                    }
                }
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

/// The embedded adapters: one SQLite database under the data dir.
async fn embedded_adapters(config: &LocalConfig) -> anyhow::Result<Adapters> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create the data dir {}", config.data_dir.display()))?;
    let db = config.data_dir.join("crossdesk.db");
    let database = Database::open(&db).with_context(|| format!("cannot open {}", db.display()))?;
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
    let email_sender = email_reply_settings(config).map(|settings| {
        Arc::new(OutboxEmailSender::new(
            settings,
            config.data_dir.join("outbox"),
        )) as Arc<dyn ReplySender>
    });
    Ok(Adapters {
        store,
        archive: Arc::new(SqliteArchive::new(database)),
        inbound: queue.clone(),
        outbound: queue.clone(),
        inbound_consumer: Arc::new(SqliteConsumer {
            queue: queue.clone(),
            name: QueueName::Inbound,
        }),
        outbound_consumer: Arc::new(SqliteConsumer {
            queue,
            name: QueueName::Outbound,
        }),
        email_sender,
    })
}

/// Who email replies are sent as, when both the support address and the thread key that signs
/// them are set.
fn email_reply_settings(config: &LocalConfig) -> Option<EmailReplySettings> {
    match (&config.email_from, &config.email_thread_key) {
        (Some(from), Some(key)) => Some(EmailReplySettings {
            support_address: from.clone(),
            display_name: config.email_from_name.clone(),
            thread_key: key.clone(),
        }),
        (Some(_), None) => {
            warn!("email replies are off: set CROSSDESK_EMAIL_THREAD_KEY to sign them");
            None
        }
        (None, _) => None,
    }
}

/// The AWS adapters (`--aws`): DynamoDB, SQS, S3 and SES, at `AWS_ENDPOINT_URL` when set.
/// Channel secrets missing from the environment are read from `CROSSDESK_SECRET_ID`.
async fn aws_adapters(config: &mut LocalConfig, create: bool) -> anyhow::Result<Adapters> {
    let sdk = crossdesk_aws::sdk_config().await;
    let aws = if create {
        let prefix = config.resource_prefix.clone();
        crossdesk_aws::create_resources(&sdk, &ResourceNames::with_prefix(&prefix))
            .await
            .context("cannot create the AWS resources")?
    } else {
        let mut aws = AwsConfig::from_env()?;
        if aws.secret_id.is_some() {
            let secrets = ChannelSecrets::load(
                &aws_sdk_secretsmanager::Client::new(&sdk),
                aws.secret_id.as_deref(),
                |name| std::env::var(name).ok(),
            )
            .await?;
            config.apply_secrets(secrets);
        }
        aws.secret_id = None;
        aws
    };
    info!(table = %aws.table_name, inbound = %aws.inbound_queue_url, outbound = %aws.outbound_queue_url, bucket = %aws.bucket, "running on AWS adapters");
    let s3 = crossdesk_aws::s3::client(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let inbound = Arc::new(SqsQueue::new(
        sqs.clone(),
        &aws.inbound_queue_url,
        s3.clone(),
        &aws.bucket,
    ));
    let outbound = Arc::new(SqsQueue::new(
        sqs,
        &aws.outbound_queue_url,
        s3.clone(),
        &aws.bucket,
    ));
    let email_sender = email_reply_settings(config).map(|settings| {
        Arc::new(SesEmailSender::new(
            aws_sdk_sesv2::Client::new(&sdk),
            settings,
        )) as Arc<dyn ReplySender>
    });
    Ok(Adapters {
        store: Arc::new(DynamoTicketStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            &aws.table_name,
        )),
        archive: Arc::new(S3Archive::new(s3, &aws.bucket)),
        inbound: inbound.clone(),
        outbound: outbound.clone(),
        inbound_consumer: Arc::new(SqsConsumer {
            queue: inbound,
            name: "inbound",
        }),
        outbound_consumer: Arc::new(SqsConsumer {
            queue: outbound,
            name: "outbound",
        }),
        email_sender,
    })
}

fn routes(
    config: &LocalConfig,
    inbound: Arc<dyn InboundQueue>,
    outbound: Arc<dyn OutboundQueue>,
    archive: Arc<dyn RawArchive>,
    store: Arc<dyn TicketStore>,
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

/// A queue that wakes its worker as soon as something arrives.
struct WakingQueue<Q: ?Sized> {
    queue: Arc<Q>,
    wake: Arc<Notify>,
}

#[async_trait]
impl InboundQueue for WakingQueue<dyn InboundQueue> {
    async fn enqueue(&self, messages: &[Message]) -> Result<(), QueueError> {
        self.queue.enqueue(messages).await?;
        self.wake.notify_one();
        Ok(())
    }
}

#[async_trait]
impl OutboundQueue for WakingQueue<dyn OutboundQueue> {
    async fn enqueue(&self, job: &OutboundJob) -> Result<(), QueueError> {
        self.queue.enqueue(job).await?;
        self.wake.notify_one();
        Ok(())
    }
}

/// The reply sender: the configured platform senders, and the email sender.
fn reply_delivery(
    config: &LocalConfig,
    store: Arc<dyn TicketStore>,
    clock: Arc<dyn Clock>,
    email_sender: Option<Arc<dyn ReplySender>>,
) -> anyhow::Result<ReplyDelivery> {
    let mut delivery = ReplyDelivery::new(store, clock, RetryPolicy::default());
    for (channel, sender) in config.senders.senders()? {
        delivery = delivery.with_sender(channel, sender);
    }
    if let Some(sender) = email_sender {
        delivery = delivery.with_sender(ChannelKind::Email, sender);
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
/// leaves it taken, to be taken again.
async fn drain<F, Fut>(
    queue: Arc<dyn QueueConsumer>,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
    handle: F,
) where
    F: Fn(String, u32) -> Fut,
    Fut: std::future::Future<Output = Settle>,
{
    let name = queue.name();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let batch = tokio::select! {
            batch = queue.take(BATCH) => batch,
            _ = shutdown.changed() => continue,
        };
        let batch = match batch {
            Ok(batch) => batch,
            Err(e) => {
                warn!(queue = name, error = %e, "cannot read the queue; retrying");
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
        for taken in batch {
            let settled = match handle(taken.body.clone(), taken.attempts).await {
                Settle::Ack => queue.ack(&taken).await,
                Settle::RetryAfter(after, reason) => {
                    warn!(queue = name, attempts = taken.attempts, %reason, "will retry");
                    queue.retry_later(&taken, after, &reason).await
                }
                Settle::DeadLetter(reason) => {
                    error!(queue = name, %reason, "moved to dead letters");
                    queue.dead_letter(&taken, &reason).await
                }
            };
            if let Err(e) = settled {
                // The lease expires and the entry is taken again: at least once, never lost.
                warn!(queue = name, error = %e, "cannot settle a queue entry");
            }
        }
    }
    info!(queue = name, "worker stopped");
}

/// The ticket writer's handling of one inbound entry.
async fn write_entry(writer: &TicketWriter, message: &Message, attempts: u32) -> Settle {
    match writer.write(message).await {
        Ok(_) => Settle::Ack,
        Err(e) if e.is_retryable() => Settle::RetryAfter(backoff(attempts), e.to_string()),
        Err(e) => Settle::DeadLetter(e.to_string()),
    }
}

/// The reply sender's handling of one outbound entry.
async fn deliver_entry(delivery: &ReplyDelivery, job: &OutboundJob, attempts: u32) -> Settle {
    match delivery.deliver(job).await {
        Ok(DeliveryOutcome::RetryLater { after }) => {
            Settle::RetryAfter(after, "the platform asked to wait".into())
        }
        Ok(_) => Settle::Ack,
        Err(DeliveryJobError::UnknownReply(id)) => {
            Settle::DeadLetter(format!("reply {id} is not stored"))
        }
        Err(e) => Settle::RetryAfter(backoff(attempts), e.to_string()),
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
