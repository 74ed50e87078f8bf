//! Operations shared by the pages and the admin CLI: accounts, members, apps.

use wsoauth_domain::validate_redirect_uri;
use wsoauth_storage::{Account, App, AppFields, Role, StorageError};
use wsoauth_types::ScopeSet;

use crate::password::PasswordError;
use crate::state::{AppState, purpose};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Password(#[from] PasswordError),
}

const MAX_REDIRECT_URIS: usize = 20;

/// Checks and normalises what an app is registered with. `redirect_uris` may hold one URI per line.
pub fn app_fields<'a>(
    name: &str,
    redirect_uris: impl IntoIterator<Item = &'a str>,
    scopes: &str,
) -> Result<AppFields, AdminError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AdminError::Invalid("The name must have 1 to 200 characters.".into()));
    }
    let mut uris: Vec<String> = Vec::new();
    for uri in redirect_uris.into_iter().flat_map(str::lines).map(str::trim).filter(|u| !u.is_empty()) {
        validate_redirect_uri(uri).map_err(|e| AdminError::Invalid(format!("{uri}: {e}")))?;
        if !uris.iter().any(|u| u == uri) {
            uris.push(uri.to_owned());
        }
    }
    if uris.is_empty() || uris.len() > MAX_REDIRECT_URIS {
        return Err(AdminError::Invalid(format!("Give 1 to {MAX_REDIRECT_URIS} redirect URIs.")));
    }
    let scopes = ScopeSet::parse(scopes).map_err(|e| AdminError::Invalid(e.to_string()))?;
    if scopes.is_empty() {
        return Err(AdminError::Invalid("Choose at least one scope.".into()));
    }
    Ok(AppFields {
        name: name.to_owned(),
        redirect_uris: uris,
        scopes: scopes.to_space_separated(),
        require_pkce: false,
    })
}

/// Registers a confidential app; returns it with its secret (shown once, stored only as a digest).
pub async fn create_app(state: &AppState, account_id: i64, fields: &AppFields) -> Result<(App, String), AdminError> {
    let secret = state.new_secret();
    let digest = state.digest(purpose::CLIENT_SECRET, &secret);
    let app = state.store.create_app(account_id, &state.new_client_id(), &digest, fields, false, state.now()).await?;
    tracing::info!(client_id = %app.client_id, account = account_id, "app created");
    Ok((app, secret))
}

/// Registers a public app (native or single-page: no secret, PKCE required).
pub async fn create_public_app(state: &AppState, account_id: i64, fields: &AppFields) -> Result<App, AdminError> {
    let app = state.store.create_app(account_id, &state.new_client_id(), &[], fields, true, state.now()).await?;
    tracing::info!(client_id = %app.client_id, account = account_id, "public app created");
    Ok(app)
}

/// Gives an app a new secret; the old one stops working at once. Public apps have none.
pub async fn regenerate_secret(state: &AppState, app: &App) -> Result<String, AdminError> {
    if app.public {
        return Err(AdminError::Invalid("A public application has no secret.".into()));
    }
    let secret = state.new_secret();
    state.store.set_app_secret(app.id, &state.digest(purpose::CLIENT_SECRET, &secret), state.now()).await?;
    tracing::info!(client_id = %app.client_id, "app secret regenerated");
    Ok(secret)
}

/// A slug from a name: lowercase letters, digits and dashes.
pub fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.trim().chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-').chars().take(40).collect::<String>();
    if slug.is_empty() { "account".into() } else { slug }
}

pub async fn create_account(state: &AppState, name: &str, slug: Option<&str>) -> Result<Account, AdminError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AdminError::Invalid("The account name must have 1 to 200 characters.".into()));
    }
    let slug = match slug {
        Some(slug) => {
            if slug.is_empty()
                || slug.len() > 63
                || !slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(AdminError::Invalid("The slug must be 1 to 63 characters of a-z, 0-9 and -.".into()));
            }
            slug.to_owned()
        }
        None => {
            let base = slugify(name);
            let mut candidate = base.clone();
            let mut n = 2;
            while state.store.account_by_slug(&candidate).await?.is_some() {
                candidate = format!("{base}-{n}");
                n += 1;
            }
            candidate
        }
    };
    Ok(state.store.create_account(name, &slug, state.now()).await?)
}

/// Adds a person (new, or existing by email) to an account. A new person needs a password; an existing one
/// keeps theirs unless a new one is given.
pub async fn add_member(
    state: &AppState,
    account_id: i64,
    email: &str,
    first_name: &str,
    last_name: &str,
    role: Role,
    password: Option<String>,
) -> Result<i64, AdminError> {
    check_member(email, password.as_deref())?;
    let email = email.trim();
    let hash = match password {
        Some(password) => Some(state.passwords.hash(password, state.random.clone()).await?),
        None => None,
    };
    let person = match state.store.person_by_email(email).await? {
        Some(person) => {
            if let Some(hash) = &hash {
                state.store.set_password(person.id, hash).await?;
            }
            person
        }
        None => {
            let hash = hash.ok_or_else(|| AdminError::Invalid("A new person needs a password.".into()))?;
            state.store.create_person(email, first_name.trim(), last_name.trim(), Some(&hash), state.now()).await?
        }
    };
    Ok(state.store.add_member(account_id, person.id, role, state.now()).await?)
}

/// The checks `add_member` makes on what it is given, before it changes anything.
pub fn check_member(email: &str, password: Option<&str>) -> Result<(), AdminError> {
    let email = email.trim();
    if email.len() > 320
        || !email.contains('@')
        || email.starts_with('@')
        || email.ends_with('@')
        || email.contains(char::is_whitespace)
    {
        return Err(AdminError::Invalid(format!("{email:?} is not an email address.")));
    }
    if let Some(password) = password
        && (password.chars().count() < 8 || password.len() > 1024)
    {
        return Err(AdminError::Invalid("The password must have 8 to 1024 characters.".into()));
    }
    Ok(())
}
