-- The audit log: who did what, when, from where. Never secrets, codes or tokens.
-- No foreign keys: an entry outlives the app, person or membership it names. `account_id` is the account the
-- event concerns (NULL when none is known, e.g. a sign-in with an unknown email); `person_id` and `user_id` are
-- who acted, when known.
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    event      TEXT NOT NULL,
    account_id INTEGER,
    person_id  INTEGER,
    user_id    INTEGER,
    client_id  TEXT,
    ip         TEXT,
    detail     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_account ON audit_log(account_id, id);
CREATE INDEX audit_log_at ON audit_log(at);
