//! A real browser (headless Chromium driven through chromedriver) walks the whole authorization flow: sign-in,
//! account choice, consent, the redirect with `code` and `state`; then the code is exchanged over HTTP. Skipped,
//! with a note on stderr, when Debian's `chromium` and `chromium-driver` are not installed.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use reqwest::StatusCode;
use serde_json::{Value, json};
use wsoauth_storage::Role;

use crate::common::*;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const SCREENSHOT: &str = "/tmp/wsoauth-consent.png";
const PATIENCE: Duration = Duration::from_secs(30);

/// A chromedriver process of this test, in its own process group, and the browser profile folder. Dropping it
/// (also when the test panics) kills the group, so the driver and every Chromium process it started, then
/// removes the folder.
struct Driver {
    child: Child,
    /// Set once the driver is known to have exited (and was reaped): its group id may then be someone else's.
    exited: bool,
    port: u16,
    dir: PathBuf,
}

impl Driver {
    fn start() -> Driver {
        let dir = temp_dir();
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", dir.join("chromedriver.log").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver starts");
        Driver { child, exited: false, port, dir }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn profile(&self) -> PathBuf {
        self.dir.join("profile")
    }

    /// Waits until chromedriver answers `/status` with `ready: true`.
    async fn wait_ready(&mut self) {
        let started = Instant::now();
        let client = plain();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.exited = true;
                panic!("chromedriver exited early ({status}):\n{}", self.log());
            }
            let response = client.get(format!("{}/status", self.url())).timeout(Duration::from_secs(2)).send().await;
            if let Ok(response) = response {
                let body: Value = response.json().await.unwrap_or_default();
                if body["value"]["ready"] == true {
                    return;
                }
            }
            assert!(started.elapsed() < PATIENCE, "chromedriver did not answer on port {}:\n{}", self.port, self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("chromedriver.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("chromedriver log (last lines):\n{}", self.log());
        }
        if !self.exited {
            // the group id is the driver's pid (process_group(0)); Chromium and its helpers inherit it
            let _ = Command::new("kill")
                .args(["-s", "KILL", "--", &format!("-{}", self.child.id())])
                .stderr(Stdio::null())
                .status();
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn connect(driver: &Driver) -> Client {
    let profile = driver.profile();
    std::fs::create_dir_all(&profile).unwrap();
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1000,900",
                format!("--user-data-dir={}", profile.display()),
            ],
        },
    });
    let Value::Object(capabilities) = capabilities else { unreachable!() };
    // plain http on loopback: no TLS connector needed
    ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url())
        .await
        .unwrap_or_else(|error| panic!("a Chromium session: {error}\n{}", driver.log()))
}

async fn wait_for(client: &Client, id: &str) -> fantoccini::elements::Element {
    match client.wait().at_most(PATIENCE).for_element(Locator::Id(id)).await {
        Ok(element) => element,
        Err(error) => {
            let url = client.current_url().await.map(|u| u.to_string()).unwrap_or_default();
            let source = client.source().await.unwrap_or_default();
            panic!("#{id} did not appear ({error}) at {url}:\n{source}");
        }
    }
}

#[tokio::test]
async fn chromium_signs_in_chooses_an_account_and_consents() {
    if !Path::new(CHROMEDRIVER).exists() || !Path::new(CHROMIUM).exists() {
        // straight to stderr, past the test harness's output capture, so that the note shows in every run
        let _ = writeln!(std::io::stderr(), "browser test skipped: chromium/chromedriver not installed");
        return;
    }
    let started = Instant::now();
    let server = TestServer::start().await;
    let beta = wsoauth_server::admin::create_account(server.state(), "Beta", Some("beta")).await.unwrap();
    let beta_user = server.member(beta.id, OWNER_EMAIL, OWNER_PASSWORD, Role::User).await;
    // the server answers /landing with its 404 page, so the final navigation completes and its URL can be read
    let landing = server.url("/landing");
    let (client_id, client_secret) = server.app("Browser App", &[&landing], "users_read tasks_read").await;
    let state = format!("browser-{}", std::process::id());
    let authorize = server.url(&format!(
        "/oauth2/authorize?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", &landing)
            .append_pair("state", &state)
            .append_pair("scope", "users_read,tasks_read")
            .finish()
    ));

    let mut driver = Driver::start();
    driver.wait_ready().await;
    let client = connect(&driver).await;
    eprintln!("browser ready after {:?}", started.elapsed());

    client.goto(&authorize).await.unwrap();
    let email = wait_for(&client, "email").await;
    assert_eq!(client.current_url().await.unwrap().path(), "/login");
    email.send_keys(OWNER_EMAIL).await.unwrap();
    client.find(Locator::Id("password")).await.unwrap().send_keys(OWNER_PASSWORD).await.unwrap();
    client.find(Locator::Id("sign-in")).await.unwrap().click().await.unwrap();

    // two memberships: the account choice page lists both
    let beta_link = wait_for(&client, &format!("account-{beta_user}")).await;
    wait_for(&client, &format!("account-{}", server.owner_user_id)).await;
    assert_eq!(beta_link.text().await.unwrap(), "Beta");
    beta_link.click().await.unwrap();

    let allow = wait_for(&client, "allow").await;
    let page = client.source().await.unwrap();
    assert!(page.contains("Allow Browser App to access your account?"), "{page}");
    assert!(page.contains("<strong>Beta</strong>"), "{page}");
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(SCREENSHOT, &png).unwrap();
    eprintln!("consent page screenshot: {SCREENSHOT}");
    allow.click().await.unwrap();

    let deadline = Instant::now() + PATIENCE;
    let landed = loop {
        let url = client.current_url().await.unwrap();
        if url.path() == "/landing" {
            break url;
        }
        assert!(Instant::now() < deadline, "no redirect to the app; the browser is at {url}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(landed.origin().ascii_serialization(), server.base);
    let code = query_param(landed.as_str(), "code").expect("the redirect carries a code");
    assert_eq!(query_param(landed.as_str(), "state").as_deref(), Some(state.as_str()));
    assert_eq!(query_param(landed.as_str(), "error"), None);
    client.close().await.unwrap();

    let response = plain()
        .post(server.url("/oauth2/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &landing),
            ("client_id", &client_id),
            ("client_secret", &client_secret),
        ])
        .send()
        .await
        .unwrap();
    let status = response.status();
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["scope"], "tasks_read users_read");
    let access = tokens["access_token"].as_str().expect("an access token");

    let response = plain().get(server.url("/oauth2/resource")).bearer_auth(access).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let resource: Value = response.json().await.unwrap();
    assert_eq!(resource["id"], beta_user.to_string(), "{resource}");
    assert_eq!(resource["email"], OWNER_EMAIL);
    drop(driver);
    eprintln!("browser test took {:?}", started.elapsed());
}
