//! Refresh-token reuse detection (RFC 9700 §4.14) and its grace window for a lost response.

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::*;

fn s(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_else(|| panic!("{key} in {v}")).to_owned()
}

async fn family_is_revoked(server: &TestServer, pair: &Value) {
    assert_eq!(server.api(&s(pair, "access_token"), "me").await.0, StatusCode::UNAUTHORIZED);
    let (status, body) = server.refresh("/oauth2/refresh", &s(pair, "refresh_token")).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
}

#[tokio::test]
async fn a_lost_response_gets_the_same_pair_within_the_grace_window() {
    let server = TestServer::start().await;
    let first = server.tokens("users_read").await;
    let (status, second) = server.refresh("/oauth2/refresh", &s(&first, "refresh_token")).await;
    assert_eq!(status, StatusCode::OK);
    server.clock.advance(10);
    let (status, again) = server.refresh("/oauth2/token", &s(&first, "refresh_token")).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["access_token"], second["access_token"]);
    assert_eq!(again["refresh_token"], second["refresh_token"]);
    // and the pair is as good as ever
    assert_eq!(server.api(&s(&second, "access_token"), "me").await.0, StatusCode::OK);
    let (status, _) = server.refresh("/oauth2/refresh", &s(&second, "refresh_token")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn reuse_after_the_grace_window_revokes_the_family() {
    let server = TestServer::start().await;
    let first = server.tokens("users_read").await;
    let (_, second) = server.refresh("/oauth2/refresh", &s(&first, "refresh_token")).await;
    server.clock.advance(11);
    let (status, body) = server.refresh("/oauth2/refresh", &s(&first, "refresh_token")).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    family_is_revoked(&server, &second).await;
}

#[tokio::test]
async fn reuse_after_the_new_pair_was_used_revokes_the_family() {
    let server = TestServer::start().await;
    let first = server.tokens("users_read").await;
    let (_, second) = server.refresh("/oauth2/refresh", &s(&first, "refresh_token")).await;
    assert_eq!(server.api(&s(&second, "access_token"), "me").await.0, StatusCode::OK);
    let (status, _) = server.refresh("/oauth2/refresh", &s(&first, "refresh_token")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    family_is_revoked(&server, &second).await;
}

#[tokio::test]
async fn reuse_of_an_older_generation_revokes_the_family() {
    let server = TestServer::start().await;
    let first = server.tokens("users_read").await;
    let (_, second) = server.refresh("/oauth2/refresh", &s(&first, "refresh_token")).await;
    let (_, third) = server.refresh("/oauth2/refresh", &s(&second, "refresh_token")).await;
    let (status, _) = server.refresh("/oauth2/refresh", &s(&first, "refresh_token")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    family_is_revoked(&server, &third).await;
}

#[tokio::test]
async fn without_a_grace_window_any_reuse_revokes() {
    let server = TestServer::start_with(|s| s.refresh_reuse_grace = 0).await;
    let first = server.tokens("users_read").await;
    let (_, second) = server.refresh("/oauth2/refresh", &s(&first, "refresh_token")).await;
    let (status, _) = server.refresh("/oauth2/refresh", &s(&first, "refresh_token")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    family_is_revoked(&server, &second).await;
}
