//! Rows as the rest of wsoauth sees them.

use std::fmt;
use std::str::FromStr;

/// A member's role in an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Owner,
    Admin,
    User,
    Guest,
    Reader,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Owner, Role::Admin, Role::User, Role::Guest, Role::Reader];

    /// Stored and CLI form.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::User => "user",
            Role::Guest => "guest",
            Role::Reader => "reader",
        }
    }

    /// Worksection's display form, as its API answers it.
    pub fn display(self) -> &'static str {
        match self {
            Role::Owner => "Owner",
            Role::Admin => "Account admin",
            Role::User => "User",
            Role::Guest => "Guest",
            Role::Reader => "Reader",
        }
    }

    /// Owners and account admins manage the account's API applications.
    pub fn manages_account(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "owner" => Ok(Role::Owner),
            "admin" | "account admin" => Ok(Role::Admin),
            "user" => Ok(Role::User),
            "guest" => Ok(Role::Guest),
            "reader" => Ok(Role::Reader),
            other => Err(format!("unknown role {other:?}: use owner, admin, user, guest or reader")),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: i64,
    pub name: String,
    pub slug: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person {
    pub id: i64,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub password_hash: Option<String>,
}

/// A person's membership of an account.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    pub user_id: i64,
    pub role: Role,
    pub title: String,
    pub account: Account,
    pub person: Person,
    pub profile: Profile,
}

/// A member's profile in an account, as `get_users` shows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Profile {
    pub team_id: Option<i64>,
    /// The team's title; empty when the member is in no team.
    pub team: String,
    pub department: String,
    pub rate: f64,
    pub phones: [String; 4],
    pub address: String,
    pub address2: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct App {
    pub id: i64,
    pub account_id: i64,
    pub client_id: String,
    pub secret_digest: Vec<u8>,
    pub name: String,
    pub redirect_uris: Vec<String>,
    /// Space-separated scope names the app may ask for.
    pub scopes: String,
    pub created_at: i64,
    /// A public client (native or single-page app): no secret, PKCE required.
    pub public: bool,
    /// PKCE required even though the client has a secret.
    pub require_pkce: bool,
}

/// What an app is registered with (or changed to).
#[derive(Clone, Debug)]
pub struct AppFields {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub scopes: String,
    pub require_pkce: bool,
}

#[derive(Clone, Debug)]
pub struct NewCode {
    pub digest: Vec<u8>,
    pub app_id: i64,
    pub user_id: i64,
    pub redirect_uri: String,
    pub scopes: String,
    /// The PKCE S256 challenge, when the request had one.
    pub code_challenge: Option<String>,
    pub now: i64,
    pub expires_at: i64,
}

/// A token family's current state after an exchange or a rotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub id: i64,
    pub app_id: i64,
    pub user_id: i64,
    pub scopes: String,
    pub generation: i64,
}

/// A rotated refresh token presented again: what the server needs to tell a lost response (answer the same
/// pair again) from a replay (revoke the family).
#[derive(Clone, Debug)]
pub struct Rotation {
    pub grant: Grant,
    /// The generation the presented token belonged to.
    pub token_generation: i64,
    /// When the grant last rotated, and the nonce that rotation drew.
    pub rotated_at: i64,
    pub nonce: Vec<u8>,
    /// Whether the current access token has been used.
    pub access_used: bool,
}

/// An authorization code presented at the token endpoint, with what the request says about it.
#[derive(Clone, Copy, Debug)]
pub struct CodeExchange<'a> {
    /// The digest of the code.
    pub code_digest: &'a [u8],
    /// The authenticated client's app.
    pub app_id: i64,
    pub redirect_uri: &'a str,
    pub code_verifier: Option<&'a str>,
    pub now: i64,
}

/// A refresh token to store: its digest and when it stops working.
#[derive(Clone, Debug)]
pub struct NewRefresh {
    pub digest: Vec<u8>,
    pub expires_at: i64,
}

/// A refresh token's state.
#[derive(Clone, Debug)]
pub struct RefreshState {
    pub grant: Grant,
    pub revoked: bool,
    /// The generation the token was issued at; it is current when equal to `grant.generation`.
    pub token_generation: i64,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// What an access token's grant looks like now, with the member it speaks for.
#[derive(Clone, Debug)]
pub struct GrantState {
    pub grant: Grant,
    pub revoked: bool,
    /// Whether the current generation's access token has been used.
    pub access_used: bool,
    pub client_id: String,
    pub member: Member,
}

#[derive(Clone, Debug)]
pub struct SigningKeyRow {
    pub kid: String,
    pub private_key: Vec<u8>,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

/// Who is looking: every API query is limited to what this member may see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Viewer {
    pub account_id: i64,
    pub user_id: i64,
    /// Owners and account admins see every project of the account.
    pub admin: bool,
}

/// A snapshot of the database connection pool (for the `/metrics` gauges).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections open now, idle or in use.
    pub size: u32,
    pub idle: u32,
    /// The most the pool opens.
    pub max: u32,
}
