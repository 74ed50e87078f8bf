//! Argon2id for user passwords (only for passwords: every other secret has 256 bits of entropy and a fast keyed
//! digest). Hashing runs on the blocking pool.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use wsoauth_domain::RandomSource;

#[derive(Clone, Debug)]
pub struct Passwords {
    params: Params,
    /// A hash of a random password: verified against when the email is unknown, so both cases cost the same.
    decoy: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("invalid Argon2 parameters: {0}")]
    Params(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("password task failed")]
    Join,
}

impl Passwords {
    pub fn new(memory_kib: u32, passes: u32, random: &dyn RandomSource) -> Result<Passwords, PasswordError> {
        let params = Params::new(memory_kib, passes, 1, None).map_err(|e| PasswordError::Params(e.to_string()))?;
        let mut passwords = Passwords { params, decoy: String::new() };
        let mut secret = [0u8; 16];
        random.fill(&mut secret);
        passwords.decoy = passwords.hash_sync(&format!("{secret:?}"), random)?;
        Ok(passwords)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    fn hash_sync(&self, password: &str, random: &dyn RandomSource) -> Result<String, PasswordError> {
        let mut salt = [0u8; 16];
        random.fill(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
        self.argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| PasswordError::Hash(e.to_string()))
    }

    pub async fn hash(
        &self,
        password: String,
        random: std::sync::Arc<dyn RandomSource>,
    ) -> Result<String, PasswordError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.hash_sync(&password, random.as_ref()))
            .await
            .map_err(|_| PasswordError::Join)?
    }

    /// Whether `password` matches `hash`; with `None` (unknown person) it checks a decoy and answers false.
    pub async fn verify(&self, password: String, hash: Option<String>) -> bool {
        let this = self.clone();
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.decoy.clone());
        let checked = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .map(|parsed| this.argon2().verify_password(password.as_bytes(), &parsed).is_ok())
                .unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        known && checked
    }
}
