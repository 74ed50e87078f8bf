//! Projects and their members.

use crate::db::{DbRow, impl_for_tx, on_db};
use sqlx::AssertSqlSafe;

use super::tags::ids_json;
use super::{Store, VISIBLE_PROJECT};
use crate::error::StorageError;
use crate::model::Viewer;

/// The 14 `options.*` flags, in the documented order: bit `i` of `ProjectRow::options` is `PROJECT_OPTIONS[i]`.
pub const PROJECT_OPTIONS: [&str; 14] = [
    "allow_close",
    "allow_give",
    "allow_term",
    "allow_limit",
    "require_term",
    "require_tag",
    "require_limit",
    "require_hidden",
    "deny_comments_edit",
    "deny_task_edit",
    "deny_task_delete",
    "time_require",
    "time_today",
    "timer_only",
];

/// The bit of a project option (see `PROJECT_OPTIONS`).
pub fn project_option_bit(name: &str) -> Option<i64> {
    PROJECT_OPTIONS.iter().position(|option| *option == name).map(|at| 1 << at)
}

/// A member of an account as other objects embed it (`user_from`, `users[]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserBrief {
    pub id: i64,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
}

/// A project as the API shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct ProjectRow {
    pub id: i64,
    pub account_id: i64,
    pub name: String,
    /// `active`, `pending` or `archive`.
    pub status: String,
    pub folder_id: Option<i64>,
    /// The folder's title (the API's `company`).
    pub folder: Option<String>,
    pub author: Option<UserBrief>,
    pub manager: Option<UserBrief>,
    /// The default executive of new tasks: `None`, `"ANY"`, `"NOONE"` or a user id.
    pub default_executive: Option<String>,
    pub text: String,
    pub date_added: i64,
    pub date_start: Option<String>,
    pub date_end: Option<String>,
    pub date_closed: Option<i64>,
    pub max_time: Option<f64>,
    pub max_money: Option<f64>,
    /// The `options.*` flags as bits (see `PROJECT_OPTIONS`).
    pub options: i64,
}

impl ProjectRow {
    pub fn option(&self, name: &str) -> bool {
        project_option_bit(name).is_some_and(|bit| self.options & bit != 0)
    }
}

/// A project to create. `members` may repeat the author or manager; each person is stored once.
#[derive(Clone, Debug, Default)]
pub struct NewProject {
    pub account_id: i64,
    pub name: String,
    pub folder_id: Option<i64>,
    pub author_id: i64,
    pub manager_id: Option<i64>,
    pub default_executive: Option<String>,
    pub text: String,
    pub date_start: Option<String>,
    pub date_end: Option<String>,
    pub max_time: Option<f64>,
    pub max_money: Option<f64>,
    pub options: i64,
    pub members: Vec<i64>,
    pub now: i64,
}

/// Changes to a project; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct ProjectChanges {
    pub name: Option<String>,
    pub folder_id: Option<i64>,
    /// `Some(None)` removes the manager.
    pub manager_id: Option<Option<i64>>,
    pub default_executive: Option<String>,
    pub text: Option<String>,
    pub date_start: Option<String>,
    pub date_end: Option<String>,
    pub max_time: Option<f64>,
    pub max_money: Option<f64>,
    pub options: Option<i64>,
    /// Members to add.
    pub members: Vec<i64>,
}

const PROJECT_COLUMNS: &str = "p.id, p.account_id, p.name, p.status, p.folder_id, f.title AS folder, \
     p.default_executive, p.text, p.date_added, p.date_start, p.date_end, p.date_closed, p.max_time, p.max_money, \
     p.options, ua.id AS author_id, pa.email AS author_email, pa.first_name AS author_first, \
     pa.last_name AS author_last, um.id AS manager_id, pmg.email AS manager_email, \
     pmg.first_name AS manager_first, pmg.last_name AS manager_last";
const PROJECT_JOIN: &str = "projects p LEFT JOIN project_folders f ON f.id = p.folder_id \
     LEFT JOIN users ua ON ua.id = p.author_id LEFT JOIN people pa ON pa.id = ua.person_id \
     LEFT JOIN users um ON um.id = p.manager_id LEFT JOIN people pmg ON pmg.id = um.person_id";

/// A row of `project_members`: the project's id and the member.
fn member_of_project(row: &impl DbRow) -> Result<(i64, UserBrief), StorageError> {
    Ok((row.col("project_id")?, user_brief_from(row)?))
}

fn brief(row: &impl DbRow, prefix: &str) -> Result<Option<UserBrief>, StorageError> {
    let id: Option<i64> = row.col(format!("{prefix}_id").as_str())?;
    let Some(id) = id else {
        return Ok(None);
    };
    Ok(Some(UserBrief {
        id,
        email: row.col::<Option<String>>(format!("{prefix}_email").as_str())?.unwrap_or_default(),
        first_name: row.col::<Option<String>>(format!("{prefix}_first").as_str())?.unwrap_or_default(),
        last_name: row.col::<Option<String>>(format!("{prefix}_last").as_str())?.unwrap_or_default(),
    }))
}

fn project_from(row: &impl DbRow) -> Result<ProjectRow, StorageError> {
    Ok(ProjectRow {
        id: row.col("id")?,
        account_id: row.col("account_id")?,
        name: row.col("name")?,
        status: row.col("status")?,
        folder_id: row.col("folder_id")?,
        folder: row.col("folder")?,
        author: brief(row, "author")?,
        manager: brief(row, "manager")?,
        default_executive: row.col("default_executive")?,
        text: row.col("text")?,
        date_added: row.col("date_added")?,
        date_start: row.col("date_start")?,
        date_end: row.col("date_end")?,
        date_closed: row.col("date_closed")?,
        max_time: row.col("max_time")?,
        max_money: row.col("max_money")?,
        options: row.col("options")?,
    })
}

pub(crate) fn user_brief_from(row: &impl DbRow) -> Result<UserBrief, StorageError> {
    Ok(UserBrief {
        id: row.col("user_id")?,
        email: row.col("email")?,
        first_name: row.col("first_name")?,
        last_name: row.col("last_name")?,
    })
}

impl Store {
    /// A project the viewer may see; `None` if it does not exist, is in another account or is not theirs to see.
    pub async fn project(&self, viewer: &Viewer, id: i64) -> Result<Option<ProjectRow>, StorageError> {
        let sql = format!("SELECT {PROJECT_COLUMNS} FROM {PROJECT_JOIN} WHERE {VISIBLE_PROJECT} AND p.id = $4");
        if let Some(rows) = self.read_visible(&sql, viewer, &[&id], |row| project_from(row))? {
            return Ok(rows.into_iter().next());
        }
        on_db!(self, pool, {
            let row = sqlx::query(AssertSqlSafe(sql.as_str()))
                .bind(viewer.account_id)
                .bind(viewer.user_id)
                .bind(i64::from(viewer.admin))
                .bind(id)
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(project_from).transpose()
        })
    }

    /// The projects the viewer may see, oldest first, optionally only those with `status`.
    pub async fn projects(&self, viewer: &Viewer, status: Option<&str>) -> Result<Vec<ProjectRow>, StorageError> {
        let sql = format!(
            "SELECT {PROJECT_COLUMNS} FROM {PROJECT_JOIN} WHERE {VISIBLE_PROJECT} AND ($4 IS NULL OR p.status = $4) \
             ORDER BY p.id"
        );
        if let Some(rows) = self.read_visible(&sql, viewer, &[&status], |row| project_from(row))? {
            return Ok(rows);
        }
        on_db!(self, pool, {
            let rows = sqlx::query(AssertSqlSafe(sql.as_str()))
                .bind(viewer.account_id)
                .bind(viewer.user_id)
                .bind(i64::from(viewer.admin))
                .bind(status)
                .fetch_all(pool)
                .await?;
            rows.iter().map(project_from).collect()
        })
    }

    /// The members of each of `project_ids` as (project id, member), by project then user id: one query.
    pub async fn project_members(&self, project_ids: &[i64]) -> Result<Vec<(i64, UserBrief)>, StorageError> {
        if project_ids.is_empty() {
            return Ok(Vec::new());
        }
        const SQL: &str = "SELECT pm.project_id, u.id AS user_id, pe.email, pe.first_name, pe.last_name \
             FROM project_members pm JOIN users u ON u.id = pm.user_id JOIN people pe ON pe.id = u.person_id \
             WHERE pm.project_id IN (SELECT value FROM json_each($1)) ORDER BY pm.project_id, u.id";
        let ids = ids_json(project_ids);
        if let Some(members) = self.read_direct(SQL, &[&ids], |row| member_of_project(row))? {
            return Ok(members);
        }
        on_db!(self, pool, {
            let rows = sqlx::query(SQL).bind(&ids).fetch_all(pool).await?;
            rows.iter().map(member_of_project).collect()
        })
    }

    /// Creates a project with its members (author, manager and `members`); returns its id.
    pub async fn create_project(&self, new: &NewProject) -> Result<i64, StorageError> {
        on_db!(self, pool, {
            let mut tx = pool.begin().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO projects (account_id, name, status, folder_id, author_id, manager_id, default_executive, \
                 text, date_added, date_start, date_end, max_time, max_money, options) \
                 VALUES ($1, $2, 'active', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
            )
            .bind(new.account_id)
            .bind(&new.name)
            .bind(new.folder_id)
            .bind(new.author_id)
            .bind(new.manager_id)
            .bind(&new.default_executive)
            .bind(&new.text)
            .bind(new.now)
            .bind(&new.date_start)
            .bind(&new.date_end)
            .bind(new.max_time)
            .bind(new.max_money)
            .bind(new.options)
            .fetch_one(&mut *tx)
            .await?;
            let mut members = vec![new.author_id];
            members.extend(new.manager_id);
            members.extend(&new.members);
            tx.insert_members(id, &members).await?;
            tx.commit().await?;
            Ok(id)
        })
    }

    /// Applies `changes` to a project of `account_id`.
    pub async fn update_project(&self, account_id: i64, id: i64, changes: &ProjectChanges) -> Result<(), StorageError> {
        on_db!(self, pool, {
            let mut tx = pool.begin().await?;
            let (set_manager, manager) = match changes.manager_id {
                Some(manager) => (true, manager),
                None => (false, None),
            };
            sqlx::query(
                "UPDATE projects SET name = COALESCE($1, name), folder_id = COALESCE($2, folder_id), \
                 manager_id = CASE WHEN $3 THEN $4 ELSE manager_id END, \
                 default_executive = COALESCE($5, default_executive), text = COALESCE($6, text), \
                 date_start = COALESCE($7, date_start), date_end = COALESCE($8, date_end), \
                 max_time = COALESCE($9, max_time), max_money = COALESCE($10, max_money), \
                 options = COALESCE($11, options) WHERE id = $12 AND account_id = $13",
            )
            .bind(&changes.name)
            .bind(changes.folder_id)
            .bind(set_manager)
            .bind(manager)
            .bind(&changes.default_executive)
            .bind(&changes.text)
            .bind(&changes.date_start)
            .bind(&changes.date_end)
            .bind(changes.max_time)
            .bind(changes.max_money)
            .bind(changes.options)
            .bind(id)
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
            let mut members = changes.members.clone();
            members.extend(manager);
            tx.insert_members(id, &members).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Archives (`archive = true`) or reactivates a project of `account_id`; `false` if it already was.
    pub async fn set_project_archived(
        &self,
        account_id: i64,
        id: i64,
        archive: bool,
        now: i64,
    ) -> Result<bool, StorageError> {
        on_db!(self, pool, {
            let done = if archive {
                sqlx::query(
                    "UPDATE projects SET status = 'archive', date_closed = $1 \
                     WHERE id = $2 AND account_id = $3 AND status <> 'archive'",
                )
                .bind(now)
                .bind(id)
                .bind(account_id)
                .execute(pool)
                .await?
            } else {
                sqlx::query(
                    "UPDATE projects SET status = 'active' WHERE id = $1 AND account_id = $2 AND status = 'archive'",
                )
                .bind(id)
                .bind(account_id)
                .execute(pool)
                .await?
            };
            Ok(done.rows_affected() == 1)
        })
    }

    /// Adds members to a project.
    pub async fn add_project_members(&self, id: i64, user_ids: &[i64]) -> Result<(), StorageError> {
        on_db!(self, pool, {
            let mut tx = pool.begin().await?;
            tx.insert_members(id, user_ids).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Removes members from a project.
    pub async fn remove_project_members(&self, id: i64, user_ids: &[i64]) -> Result<(), StorageError> {
        on_db!(self, pool, {
            sqlx::query(
                "DELETE FROM project_members WHERE project_id = $1 AND user_id IN (SELECT value FROM json_each($2))",
            )
            .bind(id)
            .bind(ids_json(user_ids))
            .execute(pool)
            .await?;
            Ok(())
        })
    }
}

/// Writes inside a transaction of either backend.
trait MembersTx {
    /// Makes members of the project's account members of the project (others and repeats are skipped).
    async fn insert_members(&mut self, project_id: i64, user_ids: &[i64]) -> Result<(), StorageError>;
}

impl_for_tx! {
    impl MembersTx {
        async fn insert_members(&mut self, project_id: i64, user_ids: &[i64]) -> Result<(), StorageError> {
            if user_ids.is_empty() {
                return Ok(());
            }
            sqlx::query(
                "INSERT INTO project_members (project_id, user_id) SELECT $1, value FROM json_each($2) \
                 WHERE value IN (SELECT u.id FROM users u JOIN projects p ON p.account_id = u.account_id \
                 WHERE p.id = $1) ON CONFLICT DO NOTHING",
            )
            .bind(project_id)
            .bind(ids_json(user_ids))
            .execute(&mut **self)
            .await?;
            Ok(())
        }
    }
}
