//! PKCE (RFC 7636, S256 only), public clients, and `iss` in the authorization response (RFC 9207).

use reqwest::StatusCode;
use serde_json::Value;
use wsoauth_domain::pkce::challenge_of;
use wsoauth_server::admin;

use crate::common::*;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn query(client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("client_id", client_id)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("state", "s1")
        .append_pair("scope", "users_read");
    for (key, value) in extra {
        query.append_pair(key, value);
    }
    query.finish()
}

fn s256() -> [(&'static str, String); 2] {
    [("code_challenge", challenge_of(VERIFIER)), ("code_challenge_method", "S256".into())]
}

/// Signs in as the owner and approves `query`; returns the redirect Location.
async fn approve(server: &TestServer, query: &str) -> String {
    let browser = Browser::new();
    browser.login(server, OWNER_EMAIL, OWNER_PASSWORD).await;
    browser.approve(server, query).await
}

/// Signs in and opens the authorization URL; returns the Location of the error redirect.
async fn refused(server: &TestServer, query: &str) -> String {
    let browser = Browser::new();
    browser.login(server, OWNER_EMAIL, OWNER_PASSWORD).await;
    let (status, location, body) = browser.get(&server.url(&format!("/oauth2/authorize?{query}"))).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    location.expect("a redirect")
}

async fn exchange(server: &TestServer, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = plain().post(server.url("/oauth2/token")).form(form).send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

fn pair<'a>(s: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    s.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn s256_binds_the_code_to_the_verifier() {
    let server = TestServer::start().await;
    let challenge = s256();
    for (verifier, ok) in
        [(Some(VERIFIER), true), (Some("x-wrong-verifier-x-wrong-verifier-x-wrong-verifier"), false), (None, false)]
    {
        let location = approve(&server, &query(&server.client_id, &pair(&challenge))).await;
        let code = query_param(&location, "code").unwrap();
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("client_id", server.client_id.as_str()),
            ("client_secret", server.client_secret.as_str()),
        ];
        if let Some(verifier) = verifier {
            form.push(("code_verifier", verifier));
        }
        let (status, body) = exchange(&server, &form).await;
        if ok {
            assert_eq!(status, StatusCode::OK, "{body}");
        } else {
            assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
            // the code is spent: the right verifier no longer helps
            form.retain(|(k, _)| *k != "code_verifier");
            form.push(("code_verifier", VERIFIER));
            assert_eq!(exchange(&server, &form).await.0, StatusCode::BAD_REQUEST);
        }
    }
}

#[tokio::test]
async fn a_verifier_without_a_challenge_is_a_downgrade() {
    let server = TestServer::start().await;
    let code = server.code("users_read").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("client_id", server.client_id.as_str()),
        ("client_secret", server.client_secret.as_str()),
        ("code_verifier", VERIFIER),
    ];
    let (status, body) = exchange(&server, &form).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
}

#[tokio::test]
async fn plain_and_malformed_challenges_are_redirected_errors() {
    let server = TestServer::start().await;
    let challenge = challenge_of(VERIFIER);
    for extra in [
        vec![("code_challenge", challenge.as_str()), ("code_challenge_method", "plain")],
        vec![("code_challenge", challenge.as_str())],
        vec![("code_challenge_method", "S256")],
        vec![("code_challenge", "short"), ("code_challenge_method", "S256")],
        vec![("code_challenge", challenge.as_str()), ("code_challenge_method", "S512")],
    ] {
        let location = refused(&server, &query(&server.client_id, &extra)).await;
        assert!(location.starts_with(REDIRECT), "{location}");
        assert_eq!(query_param(&location, "error").as_deref(), Some("invalid_request"), "{extra:?}");
        assert_eq!(query_param(&location, "state").as_deref(), Some("s1"));
        assert_eq!(query_param(&location, "iss").as_deref(), Some(server.base.as_str()));
    }
}

#[tokio::test]
async fn public_clients_use_pkce_and_no_secret() {
    let server = TestServer::start().await;
    let mut fields = admin::app_fields("Native", [REDIRECT], "users_read").unwrap();
    fields.require_pkce = false;
    let app = admin::create_public_app(server.state(), server.account_id, &fields).await.unwrap();
    assert!(app.public && app.require_pkce);

    // without PKCE the request goes back with invalid_request
    let location = refused(&server, &query(&app.client_id, &[])).await;
    assert_eq!(query_param(&location, "error").as_deref(), Some("invalid_request"));

    let location = approve(&server, &query(&app.client_id, &pair(&s256()))).await;
    assert_eq!(query_param(&location, "iss").as_deref(), Some(server.base.as_str()), "RFC 9207");
    let code = query_param(&location, "code").unwrap();
    let (status, tokens) = exchange(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &app.client_id),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(server.api(tokens["access_token"].as_str().unwrap(), "me").await.0, StatusCode::OK);

    // a refresh by client id alone
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", app.client_id.as_str())];
    let (status, next) = exchange(&server, &form).await;
    assert_eq!(status, StatusCode::OK, "{next}");

    // a public client that presents a secret, or a confidential one without its secret, is not authenticated
    let refresh = next["refresh_token"].as_str().unwrap();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh),
        ("client_id", app.client_id.as_str()),
        ("client_secret", "anything"),
    ];
    assert_eq!(exchange(&server, &form).await.0, StatusCode::UNAUTHORIZED);
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", server.client_id.as_str())];
    let (status, body) = exchange(&server, &form).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")));
}

#[tokio::test]
async fn apps_can_be_told_to_require_pkce() {
    let server = TestServer::start().await;
    let mut fields = admin::app_fields("Strict", [REDIRECT], "users_read").unwrap();
    fields.require_pkce = true;
    let (app, _) = admin::create_app(server.state(), server.account_id, &fields).await.unwrap();
    let location = refused(&server, &query(&app.client_id, &[])).await;
    assert_eq!(query_param(&location, "error").as_deref(), Some("invalid_request"));
    let location = approve(&server, &query(&app.client_id, &pair(&s256()))).await;
    assert!(query_param(&location, "code").is_some(), "{location}");
}

#[tokio::test]
async fn the_settings_page_registers_public_clients_without_a_secret() {
    let server = TestServer::start().await;
    let browser = Browser::new();
    browser.login(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
    let (_, _, page) = browser.get(&server.url("/settings/api")).await;
    let csrf = hidden_fields(&page).into_iter().find(|(k, _)| k == "csrf_token").unwrap().1;
    let form: Vec<(String, String)> = [
        ("csrf_token", csrf.as_str()),
        ("account_id", &server.account_id.to_string()),
        ("name", "SPA"),
        ("redirect_uris", REDIRECT),
        ("scopes", "users_read"),
        ("public", "1"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let (status, _, page) = browser.post(&server.url("/settings/api/apps"), &form).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("has no secret"), "{page}");
    assert!(!page.contains(r#"id="client-secret""#));
    let apps = server.state().store.apps(Some(server.account_id)).await.unwrap();
    let spa = apps.iter().find(|a| a.name == "SPA").unwrap();
    assert!(spa.public && spa.require_pkce && spa.secret_digest.is_empty());
}
