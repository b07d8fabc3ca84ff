//! Assembles the local stack: the adapters (embedded, or AWS with `--aws`), the HTTP routes, and
//! the in-process ticket writer and reply sender that drain the durable queues.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use axum::extract::{Path, RawQuery};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use crossdesk_aws::{
    AwsConfig, ChannelSecrets, DynamoEventLedger, DynamoTicketStore, ResourceNames, S3Archive,
    S3MediaStore, SesEmailSender, SqsQueue,
};
use crossdesk_channels::delivery::{DeliveryJobError, DeliveryOutcome, ReplyDelivery, RetryPolicy};
use crossdesk_channels::email_reply::EmailReplySettings;
use crossdesk_channels::media_fetch::XMediaCredentials;
use crossdesk_channels::monitoring::CursorStore;
use crossdesk_channels::send::ReplySender;
use crossdesk_channels::{ChatChannel, EmailChannel, FacebookChannel, TwitterChannel};
use crossdesk_core::agent::{AgentDesk, AgentRef};
use crossdesk_core::agent_workflow::DeskWorkflow;
use crossdesk_core::events::EventQueue;
use crossdesk_core::health::{ChannelHealthStore, InboundActivity};
use crossdesk_core::mail_threading::EmailThreading;
use crossdesk_core::media::{AttachmentCollector, MediaStore};
use crossdesk_core::ordering::{next_wave, ordering_keys};
use crossdesk_core::reply_window::ReplyCapabilities;
use crossdesk_core::workflow::WorkflowStore;
use crossdesk_core::writer::TicketWriter;
use crossdesk_core::{
    ChannelKind, Clock, InboundQueue, Message, OutboundJob, OutboundQueue, QueueError, RawArchive,
    SystemClock, TicketStore,
};
use crossdesk_embedded::{
    Database, DirectoryMediaStore, MediaLinkError, QueueName, SqliteArchive, SqliteQueue,
    SqliteStore,
};
use crossdesk_http::chat_session::SessionKey;
use crossdesk_http::{
    agent_router, chat_router, notifications_router, web_router, webhook_router, AgentAuth,
    AgentState, ApiError, BearerTokenAuth, ChannelSlot, ChatApiState, ConsoleAuth,
    InMemoryRateLimiter, IngestState, NotificationsApiState,
};
use futures_util::future::join_all;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::config::{Backend, LocalConfig};
use crate::consumer::{QueueConsumer, SqliteConsumer, SqsConsumer, Taken};
use crate::health;
use crate::outbox::OutboxEmailSender;

/// How many messages the writer takes at once (as many as SQS gives): those of different
/// conversations are stored at the same time, their writes committed together. Every message
/// taken counts a delivery when the process dies, so a larger batch dead-letters more messages
/// across crashes (with 128, the fault-injection test's two kills plus its store faults pushed a
/// stored message past the five deliveries).
const WRITER_BATCH: usize = 10;
/// How many replies the sender takes at once.
const SENDER_BATCH: usize = 10;

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
    /// The channels' health state (the same database or table as the tickets).
    health: Arc<dyn ChannelHealthStore>,
    /// The outgoing events queue and ledger.
    events: crate::events::EventAdapters,
    /// Where copies of attachments go (the data dir, or S3).
    media: Arc<dyn MediaStore>,
    /// Named cursors (social monitoring's), in the workflow store.
    cursors: Arc<dyn CursorStore>,
    /// The tickets' and contacts' workflow state (the same database or table as the tickets).
    workflows: Arc<dyn WorkflowStore>,
    /// The data dir's media store, served under `/media/` (embedded only: S3 links are
    /// pre-signed URLs).
    local_media: Option<DirectoryMediaStore>,
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
        let (shutdown, signal) = watch::channel(false);
        let notifier = crate::notify::notifier(
            config,
            adapters.store.clone(),
            adapters.workflows.clone(),
            adapters.events.ledger.clone(),
            clock.clone(),
        )
        .await?;
        let events = crate::events::start(
            config,
            adapters.events,
            clock.clone(),
            agent_auth(config),
            signal.clone(),
            notifier,
        )?;
        let watch = events
            .publisher
            .clone()
            .map(|events| {
                crate::sla::spawn_watch(
                    config,
                    adapters.workflows.clone(),
                    adapters.store.clone(),
                    events,
                    clock.clone(),
                    signal.clone(),
                )
            })
            .transpose()?;
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
        // The ticket writer and the reply sender see the injected store faults, if any (the
        // agent API does not: its writes are answered to a person, who would retry them).
        let worker_store = match config.store_faults {
            Some(faults) => {
                warn!(
                    share = faults.share,
                    seed = faults.seed,
                    "fault injection: a share of the writer's and sender's store writes fail"
                );
                Arc::new(crossdesk_core::faults::FaultyTicketStore::new(
                    adapters.store.clone(),
                    faults,
                )) as Arc<dyn TicketStore>
            }
            None => adapters.store.clone(),
        };
        let delivery = reply_delivery(
            config,
            worker_store.clone(),
            clock.clone(),
            adapters.email_sender,
        )?
        .with_channel_health(adapters.health.clone());
        let delivery = match &events.publisher {
            Some(publisher) => delivery.with_events(publisher.clone()),
            None => delivery,
        };
        let checker = health::health_checker(config, adapters.health.clone(), clock.clone())?;
        let channels = health::channel_routes(
            config,
            adapters.health.clone(),
            checker.clone(),
            agent_auth(config),
        );
        let monitor = crate::monitoring::spawn_monitor(
            config,
            adapters.cursors.clone(),
            inbound.clone(),
            adapters.archive.clone(),
            clock.clone(),
            signal.clone(),
        )?;
        let desk_workflow = Arc::new(
            DeskWorkflow::from_settings(
                &config.settings,
                adapters.workflows.clone(),
                adapters.store.clone(),
            )
            .context("the desk settings cannot be used")?,
        );
        let router = routes(
            config,
            inbound,
            outbound,
            adapters.archive,
            adapters.store.clone(),
            clock.clone(),
            events.publisher.clone(),
            adapters.media.clone(),
            desk_workflow.clone(),
        )
        .merge(channels)
        .merge(media_routes(adapters.local_media.clone(), clock.clone()))
        .merge(events.router)
        .merge(notifications_router(NotificationsApiState {
            workflow: adapters.workflows.clone(),
            auth: agent_auth(config),
        }));

        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;

        let mut server_signal = signal.clone();
        let server = tokio::spawn(async move {
            let stop = async move {
                let _ = server_signal.wait_for(|stop| *stop).await;
            };
            // The connection's address keys the chat API's per-address rate limit.
            let service = router.into_make_service_with_connect_info::<SocketAddr>();
            if let Err(e) = axum::serve(listener, service)
                .with_graceful_shutdown(stop)
                .await
            {
                error!(error = %e, "HTTP server stopped");
            }
        });
        let writer = TicketWriter::new(worker_store)
            .with_triage(desk_workflow.triage.clone())
            .with_email_threading(EmailThreading {
                thread_key: config.email_thread_key.clone(),
                support_address: config.email_from.clone(),
            })
            .with_inbound_activity(Arc::new(InboundActivity::new(adapters.health.clone())))
            .with_attachments(AttachmentCollector::new(
                Arc::new(
                    config
                        .media
                        .fetcher()
                        .context("cannot build the attachment downloader")?
                        .with_x_credentials(XMediaCredentials::from_parts(
                            config.senders.twitter_consumer_key.as_ref(),
                            config.senders.twitter_consumer_secret.as_ref(),
                            config.senders.twitter_access_token.as_ref(),
                            config.senders.twitter_access_secret.as_ref(),
                        )),
                ),
                adapters.media.clone(),
                config.media.limits.clone(),
            ));
        let writer = match &events.publisher {
            Some(publisher) => writer.with_events(publisher.clone()),
            None => writer,
        };
        let health_worker = health::spawn_health_worker(config, checker, signal.clone());
        let inbound_consumer = adapters.inbound_consumer.clone();
        let writer = tokio::spawn(drain(
            adapters.inbound_consumer,
            wake_writer,
            signal.clone(),
            WRITER_BATCH,
            move |body| {
                let consumer = inbound_consumer.clone();
                async move {
                    let message = consumer.message(&body).await?;
                    let keys = ordering_keys(&message);
                    Ok((message, keys))
                }
            },
            move |message, attempts| {
                let writer = writer.clone();
                async move { write_entry(&writer, &message, attempts).await }
            },
        ));
        let outbound_consumer = adapters.outbound_consumer.clone();
        let sender = tokio::spawn(drain(
            adapters.outbound_consumer,
            wake_sender,
            signal,
            SENDER_BATCH,
            move |body| {
                let consumer = outbound_consumer.clone();
                async move {
                    let job = consumer.job(&body).await?;
                    // Replies to one ticket go out in order; other tickets' at the same time.
                    let keys = vec![job.ticket_id.as_str().to_owned()];
                    Ok((job, keys))
                }
            },
            move |job, attempts| {
                let delivery = delivery.clone();
                async move { deliver_entry(&delivery, &job, attempts).await }
            },
        ));
        Ok(LocalStack {
            addr,
            shutdown,
            server,
            workers: [writer, sender]
                .into_iter()
                .chain(health_worker)
                .chain(monitor)
                .chain(events.worker)
                .chain(watch)
                .collect(),
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
            (
                format!("{base}/api/channels"),
                "channel health (Bearer agent token; POST /api/channels/check runs the checks)",
            ),
            (
                format!("{base}/console/"),
                "agent console (sign in with the agent token)",
            ),
            (
                format!("{base}/demo/"),
                "demo page with the website chat widget (/widget.js, /chat/api/…)",
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
    let database = Database::open_with(&db, config.durability)
        .with_context(|| format!("cannot open {}", db.display()))?;
    let store = Arc::new(SqliteStore::new(database.clone()));
    let queue = Arc::new(SqliteQueue::new(database.clone()));
    let events = crate::events::embedded(&database).await?;
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
    // Links to attachment copies are signed with a key of this process: they are short-lived
    // anyway, and a restart only makes an agent ask for a fresh one.
    let local_media = DirectoryMediaStore::new(config.data_dir.join("media"), rand::random());
    Ok(Adapters {
        events,
        health: store.clone(),
        cursors: store.clone(),
        workflows: store.clone(),
        store,
        media: Arc::new(local_media.clone()),
        local_media: Some(local_media),
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
    let events = crate::events::aws(
        aws.events_queue_url
            .as_deref()
            .map(|url| Arc::new(SqsQueue::new(sqs.clone(), url, s3.clone(), &aws.bucket))),
        DynamoEventLedger::new(aws_sdk_dynamodb::Client::new(&sdk), &aws.table_name),
    );
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
    let store = Arc::new(DynamoTicketStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        &aws.table_name,
    ));
    Ok(Adapters {
        events,
        health: store.clone(),
        cursors: store.clone(),
        workflows: store.clone(),
        store,
        media: Arc::new(S3MediaStore::new(s3.clone(), &aws.bucket)),
        local_media: None,
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

// One argument per adapter the routes are built over.
#[allow(clippy::too_many_arguments)]
fn routes(
    config: &LocalConfig,
    inbound: Arc<dyn InboundQueue>,
    outbound: Arc<dyn OutboundQueue>,
    archive: Arc<dyn RawArchive>,
    store: Arc<dyn TicketStore>,
    clock: Arc<dyn Clock>,
    events: Option<Arc<dyn EventQueue>>,
    media: Arc<dyn MediaStore>,
    workflow: Arc<DeskWorkflow>,
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
    let chat = chat_api(
        config,
        store.clone(),
        inbound.clone(),
        archive.clone(),
        clock.clone(),
    );
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
    let ingest = ingest.with_signature_modes(config.signature_modes);
    config
        .signature_modes
        .warn_if_reporting(ingest.channel_names());
    let auth = agent_auth(config);
    // Reply windows follow the same Human Agent setting as the Facebook sender.
    let desk = AgentDesk::new(store, outbound, clock)
        .with_reply_capabilities(ReplyCapabilities {
            human_agent: config.senders.facebook_human_agent,
        })
        .with_media(media)
        .with_workflow(workflow);
    let desk = match events {
        Some(events) => desk.with_events(events),
        None => desk,
    };
    webhook_router(ingest)
        .merge(agent_router(AgentState { desk, auth }))
        .merge(chat)
        .merge(web_router(ConsoleAuth::Token))
        .route("/healthz", get(|| async { "ok" }))
}

/// The website widget's public chat API, rate-limited in this process's memory. Without
/// `CROSSDESK_CHAT_SESSION_KEY` a key is generated: visitor sessions then end at a restart.
fn chat_api(
    config: &LocalConfig,
    store: Arc<dyn TicketStore>,
    inbound: Arc<dyn InboundQueue>,
    archive: Arc<dyn RawArchive>,
    clock: Arc<dyn Clock>,
) -> Router {
    let mut settings = config.chat_api.clone();
    if settings.session_key.is_none() {
        warn!(
            "CROSSDESK_CHAT_SESSION_KEY is unset: using a key generated for this run, so chat \
             widget sessions do not survive a restart"
        );
        settings.session_key = Some(SessionKey::generate());
    }
    chat_router(ChatApiState::new(
        settings,
        store,
        inbound,
        archive,
        clock,
        Arc::new(InMemoryRateLimiter::new()),
    ))
}

/// `GET /media/{sha256}?…`: the data dir's attachment copies, through the signed links the
/// agent API hands out (embedded backend only).
fn media_routes(media: Option<DirectoryMediaStore>, clock: Arc<dyn Clock>) -> Router {
    let Some(media) = media else {
        return Router::new();
    };
    let serve = move |Path(sha256): Path<String>, RawQuery(query): RawQuery| {
        let media = media.clone();
        let clock = clock.clone();
        async move {
            match media
                .open(&sha256, query.as_deref().unwrap_or(""), clock.now())
                .await
            {
                Ok(file) => (
                    [
                        (header::CONTENT_TYPE, file.content_type),
                        (header::CONTENT_DISPOSITION, file.disposition),
                        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
                        (
                            header::CONTENT_SECURITY_POLICY,
                            "default-src 'none'; sandbox".to_string(),
                        ),
                        (header::CACHE_CONTROL, "private, max-age=300".to_string()),
                    ],
                    file.bytes,
                )
                    .into_response(),
                Err(e) => {
                    let status = match e {
                        MediaLinkError::Invalid | MediaLinkError::Expired => StatusCode::FORBIDDEN,
                        MediaLinkError::NotFound => StatusCode::NOT_FOUND,
                        MediaLinkError::Unreadable(_) => StatusCode::INTERNAL_SERVER_ERROR,
                    };
                    (status, e.to_string()).into_response()
                }
            }
        }
    };
    Router::new().route("/media/{sha256}", get(serve))
}

/// The agent API's auth: the bearer token, or 503 while `CROSSDESK_AGENT_TOKEN` is unset.
fn agent_auth(config: &LocalConfig) -> Arc<dyn AgentAuth> {
    match &config.agent_token {
        Some(token) => Arc::new(BearerTokenAuth::new(token)),
        None => Arc::new(AgentApiDisabled),
    }
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
pub(crate) enum Settle {
    /// Done: remove it.
    Ack,
    /// Try again after this long (a passing failure).
    RetryAfter(Duration, String),
    /// It can never succeed: move it to the dead letters.
    DeadLetter(String),
}

/// A worker draining one queue in-process: takes batches, decodes each entry, handles them and
/// settles each. Entries whose ordering keys (from `decode`) are disjoint are handled at the same
/// time; entries sharing a key one after the other, in queue order (see
/// [`crossdesk_core::ordering::next_wave`]). Nothing is dropped: an entry is removed only once
/// handled or dead-lettered, and a crash leaves it taken, to be taken again.
pub(crate) async fn drain<T, D, DFut, H, HFut>(
    queue: Arc<dyn QueueConsumer>,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
    batch_size: usize,
    decode: D,
    handle: H,
) where
    D: Fn(String) -> DFut,
    DFut: std::future::Future<Output = Result<(T, Vec<String>), String>>,
    H: Fn(T, u32) -> HFut,
    HFut: std::future::Future<Output = Settle>,
{
    let name = queue.name();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let batch = tokio::select! {
            batch = queue.take(batch_size) => batch,
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
        let decoded = join_all(batch.iter().map(|taken| decode(taken.body.clone()))).await;
        let mut waiting = Vec::with_capacity(batch.len());
        for (taken, decoded) in batch.into_iter().zip(decoded) {
            match decoded {
                Ok((entry, keys)) => waiting.push((taken, entry, keys)),
                Err(reason) => settle(&*queue, &taken, Settle::DeadLetter(reason)).await,
            }
        }
        while !waiting.is_empty() {
            let keys: Vec<&[String]> = waiting.iter().map(|(_, _, keys)| keys.as_slice()).collect();
            let wave = next_wave::<_, String>(&keys);
            let mut now = Vec::with_capacity(wave.len());
            for position in wave.into_iter().rev() {
                now.push(waiting.remove(position));
            }
            join_all(now.into_iter().rev().map(|(taken, entry, _)| {
                let handled = handle(entry, taken.attempts);
                let queue = &*queue;
                async move { settle(queue, &taken, handled.await).await }
            }))
            .await;
        }
    }
    info!(queue = name, "worker stopped");
}

/// Settles one handled entry. A failure to settle is logged: the lease expires and the entry is
/// taken again (at least once, never lost).
async fn settle(queue: &dyn QueueConsumer, taken: &Taken, settle: Settle) {
    let name = queue.name();
    let settled = match settle {
        Settle::Ack => queue.ack(taken).await,
        Settle::RetryAfter(after, reason) => {
            warn!(queue = name, attempts = taken.attempts, %reason, "will retry");
            queue.retry_later(taken, after, &reason).await
        }
        Settle::DeadLetter(reason) => {
            error!(queue = name, %reason, "moved to dead letters");
            queue.dead_letter(taken, &reason).await
        }
    };
    if let Err(e) = settled {
        warn!(queue = name, error = %e, "cannot settle a queue entry");
    }
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
pub(crate) fn backoff(attempts: u32) -> Duration {
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
