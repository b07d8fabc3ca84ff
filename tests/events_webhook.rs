//! End to end: the integration webhook. A local receiver on 127.0.0.1 gets every event the
//! real `crossdesk-local` emits (`ticket.created`, `message.created`,
//! `message.delivery_changed`), signed, each event once, retried with the same delivery id.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use common::{Backend, Stack};
use crossdesk_channels::events_webhook::sign;
use reqwest::Method;
use serde_json::{json, Value};

const EVENTS_SECRET: &str = "test-events-webhook-secret";

/// One request the receiver got, and what it answered.
#[derive(Debug, Clone)]
struct Got {
    headers: HeaderMap,
    body: Vec<u8>,
    answered: u16,
}

impl Got {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// A receiver of events (`POST /events`) that answers 500 to the first `failures` requests of
/// each event id and 200 after; and a chat backend (`POST /chat`) taking replies.
#[derive(Clone)]
struct Receiver {
    got: Arc<Mutex<Vec<Got>>>,
    failures: usize,
    /// While set, every event is refused for good (410 Gone).
    gone: Arc<AtomicBool>,
    base: String,
}

impl Receiver {
    async fn start(failures: usize) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Receiver {
            got: Arc::default(),
            failures,
            gone: Arc::default(),
            base: format!("http://{}", listener.local_addr().unwrap()),
        };
        let app = Router::new()
            .route("/events", post(receive))
            .route(
                "/chat",
                post(|| async { Json(json!({"id": "chat-backend-1"})) }),
            )
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        receiver
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// The delivered requests (answered 200), by event type.
    fn delivered(&self) -> Vec<(String, Value)> {
        self.got()
            .iter()
            .filter(|g| g.answered == 200)
            .map(|g| (g.json()["type"].as_str().unwrap().to_string(), g.json()))
            .collect()
    }

    /// Waits (30 s at most) until events of all these types were delivered.
    async fn wait_for(&self, types: &[&str]) -> Vec<(String, Value)> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let delivered = self.delivered();
            let missing: Vec<&&str> = types
                .iter()
                .filter(|t| !delivered.iter().any(|(kind, _)| kind == *t))
                .collect();
            if missing.is_empty() {
                return delivered;
            }
            assert!(
                Instant::now() < deadline,
                "no {missing:?} delivered; got {:#?}",
                self.got().iter().map(Got::json).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn receive(State(receiver): State<Receiver>, request: Request) -> impl IntoResponse {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap()
        .to_vec();
    let id = serde_json::from_slice::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut got = receiver.got.lock().unwrap();
    let earlier = got.iter().filter(|g| g.json()["id"] == id.as_str()).count();
    let answered = if receiver.gone.load(Ordering::SeqCst) {
        410
    } else if earlier < receiver.failures {
        500
    } else {
        200
    };
    got.push(Got {
        headers: parts.headers,
        body,
        answered,
    });
    StatusCode::from_u16(answered).unwrap()
}

fn start_stack(backend: Backend, dir: &std::path::Path, receiver: &Receiver) -> Stack {
    Stack::start_env(
        backend,
        dir,
        &[],
        &[
            (
                "CROSSDESK_EVENTS_WEBHOOK_URL",
                format!("{}/events", receiver.base),
            ),
            ("CROSSDESK_EVENTS_WEBHOOK_SECRET", EVENTS_SECRET.into()),
            (
                "CROSSDESK_CHAT_CALLBACK_URL",
                format!("{}/chat", receiver.base),
            ),
        ],
    )
}

/// Checks a request as a receiver would: the signature over `<timestamp>.<body>` with the
/// shared secret, a recent timestamp, the event type header, a delivery id.
fn assert_signed(got: &Got) {
    assert_eq!(got.header("content-type"), "application/json");
    let timestamp: i64 = got.header("x-crossdesk-timestamp").parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - timestamp).abs() < 120);
    assert_eq!(
        got.header("x-crossdesk-signature"),
        sign(EVENTS_SECRET.as_bytes(), timestamp, &got.body)
    );
    let body = got.json();
    assert_eq!(
        got.header("x-crossdesk-event"),
        body["type"].as_str().unwrap()
    );
    assert!(got.header("x-crossdesk-delivery").starts_with("dlv_"));
    assert!(body["id"].as_str().unwrap().starts_with("evt_"));
    assert!(body["created_at"].is_string());
    assert_eq!(body.as_object().unwrap().len(), 4, "{body}");
}

async fn a_chat_message_and_a_reply_reach_the_receiver_signed_and_once(backend: Backend) {
    let receiver = Receiver::start(0).await;
    let dir = tempfile::tempdir().unwrap();
    let stack = start_stack(backend, dir.path(), &receiver);

    assert_eq!(stack.post_event("chat", "message.json").await.0, 200);
    let delivered = receiver
        .wait_for(&["ticket.created", "message.created"])
        .await;
    let ticket_id = stack.tickets().await[0]["id"].as_str().unwrap().to_string();
    let created = &delivered
        .iter()
        .find(|(t, _)| t == "ticket.created")
        .unwrap()
        .1;
    assert_eq!(created["data"]["ticket"]["id"], ticket_id.as_str());
    assert_eq!(created["data"]["ticket"]["channel"], "chat");
    assert_eq!(
        created["data"]["message"]["text"],
        "Can I change my delivery date?"
    );
    let inbound = &delivered
        .iter()
        .find(|(t, _)| t == "message.created")
        .unwrap()
        .1;
    assert_eq!(inbound["data"]["ticket_id"], ticket_id.as_str());
    assert_eq!(inbound["data"]["message"]["direction"], "inbound");
    assert_eq!(
        inbound["data"]["message"]["platform_message_id"],
        "sess_sample_01/chatmsg_0001"
    );

    // The chat platform delivers the same message again: stored once, no new event.
    assert_eq!(stack.post_event("chat", "message.json").await.0, 200);

    let (status, answer) = stack
        .api_send(
            Method::POST,
            &format!("/api/tickets/{ticket_id}/replies"),
            &json!({"text": "Yes, until Friday."}),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    let reply_id = answer["id"].as_str().unwrap().to_string();
    let delivered = receiver.wait_for(&["message.delivery_changed"]).await;
    let outbound = delivered
        .iter()
        .find(|(t, e)| t == "message.created" && e["data"]["message"]["id"] == reply_id.as_str())
        .expect("message.created for the reply")
        .1
        .clone();
    assert_eq!(outbound["data"]["message"]["direction"], "outbound");
    assert_eq!(outbound["data"]["message"]["text"], "Yes, until Friday.");
    let changed = &delivered
        .iter()
        .find(|(t, _)| t == "message.delivery_changed")
        .unwrap()
        .1;
    assert_eq!(changed["data"]["message_id"], reply_id.as_str());
    assert_eq!(changed["data"]["ticket_id"], ticket_id.as_str());
    assert_eq!(changed["data"]["previous_status"], "queued");
    assert_eq!(changed["data"]["delivery"]["status"], "sent");
    // The chat backend knows the reply by its Crossdesk id.
    assert_eq!(
        changed["data"]["delivery"]["platform_id"],
        reply_id.as_str()
    );

    // Nothing more comes: each event once (the duplicate webhook and the reply sender's second
    // emission of the reply's message.created were not posted again).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = receiver.got();
    for request in &got {
        assert_signed(request);
    }
    let mut per_id: BTreeMap<String, usize> = BTreeMap::new();
    for request in &got {
        *per_id
            .entry(request.json()["id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(per_id.len(), 4, "{per_id:?}");
    assert!(per_id.values().all(|n| *n == 1), "{per_id:?}");
    let (status, failed) = stack.api_get("/api/events/failed").await;
    assert_eq!(status, 200, "{failed}");
    assert_eq!(failed["events"], json!([]));
}

async fn a_receiver_failing_twice_gets_each_event_once_with_one_delivery_id(backend: Backend) {
    let receiver = Receiver::start(2).await;
    let dir = tempfile::tempdir().unwrap();
    let stack = start_stack(backend, dir.path(), &receiver);

    assert_eq!(stack.post_event("chat", "message.json").await.0, 200);
    receiver
        .wait_for(&["ticket.created", "message.created"])
        .await;
    // Time for a (wrong) further attempt to show.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = receiver.got();
    let mut by_id: HashMap<String, Vec<&Got>> = HashMap::new();
    for request in &got {
        assert_signed(request);
        by_id
            .entry(request.json()["id"].as_str().unwrap().to_string())
            .or_default()
            .push(request);
    }
    assert_eq!(by_id.len(), 2, "ticket.created and message.created");
    for (id, requests) in by_id {
        let answers: Vec<u16> = requests.iter().map(|g| g.answered).collect();
        assert_eq!(
            answers,
            [500, 500, 200],
            "{id}: delivered once, after two retries"
        );
        let delivery = requests[0].header("x-crossdesk-delivery");
        assert!(
            requests
                .iter()
                .all(|g| g.header("x-crossdesk-delivery") == delivery),
            "{id}: one delivery id across retries"
        );
        assert!(requests.iter().all(|g| g.body == requests[0].body));
    }
}

async fn refused_events_are_listed_and_replayed_to_where_they_failed(backend: Backend) {
    let receiver = Receiver::start(0).await;
    receiver.gone.store(true, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let stack = start_stack(backend, dir.path(), &receiver);
    assert_eq!(stack.post_event("chat", "message.json").await.0, 200);

    // Both events are refused (410): given up on at once, kept for replay.
    let deadline = Instant::now() + Duration::from_secs(30);
    let failed = loop {
        let (status, body) = stack.api_get("/api/events/failed").await;
        assert_eq!(status, 200, "{body}");
        let events = body["events"].as_array().cloned().unwrap_or_default();
        if events.len() == 2 {
            break events;
        }
        assert!(Instant::now() < deadline, "failed events: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(receiver.got().len(), 2, "a 410 is not retried");
    let endpoint = format!("{}/events", receiver.base);
    for f in &failed {
        assert_eq!(f["attempts"], 1);
        assert_eq!(f["endpoints"][0]["endpoint"], endpoint.as_str());
        assert_eq!(f["endpoints"][0]["status"], 410);
        let first = receiver
            .got()
            .into_iter()
            .find(|g| g.json()["id"] == f["event"]["id"])
            .expect("the refused request");
        assert_eq!(
            f["endpoints"][0]["delivery_id"],
            first.header("x-crossdesk-delivery")
        );
    }
    let replayed = failed
        .iter()
        .find(|f| f["event"]["type"] == "ticket.created")
        .unwrap();
    let id = replayed["event"]["id"].as_str().unwrap();

    // Unknown ids and malformed ids are 404; the agent token is required.
    let (status, _) = stack
        .api_send(
            Method::POST,
            "/api/events/evt_00000000000000000000000000000000/replay",
            &json!({}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = stack
        .api_send(Method::POST, "/api/events/nope/replay", &json!({}))
        .await;
    assert_eq!(status, 404);
    let anonymous = stack
        .client
        .post(format!("{}/api/events/{id}/replay", stack.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    // The receiver is fixed; the replayed event arrives once, with its delivery id.
    receiver.gone.store(false, Ordering::SeqCst);
    let (status, answer) = stack
        .api_send(
            Method::POST,
            &format!("/api/events/{id}/replay"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["id"], id);
    receiver.wait_for(&["ticket.created"]).await;
    let (_, body) = stack.api_get("/api/events/failed").await;
    let left: Vec<&Value> = body["events"].as_array().unwrap().iter().collect();
    assert_eq!(left.len(), 1, "{body}");
    assert_eq!(left[0]["event"]["type"], "message.created");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let for_id: Vec<Got> = receiver
        .got()
        .into_iter()
        .filter(|g| g.json()["id"] == id)
        .collect();
    assert_eq!(
        for_id.iter().map(|g| g.answered).collect::<Vec<_>>(),
        [410, 200]
    );
    assert_eq!(
        for_id[0].header("x-crossdesk-delivery"),
        for_id[1].header("x-crossdesk-delivery")
    );
    assert_eq!(for_id[0].body, for_id[1].body, "the same event");
    for g in &for_id {
        assert_signed(g);
    }
}

on_both_backends!(
    a_chat_message_and_a_reply_reach_the_receiver_signed_and_once,
    a_receiver_failing_twice_gets_each_event_once_with_one_delivery_id,
    refused_events_are_listed_and_replayed_to_where_they_failed,
);
