//! Persistence for wsoauth. `Store` is the one repository the server talks to; it owns a typed SQLite pool or a
//! typed PostgreSQL pool (never `sqlx::Any`), and every query is written once for both (see `db`). Every
//! single-use secret is consumed by one conditional write whose affected-row count decides the winner.

mod cache;
mod db;
mod error;
mod migrate;
mod model;
mod repo;
mod scratch;

pub use error::{ExchangeError, RefreshError, StorageError};
pub use model::*;
pub use repo::Store;
pub use repo::audit::{AuditEvent, NewAuditEvent};
pub use repo::comments::{CommentRow, CommentTask};
pub use repo::consents::Connection;
pub use repo::projects::{NewProject, PROJECT_OPTIONS, ProjectChanges, ProjectRow, UserBrief, project_option_bit};
pub use repo::tags::{TagGroupRow, TagRow, TagScope};
pub use repo::tasks::{
    CreateTaskError, NewTask, SetExecutive, TaskBrief, TaskChanges, TaskExecutive, TaskLink, TaskQuery, TaskRow,
    TaskStateError,
};
pub use repo::teams::{FolderRow, NewMember, TeamRow};
pub use scratch::scratch_postgres;
