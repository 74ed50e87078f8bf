//! Signing-key rotation: `wsoauth keys rotate`, old tokens valid until they expire, both keys in the JWKS, retired
//! keys gone after the access-token lifetime, and another node picking the new key up.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::Value;
use wsoauth_domain::ManualClock;
use wsoauth_server::{Settings, spawn};

use crate::common::*;

async fn jwks_kids(base: &str) -> Vec<String> {
    let jwks: Value = plain().get(format!("{base}/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
}

fn kid_of(token: &str) -> String {
    use base64::Engine;
    let header = token.split('.').next().unwrap();
    let header: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

async fn wsoauth(database_url: &str, args: &[&str]) -> String {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_wsoauth"));
    command.args(args).env_remove("WSOAUTH_CONFIG").env("WSOAUTH_DATABASE_URL", database_url);
    let output = run_command(command).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn rotation_keeps_old_tokens_until_they_expire() {
    let server = TestServer::start().await;
    let database_url = server.state().settings.database_url.clone();
    let old = server.tokens("users_read").await;
    let old_access = old["access_token"].as_str().unwrap().to_owned();
    let old_kid = kid_of(&old_access);

    // a second node on the same database, with its own clock
    let clock_b = Arc::new(ManualClock::new(START));
    let node_b =
        spawn(Settings { public_url: Some(server.base.clone()), ..server.state().settings.clone() }, clock_b.clone())
            .await
            .unwrap();
    let api_b = |token: String| {
        let url = format!("{}/api/oauth2?action=me", node_b.base_url);
        async move { plain().get(url).bearer_auth(token).send().await.unwrap().status() }
    };
    assert_eq!(api_b(old_access.clone()).await, StatusCode::OK);

    let rotated: Value = serde_json::from_str(wsoauth(&database_url, &["keys", "rotate"]).await.trim()).unwrap();
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);
    let listed = wsoauth(&database_url, &["keys", "list", "--json"]).await;
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert!(listed.contains(r#""status":"retired""#) && listed.contains(r#""status":"active""#), "{listed}");

    // node A picks the key up on its periodic reload (every minute, at most every 30 s)
    server.clock.advance(31);
    assert!(server.state().reload_keys_if_older_than(30).await);
    let new = server.tokens("users_read").await;
    let new_access = new["access_token"].as_str().unwrap().to_owned();
    assert_eq!(kid_of(&new_access), new_kid);
    let mut kids = jwks_kids(&server.base).await;
    kids.sort();
    let mut both = vec![old_kid.clone(), new_kid.clone()];
    both.sort();
    assert_eq!(kids, both);
    assert_eq!(server.api(&old_access, "me").await.0, StatusCode::OK, "the old key still verifies");

    // node B has not reloaded yet; a token with an unknown kid makes it read the keys (at most every 5 s)
    clock_b.advance(6);
    assert_eq!(api_b(new_access.clone()).await, StatusCode::OK);
    assert_eq!(api_b(old_access.clone()).await, StatusCode::OK);

    // the purge deletes keys retired longer ago than the access-token lifetime (here: at the CLI's retirement
    // time, on the real clock); the key then disappears from the JWKS and its tokens stop verifying
    let retired_at = listed
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find_map(|key| key["retired_at"].as_i64())
        .unwrap();
    let store = &server.state().store;
    assert_eq!(store.delete_retired_keys(retired_at - 1).await.unwrap(), 0);
    assert_eq!(store.delete_retired_keys(retired_at).await.unwrap(), 1);
    server.state().reload_keys().await.unwrap();
    assert_eq!(jwks_kids(&server.base).await, vec![new_kid.clone()]);
    assert_eq!(server.api(&old_access, "me").await.0, StatusCode::UNAUTHORIZED);
    node_b.handle.abort();
}
