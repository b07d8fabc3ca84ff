//! End to end: crafted mails against the local stack on both backends. A stranger cannot
//! thread into someone else's ticket, automatic mail (an out-of-office, a bounce) is kept with
//! the ticket but never reopens it, Crossdesk's own mail coming back is not ticketed, and a
//! person the customer copied can join the conversation.
//!
//! The samples in `events/email/` name ticket `K3F9Q2XA` and a reply Crossdesk sent in it,
//! signed with the development key; each test puts in the ticket it made, the id of the reply
//! it sent and the test key's signatures, as the real mails would carry them.

mod common;

use std::time::{Duration, Instant};

use common::{Backend, Stack};
use crossdesk_core::TicketId;
use reqwest::Method;
use serde_json::{json, Value};

/// The ticket id the crafted samples name.
const SAMPLE_TICKET: &str = "K3F9Q2XA";
/// The plus-address signature of the samples (development key).
const SAMPLE_SIGNATURE: &str = "qr9xjpcvssaw6qp581rb8xxhm4";
/// The Message-ID of the Crossdesk reply the samples answer (development key).
const SAMPLE_REPLY_ID: &str = "crossdesk.msg_019a4b2c3d4e7f00a1b2c3d4e5f60718.K3F9Q2XA.nc0zb05pn7j9mpzkpm32bnc3dw@sample.example";

/// A crafted sample as it would reach this stack: naming `ticket` and the reply `reply_id`.
fn crafted(name: &str, ticket: &str, reply_id: &str) -> Vec<u8> {
    let ticket_id = TicketId::parse(ticket).unwrap();
    let text = String::from_utf8(common::event("email", name)).unwrap();
    text.replace(SAMPLE_REPLY_ID, reply_id)
        .replace(
            SAMPLE_SIGNATURE,
            &common::thread_key().ticket_signature(&ticket_id),
        )
        .replace(SAMPLE_TICKET, ticket)
        .into_bytes()
}

fn start(backend: Backend, dir: &std::path::Path) -> Stack {
    Stack::start_env(
        backend,
        dir,
        &[],
        &[
            ("CROSSDESK_EMAIL_FROM", "support@sample.example".into()),
            ("CROSSDESK_EMAIL_FROM_NAME", "Sample Support".into()),
        ],
    )
}

async fn post_mail(stack: &Stack, raw: &[u8]) {
    let (status, body) = stack.post_signed("email", raw).await;
    assert_eq!(status, 200, "{body}");
}

/// Waits (15 s at most) until `ready` holds for the ticket view, and returns the view.
async fn ticket_until(stack: &Stack, ticket: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let view = stack.ticket(ticket).await;
        if ready(&view) || Instant::now() > deadline {
            return view;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (15 s at most) until there are `n` tickets, and returns them.
async fn tickets_until(stack: &Stack, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let tickets = stack.tickets().await;
        if tickets.len() >= n || Instant::now() > deadline {
            return tickets;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn messages(view: &Value) -> &Vec<Value> {
    view["messages"].as_array().unwrap()
}

/// The message of the ticket view with this platform id (messages are ordered by the time
/// their platform gives, which crafted mails set in the past).
fn message<'v>(view: &'v Value, platform_id: &str) -> &'v Value {
    messages(view)
        .iter()
        .find(|m| m["platform_message_id"] == platform_id)
        .unwrap_or_else(|| panic!("no message {platform_id} in {view:#}"))
}

/// Sends an agent reply on the ticket and returns the Message-ID its mail went out with.
async fn agent_reply(stack: &Stack, ticket: &str) -> String {
    let (status, answer) = stack
        .api_send(
            Method::POST,
            &format!("/api/tickets/{ticket}/replies"),
            &json!({"text": "We corrected the address."}),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["id"].as_str().unwrap().to_string();
    let view = ticket_until(stack, ticket, |v| {
        messages(v)
            .iter()
            .any(|m| m["id"] == id.as_str() && m["delivery"]["status"] != "queued")
    })
    .await;
    let reply = messages(&view)
        .iter()
        .find(|m| m["id"] == id.as_str())
        .unwrap();
    assert_eq!(reply["delivery"]["status"], "sent", "{reply}");
    reply["delivery"]["platform_id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn set_status(stack: &Stack, ticket: &str, status: &str) {
    let (code, body) = stack
        .api_send(
            Method::PATCH,
            &format!("/api/tickets/{ticket}"),
            &json!({ "status": status }),
        )
        .await;
    assert_eq!(code, 200, "{body}");
}

async fn crafted_mails_cannot_hijack_a_ticket_and_automatic_mail_never_reopens_it(
    backend: Backend,
) {
    let dir = tempfile::tempdir().unwrap();
    let stack = start(backend, dir.path());
    if backend == Backend::Aws {
        common::ses_verify_domain("sample.example").await;
    }
    post_mail(&stack, &common::event("email", "plain-and-html.eml")).await;
    let ticket = tickets_until(&stack, 1).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let our_id = agent_reply(&stack, &ticket).await;
    set_status(&stack, &ticket, "solved").await;

    // The customer's out-of-office answers our reply: kept with the ticket, flagged, and the
    // ticket stays solved.
    post_mail(
        &stack,
        &crafted("auto-reply-out-of-office.eml", &ticket, &our_id),
    )
    .await;
    let view = ticket_until(&stack, &ticket, |v| messages(v).len() >= 3).await;
    assert_eq!(messages(&view).len(), 3, "{view:#}");
    let ooo = message(&view, "CAF=sample-ooo-0001@mail.example.com");
    assert_eq!(ooo["email"]["auto_submitted"], true, "{ooo}");
    assert_eq!(view["status"], "solved", "an auto-reply never reopens");

    // Our reply bounced elsewhere: the mailer daemon's report is kept with the ticket too.
    post_mail(&stack, &crafted("bounce-dsn.eml", &ticket, &our_id)).await;
    let view = ticket_until(&stack, &ticket, |v| messages(v).len() >= 4).await;
    assert_eq!(messages(&view).len(), 4, "{view:#}");
    let bounce = message(&view, "20261121093102.4F2A81C0040@mx.example.com");
    assert_eq!(
        bounce["author"]["platform_id"],
        "mailer-daemon@mx.example.com"
    );
    assert_eq!(bounce["email"]["auto_submitted"], true);
    assert_eq!(view["status"], "solved", "a bounce never reopens");

    // Our own reply coming back (a forwarding loop) is not ticketed; a stranger replying to the
    // thread with the ticket's plus-address and a made-up Crossdesk Message-ID starts a ticket of
    // their own, linked as possibly related.
    post_mail(&stack, &crafted("loop-own-reply.eml", &ticket, &our_id)).await;
    post_mail(
        &stack,
        &crafted("hijack-stranger-reply.eml", &ticket, &our_id),
    )
    .await;
    let tickets = tickets_until(&stack, 2).await;
    assert_eq!(tickets.len(), 2, "{tickets:#?}");
    let hijack = tickets.iter().find(|t| t["id"] != ticket.as_str()).unwrap();
    assert_eq!(hijack["related_tickets"], json!([ticket]));
    assert_eq!(hijack["contact"]["emails"], json!(["eve@evil.example"]));
    assert_eq!(hijack["message_count"], 1);
    // Give the loop mail time to be (not) written.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let view = stack.ticket(&ticket).await;
    assert_eq!(
        messages(&view).len(),
        4,
        "nothing joined the ticket: {view:#}"
    );
    assert_eq!(view["status"], "solved");
    assert_eq!(view["related_tickets"], json!([]));
    assert_eq!(stack.tickets().await.len(), 2, "the loop made no ticket");

    // The customer's own answer still threads, and reopens the ticket.
    let answer = format!(
        "From: Alex Example <alex@example.com>\r\nTo: support@sample.example\r\n\
         Subject: Re: Invoice address wrong [#{ticket}]\r\nMessage-ID: <answer-9@mail.example.com>\r\n\
         In-Reply-To: <{our_id}>\r\n\r\nStill wrong, sorry.\r\n"
    );
    post_mail(&stack, answer.as_bytes()).await;
    // (On DynamoDB the ticket and its messages are two reads: wait for both to show it.)
    let view = ticket_until(&stack, &ticket, |v| {
        messages(v).len() >= 5 && v["status"] == "open"
    })
    .await;
    assert_eq!(messages(&view).len(), 5, "{view:#}");
    assert_eq!(view["status"], "open");

    // An agent's next reply answers the customer, not the auto-reply or the bounce.
    let next = agent_reply(&stack, &ticket).await;
    if backend == Backend::Embedded {
        let mail = std::fs::read(dir.path().join("outbox").join(format!("{next}.eml"))).unwrap();
        let parsed = mail_parser::MessageParser::default().parse(&mail).unwrap();
        assert_eq!(
            parsed.in_reply_to().as_text(),
            Some("answer-9@mail.example.com")
        );
        assert_eq!(
            parsed
                .to()
                .and_then(|a| a.first())
                .and_then(|a| a.address()),
            Some("alex@example.com")
        );
    }
}

async fn a_person_the_customer_copied_joins_the_ticket_and_a_stranger_does_not(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let stack = start(backend, dir.path());
    // Jordan writes, with Accounts Payable in copy.
    post_mail(&stack, &common::event("email", "outlook-quoted-reply.eml")).await;
    let ticket = tickets_until(&stack, 1).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Accounts Payable forwards the thread back with what was asked: it joins the ticket.
    post_mail(
        &stack,
        &common::event("email", "forward-from-participant.eml"),
    )
    .await;
    let view = ticket_until(&stack, &ticket, |v| messages(v).len() >= 2).await;
    assert_eq!(messages(&view).len(), 2, "{view:#}");
    let forward = message(
        &view,
        "DB9PR07MB1122FWD0001@DB9PR07MB1122.eurprd07.prod.outlook.com",
    );
    assert_eq!(forward["author"]["platform_id"], "ap@client.example");

    // The same forward from someone nobody copied: a ticket of its own, possibly related.
    let stranger = String::from_utf8(common::event("email", "forward-from-participant.eml"))
        .unwrap()
        .replace(
            "ap@client.example>\r\nTo:",
            "mallory@elsewhere.example>\r\nTo:",
        )
        .replace("DB9PR07MB1122FWD0001", "DB9PR07MB1122FWD0002");
    post_mail(&stack, stranger.as_bytes()).await;
    let tickets = tickets_until(&stack, 2).await;
    assert_eq!(tickets.len(), 2, "{tickets:#?}");
    let other = tickets.iter().find(|t| t["id"] != ticket.as_str()).unwrap();
    assert_eq!(other["related_tickets"], json!([ticket]));
    assert_eq!(stack.ticket(&ticket).await["message_count"], 2);
}

on_both_backends!(
    crafted_mails_cannot_hijack_a_ticket_and_automatic_mail_never_reopens_it,
    a_person_the_customer_copied_joins_the_ticket_and_a_stranger_does_not,
);
