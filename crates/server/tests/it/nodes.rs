//! Several nodes: two `wsoauth serve` processes (the real binary, each on its own port) on one PostgreSQL schema
//! behave as one server. Both are started at the same moment on an empty schema, so every test also races the
//! first start: the migrations, the digest key, the first signing key and the bootstrap account. Both nodes have
//! the same public URL (`WSOAUTH_PUBLIC_URL`, the token issuer), as behind one load balancer; the tests talk to
//! each node's own port. Needs `WSOAUTH_TEST_POSTGRES_URL`; without it each test says so and passes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use wsoauth_storage::{Role, Store};

use crate::common::{Browser, REDIRECT, hidden_fields, plain, query_param, temp_dir};

/// Both nodes' public URL: the issuer (`iss`) of every token, the same on every node.
const PUBLIC_URL: &str = "http://auth.nodes.test";
const OWNER_EMAIL: &str = "owner@nodes.test";
const OWNER_PASSWORD: &str = "nodes-owner-password";
/// How long a node may take to answer `/readyz` after it was started (a debug build migrating an empty schema).
const START_BOUND: Duration = Duration::from_secs(60);
/// How long a grant change made on one node may take to show on the other: the grant-state cache
/// (`--token-cache`, 2 s by default) drops the entry when the change's `NOTIFY` arrives, normally before the next
/// request (every run so far: refused at the first request); its lifetime bounds a late notification.
const SEEN_BOUND: Duration = Duration::from_secs(2);

/// A `wsoauth serve` process, killed when dropped.
struct Node {
    name: &'static str,
    base: String,
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binary with a clean environment: none of the caller's `WSOAUTH_*` settings, this database.
fn wsoauth(database_url: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wsoauth"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("WSOAUTH_") {
            command.env_remove(name);
        }
    }
    command.env("WSOAUTH_DATABASE_URL", database_url).env("WSOAUTH_PUBLIC_URL", PUBLIC_URL);
    command
}

/// Runs an admin command against the database; returns its standard output.
fn cli(database_url: &str, args: &[&str]) -> String {
    let output = wsoauth(database_url).args(args).stdin(Stdio::null()).output().unwrap();
    assert!(output.status.success(), "wsoauth {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// Ports nobody listens on, distinct (all bound at once before any is let go).
fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<_> = (0..N).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    std::array::from_fn(|i| listeners[i].local_addr().unwrap().port())
}

impl Node {
    fn spawn(name: &'static str, port: u16, database_url: &str, dir: &Path) -> Node {
        let stdout = dir.join(format!("{name}.out"));
        let stderr = dir.join(format!("{name}.err"));
        let child = wsoauth(database_url)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .current_dir(dir)
            .env("WSOAUTH_BOOTSTRAP_EMAIL", OWNER_EMAIL)
            .env("WSOAUTH_BOOTSTRAP_PASSWORD", OWNER_PASSWORD)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        Node { name, base: format!("http://127.0.0.1:{port}"), child, stdout, stderr }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// Waits (at most `START_BOUND`) until `/readyz` answers 200; panics with the node's log if it stopped.
    async fn ready(&mut self) {
        let started = Instant::now();
        while started.elapsed() < START_BOUND {
            if let Some(status) = self.child.try_wait().unwrap() {
                let log = std::fs::read_to_string(&self.stderr).unwrap_or_default();
                panic!("node {} stopped ({status}) during start-up:\n{}{log}", self.name, self.output());
            }
            if let Ok(response) = plain().get(self.url("/readyz")).send().await
                && response.status() == StatusCode::OK
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("node {} was not ready within {START_BOUND:?}", self.name);
    }
}

/// Two nodes on one fresh PostgreSQL schema, started at the same moment.
struct Nodes {
    a: Node,
    b: Node,
    database_url: String,
    dir: PathBuf,
}

impl Drop for Nodes {
    fn drop(&mut self) {
        let _ = self.a.child.kill();
        let _ = self.b.child.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Nodes {
    /// `None` (after a note) when no PostgreSQL server is named.
    async fn start() -> Option<Nodes> {
        let Ok(base) = std::env::var("WSOAUTH_TEST_POSTGRES_URL") else {
            eprintln!("WSOAUTH_TEST_POSTGRES_URL is not set: the several-nodes test is skipped");
            return None;
        };
        let database_url = wsoauth_storage::scratch_postgres(&base, "wsoauth_nodes").await.unwrap();
        let dir = temp_dir();
        let [port_a, port_b] = free_ports();
        // both before either is waited for: their first starts on the empty schema overlap
        let a = Node::spawn("a", port_a, &database_url, &dir);
        let b = Node::spawn("b", port_b, &database_url, &dir);
        let mut nodes = Nodes { a, b, database_url, dir };
        nodes.a.ready().await;
        nodes.b.ready().await;
        Some(nodes)
    }

    /// Registers a confidential app with the admin command line (a third process on the database).
    fn app(&self, name: &str) -> Client {
        let made = cli(&self.database_url, &["app", "create", "--name", name, "--redirect-uri", REDIRECT, "--json"]);
        let made: Value = serde_json::from_str(made.trim()).unwrap();
        Client {
            id: made["client_id"].as_str().unwrap().into(),
            secret: made["client_secret"].as_str().unwrap().into(),
        }
    }
}

#[derive(Clone)]
struct Client {
    id: String,
    secret: String,
}

fn authorize_url(node: &Node, client: &Client, scope: &str) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &client.id)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("state", "st")
        .append_pair("scope", scope)
        .finish();
    node.url(&format!("/oauth2/authorize?{query}"))
}

/// Consent on `node` with a signed-in browser; returns the code.
async fn code(browser: &Browser, node: &Node, client: &Client) -> String {
    let location = browser.approve_url(&authorize_url(node, client, "users_read")).await;
    assert!(location.starts_with(REDIRECT), "{location}");
    assert_eq!(query_param(&location, "iss").as_deref(), Some(PUBLIC_URL), "{location}");
    query_param(&location, "code").unwrap_or_else(|| panic!("no code in {location}"))
}

async fn post_token(node: &Node, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = plain().post(node.url("/oauth2/token")).form(form).send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

async fn exchange(node: &Node, client: &Client, code: &str) -> (StatusCode, Value) {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("client_id", &client.id),
        ("client_secret", &client.secret),
    ];
    post_token(node, &form).await
}

async fn refresh(node: &Node, client: &Client, refresh_token: &str) -> (StatusCode, Value) {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", &client.id),
        ("client_secret", &client.secret),
    ];
    post_token(node, &form).await
}

/// Signs the owner in on `node` and runs a code flow there; returns the token response.
async fn tokens(node: &Node, client: &Client) -> Value {
    let browser = Browser::new();
    browser.login_at(&node.base, OWNER_EMAIL, OWNER_PASSWORD).await;
    let code = code(&browser, node, client).await;
    let (status, body) = exchange(node, client, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The status of `GET /api/oauth2?action=me` with `token` on `node`.
async fn me(node: &Node, token: &str) -> StatusCode {
    plain().get(node.url("/api/oauth2?action=me")).bearer_auth(token).send().await.unwrap().status()
}

fn s(value: &Value, key: &str) -> String {
    value[key].as_str().unwrap_or_else(|| panic!("no {key} in {value}")).to_owned()
}

/// A JWT's header or claims (`part` 0 or 1).
fn jwt_part(token: &str, part: usize) -> Value {
    use base64::Engine;
    let segment = token.split('.').nth(part).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
}

fn kid_of(token: &str) -> String {
    s(&jwt_part(token, 0), "kid")
}

async fn jwks_kids(node: &Node) -> Vec<String> {
    let jwks: Value = plain().get(node.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let mut kids: Vec<String> = jwks["keys"].as_array().unwrap().iter().map(|key| s(key, "kid")).collect();
    kids.sort();
    kids
}

/// Asks `check` again (every 50 ms) until it holds, for at most `bound`; returns how many times it was asked, or
/// `None` if it never held.
async fn within<F, Fut>(bound: Duration, mut check: F) -> Option<u32>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    let mut tries = 0;
    loop {
        tries += 1;
        if check().await {
            return Some(tries);
        }
        if started.elapsed() >= bound {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `token` is refused on `node` within `SEEN_BOUND`; says how many requests that took.
async fn refused_soon(node: &Node, token: &str, what: &str) {
    let tries = within(SEEN_BOUND, || async move { me(node, token).await == StatusCode::UNAUTHORIZED }).await;
    let tries = tries.unwrap_or_else(|| panic!("{what} still accepted on node {} after {SEEN_BOUND:?}", node.name));
    eprintln!("{what}: refused on node {} at request {tries}", node.name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_started_together_make_one_account_and_one_key() {
    // a few rounds: the start-up races are narrow
    for _ in 0..3 {
        let Some(nodes) = Nodes::start().await else { return };
        for node in [&nodes.a, &nodes.b] {
            let ready = plain().get(node.url("/readyz")).send().await.unwrap();
            assert_eq!(ready.status(), StatusCode::OK, "node {}", node.name);
        }
        // one node bootstrapped and said so; the other found the account there
        let said = [&nodes.a, &nodes.b].iter().filter(|node| node.output().contains("Created an account")).count();
        assert_eq!(said, 1, "a: {}\nb: {}", nodes.a.output(), nodes.b.output());
        let store = Store::open(&nodes.database_url).await.unwrap();
        let accounts = store.accounts().await.unwrap();
        assert_eq!(accounts.len(), 1, "{accounts:?}");
        let members = store.account_members(accounts[0].id).await.unwrap();
        assert_eq!(members.len(), 1);
        assert_eq!((members[0].role, members[0].person.email.as_str()), (Role::Owner, OWNER_EMAIL));
        let keys = store.signing_keys().await.unwrap();
        assert_eq!(keys.len(), 1, "two first signing keys");
        assert!(keys[0].retired_at.is_none());
        store.close().await;
        // both sign with it and publish it; the owner signs in on either node
        for node in [&nodes.a, &nodes.b] {
            assert_eq!(jwks_kids(node).await, vec![keys[0].kid.clone()], "node {}", node.name);
            Browser::new().login_at(&node.base, OWNER_EMAIL, OWNER_PASSWORD).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_issued_on_a_is_exchanged_on_b() {
    let Some(nodes) = Nodes::start().await else { return };
    let (a, b) = (&nodes.a, &nodes.b);
    let client = nodes.app("Nodes Client");
    let browser = Browser::new();
    browser.login_at(&a.base, OWNER_EMAIL, OWNER_PASSWORD).await;
    let code = code(&browser, a, &client).await;
    let (status, body) = exchange(b, &client, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let access = s(&body, "access_token");
    assert_eq!(jwt_part(&access, 1)["iss"], PUBLIC_URL);
    assert_eq!(me(a, &access).await, StatusCode::OK);
    assert_eq!(me(b, &access).await, StatusCode::OK);
    // the code is spent for both nodes: presented again on A it is a replay, which ends what it issued, on B too
    let (status, body) = exchange(a, &client, &code).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
    refused_soon(b, &access, "the access token of a replayed code").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_on_a_ends_the_old_pair_on_b() {
    let Some(nodes) = Nodes::start().await else { return };
    let (a, b) = (&nodes.a, &nodes.b);
    let client = nodes.app("Nodes Client");
    let first = tokens(a, &client).await;
    let (old_access, old_refresh) = (s(&first, "access_token"), s(&first, "refresh_token"));
    // B has checked the old access token once (so a cache on B, if any, would know it)
    assert_eq!(me(b, &old_access).await, StatusCode::OK);

    let (status, second) = refresh(a, &client, &old_refresh).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let (new_access, new_refresh) = (s(&second, "access_token"), s(&second, "refresh_token"));
    assert_ne!(new_refresh, old_refresh);
    refused_soon(b, &old_access, "the access token of the previous generation").await;
    assert_eq!(me(b, &new_access).await, StatusCode::OK);

    // The old refresh token on B: refused. (Within the reuse grace window, while the new pair is unused, it would
    // get the new pair again; the new access token was just used on B, so this is a replay, which revokes the
    // whole grant, on both nodes.)
    let (status, body) = refresh(b, &client, &old_refresh).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
    refused_soon(a, &new_access, "the new access token after a replay on the other node").await;
    let (status, body) = refresh(a, &client, &new_refresh).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
}

/// The register form of the account on the API settings page.
fn register_form(page: &str) -> Vec<(String, String)> {
    let form = page
        .split("<form ")
        .find(|form| form.contains(r#"class="new-app""#))
        .and_then(|form| form.split("</form>").next())
        .unwrap_or_else(|| panic!("no register form: {page}"));
    hidden_fields(form)
}

/// The text of the element with `id` on a page.
fn element(page: &str, id: &str) -> String {
    let start = page.find(&format!(r#"id="{id}">"#)).unwrap_or_else(|| panic!("no #{id}: {page}")) + id.len() + 6;
    page[start..].split('<').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_registered_on_a_works_on_b() {
    let Some(nodes) = Nodes::start().await else { return };
    let (a, b) = (&nodes.a, &nodes.b);
    let browser = Browser::new();
    browser.login_at(&a.base, OWNER_EMAIL, OWNER_PASSWORD).await;
    let (status, _, settings) = browser.get(&a.url("/settings/api")).await;
    assert_eq!(status, StatusCode::OK, "{settings}");
    let mut form = register_form(&settings);
    for (name, value) in [("name", "Made on A"), ("redirect_uris", REDIRECT), ("scopes", "users_read")] {
        form.push((name.into(), value.into()));
    }
    let (status, _, created) = browser.post(&a.url("/settings/api/apps"), &form).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let client = Client { id: element(&created, "client-id"), secret: element(&created, "client-secret") };

    // consent on B: the session started on A is honoured there (one browser, one public host)
    let code = code(&browser, b, &client).await;
    let wrong = Client { secret: format!("{}x", client.secret), ..client.clone() };
    let (status, body) = exchange(b, &wrong, &code).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")), "{body}");
    let (status, body) = exchange(b, &client, &code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "users_read");
    let access = s(&body, "access_token");
    assert_eq!(me(b, &access).await, StatusCode::OK);
    assert_eq!(me(a, &access).await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotated_by_the_cli_signs_on_both_nodes() {
    let Some(nodes) = Nodes::start().await else { return };
    let (a, b) = (&nodes.a, &nodes.b);
    let client = nodes.app("Nodes Client");
    let kept = tokens(a, &client).await;
    let old_access = s(&kept, "access_token");
    let old_kid = kid_of(&old_access);
    let refreshed = tokens(b, &client).await;
    assert_eq!(kid_of(&s(&refreshed, "access_token")), old_kid);

    let rotated: Value = serde_json::from_str(cli(&nodes.database_url, &["keys", "rotate"]).trim()).unwrap();
    let new_kid = s(&rotated, "kid");
    assert_ne!(new_kid, old_kid);

    // Nothing tells the nodes: each reads the keys on its minute tick (when they are 30 s old), or at once when a
    // token with a key id it does not know arrives (at most every 5 s). A request with the new key id and no valid
    // signature is enough to make A look (it is refused all the same).
    let header = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        format!(r#"{{"alg":"RS256","typ":"JWT","kid":"{new_kid}"}}"#),
    );
    let probe = format!("{header}.e30.c2lnbmF0dXJl");
    let mut both = vec![old_kid.clone(), new_kid.clone()];
    both.sort();
    let (probe, expected) = (probe.as_str(), &both);
    let tries = within(Duration::from_secs(15), || async move {
        assert_eq!(me(a, probe).await, StatusCode::UNAUTHORIZED);
        jwks_kids(a).await == *expected
    })
    .await
    .expect("A reads the keys again on an unknown key id");
    eprintln!("A read the new key at probe {tries}");

    // A signs with the new key; B learns it from A's token (same rule) and then signs with it too
    let (status, on_a) = refresh(a, &client, &s(&refreshed, "refresh_token")).await;
    assert_eq!(status, StatusCode::OK, "{on_a}");
    let signed_by_a = s(&on_a, "access_token");
    assert_eq!(kid_of(&signed_by_a), new_kid);
    let token = signed_by_a.as_str();
    let tries = within(Duration::from_secs(15), || async move { me(b, token).await == StatusCode::OK })
        .await
        .expect("B accepts a token signed with the new key");
    eprintln!("B accepted the new key at request {tries}");
    assert_eq!(jwks_kids(b).await, both);
    let (status, on_b) = refresh(b, &client, &s(&on_a, "refresh_token")).await;
    assert_eq!(status, StatusCode::OK, "{on_b}");
    let signed_by_b = s(&on_b, "access_token");
    assert_eq!(kid_of(&signed_by_b), new_kid);

    // tokens of either key verify on both nodes
    for node in [a, b] {
        assert_eq!(me(node, &signed_by_b).await, StatusCode::OK, "node {}", node.name);
        assert_eq!(me(node, &old_access).await, StatusCode::OK, "node {}", node.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_over_both_nodes_mint_one_pair() {
    let Some(nodes) = Nodes::start().await else { return };
    let nodes = Arc::new(nodes);
    let client = nodes.app("Nodes Client");
    let first = tokens(&nodes.a, &client).await;
    let old_refresh = s(&first, "refresh_token");

    // 16 refreshes of one token, every other one on B, let go together
    let gate = Arc::new(tokio::sync::Barrier::new(16));
    let requests: Vec<_> = (0..16)
        .map(|i| {
            let (nodes, client, token, gate) = (nodes.clone(), client.clone(), old_refresh.clone(), gate.clone());
            tokio::spawn(async move {
                let node = if i % 2 == 0 { &nodes.a } else { &nodes.b };
                gate.wait().await;
                refresh(node, &client, &token).await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for request in requests {
        answers.push(request.await.unwrap());
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut refused = 0;
    for (status, body) in &answers {
        match *status {
            StatusCode::OK => pairs.push((s(body, "access_token"), s(body, "refresh_token"))),
            StatusCode::BAD_REQUEST => {
                assert_eq!(body["error"], "invalid_grant", "{body}");
                refused += 1;
            }
            other => panic!("{other}: {body}"),
        }
    }
    eprintln!("16 concurrent refreshes over two nodes: {} answered the new pair, {refused} refused", pairs.len());
    assert!(!pairs.is_empty());
    pairs.sort();
    pairs.dedup();
    assert_eq!(pairs.len(), 1, "more than one new pair: {pairs:?}");
    let (access, refresh_token) = pairs.remove(0);
    assert_ne!(refresh_token, old_refresh);

    // the grant goes on with exactly that pair, on either node
    assert_eq!(me(&nodes.a, &access).await, StatusCode::OK);
    assert_eq!(me(&nodes.b, &access).await, StatusCode::OK);
    let (status, next) = refresh(&nodes.b, &client, &refresh_token).await;
    assert_eq!(status, StatusCode::OK, "{next}");
    assert_eq!(me(&nodes.a, &s(&next, "access_token")).await, StatusCode::OK);
}
