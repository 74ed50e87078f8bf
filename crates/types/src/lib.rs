//! Wire types shared by the wsoauth server and its clients: scopes, token responses, OAuth errors and the
//! Worksection API envelope.

mod api;
mod oauth;
mod scope;

pub use api::{ApiError, ApiErrorCode};
pub use oauth::{OAuthError, OAuthErrorBody, ResourceOwner, TokenResponse};
pub use scope::{Scope, ScopeSet, UnknownScope};
