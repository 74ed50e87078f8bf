//! PostgreSQL group commit for the token path's writes: the writes of one kind (refresh-token rotations, code
//! exchanges) that arrive while one batch is in flight go together in the next, as one statement and one round
//! trip, what `crate::together` does for SQLite. Each write alone cost a round trip and a commit of its own, and the
//! server's side of a round trip (the statement's encoding, the socket, the wake-ups) was most of what a refresh
//! cost beside its signature.
//!
//! A write is queued; while fewer than [`LEADERS`] tasks lead batches of its kind, one more is spawned: it takes
//! everything queued, runs it, answers each write, and goes on while more arrived meanwhile. Two such tasks keep a
//! batch running while the other waits for its commit (one alone left the server idle behind a slow commit: p99 49
//! against 17 ms in one round of rotations, at 1.5 % more CPU per refresh). The batches run in those tasks, so a
//! request dropped while waiting (its client went away) cancels nothing but its own answer. A write whose batch
//! failed (the error is logged), or whose lead ended before answering it, runs alone, as a batch of one.
//!
//! The batches of every kind run on [`LEADERS`] connections of their own, which keep each statement's generic plan
//! (`plan_cache_mode = force_generic_plan`). Left to choose, PostgreSQL planned `ROTATE_MANY` anew for every batch:
//! a plan for the batch's own size looks cheaper than the generic one, which assumes ten rows, so the generic plan
//! was never kept, and planning that statement costs more than running it (1.9 against 1.0 ms in `EXPLAIN
//! ANALYZE`). A plan kept for the connection's life must not depend on what the tables held when it was made: one
//! made while the codes were few hashed a scan of the whole `auth_codes` table, and kept doing so as it grew (the
//! bench's exchanges fell to a fifth, PostgreSQL at 1.6 cores; the statistics that would have replanned it come
//! from `ANALYZE`, which nothing ran: autovacuum was off). So these connections also turn sequential scans, hash
//! joins and merge joins off: each batch row is found by its index, whatever the table's size, as these
//! statements mean.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;
use tokio::sync::oneshot;

use crate::error::StorageError;

/// A kind of write that runs in batches.
pub(crate) trait Batched: Send + Sync + Sized + 'static {
    /// What a write that won answers (a grant, a grant's id).
    type Won: Send + 'static;
    /// The writes' name in the log.
    const NAME: &'static str;
    /// Runs `batch` as one statement; answers the place in `batch` of each write that won, with what it won.
    fn run_many<'a>(
        pool: &'a PgPool,
        batch: &'a [Arc<Self>],
    ) -> impl Future<Output = Result<Vec<(usize, Self::Won)>, StorageError>> + Send + 'a;
}

/// The connections the batches run on: at most [`LEADERS`] to the database of `options`, opened as they are
/// needed, with the store's pool settings (`super::pg_pool_options`), generic plans, and no sequential scans, hash
/// or merge joins (the module's comment says why).
pub(crate) fn connections(options: &PgConnectOptions) -> PgPool {
    let options = options.clone().options([
        ("plan_cache_mode", "force_generic_plan"),
        ("enable_seqscan", "off"),
        ("enable_hashjoin", "off"),
        ("enable_mergejoin", "off"),
    ]);
    super::pg_pool_options(LEADERS as u32).connect_lazy_with(options)
}

/// A write's answer: what it won, or `None` when it did not win (the caller reads why). Dropped unanswered when
/// its batch failed.
type Answer<T> = oneshot::Sender<Option<<T as Batched>::Won>>;

/// The writes of one kind waiting for the next batch, and the connections that run the batches.
pub(crate) struct Batches<T: Batched> {
    queue: Mutex<Queue<T>>,
    pool: PgPool,
}

impl<T: Batched> std::fmt::Debug for Batches<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Batches({})", T::NAME)
    }
}

struct Queue<T: Batched> {
    waiting: Vec<(Arc<T>, Answer<T>)>,
    /// Tasks leading batches (at most [`LEADERS`]).
    leaders: usize,
}

/// Batches of one kind in flight at once: while one waits for its commit, the next one runs.
const LEADERS: usize = 2;

impl<T: Batched> Batches<T> {
    /// Batches on `pool` (see [`connections`]), which other kinds may share.
    pub(crate) fn new(pool: PgPool) -> Batches<T> {
        Batches { queue: Mutex::new(Queue { waiting: Vec::new(), leaders: 0 }), pool }
    }

    /// Runs `write` with the others queued beside it, in one statement: what it won, or `None` when it did not.
    pub(crate) async fn run(self: &Arc<Self>, write: T) -> Result<Option<T::Won>, StorageError> {
        let write = Arc::new(write);
        let (answer, answered) = oneshot::channel();
        let lead = {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.waiting.push((Arc::clone(&write), answer));
            queue.leaders < LEADERS && {
                queue.leaders += 1;
                true
            }
        };
        if lead {
            tokio::spawn(Lead { batches: Arc::clone(self), done: false }.run());
        }
        match answered.await {
            Ok(answer) => Ok(answer),
            // its batch failed, or its lead ended first: alone
            Err(_) => Ok(T::run_many(&self.pool, std::slice::from_ref(&write)).await?.pop().map(|(_, won)| won)),
        }
    }
}

/// A task leading batches while writes are queued. Dropped before it is done (a panic, or a runtime shutting down)
/// as the last one, it drops the waiting ones' answers (they run alone), so that none waits for a lead that never
/// comes.
struct Lead<T: Batched> {
    batches: Arc<Batches<T>>,
    done: bool,
}

impl<T: Batched> Lead<T> {
    /// Runs what is queued as one batch and answers each write, again while more was queued meanwhile.
    async fn run(mut self) {
        loop {
            let batch = {
                let mut queue = self.batches.queue.lock().unwrap_or_else(PoisonError::into_inner);
                if queue.waiting.is_empty() {
                    queue.leaders -= 1;
                    self.done = true;
                    return;
                }
                std::mem::take(&mut queue.waiting)
            };
            run_batch(&self.batches.pool, batch).await;
        }
    }
}

/// Runs `batch` as one statement and answers each of its writes; when it fails, none.
async fn run_batch<T: Batched>(pool: &PgPool, batch: Vec<(Arc<T>, Answer<T>)>) {
    let (writes, answers): (Vec<Arc<T>>, Vec<Answer<T>>) = batch.into_iter().unzip();
    match T::run_many(pool, &writes).await {
        Ok(rows) => {
            let mut won: Vec<Option<T::Won>> = std::iter::repeat_with(|| None).take(writes.len()).collect();
            for (index, row) in rows {
                if let Some(slot) = won.get_mut(index) {
                    *slot = Some(row);
                }
            }
            for (answer, row) in answers.into_iter().zip(won) {
                let _ = answer.send(row);
            }
        }
        Err(error) => {
            tracing::warn!(%error, writes = writes.len(), "a batch of {} failed", T::NAME);
        }
    }
}

impl<T: Batched> Drop for Lead<T> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut queue = self.batches.queue.lock().unwrap_or_else(PoisonError::into_inner);
        queue.leaders -= 1;
        if queue.leaders == 0 {
            queue.waiting.clear();
        }
    }
}

/// The place in its batch of a row's write, from the statement's `ord` column (from 1).
pub(crate) fn place(row: &sqlx::postgres::PgRow) -> Result<usize, sqlx::Error> {
    use crate::db::DbRow;
    let ordinal: i64 = row.col("ord")?;
    Ok(usize::try_from(ordinal - 1).unwrap_or(usize::MAX))
}

/// The batches of the token path on PostgreSQL, and the connections they share.
#[derive(Debug)]
pub(crate) struct Batching {
    pub(crate) rotations: Arc<Batches<super::rotations::Rotation>>,
    pub(crate) exchanges: Arc<Batches<super::exchanges::Exchange>>,
    pool: PgPool,
}

impl Batching {
    /// Batches of each kind on [`LEADERS`] connections to the database of `options`, opened as they are needed.
    pub(crate) fn new(options: &PgConnectOptions) -> Batching {
        let pool = connections(options);
        Batching {
            rotations: Arc::new(Batches::new(pool.clone())),
            exchanges: Arc::new(Batches::new(pool.clone())),
            pool,
        }
    }

    /// Closes the batches' connections.
    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}

/// `statement`'s plan as the batches' connections keep it, on a connection of theirs to the database of `options`:
/// prepared and first run on `first` while the tables hold what the test made, then run on `arguments` under
/// `EXPLAIN (ANALYZE, BUFFERS)` after `grow` (SQL that adds many rows); all rolled back. The plan, and the most
/// buffers a node of its execution read.
#[cfg(test)]
pub(crate) async fn plan_kept_after_growth(
    options: &PgConnectOptions,
    types: &str,
    statement: &str,
    [first, grow, arguments]: [&str; 3],
) -> (String, u64) {
    let pool = connections(options);
    let mut connection = pool.begin().await.unwrap();
    let prepare = format!("PREPARE batch ({types}) AS {statement}");
    sqlx::query(sqlx::AssertSqlSafe(prepare)).execute(&mut *connection).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("EXECUTE batch({first})"))).execute(&mut *connection).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(grow.to_owned())).execute(&mut *connection).await.unwrap();
    let explain = format!("EXPLAIN (ANALYZE, BUFFERS) EXECUTE batch({arguments})");
    let lines: Vec<String> =
        sqlx::query_scalar(sqlx::AssertSqlSafe(explain)).fetch_all(&mut *connection).await.unwrap();
    connection.rollback().await.unwrap();
    pool.close().await;
    let plan = lines.join("\n");
    // (the execution's buffers: the planning's, listed after `Planning:`, are the catalogs')
    let buffers: u64 = plan
        .lines()
        .take_while(|line| !line.starts_with("Planning"))
        .filter_map(|line| line.trim().strip_prefix("Buffers: shared hit="))
        .filter_map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .max()
        .unwrap_or(u64::MAX);
    (plan, buffers)
}

/// A store on a scratch PostgreSQL database `name` (when `WSOAUTH_TEST_POSTGRES_URL` names a server) with an
/// app and `codes` unspent codes of its owner, `c0`, `c1`, ... (`[b'c', i]`): the store, the app, the owner's
/// account and user ids.
#[cfg(test)]
pub(crate) async fn with_codes(name: &str, codes: u8) -> Option<(crate::repo::Store, i64, i64, i64)> {
    let base = std::env::var("WSOAUTH_TEST_POSTGRES_URL").ok()?;
    let store = crate::repo::Store::open(&crate::scratch_postgres(&base, name).await.unwrap()).await.unwrap();
    let account = store.create_account("Acme", "acme", 1).await.unwrap();
    let person = store.create_person("ann@example.com", "Ann", "Lee", None, 1).await.unwrap();
    let user = store.add_member(account.id, person.id, crate::model::Role::Owner, 1).await.unwrap();
    let fields = crate::model::AppFields {
        name: "App".into(),
        redirect_uris: vec!["https://a/cb".into()],
        scopes: "users_read".into(),
        require_pkce: false,
    };
    let app = store.create_app(account.id, "client-1", b"digest", &fields, false, 1).await.unwrap().id;
    for i in 0..codes {
        let new = crate::model::NewCode {
            digest: vec![b'c', i],
            app_id: app,
            user_id: user,
            redirect_uri: "https://a/cb".into(),
            scopes: "users_read".into(),
            code_challenge: None,
            now: 100,
            expires_at: 700,
        };
        store.insert_code(&new).await.unwrap();
    }
    Some((store, app, account.id, user))
}
