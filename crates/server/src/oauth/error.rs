//! The OAuth protocol error family (RFC 6749 §5.2, RFC 6750 §3): JSON with `error`, `error_description` and
//! Worksection's `errorDescription`; never cached.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use wsoauth_types::{OAuthError, OAuthErrorBody};

#[derive(Debug)]
pub struct OAuthResponseError {
    pub status: StatusCode,
    pub body: OAuthErrorBody,
    pub www_authenticate: Option<String>,
    /// Seconds for `Retry-After` (429 answers).
    pub retry_after: Option<i64>,
}

impl OAuthResponseError {
    pub fn new(error: OAuthError, description: impl Into<String>) -> Self {
        let status = match error {
            OAuthError::InvalidClient | OAuthError::InvalidToken => StatusCode::UNAUTHORIZED,
            OAuthError::InsufficientScope => StatusCode::FORBIDDEN,
            OAuthError::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            OAuthError::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        let www_authenticate = match error {
            OAuthError::InvalidClient => Some(r#"Basic realm="wsoauth""#.to_owned()),
            _ => None,
        };
        OAuthResponseError {
            status,
            body: OAuthErrorBody::new(error, description),
            www_authenticate,
            retry_after: None,
        }
    }

    /// 429 with `Retry-After`: too many failed client authentications for this client_id.
    pub fn too_many_failures(blocked: crate::limits::Blocked) -> Self {
        let description =
            format!("Too many failed client authentications for this client; try again in {}", blocked.wait_text());
        let mut error = Self::new(OAuthError::TemporarilyUnavailable, description);
        error.status = StatusCode::TOO_MANY_REQUESTS;
        error.retry_after = Some(blocked.retry_after);
        error
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(OAuthError::InvalidRequest, description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(OAuthError::InvalidGrant, description)
    }

    pub fn server_error() -> Self {
        Self::new(OAuthError::ServerError, "The server could not complete the request")
    }
}

/// Headers every token-endpoint answer carries (RFC 6749 §5.1).
pub fn no_store() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}

impl IntoResponse for OAuthResponseError {
    fn into_response(self) -> Response {
        let mut response = (self.status, no_store(), Json(self.body)).into_response();
        if let Some(challenge) = self.www_authenticate.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
        }
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<wsoauth_storage::StorageError> for OAuthResponseError {
    fn from(error: wsoauth_storage::StorageError) -> Self {
        if let wsoauth_storage::StorageError::Unstorable(_) = error {
            return Self::invalid_request("a parameter holds characters that cannot be stored");
        }
        tracing::error!(%error, "storage failure on an OAuth endpoint");
        Self::server_error()
    }
}

impl From<crate::params::ParamError> for OAuthResponseError {
    fn from(error: crate::params::ParamError) -> Self {
        Self::invalid_request(error.to_string())
    }
}
