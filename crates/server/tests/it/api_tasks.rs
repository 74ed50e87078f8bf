//! Tasks and subtasks through `/api/oauth2` (spec §3.4, §3.8): every action, compared with the recorded
//! responses field for field (ids and dates aside), every documented error, scopes, roles, hidden tasks, and
//! bad input that must never become a 500.

use std::time::Instant;

use reqwest::StatusCode;
use serde_json::{Value, json};
use wsoauth_domain::Clock;
use wsoauth_domain::dates::format_datetime;
use wsoauth_storage::{NewTask, Role, Viewer};

use crate::common::*;

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> =
        value.as_object().unwrap_or_else(|| panic!("object: {value}")).keys().cloned().collect();
    keys.sort();
    keys
}

fn sorted(keys: &[&str]) -> Vec<String> {
    let mut keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
    keys.sort();
    keys
}

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap_or_else(|| panic!("string id in {value}")).to_owned()
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array().unwrap_or_else(|| panic!("array: {list}")).iter().map(id).collect()
}

fn owner_ref(server: &TestServer) -> Value {
    json!({"id": server.owner_user_id.to_string(), "email": OWNER_EMAIL, "name": "Olga Owner"})
}

const NOONE: &str = r#"{"id":"1","email":"NOONE","name":"Executive isn't assigned"}"#;
const ANYONE: &str = r#"{"id":"2","email":"ANY","name":"Anyone"}"#;

fn sentinel(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// A member of the test account with a token (every scope). Returns (user id, token).
async fn person(server: &TestServer, email: &str, role: Role) -> (i64, String) {
    let user = server.member(server.account_id, email, "pw-123456", role).await;
    let token = server.token_for(email, "pw-123456", None).await;
    (user, token)
}

/// A project made through `post_project`; returns its id.
async fn project(server: &TestServer, token: &str, title: &str, members: &str) -> String {
    let mut params = vec![("title", title)];
    if !members.is_empty() {
        params.push(("members", members));
    }
    id(&server.ok(token, "post_project", &params).await)
}

async fn task(server: &TestServer, token: &str, params: &[(&str, &str)]) -> String {
    id(&server.ok(token, "post_task", params).await)
}

/// Calls an action expecting 403 insufficient_scope naming `scope`.
async fn refused(server: &TestServer, token: &str, action: &str, params: &[(&str, &str)], scope: &str) {
    let mut form: Vec<(&str, &str)> = vec![("action", action)];
    form.extend_from_slice(params);
    let response = plain().post(server.url("/api/oauth2")).bearer_auth(token).form(&form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "{action}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope", "{action}: {body}");
    assert_eq!(body["scope"], scope, "{action}: {body}");
}

#[tokio::test]
async fn post_task_then_get_task() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    let (frank, _) = person(&server, "frank.harper@ws.com", Role::User).await;
    let (kate, _) = person(&server, "kate.greenway@ws.com", Role::User).await;
    let pid = project(&server, &owner, "Performance improvement", "frank.harper@ws.com, kate.greenway@ws.com").await;
    let project_ref = json!({"id": pid, "name": "Performance improvement", "page": format!("/project/{pid}/")});

    // The recorded minimal post_task: no executive, priority 1, no text key.
    let created = server.ok(&owner, "post_task", &[("id_project", &pid), ("title", "Template creation")]).await;
    assert_eq!(
        keys(&created),
        sorted(&["id", "name", "page", "status", "priority", "user_from", "user_to", "project", "date_added"]),
        "{created}"
    );
    let parent = id(&created);
    assert_eq!(created["name"], "Template creation");
    assert_eq!(created["page"], format!("/project/{pid}/{parent}/"));
    assert_eq!(created["status"], "active");
    assert_eq!(created["priority"], "1");
    assert_eq!(created["user_from"], owner_ref(&server));
    assert_eq!(created["user_to"], sentinel(NOONE));
    assert_eq!(created["project"], project_ref);
    assert_eq!(created["date_added"], format_datetime(server.clock.now()));

    // The recorded subtask: every parameter.
    let sub = server
        .ok(
            &owner,
            "post_task",
            &[
                ("id_project", &pid),
                ("title", "Template prototype"),
                ("id_parent", &parent),
                ("email_user_to", "frank.harper@ws.com"),
                ("priority", "2"),
                ("text", "Take previous prototype as an example"),
                ("todo[]", "draft"),
                ("todo[]", "first version"),
                ("todo[]", "final result"),
                ("datestart", "15.01.2021"),
                ("dateend", "17.01.2021"),
                ("subscribe", "kate.greenway@ws.com, frank.harper@ws.com"),
                ("hidden", "kate.greenway@ws.com, frank.harper@ws.com"),
                ("max_time", "15"),
                ("max_money", "165"),
                ("extra", "text"),
            ],
        )
        .await;
    assert_eq!(
        keys(&sub),
        sorted(&[
            "id",
            "name",
            "page",
            "status",
            "priority",
            "user_from",
            "user_to",
            "project",
            "parent",
            "text",
            "date_added",
            "date_start",
            "date_end",
            "max_time",
            "max_money"
        ]),
        "{sub}"
    );
    let sub_id = id(&sub);
    assert_eq!(sub["page"], format!("/project/{pid}/{parent}/{sub_id}/"));
    assert_eq!(sub["priority"], "2");
    assert_eq!(sub["user_to"], json!({"id": frank.to_string(), "email": "frank.harper@ws.com", "name": "Test Person"}));
    assert_eq!(
        sub["parent"],
        json!({"id": parent, "name": "Template creation", "page": format!("/project/{pid}/{parent}/"),
               "status": "active", "priority": "1"})
    );
    assert_eq!(sub["text"], "Take previous prototype as an example\r\n• draft\r\n• first version\r\n• final result");
    assert_eq!(sub["date_start"], "2021-01-15");
    assert_eq!(sub["date_end"], "2021-01-17");
    assert_eq!(sub["max_time"], json!(15));
    assert_eq!(sub["max_money"], json!(165));

    // get_task answers the same task; by id or by page.
    let got = server.ok(&owner, "get_task", &[("id_task", &sub_id)]).await;
    let mut expected = sub.clone();
    expected.as_object_mut().unwrap().remove("text");
    assert_eq!(got, expected);
    let by_page = server.ok(&owner, "get_task", &[("page", &format!("/project/{pid}/{parent}/{sub_id}/"))]).await;
    assert_eq!(by_page, expected);

    // With extras: text, subscribers (author, executive, listed), has_comments.
    let full = server.ok(&owner, "get_task", &[("id_task", &sub_id), ("extra", "text,files,subscribers")]).await;
    assert_eq!(full["text"], sub["text"]);
    assert_eq!(full["has_comments"], 0);
    let subscribers: Vec<i64> =
        full["subscribers"].as_array().unwrap().iter().map(|s| id(s).parse().unwrap()).collect();
    let mut want = vec![server.owner_user_id, frank, kate];
    want.sort();
    assert_eq!(subscribers, want);
    assert!(full.get("files").is_none());
    let html = server.ok(&owner, "get_task", &[("id_task", &sub_id), ("extra", "html")]).await;
    assert_eq!(html["text"], "Take previous prototype as an example<br>• draft<br>• first version<br>• final result");

    // The parent with extra=subtasks: children as short tasks.
    let tree = server.ok(&owner, "get_task", &[("id_task", &parent), ("extra", "subtasks")]).await;
    assert_eq!(
        tree["child"],
        json!([{"id": sub_id, "name": "Template prototype", "page": format!("/project/{pid}/{parent}/{sub_id}/"),
                "status": "active", "priority": "2"}])
    );
    assert!(tree.get("parent").is_none());
}
