//! The Worksection API error envelope: `{"status":"error","status_code":N,"message":"...","message_details":"..."}`.

use serde::{Deserialize, Serialize};

/// Worksection API error codes (spec §4.3) with their messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiErrorCode {
    ActionInvalid,
    ActionRequired,
    FieldRequired,
}

impl ApiErrorCode {
    pub fn code(self) -> u32 {
        match self {
            ApiErrorCode::ActionInvalid => 0,
            ApiErrorCode::ActionRequired => 1,
            ApiErrorCode::FieldRequired => 10,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            ApiErrorCode::ActionInvalid => "Action is invalid",
            ApiErrorCode::ActionRequired => "Action is required",
            ApiErrorCode::FieldRequired => "Field is required",
        }
    }
}

/// An API error body as the envelope carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u32>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_details: Option<String>,
}

impl ApiError {
    pub fn new(code: ApiErrorCode, details: Option<String>) -> Self {
        ApiError {
            status: "error".into(),
            status_code: Some(code.code()),
            message: code.message().into(),
            message_details: details,
        }
    }
}
