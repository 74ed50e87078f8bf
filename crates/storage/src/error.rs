use thiserror::Error;

use crate::model::Rotation;

/// A database failure. Its text is for logs only, never for responses.
#[derive(Debug, Error)]
pub enum StorageError {
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// A value the database cannot hold, such as text with a NUL character (PostgreSQL refuses it; the caller's
    /// input was bad, so callers answer it as a bad request).
    #[error("the database cannot store this value: {0}")]
    Unstorable(sqlx::Error),
    /// A failure on the direct SQLite connection (`crate::direct`).
    #[error("database error: {0}")]
    Direct(rusqlite::Error),
    #[error("migration {version} failed: {source}")]
    Migration { version: i64, source: sqlx::Error },
    #[error("invalid database URL {0:?}: use sqlite://PATH, sqlite::memory: or postgres://USER@HOST/DB")]
    BadUrl(String),
    #[error("could not connect to {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("could not create the database folder {path}: {source}")]
    CreateDir { path: String, source: std::io::Error },
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StorageError {
    fn from(error: sqlx::Error) -> Self {
        // 22021: character_not_in_repertoire (a NUL in text); 22P05: untranslatable_character.
        let unstorable =
            error.as_database_error().and_then(|db| db.code()).is_some_and(|c| c == "22021" || c == "22P05");
        if unstorable { StorageError::Unstorable(error) } else { StorageError::Database(error) }
    }
}

impl From<rusqlite::Error> for StorageError {
    fn from(error: rusqlite::Error) -> Self {
        StorageError::Direct(error)
    }
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
