//! `/api/oauth2` (and `/api/oauth2/`): the Worksection API for OAuth 2.0 access tokens. One dispatcher reads the
//! parameters once (query, form or JSON body), authenticates the token, checks the action's scope, and wraps the
//! answer in the Worksection envelope.

mod users;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use wsoauth_types::{ApiError, ApiErrorCode, Scope};

use crate::bearer::{Authenticated, BearerError, authenticate, token_of};
use crate::params::Params;
use crate::state::{AppState, Shared};

/// What an action answers on success.
pub enum Reply {
    /// `{"status":"ok","data":...}`
    Data(Value),
}

/// An action's failure, answered as `{"status":"error","status_code":N,"message":...}` with HTTP 200.
pub struct Failure(ApiError);

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Failure(error)
    }
}

/// Everything an action may use.
pub struct Context<'a> {
    pub state: &'a AppState,
    pub auth: &'a Authenticated,
    pub params: &'a Params,
}

/// The scope each action needs; `None` for an action that does not exist.
fn required_scope(action: &str) -> Option<Scope> {
    Some(match action {
        "me" => Scope::UsersRead,
        _ => return None,
    })
}

async fn run(action: &str, ctx: &Context<'_>) -> Result<Reply, Failure> {
    match action {
        "me" => users::me(ctx).await,
        _ => Err(ApiError::new(ApiErrorCode::ActionInvalid, None).into()),
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
                status_code: Some(ApiErrorCode::FieldRequired.code()),
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
    let Some(scope) = required_scope(action) else {
        return envelope_error(ApiError::new(ApiErrorCode::ActionInvalid, None));
    };
    if !auth.scopes.contains(scope) {
        let description = format!("Access denied: the token lacks the {scope} scope");
        let challenge = format!(r#"Bearer realm="wsoauth", error="insufficient_scope", scope="{scope}""#);
        return auth_failure(StatusCode::FORBIDDEN, "insufficient_scope", &description, challenge, Some(scope));
    }
    let ctx = Context { state: &state, auth: &auth, params: &params };
    match run(action, &ctx).await {
        Ok(Reply::Data(data)) => {
            (StatusCode::OK, api_headers(), Json(json!({"status": "ok", "data": data}))).into_response()
        }
        Err(Failure(error)) => envelope_error(error),
    }
}
