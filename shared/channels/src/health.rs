//! Channel health checks: ask each platform whether the channel still works, before a customer
//! notices that it does not.
//!
//! | check | channel | call | failing when |
//! | --- | --- | --- | --- |
//! | `page_token` | facebook, instagram | `GET {graph}/me?fields=id`, page token as Bearer | Graph rejects the token (190, 102, auth subcodes: the channel is marked for re-authorization) or refuses the call |
//! | `webhook_subscription` | facebook (instagram when subscribed) | `GET {graph}/{app-id}/subscriptions`, app token `app-id\|app-secret` as Bearer | no active `page` subscription with the `messages` field (`feed` missing is a warning) |
//! | `credentials` | twitter | `GET {api}/2/users/me`, OAuth 1.0a user context | X answers 401 (marked for re-authorization) or refuses the call |
//! | `webhook_subscription` | twitter | `POST {api}/oauth2/token` (client credentials), then `GET {api}/2/webhooks` with the app-only bearer token | no webhook registered, or none X still considers valid (a failed CRC); a tier without webhooks is a warning |
//! | `receipt_rule` | email | SES `DescribeActiveReceiptRuleSet` (AWS adapter) | no active rule set, or none of its rules enabled |
//! | `silence` | every configured channel | the stored last inbound event | no inbound event for longer than the silence period, during business hours |
//!
//! A check that cannot reach its platform (network, 5xx, rate limit) is a `warning`: the channel
//! may be fine. [`HealthChecker`] runs the checks, stores each result, marks or clears
//! re-authorization by the platform's error code, and reports failing checks to a
//! [`HealthMetrics`] sink (CloudWatch in AWS).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use chrono::{DateTime, Datelike, TimeDelta, Timelike, Utc, Weekday};
use crossdesk_core::health::{
    credential_group, ChannelFinding, ChannelHealthStore, ChannelSetup, CheckResult, CheckStatus,
    Reauthorization,
};
use crossdesk_core::{ChannelKind, Clock, StoreError};
use reqwest::header::AUTHORIZATION;
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use thiserror::Error;
use tracing::{info, warn};
use url::Url;

use crate::facebook_send::is_auth_error;
use crate::oauth1;
use crate::senders::SenderSettings;
use crate::twitter_send::DEFAULT_API_URL;

/// The longest part of a platform's error text kept in a reason.
const MAX_DETAIL_CHARS: usize = 300;

/// What one check found on one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// The channel.
    pub channel: ChannelKind,
    /// The check's name.
    pub check: &'static str,
    /// What it found.
    pub status: CheckStatus,
    /// In words an administrator can act on.
    pub reason: String,
    /// What the platform said about the channel's credentials, when the check used them.
    pub credentials: CredentialVerdict,
}

/// What a check learned about the channel's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialVerdict {
    /// The check did not use them, or could not tell.
    Unknown,
    /// The platform accepted them: a re-authorization mark made before the check is cleared.
    Accepted,
    /// The platform rejected them: the channel needs re-authorization.
    Rejected {
        /// The platform's error code (`graph_190_463`, `x_401`).
        code: String,
    },
}

impl Observation {
    /// An observation that says nothing about credentials.
    pub fn new(
        channel: ChannelKind,
        check: &'static str,
        status: CheckStatus,
        reason: String,
    ) -> Self {
        Observation {
            channel,
            check,
            status,
            reason,
            credentials: CredentialVerdict::Unknown,
        }
    }

    /// The same observation with what it learned about the credentials.
    pub fn with_credentials(mut self, verdict: CredentialVerdict) -> Self {
        self.credentials = verdict;
        self
    }
}

/// One health check of one or more channels.
#[async_trait]
pub trait HealthCheck: Send + Sync {
    /// Runs the check; never fails: an unreachable platform is an observation too.
    async fn run(&self) -> Vec<Observation>;
}

/// Where failing checks are counted (a CloudWatch metric in AWS, whose alarm pages someone).
#[async_trait]
pub trait HealthMetrics: Send + Sync {
    /// Reports the failing checks of one run (called on every run, with an empty list when
    /// nothing fails, so the metric drops back to zero).
    async fn report(&self, failing: &[(ChannelKind, String)]) -> Result<(), String>;
}

// ---- silence ----

/// A weekly window in UTC during which silence counts (e.g. Monday to Friday, 08:00 to 18:00).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessHours {
    /// The days it applies to.
    pub days: Vec<Weekday>,
    /// The first hour (0 to 23).
    pub start_hour: u32,
    /// The hour it ends (1 to 24, exclusive).
    pub end_hour: u32,
}

/// Why a business hours setting cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("`{value}` is not business hours like `mon-fri 08-18`: {reason}")]
pub struct BusinessHoursError {
    value: String,
    reason: String,
}

impl BusinessHours {
    /// Parses `mon-fri 08-18`, `mon,wed,fri 9-17` or `sun-sat 0-24` (hours in UTC, the end
    /// exclusive).
    pub fn parse(value: &str) -> Result<Self, BusinessHoursError> {
        let fail = |reason: &str| BusinessHoursError {
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let (days, hours) = value
            .trim()
            .split_once(char::is_whitespace)
            .ok_or_else(|| fail("give days, a space, and hours"))?;
        let day = |name: &str| -> Result<Weekday, BusinessHoursError> {
            name.trim()
                .parse::<Weekday>()
                .map_err(|_| fail(&format!("`{name}` is not a weekday")))
        };
        let mut list = Vec::new();
        for part in days.split(',') {
            match part.split_once('-') {
                Some((from, to)) => {
                    let (mut d, to) = (day(from)?, day(to)?);
                    list.push(d);
                    while d != to {
                        d = d.succ();
                        list.push(d);
                    }
                }
                None => list.push(day(part)?),
            }
        }
        let (start, end) = hours
            .trim()
            .split_once('-')
            .ok_or_else(|| fail("hours are `start-end`"))?;
        let hour = |h: &str| {
            h.trim()
                .parse::<u32>()
                .map_err(|_| fail("hours are numbers"))
        };
        let (start_hour, end_hour) = (hour(start)?, hour(end)?);
        if start_hour >= end_hour || end_hour > 24 {
            return Err(fail("hours run from 0 to 24, start before end"));
        }
        Ok(BusinessHours {
            days: list,
            start_hour,
            end_hour,
        })
    }

    /// Whether `at` falls inside the window.
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.days.contains(&at.weekday())
            && at.hour() >= self.start_hour
            && at.hour() < self.end_hour
    }
}

/// When a channel's silence is a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SilencePolicy {
    /// How long without an inbound event is too long (`CROSSDESK_HEALTH_SILENCE_HOURS`, default
    /// 24 h).
    pub after: TimeDelta,
    /// Only judged inside these hours (`CROSSDESK_HEALTH_BUSINESS_HOURS`); always when `None`.
    pub business_hours: Option<BusinessHours>,
}

impl Default for SilencePolicy {
    fn default() -> Self {
        SilencePolicy {
            after: TimeDelta::hours(24),
            business_hours: None,
        }
    }
}

impl SilencePolicy {
    /// The silence check's result for a channel whose last inbound event was at `last`.
    pub fn judge(
        &self,
        channel: ChannelKind,
        last: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Observation {
        let hours = |d: TimeDelta| {
            let h = d.num_hours();
            if h >= 1 {
                format!("{h} h")
            } else {
                format!("{} min", d.num_minutes())
            }
        };
        let (status, reason) = match last {
            None => (
                CheckStatus::Ok,
                "no inbound event recorded yet; silence is watched from the first one".to_string(),
            ),
            Some(last) if now - last <= self.after => (
                CheckStatus::Ok,
                format!("last inbound event {} ago", hours(now - last)),
            ),
            Some(_)
                if self
                    .business_hours
                    .as_ref()
                    .is_some_and(|b| !b.contains(now)) =>
            {
                (
                    CheckStatus::Ok,
                    "quiet, but outside business hours".to_string(),
                )
            }
            Some(last) => (
                CheckStatus::Failing,
                format!(
                    "no inbound event for {} (more than {}): check that the platform still \
                     delivers to the webhook (subscription, app mode, callback URL)",
                    hours(now - last),
                    hours(self.after)
                ),
            ),
        };
        Observation::new(channel, "silence", status, reason)
    }
}

// ---- the runner ----

/// Runs the checks of a deployment and records what they find.
pub struct HealthChecker {
    store: Arc<dyn ChannelHealthStore>,
    checks: Vec<Arc<dyn HealthCheck>>,
    watched: Vec<ChannelKind>,
    silence: SilencePolicy,
    clock: Arc<dyn Clock>,
    metrics: Option<Arc<dyn HealthMetrics>>,
}

impl HealthChecker {
    /// A checker recording into `store`, watching the silence of the `watched` channels (the
    /// configured ones).
    pub fn new(
        store: Arc<dyn ChannelHealthStore>,
        watched: Vec<ChannelKind>,
        silence: SilencePolicy,
        clock: Arc<dyn Clock>,
    ) -> Self {
        HealthChecker {
            store,
            checks: Vec::new(),
            watched,
            silence,
            clock,
            metrics: None,
        }
    }

    /// Adds a check.
    pub fn with_check(mut self, check: Arc<dyn HealthCheck>) -> Self {
        self.checks.push(check);
        self
    }

    /// Reports failing checks to `metrics` after each run.
    pub fn with_metrics(mut self, metrics: Arc<dyn HealthMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Runs every check once, stores the results, marks or clears re-authorization, and
    /// reports the failing checks. Returns the results stored.
    pub async fn run(&self) -> Result<Vec<(ChannelKind, CheckResult)>, StoreError> {
        let started = self.clock.now();
        // One after another: a handful of calls, each bounded by the client's timeout.
        let mut observations: Vec<Observation> = Vec::new();
        for check in &self.checks {
            observations.extend(check.run().await);
        }
        for &channel in &self.watched {
            let state = self.store.channel_state(channel).await?;
            observations.push(
                self.silence
                    .judge(channel, state.last_inbound_at, self.clock.now()),
            );
        }
        let mut results = Vec::with_capacity(observations.len());
        for observation in observations {
            let result = CheckResult {
                check: observation.check.to_string(),
                status: observation.status,
                reason: observation.reason.clone(),
                checked_at: self.clock.now(),
            };
            self.store
                .record_check(observation.channel, &result)
                .await?;
            match &observation.credentials {
                CredentialVerdict::Unknown => {}
                CredentialVerdict::Accepted => {
                    if self
                        .store
                        .clear_reauthorization(observation.channel, started)
                        .await?
                    {
                        info!(channel = %observation.channel, "credentials work again: re-authorization mark cleared");
                    }
                }
                CredentialVerdict::Rejected { code } => {
                    warn!(channel = %observation.channel, %code, "the platform rejects the channel's credentials");
                    let mark = Reauthorization {
                        code: code.clone(),
                        reason: observation.reason.clone(),
                        at: result.checked_at,
                    };
                    self.store
                        .mark_reauthorization(observation.channel, &mark)
                        .await?;
                }
            }
            results.push((observation.channel, result));
        }
        let failing: Vec<(ChannelKind, String)> = results
            .iter()
            .filter(|(_, r)| r.status == CheckStatus::Failing)
            .map(|(channel, r)| (*channel, r.check.clone()))
            .collect();
        for (channel, check) in &failing {
            warn!(%channel, %check, "channel health check failing");
        }
        if let Some(metrics) = &self.metrics {
            if let Err(e) = metrics.report(&failing).await {
                warn!(error = %e, "cannot report the failing checks' metric");
            }
        }
        info!(
            checks = results.len(),
            failing = failing.len(),
            "channel health checked"
        );
        Ok(results)
    }
}

// ---- settings ----

/// The health check settings, the same variables for the local stack and the functions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSettings {
    /// `CROSSDESK_HEALTH_INTERVAL_SECS` (default 900; `0` turns the local stack's checks off;
    /// in AWS the schedule decides).
    pub interval: Duration,
    /// `CROSSDESK_HEALTH_SILENCE_HOURS` (default 24) and `CROSSDESK_HEALTH_BUSINESS_HOURS`
    /// (`mon-fri 08-18`, UTC; default: always).
    pub silence: SilencePolicy,
    /// `CROSSDESK_FACEBOOK_APP_ID`: the Meta app's id, for the webhook subscription check
    /// (skipped without it).
    pub facebook_app_id: Option<String>,
}

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings {
            interval: DEFAULT_INTERVAL,
            silence: SilencePolicy::default(),
            facebook_app_id: None,
        }
    }
}

/// How often the local stack checks its channels by default (as often as the AWS schedule).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// A health setting that cannot be used.
#[derive(Debug, Error)]
#[error("{name} is invalid: {reason}")]
pub struct HealthConfigError {
    /// The variable.
    pub name: &'static str,
    /// Why.
    pub reason: String,
}

impl HealthSettings {
    /// Reads the settings through `lookup` (empty values count as unset).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, HealthConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let number = |name: &'static str| -> Result<Option<u64>, HealthConfigError> {
            get(name)
                .map(|v| {
                    v.parse::<u64>().map_err(|_| HealthConfigError {
                        name,
                        reason: format!("`{v}` is not a whole number"),
                    })
                })
                .transpose()
        };
        let mut settings = HealthSettings::default();
        if let Some(secs) = number("CROSSDESK_HEALTH_INTERVAL_SECS")? {
            settings.interval = Duration::from_secs(secs);
        }
        if let Some(hours) = number("CROSSDESK_HEALTH_SILENCE_HOURS")? {
            if hours == 0 || hours > 24 * 365 {
                return Err(HealthConfigError {
                    name: "CROSSDESK_HEALTH_SILENCE_HOURS",
                    reason: "give 1 to 8760 hours".into(),
                });
            }
            settings.silence.after = TimeDelta::hours(hours as i64);
        }
        if let Some(hours) = get("CROSSDESK_HEALTH_BUSINESS_HOURS") {
            settings.silence.business_hours =
                Some(BusinessHours::parse(&hours).map_err(|e| HealthConfigError {
                    name: "CROSSDESK_HEALTH_BUSINESS_HOURS",
                    reason: e.to_string(),
                })?);
        }
        settings.facebook_app_id = get("CROSSDESK_FACEBOOK_APP_ID");
        if let Some(id) = &settings.facebook_app_id {
            if !id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HealthConfigError {
                    name: "CROSSDESK_FACEBOOK_APP_ID",
                    reason: "a Meta app id is a number".into(),
                });
            }
        }
        Ok(settings)
    }
}

// ---- a deployment's checks ----

/// A channel's setup from which of its settings are present: configured when every receiving
/// setting is there; a `replies_not_configured` warning when receiving works but a reply
/// setting is missing. Names are what the administrator sets (variables or secret keys).
pub fn channel_setup(
    channel: ChannelKind,
    receiving: &[(&str, bool)],
    replying: &[(&str, bool)],
) -> ChannelSetup {
    let absent = |settings: &[(&str, bool)]| -> Vec<String> {
        settings
            .iter()
            .filter(|(_, present)| !present)
            .map(|(name, _)| name.to_string())
            .collect()
    };
    let (no_receive, no_reply) = (absent(receiving), absent(replying));
    let mut missing = no_receive.clone();
    missing.extend(no_reply.iter().cloned());
    if !no_receive.is_empty() {
        let mut setup = ChannelSetup::not_configured(channel, no_receive);
        setup.missing = missing;
        return setup;
    }
    let mut setup = ChannelSetup::configured(channel);
    setup.missing = missing;
    if !no_reply.is_empty() {
        setup = setup.with_finding(ChannelFinding {
            check: "replies_not_configured".into(),
            status: CheckStatus::Warning,
            reason: format!(
                "messages arrive but agents cannot answer on this channel: set {}",
                no_reply.join(", ")
            ),
        });
    }
    setup
}

/// The platform checks the settings allow: the page token and (with the Meta app's id and
/// secret) the webhook subscription on Graph, the X account's credentials and (with the app's
/// consumer key and secret) its webhooks.
pub fn platform_checks(
    settings: &SenderSettings,
    facebook_app: Option<(&str, &SecretString)>,
    client: &reqwest::Client,
) -> Vec<Arc<dyn HealthCheck>> {
    let mut checks: Vec<Arc<dyn HealthCheck>> = Vec::new();
    let graph_url = settings.graph_base_url();
    if let Some(token) = &settings.facebook_page_token {
        checks.push(Arc::new(FacebookTokenCheck {
            client: client.clone(),
            graph_url: graph_url.clone(),
            page_token: token.clone(),
        }));
    }
    if let Some((app_id, app_secret)) = facebook_app {
        checks.push(Arc::new(FacebookSubscriptionCheck {
            client: client.clone(),
            graph_url,
            app_id: app_id.to_string(),
            app_secret: app_secret.clone(),
        }));
    }
    if let (Some(key), Some(secret), Some(token), Some(token_secret)) = (
        &settings.twitter_consumer_key,
        &settings.twitter_consumer_secret,
        &settings.twitter_access_token,
        &settings.twitter_access_secret,
    ) {
        checks.push(Arc::new(TwitterCredentialsCheck {
            client: client.clone(),
            api_url: settings
                .twitter_api_url
                .clone()
                .unwrap_or_else(|| Url::parse(DEFAULT_API_URL).expect("the default X URL")),
            consumer_key: key.clone(),
            consumer_secret: secret.clone(),
            access_token: token.clone(),
            access_secret: token_secret.clone(),
        }));
    }
    if let (Some(key), Some(secret)) = (
        &settings.twitter_consumer_key,
        &settings.twitter_consumer_secret,
    ) {
        checks.push(Arc::new(TwitterWebhookCheck {
            client: client.clone(),
            api_url: settings
                .twitter_api_url
                .clone()
                .unwrap_or_else(|| Url::parse(DEFAULT_API_URL).expect("the default X URL")),
            consumer_key: key.clone(),
            consumer_secret: secret.clone(),
        }));
    }
    checks
}

// ---- HTTP helpers ----

/// The HTTP client of the checks: 3 s to connect, 10 s in all, no redirects.
pub fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())
}

/// `base` with `path` appended (keeping the base's own path, such as `/v24.0`).
fn join(base: &Url, path: &str) -> Result<Url, String> {
    let mut url = base.clone();
    {
        let mut segments = url
            .path_segments_mut()
            .map_err(|_| format!("{base} cannot take a path"))?;
        segments.pop_if_empty();
        for segment in path.split('/') {
            segments.push(segment);
        }
    }
    Ok(url)
}

/// The answer of a check's call: status and body, or why none came.
async fn call(request: reqwest::RequestBuilder) -> Result<(StatusCode, Vec<u8>), String> {
    let response = request.send().await.map_err(|e| {
        // Never the URL: it may carry ids; the error's own text is enough.
        format!("the platform could not be reached ({})", e.without_url())
    })?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("the answer broke off ({})", e.without_url()))?;
    Ok((status, body.to_vec()))
}

fn cut(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= MAX_DETAIL_CHARS {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(MAX_DETAIL_CHARS).collect();
        cut.push('…');
        cut
    }
}

/// Graph's error envelope.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GraphErrorEnvelope {
    error: Option<GraphError>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GraphError {
    message: Option<String>,
    code: Option<i64>,
    error_subcode: Option<i64>,
}

/// A Graph error answer: its code (`graph_190_463`), Meta's words, and whether it is an
/// authentication error.
fn graph_failure(status: StatusCode, body: &[u8], secret: &str) -> (String, String, bool) {
    let error = serde_json::from_slice::<GraphErrorEnvelope>(body)
        .ok()
        .and_then(|e| e.error)
        .unwrap_or_default();
    let code = match (error.code, error.error_subcode) {
        (Some(c), Some(s)) => format!("graph_{c}_{s}"),
        (Some(c), None) => format!("graph_{c}"),
        (None, _) => format!("http_{}", status.as_u16()),
    };
    let auth = is_auth_error(error.code, error.error_subcode) || status == StatusCode::UNAUTHORIZED;
    let said = error
        .message
        .map(|m| m.replace(secret, "[redacted]"))
        .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
    (code, cut(&said), auth)
}

/// Whether a failed answer says nothing about the channel (the platform is busy or down).
fn passing(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

// ---- Facebook ----

/// `page_token`: the page token still opens the page (`GET {graph}/me?fields=id`).
pub struct FacebookTokenCheck {
    /// The HTTP client.
    pub client: reqwest::Client,
    /// Graph's base URL with its version (`https://graph.facebook.com/v24.0`).
    pub graph_url: Url,
    /// The page access token.
    pub page_token: SecretString,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GraphNode {
    id: Option<String>,
}

impl FacebookTokenCheck {
    async fn observe(&self) -> (CheckStatus, String, CredentialVerdict) {
        let url = match join(&self.graph_url, "me") {
            Ok(mut url) => {
                url.query_pairs_mut().append_pair("fields", "id");
                url
            }
            Err(e) => return (CheckStatus::Failing, e, CredentialVerdict::Unknown),
        };
        let token = self.page_token.expose_secret();
        let request = self
            .client
            .get(url)
            .header(AUTHORIZATION, format!("Bearer {token}"));
        let (status, body) = match call(request).await {
            Ok(answer) => answer,
            Err(e) => {
                return (
                    CheckStatus::Warning,
                    format!("could not check the page token: {e}"),
                    CredentialVerdict::Unknown,
                )
            }
        };
        if status.is_success() {
            let node: GraphNode = serde_json::from_slice(&body).unwrap_or_default();
            return match node.id {
                Some(id) => (
                    CheckStatus::Ok,
                    format!("the page token is valid (page {id})"),
                    CredentialVerdict::Accepted,
                ),
                None => (
                    CheckStatus::Warning,
                    "Graph answered without the page's id".into(),
                    CredentialVerdict::Unknown,
                ),
            };
        }
        let (code, said, auth) = graph_failure(status, &body, token);
        if auth {
            (
                CheckStatus::Failing,
                format!(
                    "Meta rejects the page token ({code}: {said}): reconnect the page and set a \
                     new page token"
                ),
                CredentialVerdict::Rejected { code },
            )
        } else if passing(status) {
            (
                CheckStatus::Warning,
                format!("could not check the page token: Meta answered {code} ({said})"),
                CredentialVerdict::Unknown,
            )
        } else {
            (
                CheckStatus::Failing,
                format!("Meta refuses the page token's call ({code}: {said})"),
                CredentialVerdict::Unknown,
            )
        }
    }
}

#[async_trait]
impl HealthCheck for FacebookTokenCheck {
    async fn run(&self) -> Vec<Observation> {
        let (status, reason, verdict) = self.observe().await;
        // Instagram answers with the same page token.
        credential_group(ChannelKind::Facebook)
            .iter()
            .map(|&channel| {
                Observation::new(channel, "page_token", status, reason.clone())
                    .with_credentials(verdict.clone())
            })
            .collect()
    }
}

/// `webhook_subscription`: the Meta app's webhook subscriptions
/// (`GET {graph}/{app-id}/subscriptions` with the app token).
pub struct FacebookSubscriptionCheck {
    /// The HTTP client.
    pub client: reqwest::Client,
    /// Graph's base URL with its version.
    pub graph_url: Url,
    /// The Meta app's id (`CROSSDESK_FACEBOOK_APP_ID`).
    pub app_id: String,
    /// The Meta app's secret.
    pub app_secret: SecretString,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Subscriptions {
    data: Vec<Subscription>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Subscription {
    object: String,
    active: bool,
    fields: Vec<SubscribedField>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SubscribedField {
    name: String,
}

impl FacebookSubscriptionCheck {
    fn judge(subscriptions: &Subscriptions) -> Vec<Observation> {
        let find = |object: &str| subscriptions.data.iter().find(|s| s.object == object);
        let has = |s: &Subscription, field: &str| s.fields.iter().any(|f| f.name == field);
        let check = "webhook_subscription";
        let mut out = Vec::new();
        let page = match find("page") {
            None => Observation::new(
                ChannelKind::Facebook,
                check,
                CheckStatus::Failing,
                "the Meta app has no webhook subscription for Page events: Meta delivers no \
                 messages or comments; add the Page subscription (callback URL and verify token) \
                 in the app dashboard"
                    .into(),
            ),
            Some(s) if !s.active => Observation::new(
                ChannelKind::Facebook,
                check,
                CheckStatus::Failing,
                "Meta has deactivated the app's Page webhook subscription (usually after the \
                 callback failed for hours): verify the callback URL again in the app dashboard"
                    .into(),
            ),
            Some(s) if !has(s, "messages") => Observation::new(
                ChannelKind::Facebook,
                check,
                CheckStatus::Failing,
                "the Page subscription lacks the `messages` field: Messenger messages are not \
                 delivered; subscribe the field in the app dashboard"
                    .into(),
            ),
            Some(s) if !has(s, "feed") => Observation::new(
                ChannelKind::Facebook,
                check,
                CheckStatus::Warning,
                "the Page subscription lacks the `feed` field: page comments are not delivered"
                    .into(),
            ),
            Some(_) => Observation::new(
                ChannelKind::Facebook,
                check,
                CheckStatus::Ok,
                "the Page webhook subscription is active".into(),
            ),
        };
        out.push(page);
        // Instagram is optional: judged only when the app subscribes to it.
        if let Some(s) = find("instagram") {
            out.push(if !s.active {
                Observation::new(
                    ChannelKind::Instagram,
                    check,
                    CheckStatus::Failing,
                    "Meta has deactivated the app's Instagram webhook subscription: verify the \
                     callback URL again in the app dashboard"
                        .into(),
                )
            } else if !has(s, "messages") {
                Observation::new(
                    ChannelKind::Instagram,
                    check,
                    CheckStatus::Failing,
                    "the Instagram subscription lacks the `messages` field: Instagram messages \
                     are not delivered"
                        .into(),
                )
            } else {
                Observation::new(
                    ChannelKind::Instagram,
                    check,
                    CheckStatus::Ok,
                    "the Instagram webhook subscription is active".into(),
                )
            });
        }
        out
    }
}

#[async_trait]
impl HealthCheck for FacebookSubscriptionCheck {
    async fn run(&self) -> Vec<Observation> {
        let fail = |status: CheckStatus, reason: String| {
            vec![Observation::new(
                ChannelKind::Facebook,
                "webhook_subscription",
                status,
                reason,
            )]
        };
        let url = match join(&self.graph_url, &format!("{}/subscriptions", self.app_id)) {
            Ok(url) => url,
            Err(e) => return fail(CheckStatus::Failing, e),
        };
        let app_token = format!("{}|{}", self.app_id, self.app_secret.expose_secret());
        let request = self
            .client
            .get(url)
            .header(AUTHORIZATION, format!("Bearer {app_token}"));
        let (status, body) = match call(request).await {
            Ok(answer) => answer,
            Err(e) => {
                return fail(
                    CheckStatus::Warning,
                    format!("could not check the webhook subscription: {e}"),
                )
            }
        };
        if status.is_success() {
            return match serde_json::from_slice::<Subscriptions>(&body) {
                Ok(subscriptions) => Self::judge(&subscriptions),
                Err(e) => fail(
                    CheckStatus::Warning,
                    format!("Graph's subscription list cannot be read: {e}"),
                ),
            };
        }
        let (code, said, auth) = graph_failure(status, &body, self.app_secret.expose_secret());
        if passing(status) {
            fail(
                CheckStatus::Warning,
                format!("could not check the webhook subscription: Meta answered {code} ({said})"),
            )
        } else if auth {
            // The app token is made of the app id and secret: one of them is wrong, which also
            // breaks the webhook's signature check.
            fail(
                CheckStatus::Failing,
                format!(
                    "Meta rejects the app id and secret ({code}: {said}): check \
                     CROSSDESK_FACEBOOK_APP_ID and the app secret"
                ),
            )
        } else {
            fail(
                CheckStatus::Failing,
                format!("Meta refuses the subscription list ({code}: {said})"),
            )
        }
    }
}

// ---- X ----

/// `credentials`: the account's user-context tokens still work (`GET {api}/2/users/me`).
pub struct TwitterCredentialsCheck {
    /// The HTTP client.
    pub client: reqwest::Client,
    /// X's API base (`https://api.x.com`).
    pub api_url: Url,
    /// The app's consumer key.
    pub consumer_key: SecretString,
    /// The app's consumer secret.
    pub consumer_secret: SecretString,
    /// The account's access token.
    pub access_token: SecretString,
    /// The account's access token secret.
    pub access_secret: SecretString,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct UsersMe {
    data: Option<XUser>,
    title: Option<String>,
    detail: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct XUser {
    username: Option<String>,
}

impl TwitterCredentialsCheck {
    async fn observe(&self) -> Observation {
        let obs = |status, reason: String| {
            Observation::new(ChannelKind::Twitter, "credentials", status, reason)
        };
        let url = match join(&self.api_url, "2/users/me") {
            Ok(url) => url,
            Err(e) => return obs(CheckStatus::Failing, e),
        };
        let credentials = oauth1::Credentials {
            consumer_key: self.consumer_key.expose_secret(),
            consumer_secret: self.consumer_secret.expose_secret(),
            token: self.access_token.expose_secret(),
            token_secret: self.access_secret.expose_secret(),
        };
        let authorization = oauth1::sign_now("GET", &url, &[], &credentials);
        let request = self.client.get(url).header(AUTHORIZATION, authorization);
        let (status, body) = match call(request).await {
            Ok(answer) => answer,
            Err(e) => {
                return obs(
                    CheckStatus::Warning,
                    format!("could not check the X credentials: {e}"),
                )
            }
        };
        let answer: UsersMe = serde_json::from_slice(&body).unwrap_or_default();
        let detail = cut(&answer
            .detail
            .or(answer.title)
            .unwrap_or_else(|| format!("HTTP {}", status.as_u16())));
        let code = format!("x_{}", status.as_u16());
        match status.as_u16() {
            200..=299 => match answer.data.and_then(|u| u.username) {
                Some(username) => obs(
                    CheckStatus::Ok,
                    format!("the X credentials are valid (@{username})"),
                )
                .with_credentials(CredentialVerdict::Accepted),
                None => obs(
                    CheckStatus::Warning,
                    "X answered without the account's username".into(),
                ),
            },
            401 => obs(
                CheckStatus::Failing,
                format!(
                    "X rejects the account's credentials ({code}: {detail}): re-authorize the X \
                     account and set new access tokens"
                ),
            )
            .with_credentials(CredentialVerdict::Rejected { code }),
            _ if passing(status) => obs(
                CheckStatus::Warning,
                format!("could not check the X credentials: X answered {code} ({detail})"),
            ),
            _ => obs(
                CheckStatus::Failing,
                format!("X refuses the account's calls ({code}: {detail}): check the app's access level and the account"),
            ),
        }
    }
}

#[async_trait]
impl HealthCheck for TwitterCredentialsCheck {
    async fn run(&self) -> Vec<Observation> {
        vec![self.observe().await]
    }
}

/// `webhook_subscription` on X: the app's webhooks (`GET {api}/2/webhooks`, with an app-only
/// bearer token from `POST {api}/oauth2/token`) include one X still considers valid.
pub struct TwitterWebhookCheck {
    /// The HTTP client.
    pub client: reqwest::Client,
    /// X's API base (`https://api.x.com`).
    pub api_url: Url,
    /// The app's consumer key.
    pub consumer_key: SecretString,
    /// The app's consumer secret.
    pub consumer_secret: SecretString,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BearerToken {
    token_type: Option<String>,
    access_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WebhookList {
    data: Vec<WebhookConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WebhookConfig {
    id: String,
    url: String,
    valid: bool,
}

impl TwitterWebhookCheck {
    /// X's problem text of a failed answer.
    fn detail(status: StatusCode, body: &[u8]) -> String {
        let answer: UsersMe = serde_json::from_slice(body).unwrap_or_default();
        cut(&answer
            .detail
            .or(answer.title)
            .unwrap_or_else(|| format!("HTTP {}", status.as_u16())))
    }

    async fn observe(&self) -> (CheckStatus, String) {
        let unreachable = |e: String| {
            (
                CheckStatus::Warning,
                format!("could not check the X webhook: {e}"),
            )
        };
        let (token_url, list_url) = match (
            join(&self.api_url, "oauth2/token"),
            join(&self.api_url, "2/webhooks"),
        ) {
            (Ok(t), Ok(l)) => (t, l),
            (Err(e), _) | (_, Err(e)) => return (CheckStatus::Failing, e),
        };
        // RFC 6749 client credentials: key and secret form-encoded, then Basic.
        let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            encode(self.consumer_key.expose_secret()),
            encode(self.consumer_secret.expose_secret())
        ));
        let request = self
            .client
            .post(token_url)
            .header(AUTHORIZATION, format!("Basic {basic}"))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded;charset=UTF-8",
            )
            .body("grant_type=client_credentials");
        let (status, body) = match call(request).await {
            Ok(answer) => answer,
            Err(e) => return unreachable(e),
        };
        if !status.is_success() {
            let detail = Self::detail(status, &body);
            return if passing(status) {
                unreachable(format!("X answered x_{} ({detail})", status.as_u16()))
            } else {
                (
                    CheckStatus::Failing,
                    format!(
                        "X rejects the app's consumer key and secret (x_{}: {detail}): the \
                         webhook's signatures cannot be checked either; set the app's current keys",
                        status.as_u16()
                    ),
                )
            };
        }
        let token: BearerToken = serde_json::from_slice(&body).unwrap_or_default();
        let Some(bearer) = token.access_token.filter(|_| {
            token
                .token_type
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case("bearer"))
        }) else {
            return unreachable("X's token answer has no bearer token".into());
        };
        let request = self
            .client
            .get(list_url)
            .header(AUTHORIZATION, format!("Bearer {bearer}"));
        let (status, body) = match call(request).await {
            Ok(answer) => answer,
            Err(e) => return unreachable(e),
        };
        if !status.is_success() {
            let detail = Self::detail(status, &body);
            return if passing(status) {
                unreachable(format!("X answered x_{} ({detail})", status.as_u16()))
            } else {
                // Webhooks need an API tier that has them (Pro, Enterprise).
                (
                    CheckStatus::Warning,
                    format!(
                        "X does not list the app's webhooks (x_{}: {detail}): the app's API \
                         tier may not include webhooks",
                        status.as_u16()
                    ),
                )
            };
        }
        let list: WebhookList = match serde_json::from_slice(&body) {
            Ok(list) => list,
            Err(e) => return unreachable(format!("X's webhook list cannot be read: {e}")),
        };
        if let Some(valid) = list.data.iter().find(|w| w.valid) {
            return (
                CheckStatus::Ok,
                format!("the X webhook {} is registered and valid", valid.url),
            );
        }
        match list.data.first() {
            None => (
                CheckStatus::Failing,
                "the X app has no webhook registered: X delivers no mentions or messages; \
                 register the webhook URL (POST /2/webhooks) and subscribe the account"
                    .into(),
            ),
            Some(w) => (
                CheckStatus::Failing,
                format!(
                    "X marked the webhook {} invalid (a failed CRC check; X stops delivering): \
                     check that it answers the CRC, then re-validate it (PUT /2/webhooks/{})",
                    w.url, w.id
                ),
            ),
        }
    }
}

#[async_trait]
impl HealthCheck for TwitterWebhookCheck {
    async fn run(&self) -> Vec<Observation> {
        let (status, reason) = self.observe().await;
        vec![Observation::new(
            ChannelKind::Twitter,
            "webhook_subscription",
            status,
            reason,
        )]
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use crossdesk_core::health::ChannelState;
    use crossdesk_embedded::SqliteStore;
    use serde_json::json;

    use super::*;
    use crate::fake_meta::{unreachable_url, Answer, FakeServer};

    const PAGE_TOKEN: &str = "EAAB-page-token";
    const APP_SECRET: &str = "app-secret-1";

    fn secret(v: &str) -> SecretString {
        SecretString::from(v.to_string())
    }

    fn token_check(server_url: Url) -> FacebookTokenCheck {
        FacebookTokenCheck {
            client: http_client().unwrap(),
            graph_url: server_url,
            page_token: secret(PAGE_TOKEN),
        }
    }

    #[tokio::test]
    async fn a_valid_page_token_is_ok_for_facebook_and_instagram() {
        let server = FakeServer::start(Answer::json(200, json!({"id": "104512345"}))).await;
        let observations = token_check(server.url("v21.0")).run().await;
        let request = server.only_request();
        assert_eq!(request.method, "GET");
        assert_eq!(request.path, "/v21.0/me");
        assert_eq!(request.query.as_deref(), Some("fields=id"));
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {PAGE_TOKEN}").as_str())
        );
        assert_eq!(observations.len(), 2);
        for (o, channel) in observations
            .iter()
            .zip([ChannelKind::Facebook, ChannelKind::Instagram])
        {
            assert_eq!(o.channel, channel);
            assert_eq!(o.status, CheckStatus::Ok, "{o:?}");
            assert_eq!(o.credentials, CredentialVerdict::Accepted);
            assert!(o.reason.contains("104512345"));
        }
    }

    #[tokio::test]
    async fn an_expired_page_token_fails_and_asks_for_reauthorization() {
        let server = FakeServer::start(Answer::json(
            400,
            json!({"error": {"message": "Error validating access token: Session has expired on Friday, 27-Nov-26 09:00:00 PST.", "type": "OAuthException", "code": 190, "error_subcode": 463, "fbtrace_id": "AbC"}}),
        ))
        .await;
        let observations = token_check(server.url("v21.0")).run().await;
        let o = &observations[0];
        assert_eq!(o.status, CheckStatus::Failing);
        assert_eq!(
            o.credentials,
            CredentialVerdict::Rejected {
                code: "graph_190_463".into()
            }
        );
        assert!(o.reason.contains("Session has expired"), "{}", o.reason);
        assert!(o.reason.contains("reconnect the page"), "{}", o.reason);
        assert!(!o.reason.contains(PAGE_TOKEN));
    }

    #[tokio::test]
    async fn an_unreachable_graph_is_a_warning_not_a_rejection() {
        let check = token_check(unreachable_url("v21.0").await);
        let o = &check.run().await[0];
        assert_eq!(o.status, CheckStatus::Warning);
        assert_eq!(o.credentials, CredentialVerdict::Unknown);
        let server = FakeServer::start(Answer::json(
            500,
            json!({"error": {"message": "An unexpected error has occurred.", "code": 2, "is_transient": true}}),
        ))
        .await;
        let o = &token_check(server.url("v21.0")).run().await[0];
        assert_eq!(o.status, CheckStatus::Warning, "{o:?}");
        assert_eq!(o.credentials, CredentialVerdict::Unknown);
    }

    fn subscription_check(server_url: Url) -> FacebookSubscriptionCheck {
        FacebookSubscriptionCheck {
            client: http_client().unwrap(),
            graph_url: server_url,
            app_id: "1234567890".into(),
            app_secret: secret(APP_SECRET),
        }
    }

    #[tokio::test]
    async fn an_active_page_subscription_is_ok_and_asks_with_the_app_token() {
        let server = FakeServer::start(Answer::json(
            200,
            json!({"data": [
                {"object": "page", "callback_url": "https://example.com/webhooks/facebook", "active": true,
                 "fields": [{"name": "messages", "version": "v21.0"}, {"name": "feed", "version": "v21.0"}]},
                {"object": "instagram", "callback_url": "https://example.com/webhooks/facebook", "active": true,
                 "fields": [{"name": "messages", "version": "v21.0"}, {"name": "comments", "version": "v21.0"}]}
            ]}),
        ))
        .await;
        let observations = subscription_check(server.url("v21.0")).run().await;
        let request = server.only_request();
        assert_eq!(request.path, "/v21.0/1234567890/subscriptions");
        assert_eq!(request.query, None, "no secret in the URL");
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer 1234567890|{APP_SECRET}").as_str())
        );
        let statuses: Vec<(ChannelKind, CheckStatus)> =
            observations.iter().map(|o| (o.channel, o.status)).collect();
        assert_eq!(
            statuses,
            [
                (ChannelKind::Facebook, CheckStatus::Ok),
                (ChannelKind::Instagram, CheckStatus::Ok)
            ]
        );
    }

    #[tokio::test]
    async fn a_missing_page_subscription_fails() {
        let server = FakeServer::start(Answer::json(200, json!({"data": []}))).await;
        let observations = subscription_check(server.url("v21.0")).run().await;
        assert_eq!(
            observations.len(),
            1,
            "Instagram is not judged when not subscribed"
        );
        let o = &observations[0];
        assert_eq!(
            (o.channel, o.status),
            (ChannelKind::Facebook, CheckStatus::Failing)
        );
        assert!(
            o.reason.contains("no webhook subscription for Page events"),
            "{}",
            o.reason
        );
    }

    #[tokio::test]
    async fn an_inactive_or_incomplete_subscription_is_named() {
        let subs = |active: bool, fields: &[&str]| Subscriptions {
            data: vec![Subscription {
                object: "page".into(),
                active,
                fields: fields
                    .iter()
                    .map(|f| SubscribedField {
                        name: f.to_string(),
                    })
                    .collect(),
            }],
        };
        let judged = |s: Subscriptions| {
            let o = FacebookSubscriptionCheck::judge(&s).remove(0);
            (o.status, o.reason)
        };
        let (status, reason) = judged(subs(false, &["messages", "feed"]));
        assert_eq!(status, CheckStatus::Failing);
        assert!(reason.contains("deactivated"), "{reason}");
        let (status, reason) = judged(subs(true, &["feed"]));
        assert_eq!(status, CheckStatus::Failing);
        assert!(reason.contains("`messages`"), "{reason}");
        let (status, reason) = judged(subs(true, &["messages"]));
        assert_eq!(status, CheckStatus::Warning);
        assert!(reason.contains("`feed`"), "{reason}");
    }

    fn x_check(server_url: Url) -> TwitterCredentialsCheck {
        TwitterCredentialsCheck {
            client: http_client().unwrap(),
            api_url: server_url,
            consumer_key: secret("ck-1"),
            consumer_secret: secret("cs-1"),
            access_token: secret("123-at"),
            access_secret: secret("as-1"),
        }
    }

    #[tokio::test]
    async fn valid_x_credentials_are_ok_and_signed_with_oauth1() {
        let server = FakeServer::start(Answer::json(
            200,
            json!({"data": {"id": "2244994945", "name": "Support", "username": "acme_support"}}),
        ))
        .await;
        let o = &x_check(server.url("")).run().await[0];
        let request = server.only_request();
        assert_eq!(
            (request.method.as_str(), request.path.as_str()),
            ("GET", "/2/users/me")
        );
        let auth = request.header("authorization").unwrap();
        assert!(auth.starts_with("OAuth "), "{auth}");
        assert!(auth.contains("oauth_consumer_key=\"ck-1\""), "{auth}");
        assert!(auth.contains("oauth_token=\"123-at\""), "{auth}");
        assert!(
            auth.contains("oauth_signature_method=\"HMAC-SHA1\""),
            "{auth}"
        );
        assert_eq!(o.status, CheckStatus::Ok);
        assert_eq!(o.credentials, CredentialVerdict::Accepted);
        assert!(o.reason.contains("@acme_support"));
    }

    #[tokio::test]
    async fn an_x_401_fails_and_asks_for_reauthorization() {
        let server = FakeServer::start(Answer::json(
            401,
            json!({"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}),
        ))
        .await;
        let o = &x_check(server.url("")).run().await[0];
        assert_eq!(o.status, CheckStatus::Failing);
        assert_eq!(
            o.credentials,
            CredentialVerdict::Rejected {
                code: "x_401".into()
            }
        );
        assert!(
            o.reason.contains("re-authorize the X account"),
            "{}",
            o.reason
        );
    }

    /// A fake X: `POST /oauth2/token` gives a bearer token, `GET /2/webhooks` the given list.
    async fn fake_x(
        webhooks: (u16, serde_json::Value),
    ) -> (Url, Arc<Mutex<Vec<(String, String)>>>) {
        use axum::routing::{get, post};
        let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let (token_seen, list_seen) = (seen.clone(), seen.clone());
        let app = axum::Router::new()
            .route(
                "/oauth2/token",
                post(move |headers: axum::http::HeaderMap, body: String| {
                    let seen = token_seen.clone();
                    async move {
                        let auth = headers["authorization"].to_str().unwrap().to_string();
                        seen.lock().unwrap().push((auth, body));
                        axum::Json(
                            json!({"token_type": "bearer", "access_token": "AAAA-app-bearer"}),
                        )
                    }
                }),
            )
            .route(
                "/2/webhooks",
                get(move |headers: axum::http::HeaderMap| {
                    let seen = list_seen.clone();
                    let (status, body) = webhooks.clone();
                    async move {
                        let auth = headers["authorization"].to_str().unwrap().to_string();
                        seen.lock().unwrap().push((auth, String::new()));
                        (
                            axum::http::StatusCode::from_u16(status).unwrap(),
                            axum::Json(body),
                        )
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, seen)
    }

    fn webhook_check(api_url: Url) -> TwitterWebhookCheck {
        TwitterWebhookCheck {
            client: http_client().unwrap(),
            api_url,
            consumer_key: secret("ck 1"),
            consumer_secret: secret("cs/1"),
        }
    }

    #[tokio::test]
    async fn a_valid_x_webhook_is_ok_asked_with_an_app_only_token() {
        let (url, seen) = fake_x((
            200,
            json!({"data": [{"created_at": "2026-11-01T10:00:00.000Z", "id": "1146654567674912769", "url": "https://help.example.com/webhooks/twitter", "valid": true}], "meta": {"result_count": 1}}),
        ))
        .await;
        let o = &webhook_check(url).run().await[0];
        assert_eq!(
            (o.channel, o.check, o.status),
            (
                ChannelKind::Twitter,
                "webhook_subscription",
                CheckStatus::Ok
            ),
            "{o:?}"
        );
        assert!(o
            .reason
            .contains("https://help.example.com/webhooks/twitter"));
        let seen = seen.lock().unwrap().clone();
        // Basic base64("ck+1:cs%2F1"): each part form-encoded first (RFC 6749 2.3.1).
        assert_eq!(
            seen[0],
            (
                "Basic Y2srMTpjcyUyRjE=".to_string(),
                "grant_type=client_credentials".to_string()
            )
        );
        assert_eq!(seen[1].0, "Bearer AAAA-app-bearer");
    }

    #[tokio::test]
    async fn a_missing_or_invalid_x_webhook_fails_and_a_tier_without_webhooks_warns() {
        let (url, _) = fake_x((200, json!({"meta": {"result_count": 0}}))).await;
        let o = &webhook_check(url).run().await[0];
        assert_eq!(o.status, CheckStatus::Failing);
        assert!(o.reason.contains("no webhook registered"), "{}", o.reason);

        let (url, _) = fake_x((
            200,
            json!({"data": [{"created_at": "2026-11-01T10:00:00.000Z", "id": "77", "url": "https://help.example.com/webhooks/twitter", "valid": false}]}),
        ))
        .await;
        let o = &webhook_check(url).run().await[0];
        assert_eq!(o.status, CheckStatus::Failing);
        assert!(
            o.reason.contains("invalid") && o.reason.contains("PUT /2/webhooks/77"),
            "{}",
            o.reason
        );

        let (url, _) = fake_x((
            403,
            json!({"title": "Client Forbidden", "type": "https://api.twitter.com/2/problems/client-forbidden", "detail": "This request must be made using an approved developer account that is enrolled in the requested endpoint.", "reason": "client-not-enrolled"}),
        ))
        .await;
        let o = &webhook_check(url).run().await[0];
        assert_eq!(o.status, CheckStatus::Warning, "{o:?}");
        assert!(o.reason.contains("tier"), "{}", o.reason);
    }

    #[test]
    fn settings_have_defaults_and_name_a_bad_variable() {
        let settings = HealthSettings::from_lookup(|_| None).unwrap();
        assert_eq!(settings, HealthSettings::default());
        assert_eq!(settings.interval, Duration::from_secs(900));
        assert_eq!(settings.silence.after, TimeDelta::hours(24));
        let vars = |name: &str| match name {
            "CROSSDESK_HEALTH_INTERVAL_SECS" => Some("0".to_string()),
            "CROSSDESK_HEALTH_SILENCE_HOURS" => Some("4".to_string()),
            "CROSSDESK_HEALTH_BUSINESS_HOURS" => Some("mon-fri 9-17".to_string()),
            "CROSSDESK_FACEBOOK_APP_ID" => Some(" 1234567890 ".to_string()),
            _ => None,
        };
        let settings = HealthSettings::from_lookup(vars).unwrap();
        assert_eq!(settings.interval, Duration::ZERO);
        assert_eq!(settings.silence.after, TimeDelta::hours(4));
        assert!(settings.silence.business_hours.is_some());
        assert_eq!(settings.facebook_app_id.as_deref(), Some("1234567890"));
        for (name, value) in [
            ("CROSSDESK_HEALTH_INTERVAL_SECS", "soon"),
            ("CROSSDESK_HEALTH_SILENCE_HOURS", "0"),
            ("CROSSDESK_HEALTH_BUSINESS_HOURS", "always"),
            ("CROSSDESK_FACEBOOK_APP_ID", "my-app"),
        ] {
            let err = HealthSettings::from_lookup(|n| (n == name).then(|| value.to_string()))
                .unwrap_err();
            assert_eq!(err.name, name);
        }
    }

    #[test]
    fn business_hours_parse_and_contain() {
        let hours = BusinessHours::parse("mon-fri 08-18").unwrap();
        assert_eq!(hours.days.len(), 5);
        // 2026-11-30 is a Monday.
        let monday = |h: u32| {
            DateTime::parse_from_rfc3339(&format!("2026-11-30T{h:02}:30:00Z"))
                .unwrap()
                .with_timezone(&Utc)
        };
        assert!(hours.contains(monday(8)));
        assert!(hours.contains(monday(17)));
        assert!(!hours.contains(monday(18)));
        assert!(!hours.contains(monday(7)));
        let sunday = monday(10) - TimeDelta::days(1);
        assert!(!hours.contains(sunday));
        assert_eq!(
            BusinessHours::parse("sat,sun 0-24").unwrap().days,
            [Weekday::Sat, Weekday::Sun]
        );
        assert!(BusinessHours::parse("fri-mon 10-20").unwrap().days.len() == 4);
        for bad in ["", "mon-fri", "mon-fri 18-08", "mon-fri 8-25", "funday 1-2"] {
            assert!(BusinessHours::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn silence_fails_after_the_period_only_in_business_hours() {
        let now = DateTime::parse_from_rfc3339("2026-11-30T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let policy = SilencePolicy::default();
        let judge = |p: &SilencePolicy, last: Option<DateTime<Utc>>, now| {
            p.judge(ChannelKind::Facebook, last, now).status
        };
        assert_eq!(judge(&policy, None, now), CheckStatus::Ok);
        assert_eq!(
            judge(&policy, Some(now - TimeDelta::hours(23)), now),
            CheckStatus::Ok
        );
        let o = policy.judge(ChannelKind::Facebook, Some(now - TimeDelta::hours(30)), now);
        assert_eq!(o.status, CheckStatus::Failing);
        assert!(
            o.reason.contains("no inbound event for 30 h"),
            "{}",
            o.reason
        );
        let office = SilencePolicy {
            business_hours: Some(BusinessHours::parse("mon-fri 08-18").unwrap()),
            ..SilencePolicy::default()
        };
        let saturday = now + TimeDelta::days(5);
        assert_eq!(
            judge(&office, Some(saturday - TimeDelta::hours(48)), saturday),
            CheckStatus::Ok
        );
        assert_eq!(
            judge(&office, Some(now - TimeDelta::hours(48)), now),
            CheckStatus::Failing
        );
    }

    /// A check answering from a list.
    struct Fixed(Vec<Observation>);

    #[async_trait]
    impl HealthCheck for Fixed {
        async fn run(&self) -> Vec<Observation> {
            self.0.clone()
        }
    }

    #[derive(Default)]
    struct Recorded(Mutex<Vec<Vec<(ChannelKind, String)>>>);

    #[async_trait]
    impl HealthMetrics for Recorded {
        async fn report(&self, failing: &[(ChannelKind, String)]) -> Result<(), String> {
            self.0.lock().unwrap().push(failing.to_vec());
            Ok(())
        }
    }

    #[tokio::test]
    async fn the_checker_stores_results_marks_and_clears_and_reports_failures() {
        let store = Arc::new(SqliteStore::in_memory().unwrap());
        let health: Arc<dyn ChannelHealthStore> = store.clone();
        let metrics = Arc::new(Recorded::default());
        let rejected = Observation::new(
            ChannelKind::Twitter,
            "credentials",
            CheckStatus::Failing,
            "X rejects the account's credentials".into(),
        )
        .with_credentials(CredentialVerdict::Rejected {
            code: "x_401".into(),
        });
        let checker = HealthChecker::new(
            health.clone(),
            vec![ChannelKind::Chat],
            SilencePolicy::default(),
            Arc::new(crossdesk_core::SystemClock),
        )
        .with_check(Arc::new(Fixed(vec![rejected.clone()])))
        .with_metrics(metrics.clone());
        let results = checker.run().await.unwrap();
        assert_eq!(results.len(), 2, "the X check and chat's silence");
        let twitter: ChannelState = health.channel_state(ChannelKind::Twitter).await.unwrap();
        assert_eq!(twitter.checks[0].status, CheckStatus::Failing);
        assert_eq!(twitter.reauthorization.as_ref().unwrap().code, "x_401");
        let chat = health.channel_state(ChannelKind::Chat).await.unwrap();
        assert_eq!(chat.checks[0].check, "silence");
        assert_eq!(
            *metrics.0.lock().unwrap(),
            [vec![(ChannelKind::Twitter, "credentials".to_string())]]
        );

        // The account is re-authorized: the next run clears the mark.
        let accepted = Observation::new(
            ChannelKind::Twitter,
            "credentials",
            CheckStatus::Ok,
            "valid".into(),
        )
        .with_credentials(CredentialVerdict::Accepted);
        let checker = HealthChecker::new(
            health.clone(),
            vec![],
            SilencePolicy::default(),
            Arc::new(crossdesk_core::SystemClock),
        )
        .with_check(Arc::new(Fixed(vec![accepted])))
        .with_metrics(metrics.clone());
        checker.run().await.unwrap();
        let twitter = health.channel_state(ChannelKind::Twitter).await.unwrap();
        assert_eq!(twitter.reauthorization, None);
        assert_eq!(twitter.checks[0].status, CheckStatus::Ok);
        assert_eq!(metrics.0.lock().unwrap().last().unwrap(), &vec![]);
    }
}
