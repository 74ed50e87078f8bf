//! Tag groups and tags. Task tags and project tags are separate namespaces (`tag_groups.scope`). A group's
//! `kind` is `status` (its tags are mutually exclusive on one task or project), `label`, or empty (project tag
//! groups created without a type, as Worksection records them). A `private` group is seen only by the
//! account's own teams: members of a client team (`teams.client = 1`) do not see it or its tags.

use std::collections::HashMap;

use crate::db::{Backend, DbRow, on_db};

use super::Store;
use crate::error::StorageError;
use crate::model::Viewer;

/// Which namespace a tag group (and its tags) belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TagScope {
    Task,
    Project,
}

impl TagScope {
    pub fn as_str(self) -> &'static str {
        match self {
            TagScope::Task => "task",
            TagScope::Project => "project",
        }
    }

    /// The table linking tags to objects of this scope, and its object column.
    fn link(self) -> (&'static str, &'static str) {
        match self {
            TagScope::Task => ("task_tags", "task_id"),
            TagScope::Project => ("project_tags", "project_id"),
        }
    }
}

/// A tag group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagGroupRow {
    pub id: i64,
    pub scope: TagScope,
    pub title: String,
    /// `status`, `label` or empty.
    pub kind: String,
    /// `public` or `private`.
    pub access: String,
}

impl TagGroupRow {
    /// Whether the group's tags exclude each other on one object.
    pub fn is_status(&self) -> bool {
        self.kind == "status"
    }

    /// The `id_group` of the API's tag objects. Worksection never documented it; the recorded values are `"1"`
    /// for the built-in task workflow group and `"-4"` for the built-in project status group, so it reads as
    /// the identity of a group across accounts. We answer the recorded values for the two built-in groups and,
    /// for every other group, its own id as a string.
    pub fn id_group(&self) -> String {
        BUILTINS
            .iter()
            .find(|b| b.scope == self.scope && b.title == self.title && b.kind == self.kind)
            .map(|b| b.id_group.to_owned())
            .unwrap_or_else(|| self.id.to_string())
    }
}

/// A tag with its group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagRow {
    pub id: i64,
    pub title: String,
    pub group: TagGroupRow,
}

/// A group every account has (as in the recorded account), with its tags in their recorded order.
struct Builtin {
    scope: TagScope,
    title: &'static str,
    kind: &'static str,
    id_group: &'static str,
    tags: &'static [&'static str],
}

const BUILTINS: [Builtin; 2] = [
    Builtin {
        scope: TagScope::Task,
        title: "Basic workflow",
        kind: "status",
        id_group: "1",
        tags: &["To-do", "In progress", "Need approval", "Done"],
    },
    Builtin {
        scope: TagScope::Project,
        title: "Project status",
        kind: "status",
        id_group: "-4",
        tags: &["Backlog", "In progress", "Paused", "Canceled", "Completed"],
    },
];

/// The groups the viewer may see: `?1` = account id, `?2` = user id.
const VISIBLE_GROUP: &str = "g.account_id = $1 AND (g.access = 'public' OR NOT EXISTS (SELECT 1 FROM users cu \
     JOIN teams ct ON ct.id = cu.team_id WHERE cu.id = $2 AND ct.client = 1))";

const TAG_COLUMNS: &str = "t.id, t.title, g.id AS group_id, g.scope, g.title AS group_title, g.kind, g.access";

impl Store {
    /// Creates the built-in tag groups of an account and their tags unless they exist. Cheap when they do (one
    /// read); safe against concurrent callers (the group insert is `ON CONFLICT DO NOTHING` and only the caller
    /// that inserted a group inserts its tags, in the same transaction).
    pub async fn ensure_builtin_tag_groups(&self, account_id: i64) -> Result<(), StorageError> {
        const PRESENT: &str = "SELECT COUNT(*) AS n FROM tag_groups WHERE account_id = $1 \
             AND ((scope = $2 AND title = $3) OR (scope = $4 AND title = $5))";
        let [first, second] = &BUILTINS;
        let direct = {
            let values: [&dyn rusqlite::ToSql; 5] =
                [&account_id, &first.scope.as_str(), &first.title, &second.scope.as_str(), &second.title];
            self.read_direct(PRESENT, &values, |row| row.col::<i64>("n").map_err(StorageError::from))?
        };
        // on every call of the tag actions: the usual answer is that both are there
        if direct.is_some_and(|present| present == [BUILTINS.len() as i64]) {
            return Ok(());
        }
        on_db!(self, pool, {
            let present: i64 = sqlx::query_scalar(PRESENT)
                .bind(account_id)
                .bind(first.scope.as_str())
                .bind(first.title)
                .bind(second.scope.as_str())
                .bind(second.title)
                .fetch_one(pool)
                .await?;
            if present == BUILTINS.len() as i64 {
                return Ok(());
            }
            let mut tx = pool.begin_write().await?;
            for builtin in &BUILTINS {
                let inserted: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO tag_groups (account_id, scope, title, kind, access) VALUES ($1, $2, $3, $4, 'public') \
                     ON CONFLICT DO NOTHING RETURNING id",
                )
                .bind(account_id)
                .bind(builtin.scope.as_str())
                .bind(builtin.title)
                .bind(builtin.kind)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(group_id) = inserted {
                    for title in builtin.tags {
                        sqlx::query("INSERT INTO tags (group_id, title) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                            .bind(group_id)
                            .bind(title)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// The tag groups of a scope the viewer may see, oldest first, optionally of one kind and one access.
    pub async fn tag_groups(
        &self,
        viewer: &Viewer,
        scope: TagScope,
        kind: Option<&str>,
        access: Option<&str>,
    ) -> Result<Vec<TagGroupRow>, StorageError> {
        let sql = format!(
            "SELECT g.id, g.scope, g.title, g.kind, g.access FROM tag_groups g WHERE {VISIBLE_GROUP} \
             AND g.scope = $3 AND ($4 IS NULL OR g.kind = $4) AND ($5 IS NULL OR g.access = $5) ORDER BY g.id"
        );
        let direct = {
            let values: [&dyn rusqlite::ToSql; 5] =
                [&viewer.account_id, &viewer.user_id, &scope.as_str(), &kind, &access];
            self.read_direct(&sql, &values, |row| group_from(row, "id", "title"))?
        };
        if let Some(groups) = direct {
            return Ok(groups);
        }
        on_db!(self, pool, {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(viewer.account_id)
                .bind(viewer.user_id)
                .bind(scope.as_str())
                .bind(kind)
                .bind(access)
                .fetch_all(pool)
                .await?;
            rows.iter().map(|row| group_from(row, "id", "title")).collect()
        })
    }

    /// The tags of a scope the viewer may see, by group then age, optionally of one group, kind and access.
    pub async fn tags(
        &self,
        viewer: &Viewer,
        scope: TagScope,
        group_id: Option<i64>,
        kind: Option<&str>,
        access: Option<&str>,
    ) -> Result<Vec<TagRow>, StorageError> {
        let sql = format!(
            "SELECT {TAG_COLUMNS} FROM tags t JOIN tag_groups g ON g.id = t.group_id WHERE {VISIBLE_GROUP} \
             AND g.scope = $3 AND ($4 IS NULL OR g.id = $4) AND ($5 IS NULL OR g.kind = $5) \
             AND ($6 IS NULL OR g.access = $6) ORDER BY g.id, t.id"
        );
        let direct = {
            let values: [&dyn rusqlite::ToSql; 6] =
                [&viewer.account_id, &viewer.user_id, &scope.as_str(), &group_id, &kind, &access];
            self.read_direct(&sql, &values, |row| tag_from(row))?
        };
        if let Some(tags) = direct {
            return Ok(tags);
        }
        on_db!(self, pool, {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(viewer.account_id)
                .bind(viewer.user_id)
                .bind(scope.as_str())
                .bind(group_id)
                .bind(kind)
                .bind(access)
                .fetch_all(pool)
                .await?;
            rows.iter().map(tag_from).collect()
        })
    }

    /// Creates the groups among `titles` that the account's scope does not have yet (titles compared without
    /// regard to case) with `kind` and `access`; answers every named group, created or existing, in the order
    /// of `titles`.
    pub async fn add_tag_groups(
        &self,
        account_id: i64,
        scope: TagScope,
        titles: &[&str],
        kind: &str,
        access: &str,
    ) -> Result<Vec<TagGroupRow>, StorageError> {
        on_db!(self, pool, {
            let mut tx = pool.begin_write().await?;
            let rows = sqlx::query(
            "SELECT id, scope, title, kind, access FROM tag_groups WHERE account_id = $1 AND scope = $2 ORDER BY id",
        )
        .bind(account_id)
        .bind(scope.as_str())
        .fetch_all(&mut *tx)
        .await?;
            let mut groups: Vec<TagGroupRow> =
                rows.iter().map(|row| group_from(row, "id", "title")).collect::<Result<_, _>>()?;
            let mut answer: Vec<TagGroupRow> = Vec::with_capacity(titles.len());
            for title in titles {
                let key = title.to_lowercase();
                if answer.iter().any(|g| g.title.to_lowercase() == key) {
                    continue;
                }
                if let Some(existing) = groups.iter().find(|g| g.title.to_lowercase() == key) {
                    answer.push(existing.clone());
                    continue;
                }
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO tag_groups (account_id, scope, title, kind, access) VALUES ($1, $2, $3, $4, $5) \
                     RETURNING id",
                )
                .bind(account_id)
                .bind(scope.as_str())
                .bind(title)
                .bind(kind)
                .bind(access)
                .fetch_one(&mut *tx)
                .await?;
                let group = TagGroupRow {
                    id,
                    scope,
                    title: (*title).to_owned(),
                    kind: kind.to_owned(),
                    access: access.to_owned(),
                };
                groups.push(group.clone());
                answer.push(group);
            }
            tx.commit().await?;
            Ok(answer)
        })
    }

    /// Creates the tags among `titles` that the group does not have yet (compared without regard to case);
    /// answers (title, id) of every named tag, created or existing, in the order of `titles`.
    pub async fn add_tags(&self, group_id: i64, titles: &[&str]) -> Result<Vec<(String, i64)>, StorageError> {
        on_db!(self, pool, {
            let mut tx = pool.begin_write().await?;
            let rows = sqlx::query("SELECT id, title FROM tags WHERE group_id = $1 ORDER BY id")
                .bind(group_id)
                .fetch_all(&mut *tx)
                .await?;
            let mut tags: Vec<(String, i64)> =
                rows.iter().map(|row| Ok((row.col("title")?, row.col("id")?))).collect::<Result<_, sqlx::Error>>()?;
            let mut answer: Vec<(String, i64)> = Vec::with_capacity(titles.len());
            for title in titles {
                let key = title.to_lowercase();
                if answer.iter().any(|(t, _)| t.to_lowercase() == key) {
                    continue;
                }
                if let Some(existing) = tags.iter().find(|(t, _)| t.to_lowercase() == key) {
                    answer.push(existing.clone());
                    continue;
                }
                let id: i64 = sqlx::query_scalar("INSERT INTO tags (group_id, title) VALUES ($1, $2) RETURNING id")
                    .bind(group_id)
                    .bind(title)
                    .fetch_one(&mut *tx)
                    .await?;
                tags.push(((*title).to_owned(), id));
                answer.push(((*title).to_owned(), id));
            }
            tx.commit().await?;
            Ok(answer)
        })
    }

    /// Changes the tags of one task or project: removes, for every status group of `plus`, the group's other
    /// tags (statuses exclude each other), adds `plus`, then removes `minus`; in one transaction. The caller
    /// passes tags of `scope` only, at most one status per group in `plus`, and an object of the same account.
    pub async fn change_tags(
        &self,
        scope: TagScope,
        object_id: i64,
        plus: &[i64],
        minus: &[i64],
    ) -> Result<(), StorageError> {
        on_db!(self, pool, {
            let (table, column) = scope.link();
            let plus_json = ids_json(plus);
            let mut tx = pool.begin_write().await?;
            if !plus.is_empty() {
                let exclusive = format!(
                    "DELETE FROM {table} WHERE {column} = $1 AND tag_id NOT IN (SELECT value FROM json_each($2)) \
                     AND tag_id IN (SELECT t.id FROM tags t JOIN tag_groups g ON g.id = t.group_id \
                     WHERE g.kind = 'status' AND t.group_id IN \
                     (SELECT group_id FROM tags WHERE id IN (SELECT value FROM json_each($2))))"
                );
                sqlx::query(sqlx::AssertSqlSafe(exclusive)).bind(object_id).bind(&plus_json).execute(&mut *tx).await?;
                let add = format!(
                    "INSERT INTO {table} ({column}, tag_id) SELECT $1, id FROM tags \
                     WHERE id IN (SELECT value FROM json_each($2)) ON CONFLICT DO NOTHING"
                );
                sqlx::query(sqlx::AssertSqlSafe(add)).bind(object_id).bind(&plus_json).execute(&mut *tx).await?;
            }
            if !minus.is_empty() {
                let remove =
                    format!("DELETE FROM {table} WHERE {column} = $1 AND tag_id IN (SELECT value FROM json_each($2))");
                sqlx::query(sqlx::AssertSqlSafe(remove))
                    .bind(object_id)
                    .bind(ids_json(minus))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// The tags (id, title) of each of these tasks that has any, by group then age; one query.
    pub async fn task_tag_map(&self, task_ids: &[i64]) -> Result<HashMap<i64, Vec<(i64, String)>>, StorageError> {
        self.tag_map(TagScope::Task, task_ids).await
    }

    /// The tags (id, title) of each of these projects that has any, by group then age; one query.
    pub async fn project_tag_map(&self, project_ids: &[i64]) -> Result<HashMap<i64, Vec<(i64, String)>>, StorageError> {
        self.tag_map(TagScope::Project, project_ids).await
    }

    async fn tag_map(
        &self,
        scope: TagScope,
        object_ids: &[i64],
    ) -> Result<HashMap<i64, Vec<(i64, String)>>, StorageError> {
        let mut map: HashMap<i64, Vec<(i64, String)>> = HashMap::new();
        if object_ids.is_empty() {
            return Ok(map);
        }
        let (table, column) = scope.link();
        // The ids travel as one JSON array (`json_each`), so any number of them is one statement.
        let sql = format!(
            "SELECT x.{column} AS object_id, t.id, t.title FROM {table} x JOIN tags t ON t.id = x.tag_id \
             WHERE x.{column} IN (SELECT value FROM json_each($1)) ORDER BY x.{column}, t.group_id, t.id"
        );
        let ids = ids_json(object_ids);
        let direct = self.read_direct(&sql, &[&ids], |row| object_tag(row))?;
        let rows = match direct {
            Some(rows) => rows,
            None => on_db!(self, pool, {
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(&ids).fetch_all(pool).await?;
                rows.iter().map(object_tag).collect::<Result<_, _>>()?
            }),
        };
        for (object_id, tag) in rows {
            map.entry(object_id).or_default().push(tag);
        }
        Ok(map)
    }
}

/// A row of `tag_map`: the object's id, and the tag's id and title.
fn object_tag(row: &impl DbRow) -> Result<(i64, (i64, String)), StorageError> {
    Ok((row.col("object_id")?, (row.col("id")?, row.col("title")?)))
}

/// A list of ids as a JSON array, for `json_each`.
pub(crate) fn ids_json(ids: &[i64]) -> String {
    let mut json = String::with_capacity(ids.len() * 8 + 2);
    json.push('[');
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(&id.to_string());
    }
    json.push(']');
    json
}

fn scope_from(text: &str) -> Result<TagScope, StorageError> {
    match text {
        "task" => Ok(TagScope::Task),
        "project" => Ok(TagScope::Project),
        other => Err(StorageError::Corrupt(format!("unknown tag scope {other:?}"))),
    }
}

fn group_from(row: &impl DbRow, id: &str, title: &str) -> Result<TagGroupRow, StorageError> {
    Ok(TagGroupRow {
        id: row.col(id)?,
        scope: scope_from(&row.col::<String>("scope")?)?,
        title: row.col(title)?,
        kind: row.col("kind")?,
        access: row.col("access")?,
    })
}

fn tag_from(row: &impl DbRow) -> Result<TagRow, StorageError> {
    Ok(TagRow { id: row.col("id")?, title: row.col("title")?, group: group_from(row, "group_id", "group_title")? })
}
