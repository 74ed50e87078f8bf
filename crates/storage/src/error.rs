use thiserror::Error;

use crate::model::Rotation;

/// A database failure. Its text is for logs only, never for responses.
#[derive(Debug, Error)]
pub enum StorageError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration {version} failed: {source}")]
    Migration { version: i64, source: sqlx::Error },
    #[error("invalid database URL {0:?}: use sqlite://PATH (or sqlite::memory:)")]
    BadUrl(String),
    #[error("could not create the database folder {path}: {source}")]
    CreateDir { path: String, source: std::io::Error },
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

/// Why an authorization code was not exchanged.
#[derive(Debug, Error)]
pub enum ExchangeError {
    #[error("unknown authorization code")]
    Unknown,
    #[error("authorization code was already used; its tokens are revoked")]
    Replayed,
    #[error("authorization code has expired")]
    Expired,
    #[error("authorization code was issued to another client")]
    WrongClient,
    #[error("redirect_uri does not match the authorization request")]
    RedirectMismatch,
    #[error("code_verifier is missing or does not match the code_challenge")]
    VerifierMismatch,
    #[error("code_verifier sent for a code issued without a code_challenge")]
    UnexpectedVerifier,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<sqlx::Error> for ExchangeError {
    fn from(error: sqlx::Error) -> Self {
        ExchangeError::Storage(error.into())
    }
}

/// Why a refresh token was not rotated.
#[derive(Debug, Error)]
pub enum RefreshError {
    #[error("unknown refresh token")]
    Unknown,
    #[error("refresh token was already rotated")]
    Rotated(Box<Rotation>),
    #[error("refresh token has expired")]
    Expired,
    #[error("refresh token was issued to another client")]
    WrongClient,
    #[error("the grant was revoked")]
    Revoked,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<sqlx::Error> for RefreshError {
    fn from(error: sqlx::Error) -> Self {
        RefreshError::Storage(error.into())
    }
}
