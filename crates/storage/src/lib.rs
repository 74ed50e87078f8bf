//! Persistence for wsoauth. `Store` is the one repository the server talks to; it owns a typed SQLite pool
//! (PostgreSQL joins as a second typed pool, never `sqlx::Any`). Every single-use secret is consumed by one
//! conditional write whose affected-row count decides the winner.

mod error;
mod migrate;
mod model;
mod sqlite;

pub use error::{ExchangeError, RefreshError, StorageError};
pub use model::*;
pub use sqlite::Store;
pub use sqlite::audit::{AuditEvent, NewAuditEvent};
pub use sqlite::comments::{CommentRow, CommentTask};
pub use sqlite::consents::Connection;
pub use sqlite::projects::{NewProject, PROJECT_OPTIONS, ProjectChanges, ProjectRow, UserBrief, project_option_bit};
pub use sqlite::tags::{TagGroupRow, TagRow, TagScope};
pub use sqlite::tasks::{
    CreateTaskError, NewTask, SetExecutive, TaskBrief, TaskChanges, TaskExecutive, TaskLink, TaskQuery, TaskRow,
    TaskStateError,
};
pub use sqlite::teams::{FolderRow, NewMember, TeamRow};
