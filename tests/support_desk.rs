//! End to end: the support desk's workflow through the agent API of the real `crossdesk-local`
//! binary, on the embedded and the DynamoDB (moto) backends: one customer across channels,
//! public-to-private handoff, SLAs, assignment, tags, notes, canned responses, similar tickets
//! and contact merges, configured by a `crossdesk.toml`.

mod common;
#[path = "common/fake_platform.rs"]
mod fake_platform;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Backend, Stack};
use fake_platform::FakePlatform;
use reqwest::Method;
use serde_json::{json, Value};

/// The desk settings of these tests: always open, short targets, one order-number pattern,
/// one canned response.
const SETTINGS: &str = r#"
[sla]
warn_before_minutes = 120

[sla.business_hours]
always_open = true

[personal_data]
patterns = [{ name = "order_number", regex = '(?i)\border\s*#?\s*\d{6,}\b' }]

[[canned]]
name = "refund_started"
title = "Refund started"
text = "Hi {{customer.first_name}}, your refund for {{ticket.subject}} is on its way. {{agent.name}}"
"#;

fn start(backend: Backend, dir: &Path) -> Stack {
    start_with(backend, dir, &[])
}

/// [`start`] with more environment variables.
fn start_with(backend: Backend, dir: &Path, env: &[(&str, String)]) -> Stack {
    let settings = dir.join("crossdesk.toml");
    std::fs::write(&settings, SETTINGS).unwrap();
    let mut all = vec![
        ("CROSSDESK_CONFIG", settings.display().to_string()),
        ("CROSSDESK_EMAIL_FROM", "support@sample.example".into()),
    ];
    all.extend(env.iter().cloned());
    Stack::start_env(backend, dir, &[], &all)
}

/// Waits (15 s at most; 30 s on AWS) until `ready` holds for what `read` returns.
async fn until<F, Fut>(backend: Backend, read: F, ready: impl Fn(&Value) -> bool) -> Value
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Value>,
{
    let wait = match backend {
        Backend::Embedded => 15,
        Backend::Aws => 30,
    };
    let deadline = Instant::now() + Duration::from_secs(wait);
    loop {
        let value = read().await;
        if ready(&value) || Instant::now() > deadline {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn get(stack: &Stack, path: &str) -> Value {
    let (status, body) = stack.api_get(path).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// Sends `body` to the agent API and checks the answer's status; the answer.
async fn send(stack: &Stack, method: Method, path: &str, body: Value, status: u16) -> Value {
    let (got, answer) = stack.api_send(method.clone(), path, &body).await;
    assert_eq!(got, status, "{method} {path}: {answer}");
    answer
}

/// `PATCH /api/tickets/{id}` with `change`, answered 200; the ticket as answered.
async fn patch_ticket(stack: &Stack, id: &str, change: Value) -> Value {
    send(
        stack,
        Method::PATCH,
        &format!("/api/tickets/{id}"),
        change,
        200,
    )
    .await
}

/// `POST /api/contacts/{contact}/{action}` (merge, unmerge) of `source`, answered `status`.
async fn link_contacts(
    stack: &Stack,
    contact: &str,
    action: &str,
    source: &str,
    status: u16,
) -> Value {
    send(
        stack,
        Method::POST,
        &format!("/api/contacts/{contact}/{action}"),
        json!({ "source": source }),
        status,
    )
    .await
}

fn chat(session: &str, visitor: &str, id: &str, text: &str, email: Option<&str>) -> Vec<u8> {
    let mut visitor = json!({ "id": visitor, "name": "Alex Example" });
    if let Some(email) = email {
        visitor["email"] = json!(email);
    }
    json!({
        "session_id": session,
        "visitor": visitor,
        "message": { "id": id, "text": text, "sent_at": chrono::Utc::now().to_rfc3339() }
    })
    .to_string()
    .into_bytes()
}

fn comment(comment_id: &str, user: &str, text: &str) -> Vec<u8> {
    json!({
        "object": "page",
        "entry": [{
            "id": "PAGE_ID_100200300",
            "time": chrono::Utc::now().timestamp(),
            "changes": [{ "field": "feed", "value": {
                "from": { "id": user, "name": "Sam Sample" },
                "post_id": "PAGE_ID_100200300_POST_777",
                "comment_id": comment_id,
                "parent_id": "PAGE_ID_100200300_POST_777",
                "created_time": chrono::Utc::now().timestamp(),
                "item": "comment", "verb": "add", "message": text
            }}]
        }]
    })
    .to_string()
    .into_bytes()
}

async fn post(stack: &Stack, channel: &str, body: &[u8]) {
    let (status, answer) = stack.post_signed(channel, body).await;
    assert_eq!(status, 200, "{answer}");
}

async fn one_ticket(stack: &Stack, backend: Backend, messages: u64) -> Value {
    let tickets = until(
        backend,
        || async { get(stack, "/api/tickets?limit=200").await },
        |v| v["tickets"][0]["message_count"].as_u64() >= Some(messages),
    )
    .await;
    let list = tickets["tickets"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{tickets:#}");
    list[0].clone()
}

async fn a_tweet_a_dm_and_a_mail_to_the_tickets_address_are_one_ticket(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let stack = start(backend, dir.path());
    post(
        &stack,
        "twitter",
        &common::event("twitter", "tweet-mention.json"),
    )
    .await;
    one_ticket(&stack, backend, 1).await;
    // The same X user writes a DM: a new conversation, the same customer, the same ticket.
    post(&stack, "twitter", &common::event("twitter", "dm.json")).await;
    let ticket = one_ticket(&stack, backend, 2).await;
    let id = ticket["id"].as_str().unwrap().to_string();
    // The agent gave the customer the ticket's signed address; they write from a new address.
    let ticket_id = crossdesk_core::TicketId::parse(&id).unwrap();
    let signature = common::thread_key().ticket_signature(&ticket_id);
    let mail = format!(
        "From: Alex <alex.private@example.net>\r\nTo: support+{id}.{signature}@sample.example\r\n\
         Subject: My invoice\r\nMessage-ID: <first-mail-{id}@example.net>\r\n\
         Date: Mon, 30 Nov 2026 10:00:00 +0000\r\n\r\nAs asked, here is the invoice question by mail.\r\n"
    );
    post(&stack, "email", mail.as_bytes()).await;
    let ticket = one_ticket(&stack, backend, 3).await;
    assert_eq!(ticket["id"], id.as_str());
    let view = stack.ticket(&id).await;
    let channels: Vec<&str> = view["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, ["twitter", "twitter", "email"], "{view:#}");

    // The customer's history: the contact with the ticket; the mail's sender is suggested.
    let contact_id = view["contact"]["id"].as_str().unwrap();
    let contact = get(&stack, &format!("/api/contacts/{contact_id}")).await;
    assert_eq!(
        contact["tickets"].as_array().unwrap().len(),
        1,
        "{contact:#}"
    );
    assert_eq!(contact["tickets"][0]["id"], id.as_str());
    let suggestions = contact["links"]["suggestions"].as_array().unwrap();
    assert_eq!(suggestions.len(), 1, "{contact:#}");
    assert_eq!(suggestions[0]["identity"], "email:alex.private@example.net");

    // The agent merges the mail's contact in: its identities now count as this customer.
    let source = suggestions[0]["contact_id"].as_str().unwrap().to_string();
    let merged = link_contacts(&stack, contact_id, "merge", &source, 200).await;
    assert_eq!(merged["links"]["merged"], json!([source]));
    assert_eq!(merged["merged_contacts"][0]["id"], source.as_str());
    // The merged contact's page shows the survivor.
    let via_source = get(&stack, &format!("/api/contacts/{source}")).await;
    assert_eq!(via_source["id"], contact_id);
    // Merging twice is harmless; merging the survivor into the merged one is refused.
    link_contacts(&stack, contact_id, "merge", &source, 200).await;
    link_contacts(&stack, &source, "merge", contact_id, 409).await;
    // Unmerge undoes it.
    let unmerged = link_contacts(&stack, contact_id, "unmerge", &source, 200).await;
    assert_eq!(unmerged["links"]["merged"], json!([]));
    let alone = get(&stack, &format!("/api/contacts/{source}")).await;
    assert_eq!(alone["id"], source.as_str());
}

async fn personal_data_in_a_public_comment_is_flagged_and_handed_off_in_one_action(
    backend: Backend,
) {
    // Graph as Meta runs it: the comment edge answers `{"id"}`, the Send API `{"message_id"}`.
    let graph = FakePlatform::start(vec![(
        200,
        json!({"id": "POST_777_COMMENT_995", "recipient_id": "USER_ID_5550077", "message_id": "m_private_1"}),
    )])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let stack = start_with(
        backend,
        dir.path(),
        &[
            ("CROSSDESK_FACEBOOK_GRAPH_URL", graph.base.clone()),
            ("CROSSDESK_FACEBOOK_PAGE_TOKEN", "page-token-desk".into()),
        ],
    );
    post(
        &stack,
        "facebook",
        &comment(
            "POST_777_COMMENT_990",
            "USER_ID_5550077",
            "Wo bleibt meine Bestellung? Order #4711001, IBAN DE89 3704 0044 0532 0130 00",
        ),
    )
    .await;
    let ticket = one_ticket(&stack, backend, 1).await;
    let id = ticket["id"].as_str().unwrap();
    let view = stack.ticket(id).await;
    assert_eq!(
        view["messages"][0]["personal_data"],
        json!(["iban", { "pattern": "order_number" }]),
        "{view:#}"
    );
    assert_eq!(
        view["workflow"]["personal_data"],
        json!(["iban", { "pattern": "order_number" }])
    );
    let handoff = send(
        &stack,
        Method::POST,
        &format!("/api/tickets/{id}/handoff"),
        json!({}),
        202,
    )
    .await;
    // The customer wrote German: both texts are German; the public one repeats no data.
    assert_eq!(handoff["language"], "de");
    let public = handoff["public"]["text"].as_str().unwrap();
    assert!(
        !public.contains("4711001") && !public.contains("DE89"),
        "{public}"
    );
    assert_eq!(handoff["public"]["visibility"], "public");
    assert_eq!(handoff["private"]["visibility"], "private");
    let view = until(
        backend,
        || async { stack.ticket(id).await },
        |v| {
            v["messages"].as_array().is_some_and(|m| {
                m.len() == 3 && m[1..].iter().all(|m| m["delivery"]["status"] == "sent")
            })
        },
    )
    .await;
    let messages = view["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3, "{view:#}");
    let handoff_record = &view["workflow"]["handoff"];
    assert_eq!(handoff_record["public_message"], handoff["public"]["id"]);
    assert_eq!(handoff_record["private_message"], handoff["private"]["id"]);
    // Both went out through Graph.
    for m in &messages[1..] {
        assert_eq!(m["delivery"]["status"], "sent", "{m:#}");
    }
    // The handoff answered the customer: the first-response clock stopped.
    assert!(view["workflow"]["sla"]["first_response_at"].is_string());

    // Exactly what Meta receives: the public answer on the comment's `comments` edge, and the
    // private reply through the Send API to the comment's author (Meta's Private Replies; the
    // old `/{comment-id}/private_replies` edge is gone since Graph v3.2).
    let version = crossdesk_channels::graph_version::GRAPH_API_VERSION;
    let requests = graph.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    let public_call = requests
        .iter()
        .find(|r| r.path == format!("/{version}/POST_777_COMMENT_990/comments"))
        .expect("the public answer on the comment edge");
    assert_eq!(public_call.method, "POST");
    assert_eq!(
        public_call.header("authorization"),
        Some("Bearer page-token-desk")
    );
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&public_call.body)
        .into_owned()
        .collect();
    assert_eq!(form, [("message".to_string(), public.to_string())]);
    let private_call = requests
        .iter()
        .find(|r| r.path == format!("/{version}/me/messages"))
        .expect("the private reply through the Send API");
    assert_eq!(private_call.method, "POST");
    assert_eq!(
        private_call.header("authorization"),
        Some("Bearer page-token-desk")
    );
    assert_eq!(
        private_call.header("content-type"),
        Some("application/json")
    );
    assert_eq!(
        private_call.json(),
        json!({
            "recipient": { "comment_id": "POST_777_COMMENT_990" },
            "message": {
                "text": handoff["private"]["text"],
                "metadata": format!("crossdesk:{}", handoff["private"]["id"].as_str().unwrap()),
            }
        })
    );
}

async fn sla_targets_are_set_listed_when_breaching_and_stopped_by_the_first_response(
    backend: Backend,
) {
    let dir = tempfile::tempdir().unwrap();
    let stack = start(backend, dir.path());
    // Public social: the shortest target. Chat: 5 minutes, both nearing within the 2-hour warning.
    post(
        &stack,
        "facebook",
        &comment(
            "POST_777_COMMENT_991",
            "USER_ID_5550078",
            "Where is my parcel?",
        ),
    )
    .await;
    post(
        &stack,
        "chat",
        &chat("sess_sla", "visitor_sla", "chatmsg_sla_1", "Hello?", None),
    )
    .await;
    let breaching = until(
        backend,
        || async { get(&stack, "/api/tickets?sla=breaching").await },
        |v| v["tickets"].as_array().is_some_and(|t| t.len() == 2),
    )
    .await;
    let list = breaching["tickets"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{breaching:#}");
    // Earliest due first: the chat's 5 minutes before the comment's hour.
    assert_eq!(list[0]["channel"], "chat");
    assert_eq!(list[0]["workflow"]["sla_state"], "nearing");
    assert_eq!(list[0]["workflow"]["sla"]["policy"], "chat/normal");
    assert_eq!(list[1]["workflow"]["sla"]["policy"], "public/normal");
    let chat_id = list[0]["id"].as_str().unwrap().to_string();
    let due = chrono::DateTime::parse_from_rfc3339(
        list[0]["workflow"]["sla"]["first_response_due"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let created =
        chrono::DateTime::parse_from_rfc3339(list[0]["created_at"].as_str().unwrap()).unwrap();
    let target = (due - created).num_seconds();
    assert!((299..=301).contains(&target), "chat target {target} s");

    // Urgent priority moves the target; the first reply stops the clock.
    let updated = patch_ticket(&stack, &chat_id, json!({"priority": "urgent"})).await;
    assert_eq!(updated["workflow"]["sla"]["policy"], "chat/urgent");
    send(
        &stack,
        Method::POST,
        &format!("/api/tickets/{chat_id}/replies"),
        json!({"text": "Hi!"}),
        202,
    )
    .await;
    let breaching = get(&stack, "/api/tickets?sla=breaching").await;
    let ids: Vec<&str> = breaching["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert!(!ids.contains(&chat_id.as_str()), "{breaching:#}");
    let view = stack.ticket(&chat_id).await;
    assert_eq!(view["workflow"]["sla_state"], "met");
    // Solving records the resolution time.
    let solved = patch_ticket(&stack, &chat_id, json!({"status": "solved"})).await;
    assert!(
        solved["workflow"]["sla"]["resolved_at"].is_string(),
        "{solved:#}"
    );
}

async fn agents_assign_tag_note_and_use_canned_responses(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let stack = start(backend, dir.path());
    post(
        &stack,
        "chat",
        &chat(
            "sess_work",
            "visitor_work",
            "chatmsg_w1",
            "Refund for my broken kettle please",
            None,
        ),
    )
    .await;
    let ticket = one_ticket(&stack, backend, 1).await;
    let id = ticket["id"].as_str().unwrap().to_string();

    let updated = patch_ticket(
        &stack,
        &id,
        json!({"assignee": "agent-7", "team": "billing", "add_tags": ["Refund", "kettle"]}),
    )
    .await;
    assert_eq!(updated["workflow"]["assignee"], "agent-7");
    assert_eq!(updated["workflow"]["team"], "billing");
    assert_eq!(updated["workflow"]["tags"], json!(["kettle", "refund"]));
    for query in [
        "assignee=agent-7",
        "team=billing",
        "tag=refund",
        "tag=REFUND",
    ] {
        let list = get(&stack, &format!("/api/tickets?{query}")).await;
        assert_eq!(
            list["tickets"].as_array().unwrap().len(),
            1,
            "{query}: {list:#}"
        );
    }
    for query in ["assignee=agent-8", "tag=other", "assignee=none"] {
        let list = get(&stack, &format!("/api/tickets?{query}")).await;
        assert_eq!(
            list["tickets"].as_array().unwrap().len(),
            0,
            "{query}: {list:#}"
        );
    }
    let updated = patch_ticket(
        &stack,
        &id,
        json!({"assignee": null, "remove_tags": ["kettle"]}),
    )
    .await;
    assert!(updated["workflow"].get("assignee").is_none(), "{updated:#}");
    assert_eq!(updated["workflow"]["tags"], json!(["refund"]));
    let path = format!("/api/tickets/{id}");
    send(
        &stack,
        Method::PATCH,
        &path,
        json!({"priority": "asap"}),
        400,
    )
    .await;
    // A ticket carries at most 32 tags: a change past that is refused whole.
    let many: Vec<String> = (0..32).map(|i| format!("tag-{i}")).collect();
    let refused = send(&stack, Method::PATCH, &path, json!({"add_tags": many}), 400).await;
    assert!(refused.to_string().contains("at most 32 tags"), "{refused}");
    let view = stack.ticket(&id).await;
    assert_eq!(view["workflow"]["tags"], json!(["refund"]), "nothing saved");

    // An internal note: in the timeline, never queued for sending.
    let note = send(
        &stack,
        Method::POST,
        &format!("/api/tickets/{id}/notes"),
        json!({"text": "Customer is a reseller, check the contract."}),
        201,
    )
    .await;
    assert_eq!(note["internal_note"], true);
    assert!(note.get("delivery").is_none(), "{note:#}");
    let view = stack.ticket(&id).await;
    let last = view["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["internal_note"], true);
    assert!(last.get("delivery").is_none());
    // A note is no answer to the customer.
    assert!(
        view["workflow"]["sla"].get("first_response_at").is_none(),
        "{view:#}"
    );

    let canned = get(&stack, "/api/canned-responses").await;
    assert_eq!(canned["canned_responses"][0]["name"], "refund_started");
    let rendered = get(
        &stack,
        &format!("/api/tickets/{id}/canned-responses/refund_started"),
    )
    .await;
    assert_eq!(
        rendered["text"],
        "Hi Alex, your refund for Refund for my broken kettle please is on its way. Agent"
    );
    let (status, _) = stack
        .api_get(&format!("/api/tickets/{id}/canned-responses/unknown"))
        .await;
    assert_eq!(status, 404);
}

async fn similar_questions_list_each_other(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let stack = start(backend, dir.path());
    let questions = [
        ("sess_s1", "v_s1", "Meine Rechnung wurde doppelt abgebucht"),
        ("sess_s2", "v_s2", "Wann kommt meine Lieferung an?"),
        ("sess_s3", "v_s3", "How do I reset my password?"),
    ];
    for (i, (session, visitor, text)) in questions.iter().enumerate() {
        post(
            &stack,
            "chat",
            &chat(session, visitor, &format!("chatmsg_s{i}"), text, None),
        )
        .await;
    }
    assert_eq!(stack.wait_for_messages(3).await, 3);
    post(
        &stack,
        "chat",
        &chat(
            "sess_s4",
            "v_s4",
            "chatmsg_s9",
            "Die Rechnungen sind doppelt abgebucht worden!",
            None,
        ),
    )
    .await;
    assert_eq!(stack.wait_for_messages(4).await, 4);
    let tickets = stack.tickets().await;
    let id_of = |session: &str| {
        tickets
            .iter()
            .find(|t| t["conversation_key"] == format!("chat:session:{session}"))
            .map(|t| t["id"].as_str().unwrap().to_string())
            .unwrap()
    };
    let similar = until(
        backend,
        || async {
            get(
                &stack,
                &format!("/api/tickets/{}/similar", id_of("sess_s4")),
            )
            .await
        },
        |v| v["similar"].as_array().is_some_and(|s| !s.is_empty()),
    )
    .await;
    let list = similar["similar"].as_array().unwrap();
    assert_eq!(
        list[0]["ticket_id"],
        id_of("sess_s1").as_str(),
        "{similar:#}"
    );
    assert_eq!(list[0]["subject"], "Meine Rechnung wurde doppelt abgebucht");
    assert!(list
        .iter()
        .all(|s| s["ticket_id"] != id_of("sess_s3").as_str()));
}

on_both_backends!(
    a_tweet_a_dm_and_a_mail_to_the_tickets_address_are_one_ticket,
    personal_data_in_a_public_comment_is_flagged_and_handed_off_in_one_action,
    sla_targets_are_set_listed_when_breaching_and_stopped_by_the_first_response,
    agents_assign_tag_note_and_use_canned_responses,
    similar_questions_list_each_other,
);
