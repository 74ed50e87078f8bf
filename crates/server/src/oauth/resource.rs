//! `/oauth2/resource`: who the token speaks for. GET or POST; the token as Bearer, `?access_token=` or a form
//! field; client credentials, when sent, are ignored (the token alone authorises).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use wsoauth_types::{OAuthError, ResourceOwner};

use super::OAuthResponseError;
use super::error::no_store;
use crate::bearer::{BearerError, authenticate, token_of};
use crate::params::Params;
use crate::state::Shared;

pub async fn resource(State(state): State<Shared>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let params = match Params::parse(uri.query(), &headers, &body) {
        Ok(params) => params,
        Err(error) => return OAuthResponseError::from(error).into_response(),
    };
    match authenticate(&state, token_of(&headers, &params)).await {
        Ok(auth) => {
            let member = &auth.grant.member;
            let owner = ResourceOwner {
                id: member.user_id.to_string(),
                first_name: member.person.first_name.clone(),
                last_name: member.person.last_name.clone(),
                email: member.person.email.clone(),
                account_url: state.account_url(&member.account),
            };
            (no_store(), Json(owner)).into_response()
        }
        Err(BearerError::Storage) => OAuthResponseError::server_error().into_response(),
        Err(error) => {
            let code =
                if error == BearerError::Missing { OAuthError::InvalidRequest } else { OAuthError::InvalidToken };
            let mut response = OAuthResponseError::new(code, error.description()).into_response();
            *response.status_mut() = axum::http::StatusCode::UNAUTHORIZED;
            if let Ok(challenge) = HeaderValue::from_str(&error.challenge()) {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
            }
            response
        }
    }
}
