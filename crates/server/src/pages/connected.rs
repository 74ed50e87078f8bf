//! The apps a person has authorized ("Connected apps"), each with a button that ends its access at once.

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum_extra::extract::CookieJar;
use wsoauth_domain::dates::format_datetime;
use wsoauth_storage::Person;
use wsoauth_types::ScopeSet;

use crate::audit::{self, Entry, Event};
use crate::limits::ClientIp;
use crate::state::{AppState, Shared};
use crate::web::{PageError, checked_form, csrf_token, render, see_other, signed_in};

struct Row {
    user_id: i64,
    app_id: i64,
    app_name: String,
    account_name: String,
    scopes: Vec<(&'static str, &'static str)>,
    since: String,
}

#[derive(Template)]
#[template(path = "connected.html")]
struct ConnectedPage {
    email: String,
    csrf: String,
    notice: Option<String>,
    connections: Vec<Row>,
}

async fn page(state: &AppState, jar: CookieJar, person: Person, notice: Option<String>) -> Result<Response, PageError> {
    let connections = state
        .store
        .connections(person.id)
        .await?
        .into_iter()
        .map(|c| Row {
            user_id: c.user_id,
            app_id: c.app_id,
            app_name: c.app_name,
            account_name: c.account_name,
            scopes: ScopeSet::parse(&c.scopes)
                .unwrap_or_default()
                .iter()
                .map(|s| (s.as_str(), s.description()))
                .collect(),
            since: format_datetime(c.granted_at),
        })
        .collect();
    let (jar, csrf) = csrf_token(state, jar);
    Ok(render(jar, StatusCode::OK, &ConnectedPage { email: person.email, csrf, notice, connections }))
}

pub async fn list(State(state): State<Shared>, jar: CookieJar) -> Result<Response, PageError> {
    let Some(person) = signed_in(&state, &jar).await? else {
        return Ok(see_other(jar, "/login?next=%2Fsettings%2Fconnected"));
    };
    page(&state, jar, person, None).await
}

/// Forgets the consent and revokes every grant of that app for that membership of the signed-in person.
pub async fn disconnect(
    State(state): State<Shared>,
    jar: CookieJar,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let params = checked_form(&state, &jar, &headers, &body)?;
    let person = signed_in(&state, &jar).await?.ok_or_else(|| PageError::Forbidden("Sign in first.".into()))?;
    let id = |key: &str| params.get(key).and_then(|v| v.parse::<i64>().ok());
    let (Some(user_id), Some(app_id)) = (id("user"), id("app")) else {
        return Err(PageError::BadRequest("Which app should be disconnected?".into()));
    };
    let connection = state
        .store
        .connections(person.id)
        .await?
        .into_iter()
        .find(|c| c.user_id == user_id && c.app_id == app_id)
        .ok_or(PageError::NotFound)?;
    let revoked = state.store.disconnect(user_id, app_id, state.now()).await?;
    tracing::info!(client_id = %connection.client_id, user = user_id, grants = revoked, "app disconnected");
    let detail = format!("disconnected on the Connected apps page ({revoked} grants ended)");
    let entry = Entry::new().user(user_id).person(person.id).client(&connection.client_id).ip(ip).detail(detail);
    audit::record(&state, Event::TokenRevoked, entry).await;
    let notice = format!("{} is disconnected: its access ended.", connection.app_name);
    page(&state, jar, person, Some(notice)).await
}
