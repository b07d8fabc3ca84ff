//! Fault injection end to end (issue 8), on the embedded store and on the AWS adapters (moto).
//!
//! Webhooks over every channel (Messenger, page comments, X DMs and mentions, chat, email), a
//! tenth of them delivered twice, go to the real `crossdesk-local` binary while:
//! - 5% of the ticket writer's and the reply sender's store writes fail (`--inject-store-faults`:
//!   half before the write, half after it landed);
//! - the process is killed (SIGKILL) twice while the writer works through its backlog, and
//!   restarted on the same data;
//! - the platform APIs answer 429 or 500 to a fifth of the reply calls.
//!
//! At the end every accepted webhook is stored exactly once, every reply is `sent` with exactly
//! one call the platform accepted (or reported `failed`/`unknown`, with none or at most one), and
//! nothing is left in a queue, dead-letter queues included.
//!
//! Size: `CROSSDESK_FAULT_WEBHOOKS` (default 1,200 on the embedded store and 120 on moto, so the
//! test command stays quick); `bench/faults` runs 10,000 on each and records the summaries.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use chrono::{DateTime, Utc};
use common::{Backend, Stack};
use crossdesk::samples;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::RwLock;

/// How many customers write: few enough that each channel's tickets fit one list call (200).
const CUSTOMERS: usize = 60;
/// Webhooks in flight at once.
const CONCURRENCY: usize = 16;
/// The share of store writes that fail.
const STORE_FAULTS: &str = "0.05";
/// One in this many platform calls is answered 429 or 500.
const PLATFORM_FAULT_EVERY: u64 = 5;
/// Replies per ticket (email tickets get none: their replies leave by mail, not a platform API).
const REPLIES_PER_TICKET: usize = 1;

fn webhooks(backend: Backend) -> usize {
    std::env::var("CROSSDESK_FAULT_WEBHOOKS")
        .ok()
        .map(|v| v.parse().expect("CROSSDESK_FAULT_WEBHOOKS is a number"))
        .unwrap_or(match backend {
            Backend::Embedded => 1_200,
            Backend::Aws => 120,
        })
}

/// One webhook to deliver: its channel, body and the platform id of the message it carries.
struct Webhook {
    channel: &'static str,
    body: Vec<u8>,
    platform_id: String,
}

/// Webhook `i`: the channel turns with `i`, the customer with `i / 6`.
fn webhook(i: usize, now: DateTime<Utc>) -> Webhook {
    let c = (i / 6) % CUSTOMERS;
    let ms = now.timestamp_millis();
    let secs = now.timestamp();
    let text = format!("Where is order {i}?");
    let (channel, body, platform_id) = match i % 6 {
        0 => {
            let mid = format!("m_fi_{i}");
            let body = json!({"object":"page","entry":[{"id":"PAGE_1","time":ms,"messaging":[{
                "sender":{"id":format!("FI_PSID_{c}")},"recipient":{"id":"PAGE_1"},"timestamp":ms,
                "message":{"mid":mid,"text":text}}]}]});
            ("facebook", body, mid)
        }
        1 => {
            let post = format!("PAGE_1_POST_{}", c % 7);
            let comment = format!("POST_{}_COMMENT_{i}", c % 7);
            let body = json!({"object":"page","entry":[{"id":"PAGE_1","time":secs,"changes":[{
                "field":"feed","value":{"from":{"id":format!("FI_USER_{c}"),"name":format!("Customer {c}")},
                "post_id":post,"comment_id":comment,"parent_id":post,"created_time":secs,
                "item":"comment","verb":"add","message":text}}]}]});
            ("facebook", body, comment)
        }
        2 => {
            let id = format!("19{i:017}");
            let user = format!("5{c:09}");
            let body = json!({"for_user_id":"3000000001","direct_message_events":[{
                "type":"message_create","id":id,"created_timestamp":ms.to_string(),
                "message_create":{"target":{"recipient_id":"3000000001"},"sender_id":user,
                "message_data":{"text":text,"entities":{"hashtags":[],"symbols":[],"user_mentions":[],"urls":[]}}}}],
                "users":{user.clone():{"id":user,"name":format!("Customer {c}"),"screen_name":format!("fi_customer_{c}")},
                "3000000001":{"id":"3000000001","name":"Sample Support","screen_name":"sample_support"}}});
            ("twitter", body, id)
        }
        3 => {
            let id = format!("18{i:017}");
            let user = format!("5{c:09}");
            let body = json!({"for_user_id":"3000000001","tweet_create_events":[{
                "created_at":now.format("%a %b %d %H:%M:%S +0000 %Y").to_string(),
                "id":id.parse::<u64>().unwrap(),"id_str":id,"text":format!("@sample_support {text}"),
                "truncated":false,"in_reply_to_status_id":null,"in_reply_to_status_id_str":null,
                "in_reply_to_user_id":3000000001u64,"in_reply_to_user_id_str":"3000000001",
                "in_reply_to_screen_name":"sample_support",
                "user":{"id":user.parse::<u64>().unwrap(),"id_str":user,"name":format!("Customer {c}"),"screen_name":format!("fi_customer_{c}")},
                "entities":{"hashtags":[],"urls":[],"user_mentions":[{"screen_name":"sample_support","id_str":"3000000001","indices":[0,15]}]},
                "lang":"en","timestamp_ms":ms.to_string()}]});
            ("twitter", body, id)
        }
        4 => {
            let id = format!("fi_chat_{i}");
            let session = format!("fi_sess_{c}");
            let body = json!({"session_id":session,
                "visitor":{"id":format!("fi_visitor_{c}"),"name":format!("Visitor {c}")},
                "message":{"id":id,"text":text,"sent_at":now.to_rfc3339()}});
            // A chat message's platform id is scoped by its session.
            ("chat", body, format!("{session}/{id}"))
        }
        _ => {
            let id = format!("fi-{i}@example.com");
            // A customer's later mails answer their first one, so they thread into its ticket.
            let thread = if i < 6 * CUSTOMERS {
                String::new()
            } else {
                let first = format!("<fi-{}@example.com>", 6 * c + 5);
                format!("In-Reply-To: {first}\r\nReferences: {first}\r\n")
            };
            let mail = format!(
                "From: Customer {c} <fi-customer-{c}@example.com>\r\nTo: support@sample.example\r\n\
                 Subject: Order {c}\r\nMessage-ID: <{id}>\r\n{thread}Date: {}\r\n\
                 MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n",
                now.to_rfc2822()
            );
            return Webhook {
                channel: "email",
                body: mail.into_bytes(),
                platform_id: id,
            };
        }
    };
    Webhook {
        channel,
        body: body.to_string().into_bytes(),
        platform_id,
    }
}

// ---- the platform APIs, answering 429 or 500 to a fifth of the calls ----------------------

/// The reply token a request carries (`FI-R<n>`), from its body.
fn reply_token(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let start = text.find("FI-R")?;
    let digits: String = text[start + 4..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some(format!("FI-R{digits}"))
}

/// Fake Graph, X and chat-callback APIs. A fifth of the calls are refused (429 or 500) without
/// delivering; the rest deliver and are recorded by reply token with the id they answered.
#[derive(Clone, Default)]
struct ChaosPlatform {
    calls: Arc<AtomicU64>,
    refused: Arc<AtomicU64>,
    delivered: Arc<Mutex<HashMap<String, Vec<String>>>>,
}

impl ChaosPlatform {
    async fn start(self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new().fallback(answer).with_state(self);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        base
    }
}

async fn answer(State(platform): State<ChaosPlatform>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    let body = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .unwrap();
    let n = platform.calls.fetch_add(1, Ordering::Relaxed);
    let x = path.starts_with("/2/");
    let graph = !x && !path.starts_with("/chat/");
    if n % PLATFORM_FAULT_EVERY == 2 {
        platform.refused.fetch_add(1, Ordering::Relaxed);
        let rate_limited = (n / PLATFORM_FAULT_EVERY).is_multiple_of(2);
        let (status, body) = match (rate_limited, graph, x) {
            (true, true, _) => (
                429,
                json!({"error":{"message":"(#4) Application request limit reached","type":"OAuthException","code":4,"fbtrace_id":"FI"}}),
            ),
            (false, true, _) => (
                500,
                json!({"error":{"message":"An unexpected error has occurred. Please retry your request later.","type":"OAuthException","code":2,"is_transient":true,"fbtrace_id":"FI"}}),
            ),
            (true, _, true) => (
                429,
                json!({"title":"Too Many Requests","detail":"Too Many Requests","type":"about:blank","status":429}),
            ),
            (false, _, true) => (
                500,
                json!({"title":"Internal Server Error","detail":"Internal Server Error","type":"about:blank","status":500}),
            ),
            (true, false, false) => (429, json!({"error":"slow down"})),
            (false, false, false) => (500, json!({"error":"internal"})),
        };
        return (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
    }
    let token = reply_token(&body).unwrap_or_else(|| panic!("a reply without a token: {path}"));
    let (status, id, body) = if path.ends_with("/me/messages") {
        let id = format!("m_out_{n}");
        (
            200,
            id.clone(),
            json!({"recipient_id":"FI","message_id":id}),
        )
    } else if path.ends_with("/comments") {
        let id = format!("COMMENT_OUT_{n}");
        (200, id.clone(), json!({"id":id}))
    } else if path == "/2/tweets" {
        let id = format!("17{n:017}");
        (201, id.clone(), json!({"data":{"id":id,"text":"reply"}}))
    } else if path.starts_with("/2/dm_conversations/with/") {
        let id = format!("16{n:017}");
        (
            201,
            id.clone(),
            json!({"data":{"dm_conversation_id":"3000000001-FI","dm_event_id":id}}),
        )
    } else if path == "/chat/replies" {
        (200, String::new(), json!({"ok":true}))
    } else {
        panic!("a call to an unexpected path: {path}");
    };
    platform
        .delivered
        .lock()
        .unwrap()
        .entry(token)
        .or_default()
        .push(id);
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

// ---- the run --------------------------------------------------------------------------------

/// The stack under test, restarted on the same data after each kill.
struct Rig {
    backend: Backend,
    dir: PathBuf,
    log: PathBuf,
    env: Vec<(&'static str, String)>,
    base: RwLock<String>,
    stack: Mutex<Option<Stack>>,
}

impl Rig {
    fn start(&self) {
        let stack = Stack::launch(
            self.backend,
            &self.dir,
            &[],
            &self.env,
            &["--inject-store-faults", STORE_FAULTS, "--fault-seed", "8"],
            Some(&self.log),
        );
        *self.base.blocking_write() = stack.base.clone();
        *self.stack.lock().unwrap() = Some(stack);
    }

    fn kill(&self) {
        if let Some(stack) = self.stack.lock().unwrap().take() {
            stack.kill();
        }
    }

    fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    }

    async fn api(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let base = self.base.read().await.clone();
        let mut request = self
            .client()
            .request(method, format!("{base}{path}"))
            .bearer_auth(common::AGENT_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the stack answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Every ticket, listed channel by channel (a list call returns at most 200).
    async fn tickets(&self) -> Vec<Value> {
        let mut all = Vec::new();
        for channel in ["facebook", "instagram", "twitter", "email", "chat"] {
            let (status, body) = self
                .api(
                    Method::GET,
                    &format!("/api/tickets?limit=200&channel={channel}"),
                    None,
                )
                .await;
            assert_eq!(status, 200, "{body}");
            let tickets = body["tickets"].as_array().cloned().unwrap_or_default();
            assert!(
                tickets.len() < 200,
                "every {channel} ticket fits one list call"
            );
            all.extend(tickets);
        }
        all
    }

    async fn stored_messages(&self) -> u64 {
        self.tickets()
            .await
            .iter()
            .map(|t| t["message_count"].as_u64().unwrap_or(0))
            .sum()
    }

    async fn messages(&self) -> Vec<(String, Value)> {
        let mut all = Vec::new();
        for ticket in self.tickets().await {
            let id = ticket["id"].as_str().unwrap().to_string();
            let (status, view) = self
                .api(Method::GET, &format!("/api/tickets/{id}"), None)
                .await;
            assert_eq!(status, 200, "{view}");
            for message in view["messages"].as_array().cloned().unwrap_or_default() {
                all.push((id.clone(), message));
            }
        }
        all
    }
}

/// Posts one webhook until the stack accepts it, across kills and restarts (as the platforms
/// retry); returns whether it was accepted (a chat replay refusal of a duplicate is not).
async fn deliver(rig: &Rig, client: &reqwest::Client, hook: &Webhook) -> bool {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let request = samples::sign(
            hook.channel,
            hook.body.clone(),
            &common::secrets(),
            Utc::now(),
        )
        .unwrap();
        let base = rig.base.read().await.clone();
        match samples::post(client, &base, &request).await {
            Ok((200, _)) => return true,
            Ok((status, body)) if status < 500 && status != 429 => {
                panic!("webhook {} refused: {status} {body}", hook.platform_id)
            }
            Ok(_) | Err(_) => {
                assert!(
                    Instant::now() < deadline,
                    "webhook {} never accepted",
                    hook.platform_id
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Waits until `done`, for `limit` at most; the checks that follow say what is missing.
async fn wait_until<F, Fut>(what: &str, limit: Duration, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !done().await {
        if Instant::now() > deadline {
            eprintln!("timed out waiting until {what}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn faults_are_survived(backend: Backend) {
    let total = webhooks(backend);
    let dir = tempfile::tempdir().unwrap();
    let platform = ChaosPlatform::default();
    let platform_base = platform.clone().start().await;
    let rig = Arc::new(Rig {
        backend,
        dir: dir.path().to_path_buf(),
        log: dir.path().join("stack.log"),
        env: vec![
            ("CROSSDESK_FACEBOOK_GRAPH_URL", platform_base.clone()),
            ("CROSSDESK_FACEBOOK_PAGE_TOKEN", "fi-page-token".into()),
            ("CROSSDESK_TWITTER_API_URL", platform_base.clone()),
            ("CROSSDESK_TWITTER_CONSUMER_KEY", "fi-consumer-key".into()),
            ("CROSSDESK_TWITTER_ACCESS_TOKEN", "fi-access-token".into()),
            ("CROSSDESK_TWITTER_ACCESS_SECRET", "fi-access-secret".into()),
            (
                "CROSSDESK_CHAT_CALLBACK_URL",
                format!("{platform_base}/chat/replies"),
            ),
            ("CROSSDESK_HEALTH_INTERVAL_SECS", "0".into()),
        ],
        base: RwLock::new(String::new()),
        stack: Mutex::new(None),
    });
    let started = Instant::now();
    {
        let rig = rig.clone();
        tokio::task::spawn_blocking(move || rig.start())
            .await
            .unwrap();
    }

    // First each customer's first mail (the later ones answer it), then every other webhook
    // once and a tenth twice, in a shuffled order (so copies arrive together, apart, and on both
    // sides of a kill).
    let now = Utc::now();
    let hooks: Arc<Vec<Webhook>> = Arc::new((0..total).map(|i| webhook(i, now)).collect());
    let is_first_mail = |i: &usize| i % 6 == 5 && *i < 6 * CUSTOMERS;
    let first_mails: Vec<usize> = (0..total).filter(is_first_mail).collect();
    {
        let client = rig.client();
        for &i in &first_mails {
            assert!(deliver(&rig, &client, &hooks[i]).await);
        }
        wait_until(
            "the first mails are stored",
            Duration::from_secs(60),
            || {
                let rig = rig.clone();
                let n = first_mails.len() as u64;
                async move { rig.stored_messages().await >= n }
            },
        )
        .await;
    }
    let mut order: Vec<usize> = (0..total)
        .filter(|i| !is_first_mail(i))
        .chain((0..total).filter(|i| i % 10 == 3))
        .collect();
    order.shuffle(&mut StdRng::seed_from_u64(8));
    let sends = order.len();
    let order = Arc::new(order);

    // The kills: when 30% and 65% of the sends are accepted, with the writer behind.
    let next = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(AtomicUsize::new(0));
    let killer = {
        let (rig, accepted) = (rig.clone(), accepted.clone());
        tokio::spawn(async move {
            let mut backlogs = Vec::new();
            for share in [30, 65] {
                while accepted.load(Ordering::Relaxed) * 100 < sends * share {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                let stored = rig.stored_messages().await;
                let rig = rig.clone();
                tokio::task::spawn_blocking(move || {
                    rig.kill();
                    rig.start();
                })
                .await
                .unwrap();
                backlogs.push((accepted.load(Ordering::Relaxed), stored));
            }
            backlogs
        })
    };
    let mut senders = Vec::new();
    for _ in 0..CONCURRENCY {
        let (rig, hooks, order, next, accepted) = (
            rig.clone(),
            hooks.clone(),
            order.clone(),
            next.clone(),
            accepted.clone(),
        );
        senders.push(tokio::spawn(async move {
            let client = rig.client();
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(&i) = order.get(k) else { break };
                if deliver(&rig, &client, &hooks[i]).await {
                    accepted.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for sender in senders {
        sender.await.unwrap();
    }
    let kills = killer.await.unwrap();
    let ingest_time = started.elapsed();
    eprintln!("{backend:?}: {sends} sends accepted in {ingest_time:.1?}");

    // Every accepted webhook's message is stored exactly once. The writer is given as long as it
    // keeps storing (on moto it stores a few messages a second): the wait ends when all are
    // stored, or when nothing new was stored for two minutes.
    let mut stored_so_far = 0;
    let mut progress_at = Instant::now();
    loop {
        let now_stored = rig.stored_messages().await;
        if now_stored >= total as u64 {
            break;
        }
        if now_stored > stored_so_far {
            (stored_so_far, progress_at) = (now_stored, Instant::now());
        } else if progress_at.elapsed() > Duration::from_secs(120) {
            eprintln!("nothing stored for two minutes, at {now_stored} of {total}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let messages = rig.messages().await;
    let mut stored: BTreeMap<String, usize> = BTreeMap::new();
    for (_, message) in &messages {
        assert_eq!(message["direction"], "inbound", "{message}");
        let id = message["platform_message_id"]
            .as_str()
            .unwrap_or_else(|| panic!("an inbound message without a platform id: {message}"));
        *stored
            .entry(id.trim_matches(['<', '>']).to_string())
            .or_default() += 1;
    }
    let twice: Vec<_> = stored.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "stored more than once: {twice:?}");
    let missing: Vec<_> = hooks
        .iter()
        .filter(|h| !stored.contains_key(&h.platform_id))
        .map(|h| &h.platform_id)
        .collect();
    if !missing.is_empty() {
        let kept = keep_log(&rig.log, backend);
        let queues = queue_depths(backend, &rig.dir).await;
        panic!("accepted but not stored: {missing:?}; queues {queues:?}; log kept in {kept}");
    }
    assert_eq!(stored.len(), total, "nothing but the webhooks' messages");
    let stored_time = started.elapsed();
    eprintln!("{backend:?}: all stored once at {stored_time:.1?}");

    // Replies on every ticket but email ones, through platforms refusing a fifth of the calls.
    let mut replies = Vec::new();
    for ticket in rig.tickets().await {
        if ticket["channel"] == "email" {
            continue;
        }
        let id = ticket["id"].as_str().unwrap().to_string();
        for _ in 0..REPLIES_PER_TICKET {
            let token = format!("FI-R{}", replies.len());
            let (status, answer) = rig
                .api(
                    Method::POST,
                    &format!("/api/tickets/{id}/replies"),
                    Some(json!({"text": format!("{token} Thanks, it is on its way.")})),
                )
                .await;
            assert_eq!(status, 202, "{answer}");
            replies.push((
                id.clone(),
                answer["id"].as_str().unwrap().to_string(),
                token,
            ));
        }
    }
    let settled = |rig: Arc<Rig>| async move {
        let mut statuses = HashMap::new();
        for (ticket, message) in rig.messages().await {
            if message["direction"] == "outbound" {
                statuses.insert(
                    message["id"].as_str().unwrap().to_string(),
                    (ticket, message["delivery"].clone()),
                );
            }
        }
        statuses
    };
    wait_until("every reply is settled", Duration::from_secs(300), || {
        let rig = rig.clone();
        async move {
            settled(rig)
                .await
                .values()
                .all(|(_, d)| d["status"] != "queued")
        }
    })
    .await;
    let replies_time = started.elapsed();
    eprintln!(
        "{backend:?}: {} replies settled at {replies_time:.1?}",
        replies.len()
    );
    let outcomes = settled(rig.clone()).await;
    assert_eq!(outcomes.len(), replies.len(), "every reply is stored once");
    let delivered = platform.delivered.lock().unwrap().clone();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (_, message, token) in &replies {
        let (_, delivery) = &outcomes[message];
        let status = delivery["status"].as_str().unwrap().to_string();
        let calls = delivered.get(token).cloned().unwrap_or_default();
        match status.as_str() {
            "sent" => {
                assert_eq!(calls.len(), 1, "{token} sent once: {calls:?}");
                if !calls[0].is_empty() {
                    assert_eq!(delivery["platform_id"], calls[0].as_str(), "{token}");
                }
            }
            "failed" => {
                assert!(calls.is_empty(), "{token} failed but delivered: {calls:?}");
                assert!(delivery["error"]["code"].is_string(), "{delivery}");
            }
            "unknown" => assert!(calls.len() <= 1, "{token} delivered {calls:?}"),
            other => panic!("{token} ended {other}: {delivery}"),
        }
        *counts.entry(status).or_default() += 1;
    }
    assert!(
        counts.get("sent").copied().unwrap_or(0) * 10 >= replies.len() * 9,
        "nearly every reply gets through retries: {counts:?}"
    );
    let platform_calls = platform.calls.load(Ordering::Relaxed);
    let refused = platform.refused.load(Ordering::Relaxed);
    assert!(
        refused * 6 >= platform_calls,
        "a fifth refused: {refused} of {platform_calls}"
    );

    // The store faults happened (the log of all three processes counts them).
    let log = std::fs::read_to_string(&rig.log).unwrap();
    let faults_before = log.matches("injected store fault: failed before").count();
    let faults_after = log.matches("injected store fault: failed after").count();
    assert!(
        faults_before > 0 && faults_after > 0,
        "store faults were injected: {faults_before} before, {faults_after} after"
    );

    // Nothing is left in a queue, and nothing was dead-lettered.
    rig.kill();
    let queues = queue_depths(backend, &rig.dir).await;
    if queues.iter().any(|(_, n)| *n > 0) {
        // Why: the workers log each retry and each dead letter with its reason.
        let kept = keep_log(&rig.log, backend);
        let log = std::fs::read_to_string(&rig.log).unwrap_or_default();
        let reasons: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("will retry") || l.contains("dead letter"))
            .collect();
        panic!(
            "queues and dead-letter queues are not empty: {queues:?}; log kept in {kept}; \
             retries and dead letters ({} in all, the last 20):\n{}",
            reasons.len(),
            reasons[reasons.len().saturating_sub(20)..].join("\n")
        );
    }

    println!(
        "fault injection summary ({backend:?}): {total} webhooks + {} duplicates sent, all \
         accepted in {:.1} s and stored once ({} messages) by {:.1} s; killed at (accepted, stored) {kills:?}; \
         store faults injected: {faults_before} before and {faults_after} after the write; \
         replies {counts:?} of {} settled by {:.1} s through {platform_calls} platform calls, {refused} refused \
         with 429/500; queues {queues:?}; total {:.1} s",
        sends + first_mails.len() - total,
        ingest_time.as_secs_f64(),
        stored.len(),
        stored_time.as_secs_f64(),
        replies.len(),
        replies_time.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
}

/// Copies the stack's log where it outlives the test's temporary directory; returns where.
fn keep_log(log: &Path, backend: Backend) -> String {
    let kept =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fault-injection-{backend:?}.log"));
    let _ = std::fs::copy(log, &kept);
    kept.display().to_string()
}

/// How many messages each queue and dead-letter queue holds.
async fn queue_depths(backend: Backend, dir: &Path) -> Vec<(String, usize)> {
    match backend {
        Backend::Embedded => {
            use crossdesk_embedded::{QueueName, SqliteQueue};
            let queue = SqliteQueue::open(&dir.join("crossdesk.db")).unwrap();
            let mut depths = Vec::new();
            for name in [QueueName::Inbound, QueueName::Outbound] {
                depths.push((name.to_string(), queue.depth(name).await.unwrap()));
                let dead = queue.dead_letters(name).await.unwrap();
                for letter in &dead {
                    eprintln!("{name} dead letter: {} ({})", letter.reason, letter.body);
                }
                depths.push((format!("{name} dead letters"), dead.len()));
            }
            depths
        }
        Backend::Aws => {
            let names = crossdesk_aws::ResourceNames::with_prefix(&common::resource_prefix(dir));
            let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            let sqs = aws_sdk_sqs::Client::new(&config);
            let mut depths = Vec::new();
            for queue in [&names.inbound_queue, &names.outbound_queue] {
                let stem = queue.strip_suffix(".fifo").unwrap();
                for name in [queue.clone(), format!("{stem}-dlq.fifo")] {
                    let url = sqs
                        .get_queue_url()
                        .queue_name(&name)
                        .send()
                        .await
                        .unwrap()
                        .queue_url
                        .unwrap();
                    let attributes = sqs
                        .get_queue_attributes()
                        .queue_url(url)
                        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
                        .send()
                        .await
                        .unwrap()
                        .attributes
                        .unwrap_or_default();
                    let count = |a: aws_sdk_sqs::types::QueueAttributeName| -> usize {
                        attributes.get(&a).and_then(|v| v.parse().ok()).unwrap_or(0)
                    };
                    depths.push((
                        name,
                        count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
                            + count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                            + count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesDelayed),
                    ));
                }
            }
            depths
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_every_accepted_webhook_is_stored_once_and_every_reply_sent_once_under_faults() {
    faults_are_survived(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_every_accepted_webhook_is_stored_once_and_every_reply_sent_once_under_faults() {
    faults_are_survived(Backend::Aws).await;
}
