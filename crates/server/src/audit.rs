//! The audit log: security-relevant events written to the database (shown on `/settings/audit`) and logged as
//! structured `tracing` lines with the target `audit`. Recording never fails the request: a failed write is
//! logged and the request goes on. Entries never hold secrets, codes, tokens or passwords.
//!
//! ```ignore
//! audit::record(&state, audit::Event::TokenRevoked, audit::Entry::new().user(user_id).person(person.id)
//!     .client(&client_id).detail("disconnected on the Connected apps page")).await;
//! ```

use std::net::IpAddr;

use wsoauth_storage::{App, AppFields, NewAuditEvent};

use crate::state::AppState;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    SignIn,
    SignInFailed,
    SignOut,
    ConsentGiven,
    ConsentDenied,
    /// Tokens issued for an authorization code.
    TokenIssued,
    TokenRefreshed,
    /// A grant ended by the client (`/oauth2/revoke`) or by the person (Connected apps).
    TokenRevoked,
    /// An authorization code presented again: its grant is revoked.
    CodeReplayed,
    /// A rotated refresh token presented again outside the grace window: its grant is revoked.
    RefreshReused,
    AppCreated,
    AppChanged,
    AppSecretRegenerated,
    AppDeleted,
    KeyRotated,
}

impl Event {
    pub const ALL: [Event; 15] = [
        Event::SignIn,
        Event::SignInFailed,
        Event::SignOut,
        Event::ConsentGiven,
        Event::ConsentDenied,
        Event::TokenIssued,
        Event::TokenRefreshed,
        Event::TokenRevoked,
        Event::CodeReplayed,
        Event::RefreshReused,
        Event::AppCreated,
        Event::AppChanged,
        Event::AppSecretRegenerated,
        Event::AppDeleted,
        Event::KeyRotated,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Event::SignIn => "sign_in",
            Event::SignInFailed => "sign_in_failed",
            Event::SignOut => "sign_out",
            Event::ConsentGiven => "consent_given",
            Event::ConsentDenied => "consent_denied",
            Event::TokenIssued => "token_issued",
            Event::TokenRefreshed => "token_refreshed",
            Event::TokenRevoked => "token_revoked",
            Event::CodeReplayed => "code_replayed",
            Event::RefreshReused => "refresh_reused",
            Event::AppCreated => "app_created",
            Event::AppChanged => "app_changed",
            Event::AppSecretRegenerated => "app_secret_regenerated",
            Event::AppDeleted => "app_deleted",
            Event::KeyRotated => "key_rotated",
        }
    }

    /// How the page shows it.
    pub fn label(self) -> &'static str {
        match self {
            Event::SignIn => "Signed in",
            Event::SignInFailed => "Sign-in failed",
            Event::SignOut => "Signed out",
            Event::ConsentGiven => "Consent given",
            Event::ConsentDenied => "Consent denied",
            Event::TokenIssued => "Tokens issued",
            Event::TokenRefreshed => "Tokens refreshed",
            Event::TokenRevoked => "Tokens revoked",
            Event::CodeReplayed => "Authorization code replayed",
            Event::RefreshReused => "Refresh token reused",
            Event::AppCreated => "App created",
            Event::AppChanged => "App changed",
            Event::AppSecretRegenerated => "App secret regenerated",
            Event::AppDeleted => "App deleted",
            Event::KeyRotated => "Signing key rotated",
        }
    }

    /// The event of a stored name.
    pub fn parse(name: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|event| event.as_str() == name)
    }
}

/// Who, which app, from where, and a short detail. Ids left out are filled in where the database knows them:
/// the account and the person from `user`, the account from `client`, the member from the account and `person`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    pub account_id: Option<i64>,
    /// The person who acted.
    pub person_id: Option<i64>,
    /// Their membership (user id) in the account.
    pub user_id: Option<i64>,
    pub client_id: Option<String>,
    pub ip: Option<IpAddr>,
    pub detail: String,
}

impl Entry {
    pub fn new() -> Entry {
        Entry::default()
    }

    pub fn account(mut self, account_id: i64) -> Entry {
        self.account_id = Some(account_id);
        self
    }

    pub fn person(mut self, person_id: i64) -> Entry {
        self.person_id = Some(person_id);
        self
    }

    pub fn user(mut self, user_id: i64) -> Entry {
        self.user_id = Some(user_id);
        self
    }

    pub fn client(mut self, client_id: &str) -> Entry {
        self.client_id = Some(client_id.to_owned());
        self
    }

    /// The client's address, when the handler knows it.
    pub fn ip(mut self, ip: Option<IpAddr>) -> Entry {
        self.ip = ip;
        self
    }

    /// A short description: never a secret, code, token or password.
    pub fn detail(mut self, detail: impl Into<String>) -> Entry {
        self.detail = detail.into();
        self
    }
}

/// The longest detail stored, in characters.
const MAX_DETAIL: usize = 500;

/// Records one event: a row in the audit log and an `audit` log line.
pub async fn record(state: &AppState, event: Event, entry: Entry) {
    log(event, &entry);
    write(state, event, &entry).await;
}

/// Records an event about a person's sign-in once for each account they belong to (so the admins of each see
/// it), as that membership; once without an account when `person_id` is unknown or in no account. The entry's
/// own person is kept as given (a failed sign-in names nobody as the actor).
pub async fn record_for_accounts_of(state: &AppState, event: Event, person_id: Option<i64>, entry: Entry) {
    log(event, &entry);
    let members = match person_id {
        Some(person_id) => match state.store.memberships(person_id).await {
            Ok(members) => members,
            Err(error) => {
                tracing::error!(target: "audit", %error, event = event.as_str(), "audit entry not written");
                return;
            }
        },
        None => Vec::new(),
    };
    if members.is_empty() {
        write(state, event, &entry).await;
    }
    for member in members {
        let mut entry = entry.clone().account(member.account.id);
        if entry.person_id == Some(member.person.id) {
            entry.user_id = Some(member.user_id);
        }
        write(state, event, &entry).await;
    }
}

/// Records an event that concerns every account (a signing-key rotation), once per account.
pub async fn record_for_every_account(state: &AppState, event: Event, entry: Entry) {
    log(event, &entry);
    match state.store.accounts().await {
        Ok(accounts) if !accounts.is_empty() => {
            for account in accounts {
                write(state, event, &entry.clone().account(account.id)).await;
            }
        }
        Ok(_) => write(state, event, &entry).await,
        Err(error) => tracing::error!(target: "audit", %error, event = event.as_str(), "audit entry not written"),
    }
}

/// An authorization code presented again (its grant is revoked): recorded for the member the code was issued to.
pub async fn code_replayed(state: &AppState, client_id: &str, code_digest: &[u8]) {
    let user_id = state.store.code_user_id(code_digest).await.unwrap_or_else(|error| {
        tracing::error!(target: "audit", %error, "the member of a replayed code is unknown");
        None
    });
    let entry = Entry { user_id, ..Entry::new().client(client_id) };
    record(state, Event::CodeReplayed, entry.detail("the code was presented again: its grant is revoked")).await;
}

/// What an edit of an app changes, in a few words (no secrets are ever part of an app's settings).
pub fn app_changes(old: &App, new: &AppFields) -> String {
    let mut changes = Vec::new();
    if old.name != new.name {
        changes.push(format!("name {:?} to {:?}", old.name, new.name));
    }
    if old.redirect_uris != new.redirect_uris {
        changes.push(format!("redirect URIs: {}", new.redirect_uris.join(" ")));
    }
    if old.scopes != new.scopes {
        changes.push(format!("scopes: {}", new.scopes));
    }
    if old.require_pkce != new.require_pkce {
        changes.push(format!("PKCE {}", if new.require_pkce { "required" } else { "optional" }));
    }
    if changes.is_empty() { format!("{}: nothing changed", new.name) } else { changes.join("; ") }
}

/// The detail of a failed sign-in: the email tried, unless what was typed does not look like an email (people
/// sometimes type their password into the email field).
pub fn email_tried(email: &str) -> String {
    let email = email.trim();
    let plausible = email.len() <= 320
        && email.contains('@')
        && !email.starts_with('@')
        && !email.ends_with('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if plausible {
        format!("email tried: {}", email.to_lowercase())
    } else {
        "email tried: not an email address".into()
    }
}

fn clean(detail: &str) -> String {
    detail.chars().map(|c| if c.is_control() { ' ' } else { c }).take(MAX_DETAIL).collect()
}

/// The `audit` log line of an entry that a write stored in its own transaction (made by [`row`]).
pub fn log_row(event: Event, row: &NewAuditEvent) {
    let entry = Entry {
        account_id: row.account_id,
        person_id: row.person_id,
        user_id: row.user_id,
        client_id: row.client_id.clone(),
        ip: row.ip.as_deref().and_then(|ip| ip.parse().ok()),
        detail: row.detail.clone(),
    };
    log(event, &entry);
}

/// The `audit` log line of an event (`record` writes it).
fn log(event: Event, entry: &Entry) {
    let ip = entry.ip.map(|ip| ip.to_string());
    tracing::info!(
        target: "audit",
        event = event.as_str(),
        account = entry.account_id,
        person = entry.person_id,
        user = entry.user_id,
        client_id = entry.client_id.as_deref(),
        ip = ip.as_deref(),
        detail = %clean(&entry.detail),
        "{}",
        event.label()
    );
}

/// The stored row of an event, for writes that store it in their own transaction (then call [`log_row`]).
pub fn row(state: &AppState, event: Event, entry: &Entry) -> NewAuditEvent {
    NewAuditEvent {
        at: state.now(),
        event: event.as_str().to_owned(),
        account_id: entry.account_id,
        person_id: entry.person_id,
        user_id: entry.user_id,
        client_id: entry.client_id.clone(),
        ip: entry.ip.map(|ip| ip.to_string()),
        detail: clean(&entry.detail),
    }
}

async fn write(state: &AppState, event: Event, entry: &Entry) {
    if let Err(error) = state.store.record_audit(&row(state, event, entry)).await {
        tracing::error!(target: "audit", %error, event = event.as_str(), "audit entry not written");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for event in Event::ALL {
            assert_eq!(Event::parse(event.as_str()), Some(event));
        }
        assert_eq!(Event::parse("nope"), None);
    }

    #[test]
    fn only_plausible_emails_are_kept() {
        assert_eq!(email_tried(" Ann@Acme.test "), "email tried: ann@acme.test");
        for typed in ["hunter2-password", "a b@c", "@x", "x@", ""] {
            assert_eq!(email_tried(typed), "email tried: not an email address", "{typed:?}");
        }
    }
}
