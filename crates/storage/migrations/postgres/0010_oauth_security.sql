-- PKCE and public clients (RFC 7636, RFC 8252).
-- A public app has no secret (its secret digest is empty) and must use PKCE; a confidential one may be told to.
ALTER TABLE apps ADD COLUMN public BIGINT NOT NULL DEFAULT 0;
ALTER TABLE apps ADD COLUMN require_pkce BIGINT NOT NULL DEFAULT 0;
-- The S256 challenge of the authorization request, if any.
ALTER TABLE auth_codes ADD COLUMN code_challenge TEXT;
