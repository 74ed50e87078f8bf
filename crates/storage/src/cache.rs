//! A short-lived in-process cache of grant state, for bearer checks: a token used again within `ttl` seconds is
//! checked without a database round trip.
//!
//! How fresh it is:
//! - every change this process makes to a grant (rotation, revocation, replay, disconnection, app deletion, purge)
//!   drops the cached entry before the change is reported to the caller, so this node never answers from a state
//!   older than its own writes;
//! - on PostgreSQL the same writes send `NOTIFY wsoauth_grants` in their transaction, and every node listens: a
//!   change made on another node (or by the admin CLI) is dropped here as soon as the notification arrives,
//!   normally within a millisecond of the commit; if the listening connection is lost, the whole cache is dropped
//!   and the next notifications are awaited again;
//! - whatever the notifications do, an entry is never used once it is `ttl` seconds old (SQLite has no
//!   notifications: a change made by another process, such as `wsoauth app delete` from the CLI, is seen within
//!   `ttl`).
//!
//! A read that raced with a change never stores its (possibly older) answer: entries are stored only if no change
//! was recorded since the read began (`epoch`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;

use crate::model::GrantState;

/// The channel grant changes are announced on (payload: the grant id, or `*` for "any grant").
pub(crate) const CHANNEL: &str = "wsoauth_grants";

/// The most entries kept; when full, the expired ones go, and if none has expired, all of them.
const CAPACITY: usize = 100_000;

#[derive(Debug)]
pub(crate) struct GrantCache {
    ttl: i64,
    entries: RwLock<HashMap<i64, (Arc<GrantState>, i64)>>,
    epoch: AtomicU64,
}

impl GrantCache {
    pub(crate) fn new(ttl: i64) -> GrantCache {
        GrantCache { ttl, entries: RwLock::new(HashMap::new()), epoch: AtomicU64::new(0) }
    }

    /// The state of `grant_id` read less than `ttl` seconds before `now`.
    pub(crate) fn get(&self, grant_id: i64, now: i64) -> Option<Arc<GrantState>> {
        let entries = self.entries.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (state, read_at) = entries.get(&grant_id)?;
        (now >= *read_at && now - read_at < self.ttl).then(|| state.clone())
    }

    /// The change counter, taken before a read whose answer may be stored.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Stores a state read at `now`, unless a change was recorded since `epoch` was taken.
    pub(crate) fn put(&self, state: Arc<GrantState>, now: i64, epoch: u64) {
        let mut entries = self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        if entries.len() >= CAPACITY {
            entries.retain(|_, (_, read_at)| now >= *read_at && now - *read_at < self.ttl);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(state.grant.id, (state, now));
    }

    /// Drops one grant (`Some`) or all of them (`None`).
    pub(crate) fn forget(&self, grant_id: Option<i64>) {
        let mut entries = self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        match grant_id {
            Some(id) => {
                entries.remove(&id);
            }
            None => entries.clear(),
        }
    }

    /// Notes that the access token of `generation` has been used (what `Store::mark_access_used` recorded).
    pub(crate) fn mark_used(&self, grant_id: i64, generation: i64) {
        let mut entries = self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((state, _)) = entries.get_mut(&grant_id)
            && state.grant.generation == generation
            && !state.access_used
        {
            let mut used = GrantState::clone(state);
            used.access_used = true;
            *state = Arc::new(used);
        }
    }
}

/// The task that drops entries changed elsewhere; it ends when the cache is gone (its owner aborts it).
pub(crate) async fn listen(pool: PgPool, cache: Weak<GrantCache>) -> Result<tokio::task::JoinHandle<()>, sqlx::Error> {
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(tokio::spawn(async move {
        loop {
            let received = listener.try_recv().await;
            let Some(cache) = cache.upgrade() else {
                return;
            };
            match received {
                Ok(Some(notification)) => cache.forget(notification.payload().parse().ok()),
                // The connection was lost (notifications may have been missed); the next call reconnects.
                Ok(None) => cache.forget(None),
                Err(error) => {
                    tracing::warn!(%error, "listening for grant changes failed; retrying in 1 s");
                    cache.forget(None);
                    drop(cache);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }))
}

/// Stops the listening task when the last clone of the store is dropped.
#[derive(Debug)]
pub(crate) struct Listening(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for Listening {
    fn drop(&mut self) {
        self.0.abort();
    }
}
