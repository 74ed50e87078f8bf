//! The OAuth 2.0 endpoints: authorize, token, refresh, resource.

pub mod authorize;
mod client;
mod error;
pub mod resource;
pub mod token;

pub use error::OAuthResponseError;
