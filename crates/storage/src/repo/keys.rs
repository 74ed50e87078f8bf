//! Signing keys: the active one, retired ones kept while tokens they signed live, rotation.

use crate::db::{Backend, DbRow, on_db};
use crate::error::StorageError;
use crate::model::*;

use super::Store;

impl Store {
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
