//! OAuth 2.0 endpoint bodies (RFC 6749 §5.1, §5.2) in the shape Worksection clients read.

use serde::{Deserialize, Serialize};

/// A successful `/oauth2/token` or `/oauth2/refresh` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub token_type: String,
    /// Seconds; always an integer on the wire (the oauth2 crate refuses a string).
    pub expires_in: u64,
    pub access_token: String,
    pub refresh_token: String,
    /// The base URL of the account the token belongs to; the API lives at `{account_url}/api/oauth2`.
    pub account_url: String,
    /// The granted scopes, space-separated (RFC 6749 §5.1).
    pub scope: String,
}

/// The `error` codes of RFC 6749 §4.1.2.1 and §5.2, plus RFC 6750 §3.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OAuthError {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    AccessDenied,
    ServerError,
    TemporarilyUnavailable,
    InvalidToken,
    InsufficientScope,
}

impl OAuthError {
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthError::InvalidRequest => "invalid_request",
            OAuthError::InvalidClient => "invalid_client",
            OAuthError::InvalidGrant => "invalid_grant",
            OAuthError::UnauthorizedClient => "unauthorized_client",
            OAuthError::UnsupportedGrantType => "unsupported_grant_type",
            OAuthError::UnsupportedResponseType => "unsupported_response_type",
            OAuthError::InvalidScope => "invalid_scope",
            OAuthError::AccessDenied => "access_denied",
            OAuthError::ServerError => "server_error",
            OAuthError::TemporarilyUnavailable => "temporarily_unavailable",
            OAuthError::InvalidToken => "invalid_token",
            OAuthError::InsufficientScope => "insufficient_scope",
        }
    }
}

/// An OAuth 2.0 error body. Both spellings of the description are sent: RFC 6749 clients read
/// `error_description`, the Worksection clients read `errorDescription`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthErrorBody {
    pub error: OAuthError,
    pub error_description: String,
    #[serde(rename = "errorDescription")]
    pub error_description_camel: String,
}

impl OAuthErrorBody {
    pub fn new(error: OAuthError, description: impl Into<String>) -> Self {
        let description = description.into();
        OAuthErrorBody { error, error_description_camel: description.clone(), error_description: description }
    }
}

/// The `/oauth2/resource` answer: exactly the keys the league provider reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceOwner {
    /// The user's id in the account, as a string.
    pub id: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub account_url: String,
}
