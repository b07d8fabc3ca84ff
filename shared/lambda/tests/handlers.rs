//! The functions' handlers, fed real event JSON (API Gateway v2, SQS, SES) against moto server:
//! the state afterwards is read back through the AWS SDK.
//!
//! Needs `AWS_ENDPOINT_URL` pointing at moto (`make test` starts it; or `scripts/moto`).

use std::sync::Arc;

use aws_lambda_events::event::ses::SimpleEmailEvent;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use axum::body::Body;
use chrono::{DateTime, TimeZone, Utc};
use crossdesk_aws::{create_resources, sdk_config, ChannelSecrets, ResourceNames};
use crossdesk_channels::{Channel, FacebookChannel, VerifiedWebhook};
use crossdesk_core::{Clock, Message, RawArchive, TicketFilter, TicketStore};
use crossdesk_lambda::deploy::{Deployment, Webhook};
use crossdesk_lambda::ses::ingest_mail;
use crossdesk_lambda::sqs::{deliver_batch, write_batch};
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

fn signed_at() -> DateTime<Utc> {
    Utc.timestamp_opt(1_795_168_800, 0).single().unwrap()
}

fn event_file(path: &str) -> Vec<u8> {
    let full = format!("{}/../../events/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// The email thread key of the test deployment's secret.
const EMAIL_THREAD_KEY: &str = "test-email-thread-key-0123456789";

/// A deployment on fresh resources in moto, with the test secrets of `events/aws/README.md`.
async fn deployment() -> Deployment {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run `make test` (it starts moto) or `scripts/moto` and export it"
    );
    let sdk = sdk_config().await;
    let prefix = format!("fn-{}", uuid::Uuid::now_v7().simple());
    let config = create_resources(&sdk, &ResourceNames::with_prefix(&prefix))
        .await
        .expect("resources created in moto");
    let secret = |s: &str| Some(SecretString::from(s.to_string()));
    let secrets = ChannelSecrets {
        facebook_app_secret: secret("test-facebook-app-secret"),
        facebook_verify_token: secret("test-verify-token"),
        twitter_consumer_secret: secret("test-twitter-consumer-secret"),
        chat_secret: secret("test-chat-secret"),
        email_thread_key: secret(EMAIL_THREAD_KEY),
        ..ChannelSecrets::default()
    };
    let mut deployment = Deployment::assemble(sdk, config, secrets);
    deployment.clock = Arc::new(FixedClock(signed_at()));
    deployment
}

/// Runs an API Gateway v2 event through a router the way `lambda_http::run` does.
async fn invoke(router: axum::Router, event: &[u8]) -> (u16, String) {
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
        d.agent_router(),
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
    let (status, _) = invoke(d.agent_router(), unauthenticated.to_string().as_bytes()).await;
    assert_eq!(status, 401);
}

/// moto's dump of its state; moto sometimes fails to build it while other requests change
/// that state (a 500): ask again.
async fn moto_data(endpoint: &str) -> Value {
    let mut last = String::new();
    for _ in 0..20 {
        match reqwest::get(format!("{endpoint}/moto-api/data.json")).await {
            Ok(answer) if answer.status().is_success() => match answer.json().await {
                Ok(data) => return data,
                Err(e) => last = e.to_string(),
            },
            Ok(answer) => last = format!("status {}", answer.status()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("moto's /moto-api/data.json: {last}");
}

/// The records waiting on a queue, as Lambda's SQS event source would hand them over.
async fn receive_records(d: &Deployment, queue_url: &str) -> Vec<SqsMessage> {
    let sqs = aws_sdk_sqs::Client::new(&d.sdk);
    let received = sqs
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
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    let data = moto_data(&endpoint).await;
    let mails: Vec<&Value> = data["ses"]["RawMessage"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| {
            m["raw_data"]
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
