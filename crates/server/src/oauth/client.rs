//! Client authentication at the token endpoints (RFC 6749 §2.3.1): HTTP Basic (raw or form-urlencoded inside),
//! `client_id`/`client_secret` in the body or the query, or both with the same values; public clients by
//! `client_id` alone.

use std::sync::Arc;

use axum::http::{HeaderMap, header};
use wsoauth_domain::basic::{decode_basic, is_basic};
use wsoauth_domain::constant_time_eq;
use wsoauth_storage::App;
use wsoauth_types::OAuthError;

use super::OAuthResponseError;
use crate::params::Params;
use crate::state::{AppState, purpose};

const FAILED: &str = "Client authentication failed";

/// The authenticated app.
pub async fn authenticate(
    state: &AppState,
    params: &Params,
    headers: &HeaderMap,
) -> Result<Arc<App>, OAuthResponseError> {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let basic = match authorization {
        Some(value) if is_basic(value) => {
            Some(decode_basic(value).ok_or_else(|| OAuthResponseError::new(OAuthError::InvalidClient, FAILED))?)
        }
        _ => None,
    };
    let body_id = params.non_empty("client_id")?;
    let body_secret = params.non_empty("client_secret")?;
    // Candidate (id, secret) pairs: Basic as decoded and as raw (they are the same for ids and secrets issued here).
    let mut candidates: Vec<(String, String)> = Vec::with_capacity(2);
    if let Some(basic) = &basic {
        candidates.push(basic.decoded.clone());
        if basic.raw != basic.decoded {
            candidates.push(basic.raw.clone());
        }
        let agrees = |value: Option<&str>, pick: fn(&(String, String)) -> &String| {
            value.is_none_or(|v| candidates.iter().any(|c| pick(c) == v))
        };
        if !agrees(body_id, |c| &c.0) || !agrees(body_secret, |c| &c.1) {
            return Err(OAuthResponseError::invalid_request(
                "Client credentials were sent both in the Authorization header and in the request with different values",
            ));
        }
    } else {
        match (body_id, body_secret) {
            (Some(id), Some(secret)) => candidates.push((id.to_owned(), secret.to_owned())),
            (Some(id), None) => candidates.push((id.to_owned(), String::new())),
            _ => return Err(OAuthResponseError::new(OAuthError::InvalidClient, "client_id is required")),
        }
    }
    // Failures count per client_id tried; over the limit even the right secret is refused.
    let ids = candidates.iter().map(|(id, _)| id.as_str()).filter(|id| id.len() <= 200);
    let attempt = state.limits.client_auth(ids, state.now()).map_err(|blocked| {
        tracing::info!(retry_after = blocked.retry_after, "client authentication refused: too many failures");
        OAuthResponseError::too_many_failures(blocked)
    })?;
    for (id, secret) in &candidates {
        if id.len() > 200 || secret.len() > 400 {
            continue;
        }
        let Some(app) = state.store.app_by_client_id_cached(id, state.now()).await? else {
            continue;
        };
        // A public client identifies itself by its id alone (RFC 6749 §2.1); PKCE binds its codes instead.
        let authenticated = if app.public {
            secret.is_empty()
        } else {
            !secret.is_empty() && constant_time_eq(&state.digest(purpose::CLIENT_SECRET, secret), &app.secret_digest)
        };
        if authenticated {
            attempt.succeeded();
            return Ok(app);
        }
    }
    tracing::info!("client authentication failed");
    Err(OAuthResponseError::new(OAuthError::InvalidClient, FAILED))
}
