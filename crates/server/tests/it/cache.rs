//! The bearer caches: a token used again is answered without an RSA verification or a database read, yet a change
//! made through this node is seen at once, a change made on another node within the documented bound (at once on
//! PostgreSQL, by notification; within `--token-cache` on SQLite), and a tampered or expired token never passes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use wsoauth_domain::ManualClock;
use wsoauth_server::{Running, Settings, spawn};

use crate::common::*;

/// A second node on the test server's database, with its own clock and caches.
async fn second_node(server: &TestServer) -> Running {
    let settings = Settings { public_url: Some(server.base.clone()), ..server.state().settings.clone() };
    spawn(settings, Arc::new(ManualClock::new(START))).await.unwrap()
}

async fn me(base: &str, token: &str) -> StatusCode {
    let url = format!("{base}/api/oauth2?action=me");
    plain().get(url).bearer_auth(token).send().await.unwrap().status()
}

async fn revoke_on(base: &str, server: &TestServer, token: &str) {
    let form = [("token", token), ("client_id", &server.client_id), ("client_secret", &server.client_secret)];
    let response = plain().post(format!("{base}/oauth2/revoke")).form(&form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

fn on_postgres(server: &TestServer) -> bool {
    server.state().settings.database_url.starts_with("postgres")
}

#[tokio::test]
async fn changes_through_this_node_are_seen_at_once() {
    let server = TestServer::start().await;
    let first = server.tokens("users_read").await;
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(me(&server.base, access).await, StatusCode::OK);
    assert_eq!(me(&server.base, access).await, StatusCode::OK, "answered again (from the caches)");
    // a refresh moves the grant on: the cached state of the old generation is not used
    let (status, second) = server.refresh("/oauth2/refresh", first["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(me(&server.base, access).await, StatusCode::UNAUTHORIZED);
    let access = second["access_token"].as_str().unwrap();
    assert_eq!(me(&server.base, access).await, StatusCode::OK);
    revoke_on(&server.base, &server, second["refresh_token"].as_str().unwrap()).await;
    assert_eq!(me(&server.base, access).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn another_nodes_revocation_is_seen_within_the_bound() {
    let server = TestServer::start().await;
    let node_b = second_node(&server).await;
    let tokens = server.tokens("users_read").await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(me(&server.base, access).await, StatusCode::OK, "cached on this node now");
    revoke_on(&node_b.base_url, &server, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(me(&node_b.base_url, access).await, StatusCode::UNAUTHORIZED, "refused where it was revoked");
    if on_postgres(&server) {
        // the revocation's notification drops the entry here; nothing else changes (the test clock stands still)
        let deadline = Instant::now() + Duration::from_secs(2);
        while me(&server.base, access).await == StatusCode::OK {
            assert!(Instant::now() < deadline, "the notification did not arrive within 2 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    } else {
        // SQLite has no notifications: this node may answer from its cache until the entry is 2 s old
        assert_eq!(me(&server.base, access).await, StatusCode::OK, "within the cache bound");
        server.clock.advance(2);
        assert_eq!(me(&server.base, access).await, StatusCode::UNAUTHORIZED);
    }
    node_b.handle.abort();
}

#[tokio::test]
async fn without_the_cache_another_nodes_revocation_is_seen_at_once() {
    let server = TestServer::start_with(|settings| settings.token_cache = 0).await;
    let node_b = second_node(&server).await;
    let tokens = server.tokens("users_read").await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(me(&server.base, access).await, StatusCode::OK);
    revoke_on(&node_b.base_url, &server, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(me(&server.base, access).await, StatusCode::UNAUTHORIZED);
    node_b.handle.abort();
}

#[tokio::test]
async fn tampered_and_expired_tokens_never_pass_from_the_cache() {
    let server = TestServer::start().await;
    let access = server.tokens("users_read").await["access_token"].as_str().unwrap().to_owned();
    assert_eq!(me(&server.base, &access).await, StatusCode::OK);
    // the same header and claims with another signature
    let mut tampered = access.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(me(&server.base, &tampered).await, StatusCode::UNAUTHORIZED);
    // the remembered signature with other claims: the cache answers only the very token it verified
    let (signing_input, signature) = access.rsplit_once('.').unwrap();
    let (header, claims) = signing_input.split_once('.').unwrap();
    let claims = String::from_utf8(URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
    assert!(claims.contains("\"iat\":"), "{claims}");
    let other = URL_SAFE_NO_PAD.encode(claims.replacen("\"iat\":", "\"iat\": ", 1));
    assert_eq!(me(&server.base, &format!("{header}.{other}.{signature}")).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&server.base, &access).await, StatusCode::OK);
    // past its lifetime the remembered claims are not enough
    server.clock.advance(86_400);
    let response = plain().get(server.url("/api/oauth2?action=me")).bearer_auth(&access).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.contains("expired"), "{challenge}");
}

/// Whether the test app's client authenticates at `base` with `secret` (a revocation of nothing answers 200 to an
/// authenticated client and 401 otherwise).
async fn client_accepted(base: &str, server: &TestServer, secret: &str) -> bool {
    let form = [("token", "nothing"), ("client_id", server.client_id.as_str()), ("client_secret", secret)];
    let response = plain().post(format!("{base}/oauth2/revoke")).form(&form).send().await.unwrap();
    response.status() == StatusCode::OK
}

#[tokio::test]
async fn a_new_client_secret_on_another_node_is_seen_within_the_bound() {
    let server = TestServer::start().await;
    let node_b = second_node(&server).await;
    assert!(client_accepted(&server.base, &server, &server.client_secret).await, "cached on this node now");
    let app = server.state().store.app_by_client_id(&server.client_id).await.unwrap().unwrap();
    let new_secret = wsoauth_server::admin::regenerate_secret(&node_b.state, &app).await.unwrap();
    assert!(!client_accepted(&node_b.base_url, &server, &server.client_secret).await, "refused where it changed");
    assert!(client_accepted(&node_b.base_url, &server, &new_secret).await);
    if on_postgres(&server) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while client_accepted(&server.base, &server, &server.client_secret).await {
            assert!(Instant::now() < deadline, "the notification did not arrive within 2 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    } else {
        assert!(client_accepted(&server.base, &server, &server.client_secret).await, "within the cache bound");
        server.clock.advance(2);
        assert!(!client_accepted(&server.base, &server, &server.client_secret).await);
    }
    assert!(client_accepted(&server.base, &server, &new_secret).await);
    // on the node that made the change, at once
    let newer = wsoauth_server::admin::regenerate_secret(server.state(), &app).await.unwrap();
    assert!(!client_accepted(&server.base, &server, &new_secret).await);
    assert!(client_accepted(&server.base, &server, &newer).await);
    node_b.handle.abort();
}
