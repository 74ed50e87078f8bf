//! SQLite writes on the token path, and the API's and pages' reads, without a thread hand-off.
//!
//! sqlx runs each SQLite connection on a thread of its own: every statement is a message to that thread and an
//! answer back, two context switches or more, and a refresh (begin, rotation, new token, audit row, commit) made
//! five of them. Measured on the 2-core bench machine, those hand-offs were a third of a refresh's CPU, more than
//! the RS256 signature. Here the hottest writes run on one connection this process owns, synchronously on the
//! calling thread, as one `BEGIN IMMEDIATE ... COMMIT` with prepared statements kept between calls: the same SQL
//! text as the sqlx path, a few tens of microseconds in all. Refresh-token rotations and code exchanges ready at the
//! same moment share one such transaction ([`Direct::write_together`], [`crate::together`]).
//!
//! The connection never waits for SQLite's write lock: its busy timeout is zero, so a write that finds the lock
//! taken (a page's write on the pool, the admin CLI, another process) answers `None` at once and the
//! caller takes the sqlx path, which waits for the lock on sqlx's thread instead of blocking the async runtime.
//!
//! Reads ([`Direct::read`]) run the same way on read-only connections of their own, one per thread reading at
//! the time (at most [`MAX_READERS`]): a task list read through the pool cost two hand-offs per statement and more
//! per batch of rows.
//!
//! Nor does it checkpoint the write-ahead log (a checkpoint syncs files): [`Direct::checkpoint`], 25 ms after the last
//! one if anything was written here, copies the log into the database on a blocking thread with a connection of its
//! own: first beside the writes, then, once the log holds [`GATE_FRAMES`], what they added meanwhile while direct
//! writes wait at the gate (asynchronously), so that the log starts over. It must be done so: a steady stream of writes
//! never lets a checkpoint that runs beside them catch up, so the log is never started over (it grew by 1 GB in 8 s of
//! refreshes); and writes that found the checkpoint's lock taken would each go the slow way and sleep in the busy
//! handler (refresh throughput fell to a third). The first pass keeps the wait at the gate short: refresh's p99 19–21 →
//! 9 ms; checkpointing every 25 ms rather than 100 keeps what is left for the gate small when the writes are scattered
//! over a large database (refresh's p99 with 1,000,000 tokens 19–24 → 14–17 ms). A slow first pass is followed by
//! another beside the writes, and a pass that met a busy disk (other files' write-back) puts the gated one off for a
//! few cycles, rather than holding every write behind a sync that waits for that disk (refresh's p99 with 1,000,000
//! tokens, four A/B rounds on a machine whose own log lines were being written back: 30–117 ms → 28–44 ms).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, OpenFlags, ToSql, TransactionBehavior};

use crate::together::WriteQueue;

/// What a checkpoint of the direct connection's writes did, as told to the observer given to
/// [`crate::Store::observe_checkpoints`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointEvent {
    /// A `PASSIVE` pass, beside the writes, and how long it took.
    Passive(Duration),
    /// The gated pass: how long the direct writes were held at the gate (while those in progress finished, then
    /// while the log's rest was copied and synced).
    Gated(Duration),
    /// A cycle put its gated pass off for a busy disk.
    PutOff,
}

/// Told of every [`CheckpointEvent`], on the checkpoint task.
pub type CheckpointObserver = Arc<dyn Fn(CheckpointEvent) + Send + Sync>;

/// The direct connection.
pub(crate) struct Direct {
    /// `None` once the store is closed.
    connection: Mutex<Option<Connection>>,
    /// The checkpoints' connection (busy timeout [`CHECKPOINT_WAIT`]); `None` once the store is closed.
    checkpointer: Mutex<Option<Connection>>,
    /// Shared by direct writes, taken alone by a checkpoint.
    gate: tokio::sync::RwLock<()>,
    /// Writes waiting to be committed together ([`Direct::write_together`]).
    together: WriteQueue,
    /// Set by every commit here, cleared by a checkpoint.
    written: AtomicBool,
    /// Gated passes put off in a row for a busy disk (only the checkpoint task writes it).
    deferred: AtomicU32,
    /// The read connections not in use ([`Direct::read`]).
    readers: Mutex<Readers>,
    /// The database file, for read connections opened as they are needed.
    path: String,
    /// Told what each checkpoint did (metrics), once set.
    observer: std::sync::OnceLock<CheckpointObserver>,
}

/// Read connections: as many as threads have read at once, at most [`MAX_READERS`], kept until the store closes.
#[derive(Default)]
struct Readers {
    idle: Vec<Connection>,
    /// Idle or in use.
    open: usize,
    closed: bool,
}

/// The most read connections: as many as the pool's (8). Usually no more than the runtime's workers read at once,
/// but a long read goes on beside them (see [`collect_rows`]); with this many at once, further reads wait for the
/// pool instead of taking a thread and a page cache each.
const MAX_READERS: usize = 8;

/// The longest a checkpoint waits for a reader or a writer of another connection; what it could not copy then
/// it copies next time.
const CHECKPOINT_WAIT: Duration = Duration::from_millis(100);

/// At most this many `PASSIVE` passes before the gated one; another only after a pass slower than [`QUICK_PASS`].
const PASSIVE_PASSES: usize = 3;

/// A pass this quick left little for the gated pass to copy.
const QUICK_PASS: Duration = Duration::from_millis(5);

/// A pass slower than this met a busy disk: a pass over a large database's scattered pages takes 10–50 ms on the
/// bench machine, other files' write-back (a server's own log lines on the same disk) makes a sync wait 100–300 ms.
const CONGESTED: Duration = Duration::from_millis(50);

/// The log's length (in frames, a page each: 8 MiB of 4 KiB pages) from which a cycle ends with the gated pass.
/// A shorter log is only copied beside the writes: it starts over by itself once a pass copies all of it before
/// the next write (writes that pause), and otherwise once it has grown this long. Gated at every cycle, the writes
/// of a steady refresh load waited at the gate 26–28 times a second, 5–12 % of the time; at this length 5 times,
/// each wait longer (SQLite refresh, 16 connections, interleaved rounds: 12–14 % more refreshes a second, the same
/// p99 on an empty database and 18 against 21.5 ms, medians of 4 rounds, with 1,000,000 tokens).
const GATE_FRAMES: i64 = 2048;

/// Cycles in a row whose gated pass may wait for a calmer disk; the log then holds that many cycles' writes.
const MAX_DEFERRALS: u32 = 4;

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Direct")
    }
}

impl Direct {
    /// Opens the database file `path` (created and migrated by the pool already).
    pub(crate) fn open(path: &str) -> Result<Direct, rusqlite::Error> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(path, flags)?;
        connection.busy_timeout(Duration::ZERO)?;
        connection.pragma_update(None, "foreign_keys", true)?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.pragma_update(None, "wal_autocheckpoint", 0)?;
        // what a burst of writes grew the log to is given back after the next checkpoint, down to this
        connection.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        connection.set_prepared_statement_cache_capacity(32);
        let checkpointer = Connection::open_with_flags(path, flags)?;
        checkpointer.busy_timeout(CHECKPOINT_WAIT)?;
        checkpointer.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(Direct {
            connection: Mutex::new(Some(connection)),
            checkpointer: Mutex::new(Some(checkpointer)),
            gate: tokio::sync::RwLock::new(()),
            together: WriteQueue::default(),
            written: AtomicBool::new(false),
            deferred: AtomicU32::new(0),
            readers: Mutex::default(),
            path: path.to_owned(),
            observer: std::sync::OnceLock::new(),
        })
    }

    /// Runs `body` on one of this process's read connections, on the calling thread: a read of a few rows then
    /// costs no thread hand-off, where the pool's connections cost two per statement and more per batch of rows
    /// (on the bench machine about half of an API read's CPU). Reads in WAL mode wait for no writer and no
    /// checkpoint. `None` when nothing was read: the store is closed, [`MAX_READERS`] are in use, or SQLite is busy
    /// (another process recovering the log or holding the database exclusively); the caller then reads the usual way.
    pub(crate) fn read<T>(
        &self,
        body: impl FnOnce(&Connection) -> Result<T, rusqlite::Error>,
    ) -> Result<Option<T>, rusqlite::Error> {
        let idle = {
            let mut readers = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
            if readers.closed {
                return Ok(None);
            }
            match readers.idle.pop() {
                Some(connection) => Some(connection),
                None if readers.open < MAX_READERS => {
                    readers.open += 1;
                    None
                }
                None => return Ok(None),
            }
        };
        let connection = match idle {
            Some(connection) => connection,
            None => match self.open_reader() {
                Ok(connection) => connection,
                Err(error) => {
                    self.readers.lock().unwrap_or_else(PoisonError::into_inner).open -= 1;
                    return if busy(&error) { Ok(None) } else { Err(error) };
                }
            },
        };
        let answer = body(&connection);
        let mut readers = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        if !readers.closed {
            readers.idle.push(connection);
        }
        match answer {
            Err(error) if busy(&error) => Ok(None),
            answer => answer.map(Some),
        }
    }

    fn open_reader(&self) -> Result<Connection, rusqlite::Error> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(&self.path, flags)?;
        connection.busy_timeout(Duration::ZERO)?;
        connection.set_prepared_statement_cache_capacity(32);
        Ok(connection)
    }

    /// Runs `body` in one `BEGIN IMMEDIATE` transaction on the calling thread: committed when it answers a value,
    /// rolled back when it answers `None` (nothing to keep: the caller's usual path tells why) or fails. `None`
    /// when nothing was committed: declined, the write lock held elsewhere (before anything was written) or the
    /// connection closed; the caller then writes the usual way.
    pub(crate) async fn write<T, E: From<rusqlite::Error>>(
        &self,
        body: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<Option<T>, E>,
    ) -> Result<Option<T>, E> {
        // shared: only a checkpoint waits here, and nothing awaits while holding it
        let _open = self.gate.read().await;
        // A panic inside leaves no transaction open (the transaction rolls back as it unwinds), so a poisoned
        // lock still guards a sound connection.
        let mut connection = self.connection.lock().unwrap_or_else(PoisonError::into_inner);
        // closed: the pool (closed too) answers
        let Some(connection) = connection.as_mut() else { return Ok(None) };
        let tx = match connection.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(error) if busy(&error) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        let Some(value) = body(&tx)? else {
            tx.rollback()?;
            return Ok(None);
        };
        tx.commit()?;
        self.written.store(true, Ordering::Relaxed);
        Ok(Some(value))
    }

    /// Like [`Direct::write`], but committed in one transaction with the other such writes ready at the time
    /// (group commit, [`crate::together`]): the write is queued, the task lets the others ready on its thread run up
    /// to their own writes, then whichever comes first to the connection runs all that is queued. `body` must write
    /// nothing before it decides to answer `None`; when it fails, its caller gets the error and the others of its
    /// batch `None` (they then write the usual way).
    pub(crate) async fn write_together<T, E>(
        &self,
        body: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<Option<T>, E> + Send + 'static,
    ) -> Result<Option<T>, E>
    where
        T: Send + 'static,
        E: Send + 'static,
    {
        let waiting = self.together.push(body);
        tokio::task::yield_now().await;
        let _open = self.gate.read().await;
        let mut connection = self.connection.lock().unwrap_or_else(PoisonError::into_inner);
        // closed: the pool (closed too) answers
        let Some(connection) = connection.as_mut() else { return Ok(None) };
        if waiting.queued() && self.together.run(connection) {
            self.written.store(true, Ordering::Relaxed);
        }
        waiting.answer()
    }

    /// Closes the connections (after any write in progress); later reads and writes answer `None`.
    pub(crate) fn close(&self) {
        let mut readers = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        readers.closed = true;
        readers.idle.clear();
        drop(readers);
        self.connection.lock().unwrap_or_else(PoisonError::into_inner).take();
        self.checkpointer.lock().unwrap_or_else(PoisonError::into_inner).take();
    }

    /// If anything was written here since the last one: a `PASSIVE` checkpoint, and once the log holds
    /// [`GATE_FRAMES`] a `RESTART` one, direct writes waiting at the gate meanwhile, so the next write starts the
    /// log over. `PASSIVE` ones beside the writes first copy what the
    /// log holds by then, again while a pass is slow (the writes it let through are then many), so that the writes
    /// wait only while the few frames written during the last pass are copied. A pass slower than [`CONGESTED`]
    /// means the disk is busy with something else (other files' write-back): a sync behind the gate would hold every
    /// write that long, so the gated pass waits for a later cycle, at most [`MAX_DEFERRALS`] times in a row
    /// ([`after_pass`] decides).
    pub(crate) async fn checkpoint(self: &Arc<Self>) {
        if !self.written.swap(false, Ordering::Relaxed) {
            return;
        }
        let mut pass = 0;
        loop {
            pass += 1;
            let started = Instant::now();
            // never waits for anyone; what it leaves, the `RESTART` copies
            let frames = match self.checkpoint_now("PRAGMA wal_checkpoint(PASSIVE)").await {
                Ok(Ok(frames)) => frames,
                Ok(Err(error)) => {
                    if !busy(&error) {
                        tracing::warn!(%error, "checkpointing the write-ahead log failed");
                    }
                    GATE_FRAMES
                }
                Err(_) => GATE_FRAMES,
            };
            let took = started.elapsed();
            self.observe(CheckpointEvent::Passive(took));
            if frames < GATE_FRAMES {
                return;
            }
            match after_pass(took, pass, self.deferred.load(Ordering::Relaxed)) {
                AfterPass::Another => {}
                AfterPass::Gate => break,
                AfterPass::PutOff => {
                    self.observe(CheckpointEvent::PutOff);
                    self.deferred.fetch_add(1, Ordering::Relaxed);
                    self.written.store(true, Ordering::Relaxed);
                    return;
                }
            }
        }
        self.deferred.store(0, Ordering::Relaxed);
        let started = Instant::now();
        let closed = self.gate.write().await;
        match self.checkpoint_now("PRAGMA wal_checkpoint(RESTART)").await {
            Ok(Ok(_)) => {}
            // a reader or another process's writer kept it from finishing: the rest next time
            Ok(Err(error)) if busy(&error) => self.written.store(true, Ordering::Relaxed),
            Ok(Err(error)) => tracing::warn!(%error, "checkpointing the write-ahead log failed"),
            Err(error) => tracing::warn!(%error, "the checkpoint task failed"),
        }
        drop(closed);
        self.observe(CheckpointEvent::Gated(started.elapsed()));
    }

    /// Sets who is told what each checkpoint did; the first one set stays.
    pub(crate) fn set_observer(&self, observer: CheckpointObserver) {
        let _first = self.observer.set(observer);
    }

    fn observe(&self, event: CheckpointEvent) {
        if let Some(observer) = self.observer.get() {
            observer(event);
        }
    }

    /// Runs the checkpoint `pragma` on the checkpoints' connection, on a blocking thread.
    async fn checkpoint_now(
        self: &Arc<Self>,
        pragma: &'static str,
    ) -> Result<Result<i64, rusqlite::Error>, tokio::task::JoinError> {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let checkpointer = this.checkpointer.lock().unwrap_or_else(PoisonError::into_inner);
            match checkpointer.as_ref() {
                // (busy, frames in the log, frames copied)
                Some(connection) => connection.query_row(pragma, [], |row| row.get(1)),
                None => Ok(0),
            }
        })
        .await
    }
}

/// Rows a direct read reads in place; for the rest it first lets the runtime hand this worker's other tasks to
/// another thread ([`tokio::task::block_in_place`]). A list of thousands of rows takes tens of milliseconds to read
/// (9,000 tasks: 110–160 ms with their JSON), and the requests queued on the same worker would wait that long:
/// `me` beside such lists answered about a quarter as often, its p99 up to twice as long, as when the pool read them.
const ROWS_IN_PLACE: usize = 50;

/// Every row of `rows`, each read by `row`: the outer error is SQLite's (a busy database answers `None` in
/// [`Direct::read`]), the inner one `row`'s.
pub(crate) fn collect_rows<T, E>(
    rows: &mut rusqlite::Rows<'_>,
    mut row: impl FnMut(&rusqlite::Row<'_>) -> Result<T, E>,
) -> Result<Result<Vec<T>, E>, rusqlite::Error> {
    let mut read = Vec::new();
    // Ok(Ok(true)) once every row is read
    let mut some =
        |rows: &mut rusqlite::Rows<'_>, read: &mut Vec<T>, most: usize| -> Result<Result<bool, E>, rusqlite::Error> {
            for _ in 0..most {
                let Some(next) = rows.next()? else { return Ok(Ok(true)) };
                match row(next) {
                    Ok(value) => read.push(value),
                    Err(error) => return Ok(Err(error)),
                }
            }
            Ok(Ok(false))
        };
    let done = match some(rows, &mut read, ROWS_IN_PLACE)? {
        Ok(false) if may_block_in_place() => tokio::task::block_in_place(|| some(rows, &mut read, usize::MAX))?,
        Ok(false) => some(rows, &mut read, usize::MAX)?,
        done => done,
    };
    Ok(done.map(|_| read))
}

/// `block_in_place` works on a worker of a multi-threaded runtime, and does nothing on other threads; it panics on
/// a current-thread runtime.
fn may_block_in_place() -> bool {
    tokio::runtime::Handle::try_current()
        .map_or(true, |runtime| runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}

/// What a checkpoint does after a `PASSIVE` pass.
#[derive(Debug, PartialEq, Eq)]
enum AfterPass {
    /// Another `PASSIVE` pass: this one was slow, so the writes it let through are many.
    Another,
    /// The gated `RESTART` pass now.
    Gate,
    /// Nothing more this cycle: the disk is busy with something else.
    PutOff,
}

/// The next step after the `pass`-th `PASSIVE` pass of a cycle (from 1), which took `took`, when `deferred` cycles in a
/// row have put their gated pass off. Once those are [`MAX_DEFERRALS`], a congested pass goes to the gate at once:
/// another pass on that disk would be as slow, and the gated pass must sync on it anyway.
fn after_pass(took: Duration, pass: usize, deferred: u32) -> AfterPass {
    if took > CONGESTED {
        return if deferred < MAX_DEFERRALS { AfterPass::PutOff } else { AfterPass::Gate };
    }
    if took <= QUICK_PASS || pass >= PASSIVE_PASSES { AfterPass::Gate } else { AfterPass::Another }
}

pub(crate) fn busy(error: &rusqlite::Error) -> bool {
    matches!(error.sqlite_error_code(), Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked))
}

/// The parameters `$1 .. $n` of the shared SQL texts, bound by name: SQLite numbers `$NNN` parameters in the
/// order they first appear, not by their digits (sqlx maps the digits; here the names do).
/// At most [`NUMBERED`] of them.
pub(crate) fn numbered<'a>(values: &'a [&'a dyn ToSql]) -> Vec<(&'static str, &'a dyn ToSql)> {
    NAMES.iter().copied().zip(values.iter().copied()).collect()
}

const NAMES: [&str; 16] =
    ["$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9", "$10", "$11", "$12", "$13", "$14", "$15", "$16"];

/// How many parameters [`numbered`] names.
pub(crate) const NUMBERED: usize = NAMES.len();

/// Runs `sql` on the database file at `path` once for each set of values bound to its `$1 .. $n` and answers
/// SQLite's counter `status` for the statement over those runs.
#[cfg(test)]
fn statement_status(
    path: &std::path::Path,
    sql: &str,
    runs: &[&[&dyn ToSql]],
    status: rusqlite::StatementStatus,
) -> i32 {
    let connection = Connection::open(path).expect("open");
    let mut statement = connection.prepare(sql).expect("prepare");
    for values in runs {
        let mut rows = statement.query(&numbered(values)[..]).expect("query");
        while rows.next().expect("step").is_some() {}
    }
    statement.get_status(status)
}

/// How often SQLite parsed and planned `sql` again over `runs` ([`statement_status`]): it does so when a bound value
/// shaped the plan (a `LIMIT` parameter, a `LIKE` pattern), which the hot statements must not let happen.
#[cfg(test)]
pub(crate) fn times_reprepared(path: &std::path::Path, sql: &str, runs: &[&[&dyn ToSql]]) -> i32 {
    statement_status(path, sql, runs, rusqlite::StatementStatus::RePrepare)
}

/// How many virtual machine steps SQLite took to run `sql` once with `values` ([`statement_status`]): a measure of
/// the rows it visited, which does not depend on the machine.
#[cfg(test)]
pub(crate) fn vm_steps(path: &std::path::Path, sql: &str, values: &[&dyn ToSql]) -> i32 {
    statement_status(path, sql, &[values], rusqlite::StatementStatus::VmStep)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// A new WAL database `NAME.db`, set up by `schema`, in a temporary folder of its own: the folder, the file,
    /// and the connection that set it up.
    fn wal_database(name: &str, schema: &str) -> (std::path::PathBuf, std::path::PathBuf, Connection) {
        let dir = std::env::temp_dir().join(format!("wsoauth-direct-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.db"));
        let setup = Connection::open(&path).unwrap();
        setup.execute_batch(&format!("PRAGMA journal_mode = WAL; {schema}")).unwrap();
        (dir, path, setup)
    }

    /// A read sees what another connection committed just before, reuses its connection, cannot write, opens at most
    /// [`MAX_READERS`] connections, and answers `None` (the pool reads instead) beyond them and after `close`.
    #[test]
    fn reads_see_the_last_commit_reuse_their_connection_and_stop_when_closed() {
        let (dir, path, writer) = wal_database("read", "CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1);");
        let direct = Direct::open(path.to_str().unwrap()).unwrap();
        let count =
            |direct: &Direct| direct.read(|c| c.query_row("SELECT COUNT(*) FROM t", [], |row| row.get::<_, i64>(0)));
        assert_eq!(count(&direct).unwrap(), Some(1));
        writer.execute("INSERT INTO t VALUES (2)", []).unwrap();
        assert_eq!(count(&direct).unwrap(), Some(2));
        assert_eq!(direct.readers.lock().unwrap().idle.len(), 1);
        assert!(direct.read(|c| c.execute("INSERT INTO t VALUES (3)", [])).is_err());

        // reads inside reads each take a connection of their own, up to the limit
        fn depth(direct: &Direct) -> usize {
            direct.read(|_| Ok(depth(direct) + 1)).unwrap().unwrap_or(0)
        }
        assert_eq!(depth(&direct), MAX_READERS);
        assert_eq!(direct.readers.lock().unwrap().idle.len(), MAX_READERS);

        direct.close();
        assert_eq!(count(&direct).unwrap(), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Writes ready at the same moment on a worker are committed in one transaction: eight one-row inserts write the
    /// table's page to the write-ahead log once, where eight awaited one after another write it eight times.
    #[tokio::test]
    async fn writes_ready_together_are_committed_together() {
        let (dir, path, setup) = wal_database("together", "CREATE TABLE t (v INTEGER NOT NULL);");
        let direct = Arc::new(Direct::open(path.to_str().unwrap()).unwrap());
        let insert = |direct: &Arc<Direct>, v: i64| {
            let direct = Arc::clone(direct);
            async move {
                let inserted = direct.write_together(move |tx| tx.execute("INSERT INTO t VALUES (?1)", [v]).map(Some));
                inserted.await.unwrap()
            }
        };
        let truncate = || setup.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
        let frames = || (std::fs::metadata(format!("{}-wal", path.display())).unwrap().len() - 32) / (24 + 4096);
        truncate();
        let tasks: Vec<_> = (0..8).map(|v| tokio::spawn(insert(&direct, v))).collect();
        for task in tasks {
            assert!(task.await.unwrap().is_some());
        }
        assert_eq!(frames(), 1);
        truncate();
        for v in 0..8 {
            assert!(insert(&direct, v).await.is_some());
        }
        assert_eq!(frames(), 8);
        direct.close();
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A checkpoint copies a short log beside the writes only; once the log holds [`GATE_FRAMES`], it holds the
    /// writes at the gate and the next write starts the log over. The observer hears each pass.
    #[tokio::test]
    async fn a_long_log_is_checkpointed_behind_the_gate_and_starts_over() {
        let (dir, path, setup) = wal_database("gate", "CREATE TABLE t (v BLOB NOT NULL);");
        let direct = Arc::new(Direct::open(path.to_str().unwrap()).unwrap());
        let events = Arc::new(Mutex::new(Vec::new()));
        let heard = Arc::clone(&events);
        direct.set_observer(Arc::new(move |event| heard.lock().unwrap().push(event)));
        // (passive passes, gated ones) heard since the last call; put-offs are neither
        let passes = || {
            let all = std::mem::take(&mut *events.lock().unwrap());
            let passive = all.iter().filter(|e| matches!(e, CheckpointEvent::Passive(_))).count();
            (passive, all.iter().filter(|e| matches!(e, CheckpointEvent::Gated(_))).count())
        };
        // rows of about a page each: one frame per row
        let insert = |rows: usize| {
            let direct = Arc::clone(&direct);
            async move {
                let written = direct.write(|tx| {
                    let mut insert = tx.prepare("INSERT INTO t VALUES (zeroblob(4000))")?;
                    for _ in 0..rows {
                        insert.execute([])?;
                    }
                    Ok::<_, rusqlite::Error>(Some(()))
                });
                assert!(written.await.unwrap().is_some());
            }
        };
        let log = || setup.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get::<_, i64>(1)).unwrap();

        insert(10).await;
        direct.checkpoint().await;
        assert_eq!(passes(), (1, 0));
        let short = log();
        assert!(short > 0 && short < GATE_FRAMES, "{short}");

        insert(GATE_FRAMES as usize).await;
        // (a slow pass is followed by another; one that met a busy disk puts the gate off to a later cycle, a few
        // times at most)
        let mut cycles = 0;
        while events.lock().unwrap().iter().all(|event| !matches!(event, CheckpointEvent::Gated(_))) {
            assert!(cycles <= MAX_DEFERRALS, "no gated pass in {cycles} cycles");
            direct.checkpoint().await;
            cycles += 1;
        }
        let (passive, gated) = passes();
        assert!(passive >= 1 && gated == 1, "{passive} {gated}");
        insert(1).await;
        assert!(log() < 10, "the log started over");

        // nothing written since: nothing to do
        direct.checkpoint().await;
        direct.checkpoint().await;
        assert_eq!(passes(), (1, 0));
        direct.checkpoint().await;
        assert_eq!(passes(), (0, 0));
        direct.close();
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A long read lets the other tasks of its worker run meanwhile (the runtime has one worker here: the ticker
    /// could not run before the read ends otherwise); short ones, and reads on a current-thread runtime, just read.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_long_read_lets_its_workers_other_tasks_run() {
        // on the worker: the test's own body runs on a thread of its own
        let (stopped_at, ticker) = tokio::spawn(async {
            let ticked = Arc::new(AtomicBool::new(false));
            let ticker = {
                let ticked = Arc::clone(&ticked);
                tokio::spawn(async move { ticked.store(true, Ordering::SeqCst) })
            };
            let connection = Connection::open_in_memory().unwrap();
            let sql =
                "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 10000000) SELECT x FROM n";
            let mut statement = connection.prepare(sql).unwrap();
            // a row read once the ticker has run stops the read early
            let read = collect_rows(&mut statement.query([]).unwrap(), |row| match ticked.load(Ordering::SeqCst) {
                true => Err(row.get::<_, i64>(0).unwrap()),
                false => Ok(()),
            });
            (read.unwrap().unwrap_err(), ticker)
        })
        .await
        .unwrap();
        assert!(stopped_at > ROWS_IN_PLACE as i64, "{stopped_at}");
        ticker.await.unwrap();

        let connection = Connection::open_in_memory().unwrap();
        let mut statement = connection.prepare("SELECT value FROM json_each('[1,2,3]')").unwrap();
        let read = collect_rows(&mut statement.query([]).unwrap(), |row| row.get::<_, i64>(0)).unwrap();
        assert_eq!(read.unwrap(), [1, 2, 3]);
    }

    #[test]
    fn reads_off_a_runtime_or_on_a_current_thread_one_read_in_place() {
        let connection = Connection::open_in_memory().unwrap();
        let sql = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 1000) SELECT x FROM n";
        let mut statement = connection.prepare(sql).unwrap();
        let count = |statement: &mut rusqlite::Statement<'_>| {
            collect_rows(&mut statement.query([]).unwrap(), |row| row.get::<_, i64>(0)).unwrap().unwrap().len()
        };
        assert_eq!(count(&mut statement), 1000);
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert_eq!(runtime.block_on(async { count(&mut statement) }), 1000);
    }

    #[test]
    fn a_quick_pass_goes_to_the_gate() {
        assert_eq!(after_pass(QUICK_PASS, 1, 0), AfterPass::Gate);
        assert_eq!(after_pass(MS, 2, 3), AfterPass::Gate);
    }

    #[test]
    fn a_slow_pass_is_followed_by_another_up_to_the_limit() {
        assert_eq!(after_pass(QUICK_PASS + MS, 1, 0), AfterPass::Another);
        assert_eq!(after_pass(CONGESTED, PASSIVE_PASSES - 1, 0), AfterPass::Another);
        assert_eq!(after_pass(CONGESTED, PASSIVE_PASSES, 0), AfterPass::Gate);
    }

    #[test]
    fn a_congested_pass_puts_the_gate_off_until_the_deferrals_are_used_up() {
        let congested = CONGESTED + MS;
        for deferred in 0..MAX_DEFERRALS {
            assert_eq!(after_pass(congested, 1, deferred), AfterPass::PutOff);
            assert_eq!(after_pass(congested, PASSIVE_PASSES, deferred), AfterPass::PutOff);
        }
        assert_eq!(after_pass(congested, 1, MAX_DEFERRALS), AfterPass::Gate);
    }
}
