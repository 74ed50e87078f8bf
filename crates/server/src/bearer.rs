//! Access-token checks shared by `/oauth2/resource` and `/api/oauth2`: the token comes as
//! `Authorization: Bearer` (scheme in any case) or as an `access_token` parameter (RFC 6750 §2), is verified
//! (RS256, key id, issuer, lifetime), and is honoured only while its grant is live and at its generation.
//!
//! Two caches keep a token used again off the slow paths: verified signatures (`VerifiedTokens`: a token's
//! claims once its RS256 signature checked out; its lifetime is still checked on every use) and grant state
//! (`Store::grant_state_cached`, bounded by `--token-cache`; see `wsoauth_storage`'s cache for how fresh it is).

use std::hash::Hasher;
use std::sync::{Arc, RwLock};

use axum::http::{HeaderMap, header};
use wsoauth_domain::{RandomSource, constant_time_eq};
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
    let facts = match key.as_ref().and_then(|key| state.verified.get(key, now)) {
        Some(facts) => facts,
        None => {
            let mut verified = state.keys().verify(token, &state.public_url, now);
            // A key id we do not know may have been rotated in on another node: read the keys again (at most
            // every 5 s).
            if verified == Err(TokenError::UnknownKey) && state.reload_keys_if_older_than(5).await {
                verified = state.keys().verify(token, &state.public_url, now);
            }
            let facts = Arc::new(TokenFacts::from(verified.map_err(|error| match error {
                TokenError::Expired => BearerError::Expired,
                _ => BearerError::Invalid,
            })?));
            if let Some(key) = &key {
                state.verified.put(key, facts.clone());
            }
            facts
        }
    };
    let grant = state
        .store
        .grant_state_cached(facts.gid, now)
        .await
        .map_err(|error| {
            tracing::error!(%error, "grant lookup failed");
            BearerError::Storage
        })?
        .ok_or(BearerError::Revoked)?;
    if grant.revoked
        || grant.grant.generation != facts.generation
        || *grant.client_id != *facts.client_id
        || facts.user_id != Some(grant.grant.user_id)
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

/// Tokens whose RS256 signature, key id and issuer have been checked, each with what a request needs of its claims:
/// using a token again costs a hash and a comparison instead of an RSA verification. Only tokens that verified are
/// kept (so only holders of real tokens can fill it), expired ones are never answered, and the whole table is dropped
/// when the signing keys are read again or it reaches its size.
///
/// The table is indexed by a fast seeded hash of the whole token and an entry answers only a token equal to the one
/// it keeps, compared in constant time: the hash needs no strength of its own, since a colliding token is still
/// compared in full. With an HMAC-SHA256 tag of the token as the key (before) the look-up cost 5.1 % of `me`'s CPU
/// for a 1 KB token, now 1.9 % (`me` 14.5 -> 13.5 µs of server CPU, three interleaved bench rounds); the entry keeps
/// the token (about 1 KB with every scope) but of its claims only five numbers and the client id (they were about
/// 600 bytes), so a full table of 100,000 tokens holds about 110 MB instead of 65.
pub struct VerifiedTokens {
    enabled: bool,
    /// The hash's seeds, from the server's random source.
    seed: u64,
    shared_seed: foldhash::SharedSeed,
    entries: RwLock<hashbrown::HashTable<Remembered>>,
}

/// A verified token and what its claims say.
struct Remembered {
    token: Box<str>,
    hash: u64,
    facts: Arc<TokenFacts>,
}

/// A presented token and its hash.
struct TokenKey<'t> {
    token: &'t str,
    hash: u64,
}

impl TokenKey<'_> {
    /// Whether `entry` remembers this very token (compared in full, in constant time).
    fn is(&self, entry: &Remembered) -> bool {
        entry.hash == self.hash && constant_time_eq(entry.token.as_bytes(), self.token.as_bytes())
    }
}

/// What a request needs of a verified token's claims.
#[derive(Debug)]
struct TokenFacts {
    gid: i64,
    generation: i64,
    client_id: Box<str>,
    /// `sub` as a user id (`None`: not a number, so it matches no grant).
    user_id: Option<i64>,
    nbf: i64,
    exp: i64,
}

impl From<Claims> for TokenFacts {
    fn from(claims: Claims) -> Self {
        TokenFacts {
            gid: claims.gid,
            generation: claims.generation,
            client_id: claims.client_id.into(),
            user_id: claims.sub.parse().ok(),
            nbf: claims.nbf,
            exp: claims.exp,
        }
    }
}

/// The most tokens remembered.
const VERIFIED_CAPACITY: usize = 100_000;

impl VerifiedTokens {
    pub fn new(enabled: bool, random: &dyn RandomSource) -> VerifiedTokens {
        let (mut seed, mut shared) = ([0u8; 8], [0u8; 8]);
        random.fill(&mut seed);
        random.fill(&mut shared);
        VerifiedTokens {
            enabled,
            seed: u64::from_le_bytes(seed),
            shared_seed: foldhash::SharedSeed::from_u64(u64::from_le_bytes(shared)),
            entries: RwLock::new(hashbrown::HashTable::new()),
        }
    }

    /// What `token` is looked up and remembered by (`None` when the cache is off): hashed once per request.
    fn key<'t>(&self, token: &'t str) -> Option<TokenKey<'t>> {
        if !self.enabled {
            return None;
        }
        let mut hasher = foldhash::fast::FoldHasher::with_seed(self.seed, &self.shared_seed);
        hasher.write(token.as_bytes());
        Some(TokenKey { token, hash: hasher.finish() })
    }

    /// The facts of the token if it verified before and is still within its lifetime.
    fn get(&self, key: &TokenKey<'_>, now: i64) -> Option<Arc<TokenFacts>> {
        let entries = self.entries.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let facts = &entries.find(key.hash, |entry| key.is(entry))?.facts;
        (facts.nbf <= now + crate::jwt::LEEWAY && now < facts.exp).then(|| facts.clone())
    }

    /// Remembers a token that just verified.
    fn put(&self, key: &TokenKey<'_>, facts: Arc<TokenFacts>) {
        let mut entries = self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= VERIFIED_CAPACITY {
            entries.clear();
        }
        match entries.entry(key.hash, |entry| key.is(entry), |entry| entry.hash) {
            hashbrown::hash_table::Entry::Occupied(mut entry) => entry.get_mut().facts = facts,
            hashbrown::hash_table::Entry::Vacant(entry) => {
                entry.insert(Remembered { token: key.token.into(), hash: key.hash, facts });
            }
        }
    }

    /// Forgets every token (the keys that verified them were read again).
    pub fn clear(&self) {
        self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner()).clear();
    }
}
