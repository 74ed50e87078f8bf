//! Export and import on both backends: every table of the schema is in the list, a round trip keeps every value
//! (NULLs, reals, blobs, text ordered byte by byte, more than one page), ids continue after the imported ones,
//! and an import writes all or nothing into an empty database of its own schema version.

use std::sync::atomic::{AtomicU32, Ordering};

use super::*;
use crate::db::Pool;
use crate::model::{AppFields, Role};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A store on a new SQLite file; its folder is removed on drop.
struct Db {
    store: Store,
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
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("wsoauth-transfer-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open(&format!("sqlite://{}", dir.join("db.sqlite").display())).await.unwrap();
    Db { store, dir: Some(dir) }
}

async fn postgres() -> Option<Db> {
    let Ok(base) = std::env::var("WSOAUTH_TEST_POSTGRES_URL") else {
        eprintln!("WSOAUTH_TEST_POSTGRES_URL is not set: the PostgreSQL half of this test is skipped");
        return None;
    };
    let url = crate::scratch_postgres(&base, "wsoauth_transfer").await.unwrap();
    Some(Db { store: Store::open(&url).await.unwrap(), dir: None })
}

async fn both() -> Vec<Db> {
    let mut dbs = vec![sqlite().await];
    dbs.extend(postgres().await);
    dbs
}

async fn exec(store: &Store, sql: &str) {
    on_db!(store, pool, {
        sqlx::raw_sql(AssertSqlSafe(sql.to_owned())).execute(pool).await.unwrap();
    });
}

/// A bit of everything: NULLs, reals, blobs, non-ASCII text, settings whose order depends on the collation, a
/// subtask with a smaller id than its parent, and more rows than one page in `sessions` and `audit_log`.
async fn seed(store: &Store) {
    let acme = store.create_account("Acme é 🚀", "acme", 10).await.unwrap();
    let ann = store.create_person("ann@acme.test", "Ann", "Lee", Some("$argon2id$hash"), 10).await.unwrap();
    let bob = store.create_person("bob@acme.test", "Bob", "", None, 11).await.unwrap();
    let owner = store.add_member(acme.id, ann.id, Role::Owner, 10).await.unwrap();
    store.add_member(acme.id, bob.id, Role::User, 11).await.unwrap();
    let fields = AppFields {
        name: "Tool".into(),
        redirect_uris: vec!["https://tool.example/cb".into()],
        scopes: "users_read".into(),
        require_pkce: false,
    };
    store.create_app(acme.id, "cid", &[0, 0xff, 7], &fields, false, 10).await.unwrap();
    for (name, value) in [("digest_key", &[1u8, 2, 3][..]), ("Zeta", b"z"), ("alpha", b""), ("_x", b"x")] {
        store.setting_or_insert(name, value).await.unwrap();
    }
    store.insert_first_signing_key("kid-1", b"private key der", 10).await.unwrap();
    exec(store, &format!("UPDATE users SET rate = 2.5, phone = 'ü' WHERE id = {owner}")).await;
    exec(
        store,
        "INSERT INTO projects (id, account_id, name, date_added, max_time, max_money) VALUES (3, 1, 'P', 10, NULL, 0.1);
         INSERT INTO tasks (id, account_id, project_id, parent_id, depth, name, date_added, max_time)
             VALUES (7, 1, 3, NULL, 0, 'parent', 10, 1e300);
         INSERT INTO tasks (id, account_id, project_id, parent_id, top_id, depth, name, date_added)
             VALUES (5, 1, 3, 7, 7, 1, 'child', 11);",
    )
    .await;
    let mut sessions = Vec::new();
    let mut audit = Vec::new();
    for i in 0..1200u32 {
        // digests out of insertion order, some with a NUL byte
        let digest = wsoauth_domain::secret::hex(&i.wrapping_mul(2_654_435_761).to_be_bytes());
        let seen = if i % 3 == 0 { "NULL".to_owned() } else { i.to_string() };
        sessions.push(format!("({}, {}, {i}, {i}, {seen})", blob(store, &digest), ann.id));
        audit.push(format!("({i}, 'sign_in', {}, 'ip-{i}')", if i % 2 == 0 { "NULL" } else { "1" }));
    }
    for chunk in sessions.chunks(400) {
        let sql = format!(
            "INSERT INTO sessions (digest, person_id, created_at, expires_at, last_seen_at) VALUES {}",
            chunk.join(", ")
        );
        exec(store, &sql).await;
    }
    for chunk in audit.chunks(400) {
        exec(store, &format!("INSERT INTO audit_log (at, event, account_id, ip) VALUES {}", chunk.join(", "))).await;
    }
}

/// A blob literal: SQLite's `X'..'`, PostgreSQL's `'\x..'::BYTEA`.
fn blob(store: &Store, hex: &str) -> String {
    match store.pool {
        Pool::Sqlite(_) => format!("X'{hex}'"),
        Pool::Postgres(_) => format!("'\\x{hex}'::BYTEA"),
    }
}

/// The whole database as records.
async fn dump(store: &Store) -> Vec<Record> {
    let mut records = Vec::new();
    store
        .export(|record| {
            records.push(record.clone());
            Ok(())
        })
        .await
        .unwrap();
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_table_of_the_schema_is_in_the_export_list() {
    for db in both().await {
        assert_eq!(db.store.unlisted_tables().await.unwrap(), Vec::<String>::new(), "add new tables to TABLES");
        let columns = db.store.all_columns().await.unwrap();
        assert_eq!(columns.len(), TABLES.len());
        for (table, columns) in TABLES.iter().zip(&columns) {
            for key in table.key {
                assert!(columns.iter().any(|c| c.name == *key), "{}: no key column {key}", table.name);
            }
        }
        // and a table the list lacks stops both directions
        exec(&db.store, "CREATE TABLE later_feature (id BIGINT PRIMARY KEY)").await;
        let error = db.store.export(|_| Ok(())).await.unwrap_err();
        assert!(matches!(&error, TransferError::Unlisted(name) if name == "later_feature"), "{error}");
        let error = db.store.import(db.store.schema_version().await.unwrap(), std::iter::empty()).await.unwrap_err();
        assert!(matches!(&error, TransferError::Unlisted(_)), "{error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_trip_keeps_every_value_and_new_ids_follow_the_imported_ones() {
    let source = sqlite().await;
    seed(&source.store).await;
    let records = dump(&source.store).await;
    let rows = |name: &str| {
        let at = records.iter().position(|r| matches!(r, Record::Table { name: n, .. } if n == name)).unwrap();
        records[at + 1..].iter().take_while(|r| matches!(r, Record::Row(_))).cloned().collect::<Vec<_>>()
    };
    assert_eq!(rows("sessions").len(), 1200);
    assert_eq!(rows("audit_log").len(), 1200);
    let settings: Vec<Record> = rows("settings");
    let names: Vec<&Value> =
        settings.iter().map(|r| if let Record::Row(v) = r { &v[0] } else { &Value::Null }).collect();
    let text = |s: &str| Value::Text(s.into());
    assert_eq!(names, [&text("Zeta"), &text("_x"), &text("alpha"), &text("digest_key")], "byte order");
    let tasks: Vec<Record> = rows("tasks");
    assert!(matches!(&tasks[0], Record::Row(v) if v[0] == Value::Int(7)), "the parent first");

    let version = source.store.schema_version().await.unwrap();
    for target in both().await {
        let counts = target.store.import(version, records.clone().into_iter().map(Ok)).await.unwrap();
        assert_eq!(counts.len(), TABLES.len());
        assert!(counts.contains(&("sessions", 1200)) && counts.contains(&("users", 2)));
        assert_eq!(dump(&target.store).await, records, "the imported database exports the same records");

        let account = target.store.create_account("Next", "next", 20).await.unwrap();
        assert_eq!(account.id, 2);
        let person = target.store.create_person("cy@acme.test", "Cy", "", None, 20).await.unwrap();
        assert_eq!(person.id, 3);
        assert_eq!(target.store.add_member(account.id, person.id, Role::Owner, 20).await.unwrap(), 1002);
        let ann = target.store.person_by_email("ann@acme.test").await.unwrap().unwrap();
        assert_eq!(ann.password_hash.as_deref(), Some("$argon2id$hash"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_ids_start_at_1000_after_importing_an_empty_database() {
    let source = sqlite().await;
    let records = dump(&source.store).await;
    let version = source.store.schema_version().await.unwrap();
    for target in both().await {
        target.store.import(version, records.clone().into_iter().map(Ok)).await.unwrap();
        let account = target.store.create_account("A", "a", 1).await.unwrap();
        let person = target.store.create_person("a@a.test", "A", "", None, 1).await.unwrap();
        assert_eq!((account.id, person.id), (1, 1));
        assert_eq!(target.store.add_member(account.id, person.id, Role::Owner, 1).await.unwrap(), 1000);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_goes_only_into_an_empty_database_of_its_schema_version_and_writes_all_or_nothing() {
    let source = sqlite().await;
    seed(&source.store).await;
    let records = dump(&source.store).await;
    let version = source.store.schema_version().await.unwrap();
    for target in both().await {
        let error = target.store.import(version - 1, records.clone().into_iter().map(Ok)).await.unwrap_err();
        assert!(matches!(error, TransferError::SchemaMismatch { .. }), "{error}");

        // a bad value in the last table: nothing at all is written
        let mut broken = records.clone();
        let last = broken.iter().rposition(|r| matches!(r, Record::Row(_))).unwrap();
        broken[last] = Record::Row(vec![Value::Blob(vec![1]); 9]);
        let error = target.store.import(version, broken.into_iter().map(Ok)).await.unwrap_err();
        assert!(
            error.to_string().starts_with("table audit_log: row 1200, column id: a blob in an integer column"),
            "{error}"
        );
        // a stream that fails part way (a truncated file): nothing either
        let cut = records.iter().take(20).cloned().map(Ok).chain([Err(TransferError::Truncated(21))]);
        assert!(matches!(target.store.import(version, cut).await, Err(TransferError::Truncated(21))));
        assert!(dump(&target.store).await.iter().all(|r| matches!(r, Record::Table { .. })), "still empty");

        target.store.import(version, records.clone().into_iter().map(Ok)).await.unwrap();
        let error = target.store.import(version, records.clone().into_iter().map(Ok)).await.unwrap_err();
        assert!(matches!(error, TransferError::NotEmpty("settings")), "{error}");
        assert!(error.to_string().contains("not empty"));
    }
    // one row anywhere is enough to refuse
    let target = sqlite().await;
    target.store.create_account("Only", "only", 1).await.unwrap();
    let error = target.store.import(version, records.into_iter().map(Ok)).await.unwrap_err();
    assert!(matches!(error, TransferError::NotEmpty("accounts")), "{error}");
}

#[tokio::test]
async fn tables_and_columns_must_match_the_database() {
    let db = sqlite().await;
    let version = db.store.schema_version().await.unwrap();
    let table = |name: &str, columns: &[&str]| Record::Table {
        name: name.into(),
        columns: columns.iter().map(|c| (*c).to_owned()).collect(),
    };
    let cases = [
        (vec![table("accounts", &["id"])], "table accounts comes where table settings should"),
        (vec![table("nope", &["id"])], "the file has table \"nope\", which this database does not have"),
        (vec![table("settings", &["name"])], "table settings: the file lacks column value"),
        (vec![table("settings", &["name", "value", "x"])], "table settings: the file has column \"x\""),
        (vec![table("settings", &["name", "value"]), Record::Row(vec![Value::Null])], "row 1 has 1 values"),
        (vec![Record::Row(vec![])], "a row comes before any table"),
        (vec![table("settings", &["value", "name"])], "the file has no table accounts"),
    ];
    for (records, message) in cases {
        let error = db.store.import(version, records.into_iter().map(Ok)).await.unwrap_err();
        assert!(error.to_string().contains(message), "{error} lacks {message:?}");
    }
}
