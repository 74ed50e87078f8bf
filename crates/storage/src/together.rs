//! Group commit for the direct connection's hottest writes, the refresh token's rotation and the code exchange:
//! writes that are ready at the same moment are committed in one SQLite transaction.
//!
//! Each rotation alone paid a `BEGIN`, a `COMMIT` and a write-ahead-log frame for every page it touched, among them
//! the last pages of the refresh tokens, the audit log and their indexes, which every rotation touches. Committed
//! together, a batch writes those pages once. On the 2-core bench machine (16 connections, 3 interleaved rounds) a
//! refresh cost 786–795 µs of server CPU alone and 708–744 in batches.
//!
//! A write is queued ([`WriteQueue::push`]); its task then lets the other tasks ready on its thread run up to their
//! own writes, and whichever comes first to the connection runs all that is queued ([`WriteQueue::run`]). A write
//! whose task is dropped before its turn (the client went away) is never run.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{Connection, Transaction, TransactionBehavior};

/// The writes waiting for a turn on the connection.
#[derive(Default)]
pub(crate) struct WriteQueue {
    queued: Mutex<Vec<Queued>>,
}

/// A write waiting in the queue, and where its fate is told.
struct Queued {
    job: Job,
    ticket: Arc<AtomicU8>,
}

/// A queued write's body: runs it and says what became of it.
type Job = Box<dyn FnOnce(&Transaction<'_>) -> Outcome + Send>;

enum Outcome {
    /// Wrote what it answers: to commit.
    Keep,
    /// Answered `None` and wrote nothing.
    Nothing,
    /// Failed: the batch is rolled back.
    Failed,
}

/// A ticket's states: waiting in the queue, given up by its task, being run, committed, not committed.
const QUEUED: u8 = 0;
const CANCELLED: u8 = 1;
const RUNNING: u8 = 2;
const COMMITTED: u8 = 3;
const DROPPED: u8 = 4;

/// A queued write, as its caller holds it: dropped while still queued, the write is never run.
pub(crate) struct Waiting<T, E> {
    answer: Arc<Mutex<Option<Answer<T, E>>>>,
    ticket: Arc<AtomicU8>,
}

/// What a write's body answered.
type Answer<T, E> = Result<Option<T>, E>;

impl WriteQueue {
    /// Queues `body`, to be run in one transaction with the writes queued beside it. `body` must write nothing
    /// before it decides to answer `None` (a refusal: the batch goes on without it); when it fails, the whole
    /// batch is rolled back.
    pub(crate) fn push<T, E>(
        &self,
        body: impl FnOnce(&Transaction<'_>) -> Result<Option<T>, E> + Send + 'static,
    ) -> Waiting<T, E>
    where
        T: Send + 'static,
        E: Send + 'static,
    {
        let waiting = Waiting { answer: Arc::default(), ticket: Arc::new(AtomicU8::new(QUEUED)) };
        let answer = Arc::clone(&waiting.answer);
        let job: Job = Box::new(move |tx| {
            let result = body(tx);
            let outcome = match &result {
                Ok(Some(_)) => Outcome::Keep,
                Ok(None) => Outcome::Nothing,
                Err(_) => Outcome::Failed,
            };
            *answer.lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
            outcome
        });
        let ticket = Arc::clone(&waiting.ticket);
        self.queued.lock().unwrap_or_else(PoisonError::into_inner).push(Queued { job, ticket });
        waiting
    }

    /// Runs every queued write in one `BEGIN IMMEDIATE` transaction on `connection` and tells each its fate;
    /// whether anything was committed. When the write lock is held elsewhere, none is run.
    pub(crate) fn run(&self, connection: &mut Connection) -> bool {
        let batch = std::mem::take(&mut *self.queued.lock().unwrap_or_else(PoisonError::into_inner));
        let batch: Vec<Queued> = batch.into_iter().filter(Queued::claim).collect();
        if batch.is_empty() {
            return false;
        }
        let tx = match connection.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(error) => {
                if !crate::direct::busy(&error) {
                    tracing::warn!(%error, "beginning a direct write failed");
                }
                batch.iter().for_each(|queued| queued.ticket.store(DROPPED, Ordering::Release));
                return false;
            }
        };
        let mut kept = Vec::with_capacity(batch.len());
        let mut failed = false;
        for Queued { job, ticket } in batch {
            if failed {
                ticket.store(DROPPED, Ordering::Release);
                continue;
            }
            match job(&tx) {
                Outcome::Keep => kept.push(ticket),
                Outcome::Nothing => ticket.store(DROPPED, Ordering::Release),
                Outcome::Failed => {
                    ticket.store(DROPPED, Ordering::Release);
                    failed = true;
                }
            }
        }
        let committed = if failed { tx.rollback().map(|()| false) } else { tx.commit().map(|()| !kept.is_empty()) };
        let committed = committed.unwrap_or_else(|error| {
            tracing::warn!(%error, "committing direct writes failed");
            false
        });
        let fate = if committed { COMMITTED } else { DROPPED };
        kept.iter().for_each(|ticket| ticket.store(fate, Ordering::Release));
        committed
    }
}

impl Queued {
    /// Takes the write to run it; `false` if its task gave it up.
    fn claim(&self) -> bool {
        self.ticket.compare_exchange(QUEUED, RUNNING, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }
}

impl<T, E> Waiting<T, E> {
    /// Still waiting for a turn: its task runs the queue.
    pub(crate) fn queued(&self) -> bool {
        self.ticket.load(Ordering::Acquire) == QUEUED
    }

    /// What the write answered once committed; `None` when nothing was committed for it (it answered `None`, the
    /// write lock was held elsewhere, another write of its batch failed, or it never ran); its error when it failed.
    pub(crate) fn answer(self) -> Result<Option<T>, E> {
        let answer = self.answer.lock().unwrap_or_else(PoisonError::into_inner).take();
        match (self.ticket.load(Ordering::Acquire), answer) {
            (COMMITTED, Some(answer)) => answer,
            (_, Some(Err(error))) => Err(error),
            _ => Ok(None),
        }
    }
}

impl<T, E> Drop for Waiting<T, E> {
    fn drop(&mut self) {
        let _ = self.ticket.compare_exchange(QUEUED, CANCELLED, Ordering::AcqRel, Ordering::Acquire);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database file of the test's own, with one table.
    fn database(name: &str) -> (std::path::PathBuf, Connection) {
        let path = std::env::temp_dir().join(format!("wsoauth-together-{name}-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let connection = Connection::open(&path).unwrap();
        connection.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (v INTEGER NOT NULL);").unwrap();
        (path, connection)
    }

    fn remove(path: &std::path::Path) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    type Answer = Waiting<i64, rusqlite::Error>;

    fn insert(queue: &WriteQueue, v: i64) -> Answer {
        queue.push(move |tx| tx.execute("INSERT INTO t (v) VALUES (?1)", [v]).map(|_| Some(v)))
    }

    fn stored(connection: &Connection) -> Vec<i64> {
        let mut select = connection.prepare("SELECT v FROM t ORDER BY v").unwrap();
        select.query_map([], |row| row.get(0)).unwrap().map(Result::unwrap).collect()
    }

    #[test]
    fn writes_queued_together_are_committed_together() {
        let (path, mut connection) = database("batch");
        let queue = WriteQueue::default();
        let (one, two) = (insert(&queue, 1), insert(&queue, 2));
        let refused: Answer = queue.push(|_| Ok(None));
        let three = insert(&queue, 3);
        assert!(one.queued() && three.queued());
        assert!(queue.run(&mut connection));
        assert!(!one.queued());
        assert_eq!((one.answer().unwrap(), two.answer().unwrap()), (Some(1), Some(2)));
        assert_eq!((refused.answer().unwrap(), three.answer().unwrap()), (None, Some(3)));
        assert_eq!(stored(&connection), [1, 2, 3]);
        // nothing left: the next run has nothing to do
        assert!(!queue.run(&mut connection));
        remove(&path);
    }

    #[test]
    fn a_failing_write_rolls_its_batch_back() {
        let (path, mut connection) = database("failing");
        let queue = WriteQueue::default();
        let before = insert(&queue, 1);
        let failing: Answer = queue.push(|tx| tx.execute("INSERT INTO t (v) VALUES (NULL)", []).map(|_| Some(0)));
        let after = insert(&queue, 2);
        assert!(!queue.run(&mut connection));
        assert!(failing.answer().is_err());
        assert_eq!((before.answer().unwrap(), after.answer().unwrap()), (None, None));
        assert!(stored(&connection).is_empty());
        // the connection is usable again
        let again = insert(&queue, 4);
        assert!(queue.run(&mut connection));
        assert_eq!(again.answer().unwrap(), Some(4));
        remove(&path);
    }

    #[test]
    fn a_write_given_up_before_its_turn_never_runs() {
        let (path, mut connection) = database("given-up");
        let queue = WriteQueue::default();
        drop(insert(&queue, 1));
        let kept = insert(&queue, 2);
        assert!(queue.run(&mut connection));
        assert_eq!(kept.answer().unwrap(), Some(2));
        assert_eq!(stored(&connection), [2]);
        remove(&path);
    }

    #[test]
    fn with_the_write_lock_held_elsewhere_nothing_runs() {
        let (path, mut connection) = database("busy");
        connection.busy_timeout(std::time::Duration::ZERO).unwrap();
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let queue = WriteQueue::default();
        let write = insert(&queue, 1);
        assert!(!queue.run(&mut connection));
        assert_eq!(write.answer().unwrap(), None);
        other.execute_batch("ROLLBACK").unwrap();
        assert!(stored(&connection).is_empty());
        remove(&path);
    }
}
