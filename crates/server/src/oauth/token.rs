//! `/oauth2/token` (authorization code and refresh token grants) and `/oauth2/refresh`, on GET or POST with
//! parameters in the query or a form body.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use wsoauth_domain::secret::hex;
use wsoauth_domain::stamped;
use wsoauth_storage::{CodeExchange, ExchangeError, Grant, NewRefresh, RefreshError, Rotation};
use wsoauth_types::{OAuthError, TokenResponse};

use super::OAuthResponseError;
use super::client::authenticate;
use super::error::no_store;
use crate::audit::{self, Entry, Event};
use crate::jwt::Claims;
use crate::observe;
use crate::params::Params;
use crate::state::{AppState, Shared};

/// `/oauth2/token`: `grant_type` is `authorization_code` or `refresh_token`.
pub async fn token(State(state): State<Shared>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    respond(&state, uri, headers, body, None).await
}

/// `/oauth2/refresh`: the refresh grant, with or without `grant_type`.
pub async fn refresh(State(state): State<Shared>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    respond(&state, uri, headers, body, Some("refresh_token")).await
}

async fn respond(state: &AppState, uri: Uri, headers: HeaderMap, body: Bytes, default_grant: Option<&str>) -> Response {
    match issue(state, uri, headers, body, default_grant).await {
        Ok(tokens) => (no_store(), Json(tokens)).into_response(),
        Err(error) => {
            let endpoint = if default_grant.is_some() { "refresh" } else { "token" };
            observe::token_failure(endpoint, error.body.error.as_str());
            error.into_response()
        }
    }
}

async fn issue(
    state: &AppState,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    default_grant: Option<&str>,
) -> Result<TokenResponse, OAuthResponseError> {
    let params = Params::parse(uri.query(), &headers, &body)?;
    let grant_type = params.non_empty("grant_type")?.or(default_grant);
    let grant_type = match grant_type {
        Some(g @ ("authorization_code" | "refresh_token")) if default_grant.is_none() || g == "refresh_token" => g,
        Some(other) => {
            return Err(OAuthResponseError::new(
                OAuthError::UnsupportedGrantType,
                format!("grant_type {other:?} is not supported here"),
            ));
        }
        None => return Err(OAuthResponseError::invalid_request("grant_type is required")),
    };
    let app = authenticate(state, &params, &headers).await?;
    let now = state.now();
    if grant_type == "authorization_code" {
        let code = params.non_empty("code")?.ok_or_else(|| OAuthResponseError::invalid_request("code is required"))?;
        let redirect_uri = params
            .non_empty("redirect_uri")?
            .ok_or_else(|| OAuthResponseError::invalid_request("redirect_uri is required"))?;
        let verifier = params.non_empty("code_verifier")?;
        let refresh_token = state.new_stamped(now);
        let next = NewRefresh {
            digest: state.refresh_key(&refresh_token),
            expires_at: now + state.settings.refresh_token_ttl,
        };
        let digest = state.code_key(code);
        let exchange =
            CodeExchange { code_digest: &digest, app_id: app.id, redirect_uri, code_verifier: verifier, now };
        // the audit entry, which the exchange completes with the grant (`NewAuditEvent::issued`) and stores
        let audited = audit::row(state, Event::TokenIssued, &Entry::new().client(&app.client_id));
        let exchanged = state.store.exchange_code(&exchange, &next, &audited).await;
        if let Err(ExchangeError::Replayed) = &exchanged {
            observe::code_replayed();
            audit::code_replayed(state, &app.client_id, &digest).await;
        }
        let grant = exchanged.map_err(|error| {
            tracing::info!(client_id = %app.client_id, reason = %error, "authorization code refused");
            match error {
                ExchangeError::Unknown => OAuthResponseError::invalid_grant("Authorization code is invalid"),
                ExchangeError::Replayed => OAuthResponseError::invalid_grant("Authorization code has been revoked"),
                ExchangeError::Expired => OAuthResponseError::invalid_grant("Authorization code has expired"),
                ExchangeError::WrongClient => {
                    OAuthResponseError::invalid_grant("Authorization code was not issued to this client")
                }
                ExchangeError::RedirectMismatch => OAuthResponseError::invalid_grant(
                    "redirect_uri does not match the one in the authorization request",
                ),
                ExchangeError::VerifierMismatch => {
                    OAuthResponseError::invalid_grant("code_verifier is missing or does not match the code_challenge")
                }
                ExchangeError::UnexpectedVerifier => OAuthResponseError::invalid_grant(
                    "code_verifier was sent, but the authorization request had no code_challenge",
                ),
                ExchangeError::Storage(error) => error.into(),
            }
        })?;
        audit::log_row(Event::TokenIssued, &audited.issued(&grant));
        let issued = tokens(state, &app.client_id, &grant, refresh_token, now, now).await?;
        observe::token_issued("authorization_code");
        return Ok(issued);
    }
    let presented = params
        .non_empty("refresh_token")?
        .ok_or_else(|| OAuthResponseError::invalid_request("refresh_token is required"))?;
    let mut nonce = [0u8; 16];
    state.random.fill(&mut nonce);
    // derived, not stored, so that the grace window can answer it again (`stamped::derived`)
    let refresh_token = stamped::derived(&state.hasher, now, presented, &nonce);
    let next =
        NewRefresh { digest: state.refresh_key(&refresh_token), expires_at: now + state.settings.refresh_token_ttl };
    let digest = state.refresh_key(presented);
    // the audit entry, which the rotation completes with the grant (`NewAuditEvent::rotated`) and stores
    let audited = audit::row(state, Event::TokenRefreshed, &Entry::new().client(&app.client_id));
    match state.store.rotate_refresh(&digest, app.id, now, &nonce, &next, &audited).await {
        Ok(grant) => {
            audit::log_row(Event::TokenRefreshed, &audited.rotated(&grant));
            let issued = tokens(state, &app.client_id, &grant, refresh_token, now, now).await?;
            observe::token_issued("refresh_token");
            observe::refresh("rotated");
            Ok(issued)
        }
        Err(RefreshError::Rotated(rotation)) => reused(state, &app.client_id, presented, &rotation, now).await,
        Err(error) => {
            observe::refresh("refused");
            tracing::info!(client_id = %app.client_id, reason = %error, "refresh token refused");
            Err(match error {
                RefreshError::Unknown => OAuthResponseError::invalid_grant("Refresh token is invalid"),
                RefreshError::Rotated(_) | RefreshError::Revoked => {
                    OAuthResponseError::invalid_grant("Refresh token has been revoked")
                }
                RefreshError::Expired => OAuthResponseError::invalid_grant("Refresh token has expired"),
                RefreshError::WrongClient => {
                    OAuthResponseError::invalid_grant("Refresh token was not issued to this client")
                }
                RefreshError::Storage(error) => error.into(),
            })
        }
    }
}

/// A rotated refresh token presented again (RFC 9700 §4.14). Within the grace window, for the previous
/// generation, while the new pair is unused, it is a client whose response was lost: it gets the very same pair.
/// Anything else is a replay: the whole grant is revoked.
async fn reused(
    state: &AppState,
    client_id: &str,
    presented: &str,
    rotation: &Rotation,
    now: i64,
) -> Result<TokenResponse, OAuthResponseError> {
    let grace = state.settings.refresh_reuse_grace;
    if grace > 0
        && rotation.token_generation + 1 == rotation.grant.generation
        && now - rotation.rotated_at <= grace
        && !rotation.access_used
        && !rotation.nonce.is_empty()
    {
        tracing::info!(client_id, grant = rotation.grant.id, "rotated refresh token within the grace window");
        let again = stamped::derived(&state.hasher, rotation.rotated_at, presented, &rotation.nonce);
        let issued = tokens(state, client_id, &rotation.grant, again, rotation.rotated_at, now).await;
        if issued.is_ok() {
            observe::refresh("grace");
        }
        return issued;
    }
    state.store.revoke_grant(rotation.grant.id, now).await?;
    observe::refresh("refused");
    observe::refresh_reused();
    tracing::warn!(client_id, grant = rotation.grant.id, "refresh token reuse detected: the grant is revoked");
    let detail =
        format!("generation {} presented again; grant {} revoked", rotation.token_generation, rotation.grant.id);
    audit::record(
        state,
        Event::RefreshReused,
        Entry::new().user(rotation.grant.user_id).client(client_id).detail(detail),
    )
    .await;
    Err(OAuthResponseError::invalid_grant("Refresh token has been revoked"))
}

/// The pair of a grant's current generation, issued at `issued_at`. The access token is a function of the
/// refresh token and the issue time (its `jti` is derived from the refresh token), so the same generation always
/// yields the same pair.
async fn tokens(
    state: &AppState,
    client_id: &str,
    grant: &Grant,
    refresh_token: String,
    issued_at: i64,
    now: i64,
) -> Result<TokenResponse, OAuthResponseError> {
    let member = state
        .store
        .member_cached(grant.user_id, now)
        .await?
        .ok_or_else(|| OAuthResponseError::invalid_grant("The user of this grant no longer exists"))?;
    let claims = Claims {
        iss: state.public_url.clone(),
        sub: grant.user_id.to_string(),
        aud: client_id.to_owned(),
        exp: issued_at + state.settings.access_token_ttl,
        iat: issued_at,
        nbf: issued_at,
        jti: hex(&state.digest("access-jti", &refresh_token)[..20]),
        scope: grant.scopes.clone(),
        client_id: client_id.to_owned(),
        gid: grant.id,
        generation: grant.generation,
    };
    let access_token = state.keys().sign(&claims).map_err(|error| {
        tracing::error!(%error, "access token signing failed");
        OAuthResponseError::server_error()
    })?;
    Ok(TokenResponse {
        token_type: "bearer".into(),
        expires_in: (issued_at + state.settings.access_token_ttl - now).max(0) as u64,
        access_token,
        refresh_token,
        account_url: state.account_url(&member.account),
        scope: grant.scopes.clone(),
    })
}
