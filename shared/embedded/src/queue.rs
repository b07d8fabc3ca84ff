//! [`SqliteQueue`]: durable local queues (`inbound`, `outbound`, `events`) with leases and dead
//! letters.
//!
//! Delivery is at least once: a received item stays in its queue, invisible, until its lease
//! ends; a worker that stops without acknowledging it (a crash, a restart) lets it come back
//! once the visibility timeout passes. An item received more than `max_attempts` times is moved
//! to the dead letters instead of being delivered again.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crossdesk_core::{
    Clock, InboundQueue, Message, OutboundJob, OutboundQueue, QueueError, SystemClock,
};
use rusqlite::{params, Connection};
use serde::de::DeserializeOwned;
use tracing::warn;

use crate::db::{encode, from_nanos, to_nanos, write_tx, Database, DbError};

/// How many times an item is delivered before it is dead-lettered, unless configured.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// One of the named queues in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueueName {
    /// Normalized messages from the webhooks, for the ticket writer.
    Inbound,
    /// Reply jobs from the agent API, for the reply sender.
    Outbound,
    /// Outgoing events, for the events webhook sender.
    Events,
}

impl QueueName {
    /// The queue's name as stored (`inbound`, `outbound`, `events`).
    pub fn as_str(self) -> &'static str {
        match self {
            QueueName::Inbound => "inbound",
            QueueName::Outbound => "outbound",
            QueueName::Events => "events",
        }
    }
}

impl fmt::Display for QueueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Proof of one lease on one item: acknowledging, retrying or dead-lettering needs it, so a
/// worker whose lease ran out (and whose item another worker took) cannot touch the item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    id: i64,
    lease: String,
}

impl Receipt {
    /// The id of the leased item.
    pub fn id(&self) -> i64 {
        self.id
    }
}

/// An item received from a queue, leased to the receiver until its visibility timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leased {
    /// The item's id (increasing in enqueue order).
    pub id: i64,
    /// The queue it was received from.
    pub queue: QueueName,
    /// The lease, for [`SqliteQueue::ack`], [`SqliteQueue::retry_later`] and
    /// [`SqliteQueue::dead_letter`].
    pub receipt: Receipt,
    /// The item's JSON body (a `Message` on `inbound`, an `OutboundJob` on `outbound`).
    pub body: String,
    /// How many times the item has been received, this time included.
    pub attempts: u32,
    /// When it was enqueued.
    pub enqueued_at: DateTime<Utc>,
}

impl Leased {
    /// The body decoded; a body that does not decode belongs in the dead letters.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.body)
    }
}

/// An item taken out of its queue for good, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The item's id in its queue.
    pub id: i64,
    /// The queue it came from.
    pub queue: QueueName,
    /// The item's JSON body.
    pub body: String,
    /// How many times it was received.
    pub attempts: u32,
    /// Why it was given up on.
    pub reason: String,
    /// When it was enqueued.
    pub enqueued_at: DateTime<Utc>,
    /// When it was given up on.
    pub dead_at: DateTime<Utc>,
}

/// Durable queues in a SQLite database; implements [`InboundQueue`] and [`OutboundQueue`] for
/// the producers and offers receive/ack/retry/dead-letter to the in-process workers.
#[derive(Clone)]
pub struct SqliteQueue {
    db: Database,
    clock: Arc<dyn Clock>,
    max_attempts: u32,
}

impl fmt::Debug for SqliteQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteQueue")
            .field("db", &self.db)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl SqliteQueue {
    /// Opens (creating when missing) the database file at `path`.
    pub fn open(path: &Path) -> Result<Self, QueueError> {
        Ok(SqliteQueue::new(Database::open(path)?))
    }

    /// Fresh, private queues in memory, for tests.
    pub fn in_memory() -> Result<Self, QueueError> {
        Ok(SqliteQueue::new(Database::in_memory()?))
    }

    /// Queues in an already opened database (shared with the store and the archive), on the
    /// system clock, dead-lettering after [`DEFAULT_MAX_ATTEMPTS`] deliveries.
    pub fn new(db: Database) -> Self {
        SqliteQueue {
            db,
            clock: Arc::new(SystemClock),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }

    /// Dead-letters an item instead of delivering it more than `max_attempts` (at least 1) times.
    pub fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts.max(1);
        self
    }

    /// Uses another clock for visibility timeouts (tests fix and advance it).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Leases up to `max` visible items of `queue`, oldest first, hiding them for `visibility`.
    /// Items already received `max_attempts` times are dead-lettered on the way.
    pub async fn receive(
        &self,
        queue: QueueName,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<Leased>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let now = to_nanos(self.clock.now())?;
        let max_attempts = self.max_attempts;
        Ok(self
            .db
            .write(move |conn| receive(conn, queue, max, now, visibility, max_attempts))
            .await?)
    }

    /// Removes a processed item; `false` when the lease is no longer the item's (it was taken
    /// by another receiver after the visibility timeout, or already acknowledged).
    pub async fn ack(&self, receipt: &Receipt) -> Result<bool, QueueError> {
        let receipt = receipt.clone();
        Ok(self
            .db
            .write(move |conn| {
                let deleted = conn
                    .prepare_cached("DELETE FROM queue_items WHERE id = ?1 AND lease = ?2")?
                    .execute(params![receipt.id, receipt.lease])?;
                Ok(deleted == 1)
            })
            .await?)
    }

    /// Ends the lease and makes the item visible again after `delay`, recording `error` (kept
    /// for the dead letter if it comes to that); `false` when the lease is no longer the item's.
    pub async fn retry_later(
        &self,
        receipt: &Receipt,
        delay: Duration,
        error: &str,
    ) -> Result<bool, QueueError> {
        let receipt = receipt.clone();
        let error = error.to_string();
        let visible_at = after(to_nanos(self.clock.now())?, delay);
        Ok(self
            .db
            .write(move |conn| {
                let updated = conn
                    .prepare_cached(
                        "UPDATE queue_items SET visible_at = ?1, lease = NULL, last_error = ?2 \
                         WHERE id = ?3 AND lease = ?4",
                    )?
                    .execute(params![visible_at, error, receipt.id, receipt.lease])?;
                Ok(updated == 1)
            })
            .await?)
    }

    /// Moves a leased item to the dead letters (a poison message); `false` when the lease is no
    /// longer the item's.
    pub async fn dead_letter(&self, receipt: &Receipt, reason: &str) -> Result<bool, QueueError> {
        let receipt = receipt.clone();
        let reason = reason.to_string();
        let now = to_nanos(self.clock.now())?;
        Ok(self
            .db
            .write(move |conn| {
                let tx = write_tx(conn)?;
                let held = tx
                    .prepare_cached("SELECT 1 FROM queue_items WHERE id = ?1 AND lease = ?2")?
                    .exists(params![receipt.id, receipt.lease])?;
                if held {
                    bury(&tx, receipt.id, &reason, now)?;
                    tx.commit()?;
                }
                Ok(held)
            })
            .await?)
    }

    /// The dead letters of `queue`, oldest first.
    pub async fn dead_letters(&self, queue: QueueName) -> Result<Vec<DeadLetter>, QueueError> {
        Ok(self
            .db
            .call(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT id, body, attempts, reason, enqueued_at, dead_at FROM dead_letters \
                     WHERE queue = ?1 ORDER BY id",
                )?;
                let rows = stmt.query_map(params![queue.as_str()], |row| {
                    Ok(DeadLetter {
                        id: row.get(0)?,
                        queue,
                        body: row.get(1)?,
                        attempts: row.get(2)?,
                        reason: row.get(3)?,
                        enqueued_at: from_nanos(row.get(4)?),
                        dead_at: from_nanos(row.get(5)?),
                    })
                })?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await?)
    }

    /// Makes every leased item of `queue` visible again at once (the attempt stays counted).
    /// For a process that owns the queue alone and restarts: the leases of the process that
    /// died are known to be dead, so their items need not wait out the visibility timeout.
    /// Returns how many leases were released.
    pub async fn release_leases(&self, queue: QueueName) -> Result<usize, QueueError> {
        let now = to_nanos(self.clock.now())?;
        Ok(self
            .db
            .write(move |conn| {
                let released = conn
                    .prepare_cached(
                        "UPDATE queue_items SET visible_at = ?1, lease = NULL \
                         WHERE queue = ?2 AND lease IS NOT NULL",
                    )?
                    .execute(params![now, queue.as_str()])?;
                Ok(released)
            })
            .await?)
    }

    /// How many items `queue` holds, leased or not (dead letters excluded).
    pub async fn depth(&self, queue: QueueName) -> Result<usize, QueueError> {
        Ok(self
            .db
            .call(move |conn| {
                let n: i64 = conn
                    .prepare_cached("SELECT COUNT(*) FROM queue_items WHERE queue = ?1")?
                    .query_row(params![queue.as_str()], |row| row.get(0))?;
                Ok(usize::try_from(n).unwrap_or(0))
            })
            .await?)
    }

    /// Appends bodies to `queue` in one transaction, committed before returning.
    pub(crate) async fn push(
        &self,
        queue: QueueName,
        bodies: Vec<String>,
    ) -> Result<(), QueueError> {
        if bodies.is_empty() {
            return Ok(());
        }
        let now = to_nanos(self.clock.now())?;
        Ok(self
            .db
            .write(move |conn| {
                let tx = write_tx(conn)?;
                {
                    let mut stmt = tx.prepare_cached(
                        "INSERT INTO queue_items (queue, body, enqueued_at, visible_at) \
                         VALUES (?1, ?2, ?3, ?3)",
                    )?;
                    for body in &bodies {
                        stmt.execute(params![queue.as_str(), body, now])?;
                    }
                }
                tx.commit()?;
                Ok(())
            })
            .await?)
    }
}

#[async_trait]
impl InboundQueue for SqliteQueue {
    async fn enqueue(&self, messages: &[Message]) -> Result<(), QueueError> {
        let bodies = messages.iter().map(encode).collect::<Result<Vec<_>, _>>()?;
        self.push(QueueName::Inbound, bodies).await
    }
}

#[async_trait]
impl OutboundQueue for SqliteQueue {
    async fn enqueue(&self, job: &OutboundJob) -> Result<(), QueueError> {
        self.push(QueueName::Outbound, vec![encode(job)?]).await
    }
}

/// `at` plus `delay`, in stored nanoseconds, saturating.
fn after(at: i64, delay: Duration) -> i64 {
    at.saturating_add(i64::try_from(delay.as_nanos()).unwrap_or(i64::MAX))
}

fn receive(
    conn: &mut Connection,
    queue: QueueName,
    max: usize,
    now: i64,
    visibility: Duration,
    max_attempts: u32,
) -> Result<Vec<Leased>, DbError> {
    let tx = write_tx(conn)?;
    let visible_at = after(now, visibility);
    let mut leased = Vec::new();
    let mut cursor = 0_i64;
    while leased.len() < max {
        let batch = {
            let mut stmt = tx.prepare_cached(
                "SELECT id, body, attempts, enqueued_at, last_error FROM queue_items \
                 WHERE queue = ?1 AND visible_at <= ?2 AND id > ?3 ORDER BY id LIMIT ?4",
            )?;
            let rows = stmt.query_map(
                params![
                    queue.as_str(),
                    now,
                    cursor,
                    i64::try_from(max - leased.len()).unwrap_or(i64::MAX)
                ],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, u32>(2)?,
                        row.get::<_, i64>(3)?,
                        row.get::<_, Option<String>>(4)?,
                    ))
                },
            )?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        if batch.is_empty() {
            break;
        }
        for (id, body, attempts, enqueued_at, last_error) in batch {
            cursor = id;
            if attempts >= max_attempts {
                let reason = format!(
                    "received {attempts} times without being processed; last error: {}",
                    last_error
                        .as_deref()
                        .unwrap_or("none recorded (the lease ran out)")
                );
                warn!(queue = %queue, item = id, attempts, "dead-lettering queue item");
                bury(&tx, id, &reason, now)?;
                continue;
            }
            let lease = uuid::Uuid::now_v7().simple().to_string();
            tx.prepare_cached(
                "UPDATE queue_items SET attempts = attempts + 1, visible_at = ?1, lease = ?2 \
                 WHERE id = ?3",
            )?
            .execute(params![visible_at, lease, id])?;
            leased.push(Leased {
                id,
                queue,
                receipt: Receipt { id, lease },
                body,
                attempts: attempts + 1,
                enqueued_at: from_nanos(enqueued_at),
            });
        }
    }
    tx.commit()?;
    Ok(leased)
}

/// Moves an item to the dead letters (inside the caller's transaction).
fn bury(conn: &Connection, id: i64, reason: &str, now: i64) -> Result<(), DbError> {
    let moved = conn
        .prepare_cached(
            "INSERT INTO dead_letters (id, queue, body, enqueued_at, attempts, reason, dead_at) \
             SELECT id, queue, body, enqueued_at, attempts, ?2, ?3 FROM queue_items WHERE id = ?1",
        )?
        .execute(params![id, reason, now])?;
    conn.prepare_cached("DELETE FROM queue_items WHERE id = ?1")?
        .execute(params![id])?;
    if moved == 0 {
        return Err(DbError::Conflict(format!("queue item {id} vanished")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use chrono::TimeZone;
    use crossdesk_core::{MessageId, TicketId};

    use super::*;

    /// A clock the test moves by hand.
    struct ManualClock(Mutex<DateTime<Utc>>);

    impl ManualClock {
        fn new() -> Arc<Self> {
            Arc::new(ManualClock(Mutex::new(
                Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0).unwrap(),
            )))
        }

        fn advance(&self, by: Duration) {
            let mut now = self.0.lock().unwrap();
            *now += chrono::Duration::from_std(by).unwrap();
        }
    }

    impl Clock for ManualClock {
        fn now(&self) -> DateTime<Utc> {
            *self.0.lock().unwrap()
        }
    }

    const LEASE: Duration = Duration::from_secs(30);

    fn job(n: usize) -> OutboundJob {
        OutboundJob {
            ticket_id: TicketId::parse("K3F9Q2XA").unwrap(),
            message_id: MessageId::parse(&format!("msg_{n:032x}")).unwrap(),
        }
    }

    fn queue_with(clock: &Arc<ManualClock>) -> SqliteQueue {
        SqliteQueue::in_memory().unwrap().with_clock(clock.clone())
    }

    async fn push_jobs(queue: &SqliteQueue, n: usize) {
        for i in 0..n {
            OutboundQueue::enqueue(queue, &job(i)).await.unwrap();
        }
    }

    #[tokio::test]
    async fn delivers_in_enqueue_order() {
        let clock = ManualClock::new();
        let queue = queue_with(&clock);
        push_jobs(&queue, 5).await;
        let first = queue.receive(QueueName::Outbound, 3, LEASE).await.unwrap();
        let rest = queue.receive(QueueName::Outbound, 10, LEASE).await.unwrap();
        let jobs: Vec<OutboundJob> = first
            .iter()
            .chain(&rest)
            .map(|l| l.decode().unwrap())
            .collect();
        assert_eq!(jobs, (0..5).map(job).collect::<Vec<_>>());
        assert!(first.iter().chain(&rest).all(|l| l.attempts == 1));
    }

    #[tokio::test]
    async fn released_leases_are_delivered_again_at_once() {
        let clock = ManualClock::new();
        let queue = queue_with(&clock);
        push_jobs(&queue, 3).await;
        let taken = queue.receive(QueueName::Outbound, 2, LEASE).await.unwrap();
        assert_eq!(taken.len(), 2);
        assert_eq!(queue.release_leases(QueueName::Outbound).await.unwrap(), 2);
        let again = queue.receive(QueueName::Outbound, 10, LEASE).await.unwrap();
        assert_eq!(again.len(), 3, "no waiting for the visibility timeout");
        assert_eq!(again[0].attempts, 2, "the earlier attempt stays counted");
        assert!(
            !queue.ack(&taken[0].receipt).await.unwrap(),
            "old receipts are void"
        );
    }

    #[tokio::test]
    async fn queues_are_separate() {
        let clock = ManualClock::new();
        let queue = queue_with(&clock);
        push_jobs(&queue, 2).await;
        assert_eq!(queue.depth(QueueName::Outbound).await.unwrap(), 2);
        assert_eq!(queue.depth(QueueName::Inbound).await.unwrap(), 0);
        assert!(queue
            .receive(QueueName::Inbound, 10, LEASE)
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn inbound_enqueue_stores_each_message_in_order() {
        let clock = ManualClock::new();
        let queue = queue_with(&clock);
        let messages: Vec<Message> = (0..3)
            .map(|i| Message {
                id: MessageId::generate(),
                channel: crossdesk_core::ChannelKind::Chat,
                platform_message_id: Some(format!("m{i}")),
                conversation: crossdesk_core::Conversation::ChatSession {
                    session_id: "s1".into(),
                },
                direction: crossdesk_core::Direction::Inbound,
                event: crossdesk_core::MessageEvent::Created,
                author: crossdesk_core::Author::default(),
                text: format!("hello {i}"),
                attachments: Vec::new(),
                visibility: crossdesk_core::Visibility::Private,
                sent_at: clock.now(),
                received_at: clock.now(),
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
            })
            .collect();
        InboundQueue::enqueue(&queue, &messages).await.unwrap();
        InboundQueue::enqueue(&queue, &[]).await.unwrap();
        let leased = queue.receive(QueueName::Inbound, 10, LEASE).await.unwrap();
        let got: Vec<Message> = leased.iter().map(|l| l.decode().unwrap()).collect();
        assert_eq!(got, messages);
    }

    #[tokio::test]
    async fn leased_items_stay_hidden_until_the_visibility_timeout() {
        let clock = ManualClock::new();
        let queue = queue_with(&clock);
        push_jobs(&queue, 1).await;
        let first = queue.receive(QueueName::Outbound, 1, LEASE).await.unwrap();
        assert_eq!(first.len(), 1);
        clock.advance(LEASE - Duration::from_secs(1));
        assert!(queue
            .receive(QueueName::Outbound, 1, LEASE)
            .await
            .unwrap()
            .is_empty());
        clock.advance(Duration::from_secs(1));
        let again = queue.receive(QueueName::Outbound, 1, LEASE).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].id, first[0].id);
        assert_eq!(again[0].attempts, 2);
        assert_ne!(again[0].receipt, first[0].receipt);
    }

    #[tokio::test]
    async fn ack_removes_the_item_and_a_stale_lease_cannot() {
        let clock = ManualClock::new();
        let queue = queue_with(&clock);
        push_jobs(&queue, 1).await;
        let stale = queue.receive(QueueName::Outbound, 1, LEASE).await.unwrap();
        clock.advance(LEASE);
        let current = queue.receive(QueueName::Outbound, 1, LEASE).await.unwrap();
        assert!(!queue.ack(&stale[0].receipt).await.unwrap());
        assert_eq!(queue.depth(QueueName::Outbound).await.unwrap(), 1);
        assert!(queue.ack(&current[0].receipt).await.unwrap());
        assert!(!queue.ack(&current[0].receipt).await.unwrap());
        assert_eq!(queue.depth(QueueName::Outbound).await.unwrap(), 0);
        clock.advance(LEASE * 2);
        assert!(queue
            .receive(QueueName::Outbound, 1, LEASE)
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn retry_later_hides_the_item_for_the_delay() {
        let clock = ManualClock::new();
        let queue = queue_with(&clock);
        push_jobs(&queue, 1).await;
        let leased = queue.receive(QueueName::Outbound, 1, LEASE).await.unwrap();
        let delay = Duration::from_secs(5);
        assert!(queue
            .retry_later(&leased[0].receipt, delay, "platform throttled")
            .await
            .unwrap());
        assert!(!queue.ack(&leased[0].receipt).await.unwrap());
        clock.advance(delay - Duration::from_millis(1));
        assert!(queue
            .receive(QueueName::Outbound, 1, LEASE)
            .await
            .unwrap()
            .is_empty());
        clock.advance(Duration::from_millis(1));
        let again = queue.receive(QueueName::Outbound, 1, LEASE).await.unwrap();
        assert_eq!(again[0].attempts, 2);
    }

    #[tokio::test]
    async fn dead_letters_an_item_received_more_than_max_attempts_times() {
        let clock = ManualClock::new();
        let queue = queue_with(&clock).with_max_attempts(3);
        push_jobs(&queue, 2).await;
        for attempt in 1..=3 {
            let leased = queue.receive(QueueName::Outbound, 1, LEASE).await.unwrap();
            assert_eq!(leased[0].id, 1);
            assert_eq!(leased[0].attempts, attempt);
            queue
                .retry_later(
                    &leased[0].receipt,
                    Duration::ZERO,
                    &format!("boom {attempt}"),
                )
                .await
                .unwrap();
        }
        // The fourth receive buries item 1 and delivers item 2 instead.
        let leased = queue.receive(QueueName::Outbound, 1, LEASE).await.unwrap();
        assert_eq!(leased.len(), 1);
        assert_eq!(leased[0].id, 2);
        let dead = queue.dead_letters(QueueName::Outbound).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].id, 1);
        assert_eq!(dead[0].attempts, 3);
        assert!(dead[0].reason.contains("boom 3"), "{}", dead[0].reason);
        assert_eq!(
            serde_json::from_str::<OutboundJob>(&dead[0].body).unwrap(),
            job(0)
        );
        assert_eq!(queue.depth(QueueName::Outbound).await.unwrap(), 1);
        assert!(queue
            .dead_letters(QueueName::Inbound)
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn dead_letters_an_item_whose_leases_keep_running_out() {
        let clock = ManualClock::new();
        let queue = queue_with(&clock);
        push_jobs(&queue, 1).await;
        for _ in 0..DEFAULT_MAX_ATTEMPTS {
            assert_eq!(
                queue
                    .receive(QueueName::Outbound, 1, LEASE)
                    .await
                    .unwrap()
                    .len(),
                1
            );
            clock.advance(LEASE);
        }
        assert!(queue
            .receive(QueueName::Outbound, 1, LEASE)
            .await
            .unwrap()
            .is_empty());
        let dead = queue.dead_letters(QueueName::Outbound).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert!(
            dead[0].reason.contains("lease ran out"),
            "{}",
            dead[0].reason
        );
    }

    #[tokio::test]
    async fn a_worker_dead_letters_a_poison_item() {
        let clock = ManualClock::new();
        let queue = queue_with(&clock);
        push_jobs(&queue, 1).await;
        let leased = queue.receive(QueueName::Outbound, 1, LEASE).await.unwrap();
        assert!(queue
            .dead_letter(&leased[0].receipt, "not a reply job")
            .await
            .unwrap());
        assert!(!queue
            .dead_letter(&leased[0].receipt, "again")
            .await
            .unwrap());
        assert_eq!(queue.depth(QueueName::Outbound).await.unwrap(), 0);
        let dead = queue.dead_letters(QueueName::Outbound).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].reason, "not a reply job");
        assert_eq!(dead[0].attempts, 1);
    }

    #[tokio::test]
    async fn zero_visibility_does_not_deliver_one_item_twice_in_a_batch() {
        let clock = ManualClock::new();
        let queue = queue_with(&clock);
        push_jobs(&queue, 2).await;
        let leased = queue
            .receive(QueueName::Outbound, 10, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(leased.iter().map(|l| l.id).collect::<Vec<_>>(), [1, 2]);
    }

    #[tokio::test]
    async fn items_and_leases_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crossdesk.db");
        let clock = ManualClock::new();
        {
            let queue = SqliteQueue::open(&path).unwrap().with_clock(clock.clone());
            push_jobs(&queue, 2).await;
            let leased = queue.receive(QueueName::Outbound, 1, LEASE).await.unwrap();
            assert_eq!(leased[0].id, 1);
            // The worker crashes here: the lease is never acknowledged.
        }
        let queue = SqliteQueue::open(&path).unwrap().with_clock(clock.clone());
        assert_eq!(queue.depth(QueueName::Outbound).await.unwrap(), 2);
        let leased = queue.receive(QueueName::Outbound, 10, LEASE).await.unwrap();
        assert_eq!(leased.iter().map(|l| l.id).collect::<Vec<_>>(), [2]);
        assert!(queue.ack(&leased[0].receipt).await.unwrap());
        clock.advance(LEASE);
        let leased = queue.receive(QueueName::Outbound, 10, LEASE).await.unwrap();
        assert_eq!(leased.len(), 1);
        assert_eq!(leased[0].id, 1);
        assert_eq!(leased[0].attempts, 2);
        assert_eq!(leased[0].decode::<OutboundJob>().unwrap(), job(0));
    }

    #[tokio::test]
    async fn store_queue_and_archive_share_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("crossdesk.db")).unwrap();
        let queue = SqliteQueue::new(db.clone());
        let store = crate::SqliteStore::new(db.clone());
        push_jobs(&queue, 1).await;
        let other = SqliteQueue::new(store.database().clone());
        assert_eq!(other.depth(QueueName::Outbound).await.unwrap(), 1);
    }
}
