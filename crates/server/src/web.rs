//! Page plumbing: the sign-in session cookie, CSRF tokens (double submit: a random HttpOnly cookie echoed in
//! every form), rendering, and the HTML error family.

use askama::Template;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::{Cookie, SameSite};
use wsoauth_domain::constant_time_eq;
use wsoauth_storage::Person;

use crate::params::Params;
use crate::state::{AppState, purpose};

fn cookie_name(state: &AppState, base: &'static str) -> &'static str {
    match (state.secure_cookies, base) {
        (true, "session") => "__Host-wsoauth_session",
        (true, _) => "__Host-wsoauth_csrf",
        (false, "session") => "wsoauth_session",
        (false, _) => "wsoauth_csrf",
    }
}

fn cookie(state: &AppState, name: &'static str, value: String, max_age: Option<i64>) -> Cookie<'static> {
    let mut cookie =
        Cookie::build((name, value)).path("/").http_only(true).secure(state.secure_cookies).same_site(SameSite::Lax);
    if let Some(seconds) = max_age {
        cookie = cookie.max_age(time_seconds(seconds));
    }
    cookie.build()
}

fn time_seconds(seconds: i64) -> time::Duration {
    time::Duration::seconds(seconds)
}

/// The person signed in through the session cookie, if any.
pub async fn signed_in(state: &AppState, jar: &CookieJar) -> Result<Option<Person>, PageError> {
    let Some(cookie) = jar.get(cookie_name(state, "session")) else {
        return Ok(None);
    };
    let digest = state.digest(purpose::SESSION, cookie.value());
    Ok(state.store.session_person(&digest, state.now(), state.settings.session_idle).await?)
}

/// Starts a session for `person`: a new id every time (no fixation), stored only as a digest.
pub async fn start_session(state: &AppState, jar: CookieJar, person: &Person) -> Result<CookieJar, PageError> {
    let id = state.new_secret();
    let now = state.now();
    let digest = state.digest(purpose::SESSION, &id);
    state.store.create_session(&digest, person.id, now, now + state.settings.session_ttl).await?;
    let jar = end_session_cookie(state, jar).await?;
    Ok(jar.add(cookie(state, cookie_name(state, "session"), id, Some(state.settings.session_ttl))))
}

async fn end_session_cookie(state: &AppState, jar: CookieJar) -> Result<CookieJar, PageError> {
    if let Some(old) = jar.get(cookie_name(state, "session")) {
        state.store.delete_session(&state.digest(purpose::SESSION, old.value())).await?;
    }
    Ok(jar)
}

/// Ends the session on the server and in the browser.
pub async fn end_session(state: &AppState, jar: CookieJar) -> Result<CookieJar, PageError> {
    let jar = end_session_cookie(state, jar).await?;
    // The removal needs the cookie's attributes: a browser replaces a `__Host-` cookie only with `Secure`.
    Ok(jar.remove(cookie(state, cookie_name(state, "session"), String::new(), None)))
}

/// The CSRF token for forms on this page, setting the cookie if the browser has none yet.
pub fn csrf_token(state: &AppState, jar: CookieJar) -> (CookieJar, String) {
    if let Some(existing) = jar.get(cookie_name(state, "csrf"))
        && existing.value().len() >= 32
    {
        let value = existing.value().to_owned();
        return (jar, value);
    }
    let token = state.new_secret();
    let jar = jar.add(cookie(state, cookie_name(state, "csrf"), token.clone(), None));
    (jar, token)
}

/// The fields of a submitted form, once its CSRF token has been checked against this browser's.
pub fn checked_form(state: &AppState, jar: &CookieJar, headers: &HeaderMap, body: &[u8]) -> Result<Params, PageError> {
    let params = Params::parse(None, headers, body).map_err(|e| PageError::BadRequest(e.to_string()))?;
    if !csrf_ok(state, jar, params.get("csrf_token")) {
        return Err(PageError::Forbidden("The form expired. Reload the page and try again.".into()));
    }
    Ok(params)
}

/// Whether a submitted form carries the CSRF token of this browser.
pub fn csrf_ok(state: &AppState, jar: &CookieJar, submitted: Option<&str>) -> bool {
    match (jar.get(cookie_name(state, "csrf")), submitted) {
        (Some(cookie), Some(submitted)) => {
            cookie.value().len() >= 32 && constant_time_eq(cookie.value().as_bytes(), submitted.as_bytes())
        }
        _ => false,
    }
}

/// Renders a template as a page with the cookies of `jar`.
pub fn render(jar: CookieJar, status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (status, jar, html_headers(), html).into_response(),
        Err(error) => {
            tracing::error!(%error, "template rendering failed");
            PageError::Internal.into_response()
        }
    }
}

fn html_headers() -> [(header::HeaderName, HeaderValue); 1] {
    [(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"))]
}

/// A 303 redirect (after a form) with cookies.
pub fn see_other(jar: CookieJar, to: &str) -> Response {
    (jar, Redirect::to(to)).into_response()
}

/// A path to return to after signing in: only local paths, never `//host` or `/\host`. Control characters are
/// dropped before the check, so `/\t/host` cannot turn into `//host` after it.
pub fn safe_next(next: Option<&str>) -> String {
    let path: String = next.unwrap_or("").chars().filter(|c| !c.is_control()).collect();
    if path.starts_with('/') && !path.starts_with("//") && !path.starts_with("/\\") { path } else { "/".into() }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

/// Errors shown to a person as a page (never redirected).
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error("internal error")]
    Internal,
}

impl From<wsoauth_storage::StorageError> for PageError {
    fn from(error: wsoauth_storage::StorageError) -> Self {
        if let wsoauth_storage::StorageError::Unstorable(_) = error {
            return PageError::BadRequest("The request contains characters that cannot be stored.".into());
        }
        tracing::error!(%error, "storage failure on a page");
        PageError::Internal
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, message) = match &self {
            PageError::BadRequest(message) => {
                (StatusCode::BAD_REQUEST, "The request cannot be completed", message.as_str())
            }
            PageError::Forbidden(message) => (StatusCode::FORBIDDEN, "Not allowed", message.as_str()),
            PageError::NotFound => (StatusCode::NOT_FOUND, "Not found", "There is nothing at this address."),
            PageError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The server could not complete the request. Please try again.",
            ),
        };
        let page = ErrorPage { title, message };
        match page.render() {
            Ok(html) => (status, html_headers(), html).into_response(),
            Err(_) => (status, message.to_owned()).into_response(),
        }
    }
}
