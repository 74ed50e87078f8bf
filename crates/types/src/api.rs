//! The Worksection API error envelope: `{"status":"error","status_code":N,"message":"...","message_details":"..."}`.

use serde::{Deserialize, Serialize};

/// Worksection API errors (spec §4.3): codes are reused by category, each variant carries its own message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiErrorCode {
    ActionInvalid,
    ActionRequired,
    PageInvalid,
    ProjectInvalid,
    TaskInvalid,
    TaskClosed,
    FieldRequired,
    AtLeastOneRequired,
    InvalidEmail,
    FieldInvalid,
    OptionsConflict,
    ProjectAlreadyClosed,
    ProjectAlreadyActive,
    TaskAlreadyClosed,
    TaskAlreadyActive,
    TaskHasChildren,
    ParentTaskDone,
    TagInvalid,
    AccessDenied,
    TooManyTasks,
}

impl ApiErrorCode {
    /// The `status_code`; `None` where Worksection sends none.
    pub fn code(self) -> Option<u32> {
        use ApiErrorCode::*;
        Some(match self {
            ActionInvalid => 0,
            ActionRequired => 1,
            PageInvalid => 3,
            ProjectInvalid => 4,
            TaskInvalid => 5,
            TaskClosed => 8,
            FieldRequired | AtLeastOneRequired => 10,
            InvalidEmail | FieldInvalid | OptionsConflict => 11,
            ProjectAlreadyClosed | ProjectAlreadyActive | TaskAlreadyClosed | TaskAlreadyActive => 12,
            TaskHasChildren => 13,
            ParentTaskDone => 14,
            TagInvalid => 16,
            AccessDenied => 20,
            TooManyTasks => return None,
        })
    }

    pub fn message(self) -> &'static str {
        use ApiErrorCode::*;
        match self {
            ActionInvalid => "Action is invalid",
            ActionRequired => "Action is required",
            PageInvalid => "Page is invalid",
            ProjectInvalid => "Project is invalid",
            TaskInvalid => "Task is invalid",
            TaskClosed => "Task is closed",
            FieldRequired => "Field is required",
            AtLeastOneRequired => "At least one of fields required",
            InvalidEmail => "Invalid email",
            FieldInvalid => "Field is invalid",
            OptionsConflict => {
                "Only one parameter (options.time_require or options.time_today or options.timer_only) can be set as 1."
            }
            ProjectAlreadyClosed => "Project is already closed",
            ProjectAlreadyActive => "Project is already active",
            TaskAlreadyClosed => "Task is already closed",
            TaskAlreadyActive => "Task is already active",
            TaskHasChildren => "Task has children",
            ParentTaskDone => "Parent task is done",
            TagInvalid => "Tag is invalid",
            AccessDenied => "Access denied",
            TooManyTasks => "Too many tasks (10000 max)",
        }
    }
}

/// An API error body as the envelope carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u32>,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_details: Option<String>,
}

impl ApiError {
    pub fn new(code: ApiErrorCode, details: Option<String>) -> Self {
        ApiError {
            status: "error".into(),
            status_code: code.code(),
            message: code.message().into(),
            message_details: details,
        }
    }

    /// The error with `message_details` set.
    pub fn detailed(code: ApiErrorCode, details: impl Into<String>) -> Self {
        Self::new(code, Some(details.into()))
    }
}

impl From<ApiErrorCode> for ApiError {
    fn from(code: ApiErrorCode) -> Self {
        ApiError::new(code, None)
    }
}
