//! The agent notifications webhook: each notification ([`crossdesk_core::notify`]) posted as
//! one signed JSON POST, in the integration webhook's wire format
//! ([`crate::events_webhook`]: same headers, same `v1=HMAC(<timestamp>.<body>)` signature).
//!
//! The body is [`Notification::webhook_payload`](crossdesk_core::notify::Notification): a
//! `text` a Slack incoming webhook shows as is, and the structured fields a Teams or chat-bot
//! relay can use. `X-Crossdesk-Event` is `notification` or `notification.digest`;
//! `X-Crossdesk-Delivery` is the notification id, the same on every retry.

use std::sync::Arc;

use async_trait::async_trait;
use crossdesk_core::notify::{NotificationWebhook, NotifySendError};
use crossdesk_core::Clock;
use reqwest::Client;
use secrecy::{ExposeSecret, SecretString};
use tracing::info;

use crate::events_webhook::{
    post_signed, webhook_client, Attempt, Endpoint, EventsConfigError, SignedPost,
};

/// Posts notifications to one endpoint, signed.
#[derive(Clone)]
pub struct SignedNotificationWebhook {
    client: Client,
    endpoint: Endpoint,
    secret: SecretString,
    clock: Arc<dyn Clock>,
}

impl SignedNotificationWebhook {
    /// A webhook to `url` (absolute http/https), signing with `secret` (not empty).
    pub fn new(
        url: &str,
        secret: SecretString,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, EventsConfigError> {
        if secret.expose_secret().is_empty() {
            return Err(EventsConfigError::EmptySecret);
        }
        Ok(SignedNotificationWebhook {
            client: webhook_client()?,
            endpoint: Endpoint::parse(url)?,
            secret,
            clock,
        })
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }
}

#[async_trait]
impl NotificationWebhook for SignedNotificationWebhook {
    async fn post(&self, id: &str, payload: &serde_json::Value) -> Result<(), NotifySendError> {
        let body = serde_json::to_vec(payload)
            .map_err(|e| NotifySendError::Permanent(format!("unserializable payload: {e}")))?;
        let kind = payload
            .get("type")
            .and_then(|t| t.as_str())
            .unwrap_or("notification");
        let post = SignedPost {
            kind,
            delivery_id: id,
            body: &body,
        };
        let endpoint = self.endpoint.display();
        match post_signed(
            &self.client,
            &self.endpoint,
            &self.secret,
            &post,
            self.clock.as_ref(),
        )
        .await
        {
            Attempt::Delivered { status } => {
                info!(
                    endpoint,
                    status,
                    notification_id = id,
                    "notification posted"
                );
                Ok(())
            }
            Attempt::Retry { reason, .. } => {
                Err(NotifySendError::Retryable(format!("{endpoint}: {reason}")))
            }
            Attempt::Permanent { reason, .. } => {
                Err(NotifySendError::Permanent(format!("{endpoint}: {reason}")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use axum::extract::{Request, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::Router;
    use chrono::Utc;
    use crossdesk_core::SystemClock;
    use serde_json::json;

    use super::*;
    use crate::events_webhook::{sign, USER_AGENT};

    const SECRET: &str = "whsec-notify";

    /// Method, path, headers and body of one request.
    type Received = (String, String, HeaderMap, Vec<u8>);

    #[derive(Clone)]
    struct Receiver {
        got: Arc<Mutex<Vec<Received>>>,
        status: u16,
        url: String,
    }

    async fn receive(State(r): State<Receiver>, request: Request) -> Response {
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap()
            .to_vec();
        r.got.lock().unwrap().push((
            parts.method.to_string(),
            parts.uri.path().to_string(),
            parts.headers,
            body,
        ));
        StatusCode::from_u16(r.status).unwrap().into_response()
    }

    async fn receiver(status: u16) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let r = Receiver {
            got: Arc::default(),
            status,
            url: format!("http://{}/hooks/slack", listener.local_addr().unwrap()),
        };
        let app = Router::new().fallback(receive).with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        r
    }

    fn payload() -> serde_json::Value {
        json!({
            "text": "*New ticket* on #K3F9Q2XA Broken",
            "id": "ntf_0123",
            "type": "notification",
            "ticket_id": "K3F9Q2XA",
            "recipients": ["agent-1"],
            "items": [{"type": "ticket.created", "text": "Alex: Broken"}],
        })
    }

    fn hook(url: &str) -> SignedNotificationWebhook {
        SignedNotificationWebhook::new(url, SecretString::from(SECRET), Arc::new(SystemClock))
            .unwrap()
    }

    #[tokio::test]
    async fn posts_one_signed_request_the_receiver_can_verify() {
        let r = receiver(200).await;
        hook(&r.url).post("ntf_0123", &payload()).await.unwrap();
        let got = r.got.lock().unwrap().clone();
        assert_eq!(got.len(), 1);
        let (method, path, headers, body) = &got[0];
        assert_eq!((method.as_str(), path.as_str()), ("POST", "/hooks/slack"));
        let h = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_string();
        assert_eq!(h("content-type"), "application/json");
        assert_eq!(h("user-agent"), USER_AGENT);
        assert_eq!(h("x-crossdesk-event"), "notification");
        assert_eq!(h("x-crossdesk-delivery"), "ntf_0123");
        let timestamp: i64 = h("x-crossdesk-timestamp").parse().unwrap();
        assert!((Utc::now().timestamp() - timestamp).abs() < 60);
        // What a receiver does: recompute over the exact bytes received.
        assert_eq!(
            h("x-crossdesk-signature"),
            sign(SECRET.as_bytes(), timestamp, body)
        );
        assert_ne!(
            h("x-crossdesk-signature"),
            sign(b"another secret", timestamp, body)
        );
        let received: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(received, payload());
        assert_eq!(received["text"], "*New ticket* on #K3F9Q2XA Broken");
    }

    #[tokio::test]
    async fn a_5xx_is_retryable_and_a_4xx_permanent() {
        let busy = receiver(503).await;
        assert!(matches!(
            hook(&busy.url).post("ntf_1", &payload()).await,
            Err(NotifySendError::Retryable(_))
        ));
        let gone = receiver(404).await;
        assert!(matches!(
            hook(&gone.url).post("ntf_1", &payload()).await,
            Err(NotifySendError::Permanent(_))
        ));
    }

    #[test]
    fn refuses_an_empty_secret_and_a_bad_url() {
        let clock = Arc::new(SystemClock);
        assert!(SignedNotificationWebhook::new(
            "https://hooks.example",
            SecretString::from(""),
            clock.clone()
        )
        .is_err());
        assert!(SignedNotificationWebhook::new("ftp://x", SecretString::from("s"), clock).is_err());
    }
}
