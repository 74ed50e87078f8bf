//! Brute-force protection: sliding-window limits on failed sign-ins (per email and per client IP) and on failed
//! client authentications at the token endpoints (per `client_id`), on the app's clock; and the client IP, taken
//! from `X-Forwarded-For` only when the socket peer is a trusted proxy.
//!
//! An attempt takes a slot before the password or secret is checked and gives it back when the check succeeds,
//! so only failures count, concurrent guesses cannot overshoot the limit, and while a key is over its limit even
//! the right password or secret is refused.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Mutex;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use wsoauth_domain::duration::parse_seconds;

use crate::config::Settings;
use crate::state::Shared;

/// Keys tracked per limiter at most; past it, expired keys are pruned and then the least recently failed dropped.
pub const MAX_KEYS: usize = 10_000;
/// The largest count a limit may allow in its window (each counted failure keeps its time until it expires).
pub const MAX_COUNT: u32 = 1000;
/// Longer keys (emails, client ids) are cut to this many bytes, so a key costs little memory whatever is sent.
const MAX_KEY_BYTES: usize = 320;

fn short(key: &str) -> &str {
    let mut end = key.len().min(MAX_KEY_BYTES);
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    &key[..end]
}

/// At most `max` counted attempts in any `window` seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub max: u32,
    pub window: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid limit {0:?}: use COUNT/DURATION (e.g. 10/15m, 50/1h) with a count from 1 to {MAX_COUNT}, or off")]
pub struct RateLimitError(pub String);

impl RateLimit {
    pub const fn new(max: u32, window: i64) -> RateLimit {
        RateLimit { max, window }
    }

    /// `COUNT/DURATION` (`10/15m`, `50/900`), or `off` (no limit: `None`).
    pub fn parse_setting(text: &str) -> Result<Option<RateLimit>, RateLimitError> {
        let trimmed = text.trim();
        if trimmed.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let err = || RateLimitError(text.to_owned());
        let (count, window) = trimmed.split_once('/').ok_or_else(err)?;
        let count = count.trim();
        if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let max: u32 = count.parse().map_err(|_| err())?;
        if max == 0 || max > MAX_COUNT {
            return Err(err());
        }
        let window = parse_seconds(window).map_err(|_| err())?;
        Ok(Some(RateLimit { max, window }))
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}s", self.max, self.window)
    }
}

/// Over the limit: seconds until the oldest counted attempt leaves the window (at least 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocked {
    pub retry_after: i64,
}

impl Blocked {
    /// "3 seconds", "1 minute", "15 minutes": the wait, rounded up, for people.
    pub fn wait_text(&self) -> String {
        let seconds = self.retry_after.max(1).unsigned_abs();
        let (n, unit) = if seconds < 60 { (seconds, "second") } else { (seconds.div_ceil(60), "minute") };
        format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
    }
}

/// A keyed sliding-window log: the times of counted attempts per key, at most `max` each, at most `max_keys`
/// keys.
#[derive(Debug)]
pub struct Limiter {
    limit: Option<RateLimit>,
    max_keys: usize,
    keys: Mutex<HashMap<String, VecDeque<i64>>>,
}

impl Limiter {
    pub fn new(limit: Option<RateLimit>, max_keys: usize) -> Limiter {
        Limiter { limit, max_keys: max_keys.max(1), keys: Mutex::new(HashMap::new()) }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<i64>>> {
        self.keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts one attempt for `key` at `now`, or says how long until the key has room again (counting nothing).
    pub fn acquire(&self, key: &str, now: i64) -> Result<(), Blocked> {
        let Some(limit) = self.limit else { return Ok(()) };
        let key = short(key);
        let mut keys = self.map();
        if let Some(times) = keys.get_mut(key) {
            expire(times, now, limit.window);
            if times.len() >= limit.max as usize {
                let oldest = times.front().copied().unwrap_or(now);
                return Err(Blocked { retry_after: (oldest + limit.window - now).clamp(1, limit.window) });
            }
            times.push_back(now);
            return Ok(());
        }
        if keys.len() >= self.max_keys {
            make_room(&mut keys, now, limit.window, self.max_keys);
        }
        keys.insert(key.to_owned(), VecDeque::from([now]));
        Ok(())
    }

    /// Gives back an attempt counted at `at` (it succeeded).
    pub fn release(&self, key: &str, at: i64) {
        if self.limit.is_none() {
            return;
        }
        let key = short(key);
        let mut keys = self.map();
        if let Some(times) = keys.get_mut(key) {
            if let Some(index) = times.iter().rposition(|&t| t == at) {
                times.remove(index);
            }
            if times.is_empty() {
                keys.remove(key);
            }
        }
    }

    /// Forgets attempts older than the window, and keys left with none.
    pub fn prune(&self, now: i64) {
        if let Some(limit) = self.limit {
            prune(&mut self.map(), now, limit.window);
        }
    }

    /// How many keys are tracked.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn expire(times: &mut VecDeque<i64>, now: i64, window: i64) {
    while times.front().is_some_and(|&t| t <= now - window) {
        times.pop_front();
    }
}

fn prune(keys: &mut HashMap<String, VecDeque<i64>>, now: i64, window: i64) {
    keys.retain(|_, times| {
        expire(times, now, window);
        !times.is_empty()
    });
}

/// Prunes; if the map is still full, drops the eighth of the keys that failed least recently (so a full map costs
/// one pass per `max_keys / 8` new keys).
fn make_room(keys: &mut HashMap<String, VecDeque<i64>>, now: i64, window: i64, max_keys: usize) {
    prune(keys, now, window);
    if keys.len() < max_keys {
        return;
    }
    let mut latest: Vec<(i64, &String)> =
        keys.iter().map(|(key, times)| (times.back().copied().unwrap_or(i64::MIN), key)).collect();
    let drop = (keys.len() / 8).max(keys.len() + 1 - max_keys).min(latest.len());
    latest.select_nth_unstable_by_key(drop - 1, |(t, _)| *t);
    let victims: Vec<String> = latest[..drop].iter().map(|(_, key)| (*key).clone()).collect();
    for key in victims {
        keys.remove(&key);
    }
}

/// Attempts counted in one or more limiters; `succeeded` gives them back.
#[must_use = "an attempt is counted as failed unless `succeeded` is called"]
pub struct Attempt<'a> {
    taken: Vec<(&'a Limiter, String)>,
    at: i64,
}

impl Attempt<'_> {
    /// The password or secret was right: this attempt does not count.
    pub fn succeeded(self) {
        for (limiter, key) in &self.taken {
            limiter.release(key, self.at);
        }
    }
}

/// Counts one attempt in each `(limiter, key)`, or in none when any is over its limit (then the longest wait).
pub fn acquire_all<'a>(keys: Vec<(&'a Limiter, String)>, now: i64) -> Result<Attempt<'a>, Blocked> {
    let mut taken = Vec::with_capacity(keys.len());
    let mut blocked: Option<Blocked> = None;
    for (limiter, key) in keys {
        match limiter.acquire(&key, now) {
            Ok(()) => taken.push((limiter, key)),
            Err(b) => blocked = Some(blocked.map_or(b, |old| if old.retry_after >= b.retry_after { old } else { b })),
        }
    }
    let attempt = Attempt { taken, at: now };
    match blocked {
        Some(blocked) => {
            attempt.succeeded();
            Err(blocked)
        }
        None => Ok(attempt),
    }
}

/// The server's limiters and the proxies it trusts.
#[derive(Debug)]
pub struct Limits {
    pub login_email: Limiter,
    pub login_ip: Limiter,
    pub client_auth: Limiter,
    pub trusted_proxies: Vec<TrustedProxy>,
}

impl Limits {
    pub fn new(settings: &Settings) -> Limits {
        Limits {
            login_email: Limiter::new(settings.login_attempts_per_email, MAX_KEYS),
            login_ip: Limiter::new(settings.login_attempts_per_ip, MAX_KEYS),
            client_auth: Limiter::new(settings.client_auth_failures, MAX_KEYS),
            trusted_proxies: settings.trusted_proxies.clone(),
        }
    }

    /// A sign-in attempt for `email` (lowercased) from `ip` (unknown: only the email is limited).
    pub fn login(&self, email: &str, ip: Option<IpAddr>, now: i64) -> Result<Attempt<'_>, Blocked> {
        let mut keys = vec![(&self.login_email, email.trim().to_lowercase())];
        if let Some(ip) = ip {
            keys.push((&self.login_ip, ip_key(ip)));
        }
        acquire_all(keys, now)
    }

    /// A client authentication with each of `client_ids`.
    pub fn client_auth<'i>(
        &self,
        client_ids: impl IntoIterator<Item = &'i str>,
        now: i64,
    ) -> Result<Attempt<'_>, Blocked> {
        let mut keys: Vec<(&Limiter, String)> = Vec::new();
        for id in client_ids {
            if !keys.iter().any(|(_, k)| k == id) {
                keys.push((&self.client_auth, id.to_owned()));
            }
        }
        acquire_all(keys, now)
    }

    pub fn prune(&self, now: i64) {
        self.login_email.prune(now);
        self.login_ip.prune(now);
        self.client_auth.prune(now);
    }
}

/// The key of a client address: IPv4 as is, IPv6 by its /64 (one host usually holds a whole /64).
pub fn ip_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            format!("{}/64", Ipv6Addr::from(bits))
        }
    }
}

/// A trusted proxy: one address or a CIDR range (`10.0.0.0/8`, `fd00::/8`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrustedProxy {
    network: IpAddr,
    prefix: u8,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid trusted proxy {0:?}: use an IP address or a CIDR range such as 10.0.0.0/8")]
pub struct TrustedProxyError(pub String);

impl FromStr for TrustedProxy {
    type Err = TrustedProxyError;

    fn from_str(text: &str) -> Result<TrustedProxy, TrustedProxyError> {
        let err = || TrustedProxyError(text.to_owned());
        let trimmed = text.trim();
        let (address, prefix) = match trimmed.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (trimmed, None),
        };
        let network = address.parse::<IpAddr>().map_err(|_| err())?.to_canonical();
        let width = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse::<u8>().map_err(|_| err())?,
            Some(_) => return Err(err()),
            None => width,
        };
        if prefix > width {
            return Err(err());
        }
        Ok(TrustedProxy { network, prefix })
    }
}

impl fmt::Display for TrustedProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl TrustedProxy {
    pub fn contains(&self, ip: IpAddr) -> bool {
        fn masked(bits: u128, width: u32, prefix: u8) -> u128 {
            let host = width - u32::from(prefix);
            if host >= 128 { 0 } else { bits >> host }
        }
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u32::from(net).into(), 32, self.prefix) == masked(u32::from(ip).into(), 32, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(net), 128, self.prefix) == masked(u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

fn trusted(proxies: &[TrustedProxy], ip: IpAddr) -> bool {
    proxies.iter().any(|proxy| proxy.contains(ip))
}

/// One `X-Forwarded-For` entry: an address, perhaps with a port (`1.2.3.4:80`, `[::1]:80`) or in brackets.
fn forwarded_ip(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    let ip = entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| entry.strip_prefix('[')?.strip_suffix(']')?.parse::<IpAddr>().ok())?;
    Some(ip.to_canonical())
}

/// The client's address. The socket peer, unless it is a trusted proxy: then the right-most address of
/// `X-Forwarded-For` that is not a trusted proxy (each proxy appends the address it saw, so everything left of
/// it may be forged). An unreadable entry ends the walk at the last trusted hop.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, proxies: &[TrustedProxy]) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted(proxies, peer) {
        return peer;
    }
    let mut entries: Vec<&str> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(value) = value.to_str() else { return peer };
        entries.extend(value.split(',').map(str::trim).filter(|e| !e.is_empty()));
    }
    let mut client = peer;
    for entry in entries.iter().rev() {
        let Some(ip) = forwarded_ip(entry) else { return client };
        client = ip;
        if !trusted(proxies, ip) {
            break;
        }
    }
    client
}

/// The client's address as an extractor (`None` when the server runs without connection info).
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<Shared> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<ClientIp, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip());
        Ok(ClientIp(peer.map(|peer| client_ip(peer, &parts.headers, &state.limits.trusted_proxies))))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    const T0: i64 = 1_700_000_000;

    fn limiter(max: u32, window: i64) -> Limiter {
        Limiter::new(Some(RateLimit::new(max, window)), MAX_KEYS)
    }

    #[test]
    fn parses_limits() {
        assert_eq!(RateLimit::parse_setting("10/15m"), Ok(Some(RateLimit::new(10, 900))));
        assert_eq!(RateLimit::parse_setting(" 50 / 1h "), Ok(Some(RateLimit::new(50, 3600))));
        assert_eq!(RateLimit::parse_setting("3/90"), Ok(Some(RateLimit::new(3, 90))));
        assert_eq!(RateLimit::parse_setting("OFF"), Ok(None));
        for bad in
            ["", "10", "/15m", "10/", "0/15m", "-1/15m", "1001/1m", "10/0", "10/15x", "ten/15m", "1.5/1m", "10/15m/2"]
        {
            assert!(RateLimit::parse_setting(bad).is_err(), "{bad}");
        }
        assert!(RateLimit::parse_setting("x").unwrap_err().to_string().contains("10/15m"));
        assert_eq!(RateLimit::new(10, 900).to_string(), "10/900s");
    }

    #[test]
    fn allows_max_in_a_window_then_blocks_until_the_oldest_leaves() {
        let l = limiter(3, 100);
        assert!(l.acquire("a", T0).is_ok());
        assert!(l.acquire("a", T0 + 10).is_ok());
        assert!(l.acquire("a", T0 + 20).is_ok());
        assert_eq!(l.acquire("a", T0 + 30), Err(Blocked { retry_after: 70 }));
        // a blocked attempt is not counted: the wait does not grow
        assert_eq!(l.acquire("a", T0 + 99), Err(Blocked { retry_after: 1 }));
        // the first attempt leaves the window at T0 + 100: one slot is free, then blocked until T0 + 110
        assert!(l.acquire("a", T0 + 100).is_ok());
        assert_eq!(l.acquire("a", T0 + 100), Err(Blocked { retry_after: 10 }));
        // other keys have their own budget
        assert!(l.acquire("b", T0 + 30).is_ok());
        // after a whole window everything is free again
        for i in 0..3 {
            assert!(l.acquire("a", T0 + 300 + i).is_ok());
        }
    }

    #[test]
    fn release_gives_the_slot_back() {
        let l = limiter(2, 60);
        for _ in 0..10 {
            l.acquire("k", T0).unwrap();
            l.release("k", T0);
        }
        assert!(l.is_empty(), "a released key is forgotten");
        l.acquire("k", T0).unwrap();
        l.acquire("k", T0 + 1).unwrap();
        assert!(l.acquire("k", T0 + 2).is_err());
        l.release("k", T0 + 1);
        assert!(l.acquire("k", T0 + 2).is_ok());
    }

    #[test]
    fn disabled_limiter_counts_nothing() {
        let l = Limiter::new(None, 10);
        for i in 0..100 {
            assert!(l.acquire("k", T0 + i).is_ok());
        }
        assert!(l.is_empty());
    }

    #[test]
    fn a_clock_set_back_never_gives_a_wait_longer_than_the_window() {
        let l = limiter(1, 60);
        l.acquire("k", T0 + 1000).unwrap();
        assert_eq!(l.acquire("k", T0), Err(Blocked { retry_after: 60 }));
    }

    #[test]
    fn memory_is_bounded_and_pruned() {
        let l = Limiter::new(Some(RateLimit::new(1, 10_000)), 80);
        l.acquire("first", T0).unwrap();
        for i in 0..1000 {
            l.acquire(&format!("k{i}"), T0 + 1 + i).unwrap();
            assert!(l.len() <= 80, "{} keys", l.len());
        }
        // the least recently failed keys were dropped first; the latest are kept
        assert!(l.acquire("k999", T0 + 1001).is_err(), "the latest key was kept");
        assert!(l.acquire("first", T0 + 1001).is_ok(), "the oldest key was dropped");
        // prune forgets everything older than the window
        l.prune(T0 + 20_000);
        assert!(l.is_empty());
        // expired keys are pruned before anything recent is dropped
        let l = Limiter::new(Some(RateLimit::new(1, 60)), 4);
        for key in ["a", "b", "c"] {
            l.acquire(key, T0).unwrap();
        }
        l.acquire("recent", T0 + 100).unwrap();
        l.acquire("new", T0 + 101).unwrap();
        assert_eq!(l.len(), 2);
        assert!(l.acquire("recent", T0 + 102).is_err(), "the recent key was kept");
    }

    #[test]
    fn long_keys_are_cut() {
        let l = limiter(1, 60);
        let long = "é".repeat(10_000);
        l.acquire(&long, T0).unwrap();
        assert!(l.acquire(&format!("{long}x"), T0).is_err(), "the same first 320 bytes");
        assert!(l.map().keys().all(|k| k.len() <= MAX_KEY_BYTES));
        l.release(&long, T0);
        assert!(l.is_empty());
    }

    #[test]
    fn acquire_all_is_all_or_nothing() {
        let email = limiter(1, 60);
        let ip = limiter(5, 60);
        let a = acquire_all(vec![(&email, "e".into()), (&ip, "i".into())], T0).unwrap();
        drop(a); // failed: counted
        let blocked = acquire_all(vec![(&email, "e".into()), (&ip, "i".into())], T0 + 1).err().unwrap();
        assert_eq!(blocked.retry_after, 59);
        // the blocked attempt took nothing from the IP's budget
        for _ in 0..4 {
            let _ = acquire_all(vec![(&ip, "i".into())], T0 + 2).unwrap();
        }
        assert!(ip.acquire("i", T0 + 2).is_err());
        // a success gives back every slot it took
        let other = limiter(1, 60);
        acquire_all(vec![(&other, "x".into())], T0).unwrap().succeeded();
        assert!(other.acquire("x", T0).is_ok());
    }

    #[test]
    fn wait_text() {
        assert_eq!(Blocked { retry_after: 1 }.wait_text(), "1 second");
        assert_eq!(Blocked { retry_after: 59 }.wait_text(), "59 seconds");
        assert_eq!(Blocked { retry_after: 60 }.wait_text(), "1 minute");
        assert_eq!(Blocked { retry_after: 61 }.wait_text(), "2 minutes");
        assert_eq!(Blocked { retry_after: 900 }.wait_text(), "15 minutes");
    }

    #[test]
    fn ip_keys_group_ipv6_by_64() {
        assert_eq!(ip_key("203.0.113.7".parse().unwrap()), "203.0.113.7");
        assert_eq!(ip_key("::ffff:203.0.113.7".parse().unwrap()), "203.0.113.7");
        assert_eq!(ip_key("2001:db8:1:2:3:4:5:6".parse().unwrap()), "2001:db8:1:2::/64");
        assert_eq!(ip_key("2001:db8:1:2:ffff::1".parse().unwrap()), "2001:db8:1:2::/64");
    }

    #[test]
    fn parses_trusted_proxies() {
        let one: TrustedProxy = "10.1.2.3".parse().unwrap();
        assert!(one.contains("10.1.2.3".parse().unwrap()));
        assert!(one.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!one.contains("10.1.2.4".parse().unwrap()));
        let net: TrustedProxy = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains("10.200.0.1".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        let all: TrustedProxy = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("192.0.2.1".parse().unwrap()));
        assert!(!all.contains("::1".parse().unwrap()));
        let v6: TrustedProxy = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("fe80::1".parse().unwrap()));
        assert!("::/0".parse::<TrustedProxy>().unwrap().contains("2001:db8::1".parse().unwrap()));
        for bad in ["", "proxy", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8/8", "1.2.3.4:80"] {
            assert!(bad.parse::<TrustedProxy>().is_err(), "{bad}");
        }
    }

    #[test]
    fn settings_from_flags_and_the_file() {
        use crate::config::ConfigArgs;
        let defaults = ConfigArgs::default().resolve().unwrap();
        assert_eq!(defaults.login_attempts_per_email, Some(RateLimit::new(10, 900)));
        assert_eq!(defaults.login_attempts_per_ip, Some(RateLimit::new(50, 900)));
        assert_eq!(defaults.client_auth_failures, Some(RateLimit::new(20, 900)));
        assert!(defaults.trusted_proxies.is_empty());
        let flags = ConfigArgs {
            login_attempts_per_email: Some("3/1m".into()),
            login_attempts_per_ip: Some("off".into()),
            client_auth_failures: Some("5/1h".into()),
            trusted_proxies: vec!["10.0.0.1".into(), " fd00::/8 ".into()],
            ..ConfigArgs::default()
        };
        let settings = flags.resolve().unwrap();
        assert_eq!(settings.login_attempts_per_email, Some(RateLimit::new(3, 60)));
        assert_eq!(settings.login_attempts_per_ip, None);
        assert_eq!(settings.client_auth_failures, Some(RateLimit::new(5, 3600)));
        assert_eq!(settings.trusted_proxies, vec!["10.0.0.1".parse().unwrap(), "fd00::/8".parse().unwrap()]);
        let bad = ConfigArgs { login_attempts_per_email: Some("10 per 15m".into()), ..ConfigArgs::default() };
        let error = bad.resolve().unwrap_err().to_string();
        assert!(error.contains("login attempts per email") && error.contains("10/15m"), "{error}");
        let bad = ConfigArgs { trusted_proxies: vec!["proxy.example".into()], ..ConfigArgs::default() };
        assert!(bad.resolve().unwrap_err().to_string().contains("trusted proxy"));

        let dir = std::env::temp_dir().join(format!("wsoauth-limits-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("list.toml");
        std::fs::write(
            &file,
            "login_attempts_per_ip = \"7/2m\"\nclient_auth_failures = \"off\"\ntrusted_proxies = [\"10.0.0.0/8\", \"127.0.0.1\"]\n",
        )
        .unwrap();
        let settings = ConfigArgs { config: Some(file.clone()), ..ConfigArgs::default() }.resolve().unwrap();
        assert_eq!(settings.login_attempts_per_email, Some(RateLimit::new(10, 900)));
        assert_eq!(settings.login_attempts_per_ip, Some(RateLimit::new(7, 120)));
        assert_eq!(settings.client_auth_failures, None);
        assert_eq!(settings.trusted_proxies.len(), 2);
        // a flag beats the file
        let settings = ConfigArgs {
            config: Some(file.clone()),
            login_attempts_per_ip: Some("8/2m".into()),
            trusted_proxies: vec!["192.0.2.1".into()],
            ..ConfigArgs::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(settings.login_attempts_per_ip, Some(RateLimit::new(8, 120)));
        assert_eq!(settings.trusted_proxies, vec!["192.0.2.1".parse().unwrap()]);
        let comma = dir.join("comma.toml");
        std::fs::write(&comma, "trusted_proxies = \"10.0.0.1, 10.0.0.2\"\n").unwrap();
        let settings = ConfigArgs { config: Some(comma), ..ConfigArgs::default() }.resolve().unwrap();
        assert_eq!(settings.trusted_proxies.len(), 2);
        let wrong = dir.join("wrong.toml");
        std::fs::write(&wrong, "trusted_proxies = [1]\n").unwrap();
        assert!(ConfigArgs { config: Some(wrong), ..ConfigArgs::default() }.resolve().is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn trusted_proxy_flags_repeat_or_take_commas() {
        use clap::Parser;
        let cli = crate::config::Cli::try_parse_from([
            "wsoauth",
            "--trusted-proxy",
            "10.0.0.1,10.0.0.2",
            "--trusted-proxy",
            "10.0.0.3",
            "--login-attempts-per-email",
            "4/30s",
        ])
        .unwrap();
        assert_eq!(cli.config.trusted_proxies, ["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
        let settings = cli.config.resolve().unwrap();
        assert_eq!(settings.trusted_proxies.len(), 3);
        assert_eq!(settings.login_attempts_per_email, Some(RateLimit::new(4, 30)));
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_ignored_from_an_untrusted_peer() {
        let proxies: Vec<TrustedProxy> = vec!["10.0.0.1".parse().unwrap()];
        assert_eq!(client_ip(ip("198.51.100.9"), &xff(&["203.0.113.1"]), &proxies), ip("198.51.100.9"));
        assert_eq!(client_ip(ip("198.51.100.9"), &xff(&["203.0.113.1"]), &[]), ip("198.51.100.9"));
        assert_eq!(client_ip(ip("::ffff:198.51.100.9"), &HeaderMap::new(), &[]), ip("198.51.100.9"));
    }

    #[test]
    fn forwarded_for_from_a_trusted_peer_gives_the_rightmost_untrusted_address() {
        let proxies: Vec<TrustedProxy> = vec!["10.0.0.1".parse().unwrap(), "10.0.1.0/24".parse().unwrap()];
        let peer = ip("10.0.0.1");
        // no header: the proxy itself
        assert_eq!(client_ip(peer, &HeaderMap::new(), &proxies), peer);
        assert_eq!(client_ip(peer, &xff(&["203.0.113.1"]), &proxies), ip("203.0.113.1"));
        // a forged entry on the left is skipped
        assert_eq!(client_ip(peer, &xff(&["1.1.1.1, 203.0.113.1"]), &proxies), ip("203.0.113.1"));
        // trusted hops on the right are skipped
        assert_eq!(client_ip(peer, &xff(&["1.1.1.1, 203.0.113.1, 10.0.1.7"]), &proxies), ip("203.0.113.1"));
        // several header lines read as one list, in order
        assert_eq!(client_ip(peer, &xff(&["1.1.1.1", "203.0.113.1 , 10.0.1.7"]), &proxies), ip("203.0.113.1"));
        // ports, brackets, mapped and plain IPv6
        assert_eq!(client_ip(peer, &xff(&["203.0.113.1:4711"]), &proxies), ip("203.0.113.1"));
        assert_eq!(client_ip(peer, &xff(&["[2001:db8::1]:443"]), &proxies), ip("2001:db8::1"));
        assert_eq!(client_ip(peer, &xff(&["[2001:db8::1]"]), &proxies), ip("2001:db8::1"));
        assert_eq!(client_ip(peer, &xff(&["2001:db8::1"]), &proxies), ip("2001:db8::1"));
        assert_eq!(client_ip(peer, &xff(&["::ffff:203.0.113.1"]), &proxies), ip("203.0.113.1"));
        // every entry trusted: the left-most
        assert_eq!(client_ip(peer, &xff(&["10.0.1.1, 10.0.1.2"]), &proxies), ip("10.0.1.1"));
        // garbage ends the walk at the last trusted hop
        assert_eq!(client_ip(peer, &xff(&["203.0.113.1, unknown"]), &proxies), peer);
        assert_eq!(client_ip(peer, &xff(&["203.0.113.1, garbage, 10.0.1.7"]), &proxies), ip("10.0.1.7"));
        // empty entries are skipped
        assert_eq!(client_ip(peer, &xff(&["203.0.113.1,,  "]), &proxies), ip("203.0.113.1"));
        // a peer in a trusted range
        assert_eq!(client_ip(ip("10.0.1.200"), &xff(&["203.0.113.1"]), &proxies), ip("203.0.113.1"));
    }

    #[test]
    fn a_non_text_forwarded_for_is_not_believed() {
        let proxies: Vec<TrustedProxy> = vec!["10.0.0.1".parse().unwrap()];
        let mut headers = xff(&["203.0.113.1"]);
        headers.append("x-forwarded-for", HeaderValue::from_bytes(b"\xff1.2.3.4").unwrap());
        assert_eq!(client_ip(ip("10.0.0.1"), &headers, &proxies), ip("10.0.0.1"));
    }
}
