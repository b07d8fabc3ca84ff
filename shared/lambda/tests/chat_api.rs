//! The `ingest-chat` function's website chat API, fed API Gateway v2 events against moto: a
//! session, a message queued on SQS, the per-address limit keyed on `sourceIp`, and 503
//! without a session key.
//!
//! Needs `AWS_ENDPOINT_URL` pointing at moto (`make test` starts it; or `scripts/moto`).

use crossdesk_aws::ChannelSecrets;
use crossdesk_lambda::deploy::Deployment;
use secrecy::SecretString;
use serde_json::{json, Value};

mod common;

use common::deployment_with;

async fn deployment(session_key: Option<&str>) -> Deployment {
    deployment_with(ChannelSecrets {
        chat_secret: Some(SecretString::from("test-chat-secret".to_string())),
        chat_session_key: session_key.map(|k| SecretString::from(k.to_string())),
        ..ChannelSecrets::default()
    })
    .await
}

/// An API Gateway v2 event for `method path` from `source_ip`, run through the router.
async fn invoke(
    router: axum::Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Value,
    source_ip: &str,
) -> (u16, Value) {
    let mut headers = json!({"content-type": "application/json"});
    if let Some(token) = token {
        headers["authorization"] = json!(format!("Bearer {token}"));
    }
    let event = json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "api.example.com",
            "domainPrefix": "api", "requestId": "r1", "routeKey": format!("{method} {path}"),
            "stage": "$default", "time": "20/Nov/2026:10:00:00 +0000", "timeEpoch": 0,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": source_ip, "userAgent": "test"}
        },
        "body": body.to_string(),
        "isBase64Encoded": false
    });
    let (status, body) = common::invoke(router, event.to_string().as_bytes()).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_chat_api_starts_a_session_and_queues_a_visitor_message() {
    let d = deployment(Some("test-chat-session-key-0123456789")).await;
    let router = d.chat_router_with(|_| None).unwrap();
    let ip = "198.51.100.9";
    let (status, session) = invoke(
        router.clone(),
        "POST",
        "/chat/api/sessions",
        None,
        json!({"name": "Vera"}),
        ip,
    )
    .await;
    assert_eq!(status, 201, "{session}");
    let token = session["token"].as_str().unwrap();
    let (status, accepted) = invoke(
        router.clone(),
        "POST",
        "/chat/api/messages",
        Some(token),
        json!({"text": "Hello", "client_id": "c1"}),
        ip,
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let sid = session["session_id"].as_str().unwrap();
    assert_eq!(accepted["id"], format!("{sid}/c1").as_str());
    let received = aws_sdk_sqs::Client::new(&d.sdk)
        .receive_message()
        .queue_url(&d.config.inbound_queue_url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    let bodies: Vec<String> = received
        .messages()
        .iter()
        .filter_map(|m| m.body().map(str::to_string))
        .collect();
    assert_eq!(bodies.len(), 1);
    assert!(bodies[0].contains(&format!("{sid}/c1")), "{}", bodies[0]);

    let (status, read) = invoke(
        router.clone(),
        "GET",
        "/chat/api/messages",
        Some(token),
        json!(null),
        ip,
    )
    .await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["messages"], json!([]), "not written yet");

    // The webhook route is still served by the same function.
    let (status, _) = invoke(router, "POST", "/webhooks/chat", None, json!({}), ip).await;
    assert_eq!(status, 401, "unsigned webhook refused");
}

#[tokio::test]
async fn the_per_address_limit_follows_the_source_ip() {
    let d = deployment(Some("test-chat-session-key-0123456789")).await;
    let router = d.chat_router_with(|_| None).unwrap();
    let mut last = 0;
    for _ in 0..21 {
        (last, _) = invoke(
            router.clone(),
            "POST",
            "/chat/api/sessions",
            None,
            json!({}),
            "203.0.113.1",
        )
        .await;
    }
    assert_eq!(last, 429, "20 sessions a minute per address");
    let (status, _) = invoke(
        router,
        "POST",
        "/chat/api/sessions",
        None,
        json!({}),
        "203.0.113.2",
    )
    .await;
    assert_eq!(status, 201, "another address is not held back");
}

#[tokio::test]
async fn without_a_session_key_the_chat_api_is_unavailable() {
    let d = deployment(None).await;
    let router = d.chat_router_with(|_| None).unwrap();
    let (status, body) = invoke(
        router,
        "POST",
        "/chat/api/sessions",
        None,
        json!({}),
        "203.0.113.1",
    )
    .await;
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], "chat_api_not_configured");
}
