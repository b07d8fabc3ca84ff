//! Social monitoring on X: public posts that name the brand or its products but do not address
//! the account become tickets of kind `monitoring`.
//!
//! - **Settings** — [`MonitoringSettings`] (keywords, languages, retweets, page size) and the
//!   [`MonitoredAccount`] (the support account's X user id and handle) make one
//!   [`SearchQuery`]: `("brand" OR "product") -from:<account id> -@<handle> -is:retweet
//!   (lang:de OR lang:en)`, refused when longer than X's [`MAX_QUERY_CHARS`].
//! - **Search** — [`TwitterSearch`] calls
//!   `GET {api}/2/tweets/search/recent?query=…&since_id=…&max_results=…&tweet.fields=…&expansions=author_id&user.fields=username,name`
//!   with the app's bearer token (given, or fetched once from `POST {api}/oauth2/token` with the
//!   consumer key and secret) and follows `meta.next_token` up to a page cap. A `429` stops
//!   the search and is reported (with `x-rate-limit-reset`); `5xx` and network failures are
//!   retryable errors; `401`/`403` mean the app must be re-authorized.
//! - **Mapping** — each post becomes the message the Twitter channel makes of a mention of it
//!   (same conversation, same platform id; [`crate::twitter`]), marked `monitoring`: a post
//!   already ingested as a mention or reply is then a duplicate the ticket writer absorbs. Posts
//!   by the account, replies to it and posts whose `entities.mentions` name it are skipped
//!   (they reach Crossdesk through the webhook).
//! - **Polling** — [`SocialMonitor::poll`] reads the cursor [`CURSOR_NAME`], searches, archives
//!   the raw pages, enqueues the messages in one batch and only then saves the newest id as the
//!   cursor: nothing is lost, and what is seen twice is deduplicated by the writer.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use chrono::{DateTime, Utc};
use crossdesk_core::workflow::WorkflowStore;
use crossdesk_core::{
    ArchiveError, ChannelKind, Clock, InboundQueue, Message, QueueError, RawArchive, RawRef,
    StoreError,
};
use reqwest::header::{HeaderMap, AUTHORIZATION};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;
use tokio::sync::Mutex;
use url::Url;

use crate::twitter::v2_post_message;
use crate::twitter_send::DEFAULT_API_URL;

/// The workflow cursor holding the newest post id monitoring has seen.
pub const CURSOR_NAME: &str = "monitoring:twitter:since_id";
/// The longest query recent search accepts on X's self-serve tiers, in characters.
pub const MAX_QUERY_CHARS: usize = 512;
/// The fewest posts X returns per page when asked (`max_results`).
pub const MIN_RESULTS_PER_POLL: u8 = 10;
/// The most posts X returns per page (`max_results`), and the default.
pub const MAX_RESULTS_PER_POLL: u8 = 100;
/// The most pages one poll reads; older pages past it are given up (and logged).
pub const DEFAULT_MAX_PAGES: usize = 5;
/// The post fields requested: those the mention mapping reads, `entities` for the mention
/// check and `note_tweet` for the full text of long posts.
pub const TWEET_FIELDS: &str = "created_at,author_id,conversation_id,in_reply_to_user_id,referenced_tweets,lang,entities,note_tweet";
/// The user fields requested for the expanded authors.
pub const USER_FIELDS: &str = "username,name";
/// The longest keyword accepted, in characters.
const MAX_KEYWORD_CHARS: usize = 128;
/// The longest part of X's error text kept in a reason, in characters.
const MAX_DETAIL_CHARS: usize = 300;

/// `CROSSDESK_MONITORING_KEYWORDS`: comma-separated brand and product names; empty turns
/// monitoring off.
pub const KEYWORDS_VAR: &str = "CROSSDESK_MONITORING_KEYWORDS";
/// `CROSSDESK_MONITORING_LANGUAGES`: comma-separated language codes (`de,en`); empty: any.
pub const LANGUAGES_VAR: &str = "CROSSDESK_MONITORING_LANGUAGES";
/// `CROSSDESK_MONITORING_INTERVAL_SECS`: seconds between polls of the local stack.
pub const INTERVAL_VAR: &str = "CROSSDESK_MONITORING_INTERVAL_SECS";
/// `CROSSDESK_TWITTER_ACCOUNT_ID`: the support account's X user id.
pub const ACCOUNT_ID_VAR: &str = "CROSSDESK_TWITTER_ACCOUNT_ID";
/// `CROSSDESK_TWITTER_ACCOUNT_HANDLE`: the support account's handle (without `@`).
pub const ACCOUNT_HANDLE_VAR: &str = "CROSSDESK_TWITTER_ACCOUNT_HANDLE";
/// The local stack's default seconds between polls (the deployed schedule's rate).
pub const DEFAULT_INTERVAL_SECS: u64 = 120;

// ---- settings ----

/// What social monitoring looks for. The default is off, with no keywords.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitoringSettings {
    /// Whether monitoring runs at all.
    pub enabled: bool,
    /// Brand and product names, each matched as an exact phrase.
    pub keywords: Vec<String>,
    /// Leave retweets out (`-is:retweet`); true by default.
    pub exclude_retweets: bool,
    /// Only posts X classifies in these languages (`de`, `en`); any language when empty.
    pub languages: Vec<String>,
    /// Posts per page asked of X, 10 to 100 (100 by default).
    pub max_results_per_poll: u8,
}

impl Default for MonitoringSettings {
    fn default() -> Self {
        MonitoringSettings {
            enabled: false,
            keywords: Vec::new(),
            exclude_retweets: true,
            languages: Vec::new(),
            max_results_per_poll: MAX_RESULTS_PER_POLL,
        }
    }
}

/// A monitoring setting that cannot make a valid search.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum SettingsError {
    /// Monitoring is enabled without a keyword.
    #[error("social monitoring is enabled but has no keywords; set {KEYWORDS_VAR} or turn it off")]
    NoKeywords,
    /// A keyword is empty, too long or holds a control character.
    #[error("the monitoring keyword {keyword:?} is not usable: {reason}")]
    BadKeyword {
        /// The keyword (cut to 40 characters).
        keyword: String,
        /// Why.
        reason: &'static str,
    },
    /// A language is not a language code.
    #[error("the monitoring language {0:?} is not a language code such as `de` or `en`")]
    BadLanguage(String),
    /// `max_results_per_poll` is outside what X accepts.
    #[error("max_results_per_poll is {0}; X accepts 10 to 100")]
    MaxResults(u8),
    /// The query is longer than X accepts.
    #[error(
        "the monitoring query is {chars} characters long and X's recent search accepts at most \
         {MAX_QUERY_CHARS}: use fewer or shorter keywords or languages"
    )]
    QueryTooLong {
        /// The query's length in characters.
        chars: usize,
    },
    /// The account's id or handle is missing or malformed.
    #[error("{name} is invalid: {reason}")]
    Account {
        /// The setting.
        name: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// A number setting is not a number in range.
    #[error("{name} is invalid: {reason}")]
    Invalid {
        /// The setting.
        name: &'static str,
        /// Why.
        reason: String,
    },
}

impl MonitoringSettings {
    /// The settings from `CROSSDESK_MONITORING_KEYWORDS` and `CROSSDESK_MONITORING_LANGUAGES`
    /// (comma-separated; keywords turn monitoring on); the rest keep their defaults.
    pub fn from_lookup(env: impl Fn(&str) -> Option<String>) -> Self {
        let list = |name: &str| -> Vec<String> {
            env(name)
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        };
        let keywords = list(KEYWORDS_VAR);
        MonitoringSettings {
            enabled: !keywords.is_empty(),
            keywords,
            languages: list(LANGUAGES_VAR),
            ..MonitoringSettings::default()
        }
    }

    /// The recent-search query for `account`, checked against X's rules and length limit.
    pub fn query(&self, account: &MonitoredAccount) -> Result<SearchQuery, SettingsError> {
        if !(MIN_RESULTS_PER_POLL..=MAX_RESULTS_PER_POLL).contains(&self.max_results_per_poll) {
            return Err(SettingsError::MaxResults(self.max_results_per_poll));
        }
        if self.keywords.is_empty() {
            return Err(SettingsError::NoKeywords);
        }
        let phrases = self
            .keywords
            .iter()
            .map(|k| quote_keyword(k))
            .collect::<Result<Vec<_>, _>>()?;
        let mut query = format!(
            "({}) -from:{} -@{}",
            phrases.join(" OR "),
            account.id,
            account.handle
        );
        if self.exclude_retweets {
            query.push_str(" -is:retweet");
        }
        if !self.languages.is_empty() {
            let languages = self
                .languages
                .iter()
                .map(|l| language(l).map(|l| format!("lang:{l}")))
                .collect::<Result<Vec<_>, _>>()?;
            query.push_str(&format!(" ({})", languages.join(" OR ")));
        }
        let chars = query.chars().count();
        if chars > MAX_QUERY_CHARS {
            return Err(SettingsError::QueryTooLong { chars });
        }
        Ok(SearchQuery {
            text: query,
            max_results: self.max_results_per_poll,
        })
    }
}

/// A keyword as an exact-phrase match: in double quotes, with `\` and `"` escaped.
fn quote_keyword(keyword: &str) -> Result<String, SettingsError> {
    let trimmed = keyword.trim();
    let bad = |reason| SettingsError::BadKeyword {
        keyword: keyword.chars().take(40).collect(),
        reason,
    };
    if trimmed.is_empty() {
        return Err(bad("it is empty"));
    }
    if trimmed.chars().count() > MAX_KEYWORD_CHARS {
        return Err(bad("it is longer than 128 characters"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(bad("it holds a control character"));
    }
    let mut quoted = String::with_capacity(trimmed.len() + 2);
    quoted.push('"');
    for c in trimmed.chars() {
        if matches!(c, '"' | '\\') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    Ok(quoted)
}

/// A language code (`de`, `en`, `pt-br` style), lower-cased.
fn language(code: &str) -> Result<String, SettingsError> {
    let code = code.trim().to_ascii_lowercase();
    let mut parts = code.split('-');
    let primary = parts.next().unwrap_or_default();
    let primary_ok =
        (2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_lowercase());
    let rest_ok =
        parts.all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
    if primary_ok && rest_ok {
        Ok(code)
    } else {
        Err(SettingsError::BadLanguage(code.chars().take(20).collect()))
    }
}

/// The support account whose own posts and mentions monitoring leaves to the webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitoredAccount {
    id: String,
    handle: String,
}

impl MonitoredAccount {
    /// The account with X user id `id` (digits) and handle `handle` (`@` optional, 1 to 15
    /// letters, digits or `_`).
    pub fn new(id: &str, handle: &str) -> Result<Self, SettingsError> {
        let id = id.trim();
        if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SettingsError::Account {
                name: ACCOUNT_ID_VAR,
                reason: "expected the account's numeric X user id",
            });
        }
        let handle = handle.trim();
        let handle = handle.strip_prefix('@').unwrap_or(handle);
        if handle.is_empty()
            || handle.len() > 15
            || !handle
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(SettingsError::Account {
                name: ACCOUNT_HANDLE_VAR,
                reason: "expected the account's handle: 1 to 15 letters, digits or _",
            });
        }
        Ok(MonitoredAccount {
            id: id.to_string(),
            handle: handle.to_string(),
        })
    }

    /// The account from `CROSSDESK_TWITTER_ACCOUNT_ID` and `CROSSDESK_TWITTER_ACCOUNT_HANDLE`.
    pub fn from_lookup(env: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        Self::new(
            &env(ACCOUNT_ID_VAR).unwrap_or_default(),
            &env(ACCOUNT_HANDLE_VAR).unwrap_or_default(),
        )
    }

    /// The account's X user id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The account's handle, without `@`.
    pub fn handle(&self) -> &str {
        &self.handle
    }
}

/// A recent-search query that fits X's rules, built by [`MonitoringSettings::query`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    text: String,
    max_results: u8,
}

impl SearchQuery {
    /// The query text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Posts per page.
    pub fn max_results(&self) -> u8 {
        self.max_results
    }
}

/// `CROSSDESK_MONITORING_INTERVAL_SECS` (default 120), at least 10 seconds.
pub fn interval_from_lookup(
    env: impl Fn(&str) -> Option<String>,
) -> Result<Duration, SettingsError> {
    match env(INTERVAL_VAR).filter(|v| !v.trim().is_empty()) {
        None => Ok(Duration::from_secs(DEFAULT_INTERVAL_SECS)),
        Some(v) => match v.trim().parse::<u64>() {
            Ok(secs) if secs >= 10 => Ok(Duration::from_secs(secs)),
            _ => Err(SettingsError::Invalid {
                name: INTERVAL_VAR,
                reason: format!("{v:?} is not a number of seconds of at least 10"),
            }),
        },
    }
}

/// The settings and the search of a deployment, read through `env`
/// (`CROSSDESK_MONITORING_*`, `CROSSDESK_TWITTER_ACCOUNT_*`, `CROSSDESK_TWITTER_API_URL`) and
/// authenticated with the X app's consumer key and secret; `Ok(None)` when monitoring is off.
pub fn search_from_lookup(
    env: impl Fn(&str) -> Option<String>,
    consumer_key: Option<&SecretString>,
    consumer_secret: Option<&SecretString>,
) -> Result<Option<(MonitoringSettings, TwitterSearch)>, SettingsError> {
    let settings = MonitoringSettings::from_lookup(&env);
    if !settings.enabled {
        return Ok(None);
    }
    let account = MonitoredAccount::from_lookup(&env)?;
    let (Some(consumer_key), Some(consumer_secret)) = (consumer_key, consumer_secret) else {
        return Err(SettingsError::Invalid {
            name: "twitter_consumer_key",
            reason: "social monitoring needs the X app's twitter_consumer_key and \
                     twitter_consumer_secret to get its bearer token"
                .into(),
        });
    };
    let api_url = match env("CROSSDESK_TWITTER_API_URL").filter(|v| !v.trim().is_empty()) {
        Some(v) => Url::parse(v.trim()).map_err(|e| SettingsError::Invalid {
            name: "CROSSDESK_TWITTER_API_URL",
            reason: e.to_string(),
        })?,
        None => Url::parse(DEFAULT_API_URL).expect("the default API URL is valid"),
    };
    let client = crate::health::http_client().map_err(|reason| SettingsError::Invalid {
        name: "HTTP client",
        reason,
    })?;
    let auth = AppAuth::ClientCredentials {
        consumer_key: consumer_key.clone(),
        consumer_secret: consumer_secret.clone(),
    };
    Ok(Some((
        settings,
        TwitterSearch::new(api_url, auth, account, client),
    )))
}

// ---- search ----

/// How the search authenticates: X's recent search takes an app-only bearer token.
#[derive(Debug, Clone)]
pub enum AppAuth {
    /// A bearer token given as is.
    Bearer(SecretString),
    /// The app's consumer key and secret, exchanged once for a bearer token at
    /// `POST {api}/oauth2/token` (client credentials).
    ClientCredentials {
        /// The app's consumer (API) key.
        consumer_key: SecretString,
        /// The app's consumer (API) secret.
        consumer_secret: SecretString,
    },
}

/// Why a search failed. Whether retrying helps is a property of the error.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum SearchError {
    /// X is unreachable or failing (network, 5xx): the next poll may succeed.
    #[error("{code}: {reason}")]
    Transient {
        /// `network`, `x_503`, …
        code: String,
        /// What happened.
        reason: String,
    },
    /// X rejected the app's credentials (401, 403): an administrator must re-authorize.
    #[error("{code}: {reason}")]
    NeedsReauthorization {
        /// `x_401`, `x_403`, …
        code: String,
        /// What happened and what to do.
        reason: String,
    },
    /// X refused the request itself (400: a query it does not accept): retrying cannot help.
    #[error("{code}: {reason}")]
    Refused {
        /// `x_400`, …
        code: String,
        /// What X said.
        reason: String,
    },
}

impl SearchError {
    /// Whether the same search may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SearchError::Transient { .. })
    }
}

/// Why a search stopped before reading every page since the cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchStop {
    /// X's rate limit is reached (`429`): the cursor must stay where it is.
    RateLimited {
        /// When X resets the limit (`x-rate-limit-reset`), when it says.
        reset_at: Option<DateTime<Utc>>,
    },
    /// The page cap was reached with older pages left: those are given up.
    PageCap {
        /// Pages read.
        pages: usize,
    },
}

/// What one search found.
#[derive(Debug, Clone, Default)]
pub struct SearchOutcome {
    /// The posts as monitoring messages, newest first.
    pub messages: Vec<Message>,
    /// The raw bodies of the pages read (each message's `raw` is one's content address).
    pub pages: Vec<Vec<u8>>,
    /// The newest post id seen, skipped posts included.
    pub newest_id: Option<String>,
    /// Posts skipped: the account's own, replies to it, mentions of it, unreadable ones.
    pub skipped: usize,
    /// Why the search stopped early, if it did.
    pub stopped: Option<SearchStop>,
}

/// A recent-search page as X answers it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SearchPage {
    data: Option<Vec<Value>>,
    includes: Value,
    meta: SearchMeta,
}

/// A page's `meta`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SearchMeta {
    newest_id: Option<String>,
    next_token: Option<String>,
}

/// The fields of a post that decide whether monitoring keeps it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PostSides {
    id: Option<String>,
    author_id: Option<String>,
    in_reply_to_user_id: Option<String>,
    entities: Option<PostEntities>,
}

/// A post's entities; only mentions matter here.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PostEntities {
    mentions: Option<Vec<PostMention>>,
}

/// One mention in a post.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PostMention {
    id: Option<String>,
    username: Option<String>,
}

/// The token endpoint's answer.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BearerAnswer {
    token_type: Option<String>,
    access_token: Option<String>,
}

/// An X v2 problem (`{"title","detail","type","errors":[{"message"}]}`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Problem {
    title: Option<String>,
    detail: Option<String>,
    errors: Vec<ProblemError>,
}

/// One entry of a problem's `errors[]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ProblemError {
    message: Option<String>,
}

/// X's recent search, for the monitored account.
pub struct TwitterSearch {
    api_url: Url,
    auth: AppAuth,
    client: reqwest::Client,
    account: MonitoredAccount,
    max_pages: usize,
    /// The bearer token fetched with client credentials, kept for the life of the process.
    token: Mutex<Option<SecretString>>,
}

impl TwitterSearch {
    /// A search against X's API at `api_url` ([`DEFAULT_API_URL`] in production) through
    /// `client` (built once, with the caller's timeouts).
    pub fn new(
        api_url: Url,
        auth: AppAuth,
        account: MonitoredAccount,
        client: reqwest::Client,
    ) -> Self {
        TwitterSearch {
            api_url,
            auth,
            client,
            account,
            max_pages: DEFAULT_MAX_PAGES,
            token: Mutex::new(None),
        }
    }

    /// [`TwitterSearch::new`] against [`DEFAULT_API_URL`].
    pub fn with_default_url(
        auth: AppAuth,
        account: MonitoredAccount,
        client: reqwest::Client,
    ) -> Self {
        let url = Url::parse(DEFAULT_API_URL).expect("the default API URL is valid");
        Self::new(url, auth, account, client)
    }

    /// Reads at most `pages` pages per search (at least 1; [`DEFAULT_MAX_PAGES`] by default).
    pub fn with_max_pages(mut self, pages: usize) -> Self {
        self.max_pages = pages.max(1);
        self
    }

    /// The monitored account.
    pub fn account(&self) -> &MonitoredAccount {
        &self.account
    }

    /// Searches posts newer than `since_id` (without one, only the newest page, so a first
    /// poll does not turn a week of posts into tickets), following `meta.next_token` up to the
    /// page cap.
    pub async fn search(
        &self,
        query: &SearchQuery,
        since_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<SearchOutcome, SearchError> {
        let bearer = self.bearer().await?;
        let max_pages = if since_id.is_some() {
            self.max_pages
        } else {
            1
        };
        let mut outcome = SearchOutcome::default();
        let mut next_token: Option<String> = None;
        loop {
            let url = self.search_url(query, since_id, next_token.as_deref());
            let response = self
                .client
                .get(url)
                .header(AUTHORIZATION, format!("Bearer {}", bearer.expose_secret()))
                .send()
                .await
                .map_err(|e| network(&e))?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await.map_err(|e| network(&e))?.to_vec();
            if status == StatusCode::TOO_MANY_REQUESTS {
                let reset_at = rate_limit_reset(&headers);
                tracing::warn!(
                    channel = "twitter",
                    reset_at = ?reset_at,
                    pages = outcome.pages.len(),
                    "X's rate limit stopped social monitoring; the cursor stays"
                );
                outcome.stopped = Some(SearchStop::RateLimited { reset_at });
                return Ok(outcome);
            }
            if !status.is_success() {
                if matches!(status.as_u16(), 401 | 403) {
                    // A fetched token may have been invalidated: fetch a new one next time.
                    *self.token.lock().await = None;
                }
                return Err(classify(status, &body));
            }
            let page: SearchPage =
                serde_json::from_slice(&body).map_err(|_| SearchError::Transient {
                    code: "x_unreadable_answer".into(),
                    reason: "X's search answer is not the documented JSON".into(),
                })?;
            let raw = RawRef::of(&body);
            Self::read_page(&self.account, &page, raw, now, &mut outcome);
            outcome.pages.push(body);
            next_token = page.meta.next_token.filter(|t| !t.trim().is_empty());
            if next_token.is_none() {
                return Ok(outcome);
            }
            if outcome.pages.len() >= max_pages {
                if since_id.is_some() {
                    tracing::warn!(
                        channel = "twitter",
                        pages = outcome.pages.len(),
                        "social monitoring read its page cap; older matching posts are skipped"
                    );
                    outcome.stopped = Some(SearchStop::PageCap {
                        pages: outcome.pages.len(),
                    });
                }
                return Ok(outcome);
            }
        }
    }

    /// Turns one page's posts into monitoring messages, skipping the account's own ones.
    fn read_page(
        account: &MonitoredAccount,
        page: &SearchPage,
        raw: RawRef,
        now: DateTime<Utc>,
        outcome: &mut SearchOutcome,
    ) {
        for newest in page.meta.newest_id.iter() {
            note_newest(&mut outcome.newest_id, newest);
        }
        for post in page.data.iter().flatten() {
            let sides = serde_json::from_value::<PostSides>(post.clone()).unwrap_or_default();
            if let Some(id) = sides.id.as_deref() {
                note_newest(&mut outcome.newest_id, id);
            }
            let by_account = sides.author_id.as_deref() == Some(account.id());
            let to_account = sides.in_reply_to_user_id.as_deref() == Some(account.id());
            let mentions_account = sides
                .entities
                .and_then(|e| e.mentions)
                .unwrap_or_default()
                .iter()
                .any(|m| {
                    m.id.as_deref() == Some(account.id())
                        || m.username
                            .as_deref()
                            .is_some_and(|u| u.eq_ignore_ascii_case(account.handle()))
                });
            if by_account || to_account || mentions_account {
                outcome.skipped += 1;
                continue;
            }
            match v2_post_message(post, account.id(), &page.includes, raw.clone(), now) {
                Ok(Some(mut message)) => {
                    message.monitoring = true;
                    outcome.messages.push(message);
                }
                Ok(None) => outcome.skipped += 1,
                Err(reason) => {
                    outcome.skipped += 1;
                    tracing::warn!(
                        channel = "twitter",
                        reason,
                        "skipped a post monitoring cannot read"
                    );
                }
            }
        }
    }

    /// `{api}/2/tweets/search/recent?query=…` with every parameter, spaces as `%20`.
    fn search_url(&self, query: &SearchQuery, since_id: Option<&str>, next: Option<&str>) -> Url {
        let mut url = self.api_url.clone();
        url.set_query(None);
        url.set_fragment(None);
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty()
                .extend(["2", "tweets", "search", "recent"]);
        }
        let max_results = query.max_results().to_string();
        let mut params: Vec<(&str, &str)> =
            vec![("query", query.as_str()), ("max_results", &max_results)];
        if let Some(since_id) = since_id {
            params.push(("since_id", since_id));
        }
        if let Some(next) = next {
            params.push(("next_token", next));
        }
        params.extend([
            ("tweet.fields", TWEET_FIELDS),
            ("expansions", "author_id"),
            ("user.fields", USER_FIELDS),
        ]);
        let encoded: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        url.set_query(Some(&encoded.join("&")));
        url
    }

    /// The bearer token: the given one, or the one fetched with client credentials (once).
    async fn bearer(&self) -> Result<SecretString, SearchError> {
        let (key, secret) = match &self.auth {
            AppAuth::Bearer(token) => return Ok(token.clone()),
            AppAuth::ClientCredentials {
                consumer_key,
                consumer_secret,
            } => (consumer_key, consumer_secret),
        };
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref() {
            return Ok(token.clone());
        }
        let mut url = self.api_url.clone();
        url.set_query(None);
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(["oauth2", "token"]);
        }
        // RFC 6749 client credentials: key and secret form-encoded, then Basic.
        let form = |s: &SecretString| {
            form_urlencoded::byte_serialize(s.expose_secret().as_bytes()).collect::<String>()
        };
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            form(key),
            form(secret)
        ));
        let response = self
            .client
            .post(url)
            .header(AUTHORIZATION, format!("Basic {basic}"))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded;charset=UTF-8",
            )
            .body("grant_type=client_credentials")
            .send()
            .await
            .map_err(|e| network(&e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| network(&e))?;
        if !status.is_success() {
            return Err(match classify(status, &body) {
                // The token endpoint answers a bad key or secret with 403 (or 401).
                SearchError::Refused { code, reason } if status.is_client_error() => {
                    SearchError::NeedsReauthorization { code, reason }
                }
                other => other,
            });
        }
        let answer: BearerAnswer = serde_json::from_slice(&body).unwrap_or_default();
        let token = answer
            .access_token
            .filter(|t| !t.is_empty())
            .filter(|_| {
                answer
                    .token_type
                    .as_deref()
                    .is_some_and(|t| t.eq_ignore_ascii_case("bearer"))
            })
            .map(SecretString::from)
            .ok_or_else(|| SearchError::Transient {
                code: "x_unreadable_answer".into(),
                reason: "X's token answer has no bearer token".into(),
            })?;
        *cached = Some(token.clone());
        Ok(token)
    }
}

/// Percent-encodes a query component, spaces as `%20`.
fn encode(s: &str) -> String {
    // `byte_serialize` writes a space as `+` and a literal `+` as `%2B`.
    form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// Keeps the larger of two X ids (ids are decimal numbers of up to 19 digits).
fn note_newest(newest: &mut Option<String>, id: &str) {
    let id = id.trim();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return;
    }
    if newest.as_deref().is_none_or(|n| id_is_newer(id, n)) {
        *newest = Some(id.to_string());
    }
}

/// Reads one recent-search answer the way [`TwitterSearch::search`] reads each page: its posts
/// as monitoring messages (the account's own, replies to it and mentions of it skipped) and the
/// newest id; `None` when the body is not the documented JSON. For the fuzz target
/// `x_search_response` (`fuzz/`), which feeds it arbitrary bytes.
pub fn read_search_page(
    account: &MonitoredAccount,
    body: &[u8],
    now: DateTime<Utc>,
) -> Option<SearchOutcome> {
    let page: SearchPage = serde_json::from_slice(body).ok()?;
    let mut outcome = SearchOutcome::default();
    TwitterSearch::read_page(account, &page, RawRef::of(body), now, &mut outcome);
    outcome.pages.push(body.to_vec());
    Some(outcome)
}

/// Whether X id `a` is newer (larger) than `b`.
pub fn id_is_newer(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    (a.len(), a) > (b.len(), b)
}

/// When X resets the exhausted rate limit (`x-rate-limit-reset`, epoch seconds).
fn rate_limit_reset(headers: &HeaderMap) -> Option<DateTime<Utc>> {
    let secs = headers
        .get("x-rate-limit-reset")?
        .to_str()
        .ok()?
        .trim()
        .parse::<i64>()
        .ok()?;
    DateTime::from_timestamp(secs, 0)
}

fn network(e: &reqwest::Error) -> SearchError {
    SearchError::Transient {
        code: "network".into(),
        reason: format!("X could not be reached: {e}"),
    }
}

/// Maps a non-2xx answer (other than 429) to a [`SearchError`].
fn classify(status: StatusCode, body: &[u8]) -> SearchError {
    let problem: Problem = serde_json::from_slice(body).unwrap_or_default();
    let mut parts: Vec<String> = Vec::new();
    for said in std::iter::once(problem.detail.or(problem.title))
        .chain(problem.errors.into_iter().map(|e| e.message))
        .flatten()
    {
        let said = said.trim().to_string();
        if !said.is_empty() && !parts.contains(&said) {
            parts.push(said);
        }
    }
    let detail: String = if parts.is_empty() {
        format!("HTTP {}", status.as_u16())
    } else {
        parts.join("; ")
    }
    .chars()
    .map(|c| if c.is_control() { ' ' } else { c })
    .take(MAX_DETAIL_CHARS)
    .collect();
    let code = format!("x_{}", status.as_u16());
    match status.as_u16() {
        401 | 403 => SearchError::NeedsReauthorization {
            code,
            reason: format!(
                "X refused the app's search (\"{detail}\"); check the app's keys and API access \
                 level, then re-authorize the X channel"
            ),
        },
        408 | 500..=599 => SearchError::Transient {
            code,
            reason: format!("X could not search right now (\"{detail}\")"),
        },
        _ => SearchError::Refused {
            code,
            reason: format!("X refused the monitoring search (\"{detail}\")"),
        },
    }
}

// ---- polling ----

/// Where monitoring keeps its cursor: any [`WorkflowStore`] is one.
#[async_trait]
pub trait CursorStore: Send + Sync {
    /// A named cursor.
    async fn cursor(&self, name: &str) -> Result<Option<String>, StoreError>;
    /// Stores a named cursor.
    async fn save_cursor(&self, name: &str, value: &str) -> Result<(), StoreError>;
}

#[async_trait]
impl<T: WorkflowStore + ?Sized> CursorStore for T {
    async fn cursor(&self, name: &str) -> Result<Option<String>, StoreError> {
        WorkflowStore::cursor(self, name).await
    }

    async fn save_cursor(&self, name: &str, value: &str) -> Result<(), StoreError> {
        WorkflowStore::save_cursor(self, name, value).await
    }
}

/// Why a poll failed; nothing after the failing step happened (the cursor is unchanged).
#[derive(Debug, Error)]
pub enum MonitorError {
    /// The cursor could not be read or saved.
    #[error("monitoring cursor: {0}")]
    Store(#[from] StoreError),
    /// X's search failed.
    #[error("X search: {0}")]
    Search(#[from] SearchError),
    /// The raw pages could not be archived.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The messages could not be enqueued.
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl MonitorError {
    /// Whether the next poll may succeed without anyone acting.
    pub fn is_retryable(&self) -> bool {
        match self {
            MonitorError::Store(e) => e.is_retryable(),
            MonitorError::Search(e) => e.is_retryable(),
            MonitorError::Archive(_) => true,
            MonitorError::Queue(e) => matches!(e, QueueError::Unavailable(_)),
        }
    }
}

/// What one poll did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PollReport {
    /// Messages enqueued.
    pub enqueued: usize,
    /// Posts skipped (the account's own, addressed to it, unreadable).
    pub skipped: usize,
    /// Pages read.
    pub pages: usize,
    /// The cursor after the poll.
    pub cursor: Option<String>,
    /// Whether the cursor moved.
    pub cursor_advanced: bool,
    /// Set when X's rate limit stopped the poll: when it resets, if X said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limited_until: Option<DateTime<Utc>>,
    /// Whether the poll was stopped by X's rate limit.
    pub rate_limited: bool,
}

/// One poll of social monitoring: search since the cursor, enqueue, then advance the cursor.
pub struct SocialMonitor {
    query: SearchQuery,
    search: TwitterSearch,
    cursors: Arc<dyn CursorStore>,
    queue: Arc<dyn InboundQueue>,
    clock: Arc<dyn Clock>,
    archive: Option<Arc<dyn RawArchive>>,
}

impl SocialMonitor {
    /// A monitor for the settings; `Ok(None)` when monitoring is disabled.
    pub fn new(
        settings: &MonitoringSettings,
        search: TwitterSearch,
        cursors: Arc<dyn CursorStore>,
        queue: Arc<dyn InboundQueue>,
        clock: Arc<dyn Clock>,
    ) -> Result<Option<Self>, SettingsError> {
        if !settings.enabled {
            return Ok(None);
        }
        let query = settings.query(search.account())?;
        Ok(Some(SocialMonitor {
            query,
            search,
            cursors,
            queue,
            clock,
            archive: None,
        }))
    }

    /// Archives each raw search page (as the webhooks archive their bodies) before enqueuing;
    /// without an archive the messages carry no raw reference.
    pub fn with_archive(mut self, archive: Arc<dyn RawArchive>) -> Self {
        self.archive = Some(archive);
        self
    }

    /// The query it searches with.
    pub fn query(&self) -> &SearchQuery {
        &self.query
    }

    /// Polls once. The cursor moves only after the messages are enqueued, and not at all when
    /// X's rate limit cut the search short (the next poll reads those pages again).
    pub async fn poll(&self) -> Result<PollReport, MonitorError> {
        let since = self.cursors.cursor(CURSOR_NAME).await?;
        let now = self.clock.now();
        let mut outcome = self
            .search
            .search(&self.query, since.as_deref(), now)
            .await?;
        match &self.archive {
            Some(archive) => {
                for page in &outcome.pages {
                    archive.put(ChannelKind::Twitter, page).await?;
                }
            }
            None => outcome.messages.iter_mut().for_each(|m| m.raw = None),
        }
        if !outcome.messages.is_empty() {
            self.queue.enqueue(&outcome.messages).await?;
        }
        let rate_limited_until = match outcome.stopped {
            Some(SearchStop::RateLimited { reset_at }) => Some(reset_at),
            _ => None,
        };
        let newest = outcome
            .newest_id
            .filter(|n| since.as_deref().is_none_or(|s| id_is_newer(n, s)));
        let advance = rate_limited_until.is_none() && newest.is_some();
        let cursor = match newest {
            Some(newest) if advance => {
                self.cursors.save_cursor(CURSOR_NAME, &newest).await?;
                Some(newest)
            }
            _ => since,
        };
        let report = PollReport {
            enqueued: outcome.messages.len(),
            skipped: outcome.skipped,
            pages: outcome.pages.len(),
            cursor,
            cursor_advanced: advance,
            rate_limited: rate_limited_until.is_some(),
            rate_limited_until: rate_limited_until.flatten(),
        };
        tracing::info!(
            channel = "twitter",
            enqueued = report.enqueued,
            skipped = report.skipped,
            pages = report.pages,
            rate_limited = report.rate_limited,
            "social monitoring polled"
        );
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex as StdMutex;

    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderValue, Method, Uri};
    use axum::response::{IntoResponse, Response};
    use crossdesk_core::{Conversation, Direction, Visibility};

    use super::*;
    use crate::{Channel, TwitterChannel, VerifiedWebhook};

    /// The sample account of the invented-id fixtures.
    const ACCOUNT: &str = "3000000001";
    const HANDLE: &str = "sample_support";
    const BEARER: &str = "AAAA-test-app-bearer";

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-20T10:00:00Z")
            .unwrap()
            .to_utc()
    }

    fn fixture(name: &str) -> String {
        let path = format!("{}/../../events/twitter/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// An answer of X's API from `events/x-api/`.
    fn api_fixture(name: &str) -> String {
        let path = format!("{}/../../events/x-api/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn account() -> MonitoredAccount {
        MonitoredAccount::new(ACCOUNT, HANDLE).unwrap()
    }

    fn settings(keywords: &[&str], languages: &[&str]) -> MonitoringSettings {
        MonitoringSettings {
            enabled: true,
            keywords: keywords.iter().map(|s| s.to_string()).collect(),
            languages: languages.iter().map(|s| s.to_string()).collect(),
            ..MonitoringSettings::default()
        }
    }

    // ---- fakes ----

    /// One request the fake X API received.
    #[derive(Debug, Clone)]
    struct Recorded {
        method: String,
        path: String,
        query: Vec<(String, String)>,
        raw_query: String,
        authorization: Option<String>,
        body: Vec<u8>,
    }

    impl Recorded {
        fn param(&self, name: &str) -> Option<&str> {
            self.query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        }
    }

    /// What the fake answers, in order (the last one again when they run out).
    #[derive(Debug, Clone)]
    struct Canned {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    }

    fn ok(body: String) -> Canned {
        Canned {
            status: 200,
            headers: Vec::new(),
            body,
        }
    }

    fn status(status: u16, body: &str) -> Canned {
        Canned {
            status,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    #[derive(Clone, Default)]
    struct FakeX {
        requests: Arc<StdMutex<Vec<Recorded>>>,
        answers: Arc<StdMutex<VecDeque<Canned>>>,
    }

    impl FakeX {
        fn requests(&self) -> Vec<Recorded> {
            self.requests.lock().unwrap().clone()
        }

        fn answer_next(&self, canned: Canned) {
            self.answers.lock().unwrap().push_back(canned);
        }
    }

    async fn answer(
        State(fake): State<FakeX>,
        method: Method,
        uri: Uri,
        headers: axum::http::HeaderMap,
        body: Bytes,
    ) -> Response {
        let raw_query = uri.query().unwrap_or_default().to_string();
        fake.requests.lock().unwrap().push(Recorded {
            method: method.to_string(),
            path: uri.path().to_string(),
            query: form_urlencoded::parse(raw_query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
            raw_query,
            authorization: headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body: body.to_vec(),
        });
        let canned = {
            let mut answers = fake.answers.lock().unwrap();
            if answers.len() > 1 {
                answers.pop_front().unwrap()
            } else {
                answers.front().cloned().expect("the fake X has an answer")
            }
        };
        let code = axum::http::StatusCode::from_u16(canned.status).unwrap();
        let mut response = (code, canned.body).into_response();
        response.headers_mut().insert(
            "content-type",
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        for (name, value) in canned.headers {
            response
                .headers_mut()
                .insert(name, HeaderValue::from_str(&value).unwrap());
        }
        response
    }

    /// Starts a fake X API on `127.0.0.1:0` answering the canned answers in order.
    async fn fake_x(answers: Vec<Canned>) -> (Url, FakeX) {
        let fake = FakeX::default();
        for canned in answers {
            fake.answer_next(canned);
        }
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (Url::parse(&format!("http://{addr}")).unwrap(), fake)
    }

    #[derive(Default)]
    struct MemoryCursors(StdMutex<std::collections::BTreeMap<String, String>>);

    #[async_trait]
    impl CursorStore for MemoryCursors {
        async fn cursor(&self, name: &str) -> Result<Option<String>, StoreError> {
            Ok(self.0.lock().unwrap().get(name).cloned())
        }

        async fn save_cursor(&self, name: &str, value: &str) -> Result<(), StoreError> {
            self.0
                .lock()
                .unwrap()
                .insert(name.to_string(), value.to_string());
            Ok(())
        }
    }

    #[derive(Default)]
    struct MemoryQueue {
        batches: StdMutex<Vec<Vec<Message>>>,
        fail: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl InboundQueue for MemoryQueue {
        async fn enqueue(&self, messages: &[Message]) -> Result<(), QueueError> {
            if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(QueueError::Unavailable("queue down".into()));
            }
            self.batches.lock().unwrap().push(messages.to_vec());
            Ok(())
        }
    }

    struct FixedClock;

    impl Clock for FixedClock {
        fn now(&self) -> DateTime<Utc> {
            now()
        }
    }

    struct Rig {
        monitor: SocialMonitor,
        fake: FakeX,
        cursors: Arc<MemoryCursors>,
        queue: Arc<MemoryQueue>,
    }

    async fn rig(auth: AppAuth, answers: Vec<Canned>) -> Rig {
        let (url, fake) = fake_x(answers).await;
        let search = TwitterSearch::new(url, auth, account(), reqwest::Client::new());
        let cursors = Arc::new(MemoryCursors::default());
        let queue = Arc::new(MemoryQueue::default());
        let monitor = SocialMonitor::new(
            &settings(&["Acme Rocket Boots", "Acme App"], &["de", "en"]),
            search,
            cursors.clone(),
            queue.clone(),
            Arc::new(FixedClock),
        )
        .unwrap()
        .expect("enabled");
        Rig {
            monitor,
            fake,
            cursors,
            queue,
        }
    }

    fn bearer() -> AppAuth {
        AppAuth::Bearer(SecretString::from(BEARER))
    }

    #[test]
    fn reads_one_search_page_without_the_network() {
        let body = api_fixture("recent-search.json");
        let outcome = read_search_page(&account(), body.as_bytes(), now()).unwrap();
        assert_eq!((outcome.messages.len(), outcome.skipped), (2, 2));
        assert!(outcome
            .messages
            .iter()
            .all(|m| m.monitoring && m.author.platform_id != ACCOUNT));
        assert_eq!(outcome.pages, vec![body.into_bytes()]);
        assert!(read_search_page(&account(), b"[1", now()).is_none());
    }

    // ---- settings and query ----

    #[test]
    fn builds_the_documented_query() {
        let query = settings(&["Acme", "Rocket Boots"], &["de", "EN"])
            .query(&account())
            .unwrap();
        assert_eq!(
            query.as_str(),
            "(\"Acme\" OR \"Rocket Boots\") -from:3000000001 -@sample_support -is:retweet \
             (lang:de OR lang:en)"
        );
        assert_eq!(query.max_results(), 100);
    }

    #[test]
    fn quotes_and_escapes_keywords_and_can_keep_retweets() {
        let mut s = settings(&["  say \"hi\" ", "back\\slash"], &[]);
        s.exclude_retweets = false;
        s.max_results_per_poll = 10;
        let query = s.query(&account()).unwrap();
        assert_eq!(
            query.as_str(),
            r#"("say \"hi\"" OR "back\\slash") -from:3000000001 -@sample_support"#
        );
        assert_eq!(query.max_results(), 10);
    }

    #[test]
    fn refuses_a_query_over_xs_512_character_limit() {
        let keywords: Vec<String> = (0..30).map(|i| format!("Acme product {i:02}")).collect();
        let keywords: Vec<&str> = keywords.iter().map(String::as_str).collect();
        let err = settings(&keywords, &["de", "en"])
            .query(&account())
            .unwrap_err();
        assert!(matches!(err, SettingsError::QueryTooLong { chars } if chars > 512));
        assert!(err.to_string().contains("512"), "{err}");
        // Just under the limit is accepted, counted in characters rather than bytes.
        let long = "ü".repeat(128);
        let q = settings(&[&long, &long, &long], &[])
            .query(&account())
            .unwrap();
        assert!(q.as_str().chars().count() <= MAX_QUERY_CHARS);
        assert!(q.as_str().len() > MAX_QUERY_CHARS);
    }

    #[test]
    fn refuses_settings_that_make_no_valid_search() {
        let q = |s: MonitoringSettings| s.query(&account()).unwrap_err();
        assert_eq!(q(settings(&[], &[])), SettingsError::NoKeywords);
        assert!(matches!(
            q(settings(&["  "], &[])),
            SettingsError::BadKeyword { .. }
        ));
        assert!(matches!(
            q(settings(&["a\nb"], &[])),
            SettingsError::BadKeyword { .. }
        ));
        assert!(matches!(
            q(settings(&["x"], &["lang:en) OR (x"])),
            SettingsError::BadLanguage(_)
        ));
        for n in [0, 9, 101, 255] {
            let mut s = settings(&["Acme"], &[]);
            s.max_results_per_poll = n;
            assert_eq!(q(s), SettingsError::MaxResults(n));
        }
        assert!(settings(&["x"], &["pt-br", "und"])
            .query(&account())
            .is_ok());
    }

    #[test]
    fn settings_default_to_off_and_refuse_unknown_fields() {
        let default = MonitoringSettings::default();
        assert!(!default.enabled && default.keywords.is_empty() && default.exclude_retweets);
        assert_eq!(default.max_results_per_poll, 100);
        let read: MonitoringSettings =
            serde_json::from_value(serde_json::json!({"enabled": true, "keywords": ["Acme"]}))
                .unwrap();
        assert!(read.enabled && read.exclude_retweets);
        assert_eq!(read.max_results_per_poll, 100);
        assert!(serde_json::from_value::<MonitoringSettings>(
            serde_json::json!({"keyword": ["Acme"]})
        )
        .is_err());
    }

    #[test]
    fn reads_settings_and_the_account_from_the_environment() {
        let env = |name: &str| match name {
            KEYWORDS_VAR => Some(" Acme , Acme App,, ".to_string()),
            LANGUAGES_VAR => Some("de,en".to_string()),
            ACCOUNT_ID_VAR => Some("3000000001".to_string()),
            ACCOUNT_HANDLE_VAR => Some("@sample_support".to_string()),
            INTERVAL_VAR => Some("60".to_string()),
            _ => None,
        };
        let s = MonitoringSettings::from_lookup(env);
        assert!(s.enabled);
        assert_eq!(s.keywords, ["Acme", "Acme App"]);
        assert_eq!(s.languages, ["de", "en"]);
        assert_eq!(MonitoredAccount::from_lookup(env).unwrap(), account());
        assert_eq!(interval_from_lookup(env).unwrap(), Duration::from_secs(60));
        assert!(!MonitoringSettings::from_lookup(|_| None).enabled);
        assert_eq!(
            interval_from_lookup(|_| None).unwrap(),
            Duration::from_secs(DEFAULT_INTERVAL_SECS)
        );
        assert!(interval_from_lookup(|_| Some("5".into())).is_err());
    }

    #[test]
    fn refuses_a_malformed_account() {
        assert!(MonitoredAccount::new("", HANDLE).is_err());
        assert!(MonitoredAccount::new("12a", HANDLE).is_err());
        assert!(MonitoredAccount::new(ACCOUNT, "").is_err());
        assert!(MonitoredAccount::new(ACCOUNT, "bad handle").is_err());
        assert!(MonitoredAccount::new(ACCOUNT, "a_handle_too_long_").is_err());
        assert_eq!(account().handle(), HANDLE);
    }

    #[test]
    fn compares_x_ids_numerically() {
        assert!(id_is_newer("1859000000000000410", "1859000000000000390"));
        assert!(id_is_newer("10", "9"));
        assert!(!id_is_newer("9", "10"));
        assert!(!id_is_newer("42", "42"));
    }

    // ---- mapping ----

    #[test]
    fn maps_a_post_exactly_as_the_mention_webhook_does() {
        let body = fixture("xaa-post-mention.json");
        let webhook: Value = serde_json::from_str(&body).unwrap();
        let event = &webhook["data"];
        let account = event["filter"]["user_id"].as_str().unwrap();
        let mention = TwitterChannel::new(SecretString::from("unused"))
            .parse(&VerifiedWebhook::new(body.as_bytes()), now())
            .unwrap()
            .remove(0);
        let found = v2_post_message(
            &event["payload"],
            account,
            &event["includes"],
            RawRef::of(b"page"),
            now(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(found.channel, mention.channel);
        assert_eq!(found.platform_message_id, mention.platform_message_id);
        assert_eq!(found.dedup_key(), mention.dedup_key());
        assert_eq!(found.conversation, mention.conversation);
        assert_eq!(found.author, mention.author);
        assert_eq!(found.text, mention.text);
    }

    // ---- polling against a fake X ----

    #[tokio::test]
    async fn first_poll_reads_one_page_and_turns_posts_naming_the_brand_into_monitoring_messages() {
        let r = rig(bearer(), vec![ok(api_fixture("recent-search.json"))]).await;
        let report = r.monitor.poll().await.unwrap();

        let requests = r.fake.requests();
        assert_eq!(requests.len(), 1, "no cursor: only the newest page");
        let request = &requests[0];
        assert_eq!(request.method, "GET");
        assert_eq!(request.path, "/2/tweets/search/recent");
        assert_eq!(
            request.authorization.as_deref(),
            Some("Bearer AAAA-test-app-bearer")
        );
        assert_eq!(
            request.param("query"),
            Some(
                "(\"Acme Rocket Boots\" OR \"Acme App\") -from:3000000001 -@sample_support \
                 -is:retweet (lang:de OR lang:en)"
            )
        );
        assert!(
            request.raw_query.contains("%20-from%3A3000000001%20"),
            "{}",
            request.raw_query
        );
        assert_eq!(request.param("max_results"), Some("100"));
        assert_eq!(request.param("since_id"), None);
        assert_eq!(request.param("next_token"), None);
        assert_eq!(request.param("tweet.fields"), Some(TWEET_FIELDS));
        assert!(TWEET_FIELDS.starts_with(
            "created_at,author_id,conversation_id,in_reply_to_user_id,referenced_tweets,lang"
        ));
        assert_eq!(request.param("expansions"), Some("author_id"));
        assert_eq!(request.param("user.fields"), Some("username,name"));

        // The account's own post, and a reply mentioning it, are left to the webhook.
        assert_eq!(report.enqueued, 2);
        assert_eq!(report.skipped, 2);
        assert!(report.cursor_advanced && !report.rate_limited);
        assert_eq!(report.cursor.as_deref(), Some("1859000000000000410"));
        let batches = r.queue.batches.lock().unwrap().clone();
        assert_eq!(batches.len(), 1, "one batch");
        let messages = &batches[0];
        let ids: Vec<_> = messages
            .iter()
            .map(|m| m.platform_message_id.as_deref().unwrap())
            .collect();
        assert_eq!(ids, ["1859000000000000410", "1859000000000000390"]);
        for m in messages {
            assert!(m.monitoring);
            assert_eq!(m.channel, ChannelKind::Twitter);
            assert_eq!(m.direction, Direction::Inbound);
            assert_eq!(m.visibility, Visibility::Public);
            assert!(m.delivery.is_none());
            assert!(m.raw.is_none(), "no archive: no raw reference");
        }
        assert_eq!(
            messages[0].text,
            "Ordered the Acme Rocket Boots a week ago & still no shipping mail. Anyone else?"
        );
        assert_eq!(messages[0].author.handle.as_deref(), Some("alex_example"));
        assert_eq!(
            messages[0].sent_at.to_rfc3339(),
            "2026-11-20T09:58:12+00:00"
        );
        // A reply between two customers threads like a reply the webhook would bring.
        assert_eq!(
            messages[1].conversation,
            Conversation::TweetThread {
                conversation_id: "1859000000000000380".into(),
                user_id: "4000000003".into(),
            }
        );
        assert_eq!(messages[1].replies_to, ["1859000000000000380"]);
        assert_eq!(
            r.cursors
                .0
                .lock()
                .unwrap()
                .get(CURSOR_NAME)
                .map(String::as_str),
            Some("1859000000000000410")
        );
    }

    #[tokio::test]
    async fn next_poll_searches_since_the_cursor_and_follows_next_token() {
        let r = rig(
            bearer(),
            vec![
                ok(api_fixture("recent-search.json")),
                ok(api_fixture("recent-search-last-page.json")),
            ],
        )
        .await;
        r.cursors
            .save_cursor(CURSOR_NAME, "1859000000000000300")
            .await
            .unwrap();
        let report = r.monitor.poll().await.unwrap();
        let requests = r.fake.requests();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].param("since_id"), Some("1859000000000000300"));
        assert_eq!(requests[0].param("next_token"), None);
        assert_eq!(requests[1].param("since_id"), Some("1859000000000000300"));
        assert_eq!(
            requests[1].param("next_token"),
            Some("b26v89c19zqg8o3fpzhkzq9ilm8wgw5j0yvx8bw7rgeot")
        );
        assert_eq!(report.pages, 2);
        assert_eq!(report.enqueued, 3);
        assert_eq!(report.cursor.as_deref(), Some("1859000000000000410"));

        // The poll after that asks only for what is newer still.
        let report = r.monitor.poll().await.unwrap();
        let requests = r.fake.requests();
        assert_eq!(requests[2].param("since_id"), Some("1859000000000000410"));
        assert_eq!(report.cursor.as_deref(), Some("1859000000000000410"));
        assert!(!report.cursor_advanced, "nothing newer");
    }

    #[tokio::test]
    async fn an_empty_result_keeps_the_cursor_and_enqueues_nothing() {
        let r = rig(bearer(), vec![ok(api_fixture("recent-search-empty.json"))]).await;
        r.cursors.save_cursor(CURSOR_NAME, "77").await.unwrap();
        let report = r.monitor.poll().await.unwrap();
        assert_eq!(report.enqueued, 0);
        assert_eq!(report.cursor.as_deref(), Some("77"));
        assert!(r.queue.batches.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_rate_limit_stops_the_poll_keeps_the_cursor_and_is_reported() {
        let mut limited = status(
            429,
            r#"{"title":"Too Many Requests","detail":"Too Many Requests","type":"about:blank","status":429}"#,
        );
        limited
            .headers
            .push(("x-rate-limit-reset", "1795168800".into()));
        limited.headers.push(("x-rate-limit-remaining", "0".into()));
        let r = rig(
            bearer(),
            vec![ok(api_fixture("recent-search.json")), limited],
        )
        .await;
        r.cursors
            .save_cursor(CURSOR_NAME, "1859000000000000300")
            .await
            .unwrap();
        let report = r.monitor.poll().await.unwrap();
        assert!(report.rate_limited);
        assert_eq!(
            report.rate_limited_until,
            DateTime::from_timestamp(1_795_168_800, 0)
        );
        // The first page's messages are enqueued (the writer absorbs them when read again)...
        assert_eq!(report.enqueued, 2);
        // ...but the cursor stays, so the unread older pages are read on the next poll.
        assert!(!report.cursor_advanced);
        assert_eq!(report.cursor.as_deref(), Some("1859000000000000300"));
        assert_eq!(
            r.cursors
                .0
                .lock()
                .unwrap()
                .get(CURSOR_NAME)
                .map(String::as_str),
            Some("1859000000000000300")
        );
    }

    #[tokio::test]
    async fn server_errors_are_retryable_and_leave_everything_untouched() {
        let r = rig(
            bearer(),
            vec![status(503, r#"{"title":"Service Unavailable","detail":"Service Unavailable","type":"about:blank","status":503}"#)],
        )
        .await;
        let err = r.monitor.poll().await.unwrap_err();
        assert!(err.is_retryable(), "{err}");
        assert!(
            matches!(err, MonitorError::Search(SearchError::Transient { ref code, .. }) if code == "x_503")
        );
        assert!(r.queue.batches.lock().unwrap().is_empty());
        assert!(r.cursors.0.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn rejected_credentials_need_reauthorization() {
        for code in [401, 403] {
            let r = rig(
                bearer(),
                vec![status(code, r#"{"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"}"#)],
            )
            .await;
            let err = r.monitor.poll().await.unwrap_err();
            assert!(!err.is_retryable());
            assert!(
                matches!(
                    err,
                    MonitorError::Search(SearchError::NeedsReauthorization { .. })
                ),
                "{code}: {err}"
            );
            assert!(err.to_string().contains("re-authorize"), "{err}");
            assert!(!err.to_string().contains(BEARER));
        }
    }

    #[tokio::test]
    async fn a_query_x_refuses_is_a_permanent_error() {
        let r = rig(
            bearer(),
            vec![status(400, r#"{"errors":[{"parameters":{"query":["x"]},"message":"There were errors processing your request: Reference to invalid operator"}],"title":"Invalid Request","detail":"One or more parameters to your request was invalid.","type":"https://api.twitter.com/2/problems/invalid-request"}"#)],
        )
        .await;
        let err = r.monitor.poll().await.unwrap_err();
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("invalid operator"), "{err}");
    }

    #[tokio::test]
    async fn the_cursor_moves_only_after_the_messages_are_enqueued() {
        let r = rig(bearer(), vec![ok(api_fixture("recent-search.json"))]).await;
        r.queue
            .fail
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let err = r.monitor.poll().await.unwrap_err();
        assert!(matches!(err, MonitorError::Queue(_)) && err.is_retryable());
        assert!(r.cursors.0.lock().unwrap().is_empty(), "cursor unchanged");
        r.queue
            .fail
            .store(false, std::sync::atomic::Ordering::SeqCst);
        let report = r.monitor.poll().await.unwrap();
        assert_eq!(report.enqueued, 2);
        assert!(report.cursor_advanced);
    }

    #[tokio::test]
    async fn fetches_the_app_bearer_token_once_with_client_credentials() {
        let token = ok(r#"{"token_type":"bearer","access_token":"AAAA-fetched"}"#.into());
        let page = ok(api_fixture("recent-search-empty.json"));
        let r = rig(
            AppAuth::ClientCredentials {
                consumer_key: SecretString::from("ck key"),
                consumer_secret: SecretString::from("cs/secret"),
            },
            vec![token, page],
        )
        .await;
        r.monitor.poll().await.unwrap();
        r.monitor.poll().await.unwrap();
        let requests = r.fake.requests();
        assert_eq!(requests.len(), 3, "{requests:?}");
        assert_eq!(requests[0].method, "POST");
        assert_eq!(requests[0].path, "/oauth2/token");
        assert_eq!(requests[0].body, b"grant_type=client_credentials");
        let basic = base64::engine::general_purpose::STANDARD.encode("ck+key:cs%2Fsecret");
        assert_eq!(
            requests[0].authorization.as_deref(),
            Some(format!("Basic {basic}").as_str())
        );
        for search in &requests[1..] {
            assert_eq!(search.path, "/2/tweets/search/recent");
            assert_eq!(search.authorization.as_deref(), Some("Bearer AAAA-fetched"));
        }
    }

    #[derive(Default)]
    struct MemoryArchive(StdMutex<Vec<Vec<u8>>>);

    #[async_trait]
    impl RawArchive for MemoryArchive {
        async fn put(&self, channel: ChannelKind, body: &[u8]) -> Result<RawRef, ArchiveError> {
            assert_eq!(channel, ChannelKind::Twitter);
            self.0.lock().unwrap().push(body.to_vec());
            Ok(RawRef::of(body))
        }

        async fn get(&self, _raw: &RawRef) -> Result<Option<Vec<u8>>, ArchiveError> {
            Ok(None)
        }
    }

    #[tokio::test]
    async fn archives_each_page_and_references_it_from_its_messages() {
        let page = api_fixture("recent-search.json");
        let (url, _fake) = fake_x(vec![ok(page.clone())]).await;
        let search = TwitterSearch::new(url, bearer(), account(), reqwest::Client::new());
        let queue = Arc::new(MemoryQueue::default());
        let archive = Arc::new(MemoryArchive::default());
        let monitor = SocialMonitor::new(
            &settings(&["Acme"], &[]),
            search,
            Arc::new(MemoryCursors::default()),
            queue.clone(),
            Arc::new(FixedClock),
        )
        .unwrap()
        .unwrap()
        .with_archive(archive.clone());
        monitor.poll().await.unwrap();
        assert_eq!(*archive.0.lock().unwrap(), vec![page.as_bytes().to_vec()]);
        for m in &queue.batches.lock().unwrap()[0] {
            assert_eq!(m.raw, Some(RawRef::of(page.as_bytes())));
        }
    }

    #[tokio::test]
    async fn gives_up_pages_past_the_cap_and_still_advances() {
        let (url, fake) = fake_x(vec![ok(api_fixture("recent-search.json"))]).await;
        let search =
            TwitterSearch::new(url, bearer(), account(), reqwest::Client::new()).with_max_pages(1);
        let outcome = search
            .search(
                &settings(&["Acme"], &[]).query(&account()).unwrap(),
                Some("1859000000000000300"),
                now(),
            )
            .await
            .unwrap();
        assert_eq!(fake.requests().len(), 1);
        assert_eq!(outcome.stopped, Some(SearchStop::PageCap { pages: 1 }));
        assert_eq!(outcome.newest_id.as_deref(), Some("1859000000000000410"));
    }

    #[tokio::test]
    async fn a_disabled_monitor_is_not_built() {
        let (url, _fake) = fake_x(vec![ok(String::new())]).await;
        let search = TwitterSearch::new(url, bearer(), account(), reqwest::Client::new());
        let monitor = SocialMonitor::new(
            &MonitoringSettings::default(),
            search,
            Arc::new(MemoryCursors::default()),
            Arc::new(MemoryQueue::default()),
            Arc::new(FixedClock),
        )
        .unwrap();
        assert!(monitor.is_none());
    }
}
