//! Short-lived in-process caches: grant state for bearer checks (a token used again within `ttl` seconds is
//! checked without a database round trip), apps by client id for client authentication, members by user id.
//!
//! How fresh it is:
//! - every change this process makes to a grant (rotation, revocation, replay, disconnection, app deletion, purge)
//!   or to an app (edit, new secret, deletion) drops the cached entry before the change is reported to the caller,
//!   so this node never answers from a state older than its own writes;
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
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};

use crate::model::{App, GrantState, Member};

/// The channel changes are announced on (`Change::payload`).
pub(crate) const CHANNEL: &str = "wsoauth_grants";

/// What a write changed, as other nodes hear of it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Change {
    /// One grant (rotated or revoked).
    Grant(i64),
    /// Any app (edited, given a new secret).
    Apps,
    /// Anything cached: several grants at once (a replayed code, a disconnection, a purge) or an app deleted with
    /// its grants.
    All,
}

impl Change {
    pub(crate) fn payload(self) -> String {
        match self {
            Change::Grant(id) => id.to_string(),
            Change::Apps => "apps".to_owned(),
            Change::All => "*".to_owned(),
        }
    }

    fn parse(payload: &str) -> Change {
        match payload {
            "apps" => Change::Apps,
            other => other.parse().map_or(Change::All, Change::Grant),
        }
    }
}

/// The most entries kept per cache; when full, the expired ones go, and if none has expired, all of them.
const CAPACITY: usize = 100_000;

/// What a store caches, each entry for at most `ttl` seconds: grant state for bearer checks, apps by client id for
/// client authentication, and members by user id for token responses (members are never changed in place).
#[derive(Debug)]
pub(crate) struct Caches {
    pub(crate) grants: TtlCache<i64, GrantState>,
    pub(crate) apps: TtlCache<String, App>,
    pub(crate) members: TtlCache<i64, Member>,
}

impl Caches {
    pub(crate) fn new(ttl: i64) -> Caches {
        Caches { grants: TtlCache::new(ttl), apps: TtlCache::new(ttl), members: TtlCache::new(ttl) }
    }

    /// Drops what a change touched.
    pub(crate) fn forget(&self, change: Change) {
        match change {
            Change::Grant(id) => self.grants.forget(Some(&id)),
            Change::Apps => self.apps.forget::<str>(None),
            Change::All => {
                self.grants.forget::<i64>(None);
                self.apps.forget::<str>(None);
                self.members.forget::<i64>(None);
            }
        }
    }
}

#[derive(Debug)]
pub(crate) struct TtlCache<K, V> {
    ttl: i64,
    entries: RwLock<HashMap<K, (Arc<V>, i64)>>,
    epoch: AtomicU64,
}

impl<K: Eq + Hash, V> TtlCache<K, V> {
    fn new(ttl: i64) -> TtlCache<K, V> {
        TtlCache { ttl, entries: RwLock::new(HashMap::new()), epoch: AtomicU64::new(0) }
    }

    fn fresh(&self, read_at: i64, now: i64) -> bool {
        now >= read_at && now - read_at < self.ttl
    }

    /// The value of `key` read less than `ttl` seconds before `now`.
    pub(crate) fn get<Q>(&self, key: &Q, now: i64) -> Option<Arc<V>>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let entries = self.entries.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (value, read_at) = entries.get(key)?;
        self.fresh(*read_at, now).then(|| value.clone())
    }

    /// The change counter, taken before a read whose answer may be stored.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Stores a value read at `now`, unless a change was recorded since `epoch` was taken.
    pub(crate) fn put(&self, key: K, value: Arc<V>, now: i64, epoch: u64) {
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
        entries.insert(key, (value, now));
    }

    /// Drops one entry (`Some`) or all of them (`None`).
    pub(crate) fn forget<Q>(&self, key: Option<&Q>)
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let mut entries = self.entries.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        match key {
            Some(key) => {
                entries.remove(key);
            }
            None => entries.clear(),
        }
    }
}

/// A value through `cache` when there is one (a fresh entry, or `load`'s answer stored for later), else straight from
/// `load`. What `load` does not find is not remembered.
pub(crate) async fn through<K, V, E>(
    cache: Option<&TtlCache<K, V>>,
    key: K,
    now: i64,
    load: impl Future<Output = Result<Option<V>, E>>,
) -> Result<Option<Arc<V>>, E>
where
    K: Eq + Hash,
{
    let Some(cache) = cache else {
        return Ok(load.await?.map(Arc::new));
    };
    if let Some(value) = cache.get(&key, now) {
        return Ok(Some(value));
    }
    let epoch = cache.epoch();
    let Some(value) = load.await? else {
        return Ok(None);
    };
    let value = Arc::new(value);
    cache.put(key, value.clone(), now, epoch);
    Ok(Some(value))
}

impl TtlCache<i64, GrantState> {
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
pub(crate) async fn listen(pool: PgPool, cache: Weak<Caches>) -> Result<tokio::task::JoinHandle<()>, sqlx::Error> {
    // A connection of its own, outside the store's pool: a listener holds its connection for good, and the pool
    // must still be able to close (it waits for every connection it lent).
    let own =
        PgPoolOptions::new().max_connections(1).connect_with(PgConnectOptions::clone(&pool.connect_options())).await?;
    let mut listener = PgListener::connect_with(&own).await?;
    listener.listen(CHANNEL).await?;
    Ok(tokio::spawn(async move {
        loop {
            let received = listener.try_recv().await;
            let Some(cache) = cache.upgrade() else {
                return;
            };
            match received {
                Ok(Some(notification)) => cache.forget(Change::parse(notification.payload())),
                // The connection was lost (notifications may have been missed); the next call reconnects.
                Ok(None) => cache.forget(Change::All),
                Err(error) => {
                    tracing::warn!(%error, "listening for grant changes failed; retrying in 1 s");
                    cache.forget(Change::All);
                    drop(cache);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }))
}
