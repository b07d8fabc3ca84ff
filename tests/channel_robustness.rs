//! End to end: what the platforms send besides customer messages must neither duplicate nor
//! block anything. Echoes of Crossdesk's own replies are matched to the reply (also when the echo
//! is faster than the Send API's answer), echoes of messages sent outside Crossdesk are kept as
//! such, and content Crossdesk cannot read becomes a placeholder while the rest of the webhook
//! is stored.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::response::IntoResponse;
use axum::Router;
use common::{event, Backend, Stack};
use reqwest::Method;
use serde_json::{json, Value};

const PAGE: &str = "PAGE_1";
const PSID: &str = "PSID_42";

/// A fake Graph API: records each request's JSON body and, after `delay`, answers with
/// `status` and `answer`.
#[derive(Clone)]
struct FakeGraph {
    bodies: Arc<Mutex<Vec<Value>>>,
    status: u16,
    answer: Value,
    delay: Duration,
    base: String,
}

impl FakeGraph {
    /// A Send API that accepts every message as `message_id`.
    async fn accepting(message_id: &str) -> FakeGraph {
        Self::start(
            200,
            json!({"recipient_id": PSID, "message_id": message_id}),
            Duration::ZERO,
        )
        .await
    }

    async fn start(status: u16, answer: Value, delay: Duration) -> FakeGraph {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = FakeGraph {
            bodies: Arc::default(),
            status,
            answer,
            delay,
            base: format!("http://{}", listener.local_addr().unwrap()),
        };
        let app = Router::new().fallback(respond).with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fake
    }

    fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }

    /// The stack's settings for replies through this fake.
    fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("CROSSDESK_FACEBOOK_GRAPH_URL", self.base.clone()),
            ("CROSSDESK_FACEBOOK_PAGE_TOKEN", "page-token-123".into()),
        ]
    }
}

async fn respond(State(fake): State<FakeGraph>, request: Request) -> axum::response::Response {
    let body = axum::body::to_bytes(request.into_body(), usize::MAX)
        .await
        .unwrap();
    fake.bodies
        .lock()
        .unwrap()
        .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
    tokio::time::sleep(fake.delay).await;
    let status = axum::http::StatusCode::from_u16(fake.status).unwrap();
    (status, axum::Json(fake.answer.clone())).into_response()
}

/// A Messenger webhook with one event from the customer (or, `echo`, from the page), now.
fn messenger(message: Value, echo: bool) -> Vec<u8> {
    let now = chrono::Utc::now().timestamp_millis();
    let (sender, recipient) = if echo { (PAGE, PSID) } else { (PSID, PAGE) };
    json!({"object":"page","entry":[{"id":PAGE,"time":now,"messaging":[{
        "sender":{"id":sender},"recipient":{"id":recipient},"timestamp":now,"message":message}]}]})
    .to_string()
    .into_bytes()
}

/// Posts a signed Facebook webhook; asserts it is accepted and returns how many messages.
async fn post_facebook(stack: &Stack, body: &[u8]) -> u64 {
    let (status, answer) = stack.post_signed("facebook", body).await;
    assert_eq!(status, 200, "{answer}");
    serde_json::from_str::<Value>(&answer).unwrap()["accepted"]
        .as_u64()
        .unwrap()
}

/// Polls `check` on the only ticket's view until it holds (30 s at most); returns the view.
async fn ticket_when(stack: &Stack, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let tickets = stack.tickets().await;
        if let Some(t) = tickets.first() {
            let view = stack.ticket(t["id"].as_str().unwrap()).await;
            if check(&view) {
                return view;
            }
            assert!(Instant::now() < deadline, "never {what}: {view:#}");
        } else {
            assert!(Instant::now() < deadline, "never {what}: no ticket");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn messages(view: &Value) -> &Vec<Value> {
    view["messages"].as_array().unwrap()
}

fn message<'a>(view: &'a Value, id: &str) -> &'a Value {
    messages(view)
        .iter()
        .find(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("no message {id}: {view:#}"))
}

/// A customer's question, then an agent's reply through the stack; returns (ticket, reply id).
async fn question_and_reply(stack: &Stack) -> (String, String) {
    let question = messenger(json!({"mid":"m_in_1","text":"Where is my parcel?"}), false);
    assert_eq!(post_facebook(stack, &question).await, 1);
    let view = ticket_when(stack, "the question is stored", |v| messages(v).len() == 1).await;
    let ticket = view["id"].as_str().unwrap().to_string();
    let (status, answer) = stack
        .api_send(
            Method::POST,
            &format!("/api/tickets/{ticket}/replies"),
            &json!({"text": "It left our warehouse today."}),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    (ticket, answer["id"].as_str().unwrap().to_string())
}

/// The echo Meta sends of the reply: the page's message, with the metadata Crossdesk set.
fn echo_of(reply: &str, mid: &str) -> Vec<u8> {
    messenger(
        json!({"mid":mid,"is_echo":true,"app_id":1517776481860111_u64,
               "metadata":format!("crossdesk:{reply}"),"text":"It left our warehouse today."}),
        true,
    )
}

async fn the_echo_of_a_sent_reply_is_the_reply(backend: Backend) {
    let graph = FakeGraph::accepting("m_reply_7").await;
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start_env(backend, dir.path(), &[], &graph.settings());
    let (_, reply) = question_and_reply(&stack).await;
    ticket_when(&stack, "the reply is sent", |v| {
        message(v, &reply)["delivery"]["status"] == "sent"
    })
    .await;
    let sent = graph.bodies();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0]["message"]["metadata"],
        format!("crossdesk:{reply}"),
        "the Send API carries the reply's id to its echo"
    );

    assert_eq!(
        post_facebook(&stack, &echo_of(&reply, "m_reply_7")).await,
        1
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    let view = ticket_when(&stack, "settled", |_| true).await;
    assert_eq!(
        messages(&view).len(),
        2,
        "the echo is not stored twice: {view:#}"
    );
    let stored = message(&view, &reply);
    assert_eq!(stored["direction"], "outbound");
    assert_eq!(stored["delivery"]["status"], "sent");
    assert_eq!(stored["delivery"]["platform_id"], "m_reply_7");
    assert_eq!(stored["platform_message_id"], "m_reply_7");
    assert_eq!(graph.bodies().len(), 1, "nothing is sent again");
}

async fn an_echo_faster_than_the_send_apis_answer_is_matched_by_its_metadata(backend: Backend) {
    // Meta delivers the message and its echo webhook, but the Send API answers only after 3 s,
    // and with a passing error: without the echo the reply would be retried, and sent twice.
    let graph = FakeGraph::start(
        503,
        json!({"error":{"message":"(#2) Service temporarily unavailable","type":"OAuthException","code":2,"is_transient":true,"fbtrace_id":"R1"}}),
        Duration::from_secs(3),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start_env(backend, dir.path(), &[], &graph.settings());
    let (_, reply) = question_and_reply(&stack).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while graph.bodies().is_empty() {
        assert!(Instant::now() < deadline, "the Send API was never called");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        post_facebook(&stack, &echo_of(&reply, "m_reply_8")).await,
        1
    );
    let view = ticket_when(&stack, "the echo confirms the reply", |v| {
        message(v, &reply)["delivery"]["status"] == "sent"
    })
    .await;
    // Only the echo knows this id: the echo, not Graph's answer, confirmed the reply.
    let stored = message(&view, &reply);
    assert_eq!(stored["delivery"]["platform_id"], "m_reply_8");
    assert_eq!(stored["platform_message_id"], "m_reply_8");
    assert_eq!(messages(&view).len(), 2, "one outbound message: {view:#}");

    // Graph's late error changes nothing, and the reply is not sent again.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let view = ticket_when(&stack, "settled", |_| true).await;
    assert_eq!(messages(&view).len(), 2, "{view:#}");
    let stored = message(&view, &reply);
    assert_eq!(stored["delivery"]["status"], "sent");
    assert_eq!(stored["delivery"]["platform_id"], "m_reply_8");
    assert_eq!(stored["delivery"]["attempts"], 1);
    assert_eq!(graph.bodies().len(), 1);
}

async fn an_echo_from_the_native_app_is_stored_as_sent_outside_crossdesk(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(backend, dir.path());
    assert_eq!(
        post_facebook(&stack, &event("facebook", "messenger-text.json")).await,
        1
    );
    assert_eq!(
        post_facebook(&stack, &event("facebook", "messenger-echo-native-app.json")).await,
        1
    );
    let view = ticket_when(&stack, "both are stored", |v| messages(v).len() == 2).await;
    let echo = &messages(&view)[1];
    assert_eq!(echo["direction"], "outbound");
    assert_eq!(echo["author"]["platform_id"], "PAGE_ID_100200300");
    assert_eq!(echo["platform_message_id"], "m_sample_echo_native_0008");
    assert_eq!(
        echo["delivery"],
        json!({"status": "sent_outside_crossdesk", "platform_id": "m_sample_echo_native_0008", "attempts": 0})
    );
    assert_eq!(
        view["status"], "open",
        "the page's own message reopens nothing"
    );

    // Meta delivers the echo again: still stored once.
    assert_eq!(
        post_facebook(&stack, &event("facebook", "messenger-echo-native-app.json")).await,
        1
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(stack.message_count().await, 2);
    assert_eq!(stack.tickets().await.len(), 1);
}

async fn an_unknown_attachment_is_a_placeholder_beside_the_rest_of_the_webhook(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(backend, dir.path());
    // A text, a reel Crossdesk cannot show and a read receipt, in one webhook.
    assert_eq!(
        post_facebook(
            &stack,
            &event("facebook", "instagram-unknown-attachment-batch.json")
        )
        .await,
        2
    );
    let view = ticket_when(&stack, "both messages are stored", |v| {
        messages(v).len() == 2
    })
    .await;
    assert_eq!(view["channel"], "instagram");
    let texts: Vec<&str> = messages(&view)
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            "Is this jacket in stock? It is in your reel:",
            "unsupported message type: ig_reel"
        ]
    );
    let reel = &messages(&view)[1];
    assert_eq!(reel["attachments"][0]["kind"], "unsupported");
    assert_eq!(
        reel["raw"],
        messages(&view)[0]["raw"],
        "the raw payload is kept"
    );

    // Another product's webhook at this URL is accepted (Meta would retry a refusal and then
    // disable the subscription) and stores nothing; malformed JSON is still refused.
    assert_eq!(
        post_facebook(&stack, &event("facebook", "unknown-object-whatsapp.json")).await,
        0
    );
    let (status, _) = stack
        .post_signed("facebook", br#"{"object":"page","entry":[{"#)
        .await;
    assert_eq!(status, 400);
    // An unknown event and an unknown message field beside a known message.
    assert_eq!(
        post_facebook(
            &stack,
            &event("facebook", "messenger-unknown-event-and-field.json")
        )
        .await,
        3
    );
    assert_eq!(stack.wait_for_messages(5).await, 5);
    assert_eq!(stack.tickets().await.len(), 2);
}

on_both_backends!(
    the_echo_of_a_sent_reply_is_the_reply,
    an_echo_faster_than_the_send_apis_answer_is_matched_by_its_metadata,
    an_echo_from_the_native_app_is_stored_as_sent_outside_crossdesk,
    an_unknown_attachment_is_a_placeholder_beside_the_rest_of_the_webhook,
);
