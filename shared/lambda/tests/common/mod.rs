//! What the function tests share: a deployment on fresh resources in moto, the time the sample
//! events were signed, the sample events, and the records waiting on a queue.
//!
//! Each test file uses a part of it.
#![allow(dead_code)]

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsMessage;
use axum::body::Body;
use chrono::{DateTime, TimeZone, Utc};
use crossdesk_aws::{create_resources, sdk_config, ChannelSecrets, ResourceNames};
use crossdesk_core::Clock;
use crossdesk_lambda::deploy::Deployment;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use lambda_http::request::LambdaRequest;
use tower::ServiceExt;

/// A clock that stands still.
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// The time the signed sample requests were made (2026-11-20T10:00:00Z).
pub fn signed_at() -> DateTime<Utc> {
    Utc.timestamp_opt(1_795_168_800, 0).single().unwrap()
}

/// A sample event of `events/`, by path.
pub fn event_file(path: &str) -> Vec<u8> {
    let full = format!("{}/../../events/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// A deployment on fresh resources in moto (a table, queues and buckets of their own) with
/// these secrets.
pub async fn deployment_with(secrets: ChannelSecrets) -> Deployment {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run `make test` (it starts moto) or `scripts/moto` and export it"
    );
    let sdk = sdk_config().await;
    let prefix = format!("fn-{}", uuid::Uuid::now_v7().simple());
    let config = create_resources(&sdk, &ResourceNames::with_prefix(&prefix))
        .await
        .expect("resources created in moto");
    Deployment::assemble(sdk, config, secrets)
}

/// [`deployment_with`] these secrets, its clock standing at [`signed_at`].
pub async fn deployment_at_signing(secrets: ChannelSecrets) -> Deployment {
    let mut deployment = deployment_with(secrets).await;
    deployment.clock = Arc::new(FixedClock(signed_at()));
    deployment
}

/// The records waiting on a queue, as Lambda's SQS event source would hand them over.
pub async fn receive_records(d: &Deployment, queue_url: &str) -> Vec<SqsMessage> {
    let received = aws_sdk_sqs::Client::new(&d.sdk)
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap();
    received
        .messages
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            let mut record = SqsMessage::default();
            record.message_id = m.message_id.clone();
            record.receipt_handle = m.receipt_handle.clone();
            record.body = m.body.clone();
            for (k, v) in m.attributes.unwrap_or_default() {
                record.attributes.insert(k.as_str().to_string(), v);
            }
            record
        })
        .collect()
}

/// Runs an API Gateway v2 event through a router the way `lambda_http::run` does; the status
/// and the body.
pub async fn invoke(router: axum::Router, event: &[u8]) -> (u16, String) {
    let request: ApiGatewayV2httpRequest =
        serde_json::from_slice(event).expect("API Gateway v2 event");
    let request: lambda_http::Request = LambdaRequest::ApiGatewayV2(request).into();
    let (parts, body) = request.into_parts();
    let request = lambda_http::http::Request::from_parts(parts, Body::from(body.to_vec()));
    let response = router.oneshot(request).await.expect("router answers");
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}
