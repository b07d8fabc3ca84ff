//! Hot-path benchmarks of the webhook functions: verify the signature, parse and normalize one
//! webhook, per channel, for a small, a typical and a 64 KiB payload; and the signature check
//! alone (HMAC-SHA256, constant-time compare) over 1 KiB and 64 KiB.
//!
//! Every request is signed the way the platform signs it (as `crossdesk-send` does), with fixed
//! test secrets and a fixed clock, and is checked once before it is measured: it must verify and
//! parse into the expected number of messages. Run with `cargo bench -p crossdesk-channels
//! --bench hot_path` or `bench/run` (which also writes `bench/results.md`).

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use crossdesk_channels::{
    chat, facebook, signature, twitter, Channel, ChatChannel, EmailChannel, FacebookChannel,
    Headers, TwitterChannel, WebhookRequest,
};
use serde_json::Value;

/// The Meta app secret the Facebook requests are signed with.
const FACEBOOK_APP_SECRET: &str = "bench-facebook-app-secret";
/// The X consumer secret the Twitter requests are signed with.
const TWITTER_CONSUMER_SECRET: &str = "bench-twitter-consumer-secret";
/// The chat backend's shared secret.
const CHAT_SECRET: &str = "bench-chat-secret";
/// The bearer token raw email is posted with.
const EMAIL_TOKEN: &str = "bench-agent-token";
/// The size of the large payloads: the chat channel's cap, and a large batch elsewhere.
const LARGE: usize = 64 * 1024;

/// The fixed clock: requests are signed and received at this instant.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_165_800, 0).expect("a valid fixed time")
}

/// A sample event from `events/<channel>/`, byte for byte.
fn sample(channel: &str, file: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../events")
        .join(channel)
        .join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// One webhook to measure: the channel, the signed request and how many messages it holds.
struct Case {
    /// `small`, `typical` or `64KiB`.
    size: &'static str,
    /// What the payload is (a sample's file name, or how the large one was built).
    what: String,
    /// The request headers, the signature among them.
    headers: Headers,
    /// The raw body.
    body: Vec<u8>,
    /// How many messages it parses into.
    messages: usize,
}

impl Case {
    /// A case whose request is signed for `channel` as its platform would sign `body`.
    fn signed(
        channel: &str,
        size: &'static str,
        what: impl Into<String>,
        body: Vec<u8>,
        messages: usize,
    ) -> Self {
        let headers = match channel {
            "facebook" => Headers::new([(
                facebook::SIGNATURE_HEADER,
                FacebookChannel::sign(FACEBOOK_APP_SECRET, &body),
            )]),
            "twitter" => Headers::new([(
                twitter::SIGNATURE_HEADER,
                twitter::sign(TWITTER_CONSUMER_SECRET, &body),
            )]),
            "chat" => {
                let (ts, sig) = ChatChannel::sign(CHAT_SECRET, now().timestamp(), &body);
                Headers::new([(chat::TIMESTAMP_HEADER, ts), (chat::SIGNATURE_HEADER, sig)])
            }
            "email" => Headers::new([("authorization", format!("Bearer {EMAIL_TOKEN}"))]),
            other => panic!("no signing rule for channel {other}"),
        };
        Case {
            size,
            what: what.into(),
            headers,
            body,
            messages,
        }
    }

    /// A case built from a sample file holding one message.
    fn from_sample(channel: &str, size: &'static str, file: &str) -> Self {
        Case::signed(channel, size, file, sample(channel, file), 1)
    }

    /// The benchmark's id within its channel's group.
    fn id(&self) -> BenchmarkId {
        BenchmarkId::new(self.size, &self.what)
    }
}

/// The hot path under test: what an ingest function does with one request before queueing.
fn verify_and_parse(channel: &dyn Channel, case: &Case) -> usize {
    let request = WebhookRequest {
        headers: &case.headers,
        body: black_box(&case.body),
    };
    let verified = channel
        .verify(&request, now())
        .expect("the bench request is signed correctly");
    let messages = channel
        .parse(&verified, now())
        .expect("the bench payload parses");
    black_box(&messages).len()
}

/// The largest body `build(n)` makes that fits in `limit` bytes, with its `n`.
fn fill(limit: usize, build: impl Fn(usize) -> Vec<u8>) -> (usize, Vec<u8>) {
    (1..)
        .map(|n| (n, build(n)))
        .take_while(|(_, body)| body.len() <= limit)
        .last()
        .expect("one item fits the limit")
}

/// A Messenger webhook batching `n` copies of the real capture's text event (distinct mids).
fn facebook_batch(n: usize) -> Vec<u8> {
    let mut envelope: Value =
        serde_json::from_slice(&sample("facebook", "messenger-text-real-capture.json"))
            .expect("the sample is JSON");
    let entry = &mut envelope["entry"][0];
    let event = entry["messaging"][0].clone();
    let events: Vec<Value> = (0..n)
        .map(|i| {
            let mut e = event.clone();
            e["message"]["mid"] = Value::String(format!("m_bench_{i:06}"));
            e["message"]["text"] =
                Value::String(format!("Hi, this is message {i} about my order."));
            e
        })
        .collect();
    entry["messaging"] = Value::Array(events);
    serde_json::to_vec(&envelope).expect("serializable")
}

/// An Account Activity webhook batching `n` copies of the real mention (distinct tweet ids).
fn twitter_batch(n: usize) -> Vec<u8> {
    let mut envelope: Value =
        serde_json::from_slice(&sample("twitter", "tweet-mention-reply-real.json"))
            .expect("the sample is JSON");
    let tweet = envelope["tweet_create_events"][0].clone();
    let tweets: Vec<Value> = (0..n)
        .map(|i| {
            let mut t = tweet.clone();
            let id = 1_332_557_345_071_644_672_u64 + i as u64;
            t["id"] = Value::from(id);
            t["id_str"] = Value::String(id.to_string());
            t
        })
        .collect();
    envelope["tweet_create_events"] = Value::Array(tweets);
    serde_json::to_vec(&envelope).expect("serializable")
}

/// A chat message of `n` × "Спасибо👍" (8 characters each), `\u`-escaped as ASCII-only JSON
/// encoders (Python's default) send it: the way to a 64 KiB body within the 10,000-character cap.
fn chat_escaped(n: usize) -> Vec<u8> {
    let unit: String = "Спасибо👍"
        .encode_utf16()
        .map(|u| format!("\\u{u:04x}"))
        .collect();
    format!(
        concat!(
            r#"{{"session_id":"sess_bench_01","visitor":{{"id":"visitor_01","name":"Alex Example","#,
            r#""email":"alex@example.com"}},"message":{{"id":"chatmsg_big","text":"{}","#,
            r#""sent_at":"2026-11-20T10:00:00Z"}}}}"#
        ),
        unit.repeat(n)
    )
    .into_bytes()
}

/// A reply in a long thread: text and HTML alternatives, each quoting `n` earlier lines.
fn email_thread(n: usize) -> Vec<u8> {
    let line =
        |i: usize| format!("Line {i} of the earlier conversation about the invoice address.");
    let quoted_text: String = (0..n).map(|i| format!("> {}\r\n", line(i))).collect();
    let quoted_html: String = (0..n).map(|i| format!("<p>{}</p>\r\n", line(i))).collect();
    format!(
        "From: Alex Example <alex@example.com>\r\n\
         To: Sample Support <support@sample.example>\r\n\
         Subject: Re: Invoice address wrong\r\n\
         Date: Fri, 20 Nov 2026 12:00:00 +0000\r\n\
         Message-ID: <CAF=bench-0002@mail.example.com>\r\n\
         In-Reply-To: <CAF=bench-0001@mail.example.com>\r\n\
         References: <CAF=bench-0001@mail.example.com>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/alternative; boundary=\"alt\"\r\n\
         \r\n\
         --alt\r\n\
         Content-Type: text/plain; charset=UTF-8\r\n\
         \r\n\
         Thanks, that worked.\r\n\
         \r\n\
         On Fri, 20 Nov 2026 at 11:00, Sample Support wrote:\r\n\
         {quoted_text}\
         --alt\r\n\
         Content-Type: text/html; charset=UTF-8\r\n\
         \r\n\
         <p>Thanks, that worked.</p>\r\n\
         <div>On Fri, 20 Nov 2026 at 11:00, Sample Support wrote:</div>\r\n\
         <blockquote>\r\n{quoted_html}</blockquote>\r\n\
         --alt--\r\n"
    )
    .into_bytes()
}

/// The channels under test, each with its cases.
fn channels() -> Vec<(Box<dyn Channel>, Vec<Case>)> {
    let secret = |s: &str| s.to_string().into();
    let (fb_n, fb_large) = fill(LARGE, facebook_batch);
    let (tw_n, tw_large) = fill(LARGE, twitter_batch);
    let (chat_n, chat_large) = fill(LARGE, chat_escaped);
    let (_, email_large) = fill(LARGE, email_thread);
    vec![
        (
            Box::new(FacebookChannel::new(
                secret(FACEBOOK_APP_SECRET),
                secret("bench-verify-token"),
            )),
            vec![
                Case::from_sample("facebook", "small", "messenger-text.json"),
                Case::from_sample("facebook", "typical", "messenger-text-real-capture.json"),
                Case::from_sample("facebook", "typical", "feed-comment-add.json"),
                Case::signed(
                    "facebook",
                    "64KiB",
                    format!("{fb_n}-message batch"),
                    fb_large,
                    fb_n,
                ),
            ],
        ),
        (
            Box::new(TwitterChannel::new(secret(TWITTER_CONSUMER_SECRET))),
            vec![
                Case::from_sample("twitter", "small", "dm.json"),
                Case::from_sample("twitter", "typical", "tweet-mention-reply-real.json"),
                Case::from_sample("twitter", "typical", "dm-real-capture.json"),
                Case::signed(
                    "twitter",
                    "64KiB",
                    format!("{tw_n}-message batch"),
                    tw_large,
                    tw_n,
                ),
            ],
        ),
        (
            Box::new(ChatChannel::new(secret(CHAT_SECRET))),
            vec![
                Case::from_sample("chat", "small", "anonymous.json"),
                Case::from_sample("chat", "typical", "message.json"),
                Case::signed(
                    "chat",
                    "64KiB",
                    format!("{}-character escaped text", chat_n * 8),
                    chat_large,
                    1,
                ),
            ],
        ),
        (
            Box::new(EmailChannel::new(secret(EMAIL_TOKEN))),
            vec![
                Case::from_sample("email", "small", "plain-and-html.eml"),
                Case::from_sample("email", "typical", "outlook-quoted-reply.eml"),
                Case::signed("email", "64KiB", "long quoted thread", email_large, 1),
            ],
        ),
    ]
}

/// Verify + parse + normalize one webhook, per channel and payload size.
fn hot_path(c: &mut Criterion) {
    for (channel, cases) in channels() {
        let mut group = c.benchmark_group(format!("hot_path/{}", channel.name()));
        for case in &cases {
            assert_eq!(
                verify_and_parse(channel.as_ref(), case),
                case.messages,
                "{} {} {}: unexpected number of messages",
                channel.name(),
                case.size,
                case.what
            );
            group.throughput(Throughput::Bytes(case.body.len() as u64));
            group.bench_function(case.id(), |b| {
                b.iter(|| verify_and_parse(channel.as_ref(), case))
            });
        }
        group.finish();
    }
}

/// The signature check alone: HMAC-SHA256 of the body, compared in constant time; and a copy of
/// the same bytes as the memory-speed reference.
fn signature_check(c: &mut Criterion) {
    let key = FACEBOOK_APP_SECRET.as_bytes();
    let mut group = c.benchmark_group("signature");
    for (label, len) in [("1KiB", 1024), ("64KiB", LARGE)] {
        let body: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let digest = signature::hmac_sha256(key, &[&body]);
        assert!(signature::matches(key, &[&body], &digest));
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(BenchmarkId::new("hmac_sha256_verify", label), |b| {
            b.iter(|| signature::matches(key, &[black_box(&body)], black_box(&digest)))
        });
        group.bench_function(BenchmarkId::new("memcpy_reference", label), |b| {
            b.iter(|| black_box(black_box(&body).clone()))
        });
    }
    group.finish();
}

/// Short runs: the whole `bench/run` stays within a few minutes on two cores.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .without_plots()
}

criterion_group! {
    name = benches;
    config = config();
    targets = hot_path, signature_check
}
criterion_main!(benches);
