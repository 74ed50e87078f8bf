//! RS256 JWT access tokens, signed with kept, parsed aws-lc-rs keys (parsing an RSA private key costs more than
//! signing with it, so keys are parsed once at start and on rotation, never per token).

use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// One signing key: its id, the parsed private key and the parsed public key.
pub struct SigningKey {
    pub kid: String,
    pair: KeyPair,
    public: ParsedPublicKey,
    /// base64url big-endian modulus and exponent, for a JWKS.
    pub n: String,
    pub e: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

#[derive(Debug, Error)]
pub enum KeyError {
    #[error("RSA key generation failed")]
    Generate,
    #[error("stored signing key {0} is not a valid PKCS#8 RSA key")]
    Parse(String),
    #[error("signing failed")]
    Sign,
}

impl SigningKey {
    /// A new 2048-bit RSA key and its PKCS#8 DER encoding (to store).
    pub fn generate() -> Result<(Vec<u8>, String), KeyError> {
        let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Generate)?;
        let der = pair.as_der().map_err(|_| KeyError::Generate)?;
        let der = der.as_ref().to_vec();
        let kid = kid_of(&der);
        Ok((der, kid))
    }

    pub fn from_pkcs8(kid: &str, der: &[u8]) -> Result<SigningKey, KeyError> {
        let bad = || KeyError::Parse(kid.to_owned());
        let pair = KeyPair::from_pkcs8(der).map_err(|_| bad())?;
        let public_key = pair.public_key();
        let public = ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key.as_ref()).map_err(|_| bad())?;
        let n = B64.encode(public_key.modulus().big_endian_without_leading_zero());
        let e = B64.encode(public_key.exponent().big_endian_without_leading_zero());
        Ok(SigningKey { kid: kid.to_owned(), pair, public, n, e })
    }
}

/// A key id derived from the key itself (stable across nodes).
fn kid_of(der: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    B64.encode(&digest.as_ref()[..12])
}

/// The claims of a wsoauth access token.
/// Seconds a token's `nbf` may lie ahead of this clock (another node's clock may run a little fast).
pub const LEEWAY: i64 = 60;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    /// The user id in the account.
    pub sub: String,
    /// The client id of the app.
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    /// Granted scopes, space-separated (RFC 9068).
    pub scope: String,
    pub client_id: String,
    /// The grant (token family) and its generation: a token is honoured only while both are current.
    pub gid: i64,
    pub generation: i64,
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
}

/// Why a token was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("bad signature")]
    BadSignature,
    #[error("signed with an unknown key")]
    UnknownKey,
    #[error("token expired")]
    Expired,
    #[error("token not valid for this issuer or not yet valid")]
    Invalid,
}

/// The current signing key and every key whose tokens may still be alive.
#[derive(Debug)]
pub struct KeySet {
    pub active: Arc<SigningKey>,
    pub all: Vec<Arc<SigningKey>>,
    rng: SystemRandom,
}

const MAX_TOKEN_LEN: usize = 8192;

impl KeySet {
    pub fn new(active: Arc<SigningKey>, all: Vec<Arc<SigningKey>>) -> Self {
        KeySet { active, all, rng: SystemRandom::new() }
    }

    pub fn sign(&self, claims: &Claims) -> Result<String, KeyError> {
        let header = Header { alg: "RS256".into(), typ: Some("JWT".into()), kid: Some(self.active.kid.clone()) };
        let header = serde_json::to_vec(&header).map_err(|_| KeyError::Sign)?;
        let payload = serde_json::to_vec(claims).map_err(|_| KeyError::Sign)?;
        let mut token = String::with_capacity(900);
        B64.encode_string(header, &mut token);
        token.push('.');
        B64.encode_string(payload, &mut token);
        let mut signature = vec![0; self.active.pair.public_modulus_len()];
        self.active
            .pair
            .sign(&RSA_PKCS1_SHA256, &self.rng, token.as_bytes(), &mut signature)
            .map_err(|_| KeyError::Sign)?;
        token.push('.');
        B64.encode_string(signature, &mut token);
        Ok(token)
    }

    /// Checks the signature, the algorithm (RS256 only), the key id, the issuer and the lifetime.
    pub fn verify(&self, token: &str, issuer: &str, now: i64) -> Result<Claims, TokenError> {
        let claims = self.verify_ignoring_expiry(token, issuer, now)?;
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }

    /// Like `verify`, but an expired token still answers its claims (for revocation).
    pub fn verify_ignoring_expiry(&self, token: &str, issuer: &str, now: i64) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header: Header = B64
            .decode(header_b64)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(TokenError::Malformed)?;
        if header.alg != "RS256" {
            return Err(TokenError::BadSignature);
        }
        let kid = header.kid.ok_or(TokenError::BadSignature)?;
        let key = self.all.iter().find(|key| key.kid == kid).ok_or(TokenError::UnknownKey)?;
        let signature = B64.decode(signature_b64).map_err(|_| TokenError::Malformed)?;
        let signed_len = header_b64.len() + 1 + payload_b64.len();
        key.public.verify_sig(&token.as_bytes()[..signed_len], &signature).map_err(|_| TokenError::BadSignature)?;
        let claims: Claims = B64
            .decode(payload_b64)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(TokenError::Malformed)?;
        if claims.iss != issuer || claims.nbf > now + LEEWAY {
            return Err(TokenError::Invalid);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyset() -> KeySet {
        let (der, kid) = SigningKey::generate().unwrap();
        let key = Arc::new(SigningKey::from_pkcs8(&kid, &der).unwrap());
        KeySet::new(key.clone(), vec![key])
    }

    fn claims(exp: i64) -> Claims {
        Claims {
            iss: "https://issuer".into(),
            sub: "7".into(),
            aud: "client".into(),
            exp,
            iat: 100,
            nbf: 100,
            jti: "j".into(),
            scope: "tasks_read".into(),
            client_id: "client".into(),
            gid: 1,
            generation: 1,
        }
    }

    #[test]
    fn round_trip_and_refusals() {
        let keys = keyset();
        let token = keys.sign(&claims(1000)).unwrap();
        assert_eq!(keys.verify(&token, "https://issuer", 500), Ok(claims(1000)));
        assert_eq!(keys.verify(&token, "https://issuer", 1000), Err(TokenError::Expired));
        assert_eq!(keys.verify(&token, "https://other", 500), Err(TokenError::Invalid));
        let mut tampered = token.clone();
        tampered.insert(token.find('.').unwrap() + 3, 'A');
        assert!(keys.verify(&tampered, "https://issuer", 500).is_err());
        assert_eq!(keys.verify("a.b", "https://issuer", 500), Err(TokenError::Malformed));
        let other = keyset();
        assert_eq!(other.verify(&token, "https://issuer", 500), Err(TokenError::UnknownKey));
        // alg=none is refused
        let (_, rest) = token.split_once('.').unwrap();
        let none = format!("{}.{}", B64.encode(r#"{"alg":"none","kid":"x"}"#), rest);
        assert_eq!(keys.verify(&none, "https://issuer", 500), Err(TokenError::BadSignature));
    }
}
