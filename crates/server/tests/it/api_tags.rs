//! Tags and tag groups of tasks and projects through `/api/oauth2` (spec §3.10), compared with the recorded
//! responses (ids and dates aside).

use reqwest::StatusCode;
use serde_json::{Value, json};
use wsoauth_server::admin;
use wsoauth_storage::{NewMember, Role};

use crate::common::*;

/// The titles of a list of tags or groups.
fn titles(list: &Value) -> Vec<&str> {
    list.as_array().unwrap_or_else(|| panic!("array: {list}")).iter().map(|x| x["title"].as_str().unwrap()).collect()
}

fn num_id(value: &Value) -> i64 {
    value["id"].as_i64().unwrap_or_else(|| panic!("numeric id in {value}"))
}

/// A member of the test account with `role` (in a team, when given: (title, client team)) and a token with
/// every scope. Returns (user id, token).
pub async fn member_token(server: &TestServer, email: &str, role: Role, team: Option<(&str, bool)>) -> (i64, String) {
    let password = "member-password";
    let Some((title, client)) = team else {
        let user_id = server.member(server.account_id, email, password, role).await;
        return (user_id, server.token_for(email, password, None).await);
    };
    let store = &server.state().store;
    let (team, _) = store.ensure_team(server.account_id, title, client).await.unwrap();
    let new = NewMember {
        account_id: server.account_id,
        email: email.into(),
        first_name: "Test".into(),
        last_name: "Person".into(),
        team_id: Some(team.id),
        role: Some(role),
        now: START,
        ..NewMember::default()
    };
    let (user_id, _) = store.invite_member(&new).await.unwrap();
    // The password is set through a membership of a second account; the token names the first.
    let other = admin::create_account(server.state(), &format!("Other {email}"), None).await.unwrap();
    admin::add_member(server.state(), other.id, email, "Test", "Person", Role::User, Some(password.into()))
        .await
        .unwrap();
    (user_id, server.token_for(email, password, Some(user_id)).await)
}

#[tokio::test]
async fn built_in_groups_as_recorded() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;

    let groups = server.ok(&owner, "get_task_tag_groups", &[]).await;
    assert_eq!(titles(&groups), ["Basic workflow"]);
    let group = &groups[0];
    assert_eq!(keys(group), ["access", "id", "title", "type"]);
    assert_eq!((&group["type"], &group["access"]), (&json!("status"), &json!("public")));
    assert!(group["id"].is_i64(), "{group}");

    let tags = server.ok(&owner, "get_task_tags", &[("group", "Basic workflow")]).await;
    assert_eq!(titles(&tags), ["To-do", "In progress", "Need approval", "Done"]);
    for tag in tags.as_array().unwrap() {
        assert_eq!(keys(tag), ["group", "id", "title"]);
        assert!(tag["id"].is_i64(), "{tag}");
        let expected = json!({"title": "Basic workflow", "id": group["id"], "id_group": "1", "type": "status",
            "access": "public"});
        assert_eq!(tag["group"], expected);
    }
    // The same group by id, and the same list without a filter.
    let by_id = server.ok(&owner, "get_task_tags", &[("group", &num_id(group).to_string())]).await;
    assert_eq!(by_id, tags);
    assert_eq!(server.ok(&owner, "get_task_tags", &[]).await, tags);

    let groups = server.ok(&owner, "get_project_tag_groups", &[]).await;
    assert_eq!(titles(&groups), ["Project status"]);
    assert_eq!((&groups[0]["type"], &groups[0]["access"]), (&json!("status"), &json!("public")));
    let tags = server.ok(&owner, "get_project_tags", &[("group", "Project status")]).await;
    assert_eq!(titles(&tags), ["Backlog", "In progress", "Paused", "Canceled", "Completed"]);
    assert_eq!(tags[0]["group"]["id_group"], "-4");
    assert_eq!(tags[0]["group"]["id"], groups[0]["id"]);

    // Task and project namespaces are separate; an unknown group matches nothing.
    assert_eq!(server.ok(&owner, "get_task_tags", &[("group", "Project status")]).await, json!([]));
    assert_eq!(server.ok(&owner, "get_project_tags", &[("group", "999999")]).await, json!([]));
}

#[tokio::test]
async fn add_task_tag_groups_and_tags() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;

    // As recorded: access=public&type=label&title=Development,Marketing.
    let created = server
        .ok(
            &owner,
            "add_task_tag_groups",
            &[("access", "public"), ("type", "label"), ("title", "Development,Marketing")],
        )
        .await;
    assert_eq!(titles(&created), ["Development", "Marketing"]);
    for group in created.as_array().unwrap() {
        assert_eq!(keys(group), ["access", "id", "title", "type"]);
        assert_eq!((&group["type"], &group["access"]), (&json!("label"), &json!("public")));
        assert!(group["id"].is_i64());
    }
    // Again (in other case, with a new one): existing groups are answered as they are, not duplicated.
    let again = server
        .ok(
            &owner,
            "add_task_tag_groups",
            &[("access", "private"), ("type", "label"), ("title", " development , Results")],
        )
        .await;
    assert_eq!(titles(&again), ["Development", "Results"]);
    assert_eq!(again[0], created[0]);
    assert_eq!(again[1]["access"], "private");
    // A status group is always public.
    let sales = server
        .ok(&owner, "add_task_tag_groups", &[("access", "private"), ("type", "status"), ("title", "Sales")])
        .await;
    assert_eq!(sales[0]["access"], "public");
    let all = server.ok(&owner, "get_task_tag_groups", &[]).await;
    assert_eq!(titles(&all), ["Basic workflow", "Development", "Marketing", "Results", "Sales"]);
    let labels = server.ok(&owner, "get_task_tag_groups", &[("type", "label"), ("access", "public")]).await;
    assert_eq!(titles(&labels), ["Development", "Marketing"]);
    assert_eq!(titles(&server.ok(&owner, "get_task_tag_groups", &[("access", "private")]).await), ["Results"]);

    // As recorded: group=Development&title=bug,feature,design.
    let tags = server.ok(&owner, "add_task_tags", &[("group", "Development"), ("title", "bug,feature,design")]).await;
    assert_eq!(titles(&tags), ["bug", "feature", "design"]);
    for tag in tags.as_array().unwrap() {
        assert_eq!(keys(tag), ["id", "title"]);
        assert!(tag["id"].is_i64());
    }
    // Only new names are created; a group by id works too.
    let group_id = num_id(&created[0]).to_string();
    let more = server.ok(&owner, "add_task_tags", &[("group", &group_id), ("title", "Bug, docs")]).await;
    assert_eq!(more[0], tags[0]);
    assert_eq!(more[1]["title"], "docs");
    let listed = server.ok(&owner, "get_task_tags", &[("group", "Development")]).await;
    assert_eq!(titles(&listed), ["bug", "feature", "design", "docs"]);
    let expected_group = json!({"title": "Development", "id": created[0]["id"], "id_group": group_id, "type": "label",
        "access": "public"});
    assert_eq!(listed[0]["group"], expected_group);
    assert_eq!(listed[0]["id"], tags[0]["id"]);

    // Filters by type and access.
    let labels = server.ok(&owner, "get_task_tags", &[("type", "label")]).await;
    assert_eq!(titles(&labels), ["bug", "feature", "design", "docs"]);
    let statuses = server.ok(&owner, "get_task_tags", &[("type", "status")]).await;
    assert_eq!(titles(&statuses), ["To-do", "In progress", "Need approval", "Done"]);
    assert_eq!(server.ok(&owner, "get_task_tags", &[("access", "private")]).await, json!([]));
}

#[tokio::test]
async fn add_project_tag_groups_and_tags() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;

    // As recorded: access=public&title=Budget level, Devs number; created groups have "type":"".
    let created = server
        .ok(&owner, "add_project_tag_groups", &[("access", "public"), ("title", "Budget level, Devs number")])
        .await;
    assert_eq!(titles(&created), ["Budget level", "Devs number"]);
    assert_eq!(created[0]["type"], "");
    assert_eq!(created[0]["access"], "public");
    let finance = server
        .ok(&owner, "add_project_tag_groups", &[("access", "private"), ("type", "label"), ("title", "Finance")])
        .await;
    assert_eq!((&finance[0]["type"], &finance[0]["access"]), (&json!("label"), &json!("private")));

    // As recorded: group=Finance&title=paid, bill, contract.
    let tags = server.ok(&owner, "add_project_tags", &[("group", "Finance"), ("title", "paid, bill, contract")]).await;
    assert_eq!(titles(&tags), ["paid", "bill", "contract"]);
    assert_eq!(keys(&tags[0]), ["id", "title"]);
    let listed = server.ok(&owner, "get_project_tags", &[("access", "private")]).await;
    assert_eq!(titles(&listed), ["paid", "bill", "contract"]);
    assert_eq!(listed[0]["group"]["type"], "label");
    // Task tags are another namespace.
    assert_eq!(
        server.fails(&owner, "add_task_tags", &[("group", "Finance"), ("title", "x")], 10).await["message_details"],
        "group (id or title)"
    );
    let groups = server.ok(&owner, "get_project_tag_groups", &[]).await;
    assert_eq!(titles(&groups), ["Project status", "Budget level", "Devs number", "Finance"]);
    assert_eq!(titles(&server.ok(&owner, "get_project_tag_groups", &[("type", "status")]).await), ["Project status"]);
}

#[tokio::test]
async fn documented_errors_and_bad_input() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;

    // As recorded: add_task_tags&group=&title → 10 "group (id or title)"; likewise for projects.
    for action in ["add_task_tags", "add_project_tags"] {
        let body = server.fails(&owner, action, &[("group", ""), ("title", "")], 10).await;
        assert_eq!(
            body,
            json!({"status": "error", "status_code": 10, "message": "Field is required",
            "message_details": "group (id or title)"})
        );
        let body = server.fails(&owner, action, &[("group", "No such group"), ("title", "x")], 10).await;
        assert_eq!(body["message_details"], "group (id or title)");
    }
    let body = server.fails(&owner, "add_task_tags", &[("group", "Basic workflow")], 10).await;
    assert_eq!(body["message_details"], "title");
    let body = server.fails(&owner, "add_task_tags", &[("group", "Basic workflow"), ("title", " , ,")], 10).await;
    assert_eq!(body["message_details"], "title");

    // As recorded: add_task_tag_groups&access=public&type=label&title → 10 "title".
    let body = server
        .fails(&owner, "add_task_tag_groups", &[("access", "public"), ("type", "label"), ("title", "")], 10)
        .await;
    assert_eq!(
        body,
        json!({"status": "error", "status_code": 10, "message": "Field is required",
        "message_details": "title"})
    );
    let body = server.fails(&owner, "add_project_tag_groups", &[("access", "public"), ("title", "")], 10).await;
    assert_eq!(body["message_details"], "title");
    let body = server.fails(&owner, "add_task_tag_groups", &[("access", "public"), ("title", "A")], 10).await;
    assert_eq!(body["message_details"], "type");
    let body = server.fails(&owner, "add_task_tag_groups", &[("type", "label"), ("title", "A")], 10).await;
    assert_eq!(body["message_details"], "access");
    let body = server.fails(&owner, "add_project_tag_groups", &[("title", "A")], 10).await;
    assert_eq!(body["message_details"], "access");

    // Bad values are envelope errors, never a 500.
    let body = server
        .fails(&owner, "add_task_tag_groups", &[("type", "colour"), ("access", "public"), ("title", "A")], 11)
        .await;
    assert_eq!(body["message_details"], "type");
    let body = server.fails(&owner, "add_project_tag_groups", &[("access", "everyone"), ("title", "A")], 11).await;
    assert_eq!(body["message_details"], "access");
    server.fails(&owner, "get_task_tags", &[("type", "nope")], 11).await;
    server.fails(&owner, "get_project_tag_groups", &[("access", "nope")], 11).await;
    let long = "x".repeat(600);
    let body = server.fails(&owner, "add_task_tags", &[("group", "Basic workflow"), ("title", &long)], 11).await;
    assert_eq!(body["message_details"], "title");
    let many = (0..1500).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    server.fails(&owner, "add_task_tags", &[("group", "Basic workflow"), ("title", &many)], 11).await;
    for group in ["'; DROP TABLE tags; --", "%", "\u{0}", "-1", "99999999999999999999999", "😀"] {
        assert_eq!(server.ok(&owner, "get_task_tags", &[("group", group)]).await, json!([]), "{group}");
    }
    let odd = server
        .ok(
            &owner,
            "add_task_tag_groups",
            &[("type", "label"), ("access", "public"), ("title", "Ünïcødé 😀, it's \"quoted\"")],
        )
        .await;
    assert_eq!(titles(&odd), ["Ünïcødé 😀", "it's \"quoted\""]);
    let tags = server.ok(&owner, "add_task_tags", &[("group", "ünïcødé 😀"), ("title", "<b>&amp;</b>")]).await;
    assert_eq!(titles(&tags), ["<b>&amp;</b>"]);
    // A JSON body with a list works like a comma list.
    let response = plain()
        .post(server.url("/api/oauth2"))
        .bearer_auth(&owner)
        .json(&json!({"action": "add_task_tags", "group": "Basic workflow", "title": ["Blocked", "Review"]}))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(titles(&body["data"]), ["Blocked", "Review"], "{body}");
}

#[tokio::test]
async fn scopes_and_roles() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;

    // A token without tags_read / tags_write: 403 insufficient_scope naming the scope.
    let narrow = server.tokens("tasks_read").await["access_token"].as_str().unwrap().to_owned();
    for (action, scope) in [
        ("get_task_tags", "tags_read"),
        ("get_task_tag_groups", "tags_read"),
        ("get_project_tags", "tags_read"),
        ("get_project_tag_groups", "tags_read"),
        ("add_task_tags", "tags_write"),
        ("update_task_tags", "tags_write"),
        ("add_task_tag_groups", "tags_write"),
        ("add_project_tags", "tags_write"),
        ("update_project_tags", "tags_write"),
        ("add_project_tag_groups", "tags_write"),
    ] {
        let (status, body) = server.api(&narrow, action).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{action}: {body}");
        assert_eq!(body["error"], "insufficient_scope", "{action}");
        assert_eq!(body["scope"], scope, "{action}");
    }
    let read_only = server.tokens("tags_read").await["access_token"].as_str().unwrap().to_owned();
    server.ok(&read_only, "get_task_tags", &[]).await;
    let (status, _) = server.api(&read_only, "add_task_tags").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A user reads tags and adds tags, but creates no groups; guests and readers only read.
    let (_, user) = member_token(&server, "user@acme.test", Role::User, None).await;
    server.ok(&user, "get_task_tag_groups", &[]).await;
    server.ok(&user, "add_task_tags", &[("group", "Basic workflow"), ("title", "Blocked")]).await;
    for action in ["add_task_tag_groups", "add_project_tag_groups"] {
        let body = server.fails(&user, action, &[("type", "label"), ("access", "public"), ("title", "Mine")], 20).await;
        assert_eq!(body["message"], "Access denied");
    }
    let (_, guest) = member_token(&server, "guest@acme.test", Role::Guest, None).await;
    assert_eq!(titles(&server.ok(&guest, "get_project_tag_groups", &[]).await), ["Project status"]);
    server.fails(&guest, "add_task_tags", &[("group", "Basic workflow"), ("title", "x")], 20).await;
    server.fails(&guest, "update_task_tags", &[("id_task", "1"), ("plus", "Done")], 20).await;
    let (_, reader) = member_token(&server, "reader@acme.test", Role::Reader, None).await;
    server.ok(&reader, "get_task_tags", &[]).await;
    server.fails(&reader, "add_project_tags", &[("group", "Project status"), ("title", "x")], 20).await;
    // Admins create groups.
    let (_, admin) = member_token(&server, "admin@acme.test", Role::Admin, None).await;
    server.ok(&admin, "add_project_tag_groups", &[("access", "public"), ("title", "Admin's")]).await;
    server.ok(&owner, "get_project_tag_groups", &[]).await;
}

#[tokio::test]
async fn private_groups_are_hidden_from_client_teams() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    server.ok(&owner, "add_task_tag_groups", &[("type", "label"), ("access", "private"), ("title", "Internal")]).await;
    server.ok(&owner, "add_task_tags", &[("group", "Internal"), ("title", "secret")]).await;

    let (_, staff) = member_token(&server, "staff@acme.test", Role::User, Some(("Staff", false))).await;
    assert_eq!(titles(&server.ok(&staff, "get_task_tag_groups", &[]).await), ["Basic workflow", "Internal"]);
    let (_, client) = member_token(&server, "client@acme.test", Role::User, Some(("Client Co", true))).await;
    assert_eq!(titles(&server.ok(&client, "get_task_tag_groups", &[]).await), ["Basic workflow"]);
    assert_eq!(
        titles(&server.ok(&client, "get_task_tags", &[]).await),
        ["To-do", "In progress", "Need approval", "Done"]
    );
    assert_eq!(server.ok(&client, "get_task_tags", &[("group", "Internal")]).await, json!([]));
    let body = server.fails(&client, "add_task_tags", &[("group", "Internal"), ("title", "x")], 10).await;
    assert_eq!(body["message_details"], "group (id or title)");
}

#[tokio::test]
async fn built_in_groups_are_created_once_under_concurrency() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    let calls = (0..8).map(|_| server.ok(&owner, "get_task_tag_groups", &[]));
    for groups in futures_join_all(calls).await {
        assert_eq!(titles(&groups), ["Basic workflow"]);
    }
    assert_eq!(server.ok(&owner, "get_task_tags", &[]).await.as_array().unwrap().len(), 4);
    assert_eq!(server.ok(&owner, "get_project_tags", &[]).await.as_array().unwrap().len(), 5);
}

/// Runs futures concurrently on the current task and collects their outputs in order.
async fn futures_join_all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for future in futures {
        set.push(Box::pin(future));
    }
    let mut outputs: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, future) in set.iter_mut().enumerate() {
            if outputs[i].is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(output) => outputs[i] = Some(output),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    outputs.into_iter().map(|o| o.unwrap()).collect()
}

/// The `tags` object of a task or project (`{}` when the key is absent).
fn tag_names(object: &Value) -> Vec<String> {
    let mut names: Vec<String> = match object.get("tags") {
        None => Vec::new(),
        Some(tags) => tags
            .as_object()
            .unwrap_or_else(|| panic!("tags object in {object}"))
            .values()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect(),
    };
    names.sort();
    names
}

/// The numeric id of a tag by title from a `get_*_tags` list.
fn tag_id(tags: &Value, title: &str) -> i64 {
    tags.as_array().unwrap().iter().find(|t| t["title"] == title).map(num_id).unwrap_or_else(|| panic!("{title}"))
}

#[tokio::test]
async fn update_project_tags_and_project_objects() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    server.ok(&owner, "add_project_tag_groups", &[("access", "public"), ("type", "label"), ("title", "Finance")]).await;
    server.ok(&owner, "add_project_tags", &[("group", "Finance"), ("title", "paid, bill, contract, app")]).await;
    let tags = server.ok(&owner, "get_project_tags", &[]).await;

    // post_project takes tags (names in any case, or ids) and shows them as {"<id>": "<name>"}.
    let backlog = tag_id(&tags, "Backlog").to_string();
    let project = server
        .ok(&owner, "post_project", &[("title", "Performance improvement"), ("tags", &format!("{backlog}, BILL"))])
        .await;
    let expected = json!({backlog.clone(): "Backlog", tag_id(&tags, "bill").to_string(): "bill"});
    assert_eq!(project["tags"], expected, "{project}");
    let project_id = project["id"].as_str().unwrap().to_owned();
    let bare = server.ok(&owner, "post_project", &[("title", "No tags")]).await;
    assert!(bare.get("tags").is_none(), "{bare}");

    // As recorded: plus=app, paid&minus=bill → {"status":"ok"}.
    let body = server
        .call(&owner, "update_project_tags", &[("id_project", &project_id), ("plus", "app, paid"), ("minus", "bill")])
        .await;
    assert_eq!(body, json!({"status": "ok"}));
    let got = server.ok(&owner, "get_project", &[("id_project", &project_id)]).await;
    assert_eq!(tag_names(&got), ["Backlog", "app", "paid"]);

    // Statuses exclude each other: adding one removes the group's other status.
    server.ok(&owner, "update_project_tags", &[("id_project", &project_id), ("plus", "In progress")]).await;
    let got = server.ok(&owner, "get_project", &[("id_project", &project_id)]).await;
    assert_eq!(tag_names(&got), ["In progress", "app", "paid"]);
    // Two statuses of one group at once: the last wins.
    server.ok(&owner, "update_project_tags", &[("id_project", &project_id), ("plus", "Paused, Completed")]).await;
    let got = server.ok(&owner, "get_project", &[("id_project", &project_id)]).await;
    assert_eq!(tag_names(&got), ["Completed", "app", "paid"]);
    // update_project takes tags too (added like plus); minus of a tag the project lacks is a no-op.
    let updated =
        server.ok(&owner, "update_project", &[("id_project", &project_id), ("tags", "contract, Backlog")]).await;
    assert_eq!(tag_names(&updated), ["Backlog", "app", "contract", "paid"]);
    server
        .ok(
            &owner,
            "update_project_tags",
            &[("id_project", &project_id), ("minus", "bill, app, contract, paid, backlog")],
        )
        .await;
    let got = server.ok(&owner, "get_project", &[("id_project", &project_id)]).await;
    assert!(got.get("tags").is_none(), "{got}");
    let listed = server.ok(&owner, "get_projects", &[]).await;
    assert!(listed.as_array().unwrap().iter().all(|p| p.get("tags").is_none()), "{listed}");
    // With neither plus nor minus nothing changes.
    server.ok(&owner, "update_project_tags", &[("id_project", &project_id)]).await;

    // As recorded: plus=declined → 16 Tag is invalid, details = the name; nothing is changed.
    let body = server
        .fails(&owner, "update_project_tags", &[("id_project", &project_id), ("plus", "paid, declined")], 16)
        .await;
    assert_eq!(
        body,
        json!({"status": "error", "status_code": 16, "message": "Tag is invalid", "message_details": "declined"})
    );
    let got = server.ok(&owner, "get_project", &[("id_project", &project_id)]).await;
    assert!(got.get("tags").is_none(), "{got}");
    server.fails(&owner, "update_project_tags", &[("id_project", &project_id), ("minus", "999999")], 16).await;
    // Task tags are not project tags; an ambiguous name is invalid too.
    let body = server.fails(&owner, "update_project_tags", &[("id_project", &project_id), ("plus", "To-do")], 16).await;
    assert_eq!(body["message_details"], "To-do");
    server.ok(&owner, "add_project_tag_groups", &[("access", "public"), ("type", "label"), ("title", "Other")]).await;
    server.ok(&owner, "add_project_tags", &[("group", "Other"), ("title", "paid")]).await;
    let body = server.fails(&owner, "update_project_tags", &[("id_project", &project_id), ("plus", "paid")], 16).await;
    assert_eq!(body["message_details"], "paid");
    server.fails(&owner, "post_project", &[("title", "X"), ("tags", "nope")], 16).await;

    // Unknown, malformed or missing projects.
    server.fails(&owner, "update_project_tags", &[("id_project", "999999"), ("plus", "app")], 4).await;
    server.fails(&owner, "update_project_tags", &[("id_project", "abc"), ("plus", "app")], 4).await;
    let body = server.fails(&owner, "update_project_tags", &[("plus", "app")], 10).await;
    assert_eq!(body["message_details"], "id_project");

    // A user who is not a member of the project does not see it.
    let (_, user) = member_token(&server, "user@acme.test", Role::User, None).await;
    server.fails(&user, "update_project_tags", &[("id_project", &project_id), ("plus", "app")], 4).await;
    let own = server.ok(&user, "post_project", &[("title", "Mine"), ("tags", "Backlog")]).await;
    assert_eq!(tag_names(&own), ["Backlog"]);
    let own_id = own["id"].as_str().unwrap();
    server.ok(&user, "update_project_tags", &[("id_project", own_id), ("plus", "app")]).await;
}

#[tokio::test]
async fn update_task_tags_and_task_objects() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    server
        .ok(&owner, "add_task_tag_groups", &[("access", "public"), ("type", "label"), ("title", "Development")])
        .await;
    server.ok(&owner, "add_task_tags", &[("group", "Development"), ("title", "bug, feature, design, deployed")]).await;
    let project = server.ok(&owner, "post_project", &[("title", "Performance improvement")]).await;
    let project_id = project["id"].as_str().unwrap().to_owned();

    // As recorded: post_task with tags=to-do, design (names in any case).
    let task = server
        .ok(&owner, "post_task", &[("id_project", &project_id), ("title", "Template"), ("tags", "to-do, design")])
        .await;
    assert_eq!(tag_names(&task), ["To-do", "design"], "{task}");
    let tags = server.ok(&owner, "get_task_tags", &[]).await;
    let expected = json!({tag_id(&tags, "To-do").to_string(): "To-do", tag_id(&tags, "design").to_string(): "design"});
    assert_eq!(task["tags"], expected);
    let task_id = task["id"].as_str().unwrap().to_owned();
    let bare = server.ok(&owner, "post_task", &[("id_project", &project_id), ("title", "Bare")]).await;
    assert!(bare.get("tags").is_none(), "{bare}");
    server.fails(&owner, "post_task", &[("id_project", &project_id), ("title", "X"), ("tags", "Backlog")], 16).await;

    // As recorded: plus=deployed,feature&minus=design → {"status":"ok"}.
    let body = server
        .call(&owner, "update_task_tags", &[("id_task", &task_id), ("plus", "deployed,feature"), ("minus", "design")])
        .await;
    assert_eq!(body, json!({"status": "ok"}));
    let got = server.ok(&owner, "get_task", &[("id_task", &task_id)]).await;
    assert_eq!(tag_names(&got), ["To-do", "deployed", "feature"]);
    // A status replaces the other status of its group; ids work like names.
    let done = tag_id(&tags, "Done").to_string();
    server.ok(&owner, "update_task_tags", &[("id_task", &task_id), ("plus", &done)]).await;
    let got = server.ok(&owner, "get_task", &[("id_task", &task_id)]).await;
    assert_eq!(tag_names(&got), ["Done", "deployed", "feature"]);
    // Statuses of different groups coexist.
    server.ok(&owner, "add_task_tag_groups", &[("access", "public"), ("type", "status"), ("title", "Sales")]).await;
    server.ok(&owner, "add_task_tags", &[("group", "Sales"), ("title", "Lead, Won")]).await;
    server.ok(&owner, "update_task_tags", &[("id_task", &task_id), ("plus", "Lead")]).await;
    server.ok(&owner, "update_task_tags", &[("id_task", &task_id), ("plus", "Won"), ("minus", "feature")]).await;
    let got = server.ok(&owner, "get_task", &[("id_task", &task_id)]).await;
    assert_eq!(tag_names(&got), ["Done", "Won", "deployed"]);
    // The page works in place of id_task.
    let page = got["page"].as_str().unwrap().to_owned();
    server.ok(&owner, "update_task_tags", &[("page", &page), ("minus", "Done, Won, deployed")]).await;
    let got = server.ok(&owner, "get_task", &[("id_task", &task_id)]).await;
    assert!(got.get("tags").is_none(), "{got}");

    // As recorded: plus=docs (unknown) → 16 Tag is invalid, details "docs"; nothing changes.
    let body = server.fails(&owner, "update_task_tags", &[("id_task", &task_id), ("plus", "bug, docs")], 16).await;
    assert_eq!(
        body,
        json!({"status": "error", "status_code": 16, "message": "Tag is invalid", "message_details": "docs"})
    );
    let got = server.ok(&owner, "get_task", &[("id_task", &task_id)]).await;
    assert!(got.get("tags").is_none(), "{got}");
    // "In progress" is a project status too, but only one task tag: not ambiguous. Two task labels are.
    server.ok(&owner, "update_task_tags", &[("id_task", &task_id), ("plus", "In progress")]).await;
    server.ok(&owner, "add_task_tag_groups", &[("access", "public"), ("type", "label"), ("title", "Other")]).await;
    server.ok(&owner, "add_task_tags", &[("group", "Other"), ("title", "bug")]).await;
    let body = server.fails(&owner, "update_task_tags", &[("id_task", &task_id), ("plus", "bug")], 16).await;
    assert_eq!(body["message_details"], "bug");

    // Unknown, malformed or missing tasks.
    let body = server.fails(&owner, "update_task_tags", &[("id_task", "999999"), ("plus", "bug")], 5).await;
    assert_eq!(body, json!({"status": "error", "status_code": 5, "message": "Task is invalid"}));
    server.fails(&owner, "update_task_tags", &[("id_task", "x1"), ("plus", "bug")], 5).await;
    let body = server.fails(&owner, "update_task_tags", &[("plus", "bug")], 10).await;
    assert_eq!(body["message_details"], "id_task");

    // A user outside the project, or not shown a hidden task, does not see the task.
    let (_, user) = member_token(&server, "user@acme.test", Role::User, None).await;
    server.fails(&user, "update_task_tags", &[("id_task", &task_id), ("plus", "Done")], 5).await;
    server.ok(&owner, "add_project_members", &[("id_project", &project_id), ("members", "user@acme.test")]).await;
    server.ok(&user, "update_task_tags", &[("id_task", &task_id), ("plus", "Done")]).await;
    let hidden = server
        .ok(&owner, "post_task", &[("id_project", &project_id), ("title", "Hidden"), ("hidden", OWNER_EMAIL)])
        .await;
    let hidden_id = hidden["id"].as_str().unwrap();
    server.fails(&user, "update_task_tags", &[("id_task", hidden_id), ("plus", "Done")], 5).await;
    server.ok(&owner, "update_task_tags", &[("id_task", hidden_id), ("plus", "Done")]).await;
    // Task lists show the tags too ("Done" replaced "In progress").
    let listed = server.ok(&owner, "get_tasks", &[("id_project", &project_id)]).await;
    let by_id = |id: &str| listed.as_array().unwrap().iter().find(|t| t["id"] == id).cloned().unwrap();
    assert_eq!(tag_names(&by_id(&task_id)), ["Done"]);
    assert!(by_id(bare["id"].as_str().unwrap()).get("tags").is_none());
}
