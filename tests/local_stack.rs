//! End to end: the real `crossdesk-local` binary, signed webhooks over HTTP, the agent API, and
//! a crash (SIGKILL) followed by a restart on the same data dir.

mod common;

use common::{
    event, Backend, Stack, AGENT_TOKEN, CHAT_SECRET, FACEBOOK_VERIFY_TOKEN, TWITTER_CONSUMER_SECRET,
};
use crossdesk::samples::{self, SignedRequest};
use reqwest::Method;
use serde_json::{json, Value};

/// One sample per channel, and how many messages each yields.
const SAMPLES: [(&str, &str); 6] = [
    ("facebook", "messenger-text.json"),
    ("facebook", "feed-comment-add.json"),
    ("twitter", "tweet-mention.json"),
    ("twitter", "dm.json"),
    ("email", "plain-and-html.eml"),
    ("chat", "message.json"),
];

fn ticket_by_channel<'a>(tickets: &'a [Value], channel: &str) -> Vec<&'a Value> {
    tickets.iter().filter(|t| t["channel"] == channel).collect()
}

async fn webhooks_become_tickets_that_survive_a_crash_and_restart(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(backend, dir.path());
    for (channel, name) in SAMPLES {
        let (status, body) = stack.post_event(channel, name).await;
        assert_eq!(status, 200, "{channel}/{name}: {body}");
        assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["accepted"], 1);
    }
    assert_eq!(stack.wait_for_messages(6).await, 6);
    let before = stack.tickets().await;
    // One ticket per customer conversation: the X user's DM continues their mention's ticket.
    assert_eq!(before.len(), 5, "one ticket per conversation: {before:#?}");
    let twitter = ticket_by_channel(&before, "twitter");
    assert_eq!(twitter.len(), 1);
    assert_eq!(twitter[0]["message_count"], 2);
    let mut views_before = Vec::new();
    for t in &before {
        views_before.push(stack.ticket(t["id"].as_str().unwrap()).await);
    }

    // Newest activity first.
    let times: Vec<&str> = before
        .iter()
        .map(|t| t["updated_at"].as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted);

    // Normalized fields, as the agent API shows them.
    let email = ticket_by_channel(&before, "email")[0];
    assert_eq!(email["subject"], "Invoice address wrong");
    assert_eq!(email["status"], "open");
    assert_eq!(email["contact"]["name"], "Alex Example");
    assert_eq!(email["contact"]["emails"], json!(["alex@example.com"]));
    let chat = stack
        .ticket(
            ticket_by_channel(&before, "chat")[0]["id"]
                .as_str()
                .unwrap(),
        )
        .await;
    let m = &chat["messages"][0];
    assert_eq!(m["text"], "Can I change my delivery date?");
    assert_eq!(m["direction"], "inbound");
    assert_eq!(m["channel"], "chat");
    assert_eq!(m["visibility"], "private");
    assert_eq!(m["author"]["platform_id"], "visitor_01");
    assert!(m["raw"].as_str().unwrap().starts_with("sha256:"));
    let comment = stack
        .ticket(
            before
                .iter()
                .find(|t| {
                    t["conversation_key"]
                        .as_str()
                        .unwrap()
                        .starts_with("facebook:comments")
                })
                .expect("a page comment ticket")["id"]
                .as_str()
                .unwrap(),
        )
        .await;
    assert_eq!(comment["messages"][0]["visibility"], "public");

    stack.kill();
    let stack = Stack::start(backend, dir.path());
    let after = stack.tickets().await;
    assert_eq!(
        after, before,
        "tickets are the same after a crash and restart"
    );
    for view in views_before {
        assert_eq!(stack.ticket(view["id"].as_str().unwrap()).await, view);
    }
}

async fn accepted_webhooks_are_stored_even_if_the_stack_dies_right_after_answering(
    backend: Backend,
) {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(backend, dir.path());
    let n = 40;
    for i in 0..n {
        let body = json!({
            "session_id": format!("sess_{i}"),
            "visitor": {"id": format!("visitor_{i}")},
            "message": {"id": "m1", "text": format!("question {i}"), "sent_at": "2026-11-20T10:00:00Z"}
        });
        let (status, answer) = stack.post_signed("chat", body.to_string().as_bytes()).await;
        assert_eq!(status, 200, "{answer}");
    }
    // No waiting for the writer: the process dies with whatever is still queued.
    stack.kill();
    let stack = Stack::start(backend, dir.path());
    assert_eq!(stack.wait_for_messages(n).await, n);
    assert_eq!(stack.tickets().await.len() as u64, n);
}

async fn duplicate_deliveries_are_stored_once_and_threads_follow_the_rules(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(backend, dir.path());
    // Every platform retries: deliver each sample twice.
    for _ in 0..2 {
        for (channel, name) in SAMPLES {
            assert_eq!(stack.post_event(channel, name).await.0, 200);
        }
    }
    // An echo of the page's answer joins the customer's Messenger thread; the customer's email
    // reply (In-Reply-To/References) joins the email ticket.
    assert_eq!(
        stack.post_event("facebook", "messenger-echo.json").await.0,
        200
    );
    assert_eq!(stack.post_event("email", "reply-threaded.eml").await.0, 200);
    assert_eq!(stack.wait_for_messages(8).await, 8);
    // Give a late duplicate the chance to show up before counting for the last time.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(stack.message_count().await, 8);
    let tickets = stack.tickets().await;
    // Five: the X user's mention and DM are one customer conversation.
    assert_eq!(tickets.len(), 5);

    let messenger = tickets
        .iter()
        .find(|t| {
            t["conversation_key"]
                .as_str()
                .unwrap()
                .starts_with("facebook:dm")
        })
        .unwrap();
    let view = stack.ticket(messenger["id"].as_str().unwrap()).await;
    let directions: Vec<&str> = view["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["direction"].as_str().unwrap())
        .collect();
    assert_eq!(directions, ["inbound", "outbound"]);

    let email = ticket_by_channel(&tickets, "email")[0];
    let view = stack.ticket(email["id"].as_str().unwrap()).await;
    let texts: Vec<&str> = view["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts.len(), 2, "{view:#}");
    assert_eq!(texts[1], "Thanks, that worked.");
    assert!(view["messages"][1]["email"]["quoted_text"]
        .as_str()
        .unwrap()
        .contains("We have corrected the address."));
}

async fn a_chat_visitor_giving_a_known_email_is_only_suggested_as_that_contact(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(backend, dir.path());
    assert_eq!(stack.post_event("email", "plain-and-html.eml").await.0, 200);
    assert_eq!(stack.wait_for_messages(1).await, 1);
    assert_eq!(stack.post_event("chat", "message.json").await.0, 200);
    assert_eq!(stack.post_event("chat", "anonymous.json").await.0, 200);
    assert_eq!(stack.wait_for_messages(3).await, 3);
    let tickets = stack.tickets().await;
    let email = ticket_by_channel(&tickets, "email")[0];
    let chats = ticket_by_channel(&tickets, "chat");
    let alex_chat = chats
        .iter()
        .find(|t| t["conversation_key"] == "chat:session:sess_sample_01")
        .unwrap();
    // Chat input is unverified: the address the visitor typed links nothing by itself.
    assert_ne!(email["contact"]["id"], alex_chat["contact"]["id"]);
    let identities = alex_chat["contact"]["identities"].as_array().unwrap();
    assert_eq!(identities, &vec![json!("chat:visitor_01")]);
    // It is a suggestion, on both contacts, for an agent to merge.
    let chat_contact = alex_chat["contact"]["id"].as_str().unwrap();
    let email_contact = email["contact"]["id"].as_str().unwrap();
    for (contact, other) in [(chat_contact, email_contact), (email_contact, chat_contact)] {
        let (status, view) = stack.api_get(&format!("/api/contacts/{contact}")).await;
        assert_eq!(status, 200, "{view}");
        let suggestions = view["links"]["suggestions"].as_array().unwrap();
        assert_eq!(suggestions.len(), 1, "{view:#}");
        assert_eq!(suggestions[0]["contact_id"], other);
        assert_eq!(suggestions[0]["identity"], "email:alex@example.com");
    }
}

async fn forged_stale_malformed_and_oversize_webhooks_are_refused_and_never_queued(
    backend: Backend,
) {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(backend, dir.path());
    let good = |channel: &str, name: &str| {
        samples::sign(
            channel,
            event(channel, name),
            &common::secrets(),
            chrono::Utc::now(),
        )
        .unwrap()
    };
    let cases: Vec<(&str, SignedRequest, u16)> = {
        let mut v = Vec::new();
        for (channel, name) in [
            ("facebook", "messenger-text.json"),
            ("twitter", "tweet-mention.json"),
            ("chat", "message.json"),
            ("email", "plain-and-html.eml"),
        ] {
            if channel != "email" {
                // Forged: the body changed after signing (email is covered by its token below).
                let mut forged = good(channel, name);
                forged.body.extend_from_slice(b" ");
                v.push(("forged", forged, 401));
            }
            // Missing signature header.
            let mut missing = good(channel, name);
            missing.headers.retain(|(n, _)| n == "content-type");
            v.push(("missing", missing, 401));
            if channel != "email" {
                // Validly signed, but not the platform's JSON / cut short.
                let bad_json = samples::sign(
                    channel,
                    b"{not json".to_vec(),
                    &common::secrets(),
                    chrono::Utc::now(),
                )
                .unwrap();
                v.push(("malformed json", bad_json, 400));
                let body = event(channel, name);
                let truncated = samples::sign(
                    channel,
                    body[..body.len() / 2].to_vec(),
                    &common::secrets(),
                    chrono::Utc::now(),
                )
                .unwrap();
                v.push(("truncated", truncated, 400));
                // Larger than the channel's cap.
                let huge = samples::sign(
                    channel,
                    vec![b' '; 2 * 1024 * 1024],
                    &common::secrets(),
                    chrono::Utc::now(),
                )
                .unwrap();
                v.push(("oversize", huge, 413));
            }
        }
        // Malformed signature headers.
        let mut fb = good("facebook", "messenger-text.json");
        fb.headers.retain(|(n, _)| n == "content-type");
        fb.headers
            .push(("x-hub-signature-256".into(), "md5=abc".into()));
        v.push(("malformed header", fb, 400));
        let mut fb_sha1 = good("facebook", "messenger-text.json");
        fb_sha1.headers.retain(|(n, _)| n == "content-type");
        fb_sha1.headers.push((
            "x-hub-signature".into(),
            "sha1=0000000000000000000000000000000000000000".into(),
        ));
        v.push(("sha1 only", fb_sha1, 401));
        // Replayed chat request: validly signed 301 s ago.
        let old = chrono::Utc::now() - chrono::Duration::seconds(301);
        let replay = samples::sign(
            "chat",
            event("chat", "message.json"),
            &common::secrets(),
            old,
        )
        .unwrap();
        v.push(("replayed", replay, 401));
        // Wrong agent token on raw email.
        let mut email = good("email", "plain-and-html.eml");
        email.headers.retain(|(n, _)| n == "content-type");
        email
            .headers
            .push(("authorization".into(), "Bearer wrong".into()));
        v.push(("wrong token", email, 401));
        v
    };
    for (what, request, expected) in &cases {
        let (status, body) = stack.post(request).await;
        assert_eq!(status, *expected, "{what} {}: {body}", request.path);
        let error: Value = serde_json::from_str(&body)
            .unwrap_or_else(|_| panic!("{what}: JSON error body, got {body}"));
        assert!(error["error"]["code"].is_string(), "{what}: {body}");
        assert!(error["error"]["message"].is_string(), "{what}: {body}");
    }
    // A valid request afterwards is still accepted, and it is the only thing ever stored.
    assert_eq!(stack.post_event("chat", "message.json").await.0, 200);
    assert_eq!(stack.wait_for_messages(1).await, 1);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(stack.message_count().await, 1);
}

async fn handshakes_answer_the_platforms(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(backend, dir.path());
    let get = |path: String| {
        let client = stack.client.clone();
        let url = format!("{}{path}", stack.base);
        async move {
            let r = client.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let ok = get(format!(
        "/webhooks/facebook?hub.mode=subscribe&hub.verify_token={FACEBOOK_VERIFY_TOKEN}&hub.challenge=1158201444"
    ))
    .await;
    assert_eq!(ok, (200, "1158201444".to_string()));
    let wrong =
        get("/webhooks/facebook?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1".into())
            .await;
    assert_eq!(wrong.0, 403);
    assert_eq!(get("/webhooks/facebook".into()).await.0, 400);

    let (status, body) = get("/webhooks/twitter?crc_token=challenge123".into()).await;
    assert_eq!(status, 200);
    let expected =
        crossdesk_channels::twitter::crc_response_token(TWITTER_CONSUMER_SECRET, "challenge123");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["response_token"],
        expected
    );
    assert_eq!(get("/webhooks/twitter".into()).await.0, 400);
    assert_eq!(get("/webhooks/chat".into()).await.0, 405);
    assert_eq!(get("/webhooks/myspace".into()).await.0, 404);
}

async fn unconfigured_channels_answer_503_naming_the_setting(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start_with(
        backend,
        dir.path(),
        &["CROSSDESK_CHAT_SECRET", "CROSSDESK_AGENT_TOKEN"],
    );
    let (status, body) = stack.post_event("chat", "message.json").await;
    assert_eq!(status, 503);
    assert!(body.contains("CROSSDESK_CHAT_SECRET"), "{body}");
    let (status, body) = stack.api_get("/api/tickets").await;
    assert_eq!(status, 503);
    assert!(body.to_string().contains("CROSSDESK_AGENT_TOKEN"), "{body}");
    let (status, _) = stack.post_event("email", "plain-and-html.eml").await;
    assert_eq!(status, 503);
    // Configured channels still work.
    assert_eq!(stack.post_event("twitter", "dm.json").await.0, 200);
    let _ = CHAT_SECRET;
}

async fn agents_list_read_reply_and_solve_tickets(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(backend, dir.path());
    assert_eq!(stack.post_event("chat", "message.json").await.0, 200);
    assert_eq!(
        stack.post_event("twitter", "tweet-mention.json").await.0,
        200
    );
    assert_eq!(stack.wait_for_messages(2).await, 2);

    // Without the token: 401 with a JSON error.
    let r = stack
        .client
        .get(format!("{}/api/tickets", stack.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = stack
        .client
        .get(format!("{}/api/tickets", stack.base))
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "unauthorized"
    );

    let (status, open) = stack.api_get("/api/tickets?status=open").await;
    assert_eq!(status, 200);
    assert_eq!(open["tickets"].as_array().unwrap().len(), 2);
    let (_, chats) = stack.api_get("/api/tickets?channel=chat").await;
    let chat_id = chats["tickets"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(chats["tickets"].as_array().unwrap().len(), 1);
    assert_eq!(stack.api_get("/api/tickets?status=closed").await.0, 400);
    assert_eq!(stack.api_get("/api/tickets?limit=0").await.0, 400);
    assert_eq!(stack.api_get("/api/tickets/ZZZZZZZZ").await.0, 404);
    assert_eq!(stack.api_get("/api/tickets/not-an-id").await.0, 404);

    // Reply: 202, stored as outbound with delivery queued.
    let (status, reply) = stack
        .api_send(
            Method::POST,
            &format!("/api/tickets/{chat_id}/replies"),
            &json!({"text": "Yes, until Friday."}),
        )
        .await;
    assert_eq!(status, 202, "{reply}");
    assert_eq!(reply["delivery"]["status"], "queued");
    let view = stack.ticket(&chat_id).await;
    let last = view["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["id"], reply["id"]);
    assert_eq!(last["direction"], "outbound");
    assert_eq!(last["text"], "Yes, until Friday.");
    // The in-process sender may already have worked it: this stack has no chat callback.
    let delivery = &last["delivery"];
    assert!(
        delivery["status"] == "queued"
            || (delivery["status"] == "failed"
                && delivery["error"]["code"] == "channel_not_configured"),
        "{delivery}"
    );

    for (body, expected) in [
        (json!({"text": "   "}), 400),
        (json!({"text": "x".repeat(70_000)}), 413),
        (json!({"text": "hi", "channel": "email"}), 409),
        (json!({"text": "hi", "visibility": "public"}), 400),
        (json!({"nope": 1}), 400),
    ] {
        let (status, error) = stack
            .api_send(
                Method::POST,
                &format!("/api/tickets/{chat_id}/replies"),
                &body,
            )
            .await;
        assert_eq!(status, expected, "{error}");
        assert!(error["error"]["message"].is_string());
    }
    assert_eq!(
        stack
            .api_send(
                Method::POST,
                "/api/tickets/ZZZZZZZZ/replies",
                &json!({"text": "hi"})
            )
            .await
            .0,
        404
    );

    // Solve, then the customer writes again: the ticket reopens.
    let (status, solved) = stack
        .api_send(
            Method::PATCH,
            &format!("/api/tickets/{chat_id}"),
            &json!({"status": "solved"}),
        )
        .await;
    assert_eq!(status, 200, "{solved}");
    assert_eq!(solved["status"], "solved");
    assert_eq!(
        stack
            .api_send(
                Method::PATCH,
                &format!("/api/tickets/{chat_id}"),
                &json!({"status": "closed"})
            )
            .await
            .0,
        400
    );
    let (_, solved_list) = stack.api_get("/api/tickets?status=solved").await;
    assert_eq!(solved_list["tickets"][0]["id"], chat_id.as_str());
    let again = json!({
        "session_id": "sess_sample_01",
        "visitor": {"id": "visitor_01"},
        "message": {"id": "chatmsg_0009", "text": "One more thing", "sent_at": "2026-11-20T11:00:00Z"}
    });
    assert_eq!(
        stack
            .post_signed("chat", again.to_string().as_bytes())
            .await
            .0,
        200
    );
    assert_eq!(stack.wait_for_messages(4).await, 4);
    assert_eq!(stack.ticket(&chat_id).await["status"], "open");
    let _ = AGENT_TOKEN;
}

async fn agents_page_through_tickets_with_the_next_cursor(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let stack = Stack::start(backend, dir.path());
    let n = 7;
    for i in 0..n {
        let body = json!({
            "session_id": format!("sess_{i}"),
            "visitor": {"id": format!("visitor_{i}")},
            // Two at a time share a time sent: pages must not split or repeat ties.
            "message": {"id": "m1", "text": format!("question {i}"),
                        "sent_at": format!("2026-11-20T10:00:0{}Z", i / 2)}
        });
        let (status, answer) = stack.post_signed("chat", body.to_string().as_bytes()).await;
        assert_eq!(status, 200, "{answer}");
    }
    assert_eq!(stack.wait_for_messages(n).await, n);
    let ids = |page: &Value| -> Vec<String> {
        page["tickets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (status, whole) = stack.api_get("/api/tickets?limit=50").await;
    assert_eq!(status, 200, "{whole}");
    assert_eq!(whole["next"], Value::Null, "one page holds them all");
    let whole = ids(&whole);
    assert_eq!(whole.len() as u64, n);

    let mut paged = Vec::new();
    let mut path = "/api/tickets?limit=3".to_string();
    let mut pages = 0;
    loop {
        let (status, page) = stack.api_get(&path).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        paged.extend(ids(&page));
        match page["next"].as_str() {
            Some(next) => path = format!("/api/tickets?limit=3&after={next}"),
            None => break,
        }
    }
    assert_eq!(paged, whole);
    assert_eq!(pages, 3, "3 + 3 + 1");

    // With a work filter too: pages of the tickets that match.
    let assigned = [&whole[1], &whole[4], &whole[5]];
    for id in assigned {
        let (status, answer) = stack
            .api_send(
                reqwest::Method::PATCH,
                &format!("/api/tickets/{id}"),
                &json!({"assignee": "agent-7"}),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
    }
    let (status, first) = stack.api_get("/api/tickets?assignee=agent-7&limit=2").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(ids(&first), [assigned[0].clone(), assigned[1].clone()]);
    let next = first["next"].as_str().expect("a full page names the next");
    let (status, second) = stack
        .api_get(&format!(
            "/api/tickets?assignee=agent-7&limit=2&after={next}"
        ))
        .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(ids(&second), [assigned[2].clone()]);
    assert_eq!(second["next"], Value::Null);

    let (status, refused) = stack.api_get("/api/tickets?after=yesterday").await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused.to_string().contains("not a cursor"), "{refused}");
}

on_both_backends!(
    agents_page_through_tickets_with_the_next_cursor,
    webhooks_become_tickets_that_survive_a_crash_and_restart,
    accepted_webhooks_are_stored_even_if_the_stack_dies_right_after_answering,
    duplicate_deliveries_are_stored_once_and_threads_follow_the_rules,
    a_chat_visitor_giving_a_known_email_is_only_suggested_as_that_contact,
    forged_stale_malformed_and_oversize_webhooks_are_refused_and_never_queued,
    handshakes_answer_the_platforms,
    unconfigured_channels_answer_503_naming_the_setting,
    agents_list_read_reply_and_solve_tickets,
);
