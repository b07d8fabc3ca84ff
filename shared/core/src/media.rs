//! Attachments fetched at once. Meta's and X's media URLs expire within hours or days, so the
//! ticket writer copies each file the platform serves into Crossdesk's own media store as the
//! message arrives, and agents get short-lived links to that copy.
//!
//! The [`AttachmentCollector`] decides what to fetch and records the result on the attachment:
//! a copy (`object_ref`, `sha256`, `size`, `content_type`) or, after retries, why there is none
//! (`fetch_error`). A file is never dropped silently. The ports ([`MediaFetcher`],
//! [`MediaStore`]) are implemented at the edge: an HTTP fetcher with an SSRF guard, a directory
//! (local stack) or S3 (AWS).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use thiserror::Error;
use tracing::{info, warn};

use crate::model::{Attachment, AttachmentKind, ChannelKind, Message};

/// The prefix of a media reference: `media:sha256:<64 hex>`.
const MEDIA_REF_PREFIX: &str = "media:sha256:";

/// Content types a browser may display inline from a Crossdesk link; every other file is
/// served as a download (`Content-Disposition: attachment`), so a crafted HTML or SVG file
/// cannot run script in the agent's browser.
pub const INLINE_CONTENT_TYPES: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "video/mp4",
    "audio/mpeg",
    "audio/mp4",
    "audio/aac",
    "audio/ogg",
];

/// The type recorded when neither the server nor the platform names one.
pub const UNKNOWN_CONTENT_TYPE: &str = "application/octet-stream";

/// The media reference of a copy with this SHA-256 (hex): `media:sha256:<hex>`.
pub fn media_ref(sha256_hex: &str) -> String {
    format!("{MEDIA_REF_PREFIX}{sha256_hex}")
}

/// The SHA-256 (lower-case hex) a media reference names; `None` for anything else (an email
/// part reference, a malformed or hostile value).
pub fn media_ref_digest(object_ref: &str) -> Option<&str> {
    object_ref
        .strip_prefix(MEDIA_REF_PREFIX)
        .filter(|hex| is_sha256_hex(hex))
}

/// Whether `text` is a SHA-256 in lower-case hex: what names a copy in every media store.
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether a file of this type may be shown inline (see [`INLINE_CONTENT_TYPES`]).
pub fn displays_inline(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    INLINE_CONTENT_TYPES.contains(&essence.as_str())
}

/// The `Content-Disposition` of a download: `attachment; filename="…"` with the name reduced
/// to safe characters (no quotes, control characters or path), so a hostile file name cannot
/// inject a header.
pub fn download_disposition(name: &str) -> String {
    let safe: String = name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ' | '(' | ')'))
        .take(100)
        .collect();
    match safe.trim() {
        "" => "attachment".to_string(),
        safe => format!("attachment; filename=\"{safe}\""),
    }
}

/// A file as downloaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedMedia {
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// The `Content-Type` the server answered with (without parameters), if any.
    pub content_type: Option<String>,
}

/// Why a file could not be downloaded.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum FetchError {
    /// A passing failure (network, timeout, 429, 5xx): trying again may succeed.
    #[error("download failed: {0}")]
    Transient(String),
    /// The server refused for good (404, 403, an expired link) or the URL is unusable.
    #[error("download refused: {0}")]
    Permanent(String),
    /// The file is larger than the cap.
    #[error("file is larger than the {limit}-byte cap")]
    TooLarge {
        /// The cap, in bytes.
        limit: u64,
    },
    /// The URL or a redirect leads to a private, loopback or link-local address (SSRF guard).
    #[error("refused to fetch from a non-public address: {0}")]
    Blocked(String),
}

impl FetchError {
    /// Whether the same download may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, FetchError::Transient(_))
    }
}

/// Downloads a platform's media file.
#[async_trait]
pub trait MediaFetcher: Send + Sync {
    /// Downloads `url` (served for a message on `channel`), reading at most `max_bytes`.
    async fn fetch(
        &self,
        channel: ChannelKind,
        url: &str,
        max_bytes: u64,
    ) -> Result<FetchedMedia, FetchError>;
}

/// The media store failed; retrying may help (the writer hands the message back to its queue).
#[derive(Debug, Error)]
#[error("media store unavailable: {0}")]
pub struct MediaStoreError(pub String);

/// Where Crossdesk keeps its copies of attachments, by content address.
#[async_trait]
pub trait MediaStore: Send + Sync {
    /// Stores a file under `media_ref(sha256)`; storing the same bytes twice is a no-op.
    async fn put(
        &self,
        sha256_hex: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<(), MediaStoreError>;

    /// A link to a stored copy valid until `expires_at`: shown inline for `inline`, else
    /// served as a download named `file_name`.
    async fn link(
        &self,
        sha256_hex: &str,
        content_type: &str,
        file_name: Option<&str>,
        inline: bool,
        expires_at: DateTime<Utc>,
    ) -> Result<String, MediaStoreError>;
}

/// Caps and retries for attachment downloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaLimits {
    /// The largest single file copied, in bytes.
    pub max_file_bytes: u64,
    /// The most bytes copied for one message, all its files together.
    pub max_message_bytes: u64,
    /// Download attempts per file for passing failures.
    pub attempts: u32,
    /// The wait before the second attempt; it doubles after each further one.
    pub first_backoff: Duration,
}

impl Default for MediaLimits {
    fn default() -> Self {
        MediaLimits {
            max_file_bytes: 25 * 1024 * 1024,
            max_message_bytes: 50 * 1024 * 1024,
            attempts: 3,
            first_backoff: Duration::from_millis(500),
        }
    }
}

/// What collecting one message's attachments did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collected {
    /// Files copied.
    pub copied: usize,
    /// Files that could not be copied (each marked with its `fetch_error`).
    pub failed: usize,
}

/// Copies a message's platform-hosted attachments into the media store.
#[derive(Clone)]
pub struct AttachmentCollector {
    fetcher: Arc<dyn MediaFetcher>,
    store: Arc<dyn MediaStore>,
    limits: MediaLimits,
}

impl AttachmentCollector {
    /// A collector downloading with `fetcher` into `store` within `limits`.
    pub fn new(
        fetcher: Arc<dyn MediaFetcher>,
        store: Arc<dyn MediaStore>,
        limits: MediaLimits,
    ) -> Self {
        AttachmentCollector {
            fetcher,
            store,
            limits,
        }
    }

    /// Whether the message has a file to copy.
    pub fn wants(&self, message: &Message) -> bool {
        message.attachments.iter().any(needs_copy)
    }

    /// Copies every file of the message that needs it and records the outcome on each
    /// attachment. Download failures are recorded, not returned; only a failing media store is
    /// an error (the message should be tried again).
    pub async fn collect(&self, message: &mut Message) -> Result<Collected, MediaStoreError> {
        let mut budget = self.limits.max_message_bytes;
        let mut collected = Collected::default();
        let channel = message.channel;
        for attachment in message.attachments.iter_mut().filter(|a| needs_copy(a)) {
            let Some(url) = attachment.url.clone() else {
                continue;
            };
            let limit = self.limits.max_file_bytes.min(budget);
            if limit == 0 {
                attachment.fetch_error = Some(format!(
                    "not copied: the message's files exceed the {}-byte cap",
                    self.limits.max_message_bytes
                ));
                collected.failed += 1;
                continue;
            }
            match self.fetch_with_retries(channel, &url, limit).await {
                Ok(fetched) => {
                    let sha256 = hex::encode(Sha256::digest(&fetched.bytes));
                    let size = fetched.bytes.len() as u64;
                    let content_type = fetched
                        .content_type
                        .clone()
                        .or_else(|| attachment.content_type.clone())
                        .unwrap_or_else(|| UNKNOWN_CONTENT_TYPE.to_string());
                    self.store
                        .put(&sha256, fetched.bytes, &content_type)
                        .await?;
                    budget -= size.min(budget);
                    attachment.object_ref = Some(media_ref(&sha256));
                    attachment.sha256 = Some(sha256);
                    attachment.size = Some(size);
                    attachment.content_type = Some(content_type);
                    collected.copied += 1;
                }
                Err(e) => {
                    let reason = match &e {
                        FetchError::TooLarge { .. } if limit < self.limits.max_file_bytes => {
                            format!(
                                "not copied: the message's files exceed the {}-byte cap",
                                self.limits.max_message_bytes
                            )
                        }
                        other => other.to_string(),
                    };
                    warn!(%channel, error = %reason, "attachment not copied");
                    attachment.fetch_error = Some(reason);
                    collected.failed += 1;
                }
            }
        }
        if collected.copied + collected.failed > 0 {
            info!(
                %channel,
                copied = collected.copied,
                failed = collected.failed,
                "attachments collected"
            );
        }
        Ok(collected)
    }

    async fn fetch_with_retries(
        &self,
        channel: ChannelKind,
        url: &str,
        limit: u64,
    ) -> Result<FetchedMedia, FetchError> {
        let attempts = self.limits.attempts.max(1);
        let mut wait = self.limits.first_backoff;
        let mut attempt = 1;
        loop {
            match self.fetcher.fetch(channel, url, limit).await {
                Err(e) if e.is_retryable() && attempt < attempts => {
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                    attempt += 1;
                }
                Err(FetchError::Transient(reason)) => {
                    return Err(FetchError::Transient(format!(
                        "{reason} (gave up after {attempts} attempts)"
                    )))
                }
                other => return other,
            }
        }
    }
}

/// Whether an attachment is a platform-hosted file Crossdesk has no copy of yet (links, shared
/// locations and cards are pages, not files; an email's parts are already in the raw mail).
fn needs_copy(attachment: &Attachment) -> bool {
    let file = matches!(
        attachment.kind,
        AttachmentKind::Image
            | AttachmentKind::Video
            | AttachmentKind::Audio
            | AttachmentKind::File
            | AttachmentKind::Sticker
    );
    let remote = attachment
        .url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://") || u.starts_with("http://"));
    file && remote
        && attachment.object_ref.is_none()
        && attachment.sha256.is_none()
        && attachment.fetch_error.is_none()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;
    use crate::model::{Author, Conversation, Direction, MessageEvent, Visibility};
    use crate::MessageId;

    /// Answers each URL from a script, one answer per call, and counts calls.
    #[derive(Default)]
    struct ScriptedFetcher {
        answers: Mutex<HashMap<String, Vec<Result<FetchedMedia, FetchError>>>>,
        calls: Mutex<Vec<(String, u64)>>,
    }

    impl ScriptedFetcher {
        fn answer(self, url: &str, answers: Vec<Result<FetchedMedia, FetchError>>) -> Self {
            self.answers
                .lock()
                .unwrap()
                .insert(url.to_string(), answers);
            self
        }
        fn calls(&self) -> Vec<(String, u64)> {
            self.calls.lock().unwrap().clone()
        }
    }

    #[async_trait]
    impl MediaFetcher for ScriptedFetcher {
        async fn fetch(
            &self,
            _channel: ChannelKind,
            url: &str,
            max_bytes: u64,
        ) -> Result<FetchedMedia, FetchError> {
            self.calls
                .lock()
                .unwrap()
                .push((url.to_string(), max_bytes));
            let mut answers = self.answers.lock().unwrap();
            let list = answers.get_mut(url).expect("unexpected URL");
            let answer = list.remove(0);
            match answer {
                Ok(f) if f.bytes.len() as u64 > max_bytes => {
                    Err(FetchError::TooLarge { limit: max_bytes })
                }
                other => other,
            }
        }
    }

    #[derive(Default)]
    struct MemoryStore {
        files: Mutex<HashMap<String, (Vec<u8>, String)>>,
        fail: bool,
    }

    #[async_trait]
    impl MediaStore for MemoryStore {
        async fn put(
            &self,
            sha256_hex: &str,
            bytes: Vec<u8>,
            content_type: &str,
        ) -> Result<(), MediaStoreError> {
            if self.fail {
                return Err(MediaStoreError("bucket unreachable".into()));
            }
            self.files
                .lock()
                .unwrap()
                .insert(sha256_hex.to_string(), (bytes, content_type.to_string()));
            Ok(())
        }
        async fn link(
            &self,
            sha256_hex: &str,
            _content_type: &str,
            _file_name: Option<&str>,
            _inline: bool,
            _expires_at: DateTime<Utc>,
        ) -> Result<String, MediaStoreError> {
            Ok(format!("mem://{sha256_hex}"))
        }
    }

    fn file(bytes: &[u8], content_type: Option<&str>) -> Result<FetchedMedia, FetchError> {
        Ok(FetchedMedia {
            bytes: bytes.to_vec(),
            content_type: content_type.map(str::to_string),
        })
    }

    fn remote(kind: AttachmentKind, url: &str) -> Attachment {
        Attachment {
            kind,
            url: Some(url.to_string()),
            object_ref: None,
            name: None,
            size: None,
            content_type: None,
            sha256: None,
            fetch_error: None,
        }
    }

    fn message(attachments: Vec<Attachment>) -> Message {
        Message {
            id: MessageId::generate(),
            channel: ChannelKind::Facebook,
            platform_message_id: Some("m_1".into()),
            conversation: Conversation::DirectThread {
                account_id: "p".into(),
                user_id: "c".into(),
            },
            direction: Direction::Inbound,
            event: MessageEvent::Created,
            author: Author::default(),
            text: String::new(),
            attachments,
            visibility: Visibility::Private,
            sent_at: Utc::now(),
            received_at: Utc::now(),
            replies_to: Vec::new(),
            ticket_ref: None,
            subject: None,
            email: None,
            raw: None,
            signature_unverified: false,
            personal_data: Vec::new(),
            internal_note: false,
            monitoring: false,
            delivery: None,
        }
    }

    fn limits() -> MediaLimits {
        MediaLimits {
            max_file_bytes: 10,
            max_message_bytes: 15,
            attempts: 3,
            first_backoff: Duration::from_millis(1),
        }
    }

    fn collector(
        fetcher: ScriptedFetcher,
        store: MemoryStore,
    ) -> (AttachmentCollector, Arc<ScriptedFetcher>, Arc<MemoryStore>) {
        let fetcher = Arc::new(fetcher);
        let store = Arc::new(store);
        (
            AttachmentCollector::new(fetcher.clone(), store.clone(), limits()),
            fetcher,
            store,
        )
    }

    #[tokio::test]
    async fn copies_a_file_and_records_its_checksum_size_and_type() {
        let (c, _, store) = collector(
            ScriptedFetcher::default()
                .answer("https://cdn/a.jpg", vec![file(b"jpeg", Some("image/jpeg"))]),
            MemoryStore::default(),
        );
        let mut m = message(vec![remote(AttachmentKind::Image, "https://cdn/a.jpg")]);
        assert!(c.wants(&m));
        let done = c.collect(&mut m).await.unwrap();
        assert_eq!(
            done,
            Collected {
                copied: 1,
                failed: 0
            }
        );
        let a = &m.attachments[0];
        let sha = hex::encode(Sha256::digest(b"jpeg"));
        assert_eq!(a.sha256.as_deref(), Some(sha.as_str()));
        assert_eq!(a.object_ref, Some(media_ref(&sha)));
        assert_eq!(a.size, Some(4));
        assert_eq!(a.content_type.as_deref(), Some("image/jpeg"));
        assert_eq!(
            a.url.as_deref(),
            Some("https://cdn/a.jpg"),
            "the source stays known"
        );
        assert_eq!(
            store.files.lock().unwrap().get(&sha),
            Some(&(b"jpeg".to_vec(), "image/jpeg".to_string()))
        );
        assert!(!c.wants(&m), "a copied attachment is not fetched again");
    }

    #[tokio::test]
    async fn retries_passing_failures_then_copies() {
        let (c, fetcher, _) = collector(
            ScriptedFetcher::default().answer(
                "https://cdn/v.mp4",
                vec![
                    Err(FetchError::Transient("HTTP 503".into())),
                    Err(FetchError::Transient("timeout".into())),
                    file(b"mp4", None),
                ],
            ),
            MemoryStore::default(),
        );
        let mut m = message(vec![Attachment {
            content_type: Some("video/mp4".into()),
            ..remote(AttachmentKind::Video, "https://cdn/v.mp4")
        }]);
        c.collect(&mut m).await.unwrap();
        assert_eq!(fetcher.calls().len(), 3);
        assert_eq!(
            m.attachments[0].content_type.as_deref(),
            Some("video/mp4"),
            "the platform's type stands when the server names none"
        );
        assert!(m.attachments[0].sha256.is_some());
    }

    #[tokio::test]
    async fn a_download_that_keeps_failing_is_marked_not_dropped() {
        let (c, fetcher, _) = collector(
            ScriptedFetcher::default().answer(
                "https://cdn/a.jpg",
                (0..3)
                    .map(|_| Err(FetchError::Transient("HTTP 500".into())))
                    .collect(),
            ),
            MemoryStore::default(),
        );
        let mut m = message(vec![remote(AttachmentKind::Image, "https://cdn/a.jpg")]);
        let done = c.collect(&mut m).await.unwrap();
        assert_eq!(
            done,
            Collected {
                copied: 0,
                failed: 1
            }
        );
        assert_eq!(fetcher.calls().len(), 3, "three attempts");
        let a = &m.attachments[0];
        assert_eq!(
            a.fetch_error.as_deref(),
            Some("download failed: HTTP 500 (gave up after 3 attempts)")
        );
        assert_eq!(a.url.as_deref(), Some("https://cdn/a.jpg"));
        assert!(a.object_ref.is_none() && a.sha256.is_none());
        assert!(!c.wants(&m), "a marked attachment is not fetched again");
    }

    #[tokio::test]
    async fn permanent_refusals_and_blocked_addresses_are_not_retried() {
        let (c, fetcher, _) = collector(
            ScriptedFetcher::default()
                .answer(
                    "https://cdn/gone",
                    vec![Err(FetchError::Permanent("HTTP 404".into()))],
                )
                .answer(
                    "http://metadata/",
                    vec![Err(FetchError::Blocked("169.254.169.254".into()))],
                ),
            MemoryStore::default(),
        );
        let mut m = message(vec![
            remote(AttachmentKind::File, "https://cdn/gone"),
            remote(AttachmentKind::Image, "http://metadata/"),
        ]);
        c.collect(&mut m).await.unwrap();
        assert_eq!(fetcher.calls().len(), 2);
        assert_eq!(
            m.attachments[0].fetch_error.as_deref(),
            Some("download refused: HTTP 404")
        );
        assert_eq!(
            m.attachments[1].fetch_error.as_deref(),
            Some("refused to fetch from a non-public address: 169.254.169.254")
        );
    }

    #[tokio::test]
    async fn caps_each_file_and_the_whole_message() {
        let (c, fetcher, _) = collector(
            ScriptedFetcher::default()
                .answer("https://cdn/big", vec![file(&[0; 11], None)])
                .answer("https://cdn/one", vec![file(&[1; 9], None)])
                .answer("https://cdn/two", vec![file(&[2; 9], None)])
                .answer("https://cdn/three", vec![file(&[3; 6], None)]),
            MemoryStore::default(),
        );
        let mut m = message(vec![
            remote(AttachmentKind::File, "https://cdn/big"),
            remote(AttachmentKind::File, "https://cdn/one"),
            remote(AttachmentKind::File, "https://cdn/two"),
            remote(AttachmentKind::File, "https://cdn/three"),
        ]);
        let done = c.collect(&mut m).await.unwrap();
        assert_eq!(
            done,
            Collected {
                copied: 2,
                failed: 2
            }
        );
        let limits: Vec<u64> = fetcher.calls().iter().map(|(_, l)| *l).collect();
        assert_eq!(
            limits,
            vec![10, 10, 6, 6],
            "each fetch reads no more than what is left"
        );
        assert_eq!(
            m.attachments[0].fetch_error.as_deref(),
            Some("file is larger than the 10-byte cap")
        );
        assert!(m.attachments[1].sha256.is_some());
        assert_eq!(
            m.attachments[2].fetch_error.as_deref(),
            Some("not copied: the message's files exceed the 15-byte cap")
        );
        assert!(
            m.attachments[3].sha256.is_some(),
            "a smaller file still fits"
        );
    }

    #[tokio::test]
    async fn a_failing_media_store_is_an_error_so_the_message_is_tried_again() {
        let (c, _, _) = collector(
            ScriptedFetcher::default().answer("https://cdn/a.jpg", vec![file(b"x", None)]),
            MemoryStore {
                fail: true,
                ..MemoryStore::default()
            },
        );
        let mut m = message(vec![remote(AttachmentKind::Image, "https://cdn/a.jpg")]);
        assert!(c.collect(&mut m).await.is_err());
    }

    #[test]
    fn only_remote_files_without_a_copy_are_wanted() {
        let (c, _, _) = collector(ScriptedFetcher::default(), MemoryStore::default());
        let wanted = |a: Attachment| c.wants(&message(vec![a]));
        assert!(wanted(remote(AttachmentKind::Sticker, "https://cdn/s.png")));
        assert!(!wanted(remote(
            AttachmentKind::Link,
            "https://shop.example/p/1"
        )));
        assert!(!wanted(remote(AttachmentKind::Location, "geo:1,2")));
        assert!(!wanted(remote(AttachmentKind::Image, "file:///etc/passwd")));
        assert!(!wanted(Attachment {
            object_ref: Some("sha256:abc#part=1".into()),
            ..remote(AttachmentKind::File, "https://cdn/x")
        }));
    }

    #[test]
    fn media_refs_name_a_digest_and_nothing_else() {
        let sha = hex::encode(Sha256::digest(b"x"));
        assert_eq!(media_ref_digest(&media_ref(&sha)), Some(sha.as_str()));
        assert_eq!(media_ref_digest("media:sha256:../../etc/passwd"), None);
        assert_eq!(
            media_ref_digest(&format!("media:sha256:{}", sha.to_uppercase())),
            None
        );
        assert_eq!(media_ref_digest("sha256:abc#part=1"), None);
    }

    #[test]
    fn download_names_cannot_inject_headers() {
        assert_eq!(
            download_disposition("../../evil\"\r\nSet-Cookie: a=b.pdf"),
            "attachment; filename=\"evilSet-Cookie ab.pdf\""
        );
        assert_eq!(download_disposition("\"\""), "attachment");
    }

    #[test]
    fn only_plain_media_types_display_inline() {
        assert!(displays_inline("image/png"));
        assert!(displays_inline("Image/JPEG; charset=binary"));
        assert!(!displays_inline("image/svg+xml"));
        assert!(!displays_inline("text/html"));
        assert!(!displays_inline("application/pdf"));
    }
}
