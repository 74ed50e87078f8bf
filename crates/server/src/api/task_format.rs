//! How tasks are written (spec §3.8, recorded responses): string ids and priority, `user_from`/`user_to`
//! references with the Anyone/nobody sentinels, `project`, `parent` for subtasks, page paths, dates, estimates,
//! and the extras: `text`/`html`, `tags`, `subscribers`, `has_comments`, `comments`, `relations`, `child`.
//! Absent optional fields are left out. What lists show beside the tasks is loaded with one query per kind for
//! all listed tasks ([`Related::load`]) and assembled here.

use std::collections::HashMap;

use serde_json::{Map, Value, json};
use wsoauth_storage::{CommentRow, TaskBrief, TaskExecutive, TaskLink, TaskRow, UserBrief};

use super::format::{amount, anyone, datetime, no_executive, project_page, task_page};
use super::intake::Extra;
use super::project_format::brief_ref;
use super::{Context, Failure};

/// How many comments `extra=comments` shows per task.
pub const COMMENTS_SHOWN: usize = 5;

/// What a response shows of each task.
#[derive(Clone, Copy, Debug, Default)]
pub struct Shape {
    /// `text` as stored (`extra=text`).
    pub text: bool,
    /// `text` as HTML (`extra=html`).
    pub html: bool,
    pub subscribers: bool,
    /// `has_comments` (0/1): shown whenever extras are asked for.
    pub has_comments: bool,
    pub comments: bool,
    pub relations: bool,
    /// `child`: subtasks and sub-subtasks.
    pub subtasks: bool,
    /// Children as short tasks (`get_task`) rather than whole ones (lists).
    pub short_children: bool,
}

/// Extras every task list understands (`files` is accepted; no task has files).
const KNOWN_EXTRAS: [&str; 8] =
    ["text", "html", "files", "comments", "relations", "subtasks", "subscribers", "archive"];

impl Shape {
    /// The shape of a read (`get_*`, `search_tasks`) from its `extra`.
    pub fn read(extra: &Extra) -> Shape {
        Shape {
            text: extra.has("text"),
            html: extra.has("html"),
            subscribers: extra.has("subscribers"),
            has_comments: KNOWN_EXTRAS.iter().any(|word| extra.has(word)),
            comments: extra.has("comments"),
            relations: extra.has("relations"),
            subtasks: extra.has("subtasks"),
            short_children: false,
        }
    }

    /// The shape of a write's answer (`post_task`, `update_task`, `complete_task`): the description only with
    /// `extra=text|html`, as recorded.
    pub fn write(extra: &Extra) -> Shape {
        Shape { text: extra.has("text"), html: extra.has("html"), ..Shape::default() }
    }
}

/// What the listed tasks are shown with besides their rows.
#[derive(Default)]
pub struct Related {
    tags: HashMap<i64, Vec<(i64, String)>>,
    subscribers: HashMap<i64, Vec<UserBrief>>,
    comments: HashMap<i64, Vec<CommentRow>>,
    links: HashMap<i64, Vec<TaskLink>>,
    /// Children of each task (indexes into the rendered rows), oldest first.
    children: HashMap<i64, Vec<usize>>,
}

impl Related {
    /// Loads tags, and what `shape` asks for, of `tasks`: one query per kind.
    pub async fn load(ctx: &Context<'_>, tasks: &[TaskRow], shape: &Shape) -> Result<Related, Failure> {
        let store = &ctx.state.store;
        let viewer = ctx.viewer();
        let ids: Vec<i64> = tasks.iter().map(|task| task.id).collect();
        let mut related = Related { tags: store.task_tag_map(&ids).await?, ..Related::default() };
        if shape.subscribers {
            related.subscribers = store.task_subscribers(&ids).await?;
        }
        if shape.comments || shape.has_comments {
            // With only has_comments wanted, one comment per task answers it.
            let shown = if shape.comments { COMMENTS_SHOWN } else { 1 };
            related.comments = store.comment_map(&viewer, &ids, shown).await?;
        }
        if shape.relations {
            for link in store.task_links(&viewer, &ids).await? {
                related.links.entry(link.task_id).or_default().push(link);
            }
        }
        if shape.subtasks {
            for (index, task) in tasks.iter().enumerate() {
                if let Some(parent) = task.parent_id {
                    related.children.entry(parent).or_default().push(index);
                }
            }
        }
        Ok(related)
    }
}

fn executive_json(executive: &TaskExecutive) -> Value {
    match executive {
        TaskExecutive::Nobody => no_executive(),
        TaskExecutive::Anyone => anyone(),
        TaskExecutive::User(user) => brief_ref(user),
    }
}

/// `{"id","name","page","status","priority"}`.
pub fn brief_json(task: &TaskBrief) -> Value {
    json!({
        "id": task.id.to_string(),
        "name": task.name,
        "page": task_page(task.project_id, task.top_id, task.id),
        "status": task.status,
        "priority": task.priority.to_string(),
    })
}

/// The description as HTML: escaped, line breaks as `<br>`.
pub fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\r' => {}
            '\n' => out.push_str("<br>"),
            c => out.push(c),
        }
    }
    out
}

fn comment_json(comment: &CommentRow) -> Value {
    let task = &comment.task;
    let page = format!("{}#com{}", task_page(task.project_id, task.top_id, task.id), comment.id);
    let mut out = Map::new();
    out.insert("id".into(), json!(comment.id.to_string()));
    out.insert("page".into(), json!(page));
    out.insert("text".into(), json!(comment.text));
    out.insert("date_added".into(), datetime(comment.date_added));
    if let Some(author) = &comment.author {
        out.insert("user_from".into(), brief_ref(author));
    }
    Value::Object(out)
}

fn relations_json(links: &[TaskLink]) -> Option<Value> {
    let side = |inbound: bool| -> Vec<Value> {
        links
            .iter()
            .filter(|link| link.inbound == inbound)
            .map(|link| json!({"type": link.kind, "task": brief_json(&link.other)}))
            .collect()
    };
    let (from, to) = (side(true), side(false));
    let mut out = Map::new();
    if !from.is_empty() {
        out.insert("from".into(), Value::Array(from));
    }
    if !to.is_empty() {
        out.insert("to".into(), Value::Array(to));
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

/// A task object. `tasks` are the rows `related` was loaded for (children are looked up among them);
/// `with_parent` adds `parent` to a subtask (not inside `child`, where the nesting says it).
pub fn task_json(task: &TaskRow, shape: &Shape, related: &Related, tasks: &[TaskRow], with_parent: bool) -> Value {
    task_value(task, shape, related, tasks, with_parent, 0)
}

fn task_value(
    task: &TaskRow,
    shape: &Shape,
    related: &Related,
    tasks: &[TaskRow],
    with_parent: bool,
    level: usize,
) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), json!(task.id.to_string()));
    out.insert("name".into(), json!(task.name));
    out.insert("page".into(), json!(task_page(task.project_id, task.top_id, task.id)));
    out.insert("status".into(), json!(task.status));
    out.insert("priority".into(), json!(task.priority.to_string()));
    if level > 0 && shape.short_children {
        insert_children(&mut out, task, shape, related, tasks, level);
        return Value::Object(out);
    }
    if let Some(author) = &task.author {
        out.insert("user_from".into(), brief_ref(author));
    }
    out.insert("user_to".into(), executive_json(&task.executive));
    out.insert(
        "project".into(),
        json!({"id": task.project_id.to_string(), "name": task.project_name, "page": project_page(task.project_id)}),
    );
    if with_parent && let Some(parent) = &task.parent {
        out.insert("parent".into(), brief_json(parent));
    }
    if shape.html {
        out.insert("text".into(), json!(html(&task.text)));
    } else if shape.text {
        out.insert("text".into(), json!(task.text));
    }
    out.insert("date_added".into(), datetime(task.date_added));
    if let Some(date) = &task.date_start {
        out.insert("date_start".into(), json!(date));
    }
    if let Some(date) = &task.date_end {
        out.insert("date_end".into(), json!(date));
    }
    if task.is_done()
        && let Some(closed) = task.date_closed
    {
        out.insert("date_closed".into(), datetime(closed));
    }
    if let Some(time) = &task.time_start {
        out.insert("time_start".into(), json!(time));
    }
    if let Some(time) = &task.time_end {
        out.insert("time_end".into(), json!(time));
    }
    if let Some(time) = task.max_time {
        out.insert("max_time".into(), amount(time));
    }
    if let Some(money) = task.max_money {
        out.insert("max_money".into(), amount(money));
    }
    if let Some(tags) = related.tags.get(&task.id).filter(|tags| !tags.is_empty()) {
        let tags: Map<String, Value> = tags.iter().map(|(id, title)| (id.to_string(), json!(title))).collect();
        out.insert("tags".into(), Value::Object(tags));
    }
    if shape.subscribers {
        let subscribers = related.subscribers.get(&task.id).map(Vec::as_slice).unwrap_or_default();
        out.insert("subscribers".into(), Value::Array(subscribers.iter().map(brief_ref).collect()));
    }
    let comments = related.comments.get(&task.id).filter(|comments| !comments.is_empty());
    if shape.has_comments {
        out.insert("has_comments".into(), json!(i32::from(comments.is_some())));
    }
    if shape.comments
        && let Some(comments) = comments
    {
        out.insert("comments".into(), Value::Array(comments.iter().map(comment_json).collect()));
    }
    if shape.relations
        && let Some(relations) = related.links.get(&task.id).and_then(|links| relations_json(links))
    {
        out.insert("relations".into(), relations);
    }
    insert_children(&mut out, task, shape, related, tasks, level);
    Value::Object(out)
}

fn insert_children(
    out: &mut Map<String, Value>,
    task: &TaskRow,
    shape: &Shape,
    related: &Related,
    tasks: &[TaskRow],
    level: usize,
) {
    // Two levels below a task at most; the bound also guards against a corrupt parent cycle.
    if !shape.subtasks || level >= 2 {
        return;
    }
    let Some(children) = related.children.get(&task.id).filter(|children| !children.is_empty()) else {
        return;
    };
    let child: Vec<Value> = children
        .iter()
        .filter_map(|index| tasks.get(*index))
        .map(|child| task_value(child, shape, related, tasks, false, level + 1))
        .collect();
    out.insert("child".into(), Value::Array(child));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_and_breaks_lines() {
        assert_eq!(html("a <b> & \"c\"\r\n• d's"), "a &lt;b&gt; &amp; &quot;c&quot;<br>• d&#39;s");
    }
}
