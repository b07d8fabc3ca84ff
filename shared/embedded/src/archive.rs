//! [`SqliteArchive`]: raw webhook payloads, content-addressed, in the SQLite database.

use std::path::Path;

use async_trait::async_trait;
use chrono::Utc;
use crossdesk_core::{ArchiveError, ChannelKind, RawArchive, RawRef};
use rusqlite::{params, OptionalExtension};

use crate::db::{to_nanos, Database};

/// A [`RawArchive`] in a SQLite database: one row per distinct payload, keyed by
/// [`RawRef::of`] its bytes.
#[derive(Debug, Clone)]
pub struct SqliteArchive {
    db: Database,
}

impl SqliteArchive {
    /// Opens (creating when missing) the database file at `path`.
    pub fn open(path: &Path) -> Result<Self, ArchiveError> {
        Ok(SqliteArchive::new(Database::open(path)?))
    }

    /// A fresh, private archive in memory, for tests.
    pub fn in_memory() -> Result<Self, ArchiveError> {
        Ok(SqliteArchive::new(Database::in_memory()?))
    }

    /// An archive in an already opened database (shared with the store and the queue).
    pub fn new(db: Database) -> Self {
        SqliteArchive { db }
    }
}

#[async_trait]
impl RawArchive for SqliteArchive {
    async fn put(&self, channel: ChannelKind, body: &[u8]) -> Result<RawRef, ArchiveError> {
        let raw = RawRef::of(body);
        let key = raw.0.clone();
        let body = body.to_vec();
        let now = to_nanos(Utc::now())?;
        self.db
            .write(move |conn| {
                conn.prepare_cached(
                    "INSERT INTO raw_payloads (ref, channel, body, stored_at) \
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT (ref) DO NOTHING",
                )?
                .execute(params![key, channel.as_str(), body, now])?;
                Ok(())
            })
            .await?;
        Ok(raw)
    }

    async fn get(&self, raw: &RawRef) -> Result<Option<Vec<u8>>, ArchiveError> {
        let key = raw.0.clone();
        Ok(self
            .db
            .call(move |conn| {
                Ok(conn
                    .prepare_cached("SELECT body FROM raw_payloads WHERE ref = ?1")?
                    .query_row(params![key], |row| row.get(0))
                    .optional()?)
            })
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stores_a_payload_under_its_content_address() {
        let archive = SqliteArchive::in_memory().unwrap();
        let body = br#"{"object":"page","entry":[]}"#;
        let raw = archive.put(ChannelKind::Facebook, body).await.unwrap();
        assert_eq!(raw, RawRef::of(body));
        assert!(raw.0.starts_with("sha256:"));
        assert_eq!(archive.get(&raw).await.unwrap().as_deref(), Some(&body[..]));
    }

    #[tokio::test]
    async fn storing_the_same_bytes_twice_is_a_no_op() {
        let archive = SqliteArchive::in_memory().unwrap();
        let first = archive.put(ChannelKind::Email, b"raw mail").await.unwrap();
        let second = archive.put(ChannelKind::Chat, b"raw mail").await.unwrap();
        assert_eq!(first, second);
        let rows: i64 = archive
            .db
            .call(|conn| Ok(conn.query_row("SELECT COUNT(*) FROM raw_payloads", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(rows, 1);
    }

    #[tokio::test]
    async fn unknown_payload_reads_as_none() {
        let archive = SqliteArchive::in_memory().unwrap();
        assert_eq!(
            archive.get(&RawRef::of(b"never stored")).await.unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn empty_payload_round_trips() {
        let archive = SqliteArchive::in_memory().unwrap();
        let raw = archive.put(ChannelKind::Twitter, b"").await.unwrap();
        assert_eq!(archive.get(&raw).await.unwrap(), Some(Vec::new()));
    }
}
