-- The purger finds expired refresh tokens (and the grants they were the last of) by their expiry, instead of
-- scanning every grant.
CREATE INDEX refresh_tokens_expires ON refresh_tokens(expires_at);
