-- Sessions end after an idle time as well as after their lifetime.
ALTER TABLE sessions ADD COLUMN last_seen_at BIGINT;
