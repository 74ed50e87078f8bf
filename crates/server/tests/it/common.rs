//! The test harness: a real wsoauth server on 127.0.0.1:0 with a temporary SQLite file (or, with
//! `WSOAUTH_TEST_BACKEND=postgres`, a PostgreSQL schema of its own), a manual clock, cheap
//! Argon2 parameters, one account with an owner and a registered app; and HTTP helpers that walk the pages the
//! way a browser does (cookies kept, redirects not followed).

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::Value;
use wsoauth_domain::ManualClock;
use wsoauth_server::{Running, Settings, admin, spawn};
use wsoauth_storage::Role;

/// The tests' clock starts before the real one, so a key retired by the CLI (on the real clock) is never older than
/// a test token.
pub const START: i64 = 1_700_000_000;
pub const OWNER_EMAIL: &str = "owner@acme.test";
pub const OWNER_PASSWORD: &str = "owner-password";
pub const REDIRECT: &str = "https://client.example/cb";

pub struct TestServer {
    pub running: Running,
    pub clock: Arc<ManualClock>,
    pub base: String,
    pub account_id: i64,
    pub owner_user_id: i64,
    pub client_id: String,
    pub client_secret: String,
    dir: PathBuf,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.running.handle.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A fresh temporary folder for one test's database.
pub fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "wsoauth-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An empty PostgreSQL database (a schema of its own) when the tests are asked to run on PostgreSQL.
pub async fn postgres_database() -> Option<String> {
    if std::env::var("WSOAUTH_TEST_BACKEND").ok()? != "postgres" {
        return None;
    }
    let base = std::env::var("WSOAUTH_TEST_POSTGRES_URL").expect("WSOAUTH_TEST_POSTGRES_URL names the server");
    Some(wsoauth_storage::scratch_postgres(&base, "wsoauth_it").await.expect("a scratch schema"))
}

pub fn test_settings(dir: &std::path::Path) -> Settings {
    Settings {
        listen: "127.0.0.1:0".into(),
        database_url: format!("sqlite://{}", dir.join("wsoauth.db").display()),
        argon2_memory_kib: 8,
        argon2_passes: 1,
        ..Settings::default()
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// Starts a server with settings changed by `tweak`. With `WSOAUTH_TEST_BACKEND=postgres` (and
    /// `WSOAUTH_TEST_POSTGRES_URL`), a server left on the default database gets an empty PostgreSQL schema instead.
    pub async fn start_with(tweak: impl FnOnce(&mut Settings)) -> TestServer {
        let dir = temp_dir();
        let mut settings = test_settings(&dir);
        let default_database = settings.database_url.clone();
        tweak(&mut settings);
        if settings.database_url == default_database
            && let Some(url) = postgres_database().await
        {
            settings.database_url = url;
        }
        let clock = Arc::new(ManualClock::new(START));
        let running = spawn(settings, clock.clone()).await.expect("server starts");
        let state = running.state.clone();
        let account = admin::create_account(&state, "Acme", Some("acme")).await.unwrap();
        let owner_user_id = admin::add_member(
            &state,
            account.id,
            OWNER_EMAIL,
            "Olga",
            "Owner",
            Role::Owner,
            Some(OWNER_PASSWORD.into()),
        )
        .await
        .unwrap();
        let all = wsoauth_types::ScopeSet::all().to_space_separated();
        let fields = admin::app_fields("Client App", [REDIRECT, "http://127.0.0.1:9/cb"], &all).unwrap();
        let (app, client_secret) = admin::create_app(&state, account.id, &fields).await.unwrap();
        TestServer {
            base: running.base_url.clone(),
            running,
            clock,
            account_id: account.id,
            owner_user_id,
            client_id: app.client_id,
            client_secret,
            dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn state(&self) -> &wsoauth_server::Shared {
        &self.running.state
    }

    /// Registers another app in the test account; returns (client_id, client_secret).
    pub async fn app(&self, name: &str, redirects: &[&str], scopes: &str) -> (String, String) {
        let fields = admin::app_fields(name, redirects.iter().copied(), scopes).unwrap();
        let (app, secret) = admin::create_app(self.state(), self.account_id, &fields).await.unwrap();
        (app.client_id, secret)
    }

    /// Adds a member to an account; returns the user id.
    pub async fn member(&self, account_id: i64, email: &str, password: &str, role: Role) -> i64 {
        admin::add_member(self.state(), account_id, email, "Test", "Person", role, Some(password.into())).await.unwrap()
    }

    /// The query of an authorization request for the test app.
    pub fn authorize_query(&self, scope: &str, state: &str) -> String {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &self.client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("state", state)
            .append_pair("scope", scope)
            .finish()
    }

    /// Signs the owner in, approves `scope` and returns the code.
    pub async fn code(&self, scope: &str) -> String {
        let browser = Browser::new();
        browser.login(self, OWNER_EMAIL, OWNER_PASSWORD).await;
        let location = browser.approve(self, &self.authorize_query(scope, "st")).await;
        query_param(&location, "code").expect("redirect carries a code")
    }

    /// Exchanges a code with credentials in the form body; returns status and JSON.
    pub async fn exchange(&self, code: &str) -> (StatusCode, Value) {
        let response = plain()
            .post(self.url("/oauth2/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("client_id", &self.client_id),
                ("client_secret", &self.client_secret),
            ])
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }

    /// A full flow: code, then tokens. Panics unless the exchange succeeds.
    pub async fn tokens(&self, scope: &str) -> Value {
        let code = self.code(scope).await;
        let (status, body) = self.exchange(&code).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Refreshes at `path` with credentials in the form body.
    pub async fn refresh(&self, path: &str, refresh_token: &str) -> (StatusCode, Value) {
        let response = plain()
            .post(self.url(path))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", &self.client_id),
                ("client_secret", &self.client_secret),
            ])
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }

    /// Calls an API action with a Bearer token; returns status and JSON.
    pub async fn api(&self, token: &str, action: &str) -> (StatusCode, Value) {
        let response =
            plain().get(self.url(&format!("/api/oauth2?action={action}"))).bearer_auth(token).send().await.unwrap();
        (response.status(), response.json().await.unwrap())
    }
}

/// Every scope, space-separated.
pub fn all_scopes() -> String {
    wsoauth_types::ScopeSet::all().to_space_separated()
}

impl TestServer {
    /// An access token of the owner with every scope.
    pub async fn owner_token(&self) -> String {
        self.tokens(&all_scopes()).await["access_token"].as_str().unwrap().to_owned()
    }

    /// An access token with every scope for another member (signs in as them; they must have one account, or
    /// `user` picks the membership).
    pub async fn token_for(&self, email: &str, password: &str, user: Option<i64>) -> String {
        let browser = Browser::new();
        browser.login(self, email, password).await;
        let mut query = self.authorize_query(&all_scopes(), "st");
        if let Some(user) = user {
            query.push_str(&format!("&user={user}"));
        }
        let location = browser.approve(self, &query).await;
        let code = query_param(&location, "code").expect("code");
        let (status, body) = self.exchange(&code).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Calls an API action with form parameters (POST, Bearer); asserts HTTP 200 and returns the envelope.
    pub async fn call(&self, token: &str, action: &str, params: &[(&str, &str)]) -> Value {
        let mut form: Vec<(&str, &str)> = vec![("action", action)];
        form.extend_from_slice(params);
        let response = plain().post(self.url("/api/oauth2")).bearer_auth(token).form(&form).send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{action}: {body}");
        body
    }

    /// Like `call`, and asserts `"status":"ok"`; returns `data` (or the whole body when there is none).
    pub async fn ok(&self, token: &str, action: &str, params: &[(&str, &str)]) -> Value {
        let body = self.call(token, action, params).await;
        assert_eq!(body["status"], "ok", "{action} {params:?}: {body}");
        if body.get("data").is_some() { body["data"].clone() } else { body }
    }

    /// Like `call`, and asserts an error envelope with `status_code`; returns the body.
    pub async fn fails(&self, token: &str, action: &str, params: &[(&str, &str)], status_code: u32) -> Value {
        let body = self.call(token, action, params).await;
        assert_eq!(body["status"], "error", "{action} {params:?}: {body}");
        assert_eq!(body["status_code"], status_code, "{action} {params:?}: {body}");
        body
    }
}

/// Runs a `wsoauth` command to its end without blocking this test's runtime. The servers a test starts run on
/// that runtime (one thread under `#[tokio::test]`): blocked there, a server task that had just begun a write
/// (the purge at start-up, say) would keep SQLite's write lock for as long as the command runs, and the
/// command's own writes would time out waiting for it.
pub async fn run_command(mut command: std::process::Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || command.output().expect("the command starts")).await.unwrap()
}

/// A client that follows no redirects and keeps no cookies.
pub fn plain() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).build().unwrap()
}

/// A cookie-keeping client that follows no redirects: a browser without JavaScript.
pub struct Browser {
    pub client: reqwest::Client,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Browser {
        Browser { client: reqwest::Client::builder().redirect(Policy::none()).cookie_store(true).build().unwrap() }
    }

    pub async fn get(&self, url: &str) -> (StatusCode, Option<String>, String) {
        let response = self.client.get(url).send().await.unwrap();
        split(response).await
    }

    /// Posts a form; returns status, Location and body.
    pub async fn post(&self, url: &str, form: &[(String, String)]) -> (StatusCode, Option<String>, String) {
        let response = self.client.post(url).form(form).send().await.unwrap();
        split(response).await
    }

    /// Signs in through the login page; panics unless it succeeds.
    pub async fn login(&self, server: &TestServer, email: &str, password: &str) {
        self.login_at(&server.base, email, password).await;
    }

    /// Signs in through the login page of the server at `base` (any server, a `wsoauth` process too).
    pub async fn login_at(&self, base: &str, email: &str, password: &str) {
        let (status, location, body) = self.try_login_at(base, email, password, "/").await;
        assert_eq!(status, StatusCode::SEE_OTHER, "sign-in failed: {body}");
        assert_eq!(location.as_deref(), Some("/"));
    }

    pub async fn try_login(
        &self,
        server: &TestServer,
        email: &str,
        password: &str,
        next: &str,
    ) -> (StatusCode, Option<String>, String) {
        self.try_login_at(&server.base, email, password, next).await
    }

    pub async fn try_login_at(
        &self,
        base: &str,
        email: &str,
        password: &str,
        next: &str,
    ) -> (StatusCode, Option<String>, String) {
        let (_, _, page) = self.get(&format!("{base}/login")).await;
        let csrf = hidden_fields(&page).into_iter().find(|(k, _)| k == "csrf_token").unwrap().1;
        let form = [
            ("csrf_token".to_owned(), csrf),
            ("next".to_owned(), next.to_owned()),
            ("email".to_owned(), email.to_owned()),
            ("password".to_owned(), password.to_owned()),
        ];
        self.post(&format!("{base}/login"), &form).await
    }

    /// Opens the consent page for `query` (the person must be signed in and have one account, or `query` must
    /// name `user`), clicks Allow, and returns the Location of the redirect.
    pub async fn approve(&self, server: &TestServer, query: &str) -> String {
        self.decide(server, query, "allow").await
    }

    /// With a remembered consent there is no page to decide on: Allow then returns the redirect at once (Deny
    /// needs `prompt=consent` in the query).
    pub async fn decide(&self, server: &TestServer, query: &str, decision: &str) -> String {
        self.decide_url(&server.url(&format!("/oauth2/authorize?{query}")), decision).await
    }

    /// Allow on the authorization URL `url` (any server); returns the redirect Location.
    pub async fn approve_url(&self, url: &str) -> String {
        self.decide_url(url, "allow").await
    }

    async fn decide_url(&self, url: &str, decision: &str) -> String {
        let (status, location, page) = self.get(url).await;
        if status == StatusCode::SEE_OTHER && decision == "allow" {
            let location = location.expect("redirect");
            if query_param(&location, "code").is_some() {
                return location;
            }
        }
        assert_eq!(status, StatusCode::OK, "consent page: {page}");
        assert!(page.contains(r#"id="allow""#), "not a consent page: {page}");
        let mut form = consent_fields(&page);
        form.push(("decision".into(), decision.into()));
        let (base, _) = url.split_once("/oauth2/authorize").expect("an authorization URL");
        let (status, location, body) = self.post(&format!("{base}/oauth2/authorize"), &form).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
        location.expect("redirect")
    }
}

async fn split(response: reqwest::Response) -> (StatusCode, Option<String>, String) {
    let status = response.status();
    let location = response.headers().get("location").map(|v| v.to_str().unwrap().to_owned());
    (status, location, response.text().await.unwrap())
}

/// Undoes the HTML escaping of attribute values: the named entities askama writes and numeric ones
/// (`&#38;`, `&#x27;`).
pub fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let Some(end) = tail.find(';').filter(|end| *end <= 10) else {
            out.push('&');
            rest = &tail[1..];
            continue;
        };
        let entity = &tail[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Every `<input type="hidden" name=... value=...>` of a page, in order.
pub fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    for piece in html.split(r#"<input type="hidden" name=""#).skip(1) {
        let Some((name, rest)) = piece.split_once('"') else { continue };
        let Some(rest) = rest.strip_prefix(r#" value=""#) else { continue };
        let Some((value, _)) = rest.split_once('"') else { continue };
        fields.push((unescape(name), unescape(value)));
    }
    fields
}

/// The hidden fields of the consent form (the page also has the sign-out form).
pub fn consent_fields(html: &str) -> Vec<(String, String)> {
    let form = html.split(r#"<form method="post" action="/oauth2/authorize">"#).nth(1).expect("consent form");
    hidden_fields(form.split("</form>").next().unwrap())
}

/// A query parameter of a URL.
pub fn query_param(url: &str, key: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
}

/// The keys of a JSON object, sorted.
pub fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> =
        value.as_object().unwrap_or_else(|| panic!("object: {value}")).keys().cloned().collect();
    keys.sort();
    keys
}

/// Key names, sorted, to compare with `keys`.
pub fn sorted(keys: &[&str]) -> Vec<String> {
    let mut keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
    keys.sort();
    keys
}

/// The string `id` of an API object.
pub fn id(value: &Value) -> String {
    value["id"].as_str().unwrap_or_else(|| panic!("string id in {value}")).to_owned()
}
