//! Revocation (RFC 7009), introspection (RFC 7662), metadata (RFC 8414) and the JWKS.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::*;

async fn post(server: &TestServer, path: &str, client: (&str, &str), form: &[(&str, &str)]) -> (StatusCode, String) {
    let response = plain().post(server.url(path)).basic_auth(client.0, Some(client.1)).form(form).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

async fn introspect(server: &TestServer, client: (&str, &str), token: &str) -> Value {
    let (status, body) = post(server, "/oauth2/introspect", client, &[("token", token)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn revoking_either_token_ends_the_grant() {
    let server = TestServer::start().await;
    let me = (server.client_id.as_str(), server.client_secret.as_str());
    for (kind, hint) in
        [("refresh_token", Some("refresh_token")), ("access_token", None), ("refresh_token", Some("access_token"))]
    {
        let tokens = server.tokens("users_read").await;
        let mut form = vec![("token", tokens[kind].as_str().unwrap())];
        if let Some(hint) = hint {
            form.push(("token_type_hint", hint));
        }
        let (status, body) = post(&server, "/oauth2/revoke", me, &form).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(server.api(&text(&tokens, "access_token"), "me").await.0, StatusCode::UNAUTHORIZED, "{kind}");
        let (status, _) = server.refresh("/oauth2/refresh", &text(&tokens, "refresh_token")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{kind}");
    }
}

#[tokio::test]
async fn revocation_needs_the_owning_client() {
    let server = TestServer::start().await;
    let tokens = server.tokens("users_read").await;
    let (other_id, other_secret) = server.app("Other", &[REDIRECT], "users_read").await;
    // another client's token: 200 (nothing to learn), and the token keeps working
    let (status, _) = post(
        &server,
        "/oauth2/revoke",
        (&other_id, &other_secret),
        &[("token", tokens["access_token"].as_str().unwrap())],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(server.api(&text(&tokens, "access_token"), "me").await.0, StatusCode::OK);
    // unknown tokens are fine too
    let me = (server.client_id.as_str(), server.client_secret.as_str());
    assert_eq!(post(&server, "/oauth2/revoke", me, &[("token", "nonsense")]).await.0, StatusCode::OK);
    // but a missing token and a bad client are errors
    let (status, body) = post(&server, "/oauth2/revoke", me, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("invalid_request"));
    let (status, body) = post(&server, "/oauth2/revoke", (&server.client_id, "wrong"), &[("token", "x")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn introspection_describes_live_tokens_of_the_caller_only() {
    let server = TestServer::start().await;
    let me = (server.client_id.as_str(), server.client_secret.as_str());
    let tokens = server.tokens("users_read tasks_read").await;
    let access = introspect(&server, me, &text(&tokens, "access_token")).await;
    assert_eq!(access["active"], true);
    assert_eq!(access["token_type"], "Bearer");
    assert_eq!(access["scope"], "tasks_read users_read");
    assert_eq!(access["client_id"], server.client_id.as_str());
    assert_eq!(access["username"], OWNER_EMAIL);
    assert_eq!(access["sub"], server.owner_user_id.to_string());
    assert_eq!(access["iss"], server.base.as_str());
    assert_eq!(access["exp"], START + 86_400);
    let refresh = introspect(&server, me, &text(&tokens, "refresh_token")).await;
    assert_eq!(refresh["active"], true);
    assert_eq!(refresh["token_type"], "refresh_token");
    assert_eq!(refresh["exp"], START + 30 * 86_400);

    let (other_id, other_secret) = server.app("Other", &[REDIRECT], "users_read").await;
    assert_eq!(
        introspect(&server, (&other_id, &other_secret), &text(&tokens, "access_token")).await,
        serde_json::json!({"active": false})
    );

    // after a refresh, the old pair is inactive and the new one active
    let (_, next) = server.refresh("/oauth2/refresh", &text(&tokens, "refresh_token")).await;
    assert_eq!(introspect(&server, me, &text(&tokens, "access_token")).await["active"], false);
    assert_eq!(introspect(&server, me, &text(&tokens, "refresh_token")).await["active"], false);
    assert_eq!(introspect(&server, me, &text(&next, "access_token")).await["active"], true);
    // expiry
    server.clock.advance(86_400);
    assert_eq!(introspect(&server, me, &text(&next, "access_token")).await["active"], false);
    assert_eq!(introspect(&server, me, &text(&next, "refresh_token")).await["active"], true);
    assert_eq!(introspect(&server, me, "garbage").await, serde_json::json!({"active": false}));
    let (status, _) = post(&server, "/oauth2/introspect", (&server.client_id, "wrong"), &[("token", "x")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn metadata_and_jwks() {
    let server = TestServer::start().await;
    let metadata: Value =
        plain().get(server.url("/.well-known/oauth-authorization-server")).send().await.unwrap().json().await.unwrap();
    assert_eq!(metadata["issuer"], server.base.as_str());
    assert_eq!(metadata["token_endpoint"], format!("{}/oauth2/token", server.base));
    assert_eq!(metadata["authorization_endpoint"], format!("{}/oauth2/authorize", server.base));
    assert_eq!(metadata["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    assert_eq!(metadata["scopes_supported"].as_array().unwrap().len(), 17);
    assert_eq!(metadata["authorization_response_iss_parameter_supported"], true);

    let jwks: Value = plain().get(server.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(
        (keys[0]["kty"].as_str(), keys[0]["alg"].as_str(), keys[0]["e"].as_str()),
        (Some("RSA"), Some("RS256"), Some("AQAB"))
    );
    // the kid in a token's header names this key
    let tokens = server.tokens("users_read").await;
    let header = text(&tokens, "access_token").split('.').next().unwrap().to_owned();
    let header: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], keys[0]["kid"]);
    assert_eq!(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(keys[0]["n"].as_str().unwrap()).unwrap().len(),
        256
    );
}
