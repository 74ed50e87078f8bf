//! Observing the server: `/metrics` (Prometheus text), `/healthz` and `/readyz`, a request id and one access
//! log line per request (the lines themselves: `crate::logging`).
//!
//! Every server keeps its own Prometheus recorder in its state, never the process-wide one: the middleware
//! [`track`] makes it the local recorder while the request's handler runs (on every poll, whichever thread polls
//! it), so the `metrics` macros in handlers count into the server that answers. Several servers in one process
//! (the tests) therefore each see only their own counts. Code outside a request (the purger, the CLI) records
//! into the process-wide recorder, which is none: those counts are dropped.
//!
//! Labels never hold what a client sent as is: the route is the matched template (`/oauth2/token`, never the
//! URI with its query), the method one of the standard ones or `other`, the reasons fixed names.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use std::convert::Infallible;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use serde_json::json;
use wsoauth_domain::{OsRandom, RandomSource};
use wsoauth_storage::{CheckpointEvent, Store};

use crate::state::Shared;

/// The request id header, read from the request (when sane) and always set on the response.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Upper bounds of the request latency histogram, in seconds (a sign-in's Argon2 takes some 0.1 s).
const LATENCY_BUCKETS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Upper bounds of the SQLite checkpoint histogram, in seconds: a pass takes a few milliseconds, a sync behind other
/// files' write-back up to hundreds.
const CHECKPOINT_BUCKETS: [f64; 12] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 5.0];

/// One server's metrics: its recorder and the handle that renders it, the handles of the request metrics by
/// route, and the request ids it makes.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// Route template → the request counter and latency histogram of each method and status seen on it: looked
    /// up once, so a request costs no label vector, string or registry look-up. Bounded: the routes are the
    /// router's templates and `unmatched`, the methods fixed labels, the statuses those the handlers answer.
    routes: RwLock<HashMap<Box<str>, Vec<RouteMetrics>>>,
    ids: RequestIds,
}

struct RouteMetrics {
    method: &'static str,
    status: u16,
    requests: metrics::Counter,
    latency: metrics::Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full("http_request_duration_seconds".into()), &LATENCY_BUCKETS)
            .expect("the latency buckets are not empty")
            .set_buckets_for_metric(Matcher::Full("wsoauth_sqlite_checkpoint_seconds".into()), &CHECKPOINT_BUCKETS)
            .expect("the checkpoint buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        let metrics = Metrics { recorder, handle, routes: RwLock::default(), ids: RequestIds::new() };
        metrics.record(describe);
        metrics
    }

    /// Runs `f` with this server's recorder as the one the `metrics` macros record into.
    pub fn record<T>(&self, f: impl FnOnce() -> T) -> T {
        metrics::with_local_recorder(&self.recorder, f)
    }

    /// One answered request: the request counter (route, method, status) and the latency histogram (route,
    /// method).
    fn request(&self, route: &str, method: &'static str, status: u16, elapsed: Duration) {
        let found = |all: &HashMap<Box<str>, Vec<RouteMetrics>>| {
            let known = all.get(route)?.iter().find(|m| m.method == method && m.status == status)?;
            known.requests.increment(1);
            known.latency.record(elapsed.as_secs_f64());
            Some(())
        };
        if found(&self.routes.read().unwrap_or_else(PoisonError::into_inner)).is_some() {
            return;
        }
        let mut all = self.routes.write().unwrap_or_else(PoisonError::into_inner);
        if found(&all).is_none() {
            let (requests, latency) = self.record(|| {
                let route = route.to_owned();
                (
                    metrics::counter!("http_requests_total", "route" => route.clone(), "method" => method, "status" => status.to_string()),
                    metrics::histogram!("http_request_duration_seconds", "route" => route, "method" => method),
                )
            });
            requests.increment(1);
            latency.record(elapsed.as_secs_f64());
            all.entry(route.into()).or_default().push(RouteMetrics { method, status, requests, latency });
        }
    }

    /// Records what SQLite's checkpoints do (see [`CheckpointEvent`]) in this server's metrics: how long each
    /// pass takes, `gated` being how long the token path's writes waited (refresh p99 follows it), and the passes
    /// put off for a busy disk. Nothing on PostgreSQL.
    pub fn observe_checkpoints(&self, store: &Store) {
        store.observe_checkpoints(|| {
            let (passive, gated, put_off) = self.record(|| {
                (
                    metrics::histogram!("wsoauth_sqlite_checkpoint_seconds", "pass" => "passive"),
                    metrics::histogram!("wsoauth_sqlite_checkpoint_seconds", "pass" => "gated"),
                    metrics::counter!("wsoauth_sqlite_checkpoints_put_off_total"),
                )
            });
            Arc::new(move |event| match event {
                CheckpointEvent::Passive(took) => passive.record(took.as_secs_f64()),
                CheckpointEvent::Gated(took) => gated.record(took.as_secs_f64()),
                CheckpointEvent::PutOff => put_off.increment(1),
            })
        });
    }

    /// The Prometheus text exposition of everything recorded so far.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Moves recent histogram samples into their buckets (rendering does it too); call it now and then so an
    /// unscraped server does not keep every sample.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}

fn describe() {
    metrics::describe_counter!("http_requests_total", "HTTP requests answered, by matched route, method and status");
    metrics::describe_histogram!(
        "http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to answer a request (until the response head), by matched route and method"
    );
    metrics::describe_counter!(
        "wsoauth_tokens_issued_total",
        "Token pairs issued, by grant_type (authorization_code or refresh_token)"
    );
    metrics::describe_counter!(
        "wsoauth_token_refreshes_total",
        "Refresh grants by result: rotated (a new pair), grace (the same new pair again after a lost response), \
         refused (unknown, expired, revoked, reused or another client's refresh token)"
    );
    metrics::describe_counter!(
        "wsoauth_token_failures_total",
        "Failed requests at /oauth2/token and /oauth2/refresh, by endpoint (token or refresh) and OAuth error code"
    );
    metrics::describe_counter!(
        "wsoauth_code_replays_total",
        "Authorization codes presented again (each revokes its grant)"
    );
    metrics::describe_counter!(
        "wsoauth_refresh_token_reuse_total",
        "Rotated refresh tokens presented again outside the grace window (each revokes its grant)"
    );
    metrics::describe_counter!(
        "wsoauth_bearer_failures_total",
        "Refused access tokens at /oauth2/resource and /api/oauth2, by reason (missing, invalid, expired, revoked, \
         storage)"
    );
    metrics::describe_counter!("wsoauth_sign_ins_total", "Sign-ins on the login page, by result (ok, failed, blocked)");
    metrics::describe_gauge!("wsoauth_db_pool_connections", "Database connections open (idle or in use)");
    metrics::describe_gauge!("wsoauth_db_pool_idle_connections", "Database connections open and idle");
    metrics::describe_gauge!("wsoauth_db_pool_max_connections", "The most database connections the pool opens");
    metrics::describe_gauge!("wsoauth_signing_keys_loaded", "Token signing keys loaded (the active one and older)");
    metrics::describe_gauge!("wsoauth_build_info", "Always 1; the version label is the server's version");
    metrics::describe_histogram!(
        "wsoauth_sqlite_checkpoint_seconds",
        metrics::Unit::Seconds,
        "SQLite checkpoints of the token path's writes, by pass: passive (beside the writes) and gated (the writes \
         wait meanwhile)"
    );
    metrics::describe_counter!(
        "wsoauth_sqlite_checkpoints_put_off_total",
        "SQLite checkpoint cycles that put their gated pass off because the disk was busy"
    );
}

// ---- domain counters: they count into the recorder of the request being served ------------------------------

/// A token pair issued for `grant_type` (`authorization_code` or `refresh_token`).
pub fn token_issued(grant_type: &'static str) {
    metrics::counter!("wsoauth_tokens_issued_total", "grant_type" => grant_type).increment(1);
}

/// A refresh grant's outcome: `rotated`, `grace` or `refused`.
pub fn refresh(result: &'static str) {
    metrics::counter!("wsoauth_token_refreshes_total", "result" => result).increment(1);
}

/// A failed token-endpoint request: `endpoint` is `token` or `refresh`, `error` the RFC 6749 error code.
pub fn token_failure(endpoint: &'static str, error: &'static str) {
    metrics::counter!("wsoauth_token_failures_total", "endpoint" => endpoint, "error" => error).increment(1);
}

pub fn code_replayed() {
    metrics::counter!("wsoauth_code_replays_total").increment(1);
}

pub fn refresh_reused() {
    metrics::counter!("wsoauth_refresh_token_reuse_total").increment(1);
}

/// A refused access token: `missing`, `invalid`, `expired`, `revoked` or `storage`.
pub fn bearer_failure(reason: &'static str) {
    metrics::counter!("wsoauth_bearer_failures_total", "reason" => reason).increment(1);
}

/// A sign-in: `ok`, `failed` (wrong email or password) or `blocked` (over a brute-force limit).
pub fn sign_in(result: &'static str) {
    metrics::counter!("wsoauth_sign_ins_total", "result" => result).increment(1);
}

// ---- the middleware ------------------------------------------------------------------------------------------

/// Whether a client's `X-Request-Id` is kept: 1 to 64 characters of `[A-Za-z0-9._-]`.
pub fn sane_request_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Request ids made here: 32 hex digits, distinct for every request of this process (the first half is a
/// bijective mix of a counter and a random key), unpredictable enough to tell processes apart, and with no
/// system call (the operating system's randomness is read once, at start).
struct RequestIds {
    key: [u64; 2],
    next: AtomicU64,
}

impl RequestIds {
    fn new() -> RequestIds {
        let mut seed = [0u8; 16];
        OsRandom.fill(&mut seed);
        let (a, b) = seed.split_at(8);
        let word = |bytes: &[u8]| bytes.try_into().map(u64::from_le_bytes).unwrap_or_default();
        RequestIds { key: [word(a), word(b)], next: AtomicU64::new(0) }
    }

    fn make(&self) -> HeaderValue {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let high = mix(n ^ self.key[0]);
        let low = mix(high ^ self.key[1]);
        let mut text = [0u8; 32];
        for (i, digit) in text.iter_mut().enumerate() {
            let word = if i < 16 { high } else { low };
            *digit = b"0123456789abcdef"[((word >> (60 - 4 * (i % 16))) & 0xf) as usize];
        }
        // hex digits are always a valid header value
        HeaderValue::from_bytes(&text).unwrap_or_else(|_| HeaderValue::from_static("0"))
    }
}

/// SplitMix64's finaliser: a bijection of `u64` that scatters consecutive inputs.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A fixed label for the method: a client cannot make up new label values.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Around every request ([`TrackLayer`], the router's outermost layer): the request id (the client's when sane,
/// else a new one) on the request's log lines (`crate::logging::in_request`) and in the `X-Request-Id` response
/// header; this server's recorder for the handler; then the request counter, the latency histogram and one
/// access log line (method, route, status, latency; never the query, headers or body). A plain tower service: no boxed future, no clone of the route and
/// no `Next` per request, as `axum::middleware::from_fn` would cost.
#[derive(Clone)]
pub struct TrackLayer(pub Shared);

impl<S> tower::Layer<S> for TrackLayer {
    type Service = Track<S>;

    fn layer(&self, inner: S) -> Track<S> {
        Track { state: self.0.clone(), inner }
    }
}

/// The service of [`TrackLayer`].
#[derive(Clone)]
pub struct Track<S> {
    state: Shared,
    inner: S,
}

impl<S> tower::Service<Request> for Track<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Tracked<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Tracked<S::Future> {
        let started = Instant::now();
        // the client's header value as is (no copy), or a new id
        let id = match request.headers().get(REQUEST_ID) {
            Some(value) if value.to_str().is_ok_and(sane_request_id) => value.clone(),
            _ => self.state.metrics.ids.make(),
        };
        // unmatched paths (404s) share one label: the raw path may be anything a client makes up
        let route = request.extensions().get::<MatchedPath>().cloned();
        let method = method_label(request.method());
        let inner = crate::logging::in_request(&id, || self.state.metrics.record(|| self.inner.call(request)));
        Tracked { inner, state: self.state.clone(), started, id, route, method }
    }
}

/// The answer of [`Track`]: polled with the request's id on its log lines and the server's recorder as the local one (metrics'
/// local recorder is per thread and per call, so it is set again on every poll).
pub struct Tracked<F> {
    inner: F,
    state: Shared,
    started: Instant,
    id: HeaderValue,
    route: Option<MatchedPath>,
    method: &'static str,
}

impl<F> Future for Tracked<F>
where
    F: Future<Output = Result<Response, Infallible>> + Unpin,
{
    type Output = Result<Response, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let polled =
            crate::logging::in_request(&this.id, || this.state.metrics.record(|| Pin::new(&mut this.inner).poll(cx)));
        let Poll::Ready(Ok(mut response)) = polled else { return polled };
        let elapsed = this.started.elapsed();
        let status = response.status().as_u16();
        let (route, method) = (this.route.as_ref().map_or("unmatched", MatchedPath::as_str), this.method);
        this.state.metrics.request(route, method, status, elapsed);
        crate::logging::in_request(&this.id, || {
            tracing::info!(
                target: "access",
                method,
                route = %route,
                status,
                latency_ms = (elapsed.as_secs_f64() * 1e6).round() / 1e3,
                "request"
            );
        });
        response.headers_mut().insert(REQUEST_ID, this.id.clone());
        Poll::Ready(Ok(response))
    }
}

// ---- endpoints -----------------------------------------------------------------------------------------------

fn no_store() -> [(HeaderName, HeaderValue); 1] {
    [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))]
}

/// `GET /metrics`: this server's metrics in the Prometheus text format; the pool and key gauges are read now.
pub async fn metrics(State(state): State<Shared>) -> Response {
    let pool = state.store.pool_stats();
    let keys = state.keys().all.len();
    state.metrics.record(|| {
        metrics::gauge!("wsoauth_db_pool_connections").set(f64::from(pool.size));
        metrics::gauge!("wsoauth_db_pool_idle_connections").set(f64::from(pool.idle));
        metrics::gauge!("wsoauth_db_pool_max_connections").set(f64::from(pool.max));
        metrics::gauge!("wsoauth_signing_keys_loaded").set(keys as f64);
        metrics::gauge!("wsoauth_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    });
    let content_type = (header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    (no_store(), [content_type], state.metrics.render()).into_response()
}

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Response {
    (no_store(), axum::Json(json!({"status": "ok"}))).into_response()
}

/// `GET /readyz`: 200 while the database answers (within 2 s) and a signing key is loaded; else 503 naming the
/// failed check. The reason is logged, not answered.
pub async fn readyz(State(state): State<Shared>) -> Response {
    let database = match tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => true,
        Ok(Err(error)) => {
            tracing::warn!(%error, "not ready: the database does not answer");
            false
        }
        Err(_) => {
            tracing::warn!("not ready: the database did not answer within 2 s");
            false
        }
    };
    let keys = !state.keys().all.is_empty();
    let word = |ok: bool| if ok { "ok" } else { "failed" };
    let body = json!({
        "status": if database && keys { "ok" } else { "unavailable" },
        "checks": {"database": word(database), "signing_keys": word(keys)},
    });
    let status = if database && keys { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, no_store(), axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_short_plain_tokens() {
        for id in ["a", "abc-DEF_123.x", &"x".repeat(64), "0f8e7c6a-1b2c-4d5e-8f90-123456789abc"] {
            assert!(sane_request_id(id), "{id}");
        }
        for id in ["", &"x".repeat(65), "a b", "a/b", "a\nb", "é", "id;drop", "a=b", "tok%20en"] {
            assert!(!sane_request_id(id), "{id}");
        }
    }

    #[test]
    fn made_request_ids_are_distinct_hex() {
        let ids = RequestIds::new();
        let made: std::collections::HashSet<_> = (0..10_000).map(|_| ids.make()).collect();
        assert_eq!(made.len(), 10_000);
        for id in made.iter().take(100) {
            let id = id.to_str().unwrap();
            assert!(id.len() == 32 && sane_request_id(id) && id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        }
        assert_ne!(RequestIds::new().make(), RequestIds::new().make(), "each process has its own key");
    }

    #[test]
    fn request_metrics_keep_their_labels() {
        let metrics = Metrics::new();
        for status in [200, 200, 404] {
            metrics.request("/healthz", "GET", status, Duration::from_millis(3));
        }
        metrics.request("unmatched", "other", 404, Duration::from_millis(1));
        let text = metrics.render();
        assert!(text.contains(r#"http_requests_total{route="/healthz",method="GET",status="200"} 2"#), "{text}");
        assert!(text.contains(r#"http_requests_total{route="/healthz",method="GET",status="404"} 1"#), "{text}");
        assert!(text.contains(r#"http_requests_total{route="unmatched",method="other",status="404"} 1"#), "{text}");
        assert!(text.contains(r#"http_request_duration_seconds_count{route="/healthz",method="GET"} 3"#), "{text}");
    }

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }

    #[test]
    fn each_recorder_counts_alone() {
        let (one, two) = (Metrics::new(), Metrics::new());
        one.record(|| token_issued("authorization_code"));
        one.record(|| token_issued("authorization_code"));
        two.record(|| sign_in("ok"));
        token_issued("refresh_token"); // no local recorder: dropped
        let (one, two) = (one.render(), two.render());
        assert!(one.contains(r#"wsoauth_tokens_issued_total{grant_type="authorization_code"} 2"#), "{one}");
        assert!(!one.contains(r#"grant_type="refresh_token""#) && !one.contains("wsoauth_sign_ins_total{"), "{one}");
        assert!(two.contains(r#"wsoauth_sign_ins_total{result="ok"} 1"#), "{two}");
        assert!(!two.contains("wsoauth_tokens_issued_total{"), "{two}");
    }
}
