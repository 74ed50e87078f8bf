//! The storage contract: what every backend must do, run against SQLite (a temporary file, so connections are
//! real and concurrent) and against PostgreSQL when `WSOAUTH_TEST_POSTGRES_URL` names a server (each test in a
//! schema of its own; without the variable the PostgreSQL half says so and passes).

use std::sync::atomic::{AtomicU32, Ordering};

use wsoauth_storage::{
    AppFields, CodeExchange, ExchangeError, NewAuditEvent, NewCode, NewRefresh, RefreshError, Role, StorageError, Store,
};

static NEXT: AtomicU32 = AtomicU32::new(0);

struct Db {
    store: Store,
    url: String,
    dir: Option<std::path::PathBuf>,
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

async fn sqlite() -> Db {
    let dir = std::env::temp_dir().join(format!(
        "wsoauth-storage-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let url = format!("sqlite://{}", dir.join("nested/db.sqlite").display());
    let store = Store::open(&url).await.unwrap();
    Db { store, url, dir: Some(dir) }
}

async fn postgres() -> Option<Db> {
    let Ok(base) = std::env::var("WSOAUTH_TEST_POSTGRES_URL") else {
        eprintln!("WSOAUTH_TEST_POSTGRES_URL is not set: the PostgreSQL half of the contract is skipped");
        return None;
    };
    let url = wsoauth_storage::scratch_postgres(&base, "wsoauth_contract").await.unwrap();
    let store = Store::open(&url).await.unwrap();
    Some(Db { store, url, dir: None })
}

/// Each contract test, once per backend.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(super::sqlite().await).await;
            })*
        }
        mod on_postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(db) = super::postgres().await {
                    super::$name(db).await;
                }
            })*
        }
    };
}

contract!(
    migrations_are_idempotent_and_reopen_keeps_data,
    people_are_found_by_email_in_any_case_and_unique,
    settings_keep_the_first_value,
    code_exchange_is_single_use_and_replay_revokes,
    code_checks_burn_the_code,
    rotation_moves_the_generation_once,
    concurrent_rotations_have_one_winner,
    concurrent_rotations_of_many_grants_all_win,
    concurrent_exchanges_of_one_code_have_one_winner,
    concurrent_exchanges_of_many_codes_all_win,
    deleting_an_app_ends_its_grants,
    sessions_expire_and_end,
    only_the_first_signing_key_is_stored,
    nodes_starting_together_store_one_key_and_one_account,
    purge_removes_only_what_is_dead,
    pkce_is_checked_when_the_code_is_spent,
    purge_keeps_a_grant_while_any_of_its_refresh_tokens_lives,
    audit_entries_get_the_ids_the_database_knows,
);

/// An audit entry names its member, person and account from whichever of them (or the app's client id) it gives.
async fn audit_entries_get_the_ids_the_database_knows(db: Db) {
    let (user, _app) = fixture(&db.store).await;
    let member = db.store.member(user).await.unwrap().unwrap();
    let (account, person) = (member.account.id, member.person.id);
    let entry = |event: &str| NewAuditEvent {
        at: 10,
        event: event.into(),
        ip: Some("192.0.2.7".into()),
        detail: format!("{event} detail"),
        ..NewAuditEvent::default()
    };
    let store = &db.store;
    store.record_audit(&NewAuditEvent { user_id: Some(user), ..entry("by_member") }).await.unwrap();
    store.record_audit(&NewAuditEvent { client_id: Some("client-1".into()), ..entry("by_app") }).await.unwrap();
    let both = NewAuditEvent { account_id: Some(account), person_id: Some(person), ..entry("by_person") };
    store.record_audit(&both).await.unwrap();
    let found: Vec<_> = store
        .audit_events(&[account], None, 10)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .map(|e| (e.event, e.account_id, e.person_id, e.user_id, e.client_id, e.ip, e.detail))
        .collect();
    let ip = || Some("192.0.2.7".to_owned());
    let client = Some("client-1".to_owned());
    assert_eq!(
        found,
        [
            ("by_member".into(), Some(account), Some(person), Some(user), None, ip(), "by_member detail".into()),
            ("by_app".into(), Some(account), None, None, client, ip(), "by_app detail".into()),
            ("by_person".into(), Some(account), Some(person), Some(user), None, ip(), "by_person detail".into()),
        ]
    );
}

/// SQLite: a rotation or an exchange that finds the write lock held by another connection (the admin CLI, another
/// process) waits for it rather than failing, then wins; once the store is closed a rotation fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_rotation_waits_for_a_write_lock_held_elsewhere() {
    let db = sqlite().await;
    let (user, app) = fixture(&db.store).await;
    db.store.insert_code(&code(b"c", app, user, 100)).await.unwrap();
    db.store
        .exchange_code(&presented(b"c", app, "https://a/cb", None, 100), &refresh(b"r1", 1_000), &issue_audit())
        .await
        .unwrap();
    db.store.insert_code(&code(b"d", app, user, 100)).await.unwrap();
    let other = rusqlite::Connection::open(db.url.strip_prefix("sqlite://").unwrap()).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let store = db.store.clone();
    let rotation = tokio::spawn(async move {
        store.rotate_refresh(b"r1", app, 200, b"nonce", &refresh(b"r2", 2_000), &rotation_audit()).await
    });
    let store = db.store.clone();
    let exchange = tokio::spawn(async move {
        let presented = presented(b"d", app, "https://a/cb", None, 100);
        store.exchange_code(&presented, &refresh(b"x1", 1_000), &issue_audit()).await
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!rotation.is_finished(), "the rotation waits while another connection writes");
    assert!(!exchange.is_finished(), "so does an exchange");
    other.execute_batch("COMMIT").unwrap();
    assert_eq!(rotation.await.unwrap().unwrap().generation, 2);
    assert_eq!(exchange.await.unwrap().unwrap().generation, 1);
    assert_eq!(rotations_audited(&db.store).await.len(), 1);
    assert_eq!(audited(&db.store, "token_issued").await.len(), 2);
    db.store.close().await;
    let closed = db.store.rotate_refresh(b"r2", app, 300, b"nonce", &refresh(b"r3", 2_000), &rotation_audit()).await;
    assert!(matches!(closed, Err(RefreshError::Storage(_))), "{closed:?}");
}

/// PostgreSQL: connections that the database server ended (a restart, an administrator, a dropped network) are
/// replaced. The pool pings a connection before use only when it sat idle for a second (a ping on every use was
/// one more round trip per query), so after a pause the next query and the next rotation find the dead ones out
/// and get new ones; the store still closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_replaces_connections_the_server_ended() {
    let Some(db) = postgres().await else { return };
    let name = format!("wsoauth_contract_{}", std::process::id());
    let store = Store::open(&format!("{}&application_name={name}", db.url)).await.unwrap();
    let (user, app) = fixture(&store).await;
    store.insert_code(&code(b"c", app, user, 100)).await.unwrap();
    let exchange = presented(b"c", app, "https://a/cb", None, 100);
    store.exchange_code(&exchange, &refresh(b"r1", 10_000), &issue_audit()).await.unwrap();
    store.rotate_refresh(b"r1", app, 200, b"nonce", &refresh(b"r2", 10_000), &rotation_audit()).await.unwrap();
    let base = std::env::var("WSOAUTH_TEST_POSTGRES_URL").unwrap();
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&base).await.unwrap();
    let ended: Vec<bool> =
        sqlx::query_scalar("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1")
            .bind(&name)
            .fetch_all(&mut admin)
            .await
            .unwrap();
    assert!(!ended.is_empty() && ended.iter().all(|&e| e), "{ended:?}");
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    for _ in 0..3 {
        assert_eq!(store.accounts().await.unwrap().len(), 1);
    }
    let rotated = store.rotate_refresh(b"r2", app, 300, b"nonce", &refresh(b"r3", 10_000), &rotation_audit()).await;
    assert_eq!(rotated.unwrap().generation, 3);
    let rotated = store.rotate_refresh(b"r3", app, 400, b"nonce", &refresh(b"r4", 10_000), &rotation_audit()).await;
    assert_eq!(rotated.unwrap().generation, 4);
    let closing = tokio::time::timeout(std::time::Duration::from_secs(10), store.close()).await;
    assert!(closing.is_ok(), "the store closes");
}

/// SQLite: under a steady stream of rotations the write-ahead log is still started over (every rotation adds at
/// least 8 pages to it: without restarts it would hold them all; a checkpoint beside the writes never catches up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_log_is_started_over_under_steady_writes() {
    let db = sqlite().await;
    let (user, app) = fixture(&db.store).await;
    let mut chains = Vec::new();
    for chain in 0..2u8 {
        let first = [b'c', chain];
        db.store.insert_code(&code(&first, app, user, 100)).await.unwrap();
        db.store
            .exchange_code(&presented(&first, app, "https://a/cb", None, 100), &refresh(&first, 10_000), &issue_audit())
            .await
            .unwrap();
        let store = db.store.clone();
        chains.push(tokio::spawn(async move {
            let (mut token, mut rotations) = (first.to_vec(), 0u32);
            let until = std::time::Instant::now() + std::time::Duration::from_millis(800);
            while std::time::Instant::now() < until {
                let next = [token.as_slice(), b"+"].concat();
                store
                    .rotate_refresh(&token, app, 200, b"nonce", &refresh(&next, 10_000), &rotation_audit())
                    .await
                    .unwrap();
                (token, rotations) = (next, rotations + 1);
                tokio::task::yield_now().await;
            }
            rotations
        }));
    }
    let mut rotations = 0;
    for chain in chains {
        rotations += chain.await.unwrap();
    }
    let path = db.url.strip_prefix("sqlite://").unwrap();
    let frames: i64 = rusqlite::Connection::open(path)
        .unwrap()
        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))
        .unwrap();
    assert!(rotations > 50, "{rotations} rotations");
    assert!(frames < 4 * i64::from(rotations), "{frames} pages in the log after {rotations} rotations");
}

/// An account, a member and an app; returns (user_id, app_id).
async fn fixture(store: &Store) -> (i64, i64) {
    let account = store.create_account("Acme", "acme", 1).await.unwrap();
    let person = store.create_person("Ann@Example.com", "Ann", "Lee", Some("hash"), 1).await.unwrap();
    let user = store.add_member(account.id, person.id, Role::Owner, 1).await.unwrap();
    let fields = AppFields {
        name: "App".into(),
        redirect_uris: vec!["https://a/cb".into()],
        scopes: "users_read".into(),
        require_pkce: false,
    };
    let app = store.create_app(account.id, "client-1", b"digest", &fields, false, 1).await.unwrap();
    (user, app.id)
}

fn code(digest: &[u8], app_id: i64, user_id: i64, now: i64) -> NewCode {
    NewCode {
        digest: digest.to_vec(),
        app_id,
        user_id,
        redirect_uri: "https://a/cb".into(),
        scopes: "users_read".into(),
        code_challenge: None,
        now,
        expires_at: now + 600,
    }
}

fn refresh(digest: &[u8], expires_at: i64) -> NewRefresh {
    NewRefresh { digest: digest.to_vec(), expires_at }
}

/// An exchange of the code `digest` by `app_id`.
fn presented<'a>(
    digest: &'a [u8],
    app_id: i64,
    redirect_uri: &'a str,
    verifier: Option<&'a str>,
    now: i64,
) -> CodeExchange<'a> {
    CodeExchange { code_digest: digest, app_id, redirect_uri, code_verifier: verifier, now }
}

/// The audit entry an exchange completes with its grant and stores.
fn issue_audit() -> NewAuditEvent {
    NewAuditEvent {
        at: 6,
        event: "token_issued".into(),
        client_id: Some("client-1".into()),
        ..NewAuditEvent::default()
    }
}

/// The audit entry a rotation completes with its grant and stores.
fn rotation_audit() -> NewAuditEvent {
    NewAuditEvent { at: 7, event: "token_refreshed".into(), ..issue_audit() }
}

/// The details of the stored rotation entries, oldest first.
async fn rotations_audited(store: &Store) -> Vec<String> {
    audited(store, "token_refreshed").await
}

/// The details of the stored entries of `event`, oldest first; each names the grant's member, the member's
/// person and account (the writes fill them in from the grant) and the client.
async fn audited(store: &Store, event: &str) -> Vec<String> {
    let account = store.accounts().await.unwrap()[0].id;
    let events = store.audit_events(&[account], None, 100).await.unwrap();
    let events: Vec<_> = events.into_iter().rev().filter(|e| e.event == event).collect();
    for entry in &events {
        let member = store.member(entry.user_id.unwrap()).await.unwrap().unwrap();
        assert_eq!((entry.person_id, entry.account_id), (Some(member.person.id), Some(member.account.id)), "{entry:?}");
        assert_eq!((entry.at >= 6, entry.client_id.as_deref()), (true, Some("client-1")), "{entry:?}");
    }
    events.into_iter().map(|e| e.detail).collect()
}

async fn migrations_are_idempotent_and_reopen_keeps_data(db: Db) {
    fixture(&db.store).await;
    db.store.migrate().await.unwrap();
    let again = Store::open(&db.url).await.unwrap();
    assert_eq!(again.schema_versions().await.unwrap(), db.store.schema_versions().await.unwrap());
    assert_eq!(again.count_accounts().await.unwrap(), 1);
    assert!(Store::open("postgres-nope").await.is_err());
    // an error about the URL never shows a password
    let error = Store::open("postgres://alice:s3cret@db.example/wsoauth").await.unwrap_err().to_string();
    assert!(!error.contains("s3cret") && error.contains("db.example"), "{error}");
    let error = Store::open("postgres://db.invalid/wsoauth?user=a&password=s3cret").await.unwrap_err().to_string();
    assert!(!error.contains("s3cret") && error.contains("db.invalid"), "{error}");
}

async fn people_are_found_by_email_in_any_case_and_unique(db: Db) {
    let (user, _) = fixture(&db.store).await;
    let person = db.store.person_by_email(" ann@EXAMPLE.com ").await.unwrap().unwrap();
    assert_eq!(person.email, "ann@example.com");
    let dup = db.store.create_person("ANN@example.com", "", "", None, 2).await;
    assert!(matches!(dup, Err(StorageError::Conflict(_))));
    let member = db.store.member(user).await.unwrap().unwrap();
    assert_eq!((member.role, member.account.slug.as_str()), (Role::Owner, "acme"));
    assert_eq!(db.store.memberships(person.id).await.unwrap().len(), 1);
}

async fn settings_keep_the_first_value(db: Db) {
    assert_eq!(db.store.setting_or_insert("k", b"one").await.unwrap(), b"one");
    assert_eq!(db.store.setting_or_insert("k", b"two").await.unwrap(), b"one");
}

async fn code_exchange_is_single_use_and_replay_revokes(db: Db) {
    let (user, app) = fixture(&db.store).await;
    db.store.insert_code(&code(b"c1", app, user, 100)).await.unwrap();
    let grant = db
        .store
        .exchange_code(&presented(b"c1", app, "https://a/cb", None, 101), &refresh(b"r1", 10_000), &issue_audit())
        .await
        .unwrap();
    assert_eq!((grant.user_id, grant.generation, grant.scopes.as_str()), (user, 1, "users_read"));
    let replay = db
        .store
        .exchange_code(&presented(b"c1", app, "https://a/cb", None, 102), &refresh(b"r2", 10_000), &issue_audit())
        .await;
    assert!(matches!(replay, Err(ExchangeError::Replayed)));
    assert!(db.store.grant_state(grant.id).await.unwrap().unwrap().revoked);
    let rotated = db.store.rotate_refresh(b"r1", app, 103, b"nonce", &refresh(b"r3", 10_000), &rotation_audit()).await;
    assert!(matches!(rotated, Err(RefreshError::Revoked)));
    let unknown = db
        .store
        .exchange_code(&presented(b"nope", app, "https://a/cb", None, 102), &refresh(b"r4", 10_000), &issue_audit())
        .await;
    assert!(matches!(unknown, Err(ExchangeError::Unknown)));
    // the one exchange that made a grant stored its entry with it, with the member's account filled in
    let entries = audited(&db.store, "token_issued").await;
    assert_eq!(entries, [format!("grant {}, scopes: users_read", grant.id)]);
}

async fn code_checks_burn_the_code(db: Db) {
    let (user, app) = fixture(&db.store).await;
    for (digest, redirect, now, want) in [
        (b"e1", "https://a/cb", 700, "expired"),
        (b"e2", "https://a/cb/", 101, "redirect"),
        (b"e3", "https://a/cb", 101, "client"),
    ] {
        db.store.insert_code(&code(digest, app, user, 100)).await.unwrap();
        let presented_by = if want == "client" { app + 1000 } else { app };
        let result = db
            .store
            .exchange_code(
                &presented(digest, presented_by, redirect, None, now),
                &refresh(digest, 10_000),
                &issue_audit(),
            )
            .await;
        match (want, result) {
            ("expired", Err(ExchangeError::Expired))
            | ("redirect", Err(ExchangeError::RedirectMismatch))
            | ("client", Err(ExchangeError::WrongClient)) => {}
            (want, other) => panic!("{want}: {other:?}"),
        }
        let again = db
            .store
            .exchange_code(&presented(digest, app, "https://a/cb", None, 101), &refresh(b"x", 10_000), &issue_audit())
            .await;
        assert!(matches!(again, Err(ExchangeError::Replayed)), "{want}");
    }
    assert!(audited(&db.store, "token_issued").await.is_empty(), "refused exchanges store no entry");
}

async fn rotation_moves_the_generation_once(db: Db) {
    let (user, app) = fixture(&db.store).await;
    db.store.insert_code(&code(b"c", app, user, 100)).await.unwrap();
    db.store
        .exchange_code(&presented(b"c", app, "https://a/cb", None, 100), &refresh(b"r1", 1_000), &issue_audit())
        .await
        .unwrap();
    let next =
        db.store.rotate_refresh(b"r1", app, 200, b"nonce", &refresh(b"r2", 2_000), &rotation_audit()).await.unwrap();
    assert_eq!(next.generation, 2);
    assert!(matches!(
        db.store.rotate_refresh(b"r1", app, 201, b"nonce", &refresh(b"r3", 2_000), &rotation_audit()).await,
        Err(RefreshError::Rotated(_))
    ));
    assert!(matches!(
        db.store.rotate_refresh(b"r2", app + 1, 201, b"nonce", &refresh(b"r3", 2_000), &rotation_audit()).await,
        Err(RefreshError::WrongClient)
    ));
    assert!(matches!(
        db.store.rotate_refresh(b"r2", app, 2_000, b"nonce", &refresh(b"r3", 3_000), &rotation_audit()).await,
        Err(RefreshError::Expired)
    ));
    assert!(matches!(
        db.store.rotate_refresh(b"zz", app, 201, b"nonce", &refresh(b"r3", 3_000), &rotation_audit()).await,
        Err(RefreshError::Unknown)
    ));
    let last =
        db.store.rotate_refresh(b"r2", app, 1_999, b"nonce", &refresh(b"r3", 3_000), &rotation_audit()).await.unwrap();
    assert_eq!(last.generation, 3);
    // each rotation stored its entry, with the member's account filled in; the refusals stored none
    let grant = next.id;
    assert_eq!(rotations_audited(&db.store).await, [2, 3].map(|g| format!("grant {grant}, generation {g}")));
}

async fn concurrent_rotations_have_one_winner(db: Db) {
    let (user, app) = fixture(&db.store).await;
    db.store.insert_code(&code(b"c", app, user, 100)).await.unwrap();
    db.store
        .exchange_code(&presented(b"c", app, "https://a/cb", None, 100), &refresh(b"r1", 1_000), &issue_audit())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..16u8 {
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move {
            store.rotate_refresh(b"r1", app, 200, b"nonce", &refresh(&[b'n', i], 2_000), &rotation_audit()).await
        }));
    }
    let mut wins = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => wins += 1,
            Err(RefreshError::Rotated(_)) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(rotations_audited(&db.store).await.len(), 1);
}

/// Rotations of different grants at the same moment (committed together on SQLite's direct connection) all win,
/// each once, with their new tokens and audit entries stored; a second presentation of one of the tokens among them
/// loses.
async fn concurrent_rotations_of_many_grants_all_win(db: Db) {
    let (user, app) = fixture(&db.store).await;
    for i in 0..12u8 {
        db.store.insert_code(&code(&[b'c', i], app, user, 100)).await.unwrap();
        let code = [b'c', i];
        let exchange = presented(&code, app, "https://a/cb", None, 100);
        db.store.exchange_code(&exchange, &refresh(&[b'r', i], 1_000), &issue_audit()).await.unwrap();
    }
    let rotate = |token: Vec<u8>, next: Vec<u8>, now: i64| {
        let store = db.store.clone();
        tokio::spawn(async move {
            store.rotate_refresh(&token, app, now, b"nonce", &refresh(&next, 2_000), &rotation_audit()).await
        })
    };
    let mut tasks: Vec<_> = (0..12u8).map(|i| rotate(vec![b'r', i], vec![b'n', i], 200)).collect();
    // (the same next token: whichever of the two wins stores it)
    tasks.push(rotate(b"r\x05".to_vec(), b"n\x05".to_vec(), 200));
    let (mut generations, mut refused) = (Vec::new(), 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(grant) => generations.push(grant.generation),
            Err(RefreshError::Rotated(_)) => refused += 1,
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!((generations, refused), (vec![2; 12], 1));
    assert_eq!(rotations_audited(&db.store).await.len(), 12);
    // the new tokens were stored
    for i in 0..12u8 {
        let next = refresh(&[b'm', i], 3_000);
        let grant = db.store.rotate_refresh(&[b'n', i], app, 300, b"nonce", &next, &rotation_audit()).await.unwrap();
        assert_eq!(grant.generation, 3);
    }
}

async fn concurrent_exchanges_of_one_code_have_one_winner(db: Db) {
    let (user, app) = fixture(&db.store).await;
    db.store.insert_code(&code(b"c", app, user, 100)).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..16u8 {
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move {
            let presented = presented(b"c", app, "https://a/cb", None, 101);
            store.exchange_code(&presented, &refresh(&[b'r', i], 2_000), &issue_audit()).await
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(grant) => winners.push(grant),
            Err(ExchangeError::Replayed) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(winners.len(), 1);
    assert_eq!(audited(&db.store, "token_issued").await.len(), 1);
    // the losers presented a spent code: a replay, which revokes the winner's grant
    assert!(db.store.grant_state(winners[0].id).await.unwrap().unwrap().revoked);
}

/// Exchanges of many codes at once all win (on SQLite they are committed together), beside a second presentation
/// of one of the codes (a replay: it revokes that code's grant) and a refused one (its code is burned).
async fn concurrent_exchanges_of_many_codes_all_win(db: Db) {
    let (user, app) = fixture(&db.store).await;
    for i in 0..13u8 {
        db.store.insert_code(&code(&[b'c', i], app, user, 100)).await.unwrap();
    }
    let exchange = |i: u8, redirect: &'static str| {
        let store = db.store.clone();
        tokio::spawn(async move {
            let code = [b'c', i];
            store
                .exchange_code(&presented(&code, app, redirect, None, 101), &refresh(&[b'r', i], 2_000), &issue_audit())
                .await
        })
    };
    let mut tasks: Vec<_> = (0..12u8).map(|i| exchange(i, "https://a/cb")).collect();
    tasks.push(exchange(5, "https://a/cb"));
    tasks.push(exchange(12, "https://a/cb/"));
    let (mut winners, mut replayed, mut refused) = (Vec::new(), 0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(grant) => winners.push(grant),
            Err(ExchangeError::Replayed) => replayed += 1,
            Err(ExchangeError::RedirectMismatch) => refused += 1,
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!((winners.len(), replayed, refused), (12, 1, 1));
    assert!(winners.iter().all(|grant| grant.generation == 1 && grant.user_id == user));
    assert_eq!(audited(&db.store, "token_issued").await.len(), 12);
    let mut revoked = 0;
    for grant in &winners {
        revoked += usize::from(db.store.grant_state(grant.id).await.unwrap().unwrap().revoked);
    }
    assert_eq!(revoked, 1, "the replayed code's grant");
    // the refused code was burned; the others' refresh tokens were stored
    let again = db
        .store
        .exchange_code(&presented(&[b'c', 12], app, "https://a/cb", None, 102), &refresh(b"x", 2_000), &issue_audit())
        .await;
    assert!(matches!(again, Err(ExchangeError::Replayed)), "{again:?}");
    let next = refresh(b"n0", 3_000);
    let grant = db.store.rotate_refresh(&[b'r', 0], app, 200, b"nonce", &next, &rotation_audit()).await.unwrap();
    assert_eq!(grant.generation, 2);
}

async fn deleting_an_app_ends_its_grants(db: Db) {
    let (user, app) = fixture(&db.store).await;
    db.store.insert_code(&code(b"c", app, user, 100)).await.unwrap();
    let grant = db
        .store
        .exchange_code(&presented(b"c", app, "https://a/cb", None, 100), &refresh(b"r1", 1_000), &issue_audit())
        .await
        .unwrap();
    assert!(db.store.delete_app(app).await.unwrap());
    assert!(db.store.grant_state(grant.id).await.unwrap().is_none());
    assert!(db.store.app_by_client_id("client-1").await.unwrap().is_none());
}

async fn sessions_expire_and_end(db: Db) {
    fixture(&db.store).await;
    let person = db.store.person_by_email("ann@example.com").await.unwrap().unwrap();
    db.store.create_session(b"s", person.id, 100, 200).await.unwrap();
    assert!(db.store.session_person(b"s", 199, 1_000_000).await.unwrap().is_some());
    assert!(db.store.session_person(b"s", 200, 1_000_000).await.unwrap().is_none());
    // idle for longer than allowed: over, even within its lifetime; a visit moves the idle clock
    db.store.create_session(b"idle", person.id, 100, 10_000).await.unwrap();
    assert!(db.store.session_person(b"idle", 170, 100).await.unwrap().is_some());
    assert!(db.store.session_person(b"idle", 260, 100).await.unwrap().is_some());
    assert!(db.store.session_person(b"idle", 350, 100).await.unwrap().is_some());
    // marked as seen at most once a minute: this visit leaves the mark at 350
    assert!(db.store.session_person(b"idle", 405, 100).await.unwrap().is_some());
    assert!(db.store.session_person(b"idle", 451, 100).await.unwrap().is_none());
    db.store.delete_session(b"s").await.unwrap();
    assert!(db.store.session_person(b"s", 150, 1_000_000).await.unwrap().is_none());
}

async fn only_the_first_signing_key_is_stored(db: Db) {
    assert!(db.store.insert_first_signing_key("k1", b"der1", 1).await.unwrap());
    assert!(!db.store.insert_first_signing_key("k2", b"der2", 2).await.unwrap());
    let keys = db.store.signing_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].kid, "k1");
}

/// Several nodes starting at once on an empty database (each call on a connection of its own): one first signing
/// key, one first account (even with different slugs), and concurrent rotations leave one active key.
async fn nodes_starting_together_store_one_key_and_one_account(db: Db) {
    let keys: Vec<_> = (0..8u8)
        .map(|i| {
            let store = db.store.clone();
            tokio::spawn(async move { store.insert_first_signing_key(&format!("k{i}"), &[i], 1).await })
        })
        .collect();
    let mut stored = 0;
    for key in keys {
        stored += usize::from(key.await.unwrap().unwrap());
    }
    assert_eq!(stored, 1);
    assert_eq!(db.store.signing_keys().await.unwrap().len(), 1);

    let accounts: Vec<_> = (0..8u8)
        .map(|i| {
            let store = db.store.clone();
            tokio::spawn(async move { store.create_first_account("First", &format!("first-{i}"), 1).await })
        })
        .collect();
    let mut created = 0;
    for account in accounts {
        created += usize::from(account.await.unwrap().unwrap().is_some());
    }
    assert_eq!(created, 1);
    assert_eq!(db.store.accounts().await.unwrap().len(), 1);
    assert!(db.store.create_first_account("Second", "second", 2).await.unwrap().is_none());

    let rotations: Vec<_> = (0..8u8)
        .map(|i| {
            let store = db.store.clone();
            tokio::spawn(async move { store.rotate_signing_key(&format!("r{i}"), &[i], 2).await })
        })
        .collect();
    for rotation in rotations {
        rotation.await.unwrap().unwrap();
    }
    let keys = db.store.signing_keys().await.unwrap();
    assert_eq!(keys.len(), 9);
    assert_eq!(keys.iter().filter(|key| key.retired_at.is_none()).count(), 1, "{keys:?}");
}

async fn purge_removes_only_what_is_dead(db: Db) {
    let (user, app) = fixture(&db.store).await;
    let person = db.store.person_by_email("ann@example.com").await.unwrap().unwrap();
    db.store.create_session(b"old", person.id, 0, 50).await.unwrap();
    db.store.create_session(b"new", person.id, 0, 5_000).await.unwrap();
    db.store.insert_code(&code(b"c", app, user, 100)).await.unwrap();
    let live = db
        .store
        .exchange_code(&presented(b"c", app, "https://a/cb", None, 100), &refresh(b"r1", 10_000), &issue_audit())
        .await
        .unwrap();
    db.store.insert_code(&code(b"d", app, user, 100)).await.unwrap();
    let dead = db
        .store
        .exchange_code(&presented(b"d", app, "https://a/cb", None, 100), &refresh(b"r2", 1_000), &issue_audit())
        .await
        .unwrap();
    db.store.purge_expired(2_000).await.unwrap();
    assert!(db.store.session_person(b"new", 1_000, 1_000_000).await.unwrap().is_some());
    assert!(db.store.grant_state(live.id).await.unwrap().is_some());
    assert!(db.store.grant_state(dead.id).await.unwrap().is_none());
    // a used code is kept a day after it expired, so a replay is still recognised
    let replay = db
        .store
        .exchange_code(&presented(b"c", app, "https://a/cb", None, 2_000), &refresh(b"r5", 10_000), &issue_audit())
        .await;
    assert!(matches!(replay, Err(ExchangeError::Replayed)));
    db.store.purge_expired(700 + 86_400).await.unwrap();
    let gone = db
        .store
        .exchange_code(&presented(b"c", app, "https://a/cb", None, 90_000), &refresh(b"r6", 100_000), &issue_audit())
        .await;
    assert!(matches!(gone, Err(ExchangeError::Unknown)));
}

async fn purge_keeps_a_grant_while_any_of_its_refresh_tokens_lives(db: Db) {
    let (user, app) = fixture(&db.store).await;
    db.store.insert_code(&code(b"c", app, user, 100)).await.unwrap();
    let grant = db
        .store
        .exchange_code(&presented(b"c", app, "https://a/cb", None, 100), &refresh(b"r1", 1_000), &issue_audit())
        .await
        .unwrap();
    db.store.rotate_refresh(b"r1", app, 500, b"nonce", &refresh(b"r2", 5_000), &rotation_audit()).await.unwrap();
    // r1 expired, r2 lives: the grant stays, r1 goes
    assert_eq!(db.store.purge_expired(2_000).await.unwrap(), 1);
    assert!(db.store.grant_state(grant.id).await.unwrap().is_some());
    assert!(db.store.refresh_state(b"r1").await.unwrap().is_none());
    assert!(db.store.refresh_state(b"r2").await.unwrap().is_some());
    // its last token expired: the grant goes with it
    db.store.purge_expired(6_000).await.unwrap();
    assert!(db.store.grant_state(grant.id).await.unwrap().is_none());
    assert!(db.store.refresh_state(b"r2").await.unwrap().is_none());
}

async fn pkce_is_checked_when_the_code_is_spent(db: Db) {
    let (user, app) = fixture(&db.store).await;
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenged = |digest: &[u8]| NewCode {
        code_challenge: Some(wsoauth_domain::pkce::challenge_of(verifier)),
        ..code(digest, app, user, 100)
    };
    db.store.insert_code(&challenged(b"p1")).await.unwrap();
    let wrong = db
        .store
        .exchange_code(
            &presented(b"p1", app, "https://a/cb", Some("x".repeat(43).as_str()), 101),
            &refresh(b"r1", 9_000),
            &issue_audit(),
        )
        .await;
    assert!(matches!(wrong, Err(ExchangeError::VerifierMismatch)));
    db.store.insert_code(&challenged(b"p2")).await.unwrap();
    let missing = db
        .store
        .exchange_code(&presented(b"p2", app, "https://a/cb", None, 101), &refresh(b"r2", 9_000), &issue_audit())
        .await;
    assert!(matches!(missing, Err(ExchangeError::VerifierMismatch)));
    db.store.insert_code(&challenged(b"p3")).await.unwrap();
    db.store
        .exchange_code(
            &presented(b"p3", app, "https://a/cb", Some(verifier), 101),
            &refresh(b"r3", 9_000),
            &issue_audit(),
        )
        .await
        .unwrap();
    db.store.insert_code(&code(b"p4", app, user, 100)).await.unwrap();
    let downgrade = db
        .store
        .exchange_code(
            &presented(b"p4", app, "https://a/cb", Some(verifier), 101),
            &refresh(b"r4", 9_000),
            &issue_audit(),
        )
        .await;
    assert!(matches!(downgrade, Err(ExchangeError::UnexpectedVerifier)));
}
