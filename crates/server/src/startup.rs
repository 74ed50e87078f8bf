//! Start-up: open the database, load (or create) the digest key and the signing key, bootstrap an empty
//! database, build the router, serve.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use wsoauth_domain::{Clock, OsRandom, RandomSource, SecretHasher};
use wsoauth_storage::{Role, StorageError, Store};

use crate::config::Settings;
use crate::jwt::{KeyError, KeySet, SigningKey};
use crate::password::{PasswordError, Passwords};
use crate::state::{AppState, Shared};
use crate::{admin, api, oauth, observe, pages};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("bootstrap failed: {0}")]
    Bootstrap(String),
    #[error("server failed: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

/// Opens the store and builds the shared state. `public_url` is the resolved public base URL.
pub async fn prepare(settings: Settings, public_url: String, clock: Arc<dyn Clock>) -> Result<Shared, StartError> {
    let store = Store::open_with_pool(&settings.database_url, settings.database_pool_size)
        .await?
        .with_grant_cache(settings.token_cache)
        .await?;
    let random: Arc<dyn RandomSource> = Arc::new(OsRandom);
    let mut fresh = [0u8; 32];
    random.fill(&mut fresh);
    let stored = store.setting_or_insert("digest_key", &fresh).await?;
    let key: [u8; 32] =
        stored.as_slice().try_into().map_err(|_| StorageError::Corrupt("digest_key is not 32 bytes".into()))?;
    let now = clock.now();
    let keys = load_keys(&store, now).await?;
    let passwords = Passwords::new(settings.argon2_memory_kib, settings.argon2_passes, random.as_ref())?;
    let metrics = crate::observe::Metrics::new();
    metrics.observe_checkpoints(&store);
    Ok(Arc::new(AppState {
        store,
        limits: crate::limits::Limits::new(&settings),
        verified: crate::bearer::VerifiedTokens::new(settings.token_cache > 0, random.as_ref()),
        secure_cookies: public_url.starts_with("https://"),
        public_url,
        settings,
        clock,
        random,
        hasher: SecretHasher::new(key),
        keys: std::sync::RwLock::new(Arc::new(keys)),
        keys_loaded_at: std::sync::atomic::AtomicI64::new(now),
        passwords,
        metrics,
    }))
}

/// The signing keys: the newest unretired key signs; every stored key verifies. The first start makes one.
pub(crate) async fn load_keys(store: &Store, now: i64) -> Result<KeySet, StartError> {
    let mut rows = store.signing_keys().await?;
    if !rows.iter().any(|row| row.retired_at.is_none()) {
        let (der, kid) = SigningKey::generate()?;
        store.insert_first_signing_key(&kid, &der, now).await?;
        rows = store.signing_keys().await?;
    }
    let mut all = Vec::with_capacity(rows.len());
    let mut active = None;
    for row in &rows {
        let key = Arc::new(SigningKey::from_pkcs8(&row.kid, &row.private_key)?);
        if row.retired_at.is_none() {
            active = Some(key.clone());
        }
        all.push(key);
    }
    let active = active.ok_or_else(|| StorageError::Corrupt("no active signing key".into()))?;
    Ok(KeySet::new(active, all))
}

/// On an empty database: one account and its owner. Returns the sign-in details to print, if it created them (of
/// several nodes starting at once on one database, exactly one does).
pub async fn bootstrap(state: &AppState) -> Result<Option<(String, Option<String>)>, StartError> {
    if state.store.count_accounts().await? > 0 {
        return Ok(None);
    }
    let email = std::env::var("WSOAUTH_BOOTSTRAP_EMAIL").unwrap_or_else(|_| "owner@example.com".into());
    let given = std::env::var("WSOAUTH_BOOTSTRAP_PASSWORD").ok().filter(|p| !p.is_empty());
    let password = given.clone().unwrap_or_else(|| wsoauth_domain::secret::random_token(state.random.as_ref(), 15));
    let bad = |e: admin::AdminError| StartError::Bootstrap(e.to_string());
    // checked before the account exists: a refused email or password must not leave an ownerless account that
    // stops the next start from bootstrapping
    admin::check_member(&email, Some(&password)).map_err(bad)?;
    // one conditional insert under the write lock: of several nodes starting together on an empty database, one
    // creates the account (and then its owner); the others find it there and carry on
    let Some(account) = state.store.create_first_account("My account", "main", state.now()).await? else {
        return Ok(None);
    };
    admin::add_member(state, account.id, &email, "Account", "Owner", Role::Owner, Some(password.clone()))
        .await
        .map_err(bad)?;
    Ok(Some((email, given.is_none().then_some(password))))
}

/// The security headers of every answer, each unless the handler set its own: one map of the response instead
/// of a layer (and a boxed route) per header.
fn security_headers(mut response: Response) -> Response {
    const HEADERS: [(HeaderName, HeaderValue); 5] = [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
            ),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ];
    let headers = response.headers_mut();
    // room for all five at once: the map grows once instead of rehashing on the way
    headers.reserve(HEADERS.len());
    for (name, value) in HEADERS {
        if let header::Entry::Vacant(entry) = headers.entry(name) {
            entry.insert(value);
        }
    }
    response
}

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/", get(pages::home))
        .route("/login", get(pages::login::show).post(pages::login::submit))
        .route("/logout", post(pages::login::logout))
        .route("/settings/api", get(pages::apps::list))
        .route("/settings/api/apps", post(pages::apps::create))
        .route("/settings/api/apps/{client_id}", get(pages::apps::show).post(pages::apps::update))
        .route("/settings/api/apps/{client_id}/secret", post(pages::apps::regenerate))
        .route("/settings/api/apps/{client_id}/delete", post(pages::apps::delete))
        .route("/settings/connected", get(pages::connected::list))
        .route("/settings/audit", get(pages::audit::list))
        .route("/settings/connected/disconnect", post(pages::connected::disconnect))
        .route("/oauth2/authorize", get(oauth::authorize::show).post(oauth::authorize::decide))
        .route("/oauth2/token", get(oauth::token::token).post(oauth::token::token))
        .route("/oauth2/refresh", get(oauth::token::refresh).post(oauth::token::refresh))
        .route("/oauth2/resource", get(oauth::resource::resource).post(oauth::resource::resource))
        .route("/oauth2/revoke", post(oauth::revoke::revoke))
        .route("/oauth2/introspect", post(oauth::revoke::introspect))
        .route("/.well-known/oauth-authorization-server", get(oauth::discovery::metadata))
        .route("/.well-known/jwks.json", get(oauth::discovery::jwks))
        .route("/api/oauth2", get(api::dispatch).post(api::dispatch))
        .route("/api/oauth2/", get(api::dispatch).post(api::dispatch))
        .route("/metrics", get(observe::metrics))
        .route("/healthz", get(observe::healthz))
        .route("/readyz", get(observe::readyz))
        .fallback(|| async { crate::web::PageError::NotFound })
        .layer(tower::util::MapResponseLayer::new(security_headers))
        .layer(axum::extract::DefaultBodyLimit::max(1024 * 1024))
        // outermost: the request id, metrics and access log see every answer, the headers above included
        .layer(observe::TrackLayer(state.clone()))
        .with_state(state)
}

/// A server running in this process.
pub struct Running {
    pub addr: SocketAddr,
    pub base_url: String,
    pub state: Shared,
    pub handle: tokio::task::JoinHandle<()>,
}

/// Binds `settings.listen`, prepares the state (public URL derived from the bound address unless configured) and
/// serves in the background. Tests use `127.0.0.1:0`.
pub async fn spawn(settings: Settings, clock: Arc<dyn Clock>) -> Result<Running, StartError> {
    let listener = TcpListener::bind(&settings.listen)
        .await
        .map_err(|source| StartError::Listen { addr: settings.listen.clone(), source })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen { addr: settings.listen.clone(), source })?;
    let public_url = settings.public_url.clone().unwrap_or_else(|| default_public_url(addr));
    let state = prepare(settings, public_url.clone(), clock).await?;
    spawn_purger(state.clone());
    let app = router(state.clone());
    let handle = tokio::spawn(async move {
        // with the peer address: the client IP of the brute-force limits
        if let Err(error) = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await {
            tracing::error!(%error, "server stopped");
        }
    });
    Ok(Running { addr, base_url: format!("http://{addr}"), state, handle })
}

/// Every minute: picks up keys rotated elsewhere, gives freed memory back; every ten minutes: deletes expired
/// sessions, codes, refresh tokens, dead grants, and keys retired longer ago than the access-token lifetime.
fn spawn_purger(state: Shared) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
        let mut ticks: u64 = 0;
        loop {
            every.tick().await;
            ticks += 1;
            if ticks % 10 == 1 {
                purge(&state).await;
            }
            state.reload_keys_if_older_than(30).await;
            state.limits.prune(state.now());
            state.metrics.upkeep();
            crate::memory::give_back();
        }
    });
}

async fn purge(state: &AppState) {
    let now = state.now();
    match state.store.purge_expired(now).await {
        Ok(0) => {}
        Ok(deleted) => tracing::info!(deleted, "expired rows purged"),
        Err(error) => tracing::warn!(%error, "purge failed"),
    }
    match state.store.delete_retired_keys(now - state.settings.access_token_ttl).await {
        Ok(0) => {}
        Ok(deleted) => tracing::info!(deleted, "retired signing keys deleted"),
        Err(error) => tracing::warn!(%error, "deleting retired keys failed"),
    }
    match state.store.purge_audit(now - state.settings.audit_retention).await {
        Ok(0) => {}
        Ok(deleted) => tracing::info!(deleted, "old audit log entries deleted"),
        Err(error) => tracing::warn!(%error, "deleting old audit log entries failed"),
    }
}

fn default_public_url(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() { format!("http://localhost:{}", addr.port()) } else { format!("http://{addr}") }
}

/// `wsoauth serve`: bind, bootstrap, print the sign-in details, serve until Ctrl-C or SIGTERM.
pub async fn serve(settings: Settings, clock: Arc<dyn Clock>) -> Result<(), StartError> {
    // read the certificate before anything else: a bad one should stop the start at once
    let tls = match (&settings.tls_cert, &settings.tls_key) {
        (Some(cert), Some(key)) => Some(crate::tls::acceptor(cert, key)?),
        _ => None,
    };
    let listener = TcpListener::bind(&settings.listen)
        .await
        .map_err(|source| StartError::Listen { addr: settings.listen.clone(), source })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen { addr: settings.listen.clone(), source })?;
    let public_url = settings.public_url.clone().unwrap_or_else(|| {
        let url = default_public_url(addr);
        if tls.is_some() { url.replacen("http://", "https://", 1) } else { url }
    });
    let state = prepare(settings, public_url.clone(), clock).await?;
    if let Some((email, password)) = bootstrap(&state).await? {
        println!("Created an account and its owner. Sign in at {public_url}/login");
        println!("  email:    {email}");
        match password {
            Some(password) => println!("  password: {password}   (shown only now)"),
            None => println!("  password: the one in WSOAUTH_BOOTSTRAP_PASSWORD"),
        }
    }
    spawn_purger(state.clone());
    crate::memory::give_back();
    tracing::info!(%addr, %public_url, "wsoauth listening");
    if let Some(acceptor) = tls {
        println!("wsoauth listening on https://{addr} (public URL {public_url})");
        crate::tls::serve(listener, acceptor, router(state), shutdown()).await;
        return Ok(());
    }
    println!("wsoauth listening on http://{addr} (public URL {public_url})");
    axum::serve(listener, router(state).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown())
        .await
        .map_err(StartError::Serve)
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut signal) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            signal.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
