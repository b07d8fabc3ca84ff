//! Twitter/X replies through the v2 API, signed with OAuth 1.0a user context ([`crate::oauth1`]).
//!
//! - **Public reply** to a tweet (`Conversation::TweetThread`, public reply) —
//!   `POST /2/tweets` `{"text", "reply": {"in_reply_to_tweet_id": <the tweet answered>}}` →
//!   `201 {"data": {"id", "text"}}`; the sent message's platform id is the new tweet's `id`.
//!   Text over [`MAX_TWEET_WEIGHT`] weighted characters ([`tweet_weight`]) is refused before
//!   calling X.
//! - **Private answer** to a tweet, and every reply in a `Conversation::DirectMessages` —
//!   `POST /2/dm_conversations/with/<customer user id>/messages` `{"text"}` →
//!   `201 {"data": {"dm_conversation_id", "dm_event_id"}}`; the platform id is `dm_event_id`.
//!   Text over [`MAX_DM_CHARS`] characters is refused before calling X.
//!
//! X answers errors as RFC 7807 problems (`{"title", "detail", "type", "status"}`, sometimes with
//! `errors[]`). They are classified here: 429 (with the wait from `x-rate-limit-reset`), 408, 5xx
//! and network failures are transient; 401 means the channel must be re-authorized; 400, 403
//! (duplicate text, a reply the self-serve tier does not allow, a DM the user does not accept),
//! 404 and the rest are permanent. Codes read `x_<status>`, followed by the last segment of the
//! problem `type` when it names one (`x_400_invalid-request`). Neither the secrets nor the
//! signed header ever reach an error or a log line.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crossdesk_core::{ChannelKind, Conversation, Visibility};
use reqwest::header::{HeaderMap, AUTHORIZATION};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::oauth1;
use crate::send::{network_error, retry_after_secs, OutboundReply, ReplySender, SendError, Sent};

/// Where X's API lives.
pub const DEFAULT_API_URL: &str = "https://api.x.com";
/// The longest public reply, in weighted characters (a standard account).
pub const MAX_TWEET_WEIGHT: usize = 280;
/// What any URL counts for in a tweet's length (X wraps every link in a t.co link).
pub const URL_WEIGHT: usize = 23;
/// The longest direct message, in characters.
pub const MAX_DM_CHARS: usize = 10_000;
/// The longest platform id accepted in a request path or body, in digits.
const MAX_ID_DIGITS: usize = 32;
/// The longest part of X's error text kept in a reason, in characters.
const MAX_DETAIL_CHARS: usize = 300;

// ---- configuration ----

/// The X app and account a [`TwitterSender`] posts as. `Debug` shows no secret.
#[derive(Debug, Clone)]
pub struct TwitterSenderConfig {
    /// The API's base URL ([`DEFAULT_API_URL`]; a fake server's in tests).
    pub api_url: Url,
    /// The app's consumer (API) key.
    pub consumer_key: SecretString,
    /// The app's consumer (API) secret.
    pub consumer_secret: SecretString,
    /// The support account's access token.
    pub access_token: SecretString,
    /// The support account's access token secret.
    pub access_secret: SecretString,
}

impl TwitterSenderConfig {
    /// A configuration against [`DEFAULT_API_URL`].
    pub fn new(
        consumer_key: SecretString,
        consumer_secret: SecretString,
        access_token: SecretString,
        access_secret: SecretString,
    ) -> Self {
        TwitterSenderConfig {
            api_url: Url::parse(DEFAULT_API_URL).expect("the default API URL is valid"),
            consumer_key,
            consumer_secret,
            access_token,
            access_secret,
        }
    }
}

/// Sends replies on the Twitter/X channel.
pub struct TwitterSender {
    config: TwitterSenderConfig,
    client: reqwest::Client,
}

impl TwitterSender {
    /// A sender posting through `client` (built once, with the caller's timeouts).
    pub fn new(config: TwitterSenderConfig, client: reqwest::Client) -> Self {
        TwitterSender { config, client }
    }
}

// ---- wire types ----

/// `POST /2/tweets` body for a reply.
#[derive(Debug, Serialize)]
struct CreateTweet<'a> {
    text: &'a str,
    reply: TweetReply<'a>,
}

/// The tweet a new tweet answers.
#[derive(Debug, Serialize)]
struct TweetReply<'a> {
    in_reply_to_tweet_id: &'a str,
}

/// `POST /2/dm_conversations/with/:participant_id/messages` body.
#[derive(Debug, Serialize)]
struct CreateDm<'a> {
    text: &'a str,
}

/// `201` answer to `POST /2/tweets`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TweetCreated {
    data: Option<CreatedTweet>,
}

/// The tweet X created.
#[derive(Debug, Deserialize)]
struct CreatedTweet {
    id: String,
}

/// `201` answer to a DM creation.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DmCreated {
    data: Option<CreatedDm>,
}

/// The DM event X created.
#[derive(Debug, Deserialize)]
struct CreatedDm {
    dm_event_id: String,
}

/// An RFC 7807 problem, as X v2 answers errors; `errors[]` also covers the older
/// `{"errors":[{"code","message"}]}` shape.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Problem {
    title: Option<String>,
    detail: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    errors: Vec<ProblemError>,
}

/// One entry of a problem's `errors[]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ProblemError {
    message: Option<String>,
    detail: Option<String>,
}

// ---- sending ----

/// Which endpoint a request went to, for the reasons given on failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Tweet,
    Dm,
}

#[async_trait]
impl ReplySender for TwitterSender {
    async fn send(&self, out: &OutboundReply<'_>) -> Result<Sent, SendError> {
        let reply = out.reply;
        if reply.channel != ChannelKind::Twitter {
            return Err(SendError::refused(
                "wrong_channel",
                format!("a {} reply cannot be sent through X", reply.channel),
            ));
        }
        let text = reply.text.as_str();
        if text.trim().is_empty() {
            return Err(SendError::refused(
                "empty_text",
                "the reply has no text; X does not accept an empty post or message",
            ));
        }
        match (&reply.conversation, reply.visibility) {
            (Conversation::TweetThread { .. }, Visibility::Public) => {
                let tweet_id = out
                    .answering
                    .platform_message_id
                    .as_deref()
                    .and_then(numeric_id)
                    .ok_or_else(|| {
                        SendError::refused(
                            "nothing_to_answer",
                            "the tweet being answered has no valid X id; answer by DM instead",
                        )
                    })?;
                self.reply_tweet(text, tweet_id, out).await
            }
            (Conversation::TweetThread { user_id, .. }, Visibility::Private)
            | (Conversation::DirectMessages { user_id, .. }, _) => {
                let user_id = numeric_id(user_id).ok_or_else(|| {
                    SendError::refused(
                        "invalid_recipient",
                        "the customer's X user id is not valid; the DM cannot be addressed",
                    )
                })?;
                self.send_dm(text, user_id, out).await
            }
            (other, _) => Err(SendError::refused(
                "wrong_conversation",
                format!(
                    "X cannot answer a {} conversation",
                    conversation_kind_name(other)
                ),
            )),
        }
    }
}

impl TwitterSender {
    async fn reply_tweet(
        &self,
        text: &str,
        tweet_id: &str,
        out: &OutboundReply<'_>,
    ) -> Result<Sent, SendError> {
        let weight = tweet_weight(text);
        if weight > MAX_TWEET_WEIGHT {
            return Err(SendError::refused(
                "text_too_long",
                format!(
                    "the reply counts {weight} characters (each link counts {URL_WEIGHT}); \
                     public replies on X are limited to {MAX_TWEET_WEIGHT} characters; \
                     shorten it or answer by DM"
                ),
            ));
        }
        let url = self.endpoint(&["2", "tweets"]);
        let body = CreateTweet {
            text,
            reply: TweetReply {
                in_reply_to_tweet_id: tweet_id,
            },
        };
        let answer = self.post(url, &body, Target::Tweet, out).await?;
        let created: TweetCreated = read_created(&answer, Target::Tweet)?;
        let id = created
            .data
            .map(|d| d.id)
            .and_then(|id| numeric_id(&id).map(str::to_string))
            .ok_or_else(|| unreadable_success(Target::Tweet, "no data.id"))?;
        tracing::info!(
            ticket_id = %out.ticket_id,
            channel = "twitter",
            platform_message_id = %id,
            "public reply posted"
        );
        Ok(Sent { platform_id: id })
    }

    async fn send_dm(
        &self,
        text: &str,
        user_id: &str,
        out: &OutboundReply<'_>,
    ) -> Result<Sent, SendError> {
        let chars = text.chars().count();
        if chars > MAX_DM_CHARS {
            return Err(SendError::refused(
                "text_too_long",
                format!(
                    "the reply is {chars} characters; direct messages on X are limited to \
                     {MAX_DM_CHARS}; shorten it or split it"
                ),
            ));
        }
        let url = self.endpoint(&["2", "dm_conversations", "with", user_id, "messages"]);
        let answer = self.post(url, &CreateDm { text }, Target::Dm, out).await?;
        let created: DmCreated = read_created(&answer, Target::Dm)?;
        let id = created
            .data
            .map(|d| d.dm_event_id)
            .and_then(|id| numeric_id(&id).map(str::to_string))
            .ok_or_else(|| unreadable_success(Target::Dm, "no data.dm_event_id"))?;
        tracing::info!(
            ticket_id = %out.ticket_id,
            channel = "twitter",
            platform_message_id = %id,
            "direct message sent"
        );
        Ok(Sent { platform_id: id })
    }

    /// The API URL with `segments` appended to its path (each one percent-encoded).
    fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.config.api_url.clone();
        url.set_query(None);
        url.set_fragment(None);
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// POSTs a JSON body signed with OAuth 1.0a; the answer's body on 2xx, else the error.
    async fn post<B: Serialize + Sync>(
        &self,
        url: Url,
        body: &B,
        target: Target,
        out: &OutboundReply<'_>,
    ) -> Result<Vec<u8>, SendError> {
        let credentials = oauth1::Credentials {
            consumer_key: self.config.consumer_key.expose_secret(),
            consumer_secret: self.config.consumer_secret.expose_secret(),
            token: self.config.access_token.expose_secret(),
            token_secret: self.config.access_secret.expose_secret(),
        };
        // A JSON body is not signed: only the oauth_* parameters (and a query, here none).
        let authorization = oauth1::sign_now("POST", &url, &[], &credentials);
        let response = self
            .client
            .post(url)
            .header(AUTHORIZATION, authorization)
            .json(body)
            .send()
            .await
            .map_err(|e| network_error(&e))?;
        let status = response.status();
        let headers = response.headers().clone();
        match response.bytes().await {
            Ok(bytes) if status.is_success() => Ok(bytes.to_vec()),
            Ok(bytes) => {
                let error = classify(status, &headers, &bytes, target, out.now);
                tracing::warn!(
                    ticket_id = %out.ticket_id,
                    channel = "twitter",
                    status = status.as_u16(),
                    code = error.code(),
                    "X refused the reply"
                );
                Err(error)
            }
            // X created the post but its answer was lost: sending again would post it twice.
            Err(_) if status.is_success() => {
                Err(unreadable_success(target, "the body could not be read"))
            }
            Err(e) => Err(network_error(&e)),
        }
    }
}

/// Reads a 2xx answer.
fn read_created<T: for<'de> Deserialize<'de>>(body: &[u8], target: Target) -> Result<T, SendError> {
    serde_json::from_slice(body).map_err(|_| unreadable_success(target, "not the documented JSON"))
}

/// X accepted the request but its answer cannot be read: permanent, since sending again could
/// post twice.
fn unreadable_success(target: Target, what: &str) -> SendError {
    SendError::Permanent {
        code: "x_unreadable_answer".into(),
        reason: format!(
            "X accepted the {} but its answer could not be read ({what}); check the account \
             before sending it again",
            target_name(target)
        ),
    }
}

fn target_name(target: Target) -> &'static str {
    match target {
        Target::Tweet => "public reply",
        Target::Dm => "direct message",
    }
}

fn conversation_kind_name(conversation: &Conversation) -> &'static str {
    match conversation {
        Conversation::DirectThread { .. } => "Messenger/Instagram direct",
        Conversation::CommentThread { .. } => "comment",
        Conversation::TweetThread { .. } => "tweet",
        Conversation::DirectMessages { .. } => "X direct message",
        Conversation::EmailThread { .. } => "email",
        Conversation::ChatSession { .. } => "chat",
    }
}

/// An X id: 1 to 32 ASCII digits.
fn numeric_id(id: &str) -> Option<&str> {
    let id = id.trim();
    (!id.is_empty() && id.len() <= MAX_ID_DIGITS && id.bytes().all(|b| b.is_ascii_digit()))
        .then_some(id)
}

// ---- errors ----

/// Maps a non-2xx answer to a [`SendError`].
fn classify(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    target: Target,
    now: DateTime<Utc>,
) -> SendError {
    let problem: Problem = serde_json::from_slice(body).unwrap_or_default();
    let code = error_code(status, problem.kind.as_deref());
    let detail = problem_text(&problem, status);
    let what = target_name(target);
    match status.as_u16() {
        429 => SendError::Transient {
            code,
            reason: format!(
                "X's rate limit for this account is reached ({detail}); the {what} will be \
                 sent again after the reset"
            ),
            retry_after: rate_limit_wait(headers, now),
        },
        401 => SendError::Unauthorized {
            code,
            reason: format!(
                "X rejected the channel's credentials ({detail}); re-authorize the X account"
            ),
        },
        403 if target == Target::Tweet && is_reply_restricted(&detail) => SendError::Permanent {
            code,
            reason: format!(
                "X does not allow this public reply: on the self-serve API tiers a reply is only \
                 allowed to a post whose author mentioned or quoted the account (\"{detail}\"); \
                 answer by DM instead"
            ),
        },
        403 if detail.to_ascii_lowercase().contains("duplicate") => SendError::Permanent {
            code,
            reason: format!(
                "X refused the {what} as a duplicate of one the account already sent \
                 (\"{detail}\"); change the text"
            ),
        },
        403 => SendError::Permanent {
            code,
            reason: format!("X refused the {what} (\"{detail}\")"),
        },
        404 => SendError::Permanent {
            code,
            reason: format!(
                "X could not find the {} (\"{detail}\"); it may have been deleted",
                match target {
                    Target::Tweet => "post being answered",
                    Target::Dm => "customer's account",
                }
            ),
        },
        408 | 500..=599 => SendError::Transient {
            code,
            reason: format!("X could not take the {what} right now (\"{detail}\")"),
            retry_after: retry_after_secs(headers),
        },
        _ => SendError::Permanent {
            code,
            reason: format!("X rejected the {what} (\"{detail}\")"),
        },
    }
}

/// Whether X's detail is the self-serve tier's reply restriction ("Reply to this conversation is
/// not allowed because you have not been mentioned or otherwise engaged by the author …").
fn is_reply_restricted(detail: &str) -> bool {
    let detail = detail.to_ascii_lowercase();
    detail.contains("reply to this conversation is not allowed")
        || detail.contains("not been mentioned or otherwise engaged")
}

/// `x_<status>`, plus `_<last segment of the problem type>` when the type names one.
fn error_code(status: StatusCode, problem_type: Option<&str>) -> String {
    let tail = problem_type
        .filter(|t| !t.eq_ignore_ascii_case("about:blank"))
        .and_then(|t| t.trim_end_matches('/').rsplit('/').next())
        .map(|t| {
            t.chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
                .take(64)
                .collect::<String>()
        })
        .filter(|t| !t.is_empty());
    match tail {
        Some(tail) => format!("x_{}_{tail}", status.as_u16()),
        None => format!("x_{}", status.as_u16()),
    }
}

/// X's words for the error: the problem's `detail` (else `title`), with the messages of
/// `errors[]` that add to it; the status line when the body says nothing.
fn problem_text(problem: &Problem, status: StatusCode) -> String {
    let said = std::iter::once(problem.detail.as_deref().or(problem.title.as_deref())).chain(
        problem
            .errors
            .iter()
            .map(|e| e.message.as_deref().or(e.detail.as_deref())),
    );
    let mut parts: Vec<&str> = Vec::new();
    for s in said.flatten().map(str::trim).filter(|s| !s.is_empty()) {
        if !parts.contains(&s) {
            parts.push(s);
        }
    }
    let text = if parts.is_empty() {
        format!(
            "HTTP {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or_default()
        )
        .trim_end()
        .to_string()
    } else {
        parts.join("; ")
    };
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() > MAX_DETAIL_CHARS {
        let mut cut: String = flat.chars().take(MAX_DETAIL_CHARS - 1).collect();
        cut.push('…');
        cut
    } else {
        flat
    }
}

/// How long to wait after a 429: until the latest reset among the exhausted limits (the
/// 15-minute `x-rate-limit-*` window, and the 24-hour `x-user-limit-24hour-*` and
/// `x-app-limit-24hour-*` caps of the self-serve tiers), else until `x-rate-limit-reset`, else
/// `Retry-After`. Resets are epoch seconds; a reset already past waits 0.
fn rate_limit_wait(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let number = |name: &str| -> Option<i64> {
        headers.get(name)?.to_str().ok()?.trim().parse::<i64>().ok()
    };
    const LIMITS: [&str; 3] = ["x-rate-limit", "x-user-limit-24hour", "x-app-limit-24hour"];
    let exhausted = LIMITS
        .iter()
        .filter(|limit| number(&format!("{limit}-remaining")) == Some(0))
        .filter_map(|limit| number(&format!("{limit}-reset")))
        .max();
    exhausted
        .or_else(|| number("x-rate-limit-reset"))
        .map(|reset| Duration::from_secs(u64::try_from(reset - now.timestamp()).unwrap_or(0)))
        .or_else(|| retry_after_secs(headers))
}

// ---- length ----

/// A tweet's length as X counts it, simplified from twitter-text 3:
/// - every `http://`, `https://` or `www.` link counts [`URL_WEIGHT`], whatever its length;
/// - a character counts 1 in the ranges X weighs light (U+0000–U+10FF: Latin, Greek, Cyrillic,
///   Hebrew, Arabic, Indic, …; U+2000–U+200D; U+2010–U+201F; U+2032–U+2037) and 2 elsewhere
///   (CJK, emoji, `…`); variation selectors, skin-tone modifiers and tag characters count 0.
///
/// Not modelled: links without a scheme or `www.` (`acme.example`, which X counts 23), Unicode
/// normalization, and emoji sequences (a ZWJ family or a flag counts 2 per part here, 2 in all
/// on X: this errs on the side of refusing).
pub fn tweet_weight(text: &str) -> usize {
    let mut weight = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let word_start = rest
            .find(|c: char| !c.is_whitespace())
            .unwrap_or(rest.len());
        weight += char_weights(&rest[..word_start]);
        rest = &rest[word_start..];
        let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        weight += word_weight(&rest[..word_end]);
        rest = &rest[word_end..];
    }
    weight
}

/// The weight of a whitespace-free word, counting a link in it as [`URL_WEIGHT`].
fn word_weight(word: &str) -> usize {
    let lower = word.to_ascii_lowercase();
    let found = ["https://", "http://", "www."]
        .iter()
        .filter_map(|prefix| lower.find(prefix).map(|at| (at, prefix.len())))
        .min();
    let Some((start, prefix_len)) = found else {
        return char_weights(word);
    };
    // Trailing punctuation closes a sentence rather than the link.
    let link = word[start..]
        .trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '}', '"', '\'', '…']);
    let host = &link[prefix_len.min(link.len())..];
    let is_link = if lower[start..].starts_with("www.") {
        host.contains('.')
    } else {
        !host.is_empty()
    };
    if !is_link {
        return char_weights(word);
    }
    let end = start + link.len();
    char_weights(&word[..start]) + URL_WEIGHT + char_weights(&word[end..])
}

fn char_weights(s: &str) -> usize {
    s.chars().map(char_weight).sum()
}

fn char_weight(c: char) -> usize {
    match u32::from(c) {
        0xFE00..=0xFE0F | 0x1F3FB..=0x1F3FF | 0xE0020..=0xE007F => 0,
        0x0000..=0x10FF | 0x2000..=0x200D | 0x2010..=0x201F | 0x2032..=0x2037 => 1,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderName, HeaderValue, Method, Uri};
    use axum::response::{IntoResponse, Response};
    use crossdesk_core::{Author, Delivery, Direction, Message, MessageEvent, MessageId, TicketId};

    use super::*;
    use crate::{Channel, TwitterChannel, VerifiedWebhook};

    const CONSUMER_KEY: &str = "ck-test-consumer-key";
    const CONSUMER_SECRET: &str = "cs-TEST-CONSUMER-SECRET-do-not-leak";
    const ACCESS_TOKEN: &str = "3000000001-at-test-access-token";
    const ACCESS_SECRET: &str = "as-TEST-ACCESS-SECRET-do-not-leak";
    /// The customer of the fixtures (`alex_example`).
    const CUSTOMER: &str = "4000000002";
    /// The tweet answered in `tweet-mention.json`.
    const TWEET: &str = "1859000000000000100";

    // ---- fake X API ----

    /// One request the fake X API received.
    #[derive(Debug, Clone)]
    struct Recorded {
        method: String,
        path: String,
        query: Option<String>,
        headers: axum::http::HeaderMap,
        body: Vec<u8>,
    }

    impl Recorded {
        fn header(&self, name: &str) -> &str {
            self.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("no {name} header in {self:?}"))
        }
    }

    /// What the fake answers to every request.
    #[derive(Debug, Clone)]
    struct Canned {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    }

    fn canned(status: u16, body: &str) -> Canned {
        Canned {
            status,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    impl Canned {
        fn with_header(mut self, name: &str, value: impl ToString) -> Self {
            self.headers.push((name.to_string(), value.to_string()));
            self
        }
    }

    #[derive(Clone)]
    struct FakeX {
        requests: Arc<Mutex<Vec<Recorded>>>,
        canned: Arc<Canned>,
    }

    impl FakeX {
        fn requests(&self) -> Vec<Recorded> {
            self.requests.lock().unwrap().clone()
        }

        fn only_request(&self) -> Recorded {
            let mut requests = self.requests();
            assert_eq!(requests.len(), 1, "{requests:?}");
            requests.remove(0)
        }
    }

    async fn answer(
        State(fake): State<FakeX>,
        method: Method,
        uri: Uri,
        headers: axum::http::HeaderMap,
        body: Bytes,
    ) -> Response {
        fake.requests.lock().unwrap().push(Recorded {
            method: method.to_string(),
            path: uri.path().to_string(),
            query: uri.query().map(str::to_string),
            headers,
            body: body.to_vec(),
        });
        let status = axum::http::StatusCode::from_u16(fake.canned.status).unwrap();
        let mut response = (status, fake.canned.body.clone()).into_response();
        let out = response.headers_mut();
        out.insert(
            "content-type",
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        for (name, value) in &fake.canned.headers {
            out.insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        response
    }

    /// Starts a fake X API on `127.0.0.1:0` answering `canned` to everything.
    async fn fake_x(canned: Canned) -> (Url, FakeX) {
        let fake = FakeX {
            requests: Arc::default(),
            canned: Arc::new(canned),
        };
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (Url::parse(&format!("http://{addr}")).unwrap(), fake)
    }

    fn sender(api_url: Url) -> TwitterSender {
        let mut config = TwitterSenderConfig::new(
            SecretString::from(CONSUMER_KEY),
            SecretString::from(CONSUMER_SECRET),
            SecretString::from(ACCESS_TOKEN),
            SecretString::from(ACCESS_SECRET),
        );
        config.api_url = api_url;
        TwitterSender::new(config, reqwest::Client::new())
    }

    // ---- messages ----

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-20T10:00:00Z")
            .unwrap()
            .to_utc()
    }

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/../../events/twitter/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// The customer message of an inbound fixture, parsed by the Twitter channel.
    fn inbound(name: &str) -> Message {
        let body = fixture(name);
        let mut messages = TwitterChannel::new(SecretString::from("unused"))
            .parse(&VerifiedWebhook::new(&body), now())
            .unwrap();
        assert_eq!(messages.len(), 1, "{name}");
        messages.remove(0)
    }

    /// An agent's reply to `target`, stored as the agent API stores it.
    fn reply_to(target: &Message, text: &str, visibility: Visibility) -> Message {
        Message {
            id: MessageId::generate(),
            channel: target.channel,
            platform_message_id: None,
            conversation: target.conversation.clone(),
            direction: Direction::Outbound,
            event: MessageEvent::Created,
            author: Author {
                platform_id: "agent-1".into(),
                name: Some("Sam Agent".into()),
                email: None,
                handle: None,
            },
            text: text.to_string(),
            attachments: Vec::new(),
            visibility,
            sent_at: now(),
            received_at: now(),
            replies_to: target.platform_message_id.iter().cloned().collect(),
            ticket_ref: None,
            subject: None,
            email: None,
            raw: None,
            signature_unverified: false,
            personal_data: Vec::new(),
            internal_note: false,
            monitoring: false,
            delivery: Some(Delivery::queued()),
        }
    }

    async fn send(
        sender: &TwitterSender,
        reply: &Message,
        answering: &Message,
    ) -> Result<Sent, SendError> {
        let ticket = TicketId::parse("K3F9Q2XA").unwrap();
        let thread = vec![answering.clone(), reply.clone()];
        sender
            .send(&OutboundReply {
                ticket_id: &ticket,
                reply,
                answering,
                thread: &thread,
                now: now(),
            })
            .await
    }

    /// Sends a public reply to the fixture tweet against a fake answering `canned`.
    async fn public_reply_answered(canned: Canned) -> (Result<Sent, SendError>, FakeX) {
        let (url, fake) = fake_x(canned).await;
        let tweet = inbound("tweet-mention.json");
        let reply = reply_to(
            &tweet,
            "We have fixed the address, sorry!",
            Visibility::Public,
        );
        (send(&sender(url), &reply, &tweet).await, fake)
    }

    /// Sends a reply in the fixture DM conversation against a fake answering `canned`.
    async fn dm_answered(canned: Canned) -> (Result<Sent, SendError>, FakeX) {
        let (url, fake) = fake_x(canned).await;
        let dm = inbound("dm.json");
        let reply = reply_to(
            &dm,
            "Thanks, order A-1234 is on its way.",
            Visibility::Private,
        );
        (send(&sender(url), &reply, &dm).await, fake)
    }

    // ---- checking the OAuth signature as X does ----

    /// The `oauth_*` fields of an `Authorization: OAuth …` header, percent-decoded.
    fn oauth_fields(header: &str) -> Vec<(String, String)> {
        let fields = header.strip_prefix("OAuth ").expect("OAuth scheme");
        fields
            .split(", ")
            .map(|field| {
                let (key, quoted) = field.split_once('=').expect("key=\"value\"");
                let value = quoted
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .expect("quoted value");
                let decoded = url::form_urlencoded::parse(format!("v={value}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap();
                (key.to_string(), decoded)
            })
            .collect()
    }

    /// Recomputes the signature of a recorded request from its method, `Host`, path, query and
    /// the `oauth_*` fields of its header (nonce and timestamp included), with the known secrets,
    /// and checks it is the one sent; also checks the fields X requires.
    fn assert_signed_like_x_checks(request: &Recorded) {
        let fields = oauth_fields(request.header("authorization"));
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("no {name} in {fields:?}"))
        };
        assert_eq!(field("oauth_consumer_key"), CONSUMER_KEY);
        assert_eq!(field("oauth_token"), ACCESS_TOKEN);
        assert_eq!(field("oauth_signature_method"), "HMAC-SHA1");
        assert_eq!(field("oauth_version"), "1.0");
        let nonce = field("oauth_nonce");
        assert_eq!(nonce.len(), 32);
        assert!(nonce.chars().all(|c| c.is_ascii_alphanumeric()), "{nonce}");
        let timestamp: i64 = field("oauth_timestamp").parse().unwrap();
        assert!((Utc::now().timestamp() - timestamp).abs() < 60);
        assert_eq!(fields.len(), 7, "{fields:?}");

        let url = format!(
            "http://{}{}{}",
            request.header("host"),
            request.path,
            request
                .query
                .as_deref()
                .map(|q| format!("?{q}"))
                .unwrap_or_default()
        );
        let signed: Vec<(&str, &str)> = fields
            .iter()
            .filter(|(k, _)| k != "oauth_signature")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let base =
            oauth1::signature_base_string(&request.method, &Url::parse(&url).unwrap(), &signed);
        let expected = oauth1::signature(&base, CONSUMER_SECRET, ACCESS_SECRET);
        assert_eq!(field("oauth_signature"), expected, "base string: {base}");
        // The check has teeth: another secret, or another path, signs differently.
        assert_ne!(
            field("oauth_signature"),
            oauth1::signature(&base, CONSUMER_SECRET, "another-secret")
        );
        let moved = oauth1::signature_base_string(
            &request.method,
            &Url::parse(&url).unwrap().join("/2/other").unwrap(),
            &signed,
        );
        assert_ne!(
            field("oauth_signature"),
            oauth1::signature(&moved, CONSUMER_SECRET, ACCESS_SECRET)
        );
        let raw = String::from_utf8_lossy(&request.body);
        assert!(!raw.contains(CONSUMER_SECRET) && !raw.contains(ACCESS_SECRET));
    }

    /// No secret (and no signed header) in an error.
    fn assert_no_secrets(error: &SendError) {
        let shown = format!("{error:?} {error}");
        for secret in [
            CONSUMER_SECRET,
            ACCESS_SECRET,
            ACCESS_TOKEN,
            "oauth_signature",
        ] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    // ---- requests ----

    #[tokio::test]
    async fn posts_public_reply_to_the_tweet_answered_signed_with_oauth1() {
        let (result, fake) = public_reply_answered(canned(
            201,
            r#"{"data":{"id":"1859000000000000999","text":"We have fixed the address, sorry!","edit_history_tweet_ids":["1859000000000000999"]}}"#,
        ))
        .await;
        assert_eq!(
            result.unwrap(),
            Sent {
                platform_id: "1859000000000000999".into()
            }
        );
        let request = fake.only_request();
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/2/tweets");
        assert_eq!(request.query, None);
        assert_eq!(request.header("content-type"), "application/json");
        assert_eq!(
            String::from_utf8(request.body.clone()).unwrap(),
            format!(
                r#"{{"text":"We have fixed the address, sorry!","reply":{{"in_reply_to_tweet_id":"{TWEET}"}}}}"#
            )
        );
        assert_signed_like_x_checks(&request);
    }

    #[tokio::test]
    async fn sends_dm_to_the_customer_of_a_dm_conversation() {
        let (result, fake) = dm_answered(canned(
            201,
            r#"{"data":{"dm_conversation_id":"3000000001-4000000002","dm_event_id":"1859000000000000777"}}"#,
        ))
        .await;
        assert_eq!(
            result.unwrap(),
            Sent {
                platform_id: "1859000000000000777".into()
            }
        );
        let request = fake.only_request();
        assert_eq!(request.method, "POST");
        assert_eq!(
            request.path,
            format!("/2/dm_conversations/with/{CUSTOMER}/messages")
        );
        assert_eq!(request.header("content-type"), "application/json");
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({ "text": "Thanks, order A-1234 is on its way." })
        );
        assert_signed_like_x_checks(&request);
    }

    #[tokio::test]
    async fn private_answer_to_a_tweet_goes_by_dm_to_its_author() {
        let (url, fake) = fake_x(canned(
            201,
            r#"{"data":{"dm_conversation_id":"3000000001-4000000002","dm_event_id":"1859000000000000778"}}"#,
        ))
        .await;
        let tweet = inbound("tweet-mention.json");
        // Long for a tweet, fine for a DM.
        let text = "Could you send us your order number? ".repeat(10);
        let reply = reply_to(&tweet, &text, Visibility::Private);
        let sent = send(&sender(url), &reply, &tweet).await.unwrap();
        assert_eq!(sent.platform_id, "1859000000000000778");
        let request = fake.only_request();
        assert_eq!(
            request.path,
            format!("/2/dm_conversations/with/{CUSTOMER}/messages")
        );
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body, serde_json::json!({ "text": text }));
        assert_signed_like_x_checks(&request);
    }

    #[tokio::test]
    async fn keeps_a_path_prefix_of_the_api_url() {
        let (url, fake) = fake_x(canned(201, r#"{"data":{"id":"1","text":"x"}}"#)).await;
        let tweet = inbound("tweet-mention.json");
        let reply = reply_to(&tweet, "ok", Visibility::Public);
        let prefixed = url.join("/proxy/x").unwrap();
        send(&sender(prefixed), &reply, &tweet).await.unwrap();
        let request = fake.only_request();
        assert_eq!(request.path, "/proxy/x/2/tweets");
        assert_signed_like_x_checks(&request);
    }

    #[tokio::test]
    async fn refuses_a_public_reply_over_280_characters_without_calling_x() {
        let (url, fake) = fake_x(canned(201, r#"{"data":{"id":"1","text":"x"}}"#)).await;
        let tweet = inbound("tweet-mention.json");
        let reply = reply_to(&tweet, &"a".repeat(281), Visibility::Public);
        let error = send(&sender(url), &reply, &tweet).await.unwrap_err();
        assert_eq!(error.code(), "text_too_long");
        assert!(!error.is_retryable());
        assert!(matches!(error, SendError::Permanent { .. }));
        assert!(
            error.reason().ends_with(
                "public replies on X are limited to 280 characters; shorten it or answer by DM"
            ),
            "{error}"
        );
        assert!(error.reason().contains("281"), "{error}");
        assert!(fake.requests().is_empty());
    }

    #[tokio::test]
    async fn a_long_link_counts_23_so_the_reply_fits() {
        let (url, fake) = fake_x(canned(201, r#"{"data":{"id":"5","text":"x"}}"#)).await;
        let tweet = inbound("tweet-mention.json");
        let link = format!("https://help.acme.example/articles/{}", "x".repeat(200));
        // 256 + 1 space + 23 = 280.
        let text = format!("{} {link}", "b".repeat(256));
        assert_eq!(tweet_weight(&text), 280);
        let reply = reply_to(&tweet, &text, Visibility::Public);
        send(&sender(url), &reply, &tweet).await.unwrap();
        assert_eq!(fake.requests().len(), 1);
    }

    #[tokio::test]
    async fn refuses_a_dm_over_10000_characters_without_calling_x() {
        let (url, fake) = fake_x(canned(201, "{}")).await;
        let dm = inbound("dm.json");
        let reply = reply_to(&dm, &"é".repeat(10_001), Visibility::Private);
        let error = send(&sender(url), &reply, &dm).await.unwrap_err();
        assert_eq!(error.code(), "text_too_long");
        assert!(!error.is_retryable());
        assert!(fake.requests().is_empty());
    }

    #[tokio::test]
    async fn refuses_what_cannot_be_addressed_without_calling_x() {
        let (url, fake) = fake_x(canned(201, "{}")).await;
        let sender = sender(url);
        let mut tweet = inbound("tweet-mention.json");
        tweet.platform_message_id = None;
        let reply = reply_to(&tweet, "hi", Visibility::Public);
        let error = send(&sender, &reply, &tweet).await.unwrap_err();
        assert_eq!(error.code(), "nothing_to_answer");

        let mut dm = inbound("dm.json");
        dm.conversation = Conversation::DirectMessages {
            account_id: "3000000001".into(),
            user_id: "../../2/tweets".into(),
        };
        let reply = reply_to(&dm, "hi", Visibility::Private);
        let error = send(&sender, &reply, &dm).await.unwrap_err();
        assert_eq!(error.code(), "invalid_recipient");

        let mut email = reply_to(&dm, "hi", Visibility::Private);
        email.channel = ChannelKind::Email;
        let error = send(&sender, &email, &dm).await.unwrap_err();
        assert_eq!(error.code(), "wrong_channel");

        let blank = reply_to(&dm, "  \n", Visibility::Private);
        let error = send(&sender, &blank, &dm).await.unwrap_err();
        assert_eq!(error.code(), "empty_text");
        assert!(fake.requests().is_empty());
    }

    // ---- errors ----

    #[tokio::test]
    async fn rate_limit_is_transient_until_x_rate_limit_reset() {
        let reset = now().timestamp() + 120;
        let (result, fake) = public_reply_answered(
            canned(
                429,
                r#"{"title":"Too Many Requests","detail":"Too Many Requests","type":"about:blank","status":429}"#,
            )
            .with_header("x-rate-limit-limit", 100)
            .with_header("x-rate-limit-remaining", 0)
            .with_header("x-rate-limit-reset", reset),
        )
        .await;
        let error = result.unwrap_err();
        assert_eq!(
            error,
            SendError::Transient {
                code: "x_429".into(),
                reason: "X's rate limit for this account is reached (Too Many Requests); the \
                         public reply will be sent again after the reset"
                    .into(),
                retry_after: Some(Duration::from_secs(120)),
            }
        );
        assert_eq!(fake.requests().len(), 1);
    }

    #[tokio::test]
    async fn rate_limit_waits_for_the_exhausted_24_hour_cap() {
        let (result, _) = public_reply_answered(
            canned(
                429,
                r#"{"title":"Too Many Requests","detail":"Too Many Requests","type":"about:blank","status":429}"#,
            )
            .with_header("x-rate-limit-remaining", 99)
            .with_header("x-rate-limit-reset", now().timestamp() + 60)
            .with_header("x-user-limit-24hour-remaining", 0)
            .with_header("x-user-limit-24hour-reset", now().timestamp() + 7200),
        )
        .await;
        let SendError::Transient { retry_after, .. } = result.unwrap_err() else {
            panic!("not transient");
        };
        assert_eq!(retry_after, Some(Duration::from_secs(7200)));
    }

    #[tokio::test]
    async fn rate_limit_falls_back_to_retry_after_and_a_past_reset_waits_zero() {
        let (result, _) = dm_answered(
            canned(
                429,
                r#"{"errors":[{"code":88,"message":"Rate limit exceeded"}]}"#,
            )
            .with_header("retry-after", 30),
        )
        .await;
        let error = result.unwrap_err();
        assert_eq!(error.code(), "x_429");
        assert!(error.reason().contains("Rate limit exceeded"), "{error}");
        let SendError::Transient { retry_after, .. } = error else {
            panic!("not transient");
        };
        assert_eq!(retry_after, Some(Duration::from_secs(30)));

        let (result, _) =
            dm_answered(canned(429, "").with_header("x-rate-limit-reset", now().timestamp() - 5))
                .await;
        let SendError::Transient { retry_after, .. } = result.unwrap_err() else {
            panic!("not transient");
        };
        assert_eq!(retry_after, Some(Duration::ZERO));
    }

    #[tokio::test]
    async fn server_errors_are_transient() {
        for status in [500, 502, 503] {
            let (result, _) = public_reply_answered(canned(
                status,
                r#"{"title":"Service Unavailable","detail":"Service Unavailable","type":"about:blank","status":503}"#,
            ))
            .await;
            let error = result.unwrap_err();
            assert!(error.is_retryable(), "{status}: {error:?}");
            assert_eq!(error.code(), format!("x_{status}"));
            assert_no_secrets(&error);
        }
        // Not even JSON.
        let (result, _) = dm_answered(canned(502, "<html>Bad Gateway</html>")).await;
        let error = result.unwrap_err();
        assert!(error.is_retryable());
        assert!(error.reason().contains("502 Bad Gateway"), "{error}");
    }

    #[tokio::test]
    async fn rejected_credentials_are_unauthorized() {
        let (result, _) = public_reply_answered(canned(
            401,
            r#"{"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"}"#,
        ))
        .await;
        let error = result.unwrap_err();
        assert!(matches!(error, SendError::Unauthorized { .. }), "{error:?}");
        assert_eq!(error.code(), "x_401");
        assert!(error.reason().contains("re-authorize"), "{error}");
        assert!(!error.is_retryable());
        assert_no_secrets(&error);
    }

    #[tokio::test]
    async fn self_serve_reply_restriction_is_permanent_and_says_so() {
        let (result, _) = public_reply_answered(canned(
            403,
            r#"{"detail":"Reply to this conversation is not allowed because you have not been mentioned or otherwise engaged by the author of the post you are replying to.","type":"about:blank","title":"Forbidden","status":403}"#,
        ))
        .await;
        let error = result.unwrap_err();
        assert!(matches!(error, SendError::Permanent { .. }), "{error:?}");
        assert_eq!(error.code(), "x_403");
        let reason = error.reason();
        assert!(
            reason.contains("only allowed to a post whose author mentioned or quoted the account"),
            "{reason}"
        );
        assert!(
            reason.contains("not been mentioned or otherwise engaged"),
            "{reason}"
        );
        assert!(reason.ends_with("answer by DM instead"), "{reason}");
        assert_no_secrets(&error);
    }

    #[tokio::test]
    async fn duplicate_text_is_permanent() {
        let (result, _) = public_reply_answered(canned(
            403,
            r#"{"detail":"You are not allowed to create a Tweet with duplicate content.","type":"about:blank","title":"Forbidden","status":403}"#,
        ))
        .await;
        let error = result.unwrap_err();
        assert!(matches!(error, SendError::Permanent { .. }), "{error:?}");
        assert_eq!(error.code(), "x_403");
        assert!(error.reason().contains("duplicate"), "{error}");
        assert!(error.reason().contains("change the text"), "{error}");
    }

    #[tokio::test]
    async fn refused_dm_is_permanent_with_x_detail() {
        let (result, _) = dm_answered(canned(
            403,
            r#"{"detail":"You cannot send messages to this user.","type":"https://api.twitter.com/2/problems/client-forbidden","title":"Forbidden","status":403}"#,
        ))
        .await;
        let error = result.unwrap_err();
        assert_eq!(
            error,
            SendError::Permanent {
                code: "x_403_client-forbidden".into(),
                reason: "X refused the direct message (\"You cannot send messages to this user.\")"
                    .into(),
            }
        );
    }

    #[tokio::test]
    async fn invalid_request_and_missing_post_are_permanent() {
        let (result, _) = public_reply_answered(canned(
            400,
            r#"{"errors":[{"parameters":{"reply.in_reply_to_tweet_id":["1"]},"message":"The `reply.in_reply_to_tweet_id` query parameter value [1] is not valid"}],"title":"Invalid Request","detail":"One or more parameters to your request was invalid.","type":"https://api.twitter.com/2/problems/invalid-request"}"#,
        ))
        .await;
        let error = result.unwrap_err();
        assert!(matches!(error, SendError::Permanent { .. }), "{error:?}");
        assert_eq!(error.code(), "x_400_invalid-request");
        assert!(error.reason().contains("One or more parameters"), "{error}");
        assert!(error.reason().contains("is not valid"), "{error}");

        let (result, _) = public_reply_answered(canned(
            404,
            r#"{"title":"Not Found Error","detail":"Could not find tweet.","type":"https://api.twitter.com/2/problems/resource-not-found","status":404}"#,
        ))
        .await;
        let error = result.unwrap_err();
        assert!(matches!(error, SendError::Permanent { .. }), "{error:?}");
        assert_eq!(error.code(), "x_404_resource-not-found");
        assert!(error.reason().contains("deleted"), "{error}");
    }

    #[tokio::test]
    async fn unreadable_success_is_permanent_so_the_post_is_not_repeated() {
        let (result, _) = public_reply_answered(canned(201, "<html>ok</html>")).await;
        let error = result.unwrap_err();
        assert!(matches!(error, SendError::Permanent { .. }), "{error:?}");
        assert_eq!(error.code(), "x_unreadable_answer");
    }

    #[tokio::test]
    async fn unreachable_server_is_transient() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let tweet = inbound("tweet-mention.json");
        let reply = reply_to(&tweet, "hello", Visibility::Public);
        let url = Url::parse(&format!("http://{addr}")).unwrap();
        let error = send(&sender(url), &reply, &tweet).await.unwrap_err();
        assert_eq!(error.code(), "network");
        assert!(error.is_retryable());
        assert_no_secrets(&error);
    }

    // ---- length ----

    #[test]
    fn weighs_characters_not_bytes_and_links_as_23() {
        assert_eq!(tweet_weight(""), 0);
        assert_eq!(tweet_weight("hello world"), 11);
        assert_eq!(tweet_weight(&"é".repeat(280)), 280);
        assert_eq!(tweet_weight("Привет"), 6);
        // CJK and emoji weigh 2.
        assert_eq!(tweet_weight("日本語"), 6);
        assert_eq!(tweet_weight("👍"), 2);
        assert_eq!(tweet_weight("👍🏽"), 2);
        assert_eq!(tweet_weight("❤️"), 2);
        // Curly quotes and dashes are light; the ellipsis is not (as in twitter-text).
        assert_eq!(tweet_weight("“a” — b"), 7);
        assert_eq!(tweet_weight("…"), 2);
        // Links.
        assert_eq!(tweet_weight("see https://x.co"), 4 + URL_WEIGHT);
        assert_eq!(
            tweet_weight(&format!("see https://acme.example/{}", "p".repeat(100))),
            4 + URL_WEIGHT
        );
        assert_eq!(tweet_weight("(http://acme.example/a)."), 1 + URL_WEIGHT + 2);
        assert_eq!(tweet_weight("www.acme.example"), URL_WEIGHT);
        assert_eq!(
            tweet_weight("two https://a.example https://b.example"),
            4 + 23 + 1 + 23
        );
        // Not links.
        assert_eq!(tweet_weight("https://"), 8);
        assert_eq!(tweet_weight("www."), 4);
    }

    #[test]
    fn config_debug_shows_no_secret() {
        let config = TwitterSenderConfig::new(
            SecretString::from(CONSUMER_KEY),
            SecretString::from(CONSUMER_SECRET),
            SecretString::from(ACCESS_TOKEN),
            SecretString::from(ACCESS_SECRET),
        );
        assert_eq!(config.api_url.as_str(), "https://api.x.com/");
        let shown = format!("{config:?}");
        for secret in [CONSUMER_KEY, CONSUMER_SECRET, ACCESS_TOKEN, ACCESS_SECRET] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
