//! The repository, on SQLite or PostgreSQL (see `crate::db` for how one SQL text serves both).

mod apps;
pub mod audit;
mod batches;
mod codes;
pub mod comments;
pub mod consents;
mod exchanges;
mod grants;
mod keys;
mod people;
pub mod projects;
mod rotations;
pub mod tags;
mod task_query;
pub mod tasks;
pub mod teams;
pub mod transfer;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::cache::{Caches, Change};
use crate::db::{Backend, Background, NamedRow, Pool, on_db};
use crate::direct::{Direct, NUMBERED, collect_rows, numbered};
use crate::error::StorageError;
use crate::migrate;
use crate::model::*;

/// How long a PostgreSQL connection may sit idle in the pool before it is pinged when handed out.
const PING_IDLE: Duration = Duration::from_secs(1);

/// Visibility rules shared by every API query. Queries that use them bind `?1` = account id, `?2` = user id,
/// `?3` = 1 for owners and admins (see `Viewer`).
///
/// A project `p` is visible to admins, and otherwise to its members, its manager and its author.
pub(crate) const VISIBLE_PROJECT: &str = "p.account_id = $1 AND ($3 = 1 OR p.manager_id = $2 OR p.author_id = $2 OR \
     EXISTS (SELECT 1 FROM project_members pm WHERE pm.project_id = p.id AND pm.user_id = $2))";
/// A task `t` (in a visible project) is visible unless hidden; a hidden one only to its author and listed people.
/// What is below a task hidden from the viewer is hidden with it: its parent and its top-level task must be
/// visible too (every query of tasks, and of what belongs to them, such as comments, applies both).
pub(crate) const VISIBLE_TASK: &str = "((t.hidden = 0 OR t.author_id = $2 OR \
     EXISTS (SELECT 1 FROM task_visibility tv WHERE tv.task_id = t.id AND tv.user_id = $2)) \
     AND NOT EXISTS (SELECT 1 FROM tasks an WHERE an.id IN (t.parent_id, t.top_id) \
     AND an.id <> t.id AND an.hidden = 1 AND an.author_id IS DISTINCT FROM $2 AND NOT EXISTS \
     (SELECT 1 FROM task_visibility anv WHERE anv.task_id = an.id AND anv.user_id = $2)))";

/// The repository of accounts, people, apps, sessions, codes, grants and keys.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) pool: Pool,
    /// Taken by this process's writes on the token path (codes, exchanges, rotations, access-token use, audit
    /// entries) for their whole transaction. SQLite has one writer at a time; a writer that finds the lock taken
    /// sleeps in SQLite's busy handler (1, 2, 5, 10 ... 100 ms, whatever the lock's holder needs), which made
    /// the slowest refreshes under load wait 100 ms and more. Queued here, a writer starts as soon as the previous
    /// one commits. Writers in other processes (the admin CLI) still meet the busy handler.
    /// `None` on PostgreSQL, which has row locks and many writers.
    pub(crate) writer: Option<std::sync::Arc<tokio::sync::Mutex<()>>>,
    /// Grant state for bearer checks (see `crate::cache`); `None` until `with_grant_cache`.
    cache: Option<std::sync::Arc<Caches>>,
    /// SQLite's direct connection for the hottest token-path writes (`crate::direct`); `None` on PostgreSQL and
    /// for an in-memory database (which lives in the pool's one connection).
    direct: Option<std::sync::Arc<Direct>>,
    /// The tasks of this store (listening for other nodes' grant changes on PostgreSQL, checkpointing the direct
    /// connection's writes on SQLite), stopped with the last clone.
    tasks: Vec<std::sync::Arc<Background>>,
    /// Rotations and exchanges committed together on PostgreSQL (`batches`); `None` on SQLite.
    batching: Option<std::sync::Arc<batches::Batching>>,
}

impl Store {
    /// Opens the database at `url` and brings its schema up to date: `postgres://...` (or `postgresql://...`)
    /// for PostgreSQL; `sqlite://PATH`, `sqlite:PATH` or `sqlite::memory:` for SQLite (the file and its folder are
    /// created if needed).
    pub async fn open(url: &str) -> Result<Store, StorageError> {
        Store::open_with_pool(url, None).await
    }

    /// `open` with at most `max_connections` in the pool (default: 16 on PostgreSQL, 8 for an SQLite file; an
    /// in-memory SQLite database always has one).
    pub async fn open_with_pool(url: &str, max_connections: Option<u32>) -> Result<Store, StorageError> {
        let max_connections = max_connections.map(|n| n.max(1));
        let store = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Store::open_postgres(url, max_connections.unwrap_or(16)).await?
        } else {
            Store::open_sqlite(url, max_connections.unwrap_or(8)).await?
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn open_postgres(url: &str, max_connections: u32) -> Result<Store, StorageError> {
        let options = PgConnectOptions::from_str(url).map_err(|_| StorageError::BadUrl(redact_url(url)))?;
        let pool = pg_pool_options(max_connections)
            .min_connections(1)
            .connect_with(options)
            .await
            .map_err(|source| StorageError::Connect { url: redact_url(url), source })?;
        // PostgreSQL has many writers at once: the in-process queue is for SQLite's single writer only.
        Ok(Store {
            batching: Some(std::sync::Arc::new(batches::Batching::new(&pool.connect_options()))),
            pool: Pool::Postgres(pool),
            writer: None,
            cache: None,
            direct: None,
            tasks: Vec::new(),
        })
    }

    async fn open_sqlite(url: &str, max_connections: u32) -> Result<Store, StorageError> {
        let memory = url == "sqlite::memory:" || url == "sqlite://:memory:";
        let mut file = None;
        let options = if memory {
            SqliteConnectOptions::from_str("sqlite::memory:")?
        } else {
            let path = url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"))
                .filter(|path| !path.is_empty())
                .ok_or_else(|| StorageError::BadUrl(redact_url(url)))?;
            let path = path.split('?').next().unwrap_or(path);
            if let Some(parent) = std::path::Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .map_err(|source| StorageError::CreateDir { path: parent.display().to_string(), source })?;
            }
            file = Some(path.to_owned());
            SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
        };
        let options = options.foreign_keys(true).busy_timeout(Duration::from_secs(10));
        // An in-memory database lives in one connection; a file is shared by a small pool (one writer at a time).
        let max = if memory { 1 } else { max_connections };
        let pool = SqlitePoolOptions::new()
            // No ping before handing out a connection: an SQLite connection is a file handle in this process and
            // cannot go stale the way a network connection can, and the ping is one more round trip to the
            // connection's worker thread (two context switches) in front of every query.
            .test_before_acquire(false)
            .max_connections(max)
            .min_connections(if memory { 1 } else { 0 })
            .idle_timeout(if memory { None } else { Some(Duration::from_secs(600)) })
            .max_lifetime(if memory { None } else { Some(Duration::from_secs(3600)) })
            .connect_with(options)
            .await?;
        let (direct, tasks) = match file {
            Some(path) => {
                let direct = std::sync::Arc::new(Direct::open(&path)?);
                let task = checkpoints(std::sync::Arc::downgrade(&direct));
                (Some(direct), vec![std::sync::Arc::new(task)])
            }
            None => (None, Vec::new()),
        };
        Ok(Store {
            pool: Pool::Sqlite(pool),
            writer: Some(Default::default()),
            cache: None,
            direct,
            tasks,
            batching: None,
        })
    }

    /// Caches grant state for `ttl` seconds (0: no cache) for `grant_state_cached`; on PostgreSQL also listens
    /// for other nodes' grant changes. See `crate::cache` for how fresh the answers are.
    pub async fn with_grant_cache(mut self, ttl: i64) -> Result<Store, StorageError> {
        if ttl <= 0 {
            return Ok(self);
        }
        let cache = std::sync::Arc::new(Caches::new(ttl));
        if let Pool::Postgres(pool) = &self.pool {
            let task = crate::cache::listen(pool.clone(), std::sync::Arc::downgrade(&cache)).await?;
            self.tasks.push(std::sync::Arc::new(Background(task)));
        }
        self.cache = Some(cache);
        Ok(self)
    }

    /// Drops what this process's own write changed from its caches.
    fn forget(&self, change: Change) {
        if let Some(cache) = &self.cache {
            cache.forget(change);
        }
    }

    /// This process's turn to write on the token path (SQLite only; `None` on PostgreSQL).
    pub(crate) async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.writer {
            Some(writer) => Some(writer.lock().await),
            None => None,
        }
    }

    /// Applies every migration not yet applied. Safe to run on every start, and by several processes at once on
    /// one database (nodes starting together): each step holds the write lock ([`Backend::begin_write`]), so one
    /// process applies a version and the others find it recorded. Without the lock, two nodes starting on an empty
    /// PostgreSQL database both ran `CREATE TABLE` and one of them stopped with a duplicate-key error.
    pub async fn migrate(&self) -> Result<(), StorageError> {
        on_db!(self, pool, {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
            )
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            let migrations = match self.pool {
                Pool::Sqlite(_) => migrate::SQLITE,
                Pool::Postgres(_) => migrate::POSTGRES,
            };
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            let now = i64::try_from(now).unwrap_or(i64::MAX);
            // What is applied already needs no lock (the usual start); what is not is applied under the write
            // lock, checked again inside it (another node may have applied it meanwhile).
            let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations").fetch_all(pool).await?;
            for (version, sql) in migrations {
                if applied.contains(version) {
                    continue;
                }
                let mut tx = pool.begin_write().await?;
                let done: Option<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                    .bind(version)
                    .fetch_optional(&mut *tx)
                    .await?;
                if done.is_some() {
                    tx.rollback().await?;
                    continue;
                }
                sqlx::raw_sql(sqlx::AssertSqlSafe(*sql))
                    .execute(&mut *tx)
                    .await
                    .map_err(|source| StorageError::Migration { version: *version, source })?;
                sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
                    .bind(version)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
            Ok(())
        })
    }

    /// The schema versions applied, oldest first.
    pub async fn schema_versions(&self) -> Result<Vec<i64>, StorageError> {
        on_db!(self, pool, {
            Ok(sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version").fetch_all(pool).await?)
        })
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StorageError> {
        on_db!(self, pool, {
            sqlx::query("SELECT 1").execute(pool).await?;
            Ok(())
        })
    }

    /// Tells the observer that `observer` makes what each checkpoint of SQLite's direct connection does from now
    /// on (for metrics). Where there are none (PostgreSQL, a SQLite database in memory), it is not made.
    pub fn observe_checkpoints(&self, observer: impl FnOnce() -> crate::direct::CheckpointObserver) {
        if let Some(direct) = &self.direct {
            direct.set_observer(observer());
        }
    }

    /// The connection pool right now: open connections, idle ones and the most it may open.
    pub fn pool_stats(&self) -> PoolStats {
        PoolStats {
            size: on_db!(self, pool, { pool.size() }),
            idle: u32::try_from(on_db!(self, pool, { pool.num_idle() })).unwrap_or(u32::MAX),
            max: on_db!(self, pool, { pool.options().get_max_connections() }),
        }
    }

    /// Closes the pool: waits for connections in use, after which every query fails (`ping` too).
    pub async fn close(&self) {
        for task in &self.tasks {
            task.0.abort();
        }
        if let Some(direct) = &self.direct {
            direct.close();
        }
        if let Some(batching) = &self.batching {
            batching.close().await;
        }
        on_db!(self, pool, { pool.close().await })
    }

    /// The rows of `sql` with `values` bound to its `$1 .. $n`, each read by `row`, on this process's own SQLite
    /// connections on the calling thread (`crate::direct`), where there are: `None` sends the caller to the pool (so
    /// do more values than `numbered` names, as a long `search_tasks` filter may have).
    pub(crate) fn read_direct<T>(
        &self,
        sql: &str,
        values: &[&dyn rusqlite::ToSql],
        mut row: impl FnMut(&NamedRow<'_, '_>) -> Result<T, StorageError>,
    ) -> Result<Option<Vec<T>>, StorageError> {
        let Some(direct) = self.direct.as_ref().filter(|_| values.len() <= NUMBERED) else { return Ok(None) };
        let rows = direct.read(|connection| {
            let mut statement = connection.prepare_cached(sql)?;
            let names: Vec<String> = statement.column_names().into_iter().map(str::to_owned).collect();
            let mut rows = statement.query(&numbered(values)[..])?;
            collect_rows(&mut rows, |next| row(&NamedRow { row: next, names: &names }))
        })?;
        rows.transpose()
    }

    /// `read_direct` for a statement of what `viewer` may see: `$1` the account, `$2` the user and `$3` whether
    /// they are an admin (1 or 0), as the pool's statements bind them, then `more` from `$4`.
    pub(crate) fn read_visible<'a, T>(
        &self,
        sql: &str,
        viewer: &'a Viewer,
        more: &[&'a dyn rusqlite::ToSql],
        row: impl FnMut(&NamedRow<'_, '_>) -> Result<T, StorageError>,
    ) -> Result<Option<Vec<T>>, StorageError> {
        let mut values: Vec<&dyn rusqlite::ToSql> = vec![&viewer.account_id, &viewer.user_id, &viewer.admin];
        values.extend_from_slice(more);
        self.read_direct(sql, &values, row)
    }

    // ---- settings -------------------------------------------------------------------------------------------

    /// The stored value of `name`, storing `value` first if there is none (first writer wins, on every node).
    pub async fn setting_or_insert(&self, name: &str, value: &[u8]) -> Result<Vec<u8>, StorageError> {
        on_db!(self, pool, {
            sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                .bind(name)
                .bind(value)
                .execute(pool)
                .await?;
            Ok(sqlx::query_scalar("SELECT value FROM settings WHERE name = $1").bind(name).fetch_one(pool).await?)
        })
    }
}

/// The settings of a PostgreSQL pool of at most `max_connections`: the store's, and the batches' own.
pub(crate) fn pg_pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        // A ping (one more round trip) before handing out a connection only when it sat idle a while: under load
        // every connection was used a moment ago, and the ping doubled the round trips of a refresh. A connection
        // that died while in use fails its query and the pool drops it.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_IDLE {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .idle_timeout(Some(Duration::from_secs(600)))
        .max_lifetime(Some(Duration::from_secs(1800)))
}

/// How long after the last checkpoint what the direct connection wrote is checkpointed (see `crate::direct`):
/// the write-ahead log holds about this long's worth of writes, and the writes wait at the gate for what they
/// wrote during the first, ungated pass. 100 ms left a large database's scattered pages to sync behind the gate.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(25);

/// Checkpoints what the direct connection writes ([`Direct::checkpoint`]); ends with the last clone of the store.
fn checkpoints(direct: std::sync::Weak<Direct>) -> Background {
    Background(tokio::spawn(async move {
        loop {
            tokio::time::sleep(CHECKPOINT_EVERY).await;
            let Some(direct) = direct.upgrade() else { return };
            direct.checkpoint().await;
        }
    }))
}

/// A database URL fit for an error message: any `user:password@` part is replaced.
/// (A `password=` query parameter is cut off with everything after it.)
fn redact_url(url: &str) -> String {
    let url = match url.find("password=") {
        Some(at) => format!("{}password=***", &url[..at]),
        None => url.to_owned(),
    };
    let (path_end, _) = url.split_once('?').map_or((url.len(), ""), |(path, query)| (path.len(), query));
    match (url.find("://"), url[..path_end].rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => format!("{}://***@{}", &url[..scheme_end], &url[at + 1..]),
        _ => url,
    }
}

fn conflict(error: sqlx::Error, what: &'static str) -> StorageError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StorageError::Conflict(what),
        _ => StorageError::Database(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On PostgreSQL the id lists of the API's queries (`json_each(text)`, SQLite's built-in there) are read
    /// inline, without a function call that parses and plans the function's body at every execution, and mean
    /// what SQLite's do: the list's elements, none for NULL.
    #[tokio::test]
    async fn postgres_id_lists_are_read_inline() {
        let Ok(base) = std::env::var("WSOAUTH_TEST_POSTGRES_URL") else { return };
        let store = Store::open(&crate::scratch_postgres(&base, "id_lists").await.unwrap()).await.unwrap();
        let Pool::Postgres(pool) = &store.pool else { panic!("a PostgreSQL pool") };
        let plan: Vec<String> = sqlx::query_scalar("EXPLAIN VERBOSE SELECT value FROM json_each('[3,1]'::text)")
            .fetch_all(pool)
            .await
            .unwrap();
        let plan = plan.join("\n");
        assert!(plan.contains("json_array_elements_text"), "{plan}");
        assert!(!plan.lines().any(|line| line.contains("Function Scan") && line.contains("json_each")), "{plan}");
        let values: Vec<i64> =
            sqlx::query_scalar("SELECT value FROM json_each($1::text)").bind("[3,1]").fetch_all(pool).await.unwrap();
        assert_eq!(values, [3, 1]);
        let none: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM json_each(NULL::text)").fetch_one(pool).await.unwrap();
        assert_eq!(none, 0);
        store.close().await;
    }

    /// Every query on a file database goes straight to a pooled connection, without a ping first (a round trip
    /// to the connection's thread), and the pool still serves many concurrent queries.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pooled_connections_are_handed_out_without_a_ping() {
        let dir = std::env::temp_dir().join(format!("wsoauth-pool-{}", std::process::id()));
        let store = Store::open(&format!("sqlite://{}", dir.join("pool.db").display())).await.unwrap();
        let Pool::Sqlite(pool) = &store.pool else { panic!("a SQLite pool") };
        assert!(!pool.options().get_test_before_acquire());
        let queries: Vec<_> = (0..64)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.count_accounts().await })
            })
            .collect();
        for query in queries {
            assert_eq!(query.await.unwrap().unwrap(), 0);
        }
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Clones of a store share one writer queue, and concurrent writers through it all succeed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writers_of_one_store_queue_and_all_succeed() {
        let dir = std::env::temp_dir().join(format!("wsoauth-writers-{}", std::process::id()));
        let store = Store::open(&format!("sqlite://{}", dir.join("writers.db").display())).await.unwrap();
        let (Some(mine), Some(clone)) = (&store.writer, &store.clone().writer) else { panic!("SQLite has a queue") };
        assert!(std::sync::Arc::ptr_eq(mine, clone));
        let writers: Vec<_> = (0..64)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let event =
                        crate::NewAuditEvent { at: i, event: "sign_in".into(), ..crate::NewAuditEvent::default() };
                    store.record_audit(&event).await
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap().unwrap();
        }
        let rows: i64 = on_db!(store, pool, {
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_log").fetch_one(pool).await.unwrap()
        });
        assert_eq!(rows, 64);
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
