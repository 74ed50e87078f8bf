//! Sign-in and sign-out.

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use axum_extra::extract::CookieJar;

use crate::audit::{self, Entry, Event};
use crate::limits::ClientIp;
use crate::params::Params;
use crate::state::{AppState, Shared};
use crate::web::{
    PageError, checked_form, csrf_ok, csrf_token, end_session, render, safe_next, see_other, signed_in, start_session,
};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    next: String,
    email: String,
    error: Option<String>,
}

fn form(
    state: &AppState,
    jar: CookieJar,
    status: StatusCode,
    next: String,
    email: String,
    error: Option<String>,
) -> Response {
    let (jar, csrf) = csrf_token(state, jar);
    render(jar, status, &LoginPage { csrf, next, email, error })
}

pub async fn show(State(state): State<Shared>, jar: CookieJar, uri: Uri) -> Result<Response, PageError> {
    let params =
        Params::parse(uri.query(), &HeaderMap::new(), b"").map_err(|e| PageError::BadRequest(e.to_string()))?;
    let next = safe_next(params.get("next"));
    if signed_in(&state, &jar).await?.is_some() {
        return Ok(see_other(jar, &next));
    }
    Ok(form(&state, jar, StatusCode::OK, next, String::new(), None))
}

pub async fn submit(
    State(state): State<Shared>,
    jar: CookieJar,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let params = Params::parse(None, &headers, &body).map_err(|e| PageError::BadRequest(e.to_string()))?;
    let next = safe_next(params.get("next"));
    let email = params.get("email").unwrap_or("").trim().to_owned();
    if !csrf_ok(&state, &jar, params.get("csrf_token")) {
        let error = Some("The form expired. Please sign in again.".to_owned());
        return Ok(form(&state, jar, StatusCode::FORBIDDEN, next, email, error));
    }
    // Failures count per email and per client IP; over either limit even the right password is refused.
    let attempt = match state.limits.login(&email, ip, state.now()) {
        Ok(attempt) => attempt,
        Err(blocked) => {
            tracing::info!(retry_after = blocked.retry_after, "sign-in refused: too many failed attempts");
            crate::observe::sign_in("blocked");
            let error = format!("Too many failed sign-in attempts. Please try again in {}.", blocked.wait_text());
            let mut page = form(&state, jar, StatusCode::TOO_MANY_REQUESTS, next, email, Some(error));
            page.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(blocked.retry_after));
            return Ok(page);
        }
    };
    let password = params.get("password").unwrap_or("").to_owned();
    let person = if email.len() <= 320 { state.store.person_by_email(&email).await? } else { None };
    let hash = person.as_ref().and_then(|p| p.password_hash.clone());
    let ok = password.len() <= 1024 && state.passwords.verify(password, hash).await;
    let target = person.as_ref().map(|p| p.id);
    match person.filter(|_| ok) {
        Some(person) => {
            tracing::info!(person = person.id, "signed in");
            crate::observe::sign_in("ok");
            audit::record_for_accounts_of(&state, Event::SignIn, target, Entry::new().person(person.id).ip(ip)).await;
            attempt.succeeded();
            let jar = start_session(&state, jar, &person).await?;
            Ok(see_other(jar, &next))
        }
        None => {
            tracing::info!("sign-in failed");
            crate::observe::sign_in("failed");
            let tried = Entry::new().ip(ip).detail(audit::email_tried(&email));
            audit::record_for_accounts_of(&state, Event::SignInFailed, target, tried).await;
            let error = Some("Wrong email or password.".to_owned());
            Ok(form(&state, jar, StatusCode::UNAUTHORIZED, next, email, error))
        }
    }
}

pub async fn logout(
    State(state): State<Shared>,
    jar: CookieJar,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    checked_form(&state, &jar, &headers, &body)?;
    if let Some(person) = signed_in(&state, &jar).await? {
        let entry = Entry::new().person(person.id).ip(ip);
        audit::record_for_accounts_of(&state, Event::SignOut, Some(person.id), entry).await;
    }
    let jar = end_session(&state, jar).await?;
    Ok(see_other(jar, "/login"))
}
