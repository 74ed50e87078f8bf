//! Projects, project members and project folders through `/api/oauth2` (spec §3.5, §3.6), compared with the
//! recorded responses.

use reqwest::StatusCode;
use serde_json::{Value, json};
use wsoauth_server::admin;
use wsoauth_storage::Role;

use crate::common::*;

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
    server
        .ok(&owner, "add_user", &[("email", "frank.harper@ws.com"), ("first_name", "Frank"), ("last_name", "Harper")])
        .await;
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
            "id",
            "name",
            "page",
            "status",
            "company",
            "user_from",
            "user_to",
            "date_added",
            "date_start",
            "date_end",
            "options",
            "max_time",
            "max_money"
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
            "id",
            "name",
            "page",
            "status",
            "company",
            "user_from",
            "user_to",
            "date_added",
            "date_start",
            "date_end",
            "max_time",
            "max_money"
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
        .fails(
            &owner,
            "post_project",
            &[("title", "T"), ("options.time_require", "1"), ("options.timer_only", "1")],
            11,
        )
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
    server
        .fails(&owner, "post_project", &[("title", "T"), ("datestart", "02.02.2021"), ("dateend", "01.02.2021")], 11)
        .await;
    let huge = "x".repeat(600);
    server.fails(&owner, "post_project", &[("title", &huge)], 11).await;
    let huge_text = "y".repeat(100_001);
    server.fails(&owner, "post_project", &[("title", "T"), ("text", &huge_text)], 11).await;
    // nothing was created by the refused calls
    assert_eq!(server.ok(&owner, "get_projects", &[]).await, json!([]));
}

/// Posts a JSON body to the API; asserts HTTP 200 and returns the envelope.
pub async fn call_json(server: &TestServer, token: &str, body: Value) -> Value {
    let response = plain().post(server.url("/api/oauth2")).bearer_auth(token).json(&body).send().await.unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn get_projects_filters_and_extras() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    server.ok(&owner, "add_user", &[("email", "frank.harper@ws.com")]).await;
    let a = id(&server.ok(&owner, "post_project", &[("title", "Alpha"), ("members", "frank.harper@ws.com")]).await);
    let b = id(&server.ok(&owner, "post_project", &[("title", "Beta"), ("text", "about beta")]).await);
    server.ok(&owner, "close_project", &[("id_project", &b)]).await;

    let all = server.ok(&owner, "get_projects", &[]).await;
    let names: Vec<&str> = all.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Alpha", "Beta"]);
    // without extras: no text, options or users
    for project in all.as_array().unwrap() {
        for key in ["text", "options", "users"] {
            assert!(project.get(key).is_none(), "{project}");
        }
    }
    let active = server.ok(&owner, "get_projects", &[("filter", "active")]).await;
    assert_eq!(active.as_array().unwrap().len(), 1);
    assert_eq!(active[0]["id"], a.as_str());
    for filter in ["archive", "archived", "ARCHIVE"] {
        let archived = server.ok(&owner, "get_projects", &[("filter", filter)]).await;
        assert_eq!(archived.as_array().unwrap().len(), 1, "{filter}");
        assert_eq!(archived[0]["id"], b.as_str());
        assert_eq!(archived[0]["status"], "archive");
        assert!(archived[0]["date_closed"].as_str().unwrap().len() == 16, "{archived}");
    }
    assert_eq!(server.ok(&owner, "get_projects", &[("filter", "pending")]).await, json!([]));
    let err = server.fails(&owner, "get_projects", &[("filter", "deleted")], 11).await;
    assert_eq!(err["message_details"], "filter");

    let full = server.ok(&owner, "get_projects", &[("extra", "text, options,users")]).await;
    let alpha = &full[0];
    assert_eq!(alpha["text"], "");
    assert_eq!(alpha["options"].as_object().unwrap().len(), 14);
    let emails: Vec<&str> = alpha["users"].as_array().unwrap().iter().map(|u| u["email"].as_str().unwrap()).collect();
    assert_eq!(emails, [OWNER_EMAIL, "frank.harper@ws.com"]);
    assert_eq!(full[1]["text"], "about beta");
    assert_eq!(full[1]["users"].as_array().unwrap().len(), 1);
    // unknown extras are ignored
    server.ok(&owner, "get_projects", &[("extra", "bogus")]).await;
}

#[tokio::test]
async fn update_project_changes_what_is_given() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    server.ok(&owner, "add_user", &[("email", "frank.harper@ws.com")]).await;
    server.ok(&owner, "add_user", &[("email", "kate.greenway@ws.com")]).await;
    let created = server
        .ok(
            &owner,
            "post_project",
            &[
                ("title", "New brand launch"),
                ("email_manager", "frank.harper@ws.com"),
                ("datestart", "2021-02-01"),
                ("options.timer_only", "1"),
                ("options.allow_close", "1"),
            ],
        )
        .await;
    let pid = id(&created);
    let updated = server.ok(&owner, "update_project", &[("id_project", &pid), ("title", "Owl brand launch")]).await;
    // the recorded update_project success: the project, without extras
    assert_eq!(
        keys(&updated),
        sorted(&["id", "name", "page", "status", "user_from", "user_to", "date_added", "date_start"]),
        "{updated}"
    );
    assert_eq!(updated["name"], "Owl brand launch");
    assert_eq!(updated["user_to"]["email"], "frank.harper@ws.com", "the manager stays");
    assert_eq!(updated["date_added"], created["date_added"]);

    let updated = server
        .ok(
            &owner,
            "update_project",
            &[
                ("id_project", &pid),
                ("email_manager", "NOONE"),
                ("members", "kate.greenway@ws.com"),
                ("dateend", "01.03.2021"),
                ("max_time", "12,5"),
                ("max_money", "100"),
                ("options.timer_only", "0"),
                ("options.time_today", "1"),
                ("extra", "options,users"),
            ],
        )
        .await;
    assert_eq!(updated["user_to"], json!({"id": "0", "email": "NOONE", "name": "Manager isn't assigned"}));
    assert_eq!(updated["date_end"], "2021-03-01");
    assert_eq!(updated["max_time"], json!(12.5));
    assert_eq!(updated["max_money"], json!(100));
    assert_eq!(updated["options"]["timer_only"], 0);
    assert_eq!(updated["options"]["time_today"], 1);
    assert_eq!(updated["options"]["allow_close"], 1, "options not given stay");
    let emails: Vec<&str> = updated["users"].as_array().unwrap().iter().map(|u| u["email"].as_str().unwrap()).collect();
    assert_eq!(emails, [OWNER_EMAIL, "frank.harper@ws.com", "kate.greenway@ws.com"], "members are added");

    // conflicting options, also with the stored ones; nothing changes
    let err = server.fails(&owner, "update_project", &[("id_project", &pid), ("options.time_require", "1")], 11).await;
    assert_eq!(
        err["message"],
        "Only one parameter (options.time_require or options.time_today or options.timer_only) can be set as 1."
    );
    server
        .fails(&owner, "update_project", &[("id_project", &pid), ("title", "X"), ("options.timer_only", "1")], 11)
        .await;
    let now = server.ok(&owner, "get_project", &[("id_project", &pid)]).await;
    assert_eq!(now["name"], "Owl brand launch");
    // the end may not come before the (stored) start
    server.fails(&owner, "update_project", &[("id_project", &pid), ("dateend", "31.01.2021")], 11).await;
    server.fails(&owner, "update_project", &[("id_project", &pid), ("email_manager", "ghost@ws.com")], 11).await;
    server.fails(&owner, "update_project", &[("id_project", "424242"), ("title", "X")], 4).await;
    server.fails(&owner, "update_project", &[("title", "X")], 10).await;
    // company moves the project to a folder (created if needed)
    let moved = server.ok(&owner, "update_project", &[("id_project", &pid), ("company", "Outsource")]).await;
    assert_eq!(moved["company"], "Outsource");
}

#[tokio::test]
async fn close_and_activate() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    let pid = id(&server.ok(&owner, "post_project", &[("title", "P")]).await);
    let done = server.ok(&owner, "close_project", &[("id_project", &pid)]).await;
    assert_eq!(done, json!({"status": "ok"}));
    let err = server.fails(&owner, "close_project", &[("id_project", &pid)], 12).await;
    assert_eq!(err, json!({"status": "error", "status_code": 12, "message": "Project is already closed"}));
    let closed = server.ok(&owner, "get_project", &[("id_project", &pid)]).await;
    assert_eq!(closed["status"], "archive");
    let closed_at = closed["date_closed"].clone();
    assert!(closed_at.is_string());
    assert_eq!(server.ok(&owner, "activate_project", &[("id_project", &pid)]).await, json!({"status": "ok"}));
    let err = server.fails(&owner, "activate_project", &[("id_project", &pid)], 12).await;
    assert_eq!(err, json!({"status": "error", "status_code": 12, "message": "Project is already active"}));
    let active = server.ok(&owner, "get_project", &[("id_project", &pid)]).await;
    assert_eq!(active["status"], "active");
    assert_eq!(active["date_closed"], closed_at, "an active project keeps its previous closing date");
    server.fails(&owner, "close_project", &[("id_project", "77777")], 4).await;
    server.fails(&owner, "activate_project", &[], 10).await;
}

async fn member_emails(server: &TestServer, token: &str, pid: &str) -> Vec<String> {
    let project = server.ok(token, "get_project", &[("id_project", pid), ("extra", "users")]).await;
    project["users"].as_array().unwrap().iter().map(|u| u["email"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn project_members() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    server.ok(&owner, "add_user", &[("email", "frank.harper@ws.com")]).await;
    server.ok(&owner, "add_user", &[("email", "kate.greenway@ws.com")]).await;
    let pid = id(&server.ok(&owner, "post_project", &[("title", "P")]).await);
    let done = server
        .ok(
            &owner,
            "add_project_members",
            &[("id_project", &pid), ("members", "Frank.Harper@ws.com,kate.greenway@ws.com")],
        )
        .await;
    assert_eq!(done, json!({"status": "ok"}));
    assert_eq!(
        member_emails(&server, &owner, &pid).await,
        [OWNER_EMAIL, "frank.harper@ws.com", "kate.greenway@ws.com"]
    );
    // adding again is harmless
    server.ok(&owner, "add_project_members", &[("id_project", &pid), ("members", "frank.harper@ws.com")]).await;

    let err = server
        .fails(
            &owner,
            "add_project_members",
            &[("id_project", &pid), ("members", "frank.harper@ws.com,brian.dragonfly@gmail.com")],
            11,
        )
        .await;
    assert_eq!(
        err,
        json!({"status": "error", "status_code": 11, "message": "Invalid email", "message_details": "brian.dragonfly@gmail.com"})
    );
    server.fails(&owner, "add_project_members", &[("id_project", &pid), ("members", "not an email")], 11).await;
    let err = server.fails(&owner, "add_project_members", &[("id_project", &pid)], 10).await;
    assert_eq!(err["message_details"], "members");
    server.fails(&owner, "add_project_members", &[("id_project", "5555"), ("members", "frank.harper@ws.com")], 4).await;

    let done =
        server.ok(&owner, "delete_project_members", &[("id_project", &pid), ("members", "kate.greenway@ws.com")]).await;
    assert_eq!(done, json!({"status": "ok"}));
    assert_eq!(member_emails(&server, &owner, &pid).await, [OWNER_EMAIL, "frank.harper@ws.com"]);
    // no longer a member, or never a person of the account: 11, and nothing is removed
    for email in ["kate.greenway@ws.com", "brian.dragonfly@gmail.com"] {
        let err = server
            .fails(
                &owner,
                "delete_project_members",
                &[("id_project", &pid), ("members", &format!("frank.harper@ws.com,{email}"))],
                11,
            )
            .await;
        assert_eq!(err["message_details"], email);
    }
    assert_eq!(member_emails(&server, &owner, &pid).await, [OWNER_EMAIL, "frank.harper@ws.com"]);
}

#[tokio::test]
async fn project_folders() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    assert_eq!(server.ok(&owner, "get_project_groups", &[]).await, json!([]));
    let outsource = server.ok(&owner, "add_project_group", &[("title", "Outsource")]).await;
    assert_eq!(keys(&outsource), sorted(&["id", "title", "type"]));
    assert_eq!(outsource["title"], "Outsource");
    assert_eq!(outsource["type"], "folder");
    // the Postman request line's name works too, and an existing title is answered as it is
    let again = server.ok(&owner, "add_project_groups", &[("title", " Outsource ")]).await;
    assert_eq!(again, outsource);
    server.ok(&owner, "add_project_groups", &[("title", "Design")]).await;
    let team = server.ok(&owner, "add_user_group", &[("title", "Singing bird"), ("client", "1")]).await;
    let groups = server.ok(&owner, "get_project_groups", &[]).await;
    let shown: Vec<(String, String, Option<i64>)> = groups
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["title"].as_str().unwrap().into(), g["type"].as_str().unwrap().into(), g["client"].as_i64()))
        .collect();
    assert_eq!(
        shown,
        [
            ("Design".into(), "folder".into(), None),
            ("Outsource".into(), "folder".into(), None),
            ("Singing bird".into(), "company".into(), Some(1)),
        ]
    );
    assert!(groups.as_array().unwrap().iter().all(|g| g["id"].is_string()));
    assert_eq!(team["title"], "Singing bird");
    // adding the team's folder by name answers the company folder
    let company = server.ok(&owner, "add_project_group", &[("title", "Singing bird")]).await;
    assert_eq!(company["type"], "company");
    assert_eq!(company["client"], 1);
    let err = server.fails(&owner, "add_project_group", &[], 10).await;
    assert_eq!(
        err,
        json!({"status": "error", "status_code": 10, "message": "Field is required", "message_details": "title"})
    );
    server.fails(&owner, "add_project_group", &[("title", &"t".repeat(501))], 11).await;
}

#[tokio::test]
async fn scopes_are_checked() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    let pid = id(&server.ok(&owner, "post_project", &[("title", "P")]).await);
    let tasks_only = server.tokens("tasks_read").await["access_token"].as_str().unwrap().to_owned();
    let read_only = server.tokens("projects_read").await["access_token"].as_str().unwrap().to_owned();
    let refused = |token: String, action: &'static str, params: Vec<(&'static str, String)>, scope: &'static str| {
        let server = &server;
        async move {
            let mut form: Vec<(&str, String)> = vec![("action", action.to_owned())];
            form.extend(params);
            let response =
                plain().post(server.url("/api/oauth2")).bearer_auth(&token).form(&form).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{action}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"], "insufficient_scope", "{action}: {body}");
            assert_eq!(body["scope"], scope, "{action}: {body}");
        }
    };
    for action in ["get_projects", "get_project", "get_project_groups"] {
        refused(tasks_only.clone(), action, vec![("id_project", pid.clone())], "projects_read").await;
    }
    for action in [
        "post_project",
        "update_project",
        "close_project",
        "activate_project",
        "add_project_members",
        "delete_project_members",
        "add_project_group",
        "add_project_groups",
    ] {
        refused(read_only.clone(), action, vec![("id_project", pid.clone()), ("title", "x".into())], "projects_write")
            .await;
    }
    // the read-only token reads
    server.ok(&read_only, "get_project", &[("id_project", &pid)]).await;
}

#[tokio::test]
async fn members_see_their_projects_only_and_guests_cannot_write() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    let (_, user) = person(&server, &owner, "kate.greenway@ws.com", "user", Some("Development")).await;
    let (_, guest) = person(&server, &owner, "gus.guest@ws.com", "guest", None).await;
    let (_, reader) = person(&server, &owner, "rita.reader@ws.com", "reader", None).await;
    let hers = id(&server.ok(&owner, "post_project", &[("title", "Hers"), ("members", "kate.greenway@ws.com")]).await);
    let guests = id(&server.ok(&owner, "post_project", &[("title", "Guests"), ("members", "gus.guest@ws.com")]).await);
    let secret = id(&server.ok(&owner, "post_project", &[("title", "Secret")]).await);

    // a user: projects they are a member of, author or manager of; others do not exist for them
    let seen = server.ok(&user, "get_projects", &[]).await;
    let names: Vec<&str> = seen.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Hers"]);
    let err = server.fails(&user, "get_project", &[("id_project", &secret)], 4).await;
    assert_eq!(err, json!({"status": "error", "status_code": 4, "message": "Project is invalid"}));
    server.fails(&user, "update_project", &[("id_project", &secret), ("title", "X")], 4).await;
    server.fails(&user, "close_project", &[("id_project", &secret)], 4).await;
    server
        .fails(&user, "add_project_members", &[("id_project", &secret), ("members", "kate.greenway@ws.com")], 4)
        .await;
    // a member may not change a project they do not manage
    server.fails(&user, "update_project", &[("id_project", &hers), ("title", "X")], 20).await;
    server.fails(&user, "close_project", &[("id_project", &hers)], 20).await;
    // their own project: author, default folder = their team's, and they manage it
    let own = server.ok(&user, "post_project", &[("title", "Own"), ("extra", "users")]).await;
    assert_eq!(own["company"], "Development");
    assert_eq!(own["user_from"]["email"], "kate.greenway@ws.com");
    let own_id = id(&own);
    server.ok(&user, "update_project", &[("id_project", &own_id), ("title", "Own 2")]).await;
    server.ok(&user, "close_project", &[("id_project", &own_id)]).await;
    let names: Vec<String> = server
        .ok(&user, "get_projects", &[])
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["Hers", "Own 2"]);
    // the owner (an admin) sees all
    assert_eq!(server.ok(&owner, "get_projects", &[]).await.as_array().unwrap().len(), 4);

    // guests and readers read what they are members of, and cannot write
    let seen = server.ok(&guest, "get_projects", &[]).await;
    assert_eq!(seen.as_array().unwrap().len(), 1);
    assert_eq!(seen[0]["id"], guests.as_str());
    assert_eq!(server.ok(&reader, "get_projects", &[]).await, json!([]));
    for token in [&guest, &reader] {
        let err = server.fails(token, "post_project", &[("title", "Nope")], 20).await;
        assert_eq!(err["message"], "Access denied");
        server.fails(token, "update_project", &[("id_project", &guests), ("title", "X")], 20).await;
        server.fails(token, "add_project_group", &[("title", "F")], 20).await;
    }
    assert_eq!(server.ok(&owner, "get_projects", &[]).await.as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn bad_input_is_an_envelope_never_a_500() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    let pid = id(&server.ok(&owner, "post_project", &[("title", "P")]).await);
    // JSON bodies with wrong types
    let cases = [
        json!({"action": "post_project", "title": {"nested": 1}}),
        json!({"action": "post_project", "title": ["a", "b"]}),
        json!({"action": "post_project", "title": 5, "max_time": [1, 2], "members": 7}),
        json!({"action": "post_project", "title": "T", "options": {"allow_close": "maybe"}}),
        json!({"action": "post_project", "title": "T", "options": {"time_today": true, "timer_only": true}}),
        json!({"action": "post_project", "title": "T", "datestart": 20210101}),
        json!({"action": "post_project", "title": "T", "max_money": 1e300}),
        json!({"action": "get_project", "id_project": 1.5}),
        json!({"action": "get_project", "id_project": [1, 2]}),
        json!({"action": "get_project", "id_project": {"a": 1}}),
        json!({"action": "get_project", "id_project": true}),
        json!({"action": "get_projects", "filter": ["active", "archive"]}),
        json!({"action": "get_projects", "extra": {"users": 1}}),
        json!({"action": "update_project", "id_project": pid, "email_manager": ["a@b.c"]}),
        json!({"action": "add_project_members", "id_project": pid, "members": [1, 2]}),
        json!({"action": "delete_project_members", "id_project": pid, "members": {"x": "y"}}),
        json!({"action": "add_project_group", "title": null}),
        json!({"action": "close_project", "id_project": "9".repeat(400)}),
    ];
    for case in cases {
        let body = call_json(&server, &owner, case.clone()).await;
        assert!(body["status"] == "ok" || body["status_code"].is_u64(), "{case}: {body}");
    }
    // JSON options and arrays work like form fields
    let created = call_json(
        &server,
        &owner,
        json!({"action": "post_project", "title": "J", "members": [OWNER_EMAIL], "extra": "options",
               "options": {"allow_close": 1, "deny_task_delete": true}}),
    )
    .await;
    assert_eq!(created["data"]["options"]["allow_close"], 1, "{created}");
    assert_eq!(created["data"]["options"]["deny_task_delete"], 1, "{created}");
    let err = call_json(
        &server,
        &owner,
        json!({"action": "post_project", "title": "T", "options": {"time_today": 1, "timer_only": "1"}}),
    )
    .await;
    assert_eq!(err["status_code"], 11);
    // many members, a long list
    let many = (0..1500).map(|i| format!("p{i}@ws.com")).collect::<Vec<_>>().join(",");
    server.fails(&owner, "add_project_members", &[("id_project", &pid), ("members", &many)], 11).await;
}

#[tokio::test]
async fn many_projects_list_with_all_their_members() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    for i in 0..30 {
        let email = format!("m{i}@ws.com");
        server.ok(&owner, "add_user", &[("email", email.as_str())]).await;
    }
    let members: Vec<String> = (0..30).map(|i| format!("m{i}@ws.com")).collect();
    let members = members.join(",");
    for i in 0..200 {
        let title = format!("Project {i}");
        server.ok(&owner, "post_project", &[("title", title.as_str()), ("members", members.as_str())]).await;
    }
    // (how fast: see docs/performance.md; tests assert behaviour, not time)
    let all = server.ok(&owner, "get_projects", &[("extra", "text,options,users")]).await;
    assert_eq!(all.as_array().unwrap().len(), 200);
    assert!(all.as_array().unwrap().iter().all(|p| p["users"].as_array().unwrap().len() == 31));
}

/// The success envelopes byte for byte, as Worksection writes them: `status` first, then `data` when there is any
/// (the official clients parse JSON, but logs and tests compare text).
#[tokio::test]
async fn success_envelopes_on_the_wire() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    let pid = id(&server.ok(&owner, "post_project", &[("title", "P")]).await);
    let raw = |action: &'static str, params: Vec<(&'static str, String)>| {
        let (url, token) = (server.url("/api/oauth2"), owner.clone());
        async move {
            let mut form = vec![("action", action.to_owned())];
            form.extend(params);
            let response = plain().post(url).bearer_auth(token).form(&form).send().await.unwrap();
            assert_eq!(response.headers()["content-type"], "application/json");
            response.text().await.unwrap()
        }
    };
    assert_eq!(raw("close_project", vec![("id_project", pid.clone())]).await, r#"{"status":"ok"}"#);
    let me = raw("me", vec![]).await;
    assert!(me.starts_with(r#"{"status":"ok","data":{"id":""#), "{me}");
    // the answer's keys in Worksection's order (no title: the owner has none)
    let at = |key: &str| me.find(&format!("\"{key}\":")).unwrap_or_else(|| panic!("no {key} in {me}"));
    let order: Vec<usize> = ["id", "first_name", "last_name", "name", "role", "email"].map(at).to_vec();
    assert!(order.is_sorted(), "{me}");
    assert!(!me.contains("\"title\""), "{me}");
    let me: Value = serde_json::from_str(&me).unwrap();
    assert_eq!(me["data"]["role"], "Owner", "{me}");
}
