//! `/api/oauth2` (and `/api/oauth2/`): the Worksection API for OAuth 2.0 access tokens. One dispatcher reads the
//! parameters once (query, form or JSON body), authenticates the token, checks the action's scope, and wraps the
//! answer in the Worksection envelope.

pub mod comments;
pub mod format;
pub mod intake;
pub mod project_format;
pub mod projects;
pub mod search;
pub mod tags;
pub mod task_format;
pub mod tasks;
pub mod users;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use wsoauth_storage::{Role, StorageError, Viewer};
use wsoauth_types::{ApiError, ApiErrorCode, Scope};

use crate::bearer::{Authenticated, BearerError, authenticate, token_of};
use crate::params::Params;
use crate::state::{AppState, Shared};
use intake::Input;

/// What an action answers on success.
pub enum Reply {
    /// `{"status":"ok","data":...}`
    Data(Value),
    /// The same with `data` already written from a typed answer (no `Value` built and walked).
    Written(Box<RawValue>),
    /// `{"status":"ok"}`
    Done,
}

impl Reply {
    /// `answer` written as the envelope's `data`.
    pub fn written(answer: &impl serde::Serialize) -> Result<Reply, Failure> {
        serde_json::value::to_raw_value(answer).map(Reply::Written).map_err(|error| {
            tracing::error!(%error, "an answer could not be written");
            Failure::Internal
        })
    }
}

/// An action's failure: a Worksection error, answered with HTTP 200 (`Internal` is logged and answered 500).
pub enum Failure {
    Api(ApiError),
    Internal,
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Failure::Api(error)
    }
}

impl From<ApiErrorCode> for Failure {
    fn from(code: ApiErrorCode) -> Self {
        Failure::Api(code.into())
    }
}

impl From<StorageError> for Failure {
    fn from(error: StorageError) -> Self {
        if let StorageError::Unstorable(_) = error {
            return ApiErrorCode::FieldInvalid.into();
        }
        tracing::error!(%error, "storage failure in an API action");
        Failure::Internal
    }
}

/// Who may call an action, on top of its scope (the token's rights are the intersection of both).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Every member, guests and readers included.
    Read,
    /// Members who may change things: not guests, not readers.
    Write,
    /// Owners and account admins.
    Admin,
}

/// An action: its name, the scope it needs and who may call it.
pub type ActionSpec = (&'static str, Scope, Access);

/// Everything an action may use.
pub struct Context<'a> {
    pub state: &'a AppState,
    pub auth: &'a Authenticated,
    pub input: Input<'a>,
    pub params: &'a Params,
}

impl Context<'_> {
    /// The member the token acts for, as every query sees them.
    pub fn viewer(&self) -> Viewer {
        let member = &self.auth.grant.member;
        Viewer { account_id: member.account.id, user_id: member.user_id, admin: member.role.manages_account() }
    }

    pub fn role(&self) -> Role {
        self.auth.grant.member.role
    }

    pub fn now(&self) -> i64 {
        self.state.now()
    }
}

/// The action tables of every domain, searched in order.
const DOMAINS: [&[ActionSpec]; 5] =
    [users::ACTIONS, projects::ACTIONS, tasks::ACTIONS, comments::ACTIONS, tags::ACTIONS];

fn find(action: &str) -> Option<(usize, ActionSpec)> {
    DOMAINS
        .iter()
        .enumerate()
        .find_map(|(domain, table)| table.iter().find(|spec| spec.0 == action).map(|spec| (domain, *spec)))
}

async fn run(domain: usize, action: &str, ctx: &Context<'_>) -> Result<Reply, Failure> {
    match domain {
        0 => users::run(action, ctx).await,
        1 => projects::run(action, ctx).await,
        2 => tasks::run(action, ctx).await,
        3 => comments::run(action, ctx).await,
        _ => tags::run(action, ctx).await,
    }
}

fn permitted(role: Role, access: Access) -> bool {
    match access {
        Access::Read => true,
        Access::Write => !matches!(role, Role::Guest | Role::Reader),
        Access::Admin => role.manages_account(),
    }
}

fn envelope_error(error: ApiError) -> Response {
    (StatusCode::OK, api_headers(), Json(error)).into_response()
}

fn api_headers() -> [(header::HeaderName, HeaderValue); 1] {
    [(header::CACHE_CONTROL, HeaderValue::from_static("no-store, no-cache, must-revalidate"))]
}

/// 401 or 403 in the envelope, with the RFC 6750 challenge and the `errorDescription` the official clients read.
fn auth_failure(
    status: StatusCode,
    error: &str,
    description: &str,
    challenge: String,
    scope: Option<Scope>,
) -> Response {
    let mut body = Map::new();
    body.insert("status".into(), json!("error"));
    body.insert("status_code".into(), json!(status.as_u16()));
    body.insert("message".into(), json!(description));
    body.insert("error".into(), json!(error));
    body.insert("errorDescription".into(), json!(description));
    body.insert("error_description".into(), json!(description));
    if let Some(scope) = scope {
        body.insert("scope".into(), json!(scope.as_str()));
    }
    let mut response = (status, api_headers(), Json(Value::Object(body))).into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

pub async fn dispatch(State(state): State<Shared>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let params = match Params::parse(uri.query(), &headers, &body) {
        Ok(params) => params,
        Err(error) => {
            return envelope_error(ApiError {
                status: "error".into(),
                status_code: ApiErrorCode::FieldInvalid.code(),
                message: "Request is invalid".into(),
                message_details: Some(error.to_string()),
            });
        }
    };
    let auth = match authenticate(&state, token_of(&headers, &params)).await {
        Ok(auth) => auth,
        Err(BearerError::Storage) => {
            let body = json!({"status": "error", "status_code": 500, "message": "Temporary server error"});
            return (StatusCode::SERVICE_UNAVAILABLE, api_headers(), Json(body)).into_response();
        }
        Err(error) => {
            let code = if error == BearerError::Missing { "invalid_request" } else { "invalid_token" };
            return auth_failure(StatusCode::UNAUTHORIZED, code, error.description(), error.challenge(), None);
        }
    };
    let action = params.get("action").map(str::trim).unwrap_or("");
    if action.is_empty() {
        return envelope_error(ApiError::new(ApiErrorCode::ActionRequired, None));
    }
    let Some((domain, (_, scope, access))) = find(action) else {
        return envelope_error(ApiError::new(ApiErrorCode::ActionInvalid, None));
    };
    if !auth.scopes.contains(scope) {
        let description = format!("Access denied: the token lacks the {scope} scope");
        let challenge = format!(r#"Bearer realm="wsoauth", error="insufficient_scope", scope="{scope}""#);
        return auth_failure(StatusCode::FORBIDDEN, "insufficient_scope", &description, challenge, Some(scope));
    }
    let role = auth.grant.member.role;
    if !permitted(role, access) {
        let details = format!("the {} role cannot use {action}", role.display().to_lowercase());
        return envelope_error(ApiError::detailed(ApiErrorCode::AccessDenied, details));
    }
    let ctx = Context { state: &state, auth: &auth, input: Input::new(&params), params: &params };
    match run(domain, action, &ctx).await {
        Ok(Reply::Data(data)) => ok_body(&Envelope { status: "ok", data: Some(&data) }),
        Ok(Reply::Written(data)) => ok_body(&Envelope { status: "ok", data: Some(&*data) }),
        Ok(Reply::Done) => ok_body(&Envelope::<Value> { status: "ok", data: None }),
        Err(Failure::Api(error)) => envelope_error(error),
        Err(Failure::Internal) => {
            let body = json!({"status": "error", "status_code": 500, "message": "Temporary server error"});
            (StatusCode::INTERNAL_SERVER_ERROR, api_headers(), Json(body)).into_response()
        }
    }
}

/// The success envelope, written straight from the action's data: `json!` would copy the whole answer into
/// another `Value` first (3 % of `me`'s CPU, more for long lists).
#[derive(serde::Serialize)]
struct Envelope<'a, T: serde::Serialize + ?Sized> {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a T>,
}

fn ok_body<T: serde::Serialize + ?Sized>(body: &Envelope<'_, T>) -> Response {
    (StatusCode::OK, api_headers(), Json(body)).into_response()
}
