//! End to end: an agent's reply leaves the local stack through the channel's own API (fake
//! platform servers on 127.0.0.1 that record the exact requests), and the outcome is recorded
//! on the message.

mod common;
#[path = "common/fake_platform.rs"]
mod fake_platform;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::{Backend, Stack, AGENT_TOKEN, CHAT_SECRET};
use crossdesk_channels::{Channel, ChatChannel, Headers, WebhookRequest};
use fake_platform::FakePlatform;
use reqwest::Method;
use serde_json::{json, Value};

/// Waits until the reply's delivery leaves `queued` (15 s at most) and returns it.
async fn settled_delivery(stack: &Stack, ticket: &str, message: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let view = stack.ticket(ticket).await;
        let delivery = view["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == message)
            .map(|m| m["delivery"].clone())
            .unwrap_or(Value::Null);
        if delivery["status"] != "queued" || Instant::now() > deadline {
            return delivery;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A Messenger message from a customer, written now (inside the 24-hour window).
fn fresh_messenger_event(mid: &str) -> Vec<u8> {
    let now = chrono::Utc::now().timestamp_millis();
    json!({"object":"page","entry":[{"id":"PAGE_1","time":now,"messaging":[{
        "sender":{"id":"PSID_42"},"recipient":{"id":"PAGE_1"},"timestamp":now,
        "message":{"mid":mid,"text":"Where is my parcel?"}}]}]})
    .to_string()
    .into_bytes()
}

async fn only_ticket(stack: &Stack) -> String {
    assert_eq!(stack.wait_for_messages(1).await, 1);
    stack.tickets().await[0]["id"].as_str().unwrap().to_string()
}

/// A stack that answers on Messenger through `graph`, and the ticket of a fresh customer
/// message.
async fn messenger_ticket(
    backend: Backend,
    graph: &FakePlatform,
    dir: &std::path::Path,
) -> (Stack, String) {
    let stack = Stack::start_env(
        backend,
        dir,
        &[],
        &[
            ("CROSSDESK_FACEBOOK_GRAPH_URL", graph.base.clone()),
            ("CROSSDESK_FACEBOOK_PAGE_TOKEN", "page-token-123".into()),
        ],
    );
    assert_eq!(
        stack
            .post_signed("facebook", &fresh_messenger_event("m_in_1"))
            .await
            .0,
        200
    );
    let ticket = only_ticket(&stack).await;
    (stack, ticket)
}

async fn reply(stack: &Stack, ticket: &str, body: Value) -> String {
    let (status, answer) = stack
        .api_send(
            Method::POST,
            &format!("/api/tickets/{ticket}/replies"),
            &body,
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    answer["id"].as_str().unwrap().to_string()
}

async fn a_messenger_reply_is_sent_once_through_the_send_api(backend: Backend) {
    let graph = FakePlatform::start(vec![
        (429, json!({"error":{"message":"(#4) Application request limit reached","type":"OAuthException","code":4,"fbtrace_id":"A1"}})),
        (200, json!({"recipient_id":"PSID_42","message_id":"m_reply_1"})),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (stack, ticket) = messenger_ticket(backend, &graph, dir.path()).await;
    let message = reply(
        &stack,
        &ticket,
        json!({"text": "It left our warehouse today."}),
    )
    .await;

    let delivery = settled_delivery(&stack, &ticket, &message).await;
    assert_eq!(delivery["status"], "sent", "{delivery}");
    assert_eq!(delivery["platform_id"], "m_reply_1");
    assert_eq!(
        delivery["attempts"], 2,
        "the rate-limited call was retried once"
    );

    let requests = graph.requests();
    assert_eq!(requests.len(), 2);
    let sent = &requests[1];
    assert_eq!(sent.method, "POST");
    assert_eq!(
        sent.path,
        format!(
            "/{}/me/messages",
            crossdesk_channels::graph_version::GRAPH_API_VERSION
        )
    );
    assert_eq!(sent.header("authorization"), Some("Bearer page-token-123"));
    let body = sent.json();
    assert_eq!(body["recipient"], json!({"id": "PSID_42"}));
    assert_eq!(body["messaging_type"], "RESPONSE");
    assert_eq!(body["message"]["text"], "It left our warehouse today.");

    // The platform echoes the page's message back: recognized as the same message.
    let now = chrono::Utc::now().timestamp_millis();
    let echo = json!({"object":"page","entry":[{"id":"PAGE_1","time":now,"messaging":[{
        "sender":{"id":"PAGE_1"},"recipient":{"id":"PSID_42"},"timestamp":now,
        "message":{"mid":"m_reply_1","is_echo":true,"text":"It left our warehouse today."}}]}]});
    assert_eq!(
        stack
            .post_signed("facebook", echo.to_string().as_bytes())
            .await
            .0,
        200
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        stack.message_count().await,
        2,
        "the echo is not stored twice"
    );
    assert_eq!(graph.requests().len(), 2, "nothing is sent again");
}

async fn a_refused_reply_is_failed_with_the_platforms_reason_and_not_retried(backend: Backend) {
    let graph = FakePlatform::start(vec![(
        400,
        json!({"error":{"message":"Error validating access token: Session has expired","type":"OAuthException","code":190,"error_subcode":463,"fbtrace_id":"B2"}}),
    )])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start_env(
        backend,
        dir.path(),
        &[],
        &[
            ("CROSSDESK_FACEBOOK_GRAPH_URL", graph.base.clone()),
            ("CROSSDESK_FACEBOOK_PAGE_TOKEN", "expired-token".into()),
        ],
    );
    assert_eq!(
        stack
            .post_signed("facebook", &fresh_messenger_event("m_in_2"))
            .await
            .0,
        200
    );
    let ticket = only_ticket(&stack).await;
    let message = reply(&stack, &ticket, json!({"text": "Hello"})).await;
    let delivery = settled_delivery(&stack, &ticket, &message).await;
    assert_eq!(delivery["status"], "failed", "{delivery}");
    assert!(
        delivery["error"]["code"]
            .as_str()
            .unwrap()
            .starts_with("graph_190"),
        "{delivery}"
    );
    assert!(!delivery["error"]["reason"]
        .as_str()
        .unwrap()
        .contains("expired-token"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(graph.requests().len(), 1);
}

async fn a_chat_reply_is_posted_signed_to_the_callback(backend: Backend) {
    let chat = FakePlatform::start(vec![(200, json!({"ok": true}))]).await;
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start_env(
        backend,
        dir.path(),
        &[],
        &[(
            "CROSSDESK_CHAT_CALLBACK_URL",
            format!("{}/crossdesk/replies", chat.base),
        )],
    );
    assert_eq!(stack.post_event("chat", "message.json").await.0, 200);
    let ticket = only_ticket(&stack).await;
    let message = reply(&stack, &ticket, json!({"text": "Yes, until Friday."})).await;
    let delivery = settled_delivery(&stack, &ticket, &message).await;
    assert_eq!(delivery["status"], "sent", "{delivery}");

    let requests = chat.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!(sent.path, "/crossdesk/replies");
    let body = sent.json();
    assert_eq!(body["session_id"], "sess_sample_01");
    assert_eq!(body["message"]["id"], message.as_str());
    assert_eq!(body["message"]["text"], "Yes, until Friday.");
    // The backend can check the signature with the shared secret, like Crossdesk checks its.
    let headers = Headers::new(sent.headers.iter().map(|(n, v)| (n.as_str(), v.clone())));
    let channel = ChatChannel::new(secrecy::SecretString::from(CHAT_SECRET));
    channel
        .verify(
            &WebhookRequest {
                headers: &headers,
                body: &sent.body,
            },
            chrono::Utc::now(),
        )
        .expect("a valid v1 signature");
}

async fn an_email_reply_threads_and_the_customers_answer_comes_back_to_the_ticket(
    backend: Backend,
) {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start_env(
        backend,
        dir.path(),
        &[],
        &[
            ("CROSSDESK_EMAIL_FROM", "support@sample.example".into()),
            ("CROSSDESK_EMAIL_FROM_NAME", "Sample Support".into()),
        ],
    );
    if backend == Backend::Aws {
        // SES sends only from a verified identity.
        common::ses_verify_domain("sample.example").await;
    }
    assert_eq!(stack.post_event("email", "plain-and-html.eml").await.0, 200);
    let ticket = only_ticket(&stack).await;
    let message = reply(
        &stack,
        &ticket,
        json!({"text": "We corrected the address."}),
    )
    .await;
    let delivery = settled_delivery(&stack, &ticket, &message).await;
    assert_eq!(delivery["status"], "sent", "{delivery}");
    let our_id = delivery["platform_id"].as_str().unwrap().to_string();

    // The mail sent (the outbox locally; SES on AWS, as moto recorded it) threads onto the
    // customer's.
    let mime = match backend {
        Backend::Embedded => {
            let outbox = dir.path().join("outbox");
            let file = std::fs::read_dir(&outbox)
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .path();
            std::fs::read(&file).unwrap()
        }
        Backend::Aws => {
            // SES's id, as SES names it in the Message-ID it gives the mail.
            let ses_id = our_id
                .strip_suffix("@email.amazonses.com")
                .unwrap_or_else(|| panic!("an SES message id: {our_id}"));
            common::ses_sent_mail(ses_id).await
        }
    };
    let parsed = mail_parser::MessageParser::default().parse(&mime).unwrap();
    assert_eq!(
        parsed.in_reply_to().as_text(),
        Some("CAF=sample-0001@mail.example.com")
    );
    if backend == Backend::Embedded {
        assert_eq!(parsed.message_id(), Some(our_id.as_str()));
    }
    assert_eq!(
        parsed.subject(),
        Some(format!("Re: Invoice address wrong [#{ticket}]").as_str())
    );
    let reply_to = parsed
        .reply_to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap();
    // The plus-address carries the ticket and its signature.
    let ticket_id = crossdesk_core::TicketId::parse(&ticket).unwrap();
    assert_eq!(
        reply_to,
        format!(
            "support+{ticket}.{}@sample.example",
            common::thread_key().ticket_signature(&ticket_id)
        )
    );

    // The customer answers that mail; it lands in the same ticket.
    let answer = format!(
        "From: Alex Example <alex@example.com>\r\nTo: {reply_to}\r\nSubject: Re: Re: Invoice address wrong [#{ticket}]\r\n\
         Date: Sat, 21 Nov 2026 09:00:00 +0000\r\nMessage-ID: <answer-1@mail.example.com>\r\n\
         In-Reply-To: <{our_id}>\r\nReferences: <CAF=sample-0001@mail.example.com> <{our_id}>\r\n\
         Content-Type: text/plain; charset=UTF-8\r\n\r\nThank you!\r\n"
    );
    assert_eq!(stack.post_signed("email", answer.as_bytes()).await.0, 200);
    assert_eq!(stack.wait_for_messages(3).await, 3);
    let tickets = stack.tickets().await;
    assert_eq!(tickets.len(), 1, "the answer joined the ticket");
    let _ = AGENT_TOKEN;
}

async fn a_reply_on_a_channel_without_credentials_fails_with_a_clear_reason(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(backend, dir.path());
    assert_eq!(stack.post_event("twitter", "dm.json").await.0, 200);
    let ticket = only_ticket(&stack).await;
    let message = reply(&stack, &ticket, json!({"text": "Thanks!"})).await;
    let delivery = settled_delivery(&stack, &ticket, &message).await;
    assert_eq!(delivery["status"], "failed");
    assert_eq!(delivery["error"]["code"], "channel_not_configured");
}

/// A Messenger message from a customer, written `age` ago (whole seconds), and when that was.
fn messenger_event_written(mid: &str, age: chrono::TimeDelta) -> (Vec<u8>, DateTime<Utc>) {
    let now = Utc::now();
    let written = DateTime::from_timestamp(now.timestamp() - age.num_seconds(), 0).unwrap();
    let body = json!({"object":"page","entry":[{"id":"PAGE_1","time":now.timestamp_millis(),"messaging":[{
        "sender":{"id":"PSID_42"},"recipient":{"id":"PAGE_1"},"timestamp":written.timestamp_millis(),
        "message":{"mid":mid,"text":"Where is my parcel?"}}]}]});
    (body.to_string().into_bytes(), written)
}

/// The stack's settings for sending through the fake Graph (its host: the API version is a
/// setting of its own), plus `extra`.
fn graph_env(graph: &FakePlatform, extra: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("CROSSDESK_FACEBOOK_GRAPH_URL", graph.base.clone()),
        (
            "CROSSDESK_FACEBOOK_PAGE_TOKEN",
            "page-token-123".to_string(),
        ),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    env
}

fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().unwrap_or_else(|| panic!("a time: {value}")))
        .unwrap()
        .to_utc()
}

async fn a_closed_messenger_window_is_shown_and_a_reply_refused_before_anything_is_queued(
    backend: Backend,
) {
    let graph = FakePlatform::start(vec![(
        200,
        json!({"recipient_id":"PSID_42","message_id":"m_never"}),
    )])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start_env(backend, dir.path(), &[], &graph_env(&graph, &[]));
    let (event, written) = messenger_event_written("m_old_1", chrono::TimeDelta::hours(30));
    assert_eq!(stack.post_signed("facebook", &event).await.0, 200);
    let ticket = only_ticket(&stack).await;

    let view = stack.ticket(&ticket).await;
    let windows = view["reply_windows"].as_array().expect("reply_windows");
    assert_eq!(windows.len(), 1, "{windows:#?}");
    let w = &windows[0];
    assert_eq!(w["channel"], "facebook");
    assert_eq!(w["visibility"], "private");
    assert_eq!(w["can_reply"], false, "{w}");
    assert_eq!(
        time(&w["window_ends_at"]),
        written + chrono::TimeDelta::hours(24)
    );
    assert_eq!(w["message_tag"], Value::Null);
    let reason = w["reason"].as_str().unwrap();
    assert!(reason.contains("24-hour window closed"), "{reason}");
    assert!(reason.contains("no Human Agent permission"), "{reason}");
    // A Messenger customer has no email address Crossdesk knows.
    assert_eq!(w["alternative"], Value::Null);

    let (status, answer) = stack
        .api_send(
            Method::POST,
            &format!("/api/tickets/{ticket}/replies"),
            &json!({"text": "Sorry for the wait!"}),
        )
        .await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["error"]["code"], "window_closed");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("24-hour window closed"), "{message}");
    assert!(message.contains("no email address"), "{message}");

    // Nothing was stored, queued or sent.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        stack.ticket(&ticket).await["messages"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(graph.requests().is_empty(), "{:?}", graph.requests());
}

async fn an_open_messenger_window_shows_when_it_closes(backend: Backend) {
    let graph = FakePlatform::start(vec![(
        200,
        json!({"recipient_id":"PSID_42","message_id":"m_reply_1"}),
    )])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start_env(backend, dir.path(), &[], &graph_env(&graph, &[]));
    let (event, written) = messenger_event_written("m_new_1", chrono::TimeDelta::minutes(5));
    assert_eq!(stack.post_signed("facebook", &event).await.0, 200);
    let ticket = only_ticket(&stack).await;

    let view = stack.ticket(&ticket).await;
    assert_eq!(
        view["reply_windows"],
        json!([{
            "channel": "facebook",
            "visibility": "private",
            "can_reply": true,
            "window_ends_at": view["reply_windows"][0]["window_ends_at"],
            "message_tag": null,
            "reason": null,
            "alternative": null,
        }])
    );
    assert_eq!(
        time(&view["reply_windows"][0]["window_ends_at"]),
        written + chrono::TimeDelta::hours(24)
    );
    let message = reply(&stack, &ticket, json!({"text": "On its way."})).await;
    assert_eq!(
        settled_delivery(&stack, &ticket, &message).await["status"],
        "sent"
    );
    assert_eq!(graph.requests()[0].json()["messaging_type"], "RESPONSE");
}

async fn with_human_agent_a_30_hour_old_message_is_answered_with_the_tag(backend: Backend) {
    let graph = FakePlatform::start(vec![(
        200,
        json!({"recipient_id":"PSID_42","message_id":"m_reply_2"}),
    )])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let env = graph_env(&graph, &[("CROSSDESK_FACEBOOK_HUMAN_AGENT", "true")]);
    let stack = Stack::start_env(backend, dir.path(), &[], &env);
    let (event, written) = messenger_event_written("m_old_2", chrono::TimeDelta::hours(30));
    assert_eq!(stack.post_signed("facebook", &event).await.0, 200);
    let ticket = only_ticket(&stack).await;

    let view = stack.ticket(&ticket).await;
    let w = &view["reply_windows"][0];
    assert_eq!(w["can_reply"], true, "{w}");
    assert_eq!(w["message_tag"], "HUMAN_AGENT");
    assert_eq!(
        time(&w["window_ends_at"]),
        written + chrono::TimeDelta::days(7)
    );

    let message = reply(&stack, &ticket, json!({"text": "Sorry for the wait."})).await;
    assert_eq!(
        settled_delivery(&stack, &ticket, &message).await["status"],
        "sent"
    );
    let sent = graph.requests()[0].json();
    assert_eq!(sent["messaging_type"], "MESSAGE_TAG");
    assert_eq!(sent["tag"], "HUMAN_AGENT");
}

async fn channels_without_a_window_can_always_be_answered(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(backend, dir.path());
    // The sample mail is days old; email has no window.
    assert_eq!(stack.post_event("email", "plain-and-html.eml").await.0, 200);
    let ticket = only_ticket(&stack).await;
    let view = stack.ticket(&ticket).await;
    assert_eq!(
        view["reply_windows"],
        json!([{
            "channel": "email",
            "visibility": "private",
            "can_reply": true,
            "window_ends_at": null,
            "message_tag": null,
            "reason": null,
            "alternative": null,
        }])
    );
}

/// A reply asked for with an `Idempotency-Key` header.
async fn reply_with_key(stack: &Stack, ticket: &str, key: &str, text: &str) -> (u16, Value) {
    let answer = stack
        .client
        .post(format!("{}/api/tickets/{ticket}/replies", stack.base))
        .bearer_auth(AGENT_TOKEN)
        .header("Idempotency-Key", key)
        .json(&json!({ "text": text }))
        .send()
        .await
        .expect("stack answers");
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

async fn a_reply_repeated_with_its_idempotency_key_is_made_and_sent_once(backend: Backend) {
    let graph = FakePlatform::start(vec![
        (
            200,
            json!({"recipient_id":"PSID_42","message_id":"m_reply_1"}),
        ),
        (
            200,
            json!({"recipient_id":"PSID_42","message_id":"m_reply_2"}),
        ),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (stack, ticket) = messenger_ticket(backend, &graph, dir.path()).await;
    let text = "It left our warehouse today.";

    // A double click: the same request twice at once.
    let (first, second) = tokio::join!(
        reply_with_key(&stack, &ticket, "click-1", text),
        reply_with_key(&stack, &ticket, "click-1", text),
    );
    assert_eq!(first.0, 202, "{}", first.1);
    assert_eq!(second.0, 202, "{}", second.1);
    let id = first.1["id"].as_str().unwrap().to_string();
    assert_eq!(second.1["id"], id.as_str(), "one reply for one key");
    assert_eq!(
        settled_delivery(&stack, &ticket, &id).await["status"],
        "sent"
    );

    // Asked again after it went out: the same reply, nothing sent again.
    let (status, again) = reply_with_key(&stack, &ticket, "click-1", text).await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["id"], id.as_str());
    assert_eq!(again["delivery"]["status"], "sent");
    // The key names that reply: another text with it is refused.
    let (status, other) = reply_with_key(&stack, &ticket, "click-1", "Something else").await;
    assert_eq!(status, 409, "{other}");
    // A key that is no key is refused before anything is stored.
    let (status, bad) = reply_with_key(&stack, &ticket, &"k".repeat(256), text).await;
    assert_eq!(status, 400, "{bad}");

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(graph.requests().len(), 1, "sent once");
    let view = stack.ticket(&ticket).await;
    let outbound: Vec<&Value> = view["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "outbound")
        .collect();
    assert_eq!(outbound.len(), 1, "{view}");
    assert_eq!(outbound[0]["id"], id.as_str());

    // Another key is another reply.
    let (status, next) = reply_with_key(&stack, &ticket, "click-2", text).await;
    assert_eq!(status, 202, "{next}");
    assert_ne!(next["id"], id.as_str());
    let next_id = next["id"].as_str().unwrap();
    assert_eq!(
        settled_delivery(&stack, &ticket, next_id).await["status"],
        "sent"
    );
    assert_eq!(graph.requests().len(), 2);
}

on_both_backends!(
    a_reply_repeated_with_its_idempotency_key_is_made_and_sent_once,
    a_messenger_reply_is_sent_once_through_the_send_api,
    a_refused_reply_is_failed_with_the_platforms_reason_and_not_retried,
    a_chat_reply_is_posted_signed_to_the_callback,
    an_email_reply_threads_and_the_customers_answer_comes_back_to_the_ticket,
    a_reply_on_a_channel_without_credentials_fails_with_a_clear_reason,
    a_closed_messenger_window_is_shown_and_a_reply_refused_before_anything_is_queued,
    an_open_messenger_window_shows_when_it_closes,
    with_human_agent_a_30_hour_old_message_is_answered_with_the_tag,
    channels_without_a_window_can_always_be_answered,
);
