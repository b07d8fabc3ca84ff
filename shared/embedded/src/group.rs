//! The thread that owns a [`Database`](crate::Database)'s connection and commits its writes in
//! groups.
//!
//! With `synchronous=FULL` every commit waits for the disk's sync, about a millisecond here.
//! Committing each write on its own caps the process at a few hundred writes a second however
//! many callers wait. So writes are queued to one thread, which runs every write waiting at the
//! time inside one transaction, each in its own savepoint (a failed or panicking write rolls back
//! alone), commits once, and only then answers each caller: no caller hears "done" before its
//! write is on disk, and a failed commit fails every write of its group. Reads run on the same
//! thread between groups, outside any transaction, so they never see a write that is not
//! committed.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc::{Receiver, TryRecvError};

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::db::DbError;

/// The most writes one commit holds, so that the first caller of a group is not held up for long.
pub(crate) const MAX_GROUP: usize = 256;

/// A request to the database thread.
pub(crate) enum Request {
    /// Runs alone, outside any transaction.
    Read(Box<dyn Work>),
    /// Runs in its own savepoint inside the current group's transaction.
    Write(Box<dyn Work>),
}

/// Database work queued to the thread, type-erased.
pub(crate) trait Work: Send {
    /// Runs the work; the caller is answered by [`Ran::settle`] once its fate is known.
    fn run(self: Box<Self>, conn: &mut Connection) -> Box<dyn Ran>;
    /// Answers the caller without running the work.
    fn refuse(self: Box<Self>, error: DbError);
}

/// Work that has run and waits for its group's commit.
pub(crate) trait Ran: Send {
    /// Whether the work returned `Ok` (its savepoint is kept).
    fn succeeded(&self) -> bool;
    /// Answers the caller: with the work's own result when the commit succeeded (or was not
    /// needed), otherwise with the commit's error.
    fn settle(self: Box<Self>, commit: Result<(), DbError>);
}

/// What the caller receives: the work's result, or the panic it raised, to be resumed there.
pub(crate) enum Outcome<T> {
    /// The work returned (and its group was committed when it wrote).
    Done(Result<T, DbError>),
    /// The work panicked.
    Panicked(Box<dyn Any + Send>),
}

/// One call: the work and where its answer goes.
pub(crate) struct Call<T, F> {
    work: F,
    reply: oneshot::Sender<Outcome<T>>,
}

impl<T, F> Call<T, F> {
    /// Queues `work`; its answer arrives on the returned receiver.
    pub(crate) fn new(work: F) -> (Self, oneshot::Receiver<Outcome<T>>) {
        let (reply, answer) = oneshot::channel();
        (Call { work, reply }, answer)
    }
}

impl<T, F> Work for Call<T, F>
where
    F: FnOnce(&mut Connection) -> Result<T, DbError> + Send + 'static,
    T: Send + 'static,
{
    fn run(self: Box<Self>, conn: &mut Connection) -> Box<dyn Ran> {
        let Call { work, reply } = *self;
        let result = panic::catch_unwind(AssertUnwindSafe(|| work(conn)));
        Box::new(Finished { result, reply })
    }

    fn refuse(self: Box<Self>, error: DbError) {
        // The caller may have gone (its future dropped): nobody is left to tell.
        let _ = self.reply.send(Outcome::Done(Err(error)));
    }
}

struct Finished<T> {
    result: std::thread::Result<Result<T, DbError>>,
    reply: oneshot::Sender<Outcome<T>>,
}

impl<T: Send + 'static> Ran for Finished<T> {
    fn succeeded(&self) -> bool {
        matches!(self.result, Ok(Ok(_)))
    }

    fn settle(self: Box<Self>, commit: Result<(), DbError>) {
        let outcome = match (self.result, commit) {
            (Ok(Ok(value)), Ok(())) => Outcome::Done(Ok(value)),
            (Ok(Ok(_)), Err(e)) => Outcome::Done(Err(e)),
            (Ok(Err(e)), _) => Outcome::Done(Err(e)),
            (Err(panic), _) => Outcome::Panicked(panic),
        };
        let _ = self.reply.send(outcome);
    }
}

/// Serves requests until every sender is gone, then closes the connection.
pub(crate) fn serve(mut conn: Connection, requests: Receiver<Request>) {
    let mut next: Option<Request> = None;
    loop {
        let request = match next.take() {
            Some(request) => request,
            None => match requests.recv() {
                Ok(request) => request,
                Err(_) => return,
            },
        };
        match request {
            Request::Read(work) => work.run(&mut conn).settle(Ok(())),
            Request::Write(work) => next = write_group(&mut conn, work, &requests),
        }
    }
}

/// Serves reads on a connection of their own until every sender is gone: each in a read
/// transaction, so that its statements see one snapshot.
pub(crate) fn serve_reads(mut conn: Connection, requests: Receiver<Request>) {
    while let Ok(request) = requests.recv() {
        let (Request::Read(work) | Request::Write(work)) = request;
        if let Err(e) = conn.execute_batch("BEGIN") {
            work.refuse(DbError::from(e));
            continue;
        }
        let done = work.run(&mut conn);
        if !conn.is_autocommit() {
            // Nothing was written (the connection is `query_only`): ending it cannot fail
            // in a way that changes the answer.
            let _ = conn.execute_batch("COMMIT");
        }
        done.settle(Ok(()));
    }
}

/// Runs `first` and every write queued while the group runs (up to [`MAX_GROUP`]) in one
/// transaction, commits, and answers them all. Returns the read that ended the group, if one did.
fn write_group(
    conn: &mut Connection,
    first: Box<dyn Work>,
    requests: &Receiver<Request>,
) -> Option<Request> {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        first.refuse(DbError::from(e));
        return None;
    }
    let mut ran: Vec<Box<dyn Ran>> = Vec::new();
    let mut work = Some(first);
    let mut after = None;
    while let Some(current) = work.take() {
        if let Err(e) = run_in_savepoint(conn, current, &mut ran) {
            abandon(conn, ran, e);
            return after;
        }
        if ran.len() >= MAX_GROUP {
            break;
        }
        match requests.try_recv() {
            Ok(Request::Write(queued)) => work = Some(queued),
            Ok(read @ Request::Read(_)) => after = Some(read),
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => {}
        }
    }
    // Retryable for every write of the group, whichever of them made it fail.
    let commit = conn
        .execute_batch("COMMIT")
        .map_err(|e| DbError::Unavailable(format!("the commit failed: {e}")));
    if commit.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    for done in ran {
        done.settle(commit.clone());
    }
    after
}

/// Runs one write in its own savepoint, kept when it succeeded and rolled back when not. An error
/// means the group's transaction is lost (SQLite rolled it back, or a savepoint command failed).
fn run_in_savepoint(
    conn: &mut Connection,
    work: Box<dyn Work>,
    ran: &mut Vec<Box<dyn Ran>>,
) -> Result<(), DbError> {
    if let Err(e) = conn.execute_batch("SAVEPOINT crossdesk_write") {
        let e = DbError::from(e);
        work.refuse(e.clone());
        return Err(e);
    }
    let done = work.run(conn);
    let lost = conn.is_autocommit();
    let ended = if lost {
        Err(DbError::Unavailable(
            "the transaction was rolled back by SQLite".into(),
        ))
    } else if done.succeeded() {
        conn.execute_batch("RELEASE crossdesk_write")
            .map_err(DbError::from)
    } else {
        conn.execute_batch("ROLLBACK TO crossdesk_write; RELEASE crossdesk_write")
            .map_err(DbError::from)
    };
    ran.push(done);
    ended
}

/// Fails every write of a group whose transaction is lost.
fn abandon(conn: &mut Connection, ran: Vec<Box<dyn Ran>>, error: DbError) {
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    let error = DbError::Unavailable(format!("the write was rolled back with its group: {error}"));
    for done in ran {
        done.settle(Err(error.clone()));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{mpsc, Arc};

    use rusqlite::params;

    use super::*;
    use crate::Database;

    type Job = Box<dyn FnOnce(&mut Connection) -> Result<i64, DbError> + Send>;

    /// A database with a few tables, counting its commits.
    async fn counted() -> (Database, Arc<AtomicUsize>) {
        let db = Database::in_memory().unwrap();
        let commits = Arc::new(AtomicUsize::new(0));
        let counter = commits.clone();
        db.call(move |conn| {
            conn.execute_batch(
                "CREATE TABLE t (n INTEGER PRIMARY KEY); \
                 CREATE TABLE parent (id INTEGER PRIMARY KEY); \
                 CREATE TABLE child (p INTEGER REFERENCES parent (id) \
                     DEFERRABLE INITIALLY DEFERRED);",
            )?;
            conn.commit_hook(Some(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                false
            }));
            Ok(())
        })
        .await
        .unwrap();
        (db, commits)
    }

    fn insert(n: i64) -> Job {
        Box::new(move |conn| {
            conn.execute("INSERT INTO t (n) VALUES (?1)", params![n])?;
            Ok(n)
        })
    }

    /// Queues `jobs` while the thread is held inside a first write (answering 0), so that all of
    /// them join that write's group; returns every answer, the first write's first.
    async fn grouped(db: &Database, jobs: Vec<Job>) -> Vec<Outcome<i64>> {
        let (release, held) = mpsc::channel::<()>();
        let (first, first_answer) = Call::new(move |_: &mut Connection| {
            held.recv().unwrap();
            Ok(0)
        });
        db.requests.send(Request::Write(Box::new(first))).unwrap();
        let mut answers = vec![first_answer];
        for job in jobs {
            let (call, answer) = Call::new(job);
            db.requests.send(Request::Write(Box::new(call))).unwrap();
            answers.push(answer);
        }
        release.send(()).unwrap();
        let mut outcomes = Vec::new();
        for answer in answers {
            outcomes.push(answer.await.unwrap());
        }
        outcomes
    }

    fn result(outcome: Outcome<i64>) -> Result<i64, DbError> {
        match outcome {
            Outcome::Done(result) => result,
            Outcome::Panicked(_) => panic!("the work panicked"),
        }
    }

    async fn stored(db: &Database) -> Vec<i64> {
        db.call(|conn| {
            let mut stmt = conn.prepare("SELECT n FROM t ORDER BY n")?;
            let rows = stmt
                .query_map([], |row| row.get(0))?
                .collect::<Result<Vec<i64>, _>>()?;
            Ok(rows)
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn writes_queued_together_share_one_commit() {
        let (db, commits) = counted().await;
        let outcomes = grouped(&db, (1..=50).map(insert).collect()).await;
        let answers: Vec<i64> = outcomes.into_iter().map(|o| result(o).unwrap()).collect();
        assert_eq!(answers, (0..=50).collect::<Vec<_>>());
        assert_eq!(commits.load(Ordering::SeqCst), 1);
        assert_eq!(stored(&db).await, (1..=50).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_group_holds_at_most_max_group_writes() {
        let (db, commits) = counted().await;
        let n = MAX_GROUP as i64 + 10;
        grouped(&db, (1..=n).map(insert).collect()).await;
        assert_eq!(commits.load(Ordering::SeqCst), 2);
        assert_eq!(stored(&db).await.len(), n as usize);
    }

    #[tokio::test]
    async fn a_failed_write_rolls_back_alone() {
        let (db, _) = counted().await;
        let failing: Job = Box::new(|conn| {
            conn.execute("INSERT INTO t (n) VALUES (2)", [])?;
            Err(DbError::Rejected("no".into()))
        });
        let outcomes = grouped(&db, vec![insert(1), failing, insert(3)]).await;
        let results: Vec<_> = outcomes.into_iter().map(result).collect();
        assert!(
            matches!(results[2], Err(DbError::Rejected(_))),
            "{results:?}"
        );
        assert_eq!(results[3].as_ref().unwrap(), &3);
        assert_eq!(stored(&db).await, vec![1, 3]);
    }

    #[tokio::test]
    async fn a_panicking_write_rolls_back_alone_and_its_caller_gets_the_panic() {
        let (db, _) = counted().await;
        let panicking: Job = Box::new(|conn| {
            conn.execute("INSERT INTO t (n) VALUES (2)", [])?;
            panic!("boom");
        });
        let outcomes = grouped(&db, vec![insert(1), panicking, insert(3)]).await;
        assert!(matches!(outcomes[2], Outcome::Panicked(_)));
        assert_eq!(stored(&db).await, vec![1, 3]);

        let caller = tokio::spawn({
            let db = db.clone();
            async move {
                db.write(|_| -> Result<(), DbError> { panic!("again") })
                    .await
            }
        });
        assert!(caller.await.unwrap_err().is_panic());
        db.write(|conn| Ok(conn.execute("INSERT INTO t (n) VALUES (4)", [])?))
            .await
            .unwrap();
        assert_eq!(stored(&db).await, vec![1, 3, 4]);
    }

    #[tokio::test]
    async fn a_failed_commit_fails_every_write_of_its_group() {
        let (db, _) = counted().await;
        // A deferred foreign key is checked at COMMIT, which then fails.
        let orphan: Job = Box::new(|conn| {
            conn.execute("INSERT INTO child (p) VALUES (99)", [])?;
            Ok(9)
        });
        let outcomes = grouped(&db, vec![insert(1), orphan, insert(3)]).await;
        for outcome in outcomes {
            assert!(matches!(result(outcome), Err(DbError::Unavailable(_))));
        }
        assert!(stored(&db).await.is_empty());
        db.write(|conn| Ok(conn.execute("INSERT INTO t (n) VALUES (5)", [])?))
            .await
            .unwrap();
        assert_eq!(stored(&db).await, vec![5]);
    }

    #[tokio::test]
    async fn a_lost_transaction_fails_the_writes_before_it() {
        let (db, _) = counted().await;
        let ending: Job = Box::new(|conn| {
            conn.execute_batch("ROLLBACK")?;
            Ok(2)
        });
        let outcomes = grouped(&db, vec![insert(1), ending, insert(3)]).await;
        let results: Vec<_> = outcomes.into_iter().map(result).collect();
        assert!(
            matches!(results[1], Err(DbError::Unavailable(_))),
            "{results:?}"
        );
        assert!(
            matches!(results[2], Err(DbError::Unavailable(_))),
            "{results:?}"
        );
        // The write queued after the lost group runs in a group of its own.
        assert_eq!(results[3].as_ref().unwrap(), &3);
        assert_eq!(stored(&db).await, vec![3]);
    }

    #[tokio::test]
    async fn a_read_queued_in_a_group_runs_after_its_commit() {
        let (db, commits) = counted().await;
        let (release, held) = mpsc::channel::<()>();
        let blocker = db.write(move |conn| {
            held.recv().unwrap();
            Ok(conn.execute("INSERT INTO t (n) VALUES (1)", [])?)
        });
        let read = db.call(|conn| {
            let in_transaction = !conn.is_autocommit();
            let n: i64 = conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?;
            Ok((in_transaction, n))
        });
        let later = db.write(|conn| Ok(conn.execute("INSERT INTO t (n) VALUES (2)", [])?));
        let (first, read, second) = tokio::join!(blocker, read, async {
            release.send(()).unwrap();
            later.await
        });
        first.unwrap();
        second.unwrap();
        let (in_transaction, seen) = read.unwrap();
        assert!(!in_transaction);
        assert_eq!(seen, 1);
        assert_eq!(commits.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn in_a_file_reads_do_not_wait_for_writes_and_see_only_commits() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("d.db")).unwrap();
        db.write(|conn| Ok(conn.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY)")?))
            .await
            .unwrap();
        let (release, held) = mpsc::channel::<()>();
        let (inserted, was_inserted) = mpsc::channel::<()>();
        let writing = tokio::spawn({
            let db = db.clone();
            async move {
                db.write(move |conn| {
                    conn.execute("INSERT INTO t (n) VALUES (1)", [])?;
                    inserted.send(()).unwrap();
                    held.recv().unwrap();
                    Ok(())
                })
                .await
            }
        });
        tokio::task::spawn_blocking(move || was_inserted.recv().unwrap())
            .await
            .unwrap();
        // The writing thread is held inside an uncommitted write: a read is answered all the
        // same, and sees nothing of it.
        assert!(stored(&db).await.is_empty());
        release.send(()).unwrap();
        writing.await.unwrap().unwrap();
        assert_eq!(stored(&db).await, vec![1]);
        // The reading connection cannot write.
        let refused = db
            .call(|conn| Ok(conn.execute("INSERT INTO t (n) VALUES (2)", [])?))
            .await;
        assert!(refused.is_err());
        assert_eq!(stored(&db).await, vec![1]);
    }
}
