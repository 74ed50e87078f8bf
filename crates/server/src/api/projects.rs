//! Projects, their members and project folders: `get_projects`, `get_project`, `post_project`, `update_project`,
//! `close_project`, `activate_project`, `add_project_members`, `delete_project_members`, `get_project_groups`,
//! `add_project_group` (also `add_project_groups`).

use std::collections::HashMap;

use serde_json::Value;
use wsoauth_storage::{NewProject, ProjectChanges, ProjectRow, TagScope, UserBrief, project_option_bit};
use wsoauth_types::{ApiError, ApiErrorCode, Scope};

use super::intake::{Assignee, Extra, MAX_NAME, MAX_TEXT};
use super::project_format::{Related, folder_json, project_json};
use super::{Access, ActionSpec, Context, Failure, Reply};

pub const ACTIONS: &[ActionSpec] = &[
    ("get_projects", Scope::ProjectsRead, Access::Read),
    ("get_project", Scope::ProjectsRead, Access::Read),
    ("post_project", Scope::ProjectsWrite, Access::Write),
    ("update_project", Scope::ProjectsWrite, Access::Write),
    ("close_project", Scope::ProjectsWrite, Access::Write),
    ("activate_project", Scope::ProjectsWrite, Access::Write),
    ("add_project_members", Scope::ProjectsWrite, Access::Write),
    ("delete_project_members", Scope::ProjectsWrite, Access::Write),
    ("get_project_groups", Scope::ProjectsRead, Access::Read),
    ("add_project_group", Scope::ProjectsWrite, Access::Write),
    ("add_project_groups", Scope::ProjectsWrite, Access::Write),
];

pub async fn run(action: &str, ctx: &Context<'_>) -> Result<Reply, Failure> {
    match action {
        "get_projects" => get_projects(ctx).await,
        "get_project" => get_project(ctx).await,
        "post_project" => post_project(ctx).await,
        "update_project" => update_project(ctx).await,
        "close_project" => set_archived(ctx, true).await,
        "activate_project" => set_archived(ctx, false).await,
        "add_project_members" => change_members(ctx, true).await,
        "delete_project_members" => change_members(ctx, false).await,
        "get_project_groups" => get_project_groups(ctx).await,
        "add_project_group" | "add_project_groups" => add_project_group(ctx).await,
        _ => Err(ApiErrorCode::ActionInvalid.into()),
    }
}

/// Projects as objects, with their tags (and members with `extra=users`) loaded in one query each.
async fn render(ctx: &Context<'_>, projects: &[ProjectRow], extra: &Extra) -> Result<Vec<Value>, Failure> {
    let ids: Vec<i64> = projects.iter().map(|project| project.id).collect();
    let members = if extra.has("users") { ctx.state.store.project_members(&ids).await? } else { Vec::new() };
    let tags = ctx.state.store.project_tag_map(&ids).await?;
    let related = Related::new(members, tags);
    Ok(projects.iter().map(|project| project_json(project, extra, &related)).collect())
}

async fn render_one(ctx: &Context<'_>, project: &ProjectRow, extra: &Extra) -> Result<Reply, Failure> {
    let mut rendered = render(ctx, std::slice::from_ref(project), extra).await?;
    Ok(Reply::Data(rendered.pop().unwrap_or(Value::Null)))
}

/// The project of the call, if the viewer may see it (`4 Project is invalid` otherwise).
async fn visible_project(ctx: &Context<'_>) -> Result<ProjectRow, Failure> {
    let id = ctx.input.project_id()?;
    ctx.state.store.project(&ctx.viewer(), id).await?.ok_or_else(|| ApiErrorCode::ProjectInvalid.into())
}

/// The project of the call, if the viewer may change it: account admins, its author and its manager.
async fn managed_project(ctx: &Context<'_>) -> Result<ProjectRow, Failure> {
    let project = visible_project(ctx).await?;
    let viewer = ctx.viewer();
    let is = |user: &Option<UserBrief>| user.as_ref().is_some_and(|user| user.id == viewer.user_id);
    if viewer.admin || is(&project.author) || is(&project.manager) {
        Ok(project)
    } else {
        Err(ApiError::detailed(ApiErrorCode::AccessDenied, "only the project's author, manager or an admin").into())
    }
}

async fn get_projects(ctx: &Context<'_>) -> Result<Reply, Failure> {
    let filter = ctx.input.choice("filter", &["active", "pending", "archive", "archived"])?;
    let status = filter.map(|filter| if filter == "archived" { "archive" } else { filter });
    let extra = ctx.input.extra();
    let projects = ctx.state.store.projects(&ctx.viewer(), status).await?;
    Ok(Reply::Data(Value::Array(render(ctx, &projects, &extra).await?)))
}

async fn get_project(ctx: &Context<'_>) -> Result<Reply, Failure> {
    let project = visible_project(ctx).await?;
    render_one(ctx, &project, &ctx.input.extra()).await
}

/// Account members by email: every email must belong to one (`11 Invalid email`, details = the email).
async fn account_users(ctx: &Context<'_>, emails: &[String]) -> Result<HashMap<String, i64>, Failure> {
    let found = ctx.state.store.account_users_by_email(ctx.viewer().account_id, emails).await?;
    let by_email: HashMap<String, i64> = found.into_iter().map(|user| (user.email, user.id)).collect();
    match emails.iter().find(|email| !by_email.contains_key(*email)) {
        Some(unknown) => Err(ApiError::detailed(ApiErrorCode::InvalidEmail, unknown.as_str()).into()),
        None => Ok(by_email),
    }
}

/// The people fields of `post_project` / `update_project`, resolved to account members.
struct People {
    /// `Some(None)`: no manager (`NOONE`).
    manager: Option<Option<i64>>,
    default_executive: Option<String>,
    members: Vec<i64>,
}

async fn people(ctx: &Context<'_>) -> Result<People, Failure> {
    let manager = match ctx.input.assignee("email_manager")? {
        Some(Assignee::Any) => return Err(ApiError::detailed(ApiErrorCode::InvalidEmail, "ANY").into()),
        other => other,
    };
    let executive = ctx.input.assignee("email_user_to")?;
    let members = ctx.input.emails("members")?;
    let mut emails = members.clone();
    for person in [&manager, &executive] {
        if let Some(Assignee::Email(email)) = person {
            emails.push(email.clone());
        }
    }
    let users = account_users(ctx, &emails).await?;
    let id_of = |email: &String| users.get(email).copied();
    Ok(People {
        manager: manager.map(|manager| match manager {
            Assignee::Email(email) => id_of(&email),
            _ => None,
        }),
        default_executive: executive.map(|executive| match executive {
            Assignee::Any => "ANY".to_owned(),
            Assignee::Noone => "NOONE".to_owned(),
            Assignee::Email(email) => id_of(&email).map_or_else(|| "NOONE".to_owned(), |id| id.to_string()),
        }),
        members: members.iter().filter_map(id_of).collect(),
    })
}

/// At most one of `time_require`, `time_today`, `timer_only` may be set (`11`).
fn check_options(options: i64) -> Result<i64, Failure> {
    let exclusive = ["time_require", "time_today", "timer_only"];
    let set = exclusive.iter().filter_map(|name| project_option_bit(name)).filter(|bit| options & bit != 0).count();
    if set > 1 { Err(ApiErrorCode::OptionsConflict.into()) } else { Ok(options) }
}

/// The dates of the call; the end may not come before the start (`11 Field is invalid`, `dateend`).
fn dates(ctx: &Context<'_>, current: Option<&ProjectRow>) -> Result<(Option<String>, Option<String>), Failure> {
    let start = ctx.input.date("datestart")?;
    let end = ctx.input.date("dateend")?;
    let effective_start = start.as_ref().or(current.and_then(|p| p.date_start.as_ref()));
    let effective_end = end.as_ref().or(current.and_then(|p| p.date_end.as_ref()));
    if let (Some(start), Some(end)) = (effective_start, effective_end)
        && end < start
    {
        return Err(ApiError::detailed(ApiErrorCode::FieldInvalid, "dateend").into());
    }
    Ok((start, end))
}

/// The folder named by `company`, created if absent.
async fn folder(ctx: &Context<'_>) -> Result<Option<i64>, Failure> {
    match ctx.input.text("company", MAX_NAME)? {
        Some(title) => {
            Ok(Some(ctx.state.store.ensure_project_folder(ctx.viewer().account_id, title.trim()).await?.0.id))
        }
        None => Ok(None),
    }
}

async fn post_project(ctx: &Context<'_>) -> Result<Reply, Failure> {
    let input = &ctx.input;
    input.required("title")?;
    let title = input.text("title", MAX_NAME)?.unwrap_or_default().trim().to_owned();
    let text = input.text("text", MAX_TEXT)?.unwrap_or_default().to_owned();
    let options = check_options(input.project_options()?.set)?;
    let (date_start, date_end) = dates(ctx, None)?;
    let max_time = input.amount("max_time")?;
    let max_money = input.amount("max_money")?;
    let extra = input.extra();
    let people = people(ctx).await?;
    let tags = super::tags::resolve_param(ctx, TagScope::Project, "tags").await?;
    // The author is the token's user (`email_user_from` is for admin keys); the folder defaults to their team's.
    let member = &ctx.auth.grant.member;
    let folder_id = match folder(ctx).await? {
        Some(id) => Some(id),
        None => match member.profile.team_id {
            Some(team) => ctx.state.store.team_folder(team).await?,
            None => None,
        },
    };
    let new = NewProject {
        account_id: member.account.id,
        name: title,
        folder_id,
        author_id: member.user_id,
        manager_id: people.manager.flatten(),
        default_executive: people.default_executive,
        text,
        date_start,
        date_end,
        max_time,
        max_money,
        options,
        members: people.members,
        now: ctx.now(),
    };
    let id = ctx.state.store.create_project(&new).await?;
    super::tags::attach(ctx, TagScope::Project, id, &tags).await?;
    let project = ctx.state.store.project(&ctx.viewer(), id).await?.ok_or(Failure::Internal)?;
    render_one(ctx, &project, &extra).await
}

async fn update_project(ctx: &Context<'_>) -> Result<Reply, Failure> {
    let project = managed_project(ctx).await?;
    let input = &ctx.input;
    let name = input.text("title", MAX_NAME)?.map(|title| title.trim().to_owned());
    let text = input.text("text", MAX_TEXT)?.map(str::to_owned);
    let options = input.project_options()?;
    let options = if options.given == 0 { None } else { Some(check_options(options.apply(project.options))?) };
    let (date_start, date_end) = dates(ctx, Some(&project))?;
    let max_time = input.amount("max_time")?;
    let max_money = input.amount("max_money")?;
    let extra = input.extra();
    let people = people(ctx).await?;
    let tags = super::tags::resolve_param(ctx, TagScope::Project, "tags").await?;
    let folder_id = folder(ctx).await?;
    let changes = ProjectChanges {
        name,
        folder_id,
        manager_id: people.manager,
        default_executive: people.default_executive,
        text,
        date_start,
        date_end,
        max_time,
        max_money,
        options,
        members: people.members,
    };
    ctx.state.store.update_project(project.account_id, project.id, &changes).await?;
    super::tags::attach(ctx, TagScope::Project, project.id, &tags).await?;
    let project = ctx.state.store.project(&ctx.viewer(), project.id).await?.ok_or(Failure::Internal)?;
    render_one(ctx, &project, &extra).await
}

async fn set_archived(ctx: &Context<'_>, archive: bool) -> Result<Reply, Failure> {
    let project = managed_project(ctx).await?;
    if ctx.state.store.set_project_archived(project.account_id, project.id, archive, ctx.now()).await? {
        Ok(Reply::Done)
    } else if archive {
        Err(ApiErrorCode::ProjectAlreadyClosed.into())
    } else {
        Err(ApiErrorCode::ProjectAlreadyActive.into())
    }
}

/// `add_project_members` / `delete_project_members`: `members` must all be account members, and for removal
/// members of the project (`11 Invalid email` otherwise); nothing changes unless every email is valid.
async fn change_members(ctx: &Context<'_>, add: bool) -> Result<Reply, Failure> {
    let project = managed_project(ctx).await?;
    let emails = ctx.input.emails("members")?;
    if emails.is_empty() {
        return Err(ApiError::detailed(ApiErrorCode::FieldRequired, "members").into());
    }
    let users = account_users(ctx, &emails).await?;
    let ids: Vec<i64> = emails.iter().filter_map(|email| users.get(email).copied()).collect();
    if add {
        ctx.state.store.add_project_members(project.id, &ids).await?;
    } else {
        let current: Vec<i64> =
            ctx.state.store.project_members(&[project.id]).await?.into_iter().map(|(_, user)| user.id).collect();
        if let Some(outsider) = emails.iter().find(|email| users.get(*email).is_none_or(|id| !current.contains(id))) {
            return Err(ApiError::detailed(ApiErrorCode::InvalidEmail, outsider.as_str()).into());
        }
        ctx.state.store.remove_project_members(project.id, &ids).await?;
    }
    Ok(Reply::Done)
}

async fn get_project_groups(ctx: &Context<'_>) -> Result<Reply, Failure> {
    let folders = ctx.state.store.project_folders(ctx.viewer().account_id).await?;
    Ok(Reply::Data(Value::Array(folders.iter().map(folder_json).collect())))
}

/// Creates a folder, or answers the existing one of the same title.
async fn add_project_group(ctx: &Context<'_>) -> Result<Reply, Failure> {
    ctx.input.required("title")?;
    let title = ctx.input.text("title", MAX_NAME)?.unwrap_or_default().trim();
    let (folder, _) = ctx.state.store.ensure_project_folder(ctx.viewer().account_id, title).await?;
    Ok(Reply::Data(folder_json(&folder)))
}
