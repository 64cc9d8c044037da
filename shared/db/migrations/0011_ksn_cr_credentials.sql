-- Commit-reveal binds a session to the SHA-256 of its token's text, and a
-- Telegram login has many texts that verify (key order, whitespace,
-- escapes, empty extra keys, numbers for strings, hex case: the HMAC covers
-- only the data-check-string). A login revealed here is bound, whatever its
-- spelling, to the ephemeral key of the session that revealed it: another
-- key's session revealing it, or a bare request carrying it, is refused
-- (shared/store/cr_sessions.py, docs/operator.md section 18).
--
-- credential = SHA-256(tag || the 32 bytes of the payload's hash), see
-- services/api/auth/telegram.credential. Kept while the login could still be
-- accepted (25 h = CREDENTIAL_BINDING), also after its session is removed.
CREATE TABLE IF NOT EXISTS ksn_cr_credentials (
    credential bytea PRIMARY KEY,
    client_ephemeral_pubkey bytea NOT NULL,
    session_id uuid NOT NULL,
    bound_until timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS ksn_cr_credentials_until ON ksn_cr_credentials (bound_until);
