//! The audit log: one row per security-relevant event, newest first, paged by id, purged after a retention.
//! Rows name people, members, accounts and apps by id and never hold secrets, codes or tokens.

use crate::db::{DbRow, impl_for_tx, on_db};
use crate::direct::numbered;
use sqlx::AssertSqlSafe;

use super::Store;
use crate::error::StorageError;
use crate::model::Grant;

/// An event to record. Missing ids are filled in from the others where the database knows them: the account and
/// the person from `user_id`, the account from the app's `client_id`, the member from the account and the person.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewAuditEvent {
    pub at: i64,
    /// A short stable name, e.g. `sign_in` or `app_deleted`.
    pub event: String,
    pub account_id: Option<i64>,
    pub person_id: Option<i64>,
    pub user_id: Option<i64>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub detail: String,
}

impl NewAuditEvent {
    /// This entry as the record of starting `grant` from an exchanged code: the grant's member, and a detail that
    /// names the grant and its scopes (`grant 7, scopes: tasks_read`). `exchange_code` stores it so (in SQL on
    /// PostgreSQL: `EXCHANGE_MANY`).
    pub fn issued(&self, grant: &Grant) -> NewAuditEvent {
        self.for_grant(grant, format!("grant {}, scopes: {}", grant.id, grant.scopes))
    }

    /// This entry as the record of rotating `grant`: the grant's member, and a detail that names the grant and
    /// its new generation (`grant 7, generation 3`). `rotate_refresh` stores it so (in SQL on PostgreSQL).
    pub fn rotated(&self, grant: &Grant) -> NewAuditEvent {
        self.for_grant(grant, format!("grant {}, generation {}", grant.id, grant.generation))
    }

    fn for_grant(&self, grant: &Grant, detail: String) -> NewAuditEvent {
        NewAuditEvent { user_id: Some(grant.user_id), detail, ..self.clone() }
    }
}

/// A recorded event, with the names the page shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    pub id: i64,
    pub at: i64,
    pub event: String,
    pub account_id: Option<i64>,
    /// The account's name, if it still exists.
    pub account_name: Option<String>,
    pub person_id: Option<i64>,
    /// The person's email, if they still exist.
    pub email: Option<String>,
    pub user_id: Option<i64>,
    pub client_id: Option<String>,
    /// The app's name, if it still exists.
    pub app_name: Option<String>,
    pub ip: Option<String>,
    pub detail: String,
}

/// Stores an event, filling in the ids the database knows (see `NewAuditEvent`); answers its id.
const INSERT_AUDIT: &str = "INSERT INTO audit_log (at, event, account_id, person_id, user_id, client_id, ip, detail) \
     SELECT $1, $2, k.account_id, k.person_id, \
     COALESCE($7, (SELECT id FROM users WHERE account_id = k.account_id AND person_id = k.person_id)), \
     $5, $6, $8 \
     FROM (SELECT COALESCE($3, (SELECT account_id FROM users WHERE id = $7), \
     (SELECT account_id FROM apps WHERE client_id = $5)) AS account_id, \
     COALESCE($4, (SELECT person_id FROM users WHERE id = $7)) AS person_id) k \
     RETURNING id";

/// `INSERT_AUDIT`'s parameters. A macro: the same binds for either backend's query type.
macro_rules! bind_audit {
    ($query:expr, $event:expr) => {
        $query
            .bind($event.at)
            .bind(&$event.event)
            .bind($event.account_id)
            .bind($event.person_id)
            .bind(&$event.client_id)
            .bind(&$event.ip)
            .bind($event.user_id)
            .bind(&$event.detail)
    };
}

/// Stores an event inside a transaction of either backend, with the write it records.
pub(crate) trait AuditTx {
    async fn insert_audit(&mut self, event: &NewAuditEvent) -> Result<(), sqlx::Error>;
}

impl_for_tx! {
    impl AuditTx {
        async fn insert_audit(&mut self, event: &NewAuditEvent) -> Result<(), sqlx::Error> {
            let _id: i64 = bind_audit!(sqlx::query_scalar(INSERT_AUDIT), event).fetch_one(&mut **self).await?;
            Ok(())
        }
    }
}

/// Stores an event inside a transaction of the direct SQLite connection (`crate::direct`).
pub(crate) fn insert_audit_direct(tx: &rusqlite::Transaction<'_>, event: &NewAuditEvent) -> rusqlite::Result<()> {
    let values: [&dyn rusqlite::ToSql; 8] = [
        &event.at,
        &event.event,
        &event.account_id,
        &event.person_id,
        &event.client_id,
        &event.ip,
        &event.user_id,
        &event.detail,
    ];
    tx.prepare_cached(INSERT_AUDIT)?.query_row(&numbered(&values)[..], |_| Ok(()))
}

impl Store {
    /// Records an event; returns its id.
    pub async fn record_audit(&self, event: &NewAuditEvent) -> Result<i64, StorageError> {
        on_db!(self, pool, {
            let _writing = self.write_turn().await;
            Ok(bind_audit!(sqlx::query_scalar(INSERT_AUDIT), event).fetch_one(pool).await?)
        })
    }

    /// Up to `limit` events of the given accounts, newest first, older than the event `before_id` when given.
    pub async fn audit_events(
        &self,
        account_ids: &[i64],
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEvent>, StorageError> {
        let Ok(count) = usize::try_from(limit) else { return Ok(Vec::new()) };
        if account_ids.is_empty() || count == 0 {
            return Ok(Vec::new());
        }
        let (sql, before) = (audit_events_sql(limit), before_id.unwrap_or(i64::MAX));
        let mut accounts = account_ids.to_vec();
        accounts.sort_unstable();
        accounts.dedup();
        // One account at a time, each read along its index from the newest (or from `before`) and stopping at
        // `limit`: a statement over all of them at once sorted every event of those accounts, and every refresh
        // adds one.
        let mut events = Vec::new();
        for account in accounts {
            if let Some(found) = self.read_direct(&sql, &[&account, &before], |row| audit_from(row))? {
                events.extend(found);
                continue;
            }
            on_db!(self, pool, {
                let rows = sqlx::query(AssertSqlSafe(sql.as_str())).bind(account).bind(before).fetch_all(pool).await?;
                for row in &rows {
                    events.push(audit_from(row)?);
                }
            });
        }
        events.sort_unstable_by_key(|event| std::cmp::Reverse(event.id));
        events.truncate(count);
        Ok(events)
    }

    /// Deletes the events recorded before `before` that precede, in the order they were recorded, the first event
    /// to keep; returns how many. It reads the log from its oldest event to that one, so its cost is what it
    /// deletes, without an index on the time. An event stamped earlier than one recorded before it (a clock set
    /// back, or another node's clock behind) waits for a later purge, by at most that difference.
    pub async fn purge_audit(&self, before: i64) -> Result<u64, StorageError> {
        on_db!(self, pool, {
            let done = sqlx::query(PURGE_AUDIT).bind(before).execute(pool).await?;
            Ok(done.rows_affected())
        })
    }

    /// The member an authorization code was issued to (for the audit entry of a replayed code).
    pub async fn code_user_id(&self, code_digest: &[u8]) -> Result<Option<i64>, StorageError> {
        const SQL: &str = "SELECT user_id FROM auth_codes WHERE digest = $1";
        if let Some(ids) = self.read_direct(SQL, &[&code_digest], |row| Ok(row.col::<i64>("user_id")?))? {
            return Ok(ids.into_iter().next());
        }
        on_db!(self, pool, { Ok(sqlx::query_scalar(SQL).bind(code_digest).fetch_optional(pool).await?) })
    }
}

/// The statement behind `purge_audit` (`$1` the oldest time to keep).
const PURGE_AUDIT: &str = "DELETE FROM audit_log WHERE id < COALESCE(\
     (SELECT id FROM audit_log WHERE at >= $1 ORDER BY id LIMIT 1), 9223372036854775807)";

/// The statement behind `audit_events` (`$1` an account, `$2` the id to page before): it reads the account's index
/// backwards from `$2` and stops after `limit` events, whatever the log holds. The limit is a literal (an integer,
/// never text from a request): SQLite plans a statement whose LIMIT is a parameter for the value bound at the time,
/// so binding it again would parse and plan the statement anew on every execution.
fn audit_events_sql(limit: i64) -> String {
    format!(
        "SELECT l.id, l.at, l.event, l.account_id, a.name AS account_name, l.person_id, p.email, l.user_id, \
         l.client_id, ap.name AS app_name, l.ip, l.detail \
         FROM audit_log l LEFT JOIN accounts a ON a.id = l.account_id LEFT JOIN people p ON p.id = l.person_id \
         LEFT JOIN apps ap ON ap.client_id = l.client_id \
         WHERE l.account_id = $1 AND l.id < $2 \
         ORDER BY l.id DESC LIMIT {limit}"
    )
}

fn audit_from(row: &impl DbRow) -> Result<AuditEvent, StorageError> {
    Ok(AuditEvent {
        id: row.col("id")?,
        at: row.col("at")?,
        event: row.col("event")?,
        account_id: row.col("account_id")?,
        account_name: row.col("account_name")?,
        person_id: row.col("person_id")?,
        email: row.col("email")?,
        user_id: row.col("user_id")?,
        client_id: row.col("client_id")?,
        app_name: row.col("app_name")?,
        ip: row.col("ip")?,
        detail: row.col("detail")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AppFields, Role};

    fn event(at: i64, name: &str, account_id: Option<i64>) -> NewAuditEvent {
        NewAuditEvent { at, event: name.into(), account_id, ..NewAuditEvent::default() }
    }

    #[tokio::test]
    async fn pages_newest_first_per_account_fills_ids_and_purges() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let acme = store.create_account("Acme", "acme", 0).await.unwrap();
        let beta = store.create_account("Beta", "beta", 0).await.unwrap();
        let person = store.create_person("ann@acme.test", "Ann", "Lee", None, 0).await.unwrap();
        let user = store.add_member(acme.id, person.id, Role::Admin, 0).await.unwrap();
        let fields = AppFields {
            name: "Tool".into(),
            redirect_uris: vec!["https://tool.example/cb".into()],
            scopes: "users_read".into(),
            require_pkce: false,
        };
        let app = store.create_app(acme.id, "cid", b"digest", &fields, false, 0).await.unwrap();

        // ids filled in: account and person from the member, the member from account and person, the account
        // from the app
        let by_user = NewAuditEvent { user_id: Some(user), ..event(10, "token_issued", None) };
        let by_person = NewAuditEvent { person_id: Some(person.id), ..event(11, "app_changed", Some(acme.id)) };
        let by_app = NewAuditEvent { client_id: Some(app.client_id.clone()), ..event(12, "app_created", None) };
        for new in [&by_user, &by_person, &by_app] {
            store.record_audit(new).await.unwrap();
        }
        let rows = store.audit_events(&[acme.id], None, 10).await.unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].event, "app_created");
        assert_eq!((rows[0].account_id, rows[0].app_name.as_deref()), (Some(acme.id), Some("Tool")));
        assert_eq!((rows[1].person_id, rows[1].user_id), (Some(person.id), Some(user)));
        assert_eq!((rows[2].account_id, rows[2].person_id), (Some(acme.id), Some(person.id)));
        assert_eq!(rows[2].email.as_deref(), Some("ann@acme.test"));
        assert_eq!(rows[2].account_name.as_deref(), Some("Acme"));

        // other accounts and account-less events are not listed
        store.record_audit(&event(13, "sign_in", Some(beta.id))).await.unwrap();
        store.record_audit(&event(14, "sign_in_failed", None)).await.unwrap();
        assert_eq!(store.audit_events(&[acme.id], None, 10).await.unwrap().len(), 3);
        assert_eq!(store.audit_events(&[acme.id, beta.id], None, 10).await.unwrap().len(), 4);
        assert!(store.audit_events(&[], None, 10).await.unwrap().is_empty());

        // paging
        let first = store.audit_events(&[acme.id, beta.id], None, 2).await.unwrap();
        let second = store.audit_events(&[acme.id, beta.id], Some(first[1].id), 2).await.unwrap();
        let third = store.audit_events(&[acme.id, beta.id], Some(second[1].id), 2).await.unwrap();
        let events: Vec<&str> = first.iter().chain(&second).chain(&third).map(|e| e.event.as_str()).collect();
        assert_eq!(events, ["sign_in", "app_created", "app_changed", "token_issued"]);

        // purge: strictly older than the cutoff
        assert_eq!(store.purge_audit(12).await.unwrap(), 2);
        let left: Vec<i64> =
            store.audit_events(&[acme.id, beta.id], None, 10).await.unwrap().iter().map(|e| e.at).collect();
        assert_eq!(left, [13, 12]);
    }

    /// An event stamped earlier than one recorded before it (a clock set back) stays until every event recorded
    /// before it is purged; nothing newer than the cutoff is ever deleted.
    #[tokio::test]
    async fn a_purge_stops_at_the_first_event_to_keep() {
        let store = Store::open("sqlite::memory:").await.unwrap();
        for at in [10, 20, 5, 30] {
            store.record_audit(&event(at, "sign_in", None)).await.unwrap();
        }
        assert_eq!(store.purge_audit(15).await.unwrap(), 1);
        assert_eq!(store.purge_audit(25).await.unwrap(), 2);
        assert_eq!(store.purge_audit(25).await.unwrap(), 0);
        assert_eq!(store.purge_audit(31).await.unwrap(), 1);
    }

    /// The purge reads the log from its oldest event to the first one to keep, with no index on the time: with
    /// nothing to delete it costs as much with 3,000 events as with 300.
    #[tokio::test]
    async fn a_purge_reads_only_what_it_deletes() {
        let dir = std::env::temp_dir().join(format!("wsoauth-audit-purge-{}", std::process::id()));
        let path = dir.join("purge.db");
        Store::open(&format!("sqlite://{}", path.display())).await.unwrap().close().await;
        let add = |events: i64| {
            let connection = rusqlite::Connection::open(&path).unwrap();
            let mut insert =
                connection.prepare("INSERT INTO audit_log (at, event) VALUES (?1, 'token_refreshed')").unwrap();
            for at in 1_000..1_000 + events {
                insert.execute([at]).unwrap();
            }
        };
        let steps = || crate::direct::vm_steps(&path, PURGE_AUDIT, &[&500]);
        add(300);
        let few = steps();
        add(2_700);
        assert_eq!(steps(), few);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The audit page's statement is planned once per connection, whatever it pages from.
    #[tokio::test]
    async fn the_audit_page_is_planned_once() {
        let dir = std::env::temp_dir().join(format!("wsoauth-plan-audit-{}", std::process::id()));
        let path = dir.join("plan.db");
        Store::open(&format!("sqlite://{}", path.display())).await.unwrap().close().await;
        let runs: [&[&dyn rusqlite::ToSql]; 3] = [&[&1, &i64::MAX], &[&2, &40], &[&3, &2]];
        assert_eq!(crate::direct::times_reprepared(&path, &audit_events_sql(51), &runs), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A page of the audit log costs the same with 300 events as with 3,000: it reads the index from where the page
    /// starts and stops at the page's end (the statement before sorted every event of the account).
    #[tokio::test]
    async fn an_audit_page_reads_only_its_events() {
        let dir = std::env::temp_dir().join(format!("wsoauth-audit-page-{}", std::process::id()));
        let path = dir.join("page.db");
        Store::open(&format!("sqlite://{}", path.display())).await.unwrap().close().await;
        let sql = audit_events_sql(51);
        let add = |events: i64| {
            let connection = rusqlite::Connection::open(&path).unwrap();
            let mut insert = connection
                .prepare("INSERT INTO audit_log (at, event, account_id) VALUES (?1, 'token_refreshed', ?2)")
                .unwrap();
            for at in 0..events {
                insert.execute((at, 1 + at % 3)).unwrap();
            }
        };
        let steps = |before: i64| crate::direct::vm_steps(&path, &sql, &[&1, &before]);
        add(300);
        let (top, middle) = (steps(i64::MAX), steps(200));
        add(2_700);
        assert_eq!(steps(i64::MAX), top);
        assert_eq!(steps(200), middle);
        assert_eq!(steps(2_000), middle);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
