//! Members and teams: `me`, `get_users`, `add_user`, `get_user_groups`, `add_user_group`, `subscribe`,
//! `unsubscribe`.

use serde_json::{Map, Value, json};
use wsoauth_types::{ApiErrorCode, Scope};

use super::{Access, ActionSpec, Context, Failure, Reply};

pub const ACTIONS: &[ActionSpec] = &[("me", Scope::UsersRead, Access::Read)];

pub async fn run(action: &str, ctx: &Context<'_>) -> Result<Reply, Failure> {
    match action {
        "me" => me(ctx).await,
        _ => Err(ApiErrorCode::ActionInvalid.into()),
    }
}

/// `me`: the token's user, with the fields Worksection records (absent ones omitted).
async fn me(ctx: &Context<'_>) -> Result<Reply, Failure> {
    let member = &ctx.auth.grant.member;
    let person = &member.person;
    let mut user = Map::new();
    user.insert("id".into(), json!(member.user_id.to_string()));
    user.insert("first_name".into(), json!(person.first_name));
    user.insert("last_name".into(), json!(person.last_name));
    user.insert(
        "name".into(),
        json!(super::format::display_name(&person.first_name, &person.last_name, &person.email)),
    );
    if !member.title.is_empty() {
        user.insert("title".into(), json!(member.title));
    }
    user.insert("role".into(), json!(member.role.display()));
    user.insert("email".into(), json!(person.email));
    Ok(Reply::Data(Value::Object(user)))
}
