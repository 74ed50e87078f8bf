//! Grants and their refresh tokens: rotation, access-token use, state for bearer checks, revocation, purge.

use crate::cache::{Change, through};
use crate::db::{Backend, DbRow, impl_for_tx, on_db};
use crate::direct::numbered;
use crate::error::{RefreshError, StorageError};
use crate::model::*;

use super::audit::{AuditTx, NewAuditEvent, insert_audit_direct};
use super::people::{MEMBER_COLUMNS, member_from};
use super::{Store, rotations};

impl Store {
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
}

/// Moves the grant of a live refresh token ($1) of app $3 at time $2 to its next generation, drawing the
/// rotation's nonce $4: the conditional write that decides the one winner of concurrent rotations.
const ROTATE: &str = "UPDATE grants SET generation = generation + 1, rotation_nonce = $4, rotated_at = $2, \
     access_used = 0 \
     WHERE id = (SELECT grant_id FROM refresh_tokens WHERE digest = $1 AND expires_at > $2) \
     AND generation = (SELECT generation FROM refresh_tokens WHERE digest = $1) \
     AND app_id = $3 AND revoked_at IS NULL \
     RETURNING id, app_id, user_id, scopes, generation";

/// The audit entries of the grants a batch wrote (`ROTATE_MANY`, `EXCHANGE_MANY`), from its `WITH` query `source`,
/// which answers for each grant its `id` and `user_id` and its entry's `at`, `event`, `account`, `person`, `client`
/// and `ip`. The member is the grant's, the account and person theirs unless given (as `INSERT_AUDIT` fills them
/// in); the detail is `grant <id>` and then `more`, the same text as `NewAuditEvent::issued` or `rotated`.
pub(super) fn batch_audit(source: &str, more: &str) -> String {
    format!(
        "INSERT INTO audit_log (at, event, account_id, person_id, user_id, client_id, ip, detail) \
         SELECT g.at, g.event, COALESCE(g.account, u.account_id), COALESCE(g.person, u.person_id), g.user_id, \
         g.client, g.ip, 'grant ' || g.id || {more} FROM {source} g LEFT JOIN users u ON u.id = g.user_id"
    )
}

const INSERT_REFRESH: &str = "INSERT INTO refresh_tokens (digest, grant_id, generation, created_at, expires_at) \
     VALUES ($1, $2, $3, $4, $5)";

/// `RefreshTx::insert_refresh` on the direct SQLite connection.
pub(super) fn insert_refresh_direct(
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
pub(super) trait RefreshTx {
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

pub(super) fn grant_from(row: &impl DbRow) -> Result<Grant, StorageError> {
    Ok(Grant {
        id: row.col("id")?,
        app_id: row.col("app_id")?,
        user_id: row.col("user_id")?,
        scopes: row.col("scopes")?,
        generation: row.col("generation")?,
    })
}
