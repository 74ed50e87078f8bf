//! Access-token checks shared by `/oauth2/resource` and `/api/oauth2`: the token comes as
//! `Authorization: Bearer` (scheme in any case) or as an `access_token` parameter (RFC 6750 §2), is verified
//! (RS256, key id, issuer, lifetime), and is honoured only while its grant is live and at its generation.
//!
//! Two caches keep a token used again off the slow paths: verified signatures (`VerifiedTokens`: a token's
//! claims once its RS256 signature checked out; its lifetime is still checked on every use) and grant state
//! (`Store::grant_state_cached`, bounded by `--token-cache`; see `wsoauth_storage`'s cache for how fresh it is).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::http::{HeaderMap, header};
use wsoauth_domain::RandomSource;
use wsoauth_storage::GrantState;
use wsoauth_types::ScopeSet;

use crate::jwt::{Claims, TokenError};
use crate::params::Params;
use crate::state::AppState;

/// A verified access token and what it speaks for.
#[derive(Debug)]
pub struct Authenticated {
    pub grant: Arc<GrantState>,
    pub scopes: ScopeSet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerError {
    /// No token at all (RFC 6750 §3.1: the challenge carries no error code).
    Missing,
    Invalid,
    Expired,
    Revoked,
    Storage,
}

impl BearerError {
    pub fn description(self) -> &'static str {
        match self {
            BearerError::Missing => "Access token is missing",
            BearerError::Invalid => "Access token is invalid",
            BearerError::Expired => "Access token is expired",
            BearerError::Revoked => "Access token has been revoked",
            BearerError::Storage => "The server could not check the access token",
        }
    }

    /// The metric label of the reason.
    pub fn label(self) -> &'static str {
        match self {
            BearerError::Missing => "missing",
            BearerError::Invalid => "invalid",
            BearerError::Expired => "expired",
            BearerError::Revoked => "revoked",
            BearerError::Storage => "storage",
        }
    }

    /// The `WWW-Authenticate` challenge.
    pub fn challenge(self) -> String {
        match self {
            BearerError::Missing => r#"Bearer realm="wsoauth""#.to_owned(),
            other => {
                format!(r#"Bearer realm="wsoauth", error="invalid_token", error_description="{}""#, other.description())
            }
        }
    }
}

/// The token of a request: the Bearer header wins; otherwise the `access_token` parameter.
pub fn token_of<'a>(headers: &'a HeaderMap, params: &'a Params) -> Option<&'a str> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    from_header.or_else(|| params.get("access_token")).filter(|t| !t.is_empty())
}

/// Checks a request's access token; a refusal is counted by reason (`wsoauth_bearer_failures_total`).
pub async fn authenticate(state: &AppState, token: Option<&str>) -> Result<Authenticated, BearerError> {
    let checked = check(state, token).await;
    if let Err(error) = checked {
        crate::observe::bearer_failure(error.label());
    }
    checked
}

async fn check(state: &AppState, token: Option<&str>) -> Result<Authenticated, BearerError> {
    let token = token.ok_or(BearerError::Missing)?;
    let now = state.now();
    let key = state.verified.key(token);
    let claims = match key.as_ref().and_then(|key| state.verified.get(key, now)) {
        Some(claims) => claims,
        None => {
            let mut verified = state.keys().verify(token, &state.public_url, now);
            // A key id we do not know may have been rotated in on another node: read the keys again (at most
            // every 5 s).
            if verified == Err(TokenError::UnknownKey) && state.reload_keys_if_older_than(5).await {
                verified = state.keys().verify(token, &state.public_url, now);
            }
            let claims = Arc::new(verified.map_err(|error| match error {
                TokenError::Expired => BearerError::Expired,
                _ => BearerError::Invalid,
            })?);
            if let Some(key) = key {
                state.verified.put(key, claims.clone());
            }
            claims
        }
    };
    let grant = state
        .store
        .grant_state_cached(claims.gid, now)
        .await
        .map_err(|error| {
            tracing::error!(%error, "grant lookup failed");
            BearerError::Storage
        })?
        .ok_or(BearerError::Revoked)?;
    if grant.revoked
        || grant.grant.generation != claims.generation
        || grant.client_id != claims.client_id
        || claims.sub.parse::<i64>() != Ok(grant.grant.user_id)
    {
        return Err(BearerError::Revoked);
    }
    if !grant.access_used {
        // the first use of this generation's access token ends the refresh grace window for it
        if let Err(error) = state.store.mark_access_used(grant.grant.id, grant.grant.generation).await {
            tracing::warn!(%error, "could not record the use of an access token");
        }
    }
    let scopes = ScopeSet::parse(&grant.grant.scopes).map_err(|_| BearerError::Invalid)?;
    Ok(Authenticated { grant, scopes })
}

/// Tokens whose RS256 signature, key id and issuer have been checked, by a keyed digest of the whole token: using a
/// token again costs a hash instead of an RSA verification. Only tokens that verified are kept (so only holders of
/// real tokens can fill it), expired ones are never answered, and the whole map is dropped when the signing keys
/// are read again or it reaches its size.
pub struct VerifiedTokens {
    enabled: bool,
    /// The digest: HMAC-SHA256 under a key of this process's own (the map lives in memory only), on the CPU's SHA
    /// instructions where it has them, into a fixed-size key. Measured on `me`: 3.5 % of its CPU against 4.2 %
    /// for the stored digests' keyed BLAKE2b and its allocation.
    tag_key: aws_lc_rs::hmac::Key,
    entries: RwLock<HashMap<TokenTag, Arc<Claims>>>,
}

/// What a verified token is remembered by.
type TokenTag = [u8; 32];

/// The most tokens remembered.
const VERIFIED_CAPACITY: usize = 100_000;

impl VerifiedTokens {
    pub fn new(enabled: bool, random: &dyn RandomSource) -> VerifiedTokens {
        let mut key = [0u8; 32];
        random.fill(&mut key);
        let tag_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &key);
        VerifiedTokens { enabled, tag_key, entries: RwLock::new(HashMap::new()) }
    }

    /// The key a token is remembered by (`None` when the cache is off): computed once per request.
    fn key(&self, token: &str) -> Option<TokenTag> {
        if !self.enabled {
            return None;
        }
        let tag = aws_lc_rs::hmac::sign(&self.tag_key, token.as_bytes());
        tag.as_ref().try_into().ok()
    }

    /// The claims of a token verified before and still within its lifetime.
    fn get(&self, key: &TokenTag, now: i64) -> Option<Arc<Claims>> {
        let entries = self.entries.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let claims = entries.get(key)?;
        (claims.nbf <= now + crate::jwt::LEEWAY && now < claims.exp).then(|| claims.clone())
    }

    fn put(&self, key: TokenTag, claims: Arc<Claims>) {
        let mut entries = self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= VERIFIED_CAPACITY {
            entries.clear();
        }
        entries.insert(key, claims);
    }

    /// Forgets every token (the keys that verified them were read again).
    pub fn clear(&self) {
        self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner()).clear();
    }
}
