//! `KeySet::verify` on arbitrary tokens, with one test key generated at start.
//!
//! The first byte picks the mode:
//! - `S`: the rest is a header and a payload (JSON, split at the first newline; `KID` in the header becomes the
//!   test key's id), signed with the test key, so the header and claims checks behind the signature are reached;
//! - `M`: a token signed for fixed claims, changed at the places the rest names (pairs of a position byte and
//!   a new byte), which must be refused unless nothing changed;
//! - anything else: the rest is the token as sent, which must be refused.

#![no_main]

use std::sync::{Arc, OnceLock};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use libfuzzer_sys::fuzz_target;
use wsoauth_server::jwt::{Claims, KeySet, SigningKey, TokenError};

const ISSUER: &str = "https://auth.example.com";
const NOW: i64 = 1_700_000_000;

struct Fixture {
    keys: KeySet,
    /// The same private key, to sign arbitrary payloads.
    pair: KeyPair,
    /// A valid token for fixed claims.
    token: String,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let (der, kid) = SigningKey::generate().expect("key");
        let key = Arc::new(SigningKey::from_pkcs8(&kid, &der).expect("key"));
        let keys = KeySet::new(key.clone(), vec![key]);
        let pair = KeyPair::from_pkcs8(&der).expect("key");
        let claims = Claims {
            iss: ISSUER.into(),
            sub: "1".into(),
            aud: "client".into(),
            exp: NOW + 3600,
            iat: NOW,
            nbf: NOW,
            jti: "jti".into(),
            scope: "tasks_read users_read".into(),
            client_id: "client".into(),
            gid: 1,
            generation: 1,
        };
        let token = keys.sign(&claims).expect("sign");
        assert_eq!(keys.verify(&token, ISSUER, NOW), Ok(claims));
        Fixture { keys, pair, token }
    })
}

fn check_accepted(claims: &Claims) {
    assert_eq!(claims.iss, ISSUER);
    assert!(claims.exp > NOW);
    assert!(claims.nbf <= NOW + 60);
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    let (mode, rest) = data.split_first().map_or((b'R', &[][..]), |(m, r)| (*m, r));
    match mode {
        b'S' => {
            let mut parts = rest.splitn(2, |b| *b == b'\n');
            let header =
                String::from_utf8_lossy(parts.next().unwrap_or_default()).replace("KID", &fixture.keys.active.kid);
            let payload = parts.next().unwrap_or_default();
            let mut token = format!("{}.{}", B64.encode(header.as_bytes()), B64.encode(payload));
            let mut signature = vec![0; fixture.pair.public_modulus_len()];
            fixture.pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), token.as_bytes(), &mut signature).unwrap();
            token.push('.');
            token.push_str(&B64.encode(signature));
            let result = fixture.keys.verify(&token, ISSUER, NOW);
            if let Ok(claims) = &result {
                check_accepted(claims);
            }
            if let Ok(claims) = fixture.keys.verify_ignoring_expiry(&token, ISSUER, NOW) {
                assert_eq!(claims.iss, ISSUER);
                assert!(result.is_ok() || result == Err(TokenError::Expired));
            }
        }
        b'M' => {
            let mut token = fixture.token.clone().into_bytes();
            for edit in rest.chunks_exact(2) {
                let at = usize::from(edit[0]) * token.len() / 256;
                token[at] = edit[1];
            }
            let Ok(token) = String::from_utf8(token) else {
                return;
            };
            let result = fixture.keys.verify(&token, ISSUER, NOW);
            if token == fixture.token {
                assert!(result.is_ok());
            } else {
                assert!(result.is_err(), "a changed token verified: {token}");
            }
        }
        _ => {
            let token = String::from_utf8_lossy(rest);
            assert!(fixture.keys.verify_ignoring_expiry(&token, ISSUER, NOW).is_err());
        }
    }
});
