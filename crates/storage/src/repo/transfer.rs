//! Moving a whole database between backends: every table's rows read as typed values ([`Store::export`]) and
//! written into an empty database in one transaction, ids kept ([`Store::import`]). The file format around it is
//! in `crate::export_file`.
//!
//! Each column is read by its declared type (`pragma_table_info` on SQLite, `information_schema.columns` on
//! PostgreSQL), so a value keeps its type across backends, and a NULL is bound with its column's type (PostgreSQL
//! refuses a NULL of the wrong type). The export reads one snapshot (a read transaction) in pages ordered by each
//! table's key, so its output is the same on both backends for the same data.

use sqlx::{AssertSqlSafe, PgPool, SqlitePool};
use thiserror::Error;

use super::Store;
use crate::db::{Backend, DbRow, on_db};
use crate::error::StorageError;

/// A table of the export and the columns that order its rows (a unique key: exports are deterministic).
#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub key: &'static [&'static str],
}

const fn table(name: &'static str, key: &'static [&'static str]) -> Table {
    Table { name, key }
}

/// Every table but `schema_migrations`, each after the tables it references (the order of an import). A migration
/// that adds a table must add it here: [`Store::export`] and [`Store::import`] refuse a database with a table
/// this list lacks, and the tests below fail.
pub const TABLES: &[Table] = &[
    table("settings", &["name"]),
    table("accounts", &["id"]),
    table("people", &["id"]),
    table("teams", &["id"]),
    table("users", &["id"]),
    table("apps", &["id"]),
    table("sessions", &["digest"]),
    table("auth_codes", &["digest"]),
    table("grants", &["id"]),
    table("refresh_tokens", &["digest"]),
    table("signing_keys", &["kid"]),
    table("project_folders", &["id"]),
    table("projects", &["id"]),
    table("project_members", &["project_id", "user_id"]),
    // a subtask references its parent: parents (smaller depth) first
    table("tasks", &["depth", "id"]),
    table("task_visibility", &["task_id", "user_id"]),
    table("task_subscribers", &["task_id", "user_id"]),
    table("task_relations", &["from_task", "to_task"]),
    table("comments", &["id"]),
    table("comment_visibility", &["comment_id", "user_id"]),
    table("tag_groups", &["id"]),
    table("tags", &["id"]),
    table("task_tags", &["task_id", "tag_id"]),
    table("project_tags", &["project_id", "tag_id"]),
    table("consents", &["user_id", "app_id"]),
    table("audit_log", &["id"]),
];

/// The first user id (migrations/postgres/0001_init.sql): the API's sentinel users are "0", "1" and "2".
const FIRST_USER_ID: i64 = 1000;
/// Rows read per query of an export.
const PAGE: usize = 1000;

/// One stored value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// A column's declared type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Int,
    Real,
    Text,
    Blob,
}

/// A column of a table, as the database declares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub kind: Kind,
}

/// What an export yields and an import takes: a table's header, then its rows (values in the header's order).
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    Table { name: String, columns: Vec<String> },
    Row(Vec<Value>),
}

/// Why an export or an import failed. Never echoes a stored value.
#[derive(Debug, Error)]
pub enum TransferError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("cannot write the export: {0}")]
    Write(std::io::Error),
    #[error("cannot read the import: {0}")]
    Read(std::io::Error),
    #[error("not a wsoauth export: {0}")]
    NotAnExport(String),
    #[error("export format version {0} is not supported (this wsoauth reads version 1)")]
    FormatVersion(i64),
    #[error("line {line}: {message}")]
    Format { line: u64, message: String },
    #[error("the file ends at line {0} without its closing line: the export is incomplete")]
    Truncated(u64),
    #[error(
        "the export is of schema version {file} but this database is at version {database}: \
         import with the wsoauth version that made the export"
    )]
    SchemaMismatch { file: i64, database: i64 },
    #[error("the target database is not empty (table {0} has rows): import only into a new, empty database")]
    NotEmpty(&'static str),
    #[error("table {table}: {message}")]
    Table { table: String, message: String },
    #[error("the database has table {0:?}, which the export's table list lacks (crates/storage/src/repo/transfer.rs)")]
    Unlisted(String),
    #[error("the database lacks table {0:?}")]
    Missing(&'static str),
    #[error("table {table}, column {column}: the declared type {declared:?} is not supported")]
    ColumnType { table: String, column: String, declared: String },
}

impl From<sqlx::Error> for TransferError {
    fn from(error: sqlx::Error) -> Self {
        TransferError::Storage(error.into())
    }
}

fn table_error(table: &str, message: impl Into<String>) -> TransferError {
    TransferError::Table { table: table.to_owned(), message: message.into() }
}

/// The SQL that differs between the backends.
struct Dialect {
    tables: &'static str,
    columns: &'static str,
    /// A read transaction that sees one snapshot from its first query on.
    begin_read: &'static str,
    /// After a text key column: compare bytes, as SQLite does by default.
    bytewise: &'static str,
    kind: fn(&str) -> Option<Kind>,
    postgres: bool,
    /// Parameters per INSERT. sqlx looks each SQLite parameter's name up in a list (`sqlite3VListNumToName`), so
    /// a statement's cost grows with the square of its parameters there: a few rows each. PostgreSQL takes up
    /// to 65535, and each statement is a round trip: many rows each.
    max_params: usize,
}

trait HasDialect {
    const DIALECT: Dialect;
}

impl HasDialect for SqlitePool {
    const DIALECT: Dialect = Dialect {
        tables: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
        columns: "SELECT name, type AS kind FROM pragma_table_info($1) ORDER BY cid",
        begin_read: "BEGIN",
        bytewise: "",
        kind: sqlite_kind,
        postgres: false,
        max_params: 100,
    };
}

impl HasDialect for PgPool {
    const DIALECT: Dialect = Dialect {
        tables: "SELECT CAST(table_name AS TEXT) AS name FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
        columns: "SELECT CAST(column_name AS TEXT) AS name, CAST(data_type AS TEXT) AS kind \
                  FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 \
                  ORDER BY ordinal_position",
        begin_read: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        bytewise: " COLLATE \"C\"",
        kind: postgres_kind,
        postgres: true,
        max_params: 30_000,
    };
}

fn dialect<P: HasDialect>(_: &P) -> Dialect {
    P::DIALECT
}

/// SQLite's type affinity rules, less NUMERIC (which the schema never declares).
fn sqlite_kind(declared: &str) -> Option<Kind> {
    let declared = declared.to_ascii_uppercase();
    if declared.contains("INT") {
        Some(Kind::Int)
    } else if ["CHAR", "CLOB", "TEXT"].iter().any(|t| declared.contains(t)) {
        Some(Kind::Text)
    } else if declared.contains("BLOB") || declared.is_empty() {
        Some(Kind::Blob)
    } else if ["REAL", "FLOA", "DOUB"].iter().any(|t| declared.contains(t)) {
        Some(Kind::Real)
    } else {
        None
    }
}

fn postgres_kind(declared: &str) -> Option<Kind> {
    match declared {
        "bigint" | "integer" | "smallint" => Some(Kind::Int),
        "double precision" | "real" => Some(Kind::Real),
        "text" | "character varying" => Some(Kind::Text),
        "bytea" => Some(Kind::Blob),
        _ => None,
    }
}

/// A value ready to bind: typed even when NULL.
enum Arg<'a> {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<&'a str>),
    Blob(Option<&'a [u8]>),
}

impl<'a> Arg<'a> {
    /// `value` as a value of a `kind` column (an integer may go into a real column); `None` when it does not fit.
    fn new(kind: Kind, value: &'a Value) -> Option<Arg<'a>> {
        Some(match (kind, value) {
            (Kind::Int, Value::Null) => Arg::Int(None),
            (Kind::Real, Value::Null) => Arg::Real(None),
            (Kind::Text, Value::Null) => Arg::Text(None),
            (Kind::Blob, Value::Null) => Arg::Blob(None),
            (Kind::Int, Value::Int(v)) => Arg::Int(Some(*v)),
            (Kind::Real, Value::Real(v)) => Arg::Real(Some(*v)),
            // an integer stored in a real column is a whole real (2^53 and below, exactly)
            #[allow(clippy::cast_precision_loss)]
            (Kind::Real, Value::Int(v)) => Arg::Real(Some(*v as f64)),
            (Kind::Text, Value::Text(v)) => Arg::Text(Some(v)),
            (Kind::Blob, Value::Blob(v)) => Arg::Blob(Some(v)),
            _ => return None,
        })
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Int => "an integer",
        Kind::Real => "a real",
        Kind::Text => "a text",
        Kind::Blob => "a blob",
    }
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "NULL",
        Value::Int(_) => "an integer",
        Value::Real(_) => "a real",
        Value::Text(_) => "text",
        Value::Blob(_) => "a blob",
    }
}

/// Binds `args` in order (expanded once per backend, inside `on_db!`).
macro_rules! bind_args {
    ($query:expr, $args:expr) => {{
        let mut query = $query;
        for arg in $args {
            query = match arg {
                Arg::Int(v) => query.bind(v),
                Arg::Real(v) => query.bind(v),
                Arg::Text(v) => query.bind(v),
                Arg::Blob(v) => query.bind(v),
            };
        }
        query
    }};
}

/// Reads `columns` of a result row by their declared types.
fn read_row<R: DbRow>(row: &R, columns: &[Column]) -> Result<Vec<Value>, sqlx::Error> {
    columns
        .iter()
        .map(|column| {
            let name = column.name.as_str();
            Ok(match column.kind {
                Kind::Int => row.col::<Option<i64>>(name)?.map_or(Value::Null, Value::Int),
                Kind::Real => row.col::<Option<f64>>(name)?.map_or(Value::Null, Value::Real),
                Kind::Text => row.col::<Option<String>>(name)?.map_or(Value::Null, Value::Text),
                Kind::Blob => row.col::<Option<Vec<u8>>>(name)?.map_or(Value::Null, Value::Blob),
            })
        })
        .collect()
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// One page of `table` after the key values `$1..` (the first page when `after` is false).
fn page_sql(table: &Table, columns: &[Column], bytewise: &str, after: bool) -> String {
    let list: Vec<String> = columns.iter().map(|c| quoted(&c.name)).collect();
    let key: Vec<String> = table
        .key
        .iter()
        .map(|k| {
            let text = columns.iter().any(|c| c.name == *k && c.kind == Kind::Text);
            format!("{}{}", quoted(k), if text { bytewise } else { "" })
        })
        .collect();
    let mut sql = format!("SELECT {} FROM {}", list.join(", "), quoted(table.name));
    if after {
        let params: Vec<String> = (1..=key.len()).map(|n| format!("${n}")).collect();
        sql.push_str(&format!(" WHERE ({}) > ({})", key.join(", "), params.join(", ")));
    }
    sql.push_str(&format!(" ORDER BY {} LIMIT {PAGE}", key.join(", ")));
    sql
}

/// `INSERT INTO table (columns) VALUES (...), (...)` for `rows` rows.
fn insert_sql(table: &str, columns: &[&Column], rows: usize) -> String {
    let list: Vec<String> = columns.iter().map(|c| quoted(&c.name)).collect();
    let mut sql = format!("INSERT INTO {} ({}) VALUES ", quoted(table), list.join(", "));
    let mut n = 0;
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns.len() {
            n += 1;
            sql.push_str(&format!("{}${n}", if column == 0 { "" } else { ", " }));
        }
        sql.push(')');
    }
    sql
}

/// The table an import is filling: its place in [`TABLES`], its columns in the file's order, the rows not yet
/// written and the rows written.
struct Filling<'a> {
    table: &'static Table,
    columns: Vec<&'a Column>,
    batch: Vec<Vec<Value>>,
    batch_rows: usize,
    rows: u64,
}

impl<'a> Filling<'a> {
    /// Checks that the file's next table is `TABLES[at]` with this database's columns (in any order).
    fn start(
        at: usize,
        name: &str,
        columns: &[String],
        all: &'a [Vec<Column>],
        max_params: usize,
    ) -> Result<Filling<'a>, TransferError> {
        let Some(expected) = TABLES.get(at) else {
            return Err(TransferError::NotAnExport(format!("unexpected table {name:?} after the last table")));
        };
        if expected.name != name {
            let message = if TABLES.iter().any(|t| t.name == name) {
                format!("table {name} comes where table {} should", expected.name)
            } else {
                format!("the file has table {name:?}, which this database does not have")
            };
            return Err(TransferError::NotAnExport(message));
        }
        let target = &all[at];
        let mut found: Vec<&Column> = Vec::with_capacity(columns.len());
        for column in columns {
            match target.iter().find(|c| c.name == *column) {
                Some(c) if !found.iter().any(|f| f.name == c.name) => found.push(c),
                Some(_) => return Err(table_error(name, format!("column {column} appears twice"))),
                None => {
                    return Err(table_error(name, format!("the file has column {column:?}, which the table lacks")));
                }
            }
        }
        if let Some(lacking) = target.iter().find(|c| !columns.contains(&c.name)) {
            return Err(table_error(name, format!("the file lacks column {}", lacking.name)));
        }
        let batch_rows = (max_params / found.len()).clamp(1, 5000);
        Ok(Filling { table: expected, columns: found, batch: Vec::new(), batch_rows, rows: 0 })
    }

    fn push(&mut self, values: Vec<Value>) -> Result<(), TransferError> {
        if values.len() != self.columns.len() {
            let n = self.rows + self.batch.len() as u64 + 1;
            let message = format!("row {n} has {} values for {} columns", values.len(), self.columns.len());
            return Err(table_error(self.table.name, message));
        }
        self.batch.push(values);
        Ok(())
    }

    /// The batch's values as typed arguments, row by row.
    fn args(&self) -> Result<Vec<Arg<'_>>, TransferError> {
        let mut args = Vec::with_capacity(self.batch.len() * self.columns.len());
        for (i, values) in self.batch.iter().enumerate() {
            for (column, value) in self.columns.iter().zip(values) {
                let Some(arg) = Arg::new(column.kind, value) else {
                    let n = self.rows + i as u64 + 1;
                    let (got, want) = (describe(value), kind_name(column.kind));
                    let message = format!("row {n}, column {}: {got} in {want} column", column.name);
                    return Err(table_error(self.table.name, message));
                };
                args.push(arg);
            }
        }
        Ok(args)
    }
}

/// Writes a [`Filling`]'s batch in one INSERT (expanded once per backend, inside `on_db!`).
macro_rules! flush {
    ($tx:ident, $filling:ident) => {
        if !$filling.batch.is_empty() {
            let text = insert_sql($filling.table.name, &$filling.columns, $filling.batch.len());
            let args = $filling.args()?;
            let (first, last) = ($filling.rows + 1, $filling.rows + $filling.batch.len() as u64);
            bind_args!(sqlx::query(AssertSqlSafe(text)), args).execute(&mut *$tx).await.map_err(|error| {
                let message = format!("rows {first} to {last}: {}", StorageError::from(error));
                table_error($filling.table.name, message)
            })?;
            $filling.rows = last;
            $filling.batch.clear();
        }
    };
}

impl Store {
    /// The newest schema version applied (0 on a database never migrated).
    pub async fn schema_version(&self) -> Result<i64, StorageError> {
        Ok(self.schema_versions().await?.into_iter().max().unwrap_or(0))
    }

    /// The database's tables (but `schema_migrations`) that [`TABLES`] lacks.
    pub async fn unlisted_tables(&self) -> Result<Vec<String>, StorageError> {
        let mut names: Vec<String> = on_db!(self, pool, {
            let sql = dialect(pool).tables;
            let rows = sqlx::query(sql).fetch_all(pool).await?;
            rows.iter().map(|row| row.col::<String>("name")).collect::<Result<_, _>>()?
        });
        names.retain(|name| name != "schema_migrations" && !TABLES.iter().any(|t| t.name == name));
        names.sort();
        Ok(names)
    }

    /// The columns of `table` with their declared types, in the table's order.
    pub async fn table_columns(&self, table: &str) -> Result<Vec<Column>, TransferError> {
        let declared: Vec<(String, String)> = on_db!(self, pool, {
            let rows = sqlx::query(dialect(pool).columns).bind(table).fetch_all(pool).await?;
            rows.iter().map(|row| Ok((row.col("name")?, row.col("kind")?))).collect::<Result<_, sqlx::Error>>()?
        });
        let kind = on_db!(self, pool, { dialect(pool).kind });
        declared
            .into_iter()
            .map(|(name, declared)| match kind(&declared) {
                Some(kind) => Ok(Column { name, kind }),
                None => Err(TransferError::ColumnType { table: table.to_owned(), column: name, declared }),
            })
            .collect()
    }

    /// Every listed table's columns; refuses a database with a table the list lacks or without a listed one.
    async fn all_columns(&self) -> Result<Vec<Vec<Column>>, TransferError> {
        if let Some(name) = self.unlisted_tables().await?.into_iter().next() {
            return Err(TransferError::Unlisted(name));
        }
        let mut all = Vec::with_capacity(TABLES.len());
        for table in TABLES {
            let columns = self.table_columns(table.name).await?;
            if columns.is_empty() {
                return Err(TransferError::Missing(table.name));
            }
            all.push(columns);
        }
        Ok(all)
    }

    /// Hands every table of [`TABLES`] to `sink`, in order: its header, then its rows in key order, all from one
    /// snapshot. Holds one page of rows at a time. Returns the rows per table.
    pub async fn export(
        &self,
        mut sink: impl FnMut(&Record) -> std::io::Result<()>,
    ) -> Result<Vec<(&'static str, u64)>, TransferError> {
        let all = self.all_columns().await?;
        let mut counts = Vec::with_capacity(TABLES.len());
        on_db!(self, pool, {
            let sql = dialect(pool);
            let mut tx = pool.begin_with(sql.begin_read).await?;
            for (table, columns) in TABLES.iter().zip(&all) {
                let names = columns.iter().map(|c| c.name.clone()).collect();
                sink(&Record::Table { name: table.name.to_owned(), columns: names }).map_err(TransferError::Write)?;
                let key_at: Vec<usize> =
                    table.key.iter().filter_map(|k| columns.iter().position(|c| c.name == *k)).collect();
                if key_at.len() != table.key.len() {
                    return Err(table_error(table.name, "a key column of the export list is missing"));
                }
                let mut after: Option<Vec<Value>> = None;
                let mut count = 0u64;
                loop {
                    let text = page_sql(table, columns, sql.bytewise, after.is_some());
                    let args: Vec<Arg<'_>> = match &after {
                        Some(key) => {
                            key_at.iter().zip(key).filter_map(|(i, v)| Arg::new(columns[*i].kind, v)).collect()
                        }
                        None => Vec::new(),
                    };
                    let rows = bind_args!(sqlx::query(AssertSqlSafe(text)), args).fetch_all(&mut *tx).await?;
                    let mut last = None;
                    for row in &rows {
                        let record = Record::Row(read_row(row, columns)?);
                        sink(&record).map_err(TransferError::Write)?;
                        last = Some(record);
                    }
                    count += rows.len() as u64;
                    match last {
                        Some(Record::Row(values)) if rows.len() == PAGE => {
                            let key: Vec<Value> = key_at.iter().map(|i| values[*i].clone()).collect();
                            if key.contains(&Value::Null) {
                                return Err(table_error(table.name, "a row has a NULL key"));
                            }
                            after = Some(key);
                        }
                        _ => break,
                    }
                }
                counts.push((table.name, count));
            }
            tx.rollback().await?;
        });
        Ok(counts)
    }

    /// Writes `records` (as [`Store::export`] yields them, made at `schema` version) into this database, which
    /// must be empty and at the same schema version, in one transaction: ids are kept, and on PostgreSQL each id
    /// sequence continues after the largest id (user ids never below 1000). Nothing is written unless all is.
    /// Returns the rows per table.
    pub async fn import(
        &self,
        schema: i64,
        records: impl Iterator<Item = Result<Record, TransferError>>,
    ) -> Result<Vec<(&'static str, u64)>, TransferError> {
        let database = self.schema_version().await?;
        if schema != database {
            return Err(TransferError::SchemaMismatch { file: schema, database });
        }
        let all = self.all_columns().await?;
        let mut counts: Vec<(&'static str, u64)> = Vec::with_capacity(TABLES.len());
        on_db!(self, pool, {
            let sql = dialect(pool);
            let mut tx = pool.begin_write().await?;
            for table in TABLES {
                let probe = format!("SELECT 1 AS one FROM {} LIMIT 1", quoted(table.name));
                if sqlx::query(AssertSqlSafe(probe)).fetch_optional(&mut *tx).await?.is_some() {
                    return Err(TransferError::NotEmpty(table.name));
                }
            }
            let mut filling: Option<Filling<'_>> = None;
            for record in records {
                match record? {
                    Record::Table { name, columns } => {
                        if let Some(mut done) = filling.take() {
                            flush!(tx, done);
                            counts.push((done.table.name, done.rows));
                        }
                        filling = Some(Filling::start(counts.len(), &name, &columns, &all, sql.max_params)?);
                    }
                    Record::Row(values) => {
                        let Some(filling) = filling.as_mut() else {
                            return Err(TransferError::NotAnExport("a row comes before any table".into()));
                        };
                        filling.push(values)?;
                        if filling.batch.len() >= filling.batch_rows {
                            flush!(tx, filling);
                        }
                    }
                }
            }
            if let Some(mut done) = filling.take() {
                flush!(tx, done);
                counts.push((done.table.name, done.rows));
            }
            if let Some(missing) = TABLES.get(counts.len()) {
                return Err(TransferError::NotAnExport(format!("the file has no table {}", missing.name)));
            }
            if sql.postgres {
                for (table, columns) in TABLES.iter().zip(&all) {
                    if !columns.iter().any(|c| c.name == "id" && c.kind == Kind::Int) {
                        continue;
                    }
                    let first = if table.name == "users" { FIRST_USER_ID } else { 1 };
                    let reset = format!(
                        "SELECT setval(pg_get_serial_sequence($1, 'id'), GREATEST(COALESCE(MAX(id) + 1, $2), $2), \
                         false) FROM {}",
                        quoted(table.name)
                    );
                    sqlx::query(AssertSqlSafe(reset)).bind(table.name).bind(first).execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;
        });
        Ok(counts)
    }
}

#[cfg(test)]
#[path = "transfer_tests.rs"]
mod tests;
