//! Remembered consent and the apps a person has connected.

use super::Store;
use crate::db::{Backend, DbRow, on_db};
use crate::error::StorageError;

/// An app a member has approved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    pub user_id: i64,
    pub account_name: String,
    pub app_id: i64,
    pub app_name: String,
    pub client_id: String,
    /// Space-separated scopes approved.
    pub scopes: String,
    pub granted_at: i64,
}

impl Store {
    /// The scopes a member has approved for an app, if any.
    pub async fn consent(&self, user_id: i64, app_id: i64) -> Result<Option<String>, StorageError> {
        const SQL: &str = "SELECT scopes FROM consents WHERE user_id = $1 AND app_id = $2";
        if let Some(scopes) = self.read_direct(SQL, &[&user_id, &app_id], |row| Ok(row.col::<String>("scopes")?))? {
            return Ok(scopes.into_iter().next());
        }
        on_db!(self, pool, { Ok(sqlx::query_scalar(SQL).bind(user_id).bind(app_id).fetch_optional(pool).await?) })
    }

    /// Records that a member approved `scopes` (space-separated, already merged with any earlier approval).
    pub async fn save_consent(&self, user_id: i64, app_id: i64, scopes: &str, now: i64) -> Result<(), StorageError> {
        on_db!(self, pool, {
            sqlx::query(
                "INSERT INTO consents (user_id, app_id, scopes, granted_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (user_id, app_id) \
                 DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at",
            )
            .bind(user_id)
            .bind(app_id)
            .bind(scopes)
            .bind(now)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Every app a person has approved, in any of their accounts, newest first.
    pub async fn connections(&self, person_id: i64) -> Result<Vec<Connection>, StorageError> {
        const SQL: &str = "SELECT c.user_id, a.name AS account_name, c.app_id, ap.name AS app_name, ap.client_id, \
             c.scopes, c.granted_at FROM consents c JOIN users u ON u.id = c.user_id \
             JOIN accounts a ON a.id = u.account_id JOIN apps ap ON ap.id = c.app_id \
             WHERE u.person_id = $1 ORDER BY c.granted_at DESC, c.app_id";
        if let Some(connections) = self.read_direct(SQL, &[&person_id], |row| connection_from(row))? {
            return Ok(connections);
        }
        on_db!(self, pool, {
            let rows = sqlx::query(SQL).bind(person_id).fetch_all(pool).await?;
            rows.iter().map(connection_from).collect()
        })
    }

    /// Disconnects an app from a member: forgets the consent and revokes every grant, so its tokens stop working
    /// at once. Returns the number of grants revoked.
    pub async fn disconnect(&self, user_id: i64, app_id: i64, now: i64) -> Result<u64, StorageError> {
        on_db!(self, pool, {
            let mut tx = pool.begin().await?;
            let revoked = sqlx::query(
                "UPDATE grants SET revoked_at = $1 WHERE user_id = $2 AND app_id = $3 AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(user_id)
            .bind(app_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::query("DELETE FROM consents WHERE user_id = $1 AND app_id = $2")
                .bind(user_id)
                .bind(app_id)
                .execute(&mut *tx)
                .await?;
            pool.announce(&mut tx, crate::cache::Change::All).await?;
            tx.commit().await?;
            self.forget(crate::cache::Change::All);
            Ok(revoked)
        })
    }
}

fn connection_from(row: &impl DbRow) -> Result<Connection, StorageError> {
    Ok(Connection {
        user_id: row.col("user_id")?,
        account_name: row.col("account_name")?,
        app_id: row.col("app_id")?,
        app_name: row.col("app_name")?,
        client_id: row.col("client_id")?,
        scopes: row.col("scopes")?,
        granted_at: row.col("granted_at")?,
    })
}
