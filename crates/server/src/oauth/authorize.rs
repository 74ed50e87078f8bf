//! `/oauth2/authorize`: sign-in (redirect to the login page), account choice, consent, then a redirect to the
//! app with `code` and `state`. Errors follow RFC 6749 §4.1.2.1: an unknown client or an unregistered redirect URI
//! is shown to the person and never redirected; anything else goes back to the app with `error`.

use std::net::IpAddr;

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use wsoauth_domain::append_query;
use wsoauth_storage::{App, Member, NewCode, Person};
use wsoauth_types::{OAuthError, ScopeSet};

use crate::audit::{self, Entry, Event};
use crate::limits::ClientIp;
use crate::params::{ParamError, Params};
use crate::state::{AppState, Shared};
use crate::web::{PageError, csrf_ok, csrf_token, render, signed_in};

/// The authorization parameters carried from page to page.
const CARRIED: [&str; 8] = [
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "prompt",
];

/// A request that names a known app and one of its redirect URIs: from here on, errors are redirected.
struct Validated {
    app: App,
    redirect_uri: String,
    state: Option<String>,
}

/// A request fit for consent.
struct AuthRequest {
    app: App,
    redirect_uri: String,
    state: Option<String>,
    scopes: ScopeSet,
    /// The PKCE S256 challenge, if given.
    code_challenge: Option<String>,
}

enum Refusal {
    /// Shown as a page.
    Page(PageError),
    /// Sent back to the app.
    Redirect { to: Validated, error: OAuthError, description: String },
}

impl From<PageError> for Refusal {
    fn from(error: PageError) -> Self {
        Refusal::Page(error)
    }
}

impl From<wsoauth_storage::StorageError> for Refusal {
    fn from(error: wsoauth_storage::StorageError) -> Self {
        Refusal::Page(error.into())
    }
}

impl Refusal {
    /// The response; `issuer` is sent as `iss` on redirects (RFC 9207, mix-up defence).
    fn into_response(self, issuer: &str) -> Response {
        match self {
            Refusal::Page(error) => error.into_response(),
            Refusal::Redirect { to, error, description } => {
                let mut params = vec![("error", error.as_str()), ("error_description", description.as_str())];
                if let Some(state) = &to.state {
                    params.push(("state", state));
                }
                params.push(("iss", issuer));
                Redirect::to(&append_query(&to.redirect_uri, &params)).into_response()
            }
        }
    }
}

fn page_param(result: Result<Option<&str>, ParamError>) -> Result<Option<&str>, PageError> {
    result.map_err(|error| PageError::BadRequest(error.to_string()))
}

/// Client and redirect URI: failures here are never redirected.
async fn identify(state: &AppState, params: &Params) -> Result<Validated, Refusal> {
    let client_id = page_param(params.non_empty("client_id"))?.ok_or_else(|| {
        PageError::BadRequest("The request does not name an application (client_id is missing).".into())
    })?;
    let app = state
        .store
        .app_by_client_id(client_id)
        .await?
        .ok_or_else(|| PageError::BadRequest("The application is not registered (unknown client_id).".into()))?;
    let redirect_uri = page_param(params.non_empty("redirect_uri"))?
        .ok_or_else(|| PageError::BadRequest("The request has no redirect_uri.".into()))?;
    if !app.redirect_uris.iter().any(|registered| registered == redirect_uri) {
        return Err(PageError::BadRequest(
            "The redirect_uri is not registered for this application. Nothing was sent to it.".into(),
        )
        .into());
    }
    let redirect_uri = redirect_uri.to_owned();
    let to_state = params.get("state").filter(|s| !s.is_empty()).map(str::to_owned);
    Ok(Validated { app, redirect_uri, state: to_state })
}

/// The whole request, checked as RFC 6749 §4.1.1 asks.
async fn validate(state: &AppState, params: &Params) -> Result<AuthRequest, Refusal> {
    let to = identify(state, params).await?;
    let redirect = |to: Validated, error: OAuthError, description: String| Refusal::Redirect { to, error, description };
    for key in CARRIED {
        if let Err(error) = params.single(key) {
            return Err(redirect(to, OAuthError::InvalidRequest, error.to_string()));
        }
    }
    match params.get("response_type") {
        Some("code") => {}
        None | Some("") => return Err(redirect(to, OAuthError::InvalidRequest, "response_type is required".into())),
        Some(other) => {
            let description = format!("response_type {other:?} is not supported; use code");
            return Err(redirect(to, OAuthError::UnsupportedResponseType, description));
        }
    }
    let code_challenge = match pkce(&to.app, params) {
        Ok(challenge) => challenge,
        Err(description) => return Err(redirect(to, OAuthError::InvalidRequest, description.into())),
    };
    let allowed = ScopeSet::parse(&to.app.scopes).unwrap_or_default();
    let scopes = match params.get("scope").map(ScopeSet::parse) {
        None => allowed,
        Some(Ok(requested)) if requested.is_empty() => allowed,
        Some(Ok(requested)) if requested.is_subset_of(allowed) => requested,
        Some(Ok(requested)) => {
            let extra: Vec<&str> = requested.iter().filter(|s| !allowed.contains(*s)).map(|s| s.as_str()).collect();
            let description = format!("The application may not ask for: {}", extra.join(", "));
            return Err(redirect(to, OAuthError::InvalidScope, description));
        }
        Some(Err(unknown)) => {
            return Err(redirect(to, OAuthError::InvalidScope, format!("Unknown scope {:?}", unknown.0)));
        }
    };
    Ok(AuthRequest { app: to.app, redirect_uri: to.redirect_uri, state: to.state, scopes, code_challenge })
}

/// PKCE (RFC 7636), S256 only: optional for confidential apps, required for public ones and for apps set to
/// require it. `plain` is refused: it protects nothing once the request leaks.
fn pkce(app: &App, params: &Params) -> Result<Option<String>, &'static str> {
    let challenge = params.get("code_challenge").filter(|c| !c.is_empty());
    let method = params.get("code_challenge_method").filter(|m| !m.is_empty());
    match (challenge, method) {
        (None, None) if app.public || app.require_pkce => {
            Err("This application must use PKCE: send code_challenge with code_challenge_method=S256")
        }
        (None, None) => Ok(None),
        (None, Some(_)) => Err("code_challenge_method was sent without code_challenge"),
        (Some(_), None) | (Some(_), Some("plain")) => {
            Err("code_challenge_method must be S256 (plain is not supported)")
        }
        (Some(challenge), Some("S256")) if wsoauth_domain::pkce::well_formed(challenge) => {
            Ok(Some(challenge.to_owned()))
        }
        (Some(_), Some("S256")) => Err("code_challenge must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~"),
        (Some(_), Some(_)) => Err("code_challenge_method must be S256"),
    }
}

#[derive(Template)]
#[template(path = "select.html")]
struct SelectPage {
    email: String,
    csrf: String,
    app_name: String,
    choices: Vec<Choice>,
}

struct Choice {
    user_id: i64,
    account_name: String,
    role: &'static str,
    href: String,
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage {
    email: String,
    csrf: String,
    app_name: String,
    account_name: String,
    person_name: String,
    scopes: Vec<(&'static str, &'static str)>,
    redirect_host: String,
    hidden: Vec<(String, String)>,
}

/// The query string of the authorization parameters (and optionally the chosen user).
fn carried_query(params: &Params, user: Option<i64>) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for key in CARRIED {
        if let Some(value) = params.get(key) {
            query.append_pair(key, value);
        }
    }
    if let Some(user) = user {
        query.append_pair("user", &user.to_string());
    }
    query.finish()
}

/// GET: validate, make sure someone is signed in, pick the account, ask for consent.
pub async fn show(State(state): State<Shared>, jar: CookieJar, uri: Uri) -> Response {
    let params = match Params::parse(uri.query(), &HeaderMap::new(), b"") {
        Ok(params) => params,
        Err(error) => return PageError::BadRequest(error.to_string()).into_response(),
    };
    match show_inner(&state, jar, &params).await {
        Ok(response) => response,
        Err(refusal) => refusal.into_response(&state.public_url),
    }
}

async fn show_inner(state: &AppState, jar: CookieJar, params: &Params) -> Result<Response, Refusal> {
    let request = validate(state, params).await?;
    let Some(person) = signed_in(state, &jar).await? else {
        let back = format!("/oauth2/authorize?{}", carried_query(params, None));
        let login =
            format!("/login?{}", form_urlencoded::Serializer::new(String::new()).append_pair("next", &back).finish());
        return Ok(Redirect::to(&login).into_response());
    };
    let members = state.store.memberships(person.id).await?;
    let chosen = params.get("user").and_then(|u| u.parse::<i64>().ok());
    let member = match (members.len(), chosen) {
        (0, _) => {
            return Err(PageError::Forbidden(
                "You are not a member of any account, so there is nothing to share.".into(),
            )
            .into());
        }
        (1, _) => members[0].clone(),
        (_, Some(user)) => members
            .iter()
            .find(|m| m.user_id == user)
            .cloned()
            .ok_or_else(|| PageError::BadRequest("That account is not one of yours.".into()))?,
        (_, None) => {
            let (jar, csrf) = csrf_token(state, jar);
            let choices = members
                .iter()
                .map(|m| Choice {
                    user_id: m.user_id,
                    account_name: m.account.name.clone(),
                    role: m.role.display(),
                    href: format!("/oauth2/authorize?{}", carried_query(params, Some(m.user_id))),
                })
                .collect();
            let page = SelectPage { email: person.email.clone(), csrf, app_name: request.app.name.clone(), choices };
            return Ok(render(jar, StatusCode::OK, &page));
        }
    };
    // Remembered consent: approved before for these scopes (or more) — no need to ask again, unless the app
    // asks for the question with prompt=consent.
    let approved = state.store.consent(member.user_id, request.app.id).await?;
    let remembered = approved.as_deref().and_then(|scopes| ScopeSet::parse(scopes).ok());
    if remembered.is_some_and(|approved| request.scopes.is_subset_of(approved))
        && params.get("prompt") != Some("consent")
    {
        tracing::info!(client_id = %request.app.client_id, user = member.user_id, "consent remembered");
        return issue_code(state, request, &member).await;
    }
    let (jar, csrf) = csrf_token(state, jar);
    Ok(render(jar, StatusCode::OK, &consent_page(&person, &member, &request, params, csrf)))
}

fn consent_page(person: &Person, member: &Member, request: &AuthRequest, params: &Params, csrf: String) -> ConsentPage {
    let mut hidden: Vec<(String, String)> =
        CARRIED.iter().filter_map(|key| params.get(key).map(|value| ((*key).to_owned(), value.to_owned()))).collect();
    hidden.push(("user".into(), member.user_id.to_string()));
    let redirect_host = request
        .redirect_uri
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?']).next().unwrap_or(rest).to_owned())
        .unwrap_or_default();
    let person_name = format!("{} {}", person.first_name, person.last_name).trim().to_owned();
    ConsentPage {
        email: person.email.clone(),
        csrf,
        app_name: request.app.name.clone(),
        account_name: member.account.name.clone(),
        person_name: if person_name.is_empty() { person.email.clone() } else { person_name },
        scopes: request.scopes.iter().map(|s| (s.as_str(), s.description())).collect(),
        redirect_host,
        hidden,
    }
}

/// POST: the consent form. Allow issues a code; Deny sends `access_denied`.
pub async fn decide(
    State(state): State<Shared>,
    jar: CookieJar,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match decide_inner(&state, jar, &headers, &body, ip).await {
        Ok(response) => response,
        Err(refusal) => refusal.into_response(&state.public_url),
    }
}

async fn decide_inner(
    state: &AppState,
    jar: CookieJar,
    headers: &HeaderMap,
    body: &[u8],
    ip: Option<IpAddr>,
) -> Result<Response, Refusal> {
    let params = Params::parse(None, headers, body).map_err(|e| PageError::BadRequest(e.to_string()))?;
    if !csrf_ok(state, &jar, params.get("csrf_token")) {
        return Err(
            PageError::Forbidden("The form has expired. Go back to the application and start again.".into()).into()
        );
    }
    let request = validate(state, &params).await?;
    let person = signed_in(state, &jar).await?.ok_or_else(|| {
        PageError::Forbidden("You are signed out. Go back to the application and start again.".into())
    })?;
    let user_id = params.get("user").and_then(|u| u.parse::<i64>().ok());
    let member = match user_id {
        Some(user_id) => state.store.member(user_id).await?.filter(|m| m.person.id == person.id),
        None => None,
    }
    .ok_or_else(|| PageError::BadRequest("That account is not one of yours.".into()))?;
    if params.get("decision") != Some("allow") {
        tracing::info!(client_id = %request.app.client_id, user = member.user_id, "consent denied");
        let asked = format!("scopes asked: {}", request.scopes.to_space_separated());
        let entry = Entry::new().user(member.user_id).person(person.id).client(&request.app.client_id).ip(ip);
        let entry = entry.detail(asked);
        audit::record(state, Event::ConsentDenied, entry).await;
        let to = Validated { app: request.app, redirect_uri: request.redirect_uri, state: request.state };
        return Err(Refusal::Redirect {
            to,
            error: OAuthError::AccessDenied,
            description: "The user denied access".into(),
        });
    }
    // Remember the approval, widened by whatever was approved before.
    let earlier = state.store.consent(member.user_id, request.app.id).await?;
    let mut approved = earlier.as_deref().and_then(|scopes| ScopeSet::parse(scopes).ok()).unwrap_or_default();
    request.scopes.iter().for_each(|scope| approved.insert(scope));
    state.store.save_consent(member.user_id, request.app.id, &approved.to_space_separated(), state.now()).await?;
    tracing::info!(client_id = %request.app.client_id, user = member.user_id, "consent given");
    let given = format!("scopes: {}", request.scopes.to_space_separated());
    let entry = Entry::new().user(member.user_id).person(person.id).client(&request.app.client_id).ip(ip);
    let entry = entry.detail(given);
    audit::record(state, Event::ConsentGiven, entry).await;
    issue_code(state, request, &member).await
}

/// Issues a code for an approved request and sends the person back to the app with it.
async fn issue_code(state: &AppState, request: AuthRequest, member: &Member) -> Result<Response, Refusal> {
    let now = state.now();
    let code = state.new_stamped(now);
    state
        .store
        .insert_code(&NewCode {
            digest: state.code_key(&code),
            app_id: request.app.id,
            user_id: member.user_id,
            redirect_uri: request.redirect_uri.clone(),
            scopes: request.scopes.to_space_separated(),
            code_challenge: request.code_challenge.clone(),
            now,
            expires_at: now + state.settings.code_ttl,
        })
        .await?;
    tracing::info!(client_id = %request.app.client_id, user = member.user_id, "code issued");
    let mut query = vec![("code", code.as_str())];
    if let Some(s) = &request.state {
        query.push(("state", s));
    }
    query.push(("iss", &state.public_url));
    Ok(Redirect::to(&append_query(&request.redirect_uri, &query)).into_response())
}
