//! The event sender with agent notifications on and no integration endpoint, against moto: a
//! new ticket mails the subscribed agent through SES once, however often the queue delivers its
//! event; the workflow state (preferences, window claims) is the real DynamoDB store.
//!
//! Needs `AWS_ENDPOINT_URL` pointing at moto (`make test` starts it; or `scripts/moto`).

use aws_lambda_events::event::sqs::SqsEvent;
use crossdesk_aws::ChannelSecrets;
use crossdesk_core::workflow::{AgentPreferences, WorkflowStore};
use crossdesk_lambda::deploy::{Deployment, Webhook};
use crossdesk_lambda::events::send_events_batch;
use secrecy::SecretString;
use serde_json::Value;

mod common;
#[path = "../../../tests/common/moto_ses.rs"]
mod moto_ses;

use common::{deployment_at_signing, event_file, invoke, receive_records};

async fn deployment() -> Deployment {
    deployment_at_signing(ChannelSecrets {
        chat_secret: Some(SecretString::from("test-chat-secret".to_string())),
        email_thread_key: Some(SecretString::from(
            "test-email-thread-key-0123456789".to_string(),
        )),
        ..ChannelSecrets::default()
    })
    .await
}

/// The mail moto's SES keeps for one recipient.
async fn mail_to(to: &str) -> Vec<Value> {
    moto_ses::ses_sent(None)
        .await
        .into_iter()
        .filter(|m| m["kind"] == "Message" && m["destinations"]["ToAddresses"][0] == to)
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
    let (status, body) = invoke(
        d.webhook_router(Webhook::Chat).unwrap(),
        &event_file("aws/apigw-v2-chat-post.json"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
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
