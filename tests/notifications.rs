//! End to end: agent notifications on the real `crossdesk-local` (embedded backend). An agent
//! chooses events through `PUT /api/agents/me/notifications`; a new ticket then reaches them as
//! a mail file in `<data dir>/notifications/` and as one signed POST to the notifications
//! webhook, a local receiver that checks the signature.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Router;
use common::{Backend, Stack};
use crossdesk_channels::events_webhook::sign;
use reqwest::Method;
use serde_json::{json, Value};

const NOTIFY_SECRET: &str = "test-notify-webhook-secret";

type Got = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

async fn receiver() -> (Got, String) {
    let got: Got = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/slack", listener.local_addr().unwrap());
    let app = Router::new()
        .fallback(|State(got): State<Got>, request: Request| async move {
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
            got.lock().unwrap().push((parts.headers, body.to_vec()));
            StatusCode::OK
        })
        .with_state(got.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (got, url)
}

/// Waits (20 s at most) until `check` holds.
async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what} never happened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn spooled(dir: &std::path::Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir.join("notifications")) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

#[tokio::test]
async fn a_new_ticket_reaches_the_subscribed_agent_by_mail_and_signed_webhook() {
    let (got, url) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start_env(
        Backend::Embedded,
        dir.path(),
        &[],
        &[
            ("CROSSDESK_NOTIFY_ENABLED", "true".into()),
            ("CROSSDESK_NOTIFY_WEBHOOK_URL", url),
            ("CROSSDESK_NOTIFY_WEBHOOK_SECRET", NOTIFY_SECRET.into()),
            ("CROSSDESK_CONSOLE_URL", "https://desk.acme.example".into()),
        ],
    );
    let (status, prefs) = stack
        .api_send(
            Method::PUT,
            "/api/agents/me/notifications",
            &json!({"email": "agent@acme.example", "events": ["ticket.created"]}),
        )
        .await;
    assert_eq!(status, 200, "{prefs}");
    assert_eq!(prefs["events"], json!(["ticket.created"]));

    assert_eq!(stack.post_event("chat", "message.json").await.0, 200);
    let mails = eventually("the notification mail", || {
        Some(spooled(dir.path())).filter(|m| !m.is_empty())
    })
    .await;
    let ticket_id = stack.tickets().await[0]["id"].as_str().unwrap().to_string();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0];
    assert!(mail.contains("To: agent@acme.example\r\n"), "{mail}");
    assert!(
        mail.contains(&format!(
            "Subject: [Crossdesk] New ticket: Can I change my delivery date? [#{ticket_id}]"
        )),
        "{mail}"
    );
    assert!(mail.contains(&format!("https://desk.acme.example/tickets/{ticket_id}")));

    let (headers, body) =
        eventually("the webhook POST", || got.lock().unwrap().first().cloned()).await;
    let h = |name: &str| headers[name].to_str().unwrap().to_string();
    let timestamp: i64 = h("x-crossdesk-timestamp").parse().unwrap();
    assert_eq!(
        h("x-crossdesk-signature"),
        sign(NOTIFY_SECRET.as_bytes(), timestamp, &body)
    );
    assert_eq!(h("x-crossdesk-event"), "notification");
    let payload: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(payload["ticket_id"], ticket_id.as_str());
    assert_eq!(payload["recipients"], json!(["local-agent"]));
    assert!(payload["text"].as_str().unwrap().contains("New ticket"));
    assert_eq!(h("x-crossdesk-delivery"), payload["id"].as_str().unwrap());

    // The customer's next message is on an unassigned ticket: no one hears of it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(spooled(dir.path()).len(), 1);
    assert_eq!(got.lock().unwrap().len(), 1);
    stack.kill();
}

fn chat_body(id: &str, text: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "session_id": "s-digest",
        "visitor": {"id": "v1", "name": "Alex", "email": "alex@example.com"},
        "message": {"id": id, "text": text, "sent_at": chrono::Utc::now().to_rfc3339()},
    }))
    .unwrap()
}

#[tokio::test]
async fn messages_on_an_assigned_ticket_come_at_once_then_as_one_digest() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start_env(
        Backend::Embedded,
        dir.path(),
        &[],
        &[
            ("CROSSDESK_NOTIFY_ENABLED", "true".into()),
            ("CROSSDESK_NOTIFY_DIGEST_WINDOW_SECONDS", "4".into()),
        ],
    );
    let (status, _) = stack
        .api_send(
            Method::PUT,
            "/api/agents/me/notifications",
            &json!({"email": "agent@acme.example", "events": ["message.created"]}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        stack.post_signed("chat", &chat_body("d0", "Hello")).await.0,
        200
    );
    stack.wait_for_messages(1).await;
    // Let the events worker take the first message's events while the ticket is unassigned
    // (assigned by then, "Hello" would rightly be notified too).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ticket_id = stack.tickets().await[0]["id"].as_str().unwrap().to_string();
    let (status, body) = stack
        .api_send(
            Method::PATCH,
            &format!("/api/tickets/{ticket_id}"),
            &json!({"assignee": "local-agent"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Three messages early in one 4-second window.
    while chrono::Utc::now().timestamp_subsec_millis() > 300
        || chrono::Utc::now().timestamp() % 4 != 0
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (id, text) in [("d1", "first"), ("d2", "second"), ("d3", "third")] {
        assert_eq!(stack.post_signed("chat", &chat_body(id, text)).await.0, 200);
    }
    let mails = eventually("the immediate mail", || {
        Some(spooled(dir.path())).filter(|m| !m.is_empty())
    })
    .await;
    assert!(mails[0].contains("New customer message"), "{}", mails[0]);
    assert!(mails[0].contains("Alex: first"), "{}", mails[0]);
    let mails = eventually("the digest", || {
        Some(spooled(dir.path())).filter(|m| m.len() >= 2)
    })
    .await;
    assert!(mails[1].contains("3 updates"), "{}", mails[1]);
    for text in ["first", "second", "third"] {
        assert!(mails[1].contains(&format!("Alex: {text}")), "{}", mails[1]);
    }
    // Nothing more: one immediate mail and one digest for the window.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(spooled(dir.path()).len(), 2);
    stack.kill();
}
