//! Two backends, one SQL text. `Store` holds a typed SQLite pool or a typed PostgreSQL pool (never `sqlx::Any`);
//! each repository method is written once inside [`on_db!`], which compiles its body once per backend. The SQL
//! is written so both engines read it the same way:
//!
//! - placeholders are `$1, $2, ...` (PostgreSQL's own; sqlx binds SQLite's `$NNN` parameters by their number);
//! - integers are BIGINT on PostgreSQL (flags 0/1 too) and rows are read through [`DbRow::col`], which also
//!   accepts PostgreSQL's INT4 and BOOL where SQLite has only integers (`EXISTS (...)`, `CASE ... 1 ELSE 0`);
//! - id lists travel as one JSON array read by `json_each($n)`, and substring tests use `instr`: SQLite
//!   built-ins that the PostgreSQL migrations define with the same meaning;
//! - transactions that read before they write start with [`Backend::begin_write`]: `BEGIN IMMEDIATE` on SQLite,
//!   an advisory lock held to commit on PostgreSQL; both serialise such writers the same way.

use std::future::Future;

use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{PgPool, Postgres, Row, Sqlite, SqlitePool, Transaction, TypeInfo, ValueRef};

use crate::cache::Change;

/// The typed pool behind a `Store`.
#[derive(Clone, Debug)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the store's typed pool: the body is compiled once per backend.
macro_rules! on_db {
    ($store:expr, $pool:ident, $body:block) => {
        match &$store.pool {
            $crate::db::Pool::Sqlite($pool) => $body,
            $crate::db::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_db;

/// The advisory-lock key that PostgreSQL writers take where SQLite would take its write lock.
const WRITE_LOCK: i64 = 0x0077_736f_6175_7468; // "wsoauth" in ASCII

/// What differs between the pools beyond the SQL text.
pub(crate) trait Backend {
    type Db: sqlx::Database;
    /// The expression for a new user's id: user ids start at 1000 (the API's sentinel users are "0", "1" and "2").
    fn next_user_id(&self) -> &'static str;
    /// A transaction that holds the database's write lock from its first statement, so what it reads stays
    /// true until it commits.
    fn begin_write(&self) -> impl Future<Output = Result<Transaction<'static, Self::Db>, sqlx::Error>> + Send;
    /// Tells the other nodes, when `tx` commits, what changed, so they drop what they cached of it
    /// (`crate::cache`). Nothing to do on SQLite: one process serves it.
    fn announce(
        &self,
        tx: &mut Transaction<'static, Self::Db>,
        change: Change,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

impl Backend for SqlitePool {
    type Db = Sqlite;
    fn next_user_id(&self) -> &'static str {
        "(SELECT MAX(COALESCE(MAX(id), 0), 999) + 1 FROM users)"
    }
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
    async fn announce(&self, _: &mut Transaction<'static, Sqlite>, _: Change) -> Result<(), sqlx::Error> {
        Ok(())
    }
}

impl Backend for PgPool {
    type Db = Postgres;
    // The identity column starts at 1000 (migrations/postgres/0001_init.sql); concurrent inserts never collide.
    fn next_user_id(&self) -> &'static str {
        "nextval(pg_get_serial_sequence('users', 'id'))"
    }
    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        let mut tx = self.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(WRITE_LOCK).execute(&mut *tx).await?;
        Ok(tx)
    }
    async fn announce(&self, tx: &mut Transaction<'static, Postgres>, change: Change) -> Result<(), sqlx::Error> {
        let payload = change.payload();
        sqlx::query("SELECT pg_notify($1, $2)").bind(crate::cache::CHANNEL).bind(payload).execute(&mut **tx).await?;
        Ok(())
    }
}

/// A result row of either backend, read by column name.
pub(crate) trait DbRow {
    fn col<T: Col>(&self, name: &str) -> Result<T, sqlx::Error>;
}

impl DbRow for SqliteRow {
    fn col<T: Col>(&self, name: &str) -> Result<T, sqlx::Error> {
        T::sqlite(self, name)
    }
}

impl DbRow for PgRow {
    fn col<T: Col>(&self, name: &str) -> Result<T, sqlx::Error> {
        T::postgres(self, name)
    }
}

/// A row of the direct SQLite connection (`crate::direct`), read like the pool's rows.
impl DbRow for rusqlite::Row<'_> {
    fn col<T: Col>(&self, name: &str) -> Result<T, sqlx::Error> {
        T::direct(self, name)
    }
}

/// A row of a direct read with its statement's column names, read once per statement rather than by rusqlite
/// on every column of every row (a call into SQLite and a UTF-8 check per name it passes: a sixth of the audit
/// page's CPU, 51 rows of 12 columns).
pub(crate) struct NamedRow<'a, 'r> {
    pub(crate) row: &'a rusqlite::Row<'r>,
    pub(crate) names: &'a [String],
}

impl DbRow for NamedRow<'_, '_> {
    fn col<T: Col>(&self, name: &str) -> Result<T, sqlx::Error> {
        match self.names.iter().position(|column| column == name) {
            Some(index) => self.row.get(index).map_err(|error| decode_error(name, error)),
            None => T::direct(self.row, name),
        }
    }
}

/// A direct row's column: SQLite's own types, so the same decoding as sqlx's SQLite rows.
fn direct_col<T: rusqlite::types::FromSql>(row: &rusqlite::Row<'_>, name: &str) -> Result<T, sqlx::Error> {
    row.get(name).map_err(|error| decode_error(name, error))
}

fn decode_error(name: &str, error: rusqlite::Error) -> sqlx::Error {
    sqlx::Error::ColumnDecode { index: name.to_owned(), source: Box::new(error) }
}

/// A Rust type a column can be read as, on both backends.
pub(crate) trait Col: Sized + rusqlite::types::FromSql {
    fn sqlite(row: &SqliteRow, name: &str) -> Result<Self, sqlx::Error>;
    fn postgres(row: &PgRow, name: &str) -> Result<Self, sqlx::Error>;
    fn direct(row: &rusqlite::Row<'_>, name: &str) -> Result<Self, sqlx::Error> {
        direct_col(row, name)
    }
}

/// Types both backends decode as they are.
macro_rules! plain_col {
    ($($t:ty),*) => {$(
        impl Col for $t {
            fn sqlite(row: &SqliteRow, name: &str) -> Result<Self, sqlx::Error> {
                row.try_get(name)
            }
            fn postgres(row: &PgRow, name: &str) -> Result<Self, sqlx::Error> {
                row.try_get(name)
            }
        }
    )*};
}
plain_col!(String, Option<String>, Vec<u8>, Option<Vec<u8>>, f64, Option<f64>);

/// An integer column on PostgreSQL, whatever integer (or boolean) type the expression produced.
fn pg_int(row: &PgRow, name: &str) -> Result<Option<i64>, sqlx::Error> {
    let raw = row.try_get_raw(name)?;
    if raw.is_null() {
        return Ok(None);
    }
    let info = raw.type_info();
    Ok(Some(match info.name() {
        "INT2" => row.try_get::<i16, _>(name)?.into(),
        "INT4" => row.try_get::<i32, _>(name)?.into(),
        "BOOL" => row.try_get::<bool, _>(name)?.into(),
        _ => row.try_get::<i64, _>(name)?,
    }))
}

fn null(name: &str) -> sqlx::Error {
    sqlx::Error::ColumnDecode { index: name.to_owned(), source: "unexpected NULL".into() }
}

impl Col for i64 {
    fn sqlite(row: &SqliteRow, name: &str) -> Result<Self, sqlx::Error> {
        row.try_get(name)
    }
    fn postgres(row: &PgRow, name: &str) -> Result<Self, sqlx::Error> {
        pg_int(row, name)?.ok_or_else(|| null(name))
    }
}

impl Col for Option<i64> {
    fn sqlite(row: &SqliteRow, name: &str) -> Result<Self, sqlx::Error> {
        row.try_get(name)
    }
    fn postgres(row: &PgRow, name: &str) -> Result<Self, sqlx::Error> {
        pg_int(row, name)
    }
}

impl Col for bool {
    fn sqlite(row: &SqliteRow, name: &str) -> Result<Self, sqlx::Error> {
        row.try_get(name)
    }
    fn postgres(row: &PgRow, name: &str) -> Result<Self, sqlx::Error> {
        Ok(pg_int(row, name)?.ok_or_else(|| null(name))? != 0)
    }
}

/// Implements a private helper trait for the transactions of both backends, its methods written once.
macro_rules! impl_for_tx {
    (impl $trait:ident { $($body:tt)* }) => {
        impl $trait for sqlx::Transaction<'_, sqlx::Sqlite> { $($body)* }
        impl $trait for sqlx::Transaction<'_, sqlx::Postgres> { $($body)* }
    };
}
pub(crate) use impl_for_tx;

/// A task of the store (PostgreSQL's listener, SQLite's checkpoints), stopped with the last clone of the store.
#[derive(Debug)]
pub(crate) struct Background(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for Background {
    fn drop(&mut self) {
        self.0.abort();
    }
}
