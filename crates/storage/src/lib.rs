//! Persistence for wsoauth. `Store` is the one repository the server talks to; it owns a typed SQLite pool or a
//! typed PostgreSQL pool (never `sqlx::Any`), and every query is written once for both (see `db`). Every
//! single-use secret is consumed by one conditional write whose affected-row count decides the winner.

mod cache;
mod db;
mod direct;
mod error;
mod export_file;
mod migrate;
mod model;
mod repo;
mod scratch;
mod together;

pub use direct::{CheckpointEvent, CheckpointObserver};
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

/// Moving a whole database between backends: the rows of every table as typed values, and the export file.
pub mod transfer {
    pub use crate::export_file::{FORMAT, FORMAT_VERSION, Header, Reader, Writer};
    pub use crate::repo::transfer::{Column, Kind, Record, TABLES, Table, TransferError, Value};
}
