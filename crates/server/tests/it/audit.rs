//! The audit log: every event recorded from real flows over HTTP (and the admin binary), shown on
//! `/settings/audit` to owners and account admins only, paged, and never holding a secret, code, token or
//! password.

use reqwest::StatusCode;
use serde_json::Value;
use wsoauth_server::audit::{self, Entry, Event};
use wsoauth_storage::Role;

use crate::common::*;

/// A row of the audit page.
#[derive(Debug)]
struct Shown {
    id: i64,
    event: String,
    time: String,
    account: Option<String>,
    label: String,
    who: String,
    app: String,
    ip: String,
    detail: String,
}

fn cell(row: &str, class: &str) -> Option<String> {
    let rest = row.split_once(&format!(r#"<td class="{class}">"#))?.1;
    Some(unescape(rest.split("</td>").next()?))
}

/// The rows of an audit page, in order.
fn rows(html: &str) -> Vec<Shown> {
    html.split(r#"<tr class="event" id="event-"#)
        .skip(1)
        .map(|row| {
            let row = row.split("</tr>").next().unwrap();
            let (id, rest) = row.split_once('"').unwrap();
            let event = rest.split_once(r#"data-event=""#).unwrap().1.split('"').next().unwrap();
            Shown {
                id: id.parse().unwrap(),
                event: event.to_owned(),
                time: cell(row, "time").unwrap(),
                account: cell(row, "account"),
                label: cell(row, "label").unwrap(),
                who: cell(row, "who").unwrap(),
                app: cell(row, "app").unwrap(),
                ip: cell(row, "ip").unwrap(),
                detail: cell(row, "detail").unwrap(),
            }
        })
        .collect()
}

/// The `before` of the "Older events" link, if any.
fn older(html: &str) -> Option<String> {
    let rest = html.split_once(r#"id="older" href="/settings/audit?before="#)?.1;
    Some(rest.split('"').next().unwrap().to_owned())
}

fn csrf(html: &str) -> String {
    hidden_fields(html).into_iter().find(|(k, _)| k == "csrf_token").expect("a CSRF token").1
}

fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// The text of the element with `id` (up to the next tag).
fn element(html: &str, id: &str) -> String {
    let rest = html.split_once(&format!(r#"id="{id}">"#)).unwrap_or_else(|| panic!("no #{id}: {html}")).1;
    unescape(rest.split('<').next().unwrap())
}

fn s(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_else(|| panic!("{key} in {v}")).to_owned()
}

/// Runs the `wsoauth` binary against the server's database; returns its standard output.
async fn wsoauth(server: &TestServer, args: &[&str]) -> String {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_wsoauth"));
    command
        .args(args)
        .env_remove("WSOAUTH_CONFIG")
        .env("WSOAUTH_DATABASE_URL", &server.state().settings.database_url)
        .env("WSOAUTH_LOG", "off");
    let output = run_command(command).await;
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// Every byte of the database: the file and its write-ahead log, or on PostgreSQL a `pg_dump` of its schema.
fn database_bytes(server: &TestServer) -> Vec<u8> {
    let url = &server.state().settings.database_url;
    if let Some((base, schema)) = url.split_once("?options[search_path]=") {
        let dump = std::process::Command::new("pg_dump").args(["--data-only", "--schema", schema, base]).output();
        let dump = dump.expect("pg_dump runs");
        assert!(dump.status.success(), "{}", String::from_utf8_lossy(&dump.stderr));
        assert!(dump.stdout.len() > 1000);
        return dump.stdout;
    }
    let path = url.strip_prefix("sqlite://").unwrap();
    let mut bytes = std::fs::read(path).unwrap();
    if let Ok(wal) = std::fs::read(format!("{path}-wal")) {
        bytes.extend(wal);
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// All the audit page's rows, following the "Older events" links.
async fn all_rows(browser: &Browser, server: &TestServer) -> (Vec<Shown>, Vec<String>) {
    let mut shown = Vec::new();
    let mut pages = Vec::new();
    let mut url = server.url("/settings/audit");
    loop {
        let (status, _, page) = browser.get(&url).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        shown.extend(rows(&page));
        let next = older(&page);
        pages.push(page);
        match next {
            Some(before) => url = server.url(&format!("/settings/audit?before={before}")),
            None => return (shown, pages),
        }
    }
}

fn find(shown: &[Shown], event: Event) -> Vec<&Shown> {
    shown.iter().filter(|row| row.event == event.as_str()).collect()
}

fn one(shown: &[Shown], event: Event) -> &Shown {
    let found = find(shown, event);
    assert_eq!(found.len(), 1, "{event:?}: {found:#?}");
    found[0]
}

#[tokio::test]
async fn every_event_is_recorded_and_shown_without_secrets() {
    let server = TestServer::start().await;
    let app_label = format!("Client App ({})", server.client_id);
    let mut secrets: Vec<String> = vec![server.client_secret.clone(), OWNER_PASSWORD.to_owned()];

    // sign-in failures: a wrong password, an unknown email, a password typed into the email field
    let typed = "my-Secret-passw0rd";
    secrets.push(typed.to_owned());
    for (email, password) in
        [(OWNER_EMAIL, "wrong-password-1"), ("nobody@acme.test", "wrong-password-2"), (typed, "wrong-password-3")]
    {
        secrets.push(password.to_owned());
        let (status, _, _) = Browser::new().try_login(&server, email, password, "/").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    // the owner signs in, denies, then allows; the code is exchanged, then replayed
    let browser = Browser::new();
    browser.login(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
    let denied = browser.decide(&server, &server.authorize_query("users_read", "st"), "deny").await;
    assert_eq!(query_param(&denied, "error").as_deref(), Some("access_denied"));
    let location = browser.approve(&server, &server.authorize_query("users_read tasks_read", "st")).await;
    let code = query_param(&location, "code").unwrap();
    secrets.push(code.clone());
    let (status, first) = server.exchange(&code).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, replay) = server.exchange(&code).await;
    assert_eq!((status, replay["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));

    // a second grant: refreshed, then its old refresh token reused after the grace window
    let second = server.tokens("users_read").await;
    let (status, rotated) = server.refresh("/oauth2/refresh", &s(&second, "refresh_token")).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    server.clock.advance(60);
    let (status, _) = server.refresh("/oauth2/refresh", &s(&second, "refresh_token")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // a third grant, revoked by the app
    let third = server.tokens("users_read").await;
    let response = plain()
        .post(server.url("/oauth2/revoke"))
        .basic_auth(&server.client_id, Some(&server.client_secret))
        .form(&[("token", s(&third, "refresh_token"))])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    for pair in [&first, &second, &rotated, &third] {
        secrets.push(s(pair, "access_token"));
        secrets.push(s(pair, "refresh_token"));
    }

    // an app registered, changed, re-keyed and deleted through the pages
    let (_, _, settings) = browser.get(&server.url("/settings/api")).await;
    let token = csrf(&settings);
    let account = server.account_id.to_string();
    let new_app = form(&[
        ("csrf_token", &token),
        ("account_id", &account),
        ("name", "Audit Tool"),
        ("redirect_uris", "https://audit.example/cb"),
        ("scopes", "users_read"),
    ]);
    let (status, _, created) = browser.post(&server.url("/settings/api/apps"), &new_app).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let client_id = element(&created, "client-id");
    secrets.push(element(&created, "client-secret"));
    let edit_url = server.url(&format!("/settings/api/apps/{client_id}"));
    let change = form(&[
        ("csrf_token", &token),
        ("name", "Audit Tool 2"),
        ("redirect_uris", "https://audit.example/cb"),
        ("scopes", "users_read"),
        ("scopes", "tasks_read"),
    ]);
    let (status, _, _) = browser.post(&edit_url, &change).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, rekeyed) = browser.post(&format!("{edit_url}/secret"), &form(&[("csrf_token", &token)])).await;
    assert_eq!(status, StatusCode::OK);
    secrets.push(element(&rekeyed, "client-secret"));
    let (status, _, _) = browser.post(&format!("{edit_url}/delete"), &form(&[("csrf_token", &token)])).await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    // the admin command line: an app created and deleted, the signing key rotated
    let made: Value = serde_json::from_str(
        wsoauth(
            &server,
            &[
                "app",
                "create",
                "--name",
                "CLI Tool",
                "--redirect-uri",
                "https://cli.example/cb",
                "--account",
                "acme",
                "--json",
            ],
        )
        .await
        .trim(),
    )
    .unwrap();
    secrets.push(s(&made, "client_secret"));
    let cli_client = s(&made, "client_id");
    wsoauth(&server, &["app", "delete", &cli_client]).await;
    let rotated_key: Value = serde_json::from_str(wsoauth(&server, &["keys", "rotate"]).await.trim()).unwrap();

    // sign out, sign in again and read the log
    let (_, _, home) = browser.get(&server.url("/")).await;
    let (status, _, _) = browser.post(&server.url("/logout"), &form(&[("csrf_token", &csrf(&home))])).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    browser.login(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
    let (shown, pages) = all_rows(&browser, &server).await;
    assert_eq!(pages.len(), 1);
    let page = &pages[0];
    assert!(page.contains(r#"<a href="/settings/audit">Audit log</a>"#), "the nav links the page");
    assert!(shown.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    assert!(shown.iter().all(|row| row.account.is_none()), "one account: no account column");
    assert!(shown.iter().all(|row| row.ip.is_empty() || row.ip == "127.0.0.1"), "{shown:#?}");
    for row in &shown {
        assert_eq!(Event::parse(&row.event).map(Event::label), Some(row.label.as_str()), "{row:?}");
    }

    let failed = find(&shown, Event::SignInFailed);
    assert_eq!(failed.len(), 1, "only the failure against a member of this account is listed: {failed:#?}");
    assert_eq!(failed[0].detail, format!("email tried: {OWNER_EMAIL}"));
    assert_eq!(failed[0].who, "", "a failed sign-in names nobody");
    assert_eq!(failed[0].time, "2023-11-14 22:13");
    // the client IP of what a browser did (the test server sees 127.0.0.1); none from the command line
    let local = "127.0.0.1";
    for event in [Event::SignInFailed, Event::SignIn, Event::SignOut, Event::ConsentDenied, Event::ConsentGiven] {
        assert!(find(&shown, event).iter().all(|row| row.ip == local), "{event:?}: {shown:#?}");
    }
    for event in [Event::TokenRevoked, Event::AppChanged, Event::AppSecretRegenerated] {
        assert_eq!(one(&shown, event).ip, local, "{event:?}");
    }
    assert_eq!(one(&shown, Event::KeyRotated).ip, "");
    let signed_in = find(&shown, Event::SignIn);
    assert_eq!(signed_in.len(), 4, "the browser twice and two token flows: {signed_in:#?}");
    assert!(signed_in.iter().all(|row| row.who == OWNER_EMAIL));
    assert_eq!(one(&shown, Event::SignOut).who, OWNER_EMAIL);

    let denied = one(&shown, Event::ConsentDenied);
    assert_eq!((denied.who.as_str(), denied.app.as_str()), (OWNER_EMAIL, app_label.as_str()));
    assert_eq!(denied.detail, "scopes asked: users_read");
    let given = one(&shown, Event::ConsentGiven);
    assert_eq!((given.who.as_str(), given.app.as_str()), (OWNER_EMAIL, app_label.as_str()));
    assert_eq!(given.detail, "scopes: tasks_read users_read");

    let issued = find(&shown, Event::TokenIssued);
    assert_eq!(issued.len(), 3);
    assert!(issued.iter().all(|row| row.who == OWNER_EMAIL && row.app == app_label), "{issued:#?}");
    assert!(issued.last().unwrap().detail.ends_with("scopes: tasks_read users_read"), "{issued:#?}");
    let refreshed = one(&shown, Event::TokenRefreshed);
    assert_eq!((refreshed.who.as_str(), refreshed.app.as_str()), (OWNER_EMAIL, app_label.as_str()));
    let replayed = one(&shown, Event::CodeReplayed);
    assert_eq!((replayed.who.as_str(), replayed.app.as_str()), (OWNER_EMAIL, app_label.as_str()));
    let reused = one(&shown, Event::RefreshReused);
    assert_eq!(reused.who, OWNER_EMAIL);
    assert!(reused.detail.contains("revoked"), "{reused:?}");
    let revoked = one(&shown, Event::TokenRevoked);
    assert_eq!((revoked.who.as_str(), revoked.app.as_str()), (OWNER_EMAIL, app_label.as_str()));
    assert!(revoked.detail.contains("/oauth2/revoke"), "{revoked:?}");

    // apps: by the owner through the pages, by nobody through the command line; deleted apps by client id
    let created = find(&shown, Event::AppCreated);
    assert_eq!(created.len(), 2);
    assert_eq!((created[1].who.as_str(), created[1].app.as_str()), (OWNER_EMAIL, client_id.as_str()));
    assert_eq!(created[1].detail, "Audit Tool");
    assert_eq!((created[0].who.as_str(), created[0].app.as_str()), ("", cli_client.as_str()));
    assert!(created[0].detail.contains("CLI Tool") && created[0].detail.contains("command line"));
    let changed = one(&shown, Event::AppChanged);
    assert_eq!(changed.who, OWNER_EMAIL);
    assert!(changed.detail.contains(r#"name "Audit Tool" to "Audit Tool 2""#), "{changed:?}");
    assert!(changed.detail.contains("scopes: tasks_read users_read"), "{changed:?}");
    let rekeyed = one(&shown, Event::AppSecretRegenerated);
    assert_eq!((rekeyed.who.as_str(), rekeyed.app.as_str()), (OWNER_EMAIL, client_id.as_str()));
    let deleted = find(&shown, Event::AppDeleted);
    assert_eq!(deleted.len(), 2);
    assert_eq!((deleted[1].who.as_str(), deleted[1].app.as_str()), (OWNER_EMAIL, client_id.as_str()));
    assert_eq!(deleted[0].app, cli_client);
    let key = one(&shown, Event::KeyRotated);
    assert!(key.detail.contains(&s(&rotated_key, "kid")), "{key:?}");

    // the failures against unknown emails and typed passwords are in the table, without an account
    let stored = server.state().store.audit_events(&[server.account_id], None, 1000).await.unwrap();
    assert_eq!(stored.len(), shown.len());

    // no secret, code, token or password anywhere: not on the page, not in the database
    let database = database_bytes(&server);
    assert!(contains(&database, "email tried: not an email address"), "the typed password was recorded as such");
    assert!(contains(&database, "email tried: nobody@acme.test"));
    for secret in &secrets {
        assert!(!page.contains(secret.as_str()), "the page shows {secret}");
        assert!(!contains(&database, secret), "the database holds {secret}");
        for row in &stored {
            assert!(!row.detail.contains(secret.as_str()) && row.client_id.as_deref() != Some(secret), "{row:?}");
        }
    }
}

#[tokio::test]
async fn only_owners_and_admins_of_the_account_see_its_log() {
    let server = TestServer::start().await;
    let admin_email = "admin@acme.test";
    let user_email = "user@acme.test";
    server.member(server.account_id, admin_email, "admin-password", Role::Admin).await;
    server.member(server.account_id, user_email, "user-password", Role::User).await;
    let beta = wsoauth_server::admin::create_account(server.state(), "Beta", Some("beta")).await.unwrap();
    server.member(beta.id, "owner@beta.test", "beta-password", Role::Owner).await;

    // signed out: to the sign-in page and back
    let (status, location, _) = Browser::new().get(&server.url("/settings/audit")).await;
    assert_eq!((status, location.as_deref()), (StatusCode::SEE_OTHER, Some("/login?next=%2Fsettings%2Faudit")));

    // a user of the account: 403, with the nav link still there on their other pages
    let user = Browser::new();
    user.login(&server, user_email, "user-password").await;
    let (status, _, page) = user.get(&server.url("/settings/audit")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("Only account owners and account admins"), "{page}");
    assert!(rows(&page).is_empty());
    let (_, _, home) = user.get(&server.url("/")).await;
    assert!(home.contains(r#"href="/settings/audit""#));

    // an admin sees the account's events (the user's sign-in among them), not Beta's
    let beta_owner = Browser::new();
    beta_owner.login(&server, "owner@beta.test", "beta-password").await;
    let admin = Browser::new();
    admin.login(&server, admin_email, "admin-password").await;
    let (status, _, page) = admin.get(&server.url("/settings/audit")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let shown = rows(&page);
    let who: Vec<&str> = shown.iter().map(|row| row.who.as_str()).collect();
    assert_eq!(who, [admin_email, user_email], "{shown:#?}");
    // Beta's owner sees only Beta's
    let (_, _, page) = beta_owner.get(&server.url("/settings/audit")).await;
    let who: Vec<String> = rows(&page).into_iter().map(|row| row.who).collect();
    assert_eq!(who, ["owner@beta.test"]);

    // a person managing both accounts sees both, with the account named, and their sign-in once per account
    server.member(beta.id, admin_email, "admin-password", Role::Admin).await;
    let both = Browser::new();
    both.login(&server, admin_email, "admin-password").await;
    let (_, _, page) = both.get(&server.url("/settings/audit")).await;
    let shown = rows(&page);
    assert_eq!(shown.len(), 5, "{shown:#?}");
    let accounts: Vec<&str> = shown.iter().take(2).map(|row| row.account.as_deref().unwrap()).collect();
    assert_eq!(accounts, ["Beta", "Acme"]);
    assert!(shown.iter().take(2).all(|row| row.event == "sign_in" && row.who == admin_email));
}

#[tokio::test]
async fn the_log_is_paged_a_hundred_at_a_time() {
    let server = TestServer::start().await;
    for n in 0..230 {
        let entry = Entry::new().account(server.account_id).detail(format!("event {n}"));
        audit::record(server.state(), Event::AppChanged, entry).await;
    }
    let browser = Browser::new();
    browser.login(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
    let (shown, pages) = all_rows(&browser, &server).await;
    let sizes: Vec<usize> = pages.iter().map(|page| rows(page).len()).collect();
    assert_eq!(sizes, [100, 100, 31]);
    assert!(shown.windows(2).all(|w| w[0].id > w[1].id), "newest first, no repeats");
    assert_eq!(shown[0].event, "sign_in");
    assert_eq!(shown[1].detail, "event 229");
    assert_eq!(shown[230].detail, "event 0");
    assert!(older(&pages[2]).is_none());
    // past the end, and a malformed cursor
    let (status, _, page) = browser.get(&server.url(&format!("/settings/audit?before={}", shown[230].id))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("No older events") && rows(&page).is_empty());
    let (status, _, _) = browser.get(&server.url("/settings/audit?before=x")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn entries_are_purged_after_the_retention() {
    let args = wsoauth_server::config::ConfigArgs { audit_retention: Some("7d".into()), ..Default::default() };
    assert_eq!(args.resolve().unwrap().audit_retention, 7 * 86_400);
    assert_eq!(wsoauth_server::Settings::default().audit_retention, 180 * 86_400);

    let server = TestServer::start().await;
    let store = &server.state().store;
    audit::record(server.state(), Event::SignIn, Entry::new().account(server.account_id).detail("old")).await;
    server.clock.advance(10);
    audit::record(server.state(), Event::SignIn, Entry::new().account(server.account_id).detail("new")).await;
    assert_eq!(store.purge_audit(START + 5).await.unwrap(), 1);
    let left = store.audit_events(&[server.account_id], None, 10).await.unwrap();
    assert_eq!(left.iter().map(|e| e.detail.as_str()).collect::<Vec<_>>(), ["new"]);
}
