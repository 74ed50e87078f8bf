//! Code exchanges in PostgreSQL batches (`super::batches`): each batch is one statement, `EXCHANGE_MANY`. An
//! exchange is batched once its code was read unspent and checked (client, expiry, redirect URI, PKCE): the batch
//! only spends the codes and starts their grants.

use std::sync::Arc;

use sqlx::PgPool;

use super::audit::NewAuditEvent;
use super::batches::{Batched, place};
use crate::db::DbRow;
use crate::error::StorageError;
use crate::model::NewRefresh;

/// One checked exchange: the code's digest, the time, and the grant it starts (app, user, scopes), with its first
/// refresh token and the audit entry.
pub(crate) struct Exchange {
    pub(crate) code_digest: Vec<u8>,
    pub(crate) now: i64,
    pub(crate) app_id: i64,
    pub(crate) user_id: i64,
    pub(crate) scopes: String,
    pub(crate) refresh: NewRefresh,
    pub(crate) audit: NewAuditEvent,
}

/// An exchange wins its grant's id; it does not win when its code was spent meanwhile.
impl Batched for Exchange {
    type Won = i64;
    const NAME: &'static str = "code exchanges";

    fn run_many<'a>(
        pool: &'a PgPool,
        batch: &'a [Arc<Exchange>],
    ) -> impl Future<Output = Result<Vec<(usize, i64)>, StorageError>> + Send + 'a {
        exchange_many(pool, batch)
    }
}

/// Runs `exchanges` as one statement; answers the index of each that won, with its grant's id.
async fn exchange_many<'c>(
    db: impl sqlx::PgExecutor<'c>,
    exchanges: &[Arc<Exchange>],
) -> Result<Vec<(usize, i64)>, StorageError> {
    let column = |f: fn(&Exchange) -> i64| exchanges.iter().map(|e| f(e)).collect::<Vec<i64>>();
    let bytes = |f: fn(&Exchange) -> &[u8]| exchanges.iter().map(|e| f(e).to_vec()).collect::<Vec<Vec<u8>>>();
    let texts = |f: fn(&Exchange) -> Option<&str>| {
        exchanges.iter().map(|e| f(e).map(str::to_owned)).collect::<Vec<Option<String>>>()
    };
    let ids = |f: fn(&Exchange) -> Option<i64>| exchanges.iter().map(|e| f(e)).collect::<Vec<Option<i64>>>();
    let rows = sqlx::query(EXCHANGE_MANY.as_str())
        .bind(bytes(|e| &e.code_digest))
        .bind(column(|e| e.now))
        .bind(column(|e| e.app_id))
        .bind(column(|e| e.user_id))
        .bind(exchanges.iter().map(|e| e.scopes.clone()).collect::<Vec<String>>())
        .bind(bytes(|e| &e.refresh.digest))
        .bind(column(|e| e.refresh.expires_at))
        .bind(column(|e| e.audit.at))
        .bind(exchanges.iter().map(|e| e.audit.event.clone()).collect::<Vec<String>>())
        .bind(ids(|e| e.audit.account_id))
        .bind(ids(|e| e.audit.person_id))
        .bind(texts(|e| e.audit.client_id.as_deref()))
        .bind(texts(|e| e.audit.ip.as_deref()))
        .fetch_all(db)
        .await?;
    rows.iter().map(|row| Ok((place(row)?, row.col("id")?))).collect()
}

/// Checked code exchanges as one PostgreSQL statement, atomic without a transaction around it, their parameters
/// as arrays (`$1`..`$7`: the code's digest, the time, the app, the user, the scopes, the first refresh token's
/// digest and expiry; `$8`..`$13`: the audit entry's time, event, account, person, client id and IP). Each code is
/// spent unless spent already (the conditional write that decides the one winner), and only then its grant started
/// with its first refresh token and the audit entry, with the detail of `NewAuditEvent::issued`. Answers a row for
/// each exchange that won: its ordinal (from 1) and its grant's id. One code twice in a batch: one wins, as in two
/// statements (an `UPDATE ... FROM` updates a row once, whatever it joins).
pub(crate) static EXCHANGE_MANY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH input AS (SELECT * FROM unnest($1::bytea[], $2::int8[], $3::int8[], $4::int8[], $5::text[], \
         $6::bytea[], $7::int8[], $8::int8[], $9::text[], $10::int8[], $11::int8[], $12::text[], $13::text[]) \
         WITH ORDINALITY AS i(digest, now, app_id, user_id, scopes, next_digest, next_expires, at, event, account, \
         person, client, ip, ord)), \
         spent AS (UPDATE auth_codes c SET used_at = i.now FROM input i \
         WHERE c.digest = i.digest AND c.used_at IS NULL RETURNING i.*), \
         started AS (INSERT INTO grants (app_id, user_id, scopes, code_digest, generation, created_at) \
         SELECT app_id, user_id, scopes, digest, 1, now FROM spent RETURNING id, code_digest), \
         done AS (SELECT s.*, g.id FROM started g JOIN spent s ON s.digest = g.code_digest), \
         stored AS (INSERT INTO refresh_tokens (digest, grant_id, generation, created_at, expires_at) \
         SELECT next_digest, id, 1, now, next_expires FROM done), \
         logged AS ({audit}) \
         SELECT ord, id FROM done",
        audit = super::grants::batch_audit("done", "', scopes: ' || g.scopes"),
    )
});

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Pool;
    use crate::repo::batches::{plan_kept_after_growth, with_codes};

    /// An exchange of code `code` by `app` for `user`, whose first refresh token is `refresh`.
    fn exchange(app: i64, user: i64, code: &[u8], refresh: &[u8]) -> Arc<Exchange> {
        Arc::new(Exchange {
            code_digest: code.to_vec(),
            now: 200,
            app_id: app,
            user_id: user,
            scopes: "users_read".into(),
            refresh: NewRefresh { digest: refresh.to_vec(), expires_at: 2_000 },
            audit: NewAuditEvent { at: 7, event: "token_issued".into(), ..NewAuditEvent::default() },
        })
    }

    /// `EXCHANGE_MANY` spends each code once, answers each winner by its place in the batch, and starts the
    /// grants with their refresh tokens and audit entries.
    #[tokio::test]
    async fn one_statement_exchanges_many_and_answers_each_by_its_place() {
        let Some((store, app, account, user)) = with_codes("wsoauth_exchanges", 2).await else { return };
        let Pool::Postgres(pool) = &store.pool else { unreachable!("a PostgreSQL store") };
        let batch = [
            exchange(app, user, b"c\x00", b"r0"),
            exchange(app, user, b"unknown", b"x"),
            exchange(app, user, b"c\x01", b"r1"),
            exchange(app, user, b"c\x00", b"r0bis"),
        ];
        let won = exchange_many(pool, &batch).await.unwrap();
        let mut places: Vec<usize> = won.iter().map(|(place, _)| *place).collect();
        places.sort_unstable();
        // the first code, presented twice in the batch, spent once
        assert!(places == [0, 2] || places == [2, 3], "{places:?}");
        let events = store.audit_events(&[account], None, 10).await.unwrap();
        let mut issued: Vec<String> =
            events.iter().filter(|e| e.event == "token_issued").map(|e| e.detail.clone()).collect();
        issued.sort();
        let mut expected: Vec<String> = won.iter().map(|(_, id)| format!("grant {id}, scopes: users_read")).collect();
        expected.sort();
        assert_eq!(issued, expected);
        assert!(events.iter().all(|e| e.user_id == Some(user) && e.account_id == Some(account)));
        // each grant's first refresh token was stored
        let first = if places[0] == 0 { b"r0".as_slice() } else { b"r0bis".as_slice() };
        for token in [first, b"r1"] {
            let next = NewRefresh { digest: [token, b"+"].concat(), expires_at: 3_000 };
            let entry = NewAuditEvent { at: 8, event: "token_refreshed".into(), ..NewAuditEvent::default() };
            let grant = store.rotate_refresh(token, app, 300, b"nonce", &next, &entry).await.unwrap();
            assert_eq!(grant.generation, 2);
        }
        // and the codes are spent: a second batch wins nothing
        assert!(exchange_many(pool, &batch).await.unwrap().is_empty());
    }

    /// `EXCHANGE_MANY`'s plan on the batches' connections spends the codes by their digests, whatever the tables
    /// held when it was made: made on a batch while there were three codes, and kept, it spends two of 20,000
    /// codes reading a few dozen buffers (a plan made on the small table that hashed a scan of it kept doing so
    /// as it grew: the bench's exchanges fell to a fifth, PostgreSQL at 1.6 cores).
    #[tokio::test]
    async fn a_batch_reads_only_its_own_codes() {
        let Some((store, app, _, user)) = with_codes("wsoauth_exchanges_plan", 3).await else { return };
        let Pool::Postgres(pool) = &store.pool else { unreachable!("a PostgreSQL store") };
        let types = "bytea[], int8[], int8[], int8[], text[], bytea[], int8[], int8[], text[], int8[], int8[], \
                     text[], text[]";
        let batch = |codes: &str, refresh: &str| {
            format!(
                "ARRAY[{codes}]::bytea[], ARRAY[200, 200]::int8[], ARRAY[{app}, {app}]::int8[], \
                 ARRAY[{user}, {user}]::int8[], ARRAY['users_read', 'users_read'], ARRAY[{refresh}]::bytea[], \
                 ARRAY[900, 900]::int8[], ARRAY[7, 7]::int8[], ARRAY['e', 'e'], ARRAY[NULL, NULL]::int8[], \
                 ARRAY[NULL, NULL]::int8[], ARRAY[NULL, NULL]::text[], ARRAY[NULL, NULL]::text[]"
            )
        };
        let grow = format!(
            "INSERT INTO auth_codes (digest, app_id, user_id, redirect_uri, scopes, created_at, expires_at) \
             SELECT sha256(int8send(n)), {app}, {user}, 'https://a/cb', 'users_read', 1, 700 \
             FROM generate_series(1, 20000) n"
        );
        let first = batch("'\\x6300', 'unknown'", "'\\x02', '\\x03'");
        let then = batch("'\\x6301', '\\x6302'", "'\\x04', '\\x05'");
        let (plan, buffers) =
            plan_kept_after_growth(&pool.connect_options(), types, &EXCHANGE_MANY, [&first, &grow, &then]).await;
        let spent = plan.lines().find(|line| line.contains("Update on auth_codes")).unwrap_or_default();
        assert!(spent.contains("rows=2 loops=1"), "both spent:\n{plan}");
        assert!(buffers < 100, "{buffers} buffers:\n{plan}");
    }
}
