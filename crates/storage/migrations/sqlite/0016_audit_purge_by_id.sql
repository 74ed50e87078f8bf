-- The audit log's purge walks the log in id order from its oldest event and stops at the first one to keep
-- (events are numbered in the order they are recorded), so the index on `at` is not needed: every event stored
-- (one per token issued or refreshed) wrote one page less.
DROP INDEX audit_log_at;
