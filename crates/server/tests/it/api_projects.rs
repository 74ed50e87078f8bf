//! Projects, project members and project folders through `/api/oauth2` (spec §3.5, §3.6), compared with the
//! recorded responses.

use reqwest::StatusCode;
use serde_json::{Value, json};
use wsoauth_server::admin;
use wsoauth_storage::Role;

use crate::common::*;

/// The keys of a JSON object, sorted.
fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap_or_else(|| panic!("object: {value}")).keys().cloned().collect();
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

/// A member of the test account who can sign in, made through `add_user` (with a team) and a password set by
/// an operator (here: through a membership of a second account). Returns (user id, token).
pub async fn person(server: &TestServer, owner: &str, email: &str, role: &str, group: Option<&str>) -> (i64, String) {
    let mut params = vec![("email", email), ("first_name", "Kate"), ("last_name", "Greenway"), ("role", role)];
    if let Some(group) = group {
        params.push(("group", group));
    }
    let user = server.ok(owner, "add_user", &params).await;
    let user_id: i64 = id(&user).parse().unwrap();
    let other = admin::create_account(server.state(), &format!("Other {email}"), None).await.unwrap();
    admin::add_member(server.state(), other.id, email, "Kate", "Greenway", Role::User, Some("pw-123456".into()))
        .await
        .unwrap();
    let token = server.token_for(email, "pw-123456", Some(user_id)).await;
    (user_id, token)
}

#[tokio::test]
async fn post_project_then_get_project() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    server.ok(&owner, "add_user", &[("email", "frank.harper@ws.com"), ("first_name", "Frank"), ("last_name", "Harper")]).await;
    let params = [
        ("title", "New brand launch"),
        ("email_user_from", "someone.else@ws.com"),
        ("email_manager", "frank.harper@ws.com"),
        ("email_user_to", "ANY"),
        ("members", "frank.harper@ws.com, owner@acme.test"),
        ("text", "Launch\r\nthe <brand>"),
        ("company", "Marketing"),
        ("datestart", "01.02.2021"),
        ("dateend", "01.03.2021"),
        ("max_time", "352"),
        ("max_money", "4224.5"),
        ("extra", "options"),
        ("options.allow_close", "1"),
        ("options.allow_give", "1"),
        ("options.require_term", "1"),
        ("options.require_tag", "1"),
        ("options.require_limit", "1"),
        ("options.timer_only", "1"),
    ];
    let created = server.ok(&owner, "post_project", &params).await;
    // the recorded post_project success, field for field (ids and dates aside)
    assert_eq!(
        keys(&created),
        sorted(&[
            "id", "name", "page", "status", "company", "user_from", "user_to", "date_added", "date_start", "date_end",
            "options", "max_time", "max_money"
        ]),
        "{created}"
    );
    let pid = id(&created);
    assert_eq!(created["name"], "New brand launch");
    assert_eq!(created["page"], format!("/project/{pid}/"));
    assert_eq!(created["status"], "active");
    assert_eq!(created["company"], "Marketing");
    assert_eq!(
        created["user_from"],
        json!({"id": server.owner_user_id.to_string(), "email": OWNER_EMAIL, "name": "Olga Owner"})
    );
    assert_eq!(created["user_to"]["email"], "frank.harper@ws.com");
    assert_eq!(created["user_to"]["name"], "Frank Harper");
    assert!(created["date_added"].as_str().unwrap().len() == 16, "{created}");
    assert_eq!(created["date_start"], "2021-02-01");
    assert_eq!(created["date_end"], "2021-03-01");
    assert_eq!(created["max_time"], json!(352));
    assert_eq!(created["max_money"], json!(4224.5));
    assert_eq!(
        created["options"],
        json!({"allow_close": 1, "allow_give": 1, "allow_term": 0, "allow_limit": 0, "require_term": 1,
               "require_tag": 1, "require_limit": 1, "require_hidden": 0, "deny_comments_edit": 0,
               "deny_task_edit": 0, "deny_task_delete": 0, "time_require": 0, "time_today": 0, "timer_only": 1})
    );

    // get_project answers the same project; extras add text and users
    let got = server.ok(&owner, "get_project", &[("id_project", &pid)]).await;
    assert_eq!(
        keys(&got),
        sorted(&[
            "id", "name", "page", "status", "company", "user_from", "user_to", "date_added", "date_start", "date_end",
            "max_time", "max_money"
        ])
    );
    assert_eq!(got["user_to"], created["user_to"]);
    let full = server.ok(&owner, "get_project", &[("id_project", &pid), ("extra", "text,options,users")]).await;
    assert_eq!(full["text"], "Launch\r\nthe <brand>");
    assert_eq!(full["options"], created["options"]);
    let users: Vec<&str> = full["users"].as_array().unwrap().iter().map(|u| u["email"].as_str().unwrap()).collect();
    assert_eq!(users, [OWNER_EMAIL, "frank.harper@ws.com"]);
    let html = server.ok(&owner, "get_project", &[("page", &format!("/project/{pid}/")), ("extra", "html")]).await;
    assert_eq!(html["text"], "Launch<br>the &lt;brand&gt;");

    // a project without manager, folder, dates or estimates
    let bare = server.ok(&owner, "post_project", &[("title", "Prototyping"), ("extra", "options")]).await;
    assert_eq!(
        keys(&bare),
        sorted(&["id", "name", "page", "status", "user_from", "user_to", "date_added", "options"]),
        "{bare}"
    );
    assert_eq!(bare["user_to"], json!({"id": "0", "email": "NOONE", "name": "Manager isn't assigned"}));
    assert!(bare["options"].as_object().unwrap().values().all(|v| *v == json!(0)));
}

#[tokio::test]
async fn project_errors() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    let err = server.fails(&owner, "get_project", &[("id_project", "999999")], 4).await;
    assert_eq!(err, json!({"status": "error", "status_code": 4, "message": "Project is invalid"}));
    server.fails(&owner, "get_project", &[], 10).await;
    for bad in ["abc", "-1", "0", "99999999999999999999999", "1.5"] {
        server.fails(&owner, "get_project", &[("id_project", bad)], 4).await;
    }
    server.fails(&owner, "get_project", &[("page", "/task/5/")], 3).await;

    let err = server.fails(&owner, "post_project", &[], 10).await;
    assert_eq!(err["message_details"], "title");
    server.fails(&owner, "post_project", &[("title", "  ")], 10).await;
    let err = server
        .fails(&owner, "post_project", &[("title", "T"), ("options.time_require", "1"), ("options.timer_only", "1")], 11)
        .await;
    assert_eq!(
        err,
        json!({"status": "error", "status_code": 11,
               "message": "Only one parameter (options.time_require or options.time_today or options.timer_only) can be set as 1."})
    );
    let err = server.fails(&owner, "post_project", &[("title", "T"), ("email_manager", "nobody@ws.com")], 11).await;
    assert_eq!(err["message"], "Invalid email");
    assert_eq!(err["message_details"], "nobody@ws.com");
    server.fails(&owner, "post_project", &[("title", "T"), ("members", "owner@acme.test,ghost@ws.com")], 11).await;
    server.fails(&owner, "post_project", &[("title", "T"), ("email_user_to", "not-an-email")], 11).await;
    for (name, bad) in [
        ("datestart", "31.02.2021"),
        ("dateend", "tomorrow"),
        ("max_time", "-3"),
        ("max_time", "1e400"),
        ("max_money", "lots"),
        ("options.allow_close", "2"),
        ("options[timer_only]", "yes"),
        ("company", &"c".repeat(501)),
    ] {
        server.fails(&owner, "post_project", &[("title", "T"), (name, bad)], 11).await;
    }
    server.fails(&owner, "post_project", &[("title", "T"), ("datestart", "02.02.2021"), ("dateend", "01.02.2021")], 11).await;
    let huge = "x".repeat(600);
    server.fails(&owner, "post_project", &[("title", &huge)], 11).await;
    let huge_text = "y".repeat(100_001);
    server.fails(&owner, "post_project", &[("title", "T"), ("text", &huge_text)], 11).await;
    // nothing was created by the refused calls
    assert_eq!(server.ok(&owner, "get_projects", &[]).await, json!([]));
}
