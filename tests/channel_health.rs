//! End to end: channel health through the local stack on both backends. A page token Graph
//! rejects while sending (error 190) shows in `GET /api/channels` at once; a health check that
//! finds the token valid again clears it.

mod common;
#[path = "common/fake_platform.rs"]
mod fake_platform;

use std::time::{Duration, Instant};

use common::{Backend, Stack};
use fake_platform::FakePlatform;
use reqwest::Method;
use serde_json::{json, Value};

/// A Messenger message from a customer, written now.
fn messenger_event(mid: &str) -> Vec<u8> {
    let now = chrono::Utc::now().timestamp_millis();
    json!({"object":"page","entry":[{"id":"PAGE_1","time":now,"messaging":[{
        "sender":{"id":"PSID_42"},"recipient":{"id":"PAGE_1"},"timestamp":now,
        "message":{"mid":mid,"text":"Where is my parcel?"}}]}]})
    .to_string()
    .into_bytes()
}

/// `GET /api/channels` as a map from channel name to its report.
async fn channels(stack: &Stack) -> Vec<Value> {
    let (status, body) = stack.api_get("/api/channels").await;
    assert_eq!(status, 200, "{body}");
    body["channels"].as_array().cloned().unwrap()
}

fn channel<'a>(reports: &'a [Value], name: &str) -> &'a Value {
    reports
        .iter()
        .find(|r| r["channel"] == name)
        .unwrap_or_else(|| panic!("{name} is listed: {reports:#?}"))
}

async fn a_token_rejected_while_sending_marks_the_channel_at_once(backend: Backend) {
    let graph = FakePlatform::start(vec![
        // The reply: the page token has expired.
        (
            400,
            json!({"error":{"message":"Error validating access token: Session has expired on Monday, 30-Nov-26 01:00:00 PST.","type":"OAuthException","code":190,"error_subcode":463,"fbtrace_id":"Ab1"}}),
        ),
        // The health check after the page was reconnected.
        (200, json!({"id": "PAGE_1"})),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start_env(
        backend,
        dir.path(),
        &[],
        &[
            ("CROSSDESK_FACEBOOK_GRAPH_URL", graph.base.clone()),
            ("CROSSDESK_FACEBOOK_PAGE_TOKEN", "expired-page-token".into()),
            ("CROSSDESK_HEALTH_INTERVAL_SECS", "0".into()),
        ],
    );

    let before = channels(&stack).await;
    let facebook = channel(&before, "facebook");
    assert_eq!(facebook["configured"], true);
    // Not failing (a config-derived warning, such as the Graph version's retirement, may show).
    assert_ne!(facebook["status"], "failing", "{facebook}");
    assert_eq!(facebook["needs_reauthorization"], false);
    assert_eq!(facebook["last_inbound_at"], Value::Null);

    assert_eq!(
        stack
            .post_signed("facebook", &messenger_event("m_in_health"))
            .await
            .0,
        200
    );
    assert_eq!(stack.wait_for_messages(1).await, 1);
    let ticket = stack.tickets().await[0]["id"].as_str().unwrap().to_string();
    let (status, answer) = stack
        .api_send(
            Method::POST,
            &format!("/api/tickets/{ticket}/replies"),
            &json!({"text": "It left our warehouse today."}),
        )
        .await;
    assert_eq!(status, 202, "{answer}");

    // The sender is refused with error 190: the channel shows it as soon as the reply fails
    // (Instagram, on the same page token, is marked by its own write just after Facebook).
    let deadline = Instant::now() + Duration::from_secs(15);
    let reports = loop {
        let reports = channels(&stack).await;
        let marked = ["facebook", "instagram"]
            .iter()
            .all(|name| channel(&reports, name)["needs_reauthorization"] == true);
        if marked || Instant::now() > deadline {
            break reports;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for name in ["facebook", "instagram"] {
        let report = channel(&reports, name);
        assert_eq!(report["needs_reauthorization"], true, "{report}");
        assert_eq!(report["status"], "failing", "{report}");
        assert_eq!(report["reauthorization"]["code"], "graph_190_463");
        let reason = report["reasons"][0].as_str().unwrap();
        assert!(
            reason.contains("re-authorize") && reason.contains("Session has expired"),
            "{reason}"
        );
        assert!(!reason.contains("expired-page-token"), "{reason}");
    }
    assert!(
        channel(&reports, "facebook")["last_inbound_at"].is_string(),
        "the ticket writer recorded the inbound event"
    );
    assert_eq!(channel(&reports, "twitter")["needs_reauthorization"], false);
    assert_eq!(graph.requests().len(), 1, "one send, not retried");

    // The page is reconnected; a check now finds the token valid and clears the mark.
    let (status, body) = stack
        .api_send(Method::POST, "/api/channels/check", &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let reports = body["channels"].as_array().cloned().unwrap();
    let facebook = channel(&reports, "facebook");
    assert_eq!(facebook["needs_reauthorization"], false, "{facebook}");
    assert_ne!(facebook["status"], "failing", "{facebook}");
    let token_check = facebook["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "page_token")
        .unwrap_or_else(|| panic!("a page_token check: {facebook}"));
    assert_eq!(token_check["status"], "ok");
    assert!(facebook["last_checked_at"].is_string());
    let check = &graph.requests()[1];
    assert_eq!(check.method, "GET");
    // `/{graph version}/me?fields=id`, the version the senders use.
    assert!(
        check.path.starts_with("/v") && check.path.ends_with("/me?fields=id"),
        "{check:?}"
    );
    assert_eq!(
        check.header("authorization"),
        Some("Bearer expired-page-token")
    );
}

async fn unconfigured_channels_say_what_is_missing(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start_with(backend, dir.path(), &["CROSSDESK_CHAT_SECRET"]);
    let reports = channels(&stack).await;
    let names: Vec<&str> = reports
        .iter()
        .map(|r| r["channel"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["facebook", "instagram", "twitter", "email", "chat"]);
    let chat = channel(&reports, "chat");
    assert_eq!(chat["configured"], false);
    assert_eq!(chat["status"], "not_configured");
    assert!(
        chat["reasons"][0]
            .as_str()
            .unwrap()
            .contains("CROSSDESK_CHAT_SECRET"),
        "{chat}"
    );
    // Facebook receives but cannot answer: a warning naming the page token.
    let facebook = channel(&reports, "facebook");
    assert_eq!(facebook["status"], "warning", "{facebook}");
    assert!(
        facebook["reasons"].as_array().unwrap().iter().any(|r| r
            .as_str()
            .unwrap()
            .contains("CROSSDESK_FACEBOOK_PAGE_TOKEN")),
        "{facebook}"
    );
    // The route is the agent API's: no token, no answer.
    let anonymous = reqwest::get(format!("{}/api/channels", stack.base))
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
}

on_both_backends!(
    a_token_rejected_while_sending_marks_the_channel_at_once,
    unconfigured_channels_say_what_is_missing,
);
