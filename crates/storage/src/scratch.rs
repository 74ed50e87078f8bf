//! Empty PostgreSQL schemas for tests and benchmarks, so many stores can share one database without seeing each
//! other: each gets its own `search_path` (the tables, and the SQLite-compatible functions, live in it).

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::error::StorageError;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Creates an empty schema named `{prefix}_{pid}_{n}` in the database at `base_url` and returns a URL whose
/// connections use it. Schemas of this prefix left by processes that are gone are dropped first.
pub async fn scratch_postgres(base_url: &str, prefix: &str) -> Result<String, StorageError> {
    let mut conn = PgConnection::connect(base_url).await?;
    let pid = std::process::id();
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    if n == 0 {
        let pattern = format!("{prefix}\\_%");
        let names: Vec<String> = sqlx::query_scalar("SELECT nspname::TEXT FROM pg_namespace WHERE nspname LIKE $1")
            .bind(pattern)
            .fetch_all(&mut conn)
            .await?;
        for name in names {
            let owner = name[prefix.len() + 1..].split('_').next().and_then(|p| p.parse::<u32>().ok());
            let gone = owner.is_some_and(|p| p != pid && !std::path::Path::new(&format!("/proc/{p}")).exists());
            if gone {
                let drop = format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE");
                sqlx::raw_sql(sqlx::AssertSqlSafe(drop)).execute(&mut conn).await?;
            }
        }
    }
    let schema = format!("{prefix}_{pid}_{n}");
    if !schema.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(StorageError::BadUrl(format!("schema prefix {prefix:?}")));
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&mut conn).await?;
    conn.close().await?;
    let separator = if base_url.contains('?') { '&' } else { '?' };
    Ok(format!("{base_url}{separator}options[search_path]={schema}"))
}
