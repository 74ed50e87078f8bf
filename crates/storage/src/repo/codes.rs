//! Authorization codes: issued at the consent page, spent once by the code exchange, which starts a grant.

use crate::cache::Change;
use crate::db::{Backend, DbRow, Pool, on_db};
use crate::direct::numbered;
use crate::error::{ExchangeError, StorageError};
use crate::model::*;

use super::audit::{AuditTx, NewAuditEvent, insert_audit_direct};
use super::grants::{RefreshTx, insert_refresh_direct};
use super::{Store, exchanges};

impl Store {
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
}

/// Spends an authorization code (`$2`) at `$1`: the conditional write that only one exchange wins.
const CONSUME_CODE: &str = "UPDATE auth_codes SET used_at = $1 WHERE digest = $2 AND used_at IS NULL \
     RETURNING app_id, user_id, redirect_uri, scopes, expires_at, code_challenge";

/// Starts the grant of an exchanged code: app, user, scopes, code digest, time; answers its id.
const INSERT_GRANT: &str = "INSERT INTO grants (app_id, user_id, scopes, code_digest, generation, created_at) \
     VALUES ($1, $2, $3, $4, 1, $5) RETURNING id";

/// An unspent authorization code ($1), to be spent once checked (by `EXCHANGE_MANY` on PostgreSQL, by
/// `CONSUME_CODE` on SQLite's direct connection).
const UNSPENT_CODE: &str = "SELECT app_id, user_id, redirect_uri, scopes, expires_at, code_challenge FROM auth_codes \
     WHERE digest = $1 AND used_at IS NULL";

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
