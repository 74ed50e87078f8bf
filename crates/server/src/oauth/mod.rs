//! The OAuth 2.0 endpoints: authorize, token, refresh, resource, revoke, introspect, and discovery.

pub mod authorize;
mod client;
pub mod discovery;
mod error;
pub mod resource;
pub mod revoke;
pub mod token;

pub use error::OAuthResponseError;
