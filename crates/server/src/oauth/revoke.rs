//! Token revocation (RFC 7009) at `/oauth2/revoke` and introspection (RFC 7662) at `/oauth2/introspect`. Both
//! authenticate the client and act only on tokens issued to it. Revoking either token of a pair ends the whole
//! grant.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use wsoauth_storage::{App, Grant};

use super::OAuthResponseError;
use super::client::authenticate;
use super::error::no_store;
use crate::audit::{self, Entry, Event};
use crate::jwt::Claims;
use crate::limits::ClientIp;
use crate::params::Params;
use crate::state::{AppState, Shared};

/// A token of the calling client, found as an access token or a refresh token.
enum Found {
    Access(Claims),
    Refresh { grant: Grant, current: bool, revoked: bool, issued_at: i64, expires_at: i64 },
}

impl Found {
    fn grant_id(&self) -> i64 {
        match self {
            Found::Access(claims) => claims.gid,
            Found::Refresh { grant, .. } => grant.id,
        }
    }
}

/// Looks `token` up as the hint suggests first, then as the other kind; only tokens of `app` are found.
async fn find(
    state: &AppState,
    app: &App,
    token: &str,
    hint: Option<&str>,
) -> Result<Option<Found>, OAuthResponseError> {
    let access_first = hint != Some("refresh_token");
    for access in [access_first, !access_first] {
        let found = if access {
            state
                .keys()
                .verify_ignoring_expiry(token, &state.public_url, state.now())
                .ok()
                .filter(|claims| claims.client_id == app.client_id)
                .map(Found::Access)
        } else {
            let digest = state.refresh_key(token);
            state.store.refresh_state(&digest).await?.filter(|r| r.grant.app_id == app.id).map(|r| Found::Refresh {
                current: r.token_generation == r.grant.generation,
                revoked: r.revoked,
                issued_at: r.issued_at,
                expires_at: r.expires_at,
                grant: r.grant,
            })
        };
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

async fn intake(
    state: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(std::sync::Arc<App>, Params), OAuthResponseError> {
    let params = Params::parse(uri.query(), headers, body)?;
    let app = authenticate(state, &params, headers).await?;
    Ok((app, params))
}

fn token_param(params: &Params) -> Result<&str, OAuthResponseError> {
    params.non_empty("token")?.ok_or_else(|| OAuthResponseError::invalid_request("token is required"))
}

/// RFC 7009: 200 whether or not the token was known (so tokens cannot be probed); the grant ends.
pub async fn revoke(
    State(state): State<Shared>,
    ClientIp(ip): ClientIp,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = async {
        let (app, params) = intake(&state, &uri, &headers, &body).await?;
        let token = token_param(&params)?;
        if let Some(found) = find(&state, &app, token, params.get("token_type_hint")).await?
            && state.store.revoke_grant(found.grant_id(), state.now()).await?
        {
            tracing::info!(client_id = %app.client_id, grant = found.grant_id(), "grant revoked by the client");
            let user_id = match &found {
                Found::Access(claims) => claims.sub.parse().ok(),
                Found::Refresh { grant, .. } => Some(grant.user_id),
            };
            let detail = format!("grant {} revoked by the app (/oauth2/revoke)", found.grant_id());
            let entry = Entry { user_id, ..Entry::new().client(&app.client_id).ip(ip).detail(detail) };
            audit::record(&state, Event::TokenRevoked, entry).await;
        }
        Ok::<_, OAuthResponseError>(())
    }
    .await;
    match result {
        Ok(()) => (StatusCode::OK, no_store()).into_response(),
        Err(error) => error.into_response(),
    }
}

/// RFC 7662: `{"active":false}` for anything not live and issued to the caller.
pub async fn introspect(State(state): State<Shared>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let (app, params) = intake(&state, &uri, &headers, &body).await?;
        let token = token_param(&params)?;
        let found = find(&state, &app, token, params.get("token_type_hint")).await?;
        describe(&state, &app, found).await
    }
    .await;
    match result {
        Ok(body) => (StatusCode::OK, no_store(), Json(body)).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn describe(state: &AppState, app: &App, found: Option<Found>) -> Result<Value, OAuthResponseError> {
    let inactive = json!({"active": false});
    let Some(found) = found else {
        return Ok(inactive);
    };
    let now = state.now();
    let Some(live) = state.store.grant_state(found.grant_id()).await? else {
        return Ok(inactive);
    };
    let username = live.member.person.email.clone();
    Ok(match found {
        Found::Access(claims) => {
            if live.revoked || live.grant.generation != claims.generation || claims.exp <= now {
                return Ok(inactive);
            }
            json!({
                "active": true, "token_type": "Bearer", "scope": claims.scope, "client_id": claims.client_id,
                "username": username, "sub": claims.sub, "aud": claims.aud, "iss": claims.iss,
                "exp": claims.exp, "iat": claims.iat, "nbf": claims.nbf, "jti": claims.jti,
            })
        }
        Found::Refresh { grant, current, revoked, issued_at, expires_at } => {
            if revoked || !current || expires_at <= now {
                return Ok(inactive);
            }
            json!({
                "active": true, "token_type": "refresh_token", "scope": grant.scopes, "client_id": app.client_id,
                "username": username, "sub": grant.user_id.to_string(), "iss": state.public_url,
                "exp": expires_at, "iat": issued_at,
            })
        }
    })
}
