//! The `wsoauth` binary itself: help, the admin commands, configuration precedence and `serve` start-up
//! (bootstrap, database creation, lifetimes), each run as a real process with its own temporary folder.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_wsoauth");

/// Every variable the binary reads; removed from each child (plus any other `WSOAUTH_*` of this process).
const KNOWN_VARS: &[&str] = &[
    "WSOAUTH_CONFIG",
    "WSOAUTH_LISTEN",
    "WSOAUTH_PUBLIC_URL",
    "WSOAUTH_ACCOUNT_URL_TEMPLATE",
    "WSOAUTH_DATABASE_URL",
    "WSOAUTH_CODE_TTL",
    "WSOAUTH_ACCESS_TOKEN_TTL",
    "WSOAUTH_REFRESH_TOKEN_TTL",
    "WSOAUTH_SESSION_TTL",
    "WSOAUTH_BOOTSTRAP_EMAIL",
    "WSOAUTH_BOOTSTRAP_PASSWORD",
    "WSOAUTH_LOG",
];

/// One test's temporary folder, removed at the end.
struct Sandbox {
    dir: PathBuf,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What a finished command left.
#[derive(Debug)]
struct Out {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Out {
    /// Asserts success; returns stdout.
    #[track_caller]
    fn ok(&self) -> &str {
        assert!(
            self.status.success(),
            "expected success, got {:?}\nstdout: {}\nstderr: {}",
            self.status,
            self.stdout,
            self.stderr
        );
        &self.stdout
    }

    /// Asserts a non-zero exit with `needle` (case-insensitive) on stderr.
    #[track_caller]
    fn fails_with(&self, needle: &str) {
        assert!(!self.status.success(), "expected failure\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        assert!(self.status.code().is_some_and(|c| c != 0), "not a normal non-zero exit: {:?}", self.status);
        assert!(
            self.stderr.to_lowercase().contains(&needle.to_lowercase()),
            "stderr lacks {needle:?}: {}",
            self.stderr
        );
    }

    /// stdout as one JSON value.
    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_str(self.ok().trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }

    /// stdout as one JSON value per line.
    #[track_caller]
    fn json_lines(&self) -> Vec<Value> {
        self.ok()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }
}

impl Sandbox {
    fn new() -> Sandbox {
        Sandbox { dir: temp_dir() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The database URL of a file in the folder.
    fn db(&self, name: &str) -> String {
        format!("sqlite://{}", self.path(name).display())
    }

    /// The default database of the test.
    fn x(&self) -> String {
        self.db("x.db")
    }

    /// The binary with a clean environment, run in the test folder.
    fn command(&self) -> Command {
        let mut command = Command::new(BIN);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("WSOAUTH_") {
                command.env_remove(&key);
            }
        }
        for key in KNOWN_VARS {
            command.env_remove(key);
        }
        command.current_dir(&self.dir);
        command
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Runs `args` with extra environment and standard input (`None`: empty).
    fn run_full(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Out {
        let mut command = self.command();
        command.args(args).envs(env.iter().copied());
        run(command, stdin)
    }

    /// Runs `args` against the test database `x.db`.
    fn cli(&self, args: &[&str]) -> Out {
        self.cli_db(&self.x(), args, None)
    }

    fn cli_db(&self, db: &str, args: &[&str], stdin: Option<&str>) -> Out {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--database-url", db]);
        self.run_full(&all, &[], stdin)
    }

    fn cli_stdin(&self, args: &[&str], stdin: &str) -> Out {
        self.cli_db(&self.x(), args, Some(stdin))
    }
}

/// Runs a command to its end (killed after a minute: a command that should fail must not hang the tests).
fn run(mut command: Command, stdin: Option<&str>) -> Out {
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("the wsoauth binary starts");
    let mut pipe = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        // the command may exit before reading (a refused argument): a broken pipe is not the test's concern
        let _ = pipe.write_all(text.as_bytes());
    }
    drop(pipe);
    let (stdout, stdout_done) = collect(child.stdout.take().unwrap());
    let (stderr, stderr_done) = collect(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("wsoauth did not finish:\nstdout: {}\nstderr: {}", stdout.lock().unwrap(), stderr.lock().unwrap());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = stdout_done.join();
    let _ = stderr_done.join();
    let stdout = stdout.lock().unwrap().clone();
    let stderr = stderr.lock().unwrap().clone();
    Out { status, stdout, stderr }
}

/// Reads a pipe to its end in a thread; the text so far is always readable.
fn collect(mut pipe: impl Read + Send + 'static) -> (Arc<Mutex<String>>, std::thread::JoinHandle<()>) {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    let handle = std::thread::spawn(move || {
        let mut reader = BufReader::new(&mut pipe);
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            sink.lock().unwrap().push_str(&line);
            line.clear();
        }
    });
    (text, handle)
}

/// Only the characters of the unreserved set (RFC 3986), as ids and secrets must be.
fn unreserved(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b))
}

fn s(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_else(|| panic!("{key} in {v}")).to_owned()
}

// ---------------------------------------------------------------------------------------------------------------
// help

#[test]
fn help_documents_every_environment_variable() {
    let sandbox = Sandbox::new();
    let help = sandbox.run_full(&["--help"], &[], None);
    let text = help.ok();
    for name in [
        "WSOAUTH_LISTEN",
        "WSOAUTH_PUBLIC_URL",
        "WSOAUTH_DATABASE_URL",
        "WSOAUTH_CODE_TTL",
        "WSOAUTH_ACCESS_TOKEN_TTL",
        "WSOAUTH_REFRESH_TOKEN_TTL",
        "WSOAUTH_CONFIG",
    ] {
        assert!(text.contains(name), "--help lacks {name}:\n{text}");
    }
    for command in ["serve", "account", "user", "app"] {
        assert!(text.contains(command), "--help lacks the {command} command:\n{text}");
    }

    let help = sandbox.run_full(&["app", "create", "--help"], &[], None);
    let text = help.ok();
    for flag in ["--redirect-uri", "--scopes", "--json", "--account", "--name"] {
        assert!(text.contains(flag), "app create --help lacks {flag}:\n{text}");
    }
    // help prints, it does not touch a database
    assert!(!sandbox.path("data").exists());
}

// ---------------------------------------------------------------------------------------------------------------
// accounts and people

#[test]
fn accounts_are_created_and_listed() {
    let sandbox = Sandbox::new();
    assert_eq!(sandbox.cli(&["account", "list"]).ok(), "", "a new database has no account");

    let acme = sandbox.cli(&["account", "create", "--name", "Acme"]).json();
    assert!(acme["id"].as_i64().is_some(), "{acme}");
    assert_eq!(acme["slug"], "acme");
    assert_eq!(acme["name"], "Acme");
    let second = sandbox.cli(&["account", "create", "--name", "Acme"]).json();
    assert_eq!(second["slug"], "acme-2", "a derived slug is made unique");
    assert_ne!(second["id"], acme["id"]);
    let custom = sandbox.cli(&["account", "create", "--name", "Beta Corp", "--slug", "beta"]).json();
    assert_eq!(custom["slug"], "beta");
    sandbox.cli(&["account", "create", "--name", "Bad", "--slug", "Not A Slug"]).fails_with("slug");

    let list = sandbox.cli(&["account", "list"]);
    let lines: Vec<&str> = list.ok().lines().collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0], format!("{}\tacme\tAcme", acme["id"]));
    assert!(lines.iter().any(|l| l.contains("\tbeta\tBeta Corp")), "{lines:?}");

    let json = sandbox.cli(&["account", "list", "--json"]).json_lines();
    let slugs: Vec<&str> = json.iter().map(|a| a["slug"].as_str().unwrap()).collect();
    assert_eq!(slugs, ["acme", "acme-2", "beta"]);
    assert_eq!(json[0]["id"], acme["id"]);
}

#[test]
fn user_create_reads_the_password_and_picks_the_account() {
    let sandbox = Sandbox::new();
    // no account yet
    sandbox
        .cli_stdin(&["user", "create", "--email", "a@b.test", "--role", "owner"], "password-1\n")
        .fails_with("account");

    let acme = sandbox.cli(&["account", "create", "--name", "Acme"]).json();
    // --account left out: the only account
    let owner = sandbox
        .cli_stdin(&["user", "create", "--email", "A@B.test", "--role", "owner"], "password-1\nsecond line\n")
        .json();
    assert_eq!(owner["email"], "a@b.test");
    assert_eq!(owner["role"], "owner");
    assert_eq!(owner["account_id"], acme["id"]);
    assert!(owner["user_id"].as_i64().is_some(), "{owner}");

    // refusals, with the single account present
    sandbox.cli_stdin(&["user", "create", "--email", "c@b.test", "--role", "boss"], "password-1\n").fails_with("boss");
    sandbox.cli_stdin(&["user", "create", "--email", "c@b.test"], "short\n").fails_with("8 to 1024");
    sandbox.cli_stdin(&["user", "create", "--email", "c@b.test"], "").fails_with("password");
    sandbox.cli_stdin(&["user", "create", "--email", "c@b.test"], "\n").fails_with("password");
    sandbox.cli_stdin(&["user", "create", "--email", "not-an-email"], "password-1\n").fails_with("not-an-email");
    sandbox
        .cli_stdin(&["user", "create", "--email", "c@b.test", "--account", "nope"], "password-1\n")
        .fails_with("nope");

    // a second account: --account is now required
    let beta = sandbox.cli(&["account", "create", "--name", "Beta"]).json();
    sandbox.cli_stdin(&["user", "create", "--email", "c@b.test"], "password-2\n").fails_with("--account");
    let by_slug =
        sandbox.cli_stdin(&["user", "create", "--email", "c@b.test", "--account", "beta"], "password-2\n").json();
    assert_eq!(by_slug["account_id"], beta["id"]);
    assert_eq!(by_slug["role"], "user", "the default role");
    // an existing person joins another account (by id) and keeps their password (empty stdin)
    let id = acme["id"].to_string();
    let by_id =
        sandbox.cli_stdin(&["user", "create", "--email", "c@b.test", "--account", &id, "--role", "admin"], "").json();
    assert_eq!(by_id["account_id"], acme["id"]);
    assert_eq!(by_id["role"], "admin");
    assert_ne!(by_id["user_id"], by_slug["user_id"], "one membership per account");
}

// ---------------------------------------------------------------------------------------------------------------
// apps

#[test]
fn apps_are_created_listed_and_deleted() {
    let sandbox = Sandbox::new();
    sandbox.cli(&["account", "create", "--name", "Acme"]).ok();
    let created = sandbox
        .cli(&[
            "app",
            "create",
            "--name",
            "N",
            "--redirect-uri",
            "https://a.example/cb",
            "--redirect-uri",
            "http://127.0.0.1:7/cb",
            "--scopes",
            "tasks_read,users_read",
            "--json",
        ])
        .json();
    let keys: Vec<&String> = created.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["client_id", "client_secret"], "{created}");
    let client_id = s(&created, "client_id");
    let secret = s(&created, "client_secret");
    assert!(unreserved(&client_id), "{client_id}");
    assert!(unreserved(&secret), "{secret}");
    assert!(secret.len() >= 43, "{secret}");

    // the plain form prints the same two things
    let plain_out = sandbox.cli(&["app", "create", "--name", "Other", "--redirect-uri", "https://b.example/cb"]);
    assert!(plain_out.ok().contains("client_id:") && plain_out.ok().contains("client_secret:"), "{plain_out:?}");

    let apps = sandbox.cli(&["app", "list", "--json"]).json_lines();
    assert_eq!(apps.len(), 2, "{apps:?}");
    let app = apps.iter().find(|a| a["client_id"] == client_id.as_str()).expect("listed");
    assert_eq!(app["name"], "N");
    assert_eq!(app["redirect_uris"], serde_json::json!(["https://a.example/cb", "http://127.0.0.1:7/cb"]));
    let mut scopes: Vec<&str> = app["scopes"].as_str().unwrap().split([' ', ',']).filter(|s| !s.is_empty()).collect();
    scopes.sort();
    assert_eq!(scopes, ["tasks_read", "users_read"]);
    // the other app got every scope by default
    let other = apps.iter().find(|a| a["name"] == "Other").unwrap();
    assert_eq!(other["scopes"].as_str().unwrap().split(' ').count(), 17, "{other}");
    // the secret is never listed
    assert!(!sandbox.cli(&["app", "list", "--json"]).stdout.contains(&secret));
    assert!(sandbox.cli(&["app", "list"]).ok().contains(&client_id));

    let deleted = sandbox.cli(&["app", "delete", &client_id]);
    assert!(deleted.ok().contains(&client_id));
    let apps = sandbox.cli(&["app", "list", "--json"]).json_lines();
    assert_eq!(apps.len(), 1, "{apps:?}");
    assert_eq!(apps[0]["name"], "Other");
    sandbox.cli(&["app", "delete", &client_id]).fails_with(&client_id);
}

#[test]
fn bad_app_registrations_are_refused_and_create_nothing() {
    let sandbox = Sandbox::new();
    sandbox.cli(&["account", "create", "--name", "Acme"]).ok();
    let base = ["app", "create", "--name", "N", "--json"];
    let with = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        sandbox.cli(&args)
    };
    with(&["--redirect-uri", "http://a.example/cb"]).fails_with("http://a.example/cb");
    with(&["--redirect-uri", "https://a.example/cb", "--redirect-uri", "http://evil.example/cb"])
        .fails_with("http://evil.example/cb");
    with(&["--redirect-uri", "https://a.example/cb", "--scopes", "tasks_read,root_access"]).fails_with("root_access");
    with(&[]).fails_with("--redirect-uri");
    with(&["--redirect-uri", "https://a.example/cb#frag"]).fails_with("https://a.example/cb#frag");
    for out in [with(&["--redirect-uri", "http://a.example/cb"]), with(&[])] {
        assert!(out.stdout.trim().is_empty(), "nothing printed on failure: {out:?}");
    }
    assert_eq!(sandbox.cli(&["app", "list", "--json"]).ok(), "", "nothing was created");
    // the control: the same command with a good URI works
    with(&["--redirect-uri", "https://a.example/cb"]).json();
    assert_eq!(sandbox.cli(&["app", "list", "--json"]).json_lines().len(), 1);
}

// ---------------------------------------------------------------------------------------------------------------
// configuration

/// The names of the apps in the database a command resolved to.
fn app_names(out: &Out) -> Vec<String> {
    out.json_lines().iter().map(|a| s(a, "name")).collect()
}

#[test]
fn database_url_precedence_file_env_flag() {
    let sandbox = Sandbox::new();
    for name in ["file", "env", "flag"] {
        let db = sandbox.db(&format!("{name}.db"));
        sandbox.cli_db(&db, &["account", "create", "--name", name], None).ok();
        sandbox
            .cli_db(
                &db,
                &["app", "create", "--name", &format!("app-{name}"), "--redirect-uri", "https://a.example/cb"],
                None,
            )
            .ok();
    }
    let config =
        sandbox.write("wsoauth.toml", &format!("database_url = {:?}\ncode_ttl = \"5m\"\n", sandbox.db("file.db")));
    let config = config.to_str().unwrap();
    let list = ["app", "list", "--json"];

    let out = sandbox.run_full(&[&["--config", config][..], &list].concat(), &[], None);
    assert_eq!(app_names(&out), ["app-file"], "--config FILE is read");
    let out = sandbox.run_full(&list, &[("WSOAUTH_CONFIG", config)], None);
    assert_eq!(app_names(&out), ["app-file"], "WSOAUTH_CONFIG is read");
    let env = sandbox.db("env.db");
    let out = sandbox.run_full(&list, &[("WSOAUTH_CONFIG", config), ("WSOAUTH_DATABASE_URL", &env)], None);
    assert_eq!(app_names(&out), ["app-env"], "the environment overrides the file");
    let flag = sandbox.db("flag.db");
    let out = sandbox.run_full(
        &[&list[..], &["--database-url", &flag]].concat(),
        &[("WSOAUTH_CONFIG", config), ("WSOAUTH_DATABASE_URL", &env)],
        None,
    );
    assert_eq!(app_names(&out), ["app-flag"], "a flag overrides the environment");
    // the default (no file, no env, no flag) is data/wsoauth.db under the working folder
    let out = sandbox.run_full(&list, &[], None);
    assert_eq!(app_names(&out), Vec::<String>::new());
    assert!(sandbox.path("data/wsoauth.db").exists());
}

#[test]
fn public_url_and_template_precedence() {
    let sandbox = Sandbox::new();
    let config = sandbox.write(
        "wsoauth.toml",
        &format!("database_url = {:?}\npublic_url = \"https://file.example.test/\"\n", sandbox.x()),
    );
    let config = config.to_str().unwrap();
    let mut n = 0;
    let mut url = |args: &[&str], env: &[(&str, &str)]| {
        n += 1;
        let slug = format!("s{n}");
        let all = [&["account", "create", "--name", "X", "--slug", &slug][..], args].concat();
        s(&sandbox.run_full(&all, env, None).json(), "url")
    };
    assert_eq!(url(&["--config", config], &[]), "https://file.example.test");
    assert_eq!(
        url(&["--config", config], &[("WSOAUTH_PUBLIC_URL", "https://env.example.test")]),
        "https://env.example.test"
    );
    assert_eq!(
        url(
            &["--config", config, "--public-url", "https://flag.example.test"],
            &[("WSOAUTH_PUBLIC_URL", "https://env.example.test")]
        ),
        "https://flag.example.test"
    );
    assert_eq!(
        url(&["--config", config], &[("WSOAUTH_ACCOUNT_URL_TEMPLATE", "https://{account}.tpl.example.test")]),
        "https://s4.tpl.example.test"
    );
    // all of them went to the file's database
    assert_eq!(sandbox.cli(&["account", "list", "--json"]).json_lines().len(), 4);
    sandbox
        .run_full(&["--config", config, "--public-url", "ftp://x.example.test", "account", "list"], &[], None)
        .fails_with("public url");
    sandbox
        .run_full(
            &["--config", config, "--account-url-template", "https://x.example.test", "account", "list"],
            &[],
            None,
        )
        .fails_with("{account}");
}

#[test]
fn bad_durations_and_files_are_refused() {
    let sandbox = Sandbox::new();
    let db = sandbox.x();
    let list = |args: &[&str], env: &[(&str, &str)]| {
        sandbox.run_full(&[&["account", "list", "--database-url", &db][..], args].concat(), env, None)
    };
    list(&["--code-ttl", "10x"], &[]).fails_with("10x");
    list(&["--code-ttl", "10x"], &[]).fails_with("code TTL");
    list(&[], &[("WSOAUTH_ACCESS_TOKEN_TTL", "0")]).fails_with("access token TTL");
    list(&[], &[("WSOAUTH_REFRESH_TOKEN_TTL", "-5d")]).fails_with("refresh token TTL");
    list(&["--session-ttl", "1.5h"], &[]).fails_with("session TTL");
    // good values of every form pass, and a flag wins over a bad environment value (never parsed)
    list(
        &["--code-ttl", "5m", "--access-token-ttl", "3600", "--refresh-token-ttl", "30d", "--session-ttl", "45s"],
        &[],
    )
    .ok();
    list(&["--code-ttl", "5m"], &[("WSOAUTH_CODE_TTL", "nonsense")]).ok();
    list(&[], &[("WSOAUTH_CODE_TTL", "nonsense")]).fails_with("nonsense");

    // the file's lifetimes are read (a bad one fails), and the environment overrides them
    let bad = sandbox.write("bad-ttl.toml", "code_ttl = \"10x\"\naccess_token_ttl = 7200\n");
    let bad = bad.to_str().unwrap();
    list(&["--config", bad], &[]).fails_with("code TTL");
    list(&["--config", bad], &[("WSOAUTH_CODE_TTL", "5m")]).ok();
    list(&["--config", bad, "--code-ttl", "5m"], &[("WSOAUTH_CODE_TTL", "bad")]).ok();
    let zero = sandbox.write("zero.toml", "access_token_ttl = 0\n");
    list(&["--config", zero.to_str().unwrap()], &[]).fails_with("access token TTL");

    let float = sandbox.write("float.toml", "code_ttl = 1.5\n");
    list(&["--config", float.to_str().unwrap()], &[]).fails_with("\"1.5\"");
    let boolean = sandbox.write("bool.toml", "session_ttl = true\n");
    list(&["--config", boolean.to_str().unwrap()], &[]).fails_with("session TTL: invalid duration \"true\"");

    let unknown = sandbox.write("unknown.toml", &format!("databse_url = {db:?}\n"));
    list(&["--config", unknown.to_str().unwrap()], &[]).fails_with("databse_url");
    let broken = sandbox.write("broken.toml", "database_url = \n");
    list(&["--config", broken.to_str().unwrap()], &[]).fails_with("broken.toml");
    let missing = sandbox.path("missing.toml");
    list(&["--config", missing.to_str().unwrap()], &[]).fails_with("missing.toml");
    list(&[], &[("WSOAUTH_CONFIG", missing.to_str().unwrap())]).fails_with("missing.toml");
    // a good file is accepted (the control for the three above)
    let good = sandbox.write("good.toml", "code_ttl = 300\naccess_token_ttl = \"1h\"\nlisten = \"127.0.0.1:0\"\n");
    list(&["--config", good.to_str().unwrap()], &[]).ok();
}

// ---------------------------------------------------------------------------------------------------------------
// serve

/// A port that was free a moment ago.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A running `wsoauth serve`; killed when dropped, whatever happened.
struct ServeProcess {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    base: String,
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServeProcess {
    /// Starts the binary with `args` (`serve` or nothing) on a free port; waits until it answers.
    async fn start(sandbox: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> ServeProcess {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut command = sandbox.command();
        command
            .args(args)
            .env("WSOAUTH_LISTEN", &listen)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("the wsoauth binary starts");
        let (stdout, _) = collect(child.stdout.take().unwrap());
        let (stderr, _) = collect(child.stderr.take().unwrap());
        let mut process = ServeProcess { child, stdout, stderr, base: format!("http://{listen}") };
        process.wait_ready().await;
        process
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let client = plain();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // let the readers drain
                tokio::time::sleep(Duration::from_millis(200)).await;
                panic!("wsoauth exited early ({status}):\nstdout: {}\nstderr: {}", self.stdout(), self.stderr());
            }
            if self.stdout().contains("wsoauth listening on")
                && let Ok(response) = client.get(self.url("/login")).send().await
                && response.status() == StatusCode::OK
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "wsoauth did not answer:\nstdout: {}\nstderr: {}",
                self.stdout(),
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM and waits for the exit (killed after a minute).
    #[cfg(unix)]
    fn terminate(mut self) -> ExitStatus {
        let sent = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(sent.success(), "kill -TERM");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM:\nstderr: {}", self.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn port(&self) -> &str {
        self.base.rsplit(':').next().unwrap()
    }

    /// Signs in through the login page with a fresh browser; returns it with the status of the POST.
    async fn sign_in(&self, email: &str, password: &str) -> (Browser, StatusCode) {
        let browser = Browser::new();
        let (status, _, page) = browser.get(&self.url("/login")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let csrf = hidden_fields(&page).into_iter().find(|(k, _)| k == "csrf_token").expect("csrf field").1;
        let form = [
            ("csrf_token".to_owned(), csrf),
            ("next".to_owned(), "/".to_owned()),
            ("email".to_owned(), email.to_owned()),
            ("password".to_owned(), password.to_owned()),
        ];
        let (status, location, body) = browser.post(&self.url("/login"), &form).await;
        if status == StatusCode::SEE_OTHER {
            assert_eq!(location.as_deref(), Some("/"), "{body}");
        }
        (browser, status)
    }

    /// Signs in, approves `scope` for the app and exchanges the code; returns the token response.
    async fn tokens(&self, email: &str, password: &str, client_id: &str, secret: &str, scope: &str) -> Value {
        let (browser, status) = self.sign_in(email, password).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "sign-in as {email}");
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("state", "st")
            .append_pair("scope", scope)
            .finish();
        // the consent page, or (approved before) straight back to the app
        let location = browser.approve_url(&self.url(&format!("/oauth2/authorize?{query}"))).await;
        assert!(location.starts_with(REDIRECT), "{location}");
        let code = query_param(&location, "code").expect("a code");
        let response = plain()
            .post(self.url("/oauth2/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("client_id", client_id),
                ("client_secret", secret),
            ])
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

#[tokio::test]
async fn serve_bootstraps_an_empty_database_once() {
    let sandbox = Sandbox::new();
    let db_path = sandbox.path("data/sub/wsoauth.db");
    let db = format!("sqlite://{}", db_path.display());
    assert!(!sandbox.path("data").exists());
    let env = [
        ("WSOAUTH_DATABASE_URL", db.as_str()),
        ("WSOAUTH_BOOTSTRAP_EMAIL", "boss@acme.test"),
        ("WSOAUTH_BOOTSTRAP_PASSWORD", "bootstrap-pass"),
    ];

    let server = ServeProcess::start(&sandbox, &["serve"], &env).await;
    assert!(db_path.exists(), "the database file and its folders are created");
    let stdout = server.stdout();
    assert!(stdout.contains(&format!("http://127.0.0.1:{}/login", server.port())), "sign-in URL: {stdout}");
    assert!(stdout.contains("boss@acme.test"), "email: {stdout}");
    assert!(!stdout.contains("bootstrap-pass"), "a given password is not echoed: {stdout}");
    let (_, status) = server.sign_in("boss@acme.test", "wrong-password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (browser, status) = server.sign_in("boss@acme.test", "bootstrap-pass").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    // the session works: the login page now sends the person on
    let (status, _, _) = browser.get(&server.url("/login")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    drop(browser);
    // SIGTERM stops it cleanly
    #[cfg(unix)]
    {
        let status = server.terminate();
        assert!(status.success(), "exit after SIGTERM: {status:?}");
    }
    #[cfg(not(unix))]
    drop(server);

    // a second start (no subcommand: serve is the default) on the same database creates nothing
    let server = ServeProcess::start(&sandbox, &[], &env).await;
    let stdout = server.stdout();
    assert!(!stdout.contains("Created an account"), "{stdout}");
    assert!(!stdout.contains("boss@acme.test"), "{stdout}");
    let (_, status) = server.sign_in("boss@acme.test", "bootstrap-pass").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "the owner still signs in");
    drop(server);

    let accounts = sandbox.cli_db(&db, &["account", "list", "--json"], None).json_lines();
    assert_eq!(accounts.len(), 1, "{accounts:?}");
}

#[tokio::test]
async fn serve_prints_a_generated_password_once() {
    let sandbox = Sandbox::new();
    let db = sandbox.x();
    let env = [("WSOAUTH_DATABASE_URL", db.as_str())];

    // no subcommand, no bootstrap variables
    let server = ServeProcess::start(&sandbox, &[], &env).await;
    let stdout = server.stdout();
    assert!(stdout.contains(&format!("http://127.0.0.1:{}/login", server.port())), "{stdout}");
    assert!(stdout.contains("owner@example.com"), "the default email: {stdout}");
    let password = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("password:"))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no password line: {stdout}"))
        .to_owned();
    assert!(password.len() >= 16 && unreserved(&password), "{password}");
    let (_, status) = server.sign_in("owner@example.com", &password).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "the printed password works");
    let (_, status) = server.sign_in("owner@example.com", &format!("{password}x")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    drop(server);

    let server = ServeProcess::start(&sandbox, &["serve"], &env).await;
    let stdout = server.stdout();
    assert!(!stdout.contains(&password), "shown only once: {stdout}");
    assert!(!stdout.contains("password"), "{stdout}");
    let (_, status) = server.sign_in("owner@example.com", &password).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    drop(server);
    assert_eq!(sandbox.cli(&["account", "list"]).ok().lines().count(), 1);
}

#[tokio::test]
async fn a_refused_bootstrap_changes_nothing() {
    let sandbox = Sandbox::new();
    let db = sandbox.x();
    let serve = |env: &[(&str, &str)]| {
        let mut all = vec![("WSOAUTH_DATABASE_URL", db.as_str()), ("WSOAUTH_LISTEN", "127.0.0.1:0")];
        all.extend_from_slice(env);
        sandbox.run_full(&["serve"], &all, None)
    };
    serve(&[("WSOAUTH_BOOTSTRAP_PASSWORD", "short")]).fails_with("8 to 1024");
    serve(&[("WSOAUTH_BOOTSTRAP_EMAIL", "not-an-email"), ("WSOAUTH_BOOTSTRAP_PASSWORD", "long-enough")])
        .fails_with("not-an-email");
    assert_eq!(sandbox.cli(&["account", "list"]).ok(), "", "no ownerless account is left behind");

    // so the next start with good details still bootstraps
    let env = [
        ("WSOAUTH_DATABASE_URL", db.as_str()),
        ("WSOAUTH_BOOTSTRAP_EMAIL", "boss@acme.test"),
        ("WSOAUTH_BOOTSTRAP_PASSWORD", "long-enough"),
    ];
    let server = ServeProcess::start(&sandbox, &["serve"], &env).await;
    assert!(server.stdout().contains("boss@acme.test"), "{}", server.stdout());
    let (_, status) = server.sign_in("boss@acme.test", "long-enough").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    drop(server);
    assert_eq!(sandbox.cli(&["account", "list"]).ok().lines().count(), 1);
}

#[tokio::test]
async fn serve_fails_clearly_on_bad_settings() {
    let sandbox = Sandbox::new();
    let db = sandbox.x();
    let out = sandbox.run_full(&["serve", "--database-url", &db], &[("WSOAUTH_CODE_TTL", "5x")], None);
    out.fails_with("code TTL");
    // a port in use
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = sandbox.run_full(&["serve", "--database-url", &db, "--listen", &addr], &[], None);
    out.fails_with(&addr);
}

#[tokio::test]
async fn serve_uses_configured_token_lifetimes() {
    let sandbox = Sandbox::new();
    // everything set up with the CLI first; the password is the first line of standard input
    sandbox.cli(&["account", "create", "--name", "Acme"]).ok();
    sandbox.cli_stdin(&["user", "create", "--email", OWNER_EMAIL, "--role", "owner"], "owner-pass-1\nnot-this\n").ok();
    let app = sandbox
        .cli(&["app", "create", "--name", "Client", "--redirect-uri", REDIRECT, "--scopes", "users_read", "--json"])
        .json();
    let (client_id, secret) = (s(&app, "client_id"), s(&app, "client_secret"));
    // the file names the database and lifetimes; serve gets no --database-url
    let config = sandbox.write(
        "wsoauth.toml",
        &format!("database_url = {:?}\ncode_ttl = \"5m\"\naccess_token_ttl = \"2h\"\n", sandbox.x()),
    );
    let config = config.to_str().unwrap();

    // (arguments, environment, the expected expires_in)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], i64);
    let cases: [Case; 3] = [
        (&["serve", "--config", config], &[("WSOAUTH_ACCESS_TOKEN_TTL", "1h"), ("WSOAUTH_CODE_TTL", "5m")], 3600),
        (&["serve"], &[("WSOAUTH_CONFIG", config)], 7200),
        (&["serve", "--config", config, "--access-token-ttl", "30m"], &[("WSOAUTH_ACCESS_TOKEN_TTL", "1h")], 1800),
    ];
    for (args, env, expected) in cases {
        let server = ServeProcess::start(&sandbox, args, env).await;
        assert!(!server.stdout().contains("Created an account"), "the file's database is used: {}", server.stdout());
        let (_, status) = server.sign_in(OWNER_EMAIL, "owner-pass-1\nnot-this").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "only the first line is the password");
        let tokens = server.tokens(OWNER_EMAIL, "owner-pass-1", &client_id, &secret, "users_read").await;
        assert_eq!(tokens["expires_in"], expected, "{args:?} {env:?}: {tokens}");
        assert!(tokens["refresh_token"].is_string(), "{tokens}");
    }
}

#[test]
fn migrate_applies_the_schema_and_says_which_versions() {
    let dir = temp_dir();
    let url = format!("sqlite://{}", dir.join("migrated/x.db").display());
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wsoauth"))
        .args(["migrate", "--database-url", &url])
        .env_remove("WSOAUTH_CONFIG")
        .env_remove("WSOAUTH_DATABASE_URL")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    let versions: Vec<i64> =
        answer["schema_versions"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    assert_eq!(versions.first(), Some(&1));
    assert!(versions.len() >= 5 && versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    assert!(dir.join("migrated/x.db").exists());
    // a second run changes nothing and says the same
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_wsoauth"))
        .args(["migrate", "--database-url", &url])
        .env_remove("WSOAUTH_CONFIG")
        .output()
        .unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&again.stdout).unwrap(), answer);
}
