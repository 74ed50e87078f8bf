//! Property tests of the server's pure intake code: request parameters, API page paths and emails, and JWT
//! verification. Unit tests (not in `tests/it`) since they need no running server.

use std::sync::{Arc, OnceLock};

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;

use crate::api::intake::{parse_page, valid_email};
use crate::jwt::{Claims, KeySet, SigningKey, TokenError};
use crate::params::{ParamError, Params};

/// 256 cases a property (`PROPTEST_CASES` raises it); failures are not written to files next to the sources.
fn config() -> ProptestConfig {
    ProptestConfig { failure_persistence: None, ..ProptestConfig::default() }
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[ -~]{0,30}", "[a-z=&%+;.\\[\\]{}\":, 0-9]{0,40}"]
}

fn content_type() -> impl Strategy<Value = Option<Vec<u8>>> {
    proptest::option::of(prop_oneof![
        Just(b"application/x-www-form-urlencoded".to_vec()),
        Just(b"application/x-www-form-urlencoded; charset=UTF-8".to_vec()),
        Just(b"application/json".to_vec()),
        Just(b"APPLICATION/JSON ; charset=utf-8".to_vec()),
        Just(b"application/vnd.api+json".to_vec()),
        Just(b"text/plain".to_vec()),
        Just(b"multipart/form-data; boundary=x".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..40),
    ])
}

fn headers_with(content_type: Option<&[u8]>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(value) = content_type.and_then(|v| HeaderValue::from_bytes(v).ok()) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        text().prop_map(String::into_bytes),
        // JSON-shaped bodies, valid or not
        "\\{(\"[a-z.\\[\\]]{0,5}\":(1|-2.5e3|true|null|\"[a-z ,]{0,5}\"|\\[1,\"a\",null,\\{\\}\\]|\\{\"b\":\\[\\]\\}),?){0,6}\\}?"
            .prop_map(String::into_bytes),
    ]
}

/// Pairs with non-empty keys (empty keys are dropped by the intake).
fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec(("[a-c_\\[\\]. ]{1,3}|\\PC{1,4}", text()), 0..12)
}

fn encode(pairs: &[(String, String)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        serializer.append_pair(key, value);
    }
    serializer.finish()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn params_never_panic(
        query in proptest::option::of(text()),
        content_type in content_type(),
        body in body(),
    ) {
        let headers = headers_with(content_type.as_deref());
        if let Ok(params) = Params::parse(query.as_deref(), &headers, &body) {
            for key in ["action", "a", "x", "ids", "ids[]", "o.a"] {
                let first = params.get(key);
                prop_assert_eq!(first, params.get_all(key).next());
                if let Ok(single) = params.single(key) {
                    prop_assert_eq!(single, first);
                }
            }
        }
    }

    #[test]
    fn query_and_form_merge_in_order(
        query in pairs(),
        form in pairs(),
        content_type in prop_oneof![
            Just(None),
            Just(Some(b"application/x-www-form-urlencoded".to_vec())),
            Just(Some(b"Application/X-WWW-Form-Urlencoded; charset=UTF-8".to_vec())),
        ],
    ) {
        let headers = headers_with(content_type.as_deref());
        let body = encode(&form);
        let params = Params::parse(Some(&encode(&query)), &headers, body.as_bytes()).expect("parses");
        // A blank body (no pairs) adds nothing; otherwise every value of a key comes query first, then body.
        for (key, _) in query.iter().chain(&form) {
            let expected: Vec<&str> =
                query.iter().chain(&form).filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect();
            prop_assert_eq!(params.get_all(key).collect::<Vec<_>>(), expected);
            let distinct = params.get_all(key).any(|v| Some(v) != params.get(key));
            prop_assert_eq!(params.single(key).is_err(), distinct);
        }
    }

    #[test]
    fn json_keys_follow_the_query(query in pairs(), object in proptest::collection::btree_map("[a-z]{1,4}", "[a-z0-9 ]{0,6}", 0..8)) {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let body = serde_json::to_vec(&object).unwrap();
        let params = Params::parse(Some(&encode(&query)), &headers, &body).expect("parses");
        for (key, value) in &object {
            let mut expected: Vec<&str> = query.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect();
            expected.push(value);
            prop_assert_eq!(params.get_all(key).collect::<Vec<_>>(), expected);
        }
    }

    #[test]
    fn too_many_params_are_refused(count in 990usize..1010) {
        let query = vec!["a=1"; count].join("&");
        let parsed = Params::parse(Some(&query), &HeaderMap::new(), b"");
        if count <= 1000 {
            prop_assert!(parsed.is_ok());
        } else {
            prop_assert_eq!(parsed, Err(ParamError::TooMany));
        }
    }

    #[test]
    fn pages_round_trip(project in 1i64..(1 << 53), task in proptest::option::of(1i64..(1 << 53)), host in "(https?://[a-z.]{1,10})?") {
        let page = match task {
            Some(task) => format!("{host}/project/{project}/{task}/"),
            None => format!("{host}/project/{project}/"),
        };
        prop_assert_eq!(parse_page(&page), Some((project, task)));
        if let Some(task) = task {
            prop_assert_eq!(parse_page(&format!("{host}/project/{project}/7/{task}/")), Some((project, Some(task))));
        }
    }

    #[test]
    fn pages_never_panic(page in prop_oneof![text(), "(/project)?(/[0-9a-z-]{0,20}){0,5}/?"]) {
        if let Some((project, task)) = parse_page(&page) {
            prop_assert!(project > 0);
            prop_assert!(task.is_none_or(|t| t > 0));
        }
    }

    #[test]
    fn emails_are_lowercased_and_stable(email in prop_oneof![text(), "[A-Za-z0-9.+]{1,10}@[A-Za-z0-9.-]{1,10}"]) {
        if let Some(valid) = valid_email(&email) {
            prop_assert_eq!(valid.matches('@').count(), 1);
            prop_assert_eq!(&valid, &valid.to_lowercase());
            prop_assert_eq!(valid_email(&valid), Some(valid.clone()));
        }
    }
}

// ---- JWT ----

/// One key for every case: generating an RSA key takes a while.
fn keys() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| {
        let (der, kid) = SigningKey::generate().unwrap();
        let key = Arc::new(SigningKey::from_pkcs8(&kid, &der).unwrap());
        KeySet::new(key.clone(), vec![key])
    })
}

const ISSUER: &str = "https://issuer.example";

/// Claims valid at `now`.
fn claims() -> impl Strategy<Value = (Claims, i64)> {
    (
        (0i64..4_000_000_000, 1i64..1_000_000, -1_000_000i64..=60),
        (any::<String>(), any::<String>(), "[a-z_ ]{0,40}", any::<String>()),
        (any::<i64>(), any::<i64>()),
    )
        .prop_map(|((now, ttl, nbf_offset), (sub, aud, scope, jti), (gid, generation))| {
            let claims = Claims {
                iss: ISSUER.into(),
                sub,
                aud: aud.clone(),
                exp: now + ttl,
                iat: now,
                nbf: now + nbf_offset,
                jti,
                scope,
                client_id: aud,
                gid,
                generation,
            };
            (claims, now)
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn signed_tokens_verify((claims, now) in claims()) {
        let token = keys().sign(&claims).unwrap();
        prop_assert_eq!(keys().verify(&token, ISSUER, now), Ok(claims.clone()));
        prop_assert_eq!(keys().verify(&token, ISSUER, claims.exp), Err(TokenError::Expired));
        prop_assert_eq!(keys().verify_ignoring_expiry(&token, ISSUER, claims.exp), Ok(claims.clone()));
        prop_assert_eq!(keys().verify(&token, "https://other.example", now), Err(TokenError::Invalid));
    }

    #[test]
    fn any_changed_character_is_refused((claims, now) in claims(), at in any::<proptest::sample::Index>(), with in "[A-Za-z0-9_.=+/-]") {
        let token = keys().sign(&claims).unwrap();
        let at = at.index(token.len());
        let with = with.chars().next().unwrap();
        prop_assume!(token.as_bytes()[at] != with as u8);
        let mut changed = token.clone();
        changed.replace_range(at..=at, &with.to_string());
        prop_assert!(keys().verify_ignoring_expiry(&changed, ISSUER, now).is_err(), "{}", changed);
        let truncated = &token[..at];
        prop_assert!(keys().verify_ignoring_expiry(truncated, ISSUER, now).is_err());
    }

    #[test]
    fn arbitrary_tokens_are_refused(
        header in prop_oneof![
            text(),
            Just(r#"{"alg":"RS256","kid":"KID"}"#.to_owned()),
            Just(r#"{"alg":"none","kid":"KID"}"#.to_owned()),
            Just(r#"{"alg":"HS256","kid":"KID"}"#.to_owned()),
        ],
        payload in text(),
        signature in proptest::collection::vec(any::<u8>(), 0..300),
        raw in text(),
    ) {
        let header = header.replace("KID", &keys().active.kid);
        let token = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(signature)
        );
        prop_assert!(keys().verify_ignoring_expiry(&token, ISSUER, 0).is_err());
        prop_assert!(keys().verify_ignoring_expiry(&raw, ISSUER, 0).is_err());
    }
}
