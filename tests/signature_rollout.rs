//! End to end: rolling out signature checks and pinning API versions, through the real
//! `crossdesk-local` binary on both backends.
//!
//! - In `enforce` mode (the default) a webhook with a wrong signature is refused; in `report`
//!   mode it is accepted, stored, and its message flagged `signature_unverified`, while a stale
//!   or replayed chat request and a wrong handshake token stay refused.
//! - An invalid mode stops the stack at startup, naming the variable.
//! - The configured Graph API version is the one every Graph call goes to.

mod common;

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::Router;
use common::{Backend, Stack};
use crossdesk::samples::{self, SignedRequest, SigningSecrets};
use reqwest::Method;
use serde_json::{json, Value};

/// Secrets other than the stack's: what a sender that signs wrongly (or a forger) uses.
fn wrong_secrets() -> SigningSecrets {
    SigningSecrets {
        facebook_app_secret: Some("not-the-app-secret".into()),
        twitter_consumer_secret: Some("not-the-consumer-secret".into()),
        chat_secret: Some("not-the-chat-secret".into()),
        agent_token: None,
    }
}

/// A chat message from visitor `v1` in session `s1`, with its own message id.
fn chat_body(id: &str) -> Vec<u8> {
    json!({"session_id":"s1","visitor":{"id":"v1","name":"Alex"},
           "message":{"id":id,"text":format!("message {id}"),"sent_at":"2026-11-20T10:00:00Z"}})
    .to_string()
    .into_bytes()
}

/// A Messenger webhook with one customer message `mid`, now.
fn messenger(mid: &str) -> Vec<u8> {
    let now = chrono::Utc::now().timestamp_millis();
    json!({"object":"page","entry":[{"id":"PAGE_1","time":now,"messaging":[{
        "sender":{"id":"PSID_1"},"recipient":{"id":"PAGE_1"},"timestamp":now,
        "message":{"mid":mid,"text":"Hello?"}}]}]})
    .to_string()
    .into_bytes()
}

/// `body` signed for chat with `secrets`, `age_secs` ago.
fn chat_request(body: Vec<u8>, secrets: &SigningSecrets, age_secs: i64) -> SignedRequest {
    let at = chrono::Utc::now() - chrono::TimeDelta::seconds(age_secs);
    samples::sign("chat", body, secrets, at).unwrap()
}

/// The same request without its signature header.
fn unsigned(mut request: SignedRequest) -> SignedRequest {
    request
        .headers
        .retain(|(name, _)| name != "x-crossdesk-signature" && name != "x-hub-signature-256");
    request
}

/// The stored messages, by platform id (chat: `<session>/<message>`), with their
/// `signature_unverified` flag.
async fn stored_flags(stack: &Stack) -> Vec<(String, bool)> {
    let mut flags = Vec::new();
    for ticket in stack.tickets().await {
        let view = stack.ticket(ticket["id"].as_str().unwrap()).await;
        for m in view["messages"].as_array().unwrap() {
            flags.push((
                m["platform_message_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                m["signature_unverified"] == json!(true),
            ));
        }
    }
    flags.sort();
    flags
}

async fn a_wrong_signature_is_refused_when_enforced(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(backend, dir.path());
    let (status, body) = stack
        .post(&chat_request(chat_body("m1"), &wrong_secrets(), 0))
        .await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = stack
        .post(&unsigned(chat_request(
            chat_body("m2"),
            &wrong_secrets(),
            0,
        )))
        .await;
    assert_eq!(status, 401);
    let forged = samples::sign(
        "facebook",
        messenger("fb_forged"),
        &wrong_secrets(),
        chrono::Utc::now(),
    )
    .unwrap();
    assert_eq!(stack.post(&forged).await.0, 401);
    // A correctly signed one still goes through, and is not flagged.
    assert_eq!(stack.post_signed("chat", &chat_body("m3")).await.0, 200);
    assert_eq!(stack.wait_for_messages(1).await, 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stored_flags(&stack).await, [("s1/m3".to_string(), false)]);
}

async fn report_mode_accepts_and_flags_a_wrong_signature_but_not_a_replay(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start_env(
        backend,
        dir.path(),
        &[],
        &[
            ("CROSSDESK_CHAT_SIGNATURE_MODE", "report".into()),
            ("CROSSDESK_FACEBOOK_SIGNATURE_MODE", "report".into()),
        ],
    );
    // Wrongly signed, and unsigned: accepted.
    let (status, body) = stack
        .post(&chat_request(chat_body("m_wrong"), &wrong_secrets(), 0))
        .await;
    assert_eq!((status, body.as_str()), (200, r#"{"accepted":1}"#));
    let (status, body) = stack
        .post(&unsigned(chat_request(
            chat_body("m_unsigned"),
            &wrong_secrets(),
            0,
        )))
        .await;
    assert_eq!((status, body.as_str()), (200, r#"{"accepted":1}"#));
    // Correctly signed: accepted and not flagged.
    assert_eq!(
        stack.post_signed("chat", &chat_body("m_signed")).await.0,
        200
    );

    // Stale: refused, whether its signature is wrong or right (a replay).
    let (status, body) = stack
        .post(&chat_request(chat_body("m_stale"), &wrong_secrets(), 900))
        .await;
    assert_eq!(status, 401, "{body}");
    let replay = chat_request(chat_body("m_replay"), &common::secrets(), 900);
    let (status, body) = stack.post(&replay).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("replay"), "{body}");
    // Missing timestamp: refused; malformed body: refused.
    let mut no_ts = chat_request(chat_body("m_no_ts"), &wrong_secrets(), 0);
    no_ts.headers.retain(|(n, _)| n != "x-crossdesk-timestamp");
    assert_eq!(stack.post(&no_ts).await.0, 401);
    let garbage = chat_request(b"{\"session_id\":".to_vec(), &wrong_secrets(), 0);
    assert_eq!(stack.post(&garbage).await.0, 400);
    // Over the chat cap (64 KiB): refused before any signature is looked at.
    let huge = chat_request(vec![b' '; 70 * 1024], &wrong_secrets(), 0);
    assert_eq!(stack.post(&huge).await.0, 413);

    // Facebook in report mode too, but its handshake still needs the verify token.
    let forged = samples::sign(
        "facebook",
        messenger("fb_forged"),
        &wrong_secrets(),
        chrono::Utc::now(),
    )
    .unwrap();
    assert_eq!(stack.post(&forged).await.0, 200);
    let handshake = stack
        .client
        .get(format!(
            "{}/webhooks/facebook?hub.mode=subscribe&hub.verify_token=guess&hub.challenge=7",
            stack.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(handshake.status().as_u16(), 403);

    assert_eq!(stack.wait_for_messages(4).await, 4);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        stored_flags(&stack).await,
        [
            ("fb_forged".to_string(), true),
            ("s1/m_signed".to_string(), false),
            ("s1/m_unsigned".to_string(), true),
            ("s1/m_wrong".to_string(), true),
        ]
    );
}

/// Runs `crossdesk-local` with `env` until it exits (10 s at most); returns its success and
/// what it wrote to stderr.
fn run_to_exit(env: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_crossdesk-local"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CROSSDESK_PORT", "0")
        .env("CROSSDESK_DATA_DIR", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
            return (status.success(), stderr);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("crossdesk-local kept running with {env:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_invalid_signature_mode_or_graph_version_stops_the_stack_naming_the_variable() {
    for (name, value) in [
        ("CROSSDESK_CHAT_SIGNATURE_MODE", "off"),
        ("CROSSDESK_FACEBOOK_SIGNATURE_MODE", "reporting"),
        ("CROSSDESK_GRAPH_API_VERSION", "21.0"),
    ] {
        let (ok, stderr) = run_to_exit(&[(name, value)]);
        assert!(!ok, "{name}={value} was accepted");
        assert!(stderr.contains(name), "{name}: {stderr}");
    }
}

/// A fake Graph API: records each request's path and accepts every message.
#[derive(Clone, Default)]
struct FakeGraph {
    paths: Arc<Mutex<Vec<String>>>,
}

impl FakeGraph {
    async fn start() -> (FakeGraph, String) {
        let fake = FakeGraph::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new().fallback(record).with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (fake, base)
    }
}

async fn record(State(fake): State<FakeGraph>, request: Request) -> axum::Json<Value> {
    fake.paths
        .lock()
        .unwrap()
        .push(request.uri().path().to_string());
    axum::Json(json!({"recipient_id": "PSID_1", "message_id": "m_sent_1"}))
}

async fn the_configured_graph_version_is_the_one_replies_call(backend: Backend) {
    let (graph, base) = FakeGraph::start().await;
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start_env(
        backend,
        dir.path(),
        &[],
        &[
            ("CROSSDESK_FACEBOOK_GRAPH_URL", base),
            ("CROSSDESK_GRAPH_API_VERSION", "v25.0".into()),
            ("CROSSDESK_FACEBOOK_PAGE_TOKEN", "page-token-123".into()),
        ],
    );
    let (status, body) = stack
        .post_signed("facebook", &messenger("m_question"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(stack.wait_for_messages(1).await, 1);
    let ticket = stack.tickets().await[0]["id"].as_str().unwrap().to_string();
    let (status, answer) = stack
        .api_send(
            Method::POST,
            &format!("/api/tickets/{ticket}/replies"),
            &json!({"text": "Hi!"}),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while graph.paths.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "Graph was never called");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(*graph.paths.lock().unwrap(), ["/v25.0/me/messages"]);
}

async fn get_api_channels_shows_each_signature_mode_and_the_graph_version(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start_env(
        backend,
        dir.path(),
        &[],
        &[
            ("CROSSDESK_CHAT_SIGNATURE_MODE", "report".into()),
            ("CROSSDESK_GRAPH_API_VERSION", "v25.0".into()),
        ],
    );
    let (status, body) = stack.api_get("/api/channels").await;
    assert_eq!(status, 200, "{body}");
    let channel = |name: &str| {
        body["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["channel"] == name)
            .unwrap_or_else(|| panic!("no {name} in {body:#}"))
            .clone()
    };
    let finding = |channel: &Value, check: &str| {
        channel["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["check"] == check)
            .unwrap_or_else(|| panic!("no {check} finding: {channel:#}"))
            .clone()
    };
    let chat = channel("chat");
    assert_eq!(finding(&chat, "signature_mode")["status"], "warning");
    assert!(
        finding(&chat, "signature_mode")["reason"]
            .as_str()
            .unwrap()
            .contains("CROSSDESK_CHAT_SIGNATURE_MODE=enforce"),
        "{chat:#}"
    );
    assert_ne!(
        chat["status"], "ok",
        "report mode is never silent: {chat:#}"
    );
    assert!(
        chat["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().starts_with("signature_mode: report")),
        "{chat:#}"
    );
    for name in ["facebook", "instagram"] {
        let meta = channel(name);
        assert_eq!(finding(&meta, "signature_mode")["status"], "ok");
        // The status depends on the day; the version and Meta's date do not.
        let version = finding(&meta, "graph_api_version");
        let reason = version["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("v25.0") && reason.contains("2028-07-29"),
            "{version:#}"
        );
    }
    assert_eq!(
        finding(&channel("twitter"), "signature_mode")["status"],
        "ok"
    );

    // The health check flags it on each run too, without saying it twice.
    let (status, body) = stack
        .api_send(Method::POST, "/api/channels/check", &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let chat = body["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == "chat")
        .unwrap()
        .clone();
    assert!(
        chat["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["check"] == "signature_mode" && c["status"] == "warning"),
        "{chat:#}"
    );
    let mentions = chat["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r.as_str().unwrap().starts_with("signature_mode:"))
        .count();
    assert_eq!(mentions, 1, "{chat:#}");
}

async fn report_mode_never_opens_a_channel_without_its_secret(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start_env(
        backend,
        dir.path(),
        &["CROSSDESK_CHAT_SECRET"],
        &[("CROSSDESK_CHAT_SIGNATURE_MODE", "report".into())],
    );
    let (status, body) = stack
        .post(&unsigned(chat_request(
            chat_body("m1"),
            &wrong_secrets(),
            0,
        )))
        .await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("CROSSDESK_CHAT_SECRET"), "{body}");
}

on_both_backends!(
    report_mode_never_opens_a_channel_without_its_secret,
    get_api_channels_shows_each_signature_mode_and_the_graph_version,
    a_wrong_signature_is_refused_when_enforced,
    report_mode_accepts_and_flags_a_wrong_signature_but_not_a_replay,
    the_configured_graph_version_is_the_one_replies_call,
);
