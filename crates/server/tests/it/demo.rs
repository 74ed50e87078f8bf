//! `wsoauth demo seed`: a fresh account gets a realistic sample that the API serves at once.

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::*;

#[tokio::test]
async fn the_demo_seed_fills_an_account_the_api_can_show() {
    let server = TestServer::start().await;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_wsoauth"));
    command
        .args(["demo", "seed"])
        .env_remove("WSOAUTH_CONFIG")
        .env("WSOAUTH_DATABASE_URL", &server.state().settings.database_url);
    let output = run_command(command).await;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("3 projects") && stdout.contains("anna.berg@demo.test"), "{stdout}");
    let password = stdout.lines().find_map(|l| l.strip_prefix("Their password (shown only now): ")).unwrap().trim();

    let owner = server.owner_token().await;
    let projects = server.ok(&owner, "get_projects", &[("extra", "users")]).await;
    let names: Vec<&str> = projects.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 3, "{projects}");
    assert!(names.contains(&"Website relaunch") && names.contains(&"Northwind onboarding"));
    assert!(
        projects.as_array().unwrap().iter().all(|p| p["tags"].is_object() && p["users"].as_array().unwrap().len() >= 3)
    );

    let tasks = server.ok(&owner, "get_all_tasks", &[("extra", "subtasks,comments")]).await;
    let tasks = tasks.as_array().unwrap();
    assert!(tasks.len() >= 10, "{tasks:?}");
    let design = tasks.iter().find(|t| t["name"] == "Visual design").unwrap();
    let home = design["child"].as_array().unwrap().iter().find(|t| t["name"] == "Home page").unwrap();
    assert_eq!(home["child"].as_array().unwrap().len(), 2, "sub-subtasks: {home}");
    assert_eq!(design["comments"].as_array().unwrap().len(), 2, "{design}");
    assert!(tasks.iter().any(|t| t["status"] == "done"));
    let users = server.ok(&owner, "get_users", &[]).await;
    assert_eq!(users.as_array().unwrap().len(), 5, "{users}");
    let groups: Value = server.ok(&owner, "get_user_groups", &[]).await;
    assert!(
        groups.as_array().unwrap().iter().any(|g| g["title"] == "Northwind Traders" && g["client"] == 1),
        "{groups}"
    );

    // the demo members can sign in with the printed password; the guest sees only the client project
    let guest = server.token_for("dan.weber@northwind.test", password, None).await;
    let visible = server.ok(&guest, "get_projects", &[]).await;
    assert_eq!(visible.as_array().unwrap().len(), 1, "{visible}");
    assert_eq!(visible[0]["name"], "Northwind onboarding");
    let (status, body) = server.api(&guest, "me").await;
    assert_eq!((status, body["data"]["role"].as_str()), (StatusCode::OK, Some("Guest")));
    let keys: Vec<&str> = body["data"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["id", "first_name", "last_name", "name", "title", "role", "email"], "{body}");
    assert_eq!(
        (body["data"]["name"].as_str(), body["data"]["title"].as_str()),
        (Some("Dan Weber"), Some("Client contact"))
    );
}
