-- Refresh-token reuse detection (RFC 9700 §4.14) with a grace window for a client whose response was lost.
-- Each rotation draws a random nonce; the next refresh token is derived from the presented one and the nonce, so
-- during the grace window the same pair can be answered again without storing any token.
ALTER TABLE grants ADD COLUMN rotation_nonce BYTEA;
ALTER TABLE grants ADD COLUMN rotated_at BIGINT;
-- 1 once the access token of the current generation has been used.
ALTER TABLE grants ADD COLUMN access_used BIGINT NOT NULL DEFAULT 0;
