//! End to end: the website widget's public chat API on the real `crossdesk-local` binary. A
//! visitor starts a session, writes; the agent sees the ticket, notes and replies; the reply
//! (never the note) reaches the visitor's poll, sent. Plus the limits, the token checks, CORS,
//! the console's conditional GETs and the static files.

mod common;

use std::time::{Duration, Instant};

use common::{Backend, Stack};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const XSS: &str = "<img src=x onerror=alert(1)>";

/// A visitor's session as the widget keeps it.
struct Visitor {
    session_id: String,
    token: String,
}

async fn start_session(stack: &Stack, body: Value) -> Visitor {
    let r = stack
        .client
        .post(format!("{}/chat/api/sessions", stack.base))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let session: Value = r.json().await.unwrap();
    let hex32 = |s: &str, prefix: &str| {
        s.strip_prefix(prefix)
            .is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    assert!(
        hex32(session["session_id"].as_str().unwrap(), "cs_"),
        "{session}"
    );
    assert!(
        hex32(session["visitor_id"].as_str().unwrap(), "cv_"),
        "{session}"
    );
    let expires: chrono::DateTime<chrono::Utc> =
        session["expires_at"].as_str().unwrap().parse().unwrap();
    let lifetime = expires - chrono::Utc::now();
    assert!(lifetime > chrono::TimeDelta::minutes(55) && lifetime <= chrono::TimeDelta::hours(1));
    Visitor {
        session_id: session["session_id"].as_str().unwrap().into(),
        token: session["token"].as_str().unwrap().into(),
    }
}

async fn post_message(stack: &Stack, token: &str, body: &Value) -> (StatusCode, Value) {
    let r = stack
        .client
        .post(format!("{}/chat/api/messages", stack.base))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn read_messages(stack: &Stack, token: &str, after: Option<&str>) -> (StatusCode, Value) {
    let mut request = stack
        .client
        .get(format!("{}/chat/api/messages", stack.base))
        .bearer_auth(token);
    if let Some(after) = after {
        request = request.query(&[("after", after)]);
    }
    let r = request.send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Polls like the widget until `done` holds for the answer (15 s at most).
async fn poll_until(stack: &Stack, token: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = read_messages(stack, token, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "gave up polling: {body:#}");
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
}

async fn chat_ticket(stack: &Stack, session_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for t in stack.tickets().await {
            let view = stack.ticket(t["id"].as_str().unwrap()).await;
            let ours = view["messages"].as_array().unwrap().iter().any(|m| {
                m["conversation"]["session_id"] == session_id
                    || m["conversation"].to_string().contains(session_id)
            });
            if ours {
                return view;
            }
        }
        assert!(Instant::now() < deadline, "no ticket for {session_id}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn a_visitor_chats_with_an_agent_through_the_widget_api(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(backend, dir.path());
    let visitor = start_session(&stack, json!({"name": "Vera", "email": "vera@example.com"})).await;

    // Before the first message there is no ticket, and nothing to read.
    let (status, empty) = read_messages(&stack, &visitor.token, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(empty["messages"], json!([]));

    // A message, its retry (same client_id), and a second message.
    let first = json!({"text": XSS, "client_id": "m1"});
    let (status, accepted) = post_message(&stack, &visitor.token, &first).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let first_id = format!("{}/m1", visitor.session_id);
    assert_eq!(accepted["id"], first_id.as_str());
    let (status, again) = post_message(&stack, &visitor.token, &first).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(again["id"], first_id.as_str());
    let (status, _) = post_message(
        &stack,
        &visitor.token,
        &json!({"text": "  When does my order arrive?  ", "client_id": "m2"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    // The agent sees one chat ticket with the two messages, stored once, text verbatim.
    let view = chat_ticket(&stack, &visitor.session_id).await;
    let id = view["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut view = view;
    while view["messages"].as_array().unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "{view:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        view = stack.ticket(&id).await;
    }
    let messages = view["messages"].as_array().unwrap();
    assert_eq!(
        messages.len(),
        2,
        "the retried client_id is stored once: {view:#}"
    );
    assert_eq!(view["channel"], "chat");
    assert_eq!(messages[0]["text"], XSS);
    assert_eq!(messages[0]["author"]["name"], "Vera");
    assert_eq!(view["contact"]["name"], "Vera");

    // A note, then a reply.
    let (status, body) = stack
        .api_send(
            Method::POST,
            &format!("/api/tickets/{id}/notes"),
            &json!({"text": "internal: check the warehouse"}),
        )
        .await;
    assert!(status < 300, "{status} {body}");
    let reply_text = "Hi Vera, <b>tomorrow</b> & not later";
    let (status, reply) = stack
        .api_send(
            Method::POST,
            &format!("/api/tickets/{id}/replies"),
            &json!({"text": reply_text}),
        )
        .await;
    assert_eq!(status, 202, "{reply}");
    let reply_id = reply["id"].as_str().unwrap().to_string();

    // The widget sees its two messages and the reply, sent; never the note.
    let seen = poll_until(&stack, &visitor.token, |b| {
        b["messages"].as_array().unwrap().len() >= 3
    })
    .await;
    let list = seen["messages"].as_array().unwrap();
    assert_eq!(list.len(), 3, "{seen:#}");
    assert_eq!(list[0]["id"], first_id.as_str());
    assert_eq!(list[0]["client_id"], "m1");
    assert_eq!(list[0]["direction"], "inbound");
    assert_eq!(list[0]["text"], XSS, "carried verbatim");
    assert_eq!(list[1]["text"], "When does my order arrive?");
    assert_eq!(list[2]["direction"], "outbound");
    assert_eq!(list[2]["id"], reply_id.as_str());
    assert_eq!(list[2]["text"], reply_text);
    assert!(
        !seen.to_string().contains("warehouse"),
        "a note never shows"
    );
    let view = stack.ticket(&id).await;
    let stored_reply = view["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == reply_id.as_str())
        .unwrap();
    assert_eq!(
        stored_reply["delivery"]["status"], "sent",
        "{stored_reply:#}"
    );

    // `after` returns only what is newer.
    let cursor = seen["cursor"].as_str().unwrap().to_string();
    let (_, nothing) = read_messages(&stack, &visitor.token, Some(&cursor)).await;
    assert_eq!(nothing["messages"], json!([]));
    let (status, _) = post_message(
        &stack,
        &visitor.token,
        &json!({"text": "Thanks!", "client_id": "m3"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let deadline = Instant::now() + Duration::from_secs(30);
    let newer = loop {
        let (status, body) = read_messages(&stack, &visitor.token, Some(&cursor)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if !body["messages"].as_array().unwrap().is_empty() {
            break body;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(400)).await;
    };
    let texts: Vec<&str> = newer["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["Thanks!"]);

    // A refreshed token continues the same session.
    let r = stack
        .client
        .post(format!("{}/chat/api/sessions/refresh", stack.base))
        .bearer_auth(&visitor.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let refreshed: Value = r.json().await.unwrap();
    assert_eq!(refreshed["session_id"], visitor.session_id.as_str());
    let (status, body) = read_messages(&stack, refreshed["token"].as_str().unwrap(), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["messages"].as_array().unwrap().len(), 4);

    // Another visitor sees nothing of it.
    let stranger = start_session(&stack, json!({})).await;
    let (_, theirs) = read_messages(&stack, &stranger.token, None).await;
    assert_eq!(theirs["messages"], json!([]));
}

on_both_backends!(a_visitor_chats_with_an_agent_through_the_widget_api);

/// The token with one character of its signature changed.
fn forge(token: &str) -> String {
    let (signed, tag) = token.rsplit_once('.').unwrap();
    let mut tag: Vec<char> = tag.chars().collect();
    tag[0] = if tag[0] == 'A' { 'B' } else { 'A' };
    format!("{signed}.{}", tag.into_iter().collect::<String>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_bad_tokens_and_input_and_limits_a_busy_visitor() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(Backend::Embedded, dir.path());
    let visitor = start_session(&stack, json!({})).await;
    let hello = json!({"text": "hello", "client_id": "x1"});

    // Missing, forged and foreign tokens: 401 in the API's error format.
    for token in ["", "garbage", &forge(&visitor.token)] {
        let (status, body) = post_message(&stack, token, &hello).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token}: {body}");
        assert_eq!(body["error"]["code"], "unauthorized");
        let (status, _) = read_messages(&stack, token, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let r = stack
        .client
        .post(format!("{}/chat/api/sessions/refresh", stack.base))
        .bearer_auth(forge(&visitor.token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Invalid input.
    let bad = [
        json!({"text": "   ", "client_id": "x2"}),
        json!({"text": "a".repeat(4001), "client_id": "x2"}),
        json!({"text": "hi", "client_id": "no/slashes"}),
        json!({"text": "hi", "client_id": "a".repeat(65)}),
        json!({"text": "hi", "client_id": "x2", "email": "not-an-email"}),
    ];
    for body in bad {
        let (status, answer) = post_message(&stack, &visitor.token, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
    }
    let (status, _) = post_message(
        &stack,
        &visitor.token,
        &json!({"text": "a".repeat(4000), "client_id": "x3", "name": "b".repeat(5000)}),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "8 KiB body cap");
    let r = stack
        .client
        .post(format!("{}/chat/api/sessions", stack.base))
        .json(&json!({"email": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // CORS: the preflight and every answer.
    let r = stack
        .client
        .request(Method::OPTIONS, format!("{}/chat/api/messages", stack.base))
        .header("origin", "https://shop.example.com")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert_eq!(
        r.headers()["access-control-allow-headers"],
        "authorization, content-type"
    );
    assert_eq!(
        r.headers()["access-control-allow-methods"],
        "GET, POST, OPTIONS"
    );

    // 20 messages a minute per visitor (refused attempts count too, so a fresh visitor here);
    // the 21st is refused with Retry-After.
    let visitor = start_session(&stack, json!({})).await;
    for n in 0..20 {
        let (status, body) = post_message(
            &stack,
            &visitor.token,
            &json!({"text": format!("message {n}"), "client_id": format!("r{n}")}),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{n}: {body}");
    }
    let r = stack
        .client
        .post(format!("{}/chat/api/messages", stack.base))
        .bearer_auth(&visitor.token)
        .json(&json!({"text": "one too many", "client_id": "r20"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // Another visitor is not held back by the first.
    let other = start_session(&stack, json!({})).await;
    let (status, _) = post_message(&stack, &other.token, &hello).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

/// An agent's GET of `url`, conditional on `etag` when one is given.
async fn agent_get(stack: &Stack, url: &str, etag: Option<&str>) -> reqwest::Response {
    let mut request = stack.client.get(url).bearer_auth(common::AGENT_TOKEN);
    if let Some(etag) = etag {
        request = request.header("if-none-match", etag);
    }
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_polls_with_etags_and_the_static_files_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(Backend::Embedded, dir.path());
    let (status, _) = stack.post_event("chat", "message.json").await;
    assert_eq!(status, 200);
    assert_eq!(stack.wait_for_messages(1).await, 1);
    let id = stack.tickets().await[0]["id"].as_str().unwrap().to_string();

    for path in ["/api/tickets".to_string(), format!("/api/tickets/{id}")] {
        let url = format!("{}{path}", stack.base);
        // The writer may still be updating the new ticket (its workflow, its SLA) just after the
        // message shows: a changed ticket rightly gets a new ETag, so ask again until it rests.
        let deadline = Instant::now() + Duration::from_secs(10);
        let unchanged = loop {
            let first = agent_get(&stack, &url, None).await;
            assert_eq!(first.status(), StatusCode::OK);
            assert_eq!(first.headers()["cache-control"], "no-store");
            let etag = first.headers()["etag"].to_str().unwrap().to_string();
            assert!(etag.starts_with('"'), "a strong ETag: {etag}");
            let again = agent_get(&stack, &url, Some(&etag)).await;
            if again.status() != StatusCode::OK || Instant::now() > deadline {
                break again;
            }
            assert_ne!(
                again.headers()["etag"].to_str().unwrap(),
                etag,
                "{path}: an unchanged ETag is answered 304, not 200"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(unchanged.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert!(unchanged.bytes().await.unwrap().is_empty());
    }
    // A change gives a new ETag.
    let url = format!("{}/api/tickets/{id}", stack.base);
    let before = agent_get(&stack, &url, None).await;
    let etag = before.headers()["etag"].to_str().unwrap().to_string();
    let (status, _) = stack
        .api_send(
            Method::PATCH,
            &format!("/api/tickets/{id}"),
            &json!({"status": "pending"}),
        )
        .await;
    assert_eq!(status, 200);
    let after = agent_get(&stack, &url, Some(&etag)).await;
    assert_eq!(after.status(), StatusCode::OK);

    let get = |path: &'static str| {
        let client = stack.client.clone();
        let url = format!("{}{path}", stack.base);
        async move { client.get(url).send().await.unwrap() }
    };
    let console = get("/console/").await;
    assert_eq!(console.status(), StatusCode::OK);
    assert!(console.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(console.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert_eq!(console.headers()["x-content-type-options"], "nosniff");
    let widget = get("/widget.js").await;
    assert_eq!(widget.status(), StatusCode::OK);
    assert!(widget.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert_eq!(widget.headers()["access-control-allow-origin"], "*");
    assert_eq!(get("/demo/").await.status(), StatusCode::OK);
    let config: Value = get("/console/config.json").await.json().await.unwrap();
    assert_eq!(config, json!({"auth": "token"}));
}
