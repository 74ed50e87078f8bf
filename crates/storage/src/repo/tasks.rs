//! Tasks, subtasks and sub-subtasks, with what task lists show beside them (subscribers, relations). Lists are one
//! query for the tasks and one per kind of extra for all listed ids, assembled by the caller. The ids travel as
//! one JSON array: each extra query is driven from `json_each` (`CROSS JOIN` fixes it as the outer loop on SQLite,
//! with the join conditions in `WHERE` so PostgreSQL reads the same text), so the array is parsed once; as the
//! inner side of a join SQLite would parse it again for every row.

use std::collections::HashMap;

use crate::db::{Backend, DbRow, impl_for_tx, on_db};
use sqlx::AssertSqlSafe;
use wsoauth_domain::filter::Expr;

use super::projects::{UserBrief, user_brief_from};
use super::tags::ids_json;
use super::task_query::{Bound, tasks_sql};
use super::{Store, VISIBLE_PROJECT, VISIBLE_TASK};
use crate::error::StorageError;
use crate::model::Viewer;

/// Who carries out a task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskExecutive {
    /// Nobody is assigned (`NOONE`).
    Nobody,
    /// "Anyone" (`ANY`).
    Anyone,
    /// A member (`None` inside when the membership was deleted: shown as nobody).
    User(UserBrief),
}

/// How the executive of a new or changed task is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetExecutive {
    Nobody,
    Anyone,
    User(i64),
}

/// A short task: relations and `parent` show these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskBrief {
    pub id: i64,
    pub project_id: i64,
    /// The top-level task (the task itself when it is one).
    pub top_id: i64,
    pub name: String,
    pub status: String,
    pub priority: i64,
}

/// A task the viewer may see, with its project's name and its parent.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskRow {
    pub id: i64,
    pub project_id: i64,
    pub project_name: String,
    /// `active`, `pending` or `archive`.
    pub project_status: String,
    pub parent_id: Option<i64>,
    /// The top-level task (the task itself when it is one): page paths use it.
    pub top_id: i64,
    /// 0 for a task, 1 for a subtask, 2 for a sub-subtask.
    pub depth: i64,
    pub name: String,
    pub text: String,
    /// `active` or `done`.
    pub status: String,
    pub priority: i64,
    pub author: Option<UserBrief>,
    pub executive: TaskExecutive,
    pub date_added: i64,
    pub date_start: Option<String>,
    pub date_end: Option<String>,
    pub date_closed: Option<i64>,
    pub time_start: Option<String>,
    pub time_end: Option<String>,
    pub max_time: Option<f64>,
    pub max_money: Option<f64>,
    pub hidden: bool,
    /// The parent task, for subtasks (`None` also when the viewer may not see it).
    pub parent: Option<TaskBrief>,
}

impl TaskRow {
    pub fn is_done(&self) -> bool {
        self.status == "done"
    }

    pub fn brief(&self) -> TaskBrief {
        TaskBrief {
            id: self.id,
            project_id: self.project_id,
            top_id: self.top_id,
            name: self.name.clone(),
            status: self.status.clone(),
            priority: self.priority,
        }
    }
}

/// Which tasks to list. Every list is limited to what the viewer may see; `Default` is every visible task of
/// every project (all levels, archived projects included).
#[derive(Clone, Debug, Default)]
pub struct TaskQuery<'a> {
    /// Only tasks of this project.
    pub project_id: Option<i64>,
    /// Only this task.
    pub id: Option<i64>,
    /// Only the subtasks and sub-subtasks of this task.
    pub below: Option<i64>,
    /// This task and everything below it.
    pub subtree: Option<i64>,
    /// Only top-level tasks.
    pub top_level: bool,
    /// Only tasks with this status (`active` or `done`).
    pub status: Option<&'a str>,
    /// Leave out the tasks of archived projects.
    pub skip_archived: bool,
    /// Only tasks by the member with this (lowercase) email.
    pub author_email: Option<&'a str>,
    /// Only tasks with this executive: a (lowercase) email, `ANY` or `NOONE`.
    pub executive: Option<&'a str>,
    /// A `search_tasks` filter.
    pub filter: Option<&'a Expr>,
    /// At most this many rows.
    pub limit: Option<i64>,
}

/// A task to create. The author is made a subscriber, so is an executive who is a member.
#[derive(Clone, Debug)]
pub struct NewTask {
    pub account_id: i64,
    pub project_id: i64,
    pub parent_id: Option<i64>,
    pub name: String,
    pub text: String,
    /// `active` or `done`.
    pub status: String,
    pub priority: i64,
    pub author_id: i64,
    pub executive: SetExecutive,
    pub date_added: i64,
    pub date_start: Option<String>,
    pub date_end: Option<String>,
    pub date_closed: Option<i64>,
    pub max_time: Option<f64>,
    pub max_money: Option<f64>,
    /// More subscribers.
    pub subscribers: Vec<i64>,
    /// `Some`: the task is hidden from everybody but its author and these members.
    pub visible_to: Option<Vec<i64>>,
}

impl NewTask {
    /// An active top-level task with priority 1 and nobody assigned.
    pub fn new(account_id: i64, project_id: i64, author_id: i64, name: &str, now: i64) -> NewTask {
        NewTask {
            account_id,
            project_id,
            parent_id: None,
            name: name.to_owned(),
            text: String::new(),
            status: "active".into(),
            priority: 1,
            author_id,
            executive: SetExecutive::Nobody,
            date_added: now,
            date_start: None,
            date_end: None,
            date_closed: None,
            max_time: None,
            max_money: None,
            subscribers: Vec::new(),
            visible_to: None,
        }
    }
}

/// Why a task was not created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateTaskError {
    /// The parent does not exist (in this project).
    ParentMissing,
    /// The parent is done.
    ParentClosed,
    /// The parent is a sub-subtask: nothing nests deeper.
    TooDeep,
}

/// Changes to a task; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct TaskChanges {
    pub name: Option<String>,
    pub priority: Option<i64>,
    pub executive: Option<SetExecutive>,
    pub date_start: Option<String>,
    pub date_end: Option<String>,
    pub date_closed: Option<i64>,
    pub max_time: Option<f64>,
    pub max_money: Option<f64>,
}

/// Why a task was not completed or reopened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskStateError {
    /// Completing a done task, or reopening an active one.
    AlreadyThere,
    /// Completing a task with an open subtask.
    OpenChildren,
    /// Reopening a subtask of a done task.
    ParentDone,
    /// The task is gone.
    Missing,
}

/// A dependency of a listed task on another task the viewer may see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskLink {
    /// The listed task.
    pub task_id: i64,
    /// `true`: the other task comes before (`relations.from`); `false`: after (`relations.to`).
    pub inbound: bool,
    /// `finish-to-start` or `start-to-start`.
    pub kind: String,
    pub other: TaskBrief,
}

fn user_at(row: &impl DbRow, prefix: &str, id_column: &str) -> Result<Option<UserBrief>, StorageError> {
    let id: Option<i64> = row.col(id_column)?;
    let Some(id) = id else {
        return Ok(None);
    };
    let text = |suffix: &str| -> Result<String, StorageError> {
        Ok(row.col::<Option<String>>(format!("{prefix}_{suffix}").as_str())?.unwrap_or_default())
    };
    Ok(Some(UserBrief { id, email: text("email")?, first_name: text("first")?, last_name: text("last")? }))
}

/// A row of `task_subscribers`: the task's id and the subscriber.
fn subscriber_from(row: &impl DbRow) -> Result<(i64, UserBrief), StorageError> {
    Ok((row.col("task_id")?, user_brief_from(row)?))
}

/// A row of `task_links`.
fn link_from(row: &impl DbRow) -> Result<TaskLink, StorageError> {
    Ok(TaskLink {
        task_id: row.col("owner")?,
        inbound: row.col::<i64>("inbound")? != 0,
        kind: row.col("kind")?,
        other: brief_from(row)?,
    })
}

fn task_from(row: &impl DbRow) -> Result<TaskRow, StorageError> {
    let executive = if row.col::<i64>("executive_any")? != 0 {
        TaskExecutive::Anyone
    } else {
        match user_at(row, "executive", "executive_id")? {
            Some(user) => TaskExecutive::User(user),
            None => TaskExecutive::Nobody,
        }
    };
    let parent = match row.col::<Option<i64>>("parent_task_id")? {
        Some(id) => Some(TaskBrief {
            id,
            project_id: row.col("project_id")?,
            top_id: row.col("parent_top_id")?,
            name: row.col("parent_name")?,
            status: row.col("parent_status")?,
            priority: row.col("parent_priority")?,
        }),
        None => None,
    };
    Ok(TaskRow {
        id: row.col("id")?,
        project_id: row.col("project_id")?,
        project_name: row.col("project_name")?,
        project_status: row.col("project_status")?,
        parent_id: row.col("parent_id")?,
        top_id: row.col("top_id")?,
        depth: row.col("depth")?,
        name: row.col("name")?,
        text: row.col("text")?,
        status: row.col("status")?,
        priority: row.col("priority")?,
        author: user_at(row, "author", "author_id")?,
        executive,
        date_added: row.col("date_added")?,
        date_start: row.col("date_start")?,
        date_end: row.col("date_end")?,
        date_closed: row.col("date_closed")?,
        time_start: row.col("time_start")?,
        time_end: row.col("time_end")?,
        max_time: row.col("max_time")?,
        max_money: row.col("max_money")?,
        hidden: row.col::<i64>("hidden")? != 0,
        parent,
    })
}

fn brief_from(row: &impl DbRow) -> Result<TaskBrief, StorageError> {
    Ok(TaskBrief {
        id: row.col("id")?,
        project_id: row.col("project_id")?,
        top_id: row.col("top_id")?,
        name: row.col("name")?,
        status: row.col("status")?,
        priority: row.col("priority")?,
    })
}

fn executive_columns(executive: SetExecutive) -> (Option<i64>, i64) {
    match executive {
        SetExecutive::Nobody => (None, 0),
        SetExecutive::Anyone => (None, 1),
        SetExecutive::User(id) => (Some(id), 0),
    }
}

/// Writes inside a transaction of either backend.
trait TaskTx {
    /// Inserts one task (parent already checked); returns its id.
    async fn insert_task(&mut self, new: &NewTask) -> Result<i64, StorageError>;
    /// Links members of the task's account to a task in `table` (`task_subscribers` or `task_visibility`).
    async fn link_users(&mut self, table: &'static str, task_id: i64, user_ids: &[i64]) -> Result<(), StorageError>;
}

impl_for_tx! {
    impl TaskTx {
        async fn insert_task(&mut self, new: &NewTask) -> Result<i64, StorageError> {
            let (executive_id, executive_any) = executive_columns(new.executive);
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO tasks (account_id, project_id, parent_id, top_id, depth, name, text, status, priority, \
                 author_id, executive_id, executive_any, date_added, date_start, date_end, date_closed, max_time, \
                 max_money, hidden) VALUES ($1, $2, $3, (SELECT COALESCE(top_id, id) FROM tasks WHERE id = $3), \
                 COALESCE((SELECT depth + 1 FROM tasks WHERE id = $3), 0), $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
                 $14, $15, $16, $17) RETURNING id",
            )
            .bind(new.account_id)
            .bind(new.project_id)
            .bind(new.parent_id)
            .bind(&new.name)
            .bind(&new.text)
            .bind(&new.status)
            .bind(new.priority)
            .bind(new.author_id)
            .bind(executive_id)
            .bind(executive_any)
            .bind(new.date_added)
            .bind(&new.date_start)
            .bind(&new.date_end)
            .bind(new.date_closed)
            .bind(new.max_time)
            .bind(new.max_money)
            .bind(i64::from(new.visible_to.is_some()))
            .fetch_one(&mut **self)
            .await?;
            if new.parent_id.is_none() {
                sqlx::query("UPDATE tasks SET top_id = id WHERE id = $1").bind(id).execute(&mut **self).await?;
            }
            let mut subscribers = vec![new.author_id];
            subscribers.extend(executive_id);
            subscribers.extend(&new.subscribers);
            self.link_users("task_subscribers", id, &subscribers).await?;
            if let Some(visible_to) = &new.visible_to {
                let mut people = vec![new.author_id];
                people.extend(visible_to);
                self.link_users("task_visibility", id, &people).await?;
            }
            Ok(id)
        }

        async fn link_users(
            &mut self,
            table: &'static str,
            task_id: i64,
            user_ids: &[i64],
        ) -> Result<(), StorageError> {
            if user_ids.is_empty() {
                return Ok(());
            }
            let sql = format!(
                "INSERT INTO {table} (task_id, user_id) SELECT $1, value FROM json_each($2) \
                 WHERE value IN (SELECT u.id FROM users u JOIN tasks t ON t.account_id = u.account_id WHERE t.id = $1) \
                 ON CONFLICT DO NOTHING"
            );
            sqlx::query(AssertSqlSafe(sql)).bind(task_id).bind(ids_json(user_ids)).execute(&mut **self).await?;
            Ok(())
        }
    }
}

impl Store {
    /// The tasks the viewer may see that match `query`, oldest first. A task is visible when its project is
    /// (see `VISIBLE_PROJECT`) and neither it nor a task above it is hidden from the viewer.
    pub async fn tasks(&self, viewer: &Viewer, query: &TaskQuery<'_>) -> Result<Vec<TaskRow>, StorageError> {
        let sql = tasks_sql(query);
        let direct = {
            let args: Vec<&dyn rusqlite::ToSql> = sql.args.iter().map(|arg| arg as &dyn rusqlite::ToSql).collect();
            self.read_visible(&sql.text, viewer, &args, |row| task_from(row))?
        };
        if let Some(rows) = direct {
            return Ok(rows);
        }
        on_db!(self, pool, {
            let rows = sql.query(viewer).fetch_all(pool).await?;
            rows.iter().map(task_from).collect()
        })
    }

    /// One task the viewer may see.
    pub async fn task(&self, viewer: &Viewer, id: i64) -> Result<Option<TaskRow>, StorageError> {
        let query = TaskQuery { id: Some(id), ..TaskQuery::default() };
        Ok(self.tasks(viewer, &query).await?.pop())
    }

    /// Creates a task or subtask (checking, in the same transaction, that the parent is open and not a
    /// sub-subtask); returns its id. The transaction takes the write lock first (`BEGIN IMMEDIATE`): a read
    /// followed by a write in a deferred one fails at once when another writer committed in between.
    pub async fn create_task(&self, new: &NewTask) -> Result<Result<i64, CreateTaskError>, StorageError> {
        on_db!(self, pool, {
            let mut tx = pool.begin_write().await?;
            if let Some(parent) = new.parent_id {
                let row = sqlx::query(
                    "SELECT status, depth FROM tasks WHERE id = $1 AND project_id = $2 AND account_id = $3",
                )
                .bind(parent)
                .bind(new.project_id)
                .bind(new.account_id)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else {
                    return Ok(Err(CreateTaskError::ParentMissing));
                };
                if row.col::<String>("status")? != "active" {
                    return Ok(Err(CreateTaskError::ParentClosed));
                }
                if row.col::<i64>("depth")? >= 2 {
                    return Ok(Err(CreateTaskError::TooDeep));
                }
            }
            let id = tx.insert_task(new).await?;
            tx.commit().await?;
            Ok(Ok(id))
        })
    }

    /// Inserts many tasks in one transaction (seeding, tests) without checking parents beyond their existence;
    /// returns their ids in order. A task may name an earlier one of the same call as parent only by id, so
    /// create parents in an earlier call.
    pub async fn insert_tasks(&self, tasks: &[NewTask]) -> Result<Vec<i64>, StorageError> {
        on_db!(self, pool, {
            let mut tx = pool.begin_write().await?;
            let mut ids = Vec::with_capacity(tasks.len());
            for new in tasks {
                ids.push(tx.insert_task(new).await?);
            }
            tx.commit().await?;
            Ok(ids)
        })
    }

    /// Applies `changes` to a task of the account; a newly assigned executive is subscribed.
    pub async fn update_task(&self, account_id: i64, id: i64, changes: &TaskChanges) -> Result<(), StorageError> {
        on_db!(self, pool, {
            let mut tx = pool.begin_write().await?;
            let (set_executive, executive_id, executive_any) = match changes.executive {
                Some(executive) => {
                    let (user, any) = executive_columns(executive);
                    (true, user, any)
                }
                None => (false, None, 0),
            };
            sqlx::query(
                "UPDATE tasks SET name = COALESCE($1, name), priority = COALESCE($2, priority), \
                 executive_id = CASE WHEN $3 THEN $4 ELSE executive_id END, \
                 executive_any = CASE WHEN $3 THEN $5 ELSE executive_any END, \
                 date_start = COALESCE($6, date_start), date_end = COALESCE($7, date_end), \
                 date_closed = COALESCE($8, date_closed), max_time = COALESCE($9, max_time), \
                 max_money = COALESCE($10, max_money) WHERE id = $11 AND account_id = $12",
            )
            .bind(&changes.name)
            .bind(changes.priority)
            .bind(set_executive)
            .bind(executive_id)
            .bind(executive_any)
            .bind(&changes.date_start)
            .bind(&changes.date_end)
            .bind(changes.date_closed)
            .bind(changes.max_time)
            .bind(changes.max_money)
            .bind(id)
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
            if let Some(user) = executive_id {
                tx.link_users("task_subscribers", id, &[user]).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Marks a task done, unless it already is or a subtask of it is open (one conditional write under the write
    /// lock).
    pub async fn complete_task(
        &self,
        account_id: i64,
        id: i64,
        now: i64,
    ) -> Result<Result<(), TaskStateError>, StorageError> {
        on_db!(self, pool, {
            // Under the write lock that `create_task` takes too: on PostgreSQL a subtask being added (its parent
            // seen open) would otherwise be invisible to this `NOT EXISTS` until it commits under a done parent.
            let mut tx = pool.begin_write().await?;
            let done = sqlx::query(
                "UPDATE tasks SET status = 'done', date_closed = $1 WHERE id = $2 AND account_id = $3 \
                 AND status = 'active' AND NOT EXISTS \
                 (SELECT 1 FROM tasks c WHERE c.parent_id = tasks.id AND c.status = 'active')",
            )
            .bind(now)
            .bind(id)
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            if done.rows_affected() == 1 {
                return Ok(Ok(()));
            }
            let row = sqlx::query(
            "SELECT t.status, EXISTS (SELECT 1 FROM tasks c WHERE c.parent_id = t.id AND c.status = 'active') AS open \
             FROM tasks t WHERE t.id = $1 AND t.account_id = $2",
        )
        .bind(id)
        .bind(account_id)
        .fetch_optional(pool)
        .await?;
            Ok(Err(match row {
                None => TaskStateError::Missing,
                Some(row) if row.col::<String>("status")? == "done" => TaskStateError::AlreadyThere,
                Some(row) if row.col::<i64>("open")? != 0 => TaskStateError::OpenChildren,
                // Raced with another change; report it as the likeliest reason.
                Some(_) => TaskStateError::AlreadyThere,
            }))
        })
    }

    /// Reopens a done task, unless its parent is done (one conditional write under the write lock).
    pub async fn reopen_task(&self, account_id: i64, id: i64) -> Result<Result<(), TaskStateError>, StorageError> {
        on_db!(self, pool, {
            // Under the write lock, like `complete_task`: the parent's state cannot change under this check.
            let mut tx = pool.begin_write().await?;
            let done = sqlx::query(
                "UPDATE tasks SET status = 'active' WHERE id = $1 AND account_id = $2 AND status = 'done' \
                 AND (parent_id IS NULL OR EXISTS (SELECT 1 FROM tasks pt WHERE pt.id = tasks.parent_id \
                 AND pt.status = 'active'))",
            )
            .bind(id)
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            if done.rows_affected() == 1 {
                return Ok(Ok(()));
            }
            let row = sqlx::query("SELECT status FROM tasks WHERE id = $1 AND account_id = $2")
                .bind(id)
                .bind(account_id)
                .fetch_optional(pool)
                .await?;
            Ok(Err(match row {
                None => TaskStateError::Missing,
                Some(row) if row.col::<String>("status")? == "active" => TaskStateError::AlreadyThere,
                Some(_) => TaskStateError::ParentDone,
            }))
        })
    }

    /// Subscribes a member of the task's account to it (again is fine).
    pub async fn subscribe_task(&self, task_id: i64, user_id: i64) -> Result<(), StorageError> {
        on_db!(self, pool, {
            let mut tx = pool.begin_write().await?;
            tx.link_users("task_subscribers", task_id, &[user_id]).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Unsubscribes a member from a task (not subscribed is fine).
    pub async fn unsubscribe_task(&self, task_id: i64, user_id: i64) -> Result<(), StorageError> {
        on_db!(self, pool, {
            sqlx::query("DELETE FROM task_subscribers WHERE task_id = $1 AND user_id = $2")
                .bind(task_id)
                .bind(user_id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// The subscribers of each of these tasks, by task then user id: one query.
    pub async fn task_subscribers(&self, task_ids: &[i64]) -> Result<HashMap<i64, Vec<UserBrief>>, StorageError> {
        let mut map: HashMap<i64, Vec<UserBrief>> = HashMap::new();
        if task_ids.is_empty() {
            return Ok(map);
        }
        const SQL: &str = "SELECT s.task_id, u.id AS user_id, pe.email, pe.first_name, pe.last_name \
             FROM json_each($1) j CROSS JOIN task_subscribers s JOIN users u ON u.id = s.user_id \
             JOIN people pe ON pe.id = u.person_id WHERE s.task_id = j.value ORDER BY s.task_id, u.id";
        let ids = ids_json(task_ids);
        let direct = self.read_direct(SQL, &[&ids], |row| subscriber_from(row))?;
        let rows = match direct {
            Some(rows) => rows,
            None => on_db!(self, pool, {
                let rows = sqlx::query(SQL).bind(&ids).fetch_all(pool).await?;
                rows.iter().map(subscriber_from).collect::<Result<_, _>>()?
            }),
        };
        for (task_id, user) in rows {
            map.entry(task_id).or_default().push(user);
        }
        Ok(map)
    }

    /// The dependencies of each of these tasks on tasks the viewer may see: one query.
    pub async fn task_links(&self, viewer: &Viewer, task_ids: &[i64]) -> Result<Vec<TaskLink>, StorageError> {
        if task_ids.is_empty() {
            return Ok(Vec::new());
        }
        let other = format!(
            "t.id, t.project_id, COALESCE(t.top_id, t.id) AS top_id, t.name, t.status, t.priority \
             FROM json_each($4) j CROSS JOIN task_relations r CROSS JOIN tasks t \
             JOIN projects p ON p.id = t.project_id \
             WHERE {{own}} = j.value AND t.id = {{other}} AND t.account_id = $1 AND {VISIBLE_PROJECT} \
             AND {VISIBLE_TASK}"
        );
        let inbound = other.replace("{other}", "r.from_task").replace("{own}", "r.to_task");
        let outbound = other.replace("{other}", "r.to_task").replace("{own}", "r.from_task");
        let sql = format!(
            "SELECT r.to_task AS owner, 1 AS inbound, r.kind, {inbound} UNION ALL \
             SELECT r.from_task AS owner, 0 AS inbound, r.kind, {outbound} ORDER BY 1, 2 DESC, 4"
        );
        let ids = ids_json(task_ids);
        if let Some(links) = self.read_visible(&sql, viewer, &[&ids], |row| link_from(row))? {
            return Ok(links);
        }
        on_db!(self, pool, {
            let rows = sqlx::query(AssertSqlSafe(sql.as_str()))
                .bind(viewer.account_id)
                .bind(viewer.user_id)
                .bind(i64::from(viewer.admin))
                .bind(&ids)
                .fetch_all(pool)
                .await?;
            rows.iter().map(link_from).collect()
        })
    }

    /// Records that `to_task` depends on `from_task` (`finish-to-start` or `start-to-start`).
    pub async fn relate_tasks(&self, from_task: i64, to_task: i64, kind: &str) -> Result<(), StorageError> {
        on_db!(self, pool, {
            sqlx::query(
                "INSERT INTO task_relations (from_task, to_task, kind) VALUES ($1, $2, $3) \
                 ON CONFLICT (from_task, to_task) DO UPDATE SET kind = excluded.kind",
            )
            .bind(from_task)
            .bind(to_task)
            .bind(kind)
            .execute(pool)
            .await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::direct::times_reprepared;
    use rusqlite::ToSql;

    /// The task list runs on every `get_tasks`: SQLite must plan it once per connection, not on each execution
    /// (it does when a bound value shapes the plan, as a `LIMIT` parameter did), and the check sees the difference.
    #[tokio::test]
    async fn the_task_list_is_planned_once() {
        let dir = std::env::temp_dir().join(format!("wsoauth-plan-tasks-{}", std::process::id()));
        let path = dir.join("plan.db");
        Store::open(&format!("sqlite://{}", path.display())).await.unwrap().close().await;
        let query = TaskQuery { project_id: Some(1), status: Some("active"), limit: Some(101), ..TaskQuery::default() };
        let sql = tasks_sql(&query);
        assert!(sql.text.ends_with(" LIMIT 101"), "{}", sql.text);
        let runs: [&[&dyn ToSql]; 3] =
            [&[&1, &1000, &0, &1, &"active"], &[&2, &1001, &1, &7, &"done"], &[&1, &1000, &0, &1, &"active"]];
        assert_eq!(times_reprepared(&path, &sql.text, &runs), 0);

        let bound_limit = sql.text.replace(" LIMIT 101", " LIMIT $6");
        let runs: [&[&dyn ToSql]; 2] = [&[&1, &1000, &0, &1, &"active", &101], &[&1, &1000, &0, &2, &"active", &101]];
        assert!(times_reprepared(&path, &bound_limit, &runs) > 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
