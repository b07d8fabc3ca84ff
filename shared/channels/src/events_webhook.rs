//! The integration webhook: posts each outgoing event to every configured endpoint, signed, with
//! a delivery id that stays the same across retries, retried with backoff, given up on into the
//! failed events (listed and replayed through the agent API), and delivered at most once per
//! endpoint when retries succeed.
//!
//! # Wire format
//!
//! `POST <endpoint>` with the event JSON `{"id","type","created_at","data"}` as body and:
//!
//! | header | value |
//! |---|---|
//! | `Content-Type` | `application/json` |
//! | `X-Crossdesk-Event` | the event type (`ticket.created`, `message.created`, `message.delivery_changed`) |
//! | `X-Crossdesk-Delivery` | `dlv_` + the first 128 bits of SHA-256(`<event id>\n<endpoint URL>`) in hex: the same on every retry of this event to this endpoint |
//! | `X-Crossdesk-Timestamp` | Unix seconds when this attempt was signed |
//! | `X-Crossdesk-Signature` | `v1=` + hex HMAC-SHA256(secret, `<timestamp>.<body>`) |
//!
//! A receiver recomputes the signature over the exact body bytes, compares in constant time,
//! rejects timestamps far from its clock (replays), and ignores an event id it has already
//! processed (the same event may arrive twice when two senders race or an answer is lost).
//!
//! # Outcomes
//!
//! `2xx` is delivered (recorded per event and endpoint: a redelivered event is not posted there
//! again). `429`, `408`, `5xx`, a timeout or a connection failure is retried with exponential
//! backoff (never sooner than `Retry-After`). Any other status (redirects are not followed) is
//! permanent. An event that still misses an endpoint after [`EventRetryPolicy::max_attempts`]
//! rounds, or that an endpoint refused for good, is kept as a [`FailedEvent`].

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use crossdesk_core::events::{EventId, EventLedger, FailedEndpoint, FailedEvent, OutgoingEvent};
use crossdesk_core::{Clock, StoreError};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::Client;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use thiserror::Error;
use tracing::{info, warn};
use url::Url;

use crate::signature::hmac_sha256_hex;

/// How long to wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for a whole answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest an event waits before its next round (SQS's longest visibility timeout).
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(12 * 60 * 60);
/// The `User-Agent` of every request.
pub const USER_AGENT: &str = "Crossdesk-Webhook/1";

/// An invalid events webhook setting.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum EventsConfigError {
    /// An endpoint is not an absolute `http` or `https` URL.
    #[error("`{0}` is not an http(s) URL")]
    InvalidUrl(String),
    /// Endpoints are set but no secret to sign with.
    #[error("events webhook endpoints are set but no secret to sign them with")]
    MissingSecret,
    /// The secret is empty.
    #[error("the events webhook secret is empty")]
    EmptySecret,
    /// The HTTP client could not be built (no TLS roots on this system).
    #[error("the events webhook's HTTP client cannot be built: {0}")]
    Client(String),
}

/// One endpoint events are posted to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    url: Url,
    key: String,
    display: String,
}

impl Endpoint {
    /// An endpoint from an absolute `http`/`https` URL.
    pub fn parse(raw: &str) -> Result<Self, EventsConfigError> {
        let url = Url::parse(raw.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| EventsConfigError::InvalidUrl(raw.trim().to_string()))?;
        let key = hex::encode(&Sha256::digest(url.as_str().as_bytes())[..16]);
        let mut display = url.clone();
        display.set_query(None);
        display.set_fragment(None);
        let _ = display.set_username("");
        let _ = display.set_password(None);
        Ok(Endpoint {
            display: display.to_string(),
            key,
            url,
        })
    }

    /// Endpoints from a comma-separated list (blank entries skipped).
    pub fn parse_list(list: &str) -> Result<Vec<Self>, EventsConfigError> {
        list.split(',')
            .filter(|part| !part.trim().is_empty())
            .map(Endpoint::parse)
            .collect()
    }

    /// The URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The key the ledger records deliveries under (hex of the URL's hash).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The URL without query string or credentials, for logs and the failed events list.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// The delivery id of an event to this endpoint: `dlv_` + the first 128 bits of
    /// SHA-256(`<event id>\n<URL>`) in hex. The same for every retry and replay.
    pub fn delivery_id(&self, event: &EventId) -> String {
        let mut hash = Sha256::new();
        hash.update(event.as_str().as_bytes());
        hash.update(b"\n");
        hash.update(self.url.as_str().as_bytes());
        format!("dlv_{}", hex::encode(&hash.finalize()[..16]))
    }
}

/// `v1=` + hex HMAC-SHA256(secret, `<timestamp>.<body>`): the `X-Crossdesk-Signature` value.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let timestamp = timestamp.to_string();
    format!(
        "v1={}",
        hmac_sha256_hex(secret, &[timestamp.as_bytes(), b".", body])
    )
}

/// What one POST came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// A `2xx`: the endpoint has the event.
    Delivered {
        /// The status.
        status: u16,
    },
    /// Worth trying again later.
    Retry {
        /// The status, when the endpoint answered.
        status: Option<u16>,
        /// How long the endpoint asked to wait (`Retry-After`).
        retry_after: Option<Duration>,
        /// What happened.
        reason: String,
    },
    /// The endpoint refused the event for good.
    Permanent {
        /// The status.
        status: u16,
        /// What happened.
        reason: String,
    },
}

/// Classifies an answer: `2xx` delivered; `408`, `429` and `5xx` retried (honouring
/// `Retry-After`, seconds or an HTTP date, relative to `now`); anything else permanent.
pub fn classify(status: u16, retry_after: Option<&str>, now: DateTime<Utc>) -> Attempt {
    match status {
        200..=299 => Attempt::Delivered { status },
        408 | 429 | 500..=599 => Attempt::Retry {
            status: Some(status),
            retry_after: retry_after.and_then(|v| parse_retry_after(v, now)),
            reason: format!("the endpoint answered {status}"),
        },
        300..=399 => Attempt::Permanent {
            status,
            reason: format!("the endpoint answered {status}, a redirect (not followed)"),
        },
        _ => Attempt::Permanent {
            status,
            reason: format!("the endpoint answered {status}"),
        },
    }
}

/// `Retry-After`: delta seconds, or an HTTP date (RFC 7231 IMF-fixdate, RFC 2822 parse).
fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (at.with_timezone(&Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// How an event is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRetryPolicy {
    /// The wait after the first failed round.
    pub base: Duration,
    /// The longest wait between rounds (a longer `Retry-After` is still honoured).
    pub cap: Duration,
    /// Rounds before an event still missing an endpoint is given up on.
    pub max_attempts: u32,
}

impl Default for EventRetryPolicy {
    /// 1 s, 2 s, 4 s, … capped at 30 minutes; given up on after 12 rounds (about 1.5 hours).
    fn default() -> Self {
        EventRetryPolicy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(30 * 60),
            max_attempts: 12,
        }
    }
}

impl EventRetryPolicy {
    /// The wait after round `attempt` (from 1) failed: `base · 2^(attempt-1)` capped, never
    /// shorter than `retry_after`, never longer than [`MAX_RETRY_DELAY`].
    pub fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.cap);
        exp.max(retry_after.unwrap_or_default())
            .min(MAX_RETRY_DELAY)
    }
}

/// What became of one round of an event.
#[derive(Debug, Clone, PartialEq)]
pub enum EventOutcome {
    /// Every endpoint has it (now or from an earlier round).
    Delivered,
    /// Some endpoint should be tried again after this long; the others have it.
    RetryLater {
        /// The wait.
        after: Duration,
    },
    /// Given up on: kept in the ledger as failed, for replay.
    Failed(FailedEvent),
}

/// Posts outgoing events to the configured endpoints.
#[derive(Clone)]
pub struct EventsWebhook {
    client: Client,
    endpoints: Arc<Vec<Endpoint>>,
    secret: SecretString,
    ledger: Arc<dyn EventLedger>,
    clock: Arc<dyn Clock>,
    policy: EventRetryPolicy,
}

impl EventsWebhook {
    /// A sender to `endpoints`, signing with `secret`, recording in `ledger`.
    pub fn new(
        endpoints: Vec<Endpoint>,
        secret: SecretString,
        ledger: Arc<dyn EventLedger>,
        clock: Arc<dyn Clock>,
        policy: EventRetryPolicy,
    ) -> Result<Self, EventsConfigError> {
        if secret.expose_secret().is_empty() {
            return Err(EventsConfigError::EmptySecret);
        }
        let client = webhook_client()?;
        Ok(EventsWebhook {
            client,
            endpoints: Arc::new(endpoints),
            secret,
            ledger,
            clock,
            policy,
        })
    }

    /// The endpoints.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The retry policy.
    pub fn policy(&self) -> EventRetryPolicy {
        self.policy
    }

    /// One round of an event: posts it to each endpoint that does not have it yet. `attempt`
    /// counts the rounds (from 1; the queue's receive count). A store failure leaves the round
    /// to be repeated (endpoints recorded as delivered are skipped then).
    #[tracing::instrument(skip_all, fields(event_id = %event.id, event_type = %event.kind, attempt))]
    pub async fn deliver(
        &self,
        event: &OutgoingEvent,
        attempt: u32,
    ) -> Result<EventOutcome, StoreError> {
        let body = event.to_body();
        let mut retry: Vec<(FailedEndpoint, Option<Duration>)> = Vec::new();
        let mut refused: Vec<FailedEndpoint> = Vec::new();
        for endpoint in self.endpoints.iter() {
            if self.ledger.is_delivered(&event.id, endpoint.key()).await? {
                continue;
            }
            let failed = |status: Option<u16>, reason: String| FailedEndpoint {
                endpoint: endpoint.display().to_string(),
                delivery_id: endpoint.delivery_id(&event.id),
                status,
                reason,
            };
            match self.post(endpoint, event, &body).await {
                Attempt::Delivered { status } => {
                    self.ledger
                        .record_delivered(&event.id, endpoint.key(), self.clock.now())
                        .await?;
                    info!(endpoint = endpoint.display(), status, "event delivered");
                }
                Attempt::Retry {
                    status,
                    retry_after,
                    reason,
                } => {
                    warn!(endpoint = endpoint.display(), %reason, "event delivery will be retried");
                    retry.push((failed(status, reason), retry_after));
                }
                Attempt::Permanent { status, reason } => {
                    warn!(endpoint = endpoint.display(), %reason, "event refused for good");
                    refused.push(failed(Some(status), reason));
                }
            }
        }
        if retry.is_empty() && refused.is_empty() {
            return Ok(EventOutcome::Delivered);
        }
        if !retry.is_empty() && attempt < self.policy.max_attempts {
            let after = retry
                .iter()
                .map(|(_, retry_after)| self.policy.backoff(attempt, *retry_after))
                .max()
                .unwrap_or(self.policy.base);
            return Ok(EventOutcome::RetryLater { after });
        }
        let mut endpoints = refused;
        endpoints.extend(retry.into_iter().map(|(mut failed, _)| {
            failed.reason = format!("gave up after {attempt} attempts: {}", failed.reason);
            failed
        }));
        let failed = FailedEvent {
            event: event.clone(),
            endpoints,
            attempts: attempt,
            failed_at: self.clock.now(),
        };
        self.ledger.record_failed(&failed).await?;
        warn!(
            endpoints = failed.endpoints.len(),
            "event given up on; kept for replay"
        );
        Ok(EventOutcome::Failed(failed))
    }

    /// One signed POST.
    async fn post(&self, endpoint: &Endpoint, event: &OutgoingEvent, body: &[u8]) -> Attempt {
        post_signed(
            &self.client,
            endpoint,
            &self.secret,
            &SignedPost {
                kind: event.kind.as_str(),
                delivery_id: &endpoint.delivery_id(&event.id),
                body,
            },
            self.clock.as_ref(),
        )
        .await
    }
}

/// The HTTP client of signed webhook POSTs: short timeouts, no redirects, [`USER_AGENT`].
pub fn webhook_client() -> Result<Client, EventsConfigError> {
    Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT)
        .build()
        .map_err(|e| EventsConfigError::Client(e.to_string()))
}

/// What one signed POST carries besides the signature headers.
#[derive(Debug, Clone, Copy)]
pub struct SignedPost<'a> {
    /// The `X-Crossdesk-Event` value.
    pub kind: &'a str,
    /// The `X-Crossdesk-Delivery` value (the same on every retry).
    pub delivery_id: &'a str,
    /// The exact JSON bytes posted and signed.
    pub body: &'a [u8],
}

/// One signed POST in the wire format above (timestamp and signature of `clock`'s now), its
/// answer classified by [`classify`]. Shared by the integration webhook and the agent
/// notifications webhook.
pub async fn post_signed(
    client: &Client,
    endpoint: &Endpoint,
    secret: &SecretString,
    post: &SignedPost<'_>,
    clock: &dyn Clock,
) -> Attempt {
    let timestamp = clock.now().timestamp();
    let signature = sign(secret.expose_secret().as_bytes(), timestamp, post.body);
    let answer = client
        .post(endpoint.url().clone())
        .header("content-type", "application/json")
        .header("x-crossdesk-event", post.kind)
        .header("x-crossdesk-delivery", post.delivery_id)
        .header("x-crossdesk-timestamp", timestamp.to_string())
        .header("x-crossdesk-signature", signature)
        .body(post.body.to_vec())
        .send()
        .await;
    match answer {
        Ok(answer) => {
            let retry_after = header(answer.headers(), RETRY_AFTER.as_str());
            classify(
                answer.status().as_u16(),
                retry_after.as_deref(),
                clock.now(),
            )
        }
        Err(e) => Attempt::Retry {
            status: None,
            retry_after: None,
            reason: if e.is_timeout() {
                "the endpoint did not answer in time".to_string()
            } else {
                format!("the endpoint could not be reached: {}", without_url(&e))
            },
        },
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// A reqwest error's text without its URL (which may carry a token in its query).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "<endpoint>");
    }
    text
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use axum::extract::{Request, State};
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use axum::Router;
    use chrono::TimeZone;
    use crossdesk_core::events::EventType;
    use crossdesk_core::SystemClock;
    use crossdesk_embedded::{Database, SqliteEventLedger};
    use serde_json::json;

    use super::*;

    const SECRET: &str = "whsec-test";

    #[test]
    fn signs_a_known_vector() {
        // printf '1700000000.{"id":"evt_1"}' | openssl dgst -sha256 -hmac whsec-test
        assert_eq!(
            sign(SECRET.as_bytes(), 1_700_000_000, br#"{"id":"evt_1"}"#),
            "v1=ab0f82fa9f9ae7a690c998696fb56441e102a1546c14f8c2077dd1c92a67f65c"
        );
        assert_ne!(
            sign(SECRET.as_bytes(), 1_700_000_001, br#"{"id":"evt_1"}"#),
            sign(SECRET.as_bytes(), 1_700_000_000, br#"{"id":"evt_1"}"#)
        );
    }

    #[test]
    fn delivery_ids_are_stable_per_event_and_endpoint() {
        let event = EventId::parse("evt_0123456789abcdef0123456789abcdef").unwrap();
        let endpoint = Endpoint::parse("https://hooks.example.com/crossdesk").unwrap();
        // python3: hashlib.sha256(b"evt_…\nhttps://hooks.example.com/crossdesk").hexdigest()[:32]
        assert_eq!(
            endpoint.delivery_id(&event),
            "dlv_9444861bdc620b36984a7ffc3a2836c1"
        );
        assert_eq!(endpoint.delivery_id(&event), endpoint.delivery_id(&event));
        let other = Endpoint::parse("https://other.example.com/crossdesk").unwrap();
        assert_ne!(other.delivery_id(&event), endpoint.delivery_id(&event));
        let next = EventId::parse("evt_1123456789abcdef0123456789abcdef").unwrap();
        assert_ne!(endpoint.delivery_id(&next), endpoint.delivery_id(&event));
    }

    #[test]
    fn endpoints_parse_from_a_list_and_hide_their_query() {
        let list = Endpoint::parse_list(
            " https://a.example.com/hook?token=s3cret , http://user:pw@127.0.0.1:9000/x ,",
        )
        .unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].display(), "https://a.example.com/hook");
        assert_eq!(list[1].display(), "http://127.0.0.1:9000/x");
        assert_ne!(list[0].key(), list[1].key());
        assert!(Endpoint::parse_list("ftp://a.example.com").is_err());
        assert!(Endpoint::parse_list("not a url").is_err());
        assert!(Endpoint::parse_list("").unwrap().is_empty());
    }

    #[test]
    fn classifies_answers() {
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
        assert_eq!(classify(200, None, now), Attempt::Delivered { status: 200 });
        assert_eq!(classify(204, None, now), Attempt::Delivered { status: 204 });
        for status in [408, 429, 500, 502, 503, 504] {
            assert!(
                matches!(classify(status, None, now), Attempt::Retry { status: Some(s), .. } if s == status),
                "{status}"
            );
        }
        for status in [301, 302, 400, 401, 403, 404, 410, 422] {
            assert!(
                matches!(classify(status, None, now), Attempt::Permanent { status: s, .. } if s == status),
                "{status}"
            );
        }
        assert!(matches!(
            classify(429, Some("30"), now),
            Attempt::Retry { retry_after: Some(d), .. } if d == Duration::from_secs(30)
        ));
        assert!(matches!(
            classify(503, Some("Mon, 30 Nov 2026 12:02:00 GMT"), now),
            Attempt::Retry { retry_after: Some(d), .. } if d == Duration::from_secs(120)
        ));
        assert!(matches!(
            classify(503, Some("soon"), now),
            Attempt::Retry {
                retry_after: None,
                ..
            }
        ));
    }

    #[test]
    fn backoff_doubles_caps_and_honours_retry_after() {
        let policy = EventRetryPolicy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
            max_attempts: 5,
        };
        assert_eq!(policy.backoff(1, None), Duration::from_secs(1));
        assert_eq!(policy.backoff(3, None), Duration::from_secs(4));
        assert_eq!(policy.backoff(30, None), Duration::from_secs(60));
        assert_eq!(
            policy.backoff(1, Some(Duration::from_secs(90))),
            Duration::from_secs(90)
        );
        assert_eq!(
            policy.backoff(1, Some(Duration::from_secs(10 * 24 * 3600))),
            MAX_RETRY_DELAY
        );
    }

    /// One request the fake receiver got.
    #[derive(Debug, Clone)]
    struct Got {
        method: String,
        path: String,
        headers: HeaderMap,
        body: Vec<u8>,
    }

    /// A scripted answer: the status and its headers.
    type Answer = (u16, Vec<(&'static str, &'static str)>);

    /// A receiver that records requests and answers from a script (the last answer repeats).
    #[derive(Clone)]
    struct Receiver {
        got: Arc<Mutex<Vec<Got>>>,
        answers: Arc<Mutex<Vec<Answer>>>,
        url: String,
    }

    impl Receiver {
        async fn start(answers: Vec<Answer>) -> Receiver {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let receiver = Receiver {
                got: Arc::default(),
                answers: Arc::new(Mutex::new(answers)),
                url: format!("http://{}/hooks/crossdesk", listener.local_addr().unwrap()),
            };
            let app = Router::new().fallback(receive).with_state(receiver.clone());
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            receiver
        }

        fn got(&self) -> Vec<Got> {
            self.got.lock().unwrap().clone()
        }
    }

    async fn receive(State(receiver): State<Receiver>, request: Request) -> Response {
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap()
            .to_vec();
        receiver.got.lock().unwrap().push(Got {
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            headers: parts.headers,
            body,
        });
        let (status, headers) = {
            let mut answers = receiver.answers.lock().unwrap();
            if answers.len() > 1 {
                answers.remove(0)
            } else {
                answers[0].clone()
            }
        };
        let mut response = StatusCode::from_u16(status).unwrap().into_response();
        for (name, value) in headers {
            response.headers_mut().insert(name, value.parse().unwrap());
        }
        response
    }

    fn event() -> OutgoingEvent {
        OutgoingEvent {
            id: EventId::derive(EventType::MessageCreated, &["msg_test"]),
            kind: EventType::MessageCreated,
            created_at: Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap(),
            data: json!({"ticket_id": "K3F9Q2XA", "message": {"text": "Hi!"}}),
        }
    }

    fn ledger() -> Arc<SqliteEventLedger> {
        Arc::new(SqliteEventLedger::new(Database::in_memory().unwrap()))
    }

    fn webhook(urls: &[&str], ledger: Arc<SqliteEventLedger>) -> EventsWebhook {
        EventsWebhook::new(
            urls.iter().map(|u| Endpoint::parse(u).unwrap()).collect(),
            SecretString::from(SECRET),
            ledger,
            Arc::new(SystemClock),
            EventRetryPolicy {
                base: Duration::from_secs(1),
                cap: Duration::from_secs(60),
                max_attempts: 4,
            },
        )
        .unwrap()
    }

    /// Checks one request exactly: method, path, headers, signature recomputed, body.
    fn assert_signed_request(got: &Got, event: &OutgoingEvent, endpoint: &str) {
        assert_eq!(got.method, "POST");
        assert_eq!(got.path, "/hooks/crossdesk");
        let h = |name: &str| got.headers.get(name).unwrap().to_str().unwrap().to_string();
        assert_eq!(h("content-type"), "application/json");
        assert_eq!(h("user-agent"), USER_AGENT);
        assert_eq!(h("x-crossdesk-event"), "message.created");
        assert_eq!(
            h("x-crossdesk-delivery"),
            Endpoint::parse(endpoint).unwrap().delivery_id(&event.id)
        );
        let timestamp: i64 = h("x-crossdesk-timestamp").parse().unwrap();
        assert!((Utc::now().timestamp() - timestamp).abs() < 60);
        assert_eq!(
            h("x-crossdesk-signature"),
            sign(SECRET.as_bytes(), timestamp, &got.body)
        );
        assert_eq!(got.body, event.to_body());
        let body: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
        assert_eq!(body["id"], event.id.as_str());
        assert_eq!(body["type"], "message.created");
        assert_eq!(body["created_at"], "2026-11-30T12:00:00Z");
        assert_eq!(body["data"]["message"]["text"], "Hi!");
    }

    #[tokio::test]
    async fn retries_a_500_then_delivers_once() {
        let receiver = Receiver::start(vec![(500, vec![]), (200, vec![])]).await;
        let ledger = ledger();
        let hook = webhook(&[&receiver.url], ledger.clone());
        let event = event();
        assert_eq!(
            hook.deliver(&event, 1).await.unwrap(),
            EventOutcome::RetryLater {
                after: Duration::from_secs(1)
            }
        );
        assert_eq!(
            hook.deliver(&event, 2).await.unwrap(),
            EventOutcome::Delivered
        );
        // The queue delivers the event once more (or it was published twice): not posted again.
        assert_eq!(
            hook.deliver(&event, 3).await.unwrap(),
            EventOutcome::Delivered
        );
        let got = receiver.got();
        assert_eq!(got.len(), 2);
        for request in &got {
            assert_signed_request(request, &event, &receiver.url);
        }
        assert_eq!(
            got[0].headers["x-crossdesk-delivery"], got[1].headers["x-crossdesk-delivery"],
            "the same delivery id on every retry"
        );
        assert!(ledger.failed_events(10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn honours_retry_after() {
        let receiver = Receiver::start(vec![(429, vec![("retry-after", "7")])]).await;
        let hook = webhook(&[&receiver.url], ledger());
        assert_eq!(
            hook.deliver(&event(), 1).await.unwrap(),
            EventOutcome::RetryLater {
                after: Duration::from_secs(7)
            }
        );
    }

    #[tokio::test]
    async fn a_410_is_given_up_on_at_once_and_kept_for_replay() {
        let receiver = Receiver::start(vec![(410, vec![])]).await;
        let ledger = ledger();
        let hook = webhook(&[&receiver.url], ledger.clone());
        let event = event();
        let EventOutcome::Failed(failed) = hook.deliver(&event, 1).await.unwrap() else {
            panic!("a 410 is permanent");
        };
        assert_eq!(receiver.got().len(), 1);
        assert_signed_request(&receiver.got()[0], &event, &receiver.url);
        assert_eq!(failed.endpoints.len(), 1);
        assert_eq!(failed.endpoints[0].status, Some(410));
        assert_eq!(
            failed.endpoints[0].delivery_id,
            Endpoint::parse(&receiver.url)
                .unwrap()
                .delivery_id(&event.id)
        );
        let kept = ledger.failed_events(10).await.unwrap();
        assert_eq!(kept, vec![failed]);
        assert_eq!(kept[0].event, event);
    }

    #[tokio::test]
    async fn gives_up_after_max_attempts() {
        let receiver = Receiver::start(vec![(503, vec![])]).await;
        let ledger = ledger();
        let hook = webhook(&[&receiver.url], ledger.clone());
        for attempt in 1..4 {
            assert!(matches!(
                hook.deliver(&event(), attempt).await.unwrap(),
                EventOutcome::RetryLater { .. }
            ));
        }
        let EventOutcome::Failed(failed) = hook.deliver(&event(), 4).await.unwrap() else {
            panic!("the fourth round is the last");
        };
        assert!(
            failed.endpoints[0]
                .reason
                .contains("gave up after 4 attempts"),
            "{}",
            failed.endpoints[0].reason
        );
        assert_eq!(receiver.got().len(), 4);
        assert_eq!(ledger.failed_events(10).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn one_failing_endpoint_does_not_resend_to_the_others() {
        let good = Receiver::start(vec![(200, vec![])]).await;
        let bad = Receiver::start(vec![(500, vec![]), (500, vec![]), (204, vec![])]).await;
        let ledger = ledger();
        let hook = webhook(&[&good.url, &bad.url], ledger.clone());
        let event = event();
        assert!(matches!(
            hook.deliver(&event, 1).await.unwrap(),
            EventOutcome::RetryLater { .. }
        ));
        assert!(matches!(
            hook.deliver(&event, 2).await.unwrap(),
            EventOutcome::RetryLater { after } if after == Duration::from_secs(2)
        ));
        assert_eq!(
            hook.deliver(&event, 3).await.unwrap(),
            EventOutcome::Delivered
        );
        assert_eq!(good.got().len(), 1, "the good endpoint got it once");
        assert_eq!(bad.got().len(), 3);
        assert_signed_request(&good.got()[0], &event, &good.url);
        for request in bad.got() {
            assert_signed_request(&request, &event, &bad.url);
        }
        assert_ne!(
            good.got()[0].headers["x-crossdesk-delivery"],
            bad.got()[0].headers["x-crossdesk-delivery"]
        );
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_is_retried() {
        // A port nobody listens on: bind, learn the port, close.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        drop(listener);
        let hook = webhook(&[&url], ledger());
        assert!(matches!(
            hook.deliver(&event(), 1).await.unwrap(),
            EventOutcome::RetryLater { .. }
        ));
    }

    #[test]
    fn refuses_an_empty_secret() {
        assert!(matches!(
            EventsWebhook::new(
                vec![],
                SecretString::from(""),
                ledger(),
                Arc::new(SystemClock),
                EventRetryPolicy::default()
            ),
            Err(EventsConfigError::EmptySecret)
        ));
    }
}
