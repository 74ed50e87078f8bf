//! Comments on tasks. A comment is seen by whoever sees its task, unless it is hidden: then only by its author
//! and the people listed in `comment_visibility`.

use std::collections::HashMap;

use crate::db::{DbRow, on_db};

use super::projects::{UserBrief, user_brief_from};
use super::tags::ids_json;
use super::{Store, VISIBLE_PROJECT, VISIBLE_TASK};
use crate::error::StorageError;
use crate::model::Viewer;

/// Where a task the viewer may see lives (what a comment's page needs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommentTask {
    pub id: i64,
    pub project_id: i64,
    /// The top-level task (the task itself when it is one).
    pub top_id: i64,
}

/// A comment with its task's location and its author (`None` when the author's membership was deleted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommentRow {
    pub id: i64,
    pub task: CommentTask,
    pub text: String,
    pub date_added: i64,
    pub author: Option<UserBrief>,
}

/// The comments `c` the viewer may see (`?2` = user id), in a task they may see.
const VISIBLE_COMMENT: &str = "(c.hidden = 0 OR c.author_id = $2 OR \
     EXISTS (SELECT 1 FROM comment_visibility cv WHERE cv.comment_id = c.id AND cv.user_id = $2))";

const COMMENT_COLUMNS: &str = "c.id, c.task_id, t.project_id, COALESCE(t.top_id, t.id) AS top_id, c.text, \
     c.date_added, u.id AS user_id, pe.email, pe.first_name, pe.last_name";
const COMMENT_JOIN: &str = "comments c JOIN tasks t ON t.id = c.task_id JOIN projects p ON p.id = t.project_id \
     LEFT JOIN users u ON u.id = c.author_id LEFT JOIN people pe ON pe.id = u.person_id";

impl Store {
    /// The task, if the viewer may see it (its project visible to them, and neither the task nor the tasks above it
    /// hidden from them).
    pub async fn comment_task(&self, viewer: &Viewer, task_id: i64) -> Result<Option<CommentTask>, StorageError> {
        let sql = format!(
            "SELECT t.id, t.project_id, COALESCE(t.top_id, t.id) AS top_id FROM tasks t \
             JOIN projects p ON p.id = t.project_id WHERE t.id = $4 AND t.account_id = $1 \
             AND {VISIBLE_PROJECT} AND {VISIBLE_TASK}"
        );
        if let Some(rows) = self.read_visible(&sql, viewer, &[&task_id], |row| comment_task_from(row))? {
            return Ok(rows.into_iter().next());
        }
        on_db!(self, pool, {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(viewer.account_id)
                .bind(viewer.user_id)
                .bind(i64::from(viewer.admin))
                .bind(task_id)
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(comment_task_from).transpose()
        })
    }

    /// The comments of a task the viewer may see, newest first (as Worksection lists them).
    pub async fn comments(&self, viewer: &Viewer, task_id: i64) -> Result<Vec<CommentRow>, StorageError> {
        let sql = format!(
            "SELECT {COMMENT_COLUMNS} FROM {COMMENT_JOIN} WHERE c.task_id = $4 AND {VISIBLE_PROJECT} \
             AND {VISIBLE_TASK} AND {VISIBLE_COMMENT} ORDER BY c.id DESC"
        );
        if let Some(comments) = self.read_visible(&sql, viewer, &[&task_id], |row| comment_from(row))? {
            return Ok(comments);
        }
        on_db!(self, pool, {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(viewer.account_id)
                .bind(viewer.user_id)
                .bind(i64::from(viewer.admin))
                .bind(task_id)
                .fetch_all(pool)
                .await?;
            rows.iter().map(comment_from).collect()
        })
    }

    /// The last `per_task` comments the viewer may see of each of these tasks (newest first), for task lists
    /// (`extra=comments`, `has_comments`); tasks without a visible comment are absent. One query.
    pub async fn comment_map(
        &self,
        viewer: &Viewer,
        task_ids: &[i64],
        per_task: usize,
    ) -> Result<HashMap<i64, Vec<CommentRow>>, StorageError> {
        let mut map: HashMap<i64, Vec<CommentRow>> = HashMap::new();
        if task_ids.is_empty() || per_task == 0 {
            return Ok(map);
        }
        let sql = format!(
            "SELECT * FROM (SELECT {COMMENT_COLUMNS}, \
             ROW_NUMBER() OVER (PARTITION BY c.task_id ORDER BY c.id DESC) \
             AS n FROM {COMMENT_JOIN} WHERE c.task_id IN (SELECT value FROM json_each($4)) AND {VISIBLE_PROJECT} \
             AND {VISIBLE_TASK} AND {VISIBLE_COMMENT}) AS ranked WHERE n <= $5 ORDER BY task_id, id DESC"
        );
        let ids = ids_json(task_ids);
        let per_task = i64::try_from(per_task).unwrap_or(i64::MAX);
        let direct = self.read_visible(&sql, viewer, &[&ids, &per_task], |row| comment_from(row))?;
        let comments = match direct {
            Some(comments) => comments,
            None => on_db!(self, pool, {
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                    .bind(viewer.account_id)
                    .bind(viewer.user_id)
                    .bind(i64::from(viewer.admin))
                    .bind(&ids)
                    .bind(per_task)
                    .fetch_all(pool)
                    .await?;
                rows.iter().map(comment_from).collect::<Result<_, _>>()?
            }),
        };
        for comment in comments {
            map.entry(comment.task.id).or_default().push(comment);
        }
        Ok(map)
    }

    /// Stores a comment by `author_id`; `visible_to` (besides the author) makes it hidden from everybody else.
    /// Returns its id.
    pub async fn insert_comment(
        &self,
        task_id: i64,
        author_id: i64,
        text: &str,
        visible_to: Option<&[i64]>,
        now: i64,
    ) -> Result<i64, StorageError> {
        on_db!(self, pool, {
            let mut tx = pool.begin().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO comments (task_id, author_id, text, date_added, hidden) VALUES ($1, $2, $3, $4, $5) \
                 RETURNING id",
            )
            .bind(task_id)
            .bind(author_id)
            .bind(text)
            .bind(now)
            .bind(i64::from(visible_to.is_some()))
            .fetch_one(&mut *tx)
            .await?;
            if let Some(users) = visible_to.filter(|users| !users.is_empty()) {
                sqlx::query(
                    "INSERT INTO comment_visibility (comment_id, user_id) SELECT $1, value FROM json_each($2) \
                     WHERE true ON CONFLICT DO NOTHING",
                )
                .bind(id)
                .bind(ids_json(users))
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(id)
        })
    }
}

fn comment_task_from(row: &impl DbRow) -> Result<CommentTask, StorageError> {
    Ok(CommentTask { id: row.col("id")?, project_id: row.col("project_id")?, top_id: row.col("top_id")? })
}

fn comment_from(row: &impl DbRow) -> Result<CommentRow, StorageError> {
    let author = match row.col::<Option<i64>>("user_id")? {
        Some(_) => Some(user_brief_from(row)?),
        None => None,
    };
    Ok(CommentRow {
        id: row.col("id")?,
        task: CommentTask { id: row.col("task_id")?, project_id: row.col("project_id")?, top_id: row.col("top_id")? },
        text: row.col("text")?,
        date_added: row.col("date_added")?,
        author,
    })
}
