//! `/oauth2/authorize` over HTTP (RFC 6749 §4.1.1, §4.1.2, §4.1.2.1): sign-in detour, consent, account choice,
//! errors shown as pages versus errors sent back to the app, scope lists, and the codes it issues.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, LOCATION, SET_COOKIE};
use serde_json::Value;
use wsoauth_storage::Role;
use wsoauth_types::ScopeSet;

use crate::common::*;

/// One HTTP answer, whole.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub(crate) async fn of(response: reqwest::Response) -> Answer {
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap();
        Answer { status, headers, body }
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    pub(crate) fn location(&self) -> Option<&str> {
        self.headers.get(LOCATION).map(|v| v.to_str().unwrap())
    }

    /// Every `Set-Cookie` header.
    pub(crate) fn set_cookies(&self) -> Vec<String> {
        self.headers.get_all(SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect()
    }

    /// The `Set-Cookie` header for cookie `name`, if any.
    pub(crate) fn set_cookie(&self, name: &str) -> Option<String> {
        self.set_cookies().into_iter().find(|c| c.starts_with(&format!("{name}=")))
    }

    pub(crate) fn is_html(&self) -> bool {
        self.header(CONTENT_TYPE.as_str()).is_some_and(|t| t.starts_with("text/html"))
    }
}

pub(crate) async fn get(client: &reqwest::Client, url: &str) -> Answer {
    Answer::of(client.get(url).send().await.unwrap()).await
}

pub(crate) async fn post(client: &reqwest::Client, url: &str, form: &[(String, String)]) -> Answer {
    Answer::of(client.post(url).form(form).send().await.unwrap()).await
}

/// Owned form fields.
pub(crate) fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// Replaces (or adds) one field of a form.
pub(crate) fn with_field(form: &[(String, String)], key: &str, value: &str) -> Vec<(String, String)> {
    let mut form: Vec<_> = form.iter().filter(|(k, _)| k != key).cloned().collect();
    form.push((key.to_owned(), value.to_owned()));
    form
}

/// The value of a hidden field.
pub(crate) fn hidden(html: &str, name: &str) -> String {
    hidden_fields(html).into_iter().find(|(k, _)| k == name).unwrap_or_else(|| panic!("no hidden {name} in {html}")).1
}

/// The query of an authorization request with `response_type=code`; `scope: None` leaves the parameter out.
pub(crate) fn query_for(client_id: &str, redirect_uri: &str, scope: Option<&str>, state: &str) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("client_id", client_id).append_pair("response_type", "code");
    query.append_pair("redirect_uri", redirect_uri).append_pair("state", state);
    if let Some(scope) = scope {
        query.append_pair("scope", scope);
    }
    query.finish()
}

/// Exchanges a code with the given client credentials in the form body.
pub(crate) async fn exchange_with(
    server: &TestServer,
    client_id: &str,
    secret: &str,
    redirect_uri: &str,
    code: &str,
) -> (StatusCode, Value) {
    let response = plain()
        .post(server.url("/oauth2/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", client_id),
            ("client_secret", secret),
        ])
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

/// `/oauth2/resource` for an access token.
pub(crate) async fn resource(server: &TestServer, access_token: &str) -> Value {
    let response = plain().get(server.url("/oauth2/resource")).bearer_auth(access_token).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

pub(crate) fn text(value: &Value, key: &str) -> String {
    value[key].as_str().unwrap_or_else(|| panic!("{key} in {value}")).to_owned()
}

/// An error shown to the person: a 4xx HTML page, never a redirect.
pub(crate) fn assert_error_page(answer: &Answer, context: &str) {
    assert!(answer.status.is_client_error(), "{context}: status {} {}", answer.status, answer.body);
    assert!(answer.is_html(), "{context}: not HTML: {:?}", answer.headers);
    assert_eq!(answer.location(), None, "{context}: must not redirect");
    assert!(answer.body.contains(r#"id="error""#), "{context}: no error message: {}", answer.body);
    assert!(!answer.body.contains("code="), "{context}: {}", answer.body);
}

/// The redirect back to `redirect_uri` (which keeps its own query): its full query, parsed.
pub(crate) fn redirected(answer: &Answer, redirect_uri: &str) -> Vec<(String, String)> {
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    redirect_params(answer.location().expect("a redirect"), redirect_uri)
}

/// The full query of a `location` that answers to `redirect_uri`, parsed.
fn redirect_params(location: &str, redirect_uri: &str) -> Vec<(String, String)> {
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    let rest = location
        .strip_prefix(&format!("{redirect_uri}{separator}"))
        .unwrap_or_else(|| panic!("{location} is not an answer to {redirect_uri}"));
    assert!(!rest.contains('#'), "{location}");
    let query = location.split_once('?').unwrap().1;
    form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    let mut values = params.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let first = values.next();
    assert_eq!(values.next(), None, "{key} is repeated in {params:?}");
    first
}

/// An error sent back to the app with `error`, a description and the state.
fn assert_redirected_error(answer: &Answer, redirect_uri: &str, error: &str, state: &str, context: &str) {
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{context}: {}", answer.body);
    assert_error_params(answer.location().expect("a redirect"), redirect_uri, error, state, context);
}

fn assert_error_params(location: &str, redirect_uri: &str, error: &str, state: &str, context: &str) {
    let params = redirect_params(location, redirect_uri);
    assert_eq!(param(&params, "error"), Some(error), "{context}: {params:?}");
    assert!(param(&params, "error_description").is_some_and(|d| !d.is_empty()), "{context}: {params:?}");
    assert_eq!(param(&params, "state"), Some(state), "{context}: {params:?}");
    assert_eq!(param(&params, "code"), None, "{context}: {params:?}");
}

/// A browser with the owner signed in.
pub(crate) async fn owner(server: &TestServer) -> Browser {
    let browser = Browser::new();
    browser.login(server, OWNER_EMAIL, OWNER_PASSWORD).await;
    browser
}

fn authorize_url(server: &TestServer, query: &str) -> String {
    server.url(&format!("/oauth2/authorize?{query}"))
}

fn encoded(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[tokio::test]
async fn signed_out_goes_to_login_and_comes_back_to_consent() {
    let server = TestServer::start().await;
    let browser = Browser::new();
    let query = server.authorize_query("tasks_read,users_read", "xyz");
    let first = get(&browser.client, &authorize_url(&server, &query)).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.body);
    let login = first.location().unwrap().to_owned();
    assert!(login.starts_with("/login?next="), "{login}");
    let next = query_param(&login, "next").unwrap();
    assert!(next.starts_with("/oauth2/authorize?"), "{next}");
    for (key, value) in [("client_id", server.client_id.as_str()), ("redirect_uri", REDIRECT), ("state", "xyz")] {
        assert_eq!(query_param(&next, key).as_deref(), Some(value), "{next}");
    }
    assert_eq!(query_param(&next, "scope").as_deref(), Some("tasks_read,users_read"));

    // the login page carries next through its form
    let page = get(&browser.client, &server.url(&login)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(hidden(&page.body, "next"), next);
    let form = with_field(&with_field(&hidden_fields(&page.body), "email", OWNER_EMAIL), "password", OWNER_PASSWORD);
    let signed_in = post(&browser.client, &server.url("/login"), &form).await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER, "{}", signed_in.body);
    assert_eq!(signed_in.location(), Some(next.as_str()));

    let consent = get(&browser.client, &server.url(&next)).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.body);
    assert!(consent.body.contains(r#"id="allow""#) && consent.body.contains(r#"id="deny""#));
    let words = unescape(&consent.body);
    assert!(words.contains("Client App"), "{words}");
    assert!(words.contains("<strong>Acme</strong>"), "{words}");
    assert!(words.contains("Olga Owner") && words.contains(OWNER_EMAIL), "{words}");
    let requested = ScopeSet::parse("tasks_read users_read").unwrap();
    for scope in ScopeSet::all().iter() {
        assert_eq!(words.contains(scope.description()), requested.contains(scope), "{scope}: {words}");
    }

    let mut form = consent_fields(&consent.body);
    form.push(("decision".into(), "allow".into()));
    let back = post(&browser.client, &server.url("/oauth2/authorize"), &form).await;
    let params = redirected(&back, REDIRECT);
    assert_eq!(param(&params, "state"), Some("xyz"));
    let (status, tokens) = server.exchange(param(&params, "code").unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["scope"], "tasks_read users_read");
}

#[tokio::test]
async fn unknown_client_or_unregistered_redirect_is_a_page_never_a_redirect() {
    let server = TestServer::start().await;
    let (_, _) = server.app("Other", &["https://other.example/cb"], "users_read").await;
    let id = server.client_id.as_str();
    let cases: Vec<(&str, String)> = vec![
        ("unknown client_id", query_for("0123456789abcdef0123456789abcdef", REDIRECT, Some("users_read"), "s")),
        ("missing client_id", format!("response_type=code&redirect_uri={}&state=s", encoded(REDIRECT))),
        ("empty client_id", format!("client_id=&response_type=code&redirect_uri={}&state=s", encoded(REDIRECT))),
        ("missing redirect_uri", format!("client_id={id}&response_type=code&state=s")),
        ("empty redirect_uri", format!("client_id={id}&response_type=code&redirect_uri=&state=s")),
        ("trailing slash", query_for(id, "https://client.example/cb/", None, "s")),
        ("path case", query_for(id, "https://client.example/CB", None, "s")),
        ("host case", query_for(id, "https://CLIENT.example/cb", None, "s")),
        ("extra query", query_for(id, "https://client.example/cb?x=1", None, "s")),
        ("prefix only", query_for(id, "https://client.example/c", None, "s")),
        ("http instead of https", query_for(id, "http://client.example/cb", None, "s")),
        ("another app's redirect", query_for(id, "https://other.example/cb", None, "s")),
        (
            "bad redirect and bad response_type",
            format!("client_id={id}&response_type=token&redirect_uri=https%3A%2F%2Fevil.example%2F"),
        ),
        (
            "two redirect_uris",
            format!("{}&redirect_uri={}", query_for(id, REDIRECT, None, "s"), encoded("https://evil.example/")),
        ),
        (
            "two client_ids",
            format!("{}&client_id=0123456789abcdef0123456789abcdef", query_for(id, REDIRECT, None, "s")),
        ),
    ];
    let signed_in = owner(&server).await;
    let signed_out = plain();
    for (label, query) in &cases {
        for (who, client) in [("signed in", &signed_in.client), ("signed out", &signed_out)] {
            let answer = get(client, &authorize_url(&server, query)).await;
            assert_error_page(&answer, &format!("{label}, {who}"));
        }
    }

    // the consent form, tampered with, cannot send a code elsewhere either
    let consent = get(&signed_in.client, &authorize_url(&server, &server.authorize_query("users_read", "s"))).await;
    assert_eq!(consent.status, StatusCode::OK);
    let form = with_field(&consent_fields(&consent.body), "redirect_uri", "https://evil.example/cb");
    let answer =
        post(&signed_in.client, &server.url("/oauth2/authorize"), &with_field(&form, "decision", "allow")).await;
    assert_error_page(&answer, "consent POST with an unregistered redirect_uri");
    // the untampered form still works
    let answer = post(
        &signed_in.client,
        &server.url("/oauth2/authorize"),
        &with_field(&consent_fields(&consent.body), "decision", "allow"),
    )
    .await;
    assert!(param(&redirected(&answer, REDIRECT), "code").is_some());
}

#[tokio::test]
async fn other_errors_go_back_to_the_app_with_state() {
    let server = TestServer::start().await;
    let (narrow, _) = server.app("Narrow", &[REDIRECT], "tasks_read").await;
    let id = server.client_id.clone();
    let state = "s t&ä/=?#";
    let redirect = encoded(REDIRECT);
    let st = encoded(state);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "response_type missing",
            format!("client_id={id}&redirect_uri={redirect}&state={st}&scope=users_read"),
            "invalid_request",
        ),
        (
            "response_type empty",
            format!("client_id={id}&response_type=&redirect_uri={redirect}&state={st}"),
            "invalid_request",
        ),
        (
            "response_type token",
            format!("client_id={id}&response_type=token&redirect_uri={redirect}&state={st}"),
            "unsupported_response_type",
        ),
        (
            "response_type code id_token",
            format!("client_id={id}&response_type=code+id_token&redirect_uri={redirect}&state={st}"),
            "unsupported_response_type",
        ),
        ("scope all", query_for(&id, REDIRECT, Some("all"), state), "invalid_scope"),
        ("one unknown scope among known", query_for(&id, REDIRECT, Some("tasks_read,all"), state), "invalid_scope"),
        ("scope not allowed to the app", query_for(&narrow, REDIRECT, Some("users_read"), state), "invalid_scope"),
        (
            "allowed and not allowed",
            query_for(&narrow, REDIRECT, Some("tasks_read users_read"), state),
            "invalid_scope",
        ),
        (
            "scope twice",
            format!("{}&scope=tasks_read", query_for(&id, REDIRECT, Some("users_read"), state)),
            "invalid_request",
        ),
        (
            "response_type twice",
            format!("{}&response_type=token", query_for(&id, REDIRECT, Some("users_read"), state)),
            "invalid_request",
        ),
    ];
    let signed_in = owner(&server).await;
    let signed_out = plain();
    for (label, query, error) in &cases {
        for (who, client) in [("signed in", &signed_in.client), ("signed out", &signed_out)] {
            let answer = get(client, &authorize_url(&server, query)).await;
            assert_redirected_error(&answer, REDIRECT, error, state, &format!("{label}, {who}"));
        }
    }
    // the same parameter twice with the same value is tolerated, and the narrow app may ask for its own scope
    let twice = format!("{}&scope=users_read", query_for(&id, REDIRECT, Some("users_read"), state));
    let narrow_ok = query_for(&narrow, REDIRECT, Some("tasks_read"), state);
    for query in [twice, narrow_ok] {
        let answer = get(&signed_in.client, &authorize_url(&server, &query)).await;
        assert_eq!(answer.status, StatusCode::OK, "{query}: {}", answer.body);
        assert!(answer.body.contains(r#"id="allow""#));
    }
}

#[tokio::test]
async fn scope_separators_and_the_empty_scope() {
    let server = TestServer::start().await;
    let browser = owner(&server).await;
    let all = ScopeSet::all().to_space_separated();
    let cases: [(&str, Option<&str>, &str); 7] = [
        ("space", Some("tasks_read%20users_read"), "tasks_read users_read"),
        ("plus", Some("tasks_read+users_read"), "tasks_read users_read"),
        ("comma", Some("users_read%2Ctasks_read"), "tasks_read users_read"),
        ("comma and space", Some("users_read%2C%20tasks_read"), "tasks_read users_read"),
        (
            "mixed",
            Some("users_read%2Ctasks_read+projects_read%20comments_read%2C+files_read"),
            "projects_read tasks_read comments_read files_read users_read",
        ),
        ("empty", Some(""), &all),
        ("absent", None, &all),
    ];
    let base = format!("client_id={}&response_type=code&redirect_uri={}&state=s", server.client_id, encoded(REDIRECT));
    for (label, scope, expected) in cases {
        let query = match scope {
            Some(scope) => format!("{base}&scope={scope}"),
            None => base.clone(),
        };
        let location = browser.approve(&server, &query).await;
        let code = query_param(&location, "code").unwrap_or_else(|| panic!("{label}: {location}"));
        let (status, tokens) = server.exchange(&code).await;
        assert_eq!(status, StatusCode::OK, "{label}: {tokens}");
        assert_eq!(tokens["scope"], expected, "{label}");
    }

    // empty means the app's registered scopes, not every scope
    let (narrow, secret) = server.app("Narrow", &[REDIRECT], "tasks_read comments_read").await;
    let location = browser.approve(&server, &query_for(&narrow, REDIRECT, Some(""), "s")).await;
    let code = query_param(&location, "code").unwrap();
    let (status, tokens) = exchange_with(&server, &narrow, &secret, REDIRECT, &code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["scope"], "tasks_read comments_read");
}

#[tokio::test]
async fn deny_allow_and_a_registered_query_is_kept() {
    let server = TestServer::start().await;
    let browser = owner(&server).await;
    let query = server.authorize_query("users_read", "st-1");
    let denied = browser.decide(&server, &query, "deny").await;
    assert_error_params(&denied, REDIRECT, "access_denied", "st-1", "deny");

    let allowed = browser.approve(&server, &query).await;
    assert!(allowed.starts_with(&format!("{REDIRECT}?")), "{allowed}");
    assert_eq!(query_param(&allowed, "state").as_deref(), Some("st-1"));
    assert_eq!(query_param(&allowed, "error"), None);
    assert!(query_param(&allowed, "code").is_some_and(|c| c.len() >= 32), "{allowed}");

    let tenant_uri = "https://client.example/cb?tenant=7";
    let (tenant, secret) = server.app("Tenant", &[tenant_uri], "users_read").await;
    let query = query_for(&tenant, tenant_uri, Some("users_read"), "st-2");
    let allowed = browser.approve(&server, &query).await;
    let params = redirect_params(&allowed, tenant_uri);
    assert_eq!(param(&params, "tenant"), Some("7"));
    assert_eq!(param(&params, "state"), Some("st-2"));
    let (status, tokens) = exchange_with(&server, &tenant, &secret, tenant_uri, param(&params, "code").unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");

    // approved before, so only prompt=consent shows the page again
    let denied = browser.decide(&server, &format!("{query}&prompt=consent"), "deny").await;
    assert_error_params(&denied, tenant_uri, "access_denied", "st-2", "deny with a registered query");
    assert!(denied.starts_with("https://client.example/cb?tenant=7&"), "{denied}");

    let bad = format!("client_id={tenant}&response_type=token&redirect_uri={}&state=st-3", encoded(tenant_uri));
    let answer = get(&browser.client, &authorize_url(&server, &bad)).await;
    assert_redirected_error(&answer, tenant_uri, "unsupported_response_type", "st-3", "error with a registered query");
    assert_eq!(param(&redirected(&answer, tenant_uri), "tenant"), Some("7"));

    // a state that needs encoding comes back byte for byte, through the consent form
    let state = "a&b=c d/é+%#?<\"'>";
    let consent =
        get(&browser.client, &authorize_url(&server, &query_for(&server.client_id, REDIRECT, None, state))).await;
    assert_eq!(consent.status, StatusCode::OK, "{}", consent.body);
    let form = with_field(&consent_fields(&consent.body), "decision", "allow");
    assert!(form.contains(&("state".to_owned(), state.to_owned())), "{form:?}");
    let params = redirected(&post(&browser.client, &server.url("/oauth2/authorize"), &form).await, REDIRECT);
    assert_eq!(param(&params, "state"), Some(state));
    assert!(param(&params, "code").is_some());

    // the registered URI without its query is another URI
    let answer = get(&browser.client, &authorize_url(&server, &query_for(&tenant, REDIRECT, None, "s"))).await;
    assert_error_page(&answer, "registered query left out");
}

/// The `href` of the account choice for `user_id` on the selection page.
fn choice_href(page: &str, user_id: i64) -> String {
    let marker = format!(r#"id="account-{user_id}" href=""#);
    let rest = page.split_once(&marker).unwrap_or_else(|| panic!("no choice {user_id}: {page}")).1;
    unescape(rest.split_once('"').unwrap().0)
}

#[tokio::test]
async fn a_person_in_two_accounts_chooses_one() {
    let server =
        TestServer::start_with(|s| s.account_url_template = Some("https://{account}.example.test".into())).await;
    let beta = wsoauth_server::admin::create_account(server.state(), "Beta", Some("beta")).await.unwrap();
    let beta_user = server.member(beta.id, OWNER_EMAIL, OWNER_PASSWORD, Role::User).await;
    assert_ne!(beta_user, server.owner_user_id);
    let browser = owner(&server).await;
    let query = server.authorize_query("users_read", "st");

    for (user_id, account, url) in
        [(beta_user, "Beta", "https://beta.example.test"), (server.owner_user_id, "Acme", "https://acme.example.test")]
    {
        let select = get(&browser.client, &authorize_url(&server, &query)).await;
        assert_eq!(select.status, StatusCode::OK, "{}", select.body);
        assert!(select.body.contains("Choose an account"), "{}", select.body);
        assert!(!select.body.contains(r#"id="allow""#), "no consent before a choice");
        assert!(select.body.contains(">Acme</a>") && select.body.contains(">Beta</a>"), "{}", select.body);
        assert!(select.body.contains("Client App"));
        let href = choice_href(&select.body, user_id);
        assert!(href.starts_with("/oauth2/authorize?"), "{href}");

        let consent = get(&browser.client, &server.url(&href)).await;
        assert_eq!(consent.status, StatusCode::OK, "{}", consent.body);
        assert!(consent.body.contains(&format!("the account <strong>{account}</strong>")), "{}", consent.body);
        let form = with_field(&consent_fields(&consent.body), "decision", "allow");
        assert_eq!(form.iter().find(|(k, _)| k == "user").map(|(_, v)| v.clone()), Some(user_id.to_string()));
        let back = post(&browser.client, &server.url("/oauth2/authorize"), &form).await;
        let params = redirected(&back, REDIRECT);
        let (status, tokens) = server.exchange(param(&params, "code").unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        assert_eq!(tokens["account_url"], url, "{account}");
        let owner = resource(&server, &text(&tokens, "access_token")).await;
        assert_eq!(owner["id"], user_id.to_string(), "{account}");
        assert_eq!(owner["account_url"], url);
        assert_eq!(owner["email"], OWNER_EMAIL);
    }

    // an account that is not one of the person's cannot be chosen
    let stranger = server.member(beta.id, "stranger@beta.test", "stranger-password", Role::User).await;
    let answer = get(&browser.client, &authorize_url(&server, &format!("{query}&user={stranger}"))).await;
    assert_error_page(&answer, "someone else's user");
}

#[tokio::test]
async fn consent_post_needs_csrf_the_persons_user_and_a_session() {
    let server = TestServer::start().await;
    let browser = owner(&server).await;
    let url = server.url("/oauth2/authorize");
    let consent = get(&browser.client, &authorize_url(&server, &server.authorize_query("users_read", "st"))).await;
    assert_eq!(consent.status, StatusCode::OK);
    let form = with_field(&consent_fields(&consent.body), "decision", "allow");
    let without: Vec<_> = form.iter().filter(|(k, _)| k != "csrf_token").cloned().collect();
    let other = Browser::new();
    let other_page = get(&other.client, &server.url("/login")).await;
    let foreign = hidden(&other_page.body, "csrf_token");

    for (label, form, status) in [
        ("no csrf_token", without, StatusCode::FORBIDDEN),
        ("wrong csrf_token", with_field(&form, "csrf_token", &"A".repeat(43)), StatusCode::FORBIDDEN),
        ("empty csrf_token", with_field(&form, "csrf_token", ""), StatusCode::FORBIDDEN),
        ("another browser's csrf_token", with_field(&form, "csrf_token", &foreign), StatusCode::FORBIDDEN),
    ] {
        let answer = post(&browser.client, &url, &form).await;
        assert_eq!(answer.status, status, "{label}");
        assert_error_page(&answer, label);
    }

    let colleague = server.member(server.account_id, "colleague@acme.test", "colleague-password", Role::User).await;
    for (label, user) in [
        ("a colleague's user", colleague.to_string()),
        ("no such user", "999999".to_owned()),
        ("not a number", "me".to_owned()),
        ("empty", String::new()),
    ] {
        let answer = post(&browser.client, &url, &with_field(&form, "user", &user)).await;
        assert_error_page(&answer, label);
    }

    // the untouched form works (so the refusals above were about what was changed)
    let answer = post(&browser.client, &url, &form).await;
    assert!(param(&redirected(&answer, REDIRECT), "code").is_some());

    // signed out between the consent page and the click (approved before: prompt=consent shows the page)
    let query = format!("{}&prompt=consent", server.authorize_query("users_read", "st"));
    let consent = get(&browser.client, &authorize_url(&server, &query)).await;
    let form = with_field(&consent_fields(&consent.body), "decision", "allow");
    let logout =
        post(&browser.client, &server.url("/logout"), &fields(&[("csrf_token", &hidden(&consent.body, "csrf_token"))]))
            .await;
    assert_eq!(logout.status, StatusCode::SEE_OTHER);
    let answer = post(&browser.client, &url, &form).await;
    assert_error_page(&answer, "signed out");
    let answer = post(&browser.client, &url, &with_field(&form, "decision", "deny")).await;
    assert_error_page(&answer, "signed out, deny");
}

#[tokio::test]
async fn codes_are_single_use_and_live_ten_minutes() {
    let server = TestServer::start().await;
    let code = server.code("users_read").await;
    let (status, body) = server.exchange(&code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = server.exchange(&code).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");

    let code = server.code("users_read").await;
    server.clock.advance(599);
    let (status, body) = server.exchange(&code).await;
    assert_eq!(status, StatusCode::OK, "a code is good for 10 minutes: {body}");

    let code = server.code("users_read").await;
    server.clock.advance(600);
    let (status, body) = server.exchange(&code).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
}
