//! The audit log page: the events of the accounts the signed-in person manages (owners and account admins),
//! newest first, 100 per page.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum_extra::extract::CookieJar;
use wsoauth_domain::dates::format_datetime;
use wsoauth_storage::AuditEvent;

use crate::audit::Event;
use crate::params::Params;
use crate::state::Shared;
use crate::web::{PageError, csrf_token, render, see_other, signed_in};

/// Events per page.
const PAGE: usize = 100;

struct Row {
    id: i64,
    time: String,
    account: String,
    event: String,
    label: String,
    who: String,
    app: String,
    ip: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    email: String,
    csrf: String,
    /// Whether the person manages several accounts (the table then names each row's account).
    several: bool,
    paged: bool,
    rows: Vec<Row>,
    /// The `before` of the next (older) page, if there is one.
    older: Option<i64>,
}

fn row(event: AuditEvent) -> Row {
    let known = Event::parse(&event.event);
    let app = match (event.app_name, event.client_id) {
        (Some(name), Some(client_id)) => format!("{name} ({client_id})"),
        (None, Some(client_id)) => client_id,
        _ => String::new(),
    };
    Row {
        id: event.id,
        time: format_datetime(event.at),
        account: event.account_name.unwrap_or_default(),
        label: known.map(Event::label).unwrap_or(event.event.as_str()).to_owned(),
        event: event.event,
        who: match (event.email, event.user_id) {
            (Some(email), _) => email,
            (None, Some(user_id)) => format!("user {user_id}"),
            (None, None) => String::new(),
        },
        app,
        ip: event.ip.unwrap_or_default(),
        detail: event.detail,
    }
}

pub async fn list(State(state): State<Shared>, jar: CookieJar, uri: Uri) -> Result<Response, PageError> {
    let Some(person) = signed_in(&state, &jar).await? else {
        return Ok(see_other(jar, "/login?next=%2Fsettings%2Faudit"));
    };
    let accounts: Vec<i64> = state
        .store
        .memberships(person.id)
        .await?
        .into_iter()
        .filter(|m| m.role.manages_account())
        .map(|m| m.account.id)
        .collect();
    if accounts.is_empty() {
        return Err(PageError::Forbidden("Only account owners and account admins see the audit log.".into()));
    }
    let params =
        Params::parse(uri.query(), &HeaderMap::new(), b"").map_err(|e| PageError::BadRequest(e.to_string()))?;
    let before = match params.get("before").filter(|b| !b.is_empty()) {
        Some(before) => {
            Some(before.parse::<i64>().map_err(|_| PageError::BadRequest("before must be an event number.".into()))?)
        }
        None => None,
    };
    let mut events = state.store.audit_events(&accounts, before, PAGE as i64 + 1).await?;
    let older = if events.len() > PAGE {
        events.truncate(PAGE);
        events.last().map(|e| e.id)
    } else {
        None
    };
    let (jar, csrf) = csrf_token(&state, jar);
    let page = AuditPage {
        email: person.email,
        csrf,
        several: accounts.len() > 1,
        paged: before.is_some(),
        rows: events.into_iter().map(row).collect(),
        older,
    };
    Ok(render(jar, StatusCode::OK, &page))
}
