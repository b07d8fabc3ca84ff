//! End to end: social monitoring in the local stack. A fake X answers the token and the recent
//! search; the posts naming the brand become tickets, and the same post arriving later through
//! the webhook is a duplicate the writer absorbs.

mod common;

use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use common::{event, Backend, Stack};
use serde_json::{json, Value};

/// One request the fake X received: method, path, query, authorization.
#[derive(Debug, Clone)]
struct Recorded {
    path: String,
    query: String,
    authorization: Option<String>,
}

/// A fake X API: a bearer token at `POST /oauth2/token`; search pages in order (the last one
/// repeats).
#[derive(Clone)]
struct FakeX {
    recorded: Arc<Mutex<Vec<Recorded>>>,
    pages: Arc<Mutex<Vec<String>>>,
    base: String,
}

impl FakeX {
    async fn start(pages: Vec<String>) -> FakeX {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = FakeX {
            recorded: Arc::default(),
            pages: Arc::new(Mutex::new(pages)),
            base: format!("http://{}", listener.local_addr().unwrap()),
        };
        let app = Router::new().fallback(answer).with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fake
    }

    fn searches(&self) -> Vec<Recorded> {
        let recorded = self.recorded.lock().unwrap();
        recorded
            .iter()
            .filter(|r| r.path == "/2/tweets/search/recent")
            .cloned()
            .collect()
    }
}

async fn answer(State(fake): State<FakeX>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    fake.recorded.lock().unwrap().push(Recorded {
        path: path.clone(),
        query: request.uri().query().unwrap_or_default().to_string(),
        authorization: request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    });
    if path == "/oauth2/token" {
        let token = json!({"token_type": "bearer", "access_token": "AAAA-e2e-bearer"});
        return (StatusCode::OK, axum::Json(token)).into_response();
    }
    let page = {
        let mut pages = fake.pages.lock().unwrap();
        if pages.len() > 1 {
            pages.remove(0)
        } else {
            pages[0].clone()
        }
    };
    (
        StatusCode::OK,
        [("content-type", "application/json; charset=utf-8")],
        page,
    )
        .into_response()
}

fn api_answer(name: &str) -> String {
    String::from_utf8(event("x-api", name)).unwrap()
}

#[tokio::test]
async fn posts_naming_the_brand_become_tickets_once() {
    let x = FakeX::start(vec![
        api_answer("recent-search.json"),
        api_answer("recent-search-empty.json"),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start_env(
        Backend::Embedded,
        dir.path(),
        &[],
        &[
            ("CROSSDESK_TWITTER_API_URL", x.base.clone()),
            ("CROSSDESK_TWITTER_CONSUMER_KEY", "ck-e2e".into()),
            (
                "CROSSDESK_MONITORING_KEYWORDS",
                "Acme Rocket Boots, Acme App".into(),
            ),
            ("CROSSDESK_MONITORING_LANGUAGES", "de,en".into()),
            ("CROSSDESK_TWITTER_ACCOUNT_ID", "3000000001".into()),
            ("CROSSDESK_TWITTER_ACCOUNT_HANDLE", "sample_support".into()),
            ("CROSSDESK_MONITORING_INTERVAL_SECS", "3600".into()),
            ("CROSSDESK_HEALTH_INTERVAL_SECS", "0".into()),
        ],
    );

    // The first poll runs at start: one page, two posts (the account's own post and a reply
    // mentioning it are left to the webhook).
    assert_eq!(stack.wait_for_messages(2).await, 2);
    let searches = x.searches();
    assert_eq!(searches.len(), 1, "{searches:?}");
    assert_eq!(
        searches[0].authorization.as_deref(),
        Some("Bearer AAAA-e2e-bearer")
    );
    assert!(
        !searches[0].query.contains("since_id"),
        "{}",
        searches[0].query
    );
    let tickets = stack.tickets().await;
    assert_eq!(tickets.len(), 2, "{tickets:#?}");
    for ticket in &tickets {
        assert_eq!(ticket["channel"], "twitter");
        let full = stack.ticket(ticket["id"].as_str().unwrap()).await;
        let messages = full["messages"].as_array().cloned().unwrap_or_default();
        assert_eq!(messages.len(), 1, "{full:#}");
        assert_eq!(messages[0]["monitoring"], true, "{full:#}");
        assert_eq!(full["workflow"]["kind"], "monitoring", "{full:#}");
    }
    let (status, listed) = stack.api_get("/api/tickets?kind=monitoring").await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["tickets"].as_array().unwrap().len(), 2, "{listed:#}");

    // The same post, delivered later by the X webhook (a reply in the X Activity envelope),
    // is a duplicate; a new mention after it is stored.
    let post =
        &serde_json::from_str::<Value>(&api_answer("recent-search.json")).unwrap()["data"][0];
    let webhook = json!({"data": {
        "event_uuid": "e2e-dup-1",
        "event_type": "post.reply.create",
        "filter": {"user_id": "3000000001"},
        "payload": post,
        "includes": {"users": [{"id": "4000000002", "name": "Alex Example", "username": "alex_example"}]},
    }});
    let (status, body) = stack
        .post_signed("twitter", webhook.to_string().as_bytes())
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = stack.post_event("twitter", "tweet-mention.json").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(stack.wait_for_messages(3).await, 3);
    assert_eq!(stack.tickets().await.len(), 3);
    // A mention is a conversation, not monitoring.
    let (_, listed) = stack.api_get("/api/tickets?kind=conversation").await;
    assert_eq!(listed["tickets"].as_array().unwrap().len(), 1, "{listed:#}");
}
