//! The statement of a task list (`Store::tasks`): the viewer's visibility, the query's scope and its filter
//! (`wsoauth_domain::filter`), built as SQL text and the values of its parameters, for either backend.

use sqlx::AssertSqlSafe;
use wsoauth_domain::dates::date_start_unix;
use wsoauth_domain::filter::{Condition, DateField, DateOp, Expr, IntField, NameOp};

use super::tasks::TaskQuery;
use super::{VISIBLE_PROJECT, VISIBLE_TASK};
use crate::model::Viewer;

const TASK_COLUMNS: &str = "t.id, t.project_id, p.name AS project_name, p.status AS project_status, t.parent_id, \
     COALESCE(t.top_id, t.id) AS top_id, t.depth, t.name, t.text, t.status, t.priority, \
     t.author_id, pa.email AS author_email, pa.first_name AS author_first, pa.last_name AS author_last, \
     t.executive_any, ue.id AS executive_id, pe.email AS executive_email, pe.first_name AS executive_first, \
     pe.last_name AS executive_last, t.date_added, t.date_start, t.date_end, t.date_closed, t.time_start, \
     t.time_end, t.max_time, t.max_money, t.hidden, \
     pt.id AS parent_task_id, COALESCE(pt.top_id, pt.id) AS parent_top_id, pt.name AS parent_name, \
     pt.status AS parent_status, pt.priority AS parent_priority";

const TASK_JOIN: &str = "tasks t JOIN projects p ON p.id = t.project_id \
     LEFT JOIN users ua ON ua.id = t.author_id LEFT JOIN people pa ON pa.id = ua.person_id \
     LEFT JOIN users ue ON ue.id = t.executive_id LEFT JOIN people pe ON pe.id = ue.person_id \
     LEFT JOIN tasks pt ON pt.id = t.parent_id";

/// A value bound to a generated statement.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Arg {
    Int(i64),
    Text(String),
}

impl rusqlite::ToSql for Arg {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Arg::Int(value) => value.to_sql(),
            Arg::Text(value) => value.to_sql(),
        }
    }
}

/// SQL under construction: text and the values of its parameters, numbered after the viewer's `?1`..`?3`.
#[derive(Default)]
pub(super) struct Sql {
    pub(super) text: String,
    pub(super) args: Vec<Arg>,
}

impl Sql {
    /// Appends a placeholder for `arg`.
    fn arg(&mut self, arg: Arg) -> &mut Self {
        self.args.push(arg);
        let n = self.args.len() + 3;
        self.text.push_str(&format!("${n}"));
        self
    }

    fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    fn int(&mut self, value: i64) -> &mut Self {
        self.arg(Arg::Int(value))
    }

    fn string(&mut self, value: &str) -> &mut Self {
        self.arg(Arg::Text(value.to_owned()))
    }

    /// `column IN (?, ?, ...)`.
    fn int_list(&mut self, column: &str, values: &[i64]) {
        self.push(column).push(" IN (");
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.int(*value);
        }
        self.push(")");
    }
}

/// Binds a generated statement's values, for either backend.
pub(super) trait Bound<'q, DB: sqlx::Database> {
    fn query(&'q self, viewer: &Viewer) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>;
}

macro_rules! bound {
    ($db:ty) => {
        impl<'q> Bound<'q, $db> for Sql {
            fn query(&'q self, viewer: &Viewer) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments> {
                let mut query = sqlx::query(AssertSqlSafe(self.text.as_str()))
                    .bind(viewer.account_id)
                    .bind(viewer.user_id)
                    .bind(i64::from(viewer.admin));
                for arg in &self.args {
                    query = match arg {
                        Arg::Int(value) => query.bind(*value),
                        Arg::Text(value) => query.bind(value.as_str()),
                    };
                }
                query
            }
        }
    };
}
bound!(sqlx::Sqlite);
bound!(sqlx::Postgres);

/// The statement that lists the tasks `query` asks for, after the viewer's `$1`..`$3`.
pub(super) fn tasks_sql(query: &TaskQuery<'_>) -> Sql {
    let mut sql = Sql::default();
    sql.push(&format!(
        "SELECT {TASK_COLUMNS} FROM {TASK_JOIN} WHERE t.account_id = $1 AND {VISIBLE_PROJECT} AND {VISIBLE_TASK}"
    ));
    if let Some(project) = query.project_id {
        sql.push(" AND t.project_id = ").int(project);
    }
    if let Some(id) = query.id {
        sql.push(" AND t.id = ").int(id);
    }
    if let Some(above) = query.below {
        sql.push(" AND (t.parent_id = ").int(above);
        sql.push(" OR t.parent_id IN (SELECT c.id FROM tasks c WHERE c.parent_id = ").int(above).push("))");
    }
    if let Some(root) = query.subtree {
        sql.push(" AND (t.id = ").int(root).push(" OR t.parent_id = ").int(root);
        sql.push(" OR t.parent_id IN (SELECT c.id FROM tasks c WHERE c.parent_id = ").int(root).push("))");
    }
    if query.top_level {
        sql.push(" AND t.parent_id IS NULL");
    }
    if let Some(status) = query.status {
        sql.push(" AND t.status = ").string(status);
    }
    if query.skip_archived {
        sql.push(" AND p.status <> 'archive'");
    }
    if let Some(email) = query.author_email {
        sql.push(" AND pa.email = ").string(email);
    }
    match query.executive {
        None => {}
        Some(any) if any.eq_ignore_ascii_case("ANY") => {
            sql.push(" AND t.executive_any = 1");
        }
        Some(none) if none.eq_ignore_ascii_case("NOONE") => {
            sql.push(" AND t.executive_any = 0 AND pe.email IS NULL");
        }
        Some(email) => {
            sql.push(" AND t.executive_any = 0 AND pe.email = ").string(email);
        }
    }
    if let Some(filter) = query.filter {
        sql.push(" AND ");
        filter_sql(&mut sql, filter);
    }
    sql.push(" ORDER BY t.id");
    if let Some(limit) = query.limit {
        // A literal, not a bound value: SQLite plans a statement whose LIMIT is a parameter for the value bound
        // at the time, so binding it again expires the statement and every execution parsed and planned this
        // whole text anew (half of `get_tasks`' server CPU).
        sql.push(&format!(" LIMIT {limit}"));
    }
    sql
}

/// Compiles a `search_tasks` filter into a condition on `t` with bound values (never interpolated).
fn filter_sql(sql: &mut Sql, expr: &Expr) {
    match expr {
        Expr::And(items) | Expr::Or(items) => {
            let joiner = if matches!(expr, Expr::And(_)) { " AND " } else { " OR " };
            sql.push("(");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    sql.push(joiner);
                }
                filter_sql(sql, item);
            }
            sql.push(")");
        }
        Expr::Cond(condition) => condition_sql(sql, condition),
    }
}

fn condition_sql(sql: &mut Sql, condition: &Condition) {
    match condition {
        Condition::Int { field, values } => {
            let column = match field {
                IntField::Id => "t.id",
                IntField::Project => "t.project_id",
                IntField::Parent => "t.parent_id",
            };
            sql.int_list(column, values);
        }
        Condition::Name { op: NameOp::Equals, value } => {
            sql.push("lower(t.name) = lower(").string(value).push(")");
        }
        Condition::Name { op: NameOp::Has, value } => {
            sql.push("instr(lower(t.name), lower(").string(value).push(")) > 0");
        }
        Condition::Date { field, op, date } => match field {
            DateField::Start | DateField::End => {
                let column = if *field == DateField::Start { "t.date_start" } else { "t.date_end" };
                sql.push(column).push(" ").push(op.as_sql()).push(" ").string(date);
            }
            DateField::Added | DateField::Closed => {
                // Unix times: a day is [start, start + 86400).
                let column = if *field == DateField::Added { "t.date_added" } else { "t.date_closed" };
                let start = date_start_unix(date).unwrap_or(0);
                let end = start + 86_400;
                match op {
                    DateOp::Eq => {
                        sql.push("(").push(column).push(" >= ").int(start);
                        sql.push(" AND ").push(column).push(" < ").int(end).push(")");
                    }
                    DateOp::Ne => {
                        sql.push("(").push(column).push(" < ").int(start);
                        sql.push(" OR ").push(column).push(" >= ").int(end).push(")");
                    }
                    DateOp::Gt => {
                        sql.push(column).push(" >= ").int(end);
                    }
                    DateOp::Ge => {
                        sql.push(column).push(" >= ").int(start);
                    }
                    DateOp::Lt => {
                        sql.push(column).push(" < ").int(start);
                    }
                    DateOp::Le => {
                        sql.push(column).push(" < ").int(end);
                    }
                }
            }
        },
    }
}
