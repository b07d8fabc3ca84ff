//! [`DirectoryMediaStore`]: the local stack's copies of attachments, one file per distinct
//! content under `<data dir>/media/sha256/<hex>`, served through short-lived signed links
//! (`/media/<hex>?…&expires=…&signature=…`, HMAC-SHA256 with a key of this process).

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crossdesk_core::media::{download_disposition, is_sha256_hex, MediaStore, MediaStoreError};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

/// Why a media link was not served.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum MediaLinkError {
    /// The link is malformed, altered or signed with another key (answer 403).
    #[error("invalid media link")]
    Invalid,
    /// The link's time is up (answer 403; ask the agent API for a new one).
    #[error("media link expired")]
    Expired,
    /// No such file (answer 404).
    #[error("no such media file")]
    NotFound,
    /// The file could not be read (answer 500).
    #[error("media file unreadable: {0}")]
    Unreadable(String),
}

/// A file a valid link asks for, with the headers to serve it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedMedia {
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// The `Content-Type` to answer with.
    pub content_type: String,
    /// The `Content-Disposition` to answer with (`inline`, or `attachment` with the file name).
    pub disposition: String,
}

/// Attachments in a directory, linked with signed, expiring URLs.
#[derive(Clone)]
pub struct DirectoryMediaStore {
    dir: PathBuf,
    key: [u8; 32],
}

impl std::fmt::Debug for DirectoryMediaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryMediaStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl DirectoryMediaStore {
    /// A store under `dir` (created on first write), signing links with `key`.
    pub fn new(dir: impl Into<PathBuf>, key: [u8; 32]) -> Self {
        DirectoryMediaStore {
            dir: dir.into(),
            key,
        }
    }

    fn path(&self, sha256_hex: &str) -> Result<PathBuf, MediaLinkError> {
        if !is_sha256_hex(sha256_hex) {
            return Err(MediaLinkError::Invalid);
        }
        Ok(self.dir.join("sha256").join(sha256_hex))
    }

    /// The MAC over a link's file and fields.
    fn mac(&self, sha256_hex: &str, fields: &[(&str, String)]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(sha256_hex.as_bytes());
        for (name, value) in fields {
            mac.update(b"\n");
            mac.update(name.as_bytes());
            mac.update(b"=");
            mac.update(value.as_bytes());
        }
        mac
    }

    /// Checks a link's query (as received, without `?`) and reads the file it names.
    pub async fn open(
        &self,
        sha256_hex: &str,
        query: &str,
        now: DateTime<Utc>,
    ) -> Result<ServedMedia, MediaLinkError> {
        let path = self.path(sha256_hex)?;
        let param = |name: &str| {
            form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        let fields = link_fields(
            &param("type").ok_or(MediaLinkError::Invalid)?,
            &param("disposition").ok_or(MediaLinkError::Invalid)?,
            &param("name").unwrap_or_default(),
            &param("expires").ok_or(MediaLinkError::Invalid)?,
        );
        let signature = param("signature")
            .and_then(|s| hex::decode(s).ok())
            .ok_or(MediaLinkError::Invalid)?;
        // Constant-time comparison.
        self.mac(sha256_hex, &fields)
            .verify_slice(&signature)
            .map_err(|_| MediaLinkError::Invalid)?;
        let expires: i64 = fields[3].1.parse().map_err(|_| MediaLinkError::Invalid)?;
        if now.timestamp() > expires {
            return Err(MediaLinkError::Expired);
        }
        let bytes = match tokio::fs::read(&path).await {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(MediaLinkError::NotFound)
            }
            Err(e) => return Err(MediaLinkError::Unreadable(e.to_string())),
        };
        let disposition = match fields[1].1.as_str() {
            "inline" => "inline".to_string(),
            _ => download_disposition(&fields[2].1),
        };
        Ok(ServedMedia {
            bytes,
            content_type: fields[0].1.clone(),
            disposition,
        })
    }
}

/// The signed fields of a link, in signing order.
fn link_fields(
    content_type: &str,
    disposition: &str,
    name: &str,
    expires: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("type", content_type.to_string()),
        ("disposition", disposition.to_string()),
        ("name", name.to_string()),
        ("expires", expires.to_string()),
    ]
}

async fn write_once(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if tokio::fs::try_exists(path).await? {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    // Write beside it, then rename: a reader never sees half a file.
    let partial = path.with_extension(format!("partial-{}", uuid::Uuid::now_v7().simple()));
    tokio::fs::write(&partial, bytes).await?;
    let file = tokio::fs::File::open(&partial).await?;
    file.sync_all().await?;
    tokio::fs::rename(&partial, path).await
}

#[async_trait]
impl MediaStore for DirectoryMediaStore {
    async fn put(
        &self,
        sha256_hex: &str,
        bytes: Vec<u8>,
        _content_type: &str,
    ) -> Result<(), MediaStoreError> {
        let path = self
            .path(sha256_hex)
            .map_err(|_| MediaStoreError(format!("not a SHA-256: {sha256_hex}")))?;
        write_once(&path, &bytes)
            .await
            .map_err(|e| MediaStoreError(format!("{}: {e}", path.display())))
    }

    async fn link(
        &self,
        sha256_hex: &str,
        content_type: &str,
        file_name: Option<&str>,
        inline: bool,
        expires_at: DateTime<Utc>,
    ) -> Result<String, MediaStoreError> {
        let disposition = if inline { "inline" } else { "attachment" };
        let fields = link_fields(
            content_type,
            disposition,
            file_name.unwrap_or(""),
            &expires_at.timestamp().to_string(),
        );
        let signature = hex::encode(self.mac(sha256_hex, &fields).finalize().into_bytes());
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in &fields {
            query.append_pair(name, value);
        }
        query.append_pair("signature", &signature);
        Ok(format!("/media/{sha256_hex}?{}", query.finish()))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    const SHA: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    fn store(dir: &Path) -> DirectoryMediaStore {
        DirectoryMediaStore::new(dir, [7; 32])
    }

    fn query(link: &str) -> &str {
        link.split_once('?').unwrap().1
    }

    #[tokio::test]
    async fn a_stored_file_is_served_through_its_link_until_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        s.put(SHA, b"hello".to_vec(), "image/png").await.unwrap();
        s.put(SHA, b"hello".to_vec(), "image/png").await.unwrap();
        let now = Utc::now();
        let link = s
            .link(
                SHA,
                "image/png",
                Some("x.png"),
                true,
                now + TimeDelta::minutes(15),
            )
            .await
            .unwrap();
        assert!(link.starts_with(&format!("/media/{SHA}?")));
        let served = s.open(SHA, query(&link), now).await.unwrap();
        assert_eq!(served.bytes, b"hello");
        assert_eq!(served.content_type, "image/png");
        assert_eq!(served.disposition, "inline");
        assert_eq!(
            s.open(SHA, query(&link), now + TimeDelta::minutes(16))
                .await,
            Err(MediaLinkError::Expired)
        );
    }

    #[tokio::test]
    async fn an_altered_or_foreign_link_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        s.put(SHA, b"<svg onload=alert(1)>".to_vec(), "image/svg+xml")
            .await
            .unwrap();
        let now = Utc::now();
        let link = s
            .link(
                SHA,
                "application/octet-stream",
                Some("a.svg"),
                false,
                now + TimeDelta::minutes(5),
            )
            .await
            .unwrap();
        let served = s.open(SHA, query(&link), now).await.unwrap();
        assert_eq!(served.disposition, "attachment; filename=\"a.svg\"");
        let altered = query(&link).replace("disposition=attachment", "disposition=inline");
        assert_eq!(
            s.open(SHA, &altered, now).await,
            Err(MediaLinkError::Invalid)
        );
        let other_key = DirectoryMediaStore::new(dir.path(), [8; 32]);
        assert_eq!(
            other_key.open(SHA, query(&link), now).await,
            Err(MediaLinkError::Invalid)
        );
        assert_eq!(
            s.open("../../etc/passwd", query(&link), now).await,
            Err(MediaLinkError::Invalid)
        );
        assert_eq!(s.open(SHA, "", now).await, Err(MediaLinkError::Invalid));
    }

    #[tokio::test]
    async fn a_missing_file_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        let now = Utc::now();
        let link = s
            .link(SHA, "image/png", None, true, now + TimeDelta::minutes(1))
            .await
            .unwrap();
        assert_eq!(
            s.open(SHA, query(&link), now).await,
            Err(MediaLinkError::NotFound)
        );
    }
}
