//! `search_tasks`: tasks and subtasks by project, task, author, executive and the `filter` query language
//! (parsed by `wsoauth_domain::filter`, compiled to SQL with bound values by the storage layer).

use serde_json::Value;
use wsoauth_storage::TaskQuery;
use wsoauth_types::{ApiError, ApiErrorCode};

use super::intake::Assignee;
use super::task_format::Shape;
use super::tasks::list;
use super::{Context, Failure, Reply};

/// `search_tasks`: tasks and subtasks matching every condition given: `id_project`, `id_task` (the task and its
/// subtasks), `email_user_from`, `email_user_to` (an email, `ANY` or `NOONE`), `filter` (see
/// `wsoauth_domain::filter`), and optionally `status`. Without `id_project`, tasks of archived projects are
/// left out.
pub async fn search_tasks(ctx: &Context<'_>) -> Result<Reply, Failure> {
    let input = &ctx.input;
    let given = ["filter", "id_project", "id_task", "email_user_from", "email_user_to"];
    if given.iter().all(|name| input.optional(name).is_none()) {
        return Err(ApiError::detailed(ApiErrorCode::AtLeastOneRequired, given.join(", ")).into());
    }
    let project_id = input.id("id_project", ApiErrorCode::ProjectInvalid)?;
    let task_id = input.id("id_task", ApiErrorCode::TaskInvalid)?;
    let author = input.email("email_user_from")?;
    let executive = match input.assignee("email_user_to")? {
        Some(Assignee::Any) => Some("ANY".to_owned()),
        Some(Assignee::Noone) => Some("NOONE".to_owned()),
        Some(Assignee::Email(email)) => Some(email),
        None => None,
    };
    let filter = input.task_filter("filter")?;
    let status = input.choice("status", &["active", "done"])?;
    let viewer = ctx.viewer();
    if let Some(project_id) = project_id {
        ctx.state.store.project(&viewer, project_id).await?.ok_or(ApiErrorCode::ProjectInvalid)?;
    }
    if let Some(task_id) = task_id {
        ctx.state.store.task(&viewer, task_id).await?.ok_or(ApiErrorCode::TaskInvalid)?;
    }
    let shape = Shape { subtasks: false, ..Shape::read(&input.extra()) };
    let query = TaskQuery {
        project_id,
        subtree: task_id,
        status,
        skip_archived: project_id.is_none(),
        author_email: author.as_deref(),
        executive: executive.as_deref(),
        filter: filter.as_ref(),
        ..TaskQuery::default()
    };
    let tasks = list(ctx, query, &shape, |_| true, true).await?;
    Ok(Reply::Data(Value::Array(tasks)))
}
