//! Teams, project folders and the members of an account.

use crate::db::{Backend, DbRow, on_db};
use sqlx::AssertSqlSafe;

use super::Store;
use super::people::{MEMBER_COLUMNS, MEMBER_JOIN, member_from};
use super::projects::{UserBrief, user_brief_from};
use crate::error::StorageError;
use crate::model::{Member, Role};

/// A team ("user group").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeamRow {
    pub id: i64,
    pub title: String,
    /// An external client team.
    pub client: bool,
}

/// A project folder: `kind` is `folder` (made by people) or `company` (a team's folder, with its `client` flag).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderRow {
    pub id: i64,
    pub title: String,
    pub kind: String,
    pub client: Option<bool>,
}

/// A member to add to an account (`add_user`). Names apply only to a person new to wsoauth.
#[derive(Clone, Debug, Default)]
pub struct NewMember {
    pub account_id: i64,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub title: String,
    pub team_id: Option<i64>,
    pub department: String,
    pub role: Option<Role>,
    pub now: i64,
}

const TEAM_BY_TITLE: &str = "SELECT id, title, client FROM teams WHERE account_id = $1 AND title = $2";

const FOLDER_SELECT: &str =
    "SELECT f.id, f.title, f.kind, t.client FROM project_folders f LEFT JOIN teams t ON t.id = f.team_id";

fn team_from(row: &impl DbRow) -> Result<TeamRow, StorageError> {
    Ok(TeamRow { id: row.col("id")?, title: row.col("title")?, client: row.col("client")? })
}

fn folder_from(row: &impl DbRow) -> Result<FolderRow, StorageError> {
    let kind: String = row.col("kind")?;
    let client = row.col::<Option<i64>>("client")?.map(|flag| flag != 0);
    Ok(FolderRow {
        id: row.col("id")?,
        title: row.col("title")?,
        client: if kind == "company" { Some(client.unwrap_or(false)) } else { None },
        kind,
    })
}

impl Store {
    /// The teams of an account, oldest first.
    pub async fn teams(&self, account_id: i64) -> Result<Vec<TeamRow>, StorageError> {
        const SQL: &str = "SELECT id, title, client FROM teams WHERE account_id = $1 ORDER BY id";
        if let Some(teams) = self.read_direct(SQL, &[&account_id], |row| team_from(row))? {
            return Ok(teams);
        }
        on_db!(self, pool, {
            let rows = sqlx::query(SQL).bind(account_id).fetch_all(pool).await?;
            rows.iter().map(team_from).collect()
        })
    }

    pub async fn team_by_title(&self, account_id: i64, title: &str) -> Result<Option<TeamRow>, StorageError> {
        if let Some(teams) = self.read_direct(TEAM_BY_TITLE, &[&account_id, &title], |row| team_from(row))? {
            return Ok(teams.into_iter().next());
        }
        on_db!(self, pool, {
            let row = sqlx::query(TEAM_BY_TITLE).bind(account_id).bind(title).fetch_optional(pool).await?;
            row.as_ref().map(team_from).transpose()
        })
    }

    /// The team titled `title`, created with its project folder (of kind `company`) if there is none; the flag
    /// tells whether it was created. A folder of the same title made by people becomes the team's folder.
    pub async fn ensure_team(
        &self,
        account_id: i64,
        title: &str,
        client: bool,
    ) -> Result<(TeamRow, bool), StorageError> {
        on_db!(self, pool, {
            let mut tx = pool.begin().await?;
            let created: Option<i64> = sqlx::query_scalar(
                "INSERT INTO teams (account_id, title, client) VALUES ($1, $2, $3) \
                 ON CONFLICT (account_id, title) DO NOTHING RETURNING id",
            )
            .bind(account_id)
            .bind(title)
            .bind(i64::from(client))
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(team_id) = created {
                sqlx::query(
                    "INSERT INTO project_folders (account_id, title, kind, team_id) VALUES ($1, $2, 'company', $3) \
                     ON CONFLICT (account_id, title) DO UPDATE SET kind = 'company', team_id = $3 \
                     WHERE project_folders.team_id IS NULL",
                )
                .bind(account_id)
                .bind(title)
                .bind(team_id)
                .execute(&mut *tx)
                .await?;
            }
            let row = sqlx::query(TEAM_BY_TITLE).bind(account_id).bind(title).fetch_one(&mut *tx).await?;
            tx.commit().await?;
            Ok((team_from(&row)?, created.is_some()))
        })
    }

    /// The project folders of an account, by title.
    pub async fn project_folders(&self, account_id: i64) -> Result<Vec<FolderRow>, StorageError> {
        let sql = format!("{FOLDER_SELECT} WHERE f.account_id = $1 ORDER BY lower(f.title), f.id");
        if let Some(folders) = self.read_direct(&sql, &[&account_id], |row| folder_from(row))? {
            return Ok(folders);
        }
        on_db!(self, pool, {
            let rows = sqlx::query(AssertSqlSafe(sql.as_str())).bind(account_id).fetch_all(pool).await?;
            rows.iter().map(folder_from).collect()
        })
    }

    /// The folder titled `title`, created (of kind `folder`) if there is none; the flag tells whether it was.
    pub async fn ensure_project_folder(&self, account_id: i64, title: &str) -> Result<(FolderRow, bool), StorageError> {
        on_db!(self, pool, {
            let done = sqlx::query(
                "INSERT INTO project_folders (account_id, title, kind) VALUES ($1, $2, 'folder') \
                 ON CONFLICT (account_id, title) DO NOTHING",
            )
            .bind(account_id)
            .bind(title)
            .execute(pool)
            .await?;
            let sql = format!("{FOLDER_SELECT} WHERE f.account_id = $1 AND f.title = $2");
            let row = sqlx::query(AssertSqlSafe(sql)).bind(account_id).bind(title).fetch_one(pool).await?;
            Ok((folder_from(&row)?, done.rows_affected() == 1))
        })
    }

    /// The project folder of a team.
    pub async fn team_folder(&self, team_id: i64) -> Result<Option<i64>, StorageError> {
        const SQL: &str = "SELECT id FROM project_folders WHERE team_id = $1 ORDER BY id LIMIT 1";
        if let Some(ids) = self.read_direct(SQL, &[&team_id], |row| Ok(row.col::<i64>("id")?))? {
            return Ok(ids.into_iter().next());
        }
        on_db!(self, pool, { Ok(sqlx::query_scalar(SQL).bind(team_id).fetch_optional(pool).await?) })
    }

    /// Every member of an account, by user id.
    pub async fn account_members(&self, account_id: i64) -> Result<Vec<Member>, StorageError> {
        let sql = format!("SELECT {MEMBER_COLUMNS} FROM {MEMBER_JOIN} WHERE u.account_id = $1 ORDER BY u.id");
        if let Some(members) = self.read_direct(&sql, &[&account_id], |row| member_from(row))? {
            return Ok(members);
        }
        on_db!(self, pool, {
            let rows = sqlx::query(AssertSqlSafe(sql.as_str())).bind(account_id).fetch_all(pool).await?;
            rows.iter().map(member_from).collect()
        })
    }

    /// The members of an account among `emails` (lowercase), in one query; unknown emails are left out.
    pub async fn account_users_by_email(
        &self,
        account_id: i64,
        emails: &[String],
    ) -> Result<Vec<UserBrief>, StorageError> {
        // Emails are text, and `json_each` lists are integers on PostgreSQL (see `crate::db`): the emails are bound
        // one by one, a few hundred per statement.
        let mut found = Vec::new();
        for chunk in emails.chunks(500) {
            let list = (2..chunk.len() + 2).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ");
            let sql = format!(
                "SELECT u.id AS user_id, pe.email, pe.first_name, pe.last_name FROM users u \
                 JOIN people pe ON pe.id = u.person_id WHERE u.account_id = $1 AND pe.email IN ({list})"
            );
            let direct = {
                let mut values: Vec<&dyn rusqlite::ToSql> = vec![&account_id];
                values.extend(chunk.iter().map(|email| email as &dyn rusqlite::ToSql));
                self.read_direct(&sql, &values, |row| user_brief_from(row))?
            };
            if let Some(rows) = direct {
                found.extend(rows);
                continue;
            }
            on_db!(self, pool, {
                let mut query = sqlx::query(AssertSqlSafe(sql.as_str())).bind(account_id);
                for email in chunk {
                    query = query.bind(email);
                }
                for row in query.fetch_all(pool).await? {
                    found.push(user_brief_from(&row)?);
                }
            });
        }
        found.sort_by_key(|user| user.id);
        found.dedup_by_key(|user| user.id);
        Ok(found)
    }

    /// Adds a person (created without a password if new) to an account with a profile; a person who already
    /// is a member stays as they are. Returns the user id and whether the membership is new.
    pub async fn invite_member(&self, new: &NewMember) -> Result<(i64, bool), StorageError> {
        on_db!(self, pool, {
            let email = new.email.trim().to_lowercase();
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO people (email, first_name, last_name, password_hash, created_at) \
                 VALUES ($1, $2, $3, NULL, $4) ON CONFLICT (email) DO NOTHING",
            )
            .bind(&email)
            .bind(&new.first_name)
            .bind(&new.last_name)
            .bind(new.now)
            .execute(&mut *tx)
            .await?;
            let person_id: i64 =
                sqlx::query_scalar("SELECT id FROM people WHERE email = $1").bind(&email).fetch_one(&mut *tx).await?;
            let existing: Option<i64> =
                sqlx::query_scalar("SELECT id FROM users WHERE account_id = $1 AND person_id = $2")
                    .bind(new.account_id)
                    .bind(person_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(user_id) = existing {
                tx.commit().await?;
                return Ok((user_id, false));
            }
            let sql = format!(
                "INSERT INTO users (id, account_id, person_id, role, title, team_id, department, created_at) \
                 VALUES ({}, $1, $2, $3, $4, $5, $6, $7) RETURNING id",
                pool.next_user_id()
            );
            let user_id: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(new.account_id)
                .bind(person_id)
                .bind(new.role.unwrap_or(Role::User).as_str())
                .bind(&new.title)
                .bind(new.team_id)
                .bind(&new.department)
                .bind(new.now)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok((user_id, true))
        })
    }
}
