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

/// The recorded `get_all_tasks` / `get_tasks` example rebuilt: Development (with a subtask and a sub-subtask,
/// six comments, a predecessor and a successor), Prototyping and Testing.
struct Owl {
    pid: String,
    dev: String,
    sprint: String,
    subsprint: String,
    proto: String,
    testing: String,
    comments: Vec<i64>,
    kate: i64,
    frank: i64,
}

async fn owl(server: &TestServer, owner: &str) -> Owl {
    let (kate, _) = person(server, "kate.greenway@ws.com", Role::User).await;
    let (frank, _) = person(server, "frank.harper@ws.com", Role::User).await;
    let pid = project(server, owner, "Owl brand launch", "kate.greenway@ws.com, frank.harper@ws.com").await;
    let dev = task(
        server,
        owner,
        &[
            ("id_project", &pid),
            ("title", "Development"),
            ("priority", "7"),
            ("email_user_to", OWNER_EMAIL),
            ("text", "Business logic programming"),
            ("datestart", "16.01.2021"),
            ("dateend", "2021-02-16"),
            ("max_time", "352"),
            ("max_money", "5280"),
            ("subscribe", "frank.harper@ws.com"),
        ],
    )
    .await;
    let sprint = task(server, owner, &[("id_project", &pid), ("title", "Sprint 1"), ("id_parent", &dev)]).await;
    let subsprint =
        task(server, owner, &[("id_project", &pid), ("title", "Subsprint 1.1"), ("id_parent", &sprint)]).await;
    let proto = task(
        server,
        owner,
        &[
            ("id_project", &pid),
            ("title", "Prototyping"),
            ("email_user_to", "kate.greenway@ws.com"),
            ("datestart", "10.01.2021"),
            ("dateend", "15.01.2021"),
        ],
    )
    .await;
    let testing = task(
        server,
        owner,
        &[
            ("id_project", &pid),
            ("title", "Testing"),
            ("email_user_to", "frank.harper@ws.com"),
            ("datestart", "17.02.2021"),
            ("dateend", "24.02.2021"),
        ],
    )
    .await;
    let store = &server.state().store;
    let n = |s: &String| s.parse::<i64>().unwrap();
    store.relate_tasks(n(&proto), n(&dev), "finish-to-start").await.unwrap();
    store.relate_tasks(n(&dev), n(&testing), "finish-to-start").await.unwrap();
    let mut comments = Vec::new();
    for (i, text) in [
        "First",
        "Updated development requirements",
        "Need your help",
        "And the environment?",
        "As usual",
        "Thanks, first section done",
    ]
    .iter()
    .enumerate()
    {
        let author = if i % 2 == 0 { frank } else { server.owner_user_id };
        let now = server.clock.now() + i as i64 * 60;
        comments.push(store.insert_comment(n(&dev), author, text, None, now).await.unwrap());
    }
    Owl { pid, dev, sprint, subsprint, proto, testing, comments, kate, frank }
}

#[tokio::test]
async fn task_lists_match_recordings() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    let owl = owl(&server, &owner).await;
    let Owl { pid, dev, sprint, subsprint, proto, testing, .. } = &owl;
    let page = |top: &str, own: &str| {
        if top == own { format!("/project/{pid}/{own}/") } else { format!("/project/{pid}/{top}/{own}/") }
    };
    let short = |id: &str, name: &str, priority: &str| json!({"id": id, "name": name, "page": page(id, id), "status": "active", "priority": priority});

    let all = server.ok(&owner, "get_all_tasks", &[("extra", "text, files, comments, relations, subtasks")]).await;
    assert_eq!(ids(&all), [dev.clone(), proto.clone(), testing.clone()]);
    let d = &all[0];
    assert_eq!(
        keys(d),
        sorted(&[
            "id",
            "name",
            "page",
            "status",
            "priority",
            "user_from",
            "user_to",
            "project",
            "text",
            "date_added",
            "date_start",
            "date_end",
            "max_time",
            "max_money",
            "has_comments",
            "comments",
            "relations",
            "child"
        ]),
        "{d}"
    );
    assert_eq!(d["priority"], "7");
    assert_eq!(d["user_to"], owner_ref(&server));
    assert_eq!(d["project"], json!({"id": pid, "name": "Owl brand launch", "page": format!("/project/{pid}/")}));
    assert_eq!(d["text"], "Business logic programming");
    assert_eq!((&d["date_start"], &d["date_end"]), (&json!("2021-01-16"), &json!("2021-02-16")));
    assert_eq!((&d["max_time"], &d["max_money"]), (&json!(352), &json!(5280)));
    assert_eq!(d["has_comments"], 1);
    // The five last comments, newest first.
    let shown: Vec<i64> = d["comments"].as_array().unwrap().iter().map(|c| id(c).parse().unwrap()).collect();
    let mut want = owl.comments.clone();
    want.reverse();
    want.truncate(5);
    assert_eq!(shown, want);
    let last = &d["comments"][0];
    assert_eq!(keys(last), sorted(&["id", "page", "text", "date_added", "user_from"]));
    assert_eq!(last["page"], format!("/project/{pid}/{dev}/#com{}", want[0]));
    assert_eq!(last["text"], "Thanks, first section done");
    assert_eq!(last["user_from"], owner_ref(&server));
    assert_eq!(
        d["relations"],
        json!({"from": [{"type": "finish-to-start", "task": short(proto, "Prototyping", "1")}],
               "to": [{"type": "finish-to-start", "task": short(testing, "Testing", "1")}]})
    );
    // Subtasks in child, whole, with the page of the top-level task (the sub-subtask too).
    let child = &d["child"][0];
    assert_eq!(
        keys(child),
        sorted(&[
            "id",
            "name",
            "page",
            "status",
            "priority",
            "user_from",
            "user_to",
            "project",
            "text",
            "date_added",
            "has_comments",
            "child"
        ]),
        "{child}"
    );
    assert_eq!(id(child), *sprint);
    assert_eq!(child["page"], page(dev, sprint));
    assert_eq!(child["text"], "");
    assert_eq!(child["has_comments"], 0);
    assert_eq!(child["user_to"], sentinel(NOONE));
    let grandchild = &child["child"][0];
    assert_eq!(id(grandchild), *subsprint);
    assert_eq!(grandchild["page"], page(dev, subsprint));
    assert!(grandchild.get("child").is_none());
    // Prototyping: only an outbound relation, no comments, no child.
    let p = &all[1];
    assert_eq!(p["relations"], json!({"to": [{"type": "finish-to-start", "task": short(dev, "Development", "7")}]}));
    assert_eq!(p["has_comments"], 0);
    assert!(p.get("comments").is_none() && p.get("child").is_none() && p.get("files").is_none());
    assert_eq!(p["user_to"]["email"], "kate.greenway@ws.com");
    assert_eq!(
        all[2]["relations"],
        json!({"from": [{"type": "finish-to-start", "task": short(dev, "Development", "7")}]})
    );

    // Without extras: the bare shape, top-level tasks only.
    let bare = server.ok(&owner, "get_all_tasks", &[]).await;
    assert_eq!(ids(&bare), ids(&all));
    assert_eq!(
        keys(&bare[0]),
        sorted(&[
            "id",
            "name",
            "page",
            "status",
            "priority",
            "user_from",
            "user_to",
            "project",
            "date_added",
            "date_start",
            "date_end",
            "max_time",
            "max_money"
        ])
    );

    // get_tasks: one project, with subscribers (author, executive, subscribed) everywhere.
    let listed = server
        .ok(
            &owner,
            "get_tasks",
            &[("id_project", pid), ("extra", "text,files,comments,relations,subtasks,subscribers")],
        )
        .await;
    assert_eq!(ids(&listed), ids(&all));
    let subscribers = |task: &Value| -> Vec<i64> {
        task["subscribers"].as_array().unwrap().iter().map(|s| id(s).parse().unwrap()).collect()
    };
    let mut dev_subscribers = vec![server.owner_user_id, owl.frank];
    dev_subscribers.sort();
    assert_eq!(subscribers(&listed[0]), dev_subscribers);
    assert_eq!(subscribers(&listed[0]["child"][0]), [server.owner_user_id]);
    assert_eq!(subscribers(&listed[0]["child"][0]["child"][0]), [server.owner_user_id]);
    let mut proto_subscribers = vec![server.owner_user_id, owl.kate];
    proto_subscribers.sort();
    assert_eq!(subscribers(&listed[1]), proto_subscribers);
    let by_page = server.ok(&owner, "get_tasks", &[("page", &format!("/project/{pid}/"))]).await;
    assert_eq!(ids(&by_page), ids(&all));

    // get_task with every extra: children short, nested.
    let one = server
        .ok(&owner, "get_task", &[("id_task", dev), ("extra", "text,files,comments,relations,subtasks,subscribers")])
        .await;
    assert_eq!(one["comments"], d["comments"]);
    assert_eq!(one["relations"], d["relations"]);
    assert_eq!(subscribers(&one), dev_subscribers);
    assert_eq!(
        one["child"],
        json!([{"id": sprint, "name": "Sprint 1", "page": page(dev, sprint), "status": "active", "priority": "1",
                "child": [{"id": subsprint, "name": "Subsprint 1.1", "page": page(dev, subsprint),
                           "status": "active", "priority": "1"}]}])
    );
    // A sub-subtask alone: its parent, and its page under the top-level task.
    let leaf = server.ok(&owner, "get_task", &[("id_task", subsprint)]).await;
    assert_eq!(leaf["page"], page(dev, subsprint));
    assert_eq!(
        leaf["parent"],
        json!({"id": sprint, "name": "Sprint 1", "page": page(dev, sprint), "status": "active", "priority": "1"})
    );

    // filter=active: done tasks (and done subtasks) are left out.
    server.ok(&owner, "complete_task", &[("id_task", subsprint)]).await;
    server.ok(&owner, "complete_task", &[("id_task", testing)]).await;
    let active = server.ok(&owner, "get_all_tasks", &[("filter", "active"), ("extra", "subtasks")]).await;
    assert_eq!(ids(&active), [dev.clone(), proto.clone()]);
    assert!(active[0]["child"][0].get("child").is_none(), "{active}");
    let tree = server.ok(&owner, "get_task", &[("id_task", dev), ("filter", "active"), ("extra", "subtasks")]).await;
    assert!(tree["child"][0].get("child").is_none(), "{tree}");
    let tree = server.ok(&owner, "get_task", &[("id_task", dev), ("extra", "subtasks")]).await;
    assert_eq!(tree["child"][0]["child"][0]["status"], "done");
    let done = server.ok(&owner, "get_task", &[("id_task", testing)]).await;
    assert_eq!(done["status"], "done");
    assert_eq!(done["date_closed"], format_datetime(server.clock.now()));

    // Archived projects: out of get_all_tasks unless extra=archive; get_tasks still lists them.
    server.ok(&owner, "close_project", &[("id_project", pid)]).await;
    assert_eq!(server.ok(&owner, "get_all_tasks", &[]).await, json!([]));
    assert_eq!(ids(&server.ok(&owner, "get_all_tasks", &[("extra", "archive")]).await).len(), 3);
    assert_eq!(ids(&server.ok(&owner, "get_tasks", &[("id_project", pid)]).await).len(), 3);
}

#[tokio::test]
async fn post_task_options_and_errors() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    let (frank, _) = person(&server, "frank.harper@ws.com", Role::User).await;
    let pid = project(&server, &owner, "P", "frank.harper@ws.com").await;

    // The project's default executive applies when email_user_to is not given.
    let any = id(&server.ok(&owner, "post_project", &[("title", "Anyone's"), ("email_user_to", "ANY")]).await);
    let t = server.ok(&owner, "post_task", &[("id_project", &any), ("title", "T")]).await;
    assert_eq!(t["user_to"], sentinel(ANYONE));
    let t = server.ok(&owner, "post_task", &[("id_project", &any), ("title", "T"), ("email_user_to", "NOONE")]).await;
    assert_eq!(t["user_to"], sentinel(NOONE));
    let franks =
        id(&server.ok(&owner, "post_project", &[("title", "Frank's"), ("email_user_to", "frank.harper@ws.com")]).await);
    let t = server.ok(&owner, "post_task", &[("id_project", &franks), ("title", "T")]).await;
    assert_eq!(t["user_to"]["id"], frank.to_string());
    let t = server.ok(&owner, "post_task", &[("id_project", &pid), ("title", "T"), ("email_user_to", "any")]).await;
    assert_eq!(t["user_to"], sentinel(ANYONE));

    // Checklist without text, mentions appended as names, priority bounds, decimal estimates.
    let t = server
        .ok(
            &owner,
            "post_task",
            &[
                ("id_project", &pid),
                ("title", "  Checklist  "),
                ("todo[]", "one"),
                ("todo[]", "two"),
                ("mention", "frank.harper@ws.com, owner@acme.test"),
                ("priority", "0"),
                ("max_time", "1,5"),
                ("extra", "text"),
            ],
        )
        .await;
    assert_eq!(t["name"], "Checklist");
    assert_eq!(t["text"], "• one\r\n• two Test Person, Olga Owner");
    assert_eq!(t["priority"], "0");
    assert_eq!(t["max_time"], json!(1.5));
    let t = server.ok(&owner, "post_task", &[("id_project", &pid), ("title", "T"), ("priority", "10")]).await;
    assert_eq!(t["priority"], "10");
    // JSON bodies work too (todo as an array).
    let response = plain()
        .post(server.url("/api/oauth2"))
        .bearer_auth(&owner)
        .json(&json!({"action": "post_task", "id_project": pid, "title": "From JSON", "todo": ["a", "b"],
                      "extra": ["text"]}))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["text"], "• a\r\n• b", "{body}");

    // Documented errors.
    let err = server.fails(&owner, "post_task", &[("id_project", &pid)], 10).await;
    assert_eq!(
        err,
        json!({"status": "error", "status_code": 10, "message": "Field is required", "message_details": "title"})
    );
    server.fails(&owner, "post_task", &[("id_project", &pid), ("title", "   ")], 10).await;
    let err = server.fails(&owner, "post_task", &[("title", "T")], 10).await;
    assert_eq!(err["message_details"], "id_project");
    let err = server.fails(&owner, "post_task", &[("id_project", "999999"), ("title", "T")], 4).await;
    assert_eq!(err, json!({"status": "error", "status_code": 4, "message": "Project is invalid"}));
    server.fails(&owner, "post_task", &[("id_project", &pid), ("title", "T"), ("id_parent", "999999")], 5).await;
    let top = task(&server, &owner, &[("id_project", &pid), ("title", "Top")]).await;
    let sub = task(&server, &owner, &[("id_project", &pid), ("title", "Sub"), ("id_parent", &top)]).await;
    let subsub = task(&server, &owner, &[("id_project", &pid), ("title", "SubSub"), ("id_parent", &sub)]).await;
    let err = server
        .fails(&owner, "post_task", &[("id_project", &pid), ("title", "Deeper"), ("id_parent", &subsub)], 11)
        .await;
    assert!(err["message_details"].as_str().unwrap().starts_with("id_parent"), "{err}");
    // A parent in another project is not a parent here.
    server.fails(&owner, "post_task", &[("id_project", &any), ("title", "T"), ("id_parent", &top)], 5).await;
    // A closed parent: 8 Task is closed.
    let closed = task(&server, &owner, &[("id_project", &pid), ("title", "Closed")]).await;
    server.ok(&owner, "complete_task", &[("id_task", &closed)]).await;
    let err =
        server.fails(&owner, "post_task", &[("id_project", &pid), ("title", "T"), ("id_parent", &closed)], 8).await;
    assert_eq!(err, json!({"status": "error", "status_code": 8, "message": "Task is closed"}));
    // Unknown or malformed people: 11 Invalid email with the address.
    for (field, value) in [
        ("email_user_to", "ghost@ws.com"),
        ("subscribe", "frank.harper@ws.com, ghost@ws.com"),
        ("hidden", "ghost@ws.com"),
        ("mention", "ghost@ws.com"),
        ("email_user_to", "not an email"),
    ] {
        let err = server.fails(&owner, "post_task", &[("id_project", &pid), ("title", "T"), (field, value)], 11).await;
        assert_eq!(err["message"], "Invalid email", "{field}");
        assert!(value.contains(err["message_details"].as_str().unwrap()), "{err}");
    }
    // Bad values: 11 Field is invalid naming the field; never a 500.
    let long_title = "t".repeat(501);
    let long_text = "x".repeat(100_001);
    let long_todo = "y".repeat(501);
    for (field, value) in [
        ("priority", "11"),
        ("priority", "-1"),
        ("priority", "high"),
        ("priority", "99999999999999999999999"),
        ("datestart", "31.02.2021"),
        ("dateend", "2021-13-01"),
        ("dateend", "tomorrow"),
        ("max_time", "-1"),
        ("max_money", "1e400"),
        ("max_money", "NaN"),
        ("title", long_title.as_str()),
        ("text", long_text.as_str()),
        ("todo[]", long_todo.as_str()),
    ] {
        let mut params = vec![("id_project", pid.as_str()), (field, value)];
        if field != "title" {
            params.push(("title", "T"));
        }
        let err = server.fails(&owner, "post_task", &params, 11).await;
        let details = err["message_details"].as_str().unwrap_or_default();
        assert!(details.starts_with(field.trim_end_matches("[]")), "{field}: {err}");
    }
    let err = server
        .fails(
            &owner,
            "post_task",
            &[("id_project", &pid), ("title", "T"), ("datestart", "10.01.2021"), ("dateend", "09.01.2021")],
            11,
        )
        .await;
    assert_eq!(err["message_details"], "dateend");
    for bad in ["abc", "-5", "0", "1.5", "99999999999999999999"] {
        server.fails(&owner, "post_task", &[("id_project", bad), ("title", "T")], 4).await;
        server.fails(&owner, "post_task", &[("id_project", &pid), ("title", "T"), ("id_parent", bad)], 5).await;
    }
}

#[tokio::test]
async fn update_complete_reopen() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    let (kate, _) = person(&server, "kate.greenway@ws.com", Role::User).await;
    let pid = project(&server, &owner, "Performance improvement", "kate.greenway@ws.com").await;
    let t = task(&server, &owner, &[("id_project", &pid), ("title", "Template creation")]).await;

    // The recorded update: priority only.
    let updated = server.ok(&owner, "update_task", &[("id_task", &t), ("priority", "10")]).await;
    assert_eq!(
        keys(&updated),
        sorted(&["id", "name", "page", "status", "priority", "user_from", "user_to", "project", "date_added"])
    );
    assert_eq!(updated["priority"], "10");
    assert_eq!(updated["user_to"], sentinel(NOONE));
    // Everything else.
    let updated = server
        .ok(
            &owner,
            "update_task",
            &[
                ("id_task", &t),
                ("title", "Template design"),
                ("email_user_to", "kate.greenway@ws.com"),
                ("datestart", "01.02.2021"),
                ("dateend", "2021-02-10"),
                ("max_time", "8"),
                ("max_money", "99.5"),
            ],
        )
        .await;
    assert_eq!(updated["name"], "Template design");
    assert_eq!(updated["user_to"]["id"], kate.to_string());
    assert_eq!((&updated["date_start"], &updated["date_end"]), (&json!("2021-02-01"), &json!("2021-02-10")));
    assert_eq!((&updated["max_time"], &updated["max_money"]), (&json!(8), &json!(99.5)));
    assert_eq!(updated["priority"], "10");
    // The new executive is subscribed.
    let subs = server.ok(&owner, "get_task", &[("id_task", &t), ("extra", "subscribers")]).await;
    assert!(subs["subscribers"].as_array().unwrap().iter().any(|s| id(s).parse::<i64>() == Ok(kate)), "{subs}");
    let updated =
        server.ok(&owner, "update_task", &[("page", &format!("/project/{pid}/{t}/")), ("email_user_to", "ANY")]).await;
    assert_eq!(updated["user_to"], sentinel(ANYONE));
    // An end before the (stored) start is refused.
    server.fails(&owner, "update_task", &[("id_task", &t), ("dateend", "01.01.2021")], 11).await;
    let err = server.fails(&owner, "update_task", &[("id_task", "331431")], 5).await;
    assert_eq!(err, json!({"status": "error", "status_code": 5, "message": "Task is invalid"}));
    server.fails(&owner, "update_task", &[], 10).await;
    server.fails(&owner, "update_task", &[("id_task", &t), ("priority", "11")], 11).await;
    server.fails(&owner, "update_task", &[("id_task", &t), ("email_user_to", "ghost@ws.com")], 11).await;
    server.fails(&owner, "update_task", &[("id_task", &t), ("title", &"t".repeat(501))], 11).await;

    // complete / reopen with subtasks.
    let sub = task(&server, &owner, &[("id_project", &pid), ("title", "Sub"), ("id_parent", &t)]).await;
    let err = server.fails(&owner, "complete_task", &[("id_task", &t)], 13).await;
    assert_eq!(err, json!({"status": "error", "status_code": 13, "message": "Task has children"}));
    let done = server.ok(&owner, "complete_task", &[("id_task", &sub)]).await;
    assert_eq!(done["status"], "done");
    assert_eq!(done["date_closed"], format_datetime(server.clock.now()));
    assert_eq!(done["parent"]["id"], t);
    let err = server.fails(&owner, "complete_task", &[("id_task", &sub)], 12).await;
    assert_eq!(err, json!({"status": "error", "status_code": 12, "message": "Task is already closed"}));
    server.clock.advance(3600);
    let done = server.ok(&owner, "complete_task", &[("id_task", &t)]).await;
    assert_eq!(done["status"], "done");
    assert_eq!(done["date_closed"], format_datetime(server.clock.now()));
    // update_task may move the closing date of a done task.
    let moved = server.ok(&owner, "update_task", &[("id_task", &t), ("dateclosed", "05.02.2021")]).await;
    assert_eq!(moved["date_closed"], "2021-02-05 00:00");
    let err = server.fails(&owner, "reopen_task", &[("id_task", &sub)], 14).await;
    assert_eq!(err, json!({"status": "error", "status_code": 14, "message": "Parent task is done"}));
    let reopened = server.call(&owner, "reopen_task", &[("id_task", &t)]).await;
    assert_eq!(reopened, json!({"status": "ok"}));
    let active = server.ok(&owner, "get_task", &[("id_task", &t)]).await;
    assert_eq!(active["status"], "active");
    assert!(active.get("date_closed").is_none());
    let err = server.fails(&owner, "reopen_task", &[("id_task", &t)], 12).await;
    assert_eq!(err, json!({"status": "error", "status_code": 12, "message": "Task is already active"}));
    assert_eq!(server.call(&owner, "reopen_task", &[("id_task", &sub)]).await, json!({"status": "ok"}));
    for action in ["complete_task", "reopen_task"] {
        server.fails(&owner, action, &[("id_task", "999999")], 5).await;
        server.fails(&owner, action, &[("id_task", "x")], 5).await;
        server.fails(&owner, action, &[], 10).await;
    }
}

#[tokio::test]
async fn search_tasks_conditions_and_filters() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    let (frank, _) = person(&server, "frank.harper@ws.com", Role::User).await;
    let pid = project(&server, &owner, "Performance improvement", "frank.harper@ws.com").await;
    let other = project(&server, &owner, "Other", "").await;
    let implementation = task(
        &server,
        &owner,
        &[
            ("id_project", &pid),
            ("title", "Worksection implementation"),
            ("email_user_to", "ANY"),
            ("dateend", "26.05.2021"),
        ],
    )
    .await;
    // The next day, a minute after midnight (tokens live 24 hours).
    let now = server.clock.now();
    server.clock.advance((now / 86_400 + 1) * 86_400 + 60 - now);
    let docs =
        task(&server, &owner, &[("id_project", &pid), ("title", "Worksection docs"), ("dateend", "01.06.2021")]).await;
    let report = task(
        &server,
        &owner,
        &[
            ("id_project", &other),
            ("title", "Monthly Report"),
            ("email_user_to", "frank.harper@ws.com"),
            ("dateend", "28.05.2021"),
        ],
    )
    .await;
    let approval = task(
        &server,
        &owner,
        &[("id_project", &other), ("title", "Approval"), ("id_parent", &report), ("dateend", "30.05.2021")],
    )
    .await;
    let search = |params: Vec<(&'static str, String)>| {
        let server = &server;
        let owner = owner.clone();
        async move {
            let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            ids(&server.ok(&owner, "search_tasks", &params).await)
        }
    };
    let s = |v: &str| v.to_owned();

    // The recorded example.
    let found = server.ok(&owner, "search_tasks", &[("filter", "name has 'Worksection'")]).await;
    assert_eq!(ids(&found), [implementation.clone(), docs.clone()]);
    assert_eq!(
        keys(&found[0]),
        sorted(&[
            "id",
            "name",
            "page",
            "status",
            "priority",
            "user_from",
            "user_to",
            "project",
            "date_added",
            "date_end"
        ])
    );
    assert_eq!(found[0]["user_to"], sentinel(ANYONE));
    assert_eq!(found[1]["user_to"], sentinel(NOONE));

    // The documented grammar.
    assert_eq!(search(vec![("filter", format!("project = {other}"))]).await, [report.clone(), approval.clone()]);
    assert_eq!(search(vec![("filter", format!("id in ({docs}, {report})"))]).await, [docs.clone(), report.clone()]);
    assert_eq!(search(vec![("filter", format!("parent = {report}"))]).await, std::slice::from_ref(&approval));
    assert_eq!(search(vec![("filter", s("name = 'monthly report'"))]).await, std::slice::from_ref(&report));
    assert_eq!(search(vec![("filter", s("name = 'Report'"))]).await, Vec::<String>::new());
    assert_eq!(
        search(vec![(
            "filter",
            s("(name has 'Report' or name has 'Approval') and (dateend>'25.05.2021' and dateend<'31.05.2021')")
        )])
        .await,
        [report.clone(), approval.clone()]
    );
    assert_eq!(
        search(vec![("filter", s("dateend >= '28.05.2021' and dateend <= '2021-05-30'"))]).await,
        [report.clone(), approval.clone()]
    );
    assert_eq!(
        search(vec![("filter", s("dateend != '26.05.2021' and project = ") + &pid)]).await,
        std::slice::from_ref(&docs)
    );
    let today = format_datetime(server.clock.now())[..10].to_owned();
    let added_today = search(vec![("filter", format!("dateadd = '{today}'"))]).await;
    assert_eq!(added_today, [docs.clone(), report.clone(), approval.clone()]);
    assert_eq!(
        search(vec![("filter", format!("date_added < '{today}'"))]).await,
        std::slice::from_ref(&implementation)
    );
    assert_eq!(search(vec![("filter", format!("dateadd > '{today}'"))]).await, Vec::<String>::new());
    assert_eq!(search(vec![("filter", format!("dateclose = '{today}'"))]).await, Vec::<String>::new());
    server.ok(&owner, "complete_task", &[("id_task", &docs)]).await;
    assert_eq!(search(vec![("filter", format!("date_closed = '{today}'"))]).await, std::slice::from_ref(&docs));
    assert_eq!(
        search(vec![("filter", format!("dateclose <= '{today}' or id = {report}"))]).await,
        [docs.clone(), report.clone()]
    );

    // The other conditions, alone and together.
    assert_eq!(search(vec![("id_project", pid.clone())]).await, [implementation.clone(), docs.clone()]);
    assert_eq!(search(vec![("id_task", report.clone())]).await, [report.clone(), approval.clone()]);
    assert_eq!(search(vec![("email_user_to", s("frank.harper@ws.com"))]).await, std::slice::from_ref(&report));
    assert_eq!(search(vec![("email_user_to", s("ANY"))]).await, std::slice::from_ref(&implementation));
    assert_eq!(
        search(vec![("email_user_to", s("NOONE")), ("id_project", pid.clone())]).await,
        std::slice::from_ref(&docs)
    );
    assert_eq!(search(vec![("email_user_from", s(OWNER_EMAIL))]).await.len(), 4);
    assert_eq!(search(vec![("email_user_from", s("frank.harper@ws.com"))]).await, Vec::<String>::new());
    assert_eq!(search(vec![("id_project", pid.clone()), ("status", s("done"))]).await, std::slice::from_ref(&docs));
    assert_eq!(
        search(vec![("id_project", pid.clone()), ("status", s("active"))]).await,
        std::slice::from_ref(&implementation)
    );
    // extra=text adds the description, and has_comments.
    let with_text = server.ok(&owner, "search_tasks", &[("id_task", &approval), ("extra", "text,files")]).await;
    assert_eq!(with_text[0]["text"], "");
    assert_eq!(with_text[0]["has_comments"], 0);
    assert_eq!(with_text[0]["parent"]["id"], report);
    let _ = frank;

    // Archived projects are left out unless the project is named.
    server.ok(&owner, "close_project", &[("id_project", &other)]).await;
    assert_eq!(search(vec![("filter", s("name has 'Report'"))]).await, Vec::<String>::new());
    assert_eq!(search(vec![("id_project", other.clone())]).await, [report.clone(), approval.clone()]);

    // Errors.
    let err = server.fails(&owner, "search_tasks", &[], 10).await;
    assert_eq!(
        err,
        json!({"status": "error", "status_code": 10, "message": "At least one of fields required",
               "message_details": "filter, id_project, id_task, email_user_from, email_user_to"})
    );
    server.fails(&owner, "search_tasks", &[("filter", "  "), ("status", "done")], 10).await;
    server.fails(&owner, "search_tasks", &[("id_project", "999999")], 4).await;
    server.fails(&owner, "search_tasks", &[("id_project", "abc")], 4).await;
    server.fails(&owner, "search_tasks", &[("id_task", "999999")], 5).await;
    server.fails(&owner, "search_tasks", &[("email_user_from", "a@b.c,d@e.f")], 11).await;
    server.fails(&owner, "search_tasks", &[("id_project", &pid), ("status", "closed")], 11).await;
    let deep = format!("{}id = 1{}", "(".repeat(40), ")".repeat(40));
    let huge = format!("name has '{}'", "x".repeat(5000));
    let many = vec!["id = 1"; 1000].join(" or ");
    for (filter, why) in [
        ("priority = 5", "filter: unknown field priority"),
        ("(name has 'a'", "unbalanced parentheses"),
        ("name has 'a')", "unbalanced parentheses"),
        ("name like 'a'", "name takes = or has"),
        ("id = 1 AND id = 2", "lowercase"),
        ("dateend > '31.02.2021'", "invalid date"),
        ("id = 1; DROP TABLE tasks", "unexpected character"),
        ("name = 'x' or 1=1", "expected a field"),
        (deep.as_str(), "deeper than 32"),
        (huge.as_str(), "longer than 4096"),
        (many.as_str(), "longer than 4096"),
    ] {
        let err = server.fails(&owner, "search_tasks", &[("filter", filter)], 11).await;
        assert_eq!(err["message"], "Field is invalid");
        let details = err["message_details"].as_str().unwrap();
        assert!(details.starts_with("filter: ") && details.contains(why), "{filter}: {details}");
    }
    // A quote in a value is a value, not SQL.
    assert_eq!(search(vec![("filter", s("name has 'x'' OR ''1''=''1'"))]).await, Vec::<String>::new());
}

#[tokio::test]
async fn subscribe_and_unsubscribe() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    let (frank, _) = person(&server, "frank.harper@ws.com", Role::User).await;
    let pid = project(&server, &owner, "P", "frank.harper@ws.com").await;
    let t = task(&server, &owner, &[("id_project", &pid), ("title", "T")]).await;
    let subscribers = || async {
        let got = server.ok(&owner, "get_task", &[("id_task", &t), ("extra", "subscribers")]).await;
        got["subscribers"].as_array().unwrap().iter().map(|s| id(s).parse::<i64>().unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(subscribers().await, [server.owner_user_id]);
    let ok = server.call(&owner, "subscribe", &[("id_task", &t), ("email_user", "Frank.Harper@ws.com")]).await;
    assert_eq!(ok, json!({"status": "ok"}));
    assert_eq!(subscribers().await, [server.owner_user_id, frank]);
    server.ok(&owner, "subscribe", &[("id_task", &t), ("email_user", "frank.harper@ws.com")]).await;
    assert_eq!(subscribers().await, [server.owner_user_id, frank]);
    let ok = server.call(&owner, "unsubscribe", &[("id_task", &t), ("email_user", "frank.harper@ws.com")]).await;
    assert_eq!(ok, json!({"status": "ok"}));
    assert_eq!(subscribers().await, [server.owner_user_id]);
    server.ok(&owner, "unsubscribe", &[("id_task", &t), ("email_user", "frank.harper@ws.com")]).await;

    for action in ["subscribe", "unsubscribe"] {
        let err = server
            .fails(&owner, action, &[("id_task", &t), ("email_user", "henry.gardner@ws.com,frank.harper@ws.com")], 11)
            .await;
        assert_eq!(
            err,
            json!({"status": "error", "status_code": 11, "message": "Invalid email",
                   "message_details": "henry.gardner@ws.com,frank.harper@ws.com"})
        );
        let err = server.fails(&owner, action, &[("id_task", &t), ("email_user", "ghost@ws.com")], 11).await;
        assert_eq!(err["message_details"], "ghost@ws.com");
        let err = server.fails(&owner, action, &[("id_task", &t)], 10).await;
        assert_eq!(err["message_details"], "email_user");
        server.fails(&owner, action, &[("id_task", "999999"), ("email_user", "frank.harper@ws.com")], 5).await;
        server.fails(&owner, action, &[("email_user", "frank.harper@ws.com")], 10).await;
    }
}

#[tokio::test]
async fn scopes_are_checked() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    let pid = project(&server, &owner, "P", "").await;
    let t = task(&server, &owner, &[("id_project", &pid), ("title", "T")]).await;
    let no_tasks =
        server.tokens("projects_read projects_write users_read").await["access_token"].as_str().unwrap().to_owned();
    let read_only = server.tokens("tasks_read").await["access_token"].as_str().unwrap().to_owned();
    for action in ["get_all_tasks", "get_tasks", "get_task", "search_tasks"] {
        refused(&server, &no_tasks, action, &[("id_task", &t), ("id_project", &pid)], "tasks_read").await;
        server.ok(&read_only, action, &[("id_task", &t), ("id_project", &pid)]).await;
    }
    for action in ["post_task", "update_task", "complete_task", "reopen_task", "subscribe", "unsubscribe"] {
        refused(&server, &read_only, action, &[("id_task", &t), ("id_project", &pid), ("title", "X")], "tasks_write")
            .await;
        refused(&server, &no_tasks, action, &[("id_task", &t)], "tasks_write").await;
    }
}

#[tokio::test]
async fn roles_and_hidden_tasks() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    let (_, user) = person(&server, "user@acme.test", Role::User).await;
    let (_, outsider) = person(&server, "outsider@acme.test", Role::User).await;
    let (_, guest) = person(&server, "guest@acme.test", Role::Guest).await;
    let (_, reader) = person(&server, "reader@acme.test", Role::Reader).await;
    let (_, admin) = person(&server, "admin@acme.test", Role::Admin).await;
    let shared = project(&server, &owner, "Shared", "user@acme.test, guest@acme.test, reader@acme.test").await;
    let private = project(&server, &owner, "Private", "").await;
    let open = task(&server, &owner, &[("id_project", &shared), ("title", "Open")]).await;
    let secret = task(&server, &owner, &[("id_project", &private), ("title", "Secret")]).await;
    let hidden =
        task(&server, &owner, &[("id_project", &shared), ("title", "Hidden"), ("hidden", "guest@acme.test")]).await;
    let under_hidden =
        task(&server, &owner, &[("id_project", &shared), ("title", "Under"), ("id_parent", &hidden)]).await;
    let all_ids = |token: String| {
        let server = &server;
        async move { ids(&server.ok(&token, "get_all_tasks", &[("extra", "subtasks")]).await) }
    };

    // The owner and admins see every project; hidden tasks only if listed (or their author).
    assert_eq!(all_ids(owner.clone()).await, [open.clone(), secret.clone(), hidden.clone()]);
    assert_eq!(all_ids(admin.clone()).await, [open.clone(), secret.clone()]);
    // A user sees the tasks of their projects only, and not the hidden one (nor what is below it).
    assert_eq!(all_ids(user.clone()).await, std::slice::from_ref(&open));
    assert_eq!(all_ids(outsider.clone()).await, Vec::<String>::new());
    // The guest is listed on the hidden task.
    assert_eq!(all_ids(guest.clone()).await, [open.clone(), hidden.clone()]);
    let seen = server.ok(&guest, "get_task", &[("id_task", &hidden), ("extra", "subtasks")]).await;
    assert_eq!(seen["child"][0]["id"], under_hidden);

    // What may not be seen does not exist.
    for (token, task_id) in
        [(&user, &secret), (&user, &hidden), (&user, &under_hidden), (&outsider, &open), (&admin, &hidden)]
    {
        server.fails(token, "get_task", &[("id_task", task_id)], 5).await;
        server.fails(token, "update_task", &[("id_task", task_id), ("priority", "3")], 5).await;
        server.fails(token, "complete_task", &[("id_task", task_id)], 5).await;
        server.fails(token, "subscribe", &[("id_task", task_id), ("email_user", "user@acme.test")], 5).await;
        server.fails(token, "search_tasks", &[("id_task", task_id)], 5).await;
        server.fails(token, "update_task_tags", &[("id_task", task_id), ("plus", "Urgent")], 5).await;
        server.fails(token, "get_comments", &[("id_task", task_id)], 5).await;
        server.fails(token, "post_comment", &[("id_task", task_id), ("text", "hello")], 5).await;
    }
    server.fails(&user, "get_tasks", &[("id_project", &private)], 4).await;
    // (4 wins over a wrong filter, as over an unknown project's empty list)
    server.fails(&user, "get_tasks", &[("id_project", &private), ("filter", "done")], 4).await;
    server.fails(&user, "get_tasks", &[("id_project", "999999")], 4).await;
    server.fails(&user, "get_tasks", &[("id_project", &shared), ("filter", "done")], 11).await;
    let empty = project(&server, &owner, "Empty", "").await;
    assert_eq!(server.ok(&owner, "get_tasks", &[("id_project", &empty)]).await, json!([]));
    server.fails(&user, "get_tasks", &[("id_project", &empty)], 4).await;
    server.fails(&user, "post_task", &[("id_project", &private), ("title", "T")], 4).await;
    server.fails(&user, "post_task", &[("id_project", &shared), ("title", "T"), ("id_parent", &hidden)], 5).await;
    assert_eq!(
        ids(&server.ok(&user, "search_tasks", &[("filter", "name has 'e'")]).await),
        std::slice::from_ref(&open)
    );
    assert_eq!(ids(&server.ok(&user, "get_tasks", &[("id_project", &shared)]).await), std::slice::from_ref(&open));

    // Users may write in their projects; guests and readers may not write at all (20 Access denied).
    let mine = server
        .ok(&user, "post_task", &[("id_project", &shared), ("title", "Mine"), ("hidden", "owner@acme.test")])
        .await;
    assert_eq!(mine["user_from"]["email"], "user@acme.test");
    // The author of a hidden task sees it; the owner does because they are listed.
    server.ok(&user, "get_task", &[("id_task", &id(&mine))]).await;
    server.ok(&owner, "get_task", &[("id_task", &id(&mine))]).await;
    server.fails(&admin, "get_task", &[("id_task", &id(&mine))], 5).await;
    // hidden=1: the author alone.
    let alone =
        id(&server.ok(&user, "post_task", &[("id_project", &shared), ("title", "Alone"), ("hidden", "1")]).await);
    server.ok(&user, "get_task", &[("id_task", &alone)]).await;
    server.fails(&owner, "get_task", &[("id_task", &alone)], 5).await;
    for token in [&guest, &reader] {
        let err = server.fails(token, "post_task", &[("id_project", &shared), ("title", "T")], 20).await;
        assert_eq!(err["message"], "Access denied");
        server.fails(token, "complete_task", &[("id_task", &open)], 20).await;
        server.fails(token, "subscribe", &[("id_task", &open), ("email_user", "user@acme.test")], 20).await;
        server.ok(token, "get_task", &[("id_task", &open)]).await;
    }
}

#[tokio::test]
async fn bad_input_is_never_a_server_error() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    let pid = project(&server, &owner, "P", "").await;
    let t = task(&server, &owner, &[("id_project", &pid), ("title", "T")]).await;
    let odd = [
        "",
        " ",
        "0",
        "-1",
        "abc",
        "1e9",
        "9223372036854775808",
        "99999999999999999999999999",
        "'",
        "\"",
        "%00",
        "\u{0}",
        "名前",
        "1,2",
        "[1]",
        "{}",
        "/project/x/",
        "/project/1/2/3/4/",
    ];
    let fields = [
        "id_task",
        "id_project",
        "id_parent",
        "page",
        "title",
        "text",
        "priority",
        "email_user_to",
        "email_user_from",
        "email_user",
        "datestart",
        "dateend",
        "dateclosed",
        "max_time",
        "max_money",
        "subscribe",
        "hidden",
        "mention",
        "filter",
        "status",
        "extra",
        "todo[]",
    ];
    let actions = [
        "get_all_tasks",
        "get_tasks",
        "get_task",
        "post_task",
        "update_task",
        "complete_task",
        "reopen_task",
        "search_tasks",
        "subscribe",
        "unsubscribe",
    ];
    for action in actions {
        for field in fields {
            for value in odd {
                // `call` asserts HTTP 200: an envelope, never a 500.
                let body = server
                    .call(&owner, action, &[("id_task", &t), ("id_project", &pid), ("title", "T"), (field, value)])
                    .await;
                assert!(body["status"] == "ok" || body["status"] == "error", "{action} {field}={value:?}: {body}");
            }
        }
    }
}

/// 10,000 tasks through `get_all_tasks` (timed, printed: run with `--nocapture`), and one more refused.
#[tokio::test]
async fn ten_thousand_tasks() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    let pid: i64 = project(&server, &owner, "Big", "").await.parse().unwrap();
    let store = &server.state().store;
    let now = server.clock.now();
    let many: Vec<NewTask> = (0..10_000)
        .map(|i| NewTask {
            text: format!("Description {i}"),
            priority: i % 11,
            date_start: Some("2021-01-01".into()),
            ..NewTask::new(server.account_id, pid, server.owner_user_id, &format!("Task {i}"), now + i)
        })
        .collect();
    let started = Instant::now();
    let created = store.insert_tasks(&many).await.unwrap();
    let inserted = started.elapsed();
    assert_eq!(created.len(), 10_000);
    // A few comments and relations, so the extras have something to load.
    for pair in created.chunks(1000) {
        store.insert_comment(pair[0], server.owner_user_id, "c", None, now).await.unwrap();
        store.relate_tasks(pair[0], pair[1], "finish-to-start").await.unwrap();
    }
    let started = Instant::now();
    let all = server.ok(&owner, "get_all_tasks", &[]).await;
    let bare = started.elapsed();
    assert_eq!(all.as_array().unwrap().len(), 10_000);
    let started = Instant::now();
    let full =
        server.ok(&owner, "get_all_tasks", &[("extra", "text,files,comments,relations,subtasks,subscribers")]).await;
    let extras = started.elapsed();
    assert_eq!(full.as_array().unwrap().len(), 10_000);
    assert_eq!(full[0]["has_comments"], 1);
    assert_eq!(full[0]["relations"]["to"][0]["task"]["id"], created[1].to_string());
    let viewer = Viewer { account_id: server.account_id, user_id: server.owner_user_id, admin: true };
    let started = Instant::now();
    let rows = store.tasks(&viewer, &Default::default()).await.unwrap();
    let query = started.elapsed();
    assert_eq!(rows.len(), 10_000);
    println!(
        "10,000 tasks: insert {inserted:?}; task query alone {query:?}; get_all_tasks over HTTP {bare:?}, \
         with every extra {extras:?}"
    );

    store.insert_tasks(&many[..1]).await.unwrap();
    let err = server.call(&owner, "get_all_tasks", &[]).await;
    assert_eq!(err, json!({"status": "error", "message": "Too many tasks (10000 max)"}));
    let err = server.call(&owner, "get_tasks", &[("id_project", &pid.to_string())]).await;
    assert_eq!(err["message"], "Too many tasks (10000 max)");
    // A narrower list is fine.
    let some = server.ok(&owner, "search_tasks", &[("filter", "name = 'Task 0'")]).await;
    assert_eq!(some.as_array().unwrap().len(), 2);
}

/// Concurrent writers: every request answers (no lock error becomes a 500), and a subtask never lands under a
/// task completed at the same time.
#[tokio::test]
async fn concurrent_writes() {
    let server = TestServer::start().await;
    let owner = server.owner_token().await;
    let pid = project(&server, &owner, "P", "").await;
    let parents: Vec<String> = {
        let mut parents = Vec::new();
        for i in 0..8 {
            parents.push(task(&server, &owner, &[("id_project", &pid), ("title", &format!("Parent {i}"))]).await);
        }
        parents
    };
    let mut handles = Vec::new();
    for (i, parent) in parents.iter().enumerate() {
        for j in 0..4 {
            let (base, token, pid, parent) = (server.base.clone(), owner.clone(), pid.clone(), parent.clone());
            handles.push(tokio::spawn(async move {
                let (action, params): (&str, Vec<(&str, String)>) = if j == 0 {
                    ("complete_task", vec![("id_task", parent)])
                } else {
                    ("post_task", vec![("id_project", pid), ("title", format!("Sub {i}.{j}")), ("id_parent", parent)])
                };
                let mut form: Vec<(&str, String)> = vec![("action", action.to_owned())];
                form.extend(params);
                let response =
                    plain().post(format!("{base}/api/oauth2")).bearer_auth(&token).form(&form).send().await.unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                let body: Value = response.json().await.unwrap();
                (action, body)
            }));
        }
    }
    for handle in handles {
        let (action, body) = handle.await.unwrap();
        let code = body["status_code"].as_i64();
        // complete_task may lose to a new subtask (13); post_task may find the parent closed (8).
        assert!(body["status"] == "ok" || code == Some(13) || code == Some(8), "{action}: {body}");
    }
    for parent in &parents {
        let tree = server.ok(&owner, "get_task", &[("id_task", parent), ("extra", "subtasks")]).await;
        if tree["status"] == "done" {
            let children = tree["child"].as_array().cloned().unwrap_or_default();
            assert!(children.iter().all(|c| c["status"] == "done"), "{tree}");
        }
    }
}
