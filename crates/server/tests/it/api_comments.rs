//! Comments through `/api/oauth2` (spec §3.9), compared with the recorded responses (ids and dates aside).

use reqwest::StatusCode;
use serde_json::{Value, json};
use wsoauth_domain::dates::format_datetime;
use wsoauth_server::admin;
use wsoauth_storage::Role;

use crate::common::*;

const PASSWORD: &str = "member-password";

fn texts(comments: &Value) -> Vec<&str> {
    comments
        .as_array()
        .unwrap_or_else(|| panic!("array: {comments}"))
        .iter()
        .map(|c| c["text"].as_str().unwrap())
        .collect()
}

/// A member of the test account with a name and `role`, and their token.
async fn person(server: &TestServer, email: &str, first: &str, last: &str, role: Role) -> (i64, String) {
    let user_id = admin::add_member(server.state(), server.account_id, email, first, last, role, Some(PASSWORD.into()))
        .await
        .unwrap();
    (user_id, server.token_for(email, PASSWORD, None).await)
}

/// The recorded cast: the owner (Olga Owner), Frank Harper and Kate Greenway (users), members of one project
/// with one task. Returns (server, owner token, frank, kate, project id, task).
async fn setup() -> (TestServer, String, (i64, String), (i64, String), String, Value) {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    let frank = person(&server, "frank.harper@ws.com", "Frank", "Harper", Role::User).await;
    let kate = person(&server, "kate.greenway@ws.com", "Kate", "Greenway", Role::User).await;
    let members = "frank.harper@ws.com, kate.greenway@ws.com";
    let project =
        server.ok(&owner, "post_project", &[("title", "Performance improvement"), ("members", members)]).await;
    let project_id = id(&project);
    let task = server.ok(&owner, "post_task", &[("id_project", &project_id), ("title", "Survey")]).await;
    (server, owner, frank, kate, project_id, task)
}

#[tokio::test]
async fn post_comment_as_recorded() {
    let (server, owner, frank, _kate, _project_id, task) = setup().await;
    let task_id = id(&task);
    // As recorded: text, three todo[] items, hidden for Frank and Kate, Frank mentioned.
    let comment = server
        .ok(
            &owner,
            "post_comment",
            &[
                ("id_task", &task_id),
                ("text", "Need info on the topic about your department"),
                ("todo[]", "survey results"),
                ("todo[]", "questions and suggestions"),
                ("todo[]", "gamification and motivation"),
                ("hidden", "frank.harper@ws.com, kate.greenway@ws.com"),
                ("mention", "frank.harper@ws.com"),
            ],
        )
        .await;
    assert_eq!(keys(&comment), ["date_added", "id", "page", "text", "user_from"]);
    let comment_id = id(&comment);
    assert_eq!(comment["page"], format!("{}#com{comment_id}", task["page"].as_str().unwrap()));
    assert_eq!(
        comment["text"],
        "Need info on the topic about your department\r\n• survey results\r\n• questions and suggestions\r\n\
         • gamification and motivation Frank Harper"
    );
    assert_eq!(comment["date_added"], format_datetime(START));
    assert_eq!(
        comment["user_from"],
        json!({"id": server.owner_user_id.to_string(), "email": OWNER_EMAIL, "name": "Olga Owner"})
    );

    // get_comments answers the same object (no files: the key is left out, with extra=files too).
    let listed = server.ok(&owner, "get_comments", &[("id_task", &task_id), ("extra", "files")]).await;
    assert_eq!(listed, json!([comment]));
    // Frank is on the hidden list.
    assert_eq!(server.ok(&frank.1, "get_comments", &[("id_task", &task_id)]).await, json!([comment]));
}

#[tokio::test]
async fn get_comments_newest_first_by_id_or_page() {
    let (server, owner, frank, _kate, project_id, task) = setup().await;
    let task_id = id(&task);
    assert_eq!(server.ok(&owner, "get_comments", &[("id_task", &task_id)]).await, json!([]));
    server.ok(&owner, "post_comment", &[("id_task", &task_id), ("text", "first")]).await;
    server.clock.advance(60);
    server.ok(&frank.1, "post_comment", &[("id_task", &task_id), ("text", "second")]).await;
    // Only a checklist: no leading line break.
    server.clock.advance(60);
    let todo = server.ok(&owner, "post_comment", &[("id_task", &task_id), ("todo[]", "a"), ("todo[]", " b ")]).await;
    assert_eq!(todo["text"], "• a\r\n• b");

    let listed = server.ok(&owner, "get_comments", &[("id_task", &task_id)]).await;
    assert_eq!(texts(&listed), ["• a\r\n• b", "second", "first"]);
    assert_eq!(listed[1]["user_from"]["name"], "Frank Harper");
    assert_eq!(listed[1]["user_from"]["email"], "frank.harper@ws.com");
    assert_eq!(listed[1]["date_added"], format_datetime(START + 60));
    for comment in listed.as_array().unwrap() {
        assert_eq!(keys(comment), ["date_added", "id", "page", "text", "user_from"]);
        assert!(comment["id"].is_string());
    }
    // By page, and a page with the task's comment anchor.
    let page = task["page"].as_str().unwrap();
    assert_eq!(server.ok(&owner, "get_comments", &[("page", page)]).await, listed);

    // A subtask's comments carry the subtask's page (/project/P/TOP/ID/#comN).
    let sub =
        server.ok(&owner, "post_task", &[("id_project", &project_id), ("id_parent", &task_id), ("title", "Sub")]).await;
    let comment = server.ok(&owner, "post_comment", &[("id_task", &id(&sub)), ("text", "on the subtask")]).await;
    assert_eq!(comment["page"], format!("/project/{project_id}/{task_id}/{}/#com{}", id(&sub), id(&comment)));
    assert_eq!(texts(&server.ok(&owner, "get_comments", &[("id_task", &id(&sub))]).await), ["on the subtask"]);
}

/// The texts of the comments `token` sees on a task, joined with `|`.
async fn seen(server: &TestServer, token: &str, task_id: &str) -> String {
    texts(&server.ok(token, "get_comments", &[("id_task", task_id)]).await).join("|")
}

#[tokio::test]
async fn hidden_comments_reach_only_author_and_listed_people() {
    let (server, owner, frank, kate, project_id, task) = setup().await;
    let task_id = id(&task);
    let (_, admin) = person(&server, "admin@ws.com", "Ada", "Admin", Role::Admin).await;
    server.ok(&owner, "post_comment", &[("id_task", &task_id), ("text", "for everyone")]).await;
    server
        .ok(&kate.1, "post_comment", &[("id_task", &task_id), ("text", "for Frank"), ("hidden", "frank.harper@ws.com")])
        .await;
    server.ok(&frank.1, "post_comment", &[("id_task", &task_id), ("text", "for me alone"), ("hidden", "1")]).await;

    assert_eq!(seen(&server, &kate.1, &task_id).await, "for Frank|for everyone");
    assert_eq!(seen(&server, &frank.1, &task_id).await, "for me alone|for Frank|for everyone");
    assert_eq!(seen(&server, &owner, &task_id).await, "for everyone");
    assert_eq!(seen(&server, &admin, &task_id).await, "for everyone");
    // A task whose comments are all hidden from the caller has none for them (not `5 Task is invalid`).
    let other = id(&server.ok(&owner, "post_task", &[("id_project", &project_id), ("title", "Quiet")]).await);
    server.ok(&frank.1, "post_comment", &[("id_task", &other), ("text", "mine"), ("hidden", "1")]).await;
    assert_eq!(server.ok(&kate.1, "get_comments", &[("id_task", &other)]).await, json!([]));
    assert_eq!(seen(&server, &frank.1, &other).await, "mine");
}

#[tokio::test]
async fn comments_follow_task_and_project_visibility() {
    let (server, owner, frank, kate, project_id, _task) = setup().await;
    // A hidden task shown to Frank only.
    let hidden = server
        .ok(&owner, "post_task", &[("id_project", &project_id), ("title", "Secret"), ("hidden", "frank.harper@ws.com")])
        .await;
    let hidden_id = id(&hidden);
    server.ok(&owner, "post_comment", &[("id_task", &hidden_id), ("text", "psst")]).await;
    assert_eq!(texts(&server.ok(&frank.1, "get_comments", &[("id_task", &hidden_id)]).await), ["psst"]);
    server.ok(&frank.1, "post_comment", &[("id_task", &hidden_id), ("text", "ok")]).await;
    let body = server.fails(&kate.1, "get_comments", &[("id_task", &hidden_id)], 5).await;
    assert_eq!(body, json!({"status": "error", "status_code": 5, "message": "Task is invalid"}));
    server.fails(&kate.1, "post_comment", &[("id_task", &hidden_id), ("text", "let me in")], 5).await;
    // What is below a hidden task is hidden with it (as `get_task` answers), its comments too.
    let under = server
        .ok(&owner, "post_task", &[("id_project", &project_id), ("title", "Under"), ("id_parent", &hidden_id)])
        .await;
    let under_id = id(&under);
    server.ok(&owner, "post_comment", &[("id_task", &under_id), ("text", "below")]).await;
    assert_eq!(texts(&server.ok(&frank.1, "get_comments", &[("id_task", &under_id)]).await), ["below"]);
    server.fails(&kate.1, "get_task", &[("id_task", &under_id)], 5).await;
    server.fails(&kate.1, "get_comments", &[("id_task", &under_id)], 5).await;
    server.fails(&kate.1, "post_comment", &[("id_task", &under_id), ("text", "let me in")], 5).await;

    // A user outside the project sees none of its tasks.
    let (_, outsider) = person(&server, "out@ws.com", "Otto", "Outside", Role::User).await;
    let other = server.ok(&owner, "post_task", &[("id_project", &project_id), ("title", "Open")]).await;
    server.fails(&outsider, "get_comments", &[("id_task", &id(&other))], 5).await;
    server.fails(&outsider, "post_comment", &[("id_task", &id(&other)), ("text", "hi")], 5).await;
    assert_eq!(server.ok(&owner, "get_comments", &[("id_task", &id(&other))]).await, json!([]));

    // Another account's task does not exist here.
    let acme2 = admin::create_account(server.state(), "Elsewhere", None).await.unwrap();
    admin::add_member(server.state(), acme2.id, "boss@elsewhere.test", "B", "S", Role::Owner, Some(PASSWORD.into()))
        .await
        .unwrap();
    let boss = server.token_for("boss@elsewhere.test", PASSWORD, None).await;
    server.fails(&boss, "get_comments", &[("id_task", &id(&other))], 5).await;
}

#[tokio::test]
async fn documented_errors_and_bad_input() {
    let (server, owner, _frank, _kate, _project_id, task) = setup().await;
    let task_id = id(&task);
    // As recorded: an unknown task, even with an empty text, is 5 Task is invalid.
    for action in ["get_comments", "post_comment"] {
        let body = server.fails(&owner, action, &[("id_task", "999999"), ("text", "")], 5).await;
        assert_eq!(body, json!({"status": "error", "status_code": 5, "message": "Task is invalid"}));
        server.fails(&owner, action, &[("id_task", "abc")], 5).await;
        server.fails(&owner, action, &[("id_task", "-3")], 5).await;
        let body = server.fails(&owner, action, &[], 10).await;
        assert_eq!(body["message_details"], "id_task");
        server.fails(&owner, action, &[("page", "/nowhere/")], 3).await;
    }
    // Neither text nor todo: 10 Field is required, details "text".
    for params in [vec![], vec![("text", "  ")], vec![("todo[]", "")], vec![("mention", "frank.harper@ws.com")]] {
        let mut all = vec![("id_task", task_id.as_str())];
        all.extend(params);
        let body = server.fails(&owner, "post_comment", &all, 10).await;
        assert_eq!(body["message"], "Field is required");
        assert_eq!(body["message_details"], "text");
    }
    // Emails: malformed or not of a member are 11 Invalid email with the address.
    for (field, value, bad) in [
        ("hidden", "frank.harper@ws.com, not-an-email", "not-an-email"),
        ("hidden", "stranger@ws.com", "stranger@ws.com"),
        ("mention", "nobody@ws.com", "nobody@ws.com"),
    ] {
        let body =
            server.fails(&owner, "post_comment", &[("id_task", &task_id), ("text", "x"), (field, value)], 11).await;
        assert_eq!(body["message"], "Invalid email");
        assert_eq!(body["message_details"], bad);
    }
    assert_eq!(server.ok(&owner, "get_comments", &[("id_task", &task_id)]).await, json!([]));
    // Too long a text is 11, details "text".
    let long = "x".repeat(100_001);
    let body = server.fails(&owner, "post_comment", &[("id_task", &task_id), ("text", &long)], 11).await;
    assert_eq!(body["message_details"], "text");

    // Text is kept as given: markup, quotes, emoji, line breaks.
    let text = "<script>alert('x')</script> \"quoted\" 😀\r\nsecond line";
    let comment = server.ok(&owner, "post_comment", &[("id_task", &task_id), ("text", text)]).await;
    assert_eq!(comment["text"], text);
    // Mentions: names joined, each once; emails in any case.
    let comment = server
        .ok(
            &owner,
            "post_comment",
            &[
                ("id_task", &task_id),
                ("text", "see"),
                ("mention", "Frank.Harper@ws.com, kate.greenway@ws.com, frank.harper@ws.com"),
            ],
        )
        .await;
    assert_eq!(comment["text"], "see Frank Harper, Kate Greenway");
    // A JSON body with todo as an array.
    let response = plain()
        .post(server.url("/api/oauth2"))
        .bearer_auth(&owner)
        .json(&json!({"action": "post_comment", "id_task": task_id, "text": "list", "todo": ["one", "two"]}))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["text"], "list\r\n• one\r\n• two", "{body}");
}

#[tokio::test]
async fn scopes_and_roles() {
    let (server, owner, _frank, _kate, project_id, task) = setup().await;
    let task_id = id(&task);
    let narrow = server.tokens("tasks_read").await["access_token"].as_str().unwrap().to_owned();
    for (action, scope) in [("get_comments", "comments_read"), ("post_comment", "comments_write")] {
        let (status, body) = server.api(&narrow, action).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{action}: {body}");
        assert_eq!(body["error"], "insufficient_scope");
        assert_eq!(body["scope"], scope);
    }
    let read_only = server.tokens("comments_read").await["access_token"].as_str().unwrap().to_owned();
    server.ok(&read_only, "get_comments", &[("id_task", &task_id)]).await;
    let (status, _) = server.api(&read_only, "post_comment").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Guests and readers of the project read comments but cannot post them (20 Access denied).
    let (_, guest) = person(&server, "guest@ws.com", "Gus", "Guest", Role::Guest).await;
    let (_, reader) = person(&server, "reader@ws.com", "Rea", "Reader", Role::Reader).await;
    server
        .ok(&owner, "add_project_members", &[("id_project", &project_id), ("members", "guest@ws.com, reader@ws.com")])
        .await;
    server.ok(&owner, "post_comment", &[("id_task", &task_id), ("text", "hello")]).await;
    for token in [&guest, &reader] {
        assert_eq!(texts(&server.ok(token, "get_comments", &[("id_task", &task_id)]).await), ["hello"]);
        let body = server.fails(token, "post_comment", &[("id_task", &task_id), ("text", "me too")], 20).await;
        assert_eq!(body["message"], "Access denied");
    }
}
