//! Configuration: flags, then environment (`WSOAUTH_*`), then a TOML file (`--config`), then defaults.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;
use thiserror::Error;
use wsoauth_domain::duration::{DurationError, parse_seconds};

use crate::limits::{RateLimit, TrustedProxy};

/// wsoauth: a Worksection-compatible OAuth 2.0 server and API.
#[derive(Debug, Parser)]
#[command(name = "wsoauth", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Settings shared by every command. Each has an environment fallback; a TOML file (`--config`) may set any of
/// them with the same names in snake case (`public_url = "https://auth.example.com"`).
#[derive(Debug, Default, Args)]
pub struct ConfigArgs {
    /// TOML configuration file.
    #[arg(long, env = "WSOAUTH_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "WSOAUTH_LISTEN", global = true, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Public base URL, used as the token issuer (`iss`) and the default `account_url`
    /// [default: http://LISTEN].
    #[arg(long, env = "WSOAUTH_PUBLIC_URL", global = true, value_name = "URL")]
    pub public_url: Option<String>,
    /// Per-account URL template for `account_url`, e.g. `https://{account}.example.com` (the server answers on
    /// every host) [default: the public URL].
    #[arg(long, env = "WSOAUTH_ACCOUNT_URL_TEMPLATE", global = true, value_name = "TEMPLATE")]
    pub account_url_template: Option<String>,
    /// Database URL: `sqlite://PATH`, or `postgres://USER:PASSWORD@HOST:PORT/DB` for PostgreSQL (several nodes
    /// may share one) [default: sqlite://data/wsoauth.db].
    #[arg(long, env = "WSOAUTH_DATABASE_URL", global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// The most database connections this process opens (PostgreSQL: keep nodes × this, plus one listening
    /// connection per node, under the server's max_connections) [default: 16 on PostgreSQL, 8 on SQLite].
    #[arg(long, env = "WSOAUTH_DATABASE_POOL_SIZE", global = true, value_name = "N")]
    pub database_pool_size: Option<u32>,
    /// Authorization code lifetime: seconds, or 10m, 24h, 30d [default: 10m].
    #[arg(long, env = "WSOAUTH_CODE_TTL", global = true, value_name = "DURATION")]
    pub code_ttl: Option<String>,
    /// Access token lifetime [default: 24h].
    #[arg(long, env = "WSOAUTH_ACCESS_TOKEN_TTL", global = true, value_name = "DURATION")]
    pub access_token_ttl: Option<String>,
    /// Refresh token lifetime [default: 30d].
    #[arg(long, env = "WSOAUTH_REFRESH_TOKEN_TTL", global = true, value_name = "DURATION")]
    pub refresh_token_ttl: Option<String>,
    /// Sign-in session lifetime [default: 12h].
    #[arg(long, env = "WSOAUTH_SESSION_TTL", global = true, value_name = "DURATION")]
    pub session_ttl: Option<String>,
    /// How long audit log entries are kept [default: 180d].
    #[arg(long, env = "WSOAUTH_AUDIT_RETENTION", global = true, value_name = "DURATION")]
    pub audit_retention: Option<String>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key) [default: plain HTTP].
    #[arg(long, env = "WSOAUTH_TLS_CERT", global = true, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "WSOAUTH_TLS_KEY", global = true, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Sign-in sessions end after this long without a page view [default: 1h].
    #[arg(long, env = "WSOAUTH_SESSION_IDLE", global = true, value_name = "DURATION")]
    pub session_idle: Option<String>,
    /// Grace window for a rotated refresh token presented again while the new pair is unused (a lost response):
    /// it gets the same new pair instead of revoking the grant; `0` turns the grace off [default: 10s].
    #[arg(long, env = "WSOAUTH_REFRESH_REUSE_GRACE", global = true, value_name = "DURATION")]
    pub refresh_reuse_grace: Option<String>,
    /// How long a node may answer a bearer check from its cache of grant state. Changes made through this node
    /// are seen at once; on PostgreSQL, changes made on other nodes as soon as their notification arrives; the
    /// cache is never older than this (the bound for changes by other processes on SQLite); `0` turns the cache
    /// off [default: 2s].
    #[arg(long, env = "WSOAUTH_TOKEN_CACHE", global = true, value_name = "DURATION")]
    pub token_cache: Option<String>,
    /// Failed sign-ins allowed per email in a sliding window, as COUNT/DURATION, or `off`; past it the sign-in
    /// page answers 429 with Retry-After, even to the right password [default: 10/15m].
    #[arg(long, env = "WSOAUTH_LOGIN_ATTEMPTS_PER_EMAIL", global = true, value_name = "LIMIT")]
    pub login_attempts_per_email: Option<String>,
    /// Failed sign-ins allowed per client IP (IPv6 per /64) [default: 50/15m].
    #[arg(long, env = "WSOAUTH_LOGIN_ATTEMPTS_PER_IP", global = true, value_name = "LIMIT")]
    pub login_attempts_per_ip: Option<String>,
    /// Failed client authentications allowed per client_id at /oauth2/token, /oauth2/refresh, /oauth2/revoke and
    /// /oauth2/introspect; past it they answer 429 with Retry-After, even to the right secret [default: 20/15m].
    #[arg(long, env = "WSOAUTH_CLIENT_AUTH_FAILURES", global = true, value_name = "LIMIT")]
    pub client_auth_failures: Option<String>,
    /// A reverse proxy (IP or CIDR range; repeat or separate with commas) whose X-Forwarded-For is believed: for
    /// requests from it the client IP is the right-most untrusted address of that header [default: none, the
    /// header is ignored].
    #[arg(
        long = "trusted-proxy",
        env = "WSOAUTH_TRUSTED_PROXIES",
        global = true,
        value_name = "IP",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<String>,
    /// Log lines on standard error: `text` for people, `json` (one object per line) for log collectors
    /// [default: text].
    #[arg(long, env = "WSOAUTH_LOG_FORMAT", global = true, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default command). On an empty database it creates an account and its owner
    /// (`WSOAUTH_BOOTSTRAP_EMAIL`, `WSOAUTH_BOOTSTRAP_PASSWORD`, or a generated password printed once).
    Serve,
    /// Manage accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Manage people and their membership of accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API applications (OAuth 2.0 clients).
    #[command(subcommand)]
    App(AppCommand),
    /// Manage the token signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Sample data to try the API with.
    #[command(subcommand)]
    Demo(DemoCommand),
    /// Bring the database schema up to date and print the applied versions (`serve` and every command do this by
    /// themselves; this is for scripts that migrate before starting servers).
    Migrate,
    /// Write the whole database to a file (JSON lines), to import it elsewhere: into PostgreSQL from SQLite, or
    /// back. The file holds password hashes, the digests of tokens and client secrets, the digest key and the
    /// signing keys' private keys: treat it as a secret (with --output it is created with mode 0600).
    Export {
        /// Write the export to FILE instead of standard output.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Read an export into the configured database, which must be new and empty (migrations run first; only the
    /// same schema version is accepted; nothing is written unless all is). Ids, passwords, tokens, client secrets
    /// and signing keys are kept: issued tokens stay valid. The file holds every secret: treat it as one.
    Import {
        /// Read the export from FILE instead of standard input.
        #[arg(long, value_name = "FILE")]
        input: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// Fill an account with sample teams, members (who can sign in; the password is printed), projects, tasks
    /// with subtasks, comments and tags.
    Seed {
        /// Account id or slug; may be left out when there is only one account.
        #[arg(long)]
        account: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add a new signing key and sign with it from now on (running servers pick it up within a minute). Tokens
    /// signed with the previous key stay valid until they expire; retired keys are deleted after the longest
    /// access-token lifetime.
    Rotate,
    /// List the signing keys.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create an account.
    Create {
        #[arg(long)]
        name: String,
        /// Short name used in the account URL template [default: derived from the name].
        #[arg(long)]
        slug: Option<String>,
    },
    /// List accounts.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a person to an account; the password is read from standard input (first line). An existing person
    /// (same email) joins the account; an empty password then keeps the one they have.
    Create {
        #[arg(long)]
        email: String,
        /// Account id or slug; may be left out when there is only one account.
        #[arg(long)]
        account: Option<String>,
        #[arg(long, default_value = "")]
        first_name: String,
        #[arg(long, default_value = "")]
        last_name: String,
        /// owner, admin, user, guest or reader.
        #[arg(long, default_value = "user")]
        role: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Register an application; prints its client id and secret (the secret is shown only now).
    Create {
        #[arg(long)]
        name: String,
        /// Redirect URI (repeat for several): https, or http on a loopback host.
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
        /// Scopes the app may ask for, separated by commas or spaces [default: all 17].
        #[arg(long)]
        scopes: Option<String>,
        /// Account id or slug; may be left out when there is only one account.
        #[arg(long)]
        account: Option<String>,
        /// Print `{"client_id":...,"client_secret":...}`.
        #[arg(long)]
        json: bool,
        /// A public client (native or single-page app): no secret; PKCE (S256) required.
        #[arg(long)]
        public: bool,
        /// Require PKCE (S256) from this confidential client too.
        #[arg(long)]
        require_pkce: bool,
    },
    /// List applications.
    List {
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Delete an application and every token it holds.
    Delete { client_id: String },
}

/// Resolved settings.
#[derive(Clone, Debug)]
pub struct Settings {
    pub listen: String,
    /// `None`: derived from the bound address at start.
    pub public_url: Option<String>,
    pub account_url_template: Option<String>,
    pub database_url: String,
    /// The most connections in the pool (`None`: the backend's default).
    pub database_pool_size: Option<u32>,
    pub code_ttl: i64,
    pub access_token_ttl: i64,
    pub refresh_token_ttl: i64,
    pub session_ttl: i64,
    /// Seconds an audit log entry is kept.
    pub audit_retention: i64,
    /// Built-in HTTPS: the PEM certificate chain and key.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Seconds without a page view after which a sign-in session ends.
    pub session_idle: i64,
    /// Seconds during which a just-rotated refresh token gets the same new pair again (0: never).
    pub refresh_reuse_grace: i64,
    /// Seconds a node may answer bearer checks from its cache of grant state (0: no cache).
    pub token_cache: i64,
    /// Failed sign-ins per email and per client IP, failed client authentications per client_id (`None`: no limit).
    pub login_attempts_per_email: Option<RateLimit>,
    pub login_attempts_per_ip: Option<RateLimit>,
    pub client_auth_failures: Option<RateLimit>,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<TrustedProxy>,
    /// Argon2id cost: memory in KiB and passes. Tests lower them.
    pub argon2_memory_kib: u32,
    pub argon2_passes: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            account_url_template: None,
            database_url: "sqlite://data/wsoauth.db".into(),
            database_pool_size: None,
            code_ttl: 600,
            access_token_ttl: 86_400,
            refresh_token_ttl: 30 * 86_400,
            session_ttl: 12 * 3600,
            audit_retention: 180 * 86_400,
            refresh_reuse_grace: 10,
            token_cache: 2,
            session_idle: 3600,
            tls_cert: None,
            tls_key: None,
            login_attempts_per_email: Some(RateLimit::new(10, 15 * 60)),
            login_attempts_per_ip: Some(RateLimit::new(50, 15 * 60)),
            client_auth_failures: Some(RateLimit::new(20, 15 * 60)),
            trusted_proxies: Vec::new(),
            argon2_memory_kib: 19 * 1024,
            argon2_passes: 2,
        }
    }
}

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("config file {path}: {source}")]
    Parse { path: String, source: toml::de::Error },
    #[error("{name}: {source}")]
    Duration { name: &'static str, source: DurationError },
    #[error("{0}")]
    Invalid(String),
}

/// The file form: every key optional; lifetimes as numbers (seconds) or strings (`10m`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    public_url: Option<String>,
    account_url_template: Option<String>,
    database_url: Option<String>,
    database_pool_size: Option<u32>,
    code_ttl: Option<toml::Value>,
    access_token_ttl: Option<toml::Value>,
    refresh_token_ttl: Option<toml::Value>,
    session_ttl: Option<toml::Value>,
    audit_retention: Option<toml::Value>,
    refresh_reuse_grace: Option<toml::Value>,
    token_cache: Option<toml::Value>,
    session_idle: Option<toml::Value>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    login_attempts_per_email: Option<toml::Value>,
    login_attempts_per_ip: Option<toml::Value>,
    client_auth_failures: Option<toml::Value>,
    /// A list of strings, or one string with commas.
    trusted_proxies: Option<toml::Value>,
}

fn value_text(value: Option<toml::Value>) -> Option<String> {
    value.map(|v| match v {
        toml::Value::String(s) => s,
        toml::Value::Integer(n) => n.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => other.type_str().to_owned(),
    })
}

impl ConfigArgs {
    pub fn resolve(&self) -> Result<Settings, ConfigError> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let defaults = Settings::default();
        let ttl = |name: &'static str, flag: &Option<String>, file: Option<toml::Value>, default: i64| match flag
            .clone()
            .or_else(|| value_text(file))
        {
            Some(text) => parse_seconds(&text).map_err(|source| ConfigError::Duration { name, source }),
            None => Ok(default),
        };
        let login_attempts_per_email = limit(
            "login attempts per email",
            &self.login_attempts_per_email,
            file.login_attempts_per_email,
            defaults.login_attempts_per_email,
        )?;
        let login_attempts_per_ip = limit(
            "login attempts per IP",
            &self.login_attempts_per_ip,
            file.login_attempts_per_ip,
            defaults.login_attempts_per_ip,
        )?;
        let client_auth_failures = limit(
            "client authentication failures",
            &self.client_auth_failures,
            file.client_auth_failures,
            defaults.client_auth_failures,
        )?;
        let trusted_proxies = trusted_proxies(&self.trusted_proxies, file.trusted_proxies)?;
        let public_url = self.public_url.clone().or(file.public_url).map(|url| url.trim_end_matches('/').to_owned());
        if let Some(url) = &public_url
            && (!(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10)
        {
            return Err(ConfigError::Invalid(format!("public URL {url:?} must start with http:// or https://")));
        }
        let account_url_template = self.account_url_template.clone().or(file.account_url_template);
        if let Some(template) = &account_url_template
            && !template.contains("{account}")
        {
            return Err(ConfigError::Invalid(format!("account URL template {template:?} must contain {{account}}")));
        }
        let (tls_cert, tls_key) = (self.tls_cert.clone().or(file.tls_cert), self.tls_key.clone().or(file.tls_key));
        if tls_cert.is_some() != tls_key.is_some() {
            return Err(ConfigError::Invalid("HTTPS needs both a certificate (tls_cert) and its key (tls_key)".into()));
        }
        Ok(Settings {
            listen: self.listen.clone().or(file.listen).unwrap_or(defaults.listen),
            public_url,
            account_url_template: account_url_template.map(|t| t.trim_end_matches('/').to_owned()),
            database_url: self.database_url.clone().or(file.database_url).unwrap_or(defaults.database_url),
            database_pool_size: match self.database_pool_size.or(file.database_pool_size) {
                Some(0) => return Err(ConfigError::Invalid("database_pool_size must be at least 1".into())),
                size => size,
            },
            code_ttl: ttl("code TTL", &self.code_ttl, file.code_ttl, defaults.code_ttl)?,
            access_token_ttl: ttl(
                "access token TTL",
                &self.access_token_ttl,
                file.access_token_ttl,
                defaults.access_token_ttl,
            )?,
            refresh_token_ttl: ttl(
                "refresh token TTL",
                &self.refresh_token_ttl,
                file.refresh_token_ttl,
                defaults.refresh_token_ttl,
            )?,
            session_ttl: ttl("session TTL", &self.session_ttl, file.session_ttl, defaults.session_ttl)?,
            audit_retention: ttl(
                "audit retention",
                &self.audit_retention,
                file.audit_retention,
                defaults.audit_retention,
            )?,
            tls_cert,
            tls_key,
            session_idle: ttl("session idle time", &self.session_idle, file.session_idle, defaults.session_idle)?,
            refresh_reuse_grace: match self.refresh_reuse_grace.clone().or_else(|| value_text(file.refresh_reuse_grace))
            {
                Some(text) if text.trim() == "0" => 0,
                Some(text) => parse_seconds(&text)
                    .map_err(|source| ConfigError::Duration { name: "refresh reuse grace", source })?,
                None => defaults.refresh_reuse_grace,
            },
            token_cache: match self.token_cache.clone().or_else(|| value_text(file.token_cache)) {
                Some(text) if text.trim() == "0" => 0,
                Some(text) => {
                    parse_seconds(&text).map_err(|source| ConfigError::Duration { name: "token cache", source })?
                }
                None => defaults.token_cache,
            },
            login_attempts_per_email,
            login_attempts_per_ip,
            client_auth_failures,
            trusted_proxies,
            ..defaults
        })
    }
}

/// A brute-force limit from the flag (or the environment), else the file, else the default.
fn limit(
    name: &str,
    flag: &Option<String>,
    file: Option<toml::Value>,
    default: Option<RateLimit>,
) -> Result<Option<RateLimit>, ConfigError> {
    match flag.clone().or_else(|| value_text(file)) {
        Some(text) => RateLimit::parse_setting(&text).map_err(|e| ConfigError::Invalid(format!("{name}: {e}"))),
        None => Ok(default),
    }
}

/// The flags (or the environment), else the file's list or comma-separated string.
fn trusted_proxies(flags: &[String], file: Option<toml::Value>) -> Result<Vec<TrustedProxy>, ConfigError> {
    let texts: Vec<String> = if !flags.is_empty() {
        flags.to_vec()
    } else {
        match file {
            None => Vec::new(),
            Some(toml::Value::String(list)) => list.split(',').map(str::to_owned).collect(),
            Some(toml::Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    toml::Value::String(text) => Ok(text),
                    other => Err(ConfigError::Invalid(format!(
                        "trusted_proxies: expected strings, found a {}",
                        other.type_str()
                    ))),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(ConfigError::Invalid(format!(
                    "trusted_proxies: expected a list of strings, found a {}",
                    other.type_str()
                )));
            }
        }
    };
    texts
        .iter()
        .filter(|text| !text.trim().is_empty())
        .map(|text| text.parse::<TrustedProxy>().map_err(|e| ConfigError::Invalid(e.to_string())))
        .collect()
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse { path: path.display().to_string(), source })
}
