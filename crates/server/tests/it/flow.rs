//! The seed's flow end to end: code, token, API, resource, refresh, replay, concurrency, expiry.

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::*;

fn s(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_else(|| panic!("{key} in {v}")).to_owned()
}

#[tokio::test]
async fn code_token_api_resource_refresh() {
    let server = TestServer::start().await;
    let tokens = server.tokens("users_read,tasks_read").await;
    assert_eq!(tokens["token_type"], "bearer");
    assert_eq!(tokens["expires_in"], 86400);
    assert_eq!(tokens["account_url"], server.base.as_str());
    assert_eq!(tokens["scope"], "tasks_read users_read");
    let access = s(&tokens, "access_token");
    assert_eq!(access.split('.').count(), 3, "a JWT");

    let (status, me) = server.api(&access, "me").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["status"], "ok");
    assert_eq!(me["data"]["id"], server.owner_user_id.to_string());
    assert_eq!(me["data"]["email"], OWNER_EMAIL);
    assert_eq!(me["data"]["role"], "Owner");

    let resource: Value =
        plain().get(server.url("/oauth2/resource")).bearer_auth(&access).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        resource,
        serde_json::json!({"id": server.owner_user_id.to_string(), "first_name": "Olga", "last_name": "Owner",
                           "email": OWNER_EMAIL, "account_url": server.base})
    );

    let (status, next) = server.refresh("/oauth2/refresh", &s(&tokens, "refresh_token")).await;
    assert_eq!(status, StatusCode::OK, "{next}");
    assert_ne!(next["access_token"], tokens["access_token"]);
    assert_ne!(next["refresh_token"], tokens["refresh_token"]);
    // the old access token is refused everywhere from now on
    let (status, body) = server.api(&access, "me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = plain()
        .get(server.url("/oauth2/resource"))
        .bearer_auth(&access)
        .send()
        .await
        .map(|r| (r.status(), ()))
        .unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // the old refresh token mints nothing new: within the grace window (a lost response) it gets the same pair
    let (status, same) = server.refresh("/oauth2/token", &s(&tokens, "refresh_token")).await;
    assert_eq!(status, StatusCode::OK, "{same}");
    assert_eq!((&same["access_token"], &same["refresh_token"]), (&next["access_token"], &next["refresh_token"]));
    // the new pair works, including a refresh through /oauth2/token
    assert_eq!(server.api(&s(&next, "access_token"), "me").await.0, StatusCode::OK);
    // once the new pair is in use, the old refresh token is refused (and, being a replay, ends the grant)
    let (status, body) = server.refresh("/oauth2/refresh", &s(&tokens, "refresh_token")).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    let (status, _) = server.refresh("/oauth2/token", &s(&next, "refresh_token")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // a fresh grant refreshes through /oauth2/token too
    let tokens = server.tokens("users_read").await;
    let (status, next) = server.refresh("/oauth2/token", &s(&tokens, "refresh_token")).await;
    assert_eq!(status, StatusCode::OK, "{next}");
    assert_eq!(server.api(&s(&next, "access_token"), "me").await.0, StatusCode::OK);
}

#[tokio::test]
async fn replayed_code_is_refused_and_revokes_its_tokens() {
    let server = TestServer::start().await;
    let code = server.code("users_read").await;
    let (status, tokens) = server.exchange(&code).await;
    assert_eq!(status, StatusCode::OK);
    let (status, again) = server.exchange(&code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(again["error"], "invalid_grant");
    assert_eq!(server.api(&s(&tokens, "access_token"), "me").await.0, StatusCode::UNAUTHORIZED);
    let (status, _) = server.refresh("/oauth2/refresh", &s(&tokens, "refresh_token")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn parallel_exchanges_of_one_code_have_one_winner() {
    let server = TestServer::start().await;
    let code = server.code("users_read").await;
    let attempts = (0..12).map(|_| server.exchange(&code));
    let results = futures_join_all(attempts).await;
    let winners = results.iter().filter(|(status, _)| *status == StatusCode::OK).count();
    assert_eq!(winners, 1, "{results:?}");
    assert!(results.iter().all(|(status, body)| *status == StatusCode::OK || body["error"] == "invalid_grant"));
}

#[tokio::test]
async fn parallel_refreshes_of_one_token_mint_one_pair() {
    let server = TestServer::start().await;
    let tokens = server.tokens("users_read").await;
    let refresh = s(&tokens, "refresh_token");
    let results = futures_join_all((0..12).map(|_| server.refresh("/oauth2/refresh", &refresh))).await;
    // one rotation wins; the others are the same client within the grace window and get the very same pair
    assert!(results.iter().all(|(status, _)| *status == StatusCode::OK), "{results:?}");
    let first = &results[0].1;
    for (_, body) in &results {
        assert_eq!((&body["access_token"], &body["refresh_token"]), (&first["access_token"], &first["refresh_token"]));
    }
    assert_eq!(server.api(&s(first, "access_token"), "me").await.0, StatusCode::OK);
    let (status, _) = server.refresh("/oauth2/refresh", &s(first, "refresh_token")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn without_a_grace_window_parallel_refreshes_have_one_winner() {
    let server = TestServer::start_with(|s| s.refresh_reuse_grace = 0).await;
    let tokens = server.tokens("users_read").await;
    let refresh = s(&tokens, "refresh_token");
    let results = futures_join_all((0..12).map(|_| server.refresh("/oauth2/refresh", &refresh))).await;
    let winners = results.iter().filter(|(status, _)| *status == StatusCode::OK).count();
    assert_eq!(winners, 1, "{results:?}");
    assert!(results.iter().all(|(status, body)| *status == StatusCode::OK || body["error"] == "invalid_grant"));
}

#[tokio::test]
async fn expiry_of_code_access_and_refresh_tokens() {
    let server = TestServer::start().await;
    // a code lives 10 minutes
    let code = server.code("users_read").await;
    server.clock.advance(601);
    let (status, body) = server.exchange(&code).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");

    // an access token lives 24 hours, then the API says so in the words the official clients look for
    let tokens = server.tokens("users_read").await;
    server.clock.advance(86_399);
    assert_eq!(server.api(&s(&tokens, "access_token"), "me").await.0, StatusCode::OK);
    server.clock.advance(1);
    let (status, body) = server.api(&s(&tokens, "access_token"), "me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["message"], "Access token is expired");
    assert!(body["errorDescription"].as_str().unwrap().contains("token is expired"));

    // the refresh token still works until a month has passed
    let (status, next) = server.refresh("/oauth2/refresh", &s(&tokens, "refresh_token")).await;
    assert_eq!(status, StatusCode::OK, "{next}");
    server.clock.advance(30 * 86_400);
    let (status, body) = server.refresh("/oauth2/refresh", &s(&next, "refresh_token")).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
}

/// Refresh tokens and codes are 44 characters that carry their issue time (their stored keys begin with it).
/// A token or code of an earlier version (43 characters, stored under its plain digest, as a database from
/// before holds them) still works, and is answered with tokens of the new format.
#[tokio::test]
async fn secrets_carry_their_issue_time_and_earlier_ones_still_work() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use wsoauth_domain::{OsRandom, secret::random_token, stamped};
    use wsoauth_server::audit::{Entry, Event, row};

    let server = TestServer::start().await;
    let state = server.state();
    let issued_now = |secret: &str| {
        let raw = URL_SAFE_NO_PAD.decode(secret).unwrap();
        assert_eq!((secret.len(), raw.len(), raw[0]), (44, 33, stamped::VERSION), "{secret}");
        assert_eq!(raw[1..5], (state.now() as u32).to_be_bytes(), "{secret}");
    };
    let code = server.code("users_read").await;
    issued_now(&code);
    let (status, tokens) = server.exchange(&code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let current = s(&tokens, "refresh_token");
    issued_now(&current);

    // the grant's token replaced by one of an earlier version, in the store, as an imported database holds it
    server.clock.advance(5);
    let now = state.now();
    let legacy = random_token(&OsRandom, 32);
    assert_eq!(legacy.len(), 43);
    let app = state.store.app_by_client_id(&server.client_id).await.unwrap().unwrap();
    let next = wsoauth_storage::NewRefresh {
        digest: state.hasher.digest(stamped::REFRESH, &legacy),
        expires_at: now + 86_400,
    };
    let audited = row(state, Event::TokenRefreshed, &Entry::new());
    state.store.rotate_refresh(&state.refresh_key(&current), app.id, now, b"nonce", &next, &audited).await.unwrap();

    server.clock.advance(60);
    let (status, body) = server.refresh("/oauth2/refresh", &legacy).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let renewed = s(&body, "refresh_token");
    issued_now(&renewed);
    assert_eq!(server.api(&s(&body, "access_token"), "me").await.0, StatusCode::OK);
    let (status, _) = server.refresh("/oauth2/refresh", &renewed).await;
    assert_eq!(status, StatusCode::OK);

    // a code of an earlier version, issued before the upgrade and exchanged after it
    let legacy_code = random_token(&OsRandom, 32);
    let pending = wsoauth_storage::NewCode {
        digest: state.hasher.digest(stamped::CODE, &legacy_code),
        app_id: app.id,
        user_id: server.owner_user_id,
        redirect_uri: REDIRECT.to_owned(),
        scopes: "users_read".to_owned(),
        code_challenge: None,
        now: state.now(),
        expires_at: state.now() + 600,
    };
    state.store.insert_code(&pending).await.unwrap();
    let (status, body) = server.exchange(&legacy_code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    issued_now(&s(&body, "refresh_token"));
    // spent: presented again it is refused (and ends what it gave)
    let (status, again) = server.exchange(&legacy_code).await;
    assert_eq!((status, again["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{again}");
    assert_eq!(server.api(&s(&body, "access_token"), "me").await.0, StatusCode::UNAUTHORIZED);

    // an unknown token or code of either shape is refused
    for unknown in [random_token(&OsRandom, 32), stamped::random(&OsRandom, state.now())] {
        let (status, body) = server.refresh("/oauth2/refresh", &unknown).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
        let (status, body) = server.exchange(&unknown).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
    }
}

/// Runs futures concurrently on the current task.
async fn futures_join_all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    let mut pending: Vec<_> = handles.into_iter().map(Some).collect();
    let mut results: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (slot, result) in pending.iter_mut().zip(results.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(output) => {
                        *result = Some(output);
                        *slot = None;
                    }
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all { std::task::Poll::Ready(()) } else { std::task::Poll::Pending }
    })
    .await;
    outputs.extend(results.into_iter().flatten());
    outputs
}
