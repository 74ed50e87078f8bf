//! Remembered consent and the "Connected apps" page.

use reqwest::StatusCode;

use crate::common::*;

/// Opens the authorization URL for `scope` in a signed-in browser; returns status and Location.
async fn open(server: &TestServer, browser: &Browser, scope: &str, extra: &str) -> (StatusCode, Option<String>) {
    let url = server.url(&format!("/oauth2/authorize?{}{extra}", server.authorize_query(scope, "st")));
    let (status, location, _) = browser.get(&url).await;
    (status, location)
}

#[tokio::test]
async fn approved_scopes_are_not_asked_again() {
    let server = TestServer::start().await;
    let browser = Browser::new();
    browser.login(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
    // first time: the consent page
    assert_eq!(open(&server, &browser, "users_read tasks_read", "").await.0, StatusCode::OK);
    browser.approve(&server, &server.authorize_query("users_read tasks_read", "st")).await;
    // the same or fewer scopes: straight back to the app with a code
    for scope in ["users_read tasks_read", "tasks_read", "tasks_read,users_read"] {
        let (status, location) = open(&server, &browser, scope, "").await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{scope}");
        let location = location.unwrap();
        assert!(location.starts_with(REDIRECT) && query_param(&location, "code").is_some(), "{location}");
    }
    // more scopes: asked again; afterwards the union is remembered
    assert_eq!(open(&server, &browser, "users_read projects_read", "").await.0, StatusCode::OK);
    browser.approve(&server, &server.authorize_query("users_read projects_read", "st")).await;
    assert_eq!(open(&server, &browser, "tasks_read projects_read", "").await.0, StatusCode::SEE_OTHER);
    // prompt=consent always asks
    assert_eq!(open(&server, &browser, "tasks_read", "&prompt=consent").await.0, StatusCode::OK);
    // the remembered consent holds for a new session of the same person, and its code works
    let other = Browser::new();
    other.login(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
    let (_, location) = open(&server, &other, "users_read", "").await;
    let code = query_param(&location.unwrap(), "code").unwrap();
    assert_eq!(server.exchange(&code).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_denial_is_not_remembered() {
    let server = TestServer::start().await;
    let browser = Browser::new();
    browser.login(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
    let location = browser.decide(&server, &server.authorize_query("users_read", "st"), "deny").await;
    assert_eq!(query_param(&location, "error").as_deref(), Some("access_denied"));
    assert_eq!(open(&server, &browser, "users_read", "").await.0, StatusCode::OK);
}

#[tokio::test]
async fn disconnecting_an_app_ends_its_tokens_at_once() {
    let server = TestServer::start().await;
    let tokens = server.tokens("users_read").await;
    let access = tokens["access_token"].as_str().unwrap();
    let browser = Browser::new();
    browser.login(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
    let (status, _, page) = browser.get(&server.url("/settings/connected")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Client App") && page.contains("Acme") && page.contains("users_read"), "{page}");

    // another person cannot disconnect it
    let (other_user, _) =
        (server.member(server.account_id, "eve@acme.test", "eve-password", wsoauth_storage::Role::User).await, ());
    let eve = Browser::new();
    eve.login(&server, "eve@acme.test", "eve-password").await;
    let (_, _, eve_page) = eve.get(&server.url("/settings/connected")).await;
    let eve_csrf = hidden_fields(&eve_page).into_iter().find(|(k, _)| k == "csrf_token").unwrap().1;
    let app_id = server.state().store.app_by_client_id(&server.client_id).await.unwrap().unwrap().id;
    let form = |csrf: &str, user: i64| {
        vec![
            ("csrf_token".to_owned(), csrf.to_owned()),
            ("user".to_owned(), user.to_string()),
            ("app".to_owned(), app_id.to_string()),
        ]
    };
    let (status, _, _) =
        eve.post(&server.url("/settings/connected/disconnect"), &form(&eve_csrf, server.owner_user_id)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_ne!(other_user, server.owner_user_id);
    assert_eq!(server.api(access, "me").await.0, StatusCode::OK);

    // a missing CSRF token changes nothing
    let (status, _, _) =
        browser.post(&server.url("/settings/connected/disconnect"), &form("wrong", server.owner_user_id)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(server.api(access, "me").await.0, StatusCode::OK);

    let csrf = hidden_fields(&page).into_iter().find(|(k, _)| k == "csrf_token").unwrap().1;
    let (status, _, page) =
        browser.post(&server.url("/settings/connected/disconnect"), &form(&csrf, server.owner_user_id)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("is disconnected") && !page.contains(r#"class="connection""#), "{page}");
    assert_eq!(server.api(access, "me").await.0, StatusCode::UNAUTHORIZED);
    let (status, _) = server.refresh("/oauth2/refresh", tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // and the next authorization asks again
    assert_eq!(open(&server, &browser, "users_read", "").await.0, StatusCode::OK);
}
