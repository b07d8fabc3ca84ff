//! The SQLite database file shared by the store, the queues and the archive: opening, pragmas,
//! schema, the blocking-call bridge and error classification.

use std::ops::Deref;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use crossdesk_core::{ArchiveError, QueueError, StoreError};
use rusqlite::{Connection, ErrorCode, Transaction, TransactionBehavior};
use thiserror::Error;

use crate::group::{self, Call, Outcome, Request};

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
/// `Database` to use a single connection per process. The connection belongs to a thread of its
/// own, which commits the writes waiting at the same time together (one sync for all of them;
/// see [`Database::write`]); it ends when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Database {
    pub(crate) requests: mpsc::Sender<Request>,
    /// The reading connection's thread (a file only).
    reads: Option<mpsc::Sender<Request>>,
}

impl Database {
    /// Opens (creating when missing) the database file at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        Self::open_with(path, Durability::Full)
    }

    /// [`Database::open`] with the given durability.
    pub fn open_with(path: &Path, durability: Durability) -> Result<Self, OpenError> {
        let in_file = |e: OpenError| match e {
            OpenError::Unavailable(m) => OpenError::Unavailable(format!("{}: {m}", path.display())),
            OpenError::Incompatible(m) => {
                OpenError::Incompatible(format!("{}: {m}", path.display()))
            }
        };
        let conn = Connection::open(path)
            .map_err(|e| OpenError::Unavailable(format!("{}: {e}", path.display())))?;
        let mut db = Self::init(conn, durability).map_err(in_file)?;
        db.reads = Some(Self::reader(path).map_err(in_file)?);
        Ok(db)
    }

    /// A second connection to the file, for reads only (`query_only`), on a thread of its own:
    /// WAL lets it read while the writer thread writes and syncs, so a read never waits for a
    /// group commit. Each read is one read transaction: a consistent snapshot of what was
    /// committed when it began.
    fn reader(path: &Path) -> Result<mpsc::Sender<Request>, OpenError> {
        let fail = |e: rusqlite::Error| OpenError::Unavailable(e.to_string());
        let conn = Connection::open(path).map_err(fail)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
        conn.pragma_update(None, "query_only", "ON").map_err(fail)?;
        connection_thread("crossdesk-sqlite-read", conn, group::serve_reads)
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
            requests: connection_thread("crossdesk-sqlite", conn, group::serve)?,
            reads: None,
        })
    }

    /// Runs database work that only reads: on the reading connection's thread in a read
    /// transaction of its own (a file), or on the database's thread between write groups,
    /// outside any transaction (memory). It sees every write answered before it was asked.
    pub(crate) async fn call<T, F>(&self, work: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut Connection) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        let (call, answer) = Call::new(work);
        let request = Request::Read(Box::new(call));
        match &self.reads {
            Some(reads) => Self::send_to(reads, request, answer).await,
            None => Self::send_to(&self.requests, request, answer).await,
        }
    }

    /// Runs database work that writes, on the database's thread, in a savepoint of the current
    /// group's transaction: it rolls back alone when it returns an error (or panics), and its
    /// result arrives only once the group is committed. Use [`write_tx`] inside it where a
    /// write needs several statements to hold together.
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut Connection) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        let (call, answer) = Call::new(work);
        Self::send_to(&self.requests, Request::Write(Box::new(call)), answer).await
    }

    async fn send_to<T>(
        thread: &mpsc::Sender<Request>,
        request: Request,
        answer: tokio::sync::oneshot::Receiver<Outcome<T>>,
    ) -> Result<T, DbError> {
        let stopped = || DbError::Unavailable("the database thread has stopped".into());
        thread.send(request).map_err(|_| stopped())?;
        match answer.await {
            Ok(Outcome::Done(result)) => result,
            Ok(Outcome::Panicked(panic)) => std::panic::resume_unwind(panic),
            Err(_) => Err(stopped()),
        }
    }
}

/// Starts the thread that owns `conn` and serves the requests sent to the returned sender.
fn connection_thread(
    name: &str,
    conn: Connection,
    serve: fn(Connection, mpsc::Receiver<Request>),
) -> Result<mpsc::Sender<Request>, OpenError> {
    let (requests, served) = mpsc::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || serve(conn, served))
        .map_err(|e| OpenError::Unavailable(format!("cannot start the database thread: {e}")))?;
    Ok(requests)
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

/// Statements that hold together: a savepoint inside [`Database::write`]'s group transaction,
/// or a `BEGIN IMMEDIATE` transaction of their own where none is open. Rolled back when dropped
/// without [`WriteTx::commit`].
pub(crate) struct WriteTx<'c> {
    conn: &'c Connection,
    savepoint: bool,
    open: bool,
}

/// Starts statements that hold together (see [`WriteTx`]).
pub(crate) fn write_tx(conn: &Connection) -> Result<WriteTx<'_>, DbError> {
    let savepoint = !conn.is_autocommit();
    conn.execute_batch(if savepoint {
        "SAVEPOINT crossdesk_tx"
    } else {
        "BEGIN IMMEDIATE"
    })?;
    Ok(WriteTx {
        conn,
        savepoint,
        open: true,
    })
}

impl WriteTx<'_> {
    /// Keeps the statements (releases the savepoint, or commits the transaction).
    pub(crate) fn commit(mut self) -> Result<(), DbError> {
        self.conn.execute_batch(if self.savepoint {
            "RELEASE crossdesk_tx"
        } else {
            "COMMIT"
        })?;
        self.open = false;
        Ok(())
    }
}

impl Deref for WriteTx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for WriteTx<'_> {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        let undo = if self.savepoint {
            "ROLLBACK TO crossdesk_tx; RELEASE crossdesk_tx"
        } else if !self.conn.is_autocommit() {
            "ROLLBACK"
        } else {
            return;
        };
        if let Err(e) = self.conn.execute_batch(undo) {
            tracing::warn!(error = %e, "cannot roll back a write");
        }
    }
}

/// An internal failure, converted into each port's error at the boundary.
#[derive(Debug, Clone, Error)]
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
            // The writing connection's setting (the reading one never commits).
            let synchronous: i64 = db
                .write(|conn| Ok(conn.pragma_query_value(None, "synchronous", |r| r.get(0))?))
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
