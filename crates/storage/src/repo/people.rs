//! Accounts, people, their memberships (users) and their sign-in sessions.

use crate::cache::through;
use crate::db::{Backend, DbRow, on_db};
use crate::error::StorageError;
use crate::model::*;

use super::{Store, conflict};

impl Store {
    pub async fn count_accounts(&self) -> Result<i64, StorageError> {
        on_db!(self, pool, { Ok(sqlx::query_scalar("SELECT COUNT(*) FROM accounts").fetch_one(pool).await?) })
    }

    /// Creates the first account, unless the database already has one (then `None`): the bootstrap of an empty
    /// database, which several nodes starting together may attempt at once; under the write lock exactly one of
    /// them creates it.
    pub async fn create_first_account(
        &self,
        name: &str,
        slug: &str,
        now: i64,
    ) -> Result<Option<Account>, StorageError> {
        on_db!(self, pool, {
            let mut tx = pool.begin_write().await?;
            let id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO accounts (name, slug, created_at) SELECT $1, $2, $3 \
                 WHERE NOT EXISTS (SELECT 1 FROM accounts) RETURNING id",
            )
            .bind(name)
            .bind(slug)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| conflict(e, "an account with this slug"))?;
            tx.commit().await?;
            Ok(id.map(|id| Account { id, name: name.to_owned(), slug: slug.to_owned() }))
        })
    }

    pub async fn create_account(&self, name: &str, slug: &str, now: i64) -> Result<Account, StorageError> {
        on_db!(self, pool, {
            let id: i64 =
                sqlx::query_scalar("INSERT INTO accounts (name, slug, created_at) VALUES ($1, $2, $3) RETURNING id")
                    .bind(name)
                    .bind(slug)
                    .bind(now)
                    .fetch_one(pool)
                    .await
                    .map_err(|e| conflict(e, "an account with this slug"))?;
            Ok(Account { id, name: name.to_owned(), slug: slug.to_owned() })
        })
    }

    pub async fn accounts(&self) -> Result<Vec<Account>, StorageError> {
        const SQL: &str = "SELECT id, name, slug FROM accounts ORDER BY id";
        if let Some(accounts) = self.read_direct(SQL, &[], |row| account_from(row))? {
            return Ok(accounts);
        }
        on_db!(self, pool, {
            let rows = sqlx::query(SQL).fetch_all(pool).await?;
            rows.iter().map(account_from).collect()
        })
    }

    pub async fn account(&self, id: i64) -> Result<Option<Account>, StorageError> {
        const SQL: &str = "SELECT id, name, slug FROM accounts WHERE id = $1";
        if let Some(accounts) = self.read_direct(SQL, &[&id], |row| account_from(row))? {
            return Ok(accounts.into_iter().next());
        }
        on_db!(self, pool, {
            let row = sqlx::query(SQL).bind(id).fetch_optional(pool).await?;
            row.as_ref().map(account_from).transpose()
        })
    }

    pub async fn account_by_slug(&self, slug: &str) -> Result<Option<Account>, StorageError> {
        const SQL: &str = "SELECT id, name, slug FROM accounts WHERE slug = $1";
        if let Some(accounts) = self.read_direct(SQL, &[&slug], |row| account_from(row))? {
            return Ok(accounts.into_iter().next());
        }
        on_db!(self, pool, {
            let row = sqlx::query(SQL).bind(slug).fetch_optional(pool).await?;
            row.as_ref().map(account_from).transpose()
        })
    }

    /// The person with this email (compared case-insensitively; emails are stored lowercased).
    pub async fn person_by_email(&self, email: &str) -> Result<Option<Person>, StorageError> {
        const SQL: &str = "SELECT id, email, first_name, last_name, password_hash FROM people WHERE email = $1";
        let email = email.trim().to_lowercase();
        if let Some(people) = self.read_direct(SQL, &[&email], |row| person_from(row))? {
            return Ok(people.into_iter().next());
        }
        on_db!(self, pool, {
            let row = sqlx::query(SQL).bind(email).fetch_optional(pool).await?;
            row.as_ref().map(person_from).transpose()
        })
    }

    pub async fn person(&self, id: i64) -> Result<Option<Person>, StorageError> {
        const SQL: &str = "SELECT id, email, first_name, last_name, password_hash FROM people WHERE id = $1";
        if let Some(people) = self.read_direct(SQL, &[&id], |row| person_from(row))? {
            return Ok(people.into_iter().next());
        }
        on_db!(self, pool, {
            let row = sqlx::query(SQL).bind(id).fetch_optional(pool).await?;
            row.as_ref().map(person_from).transpose()
        })
    }

    pub async fn create_person(
        &self,
        email: &str,
        first_name: &str,
        last_name: &str,
        password_hash: Option<&str>,
        now: i64,
    ) -> Result<Person, StorageError> {
        on_db!(self, pool, {
            let email = email.trim().to_lowercase();
            let id: i64 = sqlx::query_scalar(
            "INSERT INTO people (email, first_name, last_name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5) \
             RETURNING id",
        )
        .bind(&email)
        .bind(first_name)
        .bind(last_name)
        .bind(password_hash)
        .bind(now)
        .fetch_one(pool)
        .await
        .map_err(|e| conflict(e, "a person with this email"))?;
            Ok(Person {
                id,
                email,
                first_name: first_name.to_owned(),
                last_name: last_name.to_owned(),
                password_hash: password_hash.map(str::to_owned),
            })
        })
    }

    pub async fn set_password(&self, person_id: i64, password_hash: &str) -> Result<(), StorageError> {
        on_db!(self, pool, {
            sqlx::query("UPDATE people SET password_hash = $1 WHERE id = $2")
                .bind(password_hash)
                .bind(person_id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Makes a person a member of an account; returns the new user id.
    pub async fn add_member(&self, account_id: i64, person_id: i64, role: Role, now: i64) -> Result<i64, StorageError> {
        on_db!(self, pool, {
            let sql = format!(
                "INSERT INTO users (id, account_id, person_id, role, created_at) \
                 VALUES ({}, $1, $2, $3, $4) RETURNING id",
                pool.next_user_id()
            );
            let id = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(account_id)
                .bind(person_id)
                .bind(role.as_str())
                .bind(now)
                .fetch_one(pool)
                .await
                .map_err(|e| conflict(e, "this member of the account"))?;
            Ok(id)
        })
    }

    /// Every account membership of a person, oldest first.
    pub async fn memberships(&self, person_id: i64) -> Result<Vec<Member>, StorageError> {
        let sql = format!("SELECT {MEMBER_COLUMNS} FROM {MEMBER_JOIN} WHERE u.person_id = $1 ORDER BY u.id");
        if let Some(members) = self.read_direct(&sql, &[&person_id], |row| member_from(row))? {
            return Ok(members);
        }
        on_db!(self, pool, {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(person_id).fetch_all(pool).await?;
            rows.iter().map(member_from).collect()
        })
    }

    pub async fn member(&self, user_id: i64) -> Result<Option<Member>, StorageError> {
        let sql = format!("SELECT {MEMBER_COLUMNS} FROM {MEMBER_JOIN} WHERE u.id = $1");
        if let Some(members) = self.read_direct(&sql, &[&user_id], |row| member_from(row))? {
            return Ok(members.into_iter().next());
        }
        on_db!(self, pool, {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(user_id).fetch_optional(pool).await?;
            row.as_ref().map(member_from).transpose()
        })
    }

    /// `member` through the cache of `with_grant_cache` (read at `now`): members are never changed in place.
    pub async fn member_cached(&self, user_id: i64, now: i64) -> Result<Option<std::sync::Arc<Member>>, StorageError> {
        through(self.cache.as_ref().map(|c| &c.members), user_id, now, self.member(user_id)).await
    }

    pub async fn create_session(
        &self,
        digest: &[u8],
        person_id: i64,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StorageError> {
        on_db!(self, pool, {
            sqlx::query("INSERT INTO sessions (digest, person_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
                .bind(digest)
                .bind(person_id)
                .bind(now)
                .bind(expires_at)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// The person signed in with this session, if it has neither expired nor been idle for `idle` seconds.
    /// A session in use is marked as seen (at most once a minute, to spare writes).
    pub async fn session_person(&self, digest: &[u8], now: i64, idle: i64) -> Result<Option<Person>, StorageError> {
        const SQL: &str = "SELECT p.id, p.email, p.first_name, p.last_name, p.password_hash, \
             COALESCE(s.last_seen_at, s.created_at) AS seen_at FROM sessions s JOIN people p ON p.id = s.person_id \
             WHERE s.digest = $1 AND s.expires_at > $2 AND COALESCE(s.last_seen_at, s.created_at) > $3";
        const SEEN: &str =
            "UPDATE sessions SET last_seen_at = $1 WHERE digest = $2 AND COALESCE(last_seen_at, created_at) < $3";
        let since = now.saturating_sub(idle);
        let direct = self.read_direct(SQL, &[&digest, &now, &since], |row| seen_person_from(row))?;
        let found = match direct {
            Some(rows) => rows.into_iter().next(),
            None => on_db!(self, pool, {
                let row = sqlx::query(SQL).bind(digest).bind(now).bind(since).fetch_optional(pool).await?;
                row.as_ref().map(seen_person_from).transpose()?
            }),
        };
        let Some((person, seen_at)) = found else { return Ok(None) };
        // a write only when the mark is a minute old: most page views take no write lock
        if seen_at < now - 60 {
            on_db!(self, pool, {
                sqlx::query(SEEN).bind(now).bind(digest).bind(now - 60).execute(pool).await?;
            });
        }
        Ok(Some(person))
    }

    pub async fn delete_session(&self, digest: &[u8]) -> Result<(), StorageError> {
        on_db!(self, pool, {
            sqlx::query("DELETE FROM sessions WHERE digest = $1").bind(digest).execute(pool).await?;
            Ok(())
        })
    }
}

pub(super) const MEMBER_COLUMNS: &str = "u.id AS user_id, u.role, u.title, a.id AS account_id, a.name AS account_name, \
     a.slug AS account_slug, p.id AS person_id, p.email, p.first_name, p.last_name, p.password_hash, \
     u.team_id, t.title AS team, u.department, u.rate, u.phone, u.phone2, u.phone3, u.phone4, u.address, u.address2";

pub(super) const MEMBER_JOIN: &str = "users u JOIN accounts a ON a.id = u.account_id JOIN people p ON p.id = u.person_id \
     LEFT JOIN teams t ON t.id = u.team_id";

fn account_from(row: &impl DbRow) -> Result<Account, StorageError> {
    Ok(Account { id: row.col("id")?, name: row.col("name")?, slug: row.col("slug")? })
}

fn person_from(row: &impl DbRow) -> Result<Person, StorageError> {
    Ok(Person {
        id: row.col("id")?,
        email: row.col("email")?,
        first_name: row.col("first_name")?,
        last_name: row.col("last_name")?,
        password_hash: row.col("password_hash")?,
    })
}

/// A session's person and when the session was last marked as seen (`seen_at`).
fn seen_person_from(row: &impl DbRow) -> Result<(Person, i64), StorageError> {
    Ok((person_from(row)?, row.col("seen_at")?))
}

pub(super) fn member_from(row: &impl DbRow) -> Result<Member, StorageError> {
    let role: String = row.col("role")?;
    Ok(Member {
        user_id: row.col("user_id")?,
        role: role.parse().map_err(StorageError::Corrupt)?,
        title: row.col("title")?,
        account: Account { id: row.col("account_id")?, name: row.col("account_name")?, slug: row.col("account_slug")? },
        person: Person {
            id: row.col("person_id")?,
            email: row.col("email")?,
            first_name: row.col("first_name")?,
            last_name: row.col("last_name")?,
            password_hash: row.col("password_hash")?,
        },
        profile: Profile {
            team_id: row.col("team_id")?,
            team: row.col::<Option<String>>("team")?.unwrap_or_default(),
            department: row.col("department")?,
            rate: row.col("rate")?,
            phones: [row.col("phone")?, row.col("phone2")?, row.col("phone3")?, row.col("phone4")?],
            address: row.col("address")?,
            address2: row.col("address2")?,
        },
    })
}
