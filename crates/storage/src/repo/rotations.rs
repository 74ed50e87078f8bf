//! Refresh-token rotations in PostgreSQL batches (`super::batches`): each batch is one statement, `ROTATE_MANY`.

use std::sync::Arc;

use sqlx::PgPool;

use super::audit::NewAuditEvent;
use super::batches::{Batched, place};
use crate::error::StorageError;
use crate::model::{Grant, NewRefresh};

/// One rotation: `ROTATE`'s parameters, the next refresh token and the audit entry.
pub(crate) struct Rotation {
    pub(crate) digest: Vec<u8>,
    pub(crate) app_id: i64,
    pub(crate) now: i64,
    pub(crate) nonce: Vec<u8>,
    pub(crate) next: NewRefresh,
    pub(crate) audit: NewAuditEvent,
}

/// A rotation wins the grant at its new generation; it does not win when the token was not rotated (a second
/// presentation, an expired, revoked or unknown token, another app's).
impl Batched for Rotation {
    type Won = Grant;
    const NAME: &'static str = "refresh-token rotations";

    fn run_many<'a>(
        pool: &'a PgPool,
        batch: &'a [Arc<Rotation>],
    ) -> impl Future<Output = Result<Vec<(usize, Grant)>, StorageError>> + Send + 'a {
        rotate_many(pool, batch)
    }
}

/// Runs `rotations` as one statement; answers the index of each that won, with its grant.
async fn rotate_many<'c>(
    db: impl sqlx::PgExecutor<'c>,
    rotations: &[Arc<Rotation>],
) -> Result<Vec<(usize, Grant)>, StorageError> {
    let column = |f: fn(&Rotation) -> i64| rotations.iter().map(|r| f(r)).collect::<Vec<i64>>();
    let texts = |f: fn(&Rotation) -> Option<String>| rotations.iter().map(|r| f(r)).collect::<Vec<Option<String>>>();
    let ids = |f: fn(&Rotation) -> Option<i64>| rotations.iter().map(|r| f(r)).collect::<Vec<Option<i64>>>();
    let rows = sqlx::query(ROTATE_MANY.as_str())
        .bind(rotations.iter().map(|r| r.digest.clone()).collect::<Vec<Vec<u8>>>())
        .bind(column(|r| r.now))
        .bind(column(|r| r.app_id))
        .bind(rotations.iter().map(|r| r.nonce.clone()).collect::<Vec<Vec<u8>>>())
        .bind(rotations.iter().map(|r| r.next.digest.clone()).collect::<Vec<Vec<u8>>>())
        .bind(column(|r| r.next.expires_at))
        .bind(column(|r| r.audit.at))
        .bind(rotations.iter().map(|r| r.audit.event.clone()).collect::<Vec<String>>())
        .bind(ids(|r| r.audit.account_id))
        .bind(ids(|r| r.audit.person_id))
        .bind(texts(|r| r.audit.client_id.clone()))
        .bind(texts(|r| r.audit.ip.clone()))
        .fetch_all(db)
        .await?;
    rows.iter().map(|row| Ok((place(row)?, super::grants::grant_from(row)?))).collect()
}

/// Refresh-token rotations as one PostgreSQL statement, atomic without a transaction around it, their parameters
/// as arrays (`$1`..`$6`: the presented token's digest, the time, the app, the nonce, the next token's digest and
/// expiry; `$7`..`$12`: the audit entry's time, event, account, person, client id and IP). Each is `repo::ROTATE`
/// (the grant of a live token of that app, unrevoked, moved to its next generation), then the next token stored,
/// the grant's change announced to the other nodes (`cache::CHANNEL`, delivered at commit) and the audit entry
/// stored with the detail of `NewAuditEvent::rotated`. Answers a row for each rotation that won, with its ordinal
/// (from 1). Two rotations of one grant in a batch: one wins, as in two statements.
///
/// The presented tokens are looked up first, on their own (`found`, materialized), and their grants then by id.
/// Left to join the grants, the tokens and the batch in any order, the planner's generic plan read every grant of
/// the app, matched on `app_id`, with an index probe of the tokens for each: a small table's statistics promise
/// few grants, and all the bench's grants are one app's (384 probes and 1,368 buffers for a batch of two; 19
/// buffers in this shape).
pub(crate) static ROTATE_MANY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH input AS (SELECT * FROM unnest($1::bytea[], $2::int8[], $3::int8[], $4::bytea[], $5::bytea[], \
         $6::int8[], $7::int8[], $8::text[], $9::int8[], $10::int8[], $11::text[], $12::text[]) WITH ORDINALITY \
         AS i(digest, now, app_id, nonce, next_digest, next_expires, at, event, account, person, client, ip, ord)), \
         found AS MATERIALIZED (SELECT i.*, r.grant_id, r.generation AS token_generation \
         FROM input i JOIN refresh_tokens r ON r.digest = i.digest WHERE r.expires_at > i.now), \
         bumped AS (UPDATE grants g SET generation = g.generation + 1, rotation_nonce = f.nonce, \
         rotated_at = f.now, access_used = 0 \
         FROM found f WHERE g.id = f.grant_id AND g.generation = f.token_generation \
         AND g.app_id = f.app_id AND g.revoked_at IS NULL \
         RETURNING g.id, g.app_id, g.user_id, g.scopes, g.generation, f.ord, f.now, f.next_digest, f.next_expires, \
         f.at, f.event, f.account, f.person, f.client, f.ip), \
         stored AS (INSERT INTO refresh_tokens (digest, grant_id, generation, created_at, expires_at) \
         SELECT next_digest, id, generation, now, next_expires FROM bumped), \
         told AS (SELECT pg_notify('{channel}', id::text) FROM bumped), \
         logged AS ({audit}) \
         SELECT b.ord, b.id, b.app_id, b.user_id, b.scopes, b.generation, (SELECT count(*) FROM told) AS told \
         FROM bumped b",
        channel = crate::cache::CHANNEL,
        audit = super::grants::batch_audit("bumped", "', generation ' || g.generation"),
    )
});

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Pool;
    use crate::model::CodeExchange;
    use crate::repo::Store;
    use crate::repo::batches::{Batches, connections, plan_kept_after_growth, with_codes};

    /// `with_codes`, each code then exchanged: `grants` grants of the app's owner, whose refresh tokens are `r0`,
    /// `r1`, ... (`[b'r', i]`): the store, the app, the owner's account and user ids.
    async fn with_grants(name: &str, grants: u8) -> Option<(Store, i64, i64, i64)> {
        let (store, app, account, user) = with_codes(name, grants).await?;
        for i in 0..grants {
            let exchange = CodeExchange {
                code_digest: &[b'c', i],
                app_id: app,
                redirect_uri: "https://a/cb",
                code_verifier: None,
                now: 100,
            };
            let first = NewRefresh { digest: vec![b'r', i], expires_at: 1_000 };
            store.exchange_code(&exchange, &first, &audit("token_issued", 6)).await.unwrap();
        }
        Some((store, app, account, user))
    }

    fn audit(event: &str, at: i64) -> NewAuditEvent {
        NewAuditEvent { at, event: event.into(), ..NewAuditEvent::default() }
    }

    /// A rotation of `token` at time 200 to `next`, by `app`.
    fn rotation(app: i64, token: &[u8], next: &[u8]) -> Rotation {
        Rotation {
            digest: token.to_vec(),
            app_id: app,
            now: 200,
            nonce: b"nonce".to_vec(),
            next: NewRefresh { digest: next.to_vec(), expires_at: 2_000 },
            audit: audit("token_refreshed", 7),
        }
    }

    /// `ROTATE_MANY` rotates each grant once, answers each winner by its place in the batch, and stores the new
    /// tokens and the audit entries.
    #[tokio::test]
    async fn one_statement_rotates_many_and_answers_each_by_its_place() {
        let Some((store, app, account, user)) = with_grants("wsoauth_rotations", 3).await else { return };
        let Pool::Postgres(pool) = &store.pool else { unreachable!("a PostgreSQL store") };
        let batch = [
            rotation(app, b"r\x00", b"n0"),
            rotation(app, b"unknown", b"x"),
            rotation(app, b"r\x02", b"n2"),
            rotation(app, b"r\x00", b"n0"),
        ]
        .map(Arc::new);
        let won = rotate_many(pool, &batch).await.unwrap();
        let mut places: Vec<usize> = won.iter().map(|(place, _)| *place).collect();
        places.sort_unstable();
        // the first token, presented twice in the batch, rotated once
        assert!(places == [0, 2] || places == [2, 3], "{places:?}");
        assert!(won.iter().all(|(_, grant)| grant.generation == 2 && grant.user_id == user));
        let events = store.audit_events(&[account], None, 10).await.unwrap();
        let rotated: Vec<&str> =
            events.iter().filter(|e| e.event == "token_refreshed").map(|e| e.detail.as_str()).collect();
        assert_eq!(rotated.len(), 2);
        assert!(rotated.iter().all(|detail| detail.ends_with(", generation 2")), "{rotated:?}");
        // the new tokens were stored
        let (next, entry) = (NewRefresh { digest: b"m2".to_vec(), expires_at: 3_000 }, audit("token_refreshed", 8));
        let again = store.rotate_refresh(b"n2", app, 300, b"nonce", &next, &entry).await.unwrap();
        assert_eq!(again.generation, 3);
    }

    /// A batch that fails (here for an IP that PostgreSQL's text cannot hold) answers none of its rotations: each
    /// then runs alone, so the others still rotate, and only the bad one fails.
    #[tokio::test]
    async fn the_rotations_of_a_failed_batch_run_alone() {
        let Some((store, app, _, _)) = with_grants("wsoauth_rotations_failed", 2).await else { return };
        let Pool::Postgres(pool) = &store.pool else { unreachable!("a PostgreSQL store") };
        let rotations = Arc::new(Batches::new(connections(&pool.connect_options())));
        let mut bad = rotation(app, b"r\x01", b"n1");
        bad.audit.ip = Some("10.0.0.1\0".into());
        // queued together: the first spawns a lead, which runs once both are queued
        let (good, bad) = tokio::join!(rotations.run(rotation(app, b"r\x00", b"n0")), rotations.run(bad));
        assert_eq!(good.unwrap().unwrap().generation, 2);
        assert!(bad.is_err());
        // the bad one's grant did not move
        let next = NewRefresh { digest: b"m1".to_vec(), expires_at: 3_000 };
        let grant = store.rotate_refresh(b"r\x01", app, 300, b"nonce", &next, &audit("token_refreshed", 8)).await;
        assert_eq!(grant.unwrap().generation, 2);
    }

    /// `ROTATE_MANY`'s plan on the batches' connections finds the grants by the presented tokens, whatever the
    /// tables held when it was made: made on a batch while there were three grants, and kept, it rotates two of
    /// 20,000 grants of the app reading a few dozen buffers, not the tables (a plan made on small tables that
    /// hashed a scan of each kept doing so as they grew: thousands of buffers per batch).
    #[tokio::test]
    async fn a_batch_reads_only_its_own_grants() {
        let Some((store, app, _, user)) = with_grants("wsoauth_rotations_plan", 3).await else { return };
        let Pool::Postgres(pool) = &store.pool else { unreachable!("a PostgreSQL store") };
        let types = "bytea[], int8[], int8[], bytea[], bytea[], int8[], int8[], text[], int8[], int8[], text[], text[]";
        let batch = |tokens: &str, next: &str| {
            format!(
                "ARRAY[{tokens}]::bytea[], ARRAY[200, 200]::int8[], ARRAY[{app}, {app}]::int8[], \
                 ARRAY['\\x01', '\\x01']::bytea[], ARRAY[{next}]::bytea[], ARRAY[900, 900]::int8[], \
                 ARRAY[7, 7]::int8[], ARRAY['e', 'e'], ARRAY[NULL, NULL]::int8[], ARRAY[NULL, NULL]::int8[], \
                 ARRAY[NULL, NULL]::text[], ARRAY[NULL, NULL]::text[]"
            )
        };
        let grow = format!(
            "WITH g AS (INSERT INTO grants (app_id, user_id, scopes, generation, created_at) \
             SELECT {app}, {user}, 'users_read', 1, 1 FROM generate_series(1, 20000) RETURNING id) \
             INSERT INTO refresh_tokens (digest, grant_id, generation, created_at, expires_at) \
             SELECT sha256(int8send(id)), id, 1, 1, 5000 FROM g"
        );
        let first = batch("'\\x7200', 'unknown'", "'\\x02', '\\x03'");
        let then = batch("'\\x7201', '\\x7202'", "'\\x04', '\\x05'");
        let (plan, buffers) =
            plan_kept_after_growth(&pool.connect_options(), types, &ROTATE_MANY, [&first, &grow, &then]).await;
        let rotated = plan.lines().find(|line| line.contains("Update on grants")).unwrap_or_default();
        assert!(rotated.contains("rows=2 loops=1"), "both rotated:\n{plan}");
        assert!(buffers < 100, "{buffers} buffers:\n{plan}");
    }

    /// The batches' connections keep `ROTATE_MANY`'s generic plan from the first batch on: PostgreSQL left to
    /// choose planned it anew for each batch (a plan for the batch's own size always looked cheaper).
    #[tokio::test]
    async fn batches_are_not_planned_anew() {
        let Some((store, app, _, _)) = with_grants("wsoauth_rotations_generic", 8).await else { return };
        let Pool::Postgres(pool) = &store.pool else { unreachable!("a PostgreSQL store") };
        let mut connection = connections(&pool.connect_options()).acquire().await.unwrap();
        for i in 0..8u8 {
            let batch = [Arc::new(rotation(app, &[b'r', i], &[b'n', i]))];
            assert_eq!(rotate_many(&mut *connection, &batch).await.unwrap().len(), 1);
        }
        let (generic, custom): (i64, i64) = sqlx::query_as(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE 'WITH input AS%'",
        )
        .fetch_one(&mut *connection)
        .await
        .unwrap();
        assert_eq!((generic, custom), (8, 0));
    }
}
