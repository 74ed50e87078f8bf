//! Account settings, API section: register, edit, re-key and delete applications. Owners and account admins only.

use std::net::IpAddr;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum_extra::extract::CookieJar;
use wsoauth_storage::{App, AppFields, Person};
use wsoauth_types::{Scope, ScopeSet};

use crate::admin::{self, AdminError};
use crate::audit::{self, Entry, Event};
use crate::limits::ClientIp;
use crate::params::Params;
use crate::state::{AppState, Shared};
use crate::web::{PageError, checked_form, csrf_token, render, see_other, signed_in};

struct AccountApps {
    id: i64,
    name: String,
    apps: Vec<App>,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    email: String,
    csrf: String,
    error: Option<String>,
    accounts: Vec<AccountApps>,
    all_scopes: Vec<(&'static str, bool)>,
}

#[derive(Template)]
#[template(path = "app_edit.html")]
struct EditPage {
    email: String,
    csrf: String,
    error: Option<String>,
    public: bool,
    require_pkce: bool,
    client_id: String,
    name: String,
    redirect_uris: String,
    scopes: Vec<(&'static str, bool)>,
}

#[derive(Template)]
#[template(path = "app_secret.html")]
struct SecretPage {
    email: String,
    csrf: String,
    name: String,
    client_id: String,
    client_secret: Option<String>,
}

async fn person(state: &AppState, jar: &CookieJar) -> Result<Person, PageError> {
    signed_in(state, jar).await?.ok_or_else(|| PageError::Forbidden("Sign in first.".into()))
}

/// The ids of the accounts this person manages.
async fn managed_accounts(state: &AppState, person: &Person) -> Result<Vec<(i64, String)>, PageError> {
    Ok(state
        .store
        .memberships(person.id)
        .await?
        .into_iter()
        .filter(|m| m.role.manages_account())
        .map(|m| (m.account.id, m.account.name))
        .collect())
}

/// A form post from a signed-in manager with a valid CSRF token.
async fn form(
    state: &AppState,
    jar: &CookieJar,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Person, Params), PageError> {
    let params = checked_form(state, jar, headers, body)?;
    Ok((person(state, jar).await?, params))
}

/// The app `client_id` if this person manages its account; otherwise not found.
async fn managed_app(state: &AppState, person: &Person, client_id: &str) -> Result<App, PageError> {
    let app = state.store.app_by_client_id(client_id).await?.ok_or(PageError::NotFound)?;
    if managed_accounts(state, person).await?.iter().any(|(id, _)| *id == app.account_id) {
        Ok(app)
    } else {
        Err(PageError::NotFound)
    }
}

/// An audit entry for something `person` did to `app`.
fn by(person: &Person, app: &App, ip: Option<IpAddr>) -> Entry {
    Entry::new().account(app.account_id).person(person.id).client(&app.client_id).ip(ip)
}

fn scope_choices(selected: ScopeSet) -> Vec<(&'static str, bool)> {
    Scope::ALL.iter().map(|s| (s.as_str(), selected.contains(*s))).collect()
}

/// The app settings of a form: name, redirect URIs, scopes, and whether PKCE is required.
fn form_fields(params: &Params) -> Result<AppFields, AdminError> {
    let scopes = params.get_all("scopes").collect::<Vec<_>>().join(" ");
    let mut fields = admin::app_fields(params.get("name").unwrap_or(""), params.get_all("redirect_uris"), &scopes)?;
    fields.require_pkce = params.get("require_pkce") == Some("1");
    Ok(fields)
}

async fn settings_page(
    state: &AppState,
    jar: CookieJar,
    person: Person,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, PageError> {
    let mut accounts = Vec::new();
    for (id, name) in managed_accounts(state, &person).await? {
        accounts.push(AccountApps { id, name, apps: state.store.apps(Some(id)).await? });
    }
    let (jar, csrf) = csrf_token(state, jar);
    let page = SettingsPage { email: person.email, csrf, error, accounts, all_scopes: scope_choices(ScopeSet::all()) };
    Ok(render(jar, status, &page))
}

pub async fn list(State(state): State<Shared>, jar: CookieJar) -> Result<Response, PageError> {
    let Some(person) = signed_in(&state, &jar).await? else {
        return Ok(see_other(jar, "/login?next=%2Fsettings%2Fapi"));
    };
    settings_page(&state, jar, person, StatusCode::OK, None).await
}

/// The page after creating an app or a new secret: the secret is shown now, once (public apps have none).
fn secret_page(state: &AppState, jar: CookieJar, person: Person, app: &App, secret: Option<String>) -> Response {
    let (jar, csrf) = csrf_token(state, jar);
    let page = SecretPage {
        email: person.email,
        csrf,
        name: app.name.clone(),
        client_id: app.client_id.clone(),
        client_secret: secret,
    };
    render(jar, StatusCode::OK, &page)
}

pub async fn create(
    State(state): State<Shared>,
    jar: CookieJar,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let (person, params) = form(&state, &jar, &headers, &body).await?;
    let account_id = params.get("account_id").and_then(|a| a.parse::<i64>().ok());
    let managed = managed_accounts(&state, &person).await?;
    let Some(account_id) = account_id.filter(|id| managed.iter().any(|(m, _)| m == id)) else {
        return Err(PageError::Forbidden("You do not manage that account.".into()));
    };
    match form_fields(&params) {
        Ok(fields) if params.get("public") == Some("1") => {
            let app = admin::create_public_app(&state, account_id, &fields).await.map_err(admin_error)?;
            audit::record(&state, Event::AppCreated, by(&person, &app, ip).detail(format!("{} (public)", app.name)))
                .await;
            Ok(secret_page(&state, jar, person, &app, None))
        }
        Ok(fields) => {
            let (app, secret) = admin::create_app(&state, account_id, &fields).await.map_err(admin_error)?;
            audit::record(&state, Event::AppCreated, by(&person, &app, ip).detail(app.name.clone())).await;
            Ok(secret_page(&state, jar, person, &app, Some(secret)))
        }
        Err(AdminError::Invalid(message)) => {
            settings_page(&state, jar, person, StatusCode::BAD_REQUEST, Some(message)).await
        }
        Err(other) => Err(admin_error(other)),
    }
}

fn admin_error(error: AdminError) -> PageError {
    match error {
        AdminError::Invalid(message) => PageError::BadRequest(message),
        AdminError::Storage(error) => error.into(),
        AdminError::Password(error) => {
            tracing::error!(%error, "password hashing failed");
            PageError::Internal
        }
    }
}

fn edit_page(
    state: &AppState,
    jar: CookieJar,
    person: Person,
    app: &App,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let (jar, csrf) = csrf_token(state, jar);
    let page = EditPage {
        email: person.email,
        csrf,
        error,
        public: app.public,
        require_pkce: app.require_pkce,
        client_id: app.client_id.clone(),
        name: app.name.clone(),
        redirect_uris: app.redirect_uris.join("\n"),
        scopes: scope_choices(ScopeSet::parse(&app.scopes).unwrap_or_default()),
    };
    render(jar, status, &page)
}

pub async fn show(
    State(state): State<Shared>,
    jar: CookieJar,
    Path(client_id): Path<String>,
) -> Result<Response, PageError> {
    let person = person(&state, &jar).await?;
    let app = managed_app(&state, &person, &client_id).await?;
    Ok(edit_page(&state, jar, person, &app, StatusCode::OK, None))
}

pub async fn update(
    State(state): State<Shared>,
    jar: CookieJar,
    ClientIp(ip): ClientIp,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let (person, params) = form(&state, &jar, &headers, &body).await?;
    let app = managed_app(&state, &person, &client_id).await?;
    match form_fields(&params) {
        Ok(fields) => {
            state.store.update_app(app.id, &fields, state.now()).await?;
            audit::record(&state, Event::AppChanged, by(&person, &app, ip).detail(audit::app_changes(&app, &fields)))
                .await;
            tracing::info!(client_id = %app.client_id, "app changed");
            Ok(see_other(jar, "/settings/api"))
        }
        Err(AdminError::Invalid(message)) => {
            Ok(edit_page(&state, jar, person, &app, StatusCode::BAD_REQUEST, Some(message)))
        }
        Err(other) => Err(admin_error(other)),
    }
}

pub async fn regenerate(
    State(state): State<Shared>,
    jar: CookieJar,
    ClientIp(ip): ClientIp,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let (person, _) = form(&state, &jar, &headers, &body).await?;
    let app = managed_app(&state, &person, &client_id).await?;
    let secret = admin::regenerate_secret(&state, &app).await.map_err(admin_error)?;
    audit::record(&state, Event::AppSecretRegenerated, by(&person, &app, ip).detail(app.name.clone())).await;
    Ok(secret_page(&state, jar, person, &app, Some(secret)))
}

pub async fn delete(
    State(state): State<Shared>,
    jar: CookieJar,
    ClientIp(ip): ClientIp,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let (person, _) = form(&state, &jar, &headers, &body).await?;
    let app = managed_app(&state, &person, &client_id).await?;
    state.store.delete_app(app.id).await?;
    audit::record(&state, Event::AppDeleted, by(&person, &app, ip).detail(app.name.clone())).await;
    tracing::info!(client_id = %app.client_id, "app deleted");
    Ok(see_other(jar, "/settings/api"))
}
