//! A deployed Crossdesk's parts, built once per cold start from the function's environment:
//! configuration, SDK clients, secrets (Secrets Manager, cached for the life of the process),
//! and the adapters behind the domain's ports. Each function's `main.rs` asks it for the one
//! handler it runs.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use crossdesk_aws::{
    sdk_config, AwsConfig, ChannelSecrets, DynamoEventLedger, DynamoTicketStore, S3Archive,
    S3MediaStore, SesEmailSender, SesNotificationMailer, SqsQueue,
};
use crossdesk_channels::delivery::{ReplyDelivery, RetryPolicy};
use crossdesk_channels::email_reply::EmailReplySettings;
use crossdesk_channels::events_webhook::{Endpoint, EventRetryPolicy, EventsWebhook};
use crossdesk_channels::media_fetch::{MediaSettings, XMediaCredentials};
use crossdesk_channels::notify_webhook::SignedNotificationWebhook;
use crossdesk_channels::senders::{human_agent_permission, SenderConfigError, SenderSettings};
use crossdesk_channels::{ChatChannel, FacebookChannel, SignatureModes, TwitterChannel};
use crossdesk_core::agent::AgentDesk;
use crossdesk_core::agent_workflow::DeskWorkflow;
use crossdesk_core::events::EventQueue;
use crossdesk_core::health::InboundActivity;
use crossdesk_core::mail_signature::EmailThreadKey;
use crossdesk_core::mail_threading::EmailThreading;
use crossdesk_core::media::AttachmentCollector;
use crossdesk_core::notify::{NotificationSettings, Notifier};
use crossdesk_core::reply_window::ReplyCapabilities;
use crossdesk_core::settings::DeskSettings;
use crossdesk_core::writer::TicketWriter;
use crossdesk_core::{
    ChannelKind, Clock, EmailAddress, InboundQueue, Message, OutboundJob, RawArchive, SystemClock,
};
use crossdesk_http::chat_session::SessionKey;
use crossdesk_http::notifications::{notifications_router, NotificationsApiState};
use crossdesk_http::{
    agent_router, chat_router, events_router, web_router, webhook_router, AgentState, ChannelSlot,
    ChatApiSettings, ChatApiState, ConsoleAuth, EventsApiState, InMemoryRateLimiter, IngestState,
};
use secrecy::{ExposeSecret, SecretString};
use thiserror::Error;
use tracing::warn;

use crate::auth::JwtClaimsAuth;
use crate::events::EventSender;
use crate::metrics::EmfSignatureFailures;
use crate::ses::RawMailSource;
use crate::sqs::{InboundDecoder, OutboundDecoder};

/// Why a function cannot start.
#[derive(Debug, Error)]
pub enum DeployError {
    /// A setting is missing or invalid.
    #[error(transparent)]
    Config(#[from] crossdesk_aws::ConfigError),
    /// The secrets could not be loaded.
    #[error(transparent)]
    Secrets(#[from] crossdesk_aws::SecretsError),
    /// A reply sender's setting is invalid.
    #[error(transparent)]
    Sender(#[from] SenderConfigError),
    /// A plain setting is invalid.
    #[error("{name} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Why.
        reason: String,
    },
}

/// The webhook a function serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Webhook {
    /// `/webhooks/facebook`: Messenger, page comments, Instagram.
    Facebook,
    /// `/webhooks/twitter`: mentions and direct messages.
    Twitter,
    /// `/webhooks/chat`: the website chat backend.
    Chat,
}

/// The parts of a deployed Crossdesk, built once per cold start.
#[derive(Clone)]
pub struct Deployment {
    /// The SDK configuration (region, credentials, endpoint).
    pub sdk: SdkConfig,
    /// Table, queues, bucket.
    pub config: AwsConfig,
    /// The channel secrets.
    pub secrets: Arc<ChannelSecrets>,
    /// The ticket store.
    pub store: Arc<DynamoTicketStore>,
    /// The inbound FIFO queue.
    pub inbound: Arc<SqsQueue>,
    /// The outbound FIFO queue.
    pub outbound: Arc<SqsQueue>,
    /// The raw payload archive.
    pub archive: Arc<S3Archive>,
    /// Copies of attachments (`media/` in the bucket).
    pub media: Arc<S3MediaStore>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The outgoing events queue (`CROSSDESK_EVENTS_QUEUE_URL`); `None`: no events are emitted.
    pub events: Option<Arc<SqsQueue>>,
    /// Which endpoint has which event, and the events given up on (in the table).
    pub event_ledger: Arc<DynamoEventLedger>,
    /// The desk settings (`CROSSDESK_SETTINGS`, see [`crate::settings`]), read at start.
    pub desk_settings: Arc<DeskSettings>,
    /// The desk's workflow (SLAs, personal data, handoff texts, canned responses) these
    /// settings configure, built on first use ([`Deployment::desk`]): its regexes and templates
    /// cost the functions that never use it (the ingest functions) cold-start time.
    desk: Arc<OnceLock<Arc<DeskWorkflow>>>,
}

impl Deployment {
    /// Builds everything from the process environment (`CROSSDESK_*`, `AWS_*`).
    pub async fn load() -> Result<Self, DeployError> {
        let sdk = sdk_config().await;
        let mut config = AwsConfig::from_env()?;
        // Events are emitted only while the events webhook has an endpoint to post them to, or
        // agent notifications are on.
        let desk_settings = crate::settings::desk_settings()?;
        let notifying = desk_settings
            .notifications
            .clone()
            .with_overrides(|name| std::env::var(name).ok())
            .is_ok_and(|settings| settings.enabled);
        if !notifying
            && std::env::var("CROSSDESK_EVENTS_WEBHOOK_URL").map_or(true, |v| v.trim().is_empty())
        {
            config.events_queue_url = None;
        }
        let secrets_client = aws_sdk_secretsmanager::Client::new(&sdk);
        let secrets = ChannelSecrets::load(&secrets_client, config.secret_id.as_deref(), |name| {
            std::env::var(name).ok()
        })
        .await?;
        Self::assemble(sdk, config, secrets).with_desk_settings(&desk_settings)
    }

    /// The `[notifications]` desk settings with each `CROSSDESK_NOTIFY_*` variable set in `env`
    /// taking precedence.
    pub fn notification_settings(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<NotificationSettings, DeployError> {
        self.desk_settings
            .notifications
            .clone()
            .with_overrides(env)
            .map_err(|e| DeployError::Invalid {
                name: e.name,
                reason: e.reason,
            })
    }

    /// The same deployment with these desk settings. The workflow they configure is built on
    /// its first use, where a setting it cannot use is reported ([`Deployment::desk`]).
    pub fn with_desk_settings(mut self, settings: &DeskSettings) -> Result<Self, DeployError> {
        self.desk_settings = Arc::new(settings.clone());
        self.desk = Arc::default();
        Ok(self)
    }

    /// The desk's workflow, built from the desk settings on the first call (the agent API and
    /// the ticket writer ask for it at start). An unusable setting is an error naming
    /// `CROSSDESK_SETTINGS` and the setting.
    pub fn desk(&self) -> Result<Arc<DeskWorkflow>, DeployError> {
        if let Some(desk) = self.desk.get() {
            return Ok(desk.clone());
        }
        let desk = DeskWorkflow::from_settings(
            &self.desk_settings,
            self.store.clone(),
            self.store.clone(),
        )
        .map_err(|e| DeployError::Invalid {
            name: "CROSSDESK_SETTINGS",
            reason: e.to_string(),
        })?;
        Ok(self.desk.get_or_init(|| Arc::new(desk)).clone())
    }

    /// Builds the adapters over an SDK configuration, settings and secrets already loaded.
    pub fn assemble(sdk: SdkConfig, config: AwsConfig, secrets: ChannelSecrets) -> Self {
        let s3 = crossdesk_aws::s3::client(&sdk);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
        let store = Arc::new(DynamoTicketStore::new(dynamo.clone(), &config.table_name));
        Deployment {
            desk: Arc::default(),
            desk_settings: Arc::default(),
            events: config
                .events_queue_url
                .as_deref()
                .map(|url| Arc::new(SqsQueue::new(sqs.clone(), url, s3.clone(), &config.bucket))),
            event_ledger: Arc::new(DynamoEventLedger::new(dynamo.clone(), &config.table_name)),
            store,
            inbound: Arc::new(SqsQueue::new(
                sqs.clone(),
                &config.inbound_queue_url,
                s3.clone(),
                &config.bucket,
            )),
            outbound: Arc::new(SqsQueue::new(
                sqs,
                &config.outbound_queue_url,
                s3.clone(),
                &config.bucket,
            )),
            media: Arc::new(S3MediaStore::new(s3.clone(), &config.bucket)),
            archive: Arc::new(S3Archive::new(s3, &config.bucket)),
            clock: Arc::new(SystemClock),
            sdk,
            config,
            secrets: Arc::new(secrets),
        }
    }

    /// The router of one webhook function: that channel's routes only, in the signature mode
    /// of the process environment (`CROSSDESK_<CHANNEL>_SIGNATURE_MODE`).
    pub fn webhook_router(&self, webhook: Webhook) -> Result<axum::Router, DeployError> {
        self.webhook_router_with(webhook, |name| std::env::var(name).ok())
    }

    /// [`Deployment::webhook_router`] with settings read through `env`. A channel in signature
    /// report mode is logged as a warning here, at every cold start; its failed signatures are
    /// counted as the `CrossdeskSignatureFailures` metric (EMF).
    pub fn webhook_router_with(
        &self,
        webhook: Webhook,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<axum::Router, DeployError> {
        let modes = SignatureModes::from_lookup(env).map_err(|e| DeployError::Invalid {
            name: e.variable,
            reason: e.reason(),
        })?;
        let s = &self.secrets;
        let missing = |names: &[(&'static str, &Option<SecretString>)]| ChannelSlot::Unconfigured {
            missing: names
                .iter()
                .filter(|(_, v)| v.is_none())
                .map(|(n, _)| *n)
                .collect(),
        };
        let (name, slot) = match webhook {
            Webhook::Facebook => (
                "facebook",
                match (&s.facebook_app_secret, &s.facebook_verify_token) {
                    (Some(secret), Some(token)) => ChannelSlot::Ready(Arc::new(
                        FacebookChannel::new(secret.clone(), token.clone()),
                    )),
                    _ => missing(&[
                        ("facebook_app_secret", &s.facebook_app_secret),
                        ("facebook_verify_token", &s.facebook_verify_token),
                    ]),
                },
            ),
            Webhook::Twitter => (
                "twitter",
                match &s.twitter_consumer_secret {
                    Some(secret) => {
                        ChannelSlot::Ready(Arc::new(TwitterChannel::new(secret.clone())))
                    }
                    None => missing(&[("twitter_consumer_secret", &s.twitter_consumer_secret)]),
                },
            ),
            Webhook::Chat => (
                "chat",
                match &s.chat_secret {
                    Some(secret) => ChannelSlot::Ready(Arc::new(ChatChannel::new(secret.clone()))),
                    None => missing(&[("chat_secret", &s.chat_secret)]),
                },
            ),
        };
        modes.warn_if_reporting([name]);
        let state = IngestState::new(
            self.inbound.clone(),
            self.archive.clone(),
            self.clock.clone(),
        )
        .with_channel(name, slot)
        .with_signature_modes(modes)
        .with_signature_failure_metric(Arc::new(EmfSignatureFailures));
        Ok(webhook_router(state))
    }

    /// The `ingest-chat` function's router: the chat webhook and the website widget's public
    /// chat API (`/chat/api/…`), with settings from the process environment.
    pub fn chat_router(&self) -> Result<axum::Router, DeployError> {
        self.chat_router_with(|name| std::env::var(name).ok())
    }

    /// [`Deployment::chat_router`] with settings read through `env`. Visitor sessions are signed
    /// with the secret's `chat_session_key` (without it the chat API answers 503: a key made
    /// up per instance would not verify on the next one); `CROSSDESK_CHAT_ALLOWED_ORIGINS`
    /// limits the browsers' origins. Rate limits count per Lambda instance, a first line
    /// before API Gateway's route throttling.
    pub fn chat_router_with(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<axum::Router, DeployError> {
        let mut settings =
            ChatApiSettings::from_lookup(&env).map_err(|e| DeployError::Invalid {
                name: e.name,
                reason: e.reason,
            })?;
        settings.session_key = match &self.secrets.chat_session_key {
            Some(key) => {
                Some(
                    SessionKey::new(key.clone()).map_err(|reason| DeployError::Invalid {
                        name: "chat_session_key",
                        reason,
                    })?,
                )
            }
            None => {
                warn!("the secret has no chat_session_key: the website chat API answers 503");
                None
            }
        };
        let api = chat_router(ChatApiState::new(
            settings,
            self.store.clone(),
            self.inbound.clone(),
            self.archive.clone(),
            self.clock.clone(),
            Arc::new(InMemoryRateLimiter::new()),
        ))
        .layer(axum::middleware::from_fn(
            crate::client_ip::from_request_context,
        ));
        Ok(self.webhook_router_with(Webhook::Chat, env)?.merge(api))
    }

    /// The agent API router, trusting the JWT authorizer's claims, with settings from the
    /// process environment.
    pub fn agent_router(&self) -> Result<axum::Router, DeployError> {
        self.agent_router_with(|name| std::env::var(name).ok())
    }

    /// The agent API router, trusting the JWT authorizer's claims. Its reply windows follow
    /// `CROSSDESK_FACEBOOK_HUMAN_AGENT` (read through `env`), the reply sender's setting.
    pub fn agent_router_with(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<axum::Router, DeployError> {
        let channels = self.channels_router(&env);
        let desk = AgentDesk::new(
            self.store.clone(),
            self.outbound.clone(),
            self.clock.clone(),
        )
        .with_reply_capabilities(ReplyCapabilities {
            human_agent: human_agent_permission(&env),
        })
        .with_media(self.media.clone())
        .with_workflow(self.desk()?);
        let desk = match self.event_queue() {
            Some(events) => desk.with_events(events),
            None => desk,
        };
        Ok(agent_router(AgentState {
            desk,
            auth: Arc::new(JwtClaimsAuth),
        })
        .merge(events_router(EventsApiState {
            ledger: self.event_ledger.clone(),
            queue: self.event_queue(),
            auth: Arc::new(JwtClaimsAuth),
        }))
        .merge(channels)
        .merge(notifications_router(NotificationsApiState {
            workflow: self.store.clone(),
            auth: Arc::new(JwtClaimsAuth),
        }))
        // The console's files and its sign-in settings (public routes, no authorizer).
        .merge(web_router(
            ConsoleAuth::oidc_from_lookup(&env).unwrap_or(ConsoleAuth::Token),
        )))
    }

    /// The events queue as the port producers publish to.
    fn event_queue(&self) -> Option<Arc<dyn EventQueue>> {
        self.events
            .clone()
            .map(|queue| queue as Arc<dyn EventQueue>)
    }

    /// The event sender: posts each event to `CROSSDESK_EVENTS_WEBHOOK_URL` (read through
    /// `env`; a comma-separated list), signed with the secret's `events_webhook_secret`.
    pub fn event_sender(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<EventSender, DeployError> {
        let invalid = |name: &'static str, reason: String| DeployError::Invalid { name, reason };
        let endpoints =
            Endpoint::parse_list(&env("CROSSDESK_EVENTS_WEBHOOK_URL").unwrap_or_default())
                .map_err(|e| invalid("CROSSDESK_EVENTS_WEBHOOK_URL", e.to_string()))?;
        let notifications = self.notification_settings(&env)?;
        if endpoints.is_empty() && !notifications.enabled {
            return Err(invalid(
                "CROSSDESK_EVENTS_WEBHOOK_URL",
                "no endpoint is set (and CROSSDESK_NOTIFY_ENABLED is not true)".into(),
            ));
        }
        let secret = || {
            self.secrets.events_webhook_secret.clone().ok_or_else(|| {
                invalid(
                    "events_webhook_secret",
                    "the secret has no events_webhook_secret to sign events with".into(),
                )
            })
        };
        let queue = self.events.clone().ok_or_else(|| {
            invalid(
                "CROSSDESK_EVENTS_QUEUE_URL",
                "the events queue is not set".into(),
            )
        })?;
        let webhook = if endpoints.is_empty() {
            None
        } else {
            Some(
                EventsWebhook::new(
                    endpoints,
                    secret()?,
                    self.event_ledger.clone(),
                    self.clock.clone(),
                    EventRetryPolicy::default(),
                )
                .map_err(|e| invalid("events_webhook_secret", e.to_string()))?,
            )
        };
        let notifier = if notifications.enabled {
            let mut notifier = Notifier::new(
                notifications.clone(),
                self.store.clone(),
                self.store.clone(),
                self.event_ledger.clone(),
                self.clock.clone(),
            );
            match &notifications.from_address {
                Some(from) => {
                    notifier = notifier.with_mailer(Arc::new(SesNotificationMailer::new(
                        aws_sdk_sesv2::Client::new(&self.sdk),
                        from.clone(),
                    )));
                }
                None => warn!("notification mail is off: CROSSDESK_NOTIFY_FROM is not set"),
            }
            if let Some(url) = &notifications.webhook_url {
                // Signed with the events webhook's secret (one receiver-side secret to keep).
                let webhook = SignedNotificationWebhook::new(url, secret()?, self.clock.clone())
                    .map_err(|e| invalid("CROSSDESK_NOTIFY_WEBHOOK_URL", e.to_string()))?;
                notifier = notifier.with_webhook(Arc::new(webhook));
            }
            Some(notifier)
        } else {
            None
        };
        Ok(EventSender {
            decoder: queue,
            webhook,
            notifier,
        })
    }

    /// The ticket writer and the decoder of inbound queue bodies. The writer checks email
    /// references with the secret's `email_thread_key` and recognizes mail from
    /// `CROSSDESK_EMAIL_FROM` (read through `env`) as Crossdesk's own.
    pub fn ticket_writer(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(Arc<dyn InboundDecoder>, TicketWriter), DeployError> {
        let threading = EmailThreading {
            thread_key: self.email_thread_key()?,
            support_address: support_address(&env)?,
        };
        if threading.thread_key.is_none() {
            warn!("email_thread_key is not set: no email reference counts as signed");
        }
        let media = MediaSettings::from_lookup(&env).map_err(|e| DeployError::Invalid {
            name: e.name,
            reason: e.reason,
        })?;
        let secrets = &self.secrets;
        let fetcher = media
            .fetcher()
            .map_err(|e| DeployError::Invalid {
                name: "CROSSDESK_MEDIA_ALLOW_PRIVATE",
                reason: format!("cannot build the attachment downloader: {e}"),
            })?
            // X serves direct-message media only to the account's signed requests.
            .with_x_credentials(XMediaCredentials::from_parts(
                secrets.twitter_consumer_key.as_ref(),
                secrets.twitter_consumer_secret.as_ref(),
                secrets.twitter_access_token.as_ref(),
                secrets.twitter_access_secret.as_ref(),
            ));
        let writer = TicketWriter::new(self.store.clone())
            .with_triage(self.desk()?.triage.clone())
            .with_email_threading(threading)
            .with_inbound_activity(Arc::new(InboundActivity::new(self.store.clone())))
            .with_attachments(AttachmentCollector::new(
                Arc::new(fetcher),
                self.media.clone(),
                media.limits,
            ));
        let writer = match self.event_queue() {
            Some(events) => writer.with_events(events),
            None => writer,
        };
        Ok((self.inbound.clone(), writer))
    }

    /// The secret's `email_thread_key`, checked.
    fn email_thread_key(&self) -> Result<Option<EmailThreadKey>, DeployError> {
        self.secrets
            .email_thread_key
            .as_ref()
            .map(|key| EmailThreadKey::new(key.expose_secret().as_bytes()))
            .transpose()
            .map_err(|e| DeployError::Invalid {
                name: "email_thread_key",
                reason: e.to_string(),
            })
    }

    /// The reply sender and the decoder of outbound queue bodies. Sending credentials come from
    /// the secrets (email needs `email_thread_key`, which signs its references); platform URLs,
    /// `CROSSDESK_EMAIL_FROM` and `CROSSDESK_EMAIL_FROM_NAME` through `env`. A channel without
    /// credentials has no sender: its replies fail with `channel_not_configured`.
    pub fn reply_sender(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(Arc<dyn OutboundDecoder>, ReplyDelivery), DeployError> {
        let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let s = &self.secrets;
        let settings = SenderSettings {
            facebook_page_token: s.facebook_page_token.clone(),
            twitter_consumer_key: s.twitter_consumer_key.clone(),
            twitter_consumer_secret: s.twitter_consumer_secret.clone(),
            twitter_access_token: s.twitter_access_token.clone(),
            twitter_access_secret: s.twitter_access_secret.clone(),
            chat_secret: s.chat_secret.clone(),
            // `ingest-chat` serves the website widget: its sessions' replies need no callback.
            chat_widget: true,
            ..SenderSettings::default()
        }
        .with_urls_from(get)?;
        let mut delivery = ReplyDelivery::new(
            self.store.clone(),
            self.clock.clone(),
            RetryPolicy::default(),
        )
        .with_channel_health(self.store.clone());
        for (channel, sender) in settings.senders()? {
            delivery = delivery.with_sender(channel, sender);
        }
        if let Some(events) = self.event_queue() {
            delivery = delivery.with_events(events);
        }
        match (support_address(&env)?, self.email_thread_key()?) {
            (Some(support_address), Some(thread_key)) => {
                let sender = SesEmailSender::new(
                    aws_sdk_sesv2::Client::new(&self.sdk),
                    EmailReplySettings {
                        support_address,
                        display_name: get("CROSSDESK_EMAIL_FROM_NAME"),
                        thread_key,
                    },
                );
                delivery = delivery.with_sender(ChannelKind::Email, Arc::new(sender));
            }
            (Some(_), None) => {
                warn!(
                    "email replies are off: the secret has no email_thread_key to sign them with"
                );
            }
            (None, _) => {}
        }
        Ok((self.outbound.clone(), delivery))
    }

    /// What the email ingest needs: where SES stored the mail, the archive, the queue.
    pub fn mail_ingest(&self) -> MailIngest {
        let prefix = std::env::var("CROSSDESK_MAIL_PREFIX").unwrap_or_else(|_| "mail/".into());
        MailIngest {
            source: Arc::new(S3MailSource {
                client: crossdesk_aws::s3::client(&self.sdk),
                bucket: self.config.bucket.clone(),
                prefix,
            }),
            archive: self.archive.clone(),
            queue: self.inbound.clone(),
            clock: self.clock.clone(),
        }
    }
}

/// `CROSSDESK_EMAIL_FROM`, the support address, when set.
fn support_address(
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<EmailAddress>, DeployError> {
    env("CROSSDESK_EMAIL_FROM")
        .filter(|v| !v.trim().is_empty())
        .map(|from| {
            EmailAddress::parse(from.trim()).map_err(|e| DeployError::Invalid {
                name: "CROSSDESK_EMAIL_FROM",
                reason: e.to_string(),
            })
        })
        .transpose()
}

/// The parts of the email ingest function.
#[derive(Clone)]
pub struct MailIngest {
    /// Where SES stored the mail.
    pub source: Arc<dyn RawMailSource>,
    /// The raw archive.
    pub archive: Arc<dyn RawArchive>,
    /// The inbound queue.
    pub queue: Arc<dyn InboundQueue>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
}

/// The mails SES's S3 action stored under `<prefix><SES message id>`.
pub struct S3MailSource {
    /// The S3 client.
    pub client: aws_sdk_s3::Client,
    /// The bucket of the receipt rule's S3 action.
    pub bucket: String,
    /// The object key prefix of the S3 action.
    pub prefix: String,
}

#[async_trait]
impl RawMailSource for S3MailSource {
    async fn fetch(&self, ses_message_id: &str) -> Result<Vec<u8>, String> {
        let key = format!("{}{ses_message_id}", self.prefix);
        crossdesk_aws::s3::get_from(&self.client, &self.bucket, &key)
            .await?
            .ok_or_else(|| format!("s3://{}/{key} does not exist", self.bucket))
    }
}

#[async_trait]
impl InboundDecoder for SqsQueue {
    async fn decode(&self, body: &str) -> Result<Message, String> {
        self.decode_inbound(body).await.map_err(|e| e.to_string())
    }
}

#[async_trait]
impl OutboundDecoder for SqsQueue {
    async fn decode(&self, body: &str) -> Result<OutboundJob, String> {
        self.decode_outbound(body).await.map_err(|e| e.to_string())
    }

    async fn retry_later(&self, receipt_handle: &str, after: Duration) -> Result<(), String> {
        SqsQueue::retry_later(self, receipt_handle, after)
            .await
            .map_err(|e| e.to_string())
    }
}
