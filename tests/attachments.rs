//! End to end: a Messenger message's attachments are copied at once by the ticket writer (the
//! platform's URLs expire), checked by checksum, and served to agents through short-lived links;
//! a file that cannot be fetched is marked on the message, never silently dropped; a URL that
//! leads to a private address (cloud metadata) is refused; a redelivered webhook downloads
//! nothing again.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use common::{Backend, Stack};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const JPEG: &[u8] = b"\xff\xd8\xff\xe0 a tiny jpeg";
const HTML: &[u8] = b"<script>alert(1)</script>";

/// A platform CDN on 127.0.0.1 that counts the requests per path.
#[derive(Clone)]
struct FakeCdn {
    hits: Arc<Mutex<HashMap<String, u32>>>,
    base: String,
    addr: String,
}

impl FakeCdn {
    async fn start() -> FakeCdn {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let cdn = FakeCdn {
            hits: Arc::default(),
            base: format!("http://{addr}"),
            addr,
        };
        let app = Router::new().fallback(serve).with_state(cdn.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        cdn
    }

    fn hits(&self, path: &str) -> u32 {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

async fn serve(State(cdn): State<FakeCdn>, uri: Uri) -> Response {
    *cdn.hits
        .lock()
        .unwrap()
        .entry(uri.path().to_string())
        .or_default() += 1;
    match uri.path() {
        "/photo.jpg" => ([(header::CONTENT_TYPE, "image/jpeg")], JPEG).into_response(),
        "/invoice.html" => ([(header::CONTENT_TYPE, "text/html")], HTML).into_response(),
        "/expired.jpg" => StatusCode::NOT_FOUND.into_response(),
        "/to-metadata" => {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::LOCATION,
                "http://169.254.169.254/latest/meta-data/iam/"
                    .parse()
                    .unwrap(),
            );
            (StatusCode::FOUND, headers).into_response()
        }
        _ => StatusCode::IM_A_TEAPOT.into_response(),
    }
}

/// A Messenger message with four attachments, in Meta's wire format.
fn webhook(cdn: &FakeCdn) -> Vec<u8> {
    let now = chrono::Utc::now().timestamp_millis();
    let attachment = |kind: &str, path: &str| json!({"type": kind, "payload": {"url": format!("{}{path}", cdn.base)}});
    serde_json::to_vec(&json!({
        "object": "page",
        "entry": [{"id": "PAGE_1", "time": now, "messaging": [{
            "sender": {"id": "PSID_ATTACH"},
            "recipient": {"id": "PAGE_1"},
            "timestamp": now,
            "message": {"mid": "m_attachments_1", "text": "my order, see photos", "attachments": [
                attachment("image", "/photo.jpg"),
                attachment("file", "/invoice.html"),
                attachment("image", "/expired.jpg"),
                attachment("image", "/to-metadata"),
            ]}
        }]}]
    }))
    .unwrap()
}

/// Fetches an attachment link (a signed path on the local stack, a pre-signed S3 URL on AWS).
async fn download(stack: &Stack, link: &Value) -> reqwest::Response {
    let url = link["url"].as_str().unwrap();
    let url = if url.starts_with('/') {
        format!("{}{url}", stack.base)
    } else {
        url.to_string()
    };
    reqwest::get(url).await.unwrap()
}

async fn attachments_are_copied_at_once_and_served_through_short_lived_links(backend: Backend) {
    let cdn = FakeCdn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start_env(
        backend,
        dir.path(),
        &[],
        &[("CROSSDESK_MEDIA_ALLOW_PRIVATE", cdn.addr.clone())],
    );
    let body = webhook(&cdn);
    let (status, answer) = stack.post_signed("facebook", &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(stack.wait_for_messages(1).await, 1);

    let ticket_id = stack.tickets().await[0]["id"].as_str().unwrap().to_string();
    let ticket = stack.ticket(&ticket_id).await;
    let message = &ticket["messages"][0];
    let message_id = message["id"].as_str().unwrap();
    let attachments = message["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 4, "{message}");

    let sha = hex::encode(Sha256::digest(JPEG));
    let photo = &attachments[0];
    assert_eq!(photo["sha256"], sha.as_str());
    assert_eq!(photo["object_ref"], format!("media:sha256:{sha}"));
    assert_eq!(photo["size"], JPEG.len());
    assert_eq!(photo["content_type"], "image/jpeg");
    assert!(photo.get("fetch_error").is_none(), "{photo}");
    assert_eq!(attachments[1]["content_type"], "text/html");
    assert_eq!(attachments[2]["fetch_error"], "download refused: HTTP 404");
    assert!(attachments[2].get("object_ref").is_none());
    assert_eq!(
        attachments[3]["fetch_error"],
        "refused to fetch from a non-public address: 169.254.169.254:80"
    );
    assert_eq!(cdn.hits("/expired.jpg"), 1, "a 404 is final: not retried");

    let link_path =
        |i: usize| format!("/api/tickets/{ticket_id}/messages/{message_id}/attachments/{i}");
    let (status, link) = stack.api_get(&link_path(0)).await;
    assert_eq!(status, 200, "{link}");
    assert_eq!(link["inline"], true);
    assert_eq!(link["sha256"], sha.as_str());
    let file = download(&stack, &link).await;
    assert_eq!(file.status(), 200);
    assert_eq!(file.headers()["content-type"], "image/jpeg");
    assert_eq!(file.bytes().await.unwrap().as_ref(), JPEG);

    // HTML is never shown inline from a Crossdesk link: it comes as an opaque download.
    let (status, link) = stack.api_get(&link_path(1)).await;
    assert_eq!(status, 200, "{link}");
    assert_eq!(link["inline"], false);
    let file = download(&stack, &link).await;
    assert_eq!(file.headers()["content-type"], "application/octet-stream");
    assert!(file.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    assert_eq!(file.bytes().await.unwrap().as_ref(), HTML);

    let (status, missing) = stack.api_get(&link_path(2)).await;
    assert_eq!(status, 404, "{missing}");
    assert!(
        missing.to_string().contains("HTTP 404"),
        "the agent learns why: {missing}"
    );
    let (status, _) = stack.api_get(&link_path(9)).await;
    assert_eq!(status, 404);

    if backend == Backend::Embedded {
        // A local link altered to show the HTML inline no longer verifies.
        let (_, link) = stack.api_get(&link_path(1)).await;
        let forged = link["url"]
            .as_str()
            .unwrap()
            .replace("disposition=attachment", "disposition=inline");
        let answer = reqwest::get(format!("{}{forged}", stack.base))
            .await
            .unwrap();
        assert_eq!(answer.status(), 403);
    }

    // The platform delivers the webhook again: nothing is stored or downloaded twice.
    let (status, _) = stack.post_signed("facebook", &body).await;
    assert_eq!(status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(stack.wait_for_messages(1).await, 1);
    assert_eq!(cdn.hits("/photo.jpg"), 1, "the copy is not fetched again");
}

on_both_backends!(attachments_are_copied_at_once_and_served_through_short_lived_links);
