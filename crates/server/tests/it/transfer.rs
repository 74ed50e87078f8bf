//! `wsoauth export` and `wsoauth import` through the real binary: a server's SQLite database moved to PostgreSQL
//! (when `WSOAUTH_TEST_POSTGRES_URL` names a server) and to a new SQLite file, then servers on the imported
//! databases show over HTTP that tokens, passwords, client secrets, data and id sequences came along.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::Value;
use wsoauth_domain::ManualClock;
use wsoauth_server::{Running, spawn};

use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_wsoauth");

/// Runs the binary on `database_url` with `stdin`, without this process's `WSOAUTH_*` variables.
fn wsoauth(database_url: &str, args: &[&str], stdin: &[u8]) -> Output {
    let mut command = Command::new(BIN);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("WSOAUTH_") {
            command.env_remove(&key);
        }
    }
    command.args(args).args(["--database-url", database_url]);
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("the wsoauth binary starts");
    let mut pipe = child.stdin.take().unwrap();
    let input = stdin.to_vec();
    // a refused import may exit before reading it all: a broken pipe is not the test's concern
    let writer = std::thread::spawn(move || drop(pipe.write_all(&input)));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    output
}

#[track_caller]
fn succeeded(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "failed: {stderr}");
    stderr
}

#[track_caller]
fn refused(output: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.code().is_some_and(|c| c != 0), "expected a non-zero exit: {stderr}");
    assert!(stderr.contains(needle), "stderr lacks {needle:?}: {stderr}");
}

/// The lines after the header (which holds the export time).
fn rows(export: &[u8]) -> Vec<String> {
    String::from_utf8(export.to_vec()).unwrap().lines().skip(1).map(str::to_owned).collect()
}

fn export(database_url: &str) -> Vec<u8> {
    let output = wsoauth(database_url, &["export"], b"");
    succeeded(&output);
    output.stdout
}

/// A server on an existing database (no bootstrap), on the tests' clock shortly after the source's tokens, with
/// the source server's public URL (the tokens' issuer), as a server moved to another database keeps its URL.
struct Imported {
    running: Running,
}

impl Drop for Imported {
    fn drop(&mut self) {
        self.running.handle.abort();
    }
}

impl Imported {
    async fn start(database_url: &str, public_url: &str, dir: &Path) -> Imported {
        let settings = wsoauth_server::Settings {
            database_url: database_url.to_owned(),
            public_url: Some(public_url.to_owned()),
            ..test_settings(dir)
        };
        let running = spawn(settings, Arc::new(ManualClock::new(START + 60))).await.expect("server starts");
        Imported { running }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.running.base_url)
    }

    async fn api(&self, token: &str, action: &str, params: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut form = vec![("action", action)];
        form.extend_from_slice(params);
        let response = plain().post(self.url("/api/oauth2")).bearer_auth(token).form(&form).send().await.unwrap();
        (response.status(), response.json().await.unwrap())
    }

    async fn ok(&self, token: &str, action: &str, params: &[(&str, &str)]) -> Value {
        let (status, body) = self.api(token, action, params).await;
        assert_eq!((status, &body["status"]), (StatusCode::OK, &Value::from("ok")), "{action}: {body}");
        body["data"].clone()
    }

    async fn token(&self, form: &[(&str, &str)]) -> (StatusCode, Value) {
        let response = plain().post(self.url("/oauth2/token")).form(form).send().await.unwrap();
        (response.status(), response.json().await.unwrap())
    }

    /// Signs in through the login page with `password`, approves `client_id` and returns the code.
    async fn code(&self, email: &str, password: &str, client_id: &str) -> String {
        let browser = Browser::new();
        let (_, _, page) = browser.get(&self.url("/login")).await;
        let csrf = hidden_fields(&page).into_iter().find(|(k, _)| k == "csrf_token").unwrap().1;
        let form = [("csrf_token", csrf.as_str()), ("next", "/"), ("email", email), ("password", password)];
        let form: Vec<(String, String)> = form.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let (status, _, body) = browser.post(&self.url("/login"), &form).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "sign-in with the old password: {body}");
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("state", "st")
            .append_pair("scope", "users_read")
            .finish();
        let location = browser.approve_url(&self.url(&format!("/oauth2/authorize?{query}"))).await;
        query_param(&location, "code").expect("a code")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_database_moves_to_postgresql_and_sqlite_with_tokens_secrets_passwords_and_data() {
    let dir = temp_dir();
    let source = format!("sqlite://{}", dir.join("source.db").display());

    // a server on SQLite: a code flow, one refresh, a project and a task, a second app
    let server = TestServer::start_with(|s| s.database_url = source.clone()).await;
    let first = server.tokens(&all_scopes()).await;
    let (status, tokens) = server.refresh("/oauth2/refresh", first["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let project = id(&server.ok(&access, "post_project", &[("title", "Migration")]).await);
    let task = id(&server.ok(&access, "post_task", &[("id_project", &project), ("title", "Move the data")]).await);
    let (second_id, second_secret) = server.app("Second app", &[REDIRECT], &all_scopes()).await;
    let (client_id, client_secret, owner) =
        (server.client_id.clone(), server.client_secret.clone(), server.owner_user_id);
    let public_url = server.base.clone();
    drop(server);

    // export to a file only its owner can read
    let file = dir.join("export.jsonl");
    let output = wsoauth(&source, &["export", "--output", file.to_str().unwrap()], b"");
    let summary = succeeded(&output);
    assert!(output.stdout.is_empty(), "the export goes to the file");
    assert!(summary.contains("exported schema version") && summary.contains("refresh_tokens"), "{summary}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let exported = std::fs::read(&file).unwrap();
    assert_eq!(rows(&exported), rows(&export(&source)), "the same data exports the same");

    // into a new SQLite file (--input) and an empty PostgreSQL schema (standard input)
    let mut targets = vec![format!("sqlite://{}", dir.join("imported.db").display())];
    let summary = succeeded(&wsoauth(&targets[0], &["import", "--input", file.to_str().unwrap()], b""));
    assert!(summary.contains("imported schema version") && summary.contains("users"), "{summary}");
    match std::env::var("WSOAUTH_TEST_POSTGRES_URL") {
        Ok(base) => {
            let postgres = wsoauth_storage::scratch_postgres(&base, "wsoauth_it").await.unwrap();
            succeeded(&wsoauth(&postgres, &["import"], &exported));
            // and back: PostgreSQL -> SQLite exports the very same rows
            let from_postgres = export(&postgres);
            assert_eq!(rows(&from_postgres), rows(&exported));
            let back = format!("sqlite://{}", dir.join("back.db").display());
            succeeded(&wsoauth(&back, &["import"], &from_postgres));
            assert_eq!(rows(&export(&back)), rows(&from_postgres), "PostgreSQL -> SQLite round trip");
            targets.push(postgres);
        }
        Err(_) => eprintln!("WSOAUTH_TEST_POSTGRES_URL is not set: the PostgreSQL import is skipped"),
    }
    assert_eq!(rows(&export(&targets[0])), rows(&exported));

    for target in &targets {
        let imported = Imported::start(target, &public_url, &dir).await;
        // the access token issued before the move verifies (same signing keys) and names the same member
        let me = imported.ok(&access, "me", &[]).await;
        assert_eq!(me["id"], owner.to_string(), "{me}");
        // the current refresh token refreshes with the first app's old client secret
        let (status, next) = imported
            .token(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("client_id", &client_id),
                ("client_secret", &client_secret),
            ])
            .await;
        assert_eq!(status, StatusCode::OK, "{next}");
        let fresh = next["access_token"].as_str().unwrap().to_owned();
        // the owner signs in with the old password; the second app's secret exchanges the code
        let code = imported.code(OWNER_EMAIL, OWNER_PASSWORD, &second_id).await;
        let (status, body) = imported
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("client_id", &second_id),
                ("client_secret", &second_secret),
            ])
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // the project and the task are there
        let projects = imported.ok(&fresh, "get_projects", &[]).await;
        assert!(projects.as_array().unwrap().iter().any(|p| id(p) == project), "{projects}");
        let got = imported.ok(&fresh, "get_task", &[("id_task", &task)]).await;
        assert_eq!(got["name"], "Move the data", "{got}");
        // new rows get ids after the imported ones
        let user = imported.ok(&fresh, "add_user", &[("email", "new.member@acme.test")]).await;
        assert!(id(&user).parse::<i64>().unwrap() > owner, "{user}");
        let newer = imported.ok(&fresh, "post_project", &[("title", "After the move")]).await;
        assert!(id(&newer).parse::<i64>().unwrap() > project.parse::<i64>().unwrap(), "{newer}");
        let sub = imported.ok(&fresh, "post_task", &[("id_project", &project), ("title", "Check it")]).await;
        assert!(id(&sub).parse::<i64>().unwrap() > task.parse::<i64>().unwrap(), "{sub}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_refuses_a_database_with_data_other_files_and_other_schema_versions() {
    let dir = temp_dir();
    let source = format!("sqlite://{}", dir.join("source.db").display());
    succeeded(&wsoauth(&source, &["account", "create", "--name", "Acme"], b""));
    let exported = export(&source);
    let text = String::from_utf8(exported.clone()).unwrap();

    // the database it came from, and any database with a row, is refused
    refused(&wsoauth(&source, &["import"], &exported), "the target database is not empty (table settings has rows)");
    let target = format!("sqlite://{}", dir.join("target.db").display());
    let fails = |stdin: &[u8], needle: &str| refused(&wsoauth(&target, &["import"], stdin), needle);
    fails(b"hello\n", "not a wsoauth export");
    fails(b"", "not a wsoauth export");
    fails(
        b"{\"format\":\"wsoauth-export\",\"version\":2,\"schema\":14,\"exported_at\":0}\n",
        "version 2 is not supported",
    );
    let header = text.lines().next().unwrap();
    let other_schema = text.replacen(header, &header.replace("\"schema\":", "\"schema\":9"), 1);
    fails(other_schema.as_bytes(), "import with the wsoauth version that made the export");
    // a file cut short writes nothing: the whole file imports afterwards
    let cut: String = text.lines().take(text.lines().count() - 1).map(|l| format!("{l}\n")).collect();
    fails(cut.as_bytes(), "the export is incomplete");
    let bad_row = text.replacen("[1,\"Acme\"", "[\"one\",\"Acme\"", 1);
    fails(bad_row.as_bytes(), "table accounts: row 1, column id: text in an integer column");
    succeeded(&wsoauth(&target, &["import"], &exported));
    assert_eq!(rows(&export(&target)), rows(&exported));
    // a missing input file is a clear error too
    refused(
        &wsoauth(&target, &["import", "--input", "/nonexistent/export.jsonl"], b""),
        "cannot open /nonexistent/export.jsonl",
    );

    // exporting a database that has nothing (a mistyped path creates one) says so
    let empty = format!("sqlite://{}", dir.join("mistyped.db").display());
    assert!(succeeded(&wsoauth(&empty, &["export"], b"")).contains("warning: the database is empty"));

    // --help says the file holds secrets
    let help = wsoauth(&target, &["export", "--help"], b"");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("private keys") && help.contains("treat it as a secret"), "{help}");
    let _ = std::fs::remove_dir_all(&dir);
}
