//! Observing the server: `/healthz`, `/readyz`, `/metrics` after real traffic (route templates, token counters,
//! failure reasons, latency histogram, pool gauges; each server counting alone), `X-Request-Id`, and the JSON
//! log lines of the real binary (a request id on each, no secret in any).

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::*;

async fn get(server: &TestServer, path: &str) -> reqwest::Response {
    plain().get(server.url(path)).send().await.unwrap()
}

async fn metrics_text(server: &TestServer) -> String {
    let response = get(server, "/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.text().await.unwrap()
}

/// The sum of the samples of `name` (exactly that name, before `{` or a space) whose labels include `labels`;
/// `None` when there is no such sample.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else { continue };
        let (label_text, value) = match rest.strip_prefix('{') {
            Some(rest) => match rest.split_once("} ") {
                Some(pair) => pair,
                None => continue,
            },
            None => match rest.strip_prefix(' ') {
                Some(value) => ("", value),
                None => continue,
            },
        };
        if labels.iter().all(|(key, value)| label_text.split(',').any(|pair| pair == format!("{key}=\"{value}\""))) {
            *found.get_or_insert(0.0) += value.trim().parse::<f64>().unwrap();
        }
    }
    found
}

#[track_caller]
fn expect(text: &str, name: &str, labels: &[(&str, &str)], value: f64) {
    assert_eq!(sample(text, name, labels), Some(value), "{name} {labels:?} in:\n{text}");
}

#[tokio::test]
async fn health_and_readiness() {
    let server = TestServer::start().await;
    let response = get(&server, "/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "ok"}));

    let response = get(&server, "/readyz").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(body["checks"]["database"], "ok", "{body}");
    assert_eq!(body["checks"]["signing_keys"], "ok", "{body}");

    // no database: not ready, still alive
    server.state().store.close().await;
    let response = get(&server, "/readyz").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "unavailable", "{body}");
    assert_eq!(body["checks"]["database"], "failed", "{body}");
    assert_eq!(body["checks"]["signing_keys"], "ok", "{body}");
    let response = get(&server, "/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn metrics_count_routes_tokens_and_failures() {
    let server = TestServer::start_with(|s| s.refresh_reuse_grace = 0).await;
    let mut secrets = vec![server.client_secret.clone(), OWNER_PASSWORD.to_owned()];

    // a full flow, a refresh, and the rotated refresh token presented again (reuse: the grant is revoked)
    let code = server.code(&all_scopes()).await;
    let (status, first) = server.exchange(&code).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let access = first["access_token"].as_str().unwrap().to_owned();
    let refresh = first["refresh_token"].as_str().unwrap().to_owned();
    let (status, second) = server.refresh("/oauth2/refresh", &refresh).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let (status, _) = server.api(second["access_token"].as_str().unwrap(), "me").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server.refresh("/oauth2/token", &refresh).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    secrets.extend([code, access.clone(), refresh]);
    secrets.extend(["access_token", "refresh_token"].map(|key| second[key].as_str().unwrap().to_owned()));

    // a second flow whose code is presented twice (a replay)
    let code = server.code(&all_scopes()).await;
    assert_eq!(server.exchange(&code).await.0, StatusCode::OK);
    assert_eq!(server.exchange(&code).await.0, StatusCode::BAD_REQUEST);
    secrets.push(code);

    // a failed token request: a wrong client secret
    let response = plain()
        .post(server.url("/oauth2/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "made-up-code"),
            ("redirect_uri", REDIRECT),
            ("client_id", &server.client_id),
            ("client_secret", "wrong-secret-value"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // failed API calls: no token, a made-up one, a revoked one (in the query: it must not reach a label)
    let response = plain().get(server.url("/api/oauth2?action=me")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(server.api("not-a-real-token", "me").await.0, StatusCode::UNAUTHORIZED);
    let response = plain().get(server.url(&format!("/oauth2/resource?access_token={access}"))).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // an expired token
    let token = server.owner_token().await;
    server.clock.advance(2 * 86_400);
    assert_eq!(server.api(&token, "me").await.0, StatusCode::UNAUTHORIZED);
    secrets.push(token);
    // a failed sign-in, and a path nobody routes
    let (status, _, _) = Browser::new().try_login(&server, OWNER_EMAIL, "a-wrong-password", "/").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(get(&server, "/no/such/page-s3cr3t-path").await.status(), StatusCode::NOT_FOUND);

    let text = metrics_text(&server).await;
    // requests by route template, method and status
    expect(&text, "http_requests_total", &[("route", "/oauth2/token"), ("method", "POST"), ("status", "200")], 3.0);
    expect(&text, "http_requests_total", &[("route", "/oauth2/token"), ("method", "POST"), ("status", "400")], 2.0);
    expect(&text, "http_requests_total", &[("route", "/oauth2/token"), ("status", "401")], 1.0);
    expect(&text, "http_requests_total", &[("route", "/oauth2/refresh"), ("status", "200")], 1.0);
    expect(&text, "http_requests_total", &[("route", "/api/oauth2"), ("method", "GET"), ("status", "401")], 3.0);
    expect(&text, "http_requests_total", &[("route", "/oauth2/resource"), ("status", "401")], 1.0);
    expect(&text, "http_requests_total", &[("route", "unmatched"), ("status", "404")], 1.0);
    assert!(sample(&text, "http_requests_total", &[("route", "/oauth2/authorize"), ("method", "GET")]).is_some());
    assert!(sample(&text, "http_requests_total", &[("route", "/login"), ("method", "POST")]).is_some());
    // the latency histogram, with the same labels
    let token_route = [("route", "/oauth2/token"), ("method", "POST")];
    expect(&text, "http_request_duration_seconds_count", &token_route, 6.0);
    expect(&text, "http_request_duration_seconds_bucket", &[token_route[0], token_route[1], ("le", "+Inf")], 6.0);
    assert!(sample(&text, "http_request_duration_seconds_bucket", &[token_route[0], ("le", "0.1")]).is_some());
    assert!(sample(&text, "http_request_duration_seconds_sum", &token_route).is_some_and(|s| s > 0.0));
    assert!(text.contains("# TYPE http_request_duration_seconds histogram"), "{text}");
    // tokens, refreshes, failures by reason
    expect(&text, "wsoauth_tokens_issued_total", &[("grant_type", "authorization_code")], 3.0);
    expect(&text, "wsoauth_tokens_issued_total", &[("grant_type", "refresh_token")], 1.0);
    expect(&text, "wsoauth_token_refreshes_total", &[("result", "rotated")], 1.0);
    expect(&text, "wsoauth_token_refreshes_total", &[("result", "refused")], 1.0);
    expect(&text, "wsoauth_refresh_token_reuse_total", &[], 1.0);
    expect(&text, "wsoauth_code_replays_total", &[], 1.0);
    expect(&text, "wsoauth_token_failures_total", &[("endpoint", "token"), ("error", "invalid_grant")], 2.0);
    expect(&text, "wsoauth_token_failures_total", &[("endpoint", "token"), ("error", "invalid_client")], 1.0);
    expect(&text, "wsoauth_bearer_failures_total", &[("reason", "missing")], 1.0);
    expect(&text, "wsoauth_bearer_failures_total", &[("reason", "invalid")], 1.0);
    expect(&text, "wsoauth_bearer_failures_total", &[("reason", "revoked")], 1.0);
    expect(&text, "wsoauth_bearer_failures_total", &[("reason", "expired")], 1.0);
    expect(&text, "wsoauth_sign_ins_total", &[("result", "ok")], 3.0);
    expect(&text, "wsoauth_sign_ins_total", &[("result", "failed")], 1.0);
    // gauges read at scrape time
    let max = if server.state().settings.database_url.starts_with("postgres") { 16.0 } else { 8.0 };
    expect(&text, "wsoauth_db_pool_max_connections", &[], max);
    assert!(sample(&text, "wsoauth_db_pool_connections", &[]).is_some_and(|n| (1.0..=max).contains(&n)), "{text}");
    assert!(sample(&text, "wsoauth_db_pool_idle_connections", &[]).is_some(), "{text}");
    expect(&text, "wsoauth_signing_keys_loaded", &[], 1.0);
    assert!(text.contains("# HELP wsoauth_tokens_issued_total"), "{text}");
    // no secret, code, token or raw path in any label
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "{secret} in the metrics:\n{text}");
    }
    for raw in ["s3cr3t", "made-up-code", "wrong-secret-value", "not-a-real-token", "a-wrong-password", "action="] {
        assert!(!text.contains(raw), "{raw} in the metrics:\n{text}");
    }

    // another server in this process counts alone
    let other = TestServer::start().await;
    let text = metrics_text(&other).await;
    assert_eq!(sample(&text, "wsoauth_tokens_issued_total", &[]), None, "{text}");
    assert_eq!(sample(&text, "http_requests_total", &[("route", "/oauth2/token")]), None, "{text}");
    assert_eq!(sample(&text, "http_requests_total", &[("route", "/metrics")]), None, "{text}");
}

#[tokio::test]
async fn request_ids_are_echoed_or_made() {
    let server = TestServer::start().await;
    // a sane one is echoed, on any answer
    for path in ["/healthz", "/oauth2/token", "/nowhere"] {
        let response = plain().get(server.url(path)).header("x-request-id", "trace-42.A_b-c").send().await.unwrap();
        assert_eq!(response.headers()["x-request-id"], "trace-42.A_b-c", "{path}");
    }
    // none, or one that is not a plain short token: a new one
    let long = "x".repeat(65);
    let mut seen = Vec::new();
    for sent in [None, Some("has space"), Some(long.as_str()), Some("a/b"), Some("")] {
        let mut request = plain().get(server.url("/healthz"));
        if let Some(sent) = sent {
            request = request.header("x-request-id", sent);
        }
        let response = request.send().await.unwrap();
        let id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_eq!(id.len(), 32, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        assert_ne!(Some(id.as_str()), sent);
        assert!(!seen.contains(&id), "ids are not reused: {id}");
        seen.push(id);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// JSON logs of the real binary

/// `wsoauth` itself, with a clean environment; killed when dropped.
struct Process {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(dir: &std::path::Path, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wsoauth"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("WSOAUTH_") {
            command.env_remove(&key);
        }
    }
    command.current_dir(dir).envs(env.iter().copied());
    command
}

fn collect(mut pipe: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(&mut pipe);
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            sink.lock().unwrap().push_str(&line);
            line.clear();
        }
    });
    text
}

#[tokio::test]
async fn json_logs_carry_request_ids_and_no_secrets() {
    let dir = temp_dir();
    let db = format!("sqlite://{}", dir.join("logs.db").display());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let password = "json-log-owner-password";
    let listen = format!("127.0.0.1:{port}");
    let env = [
        ("WSOAUTH_DATABASE_URL", db.as_str()),
        ("WSOAUTH_LISTEN", listen.as_str()),
        ("WSOAUTH_LOG_FORMAT", "json"),
        ("WSOAUTH_BOOTSTRAP_EMAIL", "logs@acme.test"),
        ("WSOAUTH_BOOTSTRAP_PASSWORD", password),
    ];
    let mut child = command(&dir, &env)
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the wsoauth binary starts");
    let stdout = collect(child.stdout.take().unwrap());
    let stderr = collect(child.stderr.take().unwrap());
    let mut process = Process { child, stdout, stderr };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(process.child.try_wait().unwrap().is_none(), "wsoauth exited: {}", process.stderr.lock().unwrap());
        if let Ok(response) = plain().get(format!("{base}/healthz")).send().await
            && response.status() == StatusCode::OK
        {
            break;
        }
        assert!(Instant::now() < deadline, "wsoauth did not answer: {}", process.stderr.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = command(&dir, &[("WSOAUTH_DATABASE_URL", db.as_str())])
        .args(["app", "create", "--name", "Logs", "--redirect-uri", REDIRECT, "--json"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let app: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (client_id, client_secret) =
        (app["client_id"].as_str().unwrap().to_owned(), app["client_secret"].as_str().unwrap().to_owned());

    // sign in, approve, exchange, refresh, call the API (header and query), fail once
    let browser = Browser::new();
    let (_, _, page) = browser.get(&format!("{base}/login")).await;
    let csrf = hidden_fields(&page).into_iter().find(|(k, _)| k == "csrf_token").unwrap().1;
    let form = [
        ("csrf_token".to_owned(), csrf.clone()),
        ("next".to_owned(), "/".to_owned()),
        ("email".to_owned(), "logs@acme.test".to_owned()),
        ("password".to_owned(), password.to_owned()),
    ];
    let (status, _, body) = browser.post(&format!("{base}/login"), &form).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &client_id)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("state", "st")
        .append_pair("scope", "users_read")
        .finish();
    let location = browser.approve_url(&format!("{base}/oauth2/authorize?{query}")).await;
    let code = query_param(&location, "code").expect("a code");
    let token_form = |grant: &str, key: &str, value: &str| {
        vec![
            ("grant_type".to_owned(), grant.to_owned()),
            (key.to_owned(), value.to_owned()),
            ("redirect_uri".to_owned(), REDIRECT.to_owned()),
            ("client_id".to_owned(), client_id.clone()),
            ("client_secret".to_owned(), client_secret.clone()),
        ]
    };
    let response = plain()
        .post(format!("{base}/oauth2/token"))
        .header("x-request-id", "json-log-test-1")
        .form(&token_form("authorization_code", "code", &code))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "json-log-test-1");
    let first: Value = response.json().await.unwrap();
    let refresh = first["refresh_token"].as_str().expect("tokens").to_owned();
    let response = plain()
        .post(format!("{base}/oauth2/refresh"))
        .form(&token_form("refresh_token", "refresh_token", &refresh))
        .send()
        .await
        .unwrap();
    let second: Value = response.json().await.unwrap();
    let access = second["access_token"].as_str().expect("refreshed").to_owned();
    let response = plain().get(format!("{base}/api/oauth2?action=me")).bearer_auth(&access).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = plain().get(format!("{base}/oauth2/resource?access_token={access}")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let old = first["access_token"].as_str().unwrap();
    let response = plain().get(format!("{base}/api/oauth2?action=me")).bearer_auth(old).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // every line is a JSON object; every request left one access line with its id
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(browser);
    let _ = process.child.kill();
    let _ = process.child.wait();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stderr = process.stderr.lock().unwrap().clone();
    let lines: Vec<Value> = stderr
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let access_lines: Vec<&Value> = lines.iter().filter(|line| line["target"] == "access").collect();
    assert!(access_lines.len() >= 8, "{stderr}");
    for line in &access_lines {
        let id = line["span"]["request_id"].as_str().unwrap_or_else(|| panic!("no request id: {line}"));
        assert!(!id.is_empty() && id.len() <= 64, "{line}");
        assert_eq!(line["level"], "INFO", "{line}");
        assert!(line["method"].is_string() && line["route"].is_string(), "{line}");
        assert!(line["status"].is_u64() && line["latency_ms"].is_number(), "{line}");
    }
    let exchange = access_lines
        .iter()
        .find(|line| line["span"]["request_id"] == "json-log-test-1")
        .unwrap_or_else(|| panic!("the client's request id: {stderr}"));
    assert_eq!(exchange["route"], "/oauth2/token", "{exchange}");
    assert_eq!(exchange["method"], "POST", "{exchange}");
    assert_eq!(exchange["status"], 200, "{exchange}");
    // the handler's own lines (the audit entry) carry the same id
    let same: Vec<&Value> = lines.iter().filter(|line| line["span"]["request_id"] == "json-log-test-1").collect();
    assert!(same.iter().any(|line| line["target"] == "audit"), "{same:?}");
    assert!(access_lines.iter().any(|line| line["route"] == "/oauth2/resource" && line["status"] == 200));
    assert!(access_lines.iter().any(|line| line["route"] == "/api/oauth2" && line["status"] == 401));

    for secret in [
        password,
        client_secret.as_str(),
        code.as_str(),
        csrf.as_str(),
        refresh.as_str(),
        old,
        access.as_str(),
        second["refresh_token"].as_str().unwrap(),
    ] {
        assert!(!stderr.contains(secret), "{secret} in the log:\n{stderr}");
    }
    assert!(!stderr.contains("access_token="), "{stderr}");
    let stdout = process.stdout.lock().unwrap().clone();
    assert!(!stdout.contains(password), "{stdout}");
    drop(process);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_database_pool_size_is_configurable() {
    let server = TestServer::start_with(|settings| settings.database_pool_size = Some(3)).await;
    let text = metrics_text(&server).await;
    expect(&text, "wsoauth_db_pool_max_connections", &[], 3.0);
}

#[tokio::test]
async fn sqlite_checkpoints_are_measured() {
    let server = TestServer::start().await;
    let sqlite = server.state().settings.database_url.starts_with("sqlite:");
    // A code exchange writes on SQLite's direct connection; its checkpoint follows within about 25 ms (a pass
    // beside the writes: the log is short; the gated pass and its long log are the storage's unit tests).
    let code = server.code(&all_scopes()).await;
    assert_eq!(server.exchange(&code).await.0, StatusCode::OK);
    let count = "wsoauth_sqlite_checkpoint_seconds_count";
    let mut text = metrics_text(&server).await;
    for _ in 0..400 {
        if !sqlite || sample(&text, count, &[("pass", "passive")]).is_some_and(|n| n >= 1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        text = metrics_text(&server).await;
    }
    if !sqlite {
        assert!(!text.contains("wsoauth_sqlite_checkpoint"), "{text}");
        return;
    }
    let passive = [("pass", "passive")];
    assert!(sample(&text, count, &passive).is_some_and(|n| n >= 1.0), "{text}");
    let sum = sample(&text, "wsoauth_sqlite_checkpoint_seconds_sum", &passive);
    assert!(sum.is_some_and(|s| s > 0.0 && s < 60.0), "{text}");
    let all = sample(&text, "wsoauth_sqlite_checkpoint_seconds_bucket", &[passive[0], ("le", "+Inf")]);
    assert_eq!(all, sample(&text, count, &passive), "{text}");
    assert!(sample(&text, count, &[("pass", "gated")]).is_some(), "{text}");
    assert!(sample(&text, "wsoauth_sqlite_checkpoints_put_off_total", &[]).is_some(), "{text}");
    assert!(text.contains("# TYPE wsoauth_sqlite_checkpoint_seconds histogram"), "{text}");
}
