//! The repository, on SQLite or PostgreSQL (see `crate::db` for how one SQL text serves both).

pub mod audit;
mod batches;
pub mod comments;
pub mod consents;
mod exchanges;
pub mod projects;
mod rotations;
pub mod tags;
pub mod tasks;
pub mod teams;
pub mod transfer;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::cache::{Caches, Change, through};
use crate::db::{Backend, Background, DbRow, NamedRow, Pool, impl_for_tx, on_db};
use crate::direct::{Direct, NUMBERED, collect_rows, numbered};
use audit::{AuditTx, NewAuditEvent, insert_audit_direct};

use crate::error::{ExchangeError, RefreshError, StorageError};
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
pub(crate) const VISIBLE_TASK: &str = "(t.hidden = 0 OR t.author_id = $2 OR \
     EXISTS (SELECT 1 FROM task_visibility tv WHERE tv.task_id = t.id AND tv.user_id = $2))";

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

const MEMBER_COLUMNS: &str = "u.id AS user_id, u.role, u.title, a.id AS account_id, a.name AS account_name, \
     a.slug AS account_slug, p.id AS person_id, p.email, p.first_name, p.last_name, p.password_hash, \
     u.team_id, t.title AS team, u.department, u.rate, u.phone, u.phone2, u.phone3, u.phone4, u.address, u.address2";
const MEMBER_JOIN: &str = "users u JOIN accounts a ON a.id = u.account_id JOIN people p ON p.id = u.person_id \
     LEFT JOIN teams t ON t.id = u.team_id";
const APP_COLUMNS: &str =
    "id, account_id, client_id, secret_digest, name, redirect_uris, scopes, created_at, public, require_pkce";

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

    // ---- accounts, people, members --------------------------------------------------------------------------

    pub async fn count_accounts(&self) -> Result<i64, StorageError> {
        on_db!(self, pool, { Ok(sqlx::query_scalar("SELECT COUNT(*) FROM accounts").fetch_one(pool).await?) })
    }

    /// Creates the first account, unless the database already has one (then `None`): the bootstrap of an empty
    /// database, which several nodes starting together may attempt at once; under the write lock exactly one of
    /// them creates it.
    pub async fn create_first_account(
        &self,
        name: &str,
        slug: &str,
        now: i64,
    ) -> Result<Option<Account>, StorageError> {
        on_db!(self, pool, {
            let mut tx = pool.begin_write().await?;
            let id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO accounts (name, slug, created_at) SELECT $1, $2, $3 \
                 WHERE NOT EXISTS (SELECT 1 FROM accounts) RETURNING id",
            )
            .bind(name)
            .bind(slug)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| conflict(e, "an account with this slug"))?;
            tx.commit().await?;
            Ok(id.map(|id| Account { id, name: name.to_owned(), slug: slug.to_owned() }))
        })
    }

    pub async fn create_account(&self, name: &str, slug: &str, now: i64) -> Result<Account, StorageError> {
        on_db!(self, pool, {
            let id: i64 =
                sqlx::query_scalar("INSERT INTO accounts (name, slug, created_at) VALUES ($1, $2, $3) RETURNING id")
                    .bind(name)
                    .bind(slug)
                    .bind(now)
                    .fetch_one(pool)
                    .await
                    .map_err(|e| conflict(e, "an account with this slug"))?;
            Ok(Account { id, name: name.to_owned(), slug: slug.to_owned() })
        })
    }

    pub async fn accounts(&self) -> Result<Vec<Account>, StorageError> {
        const SQL: &str = "SELECT id, name, slug FROM accounts ORDER BY id";
        if let Some(accounts) = self.read_direct(SQL, &[], |row| account_from(row))? {
            return Ok(accounts);
        }
        on_db!(self, pool, {
            let rows = sqlx::query(SQL).fetch_all(pool).await?;
            rows.iter().map(account_from).collect()
        })
    }

    pub async fn account(&self, id: i64) -> Result<Option<Account>, StorageError> {
        const SQL: &str = "SELECT id, name, slug FROM accounts WHERE id = $1";
        if let Some(accounts) = self.read_direct(SQL, &[&id], |row| account_from(row))? {
            return Ok(accounts.into_iter().next());
        }
        on_db!(self, pool, {
            let row = sqlx::query(SQL).bind(id).fetch_optional(pool).await?;
            row.as_ref().map(account_from).transpose()
        })
    }

    pub async fn account_by_slug(&self, slug: &str) -> Result<Option<Account>, StorageError> {
        const SQL: &str = "SELECT id, name, slug FROM accounts WHERE slug = $1";
        if let Some(accounts) = self.read_direct(SQL, &[&slug], |row| account_from(row))? {
            return Ok(accounts.into_iter().next());
        }
        on_db!(self, pool, {
            let row = sqlx::query(SQL).bind(slug).fetch_optional(pool).await?;
            row.as_ref().map(account_from).transpose()
        })
    }

    /// The person with this email (compared case-insensitively; emails are stored lowercased).
    pub async fn person_by_email(&self, email: &str) -> Result<Option<Person>, StorageError> {
        const SQL: &str = "SELECT id, email, first_name, last_name, password_hash FROM people WHERE email = $1";
        let email = email.trim().to_lowercase();
        if let Some(people) = self.read_direct(SQL, &[&email], |row| person_from(row))? {
            return Ok(people.into_iter().next());
        }
        on_db!(self, pool, {
            let row = sqlx::query(SQL).bind(email).fetch_optional(pool).await?;
            row.as_ref().map(person_from).transpose()
        })
    }

    pub async fn person(&self, id: i64) -> Result<Option<Person>, StorageError> {
        const SQL: &str = "SELECT id, email, first_name, last_name, password_hash FROM people WHERE id = $1";
        if let Some(people) = self.read_direct(SQL, &[&id], |row| person_from(row))? {
            return Ok(people.into_iter().next());
        }
        on_db!(self, pool, {
            let row = sqlx::query(SQL).bind(id).fetch_optional(pool).await?;
            row.as_ref().map(person_from).transpose()
        })
    }

    pub async fn create_person(
        &self,
        email: &str,
        first_name: &str,
        last_name: &str,
        password_hash: Option<&str>,
        now: i64,
    ) -> Result<Person, StorageError> {
        on_db!(self, pool, {
            let email = email.trim().to_lowercase();
            let id: i64 = sqlx::query_scalar(
            "INSERT INTO people (email, first_name, last_name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5) \
             RETURNING id",
        )
        .bind(&email)
        .bind(first_name)
        .bind(last_name)
        .bind(password_hash)
        .bind(now)
        .fetch_one(pool)
        .await
        .map_err(|e| conflict(e, "a person with this email"))?;
            Ok(Person {
                id,
                email,
                first_name: first_name.to_owned(),
                last_name: last_name.to_owned(),
                password_hash: password_hash.map(str::to_owned),
            })
        })
    }

    pub async fn set_password(&self, person_id: i64, password_hash: &str) -> Result<(), StorageError> {
        on_db!(self, pool, {
            sqlx::query("UPDATE people SET password_hash = $1 WHERE id = $2")
                .bind(password_hash)
                .bind(person_id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Makes a person a member of an account; returns the new user id.
    pub async fn add_member(&self, account_id: i64, person_id: i64, role: Role, now: i64) -> Result<i64, StorageError> {
        on_db!(self, pool, {
            let sql = format!(
                "INSERT INTO users (id, account_id, person_id, role, created_at) \
                 VALUES ({}, $1, $2, $3, $4) RETURNING id",
                pool.next_user_id()
            );
            let id = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(account_id)
                .bind(person_id)
                .bind(role.as_str())
                .bind(now)
                .fetch_one(pool)
                .await
                .map_err(|e| conflict(e, "this member of the account"))?;
            Ok(id)
        })
    }

    /// Every account membership of a person, oldest first.
    pub async fn memberships(&self, person_id: i64) -> Result<Vec<Member>, StorageError> {
        let sql = format!("SELECT {MEMBER_COLUMNS} FROM {MEMBER_JOIN} WHERE u.person_id = $1 ORDER BY u.id");
        if let Some(members) = self.read_direct(&sql, &[&person_id], |row| member_from(row))? {
            return Ok(members);
        }
        on_db!(self, pool, {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(person_id).fetch_all(pool).await?;
            rows.iter().map(member_from).collect()
        })
    }

    pub async fn member(&self, user_id: i64) -> Result<Option<Member>, StorageError> {
        let sql = format!("SELECT {MEMBER_COLUMNS} FROM {MEMBER_JOIN} WHERE u.id = $1");
        if let Some(members) = self.read_direct(&sql, &[&user_id], |row| member_from(row))? {
            return Ok(members.into_iter().next());
        }
        on_db!(self, pool, {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(user_id).fetch_optional(pool).await?;
            row.as_ref().map(member_from).transpose()
        })
    }

    /// `member` through the cache of `with_grant_cache` (read at `now`): members are never changed in place.
    pub async fn member_cached(&self, user_id: i64, now: i64) -> Result<Option<std::sync::Arc<Member>>, StorageError> {
        through(self.cache.as_ref().map(|c| &c.members), user_id, now, self.member(user_id)).await
    }

    // ---- apps -----------------------------------------------------------------------------------------------

    pub async fn create_app(
        &self,
        account_id: i64,
        client_id: &str,
        secret_digest: &[u8],
        fields: &AppFields,
        public: bool,
        now: i64,
    ) -> Result<App, StorageError> {
        on_db!(self, pool, {
            let uris = uris_to_json(&fields.redirect_uris);
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO apps (account_id, client_id, secret_digest, name, redirect_uris, scopes, created_at, \
                 updated_at, public, require_pkce) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            )
            .bind(account_id)
            .bind(client_id)
            .bind(secret_digest)
            .bind(&fields.name)
            .bind(&uris)
            .bind(&fields.scopes)
            .bind(now)
            .bind(now)
            .bind(i64::from(public))
            .bind(i64::from(public || fields.require_pkce))
            .fetch_one(pool)
            .await
            .map_err(|e| conflict(e, "an app with this client id"))?;
            Ok(App {
                id,
                account_id,
                client_id: client_id.to_owned(),
                secret_digest: secret_digest.to_vec(),
                name: fields.name.clone(),
                redirect_uris: fields.redirect_uris.clone(),
                scopes: fields.scopes.clone(),
                created_at: now,
                public,
                require_pkce: public || fields.require_pkce,
            })
        })
    }

    pub async fn update_app(&self, app_id: i64, fields: &AppFields, now: i64) -> Result<bool, StorageError> {
        on_db!(self, pool, {
            // A public app always requires PKCE, whatever the form says.
            let mut tx = pool.begin().await?;
            let done = sqlx::query(
                "UPDATE apps SET name = $1, redirect_uris = $2, scopes = $3, \
                 require_pkce = CASE WHEN public = 1 OR $4 = 1 THEN 1 ELSE 0 END, updated_at = $5 \
                 WHERE id = $6",
            )
            .bind(&fields.name)
            .bind(uris_to_json(&fields.redirect_uris))
            .bind(&fields.scopes)
            .bind(i64::from(fields.require_pkce))
            .bind(now)
            .bind(app_id)
            .execute(&mut *tx)
            .await?;
            pool.announce(&mut tx, Change::Apps).await?;
            tx.commit().await?;
            self.forget(Change::Apps);
            Ok(done.rows_affected() == 1)
        })
    }

    pub async fn set_app_secret(&self, app_id: i64, secret_digest: &[u8], now: i64) -> Result<bool, StorageError> {
        on_db!(self, pool, {
            let mut tx = pool.begin().await?;
            let done = sqlx::query("UPDATE apps SET secret_digest = $1, updated_at = $2 WHERE id = $3")
                .bind(secret_digest)
                .bind(now)
                .bind(app_id)
                .execute(&mut *tx)
                .await?;
            pool.announce(&mut tx, Change::Apps).await?;
            tx.commit().await?;
            self.forget(Change::Apps);
            Ok(done.rows_affected() == 1)
        })
    }

    /// Deletes an app with its codes and grants (so every token it holds stops working).
    pub async fn delete_app(&self, app_id: i64) -> Result<bool, StorageError> {
        on_db!(self, pool, {
            let mut tx = pool.begin().await?;
            let done = sqlx::query("DELETE FROM apps WHERE id = $1").bind(app_id).execute(&mut *tx).await?;
            pool.announce(&mut tx, Change::All).await?;
            tx.commit().await?;
            self.forget(Change::All);
            Ok(done.rows_affected() == 1)
        })
    }

    pub async fn app_by_client_id(&self, client_id: &str) -> Result<Option<App>, StorageError> {
        let sql = format!("SELECT {APP_COLUMNS} FROM apps WHERE client_id = $1");
        if let Some(apps) = self.read_direct(&sql, &[&client_id], |row| app_from(row))? {
            return Ok(apps.into_iter().next());
        }
        on_db!(self, pool, {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(client_id).fetch_optional(pool).await?;
            row.as_ref().map(app_from).transpose()
        })
    }

    /// `app_by_client_id` through the cache of `with_grant_cache` (read at `now`), for client authentication.
    pub async fn app_by_client_id_cached(
        &self,
        client_id: &str,
        now: i64,
    ) -> Result<Option<std::sync::Arc<App>>, StorageError> {
        let apps = self.cache.as_ref().map(|c| &c.apps);
        through(apps, client_id.to_owned(), now, self.app_by_client_id(client_id)).await
    }

    /// The apps of one account, or of every account when `account_id` is `None`.
    pub async fn apps(&self, account_id: Option<i64>) -> Result<Vec<App>, StorageError> {
        let sql = format!("SELECT {APP_COLUMNS} FROM apps WHERE $1 IS NULL OR account_id = $1 ORDER BY id");
        if let Some(apps) = self.read_direct(&sql, &[&account_id], |row| app_from(row))? {
            return Ok(apps);
        }
        on_db!(self, pool, {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(account_id).fetch_all(pool).await?;
            rows.iter().map(app_from).collect()
        })
    }

    // ---- sessions -------------------------------------------------------------------------------------------

    pub async fn create_session(
        &self,
        digest: &[u8],
        person_id: i64,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StorageError> {
        on_db!(self, pool, {
            sqlx::query("INSERT INTO sessions (digest, person_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
                .bind(digest)
                .bind(person_id)
                .bind(now)
                .bind(expires_at)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// The person signed in with this session, if it has neither expired nor been idle for `idle` seconds.
    /// A session in use is marked as seen (at most once a minute, to spare writes).
    pub async fn session_person(&self, digest: &[u8], now: i64, idle: i64) -> Result<Option<Person>, StorageError> {
        const SQL: &str = "SELECT p.id, p.email, p.first_name, p.last_name, p.password_hash, \
             COALESCE(s.last_seen_at, s.created_at) AS seen_at FROM sessions s JOIN people p ON p.id = s.person_id \
             WHERE s.digest = $1 AND s.expires_at > $2 AND COALESCE(s.last_seen_at, s.created_at) > $3";
        const SEEN: &str =
            "UPDATE sessions SET last_seen_at = $1 WHERE digest = $2 AND COALESCE(last_seen_at, created_at) < $3";
        let since = now.saturating_sub(idle);
        let direct = self.read_direct(SQL, &[&digest, &now, &since], |row| seen_person_from(row))?;
        let found = match direct {
            Some(rows) => rows.into_iter().next(),
            None => on_db!(self, pool, {
                let row = sqlx::query(SQL).bind(digest).bind(now).bind(since).fetch_optional(pool).await?;
                row.as_ref().map(seen_person_from).transpose()?
            }),
        };
        let Some((person, seen_at)) = found else { return Ok(None) };
        // a write only when the mark is a minute old: most page views take no write lock
        if seen_at < now - 60 {
            on_db!(self, pool, {
                sqlx::query(SEEN).bind(now).bind(digest).bind(now - 60).execute(pool).await?;
            });
        }
        Ok(Some(person))
    }

    pub async fn delete_session(&self, digest: &[u8]) -> Result<(), StorageError> {
        on_db!(self, pool, {
            sqlx::query("DELETE FROM sessions WHERE digest = $1").bind(digest).execute(pool).await?;
            Ok(())
        })
    }

    // ---- codes and grants -----------------------------------------------------------------------------------

    pub async fn insert_code(&self, code: &NewCode) -> Result<(), StorageError> {
        const SQL: &str = "INSERT INTO auth_codes (digest, app_id, user_id, redirect_uri, scopes, code_challenge, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        // On SQLite's direct connection when its write lock is free, as a code's exchange is (`crate::direct`).
        if let Some(direct) = &self.direct {
            let inserted = direct
                .write(|tx| -> Result<_, StorageError> {
                    let values: [&dyn rusqlite::ToSql; 8] = [
                        &code.digest,
                        &code.app_id,
                        &code.user_id,
                        &code.redirect_uri,
                        &code.scopes,
                        &code.code_challenge,
                        &code.now,
                        &code.expires_at,
                    ];
                    tx.prepare_cached(SQL)?.execute(&numbered(&values)[..])?;
                    Ok(Some(()))
                })
                .await?;
            if inserted.is_some() {
                return Ok(());
            }
        }
        on_db!(self, pool, {
            let _writing = self.write_turn().await;
            sqlx::query(SQL)
                .bind(&code.digest)
                .bind(code.app_id)
                .bind(code.user_id)
                .bind(&code.redirect_uri)
                .bind(&code.scopes)
                .bind(&code.code_challenge)
                .bind(code.now)
                .bind(code.expires_at)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Consumes an authorization code and starts its grant with a first refresh token and its audit entry
    /// (`audit` as [`NewAuditEvent::issued`] makes it), in one transaction whose first statement is the
    /// conditional write that decides the single winner. A code presented again revokes the grant it started
    /// (RFC 6749 §4.1.2).
    pub async fn exchange_code(
        &self,
        exchange: &CodeExchange<'_>,
        refresh: &NewRefresh,
        audit: &NewAuditEvent,
    ) -> Result<Grant, ExchangeError> {
        let CodeExchange { code_digest, app_id, now, .. } = *exchange;
        // The usual case on SQLite: on the calling thread, committed with the other exchanges and rotations ready at
        // the time, like a refresh (see `crate::direct`, `crate::together`). The code is read and checked before
        // anything is written, so that a refusal leaves the batch as it is. An unknown, spent or refused code, which
        // needs telling why (and burning or revoking), goes the way below.
        if let Some(direct) = &self.direct {
            let (digest, redirect_uri, verifier) =
                (code_digest.to_vec(), exchange.redirect_uri.to_owned(), exchange.code_verifier.map(str::to_owned));
            let (refresh, audit) = (refresh.clone(), audit.clone());
            let committed = direct
                .write_together(move |tx| -> Result<_, StorageError> {
                    let values: [&dyn rusqlite::ToSql; 1] = [&digest];
                    let mut unspent = tx.prepare_cached(UNSPENT_CODE)?;
                    let mut rows = unspent.query(&numbered(&values)[..])?;
                    let Some(row) = rows.next()? else { return Ok(None) };
                    let code = SpentCode::from_row(row)?;
                    drop(rows);
                    let exchange = CodeExchange {
                        code_digest: &digest,
                        app_id,
                        redirect_uri: &redirect_uri,
                        code_verifier: verifier.as_deref(),
                        now,
                    };
                    if code.refusal(&exchange).is_some() {
                        return Ok(None);
                    }
                    // read unspent in this transaction, which holds the write lock: it is spent here
                    let values: [&dyn rusqlite::ToSql; 2] = [&now, &digest];
                    if tx.prepare_cached(CONSUME_CODE)?.query(&numbered(&values)[..])?.next()?.is_none() {
                        return Ok(None);
                    }
                    let values: [&dyn rusqlite::ToSql; 5] = [&app_id, &code.user_id, &code.scopes, &digest, &now];
                    let grant_id: i64 =
                        tx.prepare_cached(INSERT_GRANT)?.query_row(&numbered(&values)[..], |row| row.get(0))?;
                    let grant =
                        Grant { id: grant_id, app_id, user_id: code.user_id, scopes: code.scopes, generation: 1 };
                    insert_refresh_direct(tx, grant_id, 1, now, &refresh)?;
                    insert_audit_direct(tx, &audit.issued(&grant))?;
                    Ok(Some(grant))
                })
                .await?;
            if let Some(grant) = committed {
                return Ok(grant);
            }
        }
        // PostgreSQL's usual case: the unspent code read and checked here, then spent and its grant started with the
        // other exchanges queued at the time, in one statement (`exchanges`). A code unknown, spent or refused, or
        // spent by a concurrent exchange between the two, goes the way below, which tells why.
        if let (Some(batching), Pool::Postgres(pool)) = (&self.batching, &self.pool) {
            let unspent = sqlx::query(UNSPENT_CODE).bind(code_digest).fetch_optional(pool).await?;
            let code = unspent.as_ref().map(SpentCode::from_row).transpose()?;
            if let Some(code) = code.filter(|code| code.refusal(exchange).is_none()) {
                let checked = exchanges::Exchange {
                    code_digest: code_digest.to_vec(),
                    now,
                    app_id,
                    user_id: code.user_id,
                    scopes: code.scopes.clone(),
                    refresh: refresh.clone(),
                    audit: audit.clone(),
                };
                if let Some(id) = batching.exchanges.run(checked).await? {
                    return Ok(Grant { id, app_id, user_id: code.user_id, scopes: code.scopes, generation: 1 });
                }
            }
        }
        on_db!(self, pool, {
            let _writing = self.write_turn().await;
            let mut tx = pool.begin().await?;
            let consumed = sqlx::query(CONSUME_CODE).bind(now).bind(code_digest).fetch_optional(&mut *tx).await?;
            let Some(row) = consumed else {
                let known: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM auth_codes WHERE digest = $1")
                    .bind(code_digest)
                    .fetch_one(&mut *tx)
                    .await?;
                if known == 0 {
                    return Err(ExchangeError::Unknown);
                }
                sqlx::query("UPDATE grants SET revoked_at = $1 WHERE code_digest = $2 AND revoked_at IS NULL")
                    .bind(now)
                    .bind(code_digest)
                    .execute(&mut *tx)
                    .await?;
                pool.announce(&mut tx, Change::All).await?;
                tx.commit().await?;
                self.forget(Change::All);
                return Err(ExchangeError::Replayed);
            };
            let code = SpentCode::from_row(&row)?;
            // The code is spent whatever happens next: a wrong client or a late presentation burns it.
            if let Some(refusal) = code.refusal(exchange) {
                tx.commit().await?;
                return Err(refusal);
            }
            let grant_id: i64 = sqlx::query_scalar(INSERT_GRANT)
                .bind(app_id)
                .bind(code.user_id)
                .bind(&code.scopes)
                .bind(code_digest)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            let grant = Grant { id: grant_id, app_id, user_id: code.user_id, scopes: code.scopes, generation: 1 };
            tx.insert_refresh(grant_id, 1, now, refresh).await?;
            tx.insert_audit(&audit.issued(&grant)).await?;
            tx.commit().await?;
            Ok(grant)
        })
    }

    /// Rotates a refresh token: moves its grant to the next generation (so the previous access and refresh
    /// tokens stop working at once), records the rotation's nonce and stores the new refresh token. The
    /// generation bump is a conditional write: of concurrent rotations of one token exactly one wins; the others
    /// get `Rotated` with what the server needs to answer them.
    ///
    /// `audit` is stored, as [`NewAuditEvent::rotated`] makes it, with the rotation.
    pub async fn rotate_refresh(
        &self,
        refresh_digest: &[u8],
        app_id: i64,
        now: i64,
        nonce: &[u8],
        next: &NewRefresh,
        audit: &NewAuditEvent,
    ) -> Result<Grant, RefreshError> {
        // The usual case on SQLite: on the calling thread (see `crate::direct` for why it does not queue for the
        // writers' turn), committed with the other rotations ready at the time (`crate::together`). A refusal, which
        // needs telling why, and a write lock held elsewhere go the way below.
        if let Some(direct) = &self.direct {
            let (refresh_digest, nonce, next, audit) =
                (refresh_digest.to_vec(), nonce.to_vec(), next.clone(), audit.clone());
            let committed = direct
                .write_together(move |tx| -> Result<_, StorageError> {
                    let values: [&dyn rusqlite::ToSql; 4] = [&refresh_digest, &now, &app_id, &nonce];
                    let mut bump = tx.prepare_cached(ROTATE)?;
                    let mut rows = bump.query(&numbered(&values)[..])?;
                    let Some(row) = rows.next()? else { return Ok(None) };
                    let grant = grant_from(row)?;
                    drop(rows);
                    insert_refresh_direct(tx, grant.id, grant.generation, now, &next)?;
                    insert_audit_direct(tx, &audit.rotated(&grant))?;
                    Ok(Some(grant))
                })
                .await?;
            if let Some(grant) = committed {
                self.forget(Change::Grant(grant.id));
                return Ok(grant);
            }
        }
        // PostgreSQL: with the other rotations queued at the time, in one statement (`rotations`)
        let refused = match &self.batching {
            Some(batching) => {
                let rotation = rotations::Rotation {
                    digest: refresh_digest.to_vec(),
                    app_id,
                    now,
                    nonce: nonce.to_vec(),
                    next: next.clone(),
                    audit: audit.clone(),
                };
                match batching.rotations.run(rotation).await? {
                    Some(grant) => {
                        self.forget(Change::Grant(grant.id));
                        return Ok(grant);
                    }
                    None => true,
                }
            }
            None => false,
        };
        on_db!(self, pool, {
            // SQLite's pool, where the direct connection could not write or refused
            if !refused {
                let _writing = self.write_turn().await;
                let mut tx = pool.begin().await?;
                let row = sqlx::query(ROTATE)
                    .bind(refresh_digest)
                    .bind(now)
                    .bind(app_id)
                    .bind(nonce)
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some(row) = row {
                    let grant = grant_from(&row)?;
                    tx.insert_refresh(grant.id, grant.generation, now, next).await?;
                    pool.announce(&mut tx, Change::Grant(grant.id)).await?;
                    tx.insert_audit(&audit.rotated(&grant)).await?;
                    tx.commit().await?;
                    self.forget(Change::Grant(grant.id));
                    return Ok(grant);
                }
            }
            // Refused: why, read after the failed write (so at least as recent as what it saw).
            let why = sqlx::query(
                "SELECT r.generation AS token_generation, r.expires_at, g.id, g.app_id, g.user_id, g.scopes, \
                 g.generation, g.revoked_at, g.rotated_at, g.rotation_nonce, g.access_used \
                 FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id WHERE r.digest = $1",
            )
            .bind(refresh_digest)
            .fetch_optional(pool)
            .await?;
            let Some(why) = why else {
                return Err(RefreshError::Unknown);
            };
            let revoked: Option<i64> = why.col("revoked_at")?;
            let token_generation: i64 = why.col("token_generation")?;
            let grant = grant_from(&why)?;
            Err(if revoked.is_some() {
                RefreshError::Revoked
            } else if grant.app_id != app_id {
                RefreshError::WrongClient
            } else if token_generation != grant.generation {
                RefreshError::Rotated(Box::new(Rotation {
                    token_generation,
                    rotated_at: why.col::<Option<i64>>("rotated_at")?.unwrap_or(0),
                    nonce: why.col::<Option<Vec<u8>>>("rotation_nonce")?.unwrap_or_default(),
                    access_used: why.col("access_used")?,
                    grant,
                }))
            } else {
                RefreshError::Expired
            })
        })
    }

    /// Notes that the access token of `generation` has been used (once per generation: later calls change
    /// nothing and the caller skips them when `GrantState::access_used` is already set).
    pub async fn mark_access_used(&self, grant_id: i64, generation: i64) -> Result<(), StorageError> {
        on_db!(self, pool, {
            let _writing = self.write_turn().await;
            sqlx::query("UPDATE grants SET access_used = 1 WHERE id = $1 AND generation = $2 AND access_used = 0")
                .bind(grant_id)
                .bind(generation)
                .execute(pool)
                .await?;
            if let Some(cache) = &self.cache {
                cache.grants.mark_used(grant_id, generation);
            }
            Ok(())
        })
    }

    /// The grant behind an access token, with the member it acts for; `None` if the grant (or its app or member)
    /// no longer exists.
    pub async fn grant_state(&self, grant_id: i64) -> Result<Option<GrantState>, StorageError> {
        let sql = format!(
            "SELECT g.id, g.app_id, g.user_id, g.scopes, g.generation, g.revoked_at, g.access_used, ap.client_id, \
             {MEMBER_COLUMNS} \
             FROM grants g JOIN apps ap ON ap.id = g.app_id JOIN users u ON u.id = g.user_id \
             JOIN accounts a ON a.id = u.account_id JOIN people p ON p.id = u.person_id \
             LEFT JOIN teams t ON t.id = u.team_id WHERE g.id = $1"
        );
        if let Some(states) = self.read_direct(&sql, &[&grant_id], |row| grant_state_from(row))? {
            return Ok(states.into_iter().next());
        }
        on_db!(self, pool, {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(grant_id).fetch_optional(pool).await?;
            row.as_ref().map(grant_state_from).transpose()
        })
    }

    /// `grant_state` through the cache of `with_grant_cache` (read at `now`, on the caller's clock); without a
    /// cache, straight from the database.
    pub async fn grant_state_cached(
        &self,
        grant_id: i64,
        now: i64,
    ) -> Result<Option<std::sync::Arc<GrantState>>, StorageError> {
        through(self.cache.as_ref().map(|c| &c.grants), grant_id, now, self.grant_state(grant_id)).await
    }

    /// Deletes what can no longer be used: expired sessions and refresh tokens, codes a day after they expired
    /// (kept that long to recognise a replay), and grants whose last refresh token expired. Returns rows deleted
    /// (a grant's tokens deleted with it are not counted).
    pub async fn purge_expired(&self, now: i64) -> Result<u64, StorageError> {
        on_db!(self, pool, {
            let mut deleted = 0;
            for (sql, cutoff) in [
                ("DELETE FROM sessions WHERE expires_at <= $1", now),
                ("DELETE FROM auth_codes WHERE expires_at <= $1", now - 86_400),
            ] {
                deleted += sqlx::query(sql).bind(cutoff).execute(pool).await?.rows_affected();
            }
            // The grants whose last refresh token expires now (their tokens go with them, ON DELETE CASCADE), then
            // the other expired tokens: both found through the expiry index, never by scanning every grant.
            let mut tx = pool.begin().await?;
            let grants = sqlx::query(
                "DELETE FROM grants WHERE id IN (SELECT grant_id FROM refresh_tokens WHERE expires_at <= $1) \
                 AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.grant_id = grants.id AND r.expires_at > $1)",
            )
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            deleted += sqlx::query("DELETE FROM refresh_tokens WHERE expires_at <= $1")
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if grants > 0 {
                pool.announce(&mut tx, Change::All).await?;
            }
            tx.commit().await?;
            if grants > 0 {
                self.forget(Change::All);
            }
            Ok(deleted + grants)
        })
    }

    /// What a refresh token is now: its grant, whether it is the current one, and when it expires.
    pub async fn refresh_state(&self, digest: &[u8]) -> Result<Option<RefreshState>, StorageError> {
        const SQL: &str = "SELECT g.id, g.app_id, g.user_id, g.scopes, g.generation, g.revoked_at, \
             r.generation AS token_generation, r.created_at, r.expires_at \
             FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id WHERE r.digest = $1";
        if let Some(states) = self.read_direct(SQL, &[&digest], |row| refresh_state_from(row))? {
            return Ok(states.into_iter().next());
        }
        on_db!(self, pool, {
            let row = sqlx::query(SQL).bind(digest).fetch_optional(pool).await?;
            row.as_ref().map(refresh_state_from).transpose()
        })
    }

    /// Revokes a grant: every access and refresh token issued from it stops working. Returns whether it was live.
    pub async fn revoke_grant(&self, grant_id: i64, now: i64) -> Result<bool, StorageError> {
        on_db!(self, pool, {
            let mut tx = pool.begin().await?;
            let done = sqlx::query("UPDATE grants SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(grant_id)
                .execute(&mut *tx)
                .await?;
            pool.announce(&mut tx, Change::Grant(grant_id)).await?;
            tx.commit().await?;
            self.forget(Change::Grant(grant_id));
            Ok(done.rows_affected() == 1)
        })
    }

    // ---- signing keys ---------------------------------------------------------------------------------------

    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyRow>, StorageError> {
        on_db!(self, pool, {
            let rows = sqlx::query(
                "SELECT kid, private_key, created_at, retired_at FROM signing_keys ORDER BY created_at, kid",
            )
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(SigningKeyRow {
                        kid: row.col("kid")?,
                        private_key: row.col("private_key")?,
                        created_at: row.col("created_at")?,
                        retired_at: row.col("retired_at")?,
                    })
                })
                .collect()
        })
    }

    /// Stores a signing key unless an active key already exists (first node to start wins); returns whether it was
    /// stored. Under the write lock: on PostgreSQL a bare `INSERT ... WHERE NOT EXISTS` lets two nodes starting
    /// together both insert (neither sees the other's uncommitted row), leaving two active keys.
    pub async fn insert_first_signing_key(
        &self,
        kid: &str,
        private_key: &[u8],
        now: i64,
    ) -> Result<bool, StorageError> {
        on_db!(self, pool, {
            let mut tx = pool.begin_write().await?;
            let done = sqlx::query(
                "INSERT INTO signing_keys (kid, private_key, created_at) SELECT $1, $2, $3 \
                 WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE retired_at IS NULL)",
            )
            .bind(kid)
            .bind(private_key)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Makes `kid` the signing key: every other key is retired now (it still verifies until it is deleted). Under
    /// the write lock, so two rotations at once (or a rotation and a first start) leave one active key.
    pub async fn rotate_signing_key(&self, kid: &str, private_key: &[u8], now: i64) -> Result<(), StorageError> {
        on_db!(self, pool, {
            let mut tx = pool.begin_write().await?;
            sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL")
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO signing_keys (kid, private_key, created_at) VALUES ($1, $2, $3)")
                .bind(kid)
                .bind(private_key)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Deletes keys retired at or before `before`: no token they signed can still be alive.
    pub async fn delete_retired_keys(&self, before: i64) -> Result<u64, StorageError> {
        on_db!(self, pool, {
            let done = sqlx::query("DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at <= $1")
                .bind(before)
                .execute(pool)
                .await?;
            Ok(done.rows_affected())
        })
    }
}

/// Spends an authorization code (`$2`) at `$1`: the conditional write that only one exchange wins.
const CONSUME_CODE: &str = "UPDATE auth_codes SET used_at = $1 WHERE digest = $2 AND used_at IS NULL \
     RETURNING app_id, user_id, redirect_uri, scopes, expires_at, code_challenge";

/// Starts the grant of an exchanged code: app, user, scopes, code digest, time; answers its id.
const INSERT_GRANT: &str = "INSERT INTO grants (app_id, user_id, scopes, code_digest, generation, created_at) \
     VALUES ($1, $2, $3, $4, 1, $5) RETURNING id";

/// An authorization code as spent by `CONSUME_CODE` (or read unspent by `UNSPENT_CODE`, to be checked first).
struct SpentCode {
    app_id: i64,
    user_id: i64,
    redirect_uri: String,
    scopes: String,
    expires_at: i64,
    challenge: Option<String>,
}

impl SpentCode {
    fn from_row(row: &impl DbRow) -> Result<SpentCode, sqlx::Error> {
        Ok(SpentCode {
            app_id: row.col("app_id")?,
            user_id: row.col("user_id")?,
            redirect_uri: row.col("redirect_uri")?,
            scopes: row.col("scopes")?,
            expires_at: row.col("expires_at")?,
            challenge: row.col("code_challenge")?,
        })
    }

    /// Why the code does not give the exchange a grant, if it does not.
    fn refusal(&self, exchange: &CodeExchange<'_>) -> Option<ExchangeError> {
        if self.app_id != exchange.app_id {
            Some(ExchangeError::WrongClient)
        } else if self.expires_at <= exchange.now {
            Some(ExchangeError::Expired)
        } else if self.redirect_uri != exchange.redirect_uri {
            Some(ExchangeError::RedirectMismatch)
        } else {
            // PKCE (RFC 7636 §4.6), and its downgrade protection (RFC 9700 §2.1.1): a verifier for a code issued
            // without a challenge is refused too.
            match (self.challenge.as_deref(), exchange.code_verifier) {
                (Some(challenge), Some(verifier)) if wsoauth_domain::pkce::verify(challenge, verifier) => None,
                (Some(_), _) => Some(ExchangeError::VerifierMismatch),
                (None, Some(_)) => Some(ExchangeError::UnexpectedVerifier),
                (None, None) => None,
            }
        }
    }
}

/// Moves the grant of a live refresh token ($1) of app $3 at time $2 to its next generation, drawing the
/// rotation's nonce $4: the conditional write that decides the one winner of concurrent rotations.
const ROTATE: &str = "UPDATE grants SET generation = generation + 1, rotation_nonce = $4, rotated_at = $2, \
     access_used = 0 \
     WHERE id = (SELECT grant_id FROM refresh_tokens WHERE digest = $1 AND expires_at > $2) \
     AND generation = (SELECT generation FROM refresh_tokens WHERE digest = $1) \
     AND app_id = $3 AND revoked_at IS NULL \
     RETURNING id, app_id, user_id, scopes, generation";

/// An unspent authorization code ($1), to be spent once checked (by `EXCHANGE_MANY` on PostgreSQL, by
/// `CONSUME_CODE` on SQLite's direct connection).
const UNSPENT_CODE: &str = "SELECT app_id, user_id, redirect_uri, scopes, expires_at, code_challenge FROM auth_codes \
     WHERE digest = $1 AND used_at IS NULL";

/// The audit entries of the grants a batch wrote (`ROTATE_MANY`, `EXCHANGE_MANY`), from its `WITH` query `source`,
/// which answers for each grant its `id` and `user_id` and its entry's `at`, `event`, `account`, `person`, `client`
/// and `ip`. The member is the grant's, the account and person theirs unless given (as `INSERT_AUDIT` fills them
/// in); the detail is `grant <id>` and then `more`, the same text as `NewAuditEvent::issued` or `rotated`.
fn batch_audit(source: &str, more: &str) -> String {
    format!(
        "INSERT INTO audit_log (at, event, account_id, person_id, user_id, client_id, ip, detail) \
         SELECT g.at, g.event, COALESCE(g.account, u.account_id), COALESCE(g.person, u.person_id), g.user_id, \
         g.client, g.ip, 'grant ' || g.id || {more} FROM {source} g LEFT JOIN users u ON u.id = g.user_id"
    )
}

const INSERT_REFRESH: &str = "INSERT INTO refresh_tokens (digest, grant_id, generation, created_at, expires_at) \
     VALUES ($1, $2, $3, $4, $5)";

/// `RefreshTx::insert_refresh` on the direct SQLite connection.
fn insert_refresh_direct(
    tx: &rusqlite::Transaction<'_>,
    grant_id: i64,
    generation: i64,
    now: i64,
    refresh: &NewRefresh,
) -> rusqlite::Result<()> {
    let values: [&dyn rusqlite::ToSql; 5] = [&refresh.digest, &grant_id, &generation, &now, &refresh.expires_at];
    tx.prepare_cached(INSERT_REFRESH)?.execute(&numbered(&values)[..])?;
    Ok(())
}

/// Writes inside a transaction of either backend.
trait RefreshTx {
    /// Stores a grant's refresh token of `generation`.
    async fn insert_refresh(
        &mut self,
        grant_id: i64,
        generation: i64,
        now: i64,
        refresh: &NewRefresh,
    ) -> Result<(), sqlx::Error>;
}

impl_for_tx! {
    impl RefreshTx {
        async fn insert_refresh(
            &mut self,
            grant_id: i64,
            generation: i64,
            now: i64,
            refresh: &NewRefresh,
        ) -> Result<(), sqlx::Error> {
            sqlx::query(INSERT_REFRESH)
            .bind(&refresh.digest)
            .bind(grant_id)
            .bind(generation)
            .bind(now)
            .bind(refresh.expires_at)
            .execute(&mut **self)
            .await?;
            Ok(())
        }
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

fn account_from(row: &impl DbRow) -> Result<Account, StorageError> {
    Ok(Account { id: row.col("id")?, name: row.col("name")?, slug: row.col("slug")? })
}

fn person_from(row: &impl DbRow) -> Result<Person, StorageError> {
    Ok(Person {
        id: row.col("id")?,
        email: row.col("email")?,
        first_name: row.col("first_name")?,
        last_name: row.col("last_name")?,
        password_hash: row.col("password_hash")?,
    })
}

/// A session's person and when the session was last marked as seen (`seen_at`).
fn seen_person_from(row: &impl DbRow) -> Result<(Person, i64), StorageError> {
    Ok((person_from(row)?, row.col("seen_at")?))
}

fn member_from(row: &impl DbRow) -> Result<Member, StorageError> {
    let role: String = row.col("role")?;
    Ok(Member {
        user_id: row.col("user_id")?,
        role: role.parse().map_err(StorageError::Corrupt)?,
        title: row.col("title")?,
        account: Account { id: row.col("account_id")?, name: row.col("account_name")?, slug: row.col("account_slug")? },
        person: Person {
            id: row.col("person_id")?,
            email: row.col("email")?,
            first_name: row.col("first_name")?,
            last_name: row.col("last_name")?,
            password_hash: row.col("password_hash")?,
        },
        profile: Profile {
            team_id: row.col("team_id")?,
            team: row.col::<Option<String>>("team")?.unwrap_or_default(),
            department: row.col("department")?,
            rate: row.col("rate")?,
            phones: [row.col("phone")?, row.col("phone2")?, row.col("phone3")?, row.col("phone4")?],
            address: row.col("address")?,
            address2: row.col("address2")?,
        },
    })
}

fn app_from(row: &impl DbRow) -> Result<App, StorageError> {
    let uris: String = row.col("redirect_uris")?;
    Ok(App {
        id: row.col("id")?,
        account_id: row.col("account_id")?,
        client_id: row.col("client_id")?,
        secret_digest: row.col("secret_digest")?,
        name: row.col("name")?,
        redirect_uris: serde_json::from_str(&uris).map_err(|e| StorageError::Corrupt(e.to_string()))?,
        scopes: row.col("scopes")?,
        created_at: row.col("created_at")?,
        public: row.col("public")?,
        require_pkce: row.col("require_pkce")?,
    })
}

fn grant_state_from(row: &impl DbRow) -> Result<GrantState, StorageError> {
    Ok(GrantState {
        grant: grant_from(row)?,
        revoked: row.col::<Option<i64>>("revoked_at")?.is_some(),
        access_used: row.col("access_used")?,
        client_id: row.col("client_id")?,
        member: member_from(row)?,
    })
}

fn refresh_state_from(row: &impl DbRow) -> Result<RefreshState, StorageError> {
    Ok(RefreshState {
        grant: grant_from(row)?,
        revoked: row.col::<Option<i64>>("revoked_at")?.is_some(),
        token_generation: row.col("token_generation")?,
        issued_at: row.col("created_at")?,
        expires_at: row.col("expires_at")?,
    })
}

fn grant_from(row: &impl DbRow) -> Result<Grant, StorageError> {
    Ok(Grant {
        id: row.col("id")?,
        app_id: row.col("app_id")?,
        user_id: row.col("user_id")?,
        scopes: row.col("scopes")?,
        generation: row.col("generation")?,
    })
}

fn uris_to_json(uris: &[String]) -> String {
    serde_json::Value::from(uris.to_vec()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

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
