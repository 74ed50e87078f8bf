//! A small forward-only migrator: each backend keeps numbered SQL files, applied once each, in order, inside a
//! transaction, and recorded in `schema_migrations`.

/// (version, SQL) for SQLite, in order.
pub const SQLITE: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../migrations/sqlite/0002_api.sql")),
    (10, include_str!("../migrations/sqlite/0010_oauth_security.sql")),
    (11, include_str!("../migrations/sqlite/0011_refresh_reuse.sql")),
    (12, include_str!("../migrations/sqlite/0012_consents.sql")),
    (13, include_str!("../migrations/sqlite/0013_audit.sql")),
    (14, include_str!("../migrations/sqlite/0014_session_idle.sql")),
    (15, include_str!("../migrations/sqlite/0015_refresh_expiry.sql")),
    (16, include_str!("../migrations/sqlite/0016_audit_purge_by_id.sql")),
    (17, include_str!("../migrations/sqlite/0017_inline_id_lists.sql")),
];

/// (version, SQL) for PostgreSQL: the same versions, the same tables.
pub const POSTGRES: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_init.sql")),
    (2, include_str!("../migrations/postgres/0002_api.sql")),
    (10, include_str!("../migrations/postgres/0010_oauth_security.sql")),
    (11, include_str!("../migrations/postgres/0011_refresh_reuse.sql")),
    (12, include_str!("../migrations/postgres/0012_consents.sql")),
    (13, include_str!("../migrations/postgres/0013_audit.sql")),
    (14, include_str!("../migrations/postgres/0014_session_idle.sql")),
    (15, include_str!("../migrations/postgres/0015_refresh_expiry.sql")),
    (16, include_str!("../migrations/postgres/0016_audit_purge_by_id.sql")),
    (17, include_str!("../migrations/postgres/0017_inline_id_lists.sql")),
];
