//! End to end: hostile bodies, each validly signed so they get past the signature check and reach
//! the parsers: empty and one-byte bodies, invalid UTF-8, JSON nested far deeper than any
//! platform sends, huge arrays, a 10 MiB body, MIME nesting bombs and header injection through
//! encoded email subjects and names. Each is answered with the status the platform understands,
//! nothing of it is queued, the stack does not panic and keeps serving, and an email reply to a
//! mail with an injected header carries none of it.

mod common;

use std::time::{Duration, Instant};

use common::{Backend, Stack};
use crossdesk::samples;
use reqwest::Method;
use serde_json::{json, Value};

/// A validly signed request for `channel` with `body`.
fn signed(channel: &str, body: Vec<u8>) -> samples::SignedRequest {
    samples::sign(channel, body, &common::secrets(), chrono::Utc::now()).unwrap()
}

/// JSON arrays nested `depth` deep inside the channel's envelope.
fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// Sends only the head of a request that declares a `length`-byte body and reads the answer:
/// the stack must refuse it from the header alone, without reading or buffering the body.
async fn declared_length_status(stack: &Stack, path: &str, length: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = stack.base.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0; 512];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
        .await
        .expect("answered without the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("an HTTP answer: {answer}"))
}

async fn hostile_bodies_are_refused_and_never_queued(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(backend, dir.path());
    let mut cases: Vec<(String, samples::SignedRequest, u16)> = Vec::new();
    for channel in ["facebook", "twitter", "chat"] {
        let mut case = |what: &str, body: Vec<u8>, status: u16| {
            cases.push((format!("{channel}: {what}"), signed(channel, body), status));
        };
        case("0 bytes", Vec::new(), 400);
        case("1 byte", b"{".to_vec(), 400);
        case(
            "invalid UTF-8",
            b"{\"object\":\"page\xff\xfe\"}".to_vec(),
            400,
        );
        case("nested 20,000 deep", nested(20_000).into_bytes(), 400);
        case(
            "nested inside the envelope",
            format!(
                "{{\"object\":\"page\",\"for_user_id\":\"1\",\"entry\":{}}}",
                nested(5_000)
            )
            .into_bytes(),
            400,
        );
    }
    // 300,000 empty entries in one webhook (under 1 MiB): nothing a ticket can hold.
    let entries = vec!["{}"; 300_000].join(",");
    cases.push((
        "facebook: 300,000 empty entries".into(),
        signed(
            "facebook",
            format!("{{\"object\":\"page\",\"entry\":[{entries}]}}").into_bytes(),
        ),
        200,
    ));
    // An email of a thousand nested multiparts, and one of 10 MiB without any header.
    let mut bomb = String::from("From: a@example.com\r\nMessage-ID: <bomb@example.com>\r\n");
    for level in 0..1000 {
        bomb.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=b{level}\r\n\r\n--b{level}\r\n"
        ));
    }
    bomb.push_str("Content-Type: text/plain\r\n\r\nhello\r\n");
    cases.push((
        "email: 1,000 nested multiparts".into(),
        signed("email", bomb.into_bytes()),
        200,
    ));
    cases.push((
        "email: 10 MiB without headers".into(),
        signed("email", vec![b'a'; 10 * 1024 * 1024]),
        400,
    ));

    for (what, request, expected) in &cases {
        let started = Instant::now();
        let (status, body) = stack.post(request).await;
        assert_eq!(status, *expected, "{what}: {body}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what}: answered in {:?}",
            started.elapsed()
        );
        if status >= 400 {
            let error: Value = serde_json::from_str(&body)
                .unwrap_or_else(|_| panic!("{what}: JSON error body, got {body}"));
            assert!(error["error"]["code"].is_string(), "{what}: {body}");
        }
    }
    // A 10 MiB body is refused from its declared length, before it is read.
    for channel in ["facebook", "twitter", "chat"] {
        let status =
            declared_length_status(&stack, &format!("/webhooks/{channel}"), 10 << 20).await;
        assert_eq!(status, 413, "{channel}: 10 MiB");
    }
    // Still serving; the bomb mail is the only thing stored besides the valid message.
    assert_eq!(stack.post_event("chat", "message.json").await.0, 200);
    assert_eq!(stack.wait_for_messages(2).await, 2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stack.message_count().await, 2);
}

async fn injected_email_headers_never_reach_a_reply(backend: Backend) {
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
        common::ses_verify_domain("sample.example").await;
    }
    // An encoded-word subject and display name that decode to CR LF and a Bcc header.
    let mail = "From: =?utf-8?q?Eve=0D=0ABcc:_victim@example.org?= <eve@example.com>\r\n\
                To: support@sample.example\r\n\
                Subject: =?utf-8?q?Refund=0D=0ABcc:_victim@example.org=0D=0A=0D=0Ainjected?=\r\n\
                Message-ID: <inject-1@example.com>\r\n\r\nPlease refund.\r\n";
    let (status, body) = stack.post_signed("email", mail.as_bytes()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(stack.wait_for_messages(1).await, 1);
    let ticket = stack.tickets().await[0]["id"].as_str().unwrap().to_string();
    let view = stack.ticket(&ticket).await;
    let subject = view["messages"][0]["subject"].as_str().unwrap_or("");
    assert!(
        !subject.contains('\r') && !subject.contains('\n'),
        "stored subject keeps no line break: {subject:?}"
    );

    let (status, answer) = stack
        .api_send(
            Method::POST,
            &format!("/api/tickets/{ticket}/replies"),
            &json!({"text": "Refunded."}),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(15);
    let platform_id = loop {
        let view = stack.ticket(&ticket).await;
        let reply = view["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id.as_str())
            .cloned()
            .unwrap();
        if reply["delivery"]["status"] != "queued" {
            assert_eq!(reply["delivery"]["status"], "sent", "{reply}");
            break reply["delivery"]["platform_id"]
                .as_str()
                .unwrap()
                .to_string();
        }
        assert!(Instant::now() < deadline, "the reply was not sent");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let raw = match backend {
        Backend::Embedded => {
            std::fs::read(dir.path().join("outbox").join(format!("{platform_id}.eml"))).unwrap()
        }
        // SES's id, as SES names it in the Message-ID it gives the mail.
        Backend::Aws => {
            common::ses_sent_mail(platform_id.trim_end_matches("@email.amazonses.com")).await
        }
    };
    let text = String::from_utf8_lossy(&raw);
    let headers = &text[..text.find("\r\n\r\n").unwrap_or(text.len())];
    for line in headers.lines() {
        assert!(
            !line.to_ascii_lowercase().starts_with("bcc:"),
            "an injected header: {line}\n{headers}"
        );
    }
    let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
    assert!(parsed.bcc().is_none(), "{headers}");
    let to: Vec<&str> = parsed
        .to()
        .map(|a| a.iter().filter_map(|a| a.address()).collect())
        .unwrap_or_default();
    assert_eq!(to, ["eve@example.com"], "{headers}");
}

on_both_backends!(
    hostile_bodies_are_refused_and_never_queued,
    injected_email_headers_never_reach_a_reply,
);
