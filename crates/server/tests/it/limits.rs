//! Brute-force protection over HTTP: failed sign-ins limited per email and per client IP, failed client
//! authentications limited per client_id; 429 with Retry-After; the right password or secret refused while
//! blocked; the block lifting when the window passes on the injected clock; X-Forwarded-For believed only from a
//! trusted proxy.

use reqwest::StatusCode;
use serde_json::Value;
use wsoauth_server::limits::{RateLimit, TrustedProxy};
use wsoauth_storage::Role;

use crate::common::*;

/// What a test looks at in an answer.
struct Reply {
    status: StatusCode,
    retry_after: Option<i64>,
    session: bool,
    cache_control: Option<String>,
    body: String,
}

impl Reply {
    async fn of(response: reqwest::Response) -> Reply {
        let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
        let retry_after = header("retry-after").map(|v| v.parse().expect("Retry-After in seconds"));
        let cache_control = header("cache-control");
        let session =
            response.headers().get_all("set-cookie").iter().any(|c| {
                c.to_str().unwrap().starts_with("wsoauth_session=") && !c.to_str().unwrap().contains("Max-Age=0")
            });
        Reply { status: response.status(), retry_after, session, cache_control, body: response.text().await.unwrap() }
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body))
    }
}

/// Opens the sign-in page and submits it, with `X-Forwarded-For: forwarded` on the submission when given.
async fn login(server: &TestServer, email: &str, password: &str, forwarded: Option<&str>) -> Reply {
    let browser = Browser::new();
    let (_, _, page) = browser.get(&server.url("/login")).await;
    let csrf = hidden_fields(&page).into_iter().find(|(k, _)| k == "csrf_token").expect("csrf field").1;
    let form = [("csrf_token", csrf.as_str()), ("next", "/"), ("email", email), ("password", password)];
    let mut request = browser.client.post(server.url("/login")).form(&form);
    if let Some(forwarded) = forwarded {
        request = request.header("x-forwarded-for", forwarded);
    }
    Reply::of(request.send().await.unwrap()).await
}

fn assert_failed(reply: &Reply, context: &str) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{context}: {}", reply.body);
    assert!(reply.body.contains("Wrong email or password"), "{context}: {}", reply.body);
    assert_eq!(reply.retry_after, None, "{context}");
    assert!(!reply.session, "{context}");
}

/// 429 with `Retry-After: retry_after`, the error on the normal sign-in page with its form, and no session.
fn assert_blocked(reply: &Reply, retry_after: i64, context: &str) {
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "{context}: {}", reply.body);
    assert_eq!(reply.retry_after, Some(retry_after), "{context}");
    assert!(!reply.session, "{context}: a session was started");
    assert!(reply.body.contains("Too many failed sign-in attempts"), "{context}: {}", reply.body);
    assert!(reply.body.contains(r#"<form method="post" action="/login">"#), "{context}: no form: {}", reply.body);
    assert!(hidden_fields(&reply.body).iter().any(|(k, v)| k == "csrf_token" && v.len() >= 32), "{context}");
    assert!(reply.body.contains(r#"id="password""#), "{context}");
}

fn assert_signed_in(reply: &Reply, context: &str) {
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{context}: {}", reply.body);
    assert!(reply.session, "{context}: no session cookie");
}

#[tokio::test]
async fn the_eleventh_wrong_password_for_an_email_is_refused_and_then_even_the_right_one_until_the_window_passes() {
    let server = TestServer::start().await;
    server.member(server.account_id, "ann@acme.test", "ann-password", Role::User).await;
    for i in 1..=10 {
        assert_failed(&login(&server, OWNER_EMAIL, "wrong-password", None).await, &format!("attempt {i}"));
    }
    assert_blocked(&login(&server, OWNER_EMAIL, "wrong-password", None).await, 900, "attempt 11");
    let right = login(&server, OWNER_EMAIL, OWNER_PASSWORD, None).await;
    assert_blocked(&right, 900, "the right password while blocked");
    assert!(right.body.contains("15 minutes"), "{}", right.body);
    // the email is the same whatever its case
    assert_blocked(&login(&server, &OWNER_EMAIL.to_uppercase(), OWNER_PASSWORD, None).await, 900, "upper case");
    // another email from the same address still works (the address has made 10 failures of 50)
    assert_signed_in(&login(&server, "ann@acme.test", "ann-password", None).await, "another email");
    // the block lifts when the first failure leaves the 15-minute window, not before
    server.clock.advance(899);
    assert_blocked(&login(&server, OWNER_EMAIL, OWNER_PASSWORD, None).await, 1, "one second early");
    server.clock.advance(1);
    assert_signed_in(&login(&server, OWNER_EMAIL, OWNER_PASSWORD, None).await, "after the window");
}

#[tokio::test]
async fn small_limits_set_in_the_settings_apply_per_email_and_per_address() {
    let server = TestServer::start_with(|settings| {
        settings.login_attempts_per_email = Some(RateLimit::new(2, 60));
        settings.login_attempts_per_ip = Some(RateLimit::new(4, 300));
    })
    .await;
    server.member(server.account_id, "ann@acme.test", "ann-password", Role::User).await;
    // successful sign-ins count for nothing
    for i in 0..6 {
        assert_signed_in(&login(&server, OWNER_EMAIL, OWNER_PASSWORD, None).await, &format!("success {i}"));
    }
    assert_failed(&login(&server, OWNER_EMAIL, "wrong", None).await, "owner 1");
    server.clock.advance(10);
    assert_failed(&login(&server, OWNER_EMAIL, "wrong", None).await, "owner 2");
    assert_blocked(&login(&server, OWNER_EMAIL, OWNER_PASSWORD, None).await, 50, "owner 3");
    assert_failed(&login(&server, "nobody@acme.test", "wrong", None).await, "unknown email 1");
    assert_failed(&login(&server, "ann@acme.test", "wrong", None).await, "ann 1");
    // the address has failed 4 times: every email is refused now, the right password too
    assert_blocked(&login(&server, "ann@acme.test", "ann-password", None).await, 290, "address limit");
    assert_blocked(&login(&server, "someone@acme.test", "x", None).await, 290, "address limit, another email");
    // the owner's email is free after its 60 s, but the address is not
    server.clock.advance(60);
    assert_blocked(&login(&server, OWNER_EMAIL, OWNER_PASSWORD, None).await, 230, "address still blocked");
    server.clock.advance(230);
    assert_signed_in(&login(&server, OWNER_EMAIL, OWNER_PASSWORD, None).await, "owner after both windows");
    assert_signed_in(&login(&server, "ann@acme.test", "ann-password", None).await, "ann after both windows");
}

#[tokio::test]
async fn limits_can_be_turned_off() {
    let server = TestServer::start_with(|settings| {
        settings.login_attempts_per_email = None;
        settings.login_attempts_per_ip = None;
    })
    .await;
    for i in 0..15 {
        assert_failed(&login(&server, OWNER_EMAIL, "wrong", None).await, &format!("attempt {i}"));
    }
    assert_signed_in(&login(&server, OWNER_EMAIL, OWNER_PASSWORD, None).await, "no limit");
}

#[tokio::test]
async fn a_spoofed_forwarded_for_does_not_escape_the_address_limit_without_a_trusted_proxy() {
    let server = TestServer::start_with(|settings| settings.login_attempts_per_ip = Some(RateLimit::new(3, 600))).await;
    for i in 1..=3 {
        let forwarded = format!("203.0.113.{i}");
        let reply = login(&server, &format!("guess{i}@acme.test"), "wrong", Some(&forwarded)).await;
        assert_failed(&reply, &forwarded);
    }
    let reply = login(&server, OWNER_EMAIL, OWNER_PASSWORD, Some("198.51.100.77")).await;
    assert_blocked(&reply, 600, "a new forwarded address from the same socket");
    assert_blocked(&login(&server, OWNER_EMAIL, OWNER_PASSWORD, None).await, 600, "no header");
}

#[tokio::test]
async fn forwarded_for_from_a_trusted_proxy_gives_each_client_its_own_budget() {
    let server = TestServer::start_with(|settings| {
        settings.login_attempts_per_ip = Some(RateLimit::new(2, 600));
        settings.trusted_proxies = vec!["127.0.0.1".parse::<TrustedProxy>().unwrap()];
    })
    .await;
    let first = Some("203.0.113.1");
    assert_failed(&login(&server, "a@acme.test", "wrong", first).await, "first 1");
    assert_failed(&login(&server, "b@acme.test", "wrong", first).await, "first 2");
    assert_blocked(&login(&server, OWNER_EMAIL, OWNER_PASSWORD, first).await, 600, "first over its limit");
    // an address forged on the left is not believed: the right-most untrusted one is the client
    let forged = Some("198.51.100.5, 203.0.113.1");
    assert_blocked(&login(&server, OWNER_EMAIL, OWNER_PASSWORD, forged).await, 600, "forged left entry");
    // another client behind the proxy has its own budget
    let second = Some("203.0.113.2");
    assert_failed(&login(&server, "c@acme.test", "wrong", second).await, "second 1");
    assert_signed_in(&login(&server, OWNER_EMAIL, OWNER_PASSWORD, second).await, "second signs in");
    // a trusted hop on the right is skipped
    let via = Some("203.0.113.2, 127.0.0.1");
    assert_failed(&login(&server, "d@acme.test", "wrong", via).await, "second 2, through two proxies");
    assert_blocked(&login(&server, OWNER_EMAIL, OWNER_PASSWORD, second).await, 600, "second over its limit");
    // the proxy's own requests (no header) are the proxy's budget
    assert_signed_in(&login(&server, OWNER_EMAIL, OWNER_PASSWORD, None).await, "the proxy itself");
}

/// A client-authenticated POST with the form `params`; `basic` sends the credentials as HTTP Basic.
async fn post_client(server: &TestServer, path: &str, params: &[(&str, &str)], basic: Option<(&str, &str)>) -> Reply {
    let mut request = plain().post(server.url(path)).form(params);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    Reply::of(request.send().await.unwrap()).await
}

async fn exchange_as(server: &TestServer, code: &str, secret: &str) -> Reply {
    let params = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("client_id", server.client_id.as_str()),
        ("client_secret", secret),
    ];
    post_client(server, "/oauth2/token", &params, None).await
}

fn assert_invalid_client(reply: &Reply, context: &str) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{context}: {}", reply.body);
    assert_eq!(reply.json()["error"], "invalid_client", "{context}");
    assert_eq!(reply.retry_after, None, "{context}");
}

fn assert_throttled(reply: &Reply, retry_after: i64, context: &str) {
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "{context}: {}", reply.body);
    assert_eq!(reply.retry_after, Some(retry_after), "{context}");
    assert_eq!(reply.cache_control.as_deref(), Some("no-store"), "{context}");
    let body = reply.json();
    assert_eq!(body["error"], "temporarily_unavailable", "{context}: {body}");
    let description = body["error_description"].as_str().unwrap_or_else(|| panic!("{context}: {body}"));
    assert!(description.contains("Too many failed client authentications"), "{context}: {body}");
    assert_eq!(body["errorDescription"], description, "{context}: {body}");
}

#[tokio::test]
async fn client_authentication_failures_are_limited_per_client_id_and_the_right_secret_waits_too() {
    let server = TestServer::start_with(|settings| settings.client_auth_failures = Some(RateLimit::new(3, 300))).await;
    let (other_id, other_secret) = server.app("Other", &[REDIRECT], "users_read").await;
    let code = server.code("users_read").await;
    // successes count for nothing
    for _ in 0..5 {
        let params = [("token", "unknown"), ("client_id", &server.client_id), ("client_secret", &server.client_secret)];
        let reply = post_client(&server, "/oauth2/introspect", &params, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    for i in 1..=3 {
        assert_invalid_client(&exchange_as(&server, &code, "wrong-secret").await, &format!("failure {i}"));
        server.clock.advance(10);
    }
    assert_throttled(&exchange_as(&server, &code, "wrong-secret").await, 270, "failure 4");
    // the right secret is refused while blocked (and the code is not used up)
    assert_throttled(&exchange_as(&server, &code, &server.client_secret).await, 270, "right secret");
    let basic = Some((server.client_id.as_str(), server.client_secret.as_str()));
    let refresh = [("grant_type", "refresh_token"), ("refresh_token", "x")];
    assert_throttled(&post_client(&server, "/oauth2/refresh", &refresh, basic).await, 270, "refresh, Basic");
    let token = [("token", "x")];
    assert_throttled(&post_client(&server, "/oauth2/revoke", &token, basic).await, 270, "revoke");
    assert_throttled(&post_client(&server, "/oauth2/introspect", &token, basic).await, 270, "introspect");
    // another client is not affected
    let other = [("token", "x"), ("client_id", other_id.as_str()), ("client_secret", "wrong")];
    assert_invalid_client(&post_client(&server, "/oauth2/introspect", &other, None).await, "other client, wrong");
    let other = [("token", "x"), ("client_id", other_id.as_str()), ("client_secret", other_secret.as_str())];
    assert_eq!(post_client(&server, "/oauth2/introspect", &other, None).await.status, StatusCode::OK);
    // the first failure leaves the window 300 s after it: one more try, then blocked again
    server.clock.advance(269);
    assert_throttled(&exchange_as(&server, &code, &server.client_secret).await, 1, "one second early");
    server.clock.advance(1);
    let reply = exchange_as(&server, &code, &server.client_secret).await;
    assert_eq!(reply.status, StatusCode::OK, "after the window: {}", reply.body);
    assert!(reply.json()["access_token"].is_string());
}

#[tokio::test]
async fn the_default_client_limit_is_twenty_failures_in_fifteen_minutes() {
    let server = TestServer::start().await;
    let basic = Some((server.client_id.as_str(), "wrong"));
    let token = [("token", "x")];
    for i in 1..=20 {
        assert_invalid_client(&post_client(&server, "/oauth2/introspect", &token, basic).await, &format!("{i}"));
    }
    assert_throttled(&post_client(&server, "/oauth2/introspect", &token, basic).await, 900, "21");
    // unknown client ids are limited the same way (there is nothing to tell them apart by)
    let unknown = Some(("no-such-client", "x"));
    for i in 1..=20 {
        assert_invalid_client(&post_client(&server, "/oauth2/introspect", &token, unknown).await, &format!("{i}"));
    }
    assert_throttled(&post_client(&server, "/oauth2/introspect", &token, unknown).await, 900, "unknown 21");
    server.clock.advance(900);
    let right = Some((server.client_id.as_str(), server.client_secret.as_str()));
    assert_eq!(post_client(&server, "/oauth2/introspect", &token, right).await.status, StatusCode::OK);
}

#[test]
fn help_lists_the_limit_settings() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wsoauth")).arg("--help").output().unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for needle in [
        "--login-attempts-per-email",
        "WSOAUTH_LOGIN_ATTEMPTS_PER_EMAIL",
        "10/15m",
        "--login-attempts-per-ip",
        "WSOAUTH_LOGIN_ATTEMPTS_PER_IP",
        "50/15m",
        "--client-auth-failures",
        "WSOAUTH_CLIENT_AUTH_FAILURES",
        "20/15m",
        "--trusted-proxy",
        "WSOAUTH_TRUSTED_PROXIES",
    ] {
        assert!(help.contains(needle), "{needle} missing from:\n{help}");
    }
}

#[test]
fn the_environment_sets_the_limits_and_bad_values_are_refused() {
    let dir = temp_dir();
    let run = |env: &[(&str, &str)]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_wsoauth"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("WSOAUTH_") {
                command.env_remove(&key);
            }
        }
        let database = format!("sqlite://{}", dir.join("env.db").display());
        let output = command
            .args(["account", "list", "--json"])
            .env("WSOAUTH_DATABASE_URL", &database)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
    };
    let good = [
        ("WSOAUTH_LOGIN_ATTEMPTS_PER_EMAIL", "5/10m"),
        ("WSOAUTH_LOGIN_ATTEMPTS_PER_IP", "off"),
        ("WSOAUTH_CLIENT_AUTH_FAILURES", "100/1h"),
        ("WSOAUTH_TRUSTED_PROXIES", "10.0.0.1,10.0.1.0/24"),
    ];
    let (ok, stderr) = run(&good);
    assert!(ok, "{stderr}");
    for (key, value, says) in [
        ("WSOAUTH_LOGIN_ATTEMPTS_PER_EMAIL", "0/10m", "login attempts per email"),
        ("WSOAUTH_LOGIN_ATTEMPTS_PER_IP", "50", "login attempts per IP"),
        ("WSOAUTH_CLIENT_AUTH_FAILURES", "20/forever", "client authentication failures"),
        ("WSOAUTH_TRUSTED_PROXIES", "10.0.0.1,proxy.internal", "proxy.internal"),
    ] {
        let (ok, stderr) = run(&[(key, value)]);
        assert!(!ok, "{key}={value} was accepted");
        assert!(stderr.contains(says), "{key}={value}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
