//! Wire compatibility of the token, resource and API endpoints with what real clients send
//! (/work/shared/spec/client-wire-facts.md): every carrier of parameters, every form of client authentication,
//! grant types, ignored extras, the response shapes, and the oauth2 crate as an independent client.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap};
use serde_json::{Value, json};

use crate::common::*;

// ---------------------------------------------------------------------------------------------------------------
// helpers

/// A response read in full: status, headers and the JSON body (panics on a body that is not JSON).
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    async fn read(response: reqwest::Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: not JSON: {text:?}"));
        Reply { status, headers, body }
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or_else(|| panic!("no {name} header on {} {}", self.status, self.body))
    }

    fn str(&self, key: &str) -> String {
        self.body[key].as_str().unwrap_or_else(|| panic!("{key} in {}", self.body)).to_owned()
    }

    /// Asserts a successful token answer in the shape every tested client parses; returns the body.
    fn tokens(&self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        assert!(self.header("content-type").starts_with("application/json"), "{:?}", self.headers);
        assert_eq!(self.header("cache-control"), "no-store");
        assert_eq!(self.header("pragma"), "no-cache");
        assert!(self.body["token_type"].as_str().is_some_and(|t| t.eq_ignore_ascii_case("bearer")), "{}", self.body);
        assert!(self.body["expires_in"].is_u64(), "expires_in must be a JSON integer: {}", self.body);
        assert!(self.body["expires_in"].as_u64().unwrap() > 0);
        for key in ["access_token", "refresh_token", "account_url"] {
            assert!(self.body[key].as_str().is_some_and(|v| !v.is_empty()), "{key} missing in {}", self.body);
        }
        self.body.clone()
    }

    /// Asserts an RFC 6749 §5.2 error with `error` = `code`, both description spellings, and `status`.
    fn oauth_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.body["error"], code, "{}", self.body);
        assert!(self.header("content-type").starts_with("application/json"));
        assert_eq!(self.header("cache-control"), "no-store");
        let snake =
            self.body["error_description"].as_str().unwrap_or_else(|| panic!("error_description: {}", self.body));
        let camel = self.body["errorDescription"].as_str().unwrap_or_else(|| panic!("errorDescription: {}", self.body));
        assert!(!snake.is_empty());
        assert_eq!(snake, camel);
        if status == StatusCode::UNAUTHORIZED {
            assert!(self.headers.contains_key("www-authenticate"), "401 without a challenge: {:?}", self.headers);
        }
    }
}

/// Where the parameters travel.
#[derive(Clone, Copy, Debug)]
enum Carrier {
    /// GET with everything in the query (official Python/PHP clients).
    Get,
    /// POST without a body, everything in the query (Postman).
    PostQuery,
    /// POST with a form body of this `Content-Type`.
    PostForm(&'static str),
}

const FORM_UTF8: &str = "application/x-www-form-urlencoded;charset=UTF-8";
const FORM: &str = "application/x-www-form-urlencoded";
const CARRIERS: [Carrier; 5] = [
    Carrier::Get,
    Carrier::PostQuery,
    Carrier::PostForm(FORM_UTF8),
    Carrier::PostForm(FORM),
    Carrier::PostForm("Application/X-WWW-Form-Urlencoded; charset=utf-8"),
];

fn encode(params: &[(&str, &str)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        out.append_pair(k, v);
    }
    out.finish()
}

/// Sends `params` to `path` by `carrier`, with an optional `Authorization` header.
async fn send(server: &TestServer, path: &str, carrier: Carrier, params: &[(&str, &str)], auth: Option<&str>) -> Reply {
    let client = plain();
    let encoded = encode(params);
    let mut request = match carrier {
        Carrier::Get => client.get(server.url(&format!("{path}?{encoded}"))),
        Carrier::PostQuery => client.post(server.url(&format!("{path}?{encoded}"))),
        Carrier::PostForm(content_type) => {
            client.post(server.url(path)).header(CONTENT_TYPE, content_type).body(encoded)
        }
    };
    if let Some(auth) = auth {
        request = request.header(AUTHORIZATION, auth);
    }
    Reply::read(request.send().await.unwrap()).await
}

/// POSTs a form (`application/x-www-form-urlencoded`) with an optional `Authorization` header.
async fn post(server: &TestServer, path: &str, params: &[(&str, &str)], auth: Option<&str>) -> Reply {
    send(server, path, Carrier::PostForm(FORM), params, auth).await
}

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

/// A code for any app of the test account registered with `REDIRECT`.
async fn code_for(server: &TestServer, client_id: &str, scope: &str) -> String {
    let browser = Browser::new();
    browser.login(server, OWNER_EMAIL, OWNER_PASSWORD).await;
    let query = encode(&[
        ("client_id", client_id),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("state", "st"),
        ("scope", scope),
    ]);
    let location = browser.approve(server, &query).await;
    assert_eq!(query_param(&location, "state").as_deref(), Some("st"));
    query_param(&location, "code").expect("redirect carries a code")
}

/// Asserts that `access_token` works on the API (`me`).
async fn assert_api_ok(server: &TestServer, access_token: &str) {
    let (status, body) = server.api(access_token, "me").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(body["data"]["email"], OWNER_EMAIL);
}

fn s(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_else(|| panic!("{key} in {v}")).to_owned()
}

// ---------------------------------------------------------------------------------------------------------------
// 1. carriers

#[tokio::test]
async fn token_and_refresh_in_query_and_form_bodies() {
    let server = TestServer::start().await;
    let (id, secret) = (server.client_id.clone(), server.client_secret.clone());
    for carrier in CARRIERS {
        let code = server.code("users_read").await;
        let params = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("client_id", id.as_str()),
            ("client_secret", secret.as_str()),
        ];
        let first = send(&server, "/oauth2/token", carrier, &params, None).await.tokens();
        assert_eq!(first["account_url"], server.base.as_str(), "{carrier:?}");
        assert_api_ok(&server, &s(&first, "access_token")).await;

        let refresh = s(&first, "refresh_token");
        let params = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("client_id", id.as_str()),
            ("client_secret", secret.as_str()),
        ];
        let second = send(&server, "/oauth2/refresh", carrier, &params, None).await.tokens();
        assert_ne!(second["access_token"], first["access_token"], "{carrier:?}");
        assert_api_ok(&server, &s(&second, "access_token")).await;

        let refresh = s(&second, "refresh_token");
        let params = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("client_id", id.as_str()),
            ("client_secret", secret.as_str()),
        ];
        let third = send(&server, "/oauth2/token", carrier, &params, None).await.tokens();
        assert_api_ok(&server, &s(&third, "access_token")).await;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// 2. client authentication

/// A refresh with the given extra parameters and `Authorization` header, using a live refresh token that is
/// replaced on success.
struct Chain<'a> {
    server: &'a TestServer,
    refresh_token: String,
}

impl<'a> Chain<'a> {
    async fn new(server: &'a TestServer) -> Chain<'a> {
        let tokens = server.tokens("users_read").await;
        Chain { server, refresh_token: s(&tokens, "refresh_token") }
    }

    async fn try_refresh(&mut self, carrier: Carrier, extra: &[(&str, &str)], auth: Option<&str>) -> Reply {
        let mut params = vec![("grant_type", "refresh_token"), ("refresh_token", self.refresh_token.as_str())];
        params.extend_from_slice(extra);
        let reply = send(self.server, "/oauth2/token", carrier, &params, auth).await;
        if reply.status == StatusCode::OK {
            self.refresh_token = reply.str("refresh_token");
        }
        reply
    }

    /// Asserts the refresh succeeds and the new access token works.
    async fn accepted(&mut self, what: &str, carrier: Carrier, extra: &[(&str, &str)], auth: Option<&str>) {
        let reply = self.try_refresh(carrier, extra, auth).await;
        assert_eq!(reply.status, StatusCode::OK, "{what}: {}", reply.body);
        let tokens = reply.tokens();
        assert_api_ok(self.server, &s(&tokens, "access_token")).await;
    }
}

#[tokio::test]
async fn client_authentication_in_every_accepted_form() {
    let server = TestServer::start().await;
    let (id, secret) = (server.client_id.as_str(), server.client_secret.as_str());
    let mut chain = Chain::new(&server).await;

    chain.accepted("Basic, raw", Carrier::PostForm(FORM), &[], Some(&basic(id, secret))).await;
    let encoded_id: String = form_urlencoded::byte_serialize(id.as_bytes()).collect();
    let encoded_secret: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    chain
        .accepted("Basic, form-urlencoded", Carrier::PostForm(FORM), &[], Some(&basic(&encoded_id, &encoded_secret)))
        .await;
    // every byte percent-encoded: %XX is decoded inside Basic
    let all_encoded = |text: &str| -> String { text.bytes().map(|b| format!("%{b:02X}")).collect() };
    let auth = basic(&all_encoded(id), &all_encoded(secret));
    chain.accepted("Basic, fully percent-encoded", Carrier::PostForm(FORM), &[], Some(&auth)).await;
    let mut wrong = all_encoded(secret);
    wrong.push_str("%41");
    let reply = chain.try_refresh(Carrier::PostForm(FORM), &[], Some(&basic(&all_encoded(id), &wrong))).await;
    reply.oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    // the scheme name in another case
    let lower = basic(id, secret).replacen("Basic", "basic", 1);
    chain.accepted("basic (lowercase scheme)", Carrier::PostForm(FORM), &[], Some(&lower)).await;
    // Basic on GET and on a bodiless POST
    chain.accepted("Basic on GET", Carrier::Get, &[], Some(&basic(id, secret))).await;
    chain.accepted("Basic on bodiless POST", Carrier::PostQuery, &[], Some(&basic(id, secret))).await;

    let creds = [("client_id", id), ("client_secret", secret)];
    chain.accepted("body", Carrier::PostForm(FORM_UTF8), &creds, None).await;
    chain.accepted("query (GET)", Carrier::Get, &creds, None).await;
    chain.accepted("query (bodiless POST)", Carrier::PostQuery, &creds, None).await;
    chain
        .accepted("Basic and the same values in the body", Carrier::PostForm(FORM), &creds, Some(&basic(id, secret)))
        .await;
    chain
        .accepted(
            "Basic and the same client_id in the body",
            Carrier::PostForm(FORM),
            &creds[..1],
            Some(&basic(id, secret)),
        )
        .await;
}

#[tokio::test]
async fn percent_encoded_dash_inside_basic() {
    let server = TestServer::start().await;
    // register apps until one has a '-' in its secret (about every other one does)
    let mut found = None;
    for n in 0..40 {
        let (id, secret) = server.app(&format!("Dash {n}"), &[REDIRECT], "users_read").await;
        if secret.contains('-') {
            found = Some((id, secret));
            break;
        }
    }
    let (id, secret) = found.expect("an app secret with a '-'");
    let code = code_for(&server, &id, "users_read").await;
    let escaped = secret.replace('-', "%2D");
    assert_ne!(escaped, secret);
    // a different escape is a different secret: the decoding is real, not a lenient comparison
    let params = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT)];
    let wrong = secret.replace('-', "%2E");
    post(&server, "/oauth2/token", &params, Some(&basic(&id, &wrong)))
        .await
        .oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    let params = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT)];
    let tokens = post(&server, "/oauth2/token", &params, Some(&basic(&id, &escaped))).await.tokens();
    assert_api_ok(&server, &s(&tokens, "access_token")).await;
    // and the '-' itself, raw, through a refresh
    let refresh = s(&tokens, "refresh_token");
    let params = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())];
    post(&server, "/oauth2/token", &params, Some(&basic(&id, &secret))).await.tokens();
}

#[tokio::test]
async fn client_authentication_refusals() {
    let server = TestServer::start().await;
    let (id, secret) = (server.client_id.as_str(), server.client_secret.as_str());
    let mut chain = Chain::new(&server).await;
    let form = Carrier::PostForm(FORM);

    // Basic and different values in the body: a malformed request
    let reply = chain.try_refresh(form, &[("client_secret", "other-secret")], Some(&basic(id, secret))).await;
    reply.oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    let (other_id, other_secret) = server.app("Other", &[REDIRECT], "users_read").await;
    let reply = chain
        .try_refresh(
            form,
            &[("client_id", other_id.as_str()), ("client_secret", other_secret.as_str())],
            Some(&basic(id, secret)),
        )
        .await;
    reply.oauth_error(StatusCode::BAD_REQUEST, "invalid_request");

    // no credentials at all
    let reply = chain.try_refresh(form, &[], None).await;
    reply.oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    assert!(!reply.header("www-authenticate").is_empty());
    // an id without a secret
    let reply = chain.try_refresh(form, &[("client_id", id)], None).await;
    reply.oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");

    // a wrong secret through Basic: 401 with a Basic challenge
    let reply = chain.try_refresh(form, &[], Some(&basic(id, "wrong-secret"))).await;
    reply.oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    assert!(reply.header("www-authenticate").starts_with("Basic "), "{:?}", reply.headers);
    // a wrong secret in the body and in the query
    let reply = chain.try_refresh(form, &[("client_id", id), ("client_secret", "wrong-secret")], None).await;
    reply.oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    let reply = chain.try_refresh(Carrier::Get, &[("client_id", id), ("client_secret", "wrong-secret")], None).await;
    reply.oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    // another app's secret
    let reply = chain.try_refresh(form, &[], Some(&basic(id, &other_secret))).await;
    reply.oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    // an unknown client_id, both ways
    let reply = chain.try_refresh(form, &[], Some(&basic("0123456789abcdef0123456789abcdef", secret))).await;
    reply.oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    let reply = chain.try_refresh(form, &[("client_id", "nobody"), ("client_secret", secret)], None).await;
    reply.oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    // malformed Basic headers
    for bad in ["Basic !!!not-base64!!!", &format!("Basic {}", STANDARD.encode("no-colon-here")), "Basic "] {
        let reply = chain.try_refresh(form, &[], Some(bad)).await;
        reply.oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    // a Basic header with invalid UTF-8 inside
    let bad = format!("Basic {}", STANDARD.encode([0xff, b':', 0xfe]));
    chain.try_refresh(form, &[], Some(&bad)).await.oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");

    // none of these spent the refresh token
    chain.accepted("after the refusals", form, &[], Some(&basic(id, secret))).await;
}

// ---------------------------------------------------------------------------------------------------------------
// 3. grant types and grant errors

#[tokio::test]
async fn grant_types_per_endpoint() {
    let server = TestServer::start().await;
    let (id, secret) = (server.client_id.as_str(), server.client_secret.as_str());
    let auth = basic(id, secret);
    let tokens = server.tokens("users_read").await;

    // /oauth2/refresh without grant_type, and with it
    let refresh = s(&tokens, "refresh_token");
    let next = post(&server, "/oauth2/refresh", &[("refresh_token", refresh.as_str())], Some(&auth)).await.tokens();
    assert_api_ok(&server, &s(&next, "access_token")).await;
    let refresh = s(&next, "refresh_token");
    let params = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())];
    let next = post(&server, "/oauth2/refresh", &params, Some(&auth)).await.tokens();
    // grant_type=refresh_token on /oauth2/token
    let refresh = s(&next, "refresh_token");
    let params = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())];
    let next = post(&server, "/oauth2/token", &params, Some(&auth)).await.tokens();
    assert_api_ok(&server, &s(&next, "access_token")).await;
    // rotation: the previous refresh token is refused now
    post(&server, "/oauth2/token", &params, Some(&auth)).await.oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");

    // /oauth2/refresh does not exchange codes
    let code = server.code("users_read").await;
    let params = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT)];
    post(&server, "/oauth2/refresh", &params, Some(&auth))
        .await
        .oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    // ... and that did not spend the code
    post(&server, "/oauth2/token", &params, Some(&auth)).await.tokens();

    // unsupported and missing grant types on /oauth2/token
    let params = [("grant_type", "password"), ("username", OWNER_EMAIL), ("password", OWNER_PASSWORD)];
    post(&server, "/oauth2/token", &params, Some(&auth))
        .await
        .oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    let params = [("grant_type", "client_credentials")];
    post(&server, "/oauth2/token", &params, Some(&auth))
        .await
        .oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    let code = server.code("users_read").await;
    let params = [("code", code.as_str()), ("redirect_uri", REDIRECT)];
    post(&server, "/oauth2/token", &params, Some(&auth)).await.oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    let params = [("grant_type", ""), ("code", code.as_str()), ("redirect_uri", REDIRECT)];
    post(&server, "/oauth2/token", &params, Some(&auth)).await.oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    // the same parameter twice with different values
    let params = [("grant_type", "authorization_code"), ("grant_type", "refresh_token"), ("code", code.as_str())];
    post(&server, "/oauth2/token", &params, Some(&auth)).await.oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
}

#[tokio::test]
async fn code_exchange_errors() {
    let server = TestServer::start().await;
    let auth = basic(&server.client_id, &server.client_secret);
    let token = |params: Vec<(&'static str, String)>| {
        let auth = auth.clone();
        let server = &server;
        async move {
            let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post(server, "/oauth2/token", &params, Some(&auth)).await
        }
    };
    let code = server.code("users_read").await;
    let grant = ("grant_type", "authorization_code".to_owned());

    // missing code, missing redirect_uri: invalid_request
    token(vec![grant.clone(), ("redirect_uri", REDIRECT.into())])
        .await
        .oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    token(vec![grant.clone(), ("code", code.clone())]).await.oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    token(vec![grant.clone(), ("code", code.clone()), ("redirect_uri", String::new())])
        .await
        .oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    // a redirect_uri other than the authorization request's (even one registered for the app): invalid_grant
    token(vec![grant.clone(), ("code", code.clone()), ("redirect_uri", "http://127.0.0.1:9/cb".into())])
        .await
        .oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");

    // a code issued to another app: invalid_grant for that app
    let (other_id, other_secret) = server.app("Other", &[REDIRECT], "users_read").await;
    let code = server.code("users_read").await;
    let params = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT)];
    post(&server, "/oauth2/token", &params, Some(&basic(&other_id, &other_secret)))
        .await
        .oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    // and the other app's own code is not ours either
    let theirs = code_for(&server, &other_id, "users_read").await;
    token(vec![grant.clone(), ("code", theirs.clone()), ("redirect_uri", REDIRECT.into())])
        .await
        .oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");

    // garbage codes and refresh tokens: invalid_grant
    token(vec![grant.clone(), ("code", "garbage".into()), ("redirect_uri", REDIRECT.into())])
        .await
        .oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    let refresh = ("grant_type", "refresh_token".to_owned());
    token(vec![refresh.clone(), ("refresh_token", "garbage".into())])
        .await
        .oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    let reply = post(&server, "/oauth2/refresh", &[("refresh_token", "x".repeat(5000).as_str())], Some(&auth)).await;
    reply.oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    // a refresh without the token: invalid_request
    token(vec![refresh]).await.oauth_error(StatusCode::BAD_REQUEST, "invalid_request");
    // a code presented as a refresh token is not one
    let code = server.code("users_read").await;
    let params = [("grant_type", "refresh_token"), ("refresh_token", code.as_str())];
    post(&server, "/oauth2/token", &params, Some(&auth)).await.oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
}

// ---------------------------------------------------------------------------------------------------------------
// 4. extra parameters are ignored

#[tokio::test]
async fn extra_params_on_refresh_are_ignored() {
    let server = TestServer::start().await;
    let auth = basic(&server.client_id, &server.client_secret);
    let tokens = server.tokens("users_read tasks_read").await;
    // scope (Authlib, requests-oauthlib) and redirect_uri (league) on refresh, on both endpoints
    let refresh = s(&tokens, "refresh_token");
    let params = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
        ("scope", "users_read tasks_read"),
        ("redirect_uri", REDIRECT),
    ];
    let next = post(&server, "/oauth2/token", &params, Some(&auth)).await.tokens();
    assert_api_ok(&server, &s(&next, "access_token")).await;
    let refresh = s(&next, "refresh_token");
    let params = [
        ("refresh_token", refresh.as_str()),
        ("scope", "users_read"),
        ("redirect_uri", "https://elsewhere.example/cb"),
        ("approval_prompt", "auto"),
    ];
    let next = send(&server, "/oauth2/refresh", Carrier::Get, &params, Some(&auth)).await.tokens();
    assert_api_ok(&server, &s(&next, "access_token")).await;
}

#[tokio::test]
async fn extra_params_on_authorize_are_ignored() {
    let server = TestServer::start().await;
    let extras = encode(&[("approval_prompt", "auto"), ("client_secret", &server.client_secret)]);
    let query = format!("{}&{extras}", server.authorize_query("users_read", "xyz"));

    // signed out: sent to the login page and back to the request
    let browser = Browser::new();
    let (status, location, body) = browser.get(&server.url(&format!("/oauth2/authorize?{query}"))).await;
    assert!(status.is_redirection(), "{status}: {body}");
    assert!(location.as_deref().is_some_and(|l| l.starts_with("/login")), "{location:?}");

    // signed in: the consent page, then a code
    browser.login(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
    let location = browser.approve(&server, &query).await;
    assert!(location.starts_with(REDIRECT), "{location}");
    assert_eq!(query_param(&location, "state").as_deref(), Some("xyz"));
    let code = query_param(&location, "code").expect("a code");
    let (status, tokens) = server.exchange(&code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_api_ok(&server, &s(&tokens, "access_token")).await;
}

#[tokio::test]
async fn client_credentials_on_resource_are_ignored() {
    let server = TestServer::start().await;
    let tokens = server.tokens("users_read").await;
    let access = s(&tokens, "access_token");
    let (id, secret) = (server.client_id.as_str(), server.client_secret.as_str());
    let expected = owner(&server);
    for creds in [[("client_id", id), ("client_secret", secret)], [("client_id", id), ("client_secret", "stale")]] {
        let mut params = vec![("access_token", access.as_str())];
        params.extend_from_slice(&creds);
        for carrier in [Carrier::Get, Carrier::PostQuery, Carrier::PostForm(FORM)] {
            let reply = send(&server, "/oauth2/resource", carrier, &params, None).await;
            assert_eq!(reply.status, StatusCode::OK, "{carrier:?}: {}", reply.body);
            assert_eq!(reply.body, expected);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// 5. response shapes

#[tokio::test]
async fn success_and_error_shapes() {
    let server = TestServer::start().await;
    let auth = basic(&server.client_id, &server.client_secret);
    let code = server.code("users_read").await;
    let params = [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT)];
    let reply = post(&server, "/oauth2/token", &params, Some(&auth)).await;
    let tokens = reply.tokens();
    assert_eq!(tokens["expires_in"], json!(86400));
    assert_eq!(tokens["scope"], "users_read");
    // the refresh answer has the same shape
    let refresh = s(&tokens, "refresh_token");
    post(&server, "/oauth2/refresh", &[("refresh_token", refresh.as_str())], Some(&auth)).await.tokens();

    // RFC 6749 §5.2 statuses, the same whichever way the parameters travel
    let bad = StatusCode::BAD_REQUEST;
    let auth = Some(auth.as_str());
    refused_everywhere(&server, "/oauth2/token", &[("grant_type", "authorization_code")], auth, bad, "invalid_request")
        .await;
    refused_everywhere(&server, "/oauth2/token", &[("grant_type", "implicit")], auth, bad, "unsupported_grant_type")
        .await;
    refused_everywhere(&server, "/oauth2/refresh", &[("refresh_token", "nope")], auth, bad, "invalid_grant").await;
    let unauthorized = StatusCode::UNAUTHORIZED;
    refused_everywhere(&server, "/oauth2/refresh", &[("refresh_token", "nope")], None, unauthorized, "invalid_client")
        .await;
    let params =
        [("grant_type", "refresh_token"), ("refresh_token", "nope"), ("client_id", "x"), ("client_secret", "y")];
    refused_everywhere(&server, "/oauth2/token", &params, None, unauthorized, "invalid_client").await;
}

/// Asserts the same OAuth error for `params` sent by every carrier.
async fn refused_everywhere(
    server: &TestServer,
    path: &str,
    params: &[(&str, &str)],
    auth: Option<&str>,
    status: StatusCode,
    code: &str,
) {
    for carrier in CARRIERS {
        send(server, path, carrier, params, auth).await.oauth_error(status, code);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// 6. /oauth2/resource

fn owner(server: &TestServer) -> Value {
    json!({"id": server.owner_user_id.to_string(), "first_name": "Olga", "last_name": "Owner",
           "email": OWNER_EMAIL, "account_url": server.base})
}

#[tokio::test]
async fn resource_token_carriers_and_refusals() {
    let server = TestServer::start().await;
    let tokens = server.tokens("users_read").await;
    let access = s(&tokens, "access_token");
    let expected = owner(&server);

    // Bearer on GET and POST, in any case
    for (scheme, post_it) in [("Bearer", false), ("bearer", false), ("BEARER", true), ("Bearer", true)] {
        let client = plain();
        let url = server.url("/oauth2/resource");
        let request = if post_it { client.post(url) } else { client.get(url) };
        let reply =
            Reply::read(request.header(AUTHORIZATION, format!("{scheme} {access}")).send().await.unwrap()).await;
        assert_eq!(reply.status, StatusCode::OK, "{scheme}: {}", reply.body);
        assert!(reply.header("content-type").starts_with("application/json"));
        assert_eq!(reply.body, expected);
    }
    // ?access_token= on POST (Postman) and GET, and a form-body access_token (pbv7)
    for carrier in [Carrier::PostQuery, Carrier::Get, Carrier::PostForm(FORM), Carrier::PostForm(FORM_UTF8)] {
        let reply = send(&server, "/oauth2/resource", carrier, &[("access_token", access.as_str())], None).await;
        assert_eq!(reply.status, StatusCode::OK, "{carrier:?}: {}", reply.body);
        assert_eq!(reply.body, expected);
    }

    // no token: 401 with a Bearer challenge
    for carrier in [Carrier::Get, Carrier::PostForm(FORM)] {
        let reply = send(&server, "/oauth2/resource", carrier, &[], None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
        assert!(reply.header("www-authenticate").starts_with("Bearer"), "{:?}", reply.headers);
        assert_eq!(reply.body["error"], "invalid_request", "{}", reply.body);
        assert_eq!(reply.header("www-authenticate"), r#"Bearer realm="wsoauth""#, "RFC 6750 §3.1: no error code");
    }
    // a garbage token: 401 invalid_token
    let reply = send(&server, "/oauth2/resource", Carrier::Get, &[("access_token", "garbage")], None).await;
    reply.oauth_error(StatusCode::UNAUTHORIZED, "invalid_token");
    assert!(reply.header("www-authenticate").starts_with("Bearer"));
    assert!(reply.header("www-authenticate").contains("invalid_token"));
    let reply =
        Reply::read(plain().get(server.url("/oauth2/resource")).bearer_auth("a.b.c").send().await.unwrap()).await;
    reply.oauth_error(StatusCode::UNAUTHORIZED, "invalid_token");
    // a refresh token is not an access token
    let reply = send(
        &server,
        "/oauth2/resource",
        Carrier::Get,
        &[("access_token", s(&tokens, "refresh_token").as_str())],
        None,
    )
    .await;
    reply.oauth_error(StatusCode::UNAUTHORIZED, "invalid_token");
}

// ---------------------------------------------------------------------------------------------------------------
// 7. /api/oauth2

async fn api(request: reqwest::RequestBuilder) -> Reply {
    Reply::read(request.send().await.unwrap()).await
}

fn assert_me(reply: &Reply, what: &str) {
    assert_eq!(reply.status, StatusCode::OK, "{what}: {}", reply.body);
    assert_eq!(reply.body["status"], "ok", "{what}: {}", reply.body);
    assert_eq!(reply.body["data"]["email"], OWNER_EMAIL, "{what}");
    assert!(reply.header("content-type").starts_with("application/json"));
}

#[tokio::test]
async fn api_paths_token_and_action_carriers() {
    let server = TestServer::start().await;
    let tokens = server.tokens("users_read").await;
    let access = s(&tokens, "access_token");
    let client = plain();

    for path in ["/api/oauth2", "/api/oauth2/"] {
        let url = server.url(path);
        let with_action = server.url(&format!("{path}?action=me"));
        // Bearer in any case, GET and POST
        for scheme in ["Bearer", "bearer", "BEARER"] {
            let value = format!("{scheme} {access}");
            assert_me(
                &api(client.get(&with_action).header(AUTHORIZATION, &value)).await,
                &format!("GET {path} {scheme}"),
            );
            assert_me(
                &api(client.post(&with_action).header(AUTHORIZATION, &value)).await,
                &format!("POST {path} {scheme}"),
            );
        }
        // the token as a query parameter
        let query = server.url(&format!("{path}?action=me&access_token={access}"));
        assert_me(&api(client.get(&query)).await, "GET access_token query");
        assert_me(&api(client.post(&query)).await, "POST access_token query");
        // action in a JSON body
        let json_body = client.post(&url).bearer_auth(&access).json(&json!({"action": "me"}));
        assert_me(&api(json_body).await, "JSON body");
        let json_body = client
            .post(server.url(&format!("{path}?access_token={access}")))
            .header(CONTENT_TYPE, "application/json; charset=utf-8")
            .body(r#"{"action":"me"}"#);
        assert_me(&api(json_body).await, "JSON body, token in the query");
        // action in a form body
        let form = client.post(&url).bearer_auth(&access).form(&[("action", "me")]);
        assert_me(&api(form).await, "form body");
        let form = client.post(&url).form(&[("action", "me"), ("access_token", access.as_str())]);
        assert_me(&api(form).await, "form body with the token");
        // Content-Type: application/json with an empty body, action in the query
        let empty = client.post(&with_action).bearer_auth(&access).header(CONTENT_TYPE, "application/json").body("");
        assert_me(&api(empty).await, "empty JSON body");
        let empty = client.get(&with_action).bearer_auth(&access).header(CONTENT_TYPE, "application/json");
        assert_me(&api(empty).await, "GET with a JSON content type");
    }
}

#[tokio::test]
async fn api_envelope_errors() {
    let server = TestServer::start().await;
    let tokens = server.tokens("users_read").await;
    let access = s(&tokens, "access_token");
    let client = plain();
    let url = server.url("/api/oauth2");

    // malformed JSON: HTTP 200 with the Worksection envelope
    let reply =
        api(client.post(&url).bearer_auth(&access).header(CONTENT_TYPE, "application/json").body("{\"action\":")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["status"], "error", "{}", reply.body);
    assert!(reply.body["message"].is_string());
    // no action
    for request in [
        client.get(&url).bearer_auth(&access),
        client.post(&url).bearer_auth(&access),
        client.post(&url).bearer_auth(&access).json(&json!({})),
        client.get(server.url("/api/oauth2/?action=")).bearer_auth(&access),
    ] {
        let reply = api(request).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.body, json!({"status": "error", "status_code": 1, "message": "Action is required"}));
    }
    // unknown action
    for request in [
        client.get(server.url("/api/oauth2?action=no_such_action")).bearer_auth(&access),
        client.post(&url).bearer_auth(&access).json(&json!({"action": "no_such_action"})),
    ] {
        let reply = api(request).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.body["status"], "error");
        assert_eq!(reply.body["status_code"], 0);
        assert_eq!(reply.body["message"], "Action is invalid");
    }

    // missing token: 401 with a Bearer challenge naming the realm
    for request in [client.get(server.url("/api/oauth2?action=me")), client.post(&url).json(&json!({"action": "me"}))] {
        let reply = api(request).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
        assert_eq!(reply.body["status"], "error");
        assert!(reply.header("www-authenticate").starts_with("Bearer realm="), "{:?}", reply.headers);
    }
    // a garbage token: 401 invalid_token
    let reply = api(client.get(server.url("/api/oauth2?action=me")).bearer_auth("garbage")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.body["error"], "invalid_token");
    assert!(reply.header("www-authenticate").contains("invalid_token"));

    // a token without users_read calling me: 403 insufficient_scope
    let narrow = server.tokens("tasks_read").await;
    let reply = api(client.get(server.url("/api/oauth2?action=me")).bearer_auth(s(&narrow, "access_token"))).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    assert_eq!(reply.body["error"], "insufficient_scope");
    assert_eq!(reply.body["status"], "error");
    let challenge = reply.header("www-authenticate");
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    assert!(challenge.contains(r#"scope="users_read""#), "{challenge}");
}

// ---------------------------------------------------------------------------------------------------------------
// 8. the oauth2 crate as an independent client

async fn oauth2_crate_flow(auth_type: oauth2::AuthType) {
    use oauth2::basic::BasicClient;
    use oauth2::{
        AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, RedirectUrl, Scope, TokenResponse, TokenUrl,
    };

    let server = TestServer::start().await;
    let client = BasicClient::new(ClientId::new(server.client_id.clone()))
        .set_client_secret(ClientSecret::new(server.client_secret.clone()))
        .set_auth_uri(AuthUrl::new(server.url("/oauth2/authorize")).unwrap())
        .set_token_uri(TokenUrl::new(server.url("/oauth2/token")).unwrap())
        .set_redirect_uri(RedirectUrl::new(REDIRECT.to_owned()).unwrap())
        .set_auth_type(auth_type.clone());
    let http_client =
        oauth2::reqwest::ClientBuilder::new().redirect(oauth2::reqwest::redirect::Policy::none()).build().unwrap();

    // the crate's own authorization URL (scopes joined with '+'), walked by the test browser
    let (auth_url, csrf) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("users_read".into()))
        .add_scope(Scope::new("tasks_read".into()))
        .url();
    let browser = Browser::new();
    browser.login(&server, OWNER_EMAIL, OWNER_PASSWORD).await;
    let location = browser.approve(&server, auth_url.query().unwrap()).await;
    assert_eq!(query_param(&location, "state").as_deref(), Some(csrf.secret().as_str()));
    let code = query_param(&location, "code").expect("a code");

    let first = client
        .exchange_code(AuthorizationCode::new(code))
        .request_async(&http_client)
        .await
        .unwrap_or_else(|e| panic!("{auth_type:?} code exchange: {e:?}"));
    assert_eq!(*first.token_type(), oauth2::basic::BasicTokenType::Bearer);
    assert_eq!(first.expires_in(), Some(std::time::Duration::from_secs(86400)));
    let scopes: Vec<String> = first.scopes().unwrap().iter().map(|s| s.to_string()).collect();
    assert_eq!(scopes, ["tasks_read", "users_read"]);
    assert_api_ok(&server, first.access_token().secret()).await;

    let second = client
        .exchange_refresh_token(first.refresh_token().expect("a refresh token"))
        .request_async(&http_client)
        .await
        .unwrap_or_else(|e| panic!("{auth_type:?} refresh: {e:?}"));
    assert_ne!(second.access_token().secret(), first.access_token().secret());
    assert_api_ok(&server, second.access_token().secret()).await;

    // the same client pointed at /oauth2/refresh
    let refresher = client.clone().set_token_uri(TokenUrl::new(server.url("/oauth2/refresh")).unwrap());
    let third = refresher
        .exchange_refresh_token(second.refresh_token().expect("a refresh token"))
        .request_async(&http_client)
        .await
        .unwrap_or_else(|e| panic!("{auth_type:?} refresh at /oauth2/refresh: {e:?}"));
    assert_api_ok(&server, third.access_token().secret()).await;

    // a spent refresh token is refused in a way the crate understands
    let refused = client
        .exchange_refresh_token(first.refresh_token().expect("a refresh token"))
        .request_async(&http_client)
        .await;
    match refused {
        Err(oauth2::RequestTokenError::ServerResponse(error)) => {
            assert_eq!(*error.error(), oauth2::basic::BasicErrorResponseType::InvalidGrant);
        }
        other => panic!("{auth_type:?}: expected invalid_grant, got {other:?}"),
    }
}

#[tokio::test]
async fn oauth2_crate_with_basic_auth() {
    oauth2_crate_flow(oauth2::AuthType::BasicAuth).await;
}

#[tokio::test]
async fn oauth2_crate_with_request_body_auth() {
    oauth2_crate_flow(oauth2::AuthType::RequestBody).await;
}
