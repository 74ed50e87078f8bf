//! Comments on tasks: `get_comments`, `post_comment`.

use serde_json::{Value, json};
use wsoauth_storage::{CommentRow, CommentTask, UserBrief};
use wsoauth_types::{ApiError, ApiErrorCode, Scope};

use super::format::{datetime, display_name, task_page, user_ref};
use super::intake::MAX_TEXT;
use super::{Access, ActionSpec, Context, Failure, Reply};

pub const ACTIONS: &[ActionSpec] =
    &[("get_comments", Scope::CommentsRead, Access::Read), ("post_comment", Scope::CommentsWrite, Access::Write)];

pub async fn run(action: &str, ctx: &Context<'_>) -> Result<Reply, Failure> {
    match action {
        "get_comments" => get_comments(ctx).await,
        "post_comment" => post_comment(ctx).await,
        _ => Err(ApiErrorCode::ActionInvalid.into()),
    }
}

/// `{"id","page","text","date_added","user_from"}`; the page is the task's page with `#com<ID>`.
pub fn comment_json(comment: &CommentRow) -> Value {
    let task = &comment.task;
    let page = format!("{}#com{}", task_page(task.project_id, task.top_id, task.id), comment.id);
    let user_from = match &comment.author {
        Some(author) => person_ref(author),
        None => user_ref(0, "", ""),
    };
    json!({
        "id": comment.id.to_string(),
        "page": page,
        "text": comment.text,
        "date_added": datetime(comment.date_added),
        "user_from": user_from,
    })
}

fn person_ref(person: &UserBrief) -> Value {
    user_ref(person.id, &person.email, &display_name(&person.first_name, &person.last_name, &person.email))
}

/// The task of the call (`id_task` or `page`), if the caller may see it; else `5 Task is invalid`.
async fn visible_task(ctx: &Context<'_>) -> Result<CommentTask, Failure> {
    let id = ctx.input.task_id()?;
    ctx.state.store.comment_task(&ctx.viewer(), id).await?.ok_or_else(|| ApiErrorCode::TaskInvalid.into())
}

/// `get_comments`: the comments of a task the caller may see, newest first. Hidden comments only reach their
/// author and the people they were shown to. (`extra=files` would add each comment's `files`; comments carry
/// no files yet, and the key is left out when there are none.)
///
/// The comments' query sees a task exactly when `visible_task` does (the same rules, the same account), so the
/// task is looked up only when no comment comes back: to tell a task without comments from `5 Task is invalid`.
async fn get_comments(ctx: &Context<'_>) -> Result<Reply, Failure> {
    let id = ctx.input.task_id()?;
    let comments = ctx.state.store.comments(&ctx.viewer(), id).await?;
    if comments.is_empty() {
        visible_task(ctx).await?;
    }
    Ok(Reply::Data(Value::Array(comments.iter().map(comment_json).collect())))
}

/// `post_comment`: `text` and/or `todo[]` (each item appended as `\r\n• item`), `hidden` (emails of the members
/// who may see it besides the author; `1`, as the official SDK READMEs send it, means the author alone) and
/// `mention` (emails whose names are appended). The author is the token's user.
async fn post_comment(ctx: &Context<'_>) -> Result<Reply, Failure> {
    let task = visible_task(ctx).await?;
    let text = ctx.input.text("text", MAX_TEXT)?;
    let todo = ctx.input.repeated("todo")?;
    if text.is_none() && todo.is_empty() {
        return Err(ApiError::detailed(ApiErrorCode::FieldRequired, "text").into());
    }
    let author_only = ctx.input.optional("hidden") == Some("1");
    let hidden = if author_only { Vec::new() } else { ctx.input.emails("hidden")? };
    let mention = ctx.input.emails("mention")?;
    let account_id = ctx.viewer().account_id;
    let mut wanted: Vec<String> = hidden.iter().chain(&mention).cloned().collect();
    wanted.sort();
    wanted.dedup();
    let people = ctx.state.store.account_users_by_email(account_id, &wanted).await?;
    let person = |email: &String| {
        people
            .iter()
            .find(|p| p.email == *email)
            .ok_or_else(|| Failure::from(ApiError::detailed(ApiErrorCode::InvalidEmail, email.as_str())))
    };
    let mut visible_to: Vec<i64> = Vec::with_capacity(hidden.len());
    for email in &hidden {
        visible_to.push(person(email)?.id);
    }
    let mut names: Vec<String> = Vec::with_capacity(mention.len());
    for email in &mention {
        let p = person(email)?;
        let name = display_name(&p.first_name, &p.last_name, &p.email);
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let mut body = text.unwrap_or("").to_owned();
    for item in &todo {
        if !body.is_empty() {
            body.push_str("\r\n");
        }
        body.push_str("• ");
        body.push_str(item);
    }
    if !names.is_empty() {
        body.push(' ');
        body.push_str(&names.join(", "));
    }
    let visible_to = (author_only || !hidden.is_empty()).then_some(visible_to.as_slice());
    let member = &ctx.auth.grant.member;
    let now = ctx.now();
    let id = ctx.state.store.insert_comment(task.id, member.user_id, &body, visible_to, now).await?;
    let author = UserBrief {
        id: member.user_id,
        email: member.person.email.clone(),
        first_name: member.person.first_name.clone(),
        last_name: member.person.last_name.clone(),
    };
    let comment = CommentRow { id, task, text: body, date_added: now, author: Some(author) };
    Ok(Reply::Data(comment_json(&comment)))
}
