//! Members and teams: `me`, `get_users`, `add_user`, `get_user_groups`, `add_user_group`, `subscribe`,
//! `unsubscribe`.

use serde_json::Value;
use wsoauth_storage::{NewMember, Role};
use wsoauth_types::{ApiErrorCode, Scope};

use super::intake::MAX_NAME;
use super::project_format::{member_json, team_json};
use super::{Access, ActionSpec, Context, Failure, Reply};

pub const ACTIONS: &[ActionSpec] = &[
    ("me", Scope::UsersRead, Access::Read),
    ("get_users", Scope::UsersRead, Access::Read),
    ("add_user", Scope::UsersWrite, Access::Admin),
    ("get_user_groups", Scope::UsersRead, Access::Read),
    ("add_user_group", Scope::UsersWrite, Access::Admin),
];

pub async fn run(action: &str, ctx: &Context<'_>) -> Result<Reply, Failure> {
    match action {
        "me" => me(ctx).await,
        "get_users" => get_users(ctx).await,
        "add_user" => add_user(ctx).await,
        "get_user_groups" => get_user_groups(ctx).await,
        "add_user_group" => add_user_group(ctx).await,
        _ => Err(ApiErrorCode::ActionInvalid.into()),
    }
}

/// `me`: the token's user, with the fields Worksection records (absent ones omitted).
async fn me(ctx: &Context<'_>) -> Result<Reply, Failure> {
    let member = &ctx.auth.grant.member;
    let person = &member.person;
    Reply::written(&Me {
        id: member.user_id,
        first_name: &person.first_name,
        last_name: &person.last_name,
        name: super::format::display_name(&person.first_name, &person.last_name, &person.email),
        title: &member.title,
        role: member.role.display(),
        email: &person.email,
    })
}

/// The answer of `me`, in Worksection's key order.
#[derive(serde::Serialize)]
struct Me<'a> {
    /// As a string, like every id of the API.
    #[serde(serialize_with = "super::format::id_string")]
    id: i64,
    first_name: &'a str,
    last_name: &'a str,
    name: String,
    #[serde(skip_serializing_if = "str::is_empty")]
    title: &'a str,
    role: &'static str,
    email: &'a str,
}

/// `get_users`: every member of the account.
async fn get_users(ctx: &Context<'_>) -> Result<Reply, Failure> {
    let members = ctx.state.store.account_members(ctx.viewer().account_id).await?;
    Ok(Reply::Data(Value::Array(members.iter().map(member_json).collect())))
}

/// `add_user`: adds a person to the account, into the team `group` (created if absent; the caller's team when
/// not given). A person new to wsoauth has no password until an operator sets one; a member already in the
/// account is answered as they are.
async fn add_user(ctx: &Context<'_>) -> Result<Reply, Failure> {
    let input = &ctx.input;
    input.required("email")?;
    let email = input.email("email")?.unwrap_or_default();
    let name = |field: &str| -> Result<String, Failure> {
        Ok(input.text(field, MAX_NAME)?.map(|value| value.trim().to_owned()).unwrap_or_default())
    };
    let (mut first_name, mut last_name) = (name("first_name")?, name("last_name")?);
    if first_name.is_empty() && last_name.is_empty() {
        // As Worksection does: "kate.greenway@..." becomes "kate" "greenway".
        let local = email.split('@').next().unwrap_or_default();
        let (first, last) = local.split_once('.').unwrap_or((local, ""));
        (first_name, last_name) = (first.to_owned(), last.replace('.', " "));
    }
    let (title, department) = (name("title")?, name("department")?);
    let role = match input.choice("role", &["user", "guest", "reader"])? {
        Some("guest") => Role::Guest,
        Some("reader") => Role::Reader,
        _ => Role::User,
    };
    let account_id = ctx.viewer().account_id;
    let team_id = match input.text("group", MAX_NAME)? {
        Some(group) => Some(ctx.state.store.ensure_team(account_id, group.trim(), false).await?.0.id),
        None => ctx.auth.grant.member.profile.team_id,
    };
    let new = NewMember {
        account_id,
        email,
        first_name,
        last_name,
        title,
        team_id,
        department,
        role: Some(role),
        now: ctx.now(),
    };
    let (user_id, _) = ctx.state.store.invite_member(&new).await?;
    let member = ctx.state.store.member(user_id).await?.ok_or(Failure::Internal)?;
    Ok(Reply::Data(member_json(&member)))
}

/// `get_user_groups`: the teams of the account.
async fn get_user_groups(ctx: &Context<'_>) -> Result<Reply, Failure> {
    let teams = ctx.state.store.teams(ctx.viewer().account_id).await?;
    Ok(Reply::Data(Value::Array(teams.iter().map(team_json).collect())))
}

/// `add_user_group`: creates a team with its project folder, or answers the existing team of that title.
async fn add_user_group(ctx: &Context<'_>) -> Result<Reply, Failure> {
    ctx.input.required("title")?;
    let title = ctx.input.text("title", MAX_NAME)?.unwrap_or_default().trim();
    let client = ctx.input.flag("client")?.unwrap_or(false);
    let (team, _) = ctx.state.store.ensure_team(ctx.viewer().account_id, title, client).await?;
    Ok(Reply::Data(team_json(&team)))
}
