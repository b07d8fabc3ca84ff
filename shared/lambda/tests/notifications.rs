//! The event sender with agent notifications on and no integration endpoint, against moto: a
//! new ticket mails the subscribed agent through SES once, however often the queue delivers its
//! event; the workflow state (preferences, window claims) is the real DynamoDB store.
//!
//! Needs `AWS_ENDPOINT_URL` pointing at moto (`make test` starts it; or `scripts/moto`).

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use axum::body::Body;
use chrono::{DateTime, TimeZone, Utc};
use crossdesk_aws::{create_resources, sdk_config, ChannelSecrets, ResourceNames};
use crossdesk_core::workflow::{AgentPreferences, WorkflowStore};
use crossdesk_core::Clock;
use crossdesk_lambda::deploy::{Deployment, Webhook};
use crossdesk_lambda::events::send_events_batch;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use lambda_http::request::LambdaRequest;
use secrecy::SecretString;
use serde_json::Value;
use tower::ServiceExt;

/// The time the signed sample requests were made (2026-11-20T10:00:00Z).
struct FixedClock(DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

fn event_file(path: &str) -> Vec<u8> {
    let full = format!("{}/../../events/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

async fn deployment() -> Deployment {
    std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL: run with moto (make test)");
    let sdk = sdk_config().await;
    let prefix = format!("fn-{}", uuid::Uuid::now_v7().simple());
    let config = create_resources(&sdk, &ResourceNames::with_prefix(&prefix))
        .await
        .expect("resources created in moto");
    let secrets = ChannelSecrets {
        chat_secret: Some(SecretString::from("test-chat-secret".to_string())),
        email_thread_key: Some(SecretString::from(
            "test-email-thread-key-0123456789".to_string(),
        )),
        ..ChannelSecrets::default()
    };
    let mut deployment = Deployment::assemble(sdk, config, secrets);
    deployment.clock = Arc::new(FixedClock(
        Utc.timestamp_opt(1_795_168_800, 0).single().unwrap(),
    ));
    deployment
}

async fn receive_records(d: &Deployment, queue_url: &str) -> Vec<SqsMessage> {
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

/// The mail moto's SES keeps for one recipient.
async fn mail_to(to: &str) -> Vec<Value> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    let dump: Value = reqwest::get(format!("{endpoint}/moto-api/data.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    dump["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m["destinations"]["ToAddresses"][0] == to)
        .collect()
}

#[tokio::test]
async fn a_new_ticket_mails_the_subscribed_agent_once() {
    let d = deployment().await;
    let suffix = uuid::Uuid::now_v7().simple().to_string();
    let from = format!("desk-{suffix}@notify.example");
    let agent = format!("agent-{suffix}@acme.example");
    aws_sdk_sesv2::Client::new(&d.sdk)
        .create_email_identity()
        .email_identity(&from)
        .send()
        .await
        .unwrap();
    d.store
        .save_agent_preferences(&AgentPreferences {
            agent_id: "a1".into(),
            email: Some(agent.clone()),
            events: ["ticket.created".to_string()].into(),
            teams: Default::default(),
        })
        .await
        .unwrap();
    let env = {
        let from = from.clone();
        move |name: &str| match name {
            "CROSSDESK_NOTIFY_ENABLED" => Some("true".to_string()),
            "CROSSDESK_NOTIFY_FROM" => Some(from.clone()),
            "CROSSDESK_CONSOLE_URL" => Some("https://desk.acme.example".to_string()),
            _ => None,
        }
    };
    let sender = d.event_sender(env).unwrap();
    assert!(sender.webhook.is_none() && sender.notifier.is_some());

    // A chat message through the webhook and the ticket writer emits two events.
    let request: ApiGatewayV2httpRequest =
        serde_json::from_slice(&event_file("aws/apigw-v2-chat-post.json")).unwrap();
    let request: lambda_http::Request = LambdaRequest::ApiGatewayV2(request).into();
    let (parts, body) = request.into_parts();
    let request = lambda_http::http::Request::from_parts(parts, Body::from(body.to_vec()));
    let response = d
        .webhook_router(Webhook::Chat)
        .unwrap()
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let inbound = receive_records(&d, &d.config.inbound_queue_url).await;
    let customer = d
        .inbound
        .decode_inbound(inbound[0].body.as_deref().unwrap())
        .await
        .unwrap();
    let (_, writer) = d.ticket_writer(|_| None).unwrap();
    writer.write(&customer).await.unwrap();

    let events_url = d.config.events_queue_url.clone().expect("an events queue");
    let records = receive_records(&d, &events_url).await;
    assert_eq!(records.len(), 2, "ticket.created and message.created");
    let mut event = SqsEvent::default();
    event.records = records.clone();
    let response = send_events_batch(event, &sender).await;
    assert!(response.batch_item_failures.is_empty());
    let mails = mail_to(&agent).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0]["source"], from.as_str());
    let subject = mails[0]["subject"].as_str().unwrap();
    assert!(subject.starts_with("[Crossdesk] New ticket: "), "{subject}");
    assert!(mails[0]["body"]
        .as_str()
        .unwrap()
        .contains("https://desk.acme.example/tickets/"));

    // The queue delivers both again: nobody is mailed twice.
    let mut event = SqsEvent::default();
    event.records = records;
    assert!(send_events_batch(event, &sender)
        .await
        .batch_item_failures
        .is_empty());
    assert_eq!(mail_to(&agent).await.len(), 1);
}
