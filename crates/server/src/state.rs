//! What every handler shares: the store, the settings, the clock, randomness, the digest key and the keys.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use wsoauth_domain::secret::{random_hex, random_token};
use wsoauth_domain::{Clock, RandomSource, SecretHasher, stamped};
use wsoauth_storage::{Account, Store};

use crate::config::Settings;
use crate::jwt::KeySet;
use crate::password::Passwords;

pub type Shared = Arc<AppState>;

pub struct AppState {
    pub store: Store,
    pub settings: Settings,
    /// The public base URL, without a trailing slash: the token issuer.
    pub public_url: String,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn RandomSource>,
    pub hasher: SecretHasher,
    /// The signing keys; swapped whole when keys are rotated (here or on another node).
    pub keys: RwLock<Arc<KeySet>>,
    /// When the keys were last read from the database.
    pub keys_loaded_at: AtomicI64,
    pub passwords: Passwords,
    /// Brute-force limits on sign-ins and client authentication.
    pub limits: crate::limits::Limits,
    /// Cookies get `Secure` (and the `__Host-` prefix) when the public URL is https.
    pub secure_cookies: bool,
    /// This server's metrics (`/metrics`): its own recorder, not the process-wide one.
    pub metrics: crate::observe::Metrics,
    /// Access tokens whose signature has been checked (see `crate::bearer`).
    pub verified: crate::bearer::VerifiedTokens,
}

/// Digest domains: a secret of one kind can never be presented as another.
pub mod purpose {
    pub const CLIENT_SECRET: &str = "client-secret";
    pub const SESSION: &str = "session";
}

impl AppState {
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The current key set.
    pub fn keys(&self) -> Arc<KeySet> {
        match self.keys.read() {
            Ok(keys) => keys.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads the keys from the database again (after a rotation, possibly on another node).
    pub async fn reload_keys(&self) -> Result<(), crate::startup::StartError> {
        let keys = Arc::new(crate::startup::load_keys(&self.store, self.now()).await?);
        self.keys_loaded_at.store(self.now(), Ordering::Relaxed);
        match self.keys.write() {
            Ok(mut slot) => *slot = keys,
            Err(poisoned) => *poisoned.into_inner() = keys,
        }
        self.verified.clear();
        Ok(())
    }

    /// Reloads the keys unless they were loaded in the last `seconds` (so unknown key ids cannot force a read
    /// per request). Returns whether it reloaded.
    pub async fn reload_keys_if_older_than(&self, seconds: i64) -> bool {
        let now = self.now();
        let last = self.keys_loaded_at.load(Ordering::Relaxed);
        if now - last < seconds
            || self.keys_loaded_at.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err()
        {
            return false;
        }
        match self.reload_keys().await {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(%error, "reloading the signing keys failed");
                false
            }
        }
    }

    pub fn digest(&self, purpose: &str, secret: &str) -> Vec<u8> {
        self.hasher.digest(purpose, secret)
    }

    /// The key a refresh token is stored under (`wsoauth_domain::stamped`: it begins with the token's issue time).
    pub fn refresh_key(&self, token: &str) -> Vec<u8> {
        stamped::key(&self.hasher, stamped::REFRESH, token)
    }

    /// The key an authorization code is stored under (as a refresh token's: it begins with the code's issue time).
    pub fn code_key(&self, code: &str) -> Vec<u8> {
        stamped::key(&self.hasher, stamped::CODE, code)
    }

    /// A new refresh token or authorization code issued at `now` (`wsoauth_domain::stamped`).
    pub fn new_stamped(&self, now: i64) -> String {
        stamped::random(self.random.as_ref(), now)
    }

    /// A new high-entropy secret in `[A-Za-z0-9_-]` (256 bits).
    pub fn new_secret(&self) -> String {
        random_token(self.random.as_ref(), 32)
    }

    /// A new client id: 32 lowercase hex characters, like Worksection's.
    pub fn new_client_id(&self) -> String {
        random_hex(self.random.as_ref(), 16)
    }

    /// The base URL of an account: the template with its slug, or the public URL.
    pub fn account_url(&self, account: &Account) -> String {
        match &self.settings.account_url_template {
            Some(template) => template.replace("{account}", &account.slug),
            None => self.public_url.clone(),
        }
    }
}
