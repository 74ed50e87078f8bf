//! The HTML pages over HTTP: sign-in and sign-out, cookies, security headers and CSRF fields, and the API
//! settings where owners register, change, re-key and delete applications.

use reqwest::StatusCode;
use reqwest::header::COOKIE;
use wsoauth_storage::Role;

use crate::authorize::{
    Answer, assert_error_page, exchange_with, fields, get, hidden, owner, post, query_for, redirected, text, with_field,
};
use crate::common::*;

/// The `<form>`s of a page, each up to its `</form>`.
fn forms(html: &str) -> Vec<&str> {
    html.split("<form").skip(1).map(|f| f.split("</form>").next().unwrap()).collect()
}

/// Frame and CSP headers on the answer; a CSRF token in every form. Returns the number of forms.
fn assert_protected(answer: &Answer, context: &str) -> usize {
    let csp = answer.header("content-security-policy").unwrap_or_else(|| panic!("{context}: no CSP"));
    assert!(csp.contains("frame-ancestors 'none'"), "{context}: {csp}");
    assert_eq!(answer.header("x-frame-options"), Some("DENY"), "{context}");
    let forms = forms(&answer.body);
    for form in &forms {
        let token = hidden_fields(form).into_iter().find(|(k, _)| k == "csrf_token").map(|(_, v)| v);
        assert!(token.is_some_and(|t| t.len() >= 32), "{context}: a form without a CSRF token: {form}");
    }
    forms.len()
}

/// `(name, value, attributes in lowercase)` of a `Set-Cookie` header.
fn parse_cookie(header: &str) -> (String, String, Vec<String>) {
    let mut parts = header.split(';').map(str::trim);
    let (name, value) = parts.next().unwrap().split_once('=').unwrap();
    (name.to_owned(), value.to_owned(), parts.map(str::to_ascii_lowercase).collect())
}

fn has(attributes: &[String], attribute: &str) -> bool {
    attributes.iter().any(|a| a == attribute)
}

/// Signs in with a cookie-less client, sending cookies by hand (as a browser would over https, which the
/// test client cannot): returns the login page, the login answer and the `Cookie` header for what followed.
async fn login_by_hand(server: &TestServer, email: &str, password: &str) -> (Answer, Answer, String) {
    let client = plain();
    let page = get(&client, &server.url("/login")).await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = page.set_cookies().into_iter().next().expect("a CSRF cookie");
    let (csrf_name, csrf_value, _) = parse_cookie(&csrf);
    let form = fields(&[
        ("csrf_token", &hidden(&page.body, "csrf_token")),
        ("next", "/"),
        ("email", email),
        ("password", password),
    ]);
    let cookie = format!("{csrf_name}={csrf_value}");
    let response = client.post(server.url("/login")).header(COOKIE, &cookie).form(&form).send().await.unwrap();
    let answer = Answer::of(response).await;
    let session = answer.set_cookies().into_iter().find(|c| !c.starts_with(&format!("{csrf_name}=")));
    let cookie = match session {
        Some(session) => {
            let (name, value, _) = parse_cookie(&session);
            format!("{cookie}; {name}={value}")
        }
        None => cookie,
    };
    (page, answer, cookie)
}

async fn is_signed_in(browser: &Browser, server: &TestServer) -> bool {
    let home = get(&browser.client, &server.url("/")).await;
    match home.status {
        StatusCode::OK => true,
        StatusCode::SEE_OTHER => {
            assert_eq!(home.location(), Some("/login"));
            false
        }
        other => panic!("home: {other}"),
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_email_look_the_same_and_set_no_session() {
    let server = TestServer::start().await;
    let mut statuses = Vec::new();
    for (email, password) in [(OWNER_EMAIL, "wrong-password"), ("nobody@acme.test", OWNER_PASSWORD), (OWNER_EMAIL, "")]
    {
        let browser = Browser::new();
        let page = get(&browser.client, &server.url("/login")).await;
        let form = fields(&[
            ("csrf_token", &hidden(&page.body, "csrf_token")),
            ("next", "/"),
            ("email", email),
            ("password", password),
        ]);
        let answer = post(&browser.client, &server.url("/login"), &form).await;
        assert!(answer.status.is_client_error(), "{email}: {}", answer.status);
        assert_eq!(answer.location(), None);
        assert!(answer.body.contains("Wrong email or password"), "{email}: {}", answer.body);
        assert!(answer.set_cookie("wsoauth_session").is_none(), "{:?}", answer.set_cookies());
        assert_eq!(answer.set_cookies().iter().filter(|c| c.contains("session")).count(), 0);
        assert!(!is_signed_in(&browser, &server).await, "{email}");
        statuses.push(answer.status);
    }
    assert!(statuses.windows(2).all(|w| w[0] == w[1]), "{statuses:?}");
    // and the right password does sign in
    let (_, answer, _) = login_by_hand(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert!(answer.set_cookie("wsoauth_session").is_some());
}

#[tokio::test]
async fn login_refuses_a_missing_or_wrong_csrf_token() {
    let server = TestServer::start().await;
    let browser = Browser::new();
    let page = get(&browser.client, &server.url("/login")).await;
    let good = hidden(&page.body, "csrf_token");
    let base = fields(&[("next", "/"), ("email", OWNER_EMAIL), ("password", OWNER_PASSWORD)]);
    for (label, form) in [
        ("missing", base.clone()),
        ("empty", with_field(&base, "csrf_token", "")),
        ("wrong", with_field(&base, "csrf_token", &"x".repeat(43))),
        ("truncated", with_field(&base, "csrf_token", &good[..good.len() - 1])),
    ] {
        let answer = post(&browser.client, &server.url("/login"), &form).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{label}");
        assert!(answer.set_cookie("wsoauth_session").is_none(), "{label}");
        assert!(!is_signed_in(&browser, &server).await, "{label}");
    }
    // a token without its cookie (another browser's) is refused too
    let answer = post(&plain(), &server.url("/login"), &with_field(&base, "csrf_token", &good)).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(answer.set_cookie("wsoauth_session").is_none());
    // the right token signs in
    let answer = post(&browser.client, &server.url("/login"), &with_field(&base, "csrf_token", &good)).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert!(is_signed_in(&browser, &server).await);
}

#[tokio::test]
async fn next_only_ever_leads_to_a_local_path() {
    let server = TestServer::start().await;
    let hostile = [
        "//evil.example",
        "//evil.example/path",
        "https://evil.example",
        "http://evil.example/",
        "/\\evil.example",
        "\\\\evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        "/\r\n/evil.example",
        "/\t\\evil.example",
        "javascript:alert(1)",
        " //evil.example",
        "evil.example",
        "",
    ];
    for next in hostile {
        let browser = Browser::new();
        let (status, location, body) = browser.try_login(&server, OWNER_EMAIL, OWNER_PASSWORD, next).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{next:?}: {body}");
        assert_eq!(location.as_deref(), Some("/"), "{next:?}");
        // signed in, /login?next=... sends there at once: also only locally
        let answer = get(&browser.client, &server.url(&format!("/login?next={}", encode(next)))).await;
        assert_eq!((answer.status, answer.location()), (StatusCode::SEE_OTHER, Some("/")), "{next:?}");
        // and the login form does not carry it
        let page = get(&plain(), &server.url(&format!("/login?next={}", encode(next)))).await;
        assert_eq!(hidden(&page.body, "next"), "/", "{next:?}");
    }
    let browser = Browser::new();
    let (_, location, _) = browser.try_login(&server, OWNER_EMAIL, OWNER_PASSWORD, "/settings/api").await;
    assert_eq!(location.as_deref(), Some("/settings/api"));
}

fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[tokio::test]
async fn sign_out_ends_the_session() {
    let server = TestServer::start().await;
    // a first session, signed in by hand so its cookie can be replayed later
    let (page, login, cookies) = login_by_hand(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
    let (_, session, _) = parse_cookie(&login.set_cookie("wsoauth_session").expect("a session cookie"));
    let old = format!("wsoauth_session={session}");
    let authorize = server.url(&format!("/oauth2/authorize?{}", server.authorize_query("users_read", "s")));
    let replay =
        async |cookie: &str| Answer::of(plain().get(&authorize).header(COOKIE, cookie).send().await.unwrap()).await;
    assert_eq!(replay(&old).await.status, StatusCode::OK, "the session cookie alone signs in");

    // a second session in a browser: sign-out needs the CSRF token, then ends the session
    let browser = owner(&server).await;
    let home = get(&browser.client, &server.url("/")).await;
    assert_eq!(home.status, StatusCode::OK);
    let csrf = hidden(&home.body, "csrf_token");
    let refused = post(&browser.client, &server.url("/logout"), &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "sign-out needs the CSRF token");
    assert!(is_signed_in(&browser, &server).await);
    let out = post(&browser.client, &server.url("/logout"), &fields(&[("csrf_token", &csrf)])).await;
    assert_eq!((out.status, out.location()), (StatusCode::SEE_OTHER, Some("/login")));
    let removal = out.set_cookie("wsoauth_session").expect("the session cookie is removed");
    assert!(has(&parse_cookie(&removal).2, "max-age=0"), "{removal}");
    assert!(!is_signed_in(&browser, &server).await);
    let again = get(&browser.client, &authorize).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert!(again.location().unwrap().starts_with("/login?next="), "{:?}", again.location());

    // signing one browser out leaves the other session alone; ending it makes its cookie worthless
    assert_eq!(replay(&old).await.status, StatusCode::OK);
    let form = fields(&[("csrf_token", &hidden(&page.body, "csrf_token"))]);
    let logout = plain().post(server.url("/logout")).header(COOKIE, &cookies).form(&form).send().await.unwrap();
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    let replayed = replay(&old).await;
    assert_eq!(replayed.status, StatusCode::SEE_OTHER, "an ended session is refused");
    assert!(replayed.location().unwrap().starts_with("/login?next="));
    assert!(!is_signed_in_with(&server, &cookies).await);
}

async fn is_signed_in_with(server: &TestServer, cookies: &str) -> bool {
    let home = Answer::of(plain().get(server.url("/")).header(COOKIE, cookies).send().await.unwrap()).await;
    home.status == StatusCode::OK
}

#[tokio::test]
async fn cookies_are_http_only_and_lax_and_secure_under_https() {
    for (https, prefix) in [(false, ""), (true, "__Host-")] {
        let server = if https {
            TestServer::start_with(|s| s.public_url = Some("https://auth.example.test".into())).await
        } else {
            TestServer::start().await
        };
        let (page, login, cookies) = login_by_hand(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
        assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.body);
        let csrf =
            page.set_cookie(&format!("{prefix}wsoauth_csrf")).unwrap_or_else(|| panic!("{:?}", page.set_cookies()));
        let session = login
            .set_cookie(&format!("{prefix}wsoauth_session"))
            .unwrap_or_else(|| panic!("{:?}", login.set_cookies()));
        for cookie in [&csrf, &session] {
            let (_, value, attributes) = parse_cookie(cookie);
            assert!(value.len() >= 43, "{cookie}");
            assert!(has(&attributes, "httponly"), "{cookie}");
            assert!(has(&attributes, "samesite=lax"), "{cookie}");
            assert!(has(&attributes, "path=/"), "{cookie}");
            assert!(!attributes.iter().any(|a| a.starts_with("domain")), "{cookie}");
            assert_eq!(has(&attributes, "secure"), https, "{cookie}");
        }
        // the cookies, sent back, are the session
        let home = Answer::of(plain().get(server.url("/")).header(COOKIE, &cookies).send().await.unwrap()).await;
        assert_eq!(home.status, StatusCode::OK, "{https}");
        assert!(home.body.contains("Hello, Olga Owner"));
        // signing out removes the cookie with attributes the browser accepts for it (a __Host- cookie needs Secure)
        let out = plain()
            .post(server.url("/logout"))
            .header(COOKIE, &cookies)
            .form(&fields(&[("csrf_token", &hidden(&page.body, "csrf_token"))]))
            .send()
            .await
            .unwrap();
        let out = Answer::of(out).await;
        assert_eq!(out.status, StatusCode::SEE_OTHER);
        let removal = out.set_cookie(&format!("{prefix}wsoauth_session")).expect("a removal cookie");
        let (_, _, attributes) = parse_cookie(&removal);
        assert!(has(&attributes, "max-age=0") && has(&attributes, "path=/"), "{removal}");
        assert_eq!(has(&attributes, "secure"), https, "{removal}");
    }
}

#[tokio::test]
async fn every_page_forbids_framing_and_every_form_has_a_csrf_token() {
    let server = TestServer::start().await;
    let beta = wsoauth_server::admin::create_account(server.state(), "Beta", Some("beta")).await.unwrap();
    let browser = Browser::new();
    let mut seen = Vec::new();
    let mut check = |label: &str, answer: Answer, min_forms: usize| {
        let forms = assert_protected(&answer, label);
        assert!(forms >= min_forms, "{label}: {forms} forms: {}", answer.body);
        seen.push(label.to_owned());
        answer
    };
    let login = check("login page", get(&browser.client, &server.url("/login")).await, 1);
    let form = fields(&[("csrf_token", &hidden(&login.body, "csrf_token")), ("next", "/"), ("email", OWNER_EMAIL)]);
    check(
        "failed login",
        post(&browser.client, &server.url("/login"), &with_field(&form, "password", "nope")).await,
        1,
    );
    check(
        "refused login",
        post(&browser.client, &server.url("/login"), &with_field(&form, "csrf_token", "x")).await,
        1,
    );
    check("signed-out home", get(&browser.client, &server.url("/")).await, 0);
    check(
        "login",
        post(&browser.client, &server.url("/login"), &with_field(&form, "password", OWNER_PASSWORD)).await,
        0,
    );
    check("home", get(&browser.client, &server.url("/")).await, 1);
    let settings = check("API settings", get(&browser.client, &server.url("/settings/api")).await, 2);
    let edit_url = server.url(&format!("/settings/api/apps/{}", server.client_id));
    check("app edit page", get(&browser.client, &edit_url).await, 4);
    let query = server.authorize_query("users_read", "s");
    check("consent", get(&browser.client, &server.url(&format!("/oauth2/authorize?{query}"))).await, 2);
    check("authorize error", get(&browser.client, &server.url("/oauth2/authorize?client_id=nope")).await, 0);
    check("not found", get(&browser.client, &server.url("/nope")).await, 0);
    let csrf = hidden(&settings.body, "csrf_token");
    let new_app = fields(&[
        ("csrf_token", &csrf),
        ("account_id", &server.account_id.to_string()),
        ("name", "Headers"),
        ("redirect_uris", "https://headers.example/cb"),
        ("scopes", "users_read"),
    ]);
    check("secret page", post(&browser.client, &server.url("/settings/api/apps"), &new_app).await, 1);
    check(
        "bad app form",
        post(&browser.client, &server.url("/settings/api/apps"), &with_field(&new_app, "name", "")).await,
        2,
    );
    let rekey = fields(&[("csrf_token", &csrf)]);
    check("new secret page", post(&browser.client, &format!("{edit_url}/secret"), &rekey).await, 1);
    check("refused form", post(&browser.client, &format!("{edit_url}/secret"), &[]).await, 0);
    server.member(beta.id, OWNER_EMAIL, OWNER_PASSWORD, Role::Admin).await;
    let select =
        check("account choice", get(&browser.client, &server.url(&format!("/oauth2/authorize?{query}"))).await, 1);
    assert!(select.body.contains("Choose an account"));
    assert_eq!(seen.len(), 16);
}

/// The text of the element with `id` (up to the next tag).
fn element(html: &str, id: &str) -> String {
    let rest = html.split_once(&format!(r#"id="{id}">"#)).unwrap_or_else(|| panic!("no #{id}: {html}")).1;
    unescape(rest.split('<').next().unwrap())
}

/// Only characters that need no encoding anywhere (RFC 3986 unreserved).
fn assert_unreserved(value: &str, what: &str) {
    assert!(value.bytes().all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b)), "{what}: {value:?}");
}

fn assert_credentials(client_id: &str, secret: &str) {
    assert_unreserved(client_id, "client id");
    assert_unreserved(secret, "client secret");
    assert!(!client_id.is_empty());
    assert!(secret.len() >= 43, "{secret:?} is too short");
}

/// The register form of the account on the API settings page.
fn register_form(settings: &str, account_id: i64) -> Vec<(String, String)> {
    let form = forms(settings)
        .into_iter()
        .find(|f| f.contains(r#"class="new-app""#) && f.contains(&format!(r#"name="account_id" value="{account_id}""#)))
        .unwrap_or_else(|| panic!("no register form for {account_id}: {settings}"));
    hidden_fields(form)
}

/// Posts the register form; returns the answer.
async fn register(browser: &Browser, server: &TestServer, name: &str, uris: &str, scopes: &[&str]) -> Answer {
    let settings = get(&browser.client, &server.url("/settings/api")).await;
    let mut form = register_form(&settings.body, server.account_id);
    form.extend(fields(&[("name", name), ("redirect_uris", uris)]));
    form.extend(scopes.iter().map(|s| ("scopes".to_owned(), (*s).to_owned())));
    post(&browser.client, &server.url("/settings/api/apps"), &form).await
}

/// Signs in through the consent page with `browser`, approves and exchanges the code.
async fn flow(
    browser: &Browser,
    server: &TestServer,
    client: (&str, &str),
    redirect_uri: &str,
    scope: &str,
) -> (StatusCode, serde_json::Value) {
    let location = browser.approve(server, &query_for(client.0, redirect_uri, Some(scope), "st")).await;
    assert!(location.starts_with(redirect_uri), "{location}");
    let code = query_param(&location, "code").unwrap_or_else(|| panic!("{location}"));
    exchange_with(server, client.0, client.1, redirect_uri, &code).await
}

async fn refresh_with(
    server: &TestServer,
    client_id: &str,
    secret: &str,
    token: &str,
) -> (StatusCode, serde_json::Value) {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", token),
        ("client_id", client_id),
        ("client_secret", secret),
    ];
    let response = plain().post(server.url("/oauth2/token")).form(&form).send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

async fn app_count(server: &TestServer) -> usize {
    server.state().store.apps(Some(server.account_id)).await.unwrap().len()
}

#[tokio::test]
async fn owner_registers_uses_edits_rekeys_and_deletes_an_app() {
    let server = TestServer::start().await;
    assert_credentials(&server.client_id, &server.client_secret);
    let browser = owner(&server).await;
    let settings = get(&browser.client, &server.url("/settings/api")).await;
    assert_eq!(settings.status, StatusCode::OK);
    for scope in wsoauth_types::Scope::ALL {
        assert!(settings.body.contains(&format!(r#"name="scopes" value="{}""#, scope.as_str())), "{scope}");
    }

    // register: two redirect URIs, as a browser sends a textarea (CRLF), two scopes
    let local = "http://127.0.0.1:8765/callback";
    let created = register(
        &browser,
        &server,
        "Reporting Tool",
        &format!("https://reports.example/cb\r\n{local}\r\n"),
        &["users_read", "tasks_read"],
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let client_id = element(&created.body, "client-id");
    let secret = element(&created.body, "client-secret");
    assert_credentials(&client_id, &secret);
    assert_ne!(client_id, server.client_id);
    assert!(created.body.contains("Reporting Tool"));

    // the secret is never shown again
    let settings = get(&browser.client, &server.url("/settings/api")).await;
    assert!(settings.body.contains(&client_id) && settings.body.contains("Reporting Tool"));
    assert!(settings.body.contains("https://reports.example/cb") && settings.body.contains(local));
    assert!(!settings.body.contains(&secret), "the settings page shows the secret");
    let edit_url = server.url(&format!("/settings/api/apps/{client_id}"));
    let edit = get(&browser.client, &edit_url).await;
    assert_eq!(edit.status, StatusCode::OK);
    assert!(!edit.body.contains(&secret), "the edit page shows the secret");

    // the credentials work, with either redirect URI; the app's scopes are what it registered
    for uri in ["https://reports.example/cb", local] {
        let (status, tokens) = flow(&browser, &server, (&client_id, &secret), uri, "").await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        assert_eq!(tokens["scope"], "tasks_read users_read");
        assert_eq!(server.api(&text(&tokens, "access_token"), "me").await.0, StatusCode::OK);
    }
    let refused = get(
        &browser.client,
        &server.url(&format!("/oauth2/authorize?{}", query_for(&client_id, local, Some("projects_read"), "st"))),
    )
    .await;
    assert_eq!(redirected(&refused, local).iter().find(|(k, _)| k == "error").unwrap().1, "invalid_scope");

    // edit: name, redirect URIs and scopes change
    let form = fields(&[
        ("csrf_token", &hidden(&edit.body, "csrf_token")),
        ("name", "Reports v2"),
        ("redirect_uris", "https://reports.example/v2/cb"),
        ("scopes", "projects_read"),
        ("scopes", "users_read"),
    ]);
    let saved = post(&browser.client, &edit_url, &form).await;
    assert_eq!((saved.status, saved.location()), (StatusCode::SEE_OTHER, Some("/settings/api")), "{}", saved.body);
    let edit = get(&browser.client, &edit_url).await;
    assert!(edit.body.contains(r#"value="Reports v2""#), "{}", edit.body);
    assert!(edit.body.contains("https://reports.example/v2/cb") && !edit.body.contains(local));
    assert!(
        edit.body.contains(r#"value="projects_read" checked>"#) && edit.body.contains(r#"value="users_read" checked>"#)
    );
    assert!(edit.body.contains(r#"value="tasks_read">"#), "tasks_read is no longer allowed");
    let old_uri =
        get(&browser.client, &server.url(&format!("/oauth2/authorize?{}", query_for(&client_id, local, None, "st"))))
            .await;
    assert_error_page(&old_uri, "a redirect URI removed by the edit");
    let new_uri = "https://reports.example/v2/cb";
    let refused = get(
        &browser.client,
        &server.url(&format!("/oauth2/authorize?{}", query_for(&client_id, new_uri, Some("tasks_read"), "st"))),
    )
    .await;
    assert_eq!(redirected(&refused, new_uri).iter().find(|(k, _)| k == "error").unwrap().1, "invalid_scope");
    let consent =
        get(&browser.client, &server.url(&format!("/oauth2/authorize?{}", query_for(&client_id, new_uri, None, "st"))))
            .await;
    assert!(consent.body.contains("Reports v2"), "{}", consent.body);
    let (status, tokens) = flow(&browser, &server, (&client_id, &secret), new_uri, "").await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["scope"], "projects_read users_read");

    // a new secret: the old one stops working at once, the new one works
    let rekeyed = post(
        &browser.client,
        &format!("{edit_url}/secret"),
        &fields(&[("csrf_token", &hidden(&edit.body, "csrf_token"))]),
    )
    .await;
    assert_eq!(rekeyed.status, StatusCode::OK, "{}", rekeyed.body);
    let new_secret = element(&rekeyed.body, "client-secret");
    assert_eq!(element(&rekeyed.body, "client-id"), client_id);
    assert_credentials(&client_id, &new_secret);
    assert_ne!(new_secret, secret);
    let location = browser.approve(&server, &query_for(&client_id, new_uri, None, "st")).await;
    let code = query_param(&location, "code").unwrap();
    let (status, body) = exchange_with(&server, &client_id, &secret, new_uri, &code).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")), "{body}");
    let (status, tokens) = exchange_with(&server, &client_id, &new_secret, new_uri, &code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = text(&tokens, "access_token");
    assert_eq!(server.api(&access, "me").await.0, StatusCode::OK);
    let settings = get(&browser.client, &server.url("/settings/api")).await;
    assert!(!settings.body.contains(&new_secret));

    // delete: the app and its tokens are gone
    let deleted = post(
        &browser.client,
        &format!("{edit_url}/delete"),
        &fields(&[("csrf_token", &hidden(&edit.body, "csrf_token"))]),
    )
    .await;
    assert_eq!((deleted.status, deleted.location()), (StatusCode::SEE_OTHER, Some("/settings/api")));
    let settings = get(&browser.client, &server.url("/settings/api")).await;
    assert!(!settings.body.contains(&client_id) && settings.body.contains(&server.client_id));
    assert_eq!(server.api(&access, "me").await.0, StatusCode::UNAUTHORIZED);
    let (status, body) = refresh_with(&server, &client_id, &new_secret, &text(&tokens, "refresh_token")).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")), "{body}");
    assert_eq!(get(&browser.client, &edit_url).await.status, StatusCode::NOT_FOUND);
    let gone =
        get(&browser.client, &server.url(&format!("/oauth2/authorize?{}", query_for(&client_id, new_uri, None, "st"))))
            .await;
    assert_error_page(&gone, "a deleted app");
    // the other app is untouched
    server.tokens("users_read").await;
}

#[tokio::test]
async fn bad_app_input_shows_the_form_again_and_creates_nothing() {
    let server = TestServer::start().await;
    let browser = owner(&server).await;
    let good = "https://ok.example/cb";
    let cases: [(&str, &str, &str, &[&str]); 10] = [
        ("http on a public host", "Bad", "http://evil.example/cb", &["users_read"]),
        ("fragment", "Bad", "https://ok.example/cb#frag", &["users_read"]),
        ("one bad line among good", "Bad", "https://ok.example/cb\r\nhttp://evil.example/cb", &["users_read"]),
        ("relative", "Bad", "/cb", &["users_read"]),
        ("javascript", "Bad", "javascript:alert(1)", &["users_read"]),
        ("no redirect URI", "Bad", "", &["users_read"]),
        ("empty name", "", good, &["users_read"]),
        ("blank name", "   ", good, &["users_read"]),
        ("no scopes", "Bad", good, &[]),
        ("unknown scope", "Bad", good, &["all"]),
    ];
    for (label, name, uris, scopes) in cases {
        let answer = register(&browser, &server, name, uris, scopes).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{label}: {}", answer.body);
        assert!(answer.is_html(), "{label}");
        assert!(answer.body.contains(r#"id="error""#), "{label}: {}", answer.body);
        assert!(answer.body.contains(r#"class="new-app""#), "{label}: the form is shown again");
        assert!(!answer.body.contains("client-secret"), "{label}");
        assert_eq!(app_count(&server).await, 1, "{label}: an app was created");
    }

    // the edit form refuses the same, and the app keeps what it had
    let edit_url = server.url(&format!("/settings/api/apps/{}", server.client_id));
    let edit = get(&browser.client, &edit_url).await;
    let csrf = hidden(&edit.body, "csrf_token");
    for (label, name, uris, scope) in [
        ("http", "X", "http://evil.example/cb", "users_read"),
        ("name", "", good, "users_read"),
        ("fragment", "X", "https://ok.example/#f", "users_read"),
    ] {
        let form = fields(&[("csrf_token", &csrf), ("name", name), ("redirect_uris", uris), ("scopes", scope)]);
        let answer = post(&browser.client, &edit_url, &form).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{label}");
        assert!(answer.body.contains(r#"id="error""#), "{label}");
    }
    let form = fields(&[("csrf_token", &csrf), ("name", "X"), ("redirect_uris", good)]);
    assert_eq!(post(&browser.client, &edit_url, &form).await.status, StatusCode::BAD_REQUEST, "no scopes");
    let app = server.state().store.app_by_client_id(&server.client_id).await.unwrap().unwrap();
    assert_eq!(app.name, "Client App");
    assert_eq!(app.redirect_uris, [REDIRECT, "http://127.0.0.1:9/cb"]);

    // an account the person does not manage, or none
    let beta = wsoauth_server::admin::create_account(server.state(), "Beta", Some("beta")).await.unwrap();
    let settings = get(&browser.client, &server.url("/settings/api")).await;
    let form = register_form(&settings.body, server.account_id);
    let form = [form, fields(&[("name", "Sneaky"), ("redirect_uris", good), ("scopes", "users_read")])].concat();
    for account in [beta.id.to_string(), String::new(), "x".into()] {
        let answer =
            post(&browser.client, &server.url("/settings/api/apps"), &with_field(&form, "account_id", &account)).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "account {account:?}");
    }
    assert!(server.state().store.apps(Some(beta.id)).await.unwrap().is_empty());
    // no CSRF token, no app
    let answer = post(&browser.client, &server.url("/settings/api/apps"), &with_field(&form, "csrf_token", "")).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(app_count(&server).await, 1);
    // the untouched form does register
    assert_eq!(post(&browser.client, &server.url("/settings/api/apps"), &form).await.status, StatusCode::OK);
    assert_eq!(app_count(&server).await, 2);
}

#[tokio::test]
async fn a_plain_member_cannot_manage_apps() {
    let server = TestServer::start().await;
    server.member(server.account_id, "user@acme.test", "user-password", Role::User).await;
    let browser = Browser::new();
    browser.login(&server, "user@acme.test", "user-password").await;
    let settings = get(&browser.client, &server.url("/settings/api")).await;
    assert_eq!(settings.status, StatusCode::OK);
    assert!(!settings.body.contains(r#"class="new-app""#), "{}", settings.body);
    assert!(!settings.body.contains(&server.client_id));
    assert!(settings.body.contains("Only account owners and admins"));
    let csrf = hidden(&settings.body, "csrf_token");
    let form = fields(&[
        ("csrf_token", &csrf),
        ("account_id", &server.account_id.to_string()),
        ("name", "Mine"),
        ("redirect_uris", "https://mine.example/cb"),
        ("scopes", "users_read"),
    ]);
    let answer = post(&browser.client, &server.url("/settings/api/apps"), &form).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    assert_eq!(app_count(&server).await, 1);

    let edit_url = server.url(&format!("/settings/api/apps/{}", server.client_id));
    assert_eq!(get(&browser.client, &edit_url).await.status, StatusCode::NOT_FOUND);
    let change = fields(&[
        ("csrf_token", &csrf),
        ("name", "Taken"),
        ("redirect_uris", "https://mine.example/cb"),
        ("scopes", "users_read"),
    ]);
    assert_eq!(post(&browser.client, &edit_url, &change).await.status, StatusCode::NOT_FOUND);
    let token = fields(&[("csrf_token", &csrf)]);
    assert_eq!(post(&browser.client, &format!("{edit_url}/secret"), &token).await.status, StatusCode::NOT_FOUND);
    assert_eq!(post(&browser.client, &format!("{edit_url}/delete"), &token).await.status, StatusCode::NOT_FOUND);
    // nothing changed: the owner's app keeps its name, URIs and secret
    let app = server.state().store.app_by_client_id(&server.client_id).await.unwrap().unwrap();
    assert_eq!(app.name, "Client App");
    server.tokens("users_read").await;

    // an account admin does manage apps
    server.member(server.account_id, "admin@acme.test", "admin-password", Role::Admin).await;
    let admin = Browser::new();
    admin.login(&server, "admin@acme.test", "admin-password").await;
    let settings = get(&admin.client, &server.url("/settings/api")).await;
    assert!(settings.body.contains(r#"class="new-app""#) && settings.body.contains(&server.client_id));
    assert_eq!(get(&admin.client, &edit_url).await.status, StatusCode::OK);
}

#[tokio::test]
async fn odd_input_on_pages_is_never_a_server_error() {
    let server = TestServer::start().await;
    let browser = owner(&server).await;
    let long = "a".repeat(5000);
    for path in [
        "/oauth2/authorize?%ZZ=%ZZ".to_owned(),
        "/oauth2/authorize?client_id=%FF%FE&redirect_uri=%00".to_owned(),
        format!("/oauth2/authorize?client_id={long}&redirect_uri={long}"),
        format!(
            "/oauth2/authorize?client_id={}&redirect_uri={}&response_type=code&user=-1",
            server.client_id, "https%3A%2F%2Fclient.example%2Fcb"
        ),
        "/login?next=%FF%00".to_owned(),
        format!("/settings/api/apps/{long}"),
        "/settings/api/apps/%00".to_owned(),
    ] {
        let answer = get(&browser.client, &server.url(&path)).await;
        assert!(!answer.status.is_server_error(), "{path}: {}", answer.status);
    }
    let bodies: [(&str, &[u8]); 4] = [
        ("application/x-www-form-urlencoded", b"csrf_token=%FF&name=\xff\xfe"),
        ("application/json", b"{not json"),
        ("application/json", b"[1,2]"),
        ("text/plain", b"\x00\x01"),
    ];
    for path in [
        "/login",
        "/logout",
        "/oauth2/authorize",
        "/settings/api/apps",
        "/settings/api/apps/x",
        "/settings/api/apps/x/secret",
    ] {
        for (content_type, body) in bodies {
            let response = browser
                .client
                .post(server.url(path))
                .header("content-type", content_type)
                .body(body.to_vec())
                .send()
                .await
                .unwrap();
            assert!(!response.status().is_server_error(), "{path} {content_type}: {}", response.status());
            assert!(response.status().is_client_error(), "{path} {content_type}: {}", response.status());
        }
    }
}

#[tokio::test]
async fn sessions_end_after_the_idle_time_and_after_their_lifetime() {
    let server = TestServer::start().await;
    let browser = Browser::new();
    browser.login(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
    // pages viewed now and then keep the session alive past the idle time
    for _ in 0..3 {
        server.clock.advance(3000);
        let (status, _, _) = browser.get(&server.url("/")).await;
        assert_eq!(status, StatusCode::OK);
    }
    // an hour without a page view ends it
    server.clock.advance(3601);
    let (status, location, _) = browser.get(&server.url("/")).await;
    assert_eq!((status, location.as_deref()), (StatusCode::SEE_OTHER, Some("/login")));

    // and so does the 12-hour lifetime, however busy the session is
    browser.login(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
    for _ in 0..15 {
        server.clock.advance(3000);
        browser.get(&server.url("/")).await;
    }
    let (status, _, _) = browser.get(&server.url("/")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}
