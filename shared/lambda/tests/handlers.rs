//! The functions' handlers, fed real event JSON (API Gateway v2, SQS, SES) against moto server:
//! the state afterwards is read back through the AWS SDK.
//!
//! Needs `AWS_ENDPOINT_URL` pointing at moto (`make test` starts it; or `scripts/moto`).

use std::sync::Arc;

use aws_lambda_events::event::ses::SimpleEmailEvent;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use chrono::Utc;
use crossdesk_aws::ChannelSecrets;
use crossdesk_channels::{Channel, FacebookChannel, VerifiedWebhook};
use crossdesk_core::{Message, RawArchive, TicketFilter, TicketStore};
use crossdesk_lambda::deploy::{Deployment, Webhook};
use crossdesk_lambda::ses::ingest_mail;
use crossdesk_lambda::sqs::{deliver_batch, write_batch};
use secrecy::SecretString;
use serde_json::{json, Value};

mod common;
#[path = "../../../tests/common/moto_ses.rs"]
mod moto_ses;

use common::{deployment_at_signing, event_file, invoke, receive_records, signed_at, FixedClock};

/// The email thread key of the test deployment's secret.
const EMAIL_THREAD_KEY: &str = "test-email-thread-key-0123456789";

/// A deployment on fresh resources in moto, with the test secrets of `events/aws/README.md`.
async fn deployment() -> Deployment {
    let secret = |s: &str| Some(SecretString::from(s.to_string()));
    deployment_at_signing(ChannelSecrets {
        facebook_app_secret: secret("test-facebook-app-secret"),
        facebook_verify_token: secret("test-verify-token"),
        twitter_consumer_secret: secret("test-twitter-consumer-secret"),
        chat_secret: secret("test-chat-secret"),
        email_thread_key: secret(EMAIL_THREAD_KEY),
        ..ChannelSecrets::default()
    })
    .await
}

/// Every message waiting on a queue, with its FIFO attributes (received and deleted).
async fn drain(d: &Deployment, queue_url: &str) -> Vec<(Message, String, String)> {
    let sqs = aws_sdk_sqs::Client::new(&d.sdk);
    let mut out = Vec::new();
    loop {
        let records = receive_records(d, queue_url).await;
        if records.is_empty() {
            return out;
        }
        for record in records {
            let get = |k: &str| record.attributes.get(k).cloned().unwrap_or_default();
            let message = d
                .inbound
                .decode_inbound(record.body.as_deref().unwrap())
                .await
                .unwrap();
            out.push((
                message,
                get("MessageGroupId"),
                get("MessageDeduplicationId"),
            ));
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(record.receipt_handle.clone().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn ingest_facebook_verifies_the_base64_body_and_queues_the_message() {
    let d = deployment().await;
    let router = d.webhook_router(Webhook::Facebook).unwrap();
    let (status, body) = invoke(router, &event_file("aws/apigw-v2-facebook-post.json")).await;
    assert_eq!(status, 200, "{body}");
    let queued = drain(&d, &d.config.inbound_queue_url).await;
    assert_eq!(queued.len(), 1);
    let (message, group, dedup) = &queued[0];
    assert_eq!(
        message.platform_message_id.as_deref(),
        Some("m_sample_text_0001")
    );
    assert_eq!(
        group,
        message.conversation.key(message.channel).unwrap().as_str()
    );
    assert_eq!(dedup, "facebook:m_sample_text_0001");
    // The raw body is archived, byte for byte.
    let raw = message.raw.clone().unwrap();
    let archived = d.archive.get(&raw).await.unwrap();
    assert_eq!(
        archived.as_deref(),
        Some(event_file("facebook/messenger-text.json").as_slice())
    );
}

#[tokio::test]
async fn ingest_refuses_a_forged_event_and_queues_nothing() {
    let d = deployment().await;
    let mut event: Value =
        serde_json::from_slice(&event_file("aws/apigw-v2-twitter-post.json")).unwrap();
    let body = event["body"]
        .as_str()
        .unwrap()
        .replace("wrong address", "right address");
    event["body"] = Value::String(body);
    let (status, answer) = invoke(
        d.webhook_router(Webhook::Twitter).unwrap(),
        event.to_string().as_bytes(),
    )
    .await;
    assert_eq!(status, 401, "{answer}");
    assert!(drain(&d, &d.config.inbound_queue_url).await.is_empty());
}

#[tokio::test]
async fn ingest_answers_the_handshakes() {
    let d = deployment().await;
    let (status, body) = invoke(
        d.webhook_router(Webhook::Facebook).unwrap(),
        &event_file("aws/apigw-v2-facebook-handshake.json"),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "1158201444"));
    let (status, body) = invoke(
        d.webhook_router(Webhook::Twitter).unwrap(),
        &event_file("aws/apigw-v2-twitter-crc.json"),
    )
    .await;
    assert_eq!(status, 200);
    let expected = crossdesk_channels::twitter::crc_response_token(
        "test-twitter-consumer-secret",
        "challenge123",
    );
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["response_token"],
        expected
    );
}

#[tokio::test]
async fn ingest_chat_accepts_the_signed_request_at_its_time() {
    let d = deployment().await;
    let (status, body) = invoke(
        d.webhook_router(Webhook::Chat).unwrap(),
        &event_file("aws/apigw-v2-chat-post.json"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let queued = drain(&d, &d.config.inbound_queue_url).await;
    assert_eq!(
        queued[0].0.platform_message_id.as_deref(),
        Some("sess_sample_01/chatmsg_0001")
    );
}

fn sqs_event(bodies: &[(&str, String, String)]) -> SqsEvent {
    let template: SqsEvent = serde_json::from_slice(&event_file("aws/sqs-event.json")).unwrap();
    let mut event = SqsEvent::default();
    event.records = bodies
        .iter()
        .map(|(id, group, body)| {
            let mut record: SqsMessage = template.records[0].clone();
            record.message_id = Some(id.to_string());
            record.body = Some(body.clone());
            record
                .attributes
                .insert("MessageGroupId".into(), group.clone());
            record
        })
        .collect();
    event
}

fn facebook_messages(file: &str) -> Vec<Message> {
    let body = event_file(file);
    // The sample is parsed as the ingest function would, after verification.
    let channel = FacebookChannel::new(SecretString::from("s"), SecretString::from("t"));
    let headers = crossdesk_channels::Headers::new([(
        "x-hub-signature-256",
        FacebookChannel::sign("s", &body),
    )]);
    let verified: VerifiedWebhook<'_> = channel
        .verify(
            &crossdesk_channels::WebhookRequest {
                headers: &headers,
                body: &body,
            },
            Utc::now(),
        )
        .unwrap();
    channel.parse(&verified, Utc::now()).unwrap()
}

#[tokio::test]
async fn ticket_writer_stores_a_batch_and_reports_only_what_failed() {
    let d = deployment().await;
    let text = facebook_messages("facebook/messenger-text.json").remove(0);
    let echo = facebook_messages("facebook/messenger-echo.json").remove(0);
    let comment = facebook_messages("facebook/feed-comment-add.json").remove(0);
    let mut too_big = facebook_messages("facebook/feed-comment-reply.json").remove(0);
    too_big.text = "x".repeat(450 * 1024);
    let group = |m: &Message| m.conversation.key(m.channel).unwrap().to_string();
    let json = |m: &Message| serde_json::to_string(m).unwrap();
    let event = sqs_event(&[
        ("r1", group(&text), json(&text)),
        ("r2", group(&too_big), json(&too_big)),
        ("r3", group(&echo), json(&echo)),
        ("r4", group(&comment), json(&comment)),
        ("r5", "poison".into(), "{not a message".into()),
        ("r6", group(&text), json(&text)), // a duplicate delivery
    ]);
    let (decoder, writer) = d.ticket_writer(|_| None).unwrap();
    let response = write_batch(event, decoder.as_ref(), &writer).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(
        failed,
        ["r2", "r5"],
        "only the oversize item and the poison fail"
    );

    // Read back through the SDK: two tickets (Messenger thread, comment thread), three messages.
    let tickets = d
        .store
        .list_tickets(&TicketFilter::default())
        .await
        .unwrap();
    assert_eq!(tickets.len(), 2);
    let dynamo = aws_sdk_dynamodb::Client::new(&d.sdk);
    let scan = dynamo
        .scan()
        .table_name(&d.config.table_name)
        .send()
        .await
        .unwrap();
    let message_items = scan
        .items()
        .iter()
        .filter(|item| {
            item.get("sk")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|sk| sk.starts_with("MSG#"))
        })
        .count();
    assert_eq!(message_items, 3);
}

#[tokio::test]
async fn ingest_email_reads_the_mail_from_s3_drops_spam_and_queues_the_rest() {
    let d = deployment().await;
    let event: SimpleEmailEvent =
        serde_json::from_slice(&event_file("aws/ses-lambda-event.json")).unwrap();
    let ses_id = event.records[0].ses.mail.message_id.clone().unwrap();
    let s3 = crossdesk_aws::s3::client(&d.sdk);
    s3.put_object()
        .bucket(&d.config.bucket)
        .key(format!("mail/{ses_id}"))
        .body(event_file("email/plain-and-html.eml").into())
        .send()
        .await
        .unwrap();
    let mail = d.mail_ingest();
    let report = ingest_mail(
        event.clone(),
        mail.source.as_ref(),
        mail.archive.as_ref(),
        mail.queue.as_ref(),
        signed_at(),
    )
    .await
    .unwrap();
    assert_eq!((report.queued, report.dropped), (1, 0));
    let queued = drain(&d, &d.config.inbound_queue_url).await;
    assert_eq!(queued.len(), 1);
    assert_eq!(
        queued[0].0.subject.as_deref(),
        Some("Invoice address wrong")
    );

    let mut spam = event;
    spam.records[0].ses.receipt.spam_verdict.status = Some("FAIL".into());
    let report = ingest_mail(
        spam,
        mail.source.as_ref(),
        mail.archive.as_ref(),
        mail.queue.as_ref(),
        signed_at(),
    )
    .await
    .unwrap();
    assert_eq!((report.queued, report.dropped), (0, 1));
    assert!(drain(&d, &d.config.inbound_queue_url).await.is_empty());
}

#[tokio::test]
async fn agent_api_serves_the_claims_of_the_jwt_authorizer() {
    let d = deployment().await;
    let text = facebook_messages("facebook/messenger-text.json").remove(0);
    crossdesk_core::writer::TicketWriter::new(d.store.clone())
        .write(&text)
        .await
        .unwrap();
    let (status, body) = invoke(
        d.agent_router().unwrap(),
        &event_file("aws/apigw-v2-agent-list-tickets.json"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let tickets = serde_json::from_str::<Value>(&body).unwrap()["tickets"].clone();
    assert_eq!(tickets.as_array().unwrap().len(), 1);

    let mut unauthenticated: Value =
        serde_json::from_slice(&event_file("aws/apigw-v2-agent-list-tickets.json")).unwrap();
    unauthenticated["requestContext"]
        .as_object_mut()
        .unwrap()
        .remove("authorizer");
    let (status, _) = invoke(
        d.agent_router().unwrap(),
        unauthenticated.to_string().as_bytes(),
    )
    .await;
    assert_eq!(status, 401);
}

/// An agent API request through API Gateway: the authorized sample, changed to `method path`.
fn agent_request(method: &str, path: &str, body: Option<Value>) -> Vec<u8> {
    let mut event: Value =
        serde_json::from_slice(&event_file("aws/apigw-v2-agent-list-tickets.json")).unwrap();
    event["routeKey"] = Value::from(format!("{method} {path}"));
    event["requestContext"]["routeKey"] = event["routeKey"].clone();
    event["rawPath"] = Value::from(path);
    event["requestContext"]["http"]["path"] = Value::from(path);
    event["requestContext"]["http"]["method"] = Value::from(method);
    event["rawQueryString"] = Value::from("");
    event
        .as_object_mut()
        .unwrap()
        .remove("queryStringParameters");
    if let Some(body) = body {
        event["headers"]["content-type"] = Value::from("application/json");
        event["body"] = Value::from(body.to_string());
    }
    event.to_string().into_bytes()
}

#[tokio::test]
async fn unusable_desk_settings_fail_the_functions_that_build_the_workflow() {
    let mut settings = crossdesk_core::settings::DeskSettings::default();
    settings
        .personal_data
        .patterns
        .push(crossdesk_core::personal_data::NamedPattern {
            name: "order_number".into(),
            regex: "(unclosed".into(),
        });
    let d = deployment().await.with_desk_settings(&settings).unwrap();
    // The ingest functions never build the desk workflow, so they start without paying for it.
    assert!(d.webhook_router(Webhook::Facebook).is_ok());
    // The agent API and the ticket writer build it at start, and say what is wrong.
    let err = d
        .agent_router_with(|_| None)
        .expect_err("unusable settings");
    assert!(
        err.to_string().contains("CROSSDESK_SETTINGS") && err.to_string().contains("order_number"),
        "{err}"
    );
    assert!(d.ticket_writer(|_| None).is_err());
}

#[tokio::test]
async fn agent_api_reply_windows_follow_the_human_agent_setting() {
    let mut d = deployment().await;
    let question = facebook_messages("facebook/messenger-text.json").remove(0);
    // 30 hours after the customer wrote: only a Human Agent reply is still allowed.
    d.clock = Arc::new(FixedClock(question.sent_at + chrono::TimeDelta::hours(30)));
    crossdesk_core::writer::TicketWriter::new(d.store.clone())
        .write(&question)
        .await
        .unwrap();
    let ticket = d
        .store
        .list_tickets(&TicketFilter::default())
        .await
        .unwrap()[0]
        .id
        .clone();
    let view = agent_request("GET", &format!("/api/tickets/{ticket}"), None);

    let with_permission = d
        .agent_router_with(|name| {
            (name == "CROSSDESK_FACEBOOK_HUMAN_AGENT").then(|| "true".to_string())
        })
        .unwrap();
    let (status, body) = invoke(with_permission, &view).await;
    assert_eq!(status, 200, "{body}");
    let windows = serde_json::from_str::<Value>(&body).unwrap()["reply_windows"].clone();
    assert_eq!(windows[0]["can_reply"], true, "{windows}");
    assert_eq!(windows[0]["message_tag"], "HUMAN_AGENT");

    let without = d.agent_router_with(|_| None).unwrap();
    let (status, body) = invoke(without.clone(), &view).await;
    assert_eq!(status, 200, "{body}");
    let windows = serde_json::from_str::<Value>(&body).unwrap()["reply_windows"].clone();
    assert_eq!(windows[0]["can_reply"], false, "{windows}");
    let reply = agent_request(
        "POST",
        &format!("/api/tickets/{ticket}/replies"),
        Some(serde_json::json!({"text": "Sorry for the wait."})),
    );
    let (status, body) = invoke(without, &reply).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("window_closed"), "{body}");
    assert!(
        receive_records(&d, &d.config.outbound_queue_url)
            .await
            .is_empty(),
        "nothing was queued"
    );
}

#[tokio::test]
async fn ticket_writer_checks_email_references_with_the_secrets_key_and_drops_its_own_mail() {
    use crossdesk_core::writer::WriteOutcome;
    let d = deployment().await;
    let env =
        |name: &str| (name == "CROSSDESK_EMAIL_FROM").then(|| "support@sample.example".to_string());
    let (_, writer) = d.ticket_writer(env).unwrap();
    let mail = |raw: &[u8]| {
        crossdesk_channels::EmailChannel::parse_mime(raw, signed_at())
            .unwrap()
            .remove(0)
    };
    let first = writer
        .write(&mail(&event_file("email/plain-and-html.eml")))
        .await
        .unwrap();
    let WriteOutcome::Stored { ticket_id, .. } = first else {
        panic!("{first:?}");
    };
    let key =
        crossdesk_core::mail_signature::EmailThreadKey::new(EMAIL_THREAD_KEY.as_bytes()).unwrap();

    // The customer answers to the signed plus-address only: it threads.
    let answer = format!(
        "From: alex@example.com\r\nTo: support+{ticket_id}.{}@sample.example\r\nMessage-ID: <a2@mail.example.com>\r\n\r\nThanks!\r\n",
        key.ticket_signature(&ticket_id)
    );
    assert!(matches!(
        writer.write(&mail(answer.as_bytes())).await.unwrap(),
        WriteOutcome::Stored { ticket_id: t, created_ticket: false, .. } if t == ticket_id
    ));
    // A stranger with the same address: a new ticket, possibly related.
    let hijack = answer
        .replace("alex@example.com", "eve@evil.example")
        .replace("a2@", "e1@");
    let WriteOutcome::Stored {
        ticket_id: other,
        created_ticket: true,
        ..
    } = writer.write(&mail(hijack.as_bytes())).await.unwrap()
    else {
        panic!("the stranger's mail starts a ticket");
    };
    let other = d.store.get_ticket(&other).await.unwrap().unwrap();
    assert_eq!(other.related_tickets, vec![ticket_id.clone()]);
    // Mail from the support address is Crossdesk's own, come back.
    let own = "From: Sample Support <support@sample.example>\r\nTo: alex@example.com\r\nMessage-ID: <x1@sample.example>\r\n\r\nWe corrected the address.\r\n";
    assert_eq!(
        writer.write(&mail(own.as_bytes())).await.unwrap(),
        WriteOutcome::OwnMail
    );
    assert_eq!(
        d.store
            .get_ticket(&ticket_id)
            .await
            .unwrap()
            .unwrap()
            .message_count,
        2
    );
}

#[tokio::test]
async fn reply_sender_sends_an_email_reply_through_ses_once_and_records_it() {
    let d = deployment().await;
    let ses = aws_sdk_sesv2::Client::new(&d.sdk);
    // SES (and moto) send only from a verified identity.
    let _ = ses
        .create_email_identity()
        .email_identity("sample.example")
        .send()
        .await;
    let customer = crossdesk_channels::EmailChannel::parse_mime(
        &event_file("email/plain-and-html.eml"),
        signed_at(),
    )
    .unwrap()
    .remove(0);
    crossdesk_core::writer::TicketWriter::new(d.store.clone())
        .write(&customer)
        .await
        .unwrap();
    let tickets = d
        .store
        .list_tickets(&TicketFilter::default())
        .await
        .unwrap();
    let ticket = tickets[0].id.clone();
    let desk =
        crossdesk_core::agent::AgentDesk::new(d.store.clone(), d.outbound.clone(), d.clock.clone());
    let agent = crossdesk_core::agent::AgentRef {
        id: "agent-1".into(),
        name: Some("Sam".into()),
    };
    let reply = desk
        .reply(
            &ticket,
            &agent,
            &crossdesk_core::agent::ReplyRequest {
                text: "We corrected the address.".into(),
                channel: None,
                visibility: None,
                idempotency_key: None,
            },
        )
        .await
        .unwrap();

    let records = receive_records(&d, &d.config.outbound_queue_url).await;
    assert_eq!(records.len(), 1, "one job on the outbound queue");
    assert_eq!(
        records[0]
            .attributes
            .get("MessageGroupId")
            .map(String::as_str),
        Some(ticket.as_str()),
        "reply jobs are grouped by ticket"
    );
    let env = |name: &str| match name {
        "CROSSDESK_EMAIL_FROM" => Some("support@sample.example".to_string()),
        "CROSSDESK_EMAIL_FROM_NAME" => Some("Sample Support".to_string()),
        _ => None,
    };
    let (decoder, delivery) = d.reply_sender(env).unwrap();
    // The queue delivers the job twice (at least once): the email goes out once.
    for _ in 0..2 {
        let mut event = SqsEvent::default();
        event.records = records.clone();
        let response = deliver_batch(event, decoder.as_ref(), &delivery).await;
        assert!(response.batch_item_failures.is_empty());
    }

    let stored = d.store.list_messages(&ticket).await.unwrap();
    let sent = stored.iter().find(|m| m.id == reply.id).unwrap();
    let record = sent.delivery.clone().unwrap();
    assert_eq!(
        record.status,
        crossdesk_core::DeliveryStatus::Sent,
        "{record:?}"
    );
    let platform_id = record.platform_id.clone().unwrap();
    let ses_id = platform_id
        .strip_suffix("@email.amazonses.com")
        .unwrap_or_else(|| panic!("SES's Message-ID: {platform_id}"));

    // moto's record of sent mail: exactly one, threaded under the customer's mail.
    let sent = moto_ses::ses_sent(None).await;
    let mails: Vec<&Value> = sent
        .iter()
        .filter(|m| {
            m["kind"] == "RawMessage"
                && m["raw_data"]
                    .as_str()
                    .is_some_and(|raw| raw.contains(&format!("crossdesk.{}.{ticket}.", reply.id)))
        })
        .collect();
    assert_eq!(mails.len(), 1, "sent once");
    assert_eq!(mails[0]["id"], ses_id);
    let raw = mails[0]["raw_data"].as_str().unwrap();
    let parsed = mail_parser::MessageParser::default()
        .parse(raw.as_bytes())
        .unwrap();
    assert_eq!(
        parsed.in_reply_to().as_text(),
        Some("CAF=sample-0001@mail.example.com")
    );
    assert_eq!(
        parsed.subject(),
        Some(format!("Re: Invoice address wrong [#{ticket}]").as_str())
    );
    assert_eq!(
        mails[0]["destinations"][0], "alex@example.com",
        "addressed to the customer"
    );
    // Its Message-ID and Reply-To are signed with the secret's email thread key.
    let key =
        crossdesk_core::mail_signature::EmailThreadKey::new(EMAIL_THREAD_KEY.as_bytes()).unwrap();
    assert!(matches!(
        key.check_message_id(parsed.message_id().unwrap()),
        crossdesk_core::mail_signature::MessageIdCheck::Signed { ticket: t, .. } if t == ticket
    ));
    let reply_to = parsed
        .reply_to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap();
    assert_eq!(
        reply_to,
        format!(
            "support+{ticket}.{}@sample.example",
            key.ticket_signature(&ticket)
        )
    );
}

#[tokio::test]
async fn reply_sender_hands_a_failing_reply_back_to_the_queue_for_the_platforms_delay() {
    let d = deployment().await;
    // A chat backend that is down: every call answers 503.
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = calls.clone();
    let backend = axum::Router::new().route(
        "/replies",
        axum::routing::post(move || {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                axum::http::StatusCode::SERVICE_UNAVAILABLE
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback = format!("http://{}/replies", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, backend).await.unwrap() });

    let (status, body) = invoke(
        d.webhook_router(Webhook::Chat).unwrap(),
        &event_file("aws/apigw-v2-chat-post.json"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let customer = drain(&d, &d.config.inbound_queue_url).await.remove(0).0;
    crossdesk_core::writer::TicketWriter::new(d.store.clone())
        .write(&customer)
        .await
        .unwrap();
    let ticket = d
        .store
        .list_tickets(&TicketFilter::default())
        .await
        .unwrap()[0]
        .id
        .clone();
    let desk =
        crossdesk_core::agent::AgentDesk::new(d.store.clone(), d.outbound.clone(), d.clock.clone());
    let agent = crossdesk_core::agent::AgentRef {
        id: "agent-1".into(),
        name: None,
    };
    let reply = desk
        .reply(
            &ticket,
            &agent,
            &crossdesk_core::agent::ReplyRequest {
                text: "Yes, until Friday.".into(),
                channel: None,
                visibility: None,
                idempotency_key: None,
            },
        )
        .await
        .unwrap();

    let records = receive_records(&d, &d.config.outbound_queue_url).await;
    assert_eq!(records.len(), 1);
    let env = move |name: &str| (name == "CROSSDESK_CHAT_CALLBACK_URL").then(|| callback.clone());
    let (decoder, delivery) = d.reply_sender(env).unwrap();
    let mut event = SqsEvent::default();
    event.records = records;
    let response = deliver_batch(event, decoder.as_ref(), &delivery).await;
    assert_eq!(response.batch_item_failures.len(), 1, "handed back");
    let attempts = calls.load(std::sync::atomic::Ordering::SeqCst);
    assert!(attempts >= 1, "the backend was called");
    let stored = d.store.list_messages(&ticket).await.unwrap();
    let record = stored
        .iter()
        .find(|m| m.id == reply.id)
        .and_then(|m| m.delivery.clone())
        .unwrap();
    assert_eq!(
        record.status,
        crossdesk_core::DeliveryStatus::Queued,
        "{record:?}"
    );
    assert_eq!(record.attempts as usize, attempts);

    // The job is visible again after the retry delay (seconds), not after the queue's
    // 60-second visibility timeout.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if !receive_records(&d, &d.config.outbound_queue_url)
            .await
            .is_empty()
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the job did not come back within 20 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn ingest_in_signature_report_mode_queues_a_forged_event_flagged_but_no_replay() {
    let d = deployment().await;
    let report =
        |variable: &'static str| move |name: &str| (name == variable).then(|| "report".to_string());
    let mut event: Value =
        serde_json::from_slice(&event_file("aws/apigw-v2-twitter-post.json")).unwrap();
    let body = event["body"]
        .as_str()
        .unwrap()
        .replace("wrong address", "right address");
    event["body"] = Value::String(body);
    let router = d
        .webhook_router_with(Webhook::Twitter, report("CROSSDESK_TWITTER_SIGNATURE_MODE"))
        .unwrap();
    let (status, answer) = invoke(router, event.to_string().as_bytes()).await;
    assert_eq!(status, 200, "{answer}");
    let queued = drain(&d, &d.config.inbound_queue_url).await;
    assert!(!queued.is_empty());
    assert!(
        queued.iter().all(|(m, _, _)| m.signature_unverified),
        "every message of the forged event is flagged"
    );

    // Chat in report mode: the signed sample an hour after it was signed is a replay.
    let mut late = d.clone();
    late.clock = Arc::new(FixedClock(signed_at() + chrono::TimeDelta::hours(1)));
    let (status, answer) = invoke(
        late.webhook_router_with(Webhook::Chat, report("CROSSDESK_CHAT_SIGNATURE_MODE"))
            .unwrap(),
        &event_file("aws/apigw-v2-chat-post.json"),
    )
    .await;
    assert_eq!(status, 401, "{answer}");
    assert!(drain(&d, &d.config.inbound_queue_url).await.is_empty());
}

#[tokio::test]
async fn an_invalid_signature_mode_stops_the_function_naming_the_variable() {
    let d = deployment().await;
    let err = d
        .webhook_router_with(Webhook::Chat, |name| {
            (name == "CROSSDESK_CHAT_SIGNATURE_MODE").then(|| "log-only".to_string())
        })
        .unwrap_err();
    assert!(
        err.to_string().contains("CROSSDESK_CHAT_SIGNATURE_MODE"),
        "{err}"
    );
}

/// What a receiver got: each request's headers and body.
type Received = Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, Vec<u8>)>>>;

/// A receiver of events answering 500 to the first request of each event id and 200 after;
/// returns its URL and what it got.
async fn flaky_receiver() -> (String, Received) {
    let got: Received = Arc::default();
    let recorded = got.clone();
    let app = axum::Router::new().route(
        "/events",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let recorded = recorded.clone();
                async move {
                    let mut got = recorded.lock().unwrap();
                    let id = serde_json::from_slice::<Value>(&body).unwrap()["id"].clone();
                    let earlier = got
                        .iter()
                        .filter(|(_, b)| serde_json::from_slice::<Value>(b).unwrap()["id"] == id)
                        .count();
                    got.push((headers, body.to_vec()));
                    if earlier == 0 {
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        axum::http::StatusCode::OK
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

#[tokio::test]
async fn event_sender_retries_through_the_queue_and_posts_each_event_once() {
    use crossdesk_lambda::events::send_events_batch;

    let mut d = deployment().await;
    d.secrets = Arc::new(ChannelSecrets {
        events_webhook_secret: Some(SecretString::from("test-events-secret".to_string())),
        ..(*d.secrets).clone()
    });
    let events_url = d.config.events_queue_url.clone().expect("an events queue");
    let (endpoint, got) = flaky_receiver().await;

    // Without an endpoint (or its secret) the event sender does not start.
    let err = d.event_sender(|_| None).err().expect("no endpoint");
    assert!(
        err.to_string().contains("CROSSDESK_EVENTS_WEBHOOK_URL"),
        "{err}"
    );
    let env = {
        let endpoint = endpoint.clone();
        move |name: &str| (name == "CROSSDESK_EVENTS_WEBHOOK_URL").then(|| endpoint.clone())
    };
    let sender = d.event_sender(env).unwrap();

    // A chat message through the webhook and the ticket writer emits two events.
    let (status, body) = invoke(
        d.webhook_router(Webhook::Chat).unwrap(),
        &event_file("aws/apigw-v2-chat-post.json"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let customer = drain(&d, &d.config.inbound_queue_url).await.remove(0).0;
    let (_, writer) = d.ticket_writer(|_| None).unwrap();
    writer.write(&customer).await.unwrap();

    let records = receive_records(&d, &events_url).await;
    assert_eq!(records.len(), 2, "ticket.created and message.created");
    let mut event = SqsEvent::default();
    event.records = records;
    let response = send_events_batch(event, &sender).await;
    assert_eq!(response.batch_item_failures.len(), 2, "both handed back");
    assert_eq!(got.lock().unwrap().len(), 2);

    // They come back after the backoff (1 s), not the queue's visibility timeout.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut again = Vec::new();
    while again.len() < 2 {
        again.extend(receive_records(&d, &events_url).await);
        assert!(
            std::time::Instant::now() < deadline,
            "the events did not come back within 20 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    for record in &again {
        assert_eq!(
            record
                .attributes
                .get("ApproximateReceiveCount")
                .map(String::as_str),
            Some("2")
        );
    }
    let mut event = SqsEvent::default();
    event.records = again.clone();
    let response = send_events_batch(event, &sender).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(got.lock().unwrap().len(), 4);

    // The queue delivers them once more: nothing is posted again.
    let mut event = SqsEvent::default();
    event.records = again;
    let response = send_events_batch(event, &sender).await;
    assert!(response.batch_item_failures.is_empty());
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 4);

    let mut by_id: std::collections::BTreeMap<String, Vec<&axum::http::HeaderMap>> =
        Default::default();
    for (headers, body) in &got {
        let timestamp: i64 = headers["x-crossdesk-timestamp"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            headers["x-crossdesk-signature"].to_str().unwrap(),
            crossdesk_channels::events_webhook::sign(b"test-events-secret", timestamp, body)
        );
        let json: Value = serde_json::from_slice(body).unwrap();
        by_id
            .entry(json["id"].as_str().unwrap().to_string())
            .or_default()
            .push(headers);
    }
    assert_eq!(by_id.len(), 2);
    for requests in by_id.values() {
        assert_eq!(requests.len(), 2);
        assert_eq!(
            requests[0]["x-crossdesk-delivery"],
            requests[1]["x-crossdesk-delivery"]
        );
    }
}

/// A fake Graph API answering every request with one answer, recording the paths asked.
async fn fake_graph(status: u16, answer: Value) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    let seen: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let recorded = seen.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let recorded = recorded.clone();
        let answer = answer.clone();
        async move {
            recorded.lock().unwrap().push(uri.to_string());
            (
                axum::http::StatusCode::from_u16(status).unwrap(),
                axum::Json(answer),
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

#[tokio::test]
async fn channel_health_records_a_rejected_page_token_and_the_agent_api_shows_it() {
    let mut d = deployment().await;
    d.clock = Arc::new(crossdesk_core::SystemClock);
    let mut secrets = (*d.secrets).clone();
    secrets.facebook_page_token = Some(SecretString::from("expired-page-token".to_string()));
    d.secrets = Arc::new(secrets);
    let (graph, seen) = fake_graph(
        400,
        serde_json::json!({"error": {"message": "Error validating access token: The session has been invalidated because the user changed their password.", "type": "OAuthException", "code": 190, "error_subcode": 460}}),
    )
    .await;
    let env = move |name: &str| match name {
        "CROSSDESK_FACEBOOK_GRAPH_URL" => Some(graph.clone()),
        "CROSSDESK_EMAIL_FROM" => Some("support@help.example.com".to_string()),
        // SES receiving is checked in crossdesk-aws's own test (one active rule set per region).
        "CROSSDESK_EMAIL_RECEIVING" => Some("false".to_string()),
        _ => None,
    };

    let checker = d.health_checker(env.clone()).unwrap();
    let summary = crossdesk_lambda::health::run_checks(&checker)
        .await
        .unwrap();
    assert!(summary["failing"].as_u64().unwrap() >= 2, "{summary}");
    let paths = seen.lock().unwrap().clone();
    assert_eq!(paths.len(), 1, "one page token call: {paths:?}");
    assert!(paths[0].ends_with("/me?fields=id"), "{paths:?}");

    let (status, body) = invoke(
        d.agent_router_with(env).unwrap(),
        &agent_request("GET", "/api/channels", None),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let channels: Value = serde_json::from_str(&body).unwrap();
    let report = |name: &str| {
        channels["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["channel"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {channels}"))
    };
    for name in ["facebook", "instagram"] {
        let r = report(name);
        assert_eq!(r["status"], "failing", "{r}");
        assert_eq!(r["needs_reauthorization"], true, "{r}");
        assert_eq!(r["reauthorization"]["code"], "graph_190_460");
        assert!(r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["check"] == "page_token" && c["status"] == "failing"));
    }
    // The secret has no X access token: X receives but cannot answer.
    let twitter = report("twitter");
    assert_eq!(twitter["configured"], true);
    assert!(twitter["missing"]
        .as_array()
        .unwrap()
        .contains(&Value::from("twitter_access_token")));
    assert_eq!(report("email")["configured"], true);
}

#[tokio::test]
async fn agent_api_shows_each_signature_mode_and_the_graph_versions_retirement() {
    // The deployment's clock reads 2026-11-20: v21.0 (retired on 2027-01-21) retires soon.
    let d = deployment().await;
    let env = |name: &str| match name {
        "CROSSDESK_TWITTER_SIGNATURE_MODE" => Some("report".to_string()),
        "CROSSDESK_GRAPH_API_VERSION" => Some("v21.0".to_string()),
        _ => None,
    };
    let (status, body) = invoke(
        d.agent_router_with(env).unwrap(),
        &agent_request("GET", "/api/channels", None),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let channels: Value = serde_json::from_str(&body).unwrap();
    let findings = |name: &str| -> Vec<(String, String, String)> {
        let channel = channels["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["channel"] == name)
            .unwrap_or_else(|| panic!("{name} in {channels}"));
        channel["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["check"] == "signature_mode" || f["check"] == "graph_api_version")
            .map(|f| {
                let text = |k: &str| f[k].as_str().unwrap().to_string();
                (text("check"), text("status"), text("reason"))
            })
            .collect()
    };
    let twitter = findings("twitter");
    assert_eq!(twitter.len(), 1);
    assert_eq!(
        (twitter[0].0.as_str(), twitter[0].1.as_str()),
        ("signature_mode", "warning")
    );
    let facebook = findings("facebook");
    assert_eq!(facebook.len(), 2, "{facebook:?}");
    assert_eq!(facebook[0].1, "ok", "facebook's signatures are enforced");
    assert_eq!(facebook[1].0, "graph_api_version");
    assert_eq!(facebook[1].1, "warning");
    assert!(
        facebook[1]
            .2
            .starts_with("v21.0 is retired by Meta on 2027-01-21 (in 62 days)"),
        "{facebook:?}"
    );
    assert_eq!(findings("chat")[0].1, "ok");
    assert!(findings("email").is_empty());
}

#[tokio::test]
async fn ticket_writer_copies_attachments_to_the_bucket_and_the_agent_api_links_them() {
    use sha2::Digest;
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n a tiny png";
    let mut d = deployment().await;
    // Pre-signed links are signed with the real time: so is the desk's clock here.
    d.clock = Arc::new(crossdesk_core::SystemClock);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cdn = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/photo.png",
        axum::routing::get(|| async { ([("content-type", "image/png")], PNG) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut message = facebook_messages("facebook/messenger-attachment-only.json").remove(0);
    message.attachments[0].url = Some(format!("http://{cdn}/photo.png"));
    let group = message
        .conversation
        .key(message.channel)
        .unwrap()
        .to_string();
    let event = sqs_event(&[("r1", group, serde_json::to_string(&message).unwrap())]);
    let env = move |name: &str| (name == "CROSSDESK_MEDIA_ALLOW_PRIVATE").then(|| cdn.to_string());
    let (decoder, writer) = d.ticket_writer(env).unwrap();
    let response = write_batch(event, decoder.as_ref(), &writer).await;
    assert!(response.batch_item_failures.is_empty());

    // The copy is in the deployment's bucket, by checksum.
    let sha = hex::encode(sha2::Sha256::digest(PNG));
    let s3 = crossdesk_aws::s3::client(&d.sdk);
    let object = s3
        .get_object()
        .bucket(&d.config.bucket)
        .key(format!("media/sha256/{sha}"))
        .send()
        .await
        .expect("the copy is stored");
    assert_eq!(object.content_type(), Some("image/png"));
    assert_eq!(
        object.body.collect().await.unwrap().into_bytes().as_ref(),
        PNG
    );

    // The agent API function links it.
    let ticket = d
        .store
        .list_tickets(&TicketFilter::default())
        .await
        .unwrap()
        .remove(0);
    let stored = d.store.list_messages(&ticket.id).await.unwrap().remove(0);
    assert_eq!(stored.attachments[0].sha256.as_deref(), Some(sha.as_str()));
    let path = format!(
        "/api/tickets/{}/messages/{}/attachments/0",
        ticket.id, stored.id
    );
    let (status, body) = invoke(
        d.agent_router().unwrap(),
        &agent_request("GET", &path, None),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let link: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(link["inline"], true);
    let url = link["url"].as_str().unwrap();
    assert!(url.contains("X-Amz-Signature="), "{url}");
    let file = reqwest::get(url).await.unwrap();
    assert_eq!(file.status(), 200);
    assert_eq!(file.bytes().await.unwrap().as_ref(), PNG);
}

#[tokio::test]
async fn agent_api_works_tickets_through_the_workflow_on_dynamodb() {
    let d = deployment().await;
    let text = facebook_messages("facebook/messenger-text.json").remove(0);
    let (_, writer) = d.ticket_writer(|_| None).unwrap();
    writer.write(&text).await.unwrap();
    let (status, body) = invoke(
        d.agent_router().unwrap(),
        &event_file("aws/apigw-v2-agent-list-tickets.json"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let listed: Value = serde_json::from_str(&body).unwrap();
    let ticket = &listed["tickets"][0];
    let id = ticket["id"].as_str().unwrap().to_string();
    let contact = ticket["contact"]["id"].as_str().unwrap().to_string();
    // The writer gave the ticket its workflow: a direct-message SLA target.
    assert_eq!(
        ticket["workflow"]["sla"]["policy"], "direct/normal",
        "{ticket:#}"
    );

    let patch = json!({"assignee": "agent-7", "add_tags": ["Billing"]});
    let (status, body) = invoke(
        d.agent_router().unwrap(),
        &agent_request("PATCH", &format!("/api/tickets/{id}"), Some(patch)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let view: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(view["workflow"]["assignee"], "agent-7");
    assert_eq!(view["workflow"]["tags"], json!(["billing"]));

    let note = json!({"text": "Check the contract first."});
    let (status, body) = invoke(
        d.agent_router().unwrap(),
        &agent_request("POST", &format!("/api/tickets/{id}/notes"), Some(note)),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(
        drain(&d, &d.config.outbound_queue_url).await.is_empty(),
        "a note is never queued"
    );

    let (status, body) = invoke(
        d.agent_router().unwrap(),
        &agent_request("GET", &format!("/api/contacts/{contact}"), None),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let contact: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(contact["tickets"][0]["id"], id.as_str());

    let prefs = json!({"email": "agent7@example.com", "events": ["ticket.created"]});
    let (status, body) = invoke(
        d.agent_router().unwrap(),
        &agent_request("PUT", "/api/agents/me/notifications", Some(prefs)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}
