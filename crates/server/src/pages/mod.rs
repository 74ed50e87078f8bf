//! Server-rendered pages: sign-in, home, API settings.

pub mod apps;
pub mod audit;
pub mod connected;
pub mod login;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;

use crate::state::Shared;
use crate::web::{PageError, csrf_token, render, signed_in};

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    email: String,
    csrf: String,
    person_name: String,
    members: Vec<(String, String, &'static str)>,
}

pub async fn home(State(state): State<Shared>, jar: CookieJar) -> Result<Response, PageError> {
    let Some(person) = signed_in(&state, &jar).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let members = state
        .store
        .memberships(person.id)
        .await?
        .into_iter()
        .map(|m| (m.account.name.clone(), state.account_url(&m.account), m.role.display()))
        .collect();
    let (jar, csrf) = csrf_token(&state, jar);
    let name = format!("{} {}", person.first_name, person.last_name).trim().to_owned();
    let page = HomePage {
        person_name: if name.is_empty() { person.email.clone() } else { name },
        email: person.email,
        csrf,
        members,
    };
    Ok(render(jar, StatusCode::OK, &page))
}
