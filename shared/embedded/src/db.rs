//! The SQLite database file shared by the store, the queues and the archive: opening, pragmas,
//! schema, the blocking-call bridge and error classification.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use crossdesk_core::{ArchiveError, QueueError, StoreError};
use rusqlite::{Connection, ErrorCode, Transaction, TransactionBehavior};
use thiserror::Error;

/// The schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 4;

/// How long a writer waits for another connection's lock before giving up as unavailable.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS tickets (
    id               TEXT    PRIMARY KEY,
    status           TEXT    NOT NULL CHECK (status IN ('open', 'pending', 'solved')),
    channel          TEXT    NOT NULL,
    subject          TEXT    NOT NULL,
    contact_id       TEXT    NOT NULL,
    conversation_key TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    preview          TEXT    NOT NULL,
    message_count    INTEGER NOT NULL,
    related_tickets  TEXT    NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS tickets_by_activity ON tickets (updated_at DESC, id);
CREATE INDEX IF NOT EXISTS tickets_by_status ON tickets (status, updated_at DESC, id);

CREATE TABLE IF NOT EXISTS messages (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    id                  TEXT    NOT NULL UNIQUE,
    ticket_id           TEXT    NOT NULL REFERENCES tickets (id),
    channel             TEXT    NOT NULL,
    platform_message_id TEXT,
    sent_at             INTEGER NOT NULL,
    revised_at          INTEGER,
    body                TEXT    NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_platform_id ON messages (channel, platform_message_id);
CREATE INDEX IF NOT EXISTS messages_by_ticket ON messages (ticket_id, sent_at, seq);

CREATE TABLE IF NOT EXISTS conversation_keys (
    key       TEXT PRIMARY KEY,
    ticket_id TEXT NOT NULL REFERENCES tickets (id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS contacts (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT    NOT NULL UNIQUE,
    name       TEXT,
    created_at INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS contact_identities (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    identity   TEXT    NOT NULL UNIQUE,
    contact_id TEXT    NOT NULL REFERENCES contacts (id)
);
CREATE INDEX IF NOT EXISTS contact_identities_by_contact ON contact_identities (contact_id, seq);

CREATE TABLE IF NOT EXISTS queue_items (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    queue       TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    enqueued_at INTEGER NOT NULL,
    visible_at  INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    lease       TEXT,
    last_error  TEXT
);
CREATE INDEX IF NOT EXISTS queue_items_by_queue ON queue_items (queue, id);

CREATE TABLE IF NOT EXISTS dead_letters (
    id          INTEGER PRIMARY KEY,
    queue       TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    enqueued_at INTEGER NOT NULL,
    attempts    INTEGER NOT NULL,
    reason      TEXT    NOT NULL,
    dead_at     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_by_queue ON dead_letters (queue, id);

CREATE TABLE IF NOT EXISTS raw_payloads (
    ref       TEXT    PRIMARY KEY,
    channel   TEXT    NOT NULL,
    body      BLOB    NOT NULL,
    stored_at INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS channel_state (
    channel         TEXT    PRIMARY KEY,
    last_inbound_at INTEGER,
    reauth_code     TEXT,
    reauth_reason   TEXT,
    reauth_at       INTEGER
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS channel_checks (
    channel    TEXT    NOT NULL,
    check_name TEXT    NOT NULL,
    status     TEXT    NOT NULL CHECK (status IN ('ok', 'warning', 'failing')),
    reason     TEXT    NOT NULL,
    checked_at INTEGER NOT NULL,
    PRIMARY KEY (channel, check_name)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS event_deliveries (
    event_id     TEXT    NOT NULL,
    endpoint     TEXT    NOT NULL,
    delivered_at INTEGER NOT NULL,
    PRIMARY KEY (event_id, endpoint)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS failed_events (
    event_id  TEXT    PRIMARY KEY,
    body      TEXT    NOT NULL,
    failed_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS failed_events_by_time ON failed_events (failed_at DESC, event_id);

CREATE TABLE IF NOT EXISTS ticket_workflows (
    ticket_id          TEXT    PRIMARY KEY,
    contact_id         TEXT    NOT NULL,
    version            INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    first_response_due INTEGER,
    body               TEXT    NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ticket_workflows_by_activity ON ticket_workflows (updated_at DESC, ticket_id);
CREATE INDEX IF NOT EXISTS ticket_workflows_by_contact ON ticket_workflows (contact_id, updated_at DESC, ticket_id);
CREATE INDEX IF NOT EXISTS ticket_workflows_by_due ON ticket_workflows (first_response_due, ticket_id)
    WHERE first_response_due IS NOT NULL;

CREATE TABLE IF NOT EXISTS contact_links (
    source TEXT    PRIMARY KEY,
    target TEXT    NOT NULL,
    at     INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS contact_links_by_target ON contact_links (target, source);

CREATE TABLE IF NOT EXISTS link_suggestions (
    contact_id TEXT    NOT NULL,
    other_id   TEXT    NOT NULL,
    identity   TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    PRIMARY KEY (contact_id, other_id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS agent_preferences (
    agent_id TEXT PRIMARY KEY,
    body     TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS notification_windows (
    window_key TEXT    PRIMARY KEY,
    at         INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS notification_windows_by_time ON notification_windows (at);

CREATE TABLE IF NOT EXISTS cursors (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
"#;

/// Why the database could not be opened.
#[derive(Debug, Error)]
pub enum OpenError {
    /// The file cannot be opened or written (missing directory, permissions, locked, disk full).
    #[error("cannot open the SQLite database: {0}")]
    Unavailable(String),
    /// The file is not a database this build can use (corrupt, or a newer schema).
    #[error("the SQLite database cannot be used: {0}")]
    Incompatible(String),
}

impl From<OpenError> for StoreError {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::Unavailable(m) => StoreError::Unavailable(m),
            OpenError::Incompatible(m) => StoreError::Corrupt(m),
        }
    }
}

impl From<OpenError> for QueueError {
    fn from(e: OpenError) -> Self {
        QueueError::Unavailable(e.to_string())
    }
}

impl From<OpenError> for ArchiveError {
    fn from(e: OpenError) -> Self {
        ArchiveError(e.to_string())
    }
}

/// How hard each commit holds on to the disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=FULL`: every commit is synced to disk before it returns, so an
    /// acknowledged webhook survives a power loss. The default.
    #[default]
    Full,
    /// `synchronous=NORMAL` (WAL): commits are synced at checkpoints, not one by one. Nothing is
    /// lost when the process crashes; a power loss may roll back the last commits. About three
    /// times the throughput where a sync costs a millisecond or more.
    Normal,
}

impl std::str::FromStr for Durability {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "full" => Ok(Durability::Full),
            "normal" => Ok(Durability::Normal),
            other => Err(format!("`{other}` is neither `full` nor `normal`")),
        }
    }
}

/// One SQLite database (a file, or memory for tests) holding tickets, queues and raw payloads.
///
/// Cloning shares the connection: build the store, the queue and the archive from one
/// `Database` to use a single connection per process.
#[derive(Debug, Clone)]
pub struct Database {
    conn: Arc<Mutex<Connection>>,
}

impl Database {
    /// Opens (creating when missing) the database file at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        Self::open_with(path, Durability::Full)
    }

    /// [`Database::open`] with the given durability.
    pub fn open_with(path: &Path, durability: Durability) -> Result<Self, OpenError> {
        let conn = Connection::open(path)
            .map_err(|e| OpenError::Unavailable(format!("{}: {e}", path.display())))?;
        Self::init(conn, durability).map_err(|e| match e {
            OpenError::Unavailable(m) => OpenError::Unavailable(format!("{}: {m}", path.display())),
            OpenError::Incompatible(m) => {
                OpenError::Incompatible(format!("{}: {m}", path.display()))
            }
        })
    }

    /// A fresh private database in memory, gone when the last clone is dropped.
    pub fn in_memory() -> Result<Self, OpenError> {
        let conn =
            Connection::open_in_memory().map_err(|e| OpenError::Unavailable(e.to_string()))?;
        Self::init(conn, Durability::Full)
    }

    fn init(mut conn: Connection, durability: Durability) -> Result<Self, OpenError> {
        let fail = |e: rusqlite::Error| match classify(&e) {
            Kind::Corrupt => OpenError::Incompatible(e.to_string()),
            _ => OpenError::Unavailable(e.to_string()),
        };
        conn.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
        // `memory` for an in-memory database, `wal` for a file.
        let _mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(fail)?;
        let synchronous = match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", synchronous)
            .map_err(fail)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(fail)?;

        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        let version: i64 = tx
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(fail)?;
        if version > SCHEMA_VERSION {
            return Err(OpenError::Incompatible(format!(
                "schema version {version} is newer than version {SCHEMA_VERSION} this build knows"
            )));
        }
        tx.execute_batch(SCHEMA).map_err(fail)?;
        migrate(&tx).map_err(fail)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(fail)?;
        tx.commit().map_err(fail)?;
        Ok(Database {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs blocking database work on the blocking thread pool, holding the connection.
    pub(crate) async fn call<T, F>(&self, work: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut Connection) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let joined = tokio::task::spawn_blocking(move || {
            let mut guard = lock(&conn);
            work(&mut guard)
        })
        .await;
        match joined {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(DbError::Unavailable(format!(
                "database call interrupted: {e}"
            ))),
        }
    }
}

/// Brings a database made by an older build up to [`SCHEMA_VERSION`] (the tables it lacked are
/// created by the schema itself): version 2 added `tickets.related_tickets`, version 3 the
/// `channel_state` and `channel_checks` tables, version 4 the workflow tables
/// (`ticket_workflows`, `contact_links`, `link_suggestions`, `agent_preferences`,
/// `notification_windows`, `cursors`), all created by the schema.
fn migrate(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let has_related = tx
        .prepare("SELECT 1 FROM pragma_table_info('tickets') WHERE name = 'related_tickets'")?
        .exists([])?;
    if !has_related {
        tx.execute_batch(
            "ALTER TABLE tickets ADD COLUMN related_tickets TEXT NOT NULL DEFAULT '[]'",
        )?;
    }
    Ok(())
}

/// Locks the connection. A panic while holding it cannot leave a transaction open (rusqlite rolls
/// back on drop), so a poisoned lock is still usable.
fn lock(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Starts a write transaction that takes the database's write lock up front.
pub(crate) fn write_tx(conn: &mut Connection) -> Result<Transaction<'_>, DbError> {
    Ok(conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
}

/// An internal failure, converted into each port's error at the boundary.
#[derive(Debug, Error)]
pub(crate) enum DbError {
    /// SQLite is busy, locked or failing to do I/O.
    #[error("{0}")]
    Unavailable(String),
    /// The data was refused.
    #[error("{0}")]
    Rejected(String),
    /// A write conflicted with data written earlier.
    #[error("{0}")]
    Conflict(String),
    /// Stored data could not be read back.
    #[error("{0}")]
    Corrupt(String),
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        let text = e.to_string();
        match classify(&e) {
            Kind::Unavailable => DbError::Unavailable(text),
            Kind::Rejected => DbError::Rejected(text),
            Kind::Corrupt => DbError::Corrupt(text),
        }
    }
}

impl From<serde_json::Error> for DbError {
    /// Decoding stored JSON failed: the stored data is corrupt (encoding uses [`encode`]).
    fn from(e: serde_json::Error) -> Self {
        DbError::Corrupt(format!("stored JSON cannot be decoded: {e}"))
    }
}

impl From<DbError> for StoreError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unavailable(m) => StoreError::Unavailable(m),
            DbError::Rejected(m) => StoreError::Rejected(m),
            DbError::Conflict(m) => StoreError::Conflict(m),
            DbError::Corrupt(m) => StoreError::Corrupt(m),
        }
    }
}

impl From<DbError> for QueueError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Rejected(m) => QueueError::Rejected(m),
            other => QueueError::Unavailable(other.to_string()),
        }
    }
}

impl From<DbError> for ArchiveError {
    fn from(e: DbError) -> Self {
        ArchiveError(e.to_string())
    }
}

/// Serializes a value for storage; a value that cannot be serialized is refused.
pub(crate) fn encode<T: serde::Serialize>(value: &T) -> Result<String, DbError> {
    serde_json::to_string(value).map_err(|e| DbError::Rejected(format!("cannot serialize: {e}")))
}

enum Kind {
    Unavailable,
    Rejected,
    Corrupt,
}

fn classify(e: &rusqlite::Error) -> Kind {
    use rusqlite::Error as E;
    match e {
        E::SqliteFailure(f, _) => match f.code {
            ErrorCode::ConstraintViolation
            | ErrorCode::TooBig
            | ErrorCode::TypeMismatch
            | ErrorCode::ParameterOutOfRange => Kind::Rejected,
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => Kind::Corrupt,
            // Busy, locked, I/O, full disk, out of memory, cannot open, read-only, …
            _ => Kind::Unavailable,
        },
        E::FromSqlConversionFailure(..)
        | E::IntegralValueOutOfRange(..)
        | E::Utf8Error(..)
        | E::InvalidColumnType(..)
        | E::InvalidColumnIndex(..)
        | E::InvalidColumnName(..) => Kind::Corrupt,
        E::ToSqlConversionFailure(..) | E::NulError(..) => Kind::Rejected,
        _ => Kind::Unavailable,
    }
}

/// A timestamp as stored: nanoseconds since the Unix epoch (exact, and ordered as integers).
pub(crate) fn to_nanos(at: DateTime<Utc>) -> Result<i64, DbError> {
    at.timestamp_nanos_opt().ok_or_else(|| {
        DbError::Rejected(format!(
            "timestamp {at} is outside the storable range (1677 to 2262)"
        ))
    })
}

/// A stored timestamp read back.
pub(crate) fn from_nanos(nanos: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(nanos)
}

#[cfg(test)]
mod tests {
    use rusqlite::ffi;

    use super::*;

    fn failure(code: std::os::raw::c_int) -> StoreError {
        DbError::from(rusqlite::Error::SqliteFailure(ffi::Error::new(code), None)).into()
    }

    #[tokio::test]
    async fn durability_sets_how_each_commit_is_synced() {
        let dir = tempfile::tempdir().unwrap();
        for (durability, expected) in [(Durability::Full, 2), (Durability::Normal, 1)] {
            let db = Database::open_with(&dir.path().join("d.db"), durability).unwrap();
            let synchronous: i64 = db
                .call(|conn| Ok(conn.pragma_query_value(None, "synchronous", |r| r.get(0))?))
                .await
                .unwrap();
            assert_eq!(synchronous, expected, "{durability:?}");
        }
        assert_eq!("NORMAL".parse(), Ok(Durability::Normal));
        assert!("off".parse::<Durability>().is_err());
    }

    #[test]
    fn busy_locked_and_io_failures_are_retryable() {
        for code in [
            ffi::SQLITE_BUSY,
            ffi::SQLITE_LOCKED,
            ffi::SQLITE_IOERR,
            ffi::SQLITE_FULL,
        ] {
            let err = failure(code);
            assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
            assert!(err.is_retryable());
        }
    }

    #[test]
    fn constraint_and_size_failures_are_rejections() {
        for code in [ffi::SQLITE_CONSTRAINT, ffi::SQLITE_TOOBIG] {
            let err = failure(code);
            assert!(matches!(err, StoreError::Rejected(_)), "{err:?}");
            assert!(!err.is_retryable());
        }
    }

    #[test]
    fn a_corrupt_file_is_corrupt() {
        for code in [ffi::SQLITE_CORRUPT, ffi::SQLITE_NOTADB] {
            assert!(matches!(failure(code), StoreError::Corrupt(_)));
        }
    }

    #[test]
    fn a_file_that_is_not_a_database_is_incompatible() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crossdesk.db");
        std::fs::write(&path, vec![b'x'; 4096]).unwrap();
        let err = Database::open(&path).unwrap_err();
        assert!(matches!(err, OpenError::Incompatible(_)), "{err:?}");
    }

    #[test]
    fn timestamps_round_trip_to_the_nanosecond() {
        let at = DateTime::from_timestamp(1_714_557_600, 123_456_789).unwrap();
        assert_eq!(from_nanos(to_nanos(at).unwrap()), at);
    }
}
