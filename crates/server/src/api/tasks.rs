//! Tasks and subtasks: `get_all_tasks`, `get_tasks`, `get_task`, `post_task`, `update_task`, `complete_task`,
//! `reopen_task`, `search_tasks`, and task subscriptions: `subscribe`, `unsubscribe`.
//!
//! A caller sees the tasks of the projects they may see (admins: every project; others: projects they are a
//! member, manager or author of), except hidden tasks they are not listed for; whatever they may not see is
//! answered as if it did not exist.

use std::collections::HashMap;

use serde_json::Value;
use wsoauth_domain::dates::date_start_unix;
use wsoauth_storage::{
    CreateTaskError, NewTask, ProjectRow, SetExecutive, TagScope, TaskChanges, TaskQuery, TaskRow, TaskStateError,
    UserBrief,
};
use wsoauth_types::{ApiError, ApiErrorCode, Scope};

use super::format::display_name;
use super::intake::{Assignee, MAX_NAME, MAX_TEXT};
use super::task_format::{Related, Shape, task_json};
use super::{Access, ActionSpec, Context, Failure, Reply};

/// The most tasks a list answers; beyond, `Too many tasks (10000 max)`.
pub const MAX_TASKS: usize = 10_000;

pub const ACTIONS: &[ActionSpec] = &[
    ("get_all_tasks", Scope::TasksRead, Access::Read),
    ("get_tasks", Scope::TasksRead, Access::Read),
    ("get_task", Scope::TasksRead, Access::Read),
    ("post_task", Scope::TasksWrite, Access::Write),
    ("update_task", Scope::TasksWrite, Access::Write),
    ("complete_task", Scope::TasksWrite, Access::Write),
    ("reopen_task", Scope::TasksWrite, Access::Write),
    ("search_tasks", Scope::TasksRead, Access::Read),
    ("subscribe", Scope::TasksWrite, Access::Write),
    ("unsubscribe", Scope::TasksWrite, Access::Write),
];

pub async fn run(action: &str, ctx: &Context<'_>) -> Result<Reply, Failure> {
    match action {
        "get_all_tasks" => get_all_tasks(ctx).await,
        "get_tasks" => get_tasks(ctx).await,
        "get_task" => get_task(ctx).await,
        "post_task" => post_task(ctx).await,
        "update_task" => update_task(ctx).await,
        "complete_task" => complete_task(ctx).await,
        "reopen_task" => reopen_task(ctx).await,
        "search_tasks" => super::search::search_tasks(ctx).await,
        "subscribe" => subscribe(ctx, true).await,
        "unsubscribe" => subscribe(ctx, false).await,
        _ => Err(ApiErrorCode::ActionInvalid.into()),
    }
}

fn invalid(details: impl Into<String>) -> Failure {
    ApiError::detailed(ApiErrorCode::FieldInvalid, details).into()
}

/// The project of the call (`id_project` or `page`), if the caller may see it; else `4 Project is invalid`.
async fn visible_project(ctx: &Context<'_>) -> Result<ProjectRow, Failure> {
    let id = ctx.input.project_id()?;
    ctx.state.store.project(&ctx.viewer(), id).await?.ok_or_else(|| ApiErrorCode::ProjectInvalid.into())
}

/// The task of the call (`id_task` or `page`), if the caller may see it; else `5 Task is invalid`.
async fn visible_task(ctx: &Context<'_>) -> Result<TaskRow, Failure> {
    let id = ctx.input.task_id()?;
    ctx.state.store.task(&ctx.viewer(), id).await?.ok_or_else(|| ApiErrorCode::TaskInvalid.into())
}

/// Lists tasks (at most `MAX_TASKS`); `roots` picks the tasks shown at the top level, the others appear in
/// `child` (with `extra=subtasks`).
pub(super) async fn list(
    ctx: &Context<'_>,
    query: TaskQuery<'_>,
    shape: &Shape,
    roots: impl Fn(&TaskRow) -> bool,
    with_parent: bool,
) -> Result<Vec<Value>, Failure> {
    let limit = i64::try_from(MAX_TASKS).unwrap_or(i64::MAX) + 1;
    let tasks = ctx.state.store.tasks(&ctx.viewer(), &TaskQuery { limit: Some(limit), ..query }).await?;
    if tasks.len() > MAX_TASKS {
        return Err(ApiErrorCode::TooManyTasks.into());
    }
    let related = Related::load(ctx, &tasks, shape).await?;
    Ok(tasks
        .iter()
        .filter(|task| roots(task))
        .map(|task| task_json(task, shape, &related, &tasks, with_parent))
        .collect())
}

/// `filter=active` (the only value; completed ones cannot be asked for).
fn active_filter(ctx: &Context<'_>) -> Result<Option<&'static str>, Failure> {
    ctx.input.choice("filter", &["active"])
}

/// `get_all_tasks`: the tasks of every project the caller may see (of archived projects with `extra=archive`),
/// subtasks nested in `child` with `extra=subtasks`.
async fn get_all_tasks(ctx: &Context<'_>) -> Result<Reply, Failure> {
    let status = active_filter(ctx)?;
    let extra = ctx.input.extra();
    let shape = Shape::read(&extra);
    let query =
        TaskQuery { top_level: !shape.subtasks, status, skip_archived: !extra.has("archive"), ..TaskQuery::default() };
    let tasks = list(ctx, query, &shape, |task| task.parent_id.is_none(), false).await?;
    Ok(Reply::Data(Value::Array(tasks)))
}

/// `get_tasks`: the tasks of one project. The task query sees a project exactly when `visible_project` does, so
/// the project itself is read only when no task comes back (to tell an empty project from `4 Project is invalid`)
/// or the filter is wrong (`4` wins over it): a list costs one statement less.
async fn get_tasks(ctx: &Context<'_>) -> Result<Reply, Failure> {
    let project_id = ctx.input.project_id()?;
    let status = match active_filter(ctx) {
        Ok(status) => status,
        Err(failure) => {
            visible_project(ctx).await?;
            return Err(failure);
        }
    };
    let shape = Shape::read(&ctx.input.extra());
    let query = TaskQuery { project_id: Some(project_id), top_level: !shape.subtasks, status, ..TaskQuery::default() };
    let tasks = list(ctx, query, &shape, |task| task.parent_id.is_none(), false).await?;
    if tasks.is_empty() {
        visible_project(ctx).await?;
    }
    Ok(Reply::Data(Value::Array(tasks)))
}

/// `get_task`: one task or subtask; with `extra=subtasks` its subtasks as short tasks in `child` (only open ones
/// with `filter=active`).
async fn get_task(ctx: &Context<'_>) -> Result<Reply, Failure> {
    let task = visible_task(ctx).await?;
    let status = active_filter(ctx)?;
    let shape = Shape { short_children: true, ..Shape::read(&ctx.input.extra()) };
    let id = task.id;
    let mut tasks = vec![task];
    if shape.subtasks {
        let below = TaskQuery { below: Some(id), status, ..TaskQuery::default() };
        tasks.extend(ctx.state.store.tasks(&ctx.viewer(), &below).await?);
    }
    let related = Related::load(ctx, &tasks, &shape).await?;
    let task = tasks.first().ok_or(ApiErrorCode::TaskInvalid)?;
    Ok(Reply::Data(task_json(task, &shape, &related, &tasks, true)))
}

/// One task, shown as writes answer it.
async fn answer_task(ctx: &Context<'_>, id: i64) -> Result<Reply, Failure> {
    let task = ctx.state.store.task(&ctx.viewer(), id).await?.ok_or(ApiErrorCode::TaskInvalid)?;
    let shape = Shape::write(&ctx.input.extra());
    let tasks = [task];
    let related = Related::load(ctx, &tasks, &shape).await?;
    let [task] = &tasks;
    Ok(Reply::Data(task_json(task, &shape, &related, &tasks, true)))
}

/// Account members by email; every email must be one (`11 Invalid email`, details = the email).
async fn members_by_email(ctx: &Context<'_>, emails: &[String]) -> Result<HashMap<String, UserBrief>, Failure> {
    let mut wanted = emails.to_vec();
    wanted.sort();
    wanted.dedup();
    let found = ctx.state.store.account_users_by_email(ctx.viewer().account_id, &wanted).await?;
    let by_email: HashMap<String, UserBrief> = found.into_iter().map(|user| (user.email.clone(), user)).collect();
    match wanted.iter().find(|email| !by_email.contains_key(*email)) {
        Some(unknown) => Err(ApiError::detailed(ApiErrorCode::InvalidEmail, unknown.as_str()).into()),
        None => Ok(by_email),
    }
}

/// The executive named by `email_user_to`, given the members its email resolved to.
fn executive_of(assignee: &Assignee, people: &HashMap<String, UserBrief>) -> Result<SetExecutive, Failure> {
    Ok(match assignee {
        Assignee::Any => SetExecutive::Anyone,
        Assignee::Noone => SetExecutive::Nobody,
        Assignee::Email(email) => match people.get(email) {
            Some(user) => SetExecutive::User(user.id),
            None => return Err(ApiError::detailed(ApiErrorCode::InvalidEmail, email.as_str()).into()),
        },
    })
}

/// A project's default executive of new tasks (`None`, `ANY`, `NOONE` or a user id).
fn default_executive(project: &ProjectRow) -> SetExecutive {
    match project.default_executive.as_deref().map(str::trim) {
        Some(any) if any.eq_ignore_ascii_case("ANY") => SetExecutive::Anyone,
        Some(id) => id.parse().map_or(SetExecutive::Nobody, SetExecutive::User),
        None => SetExecutive::Nobody,
    }
}

/// A task name: `title`, at most `MAX_NAME` characters.
fn title(ctx: &Context<'_>) -> Result<Option<String>, Failure> {
    Ok(ctx.input.text("title", MAX_NAME)?.map(|title| title.trim().to_owned()))
}

/// Start and end dates must be in order.
fn check_dates(start: Option<&str>, end: Option<&str>) -> Result<(), Failure> {
    match (start, end) {
        (Some(start), Some(end)) if end < start => Err(invalid("dateend")),
        _ => Ok(()),
    }
}

/// `post_task`: a task in a project the caller may see, or (with `id_parent`) a subtask of an open task there,
/// at most two levels below a top-level task.
async fn post_task(ctx: &Context<'_>) -> Result<Reply, Failure> {
    let viewer = ctx.viewer();
    let project = visible_project(ctx).await?;
    let name = title(ctx)?.ok_or_else(|| Failure::from(ApiError::detailed(ApiErrorCode::FieldRequired, "title")))?;
    let parent_id = ctx.input.id("id_parent", ApiErrorCode::TaskInvalid)?;
    let assignee = ctx.input.assignee("email_user_to")?;
    let priority = ctx.input.int("priority", 0, 10)?.unwrap_or(1);
    let text = ctx.input.text("text", MAX_TEXT)?.unwrap_or("");
    let todo = ctx.input.repeated("todo")?;
    let date_start = ctx.input.date("datestart")?;
    let date_end = ctx.input.date("dateend")?;
    check_dates(date_start.as_deref(), date_end.as_deref())?;
    let subscribe = ctx.input.emails("subscribe")?;
    // `hidden=1` (as the official SDK READMEs send it) hides the task from everybody but its author.
    let author_only = ctx.input.optional("hidden") == Some("1");
    let hidden = if author_only { Vec::new() } else { ctx.input.emails("hidden")? };
    let mention = ctx.input.emails("mention")?;
    let max_time = ctx.input.amount("max_time")?;
    let max_money = ctx.input.amount("max_money")?;
    let tags = super::tags::resolve_param(ctx, TagScope::Task, "tags").await?;

    if let Some(parent_id) = parent_id {
        let parent = ctx.state.store.task(&viewer, parent_id).await?;
        let parent = parent.filter(|parent| parent.project_id == project.id).ok_or(ApiErrorCode::TaskInvalid)?;
        if parent.is_done() {
            return Err(ApiErrorCode::TaskClosed.into());
        }
        if parent.depth >= 2 {
            return Err(invalid("id_parent: subtasks nest at most two levels below a task"));
        }
    }
    let mut emails: Vec<String> = subscribe.iter().chain(&hidden).chain(&mention).cloned().collect();
    if let Some(Assignee::Email(email)) = &assignee {
        emails.push(email.clone());
    }
    let people = members_by_email(ctx, &emails).await?;
    let id_of = |email: &String| people.get(email).map(|user| user.id);
    let executive = match &assignee {
        Some(assignee) => executive_of(assignee, &people)?,
        None => default_executive(&project),
    };

    let mut body = text.to_owned();
    for item in &todo {
        if !body.is_empty() {
            body.push_str("\r\n");
        }
        body.push_str("• ");
        body.push_str(item);
    }
    let mut names: Vec<String> = Vec::new();
    for user in mention.iter().filter_map(|email| people.get(email)) {
        let name = display_name(&user.first_name, &user.last_name, &user.email);
        if !names.contains(&name) {
            names.push(name);
        }
    }
    if !names.is_empty() {
        if !body.is_empty() {
            body.push(' ');
        }
        body.push_str(&names.join(", "));
    }

    let new = NewTask {
        parent_id,
        text: body,
        priority,
        executive,
        date_start,
        date_end,
        max_time,
        max_money,
        subscribers: subscribe.iter().filter_map(id_of).collect(),
        visible_to: (author_only || !hidden.is_empty()).then(|| hidden.iter().filter_map(id_of).collect()),
        ..NewTask::new(viewer.account_id, project.id, viewer.user_id, &name, ctx.now())
    };
    let id = match ctx.state.store.create_task(&new).await? {
        Ok(id) => id,
        Err(CreateTaskError::ParentMissing) => return Err(ApiErrorCode::TaskInvalid.into()),
        Err(CreateTaskError::ParentClosed) => return Err(ApiErrorCode::TaskClosed.into()),
        Err(CreateTaskError::TooDeep) => {
            return Err(invalid("id_parent: subtasks nest at most two levels below a task"));
        }
    };
    super::tags::attach(ctx, TagScope::Task, id, &tags).await?;
    answer_task(ctx, id).await
}

/// `update_task`: changes the executive, priority, name, dates or estimates of a task the caller may see.
async fn update_task(ctx: &Context<'_>) -> Result<Reply, Failure> {
    let task = visible_task(ctx).await?;
    let assignee = ctx.input.assignee("email_user_to")?;
    let priority = ctx.input.int("priority", 0, 10)?;
    let name = title(ctx)?;
    let date_start = ctx.input.date("datestart")?;
    let date_end = ctx.input.date("dateend")?;
    let date_closed = ctx.input.date("dateclosed")?;
    let max_time = ctx.input.amount("max_time")?;
    let max_money = ctx.input.amount("max_money")?;
    check_dates(
        date_start.as_deref().or(task.date_start.as_deref()),
        date_end.as_deref().or(task.date_end.as_deref()),
    )?;
    let executive = match &assignee {
        Some(assignee) => {
            let emails: Vec<String> = match assignee {
                Assignee::Email(email) => vec![email.clone()],
                _ => Vec::new(),
            };
            Some(executive_of(assignee, &members_by_email(ctx, &emails).await?)?)
        }
        None => None,
    };
    let changes = TaskChanges {
        name,
        priority,
        executive,
        date_start,
        date_end,
        date_closed: date_closed.as_deref().and_then(date_start_unix),
        max_time,
        max_money,
    };
    ctx.state.store.update_task(ctx.viewer().account_id, task.id, &changes).await?;
    answer_task(ctx, task.id).await
}

/// `complete_task`: closes a task whose subtasks are all closed; answers the closed task.
async fn complete_task(ctx: &Context<'_>) -> Result<Reply, Failure> {
    let task = visible_task(ctx).await?;
    match ctx.state.store.complete_task(ctx.viewer().account_id, task.id, ctx.now()).await? {
        Ok(()) => answer_task(ctx, task.id).await,
        Err(TaskStateError::AlreadyThere) => Err(ApiErrorCode::TaskAlreadyClosed.into()),
        Err(TaskStateError::OpenChildren) => Err(ApiErrorCode::TaskHasChildren.into()),
        Err(TaskStateError::ParentDone | TaskStateError::Missing) => Err(ApiErrorCode::TaskInvalid.into()),
    }
}

/// `reopen_task`: reopens a closed task whose parent is open.
async fn reopen_task(ctx: &Context<'_>) -> Result<Reply, Failure> {
    let task = visible_task(ctx).await?;
    match ctx.state.store.reopen_task(ctx.viewer().account_id, task.id).await? {
        Ok(()) => Ok(Reply::Done),
        Err(TaskStateError::AlreadyThere) => Err(ApiErrorCode::TaskAlreadyActive.into()),
        Err(TaskStateError::ParentDone) => Err(ApiErrorCode::ParentTaskDone.into()),
        Err(TaskStateError::OpenChildren | TaskStateError::Missing) => Err(ApiErrorCode::TaskInvalid.into()),
    }
}

/// `subscribe` / `unsubscribe`: one member (`email_user`, a single address) to or from a task.
async fn subscribe(ctx: &Context<'_>, on: bool) -> Result<Reply, Failure> {
    let task = visible_task(ctx).await?;
    ctx.input.required("email_user")?;
    let email = ctx.input.email("email_user")?.unwrap_or_default();
    let people = members_by_email(ctx, std::slice::from_ref(&email)).await?;
    let user = people
        .get(&email)
        .ok_or_else(|| Failure::from(ApiError::detailed(ApiErrorCode::InvalidEmail, email.as_str())))?;
    if on {
        ctx.state.store.subscribe_task(task.id, user.id).await?;
    } else {
        ctx.state.store.unsubscribe_task(task.id, user.id).await?;
    }
    Ok(Reply::Done)
}
