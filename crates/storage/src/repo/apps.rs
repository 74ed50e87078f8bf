//! Registered apps (OAuth clients).

use crate::cache::{Change, through};
use crate::db::{Backend, DbRow, on_db};
use crate::error::StorageError;
use crate::model::*;

use super::{Store, conflict};

impl Store {
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
}

const APP_COLUMNS: &str =
    "id, account_id, client_id, secret_digest, name, redirect_uris, scopes, created_at, public, require_pkce";

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

fn uris_to_json(uris: &[String]) -> String {
    serde_json::Value::from(uris.to_vec()).to_string()
}
