//! How projects, project folders, teams and members are written (spec §3.2, §3.5, §3.6).

use std::collections::HashMap;

use serde_json::{Map, Value, json};
use wsoauth_storage::{FolderRow, Member, PROJECT_OPTIONS, ProjectRow, TeamRow, UserBrief};

use super::format::{amount, datetime, display_name, no_manager, project_page, user_ref};
use super::intake::Extra;

/// `{"id","email","name"}` of a member.
pub fn brief_ref(user: &UserBrief) -> Value {
    user_ref(user.id, &user.email, &display_name(&user.first_name, &user.last_name, &user.email))
}

/// What a project is shown with besides its own row: members (with `extra=users`) and tags.
#[derive(Default)]
pub struct Related {
    pub members: HashMap<i64, Vec<Value>>,
    pub tags: HashMap<i64, Map<String, Value>>,
}

impl Related {
    /// Groups (project id, member) rows by project; `tags` are (tag id, title) by project.
    pub fn new(members: Vec<(i64, UserBrief)>, tags: HashMap<i64, Vec<(i64, String)>>) -> Related {
        let mut related = Related::default();
        for (project, user) in members {
            related.members.entry(project).or_default().push(brief_ref(&user));
        }
        for (project, tags) in tags {
            let tags = tags.into_iter().map(|(id, title)| (id.to_string(), json!(title))).collect();
            related.tags.insert(project, tags);
        }
        related
    }
}

/// A project object: `text` with `extra=text|html`, `options` with `extra=options`, `users` with `extra=users`;
/// absent optional fields are left out.
pub fn project_json(project: &ProjectRow, extra: &Extra, related: &Related) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), json!(project.id.to_string()));
    out.insert("name".into(), json!(project.name));
    out.insert("page".into(), json!(project_page(project.id)));
    out.insert("status".into(), json!(project.status));
    if let Some(folder) = &project.folder {
        out.insert("company".into(), json!(folder));
    }
    if let Some(author) = &project.author {
        out.insert("user_from".into(), brief_ref(author));
    }
    out.insert("user_to".into(), project.manager.as_ref().map_or_else(no_manager, brief_ref));
    if extra.has("html") {
        out.insert("text".into(), json!(html(&project.text)));
    } else if extra.text() {
        out.insert("text".into(), json!(project.text));
    }
    out.insert("date_added".into(), datetime(project.date_added));
    if let Some(date) = &project.date_start {
        out.insert("date_start".into(), json!(date));
    }
    if let Some(date) = &project.date_end {
        out.insert("date_end".into(), json!(date));
    }
    if let Some(closed) = project.date_closed {
        out.insert("date_closed".into(), datetime(closed));
    }
    if extra.has("options") {
        let options: Map<String, Value> =
            PROJECT_OPTIONS.iter().map(|name| ((*name).to_owned(), json!(i32::from(project.option(name))))).collect();
        out.insert("options".into(), Value::Object(options));
    }
    if let Some(time) = project.max_time {
        out.insert("max_time".into(), amount(time));
    }
    if let Some(money) = project.max_money {
        out.insert("max_money".into(), amount(money));
    }
    if let Some(tags) = related.tags.get(&project.id).filter(|tags| !tags.is_empty()) {
        out.insert("tags".into(), Value::Object(tags.clone()));
    }
    if extra.has("users") {
        out.insert("users".into(), json!(related.members.get(&project.id).cloned().unwrap_or_default()));
    }
    Value::Object(out)
}

/// The description as HTML: escaped, line breaks as `<br>`.
fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\r' => {}
            '\n' => out.push_str("<br>"),
            c => out.push(c),
        }
    }
    out
}

/// `{"id","title","type":"company","client":0|1}`.
pub fn team_json(team: &TeamRow) -> Value {
    json!({"id": team.id.to_string(), "title": team.title, "type": "company", "client": i32::from(team.client)})
}

/// `{"id","title","type":"folder"}`, or a team's folder `{"id","title","type":"company","client":0|1}`.
pub fn folder_json(folder: &FolderRow) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), json!(folder.id.to_string()));
    out.insert("title".into(), json!(folder.title));
    out.insert("type".into(), json!(folder.kind));
    if let Some(client) = folder.client {
        out.insert("client".into(), json!(i32::from(client)));
    }
    Value::Object(out)
}

/// A member as `get_users` and `add_user` show them; phones and addresses only when set.
pub fn member_json(member: &Member) -> Value {
    let person = &member.person;
    let profile = &member.profile;
    let mut out = Map::new();
    out.insert("id".into(), json!(member.user_id.to_string()));
    out.insert("first_name".into(), json!(person.first_name));
    out.insert("last_name".into(), json!(person.last_name));
    out.insert("name".into(), json!(display_name(&person.first_name, &person.last_name, &person.email)));
    out.insert("title".into(), json!(member.title));
    out.insert("rate".into(), amount(profile.rate));
    out.insert("group".into(), json!(profile.team));
    out.insert("department".into(), json!(profile.department));
    out.insert("role".into(), json!(member.role.display()));
    out.insert("email".into(), json!(person.email));
    let optional = [
        ("phone", &profile.phones[0]),
        ("phone2", &profile.phones[1]),
        ("phone3", &profile.phones[2]),
        ("phone4", &profile.phones[3]),
        ("address", &profile.address),
        ("address2", &profile.address2),
    ];
    for (key, value) in optional {
        if !value.is_empty() {
            out.insert(key.into(), json!(value));
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_and_breaks_lines() {
        assert_eq!(html("a <b> & \"c\"\r\nd"), "a &lt;b&gt; &amp; &quot;c&quot;<br>d");
    }
}
