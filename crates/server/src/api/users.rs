//! Members: `me`.

use serde_json::{Map, Value, json};

use super::{Context, Failure, Reply};

/// `me`: the token's user, with the fields Worksection records (absent ones omitted).
pub async fn me(ctx: &Context<'_>) -> Result<Reply, Failure> {
    let member = &ctx.auth.grant.member;
    let person = &member.person;
    let mut user = Map::new();
    user.insert("id".into(), json!(member.user_id.to_string()));
    user.insert("first_name".into(), json!(person.first_name));
    user.insert("last_name".into(), json!(person.last_name));
    let name = format!("{} {}", person.first_name, person.last_name).trim().to_owned();
    user.insert("name".into(), json!(if name.is_empty() { person.email.clone() } else { name }));
    if !member.title.is_empty() {
        user.insert("title".into(), json!(member.title));
    }
    user.insert("role".into(), json!(member.role.display()));
    user.insert("email".into(), json!(person.email));
    Ok(Reply::Data(Value::Object(user)))
}
