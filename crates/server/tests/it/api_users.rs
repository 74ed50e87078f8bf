//! Members and teams through `/api/oauth2` (spec §3.2), compared with the recorded responses.

use reqwest::StatusCode;
use serde_json::{Value, json};
use wsoauth_server::admin;
use wsoauth_storage::Role;

use crate::api_projects::person;
use crate::common::*;

const USER_KEYS: [&str; 10] =
    ["id", "first_name", "last_name", "name", "title", "rate", "group", "department", "role", "email"];

#[tokio::test]
async fn add_user_and_get_users() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    // the recorded add_user success: names from the address when none are given, role User
    let kate = server.ok(&owner, "add_user", &[("email", "Kate.Greenway@ws.com")]).await;
    assert_eq!(keys(&kate), sorted(&USER_KEYS), "{kate}");
    assert!(kate["id"].as_str().unwrap().parse::<i64>().unwrap() >= 1000);
    assert_eq!(kate["first_name"], "kate");
    assert_eq!(kate["last_name"], "greenway");
    assert_eq!(kate["name"], "kate greenway");
    assert_eq!(kate["title"], "");
    assert_eq!(kate["rate"], json!(0));
    assert_eq!(kate["group"], "");
    assert_eq!(kate["department"], "");
    assert_eq!(kate["role"], "User");
    assert_eq!(kate["email"], "kate.greenway@ws.com");

    let frank = server
        .ok(
            &owner,
            "add_user",
            &[
                ("email", "frank.harper@ws.com"),
                ("first_name", "Frank"),
                ("last_name", "Harper"),
                ("title", "QA specialist"),
                ("group", "Development"),
                ("department", "Test team"),
                ("role", "guest"),
            ],
        )
        .await;
    assert_eq!(frank["name"], "Frank Harper");
    assert_eq!(frank["title"], "QA specialist");
    assert_eq!(frank["group"], "Development");
    assert_eq!(frank["department"], "Test team");
    assert_eq!(frank["role"], "Guest");
    let rita = server.ok(&owner, "add_user", &[("email", "rita@ws.com"), ("role", "Reader")]).await;
    assert_eq!(rita["role"], "Reader");
    assert_eq!(rita["first_name"], "rita");
    assert_eq!(rita["last_name"], "");
    // the group was created, with its folder
    let teams = server.ok(&owner, "get_user_groups", &[]).await;
    assert_eq!(teams.as_array().unwrap().len(), 1);
    assert_eq!(teams[0]["title"], "Development");
    let folders = server.ok(&owner, "get_project_groups", &[]).await;
    assert_eq!(folders[0]["title"], "Development");
    assert_eq!(folders[0]["type"], "company");

    // adding someone again answers them as they are
    let again = server.ok(&owner, "add_user", &[("email", "kate.greenway@ws.com"), ("first_name", "K")]).await;
    assert_eq!(again, kate);

    let users = server.ok(&owner, "get_users", &[]).await;
    let users = users.as_array().unwrap();
    assert_eq!(users.len(), 4);
    assert_eq!(users[0]["id"], server.owner_user_id.to_string());
    assert_eq!(users[0]["role"], "Owner");
    assert_eq!(users[0]["name"], "Olga Owner");
    assert_eq!(users[1], kate);
    assert_eq!(users[2], frank);
    for user in users {
        assert_eq!(keys(user), sorted(&USER_KEYS), "{user}");
        assert!(user["rate"].is_number());
        assert!(user["id"].is_string());
    }
    // a new person cannot sign in until an operator sets a password
    let browser = Browser::new();
    let (status, location, _) = browser.try_login(&server, "kate.greenway@ws.com", "", "/").await;
    assert!(!(status == StatusCode::SEE_OTHER && location.as_deref() == Some("/")), "signed in without a password");
}

#[tokio::test]
async fn add_user_errors_and_rights() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    let err = server.fails(&owner, "add_user", &[], 10).await;
    assert_eq!(
        err,
        json!({"status": "error", "status_code": 10, "message": "Field is required", "message_details": "email"})
    );
    server.fails(&owner, "add_user", &[("email", "   ")], 10).await;
    let err = server.fails(&owner, "add_user", &[("email", "a@b.c,d@e.f")], 11).await;
    assert_eq!(err["message"], "Invalid email");
    server.fails(&owner, "add_user", &[("email", "nobody")], 11).await;
    for role in ["admin", "owner", "manager", "x"] {
        let err = server.fails(&owner, "add_user", &[("email", "z@ws.com"), ("role", role)], 11).await;
        assert_eq!(err["message_details"], "role");
    }
    let long = "n".repeat(501);
    for field in ["first_name", "last_name", "title", "group", "department"] {
        server.fails(&owner, "add_user", &[("email", "z@ws.com"), (field, long.as_str())], 11).await;
    }
    // nobody was added by the refused calls
    assert_eq!(server.ok(&owner, "get_users", &[]).await.as_array().unwrap().len(), 1);

    // members who are not admins read, but cannot add people or teams (status_code 20)
    let (_, user) = person(&server, &owner, "kate.greenway@ws.com", "user", Some("Development")).await;
    assert_eq!(server.ok(&user, "get_users", &[]).await.as_array().unwrap().len(), 2);
    assert_eq!(server.ok(&user, "get_user_groups", &[]).await.as_array().unwrap().len(), 1);
    let err = server.fails(&user, "add_user", &[("email", "x@ws.com")], 20).await;
    assert_eq!(err["message"], "Access denied");
    server.fails(&user, "add_user_group", &[("title", "T")], 20).await;

    // an account admin may; without a group the new member is in the admin's team (here: none)
    let admin_id = admin::add_member(
        server.state(),
        server.account_id,
        "adam@ws.com",
        "Adam",
        "Admin",
        Role::Admin,
        Some("pw-admin1".into()),
    )
    .await
    .unwrap();
    let admin = server.token_for("adam@ws.com", "pw-admin1", Some(admin_id)).await;
    let added = server.ok(&admin, "add_user", &[("email", "new@ws.com")]).await;
    assert_eq!(added["group"], "");
    let added = server.ok(&admin, "add_user_group", &[("title", "Support")]).await;
    assert_eq!(added["title"], "Support");

    // scopes: users_read cannot add
    let read = server.tokens("users_read").await["access_token"].as_str().unwrap().to_owned();
    let (status, body) = server.api(&read, "add_user&email=x@ws.com").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "insufficient_scope");
    assert_eq!(body["scope"], "users_write");
    let (status, _) = server.api(&read, "add_user_group&title=T").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let projects = server.tokens("projects_read").await["access_token"].as_str().unwrap().to_owned();
    for action in ["get_users", "get_user_groups"] {
        let (status, body) = server.api(&projects, action).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{action}");
        assert_eq!(body["scope"], "users_read");
    }
    assert_eq!(server.api(&read, "get_users").await.0, StatusCode::OK);
}

#[tokio::test]
async fn an_existing_person_joins_the_account() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    let other = admin::create_account(server.state(), "Elsewhere", None).await.unwrap();
    let elsewhere_id =
        admin::add_member(server.state(), other.id, "ann@ws.com", "Ann", "Lee", Role::Owner, Some("pw-ann-123".into()))
            .await
            .unwrap();
    let ann =
        server.ok(&owner, "add_user", &[("email", "ann@ws.com"), ("first_name", "Other"), ("role", "user")]).await;
    assert_eq!(ann["name"], "Ann Lee", "a known person keeps their name");
    assert_eq!(ann["role"], "User");
    let ann_id: i64 = ann["id"].as_str().unwrap().parse().unwrap();
    assert_ne!(ann_id, elsewhere_id, "one user id per account");
    // she signs in with her password and picks the account
    let token = server.token_for("ann@ws.com", "pw-ann-123", Some(ann_id)).await;
    let me = server.ok(&token, "me", &[]).await;
    assert_eq!(me["id"], ann_id.to_string());
    assert_eq!(me["role"], "User");
}

#[tokio::test]
async fn teams() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    assert_eq!(server.ok(&owner, "get_user_groups", &[]).await, json!([]));
    let marketing = server.ok(&owner, "add_user_group", &[("title", "Marketing")]).await;
    assert_eq!(keys(&marketing), sorted(&["id", "title", "type", "client"]));
    assert_eq!(marketing["title"], "Marketing");
    assert_eq!(marketing["type"], "company");
    assert_eq!(marketing["client"], 0);
    assert!(marketing["id"].is_string());
    let bird = server.ok(&owner, "add_user_group", &[("title", "Singing bird"), ("client", "1")]).await;
    assert_eq!(bird["client"], 1);
    // no-op when the title exists (client is not changed)
    let same = server.ok(&owner, "add_user_group", &[("title", "Marketing"), ("client", "1")]).await;
    assert_eq!(same, marketing);
    let teams = server.ok(&owner, "get_user_groups", &[]).await;
    assert_eq!(teams, json!([marketing, bird]));
    // each team has its company folder; a people-made folder of the same title becomes the team's
    server.ok(&owner, "add_project_group", &[("title", "Design")]).await;
    server.ok(&owner, "add_user_group", &[("title", "Design")]).await;
    let folders = server.ok(&owner, "get_project_groups", &[]).await;
    let shown: Vec<(&str, &str)> = folders
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["title"].as_str().unwrap(), f["type"].as_str().unwrap()))
        .collect();
    assert_eq!(shown, [("Design", "company"), ("Marketing", "company"), ("Singing bird", "company")]);
    // a project in a team's folder shows the team's title as company
    let project = server.ok(&owner, "post_project", &[("title", "New brand launch"), ("company", "Marketing")]).await;
    assert_eq!(project["company"], "Marketing");

    let err = server.fails(&owner, "add_user_group", &[], 10).await;
    assert_eq!(
        err,
        json!({"status": "error", "status_code": 10, "message": "Field is required", "message_details": "title"})
    );
    server.fails(&owner, "add_user_group", &[("title", "T"), ("client", "2")], 11).await;
    server.fails(&owner, "add_user_group", &[("title", &"t".repeat(501))], 11).await;
}

/// Sends the same call `n` times at once; returns the `data` of each answer.
async fn at_once(server: &TestServer, token: &str, n: usize, action: &str, params: &[(&str, &str)]) -> Vec<Value> {
    let mut form: Vec<(String, String)> = vec![("action".into(), action.into())];
    form.extend(params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (url, token, form) = (server.url("/api/oauth2"), token.to_owned(), form.clone());
        tasks.spawn(async move {
            let response = plain().post(url).bearer_auth(token).form(&form).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["status"], "ok", "{body}");
            body["data"].clone()
        });
    }
    tasks.join_all().await
}

#[tokio::test]
async fn concurrent_adds_of_one_name_make_one() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    let teams = at_once(&server, &owner, 8, "add_user_group", &[("title", "Ops")]).await;
    assert!(teams.iter().all(|team| *team == teams[0]), "{teams:?}");
    let users = at_once(&server, &owner, 8, "add_user", &[("email", "same@ws.com"), ("group", "Ops")]).await;
    assert!(users.iter().all(|user| user["id"] == users[0]["id"]), "{users:?}");
    let folders = at_once(&server, &owner, 8, "add_project_group", &[("title", "F")]).await;
    assert!(folders.iter().all(|folder| *folder == folders[0]), "{folders:?}");
    assert_eq!(server.ok(&owner, "get_users", &[]).await.as_array().unwrap().len(), 2);
}
